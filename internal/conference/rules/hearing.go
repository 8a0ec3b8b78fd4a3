package rules

import (
	"time"

	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/media/prompt"
)

// voice is what hearing keeps of one caller.
type voice struct {
	selfMuted bool // by the caller (*6)
	facMuted  bool // by a facilitator or an operator
	talking   bool // the engine's talker detector says so
	heard     bool // cached who-is-heard answer, kept by hearing.refresh

	// unheardTalkSince is when the caller started talking while unheard
	// (zero when not both), the base of the muted-talker reminder.
	unheardTalkSince time.Time
	lastReminder     time.Time
	reminded         bool
}

// hearing is the who-is-heard table the mixer follows and the
// muted-talker reminder: mutes, lecture mode and the floor's holder decide
// it. Every change to one of them goes through refresh (or setFloor for
// the holder), so each caller's cached heard flag and reminder timer stay
// right and Heard stays O(1).
type hearing struct {
	lecture   bool          // *5
	talkAfter time.Duration // TalkReminderAfter
	every     time.Duration // ReminderEvery
	seats     *Seats
	floor     *floor
	alarm     *alarm
}

// heard is the who-is-heard table. It is only asked while the session
// runs: ending clears every heard flag.
func (h *hearing) heard(c *caller) bool {
	return !c.departing && c.placement == InRoom &&
		!c.selfMuted && !c.facMuted &&
		(!h.lecture || c.role == group.Facilitator || h.floor.seat == c.seat)
}

// refresh recomputes c's heard flag and its reminder timer; call it after
// anything that can change either.
func (h *hearing) refresh(c *caller, now time.Time) {
	c.heard = h.heard(c)
	if c.talking && !c.heard && c.placement == InRoom && !c.departing {
		if c.unheardTalkSince.IsZero() {
			c.unheardTalkSince = now
		}
		if t, ok := h.reminderAt(c); ok {
			h.alarm.schedule(t)
		} else {
			h.alarm.invalidate()
		}
		return
	}
	if !c.unheardTalkSince.IsZero() {
		c.unheardTalkSince = time.Time{}
		h.alarm.invalidate()
	}
}

// refreshAll refreshes every present caller (lecture mode changed).
func (h *hearing) refreshAll(now time.Time) {
	for _, c := range h.seats.live {
		h.refresh(c, now)
	}
}

// setFloor gives the floor to seat (0 = nobody), taking it from the
// previous holder, and refreshes both.
func (h *hearing) setFloor(seat int, now time.Time) {
	old := h.floor.give(seat, now)
	if o := h.seats.get(old); o != nil && old != seat {
		h.refresh(o, now)
	}
	if c := h.seats.get(seat); c != nil {
		h.refresh(c, now)
	}
}

// grant gives c the floor (lowering their hand) and tells the room.
func (h *hearing) grant(out []Effect, c *caller, now time.Time) []Effect {
	h.floor.lower(c)
	h.setFloor(c.seat, now)
	return h.seats.sayRoom(out, 0, prompt.Caller, num(c.seat), prompt.YouHaveTheFloor)
}

// standDown takes c out of the hand queue and off the floor (c is leaving
// the room, or no longer a member).
func (h *hearing) standDown(c *caller, now time.Time) {
	h.floor.lower(c)
	if h.floor.seat == c.seat {
		h.setFloor(0, now)
	}
}

// reminder is the reminder c would get now, or "" for none.
func (h *hearing) reminder(c *caller) string {
	switch {
	case c.heard || !c.talking || c.departing || c.placement != InRoom:
		return ""
	case c.selfMuted:
		return prompt.ReminderUnmute
	case c.role == group.Facilitator || c.hand:
		return ""
	}
	return prompt.ReminderRaiseHand
}

// reminderAt is when c's next reminder is due, if one is pending.
func (h *hearing) reminderAt(c *caller) (time.Time, bool) {
	if c.unheardTalkSince.IsZero() || h.reminder(c) == "" {
		return time.Time{}, false
	}
	t := c.unheardTalkSince.Add(h.talkAfter)
	if c.reminded {
		if r := c.lastReminder.Add(h.every); r.After(t) {
			t = r
		}
	}
	return t, true
}

// remind returns the reminder due to c at now ("" for none) and counts it
// as given.
func (h *hearing) remind(c *caller, now time.Time) string {
	if t, ok := h.reminderAt(c); !ok || now.Before(t) {
		return ""
	}
	c.lastReminder, c.reminded = now, true
	return h.reminder(c)
}
