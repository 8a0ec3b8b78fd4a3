package conference

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/conference/rules"
	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/media/pcm"
)

// whileTicking runs fn while ticking rs (or every live room when rs is
// empty) by hand, as the clock would, and returns when fn does.
func whileTicking(c *Conference, fn func(), rs ...*Room) {
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	for {
		select {
		case <-done:
			return
		default:
		}
		if len(rs) == 0 {
			tickAll(c, time.Now())
		}
		for _, r := range rs {
			r.Tick(time.Now())
		}
		time.Sleep(time.Millisecond)
	}
}

func snapshot(c *Conference) []RoomView {
	var v []RoomView
	whileTicking(c, func() { v = c.Snapshot() })
	return v
}

func act(c *Conference, group string, a rules.Action, seat int) error {
	var err error
	whileTicking(c, func() { err = c.Act(group, a, seat) })
	return err
}

func roomOf(t testing.TB, c *Conference, name string) *Room {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.rooms[name]
	if r == nil {
		t.Fatalf("no room %q", name)
	}
	return r
}

// joinMasked joins like joinNow, with an identity and a masked caller.
func joinMasked(t testing.TB, c *Conference, g group.Group, s pcm.Stream, role group.Role, identity, masked string) *Participant {
	t.Helper()
	var p *Participant
	var err error
	whileTicking(c, func() {
		p, err = c.Join(g, JoinRequest{Stream: s, Role: role, Identity: identity, Masked: masked, CallID: "t"})
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func seatOf(t *testing.T, v RoomView, seat int) SeatView {
	t.Helper()
	for _, s := range v.Seats {
		if s.Seat == seat {
			return s
		}
	}
	t.Fatalf("seat %d not in %+v", seat, v)
	return SeatView{}
}

func TestSnapshotShowsRoomsAndMaskedCallers(t *testing.T) {
	c, _ := newTestConference(t)
	if v := c.Snapshot(); len(v) != 0 || v == nil {
		t.Fatalf("empty conference: %#v", v)
	}
	tue := group.Group{Name: "Tuesday", LedBy: "peer", MaxMembers: 30}
	wed := group.Group{Name: "Wednesday", LedBy: "facilitator", MaxMembers: 30, EndGrace: time.Minute}
	joinMasked(t, c, tue, &fakeStream{}, group.Facilitator, "id-fac", "+1•••••0001")
	pm := joinMasked(t, c, tue, &fakeStream{level: 3000}, group.Member, "id-member", "+4•••••4567")
	joinMasked(t, c, wed, &fakeStream{}, group.Member, "", "anonymous")
	pm.Key('*')
	pm.Key('6')
	if err := act(c, "Tuesday", rules.ActLectureOn, 0); err != nil {
		t.Fatal(err)
	}
	settle(c)

	views := snapshot(c)
	if len(views) != 2 || views[0].Group != "Tuesday" || views[1].Group != "Wednesday" {
		t.Fatalf("rooms %+v", views)
	}
	tv, wv := views[0], views[1]
	if !tv.Lecture || tv.Locked || tv.ShareTimer || tv.Started.IsZero() || len(tv.Seats) != 2 {
		t.Errorf("Tuesday %+v", tv)
	}
	want := []SeatView{
		{Seat: 1, Role: "facilitator", Heard: true, Placement: "room", Caller: "+1•••••0001"},
		{Seat: 2, Role: "member", Muted: true, SelfMuted: true, Talking: true, Placement: "room", Caller: "+4•••••4567"},
	}
	for i, w := range want {
		if tv.Seats[i] != w {
			t.Errorf("seat %d: %+v, want %+v", w.Seat, tv.Seats[i], w)
		}
	}
	if s := seatOf(t, wv, 1); s.Placement != "lobby" || s.Heard || s.Caller != "anonymous" {
		t.Errorf("Wednesday seat 1: %+v", s)
	}
	// Never an identity.
	if all := fmt.Sprintf("%+v", views); strings.Contains(all, "id-") {
		t.Errorf("a snapshot holds an identity: %s", all)
	}
}

func TestActThroughTheRoom(t *testing.T) {
	c, _ := newTestConference(t)
	g := group.Group{Name: "Grief Circle", LedBy: "peer", MaxMembers: 30}
	fs, as, bs := &fakeStream{}, &fakeStream{level: 1000}, &fakeStream{}
	joinMasked(t, c, g, fs, group.Facilitator, "f", "+1•••••0001")
	pa := joinMasked(t, c, g, as, group.Member, "a", "+1•••••0002")
	pb := joinMasked(t, c, g, bs, group.Member, "b", "+1•••••0003")
	settle(c)
	if bs.heard() != 1000 {
		t.Fatalf("B hears %d before the mute", bs.heard())
	}

	// Muting is heard in the mix, matched case-insensitively, idempotent.
	for range 2 {
		if err := act(c, "grief CIRCLE", rules.ActMute, pa.Seat()); err != nil {
			t.Fatal(err)
		}
		settle(c)
		if got := bs.heard(); got != 0 {
			t.Fatalf("B hears %d after A was muted", got)
		}
		if s := seatOf(t, snapshot(c)[0], pa.Seat()); !s.FacilitatorMuted || !s.Muted || s.SelfMuted || s.Heard {
			t.Fatalf("A after mute: %+v", s)
		}
	}
	if err := act(c, "Grief Circle", rules.ActUnmute, pa.Seat()); err != nil {
		t.Fatal(err)
	}
	settle(c)
	if got := bs.heard(); got != 1000 {
		t.Fatalf("B hears %d after A was unmuted", got)
	}

	// Waiting takes A out of the mix; return brings them back.
	if err := act(c, "Grief Circle", rules.ActWait, pa.Seat()); err != nil {
		t.Fatal(err)
	}
	settle(c)
	if got := bs.heard(); got != 0 {
		t.Fatalf("B hears %d from A in waiting", got)
	}
	if s := seatOf(t, snapshot(c)[0], pa.Seat()); s.Placement != "waiting" {
		t.Fatalf("A: %+v", s)
	}
	if got := c.Stats(); got != (Stats{Rooms: 1, InRoom: 2, Waiting: 1, Facilitators: 1}) {
		t.Fatalf("stats with A waiting: %+v", got)
	}
	if err := act(c, "Grief Circle", rules.ActReturn, pa.Seat()); err != nil {
		t.Fatal(err)
	}

	// The rules' refusals come back as they are.
	rows := []struct {
		group string
		a     rules.Action
		seat  int
		want  error
	}{
		{"Grief Circle", rules.ActRemove, 1, rules.ErrFacilitator},
		{"Grief Circle", rules.ActWait, 1, rules.ErrFacilitator},
		{"Grief Circle", rules.ActMute, 9, rules.ErrNoSeat},
		{"Grief Circle", 0, 0, rules.ErrUnknownAction},
		{"Grief", rules.ActLock, 0, ErrNoSuchRoom},
		{"", rules.ActLock, 0, ErrNoSuchRoom},
	}
	for _, row := range rows {
		if err := act(c, row.group, row.a, row.seat); !errors.Is(err, row.want) {
			t.Errorf("Act(%q, %v, %d) = %v, want %v", row.group, row.a, row.seat, err, row.want)
		}
	}

	// Removal: B hears why, then the room lets B go.
	if err := act(c, "Grief Circle", rules.ActRemove, pb.Seat()); err != nil {
		t.Fatal(err)
	}
	whileTicking(c, func() { <-pb.Done() })
	if pb.Reason() != rules.ReasonRemoved {
		t.Errorf("B let go for %q", pb.Reason())
	}
	bs.mu.Lock()
	sent := bs.n
	bs.mu.Unlock()
	if sent == 0 {
		t.Error("B was sent nothing")
	}
	if err := act(c, "Grief Circle", rules.ActRemove, pb.Seat()); !errors.Is(err, rules.ErrNoSeat) {
		t.Errorf("removing B again after B left: %v", err)
	}

	// Ending lets everyone go after the goodbye, and the room is gone.
	r := roomOf(t, c, "Grief Circle")
	if err := act(c, "Grief Circle", rules.ActEnd, 0); err != nil {
		t.Fatal(err)
	}
	whileTicking(c, func() { <-pa.Done() }, r)
	if pa.Reason() != rules.ReasonEndedByOperator {
		t.Errorf("A let go for %q", pa.Reason())
	}
	if err := act(c, "Grief Circle", rules.ActEnd, 0); !errors.Is(err, ErrNoSuchRoom) {
		t.Errorf("ending again: %v", err)
	}
	whileTicking(c, func() {
		for c.Stats() != (Stats{}) {
			time.Sleep(time.Millisecond)
		}
	}, r)
	if len(snapshot(c)) != 0 {
		t.Error("an ended room is still listed")
	}
}

func TestMakeFacilitatorStartsALobby(t *testing.T) {
	c, _ := newTestConference(t)
	g := group.Group{Name: "g", LedBy: "facilitator", EndGrace: time.Minute}
	as, bs := &fakeStream{level: 1000}, &fakeStream{}
	pa := joinMasked(t, c, g, as, group.Member, "a", "")
	joinMasked(t, c, g, bs, group.Member, "b", "")
	if got := c.Stats(); got != (Stats{Rooms: 1, Lobby: 2}) {
		t.Fatalf("stats in the lobby: %+v", got)
	}
	if err := act(c, "g", rules.ActMakeFacilitator, pa.Seat()); err != nil {
		t.Fatal(err)
	}
	settle(c)
	if got := bs.heard(); got != 1000 {
		t.Fatalf("B hears %d from the new facilitator", got)
	}
	if got := c.Stats(); got != (Stats{Rooms: 1, InRoom: 2, Facilitators: 1}) {
		t.Fatalf("stats after the start: %+v", got)
	}
}

func TestActAndSnapshotAfterClose(t *testing.T) {
	c, _ := newTestConference(t)
	g := group.Group{Name: "g", LedBy: "peer"}
	p := joinMasked(t, c, g, &fakeStream{}, group.Member, "a", "")
	if got := c.Stats(); got != (Stats{Rooms: 1, InRoom: 1}) {
		t.Fatalf("stats %+v", got)
	}
	c.Close()
	<-p.Done()
	if err := c.Act("g", rules.ActLock, 0); !errors.Is(err, ErrClosed) {
		t.Errorf("Act after Close: %v", err)
	}
	if v := c.Snapshot(); len(v) != 0 {
		t.Errorf("Snapshot after Close: %+v", v)
	}
	if got := c.Stats(); got != (Stats{}) {
		t.Errorf("stats after Close: %+v", got)
	}
}

// A room stopped between the lookup and the command answers ErrNoSuchRoom
// at once rather than after the bounded wait.
func TestActOnAStoppedRoom(t *testing.T) {
	c, _ := newTestConference(t)
	g := group.Group{Name: "g", LedBy: "peer"}
	joinMasked(t, c, g, &fakeStream{}, group.Member, "a", "")
	r := roomOf(t, c, "g")
	// Fill the queue so that only the stopped channel can answer.
	for len(r.cmds) < cap(r.cmds) {
		r.cmds <- command{kind: cmdKey}
	}
	r.shutdown("room-closed")
	if err := c.Act("g", rules.ActLock, 0); !errors.Is(err, ErrNoSuchRoom) {
		t.Errorf("Act on a stopped room: %v", err)
	}
	if v := c.Snapshot(); len(v) != 0 {
		t.Errorf("Snapshot of a stopped room: %+v", v)
	}
	if got := c.Stats(); got.InRoom != 0 {
		t.Errorf("a stopped room still counts: %+v", got)
	}
}

// TestRoomTickAllocatesNothing: the 20 ms tick of a busy room, Stats
// counting included, allocates nothing when no command or timer is due.
func TestRoomTickAllocatesNothing(t *testing.T) {
	_, r := busyRoom(t, 30)
	now := time.Now()
	if n := testing.AllocsPerRun(200, func() {
		now = now.Add(pcm.FrameDuration)
		r.Tick(now)
	}); n != 0 {
		t.Errorf("room tick allocates %v per tick", n)
	}
}

// busyRoom returns a room with n callers, a third of them talking, one
// facilitator and one caller in waiting, settled past every greeting.
func busyRoom(tb testing.TB, n int) (*Conference, *Room) {
	tb.Helper()
	c, _ := newTestConference(tb)
	c.log = slog.New(slog.DiscardHandler)
	g := group.Group{Name: "g", LedBy: "peer"}
	for i := range n {
		role := group.Member
		if i == 0 {
			role = group.Facilitator
		}
		s := &fakeStream{}
		if i%3 == 1 {
			s.level = int16(1000 + 100*i)
		}
		joinMasked(tb, c, g, s, role, fmt.Sprint(i), "")
	}
	if err := act(c, "g", rules.ActWait, n); err != nil {
		tb.Fatal(err)
	}
	r := roomOf(tb, c, "g")
	for range 1000 { // 20 s: greetings, chimes and the first announcement
		r.Tick(time.Now())
	}
	return c, r
}

// BenchmarkRoomTickWithWaiting is one 20 ms tick of a room with 30
// callers, one of them in waiting (out of the mix, on hold music), with the
// Stats counting.
func BenchmarkRoomTickWithWaiting(b *testing.B) {
	_, r := busyRoom(b, 30)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(pcm.FrameDuration)
		r.Tick(now)
	}
}
