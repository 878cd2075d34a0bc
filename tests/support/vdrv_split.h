/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A small virtio split-ring DRIVER for tests: it lays the rings out in
 * buffers that play guest memory (one region, or two adjacent GPA ranges
 * backed by separate allocations), adds chains the way a guest does, and
 * reads the used ring back. The device under test talks to it only through
 * that memory. Each region is fenced by guard bytes that are not in the map,
 * so a test can prove nothing outside guest memory was touched.
 */
#ifndef SDRV_SPLIT_H
#define SDRV_SPLIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vre_mem.h"
#include "vre_ring_layout.h"
#include "vre_vq.h"

#define SDRV_GPA0 0x100000ull /* GPA of region 0 */
#define SDRV_GUARD 4096       /* guard bytes before and after each region */

struct sdrv_region {
	uint8_t *alloc; /* guard, region, guard */
	uint8_t *hva;
	uint64_t gpa;
	size_t len;
};

struct sdrv_buf {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

struct sdrv {
	struct vre_mem_map map;
	struct sdrv_region reg[2];
	unsigned nreg;
	uint16_t size;
	struct vre_desc *desc;
	struct vre_avail *avail;
	struct vre_used_ring *used;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint64_t heap, heap_end; /* bump allocator in region 0 (GPA) */
	/* Driver state. */
	uint16_t free_head, num_free;
	uint16_t avail_shadow; /* next avail->idx to publish */
	uint16_t last_used;    /* next used entry to read */
	uint16_t *chain_ndesc; /* descriptors a head's chain holds, 0 = free */
	uint64_t *token;       /* caller's cookie per head */
	uint32_t *wlen;        /* writable bytes per head */
	/* VIRTIO_F_IN_ORDER (sdrv_set_in_order) */
	bool in_order;
	bool no_batch;         /* in order: every chain must have its own entry */
	uint16_t next_desc;    /* where the next chain's descriptors start */
	uint16_t oldest;       /* head of the oldest chain in flight */
	uint16_t batch_left;   /* chains of the batch being handed out */
	uint16_t batch_last;   /* the head the batch's used entry named */
	uint32_t batch_len;    /* that entry's len */
};

/* Rings for a queue of size entries at the start of region 0, followed by
 * heap bytes; region 1 (len1 > 0) follows region 0 in GPA directly but lives
 * in a separate allocation. */
struct sdrv *sdrv_new(uint16_t size, size_t heap, size_t len1);
void sdrv_free(struct sdrv *d);
void sdrv_params(const struct sdrv *d, struct vre_vq_params *p, bool event_idx,
		 bool indirect);

/* GPA of len fresh bytes (16-aligned) in region 0's heap. */
uint64_t sdrv_alloc(struct sdrv *d, size_t len);
/* GPA where region 0 ends (region 1 starts). */
uint64_t sdrv_end0(const struct sdrv *d);
/* Copies to / from guest memory across regions; aborts outside memory. */
void sdrv_write(struct sdrv *d, uint64_t gpa, const void *src, size_t len);
void sdrv_read(struct sdrv *d, uint64_t gpa, void *dst, size_t len);
void sdrv_fill(struct sdrv *d, uint64_t gpa, uint8_t byte, size_t len);
/* True when every guard byte still holds its pattern. */
bool sdrv_guards_ok(const struct sdrv *d);

/*
 * Makes the driver behave as one that negotiated VIRTIO_F_IN_ORDER, like
 * DPDK's virtio PMD in its in-order paths: descriptors are used in ring
 * order (a chain at table offset x continues at x + 1, wrapping), and used
 * entries are read as in-order batches: the entry at the next used position
 * names the head of the batch's last chain, every chain from the oldest in
 * flight up to that one is used (those before it taken as used completely:
 * len = their writable bytes), and the next entry is read at the position
 * after the batch. sdrv_get_used returns -EPROTO for an entry no in-order
 * device can write: an id that is not a chain in flight within the entries
 * published, or, with no_batch (a driver that reads every length, as DPDK's
 * in-order RX path does), any id but the oldest chain's. Call on a fresh
 * driver, before the first sdrv_add.
 */
void sdrv_set_in_order(struct sdrv *d, bool no_batch);

/* Adds a direct chain from the free list; returns its head, or -ENOSPC.
 * Not visible to the device until sdrv_kick. */
int sdrv_add(struct sdrv *d, const struct sdrv_buf *bufs, unsigned n, uint64_t token);
/* Adds one INDIRECT descriptor whose table (n entries) is written at
 * table_gpa (which may span regions). */
int sdrv_add_indirect(struct sdrv *d, const struct sdrv_buf *bufs, unsigned n,
		      uint64_t table_gpa, uint64_t token);
/* Puts head into the avail ring without any descriptor bookkeeping (for
 * hostile tests that build the table by hand). */
void sdrv_post_raw(struct sdrv *d, uint16_t head);
/* Publishes everything added so far (release store of avail->idx). */
void sdrv_kick(struct sdrv *d);

/* Takes the next used entry: 1 and id, len and token, 0 when none, -EPROTO
 * when the device returned a head that is not in flight (a double or bogus
 * completion), -ERANGE for an id >= size. The chain returns to the free list.
 * In order: the next chain of the current batch (see sdrv_set_in_order). */
int sdrv_get_used(struct sdrv *d, uint16_t *id, uint32_t *len, uint64_t *token);

static inline uint16_t *sdrv_used_event(struct sdrv *d)
{
	return &d->avail->ring[d->size];
}

static inline uint16_t *sdrv_avail_event(struct sdrv *d)
{
	return (uint16_t *)&d->used->ring[d->size];
}

#endif
