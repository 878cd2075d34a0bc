/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One engine behind the split, packed and inflight harnesses: the input is
 * a guest memory layout, ring placement, a script of driver and device
 * actions and a memory image; the engine plays the driver (publishing
 * chains, moving indexes, scribbling on rings), runs the device API, and
 * checks after every step what the device promised (see ring_engine.c).
 *
 * Input: [mem layout][cfg u8][qsize u8][3 x (region u8, offset u16)]
 *        [base u32][script length u16][script][inflight image][memory image]
 */
#ifndef VRE_FUZZ_RING_ENGINE_H
#define VRE_FUZZ_RING_ENGINE_H

#include <stddef.h>
#include <stdint.h>

enum fz_ring_mode {
	FZ_RING_SPLIT,
	FZ_RING_PACKED,
	FZ_RING_INFLIGHT, /* split or packed (cfg bit 3), inflight attached */
};

/* Script opcodes (one byte, then the op's arguments). */
enum fz_op {
	OP_FETCH, OP_COMPLETE, OP_NEEDS_NOTIFY, OP_NOTIFY_ENABLE, OP_NOTIFY_DISABLE,
	OP_PENDING, OP_POKE16, OP_DESC, OP_ADD, OP_AVAIL_IDX, OP_SET_BASE,
	OP_BOGUS_COMPLETE, OP_EVENT, OP_CRASH, OP_POKE_INFLIGHT, OP_TABLE,
	OP_COUNT
};

#define FZ_CFG_EVENT_IDX 1u
#define FZ_CFG_INDIRECT  2u
#define FZ_CFG_RAW_INFLIGHT 4u
#define FZ_CFG_PACKED    8u

int fz_ring_run(const uint8_t *data, size_t size, enum fz_ring_mode mode);

#endif
