package level

import (
	"math"
	"testing"

	"github.com/groupbridge/groupbridge/media/pcm"
)

// cosFrames renders n frames of a cosine with the given peak amplitude. A
// cosine starts at its peak, and at frequencies that do not divide the frame
// evenly the frame edges fall at every phase, so gate transitions are tested
// where a hard switch clicks loudest.
func cosFrames(hz, amp float64, n int) []pcm.Frame {
	out := make([]pcm.Frame, n)
	for k := range out {
		for i := range out[k] {
			t := float64(k*pcm.FrameSamples+i) / pcm.SampleRate
			out[k][i] = pcm.Round(amp * math.Cos(2*math.Pi*hz*t))
		}
	}
	return out
}

// pattern turns "0011" into per-frame talking states.
func pattern(p string) []bool {
	out := make([]bool, len(p))
	for i, c := range p {
		out[i] = c == '1'
	}
	return out
}

func TestGateNoClicks(t *testing.T) {
	tests := []struct {
		name    string
		hz, amp float64
		talking string
	}{
		{"200 Hz loud, one talkspurt", 200, 20000, "000111111111100000000000"},
		{"330 Hz, short spurt", 330, 12000, "0001000000000"},
		{"73 Hz near full scale", 73, 32000, "0011111000000000000111100000000"},
		{"150 Hz, flapping talker", 150, 10000, "0101010101100110011110000010000000"},
		{"450 Hz, reopen during fade-out", 450, 16000, "0111111111111111111110000001000000000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			talking := pattern(tc.talking)
			in := cosFrames(tc.hz, tc.amp, len(talking))
			out := make([]pcm.Frame, len(in))
			copy(out, in)
			g := NewGate()
			for i := range out {
				open := g.Process(&out[i], talking[i])
				if !open && out[i] != (pcm.Frame{}) {
					t.Fatalf("frame %d: closed but not silent", i)
				}
				if talking[i] && !open {
					t.Fatalf("frame %d: talking but closed", i)
				}
			}
			// The signal's own largest step, plus what a fade of at least
			// 5 ms (40 samples) can add to it, plus rounding.
			natural := maxStep(flatten(in))
			bound := natural + int(tc.amp/40) + 2
			if got := maxStep(flatten(out)); got > bound {
				t.Errorf("largest sample step %d, bound %d (signal's own %d)", got, bound, natural)
			}
			// The bound must mean something: the same gate without fades
			// (open while talking or holding, else zero) must break it.
			hard := make([]pcm.Frame, len(in))
			hold := 0
			for i := range in {
				if talking[i] {
					hold = GateHoldFrames + 1
				}
				if hold > 0 {
					hard[i] = in[i]
					hold--
				}
			}
			if got := maxStep(flatten(hard)); got <= bound {
				t.Fatalf("test signal too gentle: a hard switch steps %d, within bound %d", got, bound)
			}
		})
	}
}

func TestGateTimeline(t *testing.T) {
	const pre, talk = 3, 10
	talking := pattern("000" + "1111111111" + "000000000000000000000")
	in := cosFrames(330, 8000, len(talking))
	g := NewGate()
	for i := range in {
		f := in[i]
		open := g.Process(&f, talking[i])
		switch {
		case i < pre: // starts closed
			if open || f != (pcm.Frame{}) {
				t.Fatalf("frame %d: open=%v before any talk", i, open)
			}
		case i == pre: // linear fade-in over the first GateFadeInSamples
			if !open {
				t.Fatalf("frame %d: closed on first talking frame", i)
			}
			for j := range f {
				w := min(float64(j+1)/GateFadeInSamples, 1)
				if want := pcm.Round(float64(in[i][j]) * w); f[j] != want {
					t.Fatalf("frame %d sample %d: %d, want %d", i, j, f[j], want)
				}
			}
		case i < pre+talk+GateHoldFrames: // open and hold pass bit-exact
			if !open || f != in[i] {
				t.Fatalf("frame %d: open=%v, frame altered=%v; want untouched", i, open, f != in[i])
			}
		case i == pre+talk+GateHoldFrames: // fade-out ends at zero
			if !open {
				t.Fatalf("frame %d: closed without fading", i)
			}
			for j := range f {
				w := float64(pcm.FrameSamples-1-j) / GateFadeOutSamples
				if want := pcm.Round(float64(in[i][j]) * w); f[j] != want {
					t.Fatalf("frame %d sample %d: %d, want %d", i, j, f[j], want)
				}
			}
		default:
			if open || f != (pcm.Frame{}) {
				t.Fatalf("frame %d: open=%v after the hold and fade", i, open)
			}
		}
	}
}

// TestGateWithTalker runs the gate from a real Talker: an open line with only
// background noise is gated to exact silence, and after a talkspurt it closes
// once the Talker's hangover, the hold and the fade have passed.
func TestGateWithTalker(t *testing.T) {
	tests := []struct {
		name string
		segs []segment
		// closedFrom is the first frame from which every frame must be
		// closed and silent.
		closedFrom int
		// someOpen: at least one frame must pass.
		someOpen bool
	}{
		{"noise at -55 only", []segment{noiseSeg(-55, 300)}, 0, false},
		{"noise at -45 only (between thresholds)", []segment{noiseSeg(-45, 300)}, 0, false},
		{"silence only", []segment{quiet(50)}, 0, false},
		{"talk then noise at -55", []segment{toneSeg(-20, 20), noiseSeg(-55, 200)},
			20 + DefaultOffFrames + GateHoldFrames, true},
		{"noise under talk", []segment{noiseSeg(-55, 30), toneSeg(-25, 20), noiseSeg(-60, 200)},
			50 + DefaultOffFrames + GateHoldFrames, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tk, g := NewTalker(TalkerConfig{}), NewGate()
			opened := false
			for i, f := range render(tc.segs...) {
				talking, _ := tk.Process(&f)
				open := g.Process(&f, talking)
				opened = opened || open
				if i >= tc.closedFrom && (open || f != (pcm.Frame{})) {
					t.Fatalf("frame %d: open=%v, want closed and silent from frame %d", i, open, tc.closedFrom)
				}
			}
			if opened != tc.someOpen {
				t.Errorf("gate opened=%v, want %v", opened, tc.someOpen)
			}
		})
	}
}
