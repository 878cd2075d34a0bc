/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vre-switch [EAL options --] [--config FILE] [--vhost PATH[,OPTS]] ... [options]
 *
 * Serves vhost-user ports with VRE's control plane (not DPDK's vhost
 * library) and DPDK ethdev ports, and forwards with VRE's workers; see
 * switch.h for the design and usage() in options.c for the options. The
 * EAL is initialised (with quiet defaults when no EAL options are given)
 * so workers are DPDK threads.
 *
 * This file is the run loop: the EAL, the ports given at start (through
 * sw_port_add, as vre-ctl's port-add), the control channel, telemetry,
 * readiness for systemd, signals. options.c reads the command line and
 * --config, stats.c the counters, ctl_server.c the control channel.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_log.h>

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "app.h"
#include "ctl_server.h"
#include "vre_log.h"
#include "vre_worker_dpdk.h"

/* ---- EAL ---- */

static int eal_init(int argc, char **argv, bool have_eal_args)
{
	char lcore[32];
	/* telemetry stays on (dpdk-telemetry.py -f vre-switch): its socket
	 * is /var/run/dpdk/vre-switch/dpdk_telemetry.v2, or ...v2:N for the
	 * N-th instance running at once */
	char *def[] = { argv[0], "--no-pci", "--no-huge", "--no-shconf", "-m", "256",
			"--file-prefix", "vre-switch", "--log-level=lib.eal:warning",
			"--log-level=lib.telemetry:warning", "-l", lcore, NULL };

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
	return rte_eal_init((int)(sizeof(def) / sizeof(def[0])) - 1, def);
}

/* Every vhost port costs a listening socket, a connection, kick and call
 * eventfds and memory fds while a frontend is there: a thousand ports do
 * not fit the usual soft limit of 1024 open files. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			VRE_WARN("switch", "cannot raise the open file limit: %s", strerror(errno));
	}
}

/* DPDK's log lines in the journal with their priority, as VRE's: DPDK's
 * levels are syslog's plus one. Its stream is line-buffered, so each
 * write is one line or the rest of one. */
static bool dpdk_at_line_start = true;

static ssize_t journal_write(void *cookie, const char *buf, size_t n)
{
	size_t off = 0;

	(void)cookie;
	while (off < n) {
		const char *nl = memchr(buf + off, '\n', n - off);
		size_t len = nl ? (size_t)(nl - (buf + off)) + 1 : n - off;
		int prio = (int)rte_log_cur_msg_loglevel() - 1;
		char pre[4] = "<6>";

		if (dpdk_at_line_start) {
			pre[1] = (char)('0' + (prio < 0 ? 0 : prio > 7 ? 7 : prio));
			if (write(2, pre, 3) < 0)
				return -1;
		}
		if (write(2, buf + off, len) < 0)
			return -1;
		dpdk_at_line_start = nl != NULL;
		off += len;
	}
	return (ssize_t)n;
}

static void dpdk_log_to_journal(void)
{
	static const cookie_io_functions_t io = { .write = journal_write };
	FILE *f;

	if (!vre_log_journal() || !(f = fopencookie(NULL, "w", io)))
		return;
	setvbuf(f, NULL, _IOLBF, 0);
	rte_openlog_stream(f);
}

/* systemd's readiness protocol (Type=notify); nothing without NOTIFY_SOCKET. */
static void notify(const char *state)
{
#ifdef HAVE_SYSTEMD
	sd_notify(0, state);
#else
	(void)state;
#endif
}

/* ---- signals ---- */

/* Waits for a signal of set until deadline_ns (0: forever). Returns the
 * signal, or -1 at the deadline. */
static int wait_signal(const sigset_t *set, uint64_t deadline_ns)
{
	int sig;

	do {
		uint64_t now = sw_now_ns();
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

/* The switch's life after the ports are up: prints the table every
 * interval and on SIGUSR1 (taken synchronously by sigtimedwait, so no
 * handler runs in signal context), rebalances on SIGUSR2, stops on
 * SIGINT/SIGTERM. */
static void serve(struct sw *s, const struct opts *o, const sigset_t *set, struct snap *cur,
		  struct snap *prev)
{
	uint64_t period = (uint64_t)o->stats_interval * 1000000000u;
	uint64_t next = period ? sw_now_ns() + period : 0;
	uint64_t sweep = s->fdb ? sw_now_ns() + 1000000000u : 0;
	struct snap t;
	int sig;

	sw_snap_take(s, prev);
	while ((sig = wait_signal(set, sweep && (!next || sweep < next) ? sweep : next)) < 0 ||
	       sig == SIGUSR1 || sig == SIGUSR2) {
		if (sweep && sw_now_ns() >= sweep) {
			/* learn mode: dead MAC entries out, once a second */
			sw_fdb_sweep(s);
			sweep = sw_now_ns() + 1000000000u;
		}
		if (sig < 0 && (!next || sw_now_ns() < next))
			continue;
		if (sig == SIGUSR2) {
			uint64_t t0 = sw_now_ns();
			int n = sw_rebalance(s);

			/* the time is how long control waited (s->lock) */
			if (n >= 0)
				printf(PROG ": rebalance: %d poll item(s) moved to the next worker "
				       "in %.1f ms\n", n, (double)(sw_now_ns() - t0) / 1e6);
			fflush(stdout);
			continue;
		}
		sw_snap_take(s, cur);
		sw_stats_print(s, cur, prev, sig == SIGUSR1 ? "now" : "stats");
		if (o->stats_json)
			sw_stats_write_json(s, o->stats_json, cur, prev);
		if (sig == SIGUSR1)
			continue; /* on demand: the interval's baseline stays */
		t = *prev, *prev = *cur, *cur = t;
		next += period;
		if (next < sw_now_ns()) /* stopped for a while: no burst of catch-up lines */
			next = sw_now_ns() + period;
	}
	printf(PROG ": signal received, stopping\n");
}

/* ---- start and stop ---- */

/* Checks that need the ethdev ports the EAL probed: a failure is a usage
 * error (2). */
static int check_ports(struct sw *s, const struct opts *o, unsigned neth)
{
	unsigned nvhost = 0, n;

	for (unsigned i = 0; i < o->nports; i++)
		nvhost += o->ports[i].kind == SW_VHOST;
	n = o->nports + neth;
	if (n == 0 && strcmp(o->ctl, "none") == 0) {
		fprintf(stderr, PROG ": no ports and no control channel: give --vhost PATH, "
			"EAL options with --vdev, or --ctl PATH\n");
		return -EINVAL;
	}
	if (s->mode == SW_XCONNECT && n % 2) {
		fprintf(stderr, PROG ": --mode xconnect needs an even number of ports, got %u "
			"(%u vhost + %u ethdev)\n", n, nvhost, n - nvhost);
		return -EINVAL;
	}
	return 0;
}

/* The ports of the command line and config file, through the same
 * sw_port_add as port-add: ethdev ports the EAL probed first (numbered
 * after the vhost ports) so that a bad one leaves no socket behind, then
 * the vhost ports 0..V-1, then --ethdev ports. */
static int add_start_ports(struct sw *s, const struct opts *o)
{
	unsigned nvhost = 0, k = 0;
	char why[256];
	uint16_t id;
	int r;

	for (unsigned i = 0; i < o->nports; i++)
		nvhost += o->ports[i].kind == SW_VHOST;
	RTE_ETH_FOREACH_DEV(id) {
		struct sw_port_spec spec;

		sw_port_spec_init(&spec);
		spec.kind = SW_ETHDEV;
		spec.eth_id = id;
		spec.number = (int)(nvhost + k++);
		if ((r = sw_port_add(s, &spec, why, sizeof(why))) < 0)
			goto bad;
	}
	for (unsigned i = 0, v = 0; i < o->nports; i++) {
		struct sw_port_spec spec = o->ports[i];

		if (spec.kind != SW_VHOST)
			continue;
		spec.number = (int)v++;
		if ((r = sw_port_add(s, &spec, why, sizeof(why))) < 0)
			goto bad;
	}
	for (unsigned i = 0; i < o->nports; i++)
		if (o->ports[i].kind == SW_ETHDEV &&
		    (r = sw_port_add(s, &o->ports[i], why, sizeof(why))) < 0)
			goto bad;
	return 0;
bad:
	fprintf(stderr, PROG ": %s\n", why);
	return r;
}

static int start(struct sw *s, const struct opts *o)
{
	struct vre_worker_config tmpl = { .mode = o->poll,
					  .thread_init = vre_worker_dpdk_init,
					  .thread_fini = vre_worker_dpdk_fini };
	int cpus[64];
	char why[256];
	int err;

	s->nworkers_hint = (unsigned)vre_cpulist_parse(o->workers, cpus, 64);
	if (sw_eth_reserve_pools(s, why, sizeof(why)) < 0) {
		fprintf(stderr, PROG ": %s\n", why);
		return EXIT_USAGE;
	}
	err = vre_worker_pool_create(&s->pool, o->workers, &tmpl);
	if (err < 0) {
		fprintf(stderr, PROG ": cannot start workers on CPUs %s: %s\n", o->workers,
			strerror(-err));
		return 1;
	}
	s->learn_w = s->pool.w[0];
	s->wbase = calloc(s->pool.n, sizeof(*s->wbase));
	if (!s->wbase || (s->mode == SW_LEARN && !(s->fdb = sw_fdb_create(o->aging))) ||
	    (s->view = calloc(1, sizeof(*s->view))) == NULL) {
		fprintf(stderr, PROG ": out of memory\n");
		return 1;
	}
	s->view->list = s->view->by_no;
	if (s->mode == SW_LEARN && sw_learn_start(s, why, sizeof(why)) < 0) {
		fprintf(stderr, PROG ": %s\n", why);
		return 1;
	}
	err = vre_server_create(&s->server);
	if (err < 0) {
		fprintf(stderr, PROG ": cannot create the vhost-user server: %s\n", strerror(-err));
		return 1;
	}
	vre_server_set_msg_timeout(s->server, o->msg_timeout_ms);
	if (add_start_ports(s, o) < 0)
		return EXIT_USAGE;
	sw_go(s);
	err = vre_server_start(s->server);
	if (err < 0) {
		fprintf(stderr, PROG ": cannot start the vhost-user server: %s\n", strerror(-err));
		return 1;
	}
	return 0;
}

/* Everything start() made, in reverse; safe on a half-made switch. */
static void stop(struct sw *s, const struct opts *o, struct snap *cur, bool final)
{
	struct vre_worker_pool pool;

	sw_telemetry_off(s);
	sw_learn_stop(s);
	sw_ports_stop(s);
	sw_learn_free(s, s->pool.n); /* nothing sends any more */
	if (final) {
		sw_snap_take(s, cur);
		sw_stats_print(s, cur, NULL, "final");
		if (o->stats_json)
			sw_stats_write_json(s, o->stats_json, cur, NULL);
	}
	sw_ports_free(s);
	vre_server_destroy(s->server);
	s->server = NULL;
	sw_eth_free_pools(s);
	pthread_mutex_lock(&s->lock);
	pool = s->pool;
	memset(&s->pool, 0, sizeof(s->pool));
	pthread_mutex_unlock(&s->lock);
	vre_worker_pool_destroy(&pool);
	sw_fdb_destroy(s->fdb);
	s->fdb = NULL;
	free(s->wbase);
	s->wbase = NULL;
}

/* Returns 0, or the exit code. */
static int run(struct sw *s, const struct opts *o, const sigset_t *set)
{
	struct snap cur = { 0 }, prev = { 0 };
	struct sw_ctl *ctl = NULL;
	char why[256];
	int code;

	/* before any socket or thread exists: a bad set of ports costs only
	 * its own line */
	if (check_ports(s, o, rte_eth_dev_count_avail()) < 0)
		return EXIT_USAGE;
	code = start(s, o);
	if (code == 0 && strcmp(o->ctl, "none") != 0) {
		struct vre_sock_perm perm = { .mode = 0660, .set_group = o->ctl_gid_set,
					      .group = o->ctl_gid };

		if (sw_ctl_start(s, o->ctl, &perm, &ctl, why, sizeof(why)) < 0) {
			fprintf(stderr, PROG ": control socket %s: %s\n", o->ctl, why);
			code = EXIT_USAGE;
		}
	}
	if (code == 0 && sw_telemetry_register(s) < 0)
		VRE_WARN("switch", "DPDK telemetry: the /vre commands could not be registered");
	if (code) {
		stop(s, o, &cur, false);
		return code;
	}
	printf(PROG ": ready: %u port(s) (%u vhost, %u ethdev), %s mode, %u worker(s) on CPUs %s, "
	       "%s polling, control %s\n",
	       s->nports, s->nvhost, s->nports - s->nvhost, sw_mode_names[s->mode], s->pool.n,
	       o->workers, vre_poll_mode_name(o->poll), o->ctl);
	fflush(stdout);
	{
		char status[160];

		snprintf(status, sizeof(status), "READY=1\nSTATUS=%u port(s), %s mode, control %s",
			 s->nports, sw_mode_names[s->mode], o->ctl);
		notify(status);
	}
	serve(s, o, set, &cur, &prev);
	notify("STOPPING=1");
	sw_ctl_stop(ctl); /* no port-add behind our back from here */
	stop(s, o, &cur, true);
	sw_snap_free(&cur);
	sw_snap_free(&prev);
	return 0;
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
		sw_parse_options(&s, &o, argc - split, argv + split);
		argv[split] = "--";
	} else {
		sw_parse_options(&s, &o, argc, argv);
	}
	if (o.log_level)
		vre_log_set_level((enum vre_log_level)vre_log_parse_level(o.log_level));
	pthread_mutex_init(&s.lock, NULL);
	pthread_mutex_init(&s.op_lock, NULL);
	pthread_rwlock_init(&s.keep, NULL);
	raise_fd_limit();

	/* Every thread started from here on (EAL, control, workers) inherits
	 * the blocked set, so the signals reach only sigtimedwait below. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	dpdk_log_to_journal();
	if (eal_init(split >= 0 ? split : argc, argv, split >= 0) < 0) {
		/* bad EAL options, or a device they name failed to probe */
		fprintf(stderr, PROG ": EAL initialisation failed (see the EAL messages above)\n");
		return EXIT_USAGE;
	}
	err = run(&s, &o, &set);
	rte_eal_cleanup();
	free(o.ports);
	return err;
}
