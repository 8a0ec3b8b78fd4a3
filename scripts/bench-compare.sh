#!/bin/sh
# bench-compare.sh BEFORE AFTER [ROUNDS] [OUT]: measures two commits of this
# repository in one sitting, interleaved so that the machine's drift falls
# on both: ROUNDS rounds (default 3) in the order before-after,
# after-before, ...; in each, one `make bench` pass (-count 1) and one
# `make bench-load` pass (LOAD_RUNS=1) from each tree, built from that
# tree. Results go to OUT (default a new temporary directory): bench-*.txt
# for benchstat, load-*.txt, and a summary of bridge over reflector per
# run. Loopback only; each bridge is stopped by its PID by the scripts.
set -eu
before=${1:?before commit}
after=${2:?after commit}
rounds=${3:-3}
out=${4:-$(mktemp -d)}
repo=$(git rev-parse --show-toplevel)
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for tag in before after; do
	eval "commit=\$$tag"
	git clone -q "$repo" "$work/$tag"
	git -C "$work/$tag" checkout -q "$commit"
done
log() { echo "$(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg): $*" | tee -a "$out/sitting.txt"; }
one() { # tag round
	log "bench $1 $2"
	(cd "$work/$1" && go test -run '^$' -bench . -benchmem -count 1 ./media/... ./internal/...) >"$out/bench-$1-$2.txt" 2>&1 || true
	log "bench-load $1 $2"
	(cd "$work/$1" && make bench-load LOAD_RUNS=1) >"$out/load-$1-$2.txt" 2>&1 || true
}
log "before $before, after $after, $rounds rounds"
r=1
while [ "$r" -le "$rounds" ]; do
	if [ $((r % 2)) -eq 1 ]; then one before "$r"; one after "$r"; else one after "$r"; one before "$r"; fi
	r=$((r + 1))
done
log "done"
# One line per scenario and run: the bridge's and the reflector's CPU per
# caller-second and their ratio; the sipp line of each run.
for f in "$out"/load-*.txt; do
	awk -v f="$(basename "$f" .txt)" '
		/^== run 1: /{scen=$4" callers/"$7" rooms/"$11; n=0}
		/CPU \(target\)/{n++; if (n == 1) b=$(NF-3); else r=$(NF-3)}
		/bridge \/ reflector CPU/{printf "%s %s bridge %s reflector %s ratio %s\n", f, scen, b, r, $NF}
		/^== sipp medians/{print f, $0}' "$f"
done | sort -k2,2 -k1,1 | tee "$out/summary.txt"
cat "$out"/bench-before-*.txt >"$out/before.txt"
cat "$out"/bench-after-*.txt >"$out/after.txt"
echo "micro-benchmarks: benchstat $out/before.txt $out/after.txt (golang.org/x/perf/cmd/benchstat)"
