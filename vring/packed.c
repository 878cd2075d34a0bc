/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Device side of the packed virtqueue (virtio 1.1+ "Packed Virtqueues"):
 * fetch, complete and notify, recording every chain in the vhost-user packed
 * inflight records ("Inflight I/O tracking") as it goes.
 *
 * Positions are (index, wrap) pairs; the device holds the ring slots from
 * its used position up to its avail position. Out-of-order completion is
 * allowed, so a used descriptor goes to the next used slot, not to the slot
 * the chain was read from; the used position advances by the slots the
 * chain occupied (vre_chain.ndesc), which keeps "avail - used" equal to the
 * slots still held. That invariant bounds what a driver can make us hold
 * (size slots) and is what recovery uses to rebuild the avail position.
 *
 * Inflight records, per chain: the ring descriptors are copied into entries
 * taken from the region's free list (head entry first), then the head entry
 * gets num/last/counter and, last of all, inflight = 1; only then does the
 * free list head move. A crash anywhere before the mark leaves the entries
 * free and the chain still available in the ring.
 *
 * Recovery of a region an earlier process left (attach) is in
 * packed_inflight.c.
 *
 * Ring errors with no code of their own, mapped to the nearest one:
 * - a chain whose continuation slot is not available (NEXT set, next slot
 *   not published with the right wrap): VRE_RE_CHAIN_TOO_LONG, the chain
 *   claims more descriptors than the driver made available;
 * - an indirect descriptor that is not alone in its chain (has NEXT, or
 *   follows a descriptor with NEXT): VRE_RE_INDIRECT_WITH_NEXT;
 * - a slot made available while the device still holds it (more than size
 *   slots outstanding): VRE_RE_AVAIL_IDX_LEAP;
 * - inflight records that cannot be followed while fetching (free list
 *   index out of range): VRE_RE_INFLIGHT_CORRUPT.
 */
#include <stdlib.h>
#include <string.h>

#include "chain.h"
#include "packed_internal.h"
#include "vre_log.h"

/* Ring slots the device holds: fetched and not yet returned. */
static inline uint32_t held_slots(const struct vre_vq *vq)
{
	uint32_t lap = 2u * vq->size;
	uint32_t a = vq->last_avail_idx + (vq->avail_wrap ? 0u : vq->size);
	uint32_t u = vq->last_used_idx + (vq->used_wrap ? 0u : vq->size);

	/* a and u are both below lap: one conditional add, no division. */
	return a >= u ? a - u : a + lap - u;
}

int packed_bind(struct vre_vq *vq, const struct vre_vq_params *p)
{
	if ((uintptr_t)p->desc % 16 || (uintptr_t)p->driver % 4 ||
	    (uintptr_t)p->device % 4)
		return -EINVAL;
	vq->pk.desc = p->desc;
	vq->pk.driver = p->driver;
	vq->pk.device = p->device;
	return 0;
}

int packed_init(struct vre_vq *vq, const struct vre_vq_params *p)
{
	int err = packed_bind(vq, p);

	if (err)
		return err;
	vq->pk.id_busy = calloc(p->size, 1);
	if (!vq->pk.id_busy)
		return -ENOMEM;
	vq->last_avail_idx = vq->last_used_idx = 0;
	vq->avail_wrap = vq->used_wrap = true;
	vq->signalled_used_valid = false;
	vq->inflight = NULL;
	vq->inflight_counter = 0;
	return 0;
}

void packed_fini(struct vre_vq *vq)
{
	free(vq->pk.id_busy);
	vq->pk.id_busy = NULL;
	vq->inflight = NULL;
}

/* ---- Chain walking ---------------------------------------------------- */

/* The walk itself, indirect tables and DPDK's stale WRITE flags in them
 * included, is chain.h's; here are the packed ring's two sources. */

/* What a walk found out about the chain at the avail position. */
struct ring_chain {
	uint16_t ndesc;
	uint16_t id;
	uint16_t head_ent; /* inflight entries used, when attached */
	uint16_t last_ent;
	uint16_t next_free;
};

static void record_desc(struct vre_inflight_packed_desc *e, uint64_t addr,
			uint32_t len, uint16_t flags, uint16_t id)
{
	e->inflight = 0;
	e->addr = addr;
	e->len = len;
	e->flags = flags;
	e->id = id;
}

/* The head slot's descriptor as loaded once: flags with acquire (seen
 * available), then the body. */
struct head {
	uint64_t addr;
	uint32_t len;
	uint16_t id;
	uint16_t flags;
};

static inline void head_load(const struct vre_packed_desc *d, uint16_t flags,
			     struct head *h)
{
	h->flags = flags;
	h->addr = ld64(&d->addr);
	h->len = ld32(&d->len);
	h->id = ld16(&d->id);
}

/*
 * The chain whose head (loaded by the caller into *h) sits at the avail
 * position, as a chain source: slots from there while NEXT is set. Each
 * ring descriptor is copied once into locals, recorded into a free inflight
 * entry (nothing is committed: the entries stay on the free list until
 * commit_ring), then handed to the walk.
 *
 * A continuation slot that is not available with its wrap is an error, not
 * "come back later": the driver publishes a chain by writing the head's
 * flags last, so when the head is visible the whole chain must be. We call
 * it VRE_RE_CHAIN_TOO_LONG: the head claims more descriptors (NEXT) than
 * the driver made available.
 */
struct ring_src {
	struct vre_vq *vq;
	const struct head *h;
	struct vre_inflight_packed *inf;
	struct ring_chain *rc;
	uint32_t held;   /* slots held before this chain */
	uint16_t idx;    /* slot of the next descriptor */
	bool wrap;
	uint16_t ent;    /* inflight entry of the last descriptor read */
	uint16_t id;     /* id of the last descriptor read */
	uint16_t ndesc;
};

static enum vre_ring_error ring_read(void *ctx, uint32_t pos, unsigned i, struct vre_desc *out)
{
	struct ring_src *s = ctx;
	struct vre_vq *vq = s->vq;
	struct vre_packed_desc *d = &vq->pk.desc[s->idx];
	uint16_t size = vq->size, flags, id;
	uint64_t addr;
	uint32_t len;

	(void)pos; /* the next slot: s->idx */
	/* The driver may not make available a slot we still hold. */
	if (s->held + i >= size)
		return VRE_RE_AVAIL_IDX_LEAP;
	if (i > 0) {
		/* Acquire: this slot's body is read after its flags. */
		flags = ld16_acq(&d->flags);
		if (!desc_avail(flags, s->wrap))
			return VRE_RE_CHAIN_TOO_LONG;
		addr = ld64(&d->addr);
		len = ld32(&d->len);
		id = ld16(&d->id);
	} else {
		flags = s->h->flags;
		addr = s->h->addr;
		len = s->h->len;
		id = s->h->id;
	}
	if (s->inf) {
		s->ent = i ? ld16(&s->inf->desc[s->ent].next) : ld16(&s->inf->free_head);
		if (s->ent >= size)
			return VRE_RE_INFLIGHT_CORRUPT;
		if (i == 0)
			s->rc->head_ent = s->ent;
		record_desc(&s->inf->desc[s->ent], addr, len, flags, id);
		STEP(vq, "fetch: desc recorded");
	}
	s->id = id;
	s->ndesc = (uint16_t)(i + 1);
	pos_step(&s->idx, &s->wrap, 1, size);
	out->addr = addr;
	out->len = len;
	out->flags = flags;
	out->next = 0;
	return VRE_RE_NONE;
}

/* Walks the chain at the avail position. Returns 0 or a ring error. */
static enum vre_ring_error walk_ring(struct vre_vq *vq, const struct head *h,
				     struct chain_walk *w, struct ring_chain *rc)
{
	struct ring_src s = { .vq = vq, .h = h, .inf = vq->inflight, .rc = rc,
			      .held = held_slots(vq), .idx = vq->last_avail_idx,
			      .wrap = vq->avail_wrap };
	const struct chain_src src = { .read = ring_read, .packed = true };
	enum vre_ring_error e = chain_walk_whole(w, &src, &s, 0);

	if (e)
		return e;
	rc->ndesc = s.ndesc;
	rc->id = s.id;
	if (s.inf) {
		rc->last_ent = s.ent;
		rc->next_free = ld16(&s.inf->desc[s.ent].next);
		if (rc->next_free > vq->size)
			return VRE_RE_INFLIGHT_CORRUPT;
	}
	if (rc->id >= vq->size)
		return VRE_RE_ID_OUT_OF_RANGE;
	if (vq->pk.id_busy[rc->id])
		return VRE_RE_ID_IN_USE;
	return VRE_RE_NONE;
}

/* Marks the recorded chain in flight: contents first, inflight = 1 last,
 * then the free list moves past its entries. */
static void commit_ring(struct vre_vq *vq, const struct ring_chain *rc)
{
	struct vre_inflight_packed *inf = vq->inflight;
	struct vre_inflight_packed_desc *h = &inf->desc[rc->head_ent];

	h->num = rc->ndesc;
	h->last = rc->last_ent;
	h->counter = vq->inflight_counter++;
	STEP(vq, "fetch: head recorded");
	st8_rel(&h->inflight, 1); /* release: the record is whole before it counts */
	STEP(vq, "fetch: inflight set");
	st16_rel(&inf->free_head, rc->next_free);
	STEP(vq, "fetch: free_head");
	st16_rel(&inf->old_free_head, rc->next_free);
	STEP(vq, "fetch: old_free_head");
}

/* A chain left in flight by an earlier process, as a chain source: its
 * stored descriptor copies, num of them linked by next (indirect tables are
 * read again from guest memory). */
struct stored_src {
	struct vre_inflight_packed *inf;
	uint16_t size;
	uint16_t ent;
	uint16_t id; /* of the last descriptor read */
};

static enum vre_ring_error stored_read(void *ctx, uint32_t pos, unsigned i, struct vre_desc *d)
{
	struct stored_src *s = ctx;
	struct vre_inflight_packed_desc *e;

	(void)pos; /* the next entry: s->ent's next */
	if (i > 0) {
		s->ent = ld16(&s->inf->desc[s->ent].next);
		if (s->ent >= s->size)
			return VRE_RE_INFLIGHT_CORRUPT;
	}
	e = &s->inf->desc[s->ent];
	s->id = ld16(&e->id);
	d->addr = ld64(&e->addr);
	d->len = ld32(&e->len);
	d->flags = ld16(&e->flags);
	d->next = 0;
	return VRE_RE_NONE;
}

static enum vre_ring_error walk_stored(struct vre_vq *vq, uint16_t head, struct chain_walk *w,
				       uint16_t *ndesc, uint16_t *id)
{
	struct vre_inflight_packed *inf = vq->inflight;
	struct stored_src s = { .inf = inf, .size = vq->size, .ent = head };
	uint16_t num = ld16(&inf->desc[head].num);
	const struct chain_src src = { .read = stored_read, .n = num, .packed = true };
	enum vre_ring_error e;

	if (num == 0 || num > vq->size)
		return VRE_RE_INFLIGHT_CORRUPT;
	e = chain_walk_whole(w, &src, &s, 0);
	if (e)
		return e;
	if (s.id >= vq->size)
		return VRE_RE_INFLIGHT_CORRUPT;
	*ndesc = num;
	*id = s.id;
	return VRE_RE_NONE;
}

/* The frontend shares the region and may rewrite a recorded chain between
 * recovery and its resubmission: its id (marked busy, unique) and length
 * (counted in the slots held) must still be what recovery checked. */
static bool resub_changed(const struct vre_vq *vq, const struct ring_chain *rc)
{
	unsigned n = vq->resubmit_num, k = vq->resubmit_pos;

	return rc->id != vq->resubmit[n + k] || rc->ndesc != vq->resubmit[2u * n + k];
}

static void resubmit_done(struct vre_vq *vq)
{
	free(vq->resubmit);
	vq->resubmit = NULL;
	vq->resubmit_num = vq->resubmit_pos = 0;
}

/* Takes the next chain: a resubmission (h NULL) or the one at the avail
 * position, whose head slot the caller loaded into *h.
 * 1 taken, 0 no room left in the pool, -1 queue broken. */
static int fetch_one(struct vre_vq *vq, struct vre_chain *c, struct iovec *pool,
		     unsigned pool_len, unsigned *pool_used, const struct head *h)
{
	unsigned left = pool_len - *pool_used, whole = pool_len;
	struct ring_chain rc = { 0 };
	bool resub = h == NULL;
	struct chain_walk w;
	int err;

	/* nr/nw are 16 bits: a chain needing more pieces never fits. */
	if (whole > UINT16_MAX)
		whole = UINT16_MAX;
	chain_walk_start(&w, vq, pool ? pool + *pool_used : NULL, left < whole ? left : whole);
	if (resub) {
		rc.head_ent = vq->resubmit[vq->resubmit_pos];
		err = walk_stored(vq, rc.head_ent, &w, &rc.ndesc, &rc.id);
		if (!err && resub_changed(vq, &rc))
			err = VRE_RE_INFLIGHT_CORRUPT;
	} else {
		err = walk_ring(vq, h, &w, &rc);
	}
	if (err) {
		vre_vq_break(vq, err);
		return -1;
	}
	switch (chain_fill(&w, c, whole)) {
	case CHAIN_NOFIT:
		return 0; /* fits a fresh pool: leave it for the next burst */
	case CHAIN_FITS:
		*pool_used += w.pieces;
		break;
	case CHAIN_TOO_BIG:
		break; /* consumed with -ENOBUFS */
	}
	c->id = rc.id;
	c->ndesc = rc.ndesc;
	c->slot = vq->inflight ? rc.head_ent : rc.id;
	if (resub) {
		if (++vq->resubmit_pos == vq->resubmit_num)
			resubmit_done(vq);
		return 1;
	}
	if (vq->inflight)
		commit_ring(vq, &rc);
	vq->pk.id_busy[rc.id] = 1;
	pos_step(&vq->last_avail_idx, &vq->avail_wrap, rc.ndesc, vq->size);
	return 1;
}

/*
 * The one reader of runs of the common chain from the avail position, for
 * fetch (packed_fetch: chains and iov, either direction) and for
 * vre_vq_take_run (r: the direction as asked). The common chain: the slot
 * available at the run's wrap and, under fmask, its flags exactly pat (no
 * NEXT, no INDIRECT; WRITE as asked when fmask has it), 1 or more bytes
 * inside the last-hit region, an id below size and not in flight, a slot
 * we do not hold. At most lim chains (the caller has checked the pool's
 * room and that no inflight region is attached): chain k into chains[k]
 * and iov[k], or into r's arrays with to_run (each caller passes a
 * constant, so each gets its own loop); the ids are marked in flight as
 * fetch marks them. Stops before the first slot that is not available or
 * not common; what it read of that slot is dropped, and the general walk
 * reads the slot afresh and checks it with every rule. A range inside a
 * region cannot wrap (vre_mem_map_add refuses regions that do), so no
 * overflow check here. Everything the loop needs is in locals: no call
 * inside it, so nothing is spilled.
 */
static inline __attribute__((always_inline)) unsigned
packed_run(struct vre_vq *vq, uint16_t fmask, uint16_t pat, unsigned lim,
	   struct vre_chain *chains, struct iovec *iov, struct vre_run *r, bool to_run)
{
	const struct vre_mem_map *m = vq->mem;
	struct vre_packed_desc *desc = vq->pk.desc, *end = desc + vq->size;
	struct vre_packed_desc *d = desc + vq->last_avail_idx;
	uint8_t *busy = vq->pk.id_busy;
	const uint16_t size = vq->size;
	uint32_t held = held_slots(vq);
	const struct vre_mem_region *rg;
	uint64_t rgpa, rsize;
	uint8_t *rhva;
	unsigned k;

	if (held >= size || vq->mem_hint >= m->nregions)
		return 0;
	if (lim > size - held)
		lim = size - held;
	rg = &m->regions[vq->mem_hint];
	rgpa = rg->gpa;
	rsize = rg->size;
	rhva = rg->hva;
	for (k = 0; k < lim; k++) {
		/* Acquire: the body is read only after the flags say the
		 * driver has published it. */
		uint16_t f = ld16_acq(&d->flags), id;
		uint64_t addr;
		uint32_t len;

		if ((f & fmask) != pat)
			break;
		addr = ld64(&d->addr);
		len = ld32(&d->len);
		id = ld16(&d->id);
		if (!vre_mem_range_in(rgpa, rsize, addr, len) || id >= size || busy[id])
			break;
		if (to_run) {
			r->base[k] = rhva + (addr - rgpa);
			r->len[k] = len;
			r->id[k] = id;
		} else {
			chain_single(&chains[k], &iov[k], rhva + (addr - rgpa), len,
				     f & VRE_DESC_F_WRITE, id);
		}
		busy[id] = 1;
		if (++d == end) {
			d = desc;
			pat ^= F_AVAIL | F_USED;
		}
	}
	vq->last_avail_idx = (uint16_t)(d - desc);
	vq->avail_wrap = (pat & (F_AVAIL | F_USED)) == F_AVAIL;
	return k;
}

/* A run for fetch: either direction. AVAIL/USED of an available slot at
 * this wrap, no NEXT/INDIRECT: one compare for "available and not a chain
 * or a table" (and the wrap counter itself: F_AVAIL in pat for wrap 1). */
static unsigned fetch_run(struct vre_vq *vq, struct vre_chain *chains, struct iovec *iov,
			  unsigned lim)
{
	return packed_run(vq, F_AVAIL | F_USED | VRE_DESC_F_NEXT | VRE_DESC_F_INDIRECT,
			  vq->avail_wrap ? F_AVAIL : F_USED, lim, chains, iov, NULL, false);
}

int packed_fetch(struct vre_vq *vq, struct vre_chain *chains, unsigned max,
		 struct iovec *pool, unsigned pool_len)
{
	unsigned n = 0, pool_used = 0;
	bool recorded = vq->inflight != NULL;

	/* An empty poll, the common one: one flags load, no burst set-up
	 * (vre_vq_fetch has returned -EIO already for a broken queue). */
	if (vq->resubmit_pos == vq->resubmit_num &&
	    (ld16(&vq->pk.desc[vq->last_avail_idx].flags) & (F_AVAIL | F_USED)) !=
	    (vq->avail_wrap ? F_AVAIL : F_USED))
		return 0;
	/* Resubmissions first; none are added while fetching. */
	while (n < max && vq->resubmit_pos < vq->resubmit_num) {
		if (fetch_one(vq, &chains[n], pool, pool_len, &pool_used, NULL) <= 0)
			goto out;
		n++;
	}
	while (n < max) {
		struct vre_packed_desc *d;
		struct head h;
		uint16_t f;
		int r;

		if (!recorded && pool_used < pool_len) {
			unsigned lim = max - n, k;

			if (lim > pool_len - pool_used)
				lim = pool_len - pool_used;
			k = fetch_run(vq, &chains[n], pool + pool_used, lim);
			n += k;
			pool_used += k;
			if (n == max)
				break;
		}
		/* One chain the general way (or none: not available). */
		d = &vq->pk.desc[vq->last_avail_idx];
		f = ld16_acq(&d->flags);
		if (!desc_avail(f, vq->avail_wrap))
			break;
		head_load(d, f, &h);
		r = fetch_one(vq, &chains[n], pool, pool_len, &pool_used, &h);
		if (r <= 0)
			break;
		n++;
	}
out:
	if (n == 0 && vq->broken)
		return -EIO;
	return (int)n;
}

/* ---- Completion ------------------------------------------------------- */

/* Checks the batch and frees its ids as it goes: a duplicate id then finds
 * its id already free and fails like any id not in flight. On failure the
 * ids freed so far are made busy again, so a refused batch changes
 * nothing. */
static int check_used(struct vre_vq *vq, const struct vre_used *used, unsigned n)
{
	uint8_t *busy = vq->pk.id_busy;
	uint32_t total = 0, held = held_slots(vq);
	uint16_t size = vq->size;
	bool inf = vq->inflight != NULL;
	unsigned k;

	for (k = 0; k < n; k++) {
		const struct vre_used *u = &used[k];

		total += u->ndesc;
		/* ndesc - 1 wraps for 0: one compare for 1..size. */
		if (u->id >= size || busy[u->id] != 1 ||
		    (uint16_t)(u->ndesc - 1) >= size || (inf && u->slot >= size))
			break;
		busy[u->id] = 0;
	}
	/* total only grows (at most 64 x 32768, no overflow): checked once
	 * for the whole batch, which is refused whole anyway. */
	if (k == n && total <= held)
		return 0;
	while (k--)
		busy[used[k].id] = 1;
	return -EINVAL;
}

/* Spec order, first half: chains back onto the free list, then the live
 * used position. A crash from here on is sorted out by comparing the ring
 * slot at old_used_idx with its available pattern. */
static void inflight_link(struct vre_vq *vq, const struct vre_used *used,
			  unsigned n, uint16_t idx, bool wrap)
{
	struct vre_inflight_packed *inf = vq->inflight;
	uint16_t fh = ld16(&inf->free_head);

	for (unsigned k = 0; k < n; k++) {
		uint16_t last = ld16(&inf->desc[used[k].slot].last);

		if (last >= vq->size) {
			/* The record was overwritten under us; the ring still
			 * completes, the entries leak until recovery rebuilds
			 * the free list. */
			vre_vq_break(vq, VRE_RE_INFLIGHT_CORRUPT);
			continue;
		}
		st16(&inf->desc[last].next, fh);
		fh = used[k].slot;
		STEP(vq, "complete: chain linked");
	}
	st16(&inf->free_head, fh);
	STEP(vq, "complete: free_head");
	__atomic_store_n(&inf->used_wrap_counter, wrap, __ATOMIC_RELEASE);
	STEP(vq, "complete: used_wrap_counter");
	st16_rel(&inf->used_idx, idx);
	STEP(vq, "complete: used_idx");
}

/* Spec order, second half: clear the marks, then commit the live fields. */
static void inflight_retire(struct vre_vq *vq, const struct vre_used *used,
			    unsigned n)
{
	struct vre_inflight_packed *inf = vq->inflight;

	for (unsigned k = 0; k < n; k++) {
		/* release: after the used flags */
		st8_rel(&inf->desc[used[k].slot].inflight, 0);
		STEP(vq, "complete: inflight cleared");
	}
	st16_rel(&inf->old_free_head, ld16(&inf->free_head));
	STEP(vq, "complete: old_free_head");
	__atomic_store_n(&inf->old_used_wrap_counter,
			 ld8(&inf->used_wrap_counter), __ATOMIC_RELEASE);
	STEP(vq, "complete: old_used_wrap_counter");
	st16_rel(&inf->old_used_idx, ld16(&inf->used_idx));
	STEP(vq, "complete: old_used_idx");
}

/*
 * Without inflight records nothing but the driver watches the ring, so one
 * pass does it: each later chain's id/len then its flags (release: the
 * body before the flags), the first chain's flags last. The driver reads
 * used slots in order from the first one, so none of the batch is seen
 * before the end, as in the two-pass order the inflight records need.
 * free_ids: the unchecked entry point, which frees the batch's ids here
 * (check_used has freed them otherwise). n >= 1.
 */
static inline void used_body(struct vre_packed_desc *d, const struct vre_used *e,
			     uint8_t *busy, bool free_ids)
{
	__atomic_store_n(&d->id, e->id, __ATOMIC_RELAXED);
	__atomic_store_n(&d->len, e->len, __ATOMIC_RELAXED);
	if (free_ids)
		busy[e->id] = 0;
}

/* The next used slot after a chain of ndesc (<= size) slots. */
static inline void used_step(uint32_t *idx, bool *wrap, uint16_t *used_pat,
			     uint16_t ndesc, uint32_t size)
{
	*idx += ndesc;
	if (*idx >= size) {
		*idx -= size;
		*wrap = !*wrap;
		*used_pat ^= F_AVAIL | F_USED;
	}
}

static inline __attribute__((always_inline)) void
complete_plain(struct vre_vq *vq, const struct vre_used *used, unsigned n, bool free_ids)
{
	struct vre_packed_desc *desc = vq->pk.desc;
	uint8_t *busy = vq->pk.id_busy;
	uint32_t idx = vq->last_used_idx, size = vq->size, first_pos = idx;
	bool wrap = vq->used_wrap;
	uint16_t used_pat = wrap ? F_AVAIL | F_USED : 0;
	/* one load of each field: the stores below may alias used[] as far
	 * as the compiler knows */
	const struct vre_used first = used[0];
	uint16_t first_flags = used_pat | (first.len ? VRE_DESC_F_WRITE : 0);
	struct vre_used e;

	/* The first chain's slot is written last, all at once (as DPDK's
	 * shadow head): a driver polling it then pulls its line once, not
	 * once after id/len and again after the flags. */
	if (free_ids)
		busy[first.id] = 0;
	used_step(&idx, &wrap, &used_pat, first.ndesc, size);
	for (const struct vre_used *u = used + 1, *end = used + n; u < end; u++) {
		struct vre_packed_desc *d = &desc[idx];

		e = *u;
		used_body(d, &e, busy, free_ids);
		/* WRITE says len bytes were written. */
		st16_rel(&d->flags, used_pat | (e.len ? VRE_DESC_F_WRITE : 0));
		STEP(vq, "complete: later flags");
		used_step(&idx, &wrap, &used_pat, e.ndesc, size);
	}
	used_body(&desc[first_pos], &first, busy, false);
	/* Release, last: the whole batch appears when the first chain's
	 * flags do. */
	st16_rel(&desc[first_pos].flags, first_flags);
	STEP(vq, "complete: first flags");
	vq->last_used_idx = (uint16_t)idx;
	vq->used_wrap = wrap;
}

/*
 * The device's own chains, fetched from this ring and not yet completed:
 * their ids and ndesc were validated by fetch (id below size and not busy,
 * ndesc the slots the chain took), so check_used, which guards against a
 * caller's mistakes and not against the guest, has nothing to find. Only
 * the id table is updated, in the same pass as the ring writes. With
 * inflight records the checked path runs, so recording is unchanged.
 */
int packed_complete_fetched(struct vre_vq *vq, const struct vre_used *used, unsigned n)
{
	if (vq->inflight)
		return packed_complete(vq, used, n);
	complete_plain(vq, used, n, true);
	return 0;
}

/*
 * The checked complete (vre_vq_complete, and every complete with inflight
 * records), in the two passes recovery needs: bodies and the inflight live
 * state, a release fence, the later flags, the first flags last, then the
 * inflight records are retired. batch: an in-order batch, one used
 * descriptor for all n at the first position (see vre_vq_complete_inorder).
 */
static int complete_checked(struct vre_vq *vq, const struct vre_used *used, unsigned n,
			    bool batch)
{
	struct vre_packed_desc *desc = vq->pk.desc;
	uint16_t pos[VRE_COMPLETE_MAX], flags[VRE_COMPLETE_MAX], idx = vq->last_used_idx;
	uint16_t size = vq->size;
	bool wrap = vq->used_wrap;
	/* AVAIL and USED both equal to the used wrap counter mark a slot used. */
	uint16_t used_pat = wrap ? F_AVAIL | F_USED : 0;
	uint16_t first_pos = idx, first_flags;
	int err = check_used(vq, used, n);

	if (err || n == 0)
		return err;
	if (!vq->inflight) {
		complete_plain(vq, used, n, false);
		return 0;
	}
	first_flags = used_pat | (used[batch ? n - 1 : 0].len ? VRE_DESC_F_WRITE : 0);
	for (unsigned k = 0; k < n; k++) {
		struct vre_packed_desc *d = &desc[idx];
		uint32_t next = (uint32_t)idx + used[k].ndesc; /* ndesc <= size */

		pos[k] = idx;
		/* WRITE says len bytes were written. */
		flags[k] = used_pat | (used[k].len ? VRE_DESC_F_WRITE : 0);
		/* the first slot's id/len go with its flags, at the end */
		if (!batch && k > 0) {
			__atomic_store_n(&d->id, used[k].id, __ATOMIC_RELAXED);
			__atomic_store_n(&d->len, used[k].len, __ATOMIC_RELAXED);
		}
		if (next >= size) {
			next -= size;
			wrap = !wrap;
			used_pat ^= F_AVAIL | F_USED;
		}
		idx = (uint16_t)next;
	}
	STEP(vq, "complete: id/len written");
	if (vq->inflight)
		inflight_link(vq, used, n, idx, wrap);
	/* Release: every id/len (and the inflight live state) is stored before
	 * any of the flags below can be seen. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	for (unsigned k = 1; !batch && k < n; k++) {
		st16(&desc[pos[k]].flags, flags[k]);
		STEP(vq, "complete: later flags");
	}
	/* The first slot whole, at the end (one line move for a driver that
	 * polls it); in an in-order batch it names the last chain. Recovery
	 * looks only at its flags. */
	__atomic_store_n(&desc[first_pos].id, used[batch ? n - 1 : 0].id, __ATOMIC_RELAXED);
	__atomic_store_n(&desc[first_pos].len, used[batch ? n - 1 : 0].len, __ATOMIC_RELAXED);
	/* Release, last: the driver reads used slots in order, so the whole
	 * batch appears when the first chain's flags do. */
	st16_rel(&desc[first_pos].flags, first_flags);
	STEP(vq, "complete: first flags");
	if (vq->inflight)
		inflight_retire(vq, used, n);
	vq->last_used_idx = idx;
	vq->used_wrap = wrap;
	return 0;
}

int packed_complete(struct vre_vq *vq, const struct vre_used *used, unsigned n)
{
	return complete_checked(vq, used, n, false);
}

/*
 * Chains completed with len 0 in fetch order. In order without inflight
 * records: the ids are freed and the slots counted in one pass over the
 * chains, then one used descriptor (the last chain's id, len 0) at the
 * batch's first position, its flags last; the used position moves past
 * every slot of the batch. Otherwise as packed_complete_fetched.
 */
int packed_complete_inorder(struct vre_vq *vq, const struct vre_chain *chains, unsigned n)
{
	struct vre_used used[VRE_BURST];

	if (vq->in_order && !vq->inflight) {
		struct vre_packed_desc *d = &vq->pk.desc[vq->last_used_idx];
		uint8_t *busy = vq->pk.id_busy;
		uint32_t idx = vq->last_used_idx, total = 0;
		bool wrap = vq->used_wrap;

		for (unsigned k = 0; k < n; k++) {
			busy[chains[k].id] = 0;
			total += chains[k].ndesc;
		}
		__atomic_store_n(&d->id, chains[n - 1].id, __ATOMIC_RELAXED);
		__atomic_store_n(&d->len, 0, __ATOMIC_RELAXED);
		/* Release: id and len before the flags that make them used. */
		st16_rel(&d->flags, wrap ? F_AVAIL | F_USED : 0);
		STEP(vq, "complete: first flags");
		/* total <= the slots held <= size: one lap at most */
		idx += total;
		if (idx >= vq->size) {
			idx -= vq->size;
			wrap = !wrap;
		}
		vq->last_used_idx = (uint16_t)idx;
		vq->used_wrap = wrap;
		return 0;
	}
	for (unsigned k = 0; k < n; k++)
		used[k] = vre_used_of(&chains[k], 0);
	if (vq->inflight)
		return complete_checked(vq, used, n, vq->in_order);
	complete_plain(vq, used, n, true);
	return 0;
}

/* ---- Runs (vre_vq_take_run) -------------------------------------------- */

/* packed_run for vre_vq_take_run, the direction as asked. */
int packed_take_run(struct vre_vq *vq, struct vre_run *r, unsigned max, bool writable)
{
	bool wrap = vq->avail_wrap;
	unsigned k;

	/* Empty: the first slot is not available (one load, as fetch). */
	if ((ld16(&vq->pk.desc[vq->last_avail_idx].flags) & (F_AVAIL | F_USED)) !=
	    (wrap ? F_AVAIL : F_USED))
		return 0;
	k = packed_run(vq, F_AVAIL | F_USED | VRE_DESC_F_NEXT | VRE_DESC_F_INDIRECT |
			       VRE_DESC_F_WRITE,
		       (wrap ? F_AVAIL : F_USED) | (writable ? VRE_DESC_F_WRITE : 0), max, NULL,
		       NULL, r, true);
	r->n = (uint16_t)k;
	return k ? (int)k : -EAGAIN;
}

/* Chains k..n go back: their ids are free again and the avail position
 * steps back over their slots (one each). */
void packed_untake_run(struct vre_vq *vq, struct vre_run *r, unsigned k)
{
	uint32_t back = r->n - k, idx = vq->last_avail_idx;

	for (unsigned i = k; i < r->n; i++)
		vq->pk.id_busy[r->id[i]] = 0;
	if (idx < back) {
		idx += vq->size;
		vq->avail_wrap = !vq->avail_wrap;
	}
	vq->last_avail_idx = (uint16_t)(idx - back);
}

/*
 * complete_plain for one-slot chains, straight from the run: the later
 * slots id/len then flags, the first slot whole at the end; or, in order
 * without lengths, one used descriptor for the batch.
 *
 * The order: virtio 1.1+ "Polling of available and used descriptors" lets
 * writes of used descriptors be reordered, the driver polling only the
 * next slot, so each slot needs only its id/len before its flags
 * (release). Writing the first slot last makes the group appear at once
 * (its line moves once) and keeps "Multi-buffer requests" (a request's
 * first buffer used after the rest). DPDK's vhost writes its shadow flush
 * the same way (vhost_flush_enqueue_shadow_packed: later flags, the head's
 * last); its aligned batch of 4 (vhost_flush_enqueue_batch_packed) writes
 * the 4 ids/lens, a release fence, then the 4 flags in ring order.
 *
 * A STEP after every store to the ring lets the tests look at what the
 * driver could see in between (tests/unit/test_net.c).
 */
void packed_complete_run(struct vre_vq *vq, const struct vre_run *r, unsigned n, bool with_len)
{
	struct vre_packed_desc *desc = vq->pk.desc;
	uint8_t *busy = vq->pk.id_busy;
	const uint16_t *ids = r->id;
	const uint32_t *lens = r->len;
	uint32_t idx = vq->last_used_idx, size = vq->size, first_pos = idx;
	bool wrap = vq->used_wrap;
	uint16_t used_pat = wrap ? F_AVAIL | F_USED : 0, first_flags = used_pat;
	uint32_t first_len = 0;
	uint16_t first_id = ids[0];

	busy[first_id] = 0;
	if (!with_len && vq->in_order) {
		for (unsigned i = 1; i < n; i++)
			busy[ids[i]] = 0;
		first_id = ids[n - 1];
		idx += n - 1;
	} else {
		if (with_len && lens[0]) {
			first_len = lens[0];
			first_flags |= VRE_DESC_F_WRITE; /* len bytes were written */
		}
		for (unsigned i = 1; i < n; i++) {
			struct vre_packed_desc *d;
			uint32_t len = with_len ? lens[i] : 0;

			if (++idx == size) {
				idx = 0;
				wrap = !wrap;
				used_pat ^= F_AVAIL | F_USED;
			}
			d = &desc[idx];
			busy[ids[i]] = 0;
			__atomic_store_n(&d->id, ids[i], __ATOMIC_RELAXED);
			STEP(vq, "complete: later id");
			__atomic_store_n(&d->len, len, __ATOMIC_RELAXED);
			STEP(vq, "complete: later len");
			/* Release: id and len before the flags that make them
			 * used. */
			st16_rel(&d->flags, used_pat | (len ? VRE_DESC_F_WRITE : 0));
			STEP(vq, "complete: later flags");
		}
	}
	__atomic_store_n(&desc[first_pos].id, first_id, __ATOMIC_RELAXED);
	STEP(vq, "complete: first id");
	__atomic_store_n(&desc[first_pos].len, first_len, __ATOMIC_RELAXED);
	STEP(vq, "complete: first len");
	/* Release, last: the whole batch appears when the first slot does. */
	st16_rel(&desc[first_pos].flags, first_flags);
	STEP(vq, "complete: first flags");
	if (++idx >= size) {
		idx -= size;
		wrap = !wrap;
	}
	vq->last_used_idx = (uint16_t)idx;
	vq->used_wrap = wrap;
}

/* ---- Notifications ---------------------------------------------------- */

/* Whether the used position moved past the driver's event position since
 * the last notification. Positions are made linear relative to the current
 * lap: one with the other wrap counter is taken as a lap behind (the
 * kernel's rule). An event really a lap ahead then looks passed: a spurious
 * notification, never a missed one. */
static bool event_passed(const struct vre_vq *vq, uint16_t off_wrap, uint16_t old_enc)
{
	uint16_t event = off_wrap & 0x7fff, old = old_enc & 0x7fff;
	bool w = vq->used_wrap;

	if (((off_wrap >> 15) & 1) != w)
		event = (uint16_t)(event - vq->size);
	if (((old_enc >> 15) & 1) != w)
		old = (uint16_t)(old - vq->size);
	return vre_need_event(event, vq->last_used_idx, old);
}

bool packed_needs_notify(struct vre_vq *vq)
{
	uint16_t flags, old = vq->signalled_used;
	bool valid = vq->signalled_used_valid;

	/* Full fence: our used flags must be globally visible before we read
	 * the driver's suppression area; otherwise the driver could read the
	 * old flags, decide to wait for an interrupt, and we could read its
	 * old "disable" and never send one. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	flags = ld16(&vq->pk.driver->flags);
	/* signalled_used keeps the position with its wrap in bit 15, as
	 * off_wrap does. */
	vq->signalled_used = (uint16_t)(vq->last_used_idx | (vq->used_wrap ? 0x8000 : 0));
	vq->signalled_used_valid = true;
	if (flags == VRE_PACKED_EVENT_DISABLE)
		return false;
	/* ENABLE, DESC without EVENT_IDX, or a reserved value: notify. */
	if (flags != VRE_PACKED_EVENT_DESC || !vq->event_idx || !valid)
		return true;
	return event_passed(vq, ld16(&vq->pk.driver->off_wrap), old);
}

bool packed_avail_pending(const struct vre_vq *vq)
{
	uint16_t f = ld16_acq(&vq->pk.desc[vq->last_avail_idx].flags);

	return desc_avail(f, vq->avail_wrap);
}

bool packed_notify_enable(struct vre_vq *vq)
{
	struct vre_packed_event *ev = vq->pk.device;

	if (vq->event_idx) {
		st16(&ev->off_wrap, (uint16_t)(vq->last_avail_idx |
					       (vq->avail_wrap ? 0x8000 : 0)));
		/* release: off_wrap is in place when DESC is seen */
		st16_rel(&ev->flags, VRE_PACKED_EVENT_DESC);
	} else {
		st16(&ev->flags, VRE_PACKED_EVENT_ENABLE);
	}
	/* Full fence: the driver stores a descriptor then loads our flags; we
	 * store our flags then load its descriptor. Without a store-load
	 * fence on both sides each could miss the other's store and the queue
	 * would sleep with work in it. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (vq->broken)
		return false;
	if (vq->resubmit_pos < vq->resubmit_num)
		return true;
	return packed_avail_pending(vq);
}

void packed_notify_disable(struct vre_vq *vq)
{
	st16(&vq->pk.device->flags, VRE_PACKED_EVENT_DISABLE);
}
