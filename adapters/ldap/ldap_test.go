package ldap

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/govhub/govhub/adapters/ldap/ldaptest"
	"github.com/govhub/govhub/directory"
)

func rootConfig(s *ldaptest.Server) Config {
	return Config{
		URL:        s.URL,
		BindDN:     ldaptest.RootDN,
		BindSecret: ldaptest.RootPW,
		People:     Search{BaseDN: ldaptest.Suffix},
		Attributes: Attributes{Order: "description"},
		PageSize:   4,
	}
}

func newPeer(t *testing.T, cfg Config) *Peer {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type walk struct {
	entries []directory.Entry
	depts   map[string]*directory.Department // by name
	people  map[string]directory.Entry       // by Source DN
	errs    map[string]error                 // by Source DN
	deleted []string
}

func collect(t *testing.T, run func(func(directory.Entry) error) (string, error)) (*walk, string) {
	t.Helper()
	w := &walk{depts: map[string]*directory.Department{}, people: map[string]directory.Entry{}, errs: map[string]error{}}
	cur, err := run(func(e directory.Entry) error {
		w.entries = append(w.entries, e)
		switch {
		case e.Deleted:
			w.deleted = append(w.deleted, e.Anchor)
		case e.Err != nil:
			w.errs[e.Source] = e.Err
		case e.Kind == directory.KindDepartment:
			w.depts[e.Department.Name] = e.Department
		default:
			w.people[e.Source] = e
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return w, cur
}

// uuids reads entryUUID per DN with ldapsearch, a client other than ours.
func uuids(t *testing.T, s *ldaptest.Server) map[string]string {
	out := s.LDAPSearch(t, ldaptest.Suffix, "(objectClass=*)", "entryUUID")
	m := map[string]string{}
	var dn string
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "dn:: "):
			b, _ := base64.StdEncoding.DecodeString(line[5:])
			dn = string(b)
		case strings.HasPrefix(line, "dn: "):
			dn = line[4:]
		case strings.HasPrefix(line, "entryUUID: "):
			m[normDN(dn)] = line[11:]
		}
	}
	return m
}

func personByDN(t *testing.T, w *walk, dn string) *directory.Person {
	t.Helper()
	for src, e := range w.people {
		if normDN(src) == normDN(dn) {
			return e.Person
		}
	}
	t.Fatalf("no person %s", dn)
	return nil
}

func TestFullImport(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.Options{LDIF: ldaptest.ChartLDIF(0)})
	p := newPeer(t, rootConfig(s))
	w, cur := collect(t, func(fn func(directory.Entry) error) (string, error) { return p.Full(context.Background(), fn) })
	if cur == "" {
		t.Fatal("no cursor")
	}
	if c, _ := decodeCursor(cur); c.Mode != modeSync {
		t.Fatalf("cursor mode %q, want sync (slapd has syncprov)", c.Mode)
	}
	ids := uuids(t, s)

	// Departments first, parents before children.
	seenPerson := false
	pos := map[string]int{}
	for i, e := range w.entries {
		if e.Kind == directory.KindPerson {
			seenPerson = true
		} else if seenPerson {
			t.Fatalf("department %s after a person", e.Source)
		}
		pos[e.Anchor] = i
	}
	if len(w.depts) != len(ldaptest.Departments) {
		t.Fatalf("%d departments, want %d", len(w.depts), len(ldaptest.Departments))
	}
	for _, d := range ldaptest.Departments {
		got := w.depts[d.OU]
		if got == nil {
			t.Fatalf("department %s missing (names: %v)", d.OU, w.depts)
		}
		if got.Anchor != ids[normDN(ldaptest.DeptDN(d.OU))] {
			t.Errorf("%s anchor %s, want its entryUUID %s", d.OU, got.Anchor, ids[normDN(ldaptest.DeptDN(d.OU))])
		}
		if d.Parent == "" {
			if got.ParentAnchor != "" {
				t.Errorf("%s: root with parent %s", d.OU, got.ParentAnchor)
			}
			continue
		}
		parent := w.depts[d.Parent]
		if got.ParentAnchor != parent.Anchor {
			t.Errorf("%s parent %s, want %s", d.OU, got.ParentAnchor, parent.Anchor)
		}
		if pos[parent.Anchor] > pos[got.Anchor] {
			t.Errorf("%s reported before its parent %s", d.OU, d.Parent)
		}
	}
	// Every person reported, broken ones with Err (control characters,
	// a non-numeric order), the rest clean.
	if n := len(w.people) + len(w.errs); n != len(ldaptest.People) {
		t.Fatalf("%d people, want %d", n, len(ldaptest.People))
	}
	zs := personByDN(t, w, "uid=zhangsan,"+ldaptest.DeptDN("办公厅"))
	want := directory.Person{
		Anchor: ids[normDN("uid=zhangsan,"+ldaptest.DeptDN("办公厅"))], DisplayName: "张三", Title: "主任",
		Memberships: []directory.Membership{{DeptAnchor: w.depts["办公厅"].Anchor, Order: 1}},
		OfficePhone: "010-1001", Mobile: "13800000001", Mail: "zhangsan@gov.example", EmployeeNo: "E001", Status: directory.StatusActive,
	}
	if fmt.Sprint(*zs) != fmt.Sprint(want) {
		t.Errorf("张三:\n got %+v\nwant %+v", *zs, want)
	}
	if got := personByDN(t, w, "uid=ouyangnana,"+ldaptest.DeptDN("财政局")); got.DisplayName != "欧阳娜娜" || got.Memberships[0].DeptAnchor != w.depts["财政局"].Anchor {
		t.Errorf("欧阳娜娜: %+v", got)
	}
	if got := personByDN(t, w, "uid=wangwu,"+ldaptest.DeptDN("预算处")); got.Memberships[0].DeptAnchor != w.depts["预算处"].Anchor {
		t.Errorf("王五 not in 预算处: %+v", got)
	}
	// No mail and duplicate mail are the engine's to judge: reported as read.
	if got := personByDN(t, w, "uid=qianyi,"+ldaptest.DeptDN("教育局")); got.Mail != "" || got.DisplayName != "钱一" {
		t.Errorf("钱一: %+v", got)
	}
	if got := personByDN(t, w, "uid=zhangsan2,"+ldaptest.DeptDN("财政局")); got.Mail != "zhangsan@gov.example" {
		t.Errorf("second 张三: %+v", got)
	}
	for dn, e := range w.people {
		if e.Anchor == "" || e.Anchor != ids[normDN(dn)] {
			t.Errorf("%s anchor %q, want entryUUID %q", dn, e.Anchor, ids[normDN(dn)])
		}
	}
}

// TestPerEntryErrors: broken entries come with Err and the walk goes on.
func TestPerEntryErrors(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.Options{LDIF: ldaptest.ChartLDIF(0)})
	cfg := rootConfig(s)
	cfg.Attributes.Rank = "audio" // holds invalid UTF-8 for uid=badutf8
	// An anchor attribute some entries lack stands in for a missing
	// entryUUID, which slapd always has.
	cfg.Attributes.Anchor = "employeeNumber"
	p := newPeer(t, cfg)
	w, _ := collect(t, func(fn func(directory.Entry) error) (string, error) { return p.Full(context.Background(), fn) })
	wantErr := map[string]string{
		"uid=ctrl," + ldaptest.DeptDN("教育局"):     "control character",
		"uid=badorder," + ldaptest.DeptDN("教育局"): "not an integer",
		"uid=badutf8," + ldaptest.DeptDN("办公厅"):  "not valid UTF-8",
		"uid=noemp," + ldaptest.DeptDN("办公厅"):    "no employeeNumber",
	}
	got := map[string]error{}
	for dn, err := range w.errs {
		got[normDN(dn)] = err
	}
	for dn, want := range wantErr {
		err := got[normDN(dn)]
		if err == nil || !errors.Is(err, ErrBadEntry) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want %q", dn, err, want)
		}
	}
	// Departments have no employeeNumber either: all five are reported
	// broken, and every person still comes after them.
	deptErrs := 0
	for _, e := range w.entries {
		if e.Kind == directory.KindDepartment && e.Err != nil {
			deptErrs++
		}
	}
	if deptErrs != len(ldaptest.Departments) || len(w.errs) != len(wantErr)+deptErrs {
		t.Errorf("errors: %v", w.errs)
	}
	if len(w.people) != len(ldaptest.People)-len(wantErr) {
		t.Errorf("%d clean people, want %d", len(w.people), len(ldaptest.People)-len(wantErr))
	}

	// fn's error stops the walk and is returned.
	stop := errors.New("enough")
	n := 0
	_, err := p.Full(context.Background(), func(directory.Entry) error {
		if n++; n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 {
		t.Fatalf("stop: err %v after %d entries", err, n)
	}
}

// TestPaging: the reader may read 5 entries per search; only RFC 2696
// paging gets all of them.
func TestPaging(t *testing.T) {
	const extra = 40
	s := ldaptest.Start(t, ldaptest.Options{LDIF: ldaptest.ChartLDIF(extra)})
	cfg := rootConfig(s)
	cfg.BindDN, cfg.BindSecret = ldaptest.ReaderDN, ldaptest.ReaderPW
	cfg.PageSize = 4
	cfg.ContentSync = "off" // syncprov refreshes are size-limited too
	p := newPeer(t, cfg)

	// Without paging the limit bites: the protection under test is real.
	c, err := p.dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Search(p.searchReq(cfg.People, "(objectClass=inetOrgPerson)", []string{"cn"}))
	c.Close()
	if !goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded) {
		t.Fatalf("unpaged search: %v, want sizeLimitExceeded", err)
	}

	w, _ := collect(t, func(fn func(directory.Entry) error) (string, error) { return p.Full(context.Background(), fn) })
	if n := len(w.people) + len(w.errs) - len(ldaptest.Departments)*0; n != len(ldaptest.People)+extra {
		t.Fatalf("%d people through paging, want %d", n, len(ldaptest.People)+extra)
	}
	if len(w.depts) != len(ldaptest.Departments) {
		t.Fatalf("%d departments", len(w.depts))
	}
}

func TestContentSync(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.Options{LDIF: ldaptest.ChartLDIF(0)})
	p := newPeer(t, rootConfig(s))
	ctx := context.Background()
	_, cur := collect(t, func(fn func(directory.Entry) error) (string, error) { return p.Full(ctx, fn) })
	ids := uuids(t, s)

	w, cur := collect(t, func(fn func(directory.Entry) error) (string, error) { return p.Changes(ctx, cur, fn) })
	if len(w.entries) != 0 {
		t.Fatalf("no change yet, got %d entries: %+v", len(w.entries), w.entries)
	}

	zhoubaDN := "uid=zhouba," + ldaptest.DeptDN("教育局")
	s.LDAPModify(t, fmt.Sprintf(`dn: ou=档案室,%[1]s
changetype: add
objectClass: organizationalUnit
ou: 档案室

dn: uid=xinren,ou=档案室,%[1]s
changetype: add
objectClass: inetOrgPerson
uid: xinren
cn: 新人
sn: 新人
mail: xinren@gov.example

dn: uid=lisi,%[1]s
changetype: modify
replace: title
title: 主任

dn: %[2]s
changetype: delete
`, ldaptest.DeptDN("办公厅"), zhoubaDN))

	w, cur = collect(t, func(fn func(directory.Entry) error) (string, error) { return p.Changes(ctx, cur, fn) })
	dangan := w.depts["档案室"]
	if dangan == nil || dangan.ParentAnchor != ids[normDN(ldaptest.DeptDN("办公厅"))] {
		t.Fatalf("new department: %+v (entries %+v)", dangan, w.entries)
	}
	xr := personByDN(t, w, "uid=xinren,ou=档案室,"+ldaptest.DeptDN("办公厅"))
	if xr.DisplayName != "新人" || len(xr.Memberships) != 1 || xr.Memberships[0].DeptAnchor != dangan.Anchor {
		t.Errorf("new person: %+v", xr)
	}
	if ls := personByDN(t, w, "uid=lisi,"+ldaptest.DeptDN("办公厅")); ls.Title != "主任" {
		t.Errorf("modified 李四: %+v", ls)
	}
	if len(w.deleted) != 1 || w.deleted[0] != ids[normDN(zhoubaDN)] {
		t.Errorf("deleted %v, want [%s]", w.deleted, ids[normDN(zhoubaDN)])
	}
	if len(w.people) != 2 || len(w.depts) != 1 {
		t.Errorf("more than the changes: %+v", w.entries)
	}

	// The cursor moved: nothing again.
	w, cur = collect(t, func(fn func(directory.Entry) error) (string, error) { return p.Changes(ctx, cur, fn) })
	if len(w.entries) != 0 {
		t.Fatalf("after the delta, got %+v", w.entries)
	}

	// A modified department is a department change, not a person's
	// deletion (the people search sees it leave its content); a deleted
	// department is reported as one.
	s.LDAPModify(t, fmt.Sprintf(`dn: %s
changetype: modify
replace: description
description: 7

dn: uid=xinren,ou=档案室,%[2]s
changetype: delete

dn: ou=档案室,%[2]s
changetype: delete
`, ldaptest.DeptDN("教育局"), ldaptest.DeptDN("办公厅")))
	w, _ = collect(t, func(fn func(directory.Entry) error) (string, error) { return p.Changes(ctx, cur, fn) })
	if jy := w.depts["教育局"]; jy == nil || jy.Order != 7 {
		t.Errorf("modified department: %+v", w.entries)
	}
	var kinds []string
	for _, e := range w.entries {
		if e.Deleted {
			kinds = append(kinds, fmt.Sprintf("%d:%s", e.Kind, e.Anchor))
		}
	}
	wantDel := []string{fmt.Sprintf("%d:%s", directory.KindDepartment, dangan.Anchor), fmt.Sprintf("%d:%s", directory.KindPerson, xr.Anchor)}
	if fmt.Sprint(kinds) != fmt.Sprint(wantDel) {
		t.Errorf("deletions %v, want %v", kinds, wantDel)
	}
}

func TestCursorExpired(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.Options{LDIF: ldaptest.ChartLDIF(0)})
	p := newPeer(t, rootConfig(s))
	nop := func(directory.Entry) error { return nil }
	for name, cur := range map[string]string{
		"garbage":      "not a cursor",
		"empty":        "",
		"bogus cookie": cursor{Mode: modeSync, Dept: []byte("rid=000,csn=nonsense"), People: []byte("rid=000,csn=nonsense")}.encode(),
		"other mode":   cursor{Mode: modeTimestamp, Since: "20260101000000Z"}.encode(),
		"hostile time": cursor{Mode: modeTimestamp, Since: "*)(uid=*"}.encode(),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := p.Changes(context.Background(), cur, nop)
			if !errors.Is(err, directory.ErrCursorExpired) {
				t.Fatalf("err %v, want ErrCursorExpired", err)
			}
		})
	}
}

// TestContentSyncNoSessionLog: without a session log syncprov answers a
// cookie with a present phase; the peer asks for a full run.
func TestContentSyncNoSessionLog(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.Options{LDIF: ldaptest.ChartLDIF(0), NoSessionLog: true})
	p := newPeer(t, rootConfig(s))
	ctx := context.Background()
	_, cur := collect(t, func(fn func(directory.Entry) error) (string, error) { return p.Full(ctx, fn) })
	s.LDAPModify(t, "dn: uid=zhouba,"+ldaptest.DeptDN("教育局")+"\nchangetype: delete\n")
	_, err := p.Changes(ctx, cur, func(directory.Entry) error { return nil })
	if !errors.Is(err, directory.ErrCursorExpired) {
		t.Fatalf("err %v, want ErrCursorExpired", err)
	}
}

func TestTimestampDelta(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.Options{LDIF: ldaptest.ChartLDIF(0)})
	cfg := rootConfig(s)
	cfg.ContentSync = "off"
	p := newPeer(t, cfg)
	ctx := context.Background()
	_, cur := collect(t, func(fn func(directory.Entry) error) (string, error) { return p.Full(ctx, fn) })
	c, _ := decodeCursor(cur)
	if c.Mode != modeTimestamp || !generalizedTime.MatchString(c.Since) {
		t.Fatalf("cursor %+v", c)
	}
	// modifyTimestamp has one-second resolution and the cursor's second
	// is read again (>=), so a change is reported at least once: step past
	// the slapadd second, make a first change and move the cursor to it.
	time.Sleep(1100 * time.Millisecond)
	s.LDAPModify(t, "dn: uid=zhangsan,"+ldaptest.DeptDN("办公厅")+"\nchangetype: modify\nreplace: title\ntitle: 秘书长\n")
	w, cur := collect(t, func(fn func(directory.Entry) error) (string, error) { return p.Changes(ctx, cur, fn) })
	// Everything slapadd wrote shares the cursor's second, so comes again.
	if personByDN(t, w, "uid=zhangsan,"+ldaptest.DeptDN("办公厅")).Title != "秘书长" {
		t.Fatalf("first delta: %+v", w.entries)
	}
	c1, _ := decodeCursor(cur)
	if c1.Since <= c.Since {
		t.Errorf("cursor did not advance: %s -> %s", c.Since, c1.Since)
	}

	time.Sleep(1100 * time.Millisecond)
	s.LDAPModify(t, fmt.Sprintf(`dn: uid=lisi,%s
changetype: modify
replace: mobile
mobile: 13900000002

dn: uid=zhouba,%s
changetype: delete
`, ldaptest.DeptDN("办公厅"), ldaptest.DeptDN("教育局")))
	w, cur = collect(t, func(fn func(directory.Entry) error) (string, error) { return p.Changes(ctx, cur, fn) })
	// 李四, and 张三 again (modified in the cursor's second), nothing else.
	if len(w.entries) != 2 {
		t.Fatalf("want 李四 and 张三, got %+v", w.entries)
	}
	if ls := personByDN(t, w, "uid=lisi,"+ldaptest.DeptDN("办公厅")); ls.Mobile != "13900000002" || len(ls.Memberships) != 1 {
		t.Errorf("李四: %+v", ls)
	}
	// Deletions are not seen by timestamp (documented): a full run finds them.
	if len(w.deleted) != 0 {
		t.Errorf("deleted %v", w.deleted)
	}
	if c2, _ := decodeCursor(cur); c2.Since <= c1.Since {
		t.Errorf("cursor did not advance: %s -> %s", c1.Since, c2.Since)
	}
}

func TestWriteBack(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.Options{LDIF: ldaptest.ChartLDIF(0)})
	ctx := context.Background()
	cfg := rootConfig(s)
	ro := newPeer(t, cfg)
	ids := uuids(t, s)
	lisiDN := "uid=lisi," + ldaptest.DeptDN("办公厅")
	lisi := ids[normDN(lisiDN)]
	if err := ro.UpdatePerson(ctx, lisi, map[string]string{"mobile": "1"}); !errors.Is(err, ErrNotWritable) {
		t.Fatalf("read-only peer: %v", err)
	}
	cfg.Writable = true
	p := newPeer(t, cfg)
	if err := p.UpdatePerson(ctx, lisi, map[string]string{"mobile": "13911112222", "mail": "li.si@gov.example"}); err != nil {
		t.Fatal(err)
	}
	out := s.LDAPSearch(t, lisiDN, "(objectClass=*)", "mobile", "mail", "title", "employeeNumber")
	for _, want := range []string{"mobile: 13911112222", "mail: li.si@gov.example", "employeeNumber: E002", "title:: "} {
		if !strings.Contains(out, want) {
			t.Errorf("after update, %q missing:\n%s", want, out)
		}
	}
	if err := p.UpdatePerson(ctx, lisi, map[string]string{"memberships": "x"}); !errors.Is(err, ErrFieldNotMapped) {
		t.Errorf("memberships: %v", err)
	}
	if err := p.UpdatePerson(ctx, lisi, map[string]string{"mobile": "1\n2"}); !errors.Is(err, ErrBadEntry) {
		t.Errorf("control characters: %v", err)
	}

	anchor, err := p.CreatePerson(ctx, directory.Person{DisplayName: "上官婉儿", Mail: "shangguan@gov.example", Mobile: "13700000000", EmployeeNo: "E100"})
	if err != nil {
		t.Fatal(err)
	}
	out = s.LDAPSearch(t, ldaptest.Suffix, "(employeeNumber=E100)", "entryUUID", "objectClass", "mail")
	if !strings.Contains(out, "entryUUID: "+anchor) || !strings.Contains(out, "objectClass: inetOrgPerson") || !strings.Contains(out, "mail: shangguan@gov.example") {
		t.Errorf("created %s:\n%s", anchor, out)
	}
}

// TestInjection: values govhub puts into filters are escaped (RFC 4515
// 3). Unescaped, the anchor below would turn the filter into
// (&(objectClass=inetOrgPerson)(employeeNumber=*)(uid=*)) and match
// everyone.
func TestInjection(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.Options{LDIF: ldaptest.ChartLDIF(0)})
	cfg := rootConfig(s)
	cfg.Writable = true
	for _, anchorAttr := range []string{"employeeNumber", "entryUUID"} {
		cfg.Attributes.Anchor = anchorAttr
		p := newPeer(t, cfg)
		err := p.UpdatePerson(context.Background(), "*)(uid=*", map[string]string{"title": "pwned"})
		if !errors.Is(err, ErrNotFound) {
			// An invalid assertion value may also be refused by slapd.
			if err == nil || strings.Contains(err.Error(), "matches") {
				t.Fatalf("%s: hostile anchor: %v", anchorAttr, err)
			}
		}
	}
	if out := s.LDAPSearch(t, ldaptest.Suffix, "(title=pwned)", "dn"); strings.TrimSpace(out) != "" {
		t.Fatalf("injection wrote:\n%s", out)
	}
	if af, _ := newPeer(t, cfg).anchorFilter("*)(uid=*"); af != `(entryUUID=\2a\29\28uid=\2a)` {
		t.Errorf("filter %s", af)
	}
	// A configured filter is parsed up front; a broken one is a config error.
	cfg.People.Filter = "(uid=*)(cn=*"
	if _, err := New(cfg); err == nil {
		t.Error("broken people filter accepted")
	}
}

func TestStartTLSRefused(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.Options{LDIF: ldaptest.ChartLDIF(0)})
	cfg := rootConfig(s)
	cfg.StartTLS = true
	p := newPeer(t, cfg)
	_, err := p.Full(context.Background(), func(directory.Entry) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "StartTLS refused") {
		t.Fatalf("err %v", err)
	}
	if strings.Contains(err.Error(), ldaptest.RootPW) {
		t.Fatal("secret in error")
	}
}

func TestGUID(t *testing.T) {
	// [MS-DTYP] 2.3.4: the first three fields little-endian.
	raw := []byte{0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
	s, err := guidString(raw)
	if err != nil || s != "00112233-4455-6677-8899-aabbccddeeff" {
		t.Fatalf("%s %v", s, err)
	}
	back, err := guidBytes(s)
	if err != nil || string(back) != string(raw) {
		t.Fatalf("%x %v", back, err)
	}
	p := newPeer(t, Config{URL: "ldap://x", People: Search{BaseDN: "dc=x"}, Attributes: Attributes{Anchor: "objectGUID"}})
	if f, err := p.anchorFilter(s); err != nil || f != `(objectGUID=\33\22\11\00\55\44\77\66\88\99\aa\bb\cc\dd\ee\ff)` {
		t.Fatalf("filter %s %v", f, err)
	}
	if _, err := p.anchorFilter("*)(uid=*"); err == nil {
		t.Fatal("hostile GUID accepted")
	}
	if _, err := guidString(raw[:15]); !errors.Is(err, ErrBadEntry) {
		t.Fatal(err)
	}
}

// TestTLS: StartTLS and ldaps:// verify the server against the configured
// CA; without it the connection fails unless verification is explicitly
// off.
func TestTLS(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.Options{LDIF: ldaptest.ChartLDIF(0), TLS: true})
	ctx := context.Background()
	nop := func(directory.Entry) error { return nil }
	for _, tc := range []struct {
		name string
		cfg  func(*Config)
		ok   bool
	}{
		{"starttls with CA", func(c *Config) { c.StartTLS, c.TLS.CAFile = true, s.CAFile }, true},
		{"ldaps with CA", func(c *Config) { c.URL, c.TLS.CAFile = s.LDAPSURL, s.CAFile }, true},
		{"starttls unknown CA", func(c *Config) { c.StartTLS = true }, false},
		{"ldaps unknown CA", func(c *Config) { c.URL = s.LDAPSURL }, false},
		{"ldaps wrong name", func(c *Config) { c.URL, c.TLS.CAFile, c.TLS.ServerName = s.LDAPSURL, s.CAFile, "ldap.example" }, false},
		{"ldaps skip verify", func(c *Config) { c.URL, c.TLS.InsecureSkipVerify = s.LDAPSURL, true }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := rootConfig(s)
			tc.cfg(&cfg)
			_, err := newPeer(t, cfg).Full(ctx, nop)
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestCancel: a cancelled context ends a walk in progress.
func TestCancel(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.Options{LDIF: ldaptest.ChartLDIF(50)})
	p := newPeer(t, rootConfig(s))
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	_, err := p.Full(ctx, func(directory.Entry) error {
		if n++; n == 10 {
			cancel()
		}
		return nil
	})
	if err == nil || n > 10+4 { // at most the rest of the page in hand
		t.Fatalf("err %v after %d entries", err, n)
	}
}
