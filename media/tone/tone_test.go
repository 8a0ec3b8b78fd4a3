package tone

import (
	"math"
	"testing"

	"github.com/groupbridge/groupbridge/media/pcm"
)

// window400 is the 400 ms analysis window the end-to-end tests use.
const window400 = 400 * pcm.SampleRate / 1000

func sine(freq, dBFS float64, n int) []int16 {
	buf := make([]int16, n)
	NewSine(freq, dBFS).Read(buf)
	return buf
}

func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

func TestSineLevelAndFrequency(t *testing.T) {
	tests := []struct {
		freq, dBFS float64
		absent     float64 // a frequency that must measure < -50 dBFS
	}{
		{440, -10, 1000},
		{1000, -20, 440},
		{697, -6, 1209}, // a DTMF row and column
		{3400, 0, 300},  // top and bottom of the telephone band
		{123.4, -30, 2000},
	}
	for _, tc := range tests {
		buf := sine(tc.freq, tc.dBFS, window400)
		if got := LevelDBFS(buf, tc.freq); !near(got, tc.dBFS, 0.5) {
			t.Errorf("%g Hz at %g dBFS: LevelDBFS = %.3f", tc.freq, tc.dBFS, got)
		}
		if got := RMSDBFS(buf); !near(got, tc.dBFS, 0.5) {
			t.Errorf("%g Hz at %g dBFS: RMSDBFS = %.3f", tc.freq, tc.dBFS, got)
		}
		if got := LevelDBFS(buf, tc.absent); got > tc.dBFS-50 {
			t.Errorf("%g Hz at %g dBFS: %g Hz component = %.1f dBFS, want < %g", tc.freq, tc.dBFS, tc.absent, got, tc.dBFS-50)
		}
		// The peak tells the amplitude independently of the analysis code.
		var peak int
		for _, s := range buf {
			peak = max(peak, abs(int(s)))
		}
		wantPeak := FullScale * math.Pow(10, tc.dBFS/20)
		if !near(float64(peak), wantPeak, wantPeak*0.002+1) {
			t.Errorf("%g Hz at %g dBFS: peak %d, want %.0f", tc.freq, tc.dBFS, peak, wantPeak)
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// TestSineMatchesMathSin checks the table synthesiser against math.Sin
// sample by sample: at most one LSB apart after rounding.
func TestSineMatchesMathSin(t *testing.T) {
	for _, freq := range []float64{440, 1000, 2999.5, 3999} {
		buf := sine(freq, 0, 4000)
		for i, got := range buf {
			want := FullScale * math.Sin(2*math.Pi*freq*float64(i)/pcm.SampleRate)
			if math.Abs(float64(got)-want) > 1.0 {
				t.Fatalf("%g Hz sample %d = %d, math.Sin gives %.2f", freq, i, got, want)
			}
		}
	}
}

// TestSineContinuity checks that cutting a tone into frames or odd-sized
// reads gives exactly the samples of one long read: no seam at frame edges.
func TestSineContinuity(t *testing.T) {
	const n = 50 * pcm.FrameSamples
	want := sine(523.25, -12, n)

	s := NewSine(523.25, -12)
	var f pcm.Frame
	for i := 0; i < n; i += pcm.FrameSamples {
		s.Fill(&f)
		for j, v := range f {
			if want[i+j] != v {
				t.Fatalf("Fill: sample %d = %d, want %d", i+j, v, want[i+j])
			}
		}
	}

	s = NewSine(523.25, -12)
	got := make([]int16, n)
	for i, size := 0, 1; i < n; size = size%37 + 1 {
		end := min(i+size, n)
		if r := s.Read(got[i:end]); r != end-i {
			t.Fatalf("Read returned %d, want %d", r, end-i)
		}
		i = end
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("odd-sized Read: sample %d = %d, want %d", i, got[i], want[i])
		}
	}
}

func TestSineMixMakesDualTone(t *testing.T) {
	buf := make([]int16, window400)
	NewSine(770, -10).Mix(buf)
	NewSine(1336, -10).Mix(buf)
	for _, f := range []float64{770, 1336} {
		if got := LevelDBFS(buf, f); !near(got, -10, 0.5) {
			t.Errorf("dual tone: %g Hz = %.2f dBFS, want -10", f, got)
		}
	}
	// Mix saturates rather than wrapping: two full-scale tones must not
	// produce a sign flip where their peaks coincide.
	loud := make([]int16, 8)
	for i := range loud {
		loud[i] = 32000
	}
	s := NewSine(2000, 0) // samples 0, +FS, 0, -FS, ...
	s.Mix(loud)
	if loud[1] != 32767 {
		t.Errorf("Mix overflow: got %d, want 32767", loud[1])
	}
}

func TestSineDegenerateInputs(t *testing.T) {
	tests := []struct {
		name       string
		freq, dBFS float64
		silent     bool
	}{
		{"nan level", 440, math.NaN(), true},
		{"-inf level", 440, math.Inf(-1), true},
		{"nan freq", math.NaN(), 0, true},
		{"inf freq", math.Inf(1), 0, true},
		{"zero freq", 0, 0, true},
		{"+inf level saturates", 440, math.Inf(1), false},
		{"huge freq wraps", 8000*1e12 + 440, -10, false},
		{"negative freq", -440, -10, false},
	}
	for _, tc := range tests {
		buf := sine(tc.freq, tc.dBFS, window400)
		rms := RMSDBFS(buf)
		if tc.silent && rms != FloorDBFS {
			t.Errorf("%s: RMS %.1f dBFS, want silence", tc.name, rms)
		}
		if !tc.silent && rms < -11 {
			t.Errorf("%s: RMS %.1f dBFS, want a tone", tc.name, rms)
		}
	}
	if got := LevelDBFS(sine(-440, -10, window400), 440); !near(got, -10, 0.5) {
		t.Errorf("negative frequency measures %.2f dBFS at 440 Hz, want -10", got)
	}
}

func TestGoertzelNormalisation(t *testing.T) {
	tests := []struct {
		name    string
		samples []int16
		freq    float64
		want    float64
		tol     float64
	}{
		{"full scale", sine(1000, 0, window400), 1000, 1.0, 0.001},
		{"-10 dBFS", sine(440, -10, window400), 440, 0.1, 0.001},
		{"-10 dBFS off-bin window", sine(440, -10, 205), 440, 0.1, 0.005},
		{"silence", make([]int16, window400), 440, 0, 0},
		{"empty", nil, 440, 0, 0},
	}
	for _, tc := range tests {
		if got := Goertzel(tc.samples, tc.freq); !near(got, tc.want, tc.tol) {
			t.Errorf("%s: Goertzel = %.5f, want %.5f±%g", tc.name, got, tc.want, tc.tol)
		}
	}
}

func TestLevelOfMixture(t *testing.T) {
	buf := make([]int16, window400)
	NewSine(440, -10).Mix(buf)
	NewSine(1000, -20).Mix(buf)
	NewSine(2500, -35).Mix(buf)
	tests := []struct {
		freq, want float64
	}{
		{440, -10}, {1000, -20}, {2500, -35},
	}
	for _, tc := range tests {
		if got := LevelDBFS(buf, tc.freq); !near(got, tc.want, 0.5) {
			t.Errorf("mixture: %g Hz = %.2f dBFS, want %g", tc.freq, got, tc.want)
		}
	}
	if got := LevelDBFS(buf, 1700); got > -50 {
		t.Errorf("mixture: absent 1700 Hz = %.1f dBFS, want < -50", got)
	}
	// Uncorrelated tones add in power.
	wantRMS := 10 * math.Log10(math.Pow(10, -1)+math.Pow(10, -2)+math.Pow(10, -3.5))
	if got := RMSDBFS(buf); !near(got, wantRMS, 0.1) {
		t.Errorf("mixture RMS = %.3f dBFS, want %.3f", got, wantRMS)
	}
}

func TestSilenceAndFloor(t *testing.T) {
	silence := make([]int16, window400)
	for _, tc := range []struct {
		name string
		got  float64
	}{
		{"LevelDBFS(silence)", LevelDBFS(silence, 440)},
		{"LevelDBFS(nil)", LevelDBFS(nil, 440)},
		{"RMSDBFS(silence)", RMSDBFS(silence)},
		{"RMSDBFS(nil)", RMSDBFS(nil)},
	} {
		if tc.got != FloorDBFS {
			t.Errorf("%s = %g, want %g", tc.name, tc.got, FloorDBFS)
		}
	}
	// One LSB of DC is above the floor but far below any tone.
	dc := make([]int16, window400)
	for i := range dc {
		dc[i] = 1
	}
	if got := RMSDBFS(dc); got < -100 || got > -80 {
		t.Errorf("RMSDBFS(1 LSB DC) = %.1f, want about -87", got)
	}
	// A full-scale square wave reads +3 dBFS under the sine reference.
	sq := make([]int16, window400)
	for i := range sq {
		sq[i] = FullScale
		if i%2 == 1 {
			sq[i] = -FullScale
		}
	}
	if got := RMSDBFS(sq); !near(got, 3.01, 0.05) {
		t.Errorf("RMSDBFS(full-scale square) = %.3f, want +3.01", got)
	}
}

func TestChimes(t *testing.T) {
	tests := []struct {
		name        string
		chime       func() []int16
		first, last float64 // dominant frequency early and late; equal for the struck-together chime
	}{
		{"Chime", Chime, 0, 0},
		{"JoinChime", JoinChime, chimeLow, chimeHigh},
		{"LeaveChime", LeaveChime, chimeHigh, chimeLow},
	}
	for _, tc := range tests {
		c := tc.chime()
		if len(c) != ChimeSamples || cap(c) != len(c) {
			t.Fatalf("%s: len %d cap %d, want %d", tc.name, len(c), cap(c), ChimeSamples)
		}
		if again := tc.chime(); &again[0] != &c[0] {
			t.Errorf("%s: not cached, second call returned a new slice", tc.name)
		}
		var peak int
		for _, s := range c {
			peak = max(peak, abs(int(s)))
		}
		if got := 20 * math.Log10(float64(peak)/FullScale); !near(got, ChimeDBFS, 0.1) {
			t.Errorf("%s: peak %.2f dBFS, want %g", tc.name, got, ChimeDBFS)
		}
		// No click: it starts and ends on zero, and its first millisecond is
		// still far below the peak (a hard onset would be at peak at once).
		if c[0] != 0 || c[len(c)-1] != 0 {
			t.Errorf("%s: starts at %d, ends at %d; want 0 and 0", tc.name, c[0], c[len(c)-1])
		}
		for i, s := range c[:8] {
			if abs(int(s)) > peak/20 {
				t.Errorf("%s: sample %d = %d in the first ms, attack too hard (peak %d)", tc.name, i, s, peak)
			}
		}
		// Decays: the last 50 ms is much quieter than the first 150 ms.
		if head, tail := RMSDBFS(c[:1200]), RMSDBFS(c[len(c)-400:]); tail > head-15 {
			t.Errorf("%s: tail %.1f dBFS vs head %.1f dBFS, not decaying", tc.name, tail, head)
		}
		if tc.first == 0 {
			if l, h := LevelDBFS(c, chimeLow), LevelDBFS(c, chimeHigh); !near(l, h, 1) {
				t.Errorf("%s: partials unbalanced: %g Hz %.1f dBFS, %g Hz %.1f dBFS", tc.name, chimeLow, l, chimeHigh, h)
			}
			continue
		}
		early, late := c[:1000], c[1200:2400] // 0-125 ms and 150-300 ms
		if LevelDBFS(early, tc.first) < LevelDBFS(early, tc.last)+10 {
			t.Errorf("%s: first 125 ms not dominated by %g Hz", tc.name, tc.first)
		}
		if LevelDBFS(late, tc.last) < LevelDBFS(late, tc.first)+6 {
			t.Errorf("%s: 150-300 ms not dominated by %g Hz", tc.name, tc.last)
		}
	}
}

func TestSineAllocatesNothing(t *testing.T) {
	s := NewSine(440, -10)
	var f pcm.Frame
	if n := testing.AllocsPerRun(100, func() { s.Fill(&f); s.Mix(f[:]) }); n != 0 {
		t.Fatalf("Fill+Mix allocate %.0f times per call", n)
	}
}

func BenchmarkSineFill(b *testing.B) {
	b.ReportAllocs()
	s := NewSine(440, -10)
	var f pcm.Frame
	for b.Loop() {
		s.Fill(&f)
	}
}

func BenchmarkGoertzel205(b *testing.B) {
	b.ReportAllocs()
	buf := sine(697, -10, 205)
	for b.Loop() {
		Goertzel(buf, 697)
	}
}

// A tone whose phase jumps half-way (a received stream with one frame
// lost) reads far below its level in one Goertzel sum over the window;
// in blocks it reads its level, and blocks keep tones apart.
func TestBlockLevelDBFS(t *testing.T) {
	const n = 16000 // 2 s
	jumped := make([]int16, n)
	NewSine(1000, -20).Mix(jumped)
	for i := n / 2; i < n; i++ {
		jumped[i] = -jumped[i] // half a cycle's phase step
	}
	clean := make([]int16, n)
	NewSine(1000, -20).Mix(clean)
	NewSine(440, -20).Mix(clean)
	tests := []struct {
		name    string
		samples []int16
		freq    float64
		block   int
		lo, hi  float64
	}{
		{"clean, blocks", clean, 1000, 800, -20.5, -19.5},
		{"clean, other tone, blocks", clean, 440, 800, -20.5, -19.5},
		{"absent tone, blocks", clean, 1700, 800, -150, -50},
		{"phase jump, blocks", jumped, 1000, 800, -21, -19.5},
		{"short window measured whole", clean[:400], 1000, 800, -21, -19},
		{"no block size: whole window", clean, 1000, 0, -20.5, -19.5},
		{"silence", make([]int16, n), 1000, 800, -150, -150},
	}
	for _, tc := range tests {
		if got := BlockLevelDBFS(tc.samples, tc.freq, tc.block); got < tc.lo || got > tc.hi {
			t.Errorf("%s: %.2f dBFS, want %g..%g", tc.name, got, tc.lo, tc.hi)
		}
	}
	// The failure it avoids: the same jump in one sum over the window.
	if got := LevelDBFS(jumped, 1000); got > -23 {
		t.Errorf("one sum over a phase jump reads %.2f dBFS; the test's jump is too small to show the point", got)
	}
}
