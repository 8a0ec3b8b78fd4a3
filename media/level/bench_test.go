package level

import (
	"testing"

	"github.com/groupbridge/groupbridge/media/pcm"
)

// benchFrames is a second of a caller: talk, noise, talk with a pause, so
// that the benchmarks and the allocation test cross every state: onset,
// fades, limiting and closed gate.
func benchFrames() []pcm.Frame {
	return render(toneSeg(-30, 10), noiseSeg(-55, 40), toneSeg(0, 10), quiet(5), toneSeg(-20, 35))
}

// pipeline runs one caller's frame through the stages in the documented
// order, as the room will.
type pipeline struct {
	talker *Talker
	agc    *AGC
	gate   *Gate
}

func newPipeline() pipeline {
	return pipeline{NewTalker(TalkerConfig{}), NewAGC(AGCConfig{}), NewGate()}
}

func (p pipeline) process(f *pcm.Frame) bool {
	talking, _ := p.talker.Process(f)
	p.agc.Process(f, talking)
	return p.gate.Process(f, p.talker.Voice())
}

func TestProcessAllocatesNothing(t *testing.T) {
	frames := benchFrames()
	p := newPipeline()
	var f pcm.Frame
	i := 0
	allocs := testing.AllocsPerRun(len(frames)*3, func() {
		f = frames[i%len(frames)]
		p.process(&f)
		p.talker.LevelDBFS()
		p.agc.GainDB()
		i++
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per frame, want 0", allocs)
	}
}

// BenchmarkPipeline is the per-caller cost per 20 ms frame of Talker, AGC and
// Gate together: ns/op is ns per frame.
func BenchmarkPipeline(b *testing.B) {
	frames := benchFrames()
	p := newPipeline()
	var f pcm.Frame
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		f = frames[i%len(frames)]
		p.process(&f)
		i++
	}
}

func BenchmarkTalker(b *testing.B) {
	frames := benchFrames()
	tk := NewTalker(TalkerConfig{})
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		tk.Process(&frames[i%len(frames)])
		i++
	}
}

func BenchmarkAGC(b *testing.B) {
	tests := []struct {
		name   string
		cfg    AGCConfig
		frames []pcm.Frame
	}{
		// Gain moving every frame, nothing near the limiter: the usual case.
		{"leveling", AGCConfig{}, render(toneSeg(-30, 100))},
		// Every sample through the soft limiter: the worst case.
		{"limiting", AGCConfig{MinGainDB: 12, MaxGainDB: 12}, render(toneSeg(0, 100))},
		{"mixed", AGCConfig{}, benchFrames()},
	}
	for _, tc := range tests {
		b.Run(tc.name, func(b *testing.B) {
			a := NewAGC(tc.cfg)
			var f pcm.Frame
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				f = tc.frames[i%len(tc.frames)]
				a.Process(&f, true)
				i++
			}
		})
	}
}

func BenchmarkGate(b *testing.B) {
	tests := []struct {
		name    string
		talking func(i int) bool
	}{
		{"open", func(int) bool { return true }},
		{"closed", func(int) bool { return false }},
		{"fading", func(i int) bool { return i%16 < 8 }}, // short talkspurts: fade in, hold, fade out, closed
	}
	frames := benchFrames()
	for _, tc := range tests {
		b.Run(tc.name, func(b *testing.B) {
			g := NewGate()
			var f pcm.Frame
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				f = frames[i%len(frames)]
				v := Quiet
				if tc.talking(i) {
					v = Talkspurt
				}
				g.Process(&f, v)
				i++
			}
		})
	}
}

// BenchmarkCopy is the floor the others include: copying the input frame.
func BenchmarkCopy(b *testing.B) {
	frames := benchFrames()
	var f pcm.Frame
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		f = frames[i%len(frames)]
		i++
	}
	_ = f
}
