/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The ring fuzz engine. Oracles, beyond "no fault, no sanitizer report":
 *  - fetch: -EIO exactly when the queue is broken, and a broken queue
 *    touches no byte of guest memory; every chain has id < size and
 *    1 <= ndesc <= size, its iovecs lie in the caller's pool (chains of a
 *    burst do not overlap), each inside one region, nr/nw summing to
 *    rlen/wlen; -ENOBUFS chains carry nothing; a packed id (and, across a
 *    restart, any resubmitted id) is never handed out twice while in
 *    flight, and the packed slots held never exceed the queue size.
 *  - complete: returns 0 for chains in flight, and the used ring then shows
 *    exactly them; a packed completion of an id not in flight is refused
 *    without changing anything.
 *  - notify_enable returns what avail_pending says.
 *  - inflight: attach returns -EINVAL only with the queue broken as
 *    VRE_RE_INFLIGHT_CORRUPT; otherwise the count matches the resubmit
 *    queue, and when nothing but the device wrote ring and region, a
 *    restart resubmits exactly the chains that were in flight.
 *
 * A split driver may post the same head twice; split has no rule against
 * it that the device enforces (VRE_RE_ID_IN_USE is packed only), so split
 * duplicates are allowed and only disable the restart-count oracle.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "ring_engine.h"
#include "vre_log.h"
#include "vre_vq.h"

#define POOL 600
#define MAX_FLIGHT 2048
#define MAX_Q 256

struct flight {
	uint16_t id, ndesc, slot;
	uint64_t wlen;
};

struct eng {
	struct fz_mem mem;
	struct vre_vq vq;
	struct vre_vq_params p;
	bool packed, inflight_mode;
	uint8_t cfg;
	uint16_t size;
	uint8_t *part[3];
	size_t part_len[3];
	struct flight fl[MAX_FLIGHT];
	unsigned nfl;
	uint16_t busy[MAX_Q];
	bool tampered;        /* something other than the device wrote ring or region */
	unsigned resub_left;  /* chains the next fetches must return from recovery */
	bool resub_known;     /* the set of resubmitted ids is known (untampered) */
	uint16_t resub_ids[MAX_Q];
	unsigned nresub_ids;
	/* driver */
	uint16_t drv_idx;
	bool drv_wrap;
	/* inflight */
	void *reg, *reg_base;
	size_t reg_len, reg_map_len;
	struct iovec pool[POOL];
};

static struct eng E;
static uint8_t snap[2][FZ_MAX_PAGES * FZ_PAGE];

static void snapshot(struct eng *e)
{
	for (unsigned i = 0; i < e->mem.n; i++)
		memcpy(snap[i], e->mem.r[i].hva, e->mem.r[i].size);
}

static bool unchanged(const struct eng *e)
{
	for (unsigned i = 0; i < e->mem.n; i++)
		if (memcmp(snap[i], e->mem.r[i].hva, e->mem.r[i].size))
			return false;
	return true;
}

static bool overlaps(const void *a, size_t alen, const void *b, size_t blen)
{
	uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;

	return x < y + blen && y < x + alen;
}

/* Packed: whether slot s is held by the device (fetched, not returned). */
static bool slot_held(const struct vre_vq *vq, uint16_t s)
{
	uint32_t lap = 2u * vq->size;
	uint32_t a = vq->last_avail_idx + (vq->avail_wrap ? 0u : vq->size);
	uint32_t u = vq->last_used_idx + (vq->used_wrap ? 0u : vq->size);
	uint32_t held = (a + lap - u) % lap, d = (s + lap - vq->last_used_idx) % vq->size;

	return d < held;
}

static uint32_t held_total(const struct eng *e)
{
	uint32_t t = 0;

	for (unsigned i = 0; i < e->nfl; i++)
		t += e->fl[i].ndesc;
	return t;
}

/* ---- fetch ---------------------------------------------------------------- */

static void check_chain(struct eng *e, const struct vre_chain *c, struct iovec **next)
{
	FZ_CHECK(c->id < e->size, "id %u >= size %u", c->id, e->size);
	FZ_CHECK(c->ndesc >= 1 && c->ndesc <= e->size, "ndesc %u", c->ndesc);
	FZ_CHECK(c->slot < e->size, "slot %u", c->slot);
	FZ_CHECK(e->packed || c->slot == c->id, "split slot %u != id %u", c->slot, c->id);
	if (c->err) {
		FZ_CHECK(c->err == -ENOBUFS, "chain err %d", c->err);
		FZ_CHECK(c->nr == 0 && c->nw == 0 && c->rlen == 0 && c->wlen == 0,
			 "-ENOBUFS chain carries nr %u nw %u", c->nr, c->nw);
		return;
	}
	if (c->nr + c->nw) {
		FZ_CHECK(c->iov >= *next && c->iov + c->nr + c->nw <= e->pool + POOL,
			 "iovecs outside the pool or overlapping the previous chain");
		*next = c->iov + c->nr + c->nw;
	}
	fz_check_iov(&e->mem, c->iov, c->nr, c->rlen, false);
	fz_check_iov(&e->mem, c->iov + c->nr, c->nw, c->wlen, true);
	for (unsigned i = 0; i < c->nw; i++)
		for (unsigned k = 0; k < 3; k++)
			if (overlaps(c->iov[c->nr + i].iov_base, c->iov[c->nr + i].iov_len,
				     e->part[k], e->part_len[k]))
				e->tampered = true; /* our 0x5a fill hit a ring */
}

static void note_resubmit(struct eng *e, const struct vre_chain *c)
{
	bool found = false;

	if (!e->resub_known)
		return;
	for (unsigned i = 0; i < e->nresub_ids; i++)
		if (e->resub_ids[i] == c->id) {
			e->resub_ids[i] = e->resub_ids[--e->nresub_ids];
			found = true;
			break;
		}
	FZ_CHECK(found, "resubmitted id %u was not in flight at the crash", c->id);
}

static void op_fetch(struct eng *e, struct fin *f)
{
	struct vre_chain chains[VRE_BURST];
	unsigned max = fin8(f) % (VRE_BURST + 1), pool_len = fin16(f) % (POOL + 1);
	bool was_broken = e->vq.broken;
	struct iovec *next = e->pool;
	int r;

	if (e->nfl + VRE_BURST > MAX_FLIGHT)
		return;
	if (was_broken)
		snapshot(e);
	r = vre_vq_fetch(&e->vq, chains, max, e->pool, pool_len);
	if (was_broken) {
		FZ_CHECK(r == -EIO, "broken queue fetch returned %d", r);
		FZ_CHECK(unchanged(e), "broken queue wrote guest memory");
		return;
	}
	if (r < 0) {
		FZ_CHECK(r == -EIO && e->vq.broken, "fetch %d, broken %u", r, e->vq.broken);
		return;
	}
	FZ_CHECK((unsigned)r <= max, "fetch returned %d > max %u", r, max);
	for (int i = 0; i < r; i++) {
		const struct vre_chain *c = &chains[i];

		check_chain(e, c, &next);
		if (e->resub_left) {
			e->resub_left--;
			note_resubmit(e, c);
		}
		if (e->packed || e->resub_left) {
			FZ_CHECK(!e->busy[c->id], "id %u handed out twice", c->id);
		} else if (e->busy[c->id]) {
			e->tampered = true; /* split: the driver posted a head twice */
		}
		e->busy[c->id]++;
		e->fl[e->nfl++] = (struct flight){ c->id, c->ndesc, c->slot, c->wlen };
	}
	if (e->packed)
		FZ_CHECK(held_total(e) <= e->size, "packed: %u slots held > size", held_total(e));
}

/* ---- complete --------------------------------------------------------------- */

static void check_used_split(struct eng *e, const struct vre_used *u, unsigned n,
			     uint16_t old)
{
	struct vre_used_ring *ur = e->vq.sp.used;
	uint16_t idx = __atomic_load_n(&ur->idx, __ATOMIC_RELAXED);

	FZ_CHECK(idx == (uint16_t)(old + n), "used idx %u, want %u", idx, (uint16_t)(old + n));
	for (unsigned i = n > e->size ? n - e->size : 0; i < n; i++) {
		struct vre_used_elem *el = &ur->ring[(uint16_t)(old + i) & (e->size - 1)];

		FZ_CHECK(el->id == u[i].id && el->len == u[i].len,
			 "used elem %u: id %u len %u, want %u %u", i, el->id, el->len,
			 u[i].id, u[i].len);
	}
}

static void check_used_packed(struct eng *e, const struct vre_used *u, unsigned n,
			      uint16_t idx, bool wrap)
{
	for (unsigned i = 0; i < n; i++) {
		struct vre_packed_desc *d = &e->vq.pk.desc[idx];
		uint16_t want = wrap ? VRE_PACKED_DESC_F_AVAIL | VRE_PACKED_DESC_F_USED : 0;

		FZ_CHECK(d->id == u[i].id && d->len == u[i].len &&
			 (d->flags & (VRE_PACKED_DESC_F_AVAIL | VRE_PACKED_DESC_F_USED)) == want,
			 "used slot %u: id %u len %u flags %#x", idx, d->id, d->len, d->flags);
		idx = (uint16_t)(idx + u[i].ndesc);
		if (idx >= e->size) {
			idx = (uint16_t)(idx - e->size);
			wrap = !wrap;
		}
	}
}

static uint32_t pick_len(struct fin *f, uint64_t wlen)
{
	uint32_t cap = wlen > UINT32_MAX ? UINT32_MAX : (uint32_t)wlen;

	switch (fin8(f) % 3) {
	case 0:
		return 0;
	case 1:
		return cap;
	default:
		return cap ? fin32(f) % cap : 0;
	}
}

static void complete_n(struct eng *e, struct fin *f, unsigned start, unsigned k)
{
	struct vre_used u[VRE_BURST];
	uint16_t old = e->vq.last_used_idx;
	bool wrap = e->vq.used_wrap;
	int r;

	for (unsigned i = 0; i < k; i++) {
		struct flight *x = &e->fl[(start + i) % e->nfl];

		u[i] = (struct vre_used){ .id = x->id, .ndesc = x->ndesc, .slot = x->slot,
					  .len = pick_len(f, x->wlen) };
	}
	r = vre_vq_complete(&e->vq, u, k);
	FZ_CHECK(r == 0, "complete of %u chains in flight returned %d", k, r);
	if (e->packed)
		check_used_packed(e, u, k, old, wrap);
	else
		check_used_split(e, u, k, old);
	/* Drop them from the flight list (they were consecutive, circularly). */
	for (unsigned i = 0; i < k; i++)
		e->busy[u[i].id]--;
	{
		struct flight keep[MAX_FLIGHT];
		unsigned m = 0;

		for (unsigned i = k; i < e->nfl; i++)
			keep[m++] = e->fl[(start + i) % e->nfl];
		memcpy(e->fl, keep, m * sizeof(keep[0]));
		e->nfl = m;
	}
}

static void op_complete(struct eng *e, struct fin *f)
{
	unsigned k = fin8(f) % (VRE_BURST + 1), start = fin8(f);

	if (!e->nfl)
		return;
	if (k > e->nfl)
		k = e->nfl;
	if (!k) {
		FZ_CHECK(vre_vq_complete(&e->vq, NULL, 0) == 0, "empty complete");
		return;
	}
	complete_n(e, f, start % e->nfl, k);
}

static void op_bogus_complete(struct eng *e, struct fin *f)
{
	struct vre_used u = { .id = fin16(f), .ndesc = 1, .len = 0 };
	uint16_t used = e->vq.last_used_idx;

	if (!e->packed) {
		/* Split refuses only ids outside the table. */
		u.id = (uint16_t)(e->size + u.id % (UINT16_MAX - e->size));
		FZ_CHECK(vre_vq_complete(&e->vq, &u, 1) == -EINVAL, "split bogus id accepted");
		FZ_CHECK(e->vq.last_used_idx == used, "refused complete moved used");
		return;
	}
	/* In flight (or recovered and waiting to be handed out again, ids we
	 * cannot see): not bogus. */
	if ((u.id < e->size && e->busy[u.id]) || e->resub_left)
		return;
	u.slot = u.id < e->size ? u.id : 0;
	FZ_CHECK(vre_vq_complete(&e->vq, &u, 1) == -EINVAL, "packed id %u not in flight accepted",
		 u.id);
	FZ_CHECK(e->vq.last_used_idx == used, "refused complete moved used");
	/* A batch with one id twice is refused too. */
	if (e->nfl) {
		struct vre_used d[2];

		d[0] = d[1] = (struct vre_used){ .id = e->fl[0].id, .ndesc = e->fl[0].ndesc,
						  .slot = e->fl[0].slot };
		FZ_CHECK(vre_vq_complete(&e->vq, d, 2) == -EINVAL, "duplicate id accepted");
	}
}

/* ---- the driver ------------------------------------------------------------- */

static void gen_desc(struct eng *e, struct fin *f, uint64_t *addr, uint32_t *len,
		     uint8_t *flags)
{
	uint8_t fl = fin8(f);

	*addr = fz_pick_gpa(&e->mem, f);
	*len = fl & 0x80 ? fin32(f) : fin16(f) % 2048;
	*flags = fl & 7;
}

static void op_poke16(struct eng *e, struct fin *f)
{
	unsigned k = fin8(f) % 3;
	uint16_t off = fin16(f), v = fin16(f);

	if (e->part_len[k] < 2)
		return;
	off = (uint16_t)(off % (e->part_len[k] - 1));
	memcpy(e->part[k] + off, &v, 2);
	if (e->packed ? k == 0 : k == 2)
		e->tampered = true; /* device-owned memory */
}

static void op_desc(struct eng *e, struct fin *f)
{
	uint16_t i = fin16(f) % e->size, x = fin16(f);
	uint64_t addr;
	uint32_t len;
	uint8_t fl;

	gen_desc(e, f, &addr, &len, &fl);
	if (!e->packed) {
		struct vre_desc d = { addr, len, fl, x };

		memcpy(&e->vq.sp.desc[i], &d, sizeof(d));
		return;
	}
	/* A raw packed slot: flags as given, any avail/used pattern. */
	uint8_t pat = fin8(f);
	struct vre_packed_desc d = { addr, len, x,
				     (uint16_t)(fl | (pat & 1 ? VRE_PACKED_DESC_F_AVAIL : 0) |
						(pat & 2 ? VRE_PACKED_DESC_F_USED : 0)) };

	if (slot_held(&e->vq, i))
		e->tampered = true;
	memcpy(&e->vq.pk.desc[i], &d, sizeof(d));
}

static uint16_t pick_id(struct eng *e, struct fin *f)
{
	uint16_t v = fin16(f);

	return v & 0x8000 ? (uint16_t)(v & 0x7fff) : (uint16_t)(v % e->size);
}

static void add_split(struct eng *e, struct fin *f)
{
	unsigned k = fin8(f) % 8 + 1;
	uint16_t mask = e->size - 1;

	for (unsigned i = 0; i < k; i++) {
		uint16_t head = pick_id(e, f);

		__atomic_store_n(&e->vq.sp.avail->ring[e->drv_idx & mask], head, __ATOMIC_RELAXED);
		e->drv_idx++;
	}
	__atomic_store_n(&e->vq.sp.avail->idx, e->drv_idx, __ATOMIC_RELEASE);
}

static void add_packed(struct eng *e, struct fin *f)
{
	unsigned n = fin8(f) % 4 + 1;
	uint16_t id = pick_id(e, f), head = e->drv_idx, head_flags = 0;
	uint8_t mode = fin8(f);

	for (unsigned j = 0; j < n; j++) {
		struct vre_packed_desc *d = &e->vq.pk.desc[e->drv_idx];
		bool wrap = e->drv_wrap ^ (mode & 1); /* bit 0: a wrong pattern */
		uint64_t addr;
		uint32_t len;
		uint8_t fl;
		uint16_t flags;

		gen_desc(e, f, &addr, &len, &fl);
		flags = (uint16_t)((fl & (VRE_DESC_F_WRITE | VRE_DESC_F_INDIRECT)) |
				   (j + 1 < n ? VRE_DESC_F_NEXT : 0) |
				   (wrap ? VRE_PACKED_DESC_F_AVAIL : VRE_PACKED_DESC_F_USED));
		if (slot_held(&e->vq, e->drv_idx))
			e->tampered = true;
		d->addr = addr;
		d->len = len;
		d->id = id;
		if (j == 0)
			head_flags = flags;
		else
			__atomic_store_n(&d->flags, flags, __ATOMIC_RELAXED);
		if (++e->drv_idx == e->size) {
			e->drv_idx = 0;
			e->drv_wrap = !e->drv_wrap;
		}
	}
	/* The head's flags last: that publishes the chain. */
	__atomic_store_n(&e->vq.pk.desc[head].flags, head_flags, __ATOMIC_RELEASE);
}

static void op_avail_idx(struct eng *e, struct fin *f)
{
	uint16_t v = fin16(f);

	if (!e->packed) {
		e->drv_idx = v;
		__atomic_store_n(&e->vq.sp.avail->idx, v, __ATOMIC_RELEASE);
		return;
	}
	e->drv_idx = (uint16_t)(v % e->size);
	e->drv_wrap = v >> 15;
}

static void op_event(struct eng *e, struct fin *f)
{
	uint16_t a = fin16(f), b = fin16(f);

	if (!e->packed) {
		__atomic_store_n(&e->vq.sp.avail->flags, (uint16_t)(a & 1), __ATOMIC_RELAXED);
		__atomic_store_n(e->vq.sp.used_event, b, __ATOMIC_RELAXED);
		return;
	}
	__atomic_store_n(&e->vq.pk.driver->off_wrap, b, __ATOMIC_RELAXED);
	__atomic_store_n(&e->vq.pk.driver->flags, (uint16_t)(a % 4), __ATOMIC_RELAXED);
}

/* Writes up to 8 descriptors (an indirect table) at a GPA in one region. */
static void op_table(struct eng *e, struct fin *f)
{
	uint64_t gpa = fz_pick_gpa(&e->mem, f);
	unsigned n = fin8(f) % 8 + 1;
	uint32_t hint = 0;
	uint8_t *t = vre_mem_gpa_ptr(&e->mem.mm, &hint, gpa, 16ull * n);

	for (unsigned i = 0; i < n; i++) {
		uint64_t addr;
		uint32_t len;
		uint8_t fl;
		uint16_t next = fin8(f);
		uint8_t d[16];

		gen_desc(e, f, &addr, &len, &fl);
		memcpy(d, &addr, 8);
		memcpy(d + 8, &len, 4);
		if (e->packed) {
			uint16_t fl16 = fl;

			memcpy(d + 12, &next, 2);
			memcpy(d + 14, &fl16, 2);
		} else {
			uint16_t fl16 = fl;

			memcpy(d + 12, &fl16, 2);
			memcpy(d + 14, &next, 2);
		}
		if (t) {
			memcpy(t + 16 * i, d, 16);
			for (unsigned k = 0; k < 3; k++)
				if (overlaps(t + 16 * i, 16, e->part[k], e->part_len[k]))
					e->tampered = true;
		}
	}
}

/* ---- inflight ---------------------------------------------------------------- */

static uint64_t features(const struct eng *e)
{
	return (1ull << 32) | (e->packed ? 1ull << 34 : 0) |
	       (e->p.event_idx ? 1ull << 29 : 0) | (e->p.indirect ? 1ull << 28 : 0);
}

static void attach(struct eng *e)
{
	int r = vre_vq_inflight_attach(&e->vq, e->reg, e->reg_len, features(e));

	if (r < 0) {
		FZ_CHECK(r == -EINVAL && e->vq.broken == VRE_RE_INFLIGHT_CORRUPT,
			 "attach %d with broken %u", r, e->vq.broken);
		e->resub_left = 0;
		e->resub_known = false;
		return;
	}
	FZ_CHECK(r <= e->size && e->vq.resubmit_num == (unsigned)r && e->vq.resubmit_pos == 0,
		 "attach %d, resubmit %u/%u", r, e->vq.resubmit_pos, e->vq.resubmit_num);
	FZ_CHECK(!e->vq.broken, "attach %d but broken %u", r, e->vq.broken);
	if (e->resub_known)
		FZ_CHECK((unsigned)r == e->nresub_ids, "restart resubmits %d chains, %u were in flight",
			 r, e->nresub_ids);
	e->resub_left = (unsigned)r;
}

/* The process dies with chains in flight; a new one takes the queue over. */
static void op_crash(struct eng *e, struct fin *f)
{
	uint32_t base = fin32(f);

	/* In flight at the crash: what was handed out and not completed, plus
	 * the resubmissions of the last restart not handed out yet (still
	 * left in resub_ids). */
	if (e->resub_left && !e->resub_known)
		e->tampered = true;
	e->resub_known = !e->tampered && !e->vq.broken;
	if (!e->resub_left)
		e->nresub_ids = 0;
	for (unsigned i = 0; i < e->nfl && e->resub_known; i++)
		e->resub_ids[e->nresub_ids++] = e->fl[i].id;
	vre_vq_fini(&e->vq);
	FZ_CHECK(vre_vq_init(&e->vq, &e->p) == 0, "re-init");
	(void)vre_vq_set_base(&e->vq, base);
	e->nfl = 0;
	memset(e->busy, 0, sizeof(e->busy));
	attach(e);
}

static void op_poke_inflight(struct eng *e, struct fin *f)
{
	size_t off = fin16(f) % e->reg_len;
	unsigned w = (unsigned[]){ 1, 2, 8 }[fin8(f) % 3];
	uint64_t v = fin64(f);

	if (off + w > e->reg_len)
		off = e->reg_len - w;
	memcpy((uint8_t *)e->reg + off, &v, w);
	e->tampered = true;
}

/* ---- setup and the loop --------------------------------------------------------- */

static int setup(struct eng *e, struct fin *f, enum fz_ring_mode mode)
{
	uint8_t cfg = fin8(f), q = fin8(f);
	static const unsigned align_split[3] = { 16, 2, 4 }, align_packed[3] = { 16, 4, 4 };
	int r;

	e->cfg = cfg;
	e->inflight_mode = mode == FZ_RING_INFLIGHT;
	e->packed = mode == FZ_RING_PACKED || (e->inflight_mode && (cfg & FZ_CFG_PACKED));
	e->size = e->packed ? (uint16_t)(q + 1) : (uint16_t)(1u << (q % 9));
	e->part_len[0] = 16u * e->size;
	e->part_len[1] = e->packed ? 4 : 6u + 2u * e->size;
	e->part_len[2] = e->packed ? 4 : 6u + 8u * e->size;
	for (unsigned k = 0; k < 3; k++) {
		uint8_t ri = fin8(f);
		uint16_t off = fin16(f);

		e->part[k] = fz_place(&e->mem, ri, off, e->part_len[k],
				      (e->packed ? align_packed : align_split)[k]);
		if (!e->part[k])
			return -1;
	}
	e->p = (struct vre_vq_params){ .size = e->size, .packed = e->packed,
				       .event_idx = cfg & FZ_CFG_EVENT_IDX,
				       .indirect = cfg & FZ_CFG_INDIRECT,
				       .desc = e->part[0], .driver = e->part[1],
				       .device = e->part[2], .mem = &e->mem.mm };
	r = vre_vq_init(&e->vq, &e->p);
	FZ_CHECK(r == 0, "init of a well-placed queue: %d", r);
	/* Overlapping ring parts: the driver's stores land in device-owned
	 * fields (e.g. avail->idx on used->idx), so restarts may differ. */
	for (unsigned a = 0; a < 3; a++)
		for (unsigned b = a + 1; b < 3; b++)
			if (overlaps(e->part[a], e->part_len[a], e->part[b], e->part_len[b]))
				e->tampered = true;
	return 0;
}

static void run_script(struct eng *e, struct fin *s)
{
	bool trace = getenv("VRE_FUZZ_TRACE") != NULL;

	while (s->n) {
		uint8_t op = fin8(s) % OP_COUNT;

		if (trace)
			fprintf(stderr, "op %u: in flight %u, avail %u/%d used %u/%d broken %u tampered %d\n",
				op, e->nfl, e->vq.last_avail_idx, e->vq.avail_wrap, e->vq.last_used_idx,
				e->vq.used_wrap, e->vq.broken, e->tampered);

		if (!e->inflight_mode && (op == OP_CRASH || op == OP_POKE_INFLIGHT))
			op = OP_FETCH;
		switch (op) {
		case OP_FETCH: op_fetch(e, s); break;
		case OP_COMPLETE: op_complete(e, s); break;
		case OP_NEEDS_NOTIFY: (void)vre_vq_needs_notify(&e->vq); break;
		case OP_NOTIFY_ENABLE: {
			bool more = vre_vq_notify_enable(&e->vq);

			FZ_CHECK(more == vre_vq_avail_pending(&e->vq),
				 "notify_enable %d, avail_pending disagrees", more);
			if (!e->packed && e->p.event_idx && !e->vq.broken)
				FZ_CHECK(*e->vq.sp.avail_event == e->vq.last_avail_idx,
					 "avail_event not at last_avail");
			break;
		}
		case OP_NOTIFY_DISABLE: vre_vq_notify_disable(&e->vq); break;
		case OP_PENDING: (void)vre_vq_avail_pending(&e->vq); break;
		case OP_POKE16: op_poke16(e, s); break;
		case OP_DESC: op_desc(e, s); break;
		case OP_ADD: e->packed ? add_packed(e, s) : add_split(e, s); break;
		case OP_AVAIL_IDX: op_avail_idx(e, s); break;
		case OP_SET_BASE: {
			uint32_t base = fin32(s);

			/* Control sets the base only on a stopped queue. */
			if (!e->nfl && !e->resub_left && !e->inflight_mode)
				(void)vre_vq_set_base(&e->vq, base);
			break;
		}
		case OP_BOGUS_COMPLETE: op_bogus_complete(e, s); break;
		case OP_EVENT: op_event(e, s); break;
		case OP_CRASH: op_crash(e, s); break;
		case OP_POKE_INFLIGHT: op_poke_inflight(e, s); break;
		case OP_TABLE: op_table(e, s); break;
		default: break;
		}
	}
}

int fz_ring_run(const uint8_t *data, size_t size, enum fz_ring_mode mode)
{
	struct eng *e = &E;
	struct fin f = { data, size }, script, image;
	uint32_t base;

	if (!getenv("VRE_LOG"))
		vre_log_level = -1; /* inputs are meant to be bad: no log noise */
	memset(e, 0, offsetof(struct eng, pool));
	if (fz_mem_create(&e->mem, &f, true))
		return 0;
	if (setup(e, &f, mode)) {
		fz_mem_destroy(&e->mem);
		return 0;
	}
	base = fin32(&f);
	script = fin_sub(&f, fin16(&f));
	if (vre_vq_set_base(&e->vq, base) == 0) {
		e->drv_idx = e->packed ? e->vq.last_avail_idx : (uint16_t)base;
		e->drv_wrap = e->packed ? e->vq.avail_wrap : false;
	} else {
		e->drv_wrap = true;
	}
	if (e->inflight_mode) {
		e->reg_len = vre_inflight_queue_bytes(e->size, e->packed);
		e->reg = fz_guarded_alloc(e->reg_len, &e->reg_base, &e->reg_map_len);
		if (e->cfg & FZ_CFG_RAW_INFLIGHT) {
			struct fin img = fin_sub(&f, e->reg_len);

			memcpy(e->reg, img.p, img.n);
			e->tampered = true;
		}
	}
	image = f;
	fz_mem_fill(&e->mem, &image);
	if (!e->packed)
		__atomic_store_n(&e->vq.sp.avail->idx, e->drv_idx, __ATOMIC_RELAXED);
	if (e->inflight_mode)
		attach(e);
	run_script(e, &script);
	/* Return everything still in flight, as a device that stops would. */
	while (e->nfl) {
		struct fin z = { NULL, 0 };

		complete_n(e, &z, 0, e->nfl < VRE_BURST ? e->nfl : VRE_BURST);
	}
	vre_vq_fini(&e->vq);
	if (e->reg_base)
		fz_guarded_free(e->reg_base, e->reg_map_len);
	fz_mem_destroy(&e->mem);
	return 0;
}
