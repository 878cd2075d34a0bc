/* SPDX-License-Identifier: BSD-3-Clause */
/* Placeholder until the packed ring lands: every operation fails. */
#include "vring_internal.h"

int vre_packed_init(struct vre_vq *vq, const struct vre_vq_params *p) { (void)vq; (void)p; return -ENOSYS; }
int vre_packed_fetch(struct vre_vq *vq, struct vre_chain *c, unsigned max, struct iovec *pool, unsigned pool_len) { (void)vq; (void)c; (void)max; (void)pool; (void)pool_len; return -ENOSYS; }
int vre_packed_complete(struct vre_vq *vq, const struct vre_used *u, unsigned n) { (void)vq; (void)u; (void)n; return -ENOSYS; }
bool vre_packed_needs_notify(struct vre_vq *vq) { (void)vq; return false; }
bool vre_packed_avail_pending(const struct vre_vq *vq) { (void)vq; return false; }
bool vre_packed_notify_enable(struct vre_vq *vq) { (void)vq; return false; }
void vre_packed_notify_disable(struct vre_vq *vq) { (void)vq; }
int vre_packed_inflight_attach(struct vre_vq *vq, void *region, uint64_t features) { (void)vq; (void)region; (void)features; return -ENOSYS; }
void vre_packed_fini(struct vre_vq *vq) { (void)vq; }
int vre_packed_bind(struct vre_vq *vq, const struct vre_vq_params *p) { (void)vq; (void)p; return -ENOSYS; }
