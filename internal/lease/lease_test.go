package lease_test

import (
	"context"
	"testing"
	"time"

	"github.com/govhub/govhub/internal/lease"
	"github.com/govhub/govhub/internal/sqldb"
	"github.com/govhub/govhub/internal/testdb"
)

func TestLease(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			db, err := sqldb.Open(ctx, b.URL(t), sqldb.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Migrate(ctx, nil); err != nil {
				t.Fatal(err)
			}
			now := time.Unix(1_800_000_000, 0)
			ok, err := lease.TryAcquire(ctx, db, "maintenance", "node-a", time.Minute, now)
			if err != nil || !ok {
				t.Fatalf("first acquire: %v %v", ok, err)
			}
			if ok, _ := lease.TryAcquire(ctx, db, "maintenance", "node-b", time.Minute, now.Add(30*time.Second)); ok {
				t.Fatal("node-b took a lease node-a still holds")
			}
			if ok, _ := lease.TryAcquire(ctx, db, "maintenance", "node-a", time.Minute, now.Add(30*time.Second)); !ok {
				t.Fatal("holder could not renew")
			}
			if ok, _ := lease.TryAcquire(ctx, db, "sync:ldap", "node-b", time.Minute, now); !ok {
				t.Fatal("a different lease name was refused")
			}
			// Expired: another node takes over.
			if ok, _ := lease.TryAcquire(ctx, db, "maintenance", "node-b", time.Minute, now.Add(2*time.Minute)); !ok {
				t.Fatal("expired lease not taken over")
			}
			if err := lease.Release(ctx, db, "maintenance", "node-a"); err != nil {
				t.Fatal(err)
			}
			if ok, _ := lease.TryAcquire(ctx, db, "maintenance", "node-a", time.Minute, now.Add(2*time.Minute)); ok {
				t.Fatal("a stale holder's release freed the new holder's lease")
			}
			lease.Release(ctx, db, "maintenance", "node-b")
			if ok, _ := lease.TryAcquire(ctx, db, "maintenance", "node-a", time.Minute, now.Add(2*time.Minute)); !ok {
				t.Fatal("released lease not free")
			}
		})
	}
}
