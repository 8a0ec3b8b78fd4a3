package callflow

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/internal/guard"
	"github.com/groupbridge/groupbridge/internal/readings"
	"github.com/groupbridge/groupbridge/internal/testkit"
	"github.com/groupbridge/groupbridge/media/pcm"
)

// greetingSample marks the test greeting's samples; no prompt is made of it.
const greetingSample = 1234

// greetStream counts the frames of the greeting a caller heard.
type greetStream struct{ frames atomic.Int64 }

func (s *greetStream) ReadFrame(*pcm.Frame) bool { return false }
func (s *greetStream) WriteFrame(f *pcm.Frame) {
	if f[0] == greetingSample && f[len(f)-1] == greetingSample {
		s.frames.Add(1)
	}
}

// The group's greeting plays after a right PIN and before the join; '#'
// skips it, a caller rejoining does not hear it, and a caller who hangs up
// during it never joins.
func TestGreeting(t *testing.T) {
	const frames = 50 // one second
	greeting := make([]int16, frames*pcm.FrameSamples)
	for i := range greeting {
		greeting[i] = greetingSample
	}
	lib := readings.NewLibrary(map[string]*readings.Group{"Circle": readings.NewGroup(greeting, 0, nil)})
	tests := []struct {
		name      string
		rejoining bool
		during    func(c *call) // once the caller hears the greeting
		noJoin    bool
		lo, hi    int64 // greeting frames heard before the join
	}{
		{name: "played in full before the join", lo: frames, hi: frames},
		{name: "# skips it", during: func(c *call) { c.keys("#") }, lo: 1, hi: frames - 10},
		{name: "other keys do not", during: func(c *call) { c.keys("5*1") }, lo: frames, hi: frames},
		{name: "a rejoining caller skips it", rejoining: true, lo: 0, hi: 0},
		{name: "hanging up during it", during: func(c *call) { c.cancel() }, noJoin: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var asked atomic.Int64
			r := newRig(t, guard.Config{}, func(cfg *Config) {
				orig := cfg.Settings
				cfg.Settings = func() *Settings { st := *orig(); st.Readings = lib; return &st }
				cfg.Rejoining = func(g group.Group, id string) bool {
					if g.Name != "Circle" || id == "" {
						t.Errorf("asked about %q, %q", g.Name, id)
					}
					asked.Add(1)
					return tc.rejoining
				}
			})
			heard := &greetStream{}
			var atJoin atomic.Int64
			atJoin.Store(-1)
			m := &member{done: make(chan struct{}), keys: make(chan byte, 4), reason: "session-ended"}
			r.join = func(group.Group) (Member, error) {
				atJoin.Store(heard.frames.Load())
				close(m.done)
				return m, nil
			}
			c := newCall("+15551230001")
			c.media = heard
			c.keys("1234#")
			if tc.during != nil {
				go func() {
					for heard.frames.Load() < 3 {
						time.Sleep(100 * time.Microsecond)
					}
					tc.during(c)
				}()
			}
			go func() {
				for range r.joins {
				}
			}()
			t.Cleanup(func() { close(r.joins) }) // Serve has returned: no more joins
			r.serve(t, c)
			if asked.Load() != 1 {
				t.Errorf("asked %d times whether the caller rejoins, want once", asked.Load())
			}
			if tc.noJoin {
				if atJoin.Load() != -1 {
					t.Error("joined")
				}
				if got := r.metrics.get(); !slices.Equal(got, []string{"hung-up-in-ivr"}) {
					t.Errorf("outcomes %q", got)
				}
				return
			}
			if n := atJoin.Load(); n < tc.lo || n > tc.hi {
				t.Errorf("%d greeting frames before the join, want %d to %d", n, tc.lo, tc.hi)
			}
		})
	}
}

// A member of a closed group hears no greeting (most are told it is
// closed); one whose greeting outlasts the meeting's window is joined as
// a member outside the hours. The clock stands on Tuesday 2023-11-14,
// 22:13:20 UTC; the group meets on Tuesdays 22:00-22:14 UTC, no margins.
func TestGreetingAndHours(t *testing.T) {
	const frames = 50
	greeting := make([]int16, frames*pcm.FrameSamples)
	for i := range greeting {
		greeting[i] = greetingSample
	}
	lib := readings.NewLibrary(map[string]*readings.Group{"Circle": readings.NewGroup(greeting, 0, nil)})
	hours := circle
	hours.Timezone, hours.Meets, hours.OpenEarly, hours.Overrun = "UTC", []string{"Tue 22:00-22:14"}, 0, 0
	for _, tc := range []struct {
		name      string
		advance   time.Duration // before the call
		during    time.Duration // during the greeting
		greetings int64
		onlyFac   bool
	}{
		{"open throughout", 0, 0, frames, false},
		// Within the greeting's own time limit (its length and 2 s).
		{"the window closes during the greeting", 38 * time.Second, 2500 * time.Millisecond, frames, true},
		{"closed: no greeting", time.Minute, 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := testkit.NewManualClock()
			clk.Advance(tc.advance)
			r := newRig(t, guard.Config{}, func(cfg *Config) {
				cfg.Clock = clk
				orig := cfg.Settings
				cfg.Settings = func() *Settings {
					st := *orig()
					st.Readings, st.Groups = lib, []group.Group{hours}
					return &st
				}
			})
			heard := &greetStream{}
			m := &member{done: make(chan struct{}), keys: make(chan byte, 4), reason: "session-ended"}
			close(m.done)
			var atJoin atomic.Int64
			r.join = func(group.Group) (Member, error) {
				atJoin.Store(heard.frames.Load())
				return m, nil
			}
			c := newCall("+15551230001")
			c.media = heard
			c.keys("1234#")
			if tc.during > 0 {
				go func() {
					for heard.frames.Load() < 3 {
						time.Sleep(100 * time.Microsecond)
					}
					clk.Advance(tc.during)
				}()
			}
			var onlyFac atomic.Bool
			read := make(chan struct{})
			go func() {
				defer close(read)
				for req := range r.joins {
					onlyFac.Store(req.OnlyWithFacilitator)
				}
			}()
			r.serve(t, c)
			close(r.joins)
			<-read
			if n := atJoin.Load(); n != tc.greetings {
				t.Errorf("%d greeting frames before the join, want %d", n, tc.greetings)
			}
			if onlyFac.Load() != tc.onlyFac {
				t.Errorf("OnlyWithFacilitator = %v, want %v", onlyFac.Load(), tc.onlyFac)
			}
		})
	}
}
