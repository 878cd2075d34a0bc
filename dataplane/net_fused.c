/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The fused vhost -> vhost forward path: the common packet, one readable
 * TX descriptor holding the virtio-net header and the frame, into the
 * common RX buffer, one writable descriptor, with nothing between the two
 * rings but two vre_run arrays (where each buffer is, its length, its id):
 * no vre_chain, iovec, packet or vre_used per packet as the general path
 * (net_path.c: vre_net_tx_fetch, vre_net_rx_put, vre_net_tx_done) builds.
 *
 * The rules are the general path's for the packets it takes, so both paths
 * deliver the same bytes and count the same: the TX header is not
 * forwarded, the RX header is the one a one-buffer packet gets, the RX
 * chains are completed (published) before the TX chains, each side is
 * notified at most once. Anything else leaves to the general path, at the
 * first packet of the burst that is not common: the chains from it on
 * are given back untouched (vre_vq_untake_run), and the general path reads
 * them afresh. That is:
 * - a TX or RX chain that is not one descriptor of the right direction in
 *   the memory region of the ring's last translation (vre_vq_take_run);
 * - a TX header that asks for something (flags or gso_type not 0; the
 *   offload work plugs in at that one test);
 * - a frame shorter than an Ethernet header, longer than VRE_NET_MAX_FRAME
 *   or than the destination's MTU + VRE_NET_L2_MAX (the general path
 *   counts it as drop_over_mtu), or one that does not fit its RX buffer;
 * - no RX buffer at all (the general path counts the drops);
 * - a queue with inflight records or resubmissions pending (the general
 *   path records them), or a broken one.
 * Dirty logging (issue 16) joins that list with one test per burst and
 * queue, in fused_ok().
 *
 * In two steps (vre_net_fused_take, then vre_net_fused_put or
 * vre_net_fused_giveback) for a caller that looks at the frames before it
 * picks the destination: learn mode.
 */
#include <errno.h>
#include <string.h>

#include "net_internal.h"

#define ETH_HLEN 14u

/* The per-burst test for whatever makes a queue's whole burst take the
 * general path: dirty logging on its ring (a live migration; the general
 * path marks every byte and ring entry it writes, this one does not). */
static inline bool fused_ok(const struct vre_net_queue *nq)
{
	return __builtin_expect(nq->q->vq.log == NULL, 1);
}

int vre_net_fused_take(struct vre_net_queue *src, struct vre_run *tx)
{
	int n;

	tx->n = 0;
	if (!fused_ok(src))
		return -EAGAIN;
	n = vre_vq_take_run(&src->q->vq, tx, VRE_BURST, false);
	if (n <= 0) {
		if (n < 0)
			return -EAGAIN;
		src->st.empty_polls++;
		return 0;
	}
	/* Warm each TX buffer's first line (header and frame start) */
	for (int k = 0; k < n; k++)
		__builtin_prefetch(tx->base[k]);
	return n;
}

void vre_net_fused_giveback(struct vre_net_queue *src, struct vre_run *tx)
{
	vre_vq_untake_run(&src->q->vq, tx, 0);
}

int vre_net_fused_put(struct vre_net_queue *src, struct vre_run *tx, struct vre_net_queue *dst)
{
	struct vre_vq *svq = &src->q->vq, *dvq = &dst->q->vq;
	const uint32_t shdr = src->hdr_len, dhdr = dst->hdr_len;
	const uint32_t fmax = dst->mtu && dst->mtu + VRE_NET_L2_MAX < VRE_NET_MAX_FRAME ?
				      dst->mtu + VRE_NET_L2_MAX : VRE_NET_MAX_FRAME;
	struct vre_run rx;
	uint64_t bytes = 0;
	unsigned k, n;
	int nrx;

	nrx = fused_ok(dst) ? vre_vq_take_run(dvq, &rx, tx->n, true) : -EAGAIN;
	n = nrx > 0 ? (unsigned)nrx : 0;
	/* Each RX frame's first line, for writing (the header is compared
	 * before it is stored: net_hdr_put) */
	for (k = 0; k < n; k++)
		__builtin_prefetch(rx.base[k] + dhdr, 1);
	for (k = 0; k < n; k++) {
		const uint8_t *t = tx->base[k];
		uint32_t tlen = tx->len[k], flen;
		uint16_t ask;

		if (tlen < shdr + ETH_HLEN || tlen - shdr > fmax)
			break;
		/* flags and gso_type: the one read of the TX header */
		memcpy(&ask, t, sizeof(ask));
		flen = tlen - shdr;
		if (ask || rx.len[k] < dhdr + flen)
			break;
		net_hdr_put(rx.base[k], (uint16_t)dhdr);
		/* memmove: in loopback the guest may overlap TX and RX buffers */
		memmove(rx.base[k] + dhdr, t + shdr, flen);
		rx.len[k] = dhdr + flen;
		bytes += flen;
	}
	vre_vq_untake_run(svq, tx, k);
	if (n)
		vre_vq_untake_run(dvq, &rx, k);
	if (k == 0)
		return -EAGAIN;
	/* Published at the destination first, then the TX chains back. */
	if (vre_vq_complete_run(dvq, &rx, k, true) == 0 && vre_vq_needs_notify(dvq))
		vre_queue_notify(dst->q);
	if (vre_vq_complete_run(svq, tx, k, false) == 0 && vre_vq_needs_notify(svq))
		vre_queue_notify(src->q);
	/* The counters once per burst (one writer: this worker). */
	src->st.bursts++;
	src->st.packets += k;
	src->st.bytes += bytes;
	dst->st.bursts++;
	dst->st.packets += k;
	dst->st.bytes += bytes;
	return (int)k;
}

int vre_net_forward_fused(struct vre_net_queue *src, struct vre_net_queue *dst)
{
	struct vre_run tx;
	int n = vre_net_fused_take(src, &tx);

	return n <= 0 ? n : vre_net_fused_put(src, &tx, dst);
}
