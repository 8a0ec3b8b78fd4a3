package soak

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/groupbridge/groupbridge/config"
	"github.com/groupbridge/groupbridge/internal/app"
	"github.com/groupbridge/groupbridge/internal/softphone"
	"github.com/groupbridge/groupbridge/internal/testports"
)

// The soak's shape and bounds.
const (
	// soakEnv must be 1 for TestSoak to run: it takes minutes and most of
	// the machine, so `make test` and CI skip it; `make soak` sets it.
	soakEnv = "GROUPBRIDGE_SOAK"
	// durationEnv overrides how long callers keep coming (default 10m).
	durationEnv     = "SOAK_DURATION"
	defaultDuration = 10 * time.Minute
	maxDuration     = 15 * time.Minute

	// slots callers are up at any moment, each slot in room slot%rooms:
	// 20 rooms of 10. A slot places one call after another.
	slots = 200
	rooms = 20
	// maxCalls bounds the whole run: 200 slots placing a call every 5 s
	// (the shortest stay) for maxDuration is 36,000.
	maxCalls = 40000
	// minStay and maxStay bound how long a caller stays in its room.
	minStay, maxStay = 5 * time.Second, 60 * time.Second
	// rampUp spreads the slots' first calls, so that the run does not
	// begin with 200 INVITEs in one instant.
	rampUp = 10 * time.Second
	// rtpTimeout is the bridge's rtp.timeout: short, so that callers who
	// vanish without a BYE are hung up within the run.
	rtpTimeout = 5 * time.Second
	// agents is how many SIP user agents the callers share (50 each).
	agents = 4
	// toneDBFS is the level each caller sends its tone at.
	toneDBFS = -20
	// sampleShare of ordinary calls keep 3 s of audio and check, before
	// hanging up, that they hear a room-mate.
	sampleShare = 0.1
	// hearFraction is the share of 100 ms blocks that must carry a
	// room-mate's tone for a check to pass.
	hearFraction = 0.8
	// guessers is how many caller numbers guess PINs: each number is
	// blocked after its tenth failure (the fourth call), so the run covers
	// both a wrong-PIN hang-up and a blocked number.
	guessers = 5
	// warmup is how long the warm-up round runs, with stays of
	// warmupStay at most: shorter than the soak's, so that it turns
	// callers over faster and its peaks (goroutines, callers at the PIN
	// prompt, SIP transactions) are at least the soak's.
	warmup, warmupStay = 45 * time.Second, 20 * time.Second
)

// linger is how long SIP transactions outlive the call they belong to:
// sipgo keeps a server transaction Timer J (non-INVITE) or Timer L
// (INVITE after a 2xx) and a client INVITE transaction Timer M after its
// final answer, 64*T1 = 32 s each, plus a margin. Figures taken sooner
// still count those transactions' timers, buffers and goroutines.
var linger = max(sip.Timer_J, sip.Timer_L, sip.Timer_M) + 3*time.Second

// kind is what a call does.
type kind int

const (
	// ordinary: the right PIN by RFC 4733, a tone for 5-60 s, BYE.
	ordinary kind = iota
	// retry: a wrong PIN first, then the right one; then like ordinary.
	retry
	// guess: three wrong PINs from a guessing number; the bridge hangs up
	// (wrong PIN, or the number is blocked).
	guess
	// vanish: the right PIN by SIP INFO, then no RTP ever (all of it is
	// lost on the way) and no BYE: the bridge hangs up after rtp.timeout.
	vanish
	// quit: hangs up at the PIN prompt.
	quit
)

// pick draws a call's kind: mostly ordinary callers, and now and then the
// paths that must not leak either.
func pick(r *rand.Rand) kind {
	switch x := r.IntN(100); {
	case x < 80:
		return ordinary
	case x < 87:
		return retry
	case x < 92:
		return guess
	case x < 97:
		return vanish
	default:
		return quit
	}
}

// roomPIN is room i's member PIN; wrong PINs start with 9 and never match.
func roomPIN(i int) string { return strconv.Itoa(2000 + 37*i) }

const wrongPINs = "9991#9992#9993#"

// slot is one of the 200 places a caller fills, one call after another.
type slot struct {
	id, room int
	freq     float64
	number   string
	agent    *softphone.Agent
	rng      *rand.Rand
	// joined is when the current call is surely in its room and sending
	// its tone (unix ns), 0 when it is not; room-mates' hearing checks
	// read it.
	joined atomic.Int64
}

// run is one soak against one bridge.
type run struct {
	t        *testing.T
	ctx      context.Context
	a        *app.App
	target   string
	slots    []*slot
	gauge    *Gauge
	deadline time.Time
	placed   atomic.Int64

	mu       sync.Mutex
	outcomes map[string]int // by outcome; "fail: ..." are unexpected
	lastEnd  time.Time      // when the last call ended, for linger
	heard    struct{ passed, failed, skipped int }
	worst    float64 // lowest hearing fraction of a check that failed
}

func (r *run) record(outcome string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.outcomes[outcome]++
}

func TestSoak(t *testing.T) {
	if os.Getenv(soakEnv) != "1" {
		t.Skipf("the soak runs for minutes; `make soak` runs it (%s=1)", soakEnv)
	}
	duration := defaultDuration
	if v := os.Getenv(durationEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 10*time.Second || d > maxDuration {
			t.Fatalf("%s=%q: want a duration from 10s to %v", durationEnv, v, maxDuration)
		}
		duration = d
	}
	// Warm-up, two settles of linger and the draining need about 3 minutes
	// beyond the run itself.
	if dl, ok := t.Deadline(); ok && time.Until(dl) < duration+4*time.Minute {
		t.Fatalf("go test -timeout leaves %v; a %v soak needs %v", time.Until(dl).Round(time.Second), duration, duration+4*time.Minute)
	}

	if os.Getenv(profileEnv) != "" {
		// Every allocation sampled, so that the profiles' difference is
		// exact rather than a scaled guess from one sample per 512 KB.
		runtime.MemProfileRate = 1
	}
	tally := NewTally()
	a := startBridge(t, tally)
	r := &run{
		t: t, ctx: context.Background(), a: a, gauge: NewGauge(nil),
		outcomes: map[string]int{},
	}
	for _, l := range a.SIPAddrs() {
		if l.Transport == "udp" {
			r.target = l.Addr.String()
		}
	}
	// The agents live through both snapshots: they are the callers'
	// phones' shared SIP stacks, there before the baseline and after the
	// end, so neither figure counts their making or closing.
	var ags []*softphone.Agent
	for range agents {
		ag, err := softphone.NewAgent(softphone.AgentConfig{UserAgent: "groupbridge-soak"})
		if err != nil {
			t.Fatal(err)
		}
		ags = append(ags, ag)
	}
	t.Cleanup(func() {
		for _, ag := range ags {
			_ = ag.Close()
		}
	})
	for i := range slots {
		r.slots = append(r.slots, &slot{
			id: i, room: i % rooms,
			// 300-750 Hz, 50 Hz apart: distinct within a room.
			freq:   300 + 50*float64(i/rooms),
			number: fmt.Sprintf("+1555200%04d", i),
			agent:  ags[i%agents],
			rng:    rand.New(rand.NewPCG(uint64(i), 0x50a4)),
		})
	}

	// The baseline comes after a warm-up round at full scale, not before
	// any call. The process keeps for good what serving calls at all
	// takes (sync.Pools, codec tables, sipgo's buffers, the metrics' label
	// children) and what its peak took: the Go runtime never frees a
	// goroutine's descriptor (about 450 bytes each; ~900 goroutines at
	// the peak are 400 KB), timer heaps and maps do not shrink. That is
	// 1-2 MB against a live heap of 4 MB at rest, so measured before any
	// call it would read as a 30% leak. After a warm-up that reaches the
	// soak's peaks, what grows is what grows with the number of calls: a
	// leak.
	t.Logf("warm-up: %d callers in %d rooms for %v, stays of %v-%v", slots, rooms, warmup, minStay, warmupStay)
	warmPeaks, _ := r.phase(warmup, minStay, warmupStay)
	r.settle("warm-up")
	warmCalls := sum(r.snapshotOutcomes())
	base := measure(t)
	writeHeapProfile(t, "heap-baseline.pprof")
	t.Logf("baseline: %d goroutines, %d open files, live heap %s", base.Goroutines, base.OpenFiles, MiB(base.HeapLive))

	cpu0, err := ProcessCPU()
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.outcomes = map[string]int{}
	r.heard.passed, r.heard.failed, r.heard.skipped = 0, 0, 0
	r.mu.Unlock()
	r.gauge = NewGauge(nil)
	t.Logf("soak: %d callers in %d rooms for %v, stays of %v-%v", slots, rooms, duration, minStay, maxStay)
	peaks, elapsed := r.phase(duration, minStay, maxStay)
	cpu1, err := ProcessCPU()
	if err != nil {
		t.Fatal(err)
	}
	_, peak, callerSeconds := r.gauge.Read()

	r.settle("end")
	end := measure(t)
	writeHeapProfile(t, "heap-end.pprof")

	// The report.
	var b strings.Builder
	fmt.Fprintf(&b, "\n=== soak: %v of %d callers in %d rooms (ran %v) ===\n", duration, slots, rooms, elapsed.Round(time.Second))
	outs := r.snapshotOutcomes()
	placed, failed := 0, 0
	for _, k := range slices.Sorted(maps.Keys(outs)) {
		placed += outs[k]
		if strings.HasPrefix(k, "fail") {
			failed += outs[k]
		}
	}
	fmt.Fprintf(&b, "calls placed       %d (warm-up %d more)\n", placed, warmCalls)
	for _, k := range slices.Sorted(maps.Keys(outs)) {
		fmt.Fprintf(&b, "  %-40s %d\n", k, outs[k])
	}
	fmt.Fprintf(&b, "failed             %d (%.2f%%)\n", failed, pct(failed, placed))
	fmt.Fprintf(&b, "joined (bridge)    %d, warm-up included\n", tally.Count("call joined", "", ""))
	fmt.Fprintf(&b, "peak concurrent    %d calls up (caller side); bridge: %d calls active, %d in rooms, %d rooms\n",
		peak, peaks.calls, peaks.members, peaks.rooms)
	fmt.Fprintf(&b, "goroutine peak     %d in the soak, %d in the warm-up (sampled every 5 s)\n", peaks.goroutines, warmPeaks.goroutines)
	fmt.Fprintf(&b, "hearing checks     %d passed, %d failed, %d skipped (no room-mate up through the window)\n",
		r.heard.passed, r.heard.failed, r.heard.skipped)
	fmt.Fprintf(&b, "caller-seconds     %.0f (mean %.1f up)\n", callerSeconds, callerSeconds/elapsed.Seconds())
	cpu := (cpu1 - cpu0).Seconds()
	fmt.Fprintf(&b, "process CPU        %.1f s = %.0f us per caller-second (bridge and all softphones: one process)\n",
		cpu, cpu*1e6/max(callerSeconds, 1))
	fmt.Fprintf(&b, "goroutines         baseline %d, end %d\n", base.Goroutines, end.Goroutines)
	fmt.Fprintf(&b, "open files         baseline %d, end %d\n", base.OpenFiles, end.OpenFiles)
	fmt.Fprintf(&b, "live heap          baseline %s, end %s (%+.1f%%, %+.0f bytes per call placed)\n",
		MiB(base.HeapLive), MiB(end.HeapLive), Growth(base.HeapLive, end.HeapLive)*100,
		(float64(end.HeapLive)-float64(base.HeapLive))/float64(max(placed, 1)))
	fmt.Fprintf(&b, "bridge log, warm-up included:\n")
	for _, l := range tally.Lines() {
		if strings.Contains(l, " WARN ") || strings.Contains(l, " ERROR ") || strings.Contains(l, "call ") ||
			strings.Contains(l, "session") || strings.Contains(l, "no media") {
			fmt.Fprintf(&b, "  %s\n", l)
		}
	}
	t.Log(b.String())

	// The verdict.
	// Goroutines and files have no slack: every one the soak's calls
	// started must be gone once their transactions expired. The runtime
	// keeps none of its own per call (its GC workers, timers and netpoller
	// exist before the baseline).
	for _, bad := range Compare(base, end, Limits{HeapFraction: 0.10}) {
		t.Error("leak: " + bad)
	}
	if end.Goroutines > base.Goroutines {
		// Where the extra goroutines wait is what names the leak.
		var dump strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&dump, 1)
		t.Logf("goroutines at the end:\n%.20000s", dump.String())
	}
	if n := tally.Level("ERROR"); n > 0 {
		t.Errorf("the bridge logged %d errors", n)
	}
	if ans, ended := tally.Count("call answered", "", ""), tally.Count("call ended", "", ""); ans != ended {
		t.Errorf("the bridge answered %d calls and ended %d", ans, ended)
	}
	if placed == 0 || pct(failed, placed) > 2 {
		t.Errorf("%d of %d calls failed (more than 2%%)", failed, placed)
	}
	if r.heard.failed*10 > r.heard.passed+r.heard.failed {
		t.Errorf("%d of %d hearing checks failed (worst %.0f%% of blocks)", r.heard.failed, r.heard.passed+r.heard.failed, r.worst*100)
	}
	if duration >= time.Minute && r.heard.passed == 0 {
		t.Error("no hearing check passed")
	}
}

// startBridge runs the whole bridge in-process, its log counted by tally.
func startBridge(t *testing.T, tally *Tally) *app.App {
	t.Helper()
	lo := freeRange(t, rtpPorts)
	var g strings.Builder
	for i := range rooms {
		fmt.Fprintf(&g, "\n  - name: Room %02d\n    member_pin: %q\n    led_by: peer\n", i+1, roomPIN(i))
	}
	yaml := fmt.Sprintf(`
sip:
  listen: ["udp:127.0.0.1:0"]
rtp:
  address: 127.0.0.1
  port_min: %d
  port_max: %d
  timeout: %s
log:
  format: json
admin:
  listen: 127.0.0.1:0
# The soak measures resources, not the guessing defence: its guessers and
# retries (12%% of calls) would put the shared number under attack and pace
# every PIN answer, so the budget is set far above their rate.
limits:
  pin_budget: 600
  pin_budget_bridge: 100000
groups:%s`, lo, lo+rtpPorts-1, rtpTimeout, g.String())
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	cfg.Attendance.Path = filepath.Join(t.TempDir(), "attendance.db") // not the relative default
	a, err := app.New(cfg, app.Options{LogOutput: tally})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return a
}

// rtpPorts is the bridge's RTP range: 600 calls, three times the callers,
// for calls whose ports are still held while their successors start.
const rtpPorts = 1200

// freeRange returns n consecutive ports, starting even, that belong to the
// soak until it ends (testports.Range): below the kernel's ephemeral range,
// where the softphones' own RTP sockets are, and held by no other test or
// load run that uses testports. The bridge's pool would skip a taken
// port, but a range that is half taken would refuse calls with 503 and
// spoil the soak.
func freeRange(t *testing.T, n int) int {
	t.Helper()
	return testports.Range(t, n)
}

// phase runs every slot's calls from now for d, each caller staying for
// a random time in [lo, hi), and returns the peaks seen and how long it
// took until the last call ended.
func (r *run) phase(d, lo, hi time.Duration) (bridgePeaks, time.Duration) {
	start := time.Now()
	r.deadline = start.Add(d)
	stop := make(chan struct{})
	watched := make(chan bridgePeaks, 1)
	go func() { watched <- r.watch(stop) }()
	var wg sync.WaitGroup
	for _, s := range r.slots {
		wg.Go(func() { r.loop(s, start.Add(rampUp*time.Duration(s.id)/slots), lo, hi) })
	}
	wg.Wait()
	close(stop)
	return <-watched, time.Since(start)
}

// loop places one call after another in slot s from first until the
// deadline (or maxCalls).
func (r *run) loop(s *slot, first time.Time, lo, hi time.Duration) {
	time.Sleep(time.Until(first))
	for time.Until(r.deadline) > lo && r.placed.Add(1) <= maxCalls {
		stay := lo + time.Duration(s.rng.Int64N(int64(hi-lo)))
		r.call(s, pick(s.rng), stay)
	}
}

// call places one call of kind k from slot s and records its outcome.
// Outcomes starting with "fail" are what should not happen.
func (r *run) call(s *slot, k kind, stay time.Duration) {
	caller := s.number
	var digits string
	var mode softphone.DigitMode
	var impair *softphone.Impairment
	switch k {
	case ordinary:
		digits, mode = roomPIN(s.room)+"#", softphone.DigitRFC4733
	case retry:
		digits, mode = "9999#"+roomPIN(s.room)+"#", softphone.DigitRFC4733
	case guess:
		caller = fmt.Sprintf("+1555900000%d", s.rng.IntN(guessers))
		digits, mode = wrongPINs, softphone.DigitRFC4733
	case vanish:
		// Every RTP packet is lost on the way, so the PIN goes by SIP INFO.
		digits, mode = roomPIN(s.room)+"#", softphone.DigitInfoRelay
		impair = &softphone.Impairment{Loss: 1}
	}
	sampled := (k == ordinary || k == retry) && s.rng.Float64() < sampleShare && stay >= 10*time.Second
	keep := time.Duration(-1)
	if sampled {
		keep = 3 * time.Second
	}
	dctx, cancel := context.WithTimeout(r.ctx, 15*time.Second)
	defer cancel()
	p, err := softphone.Dial(dctx, softphone.Config{
		Server: r.target, Caller: caller, Agent: s.agent, Keep: keep, Impair: impair,
	})
	if err != nil {
		r.record("fail: dial " + softphone.FailureCause(err))
		return
	}
	r.gauge.Up()
	defer func() {
		r.gauge.Down()
		r.mu.Lock()
		r.lastEnd = time.Now()
		r.mu.Unlock()
	}()
	r.record(r.converse(s, k, p, digits, mode, stay, sampled))
}

// converse is the call from the answer to its end.
func (r *run) converse(s *slot, k kind, p *softphone.Phone, digits string, mode softphone.DigitMode, stay time.Duration, sampled bool) string {
	dctx, cancel := context.WithTimeout(r.ctx, 20*time.Second)
	defer cancel()
	if k == quit {
		time.Sleep(time.Duration(500+s.rng.IntN(2500)) * time.Millisecond)
		if err := hangup(p); err != nil {
			return "fail: BYE"
		}
		return "ok: hung up at the PIN prompt"
	}
	err := p.SendDigits(dctx, digits, mode)
	if k == guess {
		// The bridge may hang up while the guesses are still being typed.
		if !waitEnd(p, 30*time.Second) {
			_ = hangup(p)
			return "fail: guessing call not ended by the bridge"
		}
		return "ok: wrong PINs, hung up by the bridge"
	}
	if err != nil {
		_ = hangup(p)
		return "fail: digits"
	}
	if k == vanish {
		if !waitEnd(p, rtpTimeout+15*time.Second) {
			_ = hangup(p)
			return "fail: vanished call not ended by the bridge"
		}
		return "ok: vanished, hung up by the bridge"
	}
	p.Media().SendTone(s.freq, toneDBFS)
	// The join follows the '#' within a tick or two; a second is margin.
	s.joined.Store(time.Now().Add(time.Second).UnixNano())
	defer s.joined.Store(0)
	stay = min(stay, max(0, time.Until(r.deadline)))
	if waitEnd(p, stay) {
		return "fail: ended by the bridge"
	}
	if sampled {
		r.hearing(s, p)
	}
	s.joined.Store(0)
	if err := hangup(p); err != nil {
		return "fail: BYE"
	}
	if k == retry {
		return "ok: wrong PIN, then joined"
	}
	return "ok: joined"
}

// hearing checks that s hears a room-mate's tone over the last 2 s, when
// some room-mate was in the room and sending throughout them.
func (r *run) hearing(s *slot, p *softphone.Phone) {
	endW := time.Now().Add(-200 * time.Millisecond) // packets still in flight are not silence
	startW := endW.Add(-2 * time.Second)
	var mates []*slot
	var since []int64
	for _, m := range r.slots {
		if m.room == s.room && m != s {
			mates = append(mates, m)
			since = append(since, m.joined.Load())
		}
	}
	got := p.Media().Received(startW)
	if trim := 200 * 8; len(got) > trim {
		got = got[:len(got)-trim]
	}
	eligible := false
	for i, m := range mates {
		// The same join time before and after reading: the same call,
		// up through the whole window.
		if j := since[i]; j != 0 && j <= startW.UnixNano() && m.joined.Load() == j {
			eligible = true
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !eligible {
		r.heard.skipped++
		return
	}
	// With max_talkers only the loudest few of equally loud room-mates
	// are mixed, so any room-mate's tone will do.
	best := 0.0
	for _, m := range mates {
		frac, _ := softphone.ToneBlocks(got, m.freq, 100*time.Millisecond, -35)
		best = max(best, frac)
	}
	if best >= hearFraction {
		r.heard.passed++
		return
	}
	if r.heard.failed == 0 || best < r.worst {
		r.worst = best
	}
	r.heard.failed++
}

// bridgePeaks are the highest figures the bridge's metrics showed.
type bridgePeaks struct{ calls, members, rooms, goroutines int }

// watch scrapes the bridge's metrics every 5 s for their peaks and logs
// progress every minute, until stop.
func (r *run) watch(stop <-chan struct{}) bridgePeaks {
	var pk bridgePeaks
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-stop:
			return pk
		case <-tick.C:
		}
		m := r.scrape()
		pk.goroutines = max(pk.goroutines, runtime.NumGoroutine())
		pk.calls = max(pk.calls, int(m["groupbridge_calls_active"]))
		pk.members = max(pk.members, int(m[`groupbridge_room_members{placement="room"}`]))
		pk.rooms = max(pk.rooms, int(m["groupbridge_rooms"]))
		if n%12 == 0 {
			up, _, _ := r.gauge.Read()
			outs := r.snapshotOutcomes()
			fails := 0
			for k, v := range outs {
				if strings.HasPrefix(k, "fail") {
					fails += v
				}
			}
			r.t.Logf("%v to go: %d up, %d calls done, %d failed, bridge %v calls active, %d goroutines",
				max(0, time.Until(r.deadline)).Round(time.Second), up, sum(outs), fails, m["groupbridge_calls_active"], runtime.NumGoroutine())
		}
	}
}

// scrape reads the bridge's own metrics in-process (no socket that would
// show in the figures) as name{labels} -> value.
func (r *run) scrape() map[string]float64 {
	rec := httptest.NewRecorder()
	r.a.Metrics().Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	out := map[string]float64{}
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// settle waits until the bridge has no call, room or caller left, then
// until the calls' SIP transactions have expired (linger after the last
// call ended), then until the goroutine count holds still for 3 s.
func (r *run) settle(phase string) {
	t := r.t
	deadline := time.Now().Add(time.Minute)
	for {
		m := r.scrape()
		busy := m["groupbridge_calls_active"] + m["groupbridge_rooms"] +
			m[`groupbridge_room_members{placement="room"}`] + m[`groupbridge_room_members{placement="waiting"}`]
		if busy == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the bridge still has calls or rooms a minute after the last call: %v calls, %v rooms",
				phase, m["groupbridge_calls_active"], m["groupbridge_rooms"])
		}
		time.Sleep(250 * time.Millisecond)
	}
	r.mu.Lock()
	last := r.lastEnd
	r.mu.Unlock()
	t.Logf("%s: bridge idle; waiting %v for SIP transactions to expire", phase, time.Until(last.Add(linger)).Round(time.Second))
	time.Sleep(time.Until(last.Add(linger)))
	prev, still := -1, 0
	for i := 0; i < 30 && still < 3; i++ {
		n := measure(t).Goroutines
		if n == prev {
			still++
		} else {
			still = 0
		}
		prev = n
		time.Sleep(time.Second)
	}
}

// profileEnv names a directory for heap profiles of the baseline and the
// end (heap-baseline.pprof, heap-end.pprof): `go tool pprof -sample_index
// inuse_space -diff_base heap-baseline.pprof heap-end.pprof` shows what grew.
const profileEnv = "SOAK_PROFILE_DIR"

// writeHeapProfile writes the heap profile as of the last collection into
// $SOAK_PROFILE_DIR, when set.
func writeHeapProfile(t *testing.T, name string) {
	t.Helper()
	dir := os.Getenv(profileEnv)
	if dir == "" {
		return
	}
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		t.Fatal(err)
	}
	t.Logf("heap profile written to %s", f.Name())
}

func measure(t *testing.T) Figures {
	t.Helper()
	f, err := Measure()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (r *run) snapshotOutcomes() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.outcomes))
	for k, v := range r.outcomes {
		out[k] = v
	}
	return out
}

// waitEnd waits up to d for the call to end; it reports whether it did.
func waitEnd(p *softphone.Phone, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-p.Done():
		return true
	case <-tm.C:
		return false
	}
}

func hangup(p *softphone.Phone) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return p.Hangup(ctx)
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func pct(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return 100 * float64(n) / float64(of)
}
