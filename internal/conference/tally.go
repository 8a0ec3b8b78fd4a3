package conference

import (
	"errors"
	"sync"
	"time"

	"github.com/groupbridge/groupbridge/internal/attendance"
	"github.com/groupbridge/groupbridge/internal/conference/rules"
	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/internal/wallclock"
)

// roomTally is the room's part that counts its session's attendance
// (attendance.Tally) and hands the record to the Recorder when the session
// ends. It is told of changes only (a join, a leave, a role change, a
// refusal), never per tick; without a Recorder it does nothing. Times are
// the conference's wall clock, like the session's start.
type roomTally struct {
	// mu: the tick feeds the tally, and shutdown may end it from another
	// goroutine (Close) while a tick that had started still runs.
	mu   sync.Mutex
	t    *attendance.Tally // nil without a Recorder
	rec  attendance.Recorder
	wall wallclock.Clock
	done bool // the record was made
}

// start begins counting group's session, begun now, for rec (nil: none).
func (a *roomTally) start(rec attendance.Recorder, wall wallclock.Clock, group string, now time.Time) {
	if rec != nil {
		a.t, a.rec, a.wall = attendance.NewTally(group, now), rec, wall
	}
}

// resume goes on counting group's session another node started at start,
// whose record has id ("": a new one; attendance.ResumeTally).
func (a *roomTally) resume(group string, start time.Time, id string) {
	if a.t != nil {
		a.t = attendance.ResumeTally(group, start, id)
	}
}

// id is the ID the session's record will have ("" without a Recorder).
func (a *roomTally) id() string {
	if a.t == nil {
		return ""
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.t.ID()
}

// slot records the scheduled meeting the session holds.
func (a *roomTally) slot(m rules.Meeting) {
	if a.t == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.t.Slot(m.Start, m.End)
}

// join counts a caller let in at seat.
func (a *roomTally) join(seat int, identity string, role group.Role) {
	if a.t == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.t.Join(seat, identity, role == group.Facilitator, a.wall.Now())
}

// leave counts seat's caller gone.
func (a *roomTally) leave(seat int) {
	if a.t == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.t.Leave(seat, a.wall.Now())
}

// roles follows the members' roles after a change in the room (the chair
// passed, an operator made a facilitator); the room calls it only on a
// tick that changed something.
func (a *roomTally) roles(members []*member, seats *rules.Seats) {
	if a.t == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(members) == 0 {
		return
	}
	now := a.wall.Now()
	for _, m := range members {
		a.t.Role(m.seat, seats.Role(m.seat) == group.Facilitator, now)
	}
}

// refused counts a join the room turned away with err (nil: let in).
func (a *roomTally) refused(err error) {
	if a.t == nil || err == nil {
		return
	}
	var reason attendance.Reason
	switch {
	case errors.Is(err, ErrFull):
		reason = attendance.Full
	case errors.Is(err, ErrLocked):
		reason = attendance.Locked
	case errors.Is(err, ErrRemoved):
		reason = attendance.Removed
	case errors.Is(err, ErrNotMeeting):
		reason = attendance.Closed
	default:
		return // the session is over: nobody was turned away from it
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.t.TurnedAway(reason)
}

// end makes the session's record, once, and hands it to the Recorder
// (which returns at once).
func (a *roomTally) end() {
	if a.t == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.done {
		return
	}
	a.done = true
	a.rec.Session(a.t.End(a.wall.Now()))
}
