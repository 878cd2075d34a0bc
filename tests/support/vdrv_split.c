/* SPDX-License-Identifier: BSD-3-Clause */
/* Test driver for split rings: see vdrv_split.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdrv_split.h"

#define GUARD_BYTE 0xA5

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static void region_alloc(struct sdrv_region *r, uint64_t gpa, size_t len)
{
	r->alloc = aligned_alloc(4096, len + 2 * SDRV_GUARD);
	if (!r->alloc)
		abort();
	memset(r->alloc, GUARD_BYTE, SDRV_GUARD);
	memset(r->alloc + SDRV_GUARD + len, GUARD_BYTE, SDRV_GUARD);
	r->hva = r->alloc + SDRV_GUARD;
	memset(r->hva, 0, len);
	r->gpa = gpa;
	r->len = len;
}

struct sdrv *sdrv_new(uint16_t size, size_t heap, size_t len1)
{
	struct sdrv *d = calloc(1, sizeof(*d));
	uint64_t off = 0, len0;

	if (!d)
		abort();
	d->size = size;
	d->desc_gpa = SDRV_GPA0;
	off = vre_split_desc_bytes(size);
	d->avail_gpa = SDRV_GPA0 + align_up(off, 64);
	off = align_up(off, 64) + vre_split_avail_bytes(size);
	d->used_gpa = SDRV_GPA0 + align_up(off, 4096);
	off = align_up(off, 4096) + vre_split_used_bytes(size);
	d->heap = SDRV_GPA0 + align_up(off, 64);
	len0 = align_up(d->heap - SDRV_GPA0 + heap, 4096);
	d->heap_end = SDRV_GPA0 + len0;

	vre_mem_map_init(&d->map);
	region_alloc(&d->reg[0], SDRV_GPA0, len0);
	d->nreg = 1;
	if (len1) {
		region_alloc(&d->reg[1], SDRV_GPA0 + len0, len1);
		d->nreg = 2;
	}
	for (unsigned i = 0; i < d->nreg; i++) {
		struct vre_mem_region r = {
			.gpa = d->reg[i].gpa, .size = d->reg[i].len,
			.uva = 0x7f0000000000ull + d->reg[i].gpa, .hva = d->reg[i].hva,
			.fd = -1,
		};
		if (vre_mem_map_add(&d->map, &r))
			abort();
	}
	d->desc = (void *)(d->reg[0].hva + (d->desc_gpa - SDRV_GPA0));
	d->avail = (void *)(d->reg[0].hva + (d->avail_gpa - SDRV_GPA0));
	d->used = (void *)(d->reg[0].hva + (d->used_gpa - SDRV_GPA0));

	d->chain_ndesc = calloc(size, sizeof(*d->chain_ndesc));
	d->token = calloc(size, sizeof(*d->token));
	d->wlen = calloc(size, sizeof(*d->wlen));
	if (!d->chain_ndesc || !d->token || !d->wlen)
		abort();
	/* Free list threaded through desc.next, as a guest driver does. */
	for (uint32_t i = 0; i < size; i++)
		d->desc[i].next = (uint16_t)(i + 1);
	d->free_head = 0;
	d->num_free = size;
	return d;
}

void sdrv_free(struct sdrv *d)
{
	if (!d)
		return;
	for (unsigned i = 0; i < d->nreg; i++)
		free(d->reg[i].alloc);
	free(d->chain_ndesc);
	free(d->token);
	free(d->wlen);
	free(d);
}

void sdrv_params(const struct sdrv *d, struct vre_vq_params *p, bool event_idx,
		 bool indirect)
{
	memset(p, 0, sizeof(*p));
	p->size = d->size;
	p->event_idx = event_idx;
	p->indirect = indirect;
	p->desc = d->desc;
	p->driver = d->avail;
	p->device = d->used;
	p->mem = &d->map;
}

uint64_t sdrv_alloc(struct sdrv *d, size_t len)
{
	uint64_t gpa = align_up(d->heap, 16);

	if (gpa + len > d->heap_end) {
		fprintf(stderr, "sdrv: heap exhausted\n");
		abort();
	}
	d->heap = gpa + len;
	return gpa;
}

uint64_t sdrv_end0(const struct sdrv *d)
{
	return d->reg[0].gpa + d->reg[0].len;
}

static uint8_t *piece(struct sdrv *d, uint64_t gpa, size_t *avail)
{
	for (unsigned i = 0; i < d->nreg; i++) {
		struct sdrv_region *r = &d->reg[i];

		if (gpa >= r->gpa && gpa - r->gpa < r->len) {
			*avail = r->len - (gpa - r->gpa);
			return r->hva + (gpa - r->gpa);
		}
	}
	fprintf(stderr, "sdrv: gpa 0x%llx outside memory\n", (unsigned long long)gpa);
	abort();
}

void sdrv_write(struct sdrv *d, uint64_t gpa, const void *src, size_t len)
{
	const uint8_t *s = src;

	while (len) {
		size_t n;
		uint8_t *p = piece(d, gpa, &n);

		if (n > len)
			n = len;
		memcpy(p, s, n);
		s += n;
		gpa += n;
		len -= n;
	}
}

void sdrv_read(struct sdrv *d, uint64_t gpa, void *dst, size_t len)
{
	uint8_t *o = dst;

	while (len) {
		size_t n;
		uint8_t *p = piece(d, gpa, &n);

		if (n > len)
			n = len;
		memcpy(o, p, n);
		o += n;
		gpa += n;
		len -= n;
	}
}

void sdrv_fill(struct sdrv *d, uint64_t gpa, uint8_t byte, size_t len)
{
	while (len) {
		size_t n;
		uint8_t *p = piece(d, gpa, &n);

		if (n > len)
			n = len;
		memset(p, byte, n);
		gpa += n;
		len -= n;
	}
}

bool sdrv_guards_ok(const struct sdrv *d)
{
	for (unsigned i = 0; i < d->nreg; i++) {
		const struct sdrv_region *r = &d->reg[i];

		for (size_t k = 0; k < SDRV_GUARD; k++)
			if (r->alloc[k] != GUARD_BYTE ||
			    r->hva[r->len + k] != GUARD_BYTE)
				return false;
	}
	return true;
}

static void post(struct sdrv *d, uint16_t head)
{
	d->avail->ring[d->avail_shadow & (d->size - 1)] = head;
	d->avail_shadow++;
}

void sdrv_set_in_order(struct sdrv *d, bool no_batch)
{
	d->in_order = true;
	d->no_batch = no_batch;
	d->next_desc = d->oldest = 0;
}

int sdrv_add(struct sdrv *d, const struct sdrv_buf *bufs, unsigned n, uint64_t token)
{
	uint16_t head, idx, mask = (uint16_t)(d->size - 1);
	uint32_t wlen = 0;

	if (n == 0 || n > d->num_free)
		return -ENOSPC;
	/* In order the free descriptors are the ones after the last chain. */
	head = idx = d->in_order ? d->next_desc : d->free_head;
	for (unsigned i = 0; i < n; i++) {
		struct vre_desc *e = &d->desc[idx];
		uint16_t next = d->in_order ? (uint16_t)((idx + 1) & mask) : e->next;

		e->addr = bufs[i].gpa;
		e->len = bufs[i].len;
		e->flags = (uint16_t)((bufs[i].write ? VRE_DESC_F_WRITE : 0) |
				      (i + 1 < n ? VRE_DESC_F_NEXT : 0));
		if (d->in_order)
			e->next = i + 1 < n ? next : 0;
		if (bufs[i].write)
			wlen += bufs[i].len;
		idx = next; /* next free */
	}
	if (d->in_order)
		d->next_desc = idx;
	else
		d->free_head = idx;
	d->num_free = (uint16_t)(d->num_free - n);
	d->chain_ndesc[head] = (uint16_t)n;
	d->token[head] = token;
	d->wlen[head] = wlen;
	post(d, head);
	return head;
}

int sdrv_add_indirect(struct sdrv *d, const struct sdrv_buf *bufs, unsigned n,
		      uint64_t table_gpa, uint64_t token)
{
	struct sdrv_buf one = { .gpa = table_gpa, .len = (uint32_t)(16 * n) };
	int head;

	for (unsigned i = 0; i < n; i++) {
		struct vre_desc e = {
			.addr = bufs[i].gpa, .len = bufs[i].len,
			.flags = (uint16_t)((bufs[i].write ? VRE_DESC_F_WRITE : 0) |
					    (i + 1 < n ? VRE_DESC_F_NEXT : 0)),
			.next = (uint16_t)(i + 1 < n ? i + 1 : 0),
		};
		sdrv_write(d, table_gpa + 16ull * i, &e, sizeof(e));
	}
	head = sdrv_add(d, &one, 1, token);
	if (head >= 0) {
		d->desc[head].flags = VRE_DESC_F_INDIRECT;
		for (unsigned i = 0; i < n; i++)
			d->wlen[head] += bufs[i].write ? bufs[i].len : 0;
	}
	return head;
}

void sdrv_post_raw(struct sdrv *d, uint16_t head)
{
	post(d, head);
}

void sdrv_kick(struct sdrv *d)
{
	/* Ring entries and descriptors before the index, as a guest's wmb. */
	__atomic_store_n(&d->avail->idx, d->avail_shadow, __ATOMIC_RELEASE);
}

/* In order: reads the entry at the next used position and finds the chain
 * it names among those in flight, oldest first, within the entries the
 * device published; that many chains form the batch. */
static int inorder_batch(struct sdrv *d)
{
	uint16_t uidx = __atomic_load_n(&d->used->idx, __ATOMIC_ACQUIRE);
	uint16_t mask = (uint16_t)(d->size - 1), published = (uint16_t)(uidx - d->last_used);
	uint16_t h = d->oldest, k = 1;
	struct vre_used_elem e;

	if (published == 0)
		return 0;
	e = d->used->ring[d->last_used & mask];
	if (e.id >= d->size)
		return -ERANGE;
	for (;;) {
		if (!d->chain_ndesc[h])
			return -EPROTO; /* nothing in flight there */
		if (h == e.id)
			break;
		if (d->no_batch || k == published)
			return -EPROTO;
		h = (uint16_t)((h + d->chain_ndesc[h]) & mask);
		k++;
	}
	d->batch_left = k;
	d->batch_last = (uint16_t)e.id;
	d->batch_len = e.len;
	return 1;
}

/* Returns chain head to the driver: the free list, or in order the run of
 * free descriptors behind the oldest chain in flight. */
static void release(struct sdrv *d, uint16_t head)
{
	uint16_t n = d->chain_ndesc[head], idx = head;

	if (!d->in_order) {
		/* Back onto the free list: the chain's slots in table order. */
		for (uint16_t i = 1; i < n; i++)
			idx = d->desc[idx].next;
		d->desc[idx].next = d->free_head;
		d->free_head = head;
	} else {
		d->oldest = (uint16_t)((head + n) & (d->size - 1));
	}
	d->num_free = (uint16_t)(d->num_free + n);
	d->chain_ndesc[head] = 0;
}

int sdrv_get_used(struct sdrv *d, uint16_t *id, uint32_t *len, uint64_t *token)
{
	uint16_t uidx = __atomic_load_n(&d->used->idx, __ATOMIC_ACQUIRE);
	struct vre_used_elem e;

	if (d->in_order) {
		uint16_t head = d->oldest;
		int r;

		if (!d->batch_left && (r = inorder_batch(d)) <= 0)
			return r;
		*id = head;
		/* the chains before the named one were used completely */
		*len = head == d->batch_last && d->batch_left == 1 ? d->batch_len : d->wlen[head];
		if (token)
			*token = d->token[head];
		d->batch_left--;
		d->last_used++;
		release(d, head);
		return 1;
	}
	if (uidx == d->last_used)
		return 0;
	e = d->used->ring[d->last_used & (d->size - 1)];
	d->last_used++;
	if (e.id >= d->size)
		return -ERANGE;
	if (!d->chain_ndesc[e.id])
		return -EPROTO;
	*id = (uint16_t)e.id;
	*len = e.len;
	if (token)
		*token = d->token[e.id];
	release(d, (uint16_t)e.id);
	return 1;
}
