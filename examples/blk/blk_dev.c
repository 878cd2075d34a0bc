/* SPDX-License-Identifier: BSD-3-Clause */
/* virtio-blk device model over control and the worker pool. */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blk_dev.h"
#include "vre_log.h"

#define BIT64(n) (1ull << (n))

/* virtio and vhost-user bit numbers (see the virtio and vhost-user specs). */
#define F_INDIRECT_DESC 28
#define F_EVENT_IDX 29
#define F_VERSION_1 32
#define F_RING_PACKED 34
#define PF_MQ 0
#define PF_LOG_SHMFD 1
#define PF_REPLY_ACK 3
#define PF_CONFIG 9
#define PF_INFLIGHT_SHMFD 12
#define PF_RESET_DEVICE 13
#define PF_CONFIGURE_MEM_SLOTS 15
#define PF_STATUS 16

/* Config space offsets (struct virtio_blk_config). */
#define CFG_CAPACITY 0
#define CFG_SEG_MAX 12
#define CFG_BLK_SIZE 20
#define CFG_NUM_QUEUES 34
#define CFG_MAX_DISCARD_SECTORS 36
#define CFG_MAX_DISCARD_SEG 40
#define CFG_DISCARD_ALIGN 44
#define CFG_MAX_WZ_SECTORS 48
#define CFG_MAX_WZ_SEG 52
#define CFG_WZ_MAY_UNMAP 56

struct blk_q {
	struct vre_blk_queue eng;
	struct vre_poll_item item;
	struct vre_queue *q;
	struct vre_blk_dev *b;
	bool active;
	char name[24];
};

struct vre_blk_dev {
	struct vre_blk_disk disk;
	struct vre_device_ops ops;
	struct vre_worker_pool *pool;
	uint32_t test_delay_us;
	uint32_t drain_grace_ms;
	uint16_t num_queues;
	uint8_t config[VRE_BLK_CONFIG_SIZE];
	struct blk_q qs[VRE_BLK_MAX_QUEUES];
};

static void put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static void build_config(struct vre_blk_dev *b)
{
	uint64_t cap = htole64(b->disk.geom.capacity);
	uint16_t nq = htole16(b->num_queues);

	memset(b->config, 0, sizeof(b->config));
	memcpy(b->config + CFG_CAPACITY, &cap, 8);
	put32(b->config + CFG_SEG_MAX, VRE_BLK_SEG_MAX);
	put32(b->config + CFG_BLK_SIZE, VRE_BLK_SECTOR_SIZE);
	memcpy(b->config + CFG_NUM_QUEUES, &nq, 2);
	put32(b->config + CFG_MAX_DISCARD_SECTORS, b->disk.geom.max_discard_sectors);
	put32(b->config + CFG_MAX_DISCARD_SEG, b->disk.geom.max_dwz_seg);
	put32(b->config + CFG_DISCARD_ALIGN, 1);
	put32(b->config + CFG_MAX_WZ_SECTORS, b->disk.geom.max_wz_sectors);
	put32(b->config + CFG_MAX_WZ_SEG, b->disk.geom.max_dwz_seg);
	b->config[CFG_WZ_MAY_UNMAP] = 1;
}

int vre_blk_dev_get_config(struct vre_blk_dev *b, uint32_t offset, void *buf, uint32_t len)
{
	if (offset > sizeof(b->config) || len > sizeof(b->config) - offset)
		return -EINVAL;
	memcpy(buf, b->config + offset, len);
	return 0;
}

static int get_config(void *ctx, uint32_t offset, void *buf, uint32_t len)
{
	return vre_blk_dev_get_config(ctx, offset, buf, len);
}

/* Nothing in this config space is writable (no CONFIG_WCE offered). */
static int set_config(void *ctx, uint32_t offset, const void *buf, uint32_t len)
{
	(void)ctx;
	(void)buf;
	VRE_WARN("blk", "refused SET_CONFIG of %u bytes at %u: read-only config", len, offset);
	return -EPERM;
}

/* ---- poll item callbacks: run on the worker that owns the queue ---- */

static int item_poll(struct vre_poll_item *it)
{
	struct blk_q *bq = it->ctx;
	int n = vre_blk_queue_poll(&bq->eng);

	return n < 0 ? 0 : n;
}

static bool item_arm(struct vre_poll_item *it)
{
	struct blk_q *bq = it->ctx;

	return vre_blk_queue_arm(&bq->eng);
}

static void item_disarm(struct vre_poll_item *it)
{
	struct blk_q *bq = it->ctx;

	vre_blk_queue_disarm(&bq->eng);
}

static void notify(void *arg)
{
	vre_queue_notify(arg);
}

/* ---- control callbacks ---- */

static int queue_start(void *ctx, struct vre_queue *q)
{
	struct vre_blk_dev *b = ctx;
	struct blk_q *bq;
	int r;

	if (q->index >= b->num_queues)
		return -EINVAL;
	bq = &b->qs[q->index];
	if (bq->active)
		return -EBUSY;
	r = vre_blk_queue_init(&bq->eng, &q->vq, &b->disk, 0, notify, q);
	if (r < 0) {
		VRE_ERR("blk", "queue %u: cannot set up io_uring: %s", q->index, strerror(-r));
		return r;
	}
	vre_blk_queue_set_test_delay(&bq->eng, b->test_delay_us);
	memset(&bq->item, 0, sizeof(bq->item));
	bq->item.poll = item_poll;
	/* Without a kick fd nothing would wake a sleeping worker. */
	bq->item.arm = q->kick_fd >= 0 ? item_arm : NULL;
	bq->item.disarm = item_disarm;
	bq->item.wake_fd = q->kick_fd;
	if (q->kick_fd >= 0) {
		/* Kicks and I/O completions both wake the worker, so it may
		 * sleep while a slow disk works. */
		r = vre_blk_queue_wake_fd(&bq->eng, q->kick_fd);
		if (r >= 0)
			bq->item.wake_fd = r;
		else
			VRE_WARN("blk", "queue %u: no completion wake-up (%s): polling while I/O runs",
				 q->index, strerror(-r));
	}
	bq->item.ctx = bq;
	snprintf(bq->name, sizeof(bq->name), "blk-q%u", q->index);
	bq->item.name = bq->name;
	bq->q = q;
	bq->b = b;
	r = vre_worker_add(b->pool->w[q->index % b->pool->n], &bq->item);
	if (r < 0) {
		vre_blk_queue_fini(&bq->eng);
		return r;
	}
	bq->active = true;
	q->dp = bq;
	return 0;
}

/* Takes the queue off its worker, then finishes every request in flight on
 * this thread: control unmaps guest memory after we return, and the kernel
 * may still be writing into it. The drain waits out a grace period, then
 * cancels, then waits for the kernel however long it takes: never an unmap
 * with I/O in flight.
 *
 * This holds the control thread while I/O drains. The choice: vre-blk
 * serves one device per process (one control thread per device), so no
 * other device waits on it; the wait is bounded by the grace period plus
 * what the disk needs to finish requests it already has (a cancel ends
 * every request that is still waiting). The frontend cannot stretch it
 * beyond that: it only decides when to ask. A server with several blk
 * devices would want the queue to stay stopped while a draining thread
 * waits; control's quiesce has no such asynchronous stop today. */
static void queue_stop(void *ctx, struct vre_queue *q)
{
	struct vre_blk_dev *b = ctx;
	struct blk_q *bq;
	int cancelled;

	if (q->index >= b->num_queues)
		return;
	bq = &b->qs[q->index];
	if (!bq->active)
		return;
	vre_worker_remove(&bq->item);
	cancelled = vre_blk_queue_drain(&bq->eng, (int)b->drain_grace_ms);
	VRE_INFO("blk", "queue %u stopped: %llu requests, %llu errors, %d cancelled", q->index,
		 (unsigned long long)bq->eng.stats.completed,
		 (unsigned long long)bq->eng.stats.errors, cancelled);
	vre_blk_queue_fini(&bq->eng);
	bq->active = false;
	q->dp = NULL;
}

static uint64_t features_for(bool readonly)
{
	uint64_t f = BIT64(F_VERSION_1) | BIT64(F_RING_PACKED) | BIT64(F_EVENT_IDX) |
		     BIT64(F_INDIRECT_DESC) | BIT64(VIRTIO_BLK_F_SEG_MAX) |
		     BIT64(VIRTIO_BLK_F_BLK_SIZE) | BIT64(VIRTIO_BLK_F_FLUSH) |
		     BIT64(VIRTIO_BLK_F_MQ) | BIT64(VIRTIO_BLK_F_DISCARD) |
		     BIT64(VIRTIO_BLK_F_WRITE_ZEROES);

	if (readonly)
		f |= BIT64(VIRTIO_BLK_F_RO);
	return f;
}

int vre_blk_dev_create(const struct vre_blk_dev_config *cfg, struct vre_blk_dev **out)
{
	struct vre_blk_dev *b;

	*out = NULL;
	if (cfg->size < VRE_BLK_SECTOR_SIZE || cfg->num_queues == 0 ||
	    cfg->num_queues > VRE_BLK_MAX_QUEUES || !cfg->pool || cfg->pool->n == 0)
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->disk.fd = cfg->fd;
	b->disk.dfd = cfg->direct ? cfg->direct_fd : -1;
	b->disk.geom.capacity = cfg->size >> VRE_BLK_SECTOR_SHIFT;
	b->disk.geom.readonly = cfg->readonly;
	b->disk.geom.max_discard_sectors = VRE_BLK_MAX_DISCARD_SECTORS;
	b->disk.geom.max_wz_sectors = VRE_BLK_MAX_DISCARD_SECTORS;
	b->disk.geom.max_dwz_seg = VRE_BLK_MAX_DWZ_SEG;
	if (cfg->serial)
		memcpy(b->disk.serial, cfg->serial, strnlen(cfg->serial, VRE_BLK_ID_BYTES));
	b->num_queues = cfg->num_queues;
	b->pool = cfg->pool;
	b->test_delay_us = cfg->test_delay_us;
	b->drain_grace_ms = cfg->drain_grace_ms ? cfg->drain_grace_ms : VRE_BLK_DRAIN_GRACE_MS;
	build_config(b);

	b->ops.name = "virtio-blk";
	b->ops.features = features_for(cfg->readonly);
	/* LOG_SHMFD: blk_queue.c marks the data and status bytes it writes,
	 * so control may offer LOG_ALL (live migration) */
	b->ops.protocol_features = BIT64(PF_MQ) | BIT64(PF_LOG_SHMFD) |
				   BIT64(PF_REPLY_ACK) | BIT64(PF_CONFIG) |
				   BIT64(PF_INFLIGHT_SHMFD) | BIT64(PF_RESET_DEVICE) |
				   BIT64(PF_CONFIGURE_MEM_SLOTS) | BIT64(PF_STATUS);
	if (cfg->no_inflight)
		b->ops.protocol_features &= ~BIT64(PF_INFLIGHT_SHMFD);
	b->ops.max_queues = cfg->num_queues;
	b->ops.config_size = VRE_BLK_CONFIG_SIZE;
	b->ops.get_config = get_config;
	b->ops.set_config = set_config;
	b->ops.queue_start = queue_start;
	b->ops.queue_stop = queue_stop;
	*out = b;
	return 0;
}

void vre_blk_dev_destroy(struct vre_blk_dev *b)
{
	if (!b)
		return;
	for (unsigned i = 0; i < b->num_queues; i++)
		if (b->qs[i].active)
			VRE_ERR("blk", "queue %u still running at destroy", i);
	free(b);
}

const struct vre_device_ops *vre_blk_dev_ops(const struct vre_blk_dev *b)
{
	return &b->ops;
}
