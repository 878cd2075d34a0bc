/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vre-switch learn mode: a MAC-learning bridge over all ports, on every
 * worker.
 *
 * Each TX packet teaches the table its source MAC -> port; its destination
 * MAC picks one port when known (unicast), else the packet floods to every
 * other existing port. The table (fdb.c: an rte_hash with lock-free
 * readers) is read and written by every worker; a worker writes only when
 * a MAC is new, moved, or due for its once-a-second age refresh, so a busy
 * flow stores nothing shared per packet. Entries age out after --aging
 * seconds without traffic from their MAC.
 *
 * An entry names its port by number and generation and is used only while
 * the published view (s->view) has a port with that number and generation:
 * a removed port's entries die with it, and a port that reuses the number
 * does not inherit them (switch.h). fdb-flush bumps the table's epoch, so
 * every entry dies at once. main.c's thread sweeps dead entries out once a
 * second (sw_fdb_sweep).
 *
 * Queues are spread over the workers as in xconnect mode (round-robin,
 * --vhost pin=, rxq-pin, rebalance); a queue pair's TX queue lives with its
 * RX queue. Every RX ring still has exactly one writer, its owner
 * (p->rx_wi[pair]; an ethdev port's TX queue k: worker k, sw_eth_txq, so a
 * worker sends to an ethdev port on its own TX queue and hands over only
 * when the port has fewer TX queues than there are workers). A worker
 * puts into the RX rings it owns directly, from the guest's TX chains (one
 * copy), and hands packets for another worker's ring over as mbufs through
 * a ring per (sender, owner) pair of workers (rte_ring, single producer,
 * single consumer), which the owner drains in a poll item of its own
 * (drain_poll) into the RX ring. Why this design:
 *   - a per-(worker pair) SPSC ring moves, per burst, the cache lines of the
 *     ring slots and of its producer tail (written by one side, read by the
 *     other) and no more: no atomic read-modify-write, and no line written
 *     by two producers, unlike a multi-producer ring per destination queue
 *     (whose head every sender CASes) or a lock per RX ring (a line that
 *     bounces between every pair of senders on every burst);
 *   - a worker never writes a ring state it does not own, so the vring
 *     library's single-producer rules hold unchanged;
 *   - the price is a second copy for packets that cross workers (guest TX
 *     -> mbuf -> guest RX): completing a guest's TX chains on another
 *     worker would make TX completion cross-thread, which it is nowhere
 *     else. Traffic between queues on one worker (and all traffic with one
 *     worker) keeps the one-copy path; xconnect has no such handoff because
 *     its static pairs let each TX queue live on its RX queue's worker.
 * The owner sleeps on an eventfd when idle (drain_arm): a sender writes it
 * only while the owner is armed to sleep, so under load there is no
 * syscall. Moving an RX queue to another worker (rebalance, rxq-pin) takes
 * every sender off its worker and waits until the handoff rings are empty
 * before the owner changes, so a ring never has two writers and nothing in
 * flight is lost (sw_learn_quiet).
 *
 * Per burst, the packets going to one port are gathered in that port's
 * per-worker scratch (stamped with the burst, so nothing needs clearing):
 * unicast costs one table lookup per distinct MAC of the burst, flooding
 * one pass over the view's list of ports per burst, whatever the number of
 * ports.
 *
 * Frame headers are in guest memory: the 12 MAC bytes are copied once into
 * locals and only the copy is looked at.
 *
 * SEND_RARP (a guest migrated onto a vhost port, sw_announce): the port's
 * first TX queue injects a RARP frame from the guest's MAC before its next
 * burst, through the same path as the guest's own frames.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "fdb.h"
#include "switch.h"
#include "vre_log.h"
#include "vre_net_mbuf.h"

#define ROOM "switch"
#define FDB_CAPACITY 65536u
#define HO_ETH 0xffffu    /* handoff to an ethdev port's TX, not an RX pair */
#define HO_CACHE 64
#define QUIET_TRIES 2000  /* syncs waiting for the handoff rings to empty */

/* One packet handed to the worker that owns its destination. */
struct ho {
	struct rte_mbuf *m;
	uint32_t gen;
	uint16_t port;
	uint16_t pair;       /* RX pair, or HO_ETH */
};

/* A worker's learn-mode state (s->lw[i]); written by worker i only,
 * except armed (see wake) and the rings' producer sides. */
struct sw_lw {
	struct sw *s;
	unsigned idx;
	uint32_t stamp;              /* one per burst, never 0 */
	struct rte_ring **in;        /* in[i]: from worker i; NULL for itself */
	int efd;                     /* drain item's wake fd */
	int armed;                   /* about to sleep: senders write efd */
	uint64_t ho_drops;           /* handed over, then no destination */
	struct vre_poll_item item;
} __attribute__((aligned(64)));

static inline uint64_t ld(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline unsigned owner_of(const struct sw_port *p, unsigned pair)
{
	return __atomic_load_n(&p->rx_wi[pair], __ATOMIC_RELAXED);
}

/* ---- the table, from control's side ---- */

struct sw_fdb *sw_fdb_create(unsigned aging)
{
	return fdb_create(FDB_CAPACITY, aging);
}

void sw_fdb_destroy(struct sw_fdb *f)
{
	fdb_destroy(f);
}

/* The port an entry names, if it still exists. */
static inline struct sw_port *port_of(struct sw_port *const *by_no, unsigned cap, uint32_t port,
				      uint32_t gen)
{
	struct sw_port *p = port < cap ? by_no[port] : NULL;

	return p && p->gen == gen ? p : NULL;
}

struct walk {
	struct sw *s;
	struct sw_fdb_row *rows;
	unsigned max, n;
};

static bool count_one(void *arg, uint64_t mac, uint32_t port, uint32_t gen, uint32_t age)
{
	struct walk *w = arg;

	(void)mac, (void)age;
	w->n += port_of(w->s->ports, w->s->cap, port, gen) != NULL;
	return true;
}

static bool list_one(void *arg, uint64_t mac, uint32_t port, uint32_t gen, uint32_t age)
{
	struct walk *w = arg;

	if (!port_of(w->s->ports, w->s->cap, port, gen))
		return true;
	if (w->n == w->max)
		return false;
	for (int b = 0; b < 6; b++)
		w->rows[w->n].mac[b] = (uint8_t)(mac >> (8 * (5 - b)));
	w->rows[w->n].port = port;
	w->rows[w->n].age_s = age;
	w->n++;
	return true;
}

uint64_t sw_fdb_count(struct sw *s)
{
	struct walk w = { .s = s };

	if (s->fdb)
		fdb_walk(s->fdb, count_one, &w);
	return w.n;
}

unsigned sw_fdb_list(struct sw *s, struct sw_fdb_row *rows, unsigned max)
{
	struct walk w = { .s = s, .rows = rows, .max = max };

	if (s->fdb)
		fdb_walk(s->fdb, list_one, &w);
	return w.n;
}

uint64_t sw_fdb_flush(struct sw *s)
{
	uint64_t live = sw_fdb_count(s);

	if (s->fdb)
		fdb_flush(s->fdb);
	return live;
}

static bool sweep_alive(void *arg, uint32_t port, uint32_t gen)
{
	struct sw *s = arg;

	return port_of(s->ports, s->cap, port, gen) != NULL;
}

/* Runs without s->lock: control's thread may be waiting for a worker
 * with s->lock held, and a worker never waits for anything. */
static void sweep_sync(void *arg)
{
	struct sw *s = arg;

	pthread_mutex_unlock(&s->lock);
	sw_sync_all(s);
	pthread_mutex_lock(&s->lock);
}

unsigned sw_fdb_sweep(struct sw *s)
{
	unsigned n;

	if (!s->fdb)
		return 0;
	pthread_mutex_lock(&s->lock);
	n = fdb_sweep(s->fdb, sweep_alive, sweep_sync, s);
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* ---- handoff between workers ---- */

/* The owner is (about to be) asleep: wake it. The fence pairs with
 * drain_arm's: either the owner sees the ring non-empty, or we see it
 * armed. */
static void wake(struct sw_lw *to)
{
	uint64_t one = 1;

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&to->armed, __ATOMIC_RELAXED) && write(to->efd, &one, 8) < 0) {
		/* EAGAIN: the counter is full, so the owner is awake anyway */
	}
}

/* Hands n mbufs for (p, pair) to worker `to`. Returns those that did not
 * fit (freed): the owner did not keep up. */
static unsigned handoff(struct sw_lw *lw, unsigned to, const struct sw_port *p, unsigned pair,
			struct rte_mbuf **m, unsigned n)
{
	struct sw_lw *dst = &lw->s->lw[to];
	struct ho e[VRE_BURST];
	unsigned put;

	for (unsigned k = 0; k < n; k++)
		e[k] = (struct ho){ m[k], p->gen, (uint16_t)p->idx, (uint16_t)pair };
	put = rte_ring_sp_enqueue_burst_elem(dst->in[lw->idx], e, sizeof(e[0]), n, NULL);
	if (put < n)
		rte_pktmbuf_free_bulk(m + put, n - put);
	if (put)
		wake(dst);
	return n - put;
}

/* Delivers n mbufs of one destination (e[0]'s) from a handoff ring: into
 * the RX ring when this worker still owns it, else on to its owner. */
static void deliver(struct sw_lw *lw, const struct sw_view *v, const struct ho *e, unsigned n)
{
	struct sw_port *p = port_of(v->by_no, v->cap, e->port, e->gen);
	struct rte_mbuf *m[VRE_BURST];
	unsigned lost = 0;

	for (unsigned k = 0; k < n; k++)
		m[k] = e[k].m;
	if (!p || p->eth != (e->pair == HO_ETH)) {
		lost = n; /* the port went away meanwhile */
		rte_pktmbuf_free_bulk(m, n);
	} else if (p->eth) {
		unsigned o = sw_eth_txq(p, lw->idx);

		if (o == lw->idx)
			sw_eth_send(p, (uint16_t)o, m, n); /* takes them */
		else
			lost = handoff(lw, o, p, HO_ETH, m, n);
	} else {
		struct vre_net_queue *dst = e->pair < p->pairs ?
			__atomic_load_n(&p->rx_pub[e->pair], __ATOMIC_ACQUIRE) : NULL;
		unsigned o = owner_of(p, e->pair % p->pairs);

		if (dst && o == lw->idx) {
			vre_net_rx_from_mbufs(dst, m, (uint16_t)n); /* drops counted on dst */
			rte_pktmbuf_free_bulk(m, n);
		} else if (dst) {
			lost = handoff(lw, o, p, e->pair, m, n);
		} else {
			lost = n; /* its guest stopped the queue meanwhile */
			rte_pktmbuf_free_bulk(m, n);
		}
	}
	if (lost)
		__atomic_store_n(&lw->ho_drops, lw->ho_drops + lost, __ATOMIC_RELAXED);
}

/* Returns what it moved so that the worker counts the pass as busy; the
 * item is a relay (sw_learn_start), so these packets are not counted again
 * in the worker's packets: the sender's poll counted them. */
static int drain_poll(struct vre_poll_item *it)
{
	struct sw_lw *lw = it->ctx;
	struct sw *s = lw->s;
	const struct sw_view *v = __atomic_load_n(&s->view, __ATOMIC_ACQUIRE);
	int total = 0;

	for (unsigned i = 0; i < s->pool.n; i++) {
		struct ho e[VRE_BURST];
		unsigned n, a = 0;

		if (!lw->in[i])
			continue;
		n = rte_ring_sc_dequeue_burst_elem(lw->in[i], e, sizeof(e[0]), VRE_BURST, NULL);
		/* runs of one destination, in order */
		for (unsigned b = 1; b <= n; b++)
			if (b == n || e[b].port != e[a].port || e[b].gen != e[a].gen ||
			    e[b].pair != e[a].pair) {
				deliver(lw, v, e + a, b - a);
				a = b;
			}
		total += (int)n;
	}
	return total;
}

static bool rings_empty(const struct sw_lw *lw, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (lw->in[i] && rte_ring_count(lw->in[i]))
			return false;
	return true;
}

static bool drain_arm(struct vre_poll_item *it)
{
	struct sw_lw *lw = it->ctx;

	__atomic_store_n(&lw->armed, 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return !rings_empty(lw, lw->s->pool.n);
}

static void drain_disarm(struct vre_poll_item *it)
{
	struct sw_lw *lw = it->ctx;

	__atomic_store_n(&lw->armed, 0, __ATOMIC_RELAXED);
}

/* ---- setup (main.c) ---- */

int sw_learn_start(struct sw *s, char *why, size_t whylen)
{
	unsigned n = s->pool.n;
	unsigned ring = n <= 4 ? 1024 : 256;

	s->lw = aligned_alloc(64, sizeof(struct sw_lw) * n);
	if (!s->lw)
		goto nomem;
	memset(s->lw, 0, sizeof(struct sw_lw) * n);
	for (unsigned j = 0; j < n; j++) {
		s->lw[j].s = s;
		s->lw[j].idx = j;
		s->lw[j].efd = -1;
	}
	if (n < 2)
		return 0; /* one worker owns every ring: nothing to hand over */
	s->ho_pool = rte_pktmbuf_pool_create("vre_sw_handoff",
					     RTE_MIN(n * (n - 1) * ring + n * 8 * VRE_BURST +
							     2 * n * HO_CACHE, 65535u),
					     HO_CACHE, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
	if (!s->ho_pool) {
		snprintf(why, whylen, "cannot create the handoff mbuf pool: %s",
			 rte_strerror(rte_errno));
		return -ENOMEM;
	}
	for (unsigned j = 0; j < n; j++) {
		struct sw_lw *lw = &s->lw[j];

		lw->in = calloc(n, sizeof(lw->in[0]));
		lw->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (!lw->in || lw->efd < 0)
			goto nomem;
		for (unsigned i = 0; i < n; i++) {
			char name[RTE_RING_NAMESIZE];

			if (i == j)
				continue;
			snprintf(name, sizeof(name), "vre_ho_%u_%u", i, j);
			lw->in[i] = rte_ring_create_elem(name, sizeof(struct ho), ring, SOCKET_ID_ANY,
							 RING_F_SP_ENQ | RING_F_SC_DEQ);
			if (!lw->in[i]) {
				snprintf(why, whylen, "cannot create handoff ring %s: %s", name,
					 rte_strerror(rte_errno));
				return -ENOMEM;
			}
		}
		/* relay: a packet handed over was counted in the packets of
		 * the worker that took it from its source (a guest's TX queue,
		 * an ethdev RX queue), and is not counted a second time on the
		 * worker that delivers it */
		lw->item = (struct vre_poll_item){ .poll = drain_poll, .arm = drain_arm,
						   .disarm = drain_disarm, .wake_fd = lw->efd,
						   .ctx = lw, .name = "handoff", .relay = true };
		if (vre_worker_add(s->pool.w[j], &lw->item) < 0) {
			snprintf(why, whylen, "cannot add the handoff item to worker %u", j);
			return -ENOMEM;
		}
	}
	return 0;
nomem:
	snprintf(why, whylen, "out of memory");
	return -ENOMEM;
}

void sw_learn_stop(struct sw *s)
{
	for (unsigned j = 0; s->lw && j < s->pool.n; j++)
		vre_worker_remove(&s->lw[j].item); /* no-op when never added */
}

/* After sw_learn_stop and once nothing sends any more (every queue and
 * ethdev item stopped): what is still in the rings is freed. */
void sw_learn_free(struct sw *s, unsigned nworkers)
{
	for (unsigned j = 0; s->lw && j < nworkers; j++) {
		struct sw_lw *lw = &s->lw[j];

		for (unsigned i = 0; lw->in && i < nworkers; i++) {
			struct ho e;

			while (lw->in[i] &&
			       rte_ring_sc_dequeue_burst_elem(lw->in[i], &e, sizeof(e), 1, NULL))
				rte_pktmbuf_free(e.m);
			rte_ring_free(lw->in[i]);
		}
		free(lw->in);
		if (lw->efd >= 0)
			close(lw->efd);
		if (ld(&lw->ho_drops))
			VRE_INFO(ROOM, "worker %u: %" PRIu64 " packet(s) handed over found their "
				 "destination gone", j, ld(&lw->ho_drops));
	}
	free(s->lw);
	s->lw = NULL;
	rte_mempool_free(s->ho_pool);
	s->ho_pool = NULL;
}

void sw_learn_quiet(struct sw *s)
{
	for (unsigned t = 0; s->lw && s->ho_pool && t < QUIET_TRIES; t++) {
		bool empty = true;

		sw_sync_all(s);
		for (unsigned j = 0; j < s->pool.n; j++)
			empty &= rings_empty(&s->lw[j], s->pool.n);
		if (empty)
			return;
	}
	if (s->ho_pool)
		VRE_WARN(ROOM, "handoff rings still not empty; their packets follow the new owners");
}

/* ---- the workers ---- */

static inline uint64_t mac_key(const uint8_t *m)
{
	return (uint64_t)m[0] << 40 | (uint64_t)m[1] << 32 | (uint64_t)m[2] << 24 |
	       (uint64_t)m[3] << 16 | (uint64_t)m[4] << 8 | m[5];
}

/* Where one burst goes. */
struct lburst {
	uint32_t stamp;
	unsigned wi;
	uint32_t flood;              /* packets to every other port */
	unsigned nuni;
	struct sw_port *uni[VRE_BURST]; /* ports with unicast packets, lsc[wi].mask */
	unsigned runts;
};

static inline struct sw_lsc *lsc(const struct sw_port *p, unsigned wi)
{
	return &p->lsc[wi];
}

/* Looks the burst's distinct MACs up at once, learns the sources, and
 * sorts the packets: from the first 12 bytes (hdr[k], already copied out
 * of guest memory; ok[k] false: a runt, which goes nowhere and is
 * counted), broadcast, multicast and unknown unicast flood to every other
 * port, never back to the sender; known unicast goes to its port's mask. */
static void classify(struct sw_lw *lw, const struct sw_view *v, const struct sw_port *me,
		     uint8_t (*hdr)[12], const bool *ok, unsigned n, struct lburst *lb)
{
	struct sw_fdb *f = lw->s->fdb;
	uint64_t macs[2 * VRE_BURST], vals[2 * VRE_BURST], hits;
	uint8_t dk[VRE_BURST], sk[VRE_BURST];
	unsigned nk = 0;
	struct fdb_now now;

	lb->stamp = ++lw->stamp ? lw->stamp : ++lw->stamp; /* never 0 */
	lb->wi = lw->idx;
	lb->flood = 0;
	lb->nuni = 0;
	lb->runts = 0;
	fdb_now(f, &now);
	/* distinct keys: a burst is mostly one flow, so each destination is
	 * compared with the last destination, each source with the last source */
	for (unsigned k = 0, ld = 0xff, ls = 0xff; k < n; k++) {
		uint64_t d, src;

		dk[k] = sk[k] = 0xff;
		if (!ok[k])
			continue;
		d = mac_key(hdr[k]), src = mac_key(hdr[k] + 6);
		if (!(hdr[k][0] & 1)) {
			if (ld == 0xff || macs[ld] != d)
				macs[nk] = d, ld = nk++;
			dk[k] = (uint8_t)ld;
		}
		if (!(hdr[k][6] & 1)) {
			if (ls == 0xff || macs[ls] != src)
				macs[nk] = src, ls = nk++;
			sk[k] = (uint8_t)ls;
		}
	}
	hits = fdb_lookup(f, &now, macs, nk, vals);
	/* packet by packet, as if each were looked up after the one before
	 * it taught the table its source */
	for (unsigned k = 0, last = 0xff; k < n; k++) {
		struct sw_port *p = NULL;
		unsigned i = sk[k];

		if (!ok[k]) {
			lb->runts++;
			continue;
		}
		if (i != 0xff && i != last) {
			bool has = hits >> i & 1;

			last = i;
			if (fdb_learn(f, &now, macs[i], me->idx, me->gen, &has, &vals[i]) > 0) {
				hits |= 1ull << i;
				for (unsigned j = 0; j < nk; j++) /* the same MAC as a destination */
					if (j != i && macs[j] == macs[i]) {
						vals[j] = vals[i];
						hits |= 1ull << j;
					}
			}
		}
		i = dk[k];
		if (i != 0xff && (hits >> i & 1) && fdb_fresh(&now, vals[i]))
			p = port_of(v->by_no, v->cap, fdb_val_port(vals[i]), fdb_val_gen(vals[i]));
		if (p == me)
			continue; /* the sender's own segment: filtered */
		if (!p) {
			lb->flood |= 1u << k;
			continue;
		}
		if (lsc(p, lb->wi)->stamp != lb->stamp) {
			lsc(p, lb->wi)->stamp = lb->stamp;
			lsc(p, lb->wi)->mask = 0;
			lb->uni[lb->nuni++] = p;
		}
		lsc(p, lb->wi)->mask |= 1u << k;
	}
}

/* The packets of the burst for port p, and which of them were unicast. */
static inline uint32_t mask_for(const struct lburst *lb, const struct sw_port *p, uint32_t *uni)
{
	const struct sw_lsc *c = lsc(p, lb->wi);

	*uni = c->stamp == lb->stamp ? c->mask : 0;
	return lb->flood | *uni;
}

/* vre_net_tx_to_port's sink for packets handed to another worker. */
struct ho_sink {
	struct sw_lw *lw;
	unsigned to, pair, lost;
	const struct sw_port *p;
};

static void ho_sink(void *ctx, struct rte_mbuf **m, unsigned n)
{
	struct ho_sink *h = ctx;

	h->lost += handoff(h->lw, h->to, h->p, h->pair, m, n);
}

/* The packets of sq's burst in mask as mbufs for worker `to`: for an
 * ethdev port with the offloads it finishes itself, as sw_learn_to_eth
 * makes them; for another guest finished here (checksums, segmentation),
 * since an mbuf carries no virtio-net header to the guest. */
static unsigned tx_handoff(struct sw_lw *lw, struct sw_queue *sq, struct sw_port *p, unsigned to,
			   unsigned pair, uint32_t mask)
{
	struct ho_sink h = { .lw = lw, .to = to, .pair = pair, .p = p };
	struct vre_net_mbuf_port port = { 0 };

	if (p->eth)
		port = (struct vre_net_mbuf_port){ .tx_offloads = p->eth_tx_ol, .mtu = p->eth_mtu };
	vre_net_tx_to_port(sq->nq, sq->burst, mask, p->eth ? sw_eth_mempool(p) : lw->s->ho_pool,
			   &port, ho_sink, &h);
	return h.lost;
}

/* vhost TX -> port p (vhost or ethdev). Returns packets dropped for want
 * of a running RX queue (unicast only: a flood skips a port without one)
 * or of room in a handoff ring. */
static unsigned to_port(struct sw_lw *lw, struct sw_queue *sq, struct sw_port *p, uint32_t mask,
			uint32_t uni)
{
	unsigned pair = sq->index / 2u, o;
	struct vre_net_queue *dst;

	if (p->eth) {
		o = sw_eth_txq(p, lw->idx);
		if (o == lw->idx) {
			/* its own TX queue; no mbuf: counted as drop_no_mbuf */
			sw_learn_to_eth(sq, p, (uint16_t)o, mask);
			return 0;
		}
		return tx_handoff(lw, sq, p, o, HO_ETH, mask);
	}
	pair = pair < p->pairs ? pair : pair % p->pairs;
	dst = __atomic_load_n(&p->rx_pub[pair], __ATOMIC_ACQUIRE);
	if (!dst)
		return (unsigned)__builtin_popcount(uni);
	o = owner_of(p, pair);
	if (o == lw->idx) {
		vre_net_rx_put(dst, sq->burst, mask);
		return 0;
	}
	return tx_handoff(lw, sq, p, o, pair, mask);
}

/*
 * The fused path (vre_net_fused_take/put) for a burst of common chains
 * whose frames all go to one vhost port whose RX queue this worker owns:
 * the usual burst between two stations once both are learnt. The table
 * learns from the run as the general path would; anything else (a flood,
 * several destinations, an ethdev port, a runt, a destination not running
 * or another worker's) gives the run back and the general path takes the
 * burst, classifying it again (learning the same MACs twice changes
 * nothing). Returns as vre_net_forward_fused.
 */
static int learn_fused(struct sw_lw *lw, struct sw_queue *sq, const struct sw_view *v)
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
	classify(lw, v, me, hdr, ok, (unsigned)n, &lb);
	/* every packet to one port, none flooded, filtered or a runt */
	if (!lb.runts && !lb.flood && lb.nuni == 1 && lsc(lb.uni[0], lb.wi)->mask == all &&
	    !(p = lb.uni[0])->eth) {
		unsigned q = pair < p->pairs ? pair : pair % p->pairs;

		if (owner_of(p, q) == lw->idx)
			dst = __atomic_load_n(&p->rx_pub[q], __ATOMIC_ACQUIRE);
	}
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
	struct sw_lw *lw = &s->lw[sq->wi];
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
	classify(lw, v, me, hdr, ok, b->npkts, &lb);
	dropped = lb.runts;
	if (lb.flood) {
		for (unsigned i = 0; i < v->n; i++) {
			struct sw_port *p = v->list[i];

			if (p != me && (m = mask_for(&lb, p, &uni)))
				dropped += to_port(lw, sq, p, m, uni);
		}
	} else {
		for (unsigned i = 0; i < lb.nuni; i++) {
			uint32_t um = lsc(lb.uni[i], lb.wi)->mask;

			dropped += to_port(lw, sq, lb.uni[i], um, um);
		}
	}
	if (dropped)
		__atomic_store_n(&sq->drop_no_dst, sq->drop_no_dst + dropped, __ATOMIC_RELAXED);
}

/* sq->announce: 0, or the announced MAC (48 bits) with ANNOUNCE_SET. */
#define ANNOUNCE_SET (1ull << 63)
#define ANNOUNCE_MAC 0xffffffffffffull

void sw_announce(struct sw_port *p, const uint8_t mac[6])
{
	if (p->sw->mode != SW_LEARN || p->eth || !p->q || p->nq < 2) {
		VRE_INFO("switch", "port %u: SEND_RARP ignored: only learn mode learns MACs",
			 p->idx);
		return;
	}
	VRE_INFO("switch", "port %u: guest %02x:%02x:%02x:%02x:%02x:%02x announced (SEND_RARP): learning it here, flooding a RARP from it",
		 p->idx, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
	__atomic_store_n(&p->q[1].announce, mac_key(mac) | ANNOUNCE_SET, __ATOMIC_RELEASE);
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
	uint64_t key = __atomic_exchange_n(&sq->announce, 0, __ATOMIC_ACQUIRE) & ANNOUNCE_MAC;
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
	n = learn_fused(&sq->port->sw->lw[sq->wi], sq,
			__atomic_load_n(&sq->port->sw->view, __ATOMIC_ACQUIRE));
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

/* ethdev RX -> pair `pair` of vhost port p: into the ring when this worker
 * owns it (the caller frees the mbufs), else handed over with a reference
 * of their own. */
static unsigned mbufs_to_pair(struct sw_lw *lw, struct sw_port *p, unsigned pair,
			      struct vre_net_queue *dst, struct rte_mbuf **m, unsigned n)
{
	unsigned o = owner_of(p, pair);

	if (o == lw->idx) {
		vre_net_rx_from_mbufs(dst, m, (uint16_t)n); /* drops counted on dst */
		return 0;
	}
	for (unsigned k = 0; k < n; k++)
		rte_pktmbuf_refcnt_update(m[k], 1);
	return handoff(lw, o, p, pair, m, n);
}

/* ethdev RX -> port p: the packets in mask. A packet going to several
 * ports is passed on with one more reference per port (a send or a
 * handoff consumes one; ours is freed by the caller). */
static unsigned eth_to_port(struct sw_lw *lw, struct sw_port *p, struct rte_mbuf **m, uint16_t n,
			    uint32_t mask, uint32_t uni)
{
	struct rte_mbuf *sel[VRE_BURST], *by[SW_MAX_PAIRS][VRE_BURST];
	struct vre_net_queue *dst[SW_MAX_PAIRS];
	uint16_t cnt[SW_MAX_PAIRS] = { 0 };
	unsigned pairs[SW_MAX_PAIRS], ns = 0, nd = 0, lost = 0;

	for (unsigned k = 0; k < n; k++)
		if (mask & (1u << k))
			sel[ns++] = m[k];
	if (p->eth) {
		unsigned o = sw_eth_txq(p, lw->idx);

		for (unsigned k = 0; k < ns; k++)
			rte_pktmbuf_refcnt_update(sel[k], 1);
		if (o == lw->idx) {
			sw_eth_send(p, (uint16_t)o, sel, ns);
			return 0;
		}
		return handoff(lw, o, p, HO_ETH, sel, ns);
	}
	/* the port's running RX queues: each flow to one */
	for (unsigned k = 0; k < p->pairs; k++) {
		dst[nd] = __atomic_load_n(&p->rx_pub[k], __ATOMIC_ACQUIRE);
		pairs[nd] = k;
		nd += dst[nd] != NULL;
	}
	if (!nd)
		return (unsigned)__builtin_popcount(uni);
	if (nd == 1)
		return mbufs_to_pair(lw, p, pairs[0], dst[0], sel, ns);
	for (unsigned k = 0; k < ns; k++) {
		unsigned q = sw_flow_hash(sel[k]) % nd;

		by[q][cnt[q]++] = sel[k];
	}
	for (unsigned q = 0; q < nd; q++)
		if (cnt[q])
			lost += mbufs_to_pair(lw, p, pairs[q], dst[q], by[q], cnt[q]);
	return lost;
}

/* ethdev RX in learn mode: the same table, mbufs instead of chains. */
int sw_learn_eth_poll(struct vre_poll_item *it)
{
	struct sw_queue *sq = it->ctx;
	struct sw_port *me = sq->port;
	struct sw *s = me->sw;
	struct sw_lw *lw = &s->lw[sq->wi];
	const struct sw_view *v = __atomic_load_n(&s->view, __ATOMIC_ACQUIRE);
	struct rte_mbuf *m[VRE_BURST];
	uint8_t hdr[VRE_BURST][12];
	bool ok[VRE_BURST];
	struct lburst lb;
	uint64_t bytes = 0, dropped;
	uint32_t mk, uni;
	struct sw_eth_rxc *c = &me->eth_rxc[sq->index / 2u];
	uint16_t n = rte_eth_rx_burst(me->eth_id, sq->index / 2u, m, VRE_BURST);

	if (n == 0)
		return 0;
	for (uint16_t k = 0; k < n; k++) {
		bytes += rte_pktmbuf_pkt_len(m[k]);
		ok[k] = rte_pktmbuf_data_len(m[k]) >= 12;
		if (ok[k])
			memcpy(hdr[k], rte_pktmbuf_mtod(m[k], const uint8_t *), 12);
	}
	__atomic_store_n(&c->pkts, c->pkts + n, __ATOMIC_RELAXED);
	__atomic_store_n(&c->bytes, c->bytes + bytes, __ATOMIC_RELAXED);
	classify(lw, v, me, hdr, ok, n, &lb);
	dropped = lb.runts;
	if (lb.flood) {
		for (unsigned i = 0; i < v->n; i++) {
			struct sw_port *p = v->list[i];

			if (p != me && (mk = mask_for(&lb, p, &uni)))
				dropped += eth_to_port(lw, p, m, n, mk, uni);
		}
	} else {
		for (unsigned i = 0; i < lb.nuni; i++) {
			uint32_t um = lsc(lb.uni[i], lb.wi)->mask;

			dropped += eth_to_port(lw, lb.uni[i], m, n, um, um);
		}
	}
	if (dropped)
		__atomic_store_n(&sq->drop_no_dst, sq->drop_no_dst + dropped, __ATOMIC_RELAXED);
	rte_pktmbuf_free_bulk(m, n);
	return n;
}
