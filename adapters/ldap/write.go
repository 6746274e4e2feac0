package ldap

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/govhub/govhub/directory"
)

// ErrNotFound: no entry has the anchor.
var ErrNotFound = errors.New("ldap: no entry with that anchor")

// ErrFieldNotMapped: write-back of a field this peer has no attribute for
// (or cannot write: memberships, status).
var ErrFieldNotMapped = errors.New("ldap: field not mapped to a writable attribute")

// checkFilter parses a configured filter (RFC 4515) so a typo is a
// configuration error, not a failed run.
func checkFilter(f string) error {
	if _, err := goldap.CompileFilter(f); err != nil {
		return fmt.Errorf("invalid filter %q: %w", f, err)
	}
	return nil
}

// anchorFilter selects the entry with anchor; the value is escaped
// (RFC 4515 3), objectGUID byte by byte.
func (p *Peer) anchorFilter(anchor string) (string, error) {
	a := p.cfg.Attributes.Anchor
	if strings.EqualFold(a, anchorObjectGUID) {
		b, err := guidBytes(anchor)
		if err != nil {
			return "", err
		}
		var sb strings.Builder
		for _, c := range b {
			fmt.Fprintf(&sb, `\%02x`, c)
		}
		return "(" + a + "=" + sb.String() + ")", nil
	}
	return "(" + a + "=" + goldap.EscapeFilter(anchor) + ")", nil
}

// findDN returns the DN of the person with anchor under the people base,
// within the configured people filter.
func (p *Peer) findDN(c *conn, anchor string) (string, error) {
	af, err := p.anchorFilter(anchor)
	if err != nil {
		return "", err
	}
	res, err := c.Search(p.searchReq(p.cfg.People, "(&"+p.cfg.People.Filter+af+")", []string{"1.1"}))
	if err != nil {
		return "", fmt.Errorf("ldap: find %s: %w", anchor, err)
	}
	switch len(res.Entries) {
	case 0:
		return "", fmt.Errorf("%w: %s", ErrNotFound, anchor)
	case 1:
		return res.Entries[0].DN, nil
	default:
		return "", fmt.Errorf("ldap: anchor %s matches %d entries", anchor, len(res.Entries))
	}
}

// fieldAttr maps a directory.FieldNames field to its LDAP attribute.
func (p *Peer) fieldAttr(field string) string {
	a := p.cfg.Attributes
	switch field {
	case "display_name":
		return a.DisplayName
	case "title":
		return a.Title
	case "rank":
		return a.Rank
	case "office_phone":
		return a.OfficePhone
	case "mobile":
		return a.Mobile
	case "mail":
		return a.Mail
	case "employee_no":
		return a.EmployeeNo
	}
	return ""
}

// UpdatePerson implements directory.PeerWriter: one modify request
// replacing exactly the mapped attributes of the given fields (RFC 4511
// 4.6, replace; an empty value removes the attribute). Nothing is written
// if any field is unmapped or any value is not clean text.
func (p *Peer) UpdatePerson(ctx context.Context, anchor string, fields map[string]string) error {
	if !p.cfg.Writable {
		return ErrNotWritable
	}
	if len(fields) == 0 {
		return nil
	}
	c, err := p.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	dn, err := p.findDN(c, anchor)
	if err != nil {
		return err
	}
	mod := goldap.NewModifyRequest(dn, nil)
	for _, f := range directory.FieldNames {
		v, ok := fields[f]
		if !ok {
			continue
		}
		attr := p.fieldAttr(f)
		if attr == "" {
			return fmt.Errorf("%w: %s", ErrFieldNotMapped, f)
		}
		if err := checkText(f, v); err != nil {
			return err
		}
		if v == "" {
			mod.Replace(attr, nil)
		} else {
			mod.Replace(attr, []string{v})
		}
	}
	for f := range fields {
		if p.fieldAttr(f) == "" {
			return fmt.Errorf("%w: %s", ErrFieldNotMapped, f)
		}
	}
	if err := c.Modify(mod); err != nil {
		return fmt.Errorf("ldap: update %s: %w", dn, err)
	}
	c.log.Info("person updated", "dn", dn, "fields", len(fields))
	return nil
}

// CreatePerson implements directory.PeerWriter: an inetOrgPerson named
// uid=<generated> under CreateBaseDN, whose anchor is read back from the
// server (entryUUID is assigned by it, RFC 4530).
func (p *Peer) CreatePerson(ctx context.Context, pe directory.Person) (string, error) {
	if !p.cfg.Writable {
		return "", ErrNotWritable
	}
	if pe.DisplayName == "" {
		return "", errors.New("ldap: create person: display name is required (cn, sn)")
	}
	c, err := p.dial(ctx)
	if err != nil {
		return "", err
	}
	defer c.Close()
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", err
	}
	uid := "govhub-" + hex.EncodeToString(rnd[:])
	dn := "uid=" + goldap.EscapeDN(uid) + "," + p.cfg.CreateBaseDN
	add := goldap.NewAddRequest(dn, nil)
	add.Attribute("objectClass", []string{"top", "person", "organizationalPerson", "inetOrgPerson"})
	add.Attribute("uid", []string{uid})
	vals := map[string][]string{"cn": {pe.DisplayName}, "sn": {pe.DisplayName}}
	for f, v := range map[string]string{
		"display_name": pe.DisplayName, "title": pe.Title, "rank": pe.Rank, "office_phone": pe.OfficePhone,
		"mobile": pe.Mobile, "mail": pe.Mail, "employee_no": pe.EmployeeNo,
	} {
		if v == "" {
			continue
		}
		if err := checkText(f, v); err != nil {
			return "", err
		}
		attr := p.fieldAttr(f)
		if attr == "" {
			continue
		}
		vals[attr] = []string{v}
	}
	for k, v := range vals {
		add.Attribute(k, v)
	}
	if err := c.Add(add); err != nil {
		return "", fmt.Errorf("ldap: create %s: %w", dn, err)
	}
	res, err := c.Search(goldap.NewSearchRequest(dn, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=*)", []string{p.cfg.Attributes.Anchor}, nil))
	if err != nil || len(res.Entries) != 1 {
		return "", fmt.Errorf("ldap: read back %s: %v", dn, err)
	}
	anchor, err := p.anchorOf(res.Entries[0])
	if err != nil {
		return "", fmt.Errorf("ldap: read back %s: %w", dn, err)
	}
	c.log.Info("person created", "dn", dn, "anchor", anchor)
	return anchor, nil
}
