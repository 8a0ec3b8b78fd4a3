package level

import (
	"fmt"
	"math"
	"testing"

	"github.com/groupbridge/groupbridge/media/pcm"
	"github.com/groupbridge/groupbridge/media/tone"
)

const secondFrames = framesPerSecond // frames in a second, for readable tables

// run passes frames through Talker and AGC (as the room will) and returns
// the output and the gain after every frame.
func run(a *AGC, frames []pcm.Frame) (out []pcm.Frame, gains []float64) {
	tk := NewTalker(TalkerConfig{})
	out = make([]pcm.Frame, len(frames))
	copy(out, frames)
	gains = make([]float64, len(frames))
	for i := range out {
		talking, _ := tk.Process(&out[i])
		a.Process(&out[i], talking)
		gains[i] = a.GainDB()
	}
	return out, gains
}

func TestAGCConverges(t *testing.T) {
	tests := []struct {
		name string
		segs []segment
		// within: by this frame the output must be within ±6 dB of the
		// target and stay there.
		within int
		// final is the expected steady output level: the input level plus
		// the gain the bounds allow.
		final float64
	}{
		{"whisperer at -35", []segment{toneSeg(-35, 6*secondFrames)}, 3 * secondFrames, -35 + 12},
		{"quiet at -30", []segment{toneSeg(-30, 6*secondFrames)}, 2 * secondFrames, -30 + 10},
		{"normal at -20", []segment{toneSeg(-20, 6*secondFrames)}, 0, -20},
		{"loud at -10", []segment{toneSeg(-10, 6*secondFrames)}, secondFrames / 2, -10 - 10},
		{"shouter at -5", []segment{toneSeg(-5, 6*secondFrames)}, secondFrames, -5 - 12},
		{"whisperer in bursts with pauses", []segment{
			toneSeg(-35, 50), quiet(30), toneSeg(-35, 50), noiseSeg(-60, 30), toneSeg(-35, 50), quiet(30),
			toneSeg(-35, 50), quiet(30), toneSeg(-35, 100),
		}, 4 * secondFrames, -35 + 12},
		{"whisperer in noise", []segment{
			noiseSeg(-60, secondFrames), toneSeg(-35, 6*secondFrames),
		}, 4 * secondFrames, -35 + 12},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := render(tc.segs...)
			out, gains := run(NewAGC(AGCConfig{}), in)
			for i := range out {
				if gains[i] > DefaultMaxGainDB || gains[i] < DefaultMinGainDB {
					t.Fatalf("frame %d: gain %.2f dB outside bounds", i, gains[i])
				}
				if i < tc.within || tone.RMSDBFS(in[i][:]) < DefaultOffDBFS {
					continue // not yet due, or a pause: nothing to level
				}
				if lvl := tone.RMSDBFS(out[i][:]); math.Abs(lvl-DefaultTargetDBFS) > 6 {
					t.Fatalf("frame %d (%.2f s): output %.1f dBFS, more than 6 dB off target (gain %.1f dB)",
						i, float64(i)/secondFrames, lvl, gains[i])
				}
			}
			last := flatten(out[len(out)-secondFrames/2:])
			if lvl := tone.RMSDBFS(last); math.Abs(lvl-tc.final) > 0.5 {
				t.Errorf("settled output %.2f dBFS, want %.2f (gain %.2f dB)", lvl, tc.final, gains[len(gains)-1])
			}
		})
	}
}

// TestAGCRisesSlowlyFallsFast checks the asymmetry: after a level step the
// gain covers half the way down much faster than half the way up.
func TestAGCRisesSlowlyFallsFast(t *testing.T) {
	halfway := func(from, to float64) int {
		_, gains := run(NewAGC(AGCConfig{}), render(toneSeg(from, 10*secondFrames), toneSeg(to, 10*secondFrames)))
		start := gains[10*secondFrames-1]
		goal := min(max(DefaultTargetDBFS-to, DefaultMinGainDB), DefaultMaxGainDB)
		for i := 10 * secondFrames; i < len(gains); i++ {
			if math.Abs(gains[i]-goal) <= math.Abs(start-goal)/2 {
				return i - 10*secondFrames
			}
		}
		t.Fatalf("%v → %v dBFS: gain never got halfway from %.1f to %.1f", from, to, start, goal)
		return 0
	}
	up, down := halfway(-20, -30), halfway(-30, -20)
	if down*3 > up {
		t.Errorf("halfway in %d frames rising, %d falling: want falling at least 3× faster", up, down)
	}
	if up < secondFrames/2 {
		t.Errorf("gain rose halfway in %d frames: not a slow attack", up)
	}
}

func TestAGCBounds(t *testing.T) {
	tests := []struct {
		name     string
		cfg      AGCConfig
		dBFS     float64
		wantGain float64
	}{
		{"very quiet pins at max", AGCConfig{}, -60, DefaultMaxGainDB},
		{"full scale pins at min", AGCConfig{}, 0, DefaultMinGainDB},
		{"custom max", AGCConfig{TargetDBFS: -25, MaxGainDB: 6, MinGainDB: -3}, -45, 6},
		{"custom min", AGCConfig{TargetDBFS: -25, MaxGainDB: 6, MinGainDB: -3}, -10, -3},
		{"custom in range", AGCConfig{TargetDBFS: -25, MaxGainDB: 6, MinGainDB: -3}, -27, 2},
		{"swapped bounds", AGCConfig{MaxGainDB: -6, MinGainDB: 3}, -40, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := NewAGC(tc.cfg)
			cfg := tc.cfg.withDefaults()
			for _, f := range render(toneSeg(tc.dBFS, 15*secondFrames)) {
				a.Process(&f, true) // talking throughout, whatever the level
				if g := a.GainDB(); g > cfg.MaxGainDB || g < cfg.MinGainDB {
					t.Fatalf("gain %.3f dB outside [%v, %v]", g, cfg.MinGainDB, cfg.MaxGainDB)
				}
			}
			if g := a.GainDB(); math.Abs(g-tc.wantGain) > 0.05 {
				t.Errorf("gain %.3f dB, want %.3f", g, tc.wantGain)
			}
		})
	}
}

// TestAGCDoesNotPumpNoise: in the pauses the gain holds, whether the Talker
// has stopped or is still in its hangover.
func TestAGCDoesNotPumpNoise(t *testing.T) {
	tests := []struct {
		name    string
		before  []segment // sets the gain
		pause   []segment
		talking bool // what the pause is called: hangover is still "talking"
	}{
		{"noise after speech", []segment{toneSeg(-30, 5*secondFrames)}, []segment{noiseSeg(-55, 10*secondFrames)}, false},
		{"silence after speech", []segment{toneSeg(-30, 5*secondFrames)}, []segment{quiet(10 * secondFrames)}, false},
		{"noise in hangover", []segment{toneSeg(-30, 15*secondFrames)}, []segment{noiseSeg(-55, 2*secondFrames)}, true},
		{"noise after shouting", []segment{toneSeg(-8, 5*secondFrames)}, []segment{noiseSeg(-50, 10*secondFrames)}, false},
		{"noise before anyone spoke", nil, []segment{noiseSeg(-45, 10*secondFrames)}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := NewAGC(AGCConfig{})
			for _, f := range render(tc.before...) {
				a.Process(&f, true)
			}
			held := a.GainDB()
			for _, f := range render(tc.pause...) {
				a.Process(&f, tc.talking)
				// Converged before the pause, so no change is allowed
				// beyond float rounding of an exponential approach.
				if g := a.GainDB(); math.Abs(g-held) > 0.001 {
					t.Fatalf("gain moved from %.3f to %.3f dB in a pause", held, g)
				}
			}
		})
	}
}

func TestAGCUntouchedAtUnityGain(t *testing.T) {
	// Before anyone talks the gain is 0 dB and audio under the limiter's
	// knee passes bit-exact.
	in := render(noiseSeg(-30, 50), toneSeg(-8, 50))
	a := NewAGC(AGCConfig{})
	for i, f := range in {
		a.Process(&f, false)
		if f != in[i] {
			t.Fatalf("frame %d altered at unity gain", i)
		}
	}
}

func TestAGCNoZipperNoise(t *testing.T) {
	// A constant input makes any per-frame gain step visible as a jump
	// between two samples; interpolated gain moves by a fraction of a
	// sample value per sample instead.
	var dc pcm.Frame
	for i := range dc {
		dc[i] = 1000
	}
	a := NewAGC(AGCConfig{})
	prev := dc[0]
	for k := range 3 * secondFrames {
		f := dc
		a.Process(&f, true)
		for i, s := range f {
			if d := int(s) - int(prev); d > 1 || d < -1 {
				t.Fatalf("frame %d sample %d: step %d → %d (gain %.2f dB)", k, i, prev, s, a.GainDB())
			}
			prev = s
		}
	}
	if a.GainDB() < 5 {
		t.Fatalf("gain only reached %.2f dB: the test did not exercise a rising gain", a.GainDB())
	}
}

func TestAGCNeverClips(t *testing.T) {
	square := make([]pcm.Frame, secondFrames)
	impulses := make([]pcm.Frame, secondFrames)
	for k := range square {
		for i := range square[k] {
			square[k][i] = 32767
			if (i/20)%2 == 1 {
				square[k][i] = -32768
			}
		}
		impulses[k][k%pcm.FrameSamples] = 32767
		impulses[k][(k+80)%pcm.FrameSamples] = -32768
	}
	bursts := []struct {
		name   string
		frames []pcm.Frame
	}{
		{"0 dBFS 1 kHz sine", render(toneSeg(0, secondFrames))},
		{"0 dBFS 100 Hz sine", render(segment{sine, 0, 100, secondFrames})},
		{"+6 dBFS clipped 300 Hz sine", render(segment{sine, 6, 300, secondFrames})},
		{"full-scale square", square},
		{"full-scale noise", render(noiseSeg(-3, secondFrames))},
		{"isolated full-scale impulses", impulses},
	}
	limits := []float64{0, -3, -6} // 0 means the default, -1 dBFS
	for _, lim := range limits {
		for _, b := range bursts {
			t.Run(fmt.Sprintf("%s, limiter %v", b.name, lim), func(t *testing.T) {
				a := NewAGC(AGCConfig{LimiterDBFS: lim})
				// A whisperer first, so the burst meets the maximum gain.
				run(a, render(toneSeg(-35, 5*secondFrames)))
				if g := a.GainDB(); g < DefaultMaxGainDB-1 {
					t.Fatalf("gain before the burst %.1f dB, want near the maximum", g)
				}
				out, _ := run(a, b.frames)
				ceilDB := AGCConfig{LimiterDBFS: lim}.withDefaults().LimiterDBFS
				ceiling := int(32767 * math.Pow(10, ceilDB/20))
				peak := 0
				for _, s := range flatten(out) {
					peak = max(peak, int(s), -int(s))
				}
				if peak > ceiling {
					t.Errorf("peak %d above ceiling %d", peak, ceiling)
				}
				if peak < ceiling*8/10 {
					t.Errorf("peak %d, far below ceiling %d: over-limited", peak, ceiling)
				}
			})
		}
	}
}

// TestAGCTransparent: a voice at a normal level leaves the AGC and limiter
// at the same level and undistorted.
func TestAGCTransparent(t *testing.T) {
	tests := []struct {
		name string
		cfg  AGCConfig
		in   segment
		// out is the expected settled level, maxTHD the ceiling on
		// everything but the fundamental, relative to the total.
		out, maxTHD float64
	}{
		{"-20 dBFS 1 kHz at target", AGCConfig{}, toneSeg(-20, 8*secondFrames), -20, -60},
		{"-20 dBFS 300 Hz at target", AGCConfig{}, segment{sine, -20, 300, 8 * secondFrames}, -20, -60},
		// Long enough for the gain to stop moving: a gain still creeping
		// toward its goal is slow amplitude modulation, which the THD+N
		// figure would count.
		{"-26 dBFS raised 6 dB", AGCConfig{}, segment{sine, -26, 440, 20 * secondFrames}, -20, -60},
		{"-14 dBFS lowered 6 dB", AGCConfig{}, segment{sine, -14, 700, 8 * secondFrames}, -20, -60},
		// A louder target puts the sine's peaks 1 dB under the knee:
		// still untouched.
		{"-6 dBFS target under the knee", AGCConfig{TargetDBFS: -6}, toneSeg(-6, 8*secondFrames), -6, -60},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, _ := run(NewAGC(tc.cfg), render(tc.in))
			last := flatten(out[len(out)-2*secondFrames:])
			if lvl := tone.RMSDBFS(last); math.Abs(lvl-tc.out) > 0.5 {
				t.Errorf("output %.2f dBFS, want %.2f ± 0.5", lvl, tc.out)
			}
			if fund := tone.LevelDBFS(last, tc.in.hz); math.Abs(fund-tc.out) > 0.5 {
				t.Errorf("fundamental %.2f dBFS, want %.2f ± 0.5", fund, tc.out)
			}
			if thd := thdDB(last, tc.in.hz); thd > tc.maxTHD {
				t.Errorf("THD+N %.1f dB, want below %.1f", thd, tc.maxTHD)
			}
		})
	}
}

// TestLimiterDistortion drives a sine into the limiter at a fixed gain: the
// peak stays under the ceiling and the long release keeps the gain steady
// within each waveform, so the result is a quieter sine, not a clipped one.
func TestLimiterDistortion(t *testing.T) {
	tests := []struct {
		name   string
		dBFS   float64 // input; a fixed +6 dB gain follows
		hz     float64
		maxTHD float64
	}{
		{"2 dB over the ceiling at 1 kHz", -3, 1000, -50},
		{"2 dB over the ceiling at 300 Hz", -3, 300, -40},
		{"7 dB over the ceiling at 1 kHz", 0, 1000, -40},
		{"7 dB over the ceiling at 150 Hz", 0, 150, -30},
		{"just over the knee", -9, 500, -50},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := NewAGC(AGCConfig{MaxGainDB: 6, MinGainDB: 6})
			out, _ := run(a, render(segment{sine, tc.dBFS, tc.hz, 2 * secondFrames}))
			last := flatten(out[len(out)-secondFrames:])
			ceiling := int(32767 * math.Pow(10, DefaultLimiterDBFS/20))
			peak := 0
			for _, s := range flatten(out) {
				peak = max(peak, int(s), -int(s))
			}
			if peak > ceiling {
				t.Errorf("peak %d over ceiling %d", peak, ceiling)
			}
			thd := thdDB(last, tc.hz)
			if thd > tc.maxTHD {
				t.Errorf("THD+N %.1f dB, want below %.1f", thd, tc.maxTHD)
			}
			t.Logf("peak %d of %d, THD+N %.1f dB", peak, ceiling, thd)
			// Where a hard clipper at the same ceiling would act, it must
			// do worse, or the bound proves nothing.
			if tc.dBFS+6 <= DefaultLimiterDBFS {
				return
			}
			clipped := flatten(render(segment{sine, tc.dBFS + 6, tc.hz, secondFrames}))
			for i, s := range clipped {
				clipped[i] = int16(min(max(int(s), -ceiling), ceiling))
			}
			if c := thdDB(clipped, tc.hz); c <= tc.maxTHD {
				t.Fatalf("a hard clipper reaches %.1f dB, within the bound %.1f", c, tc.maxTHD)
			}
		})
	}
}

func TestAGCConfigDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   AGCConfig
		want AGCConfig
	}{
		{"zero", AGCConfig{}, AGCConfig{-20, 12, -12, -1}},
		{"kept", AGCConfig{-18, 9, -6, -2}, AGCConfig{-18, 9, -6, -2}},
		{"swapped", AGCConfig{MaxGainDB: -3, MinGainDB: 4}, AGCConfig{-20, 4, -3, -1}},
		{"ceiling above full scale", AGCConfig{LimiterDBFS: 3}, AGCConfig{-20, 12, -12, 0}},
		{"ceiling near zero", AGCConfig{LimiterDBFS: -400}, AGCConfig{-20, 12, -12, -40}},
		{"absurd gains", AGCConfig{MaxGainDB: 500, MinGainDB: -200}, AGCConfig{-20, 60, -60, -1}},
		{"NaN and Inf", AGCConfig{math.NaN(), math.Inf(1), math.Inf(-1), math.NaN()}, AGCConfig{-20, 12, -12, -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.in.withDefaults(); got != tc.want {
				t.Errorf("withDefaults(%+v) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}
