package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/attendance"
	"github.com/groupbridge/groupbridge/internal/testkit"
)

// backend is one kind of store a test runs against: options for a fresh,
// empty store of it.
type backend struct {
	name  string
	fresh func(t *testing.T) Options
}

// backends returns SQLite and a real PostgreSQL (one server for the
// calling test, a new database for each fresh store).
func backends(t *testing.T) []backend {
	pg := testkit.Postgres(t)
	n := 0
	return []backend{
		{"sqlite", func(t *testing.T) Options {
			return Options{Path: filepath.Join(t.TempDir(), "data", "attendance.db")}
		}},
		{"postgres", func(t *testing.T) Options {
			n++
			return Options{DSN: createDB(t, pg, fmt.Sprintf("gb%d", n))}
		}},
	}
}

// createDB makes database name on pg and returns its DSN.
func createDB(t *testing.T, pg *testkit.PG, name string) string {
	t.Helper()
	db, err := sql.Open("pgx", pg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("%v\n%s", err, pg.Log())
	}
	u, _ := url.Parse(pg.DSN())
	u.Path = "/" + name
	return u.String()
}

func open(t *testing.T, o Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// local is an instant of the bridge's local time.
func local(day, h, m int) time.Time { return time.Date(2026, 3, day, h, m, 0, 0, time.Local) }

func session(id, group string, start time.Time, distinct int) attendance.Session {
	return attendance.Session{
		ID: id, Group: group, Start: start, End: start.Add(90 * time.Minute),
		Peak: distinct, Distinct: distinct, Joins: distinct + 1,
		FacilitatorTime: 90 * time.Minute, MemberTime: time.Duration(distinct) * 80 * time.Minute,
		MedianStay: 81*time.Minute + 1500*time.Millisecond, LongestStay: 90 * time.Minute,
		TurnedAway: [4]int{1, 0, 2, 3},
	}
}

// write stores ss and days through a Writer and closes it.
func write(t *testing.T, s *Store, ss []attendance.Session, wrongPINs map[string][]time.Time) {
	t.Helper()
	w := s.NewWriter(WriterOptions{OnError: func() { t.Error("a write failed") }})
	for _, x := range ss {
		w.Session(x)
	}
	for g, ats := range wrongPINs {
		for _, at := range ats {
			w.WrongPIN(g, at)
		}
	}
	w.Closed("Tuesday", local(3, 12, 0))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func ids(ss []attendance.Session) []string {
	out := []string{}
	for _, s := range ss {
		out = append(out, s.ID)
	}
	return out
}

func TestRoundTripAndFilters(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := open(t, b.fresh(t))
			tue := session("a1", "Tuesday", local(3, 19, 0), 7)
			tue.SlotStart, tue.SlotEnd = local(3, 19, 0), local(3, 20, 30)
			thu := session("b2", "Thursday", local(5, 12, 0), 2)
			late := session("c3", "Tuesday", local(10, 19, 0), 4)
			write(t, s, []attendance.Session{late, tue, thu}, map[string][]time.Time{
				"":        {local(3, 8, 0), local(3, 23, 59), local(4, 0, 0)},
				"Tuesday": {local(3, 19, 5)},
			})

			ctx := context.Background()
			all, err := s.Sessions(ctx, attendance.Filter{})
			if err != nil {
				t.Fatal(err)
			}
			// Oldest first, every field back (times as the same instants).
			want := []attendance.Session{tue, thu, late}
			if len(all) != 3 {
				t.Fatalf("sessions %v", ids(all))
			}
			for i := range want {
				g, w := all[i], want[i]
				if !g.Start.Equal(w.Start) || !g.End.Equal(w.End) || !g.SlotStart.Equal(w.SlotStart) || !g.SlotEnd.Equal(w.SlotEnd) {
					t.Errorf("%s: times %v-%v slot %v-%v, want %v-%v slot %v-%v", w.ID, g.Start, g.End, g.SlotStart, g.SlotEnd, w.Start, w.End, w.SlotStart, w.SlotEnd)
				}
				g.Start, g.End, g.SlotStart, g.SlotEnd = w.Start, w.End, w.SlotStart, w.SlotEnd
				if !reflect.DeepEqual(g, w) {
					t.Errorf("read back\n %+v\nwant\n %+v", g, w)
				}
			}
			if !all[1].SlotStart.IsZero() {
				t.Errorf("a session without a slot reads one: %v", all[1].SlotStart)
			}

			sessionTests := []struct {
				name string
				f    attendance.Filter
				want []string
			}{
				{"group, any case", attendance.Filter{Group: "tuesday"}, []string{"a1", "c3"}},
				{"no such group", attendance.Filter{Group: "Friday"}, []string{}},
				{"since, inclusive", attendance.Filter{Since: local(5, 12, 0)}, []string{"b2", "c3"}},
				{"until, exclusive", attendance.Filter{Until: local(5, 12, 0)}, []string{"a1"}},
				{"range and group", attendance.Filter{Group: "Tuesday", Since: local(4, 0, 0), Until: local(11, 0, 0)}, []string{"c3"}},
			}
			for _, tc := range sessionTests {
				got, err := s.Sessions(ctx, tc.f)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(ids(got), tc.want) {
					t.Errorf("%s: %v, want %v", tc.name, ids(got), tc.want)
				}
			}

			dayTests := []struct {
				name string
				f    attendance.Filter
				want []attendance.Day
			}{
				{"all", attendance.Filter{}, []attendance.Day{
					{Day: "2026-03-03", Group: "", WrongPINs: 2},
					{Day: "2026-03-03", Group: "Tuesday", WrongPINs: 1, Closed: 1},
					{Day: "2026-03-04", Group: "", WrongPINs: 1},
				}},
				{"group", attendance.Filter{Group: "TUESDAY"}, []attendance.Day{{Day: "2026-03-03", Group: "Tuesday", WrongPINs: 1, Closed: 1}}},
				{"from a midnight", attendance.Filter{Since: local(4, 0, 0)}, []attendance.Day{{Day: "2026-03-04", Group: "", WrongPINs: 1}}},
				{"from mid-day: the next day", attendance.Filter{Since: local(3, 8, 0)}, []attendance.Day{{Day: "2026-03-04", Group: "", WrongPINs: 1}}},
				{"until a midnight", attendance.Filter{Until: local(4, 0, 0)}, []attendance.Day{
					{Day: "2026-03-03", Group: "", WrongPINs: 2},
					{Day: "2026-03-03", Group: "Tuesday", WrongPINs: 1, Closed: 1},
				}},
			}
			for _, tc := range dayTests {
				got, err := s.Days(ctx, tc.f)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("days %s: %+v, want %+v", tc.name, got, tc.want)
				}
			}

			// A second write of the same session stores it once; day
			// counts add up.
			write(t, s, []attendance.Session{tue}, map[string][]time.Time{"": {local(3, 9, 0)}})
			if got, _ := s.Sessions(ctx, attendance.Filter{}); len(got) != 3 {
				t.Errorf("after writing a1 again: %v", ids(got))
			}
			if got, _ := s.Days(ctx, attendance.Filter{Until: local(4, 0, 0)}); len(got) != 2 || got[0].WrongPINs != 3 || got[1].Closed != 2 {
				t.Errorf("days after a second write: %+v", got)
			}
		})
	}
}

func TestMigrations(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			o := b.fresh(t)
			ctx := context.Background()
			s := open(t, o)
			write(t, s, []attendance.Session{session("m1", "G", local(3, 19, 0), 5)}, nil)
			s.Close()

			// Opening again migrates nothing and keeps the rows.
			s = open(t, o)
			var rows, max int
			if err := s.db.QueryRow(`SELECT COUNT(*), MAX(version) FROM schema_version`).Scan(&rows, &max); err != nil {
				t.Fatal(err)
			}
			if rows != SchemaVersion || max != SchemaVersion {
				t.Errorf("schema_version has %d rows up to %d, want %d", rows, max, SchemaVersion)
			}
			if got, _ := s.Sessions(ctx, attendance.Filter{}); len(got) != 1 {
				t.Errorf("after a reopen: %v", ids(got))
			}
			ro := o
			ro.ReadOnly = true
			r := open(t, ro)
			if got, err := r.Sessions(ctx, attendance.Filter{}); err != nil || len(got) != 1 {
				t.Errorf("read-only: %v %v", ids(got), err)
			}
			// The connection itself refuses to write.
			if err := r.write(ctx, []attendance.Session{session("m2", "G", local(3, 19, 0), 5)}, nil); err == nil || !strings.Contains(err.Error(), "read") {
				t.Errorf("a read-only store wrote: %v", err)
			}
			r.Close()

			// A newer groupbridge's store is refused, read-write or not.
			if _, err := s.db.Exec(s.dialect.q(`INSERT INTO schema_version (version) VALUES (?)`), SchemaVersion+1); err != nil {
				t.Fatal(err)
			}
			for _, readOnly := range []bool{false, true} {
				o.ReadOnly = readOnly
				_, err := Open(ctx, o)
				if !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), fmt.Sprintf("version %d", SchemaVersion+1)) {
					t.Errorf("read-only %v: a newer schema: %v", readOnly, err)
				}
			}
			// And read-only, an older one (the bridge migrates it).
			if _, err := s.db.Exec(`DELETE FROM schema_version`); err != nil {
				t.Fatal(err)
			}
			o.ReadOnly = true
			if _, err := Open(ctx, o); !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), "start the bridge once") {
				t.Errorf("read-only, an older schema: %v", err)
			}
		})
	}
}

func TestPrune(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			clk := testkit.NewManualClock()
			now := clk.Now()
			o := b.fresh(t)
			o.Clock, o.Keep = clk, 30
			s := open(t, o)
			old := session("old", "G", now.AddDate(0, 0, -31).Add(-2*time.Hour), 5)
			edge := session("edge", "G", now.AddDate(0, 0, -30).Add(-time.Hour), 5) // ends 30 days ago plus 30 min
			young := session("young", "G", now.AddDate(0, 0, -29), 5)
			write(t, s, []attendance.Session{old, edge, young}, map[string][]time.Time{
				"G": {now.AddDate(0, 0, -40), now.AddDate(0, 0, -30), now.AddDate(0, 0, -1)},
			})
			s.Close()

			// At open.
			s = open(t, o)
			ctx := context.Background()
			got, _ := s.Sessions(ctx, attendance.Filter{})
			if !reflect.DeepEqual(ids(got), []string{"edge", "young"}) {
				t.Errorf("after open: %v", ids(got))
			}
			days, _ := s.Days(ctx, attendance.Filter{Until: now})
			wantDays := []string{now.AddDate(0, 0, -30).Local().Format(dayLayout), now.AddDate(0, 0, -1).Local().Format(dayLayout)}
			if len(days) != 2 || days[0].Day != wantDays[0] || days[1].Day != wantDays[1] {
				t.Errorf("days after open: %+v, want %v", days, wantDays)
			}

			// Daily, by the Writer: a day on, edge is out.
			w := s.NewWriter(WriterOptions{})
			defer w.Close(context.Background())
			clk.Advance(pruneEvery)
			waitFor(t, "the daily prune", func() bool {
				got, _ := s.Sessions(ctx, attendance.Filter{})
				return reflect.DeepEqual(ids(got), []string{"young"})
			})
		})
	}
}

// waitFor polls cond for up to 20 s of real time.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSQLiteFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "sub")
	path := filepath.Join(dir, "attendance.db")
	s := open(t, Options{Path: path})
	write(t, s, []attendance.Session{session("f1", "G", local(3, 19, 0), 5)}, nil)
	for p, want := range map[string]os.FileMode{dir: 0o700, filepath.Dir(dir): 0o700, path: 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %04o, want %04o", p, fi.Mode().Perm(), want)
		}
	}
	var mode string
	if err := s.db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "delete" {
		t.Errorf("journal_mode %q %v, want delete", mode, err)
	}
	if s.Where() != path {
		t.Errorf("Where() = %q", s.Where())
	}
}

// listing is a directory's names with their sizes, modes and mtimes.
func listing(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		out[p] = fmt.Sprint(fi.Size(), fi.Mode(), fi.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestReadOnlySQLite: reading never creates or changes a file, whether
// the store is there or not.
func TestReadOnlySQLite(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "attendance.db")
	before := listing(t, dir)
	_, err := Open(ctx, Options{Path: path, ReadOnly: true})
	if !errors.Is(err, ErrNoStore) || !strings.Contains(err.Error(), path) {
		t.Errorf("no store: %v", err)
	}
	// Not even its directory.
	if _, err := Open(ctx, Options{Path: filepath.Join(dir, "none", "attendance.db"), ReadOnly: true}); !errors.Is(err, ErrNoStore) {
		t.Errorf("no directory: %v", err)
	}
	if after := listing(t, dir); !reflect.DeepEqual(after, before) {
		t.Errorf("a read-only open of nothing changed %v to %v", before, after)
	}

	s := open(t, Options{Path: path})
	write(t, s, []attendance.Session{session("r1", "G", local(3, 19, 0), 5)}, map[string][]time.Time{"": {local(3, 9, 0)}})
	s.Close()
	// An empty file (the bridge made it, then failed) is no store either.
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, Options{Path: empty, ReadOnly: true}); !errors.Is(err, ErrNoStore) {
		t.Errorf("an empty file: %v", err)
	}

	time.Sleep(20 * time.Millisecond) // a change would show in the mtimes
	before = listing(t, dir)
	r := open(t, Options{Path: path, ReadOnly: true})
	got, err := r.Sessions(ctx, attendance.Filter{})
	if err != nil || len(got) != 1 {
		t.Fatalf("read %v %v", ids(got), err)
	}
	if _, err := r.Days(ctx, attendance.Filter{}); err != nil {
		t.Fatal(err)
	}
	if err := r.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	// The connection refuses writes itself.
	if err := r.write(ctx, []attendance.Session{session("r2", "G", local(3, 19, 0), 5)}, nil); err == nil {
		t.Error("a read-only store wrote")
	}
	r.Close()
	if after := listing(t, dir); !reflect.DeepEqual(after, before) {
		t.Errorf("reading changed the directory:\n%v\n%v", before, after)
	}
}

// TestDSNNeverShown opens PostgreSQL with a wrong password and with a DSN
// the driver cannot parse: neither error nor log shows the password or
// the DSN.
func TestDSNNeverShown(t *testing.T) {
	pg := testkit.Postgres(t)
	u, _ := url.Parse(pg.DSN())
	const secret = "Zq8-wrong-pw-4471"
	u.User = url.UserPassword("postgres", secret)
	wrong := u.String()
	ctx := context.Background()
	var log testkit.LogBuffer
	_, err := Open(ctx, Options{DSN: wrong, Log: slog.New(slog.NewTextHandler(&log, nil))})
	if err == nil || !strings.Contains(err.Error(), "password authentication failed") {
		t.Fatalf("a wrong password: %v", err)
	}
	badPort := "postgres://postgres:" + secret + "@127.0.0.1:99999/postgres"
	_, err2 := Open(ctx, Options{DSN: badPort})
	if err2 == nil {
		t.Fatal("a DSN with port 99999 opened")
	}
	for _, e := range []error{err, err2} {
		for _, leak := range []string{secret, wrong, badPort, url.QueryEscape(secret), "postgres://"} {
			if strings.Contains(e.Error(), leak) {
				t.Errorf("the error shows %q: %v", leak, e)
			}
		}
	}
	if strings.Contains(log.String(), secret) {
		t.Errorf("the log shows the password: %s", log.String())
	}
	t.Logf("errors as shown: %v; %v", err, err2)
}

func TestRedactor(t *testing.T) {
	dsn := "postgres://gb:p%40ss%2Fw0rd@db.example.org/gb?sslpassword=keyphrase9"
	r := newRedactor(dsn)
	tests := []struct{ in, leak string }{
		{"cannot parse `" + dsn + "`: bad", "p%40ss"},
		{"auth for p@ss/w0rd failed", "p@ss/w0rd"},
		{"escaped p%40ss%2Fw0rd here", "w0rd"},
		{"key keyphrase9", "keyphrase9"},
	}
	for _, tc := range tests {
		got := r.err(errors.New(tc.in)).Error()
		if strings.Contains(got, tc.leak) || !strings.Contains(got, "[redacted]") {
			t.Errorf("%q -> %q", tc.in, got)
		}
	}
	if got := r.err(fmt.Errorf("write: %w", context.DeadlineExceeded)); !errors.Is(got, context.DeadlineExceeded) {
		t.Errorf("%v lost its context error", got)
	}
	if r.err(nil) != nil {
		t.Error("nil became an error")
	}
}

// TestWriterSurvivesPostgresRestart: with PostgreSQL stopped the Writer
// takes records at once, counts its failures and keeps the rows; once the
// server is back every record is there exactly once.
func TestWriterSurvivesPostgresRestart(t *testing.T) {
	pg := testkit.Postgres(t)
	clk := testkit.NewManualClock()
	var log testkit.LogBuffer
	s := open(t, Options{DSN: createDB(t, pg, "restart"), Clock: clk, Log: slog.New(slog.NewTextHandler(&log, nil))})
	var errs atomic.Int64
	w := s.NewWriter(WriterOptions{OnError: func() { errs.Add(1) }})
	ctx := context.Background()
	count := func() int {
		got, err := s.Sessions(ctx, attendance.Filter{})
		if err != nil {
			return -1
		}
		return len(got)
	}

	w.Session(session("before", "G", local(3, 19, 0), 5))
	waitFor(t, "the first session", func() bool { return count() == 1 })

	pg.Stop()
	start := time.Now()
	for i := range 20 {
		w.Session(session(fmt.Sprintf("during-%02d", i), "G", local(3, 20, i), 5))
		w.WrongPIN("G", local(3, 20, i))
		w.Closed("", local(3, 20, i))
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("60 records took %v with the database down", d)
	}
	waitFor(t, "a failed write", func() bool { return errs.Load() > 0 })
	// Retries on the clock, and each failure counted.
	clk.Advance(retryFirst)
	waitFor(t, "a second failed write", func() bool { return errs.Load() > 1 })

	pg.Start()
	waitFor(t, "the sessions written after the restart", func() bool {
		clk.Advance(retryMax)
		return count() == 21
	})
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Sessions(ctx, attendance.Filter{})
	seen := map[string]int{}
	for _, x := range got {
		seen[x.ID]++
	}
	if len(seen) != 21 || seen["before"] != 1 || seen["during-19"] != 1 {
		t.Errorf("sessions %v", seen)
	}
	days, _ := s.Days(ctx, attendance.Filter{})
	want := []attendance.Day{{Day: "2026-03-03", Group: "", Closed: 20}, {Day: "2026-03-03", Group: "G", WrongPINs: 20}}
	if !reflect.DeepEqual(days, want) {
		t.Errorf("days %+v, want %+v", days, want)
	}
	if !strings.Contains(log.String(), "attendance not written; keeping it") || !strings.Contains(log.String(), "attendance written again") {
		t.Errorf("log:\n%s", log.String())
	}
	if strings.Contains(log.String(), pg.Password()) {
		t.Errorf("the log shows the password:\n%s", log.String())
	}
}

// TestWriterQueueAndClose: with the database gone, records beyond
// MaxQueue are refused and counted, nothing blocks, and Close gives up
// when its context ends, saying how many records were not written.
func TestWriterQueueAndClose(t *testing.T) {
	clk := testkit.NewManualClock()
	var log testkit.LogBuffer
	s := open(t, Options{Path: filepath.Join(t.TempDir(), "a.db"), Clock: clk, Log: slog.New(slog.NewTextHandler(&log, nil))})
	s.db.Close() // every write fails from now on
	var errs atomic.Int64
	w := s.NewWriter(WriterOptions{OnError: func() { errs.Add(1) }, MaxQueue: 3})
	for i := range 5 {
		w.Session(session(fmt.Sprint(i), "G", local(3, 19, i), 5))
	}
	waitFor(t, "failures", func() bool { return errs.Load() >= 3 }) // 2 refused, at least 1 failed write
	if !strings.Contains(log.String(), "attendance queue full") {
		t.Errorf("log:\n%s", log.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := w.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "3 records not written") {
		t.Errorf("Close: %v", err)
	}
	if !strings.Contains(log.String(), "attendance not written at stop") {
		t.Errorf("log:\n%s", log.String())
	}
	// After Close: dropped, never blocking.
	w.Session(session("late", "G", local(3, 23, 0), 5))
	if err := w.Close(context.Background()); err == nil {
		t.Error("a second Close forgot the loss")
	}
}

// TestWriterCloseFlushes: Close writes everything queued.
func TestWriterCloseFlushes(t *testing.T) {
	s := open(t, Options{Path: filepath.Join(t.TempDir(), "a.db")})
	w := s.NewWriter(WriterOptions{})
	for i := range 1200 { // more than one batch
		w.Session(session(fmt.Sprintf("s%04d", i), "G", local(3, 0, 0).Add(time.Duration(i)*time.Minute), 5))
		w.WrongPIN(fmt.Sprint("g", i%600), local(3, 12, 0))
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Sessions(context.Background(), attendance.Filter{})
	days, _ := s.Days(context.Background(), attendance.Filter{})
	if len(got) != 1200 || len(days) != 600 || days[0].WrongPINs != 2 {
		t.Errorf("%d sessions, %d days (%+v)", len(got), len(days), days[:1])
	}
}
