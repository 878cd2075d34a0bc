/* SPDX-License-Identifier: BSD-3-Clause */
/* The request handlers, one per message; the table in msg_table.c says
 * what the dispatcher checks before each runs. */
#ifndef CTL_HANDLERS_H
#define CTL_HANDLERS_H

#include "ctl.h"

/* What a handler answers, for requests that always reply. fd >= 0 rides
 * along and stays owned by control. */
struct ctl_reply {
	uint32_t size;
	int fd;
	union {
		uint64_t u64;
		struct vhu_state state;
		struct vhu_config config;
		struct vhu_inflight inflight;
	} p;
};

typedef int (*ctl_handler_fn)(struct vre_dev *dev, struct vhu_msg *msg,
			      struct ctl_reply *rep);

int ctl_h_get_features(struct vre_dev *, struct vhu_msg *, struct ctl_reply *);
int ctl_h_set_features(struct vre_dev *, struct vhu_msg *, struct ctl_reply *);
int ctl_h_set_owner(struct vre_dev *, struct vhu_msg *, struct ctl_reply *);
int ctl_h_reset(struct vre_dev *, struct vhu_msg *, struct ctl_reply *);
int ctl_h_set_log_base(struct vre_dev *, struct vhu_msg *, struct ctl_reply *);
int ctl_h_set_log_fd(struct vre_dev *, struct vhu_msg *, struct ctl_reply *);
int ctl_h_set_mem_table(struct vre_dev *, struct vhu_msg *, struct ctl_reply *);
int ctl_h_set_vring_num(struct vre_dev *, struct vhu_msg *, struct ctl_reply *);
int ctl_h_set_vring_addr(struct vre_dev *, struct vhu_msg *, struct ctl_reply *);
int ctl_h_set_vring_base(struct vre_dev *, struct vhu_msg *, struct ctl_reply *);
int ctl_h_get_vring_base(struct vre_dev *, struct vhu_msg *, struct ctl_reply *);
int ctl_h_set_vring_fd(struct vre_dev *, struct vhu_msg *, struct ctl_reply *);
int ctl_h_get_protocol_features(struct vre_dev *, struct vhu_msg *, struct ctl_reply *);
int ctl_h_set_protocol_features(struct vre_dev *, struct vhu_msg *, struct ctl_reply *);
int ctl_h_get_queue_num(struct vre_dev *, struct vhu_msg *, struct ctl_reply *);
int ctl_h_set_vring_enable(struct vre_dev *, struct vhu_msg *, struct ctl_reply *);
int ctl_h_send_rarp(struct vre_dev *, struct vhu_msg *, struct ctl_reply *);
int ctl_h_net_set_mtu(struct vre_dev *, struct vhu_msg *, struct ctl_reply *);
int ctl_h_set_backend_req_fd(struct vre_dev *, struct vhu_msg *, struct ctl_reply *);
int ctl_h_get_config(struct vre_dev *, struct vhu_msg *, struct ctl_reply *);
int ctl_h_set_config(struct vre_dev *, struct vhu_msg *, struct ctl_reply *);
int ctl_h_get_inflight_fd(struct vre_dev *, struct vhu_msg *, struct ctl_reply *);
int ctl_h_set_inflight_fd(struct vre_dev *, struct vhu_msg *, struct ctl_reply *);
int ctl_h_get_max_mem_slots(struct vre_dev *, struct vhu_msg *, struct ctl_reply *);
int ctl_h_add_mem_reg(struct vre_dev *, struct vhu_msg *, struct ctl_reply *);
int ctl_h_rem_mem_reg(struct vre_dev *, struct vhu_msg *, struct ctl_reply *);
int ctl_h_set_status(struct vre_dev *, struct vhu_msg *, struct ctl_reply *);
int ctl_h_get_status(struct vre_dev *, struct vhu_msg *, struct ctl_reply *);

/* Protocol features control implements, before the model's opt-outs. */
uint64_t ctl_offered_protocol_features(const struct vre_dev *dev);
uint64_t ctl_offered_features(const struct vre_dev *dev);
/* Drops the per-connection device state (queues, memory, inflight, fds). */
void ctl_dev_reset_state(struct vre_dev *dev, bool keep_owner);

#endif
