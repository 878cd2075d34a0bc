/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * soak-memchurn PATH SECONDS [CHANGES [PAUSE_MS]]: a vhost-user frontend (tests/support/vfront)
 * that keeps changing a net port's memory table, for scripts/soak.
 *
 * Each connection: SET_OWNER, features (VERSION_1, PROTOCOL_FEATURES),
 * protocol features REPLY_ACK | CONFIGURE_MEM_SLOTS, a one-region table over
 * a fresh memfd, both rings of the pair set up in it and enabled (so the
 * backend's queues start and sit on a worker), then CHANGES rounds (default
 * 20) of ADD_MEM_REG + REM_MEM_REG of a second region and a SET_MEM_TABLE
 * with the ring region plus a fresh second region: each one makes the
 * backend quiesce the running queues, remap and restart them. Then the
 * connection closes (the backend drains the device) and, PAUSE_MS later
 * (default 0), a new one starts, until SECONDS have passed.
 *
 * Every request asks for a REPLY_ACK; a nack, a lost connection or a
 * timeout is a failure. Prints one summary line and exits 0 only when
 * nothing failed.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "vfront.h"

enum {
	SET_FEATURES = 2, SET_OWNER = 3, SET_MEM_TABLE = 5, SET_VRING_NUM = 8,
	SET_VRING_ADDR = 9, SET_VRING_BASE = 10, SET_VRING_KICK = 12, SET_VRING_CALL = 13,
	GET_PROTOCOL_FEATURES = 15, SET_PROTOCOL_FEATURES = 16, SET_VRING_ENABLE = 18,
	ADD_MEM_REG = 37, REM_MEM_REG = 38, GET_FEATURES = 1,
};

#define F_PROTOCOL (1ull << 30)
#define F_VERSION_1 (1ull << 32)
#define PF_REPLY_ACK (1ull << 3)
#define PF_MEM_SLOTS (1ull << 15)

#define MEM_SIZE (1u << 20)
#define MEM_GPA 0x100000ull
#define MEM_UVA 0x7f1200000000ull
#define EXTRA_SIZE (64u << 10)
#define EXTRA_GPA 0x40000000ull
#define EXTRA_UVA 0x7f1300000000ull
#define RING_NUM 256u

struct region { uint64_t gpa, size, uva, offset; };
struct one_region { uint64_t padding; struct region r; };
struct table { uint32_t n, padding; struct region r[8]; };
struct addr_msg { uint32_t index, flags; uint64_t desc, used, avail, log; };
struct state_msg { uint32_t index, num; };

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int new_memfd(size_t size)
{
	int fd = memfd_create("soak-guest", MFD_CLOEXEC);

	if (fd >= 0 && ftruncate(fd, (off_t)size) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A request that must be acked with 0. */
static int ack(int s, uint32_t req, const void *p, uint32_t size, const int *fds, unsigned n,
	       const char *what)
{
	int r = vfront_request_ack(s, req, p, size, fds, n);

	if (r != 0)
		fprintf(stderr, "soak-memchurn: %s: %s\n", what, r < 0 ? strerror(-r) : "nack");
	return r == 0 ? 0 : -1;
}

static int setup(int s, int mem_fd)
{
	uint64_t f, pf;
	struct table t = { .n = 1, .r[0] = { MEM_GPA, MEM_SIZE, MEM_UVA, 0 } };

	if (vfront_send(s, SET_OWNER, 0, NULL, 0, NULL, 0) < 0 ||
	    vfront_get_u64(s, GET_FEATURES, &f) < 0 || !(f & F_PROTOCOL) ||
	    vfront_set_u64(s, SET_FEATURES, F_VERSION_1 | F_PROTOCOL, false) < 0 ||
	    vfront_get_u64(s, GET_PROTOCOL_FEATURES, &pf) < 0 ||
	    (pf & (PF_REPLY_ACK | PF_MEM_SLOTS)) != (PF_REPLY_ACK | PF_MEM_SLOTS) ||
	    vfront_set_u64(s, SET_PROTOCOL_FEATURES, PF_REPLY_ACK | PF_MEM_SLOTS, false) < 0) {
		fprintf(stderr, "soak-memchurn: negotiation failed\n");
		return -1;
	}
	if (ack(s, SET_MEM_TABLE, &t, 8 + sizeof(t.r[0]), &mem_fd, 1, "first SET_MEM_TABLE"))
		return -1;
	for (uint32_t q = 0; q < 2; q++) {
		/* each ring in its own 64 KiB of the region */
		uint64_t base = MEM_UVA + 0x10000u * (q + 1);
		struct state_msg num = { q, RING_NUM }, vbase = { q, 0 }, en = { q, 1 };
		struct addr_msg a = { q, 0, base, base + 0x2000, base + 0x1000, 0 };
		int kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		int call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		uint64_t qv = q;
		int r = kick < 0 || call < 0 ? -1 : 0;

		r = r ?: ack(s, SET_VRING_NUM, &num, sizeof(num), NULL, 0, "SET_VRING_NUM");
		r = r ?: ack(s, SET_VRING_BASE, &vbase, sizeof(vbase), NULL, 0, "SET_VRING_BASE");
		r = r ?: ack(s, SET_VRING_ADDR, &a, sizeof(a), NULL, 0, "SET_VRING_ADDR");
		r = r ?: ack(s, SET_VRING_CALL, &qv, 8, &call, 1, "SET_VRING_CALL");
		r = r ?: ack(s, SET_VRING_KICK, &qv, 8, &kick, 1, "SET_VRING_KICK");
		r = r ?: ack(s, SET_VRING_ENABLE, &en, sizeof(en), NULL, 0, "SET_VRING_ENABLE");
		/* the backend has its own copies now */
		if (kick >= 0)
			close(kick);
		if (call >= 0)
			close(call);
		if (r)
			return -1;
	}
	return 0;
}

/* One round: add and remove a region, then a new table that keeps the
 * ring region and brings a fresh second one. */
static int change(int s, int mem_fd)
{
	struct one_region add = { 0, { EXTRA_GPA, EXTRA_SIZE, EXTRA_UVA, 0 } };
	struct table t = { .n = 2, .r = { { MEM_GPA, MEM_SIZE, MEM_UVA, 0 },
					 { EXTRA_GPA, EXTRA_SIZE, EXTRA_UVA, 0 } } };
	int extra = new_memfd(EXTRA_SIZE), fds[2] = { mem_fd, extra };
	int r;

	if (extra < 0)
		return -1;
	r = ack(s, ADD_MEM_REG, &add, sizeof(add), &extra, 1, "ADD_MEM_REG");
	r = r ?: ack(s, REM_MEM_REG, &add, sizeof(add), NULL, 0, "REM_MEM_REG");
	r = r ?: ack(s, SET_MEM_TABLE, &t, 8 + 2 * sizeof(t.r[0]), fds, 2, "SET_MEM_TABLE");
	close(extra);
	return r;
}

int main(int argc, char **argv)
{
	unsigned long conns = 0, changes = 0, fails = 0, per_conn;
	int pause_ms;
	int64_t end;

	if (argc < 3 || argc > 5) {
		fprintf(stderr, "usage: soak-memchurn PATH SECONDS [CHANGES [PAUSE_MS]]\n");
		return 2;
	}
	end = now_ms() + atol(argv[2]) * 1000;
	per_conn = argc >= 4 ? strtoul(argv[3], NULL, 10) : 20;
	pause_ms = argc == 5 ? atoi(argv[4]) : 0;
	while (now_ms() < end) {
		int mem_fd = new_memfd(MEM_SIZE);
		int s = vfront_connect(argv[1], VFRONT_TIMEOUT_MS);
		int r = mem_fd < 0 || s < 0 ? -1 : setup(s, mem_fd);

		for (unsigned long i = 0; r == 0 && i < per_conn && now_ms() < end; i++) {
			r = change(s, mem_fd);
			changes += r == 0;
		}
		fails += r != 0;
		conns++;
		if (s >= 0)
			close(s);
		if (mem_fd >= 0)
			close(mem_fd);
		if (r) {
			/* one failure is the verdict; do not hammer a broken backend */
			break;
		}
		if (pause_ms > 0)
			poll(NULL, 0, pause_ms);
	}
	printf("soak-memchurn: %lu connections, %lu table changes, %lu failures\n", conns,
	       changes, fails);
	return fails ? 1 : 0;
}
