/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The SIGBUS side of vre_fault.h: seals, the registry of guest mappings and
 * the handler that recovers a fault inside one.
 *
 * The registry is read by the signal handler, on any thread, at any moment,
 * so it takes no lock there: slots live in chunks that are allocated once
 * and never freed, and each slot is a tiny seqlock (odd sequence = being
 * written). Writers (control threads mapping or unmapping) serialise on a
 * mutex. A reader that finds a slot in flux skips it rather than waiting:
 * the writer may be the very thread the signal interrupted. Skipping is
 * safe because a slot changes only while nobody can touch its mapping:
 * registration happens before the first access, unregistration after
 * quiesce and before munmap (so a later, unrelated mapping at the same
 * address is never mistaken for guest memory).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ctl.h"
#include "vre_fault.h"

#define SLOTS_PER_CHUNK 256u
#define MAX_CHUNKS 256u /* 65536 mappings: 509 regions + 1 inflight per device */

struct slot {
	atomic_uint seq;
	atomic_uintptr_t start; /* 0: free */
	atomic_uintptr_t end;
	_Atomic(struct ctl_fault *) owner;
};

static _Atomic(struct slot *) chunks[MAX_CHUNKS];
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sigaction prev_action; /* what vre's handler replaced */
static atomic_uint_least64_t recovered;

/* ---- seals --------------------------------------------------------------- */

bool ctl_fault_seal(int fd)
{
	int seals;

	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) == 0)
		return true;
	/* EPERM: F_SEAL_SEAL is set (QEMU seals its memfds completely, and a
	 * memfd made without MFD_ALLOW_SEALING starts that way); EINVAL: the
	 * file system has no seals. Either way, what counts is whether it
	 * can shrink. */
	seals = fcntl(fd, F_GET_SEALS);
	return seals >= 0 && (seals & F_SEAL_SHRINK);
}

/* ---- registry ------------------------------------------------------------ */

/* Sequentially consistent throughout: this is no hot path, and the order
 * is then plain to see (and to ThreadSanitizer, which models no fences). */
static void slot_write(struct slot *s, uintptr_t start, uintptr_t end, struct ctl_fault *owner)
{
	unsigned seq = atomic_load(&s->seq);

	atomic_store(&s->seq, seq + 1);
	atomic_store(&s->start, start);
	atomic_store(&s->end, end);
	atomic_store(&s->owner, owner);
	atomic_store(&s->seq, seq + 2);
}

/* A free slot, allocating a chunk when every one is taken. reg_lock held. */
static struct slot *slot_free(void)
{
	for (unsigned c = 0; c < MAX_CHUNKS; c++) {
		struct slot *ch = atomic_load_explicit(&chunks[c], memory_order_relaxed);

		if (!ch) {
			ch = calloc(SLOTS_PER_CHUNK, sizeof(*ch));
			if (!ch)
				return NULL;
			atomic_store_explicit(&chunks[c], ch, memory_order_release);
			return &ch[0];
		}
		for (unsigned i = 0; i < SLOTS_PER_CHUNK; i++)
			if (!atomic_load_explicit(&ch[i].start, memory_order_relaxed))
				return &ch[i];
	}
	return NULL;
}

int ctl_fault_register(void *base, size_t len, struct ctl_fault *owner)
{
	struct slot *s;

	if (!base || len == 0)
		return -EINVAL;
	pthread_mutex_lock(&reg_lock);
	s = slot_free();
	if (s)
		slot_write(s, (uintptr_t)base, (uintptr_t)base + len, owner);
	pthread_mutex_unlock(&reg_lock);
	return s ? 0 : -ENOSPC;
}

void ctl_fault_unregister(void *base)
{
	pthread_mutex_lock(&reg_lock);
	for (unsigned c = 0; c < MAX_CHUNKS; c++) {
		struct slot *ch = atomic_load_explicit(&chunks[c], memory_order_relaxed);

		if (!ch)
			break;
		for (unsigned i = 0; i < SLOTS_PER_CHUNK; i++) {
			if (atomic_load_explicit(&ch[i].start, memory_order_relaxed) == (uintptr_t)base) {
				slot_write(&ch[i], 0, 0, NULL);
				pthread_mutex_unlock(&reg_lock);
				return;
			}
		}
	}
	pthread_mutex_unlock(&reg_lock);
}

/* The registered mapping holding addr: its bounds and owner. Async-signal
 * safe: atomics only. */
static bool lookup(uintptr_t addr, uintptr_t *start, uintptr_t *end, struct ctl_fault **owner)
{
	for (unsigned c = 0; c < MAX_CHUNKS; c++) {
		struct slot *ch = atomic_load_explicit(&chunks[c], memory_order_acquire);

		if (!ch)
			return false;
		for (unsigned i = 0; i < SLOTS_PER_CHUNK; i++) {
			struct slot *s = &ch[i];
			unsigned s1 = atomic_load(&s->seq);
			uintptr_t st, en;
			struct ctl_fault *ow;

			if (s1 & 1)
				continue;
			st = atomic_load(&s->start);
			en = atomic_load(&s->end);
			ow = atomic_load(&s->owner);
			if (atomic_load(&s->seq) != s1)
				continue;
			if (st && addr >= st && addr < en) {
				*start = st;
				*end = en;
				*owner = ow;
				return true;
			}
		}
	}
	return false;
}

/* ---- the handler --------------------------------------------------------- */

/* Swaps the lost mapping for zero pages and tells the owner's server. Every
 * call here is async-signal safe (mmap and write are plain system calls). */
static bool recover(uintptr_t addr)
{
	uintptr_t start, end;
	struct ctl_fault *owner;
	uint64_t one = 1;
	void *p;

	if (!lookup(addr, &start, &end, &owner))
		return false;
	p = mmap((void *)start, end - start, PROT_READ | PROT_WRITE,
		 MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return false; /* cannot resume: die as before */
	if (owner) {
		uintptr_t none = 0;

		atomic_compare_exchange_strong(&owner->addr, &none, addr);
		atomic_store_explicit(&owner->hit, 1, memory_order_release);
		if (write(owner->wake_fd, &one, sizeof(one)) < 0) {
			/* Counter full (cannot happen before 2^64 - 1 faults) or
			 * the fd is gone with its server: the flag alone stays. */
		}
	}
	atomic_fetch_add_explicit(&recovered, 1, memory_order_relaxed);
	return true;
}

/* Not guest memory: whatever handled SIGBUS before vre gets it. */
static void pass_on(int sig, siginfo_t *si, void *uctx)
{
	struct sigaction prev = prev_action;
	struct sigaction dfl;

	if ((prev.sa_flags & SA_SIGINFO) && prev.sa_sigaction) {
		prev.sa_sigaction(sig, si, uctx);
		return;
	}
	if (!(prev.sa_flags & SA_SIGINFO) && prev.sa_handler != SIG_DFL &&
	    prev.sa_handler != SIG_IGN) {
		prev.sa_handler(sig);
		return;
	}
	/* Ignored before: a signal sent by kill() stays ignored; a fault
	 * cannot be ignored (the kernel would kill anyway), so it gets the
	 * default action below. */
	if (!(prev.sa_flags & SA_SIGINFO) && prev.sa_handler == SIG_IGN && si->si_code <= 0)
		return;
	/* Default action: a hardware fault repeats when the instruction is
	 * retried and then kills with a core; a signal sent by kill() does
	 * not repeat, so it is raised again (delivered once we return). */
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	sigaction(SIGBUS, &dfl, NULL);
	if (si->si_code <= 0)
		raise(sig);
}

static void on_sigbus(int sig, siginfo_t *si, void *uctx)
{
	int saved = errno;

	/* si_code > 0: raised by the kernel for an access, si_addr is real. */
	if (!(si->si_code > 0 && recover((uintptr_t)si->si_addr)))
		pass_on(sig, si, uctx);
	errno = saved;
}

static bool is_ours(const struct sigaction *sa)
{
	return (sa->sa_flags & SA_SIGINFO) && sa->sa_sigaction == on_sigbus;
}

int vre_fault_install(void)
{
	struct sigaction sa, old;
	int r = 0;

	pthread_mutex_lock(&reg_lock);
	if (sigaction(SIGBUS, NULL, &old) < 0) {
		r = -errno;
	} else if (!is_ours(&old)) {
		prev_action = old;
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = on_sigbus;
		/* SA_ONSTACK: a thread with an alternate stack (sanitizers give
		 * every thread one) handles the fault there. */
		sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGBUS, &sa, NULL) < 0)
			r = -errno;
		else
			VRE_DEBUG(CTL_ROOM, "SIGBUS handler installed for guest memory (before it: %s)",
				  (old.sa_flags & SA_SIGINFO) || (old.sa_handler != SIG_DFL &&
				  old.sa_handler != SIG_IGN) ? "a handler, chained" : "the default action");
	}
	pthread_mutex_unlock(&reg_lock);
	if (r < 0)
		VRE_WARN(CTL_ROOM, "cannot install the SIGBUS handler (%s): a frontend that shrinks guest memory can kill the process",
			 strerror(-r));
	return r;
}

bool vre_fault_installed(void)
{
	struct sigaction cur;

	return sigaction(SIGBUS, NULL, &cur) == 0 && is_ours(&cur);
}

uint64_t vre_fault_count(void)
{
	return atomic_load_explicit(&recovered, memory_order_relaxed);
}
