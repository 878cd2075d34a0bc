/* SPDX-License-Identifier: BSD-3-Clause */
/* rig.h: the net unit suites' shared device, guests, frames and chains. */
#include <check.h>
#include <string.h>

#include "rig.h"

#define F(b) (1ull << (b))

struct vre_net_queue *queue_start(struct vre_net_dev *n, struct guest *g)
{
	ck_assert_int_eq(vre_net_dev_ops(n)->queue_start(n, &g->q), 0);
	ck_assert_ptr_nonnull(g->q.dp);
	return g->q.dp;
}

void port_create(struct port *r, bool packed, uint64_t features, bool event_idx, size_t heap)
{
	struct vre_net_config cfg = { .mac = { 2, 0, 0, 0, 0, 1 }, .max_queue_pairs = 1 };

	memset(r, 0, sizeof(*r));
	ck_assert_int_eq(vre_net_dev_create(&cfg, NULL, NULL, &r->n), 0);
	if (packed)
		features |= F(VRE_F_RING_PACKED) | F(VRE_F_VERSION_1);
	ck_assert_int_eq(vre_net_dev_ops(r->n)->set_features(r->n, features), 0);
	r->rx = guest_new(packed, PORT_QSIZE, heap, event_idx, 0);
	r->tx = guest_new(packed, PORT_QSIZE, heap, event_idx, 1);
}

void port_start(struct port *r)
{
	r->rxq = queue_start(r->n, r->rx);
	r->txq = queue_start(r->n, r->tx);
	r->hdr = r->txq->hdr_len;
	ck_assert(!r->rxq->is_tx && r->txq->is_tx);
}

void port_open_heap(struct port *r, bool packed, uint64_t features, bool event_idx, size_t heap)
{
	port_create(r, packed, features, event_idx, heap);
	port_start(r);
}

void port_close(struct port *r)
{
	ck_assert(guest_guards_ok(r->rx) && guest_guards_ok(r->tx));
	vre_net_dev_ops(r->n)->queue_stop(r->n, &r->rx->q);
	vre_net_dev_ops(r->n)->queue_stop(r->n, &r->tx->q);
	ck_assert_ptr_null(r->rx->q.dp);
	guest_free(r->rx);
	guest_free(r->tx);
	vre_net_dev_destroy(r->n);
}

void make_frame(uint8_t *f, uint32_t len, unsigned seed)
{
	for (uint32_t i = 0; i < len; i++)
		f[i] = (uint8_t)(seed * 31u + i * 7u + (i >> 8));
}

int send_frame(struct guest *g, uint16_t hdr, const uint8_t *frame, uint32_t len,
	       bool split_hdr)
{
	uint64_t gpa = guest_alloc(g, hdr + len);
	uint8_t *h = guest_ptr(g, gpa);

	memset(h, 0x5a, hdr);
	memcpy(h + hdr, frame, len);
	if (split_hdr) {
		struct gbuf b[2] = { { gpa, hdr, false }, { gpa + hdr, len, false } };

		return guest_add(g, b, len ? 2 : 1, gpa);
	}
	struct gbuf b = { gpa, hdr + len, false };

	return guest_add(g, &b, 1, gpa);
}

void post_rx(struct guest *g, unsigned nchains, uint32_t size, unsigned ndesc)
{
	for (unsigned c = 0; c < nchains; c++) {
		uint64_t gpa = guest_alloc(g, size);
		struct gbuf b[8];
		uint32_t off = 0;

		ck_assert_uint_le(ndesc, 8);
		memset(guest_ptr(g, gpa), 0xee, size);
		for (unsigned d = 0; d < ndesc; d++) {
			uint32_t l = d + 1 < ndesc ? size / ndesc : size - off;

			b[d] = (struct gbuf){ gpa + off, l, true };
			off += l;
		}
		ck_assert_int_ge(guest_add(g, b, ndesc, gpa), 0);
	}
}

unsigned drain_used(struct guest *g, uint32_t *lens, unsigned max)
{
	unsigned n = 0;
	uint16_t id;
	uint32_t len;
	uint64_t token;

	while (guest_get_used(g, &id, &len, &token) == 1) {
		if (n < max)
			lens[n] = len;
		n++;
	}
	return n;
}
