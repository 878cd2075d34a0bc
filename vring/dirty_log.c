/* SPDX-License-Identifier: BSD-3-Clause */
/* Dirty-page bitmap marking; the rules are in vre_dirty_log.h. */
#include "vre_dirty_log.h"

static inline void or_word(const struct vre_dirty_log *log, uint64_t word, uint64_t mask)
{
	/* Relaxed: the frontend only needs the bit eventually, and before
	 * its final read the queue was stopped (a full handshake). DPDK's
	 * vhost_log_page uses the same relaxed OR. */
	__atomic_fetch_or(&log->bits[word], mask, __ATOMIC_RELAXED);
}

/* Pages [first, last] as (word, mask) pieces, clipped to the log; calls
 * emit for each. */
static inline void for_words(const struct vre_dirty_log *log, uint64_t gpa, uint64_t len,
			     void (*emit)(void *ctx, uint64_t word, uint64_t mask), void *ctx)
{
	uint64_t first, last;

	if (!len || !log->npages)
		return;
	first = gpa >> VRE_LOG_PAGE_SHIFT;
	/* the last byte, clipped at 2^64 - 1 when gpa + len wraps */
	last = (gpa + len - 1 < gpa ? UINT64_MAX : gpa + len - 1) >> VRE_LOG_PAGE_SHIFT;
	if (first >= log->npages)
		return;
	if (last >= log->npages)
		last = log->npages - 1;
	while (first <= last) {
		uint64_t word = first / 64, lo = first % 64;
		uint64_t hi = (last / 64 == word) ? last % 64 : 63;
		uint64_t mask = (hi == 63 ? ~0ull : ((1ull << (hi + 1)) - 1)) & ~((1ull << lo) - 1);

		emit(ctx, word, mask);
		first = word * 64 + hi + 1;
		if (first == 0) /* wrapped past the last page */
			break;
	}
}

static void emit_direct(void *ctx, uint64_t word, uint64_t mask)
{
	or_word(ctx, word, mask);
}

void vre_dirty_log_gpa(const struct vre_dirty_log *log, uint64_t gpa, uint64_t len)
{
	for_words(log, gpa, len, emit_direct, (void *)log);
}

void vre_log_batch_flush(struct vre_log_batch *b)
{
	if (b->mask)
		or_word(b->log, b->word, b->mask);
	b->mask = 0;
}

static void emit_batch(void *ctx, uint64_t word, uint64_t mask)
{
	struct vre_log_batch *b = ctx;

	if (b->mask && b->word != word)
		vre_log_batch_flush(b);
	b->word = word;
	b->mask |= mask;
}

static inline __attribute__((always_inline)) void batch_gpa(struct vre_log_batch *b,
							     uint64_t gpa, uint64_t len)
{
	uint64_t first = gpa >> VRE_LOG_PAGE_SHIFT, last = (gpa + len - 1) >> VRE_LOG_PAGE_SHIFT;

	/* the common range: a buffer on one or two pages of one word, inside
	 * the log (first <= last rules out len 0 and a wrap) */
	if (len && first <= last && last < b->log->npages && first / 64 == last / 64) {
		uint64_t word = first / 64;
		uint64_t mask = (~0ull >> (63 - last % 64)) & (~0ull << (first % 64));

		if (b->mask && b->word != word)
			vre_log_batch_flush(b);
		b->word = word;
		b->mask |= mask;
		return;
	}
	for_words(b->log, gpa, len, emit_batch, b);
}

void vre_log_batch_gpa(struct vre_log_batch *b, uint64_t gpa, uint64_t len)
{
	batch_gpa(b, gpa, len);
}

int vre_mem_hva_to_gpa(const struct vre_mem_map *m, uint32_t *hint, const void *p,
		       uint64_t len, uint64_t *gpa)
{
	uintptr_t a = (uintptr_t)p;

	if (*hint < m->nregions) {
		const struct vre_mem_region *r = &m->regions[*hint];

		if (vre_mem_range_in((uintptr_t)r->hva, r->size, a, len)) {
			*gpa = r->gpa + (a - (uintptr_t)r->hva);
			return 0;
		}
	}

	for (uint32_t k = 0; k <= m->nregions; k++) {
		/* the hint first, then every region in order */
		uint32_t i = k == 0 ? *hint : k - 1;
		const struct vre_mem_region *r;

		if (i >= m->nregions)
			continue;
		r = &m->regions[i];
		if (vre_mem_range_in((uintptr_t)r->hva, r->size, a, len)) {
			*hint = i;
			*gpa = r->gpa + (a - (uintptr_t)r->hva);
			return 0;
		}
	}
	return -EFAULT;
}

int vre_log_batch_iov(struct vre_log_batch *b, const struct vre_mem_map *m, uint32_t *hint,
		      const struct iovec *iov, unsigned n, uint64_t len)
{
	const struct vre_mem_region *r = *hint < m->nregions ? &m->regions[*hint] : NULL;
	int ret = 0;

	for (unsigned i = 0; i < n && len; i++) {
		uint64_t chunk = iov[i].iov_len < len ? iov[i].iov_len : len;
		uintptr_t a = (uintptr_t)iov[i].iov_base;
		uint64_t gpa;

		len -= chunk;
		if (!chunk)
			continue;
		/* the region of the last segment first: a burst's buffers
		 * are nearly always in one region */
		if (r && vre_mem_range_in((uintptr_t)r->hva, r->size, a, chunk)) {
			gpa = r->gpa + (a - (uintptr_t)r->hva);
		} else if (vre_mem_hva_to_gpa(m, hint, iov[i].iov_base, chunk, &gpa) == 0) {
			r = &m->regions[*hint];
		} else {
			ret = -EFAULT;
			continue;
		}
		batch_gpa(b, gpa, chunk);
	}
	return ret;
}
