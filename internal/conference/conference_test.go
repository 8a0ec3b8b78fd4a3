package conference

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/media/clock"
	"github.com/groupbridge/groupbridge/media/pcm"
	"github.com/groupbridge/groupbridge/media/prompt"
)

// fakeStream sends a constant level and records the last frame it got.
type fakeStream struct {
	mu    sync.Mutex
	level int16
	last  pcm.Frame
	n     int
}

func (s *fakeStream) ReadFrame(f *pcm.Frame) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range f {
		f[i] = s.level
	}
	return s.level != 0
}

func (s *fakeStream) WriteFrame(f *pcm.Frame) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = *f
	s.n++
}

func (s *fakeStream) heard() int16 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last[80]
}

// newTestConference returns a conference on a clock that never fires: the
// tests tick rooms by hand. AGC is off so that sample values stay exact.
func newTestConference(t testing.TB) (*Conference, *clock.Clock) {
	t.Helper()
	set, err := prompt.Builtin("en")
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.New(time.Hour, nil, nil) // never fires: the test ticks by hand
	return New(Config{Media: clk, Prompts: set, Audio: Audio{MaxTalkers: 4}}), clk
}

// joinNow joins while ticking the room by hand, as the clock would.
func joinNow(t testing.TB, c *Conference, g group.Group, s pcm.Stream, role group.Role) *Participant {
	t.Helper()
	type res struct {
		p   *Participant
		err error
	}
	ch := make(chan res, 1)
	go func() {
		p, err := c.Join(g, JoinRequest{Stream: s, Role: role, CallID: "t"})
		ch <- res{p, err}
	}()
	for {
		select {
		case r := <-ch:
			if r.err != nil {
				t.Fatal(r.err)
			}
			return r.p
		default:
			tickAll(c, time.Now())
			time.Sleep(time.Millisecond)
		}
	}
}

func tickAll(c *Conference, now time.Time) {
	for _, r := range c.live() {
		r.Tick(now)
	}
}

// settle ticks long enough for every join prompt and chime to finish, so
// frames carry only the mix.
func settle(c *Conference) {
	for range 500 { // 10 s of audio
		tickAll(c, time.Now())
	}
}

func TestMixMinusThroughRoom(t *testing.T) {
	c, _ := newTestConference(t)
	g := group.Group{Name: "g", LedBy: "peer", MaxMembers: 30}
	a, b, s := &fakeStream{level: 1000}, &fakeStream{level: 2000}, &fakeStream{}
	joinNow(t, c, g, a, group.Member)
	joinNow(t, c, g, b, group.Member)
	joinNow(t, c, g, s, group.Facilitator)
	settle(c)
	if got := a.heard(); got != 2000 {
		t.Errorf("A hears %d, want 2000 (B only)", got)
	}
	if got := b.heard(); got != 1000 {
		t.Errorf("B hears %d, want 1000 (A only)", got)
	}
	if got := s.heard(); got != 3000 {
		t.Errorf("silent C hears %d, want 3000", got)
	}
}

func TestSelfMuteAndLeave(t *testing.T) {
	c, _ := newTestConference(t)
	g := group.Group{Name: "g", LedBy: "peer", MaxMembers: 30}
	a, b := &fakeStream{level: 1000}, &fakeStream{level: 0}
	pa := joinNow(t, c, g, a, group.Member)
	pb := joinNow(t, c, g, b, group.Member)
	if pa.Seat() != 1 || pb.Seat() != 2 {
		t.Fatalf("seats %d %d", pa.Seat(), pb.Seat())
	}
	settle(c)
	if b.heard() != 1000 {
		t.Fatalf("B hears %d before mute", b.heard())
	}
	pa.Key('*')
	pa.Key('6')
	settle(c)
	if got := b.heard(); got != 0 {
		t.Fatalf("B hears %d after A's *6", got)
	}
	pa.Key('*')
	pa.Key('6')
	settle(c)
	if got := b.heard(); got != 1000 {
		t.Fatalf("B hears %d after A's second *6", got)
	}
	// A lone '6' (no star) does nothing.
	pa.Key('6')
	settle(c)
	if got := b.heard(); got != 1000 {
		t.Fatalf("a 6 without * muted A")
	}

	done := make(chan struct{})
	go func() { pa.Leave(); close(done) }()
	for {
		tickAll(c, time.Now())
		select {
		case <-done:
		default:
			time.Sleep(time.Millisecond)
			continue
		}
		break
	}
	select {
	case <-pa.Done():
	default:
		t.Fatal("Done not closed after Leave")
	}
	settle(c)
	if got := b.heard(); got != 0 {
		t.Fatalf("B still hears %d after A left", got)
	}
	// The last one leaving ends the session; a new caller starts at seat 1.
	go pb.Leave()
	for c.Rooms() > 0 {
		tickAll(c, time.Now())
		time.Sleep(time.Millisecond)
	}
	p := joinNow(t, c, g, &fakeStream{}, group.Member)
	if p.Seat() != 1 {
		t.Fatalf("new session seat %d", p.Seat())
	}
}

func TestFull(t *testing.T) {
	c, _ := newTestConference(t)
	g := group.Group{Name: "g", LedBy: "peer", MaxMembers: 1}
	joinNow(t, c, g, &fakeStream{}, group.Member)
	ch := make(chan error, 1)
	go func() {
		_, err := c.Join(g, JoinRequest{Stream: &fakeStream{}, Role: group.Member})
		ch <- err
	}()
	for {
		tickAll(c, time.Now())
		select {
		case err := <-ch:
			if err != ErrFull {
				t.Fatalf("err %v, want ErrFull", err)
			}
			// A facilitator can always join.
			joinNow(t, c, g, &fakeStream{}, group.Facilitator)
			return
		default:
			time.Sleep(time.Millisecond)
		}
	}
}

func TestOnlyTheLoudestTalkersAreMixed(t *testing.T) {
	c, _ := newTestConference(t)
	g := group.Group{Name: "g", LedBy: "peer", MaxMembers: 30}
	var talkers []*fakeStream
	for _, lv := range []int16{1000, 2000, 3000, 4000, 5000, 6000} {
		s := &fakeStream{level: lv}
		talkers = append(talkers, s)
		joinNow(t, c, g, s, group.Member)
	}
	listener := &fakeStream{}
	joinNow(t, c, g, listener, group.Member)
	settle(c)
	if got := listener.heard(); got != 3000+4000+5000+6000 {
		t.Fatalf("listener hears %d, want the four loudest (18000)", got)
	}
	// The loudest talker hears the next four loudest... minus itself: the
	// other three of the top four.
	if got := talkers[5].heard(); got != 3000+4000+5000 {
		t.Fatalf("loudest talker hears %d, want 12000", got)
	}
}

func TestGateKeepsQuietLinesOut(t *testing.T) {
	c, _ := newTestConference(t)
	g := group.Group{Name: "g", LedBy: "peer", MaxMembers: 30}
	// 100 is about -47 dBFS: an open line with background noise, below
	// the talker threshold; it must not reach the mix.
	joinNow(t, c, g, &fakeStream{level: 100}, group.Member)
	listener := &fakeStream{}
	joinNow(t, c, g, listener, group.Member)
	settle(c)
	if got := listener.heard(); got != 0 {
		t.Fatalf("listener hears %d from a line below the talker threshold", got)
	}
}

func TestComfortNoise(t *testing.T) {
	set, err := prompt.Builtin("en")
	if err != nil {
		t.Fatal(err)
	}
	c := New(Config{Media: clock.New(time.Hour, nil, nil), Prompts: set, Audio: Audio{MaxTalkers: 4, ComfortNoise: true}})
	g := group.Group{Name: "g", LedBy: "peer"}
	a := &fakeStream{}
	joinNow(t, c, g, a, group.Member)
	settle(c)
	a.mu.Lock()
	f := a.last
	a.mu.Unlock()
	e := f.Energy()
	if e == 0 || e > 200 {
		t.Fatalf("comfort noise energy %d: want a very quiet, non-zero signal", e)
	}
}

// newBenchConference is newTestConference with logging off, for benchmarks.
func newBenchConference(b *testing.B) (*Conference, *clock.Clock) {
	b.Helper()
	c, clk := newTestConference(b)
	c.log = slog.New(slog.DiscardHandler)
	return c, clk
}

// A caller who starts to talk is heard from the tick that carries their
// first loud frame, at full level: the noise gate does not wait for the
// talker detector to confirm a talkspurt, and the loudest-few choice lets a
// newcomer in at once when there is room or when they are clearly louder
// than the quietest talker mixed (issue 11, section 8).
func TestOnsetHeardFromTheFirstFrame(t *testing.T) {
	tests := []struct {
		name   string
		others []int16 // talking before the newcomer starts
		start  int16   // the newcomer's level
		want   int     // what a silent listener hears on the newcomer's first tick
	}{
		{"room with space", []int16{1000}, 3000, 1000 + 3000},
		{"max_talkers reached, newcomer 12 dB louder than the quietest", []int16{1000, 2000, 3000, 4000}, 4000 * 4,
			2000 + 3000 + 4000 + 16000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newTestConference(t)
			g := group.Group{Name: "g", LedBy: "peer", MaxMembers: 30}
			for _, lv := range tc.others {
				joinNow(t, c, g, &fakeStream{level: lv}, group.Member)
			}
			newcomer, listener := &fakeStream{}, &fakeStream{}
			joinNow(t, c, g, newcomer, group.Member)
			joinNow(t, c, g, listener, group.Member)
			settle(c)
			newcomer.mu.Lock()
			newcomer.level = tc.start
			newcomer.mu.Unlock()
			tickAll(c, time.Now())
			listener.mu.Lock()
			defer listener.mu.Unlock()
			for i, s := range listener.last {
				if int(s) != tc.want {
					t.Fatalf("first tick, sample %d: listener hears %d, want %d (the newcomer's %d at full level)",
						i, s, tc.want, tc.start)
				}
			}
		})
	}
}
