/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The message table and the dispatcher that enforces it.
 *
 * One row per request code says what the request may look like and what must
 * happen around its handler: payload size bounds, how many fds it takes,
 * whether it needs SET_OWNER first or a protocol feature negotiated, whether
 * the device's queues must be quiesced while it runs, and whether it always
 * replies. Handlers then only do their one job. Rules:
 *   - bad header (version, a reply flag on a request): drop the connection;
 *   - payload outside the bounds, more fds than the row allows, missing
 *     owner or protocol feature: the request fails without its handler;
 *   - every fd a handler did not keep is closed after it;
 *   - quiesce rows: the running queues the request can affect (the one it
 *     names, or all of the device's for memory, features, inflight, reset)
 *     are stopped before the handler, and the queues that are ready are
 *     restarted after it (ctl_queues_reconcile runs after every request, so
 *     enable/kick start queues too);
 *   - replies: "always" rows send the handler's reply (or its failure
 *     encoding; with none, the connection is dropped: the frontend would
 *     otherwise wait forever); the others send the REPLY_ACK status when it
 *     was negotiated and asked for.
 */
#include <errno.h>
#include <string.h>

#include "handlers.h"

enum reply_kind { REPLY_ACK, REPLY_ALWAYS };
/* Q_QUEUE: only the queue the request names (its index is the first u32 of
 * the payload, or bits 0-7 of a ring fd request); Q_DEV: every queue. */
enum quiesce { Q_NONE, Q_QUEUE, Q_DEV };

struct msg_rule {
	const char *name;
	ctl_handler_fn handler;   /* NULL: known, not supported */
	uint16_t min_size, max_size;
	uint8_t fds;              /* most fds the request may carry */
	bool owner;               /* needs SET_OWNER first */
	enum quiesce quiesce;     /* what must stop while it runs */
	int8_t pf;                /* protocol feature it needs, -1 none */
	enum reply_kind reply;
	uint16_t fail_size;       /* always-reply failure: this many zero bytes */
};

#define R(code, fn, lo, hi, nfd, own, qui, pfbit, rep, ...)                     \
	[VHU_##code] = { .name = #code, .handler = fn, .min_size = lo,          \
			 .max_size = hi, .fds = nfd, .owner = own, .quiesce = qui,     \
			 .pf = pfbit, .reply = rep, __VA_ARGS__ }
#define STATE sizeof(struct vhu_state)
#define REG sizeof(struct vhu_mem_reg)
#define INFL sizeof(struct vhu_inflight)

static const struct msg_rule rules[VHU_REQ_MAX] = {
	R(GET_FEATURES, ctl_h_get_features, 0, 8, 0, false, false, -1, REPLY_ALWAYS),
	R(SET_FEATURES, ctl_h_set_features, 8, 8, 0, true, Q_DEV, -1, REPLY_ACK),
	R(SET_OWNER, ctl_h_set_owner, 0, 0, 0, false, Q_NONE, -1, REPLY_ACK),
	R(RESET_OWNER, ctl_h_reset, 0, 8, 0, true, Q_DEV, -1, REPLY_ACK),
	R(SET_MEM_TABLE, ctl_h_set_mem_table, 8, sizeof(struct vhu_mem_table),
	  VHU_MEM_TABLE_REGIONS, true, Q_DEV, -1, REPLY_ACK),
	/* Dirty logging needs LOG_SHMFD, which VRE does not offer. */
	R(SET_LOG_BASE, NULL, 0, sizeof(struct vhu_log), 1, true, Q_NONE, -1, REPLY_ACK),
	R(SET_LOG_FD, NULL, 0, 8, 1, true, Q_NONE, -1, REPLY_ACK),
	R(SET_VRING_NUM, ctl_h_set_vring_num, STATE, STATE, 0, true, Q_QUEUE, -1, REPLY_ACK),
	R(SET_VRING_ADDR, ctl_h_set_vring_addr, sizeof(struct vhu_addr),
	  sizeof(struct vhu_addr), 0, true, Q_QUEUE, -1, REPLY_ACK),
	R(SET_VRING_BASE, ctl_h_set_vring_base, STATE, STATE, 0, true, Q_QUEUE, -1, REPLY_ACK),
	/* DPDK's virtio-user in server mode, on a new connection from a
	 * restarted backend, first stops the device it ran before: ENABLE(0)
	 * and GET_VRING_BASE arrive before SET_OWNER. On an idle queue they are
	 * harmless, and refusing them ends its reconnect. */
	R(GET_VRING_BASE, ctl_h_get_vring_base, STATE, STATE, 0, false, Q_QUEUE, -1, REPLY_ALWAYS),
	R(SET_VRING_KICK, ctl_h_set_vring_fd, 8, 8, 1, true, Q_QUEUE, -1, REPLY_ACK),
	R(SET_VRING_CALL, ctl_h_set_vring_fd, 8, 8, 1, true, Q_QUEUE, -1, REPLY_ACK),
	R(SET_VRING_ERR, ctl_h_set_vring_fd, 8, 8, 1, true, Q_QUEUE, -1, REPLY_ACK),
	R(GET_PROTOCOL_FEATURES, ctl_h_get_protocol_features, 0, 8, 0, false, Q_NONE, -1,
	  REPLY_ALWAYS),
	R(SET_PROTOCOL_FEATURES, ctl_h_set_protocol_features, 8, 8, 0, false, Q_NONE, -1,
	  REPLY_ACK),
	R(GET_QUEUE_NUM, ctl_h_get_queue_num, 0, 8, 0, false, Q_NONE, -1, REPLY_ALWAYS),
	R(SET_VRING_ENABLE, ctl_h_set_vring_enable, STATE, STATE, 0, false, Q_QUEUE, -1,
	  REPLY_ACK),
	R(SEND_RARP, ctl_h_send_rarp, 8, 8, 0, true, Q_NONE, VHU_PF_RARP, REPLY_ACK),
	R(NET_SET_MTU, ctl_h_net_set_mtu, 8, 8, 0, true, Q_NONE, VHU_PF_MTU, REPLY_ACK),
	R(SET_BACKEND_REQ_FD, ctl_h_set_backend_req_fd, 0, 8, 1, false, Q_NONE,
	  VHU_PF_BACKEND_REQ, REPLY_ACK),
	R(IOTLB_MSG, NULL, 0, VHU_MAX_PAYLOAD, 0, true, Q_NONE, -1, REPLY_ACK),
	R(SET_VRING_ENDIAN, NULL, 0, STATE, 0, true, Q_NONE, -1, REPLY_ACK),
	/* Failure: a config header with size 0 (the spec's encoding). */
	R(GET_CONFIG, ctl_h_get_config, 12, sizeof(struct vhu_config), 0, false, Q_NONE,
	  -1, REPLY_ALWAYS, .fail_size = 12),
	R(SET_CONFIG, ctl_h_set_config, 12, sizeof(struct vhu_config), 0, true, Q_NONE,
	  VHU_PF_CONFIG, REPLY_ACK),
	R(CREATE_CRYPTO_SESSION, NULL, 0, VHU_MAX_PAYLOAD, 0, true, Q_NONE, -1, REPLY_ACK),
	R(CLOSE_CRYPTO_SESSION, NULL, 0, VHU_MAX_PAYLOAD, 0, true, Q_NONE, -1, REPLY_ACK),
	R(POSTCOPY_ADVISE, NULL, 0, VHU_MAX_PAYLOAD, 0, true, Q_NONE, -1, REPLY_ACK),
	R(POSTCOPY_LISTEN, NULL, 0, VHU_MAX_PAYLOAD, 0, true, Q_NONE, -1, REPLY_ACK),
	R(POSTCOPY_END, NULL, 0, VHU_MAX_PAYLOAD, 0, true, Q_NONE, -1, REPLY_ACK),
	/* Failure: mmap_size 0 and no fd, which QEMU reads as "no region". */
	R(GET_INFLIGHT_FD, ctl_h_get_inflight_fd, INFL, INFL, 0, true, Q_DEV,
	  VHU_PF_INFLIGHT_SHMFD, REPLY_ALWAYS, .fail_size = INFL),
	R(SET_INFLIGHT_FD, ctl_h_set_inflight_fd, INFL, INFL, 1, true, Q_DEV,
	  VHU_PF_INFLIGHT_SHMFD, REPLY_ACK),
	R(GPU_SET_SOCKET, NULL, 0, VHU_MAX_PAYLOAD, 1, true, Q_NONE, -1, REPLY_ACK),
	R(RESET_DEVICE, ctl_h_reset, 0, 8, 0, true, Q_DEV, VHU_PF_RESET_DEVICE, REPLY_ACK),
	R(VRING_KICK, NULL, 0, STATE, 0, true, Q_NONE, -1, REPLY_ACK),
	R(GET_MAX_MEM_SLOTS, ctl_h_get_max_mem_slots, 0, 8, 0, false, Q_NONE, -1,
	  REPLY_ALWAYS),
	R(ADD_MEM_REG, ctl_h_add_mem_reg, REG, REG, 1, true, Q_DEV,
	  VHU_PF_CONFIGURE_MEM_SLOTS, REPLY_ACK),
	R(REM_MEM_REG, ctl_h_rem_mem_reg, REG, REG, 1, true, Q_DEV,
	  VHU_PF_CONFIGURE_MEM_SLOTS, REPLY_ACK),
	R(SET_STATUS, ctl_h_set_status, 8, 8, 0, true, Q_NONE, VHU_PF_STATUS, REPLY_ACK),
	R(GET_STATUS, ctl_h_get_status, 0, 8, 0, true, Q_NONE, VHU_PF_STATUS, REPLY_ALWAYS),
	R(GET_SHARED_OBJECT, NULL, 0, VHU_MAX_PAYLOAD, 0, true, Q_NONE, -1, REPLY_ACK),
	R(SET_DEVICE_STATE_FD, NULL, 0, VHU_MAX_PAYLOAD, 1, true, Q_NONE, -1, REPLY_ACK),
	R(CHECK_DEVICE_STATE, NULL, 0, VHU_MAX_PAYLOAD, 0, true, Q_NONE, -1, REPLY_ACK),
};

const char *ctl_req_name(uint32_t req)
{
	return req < VHU_REQ_MAX && rules[req].name ? rules[req].name : "UNKNOWN";
}

/* Whether the row's preconditions hold; logs why not. */
static int check_rule(struct vre_dev *dev, const struct msg_rule *r,
		      const struct vhu_msg *msg)
{
	if (msg->hdr.size < r->min_size || msg->hdr.size > r->max_size) {
		VRE_ERR(CTL_ROOM, "%s: %s with %u payload bytes (expected %u..%u)",
			dev->path, r->name, msg->hdr.size, r->min_size, r->max_size);
		return -EINVAL;
	}
	if (msg->nfds > r->fds) {
		VRE_ERR(CTL_ROOM, "%s: %s with %u fds (takes at most %u), all closed",
			dev->path, r->name, msg->nfds, r->fds);
		return -EINVAL;
	}
	if (r->owner && !dev->owner) {
		/* DPDK's virtio-user in server mode re-drives a reconnecting
		 * backend (features, call fds, status, memory, rings) without
		 * SET_OWNER. In client mode VRE dialled that frontend itself,
		 * so the session is the frontend's already: take it as owned.
		 * A frontend that connects to VRE must say SET_OWNER first. */
		if (!dev->client) {
			VRE_ERR(CTL_ROOM, "%s: %s before SET_OWNER", dev->path, r->name);
			return -EPERM;
		}
		VRE_WARN(CTL_ROOM, "%s: %s before SET_OWNER: taking the frontend we dialled as owner",
			 dev->path, r->name);
		dev->owner = true;
	}
	if (r->pf >= 0 && !ctl_has_pf(dev, (unsigned)r->pf)) {
		VRE_ERR(CTL_ROOM, "%s: %s without protocol feature %d negotiated",
			dev->path, r->name, r->pf);
		return -ENOTSUP;
	}
	return 0;
}

static int send_reply(struct vre_dev *dev, const struct vhu_msg *msg,
		      const struct ctl_reply *rep)
{
	struct vhu_hdr h = {
		.request = msg->hdr.request, .flags = VHU_VERSION | VHU_FLAG_REPLY,
		.size = rep->size,
	};

	return ctl_conn_send(dev->conn.fd, &h, &rep->p, rep->fd >= 0 ? &rep->fd : NULL,
			     rep->fd >= 0 ? 1 : 0);
}

static int send_ack(struct vre_dev *dev, const struct vhu_msg *msg, int status)
{
	struct ctl_reply rep = { .size = 8, .fd = -1, .p.u64 = status < 0 ? 1 : 0 };

	return send_reply(dev, msg, &rep);
}

/* The queue a Q_QUEUE request names, unchecked (an index out of range
 * pauses nothing; the handler rejects it). */
static uint32_t queue_named(const struct vhu_msg *msg)
{
	switch (msg->hdr.request) {
	case VHU_SET_VRING_KICK:
	case VHU_SET_VRING_CALL:
	case VHU_SET_VRING_ERR:
		return (uint32_t)(msg->p.u64 & VHU_VRING_IDX_MASK);
	default:
		return msg->p.state.index; /* vring state and address */
	}
}

/* Runs the handler inside the quiesce the row asks for. */
static int run(struct vre_dev *dev, const struct msg_rule *r, struct vhu_msg *msg,
	       struct ctl_reply *rep)
{
	int ret;

	if (!r->handler) {
		VRE_WARN(CTL_ROOM, "%s: %s (%u) is not supported", dev->path, r->name,
			 msg->hdr.request);
		dev->stats.unknown++;
		return -ENOTSUP;
	}
	if (r->quiesce == Q_DEV)
		ctl_queues_pause(dev);
	else if (r->quiesce == Q_QUEUE)
		ctl_queue_pause_one(dev, queue_named(msg));
	ret = r->handler(dev, msg, rep);
	ctl_queues_reconcile(dev);
	return ret;
}

int ctl_dispatch(struct vre_dev *dev, struct vhu_msg *msg)
{
	static const struct msg_rule unknown = {
		.name = "UNKNOWN", .max_size = VHU_MAX_PAYLOAD, .fds = VHU_MAX_FDS, .pf = -1,
	};
	struct ctl_reply rep = { .size = 0, .fd = -1 };
	const struct msg_rule *r;
	int ret;

	if ((msg->hdr.flags & VHU_VERSION_MASK) != VHU_VERSION ||
	    (msg->hdr.flags & VHU_FLAG_REPLY)) {
		VRE_ERR(CTL_ROOM, "%s: bad header flags 0x%x on request %u, dropping the connection",
			dev->path, msg->hdr.flags, msg->hdr.request);
		return -EPROTO;
	}
	dev->stats.messages++;
	r = msg->hdr.request < VHU_REQ_MAX && rules[msg->hdr.request].name ?
	    &rules[msg->hdr.request] : &unknown;
	VRE_DEBUG(CTL_ROOM, "%s: %s size %u fds %u", dev->path, r->name, msg->hdr.size,
		  msg->nfds);
	ret = check_rule(dev, r, msg);
	if (ret == 0)
		ret = run(dev, r, msg, &rep);
	else
		ctl_queues_reconcile(dev);
	ctl_close_fds(msg->fds, &msg->nfds);
	if (ret < 0)
		dev->stats.failed++;
	if (r->reply == REPLY_ALWAYS) {
		if (ret < 0) {
			if (!r->fail_size) {
				VRE_ERR(CTL_ROOM, "%s: %s failed and has no failure reply, dropping the connection",
					dev->path, r->name);
				return -EPROTO;
			}
			memset(&rep, 0, sizeof(rep));
			rep.size = r->fail_size;
			rep.fd = -1;
		}
		return send_reply(dev, msg, &rep);
	}
	if ((msg->hdr.flags & VHU_FLAG_NEED_REPLY) && ctl_has_pf(dev, VHU_PF_REPLY_ACK))
		return send_ack(dev, msg, ret);
	return 0;
}
