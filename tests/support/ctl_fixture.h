/* SPDX-License-Identifier: BSD-3-Clause */
/* Shared set-up for control's test suites: a server with fake devices in a
 * fresh temp dir, guest memory in a memfd, and protocol helpers. */
#ifndef CTL_FIXTURE_H
#define CTL_FIXTURE_H

#include <check.h>
#include <stdbool.h>
#include <stdint.h>

#include "fakedev.h"
#include "vfront.h"
#include "vre_vring.h"

/* Request codes and bits the tests speak (numbers from the spec). */
enum {
	GET_FEATURES = 1, SET_FEATURES, SET_OWNER, RESET_OWNER, SET_MEM_TABLE,
	SET_LOG_BASE, SET_LOG_FD, SET_VRING_NUM, SET_VRING_ADDR, SET_VRING_BASE,
	GET_VRING_BASE, SET_VRING_KICK, SET_VRING_CALL, SET_VRING_ERR,
	GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES, GET_QUEUE_NUM,
	SET_VRING_ENABLE, SEND_RARP, NET_SET_MTU, SET_BACKEND_REQ_FD,
	IOTLB_MSG, SET_VRING_ENDIAN, GET_CONFIG, SET_CONFIG,
	GET_INFLIGHT_FD = 31, SET_INFLIGHT_FD, RESET_DEVICE = 34,
	GET_MAX_MEM_SLOTS = 36, ADD_MEM_REG, REM_MEM_REG, SET_STATUS, GET_STATUS,
};

#define F_INDIRECT (1ull << 28)
#define F_EVENT_IDX (1ull << 29)
#define F_PROTOCOL (1ull << 30)
#define F_VERSION_1 (1ull << 32)
#define F_PACKED (1ull << 34)
#define F_MRG_RXBUF (1ull << 15)
#define F_MQ (1ull << 22)
#define F_LOG_ALL (1ull << 26) /* control offers it with LOG_SHMFD */

#define PF_MQ (1ull << 0)
#define PF_LOG_SHMFD (1ull << 1)
#define PF_RARP (1ull << 2)
#define PF_REPLY_ACK (1ull << 3)
#define PF_MTU (1ull << 4)
#define PF_BACKEND_REQ (1ull << 5)
#define PF_CONFIG (1ull << 9)
#define PF_INFLIGHT (1ull << 12)
#define PF_RESET_DEVICE (1ull << 13)
#define PF_MEM_SLOTS (1ull << 15)
#define PF_STATUS (1ull << 16)
#define PF_ALL (PF_MQ | PF_LOG_SHMFD | PF_RARP | PF_REPLY_ACK | PF_MTU | PF_BACKEND_REQ | PF_CONFIG | \
		PF_INFLIGHT | PF_RESET_DEVICE | PF_MEM_SLOTS | PF_STATUS)

#define FEATURES_OFFERED (F_INDIRECT | F_EVENT_IDX | F_VERSION_1 | F_PACKED | F_MRG_RXBUF | F_MQ)

#define GUEST_SIZE (1u << 20)
#define GUEST_GPA 0x100000ull
#define GUEST_UVA 0x7f1200000000ull
#define RING_DESC 0x1000u  /* offsets of ring parts inside guest memory */
#define RING_AVAIL 0x6000u
#define RING_USED 0x8000u

struct region { uint64_t gpa, size, uva, offset; };
struct addr_msg { uint32_t index, flags; uint64_t desc, used, avail, log; };
struct inflight_msg { uint64_t mmap_size, mmap_offset; uint16_t num_queues, queue_size; };

struct fx {
	char dir[64];
	char path[96];
	struct vre_server *srv;
	struct fake_dev fake;
	struct vre_dev *dev;
	int fd;          /* frontend connection */
	int mem_fd;      /* guest memory (memfd) */
	uint8_t *mem;    /* the test's own view of it */
};

extern struct fx fx;

/* Server + one fake device listening at fx.path + a connected frontend. */
void fx_setup(void);
void fx_teardown(void);
/* Second device on the same server at path. */
struct vre_dev *fx_add_dev(struct fake_dev *f, const char *path, bool client);

/* Whether vring's rings are implemented in this build (vre_vq_init does not
 * return -ENOSYS); queue_start needs them. */
bool fx_vring_ready(void);

/* GET_FEATURES, SET_OWNER, protocol features pf, features f; asserts. */
void fx_negotiate(int fd, uint64_t f, uint64_t pf);
/* One-region table over fx.mem_fd; returns the ack. */
int fx_mem_table(int fd);
/* NUM, BASE, ADDR for queue idx at the standard offsets; asserts acks. */
void fx_ring(int fd, uint32_t idx, uint32_t num, uint32_t base);
int fx_ring_fd(int fd, uint32_t req, uint64_t v, int efd);
int fx_eventfd(void);
/* A copy of queue idx of fx.dev, read between two round trips through the
 * server lock (control changes queues under it while the test runs). */
struct vre_queue fx_queue(uint16_t idx);

#endif
