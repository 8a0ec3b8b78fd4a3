package rules

import (
	"time"

	"github.com/groupbridge/groupbridge/media/prompt"
)

// Meeting is the scheduled meeting a session belongs to (a group with
// meeting hours whose session started within a meeting's window), as
// instants: the scheduled Start and End, and Close (End plus the group's
// overrun), when the session ends for everyone.
type Meeting struct {
	Start, End, Close time.Time
}

// WarnBefore is how long before a meeting's Close everyone hears "The
// session will end in five minutes."
const WarnBefore = 5 * time.Minute

// ReasonMeetingClosed ends a session at its meeting's Close.
const ReasonMeetingClosed = "meeting-closed"

// Hours is the session's part that keeps its scheduled meeting and which
// of its moments have been carried out. Its times are wall-clock instants,
// a calendar's, not the mixing clock's: the engine drives it with Deadline
// and Tick on its wall clock, apart from the session's other timers
// (Session.Tick). Reach it with Session.Hours; like the session, it is
// not safe for concurrent use.
type Hours struct {
	s                     *Session
	m                     Meeting
	set                   bool
	started, over, warned bool // MeetingStarted, ScheduledOver, EndsInFive done
}

// Hours returns the session's meeting hours.
func (s *Session) Hours() *Hours { return &s.hours }

// begun reports whether what waits for the meeting's start may begin: the
// start has come, or there is no meeting to wait for.
func (h *Hours) begun() bool { return !h.set || h.started }

// Set gives the session the meeting it belongs to, at now (the engine's
// wall clock). A session without one (its group has no hours, or a
// facilitator opened it outside them) has no scheduled end. Moments
// already past at now are not announced late, except the start (see
// MeetingStarted): a session that begins 3 minutes before Close hears no
// five-minute warning. Called again (a reload changed the hours), it
// replaces the meeting; MeetingStarted is not repeated.
func (h *Hours) Set(m Meeting, now time.Time) {
	h.s.changed()
	h.started = h.set && h.started
	h.m, h.set = m, true
	h.over = !now.Before(m.End) || !m.Close.After(m.End) // overrun 0: the close says it all
	h.warned = !now.Before(m.Close.Add(-WarnBefore))
}

// Clear takes the session's meeting away (its group no longer has hours):
// no scheduled end any more.
func (h *Hours) Clear() {
	h.s.changed()
	*h = Hours{s: h.s}
}

// Meeting returns the session's meeting and whether it has one.
func (h *Hours) Meeting() (Meeting, bool) { return h.m, h.set }

// Deadline returns when Tick next has something to do, on the clock Set
// was given, and false when nothing is pending.
func (h *Hours) Deadline() (time.Time, bool) {
	if !h.set || h.s.ended {
		return time.Time{}, false
	}
	next := h.m.Close
	for _, p := range []struct {
		done bool
		at   time.Time
	}{{h.started, h.m.Start}, {h.over, h.m.End}, {h.warned, h.m.Close.Add(-WarnBefore)}} {
		if !p.done && p.at.Before(next) {
			next = p.at
		}
	}
	return next, true
}

// Tick carries out the meeting's moments due at now, in order:
//   - at Start, MeetingStarted (at once when the session began after it),
//     and the opening reading if the session has begun (see Session.Join);
//   - at End, SayFacilitators "The scheduled time is over." (not when
//     Close is End: the closing says it);
//   - at Close minus WarnBefore, SayRoom "The session will end in five
//     minutes." (before End when the overrun is under five minutes);
//   - at Close, the end for everyone: SayRoom "This meeting is now
//     closed. Thank you for being here.", End and a Hangup per caller,
//     reason ReasonMeetingClosed, as any ending (package documentation).
//
// Several due at once come in that order; at or after Close only the
// close is said (a notice about to be overtaken helps nobody). Nothing
// after the session ended.
func (h *Hours) Tick(now time.Time) []Effect {
	s := h.s
	if !h.set || s.ended {
		return nil
	}
	if !now.Before(h.m.Close) {
		h.s.changed()
		h.started, h.over, h.warned = true, true, true
		return s.end(ReasonMeetingClosed, prompt.MeetingClosed)
	}
	var out []Effect
	if !h.started && !now.Before(h.m.Start) {
		h.s.changed()
		h.started = true
		out = append(out, Effect{Kind: MeetingStarted})
		out = s.readings.open(out, s.lastSeat) // the opening reading waited for the start
	}
	if !h.over && !now.Before(h.m.End) {
		h.s.changed()
		h.over = true
		out = s.seats.sayFacilitators(out, 0, prompt.ScheduledOver)
	}
	if !h.warned && !now.Before(h.m.Close.Add(-WarnBefore)) {
		h.s.changed()
		h.warned = true
		out = s.seats.sayRoom(out, 0, prompt.EndsInFive)
	}
	return out
}
