package chart

import (
	"bytes"
	"encoding/xml"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/attendance"
)

func TestWeek(t *testing.T) {
	loc := time.FixedZone("bridge", -5*3600)
	rows := []struct{ in, want string }{
		{"2026-03-02T00:00:00-05:00", "2026-03-02"}, // a Monday
		{"2026-03-08T23:59:00-05:00", "2026-03-02"}, // the Sunday after
		{"2026-03-09T04:30:00Z", "2026-03-02"},      // still Sunday in loc
		{"2026-03-09T05:00:00Z", "2026-03-09"},
		{"2027-01-01T12:00:00-05:00", "2026-12-28"}, // across a year
	}
	for _, row := range rows {
		in, _ := time.Parse(time.RFC3339, row.in)
		if got := Week(in, loc).Format("2006-01-02"); got != row.want {
			t.Errorf("Week(%s) = %s, want %s", row.in, got, row.want)
		}
	}
}

func reports(ss ...attendance.Session) []attendance.Report { return attendance.Reports(ss) }

func session(group string, day, distinct int) attendance.Session {
	start := time.Date(2026, 3, day, 19, 0, 0, 0, time.UTC)
	return attendance.Session{Group: group, Start: start, End: start.Add(time.Hour), Distinct: distinct, Peak: distinct}
}

// wellFormed parses the SVG and returns its title, desc and texts.
func wellFormed(t *testing.T, svg string) (title, desc string, texts []string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(svg))
	var stack []string
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not XML: %v\n%s", err, svg)
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			stack = append(stack, tk.Name.Local)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) == 0 {
				continue
			}
			s := string(tk)
			switch {
			case len(stack) == 2 && stack[1] == "title":
				title = s
			case len(stack) == 2 && stack[1] == "desc":
				desc = s
			default:
				texts = append(texts, s)
			}
		}
	}
	return title, desc, texts
}

func TestSessionsPerWeek(t *testing.T) {
	var b bytes.Buffer
	rs := reports(session("Tuesday", 3, 9), session("Tuesday", 10, 2), session("Thursday", 5, 4), session("Tuesday", 24, 5))
	if err := SessionsPerWeek(&b, rs, time.UTC); err != nil {
		t.Fatal(err)
	}
	title, desc, texts := wellFormed(t, b.String())
	if title != "Sessions per week" {
		t.Errorf("title %q", title)
	}
	for _, want := range []string{"4 sessions in the 4 weeks", "week of 2026-03-02", "Thursday 1, Tuesday 3"} {
		if !strings.Contains(desc, want) {
			t.Errorf("desc %q lacks %q", desc, want)
		}
	}
	all := strings.Join(texts, "\n")
	for _, want := range []string{"Tuesday, week of 2026-03-02: 1 session", "Thursday, week of 2026-03-02: 1 session", "Tuesday, week of 2026-03-23: 1 session"} {
		if !strings.Contains(all, want) {
			t.Errorf("no bar %q in\n%s", want, all)
		}
	}
	// A week without sessions is a gap, not a bar.
	if strings.Contains(all, "week of 2026-03-16") {
		t.Errorf("a bar for an empty week")
	}
}

func TestPeoplePerSessionHidesSmallSessions(t *testing.T) {
	var b bytes.Buffer
	rs := reports(session("Tuesday", 3, 9), session("Tuesday", 10, 2), session("Tuesday", 17, 1), session("Tuesday", 24, 3))
	if err := PeoplePerSession(&b, rs, time.UTC); err != nil {
		t.Fatal(err)
	}
	_, desc, texts := wellFormed(t, b.String())
	all := strings.Join(texts, "\n")
	for _, want := range []string{"Tuesday, 2026-03-03 19:00: 9 people", "Tuesday, 2026-03-10 19:00: fewer than 3",
		"Tuesday, 2026-03-17 19:00: fewer than 3", "Tuesday, 2026-03-24 19:00: 3 people"} {
		if !strings.Contains(all, want) {
			t.Errorf("no bar %q in\n%s", want, all)
		}
	}
	for _, bad := range []string{": 2 people", ": 1 people", ": 1 person"} {
		if strings.Contains(all, bad) || strings.Contains(desc, bad) {
			t.Errorf("a small session shown as a number (%q)", bad)
		}
	}
	if !strings.Contains(desc, "2 with fewer than 3") || !strings.Contains(desc, "6.0 people on average") {
		t.Errorf("desc %q", desc)
	}
	// The small sessions' bars are the same band, whatever their count.
	svg := b.String()
	if n := strings.Count(svg, `stroke-dasharray="3 2"`); n != 2 {
		t.Errorf("%d hatched bars, want 2", n)
	}
}

func TestChartsEmptyAndManyGroups(t *testing.T) {
	for _, draw := range []func(io.Writer, []attendance.Report, *time.Location) error{SessionsPerWeek, PeoplePerSession} {
		var b bytes.Buffer
		if err := draw(&b, nil, time.UTC); err != nil {
			t.Fatal(err)
		}
		if _, desc, _ := wellFormed(t, b.String()); desc != "No sessions in this range." {
			t.Errorf("empty: %q", desc)
		}
		var ss []attendance.Session
		for i := range 30 {
			ss = append(ss, session("g"+strconv.Itoa(i)+` "&<`, 1+i%28, 3+i))
		}
		b.Reset()
		if err := draw(&b, reports(ss...), time.UTC); err != nil {
			t.Fatal(err)
		}
		_, _, texts := wellFormed(t, b.String())
		if !strings.Contains(strings.Join(texts, "\n"), "+22 more") {
			t.Errorf("the legend does not say how many it leaves out")
		}
	}
}
