package testkit

import (
	"slices"
	"testing"
	"time"
)

// fired reports whether t's channel holds a value, without waiting.
func fired(ch <-chan time.Time) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestManualClockTimers(t *testing.T) {
	tests := []struct {
		name    string
		run     func(c *ManualClock) <-chan time.Time
		advance time.Duration
		want    bool
	}{
		{"before the deadline", func(c *ManualClock) <-chan time.Time {
			return c.NewTimer(time.Second).C()
		}, 999 * time.Millisecond, false},
		{"at the deadline", func(c *ManualClock) <-chan time.Time {
			return c.NewTimer(time.Second).C()
		}, time.Second, true},
		{"stopped", func(c *ManualClock) <-chan time.Time {
			tm := c.NewTimer(time.Second)
			tm.Stop()
			return tm.C()
		}, time.Hour, false},
		{"reset later", func(c *ManualClock) <-chan time.Time {
			tm := c.NewTimer(time.Second)
			tm.Reset(5 * time.Second)
			return tm.C()
		}, 2 * time.Second, false},
		{"reset after firing", func(c *ManualClock) <-chan time.Time {
			tm := c.NewTimer(time.Second)
			c.Advance(time.Second) // fires; Reset drops the stale value
			tm.Reset(time.Second)
			return tm.C()
		}, 500 * time.Millisecond, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewManualClock()
			ch := tt.run(c)
			c.Advance(tt.advance)
			if got := fired(ch); got != tt.want {
				t.Fatalf("fired = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestManualClockNowAndMade(t *testing.T) {
	c := NewManualClock()
	start := c.Now()
	c.Advance(90 * time.Second)
	if got := c.Now().Sub(start); got != 90*time.Second {
		t.Fatalf("Now moved by %v, want 90s", got)
	}
	tm := c.NewTimer(time.Second)
	select {
	case <-c.Made():
	default:
		t.Fatal("NewTimer sent no token on Made")
	}
	tm.Reset(time.Second)
	select {
	case <-c.Made():
	default:
		t.Fatal("Reset sent no token on Made")
	}
	c.Advance(time.Second)
	if at := <-tm.C(); !at.Equal(start.Add(91 * time.Second)) {
		t.Fatalf("fired with %v, want the deadline %v", at, start.Add(91*time.Second))
	}
}

func TestManualClockNext(t *testing.T) {
	c := NewManualClock()
	if _, ok := c.Next(); ok {
		t.Fatal("Next found a timer on a new clock")
	}
	a := c.NewTimer(3 * time.Second)
	b := c.NewTimer(time.Second)
	steps := []struct {
		name string
		do   func()
		want time.Duration
		ok   bool
	}{
		{"earliest of two", func() {}, time.Second, true},
		{"after moving on", func() { c.Advance(400 * time.Millisecond) }, 600 * time.Millisecond, true},
		{"the earlier stopped", func() { b.Stop() }, 2600 * time.Millisecond, true},
		{"the later fired", func() { c.Advance(3 * time.Second) }, 0, false},
		{"re-armed", func() { a.Reset(time.Minute) }, time.Minute, true},
	}
	for _, s := range steps {
		s.do()
		if got, ok := c.Next(); got != s.want || ok != s.ok {
			t.Fatalf("%s: Next = %v, %v; want %v, %v", s.name, got, ok, s.want, s.ok)
		}
	}
}

func TestManualClockAfterFunc(t *testing.T) {
	c := NewManualClock()
	var ran []string
	a := c.AfterFunc(2*time.Second, func() { ran = append(ran, "a") })
	c.AfterFunc(time.Second, func() { ran = append(ran, "b") })
	stopped := c.AfterFunc(time.Second, func() { ran = append(ran, "stopped") })
	if a.C() != nil {
		t.Fatal("an AfterFunc timer has a channel")
	}
	if !stopped.Stop() {
		t.Fatal("Stop of an armed timer reported it disarmed")
	}
	c.Advance(1500 * time.Millisecond)
	if len(ran) != 1 || ran[0] != "b" {
		t.Fatalf("after 1.5 s ran %q, want [b]", ran)
	}
	c.Advance(time.Second)
	a.Reset(time.Second) // runs again
	c.Advance(time.Second)
	if want := []string{"b", "a", "a"}; !slices.Equal(ran, want) {
		t.Fatalf("ran %q, want %q", ran, want)
	}
}

// TestManualClockArmed: Armed counts the armed timers by how far ahead
// they fire; stopped, fired and other timers do not count.
func TestManualClockArmed(t *testing.T) {
	c := NewManualClock()
	a := c.NewTimer(10 * time.Second)
	c.AfterFunc(10*time.Second, func() {})
	c.NewTimer(30 * time.Second)
	stopped := c.NewTimer(30 * time.Second)
	stopped.Stop()
	tests := []struct {
		d    time.Duration
		want int
	}{{10 * time.Second, 2}, {30 * time.Second, 1}, {20 * time.Second, 0}}
	for _, tt := range tests {
		if got := c.Armed(tt.d); got != tt.want {
			t.Errorf("Armed(%v) = %d, want %d", tt.d, got, tt.want)
		}
	}
	a.Stop()
	c.Advance(10 * time.Second) // fires the AfterFunc
	if got := c.Armed(20 * time.Second); got != 1 {
		t.Errorf("after 10 s, Armed(20s) = %d, want 1 (the 30 s timer)", got)
	}
	if got := c.Armed(0); got != 0 {
		t.Errorf("after 10 s, Armed(0) = %d, want 0 (fired or stopped)", got)
	}
}
