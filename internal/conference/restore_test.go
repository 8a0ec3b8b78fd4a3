package conference

import (
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/conference/rules"
	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/internal/testkit"
	"github.com/groupbridge/groupbridge/media/clock"
	"github.com/groupbridge/groupbridge/media/pcm"
	"github.com/groupbridge/groupbridge/media/prompt"
	"github.com/groupbridge/groupbridge/media/tone"
)

// mirrorLog is a Config.Mirror that keeps the latest snapshot of each room
// and how many it was handed.
type mirrorLog struct {
	mu     sync.Mutex
	latest map[string]rules.Snapshot
	n      int
	ended  []string
}

func (m *mirrorLog) put(room string, snap rules.Snapshot) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.latest == nil {
		m.latest = map[string]rules.Snapshot{}
	}
	m.latest[room] = snap
	m.n++
}

func (m *mirrorLog) end(room string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ended = append(m.ended, room)
}

func (m *mirrorLog) get(room string) (rules.Snapshot, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.latest[room], m.n
}

// node is one node's conference for the failover tests: its own media
// clock (ticked by hand), the shared wall clock, a mirror and a record.
type node struct {
	c      *Conference
	mirror *mirrorLog
	rec    *records
}

func newNode(t *testing.T, clk *testkit.ManualClock) *node {
	t.Helper()
	set, err := prompt.Builtin("en")
	if err != nil {
		t.Fatal(err)
	}
	n := &node{mirror: &mirrorLog{}, rec: &records{}}
	n.c = New(Config{
		Media:       clock.New(time.Hour, nil, nil), // never fires: the test ticks by hand
		Prompts:     set,
		Log:         slog.New(slog.DiscardHandler),
		Audio:       Audio{MaxTalkers: 4},
		Clock:       clk,
		Attendance:  n.rec,
		Mirror:      n.mirror.put,
		MirrorEnded: n.mirror.end,
	})
	return n
}

// manualTicks runs fn while ticking c's rooms, each tick 20 ms later on
// clk (the rooms' times and the wall's are the same clock, as in
// production), and returns fn's result when it is done.
func manualTicks(c *Conference, clk *testkit.ManualClock, fn func()) {
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	for {
		select {
		case <-done:
			return
		default:
		}
		ticks(c, clk, 1)
		time.Sleep(time.Millisecond)
	}
}

// ticks ticks c's rooms n times, 20 ms apart on clk.
func ticks(c *Conference, clk *testkit.ManualClock, n int) {
	for range n {
		clk.Advance(pcm.FrameDuration)
		tickAll(c, clk.Now())
	}
}

func nodeJoin(t *testing.T, n *node, clk *testkit.ManualClock, g group.Group, req JoinRequest) (*Participant, error) {
	t.Helper()
	var p *Participant
	var err error
	req.CallID = "t"
	manualTicks(n.c, clk, func() { p, err = n.c.Join(g, req) })
	return p, err
}

func nodePress(n *node, clk *testkit.ManualClock, p *Participant, keys string) {
	for i := range len(keys) {
		p.Key(keys[i])
	}
	ticks(n.c, clk, 1)
}

// heardClip reports whether what s heard since mark begins with clip.
func heardClip(s *tapeStream, mark int, clip []int16) bool {
	for len(clip) > 0 && clip[0] == 0 {
		clip = clip[1:]
	}
	got := s.since(mark)
	return len(got) >= len(clip) && slices.Equal(got[:len(clip)], clip)
}

// A failover: a busy session is mirrored on node A, A is gone, node B
// restores the room from the last snapshot, and the same callers come back
// by identity: seats, roles, mutes and hand order kept, lock and lecture
// hold, the removed caller is refused, the floor's share time resumes with
// what was left, and only reconnected callers hear line_problem.
func TestRestoreAfterFailover(t *testing.T) {
	clk := testkit.NewManualClock()
	set, _ := prompt.Builtin("en")
	g := group.Group{Name: "g", LedBy: group.LedByFacilitator, EndGrace: 2 * time.Minute, ShareMinutes: 3}
	a := newNode(t, clk)
	start := clk.Now()
	ids := []string{"idF", "id2", "id3", "id4", "id5", "id6", "id7"}
	ps := make([]*Participant, len(ids))
	for i, id := range ids {
		role := group.Member
		if i == 0 {
			role = group.Facilitator
		}
		p, err := nodeJoin(t, a, clk, g, JoinRequest{Stream: &tapeStream{}, Role: role, Identity: id})
		if err != nil || p.Seat() != i+1 {
			t.Fatalf("%s: seat %v, %v", id, p, err)
		}
		ps[i] = p
	}
	nodePress(a, clk, ps[0], "*5")
	nodePress(a, clk, ps[0], "*7")
	nodePress(a, clk, ps[0], "*4")
	nodePress(a, clk, ps[1], "*9")
	nodePress(a, clk, ps[2], "*9")
	nodePress(a, clk, ps[3], "*9")
	nodePress(a, clk, ps[0], "*8") // seat 2 has the floor: 3 minutes of share time
	nodePress(a, clk, ps[2], "*6")
	floorAt := clk.Now()
	var err error
	manualTicks(a.c, clk, func() { err = a.c.Act("g", rules.ActMute, 5) })
	if err != nil {
		t.Fatal(err)
	}
	manualTicks(a.c, clk, func() { err = a.c.Act("g", rules.ActRemove, 6) })
	if err != nil {
		t.Fatal(err)
	}
	manualTicks(a.c, clk, ps[6].Leave)
	ticks(a.c, clk, 400) // everything said, seat 6 gone
	clk.Advance(time.Minute - 8*time.Second)
	ticks(a.c, clk, 1)
	snap, count := a.mirror.get("g")
	ticks(a.c, clk, 50)
	if _, again := a.mirror.get("g"); again != count {
		t.Fatalf("idle ticks were mirrored: %d snapshots, then %d", count, again)
	}
	ra := roomOf(t, a.c, "g")
	if n := testing.AllocsPerRun(50, func() { clk.Advance(pcm.FrameDuration); ra.Tick(clk.Now()) }); n != 0 {
		t.Fatalf("an idle tick of a mirrored room allocates %v times", n)
	}
	snap, _ = a.mirror.get("g")
	if len(snap.Seats) != 5 || !snap.Lecture || !snap.Locked || snap.Record == "" || snap.Start.Before(start) {
		t.Fatalf("mirrored snapshot %+v", snap)
	}
	start = snap.Start

	// Node A is gone (its callers' legs with it); B takes over.
	clk.Advance(5 * time.Second)
	b := newNode(t, clk)
	if err := b.c.Restore(g, snap); err != nil {
		t.Fatal(err)
	}
	if err := b.c.Restore(g, snap); !errors.Is(err, ErrLive) {
		t.Fatalf("a second Restore: %v", err)
	}
	ticks(b.c, clk, 100) // the room waits for its callers
	if b.c.Rooms() != 1 {
		t.Fatal("the restored room closed before its callers came back")
	}
	var known bool
	manualTicks(b.c, clk, func() { known = b.c.Rejoining(g, "id4") })
	if !known {
		t.Fatal("a restored caller is not rejoining (they would hear the greeting again)")
	}

	tapes := map[int]*tapeStream{}
	rejoin := func(id string, seat int, reconnect bool) *Participant {
		t.Helper()
		s := &tapeStream{}
		p, err := nodeJoin(t, b, clk, g, JoinRequest{Stream: s, Role: group.Member, Identity: id, Reconnect: reconnect})
		if err != nil || p.Seat() != seat || !p.Restored() {
			t.Fatalf("%s back as %v, %v; want seat %d restored", id, p, err, seat)
		}
		tapes[seat] = s
		return p
	}
	rejoin("id4", 4, true)
	rejoin("id3", 3, true)
	rejoin("id2", 2, true)
	rejoin("id5", 5, true)
	if _, err := nodeJoin(t, b, clk, g, JoinRequest{Stream: &tapeStream{}, Role: group.Member, Identity: "id6", Reconnect: true}); !errors.Is(err, ErrRemoved) {
		t.Fatalf("removed caller: %v", err)
	}
	if _, err := nodeJoin(t, b, clk, g, JoinRequest{Stream: &tapeStream{}, Role: group.Member, Identity: "new"}); !errors.Is(err, ErrLocked) {
		t.Fatalf("new caller in a locked room: %v", err)
	}
	f := rejoin("idF", 1, true)
	ticks(b.c, clk, 300) // 6 s: everything said

	lineProblem, _ := set.Clip(prompt.LineProblem)
	youAre, _ := set.Clip(prompt.YouAreCaller)
	for seat, s := range tapes {
		if !heardClip(s, 0, lineProblem) {
			t.Errorf("seat %d did not hear line_problem first", seat)
			continue
		}
		rest := s.since(0)[len(lineProblem)-16:]
		if slices.ContainsFunc(rest, func(v int16) bool { return v != 0 }) {
			t.Errorf("seat %d heard more than line_problem (a greeting, or a join chime)", seat)
		}
	}

	rejoin("id7", 7, false) // dropped before the failover: a plain rejoin
	ticks(b.c, clk, 100)
	if s := tapes[7]; heardClip(s, 0, lineProblem) || !heardClip(s, 0, youAre) {
		t.Errorf("seat 7 (no reconnect) did not hear its seat, or heard line_problem")
	}

	var v []RoomView
	manualTicks(b.c, clk, func() { v = b.c.Snapshot() })
	if len(v) != 1 || !v[0].Locked || !v[0].Lecture || !v[0].ShareTimer || !v[0].Started.Equal(start) {
		t.Fatalf("restored room %+v", v)
	}
	seats := map[int]SeatView{}
	for _, s := range v[0].Seats {
		seats[s.Seat] = s
	}
	if seats[1].Role != "facilitator" || !seats[3].SelfMuted || !seats[5].FacilitatorMuted ||
		!seats[3].HandRaised || !seats[4].HandRaised || !seats[2].Floor || !seats[2].Heard || seats[4].Heard {
		t.Fatalf("restored seats %+v", v[0].Seats)
	}

	// The floor's share time runs out when it would have on A: 3 minutes
	// from the grant.
	chimeAt := floorAt.Add(3 * time.Minute)
	mark := tapes[2].len()
	clk.Advance(chimeAt.Sub(clk.Now()) - time.Second)
	ticks(b.c, clk, 40)
	if got := tapes[2].since(mark); len(got) != 0 {
		t.Fatal("seat 2 heard something before its share time was up")
	}
	ticks(b.c, clk, 120)
	if !heardClip(tapes[2], mark, tone.Chime()) {
		got := tapes[2].since(mark)
		t.Fatalf("seat 2 did not hear the share-limit chime when the time left ran out: %d %v %v", len(got), got[:min(10, len(got))], tone.Chime()[:10])
	}

	// Hand order: seat 3 raised before seat 4, though 4 came back first.
	nodePress(b, clk, f, "*8")
	manualTicks(b.c, clk, func() { v = b.c.Snapshot() })
	for _, s := range v[0].Seats {
		if s.Floor != (s.Seat == 3) {
			t.Fatalf("after *8 the floor is not seat 3's: %+v", v[0].Seats)
		}
	}

	// One session in the attendance: B's record has A's start and ID.
	r := roomOf(t, b.c, "g")
	manualTicks(b.c, clk, func() { err = b.c.Act("g", rules.ActEnd, 0) })
	for range 1000 { // the goodbyes said, the room closes (detached: ticked by hand)
		clk.Advance(pcm.FrameDuration)
		r.Tick(clk.Now())
		if len(b.rec.all()) > 0 {
			break
		}
	}
	recs := b.rec.all()
	if len(recs) != 1 || recs[0].ID != snap.Record || !recs[0].Start.Equal(start) {
		t.Fatalf("records %+v, want one with ID %s and the session's start", recs, snap.Record)
	}
	if b.mirror.ended == nil {
		t.Fatal("MirrorEnded was not told the session ended")
	}
}

// A restored room nobody comes back to closes when the rejoin window
// has passed.
func TestRestoredRoomClosesEmpty(t *testing.T) {
	clk := testkit.NewManualClock()
	g := group.Group{Name: "g", LedBy: group.LedByPeer}
	a := newNode(t, clk)
	if _, err := nodeJoin(t, a, clk, g, JoinRequest{Stream: &tapeStream{}, Role: group.Member, Identity: "x"}); err != nil {
		t.Fatal(err)
	}
	snap, _ := a.mirror.get("g")
	b := newNode(t, clk)
	if err := b.c.Restore(g, snap); err != nil {
		t.Fatal(err)
	}
	ticks(b.c, clk, 1)
	clk.Advance(rules.DefaultRejoinWindow - time.Second)
	ticks(b.c, clk, 1)
	if b.c.Rooms() != 1 {
		t.Fatal("closed before the rejoin window passed")
	}
	clk.Advance(2 * time.Second)
	ticks(b.c, clk, 2)
	if b.c.Rooms() != 0 {
		t.Fatal("still open after the rejoin window")
	}
	if len(b.mirror.ended) != 1 {
		t.Fatalf("MirrorEnded told %v", b.mirror.ended)
	}
	bad := snap
	bad.Format = 99
	if err := b.c.Restore(g, bad); !errors.Is(err, rules.ErrSnapshot) {
		t.Fatalf("Restore of a bad snapshot: %v", err)
	}
}
