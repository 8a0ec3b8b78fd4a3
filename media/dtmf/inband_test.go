package dtmf

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/pcm"
	"github.com/groupbridge/groupbridge/media/tone"
)

// Test signals are built in float64 at 8 kHz and rounded to int16 once.
// Levels are per tone in dBm0, 0 dBm0 being 3.14 dB below a full-scale
// sine (G.711).

const sampleRate = pcm.SampleRate

// amplitude returns the peak of a sine at dBm0.
func amplitude(dBm0 float64) float64 { return 32767 * math.Pow(10, (dBm0+refDBFS)/20) }

// rowCol returns the row and column frequencies of a digit.
func rowCol(digit byte) (row, col float64) {
	i := strings.IndexByte(keypad, digit)
	return toneHz[i/4], toneHz[4+i%4]
}

// keyTone describes one dual tone added to a signal.
type keyTone struct {
	digit          byte
	at, n          int     // first sample and length in samples
	rowDB, colDB   float64 // level of each tone, dBm0
	rowDev, colDev float64 // relative frequency offsets
}

// add mixes the tone into x. Phases differ per tone so that no test
// depends on both tones starting at a zero crossing.
func (k keyTone) add(x []float64) {
	fr, fc := rowCol(k.digit)
	fr *= 1 + k.rowDev
	fc *= 1 + k.colDev
	ar, ac := amplitude(k.rowDB), amplitude(k.colDB)
	for i := range k.n {
		t := float64(i) / sampleRate
		x[k.at+i] += ar*math.Sin(2*math.Pi*fr*t+0.7) + ac*math.Sin(2*math.Pi*fc*t+2.1)
	}
}

// press is a plain key tone at -10 dBm0 per tone.
func press(digit byte, at, ms int) keyTone {
	return keyTone{digit: digit, at: at, n: ms * sampleRate / 1000, rowDB: -10, colDB: -10}
}

// signal returns ms of silence with the tones mixed in.
func signal(ms int, tones ...keyTone) []float64 {
	x := make([]float64, ms*sampleRate/1000)
	for _, k := range tones {
		k.add(x)
	}
	return x
}

// quantise rounds x to int16 samples, padded with silence to whole frames.
func quantise(x []float64) []int16 {
	n := (len(x) + pcm.FrameSamples - 1) / pcm.FrameSamples * pcm.FrameSamples
	out := make([]int16, n)
	for i, v := range x {
		out[i] = pcm.Clamp(int32(math.Round(v)))
	}
	return out
}

// detect feeds samples (whole frames) to a new Detector and returns the
// digits it reported, in order.
func detect(samples []int16) string {
	d := NewDetector()
	var got []byte
	for i := 0; i+pcm.FrameSamples <= len(samples); i += pcm.FrameSamples {
		if digit, ok := d.Process((*pcm.Frame)(samples[i : i+pcm.FrameSamples])); ok {
			got = append(got, digit)
		}
	}
	return string(got)
}

func detectF(x []float64) string { return detect(quantise(x)) }

// toneDB is the level of the hz component of x in dBFS.
func toneDB(x []int16, hz float64) float64 { return tone.LevelDBFS(x, hz) }

func TestDetectsEveryDigit(t *testing.T) {
	for _, digit := range []byte(keypad) {
		x := signal(300, press(digit, 400, 100))
		if got := detectF(x); got != string(digit) {
			t.Errorf("digit %c: detected %q", digit, got)
		}
	}
}

// TestFrequencyTolerance: Q.24 asks to accept both tones off by up to
// ±1.5% and to reject ±3.5%, in every combination of directions.
func TestFrequencyTolerance(t *testing.T) {
	tests := []struct {
		dev    float64
		accept bool
	}{
		{0.015, true},
		{0.035, false},
		{0.05, false},
	}
	for _, tc := range tests {
		for _, signs := range [][2]float64{{1, 1}, {-1, -1}, {1, -1}, {-1, 1}} {
			for _, digit := range []byte(keypad) {
				for _, level := range []float64{-10, -25} {
					k := press(digit, 333, 100)
					k.rowDB, k.colDB = level, level
					k.rowDev, k.colDev = signs[0]*tc.dev, signs[1]*tc.dev
					got := detectF(signal(300, k))
					want := ""
					if tc.accept {
						want = string(digit)
					}
					if got != want {
						t.Errorf("digit %c at %g dBm0, row %+.1f%% col %+.1f%%: got %q, want %q",
							digit, level, 100*k.rowDev, 100*k.colDev, got, want)
					}
				}
			}
		}
	}
	// Only one tone off frequency is as bad as both.
	for _, digit := range []byte(keypad) {
		for _, dev := range [][2]float64{{0.035, 0}, {-0.035, 0}, {0, 0.035}, {0, -0.035}} {
			k := press(digit, 333, 100)
			k.rowDev, k.colDev = dev[0], dev[1]
			if got := detectF(signal(300, k)); got != "" {
				t.Errorf("digit %c, row %+.1f%% col %+.1f%%: detected %q", digit, 100*dev[0], 100*dev[1], got)
			}
		}
	}
}

// TestTwist: the column may be up to 8 dB weaker than the row (normal
// twist) or 4 dB stronger (reverse twist); 10 dB either way is refused.
func TestTwist(t *testing.T) {
	tests := []struct {
		name         string
		rowDB, colDB float64
		accept       bool
	}{
		{"normal 8 dB", -10, -18, true},
		{"reverse 4 dB", -14, -10, true},
		{"normal 8 dB, weaker tone at -25 dBm0", -17, -25, true},
		{"reverse 4 dB, weaker tone at -25 dBm0", -25, -21, true},
		{"normal 10 dB", -10, -20, false},
		{"reverse 10 dB", -20, -10, false},
		{"reverse 8 dB", -18, -10, false},
	}
	for _, tc := range tests {
		for _, digit := range []byte(keypad) {
			k := press(digit, 250, 100)
			k.rowDB, k.colDB = tc.rowDB, tc.colDB
			got := detectF(signal(300, k))
			if want := map[bool]string{true: string(digit)}[tc.accept]; got != want {
				t.Errorf("%s, digit %c: got %q, want %q", tc.name, digit, got, want)
			}
		}
	}
}

// TestLevel: each tone at -25 dBm0 is accepted, at -35 dBm0 and below
// refused; loud tones (-3 dBm0 each: the pair peaks just under full
// scale) are accepted.
func TestLevel(t *testing.T) {
	tests := []struct {
		level  float64
		accept bool
	}{
		{-3, true}, {-25, true}, {-28, true}, {-35, false}, {-40, false}, {-60, false},
	}
	for _, tc := range tests {
		for _, digit := range []byte(keypad) {
			k := press(digit, 100, 100)
			k.rowDB, k.colDB = tc.level, tc.level
			got := detectF(signal(300, k))
			if want := map[bool]string{true: string(digit)}[tc.accept]; got != want {
				t.Errorf("digit %c at %g dBm0: got %q, want %q", digit, tc.level, got, want)
			}
		}
	}
}

// TestDuration: a 40 ms tone is caught wherever it starts in the 20 ms
// frame grid, a tone of 23 ms or less never, at high and at low level.
func TestDuration(t *testing.T) {
	tests := []struct {
		ms     float64
		accept bool
	}{
		{40, true}, {23, false}, {20, false}, {10, false},
	}
	// Every offset in the frame for a few digits, every digit at offsets
	// that fall differently on the 2.5 ms analysis grid.
	type place struct {
		digit  byte
		offset int
	}
	var places []place
	for _, digit := range []byte("1*D#") {
		for offset := range pcm.FrameSamples {
			places = append(places, place{digit, offset})
		}
	}
	for _, digit := range []byte(keypad) {
		for offset := 3; offset < pcm.FrameSamples; offset += 29 {
			places = append(places, place{digit, offset})
		}
	}
	for _, tc := range tests {
		for _, level := range []float64{-3, -25} {
			misses := 0
			for _, pl := range places {
				digit, offset := pl.digit, pl.offset
				{
					k := keyTone{digit: digit, at: 480 + offset, n: int(tc.ms * sampleRate / 1000), rowDB: level, colDB: level}
					got := detectF(signal(200, k))
					if (got == string(digit)) != tc.accept || (!tc.accept && got != "") {
						misses++
						if misses <= 5 {
							t.Errorf("%g ms of %c at %g dBm0 starting %d samples into a frame: detected %q",
								tc.ms, digit, level, offset, got)
						}
					}
				}
			}
			if misses > 5 {
				t.Errorf("%g ms at %g dBm0: %d wrong results in all", tc.ms, level, misses)
			}
		}
	}
}

// TestOncePerPress: a press is reported once however long, again only
// after a real pause; a 10 ms interruption is not a pause.
func TestOncePerPress(t *testing.T) {
	tests := []struct {
		name  string
		tones []keyTone
		want  string
	}{
		{"two-second press", []keyTone{press('5', 200, 2000)}, "5"},
		{"same key after 40 ms pause", []keyTone{press('5', 200, 60), press('5', 200+800, 60)}, "55"},
		{"same key after 100 ms pause", []keyTone{press('9', 200, 100), press('9', 200+1600, 100)}, "99"},
		{"10 ms interruption", []keyTone{press('5', 200, 60), press('5', 200+480+80, 60)}, "5"},
		{"10 ms interruption of a quiet tone", []keyTone{quiet(press('5', 200, 60)), quiet(press('5', 200+480+80, 60))}, "5"},
		{"10 ms of another key in a press", []keyTone{press('5', 200, 60), press('9', 680, 10), press('5', 200+480+80, 60)}, "5"},
		{"5 ms interruption in a long press", []keyTone{press('#', 200, 500), press('#', 200+4000+40, 500)}, "#"},
		{"another key after 40 ms pause", []keyTone{press('1', 200, 60), press('2', 200+800, 60)}, "12"},
		{"PIN with 50 ms tones and 50 ms pauses", pin("4419#", 400, 50, 50), "4419#"},
		{"star codes at phone speed", pin("*6*9*2", 400, 100, 80), "*6*9*2"},
	}
	for _, tc := range tests {
		x := signal(4000, tc.tones...)
		if got := detectF(x); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

// quiet moves a tone to the weakest accepted level, where the fewest
// windows around an interruption still pass.
func quiet(k keyTone) keyTone {
	k.rowDB, k.colDB = -28, -28
	return k
}

// pin returns tones for digits, each tone on ms and off gap ms.
func pin(digits string, at, on, gap int) []keyTone {
	var ks []keyTone
	for i := range len(digits) {
		ks = append(ks, press(digits[i], at+i*(on+gap)*sampleRate/1000, on))
	}
	return ks
}

// TestKeyChangeWithoutPause: a tone that turns straight into another key
// gives both digits (the second may be confirmed later than usual, never
// lost when it lasts a normal press) and neither twice.
func TestKeyChangeWithoutPause(t *testing.T) {
	x := signal(1000, press('1', 200, 100), press('2', 200+800, 100))
	if got := detectF(x); got != "12" {
		t.Errorf("1 then 2 without a pause: got %q", got)
	}
}

// noise is a deterministic white noise generator (xorshift64 with
// Box-Muller), so tests never flake.
type noise struct{ s uint64 }

func (n *noise) uniform() float64 {
	n.s ^= n.s << 13
	n.s ^= n.s >> 7
	n.s ^= n.s << 17
	return (float64(n.s>>11) + 0.5) / (1 << 53)
}

func (n *noise) gauss() float64 {
	return math.Sqrt(-2*math.Log(n.uniform())) * math.Cos(2*math.Pi*n.uniform())
}

// addNoise mixes white noise of the given power (dBm0) into x.
func addNoise(x []float64, dBm0 float64, seed uint64) {
	n := noise{seed}
	rms := amplitude(dBm0) / math.Sqrt2
	for i := range x {
		x[i] += rms * n.gauss()
	}
}

func TestNoiseAndCodecs(t *testing.T) {
	for _, digit := range []byte(keypad) {
		// Noise 15 dB below the pair (each tone -10 dBm0: pair -7 dBm0).
		x := signal(400, press(digit, 400, 60))
		addNoise(x, -22, uint64(digit))
		if got := detectF(x); got != string(digit) {
			t.Errorf("digit %c with noise 15 dB below: got %q", digit, got)
		}
		// G.711 both laws at the weakest accepted level.
		for _, law := range []g711.Codec{g711.PCMU, g711.PCMA} {
			k := press(digit, 400, 60)
			k.rowDB, k.colDB = -25, -25
			s := quantise(signal(400, k))
			enc := make([]byte, len(s))
			law.Encode(enc, s)
			law.Decode(s, enc)
			if got := detect(s); got != string(digit) {
				t.Errorf("digit %c at -25 dBm0 through %v: got %q", digit, law, got)
			}
		}
	}
	// Noise alone, loud or soft, gives nothing.
	for _, level := range []float64{-5, -20, -40} {
		x := make([]float64, 10*sampleRate)
		addNoise(x, level, 99)
		if got := detectF(x); got != "" {
			t.Errorf("white noise at %g dBm0: detected %q", level, got)
		}
	}
}

// TestRejectsNonKeySignals: talk-off by signals that are not speech.
func TestRejectsNonKeySignals(t *testing.T) {
	sines := func(ms int, dBm0 float64, hz ...float64) []float64 {
		x := make([]float64, ms*sampleRate/1000)
		for j, f := range hz {
			a := amplitude(dBm0)
			for i := range x {
				x[i] += a * math.Sin(2*math.Pi*f*float64(i)/sampleRate+float64(j))
			}
		}
		return x
	}
	type sig struct {
		name string
		x    []float64
	}
	var tests []sig
	for _, f := range toneHz {
		tests = append(tests, sig{fmt.Sprintf("pure %g Hz", f), sines(1000, -10, f)})
		tests = append(tests, sig{fmt.Sprintf("pure %g Hz with 2nd harmonic", f), sines(1000, -10, f, 2*f)})
	}
	// Two rows, two columns: never a key.
	tests = append(tests,
		sig{"two rows 697+941", sines(500, -10, 697, 941)},
		sig{"two columns 1209+1633", sines(500, -10, 1209, 1633)},
		sig{"three tones 770+1336+1477", sines(500, -10, 770, 1336, 1477)},
		sig{"key tone with a third tone 5 dB down", func() []float64 {
			x := signal(500, press('5', 0, 400))
			k := press('9', 0, 400) // 852 Hz (next to 770) and 1477 Hz
			k.rowDB, k.colDB = -15, -60
			k.add(x)
			return x
		}()},
		sig{"key tones with strong harmonics", func() []float64 {
			x := signal(500, press('1', 0, 400))
			y := sines(500, -14, 2*697, 2*1209)
			for i := range x {
				x[i] += y[i]
			}
			return x
		}()},
	)
	// Music-like chords: a major triad on every semitone from C4 to C6
	// with octave doublings, each held 300 ms.
	chords := []float64{}
	for n := range 25 {
		root := 261.63 * math.Pow(2, float64(n)/12)
		chords = append(chords, sines(300, -15, root, root*math.Pow(2, 4.0/12), root*math.Pow(2, 7.0/12), 2*root)...)
	}
	tests = append(tests, sig{"major triads C4-C6", chords})
	// Dyads at every pair of semitones between 600 and 1700 Hz, the range
	// of the keys, held 100 ms: intervals a melody can place on a row and
	// a column, though never both exactly (equal temperament misses the
	// Q.23 grid by more than the tolerance, except by chance).
	var dyads []float64
	var semis []float64
	for f := 600.0; f < 1700; f *= math.Pow(2, 1.0/12) {
		semis = append(semis, f)
	}
	var nearMiss []string
	for _, a := range semis {
		for _, b := range semis {
			if b <= a {
				continue
			}
			if isKeyPair(a, b, 0.025) {
				nearMiss = append(nearMiss, fmt.Sprintf("%.0f+%.0f", a, b))
				continue // a real key within tolerance: expected to be heard
			}
			dyads = append(dyads, sines(100, -12, a, b)...)
		}
	}
	t.Logf("dyads skipped as within 2.5%% of a key: %v", nearMiss)
	tests = append(tests, sig{"semitone dyads 600-1700 Hz", dyads})
	// Slow sweeps through the key band, single and in pairs whose ratio
	// no key has (1.2 is below 1209/941, 2.5 above 1633/697): a pair
	// with a key's ratio would, for a moment, be that key.
	for _, ratio := range []float64{1, 1.2, 2.5} {
		sweep := make([]float64, 4*sampleRate)
		var phase float64
		for i := range sweep {
			f := 600 + 1100*float64(i)/float64(len(sweep))
			phase += 2 * math.Pi * f / sampleRate
			sweep[i] = amplitude(-10) * (math.Sin(phase) + math.Sin(ratio*phase))
		}
		tests = append(tests, sig{fmt.Sprintf("sweep 600-1700 Hz with ratio %g", ratio), sweep})
	}

	for _, tc := range tests {
		d := NewDetector()
		s := quantise(tc.x)
		for i := 0; i < len(s); i += pcm.FrameSamples {
			if digit, ok := d.Process((*pcm.Frame)(s[i : i+pcm.FrameSamples])); ok {
				t.Errorf("%s: detected %c at %.2f s", tc.name, digit, float64(i)/sampleRate)
			}
			if d.ToneActive() {
				t.Errorf("%s: tone active at %.2f s", tc.name, float64(i)/sampleRate)
				break
			}
		}
	}
}

// isKeyPair reports whether a and b are a row and a column within dev.
func isKeyPair(a, b, dev float64) bool {
	near := func(f float64, set []float64) bool {
		for _, s := range set {
			if math.Abs(f/s-1) <= dev {
				return true
			}
		}
		return false
	}
	return near(a, toneHz[:4]) && near(b, toneHz[4:])
}

func TestToneActive(t *testing.T) {
	x := quantise(signal(600, press('7', 1000, 100))) // 125-225 ms
	d := NewDetector()
	var active []int
	for i := 0; i < len(x); i += pcm.FrameSamples {
		d.Process((*pcm.Frame)(x[i : i+pcm.FrameSamples]))
		if d.ToneActive() {
			active = append(active, i/pcm.FrameSamples)
		}
	}
	// Frames 6-11 hold the tone (samples 960-1919 cover 1000-1799).
	// Active from ~25 ms into the tone to its last frame.
	if len(active) == 0 || active[0] < 6 || active[0] > 8 || active[len(active)-1] != 11 {
		t.Errorf("ToneActive in frames %v, want from frame 6-8 to 11", active)
	}
	for i := 1; i < len(active); i++ {
		if active[i] != active[i-1]+1 {
			t.Errorf("ToneActive not contiguous: %v", active)
		}
	}
}

// filterRun passes x through a Filter frame by frame and returns the
// output and the digits.
func filterRun(delay int, x []int16) ([]int16, string) {
	fl := NewFilter(delay)
	out := make([]int16, len(x))
	var digits []byte
	for i := 0; i < len(x); i += pcm.FrameSamples {
		if digit, ok := fl.Process((*pcm.Frame)(x[i:i+pcm.FrameSamples]), (*pcm.Frame)(out[i:i+pcm.FrameSamples])); ok {
			digits = append(digits, digit)
		}
	}
	return out, string(digits)
}

// otherAudio is a stand-in for a caller's voice around key presses: a
// few partials that wander in frequency and level, plus noise, never a
// key pair.
func otherAudio(ms int, seed uint64) []float64 {
	x := make([]float64, ms*sampleRate/1000)
	n := noise{seed}
	var p1, p2, p3 float64
	for i := range x {
		t := float64(i) / sampleRate
		f0 := 180 + 40*math.Sin(2*math.Pi*1.3*t)
		p1 += 2 * math.Pi * f0 / sampleRate
		p2 += 2 * math.Pi * 2 * f0 / sampleRate
		p3 += 2 * math.Pi * 5 * f0 / sampleRate
		env := 0.6 + 0.4*math.Sin(2*math.Pi*3*t)
		x[i] = env*(amplitude(-18)*math.Sin(p1)+amplitude(-22)*math.Sin(p2)+amplitude(-30)*math.Sin(p3)) +
			amplitude(-45)*n.gauss()
	}
	return x
}

// TestFilter: the output is the input delayed, except the frames that
// held a key tone, which are silent from the tone's first sample to its
// last, so the tone is at least 30 dB down; the digit comes once.
func TestFilter(t *testing.T) {
	around := otherAudio(1000, 3)
	for _, delay := range []int{2, 3} {
		for _, ms := range []int{40, 60, 100} {
			for offset := 0; offset < pcm.FrameSamples; offset += 11 {
				for _, digit := range []byte("*60#") {
					start := 4000 + offset // 500 ms in, anywhere in a frame
					k := press(digit, start, ms)
					x := append([]float64(nil), around...)
					k.add(x)
					in := quantise(x)
					out, digits := filterRun(delay, in)
					name := fmt.Sprintf("delay %d, %c %d ms at +%d", delay, digit, ms, offset)
					if digits != string(digit) {
						t.Errorf("%s: digits %q", name, digits)
					}
					checkFiltered(t, name, in, out, delay, start, start+k.n, digit)
				}
			}
		}
	}
}

// checkFiltered checks that out is in delayed by delay frames, with every
// frame holding part of [from, to) silenced and no other frame changed,
// except that the frame before (after) the tone may be silenced when the
// tone starts (ends) within 2 ms of the frame boundary, inside the
// detector's margin.
func checkFiltered(t *testing.T, name string, in, out []int16, delay, from, to int, digit byte) {
	t.Helper()
	const slack = 16
	shift := delay * pcm.FrameSamples
	firstTone, lastTone := from/pcm.FrameSamples, (to-1)/pcm.FrameSamples
	for f := 0; (f+1)*pcm.FrameSamples+shift <= len(out); f++ {
		src := in[f*pcm.FrameSamples : (f+1)*pcm.FrameSamples]
		dst := out[f*pcm.FrameSamples+shift : (f+1)*pcm.FrameSamples+shift]
		silent := isSilent(dst)
		switch {
		case f >= firstTone && f <= lastTone:
			if !silent {
				t.Errorf("%s: frame %d holds the tone but was passed", name, f)
			}
		case silent && f == firstTone-1 && from-firstTone*pcm.FrameSamples < slack:
		case silent && f == lastTone+1 && (lastTone+1)*pcm.FrameSamples-to < slack:
		case silent:
			t.Errorf("%s: frame %d does not hold the tone (samples %d-%d) and was muted", name, f, from, to)
		case !equal(src, dst):
			t.Errorf("%s: frame %d changed", name, f)
		}
	}
	for i := range shift {
		if out[i] != 0 {
			t.Fatalf("%s: the first %d output samples are not silence", name, shift)
		}
	}
	// What the room hears of the tone: at least 30 dB down, measured
	// over the tone's span (delayed) against the input.
	fr, fc := rowCol(digit)
	span := out[from+shift : to+shift]
	orig := in[from:to]
	for _, f := range []float64{fr, fc} {
		if got, was := toneDB(span, f), toneDB(orig, f); got > was-30 {
			t.Errorf("%s: %g Hz is %.1f dBFS out, %.1f dBFS in", name, f, got, was)
		}
	}
}

func isSilent(x []int16) bool {
	for _, v := range x {
		if v != 0 {
			return false
		}
	}
	return true
}

func equal(a, b []int16) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}

func TestFilterInPlaceAndDelay(t *testing.T) {
	tests := []struct{ ask, want int }{{-1, 2}, {0, 2}, {1, 2}, {2, 2}, {3, 3}, {5, 5}, {9, 5}}
	for _, tc := range tests {
		if got := NewFilter(tc.ask).Delay(); got != tc.want {
			t.Errorf("NewFilter(%d).Delay() = %d, want %d", tc.ask, got, tc.want)
		}
	}
	// in and out the same frame: the output is still the delayed input.
	x := quantise(otherAudio(400, 1))
	want, _ := filterRun(3, x)
	fl := NewFilter(3)
	for i := 0; i < len(x); i += pcm.FrameSamples {
		var f pcm.Frame
		copy(f[:], x[i:])
		fl.Process(&f, &f)
		if !equal(f[:], want[i:i+pcm.FrameSamples]) {
			t.Fatalf("in-place frame %d differs", i/pcm.FrameSamples)
		}
	}
}

func TestProcessAllocatesNothing(t *testing.T) {
	x := quantise(signal(400, press('3', 300, 100)))
	d := NewDetector()
	fl := NewFilter(3)
	var out pcm.Frame
	i := 0
	n := testing.AllocsPerRun(200, func() {
		f := (*pcm.Frame)(x[i : i+pcm.FrameSamples])
		d.Process(f)
		fl.Process(f, &out)
		i = (i + pcm.FrameSamples) % len(x)
	})
	if n != 0 {
		t.Fatalf("Process allocates %.1f times per frame", n)
	}
}

func BenchmarkDetectorProcess(b *testing.B) {
	b.ReportAllocs()
	x := quantise(append(otherAudio(1000, 7), signal(400, press('3', 300, 100))...))
	d := NewDetector()
	i := 0
	for b.Loop() {
		d.Process((*pcm.Frame)(x[i : i+pcm.FrameSamples]))
		i = (i + pcm.FrameSamples) % len(x)
	}
}

func BenchmarkFilterProcess(b *testing.B) {
	b.ReportAllocs()
	x := quantise(append(otherAudio(1000, 7), signal(400, press('3', 300, 100))...))
	fl := NewFilter(3)
	var out pcm.Frame
	i := 0
	for b.Loop() {
		fl.Process((*pcm.Frame)(x[i:i+pcm.FrameSamples]), &out)
		i = (i + pcm.FrameSamples) % len(x)
	}
}

// FuzzDetector feeds arbitrary audio: no panic, only keypad digits, never
// two digits closer than a press can be, and ToneActive only with a
// candidate.
func FuzzDetector(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 2*pcm.FrameSamples))
	tonal := quantise(signal(200, press('8', 100, 80)))
	seed := make([]byte, 2*len(tonal))
	for i, v := range tonal {
		seed[2*i], seed[2*i+1] = byte(v), byte(uint16(v)>>8)
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, b []byte) {
		d := NewDetector()
		fl := NewFilter(2)
		var frame, out pcm.Frame
		last := -100
		for n := 0; len(b) > 0; n++ {
			for i := range frame {
				frame[i] = 0
				if len(b) >= 2 {
					frame[i] = int16(uint16(b[0]) | uint16(b[1])<<8)
					b = b[2:]
				} else if len(b) == 1 {
					b = b[1:]
				}
			}
			digit, ok := d.Process(&frame)
			fdigit, fok := fl.Process(&frame, &out)
			if ok != fok || digit != fdigit {
				t.Fatalf("frame %d: Detector %c %v, Filter %c %v", n, digit, ok, fdigit, fok)
			}
			if !ok {
				continue
			}
			if strings.IndexByte(keypad, digit) < 0 {
				t.Fatalf("frame %d: digit %q", n, digit)
			}
			if n-last < 2 {
				t.Fatalf("digits in frames %d and %d", last, n)
			}
			last = n
		}
	})
}
