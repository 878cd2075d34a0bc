/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vre-switch learn mode: a MAC-learning bridge over all ports.
 *
 * Each TX packet teaches the table its source MAC -> port; its destination
 * MAC picks one port when known (unicast), else the packet floods to every
 * other port. The table and every queue live on the first worker (see
 * sw_plan), so it is single-writer and its reads on the hot path take no
 * lock; other threads only count live entries for the stats. Entries age
 * out after --aging seconds without traffic from their MAC.
 *
 * Frame headers are in guest memory: the 12 MAC bytes are copied once into
 * locals and only the copy is looked at.
 */
#include <string.h>
#include <time.h>

#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "switch.h"
#include "vre_net_mbuf.h"

#define FDB_SIZE 4096u /* power of two */
#define FDB_PROBE 8u   /* linear probe length; a full neighbourhood floods */

struct fdb_entry {
	uint64_t key;  /* MAC in the low 48 bits, bit 63 = in use */
	uint32_t seen; /* seconds (monotonic) when the MAC last sent */
	uint8_t port;
};

struct sw_fdb {
	struct fdb_entry e[FDB_SIZE];
	uint32_t aging; /* seconds; an entry older than this is forgotten */
	uint32_t now;   /* the writer's clock, set once per burst */
};

#define IN_USE (1ull << 63)

static uint32_t mono_secs(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts); /* vDSO: no syscall */
	return (uint32_t)ts.tv_sec;
}

struct sw_fdb *sw_fdb_create(unsigned aging)
{
	struct sw_fdb *f = calloc(1, sizeof(struct sw_fdb));

	if (f) {
		f->aging = aging ? aging : 1;
		f->now = mono_secs();
	}
	return f;
}

void sw_fdb_destroy(struct sw_fdb *f)
{
	free(f);
}

static inline bool fresh(const struct sw_fdb *f, const struct fdb_entry *e, uint32_t now)
{
	return (e->key & IN_USE) && now - e->seen < f->aging;
}

/* Live entries; any thread (a racy but harmless scan for the stats). */
uint64_t sw_fdb_count(const struct sw_fdb *f)
{
	uint32_t now = mono_secs();
	uint64_t n = 0;

	if (!f)
		return 0;
	for (unsigned i = 0; i < FDB_SIZE; i++) {
		struct fdb_entry e;

		e.key = __atomic_load_n(&f->e[i].key, __ATOMIC_RELAXED);
		e.seen = __atomic_load_n(&f->e[i].seen, __ATOMIC_RELAXED);
		n += fresh(f, &e, now);
	}
	return n;
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

/* An aged entry keeps its slot (so probing stays simple) but is not
 * found: its MAC floods until it sends again. */
static int fdb_lookup(const struct sw_fdb *f, uint64_t key)
{
	unsigned h = fdb_hash(key);

	for (unsigned i = 0; i < FDB_PROBE; i++) {
		const struct fdb_entry *e = &f->e[(h + i) & (FDB_SIZE - 1)];

		if (e->key == (key | IN_USE))
			return fresh(f, e, f->now) ? e->port : -1;
		if (!(e->key & IN_USE))
			return -1;
	}
	return -1;
}

/* Learns, refreshes or moves key to port; the first free or aged slot of
 * the neighbourhood takes a new MAC; a full neighbourhood keeps flooding. */
static void fdb_learn(struct sw_fdb *f, uint64_t key, uint8_t port)
{
	unsigned h = fdb_hash(key);
	struct fdb_entry *spare = NULL;

	for (unsigned i = 0; i < FDB_PROBE; i++) {
		struct fdb_entry *e = &f->e[(h + i) & (FDB_SIZE - 1)];

		if (e->key == (key | IN_USE)) {
			e->port = port;
			__atomic_store_n(&e->seen, f->now, __ATOMIC_RELAXED);
			return;
		}
		if (!spare && !fresh(f, e, f->now))
			spare = e;
		if (!(e->key & IN_USE))
			break;
	}
	if (spare) {
		spare->port = port;
		__atomic_store_n(&spare->seen, f->now, __ATOMIC_RELAXED);
		__atomic_store_n(&spare->key, key | IN_USE, __ATOMIC_RELAXED);
	}
}

/* Fills mask[q] with the packets going to port q, from their first 12
 * bytes (hdr[k], already copied out of guest memory; NULL: a runt, which
 * goes nowhere and is returned as a count). Broadcast, multicast and
 * unknown unicast flood to every other port; never back to the sender. */
static unsigned classify(struct sw *s, unsigned me, uint8_t (*hdr)[12], const bool *ok,
			 unsigned n, uint32_t *mask)
{
	unsigned runts = 0;
	uint32_t all_others = 0;

	s->fdb->now = mono_secs();
	for (unsigned q = 0; q < s->nports; q++)
		if (q != me)
			all_others |= 1u << q;
	for (unsigned k = 0; k < n; k++) {
		int port;

		if (!ok[k]) {
			runts++;
			continue;
		}
		if (!(hdr[k][6] & 1))
			fdb_learn(s->fdb, mac_key(hdr[k] + 6), (uint8_t)me);
		port = (hdr[k][0] & 1) ? -1 : fdb_lookup(s->fdb, mac_key(hdr[k]));
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
	uint8_t hdr[VRE_BURST][12];
	bool ok[VRE_BURST];
	uint64_t dropped;
	int n = vre_net_tx_fetch(sq->nq, b);
	int taken = b->n;

	if (n < 0 || taken == 0)
		return 0;
	for (unsigned k = 0; k < b->npkts; k++) {
		ok[k] = b->pkts[k].eth != NULL;
		if (ok[k])
			memcpy(hdr[k], b->pkts[k].eth, 12); /* the one read */
	}
	dropped = classify(s, sq->port->idx, hdr, ok, b->npkts, mask);
	for (unsigned q = 0; q < s->nports; q++) {
		struct vre_net_queue *dst;

		if (!mask[q])
			continue;
		if (s->ports[q].eth) {
			dropped += sw_learn_to_eth(sq, &s->ports[q], mask[q]);
			continue;
		}
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

/* ethdev RX in learn mode: the same table, mbufs instead of chains. A
 * packet going to several ethdev ports is sent with one more reference
 * per extra port (rte_pktmbuf_refcnt_update covers every segment). */
int sw_learn_eth_poll(struct vre_poll_item *it)
{
	struct sw_queue *sq = it->ctx;
	struct sw_port *p = sq->port;
	struct sw *s = p->sw;
	struct rte_mbuf *m[VRE_BURST], *sel[VRE_BURST];
	uint32_t mask[SW_MAX_PORTS] = { 0 };
	uint8_t hdr[VRE_BURST][12];
	bool ok[VRE_BURST];
	uint64_t bytes = 0, dropped;
	uint16_t n = rte_eth_rx_burst(p->eth_id, 0, m, VRE_BURST);

	if (n == 0)
		return 0;
	for (uint16_t k = 0; k < n; k++) {
		bytes += rte_pktmbuf_pkt_len(m[k]);
		ok[k] = rte_pktmbuf_data_len(m[k]) >= 12;
		if (ok[k])
			memcpy(hdr[k], rte_pktmbuf_mtod(m[k], const uint8_t *), 12);
	}
	__atomic_store_n(&p->eth_in_pkts, p->eth_in_pkts + n, __ATOMIC_RELAXED);
	__atomic_store_n(&p->eth_in_bytes, p->eth_in_bytes + bytes, __ATOMIC_RELAXED);
	dropped = classify(s, p->idx, hdr, ok, n, mask);
	for (unsigned q = 0; q < s->nports; q++) {
		unsigned ns = 0;

		if (!mask[q])
			continue;
		for (unsigned k = 0; k < n; k++)
			if (mask[q] & (1u << k))
				sel[ns++] = m[k];
		if (s->ports[q].eth) {
			/* the send consumes one reference; ours is freed below */
			for (unsigned k = 0; k < ns; k++)
				rte_pktmbuf_refcnt_update(sel[k], 1);
			sw_eth_send(&s->ports[q], sel, ns);
		} else {
			struct vre_net_queue *dst[SW_MAX_PAIRS];
			unsigned nd = 0;

			/* the port's running RX queues: each flow to one */
			for (unsigned k = 0; sq->lpairs && k < s->ports[q].pairs; k++) {
				dst[nd] = __atomic_load_n(&sq->lpairs->d[q][k], __ATOMIC_ACQUIRE);
				nd += dst[nd] != NULL;
			}
			if (nd)
				sw_rx_spread(dst, nd, sel, (uint16_t)ns);
			else
				dropped += ns;
		}
	}
	if (dropped)
		__atomic_store_n(&sq->drop_no_dst, sq->drop_no_dst + dropped, __ATOMIC_RELAXED);
	rte_pktmbuf_free_bulk(m, n);
	return n;
}
