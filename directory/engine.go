package directory

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"github.com/govhub/govhub/internal/lease"
)

// Govhub is the owner name of fields govhub itself is authoritative for.
const Govhub = "govhub"

// FieldDepartment is the ownership key for departments (name, parent,
// order, status of the chart's nodes).
const FieldDepartment = "department"

// ErrBusy: another run of the same peer holds the lease "sync:<peer>".
var ErrBusy = errors.New("directory: a sync of this peer is already running")

// ErrLeaseLost: the run stopped because its lease passed to another
// holder (or could not be renewed for a whole TTL). Nothing of its plan
// was applied; the run that holds the lease now does the work.
var ErrLeaseLost = errors.New("directory: the sync lease was lost; the run stopped")

// ErrDeletionThreshold: a run would remove more objects than the
// threshold allows; nothing was changed. Run again with ConfirmDeletions.
var ErrDeletionThreshold = errors.New("directory: deletion threshold exceeded")

// DefaultOwnership is the ownership of the issue: LDAP owns names,
// departments, titles and status; govhub owns mail addresses; the affairs
// link owns mobiles.
func DefaultOwnership() map[string]string {
	return map[string]string{
		"display_name": "ldap", "title": "ldap", "rank": "ldap", "memberships": "ldap",
		"office_phone": "ldap", "employee_no": "ldap", "status": "ldap",
		FieldDepartment: "ldap",
		"mail":          Govhub,
		"mobile":        "affairslink",
		// Groups come from LDAP (groupOfNames); the affairs link has none.
		"group_name": "ldap", "group_description": "ldap", "group_mail": "ldap", "group_members": "ldap", "group_status": "ldap",
	}
}

// Config tunes an Engine. The zero value works: default ownership, match
// by employee number, threshold 500 objects or 5%, quota 1 GiB.
type Config struct {
	// Ownership maps a field (FieldNames, or FieldDepartment) to the peer
	// name authoritative for it, or Govhub. Missing fields take
	// DefaultOwnership's owner.
	Ownership map[string]string
	// MatchKey is how a person a peer reports for the first time is
	// matched to one govhub already has: "employee_no" (default) or "mail".
	MatchKey string
	// RequireMail makes a person without a mail address a broken entry.
	RequireMail bool
	// Writable lists the peers configured writable: govhub-owned fields
	// that differ on them are written back (they must be PeerWriters),
	// and, in a full run, people active in govhub that such a peer has no
	// entry for are created there (when it is a PeerCreator).
	Writable map[string]bool
	// Push lists the writable peers in which a full run creates the
	// active people they lack (push.go); off unless listed.
	Push map[string]bool
	// MaxDeletions and MaxDeletionFraction bound what one run may remove
	// (the smaller wins); defaults 500 and 0.05.
	MaxDeletions        int
	MaxDeletionFraction float64
	// Quota gives mailbox quotas by rank; DefaultQuota (1 GiB when 0)
	// otherwise.
	QuotaByRank  map[string]int64
	DefaultQuota int64
	// Provisioner, when set, is told about every person with a mail
	// address whose account-relevant fields changed.
	Provisioner Provisioner
	// Holder names this node in leases (default hostname).
	Holder   string
	LeaseTTL time.Duration
	Now      func() time.Time
	Log      *slog.Logger
}

// RunOptions choose what a run does.
type RunOptions struct {
	// Full reconciles everything (deletions included) instead of a delta.
	Full bool
	// DryRun computes the report without changing govhub or the peer.
	DryRun bool
	// ConfirmDeletions lets the run remove more than the threshold.
	ConfirmDeletions bool
}

// Change is one change a run made (or, dry, would make).
type Change struct {
	Kind string `json:"kind"` // "department", "person" or "group"
	// Action: create, update, link (a first contact matched by key),
	// leave (marked left / disabled because the peer removed it), unlink
	// (the peer removed it but does not own status), write-back, provision.
	// A create whose Target is the peer is a push: a person govhub has
	// and the writable peer had not, created there.
	Action string `json:"action"`
	// Target is the side changed: Govhub, the peer's name (write-back) or
	// "mail" (provisioning).
	Target   string            `json:"target"`
	ObjectID int64             `json:"object_id,omitempty"` // 0 for an object the run creates
	Anchor   string            `json:"anchor,omitempty"`
	Source   string            `json:"source,omitempty"`
	Fields   map[string]string `json:"fields,omitempty"` // new values
}

// ObjectError is a broken entry or a failed per-object step.
type ObjectError struct {
	Kind     string `json:"kind"`
	ObjectID int64  `json:"object_id,omitempty"`
	Anchor   string `json:"anchor,omitempty"`
	Source   string `json:"source,omitempty"`
	Error    string `json:"error"`
}

// Conflict is a field both sides changed since the last run.
type Conflict struct {
	Kind     string `json:"kind"`
	ObjectID int64  `json:"object_id,omitempty"`
	Anchor   string `json:"anchor"`
	Field    string `json:"field"`
	Ours     string `json:"ours"`
	Theirs   string `json:"theirs"`
	Winner   string `json:"winner"`
}

// Report is what a run did.
type Report struct {
	RunID       int64     `json:"run_id"`
	Peer        string    `json:"peer"`
	Kind        string    `json:"kind"` // "full" or "delta"
	DryRun      bool      `json:"dry_run"`
	Started     time.Time `json:"started"`
	Finished    time.Time `json:"finished"`
	Seen        int       `json:"seen"`
	Created     int       `json:"created"`
	Updated     int       `json:"updated"`
	Removed     int       `json:"removed"`
	WrittenBack int       `json:"written_back"`
	// CreatedInPeer counts the people created in the peer (push).
	CreatedInPeer int           `json:"created_in_peer"`
	Changes       []Change      `json:"changes"`
	Errors        []ObjectError `json:"errors"`
	Conflicts     []Conflict    `json:"conflicts"`
}

// Changed is how many changes the run made.
func (r *Report) Changed() int { return len(r.Changes) }

// Engine runs syncs between govhub's chart and peers.
type Engine struct {
	store *Store
	cfg   Config
	log   *slog.Logger
	// beforeApply, for tests, runs between planning and applying.
	beforeApply func()
}

// NewEngine returns an engine over store.
func NewEngine(store *Store, cfg Config) *Engine {
	own := DefaultOwnership()
	for k, v := range cfg.Ownership {
		own[k] = v
	}
	cfg.Ownership = own
	if cfg.MatchKey == "" {
		cfg.MatchKey = "employee_no"
	}
	if cfg.MaxDeletions == 0 {
		cfg.MaxDeletions = 500
	}
	if cfg.MaxDeletionFraction == 0 {
		cfg.MaxDeletionFraction = 0.05
	}
	if cfg.DefaultQuota == 0 {
		cfg.DefaultQuota = 1 << 30
	}
	if cfg.Holder == "" {
		cfg.Holder, _ = os.Hostname()
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = 2 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = store.now
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{store: store, cfg: cfg, log: log.With("component", "directory-sync")}
}

// Store is the chart the engine writes.
func (e *Engine) Store() *Store { return e.store }

// snapshot is an anchor's last_values: per field, the peer's value and
// ours after the last run that saw the object.
type snapshot struct {
	Peer, Ours fieldVals
	// Version is the engine's tag (configTag) and the peer's Entry.Version
	// the snapshot was taken at, "" when unknown or not to be trusted (a
	// write-back is pending): a SkippingPeer may skip reading the person
	// only while the peer still reports that version.
	Version string
}

// fieldVals holds one value per FieldNames entry, in that order (cheaper
// than a map at 200,000 people).
type fieldVals []string

var fieldIndex = func() map[string]int {
	m := map[string]int{}
	for i, f := range FieldNames {
		m[f] = i
	}
	return m
}()

func newVals() fieldVals { return make(fieldVals, len(FieldNames)) }

func (v fieldVals) get(f string) string { return v[fieldIndex[f]] }

func (v fieldVals) set(f, x string) { v[fieldIndex[f]] = x }

type anchorKey struct {
	kind   EntryKind
	anchor string
}

// run is one Run's working state: the whole chart in memory (200,000
// people fit in a few hundred MB), the plan built against it, applied in
// one transaction at the end so a failed or refused run changes nothing.
type run struct {
	e    *Engine
	peer Peer
	name string
	// lease and holder name the lease this run holds (checked at apply).
	lease, holder string
	opts          RunOptions
	now           time.Time
	rep           *Report

	depts   map[int64]*Dept
	people  map[int64]*PersonRecord
	anchors map[anchorKey]int64 // this peer's anchors → object id
	anchOf  map[objRef]string   // object → this peer's anchor
	snaps   map[anchorKey]*snapshot
	// rawSnaps are stored snapshots not decoded yet: a delta touches few
	// of them (see snap).
	rawSnaps    map[anchorKey]string
	gen         int64 // dir_generation when loaded
	mailIdx     map[string]int64
	keyIdx      map[string]int64
	baseObjects int

	nextTemp     int64
	newDepts     []int64 // temp ids in creation order (parents first)
	newPeople    []int64
	dirtyDept    map[int64]bool
	dirtyPerson  map[int64]bool
	dirtyMembers map[int64]bool
	newAnchors   map[anchorKey]int64
	delAnchors   map[anchorKey]bool
	dirtySnaps   map[anchorKey]string // encoded snapshots to store
	writebacks   []writeback
	provision    map[int64]bool

	// Groups: the chart's groups, those this run creates (temp ids) and
	// changes, and the group mail index.
	groups            map[int64]*GroupRecord
	newGroups         []int64
	dirtyGroup        map[int64]bool
	dirtyGroupMembers map[int64]bool
	groupMail         map[string]int64
	// pushes are the people to create in the peer after the commit;
	// unlinked the people whose anchor this run dropped (never pushed
	// back in the same run).
	pushes   []push
	unlinked map[int64]bool
	// peerKeys are the match-key values of every person entry the peer
	// reported this run, broken ones included: nobody with such a key is
	// pushed (the peer has them, even if govhub could not take them).
	peerKeys map[string]bool
	seen     map[anchorKey]bool
	removals int

	// phases are the wall times of the run's steps, for the log.
	phases []any
	mark   time.Time
	tag    string // configTag, computed once
	// preAnchors are this peer's anchors as knownVersions read them, for
	// the load that follows (one query, not two); nil once used.
	preAnchors []anchorRow
}

// anchorRow is one row of dir_anchors for this peer.
type anchorRow struct {
	kind   EntryKind
	id     int64
	anchor string
	lv     string
}

// phase records the time since the previous phase under name.
func (r *run) phase(name string) {
	now := time.Now()
	r.phases = append(r.phases, name, now.Sub(r.mark).Round(time.Millisecond).String())
	r.mark = now
}

type writeback struct {
	anchor string
	id     int64
	fields map[string]string
	// snap is the snapshot stored for the anchor, which assumes the
	// write-back lands; prev the peer's values before it, put back into
	// snap when it fails so the next run (delta included) tries again.
	snap *snapshot
	prev map[string]string
}

// objRef names a govhub object (for the object → anchor direction).
type objRef struct {
	kind EntryKind
	id   int64
}

func objKey(kind EntryKind, id int64) objRef { return objRef{kind, id} }

func kindName(k EntryKind) string {
	switch k {
	case KindDepartment:
		return "department"
	case KindGroup:
		return "group"
	}
	return "person"
}

// Run syncs peer once. It takes the lease "sync:<peer>" (ErrBusy when
// another node or goroutine holds it), reads the peer (delta from the stored
// cursor unless opts.Full or no cursor; ErrCursorExpired falls back to
// full), plans every change against govhub's chart, refuses the whole run
// past the deletion threshold, then applies the plan and stores the new
// cursor in one transaction, so an interrupted run leaves the chart and
// cursor as they were and the next run resumes from the old cursor. Write-
// back and provisioning follow the commit; their failures are per-object
// errors. Broken entries never stop a run.
func (e *Engine) Run(ctx context.Context, peer Peer, opts RunOptions) (*Report, error) {
	name := peer.Name()
	var tok [8]byte
	rand.Read(tok[:])
	holder := e.cfg.Holder + "/" + hex.EncodeToString(tok[:])
	lname := "sync:" + name
	db := e.store.db
	ok, err := lease.TryAcquire(ctx, db, lname, holder, e.cfg.LeaseTTL, e.cfg.Now())
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrBusy
	}
	renewCtx, stopRenew := context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		stopRenew()
		lease.Release(context.WithoutCancel(ctx), db, lname, holder)
	}()
	// A run that loses its lease (another holder took it, or renewal kept
	// failing for a whole TTL, after which another node may start) stops:
	// its context ends with ErrLeaseLost, and apply checks the holder in
	// its transaction, so two runs never both write the same peer's plan.
	ctx, lost := context.WithCancelCause(ctx)
	defer lost(nil)
	go func() {
		t := time.NewTicker(e.cfg.LeaseTTL / 3)
		defer t.Stop()
		lastOK := time.Now()
		for {
			select {
			case <-renewCtx.Done():
				return
			case <-t.C:
				ok, err := lease.TryAcquire(renewCtx, db, lname, holder, e.cfg.LeaseTTL, e.cfg.Now())
				switch {
				case err == nil && ok:
					lastOK = time.Now()
				case err == nil:
					lost(ErrLeaseLost)
					return
				case time.Since(lastOK) >= e.cfg.LeaseTTL:
					lost(ErrLeaseLost)
					return
				}
			}
		}
	}()

	r := &run{e: e, peer: peer, name: name, opts: opts, now: e.cfg.Now(), lease: lname, holder: holder}
	r.rep = &Report{Peer: name, DryRun: opts.DryRun, Started: r.now, Changes: []Change{}, Errors: []ObjectError{}, Conflicts: []Conflict{}}
	var cursor string
	err = db.X.GetContext(ctx, &cursor, db.Rebind(`SELECT cursor FROM dir_sync_state WHERE peer = ?`), name)
	if err != nil && !isNoRows(err) {
		return nil, fmt.Errorf("directory: sync state: %w", err)
	}
	full := opts.Full || cursor == ""
	r.rep.Kind = kindLabel(full)
	if err := db.X.QueryRowxContext(ctx, db.Rebind(`INSERT INTO dir_runs (peer, kind, dry_run, started_at) VALUES (?, ?, ?, ?) RETURNING id`),
		name, r.rep.Kind, boolInt(opts.DryRun), r.now.Unix()).Scan(&r.rep.RunID); err != nil {
		return nil, fmt.Errorf("directory: record run: %w", err)
	}
	log := e.log.With("run", r.rep.RunID, "peer", name)
	log.Info("sync run started", "kind", r.rep.Kind, "dry_run", opts.DryRun)
	r.mark = time.Now()
	err = r.do(ctx, full, cursor)
	if err != nil && errors.Is(context.Cause(ctx), ErrLeaseLost) {
		err = ErrLeaseLost
	}
	r.rep.Finished = e.cfg.Now()
	if ferr := r.finish(context.WithoutCancel(ctx), err); ferr != nil && err == nil {
		err = ferr
	}
	r.phase("finish")
	if err != nil {
		log.Warn("sync run failed", "err", err)
		return r.rep, err
	}
	log.Info("sync run finished", "changes", len(r.rep.Changes), "errors", len(r.rep.Errors), "conflicts", len(r.rep.Conflicts), slog.Group("took", r.phases...))
	return r.rep, nil
}

func kindLabel(full bool) string {
	if full {
		return "full"
	}
	return "delta"
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (r *run) do(ctx context.Context, full bool, cursor string) error {
	// Plan against the chart as loaded; if another run (of another peer)
	// or an edit committed in between, the apply notices (generation
	// moved) and the run reads and plans again, so no change is made on
	// stale data. The entries are dropped once planned (at 200,000 people
	// they are a good part of the run's memory), hence the new read.
	for attempt := 0; ; attempt++ {
		entries, newCursor, isFull, err := r.readAndLoad(ctx, full, cursor)
		if err != nil {
			return err
		}
		full = isFull
		r.plan(entries, full)
		entries = nil
		r.phase("plan")
		if limit := r.deletionLimit(); r.removals > limit && !r.opts.ConfirmDeletions {
			return fmt.Errorf("%w: the run would remove %d objects of %s (limit %d of %d); nothing was changed, confirm to proceed",
				ErrDeletionThreshold, r.removals, r.name, limit, r.baseObjects)
		}
		if r.opts.DryRun {
			return nil
		}
		if r.e.beforeApply != nil {
			r.e.beforeApply()
		}
		err = r.apply(ctx, full, newCursor)
		r.phase("apply")
		if errors.Is(err, errChartMoved) && attempt < 4 {
			r.e.log.Info("chart changed during the run, planning again", "peer", r.name)
			continue
		}
		if err != nil {
			return err
		}
		break
	}
	r.afterCommit(ctx)
	r.phase("after")
	return nil
}

// readAndLoad reads the peer (a delta from cursor unless full; a full
// read when the cursor expired) while govhub's chart loads beside it (the
// two overlap: the walk mostly waits on the server and the decoder, the
// load on the database). It returns the entries, the new cursor and
// whether the read was full.
func (r *run) readAndLoad(ctx context.Context, full bool, cursor string) ([]Entry, string, bool, error) {
	var entries []Entry
	collect := func(en Entry) error {
		entries = append(entries, en)
		return ctx.Err()
	}
	// The versions a SkippingPeer may skip by load while the peer
	// connects and reads its departments; the chart loads after them
	// (from the same rows), both beside the walk.
	var known map[string]string
	var knownErr error
	ready := make(chan struct{})
	sp, skipping := r.peer.(SkippingPeer)
	if full && skipping {
		go func() {
			defer close(ready)
			known, knownErr = r.knownVersions(ctx, true)
		}()
	} else {
		close(ready)
	}
	loadCtx, cancelLoad := context.WithCancel(ctx)
	defer cancelLoad()
	loaded := make(chan error, 1)
	go func() {
		<-ready
		loaded <- r.load(loadCtx)
	}()
	wait := func(readErr error) error {
		if readErr != nil {
			cancelLoad()
			<-loaded
			return readErr
		}
		r.phase("read")
		err := <-loaded
		r.phase("load")
		if knownErr != nil {
			return knownErr
		}
		return err
	}
	var newCursor string
	var err error
	if !full {
		newCursor, err = r.peer.Changes(ctx, cursor, collect)
		if errors.Is(err, ErrCursorExpired) {
			r.e.log.Info("change cursor expired, full reconcile", "peer", r.name)
			full, entries = true, nil
			r.rep.Kind = "full"
			if skipping {
				// The load has started: these rows are not handed to it.
				if known, err = r.knownVersions(ctx, false); err != nil {
					return nil, "", full, wait(err)
				}
			}
		} else if err != nil {
			return nil, "", full, wait(fmt.Errorf("directory: %s changes: %w", r.name, err))
		}
	}
	if full {
		if skipping && r.hasPeople(ctx) {
			newCursor, err = sp.FullSkipping(ctx, func(anchor string) string {
				<-ready
				return known[anchor]
			}, collect)
		} else {
			// Nobody from this peer yet (a first run): a plain walk,
			// without a stamp pass that could skip nothing.
			newCursor, err = r.peer.Full(ctx, collect)
		}
		if err != nil {
			return nil, "", full, wait(fmt.Errorf("directory: %s full read: %w", r.name, err))
		}
	}
	return entries, newCursor, full, wait(nil)
}

// errChartMoved: the chart changed between load and apply.
var errChartMoved = errors.New("directory: chart changed during the run")

func (r *run) deletionLimit() int {
	l := int(float64(r.baseObjects) * r.e.cfg.MaxDeletionFraction)
	if l > r.e.cfg.MaxDeletions {
		l = r.e.cfg.MaxDeletions
	}
	return l
}

func (r *run) load(ctx context.Context) error {
	s := r.e.store
	// The generation first: whatever commits after this moves it.
	if err := s.db.X.GetContext(ctx, &r.gen, `SELECT gen FROM dir_generation WHERE id = 1`); err != nil {
		return fmt.Errorf("directory: generation: %w", err)
	}
	rep := r.rep
	rep.Seen, rep.Created, rep.Updated, rep.Removed, rep.WrittenBack, rep.CreatedInPeer = 0, 0, 0, 0, 0, 0
	rep.Changes, rep.Errors, rep.Conflicts = []Change{}, []ObjectError{}, []Conflict{}
	r.nextTemp, r.newDepts, r.newPeople, r.writebacks, r.removals = 0, nil, nil, nil, 0
	r.newGroups, r.pushes = nil, nil
	// This peer's anchors load while the people do (two connections).
	anchorsDone := make(chan error, 1)
	go func() { anchorsDone <- r.loadAnchors(ctx) }()
	ds, err := s.Departments(ctx)
	if err != nil {
		<-anchorsDone
		return err
	}
	r.depts = map[int64]*Dept{}
	for i := range ds {
		r.depts[ds[i].ID] = &ds[i]
	}
	if r.people, err = s.allPeople(ctx); err != nil {
		<-anchorsDone
		return err
	}
	if r.groups, err = s.allGroups(ctx); err != nil {
		<-anchorsDone
		return err
	}
	r.groupMail = map[string]int64{}
	for id, g := range r.groups {
		if g.Mail != "" {
			r.groupMail[strings.ToLower(g.Mail)] = id
		}
	}
	r.mailIdx, r.keyIdx = map[string]int64{}, map[string]int64{}
	for id, p := range r.people {
		if p.Mail != "" {
			r.mailIdx[strings.ToLower(p.Mail)] = id
		}
		if k := r.matchValue(p.Mail, p.EmployeeNo); k != "" {
			r.keyIdx[k] = id
		}
	}
	if err := <-anchorsDone; err != nil {
		return err
	}
	r.baseObjects = len(r.anchors)
	r.dirtyDept, r.dirtyPerson, r.dirtyMembers = map[int64]bool{}, map[int64]bool{}, map[int64]bool{}
	r.newAnchors, r.delAnchors, r.dirtySnaps = map[anchorKey]int64{}, map[anchorKey]bool{}, map[anchorKey]string{}
	r.provision, r.seen = map[int64]bool{}, map[anchorKey]bool{}
	r.dirtyGroup, r.dirtyGroupMembers, r.unlinked = map[int64]bool{}, map[int64]bool{}, map[int64]bool{}
	r.peerKeys = map[string]bool{}
	return nil
}

func (r *run) loadAnchors(ctx context.Context) error {
	r.anchors, r.anchOf, r.snaps, r.rawSnaps = map[anchorKey]int64{}, map[objRef]string{}, map[anchorKey]*snapshot{}, map[anchorKey]string{}
	add := func(a anchorRow) {
		k := anchorKey{a.kind, a.anchor}
		r.anchors[k] = a.id
		r.anchOf[objKey(a.kind, a.id)] = a.anchor
		if a.lv != "" {
			r.rawSnaps[k] = a.lv
		}
	}
	if pre := r.preAnchors; pre != nil {
		r.preAnchors = nil
		for _, a := range pre {
			add(a)
		}
		return nil
	}
	return r.scanAnchors(ctx, add)
}

// scanAnchors calls fn for each of this peer's anchors.
func (r *run) scanAnchors(ctx context.Context, fn func(anchorRow)) error {
	s := r.e.store
	rows, err := s.db.X.QueryContext(ctx, s.db.Rebind(`SELECT kind, object_id, anchor, last_values FROM dir_anchors WHERE peer = ?`), r.name)
	if err != nil {
		return fmt.Errorf("directory: load anchors: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var a anchorRow
		if err := rows.Scan(&a.kind, &a.id, &a.anchor, &a.lv); err != nil {
			return err
		}
		fn(a)
	}
	return rows.Err()
}

func (r *run) matchValue(mail, empNo string) string {
	if r.e.cfg.MatchKey == "mail" {
		return strings.ToLower(mail)
	}
	return empNo
}

func (r *run) owner(field string) string { return r.e.cfg.Ownership[field] }

func (r *run) change(c Change) {
	r.rep.Changes = append(r.rep.Changes, c)
	switch c.Action {
	case "create":
		if c.Target != Govhub {
			r.rep.CreatedInPeer++
		} else {
			r.rep.Created++
		}
	case "update", "link":
		r.rep.Updated++
	case "leave", "unlink":
		r.rep.Removed++
	case "write-back":
		r.rep.WrittenBack++
	}
}

func (r *run) fail(en Entry, id int64, msg string) {
	r.rep.Errors = append(r.rep.Errors, ObjectError{Kind: kindName(en.Kind), ObjectID: id, Anchor: en.Anchor, Source: en.Source, Error: msg})
}

// plan turns the peer's entries into changes against the in-memory chart.
// Departments go first, in as many passes as needed for parents to precede
// children whatever order the peer used; a department whose parent never
// appears is a broken entry.
func (r *run) plan(entries []Entry, full bool) {
	var depts, people, groups, deleted []Entry
	for _, en := range entries {
		r.rep.Seen++
		if en.Person != nil {
			if kv := r.matchValue(en.Person.Mail, en.Person.EmployeeNo); kv != "" {
				r.peerKeys[kv] = true
			}
		}
		if en.Anchor == "" {
			switch {
			case en.Department != nil:
				en.Anchor = en.Department.Anchor
			case en.Person != nil:
				en.Anchor = en.Person.Anchor
			case en.Group != nil:
				en.Anchor = en.Group.Anchor
			}
		}
		switch {
		case en.Err == nil && en.Anchor == "":
			r.fail(en, 0, "entry has no anchor")
		case en.Err != nil:
			r.fail(en, 0, en.Err.Error())
			if en.Anchor != "" {
				// Known but unreadable: not a deletion.
				r.seen[anchorKey{en.Kind, en.Anchor}] = true
			}
		case en.Deleted:
			deleted = append(deleted, en)
		case en.Kind == KindPerson && en.Unchanged:
			people = append(people, en)
		case en.Kind == KindDepartment && en.Department != nil:
			depts = append(depts, en)
		case en.Kind == KindPerson && en.Person != nil:
			people = append(people, en)
		case en.Kind == KindGroup && en.Group != nil:
			groups = append(groups, en)
		default:
			r.fail(en, 0, "entry carries no object")
		}
	}
	for len(depts) > 0 {
		var later []Entry
		for _, en := range depts {
			d := en.Department
			if d.ParentAnchor != "" {
				if _, ok := r.anchors[anchorKey{KindDepartment, d.ParentAnchor}]; !ok {
					later = append(later, en)
					continue
				}
			}
			r.planDept(en)
		}
		if len(later) == len(depts) {
			for _, en := range later {
				r.seen[anchorKey{KindDepartment, en.Anchor}] = true
				r.fail(en, r.anchors[anchorKey{KindDepartment, en.Anchor}], "parent department "+strconv.Quote(en.Department.ParentAnchor)+" not found")
			}
			break
		}
		depts = later
	}
	// Each entry is released once planned: at 200,000 people the peer's
	// copies are a good part of the run's memory (do drops the rest).
	clear(entries)
	for i := range people {
		r.planPerson(people[i])
		people[i] = Entry{}
	}
	r.planGroups(groups)
	for _, en := range deleted {
		r.planRemove(en.Kind, en.Anchor, en.Source)
	}
	r.planPendingWriteBacks()
	if full {
		var gone []anchorKey
		for k := range r.anchors {
			if !r.seen[k] && !r.delAnchors[k] {
				gone = append(gone, k)
			}
		}
		sort.Slice(gone, func(i, j int) bool {
			if gone[i].kind != gone[j].kind {
				return gone[i].kind > gone[j].kind // people before departments
			}
			return gone[i].anchor < gone[j].anchor
		})
		for _, k := range gone {
			r.planRemove(k.kind, k.anchor, "")
		}
		// Only a full run has seen (and matched by key) everyone the peer
		// holds: a delta cannot tell "not in the peer" from "unchanged".
		r.planPushes()
	}
}

// badText reports text a directory must not carry: invalid UTF-8 and
// control characters (they break LDIF, CSV exports and mail headers).
func badText(vals ...string) bool {
	for _, v := range vals {
		if !utf8.ValidString(v) {
			return true
		}
		for _, c := range v {
			if unicode.IsControl(c) || c == '\uFFFD' {
				return true
			}
		}
	}
	return false
}

func (r *run) planDept(en Entry) {
	d := en.Department
	k := anchorKey{KindDepartment, en.Anchor}
	r.seen[k] = true
	if strings.TrimSpace(d.Name) == "" {
		r.fail(en, r.anchors[k], "department has no name")
		return
	}
	if badText(d.Name) {
		r.fail(en, r.anchors[k], "bad characters in department name")
		return
	}
	var parent int64
	if d.ParentAnchor != "" {
		parent = r.anchors[anchorKey{KindDepartment, d.ParentAnchor}]
	}
	status := d.Status
	if status == "" {
		status = StatusActive
	}
	want := Dept{ParentID: parent, Name: d.Name, Order: d.Order, Status: status}
	id, ok := r.anchors[k]
	if !ok {
		// First contact: the same name under the same parent, not yet
		// anchored to this peer, is the same department.
		for _, cand := range r.sortedDepts() {
			if cand.Name == d.Name && cand.ParentID == parent && r.anchOf[objKey(KindDepartment, cand.ID)] == "" {
				id, ok = cand.ID, true
				break
			}
		}
		if ok {
			r.addAnchor(k, id)
			r.change(Change{Kind: "department", Action: "link", Target: Govhub, ObjectID: idOrZero(id), Anchor: en.Anchor, Source: en.Source})
		} else {
			r.nextTemp--
			id = r.nextTemp
			nd := want
			nd.ID = id
			r.depts[id] = &nd
			r.newDepts = append(r.newDepts, id)
			r.addAnchor(k, id)
			r.change(Change{Kind: "department", Action: "create", Target: Govhub, Anchor: en.Anchor, Source: en.Source,
				Fields: map[string]string{"name": nd.Name, "parent": d.ParentAnchor, "order": strconv.Itoa(nd.Order), "status": nd.Status}})
			return
		}
	}
	cur := r.depts[id]
	if cur == nil || r.owner(FieldDepartment) != r.name {
		return
	}
	f := map[string]string{}
	if cur.Name != want.Name {
		f["name"] = want.Name
	}
	if cur.ParentID != want.ParentID {
		if want.ParentID != 0 && r.isBelow(want.ParentID, id) {
			r.fail(en, idOrZero(id), "department would become its own ancestor")
			return
		}
		f["parent"] = d.ParentAnchor
	}
	if cur.Order != want.Order {
		f["order"] = strconv.Itoa(want.Order)
	}
	if cur.Status != want.Status {
		f["status"] = want.Status
	}
	if len(f) == 0 {
		return
	}
	want.ID = id
	*cur = want
	r.dirtyDept[id] = true
	r.change(Change{Kind: "department", Action: "update", Target: Govhub, ObjectID: idOrZero(id), Anchor: en.Anchor, Source: en.Source, Fields: f})
}

// treeRanks numbers the departments in display order, depth first
// (a parent before its children, siblings by order then id): the address
// book's "department order".
func (r *run) treeRanks() map[int64]int {
	kids := map[int64][]*Dept{}
	for _, d := range r.depts {
		kids[d.ParentID] = append(kids[d.ParentID], d)
	}
	for _, ks := range kids {
		sort.Slice(ks, func(i, j int) bool {
			if ks[i].Order != ks[j].Order {
				return ks[i].Order < ks[j].Order
			}
			return ks[i].ID < ks[j].ID
		})
	}
	rank := map[int64]int{}
	var walk func(parent int64)
	walk = func(parent int64) {
		for _, d := range kids[parent] {
			if _, seen := rank[d.ID]; seen {
				continue
			}
			rank[d.ID] = len(rank)
			walk(d.ID)
		}
	}
	walk(0)
	return rank
}

// isBelow reports whether a is id or a descendant of id.
func (r *run) isBelow(a, id int64) bool {
	for n := 0; a != 0 && n < 10000; n++ {
		if a == id {
			return true
		}
		d := r.depts[a]
		if d == nil {
			return false
		}
		a = d.ParentID
	}
	return false
}

func (r *run) sortedDepts() []*Dept {
	out := make([]*Dept, 0, len(r.depts))
	for _, d := range r.depts {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func idOrZero(id int64) int64 {
	if id < 0 {
		return 0
	}
	return id
}

func (r *run) addAnchor(k anchorKey, id int64) {
	r.anchors[k] = id
	r.anchOf[objKey(k.kind, id)] = k.anchor
	r.newAnchors[k] = id
	delete(r.delAnchors, k)
}

// membersText is a membership list in this peer's terms: "anchor:order"
// sorted, departments this peer does not know as "#id".
func (r *run) membersText(ms []MemberOf) string {
	parts := make([]string, 0, len(ms))
	for _, m := range ms {
		a := r.anchOf[objKey(KindDepartment, m.DeptID)]
		if a == "" {
			a = "#" + strconv.FormatInt(m.DeptID, 10)
		}
		parts = append(parts, a+":"+strconv.Itoa(m.Order))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// recordFieldPtr and peerFieldPtr map a field name (FieldNames, except
// memberships) to the string it is in govhub's record and in a peer's
// entry; nil for any other name.
func recordFieldPtr(p *PersonRecord, f string) *string {
	switch f {
	case "display_name":
		return &p.DisplayName
	case "title":
		return &p.Title
	case "rank":
		return &p.Rank
	case "office_phone":
		return &p.OfficePhone
	case "mobile":
		return &p.Mobile
	case "mail":
		return &p.Mail
	case "employee_no":
		return &p.EmployeeNo
	case "status":
		return &p.Status
	}
	return nil
}

func peerFieldPtr(p *Person, f string) *string {
	switch f {
	case "display_name":
		return &p.DisplayName
	case "title":
		return &p.Title
	case "rank":
		return &p.Rank
	case "office_phone":
		return &p.OfficePhone
	case "mobile":
		return &p.Mobile
	case "mail":
		return &p.Mail
	case "employee_no":
		return &p.EmployeeNo
	case "status":
		return &p.Status
	}
	return nil
}

func personField(p *PersonRecord, f string) string {
	if v := recordFieldPtr(p, f); v != nil {
		return *v
	}
	return ""
}

// setPersonField sets a field; a new display name recomputes its pinyin.
func setPersonField(p *PersonRecord, f, v string) {
	if ptr := recordFieldPtr(p, f); ptr != nil {
		*ptr = v
		if f == "display_name" {
			p.PinyinFull, p.PinyinInitials = Pinyin(v)
		}
	}
}

func peerField(p *Person, f string) string {
	if v := peerFieldPtr(p, f); v != nil {
		return *v
	}
	return ""
}

// provisionFields are the fields whose change the mail account follows.
var provisionFields = map[string]bool{"display_name": true, "mail": true, "rank": true, "status": true}

func validMail(m string) bool {
	at := strings.LastIndexByte(m, '@')
	return at > 0 && at < len(m)-1 && !strings.ContainsAny(m, " \t<>,;\"()[]\\") && strings.Count(m, "@") == 1
}

func (r *run) planPerson(en Entry) {
	if en.Unchanged {
		r.planUnchanged(en)
		return
	}
	p := en.Person
	k := anchorKey{KindPerson, en.Anchor}
	r.seen[k] = true
	existing := r.anchors[k]
	vals := make([]string, 0, len(FieldNames))
	for _, f := range FieldNames {
		vals = append(vals, peerField(p, f))
	}
	switch {
	case badText(vals...):
		r.fail(en, idOrZero(existing), "bad characters in a field")
		return
	case existing == 0 && strings.TrimSpace(p.DisplayName) == "":
		r.fail(en, 0, "person has no display name")
		return
	case r.e.cfg.RequireMail && p.Mail == "" && (existing == 0 || r.people[existing].Mail == ""):
		r.fail(en, idOrZero(existing), "person has no mail address")
		return
	case p.Mail != "" && !validMail(p.Mail):
		r.fail(en, idOrZero(existing), "malformed mail address")
		return
	case p.Status != "" && p.Status != StatusActive && p.Status != StatusDisabled && p.Status != StatusLeft:
		r.fail(en, idOrZero(existing), "unknown status "+strconv.Quote(p.Status))
		return
	}
	var ms []MemberOf
	for _, m := range p.Memberships {
		did, ok := r.anchors[anchorKey{KindDepartment, m.DeptAnchor}]
		if !ok {
			r.fail(en, idOrZero(existing), "department "+strconv.Quote(m.DeptAnchor)+" not found")
			return
		}
		ms = append(ms, MemberOf{DeptID: did, Order: m.Order})
	}
	theirs := fieldVals(vals)
	if len(p.Memberships) > 0 {
		theirs.set("memberships", r.membersText(ms))
	}

	id, action := existing, ""
	if id == 0 {
		if kv := r.matchValue(p.Mail, p.EmployeeNo); kv != "" {
			if cand, ok := r.keyIdx[kv]; ok {
				if a := r.anchOf[objKey(KindPerson, cand)]; a != "" {
					r.fail(en, idOrZero(cand), "matches person "+strconv.FormatInt(cand, 10)+" already linked to "+strconv.Quote(a))
					return
				}
				id, action = cand, "link"
			}
		}
	}
	var cur *PersonRecord
	if id == 0 {
		action = "create"
		r.nextTemp--
		cur = &PersonRecord{ID: r.nextTemp, Status: StatusActive}
	} else {
		cur = r.people[id]
	}
	// Duplicate mail: the address must not name anyone else, nor a group
	// (mail to the group would land in this one person's mailbox: the
	// SMTP server finds accounts before groups).
	if m := strings.ToLower(p.Mail); m != "" && !strings.EqualFold(p.Mail, cur.Mail) {
		if g, ok := r.groupMail[m]; ok && g != 0 && r.groups[g] != nil && r.groups[g].Status != StatusLeft {
			r.fail(en, idOrZero(id), "mail address "+strconv.Quote(p.Mail)+" already belongs to group "+strconv.FormatInt(g, 10))
			return
		}
		if other, ok := r.mailIdx[m]; ok && other != cur.ID {
			takes := r.owner("mail") == r.name || cur.Mail == ""
			if takes {
				who := "person " + strconv.FormatInt(other, 10)
				if other < 0 {
					who = "another entry of this run"
				}
				r.fail(en, idOrZero(id), "mail address "+strconv.Quote(p.Mail)+" already belongs to "+who)
				return
			}
		}
	}
	snap := r.snap(k)
	next := *cur
	next.Memberships = append([]MemberOf(nil), cur.Memberships...)
	changed := map[string]string{}
	wb := map[string]string{}
	writable := r.e.cfg.Writable[r.name]
	if _, ok := r.peer.(PeerWriter); !ok {
		writable = false
	}
	ours := newVals()
	for i, f := range FieldNames {
		if f == "memberships" {
			ours[i] = r.membersText(cur.Memberships)
		} else {
			ours[i] = personField(cur, f)
		}
	}
	for i, f := range FieldNames {
		tv, ov := theirs[i], ours[i]
		owner := r.owner(f)
		if tv == ov {
			continue
		}
		if tv == "" {
			if owner == Govhub && writable && ov != "" && action != "create" {
				wb[f] = ov
			}
			continue
		}
		peerChanged := snap == nil || snap.Peer.get(f) != tv
		oursChanged := snap != nil && snap.Ours.get(f) != ov
		take := false
		switch {
		case owner == r.name:
			take = true
			if peerChanged && oursChanged && ov != "" {
				r.conflict(k, id, f, ov, tv, r.name)
			}
		case ov == "":
			take = true
		default:
			if peerChanged && oursChanged {
				r.conflict(k, id, f, ov, tv, owner)
			}
			if owner == Govhub && writable {
				wb[f] = ov
			}
		}
		if !take {
			continue
		}
		changed[f] = tv
		if f == "memberships" {
			next.Memberships = ms
		} else {
			setPersonField(&next, f, tv)
		}
	}
	if s, ok := changed["status"]; ok {
		if s == StatusLeft {
			next.LeftAt = r.now
		} else {
			next.LeftAt = time.Time{}
		}
	}
	if action == "create" {
		r.people[next.ID] = &next
		r.newPeople = append(r.newPeople, next.ID)
		id = next.ID
		r.addAnchor(k, id)
		r.change(Change{Kind: "person", Action: "create", Target: Govhub, Anchor: en.Anchor, Source: en.Source, Fields: changed})
	} else {
		if action == "link" {
			r.addAnchor(k, id)
		}
		if len(changed) > 0 || action == "link" {
			if action == "" {
				action = "update"
			}
			if len(changed) == 0 {
				changed = nil
			}
			r.people[id] = &next
			r.dirtyPerson[id] = true
			r.change(Change{Kind: "person", Action: action, Target: Govhub, ObjectID: id, Anchor: en.Anchor, Source: en.Source, Fields: changed})
		}
	}
	if _, ok := changed["memberships"]; ok {
		r.dirtyMembers[id] = true
	}
	if m, ok := changed["mail"]; ok {
		if cur.Mail != "" && r.mailIdx[strings.ToLower(cur.Mail)] == id {
			delete(r.mailIdx, strings.ToLower(cur.Mail))
		}
		r.mailIdx[strings.ToLower(m)] = id
	}
	if kv := r.matchValue(next.Mail, next.EmployeeNo); kv != "" {
		if _, ok := r.keyIdx[kv]; !ok {
			r.keyIdx[kv] = id
		}
	}
	for f := range changed {
		if provisionFields[f] && next.Mail != "" {
			r.provision[id] = true
		}
	}
	// The snapshot the next run compares with: the peer as seen now (with
	// what write-back will set), ours after this run.
	ns := &snapshot{Peer: newVals(), Ours: newVals()}
	if en.Version != "" && len(wb) == 0 && !badText(en.Version) {
		ns.Version = r.versionTag(en.Version)
	}
	for i, f := range FieldNames {
		tv := theirs[i]
		if v, ok := wb[f]; ok {
			tv = v
		}
		ns.Peer[i] = tv
		if f == "memberships" {
			ns.Ours[i] = r.membersText(next.Memberships)
		} else {
			ns.Ours[i] = personField(&next, f)
		}
	}
	if snap == nil || !sameSnap(snap, ns) {
		r.setSnap(k, ns)
	}
	if len(wb) > 0 {
		prev := map[string]string{}
		for f := range wb {
			prev[f] = theirs.get(f)
		}
		r.writebacks = append(r.writebacks, writeback{anchor: en.Anchor, id: id, fields: wb, snap: ns, prev: prev})
		r.change(Change{Kind: "person", Action: "write-back", Target: r.name, ObjectID: idOrZero(id), Anchor: en.Anchor, Source: en.Source, Fields: wb})
	}
}

// planPendingWriteBacks writes back govhub-owned fields changed in govhub
// since the last run for people the peer did not report this run (a delta
// only carries the peer's changes): the snapshot says what the peer had.
func (r *run) planPendingWriteBacks() {
	if !r.e.cfg.Writable[r.name] {
		return
	}
	if _, ok := r.peer.(PeerWriter); !ok {
		return
	}
	var keys []anchorKey
	for k := range r.anchors {
		if k.kind == KindPerson && !r.seen[k] && !r.delAnchors[k] && r.snap(k) != nil {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].anchor < keys[j].anchor })
	for _, k := range keys {
		id, snap := r.anchors[k], r.snap(k)
		p := r.people[id]
		if p == nil {
			continue
		}
		wb := map[string]string{}
		for _, f := range FieldNames {
			if f == "memberships" || r.owner(f) != Govhub {
				continue
			}
			if v := personField(p, f); v != "" && v != snap.Peer.get(f) {
				wb[f] = v
			}
		}
		if len(wb) == 0 {
			continue
		}
		// No Version: the peer's entry changes when the write lands.
		ns := &snapshot{Peer: append(fieldVals(nil), snap.Peer...), Ours: append(fieldVals(nil), snap.Ours...)}
		for f, v := range wb {
			ns.Peer.set(f, v)
			ns.Ours.set(f, v)
		}
		prev := map[string]string{}
		for f := range wb {
			prev[f] = snap.Peer.get(f)
		}
		r.setSnap(k, ns)
		r.writebacks = append(r.writebacks, writeback{anchor: k.anchor, id: id, fields: wb, snap: ns, prev: prev})
		r.change(Change{Kind: "person", Action: "write-back", Target: r.name, ObjectID: id, Anchor: k.anchor, Fields: wb})
	}
}

// encodeSnap packs a snapshot as the peer's values then ours, in
// FieldNames order, separated by 0x1f (between fields) and 0x1e (between
// the halves). Values never hold control characters (badText), and
// decoding this is several times cheaper than JSON at 200,000 anchors.
//
// In "ours", 0x1d stands for "the same as the peer's" (most values are),
// which halves what 200,000 anchors keep.
func encodeSnap(sn *snapshot) string {
	var b strings.Builder
	for i, v := range sn.Peer {
		if i > 0 {
			b.WriteByte(0x1f)
		}
		b.WriteString(v)
	}
	b.WriteByte(0x1e)
	for i, v := range sn.Ours {
		if i > 0 {
			b.WriteByte(0x1f)
		}
		if v != "" && i < len(sn.Peer) && v == sn.Peer[i] {
			b.WriteByte(0x1d)
		} else {
			b.WriteString(v)
		}
	}
	s := b.String()
	if sn.Version != "" {
		s += "\x1e" + sn.Version
	}
	return s
}

// snapVersion is the Version part of an encoded snapshot, without
// decoding the rest.
func snapVersion(s string) string {
	i := strings.LastIndexByte(s, '\x1e')
	if i < 0 || strings.Count(s, "\x1e") != 2 {
		return ""
	}
	return s[i+1:]
}

// decodeSnap reverses encodeSnap; nil for anything else (an older format
// or a cleared snapshot), which the engine treats as "no last run".
func decodeSnap(s string) *snapshot {
	peer, ours, ok := strings.Cut(s, "\x1e")
	if !ok {
		return nil
	}
	ours, version, _ := strings.Cut(ours, "\x1e")
	pv, ov := strings.Split(peer, "\x1f"), strings.Split(ours, "\x1f")
	if len(pv) != len(FieldNames) || len(ov) != len(FieldNames) {
		return nil
	}
	for i, v := range ov {
		if v == "\x1d" {
			ov[i] = pv[i]
		}
	}
	return &snapshot{Peer: pv, Ours: ov, Version: version}
}

// setSnap records ns as the anchor's snapshot for the next run: encoded
// at once (a first sync holds 200,000 of them until the apply), and
// decoded again only if this run looks at it once more.
func (r *run) setSnap(k anchorKey, ns *snapshot) {
	enc := encodeSnap(ns)
	r.dirtySnaps[k], r.rawSnaps[k] = enc, enc
	delete(r.snaps, k)
}

// snap returns the anchor's snapshot from the last run, nil if none.
func (r *run) snap(k anchorKey) *snapshot {
	if sn, ok := r.snaps[k]; ok {
		return sn
	}
	raw, ok := r.rawSnaps[k]
	if !ok {
		return nil
	}
	delete(r.rawSnaps, k)
	sn := decodeSnap(raw)
	if sn != nil {
		r.snaps[k] = sn
	}
	return sn
}

func sameSnap(a, b *snapshot) bool {
	return a.Version == b.Version && slices.Equal(a.Peer, b.Peer) && slices.Equal(a.Ours, b.Ours)
}

func (r *run) conflict(k anchorKey, id int64, f, ours, theirs, winner string) {
	r.rep.Conflicts = append(r.rep.Conflicts, Conflict{Kind: kindName(k.kind), ObjectID: idOrZero(id), Anchor: k.anchor, Field: f, Ours: ours, Theirs: theirs, Winner: winner})
}

// planRemove handles an object the peer no longer has. When the peer owns
// status the object is marked left (people) or left (departments); either
// way the anchor goes, so the peer reusing the object is a first contact.
// Nothing is ever deleted from govhub.
func (r *run) planRemove(kind EntryKind, anchor, source string) {
	k := anchorKey{kind, anchor}
	id, ok := r.anchors[k]
	if !ok || r.delAnchors[k] {
		return
	}
	r.delAnchors[k] = true
	delete(r.newAnchors, k)
	delete(r.anchors, k)
	delete(r.anchOf, objKey(kind, id))
	delete(r.dirtySnaps, k)
	ownerField := "status"
	switch kind {
	case KindDepartment:
		ownerField = FieldDepartment
	case KindGroup:
		ownerField = "group_status"
	}
	if kind == KindPerson {
		r.unlinked[id] = true
	}
	c := Change{Kind: kindName(kind), Action: "unlink", Target: Govhub, ObjectID: idOrZero(id), Anchor: anchor, Source: source}
	if r.owner(ownerField) == r.name {
		// Only status changes count against the deletion threshold: an
		// unlink, or dropping someone who had already left, removes
		// nothing from govhub.
		c.Action = "leave"
		if kind == KindPerson {
			if p := r.people[id]; p != nil && p.Status != StatusLeft {
				r.removals++
				np := *p
				np.Status, np.LeftAt = StatusLeft, r.now
				r.people[id] = &np
				r.dirtyPerson[id] = true
				c.Fields = map[string]string{"status": StatusLeft}
				if np.Mail != "" {
					r.provision[id] = true
				}
			}
		} else if kind == KindGroup {
			if g := r.groups[id]; g != nil && g.Status != StatusLeft {
				r.removals++
				ng := *g
				ng.Status = StatusLeft
				r.groups[id] = &ng
				r.dirtyGroup[id] = true
				c.Fields = map[string]string{"group_status": StatusLeft}
			}
		} else if d := r.depts[id]; d != nil && d.Status != StatusLeft {
			r.removals++
			d.Status = StatusLeft
			r.dirtyDept[id] = true
			c.Fields = map[string]string{"status": StatusLeft}
		}
	}
	r.change(c)
}

// apply writes the plan and the new cursor in one transaction.
func (r *run) apply(ctx context.Context, full bool, cursor string) error {
	db := r.e.store.db
	var realID map[int64]int64
	err := db.InTx(ctx, func(sqltx *sqlx.Tx) error {
		tx := newPtx(db, sqltx)
		defer tx.close()
		realID = map[int64]int64{}
		if r.lease != "" {
			var held int
			if err := sqltx.GetContext(ctx, &held, db.Rebind(`SELECT COUNT(*) FROM leases WHERE name = ? AND holder = ?`), r.lease, r.holder); err != nil {
				return fmt.Errorf("directory: check lease: %w", err)
			}
			if held != 1 {
				return ErrLeaseLost
			}
		}
		// Pushes and write-backs count too: they act on the chart as
		// planned, which must not have moved under them.
		if len(r.newDepts)+len(r.dirtyDept)+len(r.newPeople)+len(r.dirtyPerson)+len(r.newGroups)+len(r.dirtyGroup)+len(r.pushes)+len(r.writebacks) > 0 {
			// Compare-and-bump, first thing: on PostgreSQL the row lock
			// orders concurrent appliers and the loser sees gen moved.
			res, err := sqltx.ExecContext(ctx, db.Rebind(`UPDATE dir_generation SET gen = gen + 1 WHERE id = 1 AND gen = ?`), r.gen)
			if err != nil {
				return fmt.Errorf("directory: bump generation: %w", err)
			}
			if n, _ := res.RowsAffected(); n != 1 {
				return errChartMoved
			}
		}
		mapID := func(id int64) int64 {
			if id < 0 {
				return realID[id]
			}
			return id
		}
		for _, tmp := range r.newDepts {
			d := *r.depts[tmp]
			d.ParentID = mapID(d.ParentID)
			id, err := insertDept(ctx, tx, &d, r.now)
			if err != nil {
				return err
			}
			realID[tmp] = id
		}
		for id := range r.dirtyDept {
			if id < 0 {
				continue
			}
			d := *r.depts[id]
			d.ParentID = mapID(d.ParentID)
			if err := updateDept(ctx, tx, &d, r.now); err != nil {
				return err
			}
		}
		rank := r.treeRanks()
		sortOf := func(p *PersonRecord) int {
			best, key := -1, len(rank)
			for _, m := range p.Memberships {
				if best == -1 || m.Order < best {
					best = m.Order
					if v, ok := rank[m.DeptID]; ok {
						key = v
					}
				}
			}
			return key
		}
		mapMembers := func(ms []MemberOf) []MemberOf {
			out := make([]MemberOf, len(ms))
			for i, m := range ms {
				out[i] = MemberOf{DeptID: mapID(m.DeptID), Order: m.Order}
			}
			return out
		}
		// New people in multi-row statements, with ids reserved first.
		ids, err := tx.reservePersonIDs(ctx, len(r.newPeople))
		if err != nil {
			return err
		}
		pb := tx.batch("dir_people", newPersonCols, 15)
		for i, tmp := range r.newPeople {
			p := r.people[tmp]
			p.sortKey = sortOf(p)
			realID[tmp] = ids[i]
			if err := pb.addPerson(ctx, ids[i], p, r.now); err != nil {
				return err
			}
		}
		if err := pb.flush(ctx); err != nil {
			return err
		}
		// Memberships after all people: they reference them.
		mb := tx.batch("dir_memberships", "person_id, dept_id, sort_order", 3)
		for _, tmp := range r.newPeople {
			for _, m := range r.people[tmp].Memberships {
				if err := mb.add(ctx, realID[tmp], mapID(m.DeptID), m.Order); err != nil {
					return err
				}
			}
		}
		if err := mb.flush(ctx); err != nil {
			return err
		}
		for id := range r.dirtyPerson {
			p := *r.people[id]
			p.sortKey = sortOf(&p)
			if err := updatePerson(ctx, tx, &p, r.now); err != nil {
				return err
			}
			if r.dirtyMembers[id] {
				if err := setMemberships(ctx, tx, id, mapMembers(p.Memberships), false); err != nil {
					return err
				}
			}
		}
		// Department order or shape changes move people who did not
		// change themselves in the address book's order.
		if len(r.dirtyDept) > 0 || len(r.newDepts) > 0 {
			for id, p := range r.people {
				if id < 0 || r.dirtyPerson[id] {
					continue
				}
				if k := sortOf(p); k != p.sortKey {
					if err := tx.exec(ctx, `UPDATE dir_people SET sort_dept = ? WHERE id = ?`, k, id); err != nil {
						return fmt.Errorf("directory: person order: %w", err)
					}
				}
			}
		}
		if err := r.applyGroups(ctx, tx, mapID, realID); err != nil {
			return err
		}
		for k := range r.delAnchors {
			if err := tx.exec(ctx, `DELETE FROM dir_anchors WHERE peer = ? AND kind = ? AND anchor = ?`, r.name, int(k.kind), k.anchor); err != nil {
				return fmt.Errorf("directory: drop anchor: %w", err)
			}
		}
		ab := tx.batch("dir_anchors", "kind, object_id, peer, anchor, last_values", 5)
		for k, id := range r.newAnchors {
			lv := ""
			if sn, ok := r.dirtySnaps[k]; ok {
				lv = sn
			}
			if err := ab.add(ctx, int(k.kind), mapID(id), r.name, k.anchor, lv); err != nil {
				return err
			}
		}
		if err := ab.flush(ctx); err != nil {
			return err
		}
		for k, sn := range r.dirtySnaps {
			if _, isNew := r.newAnchors[k]; isNew {
				continue
			}
			if err := tx.exec(ctx, `UPDATE dir_anchors SET last_values = ? WHERE peer = ? AND kind = ? AND anchor = ?`, sn, r.name, int(k.kind), k.anchor); err != nil {
				return fmt.Errorf("directory: snapshot %s: %w", k.anchor, err)
			}
		}
		for _, c := range r.rep.Conflicts {
			id := c.ObjectID
			if id == 0 {
				id = mapID(r.anchors[anchorKey{EntryKind(kindOf(c.Kind)), c.Anchor}])
			}
			if _, err := sqltx.ExecContext(ctx, db.Rebind(`INSERT INTO dir_conflicts (run_id, kind, object_id, peer, field, ours, theirs, winner, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
				r.rep.RunID, kindOf(c.Kind), id, r.name, c.Field, c.Ours, c.Theirs, c.Winner, r.now.Unix()); err != nil {
				return fmt.Errorf("directory: conflict: %w", err)
			}
		}
		q := `INSERT INTO dir_sync_state (peer, cursor, last_run_id, last_run_at, last_full_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (peer) DO UPDATE SET cursor = excluded.cursor, last_run_id = excluded.last_run_id, last_run_at = excluded.last_run_at,
			last_full_at = CASE WHEN excluded.last_full_at > 0 THEN excluded.last_full_at ELSE dir_sync_state.last_full_at END`
		fullAt := int64(0)
		if full {
			fullAt = r.now.Unix()
		}
		if _, err := sqltx.ExecContext(ctx, db.Rebind(q), r.name, cursor, r.rep.RunID, r.now.Unix(), fullAt); err != nil {
			return fmt.Errorf("directory: store cursor: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Rename temporary ids to the real ones for what follows the commit.
	for tmp, id := range realID {
		if p := r.people[tmp]; p != nil {
			delete(r.people, tmp)
			p.ID = id
			for i, m := range p.Memberships {
				if m.DeptID < 0 {
					p.Memberships[i].DeptID = realID[m.DeptID]
				}
			}
			r.people[id] = p
			if r.provision[tmp] {
				delete(r.provision, tmp)
				r.provision[id] = true
			}
		}
	}
	for i := range r.writebacks {
		if r.writebacks[i].id < 0 {
			r.writebacks[i].id = realID[r.writebacks[i].id]
		}
	}
	return nil
}

// afterCommit writes back to the peer and provisions accounts. Each is
// idempotent and per object: a failure is recorded, and the next run
// retries a write-back because the peer still differs.
func (r *run) afterCommit(ctx context.Context) {
	// The plan's working maps are done with: let provisioning (the
	// longest step of a first sync) reuse their memory. What follows uses
	// people, anchOf, provision and writebacks.
	r.snaps, r.rawSnaps, r.dirtySnaps, r.anchors, r.newAnchors, r.delAnchors = nil, nil, nil, nil, nil, nil
	r.seen, r.mailIdx, r.keyIdx, r.dirtyPerson, r.dirtyMembers, r.dirtyDept = nil, nil, nil, nil, nil, nil
	if w, ok := r.peer.(PeerWriter); ok {
		for _, wb := range r.writebacks {
			if err := w.UpdatePerson(ctx, wb.anchor, wb.fields); err != nil {
				r.rep.Errors = append(r.rep.Errors, ObjectError{Kind: "person", ObjectID: wb.id, Anchor: wb.anchor, Error: "write-back: " + err.Error()})
				// The peer keeps its value: the snapshot must say so.
				for f, v := range wb.prev {
					wb.snap.Peer.set(f, v)
				}
				wb.snap.Version = "" // read the person again next time
				db := r.e.store.db
				if _, err := db.X.ExecContext(ctx, db.Rebind(`UPDATE dir_anchors SET last_values = ? WHERE peer = ? AND kind = ? AND anchor = ?`), encodeSnap(wb.snap), r.name, int(KindPerson), wb.anchor); err != nil {
					r.rep.Errors = append(r.rep.Errors, ObjectError{Kind: "person", ObjectID: wb.id, Anchor: wb.anchor, Error: "write-back bookkeeping: " + err.Error()})
				}
			}
		}
	}
	r.afterPushes(ctx)
	if r.e.cfg.Provisioner == nil {
		return
	}
	ids := make([]int64, 0, len(r.provision))
	for id := range r.provision {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var specs []AccountSpec
	for _, id := range ids {
		if p := r.people[id]; p != nil && p.Mail != "" {
			specs = append(specs, r.e.accountSpec(p))
		}
	}
	var errs []error
	if bp, ok := r.e.cfg.Provisioner.(BatchProvisioner); ok {
		errs = bp.EnsureAccounts(ctx, specs)
	} else {
		errs = make([]error, len(specs))
		for i, sp := range specs {
			errs[i] = r.e.cfg.Provisioner.EnsureAccount(ctx, sp)
		}
	}
	for i, err := range errs {
		if err != nil && i < len(specs) {
			id := specs[i].PersonID
			r.rep.Errors = append(r.rep.Errors, ObjectError{Kind: "person", ObjectID: id, Anchor: r.anchOf[objKey(KindPerson, id)], Error: "provision: " + err.Error()})
		}
	}
}

// finish records the run's outcome, its per-object results and counts.
func (r *run) finish(ctx context.Context, runErr error) error {
	db := r.e.store.db
	status, msg := "ok", ""
	if runErr != nil {
		status, msg = "failed", runErr.Error()
	}
	rep := r.rep
	return db.InTx(ctx, func(tx *sqlx.Tx) error {
		seq := 0
		pt := newPtx(db, tx)
		defer pt.close()
		ob := pt.batch("dir_run_objects", "run_id, seq, kind, object_id, anchor, source, action, target, fields, result, error", 11)
		for _, c := range rep.Changes {
			seq++
			f := ""
			if len(c.Fields) > 0 {
				b, _ := json.Marshal(c.Fields)
				f = string(b)
			}
			if err := ob.add(ctx, rep.RunID, seq, kindOf(c.Kind), c.ObjectID, c.Anchor, c.Source, c.Action, c.Target, f, "ok", ""); err != nil {
				return err
			}
		}
		for _, oe := range rep.Errors {
			seq++
			if err := ob.add(ctx, rep.RunID, seq, kindOf(oe.Kind), oe.ObjectID, oe.Anchor, oe.Source, "error", Govhub, "", "error", oe.Error); err != nil {
				return err
			}
		}
		if err := ob.flush(ctx); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, db.Rebind(`UPDATE dir_runs SET kind = ?, finished_at = ?, status = ?, seen = ?, created = ?, updated = ?, removed = ?, written_back = ?, created_in_peer = ?, errors = ?, conflicts = ?, error = ? WHERE id = ?`),
			rep.Kind, rep.Finished.Unix(), status, rep.Seen, rep.Created, rep.Updated, rep.Removed, rep.WrittenBack, rep.CreatedInPeer, len(rep.Errors), len(rep.Conflicts), msg, rep.RunID)
		return err
	})
}

func kindOf(s string) int {
	switch s {
	case "department":
		return int(KindDepartment)
	case "group":
		return int(KindGroup)
	}
	return int(KindPerson)
}

// Validate reports configuration mistakes with messages meant for the
// operator who wrote the YAML.
func (c *Config) Validate() error {
	switch c.MatchKey {
	case "", "employee_no", "mail":
	default:
		return fmt.Errorf("directory: match_key %q: want employee_no or mail", c.MatchKey)
	}
	for f, owner := range c.Ownership {
		if _, ok := fieldIndex[f]; !ok && f != FieldDepartment && !slices.Contains(GroupFieldNames, f) {
			return fmt.Errorf("directory: ownership of unknown field %q (fields: %s, %s, %s)", f, strings.Join(FieldNames, ", "), FieldDepartment, strings.Join(GroupFieldNames, ", "))
		}
		if owner == "" {
			return fmt.Errorf("directory: ownership of %q names no peer", f)
		}
	}
	if c.MaxDeletions < 0 || c.MaxDeletionFraction < 0 || c.MaxDeletionFraction > 1 {
		return errors.New("directory: max_deletions must be ≥ 0 and max_deletion_fraction within 0..1")
	}
	if c.DefaultQuota < 0 {
		return errors.New("directory: default_quota must be ≥ 0")
	}
	for rank, q := range c.QuotaByRank {
		if q <= 0 {
			return fmt.Errorf("directory: quota for rank %q must be > 0", rank)
		}
	}
	return nil
}
