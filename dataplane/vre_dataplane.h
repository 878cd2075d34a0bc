/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dataplane — pinned workers and the virtio-net packet paths.
 *
 * Offers:
 *   vre_worker.h       workers: one thread pinned per CPU, each the only
 *                      thread that touches the queues on its poll list;
 *                      policies poll / adaptive / interrupt; the quiesce
 *                      handshake (add, remove, sync return only once the
 *                      worker has acknowledged from outside every item);
 *                      single-writer counters (busy TSC cycles, packets,
 *                      polls, empty polls, sleeps, wakeups); CPU lists and
 *                      round-robin worker pools.
 *   vre_worker_dpdk.h  (libvre-dpdk) thread hooks that register a
 *                      worker with the EAL, so mempool caches work on it.
 *   vre_net.h          the virtio-net device model for control
 *                      (vre_net_dev_ops), TX fetch, one-copy RX put, the
 *                      vhost->vhost forward and the control queue.
 *   vre_net_seg.h      software checksum and TCP segmentation of an offload
 *                      request over iovecs (used by the mbuf paths too).
 *   vre_net_mbuf.h     (libvre-dpdk) vhost <-> rte_mbuf paths.
 *
 * Needs: control (struct vre_queue, the device ops table, queue_start /
 * queue_stop on the control thread), vring (rings, memory map, logging),
 * pthreads and epoll; DPDK only in libvre-dpdk (dataplane_dpdk in meson).
 *
 * How an application joins them (examples/switch does exactly this):
 *   1. start workers (vre_worker_pool_create) before any device exists;
 *   2. create net devices with an app ops table whose queue_start adds a
 *      poll item for the queue to a worker (poll = vre_net_forward or the
 *      tx_fetch / rx_put / tx_done triple, arm/disarm = vre_vq_notify_enable
 *      / disable, wake_fd = the queue's kick fd) and whose queue_stop
 *      removes it (returns only when the worker is out);
 *   3. an RX queue is written by one worker only: put every item that can
 *      deliver into it on that worker, and clear their pointer to it with a
 *      vre_worker_sync() before queue_stop of the RX queue returns.
 *
 * Rules on the hot path: bursts of VRE_BURST, no locks, no allocation, no
 * syscalls except the call eventfd when the driver asked for it and
 * epoll_wait when a worker goes to sleep.
 */
#ifndef VRE_DATAPLANE_H
#define VRE_DATAPLANE_H

#include "vre_net.h"
#include "vre_worker.h"

#endif
