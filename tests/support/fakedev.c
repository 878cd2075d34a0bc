/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "fakedev.h"

static int fake_queue_start(void *ctx, struct vre_queue *q)
{
	struct fake_dev *f = ctx;
	int r;

	pthread_mutex_lock(&f->lock);
	r = f->start_result;
	if (r == 0 && f->starts < FAKE_MAX_EVENTS) {
		f->start[f->starts] = (struct fake_start){
			.index = q->index, .size = q->vq.size, .packed = q->vq.packed,
			.event_idx = q->vq.event_idx, .indirect = q->vq.indirect,
			.desc = q->vq.packed ? (void *)q->vq.pk.desc : (void *)q->vq.sp.desc,
			.driver = q->vq.packed ? (void *)q->vq.pk.driver : (void *)q->vq.sp.avail,
			.device = q->vq.packed ? (void *)q->vq.pk.device : (void *)q->vq.sp.used,
			.kick_fd = q->kick_fd, .call_fd = q->call_fd,
			.started = q->started, .enabled = q->enabled,
			.base = vre_vq_get_base(&q->vq), .inflight = q->vq.inflight != NULL,
		};
		f->starts++;
		f->running++;
	}
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	return r;
}

static void fake_queue_stop(void *ctx, struct vre_queue *q)
{
	struct fake_dev *f = ctx;

	pthread_mutex_lock(&f->lock);
	if (f->stops < FAKE_MAX_EVENTS)
		f->stop_index[f->stops] = q->index;
	f->stops++;
	f->running--;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

static void fake_disconnected(void *ctx)
{
	struct fake_dev *f = ctx;

	pthread_mutex_lock(&f->lock);
	f->disconnects++;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

static int fake_get_config(void *ctx, uint32_t off, void *buf, uint32_t len)
{
	struct fake_dev *f = ctx;

	if ((uint64_t)off + len > FAKE_CONFIG_SIZE)
		return -EINVAL;
	pthread_mutex_lock(&f->lock);
	memcpy(buf, f->config + off, len);
	pthread_mutex_unlock(&f->lock);
	return 0;
}

static int fake_set_config(void *ctx, uint32_t off, const void *buf, uint32_t len)
{
	struct fake_dev *f = ctx;

	if ((uint64_t)off + len > FAKE_CONFIG_SIZE)
		return -EINVAL;
	pthread_mutex_lock(&f->lock);
	memcpy(f->config + off, buf, len);
	pthread_mutex_unlock(&f->lock);
	return 0;
}

static int fake_set_features(void *ctx, uint64_t features)
{
	struct fake_dev *f = ctx;

	pthread_mutex_lock(&f->lock);
	f->features = features;
	pthread_mutex_unlock(&f->lock);
	return 0;
}

static int fake_set_mtu(void *ctx, uint16_t mtu)
{
	struct fake_dev *f = ctx;

	pthread_mutex_lock(&f->lock);
	f->mtu = mtu;
	pthread_mutex_unlock(&f->lock);
	return 0;
}

static int fake_send_rarp(void *ctx, const uint8_t mac[6])
{
	struct fake_dev *f = ctx;

	pthread_mutex_lock(&f->lock);
	memcpy(f->mac, mac, 6);
	f->rarps++;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	return 0;
}

void fake_init(struct fake_dev *f, uint64_t features, uint16_t max_queues)
{
	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	f->ops = (struct vre_device_ops){
		.name = "fake", .features = features, .max_queues = max_queues,
		.config_size = FAKE_CONFIG_SIZE, .get_config = fake_get_config,
		.set_config = fake_set_config, .set_features = fake_set_features,
		.set_mtu = fake_set_mtu, .send_rarp = fake_send_rarp,
		.queue_start = fake_queue_start, .queue_stop = fake_queue_stop,
		.disconnected = fake_disconnected,
	};
	for (int i = 0; i < FAKE_CONFIG_SIZE; i++)
		f->config[i] = (uint8_t)(0xa0 + i);
}

bool fake_wait(struct fake_dev *f, const int *counter, int n, int timeout_ms)
{
	struct timespec end;
	bool ok = true;

	clock_gettime(CLOCK_REALTIME, &end);
	end.tv_sec += timeout_ms / 1000;
	end.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (end.tv_nsec >= 1000000000L) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&f->lock);
	while (*counter < n && ok)
		ok = pthread_cond_timedwait(&f->cond, &f->lock, &end) != ETIMEDOUT || *counter >= n;
	ok = *counter >= n;
	pthread_mutex_unlock(&f->lock);
	return ok;
}

int fake_get(struct fake_dev *f, const int *counter)
{
	int v;

	pthread_mutex_lock(&f->lock);
	v = *counter;
	pthread_mutex_unlock(&f->lock);
	return v;
}
