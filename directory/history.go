package directory

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// RunSummary is one row of the run history (govhub sync history).
type RunSummary struct {
	ID          int64     `json:"id"`
	Peer        string    `json:"peer"`
	Kind        string    `json:"kind"`
	DryRun      bool      `json:"dry_run"`
	Started     time.Time `json:"started"`
	Finished    time.Time `json:"finished,omitzero"`
	Status      string    `json:"status"` // running, ok, failed
	Seen        int       `json:"seen"`
	Created     int       `json:"created"`
	Updated     int       `json:"updated"`
	Removed     int       `json:"removed"`
	WrittenBack int       `json:"written_back"`
	// CreatedInPeer counts people created in the peer (push).
	CreatedInPeer int    `json:"created_in_peer"`
	Errors        int    `json:"errors"`
	Conflicts     int    `json:"conflicts"`
	Error         string `json:"error,omitempty"`
}

// RunObject is one per-object result of a run.
type RunObject struct {
	Kind     string            `json:"kind"`
	ObjectID int64             `json:"object_id,omitempty"`
	Anchor   string            `json:"anchor,omitempty"`
	Source   string            `json:"source,omitempty"`
	Action   string            `json:"action"`
	Target   string            `json:"target"`
	Fields   map[string]string `json:"fields,omitempty"`
	Result   string            `json:"result"`
	Error    string            `json:"error,omitempty"`
}

// RunDetail is a run with its objects and conflicts (govhub sync show).
type RunDetail struct {
	RunSummary
	Objects   []RunObject `json:"objects"`
	Conflicts []Conflict  `json:"conflicts"`
}

type runRow struct {
	ID            int64  `db:"id"`
	Peer          string `db:"peer"`
	Kind          string `db:"kind"`
	DryRun        int    `db:"dry_run"`
	Started       int64  `db:"started_at"`
	Finished      int64  `db:"finished_at"`
	Status        string `db:"status"`
	Seen          int    `db:"seen"`
	Created       int    `db:"created"`
	Updated       int    `db:"updated"`
	Removed       int    `db:"removed"`
	WrittenBack   int    `db:"written_back"`
	CreatedInPeer int    `db:"created_in_peer"`
	Errors        int    `db:"errors"`
	Conflicts     int    `db:"conflicts"`
	Error         string `db:"error"`
}

func (r runRow) summary() RunSummary {
	s := RunSummary{ID: r.ID, Peer: r.Peer, Kind: r.Kind, DryRun: r.DryRun != 0, Started: time.Unix(r.Started, 0).UTC(), Status: r.Status,
		Seen: r.Seen, Created: r.Created, Updated: r.Updated, Removed: r.Removed, WrittenBack: r.WrittenBack, CreatedInPeer: r.CreatedInPeer, Errors: r.Errors, Conflicts: r.Conflicts, Error: r.Error}
	if r.Finished != 0 {
		s.Finished = time.Unix(r.Finished, 0).UTC()
	}
	return s
}

const runCols = `id, peer, kind, dry_run, started_at, finished_at, status, seen, created, updated, removed, written_back, created_in_peer, errors, conflicts, error`

// Runs lists the latest runs, newest first; peer "" for all peers.
func (s *Store) Runs(ctx context.Context, peer string, limit int) ([]RunSummary, error) {
	if limit <= 0 {
		limit = 50
	}
	var rows []runRow
	var err error
	if peer == "" {
		err = s.db.X.SelectContext(ctx, &rows, s.db.Rebind(`SELECT `+runCols+` FROM dir_runs ORDER BY id DESC LIMIT ?`), limit)
	} else {
		err = s.db.X.SelectContext(ctx, &rows, s.db.Rebind(`SELECT `+runCols+` FROM dir_runs WHERE peer = ? ORDER BY id DESC LIMIT ?`), peer, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("directory: runs: %w", err)
	}
	out := make([]RunSummary, len(rows))
	for i, r := range rows {
		out[i] = r.summary()
	}
	return out, nil
}

// Run returns one run with its per-object results and the conflicts it
// recorded.
func (s *Store) Run(ctx context.Context, id int64) (*RunDetail, error) {
	var r runRow
	err := s.db.X.GetContext(ctx, &r, s.db.Rebind(`SELECT `+runCols+` FROM dir_runs WHERE id = ?`), id)
	if isNoRows(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("directory: run %d: %w", id, err)
	}
	d := &RunDetail{RunSummary: r.summary(), Objects: []RunObject{}, Conflicts: []Conflict{}}
	rows, err := s.db.X.QueryContext(ctx, s.db.Rebind(`SELECT kind, object_id, anchor, source, action, target, fields, result, error FROM dir_run_objects WHERE run_id = ? ORDER BY seq`), id)
	if err != nil {
		return nil, fmt.Errorf("directory: run %d objects: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var o RunObject
		var kind int
		var fields string
		if err := rows.Scan(&kind, &o.ObjectID, &o.Anchor, &o.Source, &o.Action, &o.Target, &fields, &o.Result, &o.Error); err != nil {
			return nil, err
		}
		o.Kind = kindName(EntryKind(kind))
		if fields != "" {
			json.Unmarshal([]byte(fields), &o.Fields)
		}
		d.Objects = append(d.Objects, o)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	crows, err := s.db.X.QueryContext(ctx, s.db.Rebind(`SELECT kind, object_id, field, ours, theirs, winner FROM dir_conflicts WHERE run_id = ? ORDER BY id`), id)
	if err != nil {
		return nil, fmt.Errorf("directory: run %d conflicts: %w", id, err)
	}
	defer crows.Close()
	for crows.Next() {
		var c Conflict
		var kind int
		if err := crows.Scan(&kind, &c.ObjectID, &c.Field, &c.Ours, &c.Theirs, &c.Winner); err != nil {
			return nil, err
		}
		c.Kind = kindName(EntryKind(kind))
		d.Conflicts = append(d.Conflicts, c)
	}
	return d, crows.Err()
}
