package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/govhub/govhub/adapters/affairslink/simulator"
	"github.com/govhub/govhub/adapters/ldap/ldaptest"
	"github.com/govhub/govhub/directory"
	"github.com/govhub/govhub/internal/sqldb"
)

// TestSyncRunLDAP drives `govhub sync run` against a real slapd with the
// generated chart (Chinese names and hostile entries): a full run creates
// people and their mail accounts, reports the broken entries per object
// without stopping, and a second run changes nothing.
func TestSyncRunLDAP(t *testing.T) {
	srv := ldaptest.Start(t, ldaptest.Options{LDIF: ldaptest.ChartLDIF(0)})
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "govhub.yaml")
	os.WriteFile(cfgPath, []byte(`directory:
  peers:
    - name: ldap
      type: ldap
      settings:
        url: `+srv.URL+`
        bind_dn: "`+ldaptest.RootDN+`"
        people: {base_dn: "`+ldaptest.Suffix+`"}
`), 0o600)
	t.Setenv("GOVHUB_PEER_LDAP_SECRET", ldaptest.RootPW)
	base := []string{"--config", cfgPath, "--data", filepath.Join(dir, "data")}
	sync := func() map[string]any {
		t.Helper()
		out, errs, code := run(t, "", append(base, "sync", "run", "ldap", "--full", "--json")...)
		if code != 0 {
			t.Fatalf("sync run: %d\n%s\n%s", code, out, errs)
		}
		if strings.Contains(out+errs, ldaptest.RootPW) {
			t.Fatal("the bind secret was printed")
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return r
	}
	// A dry run reports exactly what the real run then does.
	out, errs, code := run(t, "", append(base, "sync", "run", "ldap", "--full", "--dry-run", "--json")...)
	var dry map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &dry) != nil || dry["dry_run"] != true {
		t.Fatalf("dry run: %d %s %s", code, out, errs)
	}
	first := sync()
	for _, k := range []string{"created", "updated", "removed"} {
		if dry[k] != first[k] {
			t.Errorf("dry run %s=%v, real run %v", k, dry[k], first[k])
		}
	}
	if first["created"].(float64) < 8 || len(first["errors"].([]any)) == 0 {
		t.Fatalf("first run = created %v, errors %v", first["created"], first["errors"])
	}
	out, _, _ = run(t, "", append(base, "user", "list")...)
	for _, want := range []string{"zhangsan@gov.example", "欧阳娜娜", "zhugeliang@gov.example"} {
		if !strings.Contains(out, want) {
			t.Errorf("accounts after sync lack %s:\n%s", want, out)
		}
	}
	second := sync()
	if second["created"].(float64) != 0 || second["updated"].(float64) != 0 || second["removed"].(float64) != 0 {
		t.Fatalf("second run changed things: created %v updated %v removed %v", second["created"], second["updated"], second["removed"])
	}
	// Deleting 2 of the chart's people is more than 5%: the run stops and
	// removes nothing until confirmed.
	for _, p := range ldaptest.People[:2] {
		srv.LDAPModify(t, "dn: "+p.DN()+"\nchangetype: delete\n")
	}
	out, errs, code = run(t, "", append(base, "sync", "run", "ldap", "--full")...)
	if code != 1 || !strings.Contains(errs, "threshold") {
		t.Fatalf("threshold not tripped: %d %s %s", code, out, errs)
	}
	if out, _, _ := run(t, "", append(base, "user", "quota", ldaptest.People[0].Mail)...); !strings.Contains(out, "used") {
		t.Fatalf("account gone after a refused run: %s", out)
	}
	out, errs, code = run(t, "", append(base, "sync", "run", "ldap", "--full", "--confirm-deletions", "--json")...)
	var third map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &third) != nil || third["removed"].(float64) != 2 {
		t.Fatalf("confirmed run: %d %s %s", code, out, errs)
	}
	// Removed people have left: their accounts are marked, not deleted.
	out, _, _ = run(t, "", append(base, "user", "list")...)
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, ldaptest.People[0].Mail) && !strings.Contains(line, "left") {
			t.Fatalf("account of a removed person: %q", line)
		}
	}
}

// ldapSync is a data directory configured with one slapd peer "ldap".
type ldapSync struct {
	t    *testing.T
	srv  *ldaptest.Server
	data string
	base []string
}

func newLDAPSync(t *testing.T, writable bool) *ldapSync { return newLDAPSyncWith(t, writable, "") }

// newLDAPSyncWith is newLDAPSync with more settings lines (indented as
// the peer's settings).
func newLDAPSyncWith(t *testing.T, writable bool, settings string) *ldapSync {
	return newLDAPSyncConfig(t, ldaptest.ChartLDIF(0), writable, settings, "", "")
}

// newLDAPSyncConfig is newLDAPSyncWith over ldif, with directory-level
// YAML lines (indented as keys of directory:) and further peers (as
// items of directory.peers).
func newLDAPSyncConfig(t *testing.T, ldif string, writable bool, settings, dirLines, morePeers string) *ldapSync {
	srv := ldaptest.Start(t, ldaptest.Options{LDIF: ldif})
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "govhub.yaml")
	w := ""
	if writable {
		w = "      writable: true\n      push: true\n"
	}
	if err := os.WriteFile(cfgPath, []byte(`directory:
`+dirLines+`  peers:
    - name: ldap
      type: ldap
`+w+`      settings:
        url: `+srv.URL+`
        bind_dn: "`+ldaptest.RootDN+`"
        people: {base_dn: "`+ldaptest.Suffix+`"}
`+settings+morePeers), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOVHUB_PEER_LDAP_SECRET", ldaptest.RootPW)
	data := filepath.Join(dir, "data")
	return &ldapSync{t: t, srv: srv, data: data, base: []string{"--config", cfgPath, "--data", data}}
}

// run is `govhub sync run ldap ARGS --json`, decoded.
func (s *ldapSync) run(args ...string) directory.Report {
	s.t.Helper()
	return s.runPeer("ldap", args...)
}

// runPeer is `govhub sync run PEER ARGS --json`, decoded.
func (s *ldapSync) runPeer(peer string, args ...string) directory.Report {
	s.t.Helper()
	out, errs, code := run(s.t, "", append(append(append([]string{}, s.base...), "sync", "run", peer, "--json"), args...)...)
	if code != 0 {
		s.t.Fatalf("sync run %v: %d\n%s\n%s", args, code, out, errs)
	}
	var r directory.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		s.t.Fatalf("%v\n%s", err, out)
	}
	return r
}

// edit changes a person in govhub's chart, as an administrator's edit
// would, between runs (no govhub process is running).
func (s *ldapSync) edit(mail string, fn func(p *directory.PersonRecord)) {
	s.t.Helper()
	ctx := context.Background()
	db, err := sqldb.Open(ctx, filepath.Join(s.data, "govhub.db"), sqldb.Options{})
	if err != nil {
		s.t.Fatal(err)
	}
	defer db.Close()
	st := directory.NewStore(db, nil)
	p, err := st.PersonBy(ctx, "mail", mail, nil)
	if err != nil {
		s.t.Fatalf("person %s: %v", mail, err)
	}
	if err := st.EditPerson(ctx, p.ID, func(r *directory.PersonRecord) error { fn(r); return nil }); err != nil {
		s.t.Fatal(err)
	}
}

// person is govhub's record of the person with mail.
func (s *ldapSync) person(mail string) *directory.PersonRecord {
	s.t.Helper()
	ctx := context.Background()
	db, err := sqldb.Open(ctx, filepath.Join(s.data, "govhub.db"), sqldb.Options{})
	if err != nil {
		s.t.Fatal(err)
	}
	defer db.Close()
	p, err := directory.NewStore(db, nil).PersonBy(ctx, "mail", mail, nil)
	if err != nil {
		s.t.Fatalf("person %s: %v", mail, err)
	}
	return p
}

// TestSyncConflictLDAP: a field changed both in slapd and in govhub since
// the last run is a conflict, resolved by ownership (LDAP owns titles:
// its value wins; govhub owns mail: ours stays) and recorded, and `govhub
// sync show RUN` lists it. Both a delta (content sync) and a full run
// (which reads only the changed entries in full) find conflicts.
func TestSyncConflictLDAP(t *testing.T) {
	s := newLDAPSync(t, false)
	s.run("--full")
	zs, ls := ldaptest.People[0], ldaptest.People[1]
	for _, tc := range []struct {
		name string
		args []string
	}{{"delta", nil}, {"full", []string{"--full"}}} {
		t.Run(tc.name, func(t *testing.T) {
			s.t = t
			// Both sides change 张三's title and 李四's mail.
			title, mail := "秘书长-"+tc.name, "li.si."+tc.name+"@gov.example"
			s.srv.LDAPModify(t, "dn: "+zs.DN()+"\nchangetype: modify\nreplace: title\ntitle: "+title+"\n\n"+
				"dn: "+ls.DN()+"\nchangetype: modify\nreplace: mail\nmail: "+mail+"\n")
			s.edit(zs.Mail, func(p *directory.PersonRecord) { p.Title = "办公室主任" })
			ours := s.person(ls.Mail).ID
			s.edit(ls.Mail, func(p *directory.PersonRecord) { p.Mail = "lisi." + tc.name + "@gov.example" })
			rep := s.run(tc.args...)
			if len(rep.Conflicts) != 2 {
				t.Fatalf("conflicts = %+v", rep.Conflicts)
			}
			out, errs, code := run(t, "", append(s.base, "sync", "show", strconv.FormatInt(rep.RunID, 10))...)
			var d directory.RunDetail
			if code != 0 || json.Unmarshal([]byte(out), &d) != nil {
				t.Fatalf("sync show: %d %s %s", code, out, errs)
			}
			got := map[string]directory.Conflict{}
			for _, c := range d.Conflicts {
				got[c.Field] = c
			}
			want := map[string]directory.Conflict{
				"title": {Kind: "person", ObjectID: s.person(zs.Mail).ID, Field: "title", Ours: "办公室主任", Theirs: title, Winner: "ldap"},
				"mail":  {Kind: "person", ObjectID: ours, Field: "mail", Ours: "lisi." + tc.name + "@gov.example", Theirs: mail, Winner: "govhub"},
			}
			if len(d.Conflicts) != 2 || got["title"] != want["title"] || got["mail"] != want["mail"] {
				t.Fatalf("sync show conflicts = %+v\nwant %+v", d.Conflicts, want)
			}
			// The owner's value stands in govhub.
			if p := s.person(zs.Mail); p.Title != title {
				t.Errorf("title after the conflict = %q, want LDAP's %q", p.Title, title)
			}
			if p := s.person("lisi." + tc.name + "@gov.example"); p.ID != ours {
				t.Errorf("govhub's mail did not stand: %+v", p)
			}
			// Resolved: the next run finds nothing.
			if again := s.run(tc.args...); len(again.Conflicts) != 0 || again.Changed() != 0 {
				t.Fatalf("run after the conflict: %+v %+v", again.Conflicts, again.Changes)
			}
			// Next round starts from LDAP's mail equal to ours again.
			s.edit("lisi."+tc.name+"@gov.example", func(p *directory.PersonRecord) { p.Mail = ls.Mail })
			s.srv.LDAPModify(t, "dn: "+ls.DN()+"\nchangetype: modify\nreplace: mail\nmail: "+ls.Mail+"\n")
			s.run(tc.args...)
		})
	}
}

// TestSyncWriteBackLDAP: with the peer writable, a mail address changed
// in govhub (govhub owns mail) is written to slapd by the next run, delta
// or full, as ldapsearch then shows; a dry run announces the write and
// does not make it; the run after changes nothing.
func TestSyncWriteBackLDAP(t *testing.T) {
	s := newLDAPSync(t, true)
	s.run("--full")
	// Not 张三: a new address for him would free his old one for the
	// hostile entry that duplicates it, which the next full run then adds.
	oy, ls := ldaptest.People[2], ldaptest.People[1]
	ldapMail := func(p ldaptest.Person) string {
		t.Helper()
		out := s.srv.LDAPSearch(t, p.DN(), "(objectClass=*)", "mail")
		for _, line := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(line, "mail: "); ok {
				return v
			}
		}
		return ""
	}
	for _, tc := range []struct {
		name string
		who  ldaptest.Person
		mail string
		args []string
	}{
		{"delta", oy, "ouyang.nana@gov.example", nil},
		{"full", ls, "li.si@gov.example", []string{"--full"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.t = t
			s.edit(tc.who.Mail, func(p *directory.PersonRecord) { p.Mail = tc.mail })
			dry := s.run(append([]string{"--dry-run"}, tc.args...)...)
			if dry.WrittenBack != 1 || len(dry.Changes) != 1 || dry.Changes[0].Target != "ldap" || dry.Changes[0].Fields["mail"] != tc.mail {
				t.Fatalf("dry run: %+v", dry.Changes)
			}
			if got := ldapMail(tc.who); got != tc.who.Mail {
				t.Fatalf("a dry run wrote to LDAP: mail %q", got)
			}
			rep := s.run(tc.args...)
			if rep.WrittenBack != 1 || len(rep.Errors) != len(dry.Errors) || !reflect.DeepEqual(rep.Changes, dry.Changes) {
				t.Fatalf("run: written back %d, changes %+v, errors %+v (dry run: %+v)", rep.WrittenBack, rep.Changes, rep.Errors, dry.Changes)
			}
			if got := ldapMail(tc.who); got != tc.mail {
				t.Fatalf("LDAP mail after write-back = %q, want %q", got, tc.mail)
			}
			// The peer now agrees: nothing more to do, by delta or full.
			for _, args := range [][]string{nil, {"--full"}} {
				if again := s.run(args...); again.Changed() != 0 || len(again.Conflicts) != 0 {
					t.Fatalf("run %v after write-back: %+v %+v", args, again.Changes, again.Conflicts)
				}
			}
		})
	}
}

// TestSyncStampDeltaLDAP: with content sync off and delta_by
// change_stamp (Active Directory's uSNChanged; slapd's entryCSN here),
// `govhub sync run` deltas read exactly what changed since the stored
// high-water mark; a full run that skips unchanged people still puts back
// a peer-owned field edited in govhub, and finds a deletion.
func TestSyncStampDeltaLDAP(t *testing.T) {
	s := newLDAPSyncWith(t, false, "        content_sync: \"off\"\n        delta_by: change_stamp\n")
	first := s.run("--full")
	if first.Created < 8 {
		t.Fatalf("first run: %+v", first)
	}
	if again := s.run(); again.Seen != 0 || again.Changed() != 0 {
		t.Fatalf("delta with nothing changed: seen %d, changes %+v", again.Seen, again.Changes)
	}
	zs := ldaptest.People[0]
	s.srv.LDAPModify(t, "dn: "+zs.DN()+"\nchangetype: modify\nreplace: title\ntitle: 秘书长\n")
	d := s.run()
	if d.Seen != 1 || d.Updated != 1 || d.Changes[0].Fields["title"] != "秘书长" {
		t.Fatalf("delta after one change: seen %d, changes %+v", d.Seen, d.Changes)
	}
	// govhub edits a field LDAP owns; LDAP's entry is unchanged, so the
	// full run does not read it in full, and still restores LDAP's value.
	s.edit(zs.Mail, func(p *directory.PersonRecord) { p.Title = "改过的" })
	f := s.run("--full")
	if f.Updated != 1 || f.Changes[0].Fields["title"] != "秘书长" || s.person(zs.Mail).Title != "秘书长" {
		t.Fatalf("full run after a govhub edit: %+v", f.Changes)
	}
	s.srv.LDAPModify(t, "dn: "+ldaptest.People[7].DN()+"\nchangetype: delete\n")
	if r := s.run("--full", "--confirm-deletions"); r.Removed != 1 {
		t.Fatalf("deletion: %+v", r.Changes)
	}
}

// store opens the data directory's chart; closed when the test ends.
func (s *ldapSync) store() *directory.Store {
	s.t.Helper()
	db, err := sqldb.Open(context.Background(), filepath.Join(s.data, "govhub.db"), sqldb.Options{})
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { db.Close() })
	return directory.NewStore(db, nil)
}

func groupNamed(t *testing.T, st *directory.Store, name string) directory.GroupRecord {
	t.Helper()
	gs, err := st.SearchGroups(context.Background(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range gs {
		if g.Name == name {
			return g
		}
	}
	t.Fatalf("no group %s in %+v", name, gs)
	return directory.GroupRecord{}
}

// TestSyncGroupsLDAP: groups from slapd (groupOfNames, groupOfUniqueNames,
// nested, a cycle, a member DN naming nothing, a department and a broken
// person as members) are synced with per-object errors for what cannot be
// placed; they serve as distribution addresses (group-ID@ and the group's
// own mail, members flattened) and in the address book; a content-sync
// delta follows a membership change, and a deleted group counts toward
// the deletion threshold.
func TestSyncGroupsLDAP(t *testing.T) {
	s := newLDAPSyncConfig(t, ldaptest.ChartLDIF(0)+ldaptest.GroupsLDIF(), false, "", "  department_domain: gov.example\n", "")
	dry := s.run("--full", "--dry-run")
	rep := s.run("--full")
	if !reflect.DeepEqual(dry.Changes, rep.Changes) || !reflect.DeepEqual(dry.Errors, rep.Errors) {
		t.Fatalf("dry run differs:\n%+v\n%+v", dry.Changes, rep.Changes)
	}
	var groupErrs []string
	for _, e := range rep.Errors {
		if e.Kind == "group" {
			groupErrs = append(groupErrs, e.Source+": "+e.Error)
		}
	}
	joined := strings.Join(groupErrs, "\n")
	if len(groupErrs) != 3 || !strings.Contains(joined, ldaptest.GhostDN) || !strings.Contains(joined, ldaptest.DeptDN("教育局")) || !strings.Contains(joined, "not a known person") {
		t.Fatalf("group errors:\n%s", joined)
	}
	st := s.store()
	ctx := context.Background()
	all := groupNamed(t, st, ldaptest.GroupAll)
	g := deptGroups{dir: st, domain: "gov.example"}
	want := []string{"lisi@gov.example", "ouyangnana@gov.example", "zhangsan@gov.example", "zhugeliang@gov.example"}
	for _, addr := range []string{"group-" + strconv.FormatInt(all.ID, 10) + "@gov.example", "BGT-ALL@gov.example"} {
		got, ok, err := g.Members(ctx, addr)
		if err != nil || !ok || !reflect.DeepEqual(got, want) {
			t.Fatalf("members of %s = %v %v %v, want %v", addr, got, ok, err, want)
		}
	}
	for _, notGroup := range []string{"bgt-all@elsewhere.example", "group-999999@gov.example", "group-x@gov.example", "zhangsan@gov.example"} {
		if _, ok, err := g.Members(ctx, notGroup); ok || err != nil {
			t.Errorf("%s taken as a group (%v)", notGroup, err)
		}
	}
	card, err := st.GroupCard(ctx, all.ID)
	if err != nil || len(card.People) != 4 || len(card.Subgroups) != 1 || card.Subgroups[0].Name != ldaptest.GroupLead {
		t.Fatalf("card: %+v %v", card, err)
	}
	if again := s.run("--full"); again.Changed() != 0 {
		t.Fatalf("second full run: %+v", again.Changes)
	}

	// 李四 leaves the group: a content-sync delta follows.
	s.srv.LDAPModify(t, "dn: "+ldaptest.GroupDN(ldaptest.GroupAll)+"\nchangetype: modify\ndelete: member\nmember: "+ldaptest.PersonByUID("lisi").DN()+"\n")
	delta := s.run()
	if delta.Kind != "delta" || delta.Updated != 1 || delta.Changes[0].Kind != "group" {
		t.Fatalf("delta: %+v", delta)
	}
	if got, _, _ := g.Members(ctx, "bgt-all@gov.example"); len(got) != 3 {
		t.Fatalf("after the delta: %v", got)
	}

	// Deleted groups are removals: past the threshold (here one object
	// of twenty) they need confirming.
	s.srv.LDAPModify(t, "dn: "+ldaptest.GroupDN(ldaptest.GroupLead)+"\nchangetype: delete\n\ndn: "+ldaptest.GroupDN(ldaptest.GroupMixed)+"\nchangetype: delete\n")
	out, errs, code := run(t, "", append(s.base, "sync", "run", "ldap", "--full")...)
	if code != 1 || !strings.Contains(errs, "threshold") {
		t.Fatalf("threshold not tripped: %d %s %s", code, out, errs)
	}
	removed := s.run("--full", "--confirm-deletions")
	if removed.Removed != 2 {
		t.Fatalf("confirmed: %+v", removed)
	}
	if got, _, _ := g.Members(ctx, "bgt-all@gov.example"); !reflect.DeepEqual(got, []string{"zhangsan@gov.example"}) {
		t.Fatalf("after the nested group left: %v", got)
	}
}

// TestSyncPushLDAP: people who exist only in the affairs link (the
// contract simulator) are created in a writable slapd by a full run of
// the LDAP peer (after matching by employee number found nobody), with the
// fields LDAP does not own; a dry run announces them and creates nothing;
// ldapsearch then shows them, and the next runs change nothing.
func TestSyncPushLDAP(t *testing.T) {
	sim := simulator.New(simulator.Config{AppKey: "govhub-mail", AppSecret: "s3cret-app"})
	sim.Seed(2, 3)
	hs := httptest.NewServer(sim)
	defer hs.Close()
	t.Setenv("GOVHUB_PEER_AFFAIRSLINK_SECRET", "s3cret-app")
	s := newLDAPSyncConfig(t, ldaptest.ChartLDIF(0), true, "", "", `    - name: affairslink
      type: affairslink
      settings:
        base_url: `+hs.URL+`
        app_key: govhub-mail
`)
	s.run("--full")
	s.runPeer("affairslink", "--full")
	u1, _ := sim.User("u00001")
	inLDAP := func() string {
		return s.srv.LDAPSearch(t, ldaptest.Suffix, "(mail="+u1.Email+")", "cn", "mail", "mobile", "title", "employeeNumber", "entryUUID")
	}
	dry := s.run("--full", "--dry-run")
	if dry.CreatedInPeer != 3 || strings.Contains(inLDAP(), "dn:") {
		t.Fatalf("dry run: created in peer %d, changes %+v\n%s", dry.CreatedInPeer, dry.Changes, inLDAP())
	}
	rep := s.run("--full")
	if rep.CreatedInPeer != 3 || !reflect.DeepEqual(rep.Changes, dry.Changes) {
		t.Fatalf("run: %+v (dry run %+v)", rep.Changes, dry.Changes)
	}
	for _, c := range rep.Changes {
		// The title is LDAP's: not written. The employee number is LDAP's
		// too but is the match key: written, so a create whose anchor is
		// lost is linked by it, not made twice.
		if c.Action != "create" || c.Target != "ldap" || c.Fields["title"] != "" || c.Fields["employee_no"] == "" {
			t.Fatalf("push %+v: writes what LDAP owns, or lacks the match key", c)
		}
	}
	got := inLDAP()
	// ldapsearch writes non-ASCII values base64-encoded (RFC 2849).
	if !strings.Contains(got, "cn:: "+base64.StdEncoding.EncodeToString([]byte(u1.Name))) || !strings.Contains(got, "mobile: "+u1.Mobile) || strings.Contains(got, "title:") || !strings.Contains(got, "employeeNumber: "+u1.JobNumber) {
		t.Fatalf("ldapsearch after the push:\n%s", got)
	}
	p := s.person(u1.Email)
	for _, args := range [][]string{{"--full"}, nil, {"--full"}} {
		if again := s.run(args...); again.Changed() != 0 || len(again.Conflicts) != 0 || again.CreatedInPeer != 0 {
			t.Fatalf("run %v after the push: %+v", args, again.Changes)
		}
	}
	if p2 := s.person(u1.Email); p2.ID != p.ID || p2.DisplayName != u1.Name {
		t.Fatalf("person after the push: %+v", p2)
	}
	out, _, _ := run(t, "", append(s.base, "sync", "history")...)
	if !strings.Contains(out, "CREATED IN PEER") {
		t.Fatalf("history: %s", out)
	}
}

// TestSyncPushAffairsLink: with the affairs link writable, a full run of
// it creates there (through the simulator's POST /v1/users) the people
// who came from LDAP, without the mobile the affairs link owns; the next
// run finds them and changes nothing.
func TestSyncPushAffairsLink(t *testing.T) {
	sim := simulator.New(simulator.Config{AppKey: "govhub-mail", AppSecret: "s3cret-app"})
	sim.Seed(1, 0)
	hs := httptest.NewServer(sim)
	defer hs.Close()
	t.Setenv("GOVHUB_PEER_AFFAIRSLINK_SECRET", "s3cret-app")
	s := newLDAPSyncConfig(t, ldaptest.ChartLDIF(0), false, "", "", `    - name: affairslink
      type: affairslink
      writable: true
      push: true
      settings:
        base_url: `+hs.URL+`
        app_key: govhub-mail
`)
	first := s.run("--full")
	people := first.Created - 5 // the chart's five departments
	dry := s.runPeer("affairslink", "--full", "--dry-run")
	if dry.CreatedInPeer != people || sim.UserCount() != 0 {
		t.Fatalf("dry run: %d to create of %d, simulator has %d", dry.CreatedInPeer, people, sim.UserCount())
	}
	rep := s.runPeer("affairslink", "--full")
	if rep.CreatedInPeer != people || len(rep.Errors) != 0 || sim.UserCount() != people {
		t.Fatalf("push: %+v, simulator has %d", rep, sim.UserCount())
	}
	zs := s.person("zhangsan@gov.example")
	var found bool
	for i := 1; i <= people; i++ {
		u, ok := sim.User(fmt.Sprintf("u%05d", i))
		if ok && u.Email == "zhangsan@gov.example" {
			found = true
			if u.Name != zs.DisplayName || u.Mobile != "" || u.JobNumber != "E001" {
				t.Fatalf("created in the affairs link: %+v", u)
			}
		}
	}
	if !found {
		t.Fatal("张三 not created in the affairs link")
	}
	for _, args := range [][]string{{"--full"}, nil} {
		if again := s.runPeer("affairslink", args...); again.Changed() != 0 || again.CreatedInPeer != 0 {
			t.Fatalf("run %v after the push: %+v", args, again.Changes)
		}
	}
}

// TestSyncGroupMailLDAP: a group synced from slapd is a distribution
// address of the running server: a message a signed-in sender submits to
// the group's own mail address (Python's smtplib, STARTTLS, AUTH) reaches
// every member, nested groups flattened through the cycle, and its body is
// stored once.
func TestSyncGroupMailLDAP(t *testing.T) {
	py := python(t)
	s := newLDAPSyncConfig(t, ldaptest.ChartLDIF(0)+ldaptest.GroupsLDIF(), false, "", "  department_domain: gov.example\n", "")
	s.run("--full")
	if _, errs, code := run(t, "pw-of-sender\n", append(s.base, "user", "add", "sender@gov.example", "--password-stdin")...); code != 0 {
		t.Fatal(errs)
	}
	_, addrs, stderr := startServe(t, s.data, "--config", s.base[1], "--modules", "smtp,http")
	script := `
import smtplib, ssl, sys
h, p = sys.argv[1].rsplit(":", 1)
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
with smtplib.SMTP(h, int(p)) as s:
    s.starttls(context=ctx)
    s.login("sender@gov.example", "pw-of-sender")
    s.sendmail("sender@gov.example", ["bgt-all@gov.example"], b"From: sender@gov.example\r\nTo: bgt-all@gov.example\r\nSubject: group\r\n\r\nto everyone\r\n")
print("ok")
`
	if out, err := exec.Command(py, "-c", script, hostPort(addrs["submission"])).CombinedOutput(); err != nil {
		t.Fatalf("submit: %v\n%s\n%s", err, out, stderr.String())
	}
	db, err := sqldb.Open(context.Background(), filepath.Join(s.data, "govhub.db"), sqldb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var got []struct {
		Address string `db:"address"`
		Blob    int64  `db:"blob_id"`
	}
	if err := db.X.Select(&got, `SELECT a.address, m.blob_id FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id
		JOIN accounts a ON a.id = b.account_id WHERE b.name = 'INBOX' ORDER BY a.address`); err != nil {
		t.Fatal(err)
	}
	want := []string{"lisi@gov.example", "ouyangnana@gov.example", "zhangsan@gov.example", "zhugeliang@gov.example"}
	var who []string
	blobs := map[int64]bool{}
	for _, r := range got {
		who = append(who, r.Address)
		blobs[r.Blob] = true
	}
	if !reflect.DeepEqual(who, want) || len(blobs) != 1 {
		t.Fatalf("delivered to %v in %d bodies, want %v in one", who, len(blobs), want)
	}
}
