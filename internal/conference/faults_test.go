package conference

import (
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/internal/testkit"
	"github.com/groupbridge/groupbridge/media/clock"
	"github.com/groupbridge/groupbridge/media/pcm"
	"github.com/groupbridge/groupbridge/media/prompt"
)

// faultStream is a fakeStream that panics in ReadFrame or WriteFrame once
// armed.
type faultStream struct {
	fakeStream
	onRead, onWrite atomic.Bool
}

func (s *faultStream) ReadFrame(f *pcm.Frame) bool {
	if s.onRead.Load() {
		panic("read failed for PIN 482913 from +15551234567")
	}
	return s.fakeStream.ReadFrame(f)
}

func (s *faultStream) WriteFrame(f *pcm.Frame) {
	if s.onWrite.Load() {
		panic("write failed for PIN 482913 from +15551234567")
	}
	s.fakeStream.WriteFrame(f)
}

// joinAs is joinNow with a call id.
func joinAs(t *testing.T, c *Conference, g group.Group, s pcm.Stream, id string) *Participant {
	t.Helper()
	ch := make(chan *Participant, 1)
	go func() {
		p, err := c.Join(g, JoinRequest{Stream: s, Role: group.Member, CallID: id})
		if err != nil {
			t.Error(err)
		}
		ch <- p
	}()
	for range 5000 {
		select {
		case p := <-ch:
			if p == nil {
				t.FailNow()
			}
			return p
		default:
			tickAll(c, time.Now())
			time.Sleep(time.Millisecond)
		}
	}
	t.Fatal("join never answered")
	return nil
}

// A panic in one member's part of the room's tick (reading their audio,
// processing it, sending to them) ends that caller's membership only: the
// room goes on mixing for the others, and the log names the call without
// the digits the panic carried.
func TestMemberPanicEndsOnlyThatCaller(t *testing.T) {
	cases := []struct {
		name string
		arm  func(c *Conference, s *faultStream)
	}{
		{"read", func(_ *Conference, s *faultStream) { s.onRead.Store(true) }},
		{"write", func(_ *Conference, s *faultStream) { s.onWrite.Store(true) }},
		{"hook", func(c *Conference, _ *faultStream) {
			c.InjectFaults(&Faults{Member: func(id string) {
				if id == "bad" {
					panic("hook for PIN 482913")
				}
			}})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newTestConference(t)
			logs := &testkit.LogBuffer{}
			c.log = slog.New(slog.NewTextHandler(logs, nil))
			g := group.Group{Name: "g", LedBy: "peer", MaxMembers: 30}
			a, b := &fakeStream{level: 1000}, &fakeStream{level: 2000}
			bad := &faultStream{fakeStream: fakeStream{level: 4000}}
			joinAs(t, c, g, a, "a")
			pb := joinAs(t, c, g, bad, "bad")
			joinAs(t, c, g, b, "b")
			settle(c)
			if got := a.heard(); got != 6000 {
				t.Fatalf("before the fault A hears %d, want 6000", got)
			}
			tc.arm(c, bad)
			tickAll(c, time.Now())
			select {
			case <-pb.Done():
			default:
				t.Fatal("the caller whose processing panicked was not let go")
			}
			if r := pb.Reason(); r != memberFailed {
				t.Fatalf("reason %q, want %q", r, memberFailed)
			}
			settle(c)
			if got := a.heard(); got != 2000 {
				t.Errorf("A hears %d after the fault, want 2000 (B only)", got)
			}
			if got := b.heard(); got != 1000 {
				t.Errorf("B hears %d after the fault, want 1000 (A only)", got)
			}
			if st := c.Stats(); st.Rooms != 1 || st.InRoom != 2 {
				t.Errorf("stats %+v, want 1 room with 2 callers", st)
			}
			log := logs.String()
			if !strings.Contains(log, "caller's audio processing panicked") || !strings.Contains(log, "call=bad") {
				t.Errorf("no log line for the fault:\n%s", log)
			}
			for _, secret := range []string{"482913", "5551234567"} {
				if strings.Contains(log, secret) {
					t.Errorf("log holds %q:\n%s", secret, log)
				}
			}
		})
	}
}

// A panic in one room's tick, on a running clock, resets that room only:
// its callers are let go ("room-reset"), the other room keeps being
// ticked, and the group's next caller starts a new session.
func TestRoomPanicResetsOnlyThatRoom(t *testing.T) {
	set, err := prompt.Builtin("en")
	if err != nil {
		t.Fatal(err)
	}
	logs := &testkit.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	var c *Conference
	clk := clock.New(5*time.Millisecond, log, func(t clock.Ticker, v any) { c.Recover(t, v) })
	c = New(Config{Media: clk, Prompts: set, Log: log, Audio: Audio{MaxTalkers: 4}})
	clk.Start()
	defer clk.Stop()
	defer c.Close()

	join := func(name, id string, s pcm.Stream) *Participant {
		t.Helper()
		p, err := c.Join(group.Group{Name: name, LedBy: "peer"}, JoinRequest{Stream: s, CallID: id})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	sick1, sick2, well := &fakeStream{}, &fakeStream{}, &fakeStream{}
	p1 := join("sick", "s1", sick1)
	p2 := join("sick", "s2", sick2)
	pw := join("well", "w1", well)

	var armed atomic.Bool
	c.InjectFaults(&Faults{Room: func(group string) {
		if group == "sick" && armed.Load() {
			panic("room tick for PIN 482913")
		}
	}})
	armed.Store(true)
	for _, p := range []*Participant{p1, p2} {
		select {
		case <-p.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("a caller of the panicked room was not let go")
		}
		if p.Reason() != roomReset {
			t.Fatalf("reason %q, want %q", p.Reason(), roomReset)
		}
	}
	armed.Store(false)
	well.mu.Lock()
	before := well.n
	well.mu.Unlock()
	time.Sleep(100 * time.Millisecond)
	well.mu.Lock()
	after := well.n
	well.mu.Unlock()
	if after-before < 5 {
		t.Fatalf("the other room got %d frames in 100 ms after the reset", after-before)
	}
	select {
	case <-pw.Done():
		t.Fatal("the other room's caller was let go")
	default:
	}
	if n := c.Rooms(); n != 1 {
		t.Fatalf("%d rooms after the reset, want 1", n)
	}
	again := join("sick", "s3", &fakeStream{})
	if again.Seat() != 1 {
		t.Fatalf("the next caller got seat %d, want 1 in a new session", again.Seat())
	}
	out := logs.String()
	if !strings.Contains(out, "room tick panicked, resetting the room") || strings.Contains(out, "482913") {
		t.Fatalf("log:\n%s", out)
	}
}

// A join queued in a room that is reset before it takes the join goes to
// a new session instead of failing.
func TestJoinIntoResetRoomRetries(t *testing.T) {
	c, _ := newTestConference(t)
	g := group.Group{Name: "g", LedBy: "peer"}
	joinAs(t, c, g, &fakeStream{}, "first")
	c.mu.Lock()
	r := c.rooms["g"]
	c.mu.Unlock()
	type res struct {
		p   *Participant
		err error
	}
	ch := make(chan res, 1)
	go func() {
		p, err := c.Join(g, JoinRequest{Stream: &fakeStream{}, CallID: "second"})
		ch <- res{p, err}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for len(r.cmds) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the join never reached the room")
		}
		time.Sleep(time.Millisecond)
	}
	c.Recover(r, "boom")
	for range 5000 {
		select {
		case got := <-ch:
			if got.err != nil {
				t.Fatalf("join: %v", got.err)
			}
			if got.p.room == r || got.p.Seat() != 1 {
				t.Fatalf("joined seat %d of the old room: %v", got.p.Seat(), got.p.room == r)
			}
			return
		default:
			tickAll(c, time.Now())
			time.Sleep(time.Millisecond)
		}
	}
	t.Fatal("the join never returned")
}
