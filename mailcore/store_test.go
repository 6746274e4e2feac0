package mailcore_test

import (
	"testing"

	"github.com/govhub/govhub/internal/testdb"
	"github.com/govhub/govhub/mailcore"
	"github.com/govhub/govhub/mailcore/storetest"
)

// TestStore runs the conformance suite on every metadata backend with the
// local volume blob store.
func TestStore(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T, opts mailcore.Options) *mailcore.Store {
				return storetest.OpenStore(t, b.URL(t), opts)
			})
		})
	}
}
