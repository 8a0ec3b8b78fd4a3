package softphone

import (
	"testing"
	"time"
)

func TestIntervalHistogram(t *testing.T) {
	ms := func(f float64) int64 { return int64(f * float64(time.Millisecond)) }
	tests := []struct {
		name          string
		intervals     []float64 // ms between arrivals
		p50, p99, max time.Duration
	}{
		{"empty", nil, 0, 0, 0},
		{"steady (capped at max)", []float64{20, 20, 20, 20}, 20 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond},
		{"one late of 100", append(repeat(20, 99), 45), 20250 * time.Microsecond, 20250 * time.Microsecond, 45 * time.Millisecond},
		{"two late of 100", append(repeat(20, 98), 45, 45), 20250 * time.Microsecond, 45 * time.Millisecond, 45 * time.Millisecond},
		{"overflow", []float64{20, 500}, 20250 * time.Microsecond, 500 * time.Millisecond, 500 * time.Millisecond},
		{"burst", []float64{0, 40, 0, 40}, 250 * time.Microsecond, 40 * time.Millisecond, 40 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h IntervalHistogram
			at := ms(1000)
			h.Add(at)
			for _, d := range tc.intervals {
				at += ms(d)
				h.Add(at)
			}
			if h.Count() != len(tc.intervals) {
				t.Errorf("count %d, want %d", h.Count(), len(tc.intervals))
			}
			if got := h.Quantile(0.5); got != tc.p50 {
				t.Errorf("p50 %v, want %v", got, tc.p50)
			}
			if got := h.Quantile(0.99); got != tc.p99 {
				t.Errorf("p99 %v, want %v", got, tc.p99)
			}
			if got := h.Max(); got != tc.max {
				t.Errorf("max %v, want %v", got, tc.max)
			}
		})
	}
}

func repeat(v float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// Reset starts a window without losing the interval that straddles it;
// Merge adds windows up.
func TestIntervalHistogramResetMerge(t *testing.T) {
	var a, b IntervalHistogram
	a.Add(int64(time.Second))
	a.Add(int64(time.Second + 30*time.Millisecond))
	a.Reset()
	if a.Count() != 0 || a.Max() != 0 {
		t.Fatalf("after Reset: count %d max %v", a.Count(), a.Max())
	}
	a.Add(int64(time.Second + 50*time.Millisecond))
	if a.Count() != 1 || a.Max() != 20*time.Millisecond {
		t.Fatalf("after Reset and one packet: count %d max %v, want 1, 20ms", a.Count(), a.Max())
	}
	b.Add(1)
	b.Add(1 + int64(60*time.Millisecond))
	a.Merge(&b)
	if a.Count() != 2 || a.Max() != 60*time.Millisecond || a.Quantile(0.5) != 20250*time.Microsecond {
		t.Fatalf("merged: count %d max %v p50 %v", a.Count(), a.Max(), a.Quantile(0.5))
	}
}

// The receive path's per-packet update allocates nothing.
func BenchmarkIntervalHistogramAdd(b *testing.B) {
	var h IntervalHistogram
	at := int64(1)
	b.ReportAllocs()
	for b.Loop() {
		at += int64(20 * time.Millisecond)
		h.Add(at)
	}
}
