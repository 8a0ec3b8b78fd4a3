package callflow

import (
	"strings"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/guard"
	"github.com/groupbridge/groupbridge/internal/testkit"
	"github.com/groupbridge/groupbridge/media/pcm"
)

// A crossing of limits.pin_failure_alarm is counted every time and logged
// at most once a minute per scope, on the flow's clock; the group is named
// in the log only.
func TestPINAlarm(t *testing.T) {
	clk := testkit.NewManualClock()
	r := newRig(t, guard.Config{}, func(c *Config) { c.Clock = clk })
	steps := []struct {
		alarm        guard.Alarm
		after        time.Duration // clock moves before the alarm
		wantLines    int           // alarm lines logged so far
		bridge, grp  int           // alarms counted so far
		lastScope    string        // of the last line logged
		lastHasGroup bool
	}{
		{guard.Alarm{Bridge: true, BridgeRate: 61}, 0, 1, 1, 0, "bridge", false},
		{guard.Alarm{Group: true, GroupRate: 70}, 0, 2, 1, 1, "group", true},
		// Within the minute: counted, not logged.
		{guard.Alarm{Bridge: true, Group: true, BridgeRate: 80, GroupRate: 75}, 10 * time.Second, 2, 2, 2, "group", true},
		{guard.Alarm{Bridge: true, BridgeRate: 90}, time.Minute, 3, 3, 2, "bridge", false},
	}
	for i, s := range steps {
		clk.Advance(s.after)
		r.flow.pinAlarm(s.alarm, "Circle")
		lines := r.lines(t, "PIN failure rate high: possible guessing attack")
		if len(lines) != s.wantLines {
			t.Fatalf("step %d: %d alarm lines, want %d", i, len(lines), s.wantLines)
		}
		if r.metrics.pin["alarm-false"] != s.bridge || r.metrics.pin["alarm-true"] != s.grp {
			t.Errorf("step %d: alarms counted %v", i, r.metrics.pin)
		}
		last := lines[len(lines)-1]
		if _, named := last["group"]; last["scope"] != s.lastScope || named != s.lastHasGroup || last["limit"] != float64(60) {
			t.Errorf("step %d: last line %v", i, last)
		}
	}
}

// Passing the PIN budget is logged once per attack with its scope and the
// limits in force, and counted by scope.
func TestUnderAttack(t *testing.T) {
	tests := []struct {
		group     string
		wantScope string
	}{
		{"", "shared"},
		{"Circle", "group"},
	}
	for _, tc := range tests {
		r := newRig(t, guard.Config{}, nil)
		r.flow.underAttack(tc.group)
		lines := r.lines(t, "PIN guessing: wrong PINs past the budget; PIN answers now wait their turn")
		if len(lines) != 1 {
			t.Fatalf("%q: %d lines", tc.group, len(lines))
		}
		l := lines[0]
		g, named := l["group"]
		if l["scope"] != tc.wantScope || named != (tc.group != "") || (named && g != tc.group) ||
			l["pin_budget"] != float64(6) || l["pin_budget_bridge"] != float64(30) {
			t.Errorf("%q: line %v", tc.group, l)
		}
		if r.metrics.pin[map[bool]string{true: "attack-true", false: "attack-false"}[tc.group != ""]] != 1 {
			t.Errorf("%q: attacks counted %v", tc.group, r.metrics.pin)
		}
	}
}

// panicking is a stream that panics on the lobby's tick, as a bad stream
// or a bug on one caller's path would.
type panicking struct{}

func (panicking) ReadFrame(*pcm.Frame) bool { panic("stream for 4821397 broke") }
func (panicking) WriteFrame(*pcm.Frame)     {}

// When the lobby gives up on a caller's path, only that call ends, refused
// as internal-error, and the panic is logged without its digits.
func TestServePromptPanicEndsTheCall(t *testing.T) {
	r := newRig(t, guard.Config{}, nil)
	c := newCall("+15551230001")
	c.media = panicking{}
	r.serve(t, c)
	if got := r.metrics.get(); len(got) != 1 || got[0] != "internal-error" {
		t.Errorf("outcomes %q", got)
	}
	if h, _ := c.ended(); len(h) != 1 || h[0] != "internal-error" {
		t.Errorf("hang-ups %q", h)
	}
	lines := r.lines(t, "caller's prompt playback panicked, letting the caller go")
	if len(lines) != 1 {
		t.Fatalf("%d panic lines; log:\n%s", len(lines), r.log.String())
	}
	if p, _ := lines[0]["panic"].(string); p == "" || strings.Contains(p, "4821397") {
		t.Errorf("panic logged as %q", p)
	}
}
