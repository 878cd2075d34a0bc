/* SPDX-License-Identifier: BSD-3-Clause */
#include <dirent.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "fuzz_common.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FZ_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define FZ_ASAN 1
#endif
#ifdef FZ_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) do { (void)(p); (void)(n); } while (0)
#define UNPOISON(p, n) do { (void)(p); (void)(n); } while (0)
#endif

#define CANARY 0xc3

#ifdef VRE_FUZZ_SMOKE
/* The input being replayed, saved when an oracle fails. */
static const uint8_t *cur_input;
static size_t cur_len;

static void save_input(void)
{
	FILE *f;

	if (!cur_input || !(f = fopen("fuzz-smoke-failure.bin", "wb")))
		return;
	fwrite(cur_input, 1, cur_len, f);
	fclose(f);
	fprintf(stderr, "input saved to fuzz-smoke-failure.bin (replay: prog FILE)\n");
}

/* A fault (a guard page hit) keeps the input too, then dies as it would. */
static void on_fault(int sig)
{
	save_input();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void run_one(const uint8_t *p, size_t n)
{
	cur_input = p;
	cur_len = n;
	LLVMFuzzerTestOneInput(p, n);
	cur_input = NULL;
}
#else
static void save_input(void) {}
#endif

void fz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fuzz oracle failed at %s:%d: %s: ", file, line, cond);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	save_input();
	abort();
}

uint8_t fin8(struct fin *f)
{
	if (!f->n)
		return 0;
	f->n--;
	return *f->p++;
}

uint16_t fin16(struct fin *f)
{
	uint16_t lo = fin8(f);

	return (uint16_t)(lo | fin8(f) << 8);
}

uint32_t fin32(struct fin *f)
{
	uint32_t lo = fin16(f);

	return lo | (uint32_t)fin16(f) << 16;
}

uint64_t fin64(struct fin *f)
{
	uint64_t lo = fin32(f);

	return lo | (uint64_t)fin32(f) << 32;
}

struct fin fin_sub(struct fin *f, size_t len)
{
	struct fin s = { f->p, len < f->n ? len : f->n };

	f->p += s.n;
	f->n -= s.n;
	return s;
}

/* Layout: [guard][pages of region 0][guard][pages of region 1][guard]. */
int fz_mem_create(struct fz_mem *m, struct fin *f, bool allow_two)
{
	uint8_t flags = fin8(f);
	unsigned pages[2], n = allow_two && (flags & 1) ? 2 : 1;
	uint64_t gpa = (uint64_t)fin32(f) << 12, hole = fin16(f);
	size_t off;

	memset(m, 0, sizeof(*m));
	vre_mem_map_init(&m->mm);
	if (flags & 2)
		gpa |= 0xffffffff00000000ull; /* near the top: wrap-around cases */
	m->n = n;
	m->map_len = FZ_PAGE;
	for (unsigned i = 0; i < n; i++) {
		uint16_t trim = fin16(f) % FZ_PAGE;

		pages[i] = fin8(f) % FZ_MAX_PAGES + 1;
		m->r[i].size = (uint64_t)pages[i] * FZ_PAGE - trim;
		m->r[i].slack = trim;
		m->map_len += (size_t)pages[i] * FZ_PAGE + FZ_PAGE;
	}
	m->map = mmap(NULL, m->map_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m->map == MAP_FAILED)
		abort();
	off = FZ_PAGE;
	for (unsigned i = 0; i < n; i++) {
		struct fz_region *r = &m->r[i];
		struct vre_mem_region mr = { 0 };
		size_t len = (size_t)pages[i] * FZ_PAGE;

		r->page = m->map + off;
		if (mprotect(r->page, len, PROT_READ | PROT_WRITE))
			abort();
		r->hva = r->page + r->slack;
		memset(r->page, CANARY, r->slack);
		POISON(r->page, r->slack);
		r->gpa = gpa;
		mr.gpa = gpa;
		mr.size = r->size;
		mr.uva = 0x7f0000000000ull + off;
		mr.hva = r->hva;
		mr.fd = -1;
		if (vre_mem_map_add(&m->mm, &mr)) {
			m->n = i;
			fz_mem_destroy(m);
			return -1;
		}
		gpa += r->size + hole;
		off += len + FZ_PAGE;
	}
	return 0;
}

void fz_mem_destroy(struct fz_mem *m)
{
	for (unsigned i = 0; i < 2; i++) {
		struct fz_region *r = &m->r[i];

		if (!r->page)
			continue;
		UNPOISON(r->page, r->slack);
		if (i < m->n)
			for (size_t k = 0; k < r->slack; k++)
				FZ_CHECK(r->page[k] == CANARY,
					 "byte %zu before region %u written", r->slack - k, i);
	}
	if (m->map && munmap(m->map, m->map_len))
		abort();
	m->map = NULL;
}

void fz_mem_fill(struct fz_mem *m, struct fin *f)
{
	for (unsigned i = 0; i < m->n && f->n; i++) {
		size_t len = f->n < m->r[i].size ? f->n : (size_t)m->r[i].size;

		memcpy(m->r[i].hva, f->p, len);
		f->p += len;
		f->n -= len;
	}
}

uint64_t fz_pick_gpa(const struct fz_mem *m, struct fin *f)
{
	uint8_t sel = fin8(f);
	const struct fz_region *r = &m->r[(sel >> 4) % m->n];
	uint16_t off = fin16(f);

	switch (sel & 3) {
	case 0:
		return r->gpa + off % r->size;       /* inside */
	case 1:
		return r->gpa + r->size - 1 - off % r->size; /* counted from the end */
	case 2:
		return r->gpa + r->size + (off & 0xff) - 0x80; /* straddles the end */
	default:
		return fin64(f);                     /* anything */
	}
}

void *fz_place(const struct fz_mem *m, unsigned ri, uint32_t off, uint64_t len,
	       unsigned align)
{
	const struct fz_region *r = &m->r[ri % m->n];
	uintptr_t p = (uintptr_t)r->hva + off % r->size;

	p = (p + align - 1) / align * align;
	if (p + len > (uintptr_t)r->hva + r->size)
		return NULL;
	return (void *)p;
}

bool fz_in_region(const struct fz_mem *m, const void *p, size_t len)
{
	uintptr_t a = (uintptr_t)p;

	for (unsigned i = 0; i < m->n; i++) {
		uintptr_t s = (uintptr_t)m->r[i].hva;

		if (len && a >= s && a - s <= m->r[i].size && len <= m->r[i].size - (a - s))
			return true;
	}
	return false;
}

void fz_check_iov(const struct fz_mem *m, const struct iovec *iov, unsigned n,
		  uint64_t total, bool write)
{
	uint64_t sum = 0;
	volatile uint8_t acc = 0;

	for (unsigned i = 0; i < n; i++) {
		const uint8_t *b = iov[i].iov_base;

		FZ_CHECK(fz_in_region(m, b, iov[i].iov_len), "iovec %u (%p+%zu) outside guest memory",
			 i, iov[i].iov_base, iov[i].iov_len);
		sum += iov[i].iov_len;
		/* Every byte handed out must be accessible: reading it trips
		 * a guard page or ASan when it is not. */
		for (size_t k = 0; k < iov[i].iov_len; k += 64)
			acc ^= b[k];
		acc ^= b[iov[i].iov_len - 1];
		if (write)
			memset(iov[i].iov_base, 0x5a, iov[i].iov_len);
	}
	(void)acc;
	FZ_CHECK(sum == total, "iovecs add up to %llu, chain says %llu",
		 (unsigned long long)sum, (unsigned long long)total);
}

void *fz_guarded_alloc(size_t len, void **base, size_t *map_len)
{
	size_t pages = (len + FZ_PAGE - 1) / FZ_PAGE;
	uint8_t *p;

	*map_len = (pages + 2) * FZ_PAGE;
	p = mmap(NULL, *map_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || mprotect(p + FZ_PAGE, pages * FZ_PAGE, PROT_READ | PROT_WRITE))
		abort();
	*base = p;
	/* The block ends at the trailing guard page; alignment 64 is kept
	 * when len is a multiple of 64 (inflight regions are). */
	return p + FZ_PAGE + pages * FZ_PAGE - len;
}

void fz_guarded_free(void *base, size_t map_len)
{
	if (munmap(base, map_len))
		abort();
}

#ifdef VRE_FUZZ_SMOKE
/*
 * Replay without libFuzzer: every file of the corpus directory (or one
 * file), then deterministic pseudo-random mutations of those seeds (and a
 * few purely random inputs). Usage: prog [corpus-dir-or-file] [iterations]
 */
#define MAX_SEEDS 256
#define FZ_MAX_INPUT 8192

static uint64_t rng = 0x243f6a8885a308d3ull;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 11);
}

static size_t read_file(const char *path, uint8_t *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f) {
		perror(path);
		exit(2);
	}
	n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void mutate(uint8_t *buf, size_t *len)
{
	static const uint16_t interesting[] = { 0, 1, 0x7fff, 0x8000, 0xffff, 16, 32, 4096 };

	for (unsigned m = 1 + rnd() % 6; m && *len; m--) {
		size_t at = rnd() % *len;

		switch (rnd() % 5) {
		case 0:
			buf[at] ^= (uint8_t)(1u << (rnd() % 8));
			break;
		case 1:
			buf[at] = (uint8_t)rnd();
			break;
		case 2:
			if (at + 1 < *len) {
				uint16_t v = interesting[rnd() % 8];

				memcpy(buf + at, &v, 2);
			}
			break;
		case 3:
			*len = at + 1; /* cut */
			break;
		default:
			if (*len < FZ_MAX_INPUT) /* grow with random bytes */
				buf[(*len)++] = (uint8_t)rnd();
			break;
		}
	}
}

int main(int argc, char **argv)
{
	static uint8_t seeds[MAX_SEEDS][FZ_MAX_INPUT];
	static size_t seed_len[MAX_SEEDS];
	static uint8_t buf[FZ_MAX_INPUT];
	unsigned nseeds = 0, iters = argc > 2 ? (unsigned)atoi(argv[2]) : 2000;
	struct stat st;

	signal(SIGSEGV, on_fault);
	signal(SIGBUS, on_fault);
	if (argc > 1 && stat(argv[1], &st) == 0 && S_ISREG(st.st_mode)) {
		size_t n = read_file(argv[1], buf, sizeof(buf));

		run_one(buf, n);
		printf("replayed %s\n", argv[1]);
		return 0;
	}
	if (argc > 1) {
		DIR *d = opendir(argv[1]);
		struct dirent *e;
		char *names[MAX_SEEDS];

		if (!d) {
			perror(argv[1]);
			return 2;
		}
		while ((e = readdir(d)) && nseeds < MAX_SEEDS)
			if (e->d_name[0] != '.')
				names[nseeds++] = strdup(e->d_name);
		closedir(d);
		qsort(names, nseeds, sizeof(names[0]), name_cmp);
		for (unsigned i = 0; i < nseeds; i++) {
			char path[4096];

			snprintf(path, sizeof(path), "%s/%s", argv[1], names[i]);
			seed_len[i] = read_file(path, seeds[i], FZ_MAX_INPUT);
			run_one(seeds[i], seed_len[i]);
			free(names[i]);
		}
	}
	for (unsigned i = 0; i < iters; i++) {
		size_t len;

		if (!nseeds || rnd() % 8 == 0) {
			len = rnd() % 512;
			for (size_t k = 0; k < len; k++)
				buf[k] = (uint8_t)rnd();
		} else {
			unsigned s = rnd() % nseeds;

			len = seed_len[s];
			memcpy(buf, seeds[s], len);
			mutate(buf, &len);
		}
		run_one(buf, len);
	}
	printf("fuzz smoke: %u seeds, %u generated inputs\n", nseeds, iters);
	return 0;
}
#endif
