package testkit

import (
	"sync"
	"time"

	"github.com/groupbridge/groupbridge/internal/wallclock"
)

// ManualClock is a wallclock.Clock that moves only when a test calls
// Advance; code under test takes it as it is, without an adapter.
type ManualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*manualTimer
	made   chan struct{}
}

var _ wallclock.Clock = (*ManualClock)(nil)

// NewManualClock returns a clock standing at a fixed, arbitrary instant.
func NewManualClock() *ManualClock {
	return &ManualClock{now: time.Unix(1_700_000_000, 0), made: make(chan struct{}, 1024)}
}

// Now returns the clock's time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Made receives a token each time a timer is made or reset, so a test can
// wait until the code under test is waiting before it moves the clock.
// Tokens beyond the buffer are dropped rather than block the code.
func (c *ManualClock) Made() <-chan struct{} { return c.made }

func (c *ManualClock) signal() {
	select {
	case c.made <- struct{}{}:
	default:
	}
}

// NewTimer returns a timer that fires d after the clock's present time.
func (c *ManualClock) NewTimer(d time.Duration) wallclock.Timer {
	c.mu.Lock()
	t := &manualTimer{clk: c, at: c.now.Add(d), armed: true, ch: make(chan time.Time, 1)}
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	c.signal()
	return t
}

// AfterFunc returns a timer that calls f once d has passed on the clock.
// Unlike time.AfterFunc, f runs in the goroutine that calls Advance,
// before Advance returns, so a test sees its effect at once.
func (c *ManualClock) AfterFunc(d time.Duration, f func()) wallclock.Timer {
	c.mu.Lock()
	t := &manualTimer{clk: c, at: c.now.Add(d), armed: true, fn: f}
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	c.signal()
	return t
}

// Advance moves the time on by d and fires the timers that are due, one
// at a time in order of their deadlines.
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	now := c.now
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var due *manualTimer
		for _, t := range c.timers {
			if t.armed && !t.at.After(now) && (due == nil || t.at.Before(due.at)) {
				due = t
			}
		}
		if due != nil {
			due.armed = false
		}
		c.mu.Unlock()
		if due == nil {
			return
		}
		if due.fn != nil {
			due.fn()
			continue
		}
		select { // like time.Timer: the channel holds one value
		case due.ch <- due.at:
		default:
		}
	}
}

// Next reports how far ahead of the present the earliest armed timer
// fires, so a test can move the clock straight to it; false when no
// timer is armed.
func (c *ManualClock) Next() (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var next *manualTimer
	for _, t := range c.timers {
		if t.armed && (next == nil || t.at.Before(next.at)) {
			next = t
		}
	}
	if next == nil {
		return 0, false
	}
	return max(next.at.Sub(c.now), 0), true
}

// Armed reports how many armed timers fire exactly d after the present:
// a test that waits for the code under test to arm its timers asks for
// them by their durations, which other goroutines' timers (armed at any
// moment) do not share.
func (c *ManualClock) Armed(d time.Duration) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if t.armed && t.at.Sub(c.now) == d {
			n++
		}
	}
	return n
}

// manualTimer is a timer of a ManualClock, shaped like *time.Timer.
type manualTimer struct {
	clk   *ManualClock
	at    time.Time
	armed bool
	ch    chan time.Time // nil for AfterFunc
	fn    func()         // AfterFunc's
}

// C is the channel the timer fires on.
func (t *manualTimer) C() <-chan time.Time { return t.ch }

// Stop disarms the timer and reports whether it was armed. As with
// time.Timer since Go 1.23, no stale value is received after it.
func (t *manualTimer) Stop() bool {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	was := t.armed
	t.armed = false
	t.drain()
	return was
}

func (t *manualTimer) drain() {
	select {
	case <-t.ch:
	default:
	}
}

// Reset arms the timer to fire d after the clock's present time.
func (t *manualTimer) Reset(d time.Duration) bool {
	t.clk.mu.Lock()
	was := t.armed
	t.drain()
	t.armed, t.at = true, t.clk.now.Add(d)
	t.clk.mu.Unlock()
	t.clk.signal()
	return was
}
