/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the vre-switch program's files share: its options (options.c fills
 * them), counter snapshots (stats.c) and the run loop (main.c) that uses
 * both. The switch itself (ports, forwarding, learning) is switch.h.
 */
#ifndef SW_APP_H
#define SW_APP_H

#include <stdbool.h>
#include <stdint.h>

#include "switch.h"

#define PROG "vre-switch"
#define EXIT_USAGE 2

struct opts {
	struct sw_port_spec *ports;  /* --vhost and --ethdev, in the order given */
	unsigned nports;
	const char *ctl;             /* control socket path, or "none" */
	bool ctl_gid_set;
	gid_t ctl_gid;
	enum vre_poll_mode poll;
	const char *workers;
	unsigned stats_interval;
	unsigned aging;
	const char *stats_json;
	const char *log_level;
	unsigned msg_timeout_ms;   /* vre_server_set_msg_timeout */
	bool have_eal;
	char *pins[64];
	unsigned npins;
};

/* Fills s (mode) and o (port specs with their pins, everything else) from
 * --config and the command line (argv[0] is the program; EAL options
 * already cut off). A bad option prints one line and exits with
 * EXIT_USAGE. */
void sw_parse_options(struct sw *s, struct opts *o, int argc, char **argv);

/* Every port's totals at one moment, with what the table shows of each
 * (copied: the port may be gone when the snapshot is printed). */
struct snap_port {
	unsigned idx;
	uint32_t gen;
	bool eth;
	char name[SW_NAME_MAX];
	char where[128];             /* socket path or ethdev device name */
	struct sw_port_totals t;
};
struct snap {
	uint64_t ns;
	unsigned n, cap;
	struct snap_port *p;
};

uint64_t sw_now_ns(void); /* CLOCK_MONOTONIC */
/* Takes the snapshot (s->lock taken inside); -ENOMEM keeps the last one. */
int sw_snap_take(struct sw *s, struct snap *sn);
void sw_snap_free(struct snap *sn);
/* The port and worker table on stdout, each line starting with tag; rates
 * over the interval since prev (none when prev is NULL). */
void sw_stats_print(struct sw *s, const struct snap *cur, const struct snap *prev,
		    const char *tag);
/* The same as one JSON object (jansson; the caller owns the reference);
 * the stats method returns it too. */
struct json_t;
struct json_t *sw_stats_json(struct sw *s, const struct snap *cur, const struct snap *prev);
/* One port's counters as a JSON object (stats, port-list, port-show). */
struct json_t *sw_port_counters_json(const struct sw_port_totals *t);
/* A worker's busy cycles per packet, told only over at least
 * SW_CPP_MIN_PACKETS packets: the passes that carried a few packets each
 * polled every queue, from a cold cache after idling, so 3 packets after a
 * second of idle polling read as a huge per-packet cost that no forwarding
 * has. Below it the text says "-", JSON null and telemetry 0. */
#define SW_CPP_MIN_PACKETS 1000
bool sw_cycles_per_pkt(const struct vre_worker_stats *st, double *cpp);
/* One worker's line as a JSON object (stats, worker-list). s->lock held. */
struct json_t *sw_worker_json(struct sw *s, unsigned i);
/* sw_stats_json written to path (to PATH.tmp, then renamed). */
void sw_stats_write_json(struct sw *s, const char *path, const struct snap *cur,
			 const struct snap *prev);
extern const char *const sw_mode_names[];

#endif
