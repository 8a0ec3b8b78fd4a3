package lobby

import (
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/media/pcm"
)

type fakeStream struct {
	reads, writes int
	last          pcm.Frame
}

func (s *fakeStream) ReadFrame(f *pcm.Frame) bool { s.reads++; return false }
func (s *fakeStream) WriteFrame(f *pcm.Frame)     { s.writes++; s.last = *f }

func clip(n int, v int16) []int16 {
	c := make([]int16, n)
	for i := range c {
		c[i] = v
	}
	return c
}

func finished(e *Entry) bool {
	select {
	case <-e.Finished():
		return true
	default:
		return false
	}
}

func TestPlayThenFinished(t *testing.T) {
	l := New()
	s := &fakeStream{}
	e := l.Enter(s)
	e.Play(clip(400, 7)) // 2.5 frames -> 3 frames of prompt
	for i := 0; i < 3; i++ {
		l.Tick(time.Now())
		if s.last[0] != 7 {
			t.Fatalf("frame %d: caller hears %d, want the prompt", i, s.last[0])
		}
		if finished(e) {
			t.Fatalf("finished after %d frames", i+1)
		}
	}
	l.Tick(time.Now())
	if !finished(e) {
		t.Fatal("no Finished after the prompt ended")
	}
	if s.last[0] != 0 {
		t.Fatal("silence expected after the prompt")
	}
	if s.reads != 4 || s.writes != 4 {
		t.Fatalf("reads %d writes %d, want 4 each: every tick drains and sends", s.reads, s.writes)
	}
}

func TestStopDoesNotSignal(t *testing.T) {
	l := New()
	e := l.Enter(&fakeStream{})
	e.Play(clip(1600, 1))
	l.Tick(time.Now())
	e.Stop()
	for range 20 {
		l.Tick(time.Now())
	}
	if finished(e) {
		t.Fatal("a stopped prompt reported Finished")
	}
}

func TestPlayNothingFinishesAtOnce(t *testing.T) {
	l := New()
	e := l.Enter(&fakeStream{})
	e.Play()
	if !finished(e) {
		t.Fatal("an empty Play must finish at once")
	}
}

func TestReplaceDropsOldCompletion(t *testing.T) {
	l := New()
	e := l.Enter(&fakeStream{})
	e.Play(clip(160, 1))
	l.Tick(time.Now())
	l.Tick(time.Now()) // first prompt done: a completion is pending
	e.Play(clip(320, 2))
	if finished(e) {
		t.Fatal("completion of the replaced prompt leaked into the new one")
	}
}

func TestLeave(t *testing.T) {
	l := New()
	s := &fakeStream{}
	e := l.Enter(s)
	if l.Len() != 1 {
		t.Fatal("not entered")
	}
	e.Leave()
	e.Leave()
	l.Tick(time.Now())
	if l.Len() != 0 || s.writes != 0 {
		t.Fatalf("left caller still served: len %d writes %d", l.Len(), s.writes)
	}
}

// panicStream panics in ReadFrame, as a broken stream or a bug on one
// caller's path would.
type panicStream struct{ fakeStream }

func (s *panicStream) ReadFrame(f *pcm.Frame) bool { panic("broken stream") }

// TestPanicEndsOnlyThatCaller: a caller whose part of the tick panics is
// served no more and signalled through Failed; the callers before and
// after it go on being served, on this tick and the next.
func TestPanicEndsOnlyThatCaller(t *testing.T) {
	l := New()
	before, after := &fakeStream{}, &fakeStream{}
	l.Enter(before)
	bad := l.Enter(&panicStream{})
	l.Enter(after)
	for range 3 {
		l.Tick(time.Now())
	}
	select {
	case <-bad.Failed():
	default:
		t.Fatal("Failed is not closed after the caller's part panicked")
	}
	if bad.Fault() == nil {
		t.Error("Fault is nil after a panic")
	}
	for name, s := range map[string]*fakeStream{"before": before, "after": after} {
		if s.reads != 3 || s.writes != 3 {
			t.Errorf("%s: %d reads and %d writes, want 3 of each", name, s.reads, s.writes)
		}
	}
}

// TestLeaveKeepsNoEndedCallReachable: the slot freed at the end of the
// entries' array is cleared, so an ended call (its stream and jitter
// buffer) is not kept alive by the lobby until it next grows that far.
func TestLeaveKeepsNoEndedCallReachable(t *testing.T) {
	l := New()
	a := l.Enter(&fakeStream{})
	l.Enter(&fakeStream{})
	l.Enter(&fakeStream{})
	a.Leave()
	l.mu.Lock()
	defer l.mu.Unlock()
	if tail := l.entries[:cap(l.entries)][len(l.entries):]; len(tail) == 0 || tail[0] != nil {
		t.Fatalf("the freed slot still holds an entry")
	}
}

// An announcement reaches each caller in the language they hear.
func TestAnnounceInEachLanguage(t *testing.T) {
	l := New()
	en, es, none := &fakeStream{}, &fakeStream{}, &fakeStream{}
	l.Enter(en).SetLanguage("en")
	l.Enter(es).SetLanguage("es")
	l.Enter(none)
	words := map[string]int16{"en": 1, "es": 2, "": 3}
	l.Announce(func(lang string) [][]int16 { return [][]int16{clip(160, words[lang])} })
	l.Tick(time.Now())
	for _, tc := range []struct {
		s    *fakeStream
		want int16
	}{{en, 1}, {es, 2}, {none, 3}} {
		if tc.s.last[0] != tc.want {
			t.Errorf("caller hears %d, want %d", tc.s.last[0], tc.want)
		}
	}
}
