/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vre-switch learn mode: a MAC-learning bridge over all ports.
 *
 * Each TX packet teaches the table its source MAC -> port; its destination
 * MAC picks one port when known (unicast), else the packet floods to every
 * other port. The table and every queue live on the first worker (see
 * sw_plan), so it is single-writer and needs no lock; other threads read
 * only its entry count.
 *
 * Frame headers are in guest memory: the 12 MAC bytes are copied once into
 * locals and only the copy is looked at.
 */
#include <string.h>

#include "switch.h"

#define FDB_SIZE 4096u /* power of two */
#define FDB_PROBE 8u   /* linear probe length; a full neighbourhood floods */

struct fdb_entry {
	uint64_t key; /* MAC in the low 48 bits, bit 63 = in use */
	uint8_t port;
};

struct sw_fdb {
	struct fdb_entry e[FDB_SIZE];
	uint64_t count;
};

#define IN_USE (1ull << 63)

struct sw_fdb *sw_fdb_create(void)
{
	return calloc(1, sizeof(struct sw_fdb));
}

void sw_fdb_destroy(struct sw_fdb *f)
{
	free(f);
}

uint64_t sw_fdb_count(const struct sw_fdb *f)
{
	return f ? __atomic_load_n(&f->count, __ATOMIC_RELAXED) : 0;
}

static inline uint64_t mac_key(const uint8_t *m)
{
	return (uint64_t)m[0] << 40 | (uint64_t)m[1] << 32 | (uint64_t)m[2] << 24 |
	       (uint64_t)m[3] << 16 | (uint64_t)m[4] << 8 | m[5];
}

static inline unsigned fdb_hash(uint64_t key)
{
	return (unsigned)((key * 0x9e3779b97f4a7c15ull) >> 52) & (FDB_SIZE - 1);
}

static int fdb_lookup(const struct sw_fdb *f, uint64_t key)
{
	unsigned h = fdb_hash(key);

	for (unsigned i = 0; i < FDB_PROBE; i++) {
		const struct fdb_entry *e = &f->e[(h + i) & (FDB_SIZE - 1)];

		if (e->key == (key | IN_USE))
			return e->port;
		if (!(e->key & IN_USE))
			return -1;
	}
	return -1;
}

/* Learns or moves key to port; a full neighbourhood keeps flooding. */
static void fdb_learn(struct sw_fdb *f, uint64_t key, uint8_t port)
{
	unsigned h = fdb_hash(key);

	for (unsigned i = 0; i < FDB_PROBE; i++) {
		struct fdb_entry *e = &f->e[(h + i) & (FDB_SIZE - 1)];

		if (e->key == (key | IN_USE)) {
			e->port = port;
			return;
		}
		if (!(e->key & IN_USE)) {
			e->key = key | IN_USE;
			e->port = port;
			__atomic_store_n(&f->count, f->count + 1, __ATOMIC_RELAXED);
			return;
		}
	}
}

/* Fills mask[q] with the packets of b going to port q. Runts go nowhere
 * and are returned as a count. */
static unsigned classify(struct sw *s, struct sw_queue *sq, const struct vre_net_tx_burst *b,
			 uint32_t *mask)
{
	unsigned me = sq->port->idx, runts = 0;
	uint32_t all_others = 0;

	for (unsigned q = 0; q < s->nports; q++)
		if (q != me)
			all_others |= 1u << q;
	for (unsigned k = 0; k < b->npkts; k++) {
		uint8_t hdr[12];
		int port;

		if (!b->pkts[k].eth) {
			runts++;
			continue;
		}
		memcpy(hdr, b->pkts[k].eth, sizeof(hdr)); /* the one read */
		if (!(hdr[6] & 1))
			fdb_learn(s->fdb, mac_key(hdr + 6), (uint8_t)me);
		port = (hdr[0] & 1) ? -1 : fdb_lookup(s->fdb, mac_key(hdr));
		if (port == (int)me)
			continue; /* the sender's own segment: filtered */
		if (port >= 0) {
			mask[port] |= 1u << k;
		} else {
			for (unsigned q = 0; q < s->nports; q++)
				if (all_others & (1u << q))
					mask[q] |= 1u << k;
		}
	}
	return runts;
}

int sw_learn_poll(struct vre_poll_item *it)
{
	struct sw_queue *sq = it->ctx;
	struct sw *s = sq->port->sw;
	struct vre_net_tx_burst *b = &sq->burst;
	uint32_t mask[SW_MAX_PORTS] = { 0 };
	uint64_t dropped;
	int n = vre_net_tx_fetch(sq->nq, b);
	int taken = b->n;

	if (n < 0 || taken == 0)
		return 0;
	dropped = classify(s, sq, b, mask);
	for (unsigned q = 0; q < s->nports; q++) {
		struct vre_net_queue *dst;

		if (!mask[q])
			continue;
		dst = __atomic_load_n(&sq->dsts[q], __ATOMIC_ACQUIRE);
		if (dst)
			vre_net_rx_put(dst, b, mask[q]);
		else
			dropped += (unsigned)__builtin_popcount(mask[q]);
	}
	if (dropped)
		__atomic_store_n(&sq->drop_no_dst, sq->drop_no_dst + dropped, __ATOMIC_RELAXED);
	vre_net_tx_done(sq->nq, b);
	return taken;
}
