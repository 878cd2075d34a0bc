#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""ctl_hostile.py CTL PID: hostile clients against vre-switch's control
socket (switch_ctl.sh hostile runs it while testpmd forwards through the
switch). Each attack checks the answer the switch owes (a JSON-RPC error,
a closed connection, or an answer to a well-behaved client served in the
middle of it) within a bound; at the end the switch process is alive,
answers, and holds as many fds as before. Exits 0 when all held."""

import json
import os
import socket
import sys
import threading
import time

CTL, PID = sys.argv[1], int(sys.argv[2])
STALL_S = 5.0          # CTL_STALL_MS
BOUND_S = STALL_S + 4  # what a stalled client may cost at most, with slack
MAX_REQUEST = 65536


def fail(msg):
    print("ctl_hostile: FAIL:", msg)
    sys.exit(1)


def conn(timeout=10):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(CTL)
    return s


def read_line(s, timeout=10):
    """One answer line, or None when the switch closed the connection."""
    s.settimeout(timeout)
    buf = b""
    while b"\n" not in buf:
        try:
            d = s.recv(65536)
        except ConnectionResetError:
            return None
        if not d:
            return None if not buf else buf
        buf += d
    return json.loads(buf.split(b"\n", 1)[0])


def closed(s, timeout):
    """True when the switch closes s within timeout (data before is read)."""
    s.settimeout(timeout)
    end = time.time() + timeout
    try:
        while time.time() < end:
            if not s.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    return False


def call(method, params=None, rid=1, timeout=10):
    s = conn(timeout)
    req = {"jsonrpc": "2.0", "id": rid, "method": method}
    if params is not None:
        req["params"] = params
    s.sendall(json.dumps(req).encode() + b"\n")
    r = read_line(s, timeout)
    s.close()
    return r


def healthy(what):
    t0 = time.time()
    r = call("version", timeout=5)
    if not r or "result" not in r:
        fail("%s: a well-behaved client got %r" % (what, r))
    return time.time() - t0


def fds():
    return len(os.listdir("/proc/%d/fd" % PID))


def expect_error(raw, code, stays, what):
    s = conn()
    try:
        s.sendall(raw)
    except (BrokenPipeError, ConnectionResetError):
        # the switch refused an oversized request and closed before we
        # finished writing it (how soon depends on scheduling): its answer
        # is still in our receive buffer
        pass
    r = read_line(s)
    if not r or r.get("error", {}).get("code") != code:
        fail("%s: want error %d, got %r" % (what, code, r))
    if stays:
        s.sendall(b'{"jsonrpc": "2.0", "id": 9, "method": "version"}')
        r2 = read_line(s)
        if not r2 or r2.get("id") != 9 or "result" not in r2:
            fail("%s: the connection should stay usable, got %r" % (what, r2))
    elif not closed(s, 5):
        fail("%s: the connection should be closed" % what)
    s.close()
    print("ok %s: error %d (%s)%s" % (what, code, r["error"]["message"][:60],
                                      ", connection kept" if stays else ", closed"))


def main():
    fds0 = fds()
    healthy("start")
    # malformed input: an error, then the connection is closed (a stream
    # cannot be resynchronised after bad JSON)
    expect_error(b'{"jsonrpc": "2.0", "id": 1, "method": }\n', -32700, False, "malformed JSON")
    expect_error(b"hello switch\n", -32700, False, "not JSON at all")
    expect_error(b'{"jsonrpc": "2.0", "id": 1, "method": "versio\xff\xfe"}', -32700, False,
                 "invalid UTF-8")
    expect_error(b"[" * 5000 + b"]" * 5000, -32700, False, "nesting 5000 deep")
    expect_error(b'{"a":' * 3000 + b"1" + b"}" * 3000, -32700, False, "objects 3000 deep")
    # well-formed but wrong: an error, the connection stays
    expect_error(b'{"jsonrpc": "2.0", "id": 1, "method": "port-del", "params": {"port": [1]}}',
                 -32602, True, "wrong parameter type")
    expect_error(b'{"jsonrpc": "2.0", "id": 1, "method": "port-del", "params": [1]}',
                 -32602, True, "positional parameters")
    expect_error(b'{"jsonrpc": "2.0", "id": 1, "method": "no-such"}', -32601, True,
                 "unknown method")
    expect_error(b'[{"jsonrpc": "2.0", "id": 1, "method": "version"}]', -32600, True, "batch")
    expect_error(b'{"id": 1, "method": "version"}', -32600, True, "no jsonrpc member")
    expect_error(b'{"jsonrpc": "2.0", "id": {"x": 1}, "method": "version"}', -32600, True,
                 "object id")
    expect_error(b'{"jsonrpc": "2.0", "id": 1, "method": 7}', -32600, True, "numeric method")
    # a notification gets no answer: the first line is the next request's
    s = conn()
    s.sendall(b'{"jsonrpc": "2.0", "method": "version"}\n{"jsonrpc": "2.0", "id": 5, "method": "version"}\n')
    r = read_line(s)
    if not r or r.get("id") != 5:
        fail("notification: the first answer should be id 5, got %r" % r)
    s.close()
    print("ok notification: no answer")
    # huge requests: refused at 64 KiB, with or without a complete object
    expect_error(b'{"jsonrpc": "2.0", "id": 1, "method": "version", "params": {"x": "' +
                 b"a" * (MAX_REQUEST + 10) + b'"}}', -32600, False, "a 64 KiB+ request")
    expect_error(b'{"x": "' + b"a" * (4 * MAX_REQUEST), -32600, False, "256 KiB, unfinished")
    # a request written a byte at a time (under the stall bound) is served
    s = conn()
    for b in b'{"jsonrpc": "2.0", "id": 3, "method": "version"}':
        s.send(bytes([b]))
        time.sleep(0.01)
    r = read_line(s)
    if not r or r.get("id") != 3:
        fail("byte by byte: got %r" % r)
    s.close()
    print("ok a request written a byte at a time is served")
    # stalls: 30 clients with half a request, 10 that say nothing; a
    # well-behaved client is served meanwhile; all 40 are closed in bound
    stalled = []
    for i in range(30):
        s = conn()
        s.sendall(b'{"jsonrpc": "2.0", "id": 1, "method": "ver')
        stalled.append(s)
    for i in range(10):
        stalled.append(conn())
    t = healthy("during 40 stalled clients")
    print("ok a client was served in %.3f s with 40 stalled clients connected" % t)
    t0 = time.time()
    for s in stalled:
        if not closed(s, max(0.1, BOUND_S - (time.time() - t0))):
            fail("a stalled client was not closed within %.0f s" % BOUND_S)
        s.close()
    print("ok 40 stalled clients closed after %.1f s" % (time.time() - t0))
    # 200 parallel clients: every one gets its answer (at most 64 are
    # served at once; the rest wait in the listen backlog)
    answers, errors = [], []

    def client(i):
        try:
            r = call("port-list" if i % 2 else "version", rid=i, timeout=30)
            if r and r.get("id") == i and "result" in r:
                answers.append(i)
            else:
                errors.append((i, r))
        except OSError as e:
            errors.append((i, str(e)))
    t0 = time.time()
    th = [threading.Thread(target=client, args=(i,)) for i in range(200)]
    for x in th:
        x.start()
    for x in th:
        x.join(40)
    if len(answers) != 200:
        fail("200 parallel clients: %d answered, errors %r" % (len(answers), errors[:3]))
    print("ok 200 parallel clients answered in %.2f s" % (time.time() - t0))
    # a client that sends requests and never reads the answers is dropped
    # (its answers pile up to the output cap, or it stops reading for the
    # stall bound); the switch stays responsive meanwhile
    s = conn()
    s.settimeout(0.5)
    req = b'{"jsonrpc": "2.0", "id": 1, "method": "methods"}\n' * 200
    t0 = time.time()
    dropped = False
    while time.time() - t0 < BOUND_S + 10:
        try:
            s.send(req)
        except socket.timeout:
            pass
        except (BrokenPipeError, ConnectionResetError):
            dropped = True
            break
    if not dropped:
        fail("a client that does not read its answers was not dropped")
    s.close()
    print("ok a client that does not read its answers was dropped after %.1f s" % (time.time() - t0))
    healthy("after the non-reader")
    # and a client that hangs up mid-request, many times over
    for i in range(100):
        s = conn()
        s.sendall(b'{"jsonrpc": "2.0", "id": 1, "method": "port-li')
        s.close()
    healthy("after 100 hang-ups")
    print("ok 100 clients hung up mid-request")
    # the switch holds no more fds than before (every client closed)
    end = time.time() + 10
    while fds() > fds0 and time.time() < end:
        time.sleep(0.1)
    if fds() > fds0:
        fail("the switch holds %d fds, %d before the attacks" % (fds(), fds0))
    print("ok fds back to %d" % fds0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
