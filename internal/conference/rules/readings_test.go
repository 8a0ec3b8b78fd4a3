package rules

import (
	"slices"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/group"
	pr "github.com/groupbridge/groupbridge/media/prompt"
)

// withReadings is cfg with readings 1 and 2, opening with open (0: none).
func withReadings(cfg Config, open int) Config {
	cfg.Readings[1], cfg.Readings[2] = true, true
	cfg.OpeningReading = open
	return cfg
}

func readingE(key, after int) Effect { return Effect{Kind: Reading, Key: key, Seat: after} }

func playing(key int) ev {
	return state(func(s *Session) string {
		if s.Readings().Playing() != key {
			return "reading " + num(s.Readings().Playing()) + " plays, want " + num(key)
		}
		return ""
	})
}

// ended is the engine telling the session its reading played to the end.
var ended = state(func(s *Session) string { s.Readings().Ended(); return "" })

func TestKeypadReadings(t *testing.T) {
	rd := withReadings(peer, 0)
	runAll(t, []scenario{
		{"**K by a facilitator plays reading K", rd, script(
			seats("FM"),
			keys(10*sec, 1, "**1", readingE(1, 0)),
			playing(1),
		)},
		{"a new reading replaces the one that plays", rd, script(
			seats("FM"),
			keys(10*sec, 1, "**1", readingE(1, 0)),
			keys(11*sec, 1, "**2", readingE(2, 0)),
			playing(2),
		)},
		{"**0 stops the reading, then is *0", rd, script(
			seats("FM"),
			keys(10*sec, 1, "**1", readingE(1, 0)),
			keys(11*sec, 1, "**0", Effect{Kind: StopReading}),
			playing(0),
			keys(12*sec, 1, "**0", sayI(1, pr.HelpFacilitator, pr.HelpReadings)),
		)},
		{"**0 after the reading ended is *0", rd, script(
			seats("FM"),
			keys(10*sec, 1, "**1", readingE(1, 0)),
			ended,
			keys(11*sec, 1, "**0", sayI(1, pr.HelpFacilitator, pr.HelpReadings)),
		)},
		{"**0 with no reading is *0", rd, script(
			seats("FM"),
			keys(10*sec, 1, "**0", sayI(1, pr.HelpFacilitator, pr.HelpReadings)),
		)},
		{"**K without reading K is *K", rd, script(
			seats("FM"),
			keys(10*sec, 1, "**6", sayI(1, pr.Muted)),
			keys(11*sec, 1, "**3", sayI(1, pr.Caller, "2", pr.ConfirmPress1)),
			keys(12*sec, 1, "2", sayI(1, pr.Cancelled)),
			playing(0),
		)},
		{"a group without readings: **1 is *1", peer, script(
			seats("FM"),
			keys(10*sec, 1, "**1"),
			keys(11*sec, 1, "2#", sayI(1, pr.Caller, "2", pr.SeatMenu)),
		)},
		{"members' **K is *K", rd, script(
			seats("FM"),
			keys(10*sec, 2, "**1", sayI(2, pr.FacilitatorOnly)),
			keys(11*sec, 2, "**0", sayI(2, pr.HelpMember)),
			keys(12*sec, 2, "**6", sayI(2, pr.Muted)),
			playing(0),
		)},
		{"members' **0 does not stop a reading", rd, script(
			seats("FM"),
			keys(10*sec, 1, "**1", readingE(1, 0)),
			keys(11*sec, 2, "**0", sayI(2, pr.HelpMember)),
			playing(1),
		)},
		{"more stars are still a double star", rd, script(
			seats("FM"),
			keys(10*sec, 1, "***1", readingE(1, 0)),
		)},
		{"a double star that times out is dropped silently", rd, script(
			seats("FM"),
			keys(10*sec, 1, "**"),
			tick(13*sec),
			keys(14*sec, 1, "1"),
			playing(0),
		)},
		{"the second star restarts the star's timeout", rd, script(
			seats("FM"),
			keys(10*sec, 1, "*"),
			keys(12*sec, 1, "*"),
			keys(14*sec, 1, "1", readingE(1, 0)),
		)},
	})
}

func TestOpeningReading(t *testing.T) {
	runAll(t, []scenario{
		{"peer-led: the first caller opens with it, after their greeting", withReadings(peer, 2), script(
			join(0, "a", group.Member, JoinResult{Seat: 1}, greet(1, pr.FirstHere), readingE(2, 1)),
			playing(2),
			ended,
			pre(join(sec, "b", group.Member, JoinResult{Seat: 2})),
			playing(0),
		)},
		{"peer-led: a facilitator first opens it too", withReadings(peer, 1), script(
			pre(join(0, "a", group.Facilitator, JoinResult{Seat: 1})),
			playing(1),
		)},
		{"peer-led without opening_reading", withReadings(peer, 0), script(
			join(0, "a", group.Member, JoinResult{Seat: 1}, greet(1, pr.FirstHere)),
		)},
		{"facilitator-led: the first facilitator opens it, once", withReadings(facLed, 1), script(
			pre(join(0, "a", group.Member, JoinResult{Seat: 1})),
			playing(0),
			pre(join(sec, "b", group.Facilitator, JoinResult{Seat: 2})),
			playing(1),
			ended,
			pre(leave(2*sec, 2), join(3*sec, "c", group.Facilitator, JoinResult{Seat: 3})),
			playing(0),
		)},
	})
}

func TestConfigForReadings(t *testing.T) {
	c := ConfigFor(group.Group{Readings: []group.Reading{{Key: 3, File: "a.wav"}, {Key: 9, File: "b.wav"}}, OpeningReading: 9})
	if !c.Readings[3] || !c.Readings[9] || c.Readings[1] || c.OpeningReading != 9 {
		t.Fatalf("ConfigFor = %+v", c)
	}
	if c := ConfigFor(group.Group{OpeningReading: 2}); c.OpeningReading != 0 {
		t.Fatalf("opening without its reading: %d", c.OpeningReading)
	}
}

// Remembers tells the engine who would rejoin (and so skips the greeting):
// a caller who dropped, within the window, not removed, not anonymous.
func TestRemembers(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	s := New(peer, t0)
	for _, id := range []string{"a", "b", "c", ""} {
		if res, _ := s.Join(id, group.Member, t0); res.Refused != RefuseNone {
			t.Fatal(res.Refused)
		}
	}
	if s.Door().Remembers("a", t0) {
		t.Fatal("a caller present is remembered")
	}
	s.Leave(1, t0.Add(sec))
	s.Leave(4, t0.Add(sec))
	s.Act(ActRemove, 2, t0.Add(sec))
	for _, c := range []struct {
		id   string
		at   time.Duration
		want bool
	}{
		{"a", 2 * sec, true},
		{"a", sec + DefaultRejoinWindow, false},
		{"b", 2 * sec, false}, // removed
		{"", 2 * sec, false},
		{"nobody", 2 * sec, false},
	} {
		if got := s.Door().Remembers(c.id, t0.Add(c.at)); got != c.want {
			t.Errorf("Remembers(%q) at +%s = %v, want %v", c.id, c.at, got, c.want)
		}
	}
}

// A group that meets opens with its reading at the scheduled start, not
// when its first caller comes early; a session that begins after the start
// opens at its first Hours.Tick; a facilitator-led one waits for its
// facilitator as well.
func TestOpeningReadingAtTheScheduledStart(t *testing.T) {
	t0 := time.Date(2026, 12, 8, 19, 0, 0, 0, time.UTC)
	m := Meeting{Start: t0, End: t0.Add(90 * mn), Close: t0.Add(105 * mn)}
	tests := []struct {
		name  string
		cfg   Config
		from  time.Duration // session set up and first caller joins, from t0
		joins []group.Role
		tick  time.Duration // Hours.Tick at
		want  []string      // effect kinds of Reading and MeetingStarted only
		then  []string      // when a facilitator joins after the tick
	}{
		{name: "peer-led, first caller early", cfg: withReadings(peer, 1), from: -10 * mn,
			joins: []group.Role{group.Member}, tick: 0, want: []string{"MeetingStarted(0)", "Reading(1 1)"}},
		{name: "peer-led, first caller late", cfg: withReadings(peer, 1), from: 20 * mn,
			joins: []group.Role{group.Member, group.Member}, tick: 20*mn + sec, want: []string{"MeetingStarted(0)", "Reading(2 1)"}},
		{name: "facilitator-led, only members at the start", cfg: withReadings(facLed, 1), from: -5 * mn,
			joins: []group.Role{group.Member}, tick: 0, want: []string{"MeetingStarted(0)"}, then: []string{"Reading(2 1)"}},
		{name: "facilitator-led, facilitator early", cfg: withReadings(facLed, 1), from: -5 * mn,
			joins: []group.Role{group.Member, group.Facilitator}, tick: 0, want: []string{"MeetingStarted(0)", "Reading(2 1)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			at := t0.Add(tc.from)
			s := New(tc.cfg, at)
			s.Hours().Set(m, at)
			var got []string
			keep := func(effects []Effect) {
				for _, e := range effects {
					if e.Kind == Reading || e.Kind == MeetingStarted {
						got = append(got, e.String())
					}
				}
			}
			for i, r := range tc.joins {
				_, effects := s.Join(num(i+1), r, at)
				keep(effects)
			}
			if len(got) != 0 {
				t.Fatalf("before the start: %q", got)
			}
			keep(s.Hours().Tick(t0.Add(tc.tick)))
			if !slices.Equal(got, tc.want) {
				t.Fatalf("at the start: %q, want %q", got, tc.want)
			}
			got = nil
			_, effects := s.Join("late facilitator", group.Facilitator, t0.Add(tc.tick+mn))
			keep(effects)
			if !slices.Equal(got, tc.then) {
				t.Fatalf("a facilitator joining after the start: %q, want %q", got, tc.then)
			}
		})
	}
}
