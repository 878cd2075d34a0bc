/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Containing guest memory that a frontend takes away under a running device.
 *
 * A frontend owns the files behind guest memory and inflight regions. If it
 * shrinks one (ftruncate) after handing it over, every access to the lost
 * pages raises SIGBUS, on a worker or on the control thread. VRE contains
 * that to the one device:
 *
 *  - Seals first: control adds F_SEAL_SHRINK to every region fd it receives
 *    (memory table, ADD_MEM_REG, SET_INFLIGHT_FD) and to the inflight memfds
 *    it creates. A sealed file cannot shrink, so no SIGBUS can come from it
 *    (QEMU's memory-backend-memfd is sealed already). Files that refuse
 *    seals (memfds made without MFD_ALLOW_SEALING, /dev/shm, hugetlbfs) are
 *    covered by the handler below; a debug line says which is which.
 *  - A process-wide SIGBUS handler (installed by vre_server_create) looks
 *    the faulting address up in a lock-free registry of every guest mapping
 *    control made. On a hit it replaces the whole mapping with anonymous
 *    zero pages (MAP_FIXED), so the faulting access resumes harmlessly, and
 *    tells the owning device's server through an eventfd. The control loop
 *    then logs one line, stops the device's queues, marks them broken
 *    (VRE_RE_MEMORY_LOST) and drops the connection like any protocol error;
 *    the drop unmaps everything, the replacement included. Other devices
 *    never notice. Workers pay nothing: no check on any data path. Between
 *    the fault and the drop a worker may read the zero pages once more; a
 *    split ring then no longer matches its indexes and vring logs the
 *    queue broken just before control's line.
 *  - A SIGBUS anywhere else (a real bug, or a mapping that is not guest
 *    memory) goes where it went before: to the handler that was installed
 *    before VRE's, or to the default action (core dump).
 *
 * Known limits: DPDK's EAL swaps in its own SIGBUS handler for a moment
 * while it allocates hugepages (rte_eal_init, and later heap growth with
 * dynamic memory); a guest fault in that window is not contained. A program
 * that installs its own SIGBUS handler after creating a server replaces
 * VRE's; vre_fault_install() puts it back, chaining to that handler.
 */
#ifndef VRE_FAULT_H
#define VRE_FAULT_H

#include <stdbool.h>
#include <stdint.h>

/* Installs the SIGBUS handler unless it is already in force, remembering
 * the disposition it replaces. Idempotent and thread-safe; 0 or -errno. */
int vre_fault_install(void);
/* Whether VRE's handler is the current SIGBUS disposition. */
bool vre_fault_installed(void);
/* Faults contained since the process started (every device). */
uint64_t vre_fault_count(void);

#endif
