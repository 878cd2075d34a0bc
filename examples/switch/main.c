/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vre-switch [EAL options --] [--config FILE] --vhost PATH[,client][,queues=N] ... [options]
 *
 * Serves vhost-user ports with VRE's control plane (not DPDK's vhost
 * library) and DPDK ethdev ports (whatever the EAL probed), and forwards
 * with VRE's workers; see switch.h for the design and usage() in
 * options.c for the options. The EAL is initialised (with quiet defaults
 * when no EAL options are given) so workers are DPDK threads.
 *
 * This file is the run loop: the EAL, the ports, the workers, signals.
 * options.c reads the command line and --config, stats.c the counters.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_eal.h>
#include <rte_ethdev.h>

#include "app.h"
#include "vre_log.h"
#include "vre_worker_dpdk.h"

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

/* The switch's life after the ports are known: prints the table every
 * interval and on SIGUSR1 (taken synchronously by sigtimedwait, so no
 * handler runs in signal context), stops on SIGINT/SIGTERM. */
static void serve(struct sw *s, const struct opts *o, const sigset_t *set, struct snap *cur,
		  struct snap *prev)
{
	uint64_t period = (uint64_t)o->stats_interval * 1000000000u;
	uint64_t next = period ? sw_now_ns() + period : 0;
	struct snap *t;
	int sig;

	sw_snap_take(s, prev);
	while ((sig = wait_signal(set, next)) < 0 || sig == SIGUSR1 || sig == SIGUSR2) {
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
		t = prev, prev = cur, cur = t;
		next += period;
		if (next < sw_now_ns()) /* stopped for a while: no burst of catch-up lines */
			next = sw_now_ns() + period;
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
	if (err == 0) {
		vre_server_set_msg_timeout(s->server, o->msg_timeout_ms);
		err = open_ports(s);
	}
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
	sw_snap_take(s, cur);
	sw_stats_print(s, cur, NULL, "final");
	if (o->stats_json && code == 0)
		sw_stats_write_json(s, o->stats_json, cur, NULL);
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
		sw_parse_options(&s, &o, argc - split, argv + split);
		argv[split] = "--";
	} else {
		sw_parse_options(&s, &o, argc, argv);
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
	sigaddset(&set, SIGUSR2);
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
