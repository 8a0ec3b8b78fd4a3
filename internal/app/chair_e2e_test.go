package app

import (
	"strings"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/softphone"
	"github.com/groupbridge/groupbridge/media/prompt"
)

// End-to-end checks of the chair (issue 13, 2), judged by signal: what a
// caller hears is compared with the committed WAV of the prompt
// (waitHeard and notHeard in heard_test.go).

// press presses seq on p and returns the moment just before, to listen from.
func press(t *testing.T, p *softphone.Phone, seq string) time.Time {
	t.Helper()
	since := time.Now()
	keys(t, p, seq)
	return since
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

	// The detector itself: a member's *5 before; the facilitator's "You
	// are muted." is not taken for it.
	waitHeard(t, m, press(t, m, "*5"), 8*time.Second, "en", prompt.FacilitatorOnly)
	since := press(t, f, "*6")
	waitHeard(t, f, since, 8*time.Second, "en", prompt.Muted)
	notHeard(t, f, since, "en", prompt.FacilitatorOnly)
	keys(t, f, "*6") // unmuted again
	time.Sleep(2 * time.Second)

	since = press(t, f, "*12#6")
	waitHeard(t, f, since, 10*time.Second, "en", prompt.YouAreMember)
	waitHeard(t, m, since, 10*time.Second, "en", prompt.YouAreFacilitator)
	waitHeard(t, l, since, 10*time.Second, "en", prompt.HasTheChair)
	time.Sleep(2 * time.Second)

	waitHeard(t, f, press(t, f, "*5"), 8*time.Second, "en", prompt.FacilitatorOnly)
	l.Media().SendTone(440, -20)
	time.Sleep(2 * time.Second)
	if lv := levelOver(f, time.Second, 440); lv < audible {
		t.Fatalf("before lecture mode the member is heard at %.1f dBFS", lv)
	}
	since = press(t, m, "*5")
	time.Sleep(3 * time.Second)
	notHeard(t, m, since, "en", prompt.FacilitatorOnly)
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

	waitHeard(t, m, press(t, m, "*#"), 8*time.Second, "en", prompt.EnterFacilitatorPIN)
	since := press(t, m, "654321#")
	waitHeard(t, m, since, 8*time.Second, "en", prompt.YouAreFacilitator)
	waitHeard(t, f, since, 10*time.Second, "en", prompt.IsFacilitator)
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
		t.Logf("wrong PIN %d", i+1)
		waitHeard(t, m, press(t, m, "*#"+guess+"#"), 10*time.Second, "en", prompt.PINWrong)
	}
	logs.waitCount(t, 5*time.Second, 3, "wrong facilitator PIN in the room")
	if v := appMetric(t, a, failures) - before; v != 3 {
		t.Errorf("%s rose by %v, want 3", failures, v)
	}
	waitHeard(t, m, press(t, m, "*#"), 8*time.Second, "en", prompt.FacilitatorOnly)
	for _, guess := range []string{"111111", "222222", "333333"} {
		if strings.Contains(logs.String(), guess) {
			t.Errorf("typed digits %s are in the log", guess)
		}
	}
}
