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
 *
 * Learn mode (learn.c) bridges all ports with a MAC table. Any TX queue may
 * deliver to any port, so every queue and the table live on the first
 * worker; a TX queue of pair i reaches the RX queue of pair i (mod the
 * destination's pairs) of every other port through dsts[].
 *
 * DPDK ethdev ports (eth.c): every port the EAL probed (--vdev net_ring0,
 * net_tap0, a PCI NIC, ...) becomes a switch port numbered after the vhost
 * ports (vhost ports 0..V-1 in command-line order, then ethdev ports V..
 * in DPDK port-id order; xconnect pairs 0<->1, 2<->3, ... over that list).
 * An ethdev port has one RX and one TX queue, both used only by the first
 * worker: its q[0] is the destination side (rte_eth_tx_burst, always
 * "running", no vhost queue behind it) and its q[1] the source side (a
 * poll item doing rte_eth_rx_burst). Every queue that feeds an ethdev port
 * or is fed by one therefore lives on the first worker too.
 *
 * An ethdev port xconnected (or, in learn mode, sending) to a multi-queue
 * vhost port spreads what it
 * receives over the vhost port's running RX queues by a hash of the flow
 * (the NIC's RSS hash when it gives one, else MACs, IPv4 addresses and
 * TCP/UDP ports): a flow stays on one queue, so it stays in order.
 *
 * Idle ethdev ports and the polling policies: a port whose PMD has RX
 * interrupts (net_tap, most NICs; asked for with intr_conf.rxq) gives the
 * worker its interrupt fd, so the worker sleeps as it does on vhost kicks.
 * A port without them (net_ring, net_pcap, net_null) can only be polled:
 * its item lets the worker nap instead, for 16 us doubling up to
 * SW_ETH_NAP_US, so an idle switch costs little CPU and the first packet
 * after a quiet spell waits at most SW_ETH_NAP_US (busy polling resumes as
 * soon as it came).
 */
#ifndef VRE_SWITCH_H
#define VRE_SWITCH_H

#include <pthread.h>
#include <stdlib.h>
#include <stdbool.h>
#include <stdint.h>

#include "vre_control.h"
#include "vre_dataplane.h"

#define SW_MAX_PORTS 16
#define SW_MAX_PAIRS 16
#define SW_DST_GRACE_MS 50
#define SW_ETH_NAP_US 1000

enum sw_mode { SW_LOOPBACK, SW_XCONNECT, SW_LEARN };

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
	/* learn mode: the same, per destination port (NULL for its own) */
	struct sw_queue *dst_qs[SW_MAX_PORTS];
	struct vre_net_queue *dsts[SW_MAX_PORTS];
	/* ethdev RX (q[1]) xconnected to a vhost port: that port's RX queue of
	 * each pair, and their published pointers as dst/dst_q above; packets
	 * spread over the running ones by flow (pair_qs[0] == dst_q) */
	struct sw_queue *pair_qs[SW_MAX_PAIRS];
	struct vre_net_queue *pair_dsts[SW_MAX_PAIRS];
	uint16_t npairs;
	/* learn mode, ethdev RX (q[1]): the same for every vhost port */
	struct sw_pair_dsts *lpairs;
	uint64_t drop_no_dst;        /* packets dropped because dst was stopped */
	uint64_t notify_saturated;   /* control's count for the queue at its last stop */
	uint64_t dst_lost_ns;        /* when dst was first seen NULL; 0: it is there */
	struct vre_poll_item item;   /* TX and control queue */
	struct vre_net_tx_burst burst;
};

/* Learn mode, an ethdev port's RX: each vhost port's RX queue of every
 * pair and its published pointer (NULL while stopped), by port and pair. */
struct sw_pair_dsts {
	struct sw_queue *q[SW_MAX_PORTS][SW_MAX_PAIRS];
	struct vre_net_queue *d[SW_MAX_PORTS][SW_MAX_PAIRS];
};

struct sw;

struct sw_port {
	struct sw *sw;
	unsigned idx;
	char *path;
	bool client;
	uint16_t pairs;
	int pin[SW_MAX_PAIRS];       /* worker index per pair, -1 = round-robin */
	struct vre_net_dev *net;
	struct vre_dev *dev;
	struct sw_queue *q;          /* 2 * pairs (+1 control queue when pairs > 1) */
	uint16_t nq;
	/* DPDK ethdev ports only */
	bool eth;
	uint16_t eth_id;
	char eth_name[64];
	uint64_t eth_in_pkts, eth_in_bytes;   /* taken from the port (rx_burst) */
	uint64_t eth_out_pkts, eth_out_bytes; /* the port took them (tx_burst) */
	uint64_t eth_drop_full;               /* the port did not take them */
	int eth_rx_fd;               /* RX interrupt fd (owned by the PMD), or -1 */
};

struct sw {
	enum sw_mode mode;
	struct sw_port ports[SW_MAX_PORTS];
	unsigned nports;
	struct vre_worker_pool pool;
	struct vre_server *server;
	struct sw_fdb *fdb;          /* learn mode */
	unsigned nvhost;             /* ports[0..nvhost) are vhost-user, the rest ethdev */
	struct rte_mempool *mp;      /* mbufs for the ethdev ports */
	pthread_mutex_t lock;        /* queue tables vs. the stats printer */
};

/* learn.c */
struct sw_fdb *sw_fdb_create(unsigned aging_secs);
void sw_fdb_destroy(struct sw_fdb *f);
uint64_t sw_fdb_count(const struct sw_fdb *f); /* any thread */
int sw_learn_poll(struct vre_poll_item *it);
int sw_learn_eth_poll(struct vre_poll_item *it);

/* eth.c */
struct rte_mbuf;
/* Adds every ethdev port after the vhost ports, creates the mempool,
 * configures and starts them. Prints one line and returns < 0 on failure. */
int sw_eth_open(struct sw *s, unsigned nworkers);
int sw_eth_attach(struct sw *s);   /* adds the RX poll items to the workers */
void sw_eth_close(struct sw *s);   /* removes the items, stops, frees */
/* Sends n mbufs to ethdev port p; what it does not take is freed and
 * counted. First worker only. */
void sw_eth_send(struct sw_port *p, struct rte_mbuf **m, unsigned n);
/* Delivers n mbufs to the vhost RX queues dst[0..nd), each flow to one of
 * them (nd >= 1); the caller still owns and frees the mbufs. */
void sw_rx_spread(struct vre_net_queue **dst, unsigned nd, struct rte_mbuf **m, uint16_t n);
/* vhost TX queue -> ethdev port (the chains complete after the send). */
int sw_vhost_to_eth_poll(struct vre_poll_item *it);
/* Learn mode: the packets of sq's burst in mask, copied to ethdev port p.
 * Returns packets dropped without a count elsewhere (0 today). */
unsigned sw_learn_to_eth(struct sw_queue *sq, struct sw_port *p, uint32_t mask);

/* fwd.c */
extern const struct vre_net_app_ops sw_app_ops;
/* Fills every port's queue table and the static TX -> RX map, and assigns
 * each RX queue (and the TX queues feeding it) a worker. */
int sw_plan(struct sw *s);
void sw_unplan(struct sw *s);
/* Moves every queue to the next worker of the pool (worker i -> i+1 mod n)
 * through the quiesce handshake, under traffic: all items are removed
 * (each removal returns once its worker is out), the owners rotate, the
 * items are added again. Groups stay together, so every RX ring keeps a
 * single writer. Returns the items moved, 0 with one worker, -ENOTSUP with
 * ethdev ports (they belong to the first worker), -EIO when an item could
 * not be added back (logged; that queue is no longer polled). Control
 * thread or main thread; takes s->lock. */
int sw_rebalance(struct sw *s);

/* Totals over the running queues and the counters of stopped ones. */
struct sw_port_totals {
	uint64_t rx_pkts, rx_bytes;  /* delivered to the guest (RX queues) */
	uint64_t tx_pkts, tx_bytes;  /* taken from the guest (TX queues) */
	uint64_t drops;              /* every reason, both directions */
	uint64_t drop_no_dst;
	uint64_t drop_no_rx_buf;     /* the guest gave no RX buffer in time */
	uint64_t drop_bad;           /* short header, bad chain, too big, broken ring */
	uint64_t notify_saturated;   /* notifications the guest's call eventfd did not take
				      * (its counter full, or a blocked write cut short) */
};
void sw_port_totals(struct sw *s, struct sw_port *p, struct sw_port_totals *t);

#endif
