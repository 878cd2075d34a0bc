/* SPDX-License-Identifier: BSD-3-Clause */
/* num.h: one decimal parser for vre-switch and vre-ctl. */
#include <errno.h>
#include <stdlib.h>

#include "num.h"

int num_parse(const char *s, long lo, long hi, long *v)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(s, &end, 10);
	if (end == s || *end)
		return -EINVAL;
	if (errno || n < lo || n > hi)
		return -ERANGE;
	*v = n;
	return 0;
}
