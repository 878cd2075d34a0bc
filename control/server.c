/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The server: one control thread, one epoll loop over every device's
 * sockets (dev.c says what each device does with its events).
 *
 * epoll entries carry a device id, not a pointer: the loop looks the id up
 * under the lock, so an event for a device destroyed meanwhile is dropped
 * instead of touching freed memory.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "ctl.h"
#include "vre_fault.h"

static uint64_t key(uint32_t id, enum ctl_fd_kind kind)
{
	return (uint64_t)id << 8 | kind;
}

int ctl_epoll_add(struct vre_dev *dev, int fd, enum ctl_fd_kind kind)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = key(dev->id, kind) };

	return epoll_ctl(dev->srv->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

void ctl_epoll_del(struct vre_dev *dev, int fd)
{
	if (fd >= 0)
		epoll_ctl(dev->srv->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
}

static struct vre_dev *find_dev(struct vre_server *s, uint32_t id)
{
	for (struct vre_dev *d = s->devs; d; d = d->next)
		if (d->id == id)
			return d;
	return NULL;
}

/* The SIGBUS handler recovered a fault in some device's memory, or a
 * worker cut short a call eventfd write that blocked: find which device
 * (the flags are per device) and drop its connection. */
static void handle_faults(struct vre_server *s)
{
	uint64_t n;

	if (read(s->fault_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		VRE_ERR(CTL_ROOM, "fault eventfd: %s", strerror(errno));
	for (struct vre_dev *d = s->devs; d; d = d->next) {
		ctl_dev_fault_check(d);
		ctl_dev_notify_check(d);
	}
}

static void handle(struct vre_server *s, uint64_t k)
{
	struct vre_dev *dev = find_dev(s, (uint32_t)(k >> 8));

	if (dev)
		ctl_dev_event(dev, (enum ctl_fd_kind)(k & 0xff));
}

/* One round of the loop: waits up to timeout_ms, handles what is ready.
 * Returns the number of events, -ESHUTDOWN when asked to stop, or -errno. */
static int poll_once(struct vre_server *s, int timeout_ms)
{
	struct epoll_event evs[16];
	int n = epoll_wait(s->epoll_fd, evs, 16, timeout_ms);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < n; i++) {
		if (evs[i].data.u64 == key(0, CTL_FD_WAKE)) {
			pthread_mutex_unlock(&s->lock);
			return -ESHUTDOWN;
		}
		if (evs[i].data.u64 == key(0, CTL_FD_FAULT))
			handle_faults(s);
		else
			handle(s, evs[i].data.u64);
	}
	pthread_mutex_unlock(&s->lock);
	return n;
}

static void *control_thread(void *arg)
{
	struct vre_server *s = arg;

	for (;;) {
		int r = poll_once(s, -1);

		if (r == -ESHUTDOWN)
			return NULL;
		if (r < 0) {
			VRE_ERR(CTL_ROOM, "epoll_wait: %s", strerror(-r));
			return NULL;
		}
	}
}

int vre_server_poll(struct vre_server *s, int timeout_ms)
{
	if (s->running)
		return -EBUSY;
	return poll_once(s, timeout_ms);
}

int vre_server_create(struct vre_server **out)
{
	struct vre_server *s = calloc(1, sizeof(*s));
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = key(0, CTL_FD_WAKE) };
	struct epoll_event fev = { .events = EPOLLIN, .data.u64 = key(0, CTL_FD_FAULT) };

	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	s->next_id = 1;
	s->msg_timeout_ms = VRE_MSG_TIMEOUT_MS;
	s->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	s->fault_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->epoll_fd < 0 || s->wake_fd < 0 || s->fault_fd < 0 ||
	    epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, s->wake_fd, &ev) < 0 ||
	    epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, s->fault_fd, &fev) < 0) {
		int r = -errno;

		if (s->epoll_fd >= 0)
			close(s->epoll_fd);
		if (s->wake_fd >= 0)
			close(s->wake_fd);
		if (s->fault_fd >= 0)
			close(s->fault_fd);
		free(s);
		return r;
	}
	/* Every server's devices map guest memory: a frontend that shrinks it
	 * must cost only its device (vre_fault.h). A failure is logged there
	 * and leaves the process as it was. */
	vre_fault_install();
	/* The threads that keep frontends from holding ours: part of the
	 * process from the start, not from the first hostile frontend. */
	ctl_notify_init();
	ctl_fd_reaper_start();
	*out = s;
	return 0;
}

void vre_server_set_msg_timeout(struct vre_server *s, unsigned ms)
{
	pthread_mutex_lock(&s->lock);
	s->msg_timeout_ms = ms;
	pthread_mutex_unlock(&s->lock);
}

int vre_server_start(struct vre_server *s)
{
	int r;

	if (s->running)
		return -EALREADY;
	r = pthread_create(&s->thread, NULL, control_thread, s);
	if (r)
		return -r;
	s->running = true;
	return 0;
}

void vre_server_destroy(struct vre_server *s)
{
	uint64_t one = 1;

	if (!s)
		return;
	if (s->running) {
		if (write(s->wake_fd, &one, sizeof(one)) < 0)
			VRE_ERR(CTL_ROOM, "waking the control thread: %s", strerror(errno));
		pthread_join(s->thread, NULL);
		s->running = false;
	}
	while (s->devs)
		vre_dev_destroy(s->devs);
	close(s->wake_fd);
	close(s->fault_fd);
	close(s->epoll_fd);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
