/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vdrv_packed.h"

void pdrv_init(struct pdrv *d, uint16_t size, void *ring, void *driver_area,
	       void *device_area)
{
	memset(d, 0, sizeof(*d));
	d->size = size;
	d->ring = ring;
	d->driver = driver_area;
	d->device = device_area;
	d->avail_wrap = d->used_wrap = true;
	d->free_slots = size;
	memset(ring, 0, 16u * size);
}

void pdrv_set_in_order(struct pdrv *d, bool no_batch)
{
	d->in_order = true;
	d->no_batch = no_batch;
	d->wlen_of = calloc(d->size, sizeof(*d->wlen_of));
	if (!d->wlen_of)
		abort();
}

void pdrv_fini(struct pdrv *d)
{
	free(d->wlen_of);
	d->wlen_of = NULL;
}

static uint16_t avail_bits(bool wrap)
{
	return wrap ? VRE_PACKED_DESC_F_AVAIL : VRE_PACKED_DESC_F_USED;
}

int pdrv_post(struct pdrv *d, const struct pdrv_desc *v, unsigned n,
	      uint16_t id, bool raw)
{
	uint16_t head = d->avail_idx, head_flags = 0;

	if (n == 0 || n > d->free_slots)
		return -ENOSPC;
	if (!raw && (id >= d->size || d->outstanding[id]))
		return -EBUSY;
	if (!raw && d->in_order && id != d->avail_idx)
		return -EINVAL; /* in order, the id is the chain's first slot */
	for (unsigned i = 0; i < n; i++) {
		struct vre_packed_desc *r = &d->ring[d->avail_idx];
		uint16_t f = v[i].flags | avail_bits(d->avail_wrap);

		if (!raw && i + 1 < n)
			f |= VRE_DESC_F_NEXT;
		r->addr = v[i].addr;
		r->len = v[i].len;
		r->id = id;
		if (i == 0)
			head_flags = f;
		else
			__atomic_store_n(&r->flags, f, __ATOMIC_RELAXED);
		if (++d->avail_idx == d->size) {
			d->avail_idx = 0;
			d->avail_wrap = !d->avail_wrap;
		}
	}
	/* The head last, with release: the chain appears at once. */
	__atomic_store_n(&d->ring[head].flags, head_flags, __ATOMIC_RELEASE);
	d->free_slots -= n;
	if (!raw) {
		d->outstanding[id] = 1;
		d->ndesc_of[id] = (uint16_t)n;
	}
	if (!raw && d->in_order) {
		d->wlen_of[id] = 0;
		for (unsigned i = 0; i < n; i++)
			if (v[i].flags & VRE_DESC_F_WRITE)
				d->wlen_of[id] += v[i].len;
	}
	return 0;
}

void pdrv_mark_avail(struct pdrv *d, uint16_t slot, bool wrap, uint16_t flags)
{
	__atomic_store_n(&d->ring[slot].flags, flags | avail_bits(wrap),
			 __ATOMIC_RELEASE);
}

static void used_step(struct pdrv *d, uint16_t n)
{
	if ((uint32_t)d->used_idx + n >= d->size) {
		d->used_idx = (uint16_t)(d->used_idx + n - d->size);
		d->used_wrap = !d->used_wrap;
	} else {
		d->used_idx = (uint16_t)(d->used_idx + n);
	}
}

/* In order: the used descriptor at the used position names a chain in
 * flight at or after it (ids are first slots); walking the chains from the
 * used position up to it gives the batch. */
static int inorder_batch(struct pdrv *d, uint16_t id, uint32_t len)
{
	uint32_t at = d->used_idx, walked = 0;
	uint16_t k = 1;

	for (;;) {
		if (at >= d->size || !d->outstanding[at])
			return -EPROTO;
		if (at == id)
			break;
		if (d->no_batch)
			return -EPROTO;
		walked += d->ndesc_of[at];
		if (walked >= d->size - d->free_slots)
			return -EPROTO; /* past every chain in flight */
		at = (at + d->ndesc_of[at]) % d->size;
		k++;
	}
	d->batch_left = k;
	d->batch_last = id;
	d->batch_len = len;
	return 1;
}

int pdrv_get_used(struct pdrv *d, uint16_t *id, uint32_t *len)
{
	struct vre_packed_desc *r = &d->ring[d->used_idx];
	uint16_t n;

	if (d->in_order && !d->batch_left) {
		uint16_t f = __atomic_load_n(&r->flags, __ATOMIC_ACQUIRE);
		bool a = f & VRE_PACKED_DESC_F_AVAIL, u = f & VRE_PACKED_DESC_F_USED;
		int rc;

		if (a != d->used_wrap || u != d->used_wrap)
			return 0;
		rc = inorder_batch(d, r->id, r->len);
		if (rc <= 0)
			return rc;
	}
	if (d->in_order) {
		uint16_t at = d->used_idx;

		*id = at;
		*len = at == d->batch_last && d->batch_left == 1 ? d->batch_len : d->wlen_of[at];
		d->batch_left--;
		d->outstanding[at] = 0;
		n = d->ndesc_of[at];
		d->free_slots += n;
		used_step(d, n);
		return 1;
	}
	uint16_t f = __atomic_load_n(&r->flags, __ATOMIC_ACQUIRE);
	bool a = f & VRE_PACKED_DESC_F_AVAIL, u = f & VRE_PACKED_DESC_F_USED;

	if (a != d->used_wrap || u != d->used_wrap)
		return 0;
	*id = r->id;
	*len = r->len;
	if (*id >= d->size || !d->outstanding[*id])
		return -EPROTO;
	d->outstanding[*id] = 0;
	n = d->ndesc_of[*id];
	d->free_slots += n;
	used_step(d, n);
	return 1;
}

void pdrv_set_event(struct pdrv *d, uint16_t flags, uint16_t off, bool wrap)
{
	__atomic_store_n(&d->driver->off_wrap, (uint16_t)(off | (wrap ? 0x8000 : 0)),
			 __ATOMIC_RELAXED);
	__atomic_store_n(&d->driver->flags, flags, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}
