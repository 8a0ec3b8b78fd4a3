package rules

import (
	"slices"
	"strconv"
	"time"

	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/media/prompt"
)

// keyState is where a caller is in the keypad grammar.
type keyState uint8

const (
	keyIdle          keyState = iota
	keyStar                   // '*' pressed, waiting for the command key
	keySeatEntry              // *1 pressed, collecting seat digits until '#'
	keySeatAction             // seat picked, waiting for 1-5
	keyConfirmRemove          // waiting for '1' to remove target
	keyConfirmEnd             // waiting for '1' to end the session
)

// maxSeatDigits bounds seat entry: longer input is no seat we could have
// (and cannot overflow the number being built).
const maxSeatDigits = 7

// caller is one present call.
type caller struct {
	seat      int
	identity  string // opaque key or "" (never spoken, never logged here)
	role      group.Role
	placement Placement
	joinedAt  time.Time

	selfMuted bool
	facMuted  bool
	hand      bool // in s.hands
	talking   bool
	heard     bool // cached who-is-heard answer, kept by refresh
	departing bool // told to hang up (removed, or the session ended)

	// unheardTalkSince is when the caller started talking while unheard
	// (zero when not both), the base of the muted-talker reminder.
	unheardTalkSince time.Time
	lastReminder     time.Time
	reminded         bool

	// announceAt is when a caller in the lobby or waiting hears their
	// announcement again.
	announceAt time.Time

	key    keyState
	keyAt  time.Time // when key state expires
	target int       // seat a menu acts on
	entry  int       // seat digits typed so far
	nEntry int       // how many digits typed
}

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

// Session is the state of one group's session. It is not safe for
// concurrent use: the room engine owns it and feeds it commands one at a
// time. The zero value is not usable; call New.
type Session struct {
	cfg    Config
	facLed bool

	bySeat  []*caller // index = seat; nil when the seat is free (never reused)
	live    []*caller // present callers by ascending seat
	members int       // present members not told to hang up
	facs    int       // present facilitators not told to hang up
	started bool      // a caller has been admitted
	lobby   bool      // facilitator-led and no facilitator has joined yet
	ended   bool

	lecture bool
	locked  bool
	timer   bool // share timer

	hands      []int // raised hands, first come first
	floor      int   // seat with the floor, 0 = nobody
	chimeAt    time.Time
	floorEndAt time.Time
	graceAt    time.Time // facilitator-led: end then unless one returns
	openAt     time.Time // peer-led: back to open talk then unless one returns

	removed map[string]struct{}
	rejoin  map[string]memo

	// next is a lower bound of every pending deadline (exact after a scan);
	// dirty says a deadline may have gone since, so NextDeadline rescans.
	next    time.Time
	hasNext bool
	dirty   bool
}

// New returns the session of a group whose first caller is about to join
// at now.
func New(cfg Config, now time.Time) *Session {
	_ = now // sessions keep no wall time of their own; every call brings one
	cfg = cfg.withDefaults()
	return &Session{
		cfg:     cfg,
		facLed:  cfg.LedBy == group.LedByFacilitator,
		lobby:   cfg.LedBy == group.LedByFacilitator,
		bySeat:  []*caller{nil}, // seats start at 1
		removed: map[string]struct{}{},
		rejoin:  map[string]memo{},
	}
}

// Heard reports whether the mixer should take seat's audio: present and
// not told to hang up, placement InRoom, not self-muted, not muted by a
// facilitator, and lecture mode off or the floor or the facilitator role.
// False for absent seats and after the session ended. On hold is the
// engine's business (its stream drops the audio). O(1), no allocation.
func (s *Session) Heard(seat int) bool {
	c := s.get(seat)
	return c != nil && c.heard
}

// Placement returns where seat is. It is InRoom (the zero value) for a
// seat that is not present; check View or Heard for presence.
func (s *Session) Placement(seat int) Placement {
	if c := s.get(seat); c != nil {
		return c.placement
	}
	return InRoom
}

// View returns the present callers by ascending seat, including callers
// already told to hang up (removed, or the session ended) until their Leave.
func (s *Session) View() []SeatView {
	out := make([]SeatView, 0, len(s.live))
	for _, c := range s.live {
		out = append(out, SeatView{
			Seat:             c.seat,
			Role:             c.role,
			Placement:        c.placement,
			SelfMuted:        c.selfMuted,
			FacilitatorMuted: c.facMuted,
			Hand:             c.hand,
			Floor:            s.floor == c.seat,
			Talking:          c.talking,
			Heard:            c.heard,
			JoinedAt:         c.joinedAt,
		})
	}
	return out
}

// Present returns how many calls are connected: joined and not yet Left
// (including callers already told to hang up).
func (s *Session) Present() int { return len(s.live) }

// Ended reports whether the session is over: ended by a facilitator, by
// grace expiry, or left by everyone. The engine then discards it.
func (s *Session) Ended() bool { return s.ended }

// Locked reports whether new members are refused (*7).
func (s *Session) Locked() bool { return s.locked }

// Lecture reports whether lecture mode is on (*5).
func (s *Session) Lecture() bool { return s.lecture }

// ShareTimer reports whether the share timer is on (*4).
func (s *Session) ShareTimer() bool { return s.timer }

// Role returns seat's role; Member for a seat that is not present.
func (s *Session) Role(seat int) group.Role {
	if c := s.get(seat); c != nil {
		return c.role
	}
	return group.Member
}

// Audience appends to dst the seats that should carry out e now and
// returns it: the target of a Say, HoldMusic, Hangup or share-limit chime
// when present; the room-wide audiences described in the package
// documentation; nobody for End. Call it right after the call that
// returned e, before the next call.
func (s *Session) Audience(e Effect, dst []int) []int {
	switch e.Kind {
	case Say, HoldMusic, Hangup:
		if s.get(e.Seat) != nil {
			dst = append(dst, e.Seat)
		}
	case Chime:
		if e.Chime == ChimeShareLimit {
			if s.get(e.Seat) != nil {
				dst = append(dst, e.Seat)
			}
			break
		}
		for _, c := range s.live {
			if !c.departing && c.placement == InRoom && c.seat != e.Seat {
				dst = append(dst, c.seat)
			}
		}
	case SayRoom, SayFacilitators:
		for _, c := range s.live {
			if !c.departing && c.seat != e.Seat && (e.Kind == SayRoom || c.role == group.Facilitator) {
				dst = append(dst, c.seat)
			}
		}
	}
	return dst
}

// NextDeadline returns when Tick next has something to do, and false when
// nothing is pending (then only a call's event changes anything). Calling
// Tick later than the deadline is fine: timers fire late, never lost.
func (s *Session) NextDeadline() (time.Time, bool) {
	if s.dirty {
		s.recompute()
	}
	if !s.hasNext {
		return time.Time{}, false
	}
	return s.next, true
}

// Tick fires every timer due at now: star and menu timeouts, lobby and
// waiting announcements, muted-talker reminders, the share timer, the
// facilitator grace, and a peer-led session's return to open talk. The
// other methods run due timers too (Join, Key and Talking before their
// event, Leave right after taking the caller out), so a late Tick never
// lets an event overtake an expired timer. Cheap when nothing is due: no
// allocation, and no scan of the callers unless a timer was cancelled
// since the last one.
func (s *Session) Tick(now time.Time) []Effect {
	return s.advance(now)
}

// Join admits a caller or refuses them. identity is an opaque key for the
// caller's number (an HMAC computed by the engine) or "" when the call has
// no number: such a caller is told apart by their call only (no rejoin
// restore, and a removal blocks only that call).
//
// Checks, in order: the session ended (RefuseEnded); for members, a removed
// identity (RefuseRemoved), a locked room (RefuseLocked) unless the caller
// is a rejoin within RejoinWindow, and MaxMembers (RefuseFull, rejoins
// included: it is a capacity limit). Facilitators, including a member made
// facilitator who rejoins, always get in. A rejoin gets its old seat back
// with its role (facilitator if either the old or the new role is), mute
// states, raised hand (at the end of the queue) and waiting placement; the
// floor is not restored.
//
// The admitted caller hears "You are caller N", then "You are the first
// one here" (first caller of the session), the restored state ("You are
// muted", "The facilitator has muted you", "Your hand is raised") and, for
// a member entering the room in lecture mode without a raised hand, "The
// room is in lecture mode; press star 9 ...". In the lobby or waiting they
// get hold music and their announcement (repeated every AnnounceEvery).
// When a facilitator joins a facilitator-led session, lobby members come
// into the room (hold music off, "The facilitator has joined"); a
// facilitator coming back during the grace cancels it and the room hears
// "The facilitator has joined". Callers in the room hear a join chime.
func (s *Session) Join(identity string, role group.Role, now time.Time) (JoinResult, []Effect) {
	out := s.advance(now)
	if s.ended {
		return JoinResult{Refused: RefuseEnded}, out
	}
	var m memo
	restored := false
	if identity != "" {
		if mm, ok := s.rejoin[identity]; ok {
			if now.Before(mm.until) {
				m, restored = mm, true
			} else {
				delete(s.rejoin, identity)
			}
		}
	}
	if restored && m.role == group.Facilitator {
		role = group.Facilitator
	}
	if role != group.Facilitator {
		if _, bad := s.removed[identity]; bad && identity != "" {
			return JoinResult{Refused: RefuseRemoved}, out
		}
		if s.locked && !restored {
			return JoinResult{Refused: RefuseLocked}, out
		}
		if s.cfg.MaxMembers > 0 && s.members >= s.cfg.MaxMembers {
			return JoinResult{Refused: RefuseFull}, out
		}
	}

	first := !s.started
	s.started = true
	c := &caller{identity: identity, role: role, joinedAt: now}
	if restored {
		delete(s.rejoin, identity)
		c.seat = m.seat
		c.selfMuted, c.facMuted = m.selfMuted, m.facMuted
		s.bySeat[c.seat] = c
	} else {
		c.seat = len(s.bySeat)
		s.bySeat = append(s.bySeat, c)
	}
	i, _ := slices.BinarySearchFunc(s.live, c.seat, func(x *caller, seat int) int { return x.seat - seat })
	s.live = slices.Insert(s.live, i, c)

	switch {
	case role == group.Facilitator:
		c.placement = InRoom
		s.facs++
	case restored && m.placement == Waiting:
		c.placement = Waiting
		s.members++
	case s.lobby:
		c.placement = Lobby
		s.members++
	default:
		c.placement = InRoom
		s.members++
	}
	if restored && m.hand && role == group.Member && c.placement == InRoom {
		c.hand = true
		s.hands = append(s.hands, c.seat)
	}

	greet := []string{prompt.YouAreCaller, num(c.seat)}
	if first {
		greet = append(greet, prompt.FirstHere)
	}
	if c.selfMuted {
		greet = append(greet, prompt.Muted)
	}
	if c.facMuted {
		greet = append(greet, prompt.MutedByFacilitator)
	}
	if c.hand {
		greet = append(greet, prompt.HandRaised)
	}
	if s.lecture && role == group.Member && c.placement == InRoom && !c.hand {
		greet = append(greet, prompt.LectureRaiseHand)
	}
	out = append(out, say(c.seat, false, greet...))
	if c.placement != InRoom {
		out = append(out, hold(c.seat, true), say(c.seat, false, announcement(c.placement)))
		c.announceAt = now.Add(s.cfg.AnnounceEvery)
		s.schedule(c.announceAt)
	}

	if role == group.Facilitator {
		out = s.facilitatorArrived(out, c.seat, now)
	}
	s.refresh(c, now)
	out = s.chime(out, ChimeJoin, c.seat)
	return JoinResult{Seat: c.seat, Restored: restored}, out
}

// facilitatorArrived is what a facilitator's arrival (seat, now counted in
// s.facs) changes: the first one ends the lobby, bringing lobby members into
// the room; one arriving during the grace cancels it and the room, but seat,
// hears "The facilitator has joined". In a peer-led session it cancels a
// pending return to open talk, silently: nobody was told it was coming.
func (s *Session) facilitatorArrived(out []Effect, seat int, now time.Time) []Effect {
	if !s.openAt.IsZero() {
		s.openAt = time.Time{}
		s.dirty = true
	}
	if s.lobby {
		s.lobby = false
		for _, o := range s.live {
			if o.placement == Lobby && !o.departing {
				o.placement = InRoom
				s.refresh(o, now)
				out = append(out, hold(o.seat, false), say(o.seat, false, prompt.FacilitatorJoined))
			}
		}
		s.dirty = true // lobby announcements are gone
	} else if !s.graceAt.IsZero() {
		s.graceAt = time.Time{}
		s.dirty = true
		out = s.sayRoom(out, seat, prompt.FacilitatorJoined)
	}
	return out
}

// Leave is the end of seat's call (hung up, dropped, or the BYE after a
// Hangup effect). Unless the caller was removed or the session ended, their
// state is remembered under their identity (if any) for RejoinWindow, the
// room hears a leave chime, and in a facilitator-led session the last
// facilitator leaving starts the grace: the room hears "The facilitator has
// left ..." and the session ends EndGrace later unless a facilitator joins.
//
// In a peer-led session the last facilitator leaving starts OpenTalkAfter,
// silently (a dropped call is often back within it): unless a facilitator
// joins or is made before it runs out, the session returns to open talk,
// undoing what nobody left could undo. Lecture mode goes off, the floor is
// cleared, the lock is lifted, and facilitator mutes become self-mutes (of
// the callers present and of those remembered for rejoin). Callers in the
// room hear "The facilitator has left. Everyone may speak now.", followed
// for a caller whose mute was converted by "You are muted. Press star 6 to
// unmute."; callers in waiting stay there and hear "The facilitator has
// left." That is said only when something was undone or someone is
// waiting. The share timer, raised hands and waiting placements are kept,
// and a facilitator who joins later finds the room as it is then.
//
// When no caller is left (other than ones being hung up) the session is
// Ended, with no effects.
//
// The caller is taken out first and then due timers run, so nothing is
// said to (or about) a caller who is gone.
func (s *Session) Leave(seat int, now time.Time) []Effect {
	out := s.leave(seat, now)
	return append(out, s.advance(now)...)
}

// leave takes seat out of the session (see Leave).
func (s *Session) leave(seat int, now time.Time) []Effect {
	c := s.get(seat)
	if c == nil {
		return nil
	}
	var out []Effect
	s.bySeat[seat] = nil
	i := slices.Index(s.live, c)
	s.live = slices.Delete(s.live, i, i+1)
	s.dirty = true
	if c.departing {
		return out // counted out when told to hang up
	}
	if c.role == group.Facilitator {
		s.facs--
	} else {
		s.members--
	}
	if s.ended {
		return out
	}
	if c.identity != "" {
		s.forget(now)
		s.rejoin[c.identity] = memo{
			seat: c.seat, role: c.role, placement: c.placement,
			selfMuted: c.selfMuted, facMuted: c.facMuted, hand: c.hand,
			until: now.Add(s.cfg.RejoinWindow),
		}
	}
	s.lowerHand(c)
	if s.floor == c.seat {
		s.setFloor(0, now)
	}
	if s.members+s.facs == 0 {
		s.finish()
		return out
	}
	out = s.chime(out, ChimeLeave, c.seat)
	if c.role != group.Facilitator || s.facs > 0 {
		return out
	}
	switch {
	case !s.facLed:
		s.openAt = now.Add(s.cfg.OpenTalkAfter)
		s.schedule(s.openAt)
	case !s.lobby:
		if s.cfg.EndGrace <= 0 {
			return append(out, s.end(ReasonGraceExpired)...)
		}
		out = s.sayRoom(out, 0, prompt.FacilitatorLeft)
		s.graceAt = now.Add(s.cfg.EndGrace)
		s.schedule(s.graceAt)
	}
	return out
}

// openTalk returns a peer-led session without a facilitator to open talk
// (see Leave).
func (s *Session) openTalk(out []Effect, now time.Time) []Effect {
	s.openAt = time.Time{}
	s.dirty = true
	undone := s.lecture || s.locked || s.floor != 0
	s.lecture, s.locked = false, false
	if s.floor != 0 {
		s.setFloor(0, now)
	}
	var converted []*caller
	for _, c := range s.live {
		if c.facMuted && !c.departing {
			c.facMuted, c.selfMuted = false, true
			converted = append(converted, c)
		}
	}
	for id, m := range s.rejoin {
		if m.facMuted {
			m.facMuted, m.selfMuted = false, true
			s.rejoin[id] = m
		}
	}
	undone = undone || len(converted) > 0
	s.refreshAll(now)
	for _, c := range s.live {
		switch {
		case c.departing:
		case c.placement == Waiting:
			out = append(out, say(c.seat, false, prompt.FacilitatorGone))
		case c.placement == InRoom && undone:
			phrase := []string{prompt.FacilitatorGone, prompt.EveryoneMaySpeak}
			if slices.Contains(converted, c) {
				phrase = append(phrase, prompt.ReminderUnmute)
			}
			out = append(out, say(c.seat, false, phrase...))
		}
	}
	return out
}

// Talking records what the engine's talker detector (level with
// hysteresis) says about seat. It feeds the muted-talker reminder: a caller
// in the room who is unheard and talks for TalkReminderAfter hears, at most
// once per ReminderEvery, "You are muted. Press star 6 to unmute." when
// self-muted, otherwise (muted by a facilitator, or lecture mode without the
// floor) "Press star 9 to raise your hand." — except when their hand is
// already raised, or they are a facilitator muted by another (no key would
// help). Reminders come from Tick; Talking itself only returns timers that
// were already due.
func (s *Session) Talking(seat int, talking bool, now time.Time) []Effect {
	out := s.advance(now)
	c := s.get(seat)
	if c == nil || s.ended || c.departing || c.talking == talking {
		return out
	}
	c.talking = talking
	s.refresh(c, now)
	return out
}

// get returns the present caller in seat, or nil.
func (s *Session) get(seat int) *caller {
	if seat <= 0 || seat >= len(s.bySeat) {
		return nil
	}
	return s.bySeat[seat]
}

// computeHeard is the who-is-heard table.
func (s *Session) computeHeard(c *caller) bool {
	return !s.ended && !c.departing && c.placement == InRoom &&
		!c.selfMuted && !c.facMuted &&
		(!s.lecture || c.role == group.Facilitator || s.floor == c.seat)
}

// refresh recomputes c's cached heard flag and its reminder timer; call it
// after anything that can change either.
func (s *Session) refresh(c *caller, now time.Time) {
	c.heard = s.computeHeard(c)
	if c.talking && !c.heard && c.placement == InRoom && !c.departing && !s.ended {
		if c.unheardTalkSince.IsZero() {
			c.unheardTalkSince = now
		}
		if t, ok := s.reminderAt(c); ok {
			s.schedule(t)
		} else {
			s.dirty = true
		}
		return
	}
	if !c.unheardTalkSince.IsZero() {
		c.unheardTalkSince = time.Time{}
		s.dirty = true
	}
}

// refreshAll refreshes every present caller (lecture mode changed).
func (s *Session) refreshAll(now time.Time) {
	for _, c := range s.live {
		s.refresh(c, now)
	}
}

// reminderPrompt is the reminder c would get now, or "" for none.
func (s *Session) reminderPrompt(c *caller) string {
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
func (s *Session) reminderAt(c *caller) (time.Time, bool) {
	if c.unheardTalkSince.IsZero() || s.reminderPrompt(c) == "" {
		return time.Time{}, false
	}
	t := c.unheardTalkSince.Add(s.cfg.TalkReminderAfter)
	if c.reminded {
		if r := c.lastReminder.Add(s.cfg.ReminderEvery); r.After(t) {
			t = r
		}
	}
	return t, true
}

// schedule lowers the deadline bound to t.
func (s *Session) schedule(t time.Time) {
	if !s.hasNext || t.Before(s.next) {
		s.next, s.hasNext = t, true
	}
}

// recompute sets next to the exact earliest deadline.
func (s *Session) recompute() {
	s.next, s.hasNext = s.earliest()
	s.dirty = false
}

// earliest scans for the earliest pending deadline.
func (s *Session) earliest() (time.Time, bool) {
	var at time.Time
	ok := false
	consider := func(t time.Time) {
		if !ok || t.Before(at) {
			at, ok = t, true
		}
	}
	if s.ended {
		return at, false
	}
	if !s.graceAt.IsZero() {
		consider(s.graceAt)
	}
	if !s.openAt.IsZero() {
		consider(s.openAt)
	}
	if !s.chimeAt.IsZero() {
		consider(s.chimeAt)
	}
	if !s.floorEndAt.IsZero() {
		consider(s.floorEndAt)
	}
	for _, c := range s.live {
		if c.departing {
			continue
		}
		if c.key != keyIdle {
			consider(c.keyAt)
		}
		if c.placement != InRoom {
			consider(c.announceAt)
		}
		if t, ok := s.reminderAt(c); ok {
			consider(t)
		}
	}
	return at, ok
}

// advance fires every timer due at now (see Tick).
func (s *Session) advance(now time.Time) []Effect {
	if s.ended || !s.hasNext || now.Before(s.next) {
		return nil
	}
	if !s.graceAt.IsZero() && !now.Before(s.graceAt) {
		return s.end(ReasonGraceExpired)
	}
	var out []Effect
	if !s.openAt.IsZero() && !now.Before(s.openAt) {
		out = s.openTalk(out, now)
	}
	if s.floor != 0 {
		if !s.chimeAt.IsZero() && !now.Before(s.chimeAt) {
			s.chimeAt = time.Time{}
			out = append(out, Effect{Kind: Chime, Chime: ChimeShareLimit, Seat: s.floor})
		}
		if !s.floorEndAt.IsZero() && !now.Before(s.floorEndAt) {
			s.floorEndAt = time.Time{}
			if s.lecture {
				seat := s.floor
				s.setFloor(0, now)
				out = s.sayRoom(out, 0, prompt.ThankYou, prompt.Caller, num(seat))
			}
		}
	}
	for _, c := range s.live {
		if c.departing {
			continue
		}
		if c.key != keyIdle && !now.Before(c.keyAt) {
			if c.key != keyStar {
				out = append(out, say(c.seat, false, prompt.Cancelled))
			}
			c.key = keyIdle
		}
		if c.placement != InRoom && !now.Before(c.announceAt) {
			out = append(out, say(c.seat, false, announcement(c.placement)))
			c.announceAt = c.announceAt.Add(s.cfg.AnnounceEvery)
			if !c.announceAt.After(now) {
				c.announceAt = now.Add(s.cfg.AnnounceEvery)
			}
		}
		if t, ok := s.reminderAt(c); ok && !now.Before(t) {
			out = append(out, say(c.seat, false, s.reminderPrompt(c)))
			c.lastReminder, c.reminded = now, true
		}
	}
	s.forget(now)
	s.recompute()
	return out
}

// forget drops rejoin memories whose window has passed.
func (s *Session) forget(now time.Time) {
	for id, m := range s.rejoin {
		if !now.Before(m.until) {
			delete(s.rejoin, id)
		}
	}
}

// finish marks the session over with nobody left to tell.
func (s *Session) finish() {
	s.ended = true
	s.graceAt, s.openAt, s.chimeAt, s.floorEndAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	s.hasNext, s.dirty = false, false
	s.floor, s.hands = 0, nil
	for _, c := range s.live {
		c.heard, c.hand = false, false
		c.key = keyIdle
	}
}

// end ends the session for everyone: SayRoom session_ended, End, then a
// Hangup per caller not already told to hang up.
func (s *Session) end(reason string) []Effect {
	out := s.sayRoom(nil, 0, prompt.SessionEnded)
	out = append(out, Effect{Kind: End, Reason: reason})
	for _, c := range s.live {
		if !c.departing {
			out = append(out, Effect{Kind: Hangup, Seat: c.seat, Reason: reason})
		}
	}
	s.finish()
	return out
}

// lowerHand takes c out of the hand queue.
func (s *Session) lowerHand(c *caller) {
	if !c.hand {
		return
	}
	c.hand = false
	if i := slices.Index(s.hands, c.seat); i >= 0 {
		s.hands = slices.Delete(s.hands, i, i+1)
	}
}

// setFloor gives the floor to seat (0 = nobody), taking it from the
// previous holder, and (re)starts the share timer for a new grant.
func (s *Session) setFloor(seat int, now time.Time) {
	old := s.floor
	s.floor = seat
	s.chimeAt, s.floorEndAt = time.Time{}, time.Time{}
	s.dirty = true
	if seat != 0 && s.timer {
		s.startShare(now)
	}
	if o := s.get(old); o != nil && old != seat {
		s.refresh(o, now)
	}
	if c := s.get(seat); c != nil {
		s.refresh(c, now)
	}
}

// startShare runs the share limit for the current floor from now.
func (s *Session) startShare(now time.Time) {
	s.chimeAt = now.Add(s.cfg.ShareLimit)
	s.floorEndAt = s.chimeAt.Add(s.cfg.FloorGrace)
	s.schedule(s.chimeAt)
}

// grantFloor gives c the floor (lowering their hand) and tells the room.
func (s *Session) grantFloor(out []Effect, c *caller, now time.Time) []Effect {
	s.lowerHand(c)
	s.setFloor(c.seat, now)
	return s.sayRoom(out, 0, prompt.Caller, num(c.seat), prompt.YouHaveTheFloor)
}

// sayRoom appends a SayRoom when anyone would hear it.
func (s *Session) sayRoom(out []Effect, leaveOut int, phrase ...string) []Effect {
	for _, c := range s.live {
		if !c.departing && c.seat != leaveOut {
			return append(out, Effect{Kind: SayRoom, Seat: leaveOut, Phrase: phrase})
		}
	}
	return out
}

// sayFacilitators appends a SayFacilitators when a facilitator would hear
// it.
func (s *Session) sayFacilitators(out []Effect, leaveOut int, phrase ...string) []Effect {
	for _, c := range s.live {
		if !c.departing && c.role == group.Facilitator && c.seat != leaveOut {
			return append(out, Effect{Kind: SayFacilitators, Seat: leaveOut, Phrase: phrase})
		}
	}
	return out
}

// chime appends a join/leave chime when anyone in the room would hear it.
func (s *Session) chime(out []Effect, kind ChimeKind, leaveOut int) []Effect {
	for _, c := range s.live {
		if !c.departing && c.placement == InRoom && c.seat != leaveOut {
			return append(out, Effect{Kind: Chime, Chime: kind, Seat: leaveOut})
		}
	}
	return out
}

// say is a Say effect.
func say(seat int, interrupt bool, phrase ...string) Effect {
	return Effect{Kind: Say, Seat: seat, Phrase: phrase, Interrupt: interrupt}
}

// hold is a HoldMusic effect.
func hold(seat int, on bool) Effect {
	return Effect{Kind: HoldMusic, Seat: seat, On: on}
}

// announcement is what a caller out of the room hears on repeat.
func announcement(p Placement) string {
	if p == Lobby {
		return prompt.FacilitatorNotJoined
	}
	return prompt.WaitingMessage
}

// num is a seat number as a Phrase entry.
func num(seat int) string { return strconv.Itoa(seat) }
