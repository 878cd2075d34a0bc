/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The driver side of one virtqueue for the restart tests, split or packed,
 * over ring memory the test frontend owns (a memfd it shares with the
 * backend). It wraps the unit suites' test drivers (tests/support/
 * vdrv_split.c, vdrv_packed.c): those detect a completion of a head/id that
 * is not outstanding. Each ring type lives in its own file (fring_split.c,
 * fring_packed.c) behind this small interface.
 */
#ifndef FRING_H
#define FRING_H

#include <stdbool.h>
#include <stdint.h>

struct fring;

struct fbuf {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

/* Ring memory, laid out by fring_layout: host pointers for the driver,
 * offsets from the start of the guest memory for the frontend's messages. */
struct fring_layout {
	uint64_t desc_off, avail_off, used_off; /* avail = driver area, used = device area */
	uint64_t bytes;                          /* total, rounded to 4 KiB */
};

void fring_layout(bool packed, uint16_t size, uint64_t at, struct fring_layout *l);

struct fring *fring_new(bool packed, uint16_t size, uint8_t *mem_hva,
			const struct fring_layout *l);
void fring_free(struct fring *r);

/* Adds a chain tagged tag (< size, unique among outstanding chains) and
 * publishes it. 0, -ENOSPC (no room) or -EBUSY (packed: tag outstanding). */
int fring_add(struct fring *r, const struct fbuf *b, unsigned n, uint16_t tag);

/* The same chain through one INDIRECT descriptor: its table (n entries of
 * 16 bytes in the ring type's descriptor format) is written at table_hva,
 * which the device sees at table_gpa. */
int fring_add_indirect(struct fring *r, const struct fbuf *b, unsigned n, uint16_t tag,
		       void *table_hva, uint64_t table_gpa);

/* The next completion: 1 with tag and len, 0 when none is visible, -EPROTO
 * when the device completed something that is not outstanding. */
int fring_get_used(struct fring *r, uint16_t *tag, uint32_t *len);

/* With EVENT_IDX: asks for a notification on the next completion (split:
 * used_event = the next used entry to read), then a full fence, as a
 * guest's enable_cb does; the caller must look at the ring again after it. */
void fring_arm(struct fring *r);

/* Descriptors owned by the driver (size when nothing is outstanding). */
unsigned fring_free_descs(const struct fring *r);

/* The base a frontend gives a restarted backend, as QEMU computes it:
 * split: the ring's used index (virtio_queue_restore_last_avail_idx);
 * packed: the driver's own used position for both halves (what it has
 * taken back); with an inflight region the backend recovers the real
 * positions from it. */
uint32_t fring_restart_base(const struct fring *r);
/* The base for a fresh ring. */
uint32_t fring_initial_base(bool packed);

#endif
