/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * memchange: a frontend changes its memory table while vre-blk has I/O in
 * flight on a slow disk; guest memory must not be unmapped under the I/O.
 *
 *   memchange VRE_BLK
 *
 * vre-blk runs with --test-delay-us 100000000 (every read waits a random
 * 0..100 s in the kernel before it runs: a disk that hangs) and
 * --drain-grace-ms 500. The frontend posts 16 reads, checks that they are
 * in flight, then sends SET_MEM_TABLE (the same memory again: control
 * stops the queue, unmaps the old mapping, maps the new one). Stopping the
 * queue must not return while the kernel still holds requests aimed at the
 * old mapping: after the grace period vre-blk cancels them, and each is
 * returned to the ring (with an I/O error) before the table change is
 * acknowledged. So:
 *   - the acknowledgement comes (within 10 s: grace plus cancellation,
 *     not the 100 s the disk would take);
 *   - by then every one of the 16 requests is completed in the used ring,
 *     exactly once, with its status byte written;
 *   - vre-blk logged the cancellation, and exits 0 on SIGTERM afterwards.
 * Before the fix, vre-blk waited 30 s, gave up and tore the queue down:
 * the requests the disk had not finished were never completed.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fe.h"
#include "fring.h"
#include "vfront.h"

#define QSIZE 64
#define NREQ 16
#define MEM_BYTES (1u << 20)
#define BUF_OFF 0x20000u
#define SLOT 1024u
/* The build gives replies VFRONT_TIMEOUT_MS = 40 s, to see what a backend
 * that waits for the disk does; 10 s is what the ack may take. */
#define ACK_WANT_MS 10000

static char dir[] = "/tmp/vre-memchange.XXXXXX";
static char sock[300], img[300], logp[300];
static int pid;

static void cleanup(void)
{
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	unlink(sock);
	unlink(img);
	unlink(logp);
	rmdir(dir);
}

__attribute__((format(printf, 1, 2), noreturn)) static void fail(const char *fmt, ...)
{
	va_list ap;
	char cmd[400];

	fprintf(stderr, "FAIL: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	snprintf(cmd, sizeof(cmd), "tail -n 30 '%s' >&2", logp);
	if (system(cmd) != 0)
		fprintf(stderr, "(no log)\n");
	cleanup();
	exit(1);
}

static bool log_has(const char *what)
{
	char cmd[400];

	snprintf(cmd, sizeof(cmd), "grep -q '%s' '%s'", what, logp);
	return system(cmd) == 0;
}

static void start(const char *bin)
{
	char *argv[] = { (char *)bin, "--socket", sock, "--file", img, "--test-delay-us",
			 "100000000", "--drain-grace-ms", "500", NULL };
	int fd = open(img, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0 || ftruncate(fd, 1 << 20) < 0)
		fail("image: %s", strerror(errno));
	close(fd);
	pid = fork();
	if (pid < 0)
		fail("fork: %s", strerror(errno));
	if (pid == 0) {
		fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(argv[0], argv);
		_exit(127);
	}
}

int main(int argc, char **argv)
{
	struct fe_mem mem;
	struct fe_ring ring = { .index = 0, .size = QSIZE, .kick_fd = -1, .call_fd = -1 };
	struct fring *fr;
	uint64_t f, pf;
	unsigned done = 0, errors = 0;
	bool seen[NREQ] = { false };
	int64_t t0, took;
	int s, r, st;

	if (argc != 2) {
		fprintf(stderr, "usage: memchange VRE_BLK\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (!mkdtemp(dir))
		fail("mkdtemp: %s", strerror(errno));
	snprintf(sock, sizeof(sock), "%s/blk.sock", dir);
	snprintf(img, sizeof(img), "%s/disk.img", dir);
	snprintf(logp, sizeof(logp), "%s/vre-blk.log", dir);
	start(argv[1]);

	s = vfront_connect(sock, 5000);
	if (s < 0)
		fail("connect: %s", strerror(-s));
	if (fe_mem_new(&mem, MEM_BYTES) || fe_handshake(s, 1ull << FE_F_VERSION_1, 0, &f, &pf) ||
	    fe_set_features(s, f) || fe_mem_table(s, &mem))
		fail("session set-up");
	fring_layout(false, QSIZE, 0, &ring.lay);
	fr = fring_new(false, QSIZE, mem.hva, &ring.lay);
	if (fe_ring_start(s, &mem, &ring, fring_initial_base(false)))
		fail("ring set-up");

	/* 16 reads of one sector each: header, data, status */
	for (unsigned k = 0; k < NREQ; k++) {
		uint64_t off = BUF_OFF + (uint64_t)k * SLOT, sector = k;
		uint32_t hdr[4] = { 0 /* IN */, 0 };
		struct fbuf v[3] = {
			{ fe_gpa(off), 16, false },
			{ fe_gpa(off) + 512, 512, true },
			{ fe_gpa(off) + 16, 1, true },
		};

		memcpy(&hdr[2], &sector, 8);
		memcpy(mem.hva + off, hdr, 16);
		mem.hva[off + 16] = 0xff;
		if (fring_add(fr, v, 3, (uint16_t)k))
			fail("ring full");
	}
	fe_kick(&ring);
	/* in flight: nothing comes back for a while (a read now and then
	 * may draw a short delay) */
	fe_wait_call(&ring, 300);

	t0 = fe_now_us();
	r = vfront_request_ack(s, 5 /* SET_MEM_TABLE */, &(struct {
		uint32_t n, pad; uint64_t gpa, size, uva, off; }){
		.n = 1, .gpa = FE_GPA0, .size = mem.len, .uva = (uintptr_t)mem.hva }, 40,
		&mem.fd, 1);
	took = (fe_now_us() - t0) / 1000;
	if (r != 0)
		fail("SET_MEM_TABLE mid-I/O: %s", r == 1 ? "refused" : strerror(-r));

	/* Everything the device had taken is in the used ring now. */
	for (;;) {
		uint16_t tag;
		uint32_t len;

		r = fring_get_used(fr, &tag, &len);
		if (r < 0)
			fail("a completion of a chain that is not outstanding");
		if (r == 0)
			break;
		if (tag >= NREQ || seen[tag])
			fail("completion of request %u twice", tag);
		seen[tag] = true;
		done++;
		if (mem.hva[BUF_OFF + (uint64_t)tag * SLOT + 16] != 0)
			errors++;
		if (mem.hva[BUF_OFF + (uint64_t)tag * SLOT + 16] == 0xff)
			fail("request %u completed without its status byte", tag);
	}
	printf("SET_MEM_TABLE acknowledged after %lld ms; %u of %d requests completed by then (%u with an I/O error)\n",
	       (long long)took, done, NREQ, errors);
	if (done != NREQ)
		fail("%u of %d requests in flight were never completed: the queue was torn down with I/O in flight",
		     NREQ - done, NREQ);
	if (took > ACK_WANT_MS)
		fail("the memory table change waited %lld ms for the disk", (long long)took);
	if (!errors || !log_has("cancelling them"))
		fail("no request was cancelled: the slow disk did not hold any (test not testing)");

	close(s);
	fring_free(fr);
	fe_ring_close(&ring);
	fe_mem_free(&mem);
	kill(pid, SIGTERM);
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail("vre-blk exit status 0x%x", st);
	pid = 0;
	printf("memchange: no unmap with I/O in flight\nPASS\n");
	cleanup();
	return 0;
}
