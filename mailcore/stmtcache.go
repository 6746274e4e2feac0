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

// stmt returns q (already rebound) prepared for use inside tx: the cached
// statement when there is room for it, else one prepared on tx alone (and
// closed with it).
func (s *Store) stmt(ctx context.Context, tx *sqlx.Tx, q string) (*sqlx.Stmt, error) {
	st, err := s.cached(ctx, q)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return tx.PreparexContext(ctx, q)
	}
	return tx.StmtxContext(ctx, st), nil
}

// cached returns q (already rebound) prepared on the pool, or nil when the
// cache is full. Cached statements are never closed before the store is:
// a transaction may be using one.
func (s *Store) cached(ctx context.Context, q string) (*sqlx.Stmt, error) {
	c := &s.stmts
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[q]; ok {
		return st, nil
	}
	if len(c.m) >= maxCachedStmts {
		return nil, nil
	}
	p, err := s.db.X.PreparexContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if c.m == nil {
		c.m = map[string]*sqlx.Stmt{}
	}
	c.m[q] = p
	return p, nil
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
