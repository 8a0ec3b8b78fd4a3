package ivr

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/group"
)

// fuzzKeys are the keys an op byte can press, plus one byte no keypad sends.
const fuzzKeys = "0123456789*#ABCDx"

// fuzzPINs are all PINs of testGroups, so that random input often types a
// whole right PIN (for some dialled number).
var fuzzPINs = []string{"4821", "917355", "1234", "55555", "666666"}

// FuzzMachine drives a Machine with random events at non-decreasing times
// and checks it against a small model of what the caller did:
//   - it never panics, and returns nothing once Done (or before Start);
//   - actions never hold a digit;
//   - a language is chosen only by a digit before any PIN digit, and the
//     welcome follows;
//   - ActPlay only when nothing plays, ActStopPrompt only when something
//     does, ActJoin/ActHangup only as the last action, and Done exactly
//     when one was returned;
//   - ActJoin only for an allowed, non-empty PIN equal to the digits typed
//     since the last submit or clear;
//   - ActHangup only after a goodbye prompt, for a known reason, and for
//     wrong-pin only with MaxTries wrong PINs;
//   - Tries never falls and never passes MaxTries;
//   - after each event, Tick at the same instant or just before
//     NextDeadline does nothing, and a live Machine that is not waiting
//     for a prompt always has a deadline (it cannot get stuck).
func FuzzMachine(f *testing.F) {
	f.Add(uint8(0), []byte{0, 0, 20, 10, 14, 1})                                      // start, type 4821, '#'
	f.Add(uint8(1), []byte{0, 0, 1, 80, 2, 100, 1, 80, 2, 100, 1, 80, 2, 100, 1, 10}) // silence
	f.Add(uint8(2), []byte{0, 0, 4, 1, 14, 1, 5, 1, 14, 1, 6, 1, 14, 1, 1, 1})        // three wrong
	f.Add(uint8(3), []byte{0, 0, 4, 1, 5, 120, 20, 1, 2, 110})                        // pause submits
	f.Add(uint8(4), []byte{0, 0, 20, 2, 13, 0, 20, 1, 2, 200, 1, 0, 2, 250})          // '*' clears
	f.Add(uint8(16), []byte{0, 0, 8, 1, 13, 1, 5, 1})                                 // two languages: 5, then *2 is no language choice
	f.Fuzz(func(t *testing.T, sel uint8, ops []byte) {
		dialed := []string{"", "100", "200", "999"}[sel%4]
		cfg := Config{
			Groups:            testGroups,
			Dialed:            dialed,
			MaxTries:          int(sel/4) % 5, // 0 = default
			MaxSilentPrompts:  int(sel/32) % 4,
			InterDigitTimeout: time.Duration(sel%3) * time.Second,
			NoInputTimeout:    time.Duration(sel%5) * time.Second,
			Languages:         int(sel/8) % 4, // 0-3 offered on a shared number
		}
		maxTries := cfg.MaxTries
		if maxTries == 0 {
			maxTries = DefaultMaxTries
		}
		narrowed := false
		for _, g := range testGroups {
			narrowed = narrowed || (dialed != "" && g.Number == dialed)
		}

		m := New(cfg)
		now := t0
		var (
			started, playing, done bool
			lastGoodbye            bool   // the last ActPlay ended with goodbye
			hist                   []byte // digits typed since the last submit or clear
			tries                  int
			typedAny               bool // a PIN digit was typed in this call
		)
		// languageChoice checks that a language is chosen only on a
		// shared number and before any PIN digit, and notes PIN digits.
		languageChoice := func(acts []Action, digit byte) {
			chose := slices.ContainsFunc(acts, func(a Action) bool { return a.Kind == ActLanguage })
			if chose && (typedAny || narrowed) {
				t.Fatalf("language chosen after a PIN digit (%v) or on a group's number (%v): %+v", typedAny, narrowed, acts)
			}
			if digit != 0 && started && !done && !chose {
				typedAny = true
			}
		}
		for i := 0; i+1 < len(ops); i += 2 {
			op, dt := ops[i]%24, ops[i+1]
			now = now.Add(time.Duration(dt) * 50 * time.Millisecond)

			var acts []Action
			var digit byte // the 0-9 key of this event, if any
			prevHist := append([]byte(nil), hist...)
			wasPlaying := playing
			switch {
			case op == 0:
				acts = m.Start(now)
				if !started && len(acts) == 0 {
					t.Fatal("Start returned nothing")
				}
				started = true
			case op == 1:
				acts = m.PromptDone(now)
			case op == 2:
				acts = m.Tick(now)
			case op < 20:
				k := fuzzKeys[op-3]
				if k >= '0' && k <= '9' {
					digit = k
					if started {
						hist = append(hist, k)
					}
				}
				acts = m.Digit(k, now)
			default:
				// Type a whole PIN at one instant; check after each key.
				pin := fuzzPINs[int(dt)%len(fuzzPINs)]
				for j := range len(pin) {
					if done {
						if a := m.Digit(pin[j], now); len(a) != 0 {
							t.Fatalf("actions after Done: %+v", a)
						}
						continue
					}
					prevHist = append(prevHist[:0], hist...)
					if started {
						hist = append(hist, pin[j])
					}
					a := m.Digit(pin[j], now)
					languageChoice(a, pin[j])
					checkActions(t, a, &playing, &done, &lastGoodbye)
					hist = checkJoinAndHist(t, m, a, hist, prevHist, pin[j], narrowed, dialed)
				}
				checkAfterEvent(t, m, now, started, playing, done, maxTries, &tries)
				continue
			}

			if done && len(acts) != 0 {
				t.Fatalf("actions after Done: %+v", acts)
			}
			if !started && len(acts) != 0 {
				t.Fatalf("actions before Start: %+v", acts)
			}
			languageChoice(acts, digit)
			checkActions(t, acts, &playing, &done, &lastGoodbye)
			if op == 1 && wasPlaying {
				playing = false
			}
			hist = checkJoinAndHist(t, m, acts, hist, prevHist, digit, narrowed, dialed)
			if op >= 3 && op < 20 && (fuzzKeys[op-3] == '#' || fuzzKeys[op-3] == '*') {
				hist = hist[:0]
			}
			for _, a := range acts {
				if a.Kind == ActHangup {
					if !lastGoodbye {
						t.Fatal("hang-up without a goodbye")
					}
					switch a.Reason {
					case ReasonWrongPIN:
						if m.Tries() != maxTries {
							t.Fatalf("wrong-pin hang-up after %d tries, want %d", m.Tries(), maxTries)
						}
					case ReasonNoInput:
					default:
						t.Fatalf("unknown hang-up reason %q", a.Reason)
					}
				}
			}
			checkAfterEvent(t, m, now, started, playing, done, maxTries, &tries)
		}
	})
}

// checkActions checks one event's actions against the model of what
// plays and whether the Machine has finished, and updates it.
func checkActions(t *testing.T, acts []Action, playing, done, lastGoodbye *bool) {
	t.Helper()
	checkNoDigits(t, acts)
	for i, a := range acts {
		if *done {
			t.Fatalf("action after join or hang-up: %+v", acts)
		}
		switch a.Kind {
		case ActPlay:
			if *playing {
				t.Fatalf("play while a prompt plays: %+v", acts)
			}
			if len(a.Prompts) == 0 {
				t.Fatal("play with no prompts")
			}
			*playing = true
			*lastGoodbye = a.Prompts[len(a.Prompts)-1] == PromptGoodbye
		case ActStopPrompt:
			if !*playing {
				t.Fatalf("stop with nothing playing: %+v", acts)
			}
			*playing = false
		case ActLanguage:
			// A choice is always followed by the welcome in it.
			if i+1 >= len(acts) || acts[i+1].Kind != ActPlay || acts[i+1].Prompts[0] != PromptWelcome {
				t.Fatalf("language choice without a welcome: %+v", acts)
			}
		case ActJoin, ActHangup:
			if i != len(acts)-1 {
				t.Fatalf("%v is not the last action: %+v", a.Kind, acts)
			}
			*done = true
		default:
			t.Fatalf("unknown action %+v", a)
		}
	}
}

// checkJoinAndHist checks that a join is for an allowed PIN equal to what
// was typed (with or without this event's digit, which a due inter-digit
// timeout may precede), and returns the typed digits still pending.
func checkJoinAndHist(t *testing.T, m *Machine, acts []Action, hist, prevHist []byte, digit byte, narrowed bool, dialed string) []byte {
	t.Helper()
	for i, a := range acts {
		switch {
		case a.Kind == ActJoin:
			if a.Group < 0 || a.Group >= len(testGroups) {
				t.Fatalf("join of group %d", a.Group)
			}
			g := testGroups[a.Group]
			if narrowed && g.Number != dialed {
				t.Fatalf("join of group %d, not the dialled one", a.Group)
			}
			pin := g.MemberPIN
			if a.Role == group.Facilitator {
				pin = g.FacilitatorPIN
			} else if a.Role != group.Member {
				t.Fatalf("join as %v", a.Role)
			}
			ok := pin != "" && (bytes.Equal(hist, []byte(pin)) || digit != 0 && bytes.Equal(prevHist, []byte(pin)))
			if !ok {
				t.Fatalf("join of group %d as %v, but the entry was not its PIN", a.Group, a.Role)
			}
			if !m.Done() {
				t.Fatal("joined but not Done")
			}
		case a.Kind == ActLanguage:
			// This event's digit chose a language: no PIN digit yet.
			if digit == 0 || len(prevHist) != 0 {
				t.Fatalf("language chosen by %q after PIN digits", digit)
			}
			hist = hist[:0]
		case a.Kind == ActPlay && a.Prompts[0] == PromptPINWrong:
			// A wrong entry was submitted. If this event's digit then
			// stopped the prompt, it starts the next entry; otherwise it
			// was part of the wrong one (the overflowing digit).
			if digit != 0 && i+1 < len(acts) && acts[i+1].Kind == ActStopPrompt {
				hist = append(hist[:0], digit)
			} else {
				hist = hist[:0]
			}
		}
	}
	return hist
}

// checkAfterEvent checks the invariants that hold between events.
func checkAfterEvent(t *testing.T, m *Machine, now time.Time, started, playing, done bool, maxTries int, tries *int) {
	t.Helper()
	if m.Done() != done {
		t.Fatalf("Done = %v, but join/hang-up seen = %v", m.Done(), done)
	}
	if m.Tries() < *tries || m.Tries() > maxTries {
		t.Fatalf("Tries went from %d to %d (max %d)", *tries, m.Tries(), maxTries)
	}
	*tries = m.Tries()
	if a := m.Tick(now); len(a) != 0 {
		t.Fatalf("Tick at the same instant did something: %+v", a)
	}
	at, ok := m.NextDeadline()
	if ok {
		if !at.After(now) {
			t.Fatalf("deadline %v is not after now %v", at.Sub(t0), now.Sub(t0))
		}
		if a := m.Tick(at.Add(-time.Nanosecond)); len(a) != 0 {
			t.Fatalf("Tick before the deadline did something: %+v", a)
		}
	} else if started && !done && !playing {
		t.Fatal("live Machine with nothing playing has no deadline")
	}
	if done && ok {
		t.Fatal("Done Machine has a deadline")
	}
}
