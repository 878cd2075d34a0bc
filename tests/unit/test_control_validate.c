/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Every validation rule of control, one request at a time: the request
 * fails (failure ack, or the failure encoding of a request that always
 * replies, or a dropped connection for a broken header), no fd it carried
 * stays open (/proc/self/fd), no mapping stays behind (/proc/self/maps), and
 * the connection keeps working where it should.
 */
#include <check.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ctl_fixture.h"

static int fds_before, maps_before;

/* Opens nothing of its own; call before creating the fds a case sends. */
static void mark(void)
{
	fds_before = vfront_count_fds();
	maps_before = vfront_count_maps();
}

/* After the case closed its own fds: nothing of it is left in control. */
static void assert_no_leak(void)
{
	ck_assert_int_eq(vfront_count_fds(), fds_before);
	ck_assert_int_eq(vfront_count_maps(), maps_before);
}

static void assert_alive(void)
{
	uint64_t v;

	ck_assert_int_eq(vfront_get_u64(fx.fd, GET_FEATURES, &v), 0);
	ck_assert_uint_eq(v, FEATURES_OFFERED | F_PROTOCOL | F_LOG_ALL);
}

/* Owner, REPLY_ACK and all protocol features, split features. */
static void ready(void)
{
	fx_negotiate(fx.fd, F_VERSION_1 | F_PROTOCOL | F_EVENT_IDX, PF_ALL);
}

static int ack_u64(uint32_t req, uint64_t v, int fd)
{
	return vfront_request_ack(fx.fd, req, &v, 8, &fd, fd >= 0 ? 1 : 0);
}

static int ack_state(uint32_t req, uint32_t idx, uint32_t num)
{
	uint32_t st[2] = { idx, num };

	return vfront_request_ack(fx.fd, req, st, 8, NULL, 0);
}

START_TEST(test_order_and_features)
{
	uint32_t st[2] = { 0, 256 };

	ck_assert_int_eq(vfront_set_u64(fx.fd, SET_PROTOCOL_FEATURES, PF_REPLY_ACK, false), 0);
	/* Before SET_OWNER. */
	ck_assert_int_eq(vfront_request_ack(fx.fd, SET_VRING_NUM, st, 8, NULL, 0), 1);
	ck_assert_int_eq(fx_mem_table(fx.fd), 1);
	ck_assert_int_eq(vfront_request_ack(fx.fd, SET_OWNER, NULL, 0, NULL, 0), 0);
	ck_assert_int_eq(vfront_request_ack(fx.fd, SET_OWNER, NULL, 0, NULL, 0), 1);
	/* Features never offered. */
	ck_assert_int_eq(vfront_set_u64(fx.fd, SET_FEATURES, F_VERSION_1 | (1ull << 40), true), 1);
	ck_assert_int_eq(vfront_set_u64(fx.fd, SET_FEATURES, 1ull << 0, true), 1);
	ck_assert_int_eq(vfront_set_u64(fx.fd, SET_PROTOCOL_FEATURES, (1ull << 7) | PF_REPLY_ACK, true), 1);
	ck_assert_uint_eq(vre_dev_features(fx.dev), 0);
	/* A protocol feature not negotiated: the request that needs it fails. */
	ck_assert_int_eq(vfront_set_u64(fx.fd, NET_SET_MTU, 1500, true), 1);
	ck_assert_int_eq(vfront_set_u64(fx.fd, SET_PROTOCOL_FEATURES, PF_REPLY_ACK | PF_MTU, true), 0);
	ck_assert_int_eq(vfront_set_u64(fx.fd, NET_SET_MTU, 1500, true), 0);
	ck_assert_uint_eq(fx.fake.mtu, 1500);
	ck_assert_int_eq(vfront_set_u64(fx.fd, NET_SET_MTU, 67, true), 1);
	ck_assert_int_eq(vfront_set_u64(fx.fd, NET_SET_MTU, 65536, true), 1);
	ck_assert_uint_eq(fx.fake.mtu, 1500);
	/* Ring addresses before the memory table. */
	struct addr_msg a = { .index = 0, .desc = GUEST_UVA };
	ck_assert_int_eq(vfront_request_ack(fx.fd, SET_VRING_ADDR, &a, sizeof(a), NULL, 0), 1);
	assert_alive();
}
END_TEST

START_TEST(test_payload_sizes)
{
	uint64_t big[3] = { 0 };

	ready();
	ck_assert_int_eq(vfront_request_ack(fx.fd, SET_VRING_NUM, big, 4, NULL, 0), 1);
	ck_assert_int_eq(vfront_request_ack(fx.fd, SET_FEATURES, big, 16, NULL, 0), 1);
	ck_assert_int_eq(vfront_request_ack(fx.fd, SET_VRING_ADDR, big, 24, NULL, 0), 1);
	ck_assert_int_eq(vfront_request_ack(fx.fd, SET_OWNER, big, 8, NULL, 0), 1);
	ck_assert_int_eq(vfront_request_ack(fx.fd, SET_INFLIGHT_FD, big, 16, NULL, 0), 1);
	assert_alive();
	/* A request that always replies but has no failure encoding: the
	 * frontend must not wait forever, the connection is dropped. */
	ck_assert_int_eq(vfront_send(fx.fd, GET_VRING_BASE, 0, big, 4, NULL, 0), 0);
	ck_assert(vfront_closed(fx.fd, VFRONT_TIMEOUT_MS));
}
END_TEST

START_TEST(test_fds_rejected_and_closed)
{
	int e[3];
	uint64_t v = 0;

	ready();
	mark();
	for (int i = 0; i < 3; i++)
		e[i] = fx_eventfd();
	/* fds on a request that takes none. */
	ck_assert_int_eq(vfront_request_ack(fx.fd, SET_STATUS, &v, 8, e, 1), 1);
	/* Surplus fds. */
	ck_assert_int_eq(vfront_request_ack(fx.fd, SET_VRING_CALL, &v, 8, e, 2), 1);
	ck_assert_int_eq(fx_queue(0).call_fd, -1);
	/* The no-fd bit with an fd, and no fd without the bit. */
	ck_assert_int_eq(ack_u64(SET_VRING_CALL, 0x100, e[0]), 1);
	ck_assert_int_eq(ack_u64(SET_VRING_CALL, 0, -1), 1);
	/* Unknown bits, queue index out of range. */
	ck_assert_int_eq(ack_u64(SET_VRING_CALL, 0x200, e[0]), 1);
	ck_assert_int_eq(ack_u64(SET_VRING_CALL, 2, e[0]), 1);
	ck_assert_int_eq(ack_u64(SET_VRING_ERR, 1ull << 32, e[0]), 1);
	/* Kick before size and addresses. */
	ck_assert_int_eq(ack_u64(SET_VRING_KICK, 0, e[0]), 1);
	/* Unsupported requests with fds. */
	struct { uint64_t size, off; } lg = { 4096, 0 };
	ck_assert_int_eq(vfront_request_ack(fx.fd, SET_LOG_BASE, &lg, 16, e, 1), 1);
	/* SET_LOG_FD is accepted and its fd closed (the log is shared memory) */
	ck_assert_int_eq(vfront_request_ack(fx.fd, SET_LOG_FD, NULL, 0, e, 1), 0);
	ck_assert_int_eq(vfront_request_ack(fx.fd, 99, &v, 8, e, 3), 1);
	ck_assert_int_eq(vfront_request_ack(fx.fd, SET_VRING_ENDIAN, &v, 8, NULL, 0), 1);
	/* Backend channel without its fd. */
	ck_assert_int_eq(vfront_request_ack(fx.fd, SET_BACKEND_REQ_FD, NULL, 0, NULL, 0), 1);
	for (int i = 0; i < 3; i++)
		close(e[i]);
	ck_assert_int_eq(fx_queue(0).kick_fd, -1);
	assert_no_leak(); /* none of them was kept */
	close(fx.fd);
	fx.fd = -1;
	ck_assert(fake_wait(&fx.fake, &fx.fake.disconnects, 1, VFRONT_TIMEOUT_MS));
	fds_before -= 2; /* the connection, both ends */
	assert_no_leak();
}
END_TEST

static int table(const struct region *r, unsigned n, const int *fds, unsigned nfds)
{
	struct { uint32_t n, pad; struct region r[8]; } t = { .n = n };

	memcpy(t.r, r, sizeof(*r) * (n > 8 ? 8 : n));
	return vfront_request_ack(fx.fd, SET_MEM_TABLE, &t, 8 + 32 * (n > 8 ? 8 : n), fds, nfds);
}

START_TEST(test_mem_table_rules)
{
	struct region ok = { GUEST_GPA, GUEST_SIZE, GUEST_UVA, 0 };
	struct region r2 = { 0x40000000, 0x10000, 0x7f5600000000, 0 };

	ready();
	/* A table in force: every bad one below must leave it as it is. */
	ck_assert_int_eq(fx_mem_table(fx.fd), 0);
	mark();
	int m2 = memfd_create("m2", MFD_CLOEXEC);
	int two[2] = { fx.mem_fd, m2 };

	ck_assert_int_eq(ftruncate(m2, 0x20000), 0);
	ck_assert_int_eq(table(&ok, 0, NULL, 0), 1);
	ck_assert_int_eq(table(&ok, 1, NULL, 0), 1);           /* fd missing */
	ck_assert_int_eq(table(&ok, 1, two, 2), 1);            /* surplus fd */
	struct region rr[2] = { ok, r2 };
	ck_assert_int_eq(table(rr, 2, two, 1), 1);             /* one fd short */
	struct region bad = ok;
	bad.size = 0;
	ck_assert_int_eq(table(&bad, 1, two, 1), 1);
	bad = ok;
	bad.size = GUEST_SIZE + 4096;                           /* beyond the file */
	ck_assert_int_eq(table(&bad, 1, two, 1), 1);
	bad = ok;
	bad.offset = 4096;                                     /* offset + size beyond */
	ck_assert_int_eq(table(&bad, 1, two, 1), 1);
	bad = ok;
	bad.offset = UINT64_MAX - 100;                         /* offset + size wraps */
	ck_assert_int_eq(table(&bad, 1, two, 1), 1);
	bad = ok;
	bad.gpa = UINT64_MAX - 4096;                           /* gpa + size wraps */
	ck_assert_int_eq(table(&bad, 1, two, 1), 1);
	bad = ok;
	bad.uva = UINT64_MAX - 4096;                           /* uva + size wraps */
	ck_assert_int_eq(table(&bad, 1, two, 1), 1);
	rr[1].gpa = GUEST_GPA + 0x1000;                        /* GPA overlap */
	ck_assert_int_eq(table(rr, 2, two, 2), 1);
	rr[1].gpa = 0x40000000;
	rr[1].uva = GUEST_UVA + GUEST_SIZE - 1;                /* UVA overlap */
	ck_assert_int_eq(table(rr, 2, two, 2), 1);
	/* 9 regions claimed. */
	struct { uint32_t n, pad; struct region r[8]; } t9 = { .n = 9 };
	ck_assert_int_eq(vfront_request_ack(fx.fd, SET_MEM_TABLE, &t9, sizeof(t9), NULL, 0), 1);
	/* More regions claimed than the payload holds. */
	ck_assert_int_eq(vfront_request_ack(fx.fd, SET_MEM_TABLE, &t9, 8 + 32, two, 1), 1);
	close(m2);
	assert_no_leak();
	assert_alive();

	/* A good table, then bad ADD/REM requests leave it as it was. */
	ck_assert_int_eq(fx_mem_table(fx.fd), 0);
	mark();
	m2 = memfd_create("m2", MFD_CLOEXEC);
	ck_assert_int_eq(ftruncate(m2, 0x20000), 0);
	/* Overlapping (not identical: the same region again is a reference). */
	struct { uint64_t pad; struct region r; } reg = { 0, ok };
	reg.r.gpa += 0x1000;
	ck_assert_int_eq(vfront_request_ack(fx.fd, ADD_MEM_REG, &reg, sizeof(reg), &m2, 1), 1);
	reg.r = r2;
	ck_assert_int_eq(vfront_request_ack(fx.fd, ADD_MEM_REG, &reg, sizeof(reg), NULL, 0), 1);
	reg.r.size = 0x30000;
	ck_assert_int_eq(vfront_request_ack(fx.fd, ADD_MEM_REG, &reg, sizeof(reg), &m2, 1), 1);
	reg.r = r2;
	ck_assert_int_eq(vfront_request_ack(fx.fd, REM_MEM_REG, &reg, sizeof(reg), NULL, 0), 1);
	reg.r = ok;
	reg.r.size -= 4096;
	ck_assert_int_eq(vfront_request_ack(fx.fd, REM_MEM_REG, &reg, sizeof(reg), NULL, 0), 1);
	close(m2);
	assert_no_leak();
	/* REM of the real region unmaps it. */
	reg.r = ok;
	ck_assert_int_eq(vfront_request_ack(fx.fd, REM_MEM_REG, &reg, sizeof(reg), NULL, 0), 0);
	ck_assert_int_eq(vfront_count_maps(), maps_before - 1);
}
END_TEST

/* CONFIGURE_MEM_SLOTS: exactly GET_MAX_MEM_SLOTS regions fit, one more is
 * refused, and all of them are unmapped when the frontend leaves. */
START_TEST(test_mem_slots_full)
{
	struct { uint64_t pad; struct region r; } reg;
	uint64_t max;
	int f;

	ready();
	ck_assert_int_eq(vfront_get_u64(fx.fd, GET_MAX_MEM_SLOTS, &max), 0);
	ck_assert_uint_eq(max, 509);
	mark();
	f = memfd_create("slots", MFD_CLOEXEC);
	/* Every other page of the file: adjacent mappings of consecutive file
	 * pages may be merged into one line of /proc/self/maps (they are
	 * under valgrind, which places mappings bottom-up). */
	ck_assert_int_eq(ftruncate(f, (max + 1) * 8192), 0);
	for (uint64_t i = 0; i <= max; i++) {
		reg.pad = 0;
		reg.r = (struct region){ 0x100000000ull + i * 0x10000, 4096,
					 0x7f0000000000ull + i * 0x10000, i * 8192 };
		ck_assert_int_eq(vfront_request_ack(fx.fd, ADD_MEM_REG, &reg, sizeof(reg), &f, 1),
				 i < max ? 0 : 1);
	}
	ck_assert_int_eq(vfront_count_maps(), maps_before + (int)max);
	close(f);
	close(fx.fd);
	fx.fd = -1;
	ck_assert(fake_wait(&fx.fake, &fx.fake.disconnects, 1, VFRONT_TIMEOUT_MS));
	fds_before -= 2;
	assert_no_leak();
}
END_TEST

/* The no-fd bit: a ring without a kick fd starts (the data plane polls it). */
START_TEST(test_kick_nofd)
{
	ready();
	ck_assert_int_eq(fx_mem_table(fx.fd), 0);
	fx_ring(fx.fd, 1, 64, 0);
	ck_assert_int_eq(ack_u64(SET_VRING_KICK, 0x101, -1), 0);
	ck_assert_int_eq(ack_state(SET_VRING_ENABLE, 1, 1), 0);
	ck_assert(fx_queue(1).started);
	ck_assert_int_eq(fx_queue(1).kick_fd, -1);
	if (fx_vring_ready()) {
		ck_assert_int_eq(fake_get(&fx.fake, &fx.fake.starts), 1);
		ck_assert_int_eq(fx.fake.start[0].kick_fd, -1);
		ck_assert_uint_eq(fx.fake.start[0].index, 1);
	}
}
END_TEST

/* Kick, call and error fds must be eventfds: a call fd that is a pipe the
 * frontend never drains would block the worker writing to it once full
 * (found by tests/hostile, scenario call-pipe). Refused, closed, and the
 * queue does not start. */
START_TEST(test_notify_fd_not_eventfd)
{
	int p[2], m = memfd_create("notify", MFD_CLOEXEC), e = fx_eventfd();

	ck_assert_int_eq(pipe(p), 0);
	ready();
	ck_assert_int_eq(fx_mem_table(fx.fd), 0);
	fx_ring(fx.fd, 1, 64, 0);
	mark();
	ck_assert_int_eq(ack_u64(SET_VRING_CALL, 1, p[1]), 1);
	ck_assert_int_eq(ack_u64(SET_VRING_CALL, 1, m), 1);
	ck_assert_int_eq(ack_u64(SET_VRING_ERR, 1, p[0]), 1);
	ck_assert_int_eq(ack_u64(SET_VRING_KICK, 1, p[0]), 1);
	ck_assert_int_eq(ack_u64(SET_VRING_KICK, 1, fx.fd), 1); /* a socket */
	ck_assert_int_eq(fx_queue(1).call_fd, -1);
	ck_assert_int_eq(fx_queue(1).err_fd, -1);
	ck_assert_int_eq(fx_queue(1).kick_fd, -1);
	ck_assert(!fx_queue(1).started);
	assert_no_leak();
	/* an eventfd is still taken */
	ck_assert_int_eq(ack_u64(SET_VRING_CALL, 1, e), 0);
	ck_assert_int_ge(fx_queue(1).call_fd, 0);
	close(p[0]);
	close(p[1]);
	close(m);
	close(e);
}
END_TEST

START_TEST(test_ring_rules)
{
	int kick = fx_eventfd();
	struct addr_msg a = { .index = 0, .desc = GUEST_UVA + RING_DESC,
			      .avail = GUEST_UVA + RING_AVAIL, .used = GUEST_UVA + RING_USED };

	ready();
	ck_assert_int_eq(fx_mem_table(fx.fd), 0);
	ck_assert_int_eq(ack_state(SET_VRING_NUM, 0, 0), 1);
	ck_assert_int_eq(ack_state(SET_VRING_NUM, 0, 32769), 1);
	ck_assert_int_eq(ack_state(SET_VRING_NUM, 0, 3), 1);       /* split: power of two */
	ck_assert_int_eq(ack_state(SET_VRING_NUM, 2, 256), 1);
	ck_assert_int_eq(ack_state(SET_VRING_NUM, 0x10000, 256), 1); /* not truncated to 0 */
	ck_assert_int_eq(ack_state(SET_VRING_NUM, 0x10001, 256), 1); /* not truncated to 1 */
	ck_assert_int_eq(ack_state(SET_VRING_BASE, 0, 0x10000), 1); /* split base is 16 bits */
	ck_assert_int_eq(ack_state(SET_VRING_BASE, 0x10000, 0), 1);
	ck_assert_int_eq(ack_state(SET_VRING_ENABLE, 0, 2), 1);
	/* Packed bases: indexes beyond the ring size. */
	ck_assert_int_eq(vfront_set_u64(fx.fd, SET_FEATURES, F_VERSION_1 | F_PROTOCOL | F_PACKED, true), 0);
	ck_assert_int_eq(ack_state(SET_VRING_NUM, 1, 100), 0);      /* packed: any size */
	ck_assert_int_eq(ack_state(SET_VRING_BASE, 1, 100), 1);
	ck_assert_int_eq(ack_state(SET_VRING_BASE, 1, 99u | 100u << 16), 1);
	ck_assert_int_eq(ack_state(SET_VRING_BASE, 1, 99u | 1u << 15 | 99u << 16 | 1u << 31), 0);
	ck_assert_int_eq(vfront_set_u64(fx.fd, SET_FEATURES, F_VERSION_1 | F_PROTOCOL, true), 0);
	ck_assert_int_eq(ack_state(SET_VRING_ENABLE, 5, 1), 1);
	ck_assert_int_eq(vfront_request_ack(fx.fd, GET_VRING_BASE + 0, NULL, 0, NULL, 0) < 0, 1);
	ck_assert(vfront_closed(fx.fd, VFRONT_TIMEOUT_MS));
	fx.fd = vfront_connect(fx.path, VFRONT_TIMEOUT_MS);
	ready();
	ck_assert_int_eq(fx_mem_table(fx.fd), 0);
	a.flags = 2;
	ck_assert_int_eq(vfront_request_ack(fx.fd, SET_VRING_ADDR, &a, sizeof(a), NULL, 0), 1);
	a.flags = 0;
	a.index = 2;
	ck_assert_int_eq(vfront_request_ack(fx.fd, SET_VRING_ADDR, &a, sizeof(a), NULL, 0), 1);
	/* Rings that do not fit or are misaligned never reach queue_start. */
	struct addr_msg bad[] = {
		{ 0, 0, GUEST_UVA + GUEST_SIZE - 16, GUEST_UVA + RING_USED, GUEST_UVA + RING_AVAIL, 0 },
		{ 0, 0, GUEST_UVA + RING_DESC + 8, GUEST_UVA + RING_USED, GUEST_UVA + RING_AVAIL, 0 },
		{ 0, 0, GUEST_UVA + RING_DESC, GUEST_UVA + RING_USED + 2, GUEST_UVA + RING_AVAIL, 0 },
		{ 0, 0, GUEST_UVA + RING_DESC, GUEST_UVA + RING_USED, GUEST_UVA + RING_AVAIL + 1, 0 },
		{ 0, 0, GUEST_UVA + RING_DESC, GUEST_UVA + GUEST_SIZE - 8, GUEST_UVA + RING_AVAIL, 0 },
		{ 0, 0, UINT64_MAX - 64, GUEST_UVA + RING_USED, GUEST_UVA + RING_AVAIL, 0 },
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(ack_state(SET_VRING_NUM, 0, 256), 0);
		ck_assert_int_eq(vfront_request_ack(fx.fd, SET_VRING_ADDR, &bad[i], sizeof(bad[i]), NULL, 0), 0);
		ck_assert_int_eq(ack_u64(SET_VRING_KICK, 0, kick), 0);
		ck_assert_int_eq(ack_state(SET_VRING_ENABLE, 0, 1), 0);
		ck_assert_int_eq(fake_get(&fx.fake, &fx.fake.starts), 0);
		ck_assert(!fx_queue(0).running);
		uint32_t st[2] = { 0, 0 };
		struct vfront_msg m;
		ck_assert_int_eq(vfront_send(fx.fd, GET_VRING_BASE, 0, st, 8, NULL, 0), 0);
		ck_assert_int_eq(vfront_recv(fx.fd, &m, VFRONT_TIMEOUT_MS), 0);
		ck_assert_uint_eq(m.p.state.num, 0);
	}
	/* Ring parts ending exactly at the end of memory are fine. */
	if (fx_vring_ready()) {
		struct addr_msg edge = { 0, 0, GUEST_UVA + GUEST_SIZE - 16 * 256,
					 GUEST_UVA + GUEST_SIZE - 0x4000 - (6 + 8 * 256) ,
					 GUEST_UVA + GUEST_SIZE - 0x2000 - (6 + 2 * 256), 0 };
		edge.used &= ~3ull;
		edge.avail &= ~1ull;
		ck_assert_int_eq(ack_state(SET_VRING_NUM, 0, 256), 0);
		ck_assert_int_eq(vfront_request_ack(fx.fd, SET_VRING_ADDR, &edge, sizeof(edge), NULL, 0), 0);
		ck_assert_int_eq(ack_u64(SET_VRING_KICK, 0, kick), 0);
		ck_assert_int_eq(fake_get(&fx.fake, &fx.fake.starts), 1);
	}
	close(kick);
}
END_TEST

START_TEST(test_config_rules)
{
	struct { uint32_t off, size, flags; uint8_t d[256]; } c = { 0, 8, 0, { 0 } };
	struct vfront_msg m;
	struct { uint32_t off, size; } cases[] = {
		{ 0, 0 }, { 60, 8 }, { 64, 1 }, { 0xfffffffc, 8 }, { 0, 257 }, { 0, 65 },
	};

	ready();
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		c.off = cases[i].off;
		c.size = cases[i].size;
		ck_assert_int_eq(vfront_send(fx.fd, GET_CONFIG, 0, &c, sizeof(c), NULL, 0), 0);
		ck_assert_int_eq(vfront_recv(fx.fd, &m, VFRONT_TIMEOUT_MS), 0);
		ck_assert_uint_eq(m.request, GET_CONFIG);
		ck_assert_uint_eq(m.size, 12);
		ck_assert_uint_eq(m.p.state.num, 0); /* size field: failure */
		ck_assert_int_eq(vfront_request_ack(fx.fd, SET_CONFIG, &c, sizeof(c), NULL, 0), 1);
	}
	/* Size larger than the payload carries. */
	c.off = 0;
	c.size = 16;
	ck_assert_int_eq(vfront_request_ack(fx.fd, SET_CONFIG, &c, 12 + 8, NULL, 0), 1);
	for (int i = 0; i < FAKE_CONFIG_SIZE; i++)
		ck_assert_uint_eq(fx.fake.config[i], 0xa0 + i);
	/* The whole space reads back. */
	c.off = 0;
	c.size = FAKE_CONFIG_SIZE;
	ck_assert_int_eq(vfront_send(fx.fd, GET_CONFIG, 0, &c, 12 + 64, NULL, 0), 0);
	ck_assert_int_eq(vfront_recv(fx.fd, &m, VFRONT_TIMEOUT_MS), 0);
	ck_assert_uint_eq(m.size, 12 + 64);
	ck_assert_mem_eq(m.p.bytes + 12, fx.fake.config, 64);
}
END_TEST

START_TEST(test_inflight_rules)
{
	struct vfront_msg m;
	struct inflight_msg in;
	struct { uint16_t nq, qs; } get_cases[] = { { 0, 256 }, { 3, 256 }, { 1, 0 }, { 2, 0xffff } };
	int f;

	ready();
	mark();
	for (unsigned i = 0; i < sizeof(get_cases) / sizeof(get_cases[0]); i++) {
		in = (struct inflight_msg){ .num_queues = get_cases[i].nq, .queue_size = get_cases[i].qs };
		ck_assert_int_eq(vfront_send(fx.fd, GET_INFLIGHT_FD, 0, &in, sizeof(in), NULL, 0), 0);
		ck_assert_int_eq(vfront_recv(fx.fd, &m, VFRONT_TIMEOUT_MS), 0);
		ck_assert_uint_eq(m.size, sizeof(in));
		ck_assert_uint_eq(m.nfds, 0);
		ck_assert_uint_eq(m.p.u64, 0); /* mmap_size 0: no region */
	}
	assert_no_leak();
	/* Repeated GETs replace the region: one mapping, one fd held. */
	for (int i = 0; i < 3; i++) {
		in = (struct inflight_msg){ .num_queues = 2, .queue_size = 128 };
		ck_assert_int_eq(vfront_send(fx.fd, GET_INFLIGHT_FD, 0, &in, sizeof(in), NULL, 0), 0);
		ck_assert_int_eq(vfront_recv(fx.fd, &m, VFRONT_TIMEOUT_MS), 0);
		ck_assert_uint_eq(m.nfds, 1);
		vfront_msg_close_fds(&m);
		ck_assert_int_eq(vfront_count_fds(), fds_before + 1);
		ck_assert_int_eq(vfront_count_maps(), maps_before + 1);
	}
	memcpy(&in, m.p.bytes, sizeof(in));
	ck_assert_uint_eq(in.mmap_size, 2 * vre_inflight_queue_bytes(128, false));

	mark();
	f = memfd_create("infl", MFD_CLOEXEC);
	ck_assert_int_eq(ftruncate(f, 8192), 0);
	/* static: the padding after queue_size is sent too, and must be zero. */
	static const struct inflight_msg bad[] = {
		{ 8192, 0, 0, 128 },                      /* no queues */
		{ 8192, 0, 3, 128 },                      /* more than the device has */
		{ 8192, 0, 2, 0 },
		{ 100, 0, 2, 128 },                       /* too small for the math */
		{ 16384, 0, 2, 128 },                     /* beyond the file */
		{ 4096, 8192, 1, 128 },                   /* offset beyond the file */
		{ 4096, UINT64_MAX - 4095, 1, 128 },      /* offset + size wraps */
		{ 4096, 100, 1, 128 },                    /* offset not a page */
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_int_eq(vfront_request_ack(fx.fd, SET_INFLIGHT_FD, &bad[i], sizeof(bad[i]), &f, 1), 1);
	ck_assert_int_eq(vfront_request_ack(fx.fd, SET_INFLIGHT_FD, &bad[0], sizeof(bad[0]), NULL, 0), 1);
	ck_assert_int_eq(vfront_count_fds(), fds_before + 1); /* f, ours */
	ck_assert_int_eq(vfront_count_maps(), maps_before);
	static const struct inflight_msg good = { 8192, 0, 2, 128 };
	ck_assert_int_eq(vfront_request_ack(fx.fd, SET_INFLIGHT_FD, &good, sizeof(good), &f, 1), 0);
	close(f);
	/* The previous (GET) region was released for this one. */
	ck_assert_int_eq(vfront_count_fds(), fds_before);
	ck_assert_int_eq(vfront_count_maps(), maps_before);
	assert_alive();
}
END_TEST

/* Broken framing drops the connection, closing what came with it. */
START_TEST(test_framing)
{
	int e[10];
	uint32_t hdr[3];

	ready();
	mark();
	/* Wrong version. */
	int c = fx_eventfd();
	ck_assert_int_eq(vfront_send(fx.fd, GET_FEATURES, 0x2, NULL, 0, &c, 1), 0);
	ck_assert(vfront_closed(fx.fd, VFRONT_TIMEOUT_MS));
	close(c);
	close(fx.fd);
	ck_assert(fake_wait(&fx.fake, &fx.fake.disconnects, 1, VFRONT_TIMEOUT_MS));
	fx.fd = vfront_connect(fx.path, VFRONT_TIMEOUT_MS);
	/* A reply flag on a request. */
	ck_assert_int_eq(vfront_send(fx.fd, GET_FEATURES, 0x4, NULL, 0, NULL, 0), 0);
	ck_assert(vfront_closed(fx.fd, VFRONT_TIMEOUT_MS));
	close(fx.fd);
	fx.fd = vfront_connect(fx.path, VFRONT_TIMEOUT_MS);
	/* A payload larger than any request. */
	hdr[0] = SET_FEATURES; hdr[1] = 1; hdr[2] = 1u << 20;
	ck_assert_int_eq(vfront_send_raw(fx.fd, hdr, sizeof(hdr)), 0);
	ck_assert(vfront_closed(fx.fd, VFRONT_TIMEOUT_MS));
	close(fx.fd);
	fx.fd = vfront_connect(fx.path, VFRONT_TIMEOUT_MS);
	/* More than 8 fds on one message. */
	for (int i = 0; i < 10; i++)
		e[i] = fx_eventfd();
	ck_assert_int_eq(vfront_send(fx.fd, SET_LOG_FD, 0, NULL, 0, e, 10), 0);
	ck_assert(vfront_closed(fx.fd, VFRONT_TIMEOUT_MS));
	for (int i = 0; i < 10; i++)
		close(e[i]);
	close(fx.fd);
	fx.fd = -1;
	ck_assert(fake_wait(&fx.fake, &fx.fake.disconnects, 4, VFRONT_TIMEOUT_MS));
	fds_before -= 2; /* the connection, both ends */
	assert_no_leak();
	struct vre_dev_stats st;
	vre_dev_get_stats(fx.dev, &st);
	ck_assert_uint_eq(st.disconnects, 4);
}
END_TEST

/* Status, RARP, reset, and unknown codes answered with a failure. */
START_TEST(test_misc_requests)
{
	uint64_t v;
	uint8_t mac[8] = { 0x52, 0x54, 0, 1, 2, 3, 0, 0 };

	ready();
	ck_assert_int_eq(vfront_set_u64(fx.fd, SET_STATUS, 0x100, true), 1);
	ck_assert_int_eq(vfront_set_u64(fx.fd, SET_STATUS, 0x0f, true), 0);
	ck_assert_int_eq(vfront_get_u64(fx.fd, GET_STATUS, &v), 0);
	ck_assert_uint_eq(v, 0x0f);
	ck_assert_int_eq(vfront_request_ack(fx.fd, SEND_RARP, mac, 8, NULL, 0), 0);
	ck_assert_mem_eq(fx.fake.mac, mac, 6);
	ck_assert_int_eq(vfront_request_ack(fx.fd, 1000, NULL, 0, NULL, 0), 1);
	ck_assert_int_eq(vfront_request_ack(fx.fd, IOTLB_MSG, NULL, 0, NULL, 0), 1);
	ck_assert_int_eq(fx_mem_table(fx.fd), 0);
	ck_assert_int_eq(vfront_request_ack(fx.fd, RESET_DEVICE, NULL, 0, NULL, 0), 0);
	ck_assert_int_eq(fake_get(&fx.fake, &fx.fake.disconnects), 1);
	ck_assert_uint_eq(vre_dev_features(fx.dev), 0);
	ck_assert_int_eq(vfront_get_u64(fx.fd, GET_STATUS, &v), 0);
	ck_assert_uint_eq(v, 0);
	/* Still the owner: a second SET_OWNER fails. */
	ck_assert_int_eq(vfront_request_ack(fx.fd, SET_OWNER, NULL, 0, NULL, 0), 1);
	struct vre_dev_stats st;
	vre_dev_get_stats(fx.dev, &st);
	ck_assert_uint_eq(st.unknown, 2);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("control_validate");
	TCase *t = tcase_create("rules");

	tcase_add_checked_fixture(t, fx_setup, fx_teardown);
	tcase_set_timeout(t, 20);
	tcase_add_test(t, test_order_and_features);
	tcase_add_test(t, test_payload_sizes);
	tcase_add_test(t, test_fds_rejected_and_closed);
	tcase_add_test(t, test_mem_table_rules);
	tcase_add_test(t, test_ring_rules);
	tcase_add_test(t, test_mem_slots_full);
	tcase_add_test(t, test_kick_nofd);
	tcase_add_test(t, test_notify_fd_not_eventfd);
	tcase_add_test(t, test_config_rules);
	tcase_add_test(t, test_inflight_rules);
	tcase_add_test(t, test_framing);
	tcase_add_test(t, test_misc_requests);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *r = srunner_create(suite());
	int failed;

	srunner_run_all(r, CK_NORMAL);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? 1 : 0;
}
