#!/usr/bin/env bash
# Integration: a hostile frontend and guest against a RUNNING vre-switch.
#
#   hostile.sh SWITCH VRE_HOSTILE GROUP  (GROUP: protocol, guest, truncate, isolation, log)
#
# vre-switch runs in learn mode with three vhost-user ports. One dpdk-testpmd
# drives ports 0 and 1 (virtio-user, split and packed, mac forwarding so the
# bridge learns both MACs and frames go unicast between them; "start
# tx_first" puts bursts into circulation that loop through the switch for
# the whole run). Port 2 is attacked by vre-hostile, one scenario per
# connection, all scenarios of GROUP against the same switch. For each:
#   - vre-hostile exits 0 (the backend refused, dropped the connection or
#     stopped serving the queue, as the scenario expects);
#   - vre-switch is still running, and its log shows the line the scenario
#     announced ("expect-log: REGEX" on vre-hostile's stdout);
#   - ports 0 and 1 kept forwarding: their rx_pkts in --stats-json grew
#     across the scenario and their drop counters did not move;
#   - once the hostile connection is gone, the switch's fd count
#     (/proc/PID/fd) and mapping count (/proc/PID/maps) are back to what
#     they were before it.
# Each group starts and ends with a well-behaved session ("good") on port 2,
# so the port is shown to take a new frontend after the attacks. At the end
# testpmd must not have dropped anything, and the switch must stop cleanly.
#
# Every wait is bounded; every process started here is killed and reaped on
# exit; the run lives in a fresh temp dir (kept when KEEP_DIR is set).
# SCENARIOS="a b ..." runs those instead of the group's list. SWITCH may be
# a sanitizer build (build-asan/examples/vre-switch with ASAN_OPTIONS=
# detect_leaks=1:abort_on_error=1): a report ends the switch or its exit
# code, and the suite fails.
set -uo pipefail

SWITCH=$1
HOSTILE=$2
GROUP=$3
TESTPMD=${TESTPMD:-dpdk-testpmd}
NCPU=$(nproc)
SW_CPU=$((NCPU - 1))
TP_CPU=0

DIR=$(mktemp -d /tmp/vre-hostile.XXXXXX)
SW_PID=
TP_PID=
TP_FD=

fail() {
	echo "FAIL: $*"
	echo "--- switch log (tail, without the tables)"
	grep -vE '^(stats|now) ' "$DIR/sw.log" 2>/dev/null | tail -n 30
	echo "--- switch tables (tail)"; grep -E '^stats ' "$DIR/sw.log" 2>/dev/null | tail -n 12
	echo "--- vre-hostile output"; cat "$DIR/h.out" 2>/dev/null
	echo "--- testpmd log (tail)"; tail -n 20 "$DIR/tp.log" 2>/dev/null
	exit 1
}

. "$(dirname "$0")/../../scripts/lib/proc.sh"

cleanup() {
	[ -n "$TP_FD" ] && exec {TP_FD}>&- 2>/dev/null
	kill_wait "$TP_PID"
	kill_wait "$SW_PID"
	[ -n "${KEEP_DIR:-}" ] && { echo "kept $DIR"; return; }
	rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

tp_cmd() {
	echo "$1" >&"$TP_FD" || fail "testpmd is gone (command '$1')"
}

alive() {
	kill -0 "$SW_PID" 2>/dev/null || fail "vre-switch is gone ($1)"
}

# snap: a fresh --stats-json (SIGUSR1 rewrites it; the file is replaced by
# rename, so a new mtime means a complete new write); sets RX0 RX1 DROPS.
# The bounds here only matter when something is wrong; they are generous
# because on a loaded 2-core machine the whole switch (and testpmd) has
# been seen to get no CPU for several seconds.
snap() {
	local t0 end=$((SECONDS + 20))
	t0=$(stat -c %.9Y "$DIR/st.json")
	kill -USR1 "$SW_PID" 2>/dev/null || fail "vre-switch is gone"
	while [ "$(stat -c %.9Y "$DIR/st.json")" = "$t0" ]; do
		[ $SECONDS -lt $end ] || fail "no stats-json after SIGUSR1"
		sleep 0.02
	done
	read -r RX0 RX1 DROPS < <(awk '
		match($0, /"port": [0-9]+/) {
			p = substr($0, RSTART + 8, RLENGTH - 8) + 0
			match($0, /"rx_pkts": [0-9]+/); rx[p] = substr($0, RSTART + 11, RLENGTH - 11)
			match($0, /"drops": [0-9]+/); dr[p] = substr($0, RSTART + 9, RLENGTH - 9)
		}
		END { print rx[0], rx[1], dr[0] "/" dr[1] }' "$DIR/st.json")
	[ -n "$DROPS" ] || fail "stats-json unreadable"
}

nfds() { ls "/proc/$SW_PID/fd" | wc -l; }
nmaps() { wc -l <"/proc/$SW_PID/maps"; }

# wait_back FDS MAPS: until the switch holds that many fds and mappings.
wait_back() {
	local end=$((SECONDS + 15))
	while [ "$(nfds)" -ne "$1" ] || [ "$(nmaps)" -ne "$2" ]; do
		if [ $SECONDS -ge $end ]; then
			ls -l "/proc/$SW_PID/fd" >"$DIR/fds.after"
			cp "/proc/$SW_PID/maps" "$DIR/maps.after"
			fail "fds $(nfds) (before $1), maps $(nmaps) (before $2): $(diff "$DIR/fds.before" "$DIR/fds.after" | tail -n 5) $(diff "$DIR/maps.before" "$DIR/maps.after" | tail -n 5)"
		fi
		sleep 0.05
	done
}

# scenario NAME: one hostile session on port 2 and every check around it.
NSC=0
scenario() {
	local sc=$1 fds maps lines disc rx0 rx1 drops rc re
	alive "before $sc"
	fds=$(nfds)
	maps=$(nmaps)
	ls -l "/proc/$SW_PID/fd" >"$DIR/fds.before"
	cp "/proc/$SW_PID/maps" "$DIR/maps.before"
	disc=$(grep -c "s2: frontend disconnected" "$DIR/sw.log")
	lines=$(wc -l <"$DIR/sw.log")
	snap
	rx0=$RX0 rx1=$RX1 drops=$DROPS
	timeout 40 "$HOSTILE" "$DIR/s2" "$sc" >"$DIR/h.out" 2>&1
	rc=$?
	[ $rc -eq 0 ] || fail "$sc: vre-hostile exit $rc"
	re=$(sed -n 's/^expect-log: //p' "$DIR/h.out" | head -n 1)
	[ -n "$re" ] || fail "$sc: no expect-log line"
	alive "after $sc"
	# the hostile connection is gone once the switch says so
	wait_count 20 "$DIR/sw.log" "s2: frontend disconnected" $((disc + 1)) ||
		fail "$sc: no disconnect logged"
	# (grep reads all of it: grep -q would leave tail to die of SIGPIPE on a
	# long log, and pipefail would count that as no match)
	tail -n +$((lines + 1)) "$DIR/sw.log" | grep -E "$re" >/dev/null ||
		fail "$sc: no log line matching '$re'"
	# a worker that does not come back to its poll loop for 5 s is stuck
	! tail -n +$((lines + 1)) "$DIR/sw.log" | grep "worker stuck" >/dev/null ||
		fail "$sc: a worker got stuck"
	tail -n +$((lines + 1)) "$DIR/sw.log" | grep "still waiting for the worker" |
		sed "s/^/note: $sc: /"
	wait_back "$fds" "$maps"
	alive "after $sc"
	snap
	[ "$RX0" -gt "$rx0" ] && [ "$RX1" -gt "$rx1" ] ||
		fail "$sc: healthy ports stopped: rx $rx0/$rx1 -> $RX0/$RX1"
	[ -z "$BASE_DROPS" ] || [ "$DROPS" = "$BASE_DROPS" ] || fail "$sc: healthy ports dropped: $BASE_DROPS -> $DROPS"
	NSC=$((NSC + 1))
	echo "ok $sc: $(grep -vE '^(expect-log|ok):' "$DIR/h.out" | tail -n 1); log /$re/; healthy rx +$((RX0 - rx0))/+$((RX1 - rx1)); fds $fds maps $maps"
}

[ -x "$SWITCH" ] || { echo "no switch binary at $SWITCH"; exit 77; }
command -v "$TESTPMD" >/dev/null || { echo "SKIP: $TESTPMD not installed"; exit 77; }

# SCENARIOS (space-separated) replaces the group's list, for a focused rerun.
case $GROUP in
protocol)
	LIST="hdr-huge size-mismatch size-always truncated-msg too-many-fds fds-on-nofd
	      missing-fd unknown before-owner before-features bad-features bad-pf mem-0
	      mem-many mem-overlap mem-size0 mem-wrap mem-offset mem-pipe mem-fds ring-oob
	      ring-misaligned ring-cross ring-gpa queue-range num-0 num-npot num-huge
	      base-split base-packed kick-pipe call-pipe inflight order noread second
	      mem-shrink memslots reset-running config storm" ;;
guest)
	LIST=$("$HOSTILE" --list | grep -E '^[gp]-' | tr '\n' ' ') ;;
truncate)
	LIST="truncate-sealed truncate-inflight truncate" ;;
isolation)
	# nothing a frontend does may hold a thread the healthy ports share
	LIST="call-full call-blocking mem-disk stall-header stall-payload stall-idle
	      reconnect-fast" ;;
log)
	LIST=$("$HOSTILE" --list | grep -E '^log-' | tr '\n' ' ') ;;
*) fail "unknown group $GROUP" ;;
esac
LIST=${SCENARIOS:-$LIST}

"$SWITCH" --mode learn --workers "$SW_CPU" --stats-interval 1 --stats-json "$DIR/st.json" \
	--ctl "$DIR/ctl.sock" \
	--vhost "$DIR/s0" --vhost "$DIR/s1" --vhost "$DIR/s2" >"$DIR/sw.log" 2>&1 &
SW_PID=$!
wait_for 20 "$DIR/sw.log" '^vre-switch: ready' || fail "switch did not come up"

# testpmd: port 0 split, port 1 packed; mac forwarding rewrites each frame
# to go from its port's MAC to the other port's
mkfifo "$DIR/tp.in"
stdbuf -o0 -e0 "$TESTPMD" --lcores "0@$TP_CPU,1@$TP_CPU" --no-pci --no-huge -m 256 --no-shconf \
	"--vdev=net_virtio_user0,path=$DIR/s0,queues=1,packed_vq=0,mac=02:00:00:00:00:10" \
	"--vdev=net_virtio_user1,path=$DIR/s1,queues=1,packed_vq=1,mac=02:00:00:00:00:11" \
	-- -i --total-num-mbufs=8192 --nb-cores=1 --no-lsc-interrupt --forward-mode=mac \
	--eth-peer=0,02:00:00:00:00:11 --eth-peer=1,02:00:00:00:00:10 --txpkts=64 \
	<"$DIR/tp.in" >"$DIR/tp.log" 2>&1 &
TP_PID=$!
exec {TP_FD}>"$DIR/tp.in"
wait_for 30 "$DIR/tp.log" '^testpmd> ' || fail "testpmd did not reach its prompt"
tp_cmd "start tx_first"
wait_for 10 "$DIR/tp.log" 'mac packet forwarding' || fail "forwarding did not start"
wait_for 10 "$DIR/st.json" '"rx_pkts": [1-9]' || fail "no traffic"

# the first frames flood before the bridge has learned both MACs; port 2
# has no frontend then, so those count as drops on ports 0 and 1: taken
# after a first good session on port 2, they are the baseline every
# scenario is held to
wait_count 20 "$DIR/sw.log" "s[01]: memory table" 2 || fail "testpmd ports not set up"
BASE_DROPS=
scenario good
snap
BASE_DROPS=$DROPS
echo "healthy ports running: rx $RX0/$RX1, drops $BASE_DROPS (the first floods)"
for sc in $LIST; do
	scenario "$sc"
done
scenario good
[ "$GROUP" = guest ] && scenario good-packed

# testpmd's own view: nothing dropped
tp_cmd "stop"
wait_for 10 "$DIR/tp.log" 'Accumulated forward statistics' || fail "no stats after stop"
awk '/Accumulated forward statistics/ {b=1} b && /RX-dropped|TX-dropped/' "$DIR/tp.log" |
	grep -E 'dropped: +[1-9]' && fail "testpmd dropped packets"
tp_cmd "quit"
exec {TP_FD}>&-
TP_FD=
end=$((SECONDS + 20))
while kill -0 "$TP_PID" 2>/dev/null && [ $SECONDS -lt $end ]; do sleep 0.1; done
kill_wait "$TP_PID"
TP_PID=
kill -INT "$SW_PID"
wait_for 20 "$DIR/sw.log" '^final worker' || fail "switch did not stop on SIGINT"
wait "$SW_PID"
rc=$?
SW_PID=
[ $rc -eq 0 ] || fail "switch exited with $rc"
echo "PASS: hostile $GROUP: $NSC scenarios"
