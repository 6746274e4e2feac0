package mailcore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// PurgeDead deletes from the BlobStore the bodies whose reference count has
// been zero for at least grace, and then their rows. It is safe against a
// concurrent delivery of the same bytes: rows are first marked purging
// (which a delivery refuses to reuse; it waits), then the bodies are
// deleted, then the rows. Interrupted, the next run (or Recover) finishes
// the rows still marked purging.
func (s *Store) PurgeDead(ctx context.Context, grace time.Duration) (int, error) {
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		cutoff := s.now().Add(-grace).Unix()
		var ids []int64
		err := s.db.InTx(ctx, func(tx *sqlx.Tx) error {
			ids = ids[:0]
			if err := tx.SelectContext(ctx, &ids, s.db.Rebind(`SELECT id FROM blobs WHERE refs = 0 AND state = 0 AND dead_at IS NOT NULL AND dead_at <= ? ORDER BY id LIMIT 500`), cutoff); err != nil {
				return err
			}
			if len(ids) == 0 {
				return nil
			}
			q, args, err := sqlx.In(`UPDATE blobs SET state = 1 WHERE refs = 0 AND state = 0 AND id IN (?)`, ids)
			if err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, s.db.Rebind(q), args...)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("mailcore: mark dead blobs: %w", err)
		}
		if len(ids) == 0 {
			return total, nil
		}
		n, err := s.finishPurge(ctx)
		total += n
		if err != nil {
			return total, err
		}
	}
}

// finishPurge deletes the bodies of rows marked purging, then the rows.
func (s *Store) finishPurge(ctx context.Context) (int, error) {
	var rows []struct {
		ID  int64  `db:"id"`
		SHA []byte `db:"sha"`
	}
	if err := s.db.X.SelectContext(ctx, &rows, `SELECT id, sha FROM blobs WHERE state = 1`); err != nil {
		return 0, err
	}
	if len(rows) == 0 {
		return 0, nil
	}
	shas := make([]BlobID, len(rows))
	ids := make([]int64, len(rows))
	for i, r := range rows {
		copy(shas[i][:], r.SHA)
		ids[i] = r.ID
	}
	if err := s.blobs.Delete(ctx, shas); err != nil {
		return 0, fmt.Errorf("mailcore: delete dead bodies: %w", err)
	}
	for _, part := range chunks(ids, 500) {
		q, args, err := sqlx.In(`DELETE FROM blobs WHERE state = 1 AND refs = 0 AND id IN (?)`, part)
		if err != nil {
			return 0, err
		}
		if _, err := s.db.X.ExecContext(ctx, s.db.Rebind(q), args...); err != nil {
			return 0, fmt.Errorf("mailcore: delete dead blob rows: %w", err)
		}
	}
	s.log.Info("purged dead bodies", "count", len(rows))
	return len(rows), nil
}

// Compact purges dead bodies past grace and then, if the BlobStore can,
// rewrites its files to reclaim their space.
func (s *Store) Compact(ctx context.Context, grace time.Duration, opts CompactOptions) (int, CompactStats, error) {
	n, err := s.PurgeDead(ctx, grace)
	if err != nil {
		return n, CompactStats{}, err
	}
	c, ok := s.blobs.(BlobCompactor)
	if !ok {
		return n, CompactStats{}, nil
	}
	st, err := c.Compact(ctx, opts)
	return n, st, err
}

// RecoverReport says what Recover repaired.
type RecoverReport struct {
	PurgesFinished int `json:"purges_finished"`
	OrphansRemoved int `json:"orphans_removed"`
}

// Recover finishes work a crash interrupted: purges left half done and,
// when sweepOrphans is set, bodies stored by deliveries whose transaction
// never committed. The orphan sweep must only run while no delivery is in
// flight (at start-up, before listeners open, with the blob store locked by
// this process): a body Put by a delivery that has not committed yet looks
// exactly like an orphan.
func (s *Store) Recover(ctx context.Context, sweepOrphans bool) (RecoverReport, error) {
	var rep RecoverReport
	n, err := s.finishPurge(ctx)
	rep.PurgesFinished = n
	if err != nil || !sweepOrphans {
		return rep, err
	}
	orphans, err := s.orphans(ctx)
	if err != nil {
		return rep, err
	}
	if len(orphans) > 0 {
		if err := s.blobs.Delete(ctx, orphans); err != nil {
			return rep, err
		}
		s.log.Warn("removed orphaned bodies left by an interrupted delivery", "count", len(orphans))
	}
	rep.OrphansRemoved = len(orphans)
	return rep, nil
}

// orphans lists bodies in the BlobStore with no blobs row.
func (s *Store) orphans(ctx context.Context) ([]BlobID, error) {
	var stored []BlobID
	err := s.blobs.Walk(ctx, func(id BlobID, _ int64) error {
		stored = append(stored, id)
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []BlobID
	for _, part := range chunks(stored, 500) {
		keys := make([][]byte, len(part))
		for i := range part {
			keys[i] = part[i][:]
		}
		q, args, err := sqlx.In(`SELECT sha FROM blobs WHERE sha IN (?)`, keys)
		if err != nil {
			return nil, err
		}
		var have [][]byte
		if err := s.db.X.SelectContext(ctx, &have, s.db.Rebind(q), args...); err != nil {
			return nil, err
		}
		known := make(map[BlobID]bool, len(have))
		for _, h := range have {
			var id BlobID
			copy(id[:], h)
			known[id] = true
		}
		for _, id := range part {
			if !known[id] {
				out = append(out, id)
			}
		}
	}
	return out, nil
}

// FsckProblem is one disagreement found by Fsck.
type FsckProblem struct {
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
}

// FsckReport is what Fsck found.
type FsckReport struct {
	Accounts  int           `json:"accounts"`
	Mailboxes int           `json:"mailboxes"`
	Messages  int64         `json:"messages"`
	Blobs     int64         `json:"blobs"`
	Problems  []FsckProblem `json:"problems"`
	Repaired  int           `json:"repaired"`
}

// FsckOptions tunes Fsck.
type FsckOptions struct {
	// Deep reads every body back and checks it (BlobVerifier).
	Deep bool
	// Repair fixes reference counts, quotas and uid counters from the
	// message rows, and deletes orphaned bodies. Needs exclusive use of
	// the store (no server running on it).
	Repair bool
	// MaxProblems bounds the report; zero means 1000.
	MaxProblems int
}

// Fsck verifies that rows, blobs, reference counts and quotas agree.
func (s *Store) Fsck(ctx context.Context, opts FsckOptions) (FsckReport, error) {
	var rep FsckReport
	if opts.MaxProblems == 0 {
		opts.MaxProblems = 1000
	}
	add := func(kind, format string, args ...any) {
		if len(rep.Problems) < opts.MaxProblems {
			rep.Problems = append(rep.Problems, FsckProblem{Kind: kind, Detail: fmt.Sprintf(format, args...)})
		}
	}
	db := s.db.X
	if err := db.GetContext(ctx, &rep.Accounts, `SELECT COUNT(*) FROM accounts`); err != nil {
		return rep, err
	}
	if err := db.GetContext(ctx, &rep.Mailboxes, `SELECT COUNT(*) FROM mailboxes`); err != nil {
		return rep, err
	}
	if err := db.GetContext(ctx, &rep.Messages, `SELECT COUNT(*) FROM messages`); err != nil {
		return rep, err
	}
	if err := db.GetContext(ctx, &rep.Blobs, `SELECT COUNT(*) FROM blobs`); err != nil {
		return rep, err
	}

	// Reference counts: refs must equal the rows pointing at the blob:
	// message rows plus outbound queue messages (mailcore/queue).
	var refs []struct {
		ID     int64  `db:"id"`
		SHA    []byte `db:"sha"`
		Refs   int64  `db:"refs"`
		Actual int64  `db:"actual"`
		State  int    `db:"state"`
		DeadAt *int64 `db:"dead_at"`
	}
	if err := db.SelectContext(ctx, &refs, `SELECT b.id, b.sha, b.refs, b.state, b.dead_at, COALESCE(c.n, 0) AS actual
		FROM blobs b LEFT JOIN (SELECT blob_id, COUNT(*) AS n FROM (SELECT blob_id FROM messages UNION ALL SELECT blob_id FROM queue_messages) r GROUP BY blob_id) c ON c.blob_id = b.id
		WHERE b.refs <> COALESCE(c.n, 0) OR (b.refs = 0 AND b.dead_at IS NULL) OR (b.refs > 0 AND b.dead_at IS NOT NULL)`); err != nil {
		return rep, err
	}
	for _, r := range refs {
		add("refcount", "blob %x: refs=%d but %d message rows (dead_at set: %v)", r.SHA[:8], r.Refs, r.Actual, r.DeadAt != nil)
		if opts.Repair {
			var dead any
			if r.Actual == 0 {
				dead = s.unix()
			}
			if _, err := db.ExecContext(ctx, s.db.Rebind(`UPDATE blobs SET refs = ?, dead_at = ? WHERE id = ?`), r.Actual, dead, r.ID); err != nil {
				return rep, err
			}
			rep.Repaired++
		}
	}
	// Quotas: used_bytes must equal the sizes of the account's rows.
	var quotas []struct {
		ID      int64  `db:"id"`
		Address string `db:"address"`
		Used    int64  `db:"used_bytes"`
		Actual  int64  `db:"actual"`
	}
	if err := db.SelectContext(ctx, &quotas, `SELECT a.id, a.address, a.used_bytes, COALESCE(u.n, 0) AS actual
		FROM accounts a LEFT JOIN (SELECT mb.account_id, SUM(m.size) AS n FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id GROUP BY mb.account_id) u
		ON u.account_id = a.id WHERE a.used_bytes <> COALESCE(u.n, 0)`); err != nil {
		return rep, err
	}
	for _, q := range quotas {
		add("quota", "account %s: used_bytes=%d but its messages total %d", q.Address, q.Used, q.Actual)
		if opts.Repair {
			if _, err := db.ExecContext(ctx, s.db.Rebind(`UPDATE accounts SET used_bytes = ? WHERE id = ?`), q.Actual, q.ID); err != nil {
				return rep, err
			}
			rep.Repaired++
		}
	}
	// UID and modseq counters must be ahead of every row.
	var ctrs []struct {
		ID      int64  `db:"id"`
		Name    string `db:"name"`
		UIDNext int64  `db:"uidnext"`
		MaxUID  int64  `db:"maxuid"`
		HMS     int64  `db:"highest_modseq"`
		MaxMS   int64  `db:"maxms"`
	}
	if err := db.SelectContext(ctx, &ctrs, `SELECT mb.id, mb.name, mb.uidnext, mb.highest_modseq, MAX(m.uid) AS maxuid, MAX(m.modseq) AS maxms
		FROM mailboxes mb JOIN messages m ON m.mailbox_id = mb.id GROUP BY mb.id, mb.name, mb.uidnext, mb.highest_modseq
		HAVING MAX(m.uid) >= mb.uidnext OR MAX(m.modseq) > mb.highest_modseq`); err != nil {
		return rep, err
	}
	for _, c := range ctrs {
		add("uid", "mailbox %d %q: uidnext=%d highest_modseq=%d but max uid %d, max modseq %d", c.ID, c.Name, c.UIDNext, c.HMS, c.MaxUID, c.MaxMS)
		if opts.Repair {
			if _, err := db.ExecContext(ctx, s.db.Rebind(`UPDATE mailboxes SET uidnext = ?, highest_modseq = ? WHERE id = ?`), max(c.UIDNext, c.MaxUID+1), max(c.HMS, c.MaxMS), c.ID); err != nil {
				return rep, err
			}
			rep.Repaired++
		}
	}
	// Every referenced blob row must have its body; sizes must agree.
	var live []struct {
		SHA  []byte `db:"sha"`
		Size int64  `db:"size"`
	}
	sizes := map[BlobID]int64{}
	if err := db.SelectContext(ctx, &live, `SELECT sha, size FROM blobs WHERE state = 0`); err != nil {
		return rep, err
	}
	for _, l := range live {
		var id BlobID
		copy(id[:], l.SHA)
		sizes[id] = l.Size
	}
	stored := map[BlobID]int64{}
	if err := s.blobs.Walk(ctx, func(id BlobID, size int64) error {
		stored[id] = size
		return nil
	}); err != nil {
		return rep, err
	}
	for id, size := range sizes {
		got, ok := stored[id]
		switch {
		case !ok:
			add("missing-body", "blob %s (%d bytes) has a row but no body", id, size)
		case got != size:
			add("size", "blob %s: row says %d bytes, store holds %d", id, size, got)
		}
	}
	var orphans []BlobID
	for id := range stored {
		if _, ok := sizes[id]; !ok {
			orphans = append(orphans, id)
		}
	}
	for _, id := range orphans {
		add("orphan", "body %s is stored but no row references it", id)
	}
	if opts.Repair && len(orphans) > 0 {
		if err := s.blobs.Delete(ctx, orphans); err != nil {
			return rep, err
		}
		rep.Repaired += len(orphans)
	}
	if opts.Deep {
		v, ok := s.blobs.(BlobVerifier)
		if !ok {
			return rep, errors.New("mailcore: this blob store cannot verify its bodies")
		}
		probs, err := v.Verify(ctx)
		if err != nil {
			return rep, err
		}
		for _, p := range probs {
			add("corrupt-body", "%s at %s: %s", p.ID, p.Where, p.Reason)
		}
	}
	return rep, nil
}

// Clean reports whether the report found nothing wrong (after repairs, a
// second Fsck is the proof).
func (r FsckReport) Clean() bool { return len(r.Problems) == 0 }
