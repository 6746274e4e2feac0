package ldap

import (
	"context"
	"errors"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/govhub/govhub/directory"
)

// Groups (groupOfNames, groupOfUniqueNames): read after the departments
// and reported after the people, their member DNs resolved to the
// anchors of people (or of nested groups) of this peer. A full walk
// resolves the DNs it meets among the people it walks, at the cost of
// one map lookup per person; the rest (and every member of a group a
// delta reports) by a base-object search of the DN, cached per call. A
// DN that names no person or group within the configured filters is
// reported in directory.Group.Unresolved, which the engine records per
// object.

// groupRec is one group entry before its members are resolved.
type groupRec struct {
	dn      string
	ts      string // modifyTimestamp
	stamp   string
	entry   directory.Entry
	members []string // member DNs as the server wrote them
}

func (p *Peer) groupAttrs() []string {
	a := p.cfg.Attributes
	l := nonEmpty(a.Anchor, a.GroupName, a.GroupDescription, a.GroupMail, a.Status, "modifyTimestamp", p.stampAttr())
	return nonEmpty(append(l, a.GroupMembers...)...)
}

// memberValue is a member attribute's DN: a uniqueMember value
// (nameAndOptionalUID, RFC 4517 3.3.21) may end in "#'0101'B".
func memberValue(v string) string {
	if strings.HasSuffix(v, "'B") {
		if i := strings.LastIndex(v, "#'"); i > 0 {
			return v[:i]
		}
	}
	return v
}

func (p *Peer) groupRecord(e *goldap.Entry) groupRec {
	a := p.cfg.Attributes
	var errs []error
	r := groupRec{dn: e.DN, ts: e.GetEqualFoldAttributeValue("modifyTimestamp")}
	if s := p.stampAttr(); s != "" {
		r.stamp = e.GetEqualFoldAttributeValue(s)
	}
	anchor, err := p.anchorOf(e)
	if err != nil {
		errs = append(errs, err)
	}
	g := &directory.Group{
		Anchor:      anchor,
		Name:        text(e, a.GroupName, &errs),
		Description: text(e, a.GroupDescription, &errs),
		Mail:        strings.ToLower(text(e, a.GroupMail, &errs)),
		Status:      p.status(e, &errs),
	}
	// Active Directory sends a group with more members than its
	// MaxValRange as "member;range=0-1499" and expects the client to ask
	// for the rest; that is not done here, so such a group is reported
	// as broken (its members in govhub stay as they were) rather than
	// synced with none or with a truncated list.
	for _, at := range e.Attributes {
		for _, attr := range a.GroupMembers {
			if strings.HasPrefix(strings.ToLower(at.Name), strings.ToLower(attr)+";range=") {
				errs = append(errs, badEntry("%s is sent in ranges (%s): a group this large is not read yet", attr, at.Name))
			}
		}
	}
	seen := map[string]bool{}
	for _, attr := range a.GroupMembers {
		for _, v := range e.GetEqualFoldAttributeValues(attr) {
			if err := checkText(attr, v); err != nil {
				errs = append(errs, err)
				continue
			}
			v = memberValue(strings.TrimSpace(v))
			if v != "" && !seen[strings.ToLower(v)] {
				seen[strings.ToLower(v)] = true
				r.members = append(r.members, v)
			}
		}
	}
	if g.Name == "" && len(errs) == 0 {
		errs = append(errs, badEntry("no %s", a.GroupName))
	}
	r.entry = directory.Entry{Kind: directory.KindGroup, Group: g, Anchor: anchor, Source: e.DN, Err: errors.Join(errs...)}
	return r
}

// readGroups reads the groups matching filter (nil when groups are off).
func (p *Peer) readGroups(ctx context.Context, c *conn, filter string) ([]groupRec, error) {
	if p.cfg.NoGroups {
		return nil, nil
	}
	var out []groupRec
	err := c.pagedSearch(ctx, p.searchReq(p.cfg.Groups, filter, p.groupAttrs()), p.cfg.PageSize, func(e *goldap.Entry) error {
		out = append(out, p.groupRecord(e))
		return nil
	})
	return out, err
}

// memberIndex resolves member DNs to anchors.
type memberIndex struct {
	// wanted holds the lower-cased member DNs of the groups read, people
	// the DN of people the walk met among them.
	wanted map[string]bool
	people map[string]string
	// groups maps normalised group DNs to anchors.
	groups map[string]string
	cache  map[string]resolved
}

type resolved struct {
	kind   directory.EntryKind
	anchor string
}

func newMemberIndex(recs []groupRec) *memberIndex {
	ix := &memberIndex{wanted: map[string]bool{}, people: map[string]string{}, groups: map[string]string{}, cache: map[string]resolved{}}
	for _, r := range recs {
		if r.entry.Anchor != "" {
			ix.groups[normDN(r.dn)] = r.entry.Anchor
		}
		for _, m := range r.members {
			ix.wanted[strings.ToLower(m)] = true
		}
	}
	return ix
}

// watch wraps a walk's fn to note the anchors of wanted people.
func (ix *memberIndex) watch(fn func(directory.Entry) error) func(directory.Entry) error {
	if len(ix.wanted) == 0 {
		return fn
	}
	return func(en directory.Entry) error {
		if en.Kind == directory.KindPerson && en.Anchor != "" {
			if k := strings.ToLower(en.Source); ix.wanted[k] {
				ix.people[k] = en.Anchor
			}
		}
		return fn(en)
	}
}

// resolve turns each group's member DNs into anchors and reports it.
func (p *Peer) emitGroups(ctx context.Context, c *conn, recs []groupRec, ix *memberIndex, fn func(directory.Entry) error) error {
	for _, r := range recs {
		en := r.entry
		if en.Err == nil && en.Group != nil {
			g := *en.Group
			for _, dn := range r.members {
				res, err := p.resolveMember(ctx, c, ix, dn)
				if err != nil {
					return err
				}
				switch res.kind {
				case directory.KindPerson:
					g.Members = append(g.Members, res.anchor)
				case directory.KindGroup:
					g.Subgroups = append(g.Subgroups, res.anchor)
				default:
					g.Unresolved = append(g.Unresolved, dn)
				}
			}
			en.Group = &g
		}
		if err := fn(en); err != nil {
			return err
		}
	}
	return nil
}

func (p *Peer) resolveMember(ctx context.Context, c *conn, ix *memberIndex, dn string) (resolved, error) {
	if a, ok := ix.people[strings.ToLower(dn)]; ok {
		return resolved{directory.KindPerson, a}, nil
	}
	n := normDN(dn)
	if a, ok := ix.groups[n]; ok {
		return resolved{directory.KindGroup, a}, nil
	}
	if r, ok := ix.cache[n]; ok {
		return r, nil
	}
	if err := ctx.Err(); err != nil {
		return resolved{}, err
	}
	var out resolved
	for _, s := range []struct {
		kind   directory.EntryKind
		filter string
	}{{directory.KindPerson, p.cfg.People.Filter}, {directory.KindGroup, p.cfg.Groups.Filter}} {
		if s.kind == directory.KindGroup && p.cfg.NoGroups {
			continue
		}
		res, err := c.Search(goldap.NewSearchRequest(dn, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 1, 0, false, s.filter, []string{p.cfg.Attributes.Anchor}, nil))
		if goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) || goldap.IsErrorWithCode(err, goldap.LDAPResultInvalidDNSyntax) {
			break // names nothing
		}
		if err != nil {
			return resolved{}, err
		}
		if len(res.Entries) == 1 {
			if a, err := p.anchorOf(res.Entries[0]); err == nil {
				out = resolved{s.kind, a}
			}
			break
		}
	}
	ix.cache[n] = out
	return out, nil
}
