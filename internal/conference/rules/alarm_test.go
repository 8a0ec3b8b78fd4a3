package rules

import (
	"testing"
	"time"
)

// TestAlarm: schedule only lowers the bound, due compares with it, and a
// scan's result replaces it and cleans the alarm.
func TestAlarm(t *testing.T) {
	var a alarm
	if a.due(t0.Add(time.Hour)) {
		t.Fatal("empty alarm due")
	}
	a.schedule(t0.Add(2 * sec))
	a.schedule(t0.Add(5 * sec))
	a.schedule(t0.Add(sec))
	if !a.next.Equal(t0.Add(sec)) || a.due(t0.Add(sec-1)) || !a.due(t0.Add(sec)) {
		t.Fatalf("bound %v", a.next.Sub(t0))
	}
	a.invalidate()
	a.set(t0.Add(3*sec), true)
	if a.dirty || !a.next.Equal(t0.Add(3*sec)) || a.due(t0.Add(2*sec)) {
		t.Fatalf("after a scan: %+v", a)
	}
	a.set(time.Time{}, false)
	if a.due(t0.Add(time.Hour)) {
		t.Fatal("nothing pending but due")
	}
}
