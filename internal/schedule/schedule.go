// Package schedule owns a group's weekly meeting hours: parsing slots such
// as "Tue 19:00-20:30" and finding, in the group's IANA time zone, the
// meeting in progress or the next one, with daylight-saving changes done
// the way a calendar does them. It is pure (time is passed in) and knows
// nothing of calls, rooms or prompts.
//
// Local times that do not exist (spring forward) start at the first valid
// minute after them; local times that occur twice (fall back) are their
// first occurrence. The zone database is embedded (time/tzdata), so a
// system without zoneinfo files still knows every zone.
package schedule

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // zones on systems without /usr/share/zoneinfo
)

// Slot is one weekly meeting in local wall-clock time: it starts on Day
// at Start after local midnight and ends at End after the same midnight;
// an End not after Start ends on the next day (a meeting over midnight).
type Slot struct {
	Day        time.Weekday
	Start, End time.Duration
}

var days = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// ParseSlot reads "Tue 19:00-20:30": a three-letter weekday (any case),
// then start and end as 24-hour HH:MM. End equal to start is refused; an
// end before the start means the meeting runs past midnight.
func ParseSlot(s string) (Slot, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return Slot{}, fmt.Errorf("%q: want a weekday and hours, e.g. \"Tue 19:00-20:30\"", s)
	}
	day, ok := days[strings.ToLower(f[0])]
	if !ok {
		return Slot{}, fmt.Errorf("%q: %q is not a weekday (Mon, Tue, Wed, Thu, Fri, Sat, Sun)", s, f[0])
	}
	from, to, ok := strings.Cut(f[1], "-")
	if !ok {
		return Slot{}, fmt.Errorf("%q: hours must be START-END, e.g. 19:00-20:30", s)
	}
	start, err := clock(from)
	if err != nil {
		return Slot{}, fmt.Errorf("%q: start: %w", s, err)
	}
	end, err := clock(to)
	if err != nil {
		return Slot{}, fmt.Errorf("%q: end: %w", s, err)
	}
	if start == end {
		return Slot{}, fmt.Errorf("%q: the meeting ends when it starts", s)
	}
	return Slot{Day: day, Start: start, End: end}, nil
}

// clock reads a 24-hour HH:MM as a time after midnight.
func clock(s string) (time.Duration, error) {
	h, m, ok := strings.Cut(s, ":")
	if !ok || len(h) != 2 || len(m) != 2 {
		return 0, fmt.Errorf("%q is not HH:MM", s)
	}
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if err1 != nil || err2 != nil || hh < 0 || hh > 23 || mm < 0 || mm > 59 {
		return 0, fmt.Errorf("%q is not a time of day (00:00-23:59)", s)
	}
	return time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute, nil
}

// Meeting is one occurrence of a slot, as instants.
type Meeting struct {
	Start, End time.Time
}

// Week is a group's meeting hours in its zone.
type Week struct {
	Loc   *time.Location
	Slots []Slot
}

// ErrNoSlots is returned by Next for a week without meetings (a group
// that is always open has no Week).
var ErrNoSlots = errors.New("schedule: no meeting hours")

// Next returns the meeting in progress at t (Start <= t < End) or else the
// next one to start; of overlapping meetings, the one that started first.
func (w Week) Next(t time.Time) (Meeting, error) {
	if len(w.Slots) == 0 {
		return Meeting{}, ErrNoSlots
	}
	local := t.In(w.Loc)
	var best Meeting
	// From the day before (a meeting over midnight may still be on) to a
	// week ahead, every slot's occurrence on its weekday.
	for i := -1; i <= 7; i++ {
		y, m, d := local.Date()
		day := time.Date(y, m, d+i, 12, 0, 0, 0, time.UTC) // a calendar date, no zone
		for _, s := range w.Slots {
			if day.Weekday() != s.Day {
				continue
			}
			mt := w.occurrence(day, s)
			if !t.Before(mt.End) {
				continue
			}
			if best.Start.IsZero() || mt.Start.Before(best.Start) {
				best = mt
			}
		}
	}
	return best, nil
}

// occurrence is slot s on the calendar date of day.
func (w Week) occurrence(day time.Time, s Slot) Meeting {
	y, m, d := day.Date()
	endDay := d
	if s.End <= s.Start {
		endDay++
	}
	return Meeting{
		Start: At(w.Loc, y, m, d, s.Start),
		End:   At(w.Loc, y, m, endDay, s.End),
	}
}

// At is the instant of wall-clock time since midnight on a date in loc:
// a time skipped by a change of offset (spring forward) gives the first
// valid minute after it, a time that occurs twice (fall back) its first
// occurrence. Go's time.Date leaves both cases unspecified.
func At(loc *time.Location, y int, m time.Month, d int, since time.Duration) time.Time {
	wall := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Add(since) // the wall clock as if UTC
	var first time.Time
	// The offsets in force within a day either side are the candidates.
	for _, probe := range []time.Duration{-26 * time.Hour, 0, 26 * time.Hour} {
		_, off := wall.Add(probe).In(loc).Zone()
		cand := wall.Add(-time.Duration(off) * time.Second)
		if sameWall(cand.In(loc), wall) && (first.IsZero() || cand.Before(first)) {
			first = cand
		}
	}
	if !first.IsZero() {
		return first
	}
	// Skipped: from the earliest reading on, minute by minute (whole-minute
	// transitions; a gap is at most a few hours) to the first wall clock
	// at or after the one asked for.
	_, off := wall.Add(26 * time.Hour).In(loc).Zone()
	t := wall.Add(-time.Duration(off) * time.Second).Truncate(time.Minute)
	for i := 0; i < 24*60; i++ {
		lw := t.In(loc)
		if !asUTC(lw).Before(wall) {
			return t
		}
		t = t.Add(time.Minute)
	}
	return wall // not reached for any real zone
}

// asUTC is t's wall clock read as if in UTC.
func asUTC(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

// sameWall reports whether t's wall clock is wall (given as if in UTC).
func sameWall(t, wall time.Time) bool { return asUTC(t).Equal(wall) }

// zones caches loaded locations: LoadLocation reads the zone database
// each time, and a group's zone is looked up on every call to it.
var zones sync.Map // name -> *time.Location

// LoadZone returns the IANA time zone name ("America/New_York", "UTC").
// "" and "Local" are refused: a group's hours must not depend on the
// machine's own setting.
func LoadZone(name string) (*time.Location, error) {
	if v, ok := zones.Load(name); ok {
		return v.(*time.Location), nil
	}
	if name == "" || name == "Local" {
		return nil, fmt.Errorf("%q is not an IANA time zone (like America/New_York or UTC)", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("%q is not an IANA time zone (like America/New_York or UTC)", name)
	}
	zones.Store(name, loc)
	return loc, nil
}

// Hours is a group's meeting hours with the margins callers get around
// each meeting.
type Hours struct {
	Week Week
	// OpenEarly: callers may join this long before a meeting starts.
	OpenEarly time.Duration
	// Overrun: a session ends this long after the scheduled end.
	Overrun time.Duration
}

// New reads a group's hours: its zone, its slots ("Tue 19:00-20:30") and
// the margins. It returns nil and no error when meets is empty: a group
// without hours is always open. Errors name the slot's index as
// "meets[j]" or the zone as "timezone".
func New(zone string, meets []string, openEarly, overrun time.Duration) (*Hours, error) {
	if len(meets) == 0 {
		return nil, nil
	}
	loc, err := LoadZone(zone)
	if err != nil {
		return nil, fmt.Errorf("timezone: %w", err)
	}
	h := &Hours{Week: Week{Loc: loc}, OpenEarly: max(openEarly, 0), Overrun: max(overrun, 0)}
	for j, m := range meets {
		s, err := ParseSlot(m)
		if err != nil {
			return nil, fmt.Errorf("meets[%d]: %w", j, err)
		}
		h.Week.Slots = append(h.Week.Slots, s)
	}
	return h, nil
}

// Window is one meeting with its margins: callers may join from Open
// (Start - OpenEarly) until Close (End + Overrun), when the session ends.
type Window struct {
	Meeting
	Open, Close time.Time
}

// At returns the window open at t (Open <= t < Close) and true, or the
// next window to open and false. Of overlapping windows it is the one
// whose meeting starts first.
func (h *Hours) At(t time.Time) (Window, bool) {
	// The meeting in progress at t-Overrun, or the next to start: the
	// first whose window has not closed by t.
	m, err := h.Week.Next(t.Add(-h.Overrun))
	if err != nil {
		return Window{}, false
	}
	w := Window{Meeting: m, Open: m.Start.Add(-h.OpenEarly), Close: m.End.Add(h.Overrun)}
	if !t.Before(w.Open) {
		return w, true
	}
	return w, false
}

// Overlap reports whether the windows of slots a and b, with the margins
// open early and overrun around each, overlap in any week, comparing
// local wall-clock times (the hour a change of offset adds or takes away
// is not counted).
func Overlap(a, b Slot, openEarly, overrun time.Duration) bool {
	const week = 7 * 24 * time.Hour
	span := func(s Slot) (lo, hi time.Duration) {
		start := time.Duration(s.Day)*24*time.Hour + s.Start
		length := s.End - s.Start
		if s.End <= s.Start {
			length += 24 * time.Hour
		}
		return start - openEarly, start + length + overrun
	}
	alo, ahi := span(a)
	blo, bhi := span(b)
	for _, k := range []time.Duration{-week, 0, week} {
		if alo < bhi+k && blo+k < ahi {
			return true
		}
	}
	return false
}
