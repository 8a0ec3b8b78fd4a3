package level

import (
	"bytes"
	"encoding/binary"
	"math"
	"os/exec"
	"sync"
	"testing"

	"github.com/groupbridge/groupbridge/internal/testkit"
	"github.com/groupbridge/groupbridge/media/pcm"
	"github.com/groupbridge/groupbridge/media/tone"
)

// Generated speech complements the tones: real syllables, pauses and
// consonants far below the vowels. It needs espeak-ng and sox (both in the
// Makefile's test-deps); without them these tests skip, or fail under
// make test (testkit.NeedBinary).

// utterance is one synthesised sentence at 8 kHz.
type utterance struct {
	frames []pcm.Frame
	active []bool // frames that carry speech rather than espeak's silence
}

var speechOnce = sync.OnceValues(synthesise)

func synthesise() ([]utterance, error) {
	lines := []struct{ voice, text string }{
		{"en-us", "I have been feeling a lot better this week. Thank you all for listening last time."},
		{"en-gb", "It was hard to say out loud, but it helped to hear that I am not the only one."},
		{"en-us+f3", "Some days are still difficult, and that is all right. We take it one day at a time."},
		{"en-gb-x-rp", "Could someone remind me when we meet again next month?"},
	}
	var out []utterance
	for _, l := range lines {
		espeak := exec.Command("espeak-ng", "-v", l.voice, "--stdout", l.text)
		wav, err := espeak.Output()
		if err != nil {
			return nil, err
		}
		sox := exec.Command("sox", "-t", "wav", "-", "-t", "raw", "-r", "8000", "-e", "signed-integer",
			"-b", "16", "-c", "1", "-L", "-")
		sox.Stdin = bytes.NewReader(wav)
		raw, err := sox.Output()
		if err != nil {
			return nil, err
		}
		var u utterance
		for len(raw) >= 2*pcm.FrameSamples {
			var f pcm.Frame
			for i := range f {
				f[i] = int16(binary.LittleEndian.Uint16(raw[2*i:]))
			}
			raw = raw[2*pcm.FrameSamples:]
			u.frames = append(u.frames, f)
			u.active = append(u.active, tone.RMSDBFS(f[:]) > -60) // espeak's silence is sox's dither, near -92
		}
		out = append(out, u)
	}
	return out, nil
}

// speechScene is the utterances, each scaled to an active speech level of
// dBFS (saturating like a phone's codec when that is too loud), separated by
// gaps of silence and laid over steady noise at noiseDBFS.
type speechScene struct {
	frames []pcm.Frame
	active []bool
	spans  [][2]int // [start, end) of each utterance's active frames
}

func newSpeechScene(t *testing.T, dBFS, noiseDBFS float64, gap, repeat int) speechScene {
	t.Helper()
	for _, bin := range []string{"espeak-ng", "sox"} {
		testkit.NeedBinary(t, bin)
	}
	utts, err := speechOnce()
	if err != nil {
		t.Fatalf("synthesising speech: %v", err)
	}
	var activePower float64
	var n int
	for _, u := range utts {
		for i := range u.frames {
			if u.active[i] {
				activePower += framePower(&u.frames[i])
				n++
			}
		}
	}
	gain := math.Pow(10, (dBFS-powerToDB(activePower/float64(n)))/20)

	var sc speechScene
	for range repeat {
		for _, u := range utts {
			sc.frames = append(sc.frames, make([]pcm.Frame, gap)...)
			sc.active = append(sc.active, make([]bool, gap)...)
			start, end := -1, 0
			for i, f := range u.frames {
				for j := range f {
					f[j] = pcm.Clamp(int32(math.Round(float64(f[j]) * gain)))
				}
				if u.active[i] {
					if start < 0 {
						start = len(sc.frames)
					}
					end = len(sc.frames) + 1
				}
				sc.frames = append(sc.frames, f)
				sc.active = append(sc.active, u.active[i])
			}
			sc.spans = append(sc.spans, [2]int{start, end})
		}
	}
	sc.frames = append(sc.frames, make([]pcm.Frame, gap)...)
	sc.active = append(sc.active, make([]bool, gap)...)
	noise := render(noiseSeg(noiseDBFS, len(sc.frames)))
	for k := range sc.frames {
		for i := range sc.frames[k] {
			sc.frames[k][i] = pcm.Clamp(int32(sc.frames[k][i]) + int32(noise[k][i]))
		}
	}
	return sc
}

// firstLoud returns the first frame of span k at or above the default on
// threshold. A level detector cannot hear a sentence before that: a soft
// initial consonant (the "s" of "Some") is below any threshold that also
// rejects line noise.
func (sc speechScene) firstLoud(k int) int {
	for i := sc.spans[k][0]; i < sc.spans[k][1]; i++ {
		if tone.RMSDBFS(sc.frames[i][:]) >= DefaultOnDBFS {
			return i
		}
	}
	return sc.spans[k][1]
}

// activeLevel is the power mean of frames over the active frames in
// [from, to), in dBFS: a simple active speech level.
func (sc speechScene) activeLevel(frames []pcm.Frame, from, to int) float64 {
	var p float64
	var n int
	for i := from; i < to; i++ {
		if sc.active[i] {
			p += framePower(&frames[i])
			n++
		}
	}
	return powerToDB(p / float64(n))
}

func TestSpeechTalker(t *testing.T) {
	tests := []struct {
		name        string
		dBFS, noise float64
	}{
		{"whisperer over a quiet line", -35, -65},
		{"normal voice over line noise", -24, -55},
		{"loud voice", -12, -55},
	}
	const gap = 75 // 1.5 s between sentences
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc := newSpeechScene(t, tc.dBFS, tc.noise, gap, 1)
			tk := NewTalker(TalkerConfig{})
			talking := make([]bool, len(sc.frames))
			var ons []int
			for i := range sc.frames {
				var changed bool
				talking[i], changed = tk.Process(&sc.frames[i])
				if changed && talking[i] {
					ons = append(ons, i)
				}
			}
			loud := make([]int, len(sc.spans))
			for k := range sc.spans {
				loud[k] = sc.firstLoud(k)
			}
			if len(ons) != len(sc.spans) {
				t.Fatalf("%d talkspurts started (frames %v), want one per sentence: %v", len(ons), ons, sc.spans)
			}
			for k, sp := range sc.spans {
				// Onset within 100 ms of the sentence's first loud frame.
				if ons[k] < loud[k] || ons[k] > loud[k]+5 {
					t.Errorf("sentence %d starts at frame %d, loud from %d, talking from %d", k, sp[0], loud[k], ons[k])
				}
				t.Logf("sentence %d: talking %d ms after its first sound", k, (ons[k]-sp[0])*20)
				// Talking throughout, and off again once the hangover is
				// over and well before the next sentence.
				for i := ons[k]; i < sp[1]; i++ {
					if !talking[i] {
						t.Fatalf("sentence %d: not talking at frame %d of [%d, %d)", k, i, sp[0], sp[1])
					}
				}
				if off := sp[1] + DefaultOffFrames + 5; talking[off] {
					t.Errorf("sentence %d ended at frame %d, still talking at %d", k, sp[1], off)
				}
			}
		})
	}
}

func TestSpeechAGC(t *testing.T) {
	tests := []struct {
		name string
		dBFS float64
		want float64 // expected settled active level: bounded gain
	}{
		{"whisperer", -35, -23},
		{"normal", -22, -20},
		{"shouter (clipping at the phone)", -5, -17},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc := newSpeechScene(t, tc.dBFS, -60, 25, 2)
			in := make([]pcm.Frame, len(sc.frames))
			copy(in, sc.frames)
			a := NewAGC(AGCConfig{})
			out, gains := run(a, sc.frames)
			// After the first two sentences (several seconds of talk),
			// every later sentence is within ±6 dB of the target.
			for k, sp := range sc.spans[2:] {
				lvl := sc.activeLevel(out, sp[0], sp[1])
				if math.Abs(lvl-DefaultTargetDBFS) > 6 {
					t.Errorf("sentence %d: output active level %.1f dBFS (input %.1f), more than 6 dB off target",
						k+2, lvl, sc.activeLevel(in, sp[0], sp[1]))
				}
			}
			last := sc.spans[len(sc.spans)-1]
			if lvl := sc.activeLevel(out, last[0], last[1]); math.Abs(lvl-tc.want) > 3 {
				t.Errorf("last sentence at %.1f dBFS, want about %.1f", lvl, tc.want)
			}
			ceiling := int(32767 * math.Pow(10, DefaultLimiterDBFS/20))
			peak := 0
			for _, s := range flatten(out) {
				peak = max(peak, int(s), -int(s))
			}
			if peak > ceiling {
				t.Errorf("peak %d above the ceiling %d", peak, ceiling)
			}
			t.Logf("final gain %.1f dB, peak %d", gains[len(gains)-1], peak)
		})
	}
}

func TestSpeechGate(t *testing.T) {
	const gap = 100
	sc := newSpeechScene(t, -26, -55, gap, 1)
	loud := make([]int, len(sc.spans))
	for k := range sc.spans {
		loud[k] = sc.firstLoud(k)
	}
	tk, g := NewTalker(TalkerConfig{}), NewGate()
	open := make([]bool, len(sc.frames))
	for i := range sc.frames {
		tk.Process(&sc.frames[i])
		open[i] = g.Process(&sc.frames[i], tk.Voice())
	}
	for k, sp := range sc.spans {
		// Everything from the sentence's first loud frame on passes: a
		// word's start is not cut while the Talker confirms the talkspurt.
		for i := loud[k]; i < sp[1]; i++ {
			if !open[i] {
				t.Errorf("sentence %d [%d, %d): gated at frame %d", k, sp[0], sp[1], i)
			}
		}
		// The noise in the gap after it is silenced once the hangover,
		// hold and fade are over.
		next := len(sc.frames)
		if k+1 < len(sc.spans) {
			next = sc.spans[k+1][0]
		}
		for i := sp[1] + DefaultOffFrames + GateHoldFrames + 1; i < next; i++ {
			if open[i] || sc.frames[i] != (pcm.Frame{}) {
				t.Fatalf("sentence %d: noise passes at frame %d after the sentence ended at %d", k, i, sp[1])
			}
		}
	}
}
