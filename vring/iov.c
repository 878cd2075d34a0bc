/* SPDX-License-Identifier: BSD-3-Clause */
#include <string.h>

#include "vre_iov.h"

/* Finds the segment holding byte off; *in is the offset inside it. */
static unsigned seek(const struct iovec *iov, unsigned n, uint64_t off, size_t *in)
{
	unsigned i = 0;

	while (i < n && off >= iov[i].iov_len) {
		off -= iov[i].iov_len;
		i++;
	}
	*in = (size_t)off;
	return i;
}

size_t vre_iov_read(const struct iovec *iov, unsigned n, uint64_t off, void *dst,
		    size_t len)
{
	uint8_t *d = dst;
	size_t in, done = 0;

	for (unsigned i = seek(iov, n, off, &in); i < n && done < len; i++, in = 0) {
		size_t chunk = iov[i].iov_len - in;

		if (chunk > len - done)
			chunk = len - done;
		if (chunk == 0)
			continue; /* an empty segment may carry a NULL base */
		memcpy(d + done, (const uint8_t *)iov[i].iov_base + in, chunk);
		done += chunk;
	}
	return done;
}

size_t vre_iov_write(const struct iovec *iov, unsigned n, uint64_t off,
		     const void *src, size_t len)
{
	const uint8_t *s = src;
	size_t in, done = 0;

	for (unsigned i = seek(iov, n, off, &in); i < n && done < len; i++, in = 0) {
		size_t chunk = iov[i].iov_len - in;

		if (chunk > len - done)
			chunk = len - done;
		if (chunk == 0)
			continue;
		memcpy((uint8_t *)iov[i].iov_base + in, s + done, chunk);
		done += chunk;
	}
	return done;
}
