package directory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/robfig/cron/v3"
)

// Schedule is one cron job: a full or delta run of a peer.
type Schedule struct {
	Peer   string `json:"peer" db:"peer"`
	Kind   string `json:"kind" db:"kind"` // "full" or "delta"
	Spec   string `json:"spec" db:"spec"` // five-field cron, e.g. "*/5 * * * *"
	Paused bool   `json:"paused" db:"paused"`
	// Next is the next fire time (zero when paused).
	Next     time.Time `json:"next,omitzero" db:"-"`
	LastSlot int64     `json:"-" db:"last_slot"`
}

// ErrBadSchedule: the kind or cron expression is not valid.
var ErrBadSchedule = errors.New("directory: bad schedule")

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// SetSchedule creates or replaces the schedule of peer's kind runs. spec
// is a standard five-field cron expression (or a descriptor such as
// "@daily"), evaluated in UTC. The first run is the first fire time after
// now.
func (s *Store) SetSchedule(ctx context.Context, peer, kind, spec string) error {
	if kind != "full" && kind != "delta" {
		return fmt.Errorf("%w: kind %q is not full or delta", ErrBadSchedule, kind)
	}
	if peer == "" {
		return fmt.Errorf("%w: no peer", ErrBadSchedule)
	}
	if _, err := cronParser.Parse(spec); err != nil {
		return fmt.Errorf("%w: %q: %v", ErrBadSchedule, spec, err)
	}
	_, err := s.db.X.ExecContext(ctx, s.db.Rebind(`INSERT INTO dir_schedules (peer, kind, spec, paused, last_slot) VALUES (?, ?, ?, 0, ?)
		ON CONFLICT (peer, kind) DO UPDATE SET spec = excluded.spec, last_slot = excluded.last_slot`), peer, kind, spec, s.now().Unix())
	if err != nil {
		return fmt.Errorf("directory: set schedule: %w", err)
	}
	return nil
}

// PauseSchedule pauses (or, with paused false, resumes) a schedule. A
// resumed schedule does not catch up the slots it missed while paused.
func (s *Store) PauseSchedule(ctx context.Context, peer, kind string, paused bool) error {
	res, err := s.db.X.ExecContext(ctx, s.db.Rebind(`UPDATE dir_schedules SET paused = ?, last_slot = ? WHERE peer = ? AND kind = ?`),
		boolInt(paused), s.now().Unix(), peer, kind)
	if err != nil {
		return fmt.Errorf("directory: pause schedule: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// DeleteSchedule removes a schedule.
func (s *Store) DeleteSchedule(ctx context.Context, peer, kind string) error {
	res, err := s.db.X.ExecContext(ctx, s.db.Rebind(`DELETE FROM dir_schedules WHERE peer = ? AND kind = ?`), peer, kind)
	if err != nil {
		return fmt.Errorf("directory: delete schedule: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// Schedules lists every schedule with its next fire time after now.
func (s *Store) Schedules(ctx context.Context) ([]Schedule, error) {
	type row struct {
		Peer     string `db:"peer"`
		Kind     string `db:"kind"`
		Spec     string `db:"spec"`
		Paused   int    `db:"paused"`
		LastSlot int64  `db:"last_slot"`
	}
	var rows []row
	if err := s.db.X.SelectContext(ctx, &rows, `SELECT peer, kind, spec, paused, last_slot FROM dir_schedules ORDER BY peer, kind`); err != nil {
		return nil, fmt.Errorf("directory: schedules: %w", err)
	}
	now := s.now()
	out := make([]Schedule, len(rows))
	for i, r := range rows {
		out[i] = Schedule{Peer: r.Peer, Kind: r.Kind, Spec: r.Spec, Paused: r.Paused != 0, LastSlot: r.LastSlot}
		if sc, err := cronParser.Parse(r.Spec); err == nil && !out[i].Paused {
			from := time.Unix(r.LastSlot, 0).UTC()
			if now.After(from) {
				from = now
			}
			out[i].Next = sc.Next(from.UTC())
		}
	}
	return out, nil
}

// Scheduler runs the stored schedules through an Engine.
type Scheduler struct {
	engine *Engine
	peers  map[string]Peer
	now    func() time.Time
	log    *slog.Logger
}

// NewScheduler runs schedules of the named peers (others are reported and
// skipped). Its clock is the engine's.
func NewScheduler(e *Engine, peers map[string]Peer) *Scheduler {
	return &Scheduler{engine: e, peers: peers, now: e.cfg.Now, log: e.log.With("component", "directory-scheduler")}
}

// TickResult is what Tick did with one due job.
type TickResult struct {
	Peer, Kind string
	Slot       time.Time
	Report     *Report
	Err        error // ErrBusy when another node runs the peer
}

// Tick runs, once each, the jobs with a fire time in (last slot, now]: a
// job that missed several slots (the node was down) runs once, not once
// per slot. Each slot is claimed in the database first, so of several
// nodes ticking the same schedules only one runs it; the engine's lease
// keeps a full and a delta of the same peer from overlapping. Full runs go
// before deltas.
func (s *Scheduler) Tick(ctx context.Context) ([]TickResult, error) {
	scheds, err := s.engine.store.Schedules(ctx)
	if err != nil {
		return nil, err
	}
	sort.SliceStable(scheds, func(i, j int) bool { return scheds[i].Kind == "full" && scheds[j].Kind != "full" })
	now := s.now().UTC()
	db := s.engine.store.db
	var out []TickResult
	for _, sc := range scheds {
		if sc.Paused {
			continue
		}
		cs, err := cronParser.Parse(sc.Spec)
		if err != nil {
			continue
		}
		slot := time.Time{}
		for t := cs.Next(time.Unix(sc.LastSlot, 0).UTC()); !t.After(now) && !t.IsZero(); t = cs.Next(t) {
			slot = t
		}
		if slot.IsZero() {
			continue
		}
		res, err := db.X.ExecContext(ctx, db.Rebind(`UPDATE dir_schedules SET last_slot = ? WHERE peer = ? AND kind = ? AND last_slot < ? AND paused = 0`),
			slot.Unix(), sc.Peer, sc.Kind, slot.Unix())
		if err != nil {
			return out, fmt.Errorf("directory: claim slot: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			continue // another node took it
		}
		tr := TickResult{Peer: sc.Peer, Kind: sc.Kind, Slot: slot}
		peer := s.peers[sc.Peer]
		if peer == nil {
			tr.Err = fmt.Errorf("directory: schedule for unconfigured peer %q", sc.Peer)
		} else {
			tr.Report, tr.Err = s.engine.Run(ctx, peer, RunOptions{Full: sc.Kind == "full"})
		}
		if tr.Err != nil {
			s.log.Warn("scheduled run failed", "peer", sc.Peer, "kind", sc.Kind, "err", tr.Err)
		}
		out = append(out, tr)
	}
	return out, nil
}

// Loop calls Tick every interval (30 s when 0) until ctx ends. Cron
// granularity is a minute, so a job starts at most interval late.
func (s *Scheduler) Loop(ctx context.Context, interval time.Duration) {
	if interval == 0 {
		interval = 30 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.Tick(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("schedule tick failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
