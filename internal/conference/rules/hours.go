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

// hours is a session's scheduled meeting and which of its moments have
// been carried out. Its times are wall-clock instants, a calendar's, not
// the mixing clock's: the engine drives it with MeetingDeadline and
// MeetingTick on its wall clock, apart from the other timers.
type hours struct {
	m                     Meeting
	set                   bool
	started, over, warned bool // MeetingStarted, ScheduledOver, EndsInFive done
}

// SetMeeting gives the session the meeting it belongs to, at now (the
// engine's wall clock). A session without one (its group has no hours, or
// a facilitator opened it outside them) has no scheduled end. Moments
// already past at now are not announced late, except the start (see
// MeetingStarted): a session that begins 3 minutes before Close hears no
// five-minute warning. Called again (a reload changed the hours), it
// replaces the meeting; MeetingStarted is not repeated.
func (s *Session) SetMeeting(m Meeting, now time.Time) {
	started := s.hours.set && s.hours.started
	s.hours = hours{m: m, set: true, started: started}
	s.hours.over = !now.Before(m.End) || !m.Close.After(m.End) // overrun 0: the close says it all
	s.hours.warned = !now.Before(m.Close.Add(-WarnBefore))
}

// ClearMeeting takes the session's meeting away (its group no longer has
// hours): no scheduled end any more.
func (s *Session) ClearMeeting() { s.hours = hours{} }

// Meeting returns the session's meeting and whether it has one.
func (s *Session) Meeting() (Meeting, bool) { return s.hours.m, s.hours.set }

// MeetingDeadline returns when MeetingTick next has something to do, on
// the clock SetMeeting was given, and false when nothing is pending.
func (s *Session) MeetingDeadline() (time.Time, bool) {
	h := &s.hours
	if !h.set || s.ended {
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

// MeetingTick carries out the meeting's moments due at now, in order:
//   - at Start, MeetingStarted (at once when the session began after it),
//     and the opening reading if the session has begun (see Join);
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
func (s *Session) MeetingTick(now time.Time) []Effect {
	h := &s.hours
	if !h.set || s.ended {
		return nil
	}
	if !now.Before(h.m.Close) {
		h.started, h.over, h.warned = true, true, true
		return s.endSaying(ReasonMeetingClosed, prompt.MeetingClosed)
	}
	var out []Effect
	if !h.started && !now.Before(h.m.Start) {
		h.started = true
		out = append(out, Effect{Kind: MeetingStarted})
		out = s.open(out, s.lastSeat) // the opening reading waited for the start
	}
	if !h.over && !now.Before(h.m.End) {
		h.over = true
		out = s.seats.sayFacilitators(out, 0, prompt.ScheduledOver)
	}
	if !h.warned && !now.Before(h.m.Close.Add(-WarnBefore)) {
		h.warned = true
		out = s.seats.sayRoom(out, 0, prompt.EndsInFive)
	}
	return out
}
