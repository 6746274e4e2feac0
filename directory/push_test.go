package directory

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/govhub/govhub/internal/sqldb"
)

func TestPushToWritablePeer(t *testing.T) {
	each(t, func(t *testing.T, db *sqldb.DB) {
		e, _ := newTestEngine(db, Config{Writable: map[string]bool{"ldap": true}, Push: map[string]bool{"ldap": true}})
		ldap := fakeWriter{newFake("ldap")}
		chart(ldap.fakePeer)
		al := newFake("affairslink")
		al.setPerson(Person{Anchor: "al-1", DisplayName: "张三", Mail: "zhangsan@gov.example", EmployeeNo: "E001", Mobile: "13900000001"})
		al.setPerson(Person{Anchor: "al-9", DisplayName: "陈九", Title: "专员", Mail: "chenjiu@gov.example", EmployeeNo: "E009", Mobile: "13900000009"})
		mustRun(t, e, ldap, RunOptions{})
		mustRun(t, e, al, RunOptions{})

		// A delta never pushes: it cannot tell absent from unchanged.
		if rep := mustRun(t, e, ldap, RunOptions{}); rep.CreatedInPeer != 0 {
			t.Fatalf("delta pushed: %+v", rep.Changes)
		}
		strip := func(r *Report) Report {
			c := *r
			c.RunID, c.DryRun, c.Started, c.Finished = 0, false, time.Time{}, time.Time{}
			return c
		}
		dry := mustRun(t, e, ldap, RunOptions{Full: true, DryRun: true})
		if dry.CreatedInPeer != 1 || len(ldap.created) != 0 {
			t.Fatalf("dry run: %+v, created %v", dry, ldap.created)
		}
		c := dry.Changes[0]
		// The title is LDAP's own: left for it to fill. The employee
		// number is LDAP's too but is the match key: written so that a
		// create whose anchor is lost is linked, not repeated.
		want := map[string]string{"display_name": "陈九", "mail": "chenjiu@gov.example", "mobile": "13900000009", "employee_no": "E009"}
		if c.Action != "create" || c.Target != "ldap" || c.ObjectID == 0 || !reflect.DeepEqual(c.Fields, want) {
			t.Fatalf("planned push: %+v", c)
		}
		ldap.failCreate = errors.New("insufficient access")
		rep := mustRun(t, e, ldap, RunOptions{Full: true})
		if !reflect.DeepEqual(strip(dry), func() Report { r := strip(rep); r.Errors = []ObjectError{}; return r }()) {
			t.Fatalf("dry run differs from the real run:\n%+v\n%+v", strip(dry), strip(rep))
		}
		if len(rep.Errors) != 1 || !strings.Contains(rep.Errors[0].Error, "insufficient access") {
			t.Fatalf("failed create: %+v", rep.Errors)
		}
		ldap.failCreate = nil
		rep = mustRun(t, e, ldap, RunOptions{Full: true})
		if rep.CreatedInPeer != 1 || len(rep.Errors) != 0 || len(ldap.created) != 1 {
			t.Fatalf("push: %+v", rep)
		}
		got := ldap.person("new1")
		if got == nil || got.DisplayName != "陈九" || got.Title != "" || got.EmployeeNo != "E009" || got.Mobile != "13900000009" {
			t.Fatalf("created: %+v", got)
		}
		// The anchor was recorded: no second create, and the entry the
		// peer now reports changes nothing.
		for _, o := range []RunOptions{{Full: true}, {}, {Full: true}} {
			if rep := mustRun(t, e, ldap, o); rep.Changed() != 0 || len(rep.Errors) != 0 {
				t.Fatalf("after push %+v: %+v", o, rep)
			}
		}
		if p, err := e.Store().PersonBy(t.Context(), "anchor", "new1", []string{"ldap"}); err != nil || p.Mail != "chenjiu@gov.example" {
			t.Fatalf("anchor: %+v %v", p, err)
		}
		// A read-only configuration never creates.
		e2, _ := newTestEngine(db, Config{})
		al.setPerson(Person{Anchor: "al-10", DisplayName: "林十", Mail: "linshi@gov.example", EmployeeNo: "E010"})
		mustRun(t, e2, al, RunOptions{})
		if rep := mustRun(t, e2, ldap, RunOptions{Full: true}); rep.CreatedInPeer != 0 || len(ldap.created) != 1 {
			t.Fatalf("read-only peer written: %+v", rep.Changes)
		}
	})
}

// TestPushSkipsBrokenPeerEntry: a person whose match key a broken entry of
// the peer carries is not created there (it would be a duplicate); the
// run says why.
func TestPushSkipsBrokenPeerEntry(t *testing.T) {
	each(t, func(t *testing.T, db *sqldb.DB) {
		e, _ := newTestEngine(db, Config{Writable: map[string]bool{"ldap": true}, Push: map[string]bool{"ldap": true}})
		ldap := fakeWriter{newFake("ldap")}
		chart(ldap.fakePeer)
		ldap.extra = []Entry{{Kind: KindPerson, Anchor: "u-bad", Source: "person/u-bad", Err: errors.New("cn contains control characters"),
			Person: &Person{Anchor: "u-bad", DisplayName: "钱\x07十一", EmployeeNo: "E011"}}}
		al := newFake("affairslink")
		al.setPerson(Person{Anchor: "al-11", DisplayName: "钱十一", Mail: "qian@gov.example", EmployeeNo: "E011"})
		mustRun(t, e, ldap, RunOptions{})
		mustRun(t, e, al, RunOptions{})
		rep := mustRun(t, e, ldap, RunOptions{Full: true})
		if rep.CreatedInPeer != 0 || len(ldap.created) != 0 || len(rep.Errors) != 2 || !strings.Contains(rep.Errors[1].Error, "same employee_no") {
			t.Fatalf("pushed over a broken entry: %+v", rep)
		}
	})
}

// TestPushIsOptIn: a writable peer without Push gets write-backs but no
// new people.
func TestPushIsOptIn(t *testing.T) {
	each(t, func(t *testing.T, db *sqldb.DB) {
		e, _ := newTestEngine(db, Config{Writable: map[string]bool{"ldap": true}})
		ldap := fakeWriter{newFake("ldap")}
		chart(ldap.fakePeer)
		al := newFake("affairslink")
		al.setPerson(Person{Anchor: "al-9", DisplayName: "陈九", Mail: "chenjiu@gov.example", EmployeeNo: "E009"})
		mustRun(t, e, ldap, RunOptions{})
		mustRun(t, e, al, RunOptions{})
		if rep := mustRun(t, e, ldap, RunOptions{Full: true}); rep.CreatedInPeer != 0 || len(ldap.created) != 0 {
			t.Fatalf("pushed without Push: %+v %v", rep.CreatedInPeer, ldap.created)
		}
	})
}
