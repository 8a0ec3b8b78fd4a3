// Package rules is the pure state machine of one group's session: seats,
// roles, mutes, lecture mode, the floor, raised hands, the lobby and
// waiting, removal, the lock, the share timer, facilitator presence (the
// grace of a facilitator-led session, the return to open talk of a
// peer-led one), rejoin after a dropped call, the group's readings, a
// member taking the chair with the facilitator PIN, and the moments of a
// scheduled meeting.
//
// A Session is made of parts, one per kind of state (see Session). The
// engine reaches four of them for what is theirs alone: Session.Seats
// (who is where, who hears an effect), Session.Door (the lock, who would
// rejoin), Session.Readings (what plays) and Session.Hours (the meeting);
// everything else goes through the Session's own methods.
//
// It has no goroutines, no I/O and no audio, and it never reads a clock:
// every call carries the time it happens at. It answers with Effects that
// the room engine carries out (prompts, chimes, hold music, hang-ups) and
// with the who-is-heard table the mixer follows (Session.Heard). The engine
// owns one Session per live session, calls it from its single owner
// goroutine, and calls Tick at or after NextDeadline.
//
// # Carrying out effects
//
// Effects are returned in the order they must be carried out. A Say, a
// HoldMusic, a Hangup, a ChimeShareLimit chime and a CheckPIN (answered with
// Session.PINChecked; see Privacy) go to Effect.Seat. The
// room-wide kinds go to an audience the engine works out when it carries
// them out, right after the call that returned them (Seats.Audience does
// it):
//   - SayRoom: every present caller that has not been told to hang up, in
//     any placement (room, waiting, lobby), except Effect.Seat. Callers on
//     hold music hear room news too, and session_ended reaches everyone.
//   - SayFacilitators: the same, facilitators only.
//   - Chime (ChimeJoin, ChimeLeave): the callers InRoom that have not been
//     told to hang up, except Effect.Seat (the caller joining or leaving).
//     Callers on hold music get no chimes.
//   - Reading, StopReading: the room's reading, which everyone InRoom hears
//     in the mix (never waiting or lobby callers); the engine calls
//     Readings.Ended when a reading has played to its end.
//
// Room-wide effects are only returned when their audience is not empty at
// that moment, so "no effect" in a test means "nobody hears anything".
//
// # Ending
//
// A session ended by a facilitator (*# 1), by an operator (ActEnd) or by
// grace expiry returns, in this order: SayRoom session_ended, End (with the
// reason), then one Hangup per caller still present and not already told to
// hang up, by ascending seat, with the same reason. The engine hangs up each
// caller after what it is hearing has played, calls Leave for each call as
// it ends, and discards the session. A session everyone has left is Ended
// as well, with no effects (there is nobody to tell); so is one whose last
// callers an operator removed (ActRemove), after their removal effects.
// After Ended, every method returns no
// effects and Join refuses with RefuseEnded: a later caller starts a new
// Session, with seat 1 and nothing carried over.
//
// # Meeting hours
//
// A session of a group with meeting hours that started within a meeting's
// window is given that meeting (Hours.Set, reached with Session.Hours: its
// scheduled start and end, and its close, the end plus the group's
// overrun). Its moments are a calendar's: the engine reads them with
// Hours.Deadline and carries them out with Hours.Tick, both on its wall
// clock, apart from Session.Tick and the other timers. In order:
// MeetingStarted at the scheduled start (the marker for what begins a
// meeting, such as its opening reading), "The scheduled time is over." to
// the facilitators at the scheduled end, "The session will end in five
// minutes." to everyone five minutes before the close, and at the close
// the session ends as above with "This meeting is now closed. Thank you
// for being here." instead of session_ended, reason ReasonMeetingClosed. A session a facilitator opened outside the hours
// has no meeting and no scheduled end.
//
// # Operator actions
//
// Session.Act applies what an operator asks through the admin API. Each
// action states the result it wants rather than toggling (muting a muted
// caller changes nothing and says nothing). Seat and room actions are one
// table (act.go, actions), which the keypad's seat menu and room commands
// use as well: the keys only choose a row (and toggle between two), so an
// action says the same words to the target and the room and leaves the
// same state whoever asked for it; only the confirmations a facilitator
// hears after their own key press have no listener and are left out.
//
// # Privacy
//
// No effect ever carries an identity or digits a caller typed: the only
// numbers spoken are seat numbers of callers present at that moment, and a
// seat typed after *1 is only repeated once it has been found present.
//
// The one exception is CheckPIN: the facilitator PIN a member typed after
// *# (see Session.Key), carried in Effect.Digits to the engine, which alone
// can check it (the rules know no PINs). The session keeps the digits only
// while they are typed and overwrites them when it hands them over or the
// entry ends; Effect.String never shows them; the engine checks them in
// constant time, zeroes the slice, and answers with Session.PINChecked.
// Nothing else may read, keep or log Digits.
//
// # What it must not know
//
// SIP, audio, the admin API's HTTP and the configuration file: it speaks of
// seats, group.Role, keys and Actions, and derives its settings from a
// group.Group (ConfigFor).
package rules

import (
	"strconv"
	"strings"
	"time"

	"github.com/groupbridge/groupbridge/internal/group"
)

// Defaults used for zero (or negative) timings in Config.
const (
	DefaultShareLimit        = 3 * time.Minute
	DefaultRejoinWindow      = 2 * time.Minute
	DefaultStarTimeout       = 3 * time.Second
	DefaultMenuTimeout       = 10 * time.Second
	DefaultAnnounceEvery     = 30 * time.Second
	DefaultFloorGrace        = 30 * time.Second
	DefaultTalkReminderAfter = 2 * time.Second
	DefaultReminderEvery     = time.Minute
	DefaultOpenTalkAfter     = time.Minute
)

// Config is the part of a group's configuration a session follows, derived
// from group.Group by ConfigFor, plus the timings of its rules (tests
// shorten nothing: the clock is injected). It is the engine's settings, not
// another shape of a group: it has no name, number or PINs.
type Config struct {
	// LedBy is group.LedByFacilitator or group.LedByPeer; anything other than
	// "facilitator" is peer-led (the config package validates the value).
	LedBy string
	// MaxMembers caps members present (in the room, waiting or in the
	// lobby); facilitators always get in. 0 = no limit.
	MaxMembers int
	// ShareLimit is share_minutes: how long one floor grant runs while the
	// share timer is on. 0 = DefaultShareLimit.
	ShareLimit time.Duration
	// EndGrace is how long a facilitator-led session waits for a
	// facilitator to return after the last one left. 0 (which the
	// configuration allows) ends the session at once, without the
	// facilitator_left announcement.
	EndGrace time.Duration

	// RejoinWindow: a dropped caller who calls back within it (same
	// identity) gets seat, hand, mute state, placement and role back.
	RejoinWindow time.Duration
	// StarTimeout: a '*' not followed by a key within it is dropped.
	StarTimeout time.Duration
	// MenuTimeout: seat entry (*1 N #, from the last key pressed), the seat
	// action choice and confirmations expire after it with "cancelled".
	MenuTimeout time.Duration
	// AnnounceEvery: how often callers in the lobby or waiting hear their
	// announcement again.
	AnnounceEvery time.Duration
	// FloorGrace: with the share timer on, in lecture mode, the speaker
	// loses the floor this long after the share-limit chime.
	FloorGrace time.Duration
	// TalkReminderAfter: an unheard caller talking this long hears the
	// muted-talker reminder.
	TalkReminderAfter time.Duration
	// ReminderEvery: at most one reminder per caller per this period.
	ReminderEvery time.Duration
	// OpenTalkAfter: a peer-led session whose last facilitator left and
	// none came back within it returns to open talk.
	OpenTalkAfter time.Duration

	// Readings[K] is true when the group has reading K (1-9): a
	// facilitator's **K plays it; without it **K is *K.
	Readings [10]bool
	// OpeningReading is the key of the reading that opens the session
	// (see Join); 0 for none.
	OpeningReading int

	// HasFacilitatorPIN: the group has a facilitator PIN, so a member's *#
	// asks for it (whether there is one, never the PIN itself).
	HasFacilitatorPIN bool
}

// ConfigFor derives a session's settings from its group: the group's
// choices, with every timing at its default.
func ConfigFor(g group.Group) Config {
	c := Config{
		LedBy:      g.LedBy,
		MaxMembers: g.MaxMembers,
		ShareLimit: time.Duration(g.ShareMinutes) * time.Minute,
		EndGrace:   g.EndGrace,

		HasFacilitatorPIN: g.FacilitatorPIN != "",
	}
	for _, r := range g.Readings {
		if r.Key >= 1 && r.Key <= 9 {
			c.Readings[r.Key] = true
		}
	}
	if k := g.OpeningReading; k >= 1 && k <= 9 && c.Readings[k] {
		c.OpeningReading = k
	}
	return c
}

// withDefaults fills zero and negative timings.
func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.ShareLimit, DefaultShareLimit)
	def(&c.RejoinWindow, DefaultRejoinWindow)
	def(&c.StarTimeout, DefaultStarTimeout)
	def(&c.MenuTimeout, DefaultMenuTimeout)
	def(&c.AnnounceEvery, DefaultAnnounceEvery)
	def(&c.FloorGrace, DefaultFloorGrace)
	def(&c.TalkReminderAfter, DefaultTalkReminderAfter)
	def(&c.ReminderEvery, DefaultReminderEvery)
	def(&c.OpenTalkAfter, DefaultOpenTalkAfter)
	if c.EndGrace < 0 {
		c.EndGrace = 0
	}
	if c.MaxMembers < 0 {
		c.MaxMembers = 0
	}
	return c
}

// PINVerdict is the engine's answer to a CheckPIN effect.
type PINVerdict int

// PIN verdicts.
const (
	// PINWrong: not the group's facilitator PIN (or none could be checked).
	PINWrong PINVerdict = iota
	// PINRight: the group's facilitator PIN.
	PINRight
	// PINBlocked: wrong, and the caller is now blocked for guessing PINs
	// (the bridge's PIN-guess limits, the same as at the door).
	PINBlocked
)

// String names the verdict for logs.
func (v PINVerdict) String() string {
	switch v {
	case PINWrong:
		return "wrong"
	case PINRight:
		return "right"
	case PINBlocked:
		return "blocked"
	}
	return "verdict(" + strconv.Itoa(int(v)) + ")"
}

// RefuseReason says why Join did not admit a caller. The engine plays the
// matching prompt (meeting_locked, group_full, removed_you) and hangs up;
// Join returns no effects for a refusal.
type RefuseReason int

// Refuse reasons.
const (
	RefuseNone    RefuseReason = iota // admitted
	RefuseFull                        // MaxMembers members are present
	RefuseLocked                      // the room is locked (members only)
	RefuseRemoved                     // this identity was removed from this session
	RefuseEnded                       // the session is over; start a new one
)

// String names the reason for logs.
func (r RefuseReason) String() string {
	switch r {
	case RefuseNone:
		return "none"
	case RefuseFull:
		return "full"
	case RefuseLocked:
		return "locked"
	case RefuseRemoved:
		return "removed"
	case RefuseEnded:
		return "ended"
	}
	return "refuse(" + strconv.Itoa(int(r)) + ")"
}

// JoinResult is the answer to Join.
type JoinResult struct {
	Seat     int          // the caller's seat; 0 when refused
	Refused  RefuseReason // RefuseNone when admitted
	Restored bool         // a rejoin within RejoinWindow: old seat and state back
}

// Placement is where a present caller is.
type Placement int

// Placements. Only InRoom callers are mixed; the others hear hold music.
const (
	InRoom  Placement = iota
	Waiting           // moved out by a facilitator (seat action 3)
	Lobby             // facilitator-led session whose first facilitator has not joined yet
)

// String names the placement for logs.
func (p Placement) String() string {
	switch p {
	case InRoom:
		return "room"
	case Waiting:
		return "waiting"
	case Lobby:
		return "lobby"
	}
	return "placement(" + strconv.Itoa(int(p)) + ")"
}

// EffectKind is what the engine must do for an Effect.
type EffectKind int

// Effect kinds; see the package documentation for who each one reaches.
const (
	// Say plays Phrase to Seat: queued after what the caller hears, or
	// instead of it when Interrupt is set.
	Say EffectKind = iota
	// SayRoom plays Phrase to the room (see the package documentation),
	// leaving out Seat when it is not 0.
	SayRoom
	// SayFacilitators plays Phrase to the facilitators present, leaving out
	// Seat when it is not 0.
	SayFacilitators
	// Chime plays a chime: ChimeJoin/ChimeLeave to the callers in the room
	// but Seat, ChimeShareLimit to Seat only.
	Chime
	// HoldMusic starts (On) or stops hold music for Seat; prompts play over
	// it.
	HoldMusic
	// Hangup lets Seat go (BYE) after what it is being told has played.
	Hangup
	// End says the session is over; Hangup effects for everyone follow.
	End
	// Reading plays the group's reading Key to everyone in the room (not
	// waiting, not the lobby), mixed like one more talker, replacing one
	// that plays. When Seat is not 0 it starts once what Seat is being
	// told has played (the caller whose arrival opened the session). The
	// engine calls Readings.Ended when it has played to its end.
	Reading
	// StopReading stops the reading that plays.
	StopReading
	// CheckPIN asks the engine to check Digits, a facilitator PIN that
	// member Seat typed after *#, and to answer with Session.PINChecked
	// (see the package documentation, Privacy).
	CheckPIN
	// MeetingStarted marks the scheduled start of the session's meeting
	// (Hours.Tick): once per session, at the start, or at once
	// when the session began after it. It has no audience; an engine may
	// start what belongs to a meeting's start (opening_reading).
	MeetingStarted
)

// String names the kind for logs and test output.
func (k EffectKind) String() string {
	switch k {
	case Say:
		return "Say"
	case SayRoom:
		return "SayRoom"
	case SayFacilitators:
		return "SayFacilitators"
	case Chime:
		return "Chime"
	case HoldMusic:
		return "HoldMusic"
	case Hangup:
		return "Hangup"
	case End:
		return "End"
	case MeetingStarted:
		return "MeetingStarted"
	case Reading:
		return "Reading"
	case StopReading:
		return "StopReading"
	case CheckPIN:
		return "CheckPIN"
	}
	return "effect(" + strconv.Itoa(int(k)) + ")"
}

// ChimeKind is which chime to play.
type ChimeKind int

// Chimes.
const (
	ChimeJoin       ChimeKind = iota // someone joined the room
	ChimeLeave                       // someone left the room
	ChimeShareLimit                  // the speaker's share time is up (to the speaker only)
)

// String names the chime for logs and test output.
func (c ChimeKind) String() string {
	switch c {
	case ChimeJoin:
		return "join"
	case ChimeLeave:
		return "leave"
	case ChimeShareLimit:
		return "share-limit"
	}
	return "chime(" + strconv.Itoa(int(c)) + ")"
}

// Hangup and End reasons, for logs.
const (
	ReasonRemoved            = "removed"
	ReasonGraceExpired       = "grace-expired"
	ReasonEndedByFacilitator = "ended-by-facilitator"
	ReasonEndedByOperator    = "ended-by-operator"
)

// Effect is one thing the engine must do. Only the fields its Kind uses
// are set.
type Effect struct {
	Kind EffectKind
	// Seat is the target of Say, HoldMusic, Hangup and a ChimeShareLimit
	// chime; for SayRoom, SayFacilitators and join/leave chimes it is a
	// seat to leave out (0 = none).
	Seat int
	// Phrase is what to say: prompt names (package media/prompt) in order;
	// an entry made only of digits is a number to speak ("4" -> "four"),
	// always the seat of a caller present when the effect was made.
	Phrase []string
	// Chime is which chime, for Kind Chime.
	Chime ChimeKind
	// On is HoldMusic on (true) or off.
	On bool
	// Reason is the Hangup/End reason for logs (the Reason* constants).
	Reason string
	// Interrupt is set on a Say that confirms the caller's own key press
	// (and on removed_you): it replaces what the caller hears now instead of
	// queueing after it.
	Interrupt bool
	// Key is the reading's key (1-9), for Kind Reading.
	Key int
	// Digits is the PIN typed, for CheckPIN only: secret, never logged, and
	// zeroed by the engine once checked.
	Digits []byte
}

// String renders the effect compactly for logs and test failures; it holds
// nothing private (see the package documentation): a CheckPIN shows its
// seat only, never its Digits.
func (e Effect) String() string {
	var b strings.Builder
	b.WriteString(e.Kind.String())
	b.WriteString("(")
	b.WriteString(strconv.Itoa(e.Seat))
	switch e.Kind {
	case Say, SayRoom, SayFacilitators:
		b.WriteString(" [")
		b.WriteString(strings.Join(e.Phrase, " "))
		b.WriteString("]")
		if e.Interrupt {
			b.WriteString(" interrupt")
		}
	case Chime:
		b.WriteString(" ")
		b.WriteString(e.Chime.String())
	case HoldMusic:
		if e.On {
			b.WriteString(" on")
		} else {
			b.WriteString(" off")
		}
	case Hangup, End:
		b.WriteString(" ")
		b.WriteString(e.Reason)
	case Reading:
		b.WriteString(" ")
		b.WriteString(strconv.Itoa(e.Key))
	}
	b.WriteString(")")
	return b.String()
}

// SeatView is one present caller as View shows it.
type SeatView struct {
	Seat             int
	Role             group.Role
	Placement        Placement
	SelfMuted        bool // by the caller (*6)
	FacilitatorMuted bool // by a facilitator (seat action 1)
	Hand             bool // raised hand, in the queue
	Floor            bool // has the floor
	Talking          bool // the engine's talker detector says so
	Heard            bool // Session.Heard(Seat)
	JoinedAt         time.Time
}
