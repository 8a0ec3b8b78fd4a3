package level

import (
	"math"
	"testing"
)

func toneClip(freq, amp float64, n int) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(math.Round(amp * math.Sin(2*math.Pi*freq*float64(i)/8000)))
	}
	return out
}

func rmsDBFS(x []int16) float64 {
	var sum float64
	for _, s := range x {
		sum += float64(s) * float64(s)
	}
	return 10 * math.Log10(sum/float64(len(x))/sineRefPower)
}

func TestNormalize(t *testing.T) {
	// A tone with long silences between its bursts: the silences do not
	// count toward the level, as pauses in speech do not.
	bursty := func(amp float64) []int16 {
		x := toneClip(1000, amp, 8000*4)
		for i := range x {
			if i/8000%2 == 1 {
				x[i] = 0
			}
		}
		return x
	}
	tests := []struct {
		name string
		clip []int16
	}{
		{"quiet tone", toneClip(1000, 1000, 8000)},
		{"loud tone", toneClip(1000, 30000, 8000)},
		{"tone with pauses", bursty(800)},
		{"partial last frame", toneClip(440, 2000, 8000+37)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := Normalize(tc.clip, DefaultTargetDBFS); !ok {
				t.Fatal("reported silent")
			}
			lv, ok := ActiveLevelDBFS(tc.clip)
			if !ok || math.Abs(lv-DefaultTargetDBFS) > 0.2 {
				t.Fatalf("active level %.2f dBFS after, want %.1f", lv, DefaultTargetDBFS)
			}
			// The tone's bursts themselves, not the average with silence.
			if got := rmsDBFS(tc.clip[:8000]); math.Abs(got-DefaultTargetDBFS) > 0.2 {
				t.Fatalf("first second at %.2f dBFS, want %.1f", got, DefaultTargetDBFS)
			}
		})
	}
}

// Peaks the gain would push past full scale are limited, never wrapped.
func TestNormalizeLimits(t *testing.T) {
	clip := toneClip(1000, 300, 8000)
	clip[4000] = 20000 // a click 36 dB above the tone
	if _, ok := Normalize(clip, DefaultTargetDBFS); !ok {
		t.Fatal("silent")
	}
	ceiling := int16(fullScale * dbToAmplitude(DefaultLimiterDBFS))
	for i, s := range clip {
		if s > ceiling || s < -ceiling {
			t.Fatalf("sample %d = %d past the limiter's ceiling %d", i, s, ceiling)
		}
	}
}

func TestNormalizeSilent(t *testing.T) {
	clip := make([]int16, 8000)
	clip[10] = 3 // below -65 dBFS
	if g, ok := Normalize(clip, DefaultTargetDBFS); ok {
		t.Fatalf("silent clip normalised by %.1f dB", g)
	}
	if clip[10] != 3 {
		t.Fatal("silent clip changed")
	}
}
