/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vre-switch's MAC table (examples/switch/fdb.c) over a --no-huge EAL:
 * learn, look up, move, flush, sweep; and two writer threads moving MACs
 * between ports while a third thread looks them up: no lookup may miss a
 * MAC that exists (no lost entry) or see a port and generation that were
 * never written together (no torn entry).
 */
#include <pthread.h>
#include <stdlib.h>

#include <check.h>
#include <rte_eal.h>
#include <rte_lcore.h>

#include "fdb.h"

#define NMAC 4096u
#define ROUNDS 60u

/* Every value the writers store satisfies gen == port * 7919 + 1. */
static uint32_t gen_of(uint32_t port)
{
	return port * 7919u + 1;
}

static uint64_t mac_of(unsigned i)
{
	return 0x020000000000ull | i;
}

START_TEST(test_learn_lookup_flush)
{
	struct sw_fdb *f = fdb_create(1024, 300);
	struct fdb_now now;
	uint64_t macs[2] = { mac_of(1), mac_of(2) }, vals[2];
	uint64_t hits;
	bool has = false;
	uint64_t v = 0;

	ck_assert_ptr_nonnull(f);
	fdb_now(f, &now);
	ck_assert_uint_eq(fdb_lookup(f, &now, macs, 2, vals), 0);
	ck_assert_int_eq(fdb_learn(f, &now, macs[0], 3, gen_of(3), &has, &v), 1);
	ck_assert(has);
	/* the same port within the second: nothing written */
	ck_assert_int_eq(fdb_learn(f, &now, macs[0], 3, gen_of(3), &has, &v), 0);
	hits = fdb_lookup(f, &now, macs, 2, vals);
	ck_assert_uint_eq(hits, 1);
	ck_assert(fdb_fresh(&now, vals[0]));
	ck_assert_uint_eq(fdb_val_port(vals[0]), 3);
	ck_assert_uint_eq(fdb_val_gen(vals[0]), gen_of(3));
	/* a move is written */
	ck_assert_int_eq(fdb_learn(f, &now, macs[0], 4, gen_of(4), &has, &v), 1);
	ck_assert_uint_eq(fdb_lookup(f, &now, macs, 2, vals), 1);
	ck_assert_uint_eq(fdb_val_port(vals[0]), 4);
	/* flush: gone for lookups made after it */
	fdb_flush(f);
	fdb_now(f, &now);
	ck_assert_uint_eq(fdb_lookup(f, &now, macs, 2, vals), 0);
	fdb_destroy(f);
}
END_TEST

static unsigned syncs;

static bool alive_odd(void *arg, uint32_t port, uint32_t gen)
{
	(void)arg, (void)gen;
	return port & 1;
}

static void count_sync(void *arg)
{
	(void)arg;
	syncs++;
}

static bool count_one(void *arg, uint64_t mac, uint32_t port, uint32_t gen, uint32_t age)
{
	(void)mac, (void)port, (void)gen, (void)age;
	++*(unsigned *)arg;
	return true;
}

START_TEST(test_sweep)
{
	struct sw_fdb *f = fdb_create(1024, 300);
	struct fdb_now now;
	unsigned n = 0;

	ck_assert_ptr_nonnull(f);
	fdb_now(f, &now);
	for (unsigned i = 0; i < 100; i++) {
		bool has = false;
		uint64_t v;

		ck_assert_int_eq(fdb_learn(f, &now, mac_of(i), i % 4, gen_of(i % 4), &has, &v), 1);
	}
	syncs = 0;
	/* ports 0 and 2 are gone: their 50 entries go, after one sync */
	ck_assert_uint_eq(fdb_sweep(f, alive_odd, count_sync, NULL), 50);
	ck_assert_uint_eq(syncs, 1);
	fdb_walk(f, count_one, &n);
	ck_assert_uint_eq(n, 50);
	/* after a flush every entry is of an old epoch: all go */
	fdb_flush(f);
	ck_assert_uint_eq(fdb_sweep(f, alive_odd, count_sync, NULL), 50);
	n = 0;
	fdb_walk(f, count_one, &n);
	ck_assert_uint_eq(n, 0);
	/* the freed slots are reusable: the table fills again */
	fdb_now(f, &now);
	for (unsigned i = 0; i < 100; i++) {
		bool has = false;
		uint64_t v;

		ck_assert_int_eq(fdb_learn(f, &now, mac_of(i), 1, gen_of(1), &has, &v), 1);
	}
	fdb_destroy(f);
}
END_TEST

struct conc {
	struct sw_fdb *f;
	int inserted;      /* every MAC was added once */
	int stop;
	unsigned id;
	uint64_t lookups, misses, torn, fails;
};

/* Writer id moves MACs id, id+2, ... (and every 16th MAC, shared with the
 * other writer) between ports over ROUNDS rounds. */
static void *writer(void *arg)
{
	struct conc *c = arg;
	struct fdb_now now;

	if (rte_thread_register() != 0)
		c->fails++;
	fdb_now(c->f, &now);
	for (unsigned r = 0; r < ROUNDS; r++)
		for (unsigned i = c->id; i < NMAC; i += 2) {
			unsigned m = i, port = 1 + (r * 3 + i + c->id) % 7;
			bool has = false;
			uint64_t v;

			/* (no ck_assert off the test's thread: it would longjmp across threads) */
			c->fails += fdb_learn(c->f, &now, mac_of(m), port, gen_of(port), &has, &v) != 1;
			if (i % 16 == 1) { /* a shared MAC, moved by both writers */
				has = false;
				c->fails += fdb_learn(c->f, &now, mac_of(i - 1), port, gen_of(port),
						      &has, &v) != 1;
			}
		}
	rte_thread_unregister();
	return NULL;
}

static void *reader(void *arg)
{
	struct conc *c = arg;
	struct fdb_now now;
	uint64_t macs[64], vals[64];

	if (rte_thread_register() != 0)
		c->torn++;
	fdb_now(c->f, &now);
	while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
		for (unsigned i = 0; i < NMAC; i += 64) {
			uint64_t hits;

			for (unsigned k = 0; k < 64; k++)
				macs[k] = mac_of(i + k);
			hits = fdb_lookup(c->f, &now, macs, 64, vals);
			c->lookups += 64;
			if (__atomic_load_n(&c->inserted, __ATOMIC_ACQUIRE))
				c->misses += 64u - (unsigned)__builtin_popcountll(hits);
			for (unsigned k = 0; k < 64; k++)
				if ((hits >> k & 1) &&
				    fdb_val_gen(vals[k]) != gen_of(fdb_val_port(vals[k])))
					c->torn++;
		}
	}
	rte_thread_unregister();
	return NULL;
}

START_TEST(test_concurrent)
{
	struct sw_fdb *f = fdb_create(NMAC * 2, 300);
	struct conc w0 = { .id = 0 }, w1 = { .id = 1 }, rd = { 0 };
	struct fdb_now now;
	pthread_t t0, t1, tr;

	ck_assert_ptr_nonnull(f);
	w0.f = w1.f = rd.f = f;
	/* every MAC exists before the race starts */
	fdb_now(f, &now);
	for (unsigned i = 0; i < NMAC; i++) {
		bool has = false;
		uint64_t v;

		ck_assert_int_eq(fdb_learn(f, &now, mac_of(i), 1, gen_of(1), &has, &v), 1);
	}
	__atomic_store_n(&rd.inserted, 1, __ATOMIC_RELEASE);
	ck_assert_int_eq(pthread_create(&tr, NULL, reader, &rd), 0);
	ck_assert_int_eq(pthread_create(&t0, NULL, writer, &w0), 0);
	ck_assert_int_eq(pthread_create(&t1, NULL, writer, &w1), 0);
	pthread_join(t0, NULL);
	pthread_join(t1, NULL);
	__atomic_store_n(&rd.stop, 1, __ATOMIC_RELEASE);
	pthread_join(tr, NULL);
	ck_assert_msg(w0.fails + w1.fails == 0, "%llu learns failed",
		      (unsigned long long)(w0.fails + w1.fails));
	ck_assert_msg(rd.lookups > 0, "the reader never ran");
	ck_assert_msg(rd.misses == 0, "%llu of %llu lookups missed an existing MAC",
		      (unsigned long long)rd.misses, (unsigned long long)rd.lookups);
	ck_assert_msg(rd.torn == 0, "%llu torn entries", (unsigned long long)rd.torn);
	{
		unsigned n = 0;

		fdb_walk(f, count_one, &n);
		ck_assert_uint_eq(n, NMAC);
	}
	fdb_destroy(f);
}
END_TEST

int main(void)
{
	char *argv[] = { "test_fdb", "--no-huge", "-m", "64", "--no-pci", "--no-shconf",
			 "-l", "0", "--log-level", "error", NULL };
	Suite *s = suite_create("fdb");
	TCase *tc = tcase_create("fdb");
	SRunner *sr;
	int failed;

	if (rte_eal_init(10, argv) < 0) {
		fprintf(stderr, "rte_eal_init failed\n");
		return EXIT_FAILURE;
	}
	tcase_add_test(tc, test_learn_lookup_flush);
	tcase_add_test(tc, test_sweep);
	tcase_add_test(tc, test_concurrent);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	rte_eal_cleanup();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
