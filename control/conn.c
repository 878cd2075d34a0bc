/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One connection's bytes: non-blocking reads into a per-connection buffer
 * (a frontend that sends half a message and stalls only parks its bytes),
 * SCM_RIGHTS collection, and reply writes.
 *
 * Reads never ask for more than the current message still needs, so the fds
 * that arrive during one message's reads belong to that message: the kernel
 * attaches SCM_RIGHTS to the first byte of the sender's sendmsg.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

void ctl_close_fds(int *fds, unsigned *nfds)
{
	for (unsigned i = 0; i < *nfds; i++)
		ctl_fd_close(fds[i]);
	*nfds = 0;
}

void ctl_conn_reset_msg(struct ctl_conn *c)
{
	ctl_close_fds(c->msg.fds, &c->msg.nfds);
	c->have = 0;
	c->partial_ns = 0;
}

bool ctl_conn_dead(const struct ctl_conn *c)
{
	struct pollfd p = { .fd = c->fd, .events = POLLRDHUP };

	return c->fd >= 0 && poll(&p, 1, 0) == 1 &&
	       (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Takes every fd out of the control messages; beyond VHU_MAX_FDS per
 * message they are closed at once (the dispatcher rejects the message). */
static void collect_fds(struct ctl_conn *c, struct msghdr *mh, bool *too_many)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int fd;

		for (size_t i = 0; i < n; i++) {
			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(fd));
			if (c->msg.nfds < VHU_MAX_FDS) {
				c->msg.fds[c->msg.nfds++] = fd;
			} else {
				ctl_fd_close(fd);
				*too_many = true;
			}
		}
	}
	/* Truncated: the kernel dropped (closed) the fds that did not fit. */
	if (mh->msg_flags & MSG_CTRUNC)
		*too_many = true;
}

static ssize_t read_some(struct ctl_conn *c, void *dst, size_t len, bool *too_many)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * VHU_MAX_FDS)];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = { .iov_base = dst, .iov_len = len };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf.buf, .msg_controllen = sizeof(cbuf.buf),
	};
	ssize_t n;

	do {
		n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
	if (n == 0)
		return -ECONNRESET;
	collect_fds(c, &mh, too_many);
	return n;
}

int ctl_conn_read(struct ctl_conn *c)
{
	uint8_t *raw = (uint8_t *)&c->msg.hdr;
	bool too_many = false;

	for (;;) {
		size_t want;
		uint8_t *dst;
		ssize_t n;

		if (c->have < VHU_HDR_SIZE) {
			want = VHU_HDR_SIZE - c->have;
			dst = raw + c->have;
		} else {
			if (c->msg.hdr.size > VHU_MAX_PAYLOAD) {
				VRE_ERR(CTL_ROOM, "request %u: payload of %u bytes (max %u), dropping the connection",
					c->msg.hdr.request, c->msg.hdr.size, VHU_MAX_PAYLOAD);
				return -EMSGSIZE;
			}
			want = VHU_HDR_SIZE + c->msg.hdr.size - c->have;
			dst = c->msg.p.bytes + (c->have - VHU_HDR_SIZE);
		}
		if (want == 0)
			break;
		n = read_some(c, dst, want, &too_many);
		if (too_many) {
			VRE_ERR(CTL_ROOM, "more than %u fds on one message, dropping the connection",
				VHU_MAX_FDS);
			return -EBADMSG;
		}
		if (n <= 0)
			return (int)n;
		if (!c->have)
			c->partial_ns = mono_ns(); /* a message begins */
		c->have += (size_t)n;
	}
	return 1;
}

/*
 * Replies are never waited for: a frontend waits for each reply it asked
 * for, so the socket buffer only fills when a frontend sends requests and
 * does not read the answers. Such a frontend is dropped at once rather than
 * allowed to block the control thread that serves every other device.
 */
int ctl_conn_send(int fd, const struct vhu_hdr *hdr, const void *payload,
		  const int *fds, unsigned nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * VHU_MAX_FDS)];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov[2] = {
		{ .iov_base = (void *)hdr, .iov_len = VHU_HDR_SIZE },
		{ .iov_base = (void *)payload, .iov_len = hdr->size },
	};
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = hdr->size ? 2 : 1 };
	ssize_t n;

	if (nfds > VHU_MAX_FDS)
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
	do {
		n = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		VRE_ERR(CTL_ROOM, "reply to request %u: %s%s", hdr->request, strerror(errno),
			errno == EAGAIN ? " (the frontend does not read its replies)" : "");
		return -errno;
	}
	if ((size_t)n != VHU_HDR_SIZE + hdr->size)
		return -EIO; /* a short write on a stream socket: buffer full */
	return 0;
}
