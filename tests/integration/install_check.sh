#!/usr/bin/env bash
# Integration: what `meson install` puts down, and the systemd unit.
#
#   install_check.sh BUILD_DIR
#
# Installs BUILD_DIR into a fresh --destdir and checks that the tree holds
# vre-switch, vre-ctl and vre-blk (each answers --version), their man pages
# (each formats with groff, no warning), vre-switch.service (Type=notify)
# and the configuration file it reads. Then starts the switch as the unit's
# ExecStart says (paths moved into the destdir, the control socket into
# the temp dir, a vhost port added to the installed config) under a fake
# NOTIFY_SOCKET (a datagram socket this test binds), and checks that
# READY=1 comes, and only once the control socket and the configured port
# are up; vre-ctl sees the port; SIGTERM brings STOPPING=1 and exit 0.
set -uo pipefail

BUILD=$(cd "$1" && pwd)
DIR=$(mktemp -d /tmp/vre-install.XXXXXX)
ROOT=$DIR/root
SW_PID=
cleanup() {
	[ -n "$SW_PID" ] && { kill -9 "$SW_PID" 2>/dev/null; wait "$SW_PID" 2>/dev/null; }
	[ -n "${KEEP_DIR:-}" ] && { echo "kept $DIR"; return; }
	rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
fail() { echo "FAIL: $*"; exit 1; }

meson install -C "$BUILD" --destdir "$ROOT" --no-rebuild --quiet >"$DIR/install.log" 2>&1 ||
	fail "meson install: $(tail -n 5 "$DIR/install.log")"
find1() { find "$ROOT" -path "*/$1" | head -n 1; }
for b in vre-switch vre-ctl vre-blk; do
	f=$(find1 "bin/$b")
	[ -n "$f" ] && [ -x "$f" ] || fail "no executable bin/$b in the tree"
	"$f" --version | grep -qE "^$b [0-9]+\.[0-9]+\.[0-9]+$" || fail "$b --version: $("$f" --version)"
	m=$(find1 "man8/$b.8")
	[ -n "$m" ] || fail "no man page $b.8"
	[ -z "$(groff -man -Tutf8 -ww -z "$m" 2>&1)" ] || fail "$b.8: $(groff -man -Tutf8 -ww -z "$m" 2>&1)"
	grep -q '@[A-Z]*@' "$m" && fail "$b.8 has an unsubstituted @VAR@"
	echo "ok: ${f#$ROOT} ($("$f" --version)), ${m#$ROOT}"
done
UNIT=$(find1 "systemd/system/vre-switch.service")
CONF=$(find1 "vre/vre-switch.conf")
[ -n "$UNIT" ] || fail "no vre-switch.service in the tree"
[ -n "$CONF" ] || fail "no vre/vre-switch.conf in the tree"
echo "ok: ${UNIT#$ROOT}, ${CONF#$ROOT}"
grep -q '^Type=notify$' "$UNIT" || fail "the unit is not Type=notify"
if command -v systemd-analyze >/dev/null; then
	# the unit's syntax as systemd reads it (paths outside the destdir)
	systemd-analyze verify --man=no "$UNIT" 2>&1 | grep -vE 'Command .* is not executable|not executable: No such file|Failed to .*(prepare filename|unit file)|No such file or directory' |
		grep -E 'Unknown|Invalid|invalid|Failed' && fail "systemd-analyze verify: see above"
fi

# ExecStart as the unit says, its absolute paths moved into the destdir
exec_line=$(sed -n 's/^ExecStart=//p' "$UNIT")
[ -n "$exec_line" ] || fail "no ExecStart"
read -ra argv <<<"$exec_line"
cp "$CONF" "$DIR/vre-switch.conf"
printf 'vhost %s/vm0.sock,name=vm0\nworkers %s\n' "$DIR" "$(($(nproc) - 1))" >>"$DIR/vre-switch.conf"
cmd=()
for a in "${argv[@]}"; do
	case $a in
	*/bin/vre-switch) cmd+=("$ROOT$a") ;;
	*/vre/vre-switch.conf) cmd+=("$DIR/vre-switch.conf") ;;
	/run/vre/switch.sock) cmd+=("$DIR/ctl.sock") ;;
	*) cmd+=("$a") ;;
	esac
done
echo "ExecStart: $exec_line"
echo "run as:    ${cmd[*]}"
python3 - "$DIR" "${cmd[@]}" <<'PY' || fail "systemd notify protocol"
import os, signal, socket, subprocess, sys, time
d, cmd = sys.argv[1], sys.argv[2:]
path = os.path.join(d, "notify.sock")
ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
ns.bind(path)
ns.settimeout(30)
env = dict(os.environ, NOTIFY_SOCKET=path)
log = open(os.path.join(d, "sw.log"), "w")
p = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
msgs = []
try:
    while not any(m.startswith("READY=1") for m in msgs):
        m = ns.recv(4096).decode()
        # when READY=1 comes, the control socket and the port are up
        if "READY=1" in m:
            for f in ("ctl.sock", "vm0.sock"):
                assert os.path.exists(os.path.join(d, f)), "READY=1 before %s existed" % f
        msgs += m.split("\n")
    print("notify:", [m for m in msgs if m])
    ctl = [c for c in cmd[:1]][0].replace("vre-switch", "vre-ctl")
    out = subprocess.run([ctl, "--ctl", os.path.join(d, "ctl.sock"), "--json", "port-list"],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 0 and '"vm0"' in out.stdout, out
    print("vre-ctl port-list after READY=1: vm0 is there")
    p.send_signal(signal.SIGTERM)
    while True:
        m = ns.recv(4096).decode()
        if "STOPPING=1" in m:
            print("notify:", m.strip())
            break
    rc = p.wait(timeout=30)
    assert rc == 0, "exit %d" % rc
    print("exit 0 after SIGTERM")
finally:
    if p.poll() is None:
        p.kill()
        p.wait()
PY
[ -z "$(find "$DIR" -maxdepth 1 -type s ! -name notify.sock)" ] || fail "sockets left: $(find "$DIR" -maxdepth 1 -type s)"
echo "PASS: install"
