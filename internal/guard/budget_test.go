package guard

import (
	"fmt"
	"testing"
	"time"
)

// fails records n failures to number, evenly over span from start.
func fails(b *Budget, number string, start time.Time, span time.Duration, n int) (started int) {
	for i := range n {
		if b.Fail(number, start.Add(span*time.Duration(i)/time.Duration(n))) {
			started++
		}
	}
	return started
}

func TestBudgetAttackStartsAndEnds(t *testing.T) {
	tests := []struct {
		name     string
		number   string // where the failures go
		n        int
		span     time.Duration
		after    time.Duration // when to look, after the first failure
		ask      string        // the number asked about
		attacked bool
	}{
		{"within the budget", "g1", 6, 30 * time.Second, 31 * time.Second, "g1", false},
		{"past the budget", "g1", 7, 30 * time.Second, 31 * time.Second, "g1", true},
		{"another number is not slowed", "g1", 7, 30 * time.Second, 31 * time.Second, "g2", false},
		{"the shared number has its own budget", "", 7, 30 * time.Second, 31 * time.Second, "", true},
		{"spread thin: 6 a minute for 10 minutes", "g1", 60, 10 * time.Minute, 10 * time.Minute, "g1", false},
		{"still on 5 minutes after a burst", "g1", 7, time.Second, 5 * time.Minute, "g1", true},
		{"over ten quiet minutes after a burst", "g1", 7, time.Second, 11 * time.Minute, "g1", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBudget(BudgetConfig{})
			started := fails(b, tc.number, t0, tc.span, tc.n)
			if got := b.UnderAttack(tc.ask, t0.Add(tc.after)); got != tc.attacked {
				t.Fatalf("under attack = %v, want %v", got, tc.attacked)
			}
			if want := tc.n > 6 && tc.span < time.Minute; (started == 1) != want {
				t.Fatalf("Fail reported %d starts, want one start: %v", started, want)
			}
		})
	}
}

// Failures spread over many numbers, each within its own budget, put the
// whole bridge under attack.
func TestBudgetBridgeWide(t *testing.T) {
	b := NewBudget(BudgetConfig{})
	for i := range 31 {
		b.Fail(fmt.Sprintf("g%d", i%8), t0.Add(time.Duration(i)*time.Second))
	}
	now := t0.Add(40 * time.Second)
	for _, n := range []string{"g0", "g7", "", "never-failed"} {
		if !b.UnderAttack(n, now) {
			t.Errorf("number %q not under attack after 31 failures bridge-wide", n)
		}
	}
}

func TestBudgetDelayGrowsWithRate(t *testing.T) {
	tests := []struct {
		rate int // failures in the last minute
		want time.Duration
	}{
		{7, 10 * time.Second * 7 / 6},
		{12, 20 * time.Second},
		{30, 50 * time.Second},
		{100, 2 * time.Minute}, // MaxDelay
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.rate), func(t *testing.T) {
			b := NewBudget(BudgetConfig{})
			fails(b, "g1", t0, 10*time.Second, tc.rate)
			now := t0.Add(20 * time.Second)
			g := b.Gate("g1", now)
			if wait, ok := g.Admit(now); !wait || !ok {
				t.Fatalf("Admit = %v, %v under attack", wait, ok)
			}
			ready, next := g.Ready(now)
			if ready || next.Sub(now) != tc.want {
				t.Fatalf("ready %v, answer in %v, want %v", ready, next.Sub(now), tc.want)
			}
			if ready, _ := g.Ready(next.Add(-time.Millisecond)); ready {
				t.Fatal("answered before its delay")
			}
			if ready, _ := g.Ready(next); !ready {
				t.Fatal("not answered at its delay")
			}
		})
	}
}

// Attempts are answered in arrival order, one interval apart; the turn is
// fixed at admission, so it cannot depend on whether the PIN was right.
// The queue is capped and a caller who hangs up leaves it.
func TestBudgetQueue(t *testing.T) {
	b := NewBudget(BudgetConfig{Queue: 4})
	fails(b, "g1", t0, time.Second, 7)
	now := t0.Add(2 * time.Second)
	var gates []*Gate
	for i := range 5 {
		g := b.Gate("g1", now)
		wait, ok := g.Admit(now.Add(time.Duration(i) * time.Millisecond))
		if i < 4 && (!wait || !ok) {
			t.Fatalf("attempt %d: wait %v ok %v, want queued", i, wait, ok)
		}
		if i == 4 {
			if ok {
				t.Fatal("fifth attempt admitted into a queue of four")
			}
			continue
		}
		gates = append(gates, g)
	}
	if n := b.Waiting("g1", now); n != 4 {
		t.Fatalf("%d waiting, want 4", n)
	}
	// The third caller hangs up: a place frees, the others move up.
	gates[2].Close()
	gates = append(gates[:2], gates[3])
	late := b.Gate("g1", now)
	if wait, ok := late.Admit(now.Add(time.Second)); !wait || !ok {
		t.Fatal("no place after a caller left the queue")
	}
	gates = append(gates, late)
	// First answer after the delay at 7 a minute, then one every 10 s.
	first := now.Add(10 * time.Second * 7 / 6)
	for i, g := range gates {
		at := first.Add(time.Duration(i) * 10 * time.Second)
		if ready, _ := g.Ready(at.Add(-time.Millisecond)); ready {
			t.Errorf("attempt %d answered before %v", i, at.Sub(now))
		}
		for j, other := range gates[i+1:] {
			if ready, _ := other.Ready(at); ready {
				t.Errorf("attempt %d answered before attempt %d", i+1+j, i)
			}
		}
		if ready, _ := g.Ready(at); !ready {
			t.Errorf("attempt %d not answered at %v", i, at.Sub(now))
		}
	}
}

// Ready's next is a time worth asking again, never later than the turn.
func TestGateReadyEstimate(t *testing.T) {
	b := NewBudget(BudgetConfig{})
	fails(b, "", t0, time.Second, 7)
	now := t0.Add(time.Second)
	var gates []*Gate
	for range 3 {
		g := b.Gate("", now)
		g.Admit(now)
		gates = append(gates, g)
	}
	_, next := gates[2].Ready(now)
	if want := now.Add(10*time.Second*7/6 + 20*time.Second); !next.Equal(want) {
		t.Fatalf("third in line told to ask at %v, want %v", next.Sub(now), want.Sub(now))
	}
	if ready, _ := gates[2].Ready(next); !ready {
		t.Fatal("not ready at the estimate with nobody leaving")
	}
}

func TestBudgetKnownCallers(t *testing.T) {
	b := NewBudget(BudgetConfig{MaxKnown: 3})
	b.Remember("a", t0)
	if !b.Known(t0.Add(29*24*time.Hour), "x", "a") {
		t.Fatal("a caller from 29 days ago is not known")
	}
	if b.Known(t0.Add(30*24*time.Hour), "a") {
		t.Fatal("known after 30 days")
	}
	if b.KnownCount() != 0 {
		t.Fatal("expired caller kept")
	}
	for i := range 5 {
		b.Remember(fmt.Sprint("c", i), t0.Add(time.Duration(i)*time.Hour))
	}
	if n := b.KnownCount(); n != 3 {
		t.Fatalf("%d known, bound 3", n)
	}
	if b.Known(t0.Add(5*time.Hour), "c0") || !b.Known(t0.Add(5*time.Hour), "c4") {
		t.Fatal("the bound dropped the newest, not the oldest")
	}

	// A known caller is answered at once under attack; others queue.
	fails(b, "g1", t0, time.Second, 20)
	now := t0.Add(2 * time.Second)
	b.Remember("regular", now)
	known := b.Gate("g1", now, "other-group", "regular")
	if wait, ok := known.Admit(now); wait || !ok {
		t.Fatalf("known caller: wait %v ok %v", wait, ok)
	}
	if wait, _ := b.Gate("g1", now, "stranger").Admit(now); !wait {
		t.Fatal("unknown caller not queued under attack")
	}
	// A wrong PIN from a known caller's number (spoofed, perhaps) makes it
	// a stranger: this call's next try and its next call wait their turn.
	known.Fail(now)
	if wait, _ := known.Admit(now); !wait {
		t.Fatal("known caller not queued after a wrong PIN")
	}
	if b.Known(now, "regular") {
		t.Fatal("still known after a wrong PIN")
	}

	off := NewBudget(BudgetConfig{KnownFor: -1})
	off.Remember("a", t0)
	if off.Known(t0, "a") || off.KnownCount() != 0 {
		t.Fatal("known callers remembered while turned off")
	}
}

// Without an attack every answer comes at once.
func TestGateNoAttack(t *testing.T) {
	b := NewBudget(BudgetConfig{})
	fails(b, "g1", t0, 30*time.Second, 6)
	g := b.Gate("g1", t0)
	if wait, ok := g.Admit(t0.Add(31 * time.Second)); wait || !ok {
		t.Fatalf("wait %v ok %v without an attack", wait, ok)
	}
	if ready, _ := g.Ready(t0.Add(31 * time.Second)); !ready {
		t.Fatal("not ready without an attack")
	}
}

// The per-caller limits count every identity of a call on its own: a
// digest user or a source address that rotates caller numbers is blocked.
func TestCallerIdentities(t *testing.T) {
	tests := []struct {
		name    string
		caller  func(i int) Caller
		fails   int
		blocked bool
		probe   Caller // a fresh call sharing one identity
	}{
		{"user rotating numbers", func(i int) Caller { return Caller{Number: fmt.Sprint(i), User: "u1"} }, 10, true, Caller{Number: "new", User: "u1"}},
		{"user: nine", func(i int) Caller { return Caller{Number: fmt.Sprint(i), User: "u1"} }, 9, false, Caller{Number: "new", User: "u1"}},
		{"source rotating numbers", func(i int) Caller { return Caller{Number: fmt.Sprint(i), Source: "s1"} }, 30, true, Caller{Number: "new", Source: "s1"}},
		{"source: 29", func(i int) Caller { return Caller{Number: fmt.Sprint(i), Source: "s1"} }, 29, false, Caller{Number: "new", Source: "s1"}},
		{"other user from the same number is blocked by the number", func(int) Caller { return Caller{Number: "n1", User: "u1"} }, 10, true, Caller{Number: "n1", User: "u2"}},
		{"other number, other user: free", func(i int) Caller { return Caller{Number: fmt.Sprint(i), User: "u1"} }, 10, false, Caller{Number: "new", User: "u2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := New(Config{})
			for i := range tc.fails {
				g.Fail(tc.caller(i), "", t0.Add(time.Duration(i)*time.Second))
			}
			if b, _ := g.Blocked(tc.probe, t0.Add(time.Minute)); b != tc.blocked {
				t.Fatalf("blocked = %v, want %v", b, tc.blocked)
			}
		})
	}
}

func TestTimeToHit(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		name      string
		lengths   []int
		perMinute int
		want      time.Duration // within 0.1%
	}{
		{"two 6-digit PINs, own number", []int{6, 6}, 6, time.Duration(float64(1_000_001) / 3 / 6 * float64(time.Minute))},
		{"4-digit member, 6-digit facilitator", []int{4, 6}, 6, time.Duration(float64(10_001) / 2 / 6 * float64(time.Minute))},
		{"shared number, three groups 4+6", []int{4, 6, 4, 6, 4, 6}, 6, time.Duration(float64(10_001) / 4 / 6 * float64(time.Minute))},
		{"shared number, three groups 6+6", []int{6, 6, 6, 6, 6, 6}, 6, time.Duration(float64(1_000_001) / 7 / 6 * float64(time.Minute))},
		{"8-digit", []int{8}, 6, time.Duration(float64(100_000_001) / 2 / 6 * float64(time.Minute))},
		{"no PINs", nil, 6, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := TimeToHit(tc.lengths, tc.perMinute)
			diff := got - tc.want
			if diff < 0 {
				diff = -diff
			}
			if diff > tc.want/1000 {
				t.Fatalf("TimeToHit = %v (%.1f days), want %v", got, got.Hours()/24, tc.want)
			}
		})
	}
	if d := TimeToHit([]int{6, 6}, 6); d < 30*day || d > 40*day {
		t.Fatalf("two 6-digit PINs: %.1f days, want 38.6", d.Hours()/24)
	}
	if d := TimeToHitLength([]int{4, 6}, 6, 6); d != TimeToHit([]int{6}, 6) {
		t.Fatalf("TimeToHitLength(6) = %v", d)
	}
}
