/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * virtio-net <-> DPDK mbuf paths (libvre-dpdk, built when libdpdk is found:
 * pkg-config libvre-dpdk).
 * Packets are copied once: guest memory is not DMA-able for a NIC and a
 * guest could change it while a NIC reads it, so zero copy is not offered.
 */
#ifndef VRE_NET_MBUF_H
#define VRE_NET_MBUF_H

#include <rte_mbuf.h>

#include "vre_net.h"

/* Copies each packet of b (mask) into a new mbuf from mp. Returns mbufs produced into out.
 * Packets longer than one mbuf's data room become segment chains. out
 * receives at most popcount(mask) mbufs, in packet order; packets that got
 * none (mempool empty, or a frame needing more than VRE_NET_MBUF_MAX_SEGS
 * segments) are counted in nq's drop_no_mbuf. */
int vre_net_tx_to_mbufs(struct vre_net_queue *nq, const struct vre_net_tx_burst *b, uint32_t mask,
			struct rte_mempool *mp, struct rte_mbuf **out);
/* Writes up to n mbufs into RX queue dst (does not free them). Returns how many were delivered; the first
 * return value packets were copied, the rest dropped and counted.
 * (Precisely: packets are written in order and each failure is counted on
 * dst; when the ring runs dry every later packet fails too, so the delivered
 * ones are a prefix unless a single packet was too big for its chains.) */
int vre_net_rx_from_mbufs(struct vre_net_queue *dst, struct rte_mbuf **pkts, uint16_t n);

/* Most segments one packet may have on either path. */
#define VRE_NET_MBUF_MAX_SEGS 64

#endif
