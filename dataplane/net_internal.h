/* SPDX-License-Identifier: BSD-3-Clause */
/* What the net files share and nobody else sees. */
#ifndef NET_INTERNAL_H
#define NET_INTERNAL_H

#include <string.h>

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

/* The header of a one-buffer packet into base: all zeros (no offload),
 * num_buffers 1 when hdr_len is 12. */
static inline void net_hdr_put(uint8_t *base, uint16_t hdr_len)
{
	const struct vre_net_hdr h = { .num_buffers = 1 };

	/* hdr_len is 10 or 12: the first hdr_len bytes of h */
	if (hdr_len == sizeof(h))
		memcpy(base, &h, sizeof(h));
	else
		memcpy(base, &h, offsetof(struct vre_net_hdr, num_buffers));
}

#endif
