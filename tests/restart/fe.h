/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A vhost-user frontend session for the restart tests, in QEMU's order:
 * owner, features, protocol features, the inflight region (GET once per
 * frontend, SET on every session), memory table, then per ring NUM, BASE,
 * ADDR, KICK, CALL, ENABLE. Every request that may carry need_reply does,
 * so each step is confirmed before the next (REPLY_ACK is required).
 * Guest memory is a memfd the frontend maps; GPA = FE_GPA0 + offset.
 */
#ifndef FE_H
#define FE_H

#include <stdbool.h>
#include <stdint.h>

#include "fring.h"

#define FE_GPA0 0x40000000ull

#define FE_F_VERSION_1 32
#define FE_F_EVENT_IDX 29
#define FE_F_INDIRECT_DESC 28
#define FE_F_RING_PACKED 34
#define FE_F_PROTOCOL_FEATURES 30
#define FE_PF_REPLY_ACK 3
#define FE_PF_INFLIGHT_SHMFD 12

struct fe_mem {
	int fd;
	uint8_t *hva;
	uint64_t len;
};

struct fe_inflight {
	int fd; /* -1: none */
	uint8_t *hva;
	uint64_t mmap_size, mmap_offset;
	uint16_t num_queues, queue_size;
};

struct fe_ring {
	uint16_t index, size;
	struct fring_layout lay;
	int kick_fd, call_fd;
};

int fe_mem_new(struct fe_mem *m, uint64_t len);
void fe_mem_free(struct fe_mem *m);
static inline uint64_t fe_gpa(uint64_t off) { return FE_GPA0 + off; }

/* Owner, features (want & offered, plus PROTOCOL_FEATURES), protocol
 * features (want_pf & offered; REPLY_ACK must be offered). *pf_out gets
 * the protocol features in force. */
int fe_handshake(int sock, uint64_t want, uint64_t want_pf, uint64_t *features_out,
		 uint64_t *pf_out);
/* GET_INFLIGHT_FD: the backend allocates; the frontend keeps fd and maps it. */
int fe_inflight_get(int sock, uint16_t nq, uint16_t qsize, struct fe_inflight *in);
int fe_inflight_set(int sock, const struct fe_inflight *in);
void fe_inflight_free(struct fe_inflight *in);
int fe_set_features(int sock, uint64_t features);
int fe_mem_table(int sock, const struct fe_mem *m);
/* NUM, BASE, ADDR, KICK, CALL, ENABLE(1) for ring r (eventfds made here
 * unless already open). */
int fe_ring_start(int sock, const struct fe_mem *m, struct fe_ring *r, uint32_t base);
void fe_ring_close(struct fe_ring *r);
void fe_kick(const struct fe_ring *r);
/* Waits up to ms for a call (and clears it); true when one came. */
bool fe_wait_call(const struct fe_ring *r, int ms);

int64_t fe_now_us(void);

/* Entries of /proc/PID/fd and lines of /proc/PID/maps. */
int fe_proc_fds(int pid);
int fe_proc_maps(int pid);

#endif
