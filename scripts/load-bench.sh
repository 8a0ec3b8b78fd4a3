#!/bin/sh
# load-bench.sh CALLS ROOMS [DURATION] [RUNS] [DIGITS]: starts the bridge built from
# this tree on loopback with ROOMS peer-led groups, places CALLS callers
# with `groupbridge load` (each sending its own tone), measures for
# DURATION with the reference reflector for the same number of callers,
# RUNS times (default 3), and prints each run's report. The bridge is
# stopped by its PID after each run. Everything stays on 127.0.0.1.
# DIGITS is rfc4733 (default) or info: callers offer no telephone-event and
# send their PIN by SIP INFO, so the bridge runs its in-band detector on
# every packet.
set -eu
calls=${1:?calls}
rooms=${2:?rooms}
duration=${3:-30s}
runs=${4:-3}
digits=${5:-rfc4733}
[ "$calls" -le 5000 ] && [ "$rooms" -ge 1 ] && [ "$rooms" -le "$calls" ] || {
	echo "load-bench: need 1 <= ROOMS <= CALLS <= 5000" >&2; exit 2; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go build -o "$dir/groupbridge" ./cmd/groupbridge

. "$(dirname "$0")/bench-lib.sh"

run=1
while [ "$run" -le "$runs" ]; do
	sip=$(free_port)
	admin=$(free_port)
	cfg="$dir/bridge.yaml"
	pins=""
	bridge_config "$sip" "$admin" "$calls" "$rooms" >"$cfg"
	i=1
	while [ "$i" -le "$rooms" ]; do
		pins="$pins${pins:+,}$(room_pin "$i")"
		i=$((i + 1))
	done
	"$dir/groupbridge" serve --config "$cfg" >"$dir/bridge.log" 2>&1 &
	pid=$!
	sleep 1
	echo "== run $run: $calls callers in $rooms rooms, PIN by $digits, $duration"
	"$dir/groupbridge" load --target "127.0.0.1:$sip" --calls "$calls" --rooms "$rooms" \
		--pins "$pins" --digits "$digits" --rate 200 --duration "$duration" --pid "$pid" --reflector || true
	# The bridge's own view: its clock (ticks that started late, time per
	# tick) and what it dropped.
	curl -s "http://127.0.0.1:$admin/metrics" |
		grep -E '^groupbridge_(mixer_ticks_total|mixer_late_ticks_total|mixer_tick_seconds_(sum|count)|rtp_dropped_total|rtp_late_total|rtp_concealed_total)' |
		sed 's/^/  bridge metric       /' || true
	kill "$pid"
	wait "$pid" || true
	run=$((run + 1))
done
