package conference

import (
	"log/slog"
	"time"

	"github.com/groupbridge/groupbridge/internal/conference/rules"
	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/internal/schedule"
	"github.com/groupbridge/groupbridge/internal/wallclock"
)

// hoursEvery is how many ticks apart a room with a meeting looks at the
// wall clock for its moments (rules.Hours.Tick): once a second.
const hoursEvery = 50

// meetingHours is the room's part that keeps its session's meeting: it
// finds the meeting on the group's hours when the session starts, follows
// a reload of them, and looks at the wall clock now and then for the
// meeting's moments. The meeting is a calendar's, so it runs on the
// conference's wall clock, not on the mixing clock's ticks.
type meetingHours struct {
	hours *rules.Hours // the session's
	wall  wallclock.Clock
	log   *slog.Logger
	group string // the group's name, for logs
	ticks int    // counts ticks while the session has a meeting
	tally *roomTally
}

// meet gives the session the meeting whose window is open at now, if g has
// hours: a session a facilitator opened outside them has none, and no
// scheduled end. Hours that do not parse (config validation refuses them)
// leave the session without a meeting.
func (h *meetingHours) meet(g *group.Group, now time.Time) {
	sched, err := schedule.New(g.Timezone, g.Meets, g.OpenEarly, g.Overrun)
	if err != nil {
		h.log.Error("meeting hours unreadable, the session has no scheduled end", "group", h.group, "error", err.Error())
		return
	}
	if sched == nil {
		return
	}
	if w, open := sched.At(now); open {
		h.set(w, now)
	}
}

// rehours follows a reload of the group's hours (g) in a session that has
// a meeting: the reloaded meeting on now replaces it (a new end applies);
// without hours the session has no scheduled end any more; hours with no
// meeting on now leave it as it was, so that a reload never cuts a meeting
// short. A session without a meeting (opened by a facilitator outside the
// hours) stays without.
func (h *meetingHours) rehours(g *group.Group) {
	if _, on := h.hours.Meeting(); !on {
		return
	}
	sched, err := schedule.New(g.Timezone, g.Meets, g.OpenEarly, g.Overrun)
	if err != nil {
		return
	}
	now := h.wall.Now()
	if sched == nil {
		h.hours.Clear()
		h.log.Info("session meeting", "group", h.group, "close", "none")
		return
	}
	if w, open := sched.At(now); open {
		h.set(w, now)
	}
}

// set gives the session the meeting of window w.
func (h *meetingHours) set(w schedule.Window, now time.Time) {
	m := rules.Meeting{Start: w.Start, End: w.End, Close: w.Close}
	h.hours.Set(m, now)
	if h.tally != nil {
		h.tally.slot(m) // the last meeting set is the session's slot
	}
	h.log.Info("session meeting", "group", h.group, "start", w.Start.Format(time.RFC3339),
		"end", w.End.Format(time.RFC3339), "close", w.Close.Format(time.RFC3339))
}

// due is called every tick; while the session has a meeting, once every
// hoursEvery ticks it returns the meeting's moments due on the wall clock
// (none once the session is over: rules.Hours.Tick).
func (h *meetingHours) due() []rules.Effect {
	if _, on := h.hours.Meeting(); !on {
		return nil
	}
	if h.ticks++; h.ticks%hoursEvery != 0 {
		return nil
	}
	return h.hours.Tick(h.wall.Now())
}
