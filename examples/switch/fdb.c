/* SPDX-License-Identifier: BSD-3-Clause */
/* vre-switch's MAC table over rte_hash (see fdb.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <rte_hash.h>
#include <rte_hash_crc.h>

#include "fdb.h"

#define MAC_MASK ((1ull << 48) - 1)
#define SWEEP_MAX 1024u /* entries deleted per sweep; the next one goes on */

struct sw_fdb {
	struct rte_hash *h;
	uint32_t unit;     /* seconds per seen unit: 16 bits cover twice the aging */
	uint32_t aging;    /* in units */
	uint32_t epoch;    /* atomic; bumped by fdb_flush */
};

static uint32_t mono_secs(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts); /* vDSO: no syscall */
	return (uint32_t)ts.tv_sec;
}

struct sw_fdb *fdb_create(unsigned capacity, unsigned aging_secs)
{
	static uint32_t seq;
	char name[RTE_HASH_NAMESIZE];
	struct rte_hash_parameters hp = {
		.name = name,
		.entries = capacity,
		.key_len = sizeof(uint64_t),
		.hash_func = rte_hash_crc,
		.socket_id = SOCKET_ID_ANY,
		.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF |
			      RTE_HASH_EXTRA_FLAGS_MULTI_WRITER_ADD,
	};
	struct sw_fdb *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	snprintf(name, sizeof(name), "vre_fdb%u", __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED));
	f->h = rte_hash_create(&hp);
	if (!f->h) {
		free(f);
		return NULL;
	}
	if (aging_secs < 1)
		aging_secs = 1;
	/* one-second resolution up to 9 h of aging, coarser beyond */
	f->unit = aging_secs / 32768u + 1;
	f->aging = (aging_secs + f->unit - 1) / f->unit;
	return f;
}

void fdb_destroy(struct sw_fdb *f)
{
	if (f) {
		rte_hash_free(f->h);
		free(f);
	}
}

void fdb_now(const struct sw_fdb *f, struct fdb_now *now)
{
	now->t = f->unit == 1 ? mono_secs() : mono_secs() / f->unit; /* no division per burst */
	now->epoch = __atomic_load_n(&f->epoch, __ATOMIC_RELAXED);
	now->aging = f->aging;
}

static inline uint64_t key_of(uint64_t mac, uint32_t epoch)
{
	return mac | (uint64_t)(epoch & 0xffffu) << 48;
}

static inline uint64_t val_of(uint32_t port, uint32_t gen, uint32_t t)
{
	return (uint64_t)gen << 32 | (uint64_t)(port & 0xffffu) << 16 | (t & 0xffffu);
}

uint64_t fdb_lookup(const struct sw_fdb *f, const struct fdb_now *now, const uint64_t *macs,
		    unsigned n, uint64_t *vals)
{
	uint64_t keys[RTE_HASH_LOOKUP_BULK_MAX];
	const void *kp[RTE_HASH_LOOKUP_BULK_MAX];
	void *data[RTE_HASH_LOOKUP_BULK_MAX];
	uint64_t hits = 0;

	if (n == 0 || n > RTE_HASH_LOOKUP_BULK_MAX)
		return 0;
	for (unsigned k = 0; k < n; k++) {
		keys[k] = key_of(macs[k], now->epoch);
		kp[k] = &keys[k];
	}
	if (rte_hash_lookup_bulk_data(f->h, kp, n, &hits, data) <= 0)
		return 0;
	for (unsigned k = 0; k < n; k++)
		vals[k] = (uint64_t)(uintptr_t)data[k];
	return hits;
}

int fdb_learn(struct sw_fdb *f, const struct fdb_now *now, uint64_t mac, uint32_t port,
	      uint32_t gen, bool *has, uint64_t *val)
{
	uint64_t key = key_of(mac, now->epoch), v = val_of(port, gen, now->t);
	int r;

	if (*has && *val == v)
		return 0; /* same port, refreshed this second already */
	r = rte_hash_add_key_data(f->h, &key, (void *)(uintptr_t)v);
	if (r < 0)
		return r;
	*has = true;
	*val = v;
	return 1;
}

static uint32_t age_secs(const struct sw_fdb *f, uint64_t val)
{
	return (uint32_t)(uint16_t)(mono_secs() / f->unit - (uint32_t)val) * f->unit;
}

void fdb_walk(const struct sw_fdb *f,
	      bool (*fn)(void *arg, uint64_t mac, uint32_t port, uint32_t gen, uint32_t age_s),
	      void *arg)
{
	struct fdb_now now;
	const void *key;
	void *data;
	uint32_t it = 0;

	fdb_now(f, &now);
	while (rte_hash_iterate(f->h, &key, &data, &it) >= 0) {
		uint64_t k = *(const uint64_t *)key, v = (uint64_t)(uintptr_t)data;

		if ((uint32_t)(k >> 48) != (now.epoch & 0xffffu) || !fdb_fresh(&now, v))
			continue;
		if (!fn(arg, k & MAC_MASK, fdb_val_port(v), fdb_val_gen(v), age_secs(f, v)))
			return;
	}
}

void fdb_flush(struct sw_fdb *f)
{
	__atomic_add_fetch(&f->epoch, 1, __ATOMIC_RELAXED);
}

unsigned fdb_sweep(struct sw_fdb *f, bool (*alive)(void *arg, uint32_t port, uint32_t gen),
		   void (*sync)(void *arg), void *arg)
{
	uint64_t dead[SWEEP_MAX];
	int32_t pos[SWEEP_MAX];
	unsigned nd = 0, nf = 0;
	struct fdb_now now;
	const void *key;
	void *data;
	uint32_t it = 0;

	fdb_now(f, &now);
	while (nd < SWEEP_MAX && rte_hash_iterate(f->h, &key, &data, &it) >= 0) {
		uint64_t k = *(const uint64_t *)key, v = (uint64_t)(uintptr_t)data;

		if ((uint32_t)(k >> 48) != (now.epoch & 0xffffu) || !fdb_fresh(&now, v) ||
		    !alive(arg, fdb_val_port(v), fdb_val_gen(v)))
			dead[nd++] = k;
	}
	for (unsigned i = 0; i < nd; i++) {
		/* a worker may have refreshed it since: it goes anyway and is
		 * learned again by its next packet */
		int32_t p = rte_hash_del_key(f->h, &dead[i]);

		if (p >= 0)
			pos[nf++] = p;
	}
	if (nf == 0)
		return 0;
	sync(arg); /* no reader still holds a deleted slot */
	for (unsigned i = 0; i < nf; i++)
		rte_hash_free_key_with_position(f->h, pos[i]);
	return nf;
}
