/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Dirty-page logging (live migration): the bitmap arithmetic, and the
 * device's writes into guest memory against the bits it set.
 *
 * The shadow of what the device wrote is taken independently of the code
 * under test: guest memory is filled with a pattern, copied before the
 * traffic and compared after it; every byte that changed was written by the
 * device (the test itself writes only before the snapshot), and its page
 * must have its bit set. With logging off the bitmap must stay all zero.
 * Runs over the real split and packed rings played by the test drivers,
 * single and mergeable RX buffers, chains of one and of three descriptors.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "net_guest.h"
#include "rig.h"
#include "vdrv_split.h"
#include "vre_dirty_log.h"
#include "vre_net.h"

#define F(b) (1ull << (b))
#define F_V1 F(VRE_F_VERSION_1)
#define F_MRG F(VRE_NET_F_MRG_RXBUF)
#define HEAP (2u << 20)

/* ---- the bitmap ---------------------------------------------------------- */

static unsigned popcount_words(const uint64_t *w, unsigned n)
{
	unsigned c = 0;

	for (unsigned i = 0; i < n; i++)
		c += (unsigned)__builtin_popcountll(w[i]);
	return c;
}

static bool bit(const uint64_t *w, uint64_t page)
{
	return (w[page / 64] >> (page % 64)) & 1;
}

START_TEST(test_bits_and_bounds)
{
	/* 3 words of log, a 4th word as a canary the log does not own */
	uint64_t w[4] = { 0 };
	struct vre_dirty_log log = { .bits = w, .npages = 3 * 64 };

	vre_dirty_log_gpa(&log, 0, 1);
	ck_assert(bit(w, 0));
	ck_assert_uint_eq(popcount_words(w, 4), 1);
	vre_dirty_log_gpa(&log, 4095, 2); /* crosses into page 1 */
	ck_assert(bit(w, 1));
	ck_assert_uint_eq(popcount_words(w, 4), 2);
	/* a run across a word boundary: pages 60..70 */
	vre_dirty_log_gpa(&log, 60 * 4096ull + 100, 10 * 4096ull);
	for (uint64_t p = 60; p <= 70; p++)
		ck_assert(bit(w, p));
	ck_assert_uint_eq(popcount_words(w, 4), 2 + 11);
	/* len 0 marks nothing */
	vre_dirty_log_gpa(&log, 100 * 4096ull, 0);
	ck_assert(!bit(w, 100));
	/* clipped at the log's end: the canary word stays 0 */
	vre_dirty_log_gpa(&log, 190 * 4096ull, 1ull << 30);
	ck_assert(bit(w, 190) && bit(w, 191));
	ck_assert_uint_eq(w[3], 0);
	vre_dirty_log_gpa(&log, 1ull << 40, 4096);          /* far beyond */
	vre_dirty_log_gpa(&log, UINT64_MAX - 10, 100);      /* wraps */
	vre_dirty_log_gpa(&log, UINT64_MAX - 4095, 4096);   /* the last page */
	ck_assert_uint_eq(w[3], 0);
	/* a log of 0 pages is never touched */
	struct vre_dirty_log none = { .bits = &w[3], .npages = 0 };
	vre_dirty_log_gpa(&none, 0, 4096);
	ck_assert_uint_eq(w[3], 0);
}
END_TEST

START_TEST(test_batch_and_reverse_translation)
{
	uint64_t w[2] = { 0 };
	struct vre_dirty_log log = { .bits = w, .npages = 128 };
	static uint8_t mem0[8 * 4096], mem1[4 * 4096], outside[64];
	struct vre_mem_map m;
	struct vre_mem_region r0 = { .gpa = 0x10000, .size = sizeof(mem0), .uva = 0x10000, .hva = mem0 };
	struct vre_mem_region r1 = { .gpa = 0x40000, .size = sizeof(mem1), .uva = 0x40000, .hva = mem1 };
	struct vre_log_batch b;
	uint32_t hint = 0;
	/* a chain's writable part over both regions and the end of the first */
	struct iovec iov[3] = {
		{ mem0 + 4096 * 7 + 4000, 96 }, /* page 0x17 */
		{ mem1 + 10, 5000 },            /* pages 0x40, 0x41 */
		{ mem0, 4096 },                 /* page 0x10: beyond len, unmarked */
	};

	vre_mem_map_init(&m);
	ck_assert_int_eq(vre_mem_map_add(&m, &r0), 0);
	ck_assert_int_eq(vre_mem_map_add(&m, &r1), 0);
	vre_log_batch_init(&b, &log);
	ck_assert_int_eq(vre_log_batch_iov(&b, &m, &hint, iov, 3, 96 + 5000), 0);
	/* nothing reaches the shared bitmap before the flush... */
	vre_log_batch_flush(&b);
	ck_assert(bit(w, 0x17) && bit(w, 0x40) && bit(w, 0x41));
	ck_assert(!bit(w, 0x10));
	ck_assert_uint_eq(popcount_words(w, 2), 3);
	/* a pointer outside every region marks nothing and says so */
	struct iovec bad = { outside, 8 };
	ck_assert_int_eq(vre_log_batch_iov(&b, &m, &hint, &bad, 1, 8), -EFAULT);
	vre_log_batch_flush(&b);
	ck_assert_uint_eq(popcount_words(w, 2), 3);
}
END_TEST

/* ---- the device against the shadow ------------------------------------- */

struct snap {
	const struct vre_mem_map *m;
	uint8_t *copy[4];
};

static void snap_take(struct snap *s, const struct vre_mem_map *m)
{
	s->m = m;
	ck_assert_uint_le(m->nregions, 4);
	for (uint32_t i = 0; i < m->nregions; i++) {
		s->copy[i] = malloc(m->regions[i].size);
		memcpy(s->copy[i], m->regions[i].hva, m->regions[i].size);
	}
}

/* Every byte that changed since the snapshot has its page's bit; returns
 * the bytes that changed (the test's proof that it saw writes at all). */
static uint64_t snap_check(struct snap *s, const uint64_t *bits, uint64_t npages,
			   bool require)
{
	uint64_t changed = 0;

	for (uint32_t i = 0; i < s->m->nregions; i++) {
		const struct vre_mem_region *r = &s->m->regions[i];

		for (uint64_t off = 0; off < r->size; off++) {
			uint64_t page;

			if (r->hva[off] == s->copy[i][off])
				continue;
			changed++;
			page = (r->gpa + off) >> 12;
			ck_assert_uint_lt(page, npages);
			if (require && !bit(bits, page))
				ck_abort_msg("byte at gpa 0x%llx written, page not logged",
					     (unsigned long long)(r->gpa + off));
		}
		free(s->copy[i]);
	}
	return changed;
}

/* The ring's device-written part in GPA, as control computes it. */
static void log_on(struct guest *g, const struct vre_dirty_log *log)
{
	struct vre_vq *vq = &g->q.vq;
	uint32_t hint = 0;
	uint64_t ring, event = 0;
	const void *p = vq->packed ? (const void *)vq->pk.desc : (const void *)vq->sp.used;

	ck_assert_int_eq(vre_mem_hva_to_gpa(vq->mem, &hint, p, 16, &ring), 0);
	if (vq->packed)
		ck_assert_int_eq(vre_mem_hva_to_gpa(vq->mem, &hint, vq->pk.device, 4, &event), 0);
	vre_vq_set_log(vq, log, true, ring, event);
}

/* The shared rig (rig.h) and a dirty log per guest. */
struct log_rig {
	struct port net;
	uint64_t *bits, *tx_bits; /* one log per guest: their GPAs overlap */
	uint64_t npages;
	struct vre_dirty_log log, tx_log;
};

static void log_rig_open(struct log_rig *r, bool packed, uint64_t features, bool logging)
{
	memset(r, 0, sizeof(*r));
	port_create(&r->net, packed, features, true, HEAP);
	/* both guests' memory lies below 16 MiB: 4096 pages */
	r->npages = 4096;
	r->bits = calloc(r->npages / 64, 8);
	r->tx_bits = calloc(r->npages / 64, 8);
	r->log = (struct vre_dirty_log){ .bits = r->bits, .npages = r->npages };
	r->tx_log = (struct vre_dirty_log){ .bits = r->tx_bits, .npages = r->npages };
	if (logging) {
		log_on(r->net.rx, &r->log);
		log_on(r->net.tx, &r->tx_log);
	}
	port_start(&r->net);
}

static void log_rig_close(struct log_rig *r)
{
	port_close(&r->net);
	free(r->bits);
	free(r->tx_bits);
}

/* n frames of len bytes on r's TX guest. */
static void send_frames(struct log_rig *r, unsigned n, uint32_t len)
{
	static uint8_t f[9000];

	ck_assert_uint_le(len, sizeof(f));
	for (unsigned k = 0; k < n; k++) {
		make_frame(f, len, k);
		ck_assert_int_ge(send_frame(r->net.tx, r->net.hdr, f, len, false), 0);
	}
}

/* Forwards n packets from r's TX guest to its RX guest: the general path
 * alone, or as vre-switch does it, the fused path first and the general
 * one when it steps aside (-EAGAIN). */
static void forward_all(struct log_rig *r, bool fused, int n)
{
	for (int tries = 0; n > 0 && tries < 16; tries++) {
		int k = fused ? vre_net_forward_fused(r->net.txq, r->net.rxq) : -EAGAIN;

		if (k == -EAGAIN)
			k = vre_net_forward(r->net.txq, r->net.rxq);
		ck_assert_int_ge(k, 0);
		n -= k;
	}
	ck_assert_int_eq(n, 0);
}

/* One scenario: posted RX chains, a few bursts of frames of several sizes
 * (one burst of 32 takes the fast loop, odd sizes the general paths),
 * then the shadow check. _i: bit 0 packed, bit 1 mergeable, bit 2 three
 * descriptors per RX chain, bit 3 logging off, bit 4 the switch's way
 * (the fused path first: it must step aside while logging is on, or its
 * writes would go unlogged). */
START_TEST(test_net_rx_logged)
{
	bool packed = _i & 1, mrg = _i & 2, three = _i & 4, off = _i & 8, fused = _i & 16;
	static const uint32_t lens[] = { 60, 1514, 3000, 9000 };
	struct snap srx, stx;
	struct log_rig r;
	uint64_t changed;

	log_rig_open(&r, packed, F_V1 | (mrg ? F_MRG : 0), !off);
	post_rx(r.net.rx, 96, mrg ? 1526 : 9100, three ? 3 : 1);
	send_frames(&r, 32, 60);
	for (unsigned k = 0; k < 4; k++)
		send_frames(&r, 3, lens[k]);
	snap_take(&srx, r.net.rx->q.vq.mem);
	snap_take(&stx, r.net.tx->q.vq.mem);
	if (fused) {
		forward_all(&r, true, 44);
	} else {
		ck_assert_int_eq(vre_net_forward(r.net.txq, r.net.rxq), 32);
		ck_assert_int_eq(vre_net_forward(r.net.txq, r.net.rxq), 12);
	}
	changed = snap_check(&srx, r.bits, r.npages, !off);
	ck_assert_uint_gt(changed, 32 * 60);
	changed = snap_check(&stx, r.tx_bits, r.npages, !off); /* TX: the used ring only */
	ck_assert_uint_gt(changed, 0);
	if (off) {
		ck_assert_uint_eq(popcount_words(r.bits, (unsigned)(r.npages / 64)), 0);
		ck_assert_uint_eq(popcount_words(r.tx_bits, (unsigned)(r.npages / 64)), 0);
	} else {
		ck_assert_uint_gt(popcount_words(r.bits, (unsigned)(r.npages / 64)), 0);
		/* TX writes only its used ring: a page or two */
		ck_assert_uint_le(popcount_words(r.tx_bits, (unsigned)(r.npages / 64)), 2);
	}
	log_rig_close(&r);
}
END_TEST

/* Notification flags and event indexes the device writes are logged too. */
START_TEST(test_notify_writes_logged)
{
	bool packed = _i;
	uint64_t changed;
	struct snap s;
	struct log_rig r;

	log_rig_open(&r, packed, F_V1, true);
	/* one packet first, so the avail position (split: avail_event) moves */
	post_rx(r.net.rx, 1, 2048, 1);
	send_frames(&r, 1, 60);
	ck_assert_int_eq(vre_net_forward(r.net.txq, r.net.rxq), 1);
	/* each call checked on its own: both write the same word, so a
	 * check after the pair would not see one of them unlogged */
	vre_vq_notify_disable(&r.net.rx->q.vq);
	for (unsigned k = 0; k < 2; k++) {
		memset(r.bits, 0, r.npages / 8);
		snap_take(&s, r.net.rx->q.vq.mem);
		if (k == 0)
			vre_vq_notify_enable(&r.net.rx->q.vq);
		else
			vre_vq_notify_disable(&r.net.rx->q.vq);
		changed = snap_check(&s, r.bits, r.npages, true);
		/* split with EVENT_IDX: disabling writes nothing */
		if (k == 0 || packed)
			ck_assert_uint_gt(changed, 0);
	}
	log_rig_close(&r);
}
END_TEST

/* A ring whose frontend did not set VHOST_VRING_F_LOG: buffers are logged,
 * its used ring is not. */
START_TEST(test_ring_flag_off)
{
	struct log_rig r;
	struct vre_vq *vq;
	uint32_t hint = 0;
	uint64_t used;

	log_rig_open(&r, false, F_V1, true);
	vq = &r.net.rx->q.vq;
	vre_vq_set_log(vq, &r.log, false, 0, 0);
	memset(r.bits, 0, r.npages / 8); /* what starting the queue marked */
	ck_assert_int_eq(vre_mem_hva_to_gpa(vq->mem, &hint, vq->sp.used, 8, &used), 0);
	post_rx(r.net.rx, 4, 9100, 1);
	send_frames(&r, 1, 60);
	ck_assert_int_eq(vre_net_forward(r.net.txq, r.net.rxq), 1);
	ck_assert(!bit(r.bits, used >> 12));
	ck_assert_uint_gt(popcount_words(r.bits, (unsigned)(r.npages / 64)), 0);
	log_rig_close(&r);
}
END_TEST

/* Indirect chains at ring level: the iovecs fetched through an indirect
 * table translate back to the GPAs the driver gave. */
START_TEST(test_indirect_iov_reverse)
{
	struct sdrv *d = sdrv_new(16, 1 << 20, 64 << 10); /* two regions */
	struct vre_vq_params p;
	struct vre_vq vq;
	struct vre_chain c;
	struct iovec pool[8];
	uint64_t w[64] = { 0 };
	struct vre_dirty_log log = { .bits = w, .npages = 64 * 64 };
	struct vre_log_batch b;
	uint64_t buf = sdrv_end0(d) - 100; /* spans both regions */
	uint64_t table = sdrv_alloc(d, 64);
	struct sdrv_buf bufs[2] = { { buf, 4196, true }, { SDRV_GPA0 + 0x8000, 100, true } };

	sdrv_params(d, &p, false, true);
	ck_assert_int_eq(vre_vq_init(&vq, &p), 0);
	ck_assert_int_ge(sdrv_add_indirect(d, bufs, 2, table, 1), 0);
	sdrv_kick(d);
	ck_assert_int_eq(vre_vq_fetch(&vq, &c, 1, pool, 8), 1);
	ck_assert_uint_eq(c.nw, 3);
	vre_vq_set_log(&vq, &log, false, 0, 0);
	vre_log_batch_init(&b, &log);
	vre_vq_log_iov(&vq, &b, c.iov + c.nr, c.nw, c.wlen);
	vre_log_batch_flush(&b);
	ck_assert(bit(w, buf >> 12) && bit(w, (buf + 4195) >> 12));
	ck_assert(bit(w, (SDRV_GPA0 + 0x8000) >> 12));
	ck_assert_uint_eq(popcount_words(w, 64), 3);
	vre_vq_fini(&vq);
	sdrv_free(d);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("dirty_log");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_bits_and_bounds);
	tcase_add_test(tc, test_batch_and_reverse_translation);
	tcase_add_loop_test(tc, test_net_rx_logged, 0, 32);
	tcase_add_loop_test(tc, test_notify_writes_logged, 0, 2);
	tcase_add_test(tc, test_ring_flag_off);
	tcase_add_test(tc, test_indirect_iov_reverse);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
