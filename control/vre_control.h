/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * control — everything between a vhost-user socket and a set of ready
 * virtqueues.
 *
 * Offers: a server (one control thread, one epoll loop over every device's
 * socket), devices in server or client mode, the vhost-user protocol with
 * every field validated, the guest memory table, per-queue configuration
 * (size, addresses, base, kick/call/err fds, enable, inflight region).
 *
 * Needs: vring (rings, memory map, inflight layouts, logging), a device
 * model (struct vre_device_ops: features, config space, queue count), and a
 * data plane reached only through queue_start/queue_stop. No DPDK, no packet
 * knowledge, never touches ring memory on the hot path.
 *
 * The quiesce handshake (control -> data plane): control never changes a
 * queue or the memory map while a worker may be inside that queue. Before a
 * request that changes them (memory table, ring layout, base, stop, reset,
 * disconnect), control calls ops->queue_stop() on every running queue of the
 * device; queue_stop returns only once no worker can touch the queue (the
 * data plane's workers acknowledge, see dataplane/). Control then applies the
 * change, unmaps old memory, rebinds the rings to the new map, and calls
 * ops->queue_start() for the queues that are still ready. Workers take no
 * lock per packet.
 *
 * The connection state machine, the message table and the validation rules
 * are documented in control.md-style comments in the .c files and summarised
 * here as they land.
 */
#ifndef VRE_CONTROL_H
#define VRE_CONTROL_H

#include <stdbool.h>
#include <stdint.h>

#include "vre_vring.h"

struct vre_server;
struct vre_dev;

/* Control's view of one virtqueue; the data plane reads it between
 * queue_start and queue_stop and never changes the configuration fields. */
struct vre_queue {
	struct vre_vq vq;   /* valid while started */
	struct vre_dev *dev;
	uint16_t index;
	int kick_fd;        /* -1: no kick fd (the queue is polled) */
	int call_fd;        /* -1: the driver is never notified */
	int err_fd;         /* -1: none */
	bool started;       /* size, addresses and kick known; not stopped */
	bool enabled;       /* SET_VRING_ENABLE (or implied without PROTOCOL_FEATURES) */
	bool running;       /* started && enabled && memory: handed to the data plane */
	void *dp;           /* the data plane's per-queue state, owned by it */
};

/* A device model (virtio-net, virtio-blk). Callbacks run on the control
 * thread. ctx is the pointer given to vre_dev_create. */
struct vre_device_ops {
	const char *name;
	uint64_t features;          /* virtio features offered */
	uint64_t protocol_features; /* vhost-user protocol features offered */
	uint16_t max_queues;        /* GET_QUEUE_NUM (queues per device) */
	uint32_t config_size;       /* bytes of config space, 0 for none */
	int (*get_config)(void *ctx, uint32_t offset, void *buf, uint32_t len);
	int (*set_config)(void *ctx, uint32_t offset, const void *buf, uint32_t len);
	/* Negotiated features, before any queue starts. Optional. */
	int (*set_features)(void *ctx, uint64_t features);
	int (*set_mtu)(void *ctx, uint16_t mtu);                /* optional */
	int (*send_rarp)(void *ctx, const uint8_t mac[6]);      /* optional */
	/* The queue is started, enabled and has memory: poll it. */
	int (*queue_start)(void *ctx, struct vre_queue *q);
	/* Stop polling q; return only when no worker is inside it. */
	void (*queue_stop)(void *ctx, struct vre_queue *q);
	/* The frontend left or reset the device; every queue is stopped. */
	void (*disconnected)(void *ctx);                        /* optional */
};

struct vre_dev_config {
	const char *path;    /* unix socket path */
	bool client;         /* connect to a listening frontend (with back-off) */
	const struct vre_device_ops *ops;
	void *ctx;
};

int vre_server_create(struct vre_server **out);
/* Starts the control thread. */
int vre_server_start(struct vre_server *s);
/* Stops the control thread, disconnecting and destroying every device. */
void vre_server_destroy(struct vre_server *s);

int vre_dev_create(struct vre_server *s, const struct vre_dev_config *cfg,
		   struct vre_dev **out);
void vre_dev_destroy(struct vre_dev *dev);

/* Negotiated virtio features (0 until SET_FEATURES). */
uint64_t vre_dev_features(const struct vre_dev *dev);
uint16_t vre_dev_num_queues(const struct vre_dev *dev);
struct vre_queue *vre_dev_queue(struct vre_dev *dev, uint16_t index);

/* Writes the call eventfd (no-op without one). Safe from a worker. */
void vre_queue_notify(struct vre_queue *q);

#endif
