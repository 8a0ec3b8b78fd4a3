package level

import "github.com/groupbridge/groupbridge/media/pcm"

// AGC defaults. -20 dBFS is a comfortable active speech level for 8 kHz
// G.711 (about the level of a well-set telephone line, leaving 19 dB for
// speech peaks below the limiter); ±12 dB covers a whisper and a shout
// without turning line noise into a roar; the -1 dBFS ceiling keeps limited
// peaks off the G.711 end stops.
const (
	DefaultTargetDBFS  = -20.0
	DefaultMaxGainDB   = 12.0
	DefaultMinGainDB   = -12.0
	DefaultLimiterDBFS = -1.0
)

// AGC dynamics, in frames (20 ms) unless stated.
const (
	// speechLevelFrames is the time constant (400 ms) of the speech level
	// estimate. It is averaged in power, so a louder frame pulls it up much
	// faster than a quieter one pulls it down: a sudden shout registers
	// within a frame or two.
	speechLevelFrames = 20.0
	// speechGateDB excludes frames this far below the current estimate (the
	// pauses, breaths and line noise inside a talkspurt) from it, as ITU-T
	// P.56 does for active speech level, so pauses do not drag the estimate
	// down and the gain up.
	speechGateDB = 20.0
	// speechFloorDBFS: frames quieter than this never update the estimate,
	// whatever the Talker says.
	speechFloorDBFS = -65.0
	// gainUpFrames (1.5 s) is how slowly gain rises toward the target, so a
	// quiet passage is not pumped up in mid-sentence.
	gainUpFrames = 75.0
	// gainDownFrames (250 ms) is how quickly gain falls when a caller is too
	// loud; the limiter catches what this is too slow for.
	gainDownFrames = 12.5
	// limiterKneeDB: the limiter is exactly transparent up to this far below
	// its ceiling, and bends smoothly toward the ceiling above it.
	limiterKneeDB = 4.0
	// limiterReleaseSamples (100 ms) is how fast the limiter's envelope lets
	// go after a peak. Long against a speech pitch period, so the gain does
	// not ripple within a waveform (which would be distortion); short enough
	// that the next syllable is not ducked.
	limiterReleaseSamples = 800.0
	// maxGainRangeDB bounds configured gains to something meaningful for
	// 16-bit audio, which also keeps the fixed-point ramp far from overflow.
	maxGainRangeDB = 60.0
	// minLimiterDBFS keeps the ceiling, and the knee under it, whole
	// sample values apart: a ceiling near zero would leave the soft knee
	// nothing to bend across.
	minLimiterDBFS = -40.0
)

var (
	speechLevelRate = smoothing(speechLevelFrames)
	gainUpRate      = smoothing(gainUpFrames)
	gainDownRate    = smoothing(gainDownFrames)
	speechGate      = dbToPower(-speechGateDB)
	speechFloor     = dbToPower(speechFloorDBFS)
	limiterRelease  = 1 - smoothing(limiterReleaseSamples)
)

// AGCConfig sets an AGC's target and limits. A zero field takes its default
// (DefaultTargetDBFS and so on), so AGCConfig{} is the recommended setting.
type AGCConfig struct {
	// TargetDBFS is the active speech level the gain aims for, as RMS
	// referenced to a full-scale sine.
	TargetDBFS float64
	// MaxGainDB bounds amplification (a whisperer gets at most this much).
	// Gains beyond ±60 dB are cut to that.
	MaxGainDB float64
	// MinGainDB bounds attenuation (a shouter gets at least this much),
	// normally negative. If it exceeds MaxGainDB the two are swapped.
	MinGainDB float64
	// LimiterDBFS is the peak ceiling of the output; no sample exceeds it.
	// It is kept within [-40, 0] dBFS.
	LimiterDBFS float64
}

// withDefaults fills zero (or unusable) fields and repairs inconsistent ones.
func (c AGCConfig) withDefaults() AGCConfig {
	if c.TargetDBFS == 0 || !finite(c.TargetDBFS) {
		c.TargetDBFS = DefaultTargetDBFS
	}
	if c.MaxGainDB == 0 || !finite(c.MaxGainDB) {
		c.MaxGainDB = DefaultMaxGainDB
	}
	if c.MinGainDB == 0 || !finite(c.MinGainDB) {
		c.MinGainDB = DefaultMinGainDB
	}
	if c.MinGainDB > c.MaxGainDB {
		c.MinGainDB, c.MaxGainDB = c.MaxGainDB, c.MinGainDB
	}
	c.MinGainDB = max(c.MinGainDB, -maxGainRangeDB)
	c.MaxGainDB = min(c.MaxGainDB, maxGainRangeDB)
	if c.LimiterDBFS == 0 || !finite(c.LimiterDBFS) {
		c.LimiterDBFS = DefaultLimiterDBFS
	}
	c.LimiterDBFS = min(max(c.LimiterDBFS, minLimiterDBFS), 0)
	return c
}

// AGC is the automatic gain control and output limiter for one caller.
//
// While the caller talks it estimates their active speech level (frames well
// below the running estimate, such as pauses, are left out) and moves its
// gain toward TargetDBFS minus that level, within [MinGainDB, MaxGainDB]:
// slowly up (time constant 1.5 s) and faster down (250 ms). In silence the
// gain is held, so line noise between talkspurts is never pumped up. The gain
// is interpolated sample by sample across each frame, so its changes make no
// zipper noise. A soft peak limiter follows: transparent below a knee 4 dB
// under the ceiling, bending smoothly toward the ceiling above it, with an
// instantaneous attack and a 100 ms release, so no output sample ever exceeds
// the ceiling and a normal-level voice passes untouched.
//
// The zero value is not usable; call NewAGC.
type AGC struct {
	target, minGain, maxGain float64 // dB
	ceiling, knee, span      float64 // limiter, in sample units; span = ceiling - knee

	speech  float64 // active speech level estimate, normalised power; 0 = none yet
	gainDB  float64 // gain reached at the end of the last frame
	gainAmp float64 // amplitude factor reached at the end of the last frame, the next ramp's start
	ampDB   float64 // the gain in dB that gainAmp was computed from
	env     float64 // limiter peak envelope in sample units; 0 while under the knee
}

// NewAGC returns an AGC at 0 dB gain configured by cfg (zero fields take
// their defaults).
func NewAGC(cfg AGCConfig) *AGC {
	cfg = cfg.withDefaults()
	// Floor to a whole sample value: since the limiter's output is strictly
	// below the ceiling, rounding to int16 can then never exceed it.
	ceiling := float64(int(fullScale * dbToAmplitude(cfg.LimiterDBFS)))
	knee := ceiling * dbToAmplitude(-limiterKneeDB)
	start := min(max(0, cfg.MinGainDB), cfg.MaxGainDB)
	return &AGC{
		target:  cfg.TargetDBFS,
		minGain: cfg.MinGainDB,
		maxGain: cfg.MaxGainDB,
		ceiling: ceiling,
		knee:    knee,
		span:    ceiling - knee,
		gainDB:  start,
		gainAmp: dbToAmplitude(start),
		ampDB:   start,
	}
}

// Process levels and limits f in place. talking is the caller's state for
// this frame (from their Talker): only then does the gain adapt.
func (a *AGC) Process(f *pcm.Frame, talking bool) {
	if talking {
		a.adapt(framePower(f))
	}
	a.apply(f)
}

// adapt updates the speech level estimate with a talking frame of power p
// and moves the gain toward the target.
func (a *AGC) adapt(p float64) {
	switch {
	case p < speechFloor:
	case a.speech == 0:
		a.speech = p // first speech: start from it rather than from nothing
	case p >= a.speech*speechGate:
		a.speech += speechLevelRate * (p - a.speech)
	}
	if a.speech == 0 {
		return
	}
	want := min(max(a.target-powerToDB(a.speech), a.minGain), a.maxGain)
	rate := gainUpRate
	if want < a.gainDB {
		rate = gainDownRate
	}
	a.gainDB += rate * (want - a.gainDB)
}

// apply ramps the gain from its previous value to the current one across f
// and limits the result.
func (a *AGC) apply(f *pcm.Frame) {
	g, end := a.gainAmp, a.gainAmp
	if a.gainDB != a.ampDB { // held gain (silence) needs no Pow
		end = dbToAmplitude(a.gainDB)
		a.gainAmp, a.ampDB = end, a.gainDB
	}
	if a.env == 0 && float64(peak(f))*max(g, end) <= a.knee {
		// Nothing in this frame reaches the limiter: the common case, done
		// in fixed point because it is most of the per-caller cost.
		if g == 1 && end == 1 {
			return // unity gain is bit-exact
		}
		rampFixed(f, g, end)
		return
	}
	step := (end - g) / pcm.FrameSamples
	env := a.env
	for i, s := range f {
		g += step
		x := float64(s) * g
		ax := x
		if ax < 0 {
			ax = -ax
		}
		// Instant attack, exponential release. Below the knee the envelope's
		// value does not matter, so it is dropped to zero there: that also
		// keeps it from decaying into slow subnormal arithmetic, and lets
		// the next frame take the fast path.
		env *= limiterRelease
		if ax > env {
			env = ax
		}
		if env <= a.knee {
			env = 0
		} else {
			// Soft knee: the envelope e maps to knee + span·u/(1+u) with
			// u = (e-knee)/span, which leaves the knee with slope 1 and
			// approaches the ceiling without reaching it. |x| ≤ e, so the
			// scaled sample stays strictly under the ceiling.
			u := (env - a.knee) / a.span
			x *= (a.knee + a.span*u/(1+u)) / env
		}
		f[i] = pcm.Round(x)
	}
	a.env = env
}

// rampFixed scales f by a gain moving linearly from g0 to g1 (both at most
// a few times unity) across the frame. Gains are 32.32 fixed point, so the
// accumulated step error over a frame stays far below one part in 2²⁰ and
// the ramp meets the next frame's without a seam. The caller guarantees no
// result exceeds int16.
func rampFixed(f *pcm.Frame, g0, g1 float64) {
	const one = 1 << 32
	g := int64(g0 * one)
	step := int64((g1 - g0) * one / pcm.FrameSamples)
	for i, s := range f {
		g += step
		f[i] = int16((int64(s)*g + one/2) >> 32) // round half up
	}
}

// peak returns the largest sample magnitude in f.
func peak(f *pcm.Frame) int {
	m := 0
	for _, s := range f {
		v := int(s)
		if v < 0 {
			v = -v
		}
		m = max(m, v)
	}
	return m
}

// GainDB returns the gain in dB reached at the end of the last frame (0 until
// the caller first talks, unless 0 dB lies outside the configured bounds).
func (a *AGC) GainDB() float64 { return a.gainDB }
