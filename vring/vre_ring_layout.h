/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Ring layouts shared by the device (vring/) and the test driver (tests/).
 * Little-endian hosts only: VRE targets x86-64 and arm64, where virtio 1.x
 * fields are native. Numbers from the virtio 1.1+ spec.
 */
#ifndef VRE_RING_LAYOUT_H
#define VRE_RING_LAYOUT_H

#include <stdint.h>

#define VRE_DESC_F_NEXT     1u
#define VRE_DESC_F_WRITE    2u
#define VRE_DESC_F_INDIRECT 4u

#define VRE_PACKED_DESC_F_AVAIL (1u << 7)
#define VRE_PACKED_DESC_F_USED  (1u << 15)

#define VRE_AVAIL_F_NO_INTERRUPT 1u
#define VRE_USED_F_NO_NOTIFY     1u

#define VRE_PACKED_EVENT_ENABLE  0u
#define VRE_PACKED_EVENT_DISABLE 1u
#define VRE_PACKED_EVENT_DESC    2u
#define VRE_PACKED_EVENT_WRAP    (1u << 15)

/* Largest queue the spec allows for either ring type. */
#define VRE_VQ_MAX_SIZE 32768u

struct vre_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vre_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[]; /* size entries, then u16 used_event */
};

struct vre_used_elem {
	uint32_t id;
	uint32_t len;
};

struct vre_used_ring {
	uint16_t flags;
	uint16_t idx;
	struct vre_used_elem ring[]; /* size entries, then u16 avail_event */
};

struct vre_packed_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t id;
	uint16_t flags;
};

struct vre_packed_event {
	uint16_t off_wrap;
	uint16_t flags;
};

/* Bytes each split ring part occupies for a queue of size n, event fields
 * included (they exist in memory whether or not EVENT_IDX is negotiated). */
static inline uint64_t vre_split_desc_bytes(uint32_t n) { return 16ull * n; }
static inline uint64_t vre_split_avail_bytes(uint32_t n) { return 6ull + 2ull * n; }
static inline uint64_t vre_split_used_bytes(uint32_t n) { return 6ull + 8ull * n; }
static inline uint64_t vre_packed_desc_bytes(uint32_t n) { return 16ull * n; }
#define VRE_PACKED_EVENT_BYTES 4ull

/* The spec's event-index rule: notify when new_idx has moved past event_idx
 * since old_idx, all modulo 2^16. */
static inline int vre_need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event_idx - 1) < (uint16_t)(new_idx - old_idx);
}

#endif
