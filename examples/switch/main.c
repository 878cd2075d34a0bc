/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vre-switch [EAL options --] --vhost PATH[,client][,queues=N] ... [options]
 *
 * Serves vhost-user ports with VRE's control plane (not DPDK's vhost
 * library) and forwards with VRE's workers; see switch.h for the design and
 * usage() for the options. The EAL is initialised (with quiet defaults
 * when no EAL options are given) so workers are DPDK threads and DPDK-based
 * ports can join later.
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

#include "switch.h"
#include "vre_log.h"
#include "vre_worker_dpdk.h"

#define PROG "vre-switch"
#define EXIT_USAGE 2

struct opts {
	enum vre_poll_mode poll;
	const char *workers;
	unsigned stats_interval;
	const char *log_level;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " [EAL options --] --vhost PATH[,client][,queues=N] ... [options]\n"
		"  --vhost PATH[,client][,queues=N]  a vhost-user port (server socket unless client;\n"
		"                                    N queue pairs, default 1); repeatable\n"
		"  --mode loopback|xconnect          loopback: a port's TX to its own RX;\n"
		"                                    xconnect: ports 0<->1, 2<->3, ... (default loopback)\n"
		"  --workers CPULIST                 one pinned worker per CPU (default: the last CPU)\n"
		"  --pin PORT:PAIR=WORKER            put a queue pair's RX (and its feeders) on the\n"
		"                                    WORKER-th worker instead of round-robin\n"
		"  --poll poll|adaptive|interrupt    polling policy (default adaptive)\n"
		"  --stats-interval SECONDS          print counters every SECONDS (default 0: at exit)\n"
		"  --log-level err|warn|info|debug   (default info)\n"
		"Without EAL options, the EAL runs with --no-pci --no-huge --no-shconf (no files left behind).\n");
}

/* One line, exit 2: nothing has been created yet, so nothing to clean. */
static void __attribute__((noreturn, format(printf, 1, 2))) bad(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
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
	int cpus[64];
	int n = vre_cpulist_parse(list, cpus, 64);
	cpu_set_t set;

	if (n < 0)
		bad("--workers: bad CPU list '%s'", list);
	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return;
	for (int i = 0; i < n; i++)
		if (!CPU_ISSET(cpus[i], &set))
			bad("--workers: CPU %d is not present or not allowed for this process", cpus[i]);
}

static const char *default_cpu(void)
{
	static char buf[16];
	cpu_set_t set;
	int last = 0;

	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		for (int i = 0; i < CPU_SETSIZE; i++)
			if (CPU_ISSET(i, &set))
				last = i;
	snprintf(buf, sizeof(buf), "%d", last);
	return buf;
}

static void parse_app(struct sw *s, struct opts *o, int argc, char **argv)
{
	enum { O_VHOST = 256, O_MODE, O_WORKERS, O_POLL, O_STATS, O_LOG, O_PIN, O_HELP };
	static const struct option lo[] = {
		{ "vhost", required_argument, NULL, O_VHOST },
		{ "mode", required_argument, NULL, O_MODE },
		{ "workers", required_argument, NULL, O_WORKERS },
		{ "pin", required_argument, NULL, O_PIN },
		{ "poll", required_argument, NULL, O_POLL },
		{ "stats-interval", required_argument, NULL, O_STATS },
		{ "log-level", required_argument, NULL, O_LOG },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	char *pins[64];
	unsigned npins = 0;
	int c;

	o->poll = VRE_POLL_ADAPTIVE;
	s->mode = SW_LOOPBACK;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":", lo, NULL)) != -1) {
		switch (c) {
		case O_VHOST:
			parse_vhost(s, optarg);
			break;
		case O_MODE:
			if (strcmp(optarg, "loopback") == 0)
				s->mode = SW_LOOPBACK;
			else if (strcmp(optarg, "xconnect") == 0)
				s->mode = SW_XCONNECT;
			else
				bad("--mode: '%s' is not loopback or xconnect", optarg);
			break;
		case O_WORKERS:
			o->workers = optarg;
			break;
		case O_PIN:
			if (npins == 64)
				bad("too many --pin");
			pins[npins++] = optarg;
			break;
		case O_POLL:
			if (vre_poll_mode_parse(optarg) < 0)
				bad("--poll: '%s' is not poll, adaptive or interrupt", optarg);
			o->poll = (enum vre_poll_mode)vre_poll_mode_parse(optarg);
			break;
		case O_STATS:
			o->stats_interval = (unsigned)parse_num(optarg, 0, 86400, "--stats-interval");
			break;
		case O_LOG:
			if (vre_log_parse_level(optarg) < 0)
				bad("--log-level: '%s' is not err, warn, info or debug", optarg);
			o->log_level = optarg;
			break;
		case O_HELP:
			usage(stdout);
			exit(0);
		case ':':
			bad("%s needs an argument", argv[optind - 1]);
		default:
			bad("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		bad("unexpected argument '%s'", argv[optind]);
	if (s->nports == 0)
		bad("no ports: give at least one --vhost PATH");
	if (s->mode == SW_XCONNECT && s->nports % 2)
		bad("--mode xconnect needs an even number of ports, got %u", s->nports);
	if (!o->workers)
		o->workers = default_cpu();
	check_cpus(o->workers);
	for (unsigned i = 0; i < npins; i++)
		parse_pin(s, pins[i]);
}

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

/* One line per port and per worker. Rates are over the last interval
 * when prev is given. Tests parse the "port N:" lines. */
static void print_stats(struct sw *s, const struct snap *cur, const struct snap *prev,
			const char *tag)
{
	double secs = prev ? (double)(cur->ns - prev->ns) / 1e9 : 0;
	uint64_t hz = vre_tsc_hz();

	for (unsigned i = 0; i < s->nports; i++) {
		const struct sw_port_totals *t = &cur->port[i];

		printf("%s port %u: rx-pkts %" PRIu64 " rx-bytes %" PRIu64 " tx-pkts %" PRIu64
		       " tx-bytes %" PRIu64 " drops %" PRIu64 " drop-no-dst %" PRIu64
		       " drop-no-rx-buf %" PRIu64 " drop-bad %" PRIu64,
		       tag, i, t->rx_pkts, t->rx_bytes, t->tx_pkts, t->tx_bytes, t->drops,
		       t->drop_no_dst, t->drop_no_rx_buf, t->drop_bad);
		if (prev && secs > 0) {
			const struct sw_port_totals *o = &prev->port[i];

			printf(" | rx %.3f Mpps %.3f Gbit/s tx %.3f Mpps",
			       (double)(t->rx_pkts - o->rx_pkts) / secs / 1e6,
			       (double)(t->rx_bytes - o->rx_bytes) * 8 / secs / 1e9,
			       (double)(t->tx_pkts - o->tx_pkts) / secs / 1e6);
		}
		printf("\n");
	}
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

/* ---- ports ---- */

static int open_ports(struct sw *s)
{
	for (unsigned i = 0; i < s->nports; i++) {
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
	for (unsigned i = 0; i < s->nports; i++) {
		vre_net_dev_destroy(s->ports[i].net);
		s->ports[i].net = NULL;
	}
}

static int wait_signal(const sigset_t *set, unsigned secs)
{
	struct timespec ts = { secs, 0 };
	int sig;

	do
		sig = secs ? sigtimedwait(set, NULL, &ts) : sigwaitinfo(set, NULL);
	while (sig < 0 && errno == EINTR);
	return sig;
}

static int run(struct sw *s, const struct opts *o)
{
	struct vre_worker_config tmpl = { .mode = o->poll,
					  .thread_init = vre_worker_dpdk_init,
					  .thread_fini = vre_worker_dpdk_fini };
	struct snap *a = calloc(2, sizeof(*a)), *cur = a, *prev = a + 1, *t;
	sigset_t set;
	int err;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (!a)
		return -ENOMEM;
	err = vre_worker_pool_create(&s->pool, o->workers, &tmpl);
	if (err < 0) {
		fprintf(stderr, PROG ": cannot start workers on CPUs %s: %s\n", o->workers,
			strerror(-err));
		free(a);
		return err;
	}
	err = sw_plan(s);
	if (err == 0)
		err = vre_server_create(&s->server);
	if (err == 0)
		err = open_ports(s);
	if (err == 0)
		err = vre_server_start(s->server);
	if (err < 0)
		goto out;
	printf(PROG ": ready: %u port(s), %s mode, %u worker(s) on CPUs %s, %s polling\n",
	       s->nports, s->mode == SW_LOOPBACK ? "loopback" : "xconnect", s->pool.n,
	       o->workers, vre_poll_mode_name(o->poll));
	fflush(stdout);
	take_snap(s, prev);
	while (wait_signal(&set, o->stats_interval) < 0) {
		take_snap(s, cur);
		print_stats(s, cur, prev, "stats");
		t = prev, prev = cur, cur = t;
	}
	printf(PROG ": signal received, stopping\n");
out:
	stop_server(s);
	take_snap(s, cur);
	print_stats(s, cur, NULL, "final");
	close_ports(s);
	sw_unplan(s);
	vre_worker_pool_destroy(&s->pool);
	free(a);
	return err;
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
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	if (eal_init(split >= 0 ? split : argc, argv, split >= 0) < 0) {
		fprintf(stderr, PROG ": EAL initialisation failed (see the EAL messages above)\n");
		return 1;
	}
	err = run(&s, &o);
	rte_eal_cleanup();
	return err < 0 ? 1 : 0;
}
