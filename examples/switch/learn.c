/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vre-switch learn mode: a MAC-learning bridge over all ports.
 *
 * Each TX packet teaches the table its source MAC -> port; its destination
 * MAC picks one port when known (unicast), else the packet floods to every
 * other existing port. The table and every queue live on the learn worker
 * (see switch.h), so it is single-writer and its reads on the hot path take
 * no lock; other threads only read entries for stats and fdb-show. Entries
 * age out after --aging seconds without traffic from their MAC.
 *
 * An entry names its port by number and generation and is found only while
 * the published view (s->view) has a port with that number and generation:
 * a removed port's entries die with it, and a port that reuses the number
 * does not inherit them (switch.h). fdb-flush bumps the table's epoch, which
 * every key carries, so all entries die at once without the control thread
 * writing the table the worker writes.
 *
 * Per burst, the packets going to one port are gathered in that port's
 * l_mask (stamped with the burst, so nothing needs clearing): unicast costs
 * one lookup per packet, flooding one pass over the view's list of ports
 * per burst, whatever the number of ports.
 *
 * Frame headers are in guest memory: the 12 MAC bytes are copied once into
 * locals and only the copy is looked at.
 *
 * SEND_RARP (a guest migrated onto a vhost port, sw_announce): the port's
 * first TX queue injects a RARP frame from the guest's MAC before its next
 * burst, through the same path as the guest's own frames.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "switch.h"
#include "vre_log.h"
#include "vre_net_mbuf.h"

#define FDB_SIZE 4096u /* power of two */
#define FDB_PROBE 8u   /* linear probe length; a full neighbourhood floods */

#define IN_USE (1ull << 63)
#define EPOCH_SHIFT 48
#define EPOCH_MASK 0x7fffu /* 15 bits between the MAC and IN_USE */
#define MAC_MASK ((1ull << 48) - 1)

struct fdb_entry {
	uint64_t key;  /* MAC in the low 48 bits, the epoch above, bit 63 = in use */
	uint32_t seen; /* seconds (monotonic) when the MAC last sent */
	uint32_t port; /* port number ... */
	uint32_t gen;  /* ... and generation */
};

struct sw_fdb {
	struct fdb_entry e[FDB_SIZE];
	uint32_t aging;  /* seconds; an entry older than this is forgotten */
	uint32_t now;    /* the writer's clock, set once per burst */
	uint32_t epoch;  /* bumped by fdb-flush (any thread, atomic) */
	uint64_t ekey;   /* the writer's copy: epoch << 48 | IN_USE, per burst */
};

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
		f->ekey = IN_USE;
	}
	return f;
}

void sw_fdb_destroy(struct sw_fdb *f)
{
	free(f);
}

static inline uint64_t epoch_key(uint32_t epoch)
{
	return (uint64_t)(epoch & EPOCH_MASK) << EPOCH_SHIFT | IN_USE;
}

static inline bool fresh(const struct sw_fdb *f, uint64_t key, uint32_t seen, uint64_t ekey,
			 uint32_t now)
{
	return (key & ~MAC_MASK) == ekey && now - seen < f->aging;
}

/* The port an entry names, if it still exists. */
static inline struct sw_port *port_of(struct sw_port *const *by_no, unsigned cap, uint32_t port,
				      uint32_t gen)
{
	struct sw_port *p = port < cap ? by_no[port] : NULL;

	return p && p->gen == gen ? p : NULL;
}

/* ---- readers on other threads (s->lock held: s->ports is stable) ---- */

struct fdb_snap {
	uint64_t key;
	uint32_t seen, port, gen;
};

static bool read_live(struct sw *s, unsigned i, uint64_t ekey, uint32_t now, struct fdb_snap *x)
{
	const struct fdb_entry *e = &s->fdb->e[i];

	/* racy but harmless: a torn entry shows an odd row, never a crash */
	x->key = __atomic_load_n(&e->key, __ATOMIC_RELAXED);
	x->seen = __atomic_load_n(&e->seen, __ATOMIC_RELAXED);
	x->port = __atomic_load_n(&e->port, __ATOMIC_RELAXED);
	x->gen = __atomic_load_n(&e->gen, __ATOMIC_RELAXED);
	return fresh(s->fdb, x->key, x->seen, ekey, now) &&
	       port_of(s->ports, s->cap, x->port, x->gen) != NULL;
}

uint64_t sw_fdb_count(struct sw *s)
{
	uint32_t now = mono_secs();
	uint64_t n = 0, ekey;
	struct fdb_snap x;

	if (!s->fdb)
		return 0;
	ekey = epoch_key(__atomic_load_n(&s->fdb->epoch, __ATOMIC_RELAXED));
	for (unsigned i = 0; i < FDB_SIZE; i++)
		n += read_live(s, i, ekey, now, &x);
	return n;
}

unsigned sw_fdb_list(struct sw *s, struct sw_fdb_row *rows, unsigned max)
{
	uint32_t now = mono_secs();
	uint64_t ekey;
	unsigned n = 0;
	struct fdb_snap x;

	if (!s->fdb)
		return 0;
	ekey = epoch_key(__atomic_load_n(&s->fdb->epoch, __ATOMIC_RELAXED));
	for (unsigned i = 0; i < FDB_SIZE && n < max; i++) {
		if (!read_live(s, i, ekey, now, &x))
			continue;
		for (int b = 0; b < 6; b++)
			rows[n].mac[b] = (uint8_t)(x.key >> (8 * (5 - b)));
		rows[n].port = x.port;
		rows[n].age_s = now - x.seen;
		n++;
	}
	return n;
}

uint64_t sw_fdb_flush(struct sw *s)
{
	uint64_t live = sw_fdb_count(s);

	if (s->fdb)
		__atomic_add_fetch(&s->fdb->epoch, 1, __ATOMIC_RELAXED);
	return live;
}

/* ---- the learn worker ---- */

static inline uint64_t mac_key(const uint8_t *m)
{
	return (uint64_t)m[0] << 40 | (uint64_t)m[1] << 32 | (uint64_t)m[2] << 24 |
	       (uint64_t)m[3] << 16 | (uint64_t)m[4] << 8 | m[5];
}

static inline unsigned fdb_hash(uint64_t mac)
{
	return (unsigned)((mac * 0x9e3779b97f4a7c15ull) >> 52) & (FDB_SIZE - 1);
}

/* An aged, flushed or dead entry keeps its slot (so probing stays simple)
 * but is not found: its MAC floods until it sends again. */
static struct sw_port *fdb_lookup(const struct sw_fdb *f, const struct sw_view *v, uint64_t mac)
{
	uint64_t key = mac | f->ekey;
	unsigned h = fdb_hash(mac);

	for (unsigned i = 0; i < FDB_PROBE; i++) {
		const struct fdb_entry *e = &f->e[(h + i) & (FDB_SIZE - 1)];

		if (e->key == key)
			return f->now - e->seen < f->aging ?
				       port_of(v->by_no, v->cap, e->port, e->gen) : NULL;
		if (!(e->key & IN_USE))
			return NULL;
	}
	return NULL;
}

/* Learns, refreshes or moves mac to port p; the first free, aged or dead
 * slot of the neighbourhood takes a new MAC; a full one keeps flooding. */
static void fdb_learn(struct sw_fdb *f, const struct sw_view *v, uint64_t mac,
		      const struct sw_port *p)
{
	uint64_t key = mac | f->ekey;
	unsigned h = fdb_hash(mac);
	struct fdb_entry *spare = NULL;

	for (unsigned i = 0; i < FDB_PROBE; i++) {
		struct fdb_entry *e = &f->e[(h + i) & (FDB_SIZE - 1)];

		if (e->key == key) {
			if (e->port != p->idx || e->gen != p->gen) {
				__atomic_store_n(&e->port, p->idx, __ATOMIC_RELAXED);
				__atomic_store_n(&e->gen, p->gen, __ATOMIC_RELAXED);
			}
			__atomic_store_n(&e->seen, f->now, __ATOMIC_RELAXED);
			return;
		}
		if (!spare && (!fresh(f, e->key, e->seen, f->ekey, f->now) ||
			       !port_of(v->by_no, v->cap, e->port, e->gen)))
			spare = e;
		if (!(e->key & IN_USE))
			break;
	}
	if (spare) {
		__atomic_store_n(&spare->port, p->idx, __ATOMIC_RELAXED);
		__atomic_store_n(&spare->gen, p->gen, __ATOMIC_RELAXED);
		__atomic_store_n(&spare->seen, f->now, __ATOMIC_RELAXED);
		__atomic_store_n(&spare->key, key, __ATOMIC_RELAXED);
	}
}

/* Where one burst goes. */
struct lburst {
	uint32_t stamp;
	uint32_t flood;              /* packets to every other port */
	unsigned nuni;
	struct sw_port *uni[VRE_BURST]; /* ports with unicast packets, l_mask */
	unsigned runts;
};

/* From the packets' first 12 bytes (hdr[k], already copied out of guest
 * memory; ok[k] false: a runt, which goes nowhere and is counted):
 * broadcast, multicast and unknown unicast flood to every other port, never
 * back to the sender; known unicast goes to its port's l_mask. */
static void classify(struct sw *s, const struct sw_view *v, const struct sw_port *me,
		     uint8_t (*hdr)[12], const bool *ok, unsigned n, struct lburst *lb)
{
	struct sw_fdb *f = s->fdb;

	lb->stamp = ++s->learn_stamp ? s->learn_stamp : ++s->learn_stamp; /* never 0 */
	lb->flood = 0;
	lb->nuni = 0;
	lb->runts = 0;
	f->now = mono_secs();
	f->ekey = epoch_key(__atomic_load_n(&f->epoch, __ATOMIC_RELAXED));
	for (unsigned k = 0; k < n; k++) {
		struct sw_port *p;

		if (!ok[k]) {
			lb->runts++;
			continue;
		}
		if (!(hdr[k][6] & 1))
			fdb_learn(f, v, mac_key(hdr[k] + 6), me);
		p = (hdr[k][0] & 1) ? NULL : fdb_lookup(f, v, mac_key(hdr[k]));
		if (p == me)
			continue; /* the sender's own segment: filtered */
		if (!p) {
			lb->flood |= 1u << k;
			continue;
		}
		if (p->l_stamp != lb->stamp) {
			p->l_stamp = lb->stamp;
			p->l_mask = 0;
			lb->uni[lb->nuni++] = p;
		}
		p->l_mask |= 1u << k;
	}
}

/* The packets of the burst for port p, and which of them were unicast. */
static inline uint32_t mask_for(const struct lburst *lb, const struct sw_port *p, uint32_t *uni)
{
	*uni = p->l_stamp == lb->stamp ? p->l_mask : 0;
	return lb->flood | *uni;
}

/* vhost TX -> port p (vhost or ethdev). Returns packets dropped for want
 * of a running RX queue (unicast only: a flood skips a port without one). */
static unsigned to_port(struct sw_queue *sq, struct sw_port *p, uint32_t mask, uint32_t uni)
{
	unsigned pair = sq->index / 2u;
	struct vre_net_queue *dst;

	if (p->eth) {
		sw_learn_to_eth(sq, p, mask); /* no mbuf: counted as drop_no_mbuf */
		return 0;
	}
	dst = __atomic_load_n(&p->rx_pub[pair < p->pairs ? pair : pair % p->pairs],
			      __ATOMIC_ACQUIRE);
	if (dst) {
		vre_net_rx_put(dst, sq->burst, mask);
		return 0;
	}
	return (unsigned)__builtin_popcount(uni);
}

/*
 * The fused path (vre_net_fused_take/put) for a burst of common chains
 * whose frames all go to one vhost port: the usual burst between two
 * stations once both are learnt. The table learns from the run as the
 * general path would; anything else (a flood, several destinations, an
 * ethdev port, a runt, a destination not running) gives the run back and
 * the general path takes the burst, classifying it again (learning the
 * same MACs twice changes nothing). Returns as vre_net_forward_fused.
 */
static int learn_fused(struct sw_queue *sq, const struct sw_view *v)
{
	struct sw_port *me = sq->port, *p;
	struct vre_net_queue *dst = NULL;
	const unsigned pair = sq->index / 2u;
	const uint16_t hl = sq->nq->hdr_len;
	uint8_t hdr[VRE_BURST][12];
	bool ok[VRE_BURST];
	struct lburst lb;
	struct vre_run tx;
	uint32_t all;
	int n = vre_net_fused_take(sq->nq, &tx);

	if (n <= 0)
		return n;
	for (int k = 0; k < n; k++) {
		ok[k] = tx.len[k] >= hl + 14u;
		if (ok[k])
			memcpy(hdr[k], tx.base[k] + hl, 12); /* the one read */
	}
	all = n >= 32 ? UINT32_MAX : (1u << n) - 1;
	classify(me->sw, v, me, hdr, ok, (unsigned)n, &lb);
	/* every packet to one port, none flooded, filtered or a runt */
	if (!lb.runts && !lb.flood && lb.nuni == 1 && lb.uni[0]->l_mask == all &&
	    !(p = lb.uni[0])->eth)
		dst = __atomic_load_n(&p->rx_pub[pair < p->pairs ? pair : pair % p->pairs],
				      __ATOMIC_ACQUIRE);
	if (!dst) {
		vre_net_fused_giveback(sq->nq, &tx);
		return -EAGAIN;
	}
	return vre_net_fused_put(sq->nq, &tx, dst);
}

/* The packets of b (from sq's port) to where the table sends them. */
static void learn_deliver(struct sw_queue *sq, struct vre_net_tx_burst *b)
{
	struct sw_port *me = sq->port;
	struct sw *s = me->sw;
	const struct sw_view *v = __atomic_load_n(&s->view, __ATOMIC_ACQUIRE);
	uint8_t hdr[VRE_BURST][12];
	bool ok[VRE_BURST];
	struct lburst lb;
	uint64_t dropped;
	uint32_t m, uni;

	for (unsigned k = 0; k < b->npkts; k++) {
		ok[k] = b->pkts[k].eth != NULL;
		if (ok[k])
			memcpy(hdr[k], b->pkts[k].eth, 12); /* the one read */
	}
	classify(s, v, me, hdr, ok, b->npkts, &lb);
	dropped = lb.runts;
	if (lb.flood) {
		for (unsigned i = 0; i < v->n; i++) {
			struct sw_port *p = v->list[i];

			if (p != me && (m = mask_for(&lb, p, &uni)))
				dropped += to_port(sq, p, m, uni);
		}
	} else {
		for (unsigned i = 0; i < lb.nuni; i++)
			dropped += to_port(sq, lb.uni[i], lb.uni[i]->l_mask, lb.uni[i]->l_mask);
	}
	if (dropped)
		__atomic_store_n(&sq->drop_no_dst, sq->drop_no_dst + dropped, __ATOMIC_RELAXED);
}

void sw_announce(struct sw_port *p, const uint8_t mac[6])
{
	if (p->sw->mode != SW_LEARN || p->eth || !p->q || p->nq < 2) {
		VRE_INFO("switch", "port %u: SEND_RARP ignored: only learn mode learns MACs",
			 p->idx);
		return;
	}
	VRE_INFO("switch", "port %u: guest %02x:%02x:%02x:%02x:%02x:%02x announced (SEND_RARP): learning it here, flooding a RARP from it",
		 p->idx, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
	__atomic_store_n(&p->q[1].announce, mac_key(mac) | IN_USE, __ATOMIC_RELEASE);
}

/*
 * A SEND_RARP that arrived for this port: a RARP frame from the guest's MAC
 * goes through the table as if the guest had sent it, so its MAC is learned
 * on this port (number and generation) at once and the frame floods to
 * every other port of the view, where peers and physical switches learn
 * the new path too. DPDK's vhost library does the same (virtio_net.c:
 * broadcast_rarp, inject_rarp at the next dequeue). Out of line: the poll
 * only tests sq->announce.
 */
static __attribute__((noinline, cold)) void learn_announce(struct sw_queue *sq)
{
	uint64_t key = __atomic_exchange_n(&sq->announce, 0, __ATOMIC_ACQUIRE) & MAC_MASK;
	struct vre_net_tx_burst *b = sq->burst;
	uint8_t mac[6], frame[VRE_NET_RARP_LEN];
	struct iovec iov;

	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)(key >> (40 - 8 * i));
	iov.iov_base = frame;
	iov.iov_len = vre_net_rarp_frame(mac, frame);
	b->n = 0; /* no chain behind it: nothing to complete */
	b->npkts = 1;
	b->pkts[0] = (struct vre_net_pkt){ .iov = &iov, .niov = 1,
					   .len = (uint32_t)iov.iov_len, .eth = frame };
	learn_deliver(sq, b);
	b->npkts = 0;
}

int sw_learn_poll(struct vre_poll_item *it)
{
	struct sw_queue *sq = it->ctx;
	struct vre_net_tx_burst *b = sq->burst;
	int n, taken;

	if (__builtin_expect(__atomic_load_n(&sq->announce, __ATOMIC_RELAXED) != 0, 0))
		learn_announce(sq);
	n = learn_fused(sq, __atomic_load_n(&sq->port->sw->view, __ATOMIC_ACQUIRE));
	if (n != -EAGAIN)
		return n;
	n = vre_net_tx_fetch(sq->nq, b);
	taken = b->n;
	if (n < 0 || taken == 0)
		return 0;
	learn_deliver(sq, b);
	vre_net_tx_done(sq->nq, b);
	return taken;
}

/* ethdev RX -> port p: the packets in mask. A packet going to several
 * ethdev ports is sent with one more reference per port (the send consumes
 * one; ours is freed by the caller). */
static unsigned eth_to_port(struct sw_port *p, struct rte_mbuf **m, uint16_t n, uint32_t mask,
			    uint32_t uni)
{
	struct rte_mbuf *sel[VRE_BURST];
	struct vre_net_queue *dst[SW_MAX_PAIRS];
	unsigned ns = 0, nd = 0;

	for (unsigned k = 0; k < n; k++)
		if (mask & (1u << k))
			sel[ns++] = m[k];
	if (p->eth) {
		for (unsigned k = 0; k < ns; k++)
			rte_pktmbuf_refcnt_update(sel[k], 1);
		sw_eth_send(p, sel, ns);
		return 0;
	}
	/* the port's running RX queues: each flow to one */
	for (unsigned k = 0; k < p->pairs; k++) {
		dst[nd] = __atomic_load_n(&p->rx_pub[k], __ATOMIC_ACQUIRE);
		nd += dst[nd] != NULL;
	}
	if (!nd)
		return (unsigned)__builtin_popcount(uni);
	sw_rx_spread(dst, nd, sel, (uint16_t)ns);
	return 0;
}

/* ethdev RX in learn mode: the same table, mbufs instead of chains. */
int sw_learn_eth_poll(struct vre_poll_item *it)
{
	struct sw_queue *sq = it->ctx;
	struct sw_port *me = sq->port;
	struct sw *s = me->sw;
	const struct sw_view *v = __atomic_load_n(&s->view, __ATOMIC_ACQUIRE);
	struct rte_mbuf *m[VRE_BURST];
	uint8_t hdr[VRE_BURST][12];
	bool ok[VRE_BURST];
	struct lburst lb;
	uint64_t bytes = 0, dropped;
	uint32_t mk, uni;
	uint16_t n = rte_eth_rx_burst(me->eth_id, 0, m, VRE_BURST);

	if (n == 0)
		return 0;
	for (uint16_t k = 0; k < n; k++) {
		bytes += rte_pktmbuf_pkt_len(m[k]);
		ok[k] = rte_pktmbuf_data_len(m[k]) >= 12;
		if (ok[k])
			memcpy(hdr[k], rte_pktmbuf_mtod(m[k], const uint8_t *), 12);
	}
	__atomic_store_n(&me->eth_in_pkts, me->eth_in_pkts + n, __ATOMIC_RELAXED);
	__atomic_store_n(&me->eth_in_bytes, me->eth_in_bytes + bytes, __ATOMIC_RELAXED);
	classify(s, v, me, hdr, ok, n, &lb);
	dropped = lb.runts;
	if (lb.flood) {
		for (unsigned i = 0; i < v->n; i++) {
			struct sw_port *p = v->list[i];

			if (p != me && (mk = mask_for(&lb, p, &uni)))
				dropped += eth_to_port(p, m, n, mk, uni);
		}
	} else {
		for (unsigned i = 0; i < lb.nuni; i++)
			dropped += eth_to_port(lb.uni[i], m, n, lb.uni[i]->l_mask, lb.uni[i]->l_mask);
	}
	if (dropped)
		__atomic_store_n(&sq->drop_no_dst, sq->drop_no_dst + dropped, __ATOMIC_RELAXED);
	rte_pktmbuf_free_bulk(m, n);
	return n;
}
