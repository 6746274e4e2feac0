package ldap

import (
	"context"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/govhub/govhub/adapters/ldap/ldaptest"
	"github.com/govhub/govhub/directory"
)

// TestFullSkipping: with the versions of a previous walk, a full walk
// reports unchanged people by anchor and stamp only, reads in full the
// ones modified since (and the broken ones, never known), finds the same
// people in the same state, and reads everyone again once a department
// changed (memberships are read through departments) or once too many
// changed for searches by anchor.
func TestFullSkipping(t *testing.T) {
	ctx := context.Background()
	s := ldaptest.Start(t, ldaptest.Options{LDIF: ldaptest.ChartLDIF(30)})
	p := newPeer(t, rootConfig(s))
	first, _ := collect(t, func(fn func(directory.Entry) error) (string, error) { return p.Full(ctx, fn) })
	known := map[string]string{}
	for _, e := range first.entries {
		if e.Kind != directory.KindPerson || e.Err != nil {
			continue
		}
		if e.Version == "" {
			t.Fatalf("%s has no version", e.Source)
		}
		known[e.Anchor] = e.Version
	}
	lookup := func(a string) string { return known[a] }
	zs := ldaptest.People[0]
	s.LDAPModify(t, "dn: "+zs.DN()+"\nchangetype: modify\nreplace: title\ntitle: 秘书长\n")

	w, _ := collect(t, func(fn func(directory.Entry) error) (string, error) { return p.FullSkipping(ctx, lookup, fn) })
	if len(w.people) != len(first.people) || len(w.errs) != len(first.errs) {
		t.Fatalf("skipping walk: %d people %d errors, full walk %d and %d", len(w.people), len(w.errs), len(first.people), len(first.errs))
	}
	unchanged := 0
	for dn, e := range w.people {
		switch {
		case dn == zs.DN():
			if e.Unchanged || e.Person == nil || e.Person.Title != "秘书长" || e.Version == known[e.Anchor] {
				t.Errorf("modified person: %+v %+v", e, e.Person)
			}
		case e.Unchanged:
			unchanged++
			if e.Person != nil || e.Version != known[e.Anchor] || e.Anchor != first.people[dn].Anchor {
				t.Errorf("unchanged %s: %+v", dn, e)
			}
		default:
			t.Errorf("%s read in full though unchanged", dn)
		}
	}
	if unchanged != len(first.people)-1 {
		t.Fatalf("%d unchanged of %d", unchanged, len(first.people))
	}

	// A department's order does not change how its people read.
	s.LDAPModify(t, "dn: "+ldaptest.DeptDN("教育局")+"\nchangetype: modify\nreplace: description\ndescription: 9\n")
	w, _ = collect(t, func(fn func(directory.Entry) error) (string, error) { return p.FullSkipping(ctx, lookup, fn) })
	for dn, e := range w.people {
		if !e.Unchanged && dn != zs.DN() {
			t.Fatalf("after a department's order changed %s was read in full", dn)
		}
	}

	// A new department changes every person's version.
	s.LDAPModify(t, "dn: ou=新部门,"+ldaptest.Suffix+"\nchangetype: add\nobjectClass: organizationalUnit\nou: 新部门\n")
	w, _ = collect(t, func(fn func(directory.Entry) error) (string, error) { return p.FullSkipping(ctx, lookup, fn) })
	for dn, e := range w.people {
		if e.Unchanged || e.Person == nil {
			t.Fatalf("after a department change %s was skipped", dn)
		}
	}
	if len(w.people) != len(first.people) {
		t.Fatalf("%d people after a department change, want %d", len(w.people), len(first.people))
	}

	// Too many to read by anchor: one more walk, with the same result.
	readByAnchorMax = 3
	t.Cleanup(func() { readByAnchorMax = 2000 })
	s.LDAPModify(t, "dn: ou=新部门,"+ldaptest.Suffix+"\nchangetype: delete\n")
	forget := map[string]bool{}
	for _, dn := range []string{ldaptest.People[1].DN(), ldaptest.People[2].DN(), ldaptest.People[3].DN()} {
		forget[first.people[dn].Anchor] = true
	}
	w, _ = collect(t, func(fn func(directory.Entry) error) (string, error) {
		return p.FullSkipping(ctx, func(a string) string {
			if forget[a] {
				return ""
			}
			return known[a]
		}, fn)
	})
	unchanged = 0
	for dn, e := range w.people {
		if e.Unchanged || e.Person == nil {
			unchanged++
		}
		if dn == zs.DN() && e.Person.Title != "秘书长" {
			t.Errorf("second walk: %+v", e.Person)
		}
	}
	if unchanged != 0 || len(w.people) != len(first.people) || len(w.errs) != len(first.errs) {
		t.Fatalf("second walk: %d people (%d skipped), %d errors", len(w.people), unchanged, len(w.errs))
	}

	// change_stamp none: never skipped.
	cfg := rootConfig(s)
	cfg.Attributes.ChangeStamp = "none"
	w, _ = collect(t, func(fn func(directory.Entry) error) (string, error) {
		return newPeer(t, cfg).FullSkipping(ctx, func(string) string { return "x" }, fn)
	})
	for dn, e := range w.people {
		if e.Unchanged || e.Version != "" {
			t.Fatalf("change_stamp none: %s %+v", dn, e)
		}
	}
}

// TestVersionFollowsMemberOf: with memberships from a member_of attribute
// (Active Directory's computed memberOf, which does not bump the user's
// uSNChanged), the version changes when the values do, so a skipping
// full run still reads the person.
func TestVersionFollowsMemberOf(t *testing.T) {
	p, err := New(Config{URL: "ldap://127.0.0.1:1", People: Search{BaseDN: "dc=gov,dc=example"},
		Attributes: Attributes{ChangeStamp: "uSNChanged", MemberOf: "memberOf"}})
	if err != nil {
		t.Fatal(err)
	}
	depts := &deptIndex{tag: "t1"}
	mk := func(groups ...string) *goldap.Entry {
		return goldap.NewEntry("cn=a,dc=gov,dc=example", map[string][]string{"uSNChanged": {"1000"}, "memberOf": groups})
	}
	a := p.version(mk("cn=办公室,dc=gov,dc=example"), depts)
	b := p.version(mk("cn=办公室,dc=gov,dc=example", "cn=财政局,dc=gov,dc=example"), depts)
	c := p.version(mk("CN=办公室,dc=gov,dc=example"), depts)
	if a == "" || a == b {
		t.Fatalf("memberOf change not in the version: %q %q", a, b)
	}
	if a != c {
		t.Fatalf("a case change alone changed the version: %q %q", a, c)
	}
}

// TestTimestampCursorBeforeWalk: without content sync, a full walk's
// modifyTimestamp cursor is no later than the walk's start (less the
// clock margin), so an entry changed during the walk, after the walk had
// passed it, is read by the next delta.
func TestTimestampCursorBeforeWalk(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.Options{LDIF: ldaptest.ChartLDIF(0)})
	cfg := rootConfig(s)
	cfg.ContentSync = "off"
	cfg.DeltaBy = "modifyTimestamp"
	p := newPeer(t, cfg)
	start := time.Now()
	// An entry modified "now": the newest stamp the walk sees.
	s.LDAPModify(t, "dn: uid=lisi,"+ldaptest.DeptDN("办公厅")+"\nchangetype: modify\nreplace: mobile\nmobile: 13900000000\n")
	raw, err := p.Full(context.Background(), func(directory.Entry) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	cur, err := decodeCursor(raw)
	if err != nil {
		t.Fatal(err)
	}
	limit := start.Add(-walkClockMargin + time.Minute).UTC().Format("20060102150405Z")
	if cur.Mode != modeTimestamp || cur.Since == "" || !hwLess(cur.Since, limit) {
		t.Fatalf("cursor %+v: want a modifyTimestamp before %s", cur, limit)
	}
}
