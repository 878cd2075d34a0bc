/* SPDX-License-Identifier: BSD-3-Clause */
#include "vre_worker_dpdk.h"

#include <errno.h>
#include <rte_errno.h>
#include <rte_lcore.h>

#include "vre_log.h"

int vre_worker_dpdk_init(void *unused)
{
	(void)unused;
	if (rte_thread_register() < 0) {
		int err = rte_errno ? rte_errno : EINVAL;

		VRE_ERR("worker", "rte_thread_register: %s (no free lcore id?)",
			rte_strerror(err));
		return -err;
	}
	VRE_DEBUG("worker", "registered with DPDK as lcore %u", rte_lcore_id());
	return 0;
}

void vre_worker_dpdk_fini(void *unused)
{
	(void)unused;
	rte_thread_unregister();
}
