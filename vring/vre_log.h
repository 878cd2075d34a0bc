/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One logging facility for every room. Messages below the current level are
 * dropped before formatting, so a debug line on a cold path costs one compare.
 * Output goes to stderr, one line per call, prefixed with level and room.
 */
#ifndef VRE_LOG_H
#define VRE_LOG_H

#include <stdarg.h>

enum vre_log_level {
	VRE_LOG_ERR = 0,
	VRE_LOG_WARN,
	VRE_LOG_INFO,
	VRE_LOG_DEBUG,
};

extern int vre_log_level;

void vre_log_set_level(enum vre_log_level level);
/* Parses "err", "warn", "info", "debug"; returns -EINVAL for anything else. */
int vre_log_parse_level(const char *name);
void vre_logf(enum vre_log_level level, const char *room, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define VRE_LOG(level, room, ...)                                              \
	do {                                                                   \
		if ((int)(level) <= vre_log_level)                             \
			vre_logf((level), (room), __VA_ARGS__);                \
	} while (0)

#define VRE_ERR(room, ...)   VRE_LOG(VRE_LOG_ERR, room, __VA_ARGS__)
#define VRE_WARN(room, ...)  VRE_LOG(VRE_LOG_WARN, room, __VA_ARGS__)
#define VRE_INFO(room, ...)  VRE_LOG(VRE_LOG_INFO, room, __VA_ARGS__)
#define VRE_DEBUG(room, ...) VRE_LOG(VRE_LOG_DEBUG, room, __VA_ARGS__)

#endif
