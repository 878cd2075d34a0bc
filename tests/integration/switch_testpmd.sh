#!/usr/bin/env bash
# Integration: dpdk-testpmd with virtio-user ports as the frontend of
# vre-switch. One case per run:
#
#   switch_testpmd.sh SWITCH CASE
#
# CASE is "traffic:KEY=VAL,..." (keys: ring=split|packed, mrg=0|1, inorder=0|1,
# queues=N, size=BYTES, mode=loopback|xconnect, poll=adaptive|poll|interrupt,
# workers=CPULIST, pin=PORT:PAIR=WORKER), "idle", "nopeer" or "badopts".
#
# traffic: testpmd runs interactively (commands through a FIFO), starts io
# forwarding with "start tx_first" once its ports are up, runs a few seconds,
# "stop" prints its counters. Passes when testpmd sent packets, every packet
# it sent came back except at most the ones still circulating (the tx_first
# bursts), testpmd dropped nothing, and the switch dropped nothing and moved
# exactly what testpmd sent.
#
# Each run lives in its own temp dir; every wait is bounded; every process
# started here is killed and reaped on exit.
set -uo pipefail

SWITCH=$1
CASE=$2
TESTPMD=${TESTPMD:-dpdk-testpmd}
RUN_SECS=${RUN_SECS:-3}
# On 2 cores: the switch worker on the last CPU, testpmd (main and
# forwarding lcore) on CPU 0.
NCPU=$(nproc)
SW_CPU=$((NCPU - 1))
TP_CPU=0

DIR=$(mktemp -d /tmp/vre-it.XXXXXX)
SW_PID=
TP_PID=
TP_FD=

fail() {
	echo "FAIL: $*"
	echo "--- switch log (tail)"; tail -n 30 "$DIR/sw.log" 2>/dev/null
	echo "--- testpmd log (tail)"; tail -n 40 "$DIR/tp.log" 2>/dev/null
	exit 1
}

# kill_wait PID: TERM, then KILL after 5 s; always reaped.
kill_wait() {
	local pid=$1 i
	[ -n "$pid" ] || return 0
	kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
	kill -TERM "$pid" 2>/dev/null
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
}

cleanup() {
	[ -n "$TP_FD" ] && exec {TP_FD}>&- 2>/dev/null
	kill_wait "$TP_PID"
	kill_wait "$SW_PID"
	rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# wait_for SECONDS FILE REGEX: until FILE has a line matching REGEX.
wait_for() {
	local end=$((SECONDS + $1))
	while [ $SECONDS -lt $end ]; do
		grep -qE "$3" "$2" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# wait_count SECONDS FILE REGEX N: until FILE has N lines matching REGEX.
wait_count() {
	local end=$((SECONDS + $1))
	while [ $SECONDS -lt $end ]; do
		[ "$(grep -cE "$3" "$2" 2>/dev/null)" -ge "$4" ] && return 0
		sleep 0.1
	done
	return 1
}

# start_switch ARGS...: runs vre-switch, waits for its ready line.
start_switch() {
	"$SWITCH" "$@" >"$DIR/sw.log" 2>&1 &
	SW_PID=$!
	wait_for 20 "$DIR/sw.log" '^vre-switch: ready' || fail "switch did not come up"
}

# stop_switch: SIGINT, wait (bounded) for the final counters.
stop_switch() {
	kill -INT "$SW_PID" 2>/dev/null
	wait_for 20 "$DIR/sw.log" '^final worker' || fail "switch did not stop on SIGINT"
	wait "$SW_PID"
	local rc=$?
	SW_PID=
	[ $rc -eq 0 ] || fail "switch exited with $rc"
}

# start_testpmd VDEV_ARGS... -- APP_ARGS...: interactive, stdin from a FIFO.
start_testpmd() {
	local eal=() app=()
	while [ $# -gt 0 ] && [ "$1" != "--" ]; do eal+=("$1"); shift; done
	shift
	app=("$@")
	mkfifo "$DIR/tp.in"
	# --no-huge: virtio-user shares its memfd-backed memory, and the suite
	# does not compete with other DPDK tests for hugepages
	stdbuf -o0 -e0 "$TESTPMD" --lcores "0@$TP_CPU,1@$TP_CPU" --no-pci --no-huge -m 256 --no-shconf \
		"${eal[@]}" -- -i --total-num-mbufs=8192 --nb-cores=1 --no-lsc-interrupt --forward-mode=io \
		"${app[@]}" <"$DIR/tp.in" >"$DIR/tp.log" 2>&1 &
	TP_PID=$!
	exec {TP_FD}>"$DIR/tp.in"
	wait_for 30 "$DIR/tp.log" '^testpmd> ' || fail "testpmd did not reach its prompt"
}

tp_cmd() {
	echo "$1" >&"$TP_FD" || fail "testpmd is gone (command '$1')"
}

tp_quit() {
	tp_cmd "quit"
	exec {TP_FD}>&-
	TP_FD=
	local end=$((SECONDS + 20))
	while kill -0 "$TP_PID" 2>/dev/null && [ $SECONDS -lt $end ]; do sleep 0.1; done
	kill_wait "$TP_PID"
	TP_PID=
}

# tp_total FIELD: from the last "Accumulated forward statistics" block.
tp_total() {
	awk -v f="$1:" '/Accumulated forward statistics/ {blk=1; next}
		blk && /\+\+\+\+\+\+\+\+\+\+\+\+\+\+\+\+\+\+\+\+\+\+\+\+\+\+\+\+$/ {blk=0}
		blk { for (i = 1; i < NF; i++) if ($i == f) v = $(i + 1) }
		END { printf "%.0f\n", v }' "$DIR/tp.log"
}

# sw_final FIELD [PORT]: from the switch's "final port N:" line (summed
# over ports when PORT is not given).
sw_final() {
	awk -v f="$1" -v p="${2:-}" '/^final port / {
		if (p != "" && $3 != p ":") next
		for (i = 4; i < NF; i++) if ($i == f) s += $(i + 1) }
		END { printf "%.0f\n", s }' "$DIR/sw.log"
}

# run_traffic NPORTS QUEUES SIZE: one io-forwarding round, then checks.
run_traffic() {
	local nports=$1 queues=$2 size=$3 round
	# testpmd's log accumulates rounds: wait for this round's lines
	round=$(($(grep -c 'Accumulated forward statistics' "$DIR/tp.log") + 1))
	tp_cmd "start tx_first"
	wait_count 10 "$DIR/tp.log" 'io packet forwarding' "$round" || fail "forwarding did not start"
	sleep "$RUN_SECS" # traffic duration, not synchronisation
	tp_cmd "stop"
	wait_count 10 "$DIR/tp.log" 'Accumulated forward statistics' "$round" || fail "no stats after stop"
	wait_count 5 "$DIR/tp.log" '^Done\.' "$round" || fail "stop did not finish"
	check_counts "$nports" "$queues" "$size"
}

check_counts() {
	local nports=$1 queues=$2 size=$3
	local rx tx rxd txd inflight
	rx=$(tp_total RX-packets)
	tx=$(tp_total TX-packets)
	rxd=$(tp_total RX-dropped)
	txd=$(tp_total TX-dropped)
	# tx_first puts one burst of 32 per queue and port into circulation;
	# at "stop" at most those are still on their way.
	inflight=$((32 * queues * nports))
	echo "testpmd: rx $rx tx $tx rx-dropped $rxd tx-dropped $txd (size $size, in flight <= $inflight)"
	[ "$tx" -gt 1000 ] || fail "too little traffic: testpmd sent $tx"
	[ "$rxd" -eq 0 ] && [ "$txd" -eq 0 ] || fail "testpmd dropped packets"
	[ "$rx" -le "$tx" ] || fail "received more than sent"
	[ $((tx - rx)) -le "$inflight" ] || fail "lost $((tx - rx - inflight)) or more packets"
}

# After the switch stopped: it took exactly what testpmd sent, delivered
# exactly what testpmd received (plus what was still in testpmd's RX ring),
# dropped nothing, and every frame had the size we sent.
check_switch() {
	local size=$1 tx rx swtx swrx swtxb drops
	tx=$(tp_total TX-packets)
	rx=$(tp_total RX-packets)
	swtx=$(sw_final tx-pkts)
	swrx=$(sw_final rx-pkts)
	swtxb=$(sw_final tx-bytes)
	drops=$(sw_final drops)
	echo "switch: took $swtx delivered $swrx drops $drops"
	[ "$drops" -eq 0 ] || fail "the switch dropped $drops packets"
	[ "$swtx" -eq "$tx" ] || fail "switch took $swtx packets, testpmd sent $tx"
	[ "$swrx" -ge "$rx" ] && [ "$swrx" -le "$swtx" ] || fail "switch delivered $swrx, testpmd received $rx"
	[ "$swtxb" -eq $((swtx * size)) ] || fail "switch saw $swtxb bytes for $swtx frames of $size"
}

vdev() { # vdev INDEX QUEUES RING MRG INORDER
	local packed=0
	[ "$3" = packed ] && packed=1
	echo "--vdev=net_virtio_user$1,path=$DIR/s$1,queues=$2,packed_vq=$packed,mrg_rxbuf=$4,in_order=$5"
}

case_traffic() {
	local ring=split mrg=1 inorder=0 queues=1 size=64 mode=loopback poll=adaptive
	local workers=$SW_CPU pins=() kv
	IFS=, read -ra kvs <<<"$1"
	for kv in "${kvs[@]}"; do
		case ${kv%%=*} in
		ring) ring=${kv#*=} ;; mrg) mrg=${kv#*=} ;; inorder) inorder=${kv#*=} ;;
		queues) queues=${kv#*=} ;; size) size=${kv#*=} ;; mode) mode=${kv#*=} ;;
		poll) poll=${kv#*=} ;; workers) workers=${kv#*=} ;;
		pin) pins+=(--pin "${kv#*=}") ;;
		*) fail "unknown case key $kv" ;;
		esac
	done
	local nports=1
	[ "$mode" = xconnect ] && nports=2
	local swargs=(--mode "$mode" --workers "$workers" --poll "$poll")
	local eal=() app=(--rxq="$queues" --txq="$queues")
	for i in $(seq 0 $((nports - 1))); do
		swargs+=(--vhost "$DIR/s$i,queues=$queues")
		eal+=("$(vdev "$i" "$queues" "$ring" "$mrg" "$inorder")")
	done
	if [ "$size" -gt 1518 ]; then
		# jumbo: multi-segment TX, RX scattered over mergeable buffers
		# (or one large buffer without mrg_rxbuf)
		local segs="" left=$size
		while [ "$left" -gt 2000 ]; do segs+="2000,"; left=$((left - 2000)); done
		segs+=$left
		app+=(--max-pkt-len=9600 --txpkts="$segs" --tx-offloads=0x8000)
		if [ "$mrg" = 1 ]; then app+=(--enable-scatter); else app+=(--mbuf-size=10240); fi
	else
		app+=(--txpkts="$size")
	fi
	start_switch "${swargs[@]}" "${pins[@]}"
	start_testpmd "${eal[@]}" -- "${app[@]}"
	run_traffic "$nports" "$queues" "$size"
	tp_quit
	stop_switch
	check_switch "$size"
	# every worker of the list carried its share
	local idle_workers
	idle_workers=$(awk '/^final worker/ && $6 == "packets" && $7 == 0' "$DIR/sw.log" | wc -l)
	[ "$idle_workers" -eq 0 ] || fail "$idle_workers worker(s) moved no packets"
	echo "PASS: traffic $1"
}

# xconnect with the peer port never connected: the TX queue of port 0 has
# no destination; after the grace period its packets are completed and
# counted as dropped (the guest is not stalled), and the switch takes every
# packet testpmd sends.
case_nopeer() {
	start_switch --mode xconnect --workers "$SW_CPU" --vhost "$DIR/s0" --vhost "$DIR/s1"
	start_testpmd "$(vdev 0 1 split 1 0)" -- --txpkts=64 --forward-mode=txonly
	run_txonly
	tp_quit
	stop_switch
	local tx took nodst rx1
	tx=$(tp_total TX-packets)
	took=$(sw_final tx-pkts 0)
	nodst=$(sw_final drop-no-dst 0)
	rx1=$(sw_final rx-pkts 1)
	echo "testpmd sent $tx; switch took $took, dropped (no destination) $nodst, delivered to port 1: $rx1"
	[ "$tx" -gt 1000 ] || fail "too little traffic: $tx"
	[ "$took" -eq "$tx" ] || fail "switch took $took of $tx"
	[ "$nodst" -eq "$took" ] || fail "$nodst of $took counted as dropped"
	[ "$rx1" -eq 0 ] || fail "packets reached the unconnected port"
	echo "PASS: nopeer"
}

# run_txonly: one txonly round (testpmd sends, never receives).
run_txonly() {
	tp_cmd "start"
	wait_for 10 "$DIR/tp.log" 'txonly packet forwarding' || fail "txonly did not start"
	sleep "$RUN_SECS" # traffic duration, not synchronisation
	tp_cmd "stop"
	wait_for 10 "$DIR/tp.log" 'Accumulated forward statistics' || fail "no stats after stop"
	wait_for 5 "$DIR/tp.log" '^Done\.' || fail "stop did not finish"
}

# CPU time (utime + stime, clock ticks) of thread TID of PID.
thread_ticks() {
	awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/task/$2/stat"
}

case_idle() {
	start_switch --workers "$SW_CPU" --poll adaptive --vhost "$DIR/s0"
	local tid=
	for t in /proc/"$SW_PID"/task/*; do
		[ "$(cat "$t/comm")" = "vre-w$SW_CPU" ] && tid=${t##*/}
	done
	[ -n "$tid" ] || fail "no worker thread vre-w$SW_CPU"
	start_testpmd "$(vdev 0 1 split 1 0)" -- --txpkts=64
	# traffic first, so the worker has been busy and must go idle again
	run_traffic 1 1 64
	local hz t0 t1 pct
	hz=$(getconf CLK_TCK)
	t0=$(thread_ticks "$SW_PID" "$tid")
	sleep 5 # the measured idle period
	t1=$(thread_ticks "$SW_PID" "$tid")
	pct=$(((t1 - t0) * 100 * 100 / (5 * hz)))
	echo "idle worker: $((t1 - t0)) ticks in 5 s = $((pct / 100)).$((pct % 100))% of a core"
	[ "$pct" -lt 500 ] || fail "idle adaptive worker used $pct/100 % of a core"
	# and traffic resumes without loss after the idle period (testpmd's
	# counters restart with each "start", so this round is checked alone)
	run_traffic 1 1 64
	tp_quit
	stop_switch
	[ "$(sw_final drops)" -eq 0 ] || fail "drops after idle"
	echo "PASS: idle"
}

# expect_usage ARGS...: exit code 2, one line on stderr, no socket left.
expect_usage() {
	local rc lines
	"$SWITCH" "$@" >"$DIR/out" 2>"$DIR/err" </dev/null
	rc=$?
	lines=$(wc -l <"$DIR/err")
	[ $rc -eq 2 ] || fail "'$*': exit $rc, want 2"
	[ "$lines" -eq 1 ] || fail "'$*': $lines lines on stderr, want 1: $(cat "$DIR/err")"
	[ -z "$(find "$DIR" -type s)" ] || fail "'$*': left a socket behind"
	echo "ok: $* -> $(cat "$DIR/err")"
}

case_badopts() {
	expect_usage --bogus
	expect_usage
	expect_usage --vhost
	expect_usage --vhost "$DIR/s0" --mode mesh
	expect_usage --vhost "$DIR/s0" --mode xconnect
	expect_usage --vhost "$DIR/s0" --workers 4096
	expect_usage --vhost "$DIR/s0" --workers "$NCPU"
	expect_usage --vhost "$DIR/s0" --workers 1-0
	expect_usage --vhost "$DIR/s0" --poll sometimes
	expect_usage --vhost "$DIR/s0,queues=0"
	expect_usage --vhost "$DIR/s0,fast"
	expect_usage --vhost "$DIR/s0" --vhost "$DIR/s0"
	expect_usage --vhost "$DIR/s0" --stats-interval -1
	expect_usage --vhost "$DIR/s0" --log-level loud
	expect_usage --vhost "$DIR/s0" --pin 0:1=0
	expect_usage --no-huge -- --vhost "$DIR/s0" extra
	# a clean start and SIGTERM leave no socket behind either
	start_switch --workers "$SW_CPU" --vhost "$DIR/s0" --vhost "$DIR/s1"
	[ -S "$DIR/s0" ] && [ -S "$DIR/s1" ] || fail "sockets not created"
	kill -TERM "$SW_PID"
	wait_for 20 "$DIR/sw.log" '^final worker' || fail "no clean stop on SIGTERM"
	wait "$SW_PID" || fail "switch exit code $? on SIGTERM"
	SW_PID=
	[ -z "$(find "$DIR" -type s)" ] || fail "sockets left after SIGTERM"
	echo "PASS: badopts"
}

[ -x "$SWITCH" ] || { echo "no switch binary at $SWITCH"; exit 77; }
command -v "$TESTPMD" >/dev/null || { echo "SKIP: $TESTPMD not installed"; exit 77; }

case $CASE in
traffic:*) case_traffic "${CASE#traffic:}" ;;
idle) case_idle ;;
nopeer) case_nopeer ;;
badopts) case_badopts ;;
*) fail "unknown case $CASE" ;;
esac
