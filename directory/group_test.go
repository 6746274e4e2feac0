package directory

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/govhub/govhub/internal/sqldb"
)

// groupChart adds groups to chart's fake: 办公室全体 (u1, u2 and, nested,
// 领导班子), 领导班子 (u3, an unknown anchor, a DN naming nothing and,
// nested, 办公室全体 again: a cycle).
func groupChart(f *fakePeer) {
	f.setGroup(Group{Anchor: "g-all", Name: "办公室全体", Mail: "office-all@gov.example", Description: "全体人员",
		Members: []string{"u1", "u2"}, Subgroups: []string{"g-lead"}})
	f.setGroup(Group{Anchor: "g-lead", Name: "领导班子", Members: []string{"u3", "ghost"}, Subgroups: []string{"g-all"},
		Unresolved: []string{"uid=nobody,dc=gov,dc=example"}})
}

func groupByName(t *testing.T, s *Store, name string) *GroupRecord {
	t.Helper()
	gs, err := s.SearchGroups(context.Background(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range gs {
		if gs[i].Name == name {
			g, err := s.Group(context.Background(), gs[i].ID)
			if err != nil {
				t.Fatal(err)
			}
			return g
		}
	}
	t.Fatalf("no group %s in %+v", name, gs)
	return nil
}

func TestGroupsSync(t *testing.T) {
	each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		e, _ := newTestEngine(db, Config{MaxDeletionFraction: 1})
		f := newFake("ldap")
		chart(f)
		groupChart(f)
		rep := mustRun(t, e, f, RunOptions{})
		if rep.Created != 3+3+2 {
			t.Fatalf("created %d, want 8: %+v", rep.Created, rep.Changes)
		}
		// The unknown anchor and the unresolvable DN are per-object errors
		// of 领导班子; the run and the group go on.
		var errs []string
		for _, oe := range rep.Errors {
			if oe.Kind != "group" || oe.Anchor != "g-lead" {
				t.Fatalf("unexpected error %+v", oe)
			}
			errs = append(errs, oe.Error)
		}
		if len(errs) != 2 || !strings.Contains(errs[0], `"ghost"`) || !strings.Contains(errs[1], "uid=nobody") {
			t.Fatalf("errors: %q", errs)
		}
		s := e.Store()
		all, lead := groupByName(t, s, "办公室全体"), groupByName(t, s, "领导班子")
		if all.Mail != "office-all@gov.example" || all.Description != "全体人员" || len(all.People) != 2 || !reflect.DeepEqual(all.Subgroups, []int64{lead.ID}) {
			t.Fatalf("办公室全体: %+v", all)
		}
		if len(lead.People) != 1 || !reflect.DeepEqual(lead.Subgroups, []int64{all.ID}) {
			t.Fatalf("领导班子: %+v", lead)
		}
		// Flattened through the cycle, each address once.
		want := []string{"lisi@gov.example", "wangwu@gov.example", "zhangsan@gov.example"}
		for _, id := range []int64{all.ID, lead.ID} {
			got, err := s.GroupMemberMails(ctx, id)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("members of %d: %v %v", id, got, err)
			}
		}
		if g, err := s.GroupByMail(ctx, "Office-All@gov.example"); err != nil || g.ID != all.ID {
			t.Fatalf("by mail: %+v %v", g, err)
		}
		if _, err := s.GroupByMail(ctx, "nobody@gov.example"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("by unknown mail: %v", err)
		}
		// Idempotent: the same errors, no change.
		if rep := mustRun(t, e, f, RunOptions{Full: true}); rep.Changed() != 0 || len(rep.Errors) != 2 {
			t.Fatalf("again: %+v", rep)
		}

		// The missing member appears: the group follows in a delta.
		f.setPerson(Person{Anchor: "ghost", DisplayName: "赵六", Mail: "zhaoliu@gov.example", EmployeeNo: "E004"})
		f.setGroup(Group{Anchor: "g-lead", Name: "领导小组", Members: []string{"u3", "ghost"}, Subgroups: []string{"g-all"}})
		rep = mustRun(t, e, f, RunOptions{})
		if len(rep.Errors) != 0 || rep.Created != 1 || rep.Updated != 1 {
			t.Fatalf("delta: %+v", rep)
		}
		lead = groupByName(t, s, "领导小组")
		if len(lead.People) != 2 {
			t.Fatalf("领导小组: %+v", lead)
		}
		if got, _ := s.GroupMemberMails(ctx, all.ID); len(got) != 4 {
			t.Fatalf("flattened after delta: %v", got)
		}

		// Deleting a group marks it left (LDAP owns group_status) and
		// counts toward the threshold; its address then has no members.
		f.deleteGroup("g-lead")
		e2, _ := newTestEngine(db, Config{MaxDeletions: 1, MaxDeletionFraction: 0.01})
		f.deletePerson("u1")
		if _, err := e2.Run(ctx, f, RunOptions{Full: true}); !errors.Is(err, ErrDeletionThreshold) {
			t.Fatalf("threshold: %v", err)
		}
		rep = mustRun(t, e2, f, RunOptions{Full: true, ConfirmDeletions: true})
		if rep.Removed != 2 {
			t.Fatalf("removed %d: %+v", rep.Removed, rep.Changes)
		}
		if g, _ := s.Group(ctx, lead.ID); g.Status != StatusLeft {
			t.Fatalf("deleted group: %+v", g)
		}
		if got, _ := s.GroupMemberMails(ctx, lead.ID); len(got) != 0 {
			t.Fatalf("a left group has members: %v", got)
		}
		if got, _ := s.GroupMemberMails(ctx, all.ID); !reflect.DeepEqual(got, []string{"lisi@gov.example"}) {
			t.Fatalf("without the left group and person: %v", got)
		}
	})
}

func TestGroupOwnershipAndDryRun(t *testing.T) {
	each(t, func(t *testing.T, db *sqldb.DB) {
		// govhub owns group names and mail: the peer only fills them.
		e, _ := newTestEngine(db, Config{Ownership: map[string]string{"group_name": Govhub, "group_mail": Govhub}})
		f := newFake("ldap")
		chart(f)
		groupChart(f)
		strip := func(r *Report) Report {
			c := *r
			c.RunID, c.DryRun, c.Started, c.Finished = 0, false, time.Time{}, time.Time{}
			return c
		}
		check := func(o RunOptions) *Report {
			t.Helper()
			o.DryRun = true
			dry := mustRun(t, e, f, o)
			o.DryRun = false
			real := mustRun(t, e, f, o)
			if !reflect.DeepEqual(strip(dry), strip(real)) {
				t.Fatalf("dry run differs:\ndry  %+v\nreal %+v", strip(dry), strip(real))
			}
			return real
		}
		check(RunOptions{Full: true})
		f.setGroup(Group{Anchor: "g-all", Name: "改名", Mail: "other@gov.example", Description: "新说明", Members: []string{"u1"}})
		rep := check(RunOptions{})
		if len(rep.Changes) != 1 || rep.Changes[0].Fields["group_description"] != "新说明" || rep.Changes[0].Fields["group_name"] != "" {
			t.Fatalf("changes: %+v", rep.Changes)
		}
		g := groupByName(t, e.Store(), "办公室全体")
		if g.Description != "新说明" || g.Mail != "office-all@gov.example" || len(g.People) != 1 || len(g.Subgroups) != 0 {
			t.Fatalf("group: %+v", g)
		}
		// A group that is not valid is reported, the others still sync.
		f.setGroup(Group{Anchor: "g-bad", Name: "坏\x07组"})
		f.setGroup(Group{Anchor: "g-dup", Name: "重复", Mail: "zhangsan@gov.example"})
		rep = mustRun(t, e, f, RunOptions{})
		if len(rep.Errors) != 2 || rep.Errors[0].Anchor != "g-bad" || !strings.Contains(rep.Errors[1].Error, "already belongs to person") {
			t.Fatalf("bad groups: %+v", rep.Errors)
		}
		if g := groupByName(t, e.Store(), "重复"); g.Mail != "" {
			t.Fatalf("duplicate mail taken: %+v", g)
		}
	})
}

func TestGroupsHTTP(t *testing.T) {
	each(t, func(t *testing.T, db *sqldb.DB) {
		e, _ := newTestEngine(db, Config{})
		f := newFake("ldap")
		chart(f)
		groupChart(f)
		mustRun(t, e, f, RunOptions{})
		srv := httptest.NewServer(AddressBookHandler(e.Store()))
		defer srv.Close()
		get := func(path string, v any) int {
			t.Helper()
			res, err := http.Get(srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if v != nil {
				json.NewDecoder(res.Body).Decode(v)
			}
			return res.StatusCode
		}
		var list struct{ Groups []GroupView }
		if code := get("/groups?q=ldbz", &list); code != 200 || len(list.Groups) != 1 || list.Groups[0].Name != "领导班子" {
			t.Fatalf("search by initials: %d %+v", code, list)
		}
		if get("/groups", &list); len(list.Groups) != 2 {
			t.Fatalf("list: %+v", list)
		}
		var card GroupCard
		id := groupByName(t, e.Store(), "办公室全体").ID
		if code := get("/groups/"+strconv.FormatInt(id, 10), &card); code != 200 || len(card.People) != 3 || len(card.Subgroups) != 1 || card.Subgroups[0].Name != "领导班子" {
			t.Fatalf("card: %d %+v", code, card)
		}
		for _, p := range card.People {
			if p.ComposeURL == "" || len(p.Departments) != 1 {
				t.Fatalf("member view: %+v", p)
			}
		}
		if code := get("/groups/999999", nil); code != 404 {
			t.Fatalf("unknown group: %d", code)
		}
		if code := get("/groups/x", nil); code != 404 {
			t.Fatalf("bad id: %d", code)
		}
	})
}

// TestGroupFirstContact: a second peer's group is linked to the one
// govhub has by mail, then by name, never created twice; its members are
// that peer's people.
func TestGroupFirstContact(t *testing.T) {
	each(t, func(t *testing.T, db *sqldb.DB) {
		e, _ := newTestEngine(db, Config{})
		f := newFake("ldap")
		chart(f)
		groupChart(f)
		mustRun(t, e, f, RunOptions{})
		other := newFake("ad")
		other.setPerson(Person{Anchor: "x1", DisplayName: "张三", Mail: "zhangsan@gov.example", EmployeeNo: "E001"})
		other.setGroup(Group{Anchor: "x-all", Name: "另一个名字", Mail: "OFFICE-ALL@gov.example", Members: []string{"x1"}})
		other.setGroup(Group{Anchor: "x-lead", Name: "领导班子"})
		other.setGroup(Group{Anchor: "x-new", Name: "新组", Members: []string{"x1"}})
		rep := mustRun(t, e, other, RunOptions{})
		var actions []string
		for _, c := range rep.Changes {
			if c.Kind == "group" {
				actions = append(actions, c.Action+":"+c.Anchor)
			}
		}
		if strings.Join(actions, " ") != "link:x-all link:x-lead create:x-new" || len(rep.Errors) != 0 {
			t.Fatalf("first contact: %v %+v", actions, rep.Errors)
		}
		// ldap owns the group fields: the other peer changed nothing.
		all := groupByName(t, e.Store(), "办公室全体")
		if len(all.People) != 2 || len(all.Subgroups) != 1 {
			t.Fatalf("linked group changed by a non-owner: %+v", all)
		}
		if g := groupByName(t, e.Store(), "新组"); len(g.People) != 1 {
			t.Fatalf("new group: %+v", g)
		}
	})
}

// TestGroupsPinyinOrder: group lists read in pinyin order, not by code
// point (安 an, 王 wang, 张 zhang; by code point 安 张 王).
func TestGroupsPinyinOrder(t *testing.T) {
	each(t, func(t *testing.T, db *sqldb.DB) {
		e, _ := newTestEngine(db, Config{})
		f := newFake("ldap")
		chart(f)
		for i, n := range []string{"张组", "安组", "王组"} {
			f.setGroup(Group{Anchor: "g" + strconv.Itoa(i), Name: n, Members: []string{"u1"}})
		}
		mustRun(t, e, f, RunOptions{})
		gs, err := e.Store().SearchGroups(context.Background(), "组", 0)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, g := range gs {
			names = append(names, g.Name)
		}
		if strings.Join(names, " ") != "安组 王组 张组" {
			t.Fatalf("order %v", names)
		}
		if gs, _ := e.Store().SearchGroups(context.Background(), "组", 2); len(gs) != 2 || gs[1].Name != "王组" {
			t.Fatalf("limit applies after sorting: %+v", gs)
		}
	})
}

// TestPersonCannotTakeGroupMail: a person whose mail is an active group's
// address is refused (reported per object): otherwise mail to the list
// would land in that one person's mailbox.
func TestPersonCannotTakeGroupMail(t *testing.T) {
	each(t, func(t *testing.T, db *sqldb.DB) {
		e, _ := newTestEngine(db, Config{})
		f := newFake("ldap")
		chart(f)
		groupChart(f)
		mustRun(t, e, f, RunOptions{})
		f.setPerson(Person{Anchor: "u9", DisplayName: "赵六", Mail: "office-all@gov.example", EmployeeNo: "E009",
			Memberships: []Membership{{DeptAnchor: "d-office", Order: 2}}})
		rep := mustRun(t, e, f, RunOptions{})
		if len(rep.Errors) == 0 || !strings.Contains(rep.Errors[0].Error, "belongs to group") {
			t.Fatalf("a person took a group's address: %+v", rep.Errors)
		}
		if p, err := e.Store().PersonBy(context.Background(), "mail", "office-all@gov.example", nil); err == nil {
			t.Fatalf("person %d has the group's mail", p.ID)
		}
	})
}
