package rules

import (
	"slices"
	"time"

	"github.com/groupbridge/groupbridge/internal/group"
)

// caller is one present call. Its embedded parts belong to the session's
// parts that keep them: voice to hearing, menu and pinState to the keypad.
type caller struct {
	seat      int
	identity  string // opaque key or "" (never spoken, never logged here)
	role      group.Role
	placement Placement
	joinedAt  time.Time

	hand      bool // in the floor's hand queue
	handRank  int  // place in a restored hand queue (see floor.raiseRanked); 0 for none
	departing bool // told to hang up (removed, or the session ended)

	// announceAt is when a caller in the lobby or waiting hears their
	// announcement again.
	announceAt time.Time

	voice
	menu
	pinState
}

// Seats is the session's table of present callers: who sits where, how
// many of each role count, and so who a room-wide effect would reach.
// Seats are never reused within a session, except by a rejoin getting its
// own seat back. Reach it with Session.Seats; the engine reads it, only the
// session changes it.
type Seats struct {
	bySeat  []*caller // index = seat; nil when the seat is free
	live    []*caller // present callers by ascending seat
	members int       // present members not told to hang up
	facs    int       // present facilitators not told to hang up
}

func newSeats() Seats { return Seats{bySeat: []*caller{nil}} } // seats start at 1

// Seats returns the session's seat table.
func (s *Session) Seats() *Seats { return &s.seats }

// Placement returns where seat is. It is InRoom (the zero value) for a
// seat that is not present; check Session.View or Session.Heard for
// presence.
func (t *Seats) Placement(seat int) Placement {
	if c := t.get(seat); c != nil {
		return c.placement
	}
	return InRoom
}

// Role returns seat's role; Member for a seat that is not present.
func (t *Seats) Role(seat int) group.Role {
	if c := t.get(seat); c != nil {
		return c.role
	}
	return group.Member
}

// Present returns how many calls are connected: joined and not yet Left
// (including callers already told to hang up).
func (t *Seats) Present() int { return len(t.live) }

// Facilitators returns how many facilitators are present and not told to
// hang up: a group outside its hours takes members only while one is.
func (t *Seats) Facilitators() int { return t.facs }

// get returns the present caller in seat, or nil.
func (t *Seats) get(seat int) *caller {
	if seat <= 0 || seat >= len(t.bySeat) {
		return nil
	}
	return t.bySeat[seat]
}

// add seats c (in c.seat when set, a rejoin; else in a new seat) and
// counts them by role.
func (t *Seats) add(c *caller) {
	if c.seat > 0 {
		t.bySeat[c.seat] = c
	} else {
		c.seat = len(t.bySeat)
		t.bySeat = append(t.bySeat, c)
	}
	i, _ := slices.BinarySearchFunc(t.live, c.seat, func(x *caller, seat int) int { return x.seat - seat })
	t.live = slices.Insert(t.live, i, c)
	t.count(c.role, 1)
}

// drop frees c's seat. It reports whether c still counted: false for a
// caller already told to hang up, who was counted out then.
func (t *Seats) drop(c *caller) bool {
	t.bySeat[c.seat] = nil
	i := slices.Index(t.live, c)
	t.live = slices.Delete(t.live, i, i+1)
	if c.departing {
		return false
	}
	t.count(c.role, -1)
	return true
}

// count adds d to the count of role.
func (t *Seats) count(role group.Role, d int) {
	if role == group.Facilitator {
		t.facs += d
	} else {
		t.members += d
	}
}

// setRole gives c role r, keeping the counts.
func (t *Seats) setRole(c *caller, r group.Role) {
	t.count(c.role, -1)
	c.role = r
	t.count(c.role, 1)
}

// counted is how many present callers are not being hung up.
func (t *Seats) counted() int { return t.members + t.facs }

// lastMember is the member with the highest seat not being hung up
// ("who joined last"), or nil.
func (t *Seats) lastMember() *caller {
	for i := len(t.live) - 1; i >= 0; i-- {
		if c := t.live[i]; c.role == group.Member && !c.departing {
			return c
		}
	}
	return nil
}

// Audience appends to dst the seats that should carry out e now and
// returns it: the target of a Say, HoldMusic, Hangup, CheckPIN or
// share-limit chime when present; the room-wide audiences described in the
// package documentation; nobody for End. Call it right after the call that
// returned e, before the next call.
func (t *Seats) Audience(e Effect, dst []int) []int {
	switch e.Kind {
	case Say, HoldMusic, Hangup, CheckPIN:
		if t.get(e.Seat) != nil {
			dst = append(dst, e.Seat)
		}
	case Chime:
		if e.Chime == ChimeShareLimit {
			if t.get(e.Seat) != nil {
				dst = append(dst, e.Seat)
			}
			break
		}
		for _, c := range t.live {
			if !c.departing && c.placement == InRoom && c.seat != e.Seat {
				dst = append(dst, c.seat)
			}
		}
	case SayRoom, SayFacilitators:
		for _, c := range t.live {
			if !c.departing && c.seat != e.Seat && (e.Kind == SayRoom || c.role == group.Facilitator) {
				dst = append(dst, c.seat)
			}
		}
	}
	return dst
}

// sayRoom appends a SayRoom when anyone would hear it.
func (t *Seats) sayRoom(out []Effect, leaveOut int, phrase ...string) []Effect {
	for _, c := range t.live {
		if !c.departing && c.seat != leaveOut {
			return append(out, Effect{Kind: SayRoom, Seat: leaveOut, Phrase: phrase})
		}
	}
	return out
}

// sayFacilitators appends a SayFacilitators when a facilitator would hear
// it.
func (t *Seats) sayFacilitators(out []Effect, leaveOut int, phrase ...string) []Effect {
	for _, c := range t.live {
		if !c.departing && c.role == group.Facilitator && c.seat != leaveOut {
			return append(out, Effect{Kind: SayFacilitators, Seat: leaveOut, Phrase: phrase})
		}
	}
	return out
}

// chime appends a join/leave chime when anyone in the room would hear it.
func (t *Seats) chime(out []Effect, kind ChimeKind, leaveOut int) []Effect {
	for _, c := range t.live {
		if !c.departing && c.placement == InRoom && c.seat != leaveOut {
			return append(out, Effect{Kind: Chime, Chime: kind, Seat: leaveOut})
		}
	}
	return out
}
