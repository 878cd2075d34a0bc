/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vre-switch's counters for DPDK telemetry, so DPDK's own client reads
 * them (dpdk-telemetry.py -f vre-switch, then for example /vre/ports):
 *   /vre/info        mode, version, how many ports and workers
 *   /vre/ports[,N]   the numbers of the existing ports, from N on (a
 *                    telemetry array holds at most 512: ask again from the
 *                    last number + 1 for the rest)
 *   /vre/port,N      port N: name, kind, path or device, counters
 *   /vre/workers     per counter an array indexed by worker: cpu, poll
 *                    items, packets, busy cycles, cycles per packet (x100,
 *                    an integer; 0 below SW_CPP_MIN_PACKETS packets), polls,
 *                    empty polls, sleeps, wakeups
 * The callbacks run on DPDK's telemetry thread and read under s->lock.
 * DPDK 22.11 has no per-command context pointer, hence the one static.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_telemetry.h>
#include <rte_version.h>

#include "app.h"
#include "vre_version.h"
#include "ctl_server.h"

static struct sw *tel_sw;

static bool off(struct sw *s)
{
	return !s || s->tel_off;
}

static int t_info(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct sw *s = tel_sw;

	(void)cmd, (void)params;
	rte_tel_data_start_dict(d);
	pthread_mutex_lock(&s->lock);
	if (!off(s)) {
		rte_tel_data_add_dict_string(d, "version", VRE_VERSION);
		rte_tel_data_add_dict_string(d, "dpdk", rte_version());
		rte_tel_data_add_dict_string(d, "mode", sw_mode_names[s->mode]);
		rte_tel_data_add_dict_u64(d, "ports", s->nports);
		rte_tel_data_add_dict_u64(d, "vhost_ports", s->nvhost);
		rte_tel_data_add_dict_u64(d, "workers", s->pool.n);
	}
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int t_ports(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct sw *s = tel_sw;
	unsigned long from = params && *params ? strtoul(params, NULL, 10) : 0;
	unsigned n = 0;

	(void)cmd;
	rte_tel_data_start_array(d, RTE_TEL_INT_VAL);
	pthread_mutex_lock(&s->lock);
	for (unsigned i = (unsigned)from; !off(s) && i < s->cap && n < RTE_TEL_MAX_ARRAY_ENTRIES; i++)
		if (s->ports[i]) {
			rte_tel_data_add_array_int(d, (int)i);
			n++;
		}
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int t_port(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct sw *s = tel_sw;
	struct sw_port_totals t;
	struct sw_port *p;
	char *end;
	unsigned long n;
	int r = 0;

	(void)cmd;
	if (!params || !*params)
		return -EINVAL;
	n = strtoul(params, &end, 10);
	if (*end)
		return -EINVAL;
	rte_tel_data_start_dict(d);
	pthread_mutex_lock(&s->lock);
	p = !off(s) && n < s->cap ? s->ports[n] : NULL;
	if (!p) {
		r = -ENOENT;
	} else {
		sw_port_totals(s, p, &t);
		rte_tel_data_add_dict_u64(d, "port", p->idx);
		rte_tel_data_add_dict_string(d, "name", p->name);
		rte_tel_data_add_dict_string(d, "kind", p->eth ? "ethdev" : "vhost");
		rte_tel_data_add_dict_string(d, p->eth ? "device" : "path",
					     p->eth ? p->eth_name : p->path);
		rte_tel_data_add_dict_u64(d, "rx_pkts", t.rx_pkts);
		rte_tel_data_add_dict_u64(d, "rx_bytes", t.rx_bytes);
		rte_tel_data_add_dict_u64(d, "tx_pkts", t.tx_pkts);
		rte_tel_data_add_dict_u64(d, "tx_bytes", t.tx_bytes);
		rte_tel_data_add_dict_u64(d, "drops", t.drops);
		rte_tel_data_add_dict_u64(d, "drop_no_dst", t.drop_no_dst);
		rte_tel_data_add_dict_u64(d, "drop_no_rx_buf", t.drop_no_rx_buf);
		rte_tel_data_add_dict_u64(d, "drop_bad", t.drop_bad);
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* One array per counter, indexed by worker (DPDK 22.11 nests arrays only). */
static int t_workers(const char *cmd, const char *params, struct rte_tel_data *d)
{
	static const char *const names[] = { "cpu", "items", "packets", "busy_cycles",
					     "cycles_per_pkt_x100", "polls", "empty_polls",
					     "sleeps", "wakeups" };
	enum { NCOL = sizeof(names) / sizeof(names[0]) };
	struct rte_tel_data *col[NCOL];
	struct sw *s = tel_sw;
	int r = 0;

	(void)cmd, (void)params;
	rte_tel_data_start_dict(d);
	for (unsigned c = 0; c < NCOL; c++) {
		col[c] = rte_tel_data_alloc();
		if (!col[c]) {
			while (c--)
				rte_tel_data_free(col[c]);
			return -ENOMEM;
		}
		rte_tel_data_start_array(col[c], RTE_TEL_U64_VAL);
	}
	pthread_mutex_lock(&s->lock);
	for (unsigned i = 0; !off(s) && i < s->pool.n; i++) {
		struct vre_worker_stats st;
		uint64_t v[NCOL];
		double cpp;

		sw_worker_stats(s, i, &st);
		v[0] = (uint64_t)vre_worker_cpu(s->pool.w[i]);
		v[1] = vre_worker_num_items(s->pool.w[i]);
		v[2] = st.packets;
		v[3] = st.busy_cycles;
		v[4] = sw_cycles_per_pkt(&st, &cpp) ? (uint64_t)(cpp * 100) : 0;
		v[5] = st.polls;
		v[6] = st.empty_polls;
		v[7] = st.sleeps;
		v[8] = st.wakeups;
		for (unsigned c = 0; c < NCOL; c++)
			rte_tel_data_add_array_u64(col[c], v[c]);
	}
	pthread_mutex_unlock(&s->lock);
	for (unsigned c = 0; c < NCOL; c++)
		if (rte_tel_data_add_dict_container(d, names[c], col[c], 0) < 0) {
			rte_tel_data_free(col[c]);
			r = -ENOMEM;
		}
	return r;
}

int sw_telemetry_register(struct sw *s)
{
	int r;

	tel_sw = s;
	r = rte_telemetry_register_cmd("/vre/info", t_info,
				       "vre-switch: mode, version, ports, workers. No parameters");
	r = r ?: rte_telemetry_register_cmd("/vre/ports", t_ports,
					    "vre-switch: the existing port numbers. Parameter: the "
					    "first number to list (default 0)");
	r = r ?: rte_telemetry_register_cmd("/vre/port", t_port,
					    "vre-switch: one port's counters. Parameter: port number");
	r = r ?: rte_telemetry_register_cmd("/vre/workers", t_workers,
					    "vre-switch: per worker counters. No parameters");
	return r;
}

void sw_telemetry_off(struct sw *s)
{
	pthread_mutex_lock(&s->lock);
	s->tel_off = true;
	pthread_mutex_unlock(&s->lock);
}
