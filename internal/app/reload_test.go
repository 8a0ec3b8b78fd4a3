package app

import (
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/config"
	"github.com/groupbridge/groupbridge/internal/softphone"
	"github.com/groupbridge/groupbridge/internal/testkit"
	"github.com/groupbridge/groupbridge/media/prompt"
)

// reloadYAML edits a test configuration: each pair replaces old by new
// once, and must find old.
func reloadYAML(t *testing.T, y string, pairs ...string) *config.Config {
	t.Helper()
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(y, pairs[i]) {
			t.Fatalf("reloadYAML: %q not in the configuration", pairs[i])
		}
		y = strings.Replace(y, pairs[i], pairs[i+1], 1)
	}
	cfg, err := config.Parse([]byte(y))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, y)
	}
	return cfg
}

// A reload names every changed key that needs a restart in one line, and
// the keys it applied in another; drain_timeout, read at the stop, is
// live.
func TestReloadLogNamesEveryKey(t *testing.T) {
	lo, hi := rtpRange()
	y := testYAMLPorts("", "", lo, hi)
	a, logs := startApp(t, y)
	next := reloadYAML(t, y,
		"sip:\n", "sip:\n  user_agent: bridge-2\n  answer_delay: 1s\n",
		"log:\n", "drain_timeout: 25s\nlog:\n",
		"  timeout: 10s\n", "  timeout: 12s\n",
		`member_pin: "1234"`, `member_pin: "4321"`)
	if err := a.Reload(next); err != nil {
		t.Fatal(err)
	}
	if n := logs.count(t, "reload: these settings need a restart; keeping the running values", "keys", "sip.user_agent,rtp.timeout"); n != 1 {
		t.Errorf("%d restart lines naming sip.user_agent and rtp.timeout, want 1; log:\n%s", n, logs)
	}
	if n := logs.count(t, "reload: applied", "keys", "sip.answer_delay,drain_timeout,groups"); n != 1 {
		t.Errorf("%d applied lines naming sip.answer_delay, drain_timeout and groups, want 1; log:\n%s", n, logs)
	}
	if got := a.DrainTimeout(); got != 25*time.Second {
		t.Errorf("DrainTimeout = %v after the reload, want 25s", got)
	}
	// Reloading the same file again still names what awaits a restart,
	// and applies nothing new.
	if err := a.Reload(next); err != nil {
		t.Fatal(err)
	}
	if n := logs.count(t, "reload: these settings need a restart; keeping the running values"); n != 2 {
		t.Errorf("%d restart lines after two reloads, want 2", n)
	}
	if n := logs.count(t, "reload: applied"); n != 1 {
		t.Errorf("%d applied lines after reloading the same file, want 1", n)
	}
}

// sip.answer_delay is live: the next call rings that long before the
// answer.
func TestReloadAnswerDelay(t *testing.T) {
	t.Parallel()
	lo, hi := rtpRange()
	y := testYAMLPorts("", "", lo, hi)
	a, _ := startApp(t, y)
	timeDial := func(caller string) time.Duration {
		start := time.Now()
		p := dial(t, a, softphone.Config{Caller: caller})
		d := time.Since(start)
		ctx, cancel := testContext(5 * time.Second)
		defer cancel()
		_ = p.Hangup(ctx)
		return d
	}
	if d := timeDial("+15550300001"); d > time.Second {
		t.Fatalf("without answer_delay the call took %v to answer", d)
	}
	if err := a.Reload(reloadYAML(t, y, "sip:\n", "sip:\n  answer_delay: 1500ms\n")); err != nil {
		t.Fatal(err)
	}
	if d := timeDial("+15550300002"); d < 1500*time.Millisecond {
		t.Fatalf("after reloading answer_delay: 1500ms the call was answered in %v", d)
	}
}

// A room prompt replaced in prompts.dir is what a room in session says at
// its next announcement after the reload: the member's "Your hand is
// raised." becomes the operator's new recording, a 1777 Hz tone of 800 ms
// at -10 dBFS, heard at its level and for its length.
func TestReloadedPromptReachesRunningRoom(t *testing.T) {
	t.Parallel()
	const (
		freq   = 1777.0
		length = 800 * time.Millisecond
		level  = -10.0
	)
	dir := t.TempDir()
	lo, hi := rtpRange()
	y := strings.Replace(testYAMLPorts("", peerGroup, lo, hi), "log:\n", "prompts:\n  dir: "+dir+"\nlog:\n", 1)
	a, logs := startApp(t, y)
	p := joinRoom(t, a, logs, 3100001, "1234")[0]
	time.Sleep(4 * time.Second) // the greeting ends

	// raise presses *9 and returns what the member heard in the 3 s after.
	raise := func() []int16 {
		start := time.Now()
		keys(t, p, "*9")
		time.Sleep(3 * time.Second)
		return p.Media().Received(start)
	}
	// toneLength is how long the tone is heard at about its level, in
	// 20 ms blocks.
	toneLength := func(s []int16) time.Duration {
		frac, _ := softphone.ToneBlocks(s, freq, 20*time.Millisecond, level-4)
		return time.Duration(frac * float64(len(s)) / 8 * float64(time.Millisecond))
	}
	before := raise()
	if rmsOf(before) < -40 {
		t.Fatalf("the built-in hand_raised is not heard (%.1f dBFS)", rmsOf(before))
	}
	if d := toneLength(before); d > 0 {
		t.Fatalf("%v of the new tone heard before it was put in prompts.dir", d)
	}
	raise() // lowers the hand

	clip := make([]int16, int(length.Seconds()*8000))
	amp := math.Pow(10, level/20) * 32767 // a full-scale sine is 0 dBFS
	for i := range clip {
		clip[i] = int16(amp * math.Sin(2*math.Pi*freq*float64(i)/8000))
	}
	testkit.WriteWAV(t, filepath.Join(dir, prompt.HandRaised+".wav"), clip)
	if err := a.Reload(reloadYAML(t, y)); err != nil {
		t.Fatal(err)
	}
	after := raise()
	if d := toneLength(after); d < length-60*time.Millisecond || d > length+60*time.Millisecond {
		t.Fatalf("after the reload the new hand_raised tone is heard for %v, want %v", d, length)
	}
}
