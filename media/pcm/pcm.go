// Package pcm holds the linear audio frame every other media package works on:
// 20 ms of 8 kHz mono signed 16-bit samples, the unit the mixing clock ticks in.
//
// It imports nothing of the project and must not know codecs, sockets or
// calls: Stream is the two methods every user of a caller's audio needs.
package pcm

import "time"

const (
	// SampleRate is the narrowband telephone rate all mixing runs at.
	SampleRate = 8000
	// FrameSamples is the number of samples in one 20 ms frame.
	FrameSamples = 160
	// FrameDuration is the length of one frame and the period of the mixing clock.
	FrameDuration = 20 * time.Millisecond
)

// Stream is a caller's media, 20 ms at a time, as the lobby and the rooms
// use it; *rtpio.Stream is one. It lives here, beside the frame, so that
// every package that plays to or hears a caller names one interface.
type Stream interface {
	// ReadFrame pops the caller's next 20 ms; false when there is none (or
	// the caller is on hold, which the stream knows from SDP).
	ReadFrame(f *Frame) bool
	// WriteFrame sends 20 ms to the caller.
	WriteFrame(f *Frame)
}

// Frame is 20 ms of 8 kHz mono audio. It is an array, not a slice, so frames
// live inside their owners and never cost an allocation.
type Frame [FrameSamples]int16

// Clamp saturates a 32-bit sum to the int16 range. Mixing sums in int32 and
// clamps exactly once so that subtracting a member's own voice stays exact.
func Clamp(v int32) int16 {
	if v > 32767 {
		return 32767
	}
	if v < -32768 {
		return -32768
	}
	return int16(v)
}

// Round converts a sample computed in floating point: rounded half away
// from zero and saturated to the int16 range.
func Round(v float64) int16 {
	if v >= 0 {
		v += 0.5
	} else {
		v -= 0.5
	}
	if v >= 32767 {
		return 32767
	}
	if v <= -32768 {
		return -32768
	}
	return int16(v)
}

// Silence sets every sample of f to zero.
func (f *Frame) Silence() { *f = Frame{} }

// Add mixes g into f with saturation: an overlay (a chime over a prompt,
// comfort noise under hold music) on top of what f already holds.
func (f *Frame) Add(g *Frame) {
	for i, v := range g {
		f[i] = Clamp(int32(f[i]) + int32(v))
	}
}

// Gain scales f by num/den in place with saturation; integer maths keeps it
// exact and cheap on the hot path.
func (f *Frame) Gain(num, den int32) {
	for i, s := range f {
		f[i] = Clamp(int32(s) * num / den)
	}
}

// Energy returns the mean square of the samples, a cheap level measure.
func (f *Frame) Energy() int64 {
	var e int64
	for _, s := range f {
		e += int64(s) * int64(s)
	}
	return e / FrameSamples
}
