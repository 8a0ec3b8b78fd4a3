package callflow

import (
	"errors"

	"github.com/groupbridge/groupbridge/internal/conference"
	"github.com/groupbridge/groupbridge/internal/ivr"
	"github.com/groupbridge/groupbridge/media/prompt"
)

// Reason is why a call is not admitted. It is the outcome in the log line
// "call not admitted", the calls_total outcome label and the hang-up
// reason, all three the same word.
type Reason string

// The reasons a call is refused.
const (
	PINBlocked    Reason = "pin-blocked"      // held off after too many PIN failures
	WrongPIN      Reason = ivr.ReasonWrongPIN // used up its PIN tries
	NoInput       Reason = ivr.ReasonNoInput  // pressed nothing through the prompts
	PINBusy       Reason = ivr.ReasonBusy     // too many calls waited for a PIN answer
	IVREnded      Reason = "ivr-ended"        // the PIN prompt ended without a reason
	InternalError Reason = "internal-error"   // the caller's prompt playback panicked
	GroupFull     Reason = "group-full"       // the group had max_members
	Locked        Reason = "locked"           // the facilitator locked the meeting
	Removed       Reason = "removed"          // removed from this session
	JoinFailed    Reason = "join-failed"      // the room refused for another reason
	// Unavailable: in a cluster, the room's owner could not be found
	// (Redis unreachable) and cluster.fallback is not local.
	Unavailable Reason = "cluster-unavailable"
	// Closed: a member outside the group's meeting hours (meets) with no
	// facilitator in the room; told when the group meets next.
	Closed Reason = "closed"
)

// prompt is what the caller hears before the hang-up; "" for a plain
// hang-up (the PIN prompt has already said goodbye, or there is nothing
// useful to say).
func (r Reason) prompt() string {
	switch r {
	case PINBlocked:
		return prompt.TryLater
	case GroupFull:
		return prompt.GroupFull
	case Locked:
		return prompt.MeetingLocked
	case Removed:
		return prompt.RemovedYou
	case JoinFailed:
		return prompt.Goodbye
	case Unavailable:
		return prompt.CannotConnect
	case Closed:
		return prompt.NotMeetingNow // then when it meets next (Flow.closed)
	}
	return ""
}

// ErrUnavailable is what a cluster's join says when the room's owner
// cannot be found: the caller hears an apology and is let go.
var ErrUnavailable = errors.New("callflow: the room's node cannot be reached")

// joinRefusal is the reason for a room's refusal.
func joinRefusal(err error) Reason {
	switch {
	case errors.Is(err, conference.ErrFull):
		return GroupFull
	case errors.Is(err, conference.ErrLocked):
		return Locked
	case errors.Is(err, conference.ErrRemoved):
		return Removed
	case errors.Is(err, conference.ErrNotMeeting):
		return Closed
	case errors.Is(err, ErrUnavailable):
		return Unavailable
	}
	return JoinFailed
}

// refuse is the one way a call is turned away: one log line, one count,
// the reason's prompt if it has one, and the hang-up. group is the group
// it was refused by, "" before one was chosen. more is said after the
// reason's prompt (Closed's next meeting), then goodbye.
func (f *Flow) refuse(c Call, st *Settings, r Reason, group string, more ...[]int16) {
	attrs := []any{"call", c.ID(), "caller", c.Label()}
	if group != "" {
		attrs = append(attrs, "group", group)
	}
	f.cfg.Log.Info("call not admitted", append(attrs, "outcome", string(r))...)
	f.cfg.Metrics.CallOutcome(string(r))
	name := r.prompt()
	if name == "" {
		c.Hangup(string(r))
		return
	}
	clips := clipsOf(st, name)
	if len(more) > 0 {
		clips = append(append(clips, more...), clipsOf(st, prompt.Goodbye)...)
	}
	f.sayAndHangup(c, string(r), clips...)
}
