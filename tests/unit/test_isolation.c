/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * No frontend can stall a worker or the control thread (issue 12), over
 * real sockets with the control fixture:
 *   - a call eventfd with a full counter, blocking or not: the notify
 *     returns at once or within tens of ms, is counted, and the blocking
 *     case costs the frontend its connection;
 *   - region and inflight fds that are not memfd, tmpfs or hugetlbfs (a
 *     file on disk, procfs, a char device) are refused with a log line and
 *     no mapping; memfd, tmpfs and hugetlbfs are taken;
 *   - an fd whose close would wait (a TCP socket lingering on unsent data)
 *     does not hold the control thread;
 *   - a frontend stalled mid-message is dropped after the bound, an idle
 *     one stays;
 *   - 1,000 connect/close/connect cycles: every connection is answered;
 *   - every refused request costs exactly one log line with its name and
 *     reason, a flood of them a handful, and names a frontend chose are
 *     escaped;
 *   - vre_worker_sync waits for a worker stuck beyond its old 5 s timeout.
 * The log is read back by pointing stderr at a file for the test.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "ctl_fixture.h"
#include "fuse_stall.h"
#include "vre_worker.h"

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the log, read back ---------------------------------------------- */

static int cap_fd = -1, saved_err = -1;

static void cap_start(void)
{
	char p[] = "/tmp/vre-iso-log-XXXXXX";

	cap_fd = mkstemp(p);
	ck_assert_int_ge(cap_fd, 0);
	unlink(p);
	fflush(stderr);
	saved_err = dup(2);
	ck_assert_int_ge(saved_err, 0);
	ck_assert_int_eq(dup2(cap_fd, 2), 2);
}

/* Everything logged since cap_start (malloc'd). */
static char *cap_text(void)
{
	off_t n = lseek(cap_fd, 0, SEEK_END);
	char *s = malloc((size_t)n + 1);

	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(pread(cap_fd, s, (size_t)n, 0), n);
	s[n] = '\0';
	return s;
}

static void cap_stop(void)
{
	char *s;

	if (cap_fd < 0)
		return;
	fflush(stderr);
	dup2(saved_err, 2);
	close(saved_err);
	s = cap_text(); /* shown, for a failing test's log */
	fputs(s, stderr);
	free(s);
	close(cap_fd);
	cap_fd = -1;
}

static unsigned count(const char *hay, const char *needle)
{
	unsigned n = 0;

	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

static unsigned cap_count(const char *needle)
{
	char *s = cap_text();
	unsigned n = count(s, needle);

	free(s);
	return n;
}

/* Waits up to ms for needle to appear n times in the log. */
static bool cap_wait(const char *needle, unsigned n, int ms)
{
	int64_t end = now_ms() + ms;

	while (cap_count(needle) < n) {
		if (now_ms() >= end)
			return false;
		poll(NULL, 0, 5);
	}
	return true;
}

static void iso_setup(void)
{
	fx_setup();
	cap_start();
}

static void iso_teardown(void)
{
	cap_stop();
	fx_teardown();
}

/* Whether the file behind fd is mapped anywhere in this process (the
 * server runs in it). By name: a count of all mappings moves under the
 * sanitizers. */
static bool fd_mapped(int fd)
{
	char link[64], name[256], line[512];
	ssize_t n;
	FILE *f;
	bool hit = false;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, name, sizeof(name) - 1);
	ck_assert_int_gt(n, 0);
	name[n] = '\0';
	if (strstr(name, " (deleted)"))
		*strstr(name, " (deleted)") = '\0';
	f = fopen("/proc/self/maps", "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		hit |= strstr(line, name) != NULL;
	fclose(f);
	return hit;
}

/* ---- log helpers ------------------------------------------------------- */

START_TEST(test_log_escape)
{
	char out[32];
	char *s;

	ck_assert_str_eq(vre_log_escape("plain name", out, sizeof(out)), "plain name");
	ck_assert_str_eq(vre_log_escape("a\nb\\c\x1b", out, sizeof(out)), "a\\x0ab\\x5cc\\x1b");
	ck_assert_str_eq(vre_log_escape("\xff", out, sizeof(out)), "\\xff");
	vre_log_escape("0123456789012345678901234567890123456789", out, 16);
	ck_assert_str_eq(out, "012345678901...");
	vre_log_escape("\n\n\n\n\n", out, 10);
	ck_assert_str_eq(out, "\\x0a...");
	/* whatever a format string is given, a line stays one line */
	VRE_ERR("test", "one %s line", "forged\n[0.000000] vre err control: fake");
	s = cap_text();
	ck_assert_uint_eq(count(s, "\n"), 1);
	ck_assert_ptr_nonnull(strstr(s, "one forged\\x0a[0.000000] vre err control: fake line"));
	free(s);
}
END_TEST

START_TEST(test_ratelimit)
{
	struct vre_ratelimit rl = { 0 };
	unsigned dropped = 99, ok = 0;

	for (int i = 0; i < 100; i++)
		ok += vre_ratelimit_ok(&rl, &dropped);
	ck_assert_uint_eq(ok, VRE_RL_BURST);
	ck_assert_uint_eq(rl.suppressed, 100 - VRE_RL_BURST);
	/* the next interval: the first line learns what was dropped */
	rl.start_ns -= (uint64_t)VRE_RL_INTERVAL_MS * 1000000u;
	ck_assert(vre_ratelimit_ok(&rl, &dropped));
	ck_assert_uint_eq(dropped, 100 - VRE_RL_BURST);
}
END_TEST

/* A poller's flush tells the count once the interval is over (or at
 * once when forced), in one line, and only once. */
START_TEST(test_ratelimit_flush)
{
	struct vre_ratelimit rl = { 0 };

	vre_ratelimit_flush(&rl, VRE_LOG_WARN, "test", true); /* nothing dropped */
	ck_assert_uint_eq(cap_count("suppressed"), 0);
	for (int i = 0; i < 100; i++)
		VRE_LOG_RL(&rl, VRE_LOG_WARN, "test", "flood %d", i);
	ck_assert_uint_eq(cap_count("flood"), VRE_RL_BURST);
	vre_ratelimit_flush(&rl, VRE_LOG_WARN, "test", false); /* interval not over */
	ck_assert_uint_eq(cap_count("suppressed"), 0);
	rl.start_ns -= (uint64_t)VRE_RL_INTERVAL_MS * 1000000u;
	vre_ratelimit_flush(&rl, VRE_LOG_WARN, "test", false);
	ck_assert_uint_eq(cap_count("vre warn test: 90 similar lines suppressed\n"), 1);
	vre_ratelimit_flush(&rl, VRE_LOG_WARN, "test", true); /* told already */
	ck_assert_uint_eq(cap_count("suppressed"), 1);
	/* the next line opens a fresh interval and carries no stale count */
	VRE_LOG_RL(&rl, VRE_LOG_WARN, "test", "after");
	ck_assert_uint_eq(cap_count("suppressed"), 1);
	for (int i = 0; i < VRE_RL_BURST + 3; i++)
		VRE_LOG_RL(&rl, VRE_LOG_WARN, "test", "again %d", i);
	vre_ratelimit_flush(&rl, VRE_LOG_WARN, "test", true); /* shutdown */
	ck_assert_uint_eq(cap_count("4 similar lines suppressed"), 1);
}
END_TEST

/* ---- refusals: one line each, with the request's name and reason ---- */

/* Sends a request that must be refused and checks its single line. */
static void refused_once(uint32_t req, const void *p, uint32_t n, const int *fds, unsigned nfds,
			 const char *line)
{
	unsigned before = cap_count(" refused: "), hits = cap_count(line);

	ck_assert_int_eq(vfront_request_ack(fx.fd, req, p, n, fds, nfds), 1);
	ck_assert_msg(cap_count(" refused: ") == before + 1, "not one refusal line for '%s'", line);
	ck_assert_msg(cap_count(line) == hits + 1, "no line '%s'", line);
}

static int refuse_features(void *ctx, uint64_t f)
{
	(void)ctx;
	(void)f;
	return -EOPNOTSUPP;
}

START_TEST(test_refusals_logged)
{
	int kick = fx_eventfd(), call = fx_eventfd(), e = fx_eventfd();
	uint64_t status = 0x100, f;
	struct { uint64_t pad; struct region r; } reg = { 0, { 0x80000000ull, 0x10000,
						       0x7f3000000000ull, 0 } };
	struct fake_dev f2;
	char p2[128];
	struct vre_dev *d2;
	int fd2;

	fx_negotiate(fx.fd, F_VERSION_1 | F_PROTOCOL,
		     PF_REPLY_ACK | PF_STATUS | PF_MEM_SLOTS);
	ck_assert_int_eq(fx_mem_table(fx.fd), 0);
	fx_ring(fx.fd, 0, 256, 0);
	ck_assert_int_eq(fx_ring_fd(fx.fd, SET_VRING_CALL, 0, call), 0);
	ck_assert_int_eq(fx_ring_fd(fx.fd, SET_VRING_KICK, 0, kick), 0);
	refused_once(SET_VRING_NUM, (uint32_t[]){ 0, 64 }, 8, NULL, 0,
		     "SET_VRING_NUM refused: queue 0 is started");
	refused_once(SET_VRING_BASE, (uint32_t[]){ 0, 3 }, 8, NULL, 0,
		     "SET_VRING_BASE refused: queue 0 is started");
	refused_once(SET_STATUS, &status, 8, NULL, 0,
		     "SET_STATUS refused: status 0x100 beyond 8 bits");
	refused_once(ADD_MEM_REG, &reg, sizeof(reg), NULL, 0,
		     "ADD_MEM_REG refused: 0 fds (needs at least 1)");
	refused_once(SET_FEATURES, &(uint64_t){ F_VERSION_1 | F_PROTOCOL }, 8, (int[]){ e, e }, 2,
		     "SET_FEATURES refused: 2 fds (takes at most 0)");
	refused_once(SET_MEM_TABLE, &(struct { uint32_t n, pad; struct region r[2]; }){
		     .n = 2, .r = { { GUEST_GPA, 0x1000, GUEST_UVA, 0 },
				    { GUEST_GPA + 0x1000, 0x1000, GUEST_UVA + 0x1000, 0x1000 } } },
		     8 + 64, &fx.mem_fd, 1, "SET_MEM_TABLE refused: memory table of 2 regions with 1 fds");
	refused_once(SET_VRING_ENABLE, (uint32_t[]){ 0, 7 }, 8, NULL, 0,
		     "SET_VRING_ENABLE refused: queue 0: enable 7");
	refused_once(99, NULL, 0, NULL, 0, "UNKNOWN refused: request 99 is not supported");

	/* a device model refusing the features */
	fake_init(&f2, FEATURES_OFFERED, 2);
	f2.ops.set_features = refuse_features;
	snprintf(p2, sizeof(p2), "%s/sock2", fx.dir);
	d2 = fx_add_dev(&f2, p2, false);
	fd2 = vfront_connect(p2, VFRONT_TIMEOUT_MS);
	ck_assert_int_ge(fd2, 0);
	ck_assert_int_eq(vfront_get_u64(fd2, GET_FEATURES, &f), 0);
	ck_assert_int_eq(vfront_send(fd2, SET_OWNER, 0, NULL, 0, NULL, 0), 0);
	ck_assert_int_eq(vfront_set_u64(fd2, SET_PROTOCOL_FEATURES, PF_REPLY_ACK, false), 0);
	ck_assert_int_eq(vfront_set_u64(fd2, SET_FEATURES, F_VERSION_1, true), 1);
	ck_assert_int_eq(cap_count("sock2: SET_FEATURES refused: the fake device refused features 0x100000000: Operation not supported"), 1);
	close(fd2);
	vre_dev_destroy(d2);
	close(kick);
	close(call);
	close(e);
}
END_TEST

/* A flood of bad requests costs the log a few lines, not one each. */
START_TEST(test_refusal_flood)
{
	uint64_t status = 0x1000;
	unsigned lines;

	fx_negotiate(fx.fd, F_VERSION_1 | F_PROTOCOL, PF_REPLY_ACK | PF_STATUS);
	for (int i = 0; i < 2000; i++)
		ck_assert_int_eq(vfront_set_u64(fx.fd, SET_STATUS, status, true), 1);
	lines = cap_count("SET_STATUS refused");
	/* one burst per interval: the loop takes well under two intervals */
	ck_assert_uint_ge(lines, VRE_RL_BURST);
	ck_assert_uint_le(lines, 2 * VRE_RL_BURST);
	/* a new connection has its own allowance */
	close(fx.fd);
	fx.fd = vfront_connect(fx.path, VFRONT_TIMEOUT_MS);
	ck_assert_int_ge(fx.fd, 0);
	fx_negotiate(fx.fd, F_VERSION_1 | F_PROTOCOL, PF_REPLY_ACK | PF_STATUS);
	ck_assert_int_eq(vfront_set_u64(fx.fd, SET_STATUS, status, true), 1);
	ck_assert_uint_eq(cap_count("SET_STATUS refused"), lines + 1);
}
END_TEST

/* A memfd's name is the frontend's: it reaches the log escaped. */
START_TEST(test_name_escaped)
{
	int evil = memfd_create("x\n[0.000000] vre err control: forged line", MFD_CLOEXEC);
	char *s;

	ck_assert_int_ge(evil, 0);
	fx_negotiate(fx.fd, F_VERSION_1 | F_PROTOCOL, PF_REPLY_ACK);
	ck_assert_int_eq(fx_ring_fd(fx.fd, SET_VRING_CALL, 0, evil), 1);
	s = cap_text();
	ck_assert_ptr_nonnull(strstr(s, "fd is not an eventfd (/memfd:x\\x0a[0.000000] vre err control: forged line"));
	ck_assert_ptr_null(strstr(s, "\n[0.000000] vre err control: forged"));
	free(s);
	close(evil);
}
END_TEST

/* ---- memory fds ------------------------------------------------------- */

static int mem_table_fd(int fd, uint64_t size)
{
	struct { uint32_t n, pad; struct region r[1]; } t = {
		.n = 1, .r = { { GUEST_GPA, size, GUEST_UVA, 0 } },
	};

	return vfront_request_ack(fx.fd, SET_MEM_TABLE, &t, sizeof(t), &fd, 1);
}

/* A file of size bytes in dir, if dir's file system is (not) one of the
 * shared-memory ones as want_shm says; -1 otherwise. */
static int file_in(const char *dir, uint64_t size, bool want_shm)
{
	char p[256];
	struct statfs sf;
	int fd;

	if (statfs(dir, &sf) < 0 ||
	    ((sf.f_type == TMPFS_MAGIC || sf.f_type == HUGETLBFS_MAGIC) != want_shm))
		return -1;
	snprintf(p, sizeof(p), "%s/vre-iso-XXXXXX", dir);
	fd = mkstemp(p);
	if (fd < 0)
		return -1;
	unlink(p);
	if (ftruncate(fd, (off_t)size) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void region_refused(int fd, const char *what)
{
	unsigned lines = cap_count("not shared memory");

	ck_assert_msg(mem_table_fd(fd, GUEST_SIZE) == 1, "%s accepted", what);
	ck_assert_msg(cap_count("not shared memory") == lines + 1, "%s: no log line", what);
	ck_assert_msg(!fd_mapped(fd), "%s: mapped", what);
}

START_TEST(test_region_not_memory)
{
	/* a regular file on a disk file system: wherever one is */
	int disk = file_in("/var/tmp", GUEST_SIZE, false);
	int proc = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	int dnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	struct inflight_msg in = { .mmap_size = 0x10000, .num_queues = 1, .queue_size = 256 };

	if (disk < 0)
		disk = file_in(".", GUEST_SIZE, false);
	ck_assert_msg(disk >= 0, "no disk file system for a test file");
	ck_assert_int_ge(proc, 0);
	ck_assert_int_ge(dnull, 0);
	fx_negotiate(fx.fd, F_VERSION_1 | F_PROTOCOL, PF_REPLY_ACK | PF_INFLIGHT);
	region_refused(disk, "a file on disk");
	region_refused(proc, "a procfs file");
	region_refused(dnull, "/dev/null");
	ck_assert_int_eq(cap_count("SET_MEM_TABLE refused: region gpa 0x100000: fd not shared memory (memfd, tmpfs or hugetlbfs): /proc/"), 1);
	ck_assert_int_eq(vfront_request_ack(fx.fd, SET_INFLIGHT_FD, &in, sizeof(in), &disk, 1), 1);
	ck_assert_int_eq(cap_count("SET_INFLIGHT_FD refused: inflight region fd not shared memory"), 1);
	/* the memfd is still fine */
	ck_assert_int_eq(fx_mem_table(fx.fd), 0);
	close(disk);
	close(proc);
	close(dnull);
}
END_TEST

START_TEST(test_region_memory_kinds)
{
	int tmp = file_in("/dev/shm", GUEST_SIZE, true);
	int huge = file_in("/dev/hugepages", 2u << 20, true);
	int hmfd = memfd_create("vre-iso-huge", MFD_CLOEXEC | MFD_HUGETLB);

	fx_negotiate(fx.fd, F_VERSION_1 | F_PROTOCOL, PF_REPLY_ACK);
	ck_assert_int_eq(fx_mem_table(fx.fd), 0); /* memfd */
	if (tmp >= 0)
		ck_assert_int_eq(mem_table_fd(tmp, GUEST_SIZE), 0);
	else
		fprintf(stderr, "note: /dev/shm is not tmpfs here, tmpfs case skipped\n");
	if (huge >= 0)
		ck_assert_int_eq(mem_table_fd(huge, 2u << 20), 0);
	else
		fprintf(stderr, "note: no hugetlbfs at /dev/hugepages, case skipped\n");
	if (hmfd >= 0 && ftruncate(hmfd, 2u << 20) == 0)
		ck_assert_int_eq(mem_table_fd(hmfd, 2u << 20), 0);
	ck_assert_uint_eq(cap_count("not shared memory"), 0);
	if (tmp >= 0)
		close(tmp);
	if (huge >= 0)
		close(huge);
	if (hmfd >= 0)
		close(hmfd);
}
END_TEST

/* The attack itself: guest memory on a FUSE file whose server has stopped
 * answering. Asking it anything (fstat, fstatfs, mmap, a page fault, the
 * FLUSH of a close) would hold the control thread for as long as the
 * frontend likes. Refused at once, closed by the reaper, and the control
 * thread goes on serving. */
START_TEST(test_region_on_stalled_fuse)
{
	struct fuse_stall *fs;
	const char *file;
	uint64_t f;
	int64_t t0;
	int fd, r = fuse_stall_start(&fs, &file);

	if (r < 0) {
		fprintf(stderr, "note: no FUSE mount possible here (%s): case skipped\n",
			strerror(-r));
		return;
	}
	fd = open(file, O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	fuse_stall_hang(fs);
	fx_negotiate(fx.fd, F_VERSION_1 | F_PROTOCOL, PF_REPLY_ACK);
	t0 = now_ms();
	r = mem_table_fd(fd, GUEST_SIZE);
	ck_assert_msg(r == 1, "a region on a stalled FUSE file: %s",
		      r == 0 ? "accepted" : strerror(-r));
	ck_assert_int_eq(vfront_get_u64(fx.fd, GET_FEATURES, &f), 0);
	ck_assert_msg(now_ms() - t0 < 1000, "the control thread waited %lld ms",
		      (long long)(now_ms() - t0));
	ck_assert_int_eq(cap_count("fd not shared memory (memfd, tmpfs or hugetlbfs): /tmp/vre-fuse-"), 1);
	/* the close the dispatcher did (a FLUSH) waits in the reaper thread
	 * until the connection is aborted here */
	fuse_stall_stop(fs);
	close(fd);
}
END_TEST

/* ---- an fd whose close waits ---------------------------------------- */

/* A TCP connection on loopback whose peer never reads, with our send
 * buffer full and SO_LINGER set: its last close waits linger_s seconds.
 * *peer keeps the other end (and the listener) alive. */
static int lingering_socket(int linger_s, int *peer, int *lsn)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(sa);
	struct linger lg = { .l_onoff = 1, .l_linger = linger_s };
	int s, small = 4096;
	char buf[4096] = { 0 };

	*lsn = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(*lsn, 0);
	setsockopt(*lsn, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	ck_assert_int_eq(bind(*lsn, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(getsockname(*lsn, (struct sockaddr *)&sa, &l), 0);
	ck_assert_int_eq(listen(*lsn, 1), 0);
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(s, 0);
	setsockopt(s, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	ck_assert_int_eq(connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	*peer = accept(*lsn, NULL, NULL);
	ck_assert_int_ge(*peer, 0);
	while (send(s, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
	ck_assert_int_eq(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	return s;
}

START_TEST(test_close_does_not_block)
{
	int peer, lsn, s = lingering_socket(4, &peer, &lsn);
	int64_t t0;
	uint64_t f;

	fx_negotiate(fx.fd, F_VERSION_1 | F_PROTOCOL, PF_REPLY_ACK | PF_BACKEND_REQ);
	/* The socket rides in as the backend request channel (any fd is
	 * taken there) and is replaced: control closes the only copy. */
	ck_assert_int_eq(vfront_request_ack(fx.fd, SET_BACKEND_REQ_FD, NULL, 0, &s, 1), 0);
	close(s);
	s = fx_eventfd();
	t0 = now_ms();
	ck_assert_int_eq(vfront_request_ack(fx.fd, SET_BACKEND_REQ_FD, NULL, 0, &s, 1), 0);
	ck_assert_int_eq(vfront_get_u64(fx.fd, GET_FEATURES, &f), 0);
	ck_assert_msg(now_ms() - t0 < 1000, "the control thread waited %lld ms on a close",
		      (long long)(now_ms() - t0));
	close(s);
	close(peer);
	close(lsn);
}
END_TEST

/* ---- the call eventfd --------------------------------------------------- */

struct notifier {
	struct vre_queue *q;
	int n;
	volatile bool done;
};

static void *notify_thread(void *arg)
{
	struct notifier *nt = arg;

	for (int i = 0; i < nt->n; i++)
		vre_queue_notify(nt->q);
	nt->done = true;
	return NULL;
}

/* Runs n notifies on a thread of their own, as a worker would; true when
 * they all returned within ms. */
static bool notify_within(struct vre_queue *q, int n, int ms)
{
	struct notifier nt = { .q = q, .n = n };
	pthread_t t;
	struct timespec end;

	ck_assert_int_eq(pthread_create(&t, NULL, notify_thread, &nt), 0);
	clock_gettime(CLOCK_REALTIME, &end);
	end.tv_sec += ms / 1000;
	end.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (end.tv_nsec >= 1000000000L) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000L;
	}
	if (pthread_timedjoin_np(t, NULL, &end) != 0) {
		pthread_detach(t); /* stuck for good: the test fails */
		return false;
	}
	return nt.done;
}

static void fill_counter(int efd)
{
	uint64_t v = 0xfffffffffffffffeull;

	ck_assert_int_eq(write(efd, &v, 8), 8);
}

START_TEST(test_call_full_nonblocking)
{
	int call = eventfd(0, EFD_CLOEXEC); /* blocking, as a careless frontend makes it */
	struct vre_queue *q = vre_dev_queue(fx.dev, 0);
	uint64_t f;

	fx_negotiate(fx.fd, F_VERSION_1 | F_PROTOCOL, PF_REPLY_ACK);
	ck_assert_int_eq(fx_ring_fd(fx.fd, SET_VRING_CALL, 0, call), 0);
	/* control made it non-blocking: the flag is on the shared file */
	ck_assert(fcntl(call, F_GETFL) & O_NONBLOCK);
	fill_counter(call);
	ck_assert(notify_within(q, 3, 2000));
	ck_assert_uint_eq(__atomic_load_n(&q->notify_saturated, __ATOMIC_RELAXED), 3);
	/* a full counter is not an attack on us: the session goes on */
	ck_assert_int_eq(vfront_get_u64(fx.fd, GET_FEATURES, &f), 0);
	ck_assert(vre_dev_connected(fx.dev));
	close(call);
}
END_TEST

static void *clear_nonblock(void *arg)
{
	int fd = *(int *)arg;
	int64_t end = now_ms() + 3000;

	while (now_ms() < end && fcntl(fd, F_GETFD) >= 0)
		fcntl(fd, F_SETFL, 0);
	return NULL;
}

START_TEST(test_call_full_blocking)
{
	int call = eventfd(0, EFD_CLOEXEC);
	struct vre_queue *q = vre_dev_queue(fx.dev, 0);
	int disc = fake_get(&fx.fake, &fx.fake.disconnects);
	pthread_t attacker;
	int64_t t0;

	fx_negotiate(fx.fd, F_VERSION_1 | F_PROTOCOL, PF_REPLY_ACK);
	ck_assert_int_eq(fx_ring_fd(fx.fd, SET_VRING_CALL, 0, call), 0);
	fill_counter(call);
	/* the frontend keeps clearing O_NONBLOCK that control set */
	ck_assert_int_eq(pthread_create(&attacker, NULL, clear_nonblock, &call), 0);
	while (fcntl(call, F_GETFL) & O_NONBLOCK)
		;
	t0 = now_ms();
	/* One notify: after it the control thread drops the connection and
	 * closes the fd, which a real worker would not see until quiesced. */
	ck_assert_msg(notify_within(q, 1, 2000), "a notify blocked on a full blocking eventfd");
	fprintf(stderr, "note: the blocked notify took %lld ms\n", (long long)(now_ms() - t0));
	ck_assert_uint_eq(__atomic_load_n(&q->notify_saturated, __ATOMIC_RELAXED), 1);
	/* the attacker loses its connection */
	ck_assert(fake_wait(&fx.fake, &fx.fake.disconnects, disc + 1, 3000));
	ck_assert(vfront_closed(fx.fd, 3000));
	ck_assert(cap_wait("a notification blocked on the frontend's call eventfd", 1, 1000));
	pthread_join(attacker, NULL);
	close(call);
}
END_TEST

/* ---- stalled and returning frontends ----------------------------------- */

START_TEST(test_stall_mid_message)
{
	uint32_t hdr[3] = { SET_MEM_TABLE, 1, 40 };
	int64_t t0;

	vre_server_set_msg_timeout(fx.srv, 300);
	/* part of a header */
	ck_assert_int_eq(vfront_send_raw(fx.fd, hdr, 5), 0);
	t0 = now_ms();
	ck_assert(vfront_closed(fx.fd, 3000));
	ck_assert_int_ge(now_ms() - t0, 250);
	ck_assert(cap_wait("stopped in the middle of a message (5 of 12 bytes", 1, 1000));
	close(fx.fd);
	/* a header whose payload never comes */
	fx.fd = vfront_connect(fx.path, VFRONT_TIMEOUT_MS);
	ck_assert_int_ge(fx.fd, 0);
	ck_assert_int_eq(vfront_send_raw(fx.fd, hdr, sizeof(hdr)), 0);
	ck_assert(vfront_closed(fx.fd, 3000));
	ck_assert(cap_wait("(12 of 52 bytes", 1, 1000));
	close(fx.fd);
	/* the port takes a new frontend */
	fx.fd = vfront_connect(fx.path, VFRONT_TIMEOUT_MS);
	ck_assert_int_ge(fx.fd, 0);
	fx_negotiate(fx.fd, F_VERSION_1 | F_PROTOCOL, PF_REPLY_ACK);
}
END_TEST

START_TEST(test_idle_stays)
{
	uint64_t f;

	vre_server_set_msg_timeout(fx.srv, 200);
	fx_negotiate(fx.fd, F_VERSION_1 | F_PROTOCOL, PF_REPLY_ACK);
	ck_assert(vfront_quiet(fx.fd, 700)); /* silent, between messages */
	ck_assert_int_eq(vfront_get_u64(fx.fd, GET_FEATURES, &f), 0);
	ck_assert_uint_eq(cap_count("stopped in the middle"), 0);
}
END_TEST

START_TEST(test_fast_reconnect)
{
	unsigned refused = 0;

	close(fx.fd);
	fx.fd = -1;
	for (int i = 0; i < 1000; i++) {
		int fd = vfront_connect(fx.path, VFRONT_TIMEOUT_MS);
		uint64_t f = 0;

		ck_assert_int_ge(fd, 0);
		if (vfront_get_u64(fd, GET_FEATURES, &f) != 0)
			refused++;
		close(fd);
	}
	ck_assert_msg(refused == 0, "%u of 1000 new frontends got no answer", refused);
	ck_assert_uint_eq(cap_count("a second frontend while one is connected"), 0);
}
END_TEST

/* The order that used to refuse a returning frontend, made exact with a
 * server driven by hand: the new connection is already waiting when the
 * old one hangs up, so one round sees the listener first and then the
 * hang-up. The new frontend must be served. */
START_TEST(test_reconnect_before_hangup_seen)
{
	char dir[] = "/tmp/vre-iso-XXXXXX", path[64];
	struct vre_server *srv;
	struct fake_dev f;
	struct vre_dev_config cfg = { .path = path, .ops = &f.ops, .ctx = &f };
	struct vre_dev *dev;
	struct vfront_msg m;
	int c1, c2;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sock", dir);
	fake_init(&f, FEATURES_OFFERED, 2);
	ck_assert_int_eq(vre_server_create(&srv), 0);
	ck_assert_int_eq(vre_dev_create(srv, &cfg, &dev), 0);
	c1 = vfront_connect(path, 1000);
	ck_assert_int_ge(c1, 0);
	ck_assert_int_eq(vre_server_poll(srv, 1000), 1); /* accept */
	ck_assert(vre_dev_connected(dev));
	ck_assert_int_eq(vfront_send(c1, GET_FEATURES, 0, NULL, 0, NULL, 0), 0);
	ck_assert_int_ge(vre_server_poll(srv, 1000), 1);
	ck_assert_int_eq(vfront_recv(c1, &m, 1000), 0);
	vre_server_poll(srv, 0); /* nothing pending from here on */
	c2 = vfront_connect(path, 1000);
	ck_assert_int_ge(c2, 0);
	close(c1);
	ck_assert_int_eq(vfront_send(c2, GET_FEATURES, 0, NULL, 0, NULL, 0), 0);
	for (int i = 0; i < 5; i++)
		vre_server_poll(srv, 50);
	ck_assert_msg(vfront_recv(c2, &m, 1000) == 0, "the returning frontend was refused");
	ck_assert_uint_eq(m.request, GET_FEATURES);
	ck_assert_uint_eq(cap_count("a second frontend while one is connected"), 0);
	close(c2);
	vre_server_destroy(srv);
	rmdir(dir);
}
END_TEST

/* ---- a worker that is slow to leave ----------------------------------- */

struct slow_item {
	struct vre_poll_item it;
	atomic_int phase; /* 1: the test asks it to stall; 2: inside; 3: left */
};

static int slow_poll(struct vre_poll_item *it)
{
	struct slow_item *s = it->ctx;

	if (atomic_load(&s->phase) == 1) {
		atomic_store(&s->phase, 2);
		sleep(6); /* beyond the 5 s after which sync used to give up */
		atomic_store(&s->phase, 3);
	}
	return 0;
}

START_TEST(test_sync_waits_for_stuck_worker)
{
	struct vre_worker_config cfg = { .cpu = vre_cpu_last_allowed(), .mode = VRE_POLL_BUSY };
	struct vre_worker *w;
	struct slow_item s = { .it = { .poll = slow_poll, .wake_fd = -1 } };

	s.it.ctx = &s;
	ck_assert_int_eq(vre_worker_create(&cfg, &w), 0);
	ck_assert_int_eq(vre_worker_add(w, &s.it), 0);
	atomic_store(&s.phase, 1);
	while (atomic_load(&s.phase) != 2)
		poll(NULL, 0, 1);
	vre_worker_sync(w);
	ck_assert_int_eq(atomic_load(&s.phase), 3); /* it had left the item */
	vre_worker_remove(&s.it);
	vre_worker_destroy(w);
	ck_assert(cap_count("worker stuck in an item, still waiting") >= 1);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("isolation");
	TCase *tc = tcase_create("log");
	TCase *ctl = tcase_create("control");
	TCase *w = tcase_create("worker");

	tcase_add_checked_fixture(tc, cap_start, cap_stop);
	tcase_add_test(tc, test_log_escape);
	tcase_add_test(tc, test_ratelimit);
	tcase_add_test(tc, test_ratelimit_flush);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(ctl, iso_setup, iso_teardown);
	tcase_set_timeout(ctl, 60);
	tcase_add_test(ctl, test_refusals_logged);
	tcase_add_test(ctl, test_refusal_flood);
	tcase_add_test(ctl, test_name_escaped);
	tcase_add_test(ctl, test_region_not_memory);
	tcase_add_test(ctl, test_region_memory_kinds);
	tcase_add_test(ctl, test_region_on_stalled_fuse);
	tcase_add_test(ctl, test_close_does_not_block);
	tcase_add_test(ctl, test_call_full_nonblocking);
	tcase_add_test(ctl, test_call_full_blocking);
	tcase_add_test(ctl, test_stall_mid_message);
	tcase_add_test(ctl, test_idle_stays);
	tcase_add_test(ctl, test_fast_reconnect);
	suite_add_tcase(s, ctl);
	tcase_add_checked_fixture(w, cap_start, cap_stop);
	tcase_set_timeout(w, 30);
	tcase_add_test(w, test_reconnect_before_hangup_seen);
	tcase_add_test(w, test_sync_waits_for_stuck_worker);
	suite_add_tcase(s, w);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
