package schedule

import (
	"strings"
	"testing"
	"time"
)

func TestParseSlot(t *testing.T) {
	h, m := time.Hour, time.Minute
	tests := []struct {
		in      string
		want    Slot
		wantErr string
	}{
		{"Tue 19:00-20:30", Slot{time.Tuesday, 19 * h, 20*h + 30*m}, ""},
		{"thu 12:00-13:00", Slot{time.Thursday, 12 * h, 13 * h}, ""},
		{"  SAT   23:00-01:00 ", Slot{time.Saturday, 23 * h, 1 * h}, ""},
		{"Sun 00:00-23:59", Slot{time.Sunday, 0, 23*h + 59*m}, ""},
		{"Tuesday 19:00-20:30", Slot{}, "not a weekday"},
		{"Tue 19:00", Slot{}, "START-END"},
		{"Tue", Slot{}, "a weekday and hours"},
		{"Tue 19:00-20:30 x", Slot{}, "a weekday and hours"},
		{"Tue 7:00-8:00", Slot{}, "not HH:MM"},
		{"Tue 24:00-01:00", Slot{}, "not a time of day"},
		{"Tue 19:60-20:00", Slot{}, "not a time of day"},
		{"Tue 19:00-19:00", Slot{}, "ends when it starts"},
	}
	for _, tt := range tests {
		got, err := ParseSlot(tt.in)
		switch {
		case tt.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseSlot(%q) error %v, want one saying %q", tt.in, err, tt.wantErr)
			}
		case err != nil:
			t.Errorf("ParseSlot(%q): %v", tt.in, err)
		case got != tt.want:
			t.Errorf("ParseSlot(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	l, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestAt: wall-clock times in New York, including the 2026 changes
// (March 8, 02:00 -> 03:00; November 1, 02:00 -> 01:00).
func TestAt(t *testing.T) {
	ny := mustLoc(t, "America/New_York")
	tests := []struct {
		name  string
		m     time.Month
		d     int
		since time.Duration
		want  string // UTC
	}{
		{"ordinary evening", time.March, 3, 19 * time.Hour, "2026-03-04T00:00:00Z"},
		{"skipped: first valid minute after", time.March, 8, 2*time.Hour + 30*time.Minute, "2026-03-08T07:00:00Z"},
		{"just before the gap", time.March, 8, time.Hour + 59*time.Minute, "2026-03-08T06:59:00Z"},
		{"just after the gap", time.March, 8, 3 * time.Hour, "2026-03-08T07:00:00Z"},
		{"twice: the first (EDT)", time.November, 1, time.Hour + 30*time.Minute, "2026-11-01T05:30:00Z"},
		{"after the repeat", time.November, 1, 2 * time.Hour, "2026-11-01T07:00:00Z"},
	}
	for _, tt := range tests {
		got := At(ny, 2026, tt.m, tt.d, tt.since).UTC().Format(time.RFC3339)
		if got != tt.want {
			t.Errorf("%s: At = %s, want %s", tt.name, got, tt.want)
		}
	}
}

// TestNext: the meeting in progress or the next, across midnight, a week's
// end and a change of offset, on a clock that is only ever passed in.
func TestNext(t *testing.T) {
	ny := mustLoc(t, "America/New_York")
	slot := func(s string) Slot {
		sl, err := ParseSlot(s)
		if err != nil {
			t.Fatal(err)
		}
		return sl
	}
	circle := Week{Loc: ny, Slots: []Slot{slot("Tue 19:00-20:30"), slot("Thu 12:00-13:00")}}
	late := Week{Loc: ny, Slots: []Slot{slot("Sat 23:00-01:00")}}
	overDST := Week{Loc: ny, Slots: []Slot{slot("Sun 01:00-04:00")}}
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, ny)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name       string
		w          Week
		now        time.Time
		start, end string // New York wall clock
		length     time.Duration
	}{
		{"before Tuesday's", circle, at("2026-03-03 08:00"), "2026-03-03 19:00", "2026-03-03 20:30", 90 * time.Minute},
		{"during Tuesday's", circle, at("2026-03-03 20:29"), "2026-03-03 19:00", "2026-03-03 20:30", 90 * time.Minute},
		{"at its end: Thursday's next", circle, at("2026-03-03 20:30"), "2026-03-05 12:00", "2026-03-05 13:00", time.Hour},
		{"after Thursday's: next week", circle, at("2026-03-05 13:00"), "2026-03-10 19:00", "2026-03-10 20:30", 90 * time.Minute},
		{"over midnight, before", late, at("2026-03-14 22:00"), "2026-03-14 23:00", "2026-03-15 01:00", 2 * time.Hour},
		{"over midnight, after midnight", late, at("2026-03-15 00:30"), "2026-03-14 23:00", "2026-03-15 01:00", 2 * time.Hour},
		{"spanning spring forward: 2 h long", overDST, at("2026-03-07 12:00"), "2026-03-08 01:00", "2026-03-08 04:00", 2 * time.Hour},
		{"spanning fall back: 4 h long", overDST, at("2026-10-31 12:00"), "2026-11-01 01:00", "2026-11-01 04:00", 4 * time.Hour},
	}
	for _, tt := range tests {
		mt, err := tt.w.Next(tt.now)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		const f = "2006-01-02 15:04"
		if s, e := mt.Start.In(ny).Format(f), mt.End.In(ny).Format(f); s != tt.start || e != tt.end {
			t.Errorf("%s: Next = %s to %s, want %s to %s", tt.name, s, e, tt.start, tt.end)
		}
		if l := mt.End.Sub(mt.Start); l != tt.length {
			t.Errorf("%s: lasts %v, want %v", tt.name, l, tt.length)
		}
	}
	if _, err := (Week{Loc: ny}).Next(at("2026-03-03 08:00")); err != ErrNoSlots {
		t.Errorf("a week without slots: %v, want ErrNoSlots", err)
	}
}
