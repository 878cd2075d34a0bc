/* SPDX-License-Identifier: BSD-3-Clause */
/* The net tests' guest: split through vdrv_split, packed here; see net_guest.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "net_guest.h"

#define GUARD 4096
#define GUARD_BYTE 0xa5

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

static void packed_new(struct guest *g, size_t heap, struct vre_vq_params *p)
{
	struct vre_mem_region r = { .gpa = GUEST_GPA0, .uva = 0x7f0000000000ull, .fd = -1 };
	size_t ev = vre_packed_desc_bytes(g->size);

	g->mem_len = align_up(ev + 8, 4096) + heap;
	g->alloc = aligned_alloc(4096, g->mem_len + 2 * GUARD);
	g->id_free = calloc(g->size, sizeof(*g->id_free));
	if (!g->alloc || !g->id_free)
		DIE("out of memory");
	memset(g->alloc, GUARD_BYTE, g->mem_len + 2 * GUARD);
	g->mem = g->alloc + GUARD;
	memset(g->mem, 0, g->mem_len);
	g->pdesc = (struct vre_packed_desc *)g->mem;
	g->drv_ev = (struct vre_packed_event *)(g->mem + ev);
	g->dev_ev = (struct vre_packed_event *)(g->mem + ev + 4);
	g->heap = GUEST_GPA0 + align_up(ev + 8, 4096);
	g->avail_wrap = g->used_wrap = true;
	for (uint16_t i = 0; i < g->size; i++)
		g->id_free[g->nid_free++] = (uint16_t)(g->size - 1 - i);
	r.size = g->mem_len;
	r.hva = g->mem;
	vre_mem_map_init(&g->map);
	if (vre_mem_map_add(&g->map, &r))
		DIE("map");
	p->mem = &g->map;
	p->desc = g->pdesc;
	p->driver = g->drv_ev;
	p->device = g->dev_ev;
}

struct guest *guest_new(bool packed, uint16_t size, size_t heap, bool event_idx,
			uint16_t qindex)
{
	struct guest *g = calloc(1, sizeof(*g));
	struct vre_vq_params p = { .size = size };

	if (!g)
		DIE("out of memory");
	g->packed = packed;
	g->size = size;
	g->ndesc = calloc(size, sizeof(*g->ndesc));
	g->token = calloc(size, sizeof(*g->token));
	if (!g->ndesc || !g->token)
		DIE("out of memory");
	g->num_free = size;
	if (packed) {
		packed_new(g, heap, &p);
		p.packed = true;
		p.event_idx = event_idx;
	} else {
		g->vd = vdrv_new(size, heap, 0);
		vdrv_params(g->vd, &p, event_idx, false);
	}
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
	if (g->vd)
		vdrv_free(g->vd);
	free(g->alloc);
	free(g->ndesc);
	free(g->token);
	free(g->id_free);
	free(g);
}

uint64_t guest_alloc(struct guest *g, size_t len)
{
	uint64_t gpa = g->heap;

	if (g->vd)
		return vdrv_alloc(g->vd, len);
	g->heap = align_up(g->heap + len, 16);
	if (g->heap > GUEST_GPA0 + g->mem_len)
		DIE("heap exhausted");
	return gpa;
}

void *guest_ptr(struct guest *g, uint64_t gpa)
{
	uint64_t base = g->vd ? g->vd->reg[0].gpa : GUEST_GPA0;
	uint64_t len = g->vd ? g->vd->reg[0].len : g->mem_len;
	uint8_t *hva = g->vd ? g->vd->reg[0].hva : g->mem;

	if (gpa < base || gpa >= base + len)
		DIE("gpa 0x%llx outside guest memory", (unsigned long long)gpa);
	return hva + (gpa - base);
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
	int id;

	if (g->vd) {
		struct vdrv_buf vb[VRE_VQ_MAX_SIZE / 64];

		if (n > VRE_VQ_MAX_SIZE / 64)
			return -ENOSPC;
		for (unsigned k = 0; k < n; k++)
			vb[k] = (struct vdrv_buf){ bufs[k].gpa, bufs[k].len, bufs[k].write };
		id = vdrv_add(g->vd, vb, n, token);
		if (id >= 0)
			vdrv_kick(g->vd);
		return id;
	}
	if (n == 0 || n > g->num_free)
		return -ENOSPC;
	g->num_free = (uint16_t)(g->num_free - n);
	return add_packed(g, bufs, n, token);
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
	*token = g->token[*id];
	g->ndesc[*id] = 0;
	g->id_free[g->nid_free++] = *id;
	g->num_free = (uint16_t)(g->num_free + n);
	g->next_used = (uint16_t)(g->next_used + n);
	if (g->next_used >= g->size) {
		g->next_used = (uint16_t)(g->next_used - g->size);
		g->used_wrap = !g->used_wrap;
	}
	return 1;
}

int guest_get_used(struct guest *g, uint16_t *id, uint32_t *len, uint64_t *token)
{
	int r;

	if (!g->vd)
		return used_packed(g, id, len, token);
	r = vdrv_get_used(g->vd, id, len, token);
	if (r < 0)
		DIE("device returned a bogus used entry (%d)", r);
	return r;
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
	const uint16_t *nd = g->vd ? g->vd->chain_ndesc : g->ndesc;
	unsigned n = 0;

	for (uint16_t i = 0; i < g->size; i++)
		n += nd[i] != 0;
	return n;
}

bool guest_guards_ok(const struct guest *g)
{
	if (g->vd)
		return vdrv_guards_ok(g->vd);
	for (size_t k = 0; k < GUARD; k++)
		if (g->alloc[k] != GUARD_BYTE || g->mem[g->mem_len + k] != GUARD_BYTE)
			return false;
	return true;
}
