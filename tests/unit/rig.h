/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The virtio-net rig the net unit suites share (test_net, test_dirty_log):
 * one device with one queue pair whose RX and TX queues are each played by
 * a test guest (net_guest.h: guest memory with guards, split or packed
 * rings through the ring helpers' drivers), and the frames and chains the
 * tests put on them. Every helper fails the running check test (ck_assert)
 * when something it does fails. Not thread-safe; one rig per test. The
 * names are the ones test_net always used for these helpers.
 */
#ifndef TEST_RIG_H
#define TEST_RIG_H

#include <stdbool.h>
#include <stdint.h>

#include "net_guest.h"
#include "vre_net.h"

#define PORT_QSIZE 512

struct port {
	struct vre_net_dev *n;
	struct guest *rx, *tx;
	struct vre_net_queue *rxq, *txq;
	uint16_t hdr;            /* the device's virtio-net header length */
};

/* The device (MAC 02:00:00:00:00:01, one pair) with features (packed adds
 * RING_PACKED and VERSION_1) and its two guests, heap bytes each; the
 * queues are not started yet (a test may set them up first, e.g. a dirty
 * log), port_start does that. */
void port_create(struct port *r, bool packed, uint64_t features, bool event_idx, size_t heap);
void port_start(struct port *r);
/* Both of the above. */
void port_open_heap(struct port *r, bool packed, uint64_t features, bool event_idx, size_t heap);
/* Checks the guards, stops the queues, frees everything. */
void port_close(struct port *r);
/* Starts guest g's queue on device n; its data-path queue. */
struct vre_net_queue *queue_start(struct vre_net_dev *n, struct guest *g);

/* len bytes of a pattern that differs by seed. */
void make_frame(uint8_t *f, uint32_t len, unsigned seed);
/* A TX chain: a header of hdr garbage bytes (the device must neither parse
 * nor forward it) and the frame, in one descriptor or (split_hdr) two.
 * guest_add's answer. */
int send_frame(struct guest *g, uint16_t hdr, const uint8_t *frame, uint32_t len,
	       bool split_hdr);
/* nchains RX chains of size bytes, each one buffer spread over ndesc (at
 * most 8) descriptors; the token is the buffer's GPA. Buffers start 0xee. */
void post_rx(struct guest *g, unsigned nchains, uint32_t size, unsigned ndesc);
/* Takes every used entry; the first max lengths into lens. The count. */
unsigned drain_used(struct guest *g, uint32_t *lens, unsigned max);

#endif
