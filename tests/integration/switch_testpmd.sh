#!/usr/bin/env bash
# Integration: dpdk-testpmd with virtio-user ports as the frontend of
# vre-switch. One case per run:
#
#   switch_testpmd.sh SWITCH CASE
#
# CASE is "traffic:KEY=VAL,..." (keys: ring=split|packed, mrg=0|1, inorder=0|1,
# queues=N, size=BYTES, mode=loopback|xconnect|learn, poll=adaptive|poll|interrupt,
# workers=CPULIST, pin=PORT:PAIR=WORKER, client=0|1, rebalance=N: SIGUSR2
# N times under traffic), "idle", "nopeer",
# "reconnect", "flap", "learn", "badopts", "ring" (a net_ring ethdev port
# xconnected with a vhost port; also --stats-json and SIGUSR1), "ring-mq"
# (the same with two queue pairs: the ring's packets use both),
# "learn-ring-mq" (the same in learn mode), "learn3"
# (flooding, unicast after learning and aging over three ports) or
# "learn-ring" (learn mode over a vhost and a net_ring port),
# "badconfig" (--config files, good and bad, and port errors found after
# the EAL probed).
#
# traffic: testpmd runs interactively (commands through a FIFO), starts io
# forwarding with "start tx_first" once its ports are up, runs a few seconds,
# "stop" prints its counters. Passes when testpmd sent packets, every packet
# it sent came back except at most the ones still circulating (the tx_first
# bursts), testpmd dropped nothing, and the switch dropped nothing and moved
# exactly what testpmd sent.
#
# Each run lives in its own temp dir (kept for inspection when KEEP_DIR is
# set); every wait is bounded; every process started here is killed and
# reaped on exit.
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
TP_B_PID=
TP_FD=

fail() {
	echo "FAIL: $*"
	echo "--- switch log (tail)"; tail -n 30 "$DIR/sw.log" 2>/dev/null
	echo "--- testpmd log (tail)"; tail -n 40 "$DIR/tp.log" 2>/dev/null
	exit 1
}

. "$(dirname "$0")/../../scripts/lib/proc.sh"

cleanup() {
	[ -n "$TP_FD" ] && exec {TP_FD}>&- 2>/dev/null
	kill_wait "$TP_PID"
	kill_wait "$TP_B_PID"
	kill_wait "$SW_PID"
	[ -n "${KEEP_DIR:-}" ] && { echo "kept $DIR"; return; }
	rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# start_switch ARGS...: runs vre-switch, waits for its ready line.
# SW_EAL: EAL options for the switch, ending with "--" (default: none).
SW_NPORTS=0
SW_EAL=()
start_switch() {
	local a
	for a in "$@"; do [ "$a" = --vhost ] && SW_NPORTS=$((SW_NPORTS + 1)); done
	"$SWITCH" "${SW_EAL[@]}" --ctl "$DIR/ctl.sock" --stats-interval 1 "$@" >"$DIR/sw.log" 2>&1 &
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
		"${eal[@]}" -- -i --total-num-mbufs=8192 --nb-cores=1 ${TP_LSC_OPT---no-lsc-interrupt} --forward-mode=io \
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

# tp_round START MODE SECONDS [DURING]: one testpmd forwarding round:
# sends START, waits for this round's "MODE packet forwarding - ports"
# line (MODE a regex: the forwarding engine's name), lets
# traffic run for SECONDS (or runs DURING instead), stops, and waits for
# this round's statistics. testpmd's log accumulates rounds, so every wait
# counts this round's lines.
tp_round() {
	local start=$1 mode=$2 secs=$3 during=${4:-} round started
	round=$(($(grep -c 'Accumulated forward statistics' "$DIR/tp.log") + 1))
	local started_re="^$mode packet forwarding - ports"
	started=$(($(grep -cE "$started_re" "$DIR/tp.log") + 1))
	tp_cmd "$start"
	wait_count 10 "$DIR/tp.log" "$started_re" "$started" || fail "forwarding ($mode) did not start"
	if [ -n "$during" ]; then
		"$during"
	else
		sleep "$secs" # traffic duration, not synchronisation
	fi
	tp_cmd "stop"
	wait_count 10 "$DIR/tp.log" 'Accumulated forward statistics' "$round" || fail "no stats after stop"
	wait_count 5 "$DIR/tp.log" '^Done\.' "$round" || fail "stop did not finish"
}

# run_traffic NPORTS QUEUES SIZE: one forwarding round started with
# tx_first (io, or mac for the learn cases), then checks.
run_traffic() {
	local nports=$1 queues=$2 size=$3
	tp_round "start tx_first" '(io|mac)' "$RUN_SECS" "$([ "$REBALANCE" -gt 0 ] && echo rebalance_under_traffic)"
	check_counts "$nports" "$queues" "$size"
	SENT_TOTAL=$((SENT_TOTAL + $(tp_total TX-packets)))
	wait_switch_took
}

# rebalance_under_traffic: REBALANCE times over RUN_SECS, SIGUSR2 moves
# every queue to the next worker; each move is acknowledged by a log line.
REBALANCE=0
rebalance_under_traffic() {
	local i
	for i in $(seq "$REBALANCE"); do
		sleep "$(awk -v s="$RUN_SECS" -v n="$REBALANCE" 'BEGIN { print s / n }')" # traffic between moves
		kill -USR2 "$SW_PID" || fail "switch gone"
		wait_count 10 "$DIR/sw.log" '^vre-switch: rebalance: [1-9][0-9]* poll item' "$i" ||
			fail "rebalance $i was not done"
	done
}

# wait_switch_took: until the switch's once-a-second counters show
# that it took every packet testpmd sent so far (a loaded machine may keep
# the worker off its CPU for a while; quitting testpmd earlier would cut
# the last packets off).
SENT_TOTAL=0
wait_switch_took() {
	local end=$((SECONDS + 15)) took=
	while [ $SECONDS -lt $end ]; do
		took=$(grep '^stats port ' "$DIR/sw.log" | tail -n "$SW_NPORTS" | awk '
			{ for (i = 4; i < NF; i++) if ($i == "tx-pkts") s += $(i + 1) }
			END { printf "%.0f\n", s }')
		[ "$took" -ge "$SENT_TOTAL" ] && return 0
		sleep 0.2
	done
	fail "the switch took $took of $SENT_TOTAL packets"
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
	local workers=$SW_CPU pins=() client=0 kv
	IFS=, read -ra kvs <<<"$1"
	for kv in "${kvs[@]}"; do
		case ${kv%%=*} in
		ring) ring=${kv#*=} ;; mrg) mrg=${kv#*=} ;; inorder) inorder=${kv#*=} ;;
		queues) queues=${kv#*=} ;; size) size=${kv#*=} ;; mode) mode=${kv#*=} ;;
		poll) poll=${kv#*=} ;; workers) workers=${kv#*=} ;;
		pin) pins+=(--pin "${kv#*=}") ;; client) client=${kv#*=} ;;
		rebalance) REBALANCE=${kv#*=} ;;
		*) fail "unknown case key $kv" ;;
		esac
	done
	local nports=1
	[ "$mode" = xconnect ] || [ "$mode" = learn ] && nports=2
	local swargs=(--mode "$mode" --workers "$workers" --poll "$poll")
	local eal=() app=(--rxq="$queues" --txq="$queues") mtu=
	# jumbo frames: the ports' MTU (1500 by default) must let them through
	[ "$size" -gt 1518 ] && mtu=,mtu=9600
	for i in $(seq 0 $((nports - 1))); do
		if [ "$client" = 1 ]; then
			# testpmd listens (virtio-user server=1), the switch connects
			swargs+=(--vhost "$DIR/s$i,client,queues=$queues$mtu")
			eal+=("$(vdev "$i" "$queues" "$ring" "$mrg" "$inorder"),server=1")
		else
			swargs+=(--vhost "$DIR/s$i,queues=$queues$mtu")
			eal+=("$(vdev "$i" "$queues" "$ring" "$mrg" "$inorder")")
		fi
		# learn: each port's frames go to the other's MAC (io forwarding
		# keeps them), so after the first burst all traffic is unicast
		[ "$mode" = learn ] && eal[i]+=",mac=02:00:00:00:00:1$i"
	done
	[ "$mode" = learn ] && app+=(--eth-peer=0,02:00:00:00:00:11 --eth-peer=1,02:00:00:00:00:10)
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

# A frontend leaves and another one (packed this time) connects to the
# same port: the queues are stopped and started again, traffic flows
# without loss both times.
case_reconnect() {
	start_switch --mode loopback --workers "$SW_CPU" --vhost "$DIR/s0"
	start_testpmd "$(vdev 0 1 split 1 0)" -- --txpkts=64
	run_traffic 1 1 64
	local sent1
	sent1=$(tp_total TX-packets)
	tp_quit
	wait_for 10 "$DIR/sw.log" 'frontend disconnected' || fail "no disconnect seen"
	mv "$DIR/tp.log" "$DIR/tp1.log"
	rm -f "$DIR/tp.in"
	start_testpmd "$(vdev 0 1 packed 1 1)" -- --txpkts=1518
	run_traffic 1 1 1518
	local sent2
	sent2=$(tp_total TX-packets)
	tp_quit
	stop_switch
	[ "$(sw_final drops)" -eq 0 ] || fail "drops: $(grep '^final port' "$DIR/sw.log")"
	[ "$(sw_final tx-pkts)" -eq $((sent1 + sent2)) ] || fail "switch took $(sw_final tx-pkts), testpmd sent $sent1 + $sent2"
	echo "PASS: reconnect"
}

# The peer's RX queue stops and starts under traffic: testpmd A sends on
# port 0 (txonly) the whole time, a second testpmd B receives on port 1
# (rxonly) and is stopped and restarted three times. Every packet A sent is
# taken by the switch and either delivered to port 1 or counted as dropped;
# the receivers get traffic (little of it on 2 cores: A's sending lcore and
# B's receiving one share CPU 0, so most packets meet a full RX ring and
# are counted as drops; a starved life may get none).
case_flap() {
	start_switch --mode xconnect --workers "$SW_CPU" --vhost "$DIR/s0" --vhost "$DIR/s1"
	start_testpmd "$(vdev 0 1 split 1 0)" -- --txpkts=64 --forward-mode=txonly
	tp_cmd "start"
	wait_for 10 "$DIR/tp.log" 'txonly packet forwarding' || fail "txonly did not start"
	local life b_pid b_rx b_total=0
	for life in 1 2 3; do
		stdbuf -o0 -e0 "$TESTPMD" --lcores "0@$TP_CPU,1@$TP_CPU" --no-pci --no-huge -m 256 \
			--no-shconf "$(vdev 1 1 split 1 0)" -- --nb-cores=1 --no-lsc-interrupt \
			--forward-mode=rxonly --total-num-mbufs=8192 --stats-period 1 \
			>"$DIR/b$life.log" 2>&1 &
		b_pid=$!
		TP_B_PID=$b_pid
		wait_for 30 "$DIR/b$life.log" 'rxonly packet forwarding' || fail "receiver $life did not start"
		sleep 1 # receive for a while, not synchronisation
		kill -INT "$b_pid"
		wait_for 20 "$DIR/b$life.log" 'Accumulated forward statistics' || fail "receiver $life did not stop"
		kill_wait "$b_pid"
		TP_B_PID=
		b_rx=$(awk '/Accumulated forward statistics/ {blk=1} blk && /RX-packets:/ {print $2; exit}' "$DIR/b$life.log")
		echo "receiver $life: $b_rx packets"
		b_total=$((b_total + ${b_rx:-0}))
	done
	[ "$b_total" -gt 0 ] || fail "the receivers got nothing"
	tp_cmd "stop"
	wait_for 10 "$DIR/tp.log" 'Accumulated forward statistics' || fail "no stats after stop"
	wait_for 5 "$DIR/tp.log" '^Done\.' || fail "stop did not finish"
	SENT_TOTAL=$(tp_total TX-packets)
	wait_switch_took
	tp_quit
	stop_switch
	local took rx1 drop0 drop1
	took=$(sw_final tx-pkts 0)
	rx1=$(sw_final rx-pkts 1)
	drop0=$(sw_final drops 0)
	drop1=$(sw_final drops 1)
	echo "A sent $SENT_TOTAL; switch took $took, delivered $rx1, dropped $drop0 (no destination) + $drop1 (port 1)"
	[ "$took" -eq "$SENT_TOTAL" ] || fail "switch took $took of $SENT_TOTAL"
	[ $((rx1 + drop0 + drop1)) -eq "$took" ] || fail "delivered + dropped != taken"
	[ "$(sw_final drop-bad)" -eq 0 ] || fail "bad-chain drops"
	echo "PASS: flap"
}

# Learn mode: three ports, testpmd forwards between ports 0 and 1 only
# (mac mode: each frame leaves with its port's MAC as source and the other
# port's as destination); port 2 is up but idle. After the first flood the
# bridge knows both MACs, so port 2 sees at most the first bursts.
case_learn() {
	start_switch --mode learn --workers "$SW_CPU" --vhost "$DIR/s0" --vhost "$DIR/s1" --vhost "$DIR/s2"
	start_testpmd "$(vdev 0 1 split 1 0),mac=02:00:00:00:00:10" \
		"$(vdev 1 1 packed 1 0),mac=02:00:00:00:00:11" \
		"$(vdev 2 1 split 1 0),mac=02:00:00:00:00:12" -- \
		--forward-mode=mac --portmask=0x3 --txpkts=64 \
		--eth-peer=0,02:00:00:00:00:11 --eth-peer=1,02:00:00:00:00:10
	run_traffic 2 1 64
	tp_quit
	stop_switch
	local p2 learned
	p2=$(sw_final rx-pkts 2)
	learned=$(awk '/^final fdb:/ { print $3 }' "$DIR/sw.log")
	echo "port 2 got $p2 flooded frames; $learned MACs learned"
	[ "$(sw_final drops)" -eq 0 ] || fail "drops: $(grep '^final port' "$DIR/sw.log")"
	[ "$p2" -le 64 ] || fail "port 2 got $p2 frames: the bridge keeps flooding"
	[ "$learned" = 2 ] || fail "learned $learned MACs, want 2"
	echo "PASS: learn"
}

# run_txonly: one txonly round (testpmd sends, never receives).
run_txonly() {
	tp_round start txonly "$RUN_SECS"
}

# CPU time (utime + stime, clock ticks) of thread TID of PID.
thread_ticks() {
	awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/task/$2/stat"
}

case_idle() {
	start_switch --mode loopback --workers "$SW_CPU" --poll adaptive --vhost "$DIR/s0"
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
	expect_usage --ctl none
	expect_usage --vhost
	expect_usage --vhost "$DIR/s0" --mode mesh
	expect_usage --vhost "$DIR/s0" --mode xconnect
	expect_usage --vhost "$DIR/s0" --workers 4096
	expect_usage --vhost "$DIR/s0" --workers "$NCPU"
	expect_usage --vhost "$DIR/s0" --workers 1-0
	expect_usage --vhost "$DIR/s0" --poll sometimes
	expect_usage --vhost "$DIR/s0,queues=0"
	expect_usage --vhost "$DIR/s0,fast"
	expect_usage --vhost "$DIR/s0,mtu=67"
	expect_usage --vhost "$DIR/s0,mtu=65536"
	expect_usage --vhost "$DIR/s0,mtu=1500x"
	expect_usage --vhost "$DIR/s0,offloads=maybe"
	expect_usage --vhost "$DIR/s0" --vhost "$DIR/s0"
	expect_usage --vhost "$DIR/s0" --stats-interval -1
	expect_usage --vhost "$DIR/s0" --log-level loud
	expect_usage --vhost "$DIR/s0" --pin 0:1=0
	# (--pin is valid in learn mode too since learn mode runs on every
	# worker; a malformed one is refused there as anywhere)
	expect_usage --mode learn --vhost "$DIR/s0" --pin 0:0=x
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

# sw_table: asks for a table on demand (SIGUSR1 -> "now ..." lines) and
# keeps it in $DIR/now.txt for tbl.
sw_table() {
	local n
	n=$(grep -c '^now worker 0 ' "$DIR/sw.log")
	kill -USR1 "$SW_PID" || fail "switch gone"
	wait_count 10 "$DIR/sw.log" '^now worker 0 ' $((n + 1)) || fail "no table on SIGUSR1"
	awk '/^now port 0: / { blk = "" } /^now / { blk = blk $0 "\n" } END { printf "%s", blk }' \
		"$DIR/sw.log" >"$DIR/now.txt"
}

# tbl FIELD PORT: FIELD of port PORT in the last table taken.
tbl() {
	awk -v f="$1" -v p="now port $2:" 'index($0, p) == 1 {
		for (i = 4; i < NF; i++) if ($i == f) v = $(i + 1) }
		END { printf "%.0f\n", v }' "$DIR/now.txt"
}

# sw_now FIELD PORT: the same from a fresh table.
sw_now() {
	sw_table
	tbl "$1" "$2"
}

# offered PORT: what the switch gave port PORT in the last table, delivered
# or dropped for want of a buffer (testpmd does not receive in txonly mode).
offered() {
	echo $(($(tbl rx-pkts "$1") + $(tbl drop-no-rx-buf "$1")))
}

EAL_QUIET=(--no-pci --no-huge -m 256 --no-shconf --no-telemetry --log-level=lib.eal:error)

# A net_ring ethdev port (its TX ring is its RX ring: what the switch sends
# into it comes straight back) xconnected with a vhost port driven by
# testpmd: testpmd's frames cross vhost -> ethdev -> vhost, so whatever
# testpmd receives came back through the DPDK port.
case_ring() {
	SW_EAL=("${EAL_QUIET[@]}" --vdev net_ring0 --)
	start_switch --mode xconnect --workers "$SW_CPU" --vhost "$DIR/s0" --stats-json "$DIR/st.json"
	grep -q '^vre-switch: port 1: ethdev 0 (net_ring0) started, link up' "$DIR/sw.log" ||
		fail "no link line for the ring port"
	grep -q 'ready: 2 port(s) (1 vhost, 1 ethdev), xconnect mode' "$DIR/sw.log" || fail "ready line"
	start_testpmd "$(vdev 0 1 split 1 0)" -- --txpkts=64
	tp_round "start tx_first" io "$RUN_SECS"
	check_counts 1 1 64
	local tx rx end=$((SECONDS + 15))
	tx=$(tp_total TX-packets)
	rx=$(tp_total RX-packets)
	# the on-demand table, until the switch took every frame
	while [ "$(sw_now tx-pkts 0)" -lt "$tx" ]; do
		[ $SECONDS -lt $end ] || fail "switch took $(sw_now tx-pkts 0) of $tx"
		sleep 0.2
	done
	tp_quit
	stop_switch
	local took into outof back drops
	took=$(sw_final tx-pkts 0); back=$(sw_final rx-pkts 0)
	into=$(sw_final rx-pkts 1); outof=$(sw_final tx-pkts 1); drops=$(sw_final drops)
	echo "testpmd sent $tx got $rx; switch: took $took, into ring $into, out of ring $outof, to testpmd $back, drops $drops"
	[ "$drops" -eq 0 ] || fail "drops: $(grep '^final port' "$DIR/sw.log")"
	[ "$took" -eq "$tx" ] || fail "took $took of $tx"
	[ "$into" -eq "$took" ] || fail "the ring port took $into of $took"
	[ "$back" -eq "$outof" ] || fail "$outof out of the ring, $back delivered"
	[ "$outof" -ge "$rx" ] && [ $((into - outof)) -le 32 ] || fail "ring in $into out $outof"
	[ "$(sw_final tx-bytes 0)" -eq $((took * 64)) ] || fail "frame sizes changed"
	[ "$(sw_final rx-bytes 1)" -eq $((into * 64)) ] || fail "frame sizes changed in the ring"
	# --stats-json: valid JSON with every counter, its last write the final counters
	python3 -m json.tool "$DIR/st.json" >/dev/null || fail "stats-json is not valid JSON"
	python3 - "$DIR/st.json" "$took" "$into" "$outof" <<'PY' || fail "stats-json content"
import json, sys
d = json.load(open(sys.argv[1]))
took, into, outof = map(int, sys.argv[2:5])
keys = {"port", "kind", "name", "rx_pkts", "rx_bytes", "tx_pkts", "tx_bytes", "drops",
        "drop_no_dst", "drop_no_rx_buf", "drop_bad", "rx_mpps", "tx_mpps"}
p = d["ports"]
assert d["mode"] == "xconnect" and len(p) == 2, d
assert all(keys <= set(x) for x in p), p
assert p[0]["kind"] == "vhost" and p[1]["kind"] == "ethdev" and p[1]["name"] == "net_ring0", p
assert p[0]["tx_pkts"] == took and p[1]["rx_pkts"] == into and p[1]["tx_pkts"] == outof, p
assert all(x["drops"] == 0 for x in p), p
w = d["workers"]
assert len(w) == 1 and w[0]["packets"] > 0 and w[0]["cycles_per_pkt"] > 0, w
print("stats-json ok:", p[1])
PY
	[ ! -e "$DIR/st.json.tmp" ] || fail "stats-json temp file left"
	grep -q '^now worker 0 cpu .* cycles/pkt' "$DIR/sw.log" || fail "no worker line on SIGUSR1"
	echo "PASS: ring"
}

# A net_ring port xconnected with a two-pair vhost port: what comes out of
# the ring is spread over both of the vhost port's RX queues by flow
# (testpmd's tx_first burst carries 32 flows, --txonly-multi-flow; io
# forwarding sends each back on the queue it came from), so both of
# testpmd's RX queues receive, and nothing is lost.
# MODE: xconnect, or learn (the frames' destination is unknown: each floods
# into the ring and, coming back out, to the vhost port).
case_ring_mq() {
	SW_EAL=("${EAL_QUIET[@]}" --vdev net_ring0 --)
	start_switch --mode "$1" --workers "$SW_CPU" --vhost "$DIR/s0,queues=2"
	start_testpmd "$(vdev 0 2 split 1 0)" -- --txpkts=64 --rxq=2 --txq=2 --txonly-multi-flow
	tp_round "start tx_first" io "$RUN_SECS"
	check_counts 1 2 64
	local q0 q1
	# per-stream blocks: "Forward Stats for RX Port= 0/Queue= N -> ..."
	q0=$(awk '/Forward Stats for RX Port= 0\/Queue= 0 / { b = 1; next } b && /RX-packets:/ { print $2; exit }' "$DIR/tp.log")
	q1=$(awk '/Forward Stats for RX Port= 0\/Queue= 1 / { b = 1; next } b && /RX-packets:/ { print $2; exit }' "$DIR/tp.log")
	echo "testpmd received on queue 0: ${q0:-?}, on queue 1: ${q1:-?}"
	[ "${q0:-0}" -gt 100 ] && [ "${q1:-0}" -gt 100 ] || fail "not spread over both queues"
	tp_quit
	stop_switch
	[ "$(sw_final drops)" -eq 0 ] || fail "drops: $(grep '^final port' "$DIR/sw.log")"
	echo "PASS: ring-mq ($1)"
}

# learn_round PORTMASK PORT PEER_MAC: testpmd sends from PORT (txonly) to
# PEER_MAC for a second; sets SENT and OFF0..OFF2 (what each port was
# offered during the round, from the on-demand tables).
learn_round() {
	local b0 b1 b2 before end=$((SECONDS + 15))
	sw_table
	b0=$(offered 0); b1=$(offered 1); b2=$(offered 2)
	before=$(tbl tx-pkts "$2")
	tp_cmd "set portmask $1"
	tp_cmd "set eth-peer $2 $3"
	tp_round start txonly 1
	SENT=$(tp_total TX-packets)
	[ "$SENT" -gt 100 ] || fail "testpmd sent only $SENT"
	while [ $(($(sw_now tx-pkts "$2") - before)) -lt "$SENT" ]; do
		[ $SECONDS -lt $end ] || fail "switch took too little from port $2"
		sleep 0.2
	done
	# frames may still be on a second leg (an ethdev ring): until two
	# tables in a row agree
	local cur prev=
	while :; do
		sw_table
		cur="$(offered 0) $(offered 1) $(offered 2)"
		[ "$cur" = "$prev" ] && break
		[ $SECONDS -lt $end ] || fail "counters do not settle"
		prev=$cur
		sleep 0.1
	done
	read -r OFF0 OFF1 OFF2 <<<"$cur"
	OFF0=$((OFF0 - b0)); OFF1=$((OFF1 - b1)); OFF2=$((OFF2 - b2))
	echo "from port $2 to $3: sent $SENT, offered to ports 0/1/2: $OFF0 $OFF1 $OFF2"
}

# mono: seconds since boot (steady, unlike the wall clock), 10 ms steps.
mono() {
	local up _
	read -r up _ </proc/uptime
	echo "$up"
}

# elapsed T0: seconds since T0 (a mono).
elapsed() {
	awk -v a="$1" -v b="$(mono)" 'BEGIN { printf "%.2f\n", b - a }'
}

# fdb_macs: how many MACs the last table says the switch knows.
fdb_macs() {
	grep '^now fdb:' "$DIR/sw.log" | tail -n 1 | awk '{ print $3 }'
}

# Learn mode over three vhost ports (MACs ...:10, :11, :12): broadcast and
# unknown unicast flood to every other port and never back; unicast to a
# learned MAC reaches only its port; after --aging seconds of silence the
# MAC is forgotten and floods again.
#
# Aging is checked against the clock, not slept for: an entry counts in
# whole seconds of CLOCK_MONOTONIC_COARSE, so one refreshed at time L is
# gone no earlier than L + AGING - 1 (minus a tick; 1.1 s here) and, being
# judged when the table is read, at once after L + AGING. The test polls
# (bounded) until both are gone and fails when a table read back before
# the earliest legal time already missed them. AGING is 10 s, not less:
# :11 is taught in round 3 and must live through round 4 and the table
# after it (about 2.5 s on an idle machine; 10 s leaves a loaded one 3x).
case_learn3() {
	local aging=10 t3 t4 t deadline
	start_switch --aging $aging --workers "$SW_CPU" --vhost "$DIR/s0" --vhost "$DIR/s1" --vhost "$DIR/s2"
	grep -q 'learn mode' "$DIR/sw.log" || fail "learn is not the default mode"
	start_testpmd "$(vdev 0 1 split 1 0),mac=02:00:00:00:00:10" \
		"$(vdev 1 1 packed 1 0),mac=02:00:00:00:00:11" \
		"$(vdev 2 1 split 1 0),mac=02:00:00:00:00:12" -- \
		--forward-mode=txonly --portmask=0x1 --txpkts=64
	learn_round 0x1 0 ff:ff:ff:ff:ff:ff
	[ "$OFF0" -eq 0 ] && [ "$OFF1" -eq "$SENT" ] && [ "$OFF2" -eq "$SENT" ] || fail "broadcast"
	learn_round 0x1 0 02:00:00:00:00:99
	[ "$OFF0" -eq 0 ] && [ "$OFF1" -eq "$SENT" ] && [ "$OFF2" -eq "$SENT" ] || fail "unknown unicast"
	t3=$(mono) # :11 is refreshed no earlier than this
	learn_round 0x2 1 ff:ff:ff:ff:ff:ff # teaches :11 on port 1
	[ "$OFF0" -eq "$SENT" ] && [ "$OFF1" -eq 0 ] && [ "$OFF2" -eq "$SENT" ] || fail "broadcast from 1"
	t4=$(mono) # :10's last refresh is no earlier than this
	learn_round 0x1 0 02:00:00:00:00:11
	[ "$OFF0" -eq 0 ] && [ "$OFF1" -eq "$SENT" ] && [ "$OFF2" -eq 0 ] ||
		fail "learned unicast flooded ($(elapsed "$t3") s after :11 was taught, aging $aging s)"
	sw_table
	[ "$(fdb_macs)" -eq 2 ] ||
		fail "want 2 MACs learned, $(fdb_macs) ($(elapsed "$t3") s after :11 was taught)"
	# both age out: not before the earliest legal time, and within a
	# bounded wait after the latest
	deadline=$((SECONDS + aging + 20))
	while :; do
		sw_table
		t=$(elapsed "$t4")
		[ "$(fdb_macs)" -eq 0 ] && break
		[ $SECONDS -lt $deadline ] || fail "MACs not aged $t s after round 4 began (aging $aging s)"
		sleep 0.25 # poll interval
	done
	awk -v t="$t" -v a="$aging" 'BEGIN { exit !(t >= a - 1.1) }' ||
		fail "MACs aged after $t s, before the $aging s of --aging"
	echo "MACs aged out; table read $t s after round 4 began (aging $aging s)"
	learn_round 0x1 0 02:00:00:00:00:11
	[ "$OFF1" -eq "$SENT" ] && [ "$OFF2" -eq "$SENT" ] || fail "aged MAC did not flood"
	tp_quit
	stop_switch
	echo "PASS: learn3"
}

# Learn mode with an ethdev port: vhost port 0 (testpmd, MAC :10) and a
# net_ring0 port (what goes in comes back). A frame to an unknown MAC
# floods into the ring, comes back out of it (now :10 is learned on the
# ring port) and floods to port 0 only, never back into the ring: each
# frame crosses vhost -> ethdev and ethdev -> vhost exactly once.
case_learn_ring() {
	SW_EAL=("${EAL_QUIET[@]}" --vdev net_ring0 --)
	start_switch --workers "$SW_CPU" --vhost "$DIR/s0"
	start_testpmd "$(vdev 0 1 split 1 0),mac=02:00:00:00:00:10" -- \
		--forward-mode=txonly --txpkts=64
	learn_round 0x1 0 02:00:00:00:00:99
	local into outof
	into=$(sw_now rx-pkts 1)
	outof=$(sw_now tx-pkts 1)
	echo "into the ring $into, out of it $outof"
	[ "$OFF1" -eq "$SENT" ] && [ "$into" -eq "$OFF1" ] || fail "the ring port got $into of $SENT"
	[ "$outof" -eq "$into" ] || fail "$outof of $into came back out of the ring"
	[ "$OFF0" -eq "$SENT" ] || fail "port 0 was offered $OFF0 of $SENT"
	tp_quit
	stop_switch
	[ "$(sw_final drop-bad)" -eq 0 ] && [ "$(sw_final drop-no-dst)" -eq 0 ] || fail "drops"
	echo "PASS: learn-ring"
}

# expect_err PATTERN ARGS...: exit 2, one line on stderr matching PATTERN,
# no socket left.
expect_err() {
	local pat=$1
	shift
	expect_usage "$@"
	grep -qE "$pat" "$DIR/err" || fail "'$*': message does not match '$pat': $(cat "$DIR/err")"
}

case_badconfig() {
	local c=$DIR/c.conf
	printf 'vhost %s\nmode learn\nfrobnicate 1\n' "$DIR/s0" >"$c"
	expect_err "c.conf:3: unknown option 'frobnicate'" --config "$c"
	printf '# a comment\n\nvhost %s   # port 0\nmode mesh\n' "$DIR/s0" >"$c"
	expect_err "c.conf:4: --mode: 'mesh'" --config "$c"
	printf 'vhost %s\nstats-interval\n' "$DIR/s0" >"$c"
	expect_err "c.conf:2: stats-interval needs a value" --config "$c"
	printf 'vhost %s,queues=99\n' "$DIR/s0" >"$c"
	expect_err "c.conf:1: --vhost queues" --config "$c"
	printf 'aging 0\nvhost %s\n' "$DIR/s0" >"$c"
	expect_err "c.conf:1: --aging" --config "$c"
	printf 'help\n' >"$c"
	expect_err "c.conf:1: unknown option 'help'" --config "$c"
	expect_err "cannot read $DIR/none" --config "$DIR/none"
	printf 'vhost %s\n' "$DIR/s0" >"$c"
	expect_err "given twice" --config "$c" --vhost "$DIR/s0"
	# after the EAL probed: three ports cannot be cross-connected
	expect_err "xconnect needs an even number of ports, got 3 \(2 vhost \+ 1 ethdev\)" \
		"${EAL_QUIET[@]}" --vdev net_ring0 -- --mode xconnect --vhost "$DIR/s0" --vhost "$DIR/s1"
	# an ethdev port that cannot be set up (4 MB of EAL memory: no room
	# for its mbufs): its line, exit 2, no socket
	expect_err "cannot create the mbuf pool" --no-pci --no-huge -m 4 --no-shconf --no-telemetry \
		--log-level=lib.eal:error --vdev net_ring0 -- --vhost "$DIR/s0"
	# a good file; the command line overrides its mode and adds a port
	printf '# vre-switch config\nmode xconnect\nvhost %s\n\nvhost %s\nworkers %s\n' \
		"$DIR/s0" "$DIR/s1" "$SW_CPU" >"$c"
	start_switch --config "$c" --mode loopback --vhost "$DIR/s2"
	grep -q 'ready: 3 port(s) (3 vhost, 0 ethdev), loopback mode' "$DIR/sw.log" ||
		fail "config not applied: $(grep ready "$DIR/sw.log")"
	[ -S "$DIR/s0" ] && [ -S "$DIR/s1" ] && [ -S "$DIR/s2" ] || fail "sockets missing"
	stop_switch
	echo "PASS: badconfig"
}

# The switch is killed (-9) under traffic and started again; testpmd, the
# listening side (virtio-user server=1), is not restarted. The new switch
# finds it (client mode, back-off), resumes from the ring's used index, and
# traffic flows again within 2 s of the new switch being ready.
case_restart() { # case_restart INORDER
	# virtio-user re-drives a reconnecting backend from its link-state
	# interrupt handler: keep it on here. With IN_ORDER the restarted
	# switch must not skip chains the dead one took (vre_vq_resync_to_used)
	TP_LSC_OPT=
	start_switch --mode loopback --workers "$SW_CPU" --vhost "$DIR/s0,client"
	start_testpmd "$(vdev 0 1 split 1 "$1"),server=1" -- --txpkts=64
	wait_for 20 "$DIR/sw.log" 'memory table' || fail "first switch got no memory table"
	tp_cmd "start tx_first"
	wait_for 10 "$DIR/sw.log" 'tx-pkts [1-9]' || fail "no traffic through the first switch"
	kill -KILL "$SW_PID"
	wait "$SW_PID" 2>/dev/null
	SW_PID=
	mv "$DIR/sw.log" "$DIR/sw1.log"
	start_switch --mode loopback --workers "$SW_CPU" --vhost "$DIR/s0,client"
	local ready=$SECONDS
	wait_for 10 "$DIR/sw.log" 'stats port 0: rx-pkts [1-9]' ||
		fail "no traffic within 10 s of the restart"
	echo "traffic resumed within $((SECONDS - ready)) s of the restart"
	[ $((SECONDS - ready)) -le 2 ] || fail "traffic took $((SECONDS - ready)) s to resume"
	tp_cmd "stop"
	wait_for 10 "$DIR/tp.log" 'Accumulated forward statistics' || fail "no stats after stop"
	tp_quit
	stop_switch
	[ "$(sw_final drops)" -eq 0 ] || fail "drops after the restart: $(grep '^final port' "$DIR/sw.log")"
	[ "$(sw_final tx-pkts)" -gt 1000 ] || fail "the restarted switch carried $(sw_final tx-pkts) packets"
	echo "PASS: restart (in_order=$1)"
}

[ -x "$SWITCH" ] || { echo "no switch binary at $SWITCH"; exit 77; }
command -v "$TESTPMD" >/dev/null || { echo "SKIP: $TESTPMD not installed"; exit 77; }

case $CASE in
traffic:*) case_traffic "${CASE#traffic:}" ;;
idle) case_idle ;;
nopeer) case_nopeer ;;
reconnect) case_reconnect ;;
flap) case_flap ;;
learn) case_learn ;;
badopts) case_badopts ;;
ring) case_ring ;;
ring-mq) case_ring_mq xconnect ;;
learn-ring-mq) case_ring_mq learn ;;
learn3) case_learn3 ;;
learn-ring) case_learn_ring ;;
badconfig) case_badconfig ;;
restart) case_restart 0 ;;
restart-inorder) case_restart 1 ;;
*) fail "unknown case $CASE" ;;
esac
