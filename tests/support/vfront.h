/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A tiny vhost-user frontend for tests: connects (or listens, for devices in
 * client mode), sends requests with fds, reads replies with a timeout, and
 * counts this process's fds and mappings for leak checks.
 */
#ifndef VFRONT_H
#define VFRONT_H

#include <stdbool.h>
#include <stdint.h>

/* How long a reply may take; a build may give more (scripts/soak's
 * churner does: a backend under heavy load may be slow, not wrong). */
#ifndef VFRONT_TIMEOUT_MS
#define VFRONT_TIMEOUT_MS 3000
#endif

#define VF_NEED_REPLY 0x8u

struct vfront_msg {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
	union {
		uint8_t bytes[4096];
		uint64_t u64;
		struct { uint32_t index, num; } state;
	} p;
	int fds[8];
	unsigned nfds;
};

/* Connects to a listening device, retrying until timeout_ms. */
int vfront_connect(const char *path, int timeout_ms);
/* Listens at path (for a device in client mode); accept with a timeout. */
int vfront_listen(const char *path);
int vfront_accept(int lfd, int timeout_ms);

int vfront_send(int fd, uint32_t req, uint32_t flags, const void *payload,
		uint32_t size, const int *fds, unsigned nfds);
/* Sends raw bytes (half messages, garbage). */
int vfront_send_raw(int fd, const void *buf, size_t len);
/* Reads one message; fds received are stored in m->fds. 0, -ETIMEDOUT,
 * -ECONNRESET (peer closed) or another -errno. */
int vfront_recv(int fd, struct vfront_msg *m, int timeout_ms);
/* Closes the fds a received message carried. */
void vfront_msg_close_fds(struct vfront_msg *m);

/* Request with no payload or a u64, expecting a u64 reply (GET_*). */
int vfront_get_u64(int fd, uint32_t req, uint64_t *val);
/* Request with a u64 payload; with need_reply, returns the ack status
 * (0 ok, 1 failure) or -errno. */
int vfront_set_u64(int fd, uint32_t req, uint64_t val, bool need_reply);
/* Request with a payload and fds, need_reply set: the ack u64, or -errno. */
int vfront_request_ack(int fd, uint32_t req, const void *payload, uint32_t size,
		       const int *fds, unsigned nfds);
/* True when nothing arrives within ms, and the peer is still there. */
bool vfront_quiet(int fd, int ms);
/* True when the peer closes the connection within ms. */
bool vfront_closed(int fd, int ms);

int vfront_count_fds(void);
/* Mappings of memfd files in this process. */
int vfront_count_maps(void);

void vfront_dump_fds(void);
#endif
