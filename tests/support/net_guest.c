/* SPDX-License-Identifier: BSD-3-Clause */
/* The net tests' guest: common parts and split rings (through vdrv_split);
 * packed rings are in net_guest_packed.c. See net_guest.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "net_guest.h"
#include "vdrv_packed.h"
#include "vdrv_split.h"

#define DIE(...)                                                               \
	do {                                                                   \
		fprintf(stderr, "net_guest: " __VA_ARGS__);                    \
		fputc('\n', stderr);                                           \
		abort();                                                       \
	} while (0)

struct guest *guest_new(bool packed, uint16_t size, size_t heap, bool event_idx,
			uint16_t qindex)
{
	struct guest *g = calloc(1, sizeof(*g));
	struct vre_vq_params p = { .size = size };

	if (!g)
		DIE("out of memory");
	g->packed = packed;
	g->size = size;
	if (packed) {
		guest_packed_new(g, heap, &p);
		p.event_idx = event_idx;
	} else {
		g->vd = sdrv_new(size, heap, 0);
		sdrv_params(g->vd, &p, event_idx, false);
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
		sdrv_free(g->vd);
	else
		guest_packed_free(g);
	free(g);
}

void guest_set_in_order(struct guest *g, bool no_batch)
{
	g->q.vq.in_order = true; /* as control sets it from the features */
	if (g->vd)
		sdrv_set_in_order(g->vd, no_batch);
	else
		pdrv_set_in_order(g->pd, no_batch);
}

uint64_t guest_alloc(struct guest *g, size_t len)
{
	uint64_t gpa = g->heap;

	if (g->vd)
		return sdrv_alloc(g->vd, len);
	g->heap = (g->heap + len + 15) & ~15ull;
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

int guest_add(struct guest *g, const struct gbuf *bufs, unsigned n, uint64_t token)
{
	struct sdrv_buf vb[VRE_VQ_MAX_SIZE / 64];
	int id;

	if (!g->vd)
		return guest_packed_add(g, bufs, n, token);
	if (n > VRE_VQ_MAX_SIZE / 64)
		return -ENOSPC;
	for (unsigned k = 0; k < n; k++)
		vb[k] = (struct sdrv_buf){ bufs[k].gpa, bufs[k].len, bufs[k].write };
	id = sdrv_add(g->vd, vb, n, token);
	if (id >= 0)
		sdrv_kick(g->vd);
	return id;
}

int guest_get_used(struct guest *g, uint16_t *id, uint32_t *len, uint64_t *token)
{
	int r;

	if (!g->vd)
		return guest_packed_get_used(g, id, len, token);
	r = sdrv_get_used(g->vd, id, len, token);
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
		return sdrv_guards_ok(g->vd);
	for (size_t k = 0; k < GUEST_GUARD; k++)
		if (g->alloc[k] != GUEST_GUARD_BYTE || g->mem[g->mem_len + k] != GUEST_GUARD_BYTE)
			return false;
	return true;
}
