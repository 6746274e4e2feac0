package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

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
	srv := ldaptest.Start(t, ldaptest.Options{LDIF: ldaptest.ChartLDIF(0)})
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "govhub.yaml")
	w := ""
	if writable {
		w = "      writable: true\n"
	}
	if err := os.WriteFile(cfgPath, []byte(`directory:
  peers:
    - name: ldap
      type: ldap
`+w+`      settings:
        url: `+srv.URL+`
        bind_dn: "`+ldaptest.RootDN+`"
        people: {base_dn: "`+ldaptest.Suffix+`"}
`+settings), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOVHUB_PEER_LDAP_SECRET", ldaptest.RootPW)
	data := filepath.Join(dir, "data")
	return &ldapSync{t: t, srv: srv, data: data, base: []string{"--config", cfgPath, "--data", data}}
}

// run is `govhub sync run ldap ARGS --json`, decoded.
func (s *ldapSync) run(args ...string) directory.Report {
	s.t.Helper()
	out, errs, code := run(s.t, "", append(append(append([]string{}, s.base...), "sync", "run", "ldap", "--json"), args...)...)
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
