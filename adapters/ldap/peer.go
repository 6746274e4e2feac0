package ldap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/govhub/govhub/directory"
)

var (
	_ directory.Peer         = (*Peer)(nil)
	_ directory.PeerWriter   = (*Peer)(nil)
	_ directory.SkippingPeer = (*Peer)(nil)
	_ directory.PeerCreator  = (*Peer)(nil)
)

// ErrNotWritable: write-back was asked of a peer not configured writable.
var ErrNotWritable = errors.New("ldap: peer is not configured writable")

// Peer is an LDAP directory as a directory.Peer (and PeerWriter when
// configured writable). It holds no connection between calls: each Full,
// Changes or write opens, binds and closes its own, so a Peer is safe for
// concurrent use.
type Peer struct {
	cfg    Config
	tlsCfg *tls.Config
	log    *slog.Logger
	connID atomic.Uint64
}

// New checks cfg and returns the peer. It does not connect.
func New(cfg Config) (*Peer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	p := &Peer{cfg: cfg, log: cfg.Logger.With("component", "ldap", "peer", cfg.Name)}
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         cfg.TLS.ServerName,
		InsecureSkipVerify: cfg.TLS.InsecureSkipVerify, // only when set explicitly
	}
	if tc.ServerName == "" {
		if host, _, err := net.SplitHostPort(hostOf(cfg.URL)); err == nil {
			tc.ServerName = host
		} else {
			tc.ServerName = hostOf(cfg.URL)
		}
	}
	if cfg.TLS.CAFile != "" {
		pem, err := os.ReadFile(cfg.TLS.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ldap: tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ldap: tls.ca_file %s: no PEM certificates", cfg.TLS.CAFile)
		}
		tc.RootCAs = pool
	}
	p.tlsCfg = tc
	return p, nil
}

func hostOf(u string) string {
	s := u
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	return s
}

// Name implements directory.Peer.
func (p *Peer) Name() string { return p.cfg.Name }

// conn is one bound connection and what its root DSE said.
type conn struct {
	*goldap.Conn
	log  *slog.Logger
	stop func() bool
}

// Close ends the connection and its watch on the context.
func (c *conn) Close() error {
	c.stop()
	return c.Conn.Close()
}

// dial connects, upgrades with StartTLS when configured, and binds.
// RequestTimeout bounds each request; cancelling ctx closes the
// connection.
func (p *Peer) dial(ctx context.Context) (*conn, error) { return p.dialBind(ctx, true) }

// dialBind is dial, binding with the configured DN only when bind is set.
func (p *Peer) dialBind(ctx context.Context, bind bool) (*conn, error) {
	id := p.connID.Add(1)
	log := p.log.With("conn", id)
	d := &net.Dialer{Timeout: p.cfg.DialTimeout}
	if dl, ok := ctx.Deadline(); ok {
		d.Deadline = dl
	}
	c, err := goldap.DialURL(p.cfg.URL, goldap.DialWithDialer(d), goldap.DialWithTLSConfig(p.tlsCfg))
	if err != nil {
		return nil, fmt.Errorf("ldap: connect %s: %w", p.cfg.URL, err)
	}
	c.SetTimeout(p.cfg.RequestTimeout)
	if p.cfg.StartTLS {
		if err := c.StartTLS(p.tlsCfg); err != nil {
			c.Close()
			return nil, fmt.Errorf("ldap: StartTLS refused or failed at %s (RFC 4511 4.14; will not continue in plain text): %w", p.cfg.URL, err)
		}
	}
	if bind && p.cfg.BindDN != "" {
		if err := c.Bind(p.cfg.BindDN, p.cfg.BindSecret); err != nil {
			c.Close()
			// The error carries the server's result code, never the secret.
			return nil, fmt.Errorf("ldap: bind as %s: %w", p.cfg.BindDN, err)
		}
	}
	log.Debug("connected", "url", p.cfg.URL, "starttls", p.cfg.StartTLS, "bind_dn", p.cfg.BindDN)
	// A cancelled context closes the connection, so a request in flight
	// (the library's synchronous calls take no context) ends at once.
	stop := context.AfterFunc(ctx, func() { c.Close() })
	return &conn{Conn: c, log: log, stop: stop}, nil
}

// supportsContentSync reads the root DSE (RFC 4512 5.1) for the RFC 4533
// sync request control.
func (c *conn) supportsContentSync() (bool, error) {
	res, err := c.Search(goldap.NewSearchRequest("", goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"supportedControl"}, nil))
	if err != nil {
		return false, fmt.Errorf("ldap: read root DSE: %w", err)
	}
	for _, e := range res.Entries {
		for _, v := range e.GetEqualFoldAttributeValues("supportedControl") {
			if v == goldap.ControlTypeSyncRequest {
				return true, nil
			}
		}
	}
	return false, nil
}

// useContentSync says whether Changes speaks RFC 4533 on c.
func (p *Peer) useContentSync(c *conn) (bool, error) {
	if p.cfg.ContentSync == "off" || !strings.EqualFold(p.cfg.Attributes.Anchor, anchorEntryUUID) {
		return false, nil
	}
	return c.supportsContentSync()
}

// pagedSearch runs an RFC 2696 simple paged search and calls fn per entry,
// one page in memory at a time. fn returning an error abandons the search
// (a zero-size page request releases the server's cursor, RFC 2696 3).
func (c *conn) pagedSearch(ctx context.Context, req *goldap.SearchRequest, pageSize int, fn func(*goldap.Entry) error) error {
	paging := goldap.NewControlPaging(uint32(pageSize))
	req.Controls = append(req.Controls, paging)
	abandon := func() {
		if len(paging.Cookie) == 0 {
			return
		}
		paging.PagingSize = 0
		_, _ = c.Search(req)
	}
	for {
		if err := ctx.Err(); err != nil {
			abandon()
			return err
		}
		res, err := c.Search(req)
		if err != nil {
			return fmt.Errorf("ldap: search %s: %w", req.BaseDN, err)
		}
		for _, e := range res.Entries {
			if err := fn(e); err != nil {
				abandon()
				return err
			}
		}
		var next []byte
		if ctl, ok := goldap.FindControl(res.Controls, goldap.ControlTypePaging).(*goldap.ControlPaging); ok && ctl != nil {
			next = ctl.Cookie
		}
		if len(next) == 0 {
			return nil
		}
		paging.SetCookie(next)
	}
}

// attrs lists what to request for departments and for people.
func (p *Peer) deptAttrs() []string {
	a := p.cfg.Attributes
	return nonEmpty(a.Anchor, a.DepartmentName, a.Order, a.Status, "modifyTimestamp", p.stampAttr())
}

func (p *Peer) personAttrs() []string {
	a := p.cfg.Attributes
	l := nonEmpty(a.Anchor, a.DisplayName, a.Mail, a.Mobile, a.OfficePhone, a.Title, a.Rank, a.EmployeeNo, a.Order, a.MemberOf, a.Status, "modifyTimestamp", p.stampAttr())
	if a.UserAccountControl {
		l = append(l, "userAccountControl")
	}
	return l
}

func nonEmpty(s ...string) []string {
	var out []string
	seen := map[string]bool{}
	for _, v := range s {
		if v != "" && !seen[strings.ToLower(v)] {
			seen[strings.ToLower(v)] = true
			out = append(out, v)
		}
	}
	return out
}

func (p *Peer) searchReq(s Search, filter string, attrs []string) *goldap.SearchRequest {
	return goldap.NewSearchRequest(s.BaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false, filter, attrs, nil)
}

// Full implements directory.Peer: departments (parents before children)
// then people, by paged search. The cursor is taken before the walk, so
// a change made during the walk is seen again by the next Changes rather
// than lost.
func (p *Peer) Full(ctx context.Context, fn func(directory.Entry) error) (string, error) {
	return p.full(ctx, nil, fn)
}

// full is Full, and FullSkipping when known is set.
// walkClockMargin is how far before a full walk's start its
// modifyTimestamp cursor is set (see full).
const walkClockMargin = 5 * time.Minute

func (p *Peer) full(ctx context.Context, known func(string) string, fn func(directory.Entry) error) (string, error) {
	start := time.Now()
	c, err := p.dial(ctx)
	if err != nil {
		return "", err
	}
	defer c.Close()
	sync, err := p.useContentSync(c)
	if err != nil {
		return "", err
	}
	var cur cursor
	if sync {
		cur.Mode = modeSync
		if cur.Dept, err = p.probeCookie(ctx, c, p.cfg.Departments); err != nil {
			return "", err
		}
		if cur.People, err = p.probeCookie(ctx, c, p.cfg.People); err != nil {
			return "", err
		}
		if !p.cfg.NoGroups {
			if cur.Groups, err = p.probeCookie(ctx, c, p.cfg.Groups); err != nil {
				return "", err
			}
		}
	} else {
		cur.Mode = p.deltaMode()
	}
	hwAttr := p.hwAttr(cur.Mode)
	if cur.Mode == modeSync {
		hwAttr = "" // the cookies are the cursor
	}
	t0 := time.Now()
	depts, err := p.loadDepartments(ctx, c, p.cfg.Departments.Filter)
	if err != nil {
		return "", err
	}
	groups, err := p.readGroups(ctx, c, p.cfg.Groups.Filter)
	if err != nil {
		return "", err
	}
	members := newMemberIndex(groups)
	pfn := members.watch(fn)
	t1 := time.Now()
	var maxTS string
	var anchors []string
	for _, d := range depts.ordered {
		anchors = append(anchors, d.entry.Anchor)
		maxTS = hwMax(maxTS, d.hw(cur.Mode))
		if err := fn(d.entry); err != nil {
			return "", err
		}
	}
	// People through the lean client (fastsearch.go), on a second
	// connection.
	rc, err := p.dialRaw(ctx)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	if known != nil && p.stampAttr() != "" {
		err = p.walkSkipping(ctx, c, rc, depts, known, hwAttr, &maxTS, pfn)
	} else {
		err = rc.searchPaged(ctx, p.searchReq(p.cfg.People, p.cfg.People.Filter, p.personAttrs()), p.cfg.PageSize, func(e *goldap.Entry) error {
			ent, _ := p.personEntry(e, depts)
			maxTS = hwMax(maxTS, e.GetEqualFoldAttributeValue(hwAttr))
			return pfn(ent)
		})
	}
	if err != nil {
		return "", err
	}
	for _, g := range groups {
		maxTS = hwMax(maxTS, g.hw(cur.Mode))
	}
	if err := p.emitGroups(ctx, c, groups, members, fn); err != nil {
		return "", err
	}
	switch cur.Mode {
	case modeTimestamp:
		// An entry changed while the walk was under way, after the walk
		// had passed it, carries a time before the newest one the walk saw
		// later: a cursor at that newest time would skip it. The cursor is
		// therefore no later than the walk's start (less a margin for the
		// two clocks); the next delta reads a few minutes again, which
		// changes nothing for entries already in step.
		cur.Since = maxTS
		if early := start.Add(-walkClockMargin).UTC().Format("20060102150405Z"); maxTS != "" && hwLess(early, maxTS) {
			cur.Since = early
		}
	case modeStamp:
		cur.Since = maxTS
	default:
		cur.Known = packUUIDs(anchors)
		var ga []string
		for _, g := range groups {
			ga = append(ga, g.entry.Anchor)
		}
		cur.KnownGroups = packUUIDs(ga)
	}
	c.log.Info("full walk done", "departments", len(depts.ordered), "groups", len(groups), "mode", cur.Mode,
		"took_cursor", t0.Sub(start).Round(time.Millisecond).String(), "took_departments", t1.Sub(t0).Round(time.Millisecond).String(),
		"took_people", time.Since(t1).Round(time.Millisecond).String())
	return cur.encode(), nil
}

// deptIndex maps department DNs (normalised) to anchors, for parents and
// memberships.
type deptIndex struct {
	// tag changes whenever which DN (or, with member_of, which name) is
	// which department changes, or the attribute mapping does: it is part
	// of every person's Version, because a person's memberships are read
	// through the departments.
	tag     string
	byDN    map[string]string
	byName  map[string]string
	ordered []deptRec
	cache   map[string]string // raw parent DN → anchor, see parentAnchor
}

type deptRec struct {
	dn    string
	depth int
	ts    string // modifyTimestamp
	stamp string // the change stamp (Attributes.ChangeStamp)
	entry directory.Entry
}

// loadDepartments reads every department matching filter and orders them
// parents first (by DN depth), so Full can promise parents before
// children.
func (p *Peer) loadDepartments(ctx context.Context, c *conn, filter string) (*deptIndex, error) {
	idx := &deptIndex{byDN: map[string]string{}, byName: map[string]string{}}
	var recs []deptRec
	err := c.pagedSearch(ctx, p.searchReq(p.cfg.Departments, filter, p.deptAttrs()), p.cfg.PageSize, func(e *goldap.Entry) error {
		r := p.deptRecord(e)
		recs = append(recs, r)
		if r.entry.Anchor != "" {
			idx.byDN[normDN(e.DN)] = r.entry.Anchor
			if r.entry.Department != nil {
				idx.byName[strings.ToLower(r.entry.Department.Name)] = r.entry.Anchor
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].depth < recs[j].depth })
	for i := range recs {
		if d := recs[i].entry.Department; d != nil {
			d.ParentAnchor = idx.byDN[parentDN(recs[i].dn)]
		}
	}
	idx.ordered = recs
	h := fnv.New64a()
	am := p.cfg.Attributes
	fromDN := am.MembershipFromDN != nil && *am.MembershipFromDN
	am.MembershipFromDN = nil // a pointer would print as an address
	fmt.Fprintf(h, "%+v|%t|%s|%s;", am, fromDN, p.cfg.People.BaseDN, p.cfg.People.Filter)
	// What reading a person depends on: which DN (and, with member_of,
	// which name) is which department. A department's order or status
	// does not change how its people read, so it does not make every
	// stored version stale.
	keys := make([]string, 0, len(idx.byDN)+len(idx.byName))
	for dn, a := range idx.byDN {
		keys = append(keys, dn+"\x00"+a)
	}
	if p.cfg.Attributes.MemberOf != "" {
		for n, a := range idx.byName {
			keys = append(keys, "name\x00"+n+"\x00"+a)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{0xff})
	}
	idx.tag = strconv.FormatUint(h.Sum64(), 36)
	return idx, nil
}
