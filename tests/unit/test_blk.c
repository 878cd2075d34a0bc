/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * virtio-blk request parsing and the io_uring queue engine, driven over a
 * split ring built in a plain buffer, against a real temporary file.
 * Every test checks the file and the guest buffers, not only statuses.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "blk_queue.h"
#include "vdrv_packed.h"
#include "vre_vring.h"

#define QSZ 16
#define MEM_GPA 0x100000ull
#define MEM_SIZE (1u << 20)
#define DESC_GPA MEM_GPA
#define AVAIL_GPA (MEM_GPA + 0x1000)
#define USED_GPA (MEM_GPA + 0x2000)
#define DATA_GPA (MEM_GPA + 0x10000)
#define CAP_SECTORS 64ull

static uint8_t *mem;
static struct vre_mem_map map;
static struct vre_vq vq;
static struct vre_blk_disk disk;
static struct vre_blk_queue bq;
static char path[64];
static uint16_t next_desc;
static uint16_t avail_idx;
static unsigned notifies;

static void *gp(uint64_t gpa) { return mem + (gpa - MEM_GPA); }
static struct vre_desc *descs(void) { return gp(DESC_GPA); }
static struct vre_avail *avail(void) { return gp(AVAIL_GPA); }
static struct vre_used_ring *used(void) { return gp(USED_GPA); }

static void count_notify(void *arg)
{
	(void)arg;
	notifies++;
}

static void fill_file(uint8_t byte)
{
	uint8_t buf[CAP_SECTORS * 512];

	memset(buf, byte, sizeof(buf));
	ck_assert_int_eq(pwrite(disk.fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
}

static void vq_up(void)
{
	struct vre_vq_params p = {
		.size = QSZ, .event_idx = false, .indirect = true,
		.desc = gp(DESC_GPA), .driver = gp(AVAIL_GPA), .device = gp(USED_GPA),
		.mem = &map,
	};

	ck_assert_int_eq(vre_vq_init(&vq, &p), 0);
}

static void setup(void)
{
	struct vre_mem_region r = { .gpa = MEM_GPA, .size = MEM_SIZE, .uva = 0x7f0000000000ull };

	mem = aligned_alloc(4096, MEM_SIZE);
	ck_assert_ptr_nonnull(mem);
	memset(mem, 0, MEM_SIZE);
	r.hva = mem;
	vre_mem_map_init(&map);
	ck_assert_int_eq(vre_mem_map_add(&map, &r), 0);
	vq_up();
	snprintf(path, sizeof(path), "/tmp/vre-test-blk.XXXXXX");
	disk.fd = mkstemp(path);
	ck_assert_int_ge(disk.fd, 0);
	disk.dfd = -1;
	unlink(path);
	disk.geom = (struct vre_blk_geom){
		.capacity = CAP_SECTORS, .max_discard_sectors = 32,
		.max_wz_sectors = 32, .max_dwz_seg = 4,
	};
	memcpy(disk.serial, "vre-serial-123", 14);
	fill_file(0xaa);
	ck_assert_int_eq(vre_blk_queue_init(&bq, &vq, &disk, 0, count_notify, NULL), 0);
	next_desc = 0;
	avail_idx = 0;
	notifies = 0;
}

static void teardown(void)
{
	ck_assert_int_eq(vre_blk_queue_drain(&bq, 5000), 0);
	vre_blk_queue_fini(&bq);
	vre_vq_fini(&vq);
	close(disk.fd);
	free(mem);
}

struct seg {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

/* Posts one chain (direct descriptors) and returns its head. Descriptors
 * are taken round-robin: a test keeps at most QSZ of them outstanding. */
static uint16_t post(const struct seg *s, unsigned n)
{
	uint16_t head = next_desc;

	for (unsigned i = 0; i < n; i++) {
		uint16_t d = (uint16_t)((next_desc + i) % QSZ);

		descs()[d].addr = s[i].gpa;
		descs()[d].len = s[i].len;
		descs()[d].flags = (uint16_t)((s[i].write ? VRE_DESC_F_WRITE : 0) |
					      (i + 1 < n ? VRE_DESC_F_NEXT : 0));
		descs()[d].next = (uint16_t)((d + 1) % QSZ);
	}
	next_desc = (uint16_t)((next_desc + n) % QSZ);
	avail()->ring[avail_idx % QSZ] = head;
	avail_idx++;
	__atomic_store_n(&avail()->idx, avail_idx, __ATOMIC_RELEASE);
	return head;
}

/* Polls until the used index reaches want; fails the test after 5 s. */
static void run_until(uint16_t want)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (__atomic_load_n(&used()->idx, __ATOMIC_ACQUIRE) != want) {
		vre_blk_queue_poll(&bq);
		clock_gettime(CLOCK_MONOTONIC, &t);
		ck_assert_msg(t.tv_sec - t0.tv_sec < 5, "timeout: used %u want %u",
			      used()->idx, want);
	}
}

/* The used element for head (searched: completions may be out of order). */
static uint32_t used_len_of(uint16_t head)
{
	for (unsigned i = 0; i < used()->idx && i < QSZ; i++)
		if (used()->ring[i].id == head)
			return used()->ring[i].len;
	ck_abort_msg("head %u not used", head);
	return 0;
}

static void put_hdr(uint64_t gpa, uint32_t type, uint64_t sector)
{
	struct vre_blk_outhdr h = { .type = type, .sector = sector };

	memcpy(gp(gpa), &h, sizeof(h));
}

static void pattern(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 7 + seed);
}

static void read_file(uint64_t off, void *buf, size_t len)
{
	ck_assert_int_eq(pread(disk.fd, buf, len, (off_t)off), (ssize_t)len);
}

#define HDR DATA_GPA
#define BUF (DATA_GPA + 0x1000)
#define ST (DATA_GPA + 0x800)

START_TEST(test_write_then_read)
{
	uint8_t want[1024], got[1024];
	uint16_t h1, h2;

	put_hdr(HDR, VIRTIO_BLK_T_OUT, 2);
	pattern(gp(BUF), 1024, 3);
	memcpy(want, gp(BUF), 1024);
	*(uint8_t *)gp(ST) = 0xff;
	h1 = post((struct seg[]){ { HDR, 16, false }, { BUF, 1024, false },
				  { ST, 1, true } }, 3);
	run_until(1);
	ck_assert_uint_eq(*(uint8_t *)gp(ST), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(used_len_of(h1), 1);
	read_file(1024, got, sizeof(got));
	ck_assert_mem_eq(got, want, 1024);
	read_file(1024 - 512, got, 512);
	ck_assert_uint_eq(got[0], 0xaa); /* sector 1 untouched */
	ck_assert_uint_eq(got[511], 0xaa);

	/* Read it back into two buffers split across descriptors. */
	put_hdr(HDR + 0x100, VIRTIO_BLK_T_IN, 2);
	memset(gp(BUF + 0x2000), 0, 0x1000);
	*(uint8_t *)gp(ST + 1) = 0xff;
	h2 = post((struct seg[]){ { HDR + 0x100, 16, false }, { BUF + 0x2000, 100, true },
				  { BUF + 0x2400, 924, true }, { ST + 1, 1, true } }, 4);
	run_until(2);
	ck_assert_uint_eq(*(uint8_t *)gp(ST + 1), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(used_len_of(h2), 1025);
	ck_assert_mem_eq(gp(BUF + 0x2000), want, 100);
	ck_assert_mem_eq(gp(BUF + 0x2400), want + 100, 924);
	ck_assert_uint_eq(bq.stats.completed, 2);
	ck_assert_uint_eq(bq.stats.errors, 0);
}
END_TEST

/* Header in three pieces, the status sharing a descriptor with read data. */
START_TEST(test_split_header_and_shared_status)
{
	uint8_t want[512];
	uint16_t h;

	pattern(want, 512, 9);
	ck_assert_int_eq(pwrite(disk.fd, want, 512, 5 * 512), 512);
	put_hdr(HDR, VIRTIO_BLK_T_IN, 5);
	memset(gp(BUF), 0x55, 513);
	h = post((struct seg[]){ { HDR, 5, false }, { HDR + 5, 7, false },
				 { HDR + 12, 4, false }, { BUF, 513, true } }, 4);
	run_until(1);
	ck_assert_mem_eq(gp(BUF), want, 512);
	ck_assert_uint_eq(*(uint8_t *)gp(BUF + 512), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(used_len_of(h), 513);
}
END_TEST

/* A write whose header is split and whose data shares its descriptor. */
START_TEST(test_write_header_shares_data)
{
	uint8_t got[512];
	uint16_t h;

	put_hdr(HDR, VIRTIO_BLK_T_OUT, 7);
	pattern(gp(HDR + 16), 512, 1);
	h = post((struct seg[]){ { HDR, 10, false }, { HDR + 10, 518, false },
				 { ST, 1, true } }, 3);
	run_until(1);
	ck_assert_uint_eq(*(uint8_t *)gp(ST), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(used_len_of(h), 1);
	read_file(7 * 512, got, 512);
	ck_assert_mem_eq(got, gp(HDR + 16), 512);
}
END_TEST

static void expect_ioerr_write(uint64_t sector, uint32_t len)
{
	uint8_t got[CAP_SECTORS * 512], all_aa[CAP_SECTORS * 512];
	uint16_t want = (uint16_t)(used()->idx + 1), h;

	put_hdr(HDR, VIRTIO_BLK_T_OUT, sector);
	memset(gp(BUF), 0x11, len);
	*(uint8_t *)gp(ST) = 0xff;
	h = post((struct seg[]){ { HDR, 16, false }, { BUF, len, false },
				 { ST, 1, true } }, 3);
	run_until(want);
	ck_assert_uint_eq(*(uint8_t *)gp(ST), VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(used_len_of(h), 1);
	memset(all_aa, 0xaa, sizeof(all_aa));
	read_file(0, got, sizeof(got));
	ck_assert_mem_eq(got, all_aa, sizeof(got));
}

START_TEST(test_bad_ranges)
{
	expect_ioerr_write(CAP_SECTORS, 512);          /* starts at the end */
	expect_ioerr_write(CAP_SECTORS - 1, 1024);     /* runs past the end */
	expect_ioerr_write(UINT64_MAX, 512);           /* sector + n wraps */
	expect_ioerr_write(1ull << 55, 512);           /* sector << 9 wraps */
	expect_ioerr_write(0, 100);                    /* not whole sectors */
	ck_assert_uint_eq(bq.stats.errors, 5);
}
END_TEST

START_TEST(test_read_out_of_range_leaves_buffer)
{
	uint16_t h;

	put_hdr(HDR, VIRTIO_BLK_T_IN, CAP_SECTORS - 1);
	memset(gp(BUF), 0x5a, 1024);
	*(uint8_t *)gp(ST) = 0xff;
	h = post((struct seg[]){ { HDR, 16, false }, { BUF, 1024, true },
				 { ST, 1, true } }, 3);
	run_until(1);
	ck_assert_uint_eq(*(uint8_t *)gp(ST), VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(used_len_of(h), 1);
	for (unsigned i = 0; i < 1024; i++)
		ck_assert_uint_eq(((uint8_t *)gp(BUF))[i], 0x5a);
}
END_TEST

START_TEST(test_missing_status)
{
	uint8_t got[512];
	uint16_t h;

	put_hdr(HDR, VIRTIO_BLK_T_OUT, 0);
	memset(gp(BUF), 0x22, 512);
	h = post((struct seg[]){ { HDR, 16, false }, { BUF, 512, false } }, 2);
	run_until(1);
	ck_assert_uint_eq(used_len_of(h), 0);
	ck_assert_uint_eq(bq.stats.no_status, 1);
	read_file(0, got, 512);
	ck_assert_uint_eq(got[0], 0xaa); /* not written: it could not be reported */
	ck_assert_uint_eq(got[511], 0xaa);
}
END_TEST

START_TEST(test_no_readable_header)
{
	uint16_t h1, h2;

	memset(gp(BUF), 0x33, 32);
	h1 = post((struct seg[]){ { BUF, 17, true } }, 1);
	run_until(1);
	ck_assert_uint_eq(used_len_of(h1), 1);
	ck_assert_uint_eq(*(uint8_t *)gp(BUF + 16), VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(*(uint8_t *)gp(BUF + 15), 0x33); /* only the status byte */

	put_hdr(HDR, VIRTIO_BLK_T_IN, 0);
	h2 = post((struct seg[]){ { HDR, 8, false }, { BUF + 0x100, 513, true } }, 2);
	run_until(2);
	ck_assert_uint_eq(used_len_of(h2), 1);
	ck_assert_uint_eq(*(uint8_t *)gp(BUF + 0x100 + 512), VIRTIO_BLK_S_IOERR);
}
END_TEST

START_TEST(test_flush_getid_unsupp)
{
	uint16_t h1, h2, h3, h4;

	put_hdr(HDR, VIRTIO_BLK_T_FLUSH, 0);
	*(uint8_t *)gp(ST) = 0xff;
	h1 = post((struct seg[]){ { HDR, 16, false }, { ST, 1, true } }, 2);

	put_hdr(HDR + 0x40, VIRTIO_BLK_T_GET_ID, 0);
	memset(gp(BUF), 0x77, 32);
	h2 = post((struct seg[]){ { HDR + 0x40, 16, false }, { BUF, 20, true },
				  { ST + 1, 1, true } }, 3);

	put_hdr(HDR + 0x80, VIRTIO_BLK_T_GET_ID, 0);
	memset(gp(BUF + 0x100), 0x77, 32);
	h3 = post((struct seg[]){ { HDR + 0x80, 16, false }, { BUF + 0x100, 9, true } }, 2);

	put_hdr(HDR + 0xc0, 99, 0);
	h4 = post((struct seg[]){ { HDR + 0xc0, 16, false }, { ST + 2, 1, true } }, 2);
	run_until(4);

	ck_assert_uint_eq(*(uint8_t *)gp(ST), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(used_len_of(h1), 1);
	ck_assert_uint_eq(used_len_of(h2), 21);
	ck_assert_mem_eq(gp(BUF), "vre-serial-123\0\0\0\0\0\0", 20);
	ck_assert_uint_eq(*(uint8_t *)gp(ST + 1), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(used_len_of(h3), 9);
	ck_assert_mem_eq(gp(BUF + 0x100), "vre-seri", 8);
	ck_assert_uint_eq(*(uint8_t *)gp(BUF + 0x108), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(*(uint8_t *)gp(BUF + 0x109), 0x77);
	ck_assert_uint_eq(*(uint8_t *)gp(ST + 2), VIRTIO_BLK_S_UNSUPP);
	ck_assert_uint_eq(used_len_of(h4), 1);
}
END_TEST

static void put_seg(uint64_t gpa, uint64_t sector, uint32_t num, uint32_t flags)
{
	struct vre_blk_dwz_seg s = { .sector = sector, .num_sectors = num, .flags = flags };

	memcpy(gp(gpa), &s, sizeof(s));
}

/* Sends a DISCARD/WRITE_ZEROES with nseg segments already at BUF; the
 * header and first segments share one descriptor to cross a boundary. */
static uint8_t dwz(uint32_t type, unsigned nseg)
{
	uint16_t want = (uint16_t)(used()->idx + 1), h;

	put_hdr(HDR, type, 0);
	memcpy(gp(HDR + 16), gp(BUF), nseg * 16u);
	*(uint8_t *)gp(ST) = 0xff;
	if (nseg > 1)
		h = post((struct seg[]){ { HDR, 24, false },
					 { HDR + 24, 16 * nseg - 8, false },
					 { ST, 1, true } }, 3);
	else
		h = post((struct seg[]){ { HDR, 16 + 16 * nseg, false },
					 { ST, 1, true } }, 2);
	run_until(want);
	ck_assert_uint_eq(used_len_of(h), 1);
	return *(uint8_t *)gp(ST);
}

static void expect_sectors(unsigned first, unsigned n, uint8_t byte)
{
	uint8_t got[512];

	for (unsigned s = first; s < first + n; s++) {
		read_file(s * 512ull, got, 512);
		for (unsigned i = 0; i < 512; i++)
			ck_assert_msg(got[i] == byte, "sector %u byte %u is %#x, want %#x",
				      s, i, got[i], byte);
	}
}

START_TEST(test_discard_write_zeroes)
{
	put_seg(BUF, 4, 2, 0);
	put_seg(BUF + 16, 10, 3, 0);
	ck_assert_uint_eq(dwz(VIRTIO_BLK_T_DISCARD, 2), VIRTIO_BLK_S_OK);
	expect_sectors(0, 4, 0xaa);
	expect_sectors(4, 2, 0);
	expect_sectors(6, 4, 0xaa);
	expect_sectors(10, 3, 0);
	expect_sectors(13, CAP_SECTORS - 13, 0xaa);

	fill_file(0xaa);
	put_seg(BUF, 20, 1, 0);
	put_seg(BUF + 16, 30, 2, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
	put_seg(BUF + 32, 40, 0, 0); /* empty: nothing to do */
	ck_assert_uint_eq(dwz(VIRTIO_BLK_T_WRITE_ZEROES, 3), VIRTIO_BLK_S_OK);
	expect_sectors(19, 1, 0xaa);
	expect_sectors(20, 1, 0);
	expect_sectors(21, 9, 0xaa);
	expect_sectors(30, 2, 0);
	expect_sectors(32, CAP_SECTORS - 32, 0xaa);
}
END_TEST

/* Runs an aligned and an unaligned read and write through the current
 * disk.dfd; returns with everything checked against the file. */
static void direct_rounds(void)
{
	uint8_t want[1024], got[1024];
	uint16_t base = used()->idx, h;

	pattern(want, 1024, 5);
	ck_assert_int_eq(pwrite(disk.fd, want, 1024, 2 * 512), 1024);
	put_hdr(HDR, VIRTIO_BLK_T_IN, 2);
	memset(gp(BUF), 0, 1024);
	h = post((struct seg[]){ { HDR, 16, false }, { BUF, 1024, true },
				 { ST, 1, true } }, 3);
	put_hdr(HDR + 0x40, VIRTIO_BLK_T_IN, 2);
	memset(gp(BUF + 0x2008), 0, 1024);
	post((struct seg[]){ { HDR + 0x40, 16, false }, { BUF + 0x2008, 1024, true },
			     { ST + 1, 1, true } }, 3);
	run_until((uint16_t)(base + 2));
	ck_assert_uint_eq(used_len_of(h), 1025);
	ck_assert_mem_eq(gp(BUF), want, 1024);
	ck_assert_mem_eq(gp(BUF + 0x2008), want, 1024);

	put_hdr(HDR + 0x80, VIRTIO_BLK_T_OUT, 10);
	pattern(gp(BUF + 0x4000), 1024, 6);
	post((struct seg[]){ { HDR + 0x80, 16, false }, { BUF + 0x4000, 1024, false },
			     { ST + 2, 1, true } }, 3);
	put_hdr(HDR + 0xc0, VIRTIO_BLK_T_OUT, 12);
	pattern(gp(BUF + 0x5008), 1024, 7);
	post((struct seg[]){ { HDR + 0xc0, 16, false }, { BUF + 0x5008, 1024, false },
			     { ST + 3, 1, true } }, 3);
	run_until((uint16_t)(base + 4));
	for (unsigned i = 0; i < 4; i++)
		ck_assert_uint_eq(*(uint8_t *)gp(ST + i), VIRTIO_BLK_S_OK);
	read_file(10 * 512, got, 1024);
	ck_assert_mem_eq(got, gp(BUF + 0x4000), 1024);
	read_file(12 * 512, got, 1024);
	ck_assert_mem_eq(got, gp(BUF + 0x5008), 1024);
	ck_assert_uint_eq(bq.stats.errors, 0);
}

/* --direct: reads and writes through a real O_DIRECT descriptor land
 * right whether or not their buffers are aligned; and when the direct
 * descriptor refuses requests with -EINVAL (played by an epoll fd, which
 * refuses every read and write so), each is redone buffered. */
START_TEST(test_direct_io)
{
	char proc[64];

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", disk.fd);
	disk.dfd = open(proc, O_RDWR | O_DIRECT);
	if (disk.dfd >= 0) {
		direct_rounds();
		ck_assert_uint_le(bq.stats.direct_fallbacks, 2);
		close(disk.dfd);
	}
	disk.dfd = -1;
}
END_TEST

/* An O_DIRECT descriptor with 4 KiB logical blocks over the test file: a
 * loop device (autocleared when closed). -1 where there are none (not
 * root, no loop driver). */
static int loop_4k_direct(int backing)
{
	struct loop_config c;
	char dev[32];
	int ctl, n, lfd, dfd;

	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return -1;
	n = ioctl(ctl, LOOP_CTL_GET_FREE);
	close(ctl);
	if (n < 0)
		return -1;
	snprintf(dev, sizeof(dev), "/dev/loop%d", n);
	lfd = open(dev, O_RDWR | O_CLOEXEC);
	if (lfd < 0)
		return -1;
	memset(&c, 0, sizeof(c));
	c.fd = (uint32_t)backing;
	c.block_size = 4096;
	c.info.lo_flags = LO_FLAGS_AUTOCLEAR;
	if (ioctl(lfd, LOOP_CONFIGURE, &c) < 0) {
		close(lfd);
		return -1;
	}
	dfd = open(dev, O_RDWR | O_DIRECT | O_CLOEXEC);
	close(lfd);
	return dfd;
}

/* The direct descriptor refuses requests that are not whole 4 KiB blocks
 * (-EINVAL): each is redone through the buffered one; a 4 KiB-aligned
 * request stays direct. */
START_TEST(test_direct_fallback)
{
	uint8_t blk[4096], got[4096];
	uint16_t base;

	disk.dfd = loop_4k_direct(disk.fd);
	if (disk.dfd < 0)
		return; /* no loop devices here */
	direct_rounds(); /* sectors 2 and 10/12: not 4 KiB aligned */
	ck_assert_uint_eq(bq.stats.direct_fallbacks, 4);

	base = used()->idx;
	pattern(blk, 4096, 11);
	ck_assert_int_eq(pwrite(disk.fd, blk, 4096, 8 * 512), 4096);
	put_hdr(HDR, VIRTIO_BLK_T_IN, 8);
	memset(gp(BUF), 0, 4096);
	post((struct seg[]){ { HDR, 16, false }, { BUF, 4096, true },
			     { ST, 1, true } }, 3);
	put_hdr(HDR + 0x40, VIRTIO_BLK_T_OUT, 16);
	pattern(gp(BUF + 0x8000), 4096, 12);
	post((struct seg[]){ { HDR + 0x40, 16, false }, { BUF + 0x8000, 4096, false },
			     { ST + 1, 1, true } }, 3);
	run_until((uint16_t)(base + 2));
	ck_assert_uint_eq(*(uint8_t *)gp(ST), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(*(uint8_t *)gp(ST + 1), VIRTIO_BLK_S_OK);
	ck_assert_mem_eq(gp(BUF), blk, 4096);
	ck_assert_uint_eq(bq.stats.direct_fallbacks, 4);
	close(disk.dfd);
	disk.dfd = -1;
	read_file(16 * 512, got, 4096);
	ck_assert_mem_eq(got, gp(BUF + 0x8000), 4096);
}
END_TEST

/* On tmpfs, which has no ZERO_RANGE, WRITE_ZEROES without unmap falls back
 * to punching holes: the sectors still read back as zeroes. */
START_TEST(test_write_zeroes_fallback)
{
	char shm[] = "/dev/shm/vre-test-blk.XXXXXX";
	int fd = mkstemp(shm), old = disk.fd;

	if (fd < 0)
		return; /* no /dev/shm here: nothing to test */
	unlink(shm);
	if (fallocate(fd, FALLOC_FL_ZERO_RANGE, 0, 512) == 0 || errno != EOPNOTSUPP) {
		close(fd);
		return; /* this file system zeroes ranges itself */
	}
	disk.fd = fd;
	fill_file(0xaa);
	put_seg(BUF, 5, 3, 0);
	put_seg(BUF + 16, 20, 1, 0);
	ck_assert_uint_eq(dwz(VIRTIO_BLK_T_WRITE_ZEROES, 2), VIRTIO_BLK_S_OK);
	expect_sectors(4, 1, 0xaa);
	expect_sectors(5, 3, 0);
	expect_sectors(8, 12, 0xaa);
	expect_sectors(20, 1, 0);
	expect_sectors(21, CAP_SECTORS - 21, 0xaa);
	disk.fd = old;
	close(fd);
}
END_TEST

START_TEST(test_discard_write_zeroes_rejects)
{
	fill_file(0xaa);
	put_seg(BUF, 0, 1, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
	ck_assert_uint_eq(dwz(VIRTIO_BLK_T_DISCARD, 1), VIRTIO_BLK_S_UNSUPP);
	put_seg(BUF, 0, 1, 2);
	ck_assert_uint_eq(dwz(VIRTIO_BLK_T_WRITE_ZEROES, 1), VIRTIO_BLK_S_UNSUPP);
	put_seg(BUF, CAP_SECTORS - 1, 2, 0);
	ck_assert_uint_eq(dwz(VIRTIO_BLK_T_WRITE_ZEROES, 1), VIRTIO_BLK_S_IOERR);
	put_seg(BUF, UINT64_MAX - 1, 4, 0);
	ck_assert_uint_eq(dwz(VIRTIO_BLK_T_DISCARD, 1), VIRTIO_BLK_S_IOERR);
	put_seg(BUF, 0, 33, 0); /* over max_discard_sectors */
	ck_assert_uint_eq(dwz(VIRTIO_BLK_T_DISCARD, 1), VIRTIO_BLK_S_IOERR);
	/* One good segment then a bad one: nothing may be done. */
	put_seg(BUF, 0, 1, 0);
	put_seg(BUF + 16, CAP_SECTORS, 1, 0);
	ck_assert_uint_eq(dwz(VIRTIO_BLK_T_WRITE_ZEROES, 2), VIRTIO_BLK_S_IOERR);
	for (unsigned i = 0; i < 5; i++)
		put_seg(BUF + 16 * i, i, 1, 0);
	ck_assert_uint_eq(dwz(VIRTIO_BLK_T_DISCARD, 5), VIRTIO_BLK_S_UNSUPP);
	expect_sectors(0, CAP_SECTORS, 0xaa);

	/* Segment bytes that are not whole segments. */
	put_hdr(HDR, VIRTIO_BLK_T_DISCARD, 0);
	put_seg(HDR + 16, 0, 1, 0);
	post((struct seg[]){ { HDR, 16 + 12, false }, { ST, 1, true } }, 2);
	run_until((uint16_t)(used()->idx + 1));
	ck_assert_uint_eq(*(uint8_t *)gp(ST), VIRTIO_BLK_S_IOERR);
	expect_sectors(0, CAP_SECTORS, 0xaa);
}
END_TEST

START_TEST(test_readonly)
{
	disk.geom.readonly = true;
	expect_ioerr_write(0, 512);
	put_seg(BUF, 0, 1, 0);
	ck_assert_uint_eq(dwz(VIRTIO_BLK_T_DISCARD, 1), VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(dwz(VIRTIO_BLK_T_WRITE_ZEROES, 1), VIRTIO_BLK_S_IOERR);
	expect_sectors(0, CAP_SECTORS, 0xaa);
}
END_TEST

/* A full ring of reads: every one lands, with at most one notification per
 * pass that returned requests. */
START_TEST(test_burst_notify)
{
	uint16_t heads[8];
	unsigned passes = 0;
	uint16_t last = 0;
	struct timespec t0, t;

	for (unsigned s = 0; s < 8; s++) {
		uint8_t p[512];

		pattern(p, 512, s);
		ck_assert_int_eq(pwrite(disk.fd, p, 512, s * 512), 512);
	}
	for (unsigned i = 0; i < 8; i++) {
		put_hdr(HDR + 16 * i, VIRTIO_BLK_T_IN, i);
		heads[i] = post((struct seg[]){ { HDR + 16 * i, 16, false },
						{ BUF + 0x400 * i, 513, true } }, 2);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (used()->idx != 8) {
		vre_blk_queue_poll(&bq);
		if (used()->idx != last)
			passes++;
		last = used()->idx;
		clock_gettime(CLOCK_MONOTONIC, &t);
		ck_assert_int_lt(t.tv_sec - t0.tv_sec, 5);
	}
	ck_assert_uint_ge(notifies, 1);
	ck_assert_uint_le(notifies, passes);
	for (unsigned i = 0; i < 8; i++) {
		uint8_t p[512];

		pattern(p, 512, i);
		ck_assert_mem_eq(gp(BUF + 0x400 * i), p, 512);
		ck_assert_uint_eq(*(uint8_t *)gp(BUF + 0x400 * i + 512), VIRTIO_BLK_S_OK);
		ck_assert_uint_eq(used_len_of(heads[i]), 513);
	}
}
END_TEST

/* With random kernel-side delays, 8 reads finish out of order; each still
 * gets its own data and status, and the used ring names the right heads. */
START_TEST(test_out_of_order)
{
	uint16_t heads[8];
	bool in_order = true;

	vre_blk_queue_set_test_delay(&bq, 20000);
	for (unsigned s = 0; s < 8; s++) {
		uint8_t p[512];

		pattern(p, 512, 40 + s);
		ck_assert_int_eq(pwrite(disk.fd, p, 512, s * 512), 512);
	}
	for (unsigned i = 0; i < 8; i++) {
		put_hdr(HDR + 16 * i, VIRTIO_BLK_T_IN, i);
		*(uint8_t *)gp(BUF + 0x400 * i + 512) = 0xff;
		memset(gp(BUF + 0x400 * i), 0, 512);
		heads[i] = post((struct seg[]){ { HDR + 16 * i, 16, false },
						{ BUF + 0x400 * i, 513, true } }, 2);
	}
	/* Poll by hand: after every pass, a request not yet in the used ring
	 * has no status yet, and one whose status is written has all its data
	 * (the status is written after the data, before publishing). */
	{
		struct timespec t0, t;
		unsigned saw_pending = 0;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		while (used()->idx != 8) {
			vre_blk_queue_poll(&bq);
			for (unsigned i = 0; i < 8; i++) {
				uint8_t st = *(uint8_t *)gp(BUF + 0x400 * i + 512), p[512];
				bool used_now = false;

				for (unsigned k = 0; k < used()->idx; k++)
					used_now |= used()->ring[k].id == heads[i];
				if (!used_now && st == 0xff)
					saw_pending++;
				ck_assert_uint_eq(st, used_now ? VIRTIO_BLK_S_OK : 0xff);
				pattern(p, 512, 40 + i);
				if (used_now)
					ck_assert_mem_eq(gp(BUF + 0x400 * i), p, 512);
			}
			clock_gettime(CLOCK_MONOTONIC, &t);
			ck_assert_int_lt(t.tv_sec - t0.tv_sec, 5);
		}
		ck_assert_uint_gt(saw_pending, 0);
	}
	for (unsigned i = 0; i < 8; i++) {
		uint8_t p[512];

		pattern(p, 512, 40 + i);
		ck_assert_mem_eq(gp(BUF + 0x400 * i), p, 512);
		ck_assert_uint_eq(*(uint8_t *)gp(BUF + 0x400 * i + 512), VIRTIO_BLK_S_OK);
		ck_assert_uint_eq(used_len_of(heads[i]), 513);
		if (used()->ring[i].id != heads[i])
			in_order = false;
	}
	/* 8 delays drawn from 0..20 ms land in submission order with
	 * probability about 1/8!: this is what the knob is for. */
	ck_assert_msg(!in_order, "8 delayed reads completed in submission order");
}
END_TEST

/* More requests than slots: the engine takes only what it has slots for,
 * leaves the rest in the ring, and serves them as slots come free. */
START_TEST(test_slot_exhaustion)
{
	uint16_t heads[8];

	vre_blk_queue_fini(&bq);
	ck_assert_int_eq(vre_blk_queue_init(&bq, &vq, &disk, 3, count_notify, NULL), 0);
	vre_blk_queue_set_test_delay(&bq, 5000);
	for (unsigned i = 0; i < 8; i++) {
		uint8_t p[512];

		pattern(p, 512, 20 + i);
		ck_assert_int_eq(pwrite(disk.fd, p, 512, (30 + i) * 512), 512);
		put_hdr(HDR + 16 * i, VIRTIO_BLK_T_IN, 30 + i);
		heads[i] = post((struct seg[]){ { HDR + 16 * i, 16, false },
						{ BUF + 0x400 * i, 513, true } }, 2);
	}
	ck_assert_int_eq(vre_blk_queue_poll(&bq), 3);
	ck_assert_uint_eq(vre_blk_queue_inflight(&bq), 3);
	ck_assert(vre_vq_avail_pending(&vq));
	run_until(8);
	for (unsigned i = 0; i < 8; i++) {
		uint8_t p[512];

		pattern(p, 512, 20 + i);
		ck_assert_mem_eq(gp(BUF + 0x400 * i), p, 512);
		ck_assert_uint_eq(used_len_of(heads[i]), 513);
	}
	ck_assert_uint_eq(bq.stats.requests, 8);
}
END_TEST

/* A chain taken by a backend that died is resubmitted from the inflight
 * region to the next one, which must serve it like any other. */
START_TEST(test_inflight_resubmit)
{
	size_t len = vre_inflight_queue_bytes(QSZ, false);
	void *region = calloc(1, len);
	struct vre_chain c[4];
	struct iovec pool[16];
	uint8_t got[512];
	uint16_t h1, h2;

	vre_blk_queue_fini(&bq);
	ck_assert_int_eq(vre_vq_inflight_attach(&vq, region, len, 0), 0);
	put_hdr(HDR, VIRTIO_BLK_T_OUT, 3);
	memset(gp(BUF), 0x31, 512);
	h1 = post((struct seg[]){ { HDR, 16, false }, { BUF, 512, false },
				  { ST, 1, true } }, 3);
	put_hdr(HDR + 0x40, VIRTIO_BLK_T_OUT, 9);
	memset(gp(BUF + 0x200), 0x32, 512);
	h2 = post((struct seg[]){ { HDR + 0x40, 16, false }, { BUF + 0x200, 512, false },
				  { ST + 1, 1, true } }, 3);
	ck_assert_int_eq(vre_vq_fetch(&vq, c, 4, pool, 16), 2);
	/* The process dies here: nothing was written or completed. */
	vre_vq_fini(&vq);
	expect_sectors(3, 1, 0xaa);

	vq_up();
	ck_assert_int_eq(vre_vq_inflight_attach(&vq, region, len, 0), 2);
	ck_assert_int_eq(vre_blk_queue_init(&bq, &vq, &disk, 0, count_notify, NULL), 0);
	run_until(2);
	ck_assert_uint_eq(used_len_of(h1), 1);
	ck_assert_uint_eq(used_len_of(h2), 1);
	ck_assert_uint_eq(*(uint8_t *)gp(ST), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(*(uint8_t *)gp(ST + 1), VIRTIO_BLK_S_OK);
	read_file(3 * 512, got, 512);
	ck_assert_uint_eq(got[0], 0x31);
	ck_assert_uint_eq(got[511], 0x31);
	read_file(9 * 512, got, 512);
	ck_assert_uint_eq(got[0], 0x32);
	ck_assert_uint_eq(got[511], 0x32);
	ck_assert_uint_eq(bq.stats.requests, 2);
	vre_blk_queue_drain(&bq, 1000);
	vre_blk_queue_fini(&bq);
	vre_vq_fini(&vq);
	vq_up();
	ck_assert_int_eq(vre_blk_queue_init(&bq, &vq, &disk, 0, count_notify, NULL), 0);
	free(region);
}
END_TEST

/* The same engine over a packed ring: two laps of delayed reads and
 * writes, completed out of order, each back with its own id and length. */
START_TEST(test_packed_ring)
{
	static struct pdrv d;
	struct vre_vq pvq;
	struct vre_blk_queue pbq;
	struct vre_vq_params p = {
		.size = QSZ, .packed = true, .event_idx = false, .indirect = true,
		.desc = gp(MEM_GPA + 0x4000), .driver = gp(MEM_GPA + 0x5000),
		.device = gp(MEM_GPA + 0x5100), .mem = &map,
	};
	struct timespec t0, t;
	bool in_order = true;

	ck_assert_int_eq(vre_vq_init(&pvq, &p), 0);
	pdrv_init(&d, QSZ, p.desc, p.driver, p.device);
	ck_assert_int_eq(vre_blk_queue_init(&pbq, &pvq, &disk, 0, count_notify, NULL), 0);
	vre_blk_queue_set_test_delay(&pbq, 10000);
	for (unsigned lap = 0; lap < 2; lap++) {
		unsigned got = 0, order = 0;

		/* ids 0..5 read sectors 8+id; id 6 writes sector 20 + lap. */
		for (uint16_t id = 0; id < 7; id++) {
			uint64_t hdr = HDR + 32 * id, buf = BUF + 0x400 * id;
			uint8_t pat[512];

			if (id < 6) {
				pattern(pat, 512, 60 + id + lap);
				ck_assert_int_eq(pwrite(disk.fd, pat, 512, (8 + id) * 512), 512);
				put_hdr(hdr, VIRTIO_BLK_T_IN, 8 + id);
				memset(gp(buf), 0, 513);
				ck_assert_int_eq(pdrv_post(&d, (struct pdrv_desc[]){
					{ hdr, 16, 0 }, { buf, 513, VRE_DESC_F_WRITE } }, 2, id, false), 0);
			} else {
				put_hdr(hdr, VIRTIO_BLK_T_OUT, 20 + lap);
				pattern(gp(buf), 512, 90 + lap);
				*(uint8_t *)gp(ST) = 0xff;
				ck_assert_int_eq(pdrv_post(&d, (struct pdrv_desc[]){
					{ hdr, 16, 0 }, { buf, 512, 0 },
					{ ST, 1, VRE_DESC_F_WRITE } }, 3, id, false), 0);
			}
		}
		clock_gettime(CLOCK_MONOTONIC, &t0);
		while (got < 7) {
			uint16_t id;
			uint32_t len;
			int r;

			vre_blk_queue_poll(&pbq);
			while ((r = pdrv_get_used(&d, &id, &len)) == 1) {
				uint8_t pat[512];

				if (id != order++)
					in_order = false;
				got++;
				if (id < 6) {
					pattern(pat, 512, 60 + id + lap);
					ck_assert_uint_eq(len, 513);
					ck_assert_mem_eq(gp(BUF + 0x400 * id), pat, 512);
					ck_assert_uint_eq(*(uint8_t *)gp(BUF + 0x400 * id + 512),
							  VIRTIO_BLK_S_OK);
				} else {
					ck_assert_uint_eq(id, 6);
					ck_assert_uint_eq(len, 1);
					ck_assert_uint_eq(*(uint8_t *)gp(ST), VIRTIO_BLK_S_OK);
					read_file((20 + lap) * 512ull, pat, 512);
					ck_assert_mem_eq(pat, gp(BUF + 0x400 * 6), 512);
				}
			}
			ck_assert_int_eq(r, 0);
			clock_gettime(CLOCK_MONOTONIC, &t);
			ck_assert_int_lt(t.tv_sec - t0.tv_sec, 5);
		}
	}
	ck_assert_msg(!in_order, "14 delayed requests completed in submission order");
	ck_assert_int_eq(vre_blk_queue_drain(&pbq, 1000), 0);
	vre_blk_queue_fini(&pbq);
	vre_vq_fini(&pvq);
}
END_TEST

/*
 * Dirty logging (live migration): every byte the engine and the ring wrote
 * into guest memory (read data across a page boundary, a GET_ID, status
 * bytes, used entries) has its page's bit set. The shadow is a copy of
 * guest memory taken before the requests ran: every byte that changed
 * was written by the device. _i: 0 split, 1 packed; 2, 3: logging off
 * (not a bit may be set).
 */
START_TEST(test_dirty_log)
{
	bool packed = _i & 1, off = _i & 2;
	static struct pdrv d;
	static uint8_t before[MEM_SIZE];
	uint64_t bits[(MEM_GPA + MEM_SIZE) / 4096 / 64] = { 0 };
	struct vre_dirty_log log = { .bits = bits, .npages = (MEM_GPA + MEM_SIZE) / 4096 };
	struct vre_vq pvq, *q = &vq;
	struct vre_blk_queue pbq, *b = &bq;
	uint8_t pat[3 * 512];
	unsigned changed = 0, marked = 0;
	const uint64_t rbuf = BUF + 0x3000 - 700; /* 1536 bytes over a page boundary */

	if (packed) {
		struct vre_vq_params p = {
			.size = QSZ, .packed = true, .indirect = true,
			.desc = gp(MEM_GPA + 0x4000), .driver = gp(MEM_GPA + 0x5000),
			.device = gp(MEM_GPA + 0x5100), .mem = &map,
		};

		ck_assert_int_eq(vre_vq_init(&pvq, &p), 0);
		pdrv_init(&d, QSZ, p.desc, p.driver, p.device);
		ck_assert_int_eq(vre_blk_queue_init(&pbq, &pvq, &disk, 0, count_notify, NULL), 0);
		q = &pvq;
		b = &pbq;
	}
	if (!off)
		vre_vq_set_log(q, &log, true, packed ? MEM_GPA + 0x4000 : USED_GPA,
			       MEM_GPA + 0x5100);
	pattern(pat, sizeof(pat), 77);
	ck_assert_int_eq(pwrite(disk.fd, pat, sizeof(pat), 3 * 512), (ssize_t)sizeof(pat));
	put_hdr(HDR, VIRTIO_BLK_T_IN, 3);
	put_hdr(HDR + 0x100, VIRTIO_BLK_T_GET_ID, 0);
	put_hdr(HDR + 0x200, VIRTIO_BLK_T_OUT, 9);
	memset(gp(rbuf), 0xee, sizeof(pat) + 1);
	memset(gp(BUF + 0x8000 - 10), 0xee, 21);
	*(uint8_t *)gp(ST) = 0xee;
	if (packed) {
		ck_assert_int_eq(pdrv_post(&d, (struct pdrv_desc[]){ { HDR, 16, 0 },
			{ rbuf, sizeof(pat) + 1, VRE_DESC_F_WRITE } }, 2, 0, false), 0);
		ck_assert_int_eq(pdrv_post(&d, (struct pdrv_desc[]){ { HDR + 0x100, 16, 0 },
			{ BUF + 0x8000 - 10, 21, VRE_DESC_F_WRITE } }, 2, 1, false), 0);
		ck_assert_int_eq(pdrv_post(&d, (struct pdrv_desc[]){ { HDR + 0x200, 16, 0 },
			{ BUF, 512, 0 }, { ST, 1, VRE_DESC_F_WRITE } }, 3, 2, false), 0);
		memcpy(before, mem, MEM_SIZE); /* after the driver's own writes */
		for (unsigned got = 0, k = 0; got < 3 && k < 5000000; k++) {
			uint16_t id;
			uint32_t len;

			vre_blk_queue_poll(b);
			while (pdrv_get_used(&d, &id, &len) == 1)
				got++;
		}
	} else {
		post((struct seg[]){ { HDR, 16, false }, { rbuf, sizeof(pat) + 1, true } }, 2);
		post((struct seg[]){ { HDR + 0x100, 16, false }, { BUF + 0x8000 - 10, 21, true } }, 2);
		post((struct seg[]){ { HDR + 0x200, 16, false }, { BUF, 512, false },
				     { ST, 1, true } }, 3);
		memcpy(before, mem, MEM_SIZE); /* after the driver's own writes */
		run_until(3);
	}
	ck_assert_mem_eq(gp(rbuf), pat, sizeof(pat));
	ck_assert_uint_eq(*(uint8_t *)gp(ST), VIRTIO_BLK_S_OK);
	for (uint64_t off_b = 0; off_b < MEM_SIZE; off_b++) {
		uint64_t page = (MEM_GPA + off_b) / 4096;

		if (mem[off_b] == before[off_b])
			continue;
		changed++;
		if (!off && !((bits[page / 64] >> (page % 64)) & 1))
			ck_abort_msg("byte at gpa 0x%llx written, page not logged",
				     (unsigned long long)(MEM_GPA + off_b));
	}
	for (unsigned i = 0; i < sizeof(bits) / 8; i++)
		marked += (unsigned)__builtin_popcountll(bits[i]);
	ck_assert_uint_gt(changed, sizeof(pat));
	if (off)
		ck_assert_uint_eq(marked, 0);
	else
		ck_assert_uint_le(marked, 8); /* the pages written, not the whole map */
	if (packed) {
		ck_assert_int_eq(vre_blk_queue_drain(&pbq, 1000), 0);
		vre_blk_queue_fini(&pbq);
		vre_vq_fini(&pvq);
	}
}
END_TEST

static uint64_t rnd_state = 88172645463325252ull;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

/* Parser properties over random chains (random splits of a random header,
 * segments and buffers): whatever it accepts lies inside the disk and the
 * chain, and it never touches bytes outside the iovecs (ASan checks). */
START_TEST(test_parse_random)
{
	static uint8_t bytes[8192];
	static struct iovec civ[40], out[16];
	static const uint32_t types[] = { 0, 1, 4, 8, 11, 13, 2, 0xffffffff };
	struct vre_blk_geom g = { .capacity = 1000, .max_discard_sectors = 64,
				  .max_wz_sectors = 64, .max_dwz_seg = 4 };

	for (unsigned iter = 0; iter < 200000; iter++) {
		struct vre_chain c = { .iov = civ };
		struct vre_blk_req r;
		unsigned pos = 0, n = 1 + rnd() % 6;
		struct vre_blk_outhdr *h = (void *)bytes;

		for (unsigned i = 0; i < 64; i++)
			bytes[i] = (uint8_t)rnd();
		h->type = types[rnd() % 8];
		h->sector = rnd() % 4 == 0 ? rnd() : rnd() % 1010;
		if (rnd() % 2) {
			struct vre_blk_dwz_seg *sg = (void *)(bytes + 16);

			for (unsigned i = 0; i < 3; i++) {
				sg[i].sector = rnd() % 1100;
				sg[i].num_sectors = (uint32_t)(rnd() % 80);
				sg[i].flags = (uint32_t)(rnd() % 3);
			}
		}
		for (unsigned i = 0; i < n; i++) {
			static const unsigned lens[] = { 0, 1, 5, 16, 32, 48, 512, 1024, 513 };
			unsigned len = rnd() % 2 ? lens[rnd() % 9] : (unsigned)(rnd() % 700);

			if (pos + len > sizeof(bytes))
				len = 0;
			civ[i] = (struct iovec){ bytes + pos, len };
			pos += len;
			if (rnd() % 3 || c.nw) {
				if (c.nw || rnd() % 2) {
					c.nw++;
					c.wlen += len;
				} else {
					c.nr++;
					c.rlen += len;
				}
			} else {
				c.nr++;
				c.rlen += len;
			}
		}
		g.readonly = rnd() % 8 == 0;
		vre_blk_parse(&g, &c, &r, out, 16);
		ck_assert_uint_le(r.status, VIRTIO_BLK_S_UNSUPP);
		if (r.status_ptr) {
			ck_assert(r.status_ptr >= bytes);
			ck_assert(r.status_ptr < bytes + pos);
		}
		if (r.op == VRE_BLK_OP_READ || r.op == VRE_BLK_OP_WRITE) {
			uint64_t sum = 0;

			ck_assert(r.len > 0 && r.len % 512 == 0);
			ck_assert_uint_le(r.offset + r.len, g.capacity * 512);
			ck_assert(!(g.readonly && r.op == VRE_BLK_OP_WRITE));
			for (unsigned i = 0; i < r.niov; i++) {
				ck_assert((uint8_t *)out[i].iov_base >= bytes);
				ck_assert((uint8_t *)out[i].iov_base + out[i].iov_len <=
					  bytes + pos);
				/* READ data never covers the status byte. */
				ck_assert(r.op == VRE_BLK_OP_WRITE ||
					  r.status_ptr < (uint8_t *)out[i].iov_base ||
					  r.status_ptr >= (uint8_t *)out[i].iov_base + out[i].iov_len);
				sum += out[i].iov_len;
			}
			ck_assert_uint_eq(sum, r.len);
		}
		if (r.op == VRE_BLK_OP_DISCARD || r.op == VRE_BLK_OP_WRITE_ZEROES) {
			ck_assert(!g.readonly);
			ck_assert_uint_ge(r.nrange, 1);
			for (unsigned i = 0; i < r.nrange; i++) {
				ck_assert_uint_le(r.range[i].offset + r.range[i].len,
						  g.capacity * 512);
				ck_assert_uint_le(r.range[i].len, 64 * 512);
			}
		}
		if (r.op != VRE_BLK_OP_NONE)
			ck_assert_ptr_nonnull(r.status_ptr);
	}
}
END_TEST

/* Packed ring: chains taken by a backend that died come back from the
 * packed inflight region and are served, with the driver seeing each id
 * exactly once. */
START_TEST(test_packed_inflight_resubmit)
{
	static struct pdrv d;
	struct vre_vq pvq;
	struct vre_blk_queue pbq;
	struct vre_vq_params p = {
		.size = QSZ, .packed = true, .event_idx = false, .indirect = true,
		.desc = gp(MEM_GPA + 0x4000), .driver = gp(MEM_GPA + 0x5000),
		.device = gp(MEM_GPA + 0x5100), .mem = &map,
	};
	size_t len = vre_inflight_queue_bytes(QSZ, true);
	void *region = calloc(1, len);
	struct vre_chain c[4];
	struct iovec pool[16];
	struct timespec t0, t;
	unsigned seen[3] = { 0 }, got = 0;
	uint8_t b[512];

	ck_assert_int_eq(vre_vq_init(&pvq, &p), 0);
	ck_assert_int_eq(vre_vq_inflight_attach(&pvq, region, len, 0), 0);
	pdrv_init(&d, QSZ, p.desc, p.driver, p.device);
	for (uint16_t id = 0; id < 3; id++) {
		put_hdr(HDR + 32 * id, VIRTIO_BLK_T_OUT, 40 + id);
		memset(gp(BUF + 0x200 * id), 0x41 + id, 512);
		*(uint8_t *)gp(ST + id) = 0xff;
		ck_assert_int_eq(pdrv_post(&d, (struct pdrv_desc[]){
			{ HDR + 32 * id, 16, 0 }, { BUF + 0x200 * id, 512, 0 },
			{ ST + id, 1, VRE_DESC_F_WRITE } }, 3, id, false), 0);
	}
	ck_assert_int_eq(vre_vq_fetch(&pvq, c, 4, pool, 16), 3);
	vre_vq_fini(&pvq); /* killed: nothing written, nothing completed */
	expect_sectors(40, 3, 0xaa);

	ck_assert_int_eq(vre_vq_init(&pvq, &p), 0);
	ck_assert_int_eq(vre_vq_inflight_attach(&pvq, region, len, 0), 3);
	ck_assert_int_eq(vre_blk_queue_init(&pbq, &pvq, &disk, 0, count_notify, NULL), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (got < 3) {
		uint16_t id;
		uint32_t ulen;
		int r;

		vre_blk_queue_poll(&pbq);
		while ((r = pdrv_get_used(&d, &id, &ulen)) == 1) {
			ck_assert_uint_lt(id, 3);
			ck_assert_uint_eq(ulen, 1);
			seen[id]++;
			got++;
		}
		ck_assert_int_eq(r, 0);
		clock_gettime(CLOCK_MONOTONIC, &t);
		ck_assert_int_lt(t.tv_sec - t0.tv_sec, 5);
	}
	for (unsigned id = 0; id < 3; id++) {
		ck_assert_uint_eq(seen[id], 1);
		ck_assert_uint_eq(*(uint8_t *)gp(ST + id), VIRTIO_BLK_S_OK);
		read_file((40 + id) * 512ull, b, 512);
		ck_assert_uint_eq(b[0], 0x41 + id);
		ck_assert_uint_eq(b[511], 0x41 + id);
	}
	ck_assert_uint_eq(pbq.stats.requests, 3);
	ck_assert_int_eq(vre_blk_queue_drain(&pbq, 1000), 0);
	vre_blk_queue_fini(&pbq);
	vre_vq_fini(&pvq);
	free(region);
}
END_TEST

/* epoll_wait that retries when io_uring's task work interrupts it (a
 * sleeping worker just wakes early then). */
static int wait_ready(int ep, int ms)
{
	struct epoll_event ev;
	struct timespec t0, t;
	int n;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		n = epoll_wait(ep, &ev, 1, ms);
		if (n >= 0 || errno != EINTR)
			return n;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > ms)
			return 0;
	}
}

/* The wake fd a worker sleeps on: quiet when there is nothing, readable on
 * an I/O completion (so the worker may sleep while I/O runs), and again on
 * a kick, when watched edge-triggered as the worker does. */
START_TEST(test_wake_fd)
{
	int kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), w, outer, dupw;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET };
	uint64_t one = 1;
	uint8_t p[512];

	ck_assert_int_ge(kick, 0);
	w = vre_blk_queue_wake_fd(&bq, kick);
	ck_assert_int_ge(w, 0);
	ck_assert_int_eq(vre_blk_queue_wake_fd(&bq, kick), w);
	outer = epoll_create1(EPOLL_CLOEXEC);
	dupw = dup(w);
	ck_assert_int_eq(epoll_ctl(outer, EPOLL_CTL_ADD, dupw, &ev), 0);
	ck_assert_int_eq(wait_ready(outer, 0), 0);
	ck_assert(!vre_blk_queue_arm(&bq));

	pattern(p, 512, 77);
	ck_assert_int_eq(pwrite(disk.fd, p, 512, 3 * 512), 512);
	vre_blk_queue_set_test_delay(&bq, 300000);
	vre_blk_queue_disarm(&bq);
	put_hdr(HDR, VIRTIO_BLK_T_IN, 3);
	post((struct seg[]){ { HDR, 16, false }, { BUF, 513, true } }, 2);
	ck_assert_int_eq(vre_blk_queue_poll(&bq), 1);
	ck_assert_uint_eq(vre_blk_queue_inflight(&bq), 1);
	/* In flight, nothing to reap yet (a 0..300 ms delay): may sleep. */
	if (!io_uring_cq_ready(&bq.ring))
		ck_assert(!vre_blk_queue_arm(&bq));
	ck_assert_int_eq(wait_ready(outer, 3000), 1);
	ck_assert(vre_blk_queue_arm(&bq)); /* the completion waits to be reaped */
	run_until(1);
	ck_assert_mem_eq(gp(BUF), p, 512);
	ck_assert_uint_eq(vre_blk_queue_inflight(&bq), 0);

	ck_assert_int_eq(wait_ready(outer, 0), 0);
	ck_assert_int_eq(write(kick, &one, 8), 8);
	ck_assert_int_eq(wait_ready(outer, 1000), 1);
	ck_assert_int_eq(write(kick, &one, 8), 8);
	ck_assert_int_eq(wait_ready(outer, 1000), 1);
	close(outer);
	close(dupw);
	close(kick);
}
END_TEST

/* Parser alone: a chain too long for the request's iovecs is refused. */
START_TEST(test_parse_too_many_iov)
{
	static struct iovec civ[VRE_BLK_MAX_IOV + 3];
	static struct iovec out[VRE_BLK_MAX_IOV];
	static uint8_t data[(VRE_BLK_MAX_IOV + 1) * 512];
	struct vre_blk_outhdr h = { .type = VIRTIO_BLK_T_IN, .sector = 0 };
	uint8_t st = 0xff;
	struct vre_chain c = { .iov = civ, .nr = 1, .nw = VRE_BLK_MAX_IOV + 2 };
	struct vre_blk_geom g = { .capacity = 1 << 20 };
	struct vre_blk_req r;

	civ[0] = (struct iovec){ &h, sizeof(h) };
	c.rlen = sizeof(h);
	for (unsigned i = 0; i < VRE_BLK_MAX_IOV + 1; i++)
		civ[1 + i] = (struct iovec){ data + 512 * i, 512 };
	civ[VRE_BLK_MAX_IOV + 2] = (struct iovec){ &st, 1 };
	c.wlen = (VRE_BLK_MAX_IOV + 1) * 512ull + 1;
	vre_blk_parse(&g, &c, &r, out, VRE_BLK_MAX_IOV);
	ck_assert_int_eq(r.op, VRE_BLK_OP_NONE);
	ck_assert_uint_eq(r.status, VIRTIO_BLK_S_IOERR);
	ck_assert_ptr_eq(r.status_ptr, &st);
	ck_assert_uint_eq(vre_blk_finish(&r, r.status, 0), 1);
	ck_assert_uint_eq(st, VIRTIO_BLK_S_IOERR);

	/* One iovec fewer fits. */
	c.nw--;
	civ[VRE_BLK_MAX_IOV + 1] = (struct iovec){ &st, 1 };
	c.wlen -= 512;
	vre_blk_parse(&g, &c, &r, out, VRE_BLK_MAX_IOV);
	ck_assert_int_eq(r.op, VRE_BLK_OP_READ);
	ck_assert_uint_eq(r.niov, VRE_BLK_MAX_IOV);
	ck_assert_uint_eq(r.len, VRE_BLK_MAX_IOV * 512ull);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("blk");
	TCase *tc = tcase_create("blk");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_write_then_read);
	tcase_add_test(tc, test_split_header_and_shared_status);
	tcase_add_test(tc, test_write_header_shares_data);
	tcase_add_test(tc, test_bad_ranges);
	tcase_add_test(tc, test_read_out_of_range_leaves_buffer);
	tcase_add_test(tc, test_missing_status);
	tcase_add_test(tc, test_no_readable_header);
	tcase_add_test(tc, test_flush_getid_unsupp);
	tcase_add_test(tc, test_discard_write_zeroes);
	tcase_add_test(tc, test_discard_write_zeroes_rejects);
	tcase_add_test(tc, test_write_zeroes_fallback);
	tcase_add_test(tc, test_direct_io);
	tcase_add_test(tc, test_direct_fallback);
	tcase_add_test(tc, test_readonly);
	tcase_add_test(tc, test_burst_notify);
	tcase_add_test(tc, test_out_of_order);
	tcase_add_test(tc, test_slot_exhaustion);
	tcase_add_test(tc, test_inflight_resubmit);
	tcase_add_test(tc, test_parse_too_many_iov);
	tcase_add_test(tc, test_wake_fd);
	tcase_add_test(tc, test_packed_ring);
	tcase_add_test(tc, test_packed_inflight_resubmit);
	tcase_add_test(tc, test_parse_random);
	tcase_add_loop_test(tc, test_dirty_log, 0, 4);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
