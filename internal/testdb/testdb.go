// Package testdb gives tests fresh, empty metadata databases: a SQLite file
// always, and a PostgreSQL schema of its own whenever GOVHUB_TEST_POSTGRES
// holds a DSN (CI sets it). It is test plumbing only; no production code
// imports it.
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/govhub/govhub/internal/sqldb"
)

// EnvPostgres names the variable holding the PostgreSQL DSN for tests.
const EnvPostgres = "GOVHUB_TEST_POSTGRES"

// Backend is one engine a conformance suite runs on.
type Backend struct {
	Name string
	// URL returns the database URL of a fresh, empty, migrated-never
	// database for t, dropped when t ends.
	URL func(t testing.TB) string
}

// Backends lists SQLite and, when configured, PostgreSQL. Under CI=true a
// missing GOVHUB_TEST_POSTGRES is a failure, not a silent skip: CI is where
// the PostgreSQL half of every suite must run.
func Backends(t testing.TB) []Backend {
	bs := []Backend{{Name: "sqlite", URL: SQLiteURL}}
	if os.Getenv(EnvPostgres) != "" {
		bs = append(bs, Backend{Name: "postgres", URL: PostgresURL})
	} else if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not set under CI=true: .ci/run must set it so store tests run on PostgreSQL", EnvPostgres)
	}
	return bs
}

// SQLiteURL returns a path to a new SQLite file in t's temp dir.
func SQLiteURL(t testing.TB) string {
	return filepath.Join(t.TempDir(), "govhub.db")
}

// PostgresURL creates a schema of its own on the GOVHUB_TEST_POSTGRES server
// and returns a URL whose search_path selects it; the schema is dropped at
// cleanup.
func PostgresURL(t testing.TB) string {
	dsn := os.Getenv(EnvPostgres)
	if dsn == "" {
		t.Skipf("%s not set: PostgreSQL half of the suite not run", EnvPostgres)
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	admin, err := sqldb.Open(ctx, dsn, sqldb.Options{MaxOpenConns: 1})
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	defer admin.Close()
	if _, err := admin.X.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("testdb: create schema: %v", err)
	}
	t.Cleanup(func() {
		a, err := sqldb.Open(ctx, dsn, sqldb.Options{MaxOpenConns: 1})
		if err != nil {
			t.Logf("testdb: drop schema %s: %v", schema, err)
			return
		}
		defer a.Close()
		if _, err := a.X.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Logf("testdb: drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("testdb: bad %s: %v", EnvPostgres, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
