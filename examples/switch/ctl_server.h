/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vre-switch's control channel (ctl_server.c: the socket, its clients and
 * threads), the JSON-RPC methods behind it (ctl_rpc.c) and the same
 * counters for DPDK telemetry (telemetry.c).
 *
 * The control thread runs one epoll loop over the listening socket, its
 * clients, a stop eventfd and a "jobs done" eventfd, and never blocks on a
 * client: sockets are non-blocking, each client has an input buffer of at
 * most SW_CTL_MAX_REQUEST bytes and an output buffer of at most
 * CTL_MAX_OUT bytes (a client that does not read its answers is dropped),
 * a request left unfinished for CTL_STALL_MS (or a connection that sends
 * nothing that long) is dropped, and at most CTL_MAX_CLIENTS are served at
 * once (more wait in the listen backlog until one leaves). Requests are
 * found by an incremental scan of brace depth (outside strings), so each
 * byte is looked at once however the request is cut into reads, and only a
 * complete object is handed to jansson.
 *
 * Methods marked slow (port-add, port-del, rxq-pin, rebalance: they wait
 * for worker handshakes, control's lock or DPDK hot-plug) run one at a time
 * on the admin thread; their client waits for the answer (its later
 * requests stay queued, so answers keep their order), every other client
 * is served meanwhile. The other methods run on the control thread and
 * take s->lock (and s->keep, shared, where they ask control for a
 * device's state), held by a port operation at most for one handshake.
 */
#ifndef SW_CTL_SERVER_H
#define SW_CTL_SERVER_H

#include <jansson.h>

#include "switch.h"

#define CTL_MAX_CLIENTS 64
#define CTL_STALL_MS 5000
#define CTL_IDLE_MS 300000
#define CTL_MAX_OUT (16u << 20)

struct sw_ctl;

/* Listens at path with perm (an existing live control socket there is an
 * error: another switch owns it; a stale one is replaced) and starts the
 * control and admin threads. 0, or -errno with why[] set. */
int sw_ctl_start(struct sw *s, const char *path, const struct vre_sock_perm *perm,
		 struct sw_ctl **out, char *why, size_t whylen);
/* Stops both threads (a running slow method finishes first), closes every
 * client and removes the socket file. NULL is fine. */
void sw_ctl_stop(struct sw_ctl *c);

/* ---- methods (ctl_rpc.c) ---- */

struct rpc_error {
	int code;                /* RPC_* of ctl_proto.h */
	int err;                 /* errno behind it, 0: none */
	char msg[256];
};

struct sw_rpc_method {
	const char *name;
	bool slow;               /* runs on the admin thread */
	/* params: an object (never NULL). Returns the result (a new
	 * reference), or NULL with e filled. */
	json_t *(*fn)(struct sw *s, json_t *params, struct rpc_error *e);
	const char *params;      /* for the methods method and docs */
	const char *summary;
};

const struct sw_rpc_method *sw_rpc_find(const char *name);

/* ---- DPDK telemetry (telemetry.c) ---- */

/* Registers /vre/info, /vre/ports, /vre/port, /vre/workers. -errno. */
int sw_telemetry_register(struct sw *s);
/* Answers nothing any more (before the switch is torn down). */
void sw_telemetry_off(struct sw *s);

#endif
