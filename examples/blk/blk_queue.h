/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One virtio-blk virtqueue served with io_uring.
 *
 * A pass (vre_blk_queue_poll) reaps finished I/O, returns the finished
 * requests to the ring in one burst (one notification), takes a burst of new
 * chains, parses them and submits their I/O straight on guest memory
 * (preadv/pwritev on the guest's iovecs, fsync, fallocate). Requests finish
 * in whatever order the kernel completes them.
 *
 * The queue is used by one thread at a time: the worker that polls it, or,
 * once the worker let go of it, the control thread that drains it. No locks,
 * no allocation per request (slots are preallocated), one io_uring_submit
 * per burst.
 */
#ifndef VRE_BLK_QUEUE_H
#define VRE_BLK_QUEUE_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

#include "blk_req.h"
#include "vre_vq.h"

/* The backing store, shared read-only by every queue of a device. */
struct vre_blk_disk {
	int fd;
	/* The same image opened with O_DIRECT, or -1. Reads and writes go
	 * through it; one it refuses (-EINVAL: buffers or offsets not
	 * aligned as the file system wants) is redone through fd. */
	int dfd;
	struct vre_blk_geom geom;
	char serial[VRE_BLK_ID_BYTES];
};

/* Requests one queue keeps in flight at most. */
#define VRE_BLK_QUEUE_DEPTH 256
/* iovecs one fetch may hand out: enough for any chain the driver builds
 * within seg_max, however guest memory is split. */
#define VRE_BLK_FETCH_IOV 4096

struct vre_blk_slot {
	struct vre_blk_req req;
	struct vre_used used;  /* id, ndesc, slot of the chain */
	uint64_t done;         /* READ/WRITE bytes transferred so far */
	uint16_t pending;      /* submitted operations not yet completed */
	uint8_t status;        /* VIRTIO_BLK_S_*, worst seen so far */
	bool zero_fallback;    /* a ZERO_RANGE was refused: redo as PUNCH_HOLE */
	bool punching;         /* the fallback is running */
	bool buffered;         /* O_DIRECT refused this request: use fd */
	struct __kernel_timespec delay; /* test delay before the I/O */
	struct iovec iov[VRE_BLK_MAX_IOV];
};

struct vre_blk_queue_stats {
	uint64_t requests;   /* chains taken from the ring */
	uint64_t completed;  /* requests returned */
	uint64_t errors;     /* requests returned with a status other than OK */
	uint64_t no_status;  /* chains with no status byte (returned with len 0) */
	uint64_t direct_fallbacks; /* requests O_DIRECT refused, redone buffered */
};

struct vre_blk_queue {
	struct vre_vq *vq;
	const struct vre_blk_disk *disk;
	void (*notify)(void *arg);
	void *notify_arg;
	struct io_uring ring;
	bool ring_ok;
	unsigned queued;        /* SQEs prepared but not yet submitted */
	unsigned nslots;
	unsigned nfree;
	uint16_t *free;         /* stack of free slot indexes */
	struct vre_blk_slot *slots;
	unsigned ndone;
	struct vre_used done[VRE_BURST];
	struct vre_chain chains[VRE_BURST];
	struct iovec *pool;     /* VRE_BLK_FETCH_IOV entries */
	struct vre_blk_queue_stats stats;
	int done_fd;            /* eventfd io_uring writes on completion, or -1 */
	int wake_fd;            /* epoll set of kick and done_fd, or -1 */
	uint32_t delay_max_us;  /* test knob, see vre_blk_queue_set_test_delay */
	bool cancelling;        /* drain cancelled what was in flight */
	uint64_t rng;
};

/* Sets q up for vq (which must stay valid until fini). notify is called,
 * at most once per burst, when the driver wants an interrupt. depth 0 means
 * min(queue size, VRE_BLK_QUEUE_DEPTH). -ENOMEM, or io_uring's error. */
int vre_blk_queue_init(struct vre_blk_queue *q, struct vre_vq *vq,
		       const struct vre_blk_disk *disk, unsigned depth,
		       void (*notify)(void *arg), void *notify_arg);
/* Frees q. Requests still in flight must have been drained. */
void vre_blk_queue_fini(struct vre_blk_queue *q);

/* Fault injection for restart tests: every READ, WRITE and FLUSH waits a
 * random 0..max_us in the kernel (a linked io_uring timeout) before it
 * runs, so requests are in flight, and finish out of order, when a test
 * kills the process. The worker never sleeps for it. 0 turns it off. */
void vre_blk_queue_set_test_delay(struct vre_blk_queue *q, uint32_t max_us);

/* One pass. Returns the requests taken plus those completed (0: idle), or
 * -EIO when the ring is broken and nothing is in flight. */
int vre_blk_queue_poll(struct vre_blk_queue *q);
/* An fd that becomes readable on a guest kick (kick_fd) or on any I/O
 * completion, for the worker to sleep on: an epoll set of kick_fd and an
 * eventfd registered with io_uring. Owned by q (closed by fini); kick_fd
 * must stay open until then. -errno on failure, and q keeps working with
 * the kick fd alone (the worker then polls while I/O is in flight). */
int vre_blk_queue_wake_fd(struct vre_blk_queue *q, int kick_fd);
/* Before the worker sleeps: enables guest kicks. True when it must not
 * sleep: chains are pending, completions are waiting, or I/O is in flight
 * and no wake fd tells of its completion. */
bool vre_blk_queue_arm(struct vre_blk_queue *q);
void vre_blk_queue_disarm(struct vre_blk_queue *q);
/* Requests taken and not yet returned. */
unsigned vre_blk_queue_inflight(const struct vre_blk_queue *q);
/* Finishes every request in flight and returns them to the ring; takes no
 * new chains. Waits up to grace_ms for them to complete; then cancels the
 * rest (io_uring cancel: they complete with IOERR) and waits for the kernel
 * to hand every one back, however long that takes (a warning every 5 s):
 * the caller unmaps guest memory next, and the kernel must not write into
 * it afterwards. Returns the number of requests cancelled (0: all
 * completed in time). Runs on the thread that owns the queue. */
int vre_blk_queue_drain(struct vre_blk_queue *q, int grace_ms);

#endif
