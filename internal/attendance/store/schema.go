package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// dialect is the SQL database behind a Store. The schema and queries are
// written once, in the SQL both take; only placeholders differ.
type dialect int

const (
	sqlite dialect = iota
	postgres
)

// q rewrites a query's ? placeholders as $1, $2... for PostgreSQL. The
// queries are this package's own and hold no ? in a literal.
func (d dialect) q(query string) string {
	if d != postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// migrations are the schema's versions, oldest first: migrations[i] takes
// a store from version i to i+1. Append, never edit: a store records the
// versions it has. Instants are UTC text of fixed width (timeLayout), so
// they sort and compare as text in both databases and read plainly in
// either's shell; durations are milliseconds.
var migrations = [][]string{
	{
		`CREATE TABLE sessions (
			id TEXT PRIMARY KEY,
			group_name TEXT NOT NULL,
			start_at TEXT NOT NULL,
			end_at TEXT NOT NULL,
			slot_start TEXT,
			slot_end TEXT,
			peak INTEGER NOT NULL,
			distinct_callers INTEGER NOT NULL,
			joins INTEGER NOT NULL,
			facilitator_ms BIGINT NOT NULL,
			member_ms BIGINT NOT NULL,
			median_stay_ms BIGINT NOT NULL,
			longest_stay_ms BIGINT NOT NULL,
			turned_away_full INTEGER NOT NULL,
			turned_away_locked INTEGER NOT NULL,
			turned_away_closed INTEGER NOT NULL,
			turned_away_removed INTEGER NOT NULL
		)`,
		`CREATE INDEX sessions_start ON sessions (start_at)`,
		`CREATE INDEX sessions_end ON sessions (end_at)`,
		`CREATE TABLE days (
			day TEXT NOT NULL,
			group_name TEXT NOT NULL,
			wrong_pins INTEGER NOT NULL,
			told_closed INTEGER NOT NULL,
			PRIMARY KEY (day, group_name)
		)`,
	},
}

// SchemaVersion is the schema this groupbridge reads and writes.
var SchemaVersion = len(migrations)

// pgMigrationLock is the advisory lock key under which nodes sharing one
// PostgreSQL database migrate it one at a time.
const pgMigrationLock = 0x67626174 // "gbat"

// migrate brings the schema to SchemaVersion in one transaction, and
// refuses a store a newer groupbridge has migrated past it.
func migrate(ctx context.Context, db *sql.DB, d dialect) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it does nothing
	if d == postgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(`+strconv.Itoa(pgMigrationLock)+`)`); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return err
	}
	have, err := version(ctx, tx)
	if err != nil {
		return err
	}
	if have > SchemaVersion {
		return fmt.Errorf("%w: it has schema version %d, this groupbridge knows up to %d; run the newer groupbridge", ErrSchema, have, SchemaVersion)
	}
	for v := have; v < SchemaVersion; v++ {
		for _, stmt := range migrations[v] {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("migrating to schema version %d: %w", v+1, err)
			}
		}
		if _, err := tx.ExecContext(ctx, d.q(`INSERT INTO schema_version (version) VALUES (?)`), v+1); err != nil {
			return err
		}
	}
	return tx.Commit()
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// version is the store's schema version, 0 for none.
func version(ctx context.Context, q querier) (int, error) {
	var v sql.NullInt64
	if err := q.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_version`).Scan(&v); err != nil {
		return 0, err
	}
	return int(v.Int64), nil
}
