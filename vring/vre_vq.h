/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The device side of one virtqueue, split or packed, over guest memory that
 * is never trusted.
 *
 * Life: vre_vq_init() with the ring's host pointers, optionally
 * vre_vq_set_base() and vre_vq_inflight_attach(); then, on one thread at a
 * time (the worker that owns the queue):
 *   n = vre_vq_fetch(vq, chains, 32, iov_pool, pool_len);  ... use chains ...
 *   vre_vq_complete(vq, used, n); if (vre_vq_needs_notify(vq)) write callfd;
 *
 * Every value read from guest memory is read once into a local and then
 * checked. Input that breaks the ring's rules marks the queue broken
 * (vq->broken holds a vre_ring_error, logged once); fetch then returns -EIO
 * and nothing in or outside guest memory is touched by it again. Chains
 * handed out before the fault stay valid and may be completed.
 */
#ifndef VRE_VQ_H
#define VRE_VQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vre_dirty_log.h"
#include "vre_inflight.h"
#include "vre_mem.h"
#include "vre_ring_layout.h"

/* Largest burst one fetch call handles. */
#define VRE_BURST 32
/* Most entries one complete call publishes: a mergeable RX frame's chains
 * must appear together, and a 64 KiB GSO frame in 1.5 KiB buffers takes 44. */
#define VRE_COMPLETE_MAX 64

/* Why a queue was marked broken: each rule a guest can break has its own. */
enum vre_ring_error {
	VRE_RE_NONE = 0,
	VRE_RE_DESC_OUT_OF_MEMORY,     /* descriptor addr/len not inside guest memory */
	VRE_RE_DESC_OVERFLOW,          /* addr + len wraps around 2^64 */
	VRE_RE_CHAIN_TOO_LONG,         /* loops, or more descriptors than the queue size */
	VRE_RE_NEXT_OUT_OF_RANGE,      /* split next >= queue size (or table length) */
	VRE_RE_HEAD_OUT_OF_RANGE,      /* split avail ring entry >= queue size */
	VRE_RE_AVAIL_IDX_LEAP,         /* avail index runs more than size ahead */
	VRE_RE_INDIRECT_NOT_NEGOTIATED,
	VRE_RE_INDIRECT_LEN_ZERO,
	VRE_RE_INDIRECT_LEN_UNALIGNED, /* not a multiple of 16 */
	VRE_RE_INDIRECT_TOO_BIG,       /* more entries than the queue size */
	VRE_RE_INDIRECT_NESTED,        /* indirect descriptor inside an indirect table */
	VRE_RE_INDIRECT_WITH_NEXT,     /* split: INDIRECT together with NEXT */
	VRE_RE_INDIRECT_OUT_OF_MEMORY, /* the table itself not inside guest memory */
	VRE_RE_WRITE_THEN_READ,        /* readable descriptor after a writable one */
	VRE_RE_ID_OUT_OF_RANGE,        /* packed buffer id >= queue size */
	VRE_RE_ID_IN_USE,              /* packed buffer id already in flight */
	VRE_RE_INFLIGHT_CORRUPT,       /* inflight region contradicts itself or the ring */
	VRE_RE_MEMORY_LOST,            /* guest memory vanished under the queue (set by
					* its owner, e.g. after a SIGBUS, never by vring) */
	VRE_RE_COUNT
};

const char *vre_ring_strerror(enum vre_ring_error e);

struct vre_chain {
	struct iovec *iov; /* nr readable then nw writable, inside the caller's pool */
	uint64_t rlen;     /* readable bytes */
	uint64_t wlen;     /* writable bytes */
	uint16_t nr;
	uint16_t nw;
	uint16_t id;       /* split: head index; packed: buffer id */
	uint16_t ndesc;    /* ring slots the chain occupies (packed used-index step) */
	uint16_t slot;     /* inflight entry that tracks it (packed); == id for split */
	int16_t err;       /* 0, or -ENOBUFS: did not fit the iovec pool; consumed,
			    * complete it with len 0 */
};

/* What the device hands back for one chain. */
struct vre_used {
	uint16_t id;
	uint16_t ndesc;
	uint16_t slot;
	uint32_t len; /* bytes written into the chain's writable part */
};

static inline struct vre_used vre_used_of(const struct vre_chain *c, uint32_t len)
{
	struct vre_used u = { .id = c->id, .ndesc = c->ndesc, .slot = c->slot, .len = len };
	return u;
}

struct vre_vq_params {
	uint16_t size;   /* split: power of two, 1..32768; packed: 1..32768 */
	bool packed;
	bool event_idx;  /* VIRTIO_RING_F_EVENT_IDX negotiated */
	bool indirect;   /* VIRTIO_RING_F_INDIRECT_DESC negotiated */
	bool in_order;   /* VIRTIO_F_IN_ORDER negotiated: the device promises to
			  * complete chains in the order they were made
			  * available (see vre_vq_complete_inorder) */
	/* Host pointers, each already checked to cover its whole part:
	 * split: desc table, avail ring, used ring;
	 * packed: desc ring, driver event area, device event area. */
	void *desc;
	void *driver;
	void *device;
	const struct vre_mem_map *mem;
};

struct vre_vq {
	/* Read on every fetch. */
	const struct vre_mem_map *mem;
	uint32_t mem_hint;
	uint16_t size;
	bool packed;
	bool event_idx;
	bool indirect;
	uint8_t broken; /* enum vre_ring_error */
	bool in_order;  /* VIRTIO_F_IN_ORDER negotiated */

	union {
		struct {
			struct vre_desc *desc;
			struct vre_avail *avail;
			struct vre_used_ring *used;
			uint16_t *used_event;  /* in avail, after ring[size] */
			uint16_t *avail_event; /* in used, after ring[size] */
			/* avail->idx as last read: fetch reads the driver's
			 * line again only when what is known to be there
			 * is not enough for the burst; equal to
			 * last_avail_idx whenever the indexes are set */
			uint16_t avail_seen;
		} sp;
		struct {
			struct vre_packed_desc *desc;
			struct vre_packed_event *driver;
			struct vre_packed_event *device;
			uint8_t *id_busy; /* ids handed out and not yet completed */
		} pk;
	};

	/* Device indexes. Split: free-running u16; packed: slot + wrap. */
	uint16_t last_avail_idx;
	uint16_t last_used_idx;
	bool avail_wrap;
	bool used_wrap;
	/* Where the driver was last notified (event-idx bookkeeping). */
	uint16_t signalled_used;
	bool signalled_used_valid;
	bool notify_enabled;

	/* Inflight tracking (NULL when not attached). */
	void *inflight;
	uint64_t inflight_counter;
	uint16_t *resubmit;     /* chains to hand out before new ones, oldest first */
	uint16_t resubmit_num;
	uint16_t resubmit_pos;

	/* Dirty logging (vre_vq_set_log): NULL when off. The ring paths test
	 * it once per complete call; device code that writes guest buffers
	 * tests it once per burst and marks through vre_vq_log_iov. */
	const struct vre_dirty_log *log;
	uint64_t log_ring_gpa;  /* split: used ring; packed: descriptor ring */
	uint64_t log_ring_len;  /* 0: the ring's own writes are not logged */
	uint64_t log_event_gpa; /* packed: device event area (4 bytes) */
	uint32_t log_hint;      /* region hint of the reverse translation */
};

/* Sets the queue up over ring memory. -EINVAL for a bad size, a NULL or
 * misaligned part (desc 16, avail 2, used 4; packed: 16, 4, 4). The indexes
 * start at 0 (packed: wrap counters 1). */
int vre_vq_init(struct vre_vq *vq, const struct vre_vq_params *p);
/* Points a set-up queue at new ring memory and a new map (after the memory
 * table changed under a quiesced queue), keeping indexes, inflight state and
 * resubmissions. Same checks as init. */
int vre_vq_rebind(struct vre_vq *vq, const struct vre_vq_params *p);
/* Frees what init and attach allocated. The ring memory is not touched. */
void vre_vq_fini(struct vre_vq *vq);

/* vhost-user SET/GET_VRING_BASE encoding. Split: the next avail index in the
 * low 16 bits. Packed: bits 0-14 avail index, 15 avail wrap, 16-30 used
 * index, 31 used wrap. set_base: -EINVAL when an index is >= size (packed). */
int vre_vq_set_base(struct vre_vq *vq, uint32_t base);
uint32_t vre_vq_get_base(const struct vre_vq *vq);

/* Split rings without inflight tracking: when the base the frontend gave
 * cannot be a position a backend reached (behind the ring's used index, or
 * more than a queue size ahead of it), resumes from the used index instead,
 * so chains taken but not completed by a backend that died are taken again
 * (net TX is then sent at least once, RX buffers are reused). A frontend
 * that does not know the dead backend's position (DPDK virtio-user) sends 0.
 * With IN_ORDER any base other than the used index moves: a used entry's
 * position names the driver's chain, so none may be skipped.
 * Returns 1 when the indexes moved, 0 when the base stands, -ENOTSUP for packed
 * rings (their used position is not in one index). Either way the used
 * position becomes the ring's used index (a split base has no used half).
 * Call before the first fetch. */
int vre_vq_resync_to_used(struct vre_vq *vq);

/* Takes up to max available chains (max <= VRE_BURST), translating every
 * descriptor into iovecs from pool (pool_len entries). A chain that would
 * overflow what is left of the pool ends the burst before it; a chain too
 * long for the whole pool is returned with err = -ENOBUFS and no iovecs.
 * Returns the number of chains, or -EIO when the queue is (or becomes, before
 * any chain of this burst) broken. Each chain is recorded in the inflight
 * region, if attached, before it is returned. */
int vre_vq_fetch(struct vre_vq *vq, struct vre_chain *chains, unsigned max,
		 struct iovec *pool, unsigned pool_len);

/* Returns n chains to the driver, in this order, with one used-index store
 * (split) or with the first chain's flags written last (packed). Inflight
 * records are cleared in the spec's order. -EINVAL for n > VRE_COMPLETE_MAX. */
int vre_vq_complete(struct vre_vq *vq, const struct vre_used *used, unsigned n);

/* vre_vq_complete for entries made with vre_used_of() from chains that
 * vre_vq_fetch returned on this queue and that were not completed since
 * (each chain at most once, any order). Without inflight records it skips
 * the checks that catch a caller's mistakes (packed: id not in flight,
 * duplicate, ndesc, more slots than held; split: id below size): fetch
 * validated every id and ndesc when it took the chain, and nothing here is
 * read from the guest. A caller that breaks this contract corrupts the
 * ring. With inflight records attached it is vre_vq_complete. */
int vre_vq_complete_fetched(struct vre_vq *vq, const struct vre_used *used, unsigned n);

/*
 * Returns the n chains the queue has held longest, in the order fetch
 * returned them, each with len 0 (the device wrote nothing into them: a net
 * TX queue), under vre_vq_complete_fetched's contract (this queue's fetch
 * returned them and none was completed since). Every chain fetched before
 * them must have been completed already: the device then completes in
 * order, which is what VIRTIO_F_IN_ORDER promises.
 *
 * With IN_ORDER negotiated the batch goes back the way the spec allows for
 * in-order devices ("In-order use of descriptors"): one used entry, with the
 * last chain's id, at the batch's first used position; split: used->idx
 * moves by n; packed: the used position moves past every slot of the batch.
 * The driver takes each chain before the last as used completely, which for
 * a chain without writable part is exactly len 0. Without IN_ORDER every
 * chain gets its own entry, as vre_vq_complete_fetched writes them.
 * Inflight records, when attached, are kept as vre_vq_complete keeps them.
 * -EINVAL for n > VRE_BURST.
 */
int vre_vq_complete_inorder(struct vre_vq *vq, const struct vre_chain *chains, unsigned n);

/*
 * Runs of the common chain, for a device path that needs nothing but the
 * chain's one buffer (the fused net forward path): no vre_chain, iovec or
 * vre_used per chain, just where each buffer is, its length and its id.
 *
 * vre_vq_take_run takes up to max (<= VRE_BURST) chains of exactly one
 * direct descriptor, writable or readable as asked, of 1 or more bytes
 * inside the memory region of the last translation, from the avail
 * position on, with fetch's rules for each (split: head below size, the
 * avail-leap rule; packed: id below size and not in flight, no more slots
 * than the queue holds). It stops at the first chain that is not such a
 * chain, leaving it for vre_vq_fetch, which reads it afresh. Returns the
 * chains taken (r->n), 0 when the ring has none available, -EAGAIN when
 * the first available one is not common or the queue cannot take runs
 * (inflight records attached, resubmissions pending), -EIO when broken.
 * The chains are in flight as fetched ones are.
 *
 * vre_vq_untake_run gives chains k..n of the run back untouched, as if they
 * had never been taken (nothing was written into them): the next take or
 * fetch reads them afresh. vre_vq_complete_run returns the first n chains
 * of the run, in the order taken, all chains taken before them completed:
 * with_len: the used length of chain i is r->len[i] (the caller sets it to
 * the bytes written), else 0, and with IN_ORDER the batch goes back as one
 * used entry (vre_vq_complete_inorder). One used-index store (split) or the
 * first slot's flags last (packed).
 */
struct vre_run {
	uint8_t *base[VRE_BURST];
	uint32_t len[VRE_BURST];
	uint16_t id[VRE_BURST];
	uint16_t n;
};

int vre_vq_take_run(struct vre_vq *vq, struct vre_run *r, unsigned max, bool writable);
void vre_vq_untake_run(struct vre_vq *vq, struct vre_run *r, unsigned k);
int vre_vq_complete_run(struct vre_vq *vq, const struct vre_run *r, unsigned n, bool with_len);

/* After a complete: whether the driver asked to be notified of what was
 * just published (used flags / used_event; packed driver event area). */
bool vre_vq_needs_notify(struct vre_vq *vq);

/* Whether the driver has made chains available that fetch has not taken. */
bool vre_vq_avail_pending(const struct vre_vq *vq);

/* Asks the driver for kicks (clears NO_NOTIFY / sets avail_event / device
 * event flags). Returns true when chains became available meanwhile, so the
 * caller polls again instead of sleeping. */
bool vre_vq_notify_enable(struct vre_vq *vq);
/* Tells the driver kicks are not needed while the device polls. */
void vre_vq_notify_disable(struct vre_vq *vq);

/*
 * Attaches this queue's inflight region (len >= vre_inflight_queue_bytes).
 * A region with version 0 is initialised. A region left by an earlier
 * process is recovered: its repairs are applied, the chains still in flight
 * are queued for resubmission in counter order (fetch returns them before any
 * new chain), and the ring indexes are restored from it, overriding
 * set_base. Call after init and set_base, before the first fetch.
 * Returns the number of chains to resubmit, or -EINVAL (size mismatch,
 * corrupt region: vq->broken = VRE_RE_INFLIGHT_CORRUPT), -ENOMEM.
 */
int vre_vq_inflight_attach(struct vre_vq *vq, void *region, size_t len,
			   uint64_t features);

/*
 * Dirty logging (live migration). log NULL turns it off. ring_gpa is where
 * the ring's device-written part starts in guest physical memory (split:
 * the used ring, the SET_VRING_ADDR log address; packed: the descriptor
 * ring, where used descriptors are written) and event_gpa the packed
 * device event area; log_ring false leaves the ring's own writes unlogged
 * (the frontend did not set VHOST_VRING_F_LOG). The owner calls it while
 * no thread is inside the queue; log must stay mapped until it is turned
 * off (or the queue finished) the same way.
 *
 * While on, every complete marks the ring's device-written part (once per
 * call: the whole used ring / descriptor ring, a few pages at most), and
 * notify_enable/disable mark what they write. Writes into chains are the
 * device's to mark: vre_vq_log_iov after writing them.
 */
void vre_vq_set_log(struct vre_vq *vq, const struct vre_dirty_log *log, bool log_ring,
		    uint64_t ring_gpa, uint64_t event_gpa);
/* Marks the first len bytes of a chain's writable iovecs (iov, n: from
 * c->iov + c->nr, c->nw) through b, a batch over vq->log. */
static inline void vre_vq_log_iov(struct vre_vq *vq, struct vre_log_batch *b,
				  const struct iovec *iov, unsigned n, uint64_t len)
{
	vre_log_batch_iov(b, vq->mem, &vq->log_hint, iov, n, len);
}

/* Marks the queue broken for reason e and logs it once. */
void vre_vq_break(struct vre_vq *vq, enum vre_ring_error e);

#endif
