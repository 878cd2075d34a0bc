/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * In-process virtio-net forwarding microbenchmark: the switch's per-burst
 * work (vre_net_tx_fetch on a source TX queue, vre_net_rx_put into a
 * destination RX queue, vre_net_tx_done) between two guests played by
 * minimal drivers written here, over plain buffers registered as guest
 * memory. No sockets, no threads, no empty polls: what callgrind counts in
 * fwd_burst() is the packet path alone (perf/net-bench divides it by the
 * packets).
 *
 * The drivers behave like DPDK's virtio PMD under testpmd: one descriptor
 * per TX packet (virtio-net header + frame), one writable descriptor per
 * RX buffer, MRG_RXBUF on (-M turns it off), notifications suppressed by
 * the driver (-e enables them: the device then checks and "notifies" a
 * call fd of -1, i.e. does everything but the syscall). -o negotiates
 * VIRTIO_F_IN_ORDER and the drivers take the PMD's in-order paths: buffer
 * ids follow the ring positions, TX completions are counted (split: the
 * used index; packed: up to the id the used descriptor names) and never
 * read one by one, RX entries are read by position. -g takes the general
 * path only (without vre_net_forward_fused). -O: both drivers
 * negotiated every offload and the destination has an MTU of 1500, as
 * between two Linux guests; the headers still ask for nothing, so this
 * is the fast path's cost of reading them (and of the MTU check). -l puts both
 * queues in one guest (loopback), otherwise they are two guests with
 * their own memory maps (xconnect).
 *
 * The RX driver checks every packet: length, num_buffers, a sequence
 * number the TX driver wrote (packets arrive in order, none lost or
 * doubled) and the frame's last byte, so a faster path that breaks
 * delivery fails the run.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vre_mem.h"
#include "vre_net.h"
#include "vre_ring_layout.h"
#include "vre_vq.h"

#define BUF_SIZE  2048u
#define HDR_LEN   12u
#define MAX_QSIZE 1024u

struct guest {
	uint8_t *mem;
	size_t len, used;
	uint64_t gpa;
	struct vre_mem_map map;
};

struct ring {
	struct guest *g;
	bool packed, rx;
	uint16_t qsize;
	uint32_t frame;        /* TX: frame bytes after the header */
	uint64_t buf_gpa;      /* qsize buffers of BUF_SIZE */
	uint8_t *buf_hva;
	struct vre_desc *desc;
	struct vre_avail *avail;
	struct vre_used_ring *used;
	struct vre_packed_desc *pdesc;
	struct vre_packed_event *pdrv, *pdev;
	uint16_t avail_idx, used_idx;
	uint16_t next_avail, next_used;
	bool avail_wrap, used_wrap;
	uint16_t free_ids[MAX_QSIZE];
	unsigned nfree;
	uint32_t seq;          /* TX: next to send; RX: next expected */
	uint64_t bad;
	bool in_order;
	struct vre_queue q;
	struct vre_net_queue nq;
};

static void *carve(struct guest *g, size_t len, size_t align, uint64_t *gpa)
{
	size_t off = (g->used + align - 1) & ~(align - 1);

	if (off + len > g->len)
		abort();
	g->used = off + len;
	*gpa = g->gpa + off;
	return g->mem + off;
}

static int guest_init(struct guest *g, uint64_t gpa, size_t len)
{
	struct vre_mem_region r = { .gpa = gpa, .size = len, .uva = gpa, .fd = -1 };

	g->mem = aligned_alloc(4096, len);
	if (!g->mem)
		return -ENOMEM;
	memset(g->mem, 0, len);
	g->len = len;
	g->gpa = gpa;
	r.hva = g->mem;
	vre_mem_map_init(&g->map);
	return vre_mem_map_add(&g->map, &r);
}

static int ring_init(struct ring *r, struct guest *g, bool packed, bool rx, uint16_t qsize,
		     uint32_t frame, bool mrg, bool intr, bool in_order)
{
	struct vre_vq_params p = { .size = qsize, .packed = packed, .mem = &g->map,
				   .in_order = in_order };
	uint64_t gpa;
	int rc;

	memset(r, 0, sizeof(*r));
	r->g = g;
	r->packed = packed;
	r->rx = rx;
	r->qsize = qsize;
	r->frame = frame;
	r->in_order = in_order;
	if (packed) {
		r->pdesc = carve(g, vre_packed_desc_bytes(qsize), 64, &gpa);
		r->pdrv = carve(g, VRE_PACKED_EVENT_BYTES, 64, &gpa);
		r->pdev = carve(g, VRE_PACKED_EVENT_BYTES, 64, &gpa);
		r->pdrv->flags = intr ? VRE_PACKED_EVENT_ENABLE : VRE_PACKED_EVENT_DISABLE;
		r->avail_wrap = r->used_wrap = true;
		p.desc = r->pdesc;
		p.driver = r->pdrv;
		p.device = r->pdev;
	} else {
		r->desc = carve(g, vre_split_desc_bytes(qsize), 64, &gpa);
		r->avail = carve(g, vre_split_avail_bytes(qsize) + 2, 64, &gpa);
		r->used = carve(g, vre_split_used_bytes(qsize) + 2, 64, &gpa);
		r->avail->flags = intr ? 0 : VRE_AVAIL_F_NO_INTERRUPT;
		p.desc = r->desc;
		p.driver = r->avail;
		p.device = r->used;
	}
	r->buf_hva = carve(g, (size_t)qsize * BUF_SIZE, 4096, &r->buf_gpa);
	for (unsigned i = 0; i < qsize; i++)
		r->free_ids[i] = (uint16_t)(qsize - 1 - i);
	r->nfree = qsize;
	rc = vre_vq_init(&r->q.vq, &p);
	if (rc)
		return rc;
	vre_vq_notify_disable(&r->q.vq);
	r->q.index = rx ? 0 : 1;
	r->q.kick_fd = r->q.call_fd = r->q.err_fd = -1;
	r->q.started = r->q.enabled = r->q.running = true;
	r->nq.q = &r->q;
	r->nq.hdr_len = HDR_LEN;
	r->nq.mrg_rxbuf = mrg;
	r->nq.is_tx = !rx;
	return 0;
}

/* TX: header zeros, then a frame: sequence number at 14, last byte from it. */
static void fill_tx(struct ring *r, uint16_t id)
{
	uint8_t *b = r->buf_hva + (size_t)id * BUF_SIZE;
	uint32_t s = r->seq++;

	memcpy(b + HDR_LEN + 14, &s, sizeof(s));
	b[HDR_LEN + r->frame - 1] = (uint8_t)(s ^ 0x5a);
}

static void drv_post(struct ring *r)
{
	uint16_t wflag = r->rx ? VRE_DESC_F_WRITE : 0;
	uint32_t len = r->rx ? BUF_SIZE : HDR_LEN + r->frame;

	while (r->nfree) {
		/* in order: the id is the ring position (split: descriptor
		 * index = avail slot; packed: the slot) */
		uint16_t id = r->in_order ? (r->packed ? r->next_avail
						       : (uint16_t)(r->avail_idx & (r->qsize - 1)))
					  : r->free_ids[--r->nfree];
		uint64_t gpa = r->buf_gpa + (uint64_t)id * BUF_SIZE;

		if (r->in_order)
			r->nfree--;
		if (!r->rx)
			fill_tx(r, id);
		if (!r->packed) {
			struct vre_desc *d = &r->desc[id];

			d->addr = gpa;
			d->len = len;
			d->flags = wflag;
			d->next = 0;
			r->avail->ring[r->avail_idx & (r->qsize - 1)] = id;
			r->avail_idx++;
			continue;
		}
		struct vre_packed_desc *d = &r->pdesc[r->next_avail];

		d->addr = gpa;
		d->len = len;
		d->id = id;
		__atomic_store_n(&d->flags, (uint16_t)(wflag | (r->avail_wrap ? VRE_PACKED_DESC_F_AVAIL
									  : VRE_PACKED_DESC_F_USED)),
				 __ATOMIC_RELEASE);
		if (++r->next_avail == r->qsize) {
			r->next_avail = 0;
			r->avail_wrap = !r->avail_wrap;
		}
	}
	if (!r->packed)
		__atomic_store_n(&r->avail->idx, r->avail_idx, __ATOMIC_RELEASE);
}

static void drv_check(struct ring *r, uint32_t id, uint32_t len)
{
	if (id >= r->qsize) {
		r->bad++;
		return;
	}
	if (r->rx) {
		const uint8_t *b = r->buf_hva + (size_t)id * BUF_SIZE;
		uint32_t s;
		uint16_t nbufs;

		memcpy(&s, b + HDR_LEN + 14, sizeof(s));
		memcpy(&nbufs, b + 10, sizeof(nbufs));
		if (len != HDR_LEN + r->frame || s != r->seq || (r->nq.mrg_rxbuf && nbufs != 1) ||
		    b[HDR_LEN + r->frame - 1] != (uint8_t)(s ^ 0x5a))
			r->bad++;
		r->seq++;
	} else if (len != 0) {
		r->bad++;
	}
	r->free_ids[r->nfree++] = (uint16_t)id;
}

/* In order (DPDK's virtio_xmit_cleanup_inorder[_packed] and
 * virtqueue_dequeue_burst_rx_inorder): TX chains are freed by count, up to
 * what the used index (split) or the id of the used descriptor (packed)
 * says, without reading their entries; RX entries are read by position,
 * and their id must be that position. */
static void drv_reap_inorder(struct ring *r)
{
	uint16_t mask = (uint16_t)(r->qsize - 1);

	if (!r->packed) {
		uint16_t end = __atomic_load_n(&r->used->idx, __ATOMIC_ACQUIRE);

		for (; r->used_idx != end; r->used_idx++) {
			const struct vre_used_elem *e = &r->used->ring[r->used_idx & mask];

			if (r->rx) {
				if (e->id != (r->used_idx & mask))
					r->bad++;
				drv_check(r, r->used_idx & mask, e->len);
			} else {
				r->nfree++; /* drv_check would read len: the PMD does not */
			}
		}
		return;
	}
	for (;;) {
		struct vre_packed_desc *d = &r->pdesc[r->next_used];
		uint16_t f = __atomic_load_n(&d->flags, __ATOMIC_ACQUIRE), last;
		bool a = f & VRE_PACKED_DESC_F_AVAIL, u = f & VRE_PACKED_DESC_F_USED;

		if (a != u || u != r->used_wrap || r->nfree == r->qsize)
			return;
		last = d->id;
		if (r->rx && last != r->next_used)
			r->bad++;
		if (r->rx)
			drv_check(r, last, d->len);
		for (;;) {
			uint16_t at = r->next_used;

			if (!r->rx)
				r->nfree++;
			if (++r->next_used == r->qsize) {
				r->next_used = 0;
				r->used_wrap = !r->used_wrap;
			}
			if (at == last)
				break;
			if (r->rx || r->nfree == r->qsize) {
				r->bad++;
				return;
			}
		}
	}
}

static void drv_reap(struct ring *r)
{
	if (r->in_order) {
		drv_reap_inorder(r);
		return;
	}
	if (!r->packed) {
		uint16_t end = __atomic_load_n(&r->used->idx, __ATOMIC_ACQUIRE);

		while (r->used_idx != end) {
			const struct vre_used_elem *e = &r->used->ring[r->used_idx & (r->qsize - 1)];

			drv_check(r, e->id, e->len);
			r->used_idx++;
		}
		return;
	}
	for (;;) {
		struct vre_packed_desc *d = &r->pdesc[r->next_used];
		uint16_t f = __atomic_load_n(&d->flags, __ATOMIC_ACQUIRE);
		bool a = f & VRE_PACKED_DESC_F_AVAIL, u = f & VRE_PACKED_DESC_F_USED;

		if (a != u || u != r->used_wrap || r->nfree == r->qsize)
			return;
		drv_check(r, d->id, d->len);
		if (++r->next_used == r->qsize) {
			r->next_used = 0;
			r->used_wrap = !r->used_wrap;
		}
	}
}

/* What a switch worker does for one TX burst (examples/switch/fwd.c
 * tx_poll): the fused path, else the general one; the function callgrind
 * counts. */
static bool general_only; /* -g: without the fused path */

__attribute__((noinline)) int fwd_burst(struct vre_net_queue *src, struct vre_net_queue *dst,
					struct vre_net_tx_burst *b)
{
	int n, taken;

	if (!general_only) {
		n = vre_net_forward_fused(src, dst);
		if (n != -EAGAIN)
			return n;
	}
	n = vre_net_tx_fetch(src, b);
	taken = b->n;

	if (n < 0 || taken == 0)
		return n < 0 ? n : 0;
	if (b->npkts)
		vre_net_rx_put(dst, b, b->npkts >= 32 ? UINT32_MAX : (1u << b->npkts) - 1);
	vre_net_tx_done(src, b);
	return taken;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	static struct guest ga, gb;
	static struct ring tx, rx;
	static struct vre_net_tx_burst burst;
	bool packed = true, loop = false, mrg = true, intr = false, in_order = false, ol = false;
	bool logging = false;
	static struct vre_dirty_log log;
	unsigned long qsize = 256, frame = 60;
	uint64_t npkts = 1000000, pkts = 0, t0, dev = 0;
	size_t glen;
	int opt;

	while ((opt = getopt(argc, argv, "n:r:s:q:lMeoOgLh")) != -1) {
		switch (opt) {
		case 'n': npkts = strtoull(optarg, NULL, 0); break;
		case 'r': packed = strcmp(optarg, "split") != 0; break;
		case 's': frame = strtoul(optarg, NULL, 0); break;
		case 'q': qsize = strtoul(optarg, NULL, 0); break;
		case 'l': loop = true; break;
		case 'M': mrg = false; break;
		case 'e': intr = true; break;
		case 'o': in_order = true; break;
		case 'O': ol = true; break;
		case 'g': general_only = true; break;
		case 'L': logging = true; break;
		default:
			fprintf(stderr, "usage: net_bench [-n PACKETS] [-r split|packed] [-s FRAME] "
				"[-q QSIZE] [-l loopback] [-M no mrg_rxbuf] [-e notifications on] "
				"[-o in order] [-O offloads negotiated] [-g general path only] "
				"[-L dirty logging on]\n");
			return opt == 'h' ? 0 : 2;
		}
	}
	if (frame < 18 || frame + HDR_LEN > BUF_SIZE || qsize < 32 || qsize > MAX_QSIZE ||
	    (qsize & (qsize - 1))) {
		fprintf(stderr, "net_bench: -s 18..%u, -q a power of two 32..%u\n",
			BUF_SIZE - HDR_LEN, MAX_QSIZE);
		return 2;
	}
	glen = 2 * (qsize * BUF_SIZE + 4096 * 4 + 16 * qsize * 2);
	if (guest_init(&ga, 0x40000000ull, glen) || (!loop && guest_init(&gb, 0x80000000ull, glen)) ||
	    ring_init(&tx, &ga, packed, false, (uint16_t)qsize, (uint32_t)frame, mrg, intr,
		      in_order) ||
	    ring_init(&rx, loop ? &ga : &gb, packed, true, (uint16_t)qsize, (uint32_t)frame, mrg,
		      intr, in_order)) {
		fprintf(stderr, "net_bench: setup failed\n");
		return 1;
	}
	rx.frame = (uint32_t)frame;
	if (ol) {
		tx.nq.ol_tx = VRE_OL_CSUM | VRE_OL_TSO4 | VRE_OL_TSO6 | VRE_OL_ECN;
		rx.nq.ol_rx = tx.nq.ol_tx;
		rx.nq.mtu = 1500;
	}
	if (logging) {
		/* as during a live migration: one bitmap over both guests' GPAs
		 * (up to 0x80000000 + glen), rings logged at their own GPAs */
		uint64_t pages = (0x80000000ull + glen) / 4096 + 64;
		uint32_t hint = 0;
		uint64_t tg = 0, rg = 0;

		log.bits = calloc(pages / 64 + 1, 8);
		log.npages = pages;
		vre_mem_hva_to_gpa(tx.q.vq.mem, &hint, packed ? (void *)tx.pdesc : (void *)tx.used,
				   16, &tg);
		hint = 0;
		vre_mem_hva_to_gpa(rx.q.vq.mem, &hint, packed ? (void *)rx.pdesc : (void *)rx.used,
				   16, &rg);
		vre_vq_set_log(&tx.q.vq, &log, true, tg, tg);
		vre_vq_set_log(&rx.q.vq, &log, true, rg, rg);
	}
	drv_post(&tx);
	drv_post(&rx);
	t0 = now_ns();
	while (pkts < npkts) {
		uint64_t t = now_ns();
		int n = fwd_burst(&tx.nq, &rx.nq, &burst);

		dev += now_ns() - t;
		if (n <= 0) {
			fprintf(stderr, "net_bench: burst returned %d\n", n);
			return 1;
		}
		pkts += (uint64_t)n;
		drv_reap(&tx);
		drv_reap(&rx);
		drv_post(&rx);
		drv_post(&tx);
	}
	drv_reap(&rx);
	if (tx.bad || rx.bad || rx.seq != pkts || tx.q.vq.broken || rx.q.vq.broken ||
	    rx.nq.st.packets != pkts) {
		fprintf(stderr, "net_bench: check failed: bad %llu/%llu, delivered %u of %llu\n",
			(unsigned long long)tx.bad, (unsigned long long)rx.bad, rx.seq,
			(unsigned long long)pkts);
		return 1;
	}
	printf("%s %s %luB frame%s%s%s%s%s%s: %llu packets, device %.1f ns/pkt, with drivers %.1f ns/pkt\n",
	       packed ? "packed" : "split", loop ? "loopback" : "xconnect", frame,
	       mrg ? "" : " no-mrg", intr ? " notify-on" : "", in_order ? " in-order" : "",
	       general_only ? " general" : "", ol ? " offloads" : "", logging ? " dirty-log" : "",
	       (unsigned long long)pkts,
	       (double)dev / (double)pkts, (double)(now_ns() - t0) / (double)pkts);
	return 0;
}
