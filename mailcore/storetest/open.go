package storetest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/govhub/govhub/internal/sqldb"
	"github.com/govhub/govhub/mailcore"
	"github.com/govhub/govhub/mailcore/volume"
)

// OpenStore opens a migrated store on dbURL (a testdb.Backend URL) with a
// local volume store in t's temp dir (1 MiB volumes, so sealing happens in
// small tests), all closed at cleanup. opts' DB and Blobs are filled in.
func OpenStore(t testing.TB, dbURL string, opts mailcore.Options) *mailcore.Store {
	t.Helper()
	ctx := context.Background()
	db, err := sqldb.Open(ctx, dbURL, sqldb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Migrate(ctx, nil); err != nil {
		t.Fatal(err)
	}
	vs, err := volume.Open(volume.Options{Dir: filepath.Join(t.TempDir(), "volumes"), VolumeSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	opts.DB, opts.Blobs = db, vs
	s, err := mailcore.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		vs.Close()
		db.Close()
	})
	return s
}
