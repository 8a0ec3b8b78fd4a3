package rules

import (
	"slices"
	"strconv"
	"time"

	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/media/prompt"
)

// Session is the state of one group's session. It is not safe for
// concurrent use: the room engine owns it and feeds it commands one at a
// time. The zero value is not usable; call New.
//
// It is composed of one part per idea, each keeping its own state:
//   - seats: who is present in which seat, and who a room-wide effect
//     reaches;
//   - door: who may come in (the lock, removals, MaxMembers) and the
//     rejoin memos;
//   - hearing: the who-is-heard table (mutes, lecture mode, the floor's
//     holder) and the muted-talker reminder;
//   - floor: the raised hands, the holder and the share timer;
//   - presence: the lobby, the grace and the return to open talk while no
//     facilitator is there;
//   - keys: the keypad grammar and its commands, a member's facilitator
//     PIN entry included;
//   - readings: the group's readings, the one that plays, the opening one;
//   - hours: the scheduled meeting and its moments, on the engine's wall
//     clock;
//   - alarm: the next deadline.
//
// Session runs each event (Join, Leave, Talking, Key, PINChecked, Act,
// Tick) through them in order and ends the session; the seat and room
// actions are the table in act.go. Seats, Door, Readings and Hours are
// exported for the engine to read and drive what is theirs alone.
type Session struct {
	cfg      Config
	seats    Seats
	door     Door
	hearing  hearing
	floor    floor
	presence presence
	keys     keypad
	readings Readings
	alarm    alarm
	hours    Hours
	started  bool // a caller has been admitted
	ended    bool
	lastSeat int    // the caller who joined last, whose words an opening reading follows
	version  uint64 // Version
	restored bool   // Restore ran
}

// New returns the session of a group whose first caller is about to join
// at now.
func New(cfg Config, now time.Time) *Session {
	_ = now // sessions keep no wall time of their own; every call brings one
	cfg = cfg.withDefaults()
	facLed := cfg.LedBy == group.LedByFacilitator
	s := &Session{
		cfg:      cfg,
		seats:    newSeats(),
		door:     newDoor(cfg),
		floor:    floor{limit: cfg.ShareLimit, grace: cfg.FloorGrace},
		presence: presence{facLed: facLed, lobby: facLed, endGrace: cfg.EndGrace, openAfter: cfg.OpenTalkAfter},
		hearing:  hearing{talkAfter: cfg.TalkReminderAfter, every: cfg.ReminderEvery},
	}
	s.floor.alarm = &s.alarm
	s.presence.alarm = &s.alarm
	s.hearing.seats, s.hearing.floor, s.hearing.alarm = &s.seats, &s.floor, &s.alarm
	s.keys.s = s
	s.readings = Readings{s: s, has: cfg.Readings, opening: cfg.OpeningReading}
	s.hours.s = s
	return s
}

// Heard reports whether the mixer should take seat's audio: present and
// not told to hang up, placement InRoom, not self-muted, not muted by a
// facilitator, and lecture mode off or the floor or the facilitator role.
// False for absent seats and after the session ended. On hold is the
// engine's business (its stream drops the audio). O(1), no allocation.
func (s *Session) Heard(seat int) bool {
	c := s.seats.get(seat)
	return c != nil && c.heard
}

// View returns the present callers by ascending seat, including callers
// already told to hang up (removed, or the session ended) until their Leave.
func (s *Session) View() []SeatView {
	out := make([]SeatView, 0, len(s.seats.live))
	for _, c := range s.seats.live {
		out = append(out, SeatView{
			Seat:             c.seat,
			Role:             c.role,
			Placement:        c.placement,
			SelfMuted:        c.selfMuted,
			FacilitatorMuted: c.facMuted,
			Hand:             c.hand,
			Floor:            s.floor.seat == c.seat,
			Talking:          c.talking,
			Heard:            c.heard,
			JoinedAt:         c.joinedAt,
		})
	}
	return out
}

// Ended reports whether the session is over: ended by a facilitator, by
// grace expiry, or left by everyone. The engine then discards it.
func (s *Session) Ended() bool { return s.ended }

// Lecture reports whether lecture mode is on (*5).
func (s *Session) Lecture() bool { return s.hearing.lecture }

// ShareTimer reports whether the share timer is on (*4).
func (s *Session) ShareTimer() bool { return s.floor.timer }

// NextDeadline returns when Tick next has something to do, and false when
// nothing is pending (then only a call's event changes anything). Calling
// Tick later than the deadline is fine: timers fire late, never lost.
func (s *Session) NextDeadline() (time.Time, bool) {
	if s.alarm.dirty {
		s.alarm.set(s.earliest())
	}
	if !s.alarm.has {
		return time.Time{}, false
	}
	return s.alarm.next, true
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
// The session's OpeningReading starts (once) with a peer-led session's
// first caller or a facilitator-led session's first facilitator, after
// what that caller is told; in a session with a meeting, not before the
// meeting's scheduled start (Hours.Tick).
func (s *Session) Join(identity string, role group.Role, now time.Time) (JoinResult, []Effect) {
	out := s.advance(now)
	if s.ended {
		return JoinResult{Refused: RefuseEnded}, out
	}
	role, m, restored, refused := s.door.admit(identity, role, s.seats.members, now)
	if refused != RefuseNone {
		return JoinResult{Refused: refused}, out
	}
	s.changed()

	first := !s.started
	s.started = true
	c := &caller{identity: identity, role: role, joinedAt: now}
	switch {
	case role == group.Facilitator:
		c.placement = InRoom
	case restored && m.placement == Waiting:
		c.placement = Waiting
	case s.presence.lobby:
		c.placement = Lobby
	default:
		c.placement = InRoom
	}
	if restored {
		c.seat = m.seat
		c.selfMuted, c.facMuted = m.selfMuted, m.facMuted
	}
	s.seats.add(c)
	if restored && m.hand && role == group.Member && c.placement == InRoom {
		if m.handRank > 0 {
			c.handRank = m.handRank
			s.floor.raiseRanked(c, s.handRank)
		} else {
			s.floor.raise(c)
		}
	}
	if restored && m.floor && s.floor.seat == 0 && role == group.Member && c.placement == InRoom {
		s.floor.resume(c.seat, m.chimeAt, m.endAt)
	}

	out = append(out, say(c.seat, false, greeting(c, first, s.hearing.lecture)...))
	if c.placement != InRoom {
		out = append(out, hold(c.seat, true), say(c.seat, false, announcement(c.placement)))
		c.announceAt = now.Add(s.cfg.AnnounceEvery)
		s.alarm.schedule(c.announceAt)
	}

	if role == group.Facilitator {
		out = s.facilitatorArrived(out, c.seat, now)
	}
	s.lastSeat = c.seat
	out = s.readings.open(out, c.seat)
	s.hearing.refresh(c, now)
	out = s.seats.chime(out, ChimeJoin, c.seat)
	return JoinResult{Seat: c.seat, Restored: restored}, out
}

// greeting is what an admitted caller hears first: their seat, and what
// they find (first here, restored mutes and hand, lecture mode).
func greeting(c *caller, first, lecture bool) []string {
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
	if lecture && c.role == group.Member && c.placement == InRoom && !c.hand {
		greet = append(greet, prompt.LectureRaiseHand)
	}
	return greet
}

// facilitatorArrived is what a facilitator's arrival (seat, now counted in
// seats.facs) changes: the first one ends the lobby, bringing lobby members
// into the room; one arriving during the grace cancels it and the room, but
// seat, hears "The facilitator has joined". In a peer-led session it cancels
// a pending return to open talk, silently: nobody was told it was coming.
func (s *Session) facilitatorArrived(out []Effect, seat int, now time.Time) []Effect {
	lobbyOver, graceOver := s.presence.arrived()
	switch {
	case lobbyOver:
		for _, o := range s.seats.live {
			if o.placement == Lobby && !o.departing {
				o.placement = InRoom
				s.hearing.refresh(o, now)
				out = append(out, hold(o.seat, false), say(o.seat, false, prompt.FacilitatorJoined))
			}
		}
		out = s.readings.open(out, seat)
	case graceOver:
		out = s.seats.sayRoom(out, seat, prompt.FacilitatorJoined)
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
	c := s.seats.get(seat)
	if c == nil {
		return s.advance(now)
	}
	c.clearPIN()
	s.alarm.invalidate()
	s.changed()
	if !s.seats.drop(c) || s.ended {
		return s.advance(now) // a departing caller was counted out when told to hang up
	}
	s.door.remember(c, now)
	s.hearing.standDown(c, now)
	if s.seats.counted() == 0 {
		s.finish()
		return nil
	}
	out := s.seats.chime(nil, ChimeLeave, c.seat)
	if c.role == group.Facilitator && s.seats.facs == 0 {
		endNow, announce := s.presence.lastLeft(now)
		if endNow {
			return append(out, s.end(ReasonGraceExpired, prompt.SessionEnded)...)
		}
		if announce {
			out = s.seats.sayRoom(out, 0, prompt.FacilitatorLeft)
		}
	}
	return append(out, s.advance(now)...)
}

// openTalk returns a peer-led session without a facilitator to open talk
// (see Leave).
func (s *Session) openTalk(out []Effect, now time.Time) []Effect {
	undone := s.hearing.lecture || s.door.locked || s.floor.seat != 0
	s.hearing.lecture, s.door.locked = false, false
	if s.floor.seat != 0 {
		s.hearing.setFloor(0, now)
	}
	var converted []*caller
	for _, c := range s.seats.live {
		if c.facMuted && !c.departing {
			c.facMuted, c.selfMuted = false, true
			converted = append(converted, c)
		}
	}
	s.door.liftFacilitatorMutes()
	undone = undone || len(converted) > 0
	s.hearing.refreshAll(now)
	for _, c := range s.seats.live {
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

// PINChecked is the engine's answer to the CheckPIN effect of seat (see
// Key for what each verdict does). Like Key it first fires the timers due;
// an answer nobody asked for, or for a caller gone or being hung up, does
// nothing.
func (s *Session) PINChecked(seat int, v PINVerdict, now time.Time) []Effect {
	out := s.advance(now)
	c := s.seats.get(seat)
	if c == nil || s.ended || c.departing || !c.answered() {
		return out
	}
	s.changed()
	return s.keys.pinChecked(out, c, v, now)
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
	c := s.seats.get(seat)
	if c == nil || s.ended || c.departing || c.talking == talking {
		return out
	}
	c.talking = talking
	s.hearing.refresh(c, now)
	return out
}

// earliest scans every part for the earliest pending deadline.
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
	if t, has := s.presence.deadline(); has {
		consider(t)
	}
	if t, has := s.floor.deadline(); has {
		consider(t)
	}
	for _, c := range s.seats.live {
		if c.departing {
			continue
		}
		if c.key != keyIdle {
			consider(c.keyAt)
		}
		if c.placement != InRoom {
			consider(c.announceAt)
		}
		if t, ok := s.hearing.reminderAt(c); ok {
			consider(t)
		}
	}
	return at, ok
}

// advance fires every timer due at now (see Tick).
func (s *Session) advance(now time.Time) []Effect {
	if s.ended || !s.alarm.due(now) {
		return nil
	}
	s.changed()
	if s.presence.graceOver(now) {
		return s.end(ReasonGraceExpired, prompt.SessionEnded)
	}
	var out []Effect
	if s.presence.openTalkDue(now) {
		out = s.openTalk(out, now)
	}
	holder := s.floor.seat
	if chime, over := s.floor.due(now); chime || over {
		if chime {
			out = append(out, Effect{Kind: Chime, Chime: ChimeShareLimit, Seat: holder})
		}
		if over && s.hearing.lecture {
			s.hearing.setFloor(0, now)
			out = s.seats.sayRoom(out, 0, prompt.ThankYou, prompt.Caller, num(holder))
		}
	}
	for _, c := range s.seats.live {
		if c.departing {
			continue
		}
		if c.key != keyIdle && !now.Before(c.keyAt) {
			if c.key != keyStar && c.key != keyStarStar {
				out = append(out, say(c.seat, false, prompt.Cancelled))
			}
			c.key = keyIdle
			c.clearPIN()
		}
		if c.placement != InRoom && !now.Before(c.announceAt) {
			out = append(out, say(c.seat, false, announcement(c.placement)))
			c.announceAt = c.announceAt.Add(s.cfg.AnnounceEvery)
			if !c.announceAt.After(now) {
				c.announceAt = now.Add(s.cfg.AnnounceEvery)
			}
		}
		if p := s.hearing.remind(c, now); p != "" {
			out = append(out, say(c.seat, false, p))
		}
	}
	s.door.forget(now)
	s.alarm.set(s.earliest())
	return out
}

// handRank is seat's place in a restored hand queue (0: none).
func (s *Session) handRank(seat int) int {
	if c := s.seats.get(seat); c != nil {
		return c.handRank
	}
	return 0
}

// finish marks the session over with nobody left to tell.
func (s *Session) finish() {
	s.ended = true
	s.changed()
	s.presence.clear()
	s.floor.clear()
	s.door.close()
	s.alarm.set(time.Time{}, false)
	for _, c := range s.seats.live {
		c.heard, c.hand = false, false
		c.key = keyIdle
		c.clearPIN()
	}
}

// end ends the session for everyone: SayRoom closing (session_ended, or
// the meeting's close), End, then a Hangup per caller not already told to
// hang up.
func (s *Session) end(reason, closing string) []Effect {
	out := s.seats.sayRoom(nil, 0, closing)
	out = append(out, Effect{Kind: End, Reason: reason})
	for _, c := range s.seats.live {
		if !c.departing {
			out = append(out, Effect{Kind: Hangup, Seat: c.seat, Reason: reason})
		}
	}
	s.finish()
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
