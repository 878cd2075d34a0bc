/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One device's sockets and life: it listens (server mode) or connects to a
 * listening frontend, retrying with back-off (client mode); it serves one
 * frontend at a time and stays configured when that frontend leaves. Also
 * the public accessors, which take the server lock where they read state
 * the control thread changes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "handlers.h"

#define CTL_BACKOFF_MIN_MS 100u
#define CTL_BACKOFF_MAX_MS 1000u
/* Messages handled per wakeup of one connection, so a chatty frontend
 * cannot starve the others (epoll is level-triggered: the rest waits). */
#define CTL_MSGS_PER_EVENT 64
/* GET_QUEUE_NUM is a u64 but ring messages carry the index in 8 bits. */
#define CTL_MAX_QUEUES 256

static void arm_timer(struct vre_dev *dev, unsigned ms)
{
	struct itimerspec its = {
		.it_value = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L + 1 },
	};

	timerfd_settime(dev->timer_fd, 0, &its, NULL);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void arm_stall(struct vre_dev *dev, uint64_t ns)
{
	struct itimerspec its = {
		.it_value = { .tv_sec = (time_t)(ns / 1000000000u),
			      .tv_nsec = (long)(ns % 1000000000u) + 1 },
	};

	timerfd_settime(dev->stall_fd, 0, &its, NULL);
	dev->conn.stall_armed = ns != 0;
}

void ctl_dev_disconnect(struct vre_dev *dev)
{
	if (dev->conn.fd < 0)
		return;
	ctl_epoll_del(dev, dev->conn.fd);
	close(dev->conn.fd);
	dev->conn.fd = -1;
	ctl_conn_reset_msg(&dev->conn);
	if (dev->conn.stall_armed)
		arm_stall(dev, 0);
	ctl_dev_reset_state(dev, false);
	/* Every queue is stopped: no worker can raise it for this connection
	 * any more, and the next one starts clean. */
	atomic_store(&dev->notify_alarm, 0);
	if (dev->ops->disconnected)
		dev->ops->disconnected(dev->ctx);
	dev->stats.disconnects++;
	VRE_INFO(CTL_ROOM, "%s: frontend disconnected", dev->path);
	if (dev->client) {
		dev->backoff_ms = CTL_BACKOFF_MIN_MS;
		arm_timer(dev, dev->backoff_ms);
	}
}

/* Where addr was mapped, for the log line. */
static void describe(struct vre_dev *dev, uintptr_t addr, char *buf, size_t len)
{
	const struct ctl_inflight *in = &dev->inflight;

	for (uint32_t i = 0; dev->mem && i < dev->mem->nregions; i++) {
		const struct vre_mem_region *r = &dev->mem->regions[i];
		uintptr_t b = (uintptr_t)r->mmap_base;

		if (addr >= b && addr - b < r->mmap_len) {
			snprintf(buf, len, "guest memory region gpa 0x%llx size 0x%llx",
				 (unsigned long long)r->gpa, (unsigned long long)r->size);
			return;
		}
	}
	if (in->base && addr >= (uintptr_t)in->base && addr - (uintptr_t)in->base < in->mmap_size) {
		snprintf(buf, len, "the inflight region");
		return;
	}
	snprintf(buf, len, "guest memory");
}

bool ctl_dev_fault_check(struct vre_dev *dev)
{
	uintptr_t addr;
	char where[96];

	if (!atomic_load_explicit(&dev->fault.hit, memory_order_acquire))
		return false;
	addr = atomic_load(&dev->fault.addr);
	/* Guest memory exists only while a frontend is connected. */
	if (dev->conn.fd >= 0) {
		dev->stats.memory_faults++;
		describe(dev, addr, where, sizeof(where));
		VRE_ERR(CTL_ROOM, "%s: %s vanished under the running device (SIGBUS at %p: the frontend shrank the file behind it); queues broken, dropping the connection",
			dev->path, where, (void *)addr);
		ctl_queues_pause(dev);
		for (uint16_t i = 0; i < dev->ops->max_queues; i++)
			if (dev->queues[i].vq_ready)
				dev->queues[i].q.vq.broken = VRE_RE_MEMORY_LOST;
		ctl_dev_disconnect(dev);
	}
	/* Cleared only now: every mapping of that connection is gone, so
	 * whatever the handler flagged meanwhile belonged to it, and a new
	 * frontend starts clean. */
	atomic_store(&dev->fault.addr, 0);
	atomic_store_explicit(&dev->fault.hit, 0, memory_order_release);
	return true;
}

bool ctl_dev_notify_check(struct vre_dev *dev)
{
	if (!atomic_exchange(&dev->notify_alarm, 0) || dev->conn.fd < 0)
		return false;
	dev->stats.notify_blocked++;
	VRE_ERR(CTL_ROOM, "%s: a notification blocked on the frontend's call eventfd (its counter is full and it cleared O_NONBLOCK), cut short; dropping the connection",
		dev->path);
	ctl_dev_disconnect(dev);
	return true;
}

static int set_conn(struct vre_dev *dev, int fd)
{
	int r;

	dev->conn.fd = fd;
	dev->conn.have = 0;
	dev->conn.partial_ns = 0;
	dev->conn.msg.nfds = 0;
	memset(&dev->conn.rl, 0, sizeof(dev->conn.rl));
	r = ctl_epoll_add(dev, fd, CTL_FD_CONN);
	if (r < 0) {
		close(fd);
		dev->conn.fd = -1;
		return r;
	}
	dev->stats.connects++;
	VRE_INFO(CTL_ROOM, "%s: frontend connected", dev->path);
	return 0;
}

static void on_listen(struct vre_dev *dev)
{
	int fd = accept4(dev->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	/* A frontend that closes and connects again at once (QEMU
	 * restarting) finds its old connection not yet handled: its hang-up
	 * waits in the same epoll round. A connection that has hung up is
	 * finished here, so the new one is not taken for a second frontend. */
	if (dev->conn.fd >= 0 && ctl_conn_dead(&dev->conn)) {
		VRE_INFO(CTL_ROOM, "%s: the previous frontend has hung up; taking the new one",
			 dev->path);
		ctl_dev_disconnect(dev);
	}
	if (dev->conn.fd >= 0) {
		CTL_WARN(dev, "a second frontend while one is connected, refused");
		close(fd);
		return;
	}
	set_conn(dev, fd);
}

/* A connection mid-message for the server's bound is dropped (a silent
 * connection between messages is an idle frontend and stays). The timer
 * runs only while a message is incomplete after a read. */
static void watch_stall(struct vre_dev *dev)
{
	uint64_t bound = (uint64_t)dev->srv->msg_timeout_ms * 1000000u, now;

	if (dev->conn.fd < 0 || !dev->conn.have || !bound || dev->conn.stall_armed)
		return;
	now = mono_ns();
	arm_stall(dev, dev->conn.partial_ns + bound > now ? dev->conn.partial_ns + bound - now : 1);
}

static void on_stall(struct vre_dev *dev)
{
	uint64_t ticks, bound = (uint64_t)dev->srv->msg_timeout_ms * 1000000u, now;

	if (read(dev->stall_fd, &ticks, sizeof(ticks)) < 0)
		return;
	dev->conn.stall_armed = false;
	if (dev->conn.fd < 0 || !dev->conn.have || !bound)
		return;
	now = mono_ns();
	if (now - dev->conn.partial_ns < bound) {
		watch_stall(dev); /* another message is under way: its own bound */
		return;
	}
	dev->stats.stalled++;
	VRE_ERR(CTL_ROOM, "%s: the frontend stopped in the middle of a message (%zu of %zu bytes for %.1f s, bound %u ms), dropping the connection",
		dev->path, dev->conn.have,
		dev->conn.have < VHU_HDR_SIZE ? (size_t)VHU_HDR_SIZE :
		VHU_HDR_SIZE + (size_t)dev->conn.msg.hdr.size,
		(double)(now - dev->conn.partial_ns) / 1e9, dev->srv->msg_timeout_ms);
	ctl_dev_disconnect(dev);
}

static void on_conn(struct vre_dev *dev)
{
	for (int i = 0; i < CTL_MSGS_PER_EVENT && dev->conn.fd >= 0; i++) {
		int r = ctl_conn_read(&dev->conn);

		if (r == 0)
			break;
		if (r > 0)
			r = ctl_dispatch(dev, &dev->conn.msg);
		ctl_conn_reset_msg(&dev->conn);
		/* The handler may have just faulted on this thread (a ring
		 * read for GET_VRING_BASE, an inflight recovery). */
		if (ctl_dev_fault_check(dev))
			return;
		if (r < 0)
			ctl_dev_disconnect(dev);
	}
	watch_stall(dev);
}

static int connect_path(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

static void on_timer(struct vre_dev *dev)
{
	uint64_t ticks;
	int fd;

	if (read(dev->timer_fd, &ticks, sizeof(ticks)) < 0 || dev->conn.fd >= 0)
		return;
	fd = connect_path(dev->path);
	if (fd >= 0 && set_conn(dev, fd) == 0) {
		dev->backoff_ms = CTL_BACKOFF_MIN_MS;
		return;
	}
	VRE_DEBUG(CTL_ROOM, "%s: connect failed, retry in %u ms", dev->path, dev->backoff_ms);
	arm_timer(dev, dev->backoff_ms);
	dev->backoff_ms *= 2;
	if (dev->backoff_ms > CTL_BACKOFF_MAX_MS)
		dev->backoff_ms = CTL_BACKOFF_MAX_MS;
}

void ctl_dev_event(struct vre_dev *dev, enum ctl_fd_kind kind)
{
	switch (kind) {
	case CTL_FD_LISTEN: on_listen(dev); break;
	case CTL_FD_CONN: on_conn(dev); break;
	case CTL_FD_TIMER: on_timer(dev); break;
	case CTL_FD_STALL: on_stall(dev); break;
	default: break;
	}
}

static int listen_on(struct vre_dev *dev)
{
	int fd = vre_listen_unix(dev->path, &dev->perm, 4);

	if (fd < 0) {
		VRE_ERR(CTL_ROOM, "%s: cannot listen: %s", dev->path, strerror(-fd));
		return fd;
	}
	dev->listen_fd = fd;
	return ctl_epoll_add(dev, fd, CTL_FD_LISTEN);
}

static int dev_open(struct vre_dev *dev)
{
	int r;

	dev->stall_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (dev->stall_fd < 0)
		return -errno;
	r = ctl_epoll_add(dev, dev->stall_fd, CTL_FD_STALL);
	if (r < 0)
		return r;
	if (!dev->client)
		return listen_on(dev);
	dev->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (dev->timer_fd < 0)
		return -errno;
	dev->backoff_ms = CTL_BACKOFF_MIN_MS;
	arm_timer(dev, 0); /* first attempt at once, on the control thread */
	return ctl_epoll_add(dev, dev->timer_fd, CTL_FD_TIMER);
}

static void dev_free(struct vre_dev *dev)
{
	ctl_epoll_del(dev, dev->listen_fd);
	ctl_epoll_del(dev, dev->timer_fd);
	ctl_epoll_del(dev, dev->stall_fd);
	if (dev->stall_fd >= 0)
		close(dev->stall_fd);
	if (dev->listen_fd >= 0) {
		close(dev->listen_fd);
		unlink(dev->path);
	}
	if (dev->timer_fd >= 0)
		close(dev->timer_fd);
	free(dev->queues);
	free(dev->path);
	free(dev);
}

static int check_config(const struct vre_dev_config *cfg)
{
	const struct vre_device_ops *ops = cfg->ops;

	if (!cfg->path || !ops || !ops->queue_start || !ops->queue_stop)
		return -EINVAL;
	if (strlen(cfg->path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return -ENAMETOOLONG;
	if (ops->max_queues == 0 || ops->max_queues > CTL_MAX_QUEUES)
		return -EINVAL;
	return 0;
}

int vre_dev_create(struct vre_server *s, const struct vre_dev_config *cfg,
		   struct vre_dev **out)
{
	struct vre_dev *dev;
	int r = check_config(cfg);

	if (r < 0)
		return r;
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	dev->srv = s;
	dev->client = cfg->client;
	dev->perm = cfg->perm;
	dev->ops = cfg->ops;
	dev->ctx = cfg->ctx;
	dev->listen_fd = dev->timer_fd = dev->stall_fd = dev->conn.fd = dev->backend_req_fd = -1;
	dev->inflight.fd = -1;
	dev->fault.wake_fd = s->fault_fd;
	dev->path = strdup(cfg->path);
	dev->queues = calloc(cfg->ops->max_queues, sizeof(*dev->queues));
	if (!dev->path || !dev->queues) {
		dev_free(dev);
		return -ENOMEM;
	}
	for (uint16_t i = 0; i < cfg->ops->max_queues; i++) {
		struct vre_queue *q = &dev->queues[i].q;

		q->dev = dev;
		q->index = i;
		q->kick_fd = q->call_fd = q->err_fd = -1;
	}
	pthread_mutex_lock(&s->lock);
	dev->id = s->next_id++;
	r = dev_open(dev);
	if (r == 0) {
		dev->next = s->devs;
		s->devs = dev;
	}
	pthread_mutex_unlock(&s->lock);
	if (r < 0) {
		dev_free(dev);
		return r;
	}
	*out = dev;
	return 0;
}

void vre_dev_destroy(struct vre_dev *dev)
{
	struct vre_server *s;

	if (!dev)
		return;
	s = dev->srv;
	pthread_mutex_lock(&s->lock);
	for (struct vre_dev **p = &s->devs; *p; p = &(*p)->next) {
		if (*p == dev) {
			*p = dev->next;
			break;
		}
	}
	dev->client = false; /* no reconnect from here on */
	ctl_dev_disconnect(dev);
	dev_free(dev);
	pthread_mutex_unlock(&s->lock);
}

int vre_dev_attach_fd(struct vre_dev *dev, int fd)
{
	int r, fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	pthread_mutex_lock(&dev->srv->lock);
	ctl_dev_disconnect(dev);
	r = set_conn(dev, fd);
	pthread_mutex_unlock(&dev->srv->lock);
	return r;
}

bool vre_dev_connected(struct vre_dev *dev)
{
	bool c;

	pthread_mutex_lock(&dev->srv->lock);
	c = dev->conn.fd >= 0;
	pthread_mutex_unlock(&dev->srv->lock);
	return c;
}

void vre_dev_get_stats(struct vre_dev *dev, struct vre_dev_stats *out)
{
	pthread_mutex_lock(&dev->srv->lock);
	*out = dev->stats;
	pthread_mutex_unlock(&dev->srv->lock);
}

uint64_t vre_dev_features(const struct vre_dev *dev)
{
	return dev->features;
}

uint16_t vre_dev_num_queues(const struct vre_dev *dev)
{
	return dev->ops->max_queues;
}

struct vre_queue *vre_dev_queue(struct vre_dev *dev, uint16_t index)
{
	return index < dev->ops->max_queues ? &dev->queues[index].q : NULL;
}

/* The fault eventfd also wakes the control thread for a blocked call:
 * a non-blocking eventfd of our own, safe from any thread. */
static void raise_notify_alarm(struct vre_dev *dev)
{
	uint64_t one = 1;

	atomic_store(&dev->notify_alarm, 1);
	if (write(dev->fault.wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		VRE_WARN(CTL_ROOM, "%s: waking the control thread: %s", dev->path, strerror(errno));
}

void vre_queue_notify(struct vre_queue *q)
{
	int fd = q->call_fd, r;

	if (fd < 0)
		return;
	if (__atomic_load_n(&q->call_blocked, __ATOMIC_RELAXED)) {
		r = -EINTR; /* it blocked before: not again until a new call fd */
	} else {
		r = ctl_eventfd_signal(fd);
		if (r == 0)
			return;
	}
	/* single writer: the thread that owns the queue now */
	__atomic_store_n(&q->notify_saturated,
			 __atomic_load_n(&q->notify_saturated, __ATOMIC_RELAXED) + 1,
			 __ATOMIC_RELAXED);
	if (r == -EINTR && !__atomic_exchange_n(&q->call_blocked, true, __ATOMIC_RELAXED))
		raise_notify_alarm(q->dev);
	else if (r != -EINTR && r != -EAGAIN)
		VRE_DEBUG(CTL_ROOM, "queue %u: call: %s", q->index, strerror(-r));
}

void vre_dev_get_snapshot(struct vre_dev *dev, struct vre_dev_snapshot *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&dev->srv->lock);
	out->connected = dev->conn.fd >= 0;
	out->owner = dev->owner;
	out->features = dev->features;
	out->protocol_features = dev->protocol_features;
	out->mem_regions = dev->mem ? dev->mem->nregions : 0;
	for (uint16_t i = 0; i < dev->ops->max_queues; i++) {
		const struct vre_queue *q = &dev->queues[i].q;

		out->queues_started += q->started;
		out->queues_enabled += q->enabled;
		out->queues_running += q->running;
	}
	pthread_mutex_unlock(&dev->srv->lock);
}
