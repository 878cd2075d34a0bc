/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lineprobe: how long one cache line takes to travel between two CPUs.
 *
 *   lineprobe [-n samples] [-k trips] [-t timeout_s] CPU_A CPU_B
 *
 * Two threads, pinned to CPU_A and CPU_B, bounce one 64-byte line: A stores
 * an odd sequence number, B waits for it and stores the next even one, A
 * waits for that (a round trip = two line transfers, each a store by one CPU
 * followed by a load on the other, as a ring index or a descriptor flag is
 * between a vhost backend and its guest's driver). Each sample times k
 * round trips with CLOCK_MONOTONIC; the median and 90th percentile over the
 * samples are printed per round trip and per one-way transfer (half a round
 * trip). The median is the machine's figure; p90 shows how much a loaded
 * machine (the other CPU's thread descheduled) got in the way.
 *
 * Output (one line, parsed by perf/bench):
 *   lineprobe: cpu A <-> cpu B: round trip median X ns p90 Y ns (min M,
 *   mean E; S samples of K trips); one way median X/2 ns p90 Y/2 ns
 *
 * Exit status 0, 1 when the other thread did not answer within the timeout
 * (an offline or starved CPU), 2 on bad arguments or a CPU that cannot be
 * pinned.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* CPU_SET, pthread_setaffinity_np; meson defines it */
#endif
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The bounced line, alone in a 128-byte block so that the adjacent-line
 * prefetcher does not pull a neighbour along with it. */
static struct {
	_Alignas(128) _Atomic uint64_t seq;
	char pad[120];
} line;

/* Set by the ponger when it gives up, and by the pinger when done. */
static _Atomic bool stop;

struct cfg {
	int cpu_a, cpu_b;
	unsigned samples, trips;
	double timeout_s;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/*
 * Spins until line.seq == want. Checks the clock only every 64Ki spins, so
 * the spin itself is a plain load; false when the deadline passed or the
 * other side stopped.
 */
static bool wait_for(uint64_t want, uint64_t deadline)
{
	for (;;) {
		for (unsigned i = 0; i < 65536; i++)
			if (atomic_load_explicit(&line.seq, memory_order_acquire) == want)
				return true;
		if (atomic_load_explicit(&stop, memory_order_relaxed) || now_ns() > deadline)
			return false;
	}
}

struct pong_arg {
	const struct cfg *c;
	int err;
};

static void *pong(void *p)
{
	struct pong_arg *a = p;
	uint64_t total = 2ull * ((uint64_t)a->c->samples + 1) * a->c->trips;

	a->err = pin(a->c->cpu_b);
	if (a->err) {
		atomic_store(&stop, true);
		return NULL;
	}
	for (uint64_t s = 1; s < total; s += 2) {
		/* A generous per-answer deadline: a descheduled partner on a
		 * shared machine is slow, a missing one never answers. */
		if (!wait_for(s, now_ns() + (uint64_t)(a->c->timeout_s * 1e9))) {
			atomic_store(&stop, true);
			return NULL;
		}
		atomic_store_explicit(&line.seq, s + 1, memory_order_release);
	}
	return NULL;
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return a < b ? -1 : a > b;
}

/* Nearest-rank percentile of sorted v[0..n). */
static double pct(const double *v, unsigned n, double p)
{
	unsigned i = (unsigned)(p / 100.0 * n + 0.5);

	if (i > 0)
		i--;
	return v[i < n ? i : n - 1];
}

static void usage(const char *prog)
{
	fprintf(stderr, "usage: %s [-n samples] [-k trips per sample] [-t timeout_s] CPU_A CPU_B\n",
		prog);
	exit(2);
}

static unsigned parse_uint(const char *s, const char *prog)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v == 0 || v > 100000000ul)
		usage(prog);
	return (unsigned)v;
}

static int parse_cpu(const char *s, const char *prog)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < 0 || v >= CPU_SETSIZE)
		usage(prog);
	return (int)v;
}

int main(int argc, char **argv)
{
	struct cfg c = { .samples = 2000, .trips = 100, .timeout_s = 10.0 };
	struct pong_arg pa = { .c = &c };
	pthread_t t;
	double *ns;
	double sum = 0;
	int opt, err;

	while ((opt = getopt(argc, argv, "n:k:t:h")) != -1) {
		switch (opt) {
		case 'n': c.samples = parse_uint(optarg, argv[0]); break;
		case 'k': c.trips = parse_uint(optarg, argv[0]); break;
		case 't': c.timeout_s = parse_uint(optarg, argv[0]); break;
		default: usage(argv[0]);
		}
	}
	if (argc - optind != 2)
		usage(argv[0]);
	c.cpu_a = parse_cpu(argv[optind], argv[0]);
	c.cpu_b = parse_cpu(argv[optind + 1], argv[0]);
	if (c.cpu_a == c.cpu_b) {
		fprintf(stderr, "lineprobe: CPU_A and CPU_B must differ\n");
		return 2;
	}
	ns = calloc(c.samples, sizeof(*ns));
	if (!ns) {
		perror("lineprobe: calloc");
		return 2;
	}
	err = pin(c.cpu_a);
	if (err) {
		fprintf(stderr, "lineprobe: cannot pin to CPU %d: %s\n", c.cpu_a, strerror(err));
		return 2;
	}
	err = pthread_create(&t, NULL, pong, &pa);
	if (err) {
		fprintf(stderr, "lineprobe: pthread_create: %s\n", strerror(err));
		return 2;
	}
	/* Sample 0 is a warm-up (both threads running, the line hot), not kept. */
	uint64_t s = 0;
	bool ok = true;

	for (unsigned k = 0; ok && k <= c.samples; k++) {
		uint64_t t0 = now_ns();

		for (unsigned i = 0; i < c.trips; i++, s += 2) {
			atomic_store_explicit(&line.seq, s + 1, memory_order_release);
			if (!wait_for(s + 2, t0 + (uint64_t)(c.timeout_s * 1e9))) {
				ok = false;
				break;
			}
		}
		if (ok && k > 0)
			ns[k - 1] = (double)(now_ns() - t0) / c.trips;
	}
	atomic_store(&stop, true);
	pthread_join(t, NULL);
	if (pa.err) {
		fprintf(stderr, "lineprobe: cannot pin to CPU %d: %s\n", c.cpu_b, strerror(pa.err));
		return 2;
	}
	if (!ok) {
		fprintf(stderr, "lineprobe: CPU %d did not answer within %.0f s\n", c.cpu_b,
			c.timeout_s);
		return 1;
	}
	for (unsigned k = 0; k < c.samples; k++)
		sum += ns[k];
	qsort(ns, c.samples, sizeof(*ns), cmp_double);
	double med = pct(ns, c.samples, 50), p90 = pct(ns, c.samples, 90);

	printf("lineprobe: cpu %d <-> cpu %d: round trip median %.1f ns p90 %.1f ns "
	       "(min %.1f, mean %.1f; %u samples of %u trips); one way median %.1f ns p90 %.1f ns\n",
	       c.cpu_a, c.cpu_b, med, p90, ns[0], sum / c.samples, c.samples, c.trips, med / 2,
	       p90 / 2);
	free(ns);
	return 0;
}
