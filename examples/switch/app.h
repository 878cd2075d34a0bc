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

/* Fills s (ports, mode, pins) and o from --config and the command line
 * (argv[0] is the program; EAL options already cut off). A bad option
 * prints one line and exits with EXIT_USAGE. */
void sw_parse_options(struct sw *s, struct opts *o, int argc, char **argv);

/* Every port's totals at one moment. */
struct snap {
	struct sw_port_totals port[SW_MAX_PORTS];
	uint64_t ns;
};

uint64_t sw_now_ns(void); /* CLOCK_MONOTONIC */
void sw_snap_take(struct sw *s, struct snap *sn);
/* The port and worker table on stdout, each line starting with tag; rates
 * over the interval since prev (none when prev is NULL). */
void sw_stats_print(struct sw *s, const struct snap *cur, const struct snap *prev,
		    const char *tag);
/* The same as one JSON object in path (written whole, then renamed). */
void sw_stats_write_json(struct sw *s, const char *path, const struct snap *cur,
			 const struct snap *prev);

#endif
