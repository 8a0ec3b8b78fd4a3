package level

import (
	"math"
	"slices"
	"testing"

	"github.com/groupbridge/groupbridge/media/pcm"
	"github.com/groupbridge/groupbridge/media/tone"
)

func TestTalkerHysteresis(t *testing.T) {
	tests := []struct {
		name    string
		cfg     TalkerConfig
		segs    []segment
		changes []int // frame indices where changed must be reported, alternately on and off
	}{
		{"silence never talks", TalkerConfig{}, []segment{quiet(100)}, nil},
		{"tone at -30 starts after OnFrames", TalkerConfig{}, []segment{quiet(5), toneSeg(-30, 20)}, []int{5 + 2}},
		{"drop to -60 stops after OffFrames", TalkerConfig{},
			[]segment{toneSeg(-30, 20), toneSeg(-60, 40)}, []int{2, 20 + 24}},
		{"drop to silence stops after OffFrames", TalkerConfig{},
			[]segment{toneSeg(-30, 20), quiet(40)}, []int{2, 20 + 24}},
		{"between thresholds keeps talking", TalkerConfig{},
			[]segment{toneSeg(-30, 10), toneSeg(-45, 200), toneSeg(-60, 30)}, []int{2, 210 + 24}},
		{"between thresholds keeps silent", TalkerConfig{},
			[]segment{quiet(10), toneSeg(-45, 200), toneSeg(-41, 200)}, nil},
		{"exactly at the on threshold counts", TalkerConfig{},
			[]segment{toneSeg(-39.9, 3)}, []int{2}},
		{"white noise at -55 is not talk", TalkerConfig{}, []segment{noiseSeg(-55, 500)}, nil},
		{"noise at -55 after talk ends the talkspurt", TalkerConfig{},
			[]segment{toneSeg(-25, 10), noiseSeg(-55, 100)}, []int{2, 10 + 24}},
		{"noise at -30 is talk (level, not stationarity)", TalkerConfig{},
			[]segment{noiseSeg(-30, 10)}, []int{2}},
		{"interrupted onset restarts the count", TalkerConfig{},
			[]segment{toneSeg(-30, 2), toneSeg(-60, 1), toneSeg(-30, 2), toneSeg(-45, 1), toneSeg(-30, 3)},
			[]int{6 + 2}},
		{"interrupted silence restarts the count", TalkerConfig{},
			[]segment{toneSeg(-30, 10), quiet(24), toneSeg(-45, 1), quiet(24), toneSeg(-30, 1), quiet(25)},
			[]int{2, 10 + 24 + 1 + 24 + 1 + 24}},
		{"tone bursts shorter than OnFrames are ignored", TalkerConfig{},
			[]segment{toneSeg(-20, 2), quiet(5), toneSeg(-20, 2), quiet(5), toneSeg(-20, 2)}, nil},
		{"custom thresholds and counts",
			TalkerConfig{OnDBFS: -30, OffDBFS: -35, OnFrames: 1, OffFrames: 2},
			[]segment{toneSeg(-33, 5), toneSeg(-25, 3), toneSeg(-33, 5), toneSeg(-40, 3)},
			[]int{5, 13 + 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tk := NewTalker(tc.cfg)
			var got []int
			prev := false
			for i, f := range render(tc.segs...) {
				talking, changed := tk.Process(&f)
				if changed != (talking != prev) {
					t.Fatalf("frame %d: talking %v after %v but changed=%v", i, talking, prev, changed)
				}
				if tk.Talking() != talking {
					t.Fatalf("frame %d: Talking()=%v, Process said %v", i, tk.Talking(), talking)
				}
				if changed {
					got = append(got, i)
				}
				prev = talking
			}
			if !slices.Equal(got, tc.changes) {
				t.Errorf("changes at frames %v, want %v", got, tc.changes)
			}
		})
	}
}

func TestTalkerNilFrameIsSilence(t *testing.T) {
	tk := NewTalker(TalkerConfig{})
	on := render(toneSeg(-20, 3))
	for i := range on {
		tk.Process(&on[i])
	}
	if !tk.Talking() {
		t.Fatal("not talking after 3 loud frames")
	}
	for i := range DefaultOffFrames - 1 {
		if _, changed := tk.Process(nil); changed {
			t.Fatalf("stopped after %d missing frames, want %d", i+1, DefaultOffFrames)
		}
	}
	if talking, changed := tk.Process(nil); talking || !changed {
		t.Fatalf("after %d missing frames talking=%v changed=%v", DefaultOffFrames, talking, changed)
	}
}

func TestTalkerConfigDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   TalkerConfig
		want TalkerConfig
	}{
		{"zero", TalkerConfig{}, TalkerConfig{-40, -50, 3, 25}},
		{"kept", TalkerConfig{-35, -45, 2, 10}, TalkerConfig{-35, -45, 2, 10}},
		{"crossed thresholds collapse", TalkerConfig{OnDBFS: -55}, TalkerConfig{-55, -55, 3, 25}},
		{"negative counts", TalkerConfig{OnFrames: -1, OffFrames: -7}, TalkerConfig{-40, -50, 3, 25}},
		{"NaN and Inf", TalkerConfig{OnDBFS: math.NaN(), OffDBFS: math.Inf(-1)}, TalkerConfig{-40, -50, 3, 25}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.in.withDefaults(); got != tc.want {
				t.Errorf("withDefaults(%+v) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestTalkerLevel(t *testing.T) {
	tests := []struct {
		name       string
		segs       []segment
		want, tolr float64
	}{
		{"steady -30 tone", []segment{toneSeg(-30, 50)}, -30, 0.1},
		{"steady -12 tone", []segment{toneSeg(-12, 50)}, -12, 0.1},
		{"noise at -55", []segment{noiseSeg(-55, 100)}, -55, 0.5},
		{"rises within a few frames", []segment{quiet(50), toneSeg(-20, 6)}, -20, 1},
		{"falls slowly after talk", []segment{toneSeg(-20, 50), quiet(15)}, -20 - 10*math.Log10(math.E), 0.3},
		{"long silence reads the floor", []segment{toneSeg(-20, 5), quiet(3000)}, FloorDBFS, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tk := NewTalker(TalkerConfig{})
			if got := tk.LevelDBFS(); got != FloorDBFS {
				t.Fatalf("fresh talker level %v, want %v", got, FloorDBFS)
			}
			for _, f := range render(tc.segs...) {
				tk.Process(&f)
			}
			if got := tk.LevelDBFS(); math.Abs(got-tc.want) > tc.tolr {
				t.Errorf("LevelDBFS = %.2f, want %.2f ± %.2f", got, tc.want, tc.tolr)
			}
		})
	}
}

// TestTalkerLevelRanksTalkers checks what LevelDBFS is for: with several
// callers the louder one ranks higher, and one who stopped sinks below one
// who is still talking quietly within two seconds.
func TestTalkerLevelRanksTalkers(t *testing.T) {
	loud, soft, stopped := NewTalker(TalkerConfig{}), NewTalker(TalkerConfig{}), NewTalker(TalkerConfig{})
	l, s, x := render(toneSeg(-15, 140)), render(toneSeg(-28, 140)), render(toneSeg(-10, 40), quiet(100))
	for i := range l {
		loud.Process(&l[i])
		soft.Process(&s[i])
		stopped.Process(&x[i])
	}
	if !(loud.LevelDBFS() > soft.LevelDBFS() && soft.LevelDBFS() > stopped.LevelDBFS()) {
		t.Errorf("levels loud %.1f, soft %.1f, stopped %.1f: want that order",
			loud.LevelDBFS(), soft.LevelDBFS(), stopped.LevelDBFS())
	}
}

func TestTalkerLeavesFrameAlone(t *testing.T) {
	f := render(noiseSeg(-20, 1))[0]
	orig := f
	NewTalker(TalkerConfig{}).Process(&f)
	if f != orig {
		t.Fatal("Process modified the frame")
	}
}

// framePower must agree with media/tone's independent RMS measurement.
func TestFramePowerMatchesTone(t *testing.T) {
	for _, f := range render(toneSeg(-3, 1), toneSeg(-37, 1), noiseSeg(-20, 1), quiet(1)) {
		got, want := powerToDB(framePower(&f)), tone.RMSDBFS(f[:])
		if math.Abs(got-want) > 1e-6 {
			t.Errorf("framePower %.6f dB, tone.RMSDBFS %.6f dB", got, want)
		}
	}
	var full pcm.Frame
	for i := range full {
		full[i] = -32768
	}
	if got := powerToDB(framePower(&full)); math.Abs(got-3.01) > 0.01 {
		t.Errorf("full-scale square reads %.3f dBFS, want +3.01", got)
	}
}
