package app

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/softphone"
	"github.com/groupbridge/groupbridge/media/prompt"
)

// End-to-end checks of the chair (issue 13, 2), judged by signal: what a
// caller hears is compared with the committed WAV of the prompt.

// promptScore is how closely got contains the built-in prompt name: the
// best normalised correlation, over every offset, of the first 0.6 s of
// the prompt's speech with got. The same prompt through the bridge (G.711)
// scores above 0.9; other speech, silence or a tone stays far below.
func promptScore(t *testing.T, got []int16, name string) float64 {
	t.Helper()
	set, err := prompt.Builtin("en")
	if err != nil {
		t.Fatal(err)
	}
	clip, ok := set.Clip(name)
	if !ok {
		t.Fatalf("no built-in prompt %q", name)
	}
	start := 0
	for start < len(clip) && math.Abs(float64(clip[start])) < 500 {
		start++
	}
	tpl := clip[start:min(len(clip), start+4800)]
	if len(tpl) < 1600 || len(got) < len(tpl) {
		return 0
	}
	var tt float64
	for _, v := range tpl {
		tt += float64(v) * float64(v)
	}
	// Running energy of got's window.
	var gg float64
	for _, v := range got[:len(tpl)] {
		gg += float64(v) * float64(v)
	}
	best := 0.0
	for off := 0; off+len(tpl) <= len(got); off++ {
		if off > 0 {
			out, in := float64(got[off-1]), float64(got[off+len(tpl)-1])
			gg += in*in - out*out
		}
		if gg <= 0 {
			continue
		}
		var gt float64
		w := got[off : off+len(tpl)]
		for i, v := range tpl {
			gt += float64(w[i]) * float64(v)
		}
		if c := gt / math.Sqrt(gg*tt); c > best {
			best = c
		}
	}
	return best
}

// pressAndHear presses seq on p and returns what p heard in the d after.
func pressAndHear(t *testing.T, p *softphone.Phone, seq string, d time.Duration) []int16 {
	t.Helper()
	start := time.Now()
	keys(t, p, seq)
	time.Sleep(time.Until(start.Add(d)))
	return p.Media().Received(start)
}

// Passing the chair moves the facilitator's keys: before, the member's *5
// answers "That key is for the facilitator."; after *1 2 # 6, the old
// chair's *5 does, and the new chair's *5 turns lecture mode on.
func TestPassChairMovesKeys(t *testing.T) {
	t.Parallel()
	a, logs := startApp(t, testYAML("", peerGroup))
	phones := joinRoom(t, a, logs, 1300001, "654321", "1234", "1234")
	f, m, l := phones[0], phones[1], phones[2]
	time.Sleep(3 * time.Second) // the greetings end

	// The detector itself: a member's *5 before, the facilitator's *2.
	const yes, no = 0.8, 0.5
	before := pressAndHear(t, m, "*5", 4*time.Second)
	s0 := promptScore(t, before, prompt.FacilitatorOnly)
	t.Logf("facilitator_only heard by a member pressing *5 scores %.3f", s0)
	if s := s0; s < yes {
		t.Fatalf("a member's *5 before passing: facilitator_only scores %.2f, want >= %.2f", s, yes)
	}
	s1 := promptScore(t, pressAndHear(t, f, "*6", 2*time.Second), prompt.FacilitatorOnly)
	t.Logf("\"You are muted.\" scores %.3f as facilitator_only", s1)
	if s := s1; s > no {
		t.Fatalf("\"You are muted.\" scores %.2f as facilitator_only, want <= %.2f", s, no)
	}
	keys(t, f, "*6") // unmuted again

	got := pressAndHear(t, f, "*12#6", 4*time.Second)
	if s := promptScore(t, got, prompt.YouAreMember); s < yes {
		t.Errorf("the old chair heard you_are_member at %.2f, want >= %.2f", s, yes)
	}
	if s := promptScore(t, m.Media().Received(time.Now().Add(-4*time.Second)), prompt.YouAreFacilitator); s < yes {
		t.Errorf("the new chair heard you_are_facilitator at %.2f, want >= %.2f", s, yes)
	}
	if s := promptScore(t, l.Media().Received(time.Now().Add(-4*time.Second)), prompt.HasTheChair); s < yes {
		t.Errorf("the room heard has_the_chair at %.2f, want >= %.2f", s, yes)
	}
	time.Sleep(2 * time.Second)

	if s := promptScore(t, pressAndHear(t, f, "*5", 4*time.Second), prompt.FacilitatorOnly); s < yes {
		t.Errorf("the old chair's *5 after passing: facilitator_only scores %.2f, want >= %.2f", s, yes)
	}
	l.Media().SendTone(440, -20)
	time.Sleep(2 * time.Second)
	if lv := levelOver(f, time.Second, 440); lv < audible {
		t.Fatalf("before lecture mode the member is heard at %.1f dBFS", lv)
	}
	if s := promptScore(t, pressAndHear(t, m, "*5", 3*time.Second), prompt.FacilitatorOnly); s > no {
		t.Errorf("the new chair's *5 answered facilitator_only (%.2f)", s)
	}
	if lv := levelOver(f, time.Second, 440); lv > gone {
		t.Errorf("after the new chair's *5 a member is still heard at %.1f dBFS: no lecture mode", lv)
	}
}

// A member's *#, the facilitator PIN and # make them a facilitator: they
// and the facilitators hear it, their *5 turns lecture mode on, and the
// digits reach no log line.
func TestMemberTakesChairByPIN(t *testing.T) {
	t.Parallel()
	a, logs := startApp(t, testYAML("", peerGroup))
	phones := joinRoom(t, a, logs, 1300011, "654321", "1234", "1234")
	f, m, l := phones[0], phones[1], phones[2]
	time.Sleep(3 * time.Second) // the greetings end

	const yes = 0.8
	if s := promptScore(t, pressAndHear(t, m, "*#", 4*time.Second), prompt.EnterFacilitatorPIN); s < yes {
		t.Fatalf("a member's *#: enter_facilitator_pin scores %.2f, want >= %.2f", s, yes)
	}
	start := time.Now()
	if s := promptScore(t, pressAndHear(t, m, "654321#", 3*time.Second), prompt.YouAreFacilitator); s < yes {
		t.Errorf("the right PIN: you_are_facilitator scores %.2f, want >= %.2f", s, yes)
	}
	time.Sleep(3 * time.Second) // "Caller 2 is now a facilitator." ends
	if s := promptScore(t, f.Media().Received(start), prompt.IsFacilitator); s < yes {
		t.Errorf("the facilitator heard is_facilitator at %.2f, want >= %.2f", s, yes)
	}
	logs.waitCount(t, 5*time.Second, 1, "facilitator PIN in the room", "verdict", "right")

	l.Media().SendTone(440, -20)
	time.Sleep(2 * time.Second)
	if lv := levelOver(f, time.Second, 440); lv < audible {
		t.Fatalf("before lecture mode the member is heard at %.1f dBFS", lv)
	}
	keys(t, m, "*5")
	time.Sleep(time.Second)
	if lv := levelOver(f, time.Second, 440); lv > gone {
		t.Errorf("after the new facilitator's *5 a member is still heard at %.1f dBFS", lv)
	}
	if strings.Contains(logs.String(), "654321") {
		t.Errorf("the facilitator PIN is in the log:\n%s", logs.String())
	}
}

// Wrong facilitator PINs in the room count as wrong PINs: the metric and
// the log (without the digits) show each one, and after three *# is a
// facilitator key again for the rest of the call.
func TestMemberWrongPINsCount(t *testing.T) {
	t.Parallel()
	a, logs := startApp(t, testYAML("", peerGroup))
	phones := joinRoom(t, a, logs, 1300021, "654321", "1234")
	m := phones[1]
	time.Sleep(3 * time.Second)
	const failures = `groupbridge_pin_failures_total{scope="shared"}`
	before := appMetric(t, a, failures)
	for i, guess := range []string{"111111", "222222", "333333"} {
		if s := promptScore(t, pressAndHear(t, m, "*#"+guess+"#", 5*time.Second), prompt.PINWrong); s < 0.8 {
			t.Errorf("wrong PIN %d: pin_wrong scores %.2f", i+1, s)
		}
	}
	logs.waitCount(t, 5*time.Second, 3, "wrong facilitator PIN in the room")
	if v := appMetric(t, a, failures) - before; v != 3 {
		t.Errorf("%s rose by %v, want 3", failures, v)
	}
	if s := promptScore(t, pressAndHear(t, m, "*#", 3*time.Second), prompt.FacilitatorOnly); s < 0.8 {
		t.Errorf("*# after three wrong PINs: facilitator_only scores %.2f", s)
	}
	for _, guess := range []string{"111111", "222222", "333333"} {
		if strings.Contains(logs.String(), guess) {
			t.Errorf("typed digits %s are in the log", guess)
		}
	}
}
