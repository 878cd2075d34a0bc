#!/usr/bin/env bash
# vre-switch demo: two vhost-user ports bridged by the switch (MAC
# learning), dpdk-testpmd with two virtio-user ports as the traffic source
# and sink.
#
# testpmd runs mac forwarding in a ring: port 0 -> switch -> port 1 ->
# testpmd -> port 1 -> switch -> port 0 -> testpmd -> ..., seeded with
# "start tx_first N". Every second it is asked for "show port stats all"
# (through a FIFO) and the rates are printed; at the end a summary with
# Mpps and Gbit/s per direction and the drops on both sides.
#
# Environment: DEMO_SECS (20), DEMO_SIZE (frame bytes, 64), DEMO_MODE
# (learn or xconnect), DEMO_BURSTS
# (tx_first bursts of 32 per port seeding the ring, 4: half a 256-entry ring), SWITCH (build/examples/vre-switch).
# Runs as root (hugepages for testpmd's shared memory).
set -uo pipefail
cd "$(dirname "$0")/.."

SWITCH=${SWITCH:-build/examples/vre-switch}
SECS=${DEMO_SECS:-20}
SIZE=${DEMO_SIZE:-64}
BURSTS=${DEMO_BURSTS:-4}
NCPU=$(nproc)
SW_CPU=$((NCPU - 1))   # the switch worker
TP_CPU=0               # testpmd's main and forwarding lcores

DIR=$(mktemp -d /tmp/vre-demo.XXXXXX)
SW_PID= TP_PID= TP_FD=

. scripts/lib/proc.sh

cleanup() {
	[ -n "$TP_FD" ] && exec {TP_FD}>&- 2>/dev/null
	kill_wait "$TP_PID"
	kill_wait "$SW_PID"
	rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
	echo "demo: $*" >&2
	echo "--- switch log"; tail -n 20 "$DIR/sw.log" 2>/dev/null
	echo "--- testpmd log"; tail -n 20 "$DIR/tp.log" 2>/dev/null
	exit 1
}

[ -x "$SWITCH" ] || die "no switch at $SWITCH (build first)"
command -v dpdk-testpmd >/dev/null || die "dpdk-testpmd is not installed"

# learn mode: the switch bridges by MAC address (DEMO_MODE=xconnect pairs
# the ports without looking at the frames)
MODE=${DEMO_MODE:-learn}
echo "demo: vre-switch, $MODE mode over 2 vhost-user ports, worker on CPU $SW_CPU, adaptive polling"
"$SWITCH" --mode "$MODE" --workers "$SW_CPU" --poll adaptive --ctl "$DIR/ctl.sock" \
	--vhost "$DIR/s0" --vhost "$DIR/s1" >"$DIR/sw.log" 2>&1 &
SW_PID=$!
wait_for 20 "$DIR/sw.log" '^vre-switch: ready' || die "the switch did not start"

app=(--txpkts="$SIZE")
if [ "$SIZE" -gt 1518 ]; then
	app=(--max-pkt-len=9600 --mbuf-size=10240 --txpkts="$SIZE")
fi
mkfifo "$DIR/tp.in"
# mac forwarding: each frame leaves with its port's MAC as source and the
# other port's as destination, so the switch learns both and forwards
# unicast.
MAC0=02:00:00:00:00:10 MAC1=02:00:00:00:00:11
echo "demo: dpdk-testpmd, 2 virtio-user ports, mac forwarding on CPU $TP_CPU, $SIZE-byte frames"
stdbuf -o0 -e0 dpdk-testpmd --lcores "0@$TP_CPU,1@$TP_CPU" --no-pci --in-memory \
	--single-file-segments \
	--vdev="net_virtio_user0,path=$DIR/s0,queues=1,mac=$MAC0" \
	--vdev="net_virtio_user1,path=$DIR/s1,queues=1,mac=$MAC1" \
	-- -i --nb-cores=1 --no-lsc-interrupt --forward-mode=mac --total-num-mbufs=16384 \
	--eth-peer=0,$MAC1 --eth-peer=1,$MAC0 \
	"${app[@]}" <"$DIR/tp.in" >"$DIR/tp.log" 2>&1 &
TP_PID=$!
exec {TP_FD}>"$DIR/tp.in"
wait_for 30 "$DIR/tp.log" '^testpmd> ' || die "testpmd did not start"

calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
cmd() { echo "$1" >&"$TP_FD" || die "testpmd went away"; }

# rates LOGFILE FROMLINE: Rx-pps, Tx-pps, Rx-bps, Tx-bps of both ports in
# the first complete "show port stats all" after line FROMLINE.
rates() {
	tail -n +"$2" "$1" | awk '
		/NIC statistics for port/ { p = $(NF - 1) }
		/Rx-pps:/ { rpps[p] = $2; rbps[p] = $4 }
		/Tx-pps:/ { tpps[p] = $2; tbps[p] = $4; if (p == 1) { done = 1; exit } }
		END { if (done) printf "%d %d %d %d %d %d %d %d\n",
			rpps[0], tpps[0], rbps[0], tbps[0], rpps[1], tpps[1], rbps[1], tbps[1] }'
}

cmd "start tx_first $BURSTS"
wait_for 10 "$DIR/tp.log" 'mac packet forwarding' || die "forwarding did not start"
cmd "show port stats all" # sets the baseline of "since last show"
printf "%4s  %-28s  %-28s\n" "sec" "port0 -> port1 (Mpps Gbit/s)" "port1 -> port0 (Mpps Gbit/s)"
sum01=0 sum10=0 n=0
for t in $(seq 1 "$SECS"); do
	sleep 1 # the sampling period
	from=$(($(wc -l <"$DIR/tp.log") + 1))
	cmd "show port stats all"
	r=
	for _ in $(seq 30); do
		r=$(rates "$DIR/tp.log" "$from")
		[ -n "$r" ] && break
		sleep 0.05
	done
	[ -n "$r" ] || die "no answer to show port stats"
	read -r rpps0 tpps0 rbps0 tbps0 rpps1 tpps1 rbps1 tbps1 <<<"$r"
	# direction 0->1 is what testpmd receives on port 1, and 1->0 on port 0
	printf "%4d  %8.3f Mpps %8.3f Gbit/s  %8.3f Mpps %8.3f Gbit/s\n" "$t" \
		"$(calc "$rpps1 / 1000000")" "$(calc "$rbps1 / 1000000000")" \
		"$(calc "$rpps0 / 1000000")" "$(calc "$rbps0 / 1000000000")"
done

cmd "stop"
wait_for 10 "$DIR/tp.log" 'Accumulated forward statistics' || die "testpmd did not stop"
wait_for 5 "$DIR/tp.log" '^Done\.' || die "testpmd did not finish stopping"
# per-port forward counters of the run: RX-packets RX-dropped TX-packets TX-dropped
port_fwd() {
	awk -v want="$1" '
		/Forward statistics for port/ { p = ($0 ~ "port " want " ") }
		p && /RX-packets:/ { rx = $2; rxd = $4 }
		p && /TX-packets:/ { tx = $2; txd = $4; p = 0 }
		END { printf "%.0f %.0f %.0f %.0f\n", rx, rxd, tx, txd }' "$DIR/tp.log"
}
read -r rx0 rxd0 tx0 txd0 <<<"$(port_fwd 0)"
read -r rx1 rxd1 tx1 txd1 <<<"$(port_fwd 1)"
cmd "quit"
exec {TP_FD}>&-
TP_FD=
for _ in $(seq 100); do kill -0 "$TP_PID" 2>/dev/null || break; sleep 0.1; done
kill_wait "$TP_PID"; TP_PID=
kill -INT "$SW_PID"
wait_for 20 "$DIR/sw.log" '^final worker' || die "the switch did not stop"
wait "$SW_PID"; SW_PID=

bits=$(( (SIZE + 24) * 8 )) # on-wire: preamble, SFD, IFG and FCS around the frame
mpps() { bc -l <<<"$1 / $SECS / 1000000"; }
echo
echo "summary over ${SECS}s, $SIZE-byte frames (Gbit/s counts frame bytes; L1 adds 24 B per frame)"
printf "  port0 -> port1: %10.0f frames  %7.3f Mpps  %7.3f Gbit/s (%7.3f Gbit/s L1)\n" "$rx1" \
	"$(mpps "$rx1")" "$(calc "$rx1 * $SIZE * 8 / $SECS / 1000000000")" \
	"$(calc "$rx1 * $bits / $SECS / 1000000000")"
printf "  port1 -> port0: %10.0f frames  %7.3f Mpps  %7.3f Gbit/s (%7.3f Gbit/s L1)\n" "$rx0" \
	"$(mpps "$rx0")" "$(calc "$rx0 * $SIZE * 8 / $SECS / 1000000000")" \
	"$(calc "$rx0 * $bits / $SECS / 1000000000")"
echo "  testpmd drops: rx $((rxd0 + rxd1)), tx $((txd0 + txd1)); sent $((tx0 + tx1)), received $((rx0 + rx1)) (at most $((BURSTS * 32 * 2)) in flight at stop)"
echo "  switch:"
grep -E '^final (port|worker|fdb)' "$DIR/sw.log" | sed 's/^final /    /'
