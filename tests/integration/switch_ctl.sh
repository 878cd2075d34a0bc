#!/usr/bin/env bash
# Integration: vre-switch's control channel and runtime ports.
#
#   switch_ctl.sh SWITCH VRE_CTL CTL_GUESTS CASE
#
# CASE:
#   basic    every vre-ctl command and its exit codes, JSON-RPC errors,
#            socket permissions (--ctl-group, --vhost group=/mode=), ports
#            from a config file, ethdev hot-plug (net_ring), DPDK telemetry
#            read by dpdk-telemetry.py, journald priorities (JOURNAL_STREAM)
#   hotadd   testpmd forwards between ports 0 and 1 (learn mode, a reflector
#            on each port: macswap with --port-topology=loop); port 2 is
#            added with vre-ctl, a second testpmd attaches to it and
#            exchanges frames with port 0; port 2 is removed. Exact loss
#            accounting over the window (as scripts/soak: frames taken from
#            the ports = frames delivered + drops, counters settled at quiet
#            points): 0 lost, 0 dropped; fds and mappings back to the values
#            before the port-add
#   ports1000  1,000 vhost ports added with vre-ctl (none polled), listed;
#            (after the warm-up's few frames, no cycles-per-packet figure);
#            64 of them get a test guest (ctl-guests learn: flooding and
#            learning with every frame checked); all removed; fds back
#   churn    ctl-guests churn: 1,000 port-add/port-del cycles with a guest
#            attached each time; flat fds, mappings and heap (scripts/test
#            runs it against the ASan+UBSan switch too)
#   ethmq    learn mode on two workers, guests on ports 0 and 1 and a net_tap
#            ethdev port with two queue pairs (in a network namespace of
#            its own; needs root): ctl-guests ethmq checks both RX queues
#            used, each worker's frames on its own TX queue (the PMD's
#            per-queue counters), each packet counted once by the workers,
#            port-del of the tap under traffic (scripts/test runs it
#            against the ASan+UBSan switch too)
#   hostile  tests/integration/ctl_hostile.py against the control socket
#            (malformed JSON, huge and stalled requests, 200 parallel
#            clients, clients that do not read) while testpmd forwards
#            between ports 0 and 1: no drop, the switch keeps answering
#
# Each run lives in its own temp dir (kept when KEEP_DIR is set); every wait
# is bounded; every process started here is killed and reaped on exit.
set -uo pipefail

SWITCH=$1
VRECTL=$2
GUESTS=$3
CASE=$4
TESTPMD=${TESTPMD:-dpdk-testpmd}
HERE=$(cd "$(dirname "$0")" && pwd)
NCPU=$(nproc)
SW_CPU=$((NCPU - 1))
TP_CPU=0
DIR=$(mktemp -d /tmp/vre-ctl.XXXXXX)
chmod 711 "$DIR"
PREFIX=vre-ctlt$$
SW_PID= SW2_PID= TP_PID= TP_FD= TPB_PID= TPB_FD=
NS= PRE=() # ethmq: the switch runs in network namespace NS (PRE: the prefix)

. "$HERE/../../scripts/lib/proc.sh"

fail() {
	echo "FAIL: $*"
	echo "--- switch log (tail)"; grep -v '^stats ' "$DIR/sw.log" 2>/dev/null | tail -n 25
	echo "--- testpmd log (tail)"; tail -n 15 "$DIR/tp.log" 2>/dev/null
	exit 1
}

cleanup() {
	[ -n "$TP_FD" ] && exec {TP_FD}>&- 2>/dev/null
	[ -n "$TPB_FD" ] && exec {TPB_FD}>&- 2>/dev/null
	kill_wait "$TPB_PID"
	kill_wait "$TP_PID"
	kill_wait "$SW2_PID"
	kill_wait "$SW_PID"
	rm -rf "/var/run/dpdk/$PREFIX" "/var/run/dpdk/$PREFIX-b"
	[ -z "$NS" ] || ip netns del "$NS"
	[ -n "${KEEP_DIR:-}" ] && { echo "kept $DIR"; return; }
	rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

EAL=(--no-pci --no-huge -m 256 --no-shconf --file-prefix "$PREFIX" --log-level=lib.eal:error)
CTL=$DIR/ctl.sock

# start_switch ARGS...: with a telemetry prefix of its own, the control
# socket in DIR, waits for the ready line.
start_switch() {
	# emptied here, not by the child's redirection: the child may open it
	# after wait_for has already seen the previous switch's ready line, and
	# a signal sent then finds the new switch before it blocks its signals
	: >"$DIR/sw.log"
	"${PRE[@]}" "$SWITCH" "${EAL[@]}" -- --ctl "$CTL" --workers "$SW_CPU" "$@" >"$DIR/sw.log" 2>&1 &
	SW_PID=$!
	wait_for 20 "$DIR/sw.log" '^vre-switch: ready' || fail "switch did not come up"
}

stop_switch() {
	kill -INT "$SW_PID" 2>/dev/null
	wait_for 20 "$DIR/sw.log" '^final worker' || fail "switch did not stop on SIGINT"
	wait "$SW_PID"
	local rc=$?
	SW_PID=
	[ $rc -eq 0 ] || fail "switch exited with $rc"
}

# vctl ARGS...: vre-ctl on our socket; output in $DIR/out, exit code in RC.
vctl() {
	"$VRECTL" --ctl "$CTL" "$@" >"$DIR/out" 2>"$DIR/err"
	RC=$?
}

# ok ARGS...: vre-ctl must succeed.
ok() {
	vctl "$@"
	[ $RC -eq 0 ] || fail "vre-ctl $*: exit $RC: $(cat "$DIR/err")"
}

# refused CODE ARGS...: vre-ctl must exit 1 with JSON-RPC error CODE.
refused() {
	local code=$1
	shift
	vctl "$@"
	[ $RC -eq 1 ] || fail "vre-ctl $*: exit $RC, want 1 (refused): $(cat "$DIR/out" "$DIR/err")"
	grep -q "(code $code)" "$DIR/err" || fail "vre-ctl $*: want code $code: $(cat "$DIR/err")"
	echo "ok: refused: $* -> $(cat "$DIR/err")"
}

# jq_py EXPR: evaluates a Python expression over the JSON in $DIR/out (as d).
jq_py() {
	python3 -c "import json, sys; d = json.load(open(sys.argv[1])); print($1)" "$DIR/out"
}

# check_py EXPR MSG: fails unless the Python expression over $DIR/out is true.
check_py() {
	[ "$(jq_py "$1")" = True ] || fail "$2: $(head -c 600 "$DIR/out")"
}

# ---- basic ----

case_basic() {
	local c=$DIR/c.conf
	for b in "$SWITCH" "$VRECTL"; do
		"$b" --version | grep -qE '^vre-(switch|ctl) [0-9]+\.[0-9]+\.[0-9]+$' ||
			fail "$b --version: $("$b" --version)"
	done
	start_switch --ctl-group nogroup
	[ "$(stat -c '%a %G' "$CTL")" = "660 nogroup" ] ||
		fail "control socket: $(stat -c '%a %U %G' "$CTL"), want 660 nogroup"
	ok version
	grep -q '^vre-ctl .*; vre-switch .*learn mode, 0 port' "$DIR/out" || fail "version: $(cat "$DIR/out")"
	ok --json port-list
	check_py 'd["ports"] == []' "a new switch has no port"
	# vhost ports, with a name, queues, socket permissions
	ok port-add vhost "$DIR/s0" name=vm0
	grep -q '^port 0 (vm0) added' "$DIR/out" || fail "port-add: $(cat "$DIR/out")"
	ok port-add vhost "$DIR/s1" queues=2 group=nogroup mode=0600 mtu=9000 offloads=off
	[ "$(stat -c '%a %G' "$DIR/s1")" = "600 nogroup" ] ||
		fail "s1: $(stat -c '%a %U %G' "$DIR/s1"), want 600 nogroup"
	refused -32002 port-add vhost "$DIR/s0"
	refused -32002 port-add vhost "$DIR/s9" name=vm0
	refused -32602 port-add vhost "$DIR/s9" name=12
	refused -32602 port-add vhost "$DIR/s9" group=no-such-group-here
	# an ethdev port, hot-plugged
	ok port-add ethdev net_ring0
	grep -q '^port 2 (net_ring0) added' "$DIR/out" || fail "ethdev port-add: $(cat "$DIR/out")"
	refused -32002 port-add ethdev net_ring0
	refused -32000 port-add ethdev net_bogus0
	ok --json port-list
	check_py '[(p["port"], p["name"], p["kind"], p["state"]) for p in d["ports"]] == [(0, "vm0", "vhost", "listening"), (1, "s1", "vhost", "listening"), (2, "net_ring0", "ethdev", "up")]' "port-list"
	ok port-list
	cat "$DIR/out"
	ok --json port-show vm0
	check_py 'd["port"] == 0 and d["connection"]["connected"] is False and [q["role"] for q in d["queue_list"]] == ["rx", "tx"] and d["mtu"] == 1500 and d["offloads"] is True' "port-show vm0"
	ok --json port-show 1
	check_py '[q["role"] for q in d["queue_list"]] == ["rx", "tx", "rx", "tx", "ctrl"] and d["socket"]["mode"] == "0600" and d["mtu"] == 9000 and d["offloads"] is False' "port-show 1"
	ok --json port-show net_ring0
	check_py 'd["kind"] == "ethdev" and d["device"] == "net_ring0" and d["link"]["up"]' "port-show net_ring0"
	refused -32001 port-show 9
	ok --json stats
	check_py 'len(d["ports"]) == 3 and d["mode"] == "learn" and len(d["workers"]) == 1' "stats"
	ok stats --clear
	ok --json fdb-show
	check_py 'd["count"] == 0' "fdb-show"
	ok fdb-flush
	ok --json worker-list
	# no frontend: only the ethdev port's RX is polled
	check_py 'd["workers"][0]["items"] == 1 and d["workers"][0]["queues"] == [{"port": 2, "queue": 1}]' "worker-list"
	# learn mode spreads queues too: a pin moves a pair (here to where it is)
	ok rxq-pin 0:0 0
	refused -32602 rxq-pin 0:0 7
	ok rebalance
	grep -q '^0 poll item' "$DIR/out" || fail "rebalance with one worker: $(cat "$DIR/out")"
	ok log-level debug
	ok log-level
	grep -q 'log level debug' "$DIR/out" || fail "log-level: $(cat "$DIR/out")"
	wait_for 5 "$DIR/sw.log" 'vre info switch: log level debug' || fail "no log line for log-level"
	ok log-level info
	refused -32602 log-level loud
	ok methods
	grep -q '^port-add' "$DIR/out" || fail "methods"
	refused -32601 call no-such-method
	refused -32602 call port-add '{"kind": "vhost"}'
	refused -32602 call port-add '{"kind": "vhost", "path": 5}'
	refused -32602 call port-list '{"verbose": true}'
	refused -32602 call port-add '{"kind": "tunnel", "path": "x"}'
	# DPDK telemetry: DPDK's own client reads the switch's counters
	printf '/vre/info\n/vre/ports\n/vre/port,1\n/vre/workers\n' |
		timeout 20 dpdk-telemetry.py -f "$PREFIX" >"$DIR/tel.out" 2>&1 ||
		fail "dpdk-telemetry.py: $(cat "$DIR/tel.out")"
	python3 - "$DIR/tel.out" <<'PY' || fail "telemetry: $(cat "$DIR/tel.out")"
import json, sys
r = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{')]
assert r[0]["/vre/info"]["ports"] == 3 and r[0]["/vre/info"]["mode"] == "learn", r[0]
assert r[1]["/vre/ports"] == [0, 1, 2], r[1]
assert r[2]["/vre/port"]["name"] == "s1" and r[2]["/vre/port"]["rx_pkts"] == 0, r[2]
w = r[3]["/vre/workers"]
assert len(w["cpu"]) == 1 and len(w["busy_cycles"]) == 1 and w["items"] == [1], r[3]
print("telemetry ok:", r[0])
PY
	# removal: by name, by number; the number is free again, the device gone
	ok port-del vm0
	ok port-del 2
	refused -32001 port-del 2
	[ ! -e "$DIR/s0" ] || fail "port-del left its socket"
	ok port-add ethdev net_ring0 name=again
	grep -q '^port 0 (again) added' "$DIR/out" || fail "re-added: $(cat "$DIR/out")"
	# owner= (QEMU's user), through the command-line client
	ok port-add vhost "$DIR/s3" name=own owner=nobody mode=0640
	[ "$(stat -c '%a %U' "$DIR/s3")" = "640 nobody" ] ||
		fail "s3: $(stat -c '%a %U %G' "$DIR/s3"), want 640 nobody"
	ok port-del own
	# vre-ctl's own errors
	"$VRECTL" --ctl "$DIR/none.sock" version 2>/dev/null; [ $? -eq 3 ] || fail "no socket: want exit 3"
	vctl bogus; [ $RC -eq 2 ] || fail "bad command: exit $RC, want 2"
	vctl; [ $RC -eq 2 ] || fail "no command: exit $RC, want 2"
	vctl port-del; [ $RC -eq 2 ] || fail "port-del without PORT: exit $RC, want 2"
	# a second switch on the same control socket is refused
	"$SWITCH" "${EAL[@]}" -- --ctl "$CTL" >"$DIR/sw2.log" 2>&1 </dev/null
	[ $? -eq 2 ] && grep -q 'another process is listening' "$DIR/sw2.log" ||
		fail "second switch on a live socket: $(cat "$DIR/sw2.log")"
	kill -TERM "$SW_PID"
	wait_for 20 "$DIR/sw.log" '^final worker' || fail "no clean stop on SIGTERM"
	wait "$SW_PID" || fail "switch exit code $? on SIGTERM"
	SW_PID=
	[ -z "$(find "$DIR" -type s)" ] || fail "sockets left: $(find "$DIR" -type s)"
	# ports from a config file take the same path (names, permissions)
	printf 'vhost %s,name=cfg0,mode=0640\nethdev net_ring1\nworkers %s\n' "$DIR/c0" "$SW_CPU" >"$c"
	: >"$DIR/sw.log" # (as in start_switch)
	"$SWITCH" "${EAL[@]}" -- --ctl "$CTL" --config "$c" >"$DIR/sw.log" 2>&1 &
	SW_PID=$!
	wait_for 20 "$DIR/sw.log" '^vre-switch: ready' || fail "config switch did not come up"
	ok --json port-list
	check_py '[(p["port"], p["name"]) for p in d["ports"]] == [(0, "cfg0"), (1, "net_ring1")]' "config ports"
	[ "$(stat -c '%a' "$DIR/c0")" = 640 ] || fail "c0 mode $(stat -c '%a' "$DIR/c0")"
	stop_switch
	# journald: with stderr the journal (JOURNAL_STREAM names it) lines
	# carry the priority
	: >"$DIR/j.log"
	: >"$DIR/sw.log" # (as in start_switch)
	JOURNAL_STREAM=$(stat -c '%d:%i' "$DIR/j.log") "$SWITCH" "${EAL[@]}" -- --ctl "$CTL" \
		--workers "$SW_CPU" --log-level debug >"$DIR/sw.log" 2>>"$DIR/j.log" &
	SW_PID=$!
	wait_for 20 "$DIR/sw.log" '^vre-switch: ready' || fail "journal switch did not come up"
	stop_switch
	grep -q '^<6>vre info worker: ' "$DIR/j.log" && grep -q '^<7>vre debug ' "$DIR/j.log" ||
		fail "no journal priorities: $(head -n 3 "$DIR/j.log")"
	! grep -qv '^<[0-9]>' "$DIR/j.log" || fail "a line without priority: $(grep -v '^<[0-9]>' "$DIR/j.log" | head -n 2)"
	echo "PASS: basic"
}

# ---- testpmd helpers (as switch_testpmd.sh and scripts/soak) ----

# tp_start NAME VDEVS... -- APP...: interactive testpmd on CPU 0, commands
# through a FIFO; sets TP_PID/TP_FD (or TPB_* for NAME b).
tp_start() {
	local name=$1 eal=() app=() pid fd
	shift
	while [ $# -gt 0 ] && [ "$1" != "--" ]; do eal+=("$1"); shift; done
	shift
	app=("$@")
	mkfifo "$DIR/$name.in"
	stdbuf -o0 -e0 "$TESTPMD" --lcores "0@$TP_CPU,1@$TP_CPU" --no-pci --no-huge -m 256 \
		--no-shconf --file-prefix "$PREFIX-$name" "${eal[@]}" -- -i --nb-cores=1 \
		--no-lsc-interrupt --total-num-mbufs=8192 --txpkts=64 "${app[@]}" \
		<"$DIR/$name.in" >"$DIR/$name.log" 2>&1 &
	pid=$!
	exec {fd}>"$DIR/$name.in"
	if [ "$name" = tp ]; then TP_PID=$pid TP_FD=$fd; else TPB_PID=$pid TPB_FD=$fd; fi
	wait_for 30 "$DIR/$name.log" '^testpmd> ' || fail "testpmd $name did not reach its prompt"
}

tp_cmd() { # NAME CMD
	local fd=$TP_FD
	[ "$1" = tp ] || fd=$TPB_FD
	echo "$2" >&"$fd" || fail "testpmd $1 is gone ($2)"
}

# tp_total NAME FIELD: from NAME's last "Accumulated forward statistics".
tp_total() {
	awk -v f="$2:" '/Accumulated forward statistics/ { blk = 1; next }
		blk && /\+\+\+\+\+\+\+\+\+\+\+\+\+\+\+\+\+\+\+\+\+\+\+\+\+\+\+\+$/ { blk = 0 }
		blk { for (i = 1; i < NF; i++) if ($i == f) v = $(i + 1) }
		END { printf "%.0f\n", v }' "$DIR/$1.log"
}

# tp_run NAME START: starts forwarding (round N of NAME).
tp_run() {
	local n
	n=$(($(grep -c 'packet forwarding - ports' "$DIR/$1.log") + 1))
	tp_cmd "$1" "$2"
	wait_count 15 "$DIR/$1.log" 'packet forwarding - ports' "$n" || fail "$1: forwarding did not start"
}

tp_stop() {
	local n
	n=$(($(grep -c 'Accumulated forward statistics' "$DIR/$1.log") + 1))
	tp_cmd "$1" stop
	wait_count 15 "$DIR/$1.log" 'Accumulated forward statistics' "$n" || fail "$1: no stats after stop"
	wait_count 10 "$DIR/$1.log" '^Done\.' "$n" || fail "$1: stop did not finish"
}

tp_quit() { # NAME
	local pid=$TP_PID
	[ "$1" = tp ] || pid=$TPB_PID
	tp_cmd "$1" quit
	if [ "$1" = tp ]; then exec {TP_FD}>&-; TP_FD=; else exec {TPB_FD}>&-; TPB_FD=; fi
	local end=$((SECONDS + 20))
	while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $end ]; do sleep 0.1; done
	kill_wait "$pid"
	if [ "$1" = tp ]; then TP_PID=; else TPB_PID=; fi
}

JSON=$DIR/st.json
# counters PORTS...: "taken delivered drops" summed over the ports, from
# the last --stats-json write.
counters() {
	python3 - "$JSON" "$@" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
want = {int(p) for p in sys.argv[2:]}
t = r = x = 0
for p in d["ports"]:
    if p["port"] in want:
        t += p["tx_pkts"]; r += p["rx_pkts"]; x += p["drops"]
print(t, r, x)
PY
}

# settled PORTS...: counters once two --stats-json writes in a row agree.
settled() {
	local a b ino end=$((SECONDS + 30))
	a=
	while :; do
		ino=$(stat -c %i "$JSON" 2>/dev/null)
		while [ "$(stat -c %i "$JSON" 2>/dev/null)" = "$ino" ]; do
			[ $SECONDS -lt $end ] || fail "the switch stopped writing $JSON"
			sleep 0.05
		done
		b=$(counters "$@")
		[ "$a" = "$b" ] && { echo "$b"; return; }
		[ $SECONDS -lt $end ] || fail "counters do not settle"
		a=$b
	done
}

res() { echo "$(ls "/proc/$SW_PID/fd" | wc -l) $(wc -l <"/proc/$SW_PID/maps")"; }

# ---- hotadd ----

MAC0=02:00:00:00:00:10 MAC1=02:00:00:00:00:11 MAC2=02:00:00:00:00:12

case_hotadd() {
	local q0 q1 r0 r1 t0 d0 x0 t1 d1 x1 t2 d2 x2 lost
	start_switch --stats-interval 1 --stats-json "$JSON"
	ok port-add vhost "$DIR/s0"
	ok port-add vhost "$DIR/s1"
	# A: each port sends back what it gets, MACs swapped (a reflector):
	# port 0 and 1 ping-pong (tx_first: 4 bursts of 32 per port)
	tp_start tp "--vdev=net_virtio_user0,path=$DIR/s0,mac=$MAC0" \
		"--vdev=net_virtio_user1,path=$DIR/s1,mac=$MAC1" -- \
		--forward-mode=macswap --port-topology=loop --eth-peer=0,$MAC1 --eth-peer=1,$MAC0
	tp_run tp "start tx_first 4"
	sleep 2 # warm-up traffic, not synchronisation
	# quiet point: A stopped, counters settled, resources counted
	tp_stop tp
	read -r t0 d0 x0 <<<"$(settled 0 1)"
	q0=$(res)
	echo "quiet point 0: taken $t0 delivered $d0 drops $x0; fds/maps $q0"
	# (testpmd's start flushes its RX queues: a new population)
	tp_run tp "start tx_first 4"
	# port 2 added under traffic; B ping-pongs with port 0 (A's port 0
	# reflects B's frames back to B)
	ok port-add vhost "$DIR/s2" name=hot
	grep -q '^port 2 (hot) added' "$DIR/out" || fail "port-add: $(cat "$DIR/out")"
	tp_start b "--vdev=net_virtio_user2,path=$DIR/s2,mac=$MAC2" -- \
		--forward-mode=macswap --eth-peer=0,$MAC0
	tp_run b "start tx_first"
	sleep 2 # 0<->2 traffic, not synchronisation
	tp_stop b
	r0=$(tp_total b RX-packets)
	r1=$(tp_total b TX-packets)
	echo "testpmd B on port 2: sent $r1, received $r0 (from port 0)"
	# (both testpmds share CPU 0: the ping-pong is slow, but it must flow)
	[ "$r0" -gt 100 ] && [ "$r1" -gt 100 ] || fail "too little 0<->2 traffic: B sent $r1 got $r0"
	# what is still in flight between 0 and 2 comes to rest in B's RX ring
	read -r t2 d2 x2 <<<"$(settled 2)"
	tp_quit b
	wait_for 10 "$DIR/sw.log" "s2: frontend disconnected" || fail "B's disconnect not seen"
	ok --json port-show hot
	read -r t2 d2 x2 <<<"$(jq_py '"%d %d %d" % (d["counters"]["tx_pkts"], d["counters"]["rx_pkts"], d["counters"]["drops"])')"
	ok port-del hot
	[ ! -e "$DIR/s2" ] || fail "port-del left the socket"
	sleep 1 # traffic on 0<->1 after the removal, not synchronisation
	tp_stop tp
	read -r t1 d1 x1 <<<"$(settled 0 1)"
	q1=$(res)
	lost=$(((t1 - t0) + t2 - (d1 - d0) - d2 - (x1 - x0) - x2))
	echo "window: ports 0,1 took $((t1 - t0)) delivered $((d1 - d0)) dropped $((x1 - x0)); port 2 took $t2 delivered $d2 dropped $x2; lost $lost"
	echo "quiet point 1: fds/maps $q1 (before the port-add: $q0)"
	[ "$lost" -eq 0 ] || fail "$lost frames lost"
	[ $((x1 - x0)) -eq 0 ] && [ "$x2" -eq 0 ] || fail "drops: ports 0,1 $((x1 - x0)), port 2 $x2"
	[ "$(tp_total tp RX-dropped)" -eq 0 ] && [ "$(tp_total tp TX-dropped)" -eq 0 ] || fail "testpmd A dropped frames"
	# A's last round (since quiet point 0) is exactly what ports 0,1 took
	[ "$(tp_total tp TX-packets)" -eq $((t1 - t0)) ] ||
		fail "testpmd A sent $(tp_total tp TX-packets), the switch took $((t1 - t0)) from ports 0,1"
	[ "$q1" = "$q0" ] || fail "fds/maps $q0 before the port-add, $q1 after the port-del"
	tp_quit tp
	stop_switch
	echo "PASS: hotadd"
}

# ---- 1,000 ports ----

case_ports1000() {
	local n=${PORTS:-1000} g=64 r0 r1 t0
	start_switch
	# the baseline after a warm-up: the first port-add and the first
	# frontends give the admin and control threads their malloc arenas
	# (two mappings each), once for the process's life
	for i in 0 1; do ok port-add vhost "$DIR/w$i.sock"; done
	"$GUESTS" learn "$CTL" "$DIR/w0.sock" "$DIR/w1.sock" >/dev/null || fail "warm-up guests"
	# a handful of frames: too few for a cycles-per-packet figure
	ok --json worker-list
	check_py '0 < d["workers"][0]["packets"] < 1000 and d["workers"][0]["cycles_per_pkt"] is None' \
		"cycles per packet over a few packets"
	ok worker-list
	awk 'NR == 2 { bad = $6 != "-" } END { exit bad }' "$DIR/out" ||
		fail "worker-list table over a few packets: $(cat "$DIR/out")"
	ok port-list
	for i in 0 1; do ok port-del "$i"; done
	ok --json process
	r0=$(jq_py '"%d %d" % (d["fds"], d["maps"])')
	t0=$SECONDS
	for i in $(seq 0 $((n - 1))); do
		vctl port-add vhost "$DIR/p$i.sock" || true
		[ $RC -eq 0 ] || fail "port-add $i: $(cat "$DIR/err")"
	done
	echo "$n ports added with vre-ctl in $((SECONDS - t0)) s"
	ok --json port-list
	check_py "len(d['ports']) == $n and [p['port'] for p in d['ports']] == list(range($n))" "port-list of $n"
	ok --json worker-list
	check_py 'd["workers"][0]["items"] == 0' "idle ports are polled"
	local socks=()
	for i in $(seq 0 $((g - 1))); do socks+=("$DIR/p$((i * (n / g))).sock"); done
	"$GUESTS" learn "$CTL" "${socks[@]}" || fail "learning and flooding across $g ports"
	t0=$SECONDS
	for i in $(seq 0 $((n - 1))); do
		vctl port-del "$i" || true
		[ $RC -eq 0 ] || fail "port-del $i: $(cat "$DIR/err")"
	done
	echo "$n ports removed in $((SECONDS - t0)) s"
	ok --json port-list
	check_py 'd["ports"] == []' "ports left"
	ok --json process
	r1=$(jq_py '"%d %d" % (d["fds"], d["maps"])')
	echo "fds/maps: $r0 with no port, $r1 after $n added and removed"
	[ "$r1" = "$r0" ] || fail "fds/maps $r0 -> $r1"
	stop_switch
	echo "PASS: ports1000"
}

# ---- learn mode on two workers ----

# Four vhost ports spread round-robin over two workers (0 and 2 on the
# first, 1 and 3 on the second), four test guests: flooding, unicast, a MAC
# moving between ports, fdb-flush between frames and port-del of a port
# another worker forwards to (ctl-guests learnmw; every frame's bytes
# checked); both workers carried packets, and the switch stops cleanly.
case_learnmw() {
	start_switch --workers "0-$SW_CPU"
	grep -q 'learn mode, 2 worker' "$DIR/sw.log" || fail "want learn mode on 2 workers"
	for i in 0 1 2 3; do ok port-add vhost "$DIR/m$i.sock"; done
	"$GUESTS" learnmw "$CTL" "$DIR/m0.sock" "$DIR/m1.sock" "$DIR/m2.sock" "$DIR/m3.sock" ||
		fail "learn mode across workers"
	ok --json worker-list
	check_py 'all(w["packets"] > 0 for w in d["workers"])' "both workers carried packets"
	stop_switch
	echo "PASS: learnmw"
}

# ---- an ethdev port with a queue pair per worker ----

case_ethmq() {
	local tap=vremq$$
	NS=vre-ethmq-$$
	ip netns add "$NS" || fail "cannot add network namespace $NS"
	# no IPv6 chatter from the tap's kernel side: every frame is the test's
	ip netns exec "$NS" sysctl -qw net.ipv6.conf.default.disable_ipv6=1 \
		net.ipv6.conf.all.disable_ipv6=1 || fail "cannot disable IPv6 in $NS"
	PRE=(ip netns exec "$NS")
	start_switch --workers "0-$SW_CPU"
	grep -q 'learn mode, 2 worker' "$DIR/sw.log" || fail "want learn mode on 2 workers"
	ok port-add vhost "$DIR/m0.sock"
	ok port-add vhost "$DIR/m1.sock"
	ok port-add ethdev "net_tap9,iface=$tap"
	grep -q 'net_tap9) started, .*, 2 queue pair(s)' "$DIR/sw.log" ||
		fail "want 2 queue pairs on the tap: $(grep net_tap9 "$DIR/sw.log")"
	ok --json port-show 2
	check_py 'd["queue_pairs"] == 2 and len(d["queue_list"]) == 2' "port-show: 2 queue pairs"
	echo "tap: RSS $(jq_py 'd["rss"], d["rss_hf"]')"
	"${PRE[@]}" "$GUESTS" ethmq "$CTL" "$DIR/m0.sock" "$DIR/m1.sock" "$tap" 2 ||
		fail "ethdev queue pair per worker"
	ok --json port-list
	check_py 'len(d["ports"]) == 2' "the ethdev port is gone, the guests' ports are left"
	stop_switch
	! grep -qiE 'sanitizer|runtime error' "$DIR/sw.log" || fail "sanitizer report"
	echo "PASS: ethmq"
}

# ---- churn ----

case_churn() {
	# glibc's per-thread malloc caches off: the heap count must not
	# wander with them (ctl_guests.c, HEAP_SLACK)
	GLIBC_TUNABLES=${GLIBC_TUNABLES:+$GLIBC_TUNABLES:}glibc.malloc.tcache_count=0 start_switch
	"$GUESTS" churn "$CTL" "$DIR" "${CYCLES:-1000}" || fail "churn"
	stop_switch
	! grep -qiE 'sanitizer|runtime error' "$DIR/sw.log" || fail "sanitizer report"
	echo "PASS: churn"
}

# ---- hostile clients ----

case_hostile() {
	local t0 d0 x0 t1 d1 x1
	start_switch --stats-interval 1 --stats-json "$JSON"
	ok port-add vhost "$DIR/s0"
	ok port-add vhost "$DIR/s1"
	tp_start tp "--vdev=net_virtio_user0,path=$DIR/s0,mac=$MAC0" \
		"--vdev=net_virtio_user1,path=$DIR/s1,mac=$MAC1" -- \
		--forward-mode=macswap --port-topology=loop --eth-peer=0,$MAC1 --eth-peer=1,$MAC0
	tp_run tp "start tx_first 4"
	read -r t0 d0 x0 <<<"$(counters 0 1)"
	timeout 120 python3 "$HERE/ctl_hostile.py" "$CTL" "$SW_PID" || fail "hostile clients"
	read -r t1 d1 x1 <<<"$(counters 0 1)"
	echo "during the attacks: ports 0,1 took $((t1 - t0)) delivered $((d1 - d0)) dropped $((x1 - x0))"
	[ $((t1 - t0)) -gt 10000 ] || fail "ports 0,1 did not keep forwarding"
	[ $((x1 - x0)) -eq 0 ] || fail "drops on ports 0,1"
	tp_stop tp
	[ "$(tp_total tp RX-dropped)" -eq 0 ] && [ "$(tp_total tp TX-dropped)" -eq 0 ] || fail "testpmd dropped frames"
	ok version
	tp_quit tp
	stop_switch
	grep -q 'similar lines suppressed\|left a request unfinished' "$DIR/sw.log" ||
		fail "the attacks were not logged"
	echo "PASS: hostile"
}

[ -x "$SWITCH" ] && [ -x "$VRECTL" ] && [ -x "$GUESTS" ] || { echo "SKIP: binaries missing"; exit 77; }
case $CASE in
basic) case_basic ;;
ports1000) case_ports1000 ;;
churn) case_churn ;;
learnmw)
	[ "$(nproc)" -ge 2 ] || { echo "SKIP: needs 2 CPUs"; exit 77; }
	case_learnmw ;;
ethmq)
	[ "$(nproc)" -ge 2 ] || { echo "SKIP: needs 2 CPUs"; exit 77; }
	[ "$(id -u)" = 0 ] && command -v ip >/dev/null || { echo "SKIP: needs root and ip"; exit 77; }
	case_ethmq ;;
hotadd|hostile)
	command -v "$TESTPMD" >/dev/null || { echo "SKIP: $TESTPMD not installed"; exit 77; }
	"case_$CASE" ;;
*) fail "unknown case $CASE" ;;
esac
