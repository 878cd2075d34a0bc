/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * reconnect: a frontend that goes away and comes back, CYCLES times, against
 * a running vre-blk and a running vre-switch (two vhost ports, loopback).
 *
 *   reconnect VRE_BLK VRE_SWITCH [CYCLES]
 *
 * Each cycle is a new frontend: new guest memory (memfd), new eventfds, a
 * new inflight region where offered (GET_INFLIGHT_FD, SET_INFLIGHT_FD), the
 * full setup (features, memory table, rings), a little traffic that is
 * checked byte for byte (blk: write two sectors and read them back; switch:
 * four frames through a port in loopback come back on its RX ring, and
 * every TX chain is returned), then the connection is closed. The ring type
 * alternates (split, packed) and the switch port changes every 5 cycles.
 *
 * The backends' fds (/proc/PID/fd) and mappings (/proc/PID/maps lines) are
 * counted in the middle of cycle 10 and of the last cycle, at the same
 * point (session set up, traffic checked) with the same ring type and port:
 * they must be equal. A new session refused or broken fails the test, and
 * so does a backend that does not exit with 0 on SIGTERM at the end.
 * Under AddressSanitizer run it with ASAN_OPTIONS=quarantine_size_mb=0: the
 * quarantine keeps mapping fresh heap while freed memory sits in it.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fe.h"
#include "fring.h"
#include "vfront.h"

#define QSIZE 64
#define MEM_BYTES (1u << 20)
#define BUF_OFF 0x20000u
#define RX_BUF 2048u
#define NET_HDR 12u
#define FRAME 60u
#define NFRAMES 4u
#define WAIT_MS 3000
#define SERIAL "reconnect"

struct backend {
	const char *name;
	int pid;
	char log[256];
	int fds10, maps10;
};

static char dir[] = "/tmp/vre-reconnect.XXXXXX";
static char blk_sock[300], sw_sock[2][300], img[300];
static struct backend blk = { .name = "vre-blk" }, sw = { .name = "vre-switch" };
static unsigned cycle;

/* The exit status, or -1 when it had to be killed after 5 s. */
static int stop(struct backend *b, int sig)
{
	int st;

	if (b->pid <= 0)
		return -1;
	kill(b->pid, sig);
	for (int i = 0; i < 500; i++) {
		if (waitpid(b->pid, &st, WNOHANG) == b->pid) {
			b->pid = 0;
			return st;
		}
		usleep(10000);
	}
	kill(b->pid, SIGKILL);
	waitpid(b->pid, NULL, 0);
	b->pid = 0;
	return -1;
}

static void cleanup(void)
{
	stop(&blk, SIGKILL);
	stop(&sw, SIGKILL);
	unlink(blk_sock);
	unlink(sw_sock[0]);
	unlink(sw_sock[1]);
	unlink(img);
	unlink(blk.log);
	unlink(sw.log);
	rmdir(dir);
}

__attribute__((format(printf, 2, 3), noreturn)) static void fail(const struct backend *b,
								  const char *fmt, ...)
{
	va_list ap;
	char cmd[400];

	fprintf(stderr, "FAIL: %s, cycle %u: ", b ? b->name : "setup", cycle);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (b) {
		fprintf(stderr, "---- %s log (last 40 lines)\n", b->name);
		snprintf(cmd, sizeof(cmd), "tail -n 40 '%s' >&2", b->log);
		if (system(cmd) != 0)
			fprintf(stderr, "(no log)\n");
	}
	cleanup();
	exit(1);
}

static void spawn(struct backend *b, char **argv)
{
	snprintf(b->log, sizeof(b->log), "%s/%s.log", dir, b->name);
	b->pid = fork();
	if (b->pid < 0)
		fail(NULL, "fork: %s", strerror(errno));
	if (b->pid == 0) {
		int fd = open(b->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(argv[0], argv);
		_exit(127);
	}
}

/* One frontend's resources; all of them go when the session ends. */
struct sess {
	int sock;
	struct fe_mem mem;
	struct fe_inflight inf;
	struct fe_ring ring[2];
	struct fring *fr[2];
	unsigned nrings;
};

static void sess_open(struct sess *s, const struct backend *b, const char *path,
		      unsigned nrings, bool packed)
{
	uint64_t want = 1ull << FE_F_VERSION_1 | (packed ? 1ull << FE_F_RING_PACKED : 0);
	uint64_t f, pf;
	uint64_t at = 0;

	memset(s, 0, sizeof(*s));
	s->inf.fd = -1;
	s->nrings = nrings;
	s->sock = vfront_connect(path, 3000);
	if (s->sock < 0)
		fail(b, "connect: %s", strerror(-s->sock));
	if (fe_mem_new(&s->mem, MEM_BYTES))
		fail(b, "guest memory");
	if (fe_handshake(s->sock, want, 1ull << FE_PF_INFLIGHT_SHMFD, &f, &pf))
		fail(b, "handshake refused (a new frontend must get a clean session)");
	if ((f & want) != want)
		fail(b, "features 0x%llx not offered", (unsigned long long)want);
	if (pf & 1ull << FE_PF_INFLIGHT_SHMFD) {
		if (fe_inflight_get(s->sock, (uint16_t)nrings, QSIZE, &s->inf) ||
		    fe_inflight_set(s->sock, &s->inf))
			fail(b, "inflight region");
	}
	if (fe_set_features(s->sock, f) || fe_mem_table(s->sock, &s->mem))
		fail(b, "features or memory table");
	for (unsigned i = 0; i < nrings; i++) {
		struct fe_ring *r = &s->ring[i];

		*r = (struct fe_ring){ .index = (uint16_t)i, .size = QSIZE, .kick_fd = -1, .call_fd = -1 };
		fring_layout(packed, QSIZE, at, &r->lay);
		at += r->lay.bytes;
		s->fr[i] = fring_new(packed, QSIZE, s->mem.hva, &r->lay);
		if (fe_ring_start(s->sock, &s->mem, r, fring_initial_base(packed)))
			fail(b, "ring %u setup", i);
	}
}

static void sess_close(struct sess *s)
{
	close(s->sock);
	for (unsigned i = 0; i < s->nrings; i++) {
		fe_ring_close(&s->ring[i]);
		fring_free(s->fr[i]);
	}
	fe_inflight_free(&s->inf);
	fe_mem_free(&s->mem);
}

/* Waits for n completions on ring i, handing each to fn. */
static void collect(struct sess *s, const struct backend *b, unsigned i, unsigned n,
		    void (*fn)(struct sess *, const struct backend *, uint16_t, uint32_t))
{
	int64_t end = fe_now_us() + WAIT_MS * 1000ll;
	uint16_t tag;
	uint32_t len;

	while (n) {
		int r = fring_get_used(s->fr[i], &tag, &len);

		if (r < 0)
			fail(b, "ring %u: completion of a chain that is not outstanding", i);
		if (r == 1) {
			if (fn)
				fn(s, b, tag, len);
			n--;
			continue;
		}
		if (fe_now_us() > end)
			fail(b, "ring %u: %u completions missing after %d ms", i, n, WAIT_MS);
		fe_wait_call(&s->ring[i], 2);
	}
}

static uint64_t gpa_of(unsigned slot)
{
	return fe_gpa(BUF_OFF + (uint64_t)slot * RX_BUF);
}

static uint8_t *hva_of(struct sess *s, unsigned slot)
{
	return s->mem.hva + BUF_OFF + (size_t)slot * RX_BUF;
}

/* ---- vre-blk: write two sectors, read them back ---------------------- */

static void blk_req(struct sess *s, const struct backend *b, unsigned slot, uint32_t type,
		    uint64_t sector)
{
	uint8_t *h = hva_of(s, slot);
	uint32_t hdr[4] = { type, 0 };
	struct fbuf v[3] = {
		{ gpa_of(slot), 16, false },
		{ gpa_of(slot) + 512, 512, type == 0 },
		{ gpa_of(slot) + 16, 1, true },
	};

	memcpy(&hdr[2], &sector, 8);
	memcpy(h, hdr, 16);
	h[16] = 0xff;
	if (fring_add(s->fr[0], v, 3, (uint16_t)slot))
		fail(b, "ring full");
}

static void blk_done(struct sess *s, const struct backend *b, uint16_t tag, uint32_t len)
{
	uint8_t *h = hva_of(s, tag);

	if (h[16] != 0)
		fail(b, "request %u: status 0x%02x", tag, h[16]);
	if (len != (tag >= 2 ? 513u : 1u))
		fail(b, "request %u: used length %u", tag, len);
}

static void blk_cycle(const struct backend *b, bool packed, bool measure)
{
	struct sess s;

	sess_open(&s, b, blk_sock, 1, packed);
	for (unsigned k = 0; k < 2; k++) {
		memset(hva_of(&s, k) + 512, (int)(cycle * 2 + k + 1), 512);
		blk_req(&s, b, k, 1, cycle % 512 * 2 + k);
	}
	fe_kick(&s.ring[0]);
	collect(&s, b, 0, 2, blk_done);
	for (unsigned k = 0; k < 2; k++) {
		memset(hva_of(&s, 2 + k) + 512, 0xee, 512);
		blk_req(&s, b, 2 + k, 0, cycle % 512 * 2 + k);
	}
	fe_kick(&s.ring[0]);
	collect(&s, b, 0, 2, blk_done);
	for (unsigned k = 0; k < 2; k++)
		if (memcmp(hva_of(&s, 2 + k) + 512, hva_of(&s, k) + 512, 512))
			fail(b, "sector %u read back differs from what was written",
			     cycle % 512 * 2 + k);
	if (measure) {
		if (cycle == 10) {
			blk.fds10 = fe_proc_fds(blk.pid);
			blk.maps10 = fe_proc_maps(blk.pid);
		} else {
			int fds = fe_proc_fds(blk.pid), maps = fe_proc_maps(blk.pid);

			printf("vre-blk: cycle 10: %d fds, %d maps; cycle %u: %d fds, %d maps\n",
			       blk.fds10, blk.maps10, cycle, fds, maps);
			if (fds != blk.fds10 || maps != blk.maps10)
				fail(b, "fds or mappings grew");
		}
	}
	sess_close(&s);
}

/* ---- vre-switch: frames through a port in loopback -------------------- */

static void frame(uint8_t *f, unsigned k)
{
	static const uint8_t dst[6] = { 0x52, 0x54, 0, 0, 0, 2 }, src[6] = { 0x52, 0x54, 0, 0, 0, 1 };

	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = 0x88;
	f[13] = 0xb5;
	for (unsigned i = 14; i < FRAME; i++)
		f[i] = (uint8_t)(cycle * 7 + k * 13 + i);
}

static unsigned rx_seen;

static void rx_done(struct sess *s, const struct backend *b, uint16_t tag, uint32_t len)
{
	uint8_t want[FRAME];
	const uint8_t *got = hva_of(s, tag) + NET_HDR;
	unsigned k;

	if (len != NET_HDR + FRAME)
		fail(b, "RX length %u, expected %u", len, NET_HDR + FRAME);
	/* Frames may come back in any order: match by the payload. */
	for (k = 0; k < NFRAMES; k++) {
		frame(want, k);
		if (!memcmp(got, want, FRAME) && !(rx_seen & 1u << k))
			break;
	}
	if (k == NFRAMES)
		fail(b, "RX frame that was not sent (or sent once, received twice)");
	rx_seen |= 1u << k;
}

static void sw_cycle(const struct backend *b, bool packed, unsigned port, bool measure)
{
	struct sess s;

	sess_open(&s, b, sw_sock[port], 2, packed);
	for (unsigned k = 0; k < 2 * NFRAMES; k++) {
		struct fbuf v = { gpa_of(k), RX_BUF, true };

		memset(hva_of(&s, k), 0, RX_BUF);
		if (fring_add(s.fr[0], &v, 1, (uint16_t)k))
			fail(b, "RX ring full");
	}
	fe_kick(&s.ring[0]);
	for (unsigned k = 0; k < NFRAMES; k++) {
		unsigned slot = 2 * NFRAMES + k;
		struct fbuf v = { gpa_of(slot), NET_HDR + FRAME, false };

		memset(hva_of(&s, slot), 0, NET_HDR);
		frame(hva_of(&s, slot) + NET_HDR, k);
		if (fring_add(s.fr[1], &v, 1, (uint16_t)k))
			fail(b, "TX ring full");
	}
	fe_kick(&s.ring[1]);
	rx_seen = 0;
	collect(&s, b, 0, NFRAMES, rx_done);
	collect(&s, b, 1, NFRAMES, NULL);
	if (measure) {
		int fds = fe_proc_fds(sw.pid), maps = fe_proc_maps(sw.pid);

		if (cycle == 10) {
			sw.fds10 = fds;
			sw.maps10 = maps;
		} else {
			printf("vre-switch: cycle 10: %d fds, %d maps; cycle %u: %d fds, %d maps\n",
			       sw.fds10, sw.maps10, cycle, fds, maps);
			if (fds != sw.fds10 || maps != sw.maps10)
				fail(b, "fds or mappings grew");
		}
	}
	sess_close(&s);
}

static void start_backends(const char *blk_bin, const char *sw_bin)
{
	char *blk_argv[] = { (char *)blk_bin, "--socket", blk_sock, "--file", img,
			     "--serial", SERIAL, "--log-level", "warn", NULL };
	char *sw_argv[] = { (char *)sw_bin, "--vhost", sw_sock[0], "--vhost", sw_sock[1],
			    "--mode", "loopback", "--log-level", "warn", NULL };
	int fd = open(img, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0 || ftruncate(fd, 1 << 20) < 0)
		fail(NULL, "image: %s", strerror(errno));
	close(fd);
	spawn(&blk, blk_argv);
	spawn(&sw, sw_argv);
}

int main(int argc, char **argv)
{
	unsigned cycles = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 1000;
	int64_t t0 = fe_now_us();

	if (argc < 3 || cycles < 11) {
		fprintf(stderr, "usage: reconnect VRE_BLK VRE_SWITCH [CYCLES >= 11]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (!mkdtemp(dir))
		fail(NULL, "mkdtemp: %s", strerror(errno));
	snprintf(blk_sock, sizeof(blk_sock), "%s/blk.sock", dir);
	snprintf(sw_sock[0], sizeof(sw_sock[0]), "%s/sw0.sock", dir);
	snprintf(sw_sock[1], sizeof(sw_sock[1]), "%s/sw1.sock", dir);
	snprintf(img, sizeof(img), "%s/disk.img", dir);
	start_backends(argv[1], argv[2]);
	for (cycle = 1; cycle <= cycles; cycle++) {
		/* Cycles 10 and the last are measured: make them alike (even:
		 * split; port from cycle / 5 parity) by choosing the last. */
		bool measure = cycle == 10 || cycle == cycles;
		bool packed = cycle & 1;
		unsigned port = (cycle / 5) & 1;

		blk_cycle(&blk, packed, measure);
		sw_cycle(&sw, packed, port, measure);
		if (cycle % 250 == 0) {
			printf("  %u cycles, %.1f s\n", cycle, (fe_now_us() - t0) / 1e6);
			fflush(stdout);
		}
	}
	/* A clean exit after all those sessions (and, in a sanitizer build,
	 * no leak report: LeakSanitizer makes the exit status non-zero). */
	for (struct backend *b = &blk; b; b = b == &blk ? &sw : NULL) {
		int st = stop(b, SIGTERM);

		if (st != 0)
			fail(b, "exit status 0x%x after SIGTERM, expected 0", st);
	}
	printf("reconnect: %u frontend sessions each on vre-blk and vre-switch, traffic checked "
	       "in every one; fds and mappings flat; %.1f s\nPASS\n", cycles,
	       (fe_now_us() - t0) / 1e6);
	cleanup();
	return 0;
}
