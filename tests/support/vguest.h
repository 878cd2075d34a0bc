/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A virtio-net guest on a vhost-user socket, for integration tests against
 * a running vre-switch: a vfront connection, guest memory in a memfd that
 * the backend maps, one queue pair on split rings (RX 0, TX 1), kick and
 * call eventfds. Frames are sent and received by polling the rings, as a
 * guest driver with notifications off would.
 *
 * The switch completes a TX chain only after the frame was delivered to
 * its destinations' RX rings (or dropped), so once vguest_send_wait
 * returned, every copy of that frame is already in the receivers' rings:
 * tests can check exact counts without waiting for "quiet" periods.
 */
#ifndef VGUEST_H
#define VGUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VGUEST_RING 256u
#define VGUEST_BUF 2048u
#define VGUEST_HDR 12u  /* virtio-net header with VERSION_1 */

struct vguest;

/* Connects to path (retrying up to timeout_ms), negotiates VERSION_1 and
 * REPLY_ACK, maps its memory, starts both rings and posts every RX
 * buffer. NULL with errno set (and a line on stderr) on failure. */
struct vguest *vguest_open(const char *path, int timeout_ms);
/* Closes the connection, the memfd and the eventfds. */
void vguest_close(struct vguest *g);
/* The connection fd (to see it closed by the backend). */
int vguest_fd(const struct vguest *g);

/* Puts one frame on the TX ring and kicks. 0, or -ENOSPC when the ring
 * is full of unfinished chains. */
int vguest_send(struct vguest *g, const void *frame, size_t len);
/* vguest_send, then waits (up to timeout_ms) until the backend completed
 * the chain. 0, -ETIMEDOUT. */
int vguest_send_wait(struct vguest *g, const void *frame, size_t len, int timeout_ms);
/* Takes the next received frame into buf (cap bytes, header stripped):
 * its length, 0 when none is waiting. The buffer goes back to the ring. */
size_t vguest_recv(struct vguest *g, void *buf, size_t cap);

#endif
