/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vre-switch's MAC table (learn mode): MAC -> (port number, port
 * generation, last seen), read and written by every worker without a lock
 * of ours on the hot path.
 *
 * It is a DPDK rte_hash with lock-free reader/writer concurrency
 * (RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF) and several writers
 * (MULTI_WRITER_ADD: the library serialises writers; learning writes only
 * when a MAC is new, moved or due for its once-a-second age refresh, so a
 * writer is rare per packet). Each entry's value is one 64-bit word, stored
 * and loaded atomically by the library: a reader sees an old or a new entry,
 * never a mix of two.
 *
 *   key   = MAC (low 48 bits) | epoch (high 16 bits)
 *   value = generation << 32 | port << 16 | seen (16 bits, in aging units)
 *
 * fdb-flush bumps the epoch: lookups use the current one, so every entry
 * dies at once without anyone touching the table. Entries of an old epoch,
 * aged ones and those of removed ports stay until fdb_sweep deletes
 * them; a key slot deleted under concurrent readers may only be reused
 * once no reader can still hold it, so the sweep deletes, calls the
 * caller's sync (every worker started a new pass), then frees the slots.
 *
 * Threads: fdb_lookup/fdb_learn from any worker (registered DPDK
 * threads); fdb_walk and fdb_flush from any thread; fdb_sweep
 * from one non-worker thread at a time.
 */
#ifndef VRE_SWITCH_FDB_H
#define VRE_SWITCH_FDB_H

#include <stdbool.h>
#include <stdint.h>

struct sw_fdb;

/* A table of at least capacity MACs; aging in seconds (>= 1). NULL on
 * failure (after rte_eal_init only). */
struct sw_fdb *fdb_create(unsigned capacity, unsigned aging_secs);
void fdb_destroy(struct sw_fdb *f);

/* What one burst uses: the clock and the epoch, read once. */
struct fdb_now {
	uint32_t t;        /* the clock, in seen units */
	uint32_t epoch;
	uint32_t aging;    /* in seen units */
};
void fdb_now(const struct sw_fdb *f, struct fdb_now *now);

static inline uint32_t fdb_val_port(uint64_t v) { return (uint32_t)(v >> 16) & 0xffffu; }
static inline uint32_t fdb_val_gen(uint64_t v) { return (uint32_t)(v >> 32); }

/* Looks the n MACs (n <= 64) up in the current epoch; bit k of the result
 * set: vals[k] holds MAC k's entry (possibly aged: see fdb_fresh). */
uint64_t fdb_lookup(const struct sw_fdb *f, const struct fdb_now *now,
		       const uint64_t *macs, unsigned n, uint64_t *vals);
/* The entry was refreshed less than the aging time ago. */
static inline bool fdb_fresh(const struct fdb_now *now, uint64_t val)
{
	return (uint16_t)(now->t - (uint32_t)val) < now->aging;
}
/* mac sent from (port, gen): writes the entry unless *val (the lookup's
 * answer for mac, *has false: none) already says so for this second.
 * Returns 1 written (*val, *has: the new entry), 0 nothing to do, -ENOSPC
 * table full (the MAC keeps flooding). */
int fdb_learn(struct sw_fdb *f, const struct fdb_now *now, uint64_t mac, uint32_t port,
	      uint32_t gen, bool *has, uint64_t *val);

/* Calls fn for each entry of the current epoch that is fresh (age in
 * seconds); fn returns false to stop. Entries written meanwhile may or may
 * not be seen. */
void fdb_walk(const struct sw_fdb *f,
		 bool (*fn)(void *arg, uint64_t mac, uint32_t port, uint32_t gen, uint32_t age_s),
		 void *arg);
/* Forgets every entry at once. */
void fdb_flush(struct sw_fdb *f);
/* Deletes entries of old epochs, aged ones and those alive() refuses;
 * then sync(arg), then frees their slots. Returns the entries deleted. */
unsigned fdb_sweep(struct sw_fdb *f, bool (*alive)(void *arg, uint32_t port, uint32_t gen),
		      void (*sync)(void *arg), void *arg);

#endif
