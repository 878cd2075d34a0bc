/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Workers as DPDK threads (libvre-dpdk: pkg-config libvre-dpdk). Put these into a
 * vre_worker_config so the worker registers with the EAL before it polls:
 * it then has an lcore id, and mempool per-lcore caches work on it.
 *   cfg.thread_init = vre_worker_dpdk_init; cfg.thread_fini = vre_worker_dpdk_fini;
 * rte_eal_init must have run.
 */
#ifndef VRE_WORKER_DPDK_H
#define VRE_WORKER_DPDK_H

int vre_worker_dpdk_init(void *unused);
void vre_worker_dpdk_fini(void *unused);

#endif
