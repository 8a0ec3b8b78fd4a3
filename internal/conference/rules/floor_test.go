package rules

import (
	"slices"
	"testing"
	"time"
)

// TestFloorHands: the queue is first come first, lowering takes a hand
// out wherever it is, and lowering twice changes nothing.
func TestFloorHands(t *testing.T) {
	var f floor
	c := []*caller{{seat: 1}, {seat: 2}, {seat: 3}}
	for _, x := range c {
		f.raise(x)
	}
	f.lower(c[1])
	f.lower(c[1])
	if !slices.Equal(f.hands, []int{1, 3}) || c[1].hand || !c[0].hand || f.head() != 1 {
		t.Fatalf("hands %v, head %d", f.hands, f.head())
	}
	f.lower(c[0])
	f.lower(c[2])
	if f.head() != 0 || len(f.hands) != 0 {
		t.Fatalf("empty queue: hands %v, head %d", f.hands, f.head())
	}
}

// TestFloorShareTimer: with the timer on, a grant runs the share limit
// (chime) and then the grace (over); a new grant restarts it; turning the
// timer off or clearing the floor drops both.
func TestFloorShareTimer(t *testing.T) {
	type step struct {
		at        time.Duration
		do        string // give N / timer on|off / due
		seat      int
		chime     bool
		over      bool
		deadline  time.Duration // -1 = none
		dirtyWant bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"grant with timer on", []step{
			{do: "timer on", deadline: -1},
			{do: "give", seat: 4, deadline: 3 * mn, dirtyWant: true},
			{at: 3*mn - 1, do: "due", deadline: 3 * mn},
			{at: 3 * mn, do: "due", chime: true, deadline: 3*mn + 30*sec},
			{at: 3*mn + 30*sec, do: "due", over: true, deadline: -1},
		}},
		{"late tick fires both", []step{
			{do: "timer on", deadline: -1},
			{do: "give", seat: 4, deadline: 3 * mn},
			{at: 10 * mn, do: "due", chime: true, over: true, deadline: -1},
		}},
		{"new grant restarts", []step{
			{do: "timer on"},
			{do: "give", seat: 4, deadline: 3 * mn},
			{at: mn, do: "give", seat: 5, deadline: 4 * mn},
		}},
		{"timer on during a grant starts now", []step{
			{do: "give", seat: 4, deadline: -1},
			{at: mn, do: "timer on", deadline: 4 * mn},
		}},
		{"timer off drops it", []step{
			{do: "timer on"},
			{do: "give", seat: 4, deadline: 3 * mn},
			{at: mn, do: "timer off", deadline: -1, dirtyWant: true},
			{at: 10 * mn, do: "due", deadline: -1},
		}},
		{"nobody holds the floor", []step{
			{do: "timer on"},
			{do: "give", seat: 4},
			{at: mn, do: "give", seat: 0, deadline: -1},
			{at: 10 * mn, do: "due", deadline: -1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a alarm
			f := floor{limit: 3 * mn, grace: 30 * sec, alarm: &a}
			for i, st := range tt.steps {
				now := t0.Add(st.at)
				a.dirty = false
				var chime, over bool
				switch st.do {
				case "give":
					f.give(st.seat, now)
				case "timer on":
					f.setTimer(true, now)
				case "timer off":
					f.setTimer(false, now)
				case "due":
					chime, over = f.due(now)
				}
				if chime != st.chime || over != st.over {
					t.Fatalf("step %d: due = %v, %v; want %v, %v", i, chime, over, st.chime, st.over)
				}
				if st.dirtyWant && !a.dirty {
					t.Errorf("step %d: a dropped timer left the alarm clean", i)
				}
				if st.deadline == 0 {
					continue
				}
				at, ok := f.deadline()
				if want := st.deadline >= 0; ok != want || (ok && !at.Equal(t0.Add(st.deadline))) {
					t.Errorf("step %d: deadline %v %v, want %v", i, at.Sub(t0), ok, st.deadline)
				}
				if ok && (!a.has || a.next.After(at)) {
					t.Errorf("step %d: alarm %v %v later than %v", i, a.next.Sub(t0), a.has, at.Sub(t0))
				}
			}
		})
	}
}
