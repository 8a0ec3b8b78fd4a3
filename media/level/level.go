// Package level decides, frame by frame, whether a caller is talking, keeps
// open lines that carry only background noise out of the mix, and brings every
// talker toward a common speech level without ever clipping the room.
//
// Three independent, per-caller stages run on each 20 ms frame (8 kHz):
//
//   - Talker: level-based talker detection with hysteresis (an on threshold
//     that must be held for a few frames and a lower off threshold that must
//     be undercut for longer), in the spirit of Asterisk ConfBridge's
//     dsp_talking_threshold/dsp_silence_threshold and FreeSWITCH's
//     energy-level. It measures level, not stationarity: a steady tone at
//     speech level is talk, so test tones behave like voices.
//   - AGC: slow automatic gain toward a target speech level, adapted only
//     while the caller talks, followed by a soft peak limiter without
//     look-ahead so that no output sample reaches full scale.
//   - Gate: a noise gate driven by the Talker's Voice: it opens on the first
//     loud frame (an Onset, before the talkspurt is confirmed) so no word
//     loses its start, holds after a talkspurt, and fades so that opening
//     and closing never click.
//
// The intended order for one caller's frame f is
//
//	talking, changed := talker.Process(f)   // measure the caller as sent
//	agc.Process(f, talking)                // level and limit
//	open := gate.Process(f, talker.Voice()) // fade or silence; mix f only if open
//
// The AGC measures before the gate so that the gate's fades never bias its
// level estimate, and the gate only ever attenuates, so the limiter's
// guarantee survives it.
//
// Everything here is pure and allocation-free: no goroutines, no locks, no
// wall clock. Frames are the clock, so time constants are stated in frames or
// samples and tests drive the stages directly. Values are not safe for
// concurrent use; each belongs to one caller's media path.
//
// Levels are in dBFS with the AES17 convention used across groupbridge (see
// media/tone): a sine whose peak is 32767 is 0 dBFS, and RMS levels are
// referenced to that sine's RMS, so a -20 dBFS sine reads -20 by peak and by
// RMS alike.
package level

import (
	"math"

	"github.com/groupbridge/groupbridge/media/pcm"
)

// FloorDBFS is the lowest level reported, the level of digital silence, so
// that callers sort and compare finite numbers and never see -Inf.
const FloorDBFS = -150.0

const (
	// fullScale is the peak of a 0 dBFS sine.
	fullScale = 32767.0
	// sineRefPower is the mean square of a 0 dBFS sine: the reference that
	// makes RMS and peak readings of a sine agree.
	sineRefPower = fullScale * fullScale / 2
	// floorPower is FloorDBFS as a normalised power.
	floorPower = 1e-15
	// framesPerSecond converts the time constants below into per-frame rates.
	framesPerSecond = pcm.SampleRate / pcm.FrameSamples
)

// framePower returns the mean square of f normalised so that a 0 dBFS sine
// reads 1. The sum is exact in int64 (160 · 2³⁰ fits easily).
func framePower(f *pcm.Frame) float64 {
	var sum int64
	for _, s := range f {
		sum += int64(s) * int64(s)
	}
	return float64(sum) / (pcm.FrameSamples * sineRefPower)
}

// powerToDB converts a normalised power to dBFS, clamped at FloorDBFS.
func powerToDB(p float64) float64 {
	if p <= floorPower {
		return FloorDBFS
	}
	return 10 * math.Log10(p)
}

// dbToPower converts dBFS (or a dB ratio) to a power ratio.
func dbToPower(db float64) float64 { return math.Pow(10, db/10) }

// dbToAmplitude converts a dB ratio to an amplitude ratio.
func dbToAmplitude(db float64) float64 { return math.Pow(10, db/20) }

// smoothing returns the one-pole coefficient of an exponential average with
// time constant tau measured in steps: after tau steps 63% of a step change
// has been followed.
func smoothing(tau float64) float64 { return 1 - math.Exp(-1/tau) }

// finite reports whether v is a usable configuration number.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
