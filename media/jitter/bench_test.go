package jitter

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/media/pcm"
)

// benchNet is a repeating network schedule: per packet, an extra delay
// and whether it is lost.
type benchNet struct {
	delay []time.Duration
	lost  []bool
}

func newBenchNet(loss float64, jitter time.Duration) benchNet {
	r := rand.New(rand.NewPCG(42, 42))
	const n = 4096
	nw := benchNet{delay: make([]time.Duration, n), lost: make([]bool, n)}
	for i := range n {
		if jitter > 0 {
			nw.delay[i] = time.Duration(r.Int64N(int64(jitter)))
		}
		nw.lost[i] = r.Float64() < loss
	}
	return nw
}

// BenchmarkPushPop is the per-caller cost of one 20 ms tick: the packets
// that arrived (one on average) pushed, one frame popped. It reports the
// time spent in Push and in Pop separately, per call.
func BenchmarkPushPop(b *testing.B) {
	cases := []struct {
		name   string
		loss   float64
		jitter time.Duration
	}{
		{"clean", 0, 0},
		{"loss5%-jitter40ms", 0.05, 40 * time.Millisecond},
		{"loss20%", 0.20, 0},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			nw := newBenchNet(tc.loss, tc.jitter)
			buf := New(Config{})
			samples := make([]int16, frame)
			for i := range samples {
				samples[i] = voiced(i)
			}
			var f pcm.Frame
			var pushNs, popNs time.Duration
			var pushes, pops int
			next := 0 // next packet to send
			tick := 0
			// A packet's arrival, by index: sent every 20 ms, delayed by the
			// schedule. Packets are pushed when their arrival has come, in
			// send order (close enough to arrival order for a cost figure).
			arrival := func(i int) time.Time {
				return t0.Add(time.Duration(i)*pcm.FrameDuration + nw.delay[i%len(nw.delay)])
			}
			for b.Loop() {
				now := t0.Add(time.Duration(tick)*pcm.FrameDuration + 3*time.Millisecond)
				tick++
				start := time.Now()
				for next < tick && !arrival(next).After(now) {
					if !nw.lost[next%len(nw.lost)] {
						buf.Push(7, uint16(next), uint32(next*frame), false, samples, arrival(next))
						pushes++
					}
					next++
				}
				mid := time.Now()
				buf.Pop(&f, now)
				pops++
				popNs += time.Since(mid)
				pushNs += mid.Sub(start)
			}
			if pushes > 0 {
				b.ReportMetric(float64(pushNs.Nanoseconds())/float64(pushes), "ns/push")
			}
			b.ReportMetric(float64(popNs.Nanoseconds())/float64(pops), "ns/pop")
		})
	}
}

// BenchmarkConceal is the cost of the frames where concealment starts:
// every other packet lost, so each Pop begins a new repeat (pitch search
// included) and crossfades back.
func BenchmarkConceal(b *testing.B) {
	b.ReportAllocs()
	buf := New(Config{})
	samples := make([]int16, frame)
	var f pcm.Frame
	i := 0
	for b.Loop() {
		at := t0.Add(time.Duration(i) * pcm.FrameDuration)
		if i%2 == 0 {
			for j := range samples {
				samples[j] = voiced(i*frame + j)
			}
			buf.Push(7, uint16(i), uint32(i*frame), false, samples, at)
		}
		buf.Pop(&f, at.Add(3*time.Millisecond))
		i++
	}
	b.StopTimer()
	if buf.Stats().Concealed == 0 {
		b.Fatal("nothing concealed")
	}
}
