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
 *   - payload outside the bounds, fewer or more fds than the row allows,
 *     missing owner or protocol feature: the request fails without its
 *     handler;
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
	uint8_t min_fds, max_fds; /* how many fds the request must carry */
	bool owner;               /* needs SET_OWNER first */
	enum quiesce quiesce;     /* what must stop while it runs */
	uint64_t pf;              /* protocol feature it needs (PF(name)), 0 none */
	enum reply_kind reply;
	uint16_t fail_size;       /* always-reply failure: this many zero bytes */
	bool fail_status;         /* ... but a u64 1, as REPLY_ACK's failure */
	bool always_with_pf;      /* "always" only once pf is negotiated; before,
				   * the request is an ordinary REPLY_ACK one */
};

/* A row: the request's code names its slot and its log name; every other
 * field is designated, and what a row leaves out is 0 (no payload, no fds,
 * no owner, no quiesce, no protocol feature, REPLY_ACK). */
#define ROW(code, ...) [VHU_##code] = { .name = #code, __VA_ARGS__ }
#define PF(name) (1ull << VHU_PF_##name)
#define STATE sizeof(struct vhu_state)
#define ADDR sizeof(struct vhu_addr)
#define REG sizeof(struct vhu_mem_reg)
#define INFL sizeof(struct vhu_inflight)
#define CONFIG sizeof(struct vhu_config)
#define ANY VHU_MAX_PAYLOAD

static const struct msg_rule rules[VHU_REQ_MAX] = {
	ROW(GET_FEATURES, .handler = ctl_h_get_features, .max_size = 8,
	    .reply = REPLY_ALWAYS),
	ROW(SET_FEATURES, .handler = ctl_h_set_features, .min_size = 8, .max_size = 8,
	    .owner = true, .quiesce = Q_DEV),
	ROW(SET_OWNER, .handler = ctl_h_set_owner),
	ROW(RESET_OWNER, .handler = ctl_h_reset, .max_size = 8, .owner = true,
	    .quiesce = Q_DEV),
	/* One fd per region; ctl_mem_set_table matches them to the count the
	 * payload gives. */
	ROW(SET_MEM_TABLE, .handler = ctl_h_set_mem_table, .min_size = 8,
	    .max_size = sizeof(struct vhu_mem_table), .max_fds = VHU_MEM_TABLE_REGIONS,
	    .owner = true, .quiesce = Q_DEV),
	/* The log is shared memory (LOG_SHMFD), so an fd is due; the reply
	 * is always sent (QEMU waits for it), a failure as u64 1. Whole
	 * device: the old log may be in use by every queue. */
	ROW(SET_LOG_BASE, .handler = ctl_h_set_log_base, .min_size = sizeof(struct vhu_log),
	    .max_size = sizeof(struct vhu_log), .min_fds = 1, .max_fds = 1, .owner = true,
	    .quiesce = Q_DEV, .pf = PF(LOG_SHMFD), .reply = REPLY_ALWAYS, .fail_size = 8,
	    .fail_status = true, .always_with_pf = true),
	ROW(SET_LOG_FD, .handler = ctl_h_set_log_fd, .max_size = 8, .max_fds = 1,
	    .owner = true),
	ROW(SET_VRING_NUM, .handler = ctl_h_set_vring_num, .min_size = STATE,
	    .max_size = STATE, .owner = true, .quiesce = Q_QUEUE),
	ROW(SET_VRING_ADDR, .handler = ctl_h_set_vring_addr, .min_size = ADDR,
	    .max_size = ADDR, .owner = true, .quiesce = Q_QUEUE),
	ROW(SET_VRING_BASE, .handler = ctl_h_set_vring_base, .min_size = STATE,
	    .max_size = STATE, .owner = true, .quiesce = Q_QUEUE),
	/* DPDK's virtio-user in server mode, on a new connection from a
	 * restarted backend, first stops the device it ran before: ENABLE(0)
	 * and GET_VRING_BASE arrive before SET_OWNER. On an idle queue they are
	 * harmless, and refusing them ends its reconnect. */
	ROW(GET_VRING_BASE, .handler = ctl_h_get_vring_base, .min_size = STATE,
	    .max_size = STATE, .quiesce = Q_QUEUE, .reply = REPLY_ALWAYS),
	/* One fd, or none with the payload's no-fd bit (the handler matches
	 * the two). */
	ROW(SET_VRING_KICK, .handler = ctl_h_set_vring_fd, .min_size = 8, .max_size = 8,
	    .max_fds = 1, .owner = true, .quiesce = Q_QUEUE),
	ROW(SET_VRING_CALL, .handler = ctl_h_set_vring_fd, .min_size = 8, .max_size = 8,
	    .max_fds = 1, .owner = true, .quiesce = Q_QUEUE),
	ROW(SET_VRING_ERR, .handler = ctl_h_set_vring_fd, .min_size = 8, .max_size = 8,
	    .max_fds = 1, .owner = true, .quiesce = Q_QUEUE),
	ROW(GET_PROTOCOL_FEATURES, .handler = ctl_h_get_protocol_features, .max_size = 8,
	    .reply = REPLY_ALWAYS),
	ROW(SET_PROTOCOL_FEATURES, .handler = ctl_h_set_protocol_features, .min_size = 8,
	    .max_size = 8),
	ROW(GET_QUEUE_NUM, .handler = ctl_h_get_queue_num, .max_size = 8,
	    .reply = REPLY_ALWAYS),
	ROW(SET_VRING_ENABLE, .handler = ctl_h_set_vring_enable, .min_size = STATE,
	    .max_size = STATE, .quiesce = Q_QUEUE),
	ROW(SEND_RARP, .handler = ctl_h_send_rarp, .min_size = 8, .max_size = 8,
	    .owner = true, .pf = PF(RARP)),
	ROW(NET_SET_MTU, .handler = ctl_h_net_set_mtu, .min_size = 8, .max_size = 8,
	    .owner = true, .pf = PF(MTU)),
	ROW(SET_BACKEND_REQ_FD, .handler = ctl_h_set_backend_req_fd, .max_size = 8,
	    .min_fds = 1, .max_fds = 1, .pf = PF(BACKEND_REQ)),
	ROW(IOTLB_MSG, .max_size = ANY, .owner = true),
	ROW(SET_VRING_ENDIAN, .max_size = STATE, .owner = true),
	/* Failure: a config header with size 0 (the spec's encoding). */
	ROW(GET_CONFIG, .handler = ctl_h_get_config, .min_size = 12, .max_size = CONFIG,
	    .reply = REPLY_ALWAYS, .fail_size = 12),
	ROW(SET_CONFIG, .handler = ctl_h_set_config, .min_size = 12, .max_size = CONFIG,
	    .owner = true, .pf = PF(CONFIG)),
	ROW(CREATE_CRYPTO_SESSION, .max_size = ANY, .owner = true),
	ROW(CLOSE_CRYPTO_SESSION, .max_size = ANY, .owner = true),
	ROW(POSTCOPY_ADVISE, .max_size = ANY, .owner = true),
	ROW(POSTCOPY_LISTEN, .max_size = ANY, .owner = true),
	ROW(POSTCOPY_END, .max_size = ANY, .owner = true),
	/* Failure: mmap_size 0 and no fd, which QEMU reads as "no region". */
	ROW(GET_INFLIGHT_FD, .handler = ctl_h_get_inflight_fd, .min_size = INFL,
	    .max_size = INFL, .owner = true, .quiesce = Q_DEV, .pf = PF(INFLIGHT_SHMFD),
	    .reply = REPLY_ALWAYS, .fail_size = INFL),
	ROW(SET_INFLIGHT_FD, .handler = ctl_h_set_inflight_fd, .min_size = INFL,
	    .max_size = INFL, .min_fds = 1, .max_fds = 1, .owner = true, .quiesce = Q_DEV,
	    .pf = PF(INFLIGHT_SHMFD)),
	ROW(GPU_SET_SOCKET, .max_size = ANY, .max_fds = 1, .owner = true),
	ROW(RESET_DEVICE, .handler = ctl_h_reset, .max_size = 8, .owner = true,
	    .quiesce = Q_DEV, .pf = PF(RESET_DEVICE)),
	ROW(VRING_KICK, .max_size = STATE, .owner = true),
	ROW(GET_MAX_MEM_SLOTS, .handler = ctl_h_get_max_mem_slots, .max_size = 8,
	    .reply = REPLY_ALWAYS),
	ROW(ADD_MEM_REG, .handler = ctl_h_add_mem_reg, .min_size = REG, .max_size = REG,
	    .min_fds = 1, .max_fds = 1, .owner = true, .quiesce = Q_DEV,
	    .pf = PF(CONFIGURE_MEM_SLOTS)),
	ROW(REM_MEM_REG, .handler = ctl_h_rem_mem_reg, .min_size = REG, .max_size = REG,
	    .max_fds = 1, .owner = true, .quiesce = Q_DEV, .pf = PF(CONFIGURE_MEM_SLOTS)),
	ROW(SET_STATUS, .handler = ctl_h_set_status, .min_size = 8, .max_size = 8,
	    .owner = true, .pf = PF(STATUS)),
	ROW(GET_STATUS, .handler = ctl_h_get_status, .max_size = 8, .owner = true,
	    .pf = PF(STATUS), .reply = REPLY_ALWAYS),
	ROW(GET_SHARED_OBJECT, .max_size = ANY, .owner = true),
	ROW(SET_DEVICE_STATE_FD, .max_size = ANY, .max_fds = 1, .owner = true),
	ROW(CHECK_DEVICE_STATE, .max_size = ANY, .owner = true),
};

const char *ctl_req_name(uint32_t req)
{
	return req < VHU_REQ_MAX && rules[req].name ? rules[req].name : "UNKNOWN";
}

/* Whether the row's preconditions hold; records why not (ctl_refuse). */
static int check_rule(struct vre_dev *dev, const struct msg_rule *r,
		      const struct vhu_msg *msg)
{
	if (msg->hdr.size < r->min_size || msg->hdr.size > r->max_size)
		return ctl_refuse(dev, -EINVAL, "%u payload bytes (expected %u..%u)",
				  msg->hdr.size, r->min_size, r->max_size);
	if (msg->nfds > r->max_fds)
		return ctl_refuse(dev, -EINVAL, "%u fds (takes at most %u), all closed",
				  msg->nfds, r->max_fds);
	if (r->owner && !dev->owner) {
		/* DPDK's virtio-user in server mode re-drives a reconnecting
		 * backend (features, call fds, status, memory, rings) without
		 * SET_OWNER. In client mode VRE dialled that frontend itself,
		 * so the session is the frontend's already: take it as owned.
		 * A frontend that connects to VRE must say SET_OWNER first. */
		if (!dev->client)
			return ctl_refuse(dev, -EPERM, "before SET_OWNER");
		CTL_WARN(dev, "%s before SET_OWNER: taking the frontend we dialled as owner",
			 r->name);
		dev->owner = true;
	}
	if (r->pf && !ctl_has_pf(dev, (unsigned)__builtin_ctzll(r->pf)))
		return ctl_refuse(dev, -ENOTSUP, "protocol feature %d not negotiated",
				  __builtin_ctzll(r->pf));
	/* Checked last, where the handlers checked it before the table did,
	 * so a request that breaks several rules gives the reason it always
	 * did. */
	if (msg->nfds < r->min_fds)
		return ctl_refuse(dev, -EINVAL, "%u fds (needs at least %u)", msg->nfds,
				  r->min_fds);
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
		dev->stats.unknown++;
		return ctl_refuse(dev, -ENOTSUP, "request %u is not supported",
				  msg->hdr.request);
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
		.name = "UNKNOWN", .max_size = VHU_MAX_PAYLOAD, .max_fds = VHU_MAX_FDS,
	};
	struct ctl_reply rep = { .size = 0, .fd = -1 };
	const struct msg_rule *r;
	int ret;

	if ((msg->hdr.flags & VHU_VERSION_MASK) != VHU_VERSION ||
	    (msg->hdr.flags & VHU_FLAG_REPLY)) {
		CTL_ERR(dev, "bad header flags 0x%x on request %u, dropping the connection",
			msg->hdr.flags, msg->hdr.request);
		return -EPROTO;
	}
	dev->stats.messages++;
	r = msg->hdr.request < VHU_REQ_MAX && rules[msg->hdr.request].name ?
	    &rules[msg->hdr.request] : &unknown;
	VRE_DEBUG(CTL_ROOM, "%s: %s size %u fds %u", dev->path, r->name, msg->hdr.size,
		  msg->nfds);
	dev->conn.why[0] = '\0';
	ret = check_rule(dev, r, msg);
	if (ret == 0)
		ret = run(dev, r, msg, &rep);
	else
		ctl_queues_reconcile(dev);
	ctl_close_fds(msg->fds, &msg->nfds);
	if (ret < 0) {
		dev->stats.failed++;
		/* the one line of every refused request */
		CTL_ERR(dev, "%s refused: %s", r->name,
			dev->conn.why[0] ? dev->conn.why : strerror(-ret));
	}
	if (r->reply == REPLY_ALWAYS &&
	    (!r->always_with_pf || ctl_has_pf(dev, (unsigned)__builtin_ctzll(r->pf)))) {
		if (ret < 0) {
			if (!r->fail_size) {
				CTL_ERR(dev, "%s failed and has no failure reply, dropping the connection",
					r->name);
				return -EPROTO;
			}
			memset(&rep, 0, sizeof(rep));
			rep.size = r->fail_size;
			rep.fd = -1;
			if (r->fail_status)
				rep.p.u64 = 1;
		}
		return send_reply(dev, msg, &rep);
	}
	if ((msg->hdr.flags & VHU_FLAG_NEED_REPLY) && ctl_has_pf(dev, VHU_PF_REPLY_ACK))
		return send_ack(dev, msg, ret);
	return 0;
}
