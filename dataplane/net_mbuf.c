/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * virtio-net <-> mbuf: TX packets (payload iovecs into guest memory) are
 * copied into mbufs allocated in one bulk call per burst; mbufs are written
 * into RX chains by the same RX writer the vhost->vhost path uses
 * (vre_net_rx_*, vre_net.h), so the header, num_buffers and no-chain-lost
 * rules are identical. Built on the public API only: it is libvre-dpdk,
 * a client of libvre.
 */
#include <errno.h>
#include <string.h>

#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_net.h>

#include "vre_net_mbuf.h"
#include "vre_net_seg.h"

static uint32_t segs_for(uint32_t len, uint32_t room)
{
	return len ? (len + room - 1) / room : 1;
}

/* Fills the pre-allocated segs[0..nseg) with len bytes of iov[0..niov), chained. */
static struct rte_mbuf *iov_to_segs(const struct iovec *iov, unsigned niov, uint32_t len,
				    struct rte_mbuf **segs, uint32_t nseg)
{
	unsigned si = 0;
	size_t soff = 0;

	for (uint32_t k = 0; k < nseg; k++) {
		struct rte_mbuf *m = segs[k];
		uint8_t *d = rte_pktmbuf_mtod(m, uint8_t *);
		uint32_t room = rte_pktmbuf_tailroom(m), fill = 0;

		while (fill < room && si < niov) {
			size_t chunk = iov[si].iov_len - soff;

			if (chunk > room - fill)
				chunk = room - fill;
			memcpy(d + fill, (const uint8_t *)iov[si].iov_base + soff, chunk);
			fill += (uint32_t)chunk;
			soff += chunk;
			if (soff == iov[si].iov_len) {
				si++;
				soff = 0;
			}
		}
		m->data_len = (uint16_t)fill;
		m->next = k + 1 < nseg ? segs[k + 1] : NULL;
	}
	segs[0]->nb_segs = (uint16_t)nseg;
	segs[0]->pkt_len = len;
	return segs[0];
}

static struct rte_mbuf *pkt_to_mbuf(const struct vre_net_pkt *p, struct rte_mbuf **segs,
				    uint32_t nseg)
{
	return iov_to_segs(p->iov, p->niov, p->len, segs, nseg);
}

/* The mempool's data room per mbuf, 0 when unusable. */
static uint32_t pool_room(struct rte_mempool *mp)
{
	uint32_t room = rte_pktmbuf_data_room_size(mp);

	room = room > RTE_PKTMBUF_HEADROOM ? room - RTE_PKTMBUF_HEADROOM : 0;
	return room <= UINT16_MAX ? room : 0;
}

int vre_net_tx_to_mbufs(struct vre_net_queue *nq, const struct vre_net_tx_burst *b, uint32_t mask,
			struct rte_mempool *mp, struct rte_mbuf **out)
{
	struct rte_mbuf *segs[VRE_BURST * 4];
	uint32_t room = pool_room(mp), nseg[VRE_BURST], total = 0;
	int produced = 0;

	if (b->npkts < 32)
		mask &= (1u << b->npkts) - 1;
	if (!mask)
		return 0;
	if (room == 0) {
		nq->st.drop_no_mbuf += (uint64_t)__builtin_popcount(mask);
		return 0;
	}
	for (uint32_t m = mask; m; m &= m - 1) {
		unsigned i = (unsigned)__builtin_ctz(m);

		nseg[i] = segs_for(b->pkts[i].len, room);
		total += nseg[i] <= VRE_NET_MBUF_MAX_SEGS ? nseg[i] : 0;
	}
	/* The common case (a burst of frames that fit a few mbufs) takes one
	 * bulk allocation; a burst of jumbo chains allocates per packet. */
	if (total <= VRE_BURST * 4 && total &&
	    rte_pktmbuf_alloc_bulk(mp, segs, total) == 0) {
		uint32_t at = 0;

		for (uint32_t m = mask; m; m &= m - 1) {
			unsigned i = (unsigned)__builtin_ctz(m);

			if (nseg[i] > VRE_NET_MBUF_MAX_SEGS) {
				nq->st.drop_no_mbuf++;
				continue;
			}
			out[produced++] = pkt_to_mbuf(&b->pkts[i], segs + at, nseg[i]);
			at += nseg[i];
		}
		return produced;
	}
	for (uint32_t m = mask; m; m &= m - 1) {
		unsigned i = (unsigned)__builtin_ctz(m);

		if (nseg[i] > VRE_NET_MBUF_MAX_SEGS ||
		    rte_pktmbuf_alloc_bulk(mp, segs, nseg[i]) != 0) {
			nq->st.drop_no_mbuf++;
			continue;
		}
		out[produced++] = pkt_to_mbuf(&b->pkts[i], segs, nseg[i]);
	}
	return produced;
}

/* ---- toward a port, with offloads ---- */

/* Mbufs on their way to the sink, VRE_BURST at a time. */
struct port_out {
	struct rte_mbuf *m[VRE_BURST];
	unsigned n;
	int total;
	vre_net_mbuf_sink *sink;
	void *ctx;
	struct rte_mempool *mp;
	uint32_t room;
	struct vre_net_queue *nq;
};

static void out_flush(struct port_out *o)
{
	if (o->n)
		o->sink(o->ctx, o->m, o->n);
	o->total += (int)o->n;
	o->n = 0;
}

static void out_put(struct port_out *o, struct rte_mbuf *m)
{
	o->m[o->n++] = m;
	if (o->n == VRE_BURST)
		out_flush(o);
}

/* len bytes of iov[0..niov) as a new mbuf chain; NULL (counted as
 * drop_no_mbuf) when the pool ran dry or it needs too many segments. */
static struct rte_mbuf *out_copy(struct port_out *o, const struct iovec *iov, unsigned niov,
				 uint32_t len)
{
	struct rte_mbuf *segs[VRE_NET_MBUF_MAX_SEGS];
	uint32_t nseg = segs_for(len, o->room);

	if (nseg > VRE_NET_MBUF_MAX_SEGS || rte_pktmbuf_alloc_bulk(o->mp, segs, nseg) != 0) {
		o->nq->st.drop_no_mbuf++;
		return NULL;
	}
	return iov_to_segs(iov, niov, len, segs, nseg);
}

/* The mbuf chain as iovecs; 0 segments when it has too many (or lies about
 * its length). */
static unsigned mbuf_iov(const struct rte_mbuf *m, struct iovec *iov, uint32_t *len);

/* NEEDS_CSUM alone: mbuf flags when the port does TCP/UDP checksums and the
 * frame (the mbuf's copy, parsed by rte_net) asks for exactly that; else
 * the checksum completed in the copy. */
static void port_csum(struct port_out *o, const struct vre_net_mbuf_port *port,
		      struct rte_mbuf *m, const struct vre_net_ol *ol)
{
	struct rte_net_hdr_lens hl;
	uint32_t ptype = rte_net_get_ptype(m, &hl, RTE_PTYPE_L2_MASK | RTE_PTYPE_L3_MASK |
					   RTE_PTYPE_L4_MASK);
	uint32_t l4 = ptype & RTE_PTYPE_L4_MASK, len = m->pkt_len;
	bool v4 = RTE_ETH_IS_IPV4_HDR(ptype), v6 = RTE_ETH_IS_IPV6_HDR(ptype);
	struct iovec iov[VRE_NET_MBUF_MAX_SEGS];
	uint64_t f = 0;
	unsigned n;
	uint16_t c;

	if ((v4 || v6) && ol->h.csum_start == hl.l2_len + hl.l3_len) {
		if (l4 == RTE_PTYPE_L4_TCP && ol->h.csum_offset == 16 &&
		    (port->tx_offloads & RTE_ETH_TX_OFFLOAD_TCP_CKSUM))
			f = RTE_MBUF_F_TX_TCP_CKSUM;
		else if (l4 == RTE_PTYPE_L4_UDP && ol->h.csum_offset == 6 &&
			 (port->tx_offloads & RTE_ETH_TX_OFFLOAD_UDP_CKSUM))
			f = RTE_MBUF_F_TX_UDP_CKSUM;
	}
	if (f) {
		/* the field holds the pseudo header's sum, as ports expect */
		m->ol_flags |= f | (v4 ? RTE_MBUF_F_TX_IPV4 : RTE_MBUF_F_TX_IPV6);
		m->l2_len = hl.l2_len;
		m->l3_len = hl.l3_len;
		o->nq->st.ol_csum_out++;
		return;
	}
	n = mbuf_iov(m, iov, &len);
	c = vre_net_csum_complete(iov, n, len, ol->h.csum_start);
	vre_iov_write(iov, n, (uint64_t)ol->h.csum_start + ol->h.csum_offset, &c, 2);
	o->nq->st.ol_sw_csum++;
}

/* Whether the port segments this GSO frame itself. */
static bool port_tso(const struct vre_net_mbuf_port *port, const struct vre_net_ol *ol,
		     uint32_t mss)
{
	uint64_t need = RTE_ETH_TX_OFFLOAD_TCP_TSO | RTE_ETH_TX_OFFLOAD_TCP_CKSUM |
			(ol->ipv6 ? 0 : RTE_ETH_TX_OFFLOAD_IPV4_CKSUM);

	return (port->tx_offloads & need) == need &&
	       (!port->mtu || (uint32_t)ol->h.hdr_len + mss <= port->mtu);
}

/* A GSO frame: one mbuf chain with TSO flags, or MSS-sized mbufs made here. */
static void port_gso(struct port_out *o, const struct vre_net_mbuf_port *port,
		     const struct vre_net_pkt *p, const struct vre_net_ol *ol)
{
	uint32_t mss = vre_net_seg_mss(ol, port->mtu), len;
	struct iovec iov[VRE_NET_SEG_IOV];
	struct rte_mbuf *m;
	struct vre_net_seg s;
	unsigned n;

	if (mss == 0) {
		o->nq->st.drop_over_mtu++;
		return;
	}
	if (port_tso(port, ol, mss)) {
		/* the validated headers, then the payload */
		iov[0].iov_base = (void *)ol->hdrs;
		iov[0].iov_len = ol->h.hdr_len;
		n = vre_net_iov_slice(p->iov, p->niov, ol->h.hdr_len, p->len - ol->h.hdr_len, iov + 1,
				  VRE_NET_SEG_IOV - 1);
		m = out_copy(o, iov, n + 1, p->len);
		if (!m)
			return;
		m->ol_flags |= RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_TCP_CKSUM |
			       (ol->ipv6 ? RTE_MBUF_F_TX_IPV6 : RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM);
		m->l2_len = ol->l2_len;
		m->l3_len = ol->l3_len;
		m->l4_len = ol->l4_len;
		m->tso_segsz = (uint16_t)mss;
		o->nq->st.ol_gso_out++;
		out_put(o, m);
		return;
	}
	vre_net_seg_begin(&s, ol, p->iov, p->niov, p->len, mss, false);
	o->nq->st.ol_sw_gso++;
	while ((n = vre_net_seg_next(&s, iov, VRE_NET_SEG_IOV, &len))) {
		o->nq->st.ol_sw_segs++;
		m = out_copy(o, iov, n, len);
		if (m)
			out_put(o, m);
	}
}

int vre_net_tx_to_port(struct vre_net_queue *nq, const struct vre_net_tx_burst *b, uint32_t mask,
		       struct rte_mempool *mp, const struct vre_net_mbuf_port *port,
		       vre_net_mbuf_sink *sink, void *ctx)
{
	struct port_out o = { .sink = sink, .ctx = ctx, .mp = mp, .room = pool_room(mp), .nq = nq };
	const uint32_t max = port->mtu ? (uint32_t)port->mtu + VRE_NET_L2_MAX : UINT32_MAX;

	if (b->npkts < 32)
		mask &= (1u << b->npkts) - 1;
	if (!mask)
		return 0;
	/* Plain frames within the MTU: the bulk copy. */
	if (!(mask & b->ol_mask) && b->len_or <= max) {
		o.n = (unsigned)vre_net_tx_to_mbufs(nq, b, mask, mp, o.m);
		out_flush(&o);
		return o.total;
	}
	if (o.room == 0) {
		nq->st.drop_no_mbuf += (uint64_t)__builtin_popcount(mask);
		return 0;
	}
	for (uint32_t m = mask; m; m &= m - 1) {
		unsigned i = (unsigned)__builtin_ctz(m);
		const struct vre_net_pkt *p = &b->pkts[i];
		const struct vre_net_ol *ol = b->ol_mask & (1u << i) ? &b->ol[i] : NULL;
		struct rte_mbuf *mb;

		if (ol && ol->h.gso_type) {
			port_gso(&o, port, p, ol);
			continue;
		}
		if (p->len > max) {
			nq->st.drop_over_mtu++;
			continue;
		}
		mb = out_copy(&o, p->iov, p->niov, p->len);
		if (!mb)
			continue;
		if (ol)
			port_csum(&o, port, mb, ol);
		out_put(&o, mb);
	}
	out_flush(&o);
	return o.total;
}

/* ---- toward a guest ---- */

static unsigned mbuf_iov(const struct rte_mbuf *m, struct iovec *iov, uint32_t *len)
{
	unsigned n = 0;
	uint32_t sum = 0;

	for (; m; m = m->next) {
		if (n == VRE_NET_MBUF_MAX_SEGS)
			return 0;
		iov[n].iov_base = rte_pktmbuf_mtod(m, void *);
		iov[n].iov_len = m->data_len;
		sum += m->data_len;
		n++;
	}
	if (sum < *len)
		*len = sum;
	return n;
}

int vre_net_rx_from_mbufs(struct vre_net_queue *dst, struct rte_mbuf **pkts, uint16_t n)
{
	static const struct vre_net_hdr valid = { .flags = VRE_NET_HDR_F_DATA_VALID };
	const uint32_t max = dst->mtu ? (uint32_t)dst->mtu + VRE_NET_L2_MAX : UINT32_MAX;
	const bool csum = dst->ol_rx & VRE_OL_CSUM;
	struct iovec iov[VRE_NET_MBUF_MAX_SEGS];
	struct vre_net_rx rx;
	int done = 0;

	if (n == 0)
		return 0;
	vre_net_rx_begin(&rx, dst, n);
	for (uint16_t i = 0; i < n; i++) {
		uint32_t len = pkts[i]->pkt_len;
		unsigned niov;

		if (i + 1 < n)
			rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void *));
		niov = mbuf_iov(pkts[i], iov, &len);
		if (niov == 0 || len > max) {
			if (niov == 0)
				dst->st.drop_too_big++;
			else
				dst->st.drop_over_mtu++;
			if (rx.want)
				rx.want--;
			continue;
		}
		/* a checksum the NIC checked need not be checked again */
		if (csum && (pkts[i]->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) ==
				    RTE_MBUF_F_RX_L4_CKSUM_GOOD) {
			bool ok = vre_net_rx_frame(&rx, &valid, iov, niov, len);

			dst->st.ol_data_valid += ok;
			done += ok;
			continue;
		}
		done += vre_net_rx_one(&rx, iov, niov, len);
	}
	vre_net_rx_end(&rx);
	return done;
}
