package readings

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/media/level"
)

// wav writes seconds of a tone (freq Hz, peak amp; 0 Hz is silence) as a
// 16-bit mono WAV at rate into dir/readings/name.
func wav(t *testing.T, dir, name string, rate int, freq, amp, seconds float64) {
	t.Helper()
	n := int(float64(rate) * seconds)
	b := []byte("RIFF\x00\x00\x00\x00WAVEfmt ")
	b = binary.LittleEndian.AppendUint32(b, 16)
	b = binary.LittleEndian.AppendUint16(b, 1)
	b = binary.LittleEndian.AppendUint16(b, 1)
	b = binary.LittleEndian.AppendUint32(b, uint32(rate))
	b = binary.LittleEndian.AppendUint32(b, uint32(rate*2))
	b = binary.LittleEndian.AppendUint16(b, 2)
	b = binary.LittleEndian.AppendUint16(b, 16)
	b = append(b, "data"...)
	b = binary.LittleEndian.AppendUint32(b, uint32(2*n))
	for i := range n {
		s := int16(math.Round(amp * math.Sin(2*math.Pi*freq*float64(i)/float64(rate))))
		b = binary.LittleEndian.AppendUint16(b, uint16(s))
	}
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)-8))
	if err := os.MkdirAll(filepath.Join(dir, Subdir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, Subdir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	wav(t, dir, "preamble.wav", 44100, 1000, 3000, 2)
	wav(t, dir, "welcome.wav", 48000, 700, 20000, 1)
	groups := []group.Group{
		{Name: "A", Greeting: "welcome.wav", Readings: []group.Reading{{Key: 1, File: "preamble.wav"}, {Key: 4, File: "welcome.wav"}}, OpeningReading: 1},
		{Name: "B", Readings: []group.Reading{{Key: 2, File: "preamble.wav"}}},
		{Name: "C"},
	}
	lib, err := Load(dir, time.Minute, groups, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := lib.For("A")
	if a == nil || a.Opening != 1 || len(a.Greeting) != 8000 || len(a.Reading(1)) != 16000 {
		t.Fatalf("group A loaded as %+v", a)
	}
	for _, c := range [][]int16{a.Greeting, a.Reading(1)} {
		if lv, _ := level.ActiveLevelDBFS(c); math.Abs(lv-level.DefaultTargetDBFS) > 0.3 {
			t.Errorf("clip at %.2f dBFS, want the AGC target %.0f", lv, level.DefaultTargetDBFS)
		}
	}
	if &lib.For("B").Reading(2)[0] != &a.Reading(1)[0] {
		t.Error("a file two keys name was loaded twice")
	}
	if a.Reading(2) != nil || a.Reading(0) != nil || a.Reading(10) != nil {
		t.Error("a key without a reading has one")
	}
	if lib.For("C") != nil || lib.For("nobody").Reading(1) != nil {
		t.Error("a group without recordings has some")
	}
	var none *Library
	if none.For("A") != nil {
		t.Error("nil library has a group")
	}
}

// Every refused file is reported with its key, its path and the reason.
func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	wav(t, dir, "ok.wav", 8000, 1000, 3000, 1)
	wav(t, dir, "long.wav", 16000, 1000, 3000, 3)
	wav(t, dir, "odd.wav", 11025, 1000, 3000, 1)
	wav(t, dir, "silent.wav", 8000, 0, 0, 1)
	if err := os.WriteFile(filepath.Join(dir, Subdir, "notes.wav"), []byte("just some notes, not a recording"), 0o644); err != nil {
		t.Fatal(err)
	}
	groups := []group.Group{
		{Name: "A", Greeting: "gone.wav", Readings: []group.Reading{
			{Key: 1, File: "ok.wav"}, {Key: 2, File: "long.wav"}, {Key: 3, File: "odd.wav"},
			{Key: 4, File: "notes.wav"}, {Key: 5, File: "silent.wav"}, {Key: 6, File: "../escape.wav"},
		}},
		{Name: "B", Greeting: "long.wav"},
	}
	_, err := Load(dir, 2*time.Second, groups, nil)
	if err == nil {
		t.Fatal("loaded")
	}
	r := filepath.Join(dir, Subdir)
	for _, want := range []string{
		"groups[0].greeting: " + r + "/gone.wav: missing (no such file)",
		"groups[0].readings[1].file: " + r + "/long.wav: recording too long: 3s, at most 2s (prompts.readings_max)",
		"groups[0].readings[2].file: " + r + "/odd.wav: unusable WAV file: sample rate 11025 Hz",
		"groups[0].readings[3].file: " + r + `/notes.wav: unusable WAV file: does not start with "RIFF"`,
		"groups[0].readings[4].file: " + r + "/silent.wav: silent",
		"groups[0].readings[5].file: ",
		"groups[1].greeting: " + r + "/long.wav: recording too long",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not contain %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "ok.wav") {
		t.Errorf("a good file is named: %v", err)
	}

	_, err = Load("", time.Minute, []group.Group{{Name: "A", Greeting: "x.wav"}}, nil)
	if err == nil || !strings.Contains(err.Error(), "groups[0].greeting: x.wav: prompts.dir is not set") {
		t.Errorf("without prompts.dir: %v", err)
	}
	_, err = Load(t.TempDir(), time.Minute, []group.Group{{Name: "A", Readings: []group.Reading{{Key: 1, File: "x.wav"}}}}, nil)
	if err == nil || !strings.Contains(err.Error(), "missing (no directory prompts.dir/readings/)") {
		t.Errorf("without readings/: %v", err)
	}
	if lib, err := Load("", time.Minute, []group.Group{{Name: "A"}}, nil); err != nil || lib.For("A") != nil {
		t.Errorf("no recordings: %v, %v", lib, err)
	}
}

// A reload reuses what an unchanged file became and reads a changed one
// again.
func TestLoadReusesUnchangedFiles(t *testing.T) {
	dir := t.TempDir()
	wav(t, dir, "a.wav", 44100, 1000, 3000, 1)
	wav(t, dir, "b.wav", 44100, 1000, 3000, 1)
	groups := []group.Group{{Name: "G", Readings: []group.Reading{{Key: 1, File: "a.wav"}, {Key: 2, File: "b.wav"}}}}
	first, err := Load(dir, time.Minute, groups, nil)
	if err != nil {
		t.Fatal(err)
	}
	wav(t, dir, "b.wav", 44100, 500, 3000, 2) // changed: longer
	second, err := Load(dir, time.Minute, groups, first)
	if err != nil {
		t.Fatal(err)
	}
	if &second.For("G").Reading(1)[0] != &first.For("G").Reading(1)[0] {
		t.Error("an unchanged file was read again")
	}
	if len(second.For("G").Reading(2)) != 16000 {
		t.Errorf("a changed file was not read again: %d samples", len(second.For("G").Reading(2)))
	}
	// A shorter limit checks every file again.
	if _, err := Load(dir, 1500*time.Millisecond, groups, second); err == nil || !strings.Contains(err.Error(), "b.wav: recording too long") {
		t.Errorf("a lower readings_max did not refuse a long file: %v", err)
	}
}
