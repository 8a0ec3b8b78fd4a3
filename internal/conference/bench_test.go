package conference

import (
	"fmt"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/media/pcm"
	"github.com/groupbridge/groupbridge/media/tone"
)

// benchStream hands out a tone (or silence) and discards what it is sent:
// the room's own cost without sockets.
type benchStream struct {
	f      pcm.Frame
	talker bool
}

func (s *benchStream) ReadFrame(f *pcm.Frame) bool {
	if !s.talker {
		return false
	}
	*f = s.f
	return true
}

func (s *benchStream) WriteFrame(*pcm.Frame) {}

// BenchmarkRoomTick is one 20 ms tick of a whole room: rules, talker
// detection, AGC, gate, loudest-few choice and mix-minus. Four members talk.
func BenchmarkRoomTick(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			c, _ := newBenchConference(b)
			g := group.Group{Name: "g", LedBy: "peer", MaxMembers: n}
			for i := range n {
				s := &benchStream{talker: i < 4}
				tone.NewSine(300+float64(100*i), -20).Fill(&s.f)
				joinNow(b, c, g, s, group.Member)
			}
			c.mu.Lock()
			r := c.rooms["g"]
			c.mu.Unlock()
			now := time.Now()
			for range 600 { // let every join prompt finish
				now = now.Add(pcm.FrameDuration)
				r.Tick(now)
			}
			b.ReportAllocs()
			for b.Loop() {
				now = now.Add(pcm.FrameDuration)
				r.Tick(now)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/member")
		})
	}
}
