/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * echo-dev: a vhost-user device built the way another project builds on
 * VRE: compiled outside the tree against an installed libvre
 * (`cc echo-dev.c $(pkg-config --cflags --libs libvre)`), nothing but the
 * public headers. One queue, polled by one worker; every chain's readable
 * bytes are copied into its writable part, as far as they fit, and the
 * chain is completed with that length. tests/install/check-install builds
 * and runs it; echo-fe (tests/install/echo-fe.c) is its frontend.
 *
 *   echo-dev SOCKET       serve on SOCKET until SIGINT or SIGTERM
 *   echo-dev --version    print the library's version and exit
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <vre_control.h>
#include <vre_dataplane.h>
#include <vre_version.h>

#define POOL_LEN (VRE_BURST * 4)

struct echo {
	struct vre_worker *worker;
	struct vre_poll_item item;
	struct vre_queue *q;
	uint64_t chains;        /* written by the worker only */
	uint8_t buf[1 << 16];
};

/* One burst: fetch, echo, complete, notify when the driver asks. */
static int echo_poll(struct vre_poll_item *it)
{
	struct echo *e = it->ctx;
	struct vre_vq *vq = &e->q->vq;
	struct vre_chain c[VRE_BURST];
	struct vre_used u[VRE_BURST];
	struct iovec pool[POOL_LEN];
	int n = vre_vq_fetch(vq, c, VRE_BURST, pool, POOL_LEN);

	if (n <= 0)
		return 0;
	for (int i = 0; i < n; i++) {
		size_t len = 0;

		if (!c[i].err) {
			len = vre_iov_read(c[i].iov, c[i].nr, 0, e->buf, sizeof(e->buf));
			len = vre_iov_write(c[i].iov + c[i].nr, c[i].nw, 0, e->buf, len);
		}
		u[i] = vre_used_of(&c[i], (uint32_t)len);
	}
	if (vre_vq_complete(vq, u, (unsigned)n) == 0 && vre_vq_needs_notify(vq))
		vre_queue_notify(e->q);
	e->chains += (uint64_t)n;
	return n;
}

static bool echo_arm(struct vre_poll_item *it)
{
	struct echo *e = it->ctx;

	return vre_vq_notify_enable(&e->q->vq);
}

static void echo_disarm(struct vre_poll_item *it)
{
	struct echo *e = it->ctx;

	vre_vq_notify_disable(&e->q->vq);
}

/* Control hands the ready queue over; the worker polls it from its next
 * pass, waking on the kick eventfd when it sleeps. */
static int queue_start(void *ctx, struct vre_queue *q)
{
	struct echo *e = ctx;

	e->q = q;
	e->item = (struct vre_poll_item){
		.poll = echo_poll, .arm = echo_arm, .disarm = echo_disarm,
		.wake_fd = q->kick_fd, .ctx = e, .name = "echo",
	};
	return vre_worker_add(e->worker, &e->item);
}

/* Returns once the worker cannot be inside the queue any more. */
static void queue_stop(void *ctx, struct vre_queue *q)
{
	struct echo *e = ctx;

	(void)q;
	vre_worker_remove(&e->item);
}

int main(int argc, char **argv)
{
	static struct echo e;
	struct vre_device_ops ops = {
		.name = "echo",
		.features = 1ull << VRE_F_VERSION_1 | 1ull << VRE_F_PROTOCOL_FEATURES |
			    1ull << VRE_F_INDIRECT_DESC | 1ull << VRE_F_EVENT_IDX |
			    1ull << VRE_F_RING_PACKED,
		.max_queues = 1,
		.queue_start = queue_start,
		.queue_stop = queue_stop,
	};
	struct vre_worker_config wc = { .cpu = vre_cpu_last_allowed(), .mode = VRE_POLL_ADAPTIVE };
	struct vre_dev_config dc = { .ops = &ops, .ctx = &e };
	struct vre_server *srv;
	struct vre_dev *dev;
	sigset_t stop;
	int sig, err;

	if (argc != 2) {
		fprintf(stderr, "usage: echo-dev SOCKET | --version\n");
		return 2;
	}
	/* The library in use is the one these headers describe. */
	if (strcmp(vre_version(), VRE_VERSION) != 0) {
		fprintf(stderr, "echo-dev: built for libvre %s, running with %s\n", VRE_VERSION,
			vre_version());
		return 1;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("libvre %s (%d.%d.%d)\n", vre_version(), VRE_VERSION_MAJOR,
		       VRE_VERSION_MINOR, VRE_VERSION_PATCH);
		return 0;
	}
	dc.path = argv[1];
	/* Signals go to sigwait below, never to the library's threads. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);

	err = vre_worker_create(&wc, &e.worker);
	if (!err)
		err = vre_server_create(&srv);
	if (!err)
		err = vre_dev_create(srv, &dc, &dev);
	if (!err)
		err = vre_server_start(srv);
	if (err) {
		fprintf(stderr, "echo-dev: cannot start: %s\n", strerror(-err));
		return 1;
	}
	printf("echo-dev: libvre %s, listening on %s\n", vre_version(), dc.path);
	fflush(stdout);
	sigwait(&stop, &sig);
	/* Disconnects the frontend (queue_stop first) and frees the device. */
	vre_server_destroy(srv);
	vre_worker_destroy(e.worker);
	printf("echo-dev: %llu chains echoed\n", (unsigned long long)e.chains);
	return 0;
}
