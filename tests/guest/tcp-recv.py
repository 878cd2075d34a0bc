#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The receiving end of tests/guest's tcp job on the host side (run it in
the test's network namespace): accepts one connection on PORT, reads to
EOF, then connects to PEER:5002 so the guest's sender stops its clock, and
prints "bytes SHA256 SECONDS" (from the first byte to EOF). Every wait is
bounded by TIMEOUT seconds.

  tcp-recv.py PORT PEER TIMEOUT
"""
import hashlib
import socket
import sys
import time


def main():
    port, peer, timeout = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    end = time.monotonic() + timeout
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", port))
    srv.listen(1)
    srv.settimeout(timeout)
    conn, _ = srv.accept()
    conn.settimeout(max(1.0, end - time.monotonic()))
    h, n, t0 = hashlib.sha256(), 0, None
    while True:
        b = conn.recv(1 << 16)
        if not b:
            break
        if t0 is None:
            t0 = time.monotonic()
        h.update(b)
        n += len(b)
    t1 = time.monotonic()
    conn.close()
    for _ in range(50):  # the guest's sender listens for this once it wrote all
        try:
            socket.create_connection((peer, 5002), timeout=2).close()
            break
        except OSError:
            time.sleep(0.2)
    print("%d %s %.3f" % (n, h.hexdigest(), t1 - (t0 or t1)), flush=True)


if __name__ == "__main__":
    main()
