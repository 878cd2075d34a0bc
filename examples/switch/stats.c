/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vre-switch's counters: snapshots of every port's totals, the table it
 * prints (per interval, on SIGUSR1, at exit) and the same numbers as JSON
 * (jansson), written to a file (--stats-json) or returned by the control
 * channel's stats method.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "app.h"
#include "vre_log.h"

const char *const sw_mode_names[] = { "loopback", "xconnect", "learn" };

uint64_t sw_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int sw_snap_take(struct sw *s, struct snap *sn)
{
	int r = 0;

	pthread_mutex_lock(&s->lock);
	if (sn->cap < s->nports) {
		struct snap_port *p = realloc(sn->p, s->nports * sizeof(*p));

		if (!p)
			r = -ENOMEM;
		else
			sn->p = p, sn->cap = s->nports;
	}
	if (r == 0) {
		sn->n = 0;
		for (unsigned i = 0; i < s->cap; i++) {
			struct sw_port *p = s->ports[i];
			struct snap_port *x;

			if (!p)
				continue;
			x = &sn->p[sn->n++];
			x->idx = p->idx;
			x->gen = p->gen;
			x->eth = p->eth;
			snprintf(x->name, sizeof(x->name), "%s", p->name);
			snprintf(x->where, sizeof(x->where), "%s", p->eth ? p->eth_name : p->path);
			sw_port_totals(s, p, &x->t);
		}
		sn->ns = sw_now_ns();
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

void sw_snap_free(struct snap *sn)
{
	free(sn->p);
	memset(sn, 0, sizeof(*sn));
}

/* The same port in an earlier snapshot (both are in port order), or x
 * itself when it is new (rates 0). */
static const struct sw_port_totals *before(const struct snap *prev, const struct snap_port *x)
{
	unsigned lo = 0, hi = prev ? prev->n : 0;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;

		if (prev->p[mid].idx < x->idx)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (prev && lo < prev->n && prev->p[lo].idx == x->idx && prev->p[lo].gen == x->gen)
		return &prev->p[lo].t;
	return &x->t;
}

static double rate(uint64_t now, uint64_t then, double secs)
{
	return secs > 0 ? (double)(now - then) / secs / 1e6 : 0.0;
}

/* The port table: one line per port and per worker. Rates are over the
 * last interval when prev is given. Columns are "key value" pairs so
 * scripts (the integration tests) can parse them. rx is what the switch
 * delivered to the port, tx what it took from it (the guest's view, also
 * for ethdev ports). */
void sw_stats_print(struct sw *s, const struct snap *cur, const struct snap *prev,
		    const char *tag)
{
	double secs = prev ? (double)(cur->ns - prev->ns) / 1e9 : 0;
	uint64_t hz = vre_tsc_hz();

	for (unsigned i = 0; i < cur->n; i++) {
		const struct snap_port *x = &cur->p[i];
		const struct sw_port_totals *t = &x->t, *o = before(prev, x);

		printf("%s port %u: rx-pkts %" PRIu64 " rx-bytes %" PRIu64 " tx-pkts %" PRIu64
		       " tx-bytes %" PRIu64 " drops %" PRIu64 " drop-no-dst %" PRIu64
		       " drop-no-rx-buf %" PRIu64 " drop-bad %" PRIu64 " drop-offload %" PRIu64
		       " drop-mtu %" PRIu64 " | rx-mpps %.3f tx-mpps %.3f rx-gbps %.3f | %s %s\n",
		       tag, x->idx, t->rx_pkts, t->rx_bytes, t->tx_pkts, t->tx_bytes, t->drops,
		       t->drop_no_dst, t->drop_no_rx_buf, t->drop_bad, t->drop_offload, t->drop_mtu,
		       rate(t->rx_pkts, o->rx_pkts, secs), rate(t->tx_pkts, o->tx_pkts, secs),
		       secs > 0 ? (double)(t->rx_bytes - o->rx_bytes) * 8 / secs / 1e9 : 0.0,
		       x->eth ? "ethdev" : "vhost", x->where);
		/* offloads: a line of its own, only for a port that saw any */
		if (t->gso_in | t->csum_in | t->gso_out | t->csum_out | t->sw_segs | t->sw_csum |
		    t->data_valid | t->drop_offload)
			printf("%s offloads port %u: gso-in %" PRIu64 " gso-in-bytes %" PRIu64
			       " csum-in %" PRIu64 " gso-out %" PRIu64 " csum-out %" PRIu64
			       " sw-gso %" PRIu64 " sw-segs %" PRIu64 " sw-csum %" PRIu64
			       " data-valid %" PRIu64 " refused %s %" PRIu64 " %s %" PRIu64 " %s %" PRIu64
			       " %s %" PRIu64 " %s %" PRIu64 " %s %" PRIu64 "\n",
			       tag, x->idx, t->gso_in, t->gso_in_bytes, t->csum_in, t->gso_out,
			       t->csum_out, t->sw_gso, t->sw_segs, t->sw_csum, t->data_valid,
			       vre_net_ol_drop_name(0), t->drop_ol[0], vre_net_ol_drop_name(1),
			       t->drop_ol[1], vre_net_ol_drop_name(2), t->drop_ol[2],
			       vre_net_ol_drop_name(3), t->drop_ol[3], vre_net_ol_drop_name(4),
			       t->drop_ol[4], vre_net_ol_drop_name(5), t->drop_ol[5]);
	}
	pthread_mutex_lock(&s->lock);
	if (s->fdb)
		printf("%s fdb: %" PRIu64 " MAC addresses learned\n", tag, sw_fdb_count(s));
	for (unsigned i = 0; i < s->pool.n; i++) {
		struct vre_worker_stats st;
		char cpp[32] = "-";
		double c;

		sw_worker_stats(s, i, &st);
		if (sw_cycles_per_pkt(&st, &c))
			snprintf(cpp, sizeof(cpp), "%.1f", c);
		printf("%s worker %u cpu %d: packets %" PRIu64 " busy-cycles %" PRIu64
		       " cycles/pkt %s busy-ms %.1f polls %" PRIu64 " empty-polls %" PRIu64
		       " sleeps %" PRIu64 " wakeups %" PRIu64 "\n",
		       tag, i, vre_worker_cpu(s->pool.w[i]), st.packets, st.busy_cycles, cpp,
		       (double)st.busy_cycles * 1e3 / (double)hz, st.polls, st.empty_polls,
		       st.sleeps, st.wakeups);
	}
	pthread_mutex_unlock(&s->lock);
	fflush(stdout);
}

/* The offload counters (on the vhost port whose queues did the work). */
static json_t *offload_json(const struct sw_port_totals *t)
{
	json_t *refused = json_object();

	for (unsigned r = 0; r < VRE_OL_DROP_COUNT; r++)
		json_object_set_new(refused, vre_net_ol_drop_name((enum vre_net_ol_drop)r),
				    json_integer((json_int_t)t->drop_ol[r]));
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}",
			 "gso_in", (json_int_t)t->gso_in, "gso_in_bytes", (json_int_t)t->gso_in_bytes,
			 "csum_in", (json_int_t)t->csum_in, "gso_out", (json_int_t)t->gso_out,
			 "csum_out", (json_int_t)t->csum_out, "sw_gso", (json_int_t)t->sw_gso,
			 "sw_segs", (json_int_t)t->sw_segs, "sw_csum", (json_int_t)t->sw_csum,
			 "data_valid", (json_int_t)t->data_valid, "refused", refused);
}

json_t *sw_port_counters_json(const struct sw_port_totals *t)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}",
			 "rx_pkts", (json_int_t)t->rx_pkts, "rx_bytes", (json_int_t)t->rx_bytes,
			 "tx_pkts", (json_int_t)t->tx_pkts, "tx_bytes", (json_int_t)t->tx_bytes,
			 "drops", (json_int_t)t->drops, "drop_no_dst", (json_int_t)t->drop_no_dst,
			 "drop_no_rx_buf", (json_int_t)t->drop_no_rx_buf,
			 "drop_bad", (json_int_t)t->drop_bad,
			 "notify_saturated", (json_int_t)t->notify_saturated,
			 "drop_offload", (json_int_t)t->drop_offload,
			 "drop_mtu", (json_int_t)t->drop_mtu, "offload", offload_json(t));
}

bool sw_cycles_per_pkt(const struct vre_worker_stats *st, double *cpp)
{
	if (st->packets < SW_CPP_MIN_PACKETS)
		return false;
	*cpp = (double)st->busy_cycles / (double)st->packets;
	return true;
}

json_t *sw_worker_json(struct sw *s, unsigned i)
{
	struct vre_worker_stats st;
	double cpp;

	sw_worker_stats(s, i, &st);
	return json_pack("{s:i, s:i, s:i, s:I, s:I, s:o, s:I, s:I, s:I, s:I}",
			 "worker", (int)i, "cpu", vre_worker_cpu(s->pool.w[i]),
			 "items", (int)vre_worker_num_items(s->pool.w[i]),
			 "packets", (json_int_t)st.packets, "busy_cycles", (json_int_t)st.busy_cycles,
			 "cycles_per_pkt",
			 sw_cycles_per_pkt(&st, &cpp) ? json_real(cpp) : json_null(),
			 "polls", (json_int_t)st.polls, "empty_polls", (json_int_t)st.empty_polls,
			 "sleeps", (json_int_t)st.sleeps, "wakeups", (json_int_t)st.wakeups);
}

json_t *sw_stats_json(struct sw *s, const struct snap *cur, const struct snap *prev)
{
	double secs = prev ? (double)(cur->ns - prev->ns) / 1e9 : 0;
	json_t *ports = json_array(), *workers = json_array(), *o;

	for (unsigned i = 0; i < cur->n; i++) {
		const struct snap_port *x = &cur->p[i];
		const struct sw_port_totals *t = &x->t, *b = before(prev, x);
		json_t *e = sw_port_counters_json(t);

		json_object_set_new(e, "port", json_integer(x->idx));
		json_object_set_new(e, "kind", json_string(x->eth ? "ethdev" : "vhost"));
		json_object_set_new(e, "name", json_string(x->name));
		json_object_set_new(e, x->eth ? "device" : "path", json_string(x->where));
		json_object_set_new(e, "rx_mpps", json_real(rate(t->rx_pkts, b->rx_pkts, secs)));
		json_object_set_new(e, "tx_mpps", json_real(rate(t->tx_pkts, b->tx_pkts, secs)));
		json_array_append_new(ports, e);
	}
	pthread_mutex_lock(&s->lock);
	for (unsigned i = 0; i < s->pool.n; i++)
		json_array_append_new(workers, sw_worker_json(s, i));
	o = json_pack("{s:s, s:f, s:o, s:I, s:o}", "mode", sw_mode_names[s->mode],
		      "interval_s", secs, "ports", ports, "fdb_entries",
		      (json_int_t)sw_fdb_count(s), "workers", workers);
	pthread_mutex_unlock(&s->lock);
	return o;
}

/* Top-level keys one per line and each array element (a port, a worker)
 * on a line of its own, every value dumped by jansson: line-oriented tools
 * (scripts/soak's sampler) can read it as well as JSON parsers. */
static int dump_lines(FILE *f, json_t *o)
{
	const char *key;
	json_t *v;
	size_t n = json_object_size(o), i = 0;

	fputs("{\n", f);
	json_object_foreach(o, key, v) {
		json_t *ks = json_string(key);
		char *kt = ks ? json_dumps(ks, JSON_ENCODE_ANY) : NULL;

		json_decref(ks);
		if (!kt)
			return -1;
		fprintf(f, "  %s: ", kt);
		free(kt);
		if (json_is_array(v)) {
			size_t j;
			json_t *e;

			fputs("[\n", f);
			json_array_foreach(v, j, e) {
				char *t = json_dumps(e, 0); /* ", " and ": ": the old layout */

				if (!t)
					return -1;
				fprintf(f, "    %s%s\n", t, j + 1 < json_array_size(v) ? "," : "");
				free(t);
			}
			fputs("  ]", f);
		} else {
			char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

			if (!t)
				return -1;
			fputs(t, f);
			free(t);
		}
		fprintf(f, "%s\n", ++i < n ? "," : "");
	}
	fputs("}\n", f);
	return 0;
}

/* Written to PATH.tmp and renamed over PATH so a reader never sees half a
 * file. */
void sw_stats_write_json(struct sw *s, const char *path, const struct snap *cur,
			 const struct snap *prev)
{
	char tmp[PATH_MAX];
	json_t *o;
	FILE *f;
	int r;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return;
	o = sw_stats_json(s, cur, prev);
	f = o ? fopen(tmp, "w") : NULL;
	if (!f) {
		VRE_WARN("switch", "--stats-json: %s: %s", tmp, o ? strerror(errno) : "out of memory");
		json_decref(o);
		return;
	}
	r = dump_lines(f, o);
	json_decref(o);
	if (fclose(f) != 0 || r < 0 || rename(tmp, path) != 0) {
		VRE_WARN("switch", "--stats-json: cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
	}
}
