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

/* Writable bytes of the chain the next frame would start in (fetching one
 * if none is held), 0 when the ring has none. */
uint64_t net_rx_room(struct vre_net_rx *rx);

#endif
