/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <dirent.h>
#include <unistd.h>

#include "vfront.h"

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void addr_of(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	snprintf(sa->sun_path, sizeof(sa->sun_path), "%s", path);
}

int vfront_connect(const char *path, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;
	struct sockaddr_un sa;

	addr_of(path, &sa);
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		close(fd);
		if (now_ms() >= end)
			return -ETIMEDOUT;
		poll(NULL, 0, 10); /* the listener is being set up: retry */
	}
}

int vfront_listen(const char *path)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	addr_of(path, &sa);
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

int vfront_accept(int lfd, int timeout_ms)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };
	int r = poll(&p, 1, timeout_ms);

	if (r <= 0)
		return r == 0 ? -ETIMEDOUT : -errno;
	r = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	return r < 0 ? -errno : r;
}

int vfront_send(int fd, uint32_t req, uint32_t flags, const void *payload,
		uint32_t size, const int *fds, unsigned nfds)
{
	uint32_t hdr[3] = { req, 0x1 | flags, size };
	struct iovec iov[2] = {
		{ .iov_base = hdr, .iov_len = sizeof(hdr) },
		{ .iov_base = (void *)payload, .iov_len = size },
	};
	union {
		char buf[CMSG_SPACE(sizeof(int) * 16)];
		struct cmsghdr align;
	} cbuf;
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = size ? 2 : 1 };
	ssize_t n;

	if (nfds > 16)
		return -EINVAL;
	if (nfds) {
		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	}
	n = sendmsg(fd, &mh, MSG_NOSIGNAL);
	if (n < 0)
		return -errno;
	return (size_t)n == sizeof(hdr) + size ? 0 : -EIO;
}

int vfront_send_raw(int fd, const void *buf, size_t len)
{
	ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

	return n == (ssize_t)len ? 0 : -EIO;
}

static int read_full(int fd, void *dst, size_t len, struct vfront_msg *m, int64_t end)
{
	size_t have = 0;

	while (have < len) {
		union {
			char buf[CMSG_SPACE(sizeof(int) * 8)];
			struct cmsghdr align;
		} cbuf;
		struct iovec iov = { .iov_base = (char *)dst + have, .iov_len = len - have };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = cbuf.buf, .msg_controllen = sizeof(cbuf.buf) };
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int64_t left = end - now_ms();
		ssize_t n;

		if (left <= 0 || poll(&p, 1, (int)left) == 0)
			return -ETIMEDOUT;
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
			size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			for (size_t i = 0; i < k && m->nfds < 8; i++)
				memcpy(&m->fds[m->nfds++], CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
		}
		have += (size_t)n;
	}
	return 0;
}

int vfront_recv(int fd, struct vfront_msg *m, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;
	int r;

	memset(m, 0, sizeof(*m));
	r = read_full(fd, m, 12, m, end);
	if (r < 0)
		return r;
	if (m->size > sizeof(m->p))
		return -EMSGSIZE;
	return read_full(fd, m->p.bytes, m->size, m, end);
}

void vfront_msg_close_fds(struct vfront_msg *m)
{
	for (unsigned i = 0; i < m->nfds; i++)
		close(m->fds[i]);
	m->nfds = 0;
}

static int expect_u64(int fd, uint32_t req, uint64_t *val)
{
	struct vfront_msg m;
	int r = vfront_recv(fd, &m, VFRONT_TIMEOUT_MS);

	if (r < 0)
		return r;
	vfront_msg_close_fds(&m);
	if (m.request != req || m.flags != 0x5 || m.size != 8)
		return -EBADMSG;
	*val = m.p.u64;
	return 0;
}

int vfront_get_u64(int fd, uint32_t req, uint64_t *val)
{
	int r = vfront_send(fd, req, 0, NULL, 0, NULL, 0);

	return r < 0 ? r : expect_u64(fd, req, val);
}

int vfront_set_u64(int fd, uint32_t req, uint64_t val, bool need_reply)
{
	uint64_t ack;
	int r = vfront_send(fd, req, need_reply ? VF_NEED_REPLY : 0, &val, 8, NULL, 0);

	if (r < 0 || !need_reply)
		return r;
	r = expect_u64(fd, req, &ack);
	return r < 0 ? r : (int)ack;
}

int vfront_request_ack(int fd, uint32_t req, const void *payload, uint32_t size,
		       const int *fds, unsigned nfds)
{
	uint64_t ack;
	int r = vfront_send(fd, req, VF_NEED_REPLY, payload, size, fds, nfds);

	if (r < 0)
		return r;
	r = expect_u64(fd, req, &ack);
	return r < 0 ? r : (int)ack;
}

bool vfront_quiet(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 0;
}

bool vfront_closed(int fd, int ms)
{
	int64_t end = now_ms() + ms;
	char c;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int64_t left = end - now_ms();

		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return false;
		ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);

		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return true;
	}
}

int vfront_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

int vfront_count_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int n = 0;

	if (!f)
		return -1;
	/* Only file mappings of memfds: all that control maps in the tests
	 * (guest memory, inflight regions). Allocator arenas and sanitizer
	 * shadow come and go on their own and are not counted. */
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "/memfd:"))
			n++;
	fclose(f);
	return n;
}

void vfront_dump_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	char p[300], t[256];

	while ((e = readdir(d))) {
		ssize_t n;

		snprintf(p, sizeof(p), "/proc/self/fd/%s", e->d_name);
		n = readlink(p, t, sizeof(t) - 1);
		t[n > 0 ? n : 0] = 0;
		fprintf(stderr, "  fd %s -> %s\n", e->d_name, t);
	}
	closedir(d);
}
