/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A frontend that shrinks guest memory under a running device (vre_fault.h):
 * seals where the file allows them; elsewhere the SIGBUS is contained to the
 * one device, on a worker and on the control thread, while another device on
 * the same worker keeps completing requests; and a SIGBUS outside guest
 * memory still kills the process.
 *
 * The device here is a "stamp" model: a worker fetches every chain, writes a
 * stamp (the chain's head id and a serial) into its writable buffer and
 * completes it, so each completion proves the worker read the ring and wrote
 * guest memory.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h" /* white-box: the registry itself */
#include "vfront.h"
#include "vre_control.h"
#include "vre_fault.h"
#include "vre_worker.h"

enum {
	GET_FEATURES = 1, SET_FEATURES, SET_OWNER, SET_MEM_TABLE = 5,
	SET_VRING_NUM = 8, SET_VRING_ADDR, SET_VRING_BASE, GET_VRING_BASE,
	SET_VRING_KICK, SET_VRING_CALL, GET_PROTOCOL_FEATURES = 15,
	SET_PROTOCOL_FEATURES, SET_VRING_ENABLE = 18, GET_INFLIGHT_FD = 31,
	SET_INFLIGHT_FD, ADD_MEM_REG = 37,
};

#define F_PROTOCOL (1ull << 30)
#define F_VERSION_1 (1ull << 32)
#define PF_REPLY_ACK (1ull << 3)
#define PF_INFLIGHT (1ull << 12)
#define PF_MEM_SLOTS (1ull << 15)

#define QSIZE 16u
#define MEM_SIZE (1u << 20)
#define GPA 0x100000ull
#define UVA 0x7f3400000000ull
#define DESC_OFF 0x1000u
#define AVAIL_OFF 0x2000u
#define USED_OFF 0x3000u
#define BUF_OFF 0x10000u
#define BUF_LEN 256u
#define WAIT_MS 5000

/* ---- the stamp device --------------------------------------------------- */

struct stamp_q {
	struct vre_poll_item it;
	struct vre_queue *q;
	struct iovec pool[64];
	uint32_t serial;
};

struct stamp {
	struct vre_device_ops ops;
	struct vre_worker *w;
	struct stamp_q sq[1];
	void *ring_hva;      /* where control mapped the desc table */
	atomic_int running;
};

static int stamp_poll(struct vre_poll_item *it)
{
	struct stamp_q *sq = it->ctx;
	struct vre_vq *vq = &sq->q->vq;
	struct vre_chain ch[VRE_BURST];
	struct vre_used used[VRE_BURST];
	int n = vre_vq_fetch(vq, ch, VRE_BURST, sq->pool, 64);

	if (n <= 0)
		return 0;
	for (int i = 0; i < n; i++) {
		uint32_t stamp[2] = { ch[i].id, ++sq->serial }, len = 0;

		if (ch[i].nw && ch[i].iov[ch[i].nr].iov_len >= sizeof(stamp)) {
			memcpy(ch[i].iov[ch[i].nr].iov_base, stamp, sizeof(stamp));
			len = sizeof(stamp);
		}
		used[i] = vre_used_of(&ch[i], len);
	}
	vre_vq_complete(vq, used, (unsigned)n);
	if (vre_vq_needs_notify(vq))
		vre_queue_notify(sq->q);
	return n;
}

static bool stamp_arm(struct vre_poll_item *it)
{
	struct stamp_q *sq = it->ctx;

	return vre_vq_notify_enable(&sq->q->vq);
}

static void stamp_disarm(struct vre_poll_item *it)
{
	struct stamp_q *sq = it->ctx;

	vre_vq_notify_disable(&sq->q->vq);
}

static int stamp_start(void *ctx, struct vre_queue *q)
{
	struct stamp *s = ctx;
	struct stamp_q *sq = &s->sq[q->index];

	memset(&sq->it, 0, sizeof(sq->it));
	sq->q = q;
	sq->it.poll = stamp_poll;
	sq->it.arm = stamp_arm;
	sq->it.disarm = stamp_disarm;
	sq->it.wake_fd = q->kick_fd;
	sq->it.ctx = sq;
	sq->it.name = "stamp";
	s->ring_hva = q->vq.sp.desc;
	q->dp = sq;
	atomic_fetch_add(&s->running, 1);
	return vre_worker_add(s->w, &sq->it);
}

static void stamp_stop(void *ctx, struct vre_queue *q)
{
	struct stamp *s = ctx;

	vre_worker_remove(&s->sq[q->index].it);
	q->dp = NULL;
	atomic_fetch_sub(&s->running, 1);
}

static void stamp_init(struct stamp *s, struct vre_worker *w)
{
	memset(s, 0, sizeof(*s));
	s->w = w;
	s->ops = (struct vre_device_ops){
		.name = "stamp", .features = F_VERSION_1, .max_queues = 1,
		.queue_start = stamp_start, .queue_stop = stamp_stop,
	};
}

/* ---- the frontend: one split ring over a memfd -------------------------- */

struct front {
	int sock;
	int memfd;
	uint8_t *mem;        /* the frontend's own view; NULL once dropped */
	int kick, call;
	uint16_t avail_idx;
	uint16_t used_seen;
	uint32_t serial;     /* stamps seen */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void nap_us(unsigned us)
{
	struct timespec ts = { 0, (long)us * 1000 };

	nanosleep(&ts, NULL);
}

static int make_memfd(const char *name, bool sealable, size_t size)
{
	int fd = memfd_create(name, MFD_CLOEXEC | (sealable ? MFD_ALLOW_SEALING : 0));

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
	return fd;
}

static void negotiate(int fd, uint64_t pf)
{
	uint64_t v;

	ck_assert_int_eq(vfront_get_u64(fd, GET_FEATURES, &v), 0);
	ck_assert_uint_eq(v & F_VERSION_1, F_VERSION_1);
	ck_assert_int_eq(vfront_send(fd, SET_OWNER, 0, NULL, 0, NULL, 0), 0);
	ck_assert_int_eq(vfront_get_u64(fd, GET_PROTOCOL_FEATURES, &v), 0);
	ck_assert_uint_eq(v & pf, pf);
	ck_assert_int_eq(vfront_set_u64(fd, SET_PROTOCOL_FEATURES, pf | PF_REPLY_ACK, false), 0);
	ck_assert_int_eq(vfront_set_u64(fd, SET_FEATURES, F_VERSION_1 | F_PROTOCOL, true), 0);
}

static int mem_table(int sock, int memfd)
{
	struct { uint32_t n, pad; uint64_t gpa, size, uva, off; } t = {
		.n = 1, .gpa = GPA, .size = MEM_SIZE, .uva = UVA, .off = 0,
	};

	return vfront_request_ack(sock, SET_MEM_TABLE, &t, sizeof(t), &memfd, 1);
}

/* Connects, negotiates (protocol features pf) and hands over memory. */
static void front_connect(struct front *f, const char *path, bool sealable, uint64_t pf)
{
	memset(f, 0, sizeof(*f));
	f->sock = vfront_connect(path, VFRONT_TIMEOUT_MS);
	ck_assert_int_ge(f->sock, 0);
	f->memfd = make_memfd("guest", sealable, MEM_SIZE);
	f->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, f->memfd, 0);
	ck_assert_ptr_ne(f->mem, MAP_FAILED);
	f->kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	f->call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ck_assert(f->kick >= 0 && f->call >= 0);
	negotiate(f->sock, pf);
	ck_assert_int_eq(mem_table(f->sock, f->memfd), 0);
}

/* Configures queue 0; enabled (and so running) when enable is set. */
static void front_ring(struct front *f, bool enable)
{
	uint32_t st[2] = { 0, QSIZE };
	struct { uint32_t index, flags; uint64_t desc, used, avail, log; } a = {
		.desc = UVA + DESC_OFF, .used = UVA + USED_OFF, .avail = UVA + AVAIL_OFF,
	};
	uint64_t idx0 = 0;

	ck_assert_int_eq(vfront_request_ack(f->sock, SET_VRING_NUM, st, 8, NULL, 0), 0);
	st[1] = 0;
	ck_assert_int_eq(vfront_request_ack(f->sock, SET_VRING_BASE, st, 8, NULL, 0), 0);
	ck_assert_int_eq(vfront_request_ack(f->sock, SET_VRING_ADDR, &a, sizeof(a), NULL, 0), 0);
	ck_assert_int_eq(vfront_request_ack(f->sock, SET_VRING_KICK, &idx0, 8, &f->kick, 1), 0);
	ck_assert_int_eq(vfront_request_ack(f->sock, SET_VRING_CALL, &idx0, 8, &f->call, 1), 0);
	if (enable) {
		st[1] = 1;
		ck_assert_int_eq(vfront_request_ack(f->sock, SET_VRING_ENABLE, st, 8, NULL, 0), 0);
	}
}

static void front_open(struct front *f, const char *path, bool sealable, bool enable)
{
	front_connect(f, path, sealable, 0);
	front_ring(f, enable);
}

static void front_close(struct front *f)
{
	if (f->mem)
		munmap(f->mem, MEM_SIZE);
	close(f->sock);
	close(f->memfd);
	close(f->kick);
	close(f->call);
	f->mem = NULL;
}

static void kick(struct front *f)
{
	uint64_t one = 1;

	ck_assert_int_eq(write(f->kick, &one, sizeof(one)), sizeof(one));
}

/* Posts n one-buffer writable chains (descriptor i, buffer i), kicks. */
static void post(struct front *f, unsigned n)
{
	struct vre_desc *desc = (struct vre_desc *)(f->mem + DESC_OFF);
	struct vre_avail *avail = (struct vre_avail *)(f->mem + AVAIL_OFF);

	ck_assert_uint_le(n, QSIZE);
	for (unsigned i = 0; i < n; i++) {
		memset(f->mem + BUF_OFF + i * BUF_LEN, 0xee, BUF_LEN);
		desc[i] = (struct vre_desc){ .addr = GPA + BUF_OFF + i * BUF_LEN,
					     .len = BUF_LEN, .flags = VRE_DESC_F_WRITE };
		avail->ring[(uint16_t)(f->avail_idx + i) % QSIZE] = (uint16_t)i;
	}
	f->avail_idx = (uint16_t)(f->avail_idx + n);
	__atomic_store_n(&avail->idx, f->avail_idx, __ATOMIC_RELEASE);
	kick(f);
}

/* Waits for the n posted chains and checks each buffer holds its stamp. */
static void reap(struct front *f, unsigned n)
{
	struct vre_used_ring *used = (struct vre_used_ring *)(f->mem + USED_OFF);
	uint16_t want = (uint16_t)(f->used_seen + n);
	uint64_t end = now_ms() + WAIT_MS;

	while (__atomic_load_n(&used->idx, __ATOMIC_ACQUIRE) != want && now_ms() < end)
		nap_us(200);
	ck_assert_uint_eq(__atomic_load_n(&used->idx, __ATOMIC_ACQUIRE), want);
	for (unsigned i = 0; i < n; i++) {
		struct vre_used_elem e = used->ring[(uint16_t)(f->used_seen + i) % QSIZE];
		uint32_t stamp[2];

		ck_assert_uint_lt(e.id, QSIZE);
		ck_assert_uint_eq(e.len, sizeof(stamp));
		memcpy(stamp, f->mem + BUF_OFF + e.id * BUF_LEN, sizeof(stamp));
		ck_assert_uint_eq(stamp[0], e.id);
		ck_assert_uint_eq(stamp[1], ++f->serial);
		ck_assert_uint_eq(f->mem[BUF_OFF + e.id * BUF_LEN + sizeof(stamp)], 0xee);
	}
	f->used_seen = want;
}

/* Drops the frontend's own view and shrinks the file to nothing. */
static void truncate_memory(struct front *f)
{
	munmap(f->mem, MEM_SIZE);
	f->mem = NULL;
	ck_assert_int_eq(ftruncate(f->memfd, 0), 0);
}

/* Whether any mapping of this process covers addr. */
static bool mapped(const void *addr)
{
	FILE *m = fopen("/proc/self/maps", "r");
	unsigned long lo, hi, a = (unsigned long)addr;
	char line[512];
	bool hit = false;

	ck_assert_ptr_nonnull(m);
	while (!hit && fgets(line, sizeof(line), m))
		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && a >= lo && a < hi)
			hit = true;
	fclose(m);
	return hit;
}

/* ---- fixture: a server, one worker, two stamp devices ------------------- */

static struct {
	char dir[64], path_a[96], path_b[96];
	struct vre_server *srv;
	struct vre_worker *w;
	struct stamp sa, sb;
	struct vre_dev *a, *b;
} t;

static void setup(void)
{
	struct vre_worker_config wc = { .cpu = vre_cpu_last_allowed(),
					.mode = VRE_POLL_ADAPTIVE, .idle_us = 1000 };
	struct vre_dev_config ca = { .path = t.path_a, .ops = &t.sa.ops, .ctx = &t.sa };
	struct vre_dev_config cb = { .path = t.path_b, .ops = &t.sb.ops, .ctx = &t.sb };

	snprintf(t.dir, sizeof(t.dir), "/tmp/vre-fault-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(t.dir));
	snprintf(t.path_a, sizeof(t.path_a), "%s/a", t.dir);
	snprintf(t.path_b, sizeof(t.path_b), "%s/b", t.dir);
	ck_assert_int_eq(vre_worker_create(&wc, &t.w), 0);
	stamp_init(&t.sa, t.w);
	stamp_init(&t.sb, t.w);
	ck_assert_int_eq(vre_server_create(&t.srv), 0);
	ck_assert(vre_fault_installed());
	ck_assert_int_eq(vre_dev_create(t.srv, &ca, &t.a), 0);
	ck_assert_int_eq(vre_dev_create(t.srv, &cb, &t.b), 0);
	ck_assert_int_eq(vre_server_start(t.srv), 0);
}

static void teardown(void)
{
	vre_server_destroy(t.srv);
	vre_worker_destroy(t.w);
	unlink(t.path_a);
	unlink(t.path_b);
	rmdir(t.dir);
}

static uint64_t faults_of(struct vre_dev *d)
{
	struct vre_dev_stats st;

	vre_dev_get_stats(d, &st);
	return st.memory_faults;
}

/* ---- seals ---------------------------------------------------------------- */

/* The file cannot shrink: F_SEAL_SHRINK is on and ftruncate says so. */
static void assert_sealed(int fd)
{
	int seals = fcntl(fd, F_GET_SEALS);
	struct stat st;

	ck_assert_int_ge(seals, 0);
	ck_assert_int_ne(seals & F_SEAL_SHRINK, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_gt(st.st_size, 0);
	errno = 0;
	ck_assert_int_eq(ftruncate(fd, st.st_size - 1), -1);
	ck_assert_int_eq(errno, EPERM);
	ck_assert_int_eq(ftruncate(fd, 0), -1);
}

START_TEST(test_seal_mem_table)
{
	struct front f;

	front_open(&f, t.path_a, true, false);
	assert_sealed(f.memfd);
	/* Growing stays allowed: only shrinking can take pages away. */
	ck_assert_int_eq(ftruncate(f.memfd, 2 * MEM_SIZE), 0);
	ck_assert(vfront_quiet(f.sock, 50));
	front_close(&f);
}
END_TEST

/* QEMU's memory-backend-memfd seals everything, F_SEAL_SEAL included: the
 * backend cannot add a seal and need not; the memory works as usual. */
START_TEST(test_seal_already_sealed)
{
	struct front f;
	int seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

	/* front_connect by hand, sealing before the table goes out. */
	memset(&f, 0, sizeof(f));
	f.sock = vfront_connect(t.path_a, VFRONT_TIMEOUT_MS);
	ck_assert_int_ge(f.sock, 0);
	f.memfd = make_memfd("qemu", true, MEM_SIZE);
	ck_assert_int_eq(fcntl(f.memfd, F_ADD_SEALS, seals), 0);
	f.mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, f.memfd, 0);
	ck_assert_ptr_ne(f.mem, MAP_FAILED);
	f.kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	f.call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	negotiate(f.sock, 0);
	ck_assert_int_eq(mem_table(f.sock, f.memfd), 0);
	ck_assert_int_eq(fcntl(f.memfd, F_GET_SEALS), seals);
	front_ring(&f, true);
	post(&f, 8);
	reap(&f, 8);
	front_close(&f);
}
END_TEST

START_TEST(test_seal_add_mem_reg_and_inflight)
{
	struct { uint64_t pad, gpa, size, uva, off; } reg = {
		.gpa = GPA + 2 * MEM_SIZE, .size = MEM_SIZE, .uva = UVA + 2 * MEM_SIZE,
	};
	struct { uint64_t size, off; uint16_t nq, qs; } in = { .nq = 1, .qs = QSIZE };
	struct vfront_msg m;
	int sock = vfront_connect(t.path_a, VFRONT_TIMEOUT_MS);
	int rfd = make_memfd("reg", true, MEM_SIZE), ifd;

	ck_assert_int_ge(sock, 0);
	negotiate(sock, PF_MEM_SLOTS | PF_INFLIGHT);
	ck_assert_int_eq(vfront_request_ack(sock, ADD_MEM_REG, &reg, sizeof(reg), &rfd, 1), 0);
	assert_sealed(rfd);

	/* GET_INFLIGHT_FD: the backend's own memfd comes sealed. */
	ck_assert_int_eq(vfront_send(sock, GET_INFLIGHT_FD, 0, &in, sizeof(in), NULL, 0), 0);
	ck_assert_int_eq(vfront_recv(sock, &m, VFRONT_TIMEOUT_MS), 0);
	ck_assert_uint_eq(m.nfds, 1);
	memcpy(&in, m.p.bytes, sizeof(in));
	ck_assert_uint_gt(in.size, 0);
	assert_sealed(m.fds[0]);
	vfront_msg_close_fds(&m);

	/* SET_INFLIGHT_FD: the frontend's sealable memfd gets sealed. */
	ifd = make_memfd("inflight", true, 1u << 16);
	in = (typeof(in)){ .size = 1u << 16, .off = 0, .nq = 1, .qs = QSIZE };
	ck_assert_int_eq(vfront_request_ack(sock, SET_INFLIGHT_FD, &in, sizeof(in), &ifd, 1), 0);
	assert_sealed(ifd);
	close(ifd);
	close(rfd);
	close(sock);
}
END_TEST

/* ---- containment ------------------------------------------------------------ */

START_TEST(test_truncate_under_worker)
{
	struct front fa, fb;
	uint64_t before = vre_fault_count();
	struct vre_dev_snapshot snap;
	void *ring_a;
	int fds0, maps0;

	front_open(&fb, t.path_b, false, true);
	post(&fb, 8);
	reap(&fb, 8);
	fds0 = vfront_count_fds();
	maps0 = vfront_count_maps();

	/* A frontend whose memory cannot be sealed, its queue on the same
	 * worker as B's, moving requests. */
	front_open(&fa, t.path_a, false, true);
	errno = 0;
	ck_assert_int_eq(fcntl(fa.memfd, F_ADD_SEALS, F_SEAL_SHRINK), -1);
	post(&fa, 8);
	reap(&fa, 8);
	ring_a = t.sa.ring_hva;
	ck_assert(mapped(ring_a));

	/* The worker is asleep on A's kick (adaptive): the kick makes it read
	 * the ring that is no longer there. */
	truncate_memory(&fa);
	kick(&fa);
	ck_assert(vfront_closed(fa.sock, WAIT_MS));
	ck_assert_uint_eq(faults_of(t.a), 1);
	ck_assert_uint_ge(vre_fault_count(), before + 1);
	vre_dev_get_snapshot(t.a, &snap);
	ck_assert(!snap.connected);
	ck_assert_uint_eq(snap.mem_regions, 0);
	ck_assert_int_eq(atomic_load(&t.sa.running), 0);
	/* The mapping (by then the zero pages that replaced it) is gone, and
	 * every fd control held for A. */
	ck_assert(!mapped(ring_a));
	front_close(&fa);
	ck_assert_int_eq(vfront_count_fds(), fds0);
	ck_assert_int_eq(vfront_count_maps(), maps0);

	/* B never noticed. */
	ck_assert_uint_eq(faults_of(t.b), 0);
	ck_assert(vfront_quiet(fb.sock, 20));
	post(&fb, 8);
	reap(&fb, 8);
	post(&fb, QSIZE);
	reap(&fb, QSIZE);
	front_close(&fb);
}
END_TEST

/* The control thread itself reads the lost memory: starting the queue reads
 * the used index of a ring whose file is gone. */
START_TEST(test_truncate_under_control)
{
	struct front fa, fb;
	uint32_t st[2] = { 0, 1 };

	front_open(&fb, t.path_b, false, true);
	front_open(&fa, t.path_a, false, false);
	truncate_memory(&fa);
	vfront_send(fa.sock, SET_VRING_ENABLE, VF_NEED_REPLY, st, 8, NULL, 0);
	ck_assert(vfront_closed(fa.sock, WAIT_MS));
	ck_assert_uint_eq(faults_of(t.a), 1);
	ck_assert(!vre_dev_connected(t.a));
	front_close(&fa);

	/* The device serves the next frontend as usual. */
	front_open(&fa, t.path_a, false, true);
	post(&fa, 4);
	reap(&fa, 4);
	ck_assert_uint_eq(faults_of(t.a), 1);
	front_close(&fa);

	post(&fb, 8);
	reap(&fb, 8);
	front_close(&fb);
}
END_TEST

/* An unsealable inflight region shrunk before the ring starts: the control
 * thread faults while it attaches (recovers) the region. */
START_TEST(test_truncate_inflight)
{
	struct { uint64_t size, off; uint16_t nq, qs; } in = {
		.size = 1u << 16, .off = 0, .nq = 1, .qs = QSIZE,
	};
	uint32_t st[2] = { 0, 1 };
	int fds0 = vfront_count_fds();
	int ifd = make_memfd("inflight", false, 1u << 16);
	struct front fa;

	front_connect(&fa, t.path_a, true, PF_INFLIGHT);
	ck_assert_int_eq(vfront_request_ack(fa.sock, SET_INFLIGHT_FD, &in, sizeof(in), &ifd, 1), 0);
	front_ring(&fa, false);
	ck_assert_int_eq(ftruncate(ifd, 0), 0);
	vfront_send(fa.sock, SET_VRING_ENABLE, VF_NEED_REPLY, st, 8, NULL, 0);
	ck_assert(vfront_closed(fa.sock, WAIT_MS));
	ck_assert_uint_eq(faults_of(t.a), 1);
	close(ifd);
	front_close(&fa);
	ck_assert_int_eq(vfront_count_fds(), fds0);
}
END_TEST

/* ---- faults that are not guest memory --------------------------------------- */

#define SURVIVED 77
#define CHAINED 42

/* Runs fn in a child; returns its wait status (the child is killed after
 * 10 s). */
static int in_child(void (*fn)(void))
{
	pid_t pid = fork();
	uint64_t end;
	int st = 0;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		fn();
		_exit(SURVIVED);
	}
	end = now_ms() + 10000;
	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (now_ms() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			ck_abort_msg("child hung");
		}
		nap_us(1000);
	}
	return st;
}

/* A SIGBUS outside guest memory: a truncated file that is not guest memory. */
static void fault_elsewhere(void)
{
	struct vre_server *s;
	int fd = memfd_create("not-guest", MFD_CLOEXEC);
	volatile uint8_t *p;

	if (fd < 0 || ftruncate(fd, 8192) < 0 || vre_server_create(&s) < 0 ||
	    !vre_fault_installed())
		_exit(1);
	p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED || ftruncate(fd, 0) < 0)
		_exit(2);
	(void)p[4096];
}

/* ASan and TSan install a SIGBUS handler of their own before main. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define UNDER_SANITIZER 1
#endif
#endif

static bool sanitized(void)
{
#ifdef UNDER_SANITIZER
	return true;
#else
	return false;
#endif
}

/* Killed by SIGBUS. Under a sanitizer its own handler (the one vre chained
 * to) reports the fault and then exits non-zero, or aborts with
 * abort_on_error=1. */
static void assert_killed(int st)
{
	if (sanitized() && WIFEXITED(st)) {
		ck_assert_int_ne(WEXITSTATUS(st), 0);
		ck_assert_int_ne(WEXITSTATUS(st), SURVIVED);
		return;
	}
	if (sanitized() && WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT)
		return;
	ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS, "status 0x%x", st);
}

START_TEST(test_fault_elsewhere_kills)
{
	assert_killed(in_child(fault_elsewhere));
}
END_TEST

static void kill_self(void)
{
	struct vre_server *s;

	if (vre_server_create(&s) < 0 || !vre_fault_installed())
		_exit(1);
	kill(getpid(), SIGBUS);
}

START_TEST(test_sigbus_sent_kills)
{
	assert_killed(in_child(kill_self));
}
END_TEST

static void own_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	(void)uc;
	_exit(CHAINED);
}

static void fault_with_own_handler(void)
{
	struct sigaction sa = { .sa_sigaction = own_handler, .sa_flags = SA_SIGINFO };

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, NULL) < 0)
		_exit(3);
	fault_elsewhere();
}

START_TEST(test_fault_elsewhere_chains)
{
	int st = in_child(fault_with_own_handler);

	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == CHAINED, "status 0x%x", st);
}
END_TEST

/* ---- the registry, white-box --------------------------------------------- */

#define NMAPS 600 /* more than two chunks of slots */

/* NMAPS one-page mappings of one file, registered; the file then shrinks
 * to nothing. Every odd mapping is unregistered again (as control does
 * before munmap). */
static uint8_t *maps[NMAPS];
static struct ctl_fault owner;

static void registry_setup(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	int fd = make_memfd("many", false, (size_t)NMAPS * (size_t)pg);

	ck_assert_int_eq(vre_fault_install(), 0);
	memset(&owner, 0, sizeof(owner));
	owner.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ck_assert_int_ge(owner.wake_fd, 0);
	for (int i = 0; i < NMAPS; i++) {
		maps[i] = mmap(NULL, (size_t)pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			       (off_t)i * pg);
		ck_assert_ptr_ne(maps[i], MAP_FAILED);
		maps[i][0] = 0x5a;
		ck_assert_int_eq(ctl_fault_register(maps[i], (size_t)pg, &owner), 0);
	}
	for (int i = 1; i < NMAPS; i += 2)
		ctl_fault_unregister(maps[i]);
	ck_assert_int_eq(ftruncate(fd, 0), 0);
	close(fd);
}

START_TEST(test_registry_recovers)
{
	uint64_t before, n = 0;

	registry_setup();
	before = vre_fault_count();
	for (int i = 0; i < NMAPS; i += 2) {
		/* The lost page now reads as zero and takes writes. */
		ck_assert_uint_eq(((volatile uint8_t *)maps[i])[0], 0);
		maps[i][1] = 7;
		ck_assert_uint_eq(maps[i][1], 7);
	}
	ck_assert_uint_eq(vre_fault_count(), before + NMAPS / 2);
	ck_assert_uint_eq(atomic_load(&owner.hit), 1);
	ck_assert_ptr_eq((void *)atomic_load(&owner.addr), maps[0]);
	ck_assert_int_eq(read(owner.wake_fd, &n, sizeof(n)), sizeof(n));
	ck_assert_uint_eq(n, NMAPS / 2);
}
END_TEST

static void touch_unregistered(void)
{
	registry_setup();
	(void)((volatile uint8_t *)maps[NMAPS - 1])[0];
}

START_TEST(test_registry_unregistered_kills)
{
	assert_killed(in_child(touch_unregistered));
}
END_TEST

static Suite *fault_suite(void)
{
	Suite *s = suite_create("fault");
	TCase *seal = tcase_create("seal"), *contain = tcase_create("contain");
	TCase *fatal = tcase_create("fatal"), *reg = tcase_create("registry");

	tcase_add_checked_fixture(seal, setup, teardown);
	tcase_add_test(seal, test_seal_mem_table);
	tcase_add_test(seal, test_seal_already_sealed);
	tcase_add_test(seal, test_seal_add_mem_reg_and_inflight);
	suite_add_tcase(s, seal);
	tcase_add_checked_fixture(contain, setup, teardown);
	tcase_set_timeout(contain, 60);
	tcase_add_test(contain, test_truncate_under_worker);
	tcase_add_test(contain, test_truncate_under_control);
	tcase_add_test(contain, test_truncate_inflight);
	suite_add_tcase(s, contain);
	tcase_add_test(fatal, test_fault_elsewhere_kills);
	tcase_add_test(fatal, test_sigbus_sent_kills);
	tcase_add_test(fatal, test_fault_elsewhere_chains);
	suite_add_tcase(s, fatal);
	tcase_add_test(reg, test_registry_recovers);
	tcase_add_test(reg, test_registry_unregistered_kills);
	suite_add_tcase(s, reg);
	return s;
}

int main(void)
{
	SRunner *r = srunner_create(fault_suite());
	int failed;

	srunner_run_all(r, CK_NORMAL);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
