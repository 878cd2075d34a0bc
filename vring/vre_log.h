/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One logging facility for every room. Messages below the current level are
 * dropped before formatting, so a debug line on a cold path costs one compare.
 * Output goes to stderr, one line per call, prefixed with level and room.
 * A line never spans lines: control characters in the formatted message are
 * written as \xNN, whatever put them there.
 *
 * Lines a peer can provoke (a frontend's refused requests) go through a
 * rate limit the caller keeps per peer (VRE_LOG_RL), and text a peer chose
 * (a file name, a memfd name) through vre_log_escape, so a hostile peer can
 * neither flood the log nor forge lines in it.
 *
 * When stderr is the systemd journal (JOURNAL_STREAM names it), each line
 * starts with the journal's priority instead of a timestamp ("<3>" err,
 * "<4>" warn, "<6>" info, "<7>" debug), so journalctl filters by level.
 * The level may change at any time from any thread (vre_log_set_level).
 */
#ifndef VRE_LOG_H
#define VRE_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum vre_log_level {
	VRE_LOG_ERR = 0,
	VRE_LOG_WARN,
	VRE_LOG_INFO,
	VRE_LOG_DEBUG,
};

extern int vre_log_level;

void vre_log_set_level(enum vre_log_level level);
/* True when stderr is the journal and lines carry its priorities (so an
 * application can give its other log streams, e.g. DPDK's, the same). */
bool vre_log_journal(void);
/* Parses "err", "warn", "info", "debug"; returns -EINVAL for anything else. */
int vre_log_parse_level(const char *name);
void vre_logf(enum vre_log_level level, const char *room, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define VRE_LOG(level, room, ...)                                              \
	do {                                                                   \
		if ((int)(level) <= __atomic_load_n(&vre_log_level, __ATOMIC_RELAXED)) \
			vre_logf((level), (room), __VA_ARGS__);                \
	} while (0)

#define VRE_ERR(room, ...)   VRE_LOG(VRE_LOG_ERR, room, __VA_ARGS__)
#define VRE_WARN(room, ...)  VRE_LOG(VRE_LOG_WARN, room, __VA_ARGS__)
#define VRE_INFO(room, ...)  VRE_LOG(VRE_LOG_INFO, room, __VA_ARGS__)
#define VRE_DEBUG(room, ...) VRE_LOG(VRE_LOG_DEBUG, room, __VA_ARGS__)

/* A rate limit for the lines one peer can provoke: at most VRE_RL_BURST
 * lines per VRE_RL_INTERVAL_MS; lines beyond are dropped and counted, and
 * the first line let through afterwards says how many were dropped. One
 * owner thread (no locking); all zero is a fresh limit. */
#define VRE_RL_BURST 10
#define VRE_RL_INTERVAL_MS 5000
struct vre_ratelimit {
	uint64_t start_ns;    /* start of the current interval, 0: none yet */
	unsigned printed;     /* lines let through in it */
	unsigned suppressed;  /* lines dropped since the last one let through */
};

/* True when a line may be logged now; *dropped (if not NULL) gets the
 * number of lines dropped since the last one let through. */
bool vre_ratelimit_ok(struct vre_ratelimit *rl, unsigned *dropped);
void vre_logf_rl(struct vre_ratelimit *rl, enum vre_log_level level, const char *room,
		 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define VRE_LOG_RL(rl, level, room, ...)                                       \
	do {                                                                   \
		if ((int)(level) <= __atomic_load_n(&vre_log_level, __ATOMIC_RELAXED)) \
			vre_logf_rl((rl), (level), (room), __VA_ARGS__);       \
	} while (0)

/* For an owner that polls (a control loop): once rl's interval is over
 * (or now, with force, e.g. at shutdown), logs how many lines it dropped
 * since the last one let through, so a flood's count is told even when
 * no later line comes to carry it. Nothing when none were dropped. */
void vre_ratelimit_flush(struct vre_ratelimit *rl, enum vre_log_level level, const char *room,
			 bool force);

/* Copies peer-chosen text into out (len bytes, len > 0) for a log line:
 * control characters, backslash and bytes above 0x7e become \xNN, and text
 * that does not fit ends in "...". Returns out. */
const char *vre_log_escape(const char *in, char *out, size_t len);

#endif
