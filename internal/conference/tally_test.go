package conference

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/attendance"
	"github.com/groupbridge/groupbridge/internal/conference/rules"
	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/internal/testkit"
	"github.com/groupbridge/groupbridge/media/clock"
	"github.com/groupbridge/groupbridge/media/pcm"
	"github.com/groupbridge/groupbridge/media/prompt"
)

// records is an attendance.Recorder that keeps what it is given, the
// rooms' boundary to the store.
type records struct {
	mu       sync.Mutex
	sessions []attendance.Session
}

func (r *records) Session(s attendance.Session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sessions = append(r.sessions, s)
}
func (r *records) WrongPIN(string, time.Time) {}
func (r *records) Closed(string, time.Time)   {}

func (r *records) all() []attendance.Session {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]attendance.Session(nil), r.sessions...)
}

// newRecordedConference is newManualConference with a Recorder.
func newRecordedConference(t testing.TB) (*Conference, *testkit.ManualClock, *records) {
	t.Helper()
	set, err := prompt.Builtin("en")
	if err != nil {
		t.Fatal(err)
	}
	clk := testkit.NewManualClock()
	rec := &records{}
	c := New(Config{
		Media:      clock.New(time.Hour, nil, nil), // never fires: the test ticks by hand
		Prompts:    set,
		Log:        slog.New(slog.DiscardHandler),
		Audio:      Audio{MaxTalkers: 4},
		Clock:      clk,
		Attendance: rec,
	})
	return c, clk, rec
}

// endAll leaves every p and ticks until the group's rooms are gone.
func endAll(c *Conference, ps ...*Participant) {
	for _, p := range ps {
		leaveNow(c, p)
	}
	for c.Rooms() > 0 {
		tickAll(c, time.Now())
	}
}

// Each session's record reaches the Recorder once, when it ends, counted
// on the wall clock: joins, rejoins, role changes and refusals at the door.
func TestSessionRecorded(t *testing.T) {
	const min = time.Minute
	tests := []struct {
		name string
		run  func(t *testing.T, c *Conference, clk *testkit.ManualClock)
		want attendance.Session // ID, Group, Start and End are checked apart
	}{
		{"two callers", func(t *testing.T, c *Conference, clk *testkit.ManualClock) {
			g := group.Group{Name: "g", LedBy: "peer"}
			a := joinMasked(t, c, g, &fakeStream{}, group.Member, "id-a", "")
			clk.Advance(10 * min)
			b := joinMasked(t, c, g, &fakeStream{}, group.Member, "id-b", "")
			clk.Advance(20 * min)
			leaveNow(c, b)
			clk.Advance(30 * min)
			endAll(c, a)
		}, attendance.Session{Peak: 2, Distinct: 2, Joins: 2, MemberTime: 80 * min,
			MedianStay: 40 * min, LongestStay: 60 * min}},
		{"a rejoin is the same caller", func(t *testing.T, c *Conference, clk *testkit.ManualClock) {
			g := group.Group{Name: "g", LedBy: "peer"}
			a := joinMasked(t, c, g, &fakeStream{}, group.Member, "id-a", "")
			keep := joinMasked(t, c, g, &fakeStream{}, group.Member, "", "")
			clk.Advance(10 * min)
			leaveNow(c, a)
			clk.Advance(min)
			a = joinMasked(t, c, g, &fakeStream{}, group.Member, "id-a", "")
			clk.Advance(5 * min)
			endAll(c, a, keep)
		}, attendance.Session{Peak: 2, Distinct: 2, Joins: 3, MemberTime: 31 * min,
			MedianStay: 15*min + 30*time.Second, LongestStay: 16 * min}},
		{"an operator's new facilitator splits the time", func(t *testing.T, c *Conference, clk *testkit.ManualClock) {
			g := group.Group{Name: "g", LedBy: "peer"}
			a := joinMasked(t, c, g, &fakeStream{}, group.Member, "id-a", "")
			clk.Advance(10 * min)
			if err := act(c, "g", rules.ActMakeFacilitator, a.Seat()); err != nil {
				t.Fatal(err)
			}
			clk.Advance(5 * min)
			endAll(c, a)
		}, attendance.Session{Peak: 1, Distinct: 1, Joins: 1, MemberTime: 10 * min, FacilitatorTime: 5 * min,
			MedianStay: 15 * min, LongestStay: 15 * min}},
		{"turned away at the door", func(t *testing.T, c *Conference, clk *testkit.ManualClock) {
			g := group.Group{Name: "g", LedBy: "peer", MaxMembers: 2}
			a := joinMasked(t, c, g, &fakeStream{}, group.Member, "id-a", "")
			b := joinMasked(t, c, g, &fakeStream{}, group.Member, "id-b", "")
			refused := func(id string, want error) {
				t.Helper()
				if _, err := joinErr(c, g, JoinRequest{Stream: &fakeStream{}, Role: group.Member, Identity: id, CallID: "t"}); !errors.Is(err, want) {
					t.Fatalf("join: %v, want %v", err, want)
				}
			}
			refused("id-c", ErrFull)
			refused("id-d", ErrFull)
			if err := act(c, "g", rules.ActRemove, b.Seat()); err != nil {
				t.Fatal(err)
			}
			for b.Reason() == "" { // b hears they were removed, then goes
				tickAll(c, time.Now())
			}
			refused("id-b", ErrRemoved)
			if err := act(c, "g", rules.ActLock, 0); err != nil {
				t.Fatal(err)
			}
			refused("id-e", ErrLocked)
			// Outside the hours: in only while a facilitator is present.
			if _, err := joinErr(c, g, JoinRequest{Stream: &fakeStream{}, Role: group.Member, OnlyWithFacilitator: true, CallID: "t"}); !errors.Is(err, ErrNotMeeting) {
				t.Fatalf("outside the hours: %v, want ErrNotMeeting", err)
			}
			endAll(c, a)
		}, attendance.Session{Peak: 2, Distinct: 2, Joins: 2,
			TurnedAway: [4]int{attendance.Full: 2, attendance.Locked: 1, attendance.Closed: 1, attendance.Removed: 1}}},
		{"closing the bridge ends and records the session", func(t *testing.T, c *Conference, clk *testkit.ManualClock) {
			g := group.Group{Name: "g", LedBy: "peer"}
			joinMasked(t, c, g, &fakeStream{}, group.Facilitator, "id-a", "")
			joinMasked(t, c, g, &fakeStream{}, group.Member, "id-b", "")
			clk.Advance(7 * min)
			c.Close()
			c.Close()
		}, attendance.Session{Peak: 2, Distinct: 2, Joins: 2, FacilitatorTime: 7 * min, MemberTime: 7 * min,
			MedianStay: 7 * min, LongestStay: 7 * min}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, clk, rec := newRecordedConference(t)
			start := clk.Now()
			tt.run(t, c, clk)
			got := rec.all()
			if len(got) != 1 {
				t.Fatalf("%d records, want 1: %+v", len(got), got)
			}
			s := got[0]
			if len(s.ID) != 32 || s.Group != "g" || !s.Start.Equal(start) || !s.End.Equal(clk.Now()) {
				t.Errorf("record %+v: want a 32-digit ID, group g, from %v to %v", s, start, clk.Now())
			}
			want := tt.want
			want.ID, want.Group, want.Start, want.End = s.ID, s.Group, s.Start, s.End
			// Durations are the manual clock's steps; ticks take no wall time.
			if s != want {
				t.Errorf("record\n got %+v\nwant %+v", s, want)
			}
		})
	}
}

// A session held in a meeting's window records the scheduled slot (the
// last one a reload gave it); one opened outside the hours records none.
// The clock stands on Tuesday 2023-11-14 22:13:20 UTC.
func TestSessionRecordsItsSlot(t *testing.T) {
	c, clk, rec := newRecordedConference(t)
	g := group.Group{Name: "g", LedBy: "peer", Timezone: "UTC", Meets: []string{"Tue 22:00-22:30"},
		OpenEarly: 15 * time.Minute, Overrun: 10 * time.Minute}
	at := func(hm string) time.Time {
		v, err := time.Parse(time.RFC3339, "2023-11-14T"+hm+":00Z")
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	p := joinMasked(t, c, g, &fakeStream{}, group.Member, "", "")
	h := g
	h.Meets = []string{"Tue 22:00-23:00"}
	c.SetHours([]group.Group{h})
	tickAll(c, time.Now())
	endAll(c, p)
	clk.Advance(2 * time.Hour) // 00:13 on Wednesday: no meeting
	q := joinMasked(t, c, g, &fakeStream{}, group.Facilitator, "", "")
	endAll(c, q)
	got := rec.all()
	if len(got) != 2 {
		t.Fatalf("%d records, want 2", len(got))
	}
	if !got[0].SlotStart.Equal(at("22:00")) || !got[0].SlotEnd.Equal(at("23:00")) {
		t.Errorf("slot %v-%v, want the reloaded 22:00-23:00", got[0].SlotStart, got[0].SlotEnd)
	}
	if !got[1].SlotStart.IsZero() || !got[1].SlotEnd.IsZero() {
		t.Errorf("a session outside the hours has slot %v-%v", got[1].SlotStart, got[1].SlotEnd)
	}
}

// Counting attendance adds nothing to a tick in which nothing changed.
func TestRecordedRoomTickAllocatesNothing(t *testing.T) {
	c, _, _ := newRecordedConference(t)
	g := group.Group{Name: "g", LedBy: "peer"}
	for i := range 10 {
		joinMasked(t, c, g, &fakeStream{level: int16(100 * (i % 3))}, group.Member, string(rune('a'+i)), "")
	}
	r := roomOf(t, c, "g")
	for range 1000 {
		r.Tick(time.Now())
	}
	now := time.Now()
	if n := testing.AllocsPerRun(200, func() {
		now = now.Add(pcm.FrameDuration)
		r.Tick(now)
	}); n != 0 {
		t.Errorf("room tick allocates %v per tick", n)
	}
}

// A caller outside the hours with no session to join starts no room and
// so no record: Join says ErrNoSession, for the caller's flow to count.
// With a session (no facilitator in it) the room counts the refusal and
// Join says plain ErrNotMeeting.
func TestClosedWithoutSession(t *testing.T) {
	c, _, rec := newRecordedConference(t)
	g := group.Group{Name: "g", LedBy: "peer"}
	outside := JoinRequest{Stream: &fakeStream{}, Role: group.Member, OnlyWithFacilitator: true, CallID: "t"}
	if _, err := joinErr(c, g, outside); !errors.Is(err, ErrNoSession) {
		t.Fatalf("no session: %v, want ErrNoSession", err)
	}
	p := joinMasked(t, c, g, &fakeStream{}, group.Member, "", "")
	if _, err := joinErr(c, g, outside); !errors.Is(err, ErrNotMeeting) || errors.Is(err, ErrNoSession) {
		t.Fatalf("a session without facilitator: %v, want ErrNotMeeting only", err)
	}
	endAll(c, p)
	got := rec.all()
	if len(got) != 1 || got[0].TurnedAway[attendance.Closed] != 1 {
		t.Fatalf("records %+v, want one session with one caller turned away closed", got)
	}
}

// A room handed to another node lets its callers go with ReasonMoved and
// records no session here: the session goes on where the room went.
func TestHandoffRecordsNothing(t *testing.T) {
	c, _, rec := newRecordedConference(t)
	g := group.Group{Name: "g", LedBy: "peer"}
	p1 := joinMasked(t, c, g, &fakeStream{}, group.Member, "", "")
	p2 := joinMasked(t, c, g, &fakeStream{}, group.Facilitator, "", "")
	if !c.Has("g") || c.Has("other") {
		t.Fatalf("Has: g %v, other %v", c.Has("g"), c.Has("other"))
	}
	if !c.Handoff("g") {
		t.Fatal("Handoff found no room")
	}
	for _, p := range []*Participant{p1, p2} {
		select {
		case <-p.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("a caller was not let go")
		}
		if p.Reason() != ReasonMoved {
			t.Errorf("reason %q, want %q", p.Reason(), ReasonMoved)
		}
	}
	if c.Has("g") || c.Rooms() != 0 || c.Handoff("g") {
		t.Error("the room is still here after its handoff")
	}
	if got := rec.all(); len(got) != 0 {
		t.Errorf("records %+v, want none", got)
	}
	// The group's next caller here starts a session of its own.
	p3 := joinMasked(t, c, g, &fakeStream{}, group.Member, "", "")
	endAll(c, p3)
	if got := rec.all(); len(got) != 1 {
		t.Errorf("records %+v, want the new session's", got)
	}
}

// A fenced room (a cluster owner that may have lost the room in a stall)
// holds still: no frames, no timers, no commands; it goes on when the
// fence lifts.
func TestFencedRoomHoldsStill(t *testing.T) {
	c, _, _ := newRecordedConference(t)
	var fence atomic.Bool
	c.fenced = func(room string) bool { return room == "g" && fence.Load() }
	g := group.Group{Name: "g", LedBy: "peer"}
	s := &fakeStream{}
	p := joinMasked(t, c, g, s, group.Member, "", "")
	written := func() int {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.n
	}
	fence.Store(true)
	before := written()
	for range 50 {
		tickAll(c, time.Now())
	}
	if n := written() - before; n != 0 {
		t.Fatalf("a fenced room sent %d frames", n)
	}
	fence.Store(false)
	tickAll(c, time.Now())
	if written() == before {
		t.Fatal("the room did not go on once the fence lifted")
	}
	endAll(c, p)
}
