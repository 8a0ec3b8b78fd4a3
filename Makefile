# groupbridge — a telephone dial-in bridge for support groups.
#   make run     run the bridge on its embedded default configuration
#   make test    all tests: interop (sipp, Kamailio, baresip), Chromium, PostgreSQL
#   make bench   benchmarks of the mixer, RTP and codec paths
#   make soak    200 callers joining and leaving for SOAK_DURATION (10m), then a leak check
#   make bench-load  the load tool against the bridge and the reference reflector (BENCHMARKS.md)
#   make bench-latency  delay through the bridge, measured on the wire (BENCHMARKS.md)
#   make bench-relay  what a relayed caller costs a cluster's relay node and owner (BENCHMARKS.md)
#   make screenshots  the README's pictures of the console (docs/console-*.png)
GO       ?= go
PKGS     := ./...
# Debian packages the tests need: sipp for interop, espeak-ng and sox for
# the in-band DTMF detector's talk-off test on real speech, chromium for
# the console's browser tests, postgresql for the attendance store's and
# redis-server for the cluster's room leases (the tests start their own
# servers on free ports; Debian 12 ships PostgreSQL 15).
TEST_DEBS := sip-tester espeak-ng sox kamailio baresip-core chromium postgresql redis-server
TEST_BINS := sipp espeak-ng sox /usr/sbin/kamailio baresip /usr/bin/chromium /usr/lib/postgresql/15/bin/postgres /usr/bin/redis-server

.PHONY: all build run test test-deps unit bench bench-load bench-latency bench-relay soak fuzz lint prompts screenshots clean

all: build

build:
	$(GO) build -o bin/groupbridge ./cmd/groupbridge

run:
	$(GO) run ./cmd/groupbridge serve

# test-deps installs what the interop tests call, or says exactly how.
test-deps:
	@./scripts/test-deps.sh $(TEST_BINS) -- $(TEST_DEBS)

# test builds every test binary first and then runs the packages one at a
# time: the end-to-end tests judge audio by signal in real time, and
# compiling other packages or running their tests beside them on a
# two-core machine starves the bridge under test (-race makes it worse).
# Within a package six tests run at once: the end-to-end tests mostly
# wait on real time (internal/app used 26 s of CPU in 6 minutes; its
# parallel tests add up to about 21 minutes, its serial ones, sipp, the
# flood and the browser, about 3), so this cuts the wall time without
# loading the machine.
# GROUPBRIDGE_REQUIRE_PEERS=1: a test whose outside program is missing
# fails instead of skipping, since test-deps has just installed them all.
test: test-deps
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -run '^$$' $(PKGS) >/dev/null
	GROUPBRIDGE_REQUIRE_PEERS=1 $(GO) test -race -count=1 -p 1 -parallel 6 -timeout 15m $(PKGS)

# unit runs the tests without installing anything (interop, browser and
# PostgreSQL tests skip themselves when their program is missing).
unit:
	$(GO) test -count=1 $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 3 ./media/... ./internal/...

# bench-load: the three load scenarios of BENCHMARKS.md, LOAD_RUNS runs of
# LOAD_WINDOW each against a freshly started bridge and the reference
# reflector (the third: callers offering no telephone-event, PIN by SIP
# INFO), then the same bridge under sipp callers with and without
# telephone-event, interleaved (about 20 minutes with the defaults;
# loopback only; sipp, espeak-ng and sox from make test-deps).
LOAD_WINDOW ?= 30s
LOAD_RUNS   ?= 3
SIPP_CALLS  ?= 300
SIPP_ROOMS  ?= 30
bench-load:
	./scripts/load-bench.sh 1000 100 $(LOAD_WINDOW) $(LOAD_RUNS)
	./scripts/load-bench.sh 500 1 $(LOAD_WINDOW) $(LOAD_RUNS)
	./scripts/load-bench.sh 1000 100 $(LOAD_WINDOW) $(LOAD_RUNS) info
	./scripts/load-sipp.sh $(SIPP_CALLS) $(SIPP_ROOMS) $(LOAD_WINDOW) $(LOAD_RUNS)

# bench-latency: LATENCY_RUNS calls of about 40 s each through the bridge (in
# process, loopback) between a baresip talker playing twenty 200 ms chirps
# and a sipp listener, captured on lo by tcpdump: burst onset in to onset
# out and the per-packet delay (BENCHMARKS.md). Needs root (tcpdump, and
# sipp's RFC 4733 replay), baresip, sipp and tcpdump. Not part of test.
# Each call's delay depends on its phase against the mixing clock, so the
# bursts of all runs are pooled for the figure.
# LATENCY_JITTER_MIN=10ms runs it with another audio.jitter_min.
LATENCY_RUNS ?= 9
LATENCY_JITTER_MIN ?=
bench-latency:
	@command -v tcpdump >/dev/null || { echo "bench-latency needs tcpdump (Debian: apt-get install tcpdump)"; exit 1; }
	$(GO) test -c -o bin/app.test ./internal/app
	@for i in $$(seq $(LATENCY_RUNS)); do \
		(cd internal/app && GROUPBRIDGE_BENCH_LATENCY=1 GROUPBRIDGE_BENCH_JITTER_MIN=$(LATENCY_JITTER_MIN) ../../bin/app.test -test.run '^TestBenchLatency$$' -test.count 1 -test.v) \
			>bin/latency-$$i.log 2>&1; rc=$$?; \
		grep -E 'latency:|jitter_min:|captured|--- SKIP' bin/latency-$$i.log; \
		if [ $$rc -ne 0 ]; then tail -40 bin/latency-$$i.log; exit $$rc; fi; \
	done
	@grep -h 'onsets ms:' $$(seq -f 'bin/latency-%g.log' $(LATENCY_RUNS)) | sed 's/.*onsets ms://' | tr ' ' '\n' | grep . | sort -n | \
		awk '{v[NR]=$$1} END {if (NR) printf "all %d runs pooled: onset in to onset out median %.1f ms p10 %.1f ms p90 %.1f ms (%d bursts)\n", $(LATENCY_RUNS), v[int((NR+1)/2)], v[int(NR*0.1)+1], v[int(NR*0.9)], NR}'

# bench-relay: issue 15's cost of a relayed caller (scripts/relay-bench.sh).
# Each run starts its own redis-server and two nodes built from the tree
# (a on 127.0.0.1 owning RELAY_ROOMS rooms, b on 127.0.0.2), seats
# RELAY_CALLS callers relayed from b to a, or, alternately, all local on a,
# and reads both processes' CPU from /proc over RELAY_WINDOW: RELAY_RUNS
# rounds per caller generator (sipp, and `groupbridge load`), about 30
# minutes with the defaults. After each relayed window 10 probe callers
# join through b under tcpdump on lo and scripts/relay-hop.py times the
# hop both ways on them (root; LATENCY_WINDOW=0 skips it). Loopback only
# (RTP ports from 20000 and 26000, sipp's from 46000). Not part of test.
RELAY_CALLS ?= 300
RELAY_ROOMS ?= 30
RELAY_WINDOW ?= 30s
RELAY_RUNS ?= 3
RELAY_GENERATORS ?= sipp load
bench-relay:
	./scripts/relay-bench.sh $(RELAY_CALLS) $(RELAY_ROOMS) $(RELAY_WINDOW) $(RELAY_RUNS) "$(RELAY_GENERATORS)"

# soak: 200 callers joining and leaving the whole bridge (in-process, on
# loopback) for SOAK_DURATION (10s-15m); then goroutines, open files and the
# live heap must be back at their baseline. Not part of test or CI.
SOAK_DURATION ?= 10m
soak:
	GROUPBRIDGE_SOAK=1 SOAK_DURATION=$(SOAK_DURATION) $(GO) test -run '^TestSoak$$' -count=1 -timeout 20m -v ./internal/soak

# fuzz runs every fuzz target for FUZZTIME each.
FUZZTIME ?= 20s
fuzz:
	@./scripts/fuzz-all.sh $(FUZZTIME)

lint:
	@test -z "$$(gofmt -l .)" || (gofmt -l .; echo "gofmt: files above need formatting"; exit 1)
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 $(PKGS)

# prompts regenerates the built-in voice prompts (needs festival,
# festvox-us-slt-hts and sox); the generated WAVs are committed.
prompts:
	./media/prompt/gen/generate.sh en
	./media/prompt/gen/generate.sh es

# screenshots rewrites docs/console-live.png and docs/console-attendance.png,
# the README's pictures of the console: the bridge with two live rooms of
# test softphones and a store of sample sessions, in headless Chromium.
screenshots:
	GROUPBRIDGE_SCREENSHOTS=$(CURDIR)/docs $(GO) test -count=1 -run '^TestConsoleScreenshots$$' ./internal/app

clean:
	rm -rf bin
