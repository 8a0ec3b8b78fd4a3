package attendance

import (
	"crypto/rand"
	"encoding/hex"
	"slices"
	"time"
)

// Tally counts one session while it runs: the room tells it who joins,
// changes role, leaves or is turned away, each time with the instant (it
// never reads a clock), and End makes the Session record. The identities
// it counts distinct callers by live only here and are dropped by End.
// It is told only on changes, never per tick; not safe for concurrent use.
type Tally struct {
	s Session // the counts so far; times and IDs filled by End

	open    map[int]openStay // connected callers by seat
	callers map[string]int   // identity -> index in stays
	stays   []time.Duration  // summed connected time per distinct caller
	ended   bool
	id      string // the record's ID once known (ID, ResumeTally)
}

// openStay is a connected caller: whose stay it adds to, in which role,
// since when (the join or the last role change).
type openStay struct {
	caller      int // index in Tally.stays
	facilitator bool
	since       time.Time
}

// NewTally starts counting group's session, begun at start.
func NewTally(group string, start time.Time) *Tally {
	return &Tally{s: Session{Group: group, Start: start}, open: map[int]openStay{}, callers: map[string]int{}}
}

// ResumeTally goes on counting a session another node of a cluster
// started and counted until it failed: its record keeps the session's
// start and id (Tally.ID there), so that the session is one record,
// whichever node writes it. What the other node counted is lost.
func ResumeTally(group string, start time.Time, id string) *Tally {
	t := NewTally(group, start)
	t.id = id
	return t
}

// ID returns the ID the session's record will have, made now if it has
// none yet (a cluster mirrors it: ResumeTally).
func (t *Tally) ID() string {
	if t.id == "" {
		t.id = newID()
	}
	return t.id
}

// Slot records the scheduled meeting the session holds (the last one
// given counts: a reload may move it).
func (t *Tally) Slot(start, end time.Time) { t.s.SlotStart, t.s.SlotEnd = start, end }

// Join counts a caller taking seat at now. identity is the per-session key
// of a caller who calls back ("": no number, a new caller every join).
// A seat already connected is closed first (it cannot be, in a room).
func (t *Tally) Join(seat int, identity string, facilitator bool, now time.Time) {
	if t.ended {
		return
	}
	t.Leave(seat, now)
	i, known := t.callers[identity]
	if !known {
		i = len(t.stays)
		t.stays = append(t.stays, 0)
		if identity != "" {
			t.callers[identity] = i
		}
	}
	t.open[seat] = openStay{caller: i, facilitator: facilitator, since: now}
	t.s.Joins++
	t.s.Peak = max(t.s.Peak, len(t.open))
}

// Role tells the tally seat's role at now; a change splits the caller's
// time between the roles. A seat not connected, or already in that role,
// is left as it is.
func (t *Tally) Role(seat int, facilitator bool, now time.Time) {
	o, ok := t.open[seat]
	if !ok || o.facilitator == facilitator || t.ended {
		return
	}
	t.close(o, now)
	o.facilitator, o.since = facilitator, now
	t.open[seat] = o
}

// Leave counts seat's caller gone at now; a seat not connected is ignored.
func (t *Tally) Leave(seat int, now time.Time) {
	o, ok := t.open[seat]
	if !ok || t.ended {
		return
	}
	t.close(o, now)
	delete(t.open, seat)
}

// close adds o's time up to now to its caller and role.
func (t *Tally) close(o openStay, now time.Time) {
	d := max(now.Sub(o.since), 0)
	t.stays[o.caller] += d
	if o.facilitator {
		t.s.FacilitatorTime += d
	} else {
		t.s.MemberTime += d
	}
}

// TurnedAway counts a caller refused at the door for reason.
func (t *Tally) TurnedAway(reason Reason) {
	if reason >= 0 && reason < nReasons && !t.ended {
		t.s.TurnedAway[reason]++
	}
}

// End closes every stay still open at now and returns the session's
// record, its ID random (or the one ID returned or ResumeTally was given;
// a second End makes a new one). The identities are dropped; the tally
// counts nothing after.
func (t *Tally) End(now time.Time) Session {
	for seat := range t.open {
		t.Leave(seat, now)
	}
	s := t.s
	s.End = now
	if t.id == "" || t.ended {
		t.id = newID()
	}
	s.ID = t.id
	t.ended = true
	t.callers, t.open = nil, nil
	s.Distinct = len(t.stays)
	if n := len(t.stays); n > 0 {
		slices.Sort(t.stays)
		s.LongestStay = t.stays[n-1]
		s.MedianStay = t.stays[n/2]
		if n%2 == 0 {
			s.MedianStay = (t.stays[n/2-1] + t.stays[n/2]) / 2
		}
	}
	t.stays = nil
	return s
}

// newID returns 32 random hex digits.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	return hex.EncodeToString(b[:])
}
