package rules

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/media/prompt"
)

// Action is an operator's request to Session.Act: a seat action (on one
// caller) or a room action (on the session). Actions state a result, never
// a toggle, so repeating one changes nothing.
type Action int

// Actions. The zero Action is no action, so a forgotten field never mutes
// anybody.
const (
	// ActMute mutes the seat as a facilitator would (seat action 1).
	ActMute Action = iota + 1
	// ActUnmute lifts a facilitator mute (seat action 2); in lecture mode a
	// member in the room also gets the floor. It never opens a microphone
	// the caller muted themselves.
	ActUnmute
	// ActWait moves a member to waiting (seat action 3).
	ActWait
	// ActReturn brings a member back from waiting (seat action 3 again).
	ActReturn
	// ActRemove removes a member and hangs them up (seat action 4).
	ActRemove
	// ActMakeFacilitator makes a member a facilitator (seat action 5). A
	// member in the lobby of a facilitator-led session may be chosen too:
	// the session then starts as if a facilitator had joined.
	ActMakeFacilitator
	// ActLock refuses new members (*7).
	ActLock
	// ActUnlock lets new members in again (*7).
	ActUnlock
	// ActLectureOn mutes all members but the floor (*5).
	ActLectureOn
	// ActLectureOff lets everyone speak again and clears the floor (*5).
	ActLectureOff
	// ActEnd ends the session for everyone (*# 1).
	ActEnd
)

// actor is who carries out an action. The rows of the table are the same
// for both; only two things differ, on purpose: the keypad's unmute grants
// the floor again to the member who holds it (the facilitator pressed for
// it; it restarts the share time), which the operator's idempotent unmute
// does not, and an ending names who ended the session.
type actor int

const (
	byOperator actor = iota // the admin API, through Act
	byKeypad                // a facilitator's keys
)

// actionDef is one row of the action table.
type actionDef struct {
	// name is the action as the admin API spells it in its paths.
	name string
	// confirm is what a facilitator who pressed for the action hears after
	// it: after "Caller N" for a seat action, alone for a room action; ""
	// for none (the room's announcement is the answer).
	confirm string
	// do carries the action out on t (nil for a room action). It states a
	// result: asking for the state already there changes nothing and says
	// nothing. An error refuses the action and changes nothing.
	do func(s *Session, out []Effect, t *caller, by actor, now time.Time) ([]Effect, error)
}

// actions is the one table of seat and room actions: the operator's Act
// and the facilitator's keys (*1 N # 1-5, *5, *7, *# 1; see Session.Key)
// both carry out an action through its row, so what the target and the
// room hear, and the state left behind, cannot drift apart.
var actions = [...]actionDef{
	ActMute:            {"mute", prompt.IsMuted, actMute},
	ActUnmute:          {"unmute", prompt.IsUnmuted, actUnmute},
	ActWait:            {"wait", prompt.IsWaiting, actWait},
	ActReturn:          {"return", prompt.IsBack, actReturn},
	ActRemove:          {"remove", prompt.CallerRemoved, actRemove},
	ActMakeFacilitator: {"facilitator", prompt.IsFacilitator, actMakeFacilitator},
	ActLock:            {"lock", prompt.Locked, actLock},
	ActUnlock:          {"unlock", prompt.Unlocked, actUnlock},
	ActLectureOn:       {"lecture-on", "", actLectureOn},
	ActLectureOff:      {"lecture-off", "", actLectureOff},
	ActEnd:             {"end", "", actEnd},
}

// String names the action as the admin API spells it ("mute",
// "lecture-on").
func (a Action) String() string {
	if a.valid() {
		return actions[a].name
	}
	return "action(" + strconv.Itoa(int(a)) + ")"
}

// SeatAction reports whether a acts on one caller (and so needs a seat).
func (a Action) SeatAction() bool { return a >= ActMute && a <= ActMakeFacilitator }

func (a Action) valid() bool { return a >= ActMute && a <= ActEnd }

// ParseAction returns the action String names; ErrUnknownAction for any
// other name.
func ParseAction(name string) (Action, error) {
	for a := ActMute; a <= ActEnd; a++ {
		if actions[a].name == name {
			return a, nil
		}
	}
	return 0, ErrUnknownAction
}

// Errors of Session.Act, wrapped with the action and seat; branch on them
// with errors.Is.
var (
	// ErrUnknownAction: not one of the Act* constants.
	ErrUnknownAction = errors.New("rules: unknown action")
	// ErrNoSeat: no caller in that seat, or one already being hung up.
	ErrNoSeat = errors.New("rules: no caller in that seat")
	// ErrFacilitator: facilitators cannot be moved to waiting or removed.
	ErrFacilitator = errors.New("rules: not done to a facilitator")
	// ErrWaiting: a caller in waiting cannot be made facilitator; bring
	// them back first.
	ErrWaiting = errors.New("rules: caller is in waiting")
	// ErrLobby: a caller in the lobby comes into the room with the first
	// facilitator, not before.
	ErrLobby = errors.New("rules: caller is in the lobby until a facilitator joins")
	// ErrEnded: the session is over.
	ErrEnded = errors.New("rules: session has ended")
)

// Act carries out an operator's action at now. seat is the target of a
// seat action and ignored for room actions. Like Key it first fires the
// timers already due, and it returns effects in the same order and to the
// same audiences as the keypad equivalent: the target hears "The
// facilitator has muted you", the room hears lecture and floor
// announcements, a removed caller hears removed_you and is hung up, and
// ending plays session_ended and hangs everyone up (ReasonEndedByOperator).
// The confirmations a pressing facilitator would hear are left out.
//
// Every action is idempotent: asking for the state a caller or the room is
// already in returns no effects and no error. In particular ActUnmute does
// not grant the floor again to the member who holds it (the keypad would
// announce it again and restart the share time), and ActRemove of a caller
// already removed but not yet gone is not an error.
//
// Errors (with errors.Is): ErrEnded once the session is over (effects of
// the timers that ended it are still returned and must be carried out),
// ErrUnknownAction, ErrNoSeat, ErrFacilitator for ActWait or ActRemove on
// a facilitator, ErrWaiting for ActMakeFacilitator on a caller in waiting,
// and ErrLobby for ActReturn on a caller in the lobby. A refused action
// changes nothing.
//
// Removing the last callers present ends the session (Ended) after their
// removal effects, as the last Leave would.
func (s *Session) Act(a Action, seat int, now time.Time) ([]Effect, error) {
	out := s.advance(now)
	if s.ended {
		return out, fmt.Errorf("%v: %w", a, ErrEnded)
	}
	if !a.valid() {
		return out, fmt.Errorf("%v: %w", a, ErrUnknownAction)
	}
	s.changed()
	if !a.SeatAction() {
		return actions[a].do(s, out, nil, byOperator, now)
	}
	t := s.seats.get(seat)
	if t == nil || (t.departing && a != ActRemove) {
		return out, fmt.Errorf("%v seat %d: %w", a, seat, ErrNoSeat)
	}
	out, err := actions[a].do(s, out, t, byOperator, now)
	if err != nil {
		return out, fmt.Errorf("%v seat %d: %w", a, seat, err)
	}
	return out, nil
}

// The rows of the action table. Each is a function of the session rather
// than a method: it is reached only through its row, by Act and by the
// keypad, and it works through the session's parts.

// actLock refuses new members. The keypad's "The group is now locked" is
// the presser's confirmation: nobody else is told.
func actLock(s *Session, out []Effect, _ *caller, _ actor, _ time.Time) ([]Effect, error) {
	s.door.locked = true
	return out, nil
}

// actUnlock lets new members in again.
func actUnlock(s *Session, out []Effect, _ *caller, _ actor, _ time.Time) ([]Effect, error) {
	s.door.locked = false
	return out, nil
}

// actLectureOn mutes all members but the floor.
func actLectureOn(s *Session, out []Effect, _ *caller, _ actor, now time.Time) ([]Effect, error) {
	if !s.hearing.lecture {
		s.hearing.lecture = true
		out = s.seats.sayRoom(out, 0, prompt.EveryoneMuted)
		s.hearing.refreshAll(now)
	}
	return out, nil
}

// actLectureOff lets everyone speak again and clears the floor.
func actLectureOff(s *Session, out []Effect, _ *caller, _ actor, now time.Time) ([]Effect, error) {
	if s.hearing.lecture {
		s.hearing.lecture = false
		s.hearing.setFloor(0, now)
		out = s.seats.sayRoom(out, 0, prompt.EveryoneMaySpeak)
		s.hearing.refreshAll(now)
	}
	return out, nil
}

// actEnd ends the session for everyone.
func actEnd(s *Session, out []Effect, _ *caller, by actor, _ time.Time) ([]Effect, error) {
	reason := ReasonEndedByOperator
	if by == byKeypad {
		reason = ReasonEndedByFacilitator
	}
	return append(out, s.end(reason, prompt.SessionEnded)...), nil
}

// actMute mutes t as a facilitator (seat action 1).
func actMute(s *Session, out []Effect, t *caller, _ actor, now time.Time) ([]Effect, error) {
	if !t.facMuted {
		t.facMuted = true
		s.hearing.refresh(t, now)
		out = append(out, say(t.seat, false, prompt.MutedByFacilitator))
	}
	return out, nil
}

// actUnmute lifts a facilitator mute (seat action 2); in lecture mode a
// member in the room also gets the floor.
func actUnmute(s *Session, out []Effect, t *caller, by actor, now time.Time) ([]Effect, error) {
	was := t.facMuted
	grant := s.hearing.lecture && t.role == group.Member && t.placement == InRoom && (by == byKeypad || s.floor.seat != t.seat)
	if !was && !grant {
		return out, nil
	}
	t.facMuted = false
	s.hearing.refresh(t, now)
	if was {
		// Nobody but the caller opens their microphone: a self-muted
		// caller is told which key does.
		if t.selfMuted {
			out = append(out, say(t.seat, false, prompt.ReminderUnmute))
		} else if !grant && t.heard {
			out = append(out, say(t.seat, false, prompt.Unmuted))
		}
	}
	if grant {
		out = s.hearing.grant(out, t, now)
	}
	return out, nil
}

// actWait moves a member to waiting (seat action 3).
func actWait(s *Session, out []Effect, t *caller, _ actor, now time.Time) ([]Effect, error) {
	if t.role == group.Facilitator {
		return out, ErrFacilitator
	}
	if t.placement == Waiting {
		return out, nil
	}
	s.hearing.standDown(t, now)
	inRoom := t.placement == InRoom
	t.placement = Waiting
	t.announceAt = now.Add(s.cfg.AnnounceEvery)
	s.alarm.schedule(t.announceAt)
	s.alarm.invalidate() // a lobby announcement may have been due earlier
	s.hearing.refresh(t, now)
	if inRoom {
		out = append(out, hold(t.seat, true))
	}
	// From the lobby, waiting keeps the caller out when the facilitator
	// comes; the hold music already plays.
	return append(out, say(t.seat, false, prompt.WaitingMessage)), nil
}

// actReturn brings a member back from waiting (seat action 3 again).
func actReturn(s *Session, out []Effect, t *caller, _ actor, now time.Time) ([]Effect, error) {
	switch t.placement {
	case InRoom:
		return out, nil
	case Lobby:
		return out, ErrLobby
	}
	t.placement = InRoom
	s.alarm.invalidate()
	s.hearing.refresh(t, now)
	return append(out, hold(t.seat, false), say(t.seat, false, prompt.BackInRoom)), nil
}

// actRemove removes a member (seat action 4, confirmed): they hear
// removed_you and are hung up, and their identity is barred for the rest
// of the session (an anonymous caller is barred only in this call, which
// ends). Removing the last callers ends the session.
func actRemove(s *Session, out []Effect, t *caller, _ actor, now time.Time) ([]Effect, error) {
	if t.role == group.Facilitator {
		return out, ErrFacilitator
	}
	if t.departing {
		return out, nil
	}
	if t.placement != InRoom {
		out = append(out, hold(t.seat, false))
	}
	out = append(out,
		say(t.seat, true, prompt.RemovedYou),
		Effect{Kind: Hangup, Seat: t.seat, Reason: ReasonRemoved})
	s.hearing.standDown(t, now)
	t.departing = true
	t.talking = false
	s.seats.count(t.role, -1)
	s.keys.setKey(t, keyIdle, time.Time{})
	t.clearPIN()
	s.hearing.refresh(t, now)
	s.door.bar(t.identity)
	out = s.seats.chime(out, ChimeLeave, t.seat)
	if s.seats.counted() == 0 {
		// Nobody is left to run or hear the session: it is over, as when
		// the last caller hangs up.
		s.finish()
	}
	return out, nil
}

// actMakeFacilitator makes a member a facilitator (seat action 5).
func actMakeFacilitator(s *Session, out []Effect, t *caller, _ actor, now time.Time) ([]Effect, error) {
	if t.placement == Waiting {
		return out, ErrWaiting
	}
	if t.role == group.Facilitator {
		return out, nil
	}
	s.seats.setRole(t, group.Facilitator)
	s.hearing.standDown(t, now)
	if t.placement == Lobby {
		t.placement = InRoom
		s.alarm.invalidate()
		out = append(out, hold(t.seat, false))
	}
	s.hearing.refresh(t, now)
	out = append(out, say(t.seat, false, prompt.YouAreFacilitator))
	// A facilitator-led session waiting in its lobby starts now, and one in
	// its grace goes on.
	return s.facilitatorArrived(out, t.seat, now), nil
}
