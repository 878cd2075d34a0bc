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
 * Segmentation (net_seg_*) follows Linux's tcp_gso_segment: every segment
 * gets the headers of the GSO frame with, for IPv4, total length, an IP id
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

/* Iovecs a segment or a patched frame may need: a header, the payload
 * slice over every segment of the largest TX chain, two spare. */
#define NET_OL_IOV (VRE_BURST * 8 + 4)

/* TX: validates the request in h (the header's first 10 bytes, copied once
 * from guest memory by the caller) for packet p of queue nq. Returns 1 and
 * fills ol when the packet asks for a checksum or GSO; 0 when it asks for
 * nothing the device acts on (the packet stays plain); -1 when the request
 * breaks a rule: counted in nq->st.drop_ol[] (first of each reason logged). */
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
/* The value NEEDS_CSUM asks for: the complemented sum of bytes
 * [csum_start, len) (0 written as 0xffff). */
uint16_t net_csum_complete(const struct iovec *iov, unsigned niov, uint32_t len,
			   uint16_t csum_start);

/* Segmentation of a validated GSO packet, one segment at a time. */
struct net_seg {
	const struct vre_net_ol *ol;
	const struct iovec *iov;     /* the packet */
	unsigned niov, si;           /* payload cursor: segment si, byte soff */
	size_t soff;
	uint32_t hl, left, mss;      /* header bytes, payload still to go, MSS */
	uint16_t k, n;               /* next segment, segments */
	bool partial;                /* leave the TCP checksum partial (NEEDS_CSUM) */
	uint8_t hdr[VRE_NET_OL_HDRS_MAX];
};

/* The MSS a destination of MTU mtu (0: none) can take for ol: gso_size,
 * or less when a segment would exceed the MTU; 0 when not even one byte
 * of payload fits. */
uint32_t net_seg_mss(const struct vre_net_ol *ol, uint16_t mtu);
/* Segments the packet (len bytes in iov[0..niov)) into frames of at most
 * hl + mss bytes. Returns the number of segments. */
unsigned net_seg_begin(struct net_seg *s, const struct vre_net_ol *ol, const struct iovec *iov,
		       unsigned niov, uint32_t len, uint32_t mss, bool partial);
/* The next segment as iovecs: iov[0] is s->hdr (valid until the next
 * call), the rest the payload slice in the packet's memory. Returns the
 * iovec count (at most cap, which must be >= niov + 2), 0 after the last. */
unsigned net_seg_next(struct net_seg *s, struct iovec *iov, unsigned cap, uint32_t *len);

/* iov's bytes [off, off + len) as iovecs into out (at most cap). Returns
 * the count, or 0 when the range is not inside iov or cap is too small. */
unsigned net_iov_slice(const struct iovec *iov, unsigned niov, uint64_t off, uint64_t len,
		       struct iovec *out, unsigned cap);

#endif
