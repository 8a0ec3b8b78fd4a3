package logging

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestThrottle(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 5, 0, 0, 0, time.UTC)
	type call struct {
		at   time.Duration // after t0
		want bool
	}
	for _, tc := range []struct {
		name  string
		every time.Duration
		calls []call
	}{
		{"first line passes, then one a minute", 0, []call{
			{0, true}, {time.Second, false}, {time.Minute - 1, false}, {time.Minute, true}, {time.Minute + time.Second, false},
		}},
		{"the minute counts from the last line let through", 0, []call{
			{0, true}, {50 * time.Second, false}, {90 * time.Second, true}, {140 * time.Second, false}, {150 * time.Second, true},
		}},
		{"own period", 10 * time.Second, []call{
			{0, true}, {9 * time.Second, false}, {10 * time.Second, true},
		}},
		{"a clock stepping back is suppressed, not a new line", 0, []call{
			{time.Hour, true}, {0, false}, {time.Hour + time.Minute, true},
		}},
	} {
		th := &Throttle{Every: tc.every}
		for i, c := range tc.calls {
			if got := th.Allow(t0.Add(c.at)); got != c.want {
				t.Errorf("%s: call %d at +%v: Allow = %v, want %v", tc.name, i, c.at, got, c.want)
			}
		}
	}
}

// TestThrottleConcurrent: of many goroutines logging at the same moment,
// exactly one line gets through.
func TestThrottleConcurrent(t *testing.T) {
	var th Throttle
	now := time.Unix(1_800_000_000, 0)
	var passed atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if th.Allow(now) {
					passed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := passed.Load(); n != 1 {
		t.Errorf("%d lines passed at one moment, want 1", n)
	}
}

// TestThrottleNoAlloc: the suppressing path (and the passing one) cost no
// allocation, so a flood's drop path stays cheap.
func TestThrottleNoAlloc(t *testing.T) {
	var th Throttle
	now := time.Unix(1_800_000_000, 0)
	th.Allow(now)
	if n := testing.AllocsPerRun(1000, func() { th.Allow(now) }); n != 0 {
		t.Errorf("suppressed Allow allocates %v times", n)
	}
	i := 0
	if n := testing.AllocsPerRun(1000, func() { i++; th.Allow(now.Add(time.Duration(i) * time.Hour)) }); n != 0 {
		t.Errorf("passing Allow allocates %v times", n)
	}
}
