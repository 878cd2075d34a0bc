/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Dirty-page logging for live migration (vhost-user SET_LOG_BASE and
 * VHOST_F_LOG_ALL).
 *
 * The frontend shares a bitmap, one bit per 4 KiB page of guest physical
 * memory: bit (gpa / 4096) % 64 of the 64-bit word (gpa / 4096) / 64, the
 * layout QEMU reads (hw/virtio/vhost.c: vhost_log_chunk_t words, one bit per
 * VHOST_LOG_PAGE). While migrating, every byte the device writes into guest
 * memory must have its page's bit set, after the write: QEMU reads and
 * clears the words concurrently (atomic exchange in vhost_dev_sync_region)
 * and copies the pages whose bits it saw, so a bit set before the write
 * could be cleared and copied before the data lands. Hence the atomic OR,
 * never a plain store, and marks always after the bytes they cover.
 *
 * Bounds: a page at or beyond npages is never written (the log is the
 * frontend's file; its size is what we were told and checked). The owner
 * (control) refuses a log too small for the memory table, so in practice
 * every page of guest memory is covered; the check here keeps a memory
 * table that grew afterwards from writing past the end.
 *
 * Batching, as DPDK's vhost_log_cache_* do: a writer that marks many small
 * ranges (RX buffers of one burst) keeps the last word it touched in a
 * vre_log_batch and ORs it into the shared bitmap only when it moves to
 * another word or flushes, so consecutive buffers on one page cost one
 * atomic OR instead of one each. Flush before the burst's writes can be
 * seen as finished by anyone who stops the queue (in practice: before the
 * worker leaves the queue; control's quiesce then orders it before the
 * frontend's final read).
 */
#ifndef VRE_DIRTY_LOG_H
#define VRE_DIRTY_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vre_mem.h"

#define VRE_LOG_PAGE_SHIFT 12
#define VRE_LOG_PAGE (1ull << VRE_LOG_PAGE_SHIFT)

struct vre_dirty_log {
	uint64_t *bits;  /* the frontend's bitmap, mapped here */
	uint64_t npages; /* bits it holds (its size in bytes * 8) */
};

/* The pages of guest memory a log of len bytes covers. */
static inline uint64_t vre_dirty_log_pages(uint64_t len)
{
	return len > UINT64_MAX / 8 ? UINT64_MAX : len * 8;
}

/* Marks every page of [gpa, gpa + len), clipped to the log's size; a range
 * that wraps around 2^64 is clipped at the top. len 0 marks nothing. One
 * atomic OR per 64-page word. */
void vre_dirty_log_gpa(const struct vre_dirty_log *log, uint64_t gpa, uint64_t len);

/* Accumulates marks of nearby pages; see the header comment. */
struct vre_log_batch {
	const struct vre_dirty_log *log;
	uint64_t word; /* index of the pending word */
	uint64_t mask; /* its bits, 0 when nothing is pending */
};

static inline void vre_log_batch_init(struct vre_log_batch *b, const struct vre_dirty_log *log)
{
	b->log = log;
	b->word = 0;
	b->mask = 0;
}

/* ORs the pending word into the bitmap. */
void vre_log_batch_flush(struct vre_log_batch *b);
/* Marks [gpa, gpa + len) through the batch. */
void vre_log_batch_gpa(struct vre_log_batch *b, uint64_t gpa, uint64_t len);
/*
 * Marks the first len bytes of iov[0..n) (host pointers into the regions of
 * m, as a chain's iovecs are), translating each back to its GPA; *hint is
 * the caller's region hint. A segment that is not inside a region of m (it
 * cannot be, for iovecs vring handed out from m) marks nothing and returns
 * -EFAULT after marking the others.
 */
int vre_log_batch_iov(struct vre_log_batch *b, const struct vre_mem_map *m, uint32_t *hint,
		      const struct iovec *iov, unsigned n, uint64_t len);

/* The GPA of host pointer p inside a region of m for len bytes (the range
 * within one region), or -EFAULT. Cold-ish: a scan with the hint first. */
int vre_mem_hva_to_gpa(const struct vre_mem_map *m, uint32_t *hint, const void *p,
		       uint64_t len, uint64_t *gpa);

#endif
