package sqldb_test

import (
	"context"
	"strings"
	"testing"

	"github.com/govhub/govhub/internal/sqldb"
	"github.com/govhub/govhub/internal/testdb"
)

func TestMigrateTwiceAndPragmas(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			db, err := sqldb.Open(ctx, b.URL(t), sqldb.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			applied, err := db.Migrate(ctx, nil)
			if err != nil || len(applied) == 0 {
				t.Fatalf("first migrate: %v %v", applied, err)
			}
			again, err := db.Migrate(ctx, nil)
			if err != nil || len(again) != 0 {
				t.Fatalf("second migrate applied %v, %v", again, err)
			}
			st, err := db.MigrationStatus(ctx)
			if err != nil || len(st) != len(applied) {
				t.Fatalf("status %v %v", st, err)
			}
			if db.Dialect == sqldb.SQLite {
				var mode string
				var sync int
				db.X.Get(&mode, "PRAGMA journal_mode")
				db.X.Get(&sync, "PRAGMA synchronous")
				if mode != "wal" || sync != 2 {
					t.Fatalf("journal_mode=%s synchronous=%d; the durability promise needs wal and FULL (2)", mode, sync)
				}
			}
		})
	}
}

func TestRedact(t *testing.T) {
	got := sqldb.Redact("postgres://govhub:s3cret@db.example:5432/govhub?sslmode=verify-full")
	if strings.Contains(got, "s3cret") || !strings.Contains(got, "govhub:xxxxx@db.example") {
		t.Fatalf("Redact = %q", got)
	}
	if sqldb.Redact("/var/lib/govhub/govhub.db") != "/var/lib/govhub/govhub.db" {
		t.Fatal("paths must pass unchanged")
	}
}
