#!/usr/bin/env bash
# Integration: vre-switch between DPDK ethdev ports only (no guest), with
# net_pcap ports whose input and output are files:
#
#   switch_ethdev.sh SWITCH CASE
#
# Every port is --vdev net_pcapN,rx_pcap=inN.pcap,tx_pcap=outN.pcap: the
# switch reads inN as what port N receives and writes what it sends to
# port N into outN. pcaptool.py writes the inputs (numbered, tagged frames
# of varied sizes) and checks the outputs byte for byte.
#
# CASE: "xconnect" (four ports, 0<->1 and 2<->3), "learn" (three ports:
# broadcast, multicast and unknown unicast flood to every other port and
# never back; unicast to a learned MAC reaches only its port), "loopback"
# (one port: what it receives goes back out of it), "idle:POLL" (idle
# ports let the worker sleep under --poll POLL, and a net_tap wakes it).
#
# Runs in its own temp dir (kept when KEEP_DIR is set); every wait is
# bounded; the switch is killed and reaped on every exit path.
set -uo pipefail

SWITCH=$1
CASE=$2
HERE=$(cd "$(dirname "$0")" && pwd)
PCAP="python3 $HERE/pcaptool.py"
SW_CPU=$(($(nproc) - 1))
DIR=$(mktemp -d /tmp/vre-eth.XXXXXX)
SW_PID=
NS=
export PCAPDIR=$HERE

fail() {
	echo "FAIL: $*"
	echo "--- switch log (tail)"; tail -n 30 "$DIR/sw.log" 2>/dev/null
	exit 1
}

. "$(dirname "$0")/../../scripts/lib/proc.sh"

cleanup() {
	if [ -n "$SW_PID" ]; then
		kill -KILL "$SW_PID" 2>/dev/null
		wait "$SW_PID" 2>/dev/null
	fi
	[ -z "$NS" ] || ip netns del "$NS"
	[ -n "${KEEP_DIR:-}" ] && { echo "kept $DIR"; return; }
	rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# start_switch NPORTS ARGS...: ports 0..NPORTS-1 over DIR/inN.pcap, DIR/outN.pcap.
start_switch() {
	local n=$1 eal=() i
	shift
	for i in $(seq 0 $((n - 1))); do
		eal+=(--vdev "net_pcap$i,rx_pcap=$DIR/in$i.pcap,tx_pcap=$DIR/out$i.pcap")
	done
	"$SWITCH" --no-pci --no-huge -m 256 --no-shconf --no-telemetry --log-level=lib.eal:error \
		"${eal[@]}" -- --workers "$SW_CPU" --ctl "$DIR/ctl.sock" "$@" >"$DIR/sw.log" 2>&1 &
	SW_PID=$!
	wait_for 20 "$DIR/sw.log" '^vre-switch: ready' || fail "switch did not come up"
	grep -q "ready: $n port(s) (0 vhost, $n ethdev)" "$DIR/sw.log" || fail "ready line"
}

# now_total FIELD: FIELD summed over the ports, from a fresh SIGUSR1 table.
now_total() {
	local n
	n=$(grep -c '^now worker 0 ' "$DIR/sw.log")
	kill -USR1 "$SW_PID" || fail "switch gone"
	local end=$((SECONDS + 10))
	while [ "$(grep -c '^now worker 0 ' "$DIR/sw.log")" -le "$n" ]; do
		[ $SECONDS -lt $end ] || fail "no table on SIGUSR1"
		sleep 0.05
	done
	awk -v f="$1" '/^now port 0: / { s = 0 } /^now port / {
		for (i = 4; i < NF; i++) if ($i == f) s += $(i + 1) }
		END { printf "%.0f\n", s }' "$DIR/sw.log"
}

# wait_delivered N: until the switch delivered N frames in all (the
# inputs are files: they are read in at once), then stops it.
wait_delivered() {
	local end=$((SECONDS + 15)) got
	while got=$(now_total rx-pkts); [ "$got" -lt "$1" ]; do
		[ $SECONDS -lt $end ] || fail "delivered $got of $1 frames"
		sleep 0.1
	done
	kill -INT "$SW_PID"
	wait_for 20 "$DIR/sw.log" '^final worker' || fail "switch did not stop on SIGINT"
	wait "$SW_PID" || fail "switch exit code $?"
	SW_PID=
	[ "$got" -eq "$1" ] || fail "delivered $got frames, want $1"
	[ "$(awk '/^final port/ { for (i = 4; i < NF; i++) if ($i == "drops") s += $(i + 1) }
		END { print s + 0 }' "$DIR/sw.log")" -eq 0 ] ||
		fail "drops: $(grep '^final port' "$DIR/sw.log")"
}

A=02:00:00:00:00:0a
B=02:00:00:00:00:0b
C=02:00:00:00:00:0c
D=02:00:00:00:00:0d
BC=ff:ff:ff:ff:ff:ff
MC=01:00:5e:00:00:01

# 0<->1 and 2<->3, both directions, different amounts each way.
case_xconnect() {
	$PCAP gen "$DIR/in0.pcap" "$B,$A,a,100"
	$PCAP gen "$DIR/in1.pcap" "$A,$B,b,40" "$BC,$B,c,3"
	$PCAP gen "$DIR/in2.pcap" "$D,$C,d,70"
	$PCAP gen "$DIR/in3.pcap"
	start_switch 4 --mode xconnect
	wait_delivered 213
	$PCAP expect "$DIR/out1.pcap" "$DIR/in0.pcap:a" || fail "port 1"
	$PCAP expect "$DIR/out0.pcap" "$DIR/in1.pcap:bc" || fail "port 0"
	$PCAP expect "$DIR/out3.pcap" "$DIR/in2.pcap:d" || fail "port 3"
	$PCAP expect "$DIR/out2.pcap" || fail "port 2 got frames"
	echo "PASS: xconnect"
}

# Learn mode over three ports. Order matters for learning and is fixed by
# the switch itself: one worker polls the ethdev ports in port order, and
# each input (fewer than 32 frames) is read in one burst, so port 0's
# frames (teaching A) are switched before port 1's, and port 1's
# (teaching B) before port 2's.
case_learn() {
	# port 0: broadcast, multicast, unknown unicast (D never sends), and
	# a frame to itself (A: learned on port 0 by the frames before it)
	$PCAP gen "$DIR/in0.pcap" "$BC,$A,a,5" "$MC,$A,m,4" "$D,$A,u,6" "$A,$A,h,2"
	# port 1: to A (learned on port 0) only
	$PCAP gen "$DIR/in1.pcap" "$A,$B,b,7"
	# port 2: to B (learned on port 1) only, then a broadcast
	$PCAP gen "$DIR/in2.pcap" "$B,$C,c,8" "$BC,$C,e,3"
	start_switch 3 --mode learn
	# 15 flooded twice, 7 + 8 unicast, 3 flooded twice
	wait_delivered $((15 * 2 + 7 + 8 + 3 * 2))
	$PCAP expect "$DIR/out0.pcap" "$DIR/in1.pcap:b" "$DIR/in2.pcap:e" || fail "port 0"
	$PCAP expect "$DIR/out1.pcap" "$DIR/in0.pcap:amu" "$DIR/in2.pcap:ce" || fail "port 1"
	$PCAP expect "$DIR/out2.pcap" "$DIR/in0.pcap:amu" || fail "port 2"
	grep '^final fdb:' "$DIR/sw.log" | grep -q ' 3 MAC' || fail "want 3 MACs learned: $(grep fdb "$DIR/sw.log")"
	echo "PASS: learn"
}

case_loopback() {
	$PCAP gen "$DIR/in0.pcap" "$B,$A,a,50" "$BC,$A,b,5"
	start_switch 1 --mode loopback
	wait_delivered 55
	$PCAP expect "$DIR/out0.pcap" "$DIR/in0.pcap:ab" || fail "port 0"
	echo "PASS: loopback"
}

# CPU time (utime + stime, clock ticks) of thread TID of PID.
thread_ticks() {
	awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/task/$2/stat"
}

# now_worker FIELD: worker 0's FIELD from a fresh SIGUSR1 table.
now_worker() {
	now_total rx-pkts >/dev/null
	grep '^now worker 0 ' "$DIR/sw.log" | tail -n 1 |
		awk -v f="$1" '{ for (i = 4; i < NF; i++) if ($i == f) print $(i + 1) }'
}

# Idle ethdev ports let the worker sleep (POLL: adaptive or interrupt).
# Port 0 is a net_tap (RX interrupts: the worker sleeps on its fd), port 1
# a net_pcap with an empty input (no interrupts: the worker naps). Idle,
# the worker uses little CPU and sleeps; then frames sent into the tap
# (ARP requests from its side) wake it and are flooded to port 1's file.
# The tap lives in a namespace of its own (the switch runs there); without
# root or ip netns only the net_pcap part runs.
case_idle() {
	local poll=$1 ns= tap=vretap$$ pre=() eal=()
	$PCAP gen "$DIR/in1.pcap"
	if [ "$(id -u)" = 0 ] && command -v ip >/dev/null && ip netns add "vre-eth-$$" 2>/dev/null; then
		ns=vre-eth-$$
		NS=$ns
		pre=(ip netns exec "$ns")
		eal=(--vdev "net_tap0,iface=$tap")
	else
		echo "no network namespace (needs root): net_pcap part only"
	fi
	eal+=(--vdev "net_pcap0,rx_pcap=$DIR/in1.pcap,tx_pcap=$DIR/out1.pcap")
	"${pre[@]}" "$SWITCH" --no-pci --no-huge -m 256 --no-shconf --no-telemetry \
		--log-level=lib.eal:error "${eal[@]}" -- --workers "$SW_CPU" --poll "$poll" --ctl "$DIR/ctl.sock" \
		>"$DIR/sw.log" 2>&1 &
	SW_PID=$!
	wait_for 20 "$DIR/sw.log" '^vre-switch: ready' || fail "switch did not come up"
	grep -q 'net_pcap0) started, .*, rx polled' "$DIR/sw.log" || fail "net_pcap: want rx polled"
	[ -z "$ns" ] || grep -q 'net_tap0) started, .*, rx interrupts' "$DIR/sw.log" ||
		fail "net_tap: want rx interrupts"
	local tid= t
	for t in /proc/"$SW_PID"/task/*; do
		[ "$(cat "$t/comm")" = "vre-w$SW_CPU" ] && tid=${t##*/}
	done
	[ -n "$tid" ] || fail "no worker thread vre-w$SW_CPU"
	sleep 0.5 # let start-up traffic (the tap's own IPv6 chatter) pass: not synchronisation
	local hz t0 t1 pct s0 s1
	hz=$(getconf CLK_TCK)
	s0=$(now_worker sleeps)
	t0=$(thread_ticks "$SW_PID" "$tid")
	sleep 3 # the measured idle period
	t1=$(thread_ticks "$SW_PID" "$tid")
	s1=$(now_worker sleeps)
	pct=$(((t1 - t0) * 100 * 100 / (3 * hz)))
	echo "idle worker ($poll): $((s1 - s0)) sleeps, $((t1 - t0)) ticks in 3 s = $((pct / 100)).$((pct % 100))% of a core"
	[ "$pct" -lt 1500 ] || fail "idle worker used $((pct / 100))% of a core"
	# naps of at most 1 ms: hundreds a second (a 200 ms bound would give 15)
	[ $((s1 - s0)) -gt 300 ] || fail "the worker slept only $((s1 - s0)) times"
	if [ -n "$ns" ]; then
		local w0 in0 out1
		ip -n "$ns" addr add 10.97.0.1/24 dev "$tap" && ip -n "$ns" link set "$tap" up ||
			fail "cannot set up $tap"
		w0=$(now_worker wakeups)
		in0=$(now_total tx-pkts)
		# nobody answers: the kernel sends ARP requests for 10.97.0.2
		ip netns exec "$ns" python3 - <<'PY' || fail "cannot send into the tap"
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(3):
    s.sendto(b"x", ("10.97.0.2", 9))
    time.sleep(1.1)
PY
		local end=$((SECONDS + 10))
		while [ "$(now_total tx-pkts)" -le "$in0" ]; do
			[ $SECONDS -lt $end ] || fail "nothing came out of the tap"
			sleep 0.1
		done
		[ "$(now_worker wakeups)" -gt "$w0" ] || fail "the tap's frames did not wake the worker"
	fi
	kill -INT "$SW_PID"
	wait_for 20 "$DIR/sw.log" '^final worker' || fail "switch did not stop on SIGINT"
	wait "$SW_PID" || fail "switch exit code $?"
	SW_PID=
	if [ -n "$ns" ]; then
		# every frame out of the tap went to port 1, and the ARP requests
		# for 10.97.0.2 are among them
		local from_tap into_pcap
		from_tap=$(awk '/^final port 0:/ { for (i = 4; i < NF; i++) if ($i == "tx-pkts") print $(i + 1) }' "$DIR/sw.log")
		into_pcap=$(awk '/^final port 1:/ { for (i = 4; i < NF; i++) if ($i == "rx-pkts") print $(i + 1) }' "$DIR/sw.log")
		[ "$from_tap" -gt 0 ] && [ "$from_tap" -eq "$into_pcap" ] ||
			fail "out of the tap $from_tap, into port 1 $into_pcap"
		python3 - "$DIR/out1.pcap" "$into_pcap" <<'PY' || fail "port 1's file"
import sys
sys.path.insert(0, "%s" % __import__("os").environ["PCAPDIR"])
import pcaptool
fr = pcaptool.read(sys.argv[1])
assert len(fr) == int(sys.argv[2]), (len(fr), sys.argv[2])
arp = [f for f in fr if f[12:14] == b"\x08\x06" and f[38:42] == bytes([10, 97, 0, 2])]
assert len(arp) >= 2, "%d ARP requests for 10.97.0.2" % len(arp)
print("port 1 got %d frames from the tap, %d of them ARP requests for 10.97.0.2" % (len(fr), len(arp)))
PY
	fi
	echo "PASS: idle ($poll)"
}

[ -x "$SWITCH" ] || { echo "no switch binary at $SWITCH"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }

case $CASE in
xconnect) case_xconnect ;;
learn) case_learn ;;
loopback) case_loopback ;;
idle:*) case_idle "${CASE#idle:}" ;;
*) fail "unknown case $CASE" ;;
esac
