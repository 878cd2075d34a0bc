/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The device side of a split virtqueue (virtio 1.x, 2.7) with the
 * vhost-user split inflight records. Recovery of a region an earlier
 * process left (attach) is in split_inflight.c.
 *
 * The driver owns the descriptor table and the avail ring; everything read
 * from them is copied into a local once and then checked, because the guest
 * may rewrite it at any time. The device owns the used ring and the inflight
 * region (the frontend only reads that one after we died).
 *
 * Memory ordering, in one place (the comments at each barrier say which
 * pairing they serve):
 *  - avail->idx is loaded with acquire: it pairs with the driver's write
 *    barrier between filling ring entries/descriptors and bumping idx.
 *  - used elements are written plainly, then used->idx is stored with
 *    release: the driver reads idx and then the elements.
 *  - a full fence separates "publish used->idx" from "read used_event /
 *    avail->flags" (and "write avail_event / used->flags" from "re-read
 *    avail->idx"): both are store-then-load patterns the driver mirrors, and
 *    only a full fence orders a store before a later load.
 *  - inflight records need program order only against a crash of this
 *    process (the kernel keeps every store that executed), so release
 *    stores/fences there keep the compiler (and weak CPUs) from moving them.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "chain.h"
#include "vre_log.h"

/* Walk outcome for one chain. */
enum walk_res {
	WALK_OK = 0,
	WALK_NOFIT,  /* would fit an empty pool but not what is left: stop */
	WALK_BROKEN, /* the queue is now broken */
};

static inline struct vre_inflight_split *ifl(const struct vre_vq *vq)
{
	return vq->inflight;
}

static inline uint16_t avail_idx_acquire(const struct vre_vq *vq)
{
	/* Pairs with the driver's barrier before it bumps avail->idx: ring
	 * entries and descriptors below this index are visible after it. */
	return __atomic_load_n(&vq->sp.avail->idx, __ATOMIC_ACQUIRE);
}

int split_bind(struct vre_vq *vq, const struct vre_vq_params *p)
{
	if ((uintptr_t)p->desc % 16 || (uintptr_t)p->driver % 2 ||
	    (uintptr_t)p->device % 4)
		return -EINVAL;
	if (p->size == 0 || p->size > VRE_VQ_MAX_SIZE || (p->size & (p->size - 1)))
		return -EINVAL;
	vq->sp.desc = p->desc;
	vq->sp.avail = p->driver;
	vq->sp.used = p->device;
	vq->sp.used_event = &vq->sp.avail->ring[p->size];
	vq->sp.avail_event = (uint16_t *)&vq->sp.used->ring[p->size];
	return 0;
}

int split_init(struct vre_vq *vq, const struct vre_vq_params *p)
{
	vq->last_avail_idx = 0;
	vq->sp.avail_seen = 0;
	vq->last_used_idx = 0;
	vq->signalled_used = 0;
	vq->signalled_used_valid = false;
	vq->notify_enabled = false;
	vq->inflight = NULL;
	vq->inflight_counter = 0;
	return split_bind(vq, p);
}

/* The region of the last translation, copied into locals once per burst:
 * the compiler barrier in desc_copy() would otherwise make every chain
 * reload it through vq and the map. size 0 when there is no valid hint. */
struct hot_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *hva;
};

static inline void hot_region_load(const struct vre_vq *vq, struct hot_region *h)
{
	const struct vre_mem_map *m = vq->mem;

	h->gpa = 0;
	h->size = 0;
	h->hva = NULL;
	if (vq->mem_hint < m->nregions) {
		const struct vre_mem_region *r = &m->regions[vq->mem_hint];

		h->gpa = r->gpa;
		h->size = r->size;
		h->hva = r->hva;
	}
}

/*
 * The common chain: one direct descriptor (no NEXT, no INDIRECT, len > 0)
 * inside the region of the last translation, with room left in the pool.
 * Takes it with one range check (vre_mem_range_in) and returns true; anything else returns
 * false without touching c, and walk_chain walks the same copy d with every
 * rule. No overflow check is needed here: a range inside a region cannot
 * wrap, because a region's own range does not (vre_mem_map_add).
 */
static inline __attribute__((always_inline)) bool
take_single(const struct hot_region *h, uint16_t head, const struct vre_desc *d,
	    struct vre_chain *c, struct iovec *iov, unsigned room)
{
	uint64_t off = d->addr - h->gpa;

	/* the common chain is the expected one */
	if (__builtin_expect((d->flags & (VRE_DESC_F_NEXT | VRE_DESC_F_INDIRECT)) || room == 0 ||
			     !vre_mem_range_in(h->gpa, h->size, d->addr, d->len), 0))
		return false;
	chain_single(c, iov, h->hva + off, d->len, d->flags & VRE_DESC_F_WRITE, head);
	return true;
}

/*
 * The one reader of runs of common chains from avail position last, for
 * fetch (split_fetch: chains and iov, either direction) and for
 * vre_vq_take_run (r: the direction as asked). A common chain: the ring
 * entry's head below size, its descriptor copied once (desc_copy), under
 * fmask its flags exactly want (no NEXT, no INDIRECT; WRITE as asked when
 * fmask has it), 1 or more bytes inside the region of the last
 * translation (one range check, vre_mem_range_in; a range inside a region
 * cannot wrap, because a region's own range does not: vre_mem_map_add).
 * At most lim chains (pool room checked by the caller, no inflight
 * records): chain k into chains[k] and iov[k], or into r's arrays with
 * to_run (each caller passes a constant, so each gets its own loop).
 * Stops before the first entry that is not common; what it read of that
 * entry is dropped, and fetch reads ring entry and descriptor afresh and
 * checks them with every rule. No call in the loop, so its values stay in
 * registers.
 */
static inline __attribute__((always_inline)) unsigned
split_run(const struct vre_desc *desc, const uint16_t *ring, uint16_t size, uint16_t last,
	  const struct hot_region *hot, uint16_t fmask, uint16_t want, unsigned lim,
	  struct vre_chain *chains, struct iovec *iov, struct vre_run *r, bool to_run)
{
	const uint16_t mask = (uint16_t)(size - 1);
	unsigned k;

	for (k = 0; k < lim; k++) {
		uint16_t head = __atomic_load_n(&ring[(uint16_t)(last + k) & mask],
						__ATOMIC_RELAXED);
		struct vre_desc d;
		uint8_t *buf;
		bool in;

		if (head >= size)
			break;
		d = desc_copy(&desc[head]);
		if ((d.flags & fmask) != want)
			break;
		in = vre_mem_range_in(hot->gpa, hot->size, d.addr, d.len);
		/* the hint lays fetch's loop out best, take_run's is best
		 * without it (instructions per chain: perf/ring-bench,
		 * perf/net-bench) */
		if (to_run ? !in : __builtin_expect(!in, 0))
			break;
		buf = hot->hva + (d.addr - hot->gpa);
		if (to_run) {
			r->base[k] = buf;
			r->len[k] = d.len;
			r->id[k] = head;
		} else {
			chain_single(&chains[k], &iov[k], buf, d.len, d.flags & VRE_DESC_F_WRITE,
				     head);
		}
	}
	return k;
}

/* The split ring as a chain source (chain.h): the head descriptor the
 * caller copied, then the descriptor table by next. */
struct ring_src {
	const struct vre_desc *desc;
	struct vre_desc head;
	uint16_t ndesc; /* ring descriptors read */
};

static enum vre_ring_error ring_read(void *ctx, uint32_t pos, unsigned i, struct vre_desc *d)
{
	struct ring_src *r = ctx;

	*d = i ? desc_copy(&r->desc[pos]) : r->head;
	r->ndesc = (uint16_t)(i + 1);
	return VRE_RE_NONE;
}

/*
 * Walks the chain at head, whose descriptor the caller has copied into d,
 * into c, iovecs from iov (room entries left of a pool of pool_len). On
 * WALK_OK the chain is filled in (err -ENOBUFS and no iovecs when it
 * cannot fit even an empty pool).
 */
static enum walk_res walk_chain(struct vre_vq *vq, uint16_t head,
				struct vre_desc d, struct vre_chain *c,
				struct iovec *iov, unsigned room,
				unsigned pool_len)
{
	struct ring_src r = { .desc = vq->sp.desc, .head = d };
	const struct chain_src src = { .read = ring_read, .links = vq->size };
	struct chain_walk w;
	enum vre_ring_error e;

	chain_walk_start(&w, vq, iov, room);
	e = chain_walk_whole(&w, &src, &r, head);
	if (e) {
		vre_vq_break(vq, e);
		return WALK_BROKEN;
	}
	if (chain_fill(&w, c, pool_len) == CHAIN_NOFIT)
		return WALK_NOFIT;
	c->id = head;
	c->slot = head;
	c->ndesc = r.ndesc;
	return WALK_OK;
}

/* Records head as in flight before its chain is handed out: the counter
 * first, then the flag, so a recovered entry always has its counter. */
static void inflight_mark(struct vre_vq *vq, uint16_t head)
{
	struct vre_inflight_split *r = ifl(vq);

	if (!r)
		return;
	r->desc[head].counter = vq->inflight_counter++;
	STEP(vq, "fetch: counter");
	/* Release: the counter store may not move after the flag. */
	__atomic_store_n(&r->desc[head].inflight, 1, __ATOMIC_RELEASE);
	STEP(vq, "fetch: inflight");
}

/* Hands out chains queued by inflight recovery. Returns chains produced;
 * *iov_used advances. Stops early when the pool runs out. */
static int fetch_resubmit(struct vre_vq *vq, struct vre_chain *chains,
			  unsigned max, struct iovec *pool, unsigned pool_len,
			  unsigned *iov_used)
{
	unsigned n = 0;

	while (n < max && vq->resubmit_pos < vq->resubmit_num) {
		uint16_t head = vq->resubmit[vq->resubmit_pos];
		enum walk_res r = walk_chain(vq, head, desc_copy(&vq->sp.desc[head]),
					     &chains[n], pool + *iov_used,
					     pool_len - *iov_used, pool_len);

		if (r == WALK_BROKEN)
			return n ? (int)n : -EIO;
		if (r == WALK_NOFIT)
			break;
		vq->resubmit_pos++;
		inflight_mark(vq, head);
		*iov_used += chains[n].nr + chains[n].nw;
		n++;
	}
	return (int)n;
}

int split_fetch(struct vre_vq *vq, struct vre_chain *chains, unsigned max,
		struct iovec *pool, unsigned pool_len)
{
	uint16_t mask = vq->size - 1, avail, pending;
	unsigned n = 0, iov_used = 0;
	int r;

	/* nr and nw are u16: a bigger pool could not be described. */
	if (pool_len > UINT16_MAX)
		pool_len = UINT16_MAX;
	if (vq->resubmit_pos < vq->resubmit_num) {
		r = fetch_resubmit(vq, chains, max, pool, pool_len, &iov_used);
		if (r < 0 || vq->resubmit_pos < vq->resubmit_num || vq->broken)
			return r;
		n = (unsigned)r;
	}
	/* The driver rewrites the line of avail->idx with every batch it
	 * posts, so each read of it is a line moved between the cores: read
	 * it only when the chains known to be there do not fill the burst
	 * (ring entries and descriptors below an index read once stay
	 * visible: the acquire that read it still orders them). */
	pending = (uint16_t)(vq->sp.avail_seen - vq->last_avail_idx);
	if (pending < max - n) {
		avail = avail_idx_acquire(vq);
		pending = (uint16_t)(avail - vq->last_avail_idx);
		if (pending > vq->size) {
			vre_vq_break(vq, VRE_RE_AVAIL_IDX_LEAP);
			return n ? (int)n : -EIO;
		}
		vq->sp.avail_seen = avail;
	}
	/* Locals for what the loop reads on every chain: desc_copy()'s
	 * compiler barrier would otherwise reload each of them through vq.
	 * last_avail_idx is written back before anything else reads it (the
	 * slow walk, the break log, the inflight record) and at the end. */
	const struct vre_desc *desc = vq->sp.desc;
	const uint16_t *ring = vq->sp.avail->ring;
	uint16_t size = vq->size, last = vq->last_avail_idx;
	bool recorded = vq->inflight != NULL;
	struct hot_region hot;
	unsigned todo = max - n < pending ? max - n : pending;

	hot_region_load(vq, &hot);
	for (; todo; todo--) {
		if (!recorded && iov_used < pool_len) {
			unsigned lim = todo < pool_len - iov_used ? todo : pool_len - iov_used;
			unsigned k = split_run(desc, ring, size, last, &hot,
					       VRE_DESC_F_NEXT | VRE_DESC_F_INDIRECT, 0, lim,
					       &chains[n], pool + iov_used, NULL, false);

			n += k;
			iov_used += k;
			last = (uint16_t)(last + k);
			todo -= k;
			if (!todo)
				break;
		}
		uint16_t head = __atomic_load_n(&ring[last & mask], __ATOMIC_RELAXED);
		struct vre_chain *c = &chains[n];
		struct iovec *iov = pool + iov_used;
		unsigned room = pool_len - iov_used;
		struct vre_desc d;

		if (head >= size) {
			vq->last_avail_idx = last;
			vre_vq_break(vq, VRE_RE_HEAD_OUT_OF_RANGE);
			return n ? (int)n : -EIO;
		}
		d = desc_copy(&desc[head]);
		if (take_single(&hot, head, &d, c, iov, room)) {
			iov_used++;
		} else {
			enum walk_res w;

			vq->last_avail_idx = last;
			w = walk_chain(vq, head, d, c, iov, room, pool_len);
			if (w == WALK_BROKEN)
				return n ? (int)n : -EIO;
			if (w == WALK_NOFIT)
				break;
			hot_region_load(vq, &hot); /* the walk may move the hint */
			iov_used += c->nr + c->nw;
		}
		STEP(vq, "fetch: walked");
		last++;
		if (recorded) {
			vq->last_avail_idx = last;
			inflight_mark(vq, head);
		}
		n++;
	}
	vq->last_avail_idx = last;
	/* With notifications on, keep avail_event at what we have taken so
	 * the driver's next addition past it kicks us. */
	if (vq->event_idx && vq->notify_enabled && n)
		__atomic_store_n(vq->sp.avail_event, vq->last_avail_idx, __ATOMIC_RELAXED);
	return (int)n;
}

/* Spec order for a completed batch, part one (before used->idx): link the
 * batch's heads into the last_batch_head list, newest first, so a restart
 * that sees used->idx ahead of used_idx can find the batch. */
static void inflight_link(struct vre_vq *vq, const struct vre_used *used, unsigned n)
{
	struct vre_inflight_split *r = ifl(vq);
	uint16_t last = r->last_batch_head;

	for (unsigned i = 0; i < n; i++) {
		r->desc[used[i].id].next = last;
		last = used[i].id;
	}
	r->last_batch_head = last;
	STEP(vq, "complete: linked");
}

/* Part two (after used->idx): the batch is no longer in flight. */
static void inflight_clear(struct vre_vq *vq, const struct vre_used *used,
			   unsigned n, uint16_t new_used)
{
	struct vre_inflight_split *r = ifl(vq);

	/* Release fence: the used->idx store above may not move after the
	 * clears below (a restart that saw cleared flags without the new
	 * used->idx would lose the batch). */
	atomic_thread_fence(memory_order_release);
	for (unsigned i = 0; i < n; i++) {
		__atomic_store_n(&r->desc[used[i].id].inflight, 0, __ATOMIC_RELAXED);
		STEP(vq, "complete: cleared");
	}
	/* Release: every clear above is in place before used_idx says the
	 * batch is done. */
	__atomic_store_n(&r->used_idx, new_used, __ATOMIC_RELEASE);
	STEP(vq, "complete: used_idx");
}

/* Part of every complete: the used index moves by n, with release, once. */
static inline __attribute__((always_inline)) uint16_t publish(struct vre_vq *vq, uint16_t idx,
							      unsigned n)
{
	/* More than a full lap of the index space since the last decision
	 * would make the event-index rule compare against a stale wrap: treat
	 * the last signalled index as unknown (notify next time). */
	if ((uint16_t)(idx + n - vq->signalled_used) < (uint16_t)n)
		vq->signalled_used_valid = false;
	idx = (uint16_t)(idx + n);
	/* Release: the elements (and the inflight links) are visible before
	 * the index that hands them to the driver. */
	__atomic_store_n(&vq->sp.used->idx, idx, __ATOMIC_RELEASE);
	vq->last_used_idx = idx;
	STEP(vq, "complete: published");
	return idx;
}

/* checked: vre_vq_complete; unchecked: the device's own fetched chains
 * (vre_vq_complete_fetched) on a ring without inflight records. batch: an
 * in-order batch, one element for all n (see vre_vq_complete_inorder). */
static inline __attribute__((always_inline)) int
complete(struct vre_vq *vq, const struct vre_used *used, unsigned n, bool checked, bool batch)
{
	struct vre_used_ring *ur = vq->sp.used;
	uint16_t mask = vq->size - 1, idx = vq->last_used_idx;

	/* Ids come from our own chains, but a bad one would write outside the
	 * inflight table: refuse the batch before writing anything. */
	for (unsigned i = 0; checked && i < n; i++)
		if (used[i].id >= vq->size)
			return -EINVAL;
	if (batch) {
		/* At the batch's first position, naming its last chain. */
		struct vre_used_elem *e = &ur->ring[idx & mask];

		e->id = used[n - 1].id;
		e->len = used[n - 1].len;
	}
	for (unsigned i = 0; !batch && i < n; i++) {
		struct vre_used_elem *e = &ur->ring[(uint16_t)(idx + i) & mask];

		e->id = used[i].id;
		e->len = used[i].len;
	}
	STEP(vq, "complete: elems");
	if (ifl(vq))
		inflight_link(vq, used, n);
	idx = publish(vq, idx, n);
	if (ifl(vq))
		inflight_clear(vq, used, n, idx);
	return 0;
}

int split_complete(struct vre_vq *vq, const struct vre_used *used, unsigned n)
{
	return complete(vq, used, n, true, false);
}

/* Fetch took these ids from the ring's own descriptor indexes (below
 * size); without inflight records the id only goes back to the driver,
 * in a slot chosen by our used index, so there is nothing to check. */
int split_complete_fetched(struct vre_vq *vq, const struct vre_used *used, unsigned n)
{
	if (ifl(vq))
		return complete(vq, used, n, true, false);
	return complete(vq, used, n, false, false);
}

/*
 * Chains completed with len 0 in fetch order. Without inflight records the
 * used elements come straight from the chains: in order, one element and
 * one index store for the whole batch; otherwise one element per chain.
 * With inflight records the entries go through complete(), which records
 * them as vre_vq_complete does.
 */
int split_complete_inorder(struct vre_vq *vq, const struct vre_chain *chains, unsigned n)
{
	struct vre_used_ring *ur = vq->sp.used;
	uint16_t mask = vq->size - 1, idx = vq->last_used_idx;

	if (__builtin_expect(ifl(vq) != NULL, 0)) {
		struct vre_used used[VRE_BURST];

		for (unsigned i = 0; i < n; i++)
			used[i] = vre_used_of(&chains[i], 0);
		return complete(vq, used, n, true, vq->in_order);
	}
	if (vq->in_order) {
		struct vre_used_elem *e = &ur->ring[idx & mask];

		e->id = chains[n - 1].id;
		e->len = 0;
	} else {
		for (unsigned i = 0; i < n; i++) {
			struct vre_used_elem *e = &ur->ring[(uint16_t)(idx + i) & mask];

			e->id = chains[i].id;
			e->len = 0;
		}
	}
	STEP(vq, "complete: elems");
	publish(vq, idx, n);
	return 0;
}

/* A run of common chains for vre_vq_take_run (split_run, the direction
 * as asked), the avail index as fetch reads it. */
int split_take_run(struct vre_vq *vq, struct vre_run *r, unsigned max, bool writable)
{
	const struct vre_desc *desc = vq->sp.desc;
	const uint16_t *ring = vq->sp.avail->ring;
	const uint16_t size = vq->size;
	const uint16_t want = writable ? VRE_DESC_F_WRITE : 0;
	uint16_t last = vq->last_avail_idx, pending = (uint16_t)(vq->sp.avail_seen - last);
	struct hot_region hot;
	unsigned k;

	if (pending < max) {
		uint16_t avail = avail_idx_acquire(vq);

		pending = (uint16_t)(avail - last);
		if (pending > size) {
			vre_vq_break(vq, VRE_RE_AVAIL_IDX_LEAP);
			return -EIO;
		}
		vq->sp.avail_seen = avail;
	}
	if (pending == 0)
		return 0;
	if (max > pending)
		max = pending;
	hot_region_load(vq, &hot);
	k = split_run(desc, ring, size, last, &hot,
		      VRE_DESC_F_NEXT | VRE_DESC_F_INDIRECT | VRE_DESC_F_WRITE, want, max, NULL,
		      NULL, r, true);
	vq->last_avail_idx = (uint16_t)(last + k);
	r->n = (uint16_t)k;
	return k ? (int)k : -EAGAIN;
}

/* The used elements straight from the run; with IN_ORDER and no lengths
 * one element for all n, at the first position. */
void split_complete_run(struct vre_vq *vq, const struct vre_run *r, unsigned n, bool with_len)
{
	struct vre_used_ring *ur = vq->sp.used;
	uint16_t mask = vq->size - 1, idx = vq->last_used_idx;

	if (!with_len && vq->in_order) {
		struct vre_used_elem *e = &ur->ring[idx & mask];

		e->id = r->id[n - 1];
		e->len = 0;
	} else {
		for (unsigned i = 0; i < n; i++) {
			struct vre_used_elem *e = &ur->ring[(uint16_t)(idx + i) & mask];

			e->id = r->id[i];
			e->len = with_len ? r->len[i] : 0;
		}
	}
	STEP(vq, "complete: elems");
	publish(vq, idx, n);
}

bool split_needs_notify(struct vre_vq *vq)
{
	uint16_t new_used = vq->last_used_idx, old, event;
	bool valid;

	/* Full fence: our used->idx store must be visible before we read the
	 * driver's used_event / flags. The driver does the mirror image (write
	 * used_event, fence, read used->idx); without both fences each side
	 * can miss the other's store and the notification is lost. */
	atomic_thread_fence(memory_order_seq_cst);
	if (!vq->event_idx) {
		uint16_t flags = __atomic_load_n(&vq->sp.avail->flags, __ATOMIC_RELAXED);

		return !(flags & VRE_AVAIL_F_NO_INTERRUPT);
	}
	event = __atomic_load_n(vq->sp.used_event, __ATOMIC_RELAXED);
	old = vq->signalled_used;
	valid = vq->signalled_used_valid;
	/* Every index up to new_used has now been offered to the rule, so the
	 * next decision only looks at what is published after it (as Linux
	 * vhost and DPDK do); an unknown old index means we must notify. */
	vq->signalled_used = new_used;
	vq->signalled_used_valid = true;
	if (!valid)
		return true;
	return vre_need_event(event, new_used, old);
}

bool split_avail_pending(const struct vre_vq *vq)
{
	return avail_idx_acquire(vq) != vq->last_avail_idx;
}

bool split_notify_enable(struct vre_vq *vq)
{
	if (vq->broken)
		return false;
	if (vq->event_idx)
		__atomic_store_n(vq->sp.avail_event, vq->last_avail_idx, __ATOMIC_RELAXED);
	else
		__atomic_store_n(&vq->sp.used->flags, 0, __ATOMIC_RELAXED);
	/* Full fence: the store above must be visible before we re-read
	 * avail->idx. Otherwise the driver may add a chain after our read while
	 * still seeing notifications off, and neither side wakes the other. */
	atomic_thread_fence(memory_order_seq_cst);
	return vq->resubmit_pos < vq->resubmit_num || split_avail_pending(vq);
}

void split_notify_disable(struct vre_vq *vq)
{
	if (vq->broken)
		return;
	/* With event idx there is nothing to set: avail_event stays where it
	 * is, so at most one more kick arrives. */
	if (!vq->event_idx)
		__atomic_store_n(&vq->sp.used->flags, VRE_USED_F_NO_NOTIFY,
				 __ATOMIC_RELAXED);
}
