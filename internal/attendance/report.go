package attendance

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// SmallSession is the fewest distinct callers whose session shows people
// and stay figures. In a smaller one the figures identify someone (in a
// three-person circle the longest stay is one person's), so every export
// and chart shows FewerThan3 instead, and no stays. This file is the one
// place that rule lives: everything shown formats through Report.
const SmallSession = 3

// FewerThan3 is what is shown for the people of a small session.
const FewerThan3 = "fewer than 3"

// AccessNumber is how a Day of the shared access number (Group "") is
// shown.
const AccessNumber = "(access number)"

// Report is a session as it may be shown. When Small, People and the time
// figures are zero and must not be shown as numbers: PeopleText says
// FewerThan3, and the writers leave the stays empty (null in JSON).
// Facilitator and member time count as stay figures: with one member,
// member time is that member's stay.
type Report struct {
	ID    string
	Group string
	// Start and End are the session's instants; SlotStart and SlotEnd the
	// scheduled meeting, zero when none.
	Start, End, SlotStart, SlotEnd time.Time
	Peak, Joins                    int
	Small                          bool
	People                         int // distinct callers; 0 when Small
	FacilitatorTime, MemberTime    time.Duration
	MedianStay, LongestStay        time.Duration
	TurnedAway                     [nReasons]int // by Reason
}

// NewReport applies the small-session rule to s.
func NewReport(s Session) Report {
	r := Report{
		ID: s.ID, Group: s.Group,
		Start: s.Start, End: s.End, SlotStart: s.SlotStart, SlotEnd: s.SlotEnd,
		Peak: s.Peak, Joins: s.Joins, TurnedAway: s.TurnedAway,
		Small: s.Distinct < SmallSession,
	}
	if !r.Small {
		r.People = s.Distinct
		r.FacilitatorTime, r.MemberTime = s.FacilitatorTime, s.MemberTime
		r.MedianStay, r.LongestStay = s.MedianStay, s.LongestStay
	}
	return r
}

// Reports makes the Report of each session, in order.
func Reports(ss []Session) []Report {
	out := make([]Report, len(ss))
	for i, s := range ss {
		out[i] = NewReport(s)
	}
	return out
}

// PeopleText is the people figure as shown: a number, or FewerThan3.
func (r Report) PeopleText() string {
	if r.Small {
		return FewerThan3
	}
	return strconv.Itoa(r.People)
}

// Length is how long the session ran.
func (r Report) Length() time.Duration { return r.End.Sub(r.Start) }

// GroupText is how a Day's group is shown: its name, or AccessNumber.
func (d Day) GroupText() string {
	if d.Group == "" {
		return AccessNumber
	}
	return d.Group
}

// reasonNames are the Reasons as the exports name them, in order.
var reasonNames = [nReasons]string{"full", "locked", "closed", "removed"}

// minutes is d in minutes to a tenth, as every export writes durations.
func minutes(d time.Duration) float64 { return math.Round(d.Minutes()*10) / 10 }

func minutesText(d time.Duration) string {
	return strconv.FormatFloat(minutes(d), 'f', 1, 64)
}

// Exports show instants in the bridge's local time (time.Local): the
// times its operators keep.
const (
	csvTime   = "2006-01-02 15:04:05"
	tableTime = "2006-01-02 15:04"
)

func localText(t time.Time, layout string) string {
	if t.IsZero() {
		return ""
	}
	return t.Local().Format(layout)
}

// csvHeader is the columns of WriteCSV: one table of both kinds of row,
// told apart by the first column, so a spreadsheet can filter it.
var csvHeader = []string{
	"record", "id", "group", "date", "start", "end", "slot_start", "slot_end",
	"minutes", "peak", "people", "joins",
	"facilitator_minutes", "member_minutes", "median_stay_minutes", "longest_stay_minutes",
	"turned_away_full", "turned_away_locked", "turned_away_closed", "turned_away_removed",
	"wrong_pins", "told_closed",
}

// WriteCSV writes the sessions and days as one CSV table with a header.
// A session row ("record" session) has its date, times (local,
// 2006-01-02 15:04:05), minutes to a tenth and counts; a small session's
// people column says "fewer than 3" and its stay columns are empty. A
// day row ("record" day) has only date, group ("(access number)" for
// the shared number), wrong_pins and told_closed.
func WriteCSV(w io.Writer, ss []Session, days []Day) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	for _, r := range Reports(ss) {
		row := make([]string, 0, len(csvHeader))
		row = append(row, "session", r.ID, cell(r.Group), localText(r.Start, "2006-01-02"),
			localText(r.Start, csvTime), localText(r.End, csvTime),
			localText(r.SlotStart, csvTime), localText(r.SlotEnd, csvTime),
			minutesText(r.Length()), strconv.Itoa(r.Peak), r.PeopleText(), strconv.Itoa(r.Joins))
		for _, d := range []time.Duration{r.FacilitatorTime, r.MemberTime, r.MedianStay, r.LongestStay} {
			if r.Small {
				row = append(row, "")
			} else {
				row = append(row, minutesText(d))
			}
		}
		for _, n := range r.TurnedAway {
			row = append(row, strconv.Itoa(n))
		}
		row = append(row, "", "")
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	for _, d := range days {
		row := make([]string, len(csvHeader))
		row[0], row[2], row[3] = "day", cell(d.GroupText()), d.Day
		row[len(row)-2], row[len(row)-1] = strconv.Itoa(d.WrongPINs), strconv.Itoa(d.Closed)
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// cell keeps a spreadsheet from taking text for a formula: a group named
// "=HYPERLINK(...)" would otherwise run when the CSV is opened.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// jsonExport is WriteJSON's document.
type jsonExport struct {
	Sessions []jsonSession `json:"sessions"`
	Days     []jsonDay     `json:"days"`
}

type jsonSession struct {
	ID        string  `json:"id"`
	Group     string  `json:"group"`
	Start     string  `json:"start"`
	End       string  `json:"end"`
	SlotStart *string `json:"slot_start"`
	SlotEnd   *string `json:"slot_end"`
	Minutes   float64 `json:"minutes"`
	Peak      int     `json:"peak"`
	// People is null for a small session; PeopleShown is what to show
	// either way.
	People             *int           `json:"people"`
	PeopleShown        string         `json:"people_shown"`
	Joins              int            `json:"joins"`
	FacilitatorMinutes *float64       `json:"facilitator_minutes"`
	MemberMinutes      *float64       `json:"member_minutes"`
	MedianStayMinutes  *float64       `json:"median_stay_minutes"`
	LongestStayMinutes *float64       `json:"longest_stay_minutes"`
	TurnedAway         map[string]int `json:"turned_away"`
}

type jsonDay struct {
	Day        string `json:"day"`
	Group      string `json:"group"`
	GroupShown string `json:"group_shown"`
	WrongPINs  int    `json:"wrong_pins"`
	ToldClosed int    `json:"told_closed"`
}

// WriteJSON writes {"sessions": [...], "days": [...]} (both always
// arrays). Instants are RFC 3339 in local time; slot_start and slot_end
// are null without a slot; durations are minutes to a tenth. A small
// session has "people": null, "people_shown": "fewer than 3" and null
// stay figures. A day's "group" is "" for the shared access number, its
// "group_shown" "(access number)".
func WriteJSON(w io.Writer, ss []Session, days []Day) error {
	doc := jsonExport{Sessions: make([]jsonSession, 0, len(ss)), Days: make([]jsonDay, 0, len(days))}
	for _, r := range Reports(ss) {
		js := jsonSession{
			ID: r.ID, Group: r.Group,
			Start: localText(r.Start, time.RFC3339), End: localText(r.End, time.RFC3339),
			SlotStart: optional(localText(r.SlotStart, time.RFC3339)),
			SlotEnd:   optional(localText(r.SlotEnd, time.RFC3339)),
			Minutes:   minutes(r.Length()), Peak: r.Peak, PeopleShown: r.PeopleText(), Joins: r.Joins,
			TurnedAway: make(map[string]int, nReasons),
		}
		if !r.Small {
			js.People = &r.People
			js.FacilitatorMinutes = minutesPtr(r.FacilitatorTime)
			js.MemberMinutes = minutesPtr(r.MemberTime)
			js.MedianStayMinutes = minutesPtr(r.MedianStay)
			js.LongestStayMinutes = minutesPtr(r.LongestStay)
		}
		for i, n := range r.TurnedAway {
			js.TurnedAway[reasonNames[i]] = n
		}
		doc.Sessions = append(doc.Sessions, js)
	}
	for _, d := range days {
		doc.Days = append(doc.Days, jsonDay{Day: d.Day, Group: d.Group, GroupShown: d.GroupText(), WrongPINs: d.WrongPINs, ToldClosed: d.Closed})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func minutesPtr(d time.Duration) *float64 {
	m := minutes(d)
	return &m
}

// WriteTable writes the sessions and then the days as aligned text for a
// terminal: local times, minutes to a tenth, "-" for a figure a small
// session does not show, and a line saying so when there is nothing.
func WriteTable(w io.Writer, ss []Session, days []Day) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if len(ss) == 0 {
		fmt.Fprintln(tw, "No sessions.")
	} else {
		fmt.Fprintln(tw, "GROUP\tSTART\tMINUTES\tPEAK\tPEOPLE\tJOINS\tFACILITATOR MIN\tMEMBER MIN\tMEDIAN STAY\tLONGEST STAY\tTURNED AWAY (FULL/LOCKED/CLOSED/REMOVED)")
		for _, r := range Reports(ss) {
			stays := []string{"-", "-", "-", "-"}
			if !r.Small {
				for i, d := range []time.Duration{r.FacilitatorTime, r.MemberTime, r.MedianStay, r.LongestStay} {
					stays[i] = minutesText(d)
				}
			}
			away := make([]string, len(r.TurnedAway))
			for i, n := range r.TurnedAway {
				away[i] = strconv.Itoa(n)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%s\t%s\n", r.Group, localText(r.Start, tableTime),
				minutesText(r.Length()), r.Peak, r.PeopleText(), r.Joins, strings.Join(stays, "\t"), strings.Join(away, "/"))
		}
	}
	fmt.Fprintln(tw)
	if len(days) == 0 {
		fmt.Fprintln(tw, "No wrong PINs and no callers told a group was closed.")
	} else {
		fmt.Fprintln(tw, "DAY\tGROUP\tWRONG PINS\tTOLD CLOSED")
		for _, d := range days {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", d.Day, d.GroupText(), d.WrongPINs, d.Closed)
		}
	}
	return tw.Flush()
}
