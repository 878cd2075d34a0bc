/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vring — the innermost room.
 *
 * Offers: the device side of virtio split and packed virtqueues over a guest
 * memory map (vre_vq.h), the memory map and its translations (vre_mem.h),
 * dirty-page logging for live migration (vre_dirty_log.h),
 * the spec's ring layouts (vre_ring_layout.h), iovec copies (vre_iov.h), inflight tracking regions in
 * the vhost-user layout (vre_inflight.h), and the one logging facility
 * (vre_log.h) every room uses.
 *
 * Part of libvre with control/ and dataplane/: installed under
 * <includedir>/vre, `pkg-config --cflags --libs libvre`, #include
 * <vre_vring.h>; vre_version.h says which version (lib/, include/vre/).
 *
 * Needs: libc. Knows nothing of sockets, threads, eventfds or DPDK; a queue
 * is used by one thread at a time, and whoever changes its memory map first
 * makes sure that thread is outside it (control's quiesce handshake).
 */
#ifndef VRE_VRING_H
#define VRE_VRING_H

#include "vre_dirty_log.h"
#include "vre_inflight.h"
#include "vre_iov.h"
#include "vre_log.h"
#include "vre_mem.h"
#include "vre_ring_layout.h"
#include "vre_vq.h"

#endif
