package ldap

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/google/uuid"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/govhub/govhub/directory"
)

const (
	modeSync      = "sync"
	modeTimestamp = "ts"
	modeStamp     = "stamp"
)

// cursor is what Full and Changes hand the engine, opaque to it: either
// the two RFC 4533 sync cookies (one per search: departments, people) or
// the highest modifyTimestamp seen.
type cursor struct {
	Mode   string `json:"m"`
	Dept   []byte `json:"d,omitempty"`
	People []byte `json:"p,omitempty"`
	// Groups is the groups search's cookie (none from before groups were
	// read: that search then starts with the whole content).
	Groups []byte `json:"g,omitempty"`
	// KnownGroups is, like Known, the group anchors at the cursor.
	KnownGroups []byte `json:"kg,omitempty"`
	Since       string `json:"t,omitempty"`
	// Known is the department anchors (16-byte entryUUIDs, concatenated)
	// at the cursor. RFC 4533 reports a deletion by entryUUID alone, and a
	// sync search also "deletes" entries that merely left its content (a
	// person seen from the department search); Known tells a department's
	// deletion from those.
	Known []byte `json:"k,omitempty"`
}

func packUUIDs(anchors []string) []byte {
	out := make([]byte, 0, 16*len(anchors))
	for _, a := range anchors {
		if u, err := uuid.Parse(a); err == nil {
			out = append(out, u[:]...)
		}
	}
	return out
}

func unpackUUIDs(b []byte) map[string]bool {
	m := make(map[string]bool, len(b)/16)
	for i := 0; i+16 <= len(b); i += 16 {
		u, _ := uuid.FromBytes(b[i : i+16])
		m[u.String()] = true
	}
	return m
}

// openldapCookie is syncprov's cookie (rid=NNN[,sid=NNN][,csn=CSN;...]);
// a CSN is time#count#sid#mod.
var openldapCookie = regexp.MustCompile(`^rid=[0-9]{1,3}(,sid=[0-9a-fA-F]{1,3})?(,csn=[0-9]{14}\.[0-9]{6}Z#[0-9a-f]{6}#[0-9a-f]{3}#[0-9a-f]{6}(;[0-9]{14}\.[0-9]{6}Z#[0-9a-f]{6}#[0-9a-f]{3}#[0-9a-f]{6})*)?$`)

// checkCookie refuses a cookie in OpenLDAP's form that OpenLDAP would
// not parse: syncprov silently ignores such a cookie and sends the whole
// content as additions (instead of RFC 4533 e-syncRefreshRequired),
// which would hide every deletion. Other servers' cookies are opaque.
func checkCookie(c []byte) error {
	if len(c) > 4 && string(c[:4]) == "rid=" && !openldapCookie.Match(c) {
		return fmt.Errorf("%w: sync cookie is malformed", directory.ErrCursorExpired)
	}
	return nil
}

func (c cursor) encode() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// generalizedTime (RFC 4517 3.3.13) as servers write modifyTimestamp.
var generalizedTime = regexp.MustCompile(`^[0-9]{10,14}(\.[0-9]+)?(Z|[+-][0-9]{2,4})$`)

func decodeCursor(s string) (cursor, error) {
	var c cursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(b, &c) != nil {
		return c, fmt.Errorf("%w: unreadable cursor", directory.ErrCursorExpired)
	}
	switch c.Mode {
	case modeSync:
		if err := checkCookie(c.Dept); err != nil {
			return c, err
		}
		if err := checkCookie(c.People); err != nil {
			return c, err
		}
		if err := checkCookie(c.Groups); err != nil {
			return c, err
		}
	case modeTimestamp:
		if c.Since != "" && !generalizedTime.MatchString(c.Since) {
			return c, fmt.Errorf("%w: bad timestamp in cursor", directory.ErrCursorExpired)
		}
	case modeStamp:
		if len(c.Since) > 256 || checkText("cursor", c.Since) != nil {
			return c, fmt.Errorf("%w: bad change stamp in cursor", directory.ErrCursorExpired)
		}
	default:
		return c, fmt.Errorf("%w: unknown cursor mode", directory.ErrCursorExpired)
	}
	return c, nil
}

// matchNothing is a filter no entry satisfies (every entry has an
// objectClass, RFC 4512 3.3) that a server with an equality index on
// entryUUID (syncprov's recommended one) answers from the index: the nil
// UUID (RFC 4122 4.1.7) is never assigned. "(!(objectClass=*))" alone
// made slapd read every entry of the base to find none.
const matchNothing = "(&(entryUUID=00000000-0000-0000-0000-000000000000)(!(objectClass=*)))"

// probeCookie asks for the current sync state of s without receiving its
// entries: a refreshOnly search (RFC 4533) with a filter that
// matches nothing still ends with a syncDone cookie naming the present
// state. OpenLDAP's syncprov cookies carry the context CSN, not the
// filter, so the cookie continues the real search; a server binding
// cookies to filters answers e-syncRefreshRequired later and the engine
// falls back to a full run.
func (p *Peer) probeCookie(ctx context.Context, c *conn, s Search) ([]byte, error) {
	var cookie []byte
	err := p.syncSearch(ctx, c, s, matchNothing, nil, nil, func(ev syncEvent) error {
		if ev.cookie != nil {
			cookie = ev.cookie
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if cookie == nil {
		return nil, fmt.Errorf("ldap: server offers content sync but returned no cookie for %s", s.BaseDN)
	}
	return cookie, nil
}

// syncEvent is one thing a refreshOnly search reports.
type syncEvent struct {
	entry   *goldap.Entry
	state   goldap.ControlSyncStateState
	uuid    string
	deletes []string // RFC 4533 syncIdSet with refreshDeletes
	present bool     // a present-phase message: deletions are implicit
	cookie  []byte
	// done: the syncDone control ended the refresh (RFC 4533);
	// refreshDeletes says it was a delete phase, not a present phase.
	done, refreshDeletes bool
}

// errPresentPhase: the server answered with a present phase (RFC 4533
// refresh), in which deletions are whatever was not listed. The peer keeps
// no list of anchors, so only a full reconcile can find them.
var errPresentPhase = fmt.Errorf("%w: server answered with a present phase (no session log covers the cursor)", directory.ErrCursorExpired)

func (p *Peer) syncSearch(ctx context.Context, c *conn, s Search, filter string, attrs []string, cookie []byte, fn func(syncEvent) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if attrs == nil {
		attrs = []string{"1.1"}
	}
	req := p.searchReq(s, filter, attrs)
	res := c.Syncrepl(ctx, req, 64, goldap.SyncRequestModeRefreshOnly, cookie, false)
	for res.Next() {
		ev := syncEvent{}
		if e := res.Entry(); e != nil {
			ev.entry = e
			if st, ok := goldap.FindControl(res.Controls(), goldap.ControlTypeSyncState).(*goldap.ControlSyncState); ok && st != nil {
				ev.state = st.State
				ev.uuid = st.EntryUUID.String()
				ev.cookie = st.Cookie
				ev.present = st.State == goldap.SyncStatePresent
			}
		}
		for _, ctl := range res.Controls() {
			switch v := ctl.(type) {
			case *goldap.ControlSyncInfo:
				switch {
				case v.NewCookie != nil:
					ev.cookie = v.NewCookie.Cookie
				case v.RefreshDelete != nil:
					ev.cookie = v.RefreshDelete.Cookie
				case v.RefreshPresent != nil:
					ev.cookie = v.RefreshPresent.Cookie
				case v.SyncIdSet != nil:
					ev.cookie = v.SyncIdSet.Cookie
					if v.SyncIdSet.RefreshDeletes {
						for _, u := range v.SyncIdSet.SyncUUIDs {
							ev.deletes = append(ev.deletes, u.String())
						}
					} else if len(v.SyncIdSet.SyncUUIDs) > 0 {
						ev.present = true
					}
				}
			case *goldap.ControlSyncDone:
				ev.cookie = v.Cookie
				ev.done = true
				ev.refreshDeletes = v.RefreshDeletes
			}
		}
		if len(ev.cookie) == 0 {
			ev.cookie = nil
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
	if err := res.Err(); err != nil {
		if goldap.IsErrorWithCode(err, goldap.LDAPResultSyncRefreshRequired) {
			// RFC 4533 e-syncRefreshRequired (4096): the cookie is too old.
			return fmt.Errorf("%w: %v", directory.ErrCursorExpired, err)
		}
		if goldap.IsErrorWithCode(err, goldap.LDAPResultProtocolError) && cookie != nil {
			// A server refusing the cookie as malformed.
			return fmt.Errorf("%w: %v", directory.ErrCursorExpired, err)
		}
		return fmt.Errorf("ldap: content sync %s: %w", s.BaseDN, err)
	}
	return ctx.Err()
}

// Changes implements directory.Peer. With content sync it reports adds,
// modifications and deletions since the cookies; by modifyTimestamp it
// reports entries modified at or after the cursor's second (so a change
// may be reported twice, never missed) and no deletions: those only a
// full reconcile finds.
func (p *Peer) Changes(ctx context.Context, cur string, fn func(directory.Entry) error) (string, error) {
	cu, err := decodeCursor(cur)
	if err != nil {
		return "", err
	}
	c, err := p.dial(ctx)
	if err != nil {
		return "", err
	}
	defer c.Close()
	sync, err := p.useContentSync(c)
	if err != nil {
		return "", err
	}
	if sync != (cu.Mode == modeSync) || (!sync && cu.Mode != p.deltaMode()) {
		return "", fmt.Errorf("%w: cursor mode %q does not match the server's or the configuration", directory.ErrCursorExpired, cu.Mode)
	}
	// Every department, for parents and memberships of changed entries.
	depts, err := p.loadDepartments(ctx, c, p.cfg.Departments.Filter)
	if err != nil {
		return "", err
	}
	if cu.Mode != modeSync {
		return p.changesByTimestamp(ctx, c, cu, depts, fn)
	}
	reported := map[string]bool{}
	var changedGroups []groupRec
	deptRecs := map[string]deptRec{}
	current := map[string]bool{}
	for _, r := range depts.ordered {
		deptRecs[normDN(r.dn)] = r
		current[r.entry.Anchor] = true
	}
	known := unpackUUIDs(cu.Known)
	knownGroups := unpackUUIDs(cu.KnownGroups)
	currentGroups := unpackUUIDs(cu.KnownGroups)
	next := cu
	// deleted reports a deletion once. From the department search only
	// known departments count; from the people search, departments
	// (known or current) are someone else's: both searches see every
	// deletion in their scope.
	// Groups are told apart the same way as departments: by the group
	// anchors the cursor knows (KnownGroups), so the groups search's
	// "deletions" of modified people are not reported.
	deleted := func(kind directory.EntryKind, u, source string) error {
		if reported[u] {
			return nil
		}
		switch kind {
		case directory.KindDepartment:
			if !known[u] {
				return nil
			}
		case directory.KindGroup:
			if !knownGroups[u] {
				return nil
			}
			delete(currentGroups, u)
		default:
			if known[u] || current[u] || knownGroups[u] || currentGroups[u] {
				return nil
			}
		}
		reported[u] = true
		return fn(directory.Entry{Kind: kind, Deleted: true, Anchor: u, Source: source})
	}
	step := func(kind directory.EntryKind, s Search, attrs []string, cookie []byte) ([]byte, error) {
		last := cookie
		err := p.syncSearch(ctx, c, s, s.Filter, attrs, cookie, func(ev syncEvent) error {
			if ev.cookie != nil {
				last = ev.cookie
			}
			// RFC 4533: a present phase (present states, a
			// non-deleting syncIdSet, or a syncDone without
			// refreshDeletes after a cookie) leaves deletions implicit.
			if ev.present || (ev.done && !ev.refreshDeletes && cookie != nil) {
				return errPresentPhase
			}
			for _, u := range ev.deletes {
				if err := deleted(kind, u, "entryUUID="+u); err != nil {
					return err
				}
			}
			if ev.entry == nil {
				return nil
			}
			if ev.state == goldap.SyncStateDelete {
				return deleted(kind, ev.uuid, ev.entry.DN)
			}
			var ent directory.Entry
			if kind == directory.KindGroup {
				r := p.groupRecord(ev.entry)
				if r.entry.Anchor != "" {
					currentGroups[r.entry.Anchor] = true
				}
				changedGroups = append(changedGroups, r)
				return nil
			}
			if kind == directory.KindDepartment {
				r, ok := deptRecs[normDN(ev.entry.DN)]
				if !ok {
					r = p.deptRecord(ev.entry)
					r.entry.Department.ParentAnchor = depts.byDN[parentDN(ev.entry.DN)]
				}
				ent = r.entry
				current[ent.Anchor] = true
			} else {
				ent, _ = p.personEntry(ev.entry, depts)
			}
			return fn(ent)
		})
		return last, err
	}
	if next.Dept, err = step(directory.KindDepartment, p.cfg.Departments, p.deptAttrs(), cu.Dept); err != nil {
		return "", err
	}
	// Groups before people (so the people search knows the groups it may
	// see leave its content); their entries are reported after the people.
	if !p.cfg.NoGroups {
		if next.Groups, err = step(directory.KindGroup, p.cfg.Groups, p.groupAttrs(), cu.Groups); err != nil {
			return "", err
		}
	}
	if next.People, err = step(directory.KindPerson, p.cfg.People, p.personAttrs(), cu.People); err != nil {
		return "", err
	}
	if err := p.emitGroups(ctx, c, changedGroups, newMemberIndex(changedGroups), fn); err != nil {
		return "", err
	}
	var groupAnchors []string
	for a := range currentGroups {
		groupAnchors = append(groupAnchors, a)
	}
	next.KnownGroups = packUUIDs(groupAnchors)
	var anchors []string
	for a := range current {
		if !reported[a] {
			anchors = append(anchors, a)
		}
	}
	next.Known = packUUIDs(anchors)
	return next.encode(), nil
}

// changesByTimestamp reads the changes since a high-water mark: of
// modifyTimestamp (entries at or after the cursor's second: a change may
// come twice, never not at all) or of the change stamp (entries with a
// greater one).
func (p *Peer) changesByTimestamp(ctx context.Context, c *conn, cu cursor, depts *deptIndex, fn func(directory.Entry) error) (string, error) {
	attr := p.hwAttr(cu.Mode)
	since := func(f string) string {
		if cu.Since == "" {
			return f
		}
		// The cursor was checked (generalized time, or text without
		// control characters); escaping keeps it a value whatever it holds.
		v := goldap.EscapeFilter(cu.Since)
		if cu.Mode == modeStamp {
			// Strictly greater: LDAP filters have no ">" (RFC 4515).
			return "(&" + f + "(" + attr + ">=" + v + ")(!(" + attr + "<=" + v + ")))"
		}
		return "(&" + f + "(" + attr + ">=" + v + "))"
	}
	hw := cu.Since
	for _, r := range depts.ordered {
		v := r.hw(cu.Mode)
		newer := !hwLess(v, cu.Since) // at or after the timestamp's second
		if cu.Mode == modeStamp {
			newer = hwLess(cu.Since, v)
		}
		if v != "" && (cu.Since == "" || newer) {
			hw = hwMax(hw, v)
			if err := fn(r.entry); err != nil {
				return "", err
			}
		}
	}
	err := c.pagedSearch(ctx, p.searchReq(p.cfg.People, since(p.cfg.People.Filter), p.personAttrs()), p.cfg.PageSize, func(e *goldap.Entry) error {
		ent, _ := p.personEntry(e, depts)
		hw = hwMax(hw, e.GetEqualFoldAttributeValue(attr))
		return fn(ent)
	})
	if err != nil {
		return "", err
	}
	groups, err := p.readGroups(ctx, c, since(p.cfg.Groups.Filter))
	if err != nil {
		return "", err
	}
	for _, g := range groups {
		hw = hwMax(hw, g.hw(cu.Mode))
	}
	if err := p.emitGroups(ctx, c, groups, newMemberIndex(groups), fn); err != nil {
		return "", err
	}
	return cursor{Mode: cu.Mode, Since: hw}.encode(), nil
}

// deltaMode is how Changes works without content sync (Config.DeltaBy).
func (p *Peer) deltaMode() string {
	switch p.cfg.DeltaBy {
	case "change_stamp":
		return modeStamp
	case "modifyTimestamp":
		return modeTimestamp
	}
	if strings.EqualFold(p.cfg.Attributes.Anchor, anchorObjectGUID) && p.stampAttr() != "" {
		return modeStamp // Active Directory: uSNChanged
	}
	return modeTimestamp
}

// hwAttr is the attribute whose highest value a cursor of mode keeps.
func (p *Peer) hwAttr(mode string) string {
	if mode == modeStamp {
		return p.stampAttr()
	}
	return "modifyTimestamp"
}

// hw is the department's value of the high-water attribute of mode.
func (r deptRec) hw(mode string) string {
	if mode == modeStamp {
		return r.stamp
	}
	return r.ts
}

// hw is the group's value of the high-water attribute of mode.
func (r groupRec) hw(mode string) string {
	if mode == modeStamp {
		return r.stamp
	}
	return r.ts
}

// hwLess orders high-water values: as integers when both are (uSNChanged),
// else as text (generalized time and entryCSN sort as text); "" first.
func hwLess(a, b string) bool {
	if a == "" || b == "" {
		return a == "" && b != ""
	}
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	if errA == nil && errB == nil {
		return x < y
	}
	return a < b
}

func hwMax(a, b string) string {
	if hwLess(a, b) {
		return b
	}
	return a
}
