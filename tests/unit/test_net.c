/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * virtio-net: the device model, the vhost->vhost path and the control queue,
 * against the real split and packed rings played by a test driver. Path
 * tests run once per ring type (loop index 0 split, 1 packed).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "net_guest.h"
#include "rig.h"
#include "vdrv_split.h"
#include "vre_net.h"
#include "vring_internal.h"

#define F(b) (1ull << (b))
#define F_V1 F(VRE_F_VERSION_1)
#define F_MRG F(VRE_NET_F_MRG_RXBUF)
#define F_PACKED F(VRE_F_RING_PACKED)
#define HEAP (4u << 20)

/* ---- helpers ------------------------------------------------------------ */

/* The rig (rig.h) with this file's defaults: HEAP bytes per guest. */
static void port_open_ex(struct port *p, bool packed, uint64_t features, bool event_idx)
{
	port_open_heap(p, packed, features, event_idx, HEAP);
}

static void port_open(struct port *p, bool packed, uint64_t features)
{
	port_open_ex(p, packed, features, false);
}

/* Reads one received packet: its header, payload (across num_buffers
 * chains with MRG_RXBUF) and how many chains it used. */
static uint32_t recv_frame(struct port *p, uint8_t *out, uint16_t *nbufs)
{
	struct vre_net_hdr h;
	uint64_t token;
	uint32_t len, total;
	uint16_t id;
	const uint8_t zero[10] = { 0 };

	ck_assert_int_eq(guest_get_used(p->rx, &id, &len, &token), 1);
	ck_assert_uint_ge(len, p->hdr);
	memcpy(&h, guest_ptr(p->rx, token), p->hdr);
	ck_assert_mem_eq(&h, zero, 10); /* nothing of the source header leaks */
	*nbufs = p->hdr == 12 ? h.num_buffers : 1;
	total = len - p->hdr;
	memcpy(out, (uint8_t *)guest_ptr(p->rx, token) + p->hdr, total);
	for (uint16_t b = 1; b < *nbufs; b++) {
		ck_assert_int_eq(guest_get_used(p->rx, &id, &len, &token), 1);
		memcpy(out + total, guest_ptr(p->rx, token), len);
		total += len;
	}
	return total;
}

/* Every TX chain came back to the guest, with len 0 (nothing written). */
static void tx_all_back(struct port *p)
{
	uint32_t lens[64];
	unsigned n = drain_used(p->tx, lens, 64);

	for (unsigned i = 0; i < n && i < 64; i++)
		ck_assert_uint_eq(lens[i], 0);
	ck_assert_uint_eq(guest_inflight(p->tx), 0);
}

/* ---- device model ------------------------------------------------------- */

START_TEST(test_features_single_pair)
{
	struct vre_net_config cfg = { .mac = { 2, 1, 2, 3, 4, 5 }, .max_queue_pairs = 1 };
	struct vre_net_dev *n;
	const struct vre_device_ops *o;
	uint64_t want = F_V1 | F_PACKED | F(29) | F(28) | F(30) | F_MRG | F(5) | F(16) |
			F(VRE_F_IN_ORDER) |
			/* checksum, TSO 4/6 and ECN both ways */
			F(0) | F(1) | F(7) | F(8) | F(9) | F(11) | F(12) | F(13);

	ck_assert_int_eq(vre_net_dev_create(&cfg, NULL, NULL, &n), 0);
	o = vre_net_dev_ops(n);
	ck_assert_ptr_eq(vre_net_device_ops(), o);
	ck_assert_uint_eq(o->features, want);
	ck_assert_uint_eq(o->max_queues, 2);
	ck_assert_uint_eq(vre_net_dev_num_queues(n), 2);
	ck_assert_uint_eq(o->config_size, 12);
	ck_assert_uint_eq(o->protocol_features,
			  F(0) | F(1) | F(2) | F(3) | F(4) | F(5) | F(9) | F(12) | F(13) | F(15) |
			  F(16));
	ck_assert_mem_eq(vre_net_dev_mac(n), cfg.mac, 6);
	ck_assert_ptr_null(vre_net_dev_queue(n, 2));
	ck_assert(vre_net_dev_queue(n, 1)->is_tx && !vre_net_dev_queue(n, 0)->is_tx);
	vre_net_dev_destroy(n);
	/* No device left: the default ops still describe a sane device. */
	ck_assert_uint_eq(vre_net_device_ops()->max_queues, 2);
}
END_TEST

START_TEST(test_features_mq_mtu_mask)
{
	struct vre_net_config cfg = { .mtu = 9000, .max_queue_pairs = 4,
				      .features_mask = F_PACKED | F_MRG | F(30) };
	struct vre_net_dev *n;
	const struct vre_device_ops *o;

	ck_assert_int_eq(vre_net_dev_create(&cfg, NULL, NULL, &n), 0);
	o = vre_net_dev_ops(n);
	ck_assert(o->features & F(VRE_NET_F_MQ));
	ck_assert(o->features & F(VRE_NET_F_CTRL_VQ));
	ck_assert(o->features & F(VRE_NET_F_MTU));
	ck_assert(!(o->features & F_PACKED));
	ck_assert(!(o->features & F_MRG));
	ck_assert(o->features & F(VRE_F_IN_ORDER));
	ck_assert(o->features & F(30)); /* the handshake bit is not maskable */
	/* Offloads by default; never UFO (10, 14) or the legacy GSO bit (6). */
	ck_assert((o->features & VRE_NET_OFFLOAD_FEATURES) == VRE_NET_OFFLOAD_FEATURES);
	ck_assert(!(o->features & (F(6) | F(10) | F(14))));
	ck_assert_uint_eq(o->max_queues, 9);
	ck_assert(vre_net_dev_queue(n, 8)->is_ctrl);
	ck_assert(!vre_net_dev_queue(n, 8)->is_tx);
	ck_assert(vre_net_dev_queue(n, 7)->is_tx);
	ck_assert_uint_eq(vre_net_dev_active_pairs(n), 1);
	vre_net_dev_destroy(n);

	/* Masking a bit takes what depends on it along. */
	cfg.features_mask = F_V1 | F(VRE_NET_F_CTRL_VQ);
	ck_assert_int_eq(vre_net_dev_create(&cfg, NULL, NULL, &n), 0);
	ck_assert(!(vre_net_dev_ops(n)->features & (F_V1 | F_PACKED | F(VRE_NET_F_MQ) |
						    F(VRE_NET_F_CTRL_VQ))));
	vre_net_dev_destroy(n);

	/* Without checksum offload no TSO or ECN, per direction. */
	cfg.features_mask = F(VRE_NET_F_CSUM);
	ck_assert_int_eq(vre_net_dev_create(&cfg, NULL, NULL, &n), 0);
	ck_assert_uint_eq(vre_net_dev_ops(n)->features & VRE_NET_OFFLOAD_FEATURES,
			  F(1) | F(7) | F(8) | F(9));
	vre_net_dev_destroy(n);
	cfg.features_mask = F(VRE_NET_F_GUEST_CSUM);
	ck_assert_int_eq(vre_net_dev_create(&cfg, NULL, NULL, &n), 0);
	ck_assert_uint_eq(vre_net_dev_ops(n)->features & VRE_NET_OFFLOAD_FEATURES,
			  F(0) | F(11) | F(12) | F(13));
	vre_net_dev_destroy(n);
	cfg.features_mask = F(VRE_NET_F_HOST_TSO4) | F(VRE_NET_F_HOST_TSO6);
	ck_assert_int_eq(vre_net_dev_create(&cfg, NULL, NULL, &n), 0);
	ck_assert(!(vre_net_dev_ops(n)->features & F(VRE_NET_F_HOST_ECN)));
	vre_net_dev_destroy(n);
	cfg.features_mask = VRE_NET_OFFLOAD_FEATURES;
	ck_assert_int_eq(vre_net_dev_create(&cfg, NULL, NULL, &n), 0);
	ck_assert(!(vre_net_dev_ops(n)->features & VRE_NET_OFFLOAD_FEATURES));
	vre_net_dev_destroy(n);

	cfg.max_queue_pairs = 0;
	ck_assert_int_eq(vre_net_dev_create(&cfg, NULL, NULL, &n), -EINVAL);
	ck_assert_ptr_null(n);
	cfg.max_queue_pairs = 128; /* 257 queues: beyond an 8-bit vhost-user index */
	ck_assert_int_eq(vre_net_dev_create(&cfg, NULL, NULL, &n), -EINVAL);
}
END_TEST

START_TEST(test_config_space)
{
	struct vre_net_config cfg = { .mac = { 2, 1, 2, 3, 4, 5 }, .mtu = 1500,
				      .max_queue_pairs = 3 };
	struct vre_net_dev *n;
	const struct vre_device_ops *o;
	uint8_t buf[16], want[12] = { 2, 1, 2, 3, 4, 5, 1, 0, 3, 0, 0xdc, 0x05 };

	ck_assert_int_eq(vre_net_dev_create(&cfg, NULL, NULL, &n), 0);
	o = vre_net_dev_ops(n);
	memset(buf, 0xaa, sizeof(buf));
	ck_assert_int_eq(o->get_config(n, 0, buf, 12), 0);
	ck_assert_mem_eq(buf, want, 12);
	ck_assert_uint_eq(buf[12], 0xaa);
	memset(buf, 0xaa, sizeof(buf));
	ck_assert_int_eq(o->get_config(n, 6, buf, 2), 0); /* status */
	ck_assert_uint_eq(buf[0], 1);
	ck_assert_uint_eq(buf[1], 0);
	ck_assert_uint_eq(buf[2], 0xaa);
	ck_assert_int_eq(o->get_config(n, 12, buf, 0), 0);
	ck_assert_int_eq(o->get_config(n, 11, buf, 2), -EINVAL);
	ck_assert_int_eq(o->get_config(n, 13, buf, 0), -EINVAL);
	ck_assert_int_eq(o->get_config(n, 0, buf, 13), -EINVAL);
	ck_assert_int_eq(o->get_config(n, UINT32_MAX, buf, 2), -EINVAL);
	ck_assert_int_eq(o->get_config(n, 2, buf, UINT32_MAX), -EINVAL);
	ck_assert_int_eq(o->set_config(n, 0, want, 6), -EPERM);
	ck_assert_int_eq(o->get_config(n, 0, buf, 6), 0);
	ck_assert_mem_eq(buf, cfg.mac, 6);
	vre_net_dev_destroy(n);
}
END_TEST

START_TEST(test_set_features_hdr_len)
{
	struct vre_net_config cfg = { .max_queue_pairs = 2 };
	struct vre_net_dev *n;
	const struct vre_device_ops *o;

	ck_assert_int_eq(vre_net_dev_create(&cfg, NULL, NULL, &n), 0);
	o = vre_net_dev_ops(n);
	ck_assert_int_eq(o->set_features(n, 0), 0);
	for (uint16_t i = 0; i < 5; i++) {
		ck_assert_uint_eq(vre_net_dev_queue(n, i)->hdr_len, 10);
		ck_assert(!vre_net_dev_queue(n, i)->mrg_rxbuf);
	}
	ck_assert_int_eq(o->set_features(n, F_MRG), 0);
	for (uint16_t i = 0; i < 5; i++) {
		ck_assert_uint_eq(vre_net_dev_queue(n, i)->hdr_len, 12);
		ck_assert(vre_net_dev_queue(n, i)->mrg_rxbuf);
	}
	ck_assert_int_eq(o->set_features(n, F_V1), 0);
	ck_assert_uint_eq(vre_net_dev_queue(n, 3)->hdr_len, 12);
	ck_assert(!vre_net_dev_queue(n, 3)->mrg_rxbuf);
	ck_assert_int_eq(o->set_features(n, F_PACKED | F_V1), 0);
	ck_assert_uint_eq(vre_net_dev_queue(n, 0)->hdr_len, 12);
	ck_assert_uint_eq(vre_net_dev_features(n), F_PACKED | F_V1);
	/* A bit never offered (guest UFO) is refused, state unchanged. */
	ck_assert_int_eq(o->set_features(n, F_V1 | F(10)), -EINVAL);
	/* Combinations the spec forbids. */
	ck_assert_int_eq(o->set_features(n, F_PACKED), -EINVAL);
	ck_assert_int_eq(o->set_features(n, F_V1 | F(VRE_NET_F_HOST_TSO4)), -EINVAL);
	ck_assert_int_eq(o->set_features(n, F_V1 | F(VRE_NET_F_HOST_TSO6)), -EINVAL);
	ck_assert_int_eq(o->set_features(n, F_V1 | F(0) | F(VRE_NET_F_HOST_ECN)), -EINVAL);
	ck_assert_int_eq(o->set_features(n, F_V1 | F(VRE_NET_F_GUEST_TSO4)), -EINVAL);
	ck_assert_int_eq(o->set_features(n, F_V1 | F(VRE_NET_F_GUEST_TSO6)), -EINVAL);
	ck_assert_int_eq(o->set_features(n, F_V1 | F(1) | F(VRE_NET_F_GUEST_ECN)), -EINVAL);
	ck_assert_uint_eq(vre_net_dev_features(n), F_PACKED | F_V1);
	/* What a Linux guest asks for, and the queues' offload bits from it. */
	ck_assert_int_eq(o->set_features(n, F_V1 | F_MRG | VRE_NET_OFFLOAD_FEATURES), 0);
	ck_assert_uint_eq(vre_net_dev_queue(n, 1)->ol_tx,
			  VRE_OL_CSUM | VRE_OL_TSO4 | VRE_OL_TSO6 | VRE_OL_ECN);
	ck_assert_uint_eq(vre_net_dev_queue(n, 1)->ol_rx, 0);
	ck_assert_uint_eq(vre_net_dev_queue(n, 0)->ol_rx,
			  VRE_OL_CSUM | VRE_OL_TSO4 | VRE_OL_TSO6 | VRE_OL_ECN);
	ck_assert_uint_eq(vre_net_dev_queue(n, 0)->ol_tx, 0);
	ck_assert_uint_eq(vre_net_dev_queue(n, 4)->ol_rx, 0); /* the control queue */
	ck_assert_int_eq(o->set_features(n, F_V1 | F(0) | F(VRE_NET_F_HOST_TSO6)), 0);
	ck_assert_uint_eq(vre_net_dev_queue(n, 3)->ol_tx, VRE_OL_CSUM | VRE_OL_TSO6);
	ck_assert_uint_eq(vre_net_dev_queue(n, 2)->ol_rx, 0);
	/* MQ without CTRL_VQ is what QEMU sends (it keeps the control queue). */
	ck_assert_int_eq(o->set_features(n, F_V1 | F(VRE_NET_F_MQ)), 0);
	ck_assert_int_eq(o->set_features(n, F_PACKED | F_V1), 0);
	ck_assert_uint_eq(vre_net_dev_features(n), F_PACKED | F_V1);
	vre_net_dev_destroy(n);
}
END_TEST

START_TEST(test_mtu_and_rarp)
{
	struct vre_net_config cfg = { .mtu = 9000, .max_queue_pairs = 1 };
	struct vre_net_dev *n;
	const struct vre_device_ops *o;
	const uint8_t mac[6] = { 2, 9, 8, 7, 6, 5 };
	uint8_t got[6];

	ck_assert_int_eq(vre_net_dev_create(&cfg, NULL, NULL, &n), 0);
	o = vre_net_dev_ops(n);
	ck_assert_uint_eq(vre_net_dev_mtu(n), 9000);
	ck_assert_int_eq(o->set_mtu(n, 67), -EINVAL);
	ck_assert_int_eq(o->set_mtu(n, 9001), -EINVAL);
	ck_assert_uint_eq(vre_net_dev_mtu(n), 9000);
	ck_assert_int_eq(o->set_mtu(n, 68), 0);
	ck_assert_uint_eq(vre_net_dev_mtu(n), 68);
	ck_assert_int_eq(o->set_mtu(n, 9000), 0);
	ck_assert(!vre_net_dev_rarp_mac(n, got));
	ck_assert_int_eq(o->send_rarp(n, mac), 0);
	ck_assert(vre_net_dev_rarp_mac(n, got));
	ck_assert_mem_eq(got, mac, 6);
	vre_net_dev_destroy(n);

	cfg.mtu = 0; /* no MTU feature: anything from 68 up */
	ck_assert_int_eq(vre_net_dev_create(&cfg, NULL, NULL, &n), 0);
	ck_assert(!(vre_net_dev_ops(n)->features & F(VRE_NET_F_MTU)));
	ck_assert_int_eq(vre_net_dev_ops(n)->set_mtu(n, 65535), 0);
	vre_net_dev_destroy(n);
}
END_TEST

struct app_log {
	int starts, stops;
	struct vre_net_queue *last;
	int fail;
};

static int app_start(void *app, struct vre_net_dev *n, struct vre_net_queue *nq)
{
	struct app_log *l = app;

	ck_assert_ptr_eq(nq->dev, n);
	ck_assert_ptr_eq(nq->q->dp, nq);
	l->starts++;
	l->last = nq;
	return l->fail;
}

static void app_stop(void *app, struct vre_net_dev *n, struct vre_net_queue *nq)
{
	struct app_log *l = app;

	(void)n;
	l->stops++;
	l->last = nq;
}

START_TEST(test_queue_start_stop)
{
	static const struct vre_net_app_ops aops = { .queue_start = app_start, .queue_stop = app_stop };
	struct vre_net_config cfg = { .max_queue_pairs = 1 };
	struct app_log log = { 0 };
	struct vre_net_dev *n;
	const struct vre_device_ops *o;
	struct guest *g = guest_new(false, 16, 4096, false, 1);
	struct vre_queue bad = { .index = 2 };

	ck_assert_int_eq(vre_net_dev_create(&cfg, &aops, &log, &n), 0);
	o = vre_net_dev_ops(n);
	ck_assert_int_eq(o->set_features(n, F_V1 | F_MRG), 0);
	ck_assert_int_eq(o->queue_start(n, &g->q), 0);
	ck_assert_int_eq(log.starts, 1);
	ck_assert_ptr_eq(log.last, vre_net_dev_queue(n, 1));
	ck_assert_ptr_eq(log.last->q, &g->q);
	ck_assert(log.last->is_tx && log.last->mrg_rxbuf);
	ck_assert_uint_eq(log.last->hdr_len, 12);
	o->queue_stop(n, &g->q);
	ck_assert_int_eq(log.stops, 1);
	ck_assert_ptr_null(g->q.dp);
	o->queue_stop(n, &g->q); /* not started: the app is not called again */
	ck_assert_int_eq(log.stops, 1);
	ck_assert_int_eq(o->queue_start(n, &bad), -EINVAL);
	log.fail = -ENOMEM;
	ck_assert_int_eq(o->queue_start(n, &g->q), -ENOMEM);
	ck_assert_ptr_null(g->q.dp);
	o->disconnected(n);
	ck_assert_uint_eq(vre_net_dev_features(n), 0);
	vre_net_dev_destroy(n);
	guest_free(g);
}
END_TEST

/* The driver is asked for no kicks on RX queues (the device never waits
 * for RX buffers), and TX queues are left to the worker's arm/disarm. */
START_TEST(test_rx_queue_no_kicks)
{
	bool packed = _i;
	struct port p;

	port_open(&p, packed, F_V1 | F_MRG);
	if (packed) {
		ck_assert_uint_eq(p.rx->dev_ev->flags, VRE_PACKED_EVENT_DISABLE);
		ck_assert_uint_eq(p.tx->dev_ev->flags, VRE_PACKED_EVENT_ENABLE);
	} else {
		ck_assert_uint_eq(p.rx->q.vq.sp.used->flags, VRE_USED_F_NO_NOTIFY);
		ck_assert_uint_eq(p.tx->q.vq.sp.used->flags, 0);
	}
	port_close(&p);
}
END_TEST

/* ---- TX ------------------------------------------------------------------ */

START_TEST(test_tx_header_split)
{
	struct port p;
	struct vre_net_tx_burst b;
	uint8_t frame[100], got[100];
	uint64_t gpa;
	uint16_t id;
	uint32_t len;
	uint64_t token;

	port_open(&p, _i, F_V1 | F_MRG);
	make_frame(frame, sizeof(frame), 1);
	/* Header over three descriptors (5 | 4 | 3 + 6 payload), the Ethernet
	 * header across two more (6 | rest). */
	gpa = guest_alloc(p.tx, 12 + 100);
	memset(guest_ptr(p.tx, gpa), 0x77, 12);
	memcpy((uint8_t *)guest_ptr(p.tx, gpa) + 12, frame, 100);
	{
		struct gbuf bufs[4] = { { gpa, 5, false }, { gpa + 5, 4, false },
					{ gpa + 9, 3 + 6, false }, { gpa + 18, 94, false } };

		ck_assert_int_ge(guest_add(p.tx, bufs, 4, 42), 0);
	}
	ck_assert_int_eq(vre_net_tx_fetch(p.txq, &b), 1);
	ck_assert_uint_eq(b.n, 1);
	ck_assert_uint_eq(b.pkts[0].len, 100);
	ck_assert_uint_eq(b.pkts[0].niov, 2);
	ck_assert_uint_eq(b.pkts[0].iov[0].iov_len, 6);
	/* Payload iovecs point into guest memory: no copy on TX. */
	ck_assert_ptr_eq(b.pkts[0].iov[0].iov_base, guest_ptr(p.tx, gpa + 12));
	ck_assert_uint_eq(vre_iov_read(b.pkts[0].iov, b.pkts[0].niov, 0, got, 100), 100);
	ck_assert_mem_eq(got, frame, 100);
	ck_assert_ptr_eq(b.pkts[0].eth, b.pkts[0].eth_copy);
	ck_assert_mem_eq(b.pkts[0].eth, frame, 14);
	ck_assert_uint_eq(p.txq->st.packets, 1);
	ck_assert_uint_eq(p.txq->st.bytes, 100);
	ck_assert_uint_eq(guest_inflight(p.tx), 1);
	vre_net_tx_done(p.txq, &b);
	ck_assert_int_eq(guest_get_used(p.tx, &id, &len, &token), 1);
	ck_assert_uint_eq(len, 0);
	ck_assert_uint_eq(token, 42);
	ck_assert_uint_eq(guest_calls(p.tx), 1);

	/* Header alone in its descriptor: the payload starts with the next one,
	 * no empty segment in front. */
	send_frame(p.tx, 12, frame, 100, true);
	ck_assert_int_eq(vre_net_tx_fetch(p.txq, &b), 1);
	ck_assert_uint_eq(b.pkts[0].niov, 1);
	ck_assert_uint_eq(b.pkts[0].iov[0].iov_len, 100);
	ck_assert_ptr_ne(b.pkts[0].eth, b.pkts[0].eth_copy);
	ck_assert_mem_eq(b.pkts[0].eth, frame, 14);
	vre_net_tx_done(p.txq, &b);

	/* Contiguous header + frame: eth points into guest memory. */
	send_frame(p.tx, 12, frame, 100, false);
	ck_assert_int_eq(vre_net_tx_fetch(p.txq, &b), 1);
	ck_assert_uint_eq(b.pkts[0].niov, 1);
	ck_assert_ptr_ne(b.pkts[0].eth, b.pkts[0].eth_copy);
	ck_assert_mem_eq(b.pkts[0].eth, frame, 14);
	vre_net_tx_done(p.txq, &b);
	port_close(&p);
}
END_TEST

START_TEST(test_tx_short_and_bad)
{
	struct port p;
	struct vre_net_tx_burst b;
	uint8_t frame[64];
	uint64_t g1 = 0, g2, g3;
	uint32_t lens[8];

	port_open(&p, _i, F_V1);
	make_frame(frame, sizeof(frame), 2);
	/* 1: eleven bytes over two descriptors: shorter than the header. */
	g1 = guest_alloc(p.tx, 16);
	{
		struct gbuf bufs[2] = { { g1, 6, false }, { g1 + 6, 5, false } };

		guest_add(p.tx, bufs, 2, 1);
	}
	/* 2: writable only. */
	g2 = guest_alloc(p.tx, 64);
	{
		struct gbuf bufs[1] = { { g2, 64, true } };

		guest_add(p.tx, bufs, 1, 2);
	}
	/* 3: a good frame followed by a writable part, which is ignored. */
	g3 = guest_alloc(p.tx, 12 + 64 + 32);
	memset(guest_ptr(p.tx, g3), 0, 12);
	memcpy((uint8_t *)guest_ptr(p.tx, g3) + 12, frame, 64);
	memset((uint8_t *)guest_ptr(p.tx, g3) + 76, 0xcd, 32);
	{
		struct gbuf bufs[2] = { { g3, 76, false }, { g3 + 76, 32, true } };

		guest_add(p.tx, bufs, 2, 3);
	}
	/* 4: exactly a header: an empty frame, no Ethernet header. */
	send_frame(p.tx, 12, frame, 0, false);

	ck_assert_int_eq(vre_net_tx_fetch(p.txq, &b), 2);
	ck_assert_uint_eq(b.n, 4);
	ck_assert_uint_eq(b.pkt_chain[0], 2);
	ck_assert_uint_eq(b.pkts[0].len, 64);
	ck_assert_mem_eq(b.pkts[0].eth, frame, 14);
	ck_assert_uint_eq(b.pkt_chain[1], 3);
	ck_assert_uint_eq(b.pkts[1].len, 0);
	ck_assert_ptr_null(b.pkts[1].eth);
	ck_assert_uint_eq(p.txq->st.drop_short_hdr, 1);
	ck_assert_uint_eq(p.txq->st.drop_bad_chain, 1);
	vre_net_tx_done(p.txq, &b);
	/* Every chain comes back, dropped or not, with nothing written. */
	ck_assert_uint_eq(drain_used(p.tx, lens, 8), 4);
	for (int i = 0; i < 4; i++)
		ck_assert_uint_eq(lens[i], 0);
	tx_all_back(&p);
	for (int i = 0; i < 32; i++)
		ck_assert_uint_eq(((uint8_t *)guest_ptr(p.tx, g3))[76 + i], 0xcd);
	port_close(&p);
}
END_TEST

START_TEST(test_tx_empty_and_broken)
{
	struct port p;
	struct vre_net_tx_burst b;

	port_open(&p, _i, F_V1);
	ck_assert_int_eq(vre_net_tx_fetch(p.txq, &b), 0);
	ck_assert_uint_eq(p.txq->st.empty_polls, 1);
	vre_net_tx_done(p.txq, &b);
	ck_assert_uint_eq(guest_calls(p.tx), 0);
	vre_vq_break(&p.tx->q.vq, VRE_RE_HEAD_OUT_OF_RANGE);
	ck_assert_int_eq(vre_net_forward(p.txq, p.rxq), -EIO);
	ck_assert_int_eq(vre_net_forward(p.txq, p.rxq), -EIO);
	ck_assert_uint_eq(p.txq->st.drop_queue_broken, 1);
	port_close(&p);
}
END_TEST

/* ---- RX / forward --------------------------------------------------------- */

static const uint32_t sizes[] = { 64, 1518, 9000 };

/* Each frame in its own burst; returns the chains it used. */
static uint16_t forward_one(struct port *p, uint32_t len, unsigned seed)
{
	uint8_t *frame = malloc(len), *got = malloc(len + 64);
	uint16_t nbufs;

	make_frame(frame, len, seed);
	send_frame(p->tx, p->hdr, frame, len, seed & 1);
	ck_assert_int_eq(vre_net_forward(p->txq, p->rxq), 1);
	ck_assert_uint_eq(recv_frame(p, got, &nbufs), len);
	ck_assert_mem_eq(got, frame, len);
	free(frame);
	free(got);
	return nbufs;
}

START_TEST(test_rx_mergeable_sizes)
{
	struct port p;
	/* 1526-byte buffers: 12 + 64 fits one; 12 + 1518 = 1530 needs two;
	 * 12 + 9000 = 9012 needs six (5 * 1526 = 7630). */
	const uint16_t want[] = { 1, 2, 6 };

	port_open(&p, _i, F_V1 | F_MRG);
	post_rx(p.rx, 64, 1526, 1);
	for (int k = 0; k < 3; k++)
		ck_assert_uint_eq(forward_one(&p, sizes[k], (unsigned)k), want[k]);
	ck_assert_uint_eq(p.rxq->st.packets, 3);
	ck_assert_uint_eq(p.rxq->st.bytes, 64 + 1518 + 9000);
	ck_assert_uint_eq(guest_inflight(p.rx), 64 - 9);
	tx_all_back(&p);
	port_close(&p);
}
END_TEST

START_TEST(test_rx_single_buffer)
{
	struct port p;

	port_open(&p, _i, F_V1);
	ck_assert(!p.rxq->mrg_rxbuf);
	/* Big-packet style chains: 9100 bytes over three descriptors. */
	post_rx(p.rx, 8, 9100, 3);
	for (int k = 0; k < 3; k++)
		ck_assert_uint_eq(forward_one(&p, sizes[k], (unsigned)k + 7), 1);
	ck_assert_uint_eq(guest_inflight(p.rx), 8 - 3);
	port_close(&p);
}
END_TEST

START_TEST(test_rx_legacy_header)
{
	struct port p;

	port_open(&p, false, 0);
	ck_assert_uint_eq(p.hdr, 10);
	post_rx(p.rx, 4, 2048, 2);
	ck_assert_uint_eq(forward_one(&p, 1518, 3), 1);
	ck_assert_uint_eq(forward_one(&p, 64, 4), 1);
	port_close(&p);
}
END_TEST

/* Without MRG_RXBUF a too-big packet is dropped and the chain it was offered
 * stays for the next packet of the burst; nothing is lost. */
START_TEST(test_rx_too_big_single)
{
	struct port p;
	uint8_t big[3000], small[64], got[128];
	uint16_t nbufs;
	uint32_t lens[4];

	port_open(&p, _i, F_V1);
	make_frame(big, sizeof(big), 5);
	make_frame(small, sizeof(small), 6);
	post_rx(p.rx, 3, 2048, 1);
	send_frame(p.tx, 12, big, sizeof(big), false);
	send_frame(p.tx, 12, small, sizeof(small), false);
	ck_assert_int_eq(vre_net_forward(p.txq, p.rxq), 1);
	ck_assert_uint_eq(p.rxq->st.drop_too_big, 1);
	/* The burst took one chain per packet: the big one's goes to the
	 * small one, the second is given back empty, the third is untouched. */
	ck_assert_uint_eq(recv_frame(&p, got, &nbufs), 64);
	ck_assert_mem_eq(got, small, 64);
	ck_assert_uint_eq(nbufs, 1);
	ck_assert_uint_eq(drain_used(p.rx, lens, 4), 1);
	ck_assert_uint_eq(lens[0], 0);
	ck_assert_uint_eq(guest_inflight(p.rx), 1);
	ck_assert_uint_eq(drain_used(p.tx, lens, 4), 2);

	/* Alone in its burst, the too-big packet's chain comes back empty. */
	send_frame(p.tx, 12, big, sizeof(big), false);
	ck_assert_int_eq(vre_net_forward(p.txq, p.rxq), 0);
	ck_assert_uint_eq(p.rxq->st.drop_too_big, 2);
	ck_assert_uint_eq(drain_used(p.rx, lens, 4), 1);
	ck_assert_uint_eq(lens[0], 0);
	ck_assert_uint_eq(guest_inflight(p.rx), 0);
	/* Nothing left: the next packet has no buffer. */
	send_frame(p.tx, 12, small, sizeof(small), false);
	ck_assert_int_eq(vre_net_forward(p.txq, p.rxq), 0);
	ck_assert_uint_eq(p.rxq->st.drop_no_rx_buf, 1);
	tx_all_back(&p);
	port_close(&p);
}
END_TEST

/* MRG_RXBUF: a packet needing more than 64 chains is too big; one that runs
 * the ring dry is no_rx_buf; in both cases every chain it took comes back
 * (len 0) and the ones it did not take stay available. */
START_TEST(test_rx_too_big_mergeable)
{
	struct port p;
	uint8_t *big = malloc(40000), small[64], got[128];
	uint32_t lens[64];
	uint16_t nbufs;
	unsigned n;

	port_open(&p, _i, F_V1 | F_MRG);
	make_frame(big, 40000, 8);
	make_frame(small, 64, 9);
	post_rx(p.rx, 80, 512, 1);
	send_frame(p.tx, 12, big, 40000, false);
	ck_assert_int_eq(vre_net_forward(p.txq, p.rxq), 0);
	ck_assert_uint_eq(p.rxq->st.drop_too_big, 1);
	n = drain_used(p.rx, lens, 64);
	ck_assert_uint_eq(n, 64);
	for (unsigned i = 0; i < n; i++)
		ck_assert_uint_eq(lens[i], 0);
	ck_assert_uint_eq(guest_inflight(p.rx), 16);

	/* 16 x 512 left: a 20000-byte frame runs the ring dry. */
	send_frame(p.tx, 12, big, 20000, false);
	ck_assert_int_eq(vre_net_forward(p.txq, p.rxq), 0);
	ck_assert_uint_eq(p.rxq->st.drop_no_rx_buf, 1);
	ck_assert_uint_eq(drain_used(p.rx, lens, 64), 16);
	ck_assert_uint_eq(guest_inflight(p.rx), 0);

	/* After a too-big packet, the next one of the same burst still gets
	 * through, into the first chain the big one did not take. */
	post_rx(p.rx, 72, 512, 1);
	send_frame(p.tx, 12, big, 40000, false);
	send_frame(p.tx, 12, small, 64, false);
	ck_assert_int_eq(vre_net_forward(p.txq, p.rxq), 1);
	ck_assert_uint_eq(p.rxq->st.drop_too_big, 2);
	for (int i = 0; i < 64; i++) {
		uint16_t id;
		uint64_t token;

		ck_assert_int_eq(guest_get_used(p.rx, &id, &lens[0], &token), 1);
		ck_assert_uint_eq(lens[0], 0);
	}
	ck_assert_uint_eq(recv_frame(&p, got, &nbufs), 64);
	ck_assert_mem_eq(got, small, 64);
	ck_assert_uint_eq(nbufs, 1);
	ck_assert_uint_eq(guest_inflight(p.rx), 7);
	tx_all_back(&p);
	free(big);
	port_close(&p);
}
END_TEST

START_TEST(test_rx_no_buffer)
{
	struct port p;
	uint8_t frame[64];
	uint32_t lens[8];

	port_open(&p, _i, F_V1 | F_MRG);
	make_frame(frame, 64, 1);
	for (int i = 0; i < 5; i++)
		send_frame(p.tx, 12, frame, 64, false);
	ck_assert_int_eq(vre_net_forward(p.txq, p.rxq), 0);
	ck_assert_uint_eq(p.rxq->st.drop_no_rx_buf, 5);
	/* Source chains are completed anyway: the drop is final. */
	ck_assert_uint_eq(drain_used(p.tx, lens, 8), 5);
	ck_assert_uint_eq(guest_calls(p.rx), 0);
	port_close(&p);
}
END_TEST

START_TEST(test_rx_queue_broken)
{
	struct port p;
	uint8_t frame[64];
	uint32_t lens[8];

	port_open(&p, _i, F_V1 | F_MRG);
	make_frame(frame, 64, 1);
	post_rx(p.rx, 4, 2048, 1);
	vre_vq_break(&p.rx->q.vq, VRE_RE_HEAD_OUT_OF_RANGE);
	for (int i = 0; i < 3; i++)
		send_frame(p.tx, 12, frame, 64, false);
	ck_assert_int_eq(vre_net_forward(p.txq, p.rxq), 0);
	ck_assert_uint_eq(p.rxq->st.drop_queue_broken, 3);
	ck_assert_uint_eq(p.rxq->st.drop_no_rx_buf, 0);
	ck_assert_uint_eq(drain_used(p.rx, lens, 8), 0);
	ck_assert_uint_eq(drain_used(p.tx, lens, 8), 3);
	port_close(&p);
}
END_TEST

/* A whole burst of mixed sizes in one go: byte-exact, in order, one
 * notification per side. */
START_TEST(test_forward_burst)
{
	struct port p;
	uint8_t *frames[40], got[9100];
	uint32_t lens[40];
	uint16_t nbufs;

	port_open(&p, _i, F_V1 | F_MRG);
	post_rx(p.rx, 200, 1526, 1);
	for (int i = 0; i < 40; i++) {
		lens[i] = i % 5 == 4 ? 9000 : 60 + (uint32_t)i * 37;
		frames[i] = malloc(lens[i]);
		make_frame(frames[i], lens[i], (unsigned)i + 100);
		send_frame(p.tx, 12, frames[i], lens[i], i & 1);
	}
	ck_assert_int_eq(vre_net_forward(p.txq, p.rxq), 32);
	ck_assert_uint_eq(guest_calls(p.rx), 1);
	ck_assert_uint_eq(guest_calls(p.tx), 1);
	ck_assert_int_eq(vre_net_forward(p.txq, p.rxq), 8);
	ck_assert_uint_eq(guest_calls(p.rx), 1);
	for (int i = 0; i < 40; i++) {
		ck_assert_uint_eq(recv_frame(&p, got, &nbufs), lens[i]);
		ck_assert_mem_eq(got, frames[i], lens[i]);
		ck_assert_uint_eq(nbufs, (12 + lens[i] + 1525) / 1526);
		free(frames[i]);
	}
	tx_all_back(&p);
	ck_assert_uint_eq(p.txq->st.packets, 40);
	ck_assert_uint_eq(p.rxq->st.packets, 40);
	ck_assert_uint_eq(p.txq->st.bursts, 2);
	port_close(&p);
}
END_TEST

/* rx_put with a mask: only the chosen packets go, the TX chains of all
 * wait for tx_done (zero loss: nothing is returned before publication). */
START_TEST(test_rx_put_mask)
{
	struct port p;
	struct vre_net_tx_burst b;
	uint8_t frame[4][100], got[200];
	uint16_t nbufs;
	uint32_t lens[8];

	port_open(&p, _i, F_V1);
	post_rx(p.rx, 8, 2048, 1);
	for (int i = 0; i < 4; i++) {
		make_frame(frame[i], 100, (unsigned)i + 50);
		send_frame(p.tx, 12, frame[i], 100, false);
	}
	ck_assert_int_eq(vre_net_tx_fetch(p.txq, &b), 4);
	ck_assert_int_eq(vre_net_rx_put(p.rxq, &b, 0xa), 2);
	ck_assert_uint_eq(drain_used(p.tx, lens, 8), 0);
	ck_assert_uint_eq(recv_frame(&p, got, &nbufs), 100);
	ck_assert_mem_eq(got, frame[1], 100);
	ck_assert_uint_eq(recv_frame(&p, got, &nbufs), 100);
	ck_assert_mem_eq(got, frame[3], 100);
	/* Bits past npkts are ignored. */
	ck_assert_int_eq(vre_net_rx_put(p.rxq, &b, 0xf0), 0);
	vre_net_tx_done(p.txq, &b);
	ck_assert_uint_eq(drain_used(p.tx, lens, 8), 4);
	ck_assert_uint_eq(guest_inflight(p.rx), 6);
	port_close(&p);
}
END_TEST

/* Between two devices, split source into packed destination and back. */
START_TEST(test_forward_between_devices)
{
	struct port a, b;
	uint8_t frame[1518], got[1600];
	uint16_t nbufs;

	port_open(&a, _i, F_V1 | F_MRG);
	port_open(&b, !_i, F_V1 | F_MRG);
	post_rx(b.rx, 8, 4096, 2);
	for (int i = 0; i < 3; i++) {
		make_frame(frame, sizeof(frame), (unsigned)i + 9);
		send_frame(a.tx, 12, frame, sizeof(frame), true);
		ck_assert_int_eq(vre_net_forward(a.txq, b.rxq), 1);
		ck_assert_uint_eq(recv_frame(&b, got, &nbufs), sizeof(frame));
		ck_assert_mem_eq(got, frame, sizeof(frame));
		ck_assert_uint_eq(nbufs, 1);
	}
	port_close(&a);
	port_close(&b);
}
END_TEST


/* Hostile RX layouts: a readable part in front of the writable one, the
 * header (and num_buffers) split over descriptors, a chain too small for a
 * header in the middle of a mergeable packet's chains. */
START_TEST(test_rx_odd_chains)
{
	struct port p;
	uint8_t big[1600], small[64], got[1700];
	uint64_t a, bb, c, d, e, token;
	uint16_t nbufs, id;
	uint32_t len;

	port_open(&p, _i, F_V1 | F_MRG);
	make_frame(big, sizeof(big), 11);
	make_frame(small, sizeof(small), 12);
	/* a: readable 16 | writable 11 | writable 100 (num_buffers straddles) */
	a = guest_alloc(p.rx, 16 + 111);
	memset(guest_ptr(p.rx, a), 0x33, 16 + 111);
	guest_add(p.rx, (struct gbuf[3]){ { a, 16, false }, { a + 16, 11, true },
					 { a + 27, 100, true } }, 3, a + 16);
	/* bb: readable only, no room at all */
	bb = guest_alloc(p.rx, 8);
	memset(guest_ptr(p.rx, bb), 0x44, 8);
	guest_add(p.rx, (struct gbuf[1]){ { bb, 8, false } }, 1, bb);
	c = guest_alloc(p.rx, 1526);
	guest_add(p.rx, (struct gbuf[1]){ { c, 1526, true } }, 1, c);
	/* e: 8 writable bytes, too small to start a packet with its header */
	e = guest_alloc(p.rx, 8);
	memset(guest_ptr(p.rx, e), 0x55, 8);
	guest_add(p.rx, (struct gbuf[1]){ { e, 8, true } }, 1, e);
	d = guest_alloc(p.rx, 1526);
	guest_add(p.rx, (struct gbuf[1]){ { d, 1526, true } }, 1, d);
	send_frame(p.tx, 12, big, sizeof(big), false);
	send_frame(p.tx, 12, small, sizeof(small), false);
	ck_assert_int_eq(vre_net_forward(p.txq, p.rxq), 2);
	ck_assert_uint_eq(p.rxq->st.drop_bad_chain, 2);
	/* The unusable chains went back on their own, empty and untouched... */
	ck_assert_int_eq(guest_get_used(p.rx, &id, &len, &token), 1);
	ck_assert_uint_eq(token, bb);
	ck_assert_uint_eq(len, 0);
	ck_assert_int_eq(guest_get_used(p.rx, &id, &len, &token), 1);
	ck_assert_uint_eq(token, e);
	ck_assert_uint_eq(len, 0);
	for (int i = 0; i < 8; i++) {
		ck_assert_uint_eq(((uint8_t *)guest_ptr(p.rx, bb))[i], 0x44);
		ck_assert_uint_eq(((uint8_t *)guest_ptr(p.rx, e))[i], 0x55);
	}
	/* ...so the big packet's chains (a, c) are consecutive. */
	ck_assert_uint_eq(recv_frame(&p, got, &nbufs), sizeof(big));
	ck_assert_uint_eq(nbufs, 2);
	ck_assert_mem_eq(got, big, sizeof(big));
	ck_assert_uint_eq(recv_frame(&p, got, &nbufs), sizeof(small));
	ck_assert_mem_eq(got, small, sizeof(small));
	for (int i = 0; i < 16; i++)
		ck_assert_uint_eq(((uint8_t *)guest_ptr(p.rx, a))[i], 0x33);
	port_close(&p);
}
END_TEST

/* VIRTIO_F_IN_ORDER negotiated, against the test drivers' in-order mode
 * (a TX driver that takes batches, an RX driver that reads every entry, as
 * DPDK's PMD does): a burst of mixed sizes arrives whole and in order, and
 * every TX chain comes back through in-order batches (split: one used
 * index step per burst, one element written); then hostile RX chains: a
 * bad chain is returned in its turn, and a mergeable packet whose next
 * chain is bad is given up (its chain goes back empty before the bad one)
 * instead of skipping over it. */
START_TEST(test_inorder_paths)
{
	struct port p;
	uint8_t *frames[40], got[9100], big[1600], small[64];
	uint32_t lens[40], len;
	uint16_t nbufs, id, used0 = 0;
	uint64_t a, bb, c, e, token;

	port_open(&p, _i, F_V1 | F_MRG | F(VRE_F_IN_ORDER));
	guest_set_in_order(p.rx, true);
	guest_set_in_order(p.tx, false);
	ck_assert(p.txq->q->vq.in_order && p.rxq->q->vq.in_order);
	post_rx(p.rx, 200, 1526, 1);
	for (int i = 0; i < 40; i++) {
		lens[i] = i % 5 == 4 ? 9000 : 60 + (uint32_t)i * 37;
		frames[i] = malloc(lens[i]);
		make_frame(frames[i], lens[i], (unsigned)i + 100);
		send_frame(p.tx, 12, frames[i], lens[i], i & 1);
	}
	if (!_i)
		used0 = p.tx->vd->used->idx;
	ck_assert_int_eq(vre_net_forward(p.txq, p.rxq), 32);
	if (!_i)
		ck_assert_uint_eq((uint16_t)(p.tx->vd->used->idx - used0), 32);
	ck_assert_int_eq(vre_net_forward(p.txq, p.rxq), 8);
	for (int i = 0; i < 40; i++) {
		ck_assert_uint_eq(recv_frame(&p, got, &nbufs), lens[i]);
		ck_assert_mem_eq(got, frames[i], lens[i]);
		free(frames[i]);
	}
	tx_all_back(&p);
	ck_assert_int_eq(guest_get_used(p.rx, &id, &len, &token), 0);
	/* RX chains are fetched as packets need them: 32 + 8 * 6 taken */
	ck_assert_uint_eq(guest_inflight(p.rx), 200 - 32 - 8 - 8 * 5);

	port_close(&p);
	port_open(&p, _i, F_V1 | F_MRG | F(VRE_F_IN_ORDER));
	guest_set_in_order(p.rx, true);
	guest_set_in_order(p.tx, false);
	make_frame(big, sizeof(big), 11);
	make_frame(small, sizeof(small), 12);
	/* e: too small for a header; a: a packet's first chain; bb: no
	 * writable part, next after a; c: room for the small packet */
	e = guest_alloc(p.rx, 8);
	memset(guest_ptr(p.rx, e), 0x55, 8);
	guest_add(p.rx, (struct gbuf[1]){ { e, 8, true } }, 1, e);
	a = guest_alloc(p.rx, 1526);
	guest_add(p.rx, (struct gbuf[1]){ { a, 1526, true } }, 1, a);
	bb = guest_alloc(p.rx, 8);
	memset(guest_ptr(p.rx, bb), 0x44, 8);
	guest_add(p.rx, (struct gbuf[1]){ { bb, 8, false } }, 1, bb);
	c = guest_alloc(p.rx, 1526);
	guest_add(p.rx, (struct gbuf[1]){ { c, 1526, true } }, 1, c);
	send_frame(p.tx, 12, big, sizeof(big), false);
	send_frame(p.tx, 12, small, sizeof(small), false);
	ck_assert_int_eq(vre_net_forward(p.txq, p.rxq), 1);
	ck_assert_uint_eq(p.rxq->st.drop_bad_chain, 2);
	ck_assert_uint_eq(p.rxq->st.drop_too_big, 1); /* big: a, then bb */
	/* in ring order: e and a empty, bb empty and untouched, then small in c */
	ck_assert_int_eq(guest_get_used(p.rx, &id, &len, &token), 1);
	ck_assert_uint_eq(token, e);
	ck_assert_uint_eq(len, 0);
	ck_assert_int_eq(guest_get_used(p.rx, &id, &len, &token), 1);
	ck_assert_uint_eq(token, a);
	ck_assert_uint_eq(len, 0);
	ck_assert_int_eq(guest_get_used(p.rx, &id, &len, &token), 1);
	ck_assert_uint_eq(token, bb);
	ck_assert_uint_eq(len, 0);
	for (int i = 0; i < 8; i++) {
		ck_assert_uint_eq(((uint8_t *)guest_ptr(p.rx, bb))[i], 0x44);
		ck_assert_uint_eq(((uint8_t *)guest_ptr(p.rx, e))[i], 0x55);
	}
	ck_assert_uint_eq(recv_frame(&p, got, &nbufs), sizeof(small));
	ck_assert_mem_eq(got, small, sizeof(small));
	ck_assert_int_eq(guest_get_used(p.rx, &id, &len, &token), 0);
	tx_all_back(&p);
	port_close(&p);
}
END_TEST

/* TX chains the ring can only hand over as -ENOBUFS (more descriptors
 * than the burst's iovec pool), and frames longer than any Ethernet frame,
 * are dropped and still completed. */
START_TEST(test_tx_too_long)
{
	struct port p;
	struct vre_net_tx_burst b;
	struct gbuf many[300];
	uint64_t gpa = 0;
	uint32_t lens[4];
	uint8_t *huge = calloc(1, VRE_NET_MAX_FRAME + 1);

	port_open(&p, _i, F_V1);
	gpa = guest_alloc(p.tx, 300);
	for (int i = 0; i < 300; i++)
		many[i] = (struct gbuf){ gpa + (uint64_t)i, 1, false };
	ck_assert_int_ge(guest_add(p.tx, many, 300, 1), 0);
	send_frame(p.tx, 12, huge, VRE_NET_MAX_FRAME + 1, false);
	send_frame(p.tx, 12, huge, VRE_NET_MAX_FRAME, false);
	ck_assert_int_eq(vre_net_tx_fetch(p.txq, &b), 1);
	ck_assert_uint_eq(b.n, 3);
	ck_assert_uint_eq(b.pkts[0].len, VRE_NET_MAX_FRAME);
	ck_assert_uint_eq(p.txq->st.drop_bad_chain, 2);
	vre_net_tx_done(p.txq, &b);
	ck_assert_uint_eq(drain_used(p.tx, lens, 4), 3);
	free(huge);
	port_close(&p);
}
END_TEST

/* The driver asked not to be notified: the device must not write the
 * call fd (split: used_event far ahead; packed: events disabled). */
START_TEST(test_notify_suppressed)
{
	struct port p;
	uint8_t frame[64];

	port_open_ex(&p, _i, F_V1 | F_MRG, true);
	make_frame(frame, 64, 1);
	post_rx(p.rx, 8, 1526, 1);
	/* The first completion after start always notifies (the last index
	 * the driver saw is unknown). */
	send_frame(p.tx, 12, frame, 64, false);
	ck_assert_int_eq(vre_net_forward(p.txq, p.rxq), 1);
	ck_assert_uint_eq(guest_calls(p.rx), 1);
	ck_assert_uint_eq(guest_calls(p.tx), 1);
	if (_i) {
		p.rx->drv_ev->flags = VRE_PACKED_EVENT_DISABLE;
		p.tx->drv_ev->flags = VRE_PACKED_EVENT_DISABLE;
	} else {
		*sdrv_used_event(p.rx->vd) = 100;
		*sdrv_used_event(p.tx->vd) = 100;
	}
	send_frame(p.tx, 12, frame, 64, false);
	ck_assert_int_eq(vre_net_forward(p.txq, p.rxq), 1);
	ck_assert_uint_eq(guest_calls(p.rx), 0);
	ck_assert_uint_eq(guest_calls(p.tx), 0);
	/* Asked again: one notification each. */
	if (_i) {
		p.rx->drv_ev->flags = VRE_PACKED_EVENT_ENABLE;
		p.tx->drv_ev->flags = VRE_PACKED_EVENT_ENABLE;
	} else {
		*sdrv_used_event(p.rx->vd) = 2;
		*sdrv_used_event(p.tx->vd) = 2;
	}
	send_frame(p.tx, 12, frame, 64, false);
	send_frame(p.tx, 12, frame, 64, false);
	ck_assert_int_eq(vre_net_forward(p.txq, p.rxq), 2);
	ck_assert_uint_eq(guest_calls(p.rx), 1);
	ck_assert_uint_eq(guest_calls(p.tx), 1);
	port_close(&p);
}
END_TEST


/* Random layouts, many rounds: TX frames of 0..9000 bytes cut into 1..5
 * descriptors at random points (header included), RX chains of 1..4
 * descriptors of random sizes (some too small for a header). Whatever the
 * device decides, the guest must see: every TX chain back; delivered frames
 * byte-exact, in order, with a correct num_buffers; every drop counted; and
 * no RX chain lost (leftovers are drained with small frames until none is
 * outstanding). */
static uint32_t rnd(uint32_t *s, uint32_t n)
{
	*s = *s * 1103515245u + 12345u;
	return (*s >> 8) % n;
}

static void send_cut(struct port *p, uint32_t *seed, const uint8_t *frame, uint32_t len)
{
	uint64_t gpa = guest_alloc(p->tx, 12 + len);
	uint32_t total = 12 + len, cuts = 1 + rnd(seed, 5), off = 0;
	struct gbuf b[5];
	unsigned n = 0;

	memset(guest_ptr(p->tx, gpa), 0, 12);
	memcpy((uint8_t *)guest_ptr(p->tx, gpa) + 12, frame, len);
	for (uint32_t k = 0; k < cuts && off < total; k++) {
		uint32_t l = k + 1 == cuts ? total - off : 1 + rnd(seed, total - off);

		b[n++] = (struct gbuf){ gpa + off, l, false };
		off += l;
	}
	ck_assert_int_ge(guest_add(p->tx, b, n, gpa), 0);
}

static void post_random(struct port *p, uint32_t *seed)
{
	unsigned nd = 1 + rnd(seed, 4);
	uint32_t sizes[4], total = 0, off = 0;
	struct gbuf b[4];
	uint64_t gpa;

	for (unsigned d = 0; d < nd; d++) {
		sizes[d] = 1 + rnd(seed, rnd(seed, 4) ? 3000 : 16);
		total += sizes[d];
	}
	gpa = guest_alloc(p->rx, total);
	for (unsigned d = 0; d < nd; d++) {
		b[d] = (struct gbuf){ gpa + off, sizes[d], true };
		off += sizes[d];
	}
	ck_assert_int_ge(guest_add(p->rx, b, nd, gpa), 0);
}

/* Reads every used RX entry; checks each delivered frame against the next
 * matching one of frames[*at..n). Returns frames delivered. */
static int check_rx(struct port *p, uint8_t **frames, const uint32_t *lens, unsigned n,
		    unsigned *at, uint8_t *buf)
{
	uint16_t id;
	uint32_t len;
	uint64_t token;
	int got = 0;

	while (guest_get_used(p->rx, &id, &len, &token) == 1) {
		struct vre_net_hdr h;
		uint32_t total;
		uint16_t nb;

		if (len == 0)
			continue; /* a chain given back unused */
		ck_assert_uint_ge(len, 12);
		memcpy(&h, guest_ptr(p->rx, token), 12);
		nb = h.num_buffers;
		if (!p->rxq->mrg_rxbuf)
			ck_assert_uint_eq(nb, 1);
		ck_assert_uint_ge(nb, 1);
		total = len - 12;
		memcpy(buf, (uint8_t *)guest_ptr(p->rx, token) + 12, total);
		for (uint16_t k = 1; k < nb; k++) {
			ck_assert_int_eq(guest_get_used(p->rx, &id, &len, &token), 1);
			ck_assert_uint_gt(len, 0);
			memcpy(buf + total, guest_ptr(p->rx, token), len);
			total += len;
		}
		while (*at < n && !(lens[*at] == total && !memcmp(frames[*at], buf, total)))
			(*at)++;
		ck_assert_msg(*at < n, "delivered a frame (%u bytes) that was not sent in order", total);
		(*at)++;
		got++;
	}
	return got;
}

/* A TX chain of one descriptor whose header asks for nothing (flags and
 * gso_type 0; the rest garbage): the fused path's common packet. */
static void send_common(struct guest *g, const uint8_t *frame, uint32_t len)
{
	uint64_t gpa = guest_alloc(g, 12 + len);
	uint8_t *h = guest_ptr(g, gpa);

	memset(h, 0, 2);
	memset(h + 2, 0x5a, 10);
	memcpy(h + 12, frame, len);
	ck_assert_int_ge(guest_add(g, &(struct gbuf){ gpa, 12 + len, false }, 1, gpa), 0);
}

/* What vre-switch's tx_poll does, until src's TX ring is empty: the fused
 * path, the general one on -EAGAIN. Returns packets delivered. */
static int sw_forward(struct port *p)
{
	int total = 0;

	for (int guard = 0; guard < 256; guard++) {
		int n = vre_net_forward_fused(p->txq, p->rxq);

		if (n == 0)
			break;
		if (n == -EAGAIN)
			n = vre_net_forward(p->txq, p->rxq);
		ck_assert_int_ge(n, 0);
		total += n;
	}
	return total;
}

/* The fused path alone: 40 common packets (one TX descriptor with header
 * and frame, one 2 KiB RX descriptor each) go in two bursts, byte for
 * byte, with the one-buffer header, counted as the general path counts;
 * the TX header (garbage but flags 0) is not forwarded. Both sides are
 * notified once per burst. With IN_ORDER (_i >= 2) the TX burst returns as
 * one used entry and every RX entry is its own. */
START_TEST(test_fused_common)
{
	bool packed = _i & 1, inorder = _i >> 1;
	struct port p;
	uint8_t *frames[40], got[2048];
	uint32_t lens[40];
	uint16_t nbufs;

	port_open(&p, packed, F_V1 | F_MRG | (inorder ? F(VRE_F_IN_ORDER) : 0));
	if (inorder) {
		guest_set_in_order(p.rx, true);
		guest_set_in_order(p.tx, false);
	}
	post_rx(p.rx, 64, 2048, 1);
	for (int i = 0; i < 40; i++) {
		uint64_t gpa;

		lens[i] = 60 + (uint32_t)i * 37;
		frames[i] = malloc(lens[i]);
		make_frame(frames[i], lens[i], (unsigned)i + 7);
		gpa = guest_alloc(p.tx, 12 + lens[i]);
		memset(guest_ptr(p.tx, gpa), 0, 2);
		memset((uint8_t *)guest_ptr(p.tx, gpa) + 2, 0x5a, 10);
		memcpy((uint8_t *)guest_ptr(p.tx, gpa) + 12, frames[i], lens[i]);
		ck_assert_int_ge(guest_add(p.tx, &(struct gbuf){ gpa, 12 + lens[i], false }, 1, gpa), 0);
	}
	ck_assert_int_eq(vre_net_forward_fused(p.txq, p.rxq), 32);
	ck_assert_uint_eq(guest_calls(p.rx), 1);
	ck_assert_uint_eq(guest_calls(p.tx), 1);
	ck_assert_int_eq(vre_net_forward_fused(p.txq, p.rxq), 8);
	ck_assert_int_eq(vre_net_forward_fused(p.txq, p.rxq), 0);
	for (int i = 0; i < 40; i++) {
		ck_assert_uint_eq(recv_frame(&p, got, &nbufs), lens[i]);
		ck_assert_uint_eq(nbufs, 1);
		ck_assert_mem_eq(got, frames[i], lens[i]);
		free(frames[i]);
	}
	tx_all_back(&p);
	ck_assert_uint_eq(p.txq->st.packets, 40);
	ck_assert_uint_eq(p.rxq->st.packets, 40);
	ck_assert_uint_eq(p.txq->st.bursts, 2);
	ck_assert_uint_eq(p.rxq->st.bursts, 2);
	ck_assert_uint_eq(p.txq->st.empty_polls, 1);
	ck_assert_uint_eq(guest_inflight(p.rx), 64 - 40);
	port_close(&p);
}
END_TEST

/* What the fused path leaves to the general one, at the first packet that
 * is not common: a TX chain of two descriptors, a TX header with flags, a
 * frame too big for its RX buffer, no RX buffer at all. Everything from
 * that packet on is given back untouched (-EAGAIN when it is the first);
 * the general path then delivers it exactly as before. */
START_TEST(test_fused_leaves)
{
	bool packed = _i;
	uint8_t frame[600], got[2048];
	uint16_t nbufs;

	for (int c = 0; c < 4; c++) {
		struct port p;
		uint16_t last_avail;

		port_open(&p, packed, F_V1 | F_MRG);
		make_frame(frame, sizeof(frame), (unsigned)c);
		if (c < 3)
			post_rx(p.rx, 4, c == 2 ? 300 : 2048, 1);
		/* packet 0 is common unless c == 3 (no RX buffer) */
		send_common(p.tx, frame, 100);
		if (c == 0) {
			send_frame(p.tx, 12, frame, 200, true); /* header | frame */
		} else {
			uint64_t gpa = guest_alloc(p.tx, 12 + 600);

			memset(guest_ptr(p.tx, gpa), 0, 12);
			if (c == 1)
				*(uint8_t *)guest_ptr(p.tx, gpa) = 1; /* NEEDS_CSUM */
			memcpy((uint8_t *)guest_ptr(p.tx, gpa) + 12, frame, 600);
			guest_add(p.tx, &(struct gbuf){ gpa, 612, false }, 1, gpa);
		}
		last_avail = p.txq->q->vq.last_avail_idx;
		if (c == 3) {
			ck_assert_int_eq(vre_net_forward_fused(p.txq, p.rxq), -EAGAIN);
			ck_assert_uint_eq(p.txq->q->vq.last_avail_idx, last_avail);
			ck_assert_int_eq(vre_net_forward(p.txq, p.rxq), 0);
			ck_assert_uint_eq(p.rxq->st.drop_no_rx_buf, 2);
			tx_all_back(&p);
			port_close(&p);
			continue;
		}
		ck_assert_int_eq(vre_net_forward_fused(p.txq, p.rxq), 1);
		ck_assert_uint_eq(recv_frame(&p, got, &nbufs), 100);
		ck_assert_mem_eq(got, frame, 100);
		/* the second is left, untouched: the fused path says so again */
		ck_assert_int_eq(vre_net_forward_fused(p.txq, p.rxq), -EAGAIN);
		ck_assert_int_eq(vre_net_forward(p.txq, p.rxq), 1);
		ck_assert_uint_eq(recv_frame(&p, got, &nbufs), c == 0 ? 200 : 600);
		ck_assert_mem_eq(got, frame, c == 0 ? 200 : 600);
		if (c == 2)
			ck_assert_uint_eq(nbufs, 3); /* merged over 300-byte buffers */
		tx_all_back(&p);
		ck_assert_uint_eq(p.txq->st.packets, 2);
		ck_assert_uint_eq(p.rxq->st.packets, 2);
		port_close(&p);
	}
}
END_TEST

/* test_random_layouts through the switch's order of paths (fused, then
 * general on -EAGAIN), also with IN_ORDER (_i >= 4): hostile TX and RX
 * layouts mixed with common ones; every frame arrives whole and in order
 * or is counted as dropped, no chain is lost. */
START_TEST(test_fused_random)
{
	bool packed = _i & 1, mrg = (_i >> 1) & 1, inorder = _i >> 2;
	uint32_t seed = 0xf00d + (uint32_t)_i, lens[8];
	uint8_t *frames[8], *buf = malloc(70000), small[64];
	struct port p;

	port_open_heap(&p, packed, F_V1 | (mrg ? F_MRG : 0) | (inorder ? F(VRE_F_IN_ORDER) : 0),
		       false, 32u << 20);
	if (inorder) {
		guest_set_in_order(p.rx, true);
		guest_set_in_order(p.tx, false);
	}
	for (int k = 0; k < 8; k++)
		frames[k] = malloc(9001);
	make_frame(small, sizeof(small), 99);
	for (int round = 0; round < 300; round++) {
		unsigned npk = 1 + rnd(&seed, 8), nrx = rnd(&seed, 12), at = 0;
		struct vre_net_stats before = p.rxq->st;
		uint32_t tl[8];
		int sent, got;

		for (unsigned k = 0; k < nrx; k++) {
			if (rnd(&seed, 2)) {
				post_rx(p.rx, 1, 2048, 1); /* the common buffer */
				continue;
			}
			post_random(&p, &seed);
		}
		for (unsigned k = 0; k < npk; k++) {
			lens[k] = rnd(&seed, 4) ? 14 + rnd(&seed, 1600) : rnd(&seed, 9001);
			make_frame(frames[k], lens[k], (unsigned)round * 8 + k);
			if (rnd(&seed, 2))
				send_common(p.tx, frames[k], lens[k]);
			else
				send_cut(&p, &seed, frames[k], lens[k]);
		}
		sent = sw_forward(&p);
		ck_assert_uint_eq(drain_used(p.tx, tl, 8), npk);
		got = check_rx(&p, frames, lens, npk, &at, buf);
		ck_assert_int_eq(got, sent);
		ck_assert_uint_eq(p.rxq->st.drop_no_rx_buf + p.rxq->st.drop_too_big -
					  before.drop_no_rx_buf - before.drop_too_big,
				  npk - (unsigned)sent);
		for (int guard = 0; guest_inflight(p.rx) && guard < 64; guard++) {
			uint8_t *one[1] = { small };
			uint32_t l1[1] = { 64 };
			unsigned a1 = 0;

			send_common(p.tx, small, 64);
			sent = sw_forward(&p);
			drain_used(p.tx, tl, 8);
			ck_assert_int_eq(check_rx(&p, one, l1, 1, &a1, buf), sent);
		}
		ck_assert_uint_eq(guest_inflight(p.rx), 0);
		ck_assert_uint_eq(guest_inflight(p.tx), 0);
		ck_assert_uint_eq(p.rxq->st.drop_queue_broken, 0);
	}
	for (int k = 0; k < 8; k++)
		free(frames[k]);
	free(buf);
	port_close(&p);
}
END_TEST

/* ---- the packed RX put, store by store ---------------------------------- */

/*
 * What the driver could see at every store the device makes to the RX
 * ring during a forward (the step hook: test_net is built with it): the
 * used descriptors from where the burst started, in ring order, as long as
 * each says used (the driver polls only the next one: virtio 1.1+, "Polling
 * of available and used descriptors"), and how many RX buffers held a
 * copied frame by then.
 */
#define LN_MAX 32
#define LN_SNAPS 4096
static struct {
	struct vre_vq *vq;   /* the RX queue watched */
	uint16_t start;      /* its used position and wrap before the forward */
	bool wrap;
	unsigned limit;      /* slots the forward may make used */
	uint8_t *frame[LN_MAX]; /* each RX buffer's frame area, in ring order */
	unsigned nbuf;
	unsigned nsnap;
	struct {
		uint16_t seen;
		uint16_t copied;
		uint16_t id[LN_MAX];
		uint32_t len[LN_MAX];
	} snap[LN_SNAPS];
} ln;

static void ln_hook(struct vre_vq *vq, const char *step)
{
	uint16_t idx = ln.start, seen = 0, copied = 0;
	bool wrap = ln.wrap;

	(void)step;
	if (vq != ln.vq)
		return;
	ck_assert_uint_lt(ln.nsnap, LN_SNAPS);
	while (seen < ln.limit) {
		const struct vre_packed_desc *d = &vq->pk.desc[idx];
		bool a = d->flags & VRE_PACKED_DESC_F_AVAIL, u = d->flags & VRE_PACKED_DESC_F_USED;

		if (a != wrap || u != wrap)
			break;
		ln.snap[ln.nsnap].id[seen] = d->id;
		ln.snap[ln.nsnap].len[seen] = d->len;
		seen++;
		if (++idx == vq->size) {
			idx = 0;
			wrap = !wrap;
		}
	}
	for (unsigned b = 0; b < ln.nbuf; b++)
		copied += ln.frame[b][0] != 0xee;
	ln.snap[ln.nsnap].seen = seen;
	ln.snap[ln.nsnap].copied = copied;
	ln.nsnap++;
}

/* Forwards n packets (60 B, common) with n RX buffers of 2048 B and reads
 * them back: moves both used positions by n. */
static void ln_advance(struct port *p, unsigned n)
{
	uint8_t f[60], got[2048];
	uint16_t nb;

	make_frame(f, sizeof(f), 3);
	while (n) {
		unsigned b = n < 32 ? n : 32;

		post_rx(p->rx, b, 2048, 1);
		for (unsigned i = 0; i < b; i++)
			send_common(p->tx, f, sizeof(f));
		ck_assert_int_eq(sw_forward(p), (int)b);
		for (unsigned i = 0; i < b; i++)
			ck_assert_uint_eq(recv_frame(p, got, &nb), sizeof(f));
		tx_all_back(p);
		n -= b;
	}
}

/*
 * The fused path's packed RX put publishes its burst at once: the later
 * slots id/len then flags, the first slot whole last, so the driver sees
 * no used slot of the burst before every copy is done, and none before
 * its id and len are in place. (Publishing a descriptor line at a time as
 * the copies fill it, as DPDK's vhost does, was measured slower here:
 * perf/cachelines.md, "Packed RX used descriptors a line at a time".) The
 * general path's part, after it, appears at once too. Then the frames
 * arrive whole, in order. Cases (_i):
 * 0: 12 packets from slot 0;
 * 1: 12 from slot 506 of 512, across the wrap;
 * 2: 12 packets, 6 RX buffers: the run stops at a slot not available (the
 *    general path drops the other 6);
 * 3: 12 packets, the 6th too big for one buffer: the fused path stops
 *    there (5), the general path merges it over two buffers and delivers
 *    the rest (8 slots).
 */
START_TEST(test_fused_rx_publish)
{
	const unsigned npk = 12, nrx = _i == 2 ? 6 : _i == 3 ? 13 : 12;
	unsigned fused = _i == 2 ? 6 : _i == 3 ? 5 : 12, total = _i == 2 ? 6 : 13;
	uint8_t *frames[12], got[4096];
	uint32_t lens[12];
	struct port p;
	uint16_t nb;

	if (_i != 3)
		total = fused;
	port_open(&p, true, F_V1 | F_MRG);
	if (_i == 1)
		ln_advance(&p, 506);
	memset(&ln, 0, sizeof(ln));
	ln.vq = &p.rx->q.vq;
	ln.start = ln.vq->last_used_idx;
	ln.wrap = ln.vq->used_wrap;
	ln.limit = total;
	ck_assert_uint_eq(ln.start, _i == 1 ? 506 : 0);
	for (unsigned b = 0; b < nrx; b++) {
		uint64_t gpa = guest_alloc(p.rx, 2048);

		memset(guest_ptr(p.rx, gpa), 0xee, 2048);
		ck_assert_int_ge(guest_add(p.rx, &(struct gbuf){ gpa, 2048, true }, 1, gpa), 0);
		if (b < LN_MAX)
			ln.frame[ln.nbuf++] = (uint8_t *)guest_ptr(p.rx, gpa) + 12;
	}
	for (unsigned i = 0; i < npk; i++) {
		lens[i] = _i == 3 && i == 5 ? 3000 : 60 + i;
		frames[i] = malloc(lens[i]);
		make_frame(frames[i], lens[i], i + 1);
		send_common(p.tx, frames[i], lens[i]);
	}
	vring_step_hook = ln_hook;
	ck_assert_int_eq(sw_forward(&p), _i == 2 ? 6 : 12);
	vring_step_hook = NULL;

	/* What the driver saw, store by store. */
	ck_assert_uint_gt(ln.nsnap, 0);
	ck_assert_uint_eq(ln.snap[ln.nsnap - 1].seen, total);
	for (unsigned s = 0; s < ln.nsnap; s++) {
		unsigned seen = ln.snap[s].seen;

		if (s)
			ck_assert_uint_ge(seen, ln.snap[s - 1].seen);
		/* the fused path's burst or the general path's, whole:
		 * never one slot of a part before the others */
		ck_assert_msg(seen == 0 || seen == fused || seen == total,
			      "step %u: the driver sees %u used slots from %u", s, seen,
			      ln.start);
		for (unsigned k = 0; k < seen; k++) {
			/* visible means whole: id and len as they end up */
			ck_assert_uint_eq(ln.snap[s].id[k], ln.snap[ln.nsnap - 1].id[k]);
			ck_assert_uint_eq(ln.snap[s].len[k], ln.snap[ln.nsnap - 1].len[k]);
		}
	}
	/* nothing was out before the last frame of the burst was copied */
	for (unsigned s = 0; s < ln.nsnap; s++) {
		if (ln.snap[s].seen) {
			ck_assert_uint_eq(ln.snap[s].copied, fused);
			break;
		}
	}
	for (unsigned i = 0; i < npk; i++) {
		if (i < (_i == 2 ? 6u : npk)) {
			ck_assert_uint_eq(recv_frame(&p, got, &nb), lens[i]);
			ck_assert_mem_eq(got, frames[i], lens[i]);
			ck_assert_uint_eq(nb, lens[i] > 2036 ? 2 : 1);
		}
		free(frames[i]);
	}
	ck_assert_int_eq(guest_get_used(p.rx, &nb, &lens[0], &(uint64_t){ 0 }), 0);
	if (_i == 2)
		ck_assert_uint_eq(p.rxq->st.drop_no_rx_buf, 6);
	tx_all_back(&p);
	port_close(&p);
}
END_TEST

START_TEST(test_random_layouts)
{
	bool packed = _i & 1, mrg = _i >> 1;
	uint32_t seed = 0x5eed + (uint32_t)_i, lens[8];
	uint8_t *frames[8], *buf = malloc(70000), small[64];
	struct port p;

	port_open_heap(&p, packed, F_V1 | (mrg ? F_MRG : 0), false, 32u << 20);
	for (int k = 0; k < 8; k++)
		frames[k] = malloc(9001);
	make_frame(small, sizeof(small), 99);
	for (int round = 0; round < 300; round++) {
		unsigned npk = 1 + rnd(&seed, 8), nrx = rnd(&seed, 12), at = 0;
		struct vre_net_stats before = p.rxq->st;
		uint32_t tl[8];
		int sent, got;

		for (unsigned k = 0; k < nrx; k++)
			post_random(&p, &seed);
		for (unsigned k = 0; k < npk; k++) {
			lens[k] = rnd(&seed, 4) ? rnd(&seed, 1600) : rnd(&seed, 9001);
			make_frame(frames[k], lens[k], (unsigned)round * 8 + k);
			send_cut(&p, &seed, frames[k], lens[k]);
		}
		sent = vre_net_forward(p.txq, p.rxq);
		ck_assert_int_ge(sent, 0);
		ck_assert_uint_eq(drain_used(p.tx, tl, 8), npk);
		got = check_rx(&p, frames, lens, npk, &at, buf);
		ck_assert_int_eq(got, sent);
		ck_assert_uint_eq(p.rxq->st.drop_no_rx_buf + p.rxq->st.drop_too_big -
					  before.drop_no_rx_buf - before.drop_too_big,
				  npk - (unsigned)sent);
		/* No chain lost: small frames use up whatever is still posted. */
		for (int guard = 0; guest_inflight(p.rx) && guard < 64; guard++) {
			uint8_t *one[1] = { small };
			uint32_t l1[1] = { 64 };
			unsigned a1 = 0;

			send_frame(p.tx, 12, small, 64, false);
			sent = vre_net_forward(p.txq, p.rxq);
			drain_used(p.tx, tl, 8);
			ck_assert_int_eq(check_rx(&p, one, l1, 1, &a1, buf), sent);
		}
		ck_assert_uint_eq(guest_inflight(p.rx), 0);
		ck_assert_uint_eq(guest_inflight(p.tx), 0);
		ck_assert_uint_eq(p.rxq->st.drop_queue_broken, 0);
	}
	for (int k = 0; k < 8; k++)
		free(frames[k]);
	free(buf);
	port_close(&p);
}
END_TEST

/* ---- control queue ---------------------------------------------------------- */

struct ctrl {
	struct vre_net_dev *n;
	struct guest *g;
	struct vre_net_queue *cq;
};

static void ctrl_open(struct ctrl *c, bool packed)
{
	struct vre_net_config cfg = { .max_queue_pairs = 4 };

	ck_assert_int_eq(vre_net_dev_create(&cfg, NULL, NULL, &c->n), 0);
	ck_assert_int_eq(vre_net_dev_ops(c->n)->set_features(
				 c->n, F_V1 | F(VRE_NET_F_CTRL_VQ) | F(VRE_NET_F_MQ) |
					       (packed ? F_PACKED : 0)),
			 0);
	c->g = guest_new(packed, 64, 1 << 16, false, 8);
	c->cq = queue_start(c->n, c->g);
	ck_assert(c->cq->is_ctrl);
}

static void ctrl_close(struct ctrl *c)
{
	ck_assert(guest_guards_ok(c->g));
	guest_free(c->g);
	vre_net_dev_destroy(c->n);
}

/* Sends class/cmd/data in the layout Linux uses (header | data | ack) and
 * returns the ack byte, or -1 when the chain came back with len 0. */
static int ctrl_cmd(struct ctrl *c, uint8_t class, uint8_t cmd, const void *data,
		    uint32_t dlen)
{
	uint64_t gpa = guest_alloc(c->g, 2 + dlen + 1);
	uint8_t *m = guest_ptr(c->g, gpa);
	struct gbuf b[3] = { { gpa, 2, false }, { gpa + 2, dlen, false },
			     { gpa + 2 + dlen, 1, true } };
	uint16_t id;
	uint32_t len;
	uint64_t token;

	m[0] = class;
	m[1] = cmd;
	memcpy(m + 2, data, dlen);
	m[2 + dlen] = 0xee;
	if (dlen)
		guest_add(c->g, b, 3, gpa);
	else
		guest_add(c->g, (struct gbuf[2]){ b[0], b[2] }, 2, gpa);
	ck_assert_int_eq(vre_net_ctrl_poll(c->cq), 1);
	ck_assert_int_eq(guest_get_used(c->g, &id, &len, &token), 1);
	ck_assert_uint_eq(token, gpa);
	if (len == 0) {
		ck_assert_uint_eq(m[2 + dlen], 0xee);
		return -1;
	}
	ck_assert_uint_eq(len, 1);
	return m[2 + dlen];
}

START_TEST(test_ctrl_mq)
{
	struct ctrl c;
	uint16_t pairs;
	uint8_t three[3] = { 2, 0, 0 };

	ctrl_open(&c, _i);
	pairs = 3;
	ck_assert_int_eq(ctrl_cmd(&c, VRE_NET_CTRL_MQ, 0, &pairs, 2), VRE_NET_OK);
	ck_assert_uint_eq(vre_net_dev_active_pairs(c.n), 3);
	pairs = 0;
	ck_assert_int_eq(ctrl_cmd(&c, VRE_NET_CTRL_MQ, 0, &pairs, 2), VRE_NET_ERR);
	pairs = 5;
	ck_assert_int_eq(ctrl_cmd(&c, VRE_NET_CTRL_MQ, 0, &pairs, 2), VRE_NET_ERR);
	pairs = 0x8000;
	ck_assert_int_eq(ctrl_cmd(&c, VRE_NET_CTRL_MQ, 0, &pairs, 2), VRE_NET_ERR);
	ck_assert_int_eq(ctrl_cmd(&c, VRE_NET_CTRL_MQ, 0, three, 3), VRE_NET_ERR);
	ck_assert_int_eq(ctrl_cmd(&c, VRE_NET_CTRL_MQ, 0, three, 1), VRE_NET_ERR);
	pairs = 2;
	ck_assert_int_eq(ctrl_cmd(&c, VRE_NET_CTRL_MQ, 1 /* RSS */, &pairs, 2), VRE_NET_ERR);
	ck_assert_uint_eq(vre_net_dev_active_pairs(c.n), 3);
	pairs = 4;
	ck_assert_int_eq(ctrl_cmd(&c, VRE_NET_CTRL_MQ, 0, &pairs, 2), VRE_NET_OK);
	ck_assert_uint_eq(vre_net_dev_active_pairs(c.n), 4);
	ck_assert_uint_eq(c.cq->st.ctrl_err, 6);
	ck_assert_uint_eq(c.cq->st.packets, 8);
	ctrl_close(&c);
}
END_TEST

START_TEST(test_ctrl_rx_mac_unknown)
{
	struct ctrl c;
	uint8_t on = 1, off = 0, two = 2;
	uint8_t mac[6] = { 2, 3, 4, 5, 6, 7 }, mcast[6] = { 1, 0, 0x5e, 0, 0, 1 };
	/* 1 unicast, 2 multicast entries. */
	uint8_t table[4 + 6 + 4 + 12] = { 1, 0, 0, 0, 2, 3, 4, 5, 6, 7, 2, 0, 0, 0 };

	ctrl_open(&c, _i);
	ck_assert_int_eq(ctrl_cmd(&c, VRE_NET_CTRL_RX, 0, &on, 1), VRE_NET_OK);
	ck_assert_int_eq(ctrl_cmd(&c, VRE_NET_CTRL_RX, 1, &on, 1), VRE_NET_OK);
	ck_assert_uint_eq(vre_net_dev_rx_mode(c.n), 3);
	ck_assert_int_eq(ctrl_cmd(&c, VRE_NET_CTRL_RX, 0, &off, 1), VRE_NET_OK);
	ck_assert_uint_eq(vre_net_dev_rx_mode(c.n), 2);
	ck_assert_int_eq(ctrl_cmd(&c, VRE_NET_CTRL_RX, 0, &two, 1), VRE_NET_ERR);
	ck_assert_int_eq(ctrl_cmd(&c, VRE_NET_CTRL_RX, 6, &on, 1), VRE_NET_ERR);
	ck_assert_int_eq(ctrl_cmd(&c, VRE_NET_CTRL_MAC, 1, mac, 6), VRE_NET_OK);
	ck_assert_int_eq(ctrl_cmd(&c, VRE_NET_CTRL_MAC, 1, mcast, 6), VRE_NET_ERR);
	ck_assert_int_eq(ctrl_cmd(&c, VRE_NET_CTRL_MAC, 1, mac, 5), VRE_NET_ERR);
	ck_assert_int_eq(ctrl_cmd(&c, VRE_NET_CTRL_MAC, 0, table, sizeof(table)), VRE_NET_OK);
	ck_assert_int_eq(ctrl_cmd(&c, VRE_NET_CTRL_MAC, 0, table, sizeof(table) - 1), VRE_NET_ERR);
	table[10] = 0xff; /* multicast count far beyond the data */
	table[13] = 0xff;
	ck_assert_int_eq(ctrl_cmd(&c, VRE_NET_CTRL_MAC, 0, table, sizeof(table)), VRE_NET_ERR);
	ck_assert_int_eq(ctrl_cmd(&c, 9, 0, &on, 1), VRE_NET_ERR);
	ck_assert_int_eq(ctrl_cmd(&c, 2 /* VLAN, not offered */, 0, mac, 2), VRE_NET_ERR);
	ctrl_close(&c);
}
END_TEST

START_TEST(test_ctrl_malformed_and_layouts)
{
	struct ctrl c;
	uint64_t gpa;
	uint8_t *m;
	uint16_t id;
	uint32_t len;
	uint64_t token;

	ctrl_open(&c, _i);
	/* Only one command byte. */
	gpa = guest_alloc(c.g, 8);
	m = guest_ptr(c.g, gpa);
	memset(m, 0xee, 8);
	m[0] = VRE_NET_CTRL_MQ;
	guest_add(c.g, (struct gbuf[2]){ { gpa, 1, false }, { gpa + 4, 1, true } }, 2, 1);
	/* No writable byte for the ack. */
	gpa = guest_alloc(c.g, 8);
	guest_add(c.g, (struct gbuf[1]){ { gpa, 4, false } }, 1, 2);
	/* Header split 1 | 1 + data, ack at the end of a 4-byte writable part
	 * behind an empty writable descriptor. */
	gpa = guest_alloc(c.g, 16);
	m = guest_ptr(c.g, gpa);
	memset(m, 0xee, 16);
	m[0] = VRE_NET_CTRL_MQ;
	m[1] = 0;
	m[2] = 2;
	m[3] = 0;
	guest_add(c.g,
		  (struct gbuf[4]){ { gpa, 1, false }, { gpa + 1, 3, false },
				    { gpa + 8, 4, true }, { gpa + 12, 0, true } },
		  4, 3);
	ck_assert_int_eq(vre_net_ctrl_poll(c.cq), 3);
	ck_assert_int_eq(guest_get_used(c.g, &id, &len, &token), 1);
	ck_assert_uint_eq(token, 1);
	ck_assert_uint_eq(len, 0);
	ck_assert_int_eq(guest_get_used(c.g, &id, &len, &token), 1);
	ck_assert_uint_eq(token, 2);
	ck_assert_uint_eq(len, 0);
	ck_assert_int_eq(guest_get_used(c.g, &id, &len, &token), 1);
	ck_assert_uint_eq(token, 3);
	ck_assert_uint_eq(len, 1);
	ck_assert_uint_eq(m[8], 0xee);
	ck_assert_uint_eq(m[10], 0xee);
	ck_assert_uint_eq(m[11], VRE_NET_OK);
	ck_assert_uint_eq(m[12], 0xee);
	ck_assert_uint_eq(vre_net_dev_active_pairs(c.n), 2);
	ck_assert_uint_eq(c.cq->st.drop_bad_chain, 2);
	ck_assert_uint_eq(guest_calls(c.g), 1);
	ck_assert_int_eq(vre_net_ctrl_poll(c.cq), 0);
	ck_assert_uint_eq(c.cq->st.empty_polls, 1);
	ctrl_close(&c);
}
END_TEST

static Suite *net_suite(void)
{
	Suite *s = suite_create("net");
	TCase *dev = tcase_create("device");
	TCase *path = tcase_create("path");
	TCase *ctl = tcase_create("ctrl");

	tcase_add_test(dev, test_features_single_pair);
	tcase_add_test(dev, test_features_mq_mtu_mask);
	tcase_add_test(dev, test_config_space);
	tcase_add_test(dev, test_set_features_hdr_len);
	tcase_add_test(dev, test_mtu_and_rarp);
	tcase_add_test(dev, test_queue_start_stop);
	tcase_add_loop_test(dev, test_rx_queue_no_kicks, 0, 2);
	suite_add_tcase(s, dev);

	tcase_add_loop_test(path, test_tx_header_split, 0, 2);
	tcase_add_loop_test(path, test_tx_short_and_bad, 0, 2);
	tcase_add_loop_test(path, test_tx_empty_and_broken, 0, 2);
	tcase_add_loop_test(path, test_rx_mergeable_sizes, 0, 2);
	tcase_add_loop_test(path, test_rx_single_buffer, 0, 2);
	tcase_add_test(path, test_rx_legacy_header);
	tcase_add_loop_test(path, test_rx_too_big_single, 0, 2);
	tcase_add_loop_test(path, test_rx_too_big_mergeable, 0, 2);
	tcase_add_loop_test(path, test_rx_no_buffer, 0, 2);
	tcase_add_loop_test(path, test_rx_queue_broken, 0, 2);
	tcase_add_loop_test(path, test_forward_burst, 0, 2);
	tcase_add_loop_test(path, test_rx_put_mask, 0, 2);
	tcase_add_loop_test(path, test_forward_between_devices, 0, 2);
	tcase_add_loop_test(path, test_rx_odd_chains, 0, 2);
	tcase_add_loop_test(path, test_inorder_paths, 0, 2);
	tcase_add_loop_test(path, test_tx_too_long, 0, 2);
	tcase_add_loop_test(path, test_notify_suppressed, 0, 2);
	tcase_add_loop_test(path, test_random_layouts, 0, 4);
	tcase_add_loop_test(path, test_fused_common, 0, 4);
	tcase_add_loop_test(path, test_fused_leaves, 0, 2);
	tcase_add_loop_test(path, test_fused_random, 0, 8);
	tcase_add_loop_test(path, test_fused_rx_publish, 0, 4);
	suite_add_tcase(s, path);

	tcase_add_loop_test(ctl, test_ctrl_mq, 0, 2);
	tcase_add_loop_test(ctl, test_ctrl_rx_mac_unknown, 0, 2);
	tcase_add_loop_test(ctl, test_ctrl_malformed_and_layouts, 0, 2);
	suite_add_tcase(s, ctl);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(net_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
