package dtmf

import (
	"math"
	"syscall"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/pcm"
)

// BenchmarkInbandOrdinary measures the in-band path as media/rtpio runs it
// for a caller without telephone-event (a Filter with a 3-frame delay, one
// Process per 20 ms frame) over audio with no key presses: ns/op is the
// cost per frame. The corpora are what such a caller mostly sends: the
// talk-off speech (espeak-ng, G.711, with its pauses) as rendered and
// 12 dB down, digital silence, and line noise at -60 and -40 dBm0 (the
// latter a loud background, above the energy gate). cpu-ns/frame is the
// process's CPU time per frame, which time spent waiting for a CPU on a
// shared machine does not inflate as it does ns/op.
func BenchmarkInbandOrdinary(b *testing.B) {
	corpora := []struct {
		name string
		make func(b *testing.B) []int16
	}{
		{"speech", func(b *testing.B) []int16 { s, _ := speech(b); return s }},
		{"speech-12dB", func(b *testing.B) []int16 { s, _ := speech(b); return scaled(s, 0.25) }},
		{"silence", func(*testing.B) []int16 { return make([]int16, 50*pcm.SampleRate) }},
		{"noise-60dBm0", func(*testing.B) []int16 { return lineNoise(50*pcm.SampleRate, -60) }},
		{"noise-40dBm0", func(*testing.B) []int16 { return lineNoise(50*pcm.SampleRate, -40) }},
	}
	for _, c := range corpora {
		b.Run(c.name, func(b *testing.B) {
			x := c.make(b)
			b.ReportAllocs()
			fl := NewFilter(3)
			var out pcm.Frame
			i, n := 0, 0
			cpu := cpuTime(b)
			for b.Loop() {
				fl.Process((*pcm.Frame)(x[i:i+pcm.FrameSamples]), &out)
				i = (i + pcm.FrameSamples) % len(x)
				n++
			}
			b.ReportMetric(float64(cpuTime(b)-cpu)/float64(n), "cpu-ns/frame")
		})
	}
}

// scaled returns x times gain.
func scaled(x []int16, gain float64) []int16 {
	s := make([]int16, len(x))
	for i, v := range x {
		s[i] = pcm.Clamp(int32(math.Round(float64(v) * gain)))
	}
	return s
}

// lineNoise returns n samples of white noise at dBm0 through μ-law.
func lineNoise(n int, dBm0 float64) []int16 {
	x := make([]float64, n)
	addNoise(x, dBm0, 11)
	q := quantise(x)
	enc := make([]byte, len(q))
	g711.PCMU.Encode(enc, q)
	g711.PCMU.Decode(q, enc)
	return q
}

// cpuTime returns the CPU time the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
