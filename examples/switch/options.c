/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vre-switch's command line and --config file: both go through one
 * apply_opt(), so a config line and an option mean the same. Every mistake
 * is one line on stderr and exit 2 before anything is created.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"

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
		"                                    from it; drops by reason; worker cycles/packet.\n"
		"                                    SIGUSR2 moves every queue to the next worker\n"
		"  --stats-json PATH                 write every counter as JSON to PATH (replaced\n"
		"                                    atomically) every interval, on SIGUSR1 and at exit\n"
		"  --log-level err|warn|info|debug   (default info)\n"
		"  --msg-timeout-ms MS               drop a frontend that stays in the middle of a\n"
		"                                    vhost-user message this long (default 5000;\n"
		"                                    0: never)\n"
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
       O_JSON, O_CONFIG, O_MSG_TIMEOUT };
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
	{ "msg-timeout-ms", required_argument, NULL, O_MSG_TIMEOUT },
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
	case O_MSG_TIMEOUT:
		o->msg_timeout_ms = (unsigned)parse_num(arg, 0, 3600000, "--msg-timeout-ms");
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

void sw_parse_options(struct sw *s, struct opts *o, int argc, char **argv)
{
	const char *cfg = find_config(argc, argv);
	int c;

	o->poll = VRE_POLL_ADAPTIVE;
	o->aging = 300;
	o->msg_timeout_ms = VRE_MSG_TIMEOUT_MS;
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
