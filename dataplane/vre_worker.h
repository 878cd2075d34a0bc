/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Pinned polling workers.
 *
 * A worker is one thread pinned to one CPU. It owns a list of poll items
 * (vhost queues, DPDK queues, control queues) and is the only thread that
 * calls their callbacks. Others change the list only through the quiesce
 * handshake: they publish a new list and bump the worker's request
 * generation; the worker, at the top of its loop and so outside any item,
 * picks up the new list and acknowledges the generation. A sleeping worker
 * is woken through its own eventfd. vre_worker_remove() returns only when
 * the worker can no longer touch the item.
 *
 * Polling policies:
 *   VRE_POLL_BUSY       poll forever;
 *   VRE_POLL_ADAPTIVE   poll while there is work; after idle_us without
 *                       work, arm every item (enable notifications), poll
 *                       once more if an arm reports pending work, else sleep
 *                       in epoll_wait on the items' wake fds and the
 *                       worker's eventfd; on wake, disarm and busy-poll;
 *   VRE_POLL_INTERRUPT  arm and sleep after every pass without work.
 * Sleeps are bounded (200 ms), so work that arrives without a kick (a
 * driver that got the notification rules wrong) is late, never lost.
 * An item with nothing to wake the worker (wake_fd -1: a DPDK port
 * without RX interrupts) can still let it sleep by giving nap_us: while
 * it is on the list, sleeps are naps that start at 16 us and double after
 * each idle one up to the smallest nap_us of the list (a backoff: a
 * first packet after a quiet spell waits at most nap_us). An
 * item that joins a list is disarmed first: a polled queue should not make
 * its driver kick.
 *
 * Counters are written only by the worker and read by anyone without locks
 * (each field is a relaxed atomic; a snapshot may mix two passes).
 */
#ifndef VRE_WORKER_H
#define VRE_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum vre_poll_mode {
	VRE_POLL_BUSY = 0,
	VRE_POLL_ADAPTIVE,
	VRE_POLL_INTERRUPT,
};

/* "poll", "adaptive", "interrupt" -> mode; -EINVAL otherwise. */
int vre_poll_mode_parse(const char *name);
const char *vre_poll_mode_name(enum vre_poll_mode m);

struct vre_worker;

/* One thing a worker polls. The owner fills the callbacks, ctx and
 * wake_fd, and keeps the item alive until vre_worker_remove() returned. */
struct vre_poll_item {
	/* Does up to one burst of work; returns the packets (or requests)
	 * taken from the source, delivered or dropped; 0 when idle. A
	 * negative return counts as 0. */
	int (*poll)(struct vre_poll_item *it);
	/* Enables notifications (e.g. vre_vq_notify_enable) and returns true
	 * when work arrived meanwhile, so the worker polls instead of
	 * sleeping. NULL: the item cannot be armed and the worker never sleeps
	 * while it is on the list. */
	bool (*arm)(struct vre_poll_item *it);
	/* Disables notifications again after a wake. Optional. */
	void (*disarm)(struct vre_poll_item *it);
	/* The fd that becomes readable when the item has work (a kick
	 * eventfd), or -1. The worker watches a dup of it (edge-triggered,
	 * never reads it), so the owner may close its copy at any time. */
	int wake_fd;
	void *ctx;
	const char *name;    /* for logs */
	/* With arm set and wake_fd -1: the longest sleep (us) the item
	 * allows, since only polling finds its work. 0: no bound of its own. */
	uint32_t nap_us;
	/* The item moves packets another item already returned (e.g. a
	 * handoff between workers): its returns make the pass busy but are
	 * not added to the packets counter, so each packet counts once. */
	bool relay;

	/* Owned by the worker library. */
	struct vre_worker *w;
	int watch_fd;        /* the dup watched by epoll, -1 when none */
};

struct vre_worker_stats {
	uint64_t busy_cycles;  /* TSC cycles of passes that did work */
	uint64_t packets;      /* sum of poll() returns, relay items' excepted */
	uint64_t polls;        /* passes over the list */
	uint64_t empty_polls;  /* passes without work */
	uint64_t sleeps;       /* epoll_wait calls that slept */
	uint64_t wakeups;      /* sleeps ended by a kick or a control wake */
	uint64_t quiesces;     /* list changes acknowledged */
};

struct vre_worker_config {
	int cpu;                     /* CPU to pin to */
	enum vre_poll_mode mode;
	uint32_t idle_us;            /* adaptive: idle time before sleeping; 0 = 100 */
	const char *name;            /* thread name; NULL = "vre-w<cpu>" */
	/* Called on the new thread before it polls (e.g. to register with
	 * DPDK); a negative return fails vre_worker_create with it. */
	int (*thread_init)(void *arg);
	void (*thread_fini)(void *arg);
	void *thread_arg;
};

/* Starts a worker pinned to cfg->cpu. Fails with -EINVAL (and a log line
 * naming the CPU) when the CPU does not exist or is not in this process's
 * affinity mask, or with the thread_init error. */
int vre_worker_create(const struct vre_worker_config *cfg, struct vre_worker **out);
/* Stops and joins the worker. Its items must have been removed. */
void vre_worker_destroy(struct vre_worker *w);

/* Every call below that waits for the worker's acknowledgement waits
 * however long it takes, because its caller goes on to free or unmap what
 * the worker may be inside: a warning after 1 s, then an error line
 * ("worker stuck in an item, still waiting") every 5 s. No timeout: a
 * timeout followed by an unmap is a use-after-unmap. Nothing a frontend
 * controls can hold a worker (control/notify.c), so in practice only an
 * overloaded CPU makes these slow. */
/* Adds it to w's list; the worker polls it from its next pass. -ENOMEM,
 * -EBUSY if it is already on a list, -EBADF for a wake_fd that cannot be
 * watched. Not from a worker thread. */
int vre_worker_add(struct vre_worker *w, struct vre_poll_item *it);
/* Removes it; returns once the worker has acknowledged and so can no longer
 * touch it. No-op for an item on no list. Not from a worker thread. */
void vre_worker_remove(struct vre_poll_item *it);
/* Returns once the worker has started a new pass (outside any item), so
 * every store made before the call is seen by whatever it polls next, and
 * nothing it read before is still in use. Not from a worker thread. */
void vre_worker_sync(struct vre_worker *w);

void vre_worker_get_stats(const struct vre_worker *w, struct vre_worker_stats *out);
int vre_worker_cpu(const struct vre_worker *w);
enum vre_poll_mode vre_worker_mode(const struct vre_worker *w);
unsigned vre_worker_num_items(struct vre_worker *w);
/* The worker thread's Linux thread id (for /proc/.../task/TID). */
int vre_worker_tid(const struct vre_worker *w);

/* TSC ticks per second (calibrated once against CLOCK_MONOTONIC). */
uint64_t vre_tsc_hz(void);

/* A set of workers, one per CPU of a list such as "1" or "0-1,3". */
struct vre_worker_pool {
	struct vre_worker **w;
	unsigned n;
	unsigned next; /* round-robin cursor */
};

/* Parses "0-1,3" into cpus (at most max). Returns the count or -EINVAL. */
int vre_cpulist_parse(const char *s, int *cpus, unsigned max);
/* Checks that list parses and that every CPU in it is one this process may
 * run on. 0; -EINVAL for a bad list; -ESRCH with *bad set to the first CPU
 * that is not present or not allowed. */
int vre_cpulist_check(const char *list, int *bad);
/* vre_cpulist_check as a sentence for a usage error: NULL when the list is
 * fine, else what is wrong with it, formatted into buf. */
const char *vre_cpulist_problem(const char *list, char *buf, size_t len);
/* The highest-numbered CPU this process may run on: the default worker CPU,
 * leaving the lower ones (where frontends usually start) to others. */
int vre_cpu_last_allowed(void);
/* Starts one worker per CPU of cpulist; tmpl gives everything but the CPU.
 * On failure, the workers already started are stopped. */
int vre_worker_pool_create(struct vre_worker_pool *p, const char *cpulist,
			   const struct vre_worker_config *tmpl);
void vre_worker_pool_destroy(struct vre_worker_pool *p);
/* The next worker in round-robin order. */
struct vre_worker *vre_worker_pool_next(struct vre_worker_pool *p);

#endif
