/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhost -> vhost packet path: TX chains become packets whose payload stays in
 * the source guest's memory; each packet is copied once, segment to segment,
 * into the destination guest's RX chains.
 *
 * TX rules (decided here, on guest-hostile input):
 * - The first hdr_len readable bytes are the virtio-net header, wherever the
 *   descriptor boundaries fall. Without a host offload negotiated its
 *   content is not read (a conforming header is then all zeros and a
 *   hostile one must not matter). With one, its first 10 bytes are copied
 *   once into a local; flags 0 and gso_type NONE keep the packet on the
 *   fast paths, anything else goes to net_offload.c, which validates it
 *   (a refused request is a counted drop, drop_ol[]). A chain with fewer
 *   readable bytes than the header is dropped (drop_short_hdr).
 * - The writable part of a TX chain is ignored: the device writes nothing
 *   and completes it with len 0. A chain with no readable part at all, or
 *   the ring's -ENOBUFS chain, is drop_bad_chain.
 * - A frame longer than VRE_NET_MAX_FRAME is drop_bad_chain.
 * Every TX chain, good or not, is completed by vre_net_tx_done, after the
 * packets were published at the destination, so a backend restart in
 * between resubmits them instead of losing them.
 *
 * RX rules:
 * - Packets with an offload request, and frames longer than the
 *   destination's MTU + 18, leave the fast paths for net_offload.c, in
 *   their place in the burst (order is kept).
 * - Chains are fetched only as packets need them (at most one per packet
 *   still to come, then one at a time), so normally none is left over.
 * - Without MRG_RXBUF a packet goes into exactly one chain; one whose
 *   writable part is too small is drop_too_big and the chain stays for the
 *   next packet of the burst.
 * - With MRG_RXBUF a packet spans consecutive chains (num_buffers of them,
 *   at most VRE_COMPLETE_MAX so that all of them are published in one complete
 *   call); the header goes into the first one.
 * - A chain with no writable part, or (as a packet's first) too small for
 *   the header, is drop_bad_chain and goes back with len 0: at once, in its
 *   own complete call, so it never sits between one packet's chains; with
 *   VIRTIO_F_IN_ORDER in its turn, and a mergeable packet whose next chain
 *   is bad is given up as drop_too_big (it did not fit the chains it could
 *   use; they go back empty before the bad one).
 * - With IN_ORDER every chain is completed in the order it was fetched
 *   (TX: a burst at a time, one used entry for the burst; RX: in the used
 *   array's order), which is what the feature promises the driver.
 * - A packet that fails half way (ring ran dry, or more than 64 chains
 *   needed) gives the chains it took back with len 0; a chain the burst
 *   fetched but could not use is returned with len 0 too (a driver counts
 *   that as a short frame and reposts the buffer): no chain is ever kept by
 *   the device past the burst, none is lost.
 * - Chains are published in as few complete calls as possible (one per 64
 *   chains) and the driver is notified at most once per burst, when the
 *   ring says so.
 *
 * Dirty logging (live migration, vre_dirty_log.h): when the destination
 * ring has a log (read once per burst into rx->logging), every chain's
 * written bytes are marked after they were written, when its used entry is
 * made (the fast loop marks its chains once after the loop), and
 * num_buffers again after it is filled in; the marks go through one batch
 * flushed at the end of the burst. With logging off the only cost is the
 * per-burst test (and a predictable per-packet one on the general paths).
 */
#include <errno.h>
#include <string.h>

#include "net_internal.h"
#include "net_offload.h"
#include "vre_log.h"

#define ETH_HLEN 14u

#define POOL_LEN(a) ((unsigned)(sizeof(a) / sizeof((a)[0])))

/* ---- TX ---------------------------------------------------------------- */

/* Drops the first hdr bytes of iov[0..*n) in place; the caller checked that
 * there are at least that many. Returns the first payload segment. */
static struct iovec *strip_header(struct iovec *iov, uint16_t *n, uint32_t hdr)
{
	while (*n && hdr) {
		if (iov->iov_len > hdr) {
			iov->iov_base = (uint8_t *)iov->iov_base + hdr;
			iov->iov_len -= hdr;
			break;
		}
		hdr -= (uint32_t)iov->iov_len;
		iov++;
		(*n)--;
	}
	return iov;
}

static void pkt_set_eth(struct vre_net_pkt *p)
{
	if (p->len < ETH_HLEN) {
		p->eth = NULL;
		return;
	}
	if (p->niov && p->iov[0].iov_len >= ETH_HLEN) {
		p->eth = p->iov[0].iov_base;
		return;
	}
	vre_iov_read(p->iov, p->niov, 0, p->eth_copy, ETH_HLEN);
	p->eth = p->eth_copy;
}

/* Turns chain c into packet p, or counts why it cannot be one. With host
 * offloads (ol) the header's first 10 bytes are copied into *h first,
 * wherever the descriptors split them. */
static bool tx_chain_to_pkt(struct vre_net_queue *nq, struct vre_chain *c,
			    struct vre_net_pkt *p, bool ol, struct vre_net_hdr *h)
{
	uint16_t n = c->nr;

	if (c->err || c->nr == 0) {
		nq->st.drop_bad_chain++;
		return false;
	}
	if (c->rlen < nq->hdr_len) {
		nq->st.drop_short_hdr++;
		return false;
	}
	if (c->rlen - nq->hdr_len > VRE_NET_MAX_FRAME) {
		nq->st.drop_bad_chain++;
		return false;
	}
	if (ol)
		vre_iov_read(c->iov, c->nr, 0, h, VRE_NET_HDR_BASE_LEN);
	p->iov = strip_header(c->iov, &n, nq->hdr_len);
	p->niov = n;
	p->len = (uint32_t)(c->rlen - nq->hdr_len);
	pkt_set_eth(p);
	return true;
}

static int note_broken(struct vre_net_queue *nq)
{
	if (!nq->broken_seen) {
		nq->broken_seen = true;
		nq->st.drop_queue_broken++;
	}
	return -EIO;
}

/* The n chains just fetched into b become packets, for a queue with host
 * offloads (ol) or without: one loop each, so a queue without them does
 * not test for them per packet. */
static inline __attribute__((always_inline)) int tx_burst_loop(struct vre_net_queue *nq,
							       struct vre_net_tx_burst *b,
							       int n, const bool ol)
{
	uint32_t hdr = nq->hdr_len, len_or = 0, ol_mask = 0;
	uint64_t min = hdr + ETH_HLEN, max = hdr + VRE_NET_MAX_FRAME, bytes = 0;
	uint16_t npkts = 0;

	for (int i = 0; i < n; i++) {
		struct vre_chain *c = &b->chains[i];
		struct vre_net_pkt *p = &b->pkts[npkts];
		struct vre_net_hdr h;
		uint64_t h8 = 0; /* the header's first 8 bytes, then its last 2 */
		uint16_t h2 = 0, fg;
		uint32_t len;

		/* The common chain, one readable segment holding the header and
		 * at least an Ethernet header: what tx_chain_to_pkt makes of it,
		 * without the segment walks. */
		if (c->nr == 1 && !c->err && c->rlen >= min && c->rlen <= max) {
			uint8_t *base = c->iov[0].iov_base;

			if (ol) { /* the one read of the header, in registers */
				memcpy(&h8, base, 8);
				memcpy(&h2, base + 8, 2);
			}
			len = (uint32_t)(c->rlen - hdr);
			c->iov[0].iov_base = base + hdr;
			c->iov[0].iov_len = len;
			p->iov = c->iov;
			p->niov = 1;
			p->len = len;
			p->eth = base + hdr;
		} else if (tx_chain_to_pkt(nq, c, p, ol, &h)) {
			len = p->len;
			if (ol) {
				memcpy(&h8, &h, 8);
				memcpy(&h2, (uint8_t *)&h + 8, 2);
			}
		} else {
			continue;
		}
		/* A header that asks for something leaves the fast path: its
		 * first two bytes are flags and gso_type. */
		if (ol && (memcpy(&fg, &h8, 2), fg)) {
			int r;

			memcpy(&h, &h8, 8);
			memcpy((uint8_t *)&h + 8, &h2, 2);
			r = net_ol_tx(nq, &h, p, &b->ol[npkts]);

			if (r < 0)
				continue; /* refused and counted */
			ol_mask |= (uint32_t)r << npkts;
		}
		len_or |= len;
		b->pkt_chain[npkts++] = (uint16_t)i;
		bytes += len;
	}
	/* One update per burst: the counters have one writer (this worker). */
	b->npkts = npkts;
	b->ol_mask = ol_mask;
	b->len_or = len_or;
	nq->st.packets += npkts;
	nq->st.bytes += bytes;
	return npkts;
}

/* Out of line: an empty poll (the common call) then pays for none of its
 * set-up. */
static __attribute__((noinline)) int tx_burst(struct vre_net_queue *nq,
					      struct vre_net_tx_burst *b, int n)
{
	b->n = (uint16_t)n;
	nq->st.bursts++;
	/* Warm every frame's first line (vre_net_rx_put copies them), in one
	 * tight loop; a chain with an error has nr == 0. */
	for (int i = 0; i < n; i++)
		if (b->chains[i].nr)
			__builtin_prefetch(b->chains[i].iov[0].iov_base);
	return nq->ol_tx ? tx_burst_loop(nq, b, n, true) : tx_burst_loop(nq, b, n, false);
}

int vre_net_tx_fetch(struct vre_net_queue *nq, struct vre_net_tx_burst *b)
{
	int n;

	b->n = b->npkts = 0;
	b->ol_mask = 0;
	n = vre_vq_fetch(&nq->q->vq, b->chains, VRE_BURST, b->pool, POOL_LEN(b->pool));
	if (n > 0)
		return tx_burst(nq, b, n);
	if (n < 0)
		return note_broken(nq);
	nq->st.empty_polls++;
	return 0;
}

void vre_net_tx_done(struct vre_net_queue *nq, struct vre_net_tx_burst *b)
{
	struct vre_vq *vq = &nq->q->vq;

	if (b->n == 0)
		return;
	/* b->chains came from this queue's fetch, in order, and every chain
	 * fetched before them is completed: with IN_ORDER one used entry
	 * returns the whole burst */
	if (vre_vq_complete_inorder(vq, b->chains, b->n) == 0 && vre_vq_needs_notify(vq))
		vre_queue_notify(nq->q);
	b->n = b->npkts = 0;
}

/* ---- RX ---------------------------------------------------------------- */

void vre_net_rx_begin(struct vre_net_rx *rx, struct vre_net_queue *nq, uint16_t npkts)
{
	rx->nq = nq;
	rx->vq = &nq->q->vq;
	rx->n = rx->next = rx->nused = 0;
	rx->want = npkts;
	rx->dry = rx->notify = false;
	rx->broken = rx->vq->broken != 0;
	rx->logging = rx->vq->log != NULL;
	if (__builtin_expect(rx->logging, 0))
		vre_log_batch_init(&rx->log, rx->vq->log);
	nq->st.bursts++;
}

/* Logging on: the first len bytes of c's writable part were written. */
static __attribute__((noinline)) void rx_log(struct vre_net_rx *rx, const struct vre_chain *c,
					     uint64_t len)
{
	vre_vq_log_iov(rx->vq, &rx->log, c->iov + c->nr, c->nw, len);
}

/* Logging on: one byte written at p (num_buffers, filled in last). */
static __attribute__((noinline)) void rx_log_byte(struct vre_net_rx *rx, uint8_t *p)
{
	struct iovec v = { .iov_base = p, .iov_len = 1 };

	vre_vq_log_iov(rx->vq, &rx->log, &v, 1, 1);
}

/* Publishes used[0..k) and keeps used[k..nused) (a packet being written). */
static void rx_publish(struct vre_net_rx *rx, uint16_t k)
{
	if (k == 0)
		return;
	/* every entry is vre_used_of() of a chain rx_peek fetched, once */
	if (vre_vq_complete_fetched(rx->vq, rx->used, k) == 0)
		rx->notify |= vre_vq_needs_notify(rx->vq);
	if (rx->nused > k) /* usually none left: no call */
		memmove(rx->used, rx->used + k, (size_t)(rx->nused - k) * sizeof(rx->used[0]));
	rx->nused = (uint16_t)(rx->nused - k);
}

/* The next chain to write, fetching when none is left; NULL when the ring
 * has none (or broke). Fetches at most one chain per packet still to come,
 * so a burst does not take buffers it will not fill. */
static struct vre_chain *rx_peek(struct vre_net_rx *rx)
{
	int got;

	if (rx->next < rx->n) {
		const struct vre_chain *after = &rx->chains[rx->next + 1];

		/* The chain after this one is written next: warm its first line. */
		if (rx->next + 1 < rx->n && !after->err && after->nw)
			__builtin_prefetch((uint8_t *)after->iov[after->nr].iov_base +
					   rx->nq->hdr_len, 1);
		return &rx->chains[rx->next];
	}
	if (rx->dry || rx->broken)
		return NULL;
	rx->n = rx->next = 0;
	/* want may exceed a burst while a GSO packet is segmented */
	got = vre_vq_fetch(rx->vq, rx->chains,
			   rx->want ? (rx->want < VRE_BURST ? rx->want : VRE_BURST) : 1, rx->pool,
			   POOL_LEN(rx->pool));
	if (got < 0) {
		rx->broken = true;
		return NULL;
	}
	if (got == 0) {
		rx->dry = true;
		return NULL;
	}
	rx->n = (uint16_t)got;
	return &rx->chains[0];
}

/*
 * A chain that cannot take data goes back empty (len 0: a driver reads it
 * as a short frame and reposts the buffer). Only a broken or hostile driver
 * posts such chains. Without IN_ORDER it goes back at once, on its own, so
 * it never lands between the chains of one mergeable packet. With IN_ORDER
 * it may not overtake the chains before it: it takes its turn in the used
 * array, and a packet in progress must have ended first (rx_one_mergeable
 * gives up a packet whose next chain is bad).
 */
static void rx_reject(struct vre_net_rx *rx, const struct vre_chain *c)
{
	rx->nq->st.drop_bad_chain++;
	if (rx->vq->in_order) {
		if (rx->nused == VRE_BURST)
			rx_publish(rx, rx->nused);
		rx->used[rx->nused++] = vre_used_of(c, 0);
	} else {
		struct vre_used u = vre_used_of(c, 0);

		if (vre_vq_complete(rx->vq, &u, 1) == 0)
			rx->notify |= vre_vq_needs_notify(rx->vq);
	}
	rx->next++;
}

/* The next chain with at least min writable bytes (min >= 1), for a
 * packet's first chain: bad ones before it are rejected. */
static struct vre_chain *rx_take(struct vre_net_rx *rx, uint64_t min)
{
	struct vre_chain *c;

	while ((c = rx_peek(rx))) {
		if (!c->err && c->nw && c->wlen >= min)
			return c;
		rx_reject(rx, c);
	}
	return NULL;
}

static void count_no_chain(struct vre_net_rx *rx)
{
	if (rx->broken)
		rx->nq->st.drop_queue_broken++;
	else
		rx->nq->st.drop_no_rx_buf++;
}

/* Copies len bytes from the source cursor (*si, *soff over src) into the
 * writable iovecs of c from byte doff. */
static void copy_into(const struct vre_chain *c, uint64_t doff, const struct iovec *src,
		      unsigned nsrc, unsigned *si, size_t *soff, uint64_t len)
{
	const struct iovec *dst = c->iov + c->nr;
	unsigned di = 0;

	while (di < c->nw && doff >= dst[di].iov_len)
		doff -= dst[di++].iov_len;
	while (len && di < c->nw && *si < nsrc) {
		size_t dl = dst[di].iov_len - doff, sl = src[*si].iov_len - *soff;
		size_t chunk = dl < sl ? dl : sl;

		if (chunk > len)
			chunk = len;
		/* memmove: in loopback both are one guest's memory, and the
		 * guest may make its TX and RX buffers overlap. */
		memmove((uint8_t *)dst[di].iov_base + doff,
			(const uint8_t *)src[*si].iov_base + *soff, chunk);
		len -= chunk;
		doff += chunk;
		*soff += chunk;
		if (doff == dst[di].iov_len) {
			di++;
			doff = 0;
		}
		if (*soff == src[*si].iov_len) {
			(*si)++;
			*soff = 0;
		}
	}
}

/* The header: vh's first 10 bytes (all zero without one) and nbufs; the
 * guest may have split its first hdr_len bytes over several descriptors. */
static void write_hdr(const struct vre_chain *c, uint16_t hdr_len, const struct vre_net_hdr *vh,
		      uint16_t nbufs)
{
	struct vre_net_hdr h = { .num_buffers = nbufs };
	const struct iovec *w = &c->iov[c->nr];

	if (vh)
		memcpy(&h, vh, VRE_NET_HDR_BASE_LEN);
	if (w->iov_len >= sizeof(h) && hdr_len == sizeof(h))
		memcpy(w->iov_base, &h, sizeof(h)); /* the usual layout: one store */
	else
		vre_iov_write(w, c->nw, 0, &h, hdr_len);
}

/* Where byte off of c's writable part lives in guest memory. */
static uint8_t *wbyte(const struct vre_chain *c, uint64_t off)
{
	/* Callers pass chains with a writable part. */
	if (off < c->iov[c->nr].iov_len)
		return (uint8_t *)c->iov[c->nr].iov_base + off;
	off -= c->iov[c->nr].iov_len;
	for (unsigned i = 1; i < c->nw; i++) {
		const struct iovec *v = &c->iov[c->nr + i];

		if (off < v->iov_len)
			return (uint8_t *)v->iov_base + off;
		off -= v->iov_len;
	}
	return NULL;
}

static bool rx_one_single(struct vre_net_rx *rx, const struct vre_net_hdr *vh,
			  const struct iovec *iov, unsigned niov, uint32_t len)
{
	struct vre_net_queue *nq = rx->nq;
	struct vre_chain *c = rx_take(rx, nq->hdr_len);
	unsigned si = 0;
	size_t soff = 0;

	if (!c) {
		count_no_chain(rx);
		return false;
	}
	if (c->wlen < (uint64_t)nq->hdr_len + len) {
		/* The chain stays in place for the next packet. */
		nq->st.drop_too_big++;
		return false;
	}
	write_hdr(c, nq->hdr_len, vh, 1);
	copy_into(c, nq->hdr_len, iov, niov, &si, &soff, len);
	if (__builtin_expect(rx->logging, 0))
		rx_log(rx, c, (uint64_t)nq->hdr_len + len);
	if (rx->nused == VRE_COMPLETE_MAX)
		rx_publish(rx, rx->nused);
	rx->used[rx->nused++] = vre_used_of(c, nq->hdr_len + len);
	rx->next++;
	return true;
}

static bool rx_one_mergeable(struct vre_net_rx *rx, const struct vre_net_hdr *vh,
			     const struct iovec *iov, unsigned niov, uint32_t len)
{
	struct vre_net_queue *nq = rx->nq;
	uint64_t left = (uint64_t)nq->hdr_len + len;
	uint8_t *nb_lo = NULL, *nb_hi = NULL; /* num_buffers, maybe split */
	uint16_t first = rx->nused, nbufs = 0;
	struct vre_chain *bad = NULL;
	unsigned si = 0;
	size_t soff = 0;

	while (left) {
		uint64_t hdr = nbufs ? 0 : nq->hdr_len, room, chunk;
		struct vre_chain *c;

		if (rx->nused == VRE_COMPLETE_MAX) {
			/* Every chain of a packet is published by one complete
			 * call: make room by publishing the packets before it. */
			if (first == 0) {
				nq->st.drop_too_big++;
				goto unwind;
			}
			rx_publish(rx, first);
			first = 0;
		}
		if (nbufs && rx->vq->in_order) {
			/* In order a bad chain cannot be passed over, so the
			 * packet did not fit the chains it could use */
			c = rx_peek(rx);
			if (c && (c->err || !c->nw)) {
				nq->st.drop_too_big++;
				bad = c;
				goto unwind;
			}
		} else {
			c = rx_take(rx, nbufs ? 1 : nq->hdr_len);
		}
		if (!c) {
			count_no_chain(rx);
			goto unwind;
		}
		if (!nbufs)
			first = rx->nused; /* in order, rejected chains may precede it */
		room = c->wlen - hdr;
		chunk = room < left - hdr ? room : left - hdr;
		if (!nbufs) {
			/* Header now: a refill below may reuse c's slot. */
			write_hdr(c, nq->hdr_len, vh, 0);
			nb_lo = wbyte(c, nq->hdr_len - 2);
			nb_hi = wbyte(c, nq->hdr_len - 1);
		}
		copy_into(c, hdr, iov, niov, &si, &soff, chunk);
		if (__builtin_expect(rx->logging, 0))
			rx_log(rx, c, hdr + chunk);
		rx->used[rx->nused++] = vre_used_of(c, (uint32_t)(hdr + chunk));
		rx->next++;
		nbufs++;
		left -= hdr + chunk;
	}
	*nb_lo = (uint8_t)nbufs; /* little-endian, as virtio 1.x */
	*nb_hi = (uint8_t)(nbufs >> 8);
	if (__builtin_expect(rx->logging, 0)) {
		rx_log_byte(rx, nb_lo);
		rx_log_byte(rx, nb_hi);
	}
	return true;

unwind:
	/* The chains this packet took go back empty, never lost. */
	for (uint16_t i = first; i < rx->nused; i++)
		rx->used[i].len = 0;
	if (bad)
		rx_reject(rx, bad); /* after them: its turn */
	return false;
}

/*
 * The common case, in both modes: a one-segment packet that fits the first
 * writable segment of the next chain with its header. The bytes written,
 * the used length and the chain taken are those of rx_one_single and
 * rx_one_mergeable for the same input (num_buffers is 1 either way); the
 * general paths only skip the segment walks. false: nothing was done, the
 * caller takes the general path (rx_peek has maybe fetched, which it would
 * have done too).
 */
static inline bool rx_one_fast(struct vre_net_rx *rx, const struct iovec *iov, unsigned niov,
			       uint32_t len)
{
	uint16_t hdr_len = rx->nq->hdr_len;
	const struct iovec *w;
	struct vre_chain *c;
	uint8_t *base;

	if (niov != 1 || rx->nused == VRE_COMPLETE_MAX || !(c = rx_peek(rx)) || c->err || !c->nw)
		return false;
	w = &c->iov[c->nr];
	if (w->iov_len < (uint64_t)hdr_len + len)
		return false;
	base = w->iov_base;
	net_hdr_put(base, hdr_len);
	/* memmove: in loopback the guest may overlap its TX and RX buffers */
	memmove(base + hdr_len, iov->iov_base, len);
	if (__builtin_expect(rx->logging, 0))
		rx_log(rx, c, (uint64_t)hdr_len + len);
	rx->used[rx->nused++] = vre_used_of(c, hdr_len + len);
	rx->next++;
	return true;
}

/* Counts a packet vre_net_rx_one or vre_net_rx_frame wrote (or not). */
static bool rx_count(struct vre_net_rx *rx, bool ok, uint32_t len)
{
	if (rx->want)
		rx->want--;
	if (ok) {
		rx->nq->st.packets++;
		rx->nq->st.bytes += len;
	}
	return ok;
}

bool vre_net_rx_one(struct vre_net_rx *rx, const struct iovec *iov, unsigned niov,
		uint32_t len)
{
	struct vre_net_queue *nq = rx->nq;
	bool ok;

	if (rx->broken) {
		nq->st.drop_queue_broken++;
		return false;
	}
	if (rx_one_fast(rx, iov, niov, len))
		ok = true;
	else
		ok = nq->mrg_rxbuf ? rx_one_mergeable(rx, NULL, iov, niov, len)
				   : rx_one_single(rx, NULL, iov, niov, len);
	return rx_count(rx, ok, len);
}

bool vre_net_rx_frame(struct vre_net_rx *rx, const struct vre_net_hdr *vh, const struct iovec *iov,
		  unsigned niov, uint32_t len)
{
	struct vre_net_queue *nq = rx->nq;
	bool ok;

	if (!vh)
		return vre_net_rx_one(rx, iov, niov, len);
	if (rx->broken) {
		nq->st.drop_queue_broken++;
		return false;
	}
	ok = nq->mrg_rxbuf ? rx_one_mergeable(rx, vh, iov, niov, len)
			   : rx_one_single(rx, vh, iov, niov, len);
	return rx_count(rx, ok, len);
}

uint64_t net_rx_room(struct vre_net_rx *rx)
{
	struct vre_chain *c = rx_take(rx, rx->nq->hdr_len);

	return c ? c->wlen : 0;
}

void vre_net_rx_end(struct vre_net_rx *rx)
{
	/* Fetched but unfilled chains go back now: the device keeps none. */
	while (rx->next < rx->n) {
		if (rx->nused == VRE_COMPLETE_MAX)
			rx_publish(rx, rx->nused);
		rx->used[rx->nused++] = vre_used_of(&rx->chains[rx->next], 0);
		rx->next++;
	}
	rx_publish(rx, rx->nused);
	if (__builtin_expect(rx->logging, 0))
		vre_log_batch_flush(&rx->log);
	if (rx->notify)
		vre_queue_notify(rx->nq->q);
}

/* Logging on, after the fast loop: chains[first..first + k) were written,
 * with used[u..u + k) telling how much. */
static __attribute__((noinline)) void rx_log_run(struct vre_net_rx *rx, uint16_t first,
						 uint16_t u, unsigned k)
{
	for (unsigned i = 0; i < k; i++)
		rx_log(rx, &rx->chains[first + i], rx->used[u + i].len);
}

/*
 * rx_one_fast over the burst, with the cursor in locals: packets of mask,
 * in order, while each is one segment that fits the first writable
 * segment of the next fetched chain. Stops at the first that does not (or
 * when the fetched chains or the used array run out) and leaves it to the
 * general path. Returns the packets delivered; their bits are cleared from
 * *mask and their bytes added to *bytes.
 */
static inline __attribute__((always_inline)) unsigned
rx_put_fast(struct vre_net_rx *rx, const struct vre_net_tx_burst *b,
			    uint32_t *mask, uint64_t *bytes)
{
	const uint16_t hdr_len = rx->nq->hdr_len;
	uint32_t m = *mask;
	uint16_t next, n, nused;
	unsigned done = 0;
	uint64_t sum = 0;

	/* rx_peek fetches when none is left: only for a packet to come */
	if (!m || rx->broken || !rx_peek(rx))
		return 0;
	next = rx->next;
	n = rx->n;
	nused = rx->nused;
	const uint16_t next0 = next, nused0 = nused;
	/* Warm the first line of every destination now, in one tight loop
	 * (the sources were warmed by vre_net_tx_fetch). */
	for (uint16_t k = next + 1; k < n; k++) {
		const struct vre_chain *c = &rx->chains[k];

		if (!c->err && c->nw)
			__builtin_prefetch((uint8_t *)c->iov[c->nr].iov_base + hdr_len, 1);
	}
	while (m && next < n && nused < VRE_COMPLETE_MAX) {
		const struct vre_net_pkt *p = &b->pkts[__builtin_ctz(m)];
		const struct vre_chain *c = &rx->chains[next];
		const struct iovec *w = &c->iov[c->nr];
		const uint32_t len = p->len;
		const void *src;
		uint8_t *base;

		if (p->niov != 1 || c->err || !c->nw || w->iov_len < (uint64_t)hdr_len + len)
			break;
		src = p->iov[0].iov_base;
		m &= m - 1;
		/* The used entry first: nothing is read back from c after the
		 * copy, which the compiler must assume may write anywhere. */
		rx->used[nused++] = vre_used_of(c, hdr_len + len);
		base = w->iov_base;
		net_hdr_put(base, hdr_len);
		/* memmove: in loopback the guest may overlap TX and RX buffers */
		memmove(base + hdr_len, src, len);
		next++;
		done++;
		sum += len;
	}
	rx->next = next;
	rx->nused = nused;
	rx->want = (uint16_t)(rx->want > done ? rx->want - done : 0);
	/* the per-burst logging test of the fast loop */
	if (__builtin_expect(rx->logging, 0))
		rx_log_run(rx, next0, nused0, done);
	*mask = m;
	*bytes += sum;
	return done;
}

/* The packets of mask longer than the destination's MTU allows. */
static __attribute__((noinline)) uint32_t over_mtu(const struct vre_net_tx_burst *b,
						   uint32_t mask, uint32_t max)
{
	uint32_t over = 0;

	for (uint32_t m = mask; m; m &= m - 1)
		if (b->pkts[__builtin_ctz(m)].len > max)
			over |= 1u << __builtin_ctz(m);
	return over;
}

/* One packet the general way (it counts itself): the offload path for
 * one of slow, else vre_net_rx_one. */
static int rx_put_one(struct vre_net_rx *rx, const struct vre_net_tx_burst *b, uint32_t *mask,
		      uint32_t slow)
{
	unsigned k = (unsigned)__builtin_ctz(*mask);
	const struct vre_net_pkt *p = &b->pkts[k];

	*mask &= *mask - 1;
	if (*mask && b->pkts[__builtin_ctz(*mask)].niov)
		__builtin_prefetch(b->pkts[__builtin_ctz(*mask)].iov[0].iov_base);
	if (slow & (1u << k))
		return net_ol_rx(rx, p, b->ol_mask & (1u << k) ? &b->ol[k] : NULL);
	return vre_net_rx_one(rx, p->iov, p->niov, p->len);
}

/* A burst with packets that leave the fast path (slow: offload requests,
 * frames over the MTU): the fast path takes the packets before each of
 * them, in order. Out of line, so the common burst's loop stays as lean
 * as before offloads existed. */
static __attribute__((noinline)) int rx_put_mixed(struct vre_net_rx *rx,
						  const struct vre_net_tx_burst *b,
						  uint32_t mask, uint32_t slow, uint64_t *bytes,
						  unsigned *fast)
{
	int done = 0;

	for (;;) {
		uint32_t s = mask & slow, lim = s ? (s & -s) - 1 : UINT32_MAX, fm = mask & lim;

		if (fm) {
			*fast += rx_put_fast(rx, b, &fm, bytes);
			mask = (mask & ~lim) | fm;
		}
		if (!mask)
			return done;
		done += rx_put_one(rx, b, &mask, slow);
	}
}

int vre_net_rx_put(struct vre_net_queue *dst, const struct vre_net_tx_burst *b, uint32_t mask)
{
	const uint32_t all = b->npkts < 32 ? (1u << b->npkts) - 1 : UINT32_MAX;
	struct vre_net_rx rx;
	uint64_t bytes = 0;
	unsigned fast = 0;
	uint32_t slow;
	int done = 0;

	mask &= all;
	if (!mask)
		return 0;
	/* Offload requests and frames over the MTU take the slow path: two
	 * compares per burst when there are none (the OR of the lengths is
	 * at least the longest). */
	slow = mask & b->ol_mask;
	if (dst->mtu && b->len_or > (uint32_t)dst->mtu + VRE_NET_L2_MAX)
		slow |= over_mtu(b, mask, (uint32_t)dst->mtu + VRE_NET_L2_MAX);
	/* the whole burst is the usual mask: no popcount (a libgcc call
	 * without -mpopcnt) */
	vre_net_rx_begin(&rx, dst, (uint16_t)(mask == all ? b->npkts : __builtin_popcount(mask)));
	if (slow) {
		done = rx_put_mixed(&rx, b, mask, slow, &bytes, &fast);
	} else {
		for (;;) {
			fast += rx_put_fast(&rx, b, &mask, &bytes);
			if (!mask)
				break;
			done += rx_put_one(&rx, b, &mask, 0);
		}
	}
	/* The fast path's counters, once per burst. */
	dst->st.packets += fast;
	dst->st.bytes += bytes;
	vre_net_rx_end(&rx);
	return done + (int)fast;
}

int vre_net_forward(struct vre_net_queue *src_tx, struct vre_net_queue *dst_rx)
{
	struct vre_net_tx_burst b;
	int n, done = 0;

	n = vre_net_tx_fetch(src_tx, &b);
	if (n < 0)
		return n;
	if (n > 0)
		done = vre_net_rx_put(dst_rx, &b, UINT32_MAX);
	vre_net_tx_done(src_tx, &b);
	return done;
}
