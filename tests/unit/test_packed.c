/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The packed ring, device (vring/packed.c) against a test driver
 * (vdrv_packed.c) over real ring memory: two guest regions, adjacent in GPA
 * and apart in host memory, with guard bytes around both.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "vdrv_packed.h"
#include "vre_vq.h"
/* Built with VRE_RING_STEP_HOOK: vring_step_hook is called after each
 * recovery-relevant store. */
#include "vring_internal.h"

#define GUARD 4096u
#define GUARD_BYTE 0xA5
#define A_GPA 0x100000ull

/* check's ck_assert records every passing assertion with a write(2); hot
 * loops use this, which costs nothing until it fails. */
#define REQ(c)                                                                 \
	do {                                                                   \
		if (!(c))                                                      \
			ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #c);     \
	} while (0)

struct env {
	uint8_t *host;
	size_t host_len;
	uint8_t *a, *b;
	uint64_t a_len, b_len, b_gpa;
	struct vre_mem_map map;
	struct vre_vq vq;
	struct pdrv drv;
	struct vre_vq_params p;
	uint64_t bump;
	uint16_t size;
	void *inf;
	size_t inf_len;
};

static void *gp(struct env *e, uint64_t gpa)
{
	if (gpa >= A_GPA && gpa - A_GPA < e->a_len)
		return e->a + (gpa - A_GPA);
	REQ(gpa >= e->b_gpa && gpa - e->b_gpa < e->b_len);
	return e->b + (gpa - e->b_gpa);
}

/* Copies to guest memory byte by byte, so a range may cross from A to B. */
static void gwrite(struct env *e, uint64_t gpa, const void *src, size_t len)
{
	for (size_t i = 0; i < len; i++)
		*(uint8_t *)gp(e, gpa + i) = ((const uint8_t *)src)[i];
}

static uint64_t galloc(struct env *e, uint64_t len)
{
	uint64_t g = e->bump;

	e->bump = (e->bump + len + 15) & ~15ull;
	REQ((e->bump) <= (A_GPA + e->a_len));
	return g;
}

static struct env *env_open(uint16_t size, uint64_t a_len, uint64_t b_len,
			    bool event_idx, bool indirect)
{
	struct env *e = calloc(1, sizeof(*e));
	struct vre_mem_region ra = { .gpa = A_GPA, .size = a_len, .uva = 0x7000000000ull };
	struct vre_mem_region rb = { .size = b_len, .uva = 0x7100000000ull };

	ck_assert_ptr_nonnull(e);
	e->size = size;
	e->a_len = a_len;
	e->b_len = b_len;
	e->b_gpa = A_GPA + a_len;
	e->host_len = 3 * GUARD + a_len + b_len;
	e->host = aligned_alloc(4096, e->host_len);
	ck_assert_ptr_nonnull(e->host);
	memset(e->host, GUARD_BYTE, e->host_len);
	e->a = e->host + GUARD;
	e->b = e->a + a_len + GUARD;
	memset(e->a, 0, a_len);
	memset(e->b, 0, b_len);
	ra.hva = e->a;
	rb.gpa = e->b_gpa;
	rb.hva = e->b;
	vre_mem_map_init(&e->map);
	ck_assert_int_eq(vre_mem_map_add(&e->map, &ra), 0);
	ck_assert_int_eq(vre_mem_map_add(&e->map, &rb), 0);
	e->bump = A_GPA;
	e->p.size = size;
	e->p.packed = true;
	e->p.event_idx = event_idx;
	e->p.indirect = indirect;
	e->p.desc = gp(e, galloc(e, 16ull * size));
	e->p.driver = gp(e, galloc(e, 4));
	e->p.device = gp(e, galloc(e, 4));
	e->p.mem = &e->map;
	pdrv_init(&e->drv, size, e->p.desc, e->p.driver, e->p.device);
	ck_assert_int_eq(vre_vq_init(&e->vq, &e->p), 0);
	e->inf_len = vre_inflight_queue_bytes(size, true);
	e->inf = aligned_alloc(64, e->inf_len);
	ck_assert_ptr_nonnull(e->inf);
	memset(e->inf, 0, e->inf_len);
	return e;
}

static void guards_ok(struct env *e)
{
	for (size_t i = 0; i < GUARD; i++) {
		REQ(e->host[i] == GUARD_BYTE);
		REQ(e->a[e->a_len + i] == GUARD_BYTE);
		REQ(e->b[e->b_len + i] == GUARD_BYTE);
	}
}

static void env_close(struct env *e)
{
	guards_ok(e);
	vre_vq_fini(&e->vq);
	free(e->inf);
	free(e->host);
	free(e);
}

static uint8_t pat(uint32_t seq, uint32_t off)
{
	return (uint8_t)(seq * 31u + off * 7u + 1u);
}

/* ---- A chain as the test knows it: ring descriptors and flat buffers ---- */

struct xbuf {
	uint64_t gpa;
	uint32_t len;
	bool w;
};

struct xchain {
	uint16_t id;
	uint32_t seq;
	unsigned n;            /* ring descriptors */
	struct pdrv_desc d[8];
	unsigned nb;           /* buffers, indirect tables flattened */
	struct xbuf b[8];
};

static void x_add(struct xchain *x, uint64_t gpa, uint32_t len, bool w)
{
	x->d[x->n].addr = gpa;
	x->d[x->n].len = len;
	x->d[x->n].flags = w ? VRE_DESC_F_WRITE : 0;
	x->n++;
	x->b[x->nb].gpa = gpa;
	x->b[x->nb].len = len;
	x->b[x->nb].w = w;
	x->nb++;
}

static void x_indirect(struct env *e, struct xchain *x, const struct xbuf *tb, unsigned n)
{
	uint64_t t = galloc(e, 16ull * n);
	struct vre_packed_desc *td = gp(e, t);

	for (unsigned i = 0; i < n; i++) {
		td[i].addr = tb[i].gpa;
		td[i].len = tb[i].len;
		td[i].flags = tb[i].w ? VRE_DESC_F_WRITE : 0;
		td[i].id = 0;
		x->b[x->nb++] = tb[i];
	}
	x->d[x->n].addr = t;
	x->d[x->n].len = 16 * n;
	x->d[x->n].flags = VRE_DESC_F_INDIRECT;
	x->n++;
}

static uint64_t x_rlen(const struct xchain *x, bool w)
{
	uint64_t s = 0;

	for (unsigned i = 0; i < x->nb; i++)
		if (x->b[i].w == w)
			s += x->b[i].len;
	return s;
}

/* Driver side: fill readable buffers, clear writable ones, post. */
static void x_post(struct env *e, const struct xchain *x)
{
	for (unsigned i = 0; i < x->nb; i++) {
		uint8_t *p = x->b[i].len ? gp(e, x->b[i].gpa) : NULL;

		for (uint32_t k = 0; k < x->b[i].len; k++)
			p[k] = x->b[i].w ? 0 : pat(x->seq, k + 100 * i);
	}
	REQ((pdrv_post(&e->drv, x->d, x->n, x->id, false)) == (0));
}

/* Device side: the chain is exactly the buffers the driver posted (one
 * iovec each here: no buffer crosses a region), the readable bytes are the
 * driver's, and the writable ones get the device's pattern. */
static uint32_t x_serve(struct env *e, const struct vre_chain *c, const struct xchain *x)
{
	unsigned r = 0, w = 0;

	REQ((c->id) == (x->id));
	REQ((c->err) == (0));
	REQ((c->rlen) == (x_rlen(x, false)));
	REQ((c->wlen) == (x_rlen(x, true)));
	for (unsigned i = 0; i < x->nb; i++) {
		const struct iovec *v;

		if (x->b[i].len == 0)
			continue;
		if (x->b[i].w) {
			v = &c->iov[c->nr + w++];
			for (uint32_t k = 0; k < x->b[i].len; k++)
				((uint8_t *)v->iov_base)[k] = pat(x->seq ^ 0x5a5a, k + 100 * i);
		} else {
			v = &c->iov[r++];
			for (uint32_t k = 0; k < x->b[i].len; k++)
				REQ((((uint8_t *)v->iov_base)[k]) == (pat(x->seq, k + 100 * i)));
		}
		REQ((v->iov_base) == (gp(e, x->b[i].gpa)));
		REQ((v->iov_len) == (x->b[i].len));
	}
	REQ((c->nr) == (r));
	REQ((c->nw) == (w));
	return (uint32_t)c->wlen;
}

/* Driver side of a completion: the length and the device's bytes. */
static void x_check_used(struct env *e, const struct xchain *x, uint32_t len)
{
	REQ((len) == (x_rlen(x, true)));
	for (unsigned i = 0; i < x->nb; i++) {
		const uint8_t *p = x->b[i].len ? gp(e, x->b[i].gpa) : NULL;

		if (!x->b[i].w)
			continue;
		for (uint32_t k = 0; k < x->b[i].len; k++)
			REQ((p[k]) == (pat(x->seq ^ 0x5a5a, k + 100 * i)));
	}
}

/* ---- Setup, base ------------------------------------------------------ */

START_TEST(test_init_checks)
{
	struct env *e = env_open(8, 1 << 16, 4096, false, false);
	struct vre_vq vq;
	struct vre_vq_params p = e->p;

	ck_assert(e->vq.avail_wrap && e->vq.used_wrap);
	ck_assert_uint_eq(vre_vq_get_base(&e->vq), 1u << 15 | 1u << 31);
	p.desc = (uint8_t *)e->p.desc + 8;
	ck_assert_int_eq(vre_vq_init(&vq, &p), -EINVAL);
	p = e->p;
	p.driver = (uint8_t *)e->p.driver + 2;
	ck_assert_int_eq(vre_vq_init(&vq, &p), -EINVAL);
	p = e->p;
	p.device = (uint8_t *)e->p.device + 1;
	ck_assert_int_eq(vre_vq_rebind(&e->vq, &p), -EINVAL);
	p = e->p;
	p.size = 0;
	ck_assert_int_eq(vre_vq_init(&vq, &p), -EINVAL);
	/* set/get base: bits 0-14 avail, 15 wrap, 16-30 used, 31 wrap */
	ck_assert_int_eq(vre_vq_set_base(&e->vq, 5 | 3u << 16 | 1u << 31), 0);
	ck_assert_uint_eq(e->vq.last_avail_idx, 5);
	ck_assert(!e->vq.avail_wrap);
	ck_assert_uint_eq(e->vq.last_used_idx, 3);
	ck_assert(e->vq.used_wrap);
	ck_assert_uint_eq(vre_vq_get_base(&e->vq), 5 | 3u << 16 | 1u << 31);
	ck_assert_int_eq(vre_vq_set_base(&e->vq, 8), -EINVAL);
	/* rebind keeps indexes */
	ck_assert_int_eq(vre_vq_rebind(&e->vq, &e->p), 0);
	ck_assert_uint_eq(vre_vq_get_base(&e->vq), 5 | 3u << 16 | 1u << 31);
	env_close(e);
}
END_TEST

/* ---- Round trips over many laps ---------------------------------------- */

static unsigned shape_len(uint32_t seq, uint16_t size)
{
	unsigned n = 1 + seq % 4;

	return n > size ? size : n;
}

/* Driver posts, device serves in bursts (completing in reverse or in order
 * by turns), driver reaps and checks bytes, for `ops` chains. */
static void roundtrip(uint16_t size, uint32_t ops)
{
	uint64_t per_id = 64;
	struct env *e = env_open(size, ((16ull * size + 64 + per_id * size * 2) + 4095) & ~4095ull,
				 4096, false, false);
	struct xchain *xs = calloc(size, sizeof(*xs));
	uint16_t *free_ids = malloc(size * sizeof(*free_ids));
	uint64_t *buf = malloc(size * sizeof(*buf));
	struct iovec pool[256];
	struct vre_chain ch[VRE_BURST];
	struct vre_used used[VRE_BURST];
	uint32_t seq = 0, done = 0, nfree = size, rounds = 0;

	for (uint32_t i = 0; i < size; i++) {
		free_ids[i] = (uint16_t)(size - 1 - i);
		buf[i] = galloc(e, per_id);
	}
	while (done < ops) {
		/* driver: post while ids and slots last */
		for (unsigned k = 0; k < 96 && seq < ops && nfree; k++) {
			unsigned n = shape_len(seq, size), nr = (n + 1) / 2;
			uint16_t id = free_ids[nfree - 1];
			struct xchain *x = &xs[id];

			if (n > e->drv.free_slots)
				break;
			nfree--;
			memset(x, 0, sizeof(*x));
			x->id = id;
			x->seq = seq;
			if (n == 1 && (seq & 1))
				nr = 0;
			for (unsigned j = 0; j < n; j++)
				x_add(x, buf[id] + 8 * j, 8, j >= nr);
			x_post(e, x);
			seq++;
		}
		/* device */
		for (;;) {
			int n = vre_vq_fetch(&e->vq, ch, VRE_BURST, pool, 256);

			REQ((n) >= (0));
			if (n == 0)
				break;
			for (int i = 0; i < n; i++) {
				uint32_t len = x_serve(e, &ch[i], &xs[ch[i].id]);
				int at = (rounds & 1) ? i : n - 1 - i;

				used[at] = vre_used_of(&ch[i], len);
			}
			REQ((vre_vq_complete(&e->vq, used, (unsigned)n)) == (0));
			rounds++;
		}
		/* driver reaps */
		for (;;) {
			uint16_t id;
			uint32_t len;
			int r = pdrv_get_used(&e->drv, &id, &len);

			REQ((r) >= (0));
			if (r == 0)
				break;
			x_check_used(e, &xs[id], len);
			free_ids[nfree++] = id;
			done++;
		}
	}
	REQ((done) == (ops));
	REQ((e->vq.broken) == (0));
	REQ((e->vq.last_avail_idx) == (e->drv.avail_idx));
	REQ((e->vq.avail_wrap) == (e->drv.avail_wrap));
	REQ((e->vq.last_used_idx) == (e->drv.used_idx));
	REQ((e->vq.used_wrap) == (e->drv.used_wrap));
	REQ((e->drv.free_slots) == (size));
	REQ((vre_vq_fetch(&e->vq, ch, VRE_BURST, pool, 256)) == (0));
	free(xs);
	free(free_ids);
	free(buf);
	env_close(e);
}

/* ---- Driver and device on two threads ---------------------------------- */

struct duo {
	struct env *e;
	struct xchain *xs;
	uint64_t *buf;
	uint32_t ops;
	uint32_t reaped;
	uint32_t served;
	double deadline;
	int timed_out;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *duo_driver(void *arg)
{
	struct duo *d = arg;
	struct env *e = d->e;
	uint16_t free_ids[256];
	uint32_t nfree = 0, seq = 0;

	for (uint32_t i = 0; i < e->size; i++)
		free_ids[nfree++] = (uint16_t)i;
	while (d->reaped < d->ops) {
		uint16_t id;
		uint32_t len;
		int r;

		if (now_s() > d->deadline) {
			d->timed_out = 1;
			break;
		}
		while (seq < d->ops && nfree) {
			unsigned n = 1 + seq % 3;
			struct xchain *x;

			if (n > e->drv.free_slots)
				break;
			id = free_ids[--nfree];
			x = &d->xs[id];
			memset(x, 0, sizeof(*x));
			x->id = id;
			x->seq = seq++;
			for (unsigned j = 0; j < n; j++)
				x_add(x, d->buf[id] + 8 * j, 8, j > 0);
			x_post(e, x);
		}
		while ((r = pdrv_get_used(&e->drv, &id, &len)) == 1) {
			x_check_used(e, &d->xs[id], len);
			free_ids[nfree++] = id;
			d->reaped++;
		}
		REQ(r == 0);
	}
	return NULL;
}

static void *duo_device(void *arg)
{
	struct duo *d = arg;
	struct env *e = d->e;
	struct iovec pool[128];
	struct vre_chain ch[VRE_BURST];
	struct vre_used used[VRE_BURST];

	while (__atomic_load_n(&d->served, __ATOMIC_RELAXED) < d->ops) {
		int n = vre_vq_fetch(&e->vq, ch, VRE_BURST, pool, 128);

		REQ(n >= 0);
		if (now_s() > d->deadline) {
			d->timed_out = 1;
			break;
		}
		for (int i = 0; i < n; i++)
			used[n - 1 - i] = vre_used_of(&ch[i], x_serve(e, &ch[i], &d->xs[ch[i].id]));
		if (n)
			REQ(vre_vq_complete(&e->vq, used, (unsigned)n) == 0);
		d->served += (uint32_t)n;
	}
	return NULL;
}

/* Real concurrency: the ring's barriers are what keeps payloads and
 * completions consistent between the two threads. */
START_TEST(test_two_threads)
{
	struct env *e = env_open(256, 1 << 16, 4096, false, false);
	struct duo d = { .e = e, .ops = 200000, .deadline = now_s() + 100 };
	pthread_t td, tv;

	d.xs = calloc(256, sizeof(*d.xs));
	d.buf = malloc(256 * sizeof(*d.buf));
	for (int i = 0; i < 256; i++)
		d.buf[i] = galloc(e, 32);
	ck_assert_int_eq(pthread_create(&tv, NULL, duo_device, &d), 0);
	ck_assert_int_eq(pthread_create(&td, NULL, duo_driver, &d), 0);
	ck_assert_int_eq(pthread_join(td, NULL), 0);
	ck_assert_int_eq(pthread_join(tv, NULL), 0);
	ck_assert_int_eq(d.timed_out, 0);
	ck_assert_uint_eq(d.reaped, d.ops);
	ck_assert_uint_eq(d.served, d.ops);
	ck_assert_uint_eq(e->vq.broken, 0);
	free(d.xs);
	free(d.buf);
	env_close(e);
}
END_TEST

static const uint16_t sizes[] = { 1, 2, 100, 256, 32768 };

START_TEST(test_roundtrip_sizes)
{
	/* > 70,000 chains of 1..4 descriptors: many laps for every size, so
	 * chains straddle the wrap point in every position. */
	roundtrip(sizes[_i], 70001);
}
END_TEST

/* ---- Chain length ---------------------------------------------------- */

START_TEST(test_chain_full_size)
{
	uint16_t size = _i ? 256 : 8;
	struct env *e = env_open(size, 1 << 16, 4096, false, false);
	struct xchain *x = calloc(1, sizeof(*x));
	struct pdrv_desc *d = calloc(size, sizeof(*d));
	struct iovec pool[256];
	struct vre_chain c;
	uint64_t b = galloc(e, size);

	for (int lap = 0; lap < 3; lap++) {
		uint16_t id;
		uint32_t len;
		struct vre_used u;

		for (unsigned j = 0; j < size; j++) {
			d[j].addr = b + j;
			d[j].len = 1;
			d[j].flags = j >= size / 2 ? VRE_DESC_F_WRITE : 0;
			((uint8_t *)gp(e, b))[j] = (uint8_t)(j + lap);
		}
		ck_assert_int_eq(pdrv_post(&e->drv, d, size, (uint16_t)(lap % size), false), 0);
		ck_assert_int_eq(vre_vq_fetch(&e->vq, &c, 4, pool, 256), 1);
		ck_assert_uint_eq(c.ndesc, size);
		ck_assert_uint_eq(c.nr, size / 2);
		ck_assert_uint_eq(c.nw, size - size / 2);
		for (unsigned j = 0; j < size; j++) {
			ck_assert_ptr_eq(c.iov[j].iov_base, gp(e, b + j));
			if (j < size / 2)
				ck_assert_uint_eq(*(uint8_t *)c.iov[j].iov_base, (uint8_t)(j + lap));
			else
				*(uint8_t *)c.iov[j].iov_base = (uint8_t)~j;
		}
		/* A whole lap: back at slot 0 with the other wrap. */
		ck_assert_uint_eq(e->vq.last_avail_idx, 0);
		ck_assert_uint_eq(e->vq.avail_wrap, lap % 2 == 1);
		ck_assert_int_eq(vre_vq_fetch(&e->vq, &c, 4, pool, 256), 0);
		u = vre_used_of(&c, size - size / 2);
		ck_assert_int_eq(vre_vq_complete(&e->vq, &u, 1), 0);
		ck_assert_int_eq(pdrv_get_used(&e->drv, &id, &len), 1);
		ck_assert_uint_eq(id, lap % size);
		ck_assert_uint_eq(len, size - size / 2);
		for (unsigned j = size / 2; j < size; j++)
			ck_assert_uint_eq(((uint8_t *)gp(e, b))[j], (uint8_t)~j);
		ck_assert_int_eq(pdrv_get_used(&e->drv, &id, &len), 0);
	}
	free(x);
	free(d);
	env_close(e);
}
END_TEST

/* ---- Indirect, split translation, zero length --------------------------- */

START_TEST(test_indirect)
{
	struct env *e = env_open(16, 1 << 16, 4096, false, true);
	struct xchain x = { .id = 9, .seq = 77 }, y = { .id = 3, .seq = 78 };
	struct xbuf tb[3] = {
		{ galloc(e, 24), 24, false }, { galloc(e, 5), 5, false }, { galloc(e, 40), 40, true },
	};
	struct iovec pool[16];
	struct vre_chain c[4];
	struct vre_used u[2];
	uint16_t id;
	uint32_t len;

	x_indirect(e, &x, tb, 3);
	x_post(e, &x);
	x_add(&y, galloc(e, 16), 16, false);
	x_add(&y, galloc(e, 16), 16, true);
	x_post(e, &y);
	ck_assert_int_eq(vre_vq_fetch(&e->vq, c, 4, pool, 16), 2);
	ck_assert_uint_eq(c[0].ndesc, 1);
	ck_assert_uint_eq(c[0].nr, 2);
	ck_assert_uint_eq(c[0].nw, 1);
	ck_assert_uint_eq(c[1].ndesc, 2);
	/* iovecs follow each other in the pool */
	ck_assert_ptr_eq(c[0].iov, pool);
	ck_assert_ptr_eq(c[1].iov, pool + 3);
	u[0] = vre_used_of(&c[1], x_serve(e, &c[1], &y));
	u[1] = vre_used_of(&c[0], x_serve(e, &c[0], &x));
	ck_assert_int_eq(vre_vq_complete(&e->vq, u, 2), 0);
	ck_assert_int_eq(pdrv_get_used(&e->drv, &id, &len), 1);
	ck_assert_uint_eq(id, 3);
	x_check_used(e, &y, len);
	ck_assert_int_eq(pdrv_get_used(&e->drv, &id, &len), 1);
	ck_assert_uint_eq(id, 9);
	x_check_used(e, &x, len);
	/* the used descriptor for the 2-slot chain took slot 0, the next one
	 * slot 2: advance by ndesc */
	ck_assert_uint_eq(e->drv.ring[0].id, 3);
	ck_assert_uint_eq(e->drv.ring[2].id, 9);
	ck_assert_uint_eq(e->vq.last_used_idx, 3);
	env_close(e);
}
END_TEST

/* An indirect table whose entries cross from region A into region B (A
 * and B adjacent in GPA, apart in host memory) is read entry by entry, as
 * on a split ring (test_split.c, test_region_split: the same table) and as
 * DPDK and QEMU's backends read it; the chain's bytes go both ways. */
static void post_table_across(struct env *e, struct xchain *x, const struct xbuf *tb,
			      unsigned n, uint16_t *flags)
{
	uint64_t t = e->b_gpa - 24; /* 24 bytes in A, the rest in B */

	for (unsigned i = 0; i < n; i++) {
		struct vre_packed_desc d = { tb[i].gpa, tb[i].len, 0,
					     flags ? flags[i] : (tb[i].w ? VRE_DESC_F_WRITE : 0) };

		gwrite(e, t + 16ull * i, &d, sizeof(d));
		x->b[x->nb++] = tb[i];
	}
	x->d[x->n].addr = t;
	x->d[x->n].len = 16 * n;
	x->d[x->n].flags = VRE_DESC_F_INDIRECT;
	x->n++;
	x_post(e, x);
}

START_TEST(test_indirect_across_regions)
{
	struct env *e = env_open(8, 1 << 16, 4096, false, true);
	struct xchain x = { .id = 6, .seq = 91 }, y = { .id = 2, .seq = 92 };
	struct xbuf tb[3] = {
		{ e->b_gpa + 1000, 7, false }, { galloc(e, 6), 6, false }, { e->b_gpa + 2000, 9, true },
	};
	/* DPDK's stale WRITE flags on a table that crosses regions: read as
	 * all readable, as anywhere else */
	struct xbuf sb[3] = {
		{ galloc(e, 12), 12, false }, { e->b_gpa + 64, 20, false }, { galloc(e, 3), 3, false },
	};
	uint16_t stale[3] = { VRE_DESC_F_WRITE, 0, VRE_DESC_F_WRITE };
	struct iovec pool[8];
	struct vre_chain c[2];
	struct vre_used u;
	uint16_t id;
	uint32_t len;

	post_table_across(e, &x, tb, 3, NULL);
	ck_assert_int_eq(vre_vq_fetch(&e->vq, c, 2, pool, 8), 1);
	ck_assert_uint_eq(e->vq.broken, VRE_RE_NONE);
	ck_assert_uint_eq(c[0].ndesc, 1);
	ck_assert_uint_eq(c[0].nr, 2);
	ck_assert_uint_eq(c[0].nw, 1);
	ck_assert_uint_eq(c[0].rlen, 13);
	u = vre_used_of(&c[0], x_serve(e, &c[0], &x));
	ck_assert_int_eq(vre_vq_complete(&e->vq, &u, 1), 0);
	ck_assert_int_eq(pdrv_get_used(&e->drv, &id, &len), 1);
	ck_assert_uint_eq(id, 6);
	x_check_used(e, &x, len);

	post_table_across(e, &y, sb, 3, stale);
	ck_assert_int_eq(vre_vq_fetch(&e->vq, c, 2, pool, 8), 1);
	ck_assert_uint_eq(e->vq.broken, VRE_RE_NONE);
	ck_assert_uint_eq(c[0].nr, 3);
	ck_assert_uint_eq(c[0].nw, 0);
	u = vre_used_of(&c[0], x_serve(e, &c[0], &y));
	ck_assert_int_eq(vre_vq_complete(&e->vq, &u, 1), 0);
	ck_assert_int_eq(pdrv_get_used(&e->drv, &id, &len), 1);
	ck_assert_uint_eq(id, 2);
	ck_assert_uint_eq(len, 0);
	env_close(e);
}
END_TEST

START_TEST(test_split_and_zero_len)
{
	struct env *e = env_open(8, 1 << 16, 4096, false, false);
	uint64_t edge = e->b_gpa - 10;
	struct pdrv_desc d[3] = {
		{ 0xdead000000000000ull, 0, 0 },     /* zero length: never looked at */
		{ edge, 30, 0 },                      /* 10 bytes in A, 20 in B */
		{ UINT64_MAX - 1, 0, VRE_DESC_F_WRITE },
	};
	uint8_t *pa = gp(e, edge), *pb = gp(e, e->b_gpa);
	struct iovec pool[4];
	struct vre_chain c;
	struct vre_used u;
	uint16_t id;
	uint32_t len;

	for (int i = 0; i < 10; i++)
		pa[i] = (uint8_t)i;
	for (int i = 0; i < 20; i++)
		pb[i] = (uint8_t)(10 + i);
	ck_assert_int_eq(pdrv_post(&e->drv, d, 3, 4, false), 0);
	ck_assert_int_eq(vre_vq_fetch(&e->vq, &c, 1, pool, 4), 1);
	ck_assert_uint_eq(c.nr, 2);
	ck_assert_uint_eq(c.nw, 0);
	ck_assert_uint_eq(c.rlen, 30);
	ck_assert_ptr_eq(c.iov[0].iov_base, pa);
	ck_assert_uint_eq(c.iov[0].iov_len, 10);
	ck_assert_ptr_eq(c.iov[1].iov_base, pb);
	ck_assert_uint_eq(c.iov[1].iov_len, 20);
	for (int i = 0; i < 20; i++)
		ck_assert_uint_eq(((uint8_t *)c.iov[1].iov_base)[i], 10 + i);
	u = vre_used_of(&c, 0);
	ck_assert_int_eq(vre_vq_complete(&e->vq, &u, 1), 0);
	ck_assert_int_eq(pdrv_get_used(&e->drv, &id, &len), 1);
	ck_assert_uint_eq(id, 4);
	ck_assert_uint_eq(len, 0);
	/* no WRITE flag for len 0 */
	ck_assert_uint_eq(e->drv.ring[0].flags & VRE_DESC_F_WRITE, 0);
	env_close(e);
}
END_TEST

/* Single-descriptor chains at the edges of the fast path's range compare,
 * each after one that made A the last-hit region: one ending on A's last
 * byte (one iovec), one straddling into B (two), one wholly in B. */
START_TEST(test_single_edges)
{
	struct env *e = env_open(8, 1 << 16, 4096, false, false);
	uint64_t g = galloc(e, 8);
	/* d[1] ends on region A's last byte, d[2] one byte past it (before
	 * anything moves the last-hit region off A, so the one-descriptor
	 * fast path sees both): one piece, then two pieces, never one. */
	struct pdrv_desc d[5] = {
		{ g, 8, 0 }, { e->b_gpa - 16, 16, 0 }, { e->b_gpa - 3, 4, 0 },
		{ e->b_gpa - 3, 8, VRE_DESC_F_WRITE }, { e->b_gpa + 100, 20, 0 },
	};
	struct iovec pool[10];
	struct vre_chain c[5];

	for (uint16_t i = 0; i < 5; i++)
		ck_assert_int_eq(pdrv_post(&e->drv, &d[i], 1, i, false), 0);
	ck_assert_int_eq(vre_vq_fetch(&e->vq, c, 5, pool, 10), 5);
	ck_assert_uint_eq(e->vq.broken, VRE_RE_NONE);
	ck_assert_uint_eq(c[1].nr, 1);
	ck_assert_ptr_eq(c[1].iov[0].iov_base, gp(e, e->b_gpa - 16));
	ck_assert_uint_eq(c[1].iov[0].iov_len, 16);
	ck_assert_uint_eq(c[2].nr, 2);
	ck_assert_uint_eq(c[2].rlen, 4);
	ck_assert_ptr_eq(c[2].iov[0].iov_base, gp(e, e->b_gpa - 3));
	ck_assert_uint_eq(c[2].iov[0].iov_len, 3);
	ck_assert_ptr_eq(c[2].iov[1].iov_base, gp(e, e->b_gpa));
	ck_assert_uint_eq(c[2].iov[1].iov_len, 1);
	ck_assert_uint_eq(c[3].nr, 0);
	ck_assert_uint_eq(c[3].nw, 2);
	ck_assert_uint_eq(c[3].wlen, 8);
	ck_assert_ptr_eq(c[3].iov[0].iov_base, gp(e, e->b_gpa - 3));
	ck_assert_uint_eq(c[3].iov[0].iov_len, 3);
	ck_assert_ptr_eq(c[3].iov[1].iov_base, gp(e, e->b_gpa));
	ck_assert_uint_eq(c[3].iov[1].iov_len, 5);
	ck_assert_uint_eq(c[4].nr, 1);
	ck_assert_ptr_eq(c[4].iov[0].iov_base, gp(e, e->b_gpa + 100));
	ck_assert_uint_eq(c[4].rlen, 20);
	for (uint16_t i = 0; i < 5; i++) {
		ck_assert_uint_eq(c[i].id, i);
		ck_assert_uint_eq(c[i].ndesc, 1);
	}
	env_close(e);
}
END_TEST

/* ---- Pool (ENOBUFS) behaviour ----------------------------------------- */

START_TEST(test_pool)
{
	struct env *e = env_open(16, 1 << 16, 4096, false, false);
	struct pdrv_desc d[5];
	struct iovec pool[8];
	struct vre_chain c[4];
	struct vre_used u[4];
	uint16_t id;
	uint32_t len;

	for (int i = 0; i < 5; i++)
		d[i] = (struct pdrv_desc){ galloc(e, 4), 4, VRE_DESC_F_WRITE };
	/* three chains of 3 iovecs: the pool (8) takes two */
	for (uint16_t k = 0; k < 3; k++)
		ck_assert_int_eq(pdrv_post(&e->drv, d, 3, k, false), 0);
	ck_assert_int_eq(vre_vq_fetch(&e->vq, c, 4, pool, 8), 2);
	ck_assert_ptr_eq(c[0].iov, pool);
	ck_assert_ptr_eq(c[1].iov, pool + 3);
	ck_assert_uint_eq(e->vq.last_avail_idx, 6);
	ck_assert_int_eq(vre_vq_fetch(&e->vq, &c[2], 4, pool, 8), 1);
	ck_assert_uint_eq(c[2].id, 2);
	ck_assert_int_eq(c[2].err, 0);
	/* a chain of 5 with a pool of 4 will never fit: consumed, -ENOBUFS */
	ck_assert_int_eq(pdrv_post(&e->drv, d, 5, 7, false), 0);
	ck_assert_int_eq(vre_vq_fetch(&e->vq, &c[3], 4, pool, 4), 1);
	ck_assert_int_eq(c[3].err, -ENOBUFS);
	ck_assert_uint_eq(c[3].nr + c[3].nw, 0);
	ck_assert_uint_eq(c[3].ndesc, 5);
	ck_assert_uint_eq(c[3].id, 7);
	ck_assert_uint_eq(e->vq.last_avail_idx, 14);
	for (int i = 0; i < 4; i++)
		u[i] = vre_used_of(&c[i], 0);
	ck_assert_int_eq(vre_vq_complete(&e->vq, u, 4), 0);
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(pdrv_get_used(&e->drv, &id, &len), 1);
		ck_assert_uint_eq(id, i == 3 ? 7 : i);
		ck_assert_uint_eq(len, 0);
	}
	ck_assert_uint_eq(e->vq.last_used_idx, 14);
	/* no pool at all: an all-empty chain is fine, anything else ENOBUFS */
	d[0].len = 0;
	ck_assert_int_eq(pdrv_post(&e->drv, d, 1, 3, false), 0);
	ck_assert_int_eq(pdrv_post(&e->drv, d + 1, 1, 4, false), 0);
	ck_assert_int_eq(vre_vq_fetch(&e->vq, c, 4, NULL, 0), 2);
	ck_assert_int_eq(c[0].err, 0);
	ck_assert_uint_eq(c[0].nr + c[0].nw, 0);
	ck_assert_int_eq(c[1].err, -ENOBUFS);
	ck_assert_uint_eq(e->vq.last_avail_idx, 0);
	ck_assert(!e->vq.avail_wrap);
	env_close(e);
}
END_TEST

/* ---- Completion order and batched write-back --------------------------- */

static struct env *hook_env;
static int hook_seen_later, hook_visible_early;

static void batch_hook(struct vre_vq *vq, const char *step)
{
	(void)vq;
	if (strcmp(step, "complete: later flags") == 0) {
		struct pdrv probe = hook_env->drv;
		uint16_t id;
		uint32_t len;

		hook_seen_later++;
		/* the driver must not see any of the batch yet */
		if (pdrv_get_used(&probe, &id, &len) != 0)
			hook_visible_early++;
	}
}

START_TEST(test_batch_out_of_order)
{
	struct env *e = env_open(8, 1 << 16, 4096, false, false);
	struct xchain x[4];
	struct iovec pool[16];
	struct vre_chain c[4];
	struct vre_used u[4];
	static const int order[4] = { 2, 0, 3, 1 };
	uint16_t id;
	uint32_t len;

	for (int i = 0; i < 4; i++) {
		memset(&x[i], 0, sizeof(x[i]));
		x[i].id = (uint16_t)(10 - 2 * i) % 8;
		x[i].seq = (uint32_t)i;
		for (int j = 0; j <= i % 2; j++)
			x_add(&x[i], galloc(e, 8), 8, j == 1 || i == 2);
		x_post(e, &x[i]);
	}
	ck_assert_int_eq(vre_vq_fetch(&e->vq, c, 4, pool, 16), 4);
	for (int i = 0; i < 4; i++)
		u[i] = vre_used_of(&c[order[i]], x_serve(e, &c[order[i]], &x[order[i]]));
	hook_env = e;
	hook_seen_later = hook_visible_early = 0;
	vring_step_hook = batch_hook;
	ck_assert_int_eq(vre_vq_complete(&e->vq, u, 4), 0);
	vring_step_hook = NULL;
	ck_assert_int_eq(hook_seen_later, 3);
	ck_assert_int_eq(hook_visible_early, 0);
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(pdrv_get_used(&e->drv, &id, &len), 1);
		ck_assert_uint_eq(id, x[order[i]].id);
		x_check_used(e, &x[order[i]], len);
	}
	ck_assert_int_eq(pdrv_get_used(&e->drv, &id, &len), 0);
	/* bad completions are refused and change nothing */
	u[0] = vre_used_of(&c[0], 0);
	ck_assert_int_eq(vre_vq_complete(&e->vq, u, 1), -EINVAL); /* not in flight */
	ck_assert_int_eq(vre_vq_complete(&e->vq, u, VRE_COMPLETE_MAX + 1), -EINVAL);
	x[0].id = 1;
	x_post(e, &x[0]);
	ck_assert_int_eq(vre_vq_fetch(&e->vq, c, 4, pool, 16), 1);
	u[0] = u[1] = vre_used_of(&c[0], 0);
	ck_assert_int_eq(vre_vq_complete(&e->vq, u, 2), -EINVAL); /* duplicate */
	u[0].ndesc = 9;
	ck_assert_int_eq(vre_vq_complete(&e->vq, u, 1), -EINVAL); /* > size */
	u[0].ndesc = 2;
	ck_assert_int_eq(vre_vq_complete(&e->vq, u, 1), -EINVAL); /* > held */
	u[0] = vre_used_of(&c[0], 0);
	ck_assert_uint_eq(e->vq.last_used_idx, 6);
	ck_assert_int_eq(vre_vq_complete(&e->vq, u, 1), 0);
	ck_assert_int_eq(pdrv_get_used(&e->drv, &id, &len), 1);
	ck_assert_uint_eq(id, 1);
	env_close(e);
}
END_TEST

/*
 * The unchecked completion of the device's own chains writes the ring as
 * vre_vq_complete does (ids in completion order, lengths, WRITE, the first
 * chain's flags last, wrap) and frees the ids: chains of one and two
 * descriptors, completed out of order, over several laps of an 8-slot ring
 * with the same ids reused each round (a busy id left behind would break
 * the ring at the next fetch). With inflight records the checked path runs.
 */
START_TEST(test_complete_fetched)
{
	struct env *e = env_open(8, 1 << 16, 4096, false, false);
	struct xchain x[3];
	struct iovec pool[16];
	struct vre_chain c[3];
	struct vre_used u[3];
	static const int order[3] = { 1, 2, 0 };
	uint16_t id;
	uint32_t len;
	uint8_t none[8] = { 0 };

	ck_assert_int_eq(vre_vq_complete_fetched(&e->vq, u, 0), 0);
	ck_assert_int_eq(vre_vq_complete_fetched(&e->vq, u, VRE_COMPLETE_MAX + 1), -EINVAL);
	for (int round = 0; round < 9; round++) {
		for (int i = 0; i < 3; i++) {
			memset(&x[i], 0, sizeof(x[i]));
			x[i].id = (uint16_t)(5 + i); /* the same ids every round */
			x[i].seq = (uint32_t)(round * 3 + i);
			for (int j = 0; j <= (i + round) % 2; j++)
				x_add(&x[i], galloc(e, 8), 8, j == 1 || (i + round) % 3 == 0);
			x_post(e, &x[i]);
		}
		ck_assert_int_eq(vre_vq_fetch(&e->vq, c, 3, pool, 16), 3);
		for (int i = 0; i < 3; i++)
			u[i] = vre_used_of(&c[order[i]], x_serve(e, &c[order[i]], &x[order[i]]));
		hook_env = e;
		hook_seen_later = hook_visible_early = 0;
		vring_step_hook = batch_hook;
		ck_assert_int_eq(vre_vq_complete_fetched(&e->vq, u, 3), 0);
		vring_step_hook = NULL;
		ck_assert_int_eq(hook_seen_later, 2);
		ck_assert_int_eq(hook_visible_early, 0);
		for (int i = 0; i < 3; i++) {
			ck_assert_int_eq(pdrv_get_used(&e->drv, &id, &len), 1);
			ck_assert_uint_eq(id, x[order[i]].id);
			x_check_used(e, &x[order[i]], len);
		}
		ck_assert_int_eq(pdrv_get_used(&e->drv, &id, &len), 0);
		ck_assert_uint_eq(e->vq.last_used_idx, e->vq.last_avail_idx);
		ck_assert(e->vq.used_wrap == e->vq.avail_wrap);
		ck_assert_mem_eq(e->vq.pk.id_busy, none, 8);
	}
	ck_assert(!e->vq.used_wrap); /* 9 rounds of 4 or 5 slots: past a lap */
	ck_assert_int_eq(e->vq.broken, 0);
	env_close(e);

	/* inflight records attached: the checked path, which refuses an id
	 * not in flight and changes nothing */
	e = env_open(8, 1 << 16, 4096, false, false);
	ck_assert_int_eq(vre_vq_inflight_attach(&e->vq, e->inf, e->inf_len, 0), 0);
	memset(&x[0], 0, sizeof(x[0]));
	x[0].id = 3;
	x_add(&x[0], galloc(e, 8), 8, true);
	x_post(e, &x[0]);
	ck_assert_int_eq(vre_vq_fetch(&e->vq, c, 1, pool, 16), 1);
	u[0] = vre_used_of(&c[0], 0);
	u[0].id = 4;
	ck_assert_int_eq(vre_vq_complete_fetched(&e->vq, u, 1), -EINVAL);
	ck_assert_uint_eq(e->vq.last_used_idx, 0);
	ck_assert_int_eq(pdrv_get_used(&e->drv, &id, &len), 0);
	u[0] = vre_used_of(&c[0], x_serve(e, &c[0], &x[0]));
	ck_assert_int_eq(vre_vq_complete_fetched(&e->vq, u, 1), 0);
	ck_assert_int_eq(pdrv_get_used(&e->drv, &id, &len), 1);
	ck_assert_uint_eq(id, 3);
	x_check_used(e, &x[0], len);
	ck_assert_uint_eq(((struct vre_inflight_packed *)e->inf)->desc[c[0].slot].inflight, 0);
	env_close(e);
}
END_TEST

/* ---- Validation errors ------------------------------------------------ */

struct bad_case {
	const char *name;
	enum vre_ring_error want;
	bool indirect;
	int good_first; /* chains fetched before the fault */
	void (*build)(struct env *e);
};

static void post_raw(struct env *e, const struct pdrv_desc *d, unsigned n, uint16_t id)
{
	ck_assert_int_eq(pdrv_post(&e->drv, d, n, id, true), 0);
}

static void post_one(struct env *e, uint64_t addr, uint32_t len, uint16_t flags, uint16_t id)
{
	struct pdrv_desc d = { addr, len, flags };

	post_raw(e, &d, 1, id);
}

static uint64_t table(struct env *e, const struct vre_packed_desc *t, unsigned n)
{
	uint64_t g = galloc(e, 16ull * n);

	memcpy(gp(e, g), t, 16ull * n);
	return g;
}

static void b_oom(struct env *e) { post_one(e, e->b_gpa + e->b_len - 4, 8, 0, 1); }
/* A good chain in region B first, so B is the last-hit region the fast
 * path compares against when the bad one (4 bytes past B) comes. */
static void b_oom_hot(struct env *e)
{
	post_one(e, e->b_gpa, 8, 0, 2);
	post_one(e, e->b_gpa + e->b_len - 4, 8, 0, 1);
}
static void b_oom_low(struct env *e) { post_one(e, 0x1000, 8, VRE_DESC_F_WRITE, 1); }
static void b_overflow(struct env *e) { post_one(e, UINT64_MAX - 3, 8, 0, 1); }
static void b_loop(struct env *e)
{
	struct pdrv_desc d[8];

	for (int i = 0; i < 8; i++)
		d[i] = (struct pdrv_desc){ galloc(e, 8), 8, VRE_DESC_F_NEXT };
	post_raw(e, d, 8, 1);
}
static void b_unfinished(struct env *e) { post_one(e, galloc(e, 8), 8, VRE_DESC_F_NEXT, 1); }
static void b_w_then_r(struct env *e)
{
	struct pdrv_desc d[2] = { { galloc(e, 8), 8, VRE_DESC_F_WRITE }, { galloc(e, 8), 8, 0 } };

	ck_assert_int_eq(pdrv_post(&e->drv, d, 2, 1, false), 0);
}
static void b_id_range(struct env *e) { post_one(e, galloc(e, 8), 8, 0, 8); }
static void b_id_busy(struct env *e)
{
	post_one(e, galloc(e, 8), 8, 0, 3);
	post_one(e, galloc(e, 8), 8, 0, 3);
}
static void b_ind(struct env *e)
{
	struct vre_packed_desc t = { galloc(e, 8), 8, 0, 0 };

	post_one(e, table(e, &t, 1), 16, VRE_DESC_F_INDIRECT, 1);
}
static void b_ind_zero(struct env *e) { post_one(e, galloc(e, 16), 0, VRE_DESC_F_INDIRECT, 1); }
static void b_ind_unaligned(struct env *e) { post_one(e, galloc(e, 32), 24, VRE_DESC_F_INDIRECT, 1); }
static void b_ind_big(struct env *e)
{
	uint64_t g = galloc(e, 16 * 9);

	memset(gp(e, g), 0, 16 * 9);
	post_one(e, g, 16 * 9, VRE_DESC_F_INDIRECT, 1);
}
static void b_ind_oom(struct env *e) { post_one(e, e->b_gpa + e->b_len - 16, 32, VRE_DESC_F_INDIRECT, 1); }
static void b_ind_nested(struct env *e)
{
	struct vre_packed_desc t[2] = { { galloc(e, 8), 8, 0, 0 },
					{ galloc(e, 16), 16, 0, VRE_DESC_F_INDIRECT } };

	post_one(e, table(e, t, 2), 32, VRE_DESC_F_INDIRECT, 1);
}
static void b_ind_next(struct env *e)
{
	struct vre_packed_desc t = { galloc(e, 8), 8, 0, 0 };
	struct pdrv_desc d[2] = { { table(e, &t, 1), 16, VRE_DESC_F_INDIRECT }, { galloc(e, 8), 8, 0 } };

	ck_assert_int_eq(pdrv_post(&e->drv, d, 2, 1, false), 0);
}
static void b_ind_second(struct env *e)
{
	struct vre_packed_desc t = { galloc(e, 8), 8, 0, 0 };
	struct pdrv_desc d[2] = { { galloc(e, 8), 8, 0 }, { table(e, &t, 1), 16, VRE_DESC_F_INDIRECT } };

	ck_assert_int_eq(pdrv_post(&e->drv, d, 2, 1, false), 0);
}
static void b_ind_entry_oom(struct env *e)
{
	struct vre_packed_desc t[2] = { { galloc(e, 8), 8, 0, 0 }, { 0x10, 8, 0, 0 } };

	post_one(e, table(e, t, 2), 32, VRE_DESC_F_INDIRECT, 1);
}
/* The table's own address + length wraps. */
static void b_ind_overflow(struct env *e) { post_one(e, UINT64_MAX - 15, 32, VRE_DESC_F_INDIRECT, 1); }
static void b_ind_entry_overflow(struct env *e)
{
	struct vre_packed_desc t[2] = { { galloc(e, 8), 8, 0, 0 }, { UINT64_MAX - 3, 16, 0, 0 } };

	post_one(e, table(e, t, 2), 32, VRE_DESC_F_INDIRECT, 1);
}
/* A table that starts below guest memory and ends in it. */
static void b_ind_below(struct env *e) { post_one(e, A_GPA - 16, 32, VRE_DESC_F_INDIRECT, 1); }

static void b_leap(struct env *e)
{
	struct iovec pool[8];
	struct vre_chain c[8];

	for (uint16_t i = 0; i < 8; i++)
		post_one(e, galloc(e, 8), 8, 0, i);
	ck_assert_int_eq(vre_vq_fetch(&e->vq, c, 8, pool, 8), 8);
	/* slot 0 is still the device's; a hostile driver republishes it */
	e->drv.ring[0].id = 0;
	pdrv_mark_avail(&e->drv, 0, false, 0);
}

static const struct bad_case bad_cases[] = {
	{ "desc past memory", VRE_RE_DESC_OUT_OF_MEMORY, false, 0, b_oom },
	{ "desc past the last-hit region", VRE_RE_DESC_OUT_OF_MEMORY, false, 1, b_oom_hot },
	{ "desc below memory", VRE_RE_DESC_OUT_OF_MEMORY, false, 0, b_oom_low },
	{ "desc overflow", VRE_RE_DESC_OVERFLOW, false, 0, b_overflow },
	{ "chain loops the ring", VRE_RE_CHAIN_TOO_LONG, false, 0, b_loop },
	{ "continuation not available", VRE_RE_CHAIN_TOO_LONG, false, 0, b_unfinished },
	{ "write then read", VRE_RE_WRITE_THEN_READ, false, 0, b_w_then_r },
	{ "id out of range", VRE_RE_ID_OUT_OF_RANGE, false, 0, b_id_range },
	{ "id in use", VRE_RE_ID_IN_USE, false, 1, b_id_busy },
	{ "indirect not negotiated", VRE_RE_INDIRECT_NOT_NEGOTIATED, false, 0, b_ind },
	{ "indirect len 0", VRE_RE_INDIRECT_LEN_ZERO, true, 0, b_ind_zero },
	{ "indirect len 24", VRE_RE_INDIRECT_LEN_UNALIGNED, true, 0, b_ind_unaligned },
	{ "indirect too big", VRE_RE_INDIRECT_TOO_BIG, true, 0, b_ind_big },
	{ "indirect table outside", VRE_RE_INDIRECT_OUT_OF_MEMORY, true, 0, b_ind_oom },
	{ "indirect nested", VRE_RE_INDIRECT_NESTED, true, 0, b_ind_nested },
	{ "indirect with next", VRE_RE_INDIRECT_WITH_NEXT, true, 0, b_ind_next },
	{ "indirect after a desc", VRE_RE_INDIRECT_WITH_NEXT, true, 0, b_ind_second },
	{ "indirect entry outside", VRE_RE_DESC_OUT_OF_MEMORY, true, 0, b_ind_entry_oom },
	{ "indirect overflow", VRE_RE_DESC_OVERFLOW, true, 0, b_ind_overflow },
	{ "indirect entry overflow", VRE_RE_DESC_OVERFLOW, true, 0, b_ind_entry_overflow },
	{ "indirect table from below memory", VRE_RE_INDIRECT_OUT_OF_MEMORY, true, 0, b_ind_below },
	{ "republished held slot", VRE_RE_AVAIL_IDX_LEAP, false, 0, b_leap },
};

/* DPDK's virtio PMD leaves stale WRITE flags on entries of its packed TX
 * indirect tables (the header, and the entry whose index equals the ring
 * slot; captured from testpmd). A misordered table is read as all readable;
 * nothing is ever written into it, and the queue stays healthy. */
static void check_all_readable(const uint16_t *flags, unsigned n)
{
	struct env *e = env_open(8, 1 << 16, 4096, false, true);
	struct vre_packed_desc t[8];
	uint64_t buf[8];
	uint64_t total = 0;
	struct iovec pool[8];
	struct vre_chain c[2];

	for (unsigned i = 0; i < n; i++) {
		buf[i] = galloc(e, 16 + i);
		t[i] = (struct vre_packed_desc){ buf[i], 16 + i, 0, flags[i] };
		total += 16 + i;
	}
	post_one(e, table(e, t, n), 16 * n, VRE_DESC_F_INDIRECT, 5);
	ck_assert_int_eq(vre_vq_fetch(&e->vq, c, 2, pool, 8), 1);
	ck_assert_uint_eq(e->vq.broken, VRE_RE_NONE);
	ck_assert_uint_eq(c[0].id, 5);
	ck_assert_uint_eq(c[0].nr, n);
	ck_assert_uint_eq(c[0].nw, 0);
	ck_assert_uint_eq(c[0].rlen, total);
	ck_assert_uint_eq(c[0].wlen, 0);
	for (unsigned i = 0; i < n; i++) {
		ck_assert_ptr_eq(c[0].iov[i].iov_base, gp(e, buf[i]));
		ck_assert_uint_eq(c[0].iov[i].iov_len, 16 + i);
	}
	env_close(e);
}

START_TEST(test_indirect_dpdk_stale_write)
{
	const uint16_t W = VRE_DESC_F_WRITE, N = VRE_DESC_F_NEXT | 0x80, L = 0x80;
	const uint16_t head_only[4] = { W, N, N, L };
	const uint16_t head_and_mid[4] = { W, W, N, L };
	const uint16_t head_and_last[6] = { W, N, N, N, N, W };
	const uint16_t read_write_read[3] = { 0, W, 0 };

	check_all_readable(head_only, 4);
	check_all_readable(head_and_mid, 4);
	check_all_readable(head_and_last, 6);
	check_all_readable(read_write_read, 3);
}
END_TEST

/* A well-ordered table keeps its writable tail writable. */
START_TEST(test_indirect_ordered_keeps_write)
{
	struct env *e = env_open(8, 1 << 16, 4096, false, true);
	struct vre_packed_desc t[3] = { { galloc(e, 8), 8, 0, 0 },
					{ galloc(e, 8), 8, 0, VRE_DESC_F_WRITE },
					{ galloc(e, 8), 8, 0, VRE_DESC_F_WRITE } };
	struct iovec pool[8];
	struct vre_chain c[2];

	post_one(e, table(e, t, 3), 48, VRE_DESC_F_INDIRECT, 2);
	ck_assert_int_eq(vre_vq_fetch(&e->vq, c, 2, pool, 8), 1);
	ck_assert_uint_eq(c[0].nr, 1);
	ck_assert_uint_eq(c[0].nw, 2);
	ck_assert_uint_eq(c[0].wlen, 16);
	env_close(e);
}
END_TEST

START_TEST(test_bad)
{
	const struct bad_case *bc = &bad_cases[_i];
	struct env *e = env_open(8, 1 << 16, 4096, false, bc->indirect);
	struct iovec pool[16];
	struct vre_chain c[8];
	uint8_t *before = malloc(e->host_len);
	struct vre_used u;
	uint16_t id;
	uint32_t len;
	uint16_t held_avail;

	bc->build(e);
	held_avail = e->vq.last_avail_idx;
	memcpy(before, e->host, e->host_len);
	ck_assert_msg(vre_vq_fetch(&e->vq, c, 8, pool, 16) == (bc->good_first ? bc->good_first : -EIO),
		      "%s", bc->name);
	ck_assert_msg(e->vq.broken == bc->want, "%s: broken %u want %u", bc->name,
		      e->vq.broken, bc->want);
	/* fetch only reads: guest memory and guards are as they were */
	ck_assert_msg(memcmp(before, e->host, e->host_len) == 0, "%s", bc->name);
	ck_assert_int_eq(vre_vq_fetch(&e->vq, c + 4, 8, pool + 8, 8), -EIO);
	ck_assert(!vre_vq_avail_pending(&e->vq));
	ck_assert(!vre_vq_notify_enable(&e->vq));
	/* nothing of the bad chain was consumed */
	ck_assert_uint_eq(e->vq.last_avail_idx, (held_avail + bc->good_first) % 8);
	if (bc->good_first) {
		/* a chain handed out before the fault still completes */
		u = vre_used_of(&c[0], 0);
		ck_assert_int_eq(vre_vq_complete(&e->vq, &u, 1), 0);
		e->drv.outstanding[c[0].id] = 1; /* posted raw */
		e->drv.ndesc_of[c[0].id] = c[0].ndesc;
		ck_assert_int_eq(pdrv_get_used(&e->drv, &id, &len), 1);
		ck_assert_uint_eq(id, c[0].id);
	}
	free(before);
	env_close(e);
}
END_TEST

/* ---- Notifications ---------------------------------------------------- */

/* Serves one 1-slot chain end to end. */
static void one_trip(struct env *e, uint16_t id)
{
	struct iovec pool[2];
	struct vre_chain c;
	struct vre_used u;
	uint16_t gid;
	uint32_t len;

	post_one(e, A_GPA + 0x8000, 8, 0, id);
	e->drv.outstanding[id] = 1;
	e->drv.ndesc_of[id] = 1;
	ck_assert_int_eq(vre_vq_fetch(&e->vq, &c, 1, pool, 2), 1);
	u = vre_used_of(&c, 0);
	ck_assert_int_eq(vre_vq_complete(&e->vq, &u, 1), 0);
	ck_assert_int_eq(pdrv_get_used(&e->drv, &gid, &len), 1);
	ck_assert_uint_eq(gid, id);
}

/* Serves k 1-slot chains completed in one batch. */
static void batch_trip(struct env *e, unsigned k)
{
	struct iovec pool[VRE_BURST];
	struct vre_chain c[VRE_BURST];
	struct vre_used u[VRE_BURST];
	uint16_t id;
	uint32_t len;

	for (unsigned i = 0; i < k; i++) {
		post_one(e, A_GPA + 0x8000, 8, 0, (uint16_t)i);
		e->drv.outstanding[i] = 1;
		e->drv.ndesc_of[i] = 1;
	}
	ck_assert_int_eq(vre_vq_fetch(&e->vq, c, k, pool, VRE_BURST), (int)k);
	for (unsigned i = 0; i < k; i++)
		u[i] = vre_used_of(&c[i], 0);
	ck_assert_int_eq(vre_vq_complete(&e->vq, u, k), 0);
	for (unsigned i = 0; i < k; i++)
		ck_assert_int_eq(pdrv_get_used(&e->drv, &id, &len), 1);
}

/* The last notification was in the old lap, the event before it in the
 * same lap, the batch crosses the wrap: already notified, so no. */
START_TEST(test_notify_old_lap)
{
	struct env *e = env_open(8, 1 << 16, 4096, true, false);

	pdrv_set_event(&e->drv, VRE_PACKED_EVENT_DESC, 4, true);
	batch_trip(e, 5);                        /* used 0 -> 5: passes 4 */
	ck_assert(vre_vq_needs_notify(&e->vq));  /* (first one: always) */
	pdrv_set_event(&e->drv, VRE_PACKED_EVENT_DESC, 3, true);
	batch_trip(e, 4);                        /* used 5 -> 1, wrap 0 */
	ck_assert(!e->vq.used_wrap);
	ck_assert(!vre_vq_needs_notify(&e->vq));
	pdrv_set_event(&e->drv, VRE_PACKED_EVENT_DESC, 0, false);
	batch_trip(e, 1);                        /* 1 -> 2: 0 was passed before */
	ck_assert(!vre_vq_needs_notify(&e->vq));
	pdrv_set_event(&e->drv, VRE_PACKED_EVENT_DESC, 4, true);  /* old lap: passed */
	batch_trip(e, 1);                        /* 2 -> 3 */
	ck_assert(!vre_vq_needs_notify(&e->vq));
	pdrv_set_event(&e->drv, VRE_PACKED_EVENT_DESC, 3, false);
	batch_trip(e, 3);                        /* 3 -> 6 passes 3 */
	ck_assert(vre_vq_needs_notify(&e->vq));
	env_close(e);
}
END_TEST

START_TEST(test_notify_flags)
{
	struct env *e = env_open(8, 1 << 16, 4096, false, false);

	pdrv_set_event(&e->drv, VRE_PACKED_EVENT_ENABLE, 0, true);
	one_trip(e, 0);
	ck_assert(vre_vq_needs_notify(&e->vq));
	pdrv_set_event(&e->drv, VRE_PACKED_EVENT_DISABLE, 0, true);
	one_trip(e, 1);
	ck_assert(!vre_vq_needs_notify(&e->vq));
	/* DESC is meaningless without EVENT_IDX: notify */
	pdrv_set_event(&e->drv, VRE_PACKED_EVENT_DESC, 7, false);
	one_trip(e, 2);
	ck_assert(vre_vq_needs_notify(&e->vq));
	/* device area */
	vre_vq_notify_disable(&e->vq);
	ck_assert_uint_eq(e->drv.device->flags, VRE_PACKED_EVENT_DISABLE);
	ck_assert(!vre_vq_notify_enable(&e->vq));
	ck_assert_uint_eq(e->drv.device->flags, VRE_PACKED_EVENT_ENABLE);
	post_one(e, A_GPA + 0x8000, 8, 0, 5);
	ck_assert(vre_vq_notify_enable(&e->vq)); /* re-check finds it */
	ck_assert(vre_vq_avail_pending(&e->vq));
	env_close(e);
}
END_TEST

START_TEST(test_notify_event_idx)
{
	struct env *e = env_open(8, 1 << 16, 4096, true, false);

	/* first decision after start: always notify (no history) */
	pdrv_set_event(&e->drv, VRE_PACKED_EVENT_DESC, 3, true);
	one_trip(e, 0);                          /* used 0 -> 1 */
	ck_assert(vre_vq_needs_notify(&e->vq));
	for (uint16_t i = 1; i < 4; i++) {       /* used -> 2, 3, 4 */
		one_trip(e, i);
		ck_assert_msg(vre_vq_needs_notify(&e->vq) == (i == 3), "step %u", i);
	}
	/* event 7 in this lap; used goes 4 -> 5 -> 6 -> 7 -> 0 (wrap flips) */
	pdrv_set_event(&e->drv, VRE_PACKED_EVENT_DESC, 7, true);
	for (uint16_t i = 4; i < 8; i++) {
		one_trip(e, i);
		ck_assert_msg(vre_vq_needs_notify(&e->vq) == (i == 7), "step %u", i);
	}
	ck_assert_uint_eq(e->vq.last_used_idx, 0);
	ck_assert(!e->vq.used_wrap);
	/* event at slot 0 of the new lap (wrap 0): passes with the next one */
	pdrv_set_event(&e->drv, VRE_PACKED_EVENT_DESC, 0, false);
	one_trip(e, 0);
	ck_assert(vre_vq_needs_notify(&e->vq));
	/* event 6 of the old lap (wrap 1) is long passed: not again */
	pdrv_set_event(&e->drv, VRE_PACKED_EVENT_DESC, 6, true);
	one_trip(e, 1);
	ck_assert(!vre_vq_needs_notify(&e->vq));
	/* a batch crossing the wrap with the event just before it */
	pdrv_set_event(&e->drv, VRE_PACKED_EVENT_DESC, 7, false);
	for (uint16_t i = 2; i < 7; i++) {       /* used 2 -> 7 */
		one_trip(e, i);
		ck_assert(!vre_vq_needs_notify(&e->vq));
	}
	{
		struct iovec pool[4];
		struct vre_chain c[2];
		struct vre_used u[2];
		uint16_t id;
		uint32_t len;

		post_one(e, A_GPA + 0x8000, 8, 0, 0);
		post_one(e, A_GPA + 0x8000, 8, 0, 1);
		for (int k = 0; k < 2; k++) {
			e->drv.outstanding[k] = 1;
			e->drv.ndesc_of[k] = 1;
		}
		ck_assert_int_eq(vre_vq_fetch(&e->vq, c, 2, pool, 4), 2);
		u[0] = vre_used_of(&c[0], 0);
		u[1] = vre_used_of(&c[1], 0);
		ck_assert_int_eq(vre_vq_complete(&e->vq, u, 2), 0); /* 7 -> 1, wrap 1 */
		ck_assert(e->vq.used_wrap);
		ck_assert(vre_vq_needs_notify(&e->vq));
		ck_assert_int_eq(pdrv_get_used(&e->drv, &id, &len), 1);
		ck_assert_int_eq(pdrv_get_used(&e->drv, &id, &len), 1);
	}
	/* DISABLE: no, whatever the event */
	pdrv_set_event(&e->drv, VRE_PACKED_EVENT_DISABLE, 1, true);
	one_trip(e, 3);
	ck_assert(!vre_vq_needs_notify(&e->vq));
	/* notify_enable writes DESC with our avail position and wrap */
	ck_assert(!vre_vq_notify_enable(&e->vq));
	ck_assert_uint_eq(e->drv.device->flags, VRE_PACKED_EVENT_DESC);
	ck_assert_uint_eq(e->drv.device->off_wrap, e->vq.last_avail_idx | 0x8000);
	ck_assert_uint_eq(e->vq.last_avail_idx, 2);
	env_close(e);
}
END_TEST

/* ---- Inflight: marking and completion ----------------------------------- */

static struct vre_inflight_packed *INF(struct env *e) { return e->inf; }

/* Entries on the free list (bounded walk); -1 on a cycle. */
static int free_count(struct env *e)
{
	struct vre_inflight_packed *r = INF(e);
	uint8_t seen[256] = { 0 };
	int n = 0;

	for (uint16_t i = r->free_head; i != e->size; i = r->desc[i].next) {
		ck_assert_uint_lt(i, e->size);
		if (seen[i]++)
			return -1;
		n++;
	}
	return n;
}

START_TEST(test_inflight_records)
{
	struct env *e = env_open(8, 1 << 16, 4096, false, false);
	struct vre_inflight_packed *r = INF(e);
	struct xchain x = { .id = 6, .seq = 1 }, y = { .id = 2, .seq = 2 };
	struct iovec pool[8];
	struct vre_chain c[2];
	struct vre_used u;

	ck_assert_int_eq(vre_vq_inflight_attach(&e->vq, e->inf, e->inf_len, 0), 0);
	ck_assert_uint_eq(r->version, 1);
	ck_assert_uint_eq(r->desc_num, 8);
	ck_assert_uint_eq(r->used_wrap_counter, 1);
	ck_assert_uint_eq(r->old_used_wrap_counter, 1);
	for (int i = 0; i < 8; i++)
		ck_assert_uint_eq(r->desc[i].next, i + 1);
	ck_assert_int_eq(free_count(e), 8);
	x_add(&x, galloc(e, 8), 8, false);
	x_add(&x, galloc(e, 8), 8, false);
	x_add(&x, galloc(e, 8), 8, true);
	x_post(e, &x);
	x_add(&y, galloc(e, 8), 8, true);
	x_post(e, &y);
	ck_assert_int_eq(vre_vq_fetch(&e->vq, c, 2, pool, 8), 2);
	ck_assert_uint_eq(c[0].slot, 0);
	ck_assert_uint_eq(c[1].slot, 3);
	ck_assert_uint_eq(r->desc[0].inflight, 1);
	ck_assert_uint_eq(r->desc[0].num, 3);
	ck_assert_uint_eq(r->desc[0].last, 2);
	ck_assert_uint_eq(r->desc[0].counter, 0);
	ck_assert_uint_eq(r->desc[3].counter, 1);
	ck_assert_uint_eq(r->desc[1].inflight, 0);
	for (int i = 0; i < 3; i++) {
		ck_assert_uint_eq(r->desc[i].addr, x.d[i].addr);
		ck_assert_uint_eq(r->desc[i].len, 8);
		ck_assert_uint_eq(r->desc[i].id, 6);
		ck_assert_uint_eq(r->desc[i].flags & VRE_DESC_F_WRITE, x.d[i].flags & VRE_DESC_F_WRITE);
		ck_assert_uint_eq(!!(r->desc[i].flags & VRE_DESC_F_NEXT), i < 2);
	}
	ck_assert_uint_eq(r->free_head, 4);
	ck_assert_uint_eq(r->old_free_head, 4);
	ck_assert_int_eq(free_count(e), 4);
	/* complete the second: its entry goes back on the front of the list */
	u = vre_used_of(&c[1], x_serve(e, &c[1], &y));
	ck_assert_int_eq(vre_vq_complete(&e->vq, &u, 1), 0);
	ck_assert_uint_eq(r->desc[3].inflight, 0);
	ck_assert_uint_eq(r->free_head, 3);
	ck_assert_uint_eq(r->desc[3].next, 4);
	ck_assert_uint_eq(r->used_idx, 1);
	ck_assert_uint_eq(r->old_used_idx, 1);
	ck_assert_uint_eq(r->old_free_head, 3);
	ck_assert_int_eq(free_count(e), 5);
	u = vre_used_of(&c[0], x_serve(e, &c[0], &x));
	ck_assert_int_eq(vre_vq_complete(&e->vq, &u, 1), 0);
	ck_assert_int_eq(free_count(e), 8);
	ck_assert_uint_eq(r->used_idx, 4);
	ck_assert_uint_eq(r->desc[0].inflight, 0);
	env_close(e);
}
END_TEST

/* ---- Crash at every step, recovery -------------------------------------- */

#define MAX_SNAP 256

struct snap {
	char step[48];
	uint8_t *host;
	uint8_t *inf;
};

static struct snap snaps[MAX_SNAP];
static unsigned nsnap;
static const char *snap_only; /* take only steps with this name, if set */

static void snap_take(struct env *e, const char *step)
{
	struct snap *s;

	ck_assert_uint_lt(nsnap, MAX_SNAP);
	s = &snaps[nsnap++];
	snprintf(s->step, sizeof(s->step), "%s", step);
	s->host = malloc(e->host_len);
	s->inf = malloc(e->inf_len);
	memcpy(s->host, e->host, e->host_len);
	memcpy(s->inf, e->inf, e->inf_len);
}

static void snap_hook(struct vre_vq *vq, const char *step)
{
	(void)vq;
	if (!snap_only || strcmp(step, snap_only) == 0)
		snap_take(hook_env, step);
}

static void snaps_free(void)
{
	for (unsigned i = 0; i < nsnap; i++) {
		free(snaps[i].host);
		free(snaps[i].inf);
	}
	nsnap = 0;
}

/* The scenario both crash tests share. */
struct scen {
	unsigned n;
	struct xchain x[8];
	int fetch_order[8]; /* index into x, as the first process fetched */
};

static int x_of(const struct scen *sc, uint16_t id)
{
	for (unsigned i = 0; i < sc->n; i++)
		if (sc->x[i].id == id)
			return (int)i;
	ck_abort_msg("unknown id %u", id);
	return -1;
}

/*
 * A fresh process over a snapshot: the driver (state as when it posted the
 * chains; it reaps nothing before) first takes what the snapshot shows as
 * used, then a new vq attaches the region; the chains it resubmits must be
 * exactly the fetched ones the driver has not seen, oldest first, with
 * their contents; every other chain comes from the ring; each completion
 * the device makes shows up at the driver exactly once, alone.
 */
static void recover_check(const struct env *orig, const struct pdrv *drv0,
			  const struct scen *sc, const struct snap *s)
{
	struct env *e = env_open(orig->size, orig->a_len, orig->b_len,
				 orig->p.event_idx, orig->p.indirect);
	int seen[8] = { 0 }, resub_idx[8], nres, fetched_after = 0;
	struct iovec pool[16];
	struct vre_chain c;
	uint16_t id, pos_idx, avail_idx;
	uint32_t len, slots = 0;
	bool pos_wrap, avail_wrap;

	memcpy(e->host, s->host, e->host_len);
	memcpy(e->inf, s->inf, e->inf_len);
	e->drv = *drv0;
	e->drv.ring = e->p.desc;
	e->drv.driver = e->p.driver;
	e->drv.device = e->p.device;
	while (pdrv_get_used(&e->drv, &id, &len) == 1) {
		int i = x_of(sc, id);

		ck_assert_msg(!seen[i]++, "%s: id %u twice", s->step, id);
		x_check_used(e, &sc->x[i], len);
	}
	pos_idx = e->drv.used_idx;
	pos_wrap = e->drv.used_wrap;
	/* whatever the frontend says, the region wins */
	ck_assert_int_eq(vre_vq_set_base(&e->vq, 3 | 5u << 16), 0);
	nres = vre_vq_inflight_attach(&e->vq, e->inf, e->inf_len, 0);
	ck_assert_msg(nres >= 0, "%s: attach %d", s->step, nres);
	ck_assert_msg(e->vq.last_used_idx == pos_idx && e->vq.used_wrap == pos_wrap,
		      "%s: used %u/%d, driver at %u/%d", s->step, e->vq.last_used_idx,
		      e->vq.used_wrap, pos_idx, pos_wrap);
	avail_idx = e->vq.last_avail_idx;
	avail_wrap = e->vq.avail_wrap;
	/* nothing new is visible to the driver after the repair */
	ck_assert_msg(pdrv_get_used(&e->drv, &id, &len) == 0, "%s: stale used %u", s->step, id);
	/* resubmissions: in fetch order, exactly content */
	for (int k = 0; k < nres; k++) {
		int i;

		ck_assert_int_eq(vre_vq_fetch(&e->vq, &c, 1, pool, 16), 1);
		i = x_of(sc, c.id);
		resub_idx[k] = i;
		ck_assert_msg(!seen[i], "%s: resubmitted %u the driver has", s->step, c.id);
		ck_assert_uint_eq(c.ndesc, sc->x[i].n);
		if (k)
			ck_assert_msg(resub_idx[k] != resub_idx[k - 1], "%s", s->step);
		slots += c.ndesc;
		/* serve it and complete alone: the driver sees just this one */
		{
			struct vre_used u = vre_used_of(&c, x_serve(e, &c, &sc->x[i]));

			ck_assert_int_eq(vre_vq_complete(&e->vq, &u, 1), 0);
		}
		ck_assert_int_eq(pdrv_get_used(&e->drv, &id, &len), 1);
		ck_assert_msg(id == c.id, "%s: driver saw %u after completing %u", s->step, id, c.id);
		x_check_used(e, &sc->x[i], len);
		seen[i]++;
		ck_assert_msg(pdrv_get_used(&e->drv, &id, &len) == 0, "%s: extra used %u", s->step, id);
	}
	/* resubmit order = first process's fetch order */
	for (int k = 1; k < nres; k++) {
		int a = -1, b = -1;

		for (unsigned j = 0; j < sc->n; j++) {
			if (sc->fetch_order[j] == resub_idx[k - 1])
				a = (int)j;
			if (sc->fetch_order[j] == resub_idx[k])
				b = (int)j;
		}
		ck_assert_msg(a < b, "%s: resubmit order", s->step);
	}
	/* the avail position was restored to just after the resubmitted slots */
	pos_idx = (uint16_t)(pos_idx + slots);
	if (pos_idx >= e->size) {
		pos_idx = (uint16_t)(pos_idx - e->size);
		pos_wrap = !pos_wrap;
	}
	ck_assert_msg(avail_idx == pos_idx && avail_wrap == pos_wrap,
		      "%s: avail %u/%d, want %u/%d", s->step, avail_idx, avail_wrap,
		      pos_idx, pos_wrap);
	/* the rest comes from the ring */
	while (vre_vq_fetch(&e->vq, &c, 1, pool, 16) == 1) {
		int i = x_of(sc, c.id);
		struct vre_used u;

		ck_assert_msg(!seen[i], "%s: %u fetched again", s->step, c.id);
		u = vre_used_of(&c, x_serve(e, &c, &sc->x[i]));
		ck_assert_int_eq(vre_vq_complete(&e->vq, &u, 1), 0);
		ck_assert_int_eq(pdrv_get_used(&e->drv, &id, &len), 1);
		ck_assert_msg(id == c.id, "%s: driver saw %u after completing %u", s->step, id, c.id);
		x_check_used(e, &sc->x[i], len);
		seen[i]++;
		fetched_after++;
		ck_assert_int_eq(pdrv_get_used(&e->drv, &id, &len), 0);
	}
	ck_assert_uint_eq(e->vq.broken, 0);
	for (unsigned i = 0; i < sc->n; i++)
		ck_assert_msg(seen[i] == 1, "%s: chain %u seen %d times", s->step, i, seen[i]);
	ck_assert_uint_eq(e->drv.free_slots, e->size);
	ck_assert_uint_eq(e->vq.last_avail_idx, e->drv.avail_idx);
	ck_assert_uint_eq(e->vq.avail_wrap, e->drv.avail_wrap);
	/* the region is whole again: all free, old == live */
	ck_assert_int_eq(free_count(e), e->size);
	for (unsigned i = 0; i < e->size; i++)
		ck_assert_uint_eq(INF(e)->desc[i].inflight, 0);
	ck_assert_uint_eq(INF(e)->used_idx, INF(e)->old_used_idx);
	ck_assert_uint_eq(INF(e)->used_idx, e->vq.last_used_idx);
	env_close(e);
}

static void scen_build(struct env *e, struct scen *sc)
{
	struct xbuf tb[2] = { { galloc(e, 8), 8, false }, { galloc(e, 8), 8, true } };
	struct xchain *x = sc->x;

	memset(sc, 0, sizeof(*sc));
	sc->n = 4;
	x[0] = (struct xchain){ .id = 5, .seq = 50 };
	x_add(&x[0], galloc(e, 16), 16, false);
	x_add(&x[0], galloc(e, 32), 32, true);
	x[1] = (struct xchain){ .id = 2, .seq = 20 };
	x_add(&x[1], galloc(e, 64), 64, true);
	x[2] = (struct xchain){ .id = 7, .seq = 70 };
	x_indirect(e, &x[2], tb, 2);
	x[3] = (struct xchain){ .id = 0, .seq = 1 };
	x_add(&x[3], galloc(e, 4), 4, false);
	for (int i = 0; i < 4; i++) {
		x_post(e, &x[i]);
		sc->fetch_order[i] = i;
	}
}

START_TEST(test_crash_every_step)
{
	struct env *e = env_open(8, 1 << 16, 4096, false, true);
	struct pdrv *drv0 = malloc(sizeof(*drv0));
	struct scen sc;
	struct iovec pool[16];
	struct vre_chain c[4];
	struct vre_used u[3];
	static const int batch[3] = { 2, 0, 3 };

	ck_assert_int_eq(vre_vq_inflight_attach(&e->vq, e->inf, e->inf_len, 0), 0);
	scen_build(e, &sc);
	*drv0 = e->drv;
	nsnap = 0;
	snap_only = NULL;
	hook_env = e;
	snap_take(e, "before fetch");
	vring_step_hook = snap_hook;
	ck_assert_int_eq(vre_vq_fetch(&e->vq, c, 4, pool, 16), 4);
	vring_step_hook = NULL;
	for (int i = 0; i < 3; i++)
		u[i] = vre_used_of(&c[batch[i]], x_serve(e, &c[batch[i]], &sc.x[batch[i]]));
	x_serve(e, &c[1], &sc.x[1]);
	snap_take(e, "served, before complete");
	vring_step_hook = snap_hook;
	ck_assert_int_eq(vre_vq_complete(&e->vq, u, 3), 0);
	u[0] = vre_used_of(&c[1], 64);
	ck_assert_int_eq(vre_vq_complete(&e->vq, u, 1), 0);
	vring_step_hook = NULL;
	snap_take(e, "all done");
	/* fetch: 5 descriptors recorded + 4 chains x 4 commit steps;
	 * complete: 16 for the batch of 3, 10 for the single; 3 by hand */
	ck_assert_uint_eq(nsnap, 5 + 16 + 16 + 10 + 3);
	for (unsigned i = 0; i < nsnap; i++)
		recover_check(e, drv0, &sc, &snaps[i]);
	snaps_free();
	free(drv0);
	env_close(e);
}
END_TEST

/*
 * The gap: the first process wrote the used flags of the 2nd and 3rd chains
 * of a batch and died before the 1st. The ring shows two used slots past
 * the committed position; after recovery they must be gone, and the driver
 * must see each chain once, when the new process completes it.
 */
static uint16_t avail_pat(bool w) { return w ? 0x0080 : 0x8000; }
static uint16_t used_pat(bool w) { return w ? 0x8080 : 0x0000; }

/* _i = 0: the batch sits at slots 0..3; _i = 1: at 7, 0, 1, 2 after a lap,
 * so the re-hidden slots are across the wrap, with wrap counter 0. */
START_TEST(test_crash_gap)
{
	struct env *e = env_open(8, 1 << 16, 4096, false, false);
	struct pdrv *drv0 = malloc(sizeof(*drv0));
	struct scen sc;
	struct iovec pool[16];
	struct vre_chain c[4];
	struct vre_used u[3];
	struct env *r;
	static const int batch[3] = { 3, 1, 2 };
	unsigned pre = _i ? 7 : 0;
	uint16_t id, s0 = (uint16_t)pre;
	uint32_t len;

	ck_assert_int_eq(vre_vq_inflight_attach(&e->vq, e->inf, e->inf_len, 0), 0);
	for (unsigned k = 0; k < pre; k++)
		one_trip(e, (uint16_t)k);
	memset(&sc, 0, sizeof(sc));
	sc.n = 4;
	for (int i = 0; i < 4; i++) {
		sc.x[i] = (struct xchain){ .id = (uint16_t)i, .seq = 900u + (uint32_t)i };
		x_add(&sc.x[i], galloc(e, 16), 16, true);
		x_post(e, &sc.x[i]);
		sc.fetch_order[i] = i;
	}
	*drv0 = e->drv;
	ck_assert_int_eq(vre_vq_fetch(&e->vq, c, 4, pool, 16), 4);
	for (int i = 0; i < 3; i++)
		u[i] = vre_used_of(&c[batch[i]], x_serve(e, &c[batch[i]], &sc.x[batch[i]]));
	nsnap = 0;
	snap_only = "complete: later flags";
	hook_env = e;
	vring_step_hook = snap_hook;
	ck_assert_int_eq(vre_vq_complete(&e->vq, u, 3), 0);
	vring_step_hook = NULL;
	snap_only = NULL;
	ck_assert_uint_eq(nsnap, 2);

	/* the second snapshot: both later flags written, the first not */
	r = env_open(8, 1 << 16, 4096, false, false);
	memcpy(r->host, snaps[1].host, r->host_len);
	memcpy(r->inf, snaps[1].inf, r->inf_len);
	r->drv = *drv0;
	r->drv.ring = r->p.desc;
	r->drv.driver = r->p.driver;
	r->drv.device = r->p.device;
	/* the precondition: the 2nd and 3rd batch slots look used (ids 1, 2),
	 * the first does not, and the driver sees nothing */
	for (int k = 0; k < 4; k++) {
		uint16_t slot = (uint16_t)((s0 + k) % 8);
		bool w = (s0 + k) < 8;

		ck_assert_uint_eq(r->drv.ring[slot].flags & 0x8080,
				  (k == 1 || k == 2) ? used_pat(w) : avail_pat(w));
		if (k == 1 || k == 2)
			ck_assert_uint_eq(r->drv.ring[slot].id, k);
	}
	ck_assert_int_eq(pdrv_get_used(&r->drv, &id, &len), 0);
	ck_assert_int_eq(vre_vq_inflight_attach(&r->vq, r->inf, r->inf_len, 0), 4);
	/* re-hidden: every held slot shows its available pattern again */
	for (int k = 0; k < 4; k++) {
		uint16_t slot = (uint16_t)((s0 + k) % 8);

		ck_assert_uint_eq(r->drv.ring[slot].flags & 0x8080, avail_pat((s0 + k) < 8));
	}
	ck_assert_uint_eq(r->vq.last_used_idx, s0);
	ck_assert_uint_eq(r->vq.last_avail_idx, (s0 + 4) % 8);
	ck_assert_uint_eq(r->vq.avail_wrap, s0 + 4 < 8);
	env_close(r);
	/* and the full exactly-once run over both snapshots */
	recover_check(e, drv0, &sc, &snaps[1]);
	recover_check(e, drv0, &sc, &snaps[0]);
	snaps_free();
	free(drv0);
	env_close(e);
}
END_TEST

static uint32_t rnd_state;

static uint32_t rnd(void)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return rnd_state >> 8;
}

/*
 * Random runs: 2..8 chains of 1..3 descriptors (some indirect) after a
 * random number of warm-up trips, fetched in random bursts and completed in
 * random batches and orders, with a snapshot at every step; each snapshot
 * must recover to exactly-once delivery.
 */
START_TEST(test_crash_random)
{
	struct env *e = env_open(16, 1 << 16, 4096, false, true);
	struct pdrv *drv0 = malloc(sizeof(*drv0));
	struct scen sc;
	struct iovec pool[32];
	struct vre_chain held[8], c[8];
	unsigned nheld = 0, fetched = 0, done = 0, slots = 0, warm;

	rnd_state = 0x1234u + (uint32_t)_i * 7919u;
	warm = rnd() % 20;
	ck_assert_int_eq(vre_vq_inflight_attach(&e->vq, e->inf, e->inf_len, 0), 0);
	for (unsigned k = 0; k < warm; k++)
		one_trip(e, (uint16_t)(k % 16));
	memset(&sc, 0, sizeof(sc));
	while (sc.n < 8) {
		struct xchain *x = &sc.x[sc.n];
		unsigned nd = 1 + rnd() % 3;

		if (slots + nd > 16)
			break;
		*x = (struct xchain){ .id = (uint16_t)((sc.n * 5 + 3) % 16), .seq = rnd() };
		if (rnd() % 4 == 0) {
			struct xbuf tb[2] = { { galloc(e, 12), 12, false }, { galloc(e, 20), 20, true } };

			x_indirect(e, x, tb, 1 + rnd() % 2);
			nd = 1;
		} else {
			for (unsigned j = 0; j < nd; j++)
				x_add(x, galloc(e, 8 + j), 8 + j, j + 1 == nd && nd > 1);
		}
		x_post(e, x);
		sc.fetch_order[sc.n] = (int)sc.n;
		slots += nd;
		sc.n++;
	}
	*drv0 = e->drv;
	nsnap = 0;
	snap_only = NULL;
	hook_env = e;
	snap_take(e, "posted");
	vring_step_hook = snap_hook;
	while (done < sc.n) {
		if (fetched < sc.n && (nheld == 0 || rnd() % 2)) {
			int n = vre_vq_fetch(&e->vq, c, 1 + rnd() % 4, pool, 32);

			ck_assert_int_gt(n, 0);
			for (int i = 0; i < n; i++) {
				x_serve(e, &c[i], &sc.x[x_of(&sc, c[i].id)]);
				held[nheld++] = c[i];
			}
			fetched += (unsigned)n;
		} else {
			unsigned k = 1 + rnd() % nheld;
			struct vre_used u[8];

			for (unsigned i = 0; i < k; i++) {
				unsigned pick = rnd() % nheld;
				const struct xchain *x = &sc.x[x_of(&sc, held[pick].id)];

				u[i] = vre_used_of(&held[pick], (uint32_t)x_rlen(x, true));
				held[pick] = held[--nheld];
			}
			ck_assert_int_eq(vre_vq_complete(&e->vq, u, k), 0);
			done += k;
		}
	}
	vring_step_hook = NULL;
	for (unsigned i = 0; i < nsnap; i++)
		recover_check(e, drv0, &sc, &snaps[i]);
	snaps_free();
	free(drv0);
	env_close(e);
}
END_TEST

/* A copy of e as a process killed now would leave it, with a fresh vq. */
static struct env *env_crash_copy(struct env *e)
{
	struct env *r = env_open(e->size, e->a_len, e->b_len, e->p.event_idx, e->p.indirect);
	struct pdrv keep = e->drv;

	memcpy(r->host, e->host, e->host_len);
	memcpy(r->inf, e->inf, e->inf_len);
	r->drv = keep;
	r->drv.ring = r->p.desc;
	r->drv.driver = r->p.driver;
	r->drv.device = r->p.device;
	r->bump = e->bump;
	return r;
}

/*
 * Two crashes in a row: the second process takes the resubmissions and a
 * new chain, completes one of the old ones and dies too. The third must
 * resubmit the remaining old chain before the new one (counter order
 * survives recovery), and the driver sees each chain once.
 */
START_TEST(test_crash_twice)
{
	struct env *e = env_open(8, 1 << 16, 4096, false, false), *r1, *r2;
	struct xchain x[3];
	struct iovec pool[16];
	struct vre_chain c[4];
	struct vre_used u;
	uint16_t id;
	uint32_t len;

	ck_assert_int_eq(vre_vq_inflight_attach(&e->vq, e->inf, e->inf_len, 0), 0);
	for (int i = 0; i < 3; i++) {
		x[i] = (struct xchain){ .id = (uint16_t)(6 - i), .seq = 300u + (uint32_t)i };
		x_add(&x[i], galloc(e, 8), 8, false);
		if (i != 1)
			x_add(&x[i], galloc(e, 24), 24, true);
		x_post(e, &x[i]);
	}
	/* first process: fetches two, dies */
	ck_assert_int_eq(vre_vq_fetch(&e->vq, c, 2, pool, 16), 2);
	r1 = env_crash_copy(e);
	ck_assert_int_eq(vre_vq_inflight_attach(&r1->vq, r1->inf, r1->inf_len, 0), 2);
	ck_assert_uint_eq(r1->vq.last_avail_idx, 3);
	ck_assert_int_eq(vre_vq_fetch(&r1->vq, c, 4, pool, 16), 3);
	ck_assert_uint_eq(c[0].id, 6);
	ck_assert_uint_eq(c[1].id, 5);
	ck_assert_uint_eq(c[2].id, 4);
	for (int i = 0; i < 3; i++)
		x_serve(r1, &c[i], &x[i]);
	/* second process: completes the second chain, dies */
	u = vre_used_of(&c[1], 0);
	ck_assert_int_eq(vre_vq_complete(&r1->vq, &u, 1), 0);
	ck_assert_int_eq(pdrv_get_used(&r1->drv, &id, &len), 1);
	ck_assert_uint_eq(id, 5);
	x_check_used(r1, &x[1], len);
	r2 = env_crash_copy(r1);
	ck_assert_int_eq(vre_vq_inflight_attach(&r2->vq, r2->inf, r2->inf_len, 0), 2);
	ck_assert_uint_eq(r2->vq.last_used_idx, 1); /* B took one slot */
	ck_assert_uint_eq(r2->vq.last_avail_idx, 5);
	ck_assert_int_eq(pdrv_get_used(&r2->drv, &id, &len), 0);
	ck_assert_int_eq(vre_vq_fetch(&r2->vq, c, 4, pool, 16), 2);
	ck_assert_uint_eq(c[0].id, 6);
	ck_assert_uint_eq(c[1].id, 4);
	for (int i = 0; i < 2; i++) {
		int xi = i ? 2 : 0;

		u = vre_used_of(&c[i], x_serve(r2, &c[i], &x[xi]));
		ck_assert_int_eq(vre_vq_complete(&r2->vq, &u, 1), 0);
		ck_assert_int_eq(pdrv_get_used(&r2->drv, &id, &len), 1);
		ck_assert_uint_eq(id, x[xi].id);
		x_check_used(r2, &x[xi], len);
	}
	ck_assert_int_eq(pdrv_get_used(&r2->drv, &id, &len), 0);
	ck_assert_int_eq(vre_vq_fetch(&r2->vq, c, 4, pool, 16), 0);
	ck_assert_uint_eq(r2->drv.free_slots, 8);
	ck_assert_int_eq(free_count(r2), 8);
	env_close(r2);
	env_close(r1);
	env_close(e);
}
END_TEST

/* ---- Corrupt regions -------------------------------------------------- */

static void corrupt_attach(void (*spoil)(struct vre_inflight_packed *r))
{
	struct env *e = env_open(8, 1 << 16, 4096, false, false);
	struct env *f;
	struct iovec pool[8];
	struct vre_chain c[2];

	ck_assert_int_eq(vre_vq_inflight_attach(&e->vq, e->inf, e->inf_len, 0), 0);
	post_one(e, galloc(e, 8), 8, 0, 1);
	{
		struct pdrv_desc d[2] = { { galloc(e, 8), 8, 0 }, { galloc(e, 8), 8, 0 } };

		ck_assert_int_eq(pdrv_post(&e->drv, d, 2, 4, false), 0);
	}
	ck_assert_int_eq(vre_vq_fetch(&e->vq, c, 2, pool, 8), 2);
	f = env_open(8, 1 << 16, 4096, false, false);
	memcpy(f->host, e->host, e->host_len);
	memcpy(f->inf, e->inf, e->inf_len);
	spoil(f->inf);
	ck_assert_int_eq(vre_vq_inflight_attach(&f->vq, f->inf, f->inf_len, 0), -EINVAL);
	ck_assert_uint_eq(f->vq.broken, VRE_RE_INFLIGHT_CORRUPT);
	ck_assert_int_eq(vre_vq_fetch(&f->vq, c, 2, pool, 8), -EIO);
	env_close(f);
	env_close(e);
}

static void s_desc_num(struct vre_inflight_packed *r) { r->desc_num = 16; }
static void s_version(struct vre_inflight_packed *r) { r->version = 7; }
static void s_used_idx(struct vre_inflight_packed *r) { r->old_used_idx = 8; }
static void s_free_cycle(struct vre_inflight_packed *r) { r->desc[5].next = 3; }
static void s_free_range(struct vre_inflight_packed *r) { r->desc[4].next = 200; }
static void s_num_zero(struct vre_inflight_packed *r) { r->desc[0].num = 0; }
static void s_num_big(struct vre_inflight_packed *r) { r->desc[1].num = 9; }
static void s_last(struct vre_inflight_packed *r) { r->desc[1].last = 1; }
static void s_last_range(struct vre_inflight_packed *r) { r->desc[0].last = 8; }
static void s_overlap(struct vre_inflight_packed *r) { r->desc[2].inflight = 1; }
static void s_dup_id(struct vre_inflight_packed *r) { r->desc[2].id = 1; }
static void s_id_range(struct vre_inflight_packed *r) { r->desc[0].id = 8; }
static void s_free_into_chain(struct vre_inflight_packed *r) { r->desc[7].next = 2; }

static void (*const spoils[])(struct vre_inflight_packed *) = {
	s_desc_num, s_version, s_used_idx, s_free_cycle, s_free_range, s_num_zero,
	s_num_big, s_last, s_last_range, s_overlap, s_dup_id, s_id_range, s_free_into_chain,
};

START_TEST(test_inflight_corrupt)
{
	corrupt_attach(spoils[_i]);
}
END_TEST

/* Recovery of a chain whose indirect table lives in guest memory. */
START_TEST(test_recover_indirect)
{
	struct env *e = env_open(16, 1 << 16, 4096, false, true);
	struct pdrv *drv0 = malloc(sizeof(*drv0));
	struct scen sc;
	struct iovec pool[16];
	struct vre_chain c[4];

	ck_assert_int_eq(vre_vq_inflight_attach(&e->vq, e->inf, e->inf_len, 0), 0);
	/* run a lap first so positions and wraps are not trivial */
	for (uint16_t i = 0; i < 19; i++) {
		struct vre_used u;
		uint16_t id;
		uint32_t len;

		post_one(e, A_GPA + 0x8000, 8, 0, i % 16);
		e->drv.outstanding[i % 16] = 1;
		e->drv.ndesc_of[i % 16] = 1;
		ck_assert_int_eq(vre_vq_fetch(&e->vq, c, 1, pool, 16), 1);
		u = vre_used_of(&c[0], 0);
		ck_assert_int_eq(vre_vq_complete(&e->vq, &u, 1), 0);
		ck_assert_int_eq(pdrv_get_used(&e->drv, &id, &len), 1);
	}
	scen_build(e, &sc);
	*drv0 = e->drv;
	ck_assert_int_eq(vre_vq_fetch(&e->vq, c, 4, pool, 16), 4);
	nsnap = 0;
	snap_take(e, "fetched, lap 2");
	recover_check(e, drv0, &sc, &snaps[0]);
	snaps_free();
	free(drv0);
	env_close(e);
}
END_TEST

static Suite *packed_suite(void)
{
	Suite *s = suite_create("packed");
	TCase *t = tcase_create("ring");
	TCase *slow = tcase_create("laps");
	TCase *inf = tcase_create("inflight");

	tcase_add_test(t, test_init_checks);
	tcase_add_loop_test(t, test_chain_full_size, 0, 2);
	tcase_add_test(t, test_indirect);
	tcase_add_test(t, test_indirect_across_regions);
	tcase_add_test(t, test_indirect_dpdk_stale_write);
	tcase_add_test(t, test_indirect_ordered_keeps_write);
	tcase_add_test(t, test_split_and_zero_len);
	tcase_add_test(t, test_single_edges);
	tcase_add_test(t, test_pool);
	tcase_add_test(t, test_batch_out_of_order);
	tcase_add_test(t, test_complete_fetched);
	tcase_add_loop_test(t, test_bad, 0, sizeof(bad_cases) / sizeof(bad_cases[0]));
	tcase_add_test(t, test_notify_flags);
	tcase_add_test(t, test_notify_event_idx);
	tcase_add_test(t, test_notify_old_lap);
	tcase_set_timeout(t, 60);
	suite_add_tcase(s, t);
	tcase_add_loop_test(slow, test_roundtrip_sizes, 0, sizeof(sizes) / sizeof(sizes[0]));
	tcase_add_test(slow, test_two_threads);
	tcase_set_timeout(slow, 240);
	suite_add_tcase(s, slow);
	tcase_add_test(inf, test_inflight_records);
	tcase_add_test(inf, test_crash_every_step);
	tcase_add_loop_test(inf, test_crash_gap, 0, 2);
	tcase_add_test(inf, test_crash_twice);
	tcase_add_loop_test(inf, test_crash_random, 0, 40);
	tcase_add_loop_test(inf, test_inflight_corrupt, 0, sizeof(spoils) / sizeof(spoils[0]));
	tcase_add_test(inf, test_recover_indirect);
	tcase_set_timeout(inf, 120);
	suite_add_tcase(s, inf);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(packed_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
