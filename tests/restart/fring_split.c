/* SPDX-License-Identifier: BSD-3-Clause */
/* fring over the split test driver (tests/support/vdrv_split.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fring.h"
#include "fring_impl.h"
#include "vdrv_split.h"

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

void fring_split_layout(uint16_t size, uint64_t at, struct fring_layout *l)
{
	uint64_t off = at;

	l->desc_off = off;
	off = align_up(off + vre_split_desc_bytes(size), 64);
	l->avail_off = off;
	off = align_up(off + vre_split_avail_bytes(size), 4096);
	l->used_off = off;
	off += vre_split_used_bytes(size);
	l->bytes = align_up(off - at, 4096);
}

/* sdrv_new allocates its own memory; here the rings live in the
 * frontend's memfd, so only the driver state is set up (the same free
 * list a guest threads through desc.next). */
struct fring_split *fring_split_new(uint16_t size, uint8_t *hva, const struct fring_layout *l)
{
	struct sdrv *d = calloc(1, sizeof(*d));

	if (!d)
		abort();
	d->size = size;
	d->desc = (struct vre_desc *)(hva + l->desc_off);
	d->avail = (struct vre_avail *)(hva + l->avail_off);
	d->used = (struct vre_used_ring *)(hva + l->used_off);
	memset(d->desc, 0, vre_split_desc_bytes(size));
	memset(d->avail, 0, vre_split_avail_bytes(size));
	memset(d->used, 0, vre_split_used_bytes(size));
	d->chain_ndesc = calloc(size, sizeof(*d->chain_ndesc));
	d->token = calloc(size, sizeof(*d->token));
	d->wlen = calloc(size, sizeof(*d->wlen)); /* sdrv_add records it per head */
	if (!d->chain_ndesc || !d->token || !d->wlen)
		abort();
	for (uint32_t i = 0; i < size; i++)
		d->desc[i].next = (uint16_t)(i + 1);
	d->num_free = size;
	return (struct fring_split *)d;
}

void fring_split_free(struct fring_split *s)
{
	struct sdrv *d = (struct sdrv *)s;

	free(d->chain_ndesc);
	free(d->token);
	free(d->wlen);
	free(d);
}

/* head_flags are added to the head's flags before it is published. */
int fring_split_add_flags(struct fring_split *s, const struct fbuf *b, unsigned n,
			  uint16_t tag, uint16_t head_flags)
{
	struct sdrv *d = (struct sdrv *)s;
	struct sdrv_buf v[8];
	int r;

	if (n > 8)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++)
		v[i] = (struct sdrv_buf){ .gpa = b[i].gpa, .len = b[i].len, .write = b[i].write };
	r = sdrv_add(d, v, n, tag);
	if (r < 0)
		return r;
	d->desc[r].flags |= head_flags;
	sdrv_kick(d);
	return 0;
}

int fring_split_add(struct fring_split *s, const struct fbuf *b, unsigned n, uint16_t tag)
{
	return fring_split_add_flags(s, b, n, tag, 0);
}

int fring_split_get_used(struct fring_split *s, uint16_t *tag, uint32_t *len)
{
	struct sdrv *d = (struct sdrv *)s;
	uint64_t token;
	uint16_t id;
	int r = sdrv_get_used(d, &id, len, &token);

	if (r == 1)
		*tag = (uint16_t)token;
	return r == -ERANGE ? -EPROTO : r;
}

void fring_split_arm(struct fring_split *s)
{
	struct sdrv *d = (struct sdrv *)s;

	__atomic_store_n(sdrv_used_event(d), d->last_used, __ATOMIC_RELAXED);
}

unsigned fring_split_free_descs(const struct fring_split *s)
{
	return ((const struct sdrv *)s)->num_free;
}

uint32_t fring_split_restart_base(const struct fring_split *s)
{
	const struct sdrv *d = (const struct sdrv *)s;

	return __atomic_load_n(&d->used->idx, __ATOMIC_ACQUIRE);
}
