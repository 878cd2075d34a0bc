/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vre-switch's JSON-RPC methods: parameters checked (types, ranges, no
 * unknown names), then the switch's own functions called (port-add and
 * port-del are sw_port_add and sw_port_del, as for the command line), the
 * answer built with jansson. docs/switch.md lists them with examples.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <rte_ethdev.h>
#include <rte_version.h>

#include "app.h"
#include "vre_version.h"
#include "ctl_proto.h"
#include "ctl_server.h"
#include "vre_log.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SW_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define SW_ASAN 1
#endif
#ifdef SW_ASAN
/* The sanitizer allocator's bytes in use: gcc's libasan and clang's runtime
 * both export it, but only clang ships sanitizer/allocator_interface.h. */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

/* ---- errors and parameters ---- */

static json_t *fail(struct rpc_error *e, int code, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static json_t *fail(struct rpc_error *e, int code, int err, const char *fmt, ...)
{
	va_list ap;

	e->code = code;
	e->err = err;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return NULL;
}

/* The JSON-RPC code for what a switch function returned (-errno). */
static int code_of(int r)
{
	switch (-r) {
	case ENOENT:
	case ENODEV:
		return RPC_NO_SUCH_PORT;
	case EEXIST:
	case EADDRINUSE:
		return RPC_EXISTS;
	case ENOTSUP:
		return RPC_NOT_SUPPORTED;
	case EINVAL:
		return RPC_INVALID_PARAMS;
	default:
		return RPC_FAILED;
	}
}

static json_t *fail_errno(struct rpc_error *e, int r, const char *why)
{
	return fail(e, code_of(r), -r, "%s", why && *why ? why : strerror(-r));
}

/* Refuses names not in allowed (NULL-terminated). */
static bool only(json_t *params, const char *const *allowed, struct rpc_error *e)
{
	const char *key;
	json_t *v;

	json_object_foreach(params, key, v) {
		const char *const *a;

		for (a = allowed; *a && strcmp(*a, key) != 0; a++)
			;
		if (!*a) {
			fail(e, RPC_INVALID_PARAMS, 0, "unknown parameter '%.64s'", key);
			return false;
		}
	}
	return true;
}

static bool get_str(json_t *params, const char *key, const char **out, bool need,
		    struct rpc_error *e)
{
	json_t *v = json_object_get(params, key);

	if (!v) {
		if (need)
			fail(e, RPC_INVALID_PARAMS, 0, "parameter '%s' is missing", key);
		return !need;
	}
	if (!json_is_string(v)) {
		fail(e, RPC_INVALID_PARAMS, 0, "parameter '%s' must be a string", key);
		return false;
	}
	*out = json_string_value(v);
	return true;
}

static bool get_int(json_t *params, const char *key, long long lo, long long hi, long long *out,
		    bool need, struct rpc_error *e)
{
	json_t *v = json_object_get(params, key);

	if (!v) {
		if (need)
			fail(e, RPC_INVALID_PARAMS, 0, "parameter '%s' is missing", key);
		return !need;
	}
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
		fail(e, RPC_INVALID_PARAMS, 0, "parameter '%s' must be an integer in %lld..%lld",
		     key, lo, hi);
		return false;
	}
	*out = json_integer_value(v);
	return true;
}

static bool get_bool(json_t *params, const char *key, bool *out, struct rpc_error *e)
{
	json_t *v = json_object_get(params, key);

	if (!v)
		return true;
	if (!json_is_boolean(v)) {
		fail(e, RPC_INVALID_PARAMS, 0, "parameter '%s' must be true or false", key);
		return false;
	}
	*out = json_is_true(v);
	return true;
}

/* "port": a number or a name; the port's number, under s->lock. */
static bool get_port(struct sw *s, json_t *params, unsigned *num, struct rpc_error *e)
{
	json_t *v = json_object_get(params, "port");
	char key[32];
	struct sw_port *p;

	if (json_is_integer(v) && json_integer_value(v) >= 0 &&
	    json_integer_value(v) <= SW_MAX_PORT_NO)
		snprintf(key, sizeof(key), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_string(v) && strlen(json_string_value(v)) < sizeof(key))
		snprintf(key, sizeof(key), "%s", json_string_value(v));
	else {
		fail(e, RPC_INVALID_PARAMS, 0, v ? "parameter 'port' must be a port number or name"
						 : "parameter 'port' is missing");
		return false;
	}
	pthread_mutex_lock(&s->lock);
	p = sw_port_find(s, key);
	if (p)
		*num = p->idx;
	pthread_mutex_unlock(&s->lock);
	if (!p)
		fail(e, RPC_NO_SUCH_PORT, ENOENT, "no port '%s'", key);
	return p != NULL;
}

/* ---- port-add / port-del ---- */

static bool perm_params(json_t *params, struct sw_port_spec *spec, struct rpc_error *e)
{
	json_t *v;

	if ((v = json_object_get(params, "owner"))) {
		char t[32];

		if (json_is_integer(v))
			snprintf(t, sizeof(t), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		if (!(json_is_string(v) || json_is_integer(v)) ||
		    sw_parse_owner(json_is_string(v) ? json_string_value(v) : t,
				   &spec->perm.owner) < 0) {
			fail(e, RPC_INVALID_PARAMS, 0, "parameter 'owner': no such user");
			return false;
		}
		spec->perm.set_owner = true;
	}
	if ((v = json_object_get(params, "group"))) {
		char t[32];

		if (json_is_integer(v))
			snprintf(t, sizeof(t), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		if (!(json_is_string(v) || json_is_integer(v)) ||
		    sw_parse_group(json_is_string(v) ? json_string_value(v) : t,
				   &spec->perm.group) < 0) {
			fail(e, RPC_INVALID_PARAMS, 0, "parameter 'group': no such group");
			return false;
		}
		spec->perm.set_group = true;
	}
	if ((v = json_object_get(params, "mode")) &&
	    (!json_is_string(v) || sw_parse_mode(json_string_value(v), &spec->perm.mode) < 0)) {
		fail(e, RPC_INVALID_PARAMS, 0, "parameter 'mode' must be an octal string such as "
		     "\"0660\"");
		return false;
	}
	return true;
}

static json_t *m_port_add(struct sw *s, json_t *params, struct rpc_error *e)
{
	static const char *const keys[] = { "kind", "path", "client", "queues", "name", "owner",
					    "group", "mode", "mtu", "offloads", "devargs", "port",
					    NULL };
	struct sw_port_spec spec;
	const char *kind = NULL, *name = NULL;
	long long q = 1, num = -1, mtu = 1500;
	bool offloads = true;
	char why[256];
	int r;

	sw_port_spec_init(&spec);
	if (!only(params, keys, e) || !get_str(params, "kind", &kind, true, e) ||
	    !get_str(params, "name", &name, false, e) ||
	    !get_int(params, "port", 0, SW_MAX_PORT_NO, &num, false, e))
		return NULL;
	if (name && strlen(name) >= sizeof(spec.name))
		return fail(e, RPC_INVALID_PARAMS, 0, "name longer than %zu characters",
			    sizeof(spec.name) - 1);
	if (name)
		snprintf(spec.name, sizeof(spec.name), "%s", name);
	spec.number = (int)num;
	if (strcmp(kind, "vhost") == 0) {
		spec.kind = SW_VHOST;
		if (json_object_get(params, "devargs"))
			return fail(e, RPC_INVALID_PARAMS, 0, "devargs is for kind ethdev");
		if (!get_str(params, "path", &spec.path, true, e) ||
		    !get_bool(params, "client", &spec.client, e) ||
		    !get_int(params, "queues", 1, SW_MAX_PAIRS, &q, false, e) ||
		    !get_int(params, "mtu", 68, 65535, &mtu, false, e) ||
		    !get_bool(params, "offloads", &offloads, e) || !perm_params(params, &spec, e))
			return NULL;
		if (strlen(spec.path) >= 108)
			return fail(e, RPC_INVALID_PARAMS, 0, "socket path longer than 107 bytes");
		if (spec.client && (spec.perm.mode || spec.perm.set_owner || spec.perm.set_group))
			return fail(e, RPC_INVALID_PARAMS, 0,
				    "owner, group and mode apply to a socket we listen on, not with client");
		spec.pairs = (uint16_t)q;
		spec.mtu = (uint16_t)mtu;
		spec.no_offloads = !offloads;
	} else if (strcmp(kind, "ethdev") == 0) {
		static const char *const ekeys[] = { "kind", "devargs", "name", "port", "queues",
						     NULL };

		spec.kind = SW_ETHDEV;
		q = 0;
		if (!only(params, ekeys, e) || !get_str(params, "devargs", &spec.devargs, true, e) ||
		    !get_int(params, "queues", 1, SW_MAX_PAIRS, &q, false, e))
			return NULL;
		spec.eth_queues = (uint16_t)q;
		if (!*spec.devargs)
			return fail(e, RPC_INVALID_PARAMS, 0, "devargs is empty");
	} else {
		return fail(e, RPC_INVALID_PARAMS, 0, "kind must be \"vhost\" or \"ethdev\"");
	}
	r = sw_port_add(s, &spec, why, sizeof(why));
	if (r < 0)
		return fail_errno(e, r, why);
	{
		json_t *res;

		pthread_mutex_lock(&s->lock);
		res = json_pack("{s:i, s:s}", "port", r, "name",
				(unsigned)r < s->cap && s->ports[r] ? s->ports[r]->name : "");
		pthread_mutex_unlock(&s->lock);
		return res;
	}
}

static json_t *m_port_del(struct sw *s, json_t *params, struct rpc_error *e)
{
	static const char *const keys[] = { "port", NULL };
	char why[256];
	unsigned n;
	int r;

	if (!only(params, keys, e) || !get_port(s, params, &n, e))
		return NULL;
	r = sw_port_del(s, n, why, sizeof(why));
	if (r < 0)
		return fail_errno(e, r, why);
	return json_pack("{s:i}", "port", (int)n);
}

/* ---- port-list / port-show ---- */

/* What a reader copies of a port under s->lock; its device is asked for
 * its state afterwards (control's lock), with s->keep held shared so the
 * port and its device stay. */
struct port_row {
	struct sw_port *p;
	struct vre_dev *dev;
	struct sw_port_totals t;
	unsigned running, nq;
};

static const char *state_of(const struct port_row *r, const struct vre_dev_snapshot *snap)
{
	if (r->p->eth)
		return "up";
	if (!r->dev)
		return "starting";
	if (snap->connected)
		return r->running ? "running" : "connected";
	return r->p->client ? "connecting" : "listening";
}

static void row_of(struct sw *s, struct sw_port *p, struct port_row *r)
{
	r->p = p;
	r->dev = p->dev;
	sw_port_totals(s, p, &r->t);
	r->running = r->nq = 0;
	for (uint16_t k = 0; k < p->nq; k++) {
		if (p->eth && !(k & 1))
			continue; /* the TX side of an ethdev queue pair */
		r->nq++;
		r->running += p->q[k].running;
	}
}

static json_t *row_json(const struct port_row *r)
{
	struct vre_dev_snapshot snap = { 0 };
	struct sw_port *p = r->p;
	json_t *o;

	if (r->dev)
		vre_dev_get_snapshot(r->dev, &snap);
	o = json_pack("{s:i, s:s, s:s, s:s, s:i, s:i, s:I, s:I, s:I}", "port", (int)p->idx,
		      "name", p->name, "kind", p->eth ? "ethdev" : "vhost", "state",
		      state_of(r, &snap), "queues", (int)r->nq, "queues_running", (int)r->running,
		      "rx_pkts", (json_int_t)r->t.rx_pkts, "tx_pkts", (json_int_t)r->t.tx_pkts,
		      "drops", (json_int_t)r->t.drops);
	if (p->eth) {
		json_object_set_new(o, "device", json_string(p->eth_name));
	} else {
		json_object_set_new(o, "path", json_string(p->path));
		json_object_set_new(o, "client", json_boolean(p->client));
	}
	return o;
}

static json_t *m_port_list(struct sw *s, json_t *params, struct rpc_error *e)
{
	static const char *const keys[] = { NULL };
	struct port_row *rows;
	unsigned n = 0;
	json_t *a;

	if (!only(params, keys, e))
		return NULL;
	pthread_rwlock_rdlock(&s->keep);
	pthread_mutex_lock(&s->lock);
	rows = calloc(s->nports ? s->nports : 1, sizeof(*rows));
	for (unsigned i = 0; rows && i < s->cap; i++)
		if (s->ports[i])
			row_of(s, s->ports[i], &rows[n++]);
	pthread_mutex_unlock(&s->lock);
	a = json_array();
	for (unsigned i = 0; rows && i < n; i++)
		json_array_append_new(a, row_json(&rows[i]));
	pthread_rwlock_unlock(&s->keep);
	free(rows);
	if (!rows) {
		json_decref(a);
		return fail(e, RPC_INTERNAL_ERROR, ENOMEM, "out of memory");
	}
	return json_pack("{s:o}", "ports", a);
}

/* Feature bits by name, for people (the hex value is there too). */
static json_t *bit_names(uint64_t v, const char *const *names, unsigned n)
{
	json_t *a = json_array();

	for (unsigned b = 0; b < 64; b++) {
		char t[16];

		if (!(v & (1ull << b)))
			continue;
		if (b < n && names[b]) {
			json_array_append_new(a, json_string(names[b]));
		} else {
			snprintf(t, sizeof(t), "bit%u", b);
			json_array_append_new(a, json_string(t));
		}
	}
	return a;
}

static const char *const virtio_names[64] = {
	[0] = "CSUM", [1] = "GUEST_CSUM", [3] = "MTU", [5] = "MAC", [7] = "GUEST_TSO4",
	[8] = "GUEST_TSO6", [11] = "HOST_TSO4", [12] = "HOST_TSO6", [15] = "MRG_RXBUF",
	[16] = "STATUS", [17] = "CTRL_VQ", [18] = "CTRL_RX", [19] = "CTRL_VLAN",
	[21] = "GUEST_ANNOUNCE", [22] = "MQ", [23] = "CTRL_MAC_ADDR", [24] = "NOTIFY_ON_EMPTY",
	[27] = "ANY_LAYOUT", [28] = "INDIRECT_DESC", [29] = "EVENT_IDX",
	[30] = "PROTOCOL_FEATURES", [32] = "VERSION_1", [33] = "ACCESS_PLATFORM",
	[34] = "RING_PACKED", [35] = "IN_ORDER",
};
static const char *const protocol_names[64] = {
	[0] = "MQ", [1] = "LOG_SHMFD", [2] = "RARP", [3] = "REPLY_ACK", [4] = "MTU",
	[5] = "BACKEND_REQ", [6] = "CROSS_ENDIAN", [9] = "CONFIG", [10] = "BACKEND_SEND_FD",
	[11] = "HOST_NOTIFIER", [12] = "INFLIGHT_SHMFD", [13] = "RESET_DEVICE",
	[14] = "INBAND_NOTIFICATIONS", [15] = "CONFIGURE_MEM_SLOTS", [16] = "STATUS",
};

static json_t *hex(uint64_t v)
{
	char t[24];

	snprintf(t, sizeof(t), "0x%" PRIx64, v);
	return json_string(t);
}

/* An ethdev RX queue's entry gets the counters of its queue pair k: what
 * the switch took from RX queue k and sent on TX queue k, and what the PMD
 * counted per queue (where it does). */
static void eth_queue_json(const struct sw_port *p, uint16_t k, const struct rte_eth_stats *st,
			   bool have_st, json_t *o)
{
	json_object_set_new(o, "rx_pkts", json_integer((json_int_t)__atomic_load_n(&p->eth_rxc[k].pkts, __ATOMIC_RELAXED)));
	json_object_set_new(o, "rx_bytes", json_integer((json_int_t)__atomic_load_n(&p->eth_rxc[k].bytes, __ATOMIC_RELAXED)));
	json_object_set_new(o, "tx_pkts", json_integer((json_int_t)__atomic_load_n(&p->eth_txc[k].pkts, __ATOMIC_RELAXED)));
	json_object_set_new(o, "tx_bytes", json_integer((json_int_t)__atomic_load_n(&p->eth_txc[k].bytes, __ATOMIC_RELAXED)));
	json_object_set_new(o, "tx_drop_full", json_integer((json_int_t)__atomic_load_n(&p->eth_txc[k].drop_full, __ATOMIC_RELAXED)));
	if (have_st && k < RTE_ETHDEV_QUEUE_STAT_CNTRS) {
		json_object_set_new(o, "pmd_rx_pkts", json_integer((json_int_t)st->q_ipackets[k]));
		json_object_set_new(o, "pmd_tx_pkts", json_integer((json_int_t)st->q_opackets[k]));
	}
}

/* The queues of p (s->lock held). */
static json_t *queues_json(struct sw *s, struct sw_port *p)
{
	json_t *a = json_array();
	struct rte_eth_stats st;
	bool have_st = p->eth && rte_eth_stats_get(p->eth_id, &st) == 0;

	for (uint16_t k = 0; k < p->nq; k++) {
		const struct sw_queue *sq = &p->q[k];
		const struct vre_net_queue *nq = p->eth ? NULL : vre_net_dev_queue(p->net, k);
		const char *role;
		json_t *o;

		if (p->eth)
			role = (k & 1) ? "rx" : "tx";
		else
			role = k == 2 * p->pairs ? "ctrl" : (k & 1) ? "tx" : "rx";
		if (p->eth && !(k & 1))
			continue; /* shown with its RX queue (pair k / 2) */
		o = json_pack("{s:i, s:s, s:i, s:b, s:i}", "queue", (int)k, "role", role, "pair",
			      (int)(k / 2), "running", sq->running, "worker",
			      sq->w ? sw_worker_index(s, sq->w) : -1);
		if (p->eth && p->eth_rxc)
			eth_queue_json(p, k / 2u, &st, have_st, o);
		if (nq) {
			json_object_set_new(o, "packets", json_integer((json_int_t)nq->st.packets));
			json_object_set_new(o, "bytes", json_integer((json_int_t)nq->st.bytes));
			json_object_set_new(o, "drop_no_rx_buf",
					    json_integer((json_int_t)nq->st.drop_no_rx_buf));
		}
		json_array_append_new(a, o);
	}
	return a;
}

static json_t *m_port_show(struct sw *s, json_t *params, struct rpc_error *e)
{
	static const char *const keys[] = { "port", NULL };
	struct vre_dev_snapshot snap = { 0 };
	struct vre_dev_stats ds = { 0 };
	struct port_row r;
	struct sw_port *p;
	json_t *o, *qs;
	unsigned n;

	if (!only(params, keys, e) || !get_port(s, params, &n, e))
		return NULL;
	pthread_rwlock_rdlock(&s->keep);
	pthread_mutex_lock(&s->lock);
	p = n < s->cap ? s->ports[n] : NULL;
	if (p) {
		row_of(s, p, &r);
		qs = queues_json(s, p);
	}
	pthread_mutex_unlock(&s->lock);
	if (!p) {
		pthread_rwlock_unlock(&s->keep);
		return fail(e, RPC_NO_SUCH_PORT, ENOENT, "no port %u", n);
	}
	o = row_json(&r);
	json_object_set_new(o, "queue_list", qs);
	json_object_set_new(o, "counters", sw_port_counters_json(&r.t));
	if (p->eth) {
		struct rte_eth_link link;
		struct rte_ether_addr mac;
		char m[RTE_ETHER_ADDR_FMT_SIZE] = "";

		if (rte_eth_macaddr_get(p->eth_id, &mac) == 0)
			rte_ether_format_addr(m, sizeof(m), &mac);
		json_object_set_new(o, "ethdev_id", json_integer(p->eth_id));
		json_object_set_new(o, "mac", json_string(m));
		json_object_set_new(o, "rx_interrupts", json_boolean(p->eth_rx_fd >= 0));
		json_object_set_new(o, "queue_pairs", json_integer(p->pairs));
		json_object_set_new(o, "rss", json_boolean(p->eth_rss_hf != 0));
		json_object_set_new(o, "rss_hf", hex(p->eth_rss_hf));
		if (p->devargs)
			json_object_set_new(o, "devargs", json_string(p->devargs));
		if (rte_eth_link_get_nowait(p->eth_id, &link) == 0)
			json_object_set_new(o, "link", json_pack("{s:b, s:I, s:s}", "up",
								 (int)link.link_status, "speed_mbps",
								 (json_int_t)link.link_speed, "duplex",
								 link.link_duplex ? "full" : "half"));
	} else if (r.dev) {
		const uint8_t *mac = vre_net_dev_mac(p->net);
		char m[24];

		vre_dev_get_snapshot(r.dev, &snap);
		vre_dev_get_stats(r.dev, &ds);
		snprintf(m, sizeof(m), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2],
			 mac[3], mac[4], mac[5]);
		json_object_set_new(o, "mac", json_string(m));
		json_object_set_new(o, "queue_pairs", json_integer(p->pairs));
		json_object_set_new(o, "active_pairs", json_integer(vre_net_dev_active_pairs(p->net)));
		json_object_set_new(o, "connection", json_pack(
			"{s:b, s:b, s:o, s:o, s:o, s:o, s:i, s:i, s:i, s:i}",
			"connected", snap.connected, "owner", snap.owner,
			"features", hex(snap.features),
			"feature_names", bit_names(snap.features, virtio_names, 64),
			"protocol_features", hex(snap.protocol_features),
			"protocol_feature_names", bit_names(snap.protocol_features, protocol_names, 64),
			"mem_regions", (int)snap.mem_regions, "queues_started",
			(int)snap.queues_started, "queues_enabled", (int)snap.queues_enabled,
			"queues_running", (int)snap.queues_running));
		json_object_set_new(o, "messages", json_pack(
			"{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "handled", (json_int_t)ds.messages,
			"failed", (json_int_t)ds.failed, "unknown", (json_int_t)ds.unknown,
			"connects", (json_int_t)ds.connects, "disconnects", (json_int_t)ds.disconnects,
			"memory_faults", (json_int_t)ds.memory_faults,
			"notify_blocked", (json_int_t)ds.notify_blocked,
			"stalled", (json_int_t)ds.stalled));
		json_object_set_new(o, "mtu", json_integer(p->mtu));
		json_object_set_new(o, "offloads", json_boolean(!p->no_offloads));
		if (p->perm.mode || p->perm.set_owner || p->perm.set_group) {
			char t[8];

			snprintf(t, sizeof(t), "%04o", p->perm.mode);
			json_object_set_new(o, "socket", json_pack(
				"{s:s?, s:i, s:i}", "mode", p->perm.mode ? t : NULL,
				"owner", p->perm.set_owner ? (int)p->perm.owner : -1,
				"group", p->perm.set_group ? (int)p->perm.group : -1));
		}
	}
	pthread_rwlock_unlock(&s->keep);
	return o;
}

/* ---- counters, fdb, workers ---- */

static json_t *m_stats(struct sw *s, json_t *params, struct rpc_error *e)
{
	static const char *const keys[] = { "clear", NULL };
	struct snap sn = { 0 };
	bool clear = false;
	json_t *o;

	if (!only(params, keys, e) || !get_bool(params, "clear", &clear, e))
		return NULL;
	if (sw_snap_take(s, &sn) < 0)
		return fail(e, RPC_INTERNAL_ERROR, ENOMEM, "out of memory");
	o = sw_stats_json(s, &sn, NULL);
	sw_snap_free(&sn);
	if (clear)
		sw_stats_clear(s); /* the answer holds the counters up to the clear */
	json_object_del(o, "interval_s");
	json_object_set_new(o, "cleared", json_boolean(clear));
	return o;
}

static json_t *m_fdb_show(struct sw *s, json_t *params, struct rpc_error *e)
{
	static const char *const keys[] = { NULL };
	struct sw_fdb_row *rows;
	json_t *a;
	unsigned n;

	if (!only(params, keys, e))
		return NULL;
	if (s->mode != SW_LEARN)
		return fail(e, RPC_NOT_SUPPORTED, ENOTSUP, "no MAC table in %s mode",
			    sw_mode_names[s->mode]);
	rows = calloc(4096, sizeof(*rows));
	if (!rows)
		return fail(e, RPC_INTERNAL_ERROR, ENOMEM, "out of memory");
	a = json_array();
	pthread_mutex_lock(&s->lock);
	n = sw_fdb_list(s, rows, 4096);
	for (unsigned i = 0; i < n; i++) {
		char m[24];
		struct sw_port *p = rows[i].port < s->cap ? s->ports[rows[i].port] : NULL;

		snprintf(m, sizeof(m), "%02x:%02x:%02x:%02x:%02x:%02x", rows[i].mac[0],
			 rows[i].mac[1], rows[i].mac[2], rows[i].mac[3], rows[i].mac[4],
			 rows[i].mac[5]);
		json_array_append_new(a, json_pack("{s:s, s:i, s:s, s:i}", "mac", m, "port",
						   (int)rows[i].port, "name", p ? p->name : "",
						   "age_s", (int)rows[i].age_s));
	}
	pthread_mutex_unlock(&s->lock);
	free(rows);
	return json_pack("{s:o, s:i}", "entries", a, "count", (int)n);
}

static json_t *m_fdb_flush(struct sw *s, json_t *params, struct rpc_error *e)
{
	static const char *const keys[] = { NULL };
	uint64_t n;

	if (!only(params, keys, e))
		return NULL;
	if (s->mode != SW_LEARN)
		return fail(e, RPC_NOT_SUPPORTED, ENOTSUP, "no MAC table in %s mode",
			    sw_mode_names[s->mode]);
	pthread_mutex_lock(&s->lock);
	n = sw_fdb_flush(s);
	pthread_mutex_unlock(&s->lock);
	VRE_INFO("switch", "fdb flushed (%" PRIu64 " entries)", n);
	return json_pack("{s:I}", "flushed", (json_int_t)n);
}

static json_t *m_worker_list(struct sw *s, json_t *params, struct rpc_error *e)
{
	static const char *const keys[] = { NULL };
	json_t *a = json_array();

	if (!only(params, keys, e)) {
		json_decref(a);
		return NULL;
	}
	pthread_mutex_lock(&s->lock);
	for (unsigned i = 0; i < s->pool.n; i++) {
		json_t *w = sw_worker_json(s, i), *q = json_array();

		/* the queues it polls (TX, control, ethdev RX) and the RX
		 * queues it writes */
		for (unsigned pi = 0; pi < s->cap; pi++) {
			struct sw_port *p = s->ports[pi];

			for (uint16_t k = 0; p && k < p->nq; k++)
				if (p->q[k].w == s->pool.w[i] && (p->q[k].running || p->eth) &&
				    !(p->eth && !(k & 1)))
					json_array_append_new(q, json_pack("{s:i, s:i}", "port",
									   (int)p->idx, "queue",
									   (int)k));
		}
		json_object_set_new(w, "queues", q);
		json_array_append_new(a, w);
	}
	pthread_mutex_unlock(&s->lock);
	return json_pack("{s:o}", "workers", a);
}

static json_t *m_rxq_pin(struct sw *s, json_t *params, struct rpc_error *e)
{
	static const char *const keys[] = { "port", "pair", "worker", NULL };
	long long pair, w;
	char why[256];
	unsigned n;
	int r;

	if (!only(params, keys, e) || !get_port(s, params, &n, e) ||
	    !get_int(params, "pair", 0, SW_MAX_PAIRS - 1, &pair, true, e) ||
	    !get_int(params, "worker", 0, 1 << 16, &w, true, e))
		return NULL;
	r = sw_rxq_pin(s, n, (unsigned)pair, (unsigned)w, why, sizeof(why));
	if (r < 0)
		return fail_errno(e, r, why);
	return json_pack("{s:i, s:i, s:i}", "port", (int)n, "pair", (int)pair, "worker", (int)w);
}

static json_t *m_rebalance(struct sw *s, json_t *params, struct rpc_error *e)
{
	static const char *const keys[] = { NULL };
	int r;

	if (!only(params, keys, e))
		return NULL;
	r = sw_rebalance(s);
	if (r == -ENOTSUP)
		return fail(e, RPC_NOT_SUPPORTED, ENOTSUP,
			    "ethdev ports are served by one worker: nothing moved");
	if (r < 0)
		return fail(e, RPC_FAILED, -r, "some queues could not be added back (see the log)");
	return json_pack("{s:i}", "moved", r);
}

/* ---- the rest ---- */

static const char *const level_names[] = { "err", "warn", "info", "debug" };

static json_t *m_log_level(struct sw *s, json_t *params, struct rpc_error *e)
{
	static const char *const keys[] = { "level", NULL };
	const char *level = NULL;
	int l;

	(void)s;
	if (!only(params, keys, e) || !get_str(params, "level", &level, false, e))
		return NULL;
	if (level) {
		l = vre_log_parse_level(level);
		if (l < 0)
			return fail(e, RPC_INVALID_PARAMS, 0,
				    "level must be err, warn, info or debug");
		vre_log_set_level((enum vre_log_level)l);
		VRE_INFO("switch", "log level %s", level);
	}
	l = __atomic_load_n(&vre_log_level, __ATOMIC_RELAXED);
	return json_pack("{s:s}", "level", level_names[l < 0 || l > 3 ? 2 : l]);
}

static json_t *m_version(struct sw *s, json_t *params, struct rpc_error *e)
{
	static const char *const keys[] = { NULL };
	json_t *o;

	if (!only(params, keys, e))
		return NULL;
	pthread_mutex_lock(&s->lock);
	o = json_pack("{s:s, s:s, s:s, s:i, s:i}", "version", VRE_VERSION, "dpdk", rte_version(),
		      "mode", sw_mode_names[s->mode], "ports", (int)s->nports, "workers",
		      (int)s->pool.n);
	pthread_mutex_unlock(&s->lock);
	return o;
}

/* Counts entries of a /proc directory or lines of a /proc file. */
static long proc_count(const char *path, bool dir)
{
	long n = 0;

	if (dir) {
		DIR *d = opendir(path);
		struct dirent *de;

		if (!d)
			return -1;
		while ((de = readdir(d)))
			n += de->d_name[0] != '.';
		closedir(d);
		return n - 1; /* the fd opendir holds */
	} else {
		FILE *f = fopen(path, "r");
		int c;

		if (!f)
			return -1;
		while ((c = getc(f)) != EOF)
			n += c == '\n';
		fclose(f);
		return n;
	}
}

/* For leak checks (tests) and operators: this process's fds, mappings and
 * heap in use (the sanitizer's allocator under ASan, malloc's otherwise). */
static json_t *m_process(struct sw *s, json_t *params, struct rpc_error *e)
{
	static const char *const keys[] = { NULL };
	size_t heap;

	(void)s;
	if (!only(params, keys, e))
		return NULL;
#ifdef SW_ASAN
	heap = __sanitizer_get_current_allocated_bytes();
#else
	heap = mallinfo2().uordblks;
#endif
	return json_pack("{s:i, s:I, s:I, s:I}", "pid", (int)getpid(),
			 "fds", (json_int_t)proc_count("/proc/self/fd", true),
			 "maps", (json_int_t)proc_count("/proc/self/maps", false),
			 "heap_bytes", (json_int_t)heap);
}

static json_t *m_methods(struct sw *s, json_t *params, struct rpc_error *e);

static const struct sw_rpc_method methods[] = {
	{ "port-add", true, m_port_add,
	  "kind (\"vhost\"|\"ethdev\"); vhost: path, client, queues, owner, group, mode, mtu, offloads; ethdev: "
	  "devargs, queues; both: name, port",
	  "adds a port; result {port, name}" },
	{ "port-del", true, m_port_del, "port (number or name)",
	  "removes a port (its frontend disconnected, memory unmapped, fds closed)" },
	{ "port-list", false, m_port_list, "", "every port: state, queues, counters" },
	{ "port-show", false, m_port_show, "port",
	  "one port: connection, negotiated features, queues with their worker, counters" },
	{ "stats", false, m_stats, "clear (bool)",
	  "every counter (as --stats-json); clear makes them start from 0" },
	{ "fdb-show", false, m_fdb_show, "", "learn mode: the MAC table" },
	{ "fdb-flush", false, m_fdb_flush, "", "learn mode: forgets every MAC" },
	{ "worker-list", false, m_worker_list, "",
	  "per worker: queues, packets, busy cycles per packet" },
	{ "rxq-pin", true, m_rxq_pin, "port, pair, worker",
	  "xconnect/loopback: moves an RX queue and its feeders to a worker" },
	{ "rebalance", true, m_rebalance, "", "moves every queue to the next worker" },
	{ "log-level", false, m_log_level, "level (err|warn|info|debug), optional",
	  "sets or returns the log level" },
	{ "version", false, m_version, "", "versions, mode, port and worker counts" },
	{ "process", false, m_process, "", "diagnostics: pid, open fds, mappings, heap bytes" },
	{ "methods", false, m_methods, "", "this list" },
};

static json_t *m_methods(struct sw *s, json_t *params, struct rpc_error *e)
{
	static const char *const keys[] = { NULL };
	json_t *a = json_array();

	(void)s;
	if (!only(params, keys, e)) {
		json_decref(a);
		return NULL;
	}
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "name", methods[i].name,
						   "params", methods[i].params, "summary",
						   methods[i].summary));
	return json_pack("{s:o}", "methods", a);
}

const struct sw_rpc_method *sw_rpc_find(const char *name)
{
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(methods[i].name, name) == 0)
			return &methods[i];
	return NULL;
}
