/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vre-switch's counters: snapshots of every port's totals, the table it
 * prints (per interval, on SIGUSR1, at exit) and the same numbers as a JSON
 * file (--stats-json).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "vre_log.h"

uint64_t sw_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void sw_snap_take(struct sw *s, struct snap *sn)
{
	for (unsigned i = 0; i < s->nports; i++)
		sw_port_totals(s, &s->ports[i], &sn->port[i]);
	sn->ns = sw_now_ns();
}

static const char *port_kind(const struct sw_port *p)
{
	return p->eth ? "ethdev" : "vhost";
}

static const char *port_name(const struct sw_port *p)
{
	return p->eth ? p->eth_name : p->path;
}

static double rate(uint64_t now, uint64_t then, double secs)
{
	return secs > 0 ? (double)(now - then) / secs / 1e6 : 0.0;
}

/* The port table: one line per port and per worker, on one screen. Rates
 * are over the last interval when prev is given. Columns are "key value"
 * pairs so scripts (the integration tests) can parse them. rx is what the
 * switch delivered to the port, tx what it took from it (the guest's view,
 * also for ethdev ports). */
void sw_stats_print(struct sw *s, const struct snap *cur, const struct snap *prev,
		    const char *tag)
{
	double secs = prev ? (double)(cur->ns - prev->ns) / 1e9 : 0;
	uint64_t hz = vre_tsc_hz();

	for (unsigned i = 0; i < s->nports; i++) {
		const struct sw_port_totals *t = &cur->port[i];
		const struct sw_port_totals *o = prev ? &prev->port[i] : t;

		printf("%s port %u: rx-pkts %" PRIu64 " rx-bytes %" PRIu64 " tx-pkts %" PRIu64
		       " tx-bytes %" PRIu64 " drops %" PRIu64 " drop-no-dst %" PRIu64
		       " drop-no-rx-buf %" PRIu64 " drop-bad %" PRIu64
		       " | rx-mpps %.3f tx-mpps %.3f rx-gbps %.3f | %s %s\n",
		       tag, i, t->rx_pkts, t->rx_bytes, t->tx_pkts, t->tx_bytes, t->drops,
		       t->drop_no_dst, t->drop_no_rx_buf, t->drop_bad,
		       rate(t->rx_pkts, o->rx_pkts, secs), rate(t->tx_pkts, o->tx_pkts, secs),
		       secs > 0 ? (double)(t->rx_bytes - o->rx_bytes) * 8 / secs / 1e9 : 0.0,
		       port_kind(&s->ports[i]), port_name(&s->ports[i]));
	}
	if (s->fdb)
		printf("%s fdb: %" PRIu64 " MAC addresses learned\n", tag, sw_fdb_count(s->fdb));
	for (unsigned i = 0; i < s->pool.n; i++) {
		struct vre_worker_stats st;

		vre_worker_get_stats(s->pool.w[i], &st);
		printf("%s worker %u cpu %d: packets %" PRIu64 " busy-cycles %" PRIu64
		       " cycles/pkt %.1f busy-ms %.1f polls %" PRIu64 " empty-polls %" PRIu64
		       " sleeps %" PRIu64 " wakeups %" PRIu64 "\n",
		       tag, i, vre_worker_cpu(s->pool.w[i]), st.packets, st.busy_cycles,
		       st.packets ? (double)st.busy_cycles / (double)st.packets : 0.0,
		       (double)st.busy_cycles * 1e3 / (double)hz, st.polls, st.empty_polls,
		       st.sleeps, st.wakeups);
	}
	fflush(stdout);
}

static void json_str(FILE *f, const char *v)
{
	fputc('"', f);
	for (; *v; v++) {
		if (*v == '"' || *v == '\\')
			fprintf(f, "\\%c", *v);
		else if ((unsigned char)*v < 0x20)
			fprintf(f, "\\u%04x", (unsigned char)*v);
		else
			fputc(*v, f);
	}
	fputc('"', f);
}

/* Every counter as one JSON object, written to PATH.tmp and renamed over
 * PATH so a reader never sees half a file. */
void sw_stats_write_json(struct sw *s, const char *path, const struct snap *cur,
			 const struct snap *prev)
{
	char tmp[PATH_MAX];
	double secs = prev ? (double)(cur->ns - prev->ns) / 1e9 : 0;
	FILE *f;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return;
	f = fopen(tmp, "w");
	if (!f) {
		VRE_WARN("switch", "--stats-json: %s: %s", tmp, strerror(errno));
		return;
	}
	fprintf(f, "{\n  \"mode\": \"%s\",\n  \"interval_s\": %.3f,\n  \"ports\": [\n",
		(const char *[]){ "loopback", "xconnect", "learn" }[s->mode], secs);
	for (unsigned i = 0; i < s->nports; i++) {
		const struct sw_port_totals *t = &cur->port[i];
		const struct sw_port_totals *o = prev ? &prev->port[i] : t;

		fprintf(f, "    {\"port\": %u, \"kind\": \"%s\", \"name\": ", i,
			port_kind(&s->ports[i]));
		json_str(f, port_name(&s->ports[i]));
		fprintf(f, ", \"rx_pkts\": %" PRIu64 ", \"rx_bytes\": %" PRIu64
			", \"tx_pkts\": %" PRIu64 ", \"tx_bytes\": %" PRIu64
			", \"drops\": %" PRIu64 ", \"drop_no_dst\": %" PRIu64
			", \"drop_no_rx_buf\": %" PRIu64 ", \"drop_bad\": %" PRIu64
			", \"notify_saturated\": %" PRIu64
			", \"rx_mpps\": %.6f, \"tx_mpps\": %.6f}%s\n",
			t->rx_pkts, t->rx_bytes, t->tx_pkts, t->tx_bytes, t->drops,
			t->drop_no_dst, t->drop_no_rx_buf, t->drop_bad, t->notify_saturated,
			rate(t->rx_pkts, o->rx_pkts, secs), rate(t->tx_pkts, o->tx_pkts, secs),
			i + 1 < s->nports ? "," : "");
	}
	fprintf(f, "  ],\n  \"fdb_entries\": %" PRIu64 ",\n  \"workers\": [\n",
		sw_fdb_count(s->fdb));
	for (unsigned i = 0; i < s->pool.n; i++) {
		struct vre_worker_stats st;

		vre_worker_get_stats(s->pool.w[i], &st);
		fprintf(f, "    {\"worker\": %u, \"cpu\": %d, \"packets\": %" PRIu64
			", \"busy_cycles\": %" PRIu64 ", \"cycles_per_pkt\": %.1f, \"polls\": %" PRIu64
			", \"empty_polls\": %" PRIu64 ", \"sleeps\": %" PRIu64 ", \"wakeups\": %" PRIu64
			"}%s\n",
			i, vre_worker_cpu(s->pool.w[i]), st.packets, st.busy_cycles,
			st.packets ? (double)st.busy_cycles / (double)st.packets : 0.0, st.polls,
			st.empty_polls, st.sleeps, st.wakeups, i + 1 < s->pool.n ? "," : "");
	}
	fprintf(f, "  ]\n}\n");
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		VRE_WARN("switch", "--stats-json: cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
	}
}
