/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Copies between a flat buffer and a chain's iovecs, starting at a byte
 * offset. Every device needs them (net headers, blk headers and status,
 * control-queue commands); they never touch bytes outside the iovecs.
 */
#ifndef VRE_IOV_H
#define VRE_IOV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* Copies up to len bytes from iov[0..n), starting off bytes in, into dst.
 * Returns the bytes copied: less than len when the iovecs end first. */
size_t vre_iov_read(const struct iovec *iov, unsigned n, uint64_t off, void *dst,
		    size_t len);
/* Copies up to len bytes from src into iov[0..n), starting off bytes in.
 * Returns the bytes written. */
size_t vre_iov_write(const struct iovec *iov, unsigned n, uint64_t off,
		     const void *src, size_t len);

#endif
