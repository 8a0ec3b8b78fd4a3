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
				blocked, _ = g.Fail(Caller{Number: tc.identity}, "", now)
				now = now.Add(tc.spacing)
			}
			if blocked != tc.wantBlock {
				t.Fatalf("Fail reported blocked=%v, want %v", blocked, tc.wantBlock)
			}
			if b, _ := g.Blocked(Caller{Number: tc.identity}, now); b != tc.wantBlock {
				t.Fatalf("Blocked = %v, want %v", b, tc.wantBlock)
			}
		})
	}
}

// A caller known for one call only (sip.no_identity) has no number
// record: however much it guesses, neither it nor withheld callers are
// blocked (the per-number Budget is what limits it), while an
// authenticated user's own records still count.
func TestPerCallCallerHasNoNumberRecord(t *testing.T) {
	g := New(Config{})
	if g.Memory() != 30*time.Minute {
		t.Errorf("Memory() = %v, want Window + Lockout = 30m", g.Memory())
	}
	pbx := Caller{PerCall: true}
	for i := range 100 {
		if blocked, _ := g.Fail(pbx, "", t0.Add(time.Duration(i)*time.Second)); blocked {
			t.Fatalf("a per-call caller blocked after %d failures", i+1)
		}
	}
	if b, _ := g.Blocked(Caller{}, t0.Add(2*time.Minute)); b {
		t.Fatal("per-call callers filled the withheld numbers' shared record")
	}
	if n := g.Callers(); n != 0 {
		t.Fatalf("%d records kept for per-call callers", n)
	}
	user := Caller{PerCall: true, User: "u"}
	blocked := false
	for i := range 10 {
		blocked, _ = g.Fail(user, "", t0.Add(time.Duration(i)*time.Second))
	}
	if !blocked {
		t.Fatal("a per-call caller's digest user was not blocked after 10 failures")
	}
}

func TestLockoutExpiresAndOthersUnaffected(t *testing.T) {
	g := New(Config{})
	for i := range 10 {
		g.Fail(Caller{Number: "guesser"}, "", t0.Add(time.Duration(i)*time.Second))
	}
	if b, until := g.Blocked(Caller{Number: "guesser"}, t0.Add(time.Minute)); !b || !until.Equal(t0.Add(9*time.Second+15*time.Minute)) {
		t.Fatalf("blocked %v until %v", b, until)
	}
	if b, _ := g.Blocked(Caller{Number: "someone-else"}, t0.Add(time.Minute)); b {
		t.Fatal("another caller is blocked")
	}
	if b, _ := g.Blocked(Caller{}, t0.Add(time.Minute)); b {
		t.Fatal("anonymous callers are blocked by one caller's guessing")
	}
	if b, _ := g.Blocked(Caller{Number: "guesser"}, t0.Add(16*time.Minute)); b {
		t.Fatal("lockout did not expire")
	}
}

func TestRateAndMemoryBound(t *testing.T) {
	g := New(Config{MaxCallers: 100})
	for i := range 250 {
		g.Fail(Caller{Number: fmt.Sprintf("id-%d", i)}, "Monday", t0.Add(time.Duration(i)*100*time.Millisecond))
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

// The alarm is raised once as a rate crosses the level, for the bridge
// and for a group apart, and again only after the rate fell to half.
func TestAlarmCrossings(t *testing.T) {
	type fail struct {
		group string
		at    time.Duration // since t0
	}
	// burst returns n failures one every step, from start.
	burst := func(group string, start, step time.Duration, n int) []fail {
		out := make([]fail, n)
		for i := range out {
			out[i] = fail{group, start + time.Duration(i)*step}
		}
		return out
	}
	tests := []struct {
		name           string
		level          int
		fails          []fail
		bridge, group  int // alarms raised
		lastBridgeRate int
		lastGroupRate  int
	}{
		{"at the level is no alarm", 10, burst("", 0, time.Second, 10), 0, 0, 10, 0},
		{"above the level: one alarm", 10, burst("", 0, time.Second, 11), 1, 0, 11, 0},
		{"staying above: still one", 10, burst("", 0, 100*time.Millisecond, 50), 1, 0, 50, 0},
		{"spread over minutes: none", 10, burst("", 0, 7*time.Second, 40), 0, 0, 9, 0},
		{"group and bridge cross together", 10, burst("Monday", 0, time.Second, 11), 1, 1, 11, 11},
		{"bridge only: calls to no group number", 5, append(burst("Monday", 0, time.Second, 3), burst("", 3*time.Second, time.Second, 3)...), 1, 0, 6, 0},
		{"two groups: each its own rate", 5, append(burst("Monday", 0, time.Second, 6), burst("Tuesday", 6*time.Second, time.Second, 6)...), 1, 2, 12, 6},
		{"re-armed after the rate fell to half", 10, append(burst("", 0, time.Second, 11), burst("", 3*time.Minute, time.Second, 11)...), 2, 0, 11, 0},
		{"default level 60", 0, burst("", 0, 500*time.Millisecond, 61), 1, 0, 61, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := New(Config{AlarmRate: tc.level, MaxCallers: 1000})
			bridge, group := 0, 0
			var last Alarm
			for i, f := range tc.fails {
				_, last = g.Fail(Caller{Number: fmt.Sprintf("caller-%d", i)}, f.group, t0.Add(f.at))
				if last.Bridge {
					bridge++
				}
				if last.Group {
					group++
				}
				if last.Raised() != (last.Bridge || last.Group) {
					t.Fatal("Raised disagrees with the flags")
				}
			}
			if bridge != tc.bridge || group != tc.group {
				t.Errorf("alarms: bridge %d, group %d; want %d and %d", bridge, group, tc.bridge, tc.group)
			}
			if last.BridgeRate != tc.lastBridgeRate || last.GroupRate != tc.lastGroupRate {
				t.Errorf("last rates %d and %d, want %d and %d", last.BridgeRate, last.GroupRate, tc.lastBridgeRate, tc.lastGroupRate)
			}
		})
	}
}

// SetAlarmRate moves the level for what follows.
func TestSetAlarmRate(t *testing.T) {
	g := New(Config{AlarmRate: 100})
	for i := range 20 {
		if _, a := g.Fail(Caller{}, "", t0.Add(time.Duration(i)*time.Second)); a.Raised() {
			t.Fatalf("alarm at %d failures with level 100", i+1)
		}
	}
	g.SetAlarmRate(10)
	if _, a := g.Fail(Caller{}, "", t0.Add(21*time.Second)); !a.Bridge || a.BridgeRate != 21 {
		t.Fatalf("after lowering the level to 10: %+v, want a bridge alarm at 21", a)
	}
	g.SetAlarmRate(0)
	if g.cfg.AlarmRate != 60 {
		t.Fatalf("SetAlarmRate(0) left %d, want the default 60", g.cfg.AlarmRate)
	}
}
