package guard

import (
	"math"
	"slices"
	"time"
)

// TimeToHit is the expected time for an attacker to enter any one of the
// PINs reachable from a number, given their lengths and the most wrong PINs
// a minute the number lets through (BudgetConfig.PerNumber: at most that
// many failures a minute pass unnoticed, and under attack the answers are
// paced to it, however many calls and caller numbers the attacker uses).
//
// The attacker tries distinct entries of one length in any order; with k of
// the n = 10^L entries being PINs, the first hit comes after (n+1)/(k+1)
// tries on average. A PIN only matches an entry of its own length, so the
// attacker picks the length that pays best and the shortest PINs dominate:
// two 6-digit PINs at 6 a minute take 38.6 days, one 4-digit PIN 13.9 hours.
// It returns 0 for no PINs (nothing to guess) and for perMinute <= 0.
func TimeToHit(lengths []int, perMinute int) time.Duration {
	if len(lengths) == 0 || perMinute <= 0 {
		return 0
	}
	best := math.Inf(1)
	for _, l := range LengthCounts(lengths) {
		n := math.Pow(10, float64(l.Len))
		best = min(best, (n+1)/float64(l.Count+1))
	}
	minutes := best / float64(perMinute)
	return time.Duration(minutes * float64(time.Minute))
}

// LengthCount is how many of the PINs have one length.
type LengthCount struct{ Len, Count int }

// LengthCounts groups PIN lengths, shortest first.
func LengthCounts(lengths []int) []LengthCount {
	sorted := slices.Sorted(slices.Values(lengths))
	var out []LengthCount
	for _, l := range sorted {
		if n := len(out); n > 0 && out[n-1].Len == l {
			out[n-1].Count++
			continue
		}
		out = append(out, LengthCount{l, 1})
	}
	return out
}

// TimeToHitLength is TimeToHit for the PINs of one length only: how long
// those PINs hold out by themselves. A PIN whose length gives less than the
// time wanted must be lengthened, whatever the other PINs are.
func TimeToHitLength(lengths []int, length, perMinute int) time.Duration {
	var same []int
	for _, l := range lengths {
		if l == length {
			same = append(same, l)
		}
	}
	return TimeToHit(same, perMinute)
}
