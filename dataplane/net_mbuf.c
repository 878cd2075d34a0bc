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

#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "vre_net_mbuf.h"

static uint32_t segs_for(uint32_t len, uint32_t room)
{
	return len ? (len + room - 1) / room : 1;
}

/* Fills the pre-allocated segs[0..nseg) with the packet, chained. */
static struct rte_mbuf *pkt_to_mbuf(const struct vre_net_pkt *p, struct rte_mbuf **segs,
				    uint32_t nseg)
{
	unsigned si = 0;
	size_t soff = 0;

	for (uint32_t k = 0; k < nseg; k++) {
		struct rte_mbuf *m = segs[k];
		uint8_t *d = rte_pktmbuf_mtod(m, uint8_t *);
		uint32_t room = rte_pktmbuf_tailroom(m), fill = 0;

		while (fill < room && si < p->niov) {
			size_t chunk = p->iov[si].iov_len - soff;

			if (chunk > room - fill)
				chunk = room - fill;
			memcpy(d + fill, (const uint8_t *)p->iov[si].iov_base + soff, chunk);
			fill += (uint32_t)chunk;
			soff += chunk;
			if (soff == p->iov[si].iov_len) {
				si++;
				soff = 0;
			}
		}
		m->data_len = (uint16_t)fill;
		m->next = k + 1 < nseg ? segs[k + 1] : NULL;
	}
	segs[0]->nb_segs = (uint16_t)nseg;
	segs[0]->pkt_len = p->len;
	return segs[0];
}

int vre_net_tx_to_mbufs(struct vre_net_queue *nq, const struct vre_net_tx_burst *b, uint32_t mask,
			struct rte_mempool *mp, struct rte_mbuf **out)
{
	struct rte_mbuf *segs[VRE_BURST * 4];
	uint32_t room = rte_pktmbuf_data_room_size(mp), nseg[VRE_BURST], total = 0;
	int produced = 0;

	if (b->npkts < 32)
		mask &= (1u << b->npkts) - 1;
	room = room > RTE_PKTMBUF_HEADROOM ? room - RTE_PKTMBUF_HEADROOM : 0;
	if (!mask)
		return 0;
	if (room == 0 || room > UINT16_MAX) {
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

/* The mbuf chain as iovecs; 0 segments when it has too many (or lies about
 * its length). */
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
		if (niov == 0) {
			dst->st.drop_too_big++;
			if (rx.want)
				rx.want--;
			continue;
		}
		done += vre_net_rx_one(&rx, iov, niov, len);
	}
	vre_net_rx_end(&rx);
	return done;
}
