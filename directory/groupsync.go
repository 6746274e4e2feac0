package directory

import (
	"context"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Syncing groups (KindGroup). A group entry names its members by their
// anchors in the same peer; the engine plans groups after people and
// departments, so people this run creates are members at once. A member
// the engine does not know (not synced yet, a broken entry, a DN naming
// nothing) is a per-object error of the group, which is synced with the
// members it could place; the next run adds the others once they are
// known. Ownership is per field (GroupFieldNames): the owner's value wins,
// an empty one included (a peer reports a group's fields in full); a peer
// that does not own a field only fills it while govhub's is empty.

// groupSnap is a group anchor's last_values: the peer's values and ours
// (GroupFieldNames order) after the last run that saw it.
type groupSnap struct{ peer, ours []string }

const groupSnapTag = "g1\x1e"

func encodeGroupSnap(s groupSnap) string {
	return groupSnapTag + strings.Join(s.peer, "\x1f") + "\x1e" + strings.Join(s.ours, "\x1f")
}

func decodeGroupSnap(raw string) *groupSnap {
	rest, ok := strings.CutPrefix(raw, groupSnapTag)
	if !ok {
		return nil
	}
	p, o, ok := strings.Cut(rest, "\x1e")
	if !ok {
		return nil
	}
	s := &groupSnap{peer: strings.Split(p, "\x1f"), ours: strings.Split(o, "\x1f")}
	if len(s.peer) != len(GroupFieldNames) || len(s.ours) != len(GroupFieldNames) {
		return nil
	}
	return s
}

// groupSnapOf is the stored snapshot of a group anchor, nil if none.
func (r *run) groupSnapOf(k anchorKey) *groupSnap {
	if raw, ok := r.dirtySnaps[k]; ok {
		return decodeGroupSnap(raw)
	}
	return decodeGroupSnap(r.rawSnaps[k])
}

// groupMembersText is a member list in this peer's terms: "p:anchor" and
// "g:anchor" sorted, objects this peer does not know as "p:#id".
func (r *run) groupMembersText(people, groups []int64) string {
	parts := make([]string, 0, len(people)+len(groups))
	for _, l := range []struct {
		kind   EntryKind
		prefix string
		ids    []int64
	}{{KindPerson, "p:", people}, {KindGroup, "g:", groups}} {
		for _, id := range l.ids {
			a := r.anchOf[objKey(l.kind, id)]
			if a == "" {
				a = "#" + strconv.FormatInt(id, 10)
			}
			parts = append(parts, l.prefix+a)
		}
	}
	sort.Strings(parts)
	return strings.Join(slices.Compact(parts), ",")
}

func (r *run) groupVals(g *GroupRecord) []string {
	return []string{g.Name, g.Description, strings.ToLower(g.Mail), r.groupMembersText(g.People, g.Subgroups), g.Status}
}

func validStatus(s string) bool {
	return s == StatusActive || s == StatusDisabled || s == StatusLeft
}

// planGroups plans the group entries of a run: first every group gets its
// id (found by anchor, matched on first contact by mail, then by name,
// among groups not yet anchored to this peer, or created), so nested
// groups can name each other in any order; then fields and members.
func (r *run) planGroups(entries []Entry) {
	type pending struct {
		en     Entry
		id     int64
		action string
	}
	var ps []pending
	// First-contact candidates, once per run: govhub's groups not
	// anchored to this peer, in id order.
	var cands []int64
	if len(entries) > 0 {
		for id := range r.groups {
			if id > 0 && r.anchOf[objKey(KindGroup, id)] == "" {
				cands = append(cands, id)
			}
		}
		sort.Slice(cands, func(i, j int) bool { return cands[i] < cands[j] })
	}
	for _, en := range entries {
		g := en.Group
		k := anchorKey{KindGroup, en.Anchor}
		r.seen[k] = true
		existing := r.anchors[k]
		vals := append([]string{g.Name, g.Description, g.Mail, g.Status}, g.Members...)
		vals = append(vals, g.Subgroups...)
		switch {
		case strings.TrimSpace(g.Name) == "":
			r.fail(en, idOrZero(existing), "group has no name")
			continue
		case badText(vals...):
			r.fail(en, idOrZero(existing), "bad characters in a field")
			continue
		case g.Mail != "" && !validMail(g.Mail):
			r.fail(en, idOrZero(existing), "malformed mail address")
			continue
		case g.Status != "" && !validStatus(g.Status):
			r.fail(en, idOrZero(existing), "unknown status "+strconv.Quote(g.Status))
			continue
		}
		id, action := existing, ""
		if id == 0 {
			id = r.matchGroup(g, cands)
			action = "link"
		}
		if id == 0 {
			r.nextTemp--
			id, action = r.nextTemp, "create"
			r.groups[id] = &GroupRecord{ID: id, Status: StatusActive}
			r.newGroups = append(r.newGroups, id)
		}
		if action != "" {
			r.addAnchor(k, id)
		}
		ps = append(ps, pending{en, id, action})
	}
	for _, p := range ps {
		r.planGroup(p.en, p.id, p.action)
	}
}

// matchGroup finds the group a first contact is among cands: the same
// mail, else the same name, not anchored to this peer yet (a candidate
// linked earlier in the run is); 0 for none.
func (r *run) matchGroup(g *Group, cands []int64) int64 {
	free := func(id int64) bool { return r.anchOf[objKey(KindGroup, id)] == "" }
	if g.Mail != "" {
		for _, id := range cands {
			if free(id) && strings.EqualFold(r.groups[id].Mail, g.Mail) {
				return id
			}
		}
	}
	for _, id := range cands {
		if free(id) && r.groups[id].Name == g.Name {
			return id
		}
	}
	return 0
}

func (r *run) planGroup(en Entry, id int64, action string) {
	g := en.Group
	k := anchorKey{KindGroup, en.Anchor}
	cur := r.groups[id]
	var people, subs []int64
	for _, a := range g.Members {
		pid, ok := r.anchors[anchorKey{KindPerson, a}]
		if !ok {
			r.fail(en, idOrZero(id), "member "+strconv.Quote(a)+" is not a known person of "+r.name+" (not synced yet, or a broken entry)")
			continue
		}
		people = append(people, pid)
	}
	for _, a := range g.Subgroups {
		gid, ok := r.anchors[anchorKey{KindGroup, a}]
		switch {
		case !ok:
			r.fail(en, idOrZero(id), "nested group "+strconv.Quote(a)+" is not a known group of "+r.name)
			continue
		case gid == id:
			r.fail(en, idOrZero(id), "group lists itself as a member")
			continue
		}
		subs = append(subs, gid)
	}
	for _, u := range g.Unresolved {
		r.fail(en, idOrZero(id), "member "+strconv.Quote(u)+" names no person or group")
	}
	people, subs = slices.Compact(sortedIDs(people)), slices.Compact(sortedIDs(subs))
	status := g.Status
	if status == "" {
		status = StatusActive
	}
	theirs := []string{g.Name, g.Description, strings.ToLower(g.Mail), r.groupMembersText(people, subs), status}
	if m := theirs[2]; m != "" && !strings.EqualFold(m, cur.Mail) {
		// The address must name nobody else: no person, no other group.
		if other, ok := r.mailIdx[m]; ok {
			r.fail(en, idOrZero(id), "mail address "+strconv.Quote(m)+" already belongs to person "+strconv.FormatInt(idOrZero(other), 10))
			theirs[2] = strings.ToLower(cur.Mail)
		} else if other := r.groupMail[m]; other != 0 && other != id {
			r.fail(en, idOrZero(id), "mail address "+strconv.Quote(m)+" already belongs to group "+strconv.FormatInt(idOrZero(other), 10))
			theirs[2] = strings.ToLower(cur.Mail)
		}
	}
	ours := r.groupVals(cur)
	snap := r.groupSnapOf(k)
	next := *cur
	changed := map[string]string{}
	for i, f := range GroupFieldNames {
		tv, ov := theirs[i], ours[i]
		if tv == ov {
			continue
		}
		owner := r.owner(f)
		peerChanged := snap == nil || snap.peer[i] != tv
		oursChanged := snap != nil && snap.ours[i] != ov
		take := false
		switch {
		case owner == r.name:
			take = true
			if peerChanged && oursChanged && ov != "" {
				r.conflict(k, id, f, ov, tv, r.name)
			}
		case ov == "":
			take = true
		case peerChanged && oursChanged:
			r.conflict(k, id, f, ov, tv, owner)
		}
		if !take {
			continue
		}
		switch f {
		case "group_name":
			next.Name = tv
		case "group_description":
			next.Description = tv
		case "group_mail":
			next.Mail = tv
		case "group_status":
			next.Status = tv
		case "group_members":
			next.People, next.Subgroups = people, subs
			// Counts, not the list: a group may have thousands.
			tv = strconv.Itoa(len(people)) + " people, " + strconv.Itoa(len(subs)) + " groups"
		}
		changed[f] = tv
	}
	if _, ok := changed["group_mail"]; ok {
		if cur.Mail != "" && r.groupMail[strings.ToLower(cur.Mail)] == id {
			delete(r.groupMail, strings.ToLower(cur.Mail))
		}
		if next.Mail != "" {
			r.groupMail[strings.ToLower(next.Mail)] = id
		}
	}
	r.groups[id] = &next
	switch {
	case action == "create":
		r.change(Change{Kind: "group", Action: "create", Target: Govhub, Anchor: en.Anchor, Source: en.Source, Fields: changed})
	case len(changed) > 0 || action == "link":
		if action == "" {
			action = "update"
		}
		if len(changed) == 0 {
			changed = nil
		}
		r.dirtyGroup[id] = true
		if _, ok := changed["group_members"]; ok {
			r.dirtyGroupMembers[id] = true
		}
		r.change(Change{Kind: "group", Action: action, Target: Govhub, ObjectID: id, Anchor: en.Anchor, Source: en.Source, Fields: changed})
	}
	ns := groupSnap{peer: theirs, ours: r.groupVals(&next)}
	if snap == nil || !slices.Equal(snap.peer, ns.peer) || !slices.Equal(snap.ours, ns.ours) {
		enc := encodeGroupSnap(ns)
		r.dirtySnaps[k], r.rawSnaps[k] = enc, enc
	}
}

// applyGroups writes the planned groups inside the apply transaction,
// after people (members reference them). New groups are inserted first so
// nested groups created in the same run can name each other.
func (r *run) applyGroups(ctx context.Context, tx *ptx, mapID func(int64) int64, realID map[int64]int64) error {
	for _, tmp := range r.newGroups {
		g := *r.groups[tmp]
		id, err := insertGroup(ctx, tx, &g, r.now)
		if err != nil {
			return err
		}
		realID[tmp] = id
	}
	ids := make([]int64, 0, len(r.dirtyGroup))
	for id := range r.dirtyGroup {
		if id > 0 {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		if err := updateGroup(ctx, tx, r.groups[id], r.now); err != nil {
			return err
		}
	}
	mapAll := func(in []int64) []int64 {
		out := make([]int64, len(in))
		for i, id := range in {
			out[i] = mapID(id)
		}
		return out
	}
	for _, tmp := range r.newGroups {
		g := r.groups[tmp]
		if err := setGroupMembers(ctx, tx, realID[tmp], mapAll(g.People), mapAll(g.Subgroups)); err != nil {
			return err
		}
	}
	for _, id := range ids {
		if r.dirtyGroupMembers[id] {
			g := r.groups[id]
			if err := setGroupMembers(ctx, tx, id, mapAll(g.People), mapAll(g.Subgroups)); err != nil {
				return err
			}
		}
	}
	return nil
}
