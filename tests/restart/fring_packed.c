/* SPDX-License-Identifier: BSD-3-Clause */
/* fring over the packed test driver (tests/support/vdrv_packed.c). */
#include <errno.h>
#include <stdlib.h>

#include "fring.h"
#include "fring_impl.h"
#include "vdrv_packed.h"

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

void fring_packed_layout(uint16_t size, uint64_t at, struct fring_layout *l)
{
	l->desc_off = at;
	l->avail_off = at + align_up(16ull * size, 64);
	l->used_off = l->avail_off + 64;
	l->bytes = align_up(l->used_off + 64 - at, 4096);
}

struct fring_packed *fring_packed_new(uint16_t size, uint8_t *hva, const struct fring_layout *l)
{
	struct pdrv *d = calloc(1, sizeof(*d));

	if (!d)
		abort();
	pdrv_init(d, size, hva + l->desc_off, hva + l->avail_off, hva + l->used_off);
	return (struct fring_packed *)d;
}

void fring_packed_free(struct fring_packed *p)
{
	free(p);
}

int fring_packed_add_flags(struct fring_packed *p, const struct fbuf *b, unsigned n,
			   uint16_t tag, uint16_t head_flags)
{
	struct pdrv_desc v[8];

	if (n > 8)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++)
		v[i] = (struct pdrv_desc){ .addr = b[i].gpa, .len = b[i].len,
					   .flags = (uint16_t)((b[i].write ? VRE_DESC_F_WRITE : 0) |
							       (i ? 0 : head_flags)) };
	return pdrv_post((struct pdrv *)p, v, n, tag, false);
}

int fring_packed_add(struct fring_packed *p, const struct fbuf *b, unsigned n, uint16_t tag)
{
	return fring_packed_add_flags(p, b, n, tag, 0);
}

int fring_packed_get_used(struct fring_packed *p, uint16_t *tag, uint32_t *len)
{
	return pdrv_get_used((struct pdrv *)p, tag, len);
}

unsigned fring_packed_free_descs(const struct fring_packed *p)
{
	return ((const struct pdrv *)p)->free_slots;
}

uint32_t fring_packed_restart_base(const struct fring_packed *p)
{
	const struct pdrv *d = (const struct pdrv *)p;
	uint32_t half = d->used_idx | (uint32_t)d->used_wrap << 15;

	return half | half << 16;
}
