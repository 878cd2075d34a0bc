/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * virtio-net offloads on the vhost->vhost path, over real split and packed
 * rings played by the test drivers: a source device whose driver
 * negotiated host offloads sends TCP frames with virtio-net headers the way
 * a Linux guest does, a destination device with or without the guest
 * offloads receives them. Checked: what crosses whole (header fields,
 * bytes), what the device segments or checksums (every segment's
 * checksums verified by tests/support/net_frames.c, which shares no code
 * with VRE; the payload reassembled; sequence numbers, IP ids and flags),
 * and every rule a hostile header can break, each with its counter.
 * Path tests loop over ring types (even _i split, odd packed) and, where
 * it matters, mergeable buffers.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "net_frames.h"
#include "net_guest.h"
#include "vre_net.h"

#define F(b) (1ull << (b))
#define F_V1 F(VRE_F_VERSION_1)
#define F_MRG F(VRE_NET_F_MRG_RXBUF)
#define F_PACKED F(VRE_F_RING_PACKED)
#define F_HOST (F(VRE_NET_F_CSUM) | F(VRE_NET_F_HOST_TSO4) | F(VRE_NET_F_HOST_TSO6) | \
		F(VRE_NET_F_HOST_ECN))
#define F_GCSUM F(VRE_NET_F_GUEST_CSUM)
#define F_GUEST (F_GCSUM | F(VRE_NET_F_GUEST_TSO4) | F(VRE_NET_F_GUEST_TSO6) | \
		 F(VRE_NET_F_GUEST_ECN))
#define HEAP (8u << 20)
#define QSIZE 512
#define BIG 70000

/* ---- two devices: a source TX queue, a destination RX queue ------------- */

struct end {
	struct vre_net_dev *n;
	struct guest *g;
	struct vre_net_queue *q;
};

struct link {
	struct end tx, rx;
	bool packed;
};

static void end_open(struct end *e, bool packed, uint64_t f, uint16_t mtu, uint16_t qindex)
{
	struct vre_net_config cfg = { .mac = { 2, 0, 0, 0, 0, (uint8_t)(qindex + 1) },
				      .max_queue_pairs = 1, .mtu = mtu };

	ck_assert_int_eq(vre_net_dev_create(&cfg, NULL, NULL, &e->n), 0);
	if (packed)
		f |= F_PACKED;
	ck_assert_int_eq(vre_net_dev_ops(e->n)->set_features(e->n, f | F_V1), 0);
	e->g = guest_new(packed, QSIZE, HEAP, false, qindex);
	ck_assert_int_eq(vre_net_dev_ops(e->n)->queue_start(e->n, &e->g->q), 0);
	e->q = e->g->q.dp;
}

static void link_open(struct link *l, bool packed, uint64_t ftx, uint64_t frx, uint16_t rx_mtu)
{
	memset(l, 0, sizeof(*l));
	l->packed = packed;
	end_open(&l->tx, packed, ftx, 0, 1);
	end_open(&l->rx, packed, frx, rx_mtu, 0);
}

static void end_close(struct end *e)
{
	ck_assert(guest_guards_ok(e->g));
	vre_net_dev_ops(e->n)->queue_stop(e->n, &e->g->q);
	guest_free(e->g);
	vre_net_dev_destroy(e->n);
}

static void link_close(struct link *l)
{
	end_close(&l->tx);
	end_close(&l->rx);
}

/* A TX chain: the 12-byte header vh (num_buffers 0) and the frame, in
 * pieces descriptors: 1 (all in one), 2 (header | frame) or more (the
 * header over 3 descriptors, the frame over the rest). */
static void send_pkt(struct end *e, const struct vre_net_hdr *vh, const uint8_t *frame,
		     uint32_t len, unsigned pieces)
{
	uint64_t gpa = guest_alloc(e->g, 12 + len);
	uint8_t *m = guest_ptr(e->g, gpa);
	struct gbuf b[8];
	unsigned n = 0;

	memcpy(m, vh, 10);
	m[10] = m[11] = 0;
	memcpy(m + 12, frame, len);
	if (pieces <= 1) {
		b[n++] = (struct gbuf){ gpa, 12 + len, false };
	} else if (pieces == 2) {
		b[n++] = (struct gbuf){ gpa, 12, false };
		b[n++] = (struct gbuf){ gpa + 12, len, false };
	} else {
		uint32_t off = 12, step;

		b[n++] = (struct gbuf){ gpa, 3, false };
		b[n++] = (struct gbuf){ gpa + 3, 7, false };
		b[n++] = (struct gbuf){ gpa + 10, 2 + 5, false }; /* header end, 5 frame bytes */
		off += 5;
		step = (len - 5) / (pieces - 2) + 1;
		while (off < 12 + len && n < 8) {
			uint32_t l = 12 + len - off < step ? 12 + len - off : step;

			b[n++] = (struct gbuf){ gpa + off, l, false };
			off += l;
		}
	}
	ck_assert_int_ge(guest_add(e->g, b, n, gpa), 0);
}

static void post_rx(struct end *e, unsigned nchains, uint32_t size)
{
	for (unsigned c = 0; c < nchains; c++) {
		uint64_t gpa = guest_alloc(e->g, size);
		struct gbuf b = { gpa, size, true };

		memset(guest_ptr(e->g, gpa), 0xee, size);
		ck_assert_int_ge(guest_add(e->g, &b, 1, gpa), 0);
	}
}

/* One received frame: header into *vh, bytes into out; 0 when none. */
static uint32_t recv_pkt(struct end *e, struct vre_net_hdr *vh, uint8_t *out)
{
	uint64_t token;
	uint32_t len, total;
	uint16_t id, nbufs;

	if (guest_get_used(e->g, &id, &len, &token) != 1)
		return 0;
	ck_assert_uint_ge(len, 12);
	memcpy(vh, guest_ptr(e->g, token), 12);
	nbufs = e->q->mrg_rxbuf ? vh->num_buffers : 1;
	ck_assert_uint_ge(nbufs, 1);
	total = len - 12;
	memcpy(out, (uint8_t *)guest_ptr(e->g, token) + 12, total);
	for (uint16_t b = 1; b < nbufs; b++) {
		ck_assert_int_eq(guest_get_used(e->g, &id, &len, &token), 1);
		memcpy(out + total, guest_ptr(e->g, token), len);
		total += len;
	}
	return total;
}

/* Every TX chain came back with nothing written. */
static void tx_back(struct end *e, unsigned want)
{
	uint16_t id;
	uint32_t len;
	uint64_t token;
	unsigned n = 0;

	while (guest_get_used(e->g, &id, &len, &token) == 1) {
		ck_assert_uint_eq(len, 0);
		n++;
	}
	ck_assert_uint_eq(n, want);
	ck_assert_uint_eq(guest_inflight(e->g), 0);
}

static struct vre_net_hdr gso_hdr(const struct nf_tcp *t, uint32_t hdrs, uint32_t l2,
				  uint16_t mss)
{
	struct vre_net_hdr h = {
		.flags = VRE_NET_HDR_F_NEEDS_CSUM,
		.gso_type = (uint8_t)((t->v6 ? VRE_NET_HDR_GSO_TCPV6 : VRE_NET_HDR_GSO_TCPV4) |
				      (t->flags & NF_TCP_CWR ? VRE_NET_HDR_GSO_ECN : 0)),
		.hdr_len = (uint16_t)hdrs, /* Linux sends its linear length: a hint */
		.gso_size = mss,
		.csum_start = (uint16_t)(l2 + (t->v6 ? 40 : 20 + t->ip_opt)),
		.csum_offset = 16,
	};
	return h;
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/*
 * Receives the segments of frame f (hdrs header bytes) at e and checks
 * them: checksums (complete, or partial with NEEDS_CSUM in the header),
 * lengths, IPv4 id + k, sequence + payload offset, FIN/PSH on the last
 * only, CWR on the first only, every other header byte as in f, and the
 * payload in order. Returns the number of segments.
 */
static unsigned check_segments(struct end *e, const uint8_t *f, uint32_t len, uint32_t hdrs,
			       uint32_t l2, bool v6, uint32_t mss, bool partial)
{
	static uint8_t got[BIG];
	const uint32_t payload = len - hdrs, l3 = v6 ? 40 : (f[l2] & 15u) * 4;
	const uint32_t th = l2 + l3;
	const uint8_t flags = f[th + 13];
	uint32_t off = 0, want = payload ? (payload + mss - 1) / mss : 1;
	struct vre_net_hdr vh;
	unsigned k = 0;

	for (; k < want; k++) {
		uint32_t n = recv_pkt(e, &vh, got), plen = payload - off < mss ? payload - off : mss;
		uint8_t fl = flags;

		ck_assert_uint_eq(n, hdrs + plen);
		ck_assert_int_eq(nf_tcp_verify(got, n, partial), 0);
		ck_assert_uint_eq(vh.gso_type, VRE_NET_HDR_GSO_NONE);
		if (partial) {
			ck_assert_uint_eq(vh.flags, VRE_NET_HDR_F_NEEDS_CSUM);
			ck_assert_uint_eq(vh.csum_start, th);
			ck_assert_uint_eq(vh.csum_offset, 16);
		} else {
			ck_assert_uint_eq(vh.flags, 0);
		}
		ck_assert_mem_eq(got, f, l2); /* Ethernet, VLAN */
		if (!v6) {
			ck_assert_uint_eq(rd16(got + l2 + 4), (uint16_t)(rd16(f + l2 + 4) + k));
			ck_assert_mem_eq(got + l2 + 6, f + l2 + 6, 4);  /* flags, TTL, proto */
			ck_assert_mem_eq(got + l2 + 12, f + l2 + 12, l3 - 12); /* addresses, options */
		} else {
			ck_assert_mem_eq(got + l2, f + l2, 4);
			ck_assert_mem_eq(got + l2 + 6, f + l2 + 6, 34);
		}
		ck_assert_uint_eq(rd32(got + th + 4), rd32(f + th + 4) + off);
		if (k)
			fl &= (uint8_t)~NF_TCP_CWR;
		if (k + 1 < want)
			fl &= (uint8_t)~(NF_TCP_FIN | NF_TCP_PSH);
		ck_assert_uint_eq(got[th + 13], fl);
		ck_assert_mem_eq(got + th, f + th, 4);           /* ports */
		ck_assert_mem_eq(got + th + 8, f + th + 8, 5);   /* ack, data offset */
		ck_assert_mem_eq(got + th + 14, f + th + 14, 2); /* window */
		ck_assert_mem_eq(got + th + 18, f + th + 18, hdrs - th - 18); /* urg, options */
		ck_assert_mem_eq(got + hdrs, f + hdrs + off, plen);
		off += plen;
	}
	return k;
}

static void rx_empty(struct end *e)
{
	static uint8_t got[BIG];
	struct vre_net_hdr vh;

	ck_assert_uint_eq(recv_pkt(e, &vh, got), 0);
}

static uint8_t *frame_buf(void)
{
	uint8_t *f = malloc(BIG);

	ck_assert_ptr_nonnull(f);
	return f;
}

/* ---- whole, segmented, checksummed --------------------------------------- */

/* A destination with the guest offloads gets the GSO frame whole, its
 * validated header passed on (hdr_len the real header length). Loop: bit 0
 * packed, bit 1 no mergeable buffers (64 KiB chains instead). */
START_TEST(test_gso_passed_whole)
{
	bool packed = _i & 1, mrg = !(_i & 2);
	uint8_t *f = frame_buf(), *got = frame_buf();
	struct link l;

	link_open(&l, packed, F_HOST, F_GUEST | (mrg ? F_MRG : 0), 1500);
	post_rx(&l.rx, mrg ? 100 : 4, mrg ? 1526 : 65562 + 12);
	for (int v6 = 0; v6 < 2; v6++) {
		struct nf_tcp t = { .v6 = v6, .tcp_opt = 12, .flags = NF_TCP_ACK | NF_TCP_PSH,
				    .seq = 1000, .ip_id = 7, .payload = 62000, .seed = 3 };
		uint32_t hdrs, l2, len = nf_tcp_build(f, BIG, &t, &hdrs, &l2);
		struct vre_net_hdr h = gso_hdr(&t, hdrs, l2, 1448), vh;

		h.hdr_len = 128; /* a hint only: what the device passes on is the real one */
		send_pkt(&l.tx, &h, f, len, 2);
		ck_assert_int_eq(vre_net_forward(l.tx.q, l.rx.q), 1);
		ck_assert_uint_eq(recv_pkt(&l.rx, &vh, got), len);
		ck_assert_mem_eq(got, f, len);
		ck_assert_uint_eq(vh.flags, VRE_NET_HDR_F_NEEDS_CSUM);
		ck_assert_uint_eq(vh.gso_type, v6 ? VRE_NET_HDR_GSO_TCPV6 : VRE_NET_HDR_GSO_TCPV4);
		ck_assert_uint_eq(vh.gso_size, 1448);
		ck_assert_uint_eq(vh.hdr_len, hdrs);
		ck_assert_uint_eq(vh.csum_start, h.csum_start);
		ck_assert_uint_eq(vh.csum_offset, 16);
		if (mrg) /* 62000 bytes in 1526-byte buffers: more than a burst of chains */
			ck_assert_uint_eq(vh.num_buffers, (12 + len + 1525) / 1526);
	}
	ck_assert_uint_eq(l.tx.q->st.ol_gso_in, 2);
	ck_assert_uint_eq(l.tx.q->st.ol_csum_in, 2);
	ck_assert_uint_eq(l.rx.q->st.ol_gso_out, 2);
	ck_assert_uint_eq(l.rx.q->st.ol_sw_gso + l.rx.q->st.ol_sw_csum, 0);
	ck_assert_uint_eq(l.rx.q->st.packets, 2);
	tx_back(&l.tx, 2);
	link_close(&l);
	free(f);
	free(got);
}
END_TEST

/* Without the guest offloads the device segments: IPv4 and IPv6, with and
 * without VLAN, IP and TCP options, a last segment shorter than the MSS.
 * Loop: bit 0 packed, bit 1 the destination takes NEEDS_CSUM (partial
 * checksums), bit 2 no mergeable buffers. */
START_TEST(test_gso_segmented)
{
	bool packed = _i & 1, partial = _i & 2, mrg = !(_i & 4);
	uint8_t *f = frame_buf();
	struct link l;
	unsigned segs = 0;

	link_open(&l, packed, F_HOST, (partial ? F_GCSUM : 0) | (mrg ? F_MRG : 0), 0);
	post_rx(&l.rx, 400, 2048);
	for (int c = 0; c < 8; c++) {
		struct nf_tcp t = { .v6 = c & 1, .vlan = c & 2, .ip_opt = c & 4 ? 8 : 0,
				    .tcp_opt = c & 4 ? 40 : 12, .flags = NF_TCP_ACK | NF_TCP_PSH | NF_TCP_FIN,
				    .seq = 0xfffff000u + (uint32_t)c, .ip_id = 0xfffe,
				    .payload = 9000 + (uint32_t)c * 777, .seed = (unsigned)c };
		uint32_t hdrs, l2, len = nf_tcp_build(f, BIG, &t, &hdrs, &l2);
		struct vre_net_hdr h = gso_hdr(&t, hdrs, l2, (uint16_t)(1000 + c));
		unsigned want = (t.payload + 999 + c) / (1000 + c);

		send_pkt(&l.tx, &h, f, len, c % 3 + 1);
		ck_assert_int_eq(vre_net_forward(l.tx.q, l.rx.q), (int)want);
		ck_assert_uint_eq(check_segments(&l.rx, f, len, hdrs, l2, t.v6, 1000 + c, partial),
				  want);
		rx_empty(&l.rx);
		segs += want;
	}
	ck_assert_uint_eq(l.tx.q->st.ol_gso_in, 8);
	ck_assert_uint_eq(l.rx.q->st.ol_sw_gso, 8);
	ck_assert_uint_eq(l.rx.q->st.ol_sw_segs, segs);
	ck_assert_uint_eq(l.rx.q->st.packets, segs);
	ck_assert_uint_eq(l.rx.q->st.ol_gso_out, 0);
	tx_back(&l.tx, 8);
	link_close(&l);
	free(f);
}
END_TEST

/* A GSO frame of exactly one MSS of payload, and one without payload whose
 * gso_size is the frame's length (the largest allowed): one segment each,
 * checksummed. */
START_TEST(test_gso_one_segment)
{
	uint8_t *f = frame_buf();
	struct link l;

	link_open(&l, _i, F_HOST, F_MRG, 0);
	post_rx(&l.rx, 8, 2048);
	for (uint32_t pl = 0; pl <= 1000; pl += 1000) {
		struct nf_tcp t = { .flags = NF_TCP_ACK | NF_TCP_FIN, .seq = 5, .payload = pl };
		uint32_t hdrs, l2, len = nf_tcp_build(f, BIG, &t, &hdrs, &l2);
		struct vre_net_hdr h = gso_hdr(&t, hdrs, l2, (uint16_t)(pl ? pl : len));

		send_pkt(&l.tx, &h, f, len, 1);
		ck_assert_int_eq(vre_net_forward(l.tx.q, l.rx.q), 1);
		ck_assert_uint_eq(check_segments(&l.rx, f, len, hdrs, l2, false, pl ? pl : len, false),
				  1);
	}
	rx_empty(&l.rx);
	tx_back(&l.tx, 2);
	link_close(&l);
	free(f);
}
END_TEST

/* NEEDS_CSUM without GSO: completed for a destination without GUEST_CSUM
 * (TCP, and any protocol at an odd csum_start), passed on with the flag to
 * one with it. Loop: bit 0 packed, bit 1 destination has GUEST_CSUM. */
START_TEST(test_csum_only)
{
	bool gcsum = _i & 2;
	uint8_t *f = frame_buf(), *got = frame_buf();
	struct vre_net_hdr vh;
	struct link l;

	link_open(&l, _i & 1, F(VRE_NET_F_CSUM), F_MRG | (gcsum ? F_GCSUM : 0), 1500);
	post_rx(&l.rx, 16, 2048);
	{
		struct nf_tcp t = { .v6 = true, .flags = NF_TCP_ACK, .payload = 1001, .seed = 9 };
		uint32_t hdrs, l2, len = nf_tcp_build(f, BIG, &t, &hdrs, &l2);
		struct vre_net_hdr h = { .flags = VRE_NET_HDR_F_NEEDS_CSUM,
					 .csum_start = (uint16_t)(l2 + 40), .csum_offset = 16 };

		send_pkt(&l.tx, &h, f, len, 3);
		ck_assert_int_eq(vre_net_forward(l.tx.q, l.rx.q), 1);
		ck_assert_uint_eq(recv_pkt(&l.rx, &vh, got), len);
		ck_assert_int_eq(nf_tcp_verify(got, len, gcsum), 0);
		ck_assert_uint_eq(vh.flags, gcsum ? VRE_NET_HDR_F_NEEDS_CSUM : 0);
		if (gcsum) {
			ck_assert_mem_eq(got, f, len);
			ck_assert_uint_eq(vh.csum_start, l2 + 40);
			ck_assert_uint_eq(vh.csum_offset, 16);
		}
	}
	{
		/* not TCP: 300 bytes of anything, checksum from byte 33 at +7 */
		struct vre_net_hdr h = { .flags = VRE_NET_HDR_F_NEEDS_CSUM, .csum_start = 33,
					 .csum_offset = 7 };
		uint16_t want;

		for (int i = 0; i < 300; i++)
			f[i] = (uint8_t)(i * 37 + 11);
		want = (uint16_t)~nf_sum(f + 33, 300 - 33, 0);
		send_pkt(&l.tx, &h, f, 300, 1);
		ck_assert_int_eq(vre_net_forward(l.tx.q, l.rx.q), 1);
		ck_assert_uint_eq(recv_pkt(&l.rx, &vh, got), 300);
		if (!gcsum) {
			ck_assert_uint_eq(rd16(got + 40), want ? want : 0xffff);
			got[40] = f[40];
			got[41] = f[41];
		}
		ck_assert_mem_eq(got, f, 300);
	}
	ck_assert_uint_eq(l.tx.q->st.ol_csum_in, 2);
	ck_assert_uint_eq(gcsum ? l.rx.q->st.ol_csum_out : l.rx.q->st.ol_sw_csum, 2);
	tx_back(&l.tx, 2);
	link_close(&l);
	free(f);
	free(got);
}
END_TEST

/* ECN: a TSO frame with CWR needs GUEST_ECN to cross whole; without it the
 * device segments and only the first segment keeps CWR. */
START_TEST(test_gso_ecn)
{
	uint8_t *f = frame_buf(), *got = frame_buf();
	struct nf_tcp t = { .flags = NF_TCP_ACK | NF_TCP_CWR, .payload = 5000, .seed = 4 };
	uint32_t hdrs, l2, len = nf_tcp_build(f, BIG, &t, &hdrs, &l2);
	struct vre_net_hdr h = gso_hdr(&t, hdrs, l2, 1448), vh;
	struct link l;

	ck_assert_uint_eq(h.gso_type, VRE_NET_HDR_GSO_TCPV4 | VRE_NET_HDR_GSO_ECN);
	link_open(&l, _i, F_HOST, F_MRG | F_GCSUM | F(VRE_NET_F_GUEST_TSO4), 0);
	post_rx(&l.rx, 16, 2048);
	send_pkt(&l.tx, &h, f, len, 1);
	ck_assert_int_eq(vre_net_forward(l.tx.q, l.rx.q), 4);
	ck_assert_uint_eq(check_segments(&l.rx, f, len, hdrs, l2, false, 1448, true), 4);
	tx_back(&l.tx, 1);
	link_close(&l);

	link_open(&l, _i, F_HOST, F_MRG | F_GUEST, 0);
	post_rx(&l.rx, 16, 2048);
	send_pkt(&l.tx, &h, f, len, 1);
	ck_assert_int_eq(vre_net_forward(l.tx.q, l.rx.q), 1);
	ck_assert_uint_eq(recv_pkt(&l.rx, &vh, got), len);
	ck_assert_uint_eq(vh.gso_type, VRE_NET_HDR_GSO_TCPV4 | VRE_NET_HDR_GSO_ECN);
	ck_assert_mem_eq(got, f, len);
	tx_back(&l.tx, 1);
	link_close(&l);
	free(f);
	free(got);
}
END_TEST

/* The destination's MTU: a plain frame over MTU + 18 is dropped and
 * counted (one at MTU + 18 passes); a GSO frame is segmented to the MTU
 * when its gso_size is larger; whole when the destination takes TSO. */
START_TEST(test_mtu)
{
	uint8_t *f = frame_buf(), *got = frame_buf();
	struct vre_net_hdr zero = { 0 }, vh;
	struct link l;

	link_open(&l, _i, F_HOST, F_MRG, 1500);
	post_rx(&l.rx, 64, 2048);
	memset(f, 0x11, 1600);
	send_pkt(&l.tx, &zero, f, 1519, 1);
	send_pkt(&l.tx, &zero, f, 1518, 1);
	ck_assert_int_eq(vre_net_forward(l.tx.q, l.rx.q), 1);
	ck_assert_uint_eq(l.rx.q->st.drop_over_mtu, 1);
	ck_assert_uint_eq(recv_pkt(&l.rx, &vh, got), 1518);
	{
		struct nf_tcp t = { .tcp_opt = 12, .flags = NF_TCP_ACK, .payload = 20000 };
		uint32_t hdrs, l2, len = nf_tcp_build(f, BIG, &t, &hdrs, &l2);
		struct vre_net_hdr h = gso_hdr(&t, hdrs, l2, 8948);
		unsigned n;

		send_pkt(&l.tx, &h, f, len, 1);
		/* MSS 1500 - 20 - 32 */
		n = (unsigned)vre_net_forward(l.tx.q, l.rx.q);
		ck_assert_uint_eq(n, (20000 + 1447) / 1448);
		ck_assert_uint_eq(check_segments(&l.rx, f, len, hdrs, l2, false, 1448, false), n);
	}
	tx_back(&l.tx, 3);
	link_close(&l);
	free(f);
	free(got);
}
END_TEST

/* A destination with TSO but without mergeable buffers whose chains are
 * too small for the GSO frame gets segments, not a drop. */
START_TEST(test_gso_small_chains)
{
	uint8_t *f = frame_buf();
	struct nf_tcp t = { .flags = NF_TCP_ACK, .payload = 10000, .seed = 5 };
	uint32_t hdrs, l2, len = nf_tcp_build(f, BIG, &t, &hdrs, &l2);
	struct vre_net_hdr h = gso_hdr(&t, hdrs, l2, 1460);
	struct link l;

	link_open(&l, _i, F_HOST, F_GUEST, 0);
	post_rx(&l.rx, 16, 1600);
	send_pkt(&l.tx, &h, f, len, 2);
	ck_assert_int_eq(vre_net_forward(l.tx.q, l.rx.q), 7);
	ck_assert_uint_eq(check_segments(&l.rx, f, len, hdrs, l2, false, 1460, true), 7);
	ck_assert_uint_eq(l.rx.q->st.drop_too_big, 0);
	tx_back(&l.tx, 1);
	link_close(&l);
	free(f);
}
END_TEST

/* Order is kept: plain, GSO, plain in one burst arrive in that order; a
 * burst goes to two destinations (learn mode's masks), whole to one with
 * TSO and segmented to one without. */
START_TEST(test_order_and_masks)
{
	uint8_t *f = frame_buf(), *got = frame_buf(), a[100], c[200];
	struct nf_tcp t = { .flags = NF_TCP_ACK, .payload = 3000, .seed = 6 };
	uint32_t hdrs, l2, len = nf_tcp_build(f, BIG, &t, &hdrs, &l2);
	struct vre_net_hdr h = gso_hdr(&t, hdrs, l2, 1000), zero = { 0 }, vh;
	struct vre_net_tx_burst b;
	struct link l;
	struct end r2;

	memset(a, 0xaa, sizeof(a));
	memset(c, 0xcc, sizeof(c));
	link_open(&l, _i, F_HOST, F_MRG, 0);
	end_open(&r2, _i, F_MRG | F_GUEST, 0, 0);
	post_rx(&l.rx, 16, 2048);
	post_rx(&r2, 16, 2048);
	send_pkt(&l.tx, &zero, a, sizeof(a), 1);
	send_pkt(&l.tx, &h, f, len, 1);
	send_pkt(&l.tx, &zero, c, sizeof(c), 1);
	ck_assert_int_eq(vre_net_tx_fetch(l.tx.q, &b), 3);
	ck_assert_uint_eq(b.ol_mask, 2);
	ck_assert_int_eq(vre_net_rx_put(l.rx.q, &b, 7), 5);
	ck_assert_int_eq(vre_net_rx_put(r2.q, &b, 6), 2);
	vre_net_tx_done(l.tx.q, &b);
	ck_assert_uint_eq(recv_pkt(&l.rx, &vh, got), sizeof(a));
	ck_assert_mem_eq(got, a, sizeof(a));
	ck_assert_uint_eq(check_segments(&l.rx, f, len, hdrs, l2, false, 1000, false), 3);
	ck_assert_uint_eq(recv_pkt(&l.rx, &vh, got), sizeof(c));
	ck_assert_mem_eq(got, c, sizeof(c));
	rx_empty(&l.rx);
	ck_assert_uint_eq(r2.q->st.packets, 2);
	ck_assert_uint_eq(recv_pkt(&r2, &vh, got), len);
	ck_assert_uint_eq(vh.gso_type, VRE_NET_HDR_GSO_TCPV4);
	ck_assert_uint_eq(recv_pkt(&r2, &vh, got), sizeof(c));
	tx_back(&l.tx, 3);
	end_close(&r2);
	link_close(&l);
	free(f);
	free(got);
}
END_TEST

/* Without a host offload negotiated the header is not read: whatever it
 * says, the frame crosses as it is, with a zero header. */
START_TEST(test_header_ignored_without_offloads)
{
	uint8_t *f = frame_buf(), *got = frame_buf();
	struct nf_tcp t = { .flags = NF_TCP_ACK, .payload = 5000 };
	uint32_t hdrs, l2, len = nf_tcp_build(f, BIG, &t, &hdrs, &l2);
	struct vre_net_hdr h = gso_hdr(&t, hdrs, l2, 0), vh;
	struct link l;

	link_open(&l, _i, 0, F_MRG | F_GUEST, 0);
	post_rx(&l.rx, 8, 2048);
	send_pkt(&l.tx, &h, f, len, 1);
	ck_assert_int_eq(vre_net_forward(l.tx.q, l.rx.q), 1);
	ck_assert_uint_eq(recv_pkt(&l.rx, &vh, got), len);
	ck_assert_mem_eq(got, f, len);
	ck_assert_uint_eq(vh.flags | vh.gso_type | vh.gso_size | vh.csum_start, 0);
	for (int r = 0; r < VRE_OL_DROP_COUNT; r++)
		ck_assert_uint_eq(l.tx.q->st.drop_ol[r], 0);
	tx_back(&l.tx, 1);
	link_close(&l);
	free(f);
	free(got);
}
END_TEST

/* ---- hostile headers: every rule, its own counter ------------------------ */

struct bad {
	const char *what;
	enum vre_net_ol_drop why;
	uint64_t features; /* the source's offloads (F_HOST when 0) */
	void (*mangle)(struct vre_net_hdr *h, uint8_t *f, uint32_t *len, uint32_t l2);
};

static void m_tso6_not_negotiated(struct vre_net_hdr *h, uint8_t *f, uint32_t *len, uint32_t l2)
{
	(void)f, (void)len, (void)l2;
	h->gso_type = VRE_NET_HDR_GSO_TCPV6;
}
static void m_ecn_not_negotiated(struct vre_net_hdr *h, uint8_t *f, uint32_t *len, uint32_t l2)
{
	(void)f, (void)len, (void)l2;
	h->gso_type |= VRE_NET_HDR_GSO_ECN;
}
static void m_ufo(struct vre_net_hdr *h, uint8_t *f, uint32_t *len, uint32_t l2)
{
	(void)f, (void)len, (void)l2;
	h->gso_type = VRE_NET_HDR_GSO_UDP;
}
static void m_gso_type_unknown(struct vre_net_hdr *h, uint8_t *f, uint32_t *len, uint32_t l2)
{
	(void)f, (void)len, (void)l2;
	h->gso_type = 5;
}
static void m_ecn_alone(struct vre_net_hdr *h, uint8_t *f, uint32_t *len, uint32_t l2)
{
	(void)f, (void)len, (void)l2;
	h->gso_type = VRE_NET_HDR_GSO_ECN;
}
static void m_csum_start_beyond(struct vre_net_hdr *h, uint8_t *f, uint32_t *len, uint32_t l2)
{
	(void)f, (void)l2;
	h->gso_type = 0;
	h->csum_start = (uint16_t)(*len - 1);
	h->csum_offset = 0;
}
static void m_csum_offset_beyond(struct vre_net_hdr *h, uint8_t *f, uint32_t *len, uint32_t l2)
{
	(void)f, (void)l2;
	h->gso_type = 0;
	h->csum_offset = (uint16_t)(*len - h->csum_start - 1);
}
static void m_csum_max(struct vre_net_hdr *h, uint8_t *f, uint32_t *len, uint32_t l2)
{
	(void)f, (void)len, (void)l2;
	h->csum_start = 0xffff;
	h->csum_offset = 0xffff;
}
static void m_gso_no_needs_csum(struct vre_net_hdr *h, uint8_t *f, uint32_t *len, uint32_t l2)
{
	(void)f, (void)len, (void)l2;
	h->flags = 0;
}
static void m_gso_csum_elsewhere(struct vre_net_hdr *h, uint8_t *f, uint32_t *len, uint32_t l2)
{
	(void)f, (void)len, (void)l2;
	h->csum_start -= 2;
}
static void m_gso_csum_offset(struct vre_net_hdr *h, uint8_t *f, uint32_t *len, uint32_t l2)
{
	(void)f, (void)len, (void)l2;
	h->csum_offset = 6;
}
static void m_gso_size_zero(struct vre_net_hdr *h, uint8_t *f, uint32_t *len, uint32_t l2)
{
	(void)f, (void)len, (void)l2;
	h->gso_size = 0;
}
static void m_gso_size_over(struct vre_net_hdr *h, uint8_t *f, uint32_t *len, uint32_t l2)
{
	(void)f, (void)l2;
	h->gso_size = (uint16_t)(*len + 1);
}
static void m_gso_too_many(struct vre_net_hdr *h, uint8_t *f, uint32_t *len, uint32_t l2)
{
	(void)f, (void)len, (void)l2;
	h->gso_size = 8; /* 20000 / 8 segments */
}
static void m_hdr_len_beyond(struct vre_net_hdr *h, uint8_t *f, uint32_t *len, uint32_t l2)
{
	(void)f, (void)l2;
	h->hdr_len = (uint16_t)(*len + 1);
}
static void m_too_long(struct vre_net_hdr *h, uint8_t *f, uint32_t *len, uint32_t l2)
{
	(void)h, (void)f, (void)l2;
	*len = VRE_NET_MAX_FRAME; /* 65535 + 18 bytes behind a 14-byte header */
}
static void m_not_ipv4(struct vre_net_hdr *h, uint8_t *f, uint32_t *len, uint32_t l2)
{
	(void)h, (void)len;
	f[l2 - 1] = 0x06; /* ethertype 0x0806 */
}
static void m_fragment(struct vre_net_hdr *h, uint8_t *f, uint32_t *len, uint32_t l2)
{
	(void)h, (void)len;
	f[l2 + 6] |= 0x20; /* more fragments */
}
static void m_udp(struct vre_net_hdr *h, uint8_t *f, uint32_t *len, uint32_t l2)
{
	(void)h, (void)len;
	f[l2 + 9] = 17;
}
static void m_bad_ihl(struct vre_net_hdr *h, uint8_t *f, uint32_t *len, uint32_t l2)
{
	(void)h, (void)len;
	f[l2] = 0x44;
}
static void m_tcpv4_on_ipv6(struct vre_net_hdr *h, uint8_t *f, uint32_t *len, uint32_t l2)
{
	(void)f, (void)len, (void)l2;
	h->gso_type = VRE_NET_HDR_GSO_TCPV6;
}
static void m_bad_doff(struct vre_net_hdr *h, uint8_t *f, uint32_t *len, uint32_t l2)
{
	(void)h, (void)len;
	f[l2 + 20 + 12] = 0x40;
}
static void m_truncated(struct vre_net_hdr *h, uint8_t *f, uint32_t *len, uint32_t l2)
{
	(void)f;
	*len = l2 + 20 + 19; /* room for the checksum field, not for the TCP header */
	h->gso_size = 1;
	h->hdr_len = 0;
}

static const struct bad bads[] = {
	{ "TCPV6 without HOST_TSO6", VRE_OL_DROP_FEATURE,
	  F(VRE_NET_F_CSUM) | F(VRE_NET_F_HOST_TSO4), m_tso6_not_negotiated },
	{ "ECN without HOST_ECN", VRE_OL_DROP_FEATURE,
	  F(VRE_NET_F_CSUM) | F(VRE_NET_F_HOST_TSO4), m_ecn_not_negotiated },
	{ "UFO (not offered)", VRE_OL_DROP_FEATURE, 0, m_ufo },
	{ "gso_type 5", VRE_OL_DROP_FEATURE, 0, m_gso_type_unknown },
	{ "ECN bit alone", VRE_OL_DROP_FEATURE, 0, m_ecn_alone },
	{ "csum_start at the last byte", VRE_OL_DROP_CSUM, 0, m_csum_start_beyond },
	{ "csum_offset one short", VRE_OL_DROP_CSUM, 0, m_csum_offset_beyond },
	{ "csum_start/offset 0xffff", VRE_OL_DROP_CSUM, 0, m_csum_max },
	{ "GSO without NEEDS_CSUM", VRE_OL_DROP_CSUM, 0, m_gso_no_needs_csum },
	{ "GSO csum_start not at TCP", VRE_OL_DROP_CSUM, 0, m_gso_csum_elsewhere },
	{ "GSO csum_offset not TCP's", VRE_OL_DROP_CSUM, 0, m_gso_csum_offset },
	{ "gso_size 0", VRE_OL_DROP_GSO_SIZE, 0, m_gso_size_zero },
	{ "gso_size over the frame", VRE_OL_DROP_GSO_SIZE, 0, m_gso_size_over },
	{ "more than 1024 segments", VRE_OL_DROP_GSO_SIZE, 0, m_gso_too_many },
	{ "hdr_len beyond the frame", VRE_OL_DROP_HDR_LEN, 0, m_hdr_len_beyond },
	{ "TSO frame over 64 KiB", VRE_OL_DROP_TOO_LONG, 0, m_too_long },
	{ "not IPv4", VRE_OL_DROP_HEADERS, 0, m_not_ipv4 },
	{ "IPv4 fragment", VRE_OL_DROP_HEADERS, 0, m_fragment },
	{ "UDP behind TCPV4", VRE_OL_DROP_HEADERS, 0, m_udp },
	{ "IPv4 header length 16", VRE_OL_DROP_HEADERS, 0, m_bad_ihl },
	{ "TCPV6 on an IPv4 frame", VRE_OL_DROP_HEADERS, 0, m_tcpv4_on_ipv6 },
	{ "TCP data offset 4", VRE_OL_DROP_HEADERS, 0, m_bad_doff },
	{ "TCP header cut short", VRE_OL_DROP_HEADERS, 0, m_truncated },
};

/* One case per bad header (loop index = case * 2 + packed): refused with
 * its reason's counter, nothing delivered, the chain completed, and the
 * good frame after it in the same burst still crosses. */
START_TEST(test_hostile_header)
{
	const struct bad *c = &bads[_i / 2];
	uint8_t *f = frame_buf(), *got = frame_buf(), ok[64];
	struct nf_tcp t = { .flags = NF_TCP_ACK, .payload = 20000, .seed = 8 };
	uint32_t hdrs, l2, len = nf_tcp_build(f, BIG, &t, &hdrs, &l2);
	struct vre_net_hdr h = gso_hdr(&t, hdrs, l2, 1448), zero = { 0 }, vh;
	struct link l;

	memset(f + len, 0x77, BIG - len);
	c->mangle(&h, f, &len, l2);
	link_open(&l, _i & 1, c->features ? c->features : F_HOST, F_MRG | F_GUEST, 0);
	post_rx(&l.rx, 64, 2048);
	memset(ok, 0x42, sizeof(ok));
	send_pkt(&l.tx, &h, f, len, 2);
	send_pkt(&l.tx, &zero, ok, sizeof(ok), 1);
	ck_assert_msg(vre_net_forward(l.tx.q, l.rx.q) == 1, "%s", c->what);
	for (int r = 0; r < VRE_OL_DROP_COUNT; r++)
		ck_assert_msg(l.tx.q->st.drop_ol[r] == (r == (int)c->why), "%s: drop_ol[%s] = %llu",
			      c->what, vre_net_ol_drop_name((enum vre_net_ol_drop)r),
			      (unsigned long long)l.tx.q->st.drop_ol[r]);
	ck_assert_uint_eq(l.tx.q->st.packets, 1);
	ck_assert_uint_eq(recv_pkt(&l.rx, &vh, got), sizeof(ok));
	ck_assert_mem_eq(got, ok, sizeof(ok));
	ck_assert_uint_eq(recv_pkt(&l.rx, &vh, got), 0);
	tx_back(&l.tx, 2);
	link_close(&l);
	free(f);
	free(got);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("offload");
	TCase *path = tcase_create("path"), *bad = tcase_create("hostile");
	SRunner *sr;
	int failed;

	tcase_set_timeout(path, 60);
	tcase_add_loop_test(path, test_gso_passed_whole, 0, 4);
	tcase_add_loop_test(path, test_gso_segmented, 0, 8);
	tcase_add_loop_test(path, test_gso_one_segment, 0, 2);
	tcase_add_loop_test(path, test_csum_only, 0, 4);
	tcase_add_loop_test(path, test_gso_ecn, 0, 2);
	tcase_add_loop_test(path, test_mtu, 0, 2);
	tcase_add_loop_test(path, test_gso_small_chains, 0, 2);
	tcase_add_loop_test(path, test_order_and_masks, 0, 2);
	tcase_add_loop_test(path, test_header_ignored_without_offloads, 0, 2);
	suite_add_tcase(s, path);
	tcase_add_loop_test(bad, test_hostile_header, 0, (int)(2 * sizeof(bads) / sizeof(bads[0])));
	suite_add_tcase(s, bad);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
