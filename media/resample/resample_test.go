package resample

import (
	"errors"
	"math"
	"testing"
)

// tone is seconds of a sine of freq Hz at rate, peak amp.
func tone(rate int, freq, amp float64, seconds float64) []int16 {
	out := make([]int16, int(float64(rate)*seconds))
	for i := range out {
		out[i] = int16(math.Round(amp * math.Sin(2*math.Pi*freq*float64(i)/float64(rate))))
	}
	return out
}

// rmsDB is the RMS level of x in dB relative to a sine of peak 32767,
// leaving out the first and last tenth (the filter's edges).
func rmsDB(x []int16) float64 {
	x = x[len(x)/10 : len(x)-len(x)/10]
	var sum float64
	for _, s := range x {
		sum += float64(s) * float64(s)
	}
	p := sum / float64(len(x)) / (32767.0 * 32767.0 / 2)
	return 10 * math.Log10(max(p, 1e-20))
}

// The rates a person's recorder produces: a 1 kHz tone keeps its level
// within 0.5 dB, a 4.5 kHz one (which would fold to 3.5 kHz) is at least
// 50 dB down, and the output is as long as the input.
func TestTo8k(t *testing.T) {
	for _, rate := range []int{8000, 16000, 22050, 32000, 44100, 48000} {
		r, err := New(rate, 8000)
		if err != nil {
			t.Fatalf("%d: %v", rate, err)
		}
		in := tone(rate, 1000, 10000, 1)
		out := r.Convert(in)
		if want := 8000; len(out) != want {
			t.Errorf("%d Hz: %d samples out of 1 s, want %d", rate, len(out), want)
		}
		if d := rmsDB(out) - rmsDB(in); math.Abs(d) > 0.5 {
			t.Errorf("%d Hz: 1 kHz tone changed by %.2f dB, want within 0.5", rate, d)
		}
		// In the passband the shape is kept, not only the level: compare
		// with the tone made at 8 kHz directly.
		want := tone(8000, 1000, 10000, 1)
		var errSum, sigSum float64
		for i := 800; i < 7200; i++ {
			e := float64(out[i]) - float64(want[i])
			errSum += e * e
			sigSum += float64(want[i]) * float64(want[i])
		}
		if snr := 10 * math.Log10(sigSum/errSum); snr < 40 {
			t.Errorf("%d Hz: 1 kHz tone differs from the ideal by SNR %.1f dB, want at least 40", rate, snr)
		}
		if rate == 8000 {
			continue
		}
		high := r.Convert(tone(rate, 4500, 10000, 1))
		if d := rmsDB(high) - rmsDB(tone(rate, 4500, 10000, 1)); d > -50 {
			t.Errorf("%d Hz: 4.5 kHz tone only %.1f dB down, want at least 50", rate, -d)
		} else {
			t.Logf("%d Hz: 4.5 kHz tone %.1f dB down", rate, -d)
		}
	}
}

func TestIdentityCopies(t *testing.T) {
	r, err := New(8000, 8000)
	if err != nil {
		t.Fatal(err)
	}
	in := []int16{1, -2, 3}
	out := r.Convert(in)
	out[0] = 9
	if in[0] != 1 || len(out) != 3 || out[1] != -2 {
		t.Fatalf("identity did not return a copy: in %v out %v", in, out)
	}
}

func TestEdges(t *testing.T) {
	r, err := New(44100, 8000)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 5, 6, 1000} {
		if got, want := len(r.Convert(make([]int16, n))), r.OutLen(n); got != want {
			t.Errorf("%d in: %d out, want %d", n, got, want)
		}
	}
	// Full-scale square waves saturate rather than wrap.
	in := make([]int16, 4410)
	for i := range in {
		in[i] = 32767
		if i/20%2 == 1 {
			in[i] = -32768
		}
	}
	// The filtered wave overshoots full scale at each edge (Gibbs): with
	// wrapping, those samples would flip sign. Away from the edges every
	// sample keeps the square wave's sign, and the peaks reach the rails.
	peak := 0
	for i, s := range r.Convert(in) {
		peak = max(peak, abs(int(s)))
		k := i * 44100 / 8000 % 40 // where in the square wave's period
		switch {
		case i < 10 || i > 790:
		case k >= 5 && k < 15 && s <= 0, k >= 25 && k < 35 && s >= 0:
			t.Fatalf("sample %d is %d, against the square wave's sign: wrapped", i, s)
		}
	}
	if peak < 32767 {
		t.Errorf("the full-scale square wave peaks at %d, want the rails", peak)
	}
}

func TestBadRates(t *testing.T) {
	for _, c := range [][2]int{{0, 8000}, {8000, -1}, {44101, 8000}} {
		if _, err := New(c[0], c[1]); !errors.Is(err, ErrRate) {
			t.Errorf("New(%d, %d) = %v, want ErrRate", c[0], c[1], err)
		}
	}
}

// Ten seconds at 44.1 kHz: about 18 ms on the project's machine, so a
// ten-minute reading converts in about a second at load.
func BenchmarkConvert44k(b *testing.B) {
	r, err := New(44100, 8000)
	if err != nil {
		b.Fatal(err)
	}
	in := tone(44100, 1000, 10000, 10)
	b.SetBytes(int64(2 * len(in)))
	for b.Loop() {
		r.Convert(in)
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
