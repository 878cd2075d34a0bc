/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * virtio-net <-> mbuf paths over a real DPDK mempool. EAL runs without
 * hugepages, PCI or shared files (--no-huge --no-shconf --no-pci), so the
 * test needs no privileges. Rings: split (loop 0) and packed (loop 1).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_errno.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "net_frames.h"
#include "net_guest.h"
#include "vre_net_mbuf.h"

#define F(b) (1ull << (b))
#define ROOM 2048u

static struct rte_mempool *mp;

struct port {
	struct vre_net_dev *n;
	struct guest *tx, *rx;
	struct vre_net_queue *txq, *rxq;
};

static struct vre_net_queue *start(struct vre_net_dev *n, struct guest *g)
{
	ck_assert_int_eq(vre_net_dev_ops(n)->queue_start(n, &g->q), 0);
	return g->q.dp;
}

/* A device with extra negotiated features (offloads) and an MTU. */
static void port_open_ex(struct port *p, bool packed, bool mrg, uint64_t extra, uint16_t mtu)
{
	struct vre_net_config cfg = { .max_queue_pairs = 1, .mtu = mtu };
	uint64_t f = F(VRE_F_VERSION_1) | (mrg ? F(VRE_NET_F_MRG_RXBUF) : 0) |
		     (packed ? F(VRE_F_RING_PACKED) : 0) | extra;

	ck_assert_int_eq(vre_net_dev_create(&cfg, NULL, NULL, &p->n), 0);
	ck_assert_int_eq(vre_net_dev_ops(p->n)->set_features(p->n, f), 0);
	p->rx = guest_new(packed, 256, 4u << 20, false, 0);
	p->tx = guest_new(packed, 256, 4u << 20, false, 1);
	p->rxq = start(p->n, p->rx);
	p->txq = start(p->n, p->tx);
}

static void port_open(struct port *p, bool packed, bool mrg)
{
	port_open_ex(p, packed, mrg, 0, 0);
}

static void port_close(struct port *p)
{
	ck_assert(guest_guards_ok(p->rx) && guest_guards_ok(p->tx));
	guest_free(p->rx);
	guest_free(p->tx);
	vre_net_dev_destroy(p->n);
}

static void make_frame(uint8_t *f, uint32_t len, unsigned seed)
{
	for (uint32_t i = 0; i < len; i++)
		f[i] = (uint8_t)(seed * 13u + i * 5u + (i >> 9));
}

/* TX chain: zero header in one descriptor, the frame in 1000-byte pieces. */
static void send_frame(struct guest *g, const uint8_t *frame, uint32_t len)
{
	uint64_t gpa = guest_alloc(g, 12 + len);
	struct gbuf b[16];
	unsigned n = 0;

	memset(guest_ptr(g, gpa), 0, 12);
	memcpy((uint8_t *)guest_ptr(g, gpa) + 12, frame, len);
	b[n++] = (struct gbuf){ gpa, 12, false };
	for (uint32_t off = 0; off < len; off += 1000)
		b[n++] = (struct gbuf){ gpa + 12 + off, len - off < 1000 ? len - off : 1000, false };
	ck_assert_int_ge(guest_add(g, b, n, gpa), 0);
}

static void post_rx(struct guest *g, unsigned nchains, uint32_t size)
{
	for (unsigned c = 0; c < nchains; c++) {
		uint64_t gpa = guest_alloc(g, size);
		struct gbuf b = { gpa, size, true };

		ck_assert_int_ge(guest_add(g, &b, 1, gpa), 0);
	}
}

/* Reads one packet (possibly over num_buffers chains) into out. */
static uint32_t recv_frame(struct guest *g, uint8_t *out, uint16_t *nbufs)
{
	struct vre_net_hdr h;
	uint64_t token;
	uint32_t len, total;
	uint16_t id;

	ck_assert_int_eq(guest_get_used(g, &id, &len, &token), 1);
	ck_assert_uint_ge(len, 12);
	memcpy(&h, guest_ptr(g, token), 12);
	*nbufs = h.num_buffers;
	total = len - 12;
	memcpy(out, (uint8_t *)guest_ptr(g, token) + 12, total);
	for (uint16_t b = 1; b < *nbufs; b++) {
		ck_assert_int_eq(guest_get_used(g, &id, &len, &token), 1);
		memcpy(out + total, guest_ptr(g, token), len);
		total += len;
	}
	return total;
}

static void check_mbuf(const struct rte_mbuf *m, const uint8_t *frame, uint32_t len)
{
	uint8_t *flat = malloc(len);
	const void *r;

	ck_assert_uint_eq(m->pkt_len, len);
	ck_assert_uint_eq(m->nb_segs, (len + ROOM - 1) / ROOM);
	r = rte_pktmbuf_read(m, 0, len, flat);
	ck_assert_ptr_nonnull(r);
	ck_assert_mem_eq(r, frame, len);
	free(flat);
}

START_TEST(test_tx_to_mbufs)
{
	static const uint32_t lens[] = { 64, 1518, 9000, 60 };
	struct port p;
	struct vre_net_tx_burst b;
	struct rte_mbuf *out[VRE_BURST];
	uint8_t *frames[4];
	unsigned avail = rte_mempool_avail_count(mp);

	port_open(&p, _i, true);
	for (int i = 0; i < 4; i++) {
		frames[i] = malloc(lens[i]);
		make_frame(frames[i], lens[i], (unsigned)i);
		send_frame(p.tx, frames[i], lens[i]);
	}
	ck_assert_int_eq(vre_net_tx_fetch(p.txq, &b), 4);
	/* Packets 0, 2, 3: 1 + 5 + 1 mbufs from one bulk allocation. */
	ck_assert_int_eq(vre_net_tx_to_mbufs(p.txq, &b, 0xd, mp, out), 3);
	ck_assert_uint_eq(rte_mempool_avail_count(mp), avail - 7);
	check_mbuf(out[0], frames[0], lens[0]);
	check_mbuf(out[1], frames[2], lens[2]);
	check_mbuf(out[2], frames[3], lens[3]);
	vre_net_tx_done(p.txq, &b);
	for (int i = 0; i < 3; i++)
		rte_pktmbuf_free(out[i]);
	ck_assert_uint_eq(rte_mempool_avail_count(mp), avail);
	ck_assert_uint_eq(p.txq->st.drop_no_mbuf, 0);
	for (int i = 0; i < 4; i++)
		free(frames[i]);
	port_close(&p);
}
END_TEST

START_TEST(test_tx_mempool_dry)
{
	struct rte_mempool *small = rte_pktmbuf_pool_create(_i ? "dry1" : "dry0", 8, 0, 0,
							    ROOM + RTE_PKTMBUF_HEADROOM,
							    SOCKET_ID_ANY);
	struct port p;
	struct vre_net_tx_burst b;
	struct rte_mbuf *out[VRE_BURST];
	uint8_t frame[9000];

	ck_assert_ptr_nonnull(small);
	port_open(&p, _i, true);
	make_frame(frame, sizeof(frame), 3);
	/* 5 + 5 mbufs wanted, 8 in the pool: the bulk fails, then the packets
	 * are tried one by one and the second finds the pool dry. */
	send_frame(p.tx, frame, sizeof(frame));
	send_frame(p.tx, frame, sizeof(frame));
	ck_assert_int_eq(vre_net_tx_fetch(p.txq, &b), 2);
	ck_assert_int_eq(vre_net_tx_to_mbufs(p.txq, &b, 0x3, small, out), 1);
	ck_assert_uint_eq(p.txq->st.drop_no_mbuf, 1);
	check_mbuf(out[0], frame, sizeof(frame));
	rte_pktmbuf_free(out[0]);
	ck_assert_uint_eq(rte_mempool_avail_count(small), 8);
	vre_net_tx_done(p.txq, &b);
	port_close(&p);
	rte_mempool_free(small);
}
END_TEST

/* mbuf chain -> RX chains, with and without mergeable buffers. */
static struct rte_mbuf *make_chain(const uint8_t *frame, uint32_t len, uint32_t seg)
{
	struct rte_mbuf *head = NULL, *prev = NULL;

	for (uint32_t off = 0; off < len; off += seg) {
		struct rte_mbuf *m = rte_pktmbuf_alloc(mp);
		uint32_t l = len - off < seg ? len - off : seg;

		ck_assert_ptr_nonnull(m);
		memcpy(rte_pktmbuf_append(m, (uint16_t)l), frame + off, l);
		if (!head) {
			head = m;
		} else {
			prev->next = m;
			head->nb_segs++;
			head->pkt_len += l;
		}
		prev = m;
	}
	return head;
}

START_TEST(test_rx_from_mbufs)
{
	static const uint32_t lens[] = { 64, 1518, 9000 };
	bool mrg = _i & 1, packed = _i >> 1;
	struct port p;
	struct rte_mbuf *pk[3];
	uint8_t *frames[3], got[9100];
	uint16_t nbufs;
	unsigned avail = rte_mempool_avail_count(mp);

	port_open(&p, packed, mrg);
	post_rx(p.rx, 16, mrg ? 1526 : 9100);
	for (int i = 0; i < 3; i++) {
		frames[i] = malloc(lens[i]);
		make_frame(frames[i], lens[i], (unsigned)i + 20);
		pk[i] = make_chain(frames[i], lens[i], 700);
	}
	ck_assert_int_eq(vre_net_rx_from_mbufs(p.rxq, pk, 3), 3);
	for (int i = 0; i < 3; i++) {
		ck_assert_uint_eq(recv_frame(p.rx, got, &nbufs), lens[i]);
		ck_assert_mem_eq(got, frames[i], lens[i]);
		ck_assert_uint_eq(nbufs, mrg ? (12 + lens[i] + 1525) / 1526 : 1);
		rte_pktmbuf_free(pk[i]);
		free(frames[i]);
	}
	ck_assert_uint_eq(guest_calls(p.rx), 1);
	ck_assert_uint_eq(rte_mempool_avail_count(mp), avail);
	port_close(&p);
}
END_TEST

START_TEST(test_rx_from_mbufs_no_buffer)
{
	struct port p;
	struct rte_mbuf *pk[2];
	uint8_t frame[64];

	port_open(&p, _i, true);
	make_frame(frame, 64, 1);
	pk[0] = make_chain(frame, 64, 64);
	pk[1] = make_chain(frame, 64, 64);
	post_rx(p.rx, 1, 1526);
	ck_assert_int_eq(vre_net_rx_from_mbufs(p.rxq, pk, 2), 1);
	ck_assert_uint_eq(p.rxq->st.drop_no_rx_buf, 1);
	rte_pktmbuf_free(pk[0]);
	rte_pktmbuf_free(pk[1]);
	port_close(&p);
}
END_TEST

/* Guest TX -> mbufs -> guest RX: the whole detour is byte-exact. */
START_TEST(test_round_trip)
{
	struct port a, b;
	struct vre_net_tx_burst tb;
	struct rte_mbuf *out[VRE_BURST];
	uint8_t *frames[32], got[9100];
	uint32_t lens[32];
	uint16_t nbufs;
	int n;

	port_open(&a, _i, true);
	port_open(&b, !_i, true);
	post_rx(b.rx, 128, 2048);
	for (int i = 0; i < 32; i++) {
		lens[i] = i % 8 == 7 ? 9000 : 60 + (uint32_t)i * 45;
		frames[i] = malloc(lens[i]);
		make_frame(frames[i], lens[i], (unsigned)i + 77);
		send_frame(a.tx, frames[i], lens[i]);
	}
	ck_assert_int_eq(vre_net_tx_fetch(a.txq, &tb), 32);
	n = vre_net_tx_to_mbufs(a.txq, &tb, UINT32_MAX, mp, out);
	ck_assert_int_eq(n, 32);
	vre_net_tx_done(a.txq, &tb);
	ck_assert_int_eq(vre_net_rx_from_mbufs(b.rxq, out, (uint16_t)n), 32);
	for (int i = 0; i < 32; i++) {
		ck_assert_uint_eq(recv_frame(b.rx, got, &nbufs), lens[i]);
		ck_assert_mem_eq(got, frames[i], lens[i]);
		rte_pktmbuf_free(out[i]);
		free(frames[i]);
	}
	port_close(&a);
	port_close(&b);
}
END_TEST

/* ---- offloads ---- */

#define F_HOST (F(VRE_NET_F_CSUM) | F(VRE_NET_F_HOST_TSO4) | F(VRE_NET_F_HOST_TSO6) | \
		F(VRE_NET_F_HOST_ECN))

static struct rte_mbuf *sunk[1024];
static unsigned nsunk;

static void sink(void *ctx, struct rte_mbuf **m, unsigned n)
{
	ck_assert_ptr_eq(ctx, &nsunk);
	ck_assert_uint_le(n, VRE_BURST);
	for (unsigned i = 0; i < n; i++) {
		ck_assert_uint_lt(nsunk, 1024);
		sunk[nsunk++] = m[i];
	}
}

static void sunk_free(void)
{
	for (unsigned i = 0; i < nsunk; i++)
		rte_pktmbuf_free(sunk[i]);
	nsunk = 0;
}

/* A TX chain with header vh (the frame in 1000-byte pieces). */
static void send_ol(struct guest *g, const struct vre_net_hdr *vh, const uint8_t *frame,
		    uint32_t len)
{
	uint64_t gpa = guest_alloc(g, 12 + len);
	struct gbuf b[80];
	unsigned n = 0;

	memset(guest_ptr(g, gpa), 0, 12);
	memcpy(guest_ptr(g, gpa), vh, 10);
	memcpy((uint8_t *)guest_ptr(g, gpa) + 12, frame, len);
	b[n++] = (struct gbuf){ gpa, 12, false };
	for (uint32_t off = 0; off < len; off += 1000)
		b[n++] = (struct gbuf){ gpa + 12 + off, len - off < 1000 ? len - off : 1000, false };
	ck_assert_int_ge(guest_add(g, b, n, gpa), 0);
}

static struct vre_net_hdr tso_hdr(const struct nf_tcp *t, uint32_t l2, uint16_t mss)
{
	struct vre_net_hdr h = {
		.flags = VRE_NET_HDR_F_NEEDS_CSUM,
		.gso_type = t->v6 ? VRE_NET_HDR_GSO_TCPV6 : VRE_NET_HDR_GSO_TCPV4,
		.gso_size = mss, .csum_start = (uint16_t)(l2 + (t->v6 ? 40 : 20)), .csum_offset = 16,
	};
	return h;
}

/* Each of mbufs m[0..n) is a segment of frame (hdrs header bytes) with
 * complete checksums; together they carry its payload in order. */
static void check_segs(struct rte_mbuf **m, unsigned n, const uint8_t *frame, uint32_t len,
		       uint32_t hdrs, uint32_t mss)
{
	uint8_t *flat = malloc(len + 100);
	uint32_t off = 0;

	ck_assert_uint_eq(n, (len - hdrs + mss - 1) / mss);
	for (unsigned k = 0; k < n; k++) {
		uint32_t plen = len - hdrs - off < mss ? len - hdrs - off : mss;
		const uint8_t *d = rte_pktmbuf_read(m[k], 0, m[k]->pkt_len, flat);

		ck_assert_uint_eq(m[k]->pkt_len, hdrs + plen);
		ck_assert_uint_eq(m[k]->ol_flags & RTE_MBUF_F_TX_OFFLOAD_MASK, 0);
		ck_assert_int_eq(nf_tcp_verify(d, m[k]->pkt_len, false), 0);
		ck_assert_mem_eq(d + hdrs, frame + hdrs + off, plen);
		off += plen;
	}
	free(flat);
}

/* A port without offloads: GSO segmented into mbufs, NEEDS_CSUM completed,
 * a plain frame over the port's MTU dropped. */
START_TEST(test_port_software)
{
	const struct vre_net_mbuf_port port = { .mtu = 1500 };
	uint8_t *f = malloc(70000), *flat = malloc(70000);
	struct vre_net_tx_burst b;
	struct port p;
	uint32_t hdrs[2], l2, len[2];
	struct nf_tcp t[2] = { { .tcp_opt = 12, .flags = NF_TCP_ACK | NF_TCP_PSH, .payload = 20000,
				 .seed = 1 },
			       { .v6 = true, .flags = NF_TCP_ACK, .payload = 9000, .seed = 2 } };
	unsigned avail = rte_mempool_avail_count(mp), first;
	struct vre_net_hdr h, zero = { 0 };

	port_open_ex(&p, _i, true, F_HOST, 0);
	for (int k = 0; k < 2; k++) {
		len[k] = nf_tcp_build(f, 70000, &t[k], &hdrs[k], &l2);
		h = tso_hdr(&t[k], l2, 8000); /* segmented to the MTU */
		send_ol(p.tx, &h, f, len[k]);
	}
	t[0].payload = 1000;
	len[0] = nf_tcp_build(f, 70000, &t[0], NULL, &l2);
	h = (struct vre_net_hdr){ .flags = VRE_NET_HDR_F_NEEDS_CSUM, .csum_start = 34,
				  .csum_offset = 16 };
	send_ol(p.tx, &h, f, len[0]);
	memset(f, 0x55, 2000);
	send_ol(p.tx, &zero, f, 1519);
	ck_assert_int_eq(vre_net_tx_fetch(p.txq, &b), 4);
	nsunk = 0;
	ck_assert_int_eq(vre_net_tx_to_port(p.txq, &b, 0xf, mp, &port, sink, &nsunk), (int)nsunk);
	vre_net_tx_done(p.txq, &b);
	/* v4: MSS 1500 - 20 - 32; v6: 1500 - 40 - 20 */
	first = (20000 + 1447) / 1448;
	t[0].payload = 20000;
	len[0] = nf_tcp_build(f, 70000, &t[0], NULL, &l2);
	check_segs(sunk, first, f, len[0], hdrs[0], 1448);
	len[1] = nf_tcp_build(f, 70000, &t[1], NULL, &l2);
	check_segs(sunk + first, (9000 + 1439) / 1440, f, len[1], hdrs[1], 1440);
	ck_assert_uint_eq(nsunk, first + (9000 + 1439) / 1440 + 1);
	ck_assert_uint_eq(sunk[nsunk - 1]->pkt_len, 14 + 20 + 32 + 1000);
	ck_assert_int_eq(nf_tcp_verify(rte_pktmbuf_read(sunk[nsunk - 1], 0, 1066, flat), 1066,
				       false), 0);
	ck_assert_uint_eq(p.txq->st.ol_sw_gso, 2);
	ck_assert_uint_eq(p.txq->st.ol_sw_segs, nsunk - 1);
	ck_assert_uint_eq(p.txq->st.ol_sw_csum, 1);
	ck_assert_uint_eq(p.txq->st.drop_over_mtu, 1);
	sunk_free();
	ck_assert_uint_eq(rte_mempool_avail_count(mp), avail);
	port_close(&p);
	free(f);
	free(flat);
}
END_TEST

/* A port with TSO and checksum offloads: GSO frames whose headers + MSS fit
 * its MTU go as one mbuf chain with TSO flags (IPv4 and IPv6), others are
 * segmented here; NEEDS_CSUM becomes TX_TCP_CKSUM. */
START_TEST(test_port_offloads)
{
	const struct vre_net_mbuf_port port = {
		.tx_offloads = RTE_ETH_TX_OFFLOAD_TCP_TSO | RTE_ETH_TX_OFFLOAD_TCP_CKSUM |
			       RTE_ETH_TX_OFFLOAD_IPV4_CKSUM, .mtu = 1500 };
	uint8_t *f = malloc(70000), *flat = malloc(70000);
	struct nf_tcp t[3] = { { .tcp_opt = 12, .flags = NF_TCP_ACK, .payload = 30000, .seed = 3 },
			       { .v6 = true, .tcp_opt = 12, .flags = NF_TCP_ACK, .payload = 30000 },
			       { .tcp_opt = 12, .flags = NF_TCP_ACK, .payload = 5000 } };
	uint16_t mss[3] = { 1400, 1400, 1448 };
	struct vre_net_tx_burst b;
	struct port p;
	uint32_t hdrs, l2, len;
	struct vre_net_hdr h;

	port_open_ex(&p, _i, true, F_HOST, 0);
	for (int k = 0; k < 3; k++) {
		len = nf_tcp_build(f, 70000, &t[k], &hdrs, &l2);
		h = tso_hdr(&t[k], l2, mss[k]);
		send_ol(p.tx, &h, f, len);
	}
	t[2].payload = 700;
	len = nf_tcp_build(f, 70000, &t[2], &hdrs, &l2);
	h = (struct vre_net_hdr){ .flags = VRE_NET_HDR_F_NEEDS_CSUM, .csum_start = 34,
				  .csum_offset = 16 };
	send_ol(p.tx, &h, f, len);
	ck_assert_int_eq(vre_net_tx_fetch(p.txq, &b), 4);
	nsunk = 0;
	vre_net_tx_to_port(p.txq, &b, 0xf, mp, &port, sink, &nsunk);
	vre_net_tx_done(p.txq, &b);
	/* 1 + 1 TSO chains, 4 segments of 5000 (66 + 1448 > 1500), 1 checksum */
	ck_assert_uint_eq(nsunk, 7);
	for (int k = 0; k < 2; k++) {
		struct rte_mbuf *m = sunk[k];

		len = nf_tcp_build(f, 70000, &t[k], &hdrs, &l2);
		ck_assert_uint_eq(m->pkt_len, len);
		ck_assert_mem_eq(rte_pktmbuf_read(m, 0, len, flat), f, len);
		ck_assert_uint_eq(m->ol_flags & RTE_MBUF_F_TX_OFFLOAD_MASK,
				  RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_TCP_CKSUM |
				  (k ? RTE_MBUF_F_TX_IPV6 : RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM));
		ck_assert_uint_eq(m->l2_len, 14);
		ck_assert_uint_eq(m->l3_len, k ? 40 : 20);
		ck_assert_uint_eq(m->l4_len, 32);
		ck_assert_uint_eq(m->tso_segsz, 1400);
	}
	t[2].payload = 5000;
	len = nf_tcp_build(f, 70000, &t[2], &hdrs, &l2);
	check_segs(sunk + 2, 4, f, len, hdrs, 1448);
	ck_assert_uint_eq(sunk[6]->ol_flags & RTE_MBUF_F_TX_OFFLOAD_MASK,
			  RTE_MBUF_F_TX_TCP_CKSUM | RTE_MBUF_F_TX_IPV4);
	ck_assert_uint_eq(sunk[6]->l2_len, 14);
	ck_assert_uint_eq(sunk[6]->l3_len, 20);
	ck_assert_uint_eq(p.txq->st.ol_gso_out, 2);
	ck_assert_uint_eq(p.txq->st.ol_csum_out, 1);
	ck_assert_uint_eq(p.txq->st.ol_sw_gso, 1);
	sunk_free();
	port_close(&p);
	free(f);
	free(flat);
}
END_TEST

/* From a NIC: a good L4 checksum becomes DATA_VALID for a guest with
 * GUEST_CSUM, not otherwise; a frame over the guest's MTU is dropped. */
START_TEST(test_rx_data_valid)
{
	struct port p;
	struct rte_mbuf *pk[4];
	uint8_t frame[2000], got[2100];
	struct vre_net_hdr vh;
	uint16_t id;
	uint32_t len;
	uint64_t token;

	for (int gcsum = 0; gcsum < 2; gcsum++) {
		port_open_ex(&p, _i, true, gcsum ? F(VRE_NET_F_GUEST_CSUM) : 0, 1500);
		post_rx(p.rx, 8, 2048);
		make_frame(frame, sizeof(frame), 4);
		for (int k = 0; k < 4; k++)
			pk[k] = make_chain(frame, k == 3 ? 1519 : 100, 700);
		pk[0]->ol_flags |= RTE_MBUF_F_RX_L4_CKSUM_GOOD;
		pk[1]->ol_flags |= RTE_MBUF_F_RX_L4_CKSUM_BAD;
		pk[3]->ol_flags |= RTE_MBUF_F_RX_L4_CKSUM_GOOD;
		ck_assert_int_eq(vre_net_rx_from_mbufs(p.rxq, pk, 4), 3);
		for (int k = 0; k < 3; k++) {
			ck_assert_int_eq(guest_get_used(p.rx, &id, &len, &token), 1);
			memcpy(&vh, guest_ptr(p.rx, token), 12);
			ck_assert_uint_eq(len, 112);
			memcpy(got, (uint8_t *)guest_ptr(p.rx, token) + 12, 100);
			ck_assert_mem_eq(got, frame, 100);
			ck_assert_uint_eq(vh.flags, gcsum && k == 0 ? VRE_NET_HDR_F_DATA_VALID : 0);
		}
		ck_assert_uint_eq(p.rxq->st.ol_data_valid, (uint64_t)gcsum);
		ck_assert_uint_eq(p.rxq->st.drop_over_mtu, 1);
		for (int k = 0; k < 4; k++)
			rte_pktmbuf_free(pk[k]);
		port_close(&p);
	}
}
END_TEST

int main(void)
{
	/* --in-memory is refused together with --no-huge by DPDK 22.11 (no-huge
	 * implies legacy memory); --no-shconf gives the same "no files". */
	char *argv[] = { "test_net_mbuf", "--no-huge", "-m", "128", "--no-pci",
			 "--no-shconf", "-l", "0", "--log-level", "error", NULL };
	Suite *s = suite_create("net_mbuf");
	TCase *tc = tcase_create("mbuf");
	SRunner *sr;
	int failed;

	if (rte_eal_init(10, argv) < 0) {
		fprintf(stderr, "rte_eal_init failed\n");
		return EXIT_FAILURE;
	}
	mp = rte_pktmbuf_pool_create("net_test", 2048, 32, 0, ROOM + RTE_PKTMBUF_HEADROOM,
				     SOCKET_ID_ANY);
	if (!mp) {
		fprintf(stderr, "mempool: %s\n", rte_strerror(rte_errno));
		return EXIT_FAILURE;
	}
	tcase_add_loop_test(tc, test_tx_to_mbufs, 0, 2);
	tcase_add_loop_test(tc, test_tx_mempool_dry, 0, 2);
	tcase_add_loop_test(tc, test_rx_from_mbufs, 0, 4);
	tcase_add_loop_test(tc, test_rx_from_mbufs_no_buffer, 0, 2);
	tcase_add_loop_test(tc, test_round_trip, 0, 2);
	tcase_add_loop_test(tc, test_port_software, 0, 2);
	tcase_add_loop_test(tc, test_port_offloads, 0, 2);
	tcase_add_loop_test(tc, test_rx_data_valid, 0, 2);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	/* DPDK's threads and per-lcore state do not survive fork(). */
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	rte_mempool_free(mp);
	rte_eal_cleanup();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
