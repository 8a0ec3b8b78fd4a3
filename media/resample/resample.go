// Package resample converts recordings between sample rates by a rational
// ratio (44100 Hz to 8000 Hz is 80/441) with a polyphase windowed-sinc FIR
// filter: a Kaiser-windowed ideal low-pass evaluated at every fractional
// position an output sample can fall on, so no intermediate upsampled
// signal is ever built.
//
// It is for loading files, not for the mixing clock: a Resampler's
// Convert allocates its output and costs a few hundred multiply-adds per
// output sample. No Go library for this was in reach (the project keeps
// its dependencies to what it needs), and the filter is a textbook design
// (Kaiser's window and length formulas), short enough to own.
//
// It imports nothing of the project.
package resample

import (
	"errors"
	"fmt"
	"math"
)

// Filter design. The passband runs to 85% of the lower rate's Nyquist
// frequency (3.4 kHz at 8 kHz: the telephone band) and the stopband starts
// at that Nyquist frequency, so nothing above it can fold back into the
// band; 80 dB in the stopband keeps any folded remnant below the 16-bit
// noise a telephone line hears.
const (
	passFraction = 0.85
	stopbandDB   = 80.0
)

// ErrRate is returned for a rate that is not positive, or a ratio whose
// filter would be unreasonably large (rates that share no common factor).
var ErrRate = errors.New("resample: unsupported rate")

// maxPhases bounds the filter table: 441 phases (22050 to 8000 Hz) is the
// most a listed rate needs.
const maxPhases = 1000

// Resampler converts from one rate to another. It is immutable once made
// and safe for concurrent use.
type Resampler struct {
	up, down int       // output rate / input rate, in lowest terms
	taps     int       // coefficients per phase
	half     int       // input samples on each side of the output instant
	coef     []float32 // up phases of taps coefficients each
}

// New designs the filter converting from Hz to to Hz.
func New(from, to int) (*Resampler, error) {
	if from <= 0 || to <= 0 {
		return nil, fmt.Errorf("%w: %d Hz to %d Hz", ErrRate, from, to)
	}
	g := gcd(from, to)
	up, down := to/g, from/g
	if up > maxPhases {
		return nil, fmt.Errorf("%w: %d Hz to %d Hz needs %d filter phases", ErrRate, from, to, up)
	}
	r := &Resampler{up: up, down: down}
	if up == 1 && down == 1 {
		return r, nil
	}
	nyquist := float64(min(from, to)) / 2
	pass, stop := passFraction*nyquist, nyquist
	cutoff := (pass + stop) / 2
	// Kaiser's estimates of the window shape and length for the stopband
	// attenuation and the transition width (as a fraction of the input
	// rate, at which the filter's taps are spaced).
	beta := 0.1102 * (stopbandDB - 8.7)
	width := (stop - pass) / float64(from)
	n := int(math.Ceil((stopbandDB - 7.95) / (14.36 * width)))
	r.half = n/2 + 1
	r.taps = 2*r.half + 1
	r.coef = make([]float32, up*r.taps)
	// The filter in units of 1/(from*up) s: d is the distance from an
	// input sample to the output instant on that fine grid.
	extent := float64(r.half * up)
	i0 := besselI0(beta)
	scale := 2 * cutoff / float64(from)
	vals := make([]float64, r.taps)
	for p := 0; p < up; p++ {
		row := r.coef[p*r.taps : (p+1)*r.taps]
		sum := 0.0
		clear(vals)
		for k := range row {
			d := float64(p + (r.half-k)*up)
			if math.Abs(d) > extent {
				continue
			}
			x := d / extent
			w := besselI0(beta*math.Sqrt(1-x*x)) / i0
			vals[k] = scale * sinc(scale*d/float64(up)) * w
			sum += vals[k]
		}
		// Each phase sums to exactly 1: a constant stays constant whatever
		// instant an output sample falls on.
		for k := range row {
			row[k] = float32(vals[k] / sum)
		}
	}
	return r, nil
}

// OutLen is how many samples Convert returns for n input samples.
func (r *Resampler) OutLen(n int) int {
	return int((int64(n)*int64(r.up) + int64(r.down) - 1) / int64(r.down))
}

// Convert returns in at the new rate, the first output sample at the
// instant of the first input sample (the filter is centred: no delay).
// Outside in the signal is taken as silence; results are rounded and
// saturated to int16.
func (r *Resampler) Convert(in []int16) []int16 {
	out := make([]int16, r.OutLen(len(in)))
	if r.up == 1 && r.down == 1 {
		copy(out, in)
		return out
	}
	var t int64 // the output instant on the fine grid: n*down
	for n := range out {
		i0 := int(t / int64(r.up))
		p := int(t % int64(r.up))
		t += int64(r.down)
		row := r.coef[p*r.taps : (p+1)*r.taps]
		lo := i0 - r.half
		var acc float32
		if lo >= 0 && lo+r.taps <= len(in) {
			acc = dot(row, in[lo:lo+r.taps])
		} else {
			for k, c := range row {
				if i := lo + k; i >= 0 && i < len(in) {
					acc += c * float32(in[i])
				}
			}
		}
		out[n] = round(acc)
	}
	return out
}

// dot is the inner product, in four running sums so the additions do not
// wait on each other.
func dot(c []float32, x []int16) float32 {
	x = x[:len(c)]
	var a0, a1, a2, a3 float32
	k := 0
	for ; k+4 <= len(c); k += 4 {
		a0 += c[k] * float32(x[k])
		a1 += c[k+1] * float32(x[k+1])
		a2 += c[k+2] * float32(x[k+2])
		a3 += c[k+3] * float32(x[k+3])
	}
	for ; k < len(c); k++ {
		a0 += c[k] * float32(x[k])
	}
	return (a0 + a1) + (a2 + a3)
}

// round converts to int16, half away from zero, saturating.
func round(v float32) int16 {
	if v >= 0 {
		v += 0.5
	} else {
		v -= 0.5
	}
	switch {
	case v >= 32767:
		return 32767
	case v <= -32768:
		return -32768
	}
	return int16(v)
}

// sinc is sin(πx)/(πx).
func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	return math.Sin(math.Pi*x) / (math.Pi * x)
}

// besselI0 is the modified Bessel function of the first kind, order 0, by
// its power series (converges fast for the window's arguments).
func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	for k := 1; k < 200; k++ {
		term *= (x / (2 * float64(k))) * (x / (2 * float64(k)))
		sum += term
		if term < sum*1e-17 {
			break
		}
	}
	return sum
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
