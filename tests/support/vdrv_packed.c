/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
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
	return 0;
}

void pdrv_mark_avail(struct pdrv *d, uint16_t slot, bool wrap, uint16_t flags)
{
	__atomic_store_n(&d->ring[slot].flags, flags | avail_bits(wrap),
			 __ATOMIC_RELEASE);
}

int pdrv_get_used(struct pdrv *d, uint16_t *id, uint32_t *len)
{
	struct vre_packed_desc *r = &d->ring[d->used_idx];
	uint16_t f = __atomic_load_n(&r->flags, __ATOMIC_ACQUIRE);
	bool a = f & VRE_PACKED_DESC_F_AVAIL, u = f & VRE_PACKED_DESC_F_USED;
	uint16_t n;

	if (a != d->used_wrap || u != d->used_wrap)
		return 0;
	*id = r->id;
	*len = r->len;
	if (*id >= d->size || !d->outstanding[*id])
		return -EPROTO;
	d->outstanding[*id] = 0;
	n = d->ndesc_of[*id];
	d->free_slots += n;
	if ((uint32_t)d->used_idx + n >= d->size) {
		d->used_idx = (uint16_t)(d->used_idx + n - d->size);
		d->used_wrap = !d->used_wrap;
	} else {
		d->used_idx = (uint16_t)(d->used_idx + n);
	}
	return 1;
}

void pdrv_set_event(struct pdrv *d, uint16_t flags, uint16_t off, bool wrap)
{
	__atomic_store_n(&d->driver->off_wrap, (uint16_t)(off | (wrap ? 0x8000 : 0)),
			 __ATOMIC_RELAXED);
	__atomic_store_n(&d->driver->flags, flags, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}
