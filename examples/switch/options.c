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
#include "vre_version.h"
#include "ctl_proto.h"
#include "num.h"

/* Where the option being applied came from, for bad()'s message:
 * "FILE:LINE: " while reading --config, "" on the command line. */
static char where[PATH_MAX + 32];

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " [EAL options --] [--config FILE] [--vhost PATH[,OPTS]] ... [options]\n"
		"  --vhost PATH[,client][,queues=N][,name=NAME][,owner=USER][,group=GROUP][,mode=OCTAL]\n"
		"        [,mtu=M][,offloads=on|off]\n"
		"                                    a vhost-user port: a server socket at PATH (or a\n"
		"                                    frontend's, with client), N queue pairs (default 1),\n"
		"                                    the socket file's owner, group and mode; the MTU\n"
		"                                    offered and enforced toward it (68..65535, default\n"
		"                                    1500); checksum/TSO offloads offered (default on);\n"
		"                                    repeatable\n"
		"  --ethdev DEVARGS                  a DPDK ethdev port hot-plugged at start (net_ring0,\n"
		"                                    'net_tap0,iface=t0', a PCI address); repeatable\n"
		"  (EAL options)                     every DPDK ethdev port the EAL probes (--vdev\n"
		"                                    net_ring0, --vdev net_tap0, -a PCI, ...) is a\n"
		"                                    switch port too. In learn mode it gets an RX and\n"
		"                                    a TX queue per worker (RSS over IP/TCP/UDP where\n"
		"                                    the PMD has it), else one of each on the first\n"
		"                                    worker; workers sleep on RX interrupts when idle\n"
		"                                    (net_tap, NICs) or nap up to 1 ms (others)\n"
		"  --eth-queues N                    learn mode: queue pairs of each ethdev port given\n"
		"                                    here (1..16, at most what the PMD offers; default\n"
		"                                    one per worker); vre-ctl port-add ethdev queues=N\n"
		"  Port numbers: vhost ports 0..V-1 in command-line order, then ethdev ports V..\n"
		"  in DPDK port order, then --ethdev ports; a port added at runtime takes the lowest\n"
		"  free number. xconnect pairs and the tables use these numbers.\n"
		"  --ctl PATH|none                   the JSON-RPC control socket (vre-ctl(8)), mode 0660\n"
		"                                    (default " SW_CTL_DEFAULT_PATH ")\n"
		"  --ctl-group GROUP                 the control socket's group (default: ours)\n"
		"  --mode learn|xconnect|loopback    learn: a MAC-learning bridge over all ports, its\n"
		"                                    queues spread over the workers (default);\n"
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
		"                                    ethdev, pin) add up, the command line overrides the rest\n"
		"  --version                         print the version and exit\n"
		"Without EAL options, the EAL runs with --no-pci --no-huge --no-shconf -m 256\n"
		"--file-prefix vre-switch (DPDK telemetry: dpdk-telemetry.py -f vre-switch).\n"
		"The switch may start without ports; vre-ctl port-add adds them at runtime.\n"
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
	long v;

	if (num_parse(s, lo, hi, &v) < 0)
		bad("%s: '%s' is not a number in %ld..%ld", what, s, lo, hi);
	return v;
}

static struct sw_port_spec *new_spec(struct opts *o, enum sw_kind kind)
{
	struct sw_port_spec *t = realloc(o->ports, (o->nports + 1) * sizeof(*t));

	if (!t)
		bad("out of memory");
	o->ports = t;
	t = &o->ports[o->nports++];
	sw_port_spec_init(t);
	t->kind = kind;
	return t;
}

/* One OPT of --vhost PATH,OPT,... */
static void vhost_opt(struct sw_port_spec *p, const char *tok)
{
	const char *v = strchr(tok, '=') ? strchr(tok, '=') + 1 : "";

	if (strcmp(tok, "client") == 0)
		p->client = true;
	else if (strncmp(tok, "queues=", 7) == 0)
		p->pairs = (uint16_t)parse_num(v, 1, SW_MAX_PAIRS, "--vhost queues");
	else if (strncmp(tok, "mtu=", 4) == 0)
		p->mtu = (uint16_t)parse_num(v, 68, 65535, "--vhost mtu");
	else if (strcmp(tok, "offloads=on") == 0 || strcmp(tok, "offloads=off") == 0)
		p->no_offloads = tok[10] == 'f';
	else if (strncmp(tok, "name=", 5) == 0) {
		if (strlen(v) >= sizeof(p->name))
			bad("--vhost name: '%s' is longer than %zu characters", v, sizeof(p->name) - 1);
		snprintf(p->name, sizeof(p->name), "%s", v);
	} else if (strncmp(tok, "owner=", 6) == 0) {
		if (sw_parse_owner(v, &p->perm.owner) < 0)
			bad("--vhost owner: no user '%s'", v);
		p->perm.set_owner = true;
	} else if (strncmp(tok, "group=", 6) == 0) {
		if (sw_parse_group(v, &p->perm.group) < 0)
			bad("--vhost group: no group '%s'", v);
		p->perm.set_group = true;
	} else if (strncmp(tok, "mode=", 5) == 0) {
		if (sw_parse_mode(v, &p->perm.mode) < 0)
			bad("--vhost mode: '%s' is not an octal mode in 1..0777", v);
	} else {
		bad("--vhost: unknown option '%s'", tok);
	}
}

static void parse_vhost(struct opts *o, char *arg)
{
	struct sw_port_spec *p;
	char *save = NULL, *tok;

	p = new_spec(o, SW_VHOST);
	tok = strtok_r(arg, ",", &save);
	if (!tok || !*tok)
		bad("--vhost needs a socket path");
	if (strlen(tok) >= 108)
		bad("--vhost: socket path too long: %s", tok);
	p->path = tok;
	while ((tok = strtok_r(NULL, ",", &save)))
		vhost_opt(p, tok);
	if (p->client && (p->perm.mode || p->perm.set_owner || p->perm.set_group))
		bad("--vhost %s: owner=, group= and mode= apply to a socket we listen on, not with "
		    "client", p->path);
	for (unsigned i = 0; i + 1 < o->nports; i++)
		if (o->ports[i].kind == SW_VHOST && strcmp(o->ports[i].path, p->path) == 0)
			bad("--vhost: %s given twice", p->path);
}

/* The vhost spec with command-line number port (vhost ports come first). */
static struct sw_port_spec *vhost_spec(struct opts *o, unsigned port)
{
	for (unsigned i = 0, n = 0; i < o->nports; i++)
		if (o->ports[i].kind == SW_VHOST && n++ == port)
			return &o->ports[i];
	return NULL;
}

static void parse_pin(struct opts *o, const char *arg)
{
	unsigned port, pair, w;
	struct sw_port_spec *p;
	char tail;

	if (sscanf(arg, "%u:%u=%u%c", &port, &pair, &w, &tail) != 3)
		bad("--pin: expected PORT:PAIR=WORKER, got '%s'", arg);
	p = vhost_spec(o, port);
	if (!p)
		bad("--pin: port %u is not defined (give --vhost first)", port);
	if (pair >= p->pairs)
		bad("--pin: port %u has no pair %u", port, pair);
	p->pin[pair] = (int)w;
	p->pinned = true;
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
       O_JSON, O_CONFIG, O_ETHDEV, O_CTL, O_CTL_GROUP, O_VERSION, O_MSG_TIMEOUT,
       O_ETH_QUEUES };
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
	{ "ethdev", required_argument, NULL, O_ETHDEV },
	{ "eth-queues", required_argument, NULL, O_ETH_QUEUES },
	{ "ctl", required_argument, NULL, O_CTL },
	{ "ctl-group", required_argument, NULL, O_CTL_GROUP },
	{ "help", no_argument, NULL, O_HELP },
	{ "version", no_argument, NULL, O_VERSION },
	{ NULL, 0, NULL, 0 },
};

/* One option, from the command line or a config line. arg must outlive
 * the parse (--vhost keeps pointers into it). */
static void apply_opt(struct sw *s, struct opts *o, int c, char *arg)
{
	switch (c) {
	case O_VHOST:
		parse_vhost(o, arg);
		break;
	case O_ETHDEV:
		if (!*arg)
			bad("--ethdev needs device arguments");
		new_spec(o, SW_ETHDEV)->devargs = arg;
		break;
	case O_ETH_QUEUES:
		s->eth_queues = (unsigned)parse_num(arg, 1, SW_MAX_PAIRS, "--eth-queues");
		break;
	case O_CTL:
		if (!*arg)
			bad("--ctl needs a path (or none)");
		if (strcmp(arg, "none") && strlen(arg) >= 108)
			bad("--ctl: socket path too long: %s", arg);
		o->ctl = arg;
		break;
	case O_CTL_GROUP:
		if (sw_parse_group(arg, &o->ctl_gid) < 0)
			bad("--ctl-group: no group '%s'", arg);
		o->ctl_gid_set = true;
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
	case O_VERSION:
		printf(PROG " %s\n", VRE_VERSION);
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
		if (!op->name || op->val == O_HELP || op->val == O_CONFIG || op->val == O_VERSION)
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
	/* the ports given at start pair up; ports added at runtime may wait
	 * for their peer */
	if (s->mode == SW_XCONNECT && o->nports % 2 && !o->have_eal)
		bad("--mode xconnect needs an even number of ports, got %u", o->nports);
	if (o->ctl && strcmp(o->ctl, "none") == 0 && o->nports == 0 && !o->have_eal)
		bad("no ports and no control channel (--ctl none): nothing to switch");
	if (!o->workers)
		o->workers = default_cpu();
	check_cpus(o->workers);
	for (unsigned i = 0; i < o->npins; i++)
		parse_pin(o, o->pins[i]);
	if (!o->ctl)
		o->ctl = SW_CTL_DEFAULT_PATH;
}
