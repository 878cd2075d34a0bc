/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One handler per request. The dispatcher (msg_table.c) has already checked
 * the payload size, the fd count, the owner and the protocol feature the
 * request needs, and has quiesced the queues where the table says so; a
 * handler checks the request's own fields before it uses any of them. Fds a
 * handler keeps are set to -1 in msg->fds; the dispatcher closes the rest.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "handlers.h"

#define CTL_PF_IMPLEMENTED                                                     \
	(BIT64(VHU_PF_MQ) | BIT64(VHU_PF_LOG_SHMFD) | BIT64(VHU_PF_RARP) | BIT64(VHU_PF_REPLY_ACK) |     \
	 BIT64(VHU_PF_MTU) | BIT64(VHU_PF_BACKEND_REQ) | BIT64(VHU_PF_CONFIG) | \
	 BIT64(VHU_PF_INFLIGHT_SHMFD) | BIT64(VHU_PF_RESET_DEVICE) |           \
	 BIT64(VHU_PF_CONFIGURE_MEM_SLOTS) | BIT64(VHU_PF_STATUS))

uint64_t ctl_offered_protocol_features(const struct vre_dev *dev)
{
	const struct vre_device_ops *ops = dev->ops;
	uint64_t pf = CTL_PF_IMPLEMENTED;

	if (ops->protocol_features)
		pf &= ops->protocol_features;
	if (!ops->send_rarp)
		pf &= ~BIT64(VHU_PF_RARP);
	if (!ops->set_mtu)
		pf &= ~BIT64(VHU_PF_MTU);
	if (!ops->config_size || !ops->get_config)
		pf &= ~BIT64(VHU_PF_CONFIG);
	if (ops->max_queues < 2)
		pf &= ~BIT64(VHU_PF_MQ);
	return pf;
}

/* LOG_ALL is control's to offer, with LOG_SHMFD: the rings log their own
 * writes and a model that opts into LOG_SHMFD promises to log what it
 * writes into buffers (vre_vq_log_iov). QEMU blocks migration without it
 * ("vhost lacks feature mask"). */
uint64_t ctl_offered_features(const struct vre_dev *dev)
{
	uint64_t f = dev->ops->features | BIT64(VHU_F_PROTOCOL_FEATURES);

	if (ctl_offered_protocol_features(dev) & BIT64(VHU_PF_LOG_SHMFD))
		f |= BIT64(VHU_F_LOG_ALL);
	return f;
}

static void close_fd(int *fd)
{
	ctl_fd_close(*fd);
	*fd = -1;
}

/* Takes a queue index from the wire: the whole u32 is checked before it is
 * narrowed (a frontend sending 0x10000 must not reach queue 0). */
static struct ctl_queue *queue_at(struct vre_dev *dev, uint32_t index)
{
	if (index >= dev->ops->max_queues) {
		ctl_refuse(dev, -EINVAL, "queue %u, the device has %u", index,
			   dev->ops->max_queues);
		return NULL;
	}
	return &dev->queues[index];
}

static bool packed(const struct vre_dev *dev)
{
	return dev->features & BIT64(VHU_F_RING_PACKED);
}

void ctl_dev_reset_state(struct vre_dev *dev, bool keep_owner)
{
	ctl_queues_pause(dev);
	for (uint16_t i = 0; i < dev->ops->max_queues; i++)
		ctl_queue_reset(&dev->queues[i]);
	ctl_mem_free(dev);
	ctl_log_free(dev);
	dev->features = 0;
	dev->features_set = false;
	dev->status = 0;
	if (keep_owner)
		return;
	ctl_inflight_free(dev);
	close_fd(&dev->backend_req_fd);
	dev->owner = false;
	dev->protocol_features = 0;
}

int ctl_h_get_features(struct vre_dev *dev, struct vhu_msg *msg, struct ctl_reply *rep)
{
	(void)msg;
	rep->size = 8;
	rep->p.u64 = ctl_offered_features(dev);
	return 0;
}

int ctl_h_set_features(struct vre_dev *dev, struct vhu_msg *msg, struct ctl_reply *rep)
{
	uint64_t f = msg->p.u64, extra = f & ~ctl_offered_features(dev);
	int r;

	(void)rep;
	if (extra)
		return ctl_refuse(dev, -EINVAL, "features 0x%llx have bits never offered: 0x%llx",
				  (unsigned long long)f, (unsigned long long)extra);
	/* Only LOG_ALL may change under started queues (migration turns it
	 * on and off on a running device); the dispatcher quiesced them and
	 * each gets the log, or loses it, when it restarts. */
	for (uint16_t i = 0; i < dev->ops->max_queues; i++)
		if (dev->queues[i].q.started && (f ^ dev->features) & ~BIT64(VHU_F_LOG_ALL))
			return ctl_refuse(dev, -EBUSY, "features changed while queue %u is started", i);
	r = ctl_log_check_features(dev, f);
	if (r < 0)
		return r;
	if (dev->ops->set_features) {
		/* the model never sees LOG_ALL: it reads vq->log instead */
		r = dev->ops->set_features(dev->ctx, f & ~BIT64(VHU_F_LOG_ALL));
		if (r < 0)
			return ctl_refuse(dev, r, "the %s device refused features 0x%llx: %s",
					  dev->ops->name ? dev->ops->name : "", (unsigned long long)f,
					  strerror(-r));
	}
	if ((f ^ dev->features) & BIT64(VHU_F_LOG_ALL))
		VRE_INFO(CTL_ROOM, "%s: dirty logging %s", dev->path,
			 f & BIT64(VHU_F_LOG_ALL) ? "on" : "off");
	dev->features = f;
	dev->features_set = true;
	return 0;
}

int ctl_h_set_owner(struct vre_dev *dev, struct vhu_msg *msg, struct ctl_reply *rep)
{
	(void)msg;
	(void)rep;
	if (dev->owner)
		return ctl_refuse(dev, -EBUSY, "the frontend is the owner already");
	dev->owner = true;
	return 0;
}

/* RESET_OWNER (deprecated) and RESET_DEVICE: back to a device that has an
 * owner and its protocol features but no rings, memory or virtio features. */
int ctl_h_reset(struct vre_dev *dev, struct vhu_msg *msg, struct ctl_reply *rep)
{
	(void)msg;
	(void)rep;
	ctl_dev_reset_state(dev, true);
	if (dev->ops->disconnected)
		dev->ops->disconnected(dev->ctx);
	return 0;
}

int ctl_h_set_log_base(struct vre_dev *dev, struct vhu_msg *msg, struct ctl_reply *rep)
{
	int r = ctl_log_set_base(dev, msg);

	/* QEMU waits for a reply with LOG_SHMFD and reads no status from it
	 * (vhost_user_set_log_base); libvhost-user sends a u64. */
	rep->size = 8;
	rep->p.u64 = 0;
	return r;
}

int ctl_h_set_log_fd(struct vre_dev *dev, struct vhu_msg *msg, struct ctl_reply *rep)
{
	(void)rep;
	return ctl_log_set_fd(dev, msg);
}

int ctl_h_set_mem_table(struct vre_dev *dev, struct vhu_msg *msg, struct ctl_reply *rep)
{
	(void)rep;
	return ctl_mem_set_table(dev, msg);
}

int ctl_h_set_vring_num(struct vre_dev *dev, struct vhu_msg *msg, struct ctl_reply *rep)
{
	struct ctl_queue *cq = queue_at(dev, msg->p.state.index);
	uint32_t n = msg->p.state.num;

	(void)rep;
	if (!cq)
		return -EINVAL;
	if (cq->q.started)
		return ctl_refuse(dev, -EBUSY, "queue %u is started (GET_VRING_BASE stops it)",
				  cq->q.index);
	if (n == 0 || n > VRE_VQ_MAX_SIZE ||
	    (dev->features_set && !packed(dev) && (n & (n - 1))))
		return ctl_refuse(dev, -EINVAL, "queue %u: bad ring size %u", cq->q.index, n);
	cq->num = n;
	cq->failed = false;
	return 0;
}

int ctl_h_set_vring_addr(struct vre_dev *dev, struct vhu_msg *msg, struct ctl_reply *rep)
{
	const struct vhu_addr *a = &msg->p.addr;
	struct ctl_queue *cq = queue_at(dev, a->index);

	(void)rep;
	if (!cq)
		return -EINVAL;
	if (a->flags & ~VHU_ADDR_F_LOG)
		return ctl_refuse(dev, -EINVAL, "queue %u: unknown address flags 0x%x",
				  cq->q.index, a->flags);
	if (!dev->mem)
		return ctl_refuse(dev, -EINVAL, "queue %u: ring addresses before the memory table",
				  cq->q.index);
	/* The log address (the used ring's GPA) is only used to mark pages
	 * in the dirty log, clipped to the log's size; it is kept out of
	 * every translation. */
	cq->addr = *a;
	cq->addr_set = true;
	cq->failed = false;
	return 0;
}

/* Packed rings: QEMU sends the full encoding; DPDK's virtio-user sends only
 * the avail half (bits 16-31 zero, i.e. "used index 0, used wrap 0", which
 * is not a state a fresh ring can be in: wrap counters start at 1). When the
 * upper half is zero the used side is taken to equal the avail side, as
 * DPDK's own backend does; a ring restored with in-flight requests gets its
 * indexes from the inflight region instead. */
static uint32_t packed_base(uint32_t num)
{
	if ((num >> 16) == 0)
		num |= (num & 0xffff) << 16;
	return num;
}

int ctl_h_set_vring_base(struct vre_dev *dev, struct vhu_msg *msg, struct ctl_reply *rep)
{
	struct ctl_queue *cq = queue_at(dev, msg->p.state.index);
	uint32_t num = msg->p.state.num;

	(void)rep;
	if (!cq)
		return -EINVAL;
	if (cq->q.started)
		return ctl_refuse(dev, -EBUSY, "queue %u is started (GET_VRING_BASE stops it)",
				  cq->q.index);
	if (packed(dev)) {
		num = packed_base(num);
		/* Checked again by vre_vq_set_base when the ring starts (the
		 * size may still change before then). */
		if (cq->num && ((num & 0x7fff) >= cq->num || ((num >> 16) & 0x7fff) >= cq->num))
			return ctl_refuse(dev, -EINVAL, "queue %u: packed base 0x%x beyond size %u",
					  cq->q.index, num, cq->num);
	} else if (num > 0xffff) {
		return ctl_refuse(dev, -EINVAL, "queue %u: split base 0x%x beyond 16 bits",
				  cq->q.index, num);
	}
	cq->base = num;
	cq->failed = false;
	VRE_DEBUG(CTL_ROOM, "%s queue %u: base 0x%x", dev->path, cq->q.index, num);
	return 0;
}

int ctl_h_get_vring_base(struct vre_dev *dev, struct vhu_msg *msg, struct ctl_reply *rep)
{
	struct ctl_queue *cq = queue_at(dev, msg->p.state.index);

	if (!cq)
		return -EINVAL;
	/* The dispatcher stopped it already (quiesce); now it leaves started. */
	if (cq->vq_ready) {
		cq->base = vre_vq_get_base(&cq->q.vq);
		vre_vq_fini(&cq->q.vq);
		cq->vq_ready = false;
	}
	cq->q.started = false;
	cq->failed = false;
	close_fd(&cq->q.kick_fd);
	rep->size = sizeof(rep->p.state);
	rep->p.state.index = cq->q.index;
	rep->p.state.num = cq->base;
	VRE_DEBUG(CTL_ROOM, "%s queue %u: stopped at base 0x%x", dev->path, cq->q.index, cq->base);
	return 0;
}

/* SET_VRING_KICK / CALL / ERR: u64 with the index in bits 0-7 and bit 8 for
 * "no fd"; every other bit must be clear. The fd must be an eventfd: the
 * data plane writes call fds from a worker that serves other devices too,
 * and only an eventfd's writes can be kept from blocking (control/notify.c;
 * call and err fds are set to O_NONBLOCK here, and guarded there because
 * the frontend can clear the flag again). */
int ctl_h_set_vring_fd(struct vre_dev *dev, struct vhu_msg *msg, struct ctl_reply *rep)
{
	uint64_t v = msg->p.u64;
	bool nofd = v & VHU_VRING_NOFD;
	bool kick = msg->hdr.request == VHU_SET_VRING_KICK;
	struct ctl_queue *cq;
	int *slot;

	(void)rep;
	if (v & ~(uint64_t)(VHU_VRING_NOFD | VHU_VRING_IDX_MASK))
		return ctl_refuse(dev, -EINVAL, "unknown bits 0x%llx", (unsigned long long)v);
	cq = queue_at(dev, (uint32_t)(v & VHU_VRING_IDX_MASK));
	if (!cq)
		return -EINVAL;
	if (nofd != (msg->nfds == 0))
		return ctl_refuse(dev, -EINVAL, "queue %u: %u fds and no-fd bit %d", cq->q.index,
				  msg->nfds, nofd);
	if (!nofd && !ctl_fd_is_eventfd(msg->fds[0])) {
		char what[96];

		ctl_fd_name(msg->fds[0], what, sizeof(what));
		return ctl_refuse(dev, -EINVAL, "queue %u: fd is not an eventfd (%s)", cq->q.index,
				  what);
	}
	if (kick && (!cq->num || !cq->addr_set))
		return ctl_refuse(dev, -EINVAL, "queue %u: kick before size and addresses",
				  cq->q.index);
	slot = kick ? &cq->q.kick_fd :
	       msg->hdr.request == VHU_SET_VRING_CALL ? &cq->q.call_fd : &cq->q.err_fd;
	close_fd(slot);
	if (!nofd) {
		*slot = msg->fds[0];
		msg->fds[0] = -1;
		if (!kick)
			ctl_eventfd_nonblock(*slot);
	}
	if (msg->hdr.request == VHU_SET_VRING_CALL)
		__atomic_store_n(&cq->q.call_blocked, false, __ATOMIC_RELAXED);
	if (!kick)
		return 0;
	cq->q.started = true;
	cq->failed = false;
	if (!(dev->features & BIT64(VHU_F_PROTOCOL_FEATURES)))
		cq->q.enabled = true;
	return 0;
}

int ctl_h_get_protocol_features(struct vre_dev *dev, struct vhu_msg *msg,
				struct ctl_reply *rep)
{
	(void)msg;
	rep->size = 8;
	rep->p.u64 = ctl_offered_protocol_features(dev);
	return 0;
}

int ctl_h_set_protocol_features(struct vre_dev *dev, struct vhu_msg *msg,
				struct ctl_reply *rep)
{
	uint64_t pf = msg->p.u64, extra = pf & ~ctl_offered_protocol_features(dev);

	(void)rep;
	if (extra)
		return ctl_refuse(dev, -EINVAL, "protocol features have bits never offered: 0x%llx",
				  (unsigned long long)extra);
	dev->protocol_features = pf;
	return 0;
}

int ctl_h_get_queue_num(struct vre_dev *dev, struct vhu_msg *msg, struct ctl_reply *rep)
{
	(void)msg;
	rep->size = 8;
	rep->p.u64 = dev->ops->max_queues;
	return 0;
}

int ctl_h_set_vring_enable(struct vre_dev *dev, struct vhu_msg *msg, struct ctl_reply *rep)
{
	struct ctl_queue *cq = queue_at(dev, msg->p.state.index);

	(void)rep;
	if (!cq)
		return -EINVAL;
	if (msg->p.state.num > 1)
		return ctl_refuse(dev, -EINVAL, "queue %u: enable %u (0 or 1)", cq->q.index,
				  msg->p.state.num);
	cq->q.enabled = msg->p.state.num;
	return 0;
}

/* What a device model's refusal says, when it gave no reason of its own. */
static int device_refused(struct vre_dev *dev, int r)
{
	return r < 0 ? ctl_refuse(dev, r, "the %s device refused it: %s",
				  dev->ops->name ? dev->ops->name : "", strerror(-r)) : r;
}

int ctl_h_send_rarp(struct vre_dev *dev, struct vhu_msg *msg, struct ctl_reply *rep)
{
	(void)rep;
	return device_refused(dev, dev->ops->send_rarp(dev->ctx, msg->p.bytes));
}

int ctl_h_net_set_mtu(struct vre_dev *dev, struct vhu_msg *msg, struct ctl_reply *rep)
{
	uint64_t mtu = msg->p.u64;

	(void)rep;
	/* 68: the smallest IPv4 MTU; a u16 holds the rest. */
	if (mtu < 68 || mtu > 65535)
		return ctl_refuse(dev, -EINVAL, "MTU %llu (68..65535)", (unsigned long long)mtu);
	return device_refused(dev, dev->ops->set_mtu(dev->ctx, (uint16_t)mtu));
}

int ctl_h_set_backend_req_fd(struct vre_dev *dev, struct vhu_msg *msg, struct ctl_reply *rep)
{
	(void)rep;
	close_fd(&dev->backend_req_fd);
	dev->backend_req_fd = msg->fds[0];
	msg->fds[0] = -1;
	return 0;
}

/* Offset and size against the model's config space, in u64 so that
 * offset + size cannot wrap. */
static int config_range(struct vre_dev *dev, const struct vhu_msg *msg)
{
	const struct vhu_config *c = &msg->p.config;

	if (!dev->ops->config_size || !dev->ops->get_config)
		return ctl_refuse(dev, -ENOTSUP, "the device has no config space");
	if (c->size == 0 || c->size > VHU_CONFIG_MAX || msg->hdr.size < 12 + c->size ||
	    (uint64_t)c->offset + c->size > dev->ops->config_size)
		return ctl_refuse(dev, -EINVAL, "config access of %u bytes at %u (space %u, payload %u)",
				  c->size, c->offset, dev->ops->config_size, msg->hdr.size);
	return 0;
}

int ctl_h_get_config(struct vre_dev *dev, struct vhu_msg *msg, struct ctl_reply *rep)
{
	const struct vhu_config *c = &msg->p.config;
	int r = config_range(dev, msg);

	if (r < 0)
		return r;
	memset(&rep->p.config, 0, sizeof(rep->p.config));
	r = dev->ops->get_config(dev->ctx, c->offset, rep->p.config.data, c->size);
	if (r < 0)
		return device_refused(dev, r);
	rep->p.config.offset = c->offset;
	rep->p.config.size = c->size;
	rep->p.config.flags = c->flags;
	rep->size = 12 + c->size;
	return 0;
}

int ctl_h_set_config(struct vre_dev *dev, struct vhu_msg *msg, struct ctl_reply *rep)
{
	const struct vhu_config *c = &msg->p.config;
	int r = config_range(dev, msg);

	(void)rep;
	if (r < 0)
		return r;
	if (!dev->ops->set_config)
		return ctl_refuse(dev, -ENOTSUP, "the config space is read-only");
	return device_refused(dev, dev->ops->set_config(dev->ctx, c->offset, c->data, c->size));
}

int ctl_h_get_inflight_fd(struct vre_dev *dev, struct vhu_msg *msg, struct ctl_reply *rep)
{
	int fd, r = ctl_inflight_get(dev, msg, &fd);

	if (r < 0)
		return r;
	rep->size = sizeof(rep->p.inflight);
	rep->p.inflight = msg->p.inflight;
	rep->fd = fd;
	return 0;
}

int ctl_h_set_inflight_fd(struct vre_dev *dev, struct vhu_msg *msg, struct ctl_reply *rep)
{
	(void)rep;
	return ctl_inflight_set(dev, msg);
}

int ctl_h_get_max_mem_slots(struct vre_dev *dev, struct vhu_msg *msg, struct ctl_reply *rep)
{
	(void)dev;
	(void)msg;
	rep->size = 8;
	rep->p.u64 = VRE_MEM_MAX_REGIONS;
	return 0;
}

int ctl_h_add_mem_reg(struct vre_dev *dev, struct vhu_msg *msg, struct ctl_reply *rep)
{
	(void)rep;
	return ctl_mem_add_region(dev, msg);
}

int ctl_h_rem_mem_reg(struct vre_dev *dev, struct vhu_msg *msg, struct ctl_reply *rep)
{
	(void)rep;
	return ctl_mem_rem_region(dev, msg);
}

int ctl_h_set_status(struct vre_dev *dev, struct vhu_msg *msg, struct ctl_reply *rep)
{
	(void)rep;
	if (msg->p.u64 > 0xff)
		return ctl_refuse(dev, -EINVAL, "status 0x%llx beyond 8 bits",
				  (unsigned long long)msg->p.u64);
	dev->status = (uint8_t)msg->p.u64;
	return 0;
}

int ctl_h_get_status(struct vre_dev *dev, struct vhu_msg *msg, struct ctl_reply *rep)
{
	(void)msg;
	rep->size = 8;
	rep->p.u64 = dev->status;
	return 0;
}
