package level

import (
	"math"
	"slices"
	"testing"

	"github.com/groupbridge/groupbridge/media/pcm"
	"github.com/groupbridge/groupbridge/media/tone"
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

// pattern turns "00o11" into per-frame Voices: 0 Quiet, o Onset, 1
// Talkspurt.
func pattern(p string) []Voice {
	out := make([]Voice, len(p))
	for i, c := range p {
		switch c {
		case 'o':
			out[i] = Onset
		case '1':
			out[i] = Talkspurt
		}
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
		{"250 Hz, onsets that never become talk", 250, 14000, "000o000oo0000ooo0o0o00000"},
		{"110 Hz, onset into talk", 110, 20000, "0000oo111111110000000000"},
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
				if talking[i] != Quiet && !open {
					t.Fatalf("frame %d: %v but closed", i, talking[i])
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
				if talking[i] == Talkspurt {
					hold = GateHoldFrames + 1
				}
				if hold > 0 || talking[i] == Onset {
					hard[i] = in[i]
				}
				hold = max(hold-1, 0)
			}
			if got := maxStep(flatten(hard)); got <= bound {
				t.Fatalf("test signal too gentle: a hard switch steps %d, within bound %d", got, bound)
			}
		})
	}
}

// TestGateTimeline opens the gate on a signal already under way (a 250 Hz
// cosine whose sample before the opening frame is near its peak), the case
// that needs the full fade-in; TestGateOpensAfterSilenceUntouched has the
// case without.
func TestGateTimeline(t *testing.T) {
	const pre, talk = 3, 10
	talking := pattern("000" + "1111111111" + "000000000000000000000")
	in := cosFrames(250, 8000, len(talking))
	if held := in[pre-1][pcm.FrameSamples-1]; held < GateFadeInSamples*gateSlope {
		t.Fatalf("held-back sample %d too quiet for a full fade-in", held)
	}
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
				tk.Process(&f)
				open := g.Process(&f, tk.Voice())
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

// TestGateOnsetNotCut is the test of a word's start: a burst that begins
// after silence or line noise passes from its first sample at full level
// and bit-exact, in the frame that holds its first sample and every frame
// after, although the Talker confirms the talkspurt only on its third loud
// frame or never (a burst shorter than that). Before the fix, the gate
// opened on the confirmation with a 10 ms fade: 25-38 ms of every burst
// were lost on the wire (issue 11, section 8).
func TestGateOnsetNotCut(t *testing.T) {
	const pre = 10 // frames of background before the burst's frame
	tests := []struct {
		name       string
		background segment
		burst      []segment
		offset     int // the burst's first sample within frame pre
		samples    int // the burst's length if shorter than its segments
	}{
		{"tone -20 at the frame's start after silence", quiet(40), []segment{toneSeg(-20, 10)}, 0, 0},
		{"tone -20 mid-frame after silence", quiet(40), []segment{toneSeg(-20, 10)}, 80, 0},
		{"tone -20 in the frame's last 10 samples", quiet(40), []segment{toneSeg(-20, 10)}, 150, 0},
		{"whispered -35 after silence", quiet(40), []segment{toneSeg(-35, 10)}, 40, 0},
		{"noise burst -25 over line noise at -55", noiseSeg(-55, 40), []segment{noiseSeg(-25, 10)}, 20, 0},
		{"tone -20 over line noise at -48", noiseSeg(-48, 40), []segment{toneSeg(-20, 10)}, 60, 0},
		{"30 ms word, never a talkspurt", quiet(40), []segment{toneSeg(-20, 2)}, 80, 240},
		{"quieter second frame (consonant, then vowel)", quiet(40),
			[]segment{toneSeg(-30, 1), toneSeg(-45, 1), toneSeg(-30, 6)}, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := render(tc.background)
			burst := flatten(render(tc.burst...))
			if tc.samples > 0 {
				burst = burst[:tc.samples]
			}
			start := pre*pcm.FrameSamples + tc.offset
			end := start + len(burst)
			for i, s := range burst {
				k := start + i
				f := &in[k/pcm.FrameSamples]
				f[k%pcm.FrameSamples] = pcm.Clamp(int32(f[k%pcm.FrameSamples]) + int32(s))
			}
			if tone.RMSDBFS(in[pre][:]) < DefaultOnDBFS {
				t.Fatalf("test burst too short to be heard in its first frame: %.1f dBFS", tone.RMSDBFS(in[pre][:]))
			}
			tk, g := NewTalker(TalkerConfig{}), NewGate()
			out := make([]pcm.Frame, len(in))
			copy(out, in)
			for i := range out {
				tk.Process(&out[i])
				open := g.Process(&out[i], tk.Voice())
				if i < pre && open {
					t.Fatalf("frame %d: open before the burst", i)
				}
				if i >= pre && i*pcm.FrameSamples < end && !open {
					t.Fatalf("frame %d: closed during the burst [%d, %d)", i, start, end)
				}
			}
			got, want := flatten(out)[start:end], flatten(in)[start:end]
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("burst sample %d (%.1f ms in): %d, want %d: the onset is cut or faded",
						i, float64(i)/8, got[i], want[i])
				}
			}
		})
	}
}

// TestGateOnsetsDoNotHoldOpen: what opens the gate without becoming a
// talkspurt (a click, a bump on the line) passes for its own frame, the
// frames above the off threshold just after it (at most OnFrames-1) and a
// fade-out frame, and the gate is closed and silent again after that. The
// Talker never calls it talk.
func TestGateOnsetsDoNotHoldOpen(t *testing.T) {
	click := noiseSeg(-10, 1)
	tests := []struct {
		name string
		segs []segment
		open []int // exactly the frames that may carry sound
	}{
		{"clicks in silence", []segment{quiet(10), click, quiet(20), click, quiet(10)}, []int{10, 11, 31, 32}},
		{"clicks on a line with noise at -55", []segment{noiseSeg(-55, 10), click, noiseSeg(-55, 20), click, noiseSeg(-55, 10)},
			[]int{10, 11, 31, 32}},
		{"clicks on a line with noise at -45 (between thresholds)",
			[]segment{noiseSeg(-45, 10), click, noiseSeg(-45, 20), click, noiseSeg(-45, 10)},
			[]int{10, 11, 12, 13, 31, 32, 33, 34}},
		{"two-frame burst", []segment{quiet(10), noiseSeg(-20, 2), quiet(20)}, []int{10, 11, 12}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tk, g := NewTalker(TalkerConfig{}), NewGate()
			var got []int
			for i, f := range render(tc.segs...) {
				if talking, _ := tk.Process(&f); talking {
					t.Fatalf("frame %d: a click counted as talk", i)
				}
				if open := g.Process(&f, tk.Voice()); open {
					got = append(got, i)
				} else if f != (pcm.Frame{}) {
					t.Fatalf("frame %d: closed but not silent", i)
				}
			}
			if !slices.Equal(got, tc.open) {
				t.Errorf("open in frames %v, want %v", got, tc.open)
			}
		})
	}
}

// TestGateSkip: a frame the room did not mix (muted, not among the loudest)
// closes the gate at once, and the next opening fades in if the signal was
// under way, instead of switching a loud signal on mid-waveform.
func TestGateSkip(t *testing.T) {
	in := cosFrames(250, 8000, 4)
	g := NewGate()
	f := in[0]
	g.Process(&f, Talkspurt) // open after the fade-in
	f = in[1]
	if !g.Process(&f, Talkspurt) || f != in[1] {
		t.Fatal("gate not fully open while talking")
	}
	g.Skip(&in[2]) // not mixed this frame
	f = in[3]
	g.Process(&f, Talkspurt)
	if f[0] == in[3][0] || f[GateFadeInSamples] != in[3][GateFadeInSamples] {
		t.Errorf("after a skipped frame: first sample %d (input %d), want a fade-in; sample %d %d, want %d",
			f[0], in[3][0], GateFadeInSamples, f[GateFadeInSamples], in[3][GateFadeInSamples])
	}
	g.Skip(nil) // no packet: nothing was under way
	f = in[3]
	g.Process(&f, Onset)
	if f != in[3] {
		t.Error("after a frame without audio the gate faded in; want the frame untouched")
	}
}
