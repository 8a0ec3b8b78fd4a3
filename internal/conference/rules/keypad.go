package rules

import (
	"time"

	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/media/prompt"
)

// keyState is where a caller is in the keypad grammar.
type keyState uint8

const (
	keyIdle          keyState = iota
	keyStar                   // '*' pressed, waiting for the command key
	keyStarStar               // '**' pressed: a reading's key, or the command key
	keySeatEntry              // *1 pressed, collecting seat digits until '#'
	keySeatAction             // seat picked, waiting for 1-6
	keyConfirmRemove          // waiting for '1' to remove target
	keyConfirmEnd             // waiting for '1' to end the session
	keyPINEntry               // a member's *#: collecting facilitator PIN digits until '#'
)

// maxSeatDigits bounds seat entry: longer input is no seat we could have
// (and cannot overflow the number being built).
const maxSeatDigits = 7

// menu is where one caller is in the keypad grammar.
type menu struct {
	key    keyState
	keyAt  time.Time // when key state expires
	target int       // seat a menu acts on
	entry  int       // seat digits typed so far
	nEntry int       // how many digits typed
}

// keypad reads callers' keys: the grammar of '*' commands and menus, and
// what each command does. Its only state is each caller's menu; it acts on
// the session through the same parts and the same action table as an
// operator's Act.
type keypad struct{ s *Session }

// Key applies one key press (digit is '0'-'9', '*', '#' or 'A'-'D') from
// seat. Commands are '*' then a key within StarTimeout; a key without '*'
// does nothing, and '*' after '*' starts the command again. Every spoken
// answer to the presser's own key is a Say with Interrupt set.
//
// Everyone:
//   - *6 toggles self-mute: "You are muted." / "You are unmuted.", followed,
//     when the caller stays unheard, by the reason: "The facilitator has
//     not joined yet." (lobby), "The facilitator will bring you back
//     shortly." (waiting), "The facilitator has muted you.", or in lecture
//     mode without the floor "The room is in lecture mode; press star 9 ..."
//     ("Your hand is raised." instead when it is).
//   - *2: "There are N people on the call." (callers present, in any
//     placement, not being hung up) or "You are the only one here.";
//     facilitators also hear "Caller N is talking." for each other caller
//     who is talking and heard (the voices in their ear), or "Nobody is
//     talking."
//   - *0: the help for the caller's role; a facilitator of a group with
//     readings also hears how to play and stop them (help_readings).
//
// Members: *9 raises or lowers the hand (first-come queue): "Your hand is
// raised." / "Your hand is lowered."; on raising, facilitators hear
// "Caller N raised a hand." In the lobby or waiting, *9 does nothing (there
// is no floor to ask for from there). A facilitator key pressed by a
// member, wherever they are, answers "That key is for the facilitator."
// A facilitator pressing *9 gets nothing: facilitators are always heard.
//
// A member's *# takes the facilitator role with the group's facilitator
// PIN: "Enter the facilitator PIN, then press pound."; digits until '#'
// (the timeout runs from the last key; '*', another key or the timeout
// answers "Cancelled.", and '#' with no digit too). The digits go to the
// engine in a CheckPIN effect, which answers with PINChecked. Right: as
// seat action 5, the member hears "You are now a facilitator." and the
// other facilitators "Caller N is now a facilitator."; from the lobby the
// session starts. Wrong: "That PIN was not recognised."; after three wrong
// in the call, or one that got the caller blocked for guessing (who then
// stays a member: the block refuses their next call at the door), *#
// answers "That key is for the facilitator." for the rest of the call, as
// it does in a group without a facilitator PIN and for a member in waiting
// (the facilitator brings them back first).
//
// Facilitators:
//   - *5 lecture mode: on -> the room hears "The facilitator has muted
//     everyone."; off -> "Everyone may speak now." and the floor is cleared.
//     Self-mutes are left as they were.
//   - *8 gives the floor to the head of the hand queue (lowering their hand,
//     taking the floor from the previous holder): the room hears "Caller N,
//     you have the floor."; "No hands are raised." when the queue is empty.
//     The floor does not lift a facilitator mute (only seat action 2 does).
//   - *7 lock toggle: "The group is now locked." / "... unlocked."
//   - *3 picks the member with the highest seat present ("who joined last";
//     never a facilitator): "Caller N. Press 1 to confirm ..."; then 1
//     within MenuTimeout removes them, any other key or the timeout answers
//     "Cancelled."; "There is no member to remove." when there is none.
//   - *1 N # picks seat N (digits, '#' ends, any other key cancels; the
//     timeout runs from the last digit): "There is no caller with that
//     number." or "Caller N. Press 1 to mute, ..."; then within MenuTimeout
//     1 mute, 2 unmute (in lecture mode a member in the room also gets the
//     floor), 3 waiting / back, 4 remove (confirm with 1), 5 make
//     facilitator, 6 pass the chair: N becomes a facilitator and the presser
//     a member ("You are now a member."), and everyone else hears "Caller N
//     now has the chair." (see passChair). On a facilitator, 3 and 4 are
//     refused with "Cancelled." (1 and 2 work: facilitators may mute each
//     other, or themselves; 6 works and only steps the presser down); 5 and
//     6 are refused for a caller in waiting (bring them back first), 6 for
//     the presser's own seat. Any other key cancels. A target that left
//     meanwhile answers "There is no caller with that number."
//   - *4 share timer toggle: "The share timer is on." / "... off." Turned
//     on while someone has the floor, their share time starts now.
//   - *# asks "To end the session for everyone, press 1."; 1 ends it, any
//     other key or the timeout answers "Cancelled."
//   - **K (K 1-9) plays the group's reading K to the room (Reading),
//     replacing one that plays; **0 stops it (StopReading). Without a
//     reading K, or with none playing for **0, **K is *K; a member's **K
//     is always *K, so a double-tapped star keeps working.
//
// In a menu (seat entry, seat action, confirmation) every key belongs to
// the menu, '*' included (it cancels).
func (s *Session) Key(seat int, digit byte, now time.Time) []Effect {
	out := s.advance(now)
	c := s.seats.get(seat)
	if c == nil || s.ended || c.departing {
		return out
	}
	s.changed() // over-counts ('*' alone changes nothing kept): keys are rare
	return s.keys.press(out, c, digit, now)
}

// press runs one key of c's through the grammar.
func (k *keypad) press(out []Effect, c *caller, digit byte, now time.Time) []Effect {
	cfg := &k.s.cfg
	switch c.key {
	case keyIdle:
		if digit == '*' {
			k.setKey(c, keyStar, now.Add(cfg.StarTimeout))
		}
		return out
	case keyStar, keyStarStar:
		if digit == '*' {
			k.setKey(c, keyStarStar, now.Add(cfg.StarTimeout))
			return out
		}
		double := c.key == keyStarStar
		k.setKey(c, keyIdle, time.Time{})
		if double {
			return k.doubleStar(out, c, digit, now)
		}
		return k.command(out, c, digit, now)
	case keySeatEntry:
		switch {
		case digit >= '0' && digit <= '9':
			if c.nEntry < maxSeatDigits {
				c.entry = c.entry*10 + int(digit-'0')
			}
			c.nEntry++
			k.setKey(c, keySeatEntry, now.Add(cfg.MenuTimeout))
			return out
		case digit == '#':
			return k.pickSeat(out, c, now)
		}
		return k.cancel(out, c)
	case keySeatAction:
		if digit >= '1' && digit <= '6' {
			return k.seatAction(out, c, digit, now)
		}
		return k.cancel(out, c)
	case keyConfirmRemove:
		if digit == '1' {
			return k.confirmRemove(out, c, now)
		}
		return k.cancel(out, c)
	case keyConfirmEnd:
		if digit == '1' {
			out, _ = actions[ActEnd].do(k.s, out, c, byKeypad, now)
			return out
		}
		return k.cancel(out, c)
	case keyPINEntry:
		switch {
		case digit >= '0' && digit <= '9':
			c.typePIN(digit)
			k.setKey(c, keyPINEntry, now.Add(cfg.MenuTimeout))
			return out
		case digit == '#' && c.nPIN > 0:
			return k.submitPIN(out, c)
		}
		c.clearPIN()
		return k.cancel(out, c)
	}
	return out
}

// setKey moves c's keypad grammar to state, expiring at deadline.
func (k *keypad) setKey(c *caller, state keyState, deadline time.Time) {
	c.key = state
	c.keyAt = deadline
	k.s.alarm.invalidate() // the previous deadline (if any) is gone
	if state != keyIdle {
		k.s.alarm.schedule(deadline)
	}
}

// cancel ends c's menu with "Cancelled."
func (k *keypad) cancel(out []Effect, c *caller) []Effect {
	k.setKey(c, keyIdle, time.Time{})
	return append(out, say(c.seat, true, prompt.Cancelled))
}

// command runs the star command digit for c.
func (k *keypad) command(out []Effect, c *caller, digit byte, now time.Time) []Effect {
	switch digit {
	case '6':
		return k.toggleSelfMute(out, c, now)
	case '2':
		return k.headCount(out, c)
	case '0':
		if c.role == group.Facilitator {
			if k.s.readings.hasAny() {
				return append(out, say(c.seat, true, prompt.HelpFacilitator, prompt.HelpReadings))
			}
			return append(out, say(c.seat, true, prompt.HelpFacilitator))
		}
		return append(out, say(c.seat, true, prompt.HelpMember))
	case '9':
		if c.role != group.Member || c.placement != InRoom {
			return out
		}
		return k.toggleHand(out, c, now)
	case '#':
		if c.role == group.Member {
			return k.askPIN(out, c, now)
		}
		return k.facilitatorCommand(out, c, digit, now)
	case '5', '8', '7', '3', '1', '4':
		if c.role != group.Facilitator {
			return append(out, say(c.seat, true, prompt.FacilitatorOnly))
		}
		return k.facilitatorCommand(out, c, digit, now)
	}
	return out
}

// doubleStar runs **digit: a facilitator's **K plays reading K and **0
// stops the reading that plays; anything else (a member, a key without a
// reading, **0 with nothing playing) is *digit, so a double-tapped star
// still works.
func (k *keypad) doubleStar(out []Effect, c *caller, digit byte, now time.Time) []Effect {
	s := k.s
	if c.role == group.Facilitator {
		switch {
		case digit >= '1' && digit <= '9' && s.readings.has[digit-'0']:
			return s.readings.start(out, int(digit-'0'), 0)
		case digit == '0' && s.readings.playing != 0:
			return s.readings.stop(out)
		}
	}
	return k.command(out, c, digit, now)
}

// toggleSelfMute is *6.
func (k *keypad) toggleSelfMute(out []Effect, c *caller, now time.Time) []Effect {
	c.selfMuted = !c.selfMuted
	k.s.hearing.refresh(c, now)
	if c.selfMuted {
		return append(out, say(c.seat, true, prompt.Muted))
	}
	phrase := []string{prompt.Unmuted}
	if !c.heard {
		switch {
		case c.placement != InRoom:
			phrase = append(phrase, announcement(c.placement))
		case c.facMuted:
			phrase = append(phrase, prompt.MutedByFacilitator)
		case c.hand:
			phrase = append(phrase, prompt.HandRaised)
		default: // lecture mode without the floor
			phrase = append(phrase, prompt.LectureRaiseHand)
		}
	}
	return append(out, say(c.seat, true, phrase...))
}

// headCount is *2.
func (k *keypad) headCount(out []Effect, c *caller) []Effect {
	var phrase []string
	if n := k.s.seats.counted(); n <= 1 {
		phrase = []string{prompt.OnlyOneHere}
	} else {
		phrase = []string{prompt.ThereAre, num(n), prompt.PeopleOnCall}
	}
	if c.role == group.Facilitator {
		talkers := 0
		for _, o := range k.s.seats.live {
			if o != c && o.talking && o.heard {
				phrase = append(phrase, prompt.Caller, num(o.seat), prompt.IsTalking)
				talkers++
			}
		}
		if talkers == 0 {
			phrase = append(phrase, prompt.NobodyTalking)
		}
	}
	return append(out, say(c.seat, true, phrase...))
}

// toggleHand is *9 for a member in the room.
func (k *keypad) toggleHand(out []Effect, c *caller, now time.Time) []Effect {
	s := k.s
	if c.hand {
		s.floor.lower(c)
		s.hearing.refresh(c, now)
		return append(out, say(c.seat, true, prompt.HandLowered))
	}
	s.floor.raise(c)
	s.hearing.refresh(c, now)
	out = append(out, say(c.seat, true, prompt.HandRaised))
	return s.seats.sayFacilitators(out, 0, prompt.Caller, num(c.seat), prompt.RaisedAHand)
}

// facilitatorCommand runs a facilitator-only star command.
func (k *keypad) facilitatorCommand(out []Effect, c *caller, digit byte, now time.Time) []Effect {
	s := k.s
	switch digit {
	case '5':
		a := ActLectureOn
		if s.hearing.lecture {
			a = ActLectureOff
		}
		out, _ = actions[a].do(s, out, c, byKeypad, now)
		return out
	case '8':
		h := s.floor.head()
		if h == 0 {
			return append(out, say(c.seat, true, prompt.NoHands))
		}
		return s.hearing.grant(out, s.seats.get(h), now)
	case '7':
		a := ActLock
		if s.door.locked {
			a = ActUnlock
		}
		out, _ = actions[a].do(s, out, c, byKeypad, now)
		return append(out, say(c.seat, true, actions[a].confirm))
	case '3':
		if t := s.seats.lastMember(); t != nil {
			return k.askRemove(out, c, t, now)
		}
		return append(out, say(c.seat, true, prompt.NoMemberToRemove))
	case '1':
		c.entry, c.nEntry = 0, 0
		k.setKey(c, keySeatEntry, now.Add(s.cfg.MenuTimeout))
		return out
	case '4':
		s.floor.setTimer(!s.floor.timer, now)
		if s.floor.timer {
			return append(out, say(c.seat, true, prompt.TimerOn))
		}
		return append(out, say(c.seat, true, prompt.TimerOff))
	case '#':
		k.setKey(c, keyConfirmEnd, now.Add(s.cfg.MenuTimeout))
		return append(out, say(c.seat, true, prompt.EndConfirm))
	}
	return out
}

// askRemove asks c to confirm removing t.
func (k *keypad) askRemove(out []Effect, c, t *caller, now time.Time) []Effect {
	c.target = t.seat
	k.setKey(c, keyConfirmRemove, now.Add(k.s.cfg.MenuTimeout))
	return append(out, say(c.seat, true, prompt.Caller, num(t.seat), prompt.ConfirmPress1))
}

// target returns the present caller c's menu acts on, or nil.
func (k *keypad) target(c *caller) *caller {
	t := k.s.seats.get(c.target)
	if t == nil || t.departing {
		return nil
	}
	return t
}

// pickSeat ends seat entry with '#'.
func (k *keypad) pickSeat(out []Effect, c *caller, now time.Time) []Effect {
	k.setKey(c, keyIdle, time.Time{})
	if c.nEntry == 0 || c.nEntry > maxSeatDigits {
		return append(out, say(c.seat, true, prompt.NoSuchSeat))
	}
	c.target = c.entry
	t := k.target(c)
	if t == nil {
		return append(out, say(c.seat, true, prompt.NoSuchSeat))
	}
	k.setKey(c, keySeatAction, now.Add(k.s.cfg.MenuTimeout))
	return append(out, say(c.seat, true, prompt.Caller, num(t.seat), prompt.SeatMenu))
}

// confirmRemove is the '1' that confirms a removal.
func (k *keypad) confirmRemove(out []Effect, c *caller, now time.Time) []Effect {
	k.setKey(c, keyIdle, time.Time{})
	t := k.target(c)
	if t == nil {
		return append(out, say(c.seat, true, prompt.NoSuchSeat))
	}
	out, err := actions[ActRemove].do(k.s, out, t, byKeypad, now)
	if err != nil { // made facilitator since the question
		return append(out, say(c.seat, true, prompt.Cancelled))
	}
	return append(out, say(c.seat, true, actions[ActRemove].confirm))
}

// seatAction runs action digit ('1'-'6') of the seat menu: the digit picks
// a row of the action table (3 moves to waiting or back, 4 asks first; 6,
// passing the chair, is the presser's own step down as well), and a refused
// action answers "Cancelled."
func (k *keypad) seatAction(out []Effect, c *caller, digit byte, now time.Time) []Effect {
	k.setKey(c, keyIdle, time.Time{})
	t := k.target(c)
	if t == nil {
		return append(out, say(c.seat, true, prompt.NoSuchSeat))
	}
	var a Action
	switch digit {
	case '1':
		a = ActMute
	case '2':
		a = ActUnmute
	case '3':
		a = ActWait
		if t.placement == Waiting {
			a = ActReturn
		}
	case '4':
		if t.role == group.Facilitator {
			return append(out, say(c.seat, true, prompt.Cancelled))
		}
		return k.askRemove(out, c, t, now)
	case '5':
		a = ActMakeFacilitator
	case '6':
		return k.passChair(out, c, t, now)
	default:
		return out
	}
	out, err := actions[a].do(k.s, out, t, byKeypad, now)
	if err != nil {
		return append(out, say(c.seat, true, prompt.Cancelled))
	}
	return append(out, say(c.seat, true, prompt.Caller, num(t.seat), actions[a].confirm))
}

// passChair is seat action 6: t becomes a facilitator (action 5) and c, who
// pressed, a member. t is promoted before c steps down, so the facilitators
// are never counted down to none: a facilitator-led session never starts
// its grace, a peer-led one never its wait for open talk. Refused with
// "Cancelled." for c's own seat and, like action 5, for a caller in
// waiting. A t who already is a facilitator keeps the role and c still
// steps down (the chair is whoever is left).
//
// c hears "You are now a member." (and, in lecture mode, how to ask for the
// floor); a promoted t hears "You are now a facilitator."; everyone else,
// c included and an already-facilitator t too, hears "Caller N now has the
// chair."
func (k *keypad) passChair(out []Effect, c, t *caller, now time.Time) []Effect {
	s := k.s
	if t == c {
		return append(out, say(c.seat, true, prompt.Cancelled))
	}
	leaveOut := 0
	if t.role == group.Member {
		leaveOut = t.seat // told by "You are now a facilitator."
	}
	out, err := actions[ActMakeFacilitator].do(s, out, t, byKeypad, now)
	if err != nil { // a caller in waiting, as for seat action 5
		return append(out, say(c.seat, true, prompt.Cancelled))
	}
	s.seats.setRole(c, group.Member)
	s.hearing.refresh(c, now)
	phrase := []string{prompt.YouAreMember}
	if s.hearing.lecture && !c.heard && !c.selfMuted && !c.facMuted {
		phrase = append(phrase, prompt.LectureRaiseHand)
	}
	out = append(out, say(c.seat, true, phrase...))
	return s.seats.sayRoom(out, leaveOut, prompt.Caller, num(t.seat), prompt.HasTheChair)
}
