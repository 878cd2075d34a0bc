/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the ring, inflight and net fuzz harnesses share: a reader over the
 * input bytes, guest memory made of one or two regions fenced by
 * inaccessible pages, and the checks every returned iovec must pass.
 *
 * Guest memory: each region ends exactly at a PROT_NONE guard page; the
 * bytes of its first page that lie before the region (when its size is not
 * a page multiple) are poisoned under ASan and filled with a canary
 * otherwise, checked when the memory is released. So a read or write one
 * byte outside any region faults (or is reported) in every build.
 */
#ifndef VRE_FUZZ_COMMON_H
#define VRE_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vre_mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts with a message: an oracle failed (libFuzzer keeps the input). */
#define FZ_CHECK(cond, ...)                                                    \
	do {                                                                   \
		if (!(cond))                                                   \
			fz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);       \
	} while (0)
void fz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 4, 5)));

/* Input bytes, read little-endian; zeros once they run out. */
struct fin {
	const uint8_t *p;
	size_t n;
};
uint8_t fin8(struct fin *f);
uint16_t fin16(struct fin *f);
uint32_t fin32(struct fin *f);
uint64_t fin64(struct fin *f);
/* Takes up to len bytes as a sub-reader. */
struct fin fin_sub(struct fin *f, size_t len);

#define FZ_PAGE 4096u
#define FZ_MAX_PAGES 16u

struct fz_region {
	uint8_t *hva;
	uint64_t size;
	uint64_t gpa;
	uint8_t *page;   /* first page of the region's mapping */
	size_t slack;    /* bytes of that page before hva */
};

struct fz_mem {
	uint8_t *map;
	size_t map_len;
	unsigned n;
	struct fz_region r[2];
	struct vre_mem_map mm;
};

/*
 * Reads a memory layout from f (pages and trim per region, GPAs, a hole
 * between them) and maps it zero-filled. Returns 0, or -1 when the input
 * asks for a layout the map refuses (the caller skips the input).
 */
int fz_mem_create(struct fz_mem *m, struct fin *f, bool allow_two);
/* Checks the canaries and unmaps. */
void fz_mem_destroy(struct fz_mem *m);
/* Copies the image bytes of f into the regions, in order. */
void fz_mem_fill(struct fz_mem *m, struct fin *f);
/* A GPA chosen by the input: inside a region, just past one, in the hole,
 * or raw. */
uint64_t fz_pick_gpa(const struct fz_mem *m, struct fin *f);
/* Host pointer for [off, off + len) of region ri aligned to align, or NULL
 * when it does not fit. */
void *fz_place(const struct fz_mem *m, unsigned ri, uint32_t off, uint64_t len,
	       unsigned align);
/* Whether [p, p + len) lies inside one region (len > 0). */
bool fz_in_region(const struct fz_mem *m, const void *p, size_t len);
/* Checks every iovec lies in a region and the lengths add up to total;
 * reads each byte, and fills writable ones. */
void fz_check_iov(const struct fz_mem *m, const struct iovec *iov, unsigned n,
		  uint64_t total, bool write);

/* Guarded heap block (inflight regions): ends at a guard page. */
void *fz_guarded_alloc(size_t len, void **base, size_t *map_len);
void fz_guarded_free(void *base, size_t map_len);

#endif
