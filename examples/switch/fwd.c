/* SPDX-License-Identifier: BSD-3-Clause */
/* vre-switch: queue plan, poll items and the queue_start/queue_stop hooks
 * (the design is described in switch.h). */
#include <errno.h>
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

/* TX queue -> its RX queue: one burst, one copy per packet. The chains are
 * always completed, also when the packets could not be delivered. */
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

static int tx_poll(struct vre_poll_item *it)
{
	struct sw_queue *sq = it->ctx;
	struct vre_net_tx_burst *b = &sq->burst;
	struct vre_net_queue *dst = __atomic_load_n(&sq->dst, __ATOMIC_ACQUIRE);
	int n, taken;

	if (dst)
		sq->dst_lost_ns = 0;
	else if (hold_for_dst(sq))
		return 0;
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

/* ---- plan ---- */

static struct sw_port *peer_of(struct sw *s, struct sw_port *p)
{
	if (s->mode == SW_LOOPBACK)
		return p;
	return &s->ports[p->idx ^ 1u];
}

static bool is_ctrl(const struct sw_port *p, uint16_t index)
{
	return p->pairs > 1 && index == 2 * p->pairs;
}

/* Learn mode: one worker owns every queue (the MAC table is its own). */
static int plan_learn(struct sw *s)
{
	for (unsigned i = 0; i < s->nports; i++) {
		struct sw_port *p = &s->ports[i];

		for (uint16_t k = 0; k < p->nq; k++)
			p->q[k].w = s->pool.w[0];
		for (uint16_t pair = 0; pair < p->pairs; pair++) {
			struct sw_queue *tx = &p->q[2 * pair + 1];

			for (unsigned j = 0; j < s->nports; j++)
				if (j != i)
					tx->dst_qs[j] = &s->ports[j].q[2 * (pair % s->ports[j].pairs)];
		}
		/* an ethdev port reaches every pair of each vhost port */
		if (p->eth) {
			struct sw_pair_dsts *lp = calloc(1, sizeof(*lp));

			if (!lp)
				return -ENOMEM;
			p->q[1].lpairs = lp;
			for (unsigned j = 0; j < s->nports; j++)
				for (uint16_t k = 0; !s->ports[j].eth && k < s->ports[j].pairs; k++)
					lp->q[j][k] = &s->ports[j].q[2 * k];
		}
	}
	return 0;
}

int sw_plan(struct sw *s)
{
	unsigned rr = 0;

	if (s->mode == SW_XCONNECT && s->nports % 2) {
		VRE_ERR(ROOM, "xconnect needs an even number of ports (%u given)", s->nports);
		return -EINVAL;
	}
	for (unsigned i = 0; i < s->nports; i++) {
		struct sw_port *p = &s->ports[i];

		p->nq = p->eth ? 2 : (uint16_t)(2 * p->pairs + (p->pairs > 1));
		p->q = calloc(p->nq, sizeof(p->q[0]));
		if (!p->q)
			return -ENOMEM;
		for (uint16_t k = 0; k < p->nq; k++) {
			p->q[k].port = p;
			p->q[k].index = k;
		}
		if (p->eth)
			p->q[0].running = true; /* an ethdev port always takes packets */
	}
	if (s->mode == SW_LEARN)
		return plan_learn(s);
	/* Owners of RX queues (even indexes) first, round-robin unless pinned. */
	for (unsigned i = 0; i < s->nports; i++) {
		struct sw_port *p = &s->ports[i];

		/* an ethdev port, and every port exchanging with one, lives on the
		 * first worker (one thread per ethdev queue) */
		bool w0 = p->eth || peer_of(s, p)->eth;

		for (uint16_t pair = 0; w0 && pair < p->pairs; pair++)
			if (p->pin[pair] > 0)
				VRE_WARN(ROOM, "port %u: exchanges with an ethdev port, so it stays on "
					 "the first worker (--pin %u:%u ignored)", i, i, pair);

		for (uint16_t pair = 0; pair < p->pairs; pair++) {
			int wi = w0 ? 0 : p->pin[pair] >= 0 ? p->pin[pair] : (int)(rr++ % s->pool.n);

			if ((unsigned)wi >= s->pool.n) {
				VRE_ERR(ROOM, "port %u pair %u: worker %d does not exist", i, pair, wi);
				return -EINVAL;
			}
			p->q[2 * pair].w = s->pool.w[wi];
		}
		if (p->pairs > 1)
			p->q[2 * p->pairs].w = p->q[0].w;
	}
	/* Each TX queue goes where its destination RX queue lives. */
	for (unsigned i = 0; i < s->nports; i++) {
		struct sw_port *p = &s->ports[i], *peer = peer_of(s, p);

		for (uint16_t pair = 0; pair < p->pairs; pair++) {
			struct sw_queue *tx = &p->q[2 * pair + 1];

			tx->dst_q = &peer->q[2 * (pair % peer->pairs)];
			tx->w = tx->dst_q->w;
		}
		/* an ethdev port feeds every pair of its vhost peer */
		if (p->eth && !peer->eth) {
			for (uint16_t pair = 0; pair < peer->pairs; pair++)
				p->q[1].pair_qs[pair] = &peer->q[2 * pair];
			p->q[1].npairs = peer->pairs;
		}
	}
	return 0;
}

void sw_unplan(struct sw *s)
{
	for (unsigned i = 0; i < s->nports; i++) {
		if (s->ports[i].eth && s->ports[i].q)
			free(s->ports[i].q[1].lpairs);
		free(s->ports[i].q);
		s->ports[i].q = NULL;
	}
}

/* ---- queue_start / queue_stop (control thread) ---- */

static struct sw_queue *sq_of(struct sw *s, struct vre_net_dev *n, struct vre_net_queue *nq)
{
	for (unsigned i = 0; i < s->nports; i++) {
		struct sw_port *p = &s->ports[i];

		if (p->net == n && nq->q && nq->q->index < p->nq)
			return &p->q[nq->q->index];
	}
	return NULL;
}

/* Points every TX queue that feeds rx at dst (NULL: rx stopped), and when
 * clearing waits until the owning worker cannot use the old pointer. */
static void publish_dst(struct sw *s, struct sw_queue *rx, struct vre_net_queue *dst)
{
	bool any = false;

	for (unsigned i = 0; i < s->nports; i++) {
		struct sw_port *p = &s->ports[i];

		for (uint16_t pair = 0; pair < p->pairs; pair++) {
			struct sw_queue *tx = &p->q[2 * pair + 1];

			if (tx->dst_q == rx) {
				__atomic_store_n(&tx->dst, dst, __ATOMIC_RELEASE);
				any |= tx->running;
			}
			for (unsigned j = 0; j < s->nports; j++)
				if (tx->dst_qs[j] == rx) {
					__atomic_store_n(&tx->dsts[j], dst, __ATOMIC_RELEASE);
					any |= tx->running;
				}
			for (unsigned j = 0; j < tx->npairs; j++)
				if (tx->pair_qs[j] == rx) {
					__atomic_store_n(&tx->pair_dsts[j], dst, __ATOMIC_RELEASE);
					any |= tx->running;
				}
			for (unsigned j = 0; tx->lpairs && j < s->nports; j++)
				for (unsigned k = 0; k < SW_MAX_PAIRS; k++)
					if (tx->lpairs->q[j][k] == rx) {
						__atomic_store_n(&tx->lpairs->d[j][k], dst,
								 __ATOMIC_RELEASE);
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

static int add_item(struct sw_queue *sq, int (*poll)(struct vre_poll_item *))
{
	struct vre_poll_item *it = &sq->item;

	memset(it, 0, sizeof(*it));
	it->poll = poll;
	it->ctx = sq;
	it->wake_fd = sq->nq->q->kick_fd;
	/* without a kick fd the queue can only be polled: never sleep on it */
	it->arm = it->wake_fd >= 0 ? q_arm : NULL;
	it->disarm = q_disarm;
	it->name = sq->nq->is_tx ? "tx" : "ctrl";
	return vre_worker_add(sq->w, it);
}

static int sw_queue_start(void *app, struct vre_net_dev *n, struct vre_net_queue *nq)
{
	struct sw *s = app;
	struct sw_queue *sq = sq_of(s, n, nq);
	int err = 0;

	if (!sq)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	sq->nq = nq;
	if (is_ctrl(sq->port, sq->index)) {
		err = add_item(sq, ctrl_poll);
	} else if (nq->is_tx && s->mode == SW_LEARN) {
		for (unsigned j = 0; j < s->nports; j++) {
			struct sw_queue *rx = sq->dst_qs[j];

			__atomic_store_n(&sq->dsts[j], rx && rx->running ? rx->nq : NULL,
					 __ATOMIC_RELEASE);
		}
		err = add_item(sq, sw_learn_poll);
	} else if (nq->is_tx) {
		struct sw_queue *rx = sq->dst_q;

		__atomic_store_n(&sq->dst, rx->running ? rx->nq : NULL, __ATOMIC_RELEASE);
		sq->dst_lost_ns = 0;
		err = add_item(sq, rx->port->eth ? sw_vhost_to_eth_poll : tx_poll);
	} else {
		sq->running = true;
		publish_dst(s, sq, nq);
	}
	if (err == 0)
		sq->running = true;
	pthread_mutex_unlock(&s->lock);
	VRE_DEBUG(ROOM, "port %u queue %u started (%d)", sq->port->idx, sq->index, err);
	return err;
}

static void sw_queue_stop(void *app, struct vre_net_dev *n, struct vre_net_queue *nq)
{
	struct sw *s = app;
	struct sw_queue *sq = sq_of(s, n, nq);

	if (!sq || !sq->running)
		return;
	pthread_mutex_lock(&s->lock);
	if (sq->item.w)
		vre_worker_remove(&sq->item);
	else if (!nq->is_tx && !is_ctrl(sq->port, sq->index))
		publish_dst(s, sq, NULL);
	sq->running = false;
	sq->notify_saturated = ld(&nq->q->notify_saturated);
	pthread_mutex_unlock(&s->lock);
	VRE_DEBUG(ROOM, "port %u queue %u stopped", sq->port->idx, sq->index);
}

/* ---- rebalance (SIGUSR2) ---- */

static unsigned worker_index(const struct sw *s, const struct vre_worker *w)
{
	for (unsigned i = 0; i < s->pool.n; i++)
		if (s->pool.w[i] == w)
			return i;
	return 0;
}

int sw_rebalance(struct sw *s)
{
	struct sw_queue *moved[SW_MAX_PORTS * (2 * SW_MAX_PAIRS + 1)];
	unsigned nmoved = 0, fails = 0;

	if (s->pool.n < 2)
		return 0;
	if (s->nvhost != s->nports) {
		VRE_WARN(ROOM, "rebalance: ethdev ports are served by the first worker only; "
			 "nothing moved");
		return -ENOTSUP;
	}
	/* queue_start / queue_stop wait: the plan and the items stay as they are */
	pthread_mutex_lock(&s->lock);
	/* Every item off its worker first: once the removals returned, no
	 * worker is inside any queue, RX ring or the MAC table. */
	for (unsigned i = 0; i < s->nports; i++)
		for (uint16_t k = 0; k < s->ports[i].nq; k++) {
			struct sw_queue *sq = &s->ports[i].q[k];

			if (sq->item.w) {
				vre_worker_remove(&sq->item);
				moved[nmoved++] = sq;
			}
		}
	/* Each queue to the worker after its own. The members of a group (an
	 * RX queue and the queues feeding it; in learn mode every queue)
	 * share a worker, so they still do: each RX ring keeps one writer. */
	for (unsigned i = 0; i < s->nports; i++)
		for (uint16_t k = 0; k < s->ports[i].nq; k++) {
			struct sw_queue *sq = &s->ports[i].q[k];

			sq->w = s->pool.w[(worker_index(s, sq->w) + 1) % s->pool.n];
		}
	for (unsigned m = 0; m < nmoved; m++) {
		int err = vre_worker_add(moved[m]->w, &moved[m]->item);

		/* No fallback to the old worker: that would split a group and
		 * give an RX ring two writers. The queue stays unpolled (its
		 * guest stalls) until its frontend restarts it. */
		if (err < 0) {
			VRE_ERR(ROOM, "rebalance: port %u queue %u not polled any more: %s",
				moved[m]->port->idx, moved[m]->index, strerror(-err));
			fails++;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return fails ? -EIO : (int)nmoved;
}

const struct vre_net_app_ops sw_app_ops = {
	.queue_start = sw_queue_start,
	.queue_stop = sw_queue_stop,
};

/* ---- counters ---- */

static uint64_t drops_of(const struct vre_net_stats *st)
{
	return ld(&st->drop_short_hdr) + ld(&st->drop_no_rx_buf) + ld(&st->drop_too_big) +
	       ld(&st->drop_bad_chain) + ld(&st->drop_queue_broken) + ld(&st->drop_no_mbuf);
}

void sw_port_totals(struct sw *s, struct sw_port *p, struct sw_port_totals *t)
{
	memset(t, 0, sizeof(*t));
	if (p->eth) {
		/* named from the switch's side as for a guest: rx = into the port */
		t->rx_pkts = ld(&p->eth_out_pkts);
		t->rx_bytes = ld(&p->eth_out_bytes);
		t->tx_pkts = ld(&p->eth_in_pkts);
		t->tx_bytes = ld(&p->eth_in_bytes);
		t->drop_no_rx_buf = ld(&p->eth_drop_full);
		t->drop_no_dst = p->q ? ld(&p->q[1].drop_no_dst) : 0;
		t->drops = t->drop_no_rx_buf + t->drop_no_dst;
		return;
	}
	pthread_mutex_lock(&s->lock);
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
	}
	/* control's counter while the queue runs; the value taken at its last
	 * stop otherwise (the device may be gone by then) */
	for (uint16_t k = 0; k < p->nq; k++) {
		const struct sw_queue *sq = &p->q[k];

		t->notify_saturated += sq->running && sq->nq ? ld(&sq->nq->q->notify_saturated) :
				       sq->notify_saturated;
	}
	t->drops += t->drop_no_dst;
	t->drop_bad = t->drops - t->drop_no_dst - t->drop_no_rx_buf;
	pthread_mutex_unlock(&s->lock);
}
