/* SPDX-License-Identifier: BSD-3-Clause */
/* The net tests' guest, packed rings: memory with guards here, the ring
 * played by the packed ring's test driver (vdrv_packed.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_guest.h"
/* After net_guest.h: the renaming must not reach struct guest. */
#include "vdrv_packed.h"

#define DIE(...)                                                               \
	do {                                                                   \
		fprintf(stderr, "net_guest: " __VA_ARGS__);                    \
		fputc('\n', stderr);                                           \
		abort();                                                       \
	} while (0)

void guest_packed_new(struct guest *g, size_t heap, struct vre_vq_params *p)
{
	struct vre_mem_region r = { .gpa = GUEST_GPA0, .uva = 0x7f0000000000ull, .fd = -1 };
	size_t ring = (vre_packed_desc_bytes(g->size) + 8 + 4095) & ~(size_t)4095;
	size_t ev = vre_packed_desc_bytes(g->size);

	g->mem_len = ring + heap;
	g->alloc = aligned_alloc(4096, g->mem_len + 2 * GUEST_GUARD);
	g->pd = calloc(1, sizeof(*g->pd));
	g->ndesc = calloc(g->size, sizeof(*g->ndesc));
	g->token = calloc(g->size, sizeof(*g->token));
	g->id_free = calloc(g->size, sizeof(*g->id_free));
	if (!g->alloc || !g->pd || !g->ndesc || !g->token || !g->id_free)
		DIE("out of memory");
	memset(g->alloc, GUEST_GUARD_BYTE, g->mem_len + 2 * GUEST_GUARD);
	g->mem = g->alloc + GUEST_GUARD;
	memset(g->mem, 0, g->mem_len);
	g->pdesc = (struct vre_packed_desc *)g->mem;
	g->drv_ev = (struct vre_packed_event *)(g->mem + ev);
	g->dev_ev = (struct vre_packed_event *)(g->mem + ev + 4);
	g->heap = GUEST_GPA0 + ring;
	pdrv_init(g->pd, g->size, g->pdesc, g->drv_ev, g->dev_ev);
	for (uint16_t i = 0; i < g->size; i++)
		g->id_free[g->nid_free++] = (uint16_t)(g->size - 1 - i);
	r.size = g->mem_len;
	r.hva = g->mem;
	vre_mem_map_init(&g->map);
	if (vre_mem_map_add(&g->map, &r))
		DIE("map");
	p->packed = true;
	p->mem = &g->map;
	p->desc = g->pdesc;
	p->driver = g->drv_ev;
	p->device = g->dev_ev;
}

void guest_packed_free(struct guest *g)
{
	free(g->alloc);
	pdrv_fini(g->pd);
	free(g->pd);
	free(g->ndesc);
	free(g->token);
	free(g->id_free);
}

int guest_packed_add(struct guest *g, const struct gbuf *bufs, unsigned n, uint64_t token)
{
	struct pdrv_desc v[VRE_VQ_MAX_SIZE / 64];
	uint16_t id;
	int r;

	if (n == 0 || n > VRE_VQ_MAX_SIZE / 64 || g->nid_free == 0)
		return -ENOSPC;
	for (unsigned k = 0; k < n; k++)
		v[k] = (struct pdrv_desc){ bufs[k].gpa, bufs[k].len,
					   bufs[k].write ? VRE_DESC_F_WRITE : 0 };
	/* in order the id is the chain's first slot (the id stack is unused) */
	id = g->pd->in_order ? g->pd->avail_idx : g->id_free[g->nid_free - 1];
	r = pdrv_post(g->pd, v, n, id, false);
	if (r < 0)
		return r;
	if (!g->pd->in_order)
		g->nid_free--;
	g->ndesc[id] = (uint16_t)n;
	g->token[id] = token;
	return id;
}

int guest_packed_get_used(struct guest *g, uint16_t *id, uint32_t *len, uint64_t *token)
{
	int r = pdrv_get_used(g->pd, id, len);

	if (r < 0 || (r == 1 && (*id >= g->size || !g->ndesc[*id])))
		DIE("device returned a bogus used entry (%d, id %u)", r, r == 1 ? *id : 0);
	if (r == 0)
		return 0;
	*token = g->token[*id];
	g->ndesc[*id] = 0;
	if (!g->pd->in_order)
		g->id_free[g->nid_free++] = *id;
	return 1;
}
