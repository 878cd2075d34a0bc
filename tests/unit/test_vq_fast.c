/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The rings' fast-path entries, split and packed (loop index 0 split, 1
 * packed):
 * - VIRTIO_F_IN_ORDER, against the test drivers in their in-order mode
 *   (sdrv_set_in_order, pdrv_set_in_order), which accept only what an
 *   in-order driver such as DPDK's virtio PMD would: vre_vq_complete_inorder's
 *   one-entry batches over laps of small rings with chains of several
 *   descriptors, per-chain completions in order, the drivers' own refusal
 *   of out-of-order completions, the split resync rule, and inflight
 *   recovery after a crash at every store of in-order batches (built with
 *   the step hook);
 * - runs (vre_vq_take_run, untake, complete_run): the common chain only,
 *   fetch's rules for it, what is left goes to fetch untouched.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdrv_packed.h"
#include "vdrv_split.h"
#include "vre_log.h"
#include "vring_internal.h"

#define PK_GPA 0x200000ull
#define POOL 256

/* One queue and its driver, split (sdrv) or packed (pdrv over a buffer of
 * our own: ring, event areas, then a heap). */
struct w {
	bool packed;
	uint16_t size;
	struct sdrv *sd;
	uint8_t *mem;
	size_t mem_len;
	uint64_t heap;
	struct vre_mem_map map;
	struct pdrv *pd;
	uint64_t token[64]; /* packed: per id */
	struct vre_vq vq;
	void *inf;
	size_t inf_len;
	struct vre_chain ch[VRE_BURST];
	struct iovec pool[POOL];
};

static void w_params(struct w *w, struct vre_vq_params *p, bool in_order)
{
	if (w->packed) {
		size_t ring = vre_packed_desc_bytes(w->size);

		memset(p, 0, sizeof(*p));
		p->size = w->size;
		p->packed = true;
		p->mem = &w->map;
		p->desc = w->mem;
		p->driver = w->mem + ring;
		p->device = w->mem + ring + 4;
	} else {
		sdrv_params(w->sd, p, false, true);
	}
	p->indirect = true;
	p->in_order = in_order;
}

/* in_order: negotiated (the device side); drv_in_order: the driver checks
 * in-order completions (no_batch: each chain needs its own entry). */
static struct w *w_new(bool packed, uint16_t size, bool in_order, bool drv_in_order,
		       bool no_batch, bool inflight)
{
	struct w *w = calloc(1, sizeof(*w));
	struct vre_vq_params p;

	ck_assert_ptr_nonnull(w);
	w->packed = packed;
	w->size = size;
	if (packed) {
		struct vre_mem_region r = { .gpa = PK_GPA, .uva = 0x7e0000000000ull, .fd = -1 };

		w->mem_len = 1 << 16;
		w->mem = aligned_alloc(4096, w->mem_len);
		w->pd = calloc(1, sizeof(*w->pd));
		ck_assert(w->mem && w->pd);
		memset(w->mem, 0, w->mem_len);
		r.size = w->mem_len;
		r.hva = w->mem;
		vre_mem_map_init(&w->map);
		ck_assert_int_eq(vre_mem_map_add(&w->map, &r), 0);
		w->heap = PK_GPA + 4096;
		w_params(w, &p, in_order);
		pdrv_init(w->pd, size, p.desc, p.driver, p.device);
		if (drv_in_order)
			pdrv_set_in_order(w->pd, no_batch);
	} else {
		w->sd = sdrv_new(size, 1 << 16, 0);
		if (drv_in_order)
			sdrv_set_in_order(w->sd, no_batch);
		w_params(w, &p, in_order);
	}
	ck_assert_int_eq(vre_vq_init(&w->vq, &p), 0);
	if (inflight) {
		w->inf_len = vre_inflight_queue_bytes(size, packed);
		w->inf = calloc(1, w->inf_len);
		ck_assert_int_eq(vre_vq_inflight_attach(&w->vq, w->inf, w->inf_len, 0), 0);
	}
	return w;
}

static void w_free(struct w *w)
{
	vre_vq_fini(&w->vq);
	if (w->sd)
		sdrv_free(w->sd);
	if (w->pd) {
		pdrv_fini(w->pd);
		free(w->pd);
	}
	free(w->mem);
	free(w->inf);
	free(w);
}

static uint8_t *w_host(struct w *w, size_t *len)
{
	*len = w->packed ? w->mem_len : w->sd->reg[0].len;
	return w->packed ? w->mem : w->sd->reg[0].hva;
}

static uint64_t w_alloc(struct w *w, size_t len)
{
	uint64_t g;

	if (!w->packed)
		return sdrv_alloc(w->sd, len);
	g = w->heap;
	w->heap = (w->heap + len + 15) & ~15ull;
	ck_assert_uint_le(w->heap, PK_GPA + w->mem_len);
	return g;
}

/* A chain of ndesc readable descriptors (8 bytes each; the last writable
 * when write); returns its id (split head / packed buffer id). */
static int w_post(struct w *w, unsigned ndesc, bool write, uint64_t token)
{
	if (w->packed) {
		struct pdrv_desc v[8];
		uint16_t id = w->pd->in_order ? w->pd->avail_idx : (uint16_t)(token % w->size);
		int r;

		for (unsigned i = 0; i < ndesc; i++)
			v[i] = (struct pdrv_desc){ w_alloc(w, 8), 8,
						   write && i + 1 == ndesc ? VRE_DESC_F_WRITE : 0 };
		r = pdrv_post(w->pd, v, ndesc, id, false);
		if (r < 0)
			return r;
		w->token[id] = token;
		return id;
	}
	struct sdrv_buf b[8];

	for (unsigned i = 0; i < ndesc; i++)
		b[i] = (struct sdrv_buf){ w_alloc(w, 8), 8, write && i + 1 == ndesc };
	int head = sdrv_add(w->sd, b, ndesc, token);

	if (head >= 0)
		sdrv_kick(w->sd);
	return head;
}

static int w_get_used(struct w *w, uint16_t *id, uint32_t *len, uint64_t *token)
{
	int r;

	if (!w->packed)
		return sdrv_get_used(w->sd, id, len, token);
	r = pdrv_get_used(w->pd, id, len);
	if (r == 1 && token)
		*token = w->token[*id];
	return r;
}

static unsigned w_free_descs(const struct w *w)
{
	return w->packed ? w->pd->free_slots : w->sd->num_free;
}

/* ------------------------------------------------- one-entry batches */

/*
 * Laps of an 8-entry ring: chains of 1-3 descriptors (the in-order driver
 * lays them out in ring order), fetched in bursts of 1-5 and completed in
 * order, in one or two calls per burst. The driver takes every chain
 * exactly once, in order, with len 0; the device wrote one used entry per
 * call: split: the used index moved by the burst, and every other used
 * element kept the marker; packed: one used descriptor per call.
 */
START_TEST(test_batches_over_laps)
{
	bool packed = _i;
	struct w *w = w_new(packed, 8, true, true, false, false);
	uint64_t next_token = 1, want_token = 1;
	uint32_t rnd = 12345;
	unsigned posted = 0, calls = 0;

	for (unsigned round = 0; round < 300; round++) {
		unsigned nd[8], n = 0, k;
		int got;

		/* post while it fits */
		for (;;) {
			unsigned ndesc = 1 + (rnd = rnd * 1103515245u + 12345u) % 3;

			if (ndesc > w_free_descs(w) || n == 5)
				break;
			ck_assert_int_ge(w_post(w, ndesc, false, next_token++), 0);
			nd[n++] = ndesc;
			posted++;
		}
		ck_assert_uint_gt(n, 0);
		if (!packed)
			for (unsigned i = 0; i < 8; i++)
				w->sd->used->ring[i].id = 0xdead;
		got = vre_vq_fetch(&w->vq, w->ch, VRE_BURST, w->pool, POOL);
		ck_assert_int_eq(got, (int)n);
		for (unsigned i = 0; i < n; i++)
			ck_assert_uint_eq(w->ch[i].ndesc, nd[i]);
		/* one call, or two (split at k) */
		k = round % 3 == 0 && n > 1 ? n / 2 : n;
		{
			uint16_t used0 = packed ? 0 : w->sd->used->idx;

			ck_assert_int_eq(vre_vq_complete_inorder(&w->vq, w->ch, k), 0);
			calls++;
			if (k < n) {
				ck_assert_int_eq(vre_vq_complete_inorder(&w->vq, w->ch + k, n - k), 0);
				calls++;
			}
			if (!packed) {
				unsigned written = 0;

				ck_assert_uint_eq((uint16_t)(w->sd->used->idx - used0), n);
				for (unsigned i = 0; i < 8; i++)
					written += w->sd->used->ring[i].id != 0xdead;
				ck_assert_uint_eq(written, k < n ? 2 : 1);
				ck_assert_uint_eq(w->sd->used->ring[used0 & 7].id, w->ch[k - 1].id);
			}
		}
		for (unsigned i = 0; i < n; i++) {
			uint16_t id;
			uint32_t len;
			uint64_t tok;

			ck_assert_int_eq(w_get_used(w, &id, &len, &tok), 1);
			ck_assert_uint_eq(id, w->ch[i].id);
			ck_assert_uint_eq(tok, want_token++);
			ck_assert_uint_eq(len, 0);
		}
		ck_assert_int_eq(w_get_used(w, NULL, NULL, NULL), 0);
		ck_assert_uint_eq(w_free_descs(w), 8);
	}
	ck_assert_uint_gt(posted, 600);
	ck_assert_uint_eq(w->vq.broken, 0);
	ck_assert_uint_eq(w->vq.last_avail_idx, w->vq.last_used_idx);
	if (packed)
		ck_assert_uint_eq(w->vq.used_wrap, w->vq.avail_wrap);
	(void)calls;
	w_free(w);
}
END_TEST

/* In order, chains completed one entry each (vre_vq_complete_fetched, the
 * RX path) satisfy a driver that reads every entry; without IN_ORDER
 * negotiated complete_inorder writes every entry, for any driver. */
START_TEST(test_every_entry)
{
	bool packed = _i;

	for (int neg = 0; neg < 2; neg++) {
		struct w *w = w_new(packed, 16, neg, neg, true, false);

		for (unsigned round = 0; round < 40; round++) {
			struct vre_used u[VRE_BURST];
			unsigned n = 0;
			int got;

			while (w_free_descs(w) >= 2 && n < 6) {
				ck_assert_int_ge(w_post(w, 1 + n % 2, true, 100 + n), 0);
				n++;
			}
			got = vre_vq_fetch(&w->vq, w->ch, VRE_BURST, w->pool, POOL);
			ck_assert_int_eq(got, (int)n);
			if (neg || round % 2) {
				for (unsigned i = 0; i < n; i++)
					u[i] = vre_used_of(&w->ch[i], 3 + i);
				ck_assert_int_eq(vre_vq_complete_fetched(&w->vq, u, n), 0);
			} else {
				ck_assert_int_eq(vre_vq_complete_inorder(&w->vq, w->ch, n), 0);
			}
			for (unsigned i = 0; i < n; i++) {
				uint16_t id;
				uint32_t len;

				ck_assert_int_eq(w_get_used(w, &id, &len, NULL), 1);
				ck_assert_uint_eq(id, w->ch[i].id);
				ck_assert_uint_eq(len, neg || round % 2 ? 3 + i : 0);
			}
			ck_assert_int_eq(w_get_used(w, NULL, NULL, NULL), 0);
		}
		w_free(w);
	}
}
END_TEST

/* The in-order drivers refuse what an in-order device never writes, so the
 * tests here can fail: split: an entry for the second chain while the first
 * is still out (one index step for it); both, with no_batch (a driver that
 * reads each entry): the second chain's entry first, and a batch of two. A
 * packed driver that batches cannot tell the first case from a batch (it
 * has no used index to count), as DPDK's cannot. */
START_TEST(test_driver_refuses_out_of_order)
{
	bool packed = _i;
	struct w *w;
	struct vre_used u;
	uint16_t id;
	uint32_t len;

	for (int c = packed; c < 3; c++) {
		w = w_new(packed, 8, true, true, c > 0, false);
		ck_assert_int_ge(w_post(w, 1, false, 1), 0);
		ck_assert_int_ge(w_post(w, 2, false, 2), 0);
		ck_assert_int_eq(vre_vq_fetch(&w->vq, w->ch, VRE_BURST, w->pool, POOL), 2);
		if (c < 2) {
			u = vre_used_of(&w->ch[1], 0);
			ck_assert_int_eq(vre_vq_complete_fetched(&w->vq, &u, 1), 0);
		} else {
			ck_assert_int_eq(vre_vq_complete_inorder(&w->vq, w->ch, 2), 0);
		}
		ck_assert_int_eq(w_get_used(w, &id, &len, NULL), -EPROTO);
		w_free(w);
	}
}
END_TEST

/* Split without inflight records, IN_ORDER: a base ahead of the used index
 * is not kept (the chains between would never be completed at their
 * positions): the queue resumes from the used index. Without IN_ORDER the
 * same base stands. */
START_TEST(test_resync_in_order)
{
	for (int neg = 0; neg < 2; neg++) {
		struct w *w = w_new(false, 8, neg, false, false, false);

		w->sd->used->idx = 5;
		ck_assert_int_eq(vre_vq_set_base(&w->vq, 7), 0);
		ck_assert_int_eq(vre_vq_resync_to_used(&w->vq), neg ? 1 : 0);
		ck_assert_uint_eq(w->vq.last_avail_idx, neg ? 5 : 7);
		ck_assert_uint_eq(w->vq.last_used_idx, 5);
		ck_assert_int_eq(vre_vq_set_base(&w->vq, 5), 0);
		ck_assert_int_eq(vre_vq_resync_to_used(&w->vq), 0);
		w_free(w);
	}
}
END_TEST

/* ---------------------------------------------------------- runs */

/* A chain from explicit buffers (split: sdrv_buf; packed: the same as
 * pdrv descriptors), or one INDIRECT descriptor over a table of them. */
static int w_post_bufs(struct w *w, const struct sdrv_buf *b, unsigned n, bool indirect,
		       uint64_t token)
{
	if (w->packed) {
		struct pdrv_desc v[8];
		uint16_t id = w->pd->in_order ? w->pd->avail_idx : (uint16_t)(token % w->size);
		int r;

		if (indirect) {
			uint64_t t = w_alloc(w, 16 * n);
			struct vre_packed_desc *tab = (void *)(w->mem + (t - PK_GPA));

			for (unsigned i = 0; i < n; i++)
				tab[i] = (struct vre_packed_desc){ b[i].gpa, b[i].len, 0,
								   b[i].write ? VRE_DESC_F_WRITE : 0 };
			v[0] = (struct pdrv_desc){ t, 16 * n, VRE_DESC_F_INDIRECT };
			n = 1;
		} else {
			for (unsigned i = 0; i < n; i++)
				v[i] = (struct pdrv_desc){ b[i].gpa, b[i].len,
							   b[i].write ? VRE_DESC_F_WRITE : 0 };
		}
		r = pdrv_post(w->pd, v, n, id, false);
		if (r < 0)
			return r;
		w->token[id] = token;
		return id;
	}
	int head = indirect ? sdrv_add_indirect(w->sd, b, n, w_alloc(w, 16 * n), token)
			    : sdrv_add(w->sd, b, n, token);

	if (head >= 0)
		sdrv_kick(w->sd);
	return head;
}

/*
 * A run takes common chains only, in either direction, and stops at the
 * first that is not: two descriptors, the other direction, an empty
 * descriptor, an indirect one. Each stopper is then what fetch returns
 * next (read afresh), and the chains after it are fetch's too. Chains
 * given back with untake are fetched again, unchanged; their packed ids
 * are free again. complete_run returns lengths (with_len) or, in order,
 * one entry for a TX-like batch.
 */
START_TEST(test_run_takes_common_only)
{
	bool packed = _i;

	for (int stop = 0; stop < 4; stop++) {
		struct w *w = w_new(packed, 16, true, true, false, false);
		struct vre_run r;
		uint16_t id;
		uint32_t len;
		uint64_t tok;
		int ids[6];

		for (int i = 0; i < 6; i++) {
			struct sdrv_buf b[2] = { { w_alloc(w, 64), 64, true }, { w_alloc(w, 64), 64, true } };
			unsigned n = 1;
			bool ind = false;

			if (i == 3) {
				if (stop == 0)
					n = 2;
				else if (stop == 1)
					b[0].write = false;
				else if (stop == 2)
					b[0].len = 0;
				else
					ind = true;
			}
			ck_assert_int_ge(ids[i] = w_post_bufs(w, b, n, ind, 10 + i), 0);
		}
		/* readable asked: none is (-EAGAIN), and nothing moved */
		ck_assert_int_eq(vre_vq_take_run(&w->vq, &r, VRE_BURST, false), -EAGAIN);
		ck_assert_uint_eq(w->vq.last_avail_idx, 0);
		ck_assert_int_eq(vre_vq_take_run(&w->vq, &r, VRE_BURST, true), 3);
		for (int i = 0; i < 3; i++) {
			ck_assert_uint_eq(r.id[i], ids[i]);
			ck_assert_uint_eq(r.len[i], 64);
			memset(r.base[i], 0x11 * (i + 1), 64);
			r.len[i] = 10 + (uint32_t)i;
		}
		/* give back the third: fetch takes it, then the stopper */
		vre_vq_untake_run(&w->vq, &r, 2);
		ck_assert_uint_eq(r.n, 2);
		ck_assert_int_eq(vre_vq_complete_run(&w->vq, &r, 2, true), 0);
		ck_assert_int_eq(vre_vq_fetch(&w->vq, w->ch, 2, w->pool, POOL), 2);
		ck_assert_uint_eq(w->ch[0].id, ids[2]);
		ck_assert_uint_eq(w->ch[1].id, ids[3]);
		ck_assert_uint_eq(w->ch[1].ndesc, stop == 0 ? 2 : 1);
		ck_assert_int_eq(vre_vq_complete_inorder(&w->vq, w->ch, 2), 0);
		/* the rest: a run again, completed as a TX batch */
		ck_assert_int_eq(vre_vq_take_run(&w->vq, &r, VRE_BURST, true), 2);
		ck_assert_int_eq(vre_vq_complete_run(&w->vq, &r, 2, false), 0);
		ck_assert_int_eq(vre_vq_take_run(&w->vq, &r, VRE_BURST, true), 0);
		for (int i = 0; i < 6; i++) {
			ck_assert_int_eq(w_get_used(w, &id, &len, &tok), 1);
			ck_assert_uint_eq(tok, 10 + (uint64_t)i);
			if (i < 2) {
				ck_assert_uint_eq(len, 10 + (uint32_t)i);
			} else if (i >= 4) {
				ck_assert_uint_eq(len, i == 5 ? 0 : 64); /* in-order batch */
			}
		}
		ck_assert_int_eq(w_get_used(w, &id, &len, &tok), 0);
		ck_assert_uint_eq(w_free_descs(w), 16);
		ck_assert_uint_eq(w->vq.broken, 0);
		w_free(w);
	}
}
END_TEST

/* Fetch's rules hold for runs: a split head out of range stops the run and
 * fetch then breaks the queue; an avail index leap breaks it in the run;
 * a packed id already in flight stops the run (fetch breaks the queue);
 * a run never takes more slots than the queue holds. Queues with inflight
 * records (or resubmissions) do not take runs. */
START_TEST(test_run_rules)
{
	bool packed = _i;
	struct vre_run r;
	struct w *w = w_new(packed, 8, false, false, false, false);
	struct sdrv_buf b = { w_alloc(w, 64), 64, false };

	if (!packed) {
		ck_assert_int_ge(w_post_bufs(w, &b, 1, false, 1), 0);
		sdrv_post_raw(w->sd, 8); /* head out of range */
		sdrv_kick(w->sd);
		ck_assert_int_eq(vre_vq_take_run(&w->vq, &r, VRE_BURST, false), 1);
		ck_assert_int_eq(vre_vq_take_run(&w->vq, &r, VRE_BURST, false), -EAGAIN);
		ck_assert_int_eq(vre_vq_fetch(&w->vq, w->ch, VRE_BURST, w->pool, POOL), -EIO);
		ck_assert_uint_eq(w->vq.broken, VRE_RE_HEAD_OUT_OF_RANGE);
		ck_assert_int_eq(vre_vq_take_run(&w->vq, &r, VRE_BURST, false), -EIO);
		w_free(w);
		w = w_new(packed, 8, false, false, false, false);
		w->sd->avail->idx = 9;
		ck_assert_int_eq(vre_vq_take_run(&w->vq, &r, VRE_BURST, false), -EIO);
		ck_assert_uint_eq(w->vq.broken, VRE_RE_AVAIL_IDX_LEAP);
	} else {
		struct pdrv_desc d = { b.gpa, 64, 0 };

		ck_assert_int_eq(pdrv_post(w->pd, &d, 1, 3, false), 0);
		ck_assert_int_eq(pdrv_post(w->pd, &d, 1, 3, true), 0); /* id 3 again */
		ck_assert_int_eq(vre_vq_take_run(&w->vq, &r, VRE_BURST, false), 1);
		ck_assert_int_eq(vre_vq_take_run(&w->vq, &r, VRE_BURST, false), -EAGAIN);
		ck_assert_int_eq(vre_vq_fetch(&w->vq, w->ch, VRE_BURST, w->pool, POOL), -EIO);
		ck_assert_uint_eq(w->vq.broken, VRE_RE_ID_IN_USE);
	}
	w_free(w);
	/* a full ring taken: nothing more to take */
	w = w_new(packed, 8, false, false, false, false);
	for (int i = 0; i < 8; i++)
		ck_assert_int_ge(w_post(w, 1, false, (uint64_t)i), 0);
	ck_assert_int_eq(vre_vq_take_run(&w->vq, &r, VRE_BURST, false), 8);
	ck_assert_int_eq(vre_vq_take_run(&w->vq, &r, VRE_BURST, false), 0);
	w_free(w);
	/* inflight records: runs are not taken (fetch records chains) */
	w = w_new(packed, 8, false, false, false, true);
	ck_assert_int_ge(w_post(w, 1, false, 1), 0);
	ck_assert_int_eq(vre_vq_take_run(&w->vq, &r, VRE_BURST, false), -EAGAIN);
	ck_assert_int_eq(vre_vq_fetch(&w->vq, w->ch, VRE_BURST, w->pool, POOL), 1);
	w_free(w);
}
END_TEST

/* --------------------------------------------- crash at every step */

#define CR_CHAINS 5
static const unsigned cr_ndesc[CR_CHAINS] = { 1, 2, 1, 3, 1 };

struct snap {
	char step[40];
	uint8_t *host;
	uint8_t *inf;
};

static struct {
	struct w *w;
	struct snap s[128];
	unsigned n;
} cr;

static void snap_take(const char *step)
{
	struct snap *s = &cr.s[cr.n++];
	size_t len;
	uint8_t *h = w_host(cr.w, &len);

	ck_assert_uint_lt(cr.n, 128);
	snprintf(s->step, sizeof(s->step), "%s", step);
	s->host = malloc(len);
	s->inf = malloc(cr.w->inf_len);
	memcpy(s->host, h, len);
	memcpy(s->inf, cr.w->inf, cr.w->inf_len);
}

static void snap_hook(struct vre_vq *vq, const char *step)
{
	if (vq == &cr.w->vq)
		snap_take(step);
}

/*
 * A new process over snapshot s, with the driver as it was when it posted
 * the chains: the driver first takes what the ring shows as used; the
 * new queue recovers from the region and is run dry with in-order batches
 * of up to 2; the in-order driver must accept every entry, and every chain
 * must reach it exactly once; all descriptors are back and the region
 * says nothing is in flight.
 */
static void recover_check(const struct snap *s, bool packed, const struct sdrv *sd0,
			  const struct pdrv *pd0)
{
	struct w *w = w_new(packed, 8, true, true, false, false);
	struct vre_vq_params p;
	unsigned seen[CR_CHAINS + 1] = { 0 };
	size_t len;
	uint8_t *h = w_host(w, &len);
	uint16_t id;
	uint32_t ulen;
	uint64_t tok;
	int r, n;

	memcpy(h, s->host, len);
	/* the driver's state as the first process left it (the device
	 * changes none of it) */
	if (packed) {
		uint32_t *wl = w->pd->wlen_of;

		*w->pd = *pd0;
		w->pd->wlen_of = wl;
		memcpy(wl, pd0->wlen_of, sizeof(*wl) * 8);
		w_params(w, &p, true);
		w->pd->ring = p.desc;
		w->pd->driver = p.driver;
		w->pd->device = p.device;
		memcpy(w->token, cr.w->token, sizeof(w->token));
	} else {
		struct sdrv *d = w->sd;

		d->free_head = sd0->free_head;
		d->num_free = sd0->num_free;
		d->avail_shadow = sd0->avail_shadow;
		d->last_used = sd0->last_used;
		d->next_desc = sd0->next_desc;
		d->oldest = sd0->oldest;
		memcpy(d->chain_ndesc, sd0->chain_ndesc, sizeof(uint16_t) * 8);
		memcpy(d->token, sd0->token, sizeof(uint64_t) * 8);
		memcpy(d->wlen, sd0->wlen, sizeof(uint32_t) * 8);
	}
	while ((r = w_get_used(w, &id, &ulen, &tok)) == 1) {
		ck_assert_uint_le(tok, CR_CHAINS);
		seen[tok]++;
	}
	ck_assert_msg(r == 0, "%s: driver refused the ring before recovery (%d)", s->step, r);
	w->inf_len = cr.w->inf_len;
	w->inf = malloc(w->inf_len);
	memcpy(w->inf, s->inf, w->inf_len);
	n = vre_vq_inflight_attach(&w->vq, w->inf, w->inf_len, 0);
	ck_assert_msg(n >= 0, "%s: attach %d", s->step, n);
	ck_assert_msg(w_get_used(w, &id, &ulen, &tok) == 0, "%s: stale used entry", s->step);
	for (;;) {
		int got = vre_vq_fetch(&w->vq, w->ch, 2, w->pool, POOL);

		ck_assert_int_ge(got, 0);
		if (got == 0)
			break;
		ck_assert_int_eq(vre_vq_complete_inorder(&w->vq, w->ch, (unsigned)got), 0);
		while ((r = w_get_used(w, &id, &ulen, &tok)) == 1) {
			ck_assert_uint_le(tok, CR_CHAINS);
			ck_assert_uint_eq(ulen, 0);
			seen[tok]++;
		}
		ck_assert_msg(r == 0, "%s: the in-order driver refused an entry (%d)", s->step, r);
	}
	for (unsigned t = 1; t <= CR_CHAINS; t++)
		ck_assert_msg(seen[t] == 1, "%s: chain %u seen %u times", s->step, t, seen[t]);
	ck_assert_uint_eq(w_free_descs(w), 8);
	ck_assert_uint_eq(w->vq.broken, 0);
	if (packed) {
		struct vre_inflight_packed *inf = w->inf;

		for (unsigned i = 0; i < 8; i++)
			ck_assert_uint_eq(inf->desc[i].inflight, 0);
		ck_assert_uint_eq(inf->used_idx, inf->old_used_idx);
	} else {
		struct vre_inflight_split *inf = w->inf;

		for (unsigned i = 0; i < 8; i++)
			ck_assert_uint_eq(inf->desc[i].inflight, 0);
		ck_assert_uint_eq(inf->used_idx, w->sd->used->idx);
	}
	w_free(w);
}

/* Fetch 3, complete the first 2 as one in-order batch, fetch 2, complete
 * the last 3 as one batch; chains of 1, 2, 1, 3 and 1 descriptors (all 8
 * slots of the ring); a snapshot after every recorded store. */
START_TEST(test_crash_every_step)
{
	bool packed = _i;
	struct sdrv sd0 = { 0 };
	struct pdrv *pd0 = malloc(sizeof(*pd0));
	uint32_t wl0[8];
	struct vre_chain c[CR_CHAINS];
	int n;

	memset(&cr, 0, sizeof(cr));
	cr.w = w_new(packed, 8, true, true, false, true);
	for (unsigned i = 0; i < CR_CHAINS; i++)
		ck_assert_int_ge(w_post(cr.w, cr_ndesc[i], false, i + 1), 0);
	if (packed) {
		*pd0 = *cr.w->pd;
		memcpy(wl0, cr.w->pd->wlen_of, sizeof(wl0));
		pd0->wlen_of = wl0;
	} else {
		sd0 = *cr.w->sd;
		sd0.chain_ndesc = malloc(sizeof(uint16_t) * 8);
		sd0.token = malloc(sizeof(uint64_t) * 8);
		sd0.wlen = malloc(sizeof(uint32_t) * 8);
		memcpy(sd0.chain_ndesc, cr.w->sd->chain_ndesc, sizeof(uint16_t) * 8);
		memcpy(sd0.token, cr.w->sd->token, sizeof(uint64_t) * 8);
		memcpy(sd0.wlen, cr.w->sd->wlen, sizeof(uint32_t) * 8);
	}
	snap_take("start");
	vring_step_hook = snap_hook;
	n = vre_vq_fetch(&cr.w->vq, c, 3, cr.w->pool, POOL);
	ck_assert_int_eq(n, 3);
	ck_assert_int_eq(vre_vq_complete_inorder(&cr.w->vq, c, 2), 0);
	c[0] = c[2];
	n = vre_vq_fetch(&cr.w->vq, c + 1, 2, cr.w->pool, POOL);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(vre_vq_complete_inorder(&cr.w->vq, c, 3), 0);
	vring_step_hook = NULL;
	snap_take("end");
	ck_assert_uint_gt(cr.n, 20);
	for (unsigned i = 0; i < cr.n; i++) {
		recover_check(&cr.s[i], packed, &sd0, pd0);
		free(cr.s[i].host);
		free(cr.s[i].inf);
	}
	if (!packed) {
		free(sd0.chain_ndesc);
		free(sd0.token);
		free(sd0.wlen);
	}
	free(pd0);
	w_free(cr.w);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vq_fast");
	TCase *tc = tcase_create("fast");
	SRunner *sr;
	int failed;

	vre_log_set_level(VRE_LOG_ERR);
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_batches_over_laps, 0, 2);
	tcase_add_loop_test(tc, test_every_entry, 0, 2);
	tcase_add_loop_test(tc, test_driver_refuses_out_of_order, 0, 2);
	tcase_add_test(tc, test_resync_in_order);
	tcase_add_loop_test(tc, test_run_takes_common_only, 0, 2);
	tcase_add_loop_test(tc, test_run_rules, 0, 2);
	tcase_add_loop_test(tc, test_crash_every_step, 0, 2);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
