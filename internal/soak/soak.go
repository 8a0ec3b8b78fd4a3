// Package soak is the measuring side of `make soak`: a long run of callers
// joining and leaving a bridge that runs in the same process, judged by
// whether the process gives back what the calls took. It holds what the
// soak test needs to judge that: snapshots of the process's own resources
// taken after a forced collection (Measure), their comparison with a
// baseline (Compare), a log sink that counts the bridge's JSON log records
// without keeping them (Tally) and a gauge of concurrent calls that also
// integrates caller-seconds (Gauge).
//
// The soak itself is TestSoak in this package; it skips unless
// GROUPBRIDGE_SOAK=1, so `make test` and CI never run it.
package soak

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Figures are a process's resources at one moment.
type Figures struct {
	// Goroutines is runtime.NumGoroutine.
	Goroutines int
	// OpenFiles is the number of entries in /proc/self/fd: sockets, epoll
	// instances, files.
	OpenFiles int
	// HeapLive is the heap the last completed collection found reachable
	// (runtime/metrics /gc/heap/live:bytes), in bytes.
	HeapLive uint64
}

// heapLiveMetric is the live heap as marked by the last GC cycle: unlike
// HeapAlloc it does not count objects allocated since, so two snapshots
// compare what is reachable and nothing else.
const heapLiveMetric = "/gc/heap/live:bytes"

// Measure forces a full collection (twice, so that objects kept alive only
// by finalizers or cleanups of the first cycle are collected in the
// second, then returns freed memory to the OS) and returns the figures.
func Measure() (Figures, error) {
	runtime.GC()
	runtime.GC()
	debug.FreeOSMemory()
	fds, err := openFiles()
	if err != nil {
		return Figures{}, err
	}
	s := []metrics.Sample{{Name: heapLiveMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return Figures{}, fmt.Errorf("soak: runtime metric %s not supported", heapLiveMetric)
	}
	return Figures{
		Goroutines: runtime.NumGoroutine(),
		OpenFiles:  fds,
		HeapLive:   s[0].Value.Uint64(),
	}, nil
}

// openFiles counts the process's open file descriptors. Reading the
// directory holds one descriptor itself, in every snapshot alike.
func openFiles() (int, error) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, fmt.Errorf("soak: open files: %w", err)
	}
	return len(ents), nil
}

// Limits are how far end figures may exceed the baseline.
type Limits struct {
	// Goroutines and OpenFiles are absolute slack.
	Goroutines, OpenFiles int
	// HeapFraction is the allowed growth of the live heap, 0.10 for 10%.
	HeapFraction float64
}

// Compare judges end against base: it returns one line per figure that
// grew past its limit, none when the process gave everything back. Fewer
// goroutines, files or heap than at the baseline is never a leak.
func Compare(base, end Figures, lim Limits) []string {
	var out []string
	if end.Goroutines > base.Goroutines+lim.Goroutines {
		out = append(out, fmt.Sprintf("goroutines: %d at the end, baseline %d (slack %d)", end.Goroutines, base.Goroutines, lim.Goroutines))
	}
	if end.OpenFiles > base.OpenFiles+lim.OpenFiles {
		out = append(out, fmt.Sprintf("open files: %d at the end, baseline %d (slack %d)", end.OpenFiles, base.OpenFiles, lim.OpenFiles))
	}
	if float64(end.HeapLive) > float64(base.HeapLive)*(1+lim.HeapFraction) {
		out = append(out, fmt.Sprintf("live heap: %s at the end, baseline %s (%+.1f%%, limit +%.0f%%)",
			MiB(end.HeapLive), MiB(base.HeapLive), Growth(base.HeapLive, end.HeapLive)*100, lim.HeapFraction*100))
	}
	return out
}

// Growth is (end-base)/base; 0 when base is 0.
func Growth(base, end uint64) float64 {
	if base == 0 {
		return 0
	}
	return (float64(end) - float64(base)) / float64(base)
}

// MiB formats a byte count in mebibytes.
func MiB(b uint64) string { return fmt.Sprintf("%.2f MiB", float64(b)/(1<<20)) }

// ProcessCPU returns the user plus system CPU time the process has used
// (getrusage, the same figure as utime+stime in /proc/self/stat but in
// microseconds rather than clock ticks).
func ProcessCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("soak: getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// Key identifies a kind of log record: its message, level and the outcome
// or reason it carries, if any. Nothing else of a record is looked at, so a
// Tally's size depends on the kinds of records, not on their number.
type Key struct {
	Msg, Level, Outcome, Reason string
}

func (k Key) String() string {
	s := k.Level + " " + k.Msg
	if k.Outcome != "" {
		s += " outcome=" + k.Outcome
	}
	if k.Reason != "" {
		s += " reason=" + k.Reason
	}
	return s
}

// maxPartial bounds the unfinished line a Tally waits for the rest of: a
// log record is far shorter, so anything longer is garbage to drop.
const maxPartial = 64 << 10

// Tally is an io.Writer for a JSON log (one object per line, as log/slog's
// JSON handler writes) that counts records by Key and keeps nothing else:
// a soak of thousands of calls must not grow its own heap by its log.
// Lines that are not JSON objects count under Key{Msg: "(not JSON)"}.
type Tally struct {
	mu      sync.Mutex
	counts  map[Key]int
	partial []byte
}

// NewTally returns an empty Tally.
func NewTally() *Tally { return &Tally{counts: map[Key]int{}} }

// Write counts the complete lines in p; an unfinished last line waits for
// the next Write.
func (t *Tally) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if len(t.partial)+len(p) > maxPartial {
				t.partial = t.partial[:0]
				t.counts[Key{Msg: "(not JSON)"}]++
				return n, nil
			}
			t.partial = append(t.partial, p...)
			return n, nil
		}
		line := p[:i]
		if len(t.partial) > 0 {
			line = append(t.partial, line...)
			t.partial = t.partial[:0]
		}
		t.count(line)
		p = p[i+1:]
	}
	return n, nil
}

// record is what a Tally reads of a log line.
type record struct {
	Msg     string `json:"msg"`
	Level   string `json:"level"`
	Outcome string `json:"outcome"`
	Reason  string `json:"reason"`
}

func (t *Tally) count(line []byte) {
	if len(bytes.TrimSpace(line)) == 0 {
		return
	}
	var r record
	if err := json.Unmarshal(line, &r); err != nil {
		t.counts[Key{Msg: "(not JSON)"}]++
		return
	}
	t.counts[Key(r)]++
}

// Count returns how many records had msg and, when given, that outcome
// and reason ("" matches any), at any level.
func (t *Tally) Count(msg, outcome, reason string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for k, c := range t.counts {
		if k.Msg == msg && (outcome == "" || k.Outcome == outcome) && (reason == "" || k.Reason == reason) {
			n += c
		}
	}
	return n
}

// Level returns how many records were logged at level ("ERROR", "WARN").
func (t *Tally) Level(level string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for k, c := range t.counts {
		if k.Level == level {
			n += c
		}
	}
	return n
}

// Lines returns "count key" lines for the records whose message has one
// of the prefixes (all records when none is given), most frequent first.
func (t *Tally) Lines(prefixes ...string) []string {
	t.mu.Lock()
	type kc struct {
		k Key
		c int
	}
	var all []kc
	for k, c := range t.counts {
		if len(prefixes) == 0 || hasAnyPrefix(k.Msg, prefixes) {
			all = append(all, kc{k, c})
		}
	}
	t.mu.Unlock()
	sort.Slice(all, func(i, j int) bool {
		if all[i].c != all[j].c {
			return all[i].c > all[j].c
		}
		return all[i].k.String() < all[j].k.String()
	})
	out := make([]string, len(all))
	for i, e := range all {
		out[i] = fmt.Sprintf("%7d  %s", e.c, e.k)
	}
	return out
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// Gauge counts calls up now, remembers the peak and integrates the count
// over time into caller-seconds, the denominator of CPU per caller-second.
type Gauge struct {
	mu    sync.Mutex
	now   func() time.Time
	n     int
	peak  int
	last  time.Time
	total time.Duration // caller-time accumulated up to last
}

// NewGauge returns a gauge at zero; now is the clock (nil: time.Now).
func NewGauge(now func() time.Time) *Gauge {
	if now == nil {
		now = time.Now
	}
	return &Gauge{now: now}
}

// advance adds the caller-time since the last change; g.mu is held.
func (g *Gauge) advance() {
	t := g.now()
	if !g.last.IsZero() {
		g.total += time.Duration(g.n) * t.Sub(g.last)
	}
	g.last = t
}

// Up counts a call that is now up.
func (g *Gauge) Up() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.advance()
	g.n++
	g.peak = max(g.peak, g.n)
}

// Down counts a call that has ended.
func (g *Gauge) Down() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.advance()
	g.n--
}

// Read returns the calls up now, the peak so far and the caller-seconds
// accumulated up to now.
func (g *Gauge) Read() (now, peak int, callerSeconds float64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.advance()
	return g.n, g.peak, g.total.Seconds()
}
