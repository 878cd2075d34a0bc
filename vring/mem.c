/* SPDX-License-Identifier: BSD-3-Clause */
#include "vre_iov.h"
#include "vre_mem.h"

void vre_mem_map_init(struct vre_mem_map *m)
{
	m->nregions = 0;
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

int vre_mem_map_add(struct vre_mem_map *m, const struct vre_mem_region *r)
{
	uint32_t pos;

	if (r->size == 0 || r->gpa + r->size < r->gpa ||
	    r->uva + r->size < r->uva ||
	    (uintptr_t)r->hva + r->size < (uintptr_t)r->hva)
		return -EINVAL;
	if (m->nregions >= VRE_MEM_MAX_REGIONS)
		return -ENOSPC;
	for (uint32_t i = 0; i < m->nregions; i++) {
		const struct vre_mem_region *o = &m->regions[i];

		if (ranges_overlap(r->gpa, r->size, o->gpa, o->size) ||
		    ranges_overlap(r->uva, r->size, o->uva, o->size))
			return -EEXIST;
	}
	for (pos = 0; pos < m->nregions && m->regions[pos].gpa < r->gpa; pos++)
		;
	memmove(&m->regions[pos + 1], &m->regions[pos],
		(m->nregions - pos) * sizeof(m->regions[0]));
	m->regions[pos] = *r;
	m->nregions++;
	return 0;
}

int vre_mem_map_remove(struct vre_mem_map *m, uint64_t gpa, uint64_t size,
		       uint64_t uva, struct vre_mem_region *out)
{
	for (uint32_t i = 0; i < m->nregions; i++) {
		struct vre_mem_region *r = &m->regions[i];

		if (r->gpa != gpa || r->size != size ||
		    (uva != UINT64_MAX && r->uva != uva))
			continue;
		if (out)
			*out = *r;
		memmove(r, r + 1, (m->nregions - i - 1) * sizeof(*r));
		m->nregions--;
		return 0;
	}
	return -ENOENT;
}

int vre_mem_read(const struct vre_mem_map *m, uint32_t *hint, uint64_t gpa,
		 void *dst, uint64_t len)
{
	struct iovec iov[8];

	/* The first round checks the whole range before a byte is copied;
	 * more rounds only when it crosses more than 8 (tiny) regions. */
	for (uint64_t done = 0; done < len;) {
		int n = vre_mem_gpa_pieces(m, hint, gpa + done, len - done, iov, 8);

		if (n < 0)
			return n;
		done += vre_iov_read(iov, n < 8 ? (unsigned)n : 8, 0, (uint8_t *)dst + done,
				     (size_t)(len - done));
	}
	return 0;
}

static const struct vre_mem_region *find_uva(const struct vre_mem_map *m,
					     uint64_t uva, uint64_t len)
{
	if (len == 0 || uva + len < uva)
		return NULL;
	for (uint32_t i = 0; i < m->nregions; i++) {
		const struct vre_mem_region *r = &m->regions[i];

		if (vre_mem_range_in(r->uva, r->size, uva, len))
			return r;
	}
	return NULL;
}

void *vre_mem_uva_ptr(const struct vre_mem_map *m, uint64_t uva, uint64_t len)
{
	const struct vre_mem_region *r = find_uva(m, uva, len);

	return r ? r->hva + (uva - r->uva) : NULL;
}

int vre_mem_uva_to_gpa(const struct vre_mem_map *m, uint64_t uva, uint64_t len,
		       uint64_t *gpa)
{
	const struct vre_mem_region *r = find_uva(m, uva, len);

	if (!r)
		return -EFAULT;
	*gpa = r->gpa + (uva - r->uva);
	return 0;
}
