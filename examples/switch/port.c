/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vre-switch: the one way a port comes and goes (sw_port_add,
 * sw_port_del), the port table and the view the workers read. The order
 * of each step, and why, is in switch.h ("Who may point at a port").
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <pwd.h>

#include <rte_ethdev.h>

#include "num.h"
#include "switch.h"
#include "vre_log.h"

#define ROOM "switch"

void sw_port_spec_init(struct sw_port_spec *spec)
{
	memset(spec, 0, sizeof(*spec));
	spec->number = -1;
	spec->pairs = 1;
	spec->mtu = 1500;
	spec->eth_id = -1;
	for (int i = 0; i < SW_MAX_PAIRS; i++)
		spec->pin[i] = -1;
}

void sw_sync_all(struct sw *s)
{
	for (unsigned i = 0; i < s->pool.n; i++)
		vre_worker_sync(s->pool.w[i]);
}

/* ---- spec fields ---- */

/* A user or group given as a decimal number. (uid_t)-1 is "no change" to
 * chown(2), so it is no valid id. 0 when `name` is a number. */
_Static_assert(sizeof(long) > sizeof(uint32_t), "ids up to UINT32_MAX - 1 fit in a long");
static int parse_id_number(const char *name, uint32_t *id)
{
	long v;

	if (num_parse(name, 0, (long)UINT32_MAX - 1, &v) < 0)
		return -EINVAL;
	*id = (uint32_t)v;
	return 0;
}

int sw_parse_owner(const char *name, uid_t *uid)
{
	char buf[4096];
	struct passwd pw, *res = NULL;
	uint32_t id;

	if (parse_id_number(name, &id) == 0) {
		*uid = (uid_t)id;
		return 0;
	}
	if (getpwnam_r(name, &pw, buf, sizeof(buf), &res) != 0 || !res)
		return -EINVAL;
	*uid = res->pw_uid;
	return 0;
}

int sw_parse_group(const char *name, gid_t *gid)
{
	char buf[4096];
	struct group gr, *res = NULL;
	uint32_t id;

	if (parse_id_number(name, &id) == 0) {
		*gid = (gid_t)id;
		return 0;
	}
	if (getgrnam_r(name, &gr, buf, sizeof(buf), &res) != 0 || !res)
		return -EINVAL;
	*gid = res->gr_gid;
	return 0;
}

int sw_parse_mode(const char *text, unsigned *mode)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(text, &end, 8);
	if (!*text || *end || errno || v == 0 || v > 0777)
		return -EINVAL;
	*mode = (unsigned)v;
	return 0;
}

/* ---- the table and its view (s->lock held) ---- */

static int grow(struct sw *s, unsigned need)
{
	unsigned cap = s->cap ? s->cap : 16;
	struct sw_port **t;

	while (cap < need)
		cap *= 2;
	if (cap == s->cap)
		return 0;
	t = realloc(s->ports, cap * sizeof(*t));
	if (!t)
		return -ENOMEM;
	memset(t + s->cap, 0, (cap - s->cap) * sizeof(*t));
	s->ports = t;
	s->cap = cap;
	return 0;
}

/* A new view from the table; the old one is returned to be freed after
 * every worker has synced. */
static int publish_view(struct sw *s, struct sw_view **old)
{
	struct sw_view *v = malloc(sizeof(*v) + s->cap * sizeof(v->by_no[0]) +
				   (s->nports ? s->nports : 1) * sizeof(v->list[0]));

	if (!v)
		return -ENOMEM;
	v->cap = s->cap;
	v->n = 0;
	v->list = (struct sw_port **)&v->by_no[s->cap];
	for (unsigned i = 0; i < s->cap; i++) {
		v->by_no[i] = s->ports[i];
		if (s->ports[i])
			v->list[v->n++] = s->ports[i];
	}
	*old = s->view;
	__atomic_store_n(&s->view, v, __ATOMIC_RELEASE);
	return 0;
}

/* Republishes and frees the old view once no worker can hold it. Called
 * without s->lock (the sync waits for workers). On ENOMEM the old view
 * stays, which keeps a removed port findable: the caller must not free it. */
static int refresh_view(struct sw *s)
{
	struct sw_view *old = NULL;
	int r;

	pthread_mutex_lock(&s->lock);
	r = publish_view(s, &old);
	pthread_mutex_unlock(&s->lock);
	if (r < 0)
		return r;
	sw_sync_all(s);
	free(old);
	return 0;
}

static bool digits(const char *t)
{
	if (!*t)
		return false;
	for (; *t; t++)
		if (*t < '0' || *t > '9')
			return false;
	return true;
}

struct sw_port *sw_port_find(struct sw *s, const char *key)
{
	if (digits(key)) {
		unsigned long n = strtoul(key, NULL, 10);

		return n < s->cap ? s->ports[n] : NULL;
	}
	for (unsigned i = 0; i < s->cap; i++)
		if (s->ports[i] && strcmp(s->ports[i]->name, key) == 0)
			return s->ports[i];
	return NULL;
}

/* Names: 1..31 of [A-Za-z0-9_.:-], not only digits (a number is a port
 * number). */
static bool name_ok(const char *n)
{
	size_t len = strlen(n);

	if (len == 0 || len >= SW_NAME_MAX || digits(n))
		return false;
	return strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-") == len;
}

static bool name_taken(struct sw *s, const char *n)
{
	for (unsigned i = 0; i < s->cap; i++)
		if (s->ports[i] && strcmp(s->ports[i]->name, n) == 0)
			return true;
	return false;
}

/* The spec's name, or a default: a vhost port's socket file name, an
 * ethdev port's device name, or "portN" when that is taken or unusable. */
static void pick_name(struct sw *s, struct sw_port *p, const struct sw_port_spec *spec)
{
	const char *base;

	if (spec->name[0]) {
		snprintf(p->name, sizeof(p->name), "%s", spec->name);
		return;
	}
	if (p->eth) {
		base = p->eth_name;
	} else {
		base = strrchr(p->path, '/');
		base = base ? base + 1 : p->path;
	}
	if (strlen(base) < sizeof(p->name) && name_ok(base) && !name_taken(s, base))
		memcpy(p->name, base, strlen(base) + 1);
	else
		snprintf(p->name, sizeof(p->name), "port%u", p->idx);
}

/* The number for a new port: the spec's, or the lowest free. */
static int pick_number(struct sw *s, const struct sw_port_spec *spec, char *why, size_t whylen)
{
	unsigned n = 0;

	if (spec->number >= 0) {
		n = (unsigned)spec->number;
		if (n > SW_MAX_PORT_NO) {
			snprintf(why, whylen, "port number %u is above %u", n, SW_MAX_PORT_NO);
			return -EINVAL;
		}
		if (n < s->cap && s->ports[n]) {
			snprintf(why, whylen, "port %u exists already", n);
			return -EEXIST;
		}
		return (int)n;
	}
	while (n < s->cap && s->ports[n])
		n++;
	if (n > SW_MAX_PORT_NO) {
		snprintf(why, whylen, "no free port number (at most %u ports)", SW_MAX_PORT_NO + 1);
		return -ENOSPC;
	}
	return (int)n;
}

static void port_free(struct sw_port *p)
{
	if (!p)
		return;
	sw_queues_free(p);
	if (p->net)
		vre_net_dev_destroy(p->net);
	free(p->path);
	free(p->devargs);
	free(p->eth_rxc);
	free(p->eth_txc);
	free(p);
}

/* ---- add ---- */

static struct sw_port *port_new(struct sw *s, const struct sw_port_spec *spec)
{
	struct sw_port *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->sw = s;
	p->gen = ++s->next_gen;
	p->eth = spec->kind == SW_ETHDEV;
	/* an ethdev port's pairs: sw_eth_open, by what the PMD offers */
	p->pairs = p->eth ? 0 : !spec->pairs ? 1 : spec->pairs;
	p->eth_want = spec->eth_queues;
	p->eth_rx_fd = -1;
	for (int i = 0; i < SW_MAX_PAIRS; i++)
		p->pin[i] = spec->pin[i];
	return p;
}

/* Puts p in the table at number n, plans its queues and links its peer.
 * Returns 0 or -errno (p is then out of the table again). */
static int insert(struct sw *s, struct sw_port *p, unsigned n, const struct sw_port_spec *spec,
		  char *why, size_t whylen)
{
	int r;

	pthread_mutex_lock(&s->lock);
	if (spec->name[0] && name_taken(s, spec->name)) {
		snprintf(why, whylen, "a port named '%s' exists already", spec->name);
		r = -EEXIST;
	} else {
		r = grow(s, n + 1);
	}
	if (r == 0) {
		p->idx = n;
		pick_name(s, p, spec);
		s->ports[n] = p;
		s->nports++;
		s->nvhost += !p->eth;
		r = sw_plan_port(s, p);
		if (r < 0) {
			snprintf(why, whylen, "cannot plan port %u's queues: %s", n, strerror(-r));
			s->ports[n] = NULL;
			s->nports--;
			s->nvhost -= !p->eth;
			sw_unlink_port(s, p);
		}
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* Takes p out of the table (its number is free again) and unlinks its
 * xconnect peer. */
static void remove_from_table(struct sw *s, struct sw_port *p)
{
	/* exclusive: no reader holds p from here on (switch.h) */
	pthread_rwlock_wrlock(&s->keep);
	pthread_mutex_lock(&s->lock);
	if (p->idx < s->cap && s->ports[p->idx] == p) {
		s->ports[p->idx] = NULL;
		s->nports--;
		s->nvhost -= !p->eth;
	}
	sw_unlink_port(s, p);
	pthread_mutex_unlock(&s->lock);
	pthread_rwlock_unlock(&s->keep);
}

static bool path_taken(struct sw *s, const char *path)
{
	for (unsigned i = 0; i < s->cap; i++)
		if (s->ports[i] && !s->ports[i]->eth && strcmp(s->ports[i]->path, path) == 0)
			return true;
	return false;
}

static int add_vhost(struct sw *s, const struct sw_port_spec *spec, char *why, size_t whylen)
{
	struct vre_net_config nc = { .max_queue_pairs = 1 };
	struct vre_dev_config dc = { 0 };
	struct vre_dev *dev = NULL;
	struct sw_port *p;
	int n, r;

	if (!spec->path || !*spec->path || spec->pairs > SW_MAX_PAIRS) {
		snprintf(why, whylen, !spec->path || !*spec->path ? "a vhost port needs a socket path"
								  : "at most %d queue pairs", SW_MAX_PAIRS);
		return -EINVAL;
	}
	pthread_mutex_lock(&s->lock);
	n = path_taken(s, spec->path) ? -EEXIST : pick_number(s, spec, why, whylen);
	pthread_mutex_unlock(&s->lock);
	if (n == -EEXIST && !why[0])
		snprintf(why, whylen, "a port on %s exists already", spec->path);
	if (n < 0)
		return n;
	p = port_new(s, spec);
	if (!p || !(p->path = strdup(spec->path))) {
		port_free(p);
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	p->client = spec->client;
	p->mtu = spec->mtu;
	p->no_offloads = spec->no_offloads;
	p->perm = spec->perm;
	/* the MAC the device offers: a locally administered one per port */
	nc.mac[0] = 0x02; nc.mac[1] = 0x56; nc.mac[2] = 0x52; nc.mac[3] = 0x45;
	nc.mac[4] = (uint8_t)(p->gen >> 8);
	nc.mac[5] = (uint8_t)p->gen;
	nc.max_queue_pairs = p->pairs;
	nc.mtu = spec->mtu;
	nc.features_mask = spec->no_offloads ? VRE_NET_OFFLOAD_FEATURES : 0;
	r = sw_queues_create(s, p);
	if (r == 0)
		r = vre_net_dev_create(&nc, &sw_app_ops, p, &p->net);
	if (r < 0) {
		snprintf(why, whylen, "cannot create the device: %s", strerror(-r));
		port_free(p);
		return r;
	}
	r = insert(s, p, (unsigned)n, spec, why, whylen);
	if (r < 0) {
		port_free(p);
		return r;
	}
	/* From here a frontend can connect and control's thread may call
	 * queue_start: the port is in the table and planned. */
	dc.path = p->path;
	dc.client = p->client;
	dc.perm = p->perm;
	dc.ops = vre_net_dev_ops(p->net);
	dc.ctx = p->net;
	r = vre_dev_create(s->server, &dc, &dev);
	if (r < 0) {
		snprintf(why, whylen, "%s: %s", p->path,
			 r == -EEXIST ? "a file that is not a socket is in the way" : strerror(-r));
		remove_from_table(s, p);
		port_free(p);
		return r;
	}
	vre_net_dev_set_control(p->net, dev);
	pthread_mutex_lock(&s->lock); /* readers take it under the lock */
	p->dev = dev;
	pthread_mutex_unlock(&s->lock);
	if (refresh_view(s) < 0)
		VRE_WARN(ROOM, "port %u: out of memory for the view: learn mode floods will "
			 "reach it only after the next port change", p->idx);
	VRE_INFO(ROOM, "port %u (%s): vhost-user %s%s, %u queue pair(s)", p->idx, p->name,
		 p->path, p->client ? " (client)" : "", p->pairs);
	return (int)p->idx;
}

static int add_one_eth(struct sw *s, const struct sw_port_spec *spec, uint16_t id, int number,
		       const char *devargs, char *why, size_t whylen)
{
	struct sw_port_spec one = *spec;
	struct sw_port *p;
	int n, r;

	one.number = number;
	pthread_mutex_lock(&s->lock);
	n = pick_number(s, &one, why, whylen);
	pthread_mutex_unlock(&s->lock);
	if (n < 0) {
		sw_eth_release(id, false);
		return n;
	}
	p = port_new(s, &one);
	if (!p || (devargs && !(p->devargs = strdup(devargs)))) {
		port_free(p);
		sw_eth_release(id, false);
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	p->eth_id = id;
	p->idx = (unsigned)n; /* for the log lines of open */
	if (rte_eth_dev_get_name_by_port(id, p->eth_name) != 0)
		snprintf(p->eth_name, sizeof(p->eth_name), "ethdev%u", id);
	r = sw_eth_open(s, p, why, whylen); /* sets p->pairs: before the queue table */
	if (r == 0)
		r = sw_queues_create(s, p);
	if (r < 0) {
		if (!why[0])
			snprintf(why, whylen, "%s: %s", p->eth_name, strerror(-r));
		if (p->pool)
			sw_eth_close(s, p);
		else
			sw_eth_release(id, p->eth_started);
		port_free(p);
		return r;
	}
	r = insert(s, p, (unsigned)n, &one, why, whylen);
	if (r == 0) {
		pthread_mutex_lock(&s->lock);
		r = s->polling ? sw_eth_attach(s, p) : 0; /* else sw_go attaches it */
		if (r < 0) {
			snprintf(why, whylen, "%s: cannot poll it: %s", p->eth_name, strerror(-r));
			pthread_mutex_unlock(&s->lock);
			remove_from_table(s, p);
		} else {
			pthread_mutex_unlock(&s->lock);
		}
	}
	if (r < 0) {
		sw_eth_close(s, p);
		port_free(p);
		return r;
	}
	if (refresh_view(s) < 0)
		VRE_WARN(ROOM, "port %u: out of memory for the view", p->idx);
	VRE_INFO(ROOM, "port %u (%s): ethdev %u %s", p->idx, p->name, id, p->eth_name);
	return n;
}

static int add_eth(struct sw *s, const struct sw_port_spec *spec, char *why, size_t whylen)
{
	uint16_t ids[RTE_MAX_ETHPORTS];
	int n, first = -1;

	if (spec->devargs) {
		n = sw_eth_probe(spec->devargs, ids, RTE_MAX_ETHPORTS, why, whylen);
		if (n < 0)
			return n;
	} else if (spec->eth_id >= 0 && rte_eth_dev_is_valid_port((uint16_t)spec->eth_id)) {
		ids[0] = (uint16_t)spec->eth_id;
		n = 1;
	} else {
		snprintf(why, whylen, "an ethdev port needs devargs");
		return -EINVAL;
	}
	if (n > 1 && (spec->name[0] || spec->number >= 0)) {
		snprintf(why, whylen, "'%s' gave %d ports: name= and a port number need one",
			 spec->devargs, n);
		for (int i = 0; i < n; i++)
			sw_eth_release(ids[i], false);
		return -EINVAL;
	}
	/* a device with several ethdev ports (rare) adds them all */
	for (int i = 0; i < n; i++) {
		int r = add_one_eth(s, spec, ids[i], i ? -1 : spec->number, spec->devargs, why,
				    whylen);

		if (r < 0) {
			for (int j = i + 1; j < n; j++)
				sw_eth_release(ids[j], false);
			return first >= 0 ? first : r;
		}
		if (first < 0)
			first = r;
	}
	return first;
}

int sw_port_add(struct sw *s, const struct sw_port_spec *spec, char *why, size_t whylen)
{
	int r;

	why[0] = 0;
	if (spec->name[0] && !name_ok(spec->name)) {
		snprintf(why, whylen, "bad name '%s': 1 to %d of A-Z a-z 0-9 _ . : -, not only digits",
			 spec->name, SW_NAME_MAX - 1);
		return -EINVAL;
	}
	pthread_mutex_lock(&s->op_lock);
	r = spec->kind == SW_ETHDEV ? add_eth(s, spec, why, whylen) : add_vhost(s, spec, why, whylen);
	pthread_mutex_unlock(&s->op_lock);
	return r;
}

/* ---- del ---- */

int sw_port_del(struct sw *s, unsigned number, char *why, size_t whylen)
{
	struct sw_port *p;
	struct vre_dev *dev;

	why[0] = 0;
	pthread_mutex_lock(&s->op_lock);
	pthread_mutex_lock(&s->lock);
	p = number < s->cap ? s->ports[number] : NULL;
	pthread_mutex_unlock(&s->lock);
	if (!p) {
		pthread_mutex_unlock(&s->op_lock);
		snprintf(why, whylen, "no port %u", number);
		return -ENOENT;
	}
	/* 1. out of the table and the view: no lookup, flood or new link
	 *    reaches it; its fdb entries die with it (switch.h) */
	remove_from_table(s, p);
	if (refresh_view(s) < 0) {
		/* the old view still names it: it cannot be freed safely now */
		pthread_mutex_lock(&s->lock);
		s->ports[p->idx] = p;
		s->nports++;
		s->nvhost += !p->eth;
		sw_plan_port(s, p); /* relinks an xconnect peer */
		pthread_mutex_unlock(&s->lock);
		pthread_mutex_unlock(&s->op_lock);
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	if (p->eth) {
		/* 2. its RX item off the worker; senders reach it only through
		 *    the view (learn) or a link that remove_from_table cut */
		pthread_mutex_lock(&s->lock);
		sw_eth_detach(p);
		pthread_mutex_unlock(&s->lock);
		sw_sync_all(s);
		sw_eth_close(s, p);
	} else {
		/* 2. the frontend disconnected: every queue stops (items off
		 *    the workers, RX pointers cleared and synced), memory is
		 *    unmapped, fds closed, the socket file removed */
		dev = p->dev;
		p->dev = NULL;
		vre_dev_destroy(dev);
	}
	VRE_INFO(ROOM, "port %u (%s) removed", p->idx, p->name);
	port_free(p);
	pthread_mutex_unlock(&s->op_lock);
	return 0;
}

void sw_go(struct sw *s)
{
	pthread_mutex_lock(&s->op_lock);
	pthread_mutex_lock(&s->lock);
	for (unsigned i = 0; i < s->cap; i++) {
		struct sw_port *p = s->ports[i];

		if (p && p->eth && !p->q[1].item.w && sw_eth_attach(s, p) < 0)
			VRE_ERR(ROOM, "port %u (%s): its RX is not polled", p->idx, p->name);
	}
	s->polling = true;
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_unlock(&s->op_lock);
}

/* ---- shutdown ---- */

void sw_ports_stop(struct sw *s)
{
	pthread_mutex_lock(&s->op_lock);
	/* vhost first: after their queues stopped nothing sends to an
	 * ethdev port any more */
	for (unsigned i = 0; i < s->cap; i++) {
		struct sw_port *p = s->ports[i];

		if (p && !p->eth && p->dev) {
			vre_dev_destroy(p->dev);
			p->dev = NULL;
		}
	}
	for (unsigned i = 0; i < s->cap; i++) {
		struct sw_port *p = s->ports[i];

		if (p && p->eth && p->q[1].running) {
			pthread_mutex_lock(&s->lock);
			sw_eth_detach(p);
			pthread_mutex_unlock(&s->lock);
		}
	}
	pthread_mutex_unlock(&s->op_lock);
}

void sw_ports_free(struct sw *s)
{
	struct sw_port **ports;
	struct sw_view *view;
	unsigned cap;

	pthread_mutex_lock(&s->op_lock);
	pthread_rwlock_wrlock(&s->keep);
	pthread_mutex_lock(&s->lock);
	ports = s->ports, cap = s->cap, view = s->view;
	s->ports = NULL;
	s->cap = s->nports = s->nvhost = 0;
	s->view = NULL;
	pthread_mutex_unlock(&s->lock);
	pthread_rwlock_unlock(&s->keep);
	for (unsigned i = 0; i < cap; i++) {
		struct sw_port *p = ports[i];

		if (!p)
			continue;
		if (p->eth)
			sw_eth_close(s, p);
		port_free(p);
	}
	free(view);
	free(ports);
	pthread_mutex_unlock(&s->op_lock);
}
