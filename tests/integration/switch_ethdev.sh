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
# (one port: what it receives goes back out of it).
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

fail() {
	echo "FAIL: $*"
	echo "--- switch log (tail)"; tail -n 30 "$DIR/sw.log" 2>/dev/null
	exit 1
}

cleanup() {
	if [ -n "$SW_PID" ]; then
		kill -KILL "$SW_PID" 2>/dev/null
		wait "$SW_PID" 2>/dev/null
	fi
	[ -n "${KEEP_DIR:-}" ] && { echo "kept $DIR"; return; }
	rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

wait_for() { # SECONDS FILE REGEX
	local end=$((SECONDS + $1))
	while [ $SECONDS -lt $end ]; do
		grep -qE "$3" "$2" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# start_switch NPORTS ARGS...: ports 0..NPORTS-1 over DIR/inN.pcap, DIR/outN.pcap.
start_switch() {
	local n=$1 eal=() i
	shift
	for i in $(seq 0 $((n - 1))); do
		eal+=(--vdev "net_pcap$i,rx_pcap=$DIR/in$i.pcap,tx_pcap=$DIR/out$i.pcap")
	done
	"$SWITCH" --no-pci --no-huge -m 256 --no-shconf --no-telemetry --log-level=lib.eal:error \
		"${eal[@]}" -- --workers "$SW_CPU" "$@" >"$DIR/sw.log" 2>&1 &
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

[ -x "$SWITCH" ] || { echo "no switch binary at $SWITCH"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }

case $CASE in
xconnect) case_xconnect ;;
learn) case_learn ;;
loopback) case_loopback ;;
*) fail "unknown case $CASE" ;;
esac
