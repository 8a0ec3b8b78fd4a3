package app

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/config"
	"github.com/groupbridge/groupbridge/internal/attendance"
	"github.com/groupbridge/groupbridge/internal/attendance/store"
	"github.com/groupbridge/groupbridge/internal/callerid"
	"github.com/groupbridge/groupbridge/internal/conference/rules"
	"github.com/groupbridge/groupbridge/internal/softphone"
	"github.com/groupbridge/groupbridge/internal/testkit"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", to read every column
	_ "modernc.org/sqlite"             // database/sql driver "sqlite"
)

// The attendance tests' groups: PINs and caller numbers long enough that
// finding them in a store's bytes cannot be chance.
const (
	attMemberPIN = "74815926"
	attFacPIN    = "93726154"
	attOtherPIN  = "61835274"
	attGroups    = `
  - name: Circle
    number: "1001"
    member_pin: "` + attMemberPIN + `"
    facilitator_pin: "` + attFacPIN + `"
    led_by: peer
  - name: Other
    member_pin: "` + attOtherPIN + `"
    led_by: peer
`
)

// attCaller is the n-th caller number of these tests.
func attCaller(n int) string { return fmt.Sprintf("+1555734%04d", n) }

// waitSessions polls the app's attendance until f's sessions number want
// (the writer stores in the background), and returns them.
func waitSessions(t *testing.T, a *App, f attendance.Filter, want int, within time.Duration) []attendance.Session {
	t.Helper()
	deadline := time.Now().Add(within)
	var got []attendance.Session
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := testContext(5 * time.Second)
		got, err = a.Attendance().Sessions(ctx, f)
		cancel()
		if err == nil && len(got) >= want {
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%d sessions stored (last error %v), want %d", len(got), err, want)
	return nil
}

// days reads the app's per-day counts, by group ("" the access number).
func days(t *testing.T, a *App) map[string]attendance.Day {
	t.Helper()
	ctx, cancel := testContext(5 * time.Second)
	defer cancel()
	ds, err := a.Attendance().Days(ctx, attendance.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]attendance.Day{}
	for _, d := range ds {
		if _, dup := out[d.Group]; dup {
			t.Errorf("two rows for group %q", d.Group)
		}
		out[d.Group] = d
	}
	return out
}

// wrongPINs makes a call to dialed from caller that types three wrong PINs
// and waits for the bridge to turn it away (the n-th such call).
func wrongPINs(t *testing.T, a *App, logs *syncBuffer, caller, dialed string, n int) {
	t.Helper()
	p := dial(t, a, softphone.Config{Caller: caller, Dialed: dialed})
	ctx, cancel := testContext(30 * time.Second)
	defer cancel()
	for _, pin := range []string{"11112222", "33334444", "55556666"} {
		if err := p.SendDigits(ctx, pin+"#", softphone.DigitRFC4733); err != nil {
			t.Fatal(err)
		}
	}
	logs.waitCount(t, 20*time.Second, n, "call not admitted", "outcome", "wrong-pin")
}

// hearEachOther checks that two callers sending tones hear each other.
func hearEachOther(t *testing.T, pa, pb *softphone.Phone) {
	t.Helper()
	pa.Media().SendTone(440, -20)
	pb.Media().SendTone(1000, -20)
	defer pa.Media().SendSilence()
	defer pb.Media().SendSilence()
	time.Sleep(1500 * time.Millisecond) // past the join chimes and prompts
	start := time.Now()
	time.Sleep(2 * time.Second)
	if l := levels(pa, start, 1500*time.Millisecond, 1000); l[0] < -30 {
		t.Errorf("A hears B's 1000 Hz at %.1f dBFS, want above -30", l[0])
	}
	if l := levels(pb, start, 1500*time.Millisecond, 440); l[0] < -30 {
		t.Errorf("B hears A's 440 Hz at %.1f dBFS, want above -30", l[0])
	}
}

// hangUp ends p's call from the phone's side.
func hangUp(t *testing.T, p *softphone.Phone) {
	t.Helper()
	ctx, cancel := testContext(5 * time.Second)
	defer cancel()
	if err := p.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
}

// A session two callers attend is stored with its counts; a caller the
// locked room turns away counts; wrong PINs count per day for the group's
// number and for the access number. The stored bytes, and every column,
// hold no caller number, no PIN and no identity.
func TestE2EAttendanceRecorded(t *testing.T) {
	t.Parallel()
	y := testYAML("", attGroups)
	a, logs := startApp(t, y)
	begin := time.Now()
	pa := dial(t, a, softphone.Config{Caller: attCaller(1), Dialed: "1001"})
	pb := dial(t, a, softphone.Config{Caller: attCaller(2)})
	enter(t, logs, pa, attMemberPIN, softphone.DigitRFC4733, 1)
	enter(t, logs, pb, attMemberPIN, softphone.DigitRFC4733, 2)
	hearEachOther(t, pa, pb)

	if err := a.conf.Act("Circle", rules.ActLock, 0); err != nil {
		t.Fatal(err)
	}
	late := dial(t, a, softphone.Config{Caller: attCaller(3)})
	ctx, cancel := testContext(20 * time.Second)
	defer cancel()
	if err := late.SendDigits(ctx, attMemberPIN+"#", softphone.DigitRFC4733); err != nil {
		t.Fatal(err)
	}
	logs.waitCount(t, 15*time.Second, 1, "call not admitted", "outcome", "locked")

	wrongPINs(t, a, logs, attCaller(4), "1001", 1)        // Circle's number
	wrongPINs(t, a, logs, attCaller(5), "groupbridge", 2) // the access number
	hangUp(t, pa)
	hangUp(t, pb)
	end := time.Now()

	s := waitSessions(t, a, attendance.Filter{}, 1, 15*time.Second)
	if len(s) != 1 {
		t.Fatalf("%d sessions, want 1: %+v", len(s), s)
	}
	got := s[0]
	if got.Group != "Circle" || got.Peak != 2 || got.Joins != 2 || got.Distinct != 2 ||
		got.TurnedAway != [4]int{attendance.Locked: 1} {
		t.Errorf("session %+v: want Circle, peak 2, 2 joins, 2 distinct, one turned away locked", got)
	}
	if got.Start.Before(begin.Add(-time.Second)) || got.End.After(end.Add(2*time.Second)) || !got.End.After(got.Start) {
		t.Errorf("session from %v to %v, want within %v..%v", got.Start, got.End, begin, end)
	}
	length := got.End.Sub(got.Start)
	if got.FacilitatorTime != 0 || got.MemberTime <= length || got.MemberTime > 2*length ||
		got.LongestStay > length || got.MedianStay > got.LongestStay || got.MedianStay < 3*time.Second {
		t.Errorf("times %+v in a session of %v: want two members' stays of at least 3 s within it", got, length)
	}
	if !got.SlotStart.IsZero() {
		t.Errorf("a group without hours has slot %v", got.SlotStart)
	}
	d := days(t, a)
	today := time.Now().Format("2006-01-02")
	if d["Circle"].WrongPINs != 3 || d[""].WrongPINs != 3 || d["Circle"].Day != today || d[""].Day != today {
		t.Errorf("days %+v: want 3 wrong PINs today for Circle and 3 for the access number", d)
	}

	// The secrets: every caller number as dialled and normalised, every
	// PIN typed or configured, and the callers' identities.
	var secrets []string
	for n := 1; n <= 5; n++ {
		num := callerid.Normalize(attCaller(n))
		secrets = append(secrets, attCaller(n), strings.TrimPrefix(num, "+"), a.flow.IdentityOf(num))
	}
	secrets = append(secrets, attMemberPIN, attFacPIN, attOtherPIN, "11112222", "33334444", "55556666")

	path := a.cfg.Attendance.Path
	stopApp(t, a) // flushed and closed: every byte is in the files
	entries, err := filepath.Glob(path + "*")
	if err != nil || len(entries) == 0 {
		t.Fatalf("no store files at %s: %v", path, err)
	}
	seen := false // the group's name is stored: the bytes read are the store's
	for _, f := range entries {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		seen = seen || bytes.Contains(b, []byte("Circle"))
		for _, sec := range secrets {
			if bytes.Contains(b, []byte(sec)) {
				t.Errorf("%s holds %q", filepath.Base(f), sec)
			}
		}
	}
	if !seen {
		t.Fatalf("no store file holds the group's name: %v", entries)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	checkColumns(t, db, `SELECT name FROM sqlite_master WHERE type = 'table'`, "Circle", secrets)
}

// stopApp shuts a down now (its cleanup's Shutdown then finds it stopped).
func stopApp(t *testing.T, a *App) {
	t.Helper()
	ctx, cancel := testContext(10 * time.Second)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// checkColumns reads every row of every table that tables lists and fails
// if a cell holds a secret, or if no cell holds present (the check would
// have seen nothing).
func checkColumns(t *testing.T, db *sql.DB, tables, present string, secrets []string) {
	t.Helper()
	ctx, cancel := testContext(10 * time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, tables)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	rows.Close()
	if len(names) == 0 {
		t.Fatal("no tables")
	}
	seen := false
	for _, table := range names {
		rows, err := db.QueryContext(ctx, `SELECT * FROM "`+table+`"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				text := fmt.Sprint(v)
				if b, ok := v.([]byte); ok {
					text = string(b)
				}
				seen = seen || strings.Contains(text, present)
				for _, sec := range secrets {
					if strings.Contains(text, sec) {
						t.Errorf("%s.%s holds %q", table, cols[i], sec)
					}
				}
			}
		}
		rows.Close()
	}
	if !seen {
		t.Fatalf("no cell of %v holds %q: the check saw nothing", names, present)
	}
}

// With the store in PostgreSQL, stopped during a session: failed writes
// are counted, the meeting goes on (the callers hear each other), and once
// PostgreSQL is back every record is stored exactly once.
func TestE2EAttendancePostgresRestart(t *testing.T) {
	t.Parallel()
	pg := testkit.Postgres(t)
	y := strings.Replace(testYAML("", attGroups), "attendance:\n", "attendance:\n  dsn: "+strconv.Quote(pg.DSN())+"\n", 1)
	a, logs := startApp(t, y)
	errorsNow := func() float64 {
		_, body := get(t, a.AdminHandler(""), "GET", "/metrics", "")
		return metricValue(t, body, "groupbridge_attendance_write_errors_total")
	}
	if n := errorsNow(); n != 0 {
		t.Fatalf("%v write errors before anything happened", n)
	}
	pa := dial(t, a, softphone.Config{Caller: attCaller(11)})
	pb := dial(t, a, softphone.Config{Caller: attCaller(12)})
	enter(t, logs, pa, attMemberPIN, softphone.DigitRFC4733, 1)
	enter(t, logs, pb, attMemberPIN, softphone.DigitRFC4733, 2)

	pg.Stop()
	// A session of another group ends while the database is down, and
	// wrong PINs are counted: their writes fail.
	po := dial(t, a, softphone.Config{Caller: attCaller(13)})
	enter(t, logs, po, attOtherPIN, softphone.DigitRFC4733, 3)
	hangUp(t, po)
	wrongPINs(t, a, logs, attCaller(14), "groupbridge", 1)
	deadline := time.Now().Add(30 * time.Second)
	for errorsNow() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no write error counted with PostgreSQL down; log:\n%s", logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	hearEachOther(t, pa, pb) // the meeting goes on
	pg.Start()

	hangUp(t, pa)
	hangUp(t, pb)
	waitSessions(t, a, attendance.Filter{}, 2, 60*time.Second)
	time.Sleep(2 * time.Second) // a duplicate write would land by now
	s := waitSessions(t, a, attendance.Filter{}, 2, 5*time.Second)
	byGroup := map[string]int{}
	for _, r := range s {
		byGroup[r.Group]++
		if r.Group == "Circle" && (r.Peak != 2 || r.Joins != 2 || r.Distinct != 2) {
			t.Errorf("Circle's session %+v: want peak 2, 2 joins, 2 distinct", r)
		}
	}
	if len(s) != 2 || byGroup["Circle"] != 1 || byGroup["Other"] != 1 {
		t.Errorf("sessions by group %v, want Circle and Other once each", byGroup)
	}
	if d := days(t, a); d[""].WrongPINs != 3 {
		t.Errorf("access number's wrong PINs %+v, want 3", d[""])
	}

	var secrets []string
	for n := 11; n <= 14; n++ {
		num := callerid.Normalize(attCaller(n))
		secrets = append(secrets, attCaller(n), strings.TrimPrefix(num, "+"), a.flow.IdentityOf(num))
	}
	secrets = append(secrets, attMemberPIN, attFacPIN, attOtherPIN, "11112222", "33334444", "55556666")
	db, err := sql.Open("pgx", pg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	checkColumns(t, db, `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`, "Circle", secrets)
}

// With PostgreSQL down at start the bridge starts and takes calls; reads
// say the store is not reachable yet, failed attempts are counted, and the
// session is stored once PostgreSQL is started.
func TestE2EAttendancePostgresDownAtStart(t *testing.T) {
	t.Parallel()
	pg := testkit.Postgres(t)
	pg.Stop()
	y := strings.Replace(testYAML("", attGroups), "attendance:\n", "attendance:\n  dsn: "+strconv.Quote(pg.DSN())+"\n", 1)
	a, logs := startApp(t, y)
	if n := logs.count(t, "attendance store not reachable; starting without it, keeping records until it answers"); n != 1 {
		t.Errorf("%d warnings that the store is not reachable, want 1; log:\n%s", n, logs.String())
	}
	ctx, cancel := testContext(5 * time.Second)
	defer cancel()
	if _, err := a.Attendance().Sessions(ctx, attendance.Filter{}); !errors.Is(err, store.ErrNotReady) {
		t.Errorf("reading with PostgreSQL down: %v", err)
	}

	p := dial(t, a, softphone.Config{Caller: attCaller(31)})
	enter(t, logs, p, attMemberPIN, softphone.DigitRFC4733, 1)
	joined := time.Now()
	time.Sleep(1500 * time.Millisecond)
	if lv := rmsOf(p.Media().Received(joined)); lv < -40 {
		t.Errorf("the caller hears %.1f dBFS after joining, want its join (above -40)", lv)
	}
	hangUp(t, p)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, body := get(t, a.AdminHandler(""), "GET", "/metrics", "")
		if metricValue(t, body, "groupbridge_attendance_write_errors_total") > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no write error counted with PostgreSQL down; log:\n%s", logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}

	pg.Start()
	s := waitSessions(t, a, attendance.Filter{}, 1, 60*time.Second)
	if len(s) != 1 || s[0].Group != "Circle" || s[0].Peak != 1 || s[0].Joins != 1 {
		t.Errorf("sessions %+v, want Circle's, peak 1, one join", s)
	}
	if strings.Contains(logs.String(), pg.Password()) {
		t.Error("the log shows the DSN's password")
	}
}

// An attendance store that cannot be opened stops the start with an error
// naming the key; a DSN's password never shows.
func TestAttendanceStoreUnopenable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, dsn, want, hidden string
	}{
		{"path under a file", filepath.Join(file, "attendance.db"), "", "attendance.path", ""},
		// (No server at the DSN is no error: TestE2EAttendancePostgresDownAtStart.)
		{"a dsn the driver refuses", "", "postgres://bridge:s3cretPa55@127.0.0.1:99999/attendance", "attendance.dsn", "s3cretPa55"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte(testYAML("", "")))
			if err != nil {
				t.Fatal(err)
			}
			if tt.path != "" {
				cfg.Attendance.Path = tt.path
			}
			cfg.Attendance.DSN = tt.dsn
			a, err := New(cfg, Options{})
			if err == nil {
				ctx, cancel := testContext(5 * time.Second)
				defer cancel()
				_ = a.Shutdown(ctx)
				t.Fatal("the bridge started without its attendance store")
			}
			t.Logf("New: %v", err)
			if !strings.HasPrefix(err.Error(), tt.want+": ") || strings.Count(err.Error(), tt.want) != 1 || (tt.hidden != "" && strings.Contains(err.Error(), tt.hidden)) {
				t.Errorf("error %q: want it to begin with %s, name it once and never show %q", err, tt.want, tt.hidden)
			}
		})
	}
}

// A stop that ends a session records it: the rooms close before the store
// does, and what is queued is written before the stop returns.
func TestE2EStopRecordsSessions(t *testing.T) {
	t.Parallel()
	a, logs := startApp(t, testYAML("", attGroups))
	pa := dial(t, a, softphone.Config{Caller: attCaller(21)})
	pb := dial(t, a, softphone.Config{Caller: attCaller(22)})
	enter(t, logs, pa, attMemberPIN, softphone.DigitRFC4733, 1)
	enter(t, logs, pb, attFacPIN, softphone.DigitRFC4733, 2)
	time.Sleep(time.Second)
	stopApp(t, a)

	ctx, cancel := testContext(10 * time.Second)
	defer cancel()
	st, err := store.Open(ctx, store.Options{Path: a.cfg.Attendance.Path, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s, err := st.Sessions(ctx, attendance.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 1 || s[0].Group != "Circle" || s[0].Peak != 2 || s[0].FacilitatorTime < time.Second || s[0].MemberTime < time.Second {
		t.Fatalf("stored %+v, want Circle's session with a facilitator and a member of a second or more", s)
	}
}
