/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Attaching a split queue to its inflight region (vhost-user "Inflight I/O
 * tracking", split rings; cold path): a fresh region is formatted; one an
 * earlier process left is checked, its last batch's clears are finished if
 * used->idx shows the batch was published, and every entry still in flight
 * is queued for resubmission, oldest first. split.c records the chains.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "vre_log.h"
#include "vring_internal.h"

struct resub {
	uint64_t counter;
	uint16_t head;
};

static int resub_cmp(const void *a, const void *b)
{
	const struct resub *x = a, *y = b;

	if (x->counter != y->counter)
		return x->counter < y->counter ? -1 : 1;
	return (int)x->head - (int)y->head;
}

static int inflight_corrupt(struct vre_vq *vq, const char *why)
{
	VRE_ERR("vring", "split inflight region: %s", why);
	vre_vq_break(vq, VRE_RE_INFLIGHT_CORRUPT);
	return -EINVAL;
}

static void inflight_format(struct vre_vq *vq, struct vre_inflight_split *r,
			    uint64_t features, uint16_t used_idx)
{
	memset(r->desc, 0, sizeof(r->desc[0]) * vq->size);
	r->features = features;
	r->desc_num = vq->size;
	r->last_batch_head = 0;
	r->used_idx = used_idx;
	/* Release: the version makes the rest valid, so it goes last. */
	__atomic_store_n(&r->version, VRE_INFLIGHT_VERSION, __ATOMIC_RELEASE);
}

/* The last batch reached used->idx but not its clears: clear along the
 * last_batch_head list, (used - region used_idx) heads, each checked. */
static int inflight_repair(struct vre_vq *vq, struct vre_inflight_split *r,
			   uint16_t used_idx)
{
	uint16_t todo = (uint16_t)(used_idx - r->used_idx);
	uint16_t head = r->last_batch_head;

	if (todo > vq->size)
		return inflight_corrupt(vq, "used_idx too far behind the used ring");
	for (uint16_t k = 0; k < todo; k++) {
		if (head >= vq->size)
			return inflight_corrupt(vq, "batch list leaves the table");
		r->desc[head].inflight = 0;
		head = r->desc[head].next;
	}
	/* Release: the clears land before used_idx says the batch is done,
	 * so a crash during this repair repeats it next time. */
	atomic_thread_fence(memory_order_release);
	r->used_idx = used_idx;
	return 0;
}

/* Queues every entry with inflight == 1 for resubmission, oldest first. */
static int inflight_collect(struct vre_vq *vq, struct vre_inflight_split *r)
{
	struct resub *list = malloc(sizeof(*list) * vq->size);
	uint16_t *heads = malloc(sizeof(*heads) * vq->size);
	uint64_t next_counter = 0;
	unsigned n = 0;

	if (!list || !heads) {
		free(list);
		free(heads);
		return -ENOMEM;
	}
	/* One read of each flag and counter: the frontend's copy could change
	 * under us, and the sort must see values that stay put. */
	for (unsigned i = 0; i < vq->size; i++) {
		if (__atomic_load_n(&r->desc[i].inflight, __ATOMIC_RELAXED) != 1)
			continue;
		list[n].counter = __atomic_load_n(&r->desc[i].counter, __ATOMIC_RELAXED);
		list[n].head = (uint16_t)i;
		if (list[n].counter >= next_counter)
			next_counter = list[n].counter + 1;
		n++;
	}
	qsort(list, n, sizeof(*list), resub_cmp);
	for (unsigned i = 0; i < n; i++)
		heads[i] = list[i].head;
	free(list);
	free(vq->resubmit);
	vq->resubmit = heads;
	vq->resubmit_num = (uint16_t)n;
	vq->resubmit_pos = 0;
	vq->inflight_counter = next_counter;
	return (int)n;
}

int split_inflight_attach(struct vre_vq *vq, void *region, uint64_t features)
{
	struct vre_inflight_split *r = region;
	uint16_t version = __atomic_load_n(&r->version, __ATOMIC_ACQUIRE);
	/* Acquire: the driver's used ring as of now is what we recover to. */
	uint16_t used_idx = __atomic_load_n(&vq->sp.used->idx, __ATOMIC_ACQUIRE);
	int n;

	if (version == 0) {
		inflight_format(vq, r, features, used_idx);
		vq->inflight = r;
		return 0;
	}
	if (version != VRE_INFLIGHT_VERSION)
		return inflight_corrupt(vq, "unknown version");
	if (r->desc_num != vq->size)
		return inflight_corrupt(vq, "desc_num differs from the queue size");
	if (r->used_idx != used_idx) {
		int e = inflight_repair(vq, r, used_idx);

		if (e < 0)
			return e;
	}
	n = inflight_collect(vq, r);
	if (n < 0)
		return n;
	vq->inflight = r;
	vq->last_used_idx = used_idx;
	vq->last_avail_idx = (uint16_t)(used_idx + n);
	vq->sp.avail_seen = vq->last_avail_idx;
	vq->signalled_used_valid = false;
	return n;
}
