/* SPDX-License-Identifier: BSD-3-Clause */
/* What the packed ring (packed.c) and its inflight recovery
 * (packed_inflight.c) share: guest-memory accessors and the slot patterns. */
#ifndef PACKED_INTERNAL_H
#define PACKED_INTERNAL_H

#include "vring_internal.h"

#define F_AVAIL VRE_PACKED_DESC_F_AVAIL
#define F_USED  VRE_PACKED_DESC_F_USED

/* Guest-shared fields are accessed with explicit atomics: each is read once
 * (the compiler may not re-read or tear it) and the stores keep their order
 * where recovery or the driver depends on it. */
static inline uint16_t ld16(const uint16_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline uint16_t ld16_acq(const uint16_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline uint32_t ld32(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline uint64_t ld64(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline uint8_t ld8(const uint8_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void st16(uint16_t *p, uint16_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline void st16_rel(uint16_t *p, uint16_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline void st8_rel(uint8_t *p, uint8_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

static inline bool desc_avail(uint16_t flags, bool wrap)
{
	return ((flags & F_AVAIL) != 0) == wrap && ((flags & F_USED) != 0) != wrap;
}

static inline bool desc_used(uint16_t flags, bool wrap)
{
	return ((flags & F_AVAIL) != 0) == wrap && ((flags & F_USED) != 0) == wrap;
}

static inline void pos_step(uint16_t *idx, bool *wrap, uint32_t n, uint16_t size)
{
	uint32_t v = (uint32_t)*idx + n; /* n <= size, so one lap at most */

	if (v >= size) {
		v -= size;
		*wrap = !*wrap;
	}
	*idx = (uint16_t)v;
}

#endif
