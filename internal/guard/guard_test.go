package guard

import (
	"fmt"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func TestCallerBlockedAfterTenFailures(t *testing.T) {
	tests := []struct {
		name      string
		identity  string
		failures  int
		spacing   time.Duration
		wantBlock bool
	}{
		{"nine is fine", "caller-a", 9, time.Second, false},
		{"ten blocks", "caller-a", 10, time.Second, true},
		{"ten spread over more than the window", "caller-a", 10, 2 * time.Minute, false},
		{"anonymous share a higher limit: 29", "", 29, time.Second, false},
		{"anonymous: 30 blocks", "", 30, time.Second, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := New(Config{})
			now := t0
			blocked := false
			for range tc.failures {
				blocked = g.Fail(tc.identity, "", now)
				now = now.Add(tc.spacing)
			}
			if blocked != tc.wantBlock {
				t.Fatalf("Fail reported blocked=%v, want %v", blocked, tc.wantBlock)
			}
			if b, _ := g.Blocked(tc.identity, now); b != tc.wantBlock {
				t.Fatalf("Blocked = %v, want %v", b, tc.wantBlock)
			}
		})
	}
}

func TestLockoutExpiresAndOthersUnaffected(t *testing.T) {
	g := New(Config{})
	for i := range 10 {
		g.Fail("guesser", "", t0.Add(time.Duration(i)*time.Second))
	}
	if b, until := g.Blocked("guesser", t0.Add(time.Minute)); !b || !until.Equal(t0.Add(9*time.Second+15*time.Minute)) {
		t.Fatalf("blocked %v until %v", b, until)
	}
	if b, _ := g.Blocked("someone-else", t0.Add(time.Minute)); b {
		t.Fatal("another caller is blocked")
	}
	if b, _ := g.Blocked("", t0.Add(time.Minute)); b {
		t.Fatal("anonymous callers are blocked by one caller's guessing")
	}
	if b, _ := g.Blocked("guesser", t0.Add(16*time.Minute)); b {
		t.Fatal("lockout did not expire")
	}
}

func TestRateAndMemoryBound(t *testing.T) {
	g := New(Config{MaxCallers: 100})
	for i := range 250 {
		g.Fail(fmt.Sprintf("id-%d", i), "Monday", t0.Add(time.Duration(i)*100*time.Millisecond))
	}
	if n := g.Callers(); n > 100 {
		t.Fatalf("remembers %d callers, bound 100", n)
	}
	now := t0.Add(25 * time.Second)
	if r := g.Rate("", now); r != 250 {
		t.Fatalf("global rate %v, want 250 in the last minute", r)
	}
	if r := g.Rate("Monday", now); r != 250 {
		t.Fatalf("group rate %v", r)
	}
	if r := g.Rate("", now.Add(2*time.Minute)); r != 0 {
		t.Fatalf("rate after two quiet minutes %v", r)
	}
}
