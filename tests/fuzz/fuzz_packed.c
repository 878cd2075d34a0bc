/* SPDX-License-Identifier: BSD-3-Clause */
/* libFuzzer entry: packed descriptor chain walking (see ring_engine.h). */
#include "fuzz_common.h"
#include "ring_engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fz_ring_run(data, size, FZ_RING_PACKED);
}
