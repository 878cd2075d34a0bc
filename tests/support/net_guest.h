/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The guest side for the net tests, split or packed behind one interface:
 * one guest memory region fenced by guard bytes outside the map, a ring at
 * its start, a bump heap for buffers, chains added the way a guest adds
 * them and used entries read back with a check that every id returned was
 * in flight (no double or bogus completion). The rings are played by the
 * ring helpers' own test drivers: vdrv_split (sdrv_*) for split,
 * vdrv_packed (pdrv_*) for packed; this file adds guest memory
 * with guards, buffer ids and tokens. The device side under test is the real vring code, reached
 * through a struct vre_queue as control would set it up, with an eventfd as
 * call fd to count notifications.
 */
#ifndef NET_GUEST_H
#define NET_GUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "vre_control.h"

#define GUEST_GPA0 0x100000ull
#define GUEST_GUARD 4096      /* guard bytes around packed guest memory */
#define GUEST_GUARD_BYTE 0xa5

struct gbuf {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

struct sdrv; /* split test driver (vdrv_split.h) */
struct pdrv; /* packed test driver (vdrv_packed.h) */

struct guest {
	bool packed;
	uint16_t size;
	struct sdrv *vd;       /* split: the split ring's test driver */
	struct pdrv *pd;       /* packed: the packed ring's test driver */
	uint8_t *alloc;        /* packed: guard, region, guard */
	uint8_t *mem;          /* region 0 */
	size_t mem_len;
	uint64_t heap;         /* packed: next free GPA */
	struct vre_mem_map map;
	struct vre_queue q;    /* the device side, as control prepares it */
	/* packed */
	struct vre_packed_desc *pdesc;
	struct vre_packed_event *drv_ev, *dev_ev;
	uint16_t *ndesc;       /* per id: descriptors of the chain, 0 = not in flight */
	uint64_t *token;
	uint16_t *id_free;     /* stack of free buffer ids */
	uint16_t nid_free;
};

/* The packed half (net_guest_packed.c). */
void guest_packed_new(struct guest *g, size_t heap, struct vre_vq_params *p);
void guest_packed_free(struct guest *g);
int guest_packed_add(struct guest *g, const struct gbuf *bufs, unsigned n, uint64_t token);
int guest_packed_get_used(struct guest *g, uint16_t *id, uint32_t *len, uint64_t *token);

/* A guest with a queue of size entries and heap bytes for buffers; the
 * device queue is initialised (event_idx as given, indirect off) with
 * queue index qindex and an eventfd as call fd. */
struct guest *guest_new(bool packed, uint16_t size, size_t heap, bool event_idx,
			uint16_t qindex);
void guest_free(struct guest *g);
/* VIRTIO_F_IN_ORDER negotiated: the device queue is set up for it and the
 * driver checks in-order completions (sdrv_set_in_order /
 * pdrv_set_in_order; no_batch: every chain must have its own used entry,
 * as a driver that reads each length needs). Before the first guest_add. */
void guest_set_in_order(struct guest *g, bool no_batch);

uint64_t guest_alloc(struct guest *g, size_t len);
void *guest_ptr(struct guest *g, uint64_t gpa);

/* Adds a chain, visible to the device at once. Returns its id or -ENOSPC. */
int guest_add(struct guest *g, const struct gbuf *bufs, unsigned n, uint64_t token);
/* 1 and the entry, 0 when none; aborts the test on a bogus id. */
int guest_get_used(struct guest *g, uint16_t *id, uint32_t *len, uint64_t *token);
/* Notifications the device sent since the last call. */
uint64_t guest_calls(struct guest *g);
/* Chains in flight (added, not returned). */
unsigned guest_inflight(const struct guest *g);
/* True when no byte just outside guest memory was touched. */
bool guest_guards_ok(const struct guest *g);

#endif
