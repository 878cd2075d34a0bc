/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Writes to a frontend's eventfds (call, err) that cannot hold the writing
 * thread: a worker serving other devices, or the control thread.
 *
 * An eventfd write blocks when the counter would pass 2^64 - 2 and the
 * file is in blocking mode. The counter is the frontend's to fill, and
 * O_NONBLOCK lives on the open file description the frontend shares with
 * us: control sets it when the fd arrives, but the frontend can clear it at
 * any moment, so no flag read or set before a write can be trusted, and
 * Linux offers no per-call "don't wait" for eventfds (RWF_NOWAIT is refused).
 *
 * So the write is guarded instead: the writing thread marks itself "inside
 * a guarded write" (an odd sequence number in its slot: two plain stores,
 * no syscall), and a watchdog thread that looks every GUARD_TICK_MS sends a
 * thread found inside the same write on two looks in a row a signal whose
 * handler does nothing and was installed without SA_RESTART. A blocked
 * eventfd write returns EINTR to it; nothing else happens. Only a write
 * that waits ever meets the signal (a write that does not wait takes
 * microseconds, a tick takes milliseconds), and a late signal that lands
 * after the write returned at worst interrupts a later syscall, which every
 * caller in VRE retries or treats as a wake-up.
 *
 * Results: 0 written; -EAGAIN the counter is full and the fd non-blocking
 * (the guest has a notification pending anyway: counted, nothing lost);
 * -EINTR the write blocked (the frontend cleared O_NONBLOCK with a full
 * counter: hostile) and was cut short, O_NONBLOCK is set again.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

#define GUARD_SLOTS 512
#define GUARD_TICK_MS 20

struct guard {
	atomic_uint seq;    /* odd: inside a guarded write */
	atomic_int tid;     /* 0: free */
	unsigned seen;      /* the watchdog's last look (watchdog only) */
};

static struct guard guards[GUARD_SLOTS];
static __thread struct guard *self;
static __thread pid_t self_pid;   /* the process self was taken in */
static pthread_key_t self_key;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static bool guard_ok;       /* the handler is in place */
static pthread_mutex_t wd_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t wd_pid;        /* the process whose watchdog runs (fork: none) */

static void on_guard_signal(int sig)
{
	(void)sig; /* its only job is the EINTR of a blocked write */
}

static void release_slot(void *p)
{
	struct guard *g = p;

	atomic_store(&g->seq, 0);
	atomic_store(&g->tid, 0);
}

static void *watchdog(void *arg)
{
	struct timespec tick = { 0, GUARD_TICK_MS * 1000000L };
	pid_t pid = getpid();

	(void)arg;
	pthread_setname_np(pthread_self(), "vre-notify-wd");
	for (;;) {
		nanosleep(&tick, NULL);
		for (unsigned i = 0; i < GUARD_SLOTS; i++) {
			struct guard *g = &guards[i];
			int tid = atomic_load_explicit(&g->tid, memory_order_relaxed);
			unsigned s = atomic_load_explicit(&g->seq, memory_order_acquire);

			if (tid && (s & 1) && s == g->seen)
				syscall(SYS_tgkill, pid, tid, VRE_NOTIFY_SIGNAL);
			g->seen = s;
		}
	}
	return NULL;
}

/* A watchdog for this process: after a fork the child has none (threads
 * do not survive fork), so it is started again there. */
static bool watchdog_running(void)
{
	pthread_attr_t attr;
	pthread_t t;
	bool ok;

	pthread_mutex_lock(&wd_lock);
	if (wd_pid != getpid()) {
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &attr, watchdog, NULL) == 0)
			wd_pid = getpid();
		pthread_attr_destroy(&attr);
	}
	ok = wd_pid == getpid();
	pthread_mutex_unlock(&wd_lock);
	return ok;
}

static void setup(void)
{
	struct sigaction sa, old;

	if (sigaction(VRE_NOTIFY_SIGNAL, NULL, &old) < 0)
		return;
	if ((old.sa_flags & SA_SIGINFO) || (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN)) {
		VRE_WARN(CTL_ROOM, "signal %d is taken by the application: writes to frontend eventfds are not guarded",
			 VRE_NOTIFY_SIGNAL);
		return;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_guard_signal;
	sa.sa_flags = 0; /* no SA_RESTART: the blocked write must return */
	sigemptyset(&sa.sa_mask);
	guard_ok = sigaction(VRE_NOTIFY_SIGNAL, &sa, NULL) == 0 &&
		   pthread_key_create(&self_key, release_slot) == 0;
}

/* This thread's slot, taken on its first guarded write. NULL when the
 * guard is unavailable (the application owns the signal, or more than
 * GUARD_SLOTS threads write). */
static struct guard *my_guard(void)
{
	sigset_t set;

	if (self && self_pid == getpid())
		return self;
	self = NULL; /* a slot taken before a fork names the parent's thread */
	pthread_once(&once, setup);
	if (!guard_ok || !watchdog_running())
		return NULL;
	for (unsigned i = 0; i < GUARD_SLOTS; i++) {
		int free_tid = 0;

		if (atomic_compare_exchange_strong(&guards[i].tid, &free_tid, (int)gettid())) {
			self = &guards[i];
			self_pid = getpid();
			pthread_setspecific(self_key, self);
			/* the application may have blocked it for its threads */
			sigemptyset(&set);
			sigaddset(&set, VRE_NOTIFY_SIGNAL);
			pthread_sigmask(SIG_UNBLOCK, &set, NULL);
			return self;
		}
	}
	return NULL;
}

void ctl_notify_init(void)
{
	pthread_once(&once, setup);
	if (guard_ok)
		watchdog_running();
}

int ctl_eventfd_signal(int fd)
{
	static const uint64_t one = 1;
	struct guard *g = my_guard();
	ssize_t n;
	int err;

	if (!g) /* best effort: re-assert the flag right before the write */
		fcntl(fd, F_SETFL, O_NONBLOCK);
	if (g)
		atomic_fetch_add_explicit(&g->seq, 1, memory_order_release);
	n = write(fd, &one, sizeof(one));
	err = n < 0 ? errno : 0;
	if (g)
		atomic_fetch_add_explicit(&g->seq, 1, memory_order_release);
	if (err == EINTR) {
		fcntl(fd, F_SETFL, O_NONBLOCK);
		return -EINTR;
	}
	return err == EAGAIN ? -EAGAIN : -err;
}

int ctl_eventfd_nonblock(int fd)
{
	/* F_SETFL takes only the status flags; an eventfd has no others. */
	return fcntl(fd, F_SETFL, O_NONBLOCK) < 0 ? -errno : 0;
}
