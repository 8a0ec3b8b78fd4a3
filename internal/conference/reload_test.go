package conference

import (
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/internal/testkit"
	"github.com/groupbridge/groupbridge/media/pcm"
	"github.com/groupbridge/groupbridge/media/prompt"
)

// recordingStream is silent and keeps every frame it is sent.
type recordingStream struct {
	mu  sync.Mutex
	got []int16
}

func (s *recordingStream) ReadFrame(*pcm.Frame) bool { return false }

func (s *recordingStream) WriteFrame(f *pcm.Frame) {
	s.mu.Lock()
	s.got = append(s.got, f[:]...)
	s.mu.Unlock()
}

// since returns what the stream was sent after the first n samples.
func (s *recordingStream) since(n int) []int16 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got[n:])
}

func (s *recordingStream) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

// A running room speaks from the set given to SetPrompts from its next
// announcement on: a member's "Your hand is raised." is the operator's new
// recording, sample for sample.
func TestSetPromptsReachesRunningRooms(t *testing.T) {
	c, _ := newTestConference(t)
	g := group.Group{Name: "g", LedBy: "peer", MaxMembers: 30}
	s := &recordingStream{}
	p := joinNow(t, c, g, s, group.Member)
	settle(c)

	// A pattern no recorded voice holds: a ramp over 0.2 s.
	clip := make([]int16, 1600)
	for i := range clip {
		clip[i] = int16(i*37%4000 - 2000)
	}
	dir := t.TempDir()
	testkit.WriteWAV(t, filepath.Join(dir, prompt.HandRaised+".wav"), clip)
	set, err := prompt.Builtin("en")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := set.LoadDir(dir); err != nil {
		t.Fatal(err)
	}

	// raise presses *9 and returns what the member heard after it.
	raise := func() []int16 {
		n := s.len()
		p.Key('*')
		p.Key('9')
		settle(c)
		return s.since(n)
	}
	if heard := raise(); contains(heard, clip) {
		t.Fatal("the new recording was heard before SetPrompts")
	}
	raise() // lowers the hand
	c.SetPrompts(set)
	if heard := raise(); !contains(heard, clip) {
		t.Fatal("after SetPrompts the running room still speaks the old hand_raised")
	}
}

// contains reports whether clip appears in heard, sample for sample.
func contains(heard, clip []int16) bool {
	for i := 0; i+len(clip) <= len(heard); i++ {
		if slices.Equal(heard[i:i+len(clip)], clip) {
			return true
		}
	}
	return false
}
