/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What vre-switch's control channel and vre-ctl agree on: the default
 * socket path, the request size limit and the JSON-RPC error codes. The
 * methods and their parameters are listed in docs/switch.md and ctl_rpc.c.
 *
 * Framing: a client writes JSON-RPC 2.0 request objects (one object per
 * request; whitespace between them is skipped, a newline after each is
 * customary); the switch writes each response as one line of compact JSON
 * ending in "\n". Requests of one client are answered in order.
 */
#ifndef SW_CTL_PROTO_H
#define SW_CTL_PROTO_H

#define SW_CTL_DEFAULT_PATH "/run/vre/switch.sock"
#define SW_CTL_MAX_REQUEST 65536  /* bytes of one request */

/* JSON-RPC 2.0's own codes */
#define RPC_PARSE_ERROR      -32700 /* not JSON: the connection is closed after it */
#define RPC_INVALID_REQUEST  -32600 /* not a request object, or too large */
#define RPC_METHOD_NOT_FOUND -32601
#define RPC_INVALID_PARAMS   -32602 /* a missing, unknown or mistyped parameter */
#define RPC_INTERNAL_ERROR   -32603
/* vre-switch's (data: {"errno": "ENOENT", ...} where one applies) */
#define RPC_FAILED           -32000 /* the operation failed; message says why */
#define RPC_NO_SUCH_PORT     -32001
#define RPC_EXISTS           -32002 /* a port with that number, name or path exists */
#define RPC_NOT_SUPPORTED    -32003 /* not in this mode / for this port */

#endif
