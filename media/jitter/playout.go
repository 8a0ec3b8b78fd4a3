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

// SpeechScales are the time-scaling steps used on audio that is not quiet,
// in samples per 160-sample frame (shrinking, growing): a tone played
// through the buffer may come out shifted in pitch by as much while the
// delay moves, which tests that listen for a tone must allow for.
var SpeechScales = [2]int{speechShrink, speechGrow}

// Pop puts the next 20 ms of the caller's audio into f for the mixing
// clock tick at now, and says what it is. Every sample of f is written.
func (b *Buffer) Pop(f *pcm.Frame, now time.Time) Kind {
	if !b.started {
		f.Silence()
		return Silence
	}
	// excess > 0: more delay than the target (play faster); < 0: less.
	quiet := b.plc.faded() && b.r.count(b.playPos, frame) == 0
	desired := b.desired(now, quiet)
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
	case quiet && b.silent(excess):
		clear(out)
	case excess < -holdMin && b.plc.state != plcNone && b.r.count(b.playPos, frame) != frame:
		// Audio is missing and more delay is wanted: play up to the gap,
		// conceal the rest of the frame and resume at the gap next time,
		// so that if its packet is only late it still plays, later.
		kind = b.render(out, true)
	case b.steer && b.plc.state == plcIdle && b.scale(excess, out):
		kind = Audio
	case b.lead > b.leadOn && b.plc.state == plcIdle && b.takeLead(out):
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

// desired is the playout point for the frame Pop plays at now; quiet says
// the frame has nothing to play, so moving the playout point is inaudible.
//
// In the base's timeline sample p is due at base + p, and the frame
// x-frame..x ends with the last sample due a target before now: audio waits
// the target plus one frame. But a packet brings all its samples at once,
// when its first is due, so the frame may end lead samples later, up to the
// end of the packet holding x, and its newest packet still waits the whole
// target: a packet then plays at the first tick a target after it arrived
// (docs/DECISIONS.md, D18). Packets start every refLen samples from refPos
// and x moves a frame per tick, so the lead that is safe at every tick
// comes from the phase of x on the grid both lie on, g = gcd(refLen, frame).
//
// The lead is a frame of margin given back only to a stream that has
// proved calm: none before growHold of it has passed or while a spike holds
// the target, and none from a late packet until that is over again. Once
// given, it follows the phase as clock drift slides it: less lead (more
// delay) in the next quiet frame once the newest packet would wait settle
// short of the target, at once when deadband short; more lead only when the
// phase is clear of the edge where it wraps, so it never flaps between the
// two ends of its range. Less delay is taken only in pauses (silent) and
// quiet audio (takeLead): the lead never time-scales speech.
func (b *Buffer) desired(now time.Time, quiet bool) int64 {
	t := now.Sub(b.epoch).Nanoseconds()
	x := (t - b.base - int64(b.target)) / nsPerSample
	g := gcd(b.refLen, frame)
	phase := mod(x-b.refPos, g)
	safe := g - phase
	// short: how far the newest packet the frame needs is due after x.
	end := x + b.lead - 1
	short := end - mod(end-b.refPos, g) - x
	switch {
	case !b.leadSet:
		if t >= b.calmFrom && t >= b.holdUntil {
			b.lead, b.leadSet = safe, true
		}
	case short > deadband || short > settle && quiet || b.leadAt != b.target:
		// (A new target moves x by whole steps: the phase starts over.)
		b.lead = safe
	case safe-b.lead > g/2 && phase >= g/8:
		b.lead = safe
	}
	b.leadAt = b.target
	b.leadOn = min(b.leadOn, b.lead)
	return x - frame + b.leadOn
}

// mod is a modulo m in [0, m).
func mod(a, m int64) int64 {
	if a %= m; a < 0 {
		a += m
	}
	return a
}

// isQuiet reports whether the mean square of s is below quietPower. It
// stops at the first sample that decides it: audio that is not quiet,
// which takeLead tries every frame until a pause, costs a few samples.
func isQuiet(s []int16) bool {
	limit := int64(len(s)) * quietPower
	var pw int64
	for _, v := range s {
		if pw += int64(v) * int64(v); pw >= limit {
			return false
		}
	}
	return true
}

// gcd is the greatest common divisor of two positive lengths.
func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// silent handles a frame with nothing to play and nothing to conceal,
// where moving the playout point is inaudible: it skips ahead toward the
// target delay and takes the lead not yet taken (never past buffered
// audio), or stays put to build delay. It reports whether the frame is
// still silent after skipping; if audio now starts inside it, the caller's
// other cases render it.
func (b *Buffer) silent(excess int64) bool {
	pend := b.lead - b.leadOn
	want := excess + pend
	if want <= 0 {
		b.leadOn = b.lead
		b.playPos += max(0, frame+want)
		return true
	}
	skip := want
	if i := b.r.first(b.playPos, int(min(skip, ringSize))); i >= 0 {
		skip = int64(i)
	}
	b.playPos += skip
	// What buffered audio kept from being skipped stays pending lead first,
	// so that it is not time-scaled away.
	b.leadOn = b.lead - min(pend, want-skip)
	if b.r.count(b.playPos, frame) != 0 {
		return false
	}
	b.playPos += frame
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
	quiet := isQuiet(b.src[:frame])
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
	b.r.read(b.src[:frame+k], b.playPos)
	b.squeeze(out, frame+k)
	return true
}

// takeLead takes up to maxScale samples of the lead not yet taken by
// squeezing them into a frame of quiet audio (inaudible: phones that send
// no pauses send quiet ones). It reports false (doing nothing) unless the
// samples are all present and quiet.
func (b *Buffer) takeLead(out []int16) bool {
	k := int(min(b.lead-b.leadOn, maxScale))
	m := frame + k
	// Loudness first: a talker talking is told by a few samples. Samples
	// not present may read as anything, but then count refuses anyway.
	if !b.quietAt(b.playPos, m) || b.r.count(b.playPos, m) != m {
		return false
	}
	b.r.read(b.src[:m], b.playPos)
	b.squeeze(out, m)
	b.leadOn += int64(k)
	return true
}

// quietAt is isQuiet of the m samples from pos, read in the ring, so
// that audio that is not quiet is not copied first.
func (b *Buffer) quietAt(pos int64, m int) bool {
	limit := int64(m) * quietPower
	var pw int64
	for i := range int64(m) {
		v := int64(b.r.at(pos + i))
		if pw += v * v; pw >= limit {
			return false
		}
	}
	return true
}

// squeeze plays the m source samples at the playout point (already read
// into src) as one frame, by linear interpolation, which keeps the
// waveform continuous at both ends, and moves past them.
func (b *Buffer) squeeze(out []int16, m int) {
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
}

// consume removes n samples from the playout point on and moves past them.
func (b *Buffer) consume(n int) {
	if n > 0 {
		b.r.mark(b.playPos, n, false)
		b.playPos += int64(n)
	}
}
