package softphone

import (
	"math"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/media/pcm"
	"github.com/groupbridge/groupbridge/media/tone"
)

// toneWithHoles is d of a freqHz sine at dBFS with the given [from, to)
// stretches (ms) zeroed, as loss without concealment would leave them.
func toneWithHoles(freqHz, dBFS float64, d time.Duration, holes ...[2]int) []int16 {
	s := make([]int16, int(d*pcm.SampleRate/time.Second))
	tone.NewSine(freqHz, dBFS).Read(s)
	for _, h := range holes {
		clear(s[h[0]*pcm.SampleRate/1000 : h[1]*pcm.SampleRate/1000])
	}
	return s
}

func TestToneBlocks(t *testing.T) {
	// A -20 dBFS tone against a -30 dBFS threshold: a 50 ms block stays
	// above while it keeps more than 10^(-10/20) of its length, 15.8 ms, of
	// tone (Goertzel's amplitude scales with the share of the window).
	const freq, level, thr = 1000, -20, -30
	second := time.Second
	cases := []struct {
		name     string
		samples  []int16
		freq     float64
		block    time.Duration
		fraction float64
		gap      time.Duration
	}{
		{"clean tone", toneWithHoles(freq, level, second), freq, 50 * time.Millisecond, 1, 0},
		{"40 ms hole inside a block", toneWithHoles(freq, level, second, [2]int{100, 140}), freq, 50 * time.Millisecond, 19.0 / 20, 50 * time.Millisecond},
		{"40 ms hole straddling two blocks", toneWithHoles(freq, level, second, [2]int{130, 170}), freq, 50 * time.Millisecond, 1, 0},
		{"80 ms hole covering one block", toneWithHoles(freq, level, second, [2]int{100, 180}), freq, 50 * time.Millisecond, 19.0 / 20, 50 * time.Millisecond},
		{"80 ms hole across two blocks", toneWithHoles(freq, level, second, [2]int{110, 190}), freq, 50 * time.Millisecond, 18.0 / 20, 100 * time.Millisecond},
		{"two holes: the longest run counts", toneWithHoles(freq, level, second, [2]int{100, 150}, [2]int{500, 650}), freq, 50 * time.Millisecond, 16.0 / 20, 150 * time.Millisecond},
		{"40 ms hole, 20 ms blocks", toneWithHoles(freq, level, second, [2]int{100, 140}), freq, 20 * time.Millisecond, 48.0 / 50, 40 * time.Millisecond},
		{"silence", make([]int16, 8000), freq, 50 * time.Millisecond, 0, second},
		{"another frequency", toneWithHoles(500, level, second), freq, 50 * time.Millisecond, 0, second},
		{"tone below the threshold", toneWithHoles(freq, -40, second), freq, 50 * time.Millisecond, 0, second},
		{"trailing part not judged", append(toneWithHoles(freq, level, second), make([]int16, 200)...), freq, 50 * time.Millisecond, 1, 0},
		{"shorter than a block", toneWithHoles(freq, level, 40*time.Millisecond), freq, 50 * time.Millisecond, 0, 0},
		{"empty", nil, freq, 50 * time.Millisecond, 0, 0},
		{"zero block", toneWithHoles(freq, level, second), freq, 0, 0, 0},
		{"block shorter than a sample", toneWithHoles(freq, level, second), freq, 100 * time.Microsecond, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			frac, gap := ToneBlocks(tc.samples, tc.freq, tc.block, thr)
			if math.Abs(frac-tc.fraction) > 1e-9 || gap != tc.gap {
				t.Errorf("ToneBlocks = %.3f above, gap %v; want %.3f, %v", frac, gap, tc.fraction, tc.gap)
			}
		})
	}
}

// TestToneBlocksGapIsWholeSamples checks the gap for a block that is not a
// whole number of samples: it is what was measured, 3 samples of 125 µs.
func TestToneBlocksGapIsWholeSamples(t *testing.T) {
	_, gap := ToneBlocks(make([]int16, 30), 1000, 400*time.Microsecond, -30)
	if want := 3 * 125 * time.Microsecond * 10; gap != want {
		t.Errorf("gap = %v, want %v (10 blocks of 3 samples)", gap, want)
	}
}

// TestScaledToneBlocks: a 1 kHz tone shifted as the jitter buffer's
// time-scaling shifts it (4 samples more or fewer per 160) counts for
// ScaledToneBlocks, not for ToneBlocks; a tone 5% away and a hole do not
// count for either.
func TestScaledToneBlocks(t *testing.T) {
	const thr = -30
	block := 50 * time.Millisecond
	cases := []struct {
		name          string
		samples       []int16
		exact, scaled float64 // fraction of blocks above
		scaledGap     time.Duration
	}{
		{"at its frequency", toneWithHoles(1000, -20, time.Second), 1, 1, 0},
		{"stretched 2.5%", toneWithHoles(1000*160.0/164, -20, time.Second), 0, 1, 0},
		{"squeezed 2.5%", toneWithHoles(1000*160.0/156, -20, time.Second), 0, 1, 0},
		{"squeezed 1.25%: within the exact window too", toneWithHoles(1000*160.0/158, -20, time.Second), 1, 1, 0},
		{"5% away", toneWithHoles(1050, -20, time.Second), 0, 0, time.Second},
		{"stretched, with a 100 ms hole", toneWithHoles(1000*160.0/164, -20, time.Second, [2]int{100, 200}), 0, 18.0 / 20, 100 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if frac, _ := ToneBlocks(tc.samples, 1000, block, thr); math.Abs(frac-tc.exact) > 1e-9 {
				t.Errorf("ToneBlocks: %.3f above, want %.3f", frac, tc.exact)
			}
			frac, gap := ScaledToneBlocks(tc.samples, 1000, block, thr)
			if math.Abs(frac-tc.scaled) > 1e-9 || gap != tc.scaledGap {
				t.Errorf("ScaledToneBlocks: %.3f above, gap %v; want %.3f, %v", frac, gap, tc.scaled, tc.scaledGap)
			}
		})
	}
}
