/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The block job of the test guest (built static, run as /blk-job by the
 * guest's /init with vre.job=blk), and its host-side checker.
 *
 * Guest: WRITERS processes write 4 KiB blocks of /dev/vda with O_DIRECT,
 * writer k owning blocks k, k + WRITERS, ..., in whole rounds until
 * vre.secs seconds have passed; every block carries (magic, block, round)
 * and bytes derived from them. Several writers keep several requests in
 * flight, so the backend completes them out of order. Then readers check
 * every block for vre.vsecs seconds (at least one pass). Then it flushes,
 * zeroes the first ZERO_BLOCKS blocks with BLKZEROOUT (WRITE_ZEROES) and
 * discards the next ZERO_BLOCKS with BLKDISCARD (DISCARD, which the backend
 * turns into holes that read back as zeroes), and reads them back.
 * Console markers:
 *   VRE_BLK_SERIAL <id>, VRE_BLK_WRITING, VRE_BLK_ROUNDS r0 r1 ...,
 *   VRE_BLK_VERIFYING, VRE_BLK_VERIFY_OK passes=N blocks=M, VRE_BLK_DWZ_OK,
 *   or VRE_BLK_FAIL <why>.
 *
 * Host: blk-job --check IMG r0 r1 ... checks the image the same way
 * (the first 2 * ZERO_BLOCKS blocks must be zero).
 */
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096
#define NBLOCKS 1024
#define WRITERS 8
#define MAGIC 0x5652452d424c4b31ull /* "VRE-BLK1" */
#define MAX_ROUNDS 250
#define ZERO_BLOCKS 64

static void fill(uint64_t *w, unsigned block, unsigned round)
{
	uint64_t x = ((uint64_t)block << 32 | round) ^ 0x9e3779b97f4a7c15ull;

	w[0] = MAGIC;
	w[1] = block;
	w[2] = round;
	for (unsigned i = 3; i < BLOCK / 8; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		w[i] = x;
	}
}

/* 0 when the block holds round's content; else prints why. */
static int check(const uint64_t *got, unsigned block, unsigned round, const char *where)
{
	static uint64_t want[BLOCK / 8];

	fill(want, block, round);
	if (memcmp(got, want, BLOCK) == 0)
		return 0;
	printf("VRE_BLK_FAIL %s block %u: want round %u, found magic %llx block %llu round %llu\n",
	       where, block, round, (unsigned long long)got[0], (unsigned long long)got[1],
	       (unsigned long long)got[2]);
	fflush(stdout);
	return -1;
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static unsigned cmdline_num(const char *key, unsigned def)
{
	char buf[4096], *p;
	FILE *f = fopen("/proc/cmdline", "r");
	size_t n;

	if (!f)
		return def;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strstr(buf, key);
	return p ? (unsigned)strtoul(p + strlen(key), NULL, 10) : def;
}

static void *block_buf(void)
{
	void *b;

	if (posix_memalign(&b, BLOCK, BLOCK))
		exit(1);
	return b;
}

/* Writer k: whole rounds until the deadline; exits with the last round. */
static int writer(int fd, unsigned k, double end)
{
	uint64_t *buf = block_buf();
	unsigned round = 0;

	while (round < MAX_ROUNDS && (round == 0 || now() < end)) {
		round++;
		for (unsigned b = k; b < NBLOCKS; b += WRITERS) {
			ssize_t r;

			fill(buf, b, round);
			r = pwrite(fd, buf, BLOCK, (off_t)b * BLOCK);
			if (r != BLOCK) {
				printf("VRE_BLK_FAIL write block %u round %u: %s\n", b, round,
				       r < 0 ? strerror(errno) : "short write");
				fflush(stdout);
				return 255;
			}
		}
	}
	return (int)round;
}

static int reader(int fd, unsigned k, const unsigned *rounds, double end)
{
	uint64_t *buf = block_buf();
	unsigned passes = 0;

	do {
		for (unsigned b = k; b < NBLOCKS; b += WRITERS) {
			ssize_t r = pread(fd, buf, BLOCK, (off_t)b * BLOCK);

			if (r != BLOCK) {
				printf("VRE_BLK_FAIL read block %u: %s\n", b,
				       r < 0 ? strerror(errno) : "short read");
				fflush(stdout);
				return 255;
			}
			if (check(buf, b, rounds[k], "verify"))
				return 255;
		}
		passes++;
	} while (now() < end && passes < 250);
	return (int)passes;
}

/* Runs fn in WRITERS children; out[k] gets child k's exit status. */
static int run_children(int fd, const unsigned *rounds, double end, bool write,
			unsigned *out)
{
	pid_t pids[WRITERS];
	int failed = 0;

	for (unsigned k = 0; k < WRITERS; k++) {
		pids[k] = fork();
		if (pids[k] < 0)
			return -1;
		if (pids[k] == 0)
			_exit(write ? writer(fd, k, end) : reader(fd, k, rounds, end));
	}
	for (unsigned k = 0; k < WRITERS; k++) {
		int st;

		if (waitpid(pids[k], &st, 0) < 0 || !WIFEXITED(st) ||
		    WEXITSTATUS(st) == 255 || WEXITSTATUS(st) == 0)
			failed = 1;
		else
			out[k] = (unsigned)WEXITSTATUS(st);
	}
	return failed ? -1 : 0;
}

static const unsigned *cur_rounds;

static bool is_zero(const uint64_t *w)
{
	for (unsigned i = 0; i < BLOCK / 8; i++)
		if (w[i])
			return false;
	return true;
}

/* Flush, WRITE_ZEROES and DISCARD through the guest's block layer. */
static int zero_and_discard(int fd)
{
	uint64_t zr[2] = { 0, (uint64_t)ZERO_BLOCKS * BLOCK };
	uint64_t dr[2] = { (uint64_t)ZERO_BLOCKS * BLOCK, (uint64_t)ZERO_BLOCKS * BLOCK };
	uint64_t *buf = block_buf();

	if (fsync(fd)) {
		printf("VRE_BLK_FAIL flush: %s\n", strerror(errno));
		return -1;
	}
	if (ioctl(fd, BLKZEROOUT, zr)) {
		printf("VRE_BLK_FAIL BLKZEROOUT: %s\n", strerror(errno));
		return -1;
	}
	if (ioctl(fd, BLKDISCARD, dr)) {
		printf("VRE_BLK_FAIL BLKDISCARD: %s\n", strerror(errno));
		return -1;
	}
	for (unsigned b = 0; b < NBLOCKS; b++) {
		if (pread(fd, buf, BLOCK, (off_t)b * BLOCK) != BLOCK) {
			printf("VRE_BLK_FAIL read back block %u\n", b);
			return -1;
		}
		if (b < 2 * ZERO_BLOCKS ? !is_zero(buf) : check(buf, b, cur_rounds[b % WRITERS], "untouched") < 0) {
			if (b < 2 * ZERO_BLOCKS)
				printf("VRE_BLK_FAIL block %u not zero after %s\n", b,
				       b < ZERO_BLOCKS ? "BLKZEROOUT" : "BLKDISCARD");
			return -1;
		}
	}
	return 0;
}

static void print_serial(void)
{
	char s[80] = "";
	FILE *f = fopen("/sys/block/vda/serial", "r");

	if (f) {
		if (!fgets(s, sizeof(s), f))
			s[0] = 0;
		fclose(f);
	}
	s[strcspn(s, "\n")] = 0;
	printf("VRE_BLK_SERIAL %s\n", s);
	/* The negotiated virtio features, one character per bit. */
	f = fopen("/sys/block/vda/device/features", "r");
	s[0] = 0;
	if (f) {
		if (!fgets(s, sizeof(s), f))
			s[0] = 0;
		fclose(f);
	}
	s[strcspn(s, "\n")] = 0;
	printf("VRE_BLK_FEATURES %s\n", s);
}

static int guest(void)
{
	unsigned secs = cmdline_num("vre.secs=", 20), vsecs = cmdline_num("vre.vsecs=", 6);
	unsigned rounds[WRITERS], passes[WRITERS], total = 0;
	int fd = -1;

	for (int i = 0; i < 100 && fd < 0; i++) {
		fd = open("/dev/vda", O_RDWR | O_DIRECT);
		if (fd < 0)
			usleep(100000);
	}
	if (fd < 0) {
		printf("VRE_BLK_FAIL open /dev/vda: %s\n", strerror(errno));
		return 1;
	}
	print_serial();
	printf("VRE_BLK_WRITING secs=%u blocks=%u writers=%u\n", secs, NBLOCKS, WRITERS);
	fflush(stdout);
	if (run_children(fd, NULL, now() + secs, true, rounds)) {
		printf("VRE_BLK_FAIL writers\n");
		return 1;
	}
	printf("VRE_BLK_ROUNDS");
	for (unsigned k = 0; k < WRITERS; k++)
		printf(" %u", rounds[k]);
	printf("\nVRE_BLK_VERIFYING\n");
	fflush(stdout);
	if (run_children(fd, rounds, now() + vsecs, false, passes)) {
		printf("VRE_BLK_FAIL readers\n");
		return 1;
	}
	for (unsigned k = 0; k < WRITERS; k++)
		total += passes[k];
	printf("VRE_BLK_VERIFY_OK passes=%u blocks=%u\n", total, NBLOCKS);
	fflush(stdout);
	cur_rounds = rounds;
	if (zero_and_discard(fd))
		return 1;
	printf("VRE_BLK_DWZ_OK blocks=%u\n", 2 * ZERO_BLOCKS);
	fflush(stdout);
	return 0;
}

static int host_check(int argc, char **argv)
{
	static uint64_t buf[BLOCK / 8];
	unsigned rounds[WRITERS];
	int fd;

	if (argc != 3 + WRITERS) {
		fprintf(stderr, "usage: blk-job --check IMG r0 .. r%d\n", WRITERS - 1);
		return 2;
	}
	for (unsigned k = 0; k < WRITERS; k++)
		rounds[k] = (unsigned)strtoul(argv[3 + k], NULL, 10);
	fd = open(argv[2], O_RDONLY);
	if (fd < 0) {
		perror(argv[2]);
		return 2;
	}
	for (unsigned b = 0; b < NBLOCKS; b++) {
		if (pread(fd, buf, BLOCK, (off_t)b * BLOCK) != BLOCK) {
			printf("VRE_BLK_FAIL host read block %u\n", b);
			return 1;
		}
		if (b < 2 * ZERO_BLOCKS) {
			if (!is_zero(buf)) {
				printf("VRE_BLK_FAIL host block %u is not zero\n", b);
				return 1;
			}
		} else if (check(buf, b, rounds[b % WRITERS], "host")) {
			return 1;
		}
	}
	printf("VRE_BLK_HOST_OK blocks=%u\n", NBLOCKS);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--check") == 0)
		return host_check(argc, argv);
	return guest();
}
