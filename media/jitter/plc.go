package jitter

import (
	"math"

	"github.com/groupbridge/groupbridge/media/pcm"
)

// Concealment parameters, in samples at 8 kHz.
const (
	// histLen is how much played audio is kept for concealment: enough
	// for the pitch search (corrWin + maxLag).
	histLen = 320
	// minLag and maxLag bound the pitch search: 400 Hz down to 50 Hz
	// covers voices; a 20 ms segment is also the fallback for unvoiced
	// sound, where repeating a short period would turn noise into a tone.
	minLag = 20
	maxLag = 160
	// corrWin is the length of the newest audio matched against the
	// audio one lag earlier.
	corrWin = 120
	// voicedScore is the normalised correlation above which the audio
	// counts as periodic and its pitch period is repeated.
	voicedScore = 0.4
	// joinLen is the length of both joins: the correction that makes the
	// repeat start where the real audio stopped, and the crossfade from
	// the repeat back into real audio (4 ms: long enough to avoid a click,
	// short enough not to smear a syllable).
	joinLen = 32
	// fullGain is how long the repeat plays at full level (10 ms);
	// after it the level falls linearly to nothing at fadeEnd (60 ms).
	fullGain = 80
	fadeEnd  = 480
	// gainOne is unity in the Q12 gain of the fade.
	gainOne = 1 << 12
)

// rampUp is a raised-cosine ramp in Q12 from just above 0 to 1 over
// joinLen samples, the shape of both joins. Unlike a straight line it
// starts and ends flat, so the joins bend the waveform gently instead of
// kinking it at their ends.
var rampUp = func() (r [joinLen]int32) {
	for i := range r {
		x := float64(i+1) / joinLen
		r[i] = int32(math.Round(gainOne * (1 - math.Cos(math.Pi*x)) / 2))
	}
	return r
}()

// plcState is where the concealer stands relative to the real audio.
type plcState uint8

const (
	// plcNone: no audio has played since the start or Reset; a gap is
	// plain silence, there is nothing to repeat.
	plcNone plcState = iota
	// plcIdle: the last sample was real audio; a gap starts concealment.
	plcIdle
	// plcActive: concealing (faded to silence once n >= fadeEnd).
	plcActive
	// plcResume: real audio is back and is being crossfaded in.
	plcResume
)

// plc conceals lost audio by repeating the last pitch period of the played
// audio, fading it out. It is inspired by, but simpler than, ITU-T G.711
// Appendix I: one period, a corrected start instead of an overlap-add on
// audio already played (which the pull model cannot revise), and a linear
// fade.
type plc struct {
	state  plcState
	period int           // samples in one repeated period
	pbuf   [maxLag]int16 // the period being repeated, unattenuated
	phase  int           // next index into pbuf
	n      int           // samples concealed in this run, capped at fadeEnd
	corr   int32         // start correction (see begin)
	xf     int           // samples crossfaded so far when resuming
}

// faded reports whether concealment has nothing left to play: no audio
// ever, or a concealment run that has faded out.
func (p *plc) faded() bool {
	return p.state == plcNone || p.state == plcActive && p.n >= fadeEnd
}

// begin starts a concealment run after the audio h (the played history,
// newest last, len(h) >= histLen).
func (p *plc) begin(h []int16) {
	per, _ := pitch(h)
	l := len(h)
	copy(p.pbuf[:per], h[l-per:])
	// The repeat wraps from its last sample back to its first. Unless the
	// period is exact, that is a small jump every period; blending the
	// last quarter period toward the audio just before the period makes
	// the last sample the natural predecessor of the first.
	q := max(per/4, 4)
	for j := range q {
		w := int32(j + 1)
		a, c := int32(h[l-q+j]), int32(h[l-per-q+j])
		p.pbuf[per-q+j] = int16((a*(int32(q)-w) + c*w) / int32(q))
	}
	p.period, p.phase, p.n, p.xf = per, 0, 0, 0
	// A perfectly periodic signal would continue with pbuf[0] after
	// h[l-1] exactly as it did after h[l-per-1]. Whatever it differs by
	// is added to the first samples and ramped away over joinLen, so the
	// first step equals a natural step of the waveform: no click.
	p.corr = int32(h[l-1]) - int32(h[l-per-1])
	p.state = plcActive
}

// next returns the next concealment sample and whether it carries any
// level (false once faded out).
func (p *plc) next() (int16, bool) {
	if p.n >= fadeEnd {
		return 0, false
	}
	v := int32(p.pbuf[p.phase])
	if p.phase++; p.phase == p.period {
		p.phase = 0
	}
	if p.n < joinLen {
		v += p.corr * (gainOne - rampUp[p.n]) >> 12
	}
	g := int32(gainOne)
	if p.n >= fullGain {
		g = int32(fadeEnd-p.n) * gainOne / (fadeEnd - fullGain)
	}
	p.n++
	return pcm.Clamp(v * g >> 12), true
}

// resume crossfades the real sample r in after concealment and reports
// whether the join is complete. A faded-out repeat crossfades as zero,
// which is a short fade-in, so audio resuming mid-waveform does not click.
func (p *plc) resume(r int16) int16 {
	c, _ := p.next()
	w := rampUp[p.xf]
	p.xf++
	if p.xf >= joinLen {
		p.state = plcIdle
	}
	return int16((int32(r)*w + int32(c)*(gainOne-w)) >> 12)
}

// pitch returns the period (in samples) that best predicts the newest
// corrWin samples of h from the samples one period earlier, and its
// normalised correlation. Unvoiced or silent audio gets maxLag.
func pitch(h []int16) (int, float64) {
	l := len(h)
	x := h[l-corrWin:]
	var ex int64
	for _, v := range x {
		ex += int64(v) * int64(v)
	}
	if ex == 0 {
		return maxLag, 0
	}
	// ey is the energy of the lagged window, slid one sample per lag.
	var ey int64
	for _, v := range h[l-corrWin-minLag : l-minLag] {
		ey += int64(v) * int64(v)
	}
	best, bestScore := maxLag, 0.0
	for lag := minLag; lag <= maxLag; lag++ {
		y := h[l-corrWin-lag : l-lag]
		if lag > minLag {
			in, out := int64(y[0]), int64(h[l-lag])
			ey += in*in - out*out
		}
		var c int64
		for i, v := range x {
			c += int64(v) * int64(y[i])
		}
		if c <= 0 || ey <= 0 {
			continue
		}
		// The first of equally good lags wins: the shortest period, or a
		// multiple of it, both continue the waveform.
		if s := float64(c) / math.Sqrt(float64(ex)*float64(ey)); s > bestScore+1e-9 {
			best, bestScore = lag, s
		}
	}
	if bestScore < voicedScore {
		return maxLag, bestScore
	}
	return best, bestScore
}
