package conference

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/conference/rules"
	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/internal/testkit"
)

// joinErr is Join ticking the rooms by hand; it returns the error.
func joinErr(c *Conference, g group.Group, req JoinRequest) (*Participant, error) {
	type res struct {
		p   *Participant
		err error
	}
	ch := make(chan res, 1)
	go func() {
		p, err := c.Join(g, req)
		ch <- res{p, err}
	}()
	for {
		select {
		case r := <-ch:
			return r.p, r.err
		default:
			tickAll(c, time.Now())
			time.Sleep(time.Millisecond)
		}
	}
}

// A member outside the hours (OnlyWithFacilitator) gets in only while a
// facilitator is present; without a room none is started for them.
func TestOnlyWithFacilitator(t *testing.T) {
	c, _ := newTestConference(t)
	logs := &testkit.LogBuffer{}
	c.log = slog.New(slog.NewTextHandler(logs, nil))
	g := group.Group{Name: "g", LedBy: "peer", MaxMembers: 30}
	outside := func() error {
		_, err := joinErr(c, g, JoinRequest{Stream: &fakeStream{}, Role: group.Member, CallID: "m", OnlyWithFacilitator: true})
		return err
	}
	// A room started for the caller would be gone again by the time the
	// answer comes (it refuses, empties and is removed in one tick), so
	// the log tells whether one was started.
	if err := outside(); !errors.Is(err, ErrNotMeeting) || strings.Contains(logs.String(), "session started") {
		t.Fatalf("no room: %v; want ErrNotMeeting and none started:\n%s", err, logs.String())
	}
	member := joinNow(t, c, g, &fakeStream{}, group.Member) // within the hours
	if err := outside(); !errors.Is(err, ErrNotMeeting) {
		t.Fatalf("a room with members only: %v, want ErrNotMeeting", err)
	}
	fac := joinNow(t, c, g, &fakeStream{}, group.Facilitator)
	if err := outside(); err != nil {
		t.Fatalf("a facilitator present: %v", err)
	}
	leaveNow(c, fac)
	if err := outside(); !errors.Is(err, ErrNotMeeting) {
		t.Fatalf("the facilitator gone: %v, want ErrNotMeeting", err)
	}
	leaveNow(c, member)
}

// leaveNow is Leave ticking the rooms by hand.
func leaveNow(c *Conference, p *Participant) {
	done := make(chan struct{})
	go func() { p.Leave(); close(done) }()
	for {
		select {
		case <-done:
			return
		default:
			tickAll(c, time.Now())
			time.Sleep(time.Millisecond)
		}
	}
}

// meetingOf is the live room's meeting, read between hand-made ticks.
func meetingOf(c *Conference, name string) (rules.Meeting, bool) {
	c.mu.Lock()
	r := c.rooms[name]
	c.mu.Unlock()
	if r == nil {
		return rules.Meeting{}, false
	}
	return r.sess.Hours().Meeting()
}

// A room started within a meeting's window has that meeting, from the
// wall clock; a reload's hours replace it while a meeting is on, leave it
// when none is, and take it away with the hours; at the close the room
// lets everyone go. The clock stands on Tuesday 2023-11-14 22:13:20 UTC.
func TestRoomMeeting(t *testing.T) {
	c, clk, logs := newManualConference(t)
	g := group.Group{Name: "g", LedBy: "peer", Timezone: "UTC", Meets: []string{"Tue 22:00-22:30"},
		OpenEarly: 15 * time.Minute, Overrun: 10 * time.Minute}
	at := func(hm string) time.Time {
		v, err := time.Parse(time.RFC3339, "2023-11-14T"+hm+":00Z")
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	p := joinNow(t, c, g, &fakeStream{}, group.Member)
	if m, ok := meetingOf(c, "g"); !ok || !m.Start.Equal(at("22:00")) || !m.End.Equal(at("22:30")) || !m.Close.Equal(at("22:40")) {
		t.Fatalf("meeting %+v, %v; want 22:00-22:30, closing 22:40", m, ok)
	}
	reload := func(meets ...string) {
		h := g
		h.Meets = meets
		c.SetHours([]group.Group{{Name: "other"}, h})
		tickAll(c, time.Now())
	}
	reload("Tue 22:00-23:00")
	if m, _ := meetingOf(c, "g"); !m.Close.Equal(at("23:10")) {
		t.Errorf("after a longer meeting's reload: closes %v, want 23:10", m.Close)
	}
	reload("Wed 09:00-10:00")
	if m, ok := meetingOf(c, "g"); !ok || !m.Close.Equal(at("23:10")) {
		t.Errorf("after a reload with no meeting now: %+v, %v; want it kept", m, ok)
	}
	reload("Tue 22:00-22:30")
	c.mu.Lock()
	room := c.rooms["g"]
	c.mu.Unlock()
	clk.Advance(26*time.Minute + 40*time.Second) // 22:40, the close
	// Within a second of ticks the session ends; the room, detached, lets
	// the caller go once the closing sentence has played.
	for i := 0; i < 1000 && p.Reason() == ""; i++ {
		room.Tick(time.Now())
	}
	if p.Reason() != rules.ReasonMeetingClosed {
		t.Fatalf("let go for %q, want %q; log:\n%s", p.Reason(), rules.ReasonMeetingClosed, logs.String())
	}
	if !strings.Contains(logs.String(), `msg="session ended by the rules" group=g reason=meeting-closed`) {
		t.Errorf("no end by the rules in the log:\n%s", logs.String())
	}

	q := joinNow(t, c, g, &fakeStream{}, group.Facilitator) // 22:40: outside the hours
	if _, ok := meetingOf(c, "g"); ok {
		t.Error("a session opened outside the hours has a meeting")
	}
	reload("Tue 22:30-23:30")
	if _, ok := meetingOf(c, "g"); ok {
		t.Error("a reload gave a meeting to a session opened outside the hours")
	}
	leaveNow(c, q)

	clk.Advance(-30 * time.Minute) // back to 22:10, within the meeting
	r := joinNow(t, c, g, &fakeStream{}, group.Member)
	reload()
	if _, ok := meetingOf(c, "g"); ok {
		t.Error("the hours were taken away, the session kept its meeting")
	}
	leaveNow(c, r)
}
