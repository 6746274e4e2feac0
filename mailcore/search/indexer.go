package search

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/govhub/govhub/internal/sqldb"
	"github.com/jmoiron/sqlx"
)

// Run indexes new bodies and removes the entries of purged ones every
// PollInterval until ctx ends. A failed pass is logged and the next one
// retries; Run returns only ctx's error.
func (ix *Index) Run(ctx context.Context) error {
	t := time.NewTicker(ix.cfg.PollInterval)
	defer t.Stop()
	for pass := int64(1); ; pass++ {
		start := time.Now()
		st, err := ix.catchUp(ctx)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			ix.log.Warn("index pass failed", "pass", pass, "err", err)
		case st.Indexed > 0 || st.Removed > 0:
			ix.log.Info("index pass", "pass", pass, "indexed", st.Indexed, "removed", st.Removed, "took", time.Since(start))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Stats reports what one pass did.
type Stats struct {
	Indexed int // bodies indexed
	Removed int // entries of purged bodies removed
}

// CatchUp does synchronously what one pass of Run does: index every body
// not indexed yet and remove the entries of bodies that have been purged.
func (ix *Index) CatchUp(ctx context.Context) (Stats, error) {
	return ix.catchUp(ctx)
}

func (ix *Index) catchUp(ctx context.Context) (Stats, error) {
	var st Stats
	n, err := ix.indexNew(ctx, -1)
	st.Indexed = n
	if err != nil {
		return st, err
	}
	ix.removeMu.Lock()
	defer ix.removeMu.Unlock()
	st.Removed, err = ix.removeGone(ctx)
	return st, err
}

// catchUpNew indexes at most one batch of pending bodies: what MatchUIDs
// runs first so that a SEARCH right after a delivery finds it. With nothing
// pending it costs two indexed queries; with a large backlog (the first
// start over an existing store) a SEARCH does not wait for all of it.
func (ix *Index) catchUpNew(ctx context.Context) error {
	_, err := ix.indexNew(ctx, 1)
	return err
}

// snapshot returns the highest blob row id visible now and, on PostgreSQL,
// the xmin and xmax of the statement's snapshot. Every id at most maxID
// that is not visible yet belongs to a transaction running at that
// snapshot (ids are drawn before commit; a transaction starting later draws
// larger ones), and all of those have ended once some later snapshot's
// xmin reaches this xmax. (That needs ids drawn in order across sessions:
// the identity columns of migration 00001 have the default CACHE 1.)
// SQLite has one writer and commits in id order, so there an invisible id
// below maxID is never committed.
func (ix *Index) snapshot(ctx context.Context) (maxID, xmin, xmax int64, err error) {
	if ix.db.Dialect == sqldb.Postgres {
		row := ix.db.X.QueryRowContext(ctx, `SELECT COALESCE((SELECT MAX(id) FROM blobs), 0),
			pg_snapshot_xmin(pg_current_snapshot())::text::bigint,
			pg_snapshot_xmax(pg_current_snapshot())::text::bigint`)
		err = row.Scan(&maxID, &xmin, &xmax)
		return
	}
	err = ix.db.X.GetContext(ctx, &maxID, `SELECT COALESCE(MAX(id), 0) FROM blobs`)
	return
}

type pendingBody struct {
	ID  int64  `db:"id"`
	SHA []byte `db:"sha"`
}

// indexNew indexes the blob rows above ix.low that have no bookkeeping
// row, at most maxBatches batches (< 0: all). Bodies whose read fails are
// left pending (and low stays below them) until MaxAttempts, then indexed
// empty, so no body is retried forever. Calls may run concurrently (Run
// and SEARCHes): they may read the same bodies, the bookkeeping key lets
// one write each, and only a call that saw nothing left pending moves low.
func (ix *Index) indexNew(ctx context.Context, maxBatches int) (int, error) {
	maxID, xmin, xmax, err := ix.snapshot(ctx)
	if err != nil {
		return 0, fmt.Errorf("search: read blob horizon: %w", err)
	}
	q := ix.db.Rebind(`SELECT b.id, b.sha FROM blobs b
		WHERE b.id > ? AND b.state = 0
		AND NOT EXISTS (SELECT 1 FROM search_indexed s WHERE s.blob_id = b.id)
		ORDER BY b.id LIMIT ?`)
	total := 0
	firstFailed := int64(-1)
	ix.mu.Lock()
	after := ix.low
	ix.mu.Unlock()
	for batch := 0; ; batch++ {
		if maxBatches >= 0 && batch >= maxBatches {
			return total, nil // stopped early: low stays
		}
		var rows []pendingBody
		if err := ix.db.X.SelectContext(ctx, &rows, q, after, ix.cfg.BatchSize); err != nil {
			return total, fmt.Errorf("search: find pending bodies: %w", err)
		}
		if len(rows) == 0 {
			break
		}
		after = rows[len(rows)-1].ID
		docs, failed := ix.buildDocs(ctx, rows)
		if err := ctx.Err(); err != nil {
			return total, err
		}
		for _, id := range failed {
			if firstFailed < 0 || id < firstFailed {
				firstFailed = id
			}
		}
		n, err := ix.writeDocs(ctx, docs)
		total += n
		if err != nil {
			return total, err
		}
		if len(rows) < ix.cfg.BatchSize {
			break
		}
	}
	ix.advance(maxID, xmin, xmax, firstFailed)
	return total, nil
}

// maxWaiting bounds the PostgreSQL horizons kept while a long transaction
// holds xmin back; past it the newest is replaced, which only delays low.
const maxWaiting = 64

// advance moves low after a call that indexed everything pending above it
// as of a snapshot with the given horizon, never past a body to retry.
func (ix *Index) advance(maxID, xmin, xmax, firstFailed int64) {
	limit := func(id int64) int64 {
		if firstFailed >= 0 && id >= firstFailed {
			return firstFailed - 1
		}
		return id
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.db.Dialect != sqldb.Postgres {
		ix.low = max(ix.low, limit(maxID))
		return
	}
	keep := ix.waiting[:0]
	for _, h := range ix.waiting {
		if xmin >= h.xmax {
			ix.low = max(ix.low, limit(h.maxID))
		} else {
			keep = append(keep, h)
		}
	}
	ix.waiting = keep
	switch n := len(ix.waiting); {
	case maxID <= ix.low || (n > 0 && ix.waiting[n-1].maxID >= maxID):
	case n >= maxWaiting:
		ix.waiting[n-1] = horizon{maxID: maxID, xmax: xmax}
	default:
		ix.waiting = append(ix.waiting, horizon{maxID: maxID, xmax: xmax})
	}
}

// buildDocs reads and tokenises a batch on every core. It returns the
// documents to write and the ids whose read failed and should be retried.
func (ix *Index) buildDocs(ctx context.Context, rows []pendingBody) ([]doc, []int64) {
	docs := make([]doc, len(rows))
	errs := make([]error, len(rows))
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < min(runtime.GOMAXPROCS(0), len(rows)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				docs[i], errs[i] = ix.buildDoc(ctx, rows[i].ID, rows[i].SHA)
			}
		}()
	}
	for i := range rows {
		next <- i
	}
	close(next)
	wg.Wait()
	var out []doc
	var failed []int64
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for i, r := range rows {
		if errs[i] == nil {
			delete(ix.failures, r.ID)
			out = append(out, docs[i])
			continue
		}
		if ctx.Err() != nil {
			continue
		}
		ix.failures[r.ID]++
		if ix.failures[r.ID] >= ix.cfg.MaxAttempts {
			ix.log.Error("body unreadable, indexed without its text", "blob_row", r.ID, "attempts", ix.failures[r.ID], "err", errs[i])
			delete(ix.failures, r.ID)
			out = append(out, doc{blobID: r.ID, status: statusGaveUp})
			continue
		}
		ix.log.Warn("body read failed, will retry", "blob_row", r.ID, "err", errs[i])
		failed = append(failed, r.ID)
	}
	return out, failed
}

// removeGone removes the entries of purged bodies. Purge deletes blob rows
// only after their reference count has sat at zero (dead_at set), so each
// pass marks the indexed bodies that turned dead since the last one
// (blobs_dead index), then looks only at marked rows: gone ones lose their
// entries, referenced-again ones are unmarked. The first pass in a process
// also sweeps for entries whose blob row vanished while no indexer ran.
func (ix *Index) removeGone(ctx context.Context) (int, error) {
	removed := 0
	if !ix.swept {
		var gone []int64
		err := ix.db.X.SelectContext(ctx, &gone, `SELECT s.blob_id FROM search_indexed s WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.id = s.blob_id)`)
		if err != nil {
			return 0, fmt.Errorf("search: orphan sweep: %w", err)
		}
		if err := ix.deleteEntries(ctx, gone); err != nil {
			return 0, err
		}
		removed += len(gone)
		ix.swept = true
	}
	var newest int64
	if err := ix.db.X.GetContext(ctx, &newest, `SELECT COALESCE(MAX(dead_at), 0) FROM blobs WHERE refs = 0`); err != nil {
		return removed, fmt.Errorf("search: read dead horizon: %w", err)
	}
	_, err := ix.db.X.ExecContext(ctx, ix.db.Rebind(`UPDATE search_indexed SET dead = 1 WHERE dead = 0
		AND blob_id IN (SELECT id FROM blobs WHERE refs = 0 AND dead_at >= ?)`), max(ix.deadSince, 0))
	if err != nil {
		return removed, fmt.Errorf("search: mark dead bodies: %w", err)
	}
	ix.deadSince = max(ix.deadSince, newest-deadSlack)
	var watched []struct {
		ID   int64 `db:"blob_id"`
		Gone int   `db:"gone"`
	}
	err = ix.db.X.SelectContext(ctx, &watched, `SELECT s.blob_id, CASE WHEN b.id IS NULL THEN 1 ELSE 0 END AS gone
		FROM search_indexed s LEFT JOIN blobs b ON b.id = s.blob_id
		WHERE s.dead = 1 AND (b.id IS NULL OR b.refs > 0)`)
	if err != nil {
		return removed, fmt.Errorf("search: check dead bodies: %w", err)
	}
	var gone, alive []int64
	for _, w := range watched {
		if w.Gone == 1 {
			gone = append(gone, w.ID)
		} else {
			alive = append(alive, w.ID)
		}
	}
	if err := ix.deleteEntries(ctx, gone); err != nil {
		return removed, err
	}
	removed += len(gone)
	for _, part := range chunk(alive, 500) {
		q, args, err := sqlx.In(`UPDATE search_indexed SET dead = 0 WHERE blob_id IN (?)`, part)
		if err != nil {
			return removed, err
		}
		if _, err := ix.db.X.ExecContext(ctx, ix.db.Rebind(q), args...); err != nil {
			return removed, fmt.Errorf("search: unmark revived bodies: %w", err)
		}
	}
	return removed, nil
}
