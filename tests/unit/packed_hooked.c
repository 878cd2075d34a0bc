/* SPDX-License-Identifier: BSD-3-Clause */
/* The packed ring compiled with its crash-step hook, for test_packed only:
 * the object defines every vre_packed_* symbol, so the library's own
 * packed.o is not pulled from the archive. */
#define VRE_PACKED_TEST_HOOKS 1
#include "../vring/packed.c"
