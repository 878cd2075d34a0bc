/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The virtio-net control queue (virtio spec 5.1.6.5). A command chain is
 * {u8 class, u8 cmd, data...} readable, then writable bytes whose last one is
 * the ack. The guest can lay this out over any descriptors, so everything is
 * read through the iovecs, once, into locals.
 *
 * A chain without the two command bytes or without a writable byte cannot
 * be answered: it is counted (drop_bad_chain) and completed with len 0.
 * Every other command gets VRE_NET_OK or VRE_NET_ERR and len 1.
 */
#include <errno.h>
#include <string.h>

#include "net_internal.h"
#include "vre_log.h"

#define RX_CMD_MAX 5u   /* NOBCAST, the last RX mode command */

struct ctrl_cmd {
	const struct iovec *iov;  /* readable part */
	unsigned n;
	uint64_t dlen;            /* data bytes after class and cmd */
	uint8_t class, cmd;
};

static size_t cmd_read(const struct ctrl_cmd *c, uint64_t off, void *dst, size_t len)
{
	return vre_iov_read(c->iov, c->n, 2 + off, dst, len);
}

/* RX mode: one byte, 0 or 1. Recorded; the data plane does not filter. */
static uint8_t ctrl_rx(struct vre_net_dev *n, const struct ctrl_cmd *c)
{
	uint8_t on;
	uint32_t mode;

	if (c->cmd > RX_CMD_MAX || c->dlen != 1 || cmd_read(c, 0, &on, 1) != 1 || on > 1)
		return VRE_NET_ERR;
	mode = __atomic_load_n(&n->rx_mode, __ATOMIC_RELAXED);
	mode = on ? mode | (1u << c->cmd) : mode & ~(1u << c->cmd);
	__atomic_store_n(&n->rx_mode, mode, __ATOMIC_RELAXED);
	return VRE_NET_OK;
}

/* MAC_TABLE_SET: two tables {le32 entries; u8 mac[entries][6]} that must
 * fill the data exactly. Checked, not applied (no filtering). */
static uint8_t ctrl_mac_table(const struct ctrl_cmd *c)
{
	uint64_t off = 0;

	for (int t = 0; t < 2; t++) {
		uint32_t entries;

		if (c->dlen - off < 4 || cmd_read(c, off, &entries, 4) != 4)
			return VRE_NET_ERR;
		off += 4;
		if ((c->dlen - off) / 6 < entries)
			return VRE_NET_ERR;
		off += 6ull * entries;
	}
	return off == c->dlen ? VRE_NET_OK : VRE_NET_ERR;
}

static uint8_t ctrl_mac(struct vre_net_dev *n, const struct ctrl_cmd *c)
{
	uint8_t mac[6];

	if (c->cmd == VRE_NET_CTRL_MAC_TABLE_SET)
		return ctrl_mac_table(c);
	if (c->cmd != VRE_NET_CTRL_MAC_ADDR_SET || c->dlen != 6 ||
	    cmd_read(c, 0, mac, 6) != 6 || (mac[0] & 1))
		return VRE_NET_ERR;
	memcpy(n->ctrl_mac, mac, 6);
	n->ctrl_mac_set = true;
	return VRE_NET_OK;
}

static uint8_t ctrl_mq(struct vre_net_dev *n, const struct ctrl_cmd *c)
{
	uint16_t pairs;

	if (c->cmd != VRE_NET_CTRL_MQ_VQ_PAIRS_SET || c->dlen != 2 ||
	    cmd_read(c, 0, &pairs, 2) != 2)
		return VRE_NET_ERR;
	if (pairs < 1 || pairs > n->cfg.max_queue_pairs) {
		VRE_WARN("net", "VQ_PAIRS_SET %u refused (max %u)", pairs,
			 n->cfg.max_queue_pairs);
		return VRE_NET_ERR;
	}
	__atomic_store_n(&n->active_pairs, pairs, __ATOMIC_RELAXED);
	return VRE_NET_OK;
}

static uint8_t ctrl_dispatch(struct vre_net_dev *n, const struct ctrl_cmd *c)
{
	switch (c->class) {
	case VRE_NET_CTRL_RX:
		return ctrl_rx(n, c);
	case VRE_NET_CTRL_MAC:
		return ctrl_mac(n, c);
	case VRE_NET_CTRL_MQ:
		return ctrl_mq(n, c);
	default:
		return VRE_NET_ERR;
	}
}

/* Handles one chain; returns the used length (1: acked, 0: malformed). */
static uint32_t ctrl_handle(struct vre_net_queue *cq, const struct vre_chain *ch)
{
	struct ctrl_cmd c = { .iov = ch->iov, .n = ch->nr };
	uint8_t hdr[2], ack;
	uint8_t *ackp = NULL;

	for (unsigned i = ch->nw; i-- > 0;) {
		const struct iovec *v = &ch->iov[ch->nr + i];

		if (v->iov_len) {
			ackp = (uint8_t *)v->iov_base + v->iov_len - 1;
			break;
		}
	}
	if (ch->err || !ackp || ch->rlen < 2 || vre_iov_read(c.iov, c.n, 0, hdr, 2) != 2) {
		cq->st.drop_bad_chain++;
		return 0;
	}
	c.class = hdr[0];
	c.cmd = hdr[1];
	c.dlen = ch->rlen - 2;
	ack = ctrl_dispatch(cq->dev, &c);
	if (ack != VRE_NET_OK) {
		cq->st.ctrl_err++;
		VRE_DEBUG("net", "control command class %u cmd %u refused", c.class, c.cmd);
	}
	*ackp = ack;
	if (cq->q->vq.log) {
		/* migrating: the ack byte is device-written guest memory */
		struct vre_log_batch b;
		struct iovec v = { .iov_base = ackp, .iov_len = 1 };

		vre_log_batch_init(&b, cq->q->vq.log);
		vre_vq_log_iov(&cq->q->vq, &b, &v, 1, 1);
		vre_log_batch_flush(&b);
	}
	cq->st.packets++;
	return 1;
}

int vre_net_ctrl_poll(struct vre_net_queue *cq)
{
	struct vre_chain chains[VRE_BURST];
	struct vre_used used[VRE_BURST];
	struct iovec pool[VRE_BURST * 4];
	struct vre_vq *vq = &cq->q->vq;
	int handled = 0, n;

	/* Bounded by the ring size: a driver that keeps posting cannot hold
	 * the worker here. */
	do {
		n = vre_vq_fetch(vq, chains, VRE_BURST, pool, sizeof(pool) / sizeof(pool[0]));
		if (n < 0) {
			if (!cq->broken_seen) {
				cq->broken_seen = true;
				cq->st.drop_queue_broken++;
			}
			return handled ? handled : n;
		}
		for (int i = 0; i < n; i++)
			used[i] = vre_used_of(&chains[i], ctrl_handle(cq, &chains[i]));
		if (n && vre_vq_complete(vq, used, (unsigned)n) == 0 && vre_vq_needs_notify(vq))
			vre_queue_notify(cq->q);
		handled += n;
	} while (n == VRE_BURST && handled < vq->size);
	if (handled)
		cq->st.bursts++;
	else
		cq->st.empty_polls++;
	return handled;
}
