package admin

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/attendance"
)

// fakeAttendance answers fixed records and remembers the filters asked.
type fakeAttendance struct {
	mu       sync.Mutex
	sessions []attendance.Session
	days     []attendance.Day
	err      error
	asked    []attendance.Filter
}

func (f *fakeAttendance) Sessions(_ context.Context, flt attendance.Filter) ([]attendance.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, flt)
	return f.sessions, f.err
}

func (f *fakeAttendance) Days(_ context.Context, flt attendance.Filter) ([]attendance.Day, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.days, f.err
}

func sampleAttendance() *fakeAttendance {
	at := func(d, h int) time.Time { return time.Date(2026, 3, d, h, 0, 0, 0, time.Local) }
	return &fakeAttendance{
		sessions: []attendance.Session{
			{ID: "a1", Group: "Tuesday", Start: at(3, 19), End: at(3, 20), Peak: 7, Distinct: 9, Joins: 11,
				MedianStay: 41 * time.Minute, LongestStay: 58 * time.Minute, MemberTime: 300 * time.Minute},
			{ID: "a2", Group: "Tuesday", Start: at(10, 19), End: at(10, 20), Peak: 2, Distinct: 2, Joins: 2,
				MedianStay: 37 * time.Minute, LongestStay: 53 * time.Minute, MemberTime: 90 * time.Minute},
			{ID: "a3", Group: "<Grief & Loss>", Start: at(12, 10), End: at(12, 11), Peak: 4, Distinct: 5, Joins: 6,
				MedianStay: 30 * time.Minute, LongestStay: 44 * time.Minute},
		},
		days: []attendance.Day{{Day: "2026-03-03", Group: "", WrongPINs: 3}},
	}
}

func TestAttendanceAnswers(t *testing.T) {
	store := sampleAttendance()
	h := NewHandler(Config{Rooms: &fakeRooms{}, Attendance: store, Logger: quietLogger()})

	got := send(t, h, request{method: "GET", path: "/api/attendance"})
	if got.status != 200 || got.header.Get("Content-Type") != "application/json" {
		t.Fatalf("json: %d %s", got.status, got.body)
	}
	var doc struct {
		Sessions []map[string]any `json:"sessions"`
		Days     []map[string]any `json:"days"`
	}
	if err := json.Unmarshal([]byte(got.body), &doc); err != nil || len(doc.Sessions) != 3 || len(doc.Days) != 1 {
		t.Fatalf("json: %v %s", err, got.body)
	}
	small := doc.Sessions[1]
	if small["people"] != nil || small["people_shown"] != "fewer than 3" || small["longest_stay_minutes"] != nil || small["peak"] != float64(2) {
		t.Errorf("small session: %v", small)
	}
	if doc.Sessions[0]["people"] != float64(9) {
		t.Errorf("session: %v", doc.Sessions[0])
	}

	got = send(t, h, request{method: "GET", path: "/api/attendance?format=csv&group=Tuesday"})
	if got.status != 200 || got.header.Get("Content-Type") != "text/csv; charset=utf-8" ||
		got.header.Get("Content-Disposition") != `attachment; filename="attendance.csv"` {
		t.Fatalf("csv: %d %v", got.status, got.header)
	}
	rows, err := csv.NewReader(strings.NewReader(got.body)).ReadAll()
	if err != nil || len(rows) != 5 || rows[0][0] != "record" {
		t.Fatalf("csv: %v %q", err, got.body)
	}
	if rows[2][10] != "fewer than 3" || strings.Contains(strings.Join(rows[2], ","), "53.0") {
		t.Errorf("small session row: %v", rows[2])
	}
	if store.asked[len(store.asked)-1].Group != "Tuesday" {
		t.Errorf("group filter: %+v", store.asked)
	}
}

func TestAttendanceCharts(t *testing.T) {
	h := NewHandler(Config{Rooms: &fakeRooms{}, Attendance: sampleAttendance(), Logger: quietLogger()})
	for _, name := range []string{"sessions.svg", "people.svg"} {
		got := send(t, h, request{method: "GET", path: "/api/attendance/chart/" + name})
		if got.status != 200 || got.header.Get("Content-Type") != "image/svg+xml" {
			t.Fatalf("%s: %d %s", name, got.status, got.body)
		}
		for _, want := range []string{"<title", "<desc", "Tuesday", "&lt;Grief &amp; Loss&gt;"} {
			if !strings.Contains(got.body, want) {
				t.Errorf("%s lacks %q", name, want)
			}
		}
		if got.header.Get("Content-Security-Policy") == "" {
			t.Errorf("%s without CSP", name)
		}
	}
	people := send(t, h, request{method: "GET", path: "/api/attendance/chart/people.svg"}).body
	if !strings.Contains(people, "fewer than 3") || strings.Contains(people, ": 2 people") {
		t.Errorf("people chart shows the small session as a number:\n%s", people)
	}
	if !strings.Contains(people, "Tuesday, 2026-03-03 19:00: 9 people") {
		t.Errorf("people chart lacks a session:\n%s", people)
	}
	if got := send(t, h, request{method: "GET", path: "/api/attendance/chart/pie.svg"}); got.status != 404 {
		t.Errorf("unknown chart: %d", got.status)
	}
}

func TestAttendanceRefusals(t *testing.T) {
	store := sampleAttendance()
	h := NewHandler(Config{Rooms: &fakeRooms{}, Attendance: store, Logger: quietLogger()})
	rows := []struct {
		query  string
		status int
		names  string // what the error must name
	}{
		{"since=2026-13-01", 400, "since"},
		{"until=yesterday", 400, "until"},
		{"since=2026-03-10&until=2026-03-01", 400, "since"},
		{"group=a&group=b", 400, "group"},
		{"format=xml", 400, "format"},
		{"group=" + strings.Repeat("x", 300), 400, "group"},
	}
	for _, row := range rows {
		for _, path := range []string{"/api/attendance?", "/api/attendance/chart/people.svg?"} {
			if row.names == "format" && strings.Contains(path, "chart") {
				continue
			}
			got := send(t, h, request{method: "GET", path: path + row.query})
			if got.status != row.status {
				t.Errorf("%s%s: %d", path, row.query, got.status)
				continue
			}
			if msg := errorOf(t, got); !strings.HasPrefix(msg, row.names+":") || strings.Contains(msg, "yesterday") {
				t.Errorf("%s%s: %q", path, row.query, msg)
			}
		}
	}
	none := NewHandler(Config{Rooms: &fakeRooms{}, Logger: quietLogger()})
	for _, p := range []string{"/api/attendance", "/api/attendance?format=csv", "/api/attendance/chart/sessions.svg"} {
		if got := send(t, none, request{method: "GET", path: p}); got.status != 404 || errorOf(t, got) == "" {
			t.Errorf("%s without a store: %d", p, got.status)
		}
	}
	store.err = errors.New("postgres://user:secret@db/x: connection refused")
	got := send(t, h, request{method: "GET", path: "/api/attendance"})
	if got.status != 500 || strings.Contains(got.body, "secret") {
		t.Errorf("store down: %d %s", got.status, got.body)
	}
	// A PostgreSQL store not reachable yet (the bridge started without
	// it): 503, and the console can say why.
	store.err = fmt.Errorf("PostgreSQL at db/x: %w", attendance.ErrNotReady)
	got = send(t, h, request{method: "GET", path: "/api/attendance"})
	if got.status != 503 || !strings.Contains(errorOf(t, got), "not reachable yet") {
		t.Errorf("store not ready: %d %s", got.status, got.body)
	}
	signed := NewHandler(Config{Token: token, Rooms: &fakeRooms{}, Attendance: sampleAttendance(), Logger: quietLogger()})
	if got := send(t, signed, request{method: "GET", path: "/api/attendance?format=csv"}); got.status != 401 {
		t.Errorf("attendance without the token: %d", got.status)
	}
}

func TestParseFilter(t *testing.T) {
	loc := time.FixedZone("bridge", 2*3600)
	rows := []struct {
		query        string
		group        string
		since, until string // RFC 3339, "" for zero
		err          string
	}{
		{"", "", "", "", ""},
		{"group=Tuesday", "Tuesday", "", "", ""},
		{"since=2026-03-01", "", "2026-03-01T00:00:00+02:00", "", ""},
		{"until=2026-03-31", "", "", "2026-04-01T00:00:00+02:00", ""},
		{"since=2026-03-01&until=2026-03-01", "", "2026-03-01T00:00:00+02:00", "2026-03-02T00:00:00+02:00", ""},
		{"since=2026-03-02&until=2026-03-01", "", "", "", "since: is after until"},
		{"since=2026-02-30", "", "", "", "since: not a date"},
		{"until=2026-3-1", "", "", "", "until: not a date"},
		{"since=", "", "", "", ""},
		{"since=1&since=2", "", "", "", "since: given more than once"},
	}
	for _, row := range rows {
		q, _ := url.ParseQuery(row.query)
		f, err := parseFilter(q, loc)
		if row.err != "" {
			if err == nil || !strings.HasPrefix(err.Error(), row.err) {
				t.Errorf("%q: %v, want %q", row.query, err, row.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", row.query, err)
			continue
		}
		str := func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.Format(time.RFC3339)
		}
		if f.Group != row.group || str(f.Since) != row.since || str(f.Until) != row.until {
			t.Errorf("%q: %+v", row.query, f)
		}
	}
}

// FuzzParseFilter: any query either fails naming one of its parameters,
// or gives a range whose ends are local midnights in order.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"", "group=x&since=2026-01-01&until=2026-12-31", "since=2026-02-29", "until=0000-01-01",
		"since=9999-12-31", "group=%00", "since=2026-01-01&since=2026-01-02", "since=+2026-01-01"} {
		f.Add(s)
	}
	loc := time.FixedZone("bridge", -5*3600)
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		flt, err := parseFilter(q, loc)
		if err != nil {
			var fe *filterError
			if !errors.As(err, &fe) || (fe.param != "group" && fe.param != "since" && fe.param != "until") {
				t.Fatalf("%q: %v", raw, err)
			}
			return
		}
		for _, tm := range []time.Time{flt.Since, flt.Until} {
			if !tm.IsZero() && (tm.Hour() != 0 || tm.Minute() != 0 || tm.Second() != 0 || tm.Location() != loc) {
				t.Fatalf("%q: %v is not a local midnight", raw, tm)
			}
		}
		if !flt.Since.IsZero() && !flt.Until.IsZero() && !flt.Since.Before(flt.Until) {
			t.Fatalf("%q: %v not before %v", raw, flt.Since, flt.Until)
		}
		if flt.Group != q.Get("group") {
			t.Fatalf("%q: group %q", raw, flt.Group)
		}
	})
}
