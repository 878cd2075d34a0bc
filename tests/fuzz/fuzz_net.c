/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fuzz harness for the vhost->vhost net path (vre_net_tx_fetch,
 * vre_net_rx_put, vre_net_tx_done) over fuzzed split or packed rings, net
 * header 10 or 12 bytes, mergeable RX buffers on or off.
 *
 * Two guests, each with its own guarded memory (one or two regions): the
 * TX queue lives in the first, the RX queue in the second, as between two
 * VMs on the switch; or (cfg bit 5) both in one guest, as in the switch's
 * loopback mode, where the guest can make TX and RX buffers overlap. The script publishes chains on either ring (the
 * descriptors chosen by the input: any address, length, direction),
 * scribbles on the rings, and forwards bursts with a packet mask.
 *
 * Input: [tx mem layout][rx mem layout][cfg u8][cfg2 u8][tx q u8][rx q u8]
 *        [tx parts 3 x (region u8, offset u16)][rx parts 3 x 3]
 *        [script length u16][script][tx image][rx image]
 * cfg: bit 0 packed, 1 mrg_rxbuf, 2 hdr_len 12 (else 10), 3 event idx,
 *      4 indirect, 5 one guest, 6 offloads: the TX driver negotiated every
 *      host offload (its headers are read and validated), 7 with 6: the RX
 *      driver negotiated every guest offload (else it has none and an MTU
 *      of 1500, so GSO frames are segmented and checksums completed).
 * cfg2: bit 0 VIRTIO_F_IN_ORDER negotiated (both queues), 1 forward as
 *      vre-switch does: vre_net_forward_fused first, the general path on
 *      -EAGAIN.
 *
 * Oracles besides faults and sanitizers: every packet's iovecs lie in the
 * TX guest's memory and add up to its length (<= VRE_NET_MAX_FRAME), eth
 * is there when the frame has 14 bytes; each TX chain is either a packet
 * or counted as one drop (offload refusals included); an accepted offload
 * request is within the frame (checksum position, hdr_len, gso_size,
 * parsed header lengths, segment count); each RX frame the device tries
 * (one per packet, one per segment of a packet it segments) is either
 * delivered or counted as one drop; after rx_put and tx_done neither
 * queue holds a chain; a broken ring makes tx_fetch return -EIO. The fused
 * path: it forwards k packets counted on both queues (same bytes), leaves
 * neither queue holding a chain, and changes nothing when it returns 0 or
 * -EAGAIN before the general path takes over.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "vre_log.h"
#include "vre_net.h"

#define CFG_PACKED 1u
#define CFG_MRG 2u
#define CFG_HDR12 4u
#define CFG_EVENT_IDX 8u
#define CFG_INDIRECT 16u
#define CFG_ONE_GUEST 32u /* loopback: both queues in one guest's memory */
#define CFG_OL 64u        /* TX: host offloads negotiated */
#define CFG_RX_OL 128u    /* with CFG_OL, RX: guest offloads negotiated */
#define OL_ALL (VRE_OL_CSUM | VRE_OL_TSO4 | VRE_OL_TSO6 | VRE_OL_ECN)
#define CFG2_IN_ORDER 1u
#define CFG2_FUSED 2u

enum { OP_TX_ADD, OP_RX_ADD, OP_FWD, OP_POKE, OP_AVAIL_IDX, OP_EVENT, OP_COUNT };

struct side {
	struct fz_mem mem;
	struct fz_mem *m;      /* the memory its ring and buffers are in */
	struct vre_queue q;
	struct vre_net_queue nq;
	uint8_t *part[3];
	size_t part_len[3];
	uint16_t size;
	uint16_t drv_idx, next_desc, next_id;
	bool drv_wrap;
};

static struct side S[2]; /* 0 TX, 1 RX */
static struct vre_net_tx_burst B;
static bool fused; /* CFG_FUSED */

static int side_setup(struct side *s, struct fin *f, uint8_t cfg, uint8_t cfg2, uint8_t q,
		      bool tx)
{
	static const unsigned al_split[3] = { 16, 2, 4 }, al_packed[3] = { 16, 4, 4 };
	bool packed = cfg & CFG_PACKED;
	struct vre_vq_params p;

	s->size = packed ? (uint16_t)(q + 1) : (uint16_t)(1u << (q % 9));
	s->part_len[0] = 16u * s->size;
	s->part_len[1] = packed ? 4 : 6u + 2u * s->size;
	s->part_len[2] = packed ? 4 : 6u + 8u * s->size;
	for (unsigned k = 0; k < 3; k++) {
		uint8_t ri = fin8(f);
		uint16_t off = fin16(f);

		s->part[k] = fz_place(s->m, ri, off, s->part_len[k],
				      (packed ? al_packed : al_split)[k]);
		if (!s->part[k])
			return -1;
	}
	p = (struct vre_vq_params){ .size = s->size, .packed = packed,
				    .event_idx = cfg & CFG_EVENT_IDX, .indirect = cfg & CFG_INDIRECT,
				    .in_order = cfg2 & CFG2_IN_ORDER,
				    .desc = s->part[0], .driver = s->part[1], .device = s->part[2],
				    .mem = &s->m->mm };
	memset(&s->q, 0, sizeof(s->q));
	s->q.index = tx ? 1 : 0;
	s->q.kick_fd = s->q.call_fd = s->q.err_fd = -1;
	FZ_CHECK(vre_vq_init(&s->q.vq, &p) == 0, "queue init");
	memset(&s->nq, 0, sizeof(s->nq));
	s->nq.q = &s->q;
	s->nq.hdr_len = cfg & CFG_HDR12 ? 12 : 10;
	s->nq.mrg_rxbuf = cfg & CFG_MRG;
	s->nq.is_tx = tx;
	if (cfg & CFG_OL) {
		s->nq.ol_tx = tx ? OL_ALL : 0;
		s->nq.ol_rx = !tx && (cfg & CFG_RX_OL) ? OL_ALL : 0;
		s->nq.mtu = !tx && !(cfg & CFG_RX_OL) ? 1500 : 0;
	}
	s->drv_wrap = true;
	return 0;
}

/* Publishes a chain of 1..4 descriptors the input describes. */
static void add_chain(struct side *s, struct fin *f)
{
	struct vre_vq *vq = &s->q.vq;
	unsigned n = fin8(f) % 4 + 1;
	uint16_t head_slot = vq->packed ? s->drv_idx : s->next_desc, head_flags = 0;
	uint16_t id = (uint16_t)(s->next_id++ % s->size);

	for (unsigned j = 0; j < n; j++) {
		uint8_t fl = fin8(f);
		uint64_t addr = fz_pick_gpa(s->m, f);
		uint32_t len = fl & 0x80 ? fin32(f) : fin16(f) % 4096;
		uint16_t flags = (uint16_t)((fl & (VRE_DESC_F_WRITE | VRE_DESC_F_INDIRECT)) |
					    (j + 1 < n ? VRE_DESC_F_NEXT : 0));

		if (!vq->packed) {
			uint16_t slot = s->next_desc;
			struct vre_desc d = { addr, len, flags, (uint16_t)((slot + 1) % s->size) };

			memcpy(&vq->sp.desc[slot], &d, sizeof(d));
			s->next_desc = (uint16_t)((slot + 1) % s->size);
			continue;
		}
		struct vre_packed_desc *d = &vq->pk.desc[s->drv_idx];

		flags |= s->drv_wrap ? VRE_PACKED_DESC_F_AVAIL : VRE_PACKED_DESC_F_USED;
		d->addr = addr;
		d->len = len;
		d->id = id;
		if (j == 0)
			head_flags = flags;
		else
			__atomic_store_n(&d->flags, flags, __ATOMIC_RELAXED);
		if (++s->drv_idx == s->size) {
			s->drv_idx = 0;
			s->drv_wrap = !s->drv_wrap;
		}
	}
	if (vq->packed) {
		__atomic_store_n(&vq->pk.desc[head_slot].flags, head_flags, __ATOMIC_RELEASE);
		return;
	}
	__atomic_store_n(&vq->sp.avail->ring[s->drv_idx & (s->size - 1)], head_slot,
			 __ATOMIC_RELAXED);
	s->drv_idx++;
	__atomic_store_n(&vq->sp.avail->idx, s->drv_idx, __ATOMIC_RELEASE);
}

static bool holds_nothing(const struct vre_vq *vq)
{
	return vq->last_avail_idx == vq->last_used_idx &&
	       (!vq->packed || vq->avail_wrap == vq->used_wrap);
}

static uint64_t rx_drops(const struct vre_net_stats *st)
{
	return st->drop_no_rx_buf + st->drop_too_big + st->drop_queue_broken + st->drop_over_mtu;
}

static uint64_t ol_drops(const struct vre_net_stats *st)
{
	uint64_t d = 0;

	for (unsigned r = 0; r < VRE_OL_DROP_COUNT; r++)
		d += st->drop_ol[r];
	return d;
}

/* An accepted offload request lies inside its frame. */
static void check_ol(const struct vre_net_pkt *p, const struct vre_net_ol *ol)
{
	const struct vre_net_hdr *h = &ol->h;

	FZ_CHECK(h->flags <= VRE_NET_HDR_F_NEEDS_CSUM, "ol flags 0x%x", h->flags);
	FZ_CHECK(h->flags || h->gso_type, "an offload request asking for nothing");
	if (h->flags)
		FZ_CHECK((uint32_t)h->csum_start + h->csum_offset + 2 <= p->len,
			 "checksum at %u+%u in %u bytes", h->csum_start, h->csum_offset, p->len);
	if (!h->gso_type)
		return;
	FZ_CHECK(h->flags && h->csum_offset == 16 && h->csum_start == ol->l2_len + ol->l3_len,
		 "GSO checksum at %u+%u", h->csum_start, h->csum_offset);
	FZ_CHECK((ol->l2_len == 14 || ol->l2_len == 18) &&
		 (ol->ipv6 ? ol->l3_len == 40 : ol->l3_len >= 20 && ol->l3_len <= 60) &&
		 ol->l4_len >= 20 && ol->l4_len <= 60 &&
		 h->hdr_len == ol->l2_len + ol->l3_len + ol->l4_len && h->hdr_len <= p->len &&
		 h->hdr_len <= VRE_NET_OL_HDRS_MAX, "GSO headers %u/%u/%u, hdr_len %u of %u",
		 ol->l2_len, ol->l3_len, ol->l4_len, h->hdr_len, p->len);
	FZ_CHECK(h->gso_size > 0 && h->gso_size <= p->len &&
		 (p->len - h->hdr_len + h->gso_size - 1) / h->gso_size <= VRE_NET_MAX_SEGS &&
		 p->len - ol->l2_len <= 65535, "gso_size %u for %u bytes", h->gso_size, p->len);
}

static void check_pkt(const struct vre_net_pkt *p)
{
	uint64_t sum = 0;

	FZ_CHECK(p->len <= VRE_NET_MAX_FRAME, "frame of %u bytes", p->len);
	for (unsigned i = 0; i < p->niov; i++) {
		FZ_CHECK(fz_in_region(&S[0].mem, p->iov[i].iov_base, p->iov[i].iov_len) ||
			 p->iov[i].iov_len == 0, "packet iovec outside the TX guest");
		sum += p->iov[i].iov_len;
	}
	FZ_CHECK(sum == p->len, "packet iovecs %llu bytes, len %u", (unsigned long long)sum, p->len);
	FZ_CHECK((p->eth != NULL) == (p->len >= 14), "eth %p for len %u", (void *)p->eth, p->len);
	if (p->eth && p->eth != p->eth_copy)
		FZ_CHECK(fz_in_region(&S[0].mem, p->eth, 14), "eth outside the TX guest");
}

/* The fused path as vre-switch takes it. Returns true when it handled the
 * burst (forwarded packets, or found nothing), false when the general path
 * must run: then it changed nothing (the chains it looked at are back). */
static bool fwd_fused(void)
{
	struct side *tx = &S[0], *rx = &S[1];
	struct vre_net_stats t0 = tx->nq.st, r0 = rx->nq.st;
	struct vre_vq tv = tx->q.vq, rv = rx->q.vq;
	int k = vre_net_forward_fused(&tx->nq, &rx->nq);

	FZ_CHECK(k >= -EAGAIN && k <= VRE_BURST && k != -EIO, "fused %d", k);
	if (k <= 0) {
		FZ_CHECK(tx->q.vq.last_avail_idx == tv.last_avail_idx &&
			 tx->q.vq.avail_wrap == tv.avail_wrap &&
			 rx->q.vq.last_avail_idx == rv.last_avail_idx &&
			 rx->q.vq.avail_wrap == rv.avail_wrap &&
			 tx->q.vq.last_used_idx == tv.last_used_idx &&
			 rx->q.vq.last_used_idx == rv.last_used_idx,
			 "fused %d moved a ring position", k);
		FZ_CHECK(tx->nq.st.packets == t0.packets && rx->nq.st.packets == r0.packets,
			 "fused %d counted packets", k);
		return k == 0;
	}
	FZ_CHECK(tx->nq.st.packets - t0.packets == (uint64_t)k &&
		 rx->nq.st.packets - r0.packets == (uint64_t)k &&
		 tx->nq.st.bytes - t0.bytes == rx->nq.st.bytes - r0.bytes &&
		 tx->nq.st.bytes - t0.bytes >= 14ull * (uint64_t)k,
		 "fused %d: counters do not add up", k);
	FZ_CHECK(holds_nothing(&tx->q.vq) && holds_nothing(&rx->q.vq),
		 "a queue keeps chains after the fused path");
	return true;
}

static void op_fwd(struct fin *f)
{
	struct side *tx = &S[0], *rx = &S[1];
	struct vre_net_stats t0, r0;
	uint32_t mask = fin32(f), eff;
	bool was_broken = tx->q.vq.broken;
	int n, done;

	if (fused) {
		if (fwd_fused())
			return;
		mask = UINT32_MAX; /* the switch forwards every packet */
	}
	t0 = tx->nq.st;
	r0 = rx->nq.st;
	n = vre_net_tx_fetch(&tx->nq, &B);
	if (n < 0) {
		FZ_CHECK(n == -EIO && tx->q.vq.broken, "tx_fetch %d", n);
		return;
	}
	FZ_CHECK(!was_broken, "broken TX ring gave %d packets", n);
	FZ_CHECK(n == B.npkts && B.npkts <= B.n && B.n <= VRE_BURST, "tx_fetch %d, npkts %u n %u",
		 n, B.npkts, B.n);
	FZ_CHECK(tx->nq.st.packets - t0.packets == B.npkts &&
		 (tx->nq.st.drop_short_hdr - t0.drop_short_hdr) +
		 (tx->nq.st.drop_bad_chain - t0.drop_bad_chain) +
		 ol_drops(&tx->nq.st) - ol_drops(&t0) == (uint64_t)(B.n - B.npkts),
		 "TX chains not accounted: %u chains, %u packets", B.n, B.npkts);
	FZ_CHECK(tx->nq.ol_tx || (!B.ol_mask && ol_drops(&tx->nq.st) == 0),
		 "offloads without the features");
	for (unsigned i = 0; i < B.npkts; i++) {
		check_pkt(&B.pkts[i]);
		if (B.ol_mask & (1u << i))
			check_ol(&B.pkts[i], &B.ol[i]);
	}
	eff = B.npkts < 32 ? mask & ((1u << B.npkts) - 1) : mask;
	done = vre_net_rx_put(&rx->nq, &B, mask);
	if (eff) {
		/* each packet is one frame, or as many as the device made of it */
		uint64_t tries = (uint64_t)__builtin_popcount(eff) +
				 (rx->nq.st.ol_sw_segs - r0.ol_sw_segs) -
				 (rx->nq.st.ol_sw_gso - r0.ol_sw_gso);

		FZ_CHECK(done >= 0 && rx->nq.st.packets - r0.packets == (uint64_t)done &&
			 (uint64_t)done + rx_drops(&rx->nq.st) - rx_drops(&r0) == tries,
			 "RX frames not accounted: %d delivered of %llu", done,
			 (unsigned long long)tries);
		FZ_CHECK(holds_nothing(&rx->q.vq), "RX queue keeps chains after the burst");
	} else {
		FZ_CHECK(done == 0, "rx_put %d for no packet", done);
	}
	if (getenv("VRE_FUZZ_TRACE"))
		fprintf(stderr, "fwd: %u chains, %d packets, %d delivered, rx drops %llu bad %llu\n",
			B.n, n, done, (unsigned long long)rx_drops(&rx->nq.st),
			(unsigned long long)rx->nq.st.drop_bad_chain);
	vre_net_tx_done(&tx->nq, &B);
	FZ_CHECK(holds_nothing(&tx->q.vq), "TX queue keeps chains after tx_done");
}

static void op_poke(struct fin *f)
{
	struct side *s = &S[fin8(f) & 1];
	unsigned k = fin8(f) % 3;
	uint16_t off = fin16(f), v = fin16(f);

	if (s->part_len[k] < 2)
		return;
	off = (uint16_t)(off % (s->part_len[k] - 1));
	memcpy(s->part[k] + off, &v, 2);
}

static void op_avail_idx(struct fin *f)
{
	struct side *s = &S[fin8(f) & 1];
	uint16_t v = fin16(f);

	if (s->q.vq.packed) {
		s->drv_idx = (uint16_t)(v % s->size);
		s->drv_wrap = v >> 15;
		return;
	}
	s->drv_idx = v;
	__atomic_store_n(&s->q.vq.sp.avail->idx, v, __ATOMIC_RELEASE);
}

static void op_event(struct fin *f)
{
	struct side *s = &S[fin8(f) & 1];
	uint16_t a = fin16(f), b = fin16(f);

	if (s->q.vq.packed) {
		__atomic_store_n(&s->q.vq.pk.driver->off_wrap, b, __ATOMIC_RELAXED);
		__atomic_store_n(&s->q.vq.pk.driver->flags, (uint16_t)(a % 4), __ATOMIC_RELAXED);
	} else {
		__atomic_store_n(&s->q.vq.sp.avail->flags, (uint16_t)(a & 1), __ATOMIC_RELAXED);
		__atomic_store_n(s->q.vq.sp.used_event, b, __ATOMIC_RELAXED);
	}
	if (a & 0x100)
		(void)vre_vq_notify_enable(&s->q.vq);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fin f = { data, size }, script;
	uint8_t cfg, cfg2, qt, qr;
	int ok;

	if (!getenv("VRE_LOG"))
		vre_log_level = -1;
	memset(S, 0, sizeof(S));
	if (fz_mem_create(&S[0].mem, &f, true))
		return 0;
	if (fz_mem_create(&S[1].mem, &f, true)) {
		fz_mem_destroy(&S[0].mem);
		return 0;
	}
	cfg = fin8(&f);
	cfg2 = fin8(&f);
	fused = cfg2 & CFG2_FUSED;
	S[0].m = &S[0].mem;
	S[1].m = cfg & CFG_ONE_GUEST ? &S[0].mem : &S[1].mem;
	qt = fin8(&f);
	qr = fin8(&f);
	ok = side_setup(&S[0], &f, cfg, cfg2, qt, true) == 0 &&
	     side_setup(&S[1], &f, cfg, cfg2, qr, false) == 0;
	if (ok) {
		script = fin_sub(&f, fin16(&f));
		fz_mem_fill(&S[0].mem, &f);
		fz_mem_fill(&S[1].mem, &f);
		for (unsigned i = 0; i < 2; i++)
			if (!S[i].q.vq.packed)
				__atomic_store_n(&S[i].q.vq.sp.avail->idx, 0, __ATOMIC_RELAXED);
		while (script.n) {
			switch (fin8(&script) % OP_COUNT) {
			case OP_TX_ADD: add_chain(&S[0], &script); break;
			case OP_RX_ADD: add_chain(&S[1], &script); break;
			case OP_FWD: op_fwd(&script); break;
			case OP_POKE: op_poke(&script); break;
			case OP_AVAIL_IDX: op_avail_idx(&script); break;
			default: op_event(&script); break;
			}
		}
	}
	for (unsigned i = 0; i < 2; i++) {
		if (S[i].q.vq.size)
			vre_vq_fini(&S[i].q.vq);
		fz_mem_destroy(&S[i].mem);
	}
	return 0;
}
