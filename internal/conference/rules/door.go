package rules

import (
	"time"

	"github.com/groupbridge/groupbridge/internal/group"
)

// memo is what a dropped caller gets back within RejoinWindow.
type memo struct {
	seat      int
	role      group.Role
	placement Placement
	selfMuted bool
	facMuted  bool
	hand      bool
	until     time.Time

	// Kept by Restore only: the caller's place in the hand queue it was
	// taken from (0: a plain memo, whose hand goes to the end), and the
	// floor with its share time's deadlines.
	handRank       int
	floor          bool
	chimeAt, endAt time.Time
}

// Door is the session's part that decides who comes in: the lock (*7),
// the identities removed from this session, MaxMembers, and the memos that
// let a dropped caller back into their old seat within RejoinWindow. Reach
// it with Session.Door; the engine reads it, only the session changes it.
type Door struct {
	locked     bool
	maxMembers int           // 0 = no limit
	window     time.Duration // RejoinWindow
	removed    map[string]struct{}
	rejoin     map[string]memo
}

func newDoor(cfg Config) Door {
	return Door{
		maxMembers: cfg.MaxMembers,
		window:     cfg.RejoinWindow,
		removed:    map[string]struct{}{},
		rejoin:     map[string]memo{},
	}
}

// Door returns the session's door.
func (s *Session) Door() *Door { return &s.door }

// Locked reports whether new members are refused (*7).
func (d *Door) Locked() bool { return d.locked }

// Remembers reports whether identity would rejoin now: a caller who
// dropped within RejoinWindow, whose Join would restore their seat. The
// engine skips the group's greeting for them. Once the session has ended
// it remembers nobody: a later caller starts a new session.
func (d *Door) Remembers(identity string, now time.Time) bool {
	if identity == "" {
		return false
	}
	m, ok := d.rejoin[identity]
	return ok && now.Before(m.until)
}

// admit answers a caller asking in with identity (see Session.Join for the
// order of the checks) while members members are present. A rejoin within
// the window returns its memo (used up when admitted) and comes in as a
// facilitator if it left as one.
func (d *Door) admit(identity string, role group.Role, members int, now time.Time) (group.Role, memo, bool, RefuseReason) {
	var m memo
	restored := false
	if identity != "" {
		if mm, ok := d.rejoin[identity]; ok {
			if now.Before(mm.until) {
				m, restored = mm, true
			} else {
				delete(d.rejoin, identity)
			}
		}
	}
	if restored && m.role == group.Facilitator {
		role = group.Facilitator
	}
	if role != group.Facilitator {
		if _, bad := d.removed[identity]; bad && identity != "" {
			return role, memo{}, false, RefuseRemoved
		}
		if d.locked && !restored {
			return role, memo{}, false, RefuseLocked
		}
		if d.maxMembers > 0 && members >= d.maxMembers {
			return role, memo{}, false, RefuseFull
		}
	}
	if restored {
		delete(d.rejoin, identity)
	}
	return role, m, restored, RefuseNone
}

// remember keeps c's state for a rejoin until the window passes (nothing
// for a caller without identity).
func (d *Door) remember(c *caller, now time.Time) {
	if c.identity == "" {
		return
	}
	d.forget(now)
	d.rejoin[c.identity] = memo{
		seat: c.seat, role: c.role, placement: c.placement,
		selfMuted: c.selfMuted, facMuted: c.facMuted, hand: c.hand,
		until: now.Add(d.window),
	}
}

// forget drops memos whose window has passed.
func (d *Door) forget(now time.Time) {
	for id, m := range d.rejoin {
		if !now.Before(m.until) {
			delete(d.rejoin, id)
		}
	}
}

// bar refuses identity for the rest of the session and forgets its memo.
// An anonymous caller cannot be barred beyond their call.
func (d *Door) bar(identity string) {
	if identity != "" {
		d.removed[identity] = struct{}{}
		delete(d.rejoin, identity)
	}
}

// liftFacilitatorMutes turns the remembered facilitator mutes into
// self-mutes (the return to open talk): nobody left could lift them.
func (d *Door) liftFacilitatorMutes() {
	for id, m := range d.rejoin {
		if m.facMuted {
			m.facMuted, m.selfMuted = false, true
			d.rejoin[id] = m
		}
	}
}

// close forgets every memo: the session is over.
func (d *Door) close() { clear(d.rejoin) }
