package jitter

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/media/pcm"
)

// jitterProfile returns a packet's extra network delay by its index.
type jitterProfile func(r *rand.Rand, i int) time.Duration

// profiled builds 20 ms packets of signal with extra delays from prof.
func profiled(packets int, seed uint64, signal func(index, n int, ts0 uint32, out []int16), prof jitterProfile) []pkt {
	r := rand.New(rand.NewPCG(seed, 3))
	var out []pkt
	for i := range packets {
		sm := make([]int16, frame)
		signal(i, frame, 0, sm)
		out = append(out, pkt{ssrc: 9, seq: uint16(i), ts: uint32(i * frame), samples: sm, index: i,
			arrival: t0.Add(time.Duration(i)*pcm.FrameDuration + prof(r, i))})
	}
	slices.SortStableFunc(out, func(a, b pkt) int { return a.arrival.Compare(b.arrival) })
	return out
}

// TestAdaptation: the delay grows quickly when the network turns bad and
// shrinks slowly, in 10 ms steps, when it calms down, without clicks.
func TestAdaptation(t *testing.T) {
	const (
		ms      = time.Millisecond
		badFrom = 100  // 2 s of a clean network first
		goodAt  = 600  // then 10 s of 60 ms uniform jitter
		packets = 2100 // then 30 s clean again
	)
	prof := func(r *rand.Rand, i int) time.Duration {
		if i >= badFrom && i < goodAt {
			return time.Duration(r.Int64N(int64(60 * ms)))
		}
		return 0
	}
	for _, sig := range []struct {
		name   string
		signal func(index, n int, ts0 uint32, out []int16)
	}{{"tagged", tagged}, {"voiced", voicedSignal}} {
		t.Run(sig.name, func(t *testing.T) {
			pkts := profiled(packets, 11, sig.signal, prof)
			b := New(Config{})
			res := run(b, pkts, 13*ms, 300*ms)
			st := b.Stats()
			t.Logf("final %+v", st)

			peak := slices.MaxFunc(res.stats, func(a, b Stats) int { return int(a.TargetDelay - b.TargetDelay) }).TargetDelay
			if peak < 60*ms || peak > 120*ms {
				t.Errorf("target peaked at %v for 60 ms of jitter", peak)
			}
			// Grows quickly: within half a second of the bad network (frame
			// i is popped about when packet i is due).
			if d := res.stats[badFrom+25].TargetDelay; d < 50*ms {
				t.Errorf("target %v half a second into the jitter", d)
			}
			if st.Late > 10 {
				t.Errorf("%d late packets", st.Late)
			}
			// Shrinks slowly: down in steps of at most 10 ms, at least a
			// second apart, back to the minimum by the end.
			lastDrop := -1000
			for i := 1; i < len(res.stats); i++ {
				d := res.stats[i].TargetDelay - res.stats[i-1].TargetDelay
				if d < 0 {
					if d < -delayStep || i-lastDrop < 50 {
						t.Fatalf("frame %d: target fell %v, %d frames after the last fall", i, -d, i-lastDrop)
					}
					lastDrop = i
				}
			}
			end := res.stats[len(res.stats)-20]
			if end.TargetDelay != DefaultMinDelay || end.CurrentDelay > DefaultMinDelay+deadband*time.Duration(nsPerSample) {
				t.Errorf("at the end target %v current %v, want back at %v", end.TargetDelay, end.CurrentDelay, DefaultMinDelay)
			}
			for i := goodAt + 20; i < len(res.stats)-20; i += 250 {
				t.Logf("t=%5.1fs target %v current %v", float64(i)/50, res.stats[i].TargetDelay, res.stats[i].CurrentDelay)
			}
			switch sig.name {
			case "tagged":
				checkPlayed(t, res, packets)
			case "voiced":
				var src []int16
				for i := range packets * frame {
					src = append(src, voiced(i))
				}
				from := slices.IndexFunc(res.out, func(v int16) bool { return v != 0 }) + 1
				if got, natural := maxStep(res.out[from:]), maxStep(src); float64(got) > 1.25*float64(natural) {
					t.Errorf("largest step %d, the signal's own is %d", got, natural)
				}
			}
		})
	}
}

// TestDelayStep: the path suddenly gets slower. A small step is absorbed
// by growing the delay; a large one restarts the stream after a few late
// packets instead of dropping everything.
func TestDelayStep(t *testing.T) {
	const ms = time.Millisecond
	tests := []struct {
		step    time.Duration
		resyncs uint64
		maxLate uint64
	}{
		{30 * ms, 0, 2},
		{60 * ms, 0, 3},
		{150 * ms, 1, lateRunResync - 1},
		{3 * time.Second, 1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.step.String(), func(t *testing.T) {
			pkts := profiled(300, 1, tagged, func(_ *rand.Rand, i int) time.Duration {
				if i >= 100 {
					return tc.step
				}
				return 0
			})
			b := New(Config{})
			res := run(b, pkts, 9*ms, 300*ms)
			checkPlayed(t, res, 300)
			st := b.Stats()
			t.Logf("%+v", st)
			if st.Resyncs != tc.resyncs || st.Late > tc.maxLate {
				t.Errorf("resyncs %d late %d, want %d and at most %d", st.Resyncs, st.Late, tc.resyncs, tc.maxLate)
			}
		})
	}
}

// TestClockStall: when the mixing clock stops for a while and packets
// pile up, Pop catches up to the target delay at once, splicing with a
// crossfade, and keeps playing in order.
func TestClockStall(t *testing.T) {
	pkts := profiled(200, 1, voicedSignal, func(*rand.Rand, int) time.Duration { return 0 })
	b := New(Config{})
	var f pcm.Frame
	var out []int16
	next := 0
	for now := t0.Add(3 * time.Millisecond); now.Before(t0.Add(4500 * time.Millisecond)); now = now.Add(pcm.FrameDuration) {
		for next < len(pkts) && !pkts[next].arrival.After(now) {
			p := pkts[next]
			b.Push(p.ssrc, p.seq, p.ts, p.marker, p.samples, p.arrival)
			next++
		}
		if now.After(t0.Add(time.Second)) && now.Before(t0.Add(1500*time.Millisecond)) {
			continue // the clock stalls for 500 ms
		}
		b.Pop(&f, now)
		out = append(out, f[:]...)
		if now.After(t0.Add(1600*time.Millisecond)) && now.Before(t0.Add(3*time.Second)) {
			if d := b.Stats().CurrentDelay; d > 30*time.Millisecond {
				t.Fatalf("at %v delay still %v after the stall", now.Sub(t0), d)
			}
		}
	}
	var src []int16
	for i := range 200 * frame {
		src = append(src, voiced(i))
	}
	from := slices.IndexFunc(out, func(v int16) bool { return v != 0 }) + 1
	if got, natural := maxStep(out[from:]), maxStep(src); float64(got) > 1.25*float64(natural) {
		t.Errorf("largest step %d, the signal's own is %d", got, natural)
	}
}
