/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ol_dump OUTDIR [SEED [COUNT]]: random TCP frames with virtio-net offload
 * headers (GSO over IPv4/IPv6, VLAN, IP and TCP options, any TCP flags,
 * NEEDS_CSUM alone on TCP and on anything else, plain frames) sent by a
 * guest whose driver negotiated the host offloads, through VRE's
 * vhost->vhost path into four destinations: no offloads ("full"),
 * GUEST_CSUM only ("partial"), every guest offload ("pass"), and no
 * offloads with an MTU of 1280 ("mtu1280"). Writes OUTDIR/in.pcap (what
 * was sent) and OUTDIR/out-MODE.pcap (what each destination received),
 * every record being the 12-byte virtio-net header followed by the frame
 * (pcap link type 147, USER0). tests/support/gso_ref.py compares the
 * outputs with its own segmentation of the inputs, byte for byte.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_frames.h"
#include "net_guest.h"
#include "vre_net.h"

#define F(b) (1ull << (b))
#define F_BASE (F(VRE_F_VERSION_1) | F(VRE_NET_F_MRG_RXBUF))
#define F_HOST (F(VRE_NET_F_CSUM) | F(VRE_NET_F_HOST_TSO4) | F(VRE_NET_F_HOST_TSO6) | \
		F(VRE_NET_F_HOST_ECN))
#define F_GUEST (F(VRE_NET_F_GUEST_CSUM) | F(VRE_NET_F_GUEST_TSO4) | F(VRE_NET_F_GUEST_TSO6) | \
		 F(VRE_NET_F_GUEST_ECN))
#define QSIZE 1024
#define NBUF 900
#define BUF 2048
#define BIG 70000

#define DIE(...)                                                               \
	do {                                                                   \
		fprintf(stderr, "ol_dump: " __VA_ARGS__);                      \
		fputc('\n', stderr);                                           \
		exit(1);                                                       \
	} while (0)

struct end {
	struct vre_net_dev *n;
	struct guest *g;
	struct vre_net_queue *q;
	uint64_t buf0;  /* RX: NBUF buffers of BUF bytes; TX: one of BIG + 12 */
	FILE *pcap;
};

static uint64_t rng = 88172645463325252ull;

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return n ? (uint32_t)(rng % n) : 0;
}

static FILE *pcap_open(const char *dir, const char *name)
{
	char path[4096];
	uint32_t h[6] = { 0xa1b2c3d4, 2 | 4u << 16, 0, 0, 65535 + 12, 147 };
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(h, sizeof(h), 1, f) != 1)
		DIE("cannot write %s", path);
	return f;
}

static void pcap_put(FILE *f, const void *hdr, const void *frame, uint32_t len)
{
	static uint32_t n;
	uint32_t r[4] = { 1, n++, len + 12, len + 12 };

	if (fwrite(r, sizeof(r), 1, f) != 1 || fwrite(hdr, 12, 1, f) != 1 ||
	    (len && fwrite(frame, len, 1, f) != 1))
		DIE("pcap write");
}

static void post(struct end *e, uint64_t gpa)
{
	struct gbuf b = { gpa, BUF, true };

	if (guest_add(e->g, &b, 1, gpa) < 0)
		DIE("RX ring full");
}

static void end_open(struct end *e, uint64_t f, uint16_t mtu, uint16_t qindex)
{
	struct vre_net_config cfg = { .max_queue_pairs = 1, .mtu = mtu };

	if (vre_net_dev_create(&cfg, NULL, NULL, &e->n) ||
	    vre_net_dev_ops(e->n)->set_features(e->n, f | F_BASE))
		DIE("device");
	e->g = guest_new(false, QSIZE, qindex ? BIG + 4096 : (size_t)NBUF * BUF + 4096, false,
			 qindex);
	if (vre_net_dev_ops(e->n)->queue_start(e->n, &e->g->q))
		DIE("queue start");
	e->q = e->g->q.dp;
	e->buf0 = guest_alloc(e->g, qindex ? BIG + 12 : (size_t)NBUF * BUF);
	for (unsigned i = 0; !qindex && i < NBUF; i++)
		post(e, e->buf0 + (uint64_t)i * BUF);
}

static void end_close(struct end *e)
{
	vre_net_dev_ops(e->n)->queue_stop(e->n, &e->g->q);
	guest_free(e->g);
	vre_net_dev_destroy(e->n);
}

/* Every frame the destination got, into its pcap; buffers posted again. */
static unsigned drain(struct end *e)
{
	static uint8_t frame[BIG];
	uint8_t hdr[12];
	uint64_t token;
	uint32_t len, total;
	uint16_t id, nbufs;
	unsigned n = 0;

	while (guest_get_used(e->g, &id, &len, &token) == 1) {
		memcpy(hdr, guest_ptr(e->g, token), 12);
		nbufs = (uint16_t)(hdr[10] | hdr[11] << 8);
		total = len - 12;
		memcpy(frame, (uint8_t *)guest_ptr(e->g, token) + 12, total);
		post(e, token);
		for (uint16_t b = 1; b < nbufs; b++) {
			if (guest_get_used(e->g, &id, &len, &token) != 1)
				DIE("num_buffers %u, only %u buffers", nbufs, b);
			memcpy(frame + total, guest_ptr(e->g, token), len);
			total += len;
			post(e, token);
		}
		pcap_put(e->pcap, hdr, frame, total);
		n++;
	}
	return n;
}

/* A random request: GSO (most), NEEDS_CSUM alone, or nothing. */
static uint32_t make(uint8_t *f, struct vre_net_hdr *h)
{
	struct nf_tcp t = {
		.v6 = rnd(2), .vlan = rnd(4) == 0, .ip_opt = (uint8_t)(rnd(3) == 0 ? 4 * rnd(11) : 0),
		.tcp_opt = (uint8_t)(4 * rnd(11)), .flags = (uint8_t)(NF_TCP_ACK | rnd(256)),
		.seq = rnd(0xffffffffu) | rnd(2) << 31, .ip_id = (uint16_t)rnd(65536),
		.seed = rnd(1000),
	};
	uint32_t kind = rnd(10), hdrs, l2, len, mss, max;

	t.flags &= (uint8_t)~NF_TCP_SYN;
	t.payload = kind < 7 ? 1 + rnd(rnd(2) ? 64000 : 6000) : rnd(1400);
	if (t.payload > 65535 - 120)
		t.payload = 65535 - 120;
	len = nf_tcp_build(f, BIG, &t, &hdrs, &l2);
	memset(h, 0, sizeof(*h));
	if (kind == 9)
		return len; /* plain */
	h->flags = VRE_NET_HDR_F_NEEDS_CSUM;
	h->csum_start = (uint16_t)(l2 + (t.v6 ? 40 : 20 + t.ip_opt));
	h->csum_offset = 16;
	if (kind == 8 && rnd(2)) { /* any protocol: a checksum anywhere */
		h->csum_start = (uint16_t)rnd(len - 2);
		h->csum_offset = (uint16_t)rnd(len - 2 - h->csum_start + 1);
		return len;
	}
	if (kind >= 7)
		return len;
	h->gso_type = (uint8_t)((t.v6 ? VRE_NET_HDR_GSO_TCPV6 : VRE_NET_HDR_GSO_TCPV4) |
				(t.flags & NF_TCP_CWR ? VRE_NET_HDR_GSO_ECN : 0));
	h->hdr_len = (uint16_t)hdrs;
	/* an MSS from 64 bytes (within the segment limit) up to the frame */
	max = len < 9000 ? len : 9000;
	mss = (t.payload + VRE_NET_MAX_SEGS - 1) / VRE_NET_MAX_SEGS;
	mss = mss < 64 ? 64 : mss;
	h->gso_size = (uint16_t)(mss >= max ? max : mss + rnd(max - mss + 1));
	return len;
}

int main(int argc, char **argv)
{
	static uint8_t frame[BIG];
	static const char *const names[4] = { "out-full.pcap", "out-partial.pcap", "out-pass.pcap",
					      "out-mtu1280.pcap" };
	static const uint64_t feat[4] = { 0, F(VRE_NET_F_GUEST_CSUM), F_GUEST, 0 };
	struct end tx, rx[4];
	unsigned count, frames[4] = { 0 };
	FILE *in;

	if (argc < 2)
		DIE("usage: ol_dump OUTDIR [SEED [COUNT]]");
	if (argc > 2)
		rng ^= strtoull(argv[2], NULL, 0) * 0x9e3779b97f4a7c15ull;
	count = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 0) : 300;
	memset(&tx, 0, sizeof(tx));
	end_open(&tx, F_HOST, 0, 1);
	in = pcap_open(argv[1], "in.pcap");
	for (int m = 0; m < 4; m++) {
		memset(&rx[m], 0, sizeof(rx[m]));
		end_open(&rx[m], feat[m], m == 3 ? 1280 : 0, 0);
		rx[m].pcap = pcap_open(argv[1], names[m]);
	}
	for (unsigned i = 0; i < count; i++) {
		struct vre_net_tx_burst b;
		struct vre_net_hdr h;
		uint32_t len = make(frame, &h);
		uint8_t *m = guest_ptr(tx.g, tx.buf0);
		struct gbuf g[2] = { { tx.buf0, 12, false }, { tx.buf0 + 12, len, false } };
		uint8_t hdr[12] = { 0 };

		memcpy(hdr, &h, 10);
		memcpy(m, hdr, 12);
		memcpy(m + 12, frame, len);
		pcap_put(in, hdr, frame, len);
		if (guest_add(tx.g, g, 2, i) < 0 || vre_net_tx_fetch(tx.q, &b) != 1)
			DIE("packet %u not taken", i);
		for (int k = 0; k < 4; k++) {
			vre_net_rx_put(rx[k].q, &b, 1);
			frames[k] += drain(&rx[k]);
		}
		vre_net_tx_done(tx.q, &b);
		{
			uint16_t id;
			uint32_t l;
			uint64_t token;

			if (guest_get_used(tx.g, &id, &l, &token) != 1)
				DIE("TX chain not completed");
		}
	}
	fclose(in);
	for (int k = 0; k < 4; k++) {
		const struct vre_net_stats *st = &rx[k].q->st;
		uint64_t drops = st->drop_no_rx_buf + st->drop_too_big + st->drop_bad_chain +
				 st->drop_queue_broken;

		fclose(rx[k].pcap);
		printf("%s: %u frames (segmented %llu GSO packets, %llu checksums completed, "
		       "%llu passed whole, %llu over the MTU)\n", names[k], frames[k],
		       (unsigned long long)st->ol_sw_gso, (unsigned long long)st->ol_sw_csum,
		       (unsigned long long)(st->ol_gso_out + st->ol_csum_out),
		       (unsigned long long)st->drop_over_mtu);
		/* only the MTU may cost frames, and only where there is one */
		if (drops || (k != 3 && st->drop_over_mtu))
			DIE("%s: the destination dropped frames", names[k]);
	}
	for (unsigned r = 0; r < VRE_OL_DROP_COUNT; r++)
		if (tx.q->st.drop_ol[r])
			DIE("a generated header was refused (%s)",
			    vre_net_ol_drop_name((enum vre_net_ol_drop)r));
	end_close(&tx);
	for (int k = 0; k < 4; k++)
		end_close(&rx[k]);
	return 0;
}
