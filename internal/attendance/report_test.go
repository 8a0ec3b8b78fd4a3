package attendance

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// at is a local instant on 3 March 2026, so that the expected text does
// not depend on the machine's zone.
func at(h, m int) time.Time { return time.Date(2026, 3, 3, h, m, 0, 0, time.Local) }

// circle is a session of the given distinct callers with every figure set.
func circle(distinct int) Session {
	return Session{
		ID: "0123456789abcdef0123456789abcdef", Group: "Tuesday circle",
		Start: at(19, 0), End: at(20, 30), SlotStart: at(19, 0), SlotEnd: at(20, 30),
		Peak: min(distinct, 9), Distinct: distinct, Joins: distinct + 2,
		FacilitatorTime: 90 * time.Minute, MemberTime: 301*time.Minute + 30*time.Second,
		MedianStay: 42*time.Minute + 3*time.Second, LongestStay: 90 * time.Minute,
		TurnedAway: [nReasons]int{1, 2, 3, 4},
	}
}

func TestNewReport(t *testing.T) {
	tests := []struct {
		distinct   int
		small      bool
		people     string
		longestMin float64
	}{
		{0, true, "fewer than 3", 0},
		{1, true, "fewer than 3", 0},
		{2, true, "fewer than 3", 0},
		{3, false, "3", 90},
		{40, false, "40", 90},
	}
	for _, tc := range tests {
		s := circle(tc.distinct)
		r := NewReport(s)
		if r.Small != tc.small || r.PeopleText() != tc.people || minutes(r.LongestStay) != tc.longestMin {
			t.Errorf("distinct %d: small %v people %q longest %v, want %v %q %v", tc.distinct, r.Small, r.PeopleText(), minutes(r.LongestStay), tc.small, tc.people, tc.longestMin)
		}
		if tc.small && (r.People != 0 || r.MedianStay != 0 || r.FacilitatorTime != 0 || r.MemberTime != 0) {
			t.Errorf("distinct %d: a small session keeps figures: %+v", tc.distinct, r)
		}
		// What is never hidden: the session's own shape.
		if r.Peak != s.Peak || r.Joins != s.Joins || r.TurnedAway != s.TurnedAway || r.Length() != 90*time.Minute || r.ID != s.ID {
			t.Errorf("distinct %d: %+v lost a figure of %+v", tc.distinct, r, s)
		}
	}
	if got := Reports([]Session{circle(2), circle(5)}); len(got) != 2 || !got[0].Small || got[1].Small {
		t.Errorf("Reports = %+v", got)
	}
}

var days = []Day{
	{Day: "2026-03-03", Group: "", WrongPINs: 7},
	{Day: "2026-03-03", Group: "Tuesday circle", WrongPINs: 2, Closed: 1},
}

func TestWriteCSV(t *testing.T) {
	tests := []struct {
		name string
		ss   []Session
		days []Day
		want string
	}{
		{"nothing", nil, nil, strings.Join(csvHeader, ",") + "\n"},
		{"sessions and days", []Session{circle(3), circle(2)}, days, strings.Join(csvHeader, ",") + "\n" +
			"session,0123456789abcdef0123456789abcdef,Tuesday circle,2026-03-03,2026-03-03 19:00:00,2026-03-03 20:30:00,2026-03-03 19:00:00,2026-03-03 20:30:00,90.0,3,3,5,90.0,301.5,42.1,90.0,1,2,3,4,,\n" +
			"session,0123456789abcdef0123456789abcdef,Tuesday circle,2026-03-03,2026-03-03 19:00:00,2026-03-03 20:30:00,2026-03-03 19:00:00,2026-03-03 20:30:00,90.0,2,fewer than 3,4,,,,,1,2,3,4,,\n" +
			"day,,(access number),2026-03-03,,,,,,,,,,,,,,,,,7,0\n" +
			"day,,Tuesday circle,2026-03-03,,,,,,,,,,,,,,,,,2,1\n"},
		{"no slot, a formula for a name", []Session{{ID: "x", Group: "=cmd()", Start: at(9, 0), End: at(9, 10), Distinct: 3}}, nil, strings.Join(csvHeader, ",") + "\n" +
			"session,x,'=cmd(),2026-03-03,2026-03-03 09:00:00,2026-03-03 09:10:00,,,10.0,0,3,0,0.0,0.0,0.0,0.0,0,0,0,0,,\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteCSV(&b, tc.ss, tc.days); err != nil {
				t.Fatal(err)
			}
			if b.String() != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", b.String(), tc.want)
			}
			// Every row has every column: a spreadsheet reads one table.
			rows, err := csv.NewReader(&b).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 1+len(tc.ss)+len(tc.days) {
				t.Errorf("%d rows", len(rows))
			}
		})
	}
}

func TestWriteJSON(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, []Session{circle(4), circle(1)}, days); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Sessions []map[string]any `json:"sessions"`
		Days     []map[string]any `json:"days"`
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if len(doc.Sessions) != 2 || len(doc.Days) != 2 {
		t.Fatalf("%s", b.String())
	}
	big, small := doc.Sessions[0], doc.Sessions[1]
	tests := []struct {
		key        string
		big, small any
	}{
		{"id", "0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef"},
		{"group", "Tuesday circle", "Tuesday circle"},
		{"start", at(19, 0).Format(time.RFC3339), at(19, 0).Format(time.RFC3339)},
		{"end", at(20, 30).Format(time.RFC3339), at(20, 30).Format(time.RFC3339)},
		{"slot_start", at(19, 0).Format(time.RFC3339), at(19, 0).Format(time.RFC3339)},
		{"minutes", 90.0, 90.0},
		{"peak", 4.0, 1.0},
		{"people", 4.0, nil},
		{"people_shown", "4", "fewer than 3"},
		{"joins", 6.0, 3.0},
		{"facilitator_minutes", 90.0, nil},
		{"member_minutes", 301.5, nil},
		{"median_stay_minutes", 42.1, nil},
		{"longest_stay_minutes", 90.0, nil},
		{"turned_away", map[string]any{"full": 1.0, "locked": 2.0, "closed": 3.0, "removed": 4.0}, map[string]any{"full": 1.0, "locked": 2.0, "closed": 3.0, "removed": 4.0}},
	}
	for _, tc := range tests {
		if g := jsonText(big[tc.key]); g != jsonText(tc.big) {
			t.Errorf("big %s = %s, want %s", tc.key, g, jsonText(tc.big))
		}
		if g := jsonText(small[tc.key]); g != jsonText(tc.small) {
			t.Errorf("small %s = %s, want %s", tc.key, g, jsonText(tc.small))
		}
	}
	if len(big) != len(tests)+1 || len(small) != len(big) { // slot_end too; null keys are there
		t.Errorf("session keys: %v and %v", big, small)
	}
	wantDays := `[{"day":"2026-03-03","group":"","group_shown":"(access number)","told_closed":0,"wrong_pins":7},{"day":"2026-03-03","group":"Tuesday circle","group_shown":"Tuesday circle","told_closed":1,"wrong_pins":2}]`
	if g := jsonText(doc.Days); g != wantDays {
		t.Errorf("days = %s\nwant %s", g, wantDays)
	}

	// No slot: null. Nothing at all: empty arrays, never null.
	b.Reset()
	if err := WriteJSON(&b, []Session{{ID: "x", Start: at(9, 0), End: at(9, 1)}}, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"slot_start": null`) || !strings.Contains(b.String(), `"days": []`) {
		t.Errorf("no slot, no days:\n%s", b.String())
	}
	b.Reset()
	if err := WriteJSON(&b, nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(strings.Fields(b.String()), ""); got != `{"sessions":[],"days":[]}` {
		t.Errorf("empty export: %s", got)
	}
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestWriteTable(t *testing.T) {
	tests := []struct {
		name string
		ss   []Session
		days []Day
		want string
	}{
		{"nothing", nil, nil, "No sessions.\n\nNo wrong PINs and no callers told a group was closed.\n"},
		{"sessions and days", []Session{circle(12), circle(2)}, days, "" +
			"GROUP           START             MINUTES  PEAK  PEOPLE        JOINS  FACILITATOR MIN  MEMBER MIN  MEDIAN STAY  LONGEST STAY  TURNED AWAY (FULL/LOCKED/CLOSED/REMOVED)\n" +
			"Tuesday circle  2026-03-03 19:00  90.0     9     12            14     90.0             301.5       42.1         90.0          1/2/3/4\n" +
			"Tuesday circle  2026-03-03 19:00  90.0     2     fewer than 3  4      -                -           -            -             1/2/3/4\n" +
			"\n" +
			"DAY         GROUP            WRONG PINS  TOLD CLOSED\n" +
			"2026-03-03  (access number)  7           0\n" +
			"2026-03-03  Tuesday circle   2           1\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteTable(&b, tc.ss, tc.days); err != nil {
				t.Fatal(err)
			}
			if b.String() != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", b.String(), tc.want)
			}
		})
	}
}
