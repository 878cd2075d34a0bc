/* SPDX-License-Identifier: BSD-3-Clause */
/* Ring-type dispatch and the parts both ring types share. */
#include <stdlib.h>
#include <string.h>

#include "vre_log.h"
#include "vring_internal.h"

#ifdef VRE_RING_STEP_HOOK
void (*vring_step_hook)(struct vre_vq *vq, const char *step); /* see STEP */
#endif

static const char *const ring_errors[VRE_RE_COUNT] = {
	[VRE_RE_NONE] = "no error",
	[VRE_RE_DESC_OUT_OF_MEMORY] = "descriptor outside guest memory",
	[VRE_RE_DESC_OVERFLOW] = "descriptor address + length overflows",
	[VRE_RE_CHAIN_TOO_LONG] = "descriptor chain loops or exceeds the queue size",
	[VRE_RE_NEXT_OUT_OF_RANGE] = "descriptor next index out of range",
	[VRE_RE_HEAD_OUT_OF_RANGE] = "avail ring head index out of range",
	[VRE_RE_AVAIL_IDX_LEAP] = "avail index more than the queue size ahead",
	[VRE_RE_INDIRECT_NOT_NEGOTIATED] = "indirect descriptor without INDIRECT_DESC",
	[VRE_RE_INDIRECT_LEN_ZERO] = "indirect table of length 0",
	[VRE_RE_INDIRECT_LEN_UNALIGNED] = "indirect table length not a multiple of 16",
	[VRE_RE_INDIRECT_TOO_BIG] = "indirect table larger than the queue size",
	[VRE_RE_INDIRECT_NESTED] = "indirect descriptor inside an indirect table",
	[VRE_RE_INDIRECT_WITH_NEXT] = "indirect descriptor with NEXT set",
	[VRE_RE_INDIRECT_OUT_OF_MEMORY] = "indirect table outside guest memory",
	[VRE_RE_WRITE_THEN_READ] = "readable descriptor after a writable one",
	[VRE_RE_ID_OUT_OF_RANGE] = "packed buffer id out of range",
	[VRE_RE_ID_IN_USE] = "packed buffer id already in flight",
	[VRE_RE_INFLIGHT_CORRUPT] = "inflight region corrupt",
	[VRE_RE_MEMORY_LOST] = "guest memory lost",
};

const char *vre_ring_strerror(enum vre_ring_error e)
{
	return (unsigned)e < VRE_RE_COUNT ? ring_errors[e] : "unknown ring error";
}

void vre_vq_break(struct vre_vq *vq, enum vre_ring_error e)
{
	if (vq->broken)
		return;
	vq->broken = (uint8_t)e;
	VRE_ERR("vring", "%s queue of size %u broken: %s (avail %u, used %u)",
		vq->packed ? "packed" : "split", vq->size, vre_ring_strerror(e),
		vq->last_avail_idx, vq->last_used_idx);
}

int vre_vq_init(struct vre_vq *vq, const struct vre_vq_params *p)
{
	memset(vq, 0, sizeof(*vq));
	if (!p->mem || !p->desc || !p->driver || !p->device)
		return -EINVAL;
	if (p->size == 0 || p->size > VRE_VQ_MAX_SIZE)
		return -EINVAL;
	vq->mem = p->mem;
	vq->size = p->size;
	vq->packed = p->packed;
	vq->event_idx = p->event_idx;
	vq->indirect = p->indirect;
	vq->in_order = p->in_order;
	return p->packed ? packed_init(vq, p) : split_init(vq, p);
}

int vre_vq_rebind(struct vre_vq *vq, const struct vre_vq_params *p)
{
	if (!p->mem || !p->desc || !p->driver || !p->device)
		return -EINVAL;
	if (p->size != vq->size || p->packed != vq->packed)
		return -EINVAL;
	vq->mem = p->mem;
	vq->mem_hint = 0;
	return p->packed ? packed_bind(vq, p) : split_bind(vq, p);
}

void vre_vq_fini(struct vre_vq *vq)
{
	if (vq->packed)
		packed_fini(vq);
	free(vq->resubmit);
	vq->resubmit = NULL;
	vq->resubmit_num = vq->resubmit_pos = 0;
}

int vre_vq_set_base(struct vre_vq *vq, uint32_t base)
{
	if (!vq->packed) {
		vq->last_avail_idx = (uint16_t)base;
		vq->sp.avail_seen = (uint16_t)base;
		vq->last_used_idx = (uint16_t)base;
		vq->signalled_used_valid = false;
		return 0;
	}
	uint16_t avail = base & 0x7fff, used = (base >> 16) & 0x7fff;

	if (avail >= vq->size || used >= vq->size)
		return -EINVAL;
	vq->last_avail_idx = avail;
	vq->avail_wrap = (base >> 15) & 1;
	vq->last_used_idx = used;
	vq->used_wrap = (base >> 31) & 1;
	vq->signalled_used_valid = false;
	return 0;
}

int vre_vq_resync_to_used(struct vre_vq *vq)
{
	uint16_t used;

	if (vq->packed)
		return -ENOTSUP;
	/* Acquire: pairs with the release of whoever published used->idx
	 * last (the dead backend); nothing else is read here. */
	used = __atomic_load_n(&vq->sp.used->idx, __ATOMIC_ACQUIRE);
	/* The base only says where taking stops; the device is the one
	 * writer of used->idx, and the ring holds it: used entries go on
	 * from there, never from the base (stale entries in between would
	 * read as completions to the driver). */
	vq->last_used_idx = used;
	vq->signalled_used_valid = false;
	/* A base between used and used + size is a position some backend
	 * could have reached (that many chains in flight): keep it. One
	 * behind the used index, or further ahead, cannot be right. In
	 * order, no chain may be skipped: the used entry at position k is
	 * the driver's chain at avail position k, so the chains a dead
	 * backend took are taken again and completed at their own slots. */
	if (vq->last_avail_idx == used ||
	    (!vq->in_order && (uint16_t)(vq->last_avail_idx - used) <= vq->size))
		return 0;
	vq->last_avail_idx = vq->last_used_idx = used;
	vq->sp.avail_seen = used;
	vq->signalled_used_valid = false;
	return 1;
}

uint32_t vre_vq_get_base(const struct vre_vq *vq)
{
	if (!vq->packed)
		return vq->last_avail_idx;
	return (uint32_t)vq->last_avail_idx | (uint32_t)vq->avail_wrap << 15 |
	       (uint32_t)vq->last_used_idx << 16 | (uint32_t)vq->used_wrap << 31;
}

int vre_vq_fetch(struct vre_vq *vq, struct vre_chain *chains, unsigned max,
		 struct iovec *pool, unsigned pool_len)
{
	if (vq->broken)
		return -EIO;
	if (max > VRE_BURST)
		max = VRE_BURST;
	return vq->packed ? packed_fetch(vq, chains, max, pool, pool_len)
			  : split_fetch(vq, chains, max, pool, pool_len);
}

void vre_vq_set_log(struct vre_vq *vq, const struct vre_dirty_log *log, bool log_ring,
		    uint64_t ring_gpa, uint64_t event_gpa)
{
	vq->log = log;
	vq->log_ring_gpa = ring_gpa;
	vq->log_ring_len = !log_ring ? 0 :
			   vq->packed ? vre_packed_desc_bytes(vq->size) :
					vre_split_used_bytes(vq->size); /* avail_event included */
	vq->log_event_gpa = event_gpa;
	vq->log_hint = 0;
}

/* After a complete with logging on: the ring's device-written part, whole.
 * A used ring of 256 entries is 2 KiB, a packed ring 4 KiB: one or two
 * pages, so marking all of it costs what marking the entries would, and
 * needs no per-entry bookkeeping in the ring code. */
static __attribute__((noinline, cold)) void log_ring(struct vre_vq *vq)
{
	vre_dirty_log_gpa(vq->log, vq->log_ring_gpa, vq->log_ring_len);
}

/* notify_enable/disable wrote flags or an event index: split's are in the
 * used ring, packed's in the device event area. */
static __attribute__((noinline, cold)) void log_notify(struct vre_vq *vq)
{
	if (!vq->log_ring_len)
		return;
	if (vq->packed)
		vre_dirty_log_gpa(vq->log, vq->log_event_gpa, VRE_PACKED_EVENT_BYTES);
	else
		vre_dirty_log_gpa(vq->log, vq->log_ring_gpa, vq->log_ring_len);
}

/* A complete with logging on: the ring's part is marked after it. */
static __attribute__((noinline)) int complete_logged(struct vre_vq *vq, const struct vre_used *used,
						     unsigned n, bool fetched)
{
	int r;

	if (fetched)
		r = vq->packed ? packed_complete_fetched(vq, used, n)
			       : split_complete_fetched(vq, used, n);
	else
		r = vq->packed ? packed_complete(vq, used, n) : split_complete(vq, used, n);
	log_ring(vq);
	return r;
}

int vre_vq_complete(struct vre_vq *vq, const struct vre_used *used, unsigned n)
{
	if (n > VRE_COMPLETE_MAX)
		return -EINVAL;
	if (n == 0)
		return 0;
	/* the one logging branch of a complete: per call, not per entry; the
	 * path without a log stays a tail call */
	if (__builtin_expect(vq->log != NULL, 0))
		return complete_logged(vq, used, n, false);
	return vq->packed ? packed_complete(vq, used, n) : split_complete(vq, used, n);
}

int vre_vq_complete_fetched(struct vre_vq *vq, const struct vre_used *used, unsigned n)
{
	if (n > VRE_COMPLETE_MAX)
		return -EINVAL;
	if (n == 0)
		return 0;
	if (__builtin_expect(vq->log != NULL, 0))
		return complete_logged(vq, used, n, true);
	return vq->packed ? packed_complete_fetched(vq, used, n)
			  : split_complete_fetched(vq, used, n);
}

int vre_vq_complete_inorder(struct vre_vq *vq, const struct vre_chain *chains, unsigned n)
{
	int r;

	if (n > VRE_BURST)
		return -EINVAL;
	if (n == 0)
		return 0;
	r = vq->packed ? packed_complete_inorder(vq, chains, n)
		       : split_complete_inorder(vq, chains, n);
	if (__builtin_expect(vq->log != NULL, 0))
		log_ring(vq);
	return r;
}

int vre_vq_take_run(struct vre_vq *vq, struct vre_run *r, unsigned max, bool writable)
{
	r->n = 0;
	if (vq->broken)
		return -EIO;
	if (vq->inflight || vq->resubmit_pos < vq->resubmit_num)
		return -EAGAIN;
	if (max > VRE_BURST)
		max = VRE_BURST;
	return vq->packed ? packed_take_run(vq, r, max, writable)
			  : split_take_run(vq, r, max, writable);
}

void vre_vq_untake_run(struct vre_vq *vq, struct vre_run *r, unsigned k)
{
	if (k >= r->n)
		return;
	if (vq->packed)
		packed_untake_run(vq, r, k);
	else
		vq->last_avail_idx = (uint16_t)(vq->last_avail_idx - (r->n - k));
	r->n = (uint16_t)k;
}

int vre_vq_complete_run(struct vre_vq *vq, const struct vre_run *r, unsigned n, bool with_len)
{
	if (n > r->n)
		return -EINVAL;
	if (n == 0)
		return 0;
	if (vq->packed)
		packed_complete_run(vq, r, n, with_len);
	else
		split_complete_run(vq, r, n, with_len);
	/* the fused path leaves logged rings to the general path; a caller
	 * that did not still gets the ring marked */
	if (__builtin_expect(vq->log != NULL, 0))
		log_ring(vq);
	return 0;
}

bool vre_vq_needs_notify(struct vre_vq *vq)
{
	return vq->packed ? packed_needs_notify(vq) : split_needs_notify(vq);
}

bool vre_vq_avail_pending(const struct vre_vq *vq)
{
	if (vq->broken)
		return false;
	if (vq->resubmit_pos < vq->resubmit_num)
		return true;
	return vq->packed ? packed_avail_pending(vq) : split_avail_pending(vq);
}

bool vre_vq_notify_enable(struct vre_vq *vq)
{
	bool r;

	vq->notify_enabled = true;
	r = vq->packed ? packed_notify_enable(vq) : split_notify_enable(vq);
	if (vq->log)
		log_notify(vq);
	return r;
}

void vre_vq_notify_disable(struct vre_vq *vq)
{
	vq->notify_enabled = false;
	if (vq->packed)
		packed_notify_disable(vq);
	else
		split_notify_disable(vq);
	if (vq->log)
		log_notify(vq);
}
