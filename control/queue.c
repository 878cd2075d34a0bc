/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Queue life cycle: when a queue is handed to the data plane (queue_start)
 * and taken back (queue_stop), and turning the frontend's ring addresses
 * into checked host pointers for vring.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"

bool ctl_has_pf(const struct vre_dev *dev, unsigned bit)
{
	/* In force from SET_PROTOCOL_FEATURES on: QEMU uses need_reply
	 * before it sends SET_FEATURES. */
	return dev->protocol_features & BIT64(bit);
}

static bool should_run(const struct vre_dev *dev, const struct ctl_queue *cq)
{
	return cq->q.started && cq->q.enabled && dev->mem &&
	       dev->mem->nregions && !cq->failed;
}

void ctl_queue_stop(struct vre_dev *dev, struct ctl_queue *cq)
{
	if (!cq->q.running)
		return;
	dev->ops->queue_stop(dev->ctx, &cq->q);
	cq->q.running = false;
}

/* Quiesce step 1: nothing of this device runs after this returns. */
void ctl_queues_pause(struct vre_dev *dev)
{
	for (uint16_t i = 0; i < dev->ops->max_queues; i++) {
		struct ctl_queue *cq = &dev->queues[i];

		if (cq->q.running) {
			ctl_queue_stop(dev, cq);
			cq->paused = true;
		}
	}
}

static void close_fd(int *fd)
{
	ctl_fd_close(*fd);
	*fd = -1;
}

void ctl_queue_pause_one(struct vre_dev *dev, uint32_t index)
{
	if (index < dev->ops->max_queues && dev->queues[index].q.running) {
		ctl_queue_stop(dev, &dev->queues[index]);
		dev->queues[index].paused = true;
	}
}

/* Back to idle: the ring must be configured again before it runs. */
void ctl_queue_reset(struct ctl_queue *cq)
{
	if (cq->vq_ready)
		vre_vq_fini(&cq->q.vq);
	cq->vq_ready = false;
	cq->q.started = false;
	cq->q.enabled = false;
	cq->failed = false;
	cq->paused = false;
	cq->num = 0;
	cq->addr_set = false;
	cq->base = 0;
	close_fd(&cq->q.kick_fd);
	close_fd(&cq->q.call_fd);
	close_fd(&cq->q.err_fd);
	cq->q.call_blocked = false;
}

/* Translates the three ring parts with their exact sizes for this queue
 * size; each must lie inside one region and be aligned as the spec says. */
static int ring_params(struct vre_dev *dev, struct ctl_queue *cq,
		       struct vre_vq_params *p)
{
	bool packed = dev->features & BIT64(VHU_F_RING_PACKED);
	uint32_t n = cq->num;
	uint64_t dlen, alen, ulen, dal, aal, ual;

	if (packed) {
		dlen = vre_packed_desc_bytes(n);
		alen = ulen = VRE_PACKED_EVENT_BYTES;
		dal = 16; aal = 4; ual = 4;
	} else {
		dlen = vre_split_desc_bytes(n);
		alen = vre_split_avail_bytes(n);
		ulen = vre_split_used_bytes(n);
		dal = 16; aal = 2; ual = 4;
	}
	if ((cq->addr.desc & (dal - 1)) || (cq->addr.avail & (aal - 1)) ||
	    (cq->addr.used & (ual - 1))) {
		CTL_ERR(dev, "queue %u: misaligned ring address", cq->q.index);
		return -EINVAL;
	}
	p->size = (uint16_t)n;
	p->packed = packed;
	p->event_idx = dev->features & BIT64(VHU_F_EVENT_IDX);
	p->indirect = dev->features & BIT64(VHU_F_INDIRECT_DESC);
	p->in_order = dev->features & BIT64(VHU_F_IN_ORDER);
	p->mem = dev->mem;
	p->desc = vre_mem_uva_ptr(dev->mem, cq->addr.desc, dlen);
	p->driver = vre_mem_uva_ptr(dev->mem, cq->addr.avail, alen);
	p->device = vre_mem_uva_ptr(dev->mem, cq->addr.used, ulen);
	if (!p->desc || !p->driver || !p->device) {
		CTL_ERR(dev, "queue %u: ring (desc 0x%llx avail 0x%llx used 0x%llx, size %u) not inside guest memory",
			cq->q.index, (unsigned long long)cq->addr.desc,
			(unsigned long long)cq->addr.avail, (unsigned long long)cq->addr.used, n);
		return -EFAULT;
	}
	return 0;
}

/* vre_vq_init + base + inflight, the first time the queue runs after it
 * was started. */
static int vq_setup(struct vre_dev *dev, struct ctl_queue *cq,
		    const struct vre_vq_params *p)
{
	void *region;
	size_t len;
	int r = vre_vq_init(&cq->q.vq, p);

	if (r < 0)
		return r;
	r = vre_vq_set_base(&cq->q.vq, cq->base);
	if (r < 0)
		goto fail;
	r = ctl_inflight_slice(dev, cq->q.index, p->packed, &region, &len);
	if (r == 0) {
		r = vre_vq_inflight_attach(&cq->q.vq, region, len, dev->features);
		if (r < 0)
			goto fail;
		if (r > 0)
			CTL_LOG(dev, VRE_LOG_INFO, "queue %u: %d requests to resubmit",
				 cq->q.index, r);
	} else if (r != -ENOENT) {
		goto fail;
	} else if (!p->packed) {
		uint16_t given = (uint16_t)cq->base;

		if (vre_vq_resync_to_used(&cq->q.vq) > 0)
			CTL_WARN(dev, "queue %u: base %u but the ring's used index is %u: resuming from the used index (chains in flight are taken again)",
				 cq->q.index, given, cq->q.vq.last_avail_idx);
		else if (given != cq->q.vq.last_used_idx)
			CTL_WARN(dev, "queue %u: base %u is %u ahead of the ring's used index: those chains were taken and are not taken again (no inflight region)",
				 cq->q.index, given,
				 (uint16_t)(given - cq->q.vq.last_used_idx));
	}
	return 0;
fail:
	vre_vq_fini(&cq->q.vq);
	return r;
}

static int queue_run(struct vre_dev *dev, struct ctl_queue *cq)
{
	struct vre_vq_params p;
	int r = ring_params(dev, cq, &p);

	if (r == 0)
		r = cq->vq_ready ? vre_vq_rebind(&cq->q.vq, &p) : vq_setup(dev, cq, &p);
	if (r < 0) {
		CTL_ERR(dev, "queue %u: ring setup failed: %s", cq->q.index, strerror(-r));
		cq->failed = true;
		return r;
	}
	cq->vq_ready = true;
	ctl_log_apply(dev, cq);
	r = dev->ops->queue_start(dev->ctx, &cq->q);
	if (r < 0) {
		CTL_ERR(dev, "queue %u: the device refused to start it: %s",
			cq->q.index, strerror(-r));
		cq->failed = true;
		return r;
	}
	cq->q.running = true;
	return 0;
}

/* Quiesce step 3 (and the end of every request): each queue runs exactly
 * when it should. */
void ctl_queues_reconcile(struct vre_dev *dev)
{
	for (uint16_t i = 0; i < dev->ops->max_queues; i++) {
		struct ctl_queue *cq = &dev->queues[i];

		cq->paused = false;
		if (cq->q.running && !should_run(dev, cq))
			ctl_queue_stop(dev, cq);
		else if (!cq->q.running && should_run(dev, cq))
			queue_run(dev, cq);
	}
}
