/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * control over real sockets: the ring life cycle (split and packed), a
 * crosvm-style conformance sequence, a stalled frontend next to a served
 * one, and client-mode reconnects.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl_fixture.h"

static int ack_state_fd(int fd, uint32_t req, uint32_t idx, uint32_t num)
{
	uint32_t st[2] = { idx, num };

	return vfront_request_ack(fd, req, st, 8, NULL, 0);
}

static uint64_t ring_features(bool packed)
{
	return F_VERSION_1 | F_EVENT_IDX | F_INDIRECT | F_PROTOCOL | (packed ? F_PACKED : 0);
}

/* The eventfd the backend holds is the one we sent: a write on ours is
 * read on its. */
static void assert_same_eventfd(int ours, int theirs)
{
	uint64_t one = 1, got = 0;

	ck_assert_int_ge(theirs, 0);
	ck_assert_int_eq(write(ours, &one, 8), 8);
	ck_assert_int_eq(read(theirs, &got, 8), 8);
	ck_assert_uint_eq(got, 1);
}

static void lifecycle_once(bool packed, int round)
{
	bool rings = fx_vring_ready();
	int kick = fx_eventfd(), call = fx_eventfd();
	/* DPDK virtio-user style packed base: avail index 5, wrap 1, upper
	 * half zero; control takes the used side to equal the avail side. */
	uint32_t base = packed ? (5u | 1u << 15) : 5u;
	uint32_t want_base = packed ? (5u | 1u << 15 | 5u << 16 | 1u << 31) : 5u;
	uint32_t st[2] = { 0, 0 };
	int starts0 = fake_get(&fx.fake, &fx.fake.starts);
	int stops0 = fake_get(&fx.fake, &fx.fake.stops);
	struct vfront_msg m;

	fx_negotiate(fx.fd, ring_features(packed), PF_REPLY_ACK | PF_MQ);
	ck_assert_uint_eq(fx.fake.features, ring_features(packed));
	ck_assert_uint_eq(vre_dev_features(fx.dev), ring_features(packed));
	ck_assert_int_eq(fx_mem_table(fx.fd), 0);
	fx_ring(fx.fd, 0, 256, base);
	/* A ring handed over with nothing in flight: used->idx is the base. */
	memcpy(fx.mem + RING_USED + 2, &(uint16_t){ (uint16_t)base }, 2);
	ck_assert_int_eq(fx_ring_fd(fx.fd, SET_VRING_CALL, 0, call), 0);
	ck_assert_int_eq(fx_ring_fd(fx.fd, SET_VRING_KICK, 0, kick), 0);
	/* PROTOCOL_FEATURES negotiated: started but waits for enable. */
	ck_assert(fx_queue(0).started);
	ck_assert(!fx_queue(0).running);
	ck_assert_int_eq(fake_get(&fx.fake, &fx.fake.starts), starts0);
	st[1] = 1;
	ck_assert_int_eq(vfront_request_ack(fx.fd, SET_VRING_ENABLE, st, 8, NULL, 0), 0);
	if (rings) {
		struct fake_start *s = &fx.fake.start[starts0];

		ck_assert_int_eq(fake_get(&fx.fake, &fx.fake.starts), starts0 + 1);
		ck_assert_uint_eq(s->index, 0);
		ck_assert_uint_eq(s->size, 256);
		ck_assert(s->packed == packed);
		ck_assert(s->event_idx && s->indirect);
		ck_assert(s->started && s->enabled);
		ck_assert_uint_eq(s->base, want_base);
		/* The ring pointers land where the frontend put the rings:
		 * bytes we write through our own mapping show up there. */
		memcpy(fx.mem + RING_DESC, "DESC", 4);
		memcpy(fx.mem + RING_AVAIL, "AVL", 4);
		memcpy(fx.mem + RING_USED, "USED", 4);
		ck_assert_mem_eq(s->desc, "DESC", 4);
		ck_assert_mem_eq(s->driver, "AVL", 4);
		ck_assert_mem_eq(s->device, "USED", 4);
		assert_same_eventfd(kick, s->kick_fd);
		assert_same_eventfd(call, s->call_fd);
		ck_assert(fx_queue(0).running);
		vre_queue_notify(vre_dev_queue(fx.dev, 0));
		uint64_t got = 0;
		ck_assert_int_eq(read(call, &got, 8), 8);
		ck_assert_uint_eq(got, 1);
	} else {
		fprintf(stderr, "vring rings not built here (-ENOSYS): queue_start not exercised\n");
		ck_assert_int_eq(fake_get(&fx.fake, &fx.fake.starts), starts0);
	}
	/* GET_VRING_BASE stops the ring and returns where it is. */
	st[0] = 0;
	ck_assert_int_eq(vfront_send(fx.fd, GET_VRING_BASE, 0, st, 8, NULL, 0), 0);
	ck_assert_int_eq(vfront_recv(fx.fd, &m, VFRONT_TIMEOUT_MS), 0);
	ck_assert_uint_eq(m.request, GET_VRING_BASE);
	ck_assert_uint_eq(m.size, 8);
	ck_assert_uint_eq(m.p.state.index, 0);
	ck_assert_uint_eq(m.p.state.num, rings ? want_base : (packed ? want_base : base));
	ck_assert_int_eq(fake_get(&fx.fake, &fx.fake.stops), stops0 + (rings ? 1 : 0));
	ck_assert(!fx_queue(0).started);
	ck_assert(!fx_queue(0).running);

	/* Start it again and leave without stopping: disconnect stops it. */
	int kick2 = fx_eventfd();
	ck_assert_int_eq(fx_ring_fd(fx.fd, SET_VRING_KICK, 0, kick2), 0);
	ck_assert_int_eq(fake_get(&fx.fake, &fx.fake.running), rings ? 1 : 0);
	int disc0 = fake_get(&fx.fake, &fx.fake.disconnects);
	close(fx.fd);
	ck_assert(fake_wait(&fx.fake, &fx.fake.disconnects, disc0 + 1, VFRONT_TIMEOUT_MS));
	ck_assert_int_eq(fake_get(&fx.fake, &fx.fake.running), 0);
	ck_assert_uint_eq(vre_dev_features(fx.dev), 0);
	ck_assert(!fx_queue(0).started);
	ck_assert_int_eq(fx_queue(0).kick_fd, -1);
	close(kick);
	close(kick2);
	close(call);
	(void)round;
	fx.fd = vfront_connect(fx.path, VFRONT_TIMEOUT_MS);
	ck_assert_int_ge(fx.fd, 0);
	uint64_t v;
	ck_assert_int_eq(vfront_get_u64(fx.fd, GET_QUEUE_NUM, &v), 0); /* accepted */
}

START_TEST(test_lifecycle)
{
	bool packed = _i;
	int fds0, maps0;
	struct vre_dev_stats st;

	/* Twice: the device takes the next frontend as it took the first,
	 * and holds nothing more after the second than after the first (the
	 * first round also warms up the control thread's malloc arena). */
	lifecycle_once(packed, 0);
	fds0 = vfront_count_fds();
	maps0 = vfront_count_maps();
	lifecycle_once(packed, 1);
	ck_assert_int_eq(vfront_count_fds(), fds0);
	ck_assert_int_eq(vfront_count_maps(), maps0);
	close(fx.fd);
	ck_assert(fake_wait(&fx.fake, &fx.fake.disconnects, 3, VFRONT_TIMEOUT_MS));
	fx.fd = -1;
	ck_assert_int_eq(vfront_count_fds(), fds0 - 2);
	ck_assert_int_eq(vfront_count_maps(), maps0);
	vre_dev_get_stats(fx.dev, &st);
	ck_assert_uint_eq(st.connects, 3);
	ck_assert_uint_eq(st.disconnects, 3);
	ck_assert_uint_eq(st.failed, 0);
}
END_TEST

/* Without VHOST_USER_F_PROTOCOL_FEATURES the ring is enabled as it starts. */
START_TEST(test_enable_implied)
{
	int kick = fx_eventfd();
	uint64_t v;

	ck_assert_int_eq(vfront_send(fx.fd, SET_OWNER, 0, NULL, 0, NULL, 0), 0);
	ck_assert_int_eq(vfront_set_u64(fx.fd, SET_FEATURES, F_VERSION_1, false), 0);
	ck_assert_int_eq(vfront_get_u64(fx.fd, GET_FEATURES, &v), 0);
	struct { uint32_t n, pad; struct region r; } t = {
		1, 0, { GUEST_GPA, GUEST_SIZE, GUEST_UVA, 0 } };
	ck_assert_int_eq(vfront_send(fx.fd, SET_MEM_TABLE, 0, &t, sizeof(t), &fx.mem_fd, 1), 0);
	uint32_t st[2] = { 1, 64 };
	struct addr_msg a = { .index = 1, .desc = GUEST_UVA + RING_DESC,
			      .avail = GUEST_UVA + RING_AVAIL, .used = GUEST_UVA + RING_USED };
	uint64_t k = 1;
	ck_assert_int_eq(vfront_send(fx.fd, SET_VRING_NUM, 0, st, 8, NULL, 0), 0);
	ck_assert_int_eq(vfront_send(fx.fd, SET_VRING_ADDR, 0, &a, sizeof(a), NULL, 0), 0);
	ck_assert_int_eq(vfront_send(fx.fd, SET_VRING_KICK, 0, &k, 8, &kick, 1), 0);
	/* A GET is answered after every earlier request was handled. */
	ck_assert_int_eq(vfront_get_u64(fx.fd, GET_FEATURES, &v), 0);
	ck_assert(fx_queue(1).started);
	ck_assert(fx_queue(1).enabled);
	if (fx_vring_ready()) {
		ck_assert_int_eq(fake_get(&fx.fake, &fx.fake.starts), 1);
		ck_assert_uint_eq(fx.fake.start[0].index, 1);
		ck_assert(!fx.fake.start[0].event_idx);
	}
	close(kick);
}
END_TEST

/* A memory table change under a running queue: stop, swap, rebind, start;
 * the old mapping is gone afterwards. */
START_TEST(test_mem_change_quiesces)
{
	int kick = fx_eventfd();
	uint32_t st[2] = { 0, 1 };
	int maps0;

	if (!fx_vring_ready())
		return;
	fx_negotiate(fx.fd, ring_features(false), PF_REPLY_ACK);
	ck_assert_int_eq(fx_mem_table(fx.fd), 0);
	fx_ring(fx.fd, 0, 256, 0);
	ck_assert_int_eq(fx_ring_fd(fx.fd, SET_VRING_KICK, 0, kick), 0);
	ck_assert_int_eq(vfront_request_ack(fx.fd, SET_VRING_ENABLE, st, 8, NULL, 0), 0);
	ck_assert_int_eq(fake_get(&fx.fake, &fx.fake.starts), 1);
	maps0 = vfront_count_maps();
	ck_assert_int_eq(fx_mem_table(fx.fd), 0);
	ck_assert_int_eq(fake_get(&fx.fake, &fx.fake.stops), 1);
	ck_assert_int_eq(fake_get(&fx.fake, &fx.fake.starts), 2);
	ck_assert_int_eq(vfront_count_maps(), maps0);
	ck_assert_ptr_ne(fx.fake.start[1].desc, fx.fake.start[0].desc);
	memcpy(fx.mem + RING_DESC, "NEW!", 4);
	ck_assert_mem_eq(fx.fake.start[1].desc, "NEW!", 4);
	/* A ring request for queue 1 leaves running queue 0 alone; one for
	 * queue 0 stops and restarts it. */
	int call = fx_eventfd();
	ck_assert_int_eq(fx_ring_fd(fx.fd, SET_VRING_CALL, 1, call), 0);
	ck_assert_int_eq(ack_state_fd(fx.fd, SET_VRING_NUM, 1, 64), 0);
	ck_assert_int_eq(fake_get(&fx.fake, &fx.fake.stops), 1);
	ck_assert_int_eq(fx_ring_fd(fx.fd, SET_VRING_CALL, 0, call), 0);
	ck_assert_int_eq(fake_get(&fx.fake, &fx.fake.stops), 2);
	ck_assert_int_eq(fake_get(&fx.fake, &fx.fake.starts), 3);
	ck_assert_uint_eq(fx.fake.stop_index[1], 0);
	close(call);
	close(kick);
}
END_TEST

/* crosvm vmm_vhost-style conformance sequence. */
START_TEST(test_conformance)
{
	uint64_t v;
	struct vfront_msg m;
	int efd[4] = { fx_eventfd(), fx_eventfd(), fx_eventfd(), fx_eventfd() };
	int fds0;

	fds0 = vfront_count_fds();
	/* set_owner twice: the second fails (visible once REPLY_ACK is on). */
	ck_assert_int_eq(vfront_send(fx.fd, SET_OWNER, 0, NULL, 0, NULL, 0), 0);
	ck_assert_int_eq(vfront_get_u64(fx.fd, GET_FEATURES, &v), 0);
	ck_assert_uint_eq(v, FEATURES_OFFERED | F_PROTOCOL | F_LOG_ALL);
	ck_assert_int_eq(vfront_set_u64(fx.fd, SET_FEATURES, F_VERSION_1 | F_PROTOCOL, false), 0);
	ck_assert_int_eq(vfront_get_u64(fx.fd, GET_PROTOCOL_FEATURES, &v), 0);
	ck_assert_uint_eq(v, PF_ALL);
	ck_assert_int_eq(vfront_set_u64(fx.fd, SET_PROTOCOL_FEATURES, PF_ALL, false), 0);
	ck_assert_int_eq(vfront_request_ack(fx.fd, SET_OWNER, NULL, 0, NULL, 0), 1);
	/* need_reply on and off. */
	ck_assert_int_eq(vfront_set_u64(fx.fd, SET_FEATURES, F_VERSION_1 | F_PROTOCOL, true), 0);
	ck_assert_int_eq(vfront_set_u64(fx.fd, SET_FEATURES, F_VERSION_1 | F_PROTOCOL, false), 0);
	ck_assert(vfront_quiet(fx.fd, 50));

	/* get_inflight_fd for 2 queues of 256, then set_inflight_fd with it. */
	struct inflight_msg in = { .num_queues = 2, .queue_size = 256 };
	ck_assert_int_eq(vfront_send(fx.fd, GET_INFLIGHT_FD, 0, &in, sizeof(in), NULL, 0), 0);
	ck_assert_int_eq(vfront_recv(fx.fd, &m, VFRONT_TIMEOUT_MS), 0);
	ck_assert_uint_eq(m.size, sizeof(in));
	ck_assert_uint_eq(m.nfds, 1);
	memcpy(&in, m.p.bytes, sizeof(in));
	ck_assert_uint_eq(in.mmap_size, 2 * vre_inflight_queue_bytes(256, false));
	ck_assert_uint_eq(in.num_queues, 2);
	ck_assert_uint_eq(in.queue_size, 256);
	struct stat sb;
	ck_assert_int_eq(fstat(m.fds[0], &sb), 0);
	ck_assert_uint_eq(sb.st_size, in.mmap_size);
	uint8_t *infl = mmap(NULL, in.mmap_size, PROT_READ, MAP_SHARED, m.fds[0], 0);
	ck_assert_ptr_ne(infl, MAP_FAILED);
	for (uint64_t i = 0; i < in.mmap_size; i++)
		ck_assert_uint_eq(infl[i], 0);
	munmap(infl, in.mmap_size);
	ck_assert_int_eq(vfront_request_ack(fx.fd, SET_INFLIGHT_FD, &in, sizeof(in), m.fds, 1), 0);
	close(m.fds[0]);

	ck_assert_int_eq(vfront_get_u64(fx.fd, GET_QUEUE_NUM, &v), 0);
	ck_assert_uint_eq(v, 2);
	ck_assert_int_eq(fx_mem_table(fx.fd), 0);

	/* set_config then get_config returns what was written. */
	struct { uint32_t off, size, flags; uint8_t d[8]; } cfg = { 4, 8, 0, "vre-cfg" };
	ck_assert_int_eq(vfront_request_ack(fx.fd, SET_CONFIG, &cfg, sizeof(cfg), NULL, 0), 0);
	memset(cfg.d, 0, 8);
	ck_assert_int_eq(vfront_send(fx.fd, GET_CONFIG, 0, &cfg, sizeof(cfg), NULL, 0), 0);
	ck_assert_int_eq(vfront_recv(fx.fd, &m, VFRONT_TIMEOUT_MS), 0);
	ck_assert_uint_eq(m.size, 20);
	ck_assert_mem_eq(m.p.bytes, "\x04\0\0\0\x08\0\0\0\0\0\0\0vre-cfg", 20);
	ck_assert_mem_eq(fx.fake.config + 4, "vre-cfg", 8);
	ck_assert_uint_eq(fx.fake.config[3], 0xa3); /* neighbours untouched */
	ck_assert_uint_eq(fx.fake.config[12], 0xac);

	ck_assert_int_eq(vfront_request_ack(fx.fd, SET_BACKEND_REQ_FD, NULL, 0, &efd[3], 1), 0);
	uint32_t st[2] = { 0, 1 };
	ck_assert_int_eq(vfront_request_ack(fx.fd, SET_VRING_ENABLE, st, 8, NULL, 0), 0);
	st[1] = 256;
	ck_assert_int_eq(vfront_request_ack(fx.fd, SET_VRING_NUM, st, 8, NULL, 0), 0);
	st[1] = 0;
	ck_assert_int_eq(vfront_request_ack(fx.fd, SET_VRING_BASE, st, 8, NULL, 0), 0);
	struct addr_msg a = { .index = 0, .flags = 1, .desc = GUEST_UVA + RING_DESC,
			      .avail = GUEST_UVA + RING_AVAIL, .used = GUEST_UVA + RING_USED,
			      .log = 0x12345000 };
	ck_assert_int_eq(vfront_request_ack(fx.fd, SET_VRING_ADDR, &a, sizeof(a), NULL, 0), 0);
	ck_assert_int_eq(fx_ring_fd(fx.fd, SET_VRING_CALL, 0, efd[0]), 0);
	ck_assert_int_eq(fx_ring_fd(fx.fd, SET_VRING_KICK, 0, efd[1]), 0);
	if (fx_vring_ready()) {
		ck_assert_int_eq(fake_get(&fx.fake, &fx.fake.starts), 1);
		ck_assert(fx.fake.start[0].inflight);
	}
	/* A ring fd change quiesces the running queue: stop, swap, start. */
	ck_assert_int_eq(fx_ring_fd(fx.fd, SET_VRING_ERR, 0, efd[2]), 0);
	if (fx_vring_ready()) {
		ck_assert_int_eq(fake_get(&fx.fake, &fx.fake.stops), 1);
		ck_assert_int_eq(fake_get(&fx.fake, &fx.fake.starts), 2);
		ck_assert_int_eq(fake_get(&fx.fake, &fx.fake.running), 1);
	}
	ck_assert_int_eq(vfront_get_u64(fx.fd, GET_MAX_MEM_SLOTS, &v), 0);
	ck_assert_uint_eq(v, 509);

	/* add_mem_region then remove_mem_region. */
	int extra = memfd_create("extra", MFD_CLOEXEC);
	ck_assert_int_eq(ftruncate(extra, 0x10000), 0);
	struct { uint64_t pad; struct region r; } reg = { 0, { 0x40000000, 0x10000, 0x7f3400000000, 0 } };
	int maps = vfront_count_maps();
	ck_assert_int_eq(vfront_request_ack(fx.fd, ADD_MEM_REG, &reg, sizeof(reg), &extra, 1), 0);
	ck_assert_int_eq(vfront_count_maps(), maps + 1);
	ck_assert_int_eq(vfront_request_ack(fx.fd, REM_MEM_REG, &reg, sizeof(reg), NULL, 0), 0);
	ck_assert_int_eq(vfront_count_maps(), maps);
	/* The same region twice (QEMU's per-queue-pair vhost devices each add
	 * it) is one mapping with two references: the first removal keeps it. */
	int fds_before = vfront_count_fds();
	ck_assert_int_eq(vfront_request_ack(fx.fd, ADD_MEM_REG, &reg, sizeof(reg), &extra, 1), 0);
	ck_assert_int_eq(vfront_request_ack(fx.fd, ADD_MEM_REG, &reg, sizeof(reg), &extra, 1), 0);
	ck_assert_int_eq(vfront_count_maps(), maps + 1);
	ck_assert_int_eq(vfront_count_fds(), fds_before);
	ck_assert_int_eq(vfront_request_ack(fx.fd, REM_MEM_REG, &reg, sizeof(reg), NULL, 0), 0);
	ck_assert_int_eq(vfront_count_maps(), maps + 1);
	ck_assert_int_eq(vfront_request_ack(fx.fd, REM_MEM_REG, &reg, sizeof(reg), NULL, 0), 0);
	ck_assert_int_eq(vfront_count_maps(), maps);
	ck_assert_int_eq(vfront_request_ack(fx.fd, REM_MEM_REG, &reg, sizeof(reg), NULL, 0), 1);
	close(extra);

	/* SET_LOG_BASE with LOG_SHMFD negotiated (PF_ALL above) always
	 * replies: u64 1 for a log beyond its (empty) file... */
	int logfd = memfd_create("log", MFD_CLOEXEC);
	struct { uint64_t size, off; } lg = { 4096, 0 };
	ck_assert_int_eq(vfront_request_ack(fx.fd, SET_LOG_BASE, &lg, sizeof(lg), &logfd, 1), 1);
	/* ...and 0 once the file is big enough; the backend stays healthy. */
	ck_assert_int_eq(ftruncate(logfd, 4096), 0);
	ck_assert_int_eq(vfront_request_ack(fx.fd, SET_LOG_BASE, &lg, sizeof(lg), &logfd, 1), 0);
	ck_assert_int_eq(vfront_get_u64(fx.fd, GET_FEATURES, &v), 0);
	ck_assert_uint_eq(v, FEATURES_OFFERED | F_PROTOCOL | F_LOG_ALL);
	close(logfd);
	ck_assert(vre_dev_connected(fx.dev));

	/* The device holds exactly the fds it kept: 3 ring fds, the backend
	 * channel, the inflight memfd (and none of the rejected ones). */
	for (int i = 0; i < 4; i++)
		close(efd[i]);
	ck_assert_int_eq(vfront_count_fds(), fds0 - 4 + 5);
	close(fx.fd);
	fx.fd = -1;
	ck_assert(fake_wait(&fx.fake, &fx.fake.disconnects, 1, VFRONT_TIMEOUT_MS));
	/* ...and releases them, and its end of the connection, when it ends. */
	ck_assert_int_eq(vfront_count_fds(), fds0 - 4 - 2);
}
END_TEST

/* Each queue gets its own slice of the inflight region: queue 1 of a
 * packed device initialises the slice at one packed stride, not queue 0's. */
START_TEST(test_inflight_slices)
{
	struct inflight_msg in = { .num_queues = 2, .queue_size = 256 };
	size_t stride = vre_inflight_queue_bytes(256, true);
	int kick = fx_eventfd();
	struct vfront_msg m;
	uint8_t *reg;

	if (!fx_vring_ready())
		return;
	fx_negotiate(fx.fd, ring_features(true), PF_REPLY_ACK | PF_INFLIGHT);
	ck_assert_int_eq(vfront_send(fx.fd, GET_INFLIGHT_FD, 0, &in, sizeof(in), NULL, 0), 0);
	ck_assert_int_eq(vfront_recv(fx.fd, &m, VFRONT_TIMEOUT_MS), 0);
	ck_assert_uint_eq(m.nfds, 1);
	int infl_fd = m.fds[0];
	memcpy(&in, m.p.bytes, sizeof(in));
	ck_assert_uint_eq(in.mmap_size, 2 * stride);
	reg = mmap(NULL, in.mmap_size, PROT_READ, MAP_SHARED, infl_fd, 0);
	ck_assert_ptr_ne(reg, MAP_FAILED);
	ck_assert_int_eq(fx_mem_table(fx.fd), 0);
	fx_ring(fx.fd, 1, 256, 0);
	ck_assert_int_eq(fx_ring_fd(fx.fd, SET_VRING_KICK, 1, kick), 0);
	uint32_t st[2] = { 1, 1 };
	ck_assert_int_eq(vfront_request_ack(fx.fd, SET_VRING_ENABLE, st, 8, NULL, 0), 0);
	ck_assert_int_eq(fake_get(&fx.fake, &fx.fake.starts), 1);
	ck_assert(fx.fake.start[0].inflight);
	const struct vre_inflight_packed *q0 = (const void *)reg;
	const struct vre_inflight_packed *q1 = (const void *)(reg + stride);
	ck_assert_uint_eq(q0->version, 0);
	ck_assert_uint_eq(q1->version, VRE_INFLIGHT_VERSION);
	ck_assert_uint_eq(q1->desc_num, 256);
	/* A second GET while a queue holds the region is refused. */
	ck_assert_int_eq(vfront_send(fx.fd, GET_INFLIGHT_FD, 0, &in, sizeof(in), NULL, 0), 0);
	ck_assert_int_eq(vfront_recv(fx.fd, &m, VFRONT_TIMEOUT_MS), 0);
	ck_assert_uint_eq(m.nfds, 0);
	ck_assert_uint_eq(m.p.u64, 0);
	munmap(reg, in.mmap_size);
	close(infl_fd);
	close(kick);
}
END_TEST

/* Half a message and a stall on one device; another device is served. */
START_TEST(test_stall_other_served)
{
	struct fake_dev f2;
	char path2[128];
	uint64_t v;
	uint32_t hdr[3] = { GET_QUEUE_NUM, 1, 8 };
	struct vfront_msg m;

	snprintf(path2, sizeof(path2), "%s/sock2", fx.dir);
	fake_init(&f2, F_VERSION_1, 4);
	struct vre_dev *dev2 = fx_add_dev(&f2, path2, false);
	int fd2 = vfront_connect(path2, VFRONT_TIMEOUT_MS);
	ck_assert_int_ge(fd2, 0);

	/* Half a header, then the header and half its payload. */
	ck_assert_int_eq(vfront_send_raw(fx.fd, hdr, 6), 0);
	ck_assert_int_eq(vfront_get_u64(fd2, GET_QUEUE_NUM, &v), 0);
	ck_assert_uint_eq(v, 4);
	ck_assert_int_eq(vfront_send_raw(fx.fd, (char *)hdr + 6, 6), 0);
	ck_assert_int_eq(vfront_send_raw(fx.fd, "\0\0\0", 3), 0);
	fx_negotiate(fd2, F_VERSION_1 | F_PROTOCOL, PF_REPLY_ACK);
	ck_assert(vfront_quiet(fx.fd, 50));
	/* The rest arrives: the stalled request is answered. */
	ck_assert_int_eq(vfront_send_raw(fx.fd, "\0\0\0\0\0", 5), 0);
	ck_assert_int_eq(vfront_recv(fx.fd, &m, VFRONT_TIMEOUT_MS), 0);
	ck_assert_uint_eq(m.request, GET_QUEUE_NUM);
	ck_assert_uint_eq(m.p.u64, 2);
	close(fd2);
	/* f2 lives on this stack: the device must not outlive it. */
	vre_dev_destroy(dev2);
}
END_TEST

/* A frontend that floods requests and never reads the replies is dropped
 * once its socket buffer is full; the control thread never blocks on it and
 * another device is served meanwhile. */
START_TEST(test_reply_flood_dropped)
{
	struct fake_dev f2;
	char path2[128];
	uint64_t v;
	int fd2, sent = 0, buf = 4096;

	snprintf(path2, sizeof(path2), "%s/sock2", fx.dir);
	fake_init(&f2, F_VERSION_1, 1);
	struct vre_dev *dev2 = fx_add_dev(&f2, path2, false);
	fd2 = vfront_connect(path2, VFRONT_TIMEOUT_MS);
	ck_assert_int_ge(fd2, 0);
	/* A small receive buffer fills after a few hundred replies. */
	ck_assert_int_eq(setsockopt(fx.fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf)), 0);
	while (sent < 100000 && vfront_send(fx.fd, GET_FEATURES, 0, NULL, 0, NULL, 0) == 0) {
		sent++;
		if (sent % 1000 == 0)
			ck_assert_int_eq(vfront_get_u64(fd2, GET_QUEUE_NUM, &v), 0);
	}
	ck_assert(fake_wait(&fx.fake, &fx.fake.disconnects, 1, VFRONT_TIMEOUT_MS));
	ck_assert_int_eq(vfront_get_u64(fd2, GET_QUEUE_NUM, &v), 0);
	ck_assert_uint_eq(v, 1);
	close(fd2);
	vre_dev_destroy(dev2);
}
END_TEST

/* A second frontend while one is connected is refused; the first is fine. */
START_TEST(test_second_frontend_refused)
{
	uint64_t v;
	int fd2 = vfront_connect(fx.path, VFRONT_TIMEOUT_MS);

	ck_assert_int_ge(fd2, 0);
	ck_assert(vfront_closed(fd2, VFRONT_TIMEOUT_MS));
	ck_assert_int_eq(vfront_get_u64(fx.fd, GET_FEATURES, &v), 0);
	close(fd2);
}
END_TEST

/* Client mode: connects to a frontend that listens, reconnects after the
 * frontend drops it, and keeps retrying while nobody listens. */
START_TEST(test_client_reconnect)
{
	struct fake_dev fc;
	char path[128];
	uint64_t v;
	int lfd, c;

	snprintf(path, sizeof(path), "%s/client", fx.dir);
	fake_init(&fc, F_VERSION_1, 1);
	/* Nobody listens yet: the device retries with back-off. */
	struct vre_dev *dev = fx_add_dev(&fc, path, true);
	ck_assert(!vre_dev_connected(dev));
	lfd = vfront_listen(path);
	ck_assert_int_ge(lfd, 0);
	c = vfront_accept(lfd, 2500); /* back-off is at most 1 s */
	ck_assert_int_ge(c, 0);
	ck_assert_int_eq(vfront_get_u64(c, GET_FEATURES, &v), 0);
	ck_assert_uint_eq(v, F_VERSION_1 | F_PROTOCOL | F_LOG_ALL);
	for (int round = 1; round <= 2; round++) {
		close(c);
		ck_assert(fake_wait(&fc, &fc.disconnects, round, VFRONT_TIMEOUT_MS));
		c = vfront_accept(lfd, 2500);
		ck_assert_int_ge(c, 0);
		ck_assert_int_eq(vfront_get_u64(c, GET_QUEUE_NUM, &v), 0);
		ck_assert_uint_eq(v, 1);
	}
	close(c);
	close(lfd);
	unlink(path);
	vre_dev_destroy(dev);
}
END_TEST

/* vre_dev_attach_fd: a socketpair end as the connection. */
START_TEST(test_attach_socketpair)
{
	int sv[2];
	uint64_t v;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(vre_dev_attach_fd(fx.dev, sv[1]), 0);
	/* The listening-socket frontend was replaced. */
	ck_assert(vfront_closed(fx.fd, VFRONT_TIMEOUT_MS));
	ck_assert_int_eq(vfront_get_u64(sv[0], GET_QUEUE_NUM, &v), 0);
	ck_assert_uint_eq(v, 2);
	close(sv[0]);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("control");
	TCase *t = tcase_create("protocol");

	tcase_add_checked_fixture(t, fx_setup, fx_teardown);
	tcase_set_timeout(t, 20);
	tcase_add_loop_test(t, test_lifecycle, 0, 2);
	tcase_add_test(t, test_enable_implied);
	tcase_add_test(t, test_mem_change_quiesces);
	tcase_add_test(t, test_conformance);
	tcase_add_test(t, test_inflight_slices);
	tcase_add_test(t, test_stall_other_served);
	tcase_add_test(t, test_second_frontend_refused);
	tcase_add_test(t, test_reply_flood_dropped);
	tcase_add_test(t, test_client_reconnect);
	tcase_add_test(t, test_attach_socketpair);
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
