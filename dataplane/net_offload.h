/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * virtio-net offloads inside the data plane (net_offload.c): validating the
 * header a guest sends with a TX packet, and delivering such a packet to a
 * destination that can or cannot take what it asks for. One job: the
 * offload path; the fast paths in net_path.c never come here for a packet
 * whose header asks for nothing.
 *
 * Checksums are RFC 1071 one's complement sums over bytes in memory order
 * (the result is stored as it was summed, so no byte swapping is needed on
 * either endianness). A completed L4 checksum that comes out 0 is written
 * as 0xffff, as Linux does (a UDP checksum of 0 would mean "none").
 *
 * Segmentation (vre_net_seg_*, public in vre_net_seg.h) follows Linux's
 * tcp_gso_segment: every segment gets the headers of the GSO frame with, for IPv4, total length, an IP id
 * incremented per segment and a new header checksum; for IPv6 the payload
 * length; TCP sequence numbers advanced by the MSS, FIN and PSH only on the
 * last segment, CWR only on the first, and the TCP checksum computed from
 * scratch (pseudo header, TCP header, payload) or, for a destination that
 * takes NEEDS_CSUM, left partial (the pseudo header's sum). The guest's
 * checksum field is never trusted for a GSO frame.
 */
#ifndef NET_OFFLOAD_H
#define NET_OFFLOAD_H

#include "net_internal.h"
#include "vre_net_seg.h"

/* TX: validates the request in h (the header's first 10 bytes, copied once
 * from guest memory by the caller) for packet p of queue nq. Returns 1 and
 * fills ol when the packet asks for a checksum or GSO; 0 when it asks for
 * nothing the device acts on (the packet stays plain); -1 when the request
 * breaks a rule: counted in nq->st.drop_ol[] and logged (rate-limited per queue). */
int net_ol_tx(struct vre_net_queue *nq, const struct vre_net_hdr *h, const struct vre_net_pkt *p,
	      struct vre_net_ol *ol);

/* RX: delivers p into rx's queue: with its header when the destination
 * negotiated what it asks for, else with the checksum completed or as
 * segments. ol NULL: a plain frame over the destination's MTU (dropped,
 * drop_over_mtu). Returns the frames delivered; each frame not delivered
 * is one counted drop. */
int net_ol_rx(struct vre_net_rx *rx, const struct vre_net_pkt *p, const struct vre_net_ol *ol);

/* One's complement sum (folded to 16 bits, not complemented) of len bytes
 * from byte off of iov[0..niov), as one stream. */
uint16_t net_csum_iov(const struct iovec *iov, unsigned niov, uint64_t off, uint64_t len);

#endif
