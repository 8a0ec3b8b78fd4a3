// Package wallclock owns the one clock interface for groupbridge's own
// wall-time timers: the dialog layer's retransmissions and ACK wait, the
// screening limits, the call flow's waits, a room's session start and a
// join's answer timeout. Code takes a Clock so tests move time by hand
// (testkit.ManualClock) instead of sleeping or using test-only hooks.
//
// It must not know the media clock (media/clock, the one 20 ms tick that
// mixes audio) nor sipgo's transaction timers, which keep their own time.
// Standard library only, so any package may import it.
package wallclock

import "time"

// Clock is where a wall-time timer's present and deadlines come from.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
	// AfterFunc calls f once d has passed, unless the Timer is stopped
	// first: in a goroutine of its own (SystemClock) or in the one that
	// moves the clock (a test's). The Timer's C is nil. For a timeout that
	// acts with no goroutine waiting for it (a connection's idle limit).
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is the part of *time.Timer that timers on a Clock use.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
	Reset(d time.Duration) bool
}

// SystemClock is the real time; a nil Clock in a package's Config means it.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// NewTimer returns a running time.Timer.
func (SystemClock) NewTimer(d time.Duration) Timer { return sysTimer{time.NewTimer(d)} }

// AfterFunc returns time.AfterFunc(d, f).
func (SystemClock) AfterFunc(d time.Duration, f func()) Timer {
	return sysTimer{time.AfterFunc(d, f)}
}

type sysTimer struct{ t *time.Timer }

func (t sysTimer) C() <-chan time.Time        { return t.t.C }
func (t sysTimer) Stop() bool                 { return t.t.Stop() }
func (t sysTimer) Reset(d time.Duration) bool { return t.t.Reset(d) }

// Or returns c, or SystemClock when c is nil: the default every Config
// with a Clock field applies.
func Or(c Clock) Clock {
	if c == nil {
		return SystemClock{}
	}
	return c
}
