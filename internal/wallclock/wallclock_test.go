package wallclock

import (
	"testing"
	"time"
)

func TestSystemClockTimer(t *testing.T) {
	var c Clock = SystemClock{}
	start := c.Now()
	tm := c.NewTimer(time.Millisecond)
	at := <-tm.C()
	if at.Before(start) {
		t.Fatalf("fired at %v, before the start %v", at, start)
	}
	if tm.Stop() {
		t.Fatal("Stop after firing reported an armed timer")
	}
	if tm.Reset(time.Hour) {
		t.Fatal("Reset of a stopped timer reported an armed timer")
	}
	if !tm.Stop() {
		t.Fatal("Stop after Reset reported a disarmed timer")
	}
}

func TestSystemClockAfterFunc(t *testing.T) {
	var c Clock = SystemClock{}
	ran := make(chan struct{})
	tm := c.AfterFunc(time.Millisecond, func() { close(ran) })
	if tm.C() != nil {
		t.Fatal("an AfterFunc timer has a channel")
	}
	<-ran
	stopped := c.AfterFunc(time.Hour, func() { t.Error("a stopped AfterFunc ran") })
	if !stopped.Stop() {
		t.Fatal("Stop of an armed AfterFunc timer reported it disarmed")
	}
}

func TestOr(t *testing.T) {
	if _, ok := Or(nil).(SystemClock); !ok {
		t.Fatal("Or(nil) is not SystemClock")
	}
	var mine Clock = fixed{}
	if Or(mine) != mine {
		t.Fatal("Or changed a given clock")
	}
}

type fixed struct{}

func (fixed) Now() time.Time                        { return time.Time{} }
func (fixed) NewTimer(time.Duration) Timer          { return nil }
func (fixed) AfterFunc(time.Duration, func()) Timer { return nil }
