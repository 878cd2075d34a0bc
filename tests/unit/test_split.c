/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Split virtqueue, device side, driven by a real (test) driver through ring
 * memory: chains, wrap-around, indirect tables, region splits, notification
 * rules, every validation rule, the iovec pool and inflight recovery after a
 * crash at every store of a fetch/complete cycle.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdrv_split.h"
#include "vre_log.h"
#include "vring_internal.h"

#define POOL 1024

/* Checks inside per-chain and per-byte loops count failures instead of
 * asserting (each check assertion costs a write to check's status channel;
 * 70,000 chains of them take seconds). q_free() asserts none happened. */
static unsigned soft_fail;
static int soft_line;
#define EXPECT(c)                                                              \
	do {                                                                   \
		if (!(c) && !soft_fail++)                                      \
			soft_line = __LINE__;                                  \
	} while (0)
#define EXPECT_NONE()                                                          \
	ck_assert_msg(soft_fail == 0, "%u failed expectations, first at line %d", \
		      soft_fail, soft_line)

/* Built with VRE_RING_STEP_HOOK: vring_step_hook (vring_internal.h) is
 * called after each recovery-relevant store. */

static uint8_t rpat(uint64_t token, uint64_t k)
{
	return (uint8_t)(token * 31 + k * 7 + 1);
}

static uint8_t wpat(uint64_t token, uint64_t k)
{
	return (uint8_t)(token * 13 + k * 5 + 0x40);
}

/* A queue over a fresh driver. */
struct q {
	struct sdrv *d;
	struct vre_vq vq;
	struct vre_chain ch[VRE_BURST];
	struct iovec pool[POOL];
};

static struct q *q_new(uint16_t size, size_t heap, size_t len1, bool event_idx,
		       bool indirect)
{
	struct q *q = calloc(1, sizeof(*q));
	struct vre_vq_params p;

	ck_assert_ptr_nonnull(q);
	q->d = sdrv_new(size, heap, len1);
	sdrv_params(q->d, &p, event_idx, indirect);
	ck_assert_int_eq(vre_vq_init(&q->vq, &p), 0);
	return q;
}

static void q_free(struct q *q)
{
	EXPECT_NONE();
	vre_vq_fini(&q->vq);
	sdrv_free(q->d);
	free(q);
}

/* A readable buffer of len bytes filled with the token's pattern. */
static struct sdrv_buf rbuf(struct sdrv *d, uint64_t gpa, uint32_t len, uint64_t token,
			    uint64_t *off)
{
	struct sdrv_buf b = { .gpa = gpa, .len = len, .write = false };
	uint8_t *tmp = malloc(len ? len : 1);

	for (uint32_t k = 0; k < len; k++)
		tmp[k] = rpat(token, *off + k);
	sdrv_write(d, gpa, tmp, len);
	free(tmp);
	*off += len;
	return b;
}

static struct sdrv_buf wbuf(struct sdrv *d, uint64_t gpa, uint32_t len)
{
	struct sdrv_buf b = { .gpa = gpa, .len = len, .write = true };

	sdrv_fill(d, gpa, 0, len);
	return b;
}

/* The device side: readable bytes must be the token's pattern. */
static void dev_check_readable(const struct vre_chain *c, uint64_t token)
{
	uint64_t k = 0, bad = 0;

	EXPECT(c->err == 0);
	for (unsigned i = 0; i < c->nr; i++) {
		const uint8_t *p = c->iov[i].iov_base;

		for (size_t j = 0; j < c->iov[i].iov_len; j++, k++)
			bad += p[j] != rpat(token, k);
	}
	EXPECT(bad == 0);
	EXPECT(k == c->rlen);
}

/* The device side: fill every writable byte; returns bytes written. */
static uint32_t dev_fill_writable(const struct vre_chain *c, uint64_t token)
{
	uint64_t k = 0;

	for (unsigned i = c->nr; i < (unsigned)c->nr + c->nw; i++) {
		uint8_t *p = c->iov[i].iov_base;

		for (size_t j = 0; j < c->iov[i].iov_len; j++, k++)
			p[j] = wpat(token, k);
	}
	EXPECT(k == c->wlen);
	return (uint32_t)k;
}

/* The driver side: the writable buffer holds what the device wrote. */
static void drv_check_written(struct sdrv *d, uint64_t gpa, uint32_t len, uint64_t token,
			      uint64_t *off)
{
	uint8_t *tmp = malloc(len ? len : 1);

	unsigned bad = 0;

	sdrv_read(d, gpa, tmp, len);
	for (uint32_t k = 0; k < len; k++)
		bad += tmp[k] != wpat(token, *off + k);
	free(tmp);
	EXPECT(bad == 0);
	*off += len;
}

static void complete_one(struct q *q, const struct vre_chain *c, uint32_t len)
{
	struct vre_used u = vre_used_of(c, len);

	ck_assert_int_eq(vre_vq_complete(&q->vq, &u, 1), 0);
}

/* ---------------------------------------------------------------- setup */

START_TEST(test_init_rejects)
{
	struct sdrv *d = sdrv_new(8, 4096, 0);
	struct vre_vq_params p;
	struct vre_vq vq;

	sdrv_params(d, &p, false, false);
	p.desc = (uint8_t *)d->desc + 8;
	ck_assert_int_eq(vre_vq_init(&vq, &p), -EINVAL);
	sdrv_params(d, &p, false, false);
	p.driver = (uint8_t *)d->avail + 1;
	ck_assert_int_eq(vre_vq_init(&vq, &p), -EINVAL);
	sdrv_params(d, &p, false, false);
	p.device = (uint8_t *)d->used + 2;
	ck_assert_int_eq(vre_vq_init(&vq, &p), -EINVAL);
	sdrv_params(d, &p, false, false);
	p.size = 6; /* not a power of two */
	ck_assert_int_eq(vre_vq_init(&vq, &p), -EINVAL);
	sdrv_params(d, &p, false, false);
	ck_assert_int_eq(vre_vq_init(&vq, &p), 0);
	ck_assert_ptr_eq(vq.sp.used_event, &d->avail->ring[8]);
	ck_assert_ptr_eq(vq.sp.avail_event, (uint16_t *)&d->used->ring[8]);
	vre_vq_fini(&vq);
	sdrv_free(d);
}
END_TEST

/* ------------------------------------------------------ sizes and chains */

/* Fills the whole queue with one-descriptor chains (even heads readable,
 * odd ones writable), takes them in bursts, checks every payload both ways. */
static void fill_drain(uint16_t size)
{
	struct q *q = q_new(size, (size_t)size * 16 + 4096, 0, false, false);
	uint64_t base = sdrv_alloc(q->d, (size_t)size * 16);
	unsigned got = 0, done = 0;

	for (uint32_t i = 0; i < size; i++) {
		uint64_t off = 0;
		struct sdrv_buf b = i % 2 ? wbuf(q->d, base + 16ull * i, 16)
					  : rbuf(q->d, base + 16ull * i, 8, i, &off);

		EXPECT((sdrv_add(q->d, &b, 1, i)) == ((int)i));
	}
	ck_assert_int_eq(sdrv_add(q->d, NULL, 1, 0), -ENOSPC);
	sdrv_kick(q->d);
	while (got < size) {
		int n = vre_vq_fetch(&q->vq, q->ch, VRE_BURST, q->pool, POOL);
		struct vre_used u[VRE_BURST];

		if (n <= 0 || n > VRE_BURST)
			ck_assert_int_eq(n, -1000); /* fail, with the value */
		for (int i = 0; i < n; i++) {
			uint64_t token = q->d->token[q->ch[i].id];

			/* In avail order: head == position. */
			EXPECT((q->ch[i].id) == (got + (unsigned)i));
			EXPECT((q->ch[i].nr) == (token % 2 ? 0 : 1));
			EXPECT((q->ch[i].nw) == (token % 2 ? 1 : 0));
			EXPECT((q->ch[i].wlen) == (token % 2 ? 16 : 0));
			dev_check_readable(&q->ch[i], token);
			u[i] = vre_used_of(&q->ch[i], dev_fill_writable(&q->ch[i], token));
		}
		EXPECT((vre_vq_complete(&q->vq, u, (unsigned)n)) == (0));
		got += (unsigned)n;
	}
	ck_assert_int_eq(vre_vq_fetch(&q->vq, q->ch, VRE_BURST, q->pool, POOL), 0);
	ck_assert_uint_eq(q->d->used->idx, size);
	for (;;) {
		uint16_t id;
		uint32_t len;
		uint64_t token, off = 0;
		int r = sdrv_get_used(q->d, &id, &len, &token);

		if (r == 0)
			break;
		if (r != 1)
			ck_assert_int_eq(r, 1);
		EXPECT((id) == (done));
		EXPECT((len) == (token % 2 ? 16 : 0));
		drv_check_written(q->d, base + 16ull * token, len, token, &off);
		done++;
	}
	ck_assert_uint_eq(done, size);
	ck_assert(sdrv_guards_ok(q->d));
	q_free(q);
}

/* One chain as long as the queue: every descriptor in use. */
static void full_length_chain(uint16_t size, bool indirect)
{
	size_t heap = (size_t)size * 4 + (indirect ? (size_t)size * 16 : 0) + 4096;
	struct q *q = q_new(size, heap, 0, false, indirect);
	uint64_t base = sdrv_alloc(q->d, (size_t)size * 4), off = 0;
	struct sdrv_buf *b = calloc(size, sizeof(*b));
	struct iovec *pool = calloc(size, sizeof(*pool));
	unsigned nread = size / 2 ? size / 2 : 1;
	uint64_t woff = 0;
	int head;

	for (uint32_t i = 0; i < size; i++)
		b[i] = i < nread ? rbuf(q->d, base + 4ull * i, 4, 7, &off)
				 : wbuf(q->d, base + 4ull * i, 4);
	if (indirect)
		head = sdrv_add_indirect(q->d, b, size, sdrv_alloc(q->d, (size_t)size * 16), 7);
	else
		head = sdrv_add(q->d, b, size, 7);
	ck_assert_int_ge(head, 0);
	sdrv_kick(q->d);
	ck_assert_int_eq(vre_vq_fetch(&q->vq, q->ch, VRE_BURST, pool, size), 1);
	ck_assert_uint_eq(q->ch[0].id, (unsigned)head);
	ck_assert_uint_eq(q->ch[0].nr, nread);
	ck_assert_uint_eq(q->ch[0].nw, size - nread);
	ck_assert_ptr_eq(q->ch[0].iov, pool);
	dev_check_readable(&q->ch[0], 7);
	complete_one(q, &q->ch[0], dev_fill_writable(&q->ch[0], 7));
	{
		uint16_t id;
		uint32_t len;

		ck_assert_int_eq(sdrv_get_used(q->d, &id, &len, NULL), 1);
		ck_assert_uint_eq(id, (unsigned)head);
		ck_assert_uint_eq(len, 4u * (size - nread));
		drv_check_written(q->d, base + 4ull * nread, 4 * (size - nread), 7, &woff);
	}
	ck_assert_int_eq(q->vq.broken, 0);
	ck_assert(sdrv_guards_ok(q->d));
	free(b);
	free(pool);
	q_free(q);
}

START_TEST(test_sizes)
{
	static const uint16_t sizes[] = { 1, 2, 256, 32768 };

	for (unsigned i = 0; i < 4; i++) {
		fill_drain(sizes[i]);
		full_length_chain(sizes[i], false);
	}
}
END_TEST

START_TEST(test_full_indirect_table)
{
	full_length_chain(256, true);
	full_length_chain(1, true);
}
END_TEST

/* >70,000 chains through a 256-entry queue (and a 4-entry one): indexes
 * wrap the u16 space, completions come back out of order, payloads checked
 * both ways. */
static void wrap_run(uint16_t size, unsigned total)
{
	struct q *q = q_new(size, (size_t)size * 64 + 4096, 0, false, true);
	uint64_t base = sdrv_alloc(q->d, (size_t)size * 64);
	uint32_t rng = 12345;
	unsigned added = 0, completed = 0, seen = 0;
	uint64_t next_token = 0;
	bool wrapped = false;

	while (seen < total) {
		/* Driver: add a few chains; buffers live at the head's slot. */
		unsigned want = (rng = rng * 1103515245 + 12345) >> 16 & 7;

		for (unsigned k = 0; k < want && added < total; k++) {
			uint16_t head = q->d->free_head;
			uint64_t slot = base + 64ull * head, off = 0, tok = next_token;
			unsigned rl = 1 + (tok % 13), wl = tok % 3 ? 8 + tok % 20 : 0;
			struct sdrv_buf b[3];
			unsigned nb = 0;

			if (q->d->num_free < 3)
				break;
			b[nb++] = rbuf(q->d, slot, rl, tok, &off);
			if (tok % 5 == 0)
				b[nb++] = rbuf(q->d, slot + 16, 3, tok, &off);
			if (wl)
				b[nb++] = wbuf(q->d, slot + 32, wl);
			EXPECT((sdrv_add(q->d, b, nb, tok)) == (head));
			next_token++;
			added++;
		}
		sdrv_kick(q->d);
		/* Device: one burst, completed in reverse order. */
		{
			unsigned max = 1 + ((rng >> 8) % VRE_BURST);
			int n = vre_vq_fetch(&q->vq, q->ch, max, q->pool, POOL);
			struct vre_used u[VRE_BURST];

			if (n < 0)
				ck_assert_int_ge(n, 0);
			for (int i = 0; i < n; i++) {
				uint64_t tok = q->d->token[q->ch[i].id];

				dev_check_readable(&q->ch[i], tok);
				u[n - 1 - i] = vre_used_of(&q->ch[i],
							   dev_fill_writable(&q->ch[i], tok));
			}
			EXPECT((vre_vq_complete(&q->vq, u, (unsigned)n)) == (0));
			completed += (unsigned)n;
		}
		if (q->vq.last_used_idx < 200 && completed > 65536)
			wrapped = true;
		/* Driver: reap and check what the device wrote. */
		for (;;) {
			uint16_t id;
			uint32_t len;
			uint64_t tok, off = 0;
			int r = sdrv_get_used(q->d, &id, &len, &tok);

			if (!r)
				break;
			if (r != 1)
			ck_assert_int_eq(r, 1);
			EXPECT((len) == (tok % 3 ? 8 + tok % 20 : 0));
			drv_check_written(q->d, base + 64ull * id + 32, len, tok, &off);
			seen++;
		}
	}
	ck_assert(wrapped);
	ck_assert_uint_eq(seen, total);
	ck_assert_uint_eq(completed, total);
	ck_assert_uint_eq(q->vq.last_avail_idx, (uint16_t)total);
	ck_assert_uint_eq(q->vq.last_used_idx, (uint16_t)total);
	ck_assert_uint_eq(q->d->used->idx, (uint16_t)total);
	ck_assert_uint_eq(vre_vq_get_base(&q->vq), (uint16_t)total);
	ck_assert_uint_eq(q->d->num_free, size);
	ck_assert(sdrv_guards_ok(q->d));
	q_free(q);
}

START_TEST(test_wrap_around)
{
	wrap_run(256, 70001);
	wrap_run(4, 70003);
}
END_TEST

/* ------------------------------------------------ indirect and regions */

START_TEST(test_indirect_chain)
{
	struct q *q = q_new(16, 8192, 0, false, true);
	uint64_t base = sdrv_alloc(q->d, 256), tab = sdrv_alloc(q->d, 64), off = 0, woff = 0;
	struct sdrv_buf b[4] = {
		rbuf(q->d, base, 10, 3, &off), rbuf(q->d, base + 16, 6, 3, &off),
		wbuf(q->d, base + 64, 20), wbuf(q->d, base + 128, 1),
	};
	struct sdrv_buf dir[1] = { rbuf(q->d, base + 192, 5, 4, &(uint64_t){ 0 }) };
	int h1, h2;
	uint16_t id;
	uint32_t len;

	h1 = sdrv_add_indirect(q->d, b, 4, tab, 3);
	h2 = sdrv_add(q->d, dir, 1, 4);
	sdrv_kick(q->d);
	ck_assert_int_eq(vre_vq_fetch(&q->vq, q->ch, VRE_BURST, q->pool, POOL), 2);
	ck_assert_uint_eq(q->ch[0].id, (unsigned)h1);
	ck_assert_uint_eq(q->ch[0].nr, 2);
	ck_assert_uint_eq(q->ch[0].nw, 2);
	ck_assert_uint_eq(q->ch[0].rlen, 16);
	ck_assert_uint_eq(q->ch[0].wlen, 21);
	ck_assert_uint_eq(q->ch[0].ndesc, 1);
	/* The second chain's iovecs follow the first's in the pool. */
	ck_assert_ptr_eq(q->ch[1].iov, q->pool + 4);
	ck_assert_uint_eq(q->ch[1].id, (unsigned)h2);
	dev_check_readable(&q->ch[0], 3);
	dev_check_readable(&q->ch[1], 4);
	complete_one(q, &q->ch[0], dev_fill_writable(&q->ch[0], 3));
	ck_assert_int_eq(sdrv_get_used(q->d, &id, &len, NULL), 1);
	ck_assert_uint_eq(id, (unsigned)h1);
	ck_assert_uint_eq(len, 21);
	drv_check_written(q->d, base + 64, 20, 3, &woff);
	drv_check_written(q->d, base + 128, 1, 3, &woff);
	q_free(q);
}
END_TEST

/* A descriptor crossing from region 0 into region 1 yields two iovecs, and
 * an indirect table crossing the boundary is still read correctly. */
START_TEST(test_region_split)
{
	struct q *q = q_new(8, 4096, 8192, false, true);
	uint64_t end0 = sdrv_end0(q->d), off = 0, ioff = 0, woff = 0;
	struct sdrv_buf b[1] = { rbuf(q->d, end0 - 10, 30, 9, &off) };
	struct sdrv_buf ib[3];
	uint16_t id;
	uint32_t len;

	ck_assert_int_ge(sdrv_add(q->d, b, 1, 9), 0);
	sdrv_kick(q->d);
	ck_assert_int_eq(vre_vq_fetch(&q->vq, q->ch, VRE_BURST, q->pool, POOL), 1);
	ck_assert_uint_eq(q->ch[0].nr, 2);
	ck_assert_ptr_eq(q->ch[0].iov[0].iov_base, q->d->reg[0].hva + q->d->reg[0].len - 10);
	ck_assert_uint_eq(q->ch[0].iov[0].iov_len, 10);
	ck_assert_ptr_eq(q->ch[0].iov[1].iov_base, q->d->reg[1].hva);
	ck_assert_uint_eq(q->ch[0].iov[1].iov_len, 20);
	dev_check_readable(&q->ch[0], 9);
	complete_one(q, &q->ch[0], 0);
	ck_assert_int_eq(sdrv_get_used(q->d, &id, &len, NULL), 1);

	/* A writable split buffer, then a 3-entry table with 24 bytes in each
	 * region (read by copy, not by pointer). */
	b[0] = wbuf(q->d, end0 - 5, 9);
	ck_assert_int_ge(sdrv_add(q->d, b, 1, 10), 0);
	sdrv_kick(q->d);
	ck_assert_int_eq(vre_vq_fetch(&q->vq, q->ch, VRE_BURST, q->pool, POOL), 1);
	ck_assert_uint_eq(q->ch[0].nr, 0);
	ck_assert_uint_eq(q->ch[0].nw, 2);
	complete_one(q, &q->ch[0], dev_fill_writable(&q->ch[0], 10));
	drv_check_written(q->d, end0 - 5, 9, 10, &woff);
	ck_assert_int_eq(sdrv_get_used(q->d, &id, &len, NULL), 1);
	ck_assert_uint_eq(len, 9);

	ib[0] = rbuf(q->d, end0 + 1000, 7, 11, &ioff);
	ib[1] = rbuf(q->d, end0 - 100, 6, 11, &ioff);
	ib[2] = wbuf(q->d, end0 + 2000, 9);
	ck_assert_int_ge(sdrv_add_indirect(q->d, ib, 3, end0 - 24, 11), 0);
	sdrv_kick(q->d);
	ck_assert_int_eq(vre_vq_fetch(&q->vq, q->ch, VRE_BURST, q->pool, POOL), 1);
	ck_assert_uint_eq(q->ch[0].nr, 2);
	ck_assert_uint_eq(q->ch[0].nw, 1);
	ck_assert_uint_eq(q->ch[0].rlen, 13);
	dev_check_readable(&q->ch[0], 11);
	dev_fill_writable(&q->ch[0], 11);
	woff = 0;
	drv_check_written(q->d, end0 + 2000, 9, 11, &woff);
	ck_assert_int_eq(q->vq.broken, 0);
	ck_assert(sdrv_guards_ok(q->d));
	q_free(q);
}
END_TEST

/* Single-descriptor chains at the edges of the fast path's range compare:
 * one ending on the last byte of region 0 is one iovec; one in region 1
 * (not the last-hit region) and one straddling both still translate. */
START_TEST(test_single_edges)
{
	struct q *q = q_new(8, 4096, 4096, false, false);
	uint64_t end0 = sdrv_end0(q->d), off[3] = { 0 };
	struct sdrv_buf b[3];

	/* Round 1: ends on the last byte of region 0, then wholly in region 1. */
	b[0] = rbuf(q->d, end0 - 16, 16, 21, &off[0]);
	b[1] = rbuf(q->d, end0 + 64, 32, 22, &off[1]);
	for (unsigned i = 0; i < 2; i++)
		ck_assert_int_ge(sdrv_add(q->d, &b[i], 1, 21 + i), 0);
	sdrv_kick(q->d);
	ck_assert_int_eq(vre_vq_fetch(&q->vq, q->ch, VRE_BURST, q->pool, POOL), 2);
	ck_assert_uint_eq(q->ch[0].nr, 1);
	ck_assert_ptr_eq(q->ch[0].iov[0].iov_base, q->d->reg[0].hva + q->d->reg[0].len - 16);
	ck_assert_uint_eq(q->ch[0].iov[0].iov_len, 16);
	ck_assert_uint_eq(q->ch[0].rlen, 16);
	ck_assert_uint_eq(q->ch[1].nr, 1);
	ck_assert_ptr_eq(q->ch[1].iov[0].iov_base, q->d->reg[1].hva + 64);
	ck_assert_uint_eq(q->ch[1].rlen, 32);
	for (unsigned i = 0; i < 2; i++) {
		ck_assert_uint_eq(q->ch[i].nw, 0);
		ck_assert_int_eq(q->ch[i].err, 0);
		dev_check_readable(&q->ch[i], 21 + i);
		complete_one(q, &q->ch[i], 0);
	}
	/* Round 2: straddles both regions, last hit being region 1. */
	b[2] = rbuf(q->d, end0 - 3, 8, 23, &off[2]);
	ck_assert_int_ge(sdrv_add(q->d, &b[2], 1, 23), 0);
	sdrv_kick(q->d);
	ck_assert_int_eq(vre_vq_fetch(&q->vq, q->ch, VRE_BURST, q->pool, POOL), 1);
	ck_assert_uint_eq(q->ch[0].nr, 2);
	ck_assert_uint_eq(q->ch[0].iov[0].iov_len, 3);
	ck_assert_ptr_eq(q->ch[0].iov[1].iov_base, q->d->reg[1].hva);
	ck_assert_uint_eq(q->ch[0].iov[1].iov_len, 5);
	dev_check_readable(&q->ch[0], 23);
	ck_assert_int_eq(q->vq.broken, 0);
	ck_assert(sdrv_guards_ok(q->d));
	q_free(q);
	/* One byte past region 0, on a fresh queue (last-hit region 0, so
	 * the one-descriptor fast path sees it): two pieces, never one. */
	q = q_new(8, 4096, 4096, false, false);
	off[0] = 0;
	b[0] = rbuf(q->d, sdrv_end0(q->d) - 3, 4, 24, &off[0]);
	ck_assert_int_ge(sdrv_add(q->d, &b[0], 1, 24), 0);
	sdrv_kick(q->d);
	ck_assert_int_eq(vre_vq_fetch(&q->vq, q->ch, VRE_BURST, q->pool, POOL), 1);
	ck_assert_uint_eq(q->ch[0].nr, 2);
	ck_assert_uint_eq(q->ch[0].rlen, 4);
	ck_assert_uint_eq(q->ch[0].iov[0].iov_len, 3);
	ck_assert_ptr_eq(q->ch[0].iov[1].iov_base, q->d->reg[1].hva);
	ck_assert_uint_eq(q->ch[0].iov[1].iov_len, 1);
	dev_check_readable(&q->ch[0], 24);
	ck_assert_int_eq(q->vq.broken, 0);
	q_free(q);
}
END_TEST

/* Zero-length descriptors give no iovec and their address is never used. */
START_TEST(test_zero_length)
{
	struct q *q = q_new(8, 4096, 0, false, false);
	uint64_t base = sdrv_alloc(q->d, 64), off = 0;
	struct sdrv_buf b[3] = {
		{ .gpa = 0xdead000000000000ull, .len = 0 },
		rbuf(q->d, base, 4, 1, &off),
		{ .gpa = UINT64_MAX, .len = 0, .write = true },
	};

	ck_assert_int_ge(sdrv_add(q->d, b, 3, 1), 0);
	sdrv_kick(q->d);
	ck_assert_int_eq(vre_vq_fetch(&q->vq, q->ch, VRE_BURST, q->pool, POOL), 1);
	ck_assert_uint_eq(q->ch[0].nr, 1);
	ck_assert_uint_eq(q->ch[0].nw, 0);
	ck_assert_uint_eq(q->ch[0].wlen, 0);
	dev_check_readable(&q->ch[0], 1);
	ck_assert_int_eq(q->vq.broken, 0);
	q_free(q);
}
END_TEST

/* ------------------------------------------------------- validation */

/* Each case: a good chain, then a bad one, in one burst. The good one comes
 * back intact, the queue breaks with exactly that reason, fetch then says
 * -EIO, and neither the used ring nor anything outside memory changed. */
typedef void (*bad_fn)(struct q *q, uint64_t scratch);

static void d_set(struct q *q, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		  uint16_t next)
{
	q->d->desc[i].addr = addr;
	q->d->desc[i].len = len;
	q->d->desc[i].flags = flags;
	q->d->desc[i].next = next;
}

static void t_set(struct q *q, uint64_t tab, uint16_t i, uint64_t addr, uint32_t len,
		  uint16_t flags, uint16_t next)
{
	struct vre_desc e = { .addr = addr, .len = len, .flags = flags, .next = next };

	sdrv_write(q->d, tab + 16ull * i, &e, sizeof(e));
}

/* Slots 0..3 hold the good chain; bad chains use 4.. and scratch memory. */
static void bad_out_of_mem(struct q *q, uint64_t s)
{
	(void)s;
	d_set(q, 4, sdrv_end0(q->d) - 4, 8, 0, 0); /* 4 bytes past the end */
	sdrv_post_raw(q->d, 4);
}

static void bad_out_of_mem_far(struct q *q, uint64_t s)
{
	(void)s;
	d_set(q, 4, 0x1000, 8, VRE_DESC_F_WRITE, 0); /* below region 0 */
	sdrv_post_raw(q->d, 4);
}

static void bad_overflow(struct q *q, uint64_t s)
{
	(void)s;
	d_set(q, 4, UINT64_MAX - 3, 16, 0, 0);
	sdrv_post_raw(q->d, 4);
}

static void bad_loop(struct q *q, uint64_t s)
{
	d_set(q, 4, s, 4, VRE_DESC_F_NEXT, 5);
	d_set(q, 5, s, 4, VRE_DESC_F_NEXT, 4);
	sdrv_post_raw(q->d, 4);
}

static void bad_next(struct q *q, uint64_t s)
{
	d_set(q, 4, s, 4, VRE_DESC_F_NEXT, 8); /* size is 8 */
	sdrv_post_raw(q->d, 4);
}

static void bad_head(struct q *q, uint64_t s)
{
	(void)s;
	sdrv_post_raw(q->d, 8);
}

static void bad_write_then_read(struct q *q, uint64_t s)
{
	d_set(q, 4, s, 4, VRE_DESC_F_WRITE | VRE_DESC_F_NEXT, 5);
	d_set(q, 5, s + 8, 4, 0, 0);
	sdrv_post_raw(q->d, 4);
}

static void bad_ind(struct q *q, uint64_t s, uint64_t addr, uint32_t len, uint16_t flags)
{
	t_set(q, s, 0, s + 256, 4, 0, 0);
	d_set(q, 4, addr, len, flags, 5);
	sdrv_post_raw(q->d, 4);
}

static void bad_ind_zero(struct q *q, uint64_t s) { bad_ind(q, s, s, 0, VRE_DESC_F_INDIRECT); }
static void bad_ind_unaligned(struct q *q, uint64_t s) { bad_ind(q, s, s, 24, VRE_DESC_F_INDIRECT); }
static void bad_ind_big(struct q *q, uint64_t s) { bad_ind(q, s, s, 16 * 9, VRE_DESC_F_INDIRECT); }
static void bad_ind_next(struct q *q, uint64_t s)
{
	bad_ind(q, s, s, 16, VRE_DESC_F_INDIRECT | VRE_DESC_F_NEXT);
}
static void bad_ind_oom(struct q *q, uint64_t s)
{
	(void)s;
	bad_ind(q, s, sdrv_end0(q->d) - 16, 32, VRE_DESC_F_INDIRECT);
}
static void bad_ind_overflow(struct q *q, uint64_t s)
{
	bad_ind(q, s, UINT64_MAX - 15, 32, VRE_DESC_F_INDIRECT);
}
static void bad_ind_below(struct q *q, uint64_t s)
{
	bad_ind(q, s, SDRV_GPA0 - 16, 32, VRE_DESC_F_INDIRECT);
}
static void bad_ind_entry_overflow(struct q *q, uint64_t s)
{
	t_set(q, s, 0, UINT64_MAX - 3, 16, 0, 0);
	d_set(q, 4, s, 16, VRE_DESC_F_INDIRECT, 0);
	sdrv_post_raw(q->d, 4);
}
static void bad_ind_nested(struct q *q, uint64_t s)
{
	t_set(q, s, 0, s + 256, 4, VRE_DESC_F_NEXT, 1);
	t_set(q, s, 1, s + 512, 16, VRE_DESC_F_INDIRECT, 0);
	d_set(q, 4, s, 32, VRE_DESC_F_INDIRECT, 0);
	sdrv_post_raw(q->d, 4);
}
static void bad_ind_next_range(struct q *q, uint64_t s)
{
	t_set(q, s, 0, s + 256, 4, VRE_DESC_F_NEXT, 2); /* table has 2 entries */
	t_set(q, s, 1, s + 256, 4, 0, 0);
	d_set(q, 4, s, 32, VRE_DESC_F_INDIRECT, 0);
	sdrv_post_raw(q->d, 4);
}
static void bad_ind_loop(struct q *q, uint64_t s)
{
	t_set(q, s, 0, s + 256, 4, VRE_DESC_F_NEXT, 1);
	t_set(q, s, 1, s + 256, 4, VRE_DESC_F_NEXT, 0);
	d_set(q, 4, s, 32, VRE_DESC_F_INDIRECT, 0);
	sdrv_post_raw(q->d, 4);
}
static void bad_ind_entry_oom(struct q *q, uint64_t s)
{
	t_set(q, s, 0, sdrv_end0(q->d) + 100, 4, 0, 0);
	d_set(q, 4, s, 16, VRE_DESC_F_INDIRECT, 0);
	sdrv_post_raw(q->d, 4);
}
static void bad_ind_write_then_read(struct q *q, uint64_t s)
{
	t_set(q, s, 0, s + 256, 4, VRE_DESC_F_WRITE | VRE_DESC_F_NEXT, 1);
	t_set(q, s, 1, s + 256, 4, 0, 0);
	d_set(q, 4, s, 32, VRE_DESC_F_INDIRECT, 0);
	sdrv_post_raw(q->d, 4);
}
/* A direct writable descriptor, then an indirect table with a readable one. */
static void bad_ind_after_write(struct q *q, uint64_t s)
{
	t_set(q, s, 0, s + 256, 4, 0, 0);
	d_set(q, 4, s + 512, 4, VRE_DESC_F_WRITE | VRE_DESC_F_NEXT, 5);
	d_set(q, 5, s, 16, VRE_DESC_F_INDIRECT, 0);
	sdrv_post_raw(q->d, 4);
}

struct bad_case {
	const char *name;
	bad_fn fn;
	enum vre_ring_error want;
	bool indirect;
};

static const struct bad_case bad_cases[] = {
	{ "out of memory", bad_out_of_mem, VRE_RE_DESC_OUT_OF_MEMORY, false },
	{ "below memory", bad_out_of_mem_far, VRE_RE_DESC_OUT_OF_MEMORY, false },
	{ "overflow", bad_overflow, VRE_RE_DESC_OVERFLOW, false },
	{ "loop", bad_loop, VRE_RE_CHAIN_TOO_LONG, false },
	{ "next", bad_next, VRE_RE_NEXT_OUT_OF_RANGE, false },
	{ "head", bad_head, VRE_RE_HEAD_OUT_OF_RANGE, false },
	{ "write then read", bad_write_then_read, VRE_RE_WRITE_THEN_READ, false },
	{ "indirect not negotiated", bad_ind_big, VRE_RE_INDIRECT_NOT_NEGOTIATED, false },
	{ "indirect len 0", bad_ind_zero, VRE_RE_INDIRECT_LEN_ZERO, true },
	{ "indirect len 24", bad_ind_unaligned, VRE_RE_INDIRECT_LEN_UNALIGNED, true },
	{ "indirect too big", bad_ind_big, VRE_RE_INDIRECT_TOO_BIG, true },
	{ "indirect + next", bad_ind_next, VRE_RE_INDIRECT_WITH_NEXT, true },
	{ "indirect outside", bad_ind_oom, VRE_RE_INDIRECT_OUT_OF_MEMORY, true },
	{ "nested", bad_ind_nested, VRE_RE_INDIRECT_NESTED, true },
	{ "indirect next", bad_ind_next_range, VRE_RE_NEXT_OUT_OF_RANGE, true },
	{ "indirect loop", bad_ind_loop, VRE_RE_CHAIN_TOO_LONG, true },
	{ "indirect entry outside", bad_ind_entry_oom, VRE_RE_DESC_OUT_OF_MEMORY, true },
	{ "indirect overflow", bad_ind_overflow, VRE_RE_DESC_OVERFLOW, true },
	{ "indirect entry overflow", bad_ind_entry_overflow, VRE_RE_DESC_OVERFLOW, true },
	{ "indirect table from below memory", bad_ind_below, VRE_RE_INDIRECT_OUT_OF_MEMORY, true },
	{ "indirect write then read", bad_ind_write_then_read, VRE_RE_WRITE_THEN_READ, true },
	{ "direct write then indirect read", bad_ind_after_write, VRE_RE_WRITE_THEN_READ, true },
};

START_TEST(test_validation)
{
	const struct bad_case *bc = &bad_cases[_i];
	struct q *q = q_new(8, 8192, 0, false, bc->indirect);
	uint64_t base = sdrv_alloc(q->d, 64), scratch = sdrv_alloc(q->d, 2048), off = 0;
	struct sdrv_buf good[2] = { rbuf(q->d, base, 12, 5, &off), wbuf(q->d, base + 32, 8) };
	uint8_t *snap = malloc(q->d->reg[0].len);
	int head = sdrv_add(q->d, good, 2, 5);

	ck_assert_int_eq(head, 0);
	/* The free list moved past slot 1; slots 4.. are ours to corrupt. */
	bc->fn(q, scratch);
	sdrv_kick(q->d);
	memcpy(snap, q->d->reg[0].hva, q->d->reg[0].len);
	ck_assert_msg(vre_vq_fetch(&q->vq, q->ch, VRE_BURST, q->pool, POOL) == 1, "%s", bc->name);
	ck_assert_msg(q->vq.broken == bc->want, "%s: broken %u want %u", bc->name,
		      q->vq.broken, bc->want);
	ck_assert_uint_eq(q->ch[0].id, 0);
	dev_check_readable(&q->ch[0], 5);
	/* Nothing written by fetch: guest memory byte for byte as before. */
	ck_assert(memcmp(snap, q->d->reg[0].hva, q->d->reg[0].len) == 0);
	ck_assert_int_eq(vre_vq_fetch(&q->vq, q->ch, VRE_BURST, q->pool, POOL), -EIO);
	ck_assert(!vre_vq_avail_pending(&q->vq));
	ck_assert(!vre_vq_notify_enable(&q->vq));
	vre_vq_notify_disable(&q->vq);
	ck_assert(memcmp(snap, q->d->reg[0].hva, q->d->reg[0].len) == 0);
	ck_assert_uint_eq(q->vq.last_avail_idx, 1);
	ck_assert(sdrv_guards_ok(q->d));
	/* The chain taken before the fault can still be completed. */
	complete_one(q, &(struct vre_chain){ .id = 0 }, 0);
	ck_assert_uint_eq(q->d->used->idx, 1);
	ck_assert_uint_eq(q->d->used->ring[0].id, 0);
	free(snap);
	q_free(q);
}
END_TEST

/* A frontend that cannot know a dead backend's position (DPDK virtio-user)
 * sends base 0; without inflight tracking the queue resumes from the used
 * index. A base a backend could have reached is kept. */
START_TEST(test_resync_to_used)
{
	struct q *q = q_new(256, 4096, 0, false, false);

	q->d->used->idx = 30112;
	ck_assert_int_eq(vre_vq_set_base(&q->vq, 0), 0);
	ck_assert_int_eq(vre_vq_resync_to_used(&q->vq), 1);
	ck_assert_uint_eq(q->vq.last_avail_idx, 30112);
	ck_assert_uint_eq(q->vq.last_used_idx, 30112);
	ck_assert_uint_eq(vre_vq_get_base(&q->vq), 30112);
	/* 5 in flight, or a full queue in flight: kept. */
	ck_assert_int_eq(vre_vq_set_base(&q->vq, 30117), 0);
	ck_assert_int_eq(vre_vq_resync_to_used(&q->vq), 0);
	ck_assert_uint_eq(q->vq.last_avail_idx, 30117);
	ck_assert_int_eq(vre_vq_set_base(&q->vq, 30112 + 256), 0);
	ck_assert_int_eq(vre_vq_resync_to_used(&q->vq), 0);
	/* More than a queue ahead, across the u16 wrap too: resynced. */
	q->d->used->idx = 65500;
	ck_assert_int_eq(vre_vq_set_base(&q->vq, (uint16_t)(65500 + 257)), 0);
	ck_assert_int_eq(vre_vq_resync_to_used(&q->vq), 1);
	ck_assert_uint_eq(q->vq.last_avail_idx, 65500);
	q_free(q);
}
END_TEST

/* A restart without inflight tracking where the frontend's base is ahead of
 * the ring's used index (chains the previous backend took and never
 * returned): the base is kept for the avail side, but used entries must go
 * on at the ring's used index. SET_VRING_BASE carries no used position for
 * split rings; writing at the base instead left stale used entries for the
 * driver to take as completions. */
START_TEST(test_resync_used_from_ring)
{
	struct q *q = q_new(8, 4096, 0, false, false);
	struct sdrv_buf b = { .gpa = SDRV_GPA0, .len = 0 };
	struct vre_vq_params p;
	int h[4];
	uint16_t id;
	uint32_t len;

	for (int i = 0; i < 3; i++)
		h[i] = sdrv_add(q->d, &b, 1, 100 + (uint64_t)i);
	sdrv_kick(q->d);
	ck_assert_int_eq(vre_vq_fetch(&q->vq, q->ch, VRE_BURST, q->pool, POOL), 3);
	complete_one(q, &q->ch[1], 0); /* out of order: the 2nd only */
	ck_assert_int_eq(sdrv_get_used(q->d, &id, &len, NULL), 1);
	ck_assert_int_eq(id, h[1]);
	/* The backend dies with h[0] and h[2] taken; the new one is told
	 * base 3 (where the old one stopped taking), used->idx is 1. */
	vre_vq_fini(&q->vq);
	sdrv_params(q->d, &p, false, false);
	ck_assert_int_eq(vre_vq_init(&q->vq, &p), 0);
	ck_assert_int_eq(vre_vq_set_base(&q->vq, 3), 0);
	ck_assert_int_eq(vre_vq_resync_to_used(&q->vq), 0);
	ck_assert_uint_eq(q->vq.last_avail_idx, 3);
	ck_assert_uint_eq(q->vq.last_used_idx, 1);
	/* A new chain completes into used entry 1, and the driver sees
	 * exactly that one (not stale entries 1 and 2 first). */
	h[3] = sdrv_add(q->d, &b, 1, 103);
	sdrv_kick(q->d);
	ck_assert_int_eq(vre_vq_fetch(&q->vq, q->ch, VRE_BURST, q->pool, POOL), 1);
	ck_assert_uint_eq(q->ch[0].id, (uint16_t)h[3]);
	complete_one(q, &q->ch[0], 0);
	ck_assert_uint_eq(q->d->used->idx, 2);
	ck_assert_int_eq(sdrv_get_used(q->d, &id, &len, NULL), 1);
	ck_assert_int_eq(id, h[3]);
	ck_assert_int_eq(sdrv_get_used(q->d, &id, &len, NULL), 0);
	q_free(q);
}
END_TEST

/* The fault first in the burst: -EIO at once, nothing consumed. */
START_TEST(test_validation_first)
{
	struct q *q = q_new(8, 8192, 0, false, false);

	bad_overflow(q, 0);
	sdrv_kick(q->d);
	ck_assert_int_eq(vre_vq_fetch(&q->vq, q->ch, VRE_BURST, q->pool, POOL), -EIO);
	ck_assert_uint_eq(q->vq.broken, VRE_RE_DESC_OVERFLOW);
	ck_assert_uint_eq(q->vq.last_avail_idx, 0);
	q_free(q);
}
END_TEST

START_TEST(test_avail_leap)
{
	struct q *q = q_new(8, 8192, 0, false, false);

	q->d->avail->idx = 9; /* 9 ahead of 0 with 8 slots */
	ck_assert_int_eq(vre_vq_fetch(&q->vq, q->ch, VRE_BURST, q->pool, POOL), -EIO);
	ck_assert_uint_eq(q->vq.broken, VRE_RE_AVAIL_IDX_LEAP);
	q_free(q);
	/* Exactly size ahead is fine; a leap backwards (seen as 65535 ahead)
	 * is not. */
	q = q_new(8, 8192, 0, false, false);
	for (uint16_t i = 0; i < 8; i++)
		d_set(q, i, 0, 0, 0, 0);
	for (uint16_t i = 0; i < 8; i++)
		sdrv_post_raw(q->d, i);
	sdrv_kick(q->d);
	ck_assert_int_eq(vre_vq_fetch(&q->vq, q->ch, VRE_BURST, q->pool, POOL), 8);
	q->d->avail->idx = 7;
	ck_assert_int_eq(vre_vq_fetch(&q->vq, q->ch, VRE_BURST, q->pool, POOL), -EIO);
	ck_assert_uint_eq(q->vq.broken, VRE_RE_AVAIL_IDX_LEAP);
	q_free(q);
}
END_TEST

/* A chain one longer than the queue through a maximal indirect table plus
 * direct descriptors is fine (both parts are bounded on their own), but a
 * direct loop through every slot is caught. */
START_TEST(test_chain_bounds)
{
	struct q *q = q_new(4, 8192, 0, false, true);
	uint64_t s = sdrv_alloc(q->d, 1024);

	for (uint16_t i = 0; i < 4; i++)
		t_set(q, s, i, s + 512, 4, i < 3 ? VRE_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	d_set(q, 0, s + 512, 4, VRE_DESC_F_NEXT, 1);
	d_set(q, 1, s, 64, VRE_DESC_F_INDIRECT, 0);
	sdrv_post_raw(q->d, 0);
	/* All four slots in one ring: 2 -> 3 -> 0 -> 1 -> 2 ... */
	d_set(q, 2, s + 512, 4, VRE_DESC_F_NEXT, 3);
	d_set(q, 3, s + 512, 4, VRE_DESC_F_NEXT, 2);
	sdrv_post_raw(q->d, 2);
	sdrv_kick(q->d);
	ck_assert_int_eq(vre_vq_fetch(&q->vq, q->ch, VRE_BURST, q->pool, POOL), 1);
	ck_assert_uint_eq(q->ch[0].nr, 5);
	ck_assert_uint_eq(q->ch[0].rlen, 20);
	ck_assert_uint_eq(q->vq.broken, VRE_RE_CHAIN_TOO_LONG);
	q_free(q);
}
END_TEST

/* ------------------------------------------------------- iovec pool */

START_TEST(test_pool)
{
	struct q *q = q_new(16, 8192, 4096, false, false);
	uint64_t s = sdrv_alloc(q->d, 512), end0 = sdrv_end0(q->d), off;
	struct sdrv_buf b[6];
	struct iovec pool[4];

	for (unsigned i = 0; i < 6; i++)
		b[i] = (struct sdrv_buf){ .gpa = s + 16 * i, .len = 4 };
	ck_assert_int_eq(sdrv_add(q->d, b, 2, 0), 0);     /* A: 2 iovecs */
	ck_assert_int_eq(sdrv_add(q->d, b, 3, 1), 2);     /* B: 3 iovecs */
	ck_assert_int_eq(sdrv_add(q->d, b, 5, 2), 5);     /* C: 5 > pool */
	sdrv_kick(q->d);
	/* B does not fit the 2 left after A: the burst ends before it. */
	ck_assert_int_eq(vre_vq_fetch(&q->vq, q->ch, VRE_BURST, pool, 4), 1);
	ck_assert_uint_eq(q->ch[0].id, 0);
	ck_assert_uint_eq(q->vq.last_avail_idx, 1);
	/* B at the start of the pool fits; C could not fit even an empty pool:
	 * it is handed out in the same burst, consumed, with -ENOBUFS and no
	 * iovecs. */
	ck_assert_int_eq(vre_vq_fetch(&q->vq, q->ch, VRE_BURST, pool, 4), 2);
	ck_assert_uint_eq(q->ch[0].id, 2);
	ck_assert_uint_eq(q->ch[0].nr, 3);
	ck_assert_int_eq(q->ch[0].err, 0);
	ck_assert_uint_eq(q->ch[1].id, 5);
	ck_assert_int_eq(q->ch[1].err, -ENOBUFS);
	ck_assert_uint_eq(q->ch[1].nr + q->ch[1].nw, 0);
	ck_assert_uint_eq(q->ch[1].rlen + q->ch[1].wlen, 0);
	ck_assert_uint_eq(q->vq.last_avail_idx, 3);
	ck_assert_int_eq(q->vq.broken, 0);
	complete_one(q, &q->ch[1], 0);
	complete_one(q, &q->ch[0], 0);
	ck_assert_uint_eq(q->d->used->ring[0].id, 5);
	ck_assert_uint_eq(q->d->used->ring[0].len, 0);
	ck_assert_uint_eq(q->d->used->ring[1].id, 2);
	/* A split descriptor needs two iovecs: with a pool of 1 it is ENOBUFS
	 * on its own, and a fault after the overflow still breaks the queue. */
	off = 0;
	b[0] = rbuf(q->d, end0 - 2, 4, 3, &off);
	ck_assert_int_ge(sdrv_add(q->d, b, 1, 3), 0);
	sdrv_kick(q->d);
	ck_assert_int_eq(vre_vq_fetch(&q->vq, q->ch, VRE_BURST, pool, 1), 1);
	ck_assert_int_eq(q->ch[0].err, -ENOBUFS);
	b[1] = (struct sdrv_buf){ .gpa = end0 + 8192, .len = 4 };
	ck_assert_int_ge(sdrv_add(q->d, b, 2, 4), 0);
	sdrv_kick(q->d);
	ck_assert_int_eq(vre_vq_fetch(&q->vq, q->ch, VRE_BURST, pool, 1), -EIO);
	ck_assert_uint_eq(q->vq.broken, VRE_RE_DESC_OUT_OF_MEMORY);
	q_free(q);
}
END_TEST

/* --------------------------------------------------- notifications */

/* Moves driver and device to index base, as after SET_VRING_BASE. */
static void start_at(struct q *q, uint16_t base)
{
	q->d->avail_shadow = q->d->last_used = base;
	q->d->avail->idx = q->d->used->idx = base;
	ck_assert_int_eq(vre_vq_set_base(&q->vq, base), 0);
}

/* Adds, fetches and completes one empty chain; returns needs_notify. */
static bool one_round(struct q *q)
{
	uint16_t id;
	uint32_t len;
	struct sdrv_buf b = { .gpa = SDRV_GPA0, .len = 0 };

	ck_assert_int_ge(sdrv_add(q->d, &b, 1, 0), 0);
	sdrv_kick(q->d);
	ck_assert_int_eq(vre_vq_fetch(&q->vq, q->ch, VRE_BURST, q->pool, POOL), 1);
	complete_one(q, &q->ch[0], 0);
	ck_assert_int_eq(sdrv_get_used(q->d, &id, &len, NULL), 1);
	return vre_vq_needs_notify(&q->vq);
}

START_TEST(test_notify_flags)
{
	struct q *q = q_new(8, 4096, 0, false, false);

	ck_assert(one_round(q));
	q->d->avail->flags = VRE_AVAIL_F_NO_INTERRUPT;
	ck_assert(!one_round(q));
	ck_assert(!one_round(q));
	q->d->avail->flags = 0;
	ck_assert(one_round(q));
	/* used_event means nothing without EVENT_IDX. */
	*sdrv_used_event(q->d) = 1000;
	ck_assert(one_round(q));
	q_free(q);
}
END_TEST

START_TEST(test_notify_event_idx)
{
	static const uint16_t bases[] = { 0, 65530 };

	for (unsigned bi = 0; bi < 2; bi++) {
		struct q *q = q_new(8, 4096, 0, true, false);
		uint16_t b = bases[bi];

		start_at(q, b);
		/* Unknown last-signalled index: notify. */
		*sdrv_used_event(q->d) = (uint16_t)(b + 100);
		ck_assert(one_round(q)); /* used -> b+1 */
		/* The flag is ignored with EVENT_IDX. */
		q->d->avail->flags = VRE_AVAIL_F_NO_INTERRUPT;
		*sdrv_used_event(q->d) = (uint16_t)(b + 1); /* wants the entry after b+1 */
		ck_assert(one_round(q));                    /* b+2 crosses it */
		ck_assert(!vre_vq_needs_notify(&q->vq));    /* nothing new since */
		*sdrv_used_event(q->d) = (uint16_t)(b + 4);
		ck_assert(!one_round(q)); /* b+3 */
		ck_assert(!one_round(q)); /* b+4 */
		ck_assert(one_round(q));  /* b+5 passes b+4 (across 65535 for b=65530) */
		ck_assert(!one_round(q)); /* b+6: event stays behind */
		/* A batch of three jumping over the event at once. */
		*sdrv_used_event(q->d) = (uint16_t)(b + 7);
		{
			struct sdrv_buf e = { .gpa = SDRV_GPA0, .len = 0 };
			struct vre_used u[3];
			uint16_t id;
			uint32_t len;

			for (int i = 0; i < 3; i++)
				ck_assert_int_ge(sdrv_add(q->d, &e, 1, 0), 0);
			sdrv_kick(q->d);
			ck_assert_int_eq(vre_vq_fetch(&q->vq, q->ch, VRE_BURST, q->pool, POOL), 3);
			for (int i = 0; i < 3; i++)
				u[i] = vre_used_of(&q->ch[i], 0);
			ck_assert_int_eq(vre_vq_complete(&q->vq, u, 3), 0);
			for (int i = 0; i < 3; i++)
				ck_assert_int_eq(sdrv_get_used(q->d, &id, &len, NULL), 1);
			ck_assert_uint_eq(q->d->used->idx, (uint16_t)(b + 9));
			ck_assert(vre_vq_needs_notify(&q->vq));
		}
		/* set_base forgets the last signalled index: notify again. */
		start_at(q, (uint16_t)(b + 9));
		*sdrv_used_event(q->d) = (uint16_t)(b + 500);
		ck_assert(one_round(q));
		ck_assert(!one_round(q));
		q_free(q);
	}
}
END_TEST

START_TEST(test_notify_enable_disable)
{
	struct q *q = q_new(8, 4096, 0, false, false);
	struct sdrv_buf e = { .gpa = SDRV_GPA0, .len = 0 };

	vre_vq_notify_disable(&q->vq);
	ck_assert_uint_eq(q->d->used->flags, VRE_USED_F_NO_NOTIFY);
	ck_assert(!vre_vq_notify_enable(&q->vq));
	ck_assert_uint_eq(q->d->used->flags, 0);
	vre_vq_notify_disable(&q->vq);
	ck_assert_int_ge(sdrv_add(q->d, &e, 1, 0), 0);
	sdrv_kick(q->d);
	/* Work arrived while kicks were off: enable says poll again. */
	ck_assert(vre_vq_notify_enable(&q->vq));
	ck_assert_uint_eq(q->d->used->flags, 0);
	ck_assert(vre_vq_avail_pending(&q->vq));
	ck_assert_int_eq(vre_vq_fetch(&q->vq, q->ch, VRE_BURST, q->pool, POOL), 1);
	ck_assert(!vre_vq_avail_pending(&q->vq));
	ck_assert(!vre_vq_notify_enable(&q->vq));
	q_free(q);

	q = q_new(8, 4096, 0, true, false);
	start_at(q, 65534);
	*sdrv_avail_event(q->d) = 0x1234;
	vre_vq_notify_disable(&q->vq);
	ck_assert_uint_eq(q->d->used->flags, 0); /* event idx: flags unused */
	ck_assert_uint_eq(*sdrv_avail_event(q->d), 0x1234);
	ck_assert(!vre_vq_notify_enable(&q->vq));
	ck_assert_uint_eq(*sdrv_avail_event(q->d), 65534);
	/* While enabled, fetch keeps avail_event at what it has taken. */
	for (int i = 0; i < 3; i++)
		ck_assert_int_ge(sdrv_add(q->d, &e, 1, 0), 0);
	sdrv_kick(q->d);
	ck_assert_int_eq(vre_vq_fetch(&q->vq, q->ch, VRE_BURST, q->pool, POOL), 3);
	ck_assert_uint_eq(*sdrv_avail_event(q->d), 1);
	vre_vq_notify_disable(&q->vq);
	ck_assert_int_ge(sdrv_add(q->d, &e, 1, 0), 0);
	sdrv_kick(q->d);
	ck_assert(vre_vq_notify_enable(&q->vq));
	ck_assert_uint_eq(*sdrv_avail_event(q->d), 1);
	q_free(q);
}
END_TEST

/* ------------------------------------------------------- fuzz */

static uint64_t rnd(uint64_t *st)
{
	*st ^= *st << 13;
	*st ^= *st >> 7;
	*st ^= *st << 17;
	return *st;
}

static bool iov_inside(const struct sdrv *d, const struct iovec *v)
{
	for (unsigned i = 0; i < d->nreg; i++) {
		const uint8_t *b = d->reg[i].hva, *p = v->iov_base;

		if (p >= b && v->iov_len <= d->reg[i].len && p - b <= (ptrdiff_t)(d->reg[i].len - v->iov_len))
			return v->iov_len > 0;
	}
	return false;
}

/* An address a hostile guest might use. */
static uint64_t fuzz_addr(struct sdrv *d, uint64_t *st, uint64_t heap)
{
	uint64_t end0 = sdrv_end0(d), end1 = end0 + d->reg[1].len;

	switch (rnd(st) % 8) {
	case 0: return heap + rnd(st) % 512;
	case 1: return end0 - rnd(st) % 64;              /* across the boundary */
	case 2: return end1 - rnd(st) % 64;              /* off the end */
	case 3: return UINT64_MAX - rnd(st) % 64;        /* wraps */
	case 4: return rnd(st) % SDRV_GPA0;              /* below memory */
	case 5: return d->desc_gpa + rnd(st) % 256;      /* the rings themselves */
	default: return heap + rnd(st) % 2048;
	}
}

static struct vre_desc fuzz_desc(struct sdrv *d, uint64_t *st, uint64_t heap,
				 uint16_t nmax)
{
	struct vre_desc e;
	uint64_t r = rnd(st);

	e.addr = fuzz_addr(d, st, heap);
	e.len = r % 4 == 0 ? 0 : r % 4 == 1 ? (uint32_t)(16 * (1 + rnd(st) % 20))
			 : r % 4 == 2 ? (uint32_t)(rnd(st) % 200) : (uint32_t)rnd(st);
	e.flags = (uint16_t)(rnd(st) % 3 ? rnd(st) % 8 : rnd(st));
	e.next = (uint16_t)(rnd(st) % 4 ? rnd(st) % nmax : rnd(st) % (nmax + 3));
	return e;
}

/* Random descriptor tables, indirect tables and avail rings: the device
 * never hands out an iovec outside guest memory, never writes guest memory
 * while fetching, every chain it returns adds up, and a broken queue has a
 * real reason. */
START_TEST(test_fuzz)
{
	struct q *q = q_new(16, 16384, 4096, false, true);
	uint64_t st = 0x9e3779b97f4a7c15ull + (uint64_t)_i;
	uint64_t heap = sdrv_alloc(q->d, 8192);
	uint8_t *snap0 = malloc(q->d->reg[0].len), *snap1 = malloc(q->d->reg[1].len);
	unsigned broken = 0, chains = 0, reasons[VRE_RE_COUNT] = { 0 }, nreasons = 0;

	vre_log_level = -1; /* thousands of expected breaks */
	for (unsigned it = 0; it < 3000; it++) {
		struct vre_vq_params p;
		uint16_t idx = (uint16_t)rnd(&st);

		for (uint16_t i = 0; i < 16; i++)
			q->d->desc[i] = fuzz_desc(q->d, &st, heap, 16);
		for (unsigned i = 0; i < 8192 / 16; i++) {
			struct vre_desc e = fuzz_desc(q->d, &st, heap, 24);

			sdrv_write(q->d, heap + 16ull * i, &e, sizeof(e));
		}
		for (uint16_t i = 0; i < 16; i++)
			q->d->avail->ring[i] = (uint16_t)(rnd(&st) % 8 ? rnd(&st) % 16 : rnd(&st));
		sdrv_params(q->d, &p, false, rnd(&st) % 4 != 0);
		vre_vq_fini(&q->vq);
		ck_assert_int_eq(vre_vq_init(&q->vq, &p), 0);
		vre_vq_set_base(&q->vq, idx);
		q->d->used->idx = idx;
		q->d->avail->idx = (uint16_t)(idx + rnd(&st) % 19);
		memcpy(snap0, q->d->reg[0].hva, q->d->reg[0].len);
		memcpy(snap1, q->d->reg[1].hva, q->d->reg[1].len);
		for (unsigned round = 0; round < 20; round++) {
			unsigned pool_len = 1 + rnd(&st) % 40;
			int n = vre_vq_fetch(&q->vq, q->ch, 1 + rnd(&st) % VRE_BURST, q->pool, pool_len);
			unsigned used_iov = 0;

			if (n <= 0) {
				EXPECT(n == 0 || n == -EIO);
				break;
			}
			for (int i = 0; i < n; i++) {
				const struct vre_chain *c = &q->ch[i];
				uint64_t rl = 0, wl = 0;

				EXPECT(c->id < 16);
				EXPECT(c->iov == q->pool + used_iov);
				if (c->err) {
					EXPECT(c->err == -ENOBUFS && c->nr + c->nw == 0);
					continue;
				}
				used_iov += c->nr + c->nw;
				for (unsigned k = 0; k < (unsigned)c->nr + c->nw; k++) {
					EXPECT(iov_inside(q->d, &c->iov[k]));
					*(k < c->nr ? &rl : &wl) += c->iov[k].iov_len;
				}
				EXPECT(rl == c->rlen && wl == c->wlen);
			}
			EXPECT(used_iov <= pool_len);
			chains += (unsigned)n;
		}
		EXPECT(q->vq.broken < VRE_RE_COUNT);
		broken += q->vq.broken != 0;
		if (q->vq.broken < VRE_RE_COUNT)
			reasons[q->vq.broken]++;
		EXPECT(memcmp(snap0, q->d->reg[0].hva, q->d->reg[0].len) == 0);
		EXPECT(memcmp(snap1, q->d->reg[1].hva, q->d->reg[1].len) == 0);
	}
	/* The generator reaches both outcomes and most rules. */
	for (unsigned i = 1; i < VRE_RE_COUNT; i++)
		nreasons += reasons[i] != 0;
	if (getenv("FUZZ_STATS"))
		for (unsigned i = 0; i < VRE_RE_COUNT; i++)
			fprintf(stderr, "%-45s %u\n", vre_ring_strerror(i), reasons[i]);
	ck_assert_uint_ge(nreasons, 12);
	ck_assert_uint_gt(broken, 100);
	ck_assert_uint_gt(chains, 100);
	ck_assert(sdrv_guards_ok(q->d));
	free(snap0);
	free(snap1);
	q_free(q);
}
END_TEST

/* A guest that rewrites its descriptors, tables and avail ring while the
 * device walks them: whatever it reads, the device only ever hands out
 * iovecs inside guest memory and writes nothing outside the used ring. */
struct mutator {
	struct sdrv *d;
	uint64_t heap;
	int stop;
};

static void *mutate(void *arg)
{
	struct mutator *m = arg;
	uint64_t st = 0x1234567;

	while (!__atomic_load_n(&m->stop, __ATOMIC_RELAXED)) {
		struct vre_desc e = fuzz_desc(m->d, &st, m->heap, 16);
		uint64_t *w = (uint64_t *)&e;
		uint64_t *t;
		uint64_t r = rnd(&st);

		if (r % 3 == 0)
			t = (uint64_t *)&m->d->desc[r % 16];
		else
			t = (uint64_t *)(m->d->reg[0].hva + (m->heap - SDRV_GPA0) + 16 * (r % 64));
		__atomic_store_n(&t[0], w[0], __ATOMIC_RELAXED);
		__atomic_store_n(&t[1], w[1], __ATOMIC_RELAXED);
		__atomic_store_n(&m->d->avail->ring[rnd(&st) % 16], (uint16_t)(rnd(&st) % 17),
				 __ATOMIC_RELAXED);
	}
	return NULL;
}

START_TEST(test_concurrent_guest)
{
	struct q *q = q_new(16, 16384, 4096, false, true);
	struct mutator m = { .d = q->d, .heap = sdrv_alloc(q->d, 8192) };
	struct vre_vq_params p;
	pthread_t th;
	unsigned chains = 0, rebuilt = 0;

	vre_log_level = -1;
	ck_assert_int_eq(pthread_create(&th, NULL, mutate, &m), 0);
	sdrv_params(q->d, &p, false, true);
	for (unsigned it = 0; it < 200000; it++) {
		int n;

		if (q->vq.broken) {
			vre_vq_fini(&q->vq);
			ck_assert_int_eq(vre_vq_init(&q->vq, &p), 0);
			rebuilt++;
		}
		__atomic_store_n(&q->d->avail->idx, (uint16_t)(q->vq.last_avail_idx + it % 5),
				 __ATOMIC_RELEASE);
		n = vre_vq_fetch(&q->vq, q->ch, VRE_BURST, q->pool, 64);
		for (int i = 0; i < n; i++) {
			for (unsigned k = 0; k < (unsigned)q->ch[i].nr + q->ch[i].nw; k++)
				EXPECT(iov_inside(q->d, &q->ch[i].iov[k]));
			complete_one(q, &q->ch[i], 0);
		}
		chains += n > 0 ? (unsigned)n : 0;
	}
	__atomic_store_n(&m.stop, 1, __ATOMIC_RELAXED);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_uint_gt(chains, 1000);
	ck_assert_uint_gt(rebuilt, 100);
	ck_assert(sdrv_guards_ok(q->d));
	q_free(q);
}
END_TEST

/* max above VRE_BURST is clamped; max 0 takes nothing. */
START_TEST(test_burst_limit)
{
	struct q *q = q_new(64, 4096, 0, false, false);
	struct vre_chain ch[40];
	struct sdrv_buf e = { .gpa = SDRV_GPA0, .len = 0 };

	for (int i = 0; i < 40; i++)
		ck_assert_int_eq(sdrv_add(q->d, &e, 1, 0), i);
	sdrv_kick(q->d);
	ck_assert_int_eq(vre_vq_fetch(&q->vq, ch, 0, q->pool, POOL), 0);
	ck_assert_uint_eq(q->vq.last_avail_idx, 0);
	ck_assert_int_eq(vre_vq_fetch(&q->vq, ch, 40, q->pool, POOL), VRE_BURST);
	ck_assert_int_eq(vre_vq_fetch(&q->vq, ch, 40, q->pool, POOL), 8);
	ck_assert_uint_eq(ch[7].id, 39);
	ck_assert_int_eq(vre_vq_complete(&q->vq, NULL, VRE_COMPLETE_MAX + 1), -EINVAL);
	ck_assert_uint_eq(q->d->used->idx, 0);
	q_free(q);
}
END_TEST

/* On a split ring vre_vq_complete_fetched writes what vre_vq_complete
 * does: the used elements in completion order, one index store, over
 * several laps of the used index of an 8-entry ring. */
START_TEST(test_complete_fetched)
{
	struct q *q = q_new(8, 4096, 0, false, false);
	struct vre_chain ch[3];
	struct vre_used u[3];
	struct sdrv_buf e = { .gpa = SDRV_GPA0, .len = 0 };
	static const int order[3] = { 2, 0, 1 };
	uint16_t id;
	uint32_t len;

	for (int round = 0; round < 6; round++) {
		int head[3];

		for (int i = 0; i < 3; i++)
			ck_assert_int_ge(head[i] = sdrv_add(q->d, &e, 1, 0), 0);
		sdrv_kick(q->d);
		ck_assert_int_eq(vre_vq_fetch(&q->vq, ch, 3, q->pool, POOL), 3);
		for (int i = 0; i < 3; i++)
			u[i] = vre_used_of(&ch[order[i]], (uint32_t)(round * 10 + i));
		if (round == 0) {
			struct vre_used bad = u[0];

			bad.id = 8;
			ck_assert_int_eq(vre_vq_complete(&q->vq, &bad, 1), -EINVAL);
			ck_assert_uint_eq(q->d->used->idx, 0);
		}
		ck_assert_int_eq(vre_vq_complete_fetched(&q->vq, u, 3), 0);
		ck_assert_uint_eq(q->d->used->idx, (uint16_t)(3 * round + 3));
		for (int i = 0; i < 3; i++) {
			ck_assert_int_eq(sdrv_get_used(q->d, &id, &len, NULL), 1);
			ck_assert_int_eq(id, head[order[i]]);
			ck_assert_uint_eq(len, (uint32_t)(round * 10 + i));
		}
	}
	ck_assert_int_eq(vre_vq_complete_fetched(&q->vq, u, 0), 0);
	ck_assert_int_eq(vre_vq_complete_fetched(&q->vq, u, VRE_COMPLETE_MAX + 1), -EINVAL);
	ck_assert_int_eq(q->vq.broken, 0);
	q_free(q);
}
END_TEST

/* 65,540 completions without asking needs_notify: the used index lapped
 * the last signalled one, so the rule cannot be trusted and the device
 * notifies (the index did pass used_event on the way). */
START_TEST(test_notify_after_full_lap)
{
	struct q *q = q_new(256, 4096, 0, true, false);
	struct sdrv_buf e = { .gpa = SDRV_GPA0, .len = 0 };
	unsigned done = 0;

	start_at(q, 0);
	*sdrv_used_event(q->d) = 0;
	ck_assert(one_round(q)); /* signalled = 1 */
	while (done < 65540) {
		struct vre_used u[VRE_BURST];
		uint16_t id;
		uint32_t len;
		int n;

		for (unsigned k = 0; k < VRE_BURST && done + k < 65540; k++)
			sdrv_add(q->d, &e, 1, 0);
		sdrv_kick(q->d);
		n = vre_vq_fetch(&q->vq, q->ch, VRE_BURST, q->pool, POOL);
		if (n <= 0)
			ck_assert_int_gt(n, 0);
		for (int i = 0; i < n; i++)
			u[i] = vre_used_of(&q->ch[i], 0);
		vre_vq_complete(&q->vq, u, (unsigned)n);
		while (sdrv_get_used(q->d, &id, &len, NULL) == 1)
			;
		done += (unsigned)n;
	}
	ck_assert_uint_eq(q->d->used->idx, 5);
	/* Without the lap check: need_event(0, 5, 1) is false. */
	ck_assert(!vre_need_event(0, 5, 1));
	ck_assert(vre_vq_needs_notify(&q->vq));
	ck_assert(!vre_vq_needs_notify(&q->vq));
	q_free(q);
}
END_TEST

/* ------------------------------------------------------- rebind */

START_TEST(test_rebind_keeps_indexes)
{
	struct q *q = q_new(8, 4096, 0, false, false);
	struct sdrv *d2 = sdrv_new(8, 4096, 0);
	struct sdrv_buf e = { .gpa = SDRV_GPA0, .len = 0 };
	struct vre_vq_params p;

	start_at(q, 300);
	for (int i = 0; i < 3; i++)
		ck_assert_int_ge(sdrv_add(q->d, &e, 1, 0), 0);
	sdrv_kick(q->d);
	ck_assert_int_eq(vre_vq_fetch(&q->vq, q->ch, 2, q->pool, POOL), 2);
	complete_one(q, &q->ch[0], 0);
	/* The same guest memory now seen at other host addresses. */
	memcpy(d2->reg[0].hva, q->d->reg[0].hva, q->d->reg[0].len);
	sdrv_params(d2, &p, false, false);
	p.desc = (uint8_t *)d2->desc + 4;
	ck_assert_int_eq(vre_vq_rebind(&q->vq, &p), -EINVAL);
	sdrv_params(d2, &p, false, false);
	ck_assert_int_eq(vre_vq_rebind(&q->vq, &p), 0);
	ck_assert_uint_eq(q->vq.last_avail_idx, 302);
	ck_assert_uint_eq(q->vq.last_used_idx, 301);
	ck_assert_ptr_eq(q->vq.sp.used, d2->used);
	ck_assert_int_eq(vre_vq_fetch(&q->vq, q->ch, VRE_BURST, q->pool, POOL), 1);
	ck_assert_uint_eq(q->ch[0].id, q->d->avail->ring[302 & 7]);
	complete_one(q, &q->ch[0], 0);
	ck_assert_uint_eq(d2->used->idx, 302);
	ck_assert_uint_eq(q->d->used->idx, 301); /* old memory left alone */
	sdrv_free(d2);
	q_free(q);
}
END_TEST

/* ------------------------------------------------------- inflight */

static struct vre_inflight_split *region_new(uint16_t size, size_t *len)
{
	*len = vre_inflight_queue_bytes(size, false);
	return calloc(1, *len);
}

START_TEST(test_inflight_marking)
{
	struct q *q = q_new(8, 4096, 0, false, false);
	struct sdrv_buf e = { .gpa = SDRV_GPA0, .len = 0 };
	size_t len;
	struct vre_inflight_split *r = region_new(8, &len);
	struct vre_used u[2];

	start_at(q, 40);
	ck_assert_int_eq(vre_vq_inflight_attach(&q->vq, r, len - 1, 0), -EINVAL);
	ck_assert_int_eq(vre_vq_inflight_attach(&q->vq, r, len, 0xabc), 0);
	ck_assert_uint_eq(r->version, 1);
	ck_assert_uint_eq(r->desc_num, 8);
	ck_assert_uint_eq(r->features, 0xabc);
	ck_assert_uint_eq(r->used_idx, 40);
	ck_assert_uint_eq(q->vq.last_avail_idx, 40);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(sdrv_add(q->d, &e, 1, 0), i);
	sdrv_kick(q->d);
	ck_assert_int_eq(vre_vq_fetch(&q->vq, q->ch, 3, q->pool, POOL), 3);
	for (int i = 0; i < 3; i++) {
		ck_assert_uint_eq(r->desc[i].inflight, 1);
		ck_assert_uint_eq(r->desc[i].counter, (uint64_t)i);
	}
	ck_assert_uint_eq(r->desc[3].inflight, 0);
	/* A batch of two, out of order: 2 then 0. */
	u[0] = vre_used_of(&q->ch[2], 0);
	u[1] = vre_used_of(&q->ch[0], 0);
	ck_assert_int_eq(vre_vq_complete(&q->vq, u, 2), 0);
	ck_assert_uint_eq(r->desc[0].inflight, 0);
	ck_assert_uint_eq(r->desc[1].inflight, 1);
	ck_assert_uint_eq(r->desc[2].inflight, 0);
	ck_assert_uint_eq(r->last_batch_head, 0);
	ck_assert_uint_eq(r->desc[0].next, 2);
	ck_assert_uint_eq(r->used_idx, 42);
	ck_assert_uint_eq(q->d->used->ring[40 & 7].id, 2);
	ck_assert_uint_eq(q->d->used->ring[41 & 7].id, 0);
	/* Bad ids never reach memory. */
	u[0].id = 8;
	ck_assert_int_eq(vre_vq_complete(&q->vq, u, 1), -EINVAL);
	/* with inflight records the unchecked entry checks too */
	ck_assert_int_eq(vre_vq_complete_fetched(&q->vq, u, 1), -EINVAL);
	ck_assert_uint_eq(q->d->used->idx, 42);
	ck_assert_int_eq(vre_vq_fetch(&q->vq, q->ch, 3, q->pool, POOL), 1);
	ck_assert_uint_eq(r->desc[3].counter, 3);
	/* and records as vre_vq_complete does */
	u[0] = vre_used_of(&q->ch[1], 0);
	ck_assert_int_eq(vre_vq_complete_fetched(&q->vq, u, 1), 0);
	ck_assert_uint_eq(r->desc[1].inflight, 0);
	ck_assert_uint_eq(r->desc[3].inflight, 1);
	ck_assert_uint_eq(r->used_idx, 43);
	ck_assert_uint_eq(q->d->used->idx, 43);
	ck_assert_uint_eq(q->d->used->ring[42 & 7].id, 1);
	q_free(q);
	free(r);
}
END_TEST

START_TEST(test_inflight_corrupt)
{
	size_t len;
	struct vre_inflight_split *r = region_new(8, &len);
	struct q *q = q_new(8, 4096, 0, false, false);

	r->version = 1;
	r->desc_num = 16;
	ck_assert_int_eq(vre_vq_inflight_attach(&q->vq, r, len, 0), -EINVAL);
	ck_assert_uint_eq(q->vq.broken, VRE_RE_INFLIGHT_CORRUPT);
	q_free(q);

	q = q_new(8, 4096, 0, false, false);
	r->version = 9;
	r->desc_num = 8;
	ck_assert_int_eq(vre_vq_inflight_attach(&q->vq, r, len, 0), -EINVAL);
	ck_assert_uint_eq(q->vq.broken, VRE_RE_INFLIGHT_CORRUPT);
	q_free(q);

	/* used_idx more than the queue size behind used->idx. */
	q = q_new(8, 4096, 0, false, false);
	r->version = 1;
	q->d->used->idx = 20;
	r->used_idx = 11;
	ck_assert_int_eq(vre_vq_inflight_attach(&q->vq, r, len, 0), -EINVAL);
	ck_assert_uint_eq(q->vq.broken, VRE_RE_INFLIGHT_CORRUPT);
	q_free(q);

	/* The batch list leaves the table. */
	q = q_new(8, 4096, 0, false, false);
	q->d->used->idx = 3;
	r->used_idx = 1;
	r->last_batch_head = 5;
	r->desc[5].next = 200;
	ck_assert_int_eq(vre_vq_inflight_attach(&q->vq, r, len, 0), -EINVAL);
	ck_assert_uint_eq(q->vq.broken, VRE_RE_INFLIGHT_CORRUPT);
	q_free(q);

	/* Only inflight == 1 counts; other values are neither counted nor
	 * copied. */
	memset(r, 0, len);
	q = q_new(8, 4096, 0, false, false);
	r->version = 1;
	r->desc_num = 8;
	r->desc[1].inflight = 2;
	r->desc[1].counter = 1;
	r->desc[6].inflight = 1;
	r->desc[6].counter = 50;
	r->desc[3].inflight = 1;
	r->desc[3].counter = 70;
	ck_assert_int_eq(vre_vq_inflight_attach(&q->vq, r, len, 0), 2);
	ck_assert_uint_eq(q->vq.resubmit[0], 6);
	ck_assert_uint_eq(q->vq.resubmit[1], 3);
	ck_assert_uint_eq(q->vq.inflight_counter, 71);
	ck_assert_uint_eq(q->vq.last_avail_idx, 2);
	q_free(q);
	free(r);
}
END_TEST

/* ---- crash at every step ---- */

#define CRASH_SIZE 8
#define CRASH_CHAINS 6

struct snap {
	uint8_t *mem;   /* region 0 */
	uint8_t *infl;  /* inflight region */
	unsigned marked;    /* fetch marks done so far */
	unsigned published; /* batches published so far */
	char step[32];
};

static struct {
	struct q *q;
	void *region;
	size_t rlen;
	struct snap s[256];
	unsigned n;
	unsigned marked, published;
} crash;

static void take_snap(const char *step)
{
	struct snap *s = &crash.s[crash.n++];

	ck_assert_uint_lt(crash.n, 256);
	s->mem = malloc(crash.q->d->reg[0].len);
	s->infl = malloc(crash.rlen);
	memcpy(s->mem, crash.q->d->reg[0].hva, crash.q->d->reg[0].len);
	memcpy(s->infl, crash.region, crash.rlen);
	s->marked = crash.marked;
	s->published = crash.published;
	snprintf(s->step, sizeof(s->step), "%s", step);
}

static void crash_hook(struct vre_vq *vq, const char *step)
{
	if (vq != &crash.q->vq)
		return;
	if (!strcmp(step, "fetch: inflight"))
		crash.marked++;
	if (!strcmp(step, "complete: published"))
		crash.published++;
	take_snap(step);
}

/* Recovers from snapshot s in a fresh world and checks the result against
 * the order the chains were really fetched and completed in. */
static void recover_and_check(const struct snap *s, const struct sdrv *orig,
			      const uint16_t *fetched, const uint16_t (*batch)[3],
			      const unsigned *batch_n)
{
	struct q *q = q_new(CRASH_SIZE, 4096, 0, false, false);
	uint8_t *region = malloc(crash.rlen);
	unsigned want_n = 0, done_before = 0, completions[CRASH_SIZE] = { 0 };
	uint16_t want[CRASH_SIZE], id;
	uint32_t len;
	uint64_t tok;
	int n, r;

	/* Guest memory and driver state as they were at the crash. */
	memcpy(q->d->reg[0].hva, s->mem, q->d->reg[0].len);
	memcpy(region, s->infl, crash.rlen);
	q->d->free_head = orig->free_head;
	q->d->num_free = orig->num_free;
	q->d->avail_shadow = orig->avail_shadow;
	memcpy(q->d->chain_ndesc, orig->chain_ndesc, sizeof(uint16_t) * CRASH_SIZE);
	memcpy(q->d->token, orig->token, sizeof(uint64_t) * CRASH_SIZE);

	/* Expected: marked heads not in a published batch, in fetch order. */
	for (unsigned i = 0; i < s->marked; i++) {
		bool done = false;

		for (unsigned b = 0; b < s->published; b++)
			for (unsigned k = 0; k < batch_n[b]; k++)
				done |= batch[b][k] == fetched[i];
		if (!done)
			want[want_n++] = fetched[i];
	}
	/* The guest sees the completions that were published. */
	while ((r = sdrv_get_used(q->d, &id, &len, &tok)) == 1) {
		completions[id]++;
		ck_assert_uint_eq(len, 100 + id);
		done_before++;
	}
	ck_assert_int_eq(r, 0);

	vre_vq_set_base(&q->vq, 0); /* overridden by the region */
	n = vre_vq_inflight_attach(&q->vq, region, crash.rlen, 0);
	ck_assert_msg(n == (int)want_n, "step %s: %d resubmits, want %u", s->step, n, want_n);
	for (unsigned i = 0; i < want_n; i++)
		ck_assert_msg(q->vq.resubmit[i] == want[i], "step %s: resubmit[%u] %u want %u",
			      s->step, i, q->vq.resubmit[i], want[i]);
	ck_assert_uint_eq(q->vq.last_used_idx, q->d->used->idx);
	ck_assert_uint_eq(q->vq.last_avail_idx, (uint16_t)(q->d->used->idx + want_n));
	ck_assert_uint_eq(((struct vre_inflight_split *)region)->used_idx, q->d->used->idx);

	/* Run the queue dry: resubmits first (in order), then what was never
	 * taken; every chain must complete exactly once overall. */
	for (unsigned got = 0;;) {
		n = vre_vq_fetch(&q->vq, q->ch, VRE_BURST, q->pool, POOL);
		ck_assert_int_ge(n, 0);
		if (n == 0)
			break;
		for (int i = 0; i < n; i++, got++) {
			if (got < want_n)
				ck_assert_uint_eq(q->ch[i].id, want[got]);
			dev_check_readable(&q->ch[i], q->d->token[q->ch[i].id]);
			complete_one(q, &q->ch[i], 100 + q->ch[i].id);
		}
	}
	while ((r = sdrv_get_used(q->d, &id, &len, &tok)) == 1) {
		completions[id]++;
		ck_assert_uint_eq(len, 100 + id);
	}
	ck_assert_msg(r == 0, "step %s: bad or double completion (%d)", s->step, r);
	for (unsigned i = 0; i < CRASH_CHAINS; i++)
		ck_assert_msg(completions[i] == 1, "step %s: head %u completed %u times",
			      s->step, i, completions[i]);
	ck_assert_uint_eq(q->d->num_free, CRASH_SIZE);
	/* Everything is recorded as done in the region. */
	for (unsigned i = 0; i < CRASH_SIZE; i++)
		ck_assert_uint_eq(((struct vre_inflight_split *)region)->desc[i].inflight, 0);
	q_free(q);
	free(region);
}

START_TEST(test_inflight_crash_every_step)
{
	struct sdrv *orig;
	uint64_t base;
	uint16_t fetched[CRASH_SIZE];
	uint16_t batch[4][3];
	unsigned batch_n[4] = { 0 }, nf = 0, nb = 0;
	struct vre_used u[3];
	int n;

	memset(&crash, 0, sizeof(crash));
	crash.q = q_new(CRASH_SIZE, 4096, 0, false, false);
	crash.region = region_new(CRASH_SIZE, &crash.rlen);
	ck_assert_int_eq(vre_vq_inflight_attach(&crash.q->vq, crash.region, crash.rlen, 0), 0);
	base = sdrv_alloc(crash.q->d, 64 * CRASH_CHAINS);
	for (unsigned i = 0; i < CRASH_CHAINS; i++) {
		uint64_t off = 0;
		struct sdrv_buf b = rbuf(crash.q->d, base + 64 * i, 9, 1000 + i, &off);

		ck_assert_int_eq(sdrv_add(crash.q->d, &b, 1, 1000 + i), (int)i);
	}
	sdrv_kick(crash.q->d);
	orig = crash.q->d;
	take_snap("start");
	vring_step_hook = crash_hook;

	/* Fetch 3 (heads 0 1 2), complete {2, 0}, fetch 2 (3 4), complete
	 * {1, 4, 3}; head 5 is never taken. */
	n = vre_vq_fetch(&crash.q->vq, crash.q->ch, 3, crash.q->pool, POOL);
	ck_assert_int_eq(n, 3);
	for (int i = 0; i < n; i++)
		fetched[nf++] = crash.q->ch[i].id;
	u[0] = vre_used_of(&crash.q->ch[2], 102);
	u[1] = vre_used_of(&crash.q->ch[0], 100);
	batch[nb][0] = 2;
	batch[nb][1] = 0;
	batch_n[nb++] = 2;
	ck_assert_int_eq(vre_vq_complete(&crash.q->vq, u, 2), 0);
	u[0] = vre_used_of(&crash.q->ch[1], 101);
	n = vre_vq_fetch(&crash.q->vq, crash.q->ch, 2, crash.q->pool, POOL);
	ck_assert_int_eq(n, 2);
	for (int i = 0; i < n; i++)
		fetched[nf++] = crash.q->ch[i].id;
	u[1] = vre_used_of(&crash.q->ch[1], 104);
	u[2] = vre_used_of(&crash.q->ch[0], 103);
	batch[nb][0] = 1;
	batch[nb][1] = 4;
	batch[nb][2] = 3;
	batch_n[nb++] = 3;
	ck_assert_int_eq(vre_vq_complete(&crash.q->vq, u, 3), 0);
	vring_step_hook = NULL;

	ck_assert_uint_eq(nf, 5);
	for (unsigned i = 0; i < nf; i++)
		ck_assert_uint_eq(fetched[i], i);
	for (unsigned i = 0; i < crash.n; i++) {
		recover_and_check(&crash.s[i], orig, fetched, (const uint16_t (*)[3])batch,
				  batch_n);
		free(crash.s[i].mem);
		free(crash.s[i].infl);
	}
	/* Every step was visited: 5 chains x 3 fetch steps, 2 batches x
	 * (elems, linked, published, used_idx) + 5 clears, plus the start. */
	ck_assert_uint_eq(crash.n, 1 + 15 + 8 + 5);
	q_free(crash.q);
	free(crash.region);
}
END_TEST

/* Resubmitted chains are marked with fresh counters, so a second crash
 * still orders them by their latest hand-out. */
START_TEST(test_inflight_resubmit_counters)
{
	size_t len;
	struct vre_inflight_split *r = region_new(8, &len);
	struct q *q = q_new(8, 4096, 0, false, false);
	uint64_t base = sdrv_alloc(q->d, 64);

	for (int i = 0; i < 3; i++) {
		uint64_t off = 0;
		struct sdrv_buf b = rbuf(q->d, base + 16 * i, 4, (uint64_t)i, &off);

		ck_assert_int_eq(sdrv_add(q->d, &b, 1, (uint64_t)i), i);
	}
	sdrv_kick(q->d);
	r->version = 1;
	r->desc_num = 8;
	r->desc[0].inflight = 1;
	r->desc[0].counter = 9;
	r->desc[1].inflight = 1;
	r->desc[1].counter = 4;
	ck_assert_int_eq(vre_vq_inflight_attach(&q->vq, r, len, 0), 2);
	ck_assert(vre_vq_avail_pending(&q->vq));
	ck_assert(vre_vq_notify_enable(&q->vq));
	/* A rebind (memory table changed) keeps the region and the queue of
	 * resubmissions. */
	{
		struct vre_vq_params p;

		sdrv_params(q->d, &p, false, false);
		ck_assert_int_eq(vre_vq_rebind(&q->vq, &p), 0);
		ck_assert_ptr_eq(q->vq.inflight, r);
		ck_assert_uint_eq(q->vq.resubmit_num, 2);
		ck_assert_uint_eq(q->vq.resubmit_pos, 0);
		ck_assert_uint_eq(q->vq.last_avail_idx, 2);
	}
	/* With a pool of one iovec, one chain per fetch: order 1, 0, then 2. */
	ck_assert_int_eq(vre_vq_fetch(&q->vq, q->ch, VRE_BURST, q->pool, 1), 1);
	ck_assert_uint_eq(q->ch[0].id, 1);
	dev_check_readable(&q->ch[0], 1);
	ck_assert_uint_eq(r->desc[1].counter, 10);
	ck_assert_int_eq(vre_vq_fetch(&q->vq, q->ch, VRE_BURST, q->pool, 1), 1);
	ck_assert_uint_eq(q->ch[0].id, 0);
	ck_assert_uint_eq(r->desc[0].counter, 11);
	ck_assert_int_eq(vre_vq_fetch(&q->vq, q->ch, VRE_BURST, q->pool, POOL), 1);
	ck_assert_uint_eq(q->ch[0].id, 2);
	ck_assert_uint_eq(r->desc[2].counter, 12);
	ck_assert_uint_eq(q->vq.last_avail_idx, 3);
	q_free(q);
	free(r);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("split");
	TCase *tc = tcase_create("ring");
	TCase *tv = tcase_create("validation");
	TCase *ti = tcase_create("inflight");
	SRunner *sr;
	int failed;

	vre_log_set_level(VRE_LOG_ERR);
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, test_init_rejects);
	tcase_add_test(tc, test_sizes);
	tcase_add_test(tc, test_single_edges);
	tcase_add_test(tc, test_full_indirect_table);
	tcase_add_test(tc, test_wrap_around);
	tcase_add_test(tc, test_indirect_chain);
	tcase_add_test(tc, test_region_split);
	tcase_add_test(tc, test_zero_length);
	tcase_add_test(tc, test_pool);
	tcase_add_test(tc, test_notify_flags);
	tcase_add_test(tc, test_notify_event_idx);
	tcase_add_test(tc, test_notify_enable_disable);
	tcase_add_test(tc, test_rebind_keeps_indexes);
	tcase_add_test(tc, test_burst_limit);
	tcase_add_test(tc, test_complete_fetched);
	tcase_add_test(tc, test_notify_after_full_lap);
	suite_add_tcase(s, tc);
	tcase_add_loop_test(tv, test_validation, 0,
			    (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
	tcase_add_test(tv, test_validation_first);
	tcase_add_test(tv, test_resync_to_used);
	tcase_add_test(tv, test_resync_used_from_ring);
	tcase_add_test(tv, test_avail_leap);
	tcase_add_test(tv, test_chain_bounds);
	tcase_add_loop_test(tv, test_fuzz, 0, 4);
	tcase_add_test(tv, test_concurrent_guest);
	tcase_set_timeout(tv, 120);
	suite_add_tcase(s, tv);
	tcase_set_timeout(ti, 60);
	tcase_add_test(ti, test_inflight_marking);
	tcase_add_test(ti, test_inflight_corrupt);
	tcase_add_test(ti, test_inflight_crash_every_step);
	tcase_add_test(ti, test_inflight_resubmit_counters);
	suite_add_tcase(s, ti);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
