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
}

// door decides who comes in: the lock (*7), the identities removed from
// this session, MaxMembers, and the memos that let a dropped caller back
// into their old seat within RejoinWindow.
type door struct {
	locked     bool
	maxMembers int           // 0 = no limit
	window     time.Duration // RejoinWindow
	removed    map[string]struct{}
	rejoin     map[string]memo
}

func newDoor(cfg Config) door {
	return door{
		maxMembers: cfg.MaxMembers,
		window:     cfg.RejoinWindow,
		removed:    map[string]struct{}{},
		rejoin:     map[string]memo{},
	}
}

// admit answers a caller asking in with identity (see Session.Join for the
// order of the checks) while members members are present. A rejoin within
// the window returns its memo (used up when admitted) and comes in as a
// facilitator if it left as one.
func (d *door) admit(identity string, role group.Role, members int, now time.Time) (group.Role, memo, bool, RefuseReason) {
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
func (d *door) remember(c *caller, now time.Time) {
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
func (d *door) forget(now time.Time) {
	for id, m := range d.rejoin {
		if !now.Before(m.until) {
			delete(d.rejoin, id)
		}
	}
}

// bar refuses identity for the rest of the session and forgets its memo.
// An anonymous caller cannot be barred beyond their call.
func (d *door) bar(identity string) {
	if identity != "" {
		d.removed[identity] = struct{}{}
		delete(d.rejoin, identity)
	}
}

// liftFacilitatorMutes turns the remembered facilitator mutes into
// self-mutes (the return to open talk): nobody left could lift them.
func (d *door) liftFacilitatorMutes() {
	for id, m := range d.rejoin {
		if m.facMuted {
			m.facMuted, m.selfMuted = false, true
			d.rejoin[id] = m
		}
	}
}
