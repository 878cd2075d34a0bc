/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The virtio-net device model: what the device offers, its config space, and
 * the per-queue state control hands to the data plane. Runs on the control
 * thread; the only fields a worker writes are the queue counters and, for the
 * control queue's worker, active_pairs / rx_mode / ctrl_mac.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net_internal.h"
#include "vre_log.h"

#define BIT(n) (1ull << (n))

static uint64_t net_features(const struct vre_net_config *cfg)
{
	/* IN_ORDER: every path completes chains in the order it fetched them
	 * (net_path.c; the control queue one burst at a time), and with it
	 * the driver takes its cheaper in-order paths and TX bursts go back
	 * with one used entry (vre_vq_complete_inorder). */
	uint64_t f = BIT(VRE_F_VERSION_1) | BIT(VRE_F_RING_PACKED) |
		     BIT(VRE_F_EVENT_IDX) | BIT(VRE_F_INDIRECT_DESC) |
		     BIT(VRE_F_PROTOCOL_FEATURES) | BIT(VRE_NET_F_MRG_RXBUF) |
		     BIT(VRE_NET_F_MAC) | BIT(VRE_NET_F_STATUS) | BIT(VRE_F_IN_ORDER) |
		     VRE_NET_OFFLOAD_FEATURES;

	if (cfg->mtu)
		f |= BIT(VRE_NET_F_MTU);
	if (cfg->max_queue_pairs > 1)
		f |= BIT(VRE_NET_F_MQ) | BIT(VRE_NET_F_CTRL_VQ);
	/* PROTOCOL_FEATURES is the vhost-user handshake, not a device choice. */
	f &= ~(cfg->features_mask & ~BIT(VRE_F_PROTOCOL_FEATURES));
	/* What the spec makes depend on a masked bit goes with it. */
	if (!(f & BIT(VRE_F_VERSION_1)))
		f &= ~BIT(VRE_F_RING_PACKED);
	if (!(f & BIT(VRE_NET_F_CTRL_VQ)))
		f &= ~(BIT(VRE_NET_F_MQ) | BIT(VRE_NET_F_CTRL_RX));
	if (!(f & BIT(VRE_NET_F_CSUM)))
		f &= ~(BIT(VRE_NET_F_HOST_TSO4) | BIT(VRE_NET_F_HOST_TSO6));
	if (!(f & (BIT(VRE_NET_F_HOST_TSO4) | BIT(VRE_NET_F_HOST_TSO6))))
		f &= ~BIT(VRE_NET_F_HOST_ECN);
	if (!(f & BIT(VRE_NET_F_GUEST_CSUM)))
		f &= ~(BIT(VRE_NET_F_GUEST_TSO4) | BIT(VRE_NET_F_GUEST_TSO6));
	if (!(f & (BIT(VRE_NET_F_GUEST_TSO4) | BIT(VRE_NET_F_GUEST_TSO6))))
		f &= ~BIT(VRE_NET_F_GUEST_ECN);
	return f;
}

/* Whether f needs a bit it lacks: a feature without one it depends on. */
static bool lacks(uint64_t f, uint64_t bits, uint64_t needs_any)
{
	return (f & bits) && !(f & needs_any);
}

/* The spec's feature dependencies (5.1.3.1) that the device relies on.
 * The packed layout exists only for VERSION_1 drivers; TSO needs checksum
 * offload in the same direction, ECN needs TSO. MQ without CTRL_VQ is
 * normal here: QEMU and virtio-user serve the control queue themselves and
 * never pass CTRL_VQ down to the backend. NULL when consistent, else what
 * is wrong. */
static const char *features_inconsistent(uint64_t f)
{
	if (lacks(f, BIT(VRE_F_RING_PACKED), BIT(VRE_F_VERSION_1)))
		return "RING_PACKED without VERSION_1";
	if (lacks(f, BIT(VRE_NET_F_HOST_TSO4) | BIT(VRE_NET_F_HOST_TSO6), BIT(VRE_NET_F_CSUM)))
		return "HOST_TSO4/6 without CSUM";
	if (lacks(f, BIT(VRE_NET_F_HOST_ECN), BIT(VRE_NET_F_HOST_TSO4) | BIT(VRE_NET_F_HOST_TSO6)))
		return "HOST_ECN without HOST_TSO4/6";
	if (lacks(f, BIT(VRE_NET_F_GUEST_TSO4) | BIT(VRE_NET_F_GUEST_TSO6),
		  BIT(VRE_NET_F_GUEST_CSUM)))
		return "GUEST_TSO4/6 without GUEST_CSUM";
	if (lacks(f, BIT(VRE_NET_F_GUEST_ECN), BIT(VRE_NET_F_GUEST_TSO4) | BIT(VRE_NET_F_GUEST_TSO6)))
		return "GUEST_ECN without GUEST_TSO4/6";
	return NULL;
}

static uint64_t net_protocol_features(void)
{
	/* LOG_SHMFD: the RX paths mark what they write (net_path.c), so
	 * control may offer VHOST_F_LOG_ALL; RARP: see net_send_rarp. */
	return BIT(VRE_PF_MQ) | BIT(VRE_PF_LOG_SHMFD) | BIT(VRE_PF_RARP) |
	       BIT(VRE_PF_REPLY_ACK) | BIT(VRE_PF_MTU) |
	       BIT(VRE_PF_BACKEND_REQ) | BIT(VRE_PF_CONFIG) |
	       BIT(VRE_PF_INFLIGHT_SHMFD) | BIT(VRE_PF_RESET_DEVICE) |
	       BIT(VRE_PF_CONFIGURE_MEM_SLOTS) | BIT(VRE_PF_STATUS);
}

static uint16_t queues_for(uint16_t pairs)
{
	return (uint16_t)(2u * pairs + (pairs > 1 ? 1u : 0u));
}

/* The header layout follows the negotiated features: num_buffers exists with
 * VERSION_1 or MRG_RXBUF (packed rings require VERSION_1 anyway). */
static uint16_t hdr_len_for(uint64_t f)
{
	if (f & (BIT(VRE_F_VERSION_1) | BIT(VRE_NET_F_MRG_RXBUF) | BIT(VRE_F_RING_PACKED)))
		return sizeof(struct vre_net_hdr);
	return offsetof(struct vre_net_hdr, num_buffers);
}

/* The VRE_OL_* bits of f: host (TX) or guest (RX) side. */
static uint8_t ol_bits(uint64_t f, bool host)
{
	uint8_t b = 0;

	if (f & BIT(host ? VRE_NET_F_CSUM : VRE_NET_F_GUEST_CSUM))
		b |= VRE_OL_CSUM;
	if (f & BIT(host ? VRE_NET_F_HOST_TSO4 : VRE_NET_F_GUEST_TSO4))
		b |= VRE_OL_TSO4;
	if (f & BIT(host ? VRE_NET_F_HOST_TSO6 : VRE_NET_F_GUEST_TSO6))
		b |= VRE_OL_TSO6;
	if (f & BIT(host ? VRE_NET_F_HOST_ECN : VRE_NET_F_GUEST_ECN))
		b |= VRE_OL_ECN;
	return b;
}

/* Control thread, with the queue stopped (SET_FEATURES comes before the
 * rings start; queue_start applies them again). */
static void queue_apply_features(struct vre_net_dev *n, struct vre_net_queue *nq)
{
	nq->hdr_len = hdr_len_for(n->features);
	nq->mrg_rxbuf = (n->features & BIT(VRE_NET_F_MRG_RXBUF)) != 0;
	nq->ol_tx = nq->is_tx ? ol_bits(n->features, true) : 0;
	nq->ol_rx = !nq->is_tx && !nq->is_ctrl ? ol_bits(n->features, false) : 0;
	nq->mtu = n->mtu;
}

static void net_fill_config(const struct vre_net_dev *n, struct vre_net_config_space *c)
{
	memset(c, 0, sizeof(*c));
	memcpy(c->mac, n->cfg.mac, sizeof(c->mac));
	c->status = VRE_NET_S_LINK_UP;
	c->max_virtqueue_pairs = n->cfg.max_queue_pairs;
	c->mtu = n->cfg.mtu;
}

static int net_get_config(void *ctx, uint32_t offset, void *buf, uint32_t len)
{
	struct vre_net_dev *n = ctx;
	struct vre_net_config_space c;

	if (offset > sizeof(c) || len > sizeof(c) - offset)
		return -EINVAL;
	net_fill_config(n, &c);
	memcpy(buf, (const uint8_t *)&c + offset, len);
	return 0;
}

/* Every field is read-only for a VERSION_1 driver; legacy MAC writes are not
 * supported because workers read the MAC without a lock. */
static int net_set_config(void *ctx, uint32_t offset, const void *buf, uint32_t len)
{
	(void)ctx;
	(void)buf;
	VRE_WARN("net", "refused SET_CONFIG offset %u len %u: read-only", offset, len);
	return -EPERM;
}

static int net_set_features(void *ctx, uint64_t features)
{
	struct vre_net_dev *n = ctx;

	if (features & ~n->ops.features) {
		VRE_ERR("net", "SET_FEATURES 0x%llx has bits not offered (0x%llx)",
			(unsigned long long)features, (unsigned long long)n->ops.features);
		return -EINVAL;
	}
	if (features_inconsistent(features)) {
		VRE_ERR("net", "SET_FEATURES 0x%llx: %s", (unsigned long long)features,
			features_inconsistent(features));
		return -EINVAL;
	}
	n->features = features;
	for (uint16_t i = 0; i < n->nqueues; i++)
		queue_apply_features(n, &n->queues[i]);
	VRE_DEBUG("net", "features 0x%llx:%s%s%s%s", (unsigned long long)features,
		  features & BIT(VRE_F_RING_PACKED) ? " packed" : " split",
		  features & BIT(VRE_F_IN_ORDER) ? " in-order" : "",
		  features & BIT(VRE_NET_F_MRG_RXBUF) ? " mrg_rxbuf" : "",
		  features & BIT(VRE_F_EVENT_IDX) ? " event_idx" : "");
	return 0;
}

static int net_set_mtu(void *ctx, uint16_t mtu)
{
	struct vre_net_dev *n = ctx;

	if (mtu < VRE_NET_MIN_MTU || (n->cfg.mtu && mtu > n->cfg.mtu)) {
		VRE_ERR("net", "NET_SET_MTU %u refused (allowed %u..%u)", mtu,
			VRE_NET_MIN_MTU, n->cfg.mtu ? n->cfg.mtu : VRE_NET_MAX_MTU);
		return -EINVAL;
	}
	n->mtu = mtu;
	return 0;
}

/*
 * SEND_RARP: QEMU 7.2 on the destination of a live migration, right after
 * the device started (qemu_announce_self -> vhost_user_migration_done),
 * asks the backend to announce the guest, once per announce round (5 by
 * default, 50 ms then 100 ms apart), but only when the driver did not ack
 * VIRTIO_NET_F_GUEST_ANNOUNCE; with it QEMU asks the guest instead. VRE
 * does not offer GUEST_ANNOUNCE (it would need the control queue in the
 * backend, and the guest announces only after it handled the config
 * interrupt, and only for its configured addresses): the backend's
 * announcement comes first and does not depend on the guest.
 */
static int net_send_rarp(void *ctx, const uint8_t mac[6])
{
	struct vre_net_dev *n = ctx;

	memcpy(n->rarp_mac, mac, 6);
	n->rarp_seen = true;
	VRE_INFO("net", "SEND_RARP for %02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1],
		 mac[2], mac[3], mac[4], mac[5]);
	if (n->app_ops && n->app_ops->announce)
		n->app_ops->announce(n->app, n, mac);
	return 0;
}

unsigned vre_net_rarp_frame(const uint8_t mac[6], uint8_t f[VRE_NET_RARP_LEN])
{
	static const uint8_t arp_hdr[8] = {
		0x00, 0x01, /* hardware: Ethernet */
		0x08, 0x00, /* protocol: IPv4 */
		6, 4,       /* address lengths */
		0x00, 0x03, /* opcode: reverse request */
	};

	memset(f, 0, VRE_NET_RARP_LEN);
	memset(f, 0xff, 6);
	memcpy(f + 6, mac, 6);
	f[12] = 0x80;
	f[13] = 0x35;
	memcpy(f + 14, arp_hdr, sizeof(arp_hdr));
	memcpy(f + 22, mac, 6); /* sender hardware address */
	memcpy(f + 32, mac, 6); /* target hardware address */
	return VRE_NET_RARP_LEN;
}

static int net_queue_start(void *ctx, struct vre_queue *q)
{
	struct vre_net_dev *n = ctx;
	struct vre_net_queue *nq;
	int ret;

	if (q->index >= n->nqueues)
		return -EINVAL;
	nq = &n->queues[q->index];
	nq->q = q;
	nq->broken_seen = false;
	memset(&nq->ol_rl, 0, sizeof(nq->ol_rl));
	queue_apply_features(n, nq);
	/* The data paths never wait for RX buffers: a packet without one is
	 * dropped (drop_no_rx_buf). A kick after each RX refill would cost
	 * the driver a system call and the device nothing but a wake-up it
	 * ignores, so the driver is told not to send them (perf/cachelines.md:
	 * one eventfd write per 32 packets in testpmd's virtio PMD, most of
	 * VRE's small-packet gap to DPDK's vhost PMD, which does the same). */
	if (!nq->is_tx && !nq->is_ctrl)
		vre_vq_notify_disable(&q->vq);
	q->dp = nq;
	ret = n->app_ops && n->app_ops->queue_start ?
		      n->app_ops->queue_start(n->app, n, nq) : 0;
	if (ret < 0)
		q->dp = NULL;
	return ret;
}

static void net_queue_stop(void *ctx, struct vre_queue *q)
{
	struct vre_net_dev *n = ctx;

	if (q->index >= n->nqueues || q->dp != &n->queues[q->index])
		return;
	if (n->app_ops && n->app_ops->queue_stop)
		n->app_ops->queue_stop(n->app, n, &n->queues[q->index]);
	q->dp = NULL;
}

/* The next frontend starts from the device's initial state. */
static void net_disconnected(void *ctx)
{
	struct vre_net_dev *n = ctx;

	n->features = 0;
	n->mtu = n->cfg.mtu;
	__atomic_store_n(&n->active_pairs, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&n->rx_mode, 0, __ATOMIC_RELAXED);
	n->ctrl_mac_set = false;
}

static void net_fill_ops(struct vre_device_ops *o, const struct vre_net_config *cfg)
{
	memset(o, 0, sizeof(*o));
	o->name = "virtio-net";
	o->features = net_features(cfg);
	o->protocol_features = net_protocol_features();
	o->max_queues = queues_for(cfg->max_queue_pairs);
	o->config_size = sizeof(struct vre_net_config_space);
	o->get_config = net_get_config;
	o->set_config = net_set_config;
	o->set_features = net_set_features;
	o->set_mtu = net_set_mtu;
	o->send_rarp = net_send_rarp;
	o->queue_start = net_queue_start;
	o->queue_stop = net_queue_stop;
	o->disconnected = net_disconnected;
}

static _Thread_local struct vre_net_dev *last_created;

int vre_net_dev_create(const struct vre_net_config *cfg, const struct vre_net_app_ops *app_ops,
		       void *app, struct vre_net_dev **out)
{
	struct vre_net_dev *n;
	uint16_t nq;

	*out = NULL;
	/* 2 * pairs + 1 queues must fit the u16 queue count; virtio allows
	 * 0x8000 pairs, more than a vhost-user index (8 bits) can address. */
	if (!cfg || cfg->max_queue_pairs < 1 || cfg->max_queue_pairs > 127)
		return -EINVAL;
	if (cfg->mtu && cfg->mtu < VRE_NET_MIN_MTU)
		return -EINVAL;
	nq = queues_for(cfg->max_queue_pairs);
	n = calloc(1, sizeof(*n) + nq * sizeof(n->queues[0]));
	if (!n)
		return -ENOMEM;
	n->cfg = *cfg;
	n->app_ops = app_ops;
	n->app = app;
	n->nqueues = nq;
	n->mtu = cfg->mtu;
	n->active_pairs = 1;
	net_fill_ops(&n->ops, cfg);
	for (uint16_t i = 0; i < nq; i++) {
		n->queues[i].dev = n;
		n->queues[i].is_ctrl = cfg->max_queue_pairs > 1 && i == 2 * cfg->max_queue_pairs;
		n->queues[i].is_tx = !n->queues[i].is_ctrl && (i & 1);
		queue_apply_features(n, &n->queues[i]);
	}
	last_created = n;
	*out = n;
	return 0;
}

void vre_net_dev_destroy(struct vre_net_dev *n)
{
	if (!n)
		return;
	if (last_created == n)
		last_created = NULL;
	free(n);
}

const struct vre_device_ops *vre_net_device_ops(void)
{
	static struct vre_device_ops def;
	static const struct vre_net_config def_cfg = { .max_queue_pairs = 1 };

	if (last_created)
		return &last_created->ops;
	if (!def.name)
		net_fill_ops(&def, &def_cfg);
	return &def;
}

const struct vre_device_ops *vre_net_dev_ops(const struct vre_net_dev *n)
{
	return &n->ops;
}

void vre_net_dev_set_control(struct vre_net_dev *n, struct vre_dev *dev)
{
	n->ctl = dev;
}

struct vre_net_queue *vre_net_dev_queue(struct vre_net_dev *n, uint16_t index)
{
	return index < n->nqueues ? &n->queues[index] : NULL;
}

const uint8_t *vre_net_dev_mac(const struct vre_net_dev *n)
{
	return n->cfg.mac;
}

uint16_t vre_net_dev_num_queues(const struct vre_net_dev *n)
{
	return n->nqueues;
}

uint16_t vre_net_dev_active_pairs(const struct vre_net_dev *n)
{
	return __atomic_load_n(&n->active_pairs, __ATOMIC_RELAXED);
}

uint64_t vre_net_dev_features(const struct vre_net_dev *n)
{
	return n->features;
}

uint16_t vre_net_dev_mtu(const struct vre_net_dev *n)
{
	return n->mtu;
}

bool vre_net_dev_rarp_mac(const struct vre_net_dev *n, uint8_t mac[6])
{
	if (!n->rarp_seen)
		return false;
	memcpy(mac, n->rarp_mac, 6);
	return true;
}

uint32_t vre_net_dev_rx_mode(const struct vre_net_dev *n)
{
	return __atomic_load_n(&n->rx_mode, __ATOMIC_RELAXED);
}
