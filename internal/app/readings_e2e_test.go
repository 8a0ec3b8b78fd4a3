package app

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/config"
	"github.com/groupbridge/groupbridge/internal/softphone"
	"github.com/groupbridge/groupbridge/internal/testkit"
	"github.com/groupbridge/groupbridge/media/level"
)

// End-to-end checks of a group's own voice (prompts.dir/readings/),
// judged by signal.

// toneWAV writes seconds of a freq Hz sine at dBFS as a 16-bit WAV at rate
// with channels channels into dir/readings/name: what a volunteer's
// computer records.
func toneWAV(t *testing.T, dir, name string, rate, channels int, freq, dBFS, seconds float64) {
	t.Helper()
	n := int(float64(rate) * seconds)
	amp := 32767 * math.Pow(10, dBFS/20)
	var b []byte
	b = append(b, "RIFF\x00\x00\x00\x00WAVEfmt "...)
	b = binary.LittleEndian.AppendUint32(b, 16)
	b = binary.LittleEndian.AppendUint16(b, 1)
	b = binary.LittleEndian.AppendUint16(b, uint16(channels))
	b = binary.LittleEndian.AppendUint32(b, uint32(rate))
	b = binary.LittleEndian.AppendUint32(b, uint32(rate*2*channels))
	b = binary.LittleEndian.AppendUint16(b, uint16(2*channels))
	b = binary.LittleEndian.AppendUint16(b, 16)
	b = append(b, "data"...)
	b = binary.LittleEndian.AppendUint32(b, uint32(2*channels*n))
	for i := range n {
		s := int16(math.Round(amp * math.Sin(2*math.Pi*freq*float64(i)/float64(rate))))
		for range channels {
			b = binary.LittleEndian.AppendUint16(b, uint16(s))
		}
	}
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)-8))
	if err := os.MkdirAll(filepath.Join(dir, "readings"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "readings", name), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// withPromptsDir puts prompts.dir: dir into a test configuration.
func withPromptsDir(yaml, dir string) string {
	return strings.Replace(yaml, "log:\n", "prompts:\n  dir: "+dir+"\nlog:\n", 1)
}

// A facilitator's **1 plays reading 1 (recorded at 44.1 kHz, 10 dB below
// speech level) to everyone in the room at the AGC's target level, not to
// a caller in waiting; **0 stops it.
func TestReadingReachesEveryMember(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	toneWAV(t, dir, "preamble.wav", 44100, 1, 1000, -30, 30)
	a, logs := startApp(t, withPromptsDir(testYAML("", `
  - name: Circle
    member_pin: "1234"
    facilitator_pin: "654321"
    led_by: peer
    readings: [{key: 1, file: preamble.wav}]
`), dir))
	all := joinRoom(t, a, logs, 1000101, "654321", "1234", "1234", "1234")
	phones, waiting := all[:3], all[3]
	keys(t, phones[0], "*14#3")
	time.Sleep(3 * time.Second) // the join prompts
	for i, p := range phones {
		if lv := levelOver(p, time.Second, 1000); lv > gone {
			t.Fatalf("phone %d hears 1 kHz at %.1f dBFS before the reading", i, lv)
		}
	}
	keys(t, phones[0], "**1")
	logs.waitCount(t, 5*time.Second, 1, "reading started", "key", "1")
	time.Sleep(time.Second)
	for i, p := range phones {
		lv := levelOver(p, 1500*time.Millisecond, 1000)
		t.Logf("phone %d hears the reading at %.2f dBFS (AGC target %.0f)", i, lv, level.DefaultTargetDBFS)
		if math.Abs(lv-level.DefaultTargetDBFS) > 1.5 {
			t.Errorf("phone %d hears the reading at %.1f dBFS, want %.0f ± 1.5", i, lv, level.DefaultTargetDBFS)
		}
	}
	if lv := levelOver(waiting, time.Second, 1000); lv > gone {
		t.Errorf("the caller in waiting hears the reading at %.1f dBFS", lv)
	}
	keys(t, phones[0], "**0")
	logs.waitCount(t, 5*time.Second, 1, "reading stopped")
	time.Sleep(500 * time.Millisecond)
	for i, p := range phones {
		if lv := levelOver(p, time.Second, 1000); lv > gone {
			t.Errorf("phone %d still hears the reading at %.1f dBFS after **0", i, lv)
		}
	}
}

// The group's greeting (48 kHz stereo) reaches a caller after the PIN and
// before the join; '#' skips it.
func TestGreetingBeforeJoining(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const greeting = 6 * time.Second
	toneWAV(t, dir, "welcome.wav", 48000, 2, 700, -25, greeting.Seconds())
	a, logs := startApp(t, withPromptsDir(testYAML("", `
  - name: Circle
    member_pin: "1234"
    facilitator_pin: "654321"
    led_by: peer
    greeting: welcome.wav
`), dir))

	listener := dial(t, a, softphone.Config{Caller: "+15550001201"})
	keys(t, listener, "1234#")
	time.Sleep(2 * time.Second)
	if lv := levelOver(listener, time.Second, 700); lv < audible {
		t.Errorf("the greeting is heard at %.1f dBFS only", lv)
	}
	if n := logs.count(t, "call joined"); n != 0 {
		t.Fatalf("joined during the greeting (%d)", n)
	}
	logs.waitCount(t, greeting+5*time.Second, 1, "call joined")

	skipper := dial(t, a, softphone.Config{Caller: "+15550001202"})
	keys(t, skipper, "1234#")
	time.Sleep(time.Second)
	if lv := levelOver(skipper, 500*time.Millisecond, 700); lv < audible {
		t.Errorf("the second caller hears the greeting at %.1f dBFS only", lv)
	}
	pressed := time.Now()
	keys(t, skipper, "#")
	logs.waitCount(t, greeting/2, 2, "call joined")
	if d := time.Since(pressed); d > greeting/2 {
		t.Errorf("joined %v after '#'", d)
	}
}

// A reload with a bad reading is refused, naming the key, the file and
// the reason; the running configuration stays.
func TestReloadRefusesBadReading(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	toneWAV(t, dir, "good.wav", 16000, 1, 500, -20, 1)
	toneWAV(t, dir, "long.wav", 8000, 1, 500, -20, 3)
	group := `
  - name: Circle
    member_pin: "1234"
    led_by: peer
    readings: [{key: 1, file: %s}]
`
	base := withPromptsDir(testYAML("", fmt.Sprintf(group, "good.wav")), dir)
	a, _ := startApp(t, base)
	for file, want := range map[string]string{
		"long.wav":    "groups[0].readings[0].file: " + filepath.Join(dir, "readings", "long.wav") + ": recording too long: 3s, at most 2s",
		"missing.wav": "groups[0].readings[0].file: " + filepath.Join(dir, "readings", "missing.wav") + ": missing (no such file)",
	} {
		y := strings.Replace(withPromptsDir(testYAML("", fmt.Sprintf(group, file)), dir), "  dir: ", "  readings_max: 2s\n  dir: ", 1)
		cfg, err := config.Parse([]byte(y))
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Reload(cfg); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("reload with %s: %v, want %q", file, err, want)
		}
	}
	if a.state.Load().readings.For("Circle").Reading(1) == nil {
		t.Error("the running readings were dropped")
	}
}

// A peer-led group's opening_reading plays when its first caller joins,
// after "You are caller one. You are the first one here.", and not again
// for the next caller.
func TestOpeningReadingStartsTheSession(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	toneWAV(t, dir, "preamble.wav", 22050, 1, 1000, -20, 8)
	a, logs := startApp(t, withPromptsDir(testYAML("", `
  - name: Circle
    member_pin: "1234"
    led_by: peer
    readings: [{key: 1, file: preamble.wav}]
    opening_reading: 1
`), dir))
	first := joinRoom(t, a, logs, 1000201, "1234")[0]
	logs.waitCount(t, 5*time.Second, 1, "reading started", "key", "1")
	start := time.Now()
	time.Sleep(7 * time.Second)
	// The greeting's words first (about 3 s), then the reading.
	heard := first.Media().Received(start)
	if len(heard) < 8000*6 {
		t.Fatalf("received %d samples in 7 s", len(heard))
	}
	if lv := levels2(heard[:8000], 1000); lv > gone {
		t.Errorf("the reading talks over the first caller's greeting (%.1f dBFS)", lv)
	}
	if lv := levels2(heard[len(heard)-8000:], 1000); math.Abs(lv-level.DefaultTargetDBFS) > 1.5 {
		t.Errorf("the opening reading is heard at %.1f dBFS, want %.0f", lv, level.DefaultTargetDBFS)
	}
	second := dial(t, a, softphone.Config{Caller: "+15551000202"})
	enter(t, logs, second, "1234", softphone.DigitRFC4733, 2)
	time.Sleep(time.Second)
	if n := logs.count(t, "reading started"); n != 1 {
		t.Errorf("%d readings started, want the opening one only", n)
	}
}

// A group that meets opens with its reading at the meeting's scheduled
// start, not when an early caller joins. The wall clock is a
// testkit.ManualClock on a Tuesday at 22:13 UTC; the meeting starts at
// 22:20 and its doors opened at 22:05.
func TestOpeningReadingAtTheScheduledStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	toneWAV(t, dir, "preamble.wav", 32000, 1, 1000, -26, 10)
	clk := testkit.NewManualClock()
	a, logs := startAppWith(t, withPromptsDir(testYAML("", `
  - name: Circle
    member_pin: "1234"
    led_by: peer
    timezone: UTC
    meets: ["Tue 22:20-23:00"]
    readings: [{key: 1, file: preamble.wav}]
    opening_reading: 1
`), dir), Options{Clock: clk})
	p := joinRoom(t, a, logs, 1000301, "1234")[0]
	time.Sleep(2 * time.Second)
	if n := logs.count(t, "reading started"); n != 0 {
		t.Fatalf("the opening reading started %d times before the meeting", n)
	}
	clk.Advance(7 * time.Minute)
	logs.waitCount(t, 5*time.Second, 1, "reading started", "key", "1")
	time.Sleep(time.Second)
	if lv := levelOver(p, 1500*time.Millisecond, 1000); math.Abs(lv-level.DefaultTargetDBFS) > 1.5 {
		t.Errorf("the opening reading is heard at %.1f dBFS, want %.0f", lv, level.DefaultTargetDBFS)
	}
}
