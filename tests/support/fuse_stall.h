/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A FUSE file system served by a thread of the test, with one regular file
 * "f" of 1 MiB, whose server can be told to stop answering: the file a
 * hostile frontend would hand over as guest memory (its fstat, fstatfs,
 * mmap and page faults wait for the server; its close does not, the file
 * is opened FOPEN_NOFLUSH so that a test that fails cannot hang in its own
 * exit). Speaks the kernel's FUSE protocol on /dev/fuse directly (no
 * libfuse).
 *
 * Needs root (mount) and /dev/fuse; the mount lives in a mount namespace of
 * the calling process's own (unshare), so it vanishes with the process
 * whatever happens. fuse_stall_start returns -errno when any of that is
 * missing (the caller skips).
 */
#ifndef FUSE_STALL_H
#define FUSE_STALL_H

#include <stdbool.h>

struct fuse_stall;

/* Mounts at a fresh temp dir; *file gets the path of the file. */
int fuse_stall_start(struct fuse_stall **out, const char **file);
/* From now on no request gets an answer (the server stops reading them:
 * they wait in the kernel, killable). */
void fuse_stall_hang(struct fuse_stall *fs);
/* Aborts the connection (every waiting request fails), unmounts, frees. */
void fuse_stall_stop(struct fuse_stall *fs);

#endif
