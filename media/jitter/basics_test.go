package jitter

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/media/pcm"
)

func TestNewConfig(t *testing.T) {
	const ms = time.Millisecond
	tests := []struct {
		cfg      Config
		min, max time.Duration
	}{
		{Config{}, 20 * ms, 200 * ms},
		{Config{MinDelay: 40 * ms}, 40 * ms, 200 * ms},
		{Config{MinDelay: 300 * ms}, 300 * ms, 300 * ms},
		{Config{MinDelay: 50 * ms, MaxDelay: 30 * ms}, 50 * ms, 50 * ms},
		{Config{MaxDelay: 5 * time.Second}, 20 * ms, time.Second},
		{Config{MinDelay: -1, MaxDelay: -1}, 20 * ms, 200 * ms},
	}
	for _, tc := range tests {
		b := New(tc.cfg)
		if b.minDelay != tc.min || b.maxDelay != tc.max {
			t.Errorf("New(%+v): bounds [%v, %v], want [%v, %v]", tc.cfg, b.minDelay, b.maxDelay, tc.min, tc.max)
		}
		if st := b.Stats(); st.TargetDelay != tc.min {
			t.Errorf("New(%+v): initial target %v, want %v", tc.cfg, st.TargetDelay, tc.min)
		}
	}
}

func TestStrings(t *testing.T) {
	tests := []struct{ got, want string }{
		{Accepted.String(), "accepted"}, {Duplicate.String(), "duplicate"}, {Late.String(), "late"},
		{Resync.String(), "resync"}, {Invalid.String(), "invalid"}, {PushResult(42).String(), "PushResult(42)"},
		{Audio.String(), "audio"}, {Concealed.String(), "concealed"}, {Silence.String(), "silence"},
		{Kind(-3).String(), "Kind(-3)"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

// TestPopWithoutAudio: before any packet, after Reset and once a stream
// has stopped, Pop returns Silence and zeroes the frame.
func TestPopWithoutAudio(t *testing.T) {
	b := New(Config{})
	var f pcm.Frame
	garbage := func() {
		for i := range f {
			f[i] = int16(i*37 + 1)
		}
	}
	garbage()
	if k := b.Pop(&f, t0); k != Silence || f != (pcm.Frame{}) {
		t.Fatalf("before any packet: %v, frame zero %v", k, f == pcm.Frame{})
	}

	sm := make([]int16, frame)
	for i := range sm {
		sm[i] = voiced(i)
	}
	now := t0
	for i := range 20 {
		b.Push(1, uint16(i), uint32(i*frame), false, sm, now)
		b.Pop(&f, now)
		now = now.Add(pcm.FrameDuration)
	}
	// The stream stops: at most 60 ms (plus the frame it starts in) are
	// concealed, then silence for good.
	var kinds []Kind
	for range 250 {
		garbage()
		k := b.Pop(&f, now)
		kinds = append(kinds, k)
		if k == Silence && f != (pcm.Frame{}) {
			t.Fatal("silence with samples")
		}
		now = now.Add(pcm.FrameDuration)
	}
	concealed := 0
	for i, k := range kinds {
		switch {
		case k == Concealed:
			concealed++
		case k == Audio && i > 3:
			t.Fatalf("frame %d after the stream stopped: audio", i)
		}
	}
	if concealed == 0 || concealed > 4 || kinds[len(kinds)-1] != Silence {
		t.Errorf("after the stream stopped: %v", kinds[:8])
	}

	b.Reset()
	garbage()
	if k := b.Pop(&f, now); k != Silence || f != (pcm.Frame{}) {
		t.Fatalf("after Reset: %v", k)
	}
	if st := b.Stats(); st != (Stats{TargetDelay: DefaultMinDelay}) {
		t.Errorf("stats after Reset: %+v", st)
	}
	if r := b.Push(77, 5, 5, false, sm, now); r != Accepted {
		t.Errorf("first packet after Reset: %v", r)
	}
}

// TestPushResults: what Push says about individual packets.
func TestPushResults(t *testing.T) {
	sm := make([]int16, frame)
	type push struct {
		seq    uint16
		ts     uint32
		n      int
		popsTo int // pop frames until this many have been popped first
		want   PushResult
	}
	tests := []struct {
		name   string
		pushes []push
	}{
		{"invalid", []push{{0, 0, 0, 0, Invalid}, {0, 0, MaxPacketSamples + 1, 0, Invalid}, {0, 0, MaxPacketSamples, 0, Accepted}}},
		{"duplicate-held", []push{{1, 160, 160, 0, Accepted}, {1, 160, 160, 0, Duplicate}}},
		{"duplicate-played", []push{{1, 160, 160, 0, Accepted}, {2, 320, 160, 0, Accepted}, {1, 160, 160, 10, Duplicate}}},
		{"same-audio-new-seq", []push{{1, 160, 160, 0, Accepted}, {9, 160, 160, 0, Duplicate}}},
		{"reordered-in-time", []push{{1, 160, 160, 0, Accepted}, {3, 480, 160, 0, Accepted}, {2, 320, 160, 0, Accepted}}},
		{"late", []push{{1, 160, 160, 0, Accepted}, {3, 480, 160, 0, Accepted}, {4, 640, 160, 0, Accepted}, {2, 320, 160, 6, Late}}},
		{"partly-late", []push{{1, 0, 160, 0, Accepted}, {2, 160, 80, 0, Accepted}, {4, 400, 800, 4, Accepted}, {3, 240, 160, 0, Accepted}, {5, 240, 160, 0, Duplicate}}},
		{"odd-sizes", []push{{1, 0, 37, 0, Accepted}, {2, 37, 1001, 0, Accepted}, {3, 1038, 3, 0, Accepted}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := New(Config{})
			var f pcm.Frame
			pops := 0
			for i, p := range tc.pushes {
				for ; pops < p.popsTo; pops++ {
					b.Pop(&f, t0.Add(time.Duration(pops)*pcm.FrameDuration))
				}
				at := t0.Add(time.Duration(p.ts) * time.Second / pcm.SampleRate)
				if got := b.Push(3, p.seq, p.ts, false, sm[:0:0], at); p.n == 0 && got != Invalid {
					t.Errorf("push %d: empty packet %v", i, got)
				}
				if p.n == 0 {
					continue
				}
				if got := b.Push(3, p.seq, p.ts, false, make([]int16, p.n), at); got != p.want {
					t.Errorf("push %d (seq %d ts %d n %d): %v, want %v", i, p.seq, p.ts, p.n, got, p.want)
				}
			}
		})
	}
}

// TestPitch: the concealer repeats the right period of periodic audio and
// a 20 ms segment of noise or silence.
func TestPitch(t *testing.T) {
	sine := func(hz float64) []int16 {
		h := make([]int16, histLen)
		for i := range h {
			h[i] = int16(8000 * math.Sin(2*math.Pi*hz*float64(i)/pcm.SampleRate))
		}
		return h
	}
	r := rand.New(rand.NewPCG(5, 5))
	noise := make([]int16, histLen)
	for i := range noise {
		noise[i] = int16(r.IntN(16001) - 8000)
	}
	vowel := make([]int16, histLen)
	for i := range vowel {
		vowel[i] = voiced(i + 1000)
	}
	tests := []struct {
		name string
		h    []int16
		want []int // acceptable periods
	}{
		{"200Hz", sine(200), []int{40, 80, 120, 160}},
		{"100Hz", sine(100), []int{80, 160}},
		{"1000Hz", sine(1000), []int{24, 32, 40}},
		{"vowel-125Hz", vowel, []int{64, 128}},
		{"noise", noise, []int{maxLag}},
		{"silence", make([]int16, histLen), []int{maxLag}},
	}
	for _, tc := range tests {
		got, score := pitch(tc.h)
		ok := false
		for _, w := range tc.want {
			ok = ok || got == w
		}
		if !ok {
			t.Errorf("%s: period %d (score %.2f), want one of %v", tc.name, got, score, tc.want)
		}
	}
}

// TestRing: presence ranges across the wrap of the ring.
func TestRing(t *testing.T) {
	var r ring
	tests := []struct {
		pos   int64
		n     int
		probe int64
		pn    int
		count int
		first int
	}{
		{ringSize - 10, 30, ringSize - 20, 60, 30, 10},
		{-5, 10, -5, 10, 10, 0},
		{100, 1, 0, 200, 1, 100},
		{3 * ringSize, ringSize, 0, ringSize, ringSize, 0},
		{64, 64, 0, 64, 0, -1},
	}
	for _, tc := range tests {
		r.clear()
		src := make([]int16, tc.n)
		for i := range src {
			src[i] = int16(i + 1)
		}
		r.write(tc.pos, src)
		if c := r.count(tc.probe, tc.pn); c != tc.count {
			t.Errorf("write(%d, %d): count(%d, %d) = %d, want %d", tc.pos, tc.n, tc.probe, tc.pn, c, tc.count)
		}
		if f := r.first(tc.probe, tc.pn); f != tc.first {
			t.Errorf("write(%d, %d): first(%d, %d) = %d, want %d", tc.pos, tc.n, tc.probe, tc.pn, f, tc.first)
		}
		got := make([]int16, tc.n)
		r.read(got, tc.pos)
		for i := range got {
			if got[i] != src[i] {
				t.Fatalf("read back [%d] = %d", i, got[i])
			}
		}
		r.mark(tc.pos, tc.n, false)
		if c := r.count(0, ringSize); c != 0 {
			t.Errorf("after clearing, %d present", c)
		}
	}
}

// TestConcealJoin: the repeat starts where the audio stopped and wraps
// around its period without a jump, even when the audio has no exact
// period (two unrelated tones, a fast glide).
func TestConcealJoin(t *testing.T) {
	gen := func(f func(float64) float64) []int16 {
		h := make([]int16, histLen)
		for i := range h {
			h[i] = int16(f(float64(i) / pcm.SampleRate))
		}
		return h
	}
	tests := []struct {
		name string
		h    []int16
	}{
		{"300+470Hz", gen(func(t float64) float64 {
			return 6000*math.Sin(2*math.Pi*300*t) + 5000*math.Sin(2*math.Pi*470*t+1)
		})},
		{"fast-glide", gen(func(t float64) float64 { return 9000 * math.Sin(2*math.Pi*(150*t+2000*t*t)) })},
		{"vowel", func() []int16 {
			h := make([]int16, histLen)
			for i := range h {
				h[i] = voiced(i + 77)
			}
			return h
		}()},
	}
	for _, tc := range tests {
		var p plc
		p.begin(tc.h)
		out := append([]int16(nil), tc.h...)
		for range fullGain { // the repeat at full level
			v, _ := p.next()
			out = append(out, v)
		}
		join := out[histLen-2:]
		if got, own := maxBend(join), maxBend(tc.h); float64(got) > 1.25*float64(own) {
			t.Errorf("%s: the repeat bends the waveform by %d, the audio itself by at most %d", tc.name, got, own)
		}
	}
}
