/* SPDX-License-Identifier: BSD-3-Clause */
/* What the net files share and nobody else sees. */
#ifndef NET_INTERNAL_H
#define NET_INTERNAL_H

#include "vre_net.h"

struct vre_net_dev {
	struct vre_net_config cfg;
	struct vre_device_ops ops;        /* this device's offer */
	const struct vre_net_app_ops *app_ops;
	void *app;
	struct vre_dev *ctl;
	uint64_t features;                /* negotiated; control thread writes */
	uint16_t nqueues;
	uint16_t mtu;                     /* NET_SET_MTU, else cfg.mtu */
	uint16_t active_pairs;            /* control-queue worker writes, anyone reads */
	uint32_t rx_mode;                 /* control-queue worker writes */
	uint8_t ctrl_mac[6];              /* MAC_ADDR_SET, recorded only */
	bool ctrl_mac_set;
	uint8_t rarp_mac[6];
	bool rarp_seen;
	struct vre_net_queue queues[];    /* nqueues */
};

/*
 * The RX writer, shared by the vhost source (net_path.c) and the mbuf source
 * (net_mbuf.c): chains are taken from dst as packets need them, written with
 * one memcpy per (source, destination) segment pair, and published with one
 * complete call per 32 chains and at most one notification per burst.
 */
struct net_rx {
	struct vre_net_queue *nq;
	struct vre_vq *vq;
	uint16_t n, next;                 /* chains[next..n) fetched, not yet used */
	uint16_t nused;
	uint16_t want;                    /* packets still to come in this burst */
	bool dry;                         /* the ring had no chain: stop asking */
	bool notify;
	bool broken;
	struct vre_chain chains[VRE_BURST];
	struct vre_used used[VRE_BURST];
	struct iovec pool[VRE_BURST * 8];
};

void net_rx_begin(struct net_rx *rx, struct vre_net_queue *nq, uint16_t npkts);
/* Writes one packet (len bytes in iov[0..niov)). true when delivered;
 * otherwise the drop was counted on the queue. */
bool net_rx_one(struct net_rx *rx, const struct iovec *iov, unsigned niov,
		uint32_t len);
/* Publishes what is left, returns unused chains with len 0, notifies once. */
void net_rx_end(struct net_rx *rx);

#endif
