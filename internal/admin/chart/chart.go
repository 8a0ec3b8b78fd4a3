// Package chart draws the attendance charts of the console as SVG: the
// sessions per week and the people per session, per group. It draws
// attendance.Report values, so the small-session rule (a session with
// fewer than 3 distinct callers shows no people figure) is applied where
// it lives, in package attendance: such a session is drawn as a hatched
// "fewer than 3" band, never as a number.
//
// Each chart has a <title> and a <desc> that says in words what it shows,
// and each bar a <title>, for screen readers; colours come with a legend.
package chart

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/groupbridge/groupbridge/internal/attendance"
)

// Size of the drawing, in SVG units (it scales to its box).
const (
	width, height = 640, 320
	left, right   = 44, 12
	top, bottom   = 54, 44
	plotW         = width - left - right
	plotH         = height - top - bottom
	// maxLegend is how many groups the legend names; more share a colour
	// and are named in the bars' titles only.
	maxLegend = 8
)

// palette is distinguishable in colour-blind vision and on white.
var palette = []string{"#1f5f8b", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#7a5195", "#4d4d4d"}

// Week is the start (Monday, 00:00 local) of the week holding t.
func Week(t time.Time, loc *time.Location) time.Time {
	t = t.In(loc)
	d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
	back := (int(d.Weekday()) + 6) % 7 // days since Monday
	return d.AddDate(0, 0, -back)
}

// groups returns the groups of rs in order of name.
func groups(rs []attendance.Report) []string {
	var gs []string
	for _, r := range rs {
		if !slices.Contains(gs, r.Group) {
			gs = append(gs, r.Group)
		}
	}
	slices.Sort(gs)
	return gs
}

func colour(gs []string, g string) string {
	return palette[slices.Index(gs, g)%len(palette)]
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// svg collects a drawing.
type svg struct{ b bytes.Buffer }

func (s *svg) f(format string, args ...any) { fmt.Fprintf(&s.b, format, args...) }

func (s *svg) open(title, desc string) {
	s.f(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-labelledby="chart-title chart-desc" font-family="system-ui, sans-serif" font-size="12">`,
		width, height, width, height)
	s.f(`<title id="chart-title">%s</title><desc id="chart-desc">%s</desc>`, esc(title), esc(desc))
	s.f(`<defs><pattern id="few" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">` +
		`<rect width="6" height="6" fill="#ffffff"/><line x1="0" y1="0" x2="0" y2="6" stroke="#6b6b6b" stroke-width="2"/></pattern></defs>`)
	s.f(`<rect width="%d" height="%d" fill="#ffffff"/>`, width, height)
	s.f(`<text x="%d" y="18" font-size="14" font-weight="600" fill="#1b1b1b">%s</text>`, left, esc(title))
}

func (s *svg) close(w io.Writer) error {
	s.f(`</svg>`)
	_, err := w.Write(s.b.Bytes())
	return err
}

// empty draws a chart with nothing to show.
func (s *svg) empty() {
	s.f(`<text x="%d" y="%d" text-anchor="middle" fill="#4a4a4a">No sessions in this range.</text>`, width/2, height/2)
}

// legend names the groups by colour, and the hatching when used.
func (s *svg) legend(gs []string, few bool) {
	x := float64(left)
	item := func(fill, label string) {
		s.f(`<rect x="%.1f" y="28" width="12" height="12" fill="%s" stroke="#1b1b1b" stroke-width="0.5"/>`, x, fill)
		s.f(`<text x="%.1f" y="38" fill="#1b1b1b">%s</text>`, x+16, esc(label))
		x += 16 + 7*float64(len([]rune(label))) + 14
	}
	for i, g := range gs {
		if i == maxLegend {
			item("#ffffff", fmt.Sprintf("+%d more", len(gs)-maxLegend))
			break
		}
		item(colour(gs, g), g)
	}
	if few {
		item("url(#few)", attendance.FewerThan3)
	}
}

// axis draws the y axis up to ceil (a whole number) with a few ticks.
func (s *svg) axis(ceil int, label string) {
	step := max(1, niceStep(ceil))
	for v := 0; v <= ceil; v += step {
		y := yOf(v, ceil)
		s.f(`<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#d9d9d9"/>`, left, width-right, y, y)
		s.f(`<text x="%d" y="%.1f" text-anchor="end" fill="#4a4a4a">%d</text>`, left-6, y+4, v)
	}
	s.f(`<text transform="translate(12 %d) rotate(-90)" text-anchor="middle" fill="#4a4a4a">%s</text>`, top+plotH/2, esc(label))
}

// yOf is the y of value v on an axis up to ceil.
func yOf(v, ceil int) float64 { return float64(top+plotH) - float64(v)*plotH/float64(ceil) }

// niceStep is a tick step giving at most about six ticks up to ceil.
func niceStep(ceil int) int {
	for _, s := range []int{1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000} {
		if ceil/s <= 6 {
			return s
		}
	}
	return ceil / 5
}

// SessionsPerWeek draws the sessions per week (weeks start on Monday in
// loc) as bars stacked by group.
func SessionsPerWeek(w io.Writer, rs []attendance.Report, loc *time.Location) error {
	const title = "Sessions per week"
	var s svg
	if len(rs) == 0 {
		s.open(title, "No sessions in this range.")
		s.empty()
		return s.close(w)
	}
	gs := groups(rs)
	type key struct {
		week  time.Time
		group string
	}
	counts := map[key]int{}
	totals := map[string]int{}
	first, last := Week(rs[0].Start, loc), Week(rs[0].Start, loc)
	for _, r := range rs {
		wk := Week(r.Start, loc)
		counts[key{wk, r.Group}]++
		totals[r.Group]++
		if wk.Before(first) {
			first = wk
		}
		if wk.After(last) {
			last = wk
		}
	}
	var weeks []time.Time
	for wk := first; !wk.After(last); wk = wk.AddDate(0, 0, 7) {
		weeks = append(weeks, wk)
	}
	most := 1
	for _, wk := range weeks {
		n := 0
		for _, g := range gs {
			n += counts[key{wk, g}]
		}
		most = max(most, n)
	}
	parts := make([]string, 0, len(gs))
	for _, g := range gs {
		parts = append(parts, fmt.Sprintf("%s %d", g, totals[g]))
	}
	desc := fmt.Sprintf("%d sessions in the %d weeks from the week of %s to the week of %s, by group: %s. The most in one week: %d.",
		len(rs), len(weeks), weeks[0].Format("2006-01-02"), weeks[len(weeks)-1].Format("2006-01-02"), strings.Join(parts, ", "), most)
	s.open(title, desc)
	s.legend(gs, false)
	s.axis(most, "sessions")
	slot := float64(plotW) / float64(len(weeks))
	bar := max(1, slot*0.7)
	for i, wk := range weeks {
		x := float64(left) + slot*float64(i) + (slot-bar)/2
		below := 0
		for _, g := range gs {
			n := counts[key{wk, g}]
			if n == 0 {
				continue
			}
			y0, y1 := yOf(below, most), yOf(below+n, most)
			s.f(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>`,
				x, y1, bar, y0-y1, colour(gs, g), esc(fmt.Sprintf("%s, week of %s: %d %s", g, wk.Format("2006-01-02"), n, plural(n, "session", "sessions"))))
			below += n
		}
	}
	s.xLabels(len(weeks), func(i int) string { return weeks[i].Format("Jan 2") })
	s.f(`<text x="%d" y="%d" text-anchor="middle" fill="#4a4a4a">week starting</text>`, left+plotW/2, height-4)
	return s.close(w)
}

// xLabels writes at most about 8 labels under n slots.
func (s *svg) xLabels(n int, label func(int) string) {
	every := max(1, (n+7)/8)
	slot := float64(plotW) / float64(n)
	for i := 0; i < n; i += every {
		s.f(`<text x="%.1f" y="%d" text-anchor="middle" fill="#4a4a4a">%s</text>`,
			float64(left)+slot*(float64(i)+0.5), top+plotH+16, esc(label(i)))
	}
}

// PeoplePerSession draws each session's people (distinct callers) as a
// bar coloured by group, oldest first. A small session is a hatched band
// up to 3 labelled "fewer than 3": its number is not shown.
func PeoplePerSession(w io.Writer, rs []attendance.Report, loc *time.Location) error {
	const title = "People per session"
	var s svg
	if len(rs) == 0 {
		s.open(title, "No sessions in this range.")
		s.empty()
		return s.close(w)
	}
	rs = slices.Clone(rs)
	slices.SortStableFunc(rs, func(a, b attendance.Report) int { return a.Start.Compare(b.Start) })
	gs := groups(rs)
	most, small := attendance.SmallSession, 0
	var parts []string
	for _, g := range gs {
		n, sum, few := 0, 0, 0
		for _, r := range rs {
			if r.Group != g {
				continue
			}
			if r.Small {
				few++
				continue
			}
			n++
			sum += r.People
			most = max(most, r.People)
		}
		small += few
		p := fmt.Sprintf("%s: %d %s", g, n+few, plural(n+few, "session", "sessions"))
		if n > 0 {
			p += fmt.Sprintf(", %.1f people on average", float64(sum)/float64(n))
		}
		if few > 0 {
			p += fmt.Sprintf(", %d with %s", few, attendance.FewerThan3)
		}
		parts = append(parts, p)
	}
	desc := fmt.Sprintf("People (distinct callers) in each of %d sessions from %s to %s. %s.",
		len(rs), rs[0].Start.In(loc).Format("2006-01-02"), rs[len(rs)-1].Start.In(loc).Format("2006-01-02"), strings.Join(parts, "; "))
	s.open(title, desc)
	s.legend(gs, small > 0)
	s.axis(most, "people")
	slot := float64(plotW) / float64(len(rs))
	bar := max(1, slot*0.7)
	for i, r := range rs {
		x := float64(left) + slot*float64(i) + (slot-bar)/2
		when := r.Start.In(loc).Format("2006-01-02 15:04")
		if r.Small {
			y := yOf(attendance.SmallSession, most)
			s.f(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="url(#few)" stroke="%s" stroke-width="1.5" stroke-dasharray="3 2"><title>%s</title></rect>`,
				x, y, bar, yOf(0, most)-y, colour(gs, r.Group), esc(fmt.Sprintf("%s, %s: %s", r.Group, when, attendance.FewerThan3)))
			if bar >= 14 {
				s.f(`<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10" fill="#1b1b1b" aria-hidden="true">&lt;3</text>`, x+bar/2, y-3)
			}
			continue
		}
		y := yOf(r.People, most)
		s.f(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>`,
			x, y, bar, yOf(0, most)-y, colour(gs, r.Group), esc(fmt.Sprintf("%s, %s: %d people", r.Group, when, r.People)))
	}
	s.xLabels(len(rs), func(i int) string { return rs[i].Start.In(loc).Format("Jan 2") })
	s.f(`<text x="%d" y="%d" text-anchor="middle" fill="#4a4a4a">session</text>`, left+plotW/2, height-4)
	return s.close(w)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
