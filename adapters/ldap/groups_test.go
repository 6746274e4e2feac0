package ldap

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/govhub/govhub/adapters/ldap/ldaptest"
	"github.com/govhub/govhub/directory"
)

// groupWalk runs a read and returns its groups by name and the group
// deletions.
func groupWalk(t *testing.T, read func(func(directory.Entry) error) (string, error)) (map[string]*directory.Group, []directory.Entry, string) {
	t.Helper()
	groups := map[string]*directory.Group{}
	var deleted []directory.Entry
	cur, err := read(func(e directory.Entry) error {
		switch {
		case e.Deleted:
			deleted = append(deleted, e)
		case e.Kind == directory.KindGroup:
			if e.Err != nil {
				t.Errorf("group %s: %v", e.Source, e.Err)
				return nil
			}
			groups[e.Group.Name] = e.Group
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return groups, deleted, cur
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

func wantGroup(t *testing.T, g *directory.Group, name string, members, subgroups, unresolved []string) {
	t.Helper()
	if g == nil {
		t.Fatalf("no group %s", name)
	}
	if fmt.Sprint(sortedCopy(g.Members)) != fmt.Sprint(sortedCopy(members)) || fmt.Sprint(g.Subgroups) != fmt.Sprint(subgroups) ||
		fmt.Sprint(g.Unresolved) != fmt.Sprint(unresolved) {
		t.Fatalf("%s: members %v subgroups %v unresolved %v; want %v %v %v", name, g.Members, g.Subgroups, g.Unresolved, members, subgroups, unresolved)
	}
}

// TestGroupsFullAndContentSync: groups come with the full walk, their
// member DNs resolved to the anchors of people and nested groups; the
// hostile ones (a DN naming nothing, a department as a member, a cycle)
// are reported as they are. A content-sync delta carries a changed group
// (members resolved by lookups) and a deleted one, and no group
// "deletion" for a person modified meanwhile.
func TestGroupsFullAndContentSync(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.Options{LDIF: ldaptest.ChartLDIF(0) + ldaptest.GroupsLDIF()})
	p := newPeer(t, rootConfig(s))
	ctx := context.Background()
	ids := uuids(t, s)
	id := func(dn string) string { return ids[normDN(dn)] }
	pdn := func(uid string) string { return ldaptest.PersonByUID(uid).DN() }
	groups, _, cur := groupWalk(t, func(fn func(directory.Entry) error) (string, error) { return p.Full(ctx, fn) })
	if len(groups) != 3 {
		t.Fatalf("groups: %+v", groups)
	}
	all, lead := groups[ldaptest.GroupAll], groups[ldaptest.GroupLead]
	wantGroup(t, all, ldaptest.GroupAll, []string{id(pdn("zhangsan")), id(pdn("lisi"))}, []string{id(ldaptest.GroupDN(ldaptest.GroupLead))}, nil)
	if all.Mail != "bgt-all@gov.example" || all.Description != "办公厅所有人员" || all.Anchor != id(ldaptest.GroupDN(ldaptest.GroupAll)) {
		t.Fatalf("办公厅全体: %+v", all)
	}
	wantGroup(t, lead, ldaptest.GroupLead, []string{id(pdn("zhugeliang")), id(pdn("ouyangnana"))}, []string{all.Anchor}, []string{ldaptest.GhostDN})
	wantGroup(t, groups[ldaptest.GroupMixed], ldaptest.GroupMixed, []string{id(pdn("wangwu")), id(pdn("ctrl"))}, nil, []string{ldaptest.DeptDN("教育局")})

	s.LDAPModify(t, fmt.Sprintf(`dn: %s
changetype: modify
delete: uniqueMember
uniqueMember: %s
-
add: uniqueMember
uniqueMember: %s

dn: %s
changetype: delete

dn: %s
changetype: modify
replace: title
title: 主任
`, ldaptest.GroupDN(ldaptest.GroupLead), ldaptest.GhostDN, pdn("wangwu"), ldaptest.GroupDN(ldaptest.GroupMixed), pdn("lisi")))
	groups, deleted, cur := groupWalk(t, func(fn func(directory.Entry) error) (string, error) { return p.Changes(ctx, cur, fn) })
	if len(groups) != 1 {
		t.Fatalf("delta groups: %+v", groups)
	}
	wantGroup(t, groups[ldaptest.GroupLead], ldaptest.GroupLead, []string{id(pdn("zhugeliang")), id(pdn("ouyangnana")), id(pdn("wangwu"))}, []string{all.Anchor}, nil)
	mixed := id(ldaptest.GroupDN(ldaptest.GroupMixed))
	var gone []string
	for _, e := range deleted {
		gone = append(gone, fmt.Sprintf("%d:%s", e.Kind, e.Anchor))
	}
	if fmt.Sprint(gone) != fmt.Sprint([]string{fmt.Sprintf("%d:%s", directory.KindGroup, mixed)}) {
		t.Fatalf("deletions %v, want only the group %s", gone, mixed)
	}
	// The cursor moved: nothing again.
	if groups, deleted, _ := groupWalk(t, func(fn func(directory.Entry) error) (string, error) { return p.Changes(ctx, cur, fn) }); len(groups)+len(deleted) != 0 {
		t.Fatalf("again: %+v %+v", groups, deleted)
	}
}

// TestGroupsTimestampDelta: without content sync, a group modified after
// the cursor comes with the delta, its members resolved.
func TestGroupsTimestampDelta(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.Options{LDIF: ldaptest.ChartLDIF(0) + ldaptest.GroupsLDIF()})
	cfg := rootConfig(s)
	cfg.ContentSync = "off"
	cfg.Groups = Search{Filter: "(objectClass=groupOfNames)"}
	p := newPeer(t, cfg)
	ctx := context.Background()
	groups, _, cur := groupWalk(t, func(fn func(directory.Entry) error) (string, error) { return p.Full(ctx, fn) })
	if len(groups) != 2 || groups[ldaptest.GroupLead] != nil {
		t.Fatalf("groups with a groupOfNames filter: %+v", groups)
	}
	// The lead group is outside the filter: as a nested member it names
	// no group of this peer.
	if g := groups[ldaptest.GroupAll]; len(g.Subgroups) != 0 || fmt.Sprint(g.Unresolved) != fmt.Sprint([]string{ldaptest.GroupDN(ldaptest.GroupLead)}) {
		t.Fatalf("办公厅全体: %+v", g)
	}
	time.Sleep(1100 * time.Millisecond)
	s.LDAPModify(t, fmt.Sprintf("dn: %s\nchangetype: modify\nreplace: description\ndescription: 改过\n", ldaptest.GroupDN(ldaptest.GroupMixed)))
	groups, _, cur = groupWalk(t, func(fn func(directory.Entry) error) (string, error) { return p.Changes(ctx, cur, fn) })
	g := groups[ldaptest.GroupMixed]
	if g == nil || g.Description != "改过" || len(g.Members) != 2 {
		t.Fatalf("delta: %+v", groups)
	}
	time.Sleep(1100 * time.Millisecond)
	groups, _, _ = groupWalk(t, func(fn func(directory.Entry) error) (string, error) { return p.Changes(ctx, cur, fn) })
	if len(groups) > 1 {
		t.Fatalf("unchanged groups came again: %+v", groups)
	}
}

// TestGroupRangedMembersRefused: an Active Directory group whose members
// come as member;range=0-1499 is reported broken, not synced as empty.
func TestGroupRangedMembersRefused(t *testing.T) {
	p, err := New(Config{URL: "ldap://127.0.0.1:1", People: Search{BaseDN: "dc=gov,dc=example"}})
	if err != nil {
		t.Fatal(err)
	}
	e := goldap.NewEntry("cn=all,ou=groups,dc=gov,dc=example", map[string][]string{
		"cn": {"全体"}, "entryUUID": {"7c9e6679-7425-40de-944b-e07fc1f90ae7"},
		"member;range=0-1499": {"uid=a,dc=gov,dc=example"},
	})
	r := p.groupRecord(e)
	if r.entry.Err == nil || !strings.Contains(r.entry.Err.Error(), "range") {
		t.Fatalf("ranged group accepted: %+v", r.entry)
	}
	e = goldap.NewEntry("cn=small,ou=groups,dc=gov,dc=example", map[string][]string{
		"cn": {"小组"}, "entryUUID": {"7c9e6679-7425-40de-944b-e07fc1f90ae8"}, "member": {"uid=a,dc=gov,dc=example"},
	})
	if r := p.groupRecord(e); r.entry.Err != nil || len(r.members) != 1 {
		t.Fatalf("plain group: %+v %v", r.entry, r.members)
	}
}
