package directory

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govhub/govhub/internal/sqldb"
	"github.com/govhub/govhub/internal/testdb"
)

var t0 = time.Unix(1_800_000_000, 0).UTC()

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// each runs fn on a fresh migrated database of every backend.
func each(t *testing.T, fn func(t *testing.T, db *sqldb.DB)) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			db, err := sqldb.Open(ctx, b.URL(t), sqldb.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			if _, err := db.Migrate(ctx, nil); err != nil {
				t.Fatal(err)
			}
			fn(t, db)
		})
	}
}

func newTestEngine(db *sqldb.DB, cfg Config) (*Engine, *clock) {
	c := &clock{t: t0}
	cfg.Now = c.Now
	return NewEngine(NewStore(db, c.Now), cfg), c
}

// chart fills an LDAP-like fake with a small organisation, the child
// department listed before its parent.
func chart(f *fakePeer) {
	f.setDept(Department{Anchor: "d-office", ParentAnchor: "d-root", Name: "办公室", Order: 1})
	f.setDept(Department{Anchor: "d-root", Name: "市政府", Order: 0})
	f.setDept(Department{Anchor: "d-finance", ParentAnchor: "d-root", Name: "财政局", Order: 2})
	f.setPerson(Person{Anchor: "u1", DisplayName: "张三", Title: "主任", Mail: "zhangsan@gov.example", EmployeeNo: "E001", Mobile: "13800000001",
		Memberships: []Membership{{DeptAnchor: "d-office", Order: 1}}})
	f.setPerson(Person{Anchor: "u2", DisplayName: "李四", Title: "科员", Mail: "lisi@gov.example", EmployeeNo: "E002", Rank: "senior",
		Memberships: []Membership{{DeptAnchor: "d-finance", Order: 1}}})
	f.setPerson(Person{Anchor: "u3", DisplayName: "王五", Mail: "wangwu@gov.example", EmployeeNo: "E003",
		Memberships: []Membership{{DeptAnchor: "d-root", Order: 1}}})
}

func mustRun(t *testing.T, e *Engine, p Peer, o RunOptions) *Report {
	t.Helper()
	rep, err := e.Run(context.Background(), p, o)
	if err != nil {
		t.Fatalf("run %+v: %v", o, err)
	}
	return rep
}

func personByMail(t *testing.T, s *Store, mail string) *PersonRecord {
	t.Helper()
	var id int64
	if err := s.db.X.Get(&id, s.db.Rebind(`SELECT id FROM dir_people WHERE mail = ?`), mail); err != nil {
		t.Fatalf("no person %s: %v", mail, err)
	}
	p, err := s.Person(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFullImportIdempotent(t *testing.T) {
	each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		e, _ := newTestEngine(db, Config{})
		f := newFake("ldap")
		chart(f)
		rep := mustRun(t, e, f, RunOptions{})
		if rep.Kind != "full" || rep.Created != 6 || len(rep.Errors) != 0 {
			t.Fatalf("first run: %+v", rep)
		}
		p := personByMail(t, e.Store(), "zhangsan@gov.example")
		if p.DisplayName != "张三" || p.PinyinFull != "zhangsan" || p.PinyinInitials != "zs" || p.Title != "主任" || len(p.Memberships) != 1 {
			t.Fatalf("person: %+v", p)
		}
		ds, _ := e.Store().Departments(ctx)
		byName := map[string]Dept{}
		for _, d := range ds {
			byName[d.Name] = d
		}
		if byName["办公室"].ParentID != byName["市政府"].ID || byName["市政府"].ParentID != 0 {
			t.Fatalf("tree: %+v", ds)
		}
		for _, o := range []RunOptions{{Full: true}, {}} {
			rep = mustRun(t, e, f, o)
			if rep.Changed() != 0 || len(rep.Conflicts) != 0 {
				t.Fatalf("second run %+v changed: %+v", o, rep.Changes)
			}
		}
		// A delta carries what changed.
		f.setPerson(Person{Anchor: "u2", DisplayName: "李四", Title: "副科长", Mail: "lisi@gov.example", EmployeeNo: "E002", Rank: "senior",
			Memberships: []Membership{{DeptAnchor: "d-finance", Order: 1}}})
		rep = mustRun(t, e, f, RunOptions{})
		if rep.Kind != "delta" || rep.Updated != 1 || rep.Changes[0].Fields["title"] != "副科长" {
			t.Fatalf("delta: %+v", rep)
		}
		if rep := mustRun(t, e, f, RunOptions{}); rep.Changed() != 0 {
			t.Fatalf("delta again: %+v", rep.Changes)
		}
	})
}

func TestDryRunEqualsRealRun(t *testing.T) {
	each(t, func(t *testing.T, db *sqldb.DB) {
		e, _ := newTestEngine(db, Config{Writable: map[string]bool{"ldap": true}})
		f := fakeWriter{newFake("ldap")}
		chart(f.fakePeer)
		strip := func(r *Report) Report {
			c := *r
			c.RunID, c.DryRun, c.Started, c.Finished = 0, false, time.Time{}, time.Time{}
			return c
		}
		check := func(o RunOptions) {
			t.Helper()
			o.DryRun = true
			dry := mustRun(t, e, f, o)
			dry2 := mustRun(t, e, f, o)
			o.DryRun = false
			real := mustRun(t, e, f, o)
			if !reflect.DeepEqual(strip(dry), strip(dry2)) {
				t.Fatalf("a dry run changed something:\n%+v\n%+v", dry, dry2)
			}
			if !reflect.DeepEqual(strip(dry), strip(real)) {
				t.Fatalf("dry run differs from the real run:\ndry  %+v\nreal %+v", strip(dry), strip(real))
			}
			if real.Changed() == 0 {
				t.Fatal("test set-up made no change")
			}
		}
		check(RunOptions{Full: true})
		// Updates, a new department and person, a removal and a write-back.
		f.setDept(Department{Anchor: "d-it", ParentAnchor: "d-office", Name: "信息科", Order: 3})
		f.setPerson(Person{Anchor: "u4", DisplayName: "赵六", Mail: "zhaoliu@gov.example", EmployeeNo: "E004", Memberships: []Membership{{DeptAnchor: "d-it"}}})
		f.setPerson(Person{Anchor: "u1", DisplayName: "张三丰", Title: "主任", Mail: "zhangsan@gov.example", EmployeeNo: "E001"})
		f.deletePerson("u3")
		p := personByMail(t, e.Store(), "lisi@gov.example")
		if err := e.Store().EditPerson(context.Background(), p.ID, func(p *PersonRecord) error { p.Mail = "li.si@gov.example"; return nil }); err != nil {
			t.Fatal(err)
		}
		if len(f.updates) != 0 {
			t.Fatal("a dry run wrote back")
		}
		check(RunOptions{Full: true, ConfirmDeletions: true})
		var wb bool
		for _, u := range f.updates {
			wb = wb || u["mail"] == "li.si@gov.example"
		}
		if !wb || f.person("u2").Mail != "li.si@gov.example" {
			t.Fatalf("write-back not done: %v", f.updates)
		}
		if rep := mustRun(t, e, f, RunOptions{Full: true}); rep.Changed() != 0 {
			t.Fatalf("after write-back: %+v", rep.Changes)
		}
	})
}

func TestBrokenEntries(t *testing.T) {
	each(t, func(t *testing.T, db *sqldb.DB) {
		e, _ := newTestEngine(db, Config{RequireMail: true})
		f := newFake("ldap")
		chart(f)
		f.setDept(Department{Anchor: "d-orphan", ParentAnchor: "d-missing", Name: "孤儿处"})
		f.setPerson(Person{Anchor: "b-nomail", DisplayName: "无邮件"})
		f.setPerson(Person{Anchor: "b-dup", DisplayName: "重复", Mail: "ZhangSan@gov.example", EmployeeNo: "E100"})
		f.setPerson(Person{Anchor: "b-ctl", DisplayName: "坏\x00字符", Mail: "bad@gov.example"})
		f.setPerson(Person{Anchor: "b-utf", DisplayName: "bad\xff", Mail: "bad2@gov.example"})
		f.setPerson(Person{Anchor: "b-dept", DisplayName: "无部门", Mail: "nodept@gov.example", Memberships: []Membership{{DeptAnchor: "d-missing"}}})
		f.setPerson(Person{Anchor: "b-addr", DisplayName: "坏地址", Mail: "not an address"})
		f.setPerson(Person{Anchor: "b-dup2", DisplayName: "重复二", Mail: "same@gov.example"})
		f.setPerson(Person{Anchor: "b-dup3", DisplayName: "重复三", Mail: "Same@gov.example"})
		f.extra = []Entry{{Kind: KindPerson, Anchor: "b-err", Source: "cn=broken", Err: errors.New("unparsable attribute")},
			{Kind: KindPerson, Person: &Person{DisplayName: "无锚"}, Source: "cn=noanchor"}}
		rep := mustRun(t, e, f, RunOptions{})
		want := map[string]string{
			"d-orphan": "parent department", "b-nomail": "no mail", "b-dup": "already belongs", "b-ctl": "bad characters",
			"b-utf": "bad characters", "b-dept": "not found", "b-addr": "malformed", "b-err": "unparsable",
			"b-dup3": "another entry of this run", "": "no anchor",
		}
		got := map[string]string{}
		for _, oe := range rep.Errors {
			got[oe.Anchor] = oe.Error
		}
		for a, w := range want {
			if !strings.Contains(got[a], w) {
				t.Errorf("%s: error %q, want %q", a, got[a], w)
			}
		}
		if len(rep.Errors) != len(want) || rep.Created != 7 {
			t.Fatalf("report: created %d errors %+v", rep.Created, rep.Errors)
		}
		var n int
		db.X.Get(&n, db.Rebind(`SELECT COUNT(*) FROM dir_run_objects WHERE run_id = ? AND result = 'error'`), rep.RunID)
		if n != len(want) {
			t.Fatalf("%d error rows recorded", n)
		}
		// The broken ones are not deletions on the next full run either.
		if rep := mustRun(t, e, f, RunOptions{Full: true}); rep.Changed() != 0 {
			t.Fatalf("rerun: %+v", rep.Changes)
		}
	})
}

func TestDeletionThreshold(t *testing.T) {
	each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		e, _ := newTestEngine(db, Config{})
		f := newFake("ldap")
		f.setDept(Department{Anchor: "d", Name: "部"})
		for i := 0; i < 59; i++ {
			f.setPerson(Person{Anchor: fmt.Sprint("u", i), DisplayName: fmt.Sprint("人", i), Mail: fmt.Sprintf("u%d@gov.example", i)})
		}
		mustRun(t, e, f, RunOptions{})
		// 60 objects: 5% is 3. Removing 4 trips it.
		for i := 0; i < 4; i++ {
			f.deletePerson(fmt.Sprint("u", i))
		}
		f.setPerson(Person{Anchor: "new", DisplayName: "新人", Mail: "new@gov.example"})
		_, err := e.Run(ctx, f, RunOptions{Full: true})
		if !errors.Is(err, ErrDeletionThreshold) || !strings.Contains(err.Error(), "remove 4 objects") {
			t.Fatalf("err = %v", err)
		}
		var left, total int
		db.X.Get(&left, `SELECT COUNT(*) FROM dir_people WHERE status = 'left'`)
		db.X.Get(&total, `SELECT COUNT(*) FROM dir_people`)
		if left != 0 || total != 59 {
			t.Fatalf("a refused run changed the chart: left %d total %d", left, total)
		}
		var status string
		db.X.Get(&status, `SELECT status FROM dir_runs ORDER BY id DESC LIMIT 1`)
		if status != "failed" {
			t.Fatalf("run status %q", status)
		}
		rep := mustRun(t, e, f, RunOptions{Full: true, ConfirmDeletions: true})
		if rep.Removed != 4 || rep.Created != 1 {
			t.Fatalf("confirmed: %+v", rep)
		}
		p := personByMail(t, e.Store(), "u0@gov.example")
		if p.Status != StatusLeft || !p.LeftAt.Equal(t0) {
			t.Fatalf("removed person: %+v", p)
		}
		if rep := mustRun(t, e, f, RunOptions{Full: true}); rep.Changed() != 0 {
			t.Fatalf("after removal: %+v", rep.Changes)
		}
		// Dropping people who had already left removes nothing: no trip.
		for i := 10; i < 15; i++ {
			f.setPerson(Person{Anchor: fmt.Sprint("u", i), DisplayName: fmt.Sprint("人", i), Mail: fmt.Sprintf("u%d@gov.example", i), Status: StatusLeft})
		}
		mustRun(t, e, f, RunOptions{})
		for i := 10; i < 15; i++ {
			f.deletePerson(fmt.Sprint("u", i))
		}
		if rep := mustRun(t, e, f, RunOptions{Full: true}); rep.Removed != 5 {
			t.Fatalf("leavers dropped: %+v", rep.Changes)
		}
	})
}

// Two peers: LDAP owns titles, the affairs link owns mobiles.
func TestOwnershipAndConflicts(t *testing.T) {
	each(t, func(t *testing.T, db *sqldb.DB) {
		e, _ := newTestEngine(db, Config{})
		ldap := newFake("ldap")
		chart(ldap)
		mustRun(t, e, ldap, RunOptions{})
		al := newFake("affairslink")
		// First contact by employee number; the affairs link's title is
		// ignored (LDAP owns it), its mobile wins (it owns mobiles).
		al.setPerson(Person{Anchor: "al-1", DisplayName: "张三", EmployeeNo: "E001", Title: "处长", Mobile: "13900000009", OfficePhone: "010-1234"})
		rep := mustRun(t, e, al, RunOptions{})
		if rep.Updated != 1 || rep.Changes[0].Action != "link" {
			t.Fatalf("link: %+v", rep.Changes)
		}
		p := personByMail(t, e.Store(), "zhangsan@gov.example")
		if p.Title != "主任" || p.Mobile != "13900000009" || p.OfficePhone != "010-1234" {
			t.Fatalf("ownership not applied: %+v", p)
		}
		// LDAP changes the mobile too: both sides changed it since LDAP's
		// last run; the affairs link owns it, so ours stays, and the
		// conflict is recorded.
		ldap.setPerson(Person{Anchor: "u1", DisplayName: "张三", Title: "局长", Mail: "zhangsan@gov.example", EmployeeNo: "E001", Mobile: "13700000007",
			Memberships: []Membership{{DeptAnchor: "d-office", Order: 1}}})
		rep = mustRun(t, e, ldap, RunOptions{})
		if len(rep.Conflicts) != 1 || rep.Conflicts[0].Field != "mobile" || rep.Conflicts[0].Winner != "affairslink" {
			t.Fatalf("conflicts: %+v", rep.Conflicts)
		}
		p = personByMail(t, e.Store(), "zhangsan@gov.example")
		if p.Mobile != "13900000009" || p.Title != "局长" {
			t.Fatalf("after conflict: %+v", p)
		}
		var c struct {
			Field, Ours, Theirs, Winner string
		}
		if err := db.X.Get(&c, `SELECT field, ours, theirs, winner FROM dir_conflicts`); err != nil || c.Theirs != "13700000007" || c.Winner != "affairslink" {
			t.Fatalf("recorded conflict %+v %v", c, err)
		}
		hist, err := e.Store().Runs(context.Background(), "ldap", 10)
		if err != nil || len(hist) != 2 || hist[0].Conflicts != 1 || hist[0].Status != "ok" || hist[0].Updated != 1 {
			t.Fatalf("history: %+v %v", hist, err)
		}
		d, err := e.Store().Run(context.Background(), hist[0].ID)
		if err != nil || len(d.Conflicts) != 1 || d.Conflicts[0].Field != "mobile" || len(d.Objects) != 1 || d.Objects[0].Fields["title"] != "局长" {
			t.Fatalf("show: %+v %v", d, err)
		}
		if _, err := e.Store().Run(context.Background(), 99999); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown run: %v", err)
		}
		// Recorded once: the next run sees nothing new.
		if rep := mustRun(t, e, ldap, RunOptions{Full: true}); rep.Changed() != 0 || len(rep.Conflicts) != 0 {
			t.Fatalf("rerun: %+v %+v", rep.Changes, rep.Conflicts)
		}
		// The affairs link removing a person it does not own status for
		// only unlinks them.
		al.deletePerson("al-1")
		rep = mustRun(t, e, al, RunOptions{})
		if len(rep.Changes) != 1 || rep.Changes[0].Action != "unlink" {
			t.Fatalf("unlink: %+v", rep.Changes)
		}
		if p := personByMail(t, e.Store(), "zhangsan@gov.example"); p.Status != StatusActive {
			t.Fatalf("non-owner removal changed status: %+v", p)
		}
	})
}

func TestLeaseAndResume(t *testing.T) {
	each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		e, _ := newTestEngine(db, Config{})
		f := newFake("ldap")
		chart(f)
		f.block, f.started = make(chan struct{}), make(chan struct{})
		started := f.started
		done := make(chan error)
		go func() { _, err := e.Run(ctx, f, RunOptions{}); done <- err }()
		<-started
		// Another engine (another node) on the same database.
		e2, _ := newTestEngine(db, Config{Holder: "node-b"})
		if _, err := e2.Run(ctx, f, RunOptions{}); !errors.Is(err, ErrBusy) {
			t.Fatalf("second run: %v", err)
		}
		if _, err := e.Run(ctx, f, RunOptions{}); !errors.Is(err, ErrBusy) {
			t.Fatalf("second run on the same node: %v", err)
		}
		close(f.block)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		f.block = nil
		// A delta that fails midway stores no cursor and changes nothing;
		// the next run resumes from the old cursor.
		f.setPerson(Person{Anchor: "u5", DisplayName: "孙七", Mail: "sunqi@gov.example"})
		f.setPerson(Person{Anchor: "u6", DisplayName: "周八", Mail: "zhouba@gov.example"})
		f.failRead, f.failAfter = errors.New("connection reset"), 1
		if _, err := e.Run(ctx, f, RunOptions{}); err == nil || !strings.Contains(err.Error(), "connection reset") {
			t.Fatalf("failing run: %v", err)
		}
		var n int
		db.X.Get(&n, `SELECT COUNT(*) FROM dir_people`)
		if n != 3 {
			t.Fatalf("failed run left %d people", n)
		}
		f.failRead = nil
		rep := mustRun(t, e, f, RunOptions{})
		if rep.Kind != "delta" || rep.Created != 2 {
			t.Fatalf("resume: %+v", rep)
		}
		// A lost cursor falls back to a full reconcile.
		f.expired = true
		rep = mustRun(t, e, f, RunOptions{})
		if rep.Kind != "full" || rep.Changed() != 0 {
			t.Fatalf("expired cursor: %+v", rep)
		}
	})
}

func TestProvisioning(t *testing.T) {
	each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		prov := &fakeProvisioner{}
		e, clk := newTestEngine(db, Config{Provisioner: prov, QuotaByRank: map[string]int64{"senior": 5 << 30}})
		f := newFake("ldap")
		chart(f)
		f.setPerson(Person{Anchor: "u9", DisplayName: "无邮箱"})
		mustRun(t, e, f, RunOptions{})
		quota := map[string]int64{}
		for _, s := range prov.specs {
			quota[s.Address] = s.QuotaBytes
		}
		if len(prov.specs) != 3 || quota["lisi@gov.example"] != 5<<30 || quota["zhangsan@gov.example"] != 1<<30 {
			t.Fatalf("specs: %+v", prov.specs)
		}
		// A title change is no account change.
		prov.specs = nil
		f.setPerson(Person{Anchor: "u3", DisplayName: "王五", Title: "司机", Mail: "wangwu@gov.example", EmployeeNo: "E003", Memberships: []Membership{{DeptAnchor: "d-root", Order: 1}}})
		mustRun(t, e, f, RunOptions{})
		if len(prov.specs) != 0 {
			t.Fatalf("provisioned on a title change: %+v", prov.specs)
		}
		clk.Add(time.Hour)
		f.setPerson(Person{Anchor: "u3", DisplayName: "王五", Title: "司机", Mail: "wangwu@gov.example", EmployeeNo: "E003", Status: StatusLeft, Memberships: []Membership{{DeptAnchor: "d-root", Order: 1}}})
		mustRun(t, e, f, RunOptions{})
		if len(prov.specs) != 1 || prov.specs[0].Status != StatusLeft || !prov.specs[0].LeftAt.Equal(t0.Add(time.Hour)) {
			t.Fatalf("left: %+v", prov.specs)
		}
		if n, err := e.ProvisionAll(ctx); err != nil || n != 3 {
			t.Fatalf("provision all: %d %v", n, err)
		}
		// Distribution lists follow the chart; people who left are out.
		ds, _ := e.Store().Departments(ctx)
		var root int64
		for _, d := range ds {
			if d.Name == "市政府" {
				root = d.ID
			}
		}
		only, _ := e.Store().DepartmentMembers(ctx, root, false)
		all, err := e.Store().DepartmentMembers(ctx, root, true)
		if err != nil || len(only) != 0 || !reflect.DeepEqual(all, []string{"lisi@gov.example", "zhangsan@gov.example"}) {
			t.Fatalf("members: %v / %v %v", only, all, err)
		}
	})
}

func TestPinyin(t *testing.T) {
	for _, c := range []struct{ in, full, ini string }{
		{"张三", "zhangsan", "zs"}, {"欧阳娜娜", "ouyangnana", "oynn"}, {"Li Lei", "lilei", "ll"}, {"王5", "wang5", "w5"},
	} {
		if f, i := Pinyin(c.in); f != c.full || i != c.ini {
			t.Errorf("Pinyin(%q) = %q %q, want %q %q", c.in, f, i, c.full, c.ini)
		}
	}
}

func TestWriteBackFailureAndTarget(t *testing.T) {
	each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		e, _ := newTestEngine(db, Config{Writable: map[string]bool{"ldap": true}})
		f := fakeWriter{newFake("ldap")}
		chart(f.fakePeer)
		mustRun(t, e, f, RunOptions{})
		p := personByMail(t, e.Store(), "wangwu@gov.example")
		e.Store().EditPerson(ctx, p.ID, func(p *PersonRecord) error { p.Mail = "wang.wu@gov.example"; return nil })
		dry := mustRun(t, e, f, RunOptions{DryRun: true})
		if len(dry.Changes) != 1 || dry.Changes[0].Action != "write-back" || dry.Changes[0].Target != "ldap" || dry.Changes[0].Fields["mail"] != "wang.wu@gov.example" {
			t.Fatalf("dry run: %+v", dry.Changes)
		}
		f.failUpdate = errors.New("insufficient access")
		rep := mustRun(t, e, f, RunOptions{})
		if len(rep.Errors) != 1 || !strings.Contains(rep.Errors[0].Error, "insufficient access") {
			t.Fatalf("failed write-back: %+v", rep.Errors)
		}
		// Not written: the next run tries again.
		f.failUpdate = nil
		rep = mustRun(t, e, f, RunOptions{})
		if rep.WrittenBack != 1 || f.person("u3").Mail != "wang.wu@gov.example" {
			t.Fatalf("retry: %+v", rep)
		}
		// A read-only peer is never written to, even if it could be.
		e2, _ := newTestEngine(db, Config{})
		e2.Store().EditPerson(ctx, p.ID, func(p *PersonRecord) error { p.Mail = "w.w@gov.example"; return nil })
		if rep := mustRun(t, e2, f, RunOptions{Full: true}); rep.WrittenBack != 0 || f.person("u3").Mail != "wang.wu@gov.example" {
			t.Fatalf("read-only peer written: %+v", rep.Changes)
		}
	})
}

func TestDepartments(t *testing.T) {
	each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		e, _ := newTestEngine(db, Config{MatchKey: "mail"})
		f := newFake("ldap")
		chart(f)
		f.setDept(Department{Anchor: "d-sub", ParentAnchor: "d-office", Name: "秘书科"})
		mustRun(t, e, f, RunOptions{})
		// Renamed, moved, and a cycle refused.
		f.setDept(Department{Anchor: "d-finance", ParentAnchor: "d-office", Name: "财政处", Order: 2})
		f.setDept(Department{Anchor: "d-office", ParentAnchor: "d-sub", Name: "办公室", Order: 1})
		rep := mustRun(t, e, f, RunOptions{})
		if rep.Updated != 1 || len(rep.Errors) != 1 || !strings.Contains(rep.Errors[0].Error, "ancestor") {
			t.Fatalf("report: %+v", rep)
		}
		tree, _ := e.Store().Tree(ctx)
		if len(tree) != 1 || len(tree[0].Children) != 1 || tree[0].Children[0].Name != "办公室" || len(tree[0].Children[0].Children) != 2 {
			t.Fatalf("tree: %+v", tree[0].Children)
		}
		// A department the peer no longer has leaves the tree; its
		// people stay.
		f.mu.Lock()
		f.depts = f.depts[:len(f.depts)-1] // d-sub
		f.mu.Unlock()
		rep = mustRun(t, e, f, RunOptions{Full: true, ConfirmDeletions: true})
		if rep.Removed != 1 {
			t.Fatalf("removal: %+v", rep.Changes)
		}
		tree, _ = e.Store().Tree(ctx)
		if len(tree[0].Children[0].Children) != 1 {
			t.Fatalf("removed department still shown: %+v", tree[0].Children[0])
		}
		// Matching by mail on first contact, case-insensitively.
		al := newFake("affairslink")
		al.setPerson(Person{Anchor: "x1", DisplayName: "张三", Mail: "ZHANGSAN@gov.example", Mobile: "13600000000"})
		rep = mustRun(t, e, al, RunOptions{})
		if len(rep.Changes) != 1 || rep.Changes[0].Action != "link" {
			t.Fatalf("mail match: %+v", rep.Changes)
		}
	})
}

func TestIndexFollowsOtherNodes(t *testing.T) {
	each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		e, _ := newTestEngine(db, Config{})
		f := newFake("ldap")
		chart(f)
		mustRun(t, e, f, RunOptions{})
		other := NewStore(db, nil) // another node's store, its own index
		if got, _ := other.Search(ctx, "zs", 10); names(got) != "张三" {
			t.Fatalf("before: %q", names(got))
		}
		f.setPerson(Person{Anchor: "u1", DisplayName: "张三", Title: "主任", Mail: "zhangsan@gov.example", EmployeeNo: "E001", Status: StatusLeft,
			Memberships: []Membership{{DeptAnchor: "d-office", Order: 1}}})
		f.setPerson(Person{Anchor: "u5", DisplayName: "钟声", Mail: "zhongsheng@gov.example"})
		mustRun(t, e, f, RunOptions{})
		if got, _ := other.Search(ctx, "zs", 10); names(got) != "钟声" {
			t.Fatalf("after: %q", names(got))
		}
	})
}

// BenchmarkFullSync measures a first full import, a full run with nothing
// changed and a delta of 1,000 changes through the fake peer (SQLite).
// GOVHUB_BENCH_PEOPLE sets the size (default 20,000; the target is
// 200,000 with 300 departments).
func BenchmarkFullSync(b *testing.B) {
	n := 20_000
	if v := os.Getenv("GOVHUB_BENCH_PEOPLE"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	ctx := context.Background()
	for b.Loop() {
		db, err := sqldb.Open(ctx, testdb.SQLiteURL(b), sqldb.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := db.Migrate(ctx, nil); err != nil {
			b.Fatal(err)
		}
		e := NewEngine(NewStore(db, nil), Config{})
		f := newFake("ldap")
		for i := 0; i < 300; i++ {
			d := Department{Anchor: fmt.Sprint("d", i), Name: fmt.Sprint("部门", i), Order: i}
			if i > 0 {
				d.ParentAnchor = fmt.Sprint("d", (i-1)/10)
			}
			f.setDept(d)
		}
		mk := func(i int, title string) Person {
			name := string(surnames[i%len(surnames)]) + string(given[(i/7)%len(given)]) + string(given[(i/13)%len(given)])
			return Person{Anchor: fmt.Sprint("u", i), DisplayName: name, Title: title, Mail: fmt.Sprintf("u%d@gov.example", i),
				EmployeeNo: fmt.Sprint("E", i), Memberships: []Membership{{DeptAnchor: fmt.Sprint("d", i%300)}}}
		}
		for i := 0; i < n; i++ {
			f.setPerson(mk(i, "科员"))
		}
		start := time.Now()
		rep, err := e.Run(ctx, f, RunOptions{})
		if err != nil || rep.Created != n+300 {
			b.Fatalf("%v %+v", err, rep.Created)
		}
		first := time.Since(start)
		start = time.Now()
		rep, err = e.Run(ctx, f, RunOptions{Full: true})
		if err != nil || rep.Changed() != 0 {
			b.Fatalf("%v %d", err, rep.Changed())
		}
		noop := time.Since(start)
		for i := 0; i < 1000; i++ {
			f.setPerson(mk(i*(n/1000), "主任"))
		}
		start = time.Now()
		rep, err = e.Run(ctx, f, RunOptions{})
		if err != nil || rep.Updated != 1000 {
			b.Fatalf("%v %d", err, rep.Updated)
		}
		delta := time.Since(start)
		b.ReportMetric(first.Seconds(), "first-s")
		b.ReportMetric(noop.Seconds(), "noop-s")
		b.ReportMetric(delta.Seconds(), "delta1k-s")
		db.Close()
	}
}

// A change committed between a run's planning and its apply (another
// peer's run, an edit) is not overwritten with the run's stale copy.
func TestConcurrentChangeNotLost(t *testing.T) {
	each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		e, _ := newTestEngine(db, Config{})
		f := newFake("ldap")
		chart(f)
		mustRun(t, e, f, RunOptions{})
		p := personByMail(t, e.Store(), "zhangsan@gov.example")
		calls := 0
		e.beforeApply = func() {
			calls++
			if calls == 1 {
				if err := e.Store().EditPerson(ctx, p.ID, func(p *PersonRecord) error { p.Mobile = "13111111111"; return nil }); err != nil {
					t.Error(err)
				}
			}
		}
		f.setPerson(Person{Anchor: "u1", DisplayName: "张三", Title: "局长", Mail: "zhangsan@gov.example", EmployeeNo: "E001", Mobile: "13800000001",
			Memberships: []Membership{{DeptAnchor: "d-office", Order: 1}}})
		rep := mustRun(t, e, f, RunOptions{})
		got := personByMail(t, e.Store(), "zhangsan@gov.example")
		if calls != 2 || got.Mobile != "13111111111" || got.Title != "局长" || rep.Updated != 1 {
			t.Fatalf("calls %d, person %+v, report %+v", calls, got, rep.Changes)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	good := Config{MatchKey: "mail", Ownership: map[string]string{"mobile": "ldap", FieldDepartment: "affairslink"}}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []Config{
		{MatchKey: "name"},
		{Ownership: map[string]string{"mobil": "ldap"}},
		{Ownership: map[string]string{"mobile": ""}},
		{MaxDeletionFraction: 2},
		{QuotaByRank: map[string]int64{"a": 0}},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

// TestLeaseLostStopsRun: a run whose lease passed to another holder
// before it applied applies nothing and says so.
func TestLeaseLostStopsRun(t *testing.T) {
	each(t, func(t *testing.T, db *sqldb.DB) {
		e, _ := newTestEngine(db, Config{})
		f := newFake("ldap")
		chart(f)
		e.beforeApply = func() {
			// Another node took the lease (ours expired while we planned).
			if _, err := db.X.Exec(db.Rebind(`UPDATE leases SET holder = ?, expires_at = ? WHERE name = ?`), "other-node", t0.Add(time.Hour).Unix(), "sync:ldap"); err != nil {
				t.Fatal(err)
			}
		}
		_, err := e.Run(context.Background(), f, RunOptions{})
		if !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("run after losing the lease: %v", err)
		}
		if ds, _ := e.Store().Departments(context.Background()); len(ds) != 0 {
			t.Fatalf("a run without its lease applied %d departments", len(ds))
		}
	})
}
