package conference

import (
	"sync"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/pcm"
)

// sharedStream is a fakeStream that can also be sent the room's shared
// frame, and counts which way each frame came.
type sharedStream struct {
	fakeStream
	smu              sync.Mutex
	viaShared, viaWF int
	lastShared       []byte
}

func (s *sharedStream) WriteFrame(f *pcm.Frame) {
	s.smu.Lock()
	s.viaWF++
	s.smu.Unlock()
	s.fakeStream.WriteFrame(f)
}

func (s *sharedStream) WriteShared(sh *g711.Shared) {
	s.smu.Lock()
	s.viaShared++
	s.lastShared = append(s.lastShared[:0], sh.Encoded(g711.PCMU)...)
	s.smu.Unlock()
	s.fakeStream.WriteFrame(sh.Frame())
}

func (s *sharedStream) counts() (shared, own int) {
	s.smu.Lock()
	defer s.smu.Unlock()
	return s.viaShared, s.viaWF
}

// TestListenersShareOneEncodedFrame: members who are heard get their own
// mix-minus frame through WriteFrame; the silent listeners all hear the
// same mix, sent through WriteShared, and it is the right mix.
func TestListenersShareOneEncodedFrame(t *testing.T) {
	c, _ := newTestConference(t)
	g := group.Group{Name: "g", LedBy: "peer", MaxMembers: 30}
	talkerA, talkerB := &sharedStream{fakeStream: fakeStream{level: 1000}}, &sharedStream{fakeStream: fakeStream{level: 2000}}
	l1, l2 := &sharedStream{}, &sharedStream{}
	plain := &fakeStream{} // a stream without WriteShared still hears the mix
	for _, s := range []pcm.Stream{talkerA, talkerB, l1, l2, plain} {
		joinNow(t, c, g, s, group.Member)
	}
	settle(c)
	for _, s := range []*sharedStream{talkerA, talkerB, l1, l2} {
		s.smu.Lock()
		s.viaShared, s.viaWF = 0, 0
		s.smu.Unlock()
	}
	for range 10 {
		tickAll(c, time.Now())
	}
	for name, s := range map[string]*sharedStream{"talker A": talkerA, "talker B": talkerB} {
		if sh, own := s.counts(); sh != 0 || own != 10 {
			t.Errorf("%s: %d shared and %d own frames, want 0 and 10", name, sh, own)
		}
	}
	for name, s := range map[string]*sharedStream{"listener 1": l1, "listener 2": l2} {
		if sh, own := s.counts(); sh != 10 || own != 0 {
			t.Errorf("%s: %d shared and %d own frames, want 10 and 0", name, sh, own)
		}
		if got := s.heard(); got != 3000 {
			t.Errorf("%s hears %d, want 3000 (both talkers)", name, got)
		}
	}
	want := make([]byte, pcm.FrameSamples)
	var f pcm.Frame
	for i := range f {
		f[i] = 3000
	}
	g711.PCMU.Encode(want, f[:])
	if string(l1.lastShared) != string(want) {
		t.Error("the shared encoding is not the mix's")
	}
	if got := plain.heard(); got != 3000 {
		t.Errorf("a stream without WriteShared hears %d, want 3000", got)
	}
	if got := talkerA.heard(); got != 2000 {
		t.Errorf("talker A hears %d, want 2000 (B only)", got)
	}
}
