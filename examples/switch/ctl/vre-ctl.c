/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vre-ctl [--ctl PATH] [--json] [--timeout SECONDS] COMMAND [ARGS...]
 *
 * The command-line client of vre-switch's control channel: one JSON-RPC
 * request per run (ctl_proto.h has the framing), the answer printed as a
 * table, or as JSON with --json. usage() lists the commands and the exit
 * codes; docs/switch.md the methods behind them.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "../ctl_proto.h"
#include "../num.h"
#include "vre_version.h"

#define PROG "vre-ctl"
/* exit codes */
#define EX_OK 0
#define EX_REFUSED 1   /* the switch answered with an error */
#define EX_USAGE 2
#define EX_NOANSWER 3  /* no answer: cannot connect, timeout, unreadable reply */

static bool as_json;
static int timeout_s = 60;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " [--ctl PATH] [--json] [--timeout SECONDS] COMMAND [ARGS...]\n"
		"  --ctl PATH        the switch's control socket (default " SW_CTL_DEFAULT_PATH ")\n"
		"  --json            print the answer as JSON (the method's result) for scripts\n"
		"  --timeout SECONDS how long to wait for the answer (default 60)\n"
		"commands:\n"
		"  port-add vhost PATH [client] [queues=N] [name=NAME] [owner=USER] [group=GROUP]\n"
		"                 [mode=OCTAL] [mtu=M] [offloads=on|off] [port=N]\n"
		"  port-add ethdev DEVARGS [name=NAME] [port=N] [queues=N]   (DPDK hot-plug: net_ring0,\n"
		"                 net_tap0,iface=t0, a PCI address)\n"
		"  port-del PORT                 PORT: a number or a name\n"
		"  port-list\n"
		"  port-show PORT\n"
		"  stats [--clear]\n"
		"  fdb-show\n"
		"  fdb-flush\n"
		"  worker-list\n"
		"  rxq-pin PORT:PAIR WORKER\n"
		"  rebalance\n"
		"  log-level [err|warn|info|debug]\n"
		"  version\n"
		"  methods\n"
		"  process                       the switch's pid, open fds, mappings, heap bytes\n"
		"  call METHOD [JSON-OBJECT]     any method with raw parameters\n"
		"exit codes: 0 done; 1 the switch refused (its message on stderr); 2 bad usage;\n"
		"3 no answer (cannot connect, timeout, unreadable reply)\n");
}

static void __attribute__((noreturn, format(printf, 1, 2))) bad(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see --help)\n", stderr);
	exit(EX_USAGE);
}

static void __attribute__((noreturn, format(printf, 1, 2))) noanswer(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(EX_NOANSWER);
}

/* ---- the request ---- */

static long num(const char *s, long lo, long hi, const char *what)
{
	long v;

	if (num_parse(s, lo, hi, &v) < 0)
		bad("%s: '%s' is not a number in %ld..%ld", what, s, lo, hi);
	return v;
}

/* PORT: a number or a name. */
static json_t *port_arg(const char *s)
{
	if (*s && strspn(s, "0123456789") == strlen(s))
		return json_integer(num(s, 0, 65535, "port"));
	return json_string(s);
}

/* KEY=VALUE words of port-add after the path / devargs. */
static void add_opts(json_t *p, char **w, int n, bool vhost)
{
	for (int i = 0; i < n; i++) {
		const char *eq = strchr(w[i], '=');
		char key[16];

		if (vhost && strcmp(w[i], "client") == 0) {
			json_object_set_new(p, "client", json_true());
			continue;
		}
		if (!eq || (size_t)(eq - w[i]) >= sizeof(key))
			bad("port-add: unexpected '%s'", w[i]);
		memcpy(key, w[i], (size_t)(eq - w[i]));
		key[eq - w[i]] = 0;
		eq++;
		if (strcmp(key, "name") == 0)
			json_object_set_new(p, "name", json_string(eq));
		else if (strcmp(key, "port") == 0)
			json_object_set_new(p, "port", json_integer(num(eq, 0, 65535, "port=")));
		else if (strcmp(key, "queues") == 0)
			json_object_set_new(p, "queues", json_integer(num(eq, 1, 16, "queues=")));
		else if (vhost && strcmp(key, "mtu") == 0)
			json_object_set_new(p, "mtu", json_integer(num(eq, 68, 65535, "mtu=")));
		else if (vhost && strcmp(key, "offloads") == 0 &&
			 (strcmp(eq, "on") == 0 || strcmp(eq, "off") == 0))
			json_object_set_new(p, "offloads", json_boolean(eq[1] == 'n'));
		else if (vhost && (strcmp(key, "owner") == 0 || strcmp(key, "group") == 0 ||
				   strcmp(key, "mode") == 0))
			json_object_set_new(p, key, json_string(eq));
		else
			bad("port-add %s: unknown option '%s'", vhost ? "vhost" : "ethdev", key);
	}
}

/* The method and its parameters for COMMAND ARGS. */
static const char *build(int argc, char **argv, json_t *p)
{
	const char *cmd = argv[0];
	int n = argc - 1;
	char **a = argv + 1;

#define ARGS(lo, hi) do { if (n < (lo) || n > (hi)) bad("%s: wrong number of arguments", cmd); } while (0)
	if (strcmp(cmd, "port-add") == 0) {
		if (n < 2 || (strcmp(a[0], "vhost") && strcmp(a[0], "ethdev")))
			bad("port-add vhost PATH [OPTS] or port-add ethdev DEVARGS [OPTS]");
		json_object_set_new(p, "kind", json_string(a[0]));
		json_object_set_new(p, a[0][0] == 'v' ? "path" : "devargs", json_string(a[1]));
		add_opts(p, a + 2, n - 2, a[0][0] == 'v');
		return cmd;
	}
	if (strcmp(cmd, "port-del") == 0 || strcmp(cmd, "port-show") == 0) {
		ARGS(1, 1);
		json_object_set_new(p, "port", port_arg(a[0]));
		return cmd;
	}
	if (strcmp(cmd, "stats") == 0) {
		ARGS(0, 1);
		if (n == 1 && strcmp(a[0], "--clear") != 0)
			bad("stats: unexpected '%s'", a[0]);
		if (n == 1)
			json_object_set_new(p, "clear", json_true());
		return cmd;
	}
	if (strcmp(cmd, "rxq-pin") == 0) {
		unsigned pair;
		char port[64], tail;

		ARGS(2, 2);
		if (sscanf(a[0], "%63[^:]:%u%c", port, &pair, &tail) != 2)
			bad("rxq-pin: expected PORT:PAIR, got '%s'", a[0]);
		json_object_set_new(p, "port", port_arg(port));
		json_object_set_new(p, "pair", json_integer(pair));
		json_object_set_new(p, "worker", json_integer(num(a[1], 0, 1024, "worker")));
		return cmd;
	}
	if (strcmp(cmd, "log-level") == 0) {
		ARGS(0, 1);
		if (n == 1)
			json_object_set_new(p, "level", json_string(a[0]));
		return cmd;
	}
	if (strcmp(cmd, "call") == 0) {
		json_error_t err;
		json_t *v;

		ARGS(1, 2);
		if (n == 2) {
			v = json_loads(a[1], 0, &err);
			if (!json_is_object(v))
				bad("call: parameters must be a JSON object (%s)", v ? "not an object" : err.text);
			json_object_update(p, v);
			json_decref(v);
		}
		return a[0];
	}
	if (!strcmp(cmd, "port-list") || !strcmp(cmd, "fdb-show") || !strcmp(cmd, "fdb-flush") ||
	    !strcmp(cmd, "worker-list") || !strcmp(cmd, "rebalance") || !strcmp(cmd, "version") ||
	    !strcmp(cmd, "methods") || !strcmp(cmd, "process")) {
		ARGS(0, 0);
		return cmd;
	}
	bad("unknown command '%s'", cmd);
#undef ARGS
}

/* ---- the exchange ---- */

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wait_fd(int fd, short ev, long long deadline)
{
	struct pollfd pfd = { .fd = fd, .events = ev };
	long long left = deadline - now_ms();

	if (left <= 0)
		return 0;
	return poll(&pfd, 1, (int)left);
}

/* Connects (retrying while the switch's backlog is full), sends the
 * request line, reads the answer line. */
static json_t *exchange(const char *path, const char *line)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	long long deadline = now_ms() + (long long)timeout_s * 1000;
	size_t len = strlen(line), off = 0, have = 0, cap = 65536;
	char *buf = malloc(cap), *nl = NULL;
	json_error_t err;
	json_t *reply;
	int fd;

	if (!buf)
		noanswer("out of memory");
	if (strlen(path) >= sizeof(sa.sun_path))
		bad("--ctl: path too long");
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		noanswer("socket: %s", strerror(errno));
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno != EAGAIN || now_ms() >= deadline)
			noanswer("cannot connect to %s: %s", path, strerror(errno));
		poll(NULL, 0, 10); /* the backlog is full: the switch serves others */
	}
	while (off < len) {
		ssize_t n = send(fd, line + off, len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EAGAIN && wait_fd(fd, POLLOUT, deadline) > 0)
			continue;
		if (n <= 0)
			noanswer("%s: cannot send: %s", path, n < 0 ? strerror(errno) : "closed");
		off += (size_t)n;
	}
	while (!nl) {
		ssize_t n;

		if (have + 1 >= cap) {
			char *b = cap < (64u << 20) ? realloc(buf, cap *= 2) : NULL;

			if (!b)
				noanswer("the answer is too large");
			buf = b;
		}
		n = recv(fd, buf + have, cap - have - 1, 0);
		if (n < 0 && errno == EAGAIN) {
			if (wait_fd(fd, POLLIN, deadline) <= 0)
				noanswer("no answer from %s within %d s", path, timeout_s);
			continue;
		}
		if (n <= 0)
			noanswer("%s closed the connection without an answer", path);
		have += (size_t)n;
		buf[have] = 0;
		nl = memchr(buf, '\n', have);
	}
	close(fd);
	reply = json_loadb(buf, (size_t)(nl - buf), 0, &err);
	free(buf);
	if (!json_is_object(reply))
		noanswer("unreadable answer: %s", err.text);
	return reply;
}

/* ---- printing ---- */

static long long I(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

static const char *S(json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));

	return v ? v : "";
}

static void print_ports(json_t *r)
{
	json_t *ports = json_object_get(r, "ports"), *p;
	size_t i;

	printf("%-5s %-16s %-6s %-10s %-6s %12s %12s %8s  %s\n", "PORT", "NAME", "KIND", "STATE",
	       "QUEUES", "RX-PKTS", "TX-PKTS", "DROPS", "PATH/DEVICE");
	json_array_foreach(ports, i, p) {
		char q[16];

		snprintf(q, sizeof(q), "%lld/%lld", I(p, "queues_running"), I(p, "queues"));
		printf("%-5lld %-16s %-6s %-10s %-6s %12lld %12lld %8lld  %s%s\n", I(p, "port"),
		       S(p, "name"), S(p, "kind"), S(p, "state"), q, I(p, "rx_pkts"),
		       I(p, "tx_pkts"), I(p, "drops"), *S(p, "path") ? S(p, "path") : S(p, "device"),
		       json_is_true(json_object_get(p, "client")) ? " (client)" : "");
	}
}

static void print_names(const char *label, json_t *a)
{
	size_t i;
	json_t *v;

	if (!json_array_size(a))
		return;
	printf("  %-20s", label);
	json_array_foreach(a, i, v)
		printf("%s%s", i ? " " : "", json_string_value(v));
	printf("\n");
}

static void print_port(json_t *r)
{
	json_t *c = json_object_get(r, "connection"), *q, *ctr = json_object_get(r, "counters");
	size_t i;

	printf("port %lld (%s): %s, %s\n", I(r, "port"), S(r, "name"), S(r, "kind"), S(r, "state"));
	if (*S(r, "path"))
		printf("  %-20s%s%s\n", "socket", S(r, "path"),
		       json_is_true(json_object_get(r, "client")) ? " (client mode)" : "");
	if (*S(r, "device"))
		printf("  %-20s%s (ethdev %lld)%s%s\n", "device", S(r, "device"), I(r, "ethdev_id"),
		       *S(r, "devargs") ? ", devargs " : "", S(r, "devargs"));
	printf("  %-20s%s\n", "mac", S(r, "mac"));
	if (json_object_get(r, "mtu"))
		printf("  %-20s%lld, offloads %s\n", "mtu", I(r, "mtu"),
		       json_is_true(json_object_get(r, "offloads")) ? "offered" : "off");
	if (c) {
		printf("  %-20s%s, %lld memory region(s), queues started/enabled/running "
		       "%lld/%lld/%lld, pairs %lld (active %lld)\n", "frontend",
		       json_is_true(json_object_get(c, "connected")) ? "connected" : "not connected",
		       I(c, "mem_regions"), I(c, "queues_started"), I(c, "queues_enabled"),
		       I(c, "queues_running"), I(r, "queue_pairs"), I(r, "active_pairs"));
		printf("  %-20s%s\n", "virtio features", S(c, "features"));
		print_names("", json_object_get(c, "feature_names"));
		printf("  %-20s%s\n", "protocol features", S(c, "protocol_features"));
		print_names("", json_object_get(c, "protocol_feature_names"));
	}
	if (json_object_get(r, "link")) {
		json_t *l = json_object_get(r, "link");

		printf("  %-20s%s %lld Mbps %s-duplex, rx %s\n", "link",
		       json_is_true(json_object_get(l, "up")) ? "up" : "down", I(l, "speed_mbps"),
		       S(l, "duplex"),
		       json_is_true(json_object_get(r, "rx_interrupts")) ? "interrupts" : "polled");
	}
	printf("  %-20srx %lld pkts %lld bytes, tx %lld pkts %lld bytes, drops %lld (no-dst %lld, "
	       "no-rx-buf %lld, bad %lld)\n", "counters", I(ctr, "rx_pkts"), I(ctr, "rx_bytes"),
	       I(ctr, "tx_pkts"), I(ctr, "tx_bytes"), I(ctr, "drops"), I(ctr, "drop_no_dst"),
	       I(ctr, "drop_no_rx_buf"), I(ctr, "drop_bad"));
	printf("  %-6s %-5s %-5s %-8s %-7s %12s\n", "QUEUE", "ROLE", "PAIR", "RUNNING", "WORKER",
	       "PACKETS");
	json_array_foreach(json_object_get(r, "queue_list"), i, q) {
		bool eth = json_object_get(q, "tx_pkts") != NULL; /* an ethdev queue pair */

		printf("  %-6lld %-5s %-5lld %-8s %-7lld %12lld", I(q, "queue"), S(q, "role"),
		       I(q, "pair"), json_is_true(json_object_get(q, "running")) ? "yes" : "no",
		       I(q, "worker"), eth ? I(q, "rx_pkts") : I(q, "packets"));
		if (eth)
			printf("  (sent on TX queue %lld: %lld; PMD's queue counters: in %lld out %lld)",
			       I(q, "pair"), I(q, "tx_pkts"), I(q, "pmd_rx_pkts"), I(q, "pmd_tx_pkts"));
		printf("\n");
	}
}

static void print_workers(json_t *ws)
{
	json_t *w;
	size_t i;

	printf("%-7s %-4s %-7s %14s %16s %11s %12s %10s\n", "WORKER", "CPU", "QUEUES", "PACKETS",
	       "BUSY-CYCLES", "CYCLES/PKT", "POLLS", "SLEEPS");
	json_array_foreach(ws, i, w) {
		json_t *c = json_object_get(w, "cycles_per_pkt");
		char cpp[32] = "-"; /* null: too few packets to mean anything */

		if (json_is_number(c))
			snprintf(cpp, sizeof(cpp), "%.1f", json_number_value(c));
		printf("%-7lld %-4lld %-7lld %14lld %16lld %11s %12lld %10lld\n", I(w, "worker"),
		       I(w, "cpu"), I(w, "items"), I(w, "packets"), I(w, "busy_cycles"), cpp,
		       I(w, "polls"), I(w, "sleeps"));
	}
}

static void print_stats(json_t *r)
{
	json_t *p;
	size_t i;

	printf("%s mode%s\n", S(r, "mode"),
	       json_is_true(json_object_get(r, "cleared")) ? " (counters cleared after this)" : "");
	printf("%-5s %-16s %12s %14s %12s %14s %8s %8s %9s %6s\n", "PORT", "NAME", "RX-PKTS",
	       "RX-BYTES", "TX-PKTS", "TX-BYTES", "DROPS", "NO-DST", "NO-RXBUF", "BAD");
	json_array_foreach(json_object_get(r, "ports"), i, p)
		printf("%-5lld %-16s %12lld %14lld %12lld %14lld %8lld %8lld %9lld %6lld\n",
		       I(p, "port"), S(p, "name"), I(p, "rx_pkts"), I(p, "rx_bytes"),
		       I(p, "tx_pkts"), I(p, "tx_bytes"), I(p, "drops"), I(p, "drop_no_dst"),
		       I(p, "drop_no_rx_buf"), I(p, "drop_bad"));
	if (!strcmp(S(r, "mode"), "learn"))
		printf("fdb: %lld MAC addresses learned\n", I(r, "fdb_entries"));
	print_workers(json_object_get(r, "workers"));
}

static void print_result(const char *cmd, json_t *r)
{
	json_t *e;
	size_t i;

	if (as_json || strcmp(cmd, "call") == 0) {
		char *t = json_dumps(r, JSON_INDENT(2) | JSON_ENCODE_ANY);

		printf("%s\n", t ? t : "null");
		free(t);
		return;
	}
	if (!strcmp(cmd, "port-add"))
		printf("port %lld (%s) added\n", I(r, "port"), S(r, "name"));
	else if (!strcmp(cmd, "port-del"))
		printf("port %lld removed\n", I(r, "port"));
	else if (!strcmp(cmd, "port-list"))
		print_ports(r);
	else if (!strcmp(cmd, "port-show"))
		print_port(r);
	else if (!strcmp(cmd, "stats"))
		print_stats(r);
	else if (!strcmp(cmd, "fdb-show")) {
		printf("%-18s %-5s %-16s %s\n", "MAC", "PORT", "NAME", "AGE(s)");
		json_array_foreach(json_object_get(r, "entries"), i, e)
			printf("%-18s %-5lld %-16s %lld\n", S(e, "mac"), I(e, "port"), S(e, "name"),
			       I(e, "age_s"));
	} else if (!strcmp(cmd, "fdb-flush"))
		printf("%lld MAC address(es) forgotten\n", I(r, "flushed"));
	else if (!strcmp(cmd, "worker-list"))
		print_workers(json_object_get(r, "workers"));
	else if (!strcmp(cmd, "rxq-pin"))
		printf("port %lld pair %lld: now on worker %lld\n", I(r, "port"), I(r, "pair"),
		       I(r, "worker"));
	else if (!strcmp(cmd, "rebalance"))
		printf("%lld poll item(s) moved to the next worker\n", I(r, "moved"));
	else if (!strcmp(cmd, "log-level"))
		printf("log level %s\n", S(r, "level"));
	else if (!strcmp(cmd, "version"))
		printf(PROG " %s; vre-switch %s (DPDK: %s), %s mode, %lld port(s), %lld worker(s)\n",
		       VRE_VERSION, S(r, "version"), S(r, "dpdk"), S(r, "mode"), I(r, "ports"),
		       I(r, "workers"));
	else if (!strcmp(cmd, "process"))
		printf("pid %lld: %lld open fds, %lld mappings, %lld heap bytes in use\n",
		       I(r, "pid"), I(r, "fds"), I(r, "maps"), I(r, "heap_bytes"));
	else if (!strcmp(cmd, "methods"))
		json_array_foreach(json_object_get(r, "methods"), i, e)
			printf("%-12s %s\n%-12s   params: %s\n", S(e, "name"), S(e, "summary"), "",
			       *S(e, "params") ? S(e, "params") : "none");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "ctl", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = SW_CTL_DEFAULT_PATH, *method;
	json_t *params = json_object(), *req, *reply, *err;
	char *line;
	int c;

	opterr = 0;
	/* "+": options end at the command (stats --clear is the command's) */
	while ((c = getopt_long(argc, argv, "+:", lo, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 'j': as_json = true; break;
		case 't': timeout_s = (int)num(optarg, 1, 3600, "--timeout"); break;
		case 'h': usage(stdout); return EX_OK;
		case 'V': printf(PROG " %s\n", VRE_VERSION); return EX_OK;
		case ':': bad("%s needs an argument", argv[optind - 1]);
		default: bad("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		bad("no command");
	method = build(argc - optind, argv + optind, params);
	req = json_pack("{s:s, s:i, s:s, s:o}", "jsonrpc", "2.0", "id", 1, "method", method,
			"params", params);
	line = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (!line)
		noanswer("out of memory");
	{
		size_t n = strlen(line);
		char *l = realloc(line, n + 2);

		if (!l)
			noanswer("out of memory");
		line = l;
		memcpy(line + n, "\n", 2);
	}
	reply = exchange(path, line);
	free(line);
	err = json_object_get(reply, "error");
	if (err) {
		json_t *d = json_object_get(err, "data");

		if (as_json) {
			char *t = json_dumps(err, JSON_INDENT(2));

			printf("%s\n", t ? t : "");
			free(t);
		}
		fprintf(stderr, PROG ": %s: %s%s%s%s (code %lld)\n", method, S(err, "message"),
			d ? " [" : "", d ? S(d, "errno") : "", d ? "]" : "", I(err, "code"));
		json_decref(reply);
		return EX_REFUSED;
	}
	print_result(argv[optind], json_object_get(reply, "result"));
	json_decref(reply);
	return EX_OK;
}
