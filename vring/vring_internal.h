/* SPDX-License-Identifier: BSD-3-Clause */
/* What vq.c dispatches to: one implementation per ring type. Not public. */
#ifndef VRING_INTERNAL_H
#define VRING_INTERNAL_H

#include <stddef.h>
#include <string.h>
#include "vre_vq.h"

/*
 * Crash steps: split.c and packed.c mark with STEP(vq, "name") every store
 * that matters for crash recovery. Tests compile the vring sources into
 * their binary with -DVRE_RING_STEP_HOOK (tests/unit/meson.build) and set
 * vring_step_hook to stop there and snapshot ring and inflight region as a
 * process killed at that point would have left them. The library is built
 * without the macro and STEP compiles to nothing.
 */
#ifdef VRE_RING_STEP_HOOK
extern void (*vring_step_hook)(struct vre_vq *vq, const char *step);
#define STEP(vq, step)                                                         \
	do {                                                                   \
		if (vring_step_hook)                                           \
			vring_step_hook((vq), (step));                         \
	} while (0)
#else
#define STEP(vq, step) do { (void)(vq); } while (0)
#endif

/* init resets the type's state and binds; bind only (re)sets ring pointers
 * from p after checking alignment, keeping every index. */
int split_init(struct vre_vq *vq, const struct vre_vq_params *p);
int split_bind(struct vre_vq *vq, const struct vre_vq_params *p);
int split_fetch(struct vre_vq *vq, struct vre_chain *chains, unsigned max,
		struct iovec *pool, unsigned pool_len);
int split_complete(struct vre_vq *vq, const struct vre_used *used, unsigned n);
int split_complete_fetched(struct vre_vq *vq, const struct vre_used *used, unsigned n);
int split_complete_inorder(struct vre_vq *vq, const struct vre_chain *chains, unsigned n);
int split_take_run(struct vre_vq *vq, struct vre_run *r, unsigned max, bool writable);
void split_complete_run(struct vre_vq *vq, const struct vre_run *r, unsigned n, bool with_len);
bool split_needs_notify(struct vre_vq *vq);
bool split_avail_pending(const struct vre_vq *vq);
bool split_notify_enable(struct vre_vq *vq);
void split_notify_disable(struct vre_vq *vq);
int split_inflight_attach(struct vre_vq *vq, void *region, uint64_t features);

int packed_init(struct vre_vq *vq, const struct vre_vq_params *p);
int packed_bind(struct vre_vq *vq, const struct vre_vq_params *p);
void packed_fini(struct vre_vq *vq);
int packed_fetch(struct vre_vq *vq, struct vre_chain *chains, unsigned max,
		 struct iovec *pool, unsigned pool_len);
int packed_complete(struct vre_vq *vq, const struct vre_used *used, unsigned n);
int packed_complete_fetched(struct vre_vq *vq, const struct vre_used *used, unsigned n);
int packed_complete_inorder(struct vre_vq *vq, const struct vre_chain *chains, unsigned n);
int packed_take_run(struct vre_vq *vq, struct vre_run *r, unsigned max, bool writable);
void packed_untake_run(struct vre_vq *vq, struct vre_run *r, unsigned k);
void packed_complete_run(struct vre_vq *vq, const struct vre_run *r, unsigned n, bool with_len);
bool packed_needs_notify(struct vre_vq *vq);
bool packed_avail_pending(const struct vre_vq *vq);
bool packed_notify_enable(struct vre_vq *vq);
void packed_notify_disable(struct vre_vq *vq);
int packed_inflight_attach(struct vre_vq *vq, void *region, uint64_t features);

/* Fills c as a chain of one descriptor of len bytes at base, readable or
 * writable, with its one iovec in iov: the fast paths of both ring types
 * hand out the common single-descriptor chain through this. */
static inline __attribute__((always_inline)) void
chain_single(struct vre_chain *c, struct iovec *iov, uint8_t *base, uint32_t len,
	     bool write, uint16_t id)
{
	iov->iov_base = base;
	iov->iov_len = len;
	c->iov = iov;
	if (write) {
		c->rlen = 0;
		c->wlen = len;
	} else {
		c->rlen = len;
		c->wlen = 0;
	}
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	{
		/* nr, nw, id, ndesc in one store and slot, err in another
		 * (six separate 16-bit stores were a third of the fast
		 * fetch's stores) */
		uint64_t counts = (write ? 1ull << 16 : 1ull) | (uint64_t)id << 32 | 1ull << 48;
		uint32_t tail = id; /* slot = id, err = 0 */

		memcpy((char *)c + offsetof(struct vre_chain, nr), &counts, sizeof(counts));
		memcpy((char *)c + offsetof(struct vre_chain, slot), &tail, sizeof(tail));
	}
#else
	c->nr = !write;
	c->nw = write;
	c->id = id;
	c->ndesc = 1;
	c->slot = id;
	c->err = 0;
#endif
}

_Static_assert(offsetof(struct vre_chain, nw) == offsetof(struct vre_chain, nr) + 2 &&
	       offsetof(struct vre_chain, id) == offsetof(struct vre_chain, nr) + 4 &&
	       offsetof(struct vre_chain, ndesc) == offsetof(struct vre_chain, nr) + 6 &&
	       offsetof(struct vre_chain, err) == offsetof(struct vre_chain, slot) + 2,
	       "chain_single stores nr..ndesc and slot..err as two words");

#endif
