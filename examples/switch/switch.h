/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vre-switch: vhost-user ports served by VRE's control plane, packets moved
 * by VRE's pinned workers, vhost to vhost with one copy.
 *
 * Forwarding is static per queue pair: the TX queue of (port p, pair i)
 * feeds the RX queue of (peer(p), i mod peer's pairs), where peer(p) = p in
 * loopback mode and p^1 in xconnect mode. Each RX queue has one owning
 * worker (round-robin over all RX queues, or --pin); every TX queue that
 * feeds it is polled on that same worker, so an RX ring has exactly one
 * writer and a TX ring exactly one reader without any lock.
 *
 * A TX item reaches its RX queue through an atomically published pointer
 * that is non-NULL only while the RX queue runs. Stopping an RX queue clears
 * the pointer and waits for the owning worker's handshake, so no TX item
 * touches a stopped RX queue. A TX item without a destination first holds
 * its packets in the ring for a grace period (SW_DST_GRACE_MS: control stops
 * and restarts every queue of a device around many requests, and a packet
 * should not be lost to that), then completes the chains and counts the
 * packets as dropped, so a guest whose peer is gone does not stall.
 */
#ifndef VRE_SWITCH_H
#define VRE_SWITCH_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vre_control.h"
#include "vre_net.h"
#include "vre_worker.h"

#define SW_MAX_PORTS 16
#define SW_MAX_PAIRS 16
#define SW_DST_GRACE_MS 50

enum sw_mode { SW_LOOPBACK, SW_XCONNECT };

struct sw_port;

/* One vhost-user virtqueue of a port, as the switch sees it. */
struct sw_queue {
	struct sw_port *port;
	uint16_t index;              /* vhost queue index */
	bool running;                /* between queue_start and queue_stop */
	struct vre_net_queue *nq;    /* valid while running */
	struct vre_worker *w;        /* owner: RX: the writer; TX/ctrl: the poller */
	/* TX only */
	struct sw_queue *dst_q;      /* the RX queue this TX feeds (static) */
	struct vre_net_queue *dst;   /* dst_q->nq while dst_q runs, else NULL (atomic) */
	uint64_t drop_no_dst;        /* packets dropped because dst was stopped */
	uint64_t dst_lost_ns;        /* when dst was first seen NULL; 0: it is there */
	struct vre_poll_item item;   /* TX and control queue */
	struct vre_net_tx_burst burst;
};

struct sw_port {
	unsigned idx;
	char *path;
	bool client;
	uint16_t pairs;
	int pin[SW_MAX_PAIRS];       /* worker index per pair, -1 = round-robin */
	struct vre_net_dev *net;
	struct vre_dev *dev;
	struct sw_queue *q;          /* 2 * pairs (+1 control queue when pairs > 1) */
	uint16_t nq;
};

struct sw {
	enum sw_mode mode;
	struct sw_port ports[SW_MAX_PORTS];
	unsigned nports;
	struct vre_worker_pool pool;
	struct vre_server *server;
	pthread_mutex_t lock;        /* queue tables vs. the stats printer */
};

/* fwd.c */
extern const struct vre_net_app_ops sw_app_ops;
/* Fills every port's queue table and the static TX -> RX map, and assigns
 * each RX queue (and the TX queues feeding it) a worker. */
int sw_plan(struct sw *s);
void sw_unplan(struct sw *s);

/* Totals over the running queues and the counters of stopped ones. */
struct sw_port_totals {
	uint64_t rx_pkts, rx_bytes;  /* delivered to the guest (RX queues) */
	uint64_t tx_pkts, tx_bytes;  /* taken from the guest (TX queues) */
	uint64_t drops;              /* every reason, both directions */
	uint64_t drop_no_dst;
	uint64_t drop_no_rx_buf;     /* the guest gave no RX buffer in time */
	uint64_t drop_bad;           /* short header, bad chain, too big, broken ring */
};
void sw_port_totals(struct sw *s, struct sw_port *p, struct sw_port_totals *t);

#endif
