package rules

import (
	"slices"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/group"
)

// effectStrings renders effects for comparison.
func effectStrings(effects []Effect) []string {
	out := make([]string, 0, len(effects))
	for _, e := range effects {
		out = append(out, e.String())
	}
	return out
}

// TestMeetingMoments: a session's meeting, on a fake clock: the start,
// the facilitators' notice at the scheduled end, everyone's five-minute
// warning and the close, in order and each once, for several overruns and
// for sessions that began late. Meeting times are 19:00-20:30 (t0 is
// 19:00); the session is set up at `from` with a facilitator (seat 1)
// and a member (seat 2), and Hours.Tick is called at each step.
func TestMeetingMoments(t *testing.T) {
	const (
		started = "MeetingStarted(0)"
		over    = "SayFacilitators(0 [scheduled_over])"
		five    = "SayRoom(0 [ends_in_five])"
		closed  = "SayRoom(0 [meeting_closed])"
		end     = "End(0 meeting-closed)"
		bye1    = "Hangup(1 meeting-closed)"
		bye2    = "Hangup(2 meeting-closed)"
	)
	type step struct {
		at   time.Duration // after t0
		want []string
		next time.Duration // Hours.Deadline after the step, from t0; -1: none
	}
	tests := []struct {
		name    string
		overrun time.Duration
		from    time.Duration
		steps   []step
	}{
		{"overrun 15m", 15 * mn, -15 * mn, []step{
			{-1 * sec, nil, 0},
			{0, []string{started}, 90 * mn},
			{90*mn - sec, nil, 90 * mn},
			{90 * mn, []string{over}, 100 * mn},
			{100 * mn, []string{five}, 105 * mn},
			{104 * mn, nil, 105 * mn},
			{105 * mn, []string{closed, end, bye1, bye2}, -1},
			{106 * mn, nil, -1},
		}},
		{"overrun 0s: no notice, the warning before the end", 0, -10 * mn, []step{
			{0, []string{started}, 85 * mn},
			{85 * mn, []string{five}, 90 * mn},
			{90 * mn, []string{closed, end, bye1, bye2}, -1},
		}},
		{"overrun 2m: the warning 3m before the end", 2 * mn, 0, []step{
			{0, []string{started}, 87 * mn},
			{87 * mn, []string{five}, 90 * mn},
			{90 * mn, []string{over}, 92 * mn},
			{92 * mn, []string{closed, end, bye1, bye2}, -1},
		}},
		{"overrun 5m: notice and warning at once, in order", 5 * mn, 0, []step{
			{90 * mn, []string{started, over, five}, 95 * mn},
			{95 * mn, []string{closed, end, bye1, bye2}, -1},
		}},
		{"a late Tick does everything due, in order", 15 * mn, -15 * mn, []step{
			{101 * mn, []string{started, over, five}, 105 * mn},
		}},
		{"at or after the close, only the close", 15 * mn, -15 * mn, []step{
			{3 * time.Hour, []string{closed, end, bye1, bye2}, -1},
		}},
		{"began after the start: started at once", 15 * mn, 20 * mn, []step{
			{20 * mn, []string{started}, 90 * mn},
		}},
		{"began in the overrun: no notice", 15 * mn, 95 * mn, []step{
			{95 * mn, []string{started}, 100 * mn},
			{100 * mn, []string{five}, 105 * mn},
		}},
		{"began within the last five minutes: no warning", 15 * mn, 101 * mn, []step{
			{101 * mn, []string{started}, 105 * mn},
			{105 * mn, []string{closed, end, bye1, bye2}, -1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(peer, t0.Add(tt.from))
			s.Join("f", group.Facilitator, t0.Add(tt.from))
			s.Join("m", group.Member, t0.Add(tt.from))
			m := Meeting{Start: t0, End: t0.Add(90 * mn), Close: t0.Add(90*mn + tt.overrun)}
			s.Hours().Set(m, t0.Add(tt.from))
			if got, ok := s.Hours().Meeting(); !ok || got != m {
				t.Fatalf("Meeting() = %+v, %v", got, ok)
			}
			for _, st := range tt.steps {
				got := effectStrings(s.Hours().Tick(t0.Add(st.at)))
				if !slices.Equal(got, st.want) && (len(got) > 0 || len(st.want) > 0) {
					t.Errorf("at %v: %v, want %v", st.at, got, st.want)
				}
				dl, ok := s.Hours().Deadline()
				switch {
				case st.next < 0 && ok:
					t.Errorf("after %v: deadline %v, want none", st.at, dl.Sub(t0))
				case st.next >= 0 && (!ok || !dl.Equal(t0.Add(st.next))):
					t.Errorf("after %v: deadline %v (%v), want %v", st.at, dl.Sub(t0), ok, st.next)
				}
			}
		})
	}
}

// The notices reach the right people: the scheduled end the facilitators
// only, the warning and the close everyone, waiting and lobby callers
// included; with no facilitator present the notice is not made at all.
func TestMeetingAudience(t *testing.T) {
	m := Meeting{Start: t0, End: t0.Add(90 * mn), Close: t0.Add(105 * mn)}
	s := New(facLed, t0)
	s.Join("m1", group.Member, t0) // lobby: no facilitator yet
	s.Join("f", group.Facilitator, t0)
	s.Join("m2", group.Member, t0)
	s.Hours().Set(m, t0)
	s.Hours().Tick(t0)
	var got []string
	for _, e := range s.Hours().Tick(t0.Add(100 * mn)) {
		got = append(got, e.Kind.String()+":"+seatList(s.Seats().Audience(e, nil)))
	}
	// Both moments at once: the notice to seat 2, the warning to all.
	if want := []string{"SayFacilitators:2", "SayRoom:1,2,3"}; !slices.Equal(got, want) {
		t.Errorf("audiences %v, want %v", got, want)
	}

	alone := New(peer, t0)
	alone.Join("m", group.Member, t0)
	alone.Hours().Set(m, t0)
	if got := effectStrings(alone.Hours().Tick(t0.Add(90 * mn))); !slices.Equal(got, []string{"MeetingStarted(0)"}) {
		t.Errorf("members only at the end: %v, want the start alone", got)
	}
	if !alone.Ended() {
		alone.Leave(1, t0.Add(91*mn))
	}
	if !alone.Ended() || alone.Hours().Tick(t0.Add(110*mn)) != nil {
		t.Error("an ended session still has meeting moments")
	}
	if _, ok := alone.Hours().Deadline(); ok {
		t.Error("an ended session has a meeting deadline")
	}
}

// A session without a meeting has no moments.
func TestNoMeeting(t *testing.T) {
	s := New(peer, t0)
	s.Join("m", group.Member, t0)
	if _, ok := s.Hours().Meeting(); ok {
		t.Error("a new session has a meeting")
	}
	if _, ok := s.Hours().Deadline(); ok {
		t.Error("a session without a meeting has a deadline")
	}
	if got := s.Hours().Tick(t0.Add(24 * time.Hour)); got != nil {
		t.Errorf("Hours.Tick without a meeting: %v", got)
	}
}

func seatList(seats []int) string {
	out := ""
	for i, s := range seats {
		if i > 0 {
			out += ","
		}
		out += num(s)
	}
	return out
}
