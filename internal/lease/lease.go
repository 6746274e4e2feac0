// Package lease gives work that only one node may do at a time (a
// maintenance pass, a scheduled sync run, a digest run) to one holder, by a
// row in the leases table with an expiry. A holder that dies loses the lease
// when it expires; a live holder renews it.
package lease

import (
	"context"
	"fmt"
	"time"

	"github.com/govhub/govhub/internal/sqldb"
)

// TryAcquire takes or renews the lease name for holder until now+ttl. It
// reports false when another holder's lease has not expired yet.
func TryAcquire(ctx context.Context, db *sqldb.DB, name, holder string, ttl time.Duration, now time.Time) (bool, error) {
	exp := now.Add(ttl).Unix()
	res, err := db.X.ExecContext(ctx, db.Rebind(`INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.expires_at < ? OR leases.holder = excluded.holder`), name, holder, exp, now.Unix())
	if err != nil {
		return false, fmt.Errorf("lease %s: %w", name, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Release gives the lease up if holder still has it.
func Release(ctx context.Context, db *sqldb.DB, name, holder string) error {
	_, err := db.X.ExecContext(ctx, db.Rebind(`DELETE FROM leases WHERE name = ? AND holder = ?`), name, holder)
	return err
}
