package level

import "github.com/groupbridge/groupbridge/media/pcm"

// Gate timing. The Talker already waits 500 ms of quiet before it stops, so
// the hold only has to cover the last syllable's decay and a Talker
// configured with a short OffFrames; 100 ms does. A 10 ms fade-in keeps word
// onsets crisp while removing the click of a hard switch; the 20 ms fade-out
// is longer because a tail cut short is more audible than a slow start.
const (
	// GateHoldFrames is how many frames the gate stays fully open after the
	// Talker stops.
	GateHoldFrames = 5
	// GateFadeInSamples is the length of the linear fade from closed to open.
	GateFadeInSamples = 80
	// GateFadeOutSamples is the length of the linear fade from open to closed.
	GateFadeOutSamples = 160
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
// Talker says talking and for GateHoldFrames frames after, and silences it
// otherwise, moving between the two with short linear fades. An open line
// carrying only background noise below the talker threshold therefore stays
// closed and out of the mix. A gate starts closed.
//
// The gate cannot open before the Talker has heard OnFrames of speech, so a
// word's first 60 ms (by default) are lost, as with any level gate without
// look-ahead. A room that already delays audio before mixing (the in-band
// DTMF delay line) can feed the Talker the undelayed frames and the Gate the
// delayed ones, and the gate then opens in time.
//
// The zero value is a closed gate ready for use, the same as NewGate's.
type Gate struct {
	pos  int // amplitude factor in units of 1/gateSteps: 0 closed, gateSteps open
	hold int // frames left to stay open after talking stopped
}

// NewGate returns a closed Gate.
func NewGate() *Gate { return &Gate{} }

// Process gates f in place given the caller's talking state for this frame.
// It returns whether any of f remains: false means the gate is fully closed,
// f has been zeroed and the caller can be left out of the mix this frame. A
// frame that carries a fade returns true. Call it every frame period, with
// the same cadence as the Talker, since the hold is counted in calls.
func (g *Gate) Process(f *pcm.Frame, talking bool) (open bool) {
	target := 0
	switch {
	case talking:
		g.hold = GateHoldFrames
		target = gateSteps
	case g.hold > 0:
		g.hold--
		target = gateSteps
	}
	if g.pos == target {
		if target == 0 {
			f.Silence()
			return false
		}
		return true // fully open: untouched, bit-exact
	}
	step := gateStepIn
	if target < g.pos {
		step = -gateStepOut
	}
	// Step before applying, so a fade-out's last sample is exactly zero and
	// a fade-in's first sample is already (barely) audible.
	for i, s := range f {
		g.pos = min(max(g.pos+step, 0), gateSteps)
		f[i] = pcm.Round(float64(s) * float64(g.pos) * gateScale)
	}
	return true
}
