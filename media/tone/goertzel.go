package tone

import (
	"math"

	"github.com/groupbridge/groupbridge/media/pcm"
)

// FloorDBFS is the lowest level LevelDBFS and RMSDBFS report: what they
// return for silence, for an absent component and for an empty window, so
// that callers compare finite numbers and never see -Inf.
const FloorDBFS = -150.0

// Goertzel returns the power of the freqHz component of samples, normalised
// so that a sine of peak amplitude A reads (A/FullScale)²: a full-scale sine
// reads 1.0, a -10 dBFS sine 0.1, silence 0.
//
// It evaluates the discrete-time Fourier transform X at exactly freqHz (the
// generalised Goertzel recurrence, not rounded to a DFT bin) over a
// rectangular window, and returns (2|X| / (N·FullScale))², since a sine of
// amplitude A yields |X| ≈ A·N/2. The window sets the resolution: a
// component Δf away leaks about 1/(π·N·Δf/8000) of its amplitude, so a
// window holding many cycles (e.g. 400 ms) separates tones well, and one of
// 205 samples (25.6 ms, the classic DTMF size) separates DTMF's rows and
// columns. An empty window reads 0.
func Goertzel(samples []int16, freqHz float64) float64 {
	n := len(samples)
	if n == 0 {
		return 0
	}
	c := 2 * math.Cos(2*math.Pi*freqHz/pcm.SampleRate)
	var s1, s2 float64
	for _, x := range samples {
		s1, s2 = float64(x)+c*s1-s2, s1
	}
	// |X(ω)|² from the last two states; the phase factor drops out of the
	// magnitude, which is why any ω works, not only bin centres.
	power := s1*s1 + s2*s2 - c*s1*s2
	norm := float64(n) * FullScale / 2
	return max(power, 0) / (norm * norm) // rounding can make an absent component slightly negative
}

// LevelDBFS returns the level of the freqHz component of samples in dBFS
// (10·log10 of Goertzel): a full-scale sine at freqHz reads 0, a -10 dBFS one
// -10. An absent component, silence or an empty window reads FloorDBFS.
func LevelDBFS(samples []int16, freqHz float64) float64 {
	return powerDB(Goertzel(samples, freqHz))
}

// BlockLevelDBFS is LevelDBFS averaged in power over consecutive blocks of
// block samples (a last partial block is left out; a window shorter than
// one block is measured whole). Over a long window one phase jump, as a
// lost or concealed frame of received audio leaves, makes the halves of
// a tone cancel in a single Goertzel sum; in blocks it costs only the
// block it falls in. The block sets the resolution as the window does
// for LevelDBFS.
func BlockLevelDBFS(samples []int16, freqHz float64, block int) float64 {
	if block <= 0 || len(samples) < block {
		return LevelDBFS(samples, freqHz)
	}
	var sum float64
	n := len(samples) / block
	for i := range n {
		sum += Goertzel(samples[i*block:(i+1)*block], freqHz)
	}
	return powerDB(sum / float64(n))
}

// RMSDBFS returns the RMS level of samples in dBFS, referenced to the RMS of a
// full-scale sine (FullScale/√2) so that it agrees with LevelDBFS on a pure
// tone; a full-scale square wave therefore reads about +3 dBFS. Silence or an
// empty window reads FloorDBFS.
func RMSDBFS(samples []int16) float64 {
	if len(samples) == 0 {
		return FloorDBFS
	}
	var sum float64
	for _, x := range samples {
		v := float64(x)
		sum += v * v
	}
	ms := sum / float64(len(samples))
	return powerDB(ms / (FullScale * FullScale / 2))
}

// powerDB converts a normalised power to dB, clamped at FloorDBFS.
func powerDB(p float64) float64 {
	if p <= 0 {
		return FloorDBFS
	}
	return max(10*math.Log10(p), FloorDBFS)
}
