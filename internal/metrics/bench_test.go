package metrics

import (
	"strings"
	"testing"
	"time"
)

// BenchmarkObserveTick is the cost the mixing clock pays every 20 ms.
func BenchmarkObserveTick(b *testing.B) {
	m := New()
	b.ReportAllocs()
	for b.Loop() {
		m.ObserveTick(137 * time.Microsecond)
	}
}

// BenchmarkCallOutcome is the cost of counting a call's outcome, a known
// one and a rejection spelled as an outcome.
func BenchmarkCallOutcome(b *testing.B) {
	m := New()
	b.ReportAllocs()
	for b.Loop() {
		m.CallOutcome("wrong-pin")
		m.CallOutcome("rejected-scanner")
	}
}

// BenchmarkCallRejected is on the flood path (scanners, rate limits).
func BenchmarkCallRejected(b *testing.B) {
	m := New()
	b.ReportAllocs()
	for b.Loop() {
		m.CallRejected("rate-limited")
	}
}

// BenchmarkScrape is one whole /metrics answer (our series, the Go and
// process collectors and the encoding), for scale: it is not a hot path.
func BenchmarkScrape(b *testing.B) {
	m := New()
	m.RegisterCallsActive(func() int { return 100 })
	m.RegisterRooms(func() (int, int, int) { return 10, 95, 5 })
	m.RegisterClock(func() (int64, int64) { return 1e6, 3 })
	m.RegisterRTP(func() RTPStats {
		return RTPStats{PacketsIn: 1e9, Dropped: map[string]uint64{"late": 5, "duplicate": 1}}
	})
	b.ReportAllocs()
	for b.Loop() {
		if body := scrapeBody(b, m); !strings.Contains(body, "groupbridge_calls_active 100") {
			b.Fatal("scrape without calls_active")
		}
	}
}
