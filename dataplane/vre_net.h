/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * virtio-net over vhost-user: the device model (features, config space,
 * queues), the vhost<->vhost packet paths and the control queue.
 *
 * The device model runs on the control thread (it is the ctx of the
 * vre_device_ops given to control). The packet paths run on the worker that
 * polls a queue; they take no lock, allocate nothing and make no syscall
 * except the call-eventfd write when the driver asked for a notification.
 *
 * Everything read from guest memory is hostile. The paths only ever use
 * lengths the ring layer validated (chain iovecs are inside guest memory).
 * The virtio-net header a guest sends on TX is read only when the queue
 * negotiated a host offload (CSUM, HOST_TSO4/6), exactly once into a local,
 * and validated before anything in it is used (net_offload.c; each broken
 * rule is a counted drop, drop_ol[], and a log line rate-limited per
 * queue); without those features it is not read at all. The RX header is written, never read.
 *
 * Offloads (net_offload.c): a TX packet whose header asks for nothing
 * (flags 0, gso_type NONE) takes the fast paths. One that asks for a
 * checksum or segmentation leaves them: it is passed to a destination that
 * negotiated the matching GUEST_* features with its validated header in the
 * same single copy, and otherwise finished here (checksum completed, GSO
 * frames segmented into MSS-sized frames written straight into the
 * destination's RX chains). A frame longer than a destination's MTU + 18
 * is segmented when it is GSO and dropped (drop_over_mtu) otherwise.
 */
#ifndef VRE_NET_H
#define VRE_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vre_control.h"
#include "vre_log.h"

/* virtio-net feature bits (virtio spec 5.1.3) and common ones. */
#define VRE_NET_F_CSUM         0   /* device takes partially checksummed TX */
#define VRE_NET_F_GUEST_CSUM   1   /* driver takes partially checksummed RX */
#define VRE_NET_F_MTU          3
#define VRE_NET_F_GUEST_TSO4   7
#define VRE_NET_F_GUEST_TSO6   8
#define VRE_NET_F_GUEST_ECN    9
#define VRE_NET_F_HOST_TSO4    11
#define VRE_NET_F_HOST_TSO6    12
#define VRE_NET_F_HOST_ECN     13
#define VRE_NET_F_MAC          5
#define VRE_NET_F_MRG_RXBUF    15
#define VRE_NET_F_STATUS       16
#define VRE_NET_F_CTRL_VQ      17
#define VRE_NET_F_CTRL_RX      18
#define VRE_NET_F_MQ           22
#define VRE_F_INDIRECT_DESC    28
#define VRE_F_EVENT_IDX        29
#define VRE_F_PROTOCOL_FEATURES 30
#define VRE_F_VERSION_1        32
#define VRE_F_RING_PACKED      34
#define VRE_F_IN_ORDER         35

/* The offload features VRE offers (what vre_net_config.features_mask
 * removes for a port without offloads). UFO is not offered: Linux guests no
 * longer send it, and a UDP GSO header is then a counted drop. */
#define VRE_NET_OFFLOAD_FEATURES                                                \
	((1ull << VRE_NET_F_CSUM) | (1ull << VRE_NET_F_GUEST_CSUM) |            \
	 (1ull << VRE_NET_F_GUEST_TSO4) | (1ull << VRE_NET_F_GUEST_TSO6) |      \
	 (1ull << VRE_NET_F_GUEST_ECN) | (1ull << VRE_NET_F_HOST_TSO4) |        \
	 (1ull << VRE_NET_F_HOST_TSO6) | (1ull << VRE_NET_F_HOST_ECN))

/* vhost-user protocol feature bits. */
#define VRE_PF_MQ                  0
#define VRE_PF_LOG_SHMFD           1
#define VRE_PF_RARP                2
#define VRE_PF_REPLY_ACK           3
#define VRE_PF_MTU                 4
#define VRE_PF_BACKEND_REQ         5
#define VRE_PF_CONFIG              9
#define VRE_PF_INFLIGHT_SHMFD      12
#define VRE_PF_RESET_DEVICE        13
#define VRE_PF_CONFIGURE_MEM_SLOTS 15
#define VRE_PF_STATUS              16

/* The spec's virtio_net_config, as far as VRE fills it (12 bytes). */
#define VRE_NET_S_LINK_UP 1u
struct vre_net_config_space {
	uint8_t mac[6];
	uint16_t status;
	uint16_t max_virtqueue_pairs;
	uint16_t mtu;
} __attribute__((packed));

/* virtio_net_hdr with num_buffers (the first VRE_NET_HDR_BASE_LEN bytes
 * without it). */
#define VRE_NET_HDR_BASE_LEN 10u
struct vre_net_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
} __attribute__((packed));

/* virtio_net_hdr flags and gso_type values (virtio spec 5.1.6). */
#define VRE_NET_HDR_F_NEEDS_CSUM 1
#define VRE_NET_HDR_F_DATA_VALID 2
#define VRE_NET_HDR_GSO_NONE     0
#define VRE_NET_HDR_GSO_TCPV4    1
#define VRE_NET_HDR_GSO_UDP      3
#define VRE_NET_HDR_GSO_TCPV6    4
#define VRE_NET_HDR_GSO_ECN      0x80

/* Largest frame the TX path accepts: a 64 KiB IP datagram behind an
 * Ethernet header with a VLAN tag. Anything longer is a bad chain. */
#define VRE_NET_MAX_FRAME (65535u + 18u)
/* Smallest and largest MTU NET_SET_MTU accepts (68: IPv4 minimum). */
#define VRE_NET_MIN_MTU 68u
#define VRE_NET_MAX_MTU 65535u
/* A frame may exceed the MTU by an Ethernet header and one VLAN tag. */
#define VRE_NET_L2_MAX 18u
/* Most frames one GSO packet may become (gso_size smaller than
 * frame / VRE_NET_MAX_SEGS is refused). */
#define VRE_NET_MAX_SEGS 1024u
/* Largest Ethernet + IP + TCP header a GSO packet may have: VLAN-tagged
 * Ethernet, IPv4 with options, TCP with options. */
#define VRE_NET_OL_HDRS_MAX 144u

/* Control queue (virtio spec 5.1.6.5). */
#define VRE_NET_CTRL_RX               0
#define VRE_NET_CTRL_MAC              1
#define VRE_NET_CTRL_MAC_TABLE_SET    0
#define VRE_NET_CTRL_MAC_ADDR_SET     1
#define VRE_NET_CTRL_MQ               4
#define VRE_NET_CTRL_MQ_VQ_PAIRS_SET  0
#define VRE_NET_OK  0
#define VRE_NET_ERR 1

struct vre_net_config {
	uint8_t mac[6];
	uint16_t mtu;             /* 0: no MTU feature and no limit; else offered in
				   * config space and enforced on RX (frames up to
				   * mtu + VRE_NET_L2_MAX, GSO frames segmented to it) */
	uint16_t max_queue_pairs; /* >= 1; MQ + CTRL_VQ offered when > 1 */
	uint64_t features_mask;   /* features the user turned off (e.g. to force split or no mrg_rxbuf) */
};

/* Why a TX packet's offload request was refused (one counter each). */
enum vre_net_ol_drop {
	VRE_OL_DROP_FEATURE = 0, /* a checksum, GSO type or ECN the queue did not negotiate, or an unknown gso_type */
	VRE_OL_DROP_CSUM,        /* csum_start/csum_offset beyond the frame; GSO without NEEDS_CSUM or not at the TCP checksum */
	VRE_OL_DROP_GSO_SIZE,    /* gso_size 0, larger than the frame, or more than VRE_NET_MAX_SEGS segments */
	VRE_OL_DROP_HDR_LEN,     /* hdr_len beyond the frame */
	VRE_OL_DROP_TOO_LONG,    /* a GSO frame whose IP datagram exceeds 64 KiB */
	VRE_OL_DROP_HEADERS,     /* headers that do not parse as what gso_type says (Ethernet/VLAN, IPv4 or IPv6, TCP; fragments) */
	VRE_OL_DROP_COUNT
};
/* "feature", "csum", "gso-size", "hdr-len", "too-long", "headers". */
const char *vre_net_ol_drop_name(enum vre_net_ol_drop r);

/* Per-queue counters: one writer (the worker that polls the queue), read by anyone. */
struct vre_net_stats {
	uint64_t packets, bytes;
	uint64_t drop_short_hdr;   /* TX chain shorter than the net header */
	uint64_t drop_no_rx_buf;   /* RX: no chain available */
	uint64_t drop_too_big;     /* RX: packet larger than the chain(s) it could use */
	uint64_t drop_bad_chain;   /* chain with wrong direction (TX chain with writable part only, RX without writable) or -ENOBUFS;
				    * also a TX frame over VRE_NET_MAX_FRAME and an RX chain too small for the header */
	uint64_t drop_queue_broken;
	uint64_t bursts, empty_polls;
	/* Additions. */
	uint64_t drop_no_mbuf;     /* TX to mbuf: the mempool ran dry */
	uint64_t ctrl_err;         /* control queue: commands answered VRE_NET_ERR */
	/* Offloads. TX queue: what the guest asked for. */
	uint64_t ol_csum_in;       /* packets taken with NEEDS_CSUM (GSO ones included) */
	uint64_t ol_gso_in, ol_gso_in_bytes; /* GSO packets taken, and their bytes */
	uint64_t drop_ol[VRE_OL_DROP_COUNT]; /* offload requests refused, by reason */
	/* RX queue (or the mbuf side of a TX queue): how they were delivered. */
	uint64_t ol_gso_out;       /* GSO frames delivered whole, header passed on */
	uint64_t ol_csum_out;      /* frames delivered with NEEDS_CSUM passed on */
	uint64_t ol_sw_csum;       /* checksums completed by the device */
	uint64_t ol_sw_gso;        /* GSO packets segmented by the device */
	uint64_t ol_sw_segs;       /* frames they became (each delivered or counted as a drop) */
	uint64_t ol_data_valid;    /* frames marked DATA_VALID (checksum checked by a NIC) */
	uint64_t drop_over_mtu;    /* a frame (not GSO) longer than the destination's MTU + 18 */
};

struct vre_net_queue {          /* one per vhost-user virtqueue of a net device */
	struct vre_queue *q;        /* control's queue: q->vq, q->call_fd */
	struct vre_net_dev *dev;
	uint16_t hdr_len;           /* 12 with VERSION_1 or MRG_RXBUF (or packed), else 10 */
	bool mrg_rxbuf;
	bool is_tx;                 /* odd index = TX (guest->host) */
	struct vre_net_stats st;
	/* Additions. */
	bool is_ctrl;               /* the control queue (index 2 * max_queue_pairs) */
	bool broken_seen;           /* the TX ring broke: counted once */
	/* Offloads, from the negotiated features (0: none; all zero is a
	 * queue without offloads or MTU, as before they existed). */
	uint8_t ol_tx;              /* TX: VRE_OL_* the driver may ask for; 0: the header is not read */
	uint8_t ol_rx;              /* RX: VRE_OL_* the driver takes */
	struct vre_ratelimit ol_rl; /* TX: log lines about refused offload requests */
	uint16_t mtu;               /* RX: frames up to mtu + VRE_NET_L2_MAX; 0: no limit */
};

/* vre_net_queue.ol_tx / ol_rx bits: CSUM, TSO4, TSO6, ECN (HOST_* on a TX
 * queue, GUEST_* on an RX queue). */
#define VRE_OL_CSUM 1u
#define VRE_OL_TSO4 2u
#define VRE_OL_TSO6 4u
#define VRE_OL_ECN  8u

struct vre_net_app_ops {        /* supplied by the application (switch) */
	int (*queue_start)(void *app, struct vre_net_dev *n, struct vre_net_queue *nq);
	void (*queue_stop)(void *app, struct vre_net_dev *n, struct vre_net_queue *nq); /* returns when no worker is inside */
	/* SEND_RARP (after a live migration, on the destination): the guest
	 * with this MAC is now behind n; announce it to the network (learn it
	 * on this port, flood a RARP from it). Control thread; optional. */
	void (*announce)(void *app, struct vre_net_dev *n, const uint8_t mac[6]);
};

/* A 60-byte RARP request from mac, as QEMU's announce_self_create and
 * DPDK's make_rarp_packet build it (broadcast, EtherType 0x8035, opcode 3,
 * sender = target = mac, addresses 0). Returns the frame length. */
#define VRE_NET_RARP_LEN 60u
unsigned vre_net_rarp_frame(const uint8_t mac[6], uint8_t frame[VRE_NET_RARP_LEN]);

int vre_net_dev_create(const struct vre_net_config *cfg, const struct vre_net_app_ops *app_ops,
		       void *app, struct vre_net_dev **out);
void vre_net_dev_destroy(struct vre_net_dev *n);
/* The ops to pass to vre_dev_create, with ctx = the vre_net_dev. Its queue_start/queue_stop
 * set q->dp to the vre_net_queue and call the app's. Control queue: app gets it too (nq->q->index == 2*pairs) and polls it with vre_net_ctrl_poll.
 *
 * The offered features and queue count depend on each device's config, so
 * every device has its own ops (vre_net_dev_ops below, preferred). This
 * returns the ops of the device most recently created by the calling thread
 * that is still alive (call it right after vre_net_dev_create), or, when there
 * is none, ops for a default single-pair device. */
const struct vre_device_ops *vre_net_device_ops(void);
void vre_net_dev_set_control(struct vre_net_dev *n, struct vre_dev *dev); /* after vre_dev_create */
struct vre_net_queue *vre_net_dev_queue(struct vre_net_dev *n, uint16_t index);
const uint8_t *vre_net_dev_mac(const struct vre_net_dev *n);

/* Additions to the seam. */
/* This device's ops (features, config size and queue count from its config);
 * valid until vre_net_dev_destroy. */
const struct vre_device_ops *vre_net_dev_ops(const struct vre_net_dev *n);
/* Queues of the device: 2 * max_queue_pairs, + 1 control queue when pairs > 1. */
uint16_t vre_net_dev_num_queues(const struct vre_net_dev *n);
/* Queue pairs the driver asked for (VQ_PAIRS_SET; 1 until then). Any thread. */
uint16_t vre_net_dev_active_pairs(const struct vre_net_dev *n);
/* Negotiated features (0 before SET_FEATURES). */
uint64_t vre_net_dev_features(const struct vre_net_dev *n);
/* MTU set by NET_SET_MTU, else cfg.mtu (0: none). */
uint16_t vre_net_dev_mtu(const struct vre_net_dev *n);
/* MAC of the last SEND_RARP; false when none was received. */
bool vre_net_dev_rarp_mac(const struct vre_net_dev *n, uint8_t mac[6]);
/* RX mode bits the driver set through the control queue (bit = command
 * number of class VRE_NET_CTRL_RX: promisc 0, allmulti 1, ...). Recorded
 * only: the data plane does not filter (CTRL_RX is not offered). */
uint32_t vre_net_dev_rx_mode(const struct vre_net_dev *n);

/* A packet taken from a TX queue: header stripped, payload as iovecs into guest memory. */
struct vre_net_pkt {
	struct iovec *iov;   /* payload segments */
	uint16_t niov;
	uint32_t len;        /* payload bytes */
	const uint8_t *eth;  /* first bytes of the frame for MAC lookups, NULL when len < 14; points into guest memory or a small copy if the header spans segments
			      * (in guest memory the guest may change it at any time: read the MACs once, into locals) */
	uint8_t eth_copy[14];
};

/* A TX packet's offload request, validated (net_offload.c). The header was
 * read once from guest memory; everything here is the device's own copy. */
struct vre_net_ol {
	struct vre_net_hdr h;       /* flags (NEEDS_CSUM only), gso_type, gso_size,
				     * csum_start, csum_offset as the guest sent them;
				     * hdr_len: l2 + l3 + l4 for GSO (the guest's is a hint) */
	uint8_t l2_len, l3_len, l4_len; /* GSO: the parsed headers (0 otherwise) */
	bool ipv6;
	bool ecn;                   /* GSO with the ECN bit or CWR: needs GUEST_ECN to pass */
	uint8_t hdrs[VRE_NET_OL_HDRS_MAX]; /* GSO: the frame's first hdr_len bytes, copied once */
};

struct vre_net_tx_burst {       /* lives on the worker's stack or in its state */
	struct vre_chain chains[VRE_BURST];
	struct vre_net_pkt pkts[VRE_BURST];
	struct iovec pool[VRE_BURST * 8];
	uint16_t n;                 /* chains fetched (including bad ones, which are dropped+counted and completed by tx_done) */
	uint16_t npkts;             /* good packets, pkts[0..npkts) */
	uint16_t pkt_chain[VRE_BURST];  /* chain index of each good packet */
	uint32_t ol_mask;           /* packets with an offload request (bit i: pkts[i], ol[i]) */
	uint32_t len_or;            /* the packets' lengths ORed: >= the longest */
	struct vre_net_ol ol[VRE_BURST];
};

/* Fetch up to 32 TX chains from nq (a TX queue), turning them into packets. Returns npkts or -EIO. */
int vre_net_tx_fetch(struct vre_net_queue *nq, struct vre_net_tx_burst *b);
/* Copy pkts[i] for i in mask (bit i = packet i; mask covers npkts) into RX queue dst (one copy, writes the
 * virtio-net header with num_buffers), publish and notify dst. Returns frames delivered (a GSO packet
 * the device segments for dst is several); drops counted on dst, one per frame not delivered. */
int vre_net_rx_put(struct vre_net_queue *dst, const struct vre_net_tx_burst *b, uint32_t mask);
/* Complete every chain of the burst (len 0) on the TX queue, notify if needed. Call after the packets were published,
 * and complete a queue's bursts in the order they were fetched (VIRTIO_F_IN_ORDER, which the device offers, needs it;
 * with it the burst goes back as one used entry). */
void vre_net_tx_done(struct vre_net_queue *nq, struct vre_net_tx_burst *b);
/* The fused path for the common packet (one TX descriptor with header and frame, one RX descriptor, no offload
 * asked for): a burst straight from src's TX ring into dst's RX ring, no chain/packet/used arrays (net_fused.c).
 * Returns the packets forwarded (> 0), 0 when src has nothing available, -EAGAIN when the burst takes the general
 * path (tx_fetch, rx_put, tx_done) from its first packet that is not common; chains from there on are untouched. */
int vre_net_forward_fused(struct vre_net_queue *src_tx, struct vre_net_queue *dst_rx);
/* The fused path in two steps, for a caller that looks at the frames before it picks the destination (learn mode).
 * take: a run of common TX chains from src (returns as vre_net_forward_fused: > 0 taken, 0 nothing available,
 * -EAGAIN: take the general path); frame i is tx->len[i] - src->hdr_len bytes at tx->base[i] + src->hdr_len, in
 * guest memory (read what is needed once, into locals), and may be shorter than an Ethernet header. Then either
 * put (the run into dst's RX ring as vre_net_forward_fused does: returns packets forwarded, the rest of the run
 * given back; -EAGAIN when none) or giveback (the whole run back to src untouched; the general path takes it). */
int vre_net_fused_take(struct vre_net_queue *src_tx, struct vre_run *tx);
int vre_net_fused_put(struct vre_net_queue *src_tx, struct vre_run *tx, struct vre_net_queue *dst_rx);
void vre_net_fused_giveback(struct vre_net_queue *src_tx, struct vre_run *tx);
/* tx_fetch + rx_put(all) + tx_done: the loopback / xconnect path, one burst of up to 32 chains. Returns packets
 * forwarded. (vre-switch tries vre_net_forward_fused first and takes this path on -EAGAIN.) */
int vre_net_forward(struct vre_net_queue *src_tx, struct vre_net_queue *dst_rx);
/*
 * The RX writer, for packet sources other than a vhost TX queue (DPDK
 * mbufs: vre_net_mbuf.h; any source that has its packets as iovecs):
 * chains are taken from the RX queue as packets need them, each packet
 * written with one copy per (source, destination) segment pair, with the
 * virtio-net header (num_buffers when MRG_RXBUF), published with one
 * complete call per VRE_COMPLETE_MAX chains (a mergeable frame's chains
 * together) and at most one notification per burst.
 * The same writer serves vre_net_rx_put, so the header, num_buffers and
 * no-chain-lost rules are the same for every source. On the worker that
 * owns the RX queue; struct vre_net_rx lives on its stack:
 *   vre_net_rx_begin(&rx, nq, n);
 *   for each packet: vre_net_rx_one(&rx, iov, niov, len);
 *   vre_net_rx_end(&rx);
 */
struct vre_net_rx {
	struct vre_net_queue *nq;
	struct vre_vq *vq;
	uint16_t n, next;                 /* chains[next..n) fetched, not yet used */
	uint16_t nused;
	uint16_t want;                    /* packets still to come in this burst */
	bool dry;                         /* the ring had no chain: stop asking */
	bool notify;
	bool broken;
	bool logging;                     /* vq->log was set at begin (migration) */
	struct vre_log_batch log;         /* pages written, while logging */
	struct vre_chain chains[VRE_BURST];
	struct vre_used used[VRE_COMPLETE_MAX]; /* a mergeable frame's chains publish together */
	struct iovec pool[VRE_BURST * 8];
};

/* Starts a burst of up to npkts packets into RX queue nq (fetches at most
 * one chain per packet still to come). */
void vre_net_rx_begin(struct vre_net_rx *rx, struct vre_net_queue *nq, uint16_t npkts);
/* Writes one packet (len bytes in iov[0..niov)). true when delivered;
 * otherwise the drop was counted on the queue. */
bool vre_net_rx_one(struct vre_net_rx *rx, const struct iovec *iov, unsigned niov,
		    uint32_t len);
/* vre_net_rx_one with a virtio-net header of the caller's (its first
 * VRE_NET_HDR_BASE_LEN bytes; num_buffers is the writer's) instead of an
 * all-zero one: offload flags (DATA_VALID, NEEDS_CSUM, GSO) the RX queue's
 * driver negotiated (the caller checks). vh NULL: vre_net_rx_one. */
bool vre_net_rx_frame(struct vre_net_rx *rx, const struct vre_net_hdr *vh,
		      const struct iovec *iov, unsigned niov, uint32_t len);
/* Publishes what is left, returns unused chains with len 0, notifies once. */
void vre_net_rx_end(struct vre_net_rx *rx);

/* The control queue: handles every pending command with a proper ack. Returns commands handled. */
int vre_net_ctrl_poll(struct vre_net_queue *cq);

#endif
