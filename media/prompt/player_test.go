package prompt

import (
	"slices"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/media/pcm"
)

// fill returns a clip of n samples all equal to v.
func fill(n int, v int16) []int16 {
	c := make([]int16, n)
	for i := range c {
		c[i] = v
	}
	return c
}

// ramp returns a clip of n samples counting up from start.
func ramp(n int, start int16) []int16 {
	c := make([]int16, n)
	for i := range c {
		c[i] = start + int16(i)
	}
	return c
}

// frame builds the expected frame from runs of (count, value).
func frame(runs ...int) pcm.Frame {
	var f pcm.Frame
	i := 0
	for r := 0; r < len(runs); r += 2 {
		for range runs[r] {
			f[i] = int16(runs[r+1])
			i++
		}
	}
	return f
}

type step struct {
	want    pcm.Frame
	audible bool
	playing bool // Playing() after the frame
}

func run(t *testing.T, p *Player, steps []step) {
	t.Helper()
	for i, s := range steps {
		f := frame(160, 999) // garbage the player must overwrite
		got := p.Next(&f)
		if got != s.audible {
			t.Fatalf("frame %d: Next = %v, want %v", i, got, s.audible)
		}
		if f != s.want {
			t.Fatalf("frame %d: got %v\nwant %v", i, f, s.want)
		}
		if p.Playing() != s.playing {
			t.Fatalf("frame %d: Playing = %v, want %v", i, p.Playing(), s.playing)
		}
	}
}

func TestPlayerSequencing(t *testing.T) {
	var p Player
	if p.Playing() {
		t.Fatal("zero Player is playing")
	}
	p.Play(fill(100, 1), nil, fill(320, 2), []int16{}, fill(160, 3))
	if !p.Playing() {
		t.Fatal("not playing after Play")
	}
	run(t, &p, []step{
		{frame(100, 1, 60, 0), true, true}, // clip end padded with silence
		{frame(160, 2), true, true},
		{frame(160, 2), true, true},
		{frame(160, 3), true, false}, // empty clips were skipped
		{frame(), false, false},
		{frame(), false, false},
	})
}

func TestPlayerEnqueueAndReplace(t *testing.T) {
	var p Player
	p.Play(fill(200, 1))
	p.Enqueue(fill(10, 2))
	run(t, &p, []step{{frame(160, 1), true, true}})
	p.Enqueue(fill(10, 3)) // appended while playing
	run(t, &p, []step{
		{frame(40, 1, 120, 0), true, true},
		{frame(10, 2, 150, 0), true, true},
		{frame(10, 3, 150, 0), true, false},
	})

	p.Play(fill(400, 4), fill(10, 5))
	run(t, &p, []step{{frame(160, 4), true, true}})
	p.Play(fill(20, 6)) // replaces the rest mid-clip
	run(t, &p, []step{
		{frame(20, 6, 140, 0), true, false},
		{frame(), false, false},
	})

	p.Play(fill(400, 7))
	p.Stop()
	run(t, &p, []step{{frame(), false, false}})
	p.Play()
	run(t, &p, []step{{frame(), false, false}})
}

func TestPlayerLoop(t *testing.T) {
	var p Player
	music := ramp(250, 1)
	p.Loop(music)
	if p.Playing() {
		t.Fatal("a loop alone counts as Playing")
	}
	// The loop wraps inside a frame, without a gap.
	want := func(from int) pcm.Frame {
		var f pcm.Frame
		for i := range f {
			f[i] = music[(from+i)%len(music)]
		}
		return f
	}
	run(t, &p, []step{
		{want(0), true, false},
		{want(160), true, false}, // 160..249 then 0..69
	})
	// A prompt interrupts; the loop resumes where it was.
	p.Play(fill(100, -1))
	run(t, &p, []step{
		{frame(100, -1, 60, 0), true, false},
		{want(320), true, false},
	})
	// Re-asserting the same loop keeps its place; a new one starts over.
	p.Loop(music)
	run(t, &p, []step{{want(480), true, false}})
	other := ramp(160, 1000)
	p.Loop(other)
	run(t, &p, []step{{pcm.Frame(other), true, false}})
	// Stop leaves the loop alone; StopLoop silences it.
	p.Stop()
	run(t, &p, []step{{pcm.Frame(other), true, false}})
	p.StopLoop()
	run(t, &p, []step{{frame(), false, false}})
	p.Loop(music)
	p.Loop(nil)
	run(t, &p, []step{{frame(), false, false}})
}

func TestPause(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want int
	}{
		{-time.Second, 0},
		{0, 0},
		{100 * time.Microsecond, 0},
		{125 * time.Microsecond, 1},
		{250 * time.Millisecond, 2000},
		{5 * time.Second, 40000},
		{6 * time.Second, 48000},
	}
	for _, tc := range tests {
		c := Pause(tc.d)
		if len(c) != tc.want {
			t.Errorf("Pause(%v) has %d samples, want %d", tc.d, len(c), tc.want)
		}
		if cap(c) != len(c) {
			t.Errorf("Pause(%v): cap %d > len %d lets append write the shared buffer", tc.d, cap(c), len(c))
		}
		if slices.ContainsFunc(c, func(s int16) bool { return s != 0 }) {
			t.Errorf("Pause(%v) is not silent", tc.d)
		}
	}
	if n := testing.AllocsPerRun(10, func() { _ = Pause(250 * time.Millisecond) }); n != 0 {
		t.Errorf("short Pause allocates %.0f times", n)
	}
}

// TestPlayerSteadyStateAllocs drives the way the bridge does: sentences
// enqueued while earlier ones still play, forever. After warm-up nothing
// may allocate, including queue growth.
func TestPlayerSteadyStateAllocs(t *testing.T) {
	var p Player
	// Each cycle enqueues exactly the five frames it plays, on top of a
	// one-frame backlog, so the queue never drains and resets by itself.
	a, pause, c := fill(300, 1), Pause(25*time.Millisecond), fill(50, 3)
	var f pcm.Frame
	p.Enqueue(c)
	cycle := func() {
		p.Enqueue(a, pause)
		p.Next(&f)
		p.Enqueue(c)
		for range 4 {
			p.Next(&f)
		}
		if !p.Playing() {
			t.Fatal("queue drained; the test no longer exercises compaction")
		}
	}
	for range 100 {
		cycle()
	}
	if n := testing.AllocsPerRun(1000, cycle); n != 0 {
		t.Fatalf("steady Enqueue/Next allocates %.1f times per cycle", n)
	}
	if len(p.queue) > 4 {
		t.Fatalf("queue grew to %d entries", len(p.queue))
	}
}

func BenchmarkPlayerNext(b *testing.B) {
	s, err := Builtin("en")
	if err != nil {
		b.Fatal(err)
	}
	welcome, _ := s.Clip(Welcome)
	var p Player
	var f pcm.Frame
	b.ReportAllocs()
	for b.Loop() {
		if !p.Playing() {
			p.Play(welcome)
		}
		p.Next(&f)
	}
}

func BenchmarkPlayerNextLoop(b *testing.B) {
	s, err := Builtin("en")
	if err != nil {
		b.Fatal(err)
	}
	music, _ := s.Clip(HoldMusic)
	var p Player
	p.Loop(music)
	var f pcm.Frame
	b.ReportAllocs()
	for b.Loop() {
		p.Next(&f)
	}
}

func BenchmarkPlayerSentence(b *testing.B) {
	s, err := Builtin("en")
	if err != nil {
		b.Fatal(err)
	}
	caller, _ := s.Clip(Caller)
	talking, _ := s.Clip(IsTalking)
	var p Player
	var f pcm.Frame
	b.ReportAllocs()
	for b.Loop() {
		// "Caller 47 is talking.": Number allocates its small result on
		// the event, never per frame.
		p.Play(caller)
		p.Enqueue(s.Number(47)...)
		p.Enqueue(talking)
		for p.Playing() {
			p.Next(&f)
		}
	}
}

func TestPlayerRemaining(t *testing.T) {
	var p Player
	if p.Remaining() != 0 {
		t.Fatal("idle player has something to play")
	}
	p.Loop(make([]int16, 1000))
	p.Play(make([]int16, 200), make([]int16, 100))
	var f pcm.Frame
	// 200 samples take two frames (320 with the padding), 100 one (160).
	want := []int{480, 320, 160, 0}
	for i, w := range want {
		if got := p.Remaining(); got != w {
			t.Fatalf("after %d frames: Remaining %d, want %d", i, got, w)
		}
		p.Next(&f)
	}
}
