/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Listening unix sockets with the permissions asked for (vre_listen_unix in
 * vre_control.h). fchmod() on a socket does not change its file, and a
 * chmod() after bind() leaves a window in which the file has the umask's
 * bits; so with permissions to apply, the socket is bound in a fresh
 * directory only this process can enter, given its owner, group and mode
 * there, and renamed into place: it appears at path already final.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "vre_control.h"

static bool perm_wanted(const struct vre_sock_perm *p)
{
	return p && (p->mode || p->set_owner || p->set_group);
}

static int bind_listen(int fd, const char *path, int backlog)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, backlog) < 0)
		return -errno;
	return 0;
}

/* chown (owner and/or group) before chmod: the mode never applies to a
 * group it was not meant for. */
static int apply_perm(const char *path, const struct vre_sock_perm *p)
{
	if ((p->set_owner || p->set_group) &&
	    chown(path, p->set_owner ? p->owner : (uid_t)-1,
		  p->set_group ? p->group : (gid_t)-1) < 0)
		return -errno;
	if (p->mode && chmod(path, (mode_t)(p->mode & 07777)) < 0)
		return -errno;
	return 0;
}

/* Binds in DIR/.vre-XXXXXX/s (mode 0700), applies perm, renames to path. */
static int listen_private(int fd, const char *path, const struct vre_sock_perm *p, int backlog)
{
	char dir[PATH_MAX], tmp[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int n, r;

	if (slash)
		n = snprintf(dir, sizeof(dir), "%.*s/.vre-XXXXXX", (int)(slash - path), path);
	else
		n = snprintf(dir, sizeof(dir), ".vre-XXXXXX");
	if (n < 0 || (size_t)n >= sizeof(dir) ||
	    (size_t)n + 3 > sizeof(((struct sockaddr_un *)0)->sun_path))
		return -ENAMETOOLONG;
	if (!mkdtemp(dir))
		return -errno;
	/* fits: n + 3 is below the socket address size checked above */
	memcpy(tmp, dir, (size_t)n);
	memcpy(tmp + n, "/s", 3);
	r = bind_listen(fd, tmp, backlog);
	if (r == 0)
		r = apply_perm(tmp, p);
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	rmdir(dir);
	return r;
}

int vre_listen_unix(const char *path, const struct vre_sock_perm *perm, int backlog)
{
	struct stat st;
	int fd, r;

	if (!path || !*path)
		return -EINVAL;
	if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return -ENAMETOOLONG;
	/* A socket left by an earlier run is ours to replace; anything else
	 * at the path is not. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST;
		if (!perm_wanted(perm))
			unlink(path); /* the private path renames over it instead */
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = perm_wanted(perm) ? listen_private(fd, path, perm, backlog)
			      : bind_listen(fd, path, backlog);
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}
