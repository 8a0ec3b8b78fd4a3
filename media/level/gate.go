package level

import "github.com/groupbridge/groupbridge/media/pcm"

// Gate timing. The Talker already waits 500 ms of quiet before it stops, so
// the hold only has to cover the last syllable's decay and a Talker
// configured with a short OffFrames; 100 ms does. The 20 ms fade-out is
// there because a tail cut short is audible; a fade-in is only needed when
// the gate opens on a signal that was already under way (see Gate).
const (
	// GateHoldFrames is how many frames the gate stays fully open after the
	// Talker stops.
	GateHoldFrames = 5
	// GateFadeInSamples is the longest fade from closed to open: the one
	// used when the signal the gate held back was loud.
	GateFadeInSamples = 80
	// GateFadeOutSamples is the length of the linear fade from open to closed.
	GateFadeOutSamples = 160
	// gateSlope is about the most a fade-in adds to the signal's own step
	// between two samples (a full-scale 10 ms fade adds 410): the fade is as
	// many samples as the held-back signal's last sample over gateSlope, up
	// to GateFadeInSamples, which it reaches from about -22 dBFS. A gate
	// opening after silence passes the frame untouched, after quiet line
	// noise with a fade of a sample or a few.
	gateSlope = 32
)

// The gain is kept as an integer position on a grid of gateSteps so that
// fades land exactly on fully open and fully closed, with no rounding residue
// that would leave a gate "almost closed" for an extra frame.
const (
	gateSteps   = GateFadeInSamples * GateFadeOutSamples
	gateStepIn  = gateSteps / GateFadeInSamples
	gateStepOut = gateSteps / GateFadeOutSamples
	gateScale   = 1.0 / gateSteps
)

// Gate is a noise gate for one caller: it passes audio while the caller's
// Talker reports a talkspurt or an onset and for GateHoldFrames frames after
// a talkspurt, and silences it otherwise. An open line carrying only
// background noise below the talker threshold therefore stays closed and
// out of the mix.
//
// It opens on the first frame the Talker calls an Onset, so a word is
// heard from its first loud frame; a click passes too (with what follows it
// above the Talker's off threshold, at most OnFrames-1 frames) and a 20 ms
// fade-out, but only a confirmed talkspurt holds the gate open. Closing fades out
// linearly. Opening fades in only as much as the signal needs: the click of
// a hard switch is the step from the silence the gate gave to the signal it
// held back, so after silence (the start of a word) the gate opens at full
// level from the frame's first sample, and the fade grows with the last
// held-back sample up to 10 ms.
//
// The zero value is a closed gate ready for use, the same as NewGate's.
type Gate struct {
	pos  int   // amplitude factor in units of 1/gateSteps: 0 closed, gateSteps open
	hold int   // frames left to stay open after talking stopped
	last int16 // the last sample of the previous frame as it came in
}

// NewGate returns a closed Gate.
func NewGate() *Gate { return &Gate{} }

// Process gates f in place given the Talker's Voice for this frame. It
// returns whether any of f remains: false means the gate is fully closed,
// f has been zeroed and the caller can be left out of the mix this frame. A
// frame that carries a fade returns true. Call it every frame period that
// the frame may be heard, with the same cadence as the Talker, since the
// hold is counted in calls; call Skip for the others.
func (g *Gate) Process(f *pcm.Frame, v Voice) (open bool) {
	held := g.last
	g.last = f[pcm.FrameSamples-1]
	target := 0
	switch {
	case v == Talkspurt:
		g.hold = GateHoldFrames
		target = gateSteps
	case g.hold > 0:
		g.hold--
		target = gateSteps
	}
	if v == Onset {
		target = gateSteps
	}
	if g.pos == target {
		if target == 0 {
			f.Silence()
			return false
		}
		return true // fully open: untouched, bit-exact
	}
	var step int
	switch {
	case target < g.pos:
		step = -gateStepOut
	case g.pos == 0:
		n := min((abs(int(held))+gateSlope-1)/gateSlope, GateFadeInSamples)
		if n <= 1 {
			g.pos = gateSteps
			return true // nothing held back to step from: no fade
		}
		step = (gateSteps + n - 1) / n
	default:
		step = gateStepIn
	}
	// Step before applying, so a fade-out's last sample is exactly zero and
	// a fade-in's first sample is already (barely) audible.
	for i, s := range f {
		g.pos = min(max(g.pos+step, 0), gateSteps)
		f[i] = pcm.Round(float64(s) * float64(g.pos) * gateScale)
	}
	return true
}

// Skip tells the gate that this frame period's audio did not reach the mix
// for another reason (muted, not among the loudest, no packet): f is what
// came in, nil if nothing did. The gate closes at once, since nothing of
// the caller was heard, and remembers where the signal was so that its
// next opening fades in if the caller was talking meanwhile. f is not
// modified.
func (g *Gate) Skip(f *pcm.Frame) {
	g.pos, g.hold, g.last = 0, 0, 0
	if f != nil {
		g.last = f[pcm.FrameSamples-1]
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
