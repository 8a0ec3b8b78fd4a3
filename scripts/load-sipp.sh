#!/bin/sh
# load-sipp.sh CALLS ROOMS [DURATION] [RUNS]: the bridge under sipp callers,
# a SIP stack and RTP sender we did not write. Each run starts the bridge
# built from this tree on loopback with ROOMS peer-led groups and places
# CALLS sipp callers (testdata/sipp/load_te.xml, then load_info.xml: PCMU
# with and without telephone-event; both stream looped espeak-ng speech
# with rtp_stream and send the PIN by SIP INFO, so no root is needed). With
# every caller in a room it measures the bridge's CPU from /proc for
# DURATION and prints us per caller-second. The two scenarios alternate
# within each of RUNS rounds (default 3), then the medians and their ratio
# are printed, and the top of the last run's CPU profile of each
# (serve --cpuprofile). Everything stays on 127.0.0.1; sipp is bounded by
# -m CALLS and -timeout. With LOAD_PROFILES=DIR the binary and every run's
# profile are kept there for go tool pprof.
set -eu
calls=${1:?calls}
rooms=${2:?rooms}
duration=${3:-30s}
runs=${4:-3}
[ "$calls" -le 2000 ] && [ "$rooms" -ge 1 ] && [ "$rooms" -le "$calls" ] && [ "$runs" -le 10 ] || {
	echo "load-sipp: need 1 <= ROOMS <= CALLS <= 2000 and RUNS <= 10" >&2; exit 2; }
command -v sipp >/dev/null && command -v espeak-ng >/dev/null && command -v sox >/dev/null || {
	echo "load-sipp: needs sipp, espeak-ng and sox (make test-deps)" >&2; exit 2; }
window=${duration%s}
case $window in *[!0-9]* | '') echo "load-sipp: DURATION in whole seconds, e.g. 30s" >&2; exit 2 ;; esac
[ "$window" -ge 1 ] && [ "$window" -le 600 ] || { echo "load-sipp: DURATION 1s-600s" >&2; exit 2; }
top=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d)
bridge=""
sippid=""
cleanup() {
	[ -n "$sippid" ] && kill "$sippid" 2>/dev/null
	[ -n "$bridge" ] && kill "$bridge" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
go build -o "$dir/groupbridge" ./cmd/groupbridge

# About 20 s of speech with its pauses, -20 dBFS peaks, u-law without a
# header: what rtp_stream sends, looped.
espeak-ng -s 150 -w "$dir/speech.wav" "The group meets every Tuesday evening. Tonight we talk about sleep, \
about the first weeks after the diagnosis, and about who we can call when it gets hard. \
Please keep your phone muted while someone else is speaking, and say your name before you start." 
sox "$dir/speech.wav" -r 8000 -c 1 -t ul "$dir/speech.ul" norm -20


. "$top/scripts/bench-lib.sh"

# cpu_ticks: utime+stime of a process in USER_HZ (fields 14, 15; the name
# "groupbridge" has no spaces).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
metric() { curl -s "http://127.0.0.1:$admin/metrics" | awk -v m="$1" '$1 == m {print $2; exit}'; }

# The PINs, one line per call in call order (call i joins room i mod
# ROOMS), one digit per field for the INFO messages.
{
	echo "SEQUENTIAL"
	i=0
	while [ "$i" -lt "$calls" ]; do
		room_pin $((i % rooms + 1)) | sed 's/./&;/g'
		i=$((i + 1))
	done
} >"$dir/pins.csv"
hz=$(getconf CLK_TCK)
rate=50
# Each caller stays through the set-ups, a settle and the window.
hold_ms=$(( (calls / rate + 10 + window) * 1000 ))

run=1
while [ "$run" -le "$runs" ]; do
	for scen in te info; do
		sip=$(free_port)
		admin=$(free_port)
		cfg="$dir/bridge.yaml"
		bridge_config "$sip" "$admin" "$calls" "$rooms" >"$cfg"
		"$dir/groupbridge" serve --config "$cfg" --cpuprofile "$dir/$scen.pprof" >"$dir/bridge.log" 2>&1 &
		bridge=$!
		sleep 1
		sport=$(free_port)
		(cd "$dir" && exec sipp 127.0.0.1:"$sip" -sf "$top/testdata/sipp/load_$scen.xml" \
			-inf "$dir/pins.csv" -i 127.0.0.1 -p "$sport" -mi 127.0.0.1 -s groupbridge \
			-m "$calls" -l "$calls" -r "$rate" -d "$hold_ms" -nostdin \
			-timeout "$((hold_ms / 1000 + 60))" -timeout_error >"$dir/sipp.out" 2>&1) &
		sippid=$!
		# Wait (bounded) until every caller is in a room.
		t=0
		while [ "$(metric 'groupbridge_room_members{placement="room"}')" != "$calls" ] && [ "$t" -lt $((calls / rate + 30)) ]; do
			sleep 1
			t=$((t + 1))
		done
		sleep 3
		c0=$(cpu_ticks "$bridge")
		late0=$(metric groupbridge_mixer_late_ticks_total)
		in0=$(metric 'groupbridge_rtp_packets_total{direction="in"}')
		sleep "$window"
		c1=$(cpu_ticks "$bridge")
		late1=$(metric groupbridge_mixer_late_ticks_total)
		in1=$(metric 'groupbridge_rtp_packets_total{direction="in"}')
		up=$(metric 'groupbridge_room_members{placement="room"}')
		us=$(awk -v a="$c0" -v b="$c1" -v hz="$hz" -v n="${up:-0}" -v w="$window" \
			'BEGIN { if (n > 0) printf "%.0f", (b - a) / hz * 1e6 / (n * w); else print "nan" }')
		pps=$(awk -v a="${in0:-0}" -v b="${in1:-0}" -v n="${up:-0}" -v w="$window" \
			'BEGIN { if (n > 0) printf "%.1f", (b - a) / (n * w); else print "nan" }')
		echo "== run $run $scen: $calls sipp callers in $rooms rooms, ${window} s: ${up:-0} in rooms," \
			"bridge CPU $us us per caller-second, $pps packets in per caller-second," \
			"late ticks $(( ${late1:-0} - ${late0:-0} ))"
		echo "$scen $us" >>"$dir/results"
		wait "$sippid" || { echo "  sipp ended with an error:"; tail -n 15 "$dir/sipp.out" | sed 's/^/  /'; }
		sippid=""
		kill "$bridge"
		wait "$bridge" || true
		bridge=""
		if [ -n "${LOAD_PROFILES:-}" ]; then
			mkdir -p "$LOAD_PROFILES"
			cp "$dir/groupbridge" "$LOAD_PROFILES/"
			cp "$dir/$scen.pprof" "$LOAD_PROFILES/run$run-$scen.pprof"
		fi
		run_last=$run
	done
	run=$((run + 1))
done
median() { grep "^$1 " "$dir/results" | awk '{print $2}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }
te=$(median te)
info=$(median info)
echo "== sipp medians of $runs interleaved runs: telephone-event $te, none (in-band detector) $info us per caller-second;" \
	"ratio $(awk -v a="$info" -v b="$te" 'BEGIN { printf "%.2f", a / b }')x"
for scen in te info; do
	echo "== CPU profile of the bridge, run $run_last $scen (whole process life):"
	go tool pprof -top -nodecount=15 "$dir/groupbridge" "$dir/$scen.pprof" 2>/dev/null | sed 's/^/  /'
	echo "  in-band key detector (media/dtmf), cumulative:"
	go tool pprof -top -cum -nodefraction=0 -nodecount=1000 "$dir/groupbridge" "$dir/$scen.pprof" 2>/dev/null |
		grep 'media/dtmf' | head -n 3 | sed 's/^/  /' || true
done
