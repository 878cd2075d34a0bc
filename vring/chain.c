/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The chain walker's cold parts (chain.h has the walk): the one exception
 * to the direction rule, and table entries that cross a region boundary.
 */
#include "chain.h"

/*
 * A readable entry after a writable one in a packed indirect table.
 * DPDK's virtio PMD (22.11 and earlier) creates its packed TX indirect
 * tables with WRITE on every entry and, when filling one, skips the flags
 * of the net header entry and of the entry whose table index equals the
 * chain's ring slot, so stale WRITE flags sit among readable data entries
 * (first, middle or last; seen from testpmd). A packed indirect table whose
 * entries are not readable-then-writable is therefore read as all
 * readable: the device reads only memory the driver offered and writes
 * nothing, which is always safe, and the reference frontend interoperates.
 * A well-ordered table is classified by its flags as usual.
 *
 * The table is the whole chain (an indirect descriptor stands alone in a
 * packed chain), so every piece taken so far becomes readable here, and
 * chain_table() calls this once more at the table's end for writable
 * entries after the last readable one. Each entry is still read once: the
 * classification is corrected, never re-read.
 */
void chain_stale_write(struct chain_walk *w)
{
	w->stale = true;
	w->writing = false;
	w->nr = w->pieces;
	w->rlen += w->wlen;
	w->wlen = 0;
}

/* An entry of a table that spans regions, copied piece by piece. The
 * table was checked to lie in guest memory, so this does not fail. */
enum vre_ring_error chain_entry_copy(const struct vre_mem_map *mem, uint32_t *hint,
				     uint64_t gpa, void *raw)
{
	if (vre_mem_read(mem, hint, gpa, raw, sizeof(struct vre_desc)) < 0)
		return VRE_RE_INDIRECT_OUT_OF_MEMORY;
	atomic_signal_fence(memory_order_seq_cst);
	return VRE_RE_NONE;
}
