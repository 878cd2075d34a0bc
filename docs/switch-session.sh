#!/usr/bin/env bash
# Regenerates docs/switch-session.txt, a real vre-switch session:
#
#   docs/switch-session.sh [BUILD_DIR] [OUT]    (defaults: build, docs/switch-session.txt)
#
# The switch starts with no ports and its control socket at the default
# path (/run/vre/switch.sock, so vre-ctl needs no --ctl); vre-ctl adds two
# vhost ports and a TAP port (net_tap, hot-plugged); two QEMU guests (the
# test guest of tests/guest, TCG) attach to the vhost ports and ping each
# other; then port-list, stats, fdb-show, a port-del while its guest is
# still up, port-list again. Every command is printed as "$ command" with
# its real output. Needs root (the TAP device), QEMU and the guest image
# (tests/guest/make-guest); it starts QEMU, so on a shared machine run it
# under the heavy lock. Every wait is bounded; every process started here
# is stopped on exit.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
out=${2:-$root/docs/switch-session.txt}
cache=$build/tests/guest/guest-cache
run=/run/vre
tap=vre-sess0
dir=$(mktemp -d /tmp/vre-session.XXXXXX)
sw_pid="" g1="" g2=""

cleanup() {
	for p in $g1 $g2; do kill -TERM "$p" 2>/dev/null; done
	for p in $g1 $g2; do wait "$p" 2>/dev/null; done
	if [ -n "$sw_pid" ]; then
		kill -TERM "$sw_pid" 2>/dev/null
		for _ in $(seq 100); do kill -0 "$sw_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$sw_pid" 2>/dev/null
		wait "$sw_pid" 2>/dev/null
	fi
	rm -f "$run/vm1.sock" "$run/vm2.sock"
	[ -n "${KEEP_DIR:-}" ] && { echo "kept $dir" >&2; return; }
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
die() { echo "switch-session: $*" >&2; exit 1; }

command -v qemu-system-x86_64 >/dev/null || die "no qemu-system-x86_64"
"$root/tests/guest/make-guest" "$cache" >/dev/null || die "make-guest failed"
export PATH=$build/examples:$PATH
mkdir -p "$run"
if [ -S "$run/switch.sock" ] && vre-ctl --timeout 2 version >/dev/null 2>&1; then
	die "a switch already listens on $run/switch.sock"
fi

# wait_for SECONDS FILE REGEX
wait_for() {
	local end=$((SECONDS + $1))
	while [ $SECONDS -lt "$end" ]; do
		grep -qE "$3" "$2" 2>/dev/null && return 0
		sleep 0.2
	done
	return 1
}

: >"$out.tmp"
say() { printf '%s\n' "$*" >>"$out.tmp"; }
# show COMMAND...: prints "$ COMMAND" and runs it, output into the session.
show() {
	say "\$ $*"
	"$@" >>"$out.tmp" 2>&1 || die "'$*' failed: $(tail -n 3 "$out.tmp")"
	say ""
}

# guest N IP PEER: a test guest on /run/vre/vmN.sock that pings PEER.
guest() {
	timeout 120 qemu-system-x86_64 -machine pc -accel tcg -smp 1 -m 256M \
		-object memory-backend-memfd,id=mem,size=256M,share=on -numa node,memdev=mem \
		-nodefaults -no-user-config -display none -no-reboot -monitor none \
		-serial "file:$dir/guest$1.log" \
		-kernel "$cache/vmlinuz" -initrd "$cache/initramfs.cpio.gz" \
		-append "console=ttyS0 panic=-1 quiet vre.job=ping vre.ip=$2/24 vre.peer=$3 vre.count=3" \
		-chardev "socket,id=c0,path=$run/vm$1.sock,reconnect=1" \
		-netdev vhost-user,id=n0,chardev=c0,queues=1 \
		-device "virtio-net-pci,netdev=n0,mac=52:54:00:00:00:0$1,packed=off,vectors=0" \
		>"$dir/qemu$1.log" 2>&1 &
}

say "# A vre-switch session, captured by docs/switch-session.sh on $(date -u '+%Y-%m-%d')"
say "# ($(uname -sr), $(nproc) CPUs; vre-switch $(vre-switch --version | cut -d' ' -f2))."
say "# Two QEMU guests (vm1 10.99.0.1, vm2 10.99.0.2) ping each other through"
say "# the switch; the TAP port's host side is $tap."
say ""
say "\$ vre-switch &          # learn mode, no ports, control socket $run/switch.sock"
vre-switch >"$dir/sw.log" 2>&1 &
sw_pid=$!
wait_for 20 "$dir/sw.log" '^vre-switch: ready' || die "the switch did not come up: $(tail -n 5 "$dir/sw.log")"
grep -vE '^(stats|EAL|TELEMETRY)' "$dir/sw.log" >>"$out.tmp"
say ""
show vre-ctl version
show vre-ctl port-list
show vre-ctl port-add vhost "$run/vm1.sock" name=vm1
show vre-ctl port-add vhost "$run/vm2.sock" name=vm2
show vre-ctl port-add ethdev "net_tap0,iface=$tap" name=tap0
ip link set "$tap" up 2>/dev/null
say "\$ qemu-system-x86_64 ... -chardev socket,id=c0,path=$run/vm1.sock,reconnect=1 \\"
say "    -netdev vhost-user,id=n0,chardev=c0 -device virtio-net-pci,netdev=n0,mac=52:54:00:00:00:01 ... &"
say "\$ qemu-system-x86_64 ... -chardev socket,id=c0,path=$run/vm2.sock,reconnect=1 \\"
say "    -netdev vhost-user,id=n0,chardev=c0 -device virtio-net-pci,netdev=n0,mac=52:54:00:00:00:02 ... &"
guest 1 10.99.0.1 10.99.0.2
g1=$!
guest 2 10.99.0.2 10.99.0.1
g2=$!
wait_for 90 "$dir/guest1.log" 'VRE_PING_(OK|FAIL)' && wait_for 30 "$dir/guest2.log" 'VRE_PING_(OK|FAIL)' ||
	die "the guests did not finish pinging: $(tail -n 3 "$dir/guest1.log" "$dir/guest2.log")"
grep -q VRE_PING_OK "$dir/guest1.log" && grep -q VRE_PING_OK "$dir/guest2.log" ||
	die "a guest's ping failed: $(tail -n 5 "$dir/guest1.log" "$dir/guest2.log")"
say "(vm1 console: $(grep -m1 'packets transmitted' "$dir/guest1.log"))"
say "(vm2 console: $(grep -m1 'packets transmitted' "$dir/guest2.log"))"
say ""
show vre-ctl port-list
show vre-ctl port-show vm1
show vre-ctl stats
show vre-ctl fdb-show
show vre-ctl worker-list
show vre-ctl port-del vm2
show vre-ctl port-list
say "\$ kill -TERM %1          # the switch"
kill -TERM "$sw_pid"
wait "$sw_pid"
rc=$?
sw_pid=""
[ "$rc" -eq 0 ] || die "the switch exited $rc"
say "(exit $rc)"
mv "$out.tmp" "$out"
echo "wrote $out"
