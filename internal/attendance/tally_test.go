package attendance

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// step is one thing the room tells a tally, at minute at after the start.
type step struct {
	at     int // minutes
	op     string
	seat   int
	id     string
	fac    bool
	reason Reason
}

func join(at, seat int, id string, fac bool) step {
	return step{at: at, op: "join", seat: seat, id: id, fac: fac}
}
func leave(at, seat int) step           { return step{at: at, op: "leave", seat: seat} }
func role(at, seat int, fac bool) step  { return step{at: at, op: "role", seat: seat, fac: fac} }
func refuse(at int, reason Reason) step { return step{at: at, op: "refuse", reason: reason} }

const m = time.Minute

func TestTally(t *testing.T) {
	start := time.Date(2026, 3, 1, 18, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		steps []step
		end   int // minutes
		want  Session
	}{
		{"empty session", nil, 5, Session{}},
		{"two callers, one facilitator", []step{
			join(0, 1, "a", true), join(1, 2, "b", false), leave(31, 2), leave(60, 1),
		}, 60, Session{Peak: 2, Distinct: 2, Joins: 2, FacilitatorTime: 60 * m, MemberTime: 30 * m,
			MedianStay: 45 * m, LongestStay: 60 * m}},
		{"a rejoin adds up to one caller's stay", []step{
			join(0, 1, "a", false), join(0, 2, "b", false), join(0, 3, "c", false),
			leave(10, 1), join(12, 1, "a", false), leave(20, 2), leave(30, 3), leave(42, 1),
		}, 50, Session{Peak: 3, Distinct: 3, Joins: 4, MemberTime: 90 * m, MedianStay: 30 * m, LongestStay: 40 * m}},
		{"callers without identity count once per join", []step{
			join(0, 1, "", false), leave(10, 1), join(10, 2, "", false), leave(15, 2),
		}, 20, Session{Peak: 1, Distinct: 2, Joins: 2, MemberTime: 15 * m, MedianStay: 7*m + 30*time.Second, LongestStay: 10 * m}},
		{"passing the chair splits the time", []step{
			join(0, 1, "a", true), join(0, 2, "b", false), role(20, 1, false), role(20, 2, true),
			role(25, 2, true), // no change
		}, 40, Session{Peak: 2, Distinct: 2, Joins: 2, FacilitatorTime: 40 * m, MemberTime: 40 * m,
			MedianStay: 40 * m, LongestStay: 40 * m}},
		{"end closes the stays still open", []step{
			join(0, 1, "a", false), join(5, 2, "b", false), join(10, 3, "c", false),
		}, 30, Session{Peak: 3, Distinct: 3, Joins: 3, MemberTime: 75 * m, MedianStay: 25 * m, LongestStay: 30 * m}},
		{"peak counts those connected at once", []step{
			join(0, 1, "a", false), join(1, 2, "b", false), leave(2, 1), join(3, 3, "c", false),
			leave(4, 2), leave(4, 3), join(5, 4, "d", false),
		}, 6, Session{Peak: 2, Distinct: 4, Joins: 4, MemberTime: 2*m + 3*m + 1*m + 1*m,
			MedianStay: 1*m + 30*time.Second, LongestStay: 3 * m}},
		{"turned away by reason", []step{
			refuse(0, Full), refuse(1, Locked), refuse(2, Locked), refuse(3, Closed), refuse(4, Removed), refuse(5, Reason(9)),
		}, 10, Session{TurnedAway: [nReasons]int{Full: 1, Locked: 2, Closed: 1, Removed: 1}}},
		{"unknown seats are ignored", []step{
			leave(1, 7), role(2, 7, true), join(3, 1, "a", false), leave(4, 1), leave(5, 1),
		}, 6, Session{Peak: 1, Distinct: 1, Joins: 1, MemberTime: m, MedianStay: m, LongestStay: m}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := func(min int) time.Time { return start.Add(time.Duration(min) * m) }
			tl := NewTally("g", start)
			tl.Slot(at(0), at(60))
			for _, s := range tt.steps {
				switch s.op {
				case "join":
					tl.Join(s.seat, s.id, s.fac, at(s.at))
				case "leave":
					tl.Leave(s.seat, at(s.at))
				case "role":
					tl.Role(s.seat, s.fac, at(s.at))
				case "refuse":
					tl.TurnedAway(s.reason)
				}
			}
			got := tl.End(at(tt.end))
			if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(got.ID) {
				t.Errorf("ID %q, want 32 hex digits", got.ID)
			}
			want := tt.want
			want.ID, want.Group, want.Start, want.End = got.ID, "g", start, at(tt.end)
			want.SlotStart, want.SlotEnd = at(0), at(60)
			if got != want {
				t.Errorf("session\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// End drops the identities and ignores what comes after; every record
// gets its own ID.
func TestTallyEndForgets(t *testing.T) {
	start := time.Date(2026, 3, 1, 18, 0, 0, 0, time.UTC)
	tl := NewTally("g", start)
	tl.Join(1, "secret-identity", false, start)
	first := tl.End(start.Add(m))
	if tl.callers != nil || tl.open != nil || tl.stays != nil {
		t.Fatalf("tally keeps state after End: %+v", tl)
	}
	tl.Join(2, "x", false, start.Add(2*m))
	tl.TurnedAway(Full)
	tl.Role(1, true, start.Add(2*m))
	tl.Leave(1, start.Add(2*m))
	again := tl.End(start.Add(3 * m))
	if again.Joins != 1 || again.TurnedAway[Full] != 0 || again.MemberTime != m {
		t.Fatalf("counted after End: %+v", again)
	}
	if again.ID == first.ID {
		t.Fatalf("two records share ID %s", first.ID)
	}
	if strings.Contains(first.ID+first.Group, "secret") {
		t.Fatalf("identity in the record: %+v", first)
	}
}

// The room tells the tally of a role that did not change on every change
// of seats: that costs no allocation.
func TestTallyRoleAllocatesNothing(t *testing.T) {
	start := time.Date(2026, 3, 1, 18, 0, 0, 0, time.UTC)
	tl := NewTally("g", start)
	for seat := 1; seat <= 8; seat++ {
		tl.Join(seat, "", false, start)
	}
	fac := false
	if n := testing.AllocsPerRun(100, func() {
		fac = !fac
		tl.Role(3, fac, start.Add(m))
		tl.Role(4, false, start.Add(m))
	}); n != 0 {
		t.Fatalf("Role allocates %v times a run", n)
	}
}

// A resumed tally's record keeps the session's start and the ID the
// failed node's tally had, so the session is one record.
func TestResumeTallyKeepsTheRecord(t *testing.T) {
	start := time.Date(2026, 3, 1, 18, 0, 0, 0, time.UTC)
	first := NewTally("g", start)
	id := first.ID()
	if id != first.ID() {
		t.Fatal("ID changed")
	}
	again := ResumeTally("g", start, id)
	again.Join(1, "x", false, start.Add(m))
	rec := again.End(start.Add(2 * m))
	if rec.ID != id || !rec.Start.Equal(start) || rec.Joins != 1 {
		t.Fatalf("resumed record %+v, want ID %s and the start", rec, id)
	}
}
