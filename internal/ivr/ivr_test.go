package ivr

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/group"
)

// t0 is the fake clock's origin; scenario times are offsets from it.
var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

const sec = time.Second

// testGroups: group 0 has its own number and both PINs, group 1 its own
// number and no facilitator PIN, group 2 no number.
var testGroups = []group.Group{
	{Number: "100", MemberPIN: "4821", FacilitatorPIN: "917355"},
	{Number: "200", MemberPIN: "1234"},
	{Number: "", MemberPIN: "55555", FacilitatorPIN: "666666"},
}

type evKind int

const (
	evStart evKind = iota
	evKeys         // every byte of keys pressed at the same instant
	evDone         // PromptDone
	evTick
)

// dl is an optional NextDeadline expectation after a step.
type dl struct {
	check bool
	ok    bool
	at    time.Duration
}

func next(at time.Duration) dl { return dl{check: true, ok: true, at: at} }

var noNext = dl{check: true}

type step struct {
	at   time.Duration
	ev   evKind
	keys string
	want []Action
	next dl
}

func start(at time.Duration, want ...Action) step { return step{at: at, ev: evStart, want: want} }
func keys(at time.Duration, k string, want ...Action) step {
	return step{at: at, ev: evKeys, keys: k, want: want}
}
func done(at time.Duration, want ...Action) step { return step{at: at, ev: evDone, want: want} }
func tick(at time.Duration, want ...Action) step { return step{at: at, ev: evTick, want: want} }

// withNext adds a NextDeadline expectation to a step.
func (s step) withNext(d dl) step { s.next = d; return s }

func play(p ...string) Action         { return Action{Kind: ActPlay, Prompts: p} }
func stop() Action                    { return Action{Kind: ActStopPrompt} }
func join(g int, r group.Role) Action { return Action{Kind: ActJoin, Group: g, Role: r} }
func hangup(reason string) Action     { return Action{Kind: ActHangup, Reason: reason} }
func welcome() Action                 { return play(PromptWelcome) }
func wrongAgain() Action              { return play(PromptPINWrong, PromptWelcome) }
func wrongLast() Action               { return play(PromptPINWrong, PromptGoodbye) }
func goodbye() Action                 { return play(PromptGoodbye) }
func hold() Action                    { return play(PromptPleaseHold) }
func offer() Action                   { a := welcome(); a.Offer = true; return a }
func language(i int) Action           { return Action{Kind: ActLanguage, Language: i} }

// fakeGate answers the n-th waiting attempt at readyAt[n] (offsets from
// t0), telling the Machine to ask every askEvery until then.
type fakeGate struct {
	wait, full bool
	readyAt    []time.Duration
	askEvery   time.Duration
	n          int
}

func (g *fakeGate) Admit(time.Time) (wait, ok bool) { return g.wait, !g.full }

func (g *fakeGate) Ready(now time.Time) (bool, time.Time) {
	at := t0.Add(g.readyAt[g.n])
	if !now.Before(at) {
		g.n++
		return true, now
	}
	next := now.Add(g.askEvery)
	if next.After(at) {
		next = at
	}
	return false, next
}

func (s step) String() string { return fmt.Sprintf("event %d %q at %v", s.ev, s.keys, s.at) }

// actionsEqual treats nil and empty alike: "no actions" either way.
func actionsEqual(a, b []Action) bool {
	return len(a) == 0 && len(b) == 0 || reflect.DeepEqual(a, b)
}

// checkNoDigits fails if any string in acts holds a digit: actions may be
// logged, so neither a PIN nor a typed key may ever appear in them.
func checkNoDigits(t testing.TB, acts []Action) {
	t.Helper()
	for _, a := range acts {
		for _, s := range append(append([]string(nil), a.Prompts...), a.Reason) {
			if strings.ContainsAny(s, "0123456789") {
				t.Fatalf("action %+v holds a digit in %q", a, s)
			}
		}
	}
}

func TestScenarios(t *testing.T) {
	tests := []struct {
		name      string
		cfg       Config
		steps     []step
		wantDone  bool
		wantTries int
	}{
		{
			name: "start plays welcome and waits for it",
			steps: []step{
				start(0, welcome()).withNext(noNext),
			},
		},
		{
			name: "PIN typed during the welcome prompt, then pound",
			steps: []step{
				start(0, welcome()),
				keys(1*sec, "4", stop()).withNext(next(6 * sec)),
				keys(2*sec, "821").withNext(next(7 * sec)),
				keys(3*sec, "#", join(0, group.Member)).withNext(noNext),
			},
			wantDone: true,
		},
		{
			name: "PIN with pound after the prompt finished",
			steps: []step{
				start(0, welcome()),
				done(4 * sec).withNext(next(9 * sec)),
				keys(6*sec, "4821#", join(0, group.Member)),
			},
			wantDone: true,
		},
		{
			name: "PIN submitted by a pause",
			steps: []step{
				start(0, welcome()),
				done(3 * sec),
				keys(4*sec, "48").withNext(next(9 * sec)),
				keys(5*sec, "2").withNext(next(10 * sec)),
				keys(5500*time.Millisecond, "1").withNext(next(10500 * time.Millisecond)),
				tick(10499 * time.Millisecond),
				tick(10500*time.Millisecond, join(0, group.Member)).withNext(noNext),
			},
			wantDone: true,
		},
		{
			name: "pause noticed by the next key when no tick came in between",
			steps: []step{
				start(0, welcome()),
				done(1 * sec),
				keys(2*sec, "48"),
				// 8 s later: "48" was submitted at 7 s; the new 4 stops the
				// "not recognised" prompt and starts a new entry.
				keys(10*sec, "4", wrongAgain(), stop()).withNext(next(15 * sec)),
				keys(11*sec, "821#", join(0, group.Member)),
			},
			wantDone:  true,
			wantTries: 1,
		},
		{
			name: "three wrong PINs: goodbye, then hang-up when it finished",
			steps: []step{
				start(0, welcome()),
				keys(1*sec, "1111#", stop(), wrongAgain()).withNext(noNext),
				keys(2*sec, "2222#", stop(), wrongAgain()),
				done(5 * sec),
				keys(6*sec, "3333#", wrongLast()).withNext(next(16 * sec)),
				keys(7*sec, "4821#"), // too late: ignored while closing
				done(8*sec, hangup(ReasonWrongPIN)).withNext(noNext),
				keys(9*sec, "4821#"),
				tick(100 * sec),
				done(101 * sec),
			},
			wantDone:  true,
			wantTries: 3,
		},
		{
			name: "goodbye never reported done: Tick hangs up after the safety timeout",
			cfg:  Config{MaxTries: 1},
			steps: []step{
				start(0, welcome()),
				keys(1*sec, "9#", stop(), wrongLast()).withNext(next(11 * sec)),
				tick(10 * sec),
				tick(11*sec, hangup(ReasonWrongPIN)).withNext(noNext),
				done(12 * sec),
			},
			wantDone:  true,
			wantTries: 1,
		},
		{
			name: "wrong then right",
			steps: []step{
				start(0, welcome()),
				keys(1*sec, "4822#", stop(), wrongAgain()),
				keys(2*sec, "4", stop()),
				keys(3*sec, "821#", join(0, group.Member)),
			},
			wantDone:  true,
			wantTries: 1,
		},
		{
			name: "dialled number names a group: another group's PIN is wrong",
			cfg:  Config{Dialed: "100"},
			steps: []step{
				start(0, welcome()),
				keys(1*sec, "1234#", stop(), wrongAgain()),
				keys(2*sec, "55555#", stop(), wrongAgain()),
				keys(3*sec, "917355#", stop(), join(0, group.Facilitator)),
			},
			wantDone:  true,
			wantTries: 2,
		},
		{
			name: "dialled number names another group: its own PIN joins",
			cfg:  Config{Dialed: "200"},
			steps: []step{
				start(0, welcome()),
				keys(1*sec, "4821#", stop(), wrongAgain()),
				keys(2*sec, "1234#", stop(), join(1, group.Member)),
			},
			wantDone:  true,
			wantTries: 1,
		},
		{
			name: "dialled number names no group: every group's PIN joins",
			cfg:  Config{Dialed: "999"},
			steps: []step{
				start(0, welcome()),
				keys(1*sec, "1234#", stop(), join(1, group.Member)),
			},
			wantDone: true,
		},
		{
			name: "no dialled number: a group without a number is reachable",
			steps: []step{
				start(0, welcome()),
				keys(1*sec, "55555#", stop(), join(2, group.Member)),
			},
			wantDone: true,
		},
		{
			name: "facilitator PIN joins as facilitator",
			steps: []step{
				start(0, welcome()),
				done(2 * sec),
				keys(3*sec, "666666#", join(2, group.Facilitator)),
			},
			wantDone: true,
		},
		{
			name: "star clears the entry without a penalty",
			steps: []step{
				start(0, welcome()),
				keys(1*sec, "12", stop()),
				keys(2*sec, "*").withNext(next(7 * sec)),
				keys(3*sec, "4821#", join(0, group.Member)),
			},
			wantDone: true,
		},
		{
			name: "star then silence replays the welcome",
			steps: []step{
				start(0, welcome()),
				keys(1*sec, "12", stop()),
				keys(2*sec, "*").withNext(next(7 * sec)),
				tick(6 * sec),
				tick(7*sec, welcome()).withNext(noNext),
			},
		},
		{
			name: "star during a prompt stops it",
			steps: []step{
				start(0, welcome()),
				keys(1*sec, "*", stop()).withNext(next(6 * sec)),
			},
		},
		{
			name: "pound alone replays the welcome and is not a try",
			steps: []step{
				start(0, welcome()),
				keys(1*sec, "#", stop(), welcome()),
				done(4 * sec),
				keys(5*sec, "#", welcome()),
				done(8 * sec),
				keys(9*sec, "4821#", join(0, group.Member)),
			},
			wantDone: true,
		},
		{
			name: "letters are ignored",
			steps: []step{
				start(0, welcome()),
				keys(1*sec, "ABCD").withNext(noNext), // the prompt keeps playing
				keys(2*sec, "4", stop()),
				keys(3*sec, "8A2B1C#", join(0, group.Member)),
			},
			wantDone: true,
		},
		{
			name: "letters do not hold off the inter-digit timeout",
			steps: []step{
				start(0, welcome()),
				keys(1*sec, "4821", stop()),
				keys(5*sec, "D").withNext(next(6 * sec)),
				tick(6*sec, join(0, group.Member)),
			},
			wantDone: true,
		},
		{
			name: "the eleventh digit submits at once",
			steps: []step{
				start(0, welcome()),
				keys(1*sec, "1234567890", stop()).withNext(next(6 * sec)),
				keys(2*sec, "1", wrongAgain()).withNext(noNext),
			},
			wantTries: 1,
		},
		{
			name: "no input three times: goodbye, then hang-up",
			steps: []step{
				start(0, welcome()),
				done(4 * sec).withNext(next(9 * sec)),
				tick(8 * sec),
				tick(9*sec, welcome()).withNext(noNext),
				done(13 * sec).withNext(next(18 * sec)),
				tick(18*sec, welcome()),
				done(22 * sec),
				tick(27*sec, goodbye()).withNext(next(37 * sec)),
				done(28*sec, hangup(ReasonNoInput)).withNext(noNext),
			},
			wantDone: true,
		},
		{
			name: "a late tick fires the no-input timeout once",
			steps: []step{
				start(0, welcome()),
				done(4 * sec),
				tick(60*sec, welcome()).withNext(noNext),
			},
		},
		{
			name: "any key resets the silent-prompt count",
			steps: []step{
				start(0, welcome()),
				done(4 * sec),
				tick(9*sec, welcome()),
				done(13 * sec),
				tick(18*sec, welcome()), // third silent prompt
				keys(19*sec, "*", stop()),
				tick(24*sec, welcome()), // counts 1 again
				done(28 * sec),
				tick(33*sec, welcome()),
				done(37 * sec),
				tick(42*sec, welcome()),
				done(46 * sec),
				tick(51*sec, goodbye()),
				done(52*sec, hangup(ReasonNoInput)),
			},
			wantDone: true,
		},
		{
			name: "the welcome replayed after pound does not count as silent",
			steps: []step{
				start(0, welcome()),
				keys(1*sec, "#", stop(), welcome()),
				done(4 * sec),
				tick(9*sec, welcome()),
				done(13 * sec),
				tick(18*sec, welcome()),
				done(22 * sec),
				tick(27*sec, welcome()),
				done(31 * sec),
				tick(36*sec, goodbye()),
				done(37*sec, hangup(ReasonNoInput)),
			},
			wantDone: true,
		},
		{
			name: "custom limits and timeouts",
			cfg:  Config{MaxTries: 2, MaxSilentPrompts: 1, InterDigitTimeout: 2 * sec, NoInputTimeout: 3 * sec},
			steps: []step{
				start(0, welcome()),
				keys(1*sec, "1", stop()).withNext(next(3 * sec)),
				tick(3*sec, wrongAgain()),
				done(4 * sec).withNext(next(7 * sec)),
				// The welcome after "not recognised" answered a key, so
				// it is not a silent prompt: one more comes first.
				tick(7*sec, welcome()),
				done(8 * sec).withNext(next(11 * sec)),
				tick(11*sec, goodbye()).withNext(next(21 * sec)),
				done(12*sec, hangup(ReasonNoInput)),
			},
			wantDone:  true,
			wantTries: 1,
		},
		{
			name: "events before Start are ignored",
			steps: []step{
				keys(0, "4821#").withNext(noNext),
				tick(100 * sec),
				done(101 * sec),
				start(102*sec, welcome()),
				start(103 * sec),
			},
		},
		{
			name: "a repeated Start fires a due timeout like Tick",
			steps: []step{
				start(0, welcome()),
				done(1 * sec),
				start(5 * sec),
				start(6*sec, welcome()),
			},
		},
		{
			name: "PromptDone while nothing plays is not taken for a prompt a due timeout starts",
			steps: []step{
				start(0, welcome()),
				done(1 * sec),
				done(7*sec, welcome()).withNext(noNext),
				done(8 * sec).withNext(next(13 * sec)),
			},
		},
		{
			name: "PromptDone while nothing plays is ignored",
			steps: []step{
				start(0, welcome()),
				keys(1*sec, "48", stop()),
				done(2 * sec).withNext(next(6 * sec)),
				keys(3*sec, "21#", join(0, group.Member)),
			},
			wantDone: true,
		},
		{
			name: "a clock going backwards fires nothing",
			steps: []step{
				start(10*sec, welcome()),
				done(11 * sec),
				tick(5 * sec),
				tick(15 * sec).withNext(next(16 * sec)),
			},
		},
		{
			name: "gate: a right PIN waits its turn, hearing one sentence",
			cfg:  Config{Gate: &fakeGate{wait: true, readyAt: []time.Duration{20 * sec}, askEvery: 5 * sec}},
			steps: []step{
				start(0, welcome()),
				keys(1*sec, "4821#", stop(), hold()).withNext(next(6 * sec)),
				done(4 * sec),
				keys(5*sec, "1234#"), // ignored while waiting
				tick(6 * sec).withNext(next(11 * sec)),
				tick(19 * sec),
				tick(20*sec, join(0, group.Member)).withNext(noNext),
			},
			wantDone: true,
		},
		{
			name: "gate: a wrong PIN is answered at the same time",
			cfg:  Config{Gate: &fakeGate{wait: true, readyAt: []time.Duration{20 * sec}, askEvery: 5 * sec}},
			steps: []step{
				start(0, welcome()),
				keys(1*sec, "4822#", stop(), hold()).withNext(next(6 * sec)),
				done(4 * sec),
				keys(5*sec, "4821#"), // ignored while waiting: not a second try
				tick(6 * sec).withNext(next(11 * sec)),
				tick(19 * sec),
				tick(20*sec, wrongAgain()),
			},
			wantTries: 1,
		},
		{
			name: "gate: the sentence still playing is stopped; the second wait is silent",
			cfg:  Config{Gate: &fakeGate{wait: true, readyAt: []time.Duration{3 * sec, 30 * sec}, askEvery: 60 * sec}},
			steps: []step{
				start(0, welcome()),
				keys(1*sec, "4822#", stop(), hold()).withNext(next(3 * sec)),
				tick(3*sec, stop(), wrongAgain()),
				keys(5*sec, "4821#", stop()).withNext(next(30 * sec)),
				tick(30*sec, join(0, group.Member)),
			},
			wantDone:  true,
			wantTries: 1,
		},
		{
			name: "gate: a full queue turns the call away unchecked",
			cfg:  Config{Gate: &fakeGate{full: true}},
			steps: []step{
				start(0, welcome()),
				keys(1*sec, "4821#", stop(), play(PromptTryLater)),
				done(3*sec, hangup(ReasonBusy)),
			},
			wantDone: true,
		},
		{
			name: "gate: no attack, answered at once",
			cfg:  Config{Gate: &fakeGate{}},
			steps: []step{
				start(0, welcome()),
				keys(1*sec, "4821#", stop(), join(0, group.Member)),
			},
			wantDone: true,
		},
		{
			name: "languages: the welcome offers them on a shared number",
			cfg:  Config{Languages: 2},
			steps: []step{
				start(0, offer()),
				done(4 * sec),
				// *2 picks the second; the welcome again, in it.
				keys(5*sec, "*").withNext(next(10 * sec)),
				keys(6*sec, "2", language(1), offer()).withNext(noNext),
				keys(7*sec, "*", stop()),
				keys(8*sec, "1", language(0), offer()),
				keys(9*sec, "55555#", stop(), join(2, group.Member)),
			},
			wantDone: true,
		},
		{
			name: "languages: none on a group's own number; '*' clears",
			cfg:  Config{Languages: 2, Dialed: "100"},
			steps: []step{
				start(0, welcome()),
				keys(1*sec, "*2", stop()),
				keys(2*sec, "#", play(PromptPINWrong, PromptWelcome)),
			},
			wantTries: 1,
		},
		{
			name: "languages: one offered is no offer",
			cfg:  Config{Languages: 1},
			steps: []step{
				start(0, welcome()),
				keys(1*sec, "*1#", stop(), play(PromptPINWrong, PromptWelcome)),
			},
			wantTries: 1,
		},
		{
			name: "languages: after a PIN digit '*' clears and the offer is over",
			cfg:  Config{Languages: 3},
			steps: []step{
				start(0, offer()),
				keys(1*sec, "4*", stop()),
				keys(2*sec, "2#", play(PromptPINWrong, PromptWelcome)),
				done(3 * sec),
				keys(4*sec, "*3"),
				keys(5*sec, "#", play(PromptPINWrong, PromptWelcome)),
			},
			wantTries: 2,
		},
		{
			name: "languages: a key past the offered ones starts the PIN",
			cfg:  Config{Languages: 2},
			steps: []step{
				start(0, offer()),
				keys(1*sec, "*", stop()),
				keys(2*sec, "55555#", join(2, group.Member)),
			},
			wantDone: true,
		},
		{
			name: "languages: a silent '*' is forgotten with the replayed welcome",
			cfg:  Config{Languages: 2},
			steps: []step{
				start(0, offer()),
				done(1 * sec),
				keys(2*sec, "*").withNext(next(7 * sec)),
				tick(7*sec, offer()),
				done(8 * sec),
				keys(9*sec, "2#", play(PromptPINWrong, PromptWelcome)),
			},
			wantTries: 1,
		},
		{
			name: "no groups: every PIN is wrong",
			cfg:  Config{Groups: []group.Group{}, MaxTries: 1},
			steps: []step{
				start(0, welcome()),
				keys(1*sec, "4821#", stop(), wrongLast()),
			},
			wantTries: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			if cfg.Groups == nil {
				cfg.Groups = testGroups
			}
			m := New(cfg)
			for i, s := range tt.steps {
				now := t0.Add(s.at)
				var got []Action
				switch s.ev {
				case evStart:
					got = m.Start(now)
				case evKeys:
					for j := range len(s.keys) {
						got = append(got, m.Digit(s.keys[j], now)...)
					}
				case evDone:
					got = m.PromptDone(now)
				case evTick:
					got = m.Tick(now)
				}
				checkNoDigits(t, got)
				if !actionsEqual(got, s.want) {
					t.Fatalf("step %d (%v): got %+v, want %+v", i, s, got, s.want)
				}
				if s.next.check {
					at, ok := m.NextDeadline()
					if ok != s.next.ok || (ok && !at.Equal(t0.Add(s.next.at))) {
						t.Fatalf("step %d (%v): NextDeadline = %v, %v; want %v, %v",
							i, s, at.Sub(t0), ok, s.next.at, s.next.ok)
					}
				}
			}
			if m.Done() != tt.wantDone {
				t.Errorf("Done = %v, want %v", m.Done(), tt.wantDone)
			}
			if m.Tries() != tt.wantTries {
				t.Errorf("Tries = %d, want %d", m.Tries(), tt.wantTries)
			}
		})
	}
}

func TestNewCopiesConfig(t *testing.T) {
	groups := []group.Group{{Number: "1", MemberPIN: "4821"}}
	m := New(Config{Groups: groups})
	groups[0].MemberPIN = "9999"
	m.Start(t0)
	if got := m.Digit('#', t0); len(got) == 0 {
		t.Fatal("no action for pound")
	}
	var got []Action
	for _, d := range []byte("4821#") {
		got = append(got, m.Digit(d, t0)...)
	}
	if want := []Action{stop(), join(0, group.Member)}; !actionsEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestMatch(t *testing.T) {
	m := New(Config{Groups: []group.Group{
		{MemberPIN: "1111", FacilitatorPIN: ""},
		{MemberPIN: "2222", FacilitatorPIN: "333333"},
		{MemberPIN: "", FacilitatorPIN: "444444"},
	}})
	tests := []struct {
		entry string
		group int
		role  group.Role
		ok    bool
	}{
		{"", 0, group.Member, false}, // an empty entry never matches an empty PIN
		{"1111", 0, group.Member, true},
		{"2222", 1, group.Member, true},
		{"333333", 1, group.Facilitator, true},
		{"444444", 2, group.Facilitator, true},
		{"111", 0, group.Member, false},
		{"11111", 0, group.Member, false},
		{"4444444", 0, group.Member, false},
	}
	for _, tt := range tests {
		g, r, ok := m.match([]byte(tt.entry))
		if ok != tt.ok || (ok && (g != tt.group || r != tt.role)) {
			t.Errorf("match(%q) = %d, %v, %v; want %d, %v, %v", tt.entry, g, r, ok, tt.group, tt.role, tt.ok)
		}
	}
}

func TestMatchFirstWins(t *testing.T) {
	// The configuration forbids duplicate PINs; if one slips through, the
	// first group in order wins rather than the last.
	m := New(Config{Groups: []group.Group{{MemberPIN: "7777"}, {MemberPIN: "7777"}}})
	if g, _, ok := m.match([]byte("7777")); !ok || g != 0 {
		t.Fatalf("match = %d, %v; want 0, true", g, ok)
	}
}

func TestEntryWiped(t *testing.T) {
	m := New(Config{Groups: testGroups})
	m.Start(t0)
	for _, d := range []byte("48*") {
		m.Digit(d, t0)
	}
	for _, d := range []byte("1234567#") {
		m.Digit(d, t0)
	}
	if m.entry != [MaxDigits + 1]byte{} || m.n != 0 {
		t.Fatalf("entry not wiped: n=%d", m.n)
	}
}

func TestStrings(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{ActPlay.String(), "play"},
		{ActStopPrompt.String(), "stop-prompt"},
		{ActJoin.String(), "join"},
		{ActHangup.String(), "hangup"},
		{ActionKind(0).String(), "ActionKind(0)"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
