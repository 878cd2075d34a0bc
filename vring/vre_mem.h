/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Guest memory map: the regions the frontend shared, each known by its guest
 * physical address (GPA, used in descriptors) and its frontend virtual address
 * (UVA, used for ring addresses), with the host pointer (HVA) where it is
 * mapped here.
 *
 * Translation sits on the hot path for every descriptor, so it is a concrete
 * type with static inline lookups (last-hit hint, then binary search over
 * regions sorted by GPA) rather than a callback. Tests build maps over plain
 * buffers with vre_mem_map_add().
 *
 * A translation covers the whole range or fails: no byte outside a region is
 * ever handed out. A range that crosses from one region into an adjacent one
 * yields one iovec per region.
 *
 * The map is not locked. Whoever changes it (control) first makes sure no
 * worker is inside a queue that reads it (the quiesce handshake); the hint is
 * owned by the reader (one per queue), so readers never write shared lines.
 */
#ifndef VRE_MEM_H
#define VRE_MEM_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

/* The vhost-user spec's largest CONFIGURE_MEM_SLOTS table. */
#define VRE_MEM_MAX_REGIONS 509

struct vre_mem_region {
	uint64_t gpa;  /* guest physical start */
	uint64_t size; /* bytes, > 0 */
	uint64_t uva;  /* frontend virtual start (userspace_addr) */
	uint8_t *hva;  /* host pointer to gpa */
	/* Owner bookkeeping, opaque to vring (control keeps mmap base/len/fd). */
	void *mmap_base;
	uint64_t mmap_len;
	int fd;
	uint32_t refs; /* times the frontend added this same region */
};

struct vre_mem_map {
	uint32_t nregions;
	struct vre_mem_region regions[VRE_MEM_MAX_REGIONS]; /* sorted by gpa */
};

void vre_mem_map_init(struct vre_mem_map *m);
/* Adds a region. -EINVAL for size 0 or gpa/uva/hva ranges that wrap, -EEXIST
 * when its GPA or UVA range overlaps a region already present, -ENOSPC when
 * the map is full. */
int vre_mem_map_add(struct vre_mem_map *m, const struct vre_mem_region *r);
/* Removes the region with exactly this gpa and size (and uva if uva != ~0),
 * copying it to *out. -ENOENT when there is none. */
int vre_mem_map_remove(struct vre_mem_map *m, uint64_t gpa, uint64_t size,
		       uint64_t uva, struct vre_mem_region *out);

/* The one range predicate: whether [addr, addr + len) is a non-empty range
 * inside the region [base, base + size). Every lookup here and the rings'
 * one-descriptor fast paths use it. One compare for the start, one for the
 * length: len - 1 wraps for 0, so an empty range is never inside, and the
 * "<= ... - 1" form lets a point lookup (len 1) fold to the first compare. */
static inline __attribute__((always_inline)) bool
vre_mem_range_in(uint64_t base, uint64_t size, uint64_t addr, uint64_t len)
{
	uint64_t off = addr - base;

	if (off >= size)
		return false;
	return len - 1 <= size - off - 1;
}

/* Index of the region holding gpa, or -1. *hint is the caller's last hit. */
static inline int vre_mem_find_gpa(const struct vre_mem_map *m, uint32_t *hint,
				   uint64_t gpa)
{
	const struct vre_mem_region *r;
	uint32_t lo = 0, hi = m->nregions;

	if (*hint < m->nregions) {
		r = &m->regions[*hint];
		if (vre_mem_range_in(r->gpa, r->size, gpa, 1))
			return (int)*hint;
	}
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		r = &m->regions[mid];
		if (gpa < r->gpa) {
			hi = mid;
		} else if (!vre_mem_range_in(r->gpa, r->size, gpa, 1)) {
			lo = mid + 1;
		} else {
			*hint = mid;
			return (int)mid;
		}
	}
	return -1;
}

/*
 * The one walk of a guest range across regions: the pieces of
 * [gpa, gpa + len), one per region it crosses, as host iovecs; the first
 * max of them are written to iov (which may be NULL when max is 0).
 * Returns how many pieces the whole range takes (0 when len is 0: nothing
 * is dereferenced), -EOVERFLOW when gpa + len wraps, -EFAULT when any byte
 * is outside the map. Translation, counting and copying all go through it.
 */
static inline int vre_mem_gpa_pieces(const struct vre_mem_map *m, uint32_t *hint,
				     uint64_t gpa, uint64_t len,
				     struct iovec *iov, unsigned max)
{
	unsigned n = 0;

	if (len == 0)
		return 0;
	if (gpa + len < gpa)
		return -EOVERFLOW;
	do {
		int i = vre_mem_find_gpa(m, hint, gpa);
		const struct vre_mem_region *r;
		uint64_t off, chunk;

		if (i < 0)
			return -EFAULT;
		r = &m->regions[i];
		off = gpa - r->gpa;
		chunk = r->size - off;
		if (chunk > len)
			chunk = len;
		if (n < max) {
			iov[n].iov_base = r->hva + off;
			iov[n].iov_len = (size_t)chunk;
		}
		n++;
		gpa += chunk;
		len -= chunk;
	} while (len);
	return (int)n;
}

/*
 * Translates [gpa, gpa + len) into at most max iovecs.
 * Returns the number of iovecs written (0 when len is 0: nothing is
 * dereferenced), -EOVERFLOW when gpa + len wraps, -EFAULT when any byte is
 * outside the map, -ENOBUFS when more than max pieces would be needed.
 */
static inline int vre_mem_gpa_to_iov(const struct vre_mem_map *m, uint32_t *hint,
				     uint64_t gpa, uint64_t len,
				     struct iovec *iov, unsigned max)
{
	int n = vre_mem_gpa_pieces(m, hint, gpa, len, iov, max);

	return n > 0 && (unsigned)n > max ? -ENOBUFS : n;
}

/* Host pointer for a range that lies inside one region, else NULL (also for
 * len 0, wrap-around or a range split across regions). For ring structures
 * and descriptor tables, which must be contiguous here. */
static inline void *vre_mem_gpa_ptr(const struct vre_mem_map *m, uint32_t *hint,
				    uint64_t gpa, uint64_t len)
{
	const struct vre_mem_region *r;
	int i = vre_mem_find_gpa(m, hint, gpa);

	if (i < 0)
		return NULL;
	r = &m->regions[i];
	if (!vre_mem_range_in(r->gpa, r->size, gpa, len))
		return NULL;
	return r->hva + (gpa - r->gpa);
}

/* Copies len bytes at gpa into dst, across regions if needed.
 * 0, or -EOVERFLOW / -EFAULT as vre_mem_gpa_pieces (then nothing is
 * copied). */
int vre_mem_read(const struct vre_mem_map *m, uint32_t *hint, uint64_t gpa,
		 void *dst, uint64_t len);

/* Frontend virtual address (vhost-user ring addresses) to host pointer, for a
 * range wholly inside one region; NULL otherwise. Cold path (ring setup). */
void *vre_mem_uva_ptr(const struct vre_mem_map *m, uint64_t uva, uint64_t len);
/* The GPA of a frontend virtual address range inside one region, for callers
 * that must hand the ring addresses to GPA-based code. -EFAULT if none. */
int vre_mem_uva_to_gpa(const struct vre_mem_map *m, uint64_t uva, uint64_t len,
		       uint64_t *gpa);

#endif
