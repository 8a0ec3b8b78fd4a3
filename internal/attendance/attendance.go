// Package attendance is what the bridge keeps of its meetings: one record
// per session and per-day counts, and nothing that names anyone. No number,
// no caller identity and no seat-to-person link survives a session: the
// identities a Tally counts distinct callers by stay in memory and are
// dropped when the session's record is made.
//
// This package holds the records, the Tally a room keeps while its session
// runs, and the rules for showing them (a session with fewer than three
// distinct callers shows no stay figures). Everything that shows records
// goes through report.go: NewReport applies that rule, and WriteCSV,
// WriteJSON and WriteTable (each func(io.Writer, []Session, []Day) error)
// are the exports. Storing them is attendance/store's job; the package
// imports only the standard library.
package attendance

import (
	"context"
	"errors"
	"time"
)

// ErrNotReady is a Reader's answer while its database cannot be reached
// yet: the bridge runs on, and records wait to be written.
var ErrNotReady = errors.New("attendance store not reachable yet")

// Reason is why a caller was turned away at a room's door.
type Reason int

// Reasons a caller is turned away.
const (
	Full    Reason = iota // the group had max_members
	Locked                // the facilitator locked the session
	Closed                // outside the meeting's hours, no facilitator in the room
	Removed               // removed from this session earlier
	nReasons
)

// Session is the record of one session, made when it ends.
type Session struct {
	// ID is random (32 hex digits), made with the record: writing it
	// again after a failed write that did land stores it once.
	ID    string
	Group string
	Start time.Time
	End   time.Time
	// SlotStart and SlotEnd are the scheduled meeting the session held
	// (groups[].meets), zero when it had none.
	SlotStart, SlotEnd time.Time
	// Peak is the most callers connected at once (in the room, waiting or
	// in the lobby).
	Peak int
	// Distinct counts callers by the per-session identity (a caller with
	// no number counts once per join).
	Distinct int
	Joins    int
	// FacilitatorTime and MemberTime are the summed connected time of
	// callers in each role.
	FacilitatorTime, MemberTime time.Duration
	// MedianStay and LongestStay are over distinct callers' summed time.
	MedianStay, LongestStay time.Duration
	// TurnedAway counts callers refused at the door, by Reason.
	TurnedAway [nReasons]int
}

// Day is one day's counts for a group (Group "" is the shared access
// number: a wrong PIN there belongs to no group). Day is the local date,
// "2006-01-02".
type Day struct {
	Day       string
	Group     string
	WrongPINs int
	// Closed counts callers told the group was not meeting while it had
	// no session.
	Closed int
}

// Recorder takes what happens; *store.Writer is one. Every method returns
// at once: a slow or failing database never holds up the clock or a call.
type Recorder interface {
	Session(Session)
	// WrongPIN counts one wrong PIN on group's number ("": the access
	// number) at at.
	WrongPIN(group string, at time.Time)
	// Closed counts one caller told group is not meeting, outside any
	// session.
	Closed(group string, at time.Time)
}

// Filter selects records: Group "" is every group; zero times are open
// ends. A session is in range when it started in [Since, Until).
type Filter struct {
	Group        string
	Since, Until time.Time
}

// Reader reads stored records, oldest first.
type Reader interface {
	Sessions(ctx context.Context, f Filter) ([]Session, error)
	Days(ctx context.Context, f Filter) ([]Day, error)
}
