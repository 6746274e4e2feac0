package mailcore

import (
	"context"
	"sync"

	"github.com/jmoiron/sqlx"
)

// stmtCache keeps prepared statements for the delivery path, whose SQL
// differs only by how many rows a statement carries. Re-parsing SQL was the
// largest CPU cost of a delivery on SQLite; prepared once per connection,
// a statement is reused by every later transaction on it.
type stmtCache struct {
	mu sync.Mutex
	m  map[string]*sqlx.Stmt
}

// maxCachedStmts bounds the cache: the shapes a 1..N-recipient delivery
// produces are few, but a caller must not make it grow without end.
const maxCachedStmts = 256

// stmt returns q (already rebound) prepared for use inside tx.
func (s *Store) stmt(ctx context.Context, tx *sqlx.Tx, q string) (*sqlx.Stmt, error) {
	c := &s.stmts
	c.mu.Lock()
	st, ok := c.m[q]
	c.mu.Unlock()
	if !ok {
		p, err := s.db.X.PreparexContext(ctx, q)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		if c.m == nil {
			c.m = map[string]*sqlx.Stmt{}
		}
		if old, dup := c.m[q]; dup {
			p.Close()
			p = old
		} else if len(c.m) < maxCachedStmts {
			c.m[q] = p
		} else {
			c.mu.Unlock()
			defer p.Close()
			return tx.PreparexContext(ctx, q)
		}
		st = p
		c.mu.Unlock()
	}
	return tx.StmtxContext(ctx, st), nil
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.m {
		st.Close()
	}
	c.m = nil
}

// execCached runs q (with ? placeholders) through the statement cache.
func (s *Store) execCached(ctx context.Context, tx *sqlx.Tx, q string, args []any) error {
	st, err := s.stmt(ctx, tx, s.db.Rebind(q))
	if err != nil {
		return err
	}
	_, err = st.ExecContext(ctx, args...)
	return err
}
