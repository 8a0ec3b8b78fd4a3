package rules

import (
	"slices"
	"time"

	"github.com/groupbridge/groupbridge/internal/group"
)

// caller is one present call. Its embedded parts belong to the session's
// parts that keep them: voice to hearing, menu to the keypad.
type caller struct {
	seat      int
	identity  string // opaque key or "" (never spoken, never logged here)
	role      group.Role
	placement Placement
	joinedAt  time.Time

	hand      bool // in the floor's hand queue
	departing bool // told to hang up (removed, or the session ended)

	// announceAt is when a caller in the lobby or waiting hears their
	// announcement again.
	announceAt time.Time

	voice
	menu
}

// seating is the table of present callers: who sits where, how many of each
// role count, and so who a room-wide effect would reach. Seats are never
// reused within a session, except by a rejoin getting its own seat back.
type seating struct {
	bySeat  []*caller // index = seat; nil when the seat is free
	live    []*caller // present callers by ascending seat
	members int       // present members not told to hang up
	facs    int       // present facilitators not told to hang up
}

func newSeats() seating { return seating{bySeat: []*caller{nil}} } // seats start at 1

// get returns the present caller in seat, or nil.
func (t *seating) get(seat int) *caller {
	if seat <= 0 || seat >= len(t.bySeat) {
		return nil
	}
	return t.bySeat[seat]
}

// add seats c (in c.seat when set, a rejoin; else in a new seat) and
// counts them by role.
func (t *seating) add(c *caller) {
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
func (t *seating) drop(c *caller) bool {
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
func (t *seating) count(role group.Role, d int) {
	if role == group.Facilitator {
		t.facs += d
	} else {
		t.members += d
	}
}

// counted is how many present callers are not being hung up.
func (t *seating) counted() int { return t.members + t.facs }

// lastMember is the member with the highest seat not being hung up
// ("who joined last"), or nil.
func (t *seating) lastMember() *caller {
	for i := len(t.live) - 1; i >= 0; i-- {
		if c := t.live[i]; c.role == group.Member && !c.departing {
			return c
		}
	}
	return nil
}

// audience appends the seats that carry out e now (see Session.Audience).
func (t *seating) audience(e Effect, dst []int) []int {
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
func (t *seating) sayRoom(out []Effect, leaveOut int, phrase ...string) []Effect {
	for _, c := range t.live {
		if !c.departing && c.seat != leaveOut {
			return append(out, Effect{Kind: SayRoom, Seat: leaveOut, Phrase: phrase})
		}
	}
	return out
}

// sayFacilitators appends a SayFacilitators when a facilitator would hear
// it.
func (t *seating) sayFacilitators(out []Effect, leaveOut int, phrase ...string) []Effect {
	for _, c := range t.live {
		if !c.departing && c.role == group.Facilitator && c.seat != leaveOut {
			return append(out, Effect{Kind: SayFacilitators, Seat: leaveOut, Phrase: phrase})
		}
	}
	return out
}

// chime appends a join/leave chime when anyone in the room would hear it.
func (t *seating) chime(out []Effect, kind ChimeKind, leaveOut int) []Effect {
	for _, c := range t.live {
		if !c.departing && c.placement == InRoom && c.seat != leaveOut {
			return append(out, Effect{Kind: Chime, Chime: kind, Seat: leaveOut})
		}
	}
	return out
}
