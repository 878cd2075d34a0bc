/* SPDX-License-Identifier: BSD-3-Clause */
/* What vq.c dispatches to: one implementation per ring type. Not public. */
#ifndef VRE_VRING_INTERNAL_H
#define VRE_VRING_INTERNAL_H

#include "vre_vq.h"

/* init resets the type's state and binds; bind only (re)sets ring pointers
 * from p after checking alignment, keeping every index. */
int vre_split_init(struct vre_vq *vq, const struct vre_vq_params *p);
int vre_split_bind(struct vre_vq *vq, const struct vre_vq_params *p);
int vre_split_fetch(struct vre_vq *vq, struct vre_chain *chains, unsigned max,
		    struct iovec *pool, unsigned pool_len);
int vre_split_complete(struct vre_vq *vq, const struct vre_used *used, unsigned n);
int vre_split_complete_fetched(struct vre_vq *vq, const struct vre_used *used, unsigned n);
bool vre_split_needs_notify(struct vre_vq *vq);
bool vre_split_avail_pending(const struct vre_vq *vq);
bool vre_split_notify_enable(struct vre_vq *vq);
void vre_split_notify_disable(struct vre_vq *vq);
int vre_split_inflight_attach(struct vre_vq *vq, void *region, uint64_t features);

int vre_packed_init(struct vre_vq *vq, const struct vre_vq_params *p);
int vre_packed_bind(struct vre_vq *vq, const struct vre_vq_params *p);
void vre_packed_fini(struct vre_vq *vq);
int vre_packed_fetch(struct vre_vq *vq, struct vre_chain *chains, unsigned max,
		     struct iovec *pool, unsigned pool_len);
int vre_packed_complete(struct vre_vq *vq, const struct vre_used *used, unsigned n);
int vre_packed_complete_fetched(struct vre_vq *vq, const struct vre_used *used, unsigned n);
bool vre_packed_needs_notify(struct vre_vq *vq);
bool vre_packed_avail_pending(const struct vre_vq *vq);
bool vre_packed_notify_enable(struct vre_vq *vq);
void vre_packed_notify_disable(struct vre_vq *vq);
int vre_packed_inflight_attach(struct vre_vq *vq, void *region, uint64_t features);

/* Fills c as a chain of one descriptor of len bytes at base, readable or
 * writable, with its one iovec in iov: the fast paths of both ring types
 * hand out the common single-descriptor chain through this. */
static inline __attribute__((always_inline)) void
vre_chain_single(struct vre_chain *c, struct iovec *iov, uint8_t *base, uint32_t len,
		 bool write, uint16_t id)
{
	iov->iov_base = base;
	iov->iov_len = len;
	c->iov = iov;
	c->id = id;
	c->slot = id;
	c->ndesc = 1;
	c->err = 0;
	if (write) {
		c->nr = 0;
		c->nw = 1;
		c->rlen = 0;
		c->wlen = len;
	} else {
		c->nr = 1;
		c->nw = 0;
		c->rlen = len;
		c->wlen = 0;
	}
}

#endif
