package callflow

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/attendance"
	"github.com/groupbridge/groupbridge/internal/conference"
	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/internal/guard"
	"github.com/groupbridge/groupbridge/internal/testkit"
)

// dayRecords is an attendance.Recorder keeping the per-day events it is
// told of, as "wrong:<group>" and "closed:<group>".
type dayRecords struct {
	mu     sync.Mutex
	events []string
	at     []time.Time
}

func (d *dayRecords) add(e string, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.events = append(d.events, e)
	d.at = append(d.at, at)
}
func (d *dayRecords) Session(attendance.Session)      {}
func (d *dayRecords) WrongPIN(g string, at time.Time) { d.add("wrong:"+g, at) }
func (d *dayRecords) Closed(g string, at time.Time)   { d.add("closed:"+g, at) }

func (d *dayRecords) get() ([]string, []time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.events), slices.Clone(d.at)
}

// Wrong PINs count for the number dialled, a group's or the shared access
// number (""), at the door and in the room; a caller told a group with no
// session is closed counts for that group, one a room turned away (in its
// session's record) does not. Times are the flow's clock.
func TestAttendanceCounts(t *testing.T) {
	tests := []struct {
		name   string
		dialed string
		keys   string
		join   error // the room's answer
		room   string
		want   []string
	}{
		{"wrong PINs on the group's number", circle.Number, "4444#5555#6666#", nil, "", []string{"wrong:Circle", "wrong:Circle", "wrong:Circle"}},
		{"wrong PINs on the access number", "999", "4444#5555#6666#", nil, "", []string{"wrong:", "wrong:", "wrong:"}},
		{"one wrong, then the right PIN", "", "4444#1234#", nil, "", []string{"wrong:"}},
		{"no session: closed", circle.Number, "1234#", conference.ErrNoSession, "", []string{"closed:Circle"}},
		{"turned away by a room", circle.Number, "1234#", conference.ErrNotMeeting, "", nil},
		{"full", circle.Number, "1234#", conference.ErrFull, "", nil},
		{"wrong facilitator PIN in the room", circle.Number, "1234#", nil, "11", []string{"wrong:Circle"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := testkit.NewManualClock()
			rec := &dayRecords{}
			r := newRig(t, guard.Config{}, func(c *Config) { c.Attendance, c.Clock = rec, clk })
			m := &member{done: make(chan struct{}), keys: make(chan byte, 1), reason: "session-ended"}
			r.join = func(group.Group) (Member, error) {
				if tc.join != nil {
					return nil, tc.join
				}
				return m, nil
			}
			c := newCall("+15551230001")
			c.dialed = tc.dialed
			c.keys(tc.keys)
			go func() {
				req := <-r.joins
				if tc.room != "" && req.FacilitatorPIN != nil {
					req.FacilitatorPIN([]byte(tc.room))
				}
				close(m.done)
			}()
			r.serve(t, c)
			got, at := rec.get()
			if !slices.Equal(got, tc.want) {
				t.Errorf("counted %q, want %q", got, tc.want)
			}
			for _, a := range at {
				if !a.Equal(clk.Now()) {
					t.Errorf("counted at %v, want the flow's clock %v", a, clk.Now())
				}
			}
		})
	}
}

// ErrNoSession is a kind of ErrNotMeeting: the caller hears the same.
func TestNoSessionIsClosed(t *testing.T) {
	if !errors.Is(conference.ErrNoSession, conference.ErrNotMeeting) || joinRefusal(conference.ErrNoSession) != Closed {
		t.Fatal("ErrNoSession is not a closed refusal")
	}
}
