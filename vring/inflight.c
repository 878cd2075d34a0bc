/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>

#include "vring_internal.h"

static size_t align_up(size_t v, size_t a)
{
	return (v + a - 1) / a * a;
}

size_t vre_inflight_queue_bytes(uint16_t queue_size, bool packed)
{
	if (packed)
		return align_up(sizeof(struct vre_inflight_packed) +
				sizeof(struct vre_inflight_packed_desc) * queue_size,
				VRE_INFLIGHT_ALIGN);
	return align_up(sizeof(struct vre_inflight_split) +
			sizeof(struct vre_inflight_split_desc) * queue_size,
			VRE_INFLIGHT_ALIGN);
}

int vre_vq_inflight_attach(struct vre_vq *vq, void *region, size_t len,
			   uint64_t features)
{
	if (!region || len < vre_inflight_queue_bytes(vq->size, vq->packed))
		return -EINVAL;
	return vq->packed ? packed_inflight_attach(vq, region, features)
			  : split_inflight_attach(vq, region, features);
}
