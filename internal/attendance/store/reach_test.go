package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"reflect"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/groupbridge/groupbridge/internal/attendance"
	"github.com/groupbridge/groupbridge/internal/testkit"
)

func TestUnreachable(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"refused", fmt.Errorf("failed to connect: %w", refused), true},
		{"timeout", fmt.Errorf("ping: %w", context.DeadlineExceeded), true},
		{"cut", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{"starting up", &pgconn.PgError{Code: "57P03"}, true},
		{"shutting down", &pgconn.PgError{Code: "57P01"}, true},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"DNS down", &net.DNSError{Err: "server misbehaving", Name: "db", IsTemporary: true}, true},
		{"wrong password", &pgconn.PgError{Code: "28P01"}, false},
		{"no such database", &pgconn.PgError{Code: "3D000"}, false},
		{"no such host", &net.DNSError{Err: "no such host", Name: "db", IsNotFound: true}, false},
		{"newer schema", fmt.Errorf("%w: it has version 9", ErrSchema), false},
		{"other", errors.New("cannot parse"), false},
	}
	for _, tc := range tests {
		if got := unreachable(tc.err); got != tc.want {
			t.Errorf("%s (%v): %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

// TestOpenWithPostgresDown: read-write, a PostgreSQL server that is down
// at open gives a store at once, not ready: reads say so, the Writer takes
// records, counts its failed attempts on the clock's backoff, and writes
// every record exactly once when the server is started. A missing
// database and a read-only open still fail.
func TestOpenWithPostgresDown(t *testing.T) {
	pg := testkit.Postgres(t)
	dsn := createDB(t, pg, "later")
	ctx := context.Background()
	u, _ := url.Parse(dsn)
	u.Path = "/nosuch"
	if _, err := Open(ctx, Options{DSN: u.String()}); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("a missing database: %v", err)
	}
	pg.Stop()

	if _, err := Open(ctx, Options{DSN: dsn, ReadOnly: true}); err == nil {
		t.Error("read-only, a server that is down opened")
	}
	clk := testkit.NewManualClock()
	var log testkit.LogBuffer
	start := time.Now()
	s, err := Open(ctx, Options{DSN: dsn, Clock: clk, Log: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatalf("with the server down: %v", err)
	}
	defer s.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Open took %v with the server down", d)
	}
	if s.Ready() {
		t.Error("ready with the server down")
	}
	if !strings.Contains(log.String(), "attendance store not reachable; starting without it") {
		t.Errorf("log:\n%s", log.String())
	}
	if _, err := s.Sessions(ctx, attendance.Filter{}); !errors.Is(err, ErrNotReady) {
		t.Errorf("Sessions: %v", err)
	}
	if _, err := s.Days(ctx, attendance.Filter{}); !errors.Is(err, ErrNotReady) {
		t.Errorf("Days: %v", err)
	}

	var errs atomic.Int64
	w := s.NewWriter(WriterOptions{OnError: func() { errs.Add(1) }})
	start = time.Now()
	for i := range 10 {
		w.Session(session(fmt.Sprintf("s%02d", i), "G", local(3, 19, i), 5))
		w.WrongPIN("G", local(3, 19, i))
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("20 records took %v with the server down", d)
	}
	waitFor(t, "a failed attempt", func() bool { return errs.Load() > 0 })
	// The next attempt waits for the clock.
	n := errs.Load()
	time.Sleep(100 * time.Millisecond)
	if errs.Load() != n {
		t.Errorf("%d attempts before the clock moved, want %d", errs.Load(), n)
	}
	clk.Advance(retryFirst)
	waitFor(t, "a second failed attempt", func() bool { return errs.Load() > n })

	pg.Start()
	waitFor(t, "the store ready", func() bool {
		clk.Advance(retryMax)
		return s.Ready()
	})
	count := func() int {
		got, err := s.Sessions(ctx, attendance.Filter{})
		if err != nil {
			return -1
		}
		return len(got)
	}
	waitFor(t, "the sessions", func() bool { return count() == 10 })
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Sessions(ctx, attendance.Filter{})
	if want := []string{"s00", "s01", "s02", "s03", "s04", "s05", "s06", "s07", "s08", "s09"}; !reflect.DeepEqual(ids(got), want) {
		t.Errorf("sessions %v, want %v", ids(got), want)
	}
	days, err := s.Days(ctx, attendance.Filter{})
	if want := []attendance.Day{{Day: "2026-03-03", Group: "G", WrongPINs: 10}}; err != nil || !reflect.DeepEqual(days, want) {
		t.Errorf("days %+v (%v), want %+v", days, err, want)
	}
	for _, want := range []string{"attendance store not reachable; keeping records", "attendance store reachable now"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, log.String())
		}
	}
	if strings.Contains(log.String(), pg.Password()) || strings.Contains(log.String(), "postgres://") {
		t.Errorf("the log shows the DSN:\n%s", log.String())
	}
}
