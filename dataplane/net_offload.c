/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * virtio-net offloads: the TX header's validation, checksum completion and
 * software segmentation into a destination's RX chains (see net_offload.h
 * for the rules and vre_net.h for where the fast paths hand over).
 *
 * TX validation (virtio spec 5.1.6.2, and what DPDK's vhost learned from
 * trusting hdr_len and csum_start): a request is refused, with one counter
 * per reason, when it asks for an offload the queue did not negotiate
 * (NEEDS_CSUM without CSUM, TCPV4/TCPV6 without HOST_TSO4/6, the ECN bit
 * without HOST_ECN, any other gso_type), when hdr_len or the checksum
 * position lies beyond the frame, when gso_size is 0 or larger than the
 * frame or would make more than VRE_NET_MAX_SEGS segments, when a GSO
 * frame's IP datagram would exceed 64 KiB, and when a GSO frame's headers
 * are not Ethernet (one optional VLAN tag), IPv4 (not a fragment) or IPv6
 * (no extension header) as gso_type says, then TCP, with NEEDS_CSUM set on
 * the TCP checksum. A GSO frame's headers are copied once (ol->hdrs) and
 * only that copy is used afterwards: segments, and a GSO frame passed on
 * whole, start with these validated bytes whatever the guest writes later.
 */
#include <stddef.h>
#include <string.h>

#include "net_offload.h"
#include "vre_log.h"

#define ETH_TYPE_IPV4 0x0800
#define ETH_TYPE_IPV6 0x86dd
#define ETH_TYPE_VLAN 0x8100
#define IPPROTO_TCP_ 6
#define TCP_CSUM_OFF 16u
#define TCP_F_FIN 0x01
#define TCP_F_PSH 0x08
#define TCP_F_CWR 0x80

static const char *const drop_names[VRE_OL_DROP_COUNT] = {
	[VRE_OL_DROP_FEATURE] = "feature",   [VRE_OL_DROP_CSUM] = "csum",
	[VRE_OL_DROP_GSO_SIZE] = "gso-size", [VRE_OL_DROP_HDR_LEN] = "hdr-len",
	[VRE_OL_DROP_TOO_LONG] = "too-long", [VRE_OL_DROP_HEADERS] = "headers",
};

const char *vre_net_ol_drop_name(enum vre_net_ol_drop r)
{
	return (unsigned)r < VRE_OL_DROP_COUNT ? drop_names[r] : "?";
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* ---- checksums ---------------------------------------------------------- */

static uint16_t fold(uint64_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/* Sum of a buffer as if it started at an even stream offset. Native loads:
 * the one's complement sum does not depend on byte order (RFC 1071), so
 * the result is stored back as it is. */
static uint16_t csum_buf(const uint8_t *p, size_t len)
{
	uint64_t s = 0;

	while (len >= 16) {
		uint32_t v[4];

		memcpy(v, p, 16);
		s += (uint64_t)v[0] + v[1] + v[2] + v[3];
		p += 16;
		len -= 16;
	}
	while (len >= 4) {
		uint32_t v;

		memcpy(&v, p, 4);
		s += v;
		p += 4;
		len -= 4;
	}
	if (len >= 2) {
		uint16_t v;

		memcpy(&v, p, 2);
		s += v;
		p += 2;
		len -= 2;
	}
	if (len) {
		uint8_t t[2] = { p[0], 0 };
		uint16_t v;

		memcpy(&v, t, 2);
		s += v;
	}
	return fold(s);
}

static uint16_t csum_add(uint16_t a, uint16_t b)
{
	return fold((uint32_t)a + b);
}

/* A chunk that starts at an odd stream offset contributes its sum with
 * the bytes swapped (RFC 1071, "byte order independence"). */
static uint16_t csum_chunk(uint16_t sum, const void *p, size_t len, bool odd)
{
	uint16_t c = csum_buf(p, len);

	if (odd)
		c = (uint16_t)(c << 8 | c >> 8);
	return csum_add(sum, c);
}

uint16_t net_csum_iov(const struct iovec *iov, unsigned niov, uint64_t off, uint64_t len)
{
	uint16_t sum = 0;
	bool odd = false;

	for (unsigned i = 0; i < niov && len; i++) {
		size_t l = iov[i].iov_len;

		if (off >= l) {
			off -= l;
			continue;
		}
		l -= off;
		if (l > len)
			l = len;
		sum = csum_chunk(sum, (const uint8_t *)iov[i].iov_base + off, l, odd);
		odd ^= l & 1;
		len -= l;
		off = 0;
	}
	return sum;
}

/* The stored form of a completed L4 checksum. */
static uint16_t csum_final(uint16_t sum)
{
	uint16_t c = (uint16_t)~sum;

	return c ? c : 0xffff;
}

uint16_t vre_net_csum_complete(const struct iovec *iov, unsigned niov, uint32_t len,
			       uint16_t csum_start)
{
	return csum_final(net_csum_iov(iov, niov, csum_start, len - csum_start));
}

/* The pseudo header's sum for an L4 segment of l4len bytes (TCP). */
static uint16_t pseudo_sum(const struct vre_net_ol *ol, const uint8_t *l3, uint32_t l4len)
{
	uint8_t ph[40];

	if (ol->ipv6) {
		memcpy(ph, l3 + 8, 32); /* source, destination */
		ph[32] = (uint8_t)(l4len >> 24);
		ph[33] = (uint8_t)(l4len >> 16);
		ph[34] = (uint8_t)(l4len >> 8);
		ph[35] = (uint8_t)l4len;
		ph[36] = ph[37] = ph[38] = 0;
		ph[39] = IPPROTO_TCP_;
		return csum_buf(ph, 40);
	}
	memcpy(ph, l3 + 12, 8);
	ph[8] = 0;
	ph[9] = IPPROTO_TCP_;
	wr16(ph + 10, (uint16_t)l4len);
	return csum_buf(ph, 12);
}

/* ---- iovec slices --------------------------------------------------------- */

unsigned vre_net_iov_slice(const struct iovec *iov, unsigned niov, uint64_t off, uint64_t len,
			   struct iovec *out, unsigned cap)
{
	unsigned n = 0, i = 0;

	while (i < niov && off >= iov[i].iov_len)
		off -= iov[i++].iov_len;
	while (len) {
		size_t l;

		if (i == niov || n == cap)
			return 0;
		l = iov[i].iov_len - off;
		if (l > len)
			l = len;
		out[n].iov_base = (uint8_t *)iov[i].iov_base + off;
		out[n++].iov_len = l;
		len -= l;
		off = 0;
		i++;
	}
	return n;
}

/* ---- TX: validation --------------------------------------------------------- */

static int refuse(struct vre_net_queue *nq, enum vre_net_ol_drop r, const struct vre_net_hdr *h,
		  uint32_t len)
{
	nq->st.drop_ol[r]++;
	/* A guest chooses these: rate-limited per queue (a clock read per
	 * refusal, a line now and then; the counters have every one). */
	VRE_LOG_RL(&nq->ol_rl, VRE_LOG_WARN, "net",
		   "queue %u: TX offload request refused (%s): flags 0x%x gso_type 0x%x hdr_len %u "
		   "gso_size %u csum_start %u csum_offset %u, frame of %u bytes",
		   nq->q ? nq->q->index : 0u, vre_net_ol_drop_name(r), h->flags, h->gso_type,
		   h->hdr_len, h->gso_size, h->csum_start, h->csum_offset, len);
	return -1;
}

/* Parses a GSO frame's headers in ol->hdrs (the frame's first have bytes)
 * as gso_type says (v6: TCPV6). 0, or -1 when they are not that. */
static int parse_gso(struct vre_net_ol *ol, uint32_t have, bool v6)
{
	const uint8_t *f = ol->hdrs;
	uint32_t l2 = 14, l3, l4;
	uint16_t type;

	if (have < l2 + 20)
		return -1;
	type = rd16(f + 12);
	if (type == ETH_TYPE_VLAN) {
		l2 = 18;
		type = rd16(f + 16);
	}
	if (!v6) {
		if (type != ETH_TYPE_IPV4 || have < l2 + 20 || f[l2] >> 4 != 4 || (f[l2] & 15) < 5)
			return -1;
		l3 = (f[l2] & 15u) * 4;
		/* TCP, not a fragment (MF clear, offset 0) */
		if (have < l2 + l3 || f[l2 + 9] != IPPROTO_TCP_ || (f[l2 + 6] & 0x3f) || f[l2 + 7])
			return -1;
	} else {
		l3 = 40;
		if (type != ETH_TYPE_IPV6 || have < l2 + l3 || f[l2] >> 4 != 6 ||
		    f[l2 + 6] != IPPROTO_TCP_)
			return -1;
	}
	if (have < l2 + l3 + 20 || f[l2 + l3 + 12] >> 4 < 5)
		return -1;
	l4 = (f[l2 + l3 + 12] >> 4) * 4u;
	if (have < l2 + l3 + l4)
		return -1;
	ol->l2_len = (uint8_t)l2;
	ol->l3_len = (uint8_t)l3;
	ol->l4_len = (uint8_t)l4;
	ol->ipv6 = v6;
	return 0;
}

/* The TSO feature a GSO type needs, 0 for a type VRE does not offer. */
static uint8_t gso_feature(uint8_t gso_type)
{
	switch (gso_type & ~VRE_NET_HDR_GSO_ECN) {
	case VRE_NET_HDR_GSO_TCPV4:
		return VRE_OL_TSO4;
	case VRE_NET_HDR_GSO_TCPV6:
		return VRE_OL_TSO6;
	default:
		return 0;
	}
}

static int tx_gso(struct vre_net_queue *nq, const struct vre_net_hdr *h,
		  const struct vre_net_pkt *p, struct vre_net_ol *ol)
{
	uint32_t len = p->len, have = len < VRE_NET_OL_HDRS_MAX ? len : VRE_NET_OL_HDRS_MAX;
	uint32_t hl, payload;

	if (h->gso_size == 0 || h->gso_size > len)
		return refuse(nq, VRE_OL_DROP_GSO_SIZE, h, len);
	/* the headers, copied once: everything below reads the copy */
	vre_iov_read(p->iov, p->niov, 0, ol->hdrs, have);
	if (parse_gso(ol, have, gso_feature(h->gso_type) == VRE_OL_TSO6) < 0)
		return refuse(nq, VRE_OL_DROP_HEADERS, h, len);
	if (len - ol->l2_len > 65535u)
		return refuse(nq, VRE_OL_DROP_TOO_LONG, h, len);
	if (!(h->flags & VRE_NET_HDR_F_NEEDS_CSUM) || h->csum_start != ol->l2_len + ol->l3_len ||
	    h->csum_offset != TCP_CSUM_OFF)
		return refuse(nq, VRE_OL_DROP_CSUM, h, len);
	hl = (uint32_t)ol->l2_len + ol->l3_len + ol->l4_len;
	payload = len - hl;
	if ((payload + h->gso_size - 1) / h->gso_size > VRE_NET_MAX_SEGS)
		return refuse(nq, VRE_OL_DROP_GSO_SIZE, h, len);
	ol->h.hdr_len = (uint16_t)hl;
	ol->ecn = (h->gso_type & VRE_NET_HDR_GSO_ECN) ||
		  (ol->hdrs[ol->l2_len + ol->l3_len + 13] & TCP_F_CWR);
	nq->st.ol_gso_in++;
	nq->st.ol_gso_in_bytes += len;
	return 1;
}

int net_ol_tx(struct vre_net_queue *nq, const struct vre_net_hdr *h, const struct vre_net_pkt *p,
	      struct vre_net_ol *ol)
{
	const bool csum = h->flags & VRE_NET_HDR_F_NEEDS_CSUM;
	uint32_t len = p->len;
	uint8_t need = csum ? VRE_OL_CSUM : 0;

	/* Other flag bits (DATA_VALID, RSC_INFO) mean nothing on TX: ignored. */
	if (h->gso_type != VRE_NET_HDR_GSO_NONE) {
		uint8_t tso = gso_feature(h->gso_type);

		if (!tso)
			return refuse(nq, VRE_OL_DROP_FEATURE, h, len);
		need |= tso | (h->gso_type & VRE_NET_HDR_GSO_ECN ? VRE_OL_ECN : 0);
	} else if (!csum) {
		return 0;
	}
	if ((nq->ol_tx & need) != need)
		return refuse(nq, VRE_OL_DROP_FEATURE, h, len);
	if (h->hdr_len > len)
		return refuse(nq, VRE_OL_DROP_HDR_LEN, h, len);
	if (csum && (uint32_t)h->csum_start + h->csum_offset + 2 > len)
		return refuse(nq, VRE_OL_DROP_CSUM, h, len);
	memset(ol, 0, offsetof(struct vre_net_ol, hdrs));
	ol->h.flags = csum ? VRE_NET_HDR_F_NEEDS_CSUM : 0;
	ol->h.gso_type = h->gso_type;
	ol->h.gso_size = h->gso_type ? h->gso_size : 0;
	ol->h.csum_start = csum ? h->csum_start : 0;
	ol->h.csum_offset = csum ? h->csum_offset : 0;
	if (h->gso_type != VRE_NET_HDR_GSO_NONE && tx_gso(nq, h, p, ol) < 0)
		return -1;
	nq->st.ol_csum_in += csum;
	return 1;
}

/* ---- segmentation ------------------------------------------------------------ */

uint32_t vre_net_seg_mss(const struct vre_net_ol *ol, uint16_t mtu)
{
	uint32_t l34 = (uint32_t)ol->l3_len + ol->l4_len;

	if (mtu && ol->h.gso_size > (uint32_t)mtu - l34)
		return mtu > l34 ? mtu - l34 : 0;
	return ol->h.gso_size;
}

unsigned vre_net_seg_begin(struct vre_net_seg *s, const struct vre_net_ol *ol,
			   const struct iovec *iov, unsigned niov, uint32_t len, uint32_t mss,
			   bool partial)
{
	s->ol = ol;
	s->iov = iov;
	s->niov = niov;
	s->hl = ol->h.hdr_len;
	s->left = len - s->hl;
	s->mss = mss;
	s->k = 0;
	s->n = (uint16_t)(s->left ? (s->left + mss - 1) / mss : 1);
	s->partial = partial;
	/* payload cursor at byte hl */
	s->si = 0;
	s->soff = s->hl;
	while (s->si < niov && s->soff >= iov[s->si].iov_len)
		s->soff -= iov[s->si++].iov_len;
	return s->n;
}

/* The headers of segment k of n carrying plen payload bytes, in s->hdr. */
static void seg_headers(struct vre_net_seg *s, uint32_t plen, const struct iovec *payload,
			unsigned npay)
{
	const struct vre_net_ol *ol = s->ol;
	uint8_t *h = s->hdr, *l3 = h + ol->l2_len, *th = l3 + ol->l3_len;
	uint32_t seq, l4len = ol->l4_len + plen;
	uint16_t sum;

	memcpy(h, ol->hdrs, s->hl);
	if (ol->ipv6) {
		wr16(l3 + 4, (uint16_t)l4len);
	} else {
		wr16(l3 + 2, (uint16_t)(ol->l3_len + l4len));
		wr16(l3 + 4, (uint16_t)(rd16(l3 + 4) + s->k));
		l3[10] = l3[11] = 0;
		sum = (uint16_t)~csum_buf(l3, ol->l3_len);
		memcpy(l3 + 10, &sum, 2);
	}
	seq = (uint32_t)th[4] << 24 | (uint32_t)th[5] << 16 | (uint32_t)th[6] << 8 | th[7];
	seq += s->k * s->mss;
	th[4] = (uint8_t)(seq >> 24);
	th[5] = (uint8_t)(seq >> 16);
	th[6] = (uint8_t)(seq >> 8);
	th[7] = (uint8_t)seq;
	if (s->k)
		th[13] &= (uint8_t)~TCP_F_CWR;
	if (s->k + 1 < s->n)
		th[13] &= (uint8_t)~(TCP_F_FIN | TCP_F_PSH);
	th[16] = th[17] = 0;
	sum = pseudo_sum(ol, l3, l4len);
	if (s->partial) {
		memcpy(th + 16, &sum, 2); /* NEEDS_CSUM: the receiver finishes */
		return;
	}
	sum = csum_add(sum, csum_buf(th, ol->l4_len));
	/* the TCP header is even-sized: the payload starts at an even offset */
	sum = csum_add(sum, net_csum_iov(payload, npay, 0, plen));
	sum = csum_final(sum);
	memcpy(th + 16, &sum, 2);
}

unsigned vre_net_seg_next(struct vre_net_seg *s, struct iovec *iov, unsigned cap,
			  uint32_t *len)
{
	uint32_t plen = s->left < s->mss ? s->left : s->mss;
	unsigned n = 1;

	if (s->k == s->n || cap < 2)
		return 0;
	/* the payload slice, from the cursor */
	for (uint32_t need = plen; need; ) {
		size_t l;

		if (s->si == s->niov || n == cap)
			return 0; /* cannot happen for a validated packet */
		l = s->iov[s->si].iov_len - s->soff;
		if (l > need)
			l = need;
		iov[n].iov_base = (uint8_t *)s->iov[s->si].iov_base + s->soff;
		iov[n++].iov_len = l;
		need -= (uint32_t)l;
		s->soff += l;
		if (s->soff == s->iov[s->si].iov_len) {
			s->si++;
			s->soff = 0;
		}
	}
	seg_headers(s, plen, iov + 1, n - 1);
	iov[0].iov_base = s->hdr;
	iov[0].iov_len = s->hl;
	*len = s->hl + plen;
	s->left -= plen;
	s->k++;
	return n;
}

/* ---- RX: delivery -------------------------------------------------------------- */

static bool over_mtu(const struct vre_net_queue *nq, uint32_t len)
{
	return nq->mtu && len > (uint32_t)nq->mtu + VRE_NET_L2_MAX;
}

/* A frame the destination must not get: counted like a frame the writer
 * refused (the writer's want counts packets still to come). */
static int drop_frame(struct vre_net_rx *rx, uint64_t *counter)
{
	(*counter)++;
	if (rx->want)
		rx->want--;
	return 0;
}

/* NEEDS_CSUM, not GSO: passed on, or completed here. */
static int rx_csum(struct vre_net_rx *rx, const struct vre_net_pkt *p, const struct vre_net_ol *ol)
{
	struct vre_net_queue *nq = rx->nq;
	struct iovec iov[VRE_NET_SEG_IOV];
	uint32_t at = (uint32_t)ol->h.csum_start + ol->h.csum_offset;
	unsigned n, m;
	uint16_t c;
	int ok;

	if (over_mtu(nq, p->len))
		return drop_frame(rx, &nq->st.drop_over_mtu);
	if (nq->ol_rx & VRE_OL_CSUM) {
		ok = vre_net_rx_frame(rx, &ol->h, p->iov, p->niov, p->len);
		nq->st.ol_csum_out += (uint64_t)ok;
		return ok;
	}
	/* the frame with its two checksum bytes taken from c */
	c = vre_net_csum_complete(p->iov, p->niov, p->len, ol->h.csum_start);
	n = at ? vre_net_iov_slice(p->iov, p->niov, 0, at, iov, VRE_NET_SEG_IOV - 2) : 0;
	iov[n].iov_base = &c;
	iov[n++].iov_len = 2;
	m = p->len - at - 2;
	if (m)
		m = vre_net_iov_slice(p->iov, p->niov, at + 2, m, iov + n, VRE_NET_SEG_IOV - n);
	ok = vre_net_rx_frame(rx, NULL, iov, n + m, p->len);
	nq->st.ol_sw_csum += (uint64_t)ok;
	return ok;
}

/* A GSO frame whole, with its header, to a destination that takes it. */
static int rx_gso_pass(struct vre_net_rx *rx, const struct vre_net_pkt *p, const struct vre_net_ol *ol)
{
	struct vre_net_queue *nq = rx->nq;
	struct vre_net_hdr vh = ol->h;
	struct iovec iov[VRE_NET_SEG_IOV];
	unsigned n;
	int ok;

	if (!ol->ecn)
		vh.gso_type &= (uint8_t)~VRE_NET_HDR_GSO_ECN;
	else
		vh.gso_type |= VRE_NET_HDR_GSO_ECN;
	/* the validated headers, then the payload from guest memory */
	iov[0].iov_base = (void *)ol->hdrs;
	iov[0].iov_len = ol->h.hdr_len;
	n = vre_net_iov_slice(p->iov, p->niov, ol->h.hdr_len, p->len - ol->h.hdr_len, iov + 1,
			  VRE_NET_SEG_IOV - 1);
	ok = vre_net_rx_frame(rx, &vh, iov, n + 1, p->len);
	nq->st.ol_gso_out += (uint64_t)ok;
	return ok;
}

/* A GSO frame as segments: with NEEDS_CSUM for a destination that takes
 * it, with complete checksums for one that does not. */
static int rx_gso_segment(struct vre_net_rx *rx, const struct vre_net_pkt *p,
			  const struct vre_net_ol *ol)
{
	struct vre_net_queue *nq = rx->nq;
	const bool partial = nq->ol_rx & VRE_OL_CSUM;
	const struct vre_net_hdr vh = { .flags = VRE_NET_HDR_F_NEEDS_CSUM,
					.csum_start = ol->h.csum_start,
					.csum_offset = ol->h.csum_offset };
	uint32_t mss = vre_net_seg_mss(ol, nq->mtu), len;
	struct iovec iov[VRE_NET_SEG_IOV];
	struct vre_net_seg s;
	unsigned n, nseg;
	int done = 0;

	if (mss == 0)
		return drop_frame(rx, &nq->st.drop_over_mtu);
	nseg = vre_net_seg_begin(&s, ol, p->iov, p->niov, p->len, mss, partial);
	/* the writer fetches chains for the frames still to come */
	rx->want = (uint16_t)(rx->want + nseg - 1 < UINT16_MAX ? rx->want + nseg - 1 : UINT16_MAX);
	nq->st.ol_sw_gso++;
	while ((n = vre_net_seg_next(&s, iov, VRE_NET_SEG_IOV, &len))) {
		nq->st.ol_sw_segs++;
		done += vre_net_rx_frame(rx, partial ? &vh : NULL, iov, n, len);
	}
	return done;
}

int net_ol_rx(struct vre_net_rx *rx, const struct vre_net_pkt *p, const struct vre_net_ol *ol)
{
	struct vre_net_queue *nq = rx->nq;
	uint8_t need;

	if (!ol)
		return drop_frame(rx, &nq->st.drop_over_mtu);
	if (ol->h.gso_type == VRE_NET_HDR_GSO_NONE)
		return rx_csum(rx, p, ol);
	need = VRE_OL_CSUM | (ol->ipv6 ? VRE_OL_TSO6 : VRE_OL_TSO4) | (ol->ecn ? VRE_OL_ECN : 0);
	/* Whole when the driver takes it and it fits: mergeable buffers, or
	 * one chain big enough (a driver without them posts 64 KiB chains
	 * for GSO; a smaller one gets segments rather than a drop). */
	if ((nq->ol_rx & need) == need && !rx->broken &&
	    (nq->mrg_rxbuf || net_rx_room(rx) >= (uint64_t)nq->hdr_len + p->len))
		return rx_gso_pass(rx, p, ol);
	return rx_gso_segment(rx, p, ol);
}
