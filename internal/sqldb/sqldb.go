package sqldb

import (
	"context"

	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"github.com/jmoiron/sqlx"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect names the SQL engine behind a DB.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DB is the metadata database. Embed-free on purpose: callers use X (the
// sqlx handle) and Rebind, so every query is written once with ? marks.
type DB struct {
	X       *sqlx.DB
	Dialect Dialect
	// URL is the URL the database was opened with, secrets removed; safe to
	// log and print.
	URL string
}

// Options tunes Open.
type Options struct {
	// MaxOpenConns bounds the pool; zero picks a default per dialect.
	MaxOpenConns int
}

// IsPostgresURL reports whether url names a PostgreSQL server.
func IsPostgresURL(u string) bool {
	return strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://")
}

// Open connects to rawURL: a postgres:// URL, or a SQLite file given as a
// path or sqlite:PATH / file:PATH. It does not migrate; call Migrate.
func Open(ctx context.Context, rawURL string, opts Options) (*DB, error) {
	if IsPostgresURL(rawURL) {
		x, err := sqlx.Open("pgx", rawURL)
		if err != nil {
			return nil, fmt.Errorf("sqldb: open postgres: %w", err)
		}
		n := opts.MaxOpenConns
		if n == 0 {
			n = 16
		}
		x.SetMaxOpenConns(n)
		x.SetMaxIdleConns(n)
		x.SetConnMaxIdleTime(5 * time.Minute)
		db := &DB{X: x, Dialect: Postgres, URL: Redact(rawURL)}
		if err := x.PingContext(ctx); err != nil {
			x.Close()
			return nil, fmt.Errorf("sqldb: connect %s: %w", db.URL, err)
		}
		return db, nil
	}
	path := strings.TrimPrefix(strings.TrimPrefix(rawURL, "sqlite:"), "file:")
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if path == "" {
		return nil, errors.New("sqldb: empty database path")
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("sqldb: %w", err)
		}
	}
	// _txlock=immediate: write transactions take the write lock at BEGIN, so
	// two writers never deadlock upgrading a read lock. busy_timeout makes a
	// second process (fsck, user import) wait instead of failing at once.
	q := url.Values{}
	q.Set("_txlock", "immediate")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "busy_timeout(15000)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Add("_pragma", "cache_size(-32000)")
	// Reads through a shared mapping instead of pread into each
	// connection's private cache.
	q.Add("_pragma", "mmap_size(268435456)")
	dsn := "file:" + path + "?" + q.Encode()
	x, err := sqlx.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqldb: open sqlite %s: %w", path, err)
	}
	n := opts.MaxOpenConns
	if n == 0 {
		n = 8
	}
	x.SetMaxOpenConns(n)
	x.SetMaxIdleConns(n)
	db := &DB{X: x, Dialect: SQLite, URL: path}
	if err := x.PingContext(ctx); err != nil {
		x.Close()
		return nil, fmt.Errorf("sqldb: open sqlite %s: %w", path, err)
	}
	return db, nil
}

// Close closes the pool.
func (db *DB) Close() error { return db.X.Close() }

// Rebind turns ? placeholders into the dialect's own.
func (db *DB) Rebind(q string) string { return db.X.Rebind(q) }

// MaxParams is how many bound parameters one statement may carry on this
// dialect, with a margin (SQLite allows 32766, PostgreSQL 65535).
func (db *DB) MaxParams() int {
	if db.Dialect == Postgres {
		return 60000
	}
	return 30000
}

// Redact removes the password from a database URL for logs and output.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// IsRetryable reports whether err is a transient conflict after which the
// whole transaction may be run again: a PostgreSQL serialization failure or
// deadlock, or SQLite reporting the database busy or locked.
func IsRetryable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "40001" || pe.Code == "40P01"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return true
		}
	}
	return false
}

// IsUniqueViolation reports whether err is a unique-constraint violation.
func IsUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// InTx runs fn in a transaction and commits it, running it again (up to
// five times) when the engine reports a transient conflict. fn must not have
// effects outside the transaction that cannot be repeated.
func (db *DB) InTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt*attempt) * 10 * time.Millisecond):
			}
		}
		err = db.tryTx(ctx, fn)
		if err == nil || !IsRetryable(err) {
			return err
		}
	}
	return err
}

func (db *DB) tryTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	tx, err := db.X.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Size returns the bytes the database occupies: the SQLite file plus its WAL,
// or pg_database_size for PostgreSQL (the whole database, all schemas).
func (db *DB) Size(ctx context.Context) (int64, error) {
	if db.Dialect == Postgres {
		var n int64
		err := db.X.GetContext(ctx, &n, "SELECT pg_database_size(current_database())")
		return n, err
	}
	var total int64
	for _, suffix := range []string{"", "-wal"} {
		if fi, err := os.Stat(db.URL + suffix); err == nil {
			total += fi.Size()
		}
	}
	return total, nil
}

// UsedBytes is the size of the SQLite pages in use (the file minus its
// free list), 0 on PostgreSQL: what deleted rows give back shows here,
// not in the file size.
func (db *DB) UsedBytes(ctx context.Context) (int64, error) {
	if db.Dialect == Postgres {
		return 0, nil
	}
	var pages, free, size int64
	if err := db.X.GetContext(ctx, &pages, "PRAGMA page_count"); err != nil {
		return 0, err
	}
	if err := db.X.GetContext(ctx, &free, "PRAGMA freelist_count"); err != nil {
		return 0, err
	}
	if err := db.X.GetContext(ctx, &size, "PRAGMA page_size"); err != nil {
		return 0, err
	}
	return (pages - free) * size, nil
}

// Checkpoint folds the SQLite WAL back into the main file (a no-op on
// PostgreSQL), so that Size measures the tables rather than the log.
func (db *DB) Checkpoint(ctx context.Context) error {
	if db.Dialect != SQLite {
		return nil
	}
	_, err := db.X.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
	return err
}
