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

void ctl_dev_disconnect(struct vre_dev *dev)
{
	if (dev->conn.fd < 0)
		return;
	ctl_epoll_del(dev, dev->conn.fd);
	close(dev->conn.fd);
	dev->conn.fd = -1;
	ctl_conn_reset_msg(&dev->conn);
	ctl_dev_reset_state(dev, false);
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

static int set_conn(struct vre_dev *dev, int fd)
{
	int r;

	dev->conn.fd = fd;
	dev->conn.have = 0;
	dev->conn.msg.nfds = 0;
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
	if (dev->conn.fd >= 0) {
		VRE_WARN(CTL_ROOM, "%s: a second frontend while one is connected, refused",
			 dev->path);
		close(fd);
		return;
	}
	set_conn(dev, fd);
}

static void on_conn(struct vre_dev *dev)
{
	for (int i = 0; i < CTL_MSGS_PER_EVENT && dev->conn.fd >= 0; i++) {
		int r = ctl_conn_read(&dev->conn);

		if (r == 0)
			return;
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
	default: break;
	}
}

static int listen_on(struct vre_dev *dev)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	memcpy(sa.sun_path, dev->path, strlen(dev->path) + 1);
	/* A socket left by an earlier run is ours to replace; anything else
	 * at the path is not. */
	if (lstat(dev->path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(dev->path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0) {
		int r = -errno;

		VRE_ERR(CTL_ROOM, "%s: cannot listen: %s", dev->path, strerror(-r));
		close(fd);
		return r;
	}
	dev->listen_fd = fd;
	return ctl_epoll_add(dev, fd, CTL_FD_LISTEN);
}

static int dev_open(struct vre_dev *dev)
{
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
	dev->ops = cfg->ops;
	dev->ctx = cfg->ctx;
	dev->listen_fd = dev->timer_fd = dev->conn.fd = dev->backend_req_fd = -1;
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

void vre_queue_notify(struct vre_queue *q)
{
	uint64_t one = 1;
	int fd = q->call_fd;

	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		VRE_DEBUG(CTL_ROOM, "queue %u: call: %s", q->index, strerror(errno));
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
