package ldap

import (
	"context"
	"errors"
	"testing"

	"github.com/govhub/govhub/adapters/ldap/ldaptest"
	"github.com/govhub/govhub/directory"
)

// TestStampDelta: without content sync, delta_by change_stamp keeps the
// highest change stamp in the cursor and reads exactly the entries with a
// greater one, departments included, with no second-resolution repeats.
// slapd maintains entryCSN (ordered, like Active Directory's uSNChanged),
// so it stands in for AD here.
func TestStampDelta(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.Options{LDIF: ldaptest.ChartLDIF(20)})
	cfg := rootConfig(s)
	cfg.ContentSync, cfg.DeltaBy = "off", "change_stamp"
	p := newPeer(t, cfg)
	ctx := context.Background()
	_, cur := collect(t, func(fn func(directory.Entry) error) (string, error) { return p.Full(ctx, fn) })
	c, _ := decodeCursor(cur)
	if c.Mode != modeStamp || c.Since == "" {
		t.Fatalf("cursor %+v", c)
	}
	// Nothing changed: nothing read.
	w, cur := collect(t, func(fn func(directory.Entry) error) (string, error) { return p.Changes(ctx, cur, fn) })
	if len(w.entries) != 0 {
		t.Fatalf("unchanged: %d entries: %+v", len(w.entries), w.entries)
	}
	zs, ls := ldaptest.People[0], ldaptest.People[1]
	s.LDAPModify(t, "dn: "+zs.DN()+"\nchangetype: modify\nreplace: title\ntitle: 秘书长\n\n"+
		"dn: "+ls.DN()+"\nchangetype: modify\nreplace: mobile\nmobile: 13900000002\n\n"+
		"dn: "+ldaptest.DeptDN("教育局")+"\nchangetype: modify\nreplace: description\ndescription: 7\n")
	w, next := collect(t, func(fn func(directory.Entry) error) (string, error) { return p.Changes(ctx, cur, fn) })
	if len(w.people) != 2 || len(w.depts) != 1 || w.depts["教育局"] == nil || w.depts["教育局"].Order != 7 {
		t.Fatalf("after 3 changes: people %d, departments %+v", len(w.people), w.depts)
	}
	if personByDN(t, w, zs.DN()).Title != "秘书长" || personByDN(t, w, ls.DN()).Mobile != "13900000002" {
		t.Fatalf("changed people: %+v", w.people)
	}
	if c1, _ := decodeCursor(next); !hwLess(c.Since, c1.Since) {
		t.Fatalf("cursor did not advance: %s -> %s", c.Since, c1.Since)
	}
	w, _ = collect(t, func(fn func(directory.Entry) error) (string, error) { return p.Changes(ctx, next, fn) })
	if len(w.entries) != 0 {
		t.Fatalf("read again: %+v", w.entries)
	}
	// A cursor of the other mode is refused as expired (full run).
	cfg.DeltaBy = "modifyTimestamp"
	if _, err := newPeer(t, cfg).Changes(ctx, next, func(directory.Entry) error { return nil }); !errors.Is(err, directory.ErrCursorExpired) {
		t.Fatalf("mode change: %v", err)
	}
}

// TestHighWater: uSNChanged values order as numbers, generalized times
// and CSNs as text.
func TestHighWater(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		less bool
	}{
		{"", "1", true}, {"1", "", false}, {"9", "10", true}, {"10", "9", false}, {"12345", "12345", false},
		{"20261203101010Z", "20261203101011Z", true},
		{"20261203101010.000001Z#000000#000#000000", "20261203101010.000002Z#000000#000#000000", true},
	} {
		if got := hwLess(tc.a, tc.b); got != tc.less {
			t.Errorf("hwLess(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
	if hwMax("9", "10") != "10" || hwMax("10", "") != "10" {
		t.Error("hwMax")
	}
	// AD defaults: objectGUID anchor, uSNChanged stamp, stamp deltas.
	p := newPeer(t, Config{URL: "ldap://x", People: Search{BaseDN: "dc=x"}, Attributes: Attributes{Anchor: "objectGUID"}})
	if p.stampAttr() != "uSNChanged" || p.deltaMode() != modeStamp {
		t.Fatalf("AD defaults: %s %s", p.stampAttr(), p.deltaMode())
	}
	if _, err := New(Config{URL: "ldap://x", People: Search{BaseDN: "dc=x"}, DeltaBy: "dirsync"}); err == nil {
		t.Fatal("bad delta_by accepted")
	}
}
