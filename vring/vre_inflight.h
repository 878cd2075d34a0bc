/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Inflight I/O tracking regions, in the exact layout of the vhost-user spec
 * ("Inflight I/O tracking"), so a region written by one VRE process can be
 * read by the next one (and was allocated by whichever backend the frontend
 * first talked to). One region per queue; the frontend keeps the memfd.
 */
#ifndef VRE_INFLIGHT_H
#define VRE_INFLIGHT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VRE_INFLIGHT_VERSION 1
/* Per-queue regions are padded to this, as DPDK and QEMU's backends do. */
#define VRE_INFLIGHT_ALIGN 64

struct vre_inflight_split_desc {
	uint8_t inflight;
	uint8_t padding[5];
	uint16_t next;
	uint64_t counter;
};

struct vre_inflight_split {
	uint64_t features;
	uint16_t version;
	uint16_t desc_num;
	uint16_t last_batch_head;
	uint16_t used_idx;
	struct vre_inflight_split_desc desc[];
};

struct vre_inflight_packed_desc {
	uint8_t inflight;
	uint8_t padding;
	uint16_t next;
	uint16_t last;
	uint16_t num;
	uint64_t counter;
	uint16_t id;
	uint16_t flags;
	uint32_t len;
	uint64_t addr;
};

struct vre_inflight_packed {
	uint64_t features;
	uint16_t version;
	uint16_t desc_num;
	uint16_t free_head;
	uint16_t old_free_head;
	uint16_t used_idx;
	uint16_t old_used_idx;
	uint8_t used_wrap_counter;
	uint8_t old_used_wrap_counter;
	uint8_t padding[7];
	struct vre_inflight_packed_desc desc[];
};

_Static_assert(sizeof(struct vre_inflight_split_desc) == 16, "spec layout");
_Static_assert(sizeof(struct vre_inflight_split) == 16, "spec layout");
_Static_assert(sizeof(struct vre_inflight_packed_desc) == 32, "spec layout");
_Static_assert(sizeof(struct vre_inflight_packed) == 32, "spec layout");

/* Bytes of one queue's region for a queue of this size (padded). */
size_t vre_inflight_queue_bytes(uint16_t queue_size, bool packed);

#endif
