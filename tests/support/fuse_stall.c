/* SPDX-License-Identifier: BSD-3-Clause */
#include "fuse_stall.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_SIZE (1u << 20)
#define BUF_SIZE (FUSE_MIN_READ_BUFFER + 4096)

struct fuse_stall {
	int dev;
	char dir[64];
	char file[80];
	pthread_t thread;
	bool serving;
	int stop_fd;             /* eventfd: the server thread returns */
	_Alignas(8) uint8_t buf[BUF_SIZE];
};

static void reply(struct fuse_stall *fs, uint64_t unique, int error, const void *body,
		  size_t len)
{
	struct fuse_out_header h = { .len = (uint32_t)(sizeof(h) + (error ? 0 : len)),
				     .error = error, .unique = unique };
	uint8_t out[sizeof(h) + 256];

	memcpy(out, &h, sizeof(h));
	if (!error && len)
		memcpy(out + sizeof(h), body, len);
	if (write(fs->dev, out, h.len) < 0 && errno != ENOENT)
		fprintf(stderr, "fuse_stall: reply: %s\n", strerror(errno));
}

static struct fuse_attr attr_of(uint64_t node)
{
	struct fuse_attr a = { .ino = node, .nlink = 1, .blksize = 4096 };

	if (node == FUSE_ROOT_ID) {
		a.mode = S_IFDIR | 0755;
		a.nlink = 2;
	} else {
		a.mode = S_IFREG | 0666;
		a.size = FILE_SIZE;
		a.blocks = FILE_SIZE / 512;
	}
	return a;
}

static void serve(struct fuse_stall *fs, const struct fuse_in_header *in, const void *arg)
{
	switch (in->opcode) {
	case FUSE_INIT: {
		const struct fuse_init_in *ii = arg;
		struct fuse_init_out o = { .major = FUSE_KERNEL_VERSION,
					   .minor = ii->minor < FUSE_KERNEL_MINOR_VERSION ?
						    ii->minor : FUSE_KERNEL_MINOR_VERSION,
					   .max_readahead = ii->max_readahead,
					   .max_write = 4096, .max_background = 16,
					   .congestion_threshold = 12 };

		reply(fs, in->unique, 0, &o, sizeof(o));
		return;
	}
	case FUSE_FORGET:
	case FUSE_BATCH_FORGET:
		return; /* no reply */
	case FUSE_RELEASE:
	case FUSE_RELEASEDIR:
		reply(fs, in->unique, 0, NULL, 0);
		return;
	default:
		break;
	}
	switch (in->opcode) {
	case FUSE_LOOKUP: {
		struct fuse_entry_out e = { .nodeid = 2, .attr = attr_of(2) };

		if (in->nodeid == FUSE_ROOT_ID && !strcmp(arg, "f"))
			reply(fs, in->unique, 0, &e, sizeof(e));
		else
			reply(fs, in->unique, -ENOENT, NULL, 0);
		return;
	}
	case FUSE_GETATTR: {
		/* attr_valid 0: every fstat asks again */
		struct fuse_attr_out a = { .attr = attr_of(in->nodeid) };

		reply(fs, in->unique, 0, &a, sizeof(a));
		return;
	}
	case FUSE_OPEN:
	case FUSE_OPENDIR: {
		/* No FLUSH on close: a process that dies with the server
		 * hanging would otherwise wait for it in its own exit, while
		 * closing its files (not killable there). */
		struct fuse_open_out o = { .fh = 1, .open_flags = FOPEN_NOFLUSH };

		reply(fs, in->unique, 0, &o, sizeof(o));
		return;
	}
	case FUSE_FLUSH:
		reply(fs, in->unique, 0, NULL, 0);
		return;
	default:
		reply(fs, in->unique, -ENOSYS, NULL, 0);
		return;
	}
}

static void *server(void *arg)
{
	struct fuse_stall *fs = arg;

	for (;;) {
		struct pollfd p[2] = { { .fd = fs->dev, .events = POLLIN },
				       { .fd = fs->stop_fd, .events = POLLIN } };
		ssize_t n;

		if (poll(p, 2, -1) < 0 || p[1].revents)
			return NULL;
		n = read(fs->dev, fs->buf, sizeof(fs->buf));

		if (n < 0 && (errno == EINTR || errno == ENOENT || errno == EAGAIN))
			continue;
		if (n < (ssize_t)sizeof(struct fuse_in_header))
			return NULL; /* aborted or unmounted */
		serve(fs, (const struct fuse_in_header *)fs->buf,
		      fs->buf + sizeof(struct fuse_in_header));
	}
}

int fuse_stall_start(struct fuse_stall **out, const char **file)
{
	struct fuse_stall *fs = calloc(1, sizeof(*fs));
	char opts[128];
	struct stat st;
	int r;

	if (!fs)
		return -ENOMEM;
	fs->dev = -1;
	fs->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (fs->stop_fd < 0) {
		free(fs);
		return -errno;
	}
	/* a mount namespace of our own, its mounts never seen outside */
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		r = -errno;
		goto fail;
	}
	snprintf(fs->dir, sizeof(fs->dir), "/tmp/vre-fuse-XXXXXX");
	if (!mkdtemp(fs->dir)) {
		r = -errno;
		goto fail;
	}
	fs->dev = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fs->dev < 0) {
		r = -errno;
		goto fail_dir;
	}
	snprintf(opts, sizeof(opts), "fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other",
		 fs->dev);
	if (mount("vre-fuse-stall", fs->dir, "fuse", MS_NOSUID | MS_NODEV, opts) < 0) {
		r = -errno;
		goto fail_dir;
	}
	if (pthread_create(&fs->thread, NULL, server, fs) != 0) {
		r = -EAGAIN;
		umount2(fs->dir, MNT_DETACH);
		goto fail_dir;
	}
	fs->serving = true;
	if (stat(fs->dir, &st) < 0) { /* answered: not hanging yet */
		r = -errno;
		fuse_stall_stop(fs);
		return r;
	}
	snprintf(fs->file, sizeof(fs->file), "%s/f", fs->dir);
	*file = fs->file;
	*out = fs;
	return 0;
fail_dir:
	rmdir(fs->dir);
fail:
	if (fs->dev >= 0)
		close(fs->dev);
	close(fs->stop_fd);
	free(fs);
	return r;
}

/* Nobody reads the device from now on (the server thread returns; not
 * pthread_cancel, which AddressSanitizer does not survive): every request
 * stays pending in the kernel. A pending request (unlike one a server has read) ends when
 * its caller gets a fatal signal, so even a test that dies here leaves no
 * thread stuck in an uninterruptible wait. */
static void stop_serving(struct fuse_stall *fs)
{
	uint64_t one = 1;

	if (!fs->serving)
		return;
	if (write(fs->stop_fd, &one, sizeof(one)) != sizeof(one))
		fprintf(stderr, "fuse_stall: stop: %s\n", strerror(errno));
	pthread_join(fs->thread, NULL);
	fs->serving = false;
}

void fuse_stall_hang(struct fuse_stall *fs)
{
	stop_serving(fs);
}

void fuse_stall_stop(struct fuse_stall *fs)
{
	if (!fs)
		return;
	/* Never stat the mount: that would wait too. Releasing the last
	 * /dev/fuse file aborts the connection: every pending request ends
	 * with an error. */
	stop_serving(fs);
	close(fs->dev);
	close(fs->stop_fd);
	umount2(fs->dir, MNT_DETACH);
	rmdir(fs->dir);
	free(fs);
}
