/* SPDX-License-Identifier: BSD-3-Clause */
/* A virtio-net guest over vhost-user for integration tests (vguest.h). */
#include "vguest.h"

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
#include "vre_ring_layout.h"

enum {
	GET_FEATURES = 1, SET_FEATURES = 2, SET_OWNER = 3, SET_MEM_TABLE = 5,
	SET_VRING_NUM = 8, SET_VRING_ADDR = 9, SET_VRING_BASE = 10, SET_VRING_KICK = 12,
	SET_VRING_CALL = 13, GET_PROTOCOL_FEATURES = 15, SET_PROTOCOL_FEATURES = 16,
	SET_VRING_ENABLE = 18,
};

#define F_PROTOCOL (1ull << 30)
#define F_VERSION_1 (1ull << 32)
#define PF_REPLY_ACK (1ull << 3)

/* Guest memory: ring q at q * RING_SPAN, buffers after both rings. */
#define RING_SPAN 0x4000u /* desc 4 KiB, avail, used at +0x2000 */
#define BUF_BASE (2 * RING_SPAN)
#define MEM_SIZE (BUF_BASE + 2 * VGUEST_RING * VGUEST_BUF)

struct ring {
	struct vre_desc *desc;
	struct vre_avail *avail;
	struct vre_used_ring *used;
	uint16_t avail_idx;   /* next avail->idx to publish */
	uint16_t last_used;
	uint16_t inflight;    /* TX: chains not yet completed */
};

struct vguest {
	int fd, mem_fd;
	uint8_t *mem;
	struct ring r[2];     /* 0 RX, 1 TX */
	int kick[2], call[2];
};

struct region { uint64_t gpa, size, uva, offset; };
struct table { uint32_t n, padding; struct region r[1]; };
struct addr_msg { uint32_t index, flags; uint64_t desc, used, avail, log; };
struct state_msg { uint32_t index, num; };

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* GPA == offset in the memfd; the "userspace address" is our mapping's. */
static uint64_t uva(const struct vguest *g, uint64_t off)
{
	return (uint64_t)(uintptr_t)g->mem + off;
}

static int ack(struct vguest *g, uint32_t req, const void *p, uint32_t n, const int *fds,
	       unsigned nfds, const char *what)
{
	int r = vfront_request_ack(g->fd, req, p, n, fds, nfds);

	if (r != 0)
		fprintf(stderr, "vguest: %s: %s\n", what, r < 0 ? strerror(-r) : "refused");
	return r == 0 ? 0 : -1;
}

static void ring_layout(struct vguest *g, unsigned q)
{
	uint8_t *base = g->mem + q * RING_SPAN;

	g->r[q].desc = (struct vre_desc *)base;
	g->r[q].avail = (struct vre_avail *)(base + 16 * VGUEST_RING);
	g->r[q].used = (struct vre_used_ring *)(base + 0x2000);
}

static uint64_t buf_gpa(unsigned q, unsigned i)
{
	return BUF_BASE + ((uint64_t)q * VGUEST_RING + i) * VGUEST_BUF;
}

/* Publishes head at the ring's next avail slot. */
static void post(struct ring *r, uint16_t head)
{
	r->avail->ring[r->avail_idx % VGUEST_RING] = head;
	r->avail_idx++;
	__atomic_store_n(&r->avail->idx, r->avail_idx, __ATOMIC_RELEASE);
}

static void kick(struct vguest *g, unsigned q)
{
	uint64_t one = 1;

	if (write(g->kick[q], &one, sizeof(one)) < 0)
		perror("vguest: kick");
}

static int negotiate(struct vguest *g)
{
	uint64_t f, pf;

	if (vfront_send(g->fd, SET_OWNER, 0, NULL, 0, NULL, 0) < 0 ||
	    vfront_get_u64(g->fd, GET_FEATURES, &f) < 0 || !(f & F_PROTOCOL) ||
	    vfront_set_u64(g->fd, SET_FEATURES, F_VERSION_1 | F_PROTOCOL, false) < 0 ||
	    vfront_get_u64(g->fd, GET_PROTOCOL_FEATURES, &pf) < 0 || !(pf & PF_REPLY_ACK) ||
	    vfront_set_u64(g->fd, SET_PROTOCOL_FEATURES, PF_REPLY_ACK, false) < 0) {
		fprintf(stderr, "vguest: negotiation failed\n");
		return -1;
	}
	return 0;
}

static int start_ring(struct vguest *g, uint32_t q)
{
	struct state_msg num = { q, VGUEST_RING }, base = { q, 0 }, en = { q, 1 };
	uint64_t off = q * RING_SPAN;
	struct addr_msg a = { q, 0, uva(g, off), uva(g, off + 0x2000),
			      uva(g, off + 16 * VGUEST_RING), 0 };
	uint64_t qv = q;

	ring_layout(g, q);
	if (q == 0) { /* every RX buffer posted before the ring starts */
		for (unsigned i = 0; i < VGUEST_RING; i++) {
			g->r[0].desc[i].addr = buf_gpa(0, i);
			g->r[0].desc[i].len = VGUEST_BUF;
			g->r[0].desc[i].flags = VRE_DESC_F_WRITE;
			g->r[0].avail->ring[i] = (uint16_t)i;
		}
		g->r[0].avail_idx = VGUEST_RING;
		__atomic_store_n(&g->r[0].avail->idx, g->r[0].avail_idx, __ATOMIC_RELEASE);
	}
	g->kick[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	g->call[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (g->kick[q] < 0 || g->call[q] < 0)
		return -1;
	if (ack(g, SET_VRING_NUM, &num, sizeof(num), NULL, 0, "SET_VRING_NUM") ||
	    ack(g, SET_VRING_BASE, &base, sizeof(base), NULL, 0, "SET_VRING_BASE") ||
	    ack(g, SET_VRING_ADDR, &a, sizeof(a), NULL, 0, "SET_VRING_ADDR") ||
	    ack(g, SET_VRING_CALL, &qv, 8, &g->call[q], 1, "SET_VRING_CALL") ||
	    ack(g, SET_VRING_KICK, &qv, 8, &g->kick[q], 1, "SET_VRING_KICK") ||
	    ack(g, SET_VRING_ENABLE, &en, sizeof(en), NULL, 0, "SET_VRING_ENABLE"))
		return -1;
	return 0;
}

struct vguest *vguest_open(const char *path, int timeout_ms)
{
	struct vguest *g = calloc(1, sizeof(*g));
	struct table t = { .n = 1 };
	int e;

	if (!g)
		return NULL;
	g->kick[0] = g->kick[1] = g->call[0] = g->call[1] = -1;
	g->mem_fd = memfd_create("vguest", MFD_CLOEXEC);
	if (g->mem_fd < 0 || ftruncate(g->mem_fd, MEM_SIZE) < 0)
		goto fail;
	g->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, g->mem_fd, 0);
	if (g->mem == MAP_FAILED) {
		g->mem = NULL;
		goto fail;
	}
	g->fd = vfront_connect(path, timeout_ms);
	if (g->fd < 0) {
		errno = -g->fd;
		g->fd = -1;
		fprintf(stderr, "vguest: %s: %s\n", path, strerror(errno));
		goto fail;
	}
	t.r[0] = (struct region){ 0, MEM_SIZE, uva(g, 0), 0 };
	if (negotiate(g) ||
	    ack(g, SET_MEM_TABLE, &t, 8 + sizeof(t.r[0]), &g->mem_fd, 1, "SET_MEM_TABLE") ||
	    start_ring(g, 0) || start_ring(g, 1))
		goto fail;
	return g;
fail:
	e = errno ? errno : EPROTO;
	vguest_close(g);
	errno = e;
	return NULL;
}

void vguest_close(struct vguest *g)
{
	if (!g)
		return;
	if (g->fd >= 0)
		close(g->fd);
	for (int q = 0; q < 2; q++) {
		if (g->kick[q] >= 0)
			close(g->kick[q]);
		if (g->call[q] >= 0)
			close(g->call[q]);
	}
	if (g->mem)
		munmap(g->mem, MEM_SIZE);
	if (g->mem_fd >= 0)
		close(g->mem_fd);
	free(g);
}

int vguest_fd(const struct vguest *g)
{
	return g->fd;
}

/* Takes TX completions back. */
static void tx_reap(struct vguest *g)
{
	struct ring *r = &g->r[1];
	uint16_t used = __atomic_load_n(&r->used->idx, __ATOMIC_ACQUIRE);

	while (r->last_used != used) {
		r->last_used++;
		r->inflight--;
	}
}

int vguest_send(struct vguest *g, const void *frame, size_t len)
{
	struct ring *r = &g->r[1];
	uint16_t head;

	tx_reap(g);
	if (r->inflight == VGUEST_RING || len + VGUEST_HDR > VGUEST_BUF)
		return -ENOSPC;
	/* slots are used in ring order, so a head is free once inflight says so */
	head = r->avail_idx % VGUEST_RING;
	memset(g->mem + buf_gpa(1, head), 0, VGUEST_HDR);
	memcpy(g->mem + buf_gpa(1, head) + VGUEST_HDR, frame, len);
	r->desc[head].addr = buf_gpa(1, head);
	r->desc[head].len = (uint32_t)(len + VGUEST_HDR);
	r->desc[head].flags = 0;
	r->inflight++;
	post(r, head);
	kick(g, 1);
	return 0;
}

int vguest_send_wait(struct vguest *g, const void *frame, size_t len, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;
	uint16_t target;
	int r = vguest_send(g, frame, len);

	if (r < 0)
		return r;
	target = g->r[1].avail_idx;
	while ((uint16_t)(__atomic_load_n(&g->r[1].used->idx, __ATOMIC_ACQUIRE) - target) > 0x7fff) {
		if (now_ms() >= end)
			return -ETIMEDOUT;
		poll(NULL, 0, 1); /* the backend's worker runs on another CPU */
	}
	tx_reap(g);
	return 0;
}

size_t vguest_recv(struct vguest *g, void *buf, size_t cap)
{
	struct ring *r = &g->r[0];
	uint16_t used = __atomic_load_n(&r->used->idx, __ATOMIC_ACQUIRE);
	struct vre_used_elem e;
	size_t n;

	if (r->last_used == used)
		return 0;
	e = r->used->ring[r->last_used % VGUEST_RING];
	r->last_used++;
	if (e.id >= VGUEST_RING || e.len < VGUEST_HDR || e.len > VGUEST_BUF) {
		fprintf(stderr, "vguest: bad used entry id %u len %u\n", e.id, e.len);
		abort();
	}
	n = e.len - VGUEST_HDR;
	memcpy(buf, g->mem + buf_gpa(0, e.id) + VGUEST_HDR, n < cap ? n : cap);
	post(r, (uint16_t)e.id); /* the buffer goes back */
	return n;
}
