package conference

import (
	"errors"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/group"
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
	g := group.Group{Name: "g", LedBy: "peer", MaxMembers: 30}
	outside := func() error {
		_, err := joinErr(c, g, JoinRequest{Stream: &fakeStream{}, Role: group.Member, CallID: "m", OnlyWithFacilitator: true})
		return err
	}
	if err := outside(); !errors.Is(err, ErrNotMeeting) || c.Rooms() != 0 {
		t.Fatalf("no room: %v, %d rooms; want ErrNotMeeting and none started", err, c.Rooms())
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
