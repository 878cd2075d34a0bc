/* SPDX-License-Identifier: BSD-3-Clause */
#include "vre_log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int vre_log_level = VRE_LOG_INFO;

static const char *const level_names[] = { "err", "warn", "info", "debug" };

/* VRE_LOG=debug in the environment sets the starting level, so tests and
 * daemons can be made verbose without a rebuild. */
__attribute__((constructor)) static void log_from_env(void)
{
	const char *env = getenv("VRE_LOG");
	int level;

	if (env && (level = vre_log_parse_level(env)) >= 0)
		vre_log_level = level;
}

void vre_log_set_level(enum vre_log_level level)
{
	vre_log_level = level;
}

int vre_log_parse_level(const char *name)
{
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcmp(name, level_names[i]) == 0)
			return (int)i;
	return -EINVAL;
}

void vre_logf(enum vre_log_level level, const char *room, const char *fmt, ...)
{
	char line[512];
	struct timespec ts;
	va_list ap;
	int n;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	n = snprintf(line, sizeof(line), "[%ld.%06ld] vre %s %s: ", (long)ts.tv_sec,
		     ts.tv_nsec / 1000, level_names[level], room);
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(line))
		vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	/* One fputs per line keeps lines from different threads whole. */
	fprintf(stderr, "%s\n", line);
}
