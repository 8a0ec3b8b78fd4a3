package tone

import (
	"math"
	"sync"

	"github.com/groupbridge/groupbridge/media/pcm"
)

// Chime shape. The room hears these on every join and leave, often while
// someone is sharing something painful, so they are quiet (-20 dBFS peak,
// well under speech), short, and pure sines with no click at either end.
const (
	// ChimeDBFS is the peak level of every chime.
	ChimeDBFS = -20.0
	// ChimeSamples is the length of every chime: 350 ms at 8 kHz.
	ChimeSamples = 350 * pcm.SampleRate / 1000

	chimeLow      = 660.0 // Hz; 660 and 880 are a fourth apart, a calm interval
	chimeHigh     = 880.0
	chimeOffset   = 0.140 // s between the first and the second note
	chimeAttack   = 0.010 // s raised-cosine attack: a hard onset would click
	chimeDecay    = 0.060 // s exponential decay time constant, bell-like
	chimeRelease  = 0.020 // s raised-cosine fade over the very end, so the tail is exactly 0
	chimeDuration = float64(ChimeSamples) / pcm.SampleRate
)

type note struct {
	freq, start float64 // Hz, seconds
}

var (
	chimeOnce = sync.OnceValue(func() []int16 {
		return renderChime(note{chimeLow, 0}, note{chimeHigh, 0})
	})
	joinOnce = sync.OnceValue(func() []int16 {
		return renderChime(note{chimeLow, 0}, note{chimeHigh, chimeOffset})
	})
	leaveOnce = sync.OnceValue(func() []int16 {
		return renderChime(note{chimeHigh, 0}, note{chimeLow, chimeOffset})
	})
)

// Chime returns a neutral soft chime: 660 Hz and 880 Hz struck together,
// decaying over 350 ms, peak ChimeDBFS. It is computed once; the returned
// slice is shared by every caller and must not be modified (its capacity is
// clipped so an append cannot write into it).
func Chime() []int16 { return chimeOnce() }

// JoinChime returns the chime for someone joining: 660 Hz then 880 Hz, a
// rising pair, so a caller who cannot see anything can still tell a join
// from a leave. Shared and read-only, like Chime.
func JoinChime() []int16 { return joinOnce() }

// LeaveChime returns the chime for someone leaving: 880 Hz then 660 Hz, a
// falling pair. Shared and read-only, like Chime.
func LeaveChime() []int16 { return leaveOnce() }

// renderChime sums the notes with their envelopes in float, then scales the
// whole so its peak is exactly ChimeDBFS: the overlap of two notes makes the
// peak hard to predict, and the level contract is about the peak.
func renderChime(notes ...note) []int16 {
	buf := make([]float64, ChimeSamples)
	for _, n := range notes {
		first := int(math.Round(n.start * pcm.SampleRate))
		w := 2 * math.Pi * n.freq / pcm.SampleRate
		for i := first; i < len(buf); i++ {
			t := float64(i-first) / pcm.SampleRate
			buf[i] += noteEnvelope(t) * math.Sin(w*float64(i-first))
		}
	}
	peak := 0.0
	for i := range buf {
		// The release applies to the mixture so a note still ringing at the end
		// fades out instead of stopping mid-cycle.
		if left := chimeDuration - float64(i+1)/pcm.SampleRate; left < chimeRelease {
			buf[i] *= 0.5 - 0.5*math.Cos(math.Pi*max(left, 0)/chimeRelease)
		}
		peak = max(peak, math.Abs(buf[i]))
	}
	scale := FullScale * math.Pow(10, ChimeDBFS/20) / peak
	out := make([]int16, len(buf))
	for i, v := range buf {
		out[i] = pcm.Round(v * scale)
	}
	return out[:len(out):len(out)]
}

// noteEnvelope is a raised-cosine rise to 1 over chimeAttack followed by an
// exponential decay, t seconds after the note starts.
func noteEnvelope(t float64) float64 {
	if t < chimeAttack {
		return 0.5 - 0.5*math.Cos(math.Pi*t/chimeAttack)
	}
	return math.Exp(-(t - chimeAttack) / chimeDecay)
}
