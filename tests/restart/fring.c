/* SPDX-License-Identifier: BSD-3-Clause */
/* fring: dispatch to the split or packed half. */
#include <stdlib.h>

#include "fring.h"
#include "fring_impl.h"
#include "vre_ring_layout.h"

struct fring {
	bool packed;
	void *impl;
};

void fring_layout(bool packed, uint16_t size, uint64_t at, struct fring_layout *l)
{
	if (packed)
		fring_packed_layout(size, at, l);
	else
		fring_split_layout(size, at, l);
}

struct fring *fring_new(bool packed, uint16_t size, uint8_t *hva, const struct fring_layout *l)
{
	struct fring *r = calloc(1, sizeof(*r));

	if (!r)
		abort();
	r->packed = packed;
	r->impl = packed ? (void *)fring_packed_new(size, hva, l) : (void *)fring_split_new(size, hva, l);
	return r;
}

void fring_free(struct fring *r)
{
	if (!r)
		return;
	if (r->packed)
		fring_packed_free(r->impl);
	else
		fring_split_free(r->impl);
	free(r);
}

int fring_add(struct fring *r, const struct fbuf *b, unsigned n, uint16_t tag)
{
	return r->packed ? fring_packed_add(r->impl, b, n, tag) : fring_split_add(r->impl, b, n, tag);
}

int fring_add_indirect(struct fring *r, const struct fbuf *b, unsigned n, uint16_t tag,
		       void *table_hva, uint64_t table_gpa)
{
	struct fbuf one = { .gpa = table_gpa, .len = 16u * n, .write = false };

	for (unsigned i = 0; i < n; i++) {
		uint16_t w = b[i].write ? VRE_DESC_F_WRITE : 0;

		if (r->packed) {
			/* Packed tables hold packed descriptors, used in
			 * order (no NEXT; the id is reserved). */
			struct vre_packed_desc *t = table_hva;

			t[i] = (struct vre_packed_desc){ .addr = b[i].gpa, .len = b[i].len,
							 .flags = w };
		} else {
			struct vre_desc *t = table_hva;

			t[i] = (struct vre_desc){
				.addr = b[i].gpa, .len = b[i].len,
				.flags = (uint16_t)(w | (i + 1 < n ? VRE_DESC_F_NEXT : 0)),
				.next = (uint16_t)(i + 1 < n ? i + 1 : 0),
			};
		}
	}
	return r->packed ? fring_packed_add_flags(r->impl, &one, 1, tag, VRE_DESC_F_INDIRECT) :
			   fring_split_add_flags(r->impl, &one, 1, tag, VRE_DESC_F_INDIRECT);
}

int fring_get_used(struct fring *r, uint16_t *tag, uint32_t *len)
{
	return r->packed ? fring_packed_get_used(r->impl, tag, len) :
			   fring_split_get_used(r->impl, tag, len);
}

void fring_arm(struct fring *r)
{
	/* Packed: the driver event area stays ENABLE, a call per completion. */
	if (!r->packed)
		fring_split_arm(r->impl);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

unsigned fring_free_descs(const struct fring *r)
{
	return r->packed ? fring_packed_free_descs(r->impl) : fring_split_free_descs(r->impl);
}

uint32_t fring_restart_base(const struct fring *r)
{
	return r->packed ? fring_packed_restart_base(r->impl) : fring_split_restart_base(r->impl);
}

uint32_t fring_initial_base(bool packed)
{
	/* Packed: both wrap counters start at 1. */
	return packed ? (1u << 15 | 1u << 31) : 0;
}
