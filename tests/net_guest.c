/* SPDX-License-Identifier: BSD-3-Clause */
/* The net tests' compact split/packed driver; see net_guest.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "net_guest.h"

#define DIE(...)                                                               \
	do {                                                                   \
		fprintf(stderr, "net_guest: " __VA_ARGS__);                    \
		fputc('\n', stderr);                                           \
		abort();                                                       \
	} while (0)

static size_t align_up(size_t v, size_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static void layout_split(struct guest *g, size_t *ring_bytes)
{
	size_t avail_off = vre_split_desc_bytes(g->size);
	size_t used_off = align_up(avail_off + vre_split_avail_bytes(g->size), 4);

	g->desc = (struct vre_desc *)g->mem;
	g->avail = (struct vre_avail *)(g->mem + avail_off);
	g->used = (struct vre_used_ring *)(g->mem + used_off);
	*ring_bytes = used_off + vre_split_used_bytes(g->size);
	for (uint16_t i = 0; i + 1 < g->size; i++)
		g->desc[i].next = (uint16_t)(i + 1);
}

static void layout_packed(struct guest *g, size_t *ring_bytes)
{
	size_t ev = vre_packed_desc_bytes(g->size);

	g->pdesc = (struct vre_packed_desc *)g->mem;
	g->drv_ev = (struct vre_packed_event *)(g->mem + ev);
	g->dev_ev = (struct vre_packed_event *)(g->mem + ev + 4);
	*ring_bytes = ev + 8;
	g->avail_wrap = g->used_wrap = true;
	for (uint16_t i = 0; i < g->size; i++)
		g->id_free[g->nid_free++] = (uint16_t)(g->size - 1 - i);
}

struct guest *guest_new(bool packed, uint16_t size, size_t heap, bool event_idx,
			uint16_t qindex)
{
	struct guest *g = calloc(1, sizeof(*g));
	struct vre_vq_params p = { .size = size, .packed = packed, .event_idx = event_idx };
	struct vre_mem_region r = { .gpa = GUEST_GPA0, .uva = 0x7f0000000000ull, .fd = -1 };
	size_t ring_bytes, ring_max = 16ull * size + 16ull * size + 64;

	if (!g)
		DIE("out of memory");
	g->packed = packed;
	g->size = size;
	g->mem_len = align_up(ring_max, 4096) + heap;
	g->mem = aligned_alloc(4096, g->mem_len);
	g->ndesc = calloc(size, sizeof(*g->ndesc));
	g->token = calloc(size, sizeof(*g->token));
	g->id_free = calloc(size, sizeof(*g->id_free));
	if (!g->mem || !g->ndesc || !g->token || !g->id_free)
		DIE("out of memory");
	memset(g->mem, 0, g->mem_len);
	g->num_free = size;
	if (packed)
		layout_packed(g, &ring_bytes);
	else
		layout_split(g, &ring_bytes);
	g->heap = GUEST_GPA0 + align_up(ring_bytes, 4096);
	r.size = g->mem_len;
	r.hva = g->mem;
	vre_mem_map_init(&g->map);
	if (vre_mem_map_add(&g->map, &r))
		DIE("map");
	p.mem = &g->map;
	p.desc = g->mem;
	p.driver = packed ? (void *)g->drv_ev : (void *)g->avail;
	p.device = packed ? (void *)g->dev_ev : (void *)g->used;
	if (vre_vq_init(&g->q.vq, &p))
		DIE("vre_vq_init");
	g->q.index = qindex;
	g->q.kick_fd = -1;
	g->q.err_fd = -1;
	g->q.call_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (g->q.call_fd < 0)
		DIE("eventfd");
	g->q.started = g->q.enabled = g->q.running = true;
	return g;
}

void guest_free(struct guest *g)
{
	if (!g)
		return;
	vre_vq_fini(&g->q.vq);
	close(g->q.call_fd);
	free(g->mem);
	free(g->ndesc);
	free(g->token);
	free(g->id_free);
	free(g);
}

uint64_t guest_alloc(struct guest *g, size_t len)
{
	uint64_t gpa = g->heap;

	g->heap = align_up(g->heap + len, 16);
	if (g->heap > GUEST_GPA0 + g->mem_len)
		DIE("heap exhausted");
	return gpa;
}

void *guest_ptr(struct guest *g, uint64_t gpa)
{
	if (gpa < GUEST_GPA0 || gpa >= GUEST_GPA0 + g->mem_len)
		DIE("gpa 0x%llx outside guest memory", (unsigned long long)gpa);
	return g->mem + (gpa - GUEST_GPA0);
}

static int add_split(struct guest *g, const struct gbuf *b, unsigned n, uint64_t token)
{
	uint16_t head = g->free_head, i = head;

	for (unsigned k = 0; k < n; k++) {
		struct vre_desc *d = &g->desc[i];

		d->addr = b[k].gpa;
		d->len = b[k].len;
		d->flags = (uint16_t)((b[k].write ? VRE_DESC_F_WRITE : 0) |
				      (k + 1 < n ? VRE_DESC_F_NEXT : 0));
		if (k + 1 < n)
			i = d->next;
		else
			g->free_head = d->next;
	}
	g->ndesc[head] = (uint16_t)n;
	g->token[head] = token;
	g->avail->ring[g->avail_idx % g->size] = head;
	__atomic_store_n(&g->avail->idx, ++g->avail_idx, __ATOMIC_RELEASE);
	return head;
}

static uint16_t avail_flags(bool wrap)
{
	return wrap ? VRE_PACKED_DESC_F_AVAIL : VRE_PACKED_DESC_F_USED;
}

static int add_packed(struct guest *g, const struct gbuf *b, unsigned n, uint64_t token)
{
	uint16_t id = g->id_free[--g->nid_free];
	uint16_t slot = g->next_avail, first_flags = 0;
	bool wrap = g->avail_wrap;

	for (unsigned k = 0; k < n; k++) {
		struct vre_packed_desc *d = &g->pdesc[slot];
		uint16_t f = (uint16_t)((b[k].write ? VRE_DESC_F_WRITE : 0) |
					(k + 1 < n ? VRE_DESC_F_NEXT : 0) | avail_flags(wrap));

		d->addr = b[k].gpa;
		d->len = b[k].len;
		d->id = id;
		if (k == 0)
			first_flags = f;
		else
			d->flags = f;
		if (++slot == g->size) {
			slot = 0;
			wrap = !wrap;
		}
	}
	/* The head's flags last: the device must not see a half-made chain. */
	__atomic_store_n(&g->pdesc[g->next_avail].flags, first_flags, __ATOMIC_RELEASE);
	g->next_avail = slot;
	g->avail_wrap = wrap;
	g->ndesc[id] = (uint16_t)n;
	g->token[id] = token;
	return id;
}

int guest_add(struct guest *g, const struct gbuf *bufs, unsigned n, uint64_t token)
{
	if (n == 0 || n > g->num_free)
		return -ENOSPC;
	g->num_free = (uint16_t)(g->num_free - n);
	return g->packed ? add_packed(g, bufs, n, token) : add_split(g, bufs, n, token);
}

static void give_back(struct guest *g, uint16_t id, uint64_t *token)
{
	uint16_t n = g->ndesc[id];

	if (!g->packed) {
		uint16_t last = id;

		for (uint16_t k = 1; k < n; k++)
			last = g->desc[last].next;
		g->desc[last].next = g->free_head;
		g->free_head = id;
	} else {
		g->id_free[g->nid_free++] = id;
	}
	g->num_free = (uint16_t)(g->num_free + n);
	g->ndesc[id] = 0;
	if (token)
		*token = g->token[id];
}

static int used_split(struct guest *g, uint16_t *id, uint32_t *len, uint64_t *token)
{
	const struct vre_used_elem *e;
	uint32_t eid;

	if (__atomic_load_n(&g->used->idx, __ATOMIC_ACQUIRE) == g->last_used)
		return 0;
	e = &g->used->ring[g->last_used++ % g->size];
	eid = e->id;
	if (eid >= g->size || !g->ndesc[eid])
		DIE("device returned id %u that is not in flight", eid);
	*id = (uint16_t)eid;
	*len = e->len;
	give_back(g, *id, token);
	return 1;
}

static int used_packed(struct guest *g, uint16_t *id, uint32_t *len, uint64_t *token)
{
	struct vre_packed_desc *d = &g->pdesc[g->next_used];
	uint16_t f = __atomic_load_n(&d->flags, __ATOMIC_ACQUIRE), n;
	bool a = f & VRE_PACKED_DESC_F_AVAIL, u = f & VRE_PACKED_DESC_F_USED;

	if (a != g->used_wrap || u != g->used_wrap)
		return 0;
	if (d->id >= g->size || !g->ndesc[d->id])
		DIE("device returned id %u that is not in flight", d->id);
	*id = d->id;
	*len = d->len;
	n = g->ndesc[*id];
	give_back(g, *id, token);
	g->next_used = (uint16_t)(g->next_used + n);
	if (g->next_used >= g->size) {
		g->next_used = (uint16_t)(g->next_used - g->size);
		g->used_wrap = !g->used_wrap;
	}
	return 1;
}

int guest_get_used(struct guest *g, uint16_t *id, uint32_t *len, uint64_t *token)
{
	return g->packed ? used_packed(g, id, len, token) : used_split(g, id, len, token);
}

uint64_t guest_calls(struct guest *g)
{
	uint64_t v = 0;

	if (read(g->q.call_fd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

unsigned guest_inflight(const struct guest *g)
{
	unsigned n = 0;

	for (uint16_t i = 0; i < g->size; i++)
		n += g->ndesc[i] != 0;
	return n;
}
