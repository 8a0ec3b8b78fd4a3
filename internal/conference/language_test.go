package conference

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/media/clock"
	"github.com/groupbridge/groupbridge/media/pcm"
	"github.com/groupbridge/groupbridge/media/prompt"
)

// tapeStream is silent and keeps every frame it is sent.
type tapeStream struct {
	mu    sync.Mutex
	heard []int16
}

func (s *tapeStream) ReadFrame(*pcm.Frame) bool { return false }

func (s *tapeStream) WriteFrame(f *pcm.Frame) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.heard = append(s.heard, f[:]...)
}

// since returns what s heard after the first n samples, from its first
// sound on.
func (s *tapeStream) since(n int) []int16 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.heard[n:]
	for len(out) > 0 && out[0] == 0 {
		out = out[1:]
	}
	return out
}

func (s *tapeStream) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.heard)
}

// Each listener hears an announcement in their own language, rendered
// once per language present.
func TestAnnouncementInEachListenersLanguage(t *testing.T) {
	en, err := prompt.Builtin("en")
	if err != nil {
		t.Fatal(err)
	}
	es, err := prompt.Builtin("es")
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.New(time.Hour, nil, nil) // never fires: the test ticks by hand
	c := New(Config{Media: clk, Prompts: prompt.Bundle(en, es), Audio: Audio{MaxTalkers: 4}})
	g := group.Group{Name: "g", LedBy: "peer", MaxMembers: 30}
	langs := []string{"en", "es", "es", ""} // "": the default
	streams := make([]*tapeStream, len(langs))
	for i, l := range langs {
		streams[i] = &tapeStream{}
		joinLang(t, c, g, streams[i], l)
	}
	settle(c)
	mark := make([]int, len(streams))
	for i, s := range streams {
		mark[i] = s.len()
	}
	done := make(chan struct{})
	go func() {
		c.Announce([]string{prompt.Caller, "31", prompt.RaisedAHand})
		close(done)
	}()
	for waiting := true; waiting; {
		select {
		case <-done:
			waiting = false
		default:
			tickAll(c, time.Now())
			time.Sleep(time.Millisecond)
		}
	}
	for range 300 { // 6 s: the whole phrase
		tickAll(c, time.Now())
	}
	// A player starts each clip on a frame.
	want := func(set *prompt.Set) []int16 {
		var out []int16
		add := func(clip []int16) {
			out = append(out, clip...)
			for len(out)%pcm.FrameSamples != 0 {
				out = append(out, 0)
			}
		}
		caller, _ := set.Clip(prompt.Caller)
		add(caller)
		for _, n := range set.Number(31) {
			add(n)
		}
		hand, _ := set.Clip(prompt.RaisedAHand)
		add(hand)
		return out
	}
	for i, l := range langs {
		w := want(prompt.Bundle(en, es).In(l))
		for len(w) > 0 && w[0] == 0 {
			w = w[1:]
		}
		got := streams[i].since(mark[i])
		if len(got) < len(w) || !slices.Equal(got[:len(w)], w) {
			k := 0
			for k < min(len(got), len(w)) && got[k] == w[k] {
				k++
			}
			t.Errorf("listener %d (%q) did not hear the phrase in its language: same for %d of %d samples %v %v", i, l, k, len(w), got[k:k+8], w[k:k+8])
		}
	}
	c.mu.Lock()
	r := c.rooms["g"]
	c.mu.Unlock()
	if n := len(r.speaker.rendered); n != 2 {
		t.Errorf("the phrase was rendered %d times, want 2 (en, es)", n)
	}
}

// joinLang is joinNow for a caller of a language.
func joinLang(t *testing.T, c *Conference, g group.Group, s pcm.Stream, lang string) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Join(g, JoinRequest{Stream: s, Role: group.Member, CallID: "t", Language: lang})
		errc <- err
	}()
	for {
		select {
		case err := <-errc:
			if err != nil {
				t.Fatal(err)
			}
			return
		default:
			tickAll(c, time.Now())
			time.Sleep(time.Millisecond)
		}
	}
}
