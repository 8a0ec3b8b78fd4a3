package jitter

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/media/pcm"
)

// TestInOrderExact: an unimpaired stream comes out sample for sample,
// delayed by a constant, whatever the packet size and the phase of the
// mixing clock against the arrivals.
func TestInOrderExact(t *testing.T) {
	tests := []struct {
		ptime int
		phase time.Duration
	}{
		{20, 0}, {20, 7 * time.Millisecond}, {20, 19 * time.Millisecond},
		{10, 3 * time.Millisecond}, {30, 0}, {30, 11 * time.Millisecond},
		{40, 5 * time.Millisecond}, {60, 0},
	}
	for _, tc := range tests {
		t.Run(time.Duration(tc.ptime*int(time.Millisecond)).String()+"/phase="+tc.phase.String(), func(t *testing.T) {
			s := stream{ptime: tc.ptime, packets: 3000 / tc.ptime, seed: 1, seq0: 100, ts0: 5000, signal: noiseSignal}
			pkts := s.gen()
			var src []int16
			for _, p := range pkts {
				src = append(src, p.samples...)
			}
			b := New(Config{})
			res := run(b, pkts, tc.phase, 300*time.Millisecond)
			d := slices.IndexFunc(res.out, func(v int16) bool { return v != 0 })
			if d < 0 || d+len(src) > len(res.out) {
				t.Fatalf("output too short: first sound at %d of %d", d, len(res.out))
			}
			if i := firstDiff(res.out[d:d+len(src)], src); i >= 0 {
				t.Fatalf("sample %d differs: got %d, want %d", i, res.out[d+i], src[i])
			}
			// The first sample arrived at t0; it played d samples after the
			// first Pop at t0+phase.
			delay := time.Duration(d)*time.Second/pcm.SampleRate + tc.phase
			st := b.Stats()
			t.Logf("arrival to playout %v (target %v, current %v)", delay, st.TargetDelay, st.CurrentDelay)
			if lo, hi := DefaultMinDelay+pcm.FrameDuration, DefaultMinDelay+2*pcm.FrameDuration+time.Duration(tc.ptime)*time.Millisecond; delay < lo || delay > hi {
				t.Errorf("delay %v outside [%v, %v]", delay, lo, hi)
			}
			// Until the last sample has played (after it the stream has
			// stopped and is concealed), every frame is audio or the
			// silence before the first.
			endFrame := (d+len(src))/frame - 1
			if i := slices.Index(res.kinds[:endFrame+1], Concealed); i >= 0 {
				t.Errorf("frame %d concealed in a clean stream", i)
			}
			if st := res.stats[endFrame]; st.Concealed != 0 || st.Late != 0 || st.Lost != 0 || st.Resyncs != 0 || st.Duplicates != 0 {
				t.Errorf("clean stream: %+v", st)
			}
		})
	}
}

func firstDiff(a, b []int16) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// TestImpairments: over reordering, duplicates, loss, jitter, bursts,
// an SSRC change, sequence and timestamp wrap and other packet sizes,
// every packet Push buffered plays, in order; duplicates and losses are
// counted exactly; the delay stays within its bounds.
func TestImpairments(t *testing.T) {
	const ms = time.Millisecond
	tests := []struct {
		name     string
		s        stream
		resyncs  uint64
		maxLate  float64 // fraction of packets allowed to be dropped as late
		maxDelay time.Duration
	}{
		{name: "reorder", s: stream{ptime: 20, swap: 2}, maxDelay: 60 * ms},
		{name: "reorder-every-7", s: stream{ptime: 20, swap: 7}, maxLate: 0.01, maxDelay: 60 * ms},
		{name: "duplicates", s: stream{ptime: 20, dup: 3}, maxDelay: 60 * ms},
		{name: "loss-5%", s: stream{ptime: 20, loss: 0.05}, maxDelay: 40 * ms},
		{name: "jitter-40ms", s: stream{ptime: 20, jitter: 40 * ms}, maxLate: 0.02, maxDelay: 120 * ms},
		{name: "bursts-of-3", s: stream{ptime: 20, burst: 25}, maxDelay: 40 * ms},
		{name: "ssrc-change", s: stream{ptime: 20, ssrcAt: 260}, resyncs: 1, maxDelay: 60 * ms},
		{name: "ssrc-change-jitter", s: stream{ptime: 20, ssrcAt: 260, jitter: 30 * ms}, resyncs: 1, maxLate: 0.02, maxDelay: 120 * ms},
		{name: "seq-wrap", s: stream{ptime: 20, seq0: 65535 - 40, loss: 0.05, swap: 5}, maxLate: 0.01, maxDelay: 60 * ms},
		{name: "ts-wrap", s: stream{ptime: 20, ts0: 1<<32 - 60*160, loss: 0.05, swap: 5}, maxLate: 0.01, maxDelay: 60 * ms},
		{name: "ptime-10", s: stream{ptime: 10, loss: 0.05, jitter: 40 * ms}, maxLate: 0.02, maxDelay: 120 * ms},
		{name: "ptime-30", s: stream{ptime: 30, loss: 0.05, jitter: 40 * ms}, maxLate: 0.02, maxDelay: 120 * ms},
		{name: "ptime-40", s: stream{ptime: 40, loss: 0.05, jitter: 40 * ms}, maxLate: 0.02, maxDelay: 120 * ms},
		{name: "everything", s: stream{ptime: 20, loss: 0.05, burst: 60, jitter: 40 * ms, swap: 9, dup: 11, seq0: 65000, ts0: 1<<32 - 100*160}, maxLate: 0.02, maxDelay: 120 * ms},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.s
			s.packets = 10000 / s.ptime // 10 s
			s.seed = 7
			s.keepLast = 3
			s.signal = tagged
			pkts := s.gen()
			b := New(Config{})
			res := run(b, pkts, 3*time.Millisecond, 400*time.Millisecond)
			checkPlayed(t, res, s.packets)

			st := b.Stats()
			dups := 0
			for _, p := range pkts {
				if p.dup {
					dups++
				}
			}
			if st.Duplicates != uint64(dups) {
				t.Errorf("Duplicates = %d, want %d", st.Duplicates, dups)
			}
			if st.Resyncs != tc.resyncs {
				t.Errorf("Resyncs = %d, want %d", st.Resyncs, tc.resyncs)
			}
			if st.Lost != uint64(len(s.dropped)) {
				t.Errorf("Lost = %d, want %d", st.Lost, len(s.dropped))
			}
			if late := float64(st.Late) / float64(s.packets); late > tc.maxLate {
				t.Errorf("%d late packets (%.1f%%), want at most %.1f%%", st.Late, 100*late, 100*tc.maxLate)
			}
			if got := st.Accepted + st.Late + st.Duplicates; got != uint64(len(pkts)) {
				t.Errorf("Accepted+Late+Duplicates = %d, want %d packets", got, len(pkts))
			}
			// The delay: the target always within bounds and no higher than
			// this network needs; the measured delay, once the first second
			// has shown the network, within bounds too.
			var sum time.Duration
			lo, hi, top := time.Duration(1<<62), time.Duration(0), time.Duration(0)
			const warm, tail = 50, 20
			for i, x := range res.stats {
				if x.TargetDelay < DefaultMinDelay || x.TargetDelay > DefaultMaxDelay {
					t.Fatalf("frame %d: target %v outside bounds", i, x.TargetDelay)
				}
				top = max(top, x.TargetDelay)
				if i < warm || i >= len(res.stats)-tail {
					continue
				}
				sum += x.CurrentDelay
				lo, hi = min(lo, x.CurrentDelay), max(hi, x.CurrentDelay)
			}
			mean := sum / time.Duration(len(res.stats)-warm-tail)
			t.Logf("target %v (max %v), current delay mean %v [%v, %v], jitter %v; accepted %d late %d dup %d lost %d concealed %d resync %d",
				st.TargetDelay, top, mean, lo, hi, st.Jitter, st.Accepted, st.Late, st.Duplicates, st.Lost, st.Concealed, st.Resyncs)
			if lo < DefaultMinDelay-deadband*time.Duration(nsPerSample) || hi > DefaultMaxDelay {
				t.Errorf("current delay ranged [%v, %v], want within [%v, %v]", lo, hi, DefaultMinDelay, DefaultMaxDelay)
			}
			if top > tc.maxDelay {
				t.Errorf("target rose to %v, want at most %v for this network", top, tc.maxDelay)
			}
			if st.Concealed == 0 && len(s.dropped) > 0 {
				t.Error("losses but nothing concealed")
			}
		})
	}
}

// TestConcealmentFade: after the last good frame, the first concealed
// frame carries about its energy, each further one less, and from 60 ms
// after the loss the output is silence; audio that comes back is
// crossfaded in without a click.
func TestConcealmentFade(t *testing.T) {
	tests := []struct {
		name   string
		ptime  int
		lose   []int // packet indexes lost
		phase  time.Duration
		resume bool
	}{
		{name: "one-lost", ptime: 20, lose: []int{40}, resume: true},
		{name: "three-lost", ptime: 20, lose: []int{40, 41, 42}, resume: true},
		{name: "long-loss", ptime: 20, lose: seqInts(40, 60), resume: true},
		{name: "stream-stops", ptime: 20, lose: seqInts(40, 100)},
		{name: "ptime-30-mid-frame", ptime: 30, lose: seqInts(27, 35), phase: 9 * time.Millisecond, resume: true},
		{name: "ptime-10", ptime: 10, lose: seqInts(80, 86), phase: 4 * time.Millisecond, resume: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := stream{ptime: tc.ptime, packets: 2000 / tc.ptime, signal: voicedSignal}
			pkts := slices.DeleteFunc(s.gen(), func(p pkt) bool { return slices.Contains(tc.lose, p.index) })
			b := New(Config{})
			res := run(b, pkts, tc.phase, 200*time.Millisecond)
			first := slices.Index(res.kinds, Concealed)
			if first < 1 || res.kinds[first-1] != Audio {
				t.Fatalf("kinds %v: no concealment after audio", res.kinds)
			}
			good := frameEnergy(res.out, first-1)
			energies := []float64{}
			for i := first; i < len(res.kinds) && res.kinds[i] == Concealed; i++ {
				energies = append(energies, frameEnergy(res.out, i))
			}
			t.Logf("last good %.0f, concealed %.0f", good, energies)
			if len(energies) > 4 {
				t.Errorf("%d concealed frames, want at most 4 (60 ms from any phase)", len(energies))
			}
			// The frame the loss starts in is mostly at full level (the
			// first 10 ms of a repeat are).
			if r := energies[0] / good; r < 0.6 || r > 1.2 {
				t.Errorf("first concealed frame at %.2f of the last good one", r)
			}
			// Sample-exact envelope: nothing is time-scaled on this clean
			// network, so source sample p plays at output d+p. The first
			// 10 ms of the loss carry the level of the 10 ms before it; from
			// 60 ms into the loss on, the output is zero.
			d := slices.IndexFunc(res.out, func(v int16) bool { return v != 0 })
			n := tc.ptime * 8
			l0, l1 := d+tc.lose[0]*n, d+(tc.lose[len(tc.lose)-1]+1)*n
			var before, first10 pcm.Frame
			for i := range fullGain {
				before[i] = voiced(tc.lose[0]*n - fullGain + i)
				first10[i] = res.out[l0+i]
			}
			if r := float64(first10.Energy()) / float64(before.Energy()); r < 0.7 || r > 1.3 {
				t.Errorf("first 10 ms of the loss at %.2f of the level before it", r)
			}
			for i := l0 + 60*8; i < l1 && i < len(res.out); i++ {
				if res.out[i] != 0 {
					t.Fatalf("sample %d, %d ms into the loss: %d, want silence", i, (i-l0)/8, res.out[i])
				}
			}
			for i := 1; i < len(energies); i++ {
				if energies[i] >= energies[i-1] {
					t.Errorf("concealed frame %d energy %.0f not below %.0f", i, energies[i], energies[i-1])
				}
			}
			after := first + len(energies)
			if len(tc.lose)*tc.ptime > 80 {
				if after >= len(res.kinds) || res.kinds[after] != Silence {
					t.Fatalf("frame after concealment is %v, want silence", res.kinds[after])
				}
				for i := after * frame; i < (after+1)*frame; i++ {
					if res.out[i] != 0 {
						t.Fatalf("silence frame has sample %d", res.out[i])
					}
				}
			}
			if tc.resume {
				back := slices.Index(res.kinds[after:], Audio)
				if back < 0 {
					t.Fatal("audio never came back")
				}
			}
			// No click anywhere: no step larger than the signal's own.
			var src []int16
			for i := range s.packets * tc.ptime * 8 {
				src = append(src, voiced(i))
			}
			// The check starts after the stream's first sample: the sender
			// starts mid-waveform, which the buffer plays as received.
			from := slices.IndexFunc(res.out, func(v int16) bool { return v != 0 }) + 1
			if got, natural := maxStep(res.out[from:]), maxStep(src); float64(got) > 1.25*float64(natural) {
				t.Errorf("largest step %d, the signal's own is %d", got, natural)
			}
			// Counted at the first frame after the loss's concealment (the
			// end of the stream is concealed too).
			if st := res.stats[after]; st.Concealed != uint64(len(energies)) {
				t.Errorf("%d frames concealed, want %d", st.Concealed, len(energies))
			}
			if st := b.Stats(); st.Lost != uint64(lostCounted(tc.lose, s.packets)) {
				t.Errorf("%d lost, want %d", st.Lost, lostCounted(tc.lose, s.packets))
			}
		})
	}
}

// lostCounted is how many of lose sequence gaps can reveal: those before
// the last packet received.
func lostCounted(lose []int, packets int) int {
	if lose[len(lose)-1] == packets-1 {
		return 0
	}
	return len(lose)
}

func seqInts(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

// TestNoClick: around every concealment and every return of audio, no
// sample-to-sample step, and no second difference (a click bends the
// waveform by its whole size, a smooth one bends little), exceeds the
// signal's own largest by more than a quarter, for tones and vowels whose
// period is not a whole number of samples and for a pitch glide.
func TestNoClick(t *testing.T) {
	tone := func(hz float64) func(int) int16 {
		return func(p int) int16 { return int16(9000 * math.Sin(2*math.Pi*hz*float64(p)/pcm.SampleRate)) }
	}
	vowel := func(f0 float64) func(int) int16 {
		return func(p int) int16 {
			v := 0.0
			for h, a := range []float64{6000, 3500, 2000, 900} {
				v += a * math.Sin(2*math.Pi*f0*float64(h+1)*float64(p)/pcm.SampleRate+float64(h))
			}
			return int16(v)
		}
	}
	glide := func(p int) int16 {
		t := float64(p) / pcm.SampleRate
		return int16(8000 * math.Sin(2*math.Pi*(110*t+15*t*t))) // 110 Hz rising 30 Hz/s
	}
	tests := []struct {
		name string
		sig  func(int) int16
	}{
		{"tone-440Hz", tone(440)}, {"tone-1000Hz", tone(1000)}, {"tone-3100Hz", tone(3100)},
		{"vowel-137Hz", vowel(137)}, {"vowel-211Hz", vowel(211)}, {"glide", glide},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := stream{ptime: 20, packets: 250, seed: 3, burst: 23, loss: 0.05, keepLast: 1,
				signal: func(index, n int, _ uint32, out []int16) {
					for i := range out[:n] {
						out[i] = tc.sig(index*n + i)
					}
				}}
			b := New(Config{})
			res := run(b, s.gen(), 7*time.Millisecond, 200*time.Millisecond)
			src := make([]int16, s.packets*frame)
			for i := range src {
				src[i] = tc.sig(i)
			}
			from := slices.IndexFunc(res.out, func(v int16) bool { return v != 0 }) + 1
			got, natural := maxStep(res.out[from:]), maxStep(src)
			bend, naturalBend := maxBend(res.out[from:]), maxBend(src)
			t.Logf("largest step %d, the signal's own %d; largest bend %d, the signal's own %d; %d frames concealed",
				got, natural, bend, naturalBend, b.Stats().Concealed)
			if float64(got) > 1.25*float64(natural) {
				t.Errorf("largest step %d, the signal's own is %d", got, natural)
			}
			if float64(bend) > 1.25*float64(naturalBend) {
				t.Errorf("largest bend %d, the signal's own is %d: a click", bend, naturalBend)
			}
		})
	}
}
