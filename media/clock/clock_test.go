package clock

import (
	"sync/atomic"
	"testing"
	"time"
)

type countTicker struct{ n atomic.Int64 }

func (c *countTicker) Tick(time.Time) { c.n.Add(1) }

type panicTicker struct{}

func (panicTicker) Tick(time.Time) { panic("boom") }

func TestClockTicksAllAndSurvivesPanics(t *testing.T) {
	var panics atomic.Int64
	c := New(2*time.Millisecond, nil, func(Ticker, any) { panics.Add(1) })
	a, b := &countTicker{}, &countTicker{}
	c.Add(a)
	c.Add(panicTicker{})
	c.Add(b)
	c.Start()
	deadline := time.Now().Add(5 * time.Second)
	for (a.n.Load() < 5 || b.n.Load() < 5) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	c.Remove(a)
	na := a.n.Load()
	time.Sleep(20 * time.Millisecond)
	c.Stop()
	if b.n.Load() < 5 {
		t.Fatalf("ticker after a panicking one ran %d times", b.n.Load())
	}
	if panics.Load() == 0 {
		t.Fatal("panic handler never called")
	}
	// At most one tick may have been in flight when Remove returned.
	if got := a.n.Load(); got > na+1 {
		t.Fatalf("removed ticker still ticked: %d -> %d", na, got)
	}
	ticks, _, _ := c.Stats()
	if ticks == 0 {
		t.Fatal("no ticks counted")
	}
}

// Whatever the panic handler does, even panic itself, the clock goes on
// ticking the others and counts every recovered panic.
func TestClockSurvivesItsPanicHandler(t *testing.T) {
	cases := []struct {
		name    string
		handler PanicHandler
	}{
		{"no handler", nil},
		{"handler", func(Ticker, any) {}},
		{"panicking handler", func(Ticker, any) { panic("handler boom") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := New(time.Millisecond, nil, tc.handler)
			c.Add(panicTicker{})
			after := &countTicker{}
			c.Add(after)
			c.Start()
			deadline := time.Now().Add(5 * time.Second)
			for after.n.Load() < 10 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			c.Stop()
			if n := after.n.Load(); n < 10 {
				t.Fatalf("the ticker after the panicking one ran %d times", n)
			}
			if p := c.Panics(); p < 10 {
				t.Fatalf("%d panics counted, want one per tick (at least 10)", p)
			}
		})
	}
}

func TestStopIdempotent(t *testing.T) {
	c := New(0, nil, nil)
	c.Start()
	c.Stop()
	c.Stop()
}

// orderTicker records the order tickers ran in, into a shared log.
type orderTicker struct {
	name string
	log  chan string
}

func (o orderTicker) Tick(time.Time) {
	select {
	case o.log <- o.name:
	default:
	}
}

// A ticker added with AddLast runs after every other one, even those
// added after it, each period.
func TestAddLastTicksAfterTheOthers(t *testing.T) {
	log := make(chan string, 64)
	c := New(2*time.Millisecond, nil, nil)
	c.AddLast(orderTicker{"flush", log})
	c.Add(orderTicker{"room1", log})
	c.Add(orderTicker{"room2", log})
	c.Start()
	var got []string
	for len(got) < 9 {
		select {
		case n := <-log:
			got = append(got, n)
		case <-time.After(5 * time.Second):
			t.Fatalf("only %v ticked", got)
		}
	}
	c.Stop()
	for i := 0; i+2 < 9; i += 3 {
		if got[i] != "room1" || got[i+1] != "room2" || got[i+2] != "flush" {
			t.Fatalf("order %v: want room1, room2, flush each period", got)
		}
	}
}
