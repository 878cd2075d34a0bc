/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A fake device model for control's tests: it records every callback
 * (queue_start with a snapshot of the queue, queue_stop, features, MTU,
 * RARP, disconnects) and keeps a writable config space. Tests wait on the
 * record with a timeout instead of sleeping.
 */
#ifndef FAKEDEV_H
#define FAKEDEV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vre_control.h"

#define FAKE_MAX_EVENTS 256
#define FAKE_CONFIG_SIZE 64

struct fake_start {
	uint16_t index;
	uint16_t size;
	bool packed, event_idx, indirect;
	void *desc, *driver, *device;
	int kick_fd, call_fd;
	bool started, enabled;
	uint32_t base;      /* vre_vq_get_base at start */
	bool inflight;      /* an inflight region was attached */
};

struct fake_dev {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct vre_device_ops ops;
	int starts, stops, disconnects, running;
	struct fake_start start[FAKE_MAX_EVENTS];
	uint16_t stop_index[FAKE_MAX_EVENTS];
	uint64_t features;
	uint16_t mtu;
	uint8_t mac[6];
	int rarps;
	uint8_t config[FAKE_CONFIG_SIZE];
	int start_result; /* what queue_start returns */
};

/* features: the virtio features to offer; max_queues queues. */
void fake_init(struct fake_dev *f, uint64_t features, uint16_t max_queues);
/* Waits until *counter (a field of f) reaches n; false on timeout. */
bool fake_wait(struct fake_dev *f, const int *counter, int n, int timeout_ms);
int fake_get(struct fake_dev *f, const int *counter);

#endif
