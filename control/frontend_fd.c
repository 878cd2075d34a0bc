/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What a frontend's fd is, and how to let go of one, without ever waiting
 * for the frontend.
 *
 * A frontend can hand over an fd of any kind: a file on a FUSE mount it
 * serves itself, on a hung NFS server, a socket with SO_LINGER. On such a
 * file fstat, fstatfs, mmap, a page fault and even close (FUSE sends FLUSH)
 * wait for whoever serves it, and the thread that waits is the control
 * thread every device shares. So the questions here are asked only in ways
 * the kernel answers from its own state:
 *   - readlink of /proc/self/fd/N: the dentry's name, no file system call;
 *   - F_GET_SEALS: answered (seals or 0) only for shmem (memfd, tmpfs) and
 *     hugetlbfs files, EINVAL for every other file, from the file's
 *     operations alone. After it said yes, fstatfs is an in-memory call and
 *     confirms the magic (a memfd reports TMPFS_MAGIC, hugetlbfs
 *     HUGETLBFS_MAGIC).
 * Guest memory and inflight regions must be such memory: it cannot stall.
 *
 * Closing: shmem and hugetlbfs files, eventfds and other anonymous inodes,
 * pipes and unix sockets close at once. Anything else a frontend sent is
 * closed by a reaper thread, so a close that waits (FUSE FLUSH, a lingering
 * TCP socket) holds only that thread. Its queue is bounded: when it is full
 * (the reaper is stuck on a hostile file and more keep coming) the fd is
 * left open, with a log line, rather than risking the control thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "ctl.h"

#define REAPER_QUEUE 1024u

void ctl_fd_name(int fd, char *out, size_t len)
{
	char link[32], raw[256];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, raw, sizeof(raw) - 1);
	raw[n > 0 ? n : 0] = '\0';
	/* the name is the frontend's choice (a path, a memfd name) */
	vre_log_escape(n > 0 ? raw : "unknown", out, len);
}

/* The raw link text, for classification only (never logged as is). */
static bool link_of(int fd, char *out, size_t len)
{
	char link[32];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, out, len - 1);
	out[n > 0 ? n : 0] = '\0';
	return n > 0;
}

bool ctl_fd_is_eventfd(int fd)
{
	char what[64];

	/* Linux names an eventfd's file "anon_inode:[eventfd]". */
	return link_of(fd, what, sizeof(what)) && !strcmp(what, "anon_inode:[eventfd]");
}

/* shmem (memfd, tmpfs) or hugetlbfs: the only files with seals. */
static bool has_seals(int fd)
{
	return fcntl(fd, F_GET_SEALS) >= 0;
}

int ctl_fd_check_memory(int fd, char *why, size_t len)
{
	struct statfs sf;
	char name[96];

	if (!has_seals(fd)) {
		ctl_fd_name(fd, name, sizeof(name));
		snprintf(why, len, "not shared memory (memfd, tmpfs or hugetlbfs): %s", name);
		return -EINVAL;
	}
	if (fstatfs(fd, &sf) < 0) {
		snprintf(why, len, "fstatfs: %s", strerror(errno));
		return -EINVAL;
	}
	if (sf.f_type != TMPFS_MAGIC && sf.f_type != HUGETLBFS_MAGIC) {
		ctl_fd_name(fd, name, sizeof(name));
		snprintf(why, len, "file system 0x%lx is not tmpfs or hugetlbfs: %s",
			 (unsigned long)sf.f_type, name);
		return -EINVAL;
	}
	return 0;
}

/* Whether close(fd) returns without waiting for anyone. */
static bool closes_at_once(int fd)
{
	char what[64];
	int dom = 0;
	socklen_t l = sizeof(dom);

	if (has_seals(fd))
		return true;
	if (!link_of(fd, what, sizeof(what)))
		return false;
	/* Names of kernel-internal files never start with '/'. */
	if (!strncmp(what, "anon_inode:", 11) || !strncmp(what, "pipe:[", 6))
		return true;
	return !strncmp(what, "socket:[", 8) &&
	       getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &l) == 0 && dom == AF_UNIX;
}

/* ---- the reaper ---------------------------------------------------------- */

static pthread_mutex_t reap_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reap_cond = PTHREAD_COND_INITIALIZER;
static int reap_q[REAPER_QUEUE];
static unsigned reap_head, reap_n;
static pid_t reaper_pid; /* the process whose reaper runs (fork: none) */
static struct vre_ratelimit reap_rl;

static void *reaper(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&reap_lock);
	for (;;) {
		int fd;

		while (!reap_n)
			pthread_cond_wait(&reap_cond, &reap_lock);
		fd = reap_q[reap_head];
		reap_head = (reap_head + 1) % REAPER_QUEUE;
		reap_n--;
		pthread_mutex_unlock(&reap_lock);
		close(fd); /* may wait for the frontend: only this thread does */
		pthread_mutex_lock(&reap_lock);
	}
	return NULL;
}

/* Caller holds reap_lock. */
static void start_reaper(void)
{
	pthread_attr_t attr;
	pthread_t t;

	if (reaper_pid == getpid())
		return;
	/* a child of fork inherits the queue but not the thread */
	reap_n = reap_head = 0;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, reaper, NULL) == 0) {
		reaper_pid = getpid();
		pthread_setname_np(t, "vre-fd-reaper");
	}
	pthread_attr_destroy(&attr);
}

void ctl_fd_reaper_start(void)
{
	pthread_mutex_lock(&reap_lock);
	start_reaper();
	pthread_mutex_unlock(&reap_lock);
}

/* Hands fd to the reaper; false when it cannot take it. Caller holds
 * reap_lock. */
static bool reap_later(int fd)
{
	start_reaper();
	if (reaper_pid != getpid() || reap_n == REAPER_QUEUE)
		return false;
	reap_q[(reap_head + reap_n) % REAPER_QUEUE] = fd;
	reap_n++;
	pthread_cond_signal(&reap_cond);
	return true;
}

void ctl_fd_close(int fd)
{
	bool ok;

	if (fd < 0)
		return;
	if (closes_at_once(fd)) {
		close(fd);
		return;
	}
	pthread_mutex_lock(&reap_lock);
	ok = reap_later(fd);
	if (!ok)
		VRE_LOG_RL(&reap_rl, VRE_LOG_ERR, CTL_ROOM,
			   "fd %d from a frontend left open: the reaper cannot take it (a close there is stuck)",
			   fd);
	pthread_mutex_unlock(&reap_lock);
}

unsigned ctl_fd_reaper_pending(void)
{
	unsigned n;

	pthread_mutex_lock(&reap_lock);
	n = reap_n;
	pthread_mutex_unlock(&reap_lock);
	return n;
}
