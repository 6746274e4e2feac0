package ldap

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/govhub/govhub/directory"
)

// ErrBadEntry marks a per-object problem reported in directory.Entry.Err;
// the walk goes on.
var ErrBadEntry = errors.New("ldap: bad entry")

func badEntry(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrBadEntry, fmt.Sprintf(format, a...))
}

// normDN gives a comparable form of a DN (RFC 4514 parsed and re-rendered,
// attribute types and values case-folded); an unparsable DN is kept as
// lower-case text.
func normDN(dn string) string {
	d, err := goldap.ParseDN(dn)
	if err != nil {
		return strings.ToLower(dn)
	}
	parts := make([]string, 0, len(d.RDNs))
	for _, r := range d.RDNs {
		var as []string
		for _, a := range r.Attributes {
			as = append(as, strings.ToLower(a.Type)+"="+strings.ToLower(a.Value))
		}
		parts = append(parts, strings.Join(as, "+"))
	}
	return strings.Join(parts, ",")
}

// parentDN is the normalised DN of the entry's parent ("" for none).
func parentDN(dn string) string {
	d, err := goldap.ParseDN(dn)
	if err != nil || len(d.RDNs) < 2 {
		return ""
	}
	d.RDNs = d.RDNs[1:]
	return normDN(d.String())
}

// rawParent is the text after the first unescaped comma of dn (RFC 4514
// 2.4: a comma inside a value is escaped).
func rawParent(dn string) string {
	for i := 0; i < len(dn); i++ {
		switch dn[i] {
		case '\\':
			i++
		case ',':
			return dn[i+1:]
		}
	}
	return ""
}

// parentAnchor is the anchor of the department that is dn's parent, if
// any. Servers spell a parent's DN the same way for all its children, so
// the normalised lookup is cached by the raw text: parsing every
// person's DN costs more than the rest of the conversion.
func (d *deptIndex) parentAnchor(dn string) string {
	raw := rawParent(dn)
	if a, ok := d.cache[raw]; ok {
		return a
	}
	a := d.byDN[normDN(raw)]
	if d.cache == nil {
		d.cache = map[string]string{}
	}
	if len(d.cache) < 100000 {
		d.cache[raw] = a
	}
	return a
}

func dnDepth(dn string) int {
	d, err := goldap.ParseDN(dn)
	if err != nil {
		return 0
	}
	return len(d.RDNs)
}

// anchorOf decodes the anchor attribute: objectGUID's 16 bytes become the
// canonical GUID string (the first three fields are little-endian, as
// Active Directory stores them); entryUUID and anything else are text.
func (p *Peer) anchorOf(e *goldap.Entry) (string, error) {
	name := p.cfg.Attributes.Anchor
	if strings.EqualFold(name, anchorObjectGUID) {
		raw := e.GetEqualFoldRawAttributeValue(name)
		if raw == nil {
			return "", badEntry("no %s", name)
		}
		return guidString(raw)
	}
	v := e.GetEqualFoldAttributeValue(name)
	if v == "" {
		return "", badEntry("no %s", name)
	}
	if err := checkText(name, v); err != nil {
		return "", err
	}
	return strings.ToLower(v), nil
}

func guidString(b []byte) (string, error) {
	if len(b) != 16 {
		return "", badEntry("objectGUID has %d bytes, want 16", len(b))
	}
	return fmt.Sprintf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]), nil
}

// guidBytes is the inverse of guidString, for filters by objectGUID.
func guidBytes(s string) ([]byte, error) {
	h := strings.ReplaceAll(s, "-", "")
	if len(h) != 32 {
		return nil, fmt.Errorf("ldap: %q is not a GUID", s)
	}
	var b [16]byte
	for i := range 16 {
		v, err := strconv.ParseUint(h[2*i:2*i+2], 16, 8)
		if err != nil {
			return nil, fmt.Errorf("ldap: %q is not a GUID", s)
		}
		b[i] = byte(v)
	}
	return []byte{b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]}, nil
}

// checkText refuses what cannot be a name, number or address: invalid
// UTF-8 (an undecodable value) and control characters.
func checkText(attr, v string) error {
	if !utf8.ValidString(v) {
		return badEntry("%s is not valid UTF-8", attr)
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return badEntry("%s contains control character %U", attr, r)
		}
	}
	return nil
}

// text reads one string attribute; an empty name is "not mapped".
func text(e *goldap.Entry, attr string, errs *[]error) string {
	if attr == "" {
		return ""
	}
	v := e.GetEqualFoldAttributeValue(attr)
	if err := checkText(attr, v); err != nil {
		*errs = append(*errs, err)
		return ""
	}
	return strings.TrimSpace(v)
}

func (p *Peer) order(e *goldap.Entry, errs *[]error) int {
	a := p.cfg.Attributes.Order
	if a == "" {
		return 0
	}
	v := e.GetEqualFoldAttributeValue(a)
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		*errs = append(*errs, badEntry("%s %q is not an integer", a, v))
		return 0
	}
	return n
}

func (p *Peer) status(e *goldap.Entry, errs *[]error) string {
	a := p.cfg.Attributes
	if a.UserAccountControl {
		if v := e.GetEqualFoldAttributeValue("userAccountControl"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				*errs = append(*errs, badEntry("userAccountControl %q is not an integer", v))
			} else if n&0x2 != 0 { // ACCOUNTDISABLE ([MS-ADTS] userAccountControl)
				return directory.StatusDisabled
			}
		}
	}
	if a.Status != "" {
		v := e.GetEqualFoldAttributeValue(a.Status)
		for _, d := range a.DisabledValues {
			if strings.EqualFold(v, d) {
				return directory.StatusDisabled
			}
		}
		for _, l := range a.LeftValues {
			if strings.EqualFold(v, l) {
				return directory.StatusLeft
			}
		}
	}
	return directory.StatusActive
}

func (p *Peer) deptRecord(e *goldap.Entry) deptRec {
	var errs []error
	r := deptRec{dn: e.DN, depth: dnDepth(e.DN), ts: e.GetEqualFoldAttributeValue("modifyTimestamp")}
	if a := p.stampAttr(); a != "" {
		r.stamp = e.GetEqualFoldAttributeValue(a)
	}
	anchor, err := p.anchorOf(e)
	if err != nil {
		errs = append(errs, err)
	}
	d := &directory.Department{
		Anchor: anchor,
		Name:   text(e, p.cfg.Attributes.DepartmentName, &errs),
		Order:  p.order(e, &errs),
		Status: p.status(e, &errs),
	}
	if d.Name == "" && len(errs) == 0 {
		errs = append(errs, badEntry("no %s", p.cfg.Attributes.DepartmentName))
	}
	r.entry = directory.Entry{Kind: directory.KindDepartment, Department: d, Anchor: anchor, Source: e.DN, Err: errors.Join(errs...)}
	return r
}

// personEntry converts one person; the second result is its
// modifyTimestamp (generalized time) for the timestamp cursor.
func (p *Peer) personEntry(e *goldap.Entry, depts *deptIndex) (directory.Entry, string) {
	a := p.cfg.Attributes
	var errs []error
	anchor, err := p.anchorOf(e)
	if err != nil {
		errs = append(errs, err)
	}
	pe := &directory.Person{
		Anchor:      anchor,
		DisplayName: text(e, a.DisplayName, &errs),
		Title:       text(e, a.Title, &errs),
		Rank:        text(e, a.Rank, &errs),
		OfficePhone: text(e, a.OfficePhone, &errs),
		Mobile:      text(e, a.Mobile, &errs),
		Mail:        strings.ToLower(text(e, a.Mail, &errs)),
		EmployeeNo:  text(e, a.EmployeeNo, &errs),
		Status:      p.status(e, &errs),
	}
	order := p.order(e, &errs)
	seen := map[string]bool{}
	add := func(anchor string) {
		if anchor != "" && !seen[anchor] {
			seen[anchor] = true
			pe.Memberships = append(pe.Memberships, directory.Membership{DeptAnchor: anchor, Order: order})
		}
	}
	if *a.MembershipFromDN {
		add(depts.parentAnchor(e.DN))
	}
	if a.MemberOf != "" {
		for _, v := range e.GetEqualFoldAttributeValues(a.MemberOf) {
			if err := checkText(a.MemberOf, v); err != nil {
				errs = append(errs, err)
				continue
			}
			if anc, ok := depts.byDN[normDN(v)]; ok {
				add(anc)
			} else if anc, ok := depts.byName[strings.ToLower(v)]; ok {
				add(anc)
			} else {
				errs = append(errs, badEntry("%s %q names no known department", a.MemberOf, v))
			}
		}
	}
	if pe.DisplayName == "" && len(errs) == 0 {
		errs = append(errs, badEntry("no %s", a.DisplayName))
	}
	return directory.Entry{Kind: directory.KindPerson, Person: pe, Anchor: anchor, Source: e.DN, Err: errors.Join(errs...),
		Version: p.version(e, depts)}, e.GetEqualFoldAttributeValue("modifyTimestamp")
}
