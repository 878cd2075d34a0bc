# SPDX-License-Identifier: BSD-3-Clause
# Process and log helpers shared by the scripts that start vre-switch,
# testpmd and friends (tests/integration, tests/hostile, scripts/soak,
# perf/demo.sh). Sourced, not run. Every wait is bounded.

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

# wait_for SECONDS FILE REGEX: until FILE has a line matching REGEX.
wait_for() {
	local end=$((SECONDS + $1))
	while [ $SECONDS -lt $end ]; do
		grep -qE "$3" "$2" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# wait_count SECONDS FILE REGEX N: until FILE has N lines matching REGEX.
wait_count() {
	local end=$((SECONDS + $1))
	while [ $SECONDS -lt $end ]; do
		[ "$(grep -cE "$3" "$2" 2>/dev/null)" -ge "$4" ] && return 0
		sleep 0.05
	done
	return 1
}
