/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fuzz harness for control's protocol handling, driven without a control
 * thread (vre_server_poll) over a socketpair attached with
 * vre_dev_attach_fd.
 *
 * Input: chunks of [u8 fd code][u16 length][length bytes]; each chunk is one
 * sendmsg carrying (code % 4) fds: a 1 MiB guest memfd, an eventfd, or both,
 * so memory-table and ring requests get real fds. After every input the
 * connection is closed, and the process must hold exactly the fds and the
 * mappings it held before: every fd and mmap the input caused is released.
 *
 * Built as a libFuzzer target with -Dfuzz=true (clang), and as a smoke test
 * in the unit suite (VRE_FUZZ_SMOKE): random mutations of valid request
 * sequences, a fixed seed, a few thousand inputs.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fakedev.h"
#include "vfront.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vre_server *srv;
static struct vre_dev *dev;
static struct fake_dev fake;
static int guest_fd;
static int base_fds, base_maps;

/* Fds of the kinds control can hold: eventfds, memfds, sockets. Other fds
 * (libFuzzer's own files) come and go independently. */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	char p[300], t[256];
	int n = 0;

	if (!d)
		abort();
	while ((e = readdir(d))) {
		ssize_t k;

		snprintf(p, sizeof(p), "/proc/self/fd/%s", e->d_name);
		k = readlink(p, t, sizeof(t) - 1);
		if (k <= 0)
			continue;
		t[k] = 0;
		if (strstr(t, "eventfd") || strstr(t, "/memfd:") || !strncmp(t, "socket:", 7))
			n++;
	}
	closedir(d);
	return n;
}

/* The device's listening socket is never used (inputs come over a
 * socketpair), but it is bound: it lives in a folder of this process's own,
 * so runs by different users, or at once, never meet at one path. */
static char sock_dir[] = "/tmp/vre-fuzz-XXXXXX";
static char sock_path[sizeof(sock_dir) + 16];

static void remove_sock(void)
{
	unlink(sock_path);
	rmdir(sock_dir);
}

static void init_once(void)
{
	struct vre_dev_config cfg = { .path = sock_path, .ops = &fake.ops, .ctx = &fake };

	if (srv)
		return;
	if (!mkdtemp(sock_dir))
		abort();
	snprintf(sock_path, sizeof(sock_path), "%s/unused.sock", sock_dir);
	atexit(remove_sock);
	if (!getenv("VRE_LOG"))
		vre_log_level = -1; /* quiet: inputs are meant to be bad */
	fake_init(&fake, (1ull << 28) | (1ull << 29) | (1ull << 32) | (1ull << 34), 4);
	if (vre_server_create(&srv) || vre_dev_create(srv, &cfg, &dev))
		abort();
	guest_fd = memfd_create("fuzz-guest", MFD_CLOEXEC);
	if (guest_fd < 0 || ftruncate(guest_fd, 1 << 20) < 0)
		abort();
	base_fds = count_fds();
	base_maps = vfront_count_maps();
}

static void pump(int peer)
{
	char sink[4096];

	/* Handle everything ready; drain replies so the backend never
	 * blocks on a full socket. */
	while (vre_server_poll(srv, 0) > 0) {
		for (;;) {
			union {
				char buf[CMSG_SPACE(sizeof(int) * 8)];
				struct cmsghdr align;
			} cbuf;
			struct iovec iov = { sink, sizeof(sink) };
			struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
					     .msg_control = cbuf.buf,
					     .msg_controllen = sizeof(cbuf.buf) };

			if (recvmsg(peer, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) <= 0)
				break;
			for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
				size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
				int fd;

				for (size_t i = 0; i < n; i++) {
					memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(fd));
					close(fd);
				}
			}
		}
	}
}

static void send_chunk(int fd, const uint8_t *p, size_t len, unsigned code)
{
	int fds[2], n = 0, efd = -1;
	union {
		char buf[CMSG_SPACE(sizeof(int) * 2)];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = { (void *)p, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (code & 1)
		fds[n++] = guest_fd;
	if (code & 2) {
		efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		fds[n++] = efd;
	}
	if (n) {
		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * n);
	}
	if (sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && errno != EAGAIN &&
	    errno != EPIPE && errno != ECONNRESET)
		abort();
	if (efd >= 0)
		close(efd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sv[2];

	init_once();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	if (vre_dev_attach_fd(dev, sv[1]) < 0)
		abort();
	while (size >= 3 && vre_dev_connected(dev)) {
		unsigned code = data[0];
		size_t len = (size_t)data[1] | (size_t)data[2] << 8;

		data += 3;
		size -= 3;
		if (len > size)
			len = size;
		if (len)
			send_chunk(sv[0], data, len, code);
		data += len;
		size -= len;
		pump(sv[0]);
	}
	close(sv[0]);
	pump(-1);
	/* Whatever the input did, nothing of it outlives the connection. */
	if (vre_dev_connected(dev) || count_fds() != base_fds ||
	    vfront_count_maps() != base_maps) {
		fprintf(stderr, "fuzz: leak after input (fds %d/%d maps %d/%d)\n",
			count_fds(), base_fds, vfront_count_maps(), base_maps);
		abort();
	}
	return 0;
}

#ifdef VRE_FUZZ_SMOKE
/* Valid requests to mutate: a plausible session, one chunk each. */
struct tmpl { uint32_t req, flags, size; uint8_t payload[48]; uint8_t fds; };

static const struct tmpl session[] = {
	{ 3, 1, 0, { 0 }, 0 },                                       /* SET_OWNER */
	{ 1, 1, 0, { 0 }, 0 },                                       /* GET_FEATURES */
	{ 16, 1, 8, { 0x08, 0x90, 0x01 }, 0 },                       /* SET_PROTOCOL_FEATURES */
	{ 2, 9, 8, { 0, 0, 0, 0x70, 0x05 }, 0 },                     /* SET_FEATURES */
	{ 5, 9, 40, { 1, 0, 0, 0, 0, 0, 0, 0,                        /* SET_MEM_TABLE */
		      0, 0, 0x10, 0, 0, 0, 0, 0,  0, 0, 0x10, 0, 0, 0, 0, 0,
		      0, 0, 0, 0, 0x12, 0x7f, 0, 0,  0, 0, 0, 0, 0, 0, 0, 0 }, 1 },
	{ 8, 9, 8, { 0, 0, 0, 0, 0, 1, 0, 0 }, 0 },                  /* SET_VRING_NUM 256 */
	{ 10, 9, 8, { 0 }, 0 },                                      /* SET_VRING_BASE */
	{ 9, 9, 40, { 0, 0, 0, 0, 0, 0, 0, 0,                        /* SET_VRING_ADDR */
		      0, 0x10, 0, 0, 0x12, 0x7f, 0, 0,  0, 0x80, 0, 0, 0x12, 0x7f, 0, 0,
		      0, 0x60, 0, 0, 0x12, 0x7f, 0, 0 }, 0 },
	{ 13, 9, 8, { 0 }, 2 },                                      /* SET_VRING_CALL */
	{ 12, 9, 8, { 0 }, 2 },                                      /* SET_VRING_KICK */
	{ 18, 9, 8, { 0, 0, 0, 0, 1, 0, 0, 0 }, 0 },                 /* SET_VRING_ENABLE */
	{ 31, 9, 24, { 0, 0, 0, 0, 0, 0, 0, 0,  0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 1 }, 0 },
	{ 37, 9, 40, { 0, 0, 0, 0, 0, 0, 0, 0,  0, 0, 0, 0x40, 0, 0, 0, 0,
		       0, 0, 1, 0, 0, 0, 0, 0,  0, 0, 0, 0, 0x34, 0x7f, 0, 0 }, 1 },
	{ 38, 9, 40, { 0, 0, 0, 0, 0, 0, 0, 0,  0, 0, 0, 0x40, 0, 0, 0, 0,
		       0, 0, 1, 0, 0, 0, 0, 0,  0, 0, 0, 0, 0x34, 0x7f, 0, 0 }, 0 },
	{ 24, 1, 20, { 0, 0, 0, 0, 8, 0, 0, 0 }, 0 },                /* GET_CONFIG */
	{ 11, 1, 8, { 0 }, 0 },                                      /* GET_VRING_BASE */
};

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)rng;
}

static size_t build(uint8_t *out, size_t cap)
{
	size_t n = 0;
	unsigned count = sizeof(session) / sizeof(session[0]);

	for (unsigned i = 0; i < count && n + 3 + 12 + 48 <= cap; i++) {
		const struct tmpl *t = &session[rnd() % 4 ? i : rnd() % count];
		uint8_t *chunk = out + n + 3;
		size_t len = 12 + t->size;

		memcpy(chunk, &t->req, 4);
		memcpy(chunk + 4, &t->flags, 4);
		memcpy(chunk + 8, &t->size, 4);
		memcpy(chunk + 12, t->payload, t->size);
		/* Mutations (one chunk in four): flip bits, cut lengths,
		 * swap fds; the rest stays valid so sessions get deep. */
		for (unsigned m = rnd() % 4 ? 0 : 1 + rnd() % 3; m; m--)
			chunk[rnd() % len] ^= (uint8_t)(1u << (rnd() % 8));
		if (rnd() % 16 == 0)
			len = rnd() % len;
		out[n] = rnd() % 16 ? t->fds : (uint8_t)(rnd() % 4);
		out[n + 1] = (uint8_t)len;
		out[n + 2] = (uint8_t)(len >> 8);
		n += 3 + len;
	}
	return n;
}

int main(int argc, char **argv)
{
	unsigned iters = argc > 1 ? (unsigned)atoi(argv[1]) : 3000;
	uint8_t buf[4096];

	for (unsigned i = 0; i < iters; i++) {
		size_t n = build(buf, sizeof(buf));

		LLVMFuzzerTestOneInput(buf, n);
	}
	printf("fuzz smoke: %u inputs, fake device saw %d starts %d stops\n", iters,
	       fake.starts, fake.stops);
	return fake.starts == fake.stops ? 0 : 1;
}
#endif
