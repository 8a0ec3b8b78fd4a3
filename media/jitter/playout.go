package jitter

import (
	"time"

	"github.com/groupbridge/groupbridge/media/pcm"
)

// Playout steering constants, in samples.
const (
	// deadband is how far (5 ms) the delay may stray from the target
	// before Pop corrects it; the mixing clock's own scheduling noise stays
	// inside it.
	deadband = 40
	// settle: once corrected, the delay is steered to within 1 ms of the
	// target, not left at the edge of the deadband.
	settle = 8
	// holdMin: when the delay is at least this far (10 ms) below the
	// target, audio missing from a frame is concealed without moving the
	// playout point past the gap, adding up to 20 ms of delay at once.
	holdMin = 80
	// Time-scaling takes frame±k source samples for one frame: k at most
	// maxScale when the audio is quiet (inaudible), and otherwise
	// speechShrink (1.25%) or speechGrow (2.5%) so the pitch shift stays
	// below what a listener notices.
	maxScale     = 16
	speechShrink = 2
	speechGrow   = 4
	// quietPower is the mean square below which audio counts as quiet
	// (RMS 330, about -40 dBFS).
	quietPower = 330 * 330
)

// Pop puts the next 20 ms of the caller's audio into f for the mixing
// clock tick at now, and says what it is. Every sample of f is written.
func (b *Buffer) Pop(f *pcm.Frame, now time.Time) Kind {
	if !b.started {
		f.Silence()
		return Silence
	}
	// excess > 0: more delay than the target (play faster); < 0: less.
	desired := (now.Sub(b.epoch).Nanoseconds()-b.base-int64(b.target))/nsPerSample - frame
	excess := desired - b.playPos
	if excess > samplesOf(b.maxDelay) {
		// Far behind (the clock stalled, or a burst after a network
		// outage): catch up at once, splicing with a crossfade.
		b.catchUp(desired)
		excess = 0
	}
	b.st.CurrentDelay = b.target + time.Duration(excess*nsPerSample)
	switch {
	case excess > deadband || excess < -deadband:
		b.steer = true
	case excess <= settle && excess >= -settle:
		b.steer = false
	}

	out := b.hist[histLen:]

	kind := Silence
	switch {
	case b.plc.faded() && b.r.count(b.playPos, frame) == 0 && b.silent(excess):
		clear(out)
	case excess < -holdMin && b.plc.state != plcNone && b.r.count(b.playPos, frame) != frame:
		// Audio is missing and more delay is wanted: play up to the gap,
		// conceal the rest of the frame and resume at the gap next time,
		// so that if its packet is only late it still plays, later.
		kind = b.render(out, true)
	case b.steer && b.plc.state == plcIdle && b.scale(excess, out):
		kind = Audio
	default:
		kind = b.render(out, false)
	}
	copy(f[:], out)
	copy(b.hist[:histLen], b.hist[frame:])
	if kind == Concealed {
		b.st.Concealed++
	}
	return kind
}

// silent handles a frame with nothing to play and nothing to conceal,
// where moving the playout point is inaudible: it skips ahead toward the
// target delay (never past buffered audio) or stays put to build delay.
// It reports whether the frame is still silent after skipping; if audio
// now starts inside it, the caller's other cases render it.
func (b *Buffer) silent(excess int64) bool {
	if excess > 0 {
		skip := excess
		if i := b.r.first(b.playPos, int(min(skip, ringSize))); i >= 0 {
			skip = int64(i)
		}
		b.playPos += skip
		if b.r.count(b.playPos, frame) != 0 {
			return false
		}
		excess -= skip
	}
	adv := int64(frame)
	if excess < 0 {
		adv = max(0, frame+excess)
	}
	b.playPos += adv
	return true
}

// catchUp moves the playout point forward to pos, dropping what lies
// before it; the concealer crossfades from the audio that played last to
// the audio found there.
func (b *Buffer) catchUp(pos int64) {
	skip := pos - b.playPos
	b.r.mark(b.playPos, int(min(skip, ringSize)), false)
	b.playPos = pos
	if b.plc.state == plcIdle || b.plc.state == plcResume {
		b.plc.begin(b.hist[:histLen])
	}
}

// render builds one frame in out from the ring at the playout point,
// concealing missing samples, and moves the playout point past the frame.
// To hold (build delay) it moves only up to the first missing sample and
// conceals the rest of the frame, audio after the gap included, so that
// the next frame resumes at the gap and nothing plays twice. The samples
// it moves past are removed from the ring.
func (b *Buffer) render(out []int16, hold bool) Kind {
	if !hold && (b.plc.state == plcIdle || b.plc.state == plcNone) && b.r.count(b.playPos, len(out)) == len(out) {
		// The common case: all there, nothing to join.
		b.r.read(out, b.playPos)
		b.plc.state = plcIdle
		b.consume(len(out))
		return Audio
	}
	adv := len(out)
	got, live := 0, 0
	for i := range out {
		pos := b.playPos + int64(i)
		if adv == len(out) && b.r.has(pos) {
			v := b.r.at(pos)
			switch b.plc.state {
			case plcActive:
				b.plc.state, b.plc.xf = plcResume, 0
				v = b.plc.resume(v)
			case plcResume:
				v = b.plc.resume(v)
			case plcNone:
				b.plc.state = plcIdle
			}
			out[i] = v
			got++
			continue
		}
		if hold && adv == len(out) {
			adv = i
		}
		switch b.plc.state {
		case plcNone:
			out[i] = 0
			continue
		case plcIdle, plcResume:
			b.plc.begin(b.hist[:histLen+i])
		}
		v, ok := b.plc.next()
		out[i] = v
		if ok {
			live++
		}
	}
	b.consume(adv)
	switch {
	case live > 0:
		return Concealed
	case got > 0:
		return Audio
	}
	return Silence
}

// scale plays the frame time-scaled by k samples toward the target delay:
// frame+k source samples squeezed into one frame (k > 0) or frame-k
// stretched over it, by linear interpolation, which keeps the waveform
// continuous at both ends. It reports false (doing nothing) when the
// source samples are not all present.
func (b *Buffer) scale(excess int64, out []int16) bool {
	if b.r.count(b.playPos, frame) != frame {
		return false
	}
	b.r.read(b.src[:frame], b.playPos)
	var pw int64
	for _, v := range b.src[:frame] {
		pw += int64(v) * int64(v)
	}
	quiet := pw/frame < quietPower
	var k int
	if excess > 0 {
		k = speechShrink
		if quiet {
			k = maxScale
		}
		k = int(min(int64(k), excess))
		if b.r.count(b.playPos+frame, k) != k {
			return false
		}
	} else {
		k = speechGrow
		if quiet {
			k = maxScale
		}
		k = -int(min(int64(k), -excess))
	}
	m := frame + k
	b.r.read(b.src[:m], b.playPos)
	src := b.src[:m]
	for i := range out {
		x := i * (m - 1)
		j, fr := x/(frame-1), x%(frame-1)
		v := int32(src[j])
		if fr != 0 {
			v += (int32(src[j+1]) - v) * int32(fr) / (frame - 1)
		}
		out[i] = int16(v)
	}
	b.consume(m)
	return true
}

// consume removes n samples from the playout point on and moves past them.
func (b *Buffer) consume(n int) {
	if n > 0 {
		b.r.mark(b.playPos, n, false)
		b.playPos += int64(n)
	}
}
