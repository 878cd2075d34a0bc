/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A small virtio packed-ring DRIVER for tests: it builds chains in ring
 * memory exactly as a guest would (descriptor bodies first, the head's
 * flags last with release, AVAIL/USED set from its wrap counter) and reads
 * used descriptors back in ring order. Tests put it and the device (vring/)
 * on the two ends of the same ring memory.
 */
#ifndef PDRV_PACKED_H
#define PDRV_PACKED_H

#include <stdbool.h>
#include <stdint.h>

#include "vre_ring_layout.h"

struct pdrv_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags; /* WRITE / INDIRECT (NEXT is added on all but the last) */
};

struct pdrv {
	uint16_t size;
	struct vre_packed_desc *ring;
	struct vre_packed_event *driver; /* the driver's area: it writes here */
	struct vre_packed_event *device; /* the device's area: it reads here */
	uint16_t avail_idx;
	bool avail_wrap;
	uint16_t used_idx;
	bool used_wrap;
	uint32_t free_slots;
	uint16_t ndesc_of[VRE_VQ_MAX_SIZE]; /* per outstanding id: slots taken */
	uint8_t outstanding[VRE_VQ_MAX_SIZE];
	/* VIRTIO_F_IN_ORDER (pdrv_set_in_order) */
	bool in_order;
	bool no_batch;        /* every chain must have its own used descriptor */
	uint16_t batch_left;  /* chains of the batch being handed out */
	uint16_t batch_last;  /* the id the batch's used descriptor named */
	uint32_t batch_len;   /* its len */
	uint32_t *wlen_of;    /* in order: writable bytes per id (malloc'd) */
};

void pdrv_init(struct pdrv *d, uint16_t size, void *ring, void *driver_area,
	       void *device_area);

/*
 * Makes the driver behave as one that negotiated VIRTIO_F_IN_ORDER, like
 * DPDK's virtio PMD (virtio_xmit_cleanup_inorder_packed): a chain's buffer
 * id is the slot of its first descriptor (pdrv_post's id must be
 * d->avail_idx), and a used descriptor at the used position names the
 * last chain of an in-order batch: every chain from there up to the one
 * whose id it carries is used (those before it taken as used completely:
 * len = their writable bytes), and the next used descriptor is read at the
 * slot after the batch. pdrv_get_used returns -EPROTO for a descriptor no
 * in-order device can write: an id that is not one of the chains in flight
 * from the used position on, or, with no_batch (DPDK's packed RX reads
 * every descriptor), any id but the first chain's. pdrv_fini frees what
 * this allocates. Call right after pdrv_init.
 */
void pdrv_set_in_order(struct pdrv *d, bool no_batch);
void pdrv_fini(struct pdrv *d);

/* Makes a chain of n descriptors available with buffer id `id`. raw: write
 * the flags exactly as given (no NEXT added, id not tracked) - for feeding
 * the device broken chains. -ENOSPC without room, -EBUSY if id is out. */
int pdrv_post(struct pdrv *d, const struct pdrv_desc *v, unsigned n,
	      uint16_t id, bool raw);

/* Writes flags as "available in the current lap" on slot `slot` without
 * touching the driver's indexes (for hostile-driver tests). */
void pdrv_mark_avail(struct pdrv *d, uint16_t slot, bool wrap, uint16_t flags);

/* Reads the next used descriptor. 1 with id and len, 0 when none is visible,
 * -EPROTO when the device returned an id that is not outstanding. */
int pdrv_get_used(struct pdrv *d, uint16_t *id, uint32_t *len);

/* Driver event suppression area. */
void pdrv_set_event(struct pdrv *d, uint16_t flags, uint16_t off, bool wrap);

#endif
