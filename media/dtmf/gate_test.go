package dtmf

import (
	"fmt"
	"testing"

	"github.com/groupbridge/groupbridge/media/pcm"
)

// The cheap tests in front of the spectral analysis (classifyWindow) only
// reject windows that could not have hit. These tests run a gated Filter
// and one that analyses every window in full side by side and require
// the same digits, the same ToneActive and the same output, frame by
// frame, over speech, noise and key tones at and around every threshold.

// gateCase is one signal for the side-by-side comparison.
type gateCase struct {
	name string
	x    []int16
}

// gateCases builds signals whose tones sit at the edges of what the
// detector accepts: levels around MinLevelDBm0 and the per-window floor,
// twist and frequency offsets at their limits, short tones, tones over
// speech and over noise, at offsets across a frame.
func gateCases(t *testing.T) []gateCase {
	var cases []gateCase
	add := func(name string, x []float64) { cases = append(cases, gateCase{name, quantise(x)}) }
	for _, db := range []float64{-20, -30, -34, -36, -38, -40, -42, -46} {
		for _, off := range []int{0, 37, 113} {
			x := signal(400, keyTone{digit: '5', at: 800 + off, n: 400, rowDB: db, colDB: db})
			add(fmt.Sprintf("level %g dBm0 at +%d", db, off), x)
		}
	}
	for _, tw := range []struct{ row, col float64 }{{-25, -35}, {-34, -25}, {-20, -29}, {-30, -21}} {
		add(fmt.Sprintf("twist %g/%g", tw.row, tw.col), signal(300, keyTone{digit: '9', at: 500, n: 360, rowDB: tw.row, colDB: tw.col}))
	}
	for _, dev := range []float64{-0.035, -0.025, 0.015, 0.03} {
		add(fmt.Sprintf("offset %g", dev), signal(300, keyTone{digit: '*', at: 333, n: 400, rowDB: -15, colDB: -15, rowDev: dev, colDev: -dev}))
	}
	for _, ms := range []int{20, 25, 30, 40} {
		add(fmt.Sprintf("%d ms", ms), signal(300, press('#', 700, ms)))
	}
	for _, seed := range []uint64{1, 2, 3} {
		x := otherAudio(1500, seed)
		press('1', 3000, 60).add(x)
		keyTone{digit: 'D', at: 7000, n: 500, rowDB: -33, colDB: -36}.add(x)
		add(fmt.Sprintf("voice-like audio %d", seed), x)
	}
	for _, db := range []float64{-60, -44, -40, -30} {
		x := make([]float64, 8000)
		addNoise(x, db, 5)
		keyTone{digit: '0', at: 3100, n: 480, rowDB: -28, colDB: -28}.add(x)
		add(fmt.Sprintf("noise %g dBm0 with a key", db), x)
	}
	s, _ := speech(t)
	for _, gain := range []float64{1, 0.25, 0.06} {
		x := make([]float64, 20*sampleRate)
		for i := range x {
			x[i] = float64(s[i+5*sampleRate]) * gain
		}
		for i, k := range []byte("147*2580369#ABCD") {
			at := 3000 + i*9500
			keyTone{digit: k, at: at, n: 360 + 40*(i%4), rowDB: -26 - float64(i%3)*4, colDB: -27 - float64(i%2)*4}.add(x)
		}
		add(fmt.Sprintf("speech x%g with keys over it", gain), x)
	}
	return cases
}

func TestGateChangesNothing(t *testing.T) {
	for _, tc := range gateCases(t) {
		for _, delay := range []int{2, 3} {
			gated, full := NewFilter(delay), NewFilter(delay)
			full.det.noGate = true
			var a, b pcm.Frame
			var digits []byte
			for i := 0; i+pcm.FrameSamples <= len(tc.x); i += pcm.FrameSamples {
				f := (*pcm.Frame)(tc.x[i : i+pcm.FrameSamples])
				dg, okg := gated.Process(f, &a)
				df, okf := full.Process(f, &b)
				n := i / pcm.FrameSamples
				if dg != df || okg != okf {
					t.Fatalf("%s, delay %d, frame %d: gated gives %q %v, full analysis %q %v", tc.name, delay, n, dg, okg, df, okf)
				}
				if gated.det.ToneActive() != full.det.ToneActive() {
					t.Fatalf("%s, delay %d, frame %d: ToneActive %v gated, %v in full", tc.name, delay, n, gated.det.ToneActive(), full.det.ToneActive())
				}
				if a != b {
					t.Fatalf("%s, delay %d, frame %d: outputs differ", tc.name, delay, n)
				}
				if okg {
					digits = append(digits, dg)
				}
			}
			if delay == 2 {
				t.Logf("%s: digits %q, %d of %d windows analysed in full", tc.name, digits, gated.det.analysed, full.det.analysed)
			}
		}
	}
}

// TestGateSkipsOrdinaryAudio: silence and line noise get no spectral
// analysis at all, and speech very little of it.
func TestGateSkipsOrdinaryAudio(t *testing.T) {
	s, _ := speech(t)
	tests := []struct {
		name  string
		x     []int16
		gated float64 // most windows passing the energy gate, as a share
		exact float64 // most windows analysed exactly, as a share
	}{
		{"silence", make([]int16, 10*sampleRate), 0, 0},
		{"noise -60 dBm0", lineNoise(10*sampleRate, -60), 0, 0},
		{"noise -50 dBm0", lineNoise(10*sampleRate, -50), 0, 0},
		{"speech", s, 0.9, 0.05},
		{"speech 12 dB down", scaled(s, 0.25), 0.8, 0.05},
	}
	for _, tc := range tests {
		d := NewDetector()
		for i := 0; i+pcm.FrameSamples <= len(tc.x); i += pcm.FrameSamples {
			d.Process((*pcm.Frame)(tc.x[i : i+pcm.FrameSamples]))
		}
		windows := float64(d.nChunks - winChunks + 1)
		g, e := float64(d.gated)/windows, float64(d.analysed)/windows
		t.Logf("%s: %.1f%% of windows pass the energy gate, %.1f%% analysed exactly", tc.name, 100*g, 100*e)
		if g > tc.gated || e > tc.exact {
			t.Errorf("%s: %.3f of windows pass the energy gate (want at most %g), %.3f analysed exactly (want at most %g)", tc.name, g, tc.gated, e, tc.exact)
		}
	}
}
