/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vre-switch [EAL options --] [--config FILE] --vhost PATH[,client][,queues=N] ... [options]
 *
 * Serves vhost-user ports with VRE's control plane (not DPDK's vhost
 * library) and DPDK ethdev ports (whatever the EAL probed), and forwards
 * with VRE's workers; see switch.h for the design and usage() for the
 * options. The EAL is initialised (with quiet defaults when no EAL options
 * are given) so workers are DPDK threads.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_ethdev.h>

#include "switch.h"
#include "vre_log.h"
#include "vre_worker_dpdk.h"

#define PROG "vre-switch"
#define EXIT_USAGE 2

struct opts {
	enum vre_poll_mode poll;
	const char *workers;
	unsigned stats_interval;
	unsigned aging;
	const char *stats_json;
	const char *log_level;
	bool have_eal;
	char *pins[64];
	unsigned npins;
};

/* Where the option being applied came from, for bad()'s message:
 * "FILE:LINE: " while reading --config, "" on the command line. */
static char where[PATH_MAX + 32];

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " [EAL options --] [--config FILE] --vhost PATH[,client][,queues=N] ... [options]\n"
		"  --vhost PATH[,client][,queues=N]  a vhost-user port (server socket unless client;\n"
		"                                    N queue pairs, default 1); repeatable\n"
		"  (EAL options)                     every DPDK ethdev port the EAL probes (--vdev\n"
		"                                    net_ring0, --vdev net_tap0, -a PCI, ...) is a\n"
		"                                    switch port too: one RX and one TX queue on the\n"
		"                                    first worker, which sleeps on RX interrupts when\n"
		"                                    idle (net_tap, NICs) or naps up to 1 ms (others)\n"
		"  Port numbers: vhost ports 0..V-1 in command-line order, then ethdev ports V..\n"
		"  in DPDK port order; xconnect pairs and the tables use these numbers.\n"
		"  --mode learn|xconnect|loopback    learn: a MAC-learning bridge over all ports, on\n"
		"                                    the first worker (default);\n"
		"                                    xconnect: ports 0<->1, 2<->3, ...;\n"
		"                                    loopback: a port's TX to its own RX\n"
		"  --aging SECONDS                   learn: forget a MAC silent this long (default 300)\n"
		"  --workers CPULIST                 one pinned worker per CPU (default: the last CPU)\n"
		"  --pin PORT:PAIR=WORKER            put a queue pair's RX (and its feeders) on the\n"
		"                                    WORKER-th worker instead of round-robin\n"
		"  --poll poll|adaptive|interrupt    polling policy (default adaptive)\n"
		"  --stats-interval SECONDS          print the port table every SECONDS (default 0:\n"
		"                                    at exit only); SIGUSR1 prints it at any time.\n"
		"                                    rx: packets the switch gave the port, tx: taken\n"
		"                                    from it; drops by reason; worker cycles/packet\n"
		"  --stats-json PATH                 write every counter as JSON to PATH (replaced\n"
		"                                    atomically) every interval, on SIGUSR1 and at exit\n"
		"  --log-level err|warn|info|debug   (default info)\n"
		"  --config FILE                     read options from FILE first: one 'option value'\n"
		"                                    per line (long option names without '--'),\n"
		"                                    '#' starts a comment; repeatable options (vhost,\n"
		"                                    pin) add up, the command line overrides the rest\n"
		"Without EAL options, the EAL runs with --no-pci --no-huge --no-shconf (no files left behind).\n"
		"Exit codes: 0 after SIGINT/SIGTERM; 2 for a bad command line, config file, EAL option\n"
		"or port (nothing is left behind); 1 for other failures.\n");
}

/* One line, exit 2: nothing has been created yet, so nothing to clean. */
static void __attribute__((noreturn, format(printf, 1, 2))) bad(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	fputs(where, stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see --help)\n", stderr);
	exit(EXIT_USAGE);
}

static long parse_num(const char *s, long lo, long hi, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		bad("%s: '%s' is not a number in %ld..%ld", what, s, lo, hi);
	return v;
}

static void parse_vhost(struct sw *s, char *arg)
{
	struct sw_port *p;
	char *save = NULL, *tok;

	if (s->nports == SW_MAX_PORTS)
		bad("at most %d --vhost ports", SW_MAX_PORTS);
	p = &s->ports[s->nports];
	p->sw = s;
	p->idx = s->nports;
	p->pairs = 1;
	for (int i = 0; i < SW_MAX_PAIRS; i++)
		p->pin[i] = -1;
	tok = strtok_r(arg, ",", &save);
	if (!tok || !*tok)
		bad("--vhost needs a socket path");
	if (strlen(tok) >= 108)
		bad("--vhost: socket path too long: %s", tok);
	p->path = tok;
	while ((tok = strtok_r(NULL, ",", &save))) {
		if (strcmp(tok, "client") == 0)
			p->client = true;
		else if (strncmp(tok, "queues=", 7) == 0)
			p->pairs = (uint16_t)parse_num(tok + 7, 1, SW_MAX_PAIRS, "--vhost queues");
		else
			bad("--vhost: unknown option '%s'", tok);
	}
	for (unsigned i = 0; i < s->nports; i++)
		if (strcmp(s->ports[i].path, p->path) == 0)
			bad("--vhost: %s given twice", p->path);
	s->nports++;
}

static void parse_pin(struct sw *s, const char *arg)
{
	unsigned port, pair, w;
	char tail;

	if (sscanf(arg, "%u:%u=%u%c", &port, &pair, &w, &tail) != 3)
		bad("--pin: expected PORT:PAIR=WORKER, got '%s'", arg);
	if (port >= s->nports)
		bad("--pin: port %u is not defined (give --vhost first)", port);
	if (pair >= s->ports[port].pairs)
		bad("--pin: port %u has no pair %u", port, pair);
	s->ports[port].pin[pair] = (int)w;
}

/* Checks every CPU of the list against this process's affinity, before the
 * EAL pins the main thread. */
static void check_cpus(const char *list)
{
	char why[96];
	const char *problem = vre_cpulist_problem(list, why, sizeof(why));

	if (problem)
		bad("--workers: %s", problem);
}

static const char *default_cpu(void)
{
	static char buf[16];

	snprintf(buf, sizeof(buf), "%d", vre_cpu_last_allowed());
	return buf;
}

enum { O_VHOST = 256, O_MODE, O_WORKERS, O_POLL, O_STATS, O_LOG, O_PIN, O_HELP, O_AGING,
       O_JSON, O_CONFIG };
static const struct option long_opts[] = {
	{ "vhost", required_argument, NULL, O_VHOST },
	{ "mode", required_argument, NULL, O_MODE },
	{ "aging", required_argument, NULL, O_AGING },
	{ "workers", required_argument, NULL, O_WORKERS },
	{ "pin", required_argument, NULL, O_PIN },
	{ "poll", required_argument, NULL, O_POLL },
	{ "stats-interval", required_argument, NULL, O_STATS },
	{ "stats-json", required_argument, NULL, O_JSON },
	{ "log-level", required_argument, NULL, O_LOG },
	{ "config", required_argument, NULL, O_CONFIG },
	{ "help", no_argument, NULL, O_HELP },
	{ NULL, 0, NULL, 0 },
};

/* One option, from the command line or a config line. arg must outlive
 * the parse (--vhost keeps pointers into it). */
static void apply_opt(struct sw *s, struct opts *o, int c, char *arg)
{
	switch (c) {
	case O_VHOST:
		parse_vhost(s, arg);
		break;
	case O_MODE:
		if (strcmp(arg, "loopback") == 0)
			s->mode = SW_LOOPBACK;
		else if (strcmp(arg, "xconnect") == 0)
			s->mode = SW_XCONNECT;
		else if (strcmp(arg, "learn") == 0)
			s->mode = SW_LEARN;
		else
			bad("--mode: '%s' is not learn, xconnect or loopback", arg);
		break;
	case O_AGING:
		o->aging = (unsigned)parse_num(arg, 1, 86400 * 365, "--aging");
		break;
	case O_WORKERS:
		o->workers = arg;
		break;
	case O_PIN:
		if (o->npins == 64)
			bad("too many --pin");
		o->pins[o->npins++] = arg;
		break;
	case O_POLL:
		if (vre_poll_mode_parse(arg) < 0)
			bad("--poll: '%s' is not poll, adaptive or interrupt", arg);
		o->poll = (enum vre_poll_mode)vre_poll_mode_parse(arg);
		break;
	case O_STATS:
		o->stats_interval = (unsigned)parse_num(arg, 0, 86400, "--stats-interval");
		break;
	case O_JSON:
		if (!*arg)
			bad("--stats-json needs a path");
		o->stats_json = arg;
		break;
	case O_LOG:
		if (vre_log_parse_level(arg) < 0)
			bad("--log-level: '%s' is not err, warn, info or debug", arg);
		o->log_level = arg;
		break;
	case O_CONFIG:
		break; /* read before everything else (read_config) */
	case O_HELP:
		usage(stdout);
		exit(0);
	}
}

/* --config FILE: "option value" per line, '#' comments, blank lines. The
 * values are kept (parse_vhost and --workers point into them) until exit. */
static char *cfg_vals[256];
static unsigned ncfg_vals;

static void read_config(struct sw *s, struct opts *o, const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	unsigned ln = 0;

	if (!f)
		bad("--config: cannot read %s: %s", path, strerror(errno));
	while (getline(&line, &cap, f) >= 0) {
		char *name, *val, *end, *hash = strchr(line, '#');
		const struct option *op;

		ln++;
		snprintf(where, sizeof(where), "%s:%u: ", path, ln);
		if (hash)
			*hash = 0;
		name = line + strspn(line, " \t\r\n");
		if (!*name)
			continue;
		end = name + strcspn(name, " \t\r\n");
		val = end + strspn(end, " \t\r\n");
		*end = 0;
		/* the value: the rest of the line, trailing blanks cut */
		for (end = val + strlen(val); end > val && strchr(" \t\r\n", end[-1]); end--)
			;
		*end = 0;
		if (strncmp(name, "--", 2) == 0)
			name += 2;
		for (op = long_opts; op->name && strcmp(op->name, name) != 0; op++)
			;
		if (!op->name || op->val == O_HELP || op->val == O_CONFIG)
			bad("unknown option '%s'", name);
		if (!*val)
			bad("%s needs a value", name);
		if (ncfg_vals == sizeof(cfg_vals) / sizeof(cfg_vals[0]))
			bad("too many options (at most %zu)", sizeof(cfg_vals) / sizeof(cfg_vals[0]));
		if (!(cfg_vals[ncfg_vals] = strdup(val)))
			bad("out of memory");
		apply_opt(s, o, op->val, cfg_vals[ncfg_vals++]);
	}
	free(line);
	if (ferror(f))
		bad("--config: error reading %s", path);
	fclose(f);
	where[0] = 0;
}

/* The last --config of the command line, looked up before the rest so the
 * command line can override it. */
static const char *find_config(int argc, char **argv)
{
	const char *cfg = NULL;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			cfg = argv[++i];
		else if (strncmp(argv[i], "--config=", 9) == 0)
			cfg = argv[i] + 9;
	}
	return cfg;
}

static void parse_app(struct sw *s, struct opts *o, int argc, char **argv)
{
	const char *cfg = find_config(argc, argv);
	int c;

	o->poll = VRE_POLL_ADAPTIVE;
	o->aging = 300;
	s->mode = SW_LEARN;
	if (cfg)
		read_config(s, o, cfg);
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":", long_opts, NULL)) != -1) {
		if (c == ':')
			bad("%s needs an argument", argv[optind - 1]);
		if (c == '?')
			bad("unknown option '%s'", argv[optind - 1]);
		apply_opt(s, o, c, optarg);
	}
	if (optind < argc)
		bad("unexpected argument '%s'", argv[optind]);
	/* ethdev ports are only known after the EAL probed them */
	if (s->nports == 0 && !o->have_eal)
		bad("no ports: give at least one --vhost PATH (or EAL options with --vdev)");
	if (s->mode == SW_XCONNECT && s->nports % 2 && !o->have_eal)
		bad("--mode xconnect needs an even number of ports, got %u", s->nports);
	if (!o->workers)
		o->workers = default_cpu();
	check_cpus(o->workers);
	if (s->mode == SW_LEARN && o->npins)
		bad("--pin does not apply to --mode learn (one worker owns every queue)");
	for (unsigned i = 0; i < o->npins; i++)
		parse_pin(s, o->pins[i]);
}

static const char *const mode_names[] = { "loopback", "xconnect", "learn" };

/* ---- EAL ---- */

static int eal_init(int argc, char **argv, bool have_eal_args)
{
	char lcore[32];
	char *def[] = { argv[0], "--no-pci", "--no-huge", "--no-shconf", "-m", "64",
			"--no-telemetry", "--log-level=lib.eal:warning", "-l", lcore, NULL };
	int r;

	if (have_eal_args)
		return rte_eal_init(argc, argv);
	/* The main thread only prints counters: the first CPU will do. */
	snprintf(lcore, sizeof(lcore), "%s", "0");
	{
		cpu_set_t set;

		if (sched_getaffinity(0, sizeof(set), &set) == 0)
			for (int i = 0; i < CPU_SETSIZE; i++)
				if (CPU_ISSET(i, &set)) {
					snprintf(lcore, sizeof(lcore), "%d", i);
					break;
				}
	}
	r = rte_eal_init((int)(sizeof(def) / sizeof(def[0])) - 1, def);
	return r;
}

/* ---- counters ---- */

struct snap {
	struct sw_port_totals port[SW_MAX_PORTS];
	uint64_t ns;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void take_snap(struct sw *s, struct snap *sn)
{
	for (unsigned i = 0; i < s->nports; i++)
		sw_port_totals(s, &s->ports[i], &sn->port[i]);
	sn->ns = now_ns();
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
static void print_stats(struct sw *s, const struct snap *cur, const struct snap *prev,
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
static void write_json(struct sw *s, const char *path, const struct snap *cur,
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
			", \"rx_mpps\": %.6f, \"tx_mpps\": %.6f}%s\n",
			t->rx_pkts, t->rx_bytes, t->tx_pkts, t->tx_bytes, t->drops,
			t->drop_no_dst, t->drop_no_rx_buf, t->drop_bad,
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

/* ---- ports ---- */

static int open_ports(struct sw *s)
{
	for (unsigned i = 0; i < s->nvhost; i++) {
		struct sw_port *p = &s->ports[i];
		struct vre_net_config nc = {
			.mac = { 0x02, 0x56, 0x52, 0x45, 0x00, (uint8_t)(i + 1) },
			.max_queue_pairs = p->pairs,
		};
		struct vre_dev_config dc = { .path = p->path, .client = p->client };
		int err = vre_net_dev_create(&nc, &sw_app_ops, s, &p->net);

		if (err < 0) {
			fprintf(stderr, PROG ": port %u: %s\n", i, strerror(-err));
			return err;
		}
		dc.ops = vre_net_dev_ops(p->net);
		dc.ctx = p->net;
		err = vre_dev_create(s->server, &dc, &p->dev);
		if (err < 0) {
			fprintf(stderr, PROG ": %s: %s\n", p->path, strerror(-err));
			return err;
		}
		vre_net_dev_set_control(p->net, p->dev);
	}
	return 0;
}

/* Destroying the server stops every running queue (queue_stop takes the
 * items off the workers) and removes the sockets; the net devices keep
 * their counters until close_ports. */
static void stop_server(struct sw *s)
{
	vre_server_destroy(s->server);
	s->server = NULL;
}

static void close_ports(struct sw *s)
{
	for (unsigned i = 0; i < s->nvhost; i++) {
		vre_net_dev_destroy(s->ports[i].net);
		s->ports[i].net = NULL;
	}
}

/* Waits for a signal of set until deadline_ns (0: forever). Returns the
 * signal, or -1 at the deadline. */
static int wait_signal(const sigset_t *set, uint64_t deadline_ns)
{
	int sig;

	do {
		uint64_t now = now_ns();
		struct timespec ts;

		if (!deadline_ns) {
			sig = sigwaitinfo(set, NULL);
			continue;
		}
		if (now >= deadline_ns)
			return -1;
		ts.tv_sec = (time_t)((deadline_ns - now) / 1000000000u);
		ts.tv_nsec = (long)((deadline_ns - now) % 1000000000u);
		sig = sigtimedwait(set, NULL, &ts);
		if (sig < 0 && errno == EAGAIN)
			return -1;
	} while (sig < 0);
	return sig;
}

/* The switch's life after the ports are known: prints the table every
 * interval and on SIGUSR1 (taken synchronously by sigtimedwait, so no
 * handler runs in signal context), stops on SIGINT/SIGTERM. */
static void serve(struct sw *s, const struct opts *o, const sigset_t *set, struct snap *cur,
		  struct snap *prev)
{
	uint64_t period = (uint64_t)o->stats_interval * 1000000000u;
	uint64_t next = period ? now_ns() + period : 0;
	struct snap *t;
	int sig;

	take_snap(s, prev);
	while ((sig = wait_signal(set, next)) < 0 || sig == SIGUSR1) {
		take_snap(s, cur);
		print_stats(s, cur, prev, sig == SIGUSR1 ? "now" : "stats");
		if (o->stats_json)
			write_json(s, o->stats_json, cur, prev);
		if (sig == SIGUSR1)
			continue; /* on demand: the interval's baseline stays */
		t = prev, prev = cur, cur = t;
		next += period;
		if (next < now_ns()) /* stopped for a while: no burst of catch-up lines */
			next = now_ns() + period;
	}
	printf(PROG ": signal received, stopping\n");
}

/* Checks that need the ethdev ports: a failure is a usage error (2). */
static int check_ports(struct sw *s, unsigned neth)
{
	unsigned n = s->nports + neth;

	s->nvhost = s->nports;

	if (n == 0) {
		fprintf(stderr, PROG ": no ports: give --vhost PATH or EAL options with --vdev\n");
		return -EINVAL;
	}
	if (s->mode == SW_XCONNECT && n % 2) {
		fprintf(stderr, PROG ": --mode xconnect needs an even number of ports, got %u "
			"(%u vhost + %u ethdev)\n", n, s->nports, neth);
		return -EINVAL;
	}
	return 0;
}

/* Returns 0, or the exit code. */
static int run(struct sw *s, const struct opts *o, const sigset_t *set)
{
	struct vre_worker_config tmpl = { .mode = o->poll,
					  .thread_init = vre_worker_dpdk_init,
					  .thread_fini = vre_worker_dpdk_fini };
	struct snap *a = calloc(2, sizeof(*a)), *cur = a, *prev = a + 1;
	int cpus[64];
	int err, code = 1;

	if (!a)
		return 1;
	/* ethdev ports before any socket or thread exists: a bad port leaves
	 * nothing behind and prints only its own line */
	err = check_ports(s, rte_eth_dev_count_avail());
	if (err == 0)
		err = sw_eth_open(s, (unsigned)vre_cpulist_parse(o->workers, cpus, 64));
	if (err < 0) {
		sw_eth_close(s);
		free(a);
		return EXIT_USAGE;
	}
	err = vre_worker_pool_create(&s->pool, o->workers, &tmpl);
	if (err < 0) {
		fprintf(stderr, PROG ": cannot start workers on CPUs %s: %s\n", o->workers,
			strerror(-err));
		sw_eth_close(s);
		free(a);
		return 1;
	}
	if (s->mode == SW_LEARN && !(s->fdb = sw_fdb_create(o->aging)))
		err = -ENOMEM;
	if (err == 0)
		err = sw_plan(s);
	if (err == 0)
		err = sw_eth_attach(s);
	if (err == 0)
		err = vre_server_create(&s->server);
	if (err == 0)
		err = open_ports(s);
	if (err == 0)
		err = vre_server_start(s->server);
	if (err < 0)
		goto out;
	printf(PROG ": ready: %u port(s) (%u vhost, %u ethdev), %s mode, %u worker(s) on CPUs %s, "
	       "%s polling\n",
	       s->nports, s->nvhost, s->nports - s->nvhost, mode_names[s->mode], s->pool.n,
	       o->workers, vre_poll_mode_name(o->poll));
	fflush(stdout);
	serve(s, o, set, cur, prev);
	code = 0;
out:
	stop_server(s);
	sw_eth_close(s); /* after the vhost queues: nothing sends to it any more */
	take_snap(s, cur);
	print_stats(s, cur, NULL, "final");
	if (o->stats_json && code == 0)
		write_json(s, o->stats_json, cur, NULL);
	close_ports(s);
	sw_unplan(s);
	vre_worker_pool_destroy(&s->pool);
	sw_fdb_destroy(s->fdb);
	free(a);
	return code;
}

int main(int argc, char **argv)
{
	static struct sw s;
	struct opts o = { 0 };
	sigset_t set;
	int split = -1, err;

	/* Find the EAL/app separator as DPDK applications do. */
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--") == 0) {
			split = i;
			break;
		}
	/* Application options are checked first, so a typo costs no EAL start. */
	if (split >= 0) {
		argv[split] = argv[0];
		o.have_eal = true;
		parse_app(&s, &o, argc - split, argv + split);
		argv[split] = "--";
	} else {
		parse_app(&s, &o, argc, argv);
	}
	if (o.log_level)
		vre_log_set_level((enum vre_log_level)vre_log_parse_level(o.log_level));
	pthread_mutex_init(&s.lock, NULL);

	/* Every thread started from here on (EAL, control, workers) inherits
	 * the blocked set, so the signals reach only sigtimedwait below. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	if (eal_init(split >= 0 ? split : argc, argv, split >= 0) < 0) {
		/* bad EAL options, or a device they name failed to probe */
		fprintf(stderr, PROG ": EAL initialisation failed (see the EAL messages above)\n");
		return EXIT_USAGE;
	}
	err = run(&s, &o, &set);
	rte_eal_cleanup();
	return err;
}
