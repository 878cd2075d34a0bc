#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""A minimal QMP client for the migration tests (QEMU's JSON monitor on a
unix socket). Every wait is bounded.

  qmp.py SOCK cmd NAME [JSON-ARGS]      run one command, print its return
  qmp.py SOCK migrate URI [TIMEOUT]     raise the bandwidth cap, migrate,
                                        wait for 'completed'; prints
                                        'MIGRATED total_ms=N downtime_ms=N'
  qmp.py SOCK wait-status STATUS [TIMEOUT]   until query-status says STATUS
Exit 1 with a reason on stderr on failure or timeout.
"""
import json
import socket
import sys
import time


class Qmp:
    def __init__(self, path, timeout=10.0):
        end = time.monotonic() + timeout
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.s.settimeout(timeout)
                self.s.connect(path)
                break
            except OSError:
                self.s.close()
                if time.monotonic() > end:
                    raise
                time.sleep(0.05)
        self.f = self.s.makefile("rw")
        self.read()  # greeting
        self.cmd("qmp_capabilities")

    def read(self):
        while True:
            line = self.f.readline()
            if not line:
                raise RuntimeError("QMP connection closed")
            msg = json.loads(line)
            if "event" in msg:
                continue
            return msg

    def cmd(self, name, **args):
        req = {"execute": name}
        if args:
            req["arguments"] = args
        self.f.write(json.dumps(req) + "\n")
        self.f.flush()
        msg = self.read()
        if "error" in msg:
            raise RuntimeError("%s: %s" % (name, msg["error"].get("desc")))
        return msg.get("return")


def main():
    sock, what = sys.argv[1], sys.argv[2]
    q = Qmp(sock)
    if what == "cmd":
        args = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
        print(json.dumps(q.cmd(sys.argv[3], **args)))
        return 0
    if what == "wait-status":
        want, timeout = sys.argv[3], float(sys.argv[4]) if len(sys.argv) > 4 else 30
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if q.cmd("query-status")["status"] == want:
                return 0
            time.sleep(0.05)
        print("qmp: status never became %s" % want, file=sys.stderr)
        return 1
    if what == "migrate":
        uri, timeout = sys.argv[3], float(sys.argv[4]) if len(sys.argv) > 4 else 90
        # QEMU 7.2's default cap is 32 MiB/s: 256 MiB would take 8 s
        q.cmd("migrate-set-parameters", **{"max-bandwidth": 4 << 30})
        q.cmd("migrate", uri=uri)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            st = q.cmd("query-migrate")
            status = st.get("status")
            if status == "completed":
                print("MIGRATED total_ms=%s downtime_ms=%s" %
                      (st.get("total-time"), st.get("downtime")))
                return 0
            if status in ("failed", "cancelled"):
                print("qmp: migration %s: %s" % (status, st.get("error-desc")),
                      file=sys.stderr)
                return 1
            time.sleep(0.02)
        print("qmp: migration did not complete in %.0f s" % timeout, file=sys.stderr)
        return 1
    print("qmp: unknown action %s" % what, file=sys.stderr)
    return 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, RuntimeError, ValueError) as e:
        print("qmp: %s" % e, file=sys.stderr)
        sys.exit(1)
