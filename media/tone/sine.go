// Package tone makes and measures the simple sounds a telephone bridge needs:
// steady sines (test signals, hold tones, in-band DTMF), the soft chimes that
// tell a room someone joined or left, and Goertzel/RMS level measurement used
// by end-to-end tests and in-band DTMF detection.
//
// Levels are in dBFS with the AES17 convention: a sine whose peak is FullScale
// is 0 dBFS, whether it is measured by its peak, by its RMS or by the Goertzel
// power at its frequency. All maths runs at pcm.SampleRate.
package tone

import (
	"math"

	"github.com/groupbridge/groupbridge/media/pcm"
)

// FullScale is the peak of a 0 dBFS sine. 32767 rather than 32768 so that a
// 0 dBFS sine is representable in int16 without clipping its positive peaks.
const FullScale = 32767

const (
	tableBits = 10 // 1,024-entry table: linear interpolation error ≈ (2π/1024)²/8 ≈ 5e-6 of full scale, below int16 rounding
	tableSize = 1 << tableBits
	fracBits  = 32 - tableBits
	fracMask  = 1<<fracBits - 1
	fracScale = 1.0 / (1 << fracBits)
	// maxAmplitude caps absurd gains so that an Inf level cannot turn into NaN
	// samples; anything above FullScale already saturates to a square wave.
	maxAmplitude = 1e9
)

// sineTable holds one period of sin plus a guard entry so interpolation
// between the last entry and the first needs no wrap-around branch.
var sineTable = func() (t [tableSize + 1]float64) {
	for i := range t {
		t[i] = math.Sin(2 * math.Pi * float64(i) / tableSize)
	}
	return t
}()

// Sine is a phase-continuous sine generator. Consecutive Fill and Read calls
// continue the same waveform, so a tone cut into 20 ms frames has no seams.
// The phase is a 32-bit accumulator (a direct digital synthesiser): integer
// phase steps never drift, and the frequency resolution is 8000/2³² Hz.
// A Sine is not safe for concurrent use.
type Sine struct {
	phase uint32
	inc   uint32
	amp   float64
}

// NewSine returns a generator of freqHz at a level of dBFS (0 dBFS = a sine
// with peak FullScale). Levels above 0 dBFS saturate. Frequencies are taken
// modulo the sample rate, so anything above 4 kHz aliases as it would in any
// 8 kHz system; a negative frequency is the same tone with inverted phase.
// A NaN or -Inf level gives silence; a NaN or infinite frequency gives a
// constant zero (phase never advances from 0).
func NewSine(freqHz, dBFS float64) *Sine {
	s := &Sine{}
	if !math.IsNaN(dBFS) {
		s.amp = min(FullScale*math.Pow(10, dBFS/20), maxAmplitude)
	}
	if !math.IsNaN(freqHz) && !math.IsInf(freqHz, 0) {
		// Reduce first so the product fits int64 before wrapping to uint32.
		f := math.Mod(freqHz, pcm.SampleRate)
		s.inc = uint32(int64(math.Round(f / pcm.SampleRate * (1 << 32))))
	}
	return s
}

// Fill overwrites f with the next 20 ms of the tone.
func (s *Sine) Fill(f *pcm.Frame) { s.Read(f[:]) }

// Read overwrites dst with the next len(dst) samples of the tone and returns
// len(dst). It never fails and never allocates.
func (s *Sine) Read(dst []int16) int {
	p := s.phase
	for i := range dst {
		dst[i] = pcm.Round(s.next(p))
		p += s.inc
	}
	s.phase = p
	return len(dst)
}

// Mix adds the next len(dst) samples of the tone to dst with saturation, so
// two generators make a dual tone (DTMF, dial tone) without a scratch buffer.
func (s *Sine) Mix(dst []int16) {
	p := s.phase
	for i, d := range dst {
		dst[i] = pcm.Round(float64(d) + s.next(p))
		p += s.inc
	}
	s.phase = p
}

// next returns the unrounded sample at phase p.
func (s *Sine) next(p uint32) float64 {
	idx := p >> fracBits
	frac := float64(p&fracMask) * fracScale
	a, b := sineTable[idx], sineTable[idx+1]
	return s.amp * (a + (b-a)*frac)
}
