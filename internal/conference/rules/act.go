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

// actionNames are the names the admin API uses in its paths.
var actionNames = [...]string{
	ActMute:            "mute",
	ActUnmute:          "unmute",
	ActWait:            "wait",
	ActReturn:          "return",
	ActRemove:          "remove",
	ActMakeFacilitator: "facilitator",
	ActLock:            "lock",
	ActUnlock:          "unlock",
	ActLectureOn:       "lecture-on",
	ActLectureOff:      "lecture-off",
	ActEnd:             "end",
}

// String names the action as the admin API spells it ("mute",
// "lecture-on").
func (a Action) String() string {
	if a.valid() {
		return actionNames[a]
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
		if actionNames[a] == name {
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
	if !a.SeatAction() {
		return s.roomAction(out, a, now), nil
	}
	t := s.get(seat)
	if t == nil || (t.departing && a != ActRemove) {
		return out, fmt.Errorf("%v seat %d: %w", a, seat, ErrNoSeat)
	}
	out, err := s.seatActionBy(out, a, t, now)
	if err != nil {
		return out, fmt.Errorf("%v seat %d: %w", a, seat, err)
	}
	return out, nil
}

// roomAction carries out a room action (see Act).
func (s *Session) roomAction(out []Effect, a Action, now time.Time) []Effect {
	switch a {
	case ActLock, ActUnlock:
		// The keypad's "The group is now locked" is the presser's
		// confirmation: nobody else is told.
		s.locked = a == ActLock
	case ActLectureOn:
		if !s.lecture {
			s.lecture = true
			out = s.sayRoom(out, 0, prompt.EveryoneMuted)
			s.refreshAll(now)
		}
	case ActLectureOff:
		if s.lecture {
			s.lecture = false
			s.setFloor(0, now)
			out = s.sayRoom(out, 0, prompt.EveryoneMaySpeak)
			s.refreshAll(now)
		}
	case ActEnd:
		out = append(out, s.end(ReasonEndedByOperator)...)
	}
	return out
}

// seatActionBy carries out seat action a on t, a present caller (departing
// only for ActRemove).
func (s *Session) seatActionBy(out []Effect, a Action, t *caller, now time.Time) ([]Effect, error) {
	switch a {
	case ActMute:
		if !t.facMuted {
			t.facMuted = true
			s.refresh(t, now)
			out = append(out, say(t.seat, false, prompt.MutedByFacilitator))
		}
	case ActUnmute:
		was := t.facMuted
		grant := s.lecture && t.role == group.Member && t.placement == InRoom && s.floor != t.seat
		if !was && !grant {
			return out, nil
		}
		t.facMuted = false
		s.refresh(t, now)
		if was {
			// As on the keypad: nobody but the caller opens their
			// microphone, so a self-muted caller is told which key does.
			if t.selfMuted {
				out = append(out, say(t.seat, false, prompt.ReminderUnmute))
			} else if !grant && t.heard {
				out = append(out, say(t.seat, false, prompt.Unmuted))
			}
		}
		if grant {
			out = s.grantFloor(out, t, now)
		}
	case ActWait:
		if t.role == group.Facilitator {
			return out, ErrFacilitator
		}
		if t.placement == Waiting {
			return out, nil
		}
		s.lowerHand(t)
		if s.floor == t.seat {
			s.setFloor(0, now)
		}
		inRoom := t.placement == InRoom
		t.placement = Waiting
		t.announceAt = now.Add(s.cfg.AnnounceEvery)
		s.schedule(t.announceAt)
		s.dirty = true // a lobby announcement may have been due earlier
		s.refresh(t, now)
		if inRoom {
			out = append(out, hold(t.seat, true))
		}
		// From the lobby, waiting keeps the caller out when the
		// facilitator comes; the hold music already plays.
		out = append(out, say(t.seat, false, prompt.WaitingMessage))
	case ActReturn:
		switch t.placement {
		case InRoom:
			return out, nil
		case Lobby:
			return out, ErrLobby
		}
		t.placement = InRoom
		s.dirty = true
		s.refresh(t, now)
		out = append(out, hold(t.seat, false), say(t.seat, false, prompt.BackInRoom))
	case ActRemove:
		if t.role == group.Facilitator {
			return out, ErrFacilitator
		}
		if t.departing {
			return out, nil
		}
		out = s.remove(out, t, now)
		if s.members+s.facs == 0 {
			// Nobody is left to run or hear the session: it is over, as
			// when the last caller hangs up.
			s.finish()
		}
	case ActMakeFacilitator:
		if t.placement == Waiting {
			return out, ErrWaiting
		}
		if t.role == group.Facilitator {
			return out, nil
		}
		t.role = group.Facilitator
		s.members--
		s.facs++
		s.lowerHand(t)
		if s.floor == t.seat {
			s.setFloor(0, now)
		}
		if t.placement == Lobby {
			t.placement = InRoom
			s.dirty = true
			out = append(out, hold(t.seat, false))
		}
		s.refresh(t, now)
		out = append(out, say(t.seat, false, prompt.YouAreFacilitator))
		// A facilitator-led session waiting in its lobby starts now, and
		// one in its grace goes on.
		out = s.facilitatorArrived(out, t.seat, now)
	}
	return out, nil
}
