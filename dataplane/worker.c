/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Pinned polling workers and the quiesce handshake (see vre_worker.h).
 *
 * Handshake: the control side (serialised by w->lock) publishes a new
 * item array in w->list, then bumps w->req_gen with release order and
 * writes the worker's eventfd. The worker loads req_gen with acquire order
 * at the top of each pass (outside any item); when it changed, it loads the
 * list and stores the generation into w->ack_gen. From that store on it
 * never reads the old array again, so the control side may free the array
 * and hand removed items back to their owner.
 */
#include "vre_worker.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

#include "vre_log.h"

#define ROOM "worker"
#define SYNC_WARN_MS 1000      /* a handshake this slow is worth a warning */
#define SYNC_STUCK_MS 5000     /* ... and one this slow an error, every time */
#define SLEEP_TIMEOUT_MS 200   /* bounded sleep: a missed kick costs at most this */
#define DEFAULT_IDLE_US 100
#define TAG_SELF 1u            /* epoll tag of the worker's own eventfd */
#define NAP_MIN_US 16          /* first nap of an item without a wake fd */

struct poll_list {
	unsigned n;
	struct vre_poll_item *it[];
};

struct vre_worker {
	/* Written by the control side, read by the worker every pass. */
	_Alignas(64) uint64_t req_gen;
	struct poll_list *list;
	bool stop;

	/* Written by the worker only. */
	_Alignas(64) uint64_t ack_gen;
	struct vre_worker_stats st;

	/* Set up once. */
	_Alignas(64) pthread_mutex_t lock; /* serialises control-side changes */
	pthread_t thread;
	int epfd;
	int evfd;
	int cpu;
	int tid;
	enum vre_poll_mode mode;
	uint64_t idle_cycles;
	struct vre_worker_config cfg;
	char name[16];
	sem_t started;
	int start_err;
};

/* ---- time ---- */

static inline uint64_t rdtsc(void)
{
#if defined(__x86_64__) || defined(__i386__)
	return __rdtsc();
#else
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#endif
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	_mm_pause();
#endif
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t tsc_hz_cached;

static void tsc_calibrate(void)
{
	struct timespec d = { 0, 20 * 1000 * 1000 };
	uint64_t t0 = mono_ns(), c0 = rdtsc();
	uint64_t t1, c1;

	nanosleep(&d, NULL);
	t1 = mono_ns();
	c1 = rdtsc();
	tsc_hz_cached = (c1 - c0) * 1000000000u / (t1 - t0 ? t1 - t0 : 1);
	if (tsc_hz_cached == 0)
		tsc_hz_cached = 1000000000u;
}

uint64_t vre_tsc_hz(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, tsc_calibrate);
	return tsc_hz_cached;
}

/* ---- names ---- */

static const char *const mode_names[] = { "poll", "adaptive", "interrupt" };

int vre_poll_mode_parse(const char *name)
{
	for (unsigned i = 0; i < 3; i++)
		if (strcmp(name, mode_names[i]) == 0)
			return (int)i;
	return -EINVAL;
}

const char *vre_poll_mode_name(enum vre_poll_mode m)
{
	return (unsigned)m < 3 ? mode_names[m] : "?";
}

/* ---- the worker loop ---- */

/* Single writer: a relaxed load+store is one plain add on x86, and readers
 * on other threads still get whole values. */
#define STAT_ADD(w, field, v)                                                  \
	__atomic_store_n(&(w)->st.field,                                       \
			 __atomic_load_n(&(w)->st.field, __ATOMIC_RELAXED) + (v), \
			 __ATOMIC_RELAXED)

static void disarm_all(const struct poll_list *l)
{
	for (unsigned i = 0; i < l->n; i++)
		if (l->it[i]->disarm)
			l->it[i]->disarm(l->it[i]);
}

/* Arms every item. Returns true when the worker may sleep: every item
 * could be armed and none reported pending work. */
static bool arm_all(const struct poll_list *l)
{
	bool pending = false;

	for (unsigned i = 0; i < l->n; i++) {
		struct vre_poll_item *it = l->it[i];

		if (!it->arm || it->arm(it))
			pending = true;
	}
	return !pending;
}

static void drain_self(struct vre_worker *w)
{
	uint64_t v;

	if (read(w->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		VRE_WARN(ROOM, "%s: eventfd read: %s", w->name, strerror(errno));
}

/* The smallest nap_us of the list; 0 when no item bounds the sleep. */
static uint32_t nap_bound(const struct poll_list *l)
{
	uint32_t b = 0;

	for (unsigned i = 0; i < l->n; i++) {
		uint32_t n = l->it[i]->nap_us;

		if (n && (!b || n < b))
			b = n;
	}
	return b;
}

/* epoll_wait with a microsecond timeout (epoll_pwait2, Linux 5.11);
 * older kernels get it rounded up to milliseconds. */
static int wait_us(int epfd, struct epoll_event *ev, int max, uint64_t us)
{
	static bool no_pwait2;
	struct timespec to = { (time_t)(us / 1000000u), (long)(us % 1000000u) * 1000 };
	int n;

	if (!__atomic_load_n(&no_pwait2, __ATOMIC_RELAXED)) {
		n = epoll_pwait2(epfd, ev, max, &to, NULL);
		if (n >= 0 || errno != ENOSYS)
			return n;
		__atomic_store_n(&no_pwait2, true, __ATOMIC_RELAXED);
	}
	return epoll_wait(epfd, ev, max, (int)((us + 999) / 1000));
}

/* Arms, re-checks and sleeps until a kick, a control wake or the bounded
 * timeout; disarms again before returning to polling. *nap is the backoff
 * of items without a wake fd (see vre_worker.h). Returns true when
 * something woke the worker, false when it slept until the timeout (or
 * did not sleep). */
static bool sleep_once(struct vre_worker *w, const struct poll_list *l, uint64_t seen_gen,
		       uint32_t *nap)
{
	struct epoll_event ev[16];
	uint64_t us = SLEEP_TIMEOUT_MS * 1000u;
	uint32_t bound = nap_bound(l);
	int n;

	if (!arm_all(l)) {
		disarm_all(l);
		return true;
	}
	/* A list change published after our last look has written evfd, so
	 * epoll_wait returns at once; this check only saves the syscall. */
	if (__atomic_load_n(&w->req_gen, __ATOMIC_ACQUIRE) != seen_gen ||
	    __atomic_load_n(&w->stop, __ATOMIC_RELAXED)) {
		disarm_all(l);
		return true;
	}
	if (bound) {
		us = *nap < bound ? *nap : bound;
		*nap = us * 2 < bound ? (uint32_t)us * 2 : bound;
	}
	STAT_ADD(w, sleeps, 1);
	n = wait_us(w->epfd, ev, 16, us);
	if (n > 0)
		STAT_ADD(w, wakeups, 1);
	for (int i = 0; i < n; i++)
		if (ev[i].data.u64 == TAG_SELF)
			drain_self(w);
	disarm_all(l);
	return n != 0;
}

static bool is_idle(struct vre_worker *w, uint64_t now, uint64_t last_work)
{
	switch (w->mode) {
	case VRE_POLL_INTERRUPT:
		return true;
	case VRE_POLL_ADAPTIVE:
		return now - last_work >= w->idle_cycles;
	default:
		return false;
	}
}

static void worker_loop(struct vre_worker *w)
{
	static const struct poll_list empty = { 0 };
	const struct poll_list *l = &empty;
	uint64_t seen_gen = 0;
	uint64_t last_work = rdtsc();
	uint32_t nap = NAP_MIN_US;

	while (!__atomic_load_n(&w->stop, __ATOMIC_RELAXED)) {
		uint64_t g = __atomic_load_n(&w->req_gen, __ATOMIC_ACQUIRE);
		uint64_t t0, t1, work = 0, pkts = 0;

		if (g != seen_gen) {
			const struct poll_list *nl = __atomic_load_n(&w->list, __ATOMIC_ACQUIRE);

			l = nl ? nl : &empty;
			seen_gen = g;
			/* New items start with notifications on; a polled
			 * queue should not make its driver kick. */
			disarm_all(l);
			STAT_ADD(w, quiesces, 1);
			__atomic_store_n(&w->ack_gen, g, __ATOMIC_RELEASE);
		}

		t0 = rdtsc();
		for (unsigned i = 0; i < l->n; i++) {
			struct vre_poll_item *it = l->it[i];
			int r = it->poll(it);

			if (r > 0) {
				work += (unsigned)r;
				pkts += it->relay ? 0 : (unsigned)r;
			}
		}
		t1 = rdtsc();
		STAT_ADD(w, polls, 1);
		if (work) {
			STAT_ADD(w, busy_cycles, t1 - t0);
			STAT_ADD(w, packets, pkts);
			last_work = t1;
			nap = NAP_MIN_US;
			continue;
		}
		STAT_ADD(w, empty_polls, 1);
		if (is_idle(w, t1, last_work)) {
			/* interrupt mode re-arms after the next empty pass;
			 * adaptive polls a whole idle period first after a
			 * wake-up, but sleeps again at once after a sleep
			 * that timed out (nothing came: naps back off) */
			if (sleep_once(w, l, seen_gen, &nap))
				last_work = rdtsc();
		} else {
			cpu_relax();
		}
	}
	/* Acknowledge the last generation so a racing sync does not wait. */
	__atomic_store_n(&w->ack_gen, __atomic_load_n(&w->req_gen, __ATOMIC_ACQUIRE),
			 __ATOMIC_RELEASE);
}

static void *worker_main(void *arg)
{
	struct vre_worker *w = arg;
	int err = 0;

	pthread_setname_np(pthread_self(), w->name);
	w->tid = gettid();
	if (w->cfg.thread_init)
		err = w->cfg.thread_init(w->cfg.thread_arg);
	w->start_err = err;
	sem_post(&w->started);
	if (err < 0)
		return NULL;
	VRE_INFO(ROOM, "%s: running on CPU %d, %s polling", w->name, w->cpu,
		 vre_poll_mode_name(w->mode));
	worker_loop(w);
	if (w->cfg.thread_fini)
		w->cfg.thread_fini(w->cfg.thread_arg);
	return NULL;
}

/* ---- lifecycle ---- */

static int epoll_watch(int epfd, int fd, uint64_t tag, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.u64 = tag };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static int start_thread(struct vre_worker *w)
{
	pthread_attr_t attr;
	cpu_set_t set;
	int err;

	CPU_ZERO(&set);
	CPU_SET(w->cpu, &set);
	pthread_attr_init(&attr);
	pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
	err = pthread_create(&w->thread, &attr, worker_main, w);
	pthread_attr_destroy(&attr);
	if (err) {
		VRE_ERR(ROOM, "cannot start a worker on CPU %d: %s (CPU not present, offline or not allowed?)",
			w->cpu, strerror(err));
		return -err;
	}
	sem_wait(&w->started);
	if (w->start_err < 0) {
		pthread_join(w->thread, NULL);
		VRE_ERR(ROOM, "worker on CPU %d: thread init failed: %s", w->cpu,
			strerror(-w->start_err));
		return w->start_err;
	}
	return 0;
}

static void worker_free(struct vre_worker *w)
{
	if (w->epfd >= 0)
		close(w->epfd);
	if (w->evfd >= 0)
		close(w->evfd);
	sem_destroy(&w->started);
	pthread_mutex_destroy(&w->lock);
	free(w->list);
	free(w);
}

int vre_worker_create(const struct vre_worker_config *cfg, struct vre_worker **out)
{
	struct vre_worker *w;
	int err;

	if (cfg->cpu < 0 || cfg->cpu >= CPU_SETSIZE) {
		VRE_ERR(ROOM, "CPU %d is out of range", cfg->cpu);
		return -EINVAL;
	}
	if ((unsigned)cfg->mode > VRE_POLL_INTERRUPT)
		return -EINVAL;
	w = aligned_alloc(64, (sizeof(*w) + 63) & ~(size_t)63);
	if (!w)
		return -ENOMEM;
	memset(w, 0, sizeof(*w));
	w->cfg = *cfg;
	w->cpu = cfg->cpu;
	w->mode = cfg->mode;
	w->idle_cycles = vre_tsc_hz() / 1000000u * (cfg->idle_us ? cfg->idle_us : DEFAULT_IDLE_US);
	snprintf(w->name, sizeof(w->name), "%s", cfg->name ? cfg->name : "");
	if (!cfg->name)
		snprintf(w->name, sizeof(w->name), "vre-w%d", cfg->cpu);
	pthread_mutex_init(&w->lock, NULL);
	sem_init(&w->started, 0, 0);
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->epfd < 0 || w->evfd < 0) {
		err = -errno;
		goto fail;
	}
	err = epoll_watch(w->epfd, w->evfd, TAG_SELF, EPOLLIN);
	if (err < 0)
		goto fail;
	err = start_thread(w);
	if (err < 0)
		goto fail;
	*out = w;
	return 0;
fail:
	worker_free(w);
	return err;
}

static void wake(struct vre_worker *w)
{
	uint64_t one = 1;

	if (write(w->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		VRE_WARN(ROOM, "%s: wake: %s", w->name, strerror(errno));
}

void vre_worker_destroy(struct vre_worker *w)
{
	if (!w)
		return;
	if (w->list && w->list->n)
		VRE_WARN(ROOM, "%s: destroyed with %u items on its list", w->name, w->list->n);
	__atomic_store_n(&w->stop, true, __ATOMIC_RELEASE);
	wake(w);
	pthread_join(w->thread, NULL);
	worker_free(w);
}

/* Bumps the generation and waits for the worker's acknowledgement, however
 * long it takes: every caller goes on to free, unmap or hand back what the
 * worker may still be inside, so giving up would be a use-after-free. A
 * slow handshake is logged once after SYNC_WARN_MS, and as an error every
 * SYNC_STUCK_MS after that. Caller holds w->lock. */
static void handshake(struct vre_worker *w)
{
	uint64_t g = __atomic_load_n(&w->req_gen, __ATOMIC_RELAXED) + 1;
	uint64_t start = mono_ns(), next_ms = SYNC_WARN_MS;
	struct timespec nap = { 0, 20 * 1000 };

	__atomic_store_n(&w->req_gen, g, __ATOMIC_RELEASE);
	wake(w);
	while (__atomic_load_n(&w->ack_gen, __ATOMIC_ACQUIRE) < g) {
		uint64_t waited_ms = (mono_ns() - start) / 1000000u;

		if (waited_ms >= next_ms) {
			if (next_ms == SYNC_WARN_MS) {
				VRE_WARN(ROOM, "%s: still waiting for the worker to leave its items",
					 w->name);
				next_ms = SYNC_STUCK_MS;
			} else {
				VRE_ERR(ROOM, "%s: no acknowledgement for %llu s; worker stuck in an item, still waiting",
					w->name, (unsigned long long)(waited_ms / 1000));
				next_ms += SYNC_STUCK_MS;
			}
		}
		nanosleep(&nap, NULL);
	}
}

void vre_worker_sync(struct vre_worker *w)
{
	pthread_mutex_lock(&w->lock);
	handshake(w);
	pthread_mutex_unlock(&w->lock);
}

/* Publishes a copy of the current list with add appended and/or del left
 * out, then waits until the worker uses it (and so no longer reads the old
 * one). */
static int publish(struct vre_worker *w, struct vre_poll_item *add,
		   const struct vre_poll_item *del)
{
	struct poll_list *old = w->list, *nl;
	unsigned n = old ? old->n : 0, k = 0;

	nl = malloc(sizeof(*nl) + (n + 1) * sizeof(nl->it[0]));
	if (!nl)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++)
		if (old->it[i] != del)
			nl->it[k++] = old->it[i];
	if (add)
		nl->it[k++] = add;
	nl->n = k;
	__atomic_store_n(&w->list, nl, __ATOMIC_RELEASE);
	handshake(w);
	free(old);
	return 0;
}

int vre_worker_add(struct vre_worker *w, struct vre_poll_item *it)
{
	int err;

	if (!it->poll)
		return -EINVAL;
	if (it->w)
		return -EBUSY;
	it->watch_fd = -1;
	pthread_mutex_lock(&w->lock);
	if (it->wake_fd >= 0) {
		it->watch_fd = fcntl(it->wake_fd, F_DUPFD_CLOEXEC, 0);
		if (it->watch_fd < 0) {
			err = -EBADF;
			goto out;
		}
		/* Edge-triggered: every eventfd write is a new edge, and the
		 * kick counter is never read, so the frontend's fd keeps
		 * whatever blocking mode it has. */
		err = epoll_watch(w->epfd, it->watch_fd, 0, EPOLLIN | EPOLLET);
		if (err < 0) {
			close(it->watch_fd);
			it->watch_fd = -1;
			goto out;
		}
	}
	it->w = w;
	err = publish(w, it, NULL);
	if (err < 0) {
		if (it->watch_fd >= 0) {
			epoll_ctl(w->epfd, EPOLL_CTL_DEL, it->watch_fd, NULL);
			close(it->watch_fd);
			it->watch_fd = -1;
		}
		it->w = NULL;
	}
out:
	pthread_mutex_unlock(&w->lock);
	return err;
}

void vre_worker_remove(struct vre_poll_item *it)
{
	struct vre_worker *w = it->w;

	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	/* Returning before the worker let go would let the owner free an
	 * item the worker is inside: publish waits, loudly, however long. */
	while (publish(w, NULL, it) == -ENOMEM) {
		struct timespec nap = { 0, 1000 * 1000 };

		nanosleep(&nap, NULL);
	}
	if (it->watch_fd >= 0) {
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, it->watch_fd, NULL);
		close(it->watch_fd);
		it->watch_fd = -1;
	}
	it->w = NULL;
	pthread_mutex_unlock(&w->lock);
}

/* ---- introspection ---- */

void vre_worker_get_stats(const struct vre_worker *w, struct vre_worker_stats *o)
{
	o->busy_cycles = __atomic_load_n(&w->st.busy_cycles, __ATOMIC_RELAXED);
	o->packets = __atomic_load_n(&w->st.packets, __ATOMIC_RELAXED);
	o->polls = __atomic_load_n(&w->st.polls, __ATOMIC_RELAXED);
	o->empty_polls = __atomic_load_n(&w->st.empty_polls, __ATOMIC_RELAXED);
	o->sleeps = __atomic_load_n(&w->st.sleeps, __ATOMIC_RELAXED);
	o->wakeups = __atomic_load_n(&w->st.wakeups, __ATOMIC_RELAXED);
	o->quiesces = __atomic_load_n(&w->st.quiesces, __ATOMIC_RELAXED);
}

int vre_worker_cpu(const struct vre_worker *w)
{
	return w->cpu;
}

enum vre_poll_mode vre_worker_mode(const struct vre_worker *w)
{
	return w->mode;
}

unsigned vre_worker_num_items(struct vre_worker *w)
{
	unsigned n;

	/* the lock keeps the array from being freed under us */
	pthread_mutex_lock(&w->lock);
	n = w->list ? w->list->n : 0;
	pthread_mutex_unlock(&w->lock);
	return n;
}

int vre_worker_tid(const struct vre_worker *w)
{
	return w->tid;
}
