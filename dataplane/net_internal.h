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

/*
 * The header of a one-buffer packet (all zeros, num_buffers 1 when hdr_len
 * is 12) into base, stored only where the buffer does not hold it already,
 * as DPDK's ASSIGN_UNLESS_EQUAL does: a driver that recycles its RX
 * buffers finds the same header there every time, so its line stays shared
 * instead of moving to this core and back for every packet. The load is of
 * guest memory the guest may change at any time: harmless, it only decides
 * whether the guest's own buffer is written.
 */
static inline void net_hdr_put(uint8_t *base, uint16_t hdr_len)
{
	const struct vre_net_hdr h = { .num_buffers = 1 };
	uint64_t lo, want_lo;
	uint32_t hi, want_hi;
	uint16_t hi2;

	memcpy(&want_lo, &h, 8);
	memcpy(&want_hi, (const uint8_t *)&h + 8, 4);
	memcpy(&lo, base, 8);
	if (hdr_len == sizeof(h)) {
		memcpy(&hi, base + 8, 4);
		if ((lo ^ want_lo) | (hi ^ want_hi))
			memcpy(base, &h, sizeof(h));
	} else {
		memcpy(&hi2, base + 8, 2);
		if ((lo ^ want_lo) | hi2)
			memcpy(base, &h, offsetof(struct vre_net_hdr, num_buffers));
	}
}

/* Writable bytes of the chain the next frame would start in (fetching one
 * if none is held), 0 when the ring has none. */
uint64_t net_rx_room(struct vre_net_rx *rx);

#endif
