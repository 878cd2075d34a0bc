/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Attaching a packed queue to its inflight region: a fresh region is
 * formatted; one an earlier process left is recovered (vhost-user "Inflight
 * I/O tracking", packed rings): the half-completed batch is committed or
 * rolled back, every chain still in flight is queued for resubmission in
 * submission order, and the ring positions are rebuilt from the region.
 * How packed.c records chains while it runs is described at its top.
 *
 * The gap in the spec's recovery (a batch whose later used flags were
 * written but whose first flags were not) is closed on recovery: after the
 * roll-back every slot the device still holds that shows the used pattern is
 * turned back to the available pattern (re-hidden) before anything else is
 * written, so the driver, which reads used slots in order and stops at the
 * first slot that is not used, never sees a completion the new process has
 * not made itself. See inflight_rehide().
 */
#include <stdlib.h>
#include <string.h>

#include "vre_log.h"
#include "packed_internal.h"

static void inflight_format(struct vre_vq *vq, struct vre_inflight_packed *inf,
			    uint64_t features)
{
	for (uint32_t i = 0; i < vq->size; i++) {
		memset(&inf->desc[i], 0, sizeof(inf->desc[i]));
		inf->desc[i].next = (uint16_t)(i + 1);
	}
	inf->features = features;
	inf->desc_num = vq->size;
	inf->free_head = inf->old_free_head = 0;
	inf->used_idx = inf->old_used_idx = vq->last_used_idx;
	inf->used_wrap_counter = inf->old_used_wrap_counter = vq->used_wrap;
	/* release: a region reads as formatted only once it is */
	st16_rel(&inf->version, VRE_INFLIGHT_VERSION);
	vq->inflight = inf;
	vq->inflight_counter = 0;
}

enum { MARK_NONE, MARK_FREE, MARK_HEAD, MARK_BODY };

struct head_ref {
	uint64_t counter;
	uint16_t ent;
	uint16_t id;
	uint16_t num;
};

static int head_cmp(const void *a, const void *b)
{
	const struct head_ref *x = a, *y = b;

	if (x->counter != y->counter)
		return x->counter < y->counter ? -1 : 1;
	return x->ent < y->ent ? -1 : x->ent > y->ent;
}

/* The header as read once, after the commit/roll-back decision. */
struct inf_state {
	uint16_t free_head;
	uint16_t used_idx;
	bool used_wrap;
};

/* Spec: if a batch was being completed (live != old), look at the ring slot
 * at old_used_idx. Still showing the available pattern of the old lap: the
 * batch never became visible, roll back. Anything else (used, or already
 * reused by the driver in a later lap): it was published, commit. */
static int inflight_header(struct vre_vq *vq, struct vre_inflight_packed *inf,
			   struct inf_state *s)
{
	uint16_t size = vq->size;
	uint16_t fh = ld16(&inf->free_head), ofh = ld16(&inf->old_free_head);
	uint16_t ui = ld16(&inf->used_idx), oui = ld16(&inf->old_used_idx);
	uint8_t uw = ld8(&inf->used_wrap_counter), ouw = ld8(&inf->old_used_wrap_counter);

	if (ld16(&inf->version) != VRE_INFLIGHT_VERSION || ld16(&inf->desc_num) != size ||
	    fh > size || ofh > size || ui >= size || oui >= size || uw > 1 || ouw > 1)
		return -EINVAL;
	s->free_head = ofh;
	s->used_idx = oui;
	s->used_wrap = ouw;
	if (ui != oui || uw != ouw) {
		uint16_t f = ld16_acq(&vq->pk.desc[oui].flags);

		if (!desc_avail(f, ouw)) {
			s->free_head = fh;
			s->used_idx = ui;
			s->used_wrap = uw;
		}
	}
	return 0;
}

/* Walks the free list (bounded: every entry at most once). */
static int inflight_mark_free(struct vre_vq *vq, struct vre_inflight_packed *inf,
			      uint16_t head, uint8_t *mark)
{
	for (uint16_t i = head; i != vq->size; i = ld16(&inf->desc[i].next)) {
		if (i > vq->size || mark[i])
			return -EINVAL;
		mark[i] = MARK_FREE;
	}
	return 0;
}

/* Entry i has inflight == 1 and is not on the free list: it heads a chain
 * of num entries linked by next and ending at last. */
static int inflight_mark_chain(struct vre_vq *vq, struct vre_inflight_packed *inf,
			       uint16_t i, uint8_t *mark, uint16_t *num_out, uint16_t *id_out)
{
	uint16_t size = vq->size, num = ld16(&inf->desc[i].num);
	uint16_t last = ld16(&inf->desc[i].last), e = i, id;

	if (num == 0 || num > size || last >= size)
		return -EINVAL;
	for (uint16_t k = 0; k < num; k++) {
		if (k > 0)
			e = ld16(&inf->desc[e].next);
		if (e >= size || mark[e])
			return -EINVAL;
		mark[e] = k ? MARK_BODY : MARK_HEAD;
	}
	id = ld16(&inf->desc[last].id);
	if (e != last || id >= size || vq->pk.id_busy[id])
		return -EINVAL;
	vq->pk.id_busy[id] = 1;
	*num_out = num;
	*id_out = id;
	return 0;
}

/*
 * The gap: a process that died between writing the used flags of a batch's
 * later chains and the first chain's flags left used-looking slots past the
 * committed used position. Everything from there to the avail position is
 * held by the device (the driver gave those slots and has not had them
 * back), so turning a used-looking slot back to its available pattern takes
 * nothing from the driver; the driver cannot have consumed it, as it reads
 * in order and the slot at the used position is not used.
 */
static void inflight_rehide(struct vre_vq *vq, uint16_t idx, bool wrap, uint32_t total)
{
	for (uint32_t s = 0; s < total; s++) {
		uint16_t *fp = &vq->pk.desc[idx].flags, f = ld16(fp);

		if (desc_used(f, wrap))
			st16(fp, (uint16_t)((f & ~(F_AVAIL | F_USED)) |
					    (wrap ? F_AVAIL : F_USED)));
		pos_step(&idx, &wrap, 1, vq->size);
	}
	/* release: re-hidden before any new used flag is written */
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

/* Everything not part of a chain in flight goes back on the free list, in
 * index order, and the header is made consistent (old == live). */
static void inflight_rebuild(struct vre_vq *vq, struct vre_inflight_packed *inf,
			     const uint8_t *mark, const struct inf_state *s)
{
	uint16_t fh = vq->size;

	for (uint32_t i = vq->size; i-- > 0;) {
		if (mark[i] == MARK_HEAD || mark[i] == MARK_BODY)
			continue;
		inf->desc[i].inflight = 0;
		inf->desc[i].next = fh;
		fh = (uint16_t)i;
	}
	inf->free_head = inf->old_free_head = fh;
	inf->used_wrap_counter = inf->old_used_wrap_counter = s->used_wrap;
	inf->used_idx = inf->old_used_idx = s->used_idx;
	/* release: the repaired region is complete before the first fetch
	 * records into it (a crash from here on recovers from this state) */
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

static int inflight_recover(struct vre_vq *vq, struct vre_inflight_packed *inf)
{
	uint16_t size = vq->size, nheads = 0;
	uint8_t *mark = calloc(size, 1);
	struct head_ref *heads = calloc(size, sizeof(*heads));
	uint16_t *resub = NULL;
	uint64_t next_counter = 0;
	uint32_t total = 0;
	struct inf_state s;
	int err = -ENOMEM;

	memset(vq->pk.id_busy, 0, size);
	if (!mark || !heads)
		goto out;
	err = inflight_header(vq, inf, &s);
	if (!err)
		err = inflight_mark_free(vq, inf, s.free_head, mark);
	for (uint32_t i = 0; i < size && !err; i++) {
		uint16_t num, id;

		if (mark[i] == MARK_FREE || ld8(&inf->desc[i].inflight) != 1)
			continue;
		err = inflight_mark_chain(vq, inf, (uint16_t)i, mark, &num, &id);
		if (err)
			break;
		heads[nheads].counter = ld64(&inf->desc[i].counter);
		heads[nheads].ent = (uint16_t)i;
		heads[nheads].id = id;
		heads[nheads].num = num;
		if (heads[nheads].counter >= next_counter)
			next_counter = heads[nheads].counter + 1;
		nheads++;
		total += num;
	}
	if (err == -EINVAL) {
		memset(vq->pk.id_busy, 0, size);
		vre_vq_break(vq, VRE_RE_INFLIGHT_CORRUPT);
	}
	if (err)
		goto out;
	err = -ENOMEM;
	/* resub: entries, then the id and length each chain had when it was
	 * checked here (see resub_changed). */
	if (nheads && !(resub = malloc(3u * nheads * sizeof(*resub)))) {
		memset(vq->pk.id_busy, 0, size);
		goto out;
	}
	qsort(heads, nheads, sizeof(*heads), head_cmp);
	for (uint16_t k = 0; k < nheads; k++) {
		resub[k] = heads[k].ent;
		resub[nheads + k] = heads[k].id;
		resub[2u * nheads + k] = heads[k].num;
	}

	inflight_rehide(vq, s.used_idx, s.used_wrap, total);
	inflight_rebuild(vq, inf, mark, &s);
	free(vq->resubmit);
	vq->resubmit = resub;
	vq->resubmit_num = nheads;
	vq->resubmit_pos = 0;
	vq->inflight = inf;
	vq->inflight_counter = next_counter;
	vq->last_used_idx = s.used_idx;
	vq->used_wrap = s.used_wrap;
	vq->last_avail_idx = s.used_idx;
	vq->avail_wrap = s.used_wrap;
	pos_step(&vq->last_avail_idx, &vq->avail_wrap, total, size);
	vq->signalled_used_valid = false;
	err = nheads;
	VRE_INFO("vring", "packed queue of size %u recovered: %u chains to resubmit, "
		 "used %u/%d avail %u/%d", size, nheads, vq->last_used_idx,
		 vq->used_wrap, vq->last_avail_idx, vq->avail_wrap);
out:
	free(mark);
	free(heads);
	return err;
}

int packed_inflight_attach(struct vre_vq *vq, void *region, uint64_t features)
{
	struct vre_inflight_packed *inf = region;

	if (vq->inflight)
		return -EINVAL; /* attached already: recovery runs once */
	if (ld16(&inf->version) == 0) {
		inflight_format(vq, inf, features);
		return 0;
	}
	return inflight_recover(vq, inf);
}
