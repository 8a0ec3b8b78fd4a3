package conference

import (
	"fmt"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/internal/readings"
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
			r, _, now := benchRoom(b, c, g, n, false)
			benchTicks(b, r, now, n)
		})
	}
}

// benchRoom fills a room of group g with n callers, four members talking
// and, with fac, a silent facilitator first (returned), and lets every
// join prompt finish.
func benchRoom(b *testing.B, c *Conference, g group.Group, n int, fac bool) (*Room, *Participant, time.Time) {
	var f *Participant
	if fac {
		f = joinNow(b, c, g, &benchStream{}, group.Facilitator)
		n--
	}
	for i := range n {
		s := &benchStream{talker: i < 4}
		tone.NewSine(300+float64(100*i), -20).Fill(&s.f)
		joinNow(b, c, g, s, group.Member)
	}
	c.mu.Lock()
	r := c.rooms["g"]
	c.mu.Unlock()
	now := time.Now()
	for range 600 {
		now = now.Add(pcm.FrameDuration)
		r.Tick(now)
	}
	return r, f, now
}

// benchTicks measures r's tick, per tick and per member of n.
func benchTicks(b *testing.B, r *Room, now time.Time, n int) {
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(pcm.FrameDuration)
		r.Tick(now)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/member")
}

// BenchmarkRoomTickReading is BenchmarkRoomTick's room of 100 with a
// facilitator's reading playing (issue 13): the reading's frame is mixed
// in for everyone once per tick, so it should cost about one talker.
func BenchmarkRoomTickReading(b *testing.B) {
	const n = 100
	c, _ := newBenchConference(b)
	g := group.Group{Name: "g", LedBy: "peer", MaxMembers: n,
		Readings: []group.Reading{{Key: 1, File: "r.wav"}}}
	clip := make([]int16, 8000*60)
	for i := range clip {
		clip[i] = int16(1000 * (i % 16) / 16)
	}
	c.SetReadings(readings.NewLibrary(map[string]*readings.Group{"g": readings.NewGroup(nil, 0, map[int][]int16{1: clip})}))
	r, fac, now := benchRoom(b, c, g, n, true)
	for _, k := range "**1" {
		fac.Key(byte(k))
	}
	for range 5 {
		now = now.Add(pcm.FrameDuration)
		r.Tick(now)
	}
	if r.sess.Readings().Playing() != 1 {
		b.Fatal("the reading is not playing")
	}
	// A run is longer than the reading: start it again as it ends.
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(pcm.FrameDuration)
		r.Tick(now)
		if !r.reading.player.Playing() {
			r.reading.play(1, 0)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/member")
}

// BenchmarkRoomView is what a room does on its tick for one snapshot (the
// admin API, and the console's event stream five times a second while a
// console is open): its view, one slice of seats.
func BenchmarkRoomView(b *testing.B) {
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			c, _ := newBenchConference(b)
			g := group.Group{Name: "g", LedBy: "peer", MaxMembers: n}
			r, _, _ := benchRoom(b, c, g, n, false)
			b.ReportAllocs()
			for b.Loop() {
				_ = r.view()
			}
		})
	}
}
