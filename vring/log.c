/* SPDX-License-Identifier: BSD-3-Clause */
#include "vre_log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int vre_log_level = VRE_LOG_INFO;

static const char *const level_names[] = { "err", "warn", "info", "debug" };
/* syslog priorities for the journal: LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG */
static const char *const journal_prio[] = { "<3>", "<4>", "<6>", "<7>" };
static int to_journal = -1; /* -1: not looked at yet */

/* systemd sets JOURNAL_STREAM=DEV:INODE for a service whose stderr is the
 * journal; stderr is the journal only while its fd still is that file. */
static bool stderr_is_journal(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!env || sscanf(env, "%llu:%llu", &dev, &ino) != 2 || fstat(2, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

/* VRE_LOG=debug in the environment sets the starting level, so tests and
 * daemons can be made verbose without a rebuild. */
__attribute__((constructor)) static void log_from_env(void)
{
	const char *env = getenv("VRE_LOG");
	int level;

	if (env && (level = vre_log_parse_level(env)) >= 0)
		vre_log_level = level;
	to_journal = stderr_is_journal();
}

void vre_log_set_level(enum vre_log_level level)
{
	__atomic_store_n(&vre_log_level, (int)level, __ATOMIC_RELAXED);
}

bool vre_log_journal(void)
{
	return to_journal > 0;
}

int vre_log_parse_level(const char *name)
{
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcmp(name, level_names[i]) == 0)
			return (int)i;
	return -EINVAL;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Whatever the message holds, the line stays one line: control
 * characters are rewritten as \xNN (what no longer fits is cut). */
static void defuse(char *s, size_t cap)
{
	char tmp[512];
	size_t o = 0;
	const unsigned char *p = (const unsigned char *)s;

	while (*p && *p >= 0x20 && *p != 0x7f)
		p++;
	if (!*p)
		return; /* the common case: nothing to do */
	for (p = (const unsigned char *)s; *p && o + 5 < sizeof(tmp); p++) {
		if (*p < 0x20 || *p == 0x7f)
			o += (size_t)snprintf(tmp + o, 5, "\\x%02x", *p);
		else
			tmp[o++] = (char)*p;
	}
	if (o >= cap)
		o = cap - 1;
	memcpy(s, tmp, o);
	s[o] = '\0';
}

static void vlog(enum vre_log_level level, const char *room, const char *suffix,
		 const char *fmt, va_list ap)
{
	char line[512];
	uint64_t ns = mono_ns();
	int n;

	if (to_journal > 0) /* the journal stamps lines itself */
		n = snprintf(line, sizeof(line), "%svre %s %s: ", journal_prio[level],
			     level_names[level], room);
	else
		n = snprintf(line, sizeof(line), "[%llu.%06llu] vre %s %s: ",
			     (unsigned long long)(ns / 1000000000u),
			     (unsigned long long)(ns % 1000000000u / 1000u), level_names[level],
			     room);
	if (n > 0 && (size_t)n < sizeof(line)) {
		vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
		defuse(line + n, sizeof(line) - (size_t)n);
	}
	/* One fprintf per line keeps lines from different threads whole. */
	fprintf(stderr, "%s%s\n", line, suffix);
}

void vre_logf(enum vre_log_level level, const char *room, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, room, "", fmt, ap);
	va_end(ap);
}

bool vre_ratelimit_ok(struct vre_ratelimit *rl, unsigned *dropped)
{
	uint64_t now = mono_ns();

	if (!rl->start_ns || now - rl->start_ns >= VRE_RL_INTERVAL_MS * 1000000ull) {
		rl->start_ns = now;
		rl->printed = 0;
	}
	if (rl->printed >= VRE_RL_BURST) {
		rl->suppressed++;
		return false;
	}
	rl->printed++;
	if (dropped)
		*dropped = rl->suppressed;
	rl->suppressed = 0;
	return true;
}

void vre_logf_rl(struct vre_ratelimit *rl, enum vre_log_level level, const char *room,
		 const char *fmt, ...)
{
	char suffix[64] = "";
	unsigned dropped;
	va_list ap;

	if (!vre_ratelimit_ok(rl, &dropped))
		return;
	if (dropped)
		snprintf(suffix, sizeof(suffix), " (%u similar lines suppressed before this one)",
			 dropped);
	va_start(ap, fmt);
	vlog(level, room, suffix, fmt, ap);
	va_end(ap);
}

void vre_ratelimit_flush(struct vre_ratelimit *rl, enum vre_log_level level, const char *room,
			 bool force)
{
	if (!rl->suppressed)
		return;
	if (!force && mono_ns() - rl->start_ns < VRE_RL_INTERVAL_MS * 1000000ull)
		return;
	VRE_LOG(level, room, "%u similar lines suppressed", rl->suppressed);
	rl->suppressed = 0;
	rl->start_ns = 0; /* the next line opens a fresh interval */
}

const char *vre_log_escape(const char *in, char *out, size_t len)
{
	size_t o = 0;

	if (len < 4) {
		if (len)
			out[0] = '\0';
		return out;
	}
	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		size_t need = (*p < 0x20 || *p > 0x7e || *p == '\\') ? 4 : 1;

		/* keep room for "..." and the terminator */
		if (o + need + 4 > len) {
			memcpy(out + o, "...", 4);
			return out;
		}
		if (need == 4)
			snprintf(out + o, 5, "\\x%02x", *p);
		else
			out[o] = (char)*p;
		o += need;
	}
	out[o] = '\0';
	return out;
}
