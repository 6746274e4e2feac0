package mailcore_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/govhub/govhub/internal/sqldb"
	"github.com/govhub/govhub/internal/testdb"
	"github.com/govhub/govhub/mailcore"
	"github.com/govhub/govhub/mailcore/storetest"
	"github.com/govhub/govhub/mailcore/volume"
)

// TestStore runs the conformance suite on every metadata backend with the
// local volume blob store.
func TestStore(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T, opts mailcore.Options) *mailcore.Store {
				return OpenTestStore(t, b.URL(t), opts)
			})
		})
	}
}

// OpenTestStore opens a migrated store on dbURL with a volume store in a
// temp dir, closed at cleanup.
func OpenTestStore(t *testing.T, dbURL string, opts mailcore.Options) *mailcore.Store {
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
