package level

import (
	"math"
	"math/rand/v2"

	"github.com/groupbridge/groupbridge/media/pcm"
	"github.com/groupbridge/groupbridge/media/tone"
)

// A segment is a stretch of synthetic test signal, frames long.
type segment struct {
	kind   kind
	dBFS   float64 // level: a sine's peak level, noise's RMS level (both re a full-scale sine)
	hz     float64 // tone frequency
	frames int
}

type kind int

const (
	silence kind = iota
	sine
	noise
)

// Shorthands that keep the tables readable.
func toneSeg(dBFS float64, frames int) segment  { return segment{sine, dBFS, 1000, frames} }
func noiseSeg(dBFS float64, frames int) segment { return segment{noise, dBFS, 0, frames} }
func quiet(frames int) segment                  { return segment{silence, 0, 0, frames} }

// render turns segments into frames. Tones are phase-continuous within a
// segment; noise is Gaussian white noise from a fixed seed, so every run
// sees the same samples.
func render(segs ...segment) []pcm.Frame {
	rng := rand.New(rand.NewPCG(1, 2))
	var out []pcm.Frame
	for _, s := range segs {
		gen := tone.NewSine(s.hz, s.dBFS)
		rms := tone.FullScale / math.Sqrt2 * math.Pow(10, s.dBFS/20)
		for range s.frames {
			var f pcm.Frame
			switch s.kind {
			case sine:
				gen.Fill(&f)
			case noise:
				for i := range f {
					f[i] = pcm.Clamp(int32(math.Round(rng.NormFloat64() * rms)))
				}
			}
			out = append(out, f)
		}
	}
	return out
}

// flatten concatenates frames into one sample slice for measurement.
func flatten(frames []pcm.Frame) []int16 {
	out := make([]int16, 0, len(frames)*pcm.FrameSamples)
	for i := range frames {
		out = append(out, frames[i][:]...)
	}
	return out
}

// thdDB returns the power of everything but the freqHz component of samples
// relative to the total, in dB: a THD+N figure for a test tone.
func thdDB(samples []int16, freqHz float64) float64 {
	fund := tone.Goertzel(samples, freqHz)
	total := math.Pow(10, tone.RMSDBFS(samples)/10)
	return 10 * math.Log10(max(total-fund, 1e-20)/total)
}

// maxStep returns the largest sample-to-sample difference in samples.
func maxStep(samples []int16) int {
	best := 0
	for i := 1; i < len(samples); i++ {
		d := int(samples[i]) - int(samples[i-1])
		best = max(best, d, -d)
	}
	return best
}
