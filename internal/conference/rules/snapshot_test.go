package rules

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/group"
	pr "github.com/groupbridge/groupbridge/media/prompt"
)

// busySession is a facilitator-led session with everything a snapshot
// keeps: s1 facilitator; lecture, lock and share timer on; s2 holding the
// floor for a minute; s3 (self-muted) and s4 with raised hands, in that
// order; s5 muted by the facilitator; s6 removed; s7 dropped (a memo).
// It returns the session and the instant it got there.
func busySession(t testing.TB) (*Session, time.Time) {
	t.Helper()
	s := New(facLed, t0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	for i, id := range []string{"s1", "s2", "s3", "s4", "s5", "s6", "s7"} {
		role := group.Member
		if i == 0 {
			role = group.Facilitator
		}
		if res, _ := s.Join(id, role, at(time.Duration(i)*sec)); res.Seat != i+1 {
			t.Fatalf("%s joined as %+v", id, res)
		}
	}
	press := func(d time.Duration, seat int, ks string) {
		for i := range len(ks) {
			s.Key(seat, ks[i], at(d))
		}
	}
	press(10*sec, 1, "*5")
	press(11*sec, 1, "*7")
	press(12*sec, 1, "*4")
	press(13*sec, 2, "*9")
	press(14*sec, 3, "*9")
	press(15*sec, 4, "*9")
	press(16*sec, 1, "*8") // s2 has the floor: share chime at 3m16s
	press(17*sec, 3, "*6")
	if _, err := s.Act(ActMute, 5, at(18*sec)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Act(ActRemove, 6, at(19*sec)); err != nil {
		t.Fatal(err)
	}
	s.Leave(6, at(20*sec))
	s.Leave(7, at(21*sec)) // memo until 2m21s
	now := at(76 * sec)    // the floor has been held a minute
	s.Tick(now)
	return s, now
}

func TestSnapshotHoldsTheSession(t *testing.T) {
	s, now := busySession(t)
	snap := s.Snapshot(now)
	want := Snapshot{
		Format: SnapshotFormat, Version: s.Version(), Started: true, NextSeat: 8,
		Locked: true, Lecture: true, ShareTimer: true,
		Seats: []SnapshotSeat{
			{Seat: 1, Identity: "s1", Role: group.Facilitator},
			{Seat: 2, Identity: "s2", Floor: true, ChimeAt: t0.Add(16*sec + 3*mn), EndAt: t0.Add(16*sec + 3*mn + DefaultFloorGrace)},
			{Seat: 3, Identity: "s3", SelfMuted: true, Hand: 1},
			{Seat: 4, Identity: "s4", Hand: 2},
			{Seat: 5, Identity: "s5", FacilitatorMuted: true},
		},
		Memos:   []SnapshotSeat{{Seat: 7, Identity: "s7", Until: t0.Add(21*sec + DefaultRejoinWindow)}},
		Removed: []string{"s6"},
	}
	if !reflect.DeepEqual(snap, want) {
		t.Fatalf("snapshot\n%+v\nwant\n%+v", snap, want)
	}
	// Encode refuses a snapshot without the engine's start; with it, the
	// JSON comes back the same.
	if _, err := snap.Encode(); !errors.Is(err, ErrSnapshot) {
		t.Fatalf("Encode without a start: %v", err)
	}
	snap.Start, snap.Record = t0, "0123456789abcdef0123456789abcdef"
	b, err := snap.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, snap) {
		t.Fatalf("decoded\n%+v\nwant\n%+v", back, snap)
	}
	if strings.Contains(string(b), "+1") {
		t.Fatal("snapshot JSON holds something like a number")
	}
}

// Restored in a fresh session after a 10 s failover, the callers who
// join again with their identities, in another order, get their seats,
// roles, mutes and hand order back; the lock, lecture mode and the
// removal hold; the floor holder's share time resumes with what was left;
// the facilitator's return is not announced (nobody heard them go).
func TestRestoreRebuildsTheSession(t *testing.T) {
	old, now := busySession(t)
	snap := old.Snapshot(now)
	snap.Start = t0
	r0 := now.Add(10 * sec)
	s := New(facLed, r0)
	if err := s.Restore(snap, r0); err != nil {
		t.Fatal(err)
	}
	if err := s.Restore(snap, r0); !errors.Is(err, ErrNotFresh) {
		t.Fatal("a second Restore:", err)
	}
	at := func(d time.Duration) time.Time { return r0.Add(d) }
	if !s.Door().Remembers("s2", r0) || !s.Door().Remembers("s7", r0) || s.Door().Remembers("new", r0) {
		t.Fatal("the restored memos are not remembered")
	}
	joins := []struct {
		id   string
		role group.Role
		seat int
	}{{"s4", group.Member, 4}, {"s3", group.Member, 3}, {"s2", group.Member, 2}, {"s5", group.Member, 5}, {"s7", group.Member, 7}}
	for i, j := range joins {
		res, effs := s.Join(j.id, j.role, at(time.Duration(i)*sec))
		if res.Seat != j.seat || !res.Restored {
			t.Fatalf("%s rejoined as %+v, want seat %d restored", j.id, res, j.seat)
		}
		if slices.ContainsFunc(effs, func(e Effect) bool { return e.Kind == Say && slices.Contains(e.Phrase, pr.FirstHere) }) {
			t.Fatalf("%s told they are the first one here: %v", j.id, effs)
		}
	}
	if res, _ := s.Join("s6", group.Member, at(6*sec)); res.Refused != RefuseRemoved {
		t.Fatalf("removed s6 rejoined: %+v", res)
	}
	if res, _ := s.Join("new", group.Member, at(6*sec)); res.Refused != RefuseLocked {
		t.Fatalf("a new member got into the locked room: %+v", res)
	}
	// The facilitator comes back last, as a member would dial: the memo
	// makes them facilitator again, silently.
	res, effs := s.Join("s1", group.Member, at(7*sec))
	if res.Seat != 1 || !res.Restored || s.Seats().Role(1) != group.Facilitator {
		t.Fatalf("s1 rejoined as %+v, role %v", res, s.Seats().Role(1))
	}
	for _, e := range effs {
		if e.Kind == SayRoom {
			t.Fatalf("the room was told of the facilitator's return: %v", effs)
		}
	}
	views := map[int]SeatView{}
	for _, v := range s.View() {
		views[v.Seat] = v
	}
	if !views[3].SelfMuted || !views[5].FacilitatorMuted || !views[3].Hand || !views[4].Hand || !views[2].Floor {
		t.Fatalf("restored seats: %+v", s.View())
	}
	if !s.Lecture() || !s.Door().Locked() || !s.ShareTimer() {
		t.Fatal("lecture, lock or share timer lost")
	}
	if !s.Heard(2) || s.Heard(4) || !s.Heard(1) {
		t.Fatal("lecture mode's hearing is not restored: the floor and the facilitator heard, members not")
	}
	// The floor's share time runs out when it would have: 3 minutes
	// from its grant at 16 s.
	chimeAt := t0.Add(16*sec + 3*mn)
	if effs := s.Tick(chimeAt.Add(-time.Millisecond)); slices.ContainsFunc(effs, isShareChime) {
		t.Fatalf("share chime early: %v", effs)
	}
	if effs := s.Tick(chimeAt); !slices.ContainsFunc(effs, isShareChime) {
		t.Fatalf("no share chime when the time left ran out: %v", effs)
	}
	// Hand order: s3 then s4, though s4 came back first.
	effs = nil
	for _, k := range []byte("*8") {
		effs = append(effs, s.Key(1, k, chimeAt.Add(sec))...)
	}
	if want := room(0, pr.Caller, "3", pr.YouHaveTheFloor); !slices.ContainsFunc(effs, func(e Effect) bool { return sameEffects([]Effect{e}, []Effect{want}) }) {
		t.Fatalf("*8 after the restore: %v, want %v", effs, want)
	}
}

func isShareChime(e Effect) bool { return e.Kind == Chime && e.Chime == ChimeShareLimit }

// A facilitator-led session restored without its facilitator coming back
// ends RejoinWindow plus EndGrace after the restore.
func TestRestoreEndsWithoutTheFacilitator(t *testing.T) {
	old, now := busySession(t)
	snap := old.Snapshot(now)
	snap.Start = t0
	s := New(facLed, now)
	if err := s.Restore(snap, now); err != nil {
		t.Fatal(err)
	}
	s.Join("s2", group.Member, now)
	end := now.Add(DefaultRejoinWindow + facLed.EndGrace)
	if effs := s.Tick(end.Add(-time.Millisecond)); slices.ContainsFunc(effs, func(e Effect) bool { return e.Kind == End }) {
		t.Fatal("ended early")
	}
	effs := s.Tick(end)
	if !slices.ContainsFunc(effs, func(e Effect) bool { return e.Kind == End && e.Reason == ReasonGraceExpired }) {
		t.Fatalf("not ended at the grace: %v", effs)
	}
}

func TestRestoreRefusesALiveSession(t *testing.T) {
	old, now := busySession(t)
	snap := old.Snapshot(now)
	snap.Start = t0
	if err := old.Restore(snap, now); !errors.Is(err, ErrNotFresh) {
		t.Fatalf("Restore of a live session: %v", err)
	}
	bad := snap
	bad.Format = 2
	if err := New(facLed, now).Restore(bad, now); !errors.Is(err, ErrSnapshot) {
		t.Fatalf("Restore of format 2: %v", err)
	}
}

// Version moves with what a snapshot holds and stays put on idle ticks.
func TestVersionMovesOnChangesOnly(t *testing.T) {
	s := New(peer, t0)
	v := s.Version()
	s.Join("a", group.Member, t0)
	if s.Version() == v {
		t.Fatal("a join did not move the version")
	}
	v = s.Version()
	s.Talking(1, true, t0.Add(sec))
	s.Talking(1, false, t0.Add(sec+time.Millisecond))
	for i := range 50 {
		s.Tick(t0.Add(2*sec + time.Duration(i)*20*time.Millisecond))
	}
	if s.Version() != v {
		t.Fatal("idle ticks and talking moved the version")
	}
	s.Act(ActLock, 0, t0.Add(3*sec))
	if s.Version() == v {
		t.Fatal("the lock did not move the version")
	}
	if a := testing.AllocsPerRun(100, func() { s.Tick(t0.Add(4 * sec)); _ = s.Version() }); a != 0 {
		t.Fatalf("an idle tick allocates %v", a)
	}
}

func TestDecodeSnapshotRefuses(t *testing.T) {
	good := `{"format":1,"version":3,"start":"2025-01-07T19:00:00Z","started":true,"next_seat":3,` +
		`"locked":false,"lecture":false,"share_timer":false,"lobby":false,"opened":false,` +
		`"seats":[{"seat":1,"identity":"abc","role":0,"placement":0}],` +
		`"memos":[{"seat":2,"identity":"def","role":1,"placement":0,"until":"2025-01-07T19:02:00Z"}]}`
	if _, err := DecodeSnapshot([]byte(good)); err != nil {
		t.Fatalf("good snapshot refused: %v", err)
	}
	rows := []struct{ name, in string }{
		{"empty", ``},
		{"not json", `garbage`},
		{"array", `[]`},
		{"trailing", good + `{}`},
		{"unknown field", strings.Replace(good, `"version":3`, `"version":3,"x":1`, 1)},
		{"format", strings.Replace(good, `"format":1`, `"format":9`, 1)},
		{"no start", strings.Replace(good, `"start":"2025-01-07T19:00:00Z",`, ``, 1)},
		{"next seat 0", strings.Replace(good, `"next_seat":3`, `"next_seat":0`, 1)},
		{"seat beyond next", strings.Replace(good, `"next_seat":3`, `"next_seat":2`, 1)},
		{"seat twice", strings.Replace(good, `"seat":2`, `"seat":1`, 1)},
		{"identity twice", strings.Replace(good, `"identity":"def"`, `"identity":"abc"`, 1)},
		{"role", strings.Replace(good, `"role":0`, `"role":7`, 1)},
		{"placement", strings.Replace(good, `"placement":0}]`, `"placement":-1}]`, 1)},
		{"memo without expiry", strings.Replace(good, `,"until":"2025-01-07T19:02:00Z"`, ``, 1)},
		{"seat with expiry", strings.Replace(good, `"placement":0}]`, `"placement":0,"until":"2025-01-07T19:02:00Z"}]`, 1)},
		{"identity with a space", strings.Replace(good, `"identity":"abc"`, `"identity":"a c"`, 1)},
		{"grace not a time", strings.Replace(good, `"opened":false`, `"opened":false,"grace_at":-1`, 1)},
		{"share time without floor", strings.Replace(good, `"placement":0}]`, `"placement":0,"chime_at":"2025-01-07T19:02:00Z"}]`, 1)},
		{"removed empty", strings.Replace(good, `"opened":false`, `"opened":false,"removed":[""]`, 1)},
	}
	for _, row := range rows {
		if _, err := DecodeSnapshot([]byte(row.in)); !errors.Is(err, ErrSnapshot) {
			t.Errorf("%s: %v, want ErrSnapshot", row.name, err)
		}
	}
}

// FuzzDecodeSnapshot: whatever Redis hands back, decoding refuses it
// cleanly or gives a snapshot that restores, and encodes to what decodes
// the same.
func FuzzDecodeSnapshot(f *testing.F) {
	s, now := busySession(f)
	snap := s.Snapshot(now)
	snap.Start = t0
	b, err := snap.Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	odd := snap
	odd.Seats = slices.Clone(snap.Seats)
	odd.Seats[1].Role = group.Facilitator // a facilitator with the floor and no hand
	odd.Seats[2].Placement = Waiting      // a waiting member with a hand
	if b, err = odd.Encode(); err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"format":1}`))
	f.Add([]byte(`{"format":1,"start":"2025-01-07T19:00:00Z","next_seat":1,"seats":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		snap, err := DecodeSnapshot(b)
		if err != nil {
			if !errors.Is(err, ErrSnapshot) {
				t.Fatalf("error not ErrSnapshot: %v", err)
			}
			return
		}
		s := New(facLed, t0)
		if err := s.Restore(snap, t0); err != nil {
			t.Fatalf("decoded snapshot does not restore: %v", err)
		}
		// Its callers come back and the session runs on, keeping the
		// rules' invariants.
		for i, st := range append(slices.Clone(snap.Seats), snap.Memos...) {
			s.Join(st.Identity, group.Member, t0.Add(time.Duration(i)*time.Millisecond))
			checkInvariants(t, s, "rejoin")
		}
		for _, seat := range []int{1, 2, 3} {
			for _, k := range []byte("*8*9") {
				s.Key(seat, k, t0.Add(sec))
			}
		}
		s.Tick(t0.Add(10 * mn))
		checkInvariants(t, s, "after ten minutes")
		again, err := snap.Encode()
		if err != nil {
			t.Fatalf("decoded snapshot does not encode: %v", err)
		}
		if _, err := DecodeSnapshot(again); err != nil {
			t.Fatalf("re-encoded snapshot does not decode: %v", err)
		}
	})
}

// A second failover while only some callers are back keeps the hand
// order: the snapshot of a half-rejoined session encodes, and restores to
// the same queue.
func TestRestoreTwice(t *testing.T) {
	old, now := busySession(t)
	snap := old.Snapshot(now)
	snap.Start = t0
	s := New(facLed, now)
	if err := s.Restore(snap, now); err != nil {
		t.Fatal(err)
	}
	s.Join("s4", group.Member, now.Add(sec))
	s.Join("s9", group.Facilitator, now.Add(2*sec)) // new, seat 8
	for _, k := range []byte("*9") {
		s.Key(8, k, now.Add(3*sec)) // a facilitator's *9 does nothing
	}
	snap2 := s.Snapshot(now.Add(4 * sec))
	snap2.Start = t0
	b, err := snap2.Encode()
	if err != nil {
		t.Fatalf("snapshot of a half-rejoined session: %v", err)
	}
	if snap2, err = DecodeSnapshot(b); err != nil {
		t.Fatal(err)
	}
	s2 := New(facLed, now.Add(5*sec))
	if err := s2.Restore(snap2, now.Add(5*sec)); err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"s4", "s9", "s3"} {
		if res, _ := s2.Join(id, group.Member, now.Add(time.Duration(6+i)*sec)); !res.Restored {
			t.Fatalf("%s not restored: %+v", id, res)
		}
	}
	var effs []Effect
	for _, k := range []byte("*8") {
		effs = append(effs, s2.Key(8, k, now.Add(10*sec))...)
	}
	if want := room(0, pr.Caller, "3", pr.YouHaveTheFloor); !slices.ContainsFunc(effs, func(e Effect) bool { return sameEffects([]Effect{e}, []Effect{want}) }) {
		t.Fatalf("*8 after two restores: %v, want %v", effs, want)
	}
}

// A restored session does not open again: no opening reading, no "first
// one here" for the first caller back.
func TestRestoreDoesNotOpenAgain(t *testing.T) {
	cfg := peer
	cfg.Readings[2], cfg.OpeningReading = true, 2
	old := New(cfg, t0)
	if _, effs := old.Join("a", group.Member, t0); !slices.ContainsFunc(effs, func(e Effect) bool { return e.Kind == Reading }) {
		t.Fatalf("the opening reading did not start: %v", effs)
	}
	snap := old.Snapshot(t0.Add(sec))
	snap.Start = t0
	s := New(cfg, t0.Add(5*sec))
	if err := s.Restore(snap, t0.Add(5*sec)); err != nil {
		t.Fatal(err)
	}
	res, effs := s.Join("a", group.Member, t0.Add(6*sec))
	if !res.Restored || slices.ContainsFunc(effs, func(e Effect) bool {
		return e.Kind == Reading || (e.Kind == Say && slices.Contains(e.Phrase, pr.FirstHere))
	}) {
		t.Fatalf("restored session opened again: %+v %v", res, effs)
	}
	if _, effs := s.Join("b", group.Member, t0.Add(7*sec)); slices.ContainsFunc(effs, func(e Effect) bool { return e.Kind == Reading }) {
		t.Fatalf("a new caller started the opening reading: %v", effs)
	}
}
