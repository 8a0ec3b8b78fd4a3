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

// TestHoursAt: the window open at a moment, or the next one, with the
// margins around each meeting, over midnight and over both 2026 changes
// of offset in New York.
func TestHoursAt(t *testing.T) {
	ny := mustLoc(t, "America/New_York")
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, ny)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	hours := func(early, over time.Duration, meets ...string) *Hours {
		h, err := New("America/New_York", meets, early, over)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	circle := hours(15*time.Minute, 15*time.Minute, "Tue 19:00-20:30", "Thu 12:00-13:00")
	exact := hours(0, 0, "Tue 19:00-20:30")
	late := hours(10*time.Minute, 30*time.Minute, "Sat 23:00-01:00")
	spring := hours(15*time.Minute, 15*time.Minute, "Sun 01:00-03:30")
	fall := hours(15*time.Minute, 15*time.Minute, "Sun 00:30-01:30")
	tests := []struct {
		name        string
		h           *Hours
		now         string
		open        bool
		start, stop string // the window's Open and Close, New York wall clock
		length      time.Duration
	}{
		{"long before", circle, "2026-03-03 18:00", false, "2026-03-03 18:45", "2026-03-03 20:45", 2 * time.Hour},
		{"a minute before it opens", circle, "2026-03-03 18:44", false, "2026-03-03 18:45", "2026-03-03 20:45", 2 * time.Hour},
		{"opens early", circle, "2026-03-03 18:45", true, "2026-03-03 18:45", "2026-03-03 20:45", 2 * time.Hour},
		{"in the overrun", circle, "2026-03-03 20:44", true, "2026-03-03 18:45", "2026-03-03 20:45", 2 * time.Hour},
		{"closed: Thursday's next", circle, "2026-03-03 20:45", false, "2026-03-05 11:45", "2026-03-05 13:15", 90 * time.Minute},
		{"no margins: at the start", exact, "2026-03-03 19:00", true, "2026-03-03 19:00", "2026-03-03 20:30", 90 * time.Minute},
		{"no margins: at the end", exact, "2026-03-03 20:30", false, "2026-03-10 19:00", "2026-03-10 20:30", 90 * time.Minute},
		{"over midnight, in the overrun", late, "2026-03-15 01:29", true, "2026-03-14 22:50", "2026-03-15 01:30", 160 * time.Minute},
		{"over midnight, closed", late, "2026-03-15 01:30", false, "2026-03-21 22:50", "2026-03-22 01:30", 160 * time.Minute},
		// 02:00 becomes 03:00: the meeting lasts 1h30, its window 2h.
		{"spanning spring forward", spring, "2026-03-08 03:40", true, "2026-03-08 00:45", "2026-03-08 03:45", 2 * time.Hour},
		// 01:00-02:00 EDT, then 01:00-02:00 EST again: 01:30 is its first
		// occurrence, so the meeting ends before the clocks go back.
		{"spanning fall back: the first 01:30", fall, "2026-11-01 01:20", true, "2026-11-01 00:15", "2026-11-01 01:45", 90 * time.Minute},
	}
	for _, tt := range tests {
		w, open := tt.h.At(at(tt.now))
		const f = "2006-01-02 15:04"
		if open != tt.open {
			t.Errorf("%s: open = %v, want %v", tt.name, open, tt.open)
		}
		if s, e := w.Open.In(ny).Format(f), w.Close.In(ny).Format(f); s != tt.start || e != tt.stop {
			t.Errorf("%s: window %s to %s, want %s to %s", tt.name, s, e, tt.start, tt.stop)
		}
		if l := w.Close.Sub(w.Open); l != tt.length {
			t.Errorf("%s: window lasts %v, want %v", tt.name, l, tt.length)
		}
		if !w.Start.Equal(w.Open.Add(tt.h.OpenEarly)) || !w.Close.Equal(w.End.Add(tt.h.Overrun)) {
			t.Errorf("%s: margins: %+v", tt.name, w)
		}
	}
}

func TestNewHours(t *testing.T) {
	if h, err := New("", nil, time.Minute, time.Minute); h != nil || err != nil {
		t.Errorf("no meets: %v, %v; want nil, nil (always open)", h, err)
	}
	for _, tt := range []struct {
		zone  string
		meets []string
		want  string
	}{
		{"", []string{"Tue 19:00-20:00"}, "timezone: "},
		{"Local", []string{"Tue 19:00-20:00"}, "timezone: "},
		{"Nowhere/Town", []string{"Tue 19:00-20:00"}, "timezone: "},
		{"UTC", []string{"Tue 19:00-20:00", "Wed"}, "meets[1]: "},
	} {
		if _, err := New(tt.zone, tt.meets, 0, 0); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("New(%q, %q): %v, want an error starting %q", tt.zone, tt.meets, err, tt.want)
		}
	}
	h, err := New("UTC", []string{"Mon 10:00-11:00"}, -time.Minute, -time.Minute)
	if err != nil || h.OpenEarly != 0 || h.Overrun != 0 {
		t.Errorf("negative margins: %+v, %v; want 0", h, err)
	}
}

func TestOverlap(t *testing.T) {
	slot := func(s string) Slot {
		sl, err := ParseSlot(s)
		if err != nil {
			t.Fatal(err)
		}
		return sl
	}
	m := time.Minute
	for _, tt := range []struct {
		a, b          string
		early, overrn time.Duration
		want          bool
	}{
		{"Tue 19:00-20:00", "Tue 20:00-21:00", 0, 0, false},
		{"Tue 19:00-20:00", "Tue 20:00-21:00", 0, m, true},
		{"Tue 19:00-20:00", "Tue 20:30-21:00", 15 * m, 15 * m, false},
		{"Tue 19:00-20:00", "Tue 20:29-21:00", 15 * m, 15 * m, true},
		{"Tue 19:00-20:00", "Tue 19:15-19:30", 0, 0, true}, // inside
		{"Tue 23:00-01:00", "Wed 00:30-02:00", 0, 0, true}, // over midnight
		{"Sat 23:00-01:00", "Sun 00:30-02:00", 0, 0, true}, // over the week's end
		{"Sun 00:30-02:00", "Sat 23:00-01:00", 0, 0, true},
		{"Sat 22:00-23:00", "Sun 00:00-01:00", 30 * m, 30 * m, false},
		{"Mon 10:00-11:00", "Tue 10:00-11:00", 2 * time.Hour, 2 * time.Hour, false},
	} {
		if got := Overlap(slot(tt.a), slot(tt.b), tt.early, tt.overrn); got != tt.want {
			t.Errorf("Overlap(%s, %s, %v, %v) = %v, want %v", tt.a, tt.b, tt.early, tt.overrn, got, tt.want)
		}
	}
}
