/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Software checksum and TCP segmentation of a virtio-net offload request,
 * over iovecs (part of libvre). The vhost -> vhost path uses them to write
 * segments straight into RX chains; libvre-dpdk uses them to build mbufs
 * for a port without TSO or checksum offload. Any packet source with its
 * frame as iovecs and a validated request (struct vre_net_ol, as
 * vre_net_tx_fetch fills it) may use them; nothing here touches a queue.
 *
 * Usage:
 *   struct vre_net_seg s;
 *   uint32_t mss = vre_net_seg_mss(ol, mtu);        (0: nothing fits)
 *   vre_net_seg_begin(&s, ol, iov, niov, len, mss, partial);
 *   while ((n = vre_net_seg_next(&s, out, VRE_NET_SEG_IOV, &flen)))
 *       write out[0..n), flen bytes;
 *
 * Segments follow Linux's tcp_gso_segment (see net_offload.h). Checksums
 * are stored in memory order as summed; a completed L4 checksum of 0 is
 * written as 0xffff. The request must have been validated (the TX fetch
 * does it): these functions trust ol's offsets.
 */
#ifndef VRE_NET_SEG_H
#define VRE_NET_SEG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vre_net.h"

/* Iovecs a segment or a patched frame may need: a header, the payload
 * slice over every segment of the largest TX chain, two spare. */
#define VRE_NET_SEG_IOV (VRE_BURST * 8 + 4)

/* The value NEEDS_CSUM asks for: the complemented sum of bytes
 * [csum_start, len) of iov[0..niov) (0 written as 0xffff). */
uint16_t vre_net_csum_complete(const struct iovec *iov, unsigned niov, uint32_t len,
			       uint16_t csum_start);

/* Segmentation of a validated GSO packet, one segment at a time. */
struct vre_net_seg {
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
uint32_t vre_net_seg_mss(const struct vre_net_ol *ol, uint16_t mtu);
/* Segments the packet (len bytes in iov[0..niov)) into frames of at most
 * hl + mss bytes. Returns the number of segments. */
unsigned vre_net_seg_begin(struct vre_net_seg *s, const struct vre_net_ol *ol,
			   const struct iovec *iov, unsigned niov, uint32_t len, uint32_t mss,
			   bool partial);
/* The next segment as iovecs: iov[0] is s->hdr (valid until the next
 * call), the rest the payload slice in the packet's memory. Returns the
 * iovec count (at most cap, which must be >= niov + 2), 0 after the last. */
unsigned vre_net_seg_next(struct vre_net_seg *s, struct iovec *iov, unsigned cap,
			  uint32_t *len);

/* iov's bytes [off, off + len) as iovecs into out (at most cap). Returns
 * the count, or 0 when the range is not inside iov or cap is too small. */
unsigned vre_net_iov_slice(const struct iovec *iov, unsigned niov, uint64_t off, uint64_t len,
			   struct iovec *out, unsigned cap);

#endif
