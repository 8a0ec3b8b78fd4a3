// Package store keeps attendance records in SQL: an SQLite file by default
// (modernc.org/sqlite, pure Go, so the binary stays static) or PostgreSQL
// (pgx), the database several nodes can share. Both go through
// database/sql with one schema, one set of versioned migrations
// (schema.go) and one set of queries (docs/DECISIONS.md, D21).
//
// A Store opened read-write migrates the schema and prunes old rows at
// open; its Writer (writer.go) takes records from rooms without ever
// blocking them. A PostgreSQL server that does not answer at open
// (reach.go) does not stop the bridge: the store opens not ready, its
// Writer connects when the server is back, and reads fail until then.
// A Store opened read-only (`groupbridge attendance`) never creates or
// changes a file: SQLite is opened with mode=ro and PostgreSQL sessions
// are read-only. Errors never carry the DSN or its
// password (redact.go).
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
	"strings"
	"sync/atomic"
	"time"

	// The database/sql drivers: "pgx" and "sqlite".
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/groupbridge/groupbridge/internal/attendance"
	"github.com/groupbridge/groupbridge/internal/wallclock"
)

// DefaultKeep is how many days records are kept when Options.Keep is 0.
const DefaultKeep = 400

// busyTimeout is how long an SQLite statement waits for another process's
// lock (the CLI reading while the bridge writes) before failing.
const busyTimeout = 5 * time.Second

// pingLimit bounds reaching the database: a PostgreSQL server that does
// not answer holds up neither the bridge's start nor a Writer's attempt
// for longer.
const pingLimit = 5 * time.Second

// Errors a caller tells apart.
var (
	// ErrNoStore is a read-only open of a store that does not exist yet
	// (no file, or a database without the schema).
	ErrNoStore = errors.New("no attendance recorded yet")
	// ErrSchema is a store whose schema version this groupbridge does not
	// read: newer (or, read-only, older) than SchemaVersion.
	ErrSchema = errors.New("attendance store schema")
	// ErrNotReady is a read of a store whose PostgreSQL server did not
	// answer yet (Open returned it not ready).
	ErrNotReady = attendance.ErrNotReady
)

// Options say which store to open and how.
type Options struct {
	// Path is the SQLite file, used when DSN is "". Read-write, its
	// directory is made (0700) and the file created (0600).
	Path string
	// DSN is a postgres:// URL; when set it wins over Path. A secret.
	DSN string
	// ReadOnly opens for reading only: no migration, no pruning, no file
	// made or changed; a schema of another version is refused.
	ReadOnly bool
	// Keep is how many days records are kept (DefaultKeep when 0).
	Keep int
	// Clock is where pruning and the Writer's retries take time from.
	Clock wallclock.Clock
	// Log is where the Writer reports failures; nil discards.
	Log *slog.Logger
}

// Store is an open attendance store; it implements attendance.Reader.
type Store struct {
	db      *sql.DB
	dialect dialect
	where   string // the store as messages name it, never with the DSN's secrets
	ro      bool
	keep    int
	clock   wallclock.Clock
	log     *slog.Logger
	redact  redactor
	// ready is set once prepare succeeded: at Open, or later by the
	// Writer (connect) when Open found PostgreSQL unreachable.
	ready atomic.Bool
}

var _ attendance.Reader = (*Store)(nil)

// Open opens the store o names. Read-write it creates and migrates the
// schema and prunes rows older than Keep; read-only it refuses a missing
// store with ErrNoStore and another schema version with ErrSchema.
//
// Read-write on PostgreSQL, a server that cannot be reached (refused,
// timed out, starting or stopping) is not an error: Open logs a warning
// and returns the store not ready (see Ready), which its Writer connects
// later. Anything an operator must fix (a wrong password, a missing
// database, a newer schema) fails Open, as does any error of SQLite or of
// a read-only open.
func Open(ctx context.Context, o Options) (*Store, error) {
	s := &Store{ro: o.ReadOnly, keep: o.Keep, clock: wallclock.Or(o.Clock), log: o.Log, redact: newRedactor(o.DSN)}
	if s.keep <= 0 {
		s.keep = DefaultKeep
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if o.DSN != "" {
		err = s.openPostgres(o.DSN)
	} else {
		err = s.openSQLite(o.Path)
	}
	if err != nil {
		return nil, s.redact.err(err)
	}
	if err := s.prepare(ctx); err != nil {
		later := !s.ro && s.dialect == postgres && unreachable(err) // before redact, which hides the cause
		err = s.redact.err(fmt.Errorf("%s: %w", s.where, err))
		if !later {
			s.db.Close()
			return nil, err
		}
		s.log.Warn("attendance store not reachable; starting without it, keeping records until it answers",
			"store", s.where, "error", err.Error())
		return s, nil
	}
	s.ready.Store(true)
	return s, nil
}

// Ready reports whether the store has been reached and migrated; reads of
// a store not ready fail with ErrNotReady.
func (s *Store) Ready() bool { return s.ready.Load() }

// connect prepares a store Open returned not ready (the Writer calls it
// before each write); it does nothing once the store is ready.
func (s *Store) connect(ctx context.Context) error {
	if s.ready.Load() {
		return nil
	}
	if err := s.prepare(ctx); err != nil {
		return s.redact.err(fmt.Errorf("%s: %w", s.where, err))
	}
	s.ready.Store(true)
	s.log.Info("attendance store reachable now", "store", s.where)
	return nil
}

func (s *Store) openSQLite(path string) error {
	if path == "" {
		return errors.New("attendance store: neither a file nor a DSN given")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	s.dialect, s.where = sqlite, abs
	// A URI name (file:...), so that SQLite takes mode=ro; the path is
	// escaped as a URI path (a ? or # in it is not a parameter).
	name := "file:" + (&url.URL{Path: abs}).EscapedPath()
	params := url.Values{"_pragma": {fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds())}}
	if s.ro {
		if _, err := os.Stat(abs); errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w at %s", ErrNoStore, abs)
		}
		params.Set("mode", "ro")
		params.Set("_query_only", "1")
	} else {
		if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
			return fmt.Errorf("attendance.path: %w", err)
		}
		// Made here so that its mode is ours: SQLite would make it 0644,
		// and its journal takes the file's mode.
		f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("attendance.path: %w", err)
		}
		f.Close()
		// DELETE, not WAL: a read-only reader of a WAL store makes -wal
		// and -shm files, owned by whoever ran it.
		params.Add("_pragma", "journal_mode(DELETE)")
		params.Set("_txlock", "immediate")
	}
	db, err := sql.Open("sqlite", name+"?"+params.Encode())
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(4)
	s.db = db
	return nil
}

func (s *Store) openPostgres(dsn string) error {
	s.dialect, s.where = postgres, "PostgreSQL"
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return errors.New("attendance.dsn: not a postgres:// or postgresql:// URL")
	}
	s.where = "PostgreSQL at " + u.Host + u.Path
	if s.ro {
		// Every session read-only, whatever a query does (pgx passes
		// unknown parameters to the server).
		q := u.Query()
		q.Set("default_transaction_read_only", "on")
		u.RawQuery = q.Encode()
		dsn = u.String()
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(4)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s.db = db
	return nil
}

// prepare checks the connection and the schema: read-write it migrates and
// prunes, read-only it only checks the version.
func (s *Store) prepare(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, pingLimit)
	err := s.db.PingContext(pctx)
	cancel()
	if err != nil {
		return err
	}
	if !s.ro {
		if err := migrate(ctx, s.db, s.dialect); err != nil {
			return err
		}
		return s.Prune(ctx)
	}
	var exists bool
	query := `SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'`
	if s.dialect == postgres {
		query = `SELECT COUNT(*) > 0 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'schema_version'`
	}
	if err := s.db.QueryRowContext(ctx, query).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		return ErrNoStore
	}
	v, err := version(ctx, s.db)
	switch {
	case err != nil:
		return err
	case v > SchemaVersion:
		return fmt.Errorf("%w: it has version %d, this groupbridge reads %d; use the newer groupbridge", ErrSchema, v, SchemaVersion)
	case v < SchemaVersion:
		return fmt.Errorf("%w: it has version %d, this groupbridge reads %d; start the bridge once to migrate it", ErrSchema, v, SchemaVersion)
	}
	return nil
}

// Where names the store for messages: the SQLite file's path, or
// "PostgreSQL at host/database" (never the DSN's user or password).
func (s *Store) Where() string { return s.where }

// Close closes the database. Close a Writer first.
func (s *Store) Close() error { return s.redact.err(s.db.Close()) }

// timeLayout is how instants are stored: UTC, fixed width, so text order
// is time order.
const timeLayout = "2006-01-02T15:04:05.000Z"

func timeText(t time.Time) string { return t.UTC().Format(timeLayout) }

func optionalTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return timeText(t)
}

func parseTime(s string) (time.Time, error) { return time.Parse(timeLayout, s) }

// dayLayout is a Day's date: the bridge's local date.
const dayLayout = "2006-01-02"

// firstDay is the first local date whose midnight is at or after t: the
// days of a filter's range [Since, Until) are those from firstDay(Since)
// up to before firstDay(Until).
func firstDay(t time.Time) string {
	l := t.Local()
	y, m, d := l.Date()
	if midnight := time.Date(y, m, d, 0, 0, 0, 0, time.Local); midnight.Before(l) {
		return l.AddDate(0, 0, 1).Format(dayLayout)
	}
	return l.Format(dayLayout)
}

const sessionColumns = `id, group_name, start_at, end_at, slot_start, slot_end, peak, distinct_callers, joins,
	facilitator_ms, member_ms, median_stay_ms, longest_stay_ms,
	turned_away_full, turned_away_locked, turned_away_closed, turned_away_removed`

// where builds the WHERE clause of a filter over a group column and a
// text column compared with from and to ("" for open ends).
func (s *Store) filter(group, column, from, to string) (string, []any) {
	var conds []string
	var args []any
	if group != "" {
		conds, args = append(conds, "LOWER(group_name) = LOWER(?)"), append(args, group)
	}
	if from != "" {
		conds, args = append(conds, column+" >= ?"), append(args, from)
	}
	if to != "" {
		conds, args = append(conds, column+" < ?"), append(args, to)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// Sessions returns the sessions that started in f's range, of f's group
// (any case), oldest first.
func (s *Store) Sessions(ctx context.Context, f attendance.Filter) ([]attendance.Session, error) {
	if !s.ready.Load() {
		return nil, fmt.Errorf("%s: %w", s.where, ErrNotReady)
	}
	var from, to string
	if !f.Since.IsZero() {
		from = timeText(f.Since)
	}
	if !f.Until.IsZero() {
		to = timeText(f.Until)
	}
	where, args := s.filter(f.Group, "start_at", from, to)
	rows, err := s.db.QueryContext(ctx, s.dialect.q(`SELECT `+sessionColumns+` FROM sessions`+where+` ORDER BY start_at, id`), args...)
	if err != nil {
		return nil, s.redact.err(err)
	}
	defer rows.Close()
	var out []attendance.Session
	for rows.Next() {
		var (
			ss                            attendance.Session
			start, end                    string
			slotStart, slotEnd            sql.NullString
			fac, mem, med, longest        int64
			full, locked, closed, removed int
		)
		if err := rows.Scan(&ss.ID, &ss.Group, &start, &end, &slotStart, &slotEnd, &ss.Peak, &ss.Distinct, &ss.Joins,
			&fac, &mem, &med, &longest, &full, &locked, &closed, &removed); err != nil {
			return nil, s.redact.err(err)
		}
		var perr [4]error
		ss.Start, perr[0] = parseTime(start)
		ss.End, perr[1] = parseTime(end)
		if slotStart.Valid {
			ss.SlotStart, perr[2] = parseTime(slotStart.String)
		}
		if slotEnd.Valid {
			ss.SlotEnd, perr[3] = parseTime(slotEnd.String)
		}
		if err := errors.Join(perr[:]...); err != nil {
			return nil, fmt.Errorf("%s: session %s: %w", s.where, ss.ID, err)
		}
		ss.FacilitatorTime, ss.MemberTime = time.Duration(fac)*time.Millisecond, time.Duration(mem)*time.Millisecond
		ss.MedianStay, ss.LongestStay = time.Duration(med)*time.Millisecond, time.Duration(longest)*time.Millisecond
		ss.TurnedAway[attendance.Full] = full
		ss.TurnedAway[attendance.Locked] = locked
		ss.TurnedAway[attendance.Closed] = closed
		ss.TurnedAway[attendance.Removed] = removed
		out = append(out, ss)
	}
	return out, s.redact.err(rows.Err())
}

// Days returns the day counts of the local dates whose midnight is in f's
// range, of f's group (any case; "" is every group and the access
// number), oldest first.
func (s *Store) Days(ctx context.Context, f attendance.Filter) ([]attendance.Day, error) {
	if !s.ready.Load() {
		return nil, fmt.Errorf("%s: %w", s.where, ErrNotReady)
	}
	var from, to string
	if !f.Since.IsZero() {
		from = firstDay(f.Since)
	}
	if !f.Until.IsZero() {
		to = firstDay(f.Until)
	}
	where, args := s.filter(f.Group, "day", from, to)
	rows, err := s.db.QueryContext(ctx, s.dialect.q(`SELECT day, group_name, wrong_pins, told_closed FROM days`+where+` ORDER BY day, group_name`), args...)
	if err != nil {
		return nil, s.redact.err(err)
	}
	defer rows.Close()
	var out []attendance.Day
	for rows.Next() {
		var d attendance.Day
		if err := rows.Scan(&d.Day, &d.Group, &d.WrongPINs, &d.Closed); err != nil {
			return nil, s.redact.err(err)
		}
		out = append(out, d)
	}
	return out, s.redact.err(rows.Err())
}

// Prune deletes the sessions that ended, and the days, more than Keep days
// before now. Read-only it does nothing.
func (s *Store) Prune(ctx context.Context) error {
	if s.ro {
		return nil
	}
	cutoff := s.clock.Now().AddDate(0, 0, -s.keep)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.redact.err(err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it does nothing
	if _, err := tx.ExecContext(ctx, s.dialect.q(`DELETE FROM sessions WHERE end_at < ?`), timeText(cutoff)); err != nil {
		return s.redact.err(err)
	}
	if _, err := tx.ExecContext(ctx, s.dialect.q(`DELETE FROM days WHERE day < ?`), cutoff.Local().Format(dayLayout)); err != nil {
		return s.redact.err(err)
	}
	return s.redact.err(tx.Commit())
}

// dayKey is one row of the days table.
type dayKey struct{ day, group string }

// dayCounts are the counts a write adds to a day's row.
type dayCounts struct{ wrongPINs, closed int }

// write stores sessions (once each, whatever is already there) and adds
// days' counts, in one transaction.
func (s *Store) write(ctx context.Context, sessions []attendance.Session, days map[dayKey]dayCounts) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.redact.err(err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it does nothing
	if len(sessions) > 0 {
		stmt, err := tx.PrepareContext(ctx, s.dialect.q(`INSERT INTO sessions (`+sessionColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`))
		if err != nil {
			return s.redact.err(err)
		}
		defer stmt.Close()
		for _, ss := range sessions {
			_, err := stmt.ExecContext(ctx, ss.ID, ss.Group, timeText(ss.Start), timeText(ss.End),
				optionalTime(ss.SlotStart), optionalTime(ss.SlotEnd), ss.Peak, ss.Distinct, ss.Joins,
				ss.FacilitatorTime.Milliseconds(), ss.MemberTime.Milliseconds(),
				ss.MedianStay.Milliseconds(), ss.LongestStay.Milliseconds(),
				ss.TurnedAway[attendance.Full], ss.TurnedAway[attendance.Locked],
				ss.TurnedAway[attendance.Closed], ss.TurnedAway[attendance.Removed])
			if err != nil {
				return s.redact.err(err)
			}
		}
	}
	if len(days) > 0 {
		stmt, err := tx.PrepareContext(ctx, s.dialect.q(`INSERT INTO days (day, group_name, wrong_pins, told_closed) VALUES (?, ?, ?, ?)
			ON CONFLICT (day, group_name) DO UPDATE SET
			wrong_pins = days.wrong_pins + excluded.wrong_pins, told_closed = days.told_closed + excluded.told_closed`))
		if err != nil {
			return s.redact.err(err)
		}
		defer stmt.Close()
		for k, c := range days {
			if _, err := stmt.ExecContext(ctx, k.day, k.group, c.wrongPINs, c.closed); err != nil {
				return s.redact.err(err)
			}
		}
	}
	return s.redact.err(tx.Commit())
}
