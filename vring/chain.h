/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The one descriptor-chain walker both ring types use (not public).
 *
 * A chain is walked by one loop, chain_run(), over a descriptor source
 * (struct chain_src) that says where descriptors come from and how the
 * next one is found: the split ring follows each descriptor's next field
 * through the descriptor table; the packed ring reads consecutive slots
 * while NEXT is set; an inflight record lists a packed chain's descriptors
 * by count; an indirect table is read entry by entry (split: by next,
 * packed: in order). The rules live here once, in the spirit of Linux's
 * vringh.c and rust-vmm's DescriptorChain:
 *  - every descriptor counts against a limit (loops, chains longer than the
 *    queue, tables longer than themselves): VRE_RE_CHAIN_TOO_LONG;
 *  - readable descriptors come before writable ones;
 *  - a buffer is translated whole into iovecs, one per region it crosses,
 *    or the chain is refused; a zero-length buffer's address is never used;
 *  - an indirect table is checked (negotiated, where it may stand, length,
 *    inside guest memory, possibly across regions) and each entry is read
 *    exactly once into a local, behind a compiler barrier, before it is
 *    checked;
 *  - one error enum (enum vre_ring_error) is the result.
 * The ring files keep what only they know: availability and wrap counters,
 * buffer ids, inflight records, and the one-descriptor fast paths, which
 * use vre_mem_range_in() like every lookup.
 *
 * Everything here is inlined into each ring's walker with a constant
 * source, so a source's read function is a direct (inlined) call and the
 * walk state can live in registers; chain.c has the cold parts.
 */
#ifndef VRING_CHAIN_H
#define VRING_CHAIN_H

#include <stdatomic.h>
#include <string.h>

#include "vring_internal.h"

/* What one chain turns into while it is walked. Pieces beyond the room
 * are counted but not stored, so a chain too big for the pool is still
 * fully validated and its size known. */
struct chain_walk {
	const struct vre_mem_map *mem;
	uint32_t *hint;
	struct iovec *iov;     /* the chain's iovecs go here */
	struct iovec *next;    /* where the next piece goes */
	unsigned left;         /* room left there; 0 once a piece did not fit */
	unsigned room;         /* the room at the start */
	unsigned pieces;       /* iovecs the chain takes so far */
	unsigned nr;           /* readable ones among them (they come first) */
	uint64_t rlen, wlen;
	unsigned count;        /* descriptors visited: the ring's and a table's */
	unsigned limit;        /* count may not pass this */
	uint16_t qsize;
	bool indirect;         /* VIRTIO_RING_F_INDIRECT_DESC negotiated */
	bool writing;          /* a writable descriptor was seen */
	bool stale;            /* a packed table had stale WRITE flags (chain.c) */
};

static inline void chain_walk_start(struct chain_walk *w, struct vre_vq *vq,
				    struct iovec *iov, unsigned room)
{
	*w = (struct chain_walk){
		.mem = vq->mem,
		.hint = &vq->mem_hint,
		.iov = iov,
		.next = iov,
		.left = room,
		.room = room,
		.limit = vq->size,
		.qsize = vq->size,
		.indirect = vq->indirect,
	};
}

/* One copy of a 16-byte descriptor (either layout) into a local. The
 * compiler barrier keeps later uses on the copy: without it the compiler
 * could load a field from guest memory again after it was checked. Works
 * for any alignment (indirect tables are wherever the guest put them). */
static inline void desc_read_once(void *dst, const void *src)
{
	memcpy(dst, src, sizeof(struct vre_desc));
	atomic_signal_fence(memory_order_seq_cst);
}

static inline struct vre_desc desc_copy(const void *src)
{
	struct vre_desc d;

	desc_read_once(&d, src);
	return d;
}

/*
 * Where a chain's descriptors come from. read() puts descriptor i (at
 * position pos, see below) into *d as a struct vre_desc (packed
 * descriptors leave next 0) or returns the error that stops the walk.
 *  - n: the chain has exactly n descriptors (packed tables, inflight
 *    records); 0: it goes on while NEXT is set.
 *  - links: the next descriptor is at position d->next, which must be below
 *    links (split ring and tables); 0: it is at position i + 1 (packed).
 *  - packed: packed rules (an indirect descriptor stands alone; tables
 *    have the packed layout and may carry stale WRITE flags).
 *  - table: the source is an indirect table (an INDIRECT entry is nesting).
 */
struct chain_src {
	enum vre_ring_error (*read)(void *ctx, uint32_t pos, unsigned i, struct vre_desc *d);
	unsigned n;
	uint32_t links;
	bool packed;
	bool table;
};

void chain_stale_write(struct chain_walk *w);
enum vre_ring_error chain_entry_copy(const struct vre_mem_map *mem, uint32_t *hint,
				     uint64_t gpa, void *raw);

/* A buffer descriptor: direction order, bounds, translation. lenient: in a
 * packed table, where a readable entry after a writable one is DPDK's
 * stale flag (chain.c), not an error. */
static inline __attribute__((always_inline)) enum vre_ring_error
chain_buffer(struct chain_walk *w, uint64_t addr, uint32_t len, bool write, bool lenient)
{
	int n;

	if (write) {
		w->writing = true;
	} else if (w->writing) {
		if (!lenient)
			return VRE_RE_WRITE_THEN_READ;
		chain_stale_write(w);
	}
	if (len == 0)
		return VRE_RE_NONE; /* nothing to translate, addr never used */
	if (addr + len < addr)
		return VRE_RE_DESC_OVERFLOW;
	n = vre_mem_gpa_pieces(w->mem, w->hint, addr, len, w->next, w->left);
	if (n < 0)
		return VRE_RE_DESC_OUT_OF_MEMORY;
	if ((unsigned)n <= w->left) {
		w->next += n;
		w->left -= (unsigned)n;
	} else {
		w->left = 0; /* over: only counted from here on */
	}
	w->pieces += (unsigned)n;
	if (write) {
		w->wlen += len;
	} else {
		w->rlen += len;
		w->nr += (unsigned)n;
	}
	return VRE_RE_NONE;
}

/*
 * The one loop over a chain: count, read, check, translate, follow. An
 * indirect descriptor ends the source's part of the chain: it is checked
 * for where it stands and copied to *ind, and the caller goes on into the
 * table (chain_walk_whole does; the loop does not call itself).
 */
static inline __attribute__((always_inline)) enum vre_ring_error
chain_run(struct chain_walk *w, const struct chain_src *src, void *ctx, uint32_t pos,
	  struct vre_desc *ind)
{
	for (unsigned i = 0;; i++) {
		struct vre_desc d;
		enum vre_ring_error e;
		bool more;

		if (++w->count > w->limit)
			return VRE_RE_CHAIN_TOO_LONG;
		e = src->read(ctx, pos, i, &d);
		if (e)
			return e;
		more = src->n ? i + 1 < src->n : (d.flags & VRE_DESC_F_NEXT) != 0;
		if (d.flags & VRE_DESC_F_INDIRECT) {
			if (src->table)
				return VRE_RE_INDIRECT_NESTED;
			if (!w->indirect)
				return VRE_RE_INDIRECT_NOT_NEGOTIATED;
			/* split: INDIRECT ends a chain; packed: it is the
			 * whole chain */
			if (more || (src->packed && i > 0))
				return VRE_RE_INDIRECT_WITH_NEXT;
			*ind = d;
			return VRE_RE_NONE;
		}
		e = chain_buffer(w, d.addr, d.len, d.flags & VRE_DESC_F_WRITE,
				 src->table && src->packed);
		if (e || !more)
			return e;
		if (src->links) {
			if (d.next >= src->links)
				return VRE_RE_NEXT_OUT_OF_RANGE;
			pos = d.next;
		} else {
			pos++;
		}
	}
}

/* ---- Indirect tables -------------------------------------------------- */

/* An indirect table as a descriptor source: entries read in place when the
 * table lies in one region (the usual case), else copied across the
 * regions it spans; either way each entry once, into a local. */
struct chain_table {
	const struct vre_mem_map *mem;
	uint32_t *hint;
	const uint8_t *base; /* NULL: the table spans regions */
	uint64_t gpa;
};

static inline __attribute__((always_inline)) enum vre_ring_error
table_read_once(const struct chain_table *t, uint32_t pos, void *raw)
{
	if (t->base) {
		desc_read_once(raw, t->base + 16ull * pos);
		return VRE_RE_NONE;
	}
	return chain_entry_copy(t->mem, t->hint, t->gpa + 16ull * pos, raw);
}

/* Split tables have the ring's layout, next included. */
static inline enum vre_ring_error split_entry(void *ctx, uint32_t pos, unsigned i,
					      struct vre_desc *d)
{
	(void)i;
	return table_read_once(ctx, pos, d);
}

/* Packed tables: the spec reserves id and NEXT in their entries (the
 * table's length bounds it), so only addr, len and flags are used. */
static inline enum vre_ring_error packed_entry(void *ctx, uint32_t pos, unsigned i,
					       struct vre_desc *d)
{
	struct vre_packed_desc e;
	enum vre_ring_error err = table_read_once(ctx, pos, &e);

	(void)i;
	d->addr = e.addr;
	d->len = e.len;
	d->flags = e.flags;
	d->next = 0;
	return err;
}

/* The table an indirect descriptor d points to. */
static inline __attribute__((always_inline)) enum vre_ring_error
chain_table(struct chain_walk *w, const struct vre_desc *d, bool packed)
{
	struct chain_table t = { .mem = w->mem, .hint = w->hint, .gpa = d->addr };
	struct iovec piece;
	uint32_t entries;
	int n;

	if (d->len == 0)
		return VRE_RE_INDIRECT_LEN_ZERO;
	if (d->len % sizeof(struct vre_desc))
		return VRE_RE_INDIRECT_LEN_UNALIGNED;
	entries = d->len / sizeof(struct vre_desc);
	if (entries > w->qsize)
		return VRE_RE_INDIRECT_TOO_BIG;
	if (d->addr + d->len < d->addr)
		return VRE_RE_DESC_OVERFLOW;
	/* In one piece, the table is read in place; across regions it is
	 * read entry by entry (DPDK and QEMU's backends copy such tables for
	 * both ring types). */
	n = vre_mem_gpa_pieces(w->mem, w->hint, d->addr, d->len, &piece, 1);
	if (n <= 0)
		return VRE_RE_INDIRECT_OUT_OF_MEMORY;
	if (n == 1)
		t.base = piece.iov_base;
	/* The table's own links can loop too: its walk is bounded by its
	 * length, on top of the ring descriptors already counted. */
	w->limit = w->count + entries;
	if (packed) {
		const struct chain_src src = { .read = packed_entry, .n = entries,
					       .packed = true, .table = true };
		enum vre_ring_error e = chain_run(w, &src, &t, 0, NULL);

		/* writable entries after the last readable one, too */
		if (w->stale)
			chain_stale_write(w);
		return e;
	}
	const struct chain_src src = { .read = split_entry, .links = entries, .table = true };

	return chain_run(w, &src, &t, 0, NULL);
}

/* A whole chain from src, into its indirect table if it has one. */
static inline __attribute__((always_inline)) enum vre_ring_error
chain_walk_whole(struct chain_walk *w, const struct chain_src *src, void *ctx, uint32_t pos)
{
	struct vre_desc ind = { .flags = 0 };
	enum vre_ring_error e = chain_run(w, src, ctx, pos, &ind);

	if (e || !(ind.flags & VRE_DESC_F_INDIRECT))
		return e;
	return chain_table(w, &ind, src->packed);
}

/* ---- The result ------------------------------------------------------- */

/* Outcome of a walked chain against the pool. */
enum chain_fit {
	CHAIN_FITS,     /* iovecs in place */
	CHAIN_NOFIT,    /* would fit an empty pool, not what is left: next burst */
	CHAIN_TOO_BIG,  /* would not fit even an empty pool (whole iovecs) */
};

/* Fills c from a walked chain (iov, counts, err); whole is the pool's
 * length (at most UINT16_MAX: nr and nw are 16 bits). A chain too big for
 * any pool is consumed with err -ENOBUFS and no iovecs. */
static inline enum chain_fit chain_fill(const struct chain_walk *w, struct vre_chain *c,
					unsigned whole)
{
	c->iov = w->iov;
	if (w->pieces > whole) {
		c->nr = c->nw = 0;
		c->rlen = c->wlen = 0;
		c->err = -ENOBUFS;
		return CHAIN_TOO_BIG;
	}
	if (w->pieces > w->room)
		return CHAIN_NOFIT;
	c->nr = (uint16_t)w->nr;
	c->nw = (uint16_t)(w->pieces - w->nr);
	c->rlen = w->rlen;
	c->wlen = w->wlen;
	c->err = 0;
	return CHAIN_FITS;
}

#endif
