/* SPDX-License-Identifier: BSD-3-Clause */
/* virtio-blk queue engine over io_uring. */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "blk_queue.h"
#include "vre_log.h"

#define SQ_ENTRIES 256

int vre_blk_queue_init(struct vre_blk_queue *q, struct vre_vq *vq,
		       const struct vre_blk_disk *disk, unsigned depth,
		       void (*notify)(void *arg), void *notify_arg)
{
	struct io_uring_params p;
	int rc;

	memset(q, 0, sizeof(*q));
	q->done_fd = -1;
	q->wake_fd = -1;
	q->vq = vq;
	q->disk = disk;
	q->notify = notify;
	q->notify_arg = notify_arg;
	if (depth == 0)
		depth = vq->size;
	if (depth > VRE_BLK_QUEUE_DEPTH)
		depth = VRE_BLK_QUEUE_DEPTH;
	if (depth == 0)
		depth = 1;
	q->nslots = depth;
	q->slots = calloc(depth, sizeof(*q->slots));
	q->free = calloc(depth, sizeof(*q->free));
	q->pool = calloc(VRE_BLK_FETCH_IOV, sizeof(*q->pool));
	if (!q->slots || !q->free || !q->pool) {
		vre_blk_queue_fini(q);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < depth; i++)
		q->free[i] = (uint16_t)(depth - 1 - i);
	q->nfree = depth;
	/* The completion ring holds every operation that can be in flight
	 * (a DISCARD is one per segment), so no completion ever overflows
	 * into the kernel's backlog that for_each_cqe would not see. */
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_CQSIZE;
	p.cq_entries = depth * VRE_BLK_MAX_DWZ_SEG;
	if (p.cq_entries < 2 * SQ_ENTRIES)
		p.cq_entries = 2 * SQ_ENTRIES;
	rc = io_uring_queue_init_params(SQ_ENTRIES, &q->ring, &p);
	if (rc < 0) {
		vre_blk_queue_fini(q);
		return rc;
	}
	q->ring_ok = true;
	return 0;
}

void vre_blk_queue_fini(struct vre_blk_queue *q)
{
	if (q->ring_ok)
		io_uring_queue_exit(&q->ring);
	q->ring_ok = false;
	if (q->wake_fd >= 0)
		close(q->wake_fd);
	if (q->done_fd >= 0)
		close(q->done_fd);
	q->wake_fd = q->done_fd = -1;
	free(q->slots);
	free(q->free);
	free(q->pool);
	q->slots = NULL;
	q->free = NULL;
	q->pool = NULL;
}

unsigned vre_blk_queue_inflight(const struct vre_blk_queue *q)
{
	return q->nslots - q->nfree;
}

/* Returns the finished requests collected so far, with one notification. */
static void flush_done(struct vre_blk_queue *q)
{
	if (!q->ndone)
		return;
	vre_vq_complete(q->vq, q->done, q->ndone);
	q->stats.completed += q->ndone;
	q->ndone = 0;
	if (vre_vq_needs_notify(q->vq) && q->notify)
		q->notify(q->notify_arg);
}

/* Migrating (the ring has a dirty log): the first len bytes of iov were
 * written into guest memory by the device (a read's data, an id, the
 * status byte). Marked after the write, before the completion. The
 * inflight region is not guest memory and is never logged. */
static __attribute__((noinline)) void log_written(struct vre_blk_queue *q,
						  const struct iovec *iov, unsigned n,
						  uint64_t len)
{
	struct vre_log_batch b;

	vre_log_batch_init(&b, q->vq->log);
	vre_vq_log_iov(q->vq, &b, iov, n, len);
	vre_log_batch_flush(&b);
}

static void finish(struct vre_blk_queue *q, struct vre_blk_slot *s, uint16_t idx)
{
	uint32_t data = 0;

	if (s->status == VIRTIO_BLK_S_OK) {
		if (s->req.op == VRE_BLK_OP_READ)
			data = (uint32_t)s->req.len;
		else if (s->req.op == VRE_BLK_OP_GET_ID)
			data = vre_blk_write_id(&s->req, q->disk->serial);
	} else {
		q->stats.errors++;
	}
	if (!s->req.status_ptr)
		q->stats.no_status++;
	s->used.len = vre_blk_finish(&s->req, s->status, data);
	if (__builtin_expect(q->vq->log != NULL, 0)) {
		struct iovec st = { .iov_base = s->req.status_ptr, .iov_len = 1 };

		if (s->req.op == VRE_BLK_OP_GET_ID && data)
			log_written(q, s->req.iov, s->req.niov, data);
		if (s->req.status_ptr)
			log_written(q, &st, 1, 1);
	}
	if (q->ndone == VRE_BURST)
		flush_done(q);
	q->done[q->ndone++] = s->used;
	q->free[q->nfree++] = idx;
}

/* An SQE, submitting what is queued when the submission ring is full. */
static struct io_uring_sqe *get_sqe(struct vre_blk_queue *q)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);

	if (!sqe) {
		io_uring_submit(&q->ring);
		q->queued = 0;
		sqe = io_uring_get_sqe(&q->ring);
	}
	if (sqe)
		q->queued++;
	return sqe;
}

void vre_blk_queue_set_test_delay(struct vre_blk_queue *q, uint32_t max_us)
{
	q->delay_max_us = max_us;
	q->rng = 0x2545f4914f6cdd1dull ^ (uintptr_t)q;
}

/* Links a random timeout in front of the next SQE (test knob). Its CQE
 * carries an id no slot has, so reap skips it. */
static void maybe_delay(struct vre_blk_queue *q, struct vre_blk_slot *s)
{
	struct io_uring_sqe *sqe;
	uint64_t us;

	if (!q->delay_max_us)
		return;
	q->rng ^= q->rng << 13;
	q->rng ^= q->rng >> 7;
	q->rng ^= q->rng << 17;
	us = q->rng % ((uint64_t)q->delay_max_us + 1);
	sqe = get_sqe(q);
	if (!sqe)
		return;
	s->delay.tv_sec = (long long)(us / 1000000);
	s->delay.tv_nsec = (long long)(us % 1000000) * 1000;
	io_uring_prep_timeout(sqe, &s->delay, 0, IORING_TIMEOUT_ETIME_SUCCESS);
	sqe->flags |= IOSQE_IO_LINK;
	io_uring_sqe_set_data64(sqe, UINT64_MAX);
}

/* Queues the (rest of the) transfer of a READ or WRITE. */
static bool submit_rw(struct vre_blk_queue *q, struct vre_blk_slot *s, uint16_t idx)
{
	struct io_uring_sqe *sqe = get_sqe(q);
	const struct vre_blk_req *r = &s->req;

	int fd = q->disk->dfd >= 0 && !s->buffered ? q->disk->dfd : q->disk->fd;

	if (!sqe)
		return false;
	if (r->op == VRE_BLK_OP_READ)
		io_uring_prep_readv(sqe, fd, r->iov, r->niov, r->offset + s->done);
	else
		io_uring_prep_writev(sqe, fd, r->iov, r->niov, r->offset + s->done);
	io_uring_sqe_set_data64(sqe, idx);
	s->pending++;
	return true;
}

static bool submit_ranges(struct vre_blk_queue *q, struct vre_blk_slot *s,
			  uint16_t idx)
{
	const struct vre_blk_req *r = &s->req;

	for (unsigned i = 0; i < r->nrange; i++) {
		struct io_uring_sqe *sqe = get_sqe(q);
		int mode = FALLOC_FL_KEEP_SIZE;

		if (!sqe)
			return false;
		/* A punched hole reads back as zeroes, so it serves discard,
		 * write-zeroes with unmap, and the ZERO_RANGE fallback. */
		if (r->op == VRE_BLK_OP_DISCARD || r->range[i].unmap || s->punching)
			mode |= FALLOC_FL_PUNCH_HOLE;
		else
			mode |= FALLOC_FL_ZERO_RANGE;
		io_uring_prep_fallocate(sqe, q->disk->fd, mode, r->range[i].offset,
					r->range[i].len);
		io_uring_sqe_set_data64(sqe, idx);
		s->pending++;
	}
	return true;
}

static bool submit(struct vre_blk_queue *q, struct vre_blk_slot *s, uint16_t idx)
{
	struct io_uring_sqe *sqe;

	switch (s->req.op) {
	case VRE_BLK_OP_READ:
	case VRE_BLK_OP_WRITE:
		maybe_delay(q, s);
		return submit_rw(q, s, idx);
	case VRE_BLK_OP_FLUSH:
		maybe_delay(q, s);
		sqe = get_sqe(q);
		if (!sqe)
			return false;
		io_uring_prep_fsync(sqe, q->disk->fd, IORING_FSYNC_DATASYNC);
		io_uring_sqe_set_data64(sqe, idx);
		s->pending++;
		return true;
	case VRE_BLK_OP_DISCARD:
	case VRE_BLK_OP_WRITE_ZEROES:
		return submit_ranges(q, s, idx);
	default:
		return true;
	}
}

/* A short transfer: step the iovecs past what is done and go again. */
static void advance_iov(struct vre_blk_req *r, uint64_t n)
{
	unsigned i = 0;

	while (i < r->niov && n >= r->iov[i].iov_len) {
		n -= r->iov[i].iov_len;
		i++;
	}
	if (i < r->niov) {
		r->iov[i].iov_base = (uint8_t *)r->iov[i].iov_base + n;
		r->iov[i].iov_len -= (size_t)n;
	}
	memmove(r->iov, r->iov + i, (r->niov - i) * sizeof(r->iov[0]));
	r->niov = (uint16_t)(r->niov - i);
}

static void on_cqe(struct vre_blk_queue *q, uint16_t idx, int res)
{
	struct vre_blk_slot *s = &q->slots[idx];
	struct vre_blk_req *r = &s->req;

	s->pending--;
	if (q->cancelling) {
		/* No new I/O on memory that is about to go (no retry, no
		 * fallback, no rest of a short transfer): whatever did not
		 * finish is an error. */
		if (res < 0) {
			s->status = VIRTIO_BLK_S_IOERR;
		} else if (r->op == VRE_BLK_OP_READ || r->op == VRE_BLK_OP_WRITE) {
			s->done += (uint64_t)res;
			if (s->done < r->len)
				s->status = VIRTIO_BLK_S_IOERR;
		}
		if (!s->pending)
			finish(q, s, idx);
		return;
	}
	switch (r->op) {
	case VRE_BLK_OP_READ:
	case VRE_BLK_OP_WRITE:
		if (res == -EINVAL && q->disk->dfd >= 0 && !s->buffered) {
			s->buffered = true;
			q->stats.direct_fallbacks++;
			if (submit_rw(q, s, idx))
				return;
			s->status = VIRTIO_BLK_S_IOERR;
			break;
		}
		if (res <= 0) {
			s->status = VIRTIO_BLK_S_IOERR;
			break;
		}
		s->done += (uint64_t)res;
		/* the iovecs still start where this transfer wrote */
		if (r->op == VRE_BLK_OP_READ && __builtin_expect(q->vq->log != NULL, 0))
			log_written(q, r->iov, r->niov, (uint64_t)res);
		if (s->done < r->len) {
			advance_iov(r, (uint64_t)res);
			if (submit_rw(q, s, idx))
				return;
			s->status = VIRTIO_BLK_S_IOERR;
		}
		break;
	case VRE_BLK_OP_DISCARD:
		/* Discard is a hint: a store that cannot punch holes is fine. */
		if (res < 0 && res != -EOPNOTSUPP)
			s->status = VIRTIO_BLK_S_IOERR;
		break;
	case VRE_BLK_OP_WRITE_ZEROES:
		if (res == -EOPNOTSUPP && !s->punching)
			s->zero_fallback = true;
		else if (res < 0)
			s->status = VIRTIO_BLK_S_IOERR;
		break;
	default:
		if (res < 0)
			s->status = VIRTIO_BLK_S_IOERR;
		break;
	}
	if (s->pending)
		return;
	if (s->zero_fallback && s->status == VIRTIO_BLK_S_OK) {
		s->zero_fallback = false;
		s->punching = true;
		if (submit_ranges(q, s, idx) && s->pending)
			return;
		s->status = VIRTIO_BLK_S_IOERR;
		if (s->pending)
			return;
	}
	finish(q, s, idx);
}

static unsigned reap(struct vre_blk_queue *q)
{
	struct io_uring_cqe *cqe;
	unsigned n = 0, head;

	io_uring_for_each_cqe(&q->ring, head, cqe) {
		uint64_t idx = io_uring_cqe_get_data64(cqe);

		if (idx < q->nslots && q->slots[idx].pending)
			on_cqe(q, (uint16_t)idx, cqe->res);
		n++;
	}
	io_uring_cq_advance(&q->ring, n);
	return n;
}

static void start(struct vre_blk_queue *q, const struct vre_chain *c)
{
	uint16_t idx = q->free[--q->nfree];
	struct vre_blk_slot *s = &q->slots[idx];

	vre_blk_parse(&q->disk->geom, c, &s->req, s->iov, VRE_BLK_MAX_IOV);
	s->used = vre_used_of(c, 0);
	s->done = 0;
	s->pending = 0;
	s->zero_fallback = false;
	s->punching = false;
	s->buffered = false;
	s->status = s->req.status;
	if (!submit(q, s, idx)) {
		s->status = VIRTIO_BLK_S_IOERR;
		if (s->pending)
			return; /* the part already submitted finishes it */
	}
	if (!s->pending)
		finish(q, s, idx);
}

static int take(struct vre_blk_queue *q)
{
	unsigned max = q->nfree < VRE_BURST ? q->nfree : VRE_BURST;
	int n;

	if (!max)
		return 0;
	n = vre_vq_fetch(q->vq, q->chains, max, q->pool, VRE_BLK_FETCH_IOV);
	if (n <= 0)
		return n;
	q->stats.requests += (unsigned)n;
	for (int i = 0; i < n; i++)
		start(q, &q->chains[i]);
	return n;
}

int vre_blk_queue_poll(struct vre_blk_queue *q)
{
	unsigned reaped = reap(q);
	int taken = take(q);

	if (q->queued) {
		io_uring_submit(&q->ring);
		q->queued = 0;
	}
	flush_done(q);
	if (taken < 0)
		return reaped ? (int)reaped : (vre_blk_queue_inflight(q) ? 0 : taken);
	return (int)reaped + taken;
}

int vre_blk_queue_wake_fd(struct vre_blk_queue *q, int kick_fd)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int ep, efd, r;

	if (q->wake_fd >= 0)
		return q->wake_fd;
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (efd < 0)
		return -errno;
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0) {
		r = -errno;
		close(efd);
		return r;
	}
	/* Level-triggered on eventfds nobody reads: the set stays readable,
	 * and every later kick or completion still wakes whoever watches the
	 * set (the worker watches it edge-triggered). */
	r = epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) < 0 ? -errno : 0;
	if (r == 0 && kick_fd >= 0)
		r = epoll_ctl(ep, EPOLL_CTL_ADD, kick_fd, &ev) < 0 ? -errno : 0;
	if (r == 0)
		r = io_uring_register_eventfd(&q->ring, efd);
	if (r < 0) {
		close(ep);
		close(efd);
		return r;
	}
	q->done_fd = efd;
	q->wake_fd = ep;
	return ep;
}

bool vre_blk_queue_arm(struct vre_blk_queue *q)
{
	if (vre_vq_notify_enable(q->vq))
		return true;
	/* A completion after this check writes done_fd and wakes the worker. */
	if (io_uring_cq_ready(&q->ring))
		return true;
	return q->wake_fd < 0 && vre_blk_queue_inflight(q) > 0;
}

void vre_blk_queue_disarm(struct vre_blk_queue *q)
{
	vre_vq_notify_disable(q->vq);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* One round of draining: waits up to 100 ms for a completion, reaps,
 * submits what reaping queued (short transfers, fallbacks; none once
 * cancelling), returns the finished requests. */
static void drain_round(struct vre_blk_queue *q)
{
	struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = 100000000 };
	struct io_uring_cqe *cqe;

	if (q->queued) {
		io_uring_submit(&q->ring);
		q->queued = 0;
	}
	io_uring_wait_cqe_timeout(&q->ring, &cqe, &ts);
	reap(q);
	if (q->queued) {
		io_uring_submit(&q->ring);
		q->queued = 0;
	}
	flush_done(q);
}

/* Asks the kernel to cancel every request of the ring. A request that is
 * waiting (a linked delay, a pipe) ends at once with -ECANCELED; one the
 * disk already has finishes at the disk's pace. */
static void cancel_all(struct vre_blk_queue *q)
{
	struct io_uring_sqe *sqe;

	q->cancelling = true;
	sqe = get_sqe(q);
	if (!sqe) {
		VRE_ERR("blk", "no submission slot to cancel the requests in flight");
		return;
	}
	io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
	io_uring_sqe_set_data64(sqe, UINT64_MAX - 1); /* no slot's: reap skips it */
	io_uring_submit(&q->ring);
	q->queued = 0;
}

int vre_blk_queue_drain(struct vre_blk_queue *q, int grace_ms)
{
	uint64_t start = mono_ms(), next_warn;
	unsigned cancelled;

	while (vre_blk_queue_inflight(q) && mono_ms() - start < (uint64_t)grace_ms)
		drain_round(q);
	flush_done(q);
	if (!vre_blk_queue_inflight(q))
		return 0;
	cancelled = vre_blk_queue_inflight(q);
	VRE_WARN("blk", "%u requests still in flight after %d ms: cancelling them (they complete with an I/O error); guest memory stays mapped until the kernel is done with every one",
		 cancelled, grace_ms);
	cancel_all(q);
	next_warn = mono_ms() + 5000;
	while (vre_blk_queue_inflight(q)) {
		drain_round(q);
		if (mono_ms() >= next_warn) {
			VRE_WARN("blk", "%u requests still in the kernel's hands after cancelling; still waiting",
				 vre_blk_queue_inflight(q));
			next_warn += 5000;
		}
	}
	flush_done(q);
	q->cancelling = false;
	return (int)cancelled;
}
