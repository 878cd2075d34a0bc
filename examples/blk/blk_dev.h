/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The virtio-blk device model: the ops table control calls (features,
 * config space, queue start/stop) and the glue that puts each running queue
 * on a pinned worker as a poll item.
 */
#ifndef VRE_BLK_DEV_H
#define VRE_BLK_DEV_H

#include <stdint.h>

#include "blk_queue.h"
#include "vre_control.h"
#include "vre_worker.h"

#define VRE_BLK_MAX_QUEUES 64
/* Bytes of struct virtio_blk_config up to write_zeroes_may_unmap and its
 * padding: what QEMU asks for when DISCARD and WRITE_ZEROES are offered. */
#define VRE_BLK_CONFIG_SIZE 60
/* Data segments per request the driver may use (offered as seg_max). */
#define VRE_BLK_SEG_MAX 126
#define VRE_BLK_MAX_DISCARD_SECTORS (1u << 18)

struct vre_blk_dev;

struct vre_blk_dev_config {
	int fd;              /* the image, opened O_RDWR (O_RDONLY if readonly) */
	bool direct;         /* direct_fd is the image opened with O_DIRECT too */
	int direct_fd;
	uint64_t size;       /* bytes; capacity is size / 512 */
	bool readonly;
	uint16_t num_queues; /* 1..VRE_BLK_MAX_QUEUES */
	const char *serial;  /* GET_ID string, at most 20 bytes used */
	struct vre_worker_pool *pool; /* queue i runs on worker i % pool->n */
	bool no_inflight;    /* leave INFLIGHT_SHMFD out of the protocol features */
	uint32_t test_delay_us; /* vre_blk_queue_set_test_delay on every queue */
	/* Stopping a queue (memory table change, GET_VRING_BASE, reset,
	 * disconnect) waits this long for I/O in flight, then cancels what is
	 * left and waits for the kernel to let go of guest memory
	 * (vre_blk_queue_drain). 0: VRE_BLK_DRAIN_GRACE_MS. */
	uint32_t drain_grace_ms;
};
#define VRE_BLK_DRAIN_GRACE_MS 5000

/* -EINVAL for a bad config (size below one sector, queue count), -ENOMEM. */
int vre_blk_dev_create(const struct vre_blk_dev_config *cfg, struct vre_blk_dev **out);
/* Every queue must be stopped (destroy the control device first). */
void vre_blk_dev_destroy(struct vre_blk_dev *b);
const struct vre_device_ops *vre_blk_dev_ops(const struct vre_blk_dev *b);
/* The 60-byte config space as the driver reads it (for tests). */
int vre_blk_dev_get_config(struct vre_blk_dev *b, uint32_t offset, void *buf, uint32_t len);

#endif
