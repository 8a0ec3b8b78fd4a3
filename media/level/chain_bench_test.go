package level_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/media/jitter"
	"github.com/groupbridge/groupbridge/media/level"
	"github.com/groupbridge/groupbridge/media/pcm"
	"github.com/groupbridge/groupbridge/media/tone"
)

// BenchmarkCallerChain is the whole per-caller receive chain the room runs
// every 20 ms: jitter buffer push (with 5% loss and 40 ms jitter) and pop
// (with concealment), talker detection, AGC and the noise gate. One op is
// one caller-frame.
func BenchmarkCallerChain(b *testing.B) {
	for _, tc := range []struct {
		name string
		loss float64
	}{{"clean", 0}, {"loss5-jitter40", 0.05}} {
		b.Run(tc.name, func(b *testing.B) {
			const frames = 4096
			src := make([]pcm.Frame, 64)
			sine := tone.NewSine(440, -20)
			for i := range src {
				sine.Fill(&src[i])
			}
			rng := rand.New(rand.NewPCG(1, 2))
			lost := make([]bool, frames)
			delay := make([]time.Duration, frames)
			for i := range lost {
				lost[i] = rng.Float64() < tc.loss
				if tc.loss > 0 {
					delay[i] = time.Duration(rng.Int64N(int64(40 * time.Millisecond)))
				}
			}
			buf := jitter.New(jitter.Config{})
			talker := level.NewTalker(level.TalkerConfig{})
			agc := level.NewAGC(level.AGCConfig{})
			gate := level.NewGate()
			var out pcm.Frame
			t0 := time.Unix(1_800_000_000, 0)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				n := i % frames
				now := t0.Add(time.Duration(i) * pcm.FrameDuration)
				if !lost[n] {
					buf.Push(7, uint16(i), uint32(i*pcm.FrameSamples), i == 0, src[i%len(src)][:], now.Add(delay[n]))
				}
				buf.Pop(&out, now.Add(60*time.Millisecond))
				talking, _ := talker.Process(&out)
				agc.Process(&out, talking)
				gate.Process(&out, talker.Voice())
				i++
			}
		})
	}
}
