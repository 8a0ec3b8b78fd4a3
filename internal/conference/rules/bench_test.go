package rules

import (
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/group"
)

// bigSession returns a session with one facilitator and n members in the
// room (peer-led), or n members in the lobby (facilitator-led, no
// facilitator yet).
func bigSession(tb testing.TB, n int, lobby bool) *Session {
	tb.Helper()
	cfg := peer
	if lobby {
		cfg = facLed
	}
	s := New(cfg, t0)
	if !lobby {
		s.Join("f", group.Facilitator, t0)
	}
	for i := range n {
		if res, _ := s.Join("", group.Member, t0.Add(time.Duration(i)*time.Millisecond)); res.Refused != RefuseNone {
			tb.Fatalf("join %d refused: %v", i, res.Refused)
		}
	}
	return s
}

func TestHotPathsAllocateNothing(t *testing.T) {
	s := bigSession(t, 1000, false)
	if n := testing.AllocsPerRun(100, func() { _ = s.Heard(500) }); n != 0 {
		t.Errorf("Heard allocates %v", n)
	}
	now := t0.Add(time.Minute)
	if n := testing.AllocsPerRun(100, func() {
		now = now.Add(20 * time.Millisecond)
		_ = s.Tick(now)
	}); n != 0 {
		t.Errorf("idle Tick allocates %v", n)
	}
	// A full scan that fires nothing allocates nothing either.
	if n := testing.AllocsPerRun(100, func() {
		s.alarm.next, s.alarm.has = t0, true
		_ = s.Tick(now)
	}); n != 0 {
		t.Errorf("scanning Tick allocates %v", n)
	}
}

func BenchmarkHeard(b *testing.B) {
	s := bigSession(b, 1000, false)
	b.ReportAllocs()
	seat := 0
	for b.Loop() {
		seat = seat%1001 + 1
		_ = s.Heard(seat)
	}
}

// BenchmarkTick1000Idle is the engine's 20 ms tick with 1,000 members in
// the room and nothing due.
func BenchmarkTick1000Idle(b *testing.B) {
	s := bigSession(b, 1000, false)
	now := t0.Add(time.Minute)
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(20 * time.Millisecond)
		_ = s.Tick(now)
	}
}

// BenchmarkTick1000Scan forces the full scan of 1,000 members every call
// (the worst case of a tick that finds nothing due).
func BenchmarkTick1000Scan(b *testing.B) {
	s := bigSession(b, 1000, false)
	now := t0.Add(time.Minute)
	b.ReportAllocs()
	for b.Loop() {
		s.alarm.next, s.alarm.has = t0, true
		_ = s.Tick(now)
	}
}

// BenchmarkTick1000Lobby ticks every 20 ms with 1,000 members in the lobby,
// each hearing "The facilitator has not joined yet." every 30 s: the cost
// per tick, announcement bursts included.
func BenchmarkTick1000Lobby(b *testing.B) {
	s := bigSession(b, 1000, true)
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(20 * time.Millisecond)
		_ = s.Tick(now)
	}
}
