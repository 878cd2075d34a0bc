#!/usr/bin/env bash
# Integration: TSO and checksum offload requests from DPDK's virtio PMD
# (testpmd's csum forwarding engine, TSO set on its virtio-user port)
# through vre-switch, every frame checked against the reference
# segmentation of tests/support/gso_ref.py:
#
#   switch_offload.sh SWITCH CASE
#
# testpmd A reads TCP frames (IPv4/IPv6, options, VLAN tags) from a pcap
# file on its own net_pcap port and forwards them with the csum engine to
# its virtio-user port, which has TCP checksum and TSO offloads (MSS 400):
# the PMD hands the switch GSO frames with NEEDS_CSUM. The switch cannot
# pass them on whole, so it segments them and completes the checksums:
#   vhost  toward a second testpmd's virtio-user port without offloads
#          (vhost -> vhost, segments written into its RX chains); that
#          testpmd forwards them untouched (io) to a pcap file
#   eth    toward a net_pcap port of the switch itself (vhost -> ethdev,
#          segments made into mbufs; net_pcap has no TSO)
# The output file must hold exactly the reference's segments of every
# input frame (with the MAC addresses the csum engine wrote), and the
# switch's counters must show the segmentation and no drop.
set -uo pipefail

SWITCH=$1
CASE=$2
TESTPMD=${TESTPMD:-dpdk-testpmd}
HERE=$(cd "$(dirname "$0")" && pwd)
REF="python3 $HERE/../support/gso_ref.py"
SW_CPU=$(($(nproc) - 1))
MSS=400
NFRAMES=200
DIR=$(mktemp -d /tmp/vre-ol.XXXXXX)
SW_PID=
A_PID=
B_PID=
A_FD=

command -v "$TESTPMD" >/dev/null || { echo "SKIP: no $TESTPMD"; exit 77; }

fail() {
	echo "FAIL: $*"
	echo "--- switch log (tail)"; tail -n 30 "$DIR/sw.log" 2>/dev/null
	echo "--- testpmd A (tail)"; tail -n 30 "$DIR/a.log" 2>/dev/null
	echo "--- testpmd B (tail)"; tail -n 15 "$DIR/b.log" 2>/dev/null
	exit 1
}

. "$HERE/../../scripts/lib/proc.sh"

cleanup() {
	[ -n "$A_FD" ] && exec {A_FD}>&- 2>/dev/null
	kill_wait "$A_PID"
	kill_wait "$B_PID"
	kill_wait "$SW_PID"
	[ -n "${KEEP_DIR:-}" ] && { echo "kept $DIR"; return; }
	rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

$REF tcpgen "$DIR/in.pcap" "$NFRAMES" "$MSS" 1448 || fail "cannot write the input"
$REF tcpgen "$DIR/empty.pcap" 0 0 || fail "cannot write an empty capture"

# the switch: xconnect, port 0 = testpmd A's virtio-user, port 1 = B's or a pcap
eal=()
ports=(--vhost "$DIR/a.sock")
case $CASE in
vhost) ports+=(--vhost "$DIR/b.sock") ;;
eth) eal=(--no-pci --no-huge -m 256 --no-shconf --no-telemetry --log-level=lib.eal:error
	--vdev "net_pcap0,rx_pcap=$DIR/empty.pcap,tx_pcap=$DIR/out.pcap" --) ;;
*) echo "unknown case $CASE"; exit 2 ;;
esac
"$SWITCH" "${eal[@]}" --mode xconnect --workers "$SW_CPU" --ctl "$DIR/ctl.sock" "${ports[@]}" \
	--stats-json "$DIR/stats.json" >"$DIR/sw.log" 2>&1 &
SW_PID=$!
wait_for 20 "$DIR/sw.log" '^vre-switch: ready' || fail "switch did not come up"

testpmd() { # testpmd LOG VDEVS... -- APP...: on CPU 0 with its own prefix
	local log=$1
	shift
	local eal=()
	while [ $# -gt 0 ] && [ "$1" != "--" ]; do eal+=("$1"); shift; done
	shift
	# exec: the background job's pid is testpmd's own, so cleanup's
	# kill_wait and the SIGINT below reach testpmd, not a subshell
	# that would leave it running
	exec stdbuf -o0 -e0 "$TESTPMD" --lcores "0@0,1@0" --no-pci --no-huge -m 256 --no-shconf \
		--file-prefix "vre-ol-$$-${log##*/}" "${eal[@]}" -- --nb-cores=1 --total-num-mbufs=8192 \
		--no-lsc-interrupt "$@" >"$log" 2>&1
}

if [ "$CASE" = vhost ]; then
	# B: its virtio-user port (no offloads) -> a pcap file, untouched. Its
	# ring holds 1,024 RX buffers, more than the 568 segments the switch
	# makes of A's 200 frames: B shares CPU 0 with A, and when it does not
	# run while A sends, a 256-entry ring fills and the switch rightly
	# drops the rest (drop-no-rx-buf), which is not what this test checks.
	testpmd "$DIR/b.log" --vdev "net_virtio_user0,path=$DIR/b.sock,queues=1,queue_size=1024,mac=02:00:00:00:00:b0" \
		--vdev "net_pcap1,rx_pcap=$DIR/empty.pcap,tx_pcap=$DIR/out.pcap" -- \
		--forward-mode=io --stats-period 1 --rxd=1024 --txd=1024 &
	B_PID=$!
	wait_for 30 "$DIR/b.log" 'io packet forwarding' || fail "testpmd B did not start"
fi

# A: interactive, commands through a FIFO
mkfifo "$DIR/a.in"
testpmd "$DIR/a.log" --vdev "net_pcap0,rx_pcap=$DIR/in.pcap,tx_pcap=$DIR/a-back.pcap" \
	--vdev "net_virtio_user1,path=$DIR/a.sock,queues=1,mac=02:00:00:00:00:a1" -- \
	-i --forward-mode=csum --eth-peer=1,02:00:00:00:00:b0 --no-flush-rx <"$DIR/a.in" &
A_PID=$!
exec {A_FD}>"$DIR/a.in"
cmd() { echo "$1" >&"$A_FD" || fail "testpmd A is gone ($1)"; }
wait_for 30 "$DIR/a.log" '^testpmd> ' || fail "testpmd A has no prompt"
# TCP checksum and TSO on the virtio-user port: the PMD negotiates CSUM and
# HOST_TSO4/6 with the switch when the port starts again
cmd "port stop 1"
cmd "port config 1 tx_offload tcp_cksum on"
cmd "port config 1 tx_offload tcp_tso on"
cmd "csum set tcp hw 1"
cmd "csum set ip sw 1"
cmd "tso set $MSS 1"
cmd "port start 1"
cmd "show port 1 tx_offload configuration"
wait_for 20 "$DIR/a.log" 'TCP_TSO' || fail "TSO is not configured on port 1"
# now the frames: the pcap port is read once forwarding starts (and not
# flushed before it, --no-flush-rx)
cmd "start"
wait_for 10 "$DIR/a.log" 'csum packet forwarding' || fail "csum forwarding did not start"

# every segment through: the switch's counters say when (SIGUSR1 prints
# them; polled, bounded)
want=$($REF tsocount "$DIR/in.pcap" --mss "$MSS") || fail "reference"
end=$((SECONDS + 30)) rx1=0
while [ "$rx1" -lt "$want" ] && [ $SECONDS -lt $end ]; do
	n=$(grep -c '^now worker 0 ' "$DIR/sw.log")
	kill -USR1 "$SW_PID" || fail "switch gone"
	wait_count 10 "$DIR/sw.log" '^now worker 0 ' $((n + 1)) || fail "no counters on SIGUSR1"
	rx1=$(awk '/^now port 1: / { for (i = 4; i < NF; i++) if ($i == "rx-pkts") v = $(i + 1) } END { print v + 0 }' "$DIR/sw.log")
	[ "$rx1" -ge "$want" ] || sleep 0.2 # poll interval
done
echo "switch delivered $rx1 frames to port 1, the reference makes $want"
cmd "stop"
wait_for 10 "$DIR/a.log" 'Accumulated forward statistics' || fail "testpmd A did not stop"
cmd "quit"
exec {A_FD}>&-
A_FD=
kill_wait "$A_PID"
A_PID=
if [ -n "$B_PID" ]; then
	kill -INT "$B_PID"
	wait_for 20 "$DIR/b.log" 'Bye' || true
	kill_wait "$B_PID"
	B_PID=
fi
kill -INT "$SW_PID"
wait_for 20 "$DIR/sw.log" '^final worker' || fail "switch did not stop"
kill_wait "$SW_PID"
SW_PID=

grep -E '^final (offloads )?port' "$DIR/sw.log"
$REF tso "$DIR/in.pcap" "$DIR/out.pcap" --mss "$MSS" --src 02:00:00:00:00:a1 \
	--dst 02:00:00:00:00:b0 || fail "the frames differ from the reference"
python3 - "$DIR/stats.json" "$NFRAMES" <<'EOF' || fail "counters"
import json, sys
ports = json.load(open(sys.argv[1]))["ports"]
o = ports[0]["offload"]
n = int(sys.argv[2])
assert ports[0]["drops"] == 0 and ports[1]["drops"] == 0, "drops"
# every frame asks for the TCP checksum; the PMD makes a GSO frame of
# each one longer than headers + MSS (testpmd's csum engine leaves a
# frame of exactly the MSS a plain NEEDS_CSUM one)
assert o["csum_in"] == n, "checksum requests taken: %d" % o["csum_in"]
segs = o["sw_segs"] + ports[1]["offload"]["sw_segs"]
gsos = o["sw_gso"] + ports[1]["offload"]["sw_gso"]
csums = o["sw_csum"] + ports[1]["offload"]["sw_csum"]
assert gsos == o["gso_in"] and gsos >= n * 9 // 10, "segmented %d of %d GSO frames" % (gsos, o["gso_in"])
assert gsos + csums == n, "finished in software: %d GSO + %d checksums of %d" % (gsos, csums, n)
print("the switch segmented %d GSO frames into %d and completed %d checksums" % (gsos, segs, csums))
EOF
echo "PASS: offload $CASE"
