/* SPDX-License-Identifier: BSD-3-Clause */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ctl_fixture.h"

struct fx fx;

bool fx_vring_ready(void)
{
	static uint8_t ring[0x4000] __attribute__((aligned(64)));
	static struct vre_mem_map map;
	struct vre_mem_region r = { .gpa = 0, .size = sizeof(ring), .uva = 0, .hva = ring };
	struct vre_vq_params p = { .size = 16, .desc = ring, .driver = ring + 0x1000,
				   .device = ring + 0x2000, .mem = &map };
	struct vre_vq vq;
	int ret;

	vre_mem_map_init(&map);
	vre_mem_map_add(&map, &r);
	ret = vre_vq_init(&vq, &p);
	if (ret == 0)
		vre_vq_fini(&vq);
	return ret != -ENOSYS;
}

struct vre_dev *fx_add_dev(struct fake_dev *f, const char *path, bool client)
{
	struct vre_dev_config cfg = { .path = path, .client = client, .ops = &f->ops, .ctx = f };
	struct vre_dev *dev = NULL;

	ck_assert_int_eq(vre_dev_create(fx.srv, &cfg, &dev), 0);
	return dev;
}

void fx_setup(void)
{
	memset(&fx, 0, sizeof(fx));
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/vre-ctl-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(fx.dir));
	snprintf(fx.path, sizeof(fx.path), "%s/sock", fx.dir);
	fake_init(&fx.fake, FEATURES_OFFERED, 2);
	ck_assert_int_eq(vre_server_create(&fx.srv), 0);
	fx.dev = fx_add_dev(&fx.fake, fx.path, false);
	ck_assert_int_eq(vre_server_start(fx.srv), 0);
	fx.fd = vfront_connect(fx.path, VFRONT_TIMEOUT_MS);
	ck_assert_int_ge(fx.fd, 0);
	/* A round trip: the server has accepted, its fd counts from now on. */
	uint64_t v;
	ck_assert_int_eq(vfront_get_u64(fx.fd, GET_QUEUE_NUM, &v), 0);
	ck_assert_uint_eq(v, 2);
	fx.mem_fd = memfd_create("guest", MFD_CLOEXEC);
	ck_assert_int_ge(fx.mem_fd, 0);
	ck_assert_int_eq(ftruncate(fx.mem_fd, GUEST_SIZE), 0);
	fx.mem = mmap(NULL, GUEST_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fx.mem_fd, 0);
	ck_assert_ptr_ne(fx.mem, MAP_FAILED);
}

/* Removes the test's temp dir and what the tests left in it (sockets,
 * frontend logs); it holds no subdirectories. */
static void rm_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
	rmdir(dir);
}

void fx_teardown(void)
{
	if (fx.fd >= 0)
		close(fx.fd);
	vre_server_destroy(fx.srv);
	munmap(fx.mem, GUEST_SIZE);
	close(fx.mem_fd);
	rm_dir(fx.dir);
}

void fx_negotiate(int fd, uint64_t f, uint64_t pf)
{
	uint64_t v;

	ck_assert_int_eq(vfront_get_u64(fd, GET_FEATURES, &v), 0);
	ck_assert_uint_eq(v & f, f);
	ck_assert_int_eq(vfront_send(fd, SET_OWNER, 0, NULL, 0, NULL, 0), 0);
	ck_assert_int_eq(vfront_get_u64(fd, GET_PROTOCOL_FEATURES, &v), 0);
	ck_assert_uint_eq(v, PF_ALL);
	ck_assert_int_eq(vfront_set_u64(fd, SET_PROTOCOL_FEATURES, pf, false), 0);
	ck_assert_int_eq(vfront_set_u64(fd, SET_FEATURES, f, true), 0);
}

int fx_mem_table(int fd)
{
	struct { uint32_t n, pad; struct region r[1]; } t = {
		.n = 1, .r = { { GUEST_GPA, GUEST_SIZE, GUEST_UVA, 0 } },
	};

	return vfront_request_ack(fd, SET_MEM_TABLE, &t, sizeof(t), &fx.mem_fd, 1);
}

void fx_ring(int fd, uint32_t idx, uint32_t num, uint32_t base)
{
	uint32_t st[2] = { idx, num };
	struct addr_msg a = {
		.index = idx, .desc = GUEST_UVA + RING_DESC + idx * 0x10000,
		.avail = GUEST_UVA + RING_AVAIL + idx * 0x10000,
		.used = GUEST_UVA + RING_USED + idx * 0x10000,
	};

	ck_assert_int_eq(vfront_request_ack(fd, SET_VRING_NUM, st, 8, NULL, 0), 0);
	st[1] = base;
	ck_assert_int_eq(vfront_request_ack(fd, SET_VRING_BASE, st, 8, NULL, 0), 0);
	ck_assert_int_eq(vfront_request_ack(fd, SET_VRING_ADDR, &a, sizeof(a), NULL, 0), 0);
}

int fx_ring_fd(int fd, uint32_t req, uint64_t v, int efd)
{
	return vfront_request_ack(fd, req, &v, 8, &efd, efd >= 0 ? 1 : 0);
}

int fx_eventfd(void)
{
	int e = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	ck_assert_int_ge(e, 0);
	return e;
}

struct vre_queue fx_queue(uint16_t idx)
{
	struct vre_dev_snapshot snap;
	struct vre_queue q;

	/* The snapshot takes and drops the lock control holds while it
	 * changes queues: the first orders our read after its last change,
	 * the second its next change after our read. */
	vre_dev_get_snapshot(fx.dev, &snap);
	q = *vre_dev_queue(fx.dev, idx);
	vre_dev_get_snapshot(fx.dev, &snap);
	return q;
}
