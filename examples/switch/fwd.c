/* SPDX-License-Identifier: BSD-3-Clause */
/* vre-switch: queue tables, poll items, the queue_start/queue_stop hooks,
 * xconnect links between ports, rebalance and pinning (the design is
 * described in switch.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "switch.h"
#include "vre_log.h"

#define ROOM "switch"

static inline uint64_t ld(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* ---- poll items ---- */

static uint32_t mask_of(unsigned n)
{
	return n >= 32 ? UINT32_MAX : (1u << n) - 1;
}

static uint64_t coarse_ns(void)
{
	struct timespec ts;

	/* vDSO, no syscall; only read while a destination is missing */
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + 1;
}

/* Whether a TX queue without destination should keep its packets in the
 * ring for now (see switch.h). */
static bool hold_for_dst(struct sw_queue *sq)
{
	uint64_t now = coarse_ns();

	if (!sq->dst_lost_ns)
		sq->dst_lost_ns = now;
	return now - sq->dst_lost_ns < SW_DST_GRACE_MS * 1000000ull;
}

/* TX queue -> its RX queue: one burst, one copy per packet. The chains are
 * always completed, also when the packets could not be delivered. */
static int tx_poll(struct vre_poll_item *it)
{
	struct sw_queue *sq = it->ctx;
	struct vre_net_tx_burst *b = sq->burst;
	struct vre_net_queue *dst = __atomic_load_n(&sq->dst, __ATOMIC_ACQUIRE);
	int n, taken;

	if (dst) {
		sq->dst_lost_ns = 0;
		/* the common packets straight from ring to ring */
		n = vre_net_forward_fused(sq->nq, dst);
		if (n != -EAGAIN)
			return n;
	} else if (hold_for_dst(sq)) {
		return 0;
	}
	n = vre_net_tx_fetch(sq->nq, b);
	taken = b->n; /* tx_done clears the burst */

	if (n < 0 || taken == 0)
		return 0;
	if (b->npkts) {
		if (dst)
			vre_net_rx_put(dst, b, mask_of(b->npkts));
		else
			__atomic_store_n(&sq->drop_no_dst, sq->drop_no_dst + b->npkts,
					 __ATOMIC_RELAXED);
	}
	vre_net_tx_done(sq->nq, b);
	return taken;
}

static int ctrl_poll(struct vre_poll_item *it)
{
	struct sw_queue *sq = it->ctx;

	return vre_net_ctrl_poll(sq->nq);
}

static bool q_arm(struct vre_poll_item *it)
{
	struct sw_queue *sq = it->ctx;

	return vre_vq_notify_enable(&sq->nq->q->vq);
}

static void q_disarm(struct vre_poll_item *it)
{
	struct sw_queue *sq = it->ctx;

	vre_vq_notify_disable(&sq->nq->q->vq);
}

/* ---- queue tables ---- */

static bool is_ctrl(const struct sw_port *p, uint16_t index)
{
	return !p->eth && p->pairs > 1 && index == 2 * p->pairs;
}

static bool is_vhost_tx(const struct sw_port *p, uint16_t index)
{
	return !p->eth && (index & 1) && index < 2 * p->pairs;
}

int sw_queues_create(struct sw *s, struct sw_port *p)
{
	p->nq = (uint16_t)(2 * p->pairs + (!p->eth && p->pairs > 1));
	p->q = calloc(p->nq, sizeof(p->q[0]));
	if (!p->q)
		return -ENOMEM;
	if (s->mode == SW_LEARN &&
	    !(p->lsc = aligned_alloc(64, sizeof(p->lsc[0]) * (s->pool.n ? s->pool.n : 1))))
		return -ENOMEM;
	if (p->lsc)
		memset(p->lsc, 0, sizeof(p->lsc[0]) * (s->pool.n ? s->pool.n : 1));
	for (uint16_t k = 0; k < p->nq; k++) {
		p->q[k].port = p;
		p->q[k].index = k;
		if (is_vhost_tx(p, k) && !(p->q[k].burst = calloc(1, sizeof(*p->q[k].burst))))
			return -ENOMEM; /* sw_queues_free frees what was made */
	}
	for (uint16_t k = 0; p->eth && k < p->pairs; k++)
		p->q[2 * k].running = true; /* an ethdev port always takes packets */
	return 0;
}

void sw_queues_free(struct sw_port *p)
{
	for (uint16_t k = 0; p->q && k < p->nq; k++)
		free(p->q[k].burst);
	free(p->q);
	free(p->lsc);
	p->lsc = NULL;
	p->q = NULL;
	p->nq = 0;
}

/* ---- plan: which worker polls what, which TX feeds which RX ---- */

int sw_worker_index(const struct sw *s, const struct vre_worker *w)
{
	for (unsigned i = 0; i < s->pool.n; i++)
		if (s->pool.w[i] == w)
			return (int)i;
	return -1;
}

struct vre_worker *sw_eth_worker(struct sw *s)
{
	return s->mode == SW_LEARN ? s->learn_w : s->pool.w[0];
}

static struct sw_port *peer_of(struct sw *s, struct sw_port *p)
{
	unsigned n = p->idx ^ 1u;

	if (s->mode == SW_LOOPBACK)
		return p;
	return n < s->cap ? s->ports[n] : NULL;
}

/* A vhost port that exchanges with an ethdev port lives on the ethdev
 * worker (one thread per ethdev queue). */
static bool eth_linked(struct sw *s, struct sw_port *p)
{
	struct sw_port *y;

	if (s->mode == SW_LEARN)
		return false;
	y = peer_of(s, p);
	return p->eth || (y && y->eth);
}

/* The poll function of a running TX item, by mode and destination. */
static int (*tx_fn(struct sw *s, const struct sw_queue *sq))(struct vre_poll_item *)
{
	if (sq->port->eth)
		return s->mode == SW_LEARN ? sw_learn_eth_poll : sw_eth_rx_poll;
	if (s->mode == SW_LEARN)
		return sw_learn_poll;
	return sq->dst_q && sq->dst_q->port->eth ? sw_vhost_to_eth_poll : tx_poll;
}

static int add_item(struct sw *s, struct sw_queue *sq)
{
	struct vre_poll_item *it = &sq->item;

	if (sq->port->eth)
		return sw_eth_attach_queue(s, sq);
	memset(it, 0, sizeof(*it));
	it->ctx = sq;
	it->poll = is_ctrl(sq->port, sq->index) ? ctrl_poll : tx_fn(s, sq);
	it->wake_fd = sq->nq->q->kick_fd;
	/* without a kick fd the queue can only be polled: never sleep on it */
	it->arm = it->wake_fd >= 0 ? q_arm : NULL;
	it->disarm = q_disarm;
	it->name = sq->nq->is_tx ? "tx" : "ctrl";
	sq->wi = (uint16_t)sw_worker_index(s, sq->w);
	return vre_worker_add(sq->w, it);
}

/* Puts an item that may be on a worker on worker w with the poll function
 * its destination asks for, through the handshake when it runs. */
static int requeue(struct sw *s, struct sw_queue *sq, struct vre_worker *w)
{
	bool on = sq->item.w != NULL;
	int err = 0;

	if (on)
		vre_worker_remove(&sq->item);
	sq->w = w;
	if (!on)
		return 0;
	err = add_item(s, sq);
	if (err < 0)
		VRE_ERR(ROOM, "port %u queue %u not polled any more: %s", sq->port->idx, sq->index,
			strerror(-err));
	return err;
}

/* The RX queue a TX queue of x (pair j) feeds, by the current peers. */
static struct sw_queue *target_of(struct sw *s, struct sw_port *x, uint16_t j)
{
	struct sw_port *y = peer_of(s, x);

	if (!y)
		return NULL;
	return y->eth ? &y->q[0] : &y->q[2 * (j % y->pairs)];
}

static struct vre_net_queue *published(const struct sw_queue *rx)
{
	return rx && rx->running && !rx->port->eth ? rx->nq : NULL;
}

/* Gives x's TX side (vhost TX queues, or an ethdev port's RX item) the
 * destination the current peers say, moving running items whose worker
 * or kind of destination changes. s->lock held. */
static void relink(struct sw *s, struct sw_port *x)
{
	if (x->eth) {
		struct sw_queue *sq = &x->q[1];
		struct sw_queue *dq = target_of(s, x, 0);
		struct sw_port *y = dq ? dq->port : NULL;
		bool on = sq->item.w != NULL;

		if (on) /* its tables change: off the worker meanwhile */
			vre_worker_remove(&sq->item);
		memset(sq->pair_qs, 0, sizeof(sq->pair_qs));
		memset(sq->pair_dsts, 0, sizeof(sq->pair_dsts));
		sq->npairs = 0;
		sq->dst_q = dq;
		for (uint16_t k = 0; y && !y->eth && k < y->pairs; k++) {
			sq->pair_qs[k] = &y->q[2 * k];
			sq->pair_dsts[k] = published(&y->q[2 * k]);
		}
		if (y && !y->eth)
			sq->npairs = y->pairs;
		sq->w = sw_eth_worker(s);
		if (on && sw_eth_attach(s, x) < 0)
			VRE_ERR(ROOM, "port %u: ethdev RX not polled any more", x->idx);
		return;
	}
	for (uint16_t j = 0; j < x->pairs; j++) {
		struct sw_queue *tx = &x->q[2 * j + 1];
		struct sw_queue *dq = target_of(s, x, j);
		struct vre_worker *w = dq ? dq->w : x->q[2 * j].w;

		if (w != tx->w || tx->dst_q != dq) {
			/* another worker or destination: off the worker meanwhile */
			__atomic_store_n(&tx->dst, NULL, __ATOMIC_RELEASE);
			tx->dst_q = dq;
			requeue(s, tx, w);
		}
		__atomic_store_n(&tx->dst, published(dq), __ATOMIC_RELEASE);
	}
}

/* Workers for a new port's RX (and control) queues; an ethdev port's RX
 * items (q[2k+1]) in learn mode are spread as a vhost port's pairs. */
static int assign_rx(struct sw *s, struct sw_port *p)
{
	struct vre_worker *ew = sw_eth_worker(s);

	if (p->eth && s->mode != SW_LEARN) {
		p->q[0].w = p->q[1].w = ew;
		return 0;
	}
	for (uint16_t pair = 0; pair < p->pairs; pair++) {
		struct vre_worker *w;

		if (eth_linked(s, p)) {
			if (p->pin[pair] > 0)
				VRE_WARN(ROOM, "port %u: exchanges with an ethdev port, so it stays on "
					 "the first worker (pin of pair %u to worker %d ignored)",
					 p->idx, pair, p->pin[pair]);
			w = ew;
		} else if (p->pin[pair] >= 0) {
			if ((unsigned)p->pin[pair] >= s->pool.n) {
				VRE_ERR(ROOM, "port %u pair %u: worker %d does not exist", p->idx,
					pair, p->pin[pair]);
				return -EINVAL;
			}
			w = s->pool.w[p->pin[pair]];
		} else {
			w = s->pool.w[s->rr++ % s->pool.n];
		}
		p->q[2 * pair].w = w;
		p->rx_wi[pair] = (uint16_t)sw_worker_index(s, w);
		if (s->mode == SW_LEARN)
			p->q[2 * pair + 1].w = w; /* a pair stays together */
	}
	if (p->pairs > 1 && !p->eth)
		p->q[2 * p->pairs].w = p->q[0].w;
	return 0;
}

/* The peer's RX queues move to the ethdev worker when the new port is an
 * ethdev port (their feeders are the new port's, not running yet; the
 * peer's own control queue stays). */
static void move_rx_to_eth_worker(struct sw *s, struct sw_port *y)
{
	for (uint16_t pair = 0; pair < y->pairs; pair++)
		y->q[2 * pair].w = sw_eth_worker(s);
}

int sw_plan_port(struct sw *s, struct sw_port *p)
{
	struct sw_port *y;
	int err = assign_rx(s, p);

	if (err < 0 || s->mode == SW_LEARN)
		return err;
	y = peer_of(s, p);
	if (y && y != p && p->eth && !y->eth)
		move_rx_to_eth_worker(s, y);
	relink(s, p);
	if (y && y != p)
		relink(s, y);
	return 0;
}

void sw_unlink_port(struct sw *s, struct sw_port *p)
{
	struct sw_port *y;

	if (s->mode == SW_LEARN)
		return;
	y = peer_of(s, p);
	if (!y || y == p)
		return;
	/* p is out of s->ports already, so y's peer is gone: y's TX side is
	 * re-linked to nothing */
	relink(s, y);
}

/* ---- queue_start / queue_stop (control thread) ---- */

static struct sw_queue *sq_of(struct sw_port *p, struct vre_net_queue *nq)
{
	if (nq->q && nq->q->index < p->nq)
		return &p->q[nq->q->index];
	return NULL;
}

/* Publishes rx's queue (dst: NULL while stopped) to everything that feeds
 * it, and when clearing waits until the feeders' worker cannot use the
 * old pointer. */
static void publish_rx(struct sw *s, struct sw_queue *rx, struct vre_net_queue *dst)
{
	struct sw_port *p = rx->port, *y;
	unsigned pair = rx->index / 2u;
	bool any = false;

	__atomic_store_n(&p->rx_pub[pair], dst, __ATOMIC_RELEASE);
	if (s->mode == SW_LEARN) {
		/* any worker may read rx_pub through the view (a sender, or
		 * the owner's handoff drain) */
		if (!dst)
			sw_sync_all(s);
		return;
	}
	y = peer_of(s, p);
	if (y && y->eth) {
		struct sw_queue *tx = &y->q[1];

		for (unsigned j = 0; j < tx->npairs; j++)
			if (tx->pair_qs[j] == rx) {
				__atomic_store_n(&tx->pair_dsts[j], dst, __ATOMIC_RELEASE);
				any |= tx->running;
			}
	} else if (y) {
		for (uint16_t j = 0; j < y->pairs; j++) {
			struct sw_queue *tx = &y->q[2 * j + 1];

			if (tx->dst_q == rx) {
				__atomic_store_n(&tx->dst, dst, __ATOMIC_RELEASE);
				any |= tx->running;
			}
		}
	}
	/* Every feeder runs on rx's worker: one handshake covers them all. It
	 * waits however long the worker takes (vre_worker.h): the caller
	 * stops the RX queue next, and control may unmap its memory. */
	if (!dst && any)
		vre_worker_sync(rx->w);
}

static int sw_queue_start(void *app, struct vre_net_dev *n, struct vre_net_queue *nq)
{
	struct sw_port *p = app;
	struct sw *s = p->sw;
	struct sw_queue *sq = sq_of(p, nq);
	int err = 0;

	(void)n;
	if (!sq)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	sq->nq = nq;
	if (is_ctrl(p, sq->index)) {
		err = add_item(s, sq);
	} else if (nq->is_tx) {
		__atomic_store_n(&sq->dst, published(sq->dst_q), __ATOMIC_RELEASE);
		sq->dst_lost_ns = 0;
		err = add_item(s, sq);
	} else {
		sq->running = true;
		publish_rx(s, sq, nq);
	}
	if (err == 0)
		sq->running = true;
	pthread_mutex_unlock(&s->lock);
	VRE_DEBUG(ROOM, "port %u queue %u started (%d)", p->idx, sq->index, err);
	return err;
}

static void sw_queue_stop(void *app, struct vre_net_dev *n, struct vre_net_queue *nq)
{
	struct sw_port *p = app;
	struct sw *s = p->sw;
	struct sw_queue *sq = sq_of(p, nq);

	(void)n;
	if (!sq || !sq->running)
		return;
	pthread_mutex_lock(&s->lock);
	if (sq->item.w)
		vre_worker_remove(&sq->item);
	else if (!nq->is_tx && !is_ctrl(p, sq->index))
		publish_rx(s, sq, NULL);
	sq->running = false;
	sq->notify_saturated = ld(&nq->q->notify_saturated);
	pthread_mutex_unlock(&s->lock);
	VRE_DEBUG(ROOM, "port %u queue %u stopped", p->idx, sq->index);
}

/* SEND_RARP (after a live migration, on the destination): app is the
 * port whose device received it. */
static void sw_net_announce(void *app, struct vre_net_dev *n, const uint8_t mac[6])
{
	(void)n;
	sw_announce(app, mac);
}

const struct vre_net_app_ops sw_app_ops = {
	.queue_start = sw_queue_start,
	.queue_stop = sw_queue_stop,
	.announce = sw_net_announce,
};

/* ---- rebalance (SIGUSR2, JSON-RPC) ---- */

static struct vre_worker *next_worker(struct sw *s, struct vre_worker *w)
{
	int i = sw_worker_index(s, w);

	return s->pool.w[(unsigned)(i < 0 ? 0 : i + 1) % s->pool.n];
}

/* Every running item off its worker (its queue in moved[]): once the
 * removals returned, no worker is inside any queue, RX ring or, in learn
 * mode, sending (the handoff drains still run: sw_learn_quiet then waits
 * until they emptied their rings). -ENOMEM: some were taken off anyway. */
static int take_all_off(struct sw *s, struct sw_queue ***out, unsigned *nout)
{
	struct sw_queue **moved = NULL;
	unsigned nmoved = 0, cap = 0;

	for (unsigned i = 0; i < s->cap; i++) {
		struct sw_port *p = s->ports[i];

		for (uint16_t k = 0; p && k < p->nq; k++) {
			struct sw_queue *sq = &p->q[k];

			if (!sq->item.w)
				continue;
			if (nmoved == cap) {
				struct sw_queue **m = realloc(moved, (cap ? 2 * cap : 64) * sizeof(*m));

				if (!m) {
					*out = moved, *nout = nmoved;
					return -ENOMEM;
				}
				moved = m;
				cap = cap ? 2 * cap : 64;
			}
			vre_worker_remove(&sq->item);
			moved[nmoved++] = sq;
		}
	}
	*out = moved, *nout = nmoved;
	return 0;
}

/* The items take_all_off took, back on their (maybe new) workers. No
 * fallback to an old worker: that would split a group and give an RX ring
 * two writers. A queue that fails stays unpolled (its guest stalls) until
 * its frontend restarts it. Returns the failures. */
static unsigned put_back(struct sw *s, struct sw_queue **moved, unsigned nmoved, const char *what)
{
	unsigned fails = 0;

	for (unsigned m = 0; m < nmoved; m++) {
		int err = add_item(s, moved[m]);

		if (err < 0) {
			VRE_ERR(ROOM, "%s: port %u queue %u not polled any more: %s", what,
				moved[m]->port->idx, moved[m]->index, strerror(-err));
			fails++;
		}
	}
	free(moved);
	return fails;
}

/* Learn mode: each RX queue's owner index from its worker (nothing sends:
 * see sw_learn_quiet). */
static void learn_owners(struct sw *s)
{
	for (unsigned i = 0; i < s->cap; i++) {
		struct sw_port *p = s->ports[i];

		for (uint16_t pair = 0; p && !p->eth && pair < p->pairs; pair++)
			__atomic_store_n(&p->rx_wi[pair],
					 (uint16_t)sw_worker_index(s, p->q[2 * pair].w),
					 __ATOMIC_RELAXED);
	}
}

/* Every queue to the worker after its own. The members of a group (an RX
 * queue and the queues feeding it; in learn mode a pair) share a worker,
 * so they still do: each RX ring keeps one writer. */
static int rotate_all(struct sw *s)
{
	struct sw_queue **moved;
	unsigned nmoved, fails = 0;

	if (take_all_off(s, &moved, &nmoved) < 0) {
		fails = 1;
		goto add_back;
	}
	if (s->mode == SW_LEARN)
		sw_learn_quiet(s);
	for (unsigned i = 0; i < s->cap; i++) {
		struct sw_port *p = s->ports[i];

		for (uint16_t k = 0; p && k < p->nq; k++)
			if (p->q[k].w)
				p->q[k].w = next_worker(s, p->q[k].w);
	}
	s->learn_w = next_worker(s, s->learn_w);
	if (s->mode == SW_LEARN) {
		learn_owners(s);
		sw_sync_all(s); /* the drains see the new owners before any sender runs */
	}
add_back:
	fails += put_back(s, moved, nmoved, "rebalance");
	return fails ? -EIO : (int)nmoved;
}

int sw_rebalance(struct sw *s)
{
	int r;

	if (s->pool.n < 2)
		return 0;
	pthread_mutex_lock(&s->op_lock);
	pthread_mutex_lock(&s->lock);
	if (s->mode != SW_LEARN && s->nvhost != s->nports) {
		VRE_WARN(ROOM, "rebalance: ethdev ports are served by one worker only; "
			 "nothing moved");
		r = -ENOTSUP;
	} else {
		r = rotate_all(s);
	}
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_unlock(&s->op_lock);
	return r;
}

/* ---- rxq-pin ---- */

static int pin_locked(struct sw *s, struct sw_port *p, unsigned pair, unsigned wi, char *why,
		      size_t whylen)
{
	struct sw_queue *rx = &p->q[2 * pair];
	struct sw_port *y = peer_of(s, p);
	struct vre_worker *w = s->pool.w[wi];

	if (eth_linked(s, p)) {
		snprintf(why, whylen, "port %u exchanges with an ethdev port: its queues stay "
			 "on the first worker", p->idx);
		return -ENOTSUP;
	}
	/* the feeders off their worker, the group to w, the feeders back */
	for (uint16_t j = 0; y && j < y->pairs; j++) {
		struct sw_queue *tx = &y->q[2 * j + 1];

		if (tx->dst_q == rx && tx->item.w)
			vre_worker_remove(&tx->item);
	}
	rx->w = w;
	p->pin[pair] = (int)wi;
	for (uint16_t j = 0; y && j < y->pairs; j++) {
		struct sw_queue *tx = &y->q[2 * j + 1];

		if (tx->dst_q != rx)
			continue;
		tx->w = w;
		if (tx->running && add_item(s, tx) < 0) {
			snprintf(why, whylen, "port %u queue %u could not be added back", y->idx,
				 tx->index);
			return -EIO;
		}
	}
	return 0;
}

/* Learn mode: any sender may feed any RX queue, so every sender goes off
 * its worker while the pair changes owner (sw_learn_quiet). */
static int pin_learn(struct sw *s, struct sw_port *p, unsigned pair, unsigned wi, char *why,
		     size_t whylen)
{
	struct sw_queue **moved;
	unsigned nmoved;
	int r = take_all_off(s, &moved, &nmoved);

	if (r == 0) {
		sw_learn_quiet(s);
		p->q[2 * pair].w = p->q[2 * pair + 1].w = s->pool.w[wi];
		p->pin[pair] = (int)wi;
		learn_owners(s);
		sw_sync_all(s);
	}
	if (put_back(s, moved, nmoved, "rxq-pin") || r < 0) {
		snprintf(why, whylen, "some queues could not be moved back (see the log)");
		return -EIO;
	}
	return 0;
}

int sw_rxq_pin(struct sw *s, unsigned port, unsigned pair, unsigned wi, char *why, size_t whylen)
{
	struct sw_port *p;
	int r = 0;

	pthread_mutex_lock(&s->op_lock);
	pthread_mutex_lock(&s->lock);
	p = port < s->cap ? s->ports[port] : NULL;
	if (!p) {
		snprintf(why, whylen, "no port %u", port);
		r = -ENOENT;
	} else if (p->eth && s->mode != SW_LEARN) {
		snprintf(why, whylen, "port %u is an ethdev port: outside learn mode its queue "
			 "stays on the first worker", port);
		r = -ENOTSUP;
	} else if (pair >= p->pairs) {
		snprintf(why, whylen, "port %u has no queue pair %u", port, pair);
		r = -EINVAL;
	} else if (wi >= s->pool.n) {
		snprintf(why, whylen, "no worker %u (there are %u)", wi, s->pool.n);
		r = -EINVAL;
	} else if (s->mode == SW_LEARN) {
		r = pin_learn(s, p, pair, wi, why, whylen);
	} else {
		r = pin_locked(s, p, pair, wi, why, whylen);
	}
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_unlock(&s->op_lock);
	return r;
}

/* ---- counters ---- */

static uint64_t drops_of(const struct vre_net_stats *st)
{
	uint64_t d = ld(&st->drop_short_hdr) + ld(&st->drop_no_rx_buf) + ld(&st->drop_too_big) +
		     ld(&st->drop_bad_chain) + ld(&st->drop_queue_broken) + ld(&st->drop_no_mbuf) +
		     ld(&st->drop_over_mtu);

	for (unsigned r = 0; r < VRE_OL_DROP_COUNT; r++)
		d += ld(&st->drop_ol[r]);
	return d;
}

/* A queue's offload counters into t. */
static void add_offloads(struct sw_port_totals *t, const struct vre_net_stats *st)
{
	for (unsigned r = 0; r < VRE_OL_DROP_COUNT; r++) {
		t->drop_ol[r] += ld(&st->drop_ol[r]);
		t->drop_offload += ld(&st->drop_ol[r]);
	}
	t->drop_mtu += ld(&st->drop_over_mtu);
	t->gso_in += ld(&st->ol_gso_in);
	t->gso_in_bytes += ld(&st->ol_gso_in_bytes);
	t->csum_in += ld(&st->ol_csum_in);
	t->gso_out += ld(&st->ol_gso_out);
	t->csum_out += ld(&st->ol_csum_out);
	t->sw_gso += ld(&st->ol_sw_gso);
	t->sw_segs += ld(&st->ol_sw_segs);
	t->sw_csum += ld(&st->ol_sw_csum);
	t->data_valid += ld(&st->ol_data_valid);
}

static void raw_totals(struct sw_port *p, struct sw_port_totals *t)
{
	memset(t, 0, sizeof(*t));
	if (p->eth) {
		/* named from the switch's side as for a guest: rx = into the
		 * port, summed over its queues */
		for (uint16_t k = 0; p->eth_rxc && p->eth_txc && k < p->pairs; k++) {
			t->rx_pkts += ld(&p->eth_txc[k].pkts);
			t->rx_bytes += ld(&p->eth_txc[k].bytes);
			t->drop_no_rx_buf += ld(&p->eth_txc[k].drop_full);
			t->drop_bad += ld(&p->eth_txc[k].drop_prep);
			t->tx_pkts += ld(&p->eth_rxc[k].pkts);
			t->tx_bytes += ld(&p->eth_rxc[k].bytes);
			t->drop_no_dst += p->q ? ld(&p->q[2 * k + 1].drop_no_dst) : 0;
		}
		t->drops = t->drop_no_rx_buf + t->drop_no_dst + t->drop_bad;
		return;
	}
	for (uint16_t k = 0; k < p->nq && p->net; k++) {
		/* the net device keeps each queue's counters across stops */
		const struct vre_net_queue *nq = vre_net_dev_queue(p->net, k);

		if (!nq || is_ctrl(p, k))
			continue;
		if (k & 1) {
			t->tx_pkts += ld(&nq->st.packets);
			t->tx_bytes += ld(&nq->st.bytes);
			t->drop_no_dst += ld(&p->q[k].drop_no_dst);
		} else {
			t->rx_pkts += ld(&nq->st.packets);
			t->rx_bytes += ld(&nq->st.bytes);
		}
		t->drops += drops_of(&nq->st);
		t->drop_no_rx_buf += ld(&nq->st.drop_no_rx_buf);
		add_offloads(t, &nq->st);
	}
	/* control's counter while the queue runs; the value taken at its last
	 * stop otherwise (the device may be gone by then) */
	for (uint16_t k = 0; k < p->nq; k++) {
		const struct sw_queue *sq = &p->q[k];

		t->notify_saturated += sq->running && sq->nq ? ld(&sq->nq->q->notify_saturated) :
				       sq->notify_saturated;
	}
	t->drops += t->drop_no_dst;
	t->drop_bad = t->drops - t->drop_no_dst - t->drop_no_rx_buf - t->drop_offload - t->drop_mtu;
}

void sw_port_totals(struct sw *s, struct sw_port *p, struct sw_port_totals *t)
{
	const struct sw_port_totals *b = &p->base;

	(void)s;
	raw_totals(p, t);
	t->rx_pkts -= b->rx_pkts;
	t->rx_bytes -= b->rx_bytes;
	t->tx_pkts -= b->tx_pkts;
	t->tx_bytes -= b->tx_bytes;
	t->drops -= b->drops;
	t->drop_no_dst -= b->drop_no_dst;
	t->drop_no_rx_buf -= b->drop_no_rx_buf;
	t->drop_bad -= b->drop_bad;
	t->notify_saturated -= b->notify_saturated;
	t->drop_offload -= b->drop_offload;
	for (unsigned r = 0; r < VRE_OL_DROP_COUNT; r++)
		t->drop_ol[r] -= b->drop_ol[r];
	t->drop_mtu -= b->drop_mtu;
	t->gso_in -= b->gso_in;
	t->gso_in_bytes -= b->gso_in_bytes;
	t->csum_in -= b->csum_in;
	t->gso_out -= b->gso_out;
	t->csum_out -= b->csum_out;
	t->sw_gso -= b->sw_gso;
	t->sw_segs -= b->sw_segs;
	t->sw_csum -= b->sw_csum;
	t->data_valid -= b->data_valid;
}

void sw_worker_stats(struct sw *s, unsigned i, struct vre_worker_stats *st)
{
	const struct vre_worker_stats *b = &s->wbase[i];

	vre_worker_get_stats(s->pool.w[i], st);
	st->busy_cycles -= b->busy_cycles;
	st->packets -= b->packets;
	st->polls -= b->polls;
	st->empty_polls -= b->empty_polls;
	st->sleeps -= b->sleeps;
	st->wakeups -= b->wakeups;
	st->quiesces -= b->quiesces;
}

void sw_stats_clear(struct sw *s)
{
	pthread_mutex_lock(&s->lock);
	for (unsigned i = 0; i < s->cap; i++)
		if (s->ports[i])
			raw_totals(s->ports[i], &s->ports[i]->base);
	for (unsigned i = 0; i < s->pool.n; i++)
		vre_worker_get_stats(s->pool.w[i], &s->wbase[i]);
	pthread_mutex_unlock(&s->lock);
}
