// Package ivr is the PIN-entry dialogue of one incoming call: the welcome
// prompt, collecting digits, checking the PIN, retries, and giving up on a
// silent or guessing caller.
//
// A Machine is pure: it starts no goroutines, never sleeps and does no I/O.
// Time is passed in with every event, so the whole dialogue is tested with a
// fake clock, and a driver may run many calls on one shared ticker.
//
// # Driving a Machine
//
// The driver (the call's owner) feeds events and carries out the returned
// actions in order:
//
//   - Start once, after the call is answered and media flows.
//   - Digit for every key press, already de-duplicated (one call per press,
//     not per RFC 4733 packet).
//   - PromptDone when everything queued by the last ActPlay has finished
//     playing. After an ActStopPrompt the stopped prompts must not be
//     reported: the Machine cannot tell a late report from the end of the
//     prompt it asked for next.
//   - Tick periodically (every 100 ms to 1 s is fine), or a timer set to
//     NextDeadline. Every event first fires the timeouts that are due at its
//     time, so a coarse tick never reorders what the caller did.
//
// ActPlay is only returned when nothing is playing (any prompt still playing
// was stopped by an ActStopPrompt earlier in the same slice), so the driver
// can start the prompts at once. After ActJoin or ActHangup the Machine is
// Done and returns no more actions.
//
// # Languages
//
// On a number no group claims, with Config.Languages above one, the
// welcome asks for the language offers (Action.Offer) and '*' then N,
// before the first PIN digit, chooses language N (ActLanguage); the
// driver renders the offers and speaks the chosen language. After a PIN
// digit '*' only clears, and the offers are no longer played.
//
// # Privacy
//
// Actions carry prompt names, a group index, a role and a fixed reason,
// never the PIN or a typed digit, so they may be logged. The typed entry is
// wiped as soon as it has been checked or cleared.
//
// # What it must not know
//
// SIP, media, rooms and the configuration file: the driver hands it the
// groups (group.Group, of which it reads only numbers and PINs), the keys
// and the time, and carries out its actions.
package ivr

import (
	"crypto/subtle"
	"strconv"
	"time"

	"github.com/groupbridge/groupbridge/internal/group"
)

// Prompt names the Machine asks the driver to play. They are the names of
// the built-in prompt set (media/prompt), repeated here so that this package
// imports no media or I/O package.
const (
	// PromptWelcome: "Welcome. Please enter your group PIN, then press pound."
	PromptWelcome = "welcome"
	// PromptPINWrong: "That PIN was not recognised."
	PromptPINWrong = "pin_wrong"
	// PromptGoodbye: "Goodbye."
	PromptGoodbye = "goodbye"
	// PromptPleaseHold: "Please stay on the line. Many calls are coming
	// in, and yours will be answered in turn." Played once per call, when
	// its first PIN waits for its turn (Gate).
	PromptPleaseHold = "please_hold"
	// PromptTryLater: "Please try again later."
	PromptTryLater = "try_later"
)

// Reasons carried by ActHangup. They are fixed strings, fit for logs and
// metrics.
const (
	// ReasonWrongPIN: the caller used up Config.MaxTries.
	ReasonWrongPIN = "wrong-pin"
	// ReasonNoInput: the caller pressed nothing through
	// Config.MaxSilentPrompts welcome prompts.
	ReasonNoInput = "no-input"
	// ReasonBusy: the Gate's queue was full; the PIN was not checked.
	ReasonBusy = "pin-busy"
)

// Defaults applied by New to Config fields that are zero or negative.
const (
	DefaultMaxTries          = 3
	DefaultMaxSilentPrompts  = 3
	DefaultInterDigitTimeout = 5 * time.Second
	DefaultNoInputTimeout    = 5 * time.Second
)

// GoodbyeTimeout bounds the wait for PromptDone after the final "goodbye":
// a driver that never reports it (a lost prompt, a bug) must not keep the
// call open, so Tick hangs up once it has passed.
const GoodbyeTimeout = 10 * time.Second

// MaxDigits is the longest PIN the configuration allows. One more digit
// submits the entry at once: it cannot be right, and a caller leaning on the
// keypad should hear "not recognised" rather than nothing.
const MaxDigits = 10

// Config sets up one call's PIN entry. Zero durations and counts take the
// Default* values.
type Config struct {
	// Groups are all configured groups; ActJoin.Group indexes this slice.
	// Only their Number and PINs matter here.
	Groups []group.Group
	// Dialed is the Request-URI user of the call. If it equals some
	// group's (non-empty) Number, only that group's PINs are accepted, so a
	// group's own number cannot be used to guess other groups' PINs.
	Dialed string
	// MaxTries is how many wrong PINs end the call.
	MaxTries int
	// MaxSilentPrompts is how many welcome prompts in a row, counting the
	// first, may meet no key press at all before the call ends.
	MaxSilentPrompts int
	// InterDigitTimeout is the pause after the last digit that submits the
	// entry, for callers who do not press pound.
	InterDigitTimeout time.Duration
	// NoInputTimeout is how long after the welcome prompt finished the
	// Machine waits for a first key before playing it again.
	NoInputTimeout time.Duration
	// Gate, when set, decides when each PIN is answered (the bridge under
	// a guessing attack); nil answers at once.
	Gate Gate
	// Languages is how many languages a number no group claims offers
	// (prompts.languages). With more than one, the welcome offers them
	// (ActPlay.Offer) and '*' then N picks the N-th (ActLanguage), until
	// the first PIN digit. A group's own number speaks its group's
	// language and offers none.
	Languages int
}

// Gate paces the answers to PIN attempts (internal/guard.Gate is one). The
// Machine asks before it checks a PIN and checks it only when the Gate says
// the answer may be given, so nothing a caller hears or sees before then,
// nor when, depends on whether the PIN was right.
type Gate interface {
	// Admit is asked when an entry is submitted. wait: hold the answer
	// until Ready; !ok: turn the call away without checking the entry.
	Admit(now time.Time) (wait, ok bool)
	// Ready reports whether the held answer may be given; if not, next is
	// when to ask again.
	Ready(now time.Time) (ready bool, next time.Time)
}

// ActionKind says what an Action asks the driver to do.
type ActionKind int

// Action kinds. They start at 1 so that a zero Action is not a valid
// request.
const (
	// ActPlay: play Action.Prompts in order.
	ActPlay ActionKind = iota + 1
	// ActStopPrompt: stop the playing prompt and drop any queued ones,
	// because the caller has started typing.
	ActStopPrompt
	// ActJoin: the PIN was right; put the caller into group Action.Group
	// as Action.Role. The Machine is Done.
	ActJoin
	// ActHangup: end the call for Action.Reason. The Machine is Done.
	ActHangup
	// ActLanguage: the caller chose language Action.Language (an index
	// into the offered languages); speak it from the next ActPlay on, and
	// after the join.
	ActLanguage
)

// String returns the kind's name, e.g. "play".
func (k ActionKind) String() string {
	switch k {
	case ActPlay:
		return "play"
	case ActStopPrompt:
		return "stop-prompt"
	case ActJoin:
		return "join"
	case ActHangup:
		return "hangup"
	case ActLanguage:
		return "language"
	}
	return "ActionKind(" + strconv.Itoa(int(k)) + ")"
}

// Action is one thing the driver must do. Only the fields of its Kind are
// set. No field ever holds a PIN or a typed digit.
type Action struct {
	// Kind says what to do.
	Kind ActionKind
	// Prompts are the prompt names to play, in order (ActPlay).
	Prompts []string
	// Offer asks for the language offers after Prompts (ActPlay): a line
	// for each offered language but the one being spoken, in its own
	// language, with its key (star and its position, 1-based).
	Offer bool
	// Language is the chosen language's index, 0-based (ActLanguage).
	Language int
	// Group is the index into Config.Groups to join (ActJoin).
	Group int
	// Role is the role to join as (ActJoin).
	Role group.Role
	// Reason is why the call ends (ActHangup): ReasonWrongPIN or
	// ReasonNoInput.
	Reason string
}

// state is where the dialogue is.
type state int

const (
	stIdle    state = iota // before Start
	stCollect              // prompting for and collecting a PIN
	stWaiting              // a submitted PIN waits for the Gate
	stClosing              // "goodbye" is playing; hang up when it ends
	stDone                 // joined or hung up
)

// pinRef is one PIN the call may use, with what it grants.
type pinRef struct {
	pin   []byte
	group int
	role  group.Role
}

// Machine is the PIN-entry dialogue of one call. It is not safe for
// concurrent use: one owner feeds it events.
type Machine struct {
	pins       []pinRef // only the allowed groups' non-empty PINs
	maxTries   int
	maxSilent  int
	interDigit time.Duration
	noInput    time.Duration
	gate       Gate

	st      state
	playing bool // an ActPlay has not yet been reported done or stopped

	// entry holds the digits typed since the last submit or clear; one
	// more than MaxDigits so the overflowing digit is part of the entry.
	entry     [MaxDigits + 1]byte
	n         int
	lastDigit time.Time // when entry[n-1] was typed; valid when n > 0

	// noInputAt is when the silence after a prompt (or after '*') ends;
	// valid in stCollect when !playing and n == 0.
	noInputAt time.Time
	// silent counts welcome prompts played since the last key press that
	// were not themselves answers to a key (Start and no-input replays).
	silent int
	tries  int

	reason   string    // hang-up reason in stClosing
	hangupAt time.Time // GoodbyeTimeout deadline in stClosing

	askAt    time.Time // when to ask the Gate again, in stWaiting
	heldOnce bool      // PromptPleaseHold was played

	languages int  // offered languages; offers only with more than one
	typed     bool // a PIN digit was typed: no more language choice
	star      bool // '*' pressed while languages are offered: a digit picks one
}

// New returns a Machine for one call. It copies what it needs from cfg, so
// cfg may change afterwards.
func New(cfg Config) *Machine {
	m := &Machine{
		maxTries:   cfg.MaxTries,
		maxSilent:  cfg.MaxSilentPrompts,
		interDigit: cfg.InterDigitTimeout,
		noInput:    cfg.NoInputTimeout,
		gate:       cfg.Gate,
	}
	if m.maxTries <= 0 {
		m.maxTries = DefaultMaxTries
	}
	if m.maxSilent <= 0 {
		m.maxSilent = DefaultMaxSilentPrompts
	}
	if m.interDigit <= 0 {
		m.interDigit = DefaultInterDigitTimeout
	}
	if m.noInput <= 0 {
		m.noInput = DefaultNoInputTimeout
	}

	// A dialled number that names a group narrows the PINs to that group;
	// one that names none (a shared access number) leaves them all.
	narrowed := group.ByNumber(cfg.Groups, cfg.Dialed) >= 0
	if !narrowed {
		m.languages = cfg.Languages
	}
	for i, g := range cfg.Groups {
		if narrowed && g.Number != cfg.Dialed {
			continue
		}
		// An empty PIN must never match: ConstantTimeCompare says two
		// empty slices are equal.
		if g.MemberPIN != "" {
			m.pins = append(m.pins, pinRef{pin: []byte(g.MemberPIN), group: i, role: group.Member})
		}
		if g.FacilitatorPIN != "" {
			m.pins = append(m.pins, pinRef{pin: []byte(g.FacilitatorPIN), group: i, role: group.Facilitator})
		}
	}
	return m
}

// Start plays the welcome prompt. Once started, a further Start only does
// what Tick does, so that every event fires the timeouts due at its time.
func (m *Machine) Start(now time.Time) []Action {
	if m.st != stIdle {
		return m.advance(now)
	}
	m.st = stCollect
	m.silent = 1
	return []Action{m.welcome()}
}

// Digit handles one key press: '0'-'9' add to the entry, '#' submits it,
// '*' clears it. While languages are offered (before the first PIN
// digit), '*' then N picks language N instead. 'A'-'D' and any other
// byte are ignored. The first key pressed while a prompt plays stops the
// prompt and still counts (type-ahead). Keys before Start or after Done
// are ignored.
func (m *Machine) Digit(d byte, now time.Time) []Action {
	acts := m.advance(now)
	if m.st != stCollect {
		return acts
	}
	star := m.star
	m.star = false
	switch {
	case star && d >= '1' && int(d-'0') <= m.languages:
		acts = m.keyPressed(acts)
		return append(acts, Action{Kind: ActLanguage, Language: int(d - '1')}, m.welcome())
	case d >= '0' && d <= '9':
		acts = m.keyPressed(acts)
		m.typed = true
		m.entry[m.n] = d
		m.n++
		m.lastDigit = now
		if m.n > MaxDigits {
			acts = append(acts, m.submit(now)...)
		}
	case d == '#':
		acts = m.keyPressed(acts)
		acts = append(acts, m.submit(now)...)
	case d == '*':
		acts = m.keyPressed(acts)
		m.star = m.offering()
		m.clearEntry()
		// Starting over gets the same quiet wait as after a prompt.
		m.noInputAt = now.Add(m.noInput)
	}
	return acts
}

// PromptDone handles the driver's report that everything queued by the
// last ActPlay finished playing. A report when nothing is playing is
// ignored.
func (m *Machine) PromptDone(now time.Time) []Action {
	// A report that arrives when nothing plays must not be taken as the
	// end of a prompt that a due timeout starts in this very call.
	wasPlaying := m.playing
	acts := m.advance(now)
	if !wasPlaying {
		return acts
	}
	switch m.st {
	case stCollect:
		// advance does nothing while a prompt plays, so this is still the
		// prompt the report is about.
		m.playing = false
		m.noInputAt = now.Add(m.noInput)
	case stWaiting:
		m.playing = false
	case stClosing:
		acts = append(acts, m.hangup())
	}
	return acts
}

// Tick fires the timeouts that are due at now: the inter-digit pause, the
// no-input wait, the Gate's answer and the goodbye safety net.
func (m *Machine) Tick(now time.Time) []Action {
	return m.advance(now)
}

// NextDeadline reports when Tick next has something to do. It is false
// while the Machine waits only for an event: before Start, while a prompt
// plays in PIN entry, and when Done. While a PIN waits for the Gate it is
// when to ask the Gate again.
func (m *Machine) NextDeadline() (time.Time, bool) {
	switch m.st {
	case stCollect:
		if m.playing {
			return time.Time{}, false
		}
		if m.n > 0 {
			return m.lastDigit.Add(m.interDigit), true
		}
		return m.noInputAt, true
	case stWaiting:
		return m.askAt, true
	case stClosing:
		return m.hangupAt, true
	}
	return time.Time{}, false
}

// Done reports whether the Machine has joined or hung up; it returns no
// more actions after that.
func (m *Machine) Done() bool { return m.st == stDone }

// Tries returns how many wrong PINs the caller has entered.
func (m *Machine) Tries() int { return m.tries }

// advance fires whatever timeout is due at now. One pass is enough: each
// timeout either starts a prompt (no deadline while it plays), ends the
// Machine, or sets a deadline after now.
func (m *Machine) advance(now time.Time) []Action {
	switch m.st {
	case stCollect:
		if m.playing {
			return nil
		}
		if m.n > 0 {
			if !now.Before(m.lastDigit.Add(m.interDigit)) {
				return m.submit(now)
			}
			return nil
		}
		if !now.Before(m.noInputAt) {
			return m.silence(now)
		}
	case stWaiting:
		if now.Before(m.askAt) {
			return nil
		}
		ready, next := m.gate.Ready(now)
		if !ready {
			m.askAt = next
			return nil
		}
		var acts []Action
		if m.playing {
			m.playing = false
			acts = append(acts, Action{Kind: ActStopPrompt})
		}
		m.st = stCollect
		return append(acts, m.verdict(now)...)
	case stClosing:
		if !now.Before(m.hangupAt) {
			return []Action{m.hangup()}
		}
	}
	return nil
}

// keyPressed notes that the caller pressed a key that counts as input:
// the silent-prompt count restarts and a playing prompt stops.
func (m *Machine) keyPressed(acts []Action) []Action {
	m.silent = 0
	if m.playing {
		m.playing = false
		acts = append(acts, Action{Kind: ActStopPrompt})
	}
	return acts
}

// submit hands the entry to the Gate, or checks it at once, and says what
// follows. An empty entry is not a try: the caller pressed pound too early
// and hears the welcome again.
func (m *Machine) submit(now time.Time) []Action {
	if m.n == 0 {
		return []Action{m.welcome()}
	}
	if m.gate != nil {
		wait, ok := m.gate.Admit(now)
		if !ok {
			return []Action{m.close(now, ReasonBusy, PromptTryLater)}
		}
		if wait {
			// The entry is kept, unchecked, until the answer is due.
			m.st = stWaiting
			_, m.askAt = m.gate.Ready(now)
			if !m.heldOnce {
				m.heldOnce = true
				return []Action{m.play(PromptPleaseHold)}
			}
			return nil
		}
	}
	return m.verdict(now)
}

// verdict checks the entry and says what follows.
func (m *Machine) verdict(now time.Time) []Action {
	gi, role, ok := m.match(m.entry[:m.n])
	m.clearEntry()
	if ok {
		m.st = stDone
		return []Action{{Kind: ActJoin, Group: gi, Role: role}}
	}
	m.tries++
	if m.tries >= m.maxTries {
		return []Action{m.close(now, ReasonWrongPIN, PromptPINWrong, PromptGoodbye)}
	}
	return []Action{m.play(PromptPINWrong, PromptWelcome)}
}

// offering reports whether the caller may still choose a language.
func (m *Machine) offering() bool { return m.languages > 1 && !m.typed }

// welcome plays the welcome, with the language offers while they stand.
func (m *Machine) welcome() Action {
	a := m.play(PromptWelcome)
	a.Offer = m.offering()
	return a
}

// silence handles a no-input timeout: replay the welcome, or give up once
// MaxSilentPrompts prompts have met silence.
func (m *Machine) silence(now time.Time) []Action {
	m.star = false
	if m.silent >= m.maxSilent {
		return []Action{m.close(now, ReasonNoInput, PromptGoodbye)}
	}
	m.silent++
	return []Action{m.welcome()}
}

// match compares entry with every allowed PIN in constant time. It never
// stops at the first match and picks the result with ConstantTimeSelect,
// so how long it takes does not depend on which PIN (if any) matched; only
// the PIN lengths, which the configuration bounds anyway, can show.
func (m *Machine) match(entry []byte) (gi int, role group.Role, ok bool) {
	found, g, r := 0, 0, 0
	for _, p := range m.pins {
		eq := subtle.ConstantTimeCompare(entry, p.pin)
		take := eq & (1 ^ found) // the first match wins (PINs are unique anyway)
		g = subtle.ConstantTimeSelect(take, p.group, g)
		r = subtle.ConstantTimeSelect(take, int(p.role), r)
		found |= eq
	}
	return g, group.Role(r), found == 1
}

// clearEntry forgets the typed digits, overwriting them so that a PIN does
// not linger in memory longer than needed.
func (m *Machine) clearEntry() {
	clear(m.entry[:])
	m.n = 0
}

// play starts prompts; the Machine waits for PromptDone.
func (m *Machine) play(prompts ...string) Action {
	m.playing = true
	return Action{Kind: ActPlay, Prompts: prompts}
}

// close plays the last prompts and arms the hang-up: on PromptDone, or at
// GoodbyeTimeout if that never comes.
func (m *Machine) close(now time.Time, reason string, prompts ...string) Action {
	m.st = stClosing
	m.reason = reason
	m.hangupAt = now.Add(GoodbyeTimeout)
	m.clearEntry()
	return m.play(prompts...)
}

// hangup ends the Machine.
func (m *Machine) hangup() Action {
	m.st = stDone
	m.playing = false
	return Action{Kind: ActHangup, Reason: m.reason}
}
