package ldap

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/govhub/govhub/directory"
)

// FullSkipping implements directory.SkippingPeer: a first pass reads only
// anchor and change stamp of every person; people whose Version the
// engine already holds are reported Unchanged, the others are read in
// full: by anchor in batches when they are few, by a second walk when
// they are many.
func (p *Peer) FullSkipping(ctx context.Context, known func(anchor string) string, fn func(directory.Entry) error) (string, error) {
	return p.full(ctx, known, fn)
}

// stampAttr is the change-stamp attribute, "" when skipping is off.
func (p *Peer) stampAttr() string {
	if a := p.cfg.Attributes.ChangeStamp; !strings.EqualFold(a, "none") {
		return a
	}
	return ""
}

// version is an entry's directory.Entry.Version: its change stamp and
// the departments' tag, "" when the entry has no stamp.
func (p *Peer) version(e *goldap.Entry, depts *deptIndex) string {
	a := p.stampAttr()
	if a == "" {
		return ""
	}
	v := e.GetEqualFoldAttributeValue(a)
	if v == "" || checkText(a, v) != nil {
		return "" // read in full every time
	}
	v += "/" + depts.tag
	if m := p.cfg.Attributes.MemberOf; m != "" {
		// Active Directory computes memberOf from the groups: adding a
		// user to one does not change the user's uSNChanged. The values
		// are part of the version, so such a change is still seen.
		vals := append([]string(nil), e.GetEqualFoldAttributeValues(m)...)
		for i := range vals {
			vals[i] = strings.ToLower(vals[i])
		}
		sort.Strings(vals)
		h := sha256.Sum256([]byte(strings.Join(vals, "\n")))
		v += "/" + hex.EncodeToString(h[:8])
	}
	return v
}

// readByAnchorBatch is how many people one search fetches by anchor.
const readByAnchorBatch = 200

// readByAnchorMax: past this many (or a tenth of everyone, if more)
// people to read in full, a second walk replaces the searches by anchor.
// A variable for tests.
var readByAnchorMax = 2000

func (p *Peer) walkSkipping(ctx context.Context, c *conn, rc *rawConn, depts *deptIndex, known func(string) string, hwAttr string, maxTS *string, fn func(directory.Entry) error) error {
	type stub struct{ anchor, dn, version string }
	var same []stub
	var changed []string // anchors to read in full
	var byDN []string    // entries whose anchor is unreadable
	total := 0
	attrs := nonEmpty(p.cfg.Attributes.Anchor, p.stampAttr(), hwAttr, p.cfg.Attributes.MemberOf)
	err := rc.searchPaged(ctx, p.searchReq(p.cfg.People, p.cfg.People.Filter, attrs), p.cfg.PageSize, func(e *goldap.Entry) error {
		total++
		*maxTS = hwMax(*maxTS, e.GetEqualFoldAttributeValue(hwAttr))
		anchor, err := p.anchorOf(e)
		if err != nil {
			byDN = append(byDN, e.DN)
			return nil
		}
		if v := p.version(e, depts); v != "" && known(anchor) == v {
			same = append(same, stub{anchor, e.DN, v})
		} else {
			changed = append(changed, anchor)
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.log.Info("change stamps read", "people", total, "unchanged", len(same), "to read", len(changed)+len(byDN))
	read := func(e *goldap.Entry) error {
		ent, _ := p.personEntry(e, depts)
		*maxTS = hwMax(*maxTS, e.GetEqualFoldAttributeValue(hwAttr))
		return fn(ent)
	}
	if len(changed)+len(byDN) > max(readByAnchorMax, total/10) {
		// Many changed: one more walk is cheaper than searches by anchor.
		return rc.searchPaged(ctx, p.searchReq(p.cfg.People, p.cfg.People.Filter, p.personAttrs()), p.cfg.PageSize, read)
	}
	for _, s := range same {
		if err := fn(directory.Entry{Kind: directory.KindPerson, Anchor: s.anchor, Source: s.dn, Version: s.version, Unchanged: true}); err != nil {
			return err
		}
	}
	same = nil
	for len(changed) > 0 {
		n := min(len(changed), readByAnchorBatch)
		var f strings.Builder
		f.WriteString("(&" + p.cfg.People.Filter + "(|")
		for _, a := range changed[:n] {
			af, err := p.anchorFilter(a)
			if err != nil {
				return err
			}
			f.WriteString(af)
		}
		f.WriteString("))")
		if err := rc.searchPaged(ctx, p.searchReq(p.cfg.People, f.String(), p.personAttrs()), p.cfg.PageSize, read); err != nil {
			return err
		}
		changed = changed[n:]
	}
	for _, dn := range byDN {
		req := goldap.NewSearchRequest(dn, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false, p.cfg.People.Filter, p.personAttrs(), nil)
		res, err := c.Search(req)
		if goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
			continue // gone since the first pass
		}
		if err != nil {
			return err
		}
		for _, e := range res.Entries {
			if err := read(e); err != nil {
				return err
			}
		}
	}
	return nil
}
