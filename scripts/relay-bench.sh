#!/bin/sh
# relay-bench.sh [CALLS] [ROOMS] [DURATION] [RUNS] [GENERATORS]: what a
# relayed caller costs (issue 15, BENCHMARKS.md). Each run starts a Redis
# of its own (persistence off, an ACL user, a free port, a temporary
# directory) and two nodes built from this tree, a on 127.0.0.1 and b on
# 127.0.0.2 (cluster sections, lease 2s), with ROOMS peer-led rooms. One
# sipp caller per room joins at a first, so a owns every room; then CALLS
# callers join, either all at b (relayed: b relays each to a over an
# internal leg) or all at a (local); once they are seated the first
# callers leave, so a's rooms hold exactly CALLS callers either way. Over
# DURATION the CPU of both processes (utime+stime from /proc/PID/stat) is
# divided by caller-seconds. Relayed and local alternate within each of
# RUNS rounds (default 3; the order swaps every round), so each round
# gives the ratios relay/local and owner/local in one sitting; medians
# follow. GENERATORS (default "sipp load") are the callers: sipp 3.6.1
# (testdata/sipp/load_te.xml: looped speech, PIN by SIP INFO) and/or
# `groupbridge load` (a tone each, PIN by RFC 4733).
#
# After each relayed run's window, while the calls are still up,
# HOP_PROBES (default 10, at most ROOMS) more sipp callers join at b a
# second apart while tcpdump (root) captures b's RTP on lo, which tells
# whose leg is whose and which port of b takes the owner's bundles; then
# their streams, legs and b's bundle port alone are captured for
# LATENCY_WINDOW (default 10s, 0 to skip) and scripts/relay-hop.py times
# the hop both ways: a caller's packet from arriving at b to leaving on
# its leg, and the owner's, from the bundle that carried it arriving at b
# to b sending it to the caller.
#
# With RELAY_BENCH_LOGS=DIR each run's logs, metrics at the window's end,
# captures and CPU profiles (serve --cpuprofile) are kept in DIR.
#
# Loopback only: RTP ports from 20000 (a) and 26000 (b), sipp's from
# 46000, 48000 and 50000. Bounded (CALLS <= 1000, RUNS <= 10, sipp
# -m/-timeout, load --duration, tcpdump under timeout); it ends only the
# processes it started, by PID. Needs sipp, espeak-ng, sox, redis-server
# (make test-deps) and, for the hop, tcpdump and root.
set -eu
calls=${1:-300}
rooms=${2:-30}
duration=${3:-30s}
runs=${4:-3}
gens=${5:-sipp load}
lat=${LATENCY_WINDOW:-10s}
[ "$calls" -le 1000 ] && [ "$rooms" -ge 1 ] && [ "$rooms" -le "$calls" ] && [ "$runs" -ge 1 ] && [ "$runs" -le 10 ] || {
	echo "relay-bench: need 1 <= ROOMS <= CALLS <= 1000 and 1 <= RUNS <= 10" >&2; exit 2; }
secs() {
	v=${1%s}
	case $v in *[!0-9]* | '') echo "relay-bench: durations in whole seconds, e.g. 30s" >&2; exit 2 ;; esac
	[ "$v" -le 600 ] || { echo "relay-bench: durations at most 600s" >&2; exit 2; }
	echo "$v"
}
window=$(secs "$duration")
latw=$(secs "$lat")
[ "$window" -ge 1 ] || { echo "relay-bench: DURATION at least 1s" >&2; exit 2; }
for g in $gens; do
	case $g in sipp | load) ;; *) echo "relay-bench: generators are sipp and load" >&2; exit 2 ;; esac
done
need="sipp espeak-ng sox redis-server python3 curl"
[ "$latw" -gt 0 ] && need="$need tcpdump"
for b in $need; do
	command -v "$b" >/dev/null || { echo "relay-bench: needs $b (make test-deps; tcpdump for the hop)" >&2; exit 2; }
done
if [ "$latw" -gt 0 ] && [ "$(id -u)" != 0 ]; then
	echo "relay-bench: the hop's capture needs root (or LATENCY_WINDOW=0)" >&2; exit 2
fi

top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/bench-lib.sh"
dir=$(mktemp -d)
pids=""    # everything started here that may still run, ended by PID
started() { pids="$pids $1"; }
stop_pid() {
	[ -n "$1" ] || return 0
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	pids=$(echo "$pids" | tr ' ' '\n' | grep -vx "$1" | tr '\n' ' ')
}
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	for p in $pids; do wait "$p" 2>/dev/null || true; done
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
(cd "$top" && go build -o "$dir/groupbridge" ./cmd/groupbridge)
bin=$dir/groupbridge

espeak-ng -s 150 -w "$dir/speech.wav" "The group meets every Tuesday evening. Tonight we talk about sleep, \
about the first weeks after the diagnosis, and about who we can call when it gets hard. \
Please keep your phone muted while someone else is speaking, and say your name before you start."
sox "$dir/speech.wav" -r 8000 -c 1 -t ul "$dir/speech.ul" norm -20
# The first callers' numbers differ from the measured callers' (+1556...
# against +1555...): the same identity twice in a room is one person.
sed 's/+1555\[call_number\]/+1556[call_number]/g' "$top/testdata/sipp/load_te.xml" >"$dir/anchor.xml"
sed 's/+1555\[call_number\]/+1557[call_number]/g' "$top/testdata/sipp/load_te.xml" >"$dir/probe.xml"

pinlist() { # N: the first N room PINs, one per line
	i=0
	while [ "$i" -lt "$1" ]; do
		room_pin $((i % rooms + 1))
		i=$((i + 1))
	done
}
{ echo SEQUENTIAL; pinlist "$calls" | sed 's/./&;/g'; } >"$dir/pins.csv"
{ echo SEQUENTIAL; pinlist "$rooms" | sed 's/./&;/g'; } >"$dir/anchor-pins.csv"
probes=${HOP_PROBES:-$((rooms < 10 ? rooms : 10))}
[ "$probes" -ge 1 ] && [ "$probes" -le "$rooms" ] || { echo "relay-bench: 1 <= HOP_PROBES <= ROOMS" >&2; exit 2; }
{ echo SEQUENTIAL; pinlist "$probes" | sed 's/./&;/g'; } >"$dir/probe-pins.csv"
allpins=$(pinlist "$rooms" | paste -sd, -)

hz=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
metric() { # ADMIN NAME
	curl -s "http://$1/metrics" | awk -v m="$2" '$1 == m {print $2; exit}'
}
members() { v=$(metric "$1" 'groupbridge_room_members{placement="room"}'); echo "${v:-0}"; }
# wait_for ADMIN WANT SECONDS: until a's rooms hold WANT callers (bounded).
wait_for() {
	t=0
	while [ "$(members "$1")" != "$2" ] && [ "$t" -lt "$3" ]; do
		sleep 1
		t=$((t + 1))
	done
	[ "$(members "$1")" = "$2" ]
}

# node_config NAME IP SIP ADMIN CLUSTERPORT RTPMIN REDISURL
node_config() {
	cat <<EOF
sip:
  listen: ["udp:$2:$3"]
rtp:
  address: $2
  port_min: $6
  port_max: $(($6 + 4 * calls + 400))
admin:
  listen: "$2:$4"
log:
  format: json
attendance:
  path: $dir/$1/attendance.db
cluster:
  node: $1
  redis: "$7"
  listen: $2:$5
  peers: [127.0.0.1, 127.0.0.2]
  secret: "relay-bench secret, only for this loopback run"
  lease: 2s
groups:
EOF
	room_groups "$rooms" $(( (calls + rooms - 1) / rooms + 2 ))
}

start_redis() {
	rport=$(free_port)
	rpass=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
	mkdir -p "$dir/redis"
	cat >"$dir/redis/redis.conf" <<EOF
bind 127.0.0.1
port $rport
protected-mode yes
dir $dir/redis
save ""
appendonly no
daemonize no
user default off
user groupbridge on >$rpass ~groupbridge:* &groupbridge:* -@all +@read +@write +@keyspace +@scripting +@connection +@transaction -@dangerous +info +config|get +time
EOF
	redis-server "$dir/redis/redis.conf" >"$dir/redis/log" 2>&1 &
	redis=$!
	started "$redis"
	t=0
	until python3 -c "import socket; socket.create_connection(('127.0.0.1', $rport), 0.2)" 2>/dev/null; do
		t=$((t + 1))
		[ "$t" -lt 50 ] || { echo "relay-bench: redis-server did not start"; cat "$dir/redis/log"; exit 1; }
		sleep 0.1
	done
	rurl="redis://groupbridge:$rpass@127.0.0.1:$rport/0"
}

# start_node NAME IP RTPMIN: sets node_pid, node_sip, node_admin.
start_node() {
	mkdir -p "$dir/$1"
	node_sip=$(free_port)
	node_admin="$2:$(free_port)"
	node_config "$1" "$2" "$node_sip" "${node_admin#*:}" "$(free_port)" "$3" "$rurl" >"$dir/$1/groupbridge.yaml"
	prof=""
	[ -n "${RELAY_BENCH_LOGS:-}" ] && prof="--cpuprofile $dir/$1/cpu.pprof"
	# shellcheck disable=SC2086 # prof is empty or two words
	"$bin" serve --config "$dir/$1/groupbridge.yaml" $prof >"$dir/$1/log" 2>&1 &
	node_pid=$!
	started "$node_pid"
	t=0
	until curl -sf "http://$node_admin/metrics" >/dev/null; do
		t=$((t + 1))
		[ "$t" -lt 100 ] || { echo "relay-bench: node $1 did not start"; tail -n 20 "$dir/$1/log"; exit 1; }
		sleep 0.1
	done
}

# sipp_calls TARGET SCENARIO PINS N RATE HOLD_S MEDIAPORT OUT: starts sipp
# callers in the background; sets sipp_pid.
sipp_calls() {
	(cd "$dir" && exec sipp "$1" -sf "$2" -inf "$3" -i 127.0.0.1 -p "$(free_port)" -mi 127.0.0.1 -mp "$7" \
		-s groupbridge -m "$4" -l "$4" -r "$5" -d "$(($6 * 1000))" -nostdin \
		-timeout "$(($6 + 60))" -timeout_error >"$8" 2>&1) &
	sipp_pid=$!
	started "$sipp_pid"
}

# capture_start FILTER FILE: tcpdump on lo, headers only (70 bytes hold
# Ethernet, IP, UDP and RTP), nanosecond times, at most 120 s;
# capture_stop prints what it caught and the share of one CPU it used.
capture_start() {
	timeout 120 tcpdump -i lo -n -s 70 -B 65536 --time-stamp-precision nano -w "$2" "$1" \
		>"$dir/tcpdump.log" 2>&1 &
	tcpd=$!
	started "$tcpd"
	tc0=$(date +%s)
	sleep 1 # tcpdump is listening
}
capture_stop() {
	tdp=$(pgrep -P "$tcpd" -x tcpdump || true) # timeout's child
	tc=0
	[ -n "$tdp" ] && tc=$(cpu_ticks "$tdp")
	tsecs=$(($(date +%s) - tc0))
	stop_pid "$tcpd"
	echo "  tcpdump, $tsecs s: $(grep -E 'packets captured' "$dir/tcpdump.log" | cut -d' ' -f1) packets," \
		"$(grep -E 'dropped by kernel' "$dir/tcpdump.log" | cut -d' ' -f1) dropped," \
		"$(awk -v t="$tc" -v hz="$hz" -v w="$tsecs" 'BEGIN { if (w > 0) printf "%.0f", t / hz / w * 100 }')% of a CPU"
}

median() { sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR + 1) / 2)]; else print "nan"}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "nan" }'; }
us_per() { awk -v t="$1" -v hz="$hz" -v n="$calls" -v w="$window" 'BEGIN { printf "%.0f", t / hz * 1e6 / (n * w) }'; }

rate=50
setup=$((calls / rate + 5))
# The first callers stay until the measured callers are seated (bounded),
# then leave; the measured callers stay through the window and the capture.
anchor_hold=$((setup + 25))
probe_hold=$((probes + 20 + latw + 10))
main_hold=$((anchor_hold + 5 + window + probe_hold + 10))

# one_run GEN SCEN RUN
one_run() {
	gen=$1; scen=$2; run=$3
	start_redis
	start_node a 127.0.0.1 20000
	apid=$node_pid; asip=$node_sip; aadm=$node_admin
	start_node b 127.0.0.2 26000
	bpid=$node_pid; bsip=$node_sip; badm=$node_admin
	sipp_calls "127.0.0.1:$asip" "$dir/anchor.xml" "$dir/anchor-pins.csv" "$rooms" "$rooms" "$anchor_hold" 46000 "$dir/anchor.out"
	anchors=$sipp_pid
	wait_for "$aadm" "$rooms" 30 || echo "  (only $(members "$aadm") of the $rooms first callers seated at a)"
	target="127.0.0.1:$asip"
	[ "$scen" = relayed ] && target="127.0.0.2:$bsip"
	case $gen in
	sipp)
		sipp_calls "$target" "$top/testdata/sipp/load_te.xml" "$dir/pins.csv" "$calls" "$rate" "$main_hold" 50000 "$dir/main.out"
		;;
	load)
		"$bin" load --target "$target" --calls "$calls" --rooms "$rooms" --pins "$allpins" --rate "$rate" \
			--duration "$((main_hold - setup))s" >"$dir/main.out" 2>&1 &
		sipp_pid=$!
		started "$sipp_pid"
		;;
	esac
	main=$sipp_pid
	wait_for "$aadm" "$((calls + rooms))" $((setup + 30)) || echo "  (only $(members "$aadm") seated at a with the first callers)"
	# The first callers leave at the end of their hold.
	wait "$anchors" || true
	pids=$(echo "$pids" | tr ' ' '\n' | grep -vx "$anchors" | tr '\n' ' ')
	wait_for "$aadm" "$calls" 15 || echo "  (a's rooms hold $(members "$aadm"), not $calls)"
	sleep 3
	loadavg=$(cut -d' ' -f1 /proc/loadavg)
	a0=$(cpu_ticks "$apid"); b0=$(cpu_ticks "$bpid"); r0=$(cpu_ticks "$redis")
	late0=$(metric "$aadm" groupbridge_mixer_late_ticks_total)
	sleep "$window"
	a1=$(cpu_ticks "$apid"); b1=$(cpu_ticks "$bpid"); r1=$(cpu_ticks "$redis")
	late1=$(metric "$aadm" groupbridge_mixer_late_ticks_total)
	jit=$(metric "$aadm" groupbridge_jitter_buffer_depth_seconds)
	up=$(members "$aadm")
	curl -s "http://$aadm/metrics" >"$dir/a/metrics" || true
	curl -s "http://$badm/metrics" >"$dir/b/metrics" || true
	acpu=$(us_per $((a1 - a0))); bcpu=$(us_per $((b1 - b0))); rcpu=$(us_per $((r1 - r0)))
	echo "== $gen run $run $scen: $up callers in a's rooms over ${window} s; per caller-second a (owner) $acpu us," \
		"b $bcpu us, redis $rcpu us; a's late ticks $(( ${late1:-0} - ${late0:-0} )), a's mean jitter-buffer delay" \
		"$(awk -v j="${jit:-0}" 'BEGIN { printf "%.1f", j * 1000 }') ms; load average $loadavg at the start"
	[ "$up" = "$calls" ] || echo "  WARNING: $up callers seated, not $calls: this run's figures are not comparable"
	echo "$gen $run $scen $acpu $bcpu" >>"$dir/results"
	if [ "$scen" = relayed ] && [ "$latw" -gt 0 ]; then
		rtpb=26000-$((26000 + 4 * calls + 400))
		rtpa=20000-$((20000 + 4 * calls + 400))
		# The hop is timed on HOP_PROBES more callers relayed through b,
		# joining a second apart while all of b's RTP is captured (its
		# SIP and internal SIP ports are outside these), which tells
		# whose leg is whose and b's bundle port (the owner's audio for
		# all of b's callers comes there, a datagram a tick, not on the
		# legs); then their streams and the bundle port alone are
		# captured for LATENCY_WINDOW, so that tcpdump copies few packets
		# and takes little of the two CPUs from the relay.
		capture_start "udp and host 127.0.0.2 and portrange $rtpb" "$dir/joins.pcap"
		sipp_calls "127.0.0.2:$bsip" "$dir/probe.xml" "$dir/probe-pins.csv" "$probes" 1 "$probe_hold" 48000 "$dir/probe.out"
		probe=$sipp_pid
		wait_for "$aadm" "$((calls + probes))" $((probes + 20)) || echo "  (only $(members "$aadm") seated with the probes)"
		sleep 1
		capture_stop
		python3 "$top/scripts/relay-hop.py" --relay 127.0.0.2 --rtp "$rtpb" --owner-rtp "$rtpa" \
			--label "$gen-$run" --pairs-out "$dir/pairs" "$dir/joins.pcap" || true
		# "caller leg" lines and "bundle PORT": every number is a port.
		ports=$(grep -oE '[0-9]+' "$dir/pairs" | sed 's/^/port /' | paste -sd'|' - | sed 's/|/ or /g')
		if [ -n "$ports" ]; then
			capture_start "udp and host 127.0.0.2 and ($ports)" "$dir/hop.pcap"
			sleep "$latw"
			capture_stop
			python3 "$top/scripts/relay-hop.py" --relay 127.0.0.2 --rtp "$rtpb" --owner-rtp "$rtpa" \
				--label "$gen-$run, $latw s" --pairs-in "$dir/pairs" --samples "$dir/hop-$gen-$run" "$dir/hop.pcap" || true
		fi
		if [ -n "${RELAY_BENCH_LOGS:-}" ]; then
			mkdir -p "$RELAY_BENCH_LOGS"
			mv "$dir/joins.pcap" "$RELAY_BENCH_LOGS/joins-$gen-$run.pcap"
			[ -f "$dir/hop.pcap" ] && mv "$dir/hop.pcap" "$RELAY_BENCH_LOGS/hop-$gen-$run.pcap"
			[ -f "$dir/pairs" ] && cp "$dir/pairs" "$RELAY_BENCH_LOGS/pairs-$gen-$run"
		fi
		rm -f "$dir/joins.pcap" "$dir/hop.pcap" "$dir/pairs"
		stop_pid "$probe" # the probes' calls end with the nodes
	fi
	# The callers hang up at the end of their hold (bounded by sipp's
	# -timeout and the load tool's --duration); their own reports say
	# whether every call went through (and for the load tool, whether the
	# sampled listeners heard their rooms).
	if wait "$main"; then :; else echo "  the $gen callers ended with an error"; fi
	pids=$(echo "$pids" | tr ' ' '\n' | grep -vx "$main" | tr '\n' ' ')
	if [ "$gen" = load ]; then
		grep -E 'call setups|failures|calls up|packets/caller|receive interval|lost packets|tone check|talker stalls' "$dir/main.out" | sed 's/^/  load: /' || true
	else
		grep -E 'Successful call|Failed call' "$dir/main.out" | tail -n 2 | sed 's/^/  sipp: /' || true
	fi
	stop_pid "$bpid"
	stop_pid "$apid"
	stop_pid "$redis"
	if [ -n "${RELAY_BENCH_LOGS:-}" ]; then
		keep=$RELAY_BENCH_LOGS/$gen-$run-$scen
		mkdir -p "$keep"
		cp "$bin" "$RELAY_BENCH_LOGS/"
		for f in a/log b/log a/cpu.pprof b/cpu.pprof a/metrics b/metrics redis/log anchor.out main.out; do
			cp "$dir/$f" "$keep/$(echo "$f" | tr / .)" 2>/dev/null || true
		done
	fi
	rm -rf "$dir/a" "$dir/b" "$dir/redis"
}

for gen in $gens; do
	run=1
	while [ "$run" -le "$runs" ]; do
		if [ $((run % 2)) = 1 ]; then order="relayed local"; else order="local relayed"; fi
		for scen in $order; do
			one_run "$gen" "$scen" "$run"
		done
		run=$((run + 1))
	done
done

echo
echo "== medians of $runs rounds, $calls callers in $rooms rooms, CPU per caller-second"
for gen in $gens; do
	grep "^$gen " "$dir/results" | awk '
		$3 == "relayed" { ra[$2] = $4; rb[$2] = $5 }
		$3 == "local" { la[$2] = $4 }
		END { for (r in la) if (r in ra) printf "%s %s %s %s %.4f %.4f\n", r, la[r], rb[r], ra[r], rb[r] / la[r], ra[r] / la[r] }' |
		sort -n >"$dir/ratios-$gen"
	while read -r r l rb ra x y; do
		echo "  $gen round $r: local $l us; relayed: relay node b $rb us ($(printf %.2f "$x")x), owner a $ra us ($(printf %.2f "$y")x)"
	done <"$dir/ratios-$gen"
	echo "  $gen medians: local $(awk '{print $2}' "$dir/ratios-$gen" | median) us," \
		"relay node $(awk '{print $3}' "$dir/ratios-$gen" | median) us ($(awk '{print $5}' "$dir/ratios-$gen" | median | xargs printf %.2f)x)," \
		"owner $(awk '{print $4}' "$dir/ratios-$gen" | median) us ($(awk '{print $6}' "$dir/ratios-$gen" | median | xargs printf %.2f)x)" \
		"(targets: relay node <= 2.2x, owner <= 1.1x)"
done
if [ "$latw" -gt 0 ] && ls "$dir"/hop-*.up >/dev/null 2>&1; then
	echo "== the hop, $probes probe callers among $calls relayed, $latw s after each relayed window:"
	python3 "$top/scripts/relay-hop.py" --pooled "$dir"/hop-*
fi
