/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * virtio-net <-> DPDK mbuf paths (libvre-dpdk, built when libdpdk is found:
 * pkg-config libvre-dpdk).
 * Packets are copied once: guest memory is not DMA-able for a NIC and a
 * guest could change it while a NIC reads it, so zero copy is not offered.
 *
 * Offloads toward a port (vre_net_tx_to_port): a guest's checksum or TSO
 * request becomes mbuf offload flags (RTE_MBUF_F_TX_TCP_SEG, TX_IPV4/6,
 * TX_IP_CKSUM, TX_TCP/UDP_CKSUM, tso_segsz, l2/l3/l4_len) when the port has
 * the capability enabled; otherwise the frame is finished here, from the
 * guest's iovecs straight into MSS-sized mbufs with complete checksums
 * (net_offload.c's segmenter; DPDK 22.11's rte_gso has no TCP/IPv6 and
 * would need the whole frame in an mbuf chain first). Toward a guest
 * (vre_net_rx_from_mbufs): a frame whose L4 checksum the NIC found good is
 * marked DATA_VALID for a guest that negotiated GUEST_CSUM.
 */
#ifndef VRE_NET_MBUF_H
#define VRE_NET_MBUF_H

#include <rte_mbuf.h>

#include "vre_net.h"

/* Copies each packet of b (mask) into a new mbuf from mp. Returns mbufs produced into out.
 * Packets longer than one mbuf's data room become segment chains. out
 * receives at most popcount(mask) mbufs, in packet order; packets that got
 * none (mempool empty, or a frame needing more than VRE_NET_MBUF_MAX_SEGS
 * segments) are counted in nq's drop_no_mbuf. Offload requests are not
 * looked at (the frames are copied as the guest sent them): a switch port
 * uses vre_net_tx_to_port. */
int vre_net_tx_to_mbufs(struct vre_net_queue *nq, const struct vre_net_tx_burst *b, uint32_t mask,
			struct rte_mempool *mp, struct rte_mbuf **out);
/* Writes up to n mbufs into RX queue dst (does not free them). Returns how many were delivered; the first
 * return value packets were copied, the rest dropped and counted. A frame
 * over dst's MTU + 18 is dropped (drop_over_mtu); one whose L4 checksum the
 * NIC found good (RTE_MBUF_F_RX_L4_CKSUM_GOOD) carries DATA_VALID when dst
 * negotiated GUEST_CSUM.
 * (Precisely: packets are written in order and each failure is counted on
 * dst; when the ring runs dry every later packet fails too, so the delivered
 * ones are a prefix unless a single packet was too big for its chains.) */
int vre_net_rx_from_mbufs(struct vre_net_queue *dst, struct rte_mbuf **pkts, uint16_t n);

/* Most segments one packet may have on either path. */
#define VRE_NET_MBUF_MAX_SEGS 64

/* What an ethdev port finishes itself. */
struct vre_net_mbuf_port {
	uint64_t tx_offloads; /* RTE_ETH_TX_OFFLOAD_{IPV4,TCP,UDP}_CKSUM, _TCP_TSO enabled on it */
	uint16_t mtu;         /* frames up to mtu + VRE_NET_L2_MAX (0: no limit); a TSO frame
			       * goes to the port only when its headers + MSS fit the MTU
			       * (net_tap counts the Ethernet header in it), else it is
			       * segmented here */
};

/* Takes n mbufs (ownership passes); called with n <= VRE_BURST. */
typedef void vre_net_mbuf_sink(void *ctx, struct rte_mbuf **m, unsigned n);

/* The packets of b in mask as mbufs for a port that can do port->tx_offloads,
 * handed to sink in order, VRE_BURST at most at a time. Offload requests
 * become mbuf flags the port finishes, or are finished here (checksums
 * completed, GSO segmented); a plain frame over the port's MTU is dropped.
 * Counted on nq: ol_gso_out / ol_csum_out (left to the port), ol_sw_gso,
 * ol_sw_segs, ol_sw_csum, drop_over_mtu, drop_no_mbuf. Returns the mbufs
 * handed over. */
int vre_net_tx_to_port(struct vre_net_queue *nq, const struct vre_net_tx_burst *b, uint32_t mask,
		       struct rte_mempool *mp, const struct vre_net_mbuf_port *port,
		       vre_net_mbuf_sink *sink, void *ctx);

#endif
