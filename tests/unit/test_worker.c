/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Workers: pinning, the quiesce handshake (add/remove/sync), the three
 * polling policies and their counters. Items here are fake queues: a
 * token counter a producer fills and poll() drains in bursts of 32, with an
 * eventfd as the kick, so each policy's sleep/wake rule can be observed.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "vre_worker.h"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void nap_us(unsigned us)
{
	struct timespec ts = { us / 1000000u, (long)(us % 1000000u) * 1000 };

	nanosleep(&ts, NULL);
}

/* Polls cond (an expression) every 100 us for at most ms milliseconds. */
#define WAIT_FOR(cond, ms)                                                    \
	({                                                                    \
		uint64_t _end = now_ns() + (uint64_t)(ms) * 1000000u;        \
		bool _ok;                                                     \
		while (!(_ok = (cond)) && now_ns() < _end)                    \
			nap_us(100);                                          \
		_ok;                                                          \
	})

/* A CPU this process may run on (the last one, so tests and the worker
 * share as little as possible on small machines). */
static int some_cpu(void)
{
	cpu_set_t set;
	int cpu = 0;

	ck_assert_int_eq(sched_getaffinity(0, sizeof(set), &set), 0);
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &set))
			cpu = i;
	return cpu;
}

struct fake {
	struct vre_poll_item it;
	uint64_t tokens;    /* produced, not yet taken (atomic) */
	uint64_t taken;     /* written by the worker */
	uint64_t polls;
	uint64_t arms, disarms;
	int inside;         /* the worker is in poll() right now */
	int dead;           /* set after remove: polling now is a bug */
	int violations;
	unsigned spin_us;   /* time spent inside each poll */
	int kick;           /* eventfd */
	bool armed;
};

static int fake_poll(struct vre_poll_item *it)
{
	struct fake *f = it->ctx;
	uint64_t have, take;

	__atomic_store_n(&f->inside, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&f->dead, __ATOMIC_SEQ_CST))
		__atomic_add_fetch(&f->violations, 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&f->polls, 1, __ATOMIC_RELAXED);
	if (f->spin_us) {
		uint64_t end = now_ns() + f->spin_us * 1000u;

		while (now_ns() < end)
			;
	}
	have = __atomic_load_n(&f->tokens, __ATOMIC_ACQUIRE);
	take = have > 32 ? 32 : have;
	if (take) {
		__atomic_sub_fetch(&f->tokens, take, __ATOMIC_ACQ_REL);
		__atomic_add_fetch(&f->taken, take, __ATOMIC_RELEASE);
	}
	__atomic_store_n(&f->inside, 0, __ATOMIC_SEQ_CST);
	return (int)take;
}

static bool fake_arm(struct vre_poll_item *it)
{
	struct fake *f = it->ctx;

	__atomic_add_fetch(&f->arms, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&f->armed, true, __ATOMIC_SEQ_CST);
	return __atomic_load_n(&f->tokens, __ATOMIC_SEQ_CST) != 0;
}

static void fake_disarm(struct vre_poll_item *it)
{
	struct fake *f = it->ctx;

	__atomic_add_fetch(&f->disarms, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&f->armed, false, __ATOMIC_SEQ_CST);
}

static void fake_init(struct fake *f, bool with_kick)
{
	memset(f, 0, sizeof(*f));
	f->kick = with_kick ? eventfd(0, EFD_CLOEXEC) : -1;
	f->it.poll = fake_poll;
	f->it.arm = fake_arm;
	f->it.disarm = fake_disarm;
	f->it.wake_fd = f->kick;
	f->it.ctx = f;
	f->it.name = "fake";
}

/* The producer side of a fake queue: tokens, then a kick if the item is
 * armed (like a driver that only kicks when notifications are enabled). */
static void fake_produce(struct fake *f, uint64_t n)
{
	uint64_t one = 1;

	__atomic_add_fetch(&f->tokens, n, __ATOMIC_SEQ_CST);
	if (f->kick >= 0 && __atomic_load_n(&f->armed, __ATOMIC_SEQ_CST))
		ck_assert_int_eq(write(f->kick, &one, 8), 8);
}

static void fake_fini(struct fake *f)
{
	if (f->kick >= 0)
		close(f->kick);
}

static struct vre_worker *start(enum vre_poll_mode mode)
{
	struct vre_worker_config c = { .cpu = some_cpu(), .mode = mode, .idle_us = 100 };
	struct vre_worker *w = NULL;

	ck_assert_int_eq(vre_worker_create(&c, &w), 0);
	ck_assert_ptr_nonnull(w);
	return w;
}

START_TEST(test_cpulist)
{
	int c[8];

	ck_assert_int_eq(vre_cpulist_parse("1", c, 8), 1);
	ck_assert_int_eq(c[0], 1);
	ck_assert_int_eq(vre_cpulist_parse("0-2,5", c, 8), 4);
	ck_assert_int_eq(c[0], 0);
	ck_assert_int_eq(c[2], 2);
	ck_assert_int_eq(c[3], 5);
	ck_assert_int_eq(vre_cpulist_parse("", c, 8), -EINVAL);
	ck_assert_int_eq(vre_cpulist_parse("2-1", c, 8), -EINVAL);
	ck_assert_int_eq(vre_cpulist_parse("1,1", c, 8), -EINVAL);
	ck_assert_int_eq(vre_cpulist_parse("1,", c, 8), -EINVAL);
	ck_assert_int_eq(vre_cpulist_parse("a", c, 8), -EINVAL);
	ck_assert_int_eq(vre_cpulist_parse("-1", c, 8), -EINVAL);
	ck_assert_int_eq(vre_cpulist_parse("0-9", c, 8), -EINVAL);
	ck_assert_int_eq(vre_cpulist_parse("99999", c, 8), -EINVAL);
	ck_assert_int_eq(vre_poll_mode_parse("adaptive"), VRE_POLL_ADAPTIVE);
	ck_assert_int_eq(vre_poll_mode_parse("interrupt"), VRE_POLL_INTERRUPT);
	ck_assert_int_eq(vre_poll_mode_parse("poll"), VRE_POLL_BUSY);
	ck_assert_int_eq(vre_poll_mode_parse("busy!"), -EINVAL);
}
END_TEST

START_TEST(test_bad_cpu)
{
	struct vre_worker_config c = { .cpu = CPU_SETSIZE - 1, .mode = VRE_POLL_BUSY };
	struct vre_worker *w = NULL;

	/* Far above any CPU this machine has: pinning must fail, loudly. */
	ck_assert_int_eq(vre_worker_create(&c, &w), -EINVAL);
	ck_assert_ptr_null(w);
	c.cpu = -1;
	ck_assert_int_eq(vre_worker_create(&c, &w), -EINVAL);
}
END_TEST

static int init_fails(void *arg)
{
	(void)arg;
	return -ENODEV;
}

static int init_count(void *arg)
{
	__atomic_add_fetch((int *)arg, 1, __ATOMIC_SEQ_CST);
	return 0;
}

static void fini_count(void *arg)
{
	__atomic_add_fetch((int *)arg, 100, __ATOMIC_SEQ_CST);
}

START_TEST(test_thread_init)
{
	struct vre_worker_config c = { .cpu = some_cpu(), .thread_init = init_fails };
	struct vre_worker *w = NULL;
	int count = 0;

	ck_assert_int_eq(vre_worker_create(&c, &w), -ENODEV);
	c.thread_init = init_count;
	c.thread_fini = fini_count;
	c.thread_arg = &count;
	ck_assert_int_eq(vre_worker_create(&c, &w), 0);
	ck_assert_int_eq(__atomic_load_n(&count, __ATOMIC_SEQ_CST), 1);
	ck_assert_int_eq(vre_worker_cpu(w), c.cpu);
	ck_assert_int_gt(vre_worker_tid(w), 0);
	vre_worker_destroy(w);
	ck_assert_int_eq(count, 101);
}
END_TEST

/* The worker thread really runs on its CPU only. */
START_TEST(test_pinned)
{
	struct vre_worker *w = start(VRE_POLL_ADAPTIVE);
	char path[64], buf[1024];
	FILE *f;
	bool found = false;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", vre_worker_tid(w));
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(buf, sizeof(buf), f)) {
		int cpu;

		if (sscanf(buf, "Cpus_allowed_list: %d", &cpu) == 1) {
			ck_assert_int_eq(cpu, vre_worker_cpu(w));
			ck_assert_ptr_null(strchr(buf, ','));
			ck_assert_ptr_null(strchr(buf, '-'));
			found = true;
		}
	}
	fclose(f);
	ck_assert(found);
	vre_worker_destroy(w);
}
END_TEST

static void run_traffic(enum vre_poll_mode mode)
{
	struct vre_worker *w = start(mode);
	struct vre_worker_stats st;
	struct fake a, b;

	fake_init(&a, true);
	fake_init(&b, true);
	ck_assert_int_eq(vre_worker_add(w, &a.it), 0);
	ck_assert_int_eq(vre_worker_add(w, &b.it), 0);
	ck_assert_uint_eq(vre_worker_num_items(w), 2);
	/* Several rounds with idle gaps: each one has to wake the worker in
	 * the sleeping policies. */
	for (int round = 0; round < 5; round++) {
		fake_produce(&a, 1000);
		fake_produce(&b, 77);
		ck_assert(WAIT_FOR(__atomic_load_n(&a.taken, __ATOMIC_ACQUIRE) == 1000u * (round + 1) &&
				   __atomic_load_n(&b.taken, __ATOMIC_ACQUIRE) == 77u * (round + 1), 2000));
		nap_us(20000);
	}
	vre_worker_get_stats(w, &st);
	ck_assert_uint_eq(st.packets, 5 * 1077);
	ck_assert_uint_gt(st.busy_cycles, 0);
	ck_assert_uint_ge(st.polls, st.empty_polls);
	ck_assert_uint_ge(st.quiesces, 2);
	if (mode == VRE_POLL_BUSY) {
		ck_assert_uint_eq(st.sleeps, 0);
		ck_assert_uint_eq(__atomic_load_n(&a.arms, __ATOMIC_RELAXED), 0);
	} else {
		/* 20 ms gaps are far beyond the idle period */
		ck_assert_uint_ge(st.sleeps, 5);
		ck_assert_uint_ge(st.wakeups, 4);
		ck_assert_uint_ge(__atomic_load_n(&a.arms, __ATOMIC_RELAXED), 5);
		ck_assert_uint_ge(__atomic_load_n(&a.disarms, __ATOMIC_RELAXED), 5);
	}
	vre_worker_remove(&a.it);
	vre_worker_remove(&b.it);
	ck_assert_uint_eq(vre_worker_num_items(w), 0);
	vre_worker_destroy(w);
	fake_fini(&a);
	fake_fini(&b);
}

START_TEST(test_traffic_busy) { run_traffic(VRE_POLL_BUSY); }
END_TEST
START_TEST(test_traffic_adaptive) { run_traffic(VRE_POLL_ADAPTIVE); }
END_TEST
START_TEST(test_traffic_interrupt) { run_traffic(VRE_POLL_INTERRUPT); }
END_TEST

/* A relay item (a handoff between workers) keeps the worker busy but its
 * packets were counted by the item that took them: packets counts the
 * other items' returns only. */
START_TEST(test_relay_not_counted)
{
	struct vre_worker *w = start(VRE_POLL_BUSY);
	struct vre_worker_stats st;
	struct fake a, b;

	fake_init(&a, true);
	fake_init(&b, true);
	b.it.relay = true;
	ck_assert_int_eq(vre_worker_add(w, &a.it), 0);
	ck_assert_int_eq(vre_worker_add(w, &b.it), 0);
	fake_produce(&b, 500);
	ck_assert(WAIT_FOR(__atomic_load_n(&b.taken, __ATOMIC_ACQUIRE) == 500u, 2000));
	fake_produce(&a, 1000);
	ck_assert(WAIT_FOR(__atomic_load_n(&a.taken, __ATOMIC_ACQUIRE) == 1000u, 2000));
	vre_worker_remove(&a.it);
	vre_worker_remove(&b.it);
	vre_worker_get_stats(w, &st);
	ck_assert_uint_eq(st.packets, 1000);
	vre_worker_destroy(w);
	fake_fini(&a);
	fake_fini(&b);
}
END_TEST

/* Interrupt mode sleeps after the first empty pass: an idle worker makes
 * only a handful of passes. */
START_TEST(test_interrupt_sleeps)
{
	struct vre_worker *wi = start(VRE_POLL_INTERRUPT);
	struct vre_worker_stats si;
	struct fake f;

	fake_init(&f, true);
	ck_assert_int_eq(vre_worker_add(wi, &f.it), 0);
	ck_assert(WAIT_FOR(__atomic_load_n(&f.armed, __ATOMIC_SEQ_CST), 1000));
	nap_us(50000);
	vre_worker_get_stats(wi, &si);
	/* asleep: a handful of passes (bounded sleeps of 200 ms), not spinning */
	ck_assert_uint_lt(si.polls, 20);
	fake_produce(&f, 5);
	ck_assert(WAIT_FOR(__atomic_load_n(&f.taken, __ATOMIC_ACQUIRE) == 5, 1000));
	vre_worker_remove(&f.it);
	vre_worker_destroy(wi);
	fake_fini(&f);
}
END_TEST

/* Sleeps are bounded: work that arrives without any kick (a driver that
 * missed the notification rule) is still picked up. */
START_TEST(test_sleep_is_bounded)
{
	struct vre_worker *w = start(VRE_POLL_INTERRUPT);
	struct fake f;

	fake_init(&f, false); /* no kick fd: only the re-check can find work */
	ck_assert_int_eq(vre_worker_add(w, &f.it), 0);
	ck_assert(WAIT_FOR(__atomic_load_n(&f.armed, __ATOMIC_SEQ_CST), 1000));
	__atomic_add_fetch(&f.tokens, 40, __ATOMIC_SEQ_CST);
	ck_assert(WAIT_FOR(__atomic_load_n(&f.taken, __ATOMIC_ACQUIRE) == 40, 2000));
	vre_worker_remove(&f.it);
	vre_worker_destroy(w);
	fake_fini(&f);
}
END_TEST

/* An item without arm() keeps the worker polling. */
START_TEST(test_no_arm_never_sleeps)
{
	struct vre_worker *w = start(VRE_POLL_INTERRUPT);
	struct vre_worker_stats st0, st;
	struct fake f;

	fake_init(&f, false);
	f.it.arm = NULL;
	ck_assert_int_eq(vre_worker_add(w, &f.it), 0);
	/* it may have slept on its empty list before the add */
	vre_worker_get_stats(w, &st0);
	nap_us(20000);
	vre_worker_get_stats(w, &st);
	ck_assert_uint_eq(st.sleeps, st0.sleeps);
	ck_assert_uint_gt(st.polls - st0.polls, 100);
	vre_worker_remove(&f.it);
	vre_worker_destroy(w);
}
END_TEST

/* remove() returns only when the worker is out of the item and never
 * enters it again, also while the item is slow and the worker busy. */
START_TEST(test_remove_quiesces)
{
	struct vre_worker *w = start(VRE_POLL_BUSY);
	struct fake slow, other;

	fake_init(&slow, false);
	fake_init(&other, false);
	slow.spin_us = 300;
	ck_assert_int_eq(vre_worker_add(w, &other.it), 0);
	for (int i = 0; i < 50; i++) {
		ck_assert_int_eq(vre_worker_add(w, &slow.it), 0);
		ck_assert(WAIT_FOR(__atomic_load_n(&slow.polls, __ATOMIC_SEQ_CST) > 0, 1000));
		vre_worker_remove(&slow.it);
		ck_assert_int_eq(__atomic_load_n(&slow.inside, __ATOMIC_SEQ_CST), 0);
		__atomic_store_n(&slow.dead, 1, __ATOMIC_SEQ_CST);
		nap_us(1000);
		ck_assert_int_eq(__atomic_load_n(&slow.violations, __ATOMIC_SEQ_CST), 0);
		__atomic_store_n(&slow.dead, 0, __ATOMIC_SEQ_CST);
		__atomic_store_n(&slow.polls, 0, __ATOMIC_SEQ_CST);
	}
	/* removing an item on no list is a no-op; adding twice is refused */
	vre_worker_remove(&slow.it);
	ck_assert_int_eq(vre_worker_add(w, &other.it), -EBUSY);
	vre_worker_remove(&other.it);
	vre_worker_destroy(w);
}
END_TEST

/* A sleeping worker is woken for the handshake: remove and sync return
 * promptly, not after the sleep timeout. */
START_TEST(test_handshake_wakes_sleeper)
{
	struct vre_worker *w = start(VRE_POLL_INTERRUPT);
	struct vre_worker_stats st, st2;
	struct fake f;

	fake_init(&f, true);
	ck_assert_int_eq(vre_worker_add(w, &f.it), 0);
	ck_assert(WAIT_FOR(__atomic_load_n(&f.armed, __ATOMIC_SEQ_CST), 1000));
	nap_us(5000);
	vre_worker_get_stats(w, &st);
	ck_assert_uint_ge(st.sleeps, 1);
	vre_worker_sync(w);
	vre_worker_remove(&f.it);
	/* a sleep that ended by timeout is not a wakeup: the eventfd woke it */
	vre_worker_get_stats(w, &st2);
	ck_assert_uint_gt(st2.wakeups, st.wakeups);
	vre_worker_destroy(w);
	fake_fini(&f);
}
END_TEST

/* The worker keeps its kick watch across the owner closing its fd. */
START_TEST(test_owner_closes_kick)
{
	struct vre_worker *w = start(VRE_POLL_INTERRUPT);
	struct vre_worker_stats st, st2;
	struct fake f;
	int writer;
	uint64_t one = 1;

	fake_init(&f, true);
	writer = dup(f.kick);
	ck_assert_int_eq(vre_worker_add(w, &f.it), 0);
	close(f.kick);
	f.kick = -1;
	ck_assert(WAIT_FOR(__atomic_load_n(&f.armed, __ATOMIC_SEQ_CST), 1000));
	vre_worker_get_stats(w, &st);
	__atomic_add_fetch(&f.tokens, 3, __ATOMIC_SEQ_CST);
	ck_assert_int_eq(write(writer, &one, 8), 8);
	ck_assert(WAIT_FOR(__atomic_load_n(&f.taken, __ATOMIC_ACQUIRE) == 3, 2000));
	/* woken by the kick through the worker's dup, not by the timeout */
	vre_worker_get_stats(w, &st2);
	ck_assert_uint_gt(st2.wakeups, st.wakeups);
	vre_worker_remove(&f.it);
	close(writer);
	vre_worker_destroy(w);
}
END_TEST

static uint64_t thread_cpu_ticks(int tid)
{
	char path[64], buf[1024], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), f));
	fclose(f);
	p = strrchr(buf, ')');
	ck_assert_ptr_nonnull(p);
	/* fields after ")": state(3) ... utime(14) stime(15) */
	ck_assert_int_eq(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
				&ut, &st), 2);
	return ut + st;
}

/* An idle adaptive worker uses next to no CPU; a busy one uses it all. */
START_TEST(test_idle_cpu)
{
	struct vre_worker *w = start(VRE_POLL_ADAPTIVE);
	long hz = sysconf(_SC_CLK_TCK);
	uint64_t t0, t1;
	struct fake f;

	fake_init(&f, true);
	ck_assert_int_eq(vre_worker_add(w, &f.it), 0);
	fake_produce(&f, 500);
	ck_assert(WAIT_FOR(__atomic_load_n(&f.taken, __ATOMIC_ACQUIRE) == 500, 1000));
	nap_us(10000);
	t0 = thread_cpu_ticks(vre_worker_tid(w));
	nap_us(1000000);
	t1 = thread_cpu_ticks(vre_worker_tid(w));
	/* under 5% of one core over one second */
	ck_assert_uint_le((t1 - t0) * 100, (uint64_t)hz * 5);
	fake_produce(&f, 500);
	ck_assert(WAIT_FOR(__atomic_load_n(&f.taken, __ATOMIC_ACQUIRE) == 1000, 1000));
	vre_worker_remove(&f.it);
	vre_worker_destroy(w);
	fake_fini(&f);
}
END_TEST

/* An item without a wake fd but with nap_us (a DPDK port without RX
 * interrupts): an idle adaptive worker naps instead of spinning, its naps
 * back off to nap_us and no longer, and work found by polling alone is
 * taken within a few naps. */
START_TEST(test_nap_backoff)
{
	struct vre_worker *w = start(VRE_POLL_ADAPTIVE);
	long hz = sysconf(_SC_CLK_TCK);
	struct vre_worker_stats st0, st;
	uint64_t t0, t1, start_ns;
	struct fake f;

	fake_init(&f, false);
	f.it.nap_us = 2000;
	ck_assert_int_eq(vre_worker_add(w, &f.it), 0);
	nap_us(20000);
	vre_worker_get_stats(w, &st0);
	t0 = thread_cpu_ticks(vre_worker_tid(w));
	nap_us(1000000);
	t1 = thread_cpu_ticks(vre_worker_tid(w));
	vre_worker_get_stats(w, &st);
	/* about 500 naps of 2 ms (not 5 sleeps of 200 ms), with no wake-up */
	ck_assert_uint_gt(st.sleeps - st0.sleeps, 100);
	ck_assert_uint_le(st.sleeps - st0.sleeps, 1000);
	ck_assert_uint_eq(st.wakeups, st0.wakeups);
	ck_assert_uint_le((t1 - t0) * 100, (uint64_t)hz * 10);
	start_ns = now_ns();
	__atomic_add_fetch(&f.tokens, 40, __ATOMIC_SEQ_CST);
	ck_assert(WAIT_FOR(__atomic_load_n(&f.taken, __ATOMIC_ACQUIRE) == 40, 1000));
	printf("nap: %" PRIu64 " sleeps in 1 s, idle CPU %" PRIu64 "/%ld ticks, work taken after %" PRIu64 " us\n",
	       st.sleeps - st0.sleeps, t1 - t0, hz, (now_ns() - start_ns) / 1000);
	vre_worker_remove(&f.it);
	vre_worker_destroy(w);
	fake_fini(&f);
}
END_TEST

struct churn {
	struct vre_worker *w;
	struct fake f[4];
	int stop;
};

static void *producer(void *arg)
{
	struct churn *c = arg;

	while (!__atomic_load_n(&c->stop, __ATOMIC_SEQ_CST)) {
		for (int i = 0; i < 4; i++)
			fake_produce(&c->f[i], 3);
		nap_us(50);
	}
	return NULL;
}

/* Items come and go while traffic flows and the worker sleeps and wakes:
 * no removed item is ever polled, every produced token is taken. */
START_TEST(test_churn)
{
	struct churn c;
	pthread_t prod;
	uint64_t total = 0, taken = 0;

	c.w = start(VRE_POLL_ADAPTIVE);
	c.stop = 0;
	for (int i = 0; i < 4; i++) {
		fake_init(&c.f[i], true);
		ck_assert_int_eq(vre_worker_add(c.w, &c.f[i].it), 0);
	}
	ck_assert_int_eq(pthread_create(&prod, NULL, producer, &c), 0);
	for (int r = 0; r < 200; r++) {
		struct fake *f = &c.f[r % 4];

		vre_worker_remove(&f->it);
		__atomic_store_n(&f->dead, 1, __ATOMIC_SEQ_CST);
		nap_us(100);
		__atomic_store_n(&f->dead, 0, __ATOMIC_SEQ_CST);
		ck_assert_int_eq(vre_worker_add(c.w, &f->it), 0);
	}
	__atomic_store_n(&c.stop, 1, __ATOMIC_SEQ_CST);
	pthread_join(prod, NULL);
	for (int i = 0; i < 4; i++)
		ck_assert(WAIT_FOR(__atomic_load_n(&c.f[i].tokens, __ATOMIC_SEQ_CST) == 0, 2000));
	for (int i = 0; i < 4; i++) {
		/* Removed first: the worker still polls the item (writing
		 * its counters) until then. */
		vre_worker_remove(&c.f[i].it);
		ck_assert_int_eq(c.f[i].violations, 0);
		taken += c.f[i].taken;
		fake_fini(&c.f[i]);
	}
	struct vre_worker_stats st;

	vre_worker_get_stats(c.w, &st);
	total = st.packets;
	ck_assert_uint_eq(total, taken);
	ck_assert_uint_gt(taken, 0);
	vre_worker_destroy(c.w);
}
END_TEST

START_TEST(test_pool)
{
	struct vre_worker_config t = { .mode = VRE_POLL_ADAPTIVE };
	struct vre_worker_pool p;
	char list[16];
	int cpu = some_cpu();

	ck_assert_int_eq(vre_worker_pool_create(&p, "x", &t), -EINVAL);
	snprintf(list, sizeof(list), "%d,%d", cpu, CPU_SETSIZE - 1);
	ck_assert_int_eq(vre_worker_pool_create(&p, list, &t), -EINVAL);
	ck_assert_uint_eq(p.n, 0);
	snprintf(list, sizeof(list), "%d", cpu);
	ck_assert_int_eq(vre_worker_pool_create(&p, list, &t), 0);
	ck_assert_uint_eq(p.n, 1);
	ck_assert_ptr_eq(vre_worker_pool_next(&p), p.w[0]);
	ck_assert_ptr_eq(vre_worker_pool_next(&p), p.w[0]);
	vre_worker_pool_destroy(&p);
}
END_TEST

static Suite *worker_suite(void)
{
	Suite *s = suite_create("worker");
	TCase *tc = tcase_create("worker");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_cpulist);
	tcase_add_test(tc, test_bad_cpu);
	tcase_add_test(tc, test_thread_init);
	tcase_add_test(tc, test_pinned);
	tcase_add_test(tc, test_traffic_busy);
	tcase_add_test(tc, test_traffic_adaptive);
	tcase_add_test(tc, test_traffic_interrupt);
	tcase_add_test(tc, test_relay_not_counted);
	tcase_add_test(tc, test_interrupt_sleeps);
	tcase_add_test(tc, test_sleep_is_bounded);
	tcase_add_test(tc, test_no_arm_never_sleeps);
	tcase_add_test(tc, test_remove_quiesces);
	tcase_add_test(tc, test_handshake_wakes_sleeper);
	tcase_add_test(tc, test_owner_closes_kick);
	tcase_add_test(tc, test_idle_cpu);
	tcase_add_test(tc, test_nap_backoff);
	tcase_add_test(tc, test_churn);
	tcase_add_test(tc, test_pool);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(worker_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
