package directory

import (
	"context"
	"errors"
	"sort"
	"strings"
)

// Push: creating in a writable peer the people govhub's chart has and the
// peer has not (bidirectional sync). Only a full run pushes: it has seen
// every entry of the peer and matched each one it met for the first time
// by the configured key, so a person still without an anchor in the peer
// is one the peer does not hold. A delta cannot tell "absent" from
// "unchanged", and pushing from it would duplicate people.
//
// What is written respects ownership: the fields the target peer itself
// owns are left for it to fill (govhub's value for them came from
// elsewhere), except the display name, which every entry needs. Status is
// never written (only active people are pushed); memberships, when
// written, name the departments by the peer's anchors and leave out those
// the peer does not know.

// errBadAnchor: a peer created a person but answered no usable anchor.
var errBadAnchor = errors.New("directory: peer returned no usable anchor")

// push is one person to create in the peer after the commit.
type push struct {
	id     int64
	person Person
	fields map[string]string
}

// pushPerson is what a person created in this peer carries.
func (r *run) pushPerson(p *PersonRecord) (Person, map[string]string) {
	out := Person{Status: StatusActive}
	fields := map[string]string{}
	for _, f := range FieldNames {
		// The display name always (an entry needs one) and the match key
		// always: should the anchor of the new entry fail to be recorded,
		// the next run links the entry by that key instead of creating a
		// second one.
		if f == "status" || (r.owner(f) == r.name && f != "display_name" && f != r.e.cfg.MatchKey) {
			continue
		}
		if f == "memberships" {
			var known []MemberOf
			for _, m := range p.Memberships {
				if a := r.anchOf[objKey(KindDepartment, m.DeptID)]; a != "" {
					out.Memberships = append(out.Memberships, Membership{DeptAnchor: a, Order: m.Order})
					known = append(known, m)
				}
			}
			if len(known) > 0 {
				fields[f] = r.membersText(known)
			}
			continue
		}
		v := personField(p, f)
		if v == "" {
			continue
		}
		*peerFieldPtr(&out, f) = v
		fields[f] = v
	}
	return out, fields
}

// planPushes plans the creation in this peer of every active person who
// has no anchor in it, in id order, when the peer is writable and can
// create people.
func (r *run) planPushes() {
	if !r.e.cfg.Writable[r.name] || !r.e.cfg.Push[r.name] {
		return
	}
	if _, ok := r.peer.(PeerCreator); !ok {
		return
	}
	var ids []int64
	for id, p := range r.people {
		if id > 0 && p.Status == StatusActive && r.anchOf[objKey(KindPerson, id)] == "" && !r.unlinked[id] && strings.TrimSpace(p.DisplayName) != "" {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		p := r.people[id]
		if kv := r.matchValue(p.Mail, p.EmployeeNo); kv != "" && r.peerKeys[kv] {
			// The peer has an entry with this key that could not be
			// linked (broken, or refused): creating would duplicate it.
			r.rep.Errors = append(r.rep.Errors, ObjectError{Kind: "person", ObjectID: id,
				Error: "not created in " + r.name + ": it has an entry with the same " + r.e.cfg.MatchKey + " that could not be synced"})
			continue
		}
		pe, fields := r.pushPerson(p)
		r.pushes = append(r.pushes, push{id: id, person: pe, fields: fields})
		r.change(Change{Kind: "person", Action: "create", Target: r.name, ObjectID: id, Fields: fields})
	}
}

// afterPushes creates the planned people in the peer and records each
// returned anchor with a snapshot of what was written, so the next run
// sees the entry as known and unchanged. A failure is a per-object error;
// the next full run tries again (the person still has no anchor).
func (r *run) afterPushes(ctx context.Context) {
	c, ok := r.peer.(PeerCreator)
	if !ok || len(r.pushes) == 0 {
		return
	}
	db := r.e.store.db
	for _, ps := range r.pushes {
		anchor, err := c.CreatePerson(ctx, ps.person)
		if err == nil && (anchor == "" || badText(anchor)) {
			err = errBadAnchor
		}
		if err != nil {
			r.rep.Errors = append(r.rep.Errors, ObjectError{Kind: "person", ObjectID: ps.id, Error: "create in " + r.name + ": " + err.Error()})
			continue
		}
		p := r.people[ps.id]
		sn := &snapshot{Peer: newVals(), Ours: newVals()}
		for i, f := range FieldNames {
			sn.Peer[i] = ps.fields[f]
			if f == "memberships" {
				sn.Ours[i] = r.membersText(p.Memberships)
			} else {
				sn.Ours[i] = personField(p, f)
			}
		}
		sn.Peer.set("status", StatusActive)
		if _, err := db.X.ExecContext(ctx, db.Rebind(`INSERT INTO dir_anchors (kind, object_id, peer, anchor, last_values) VALUES (?, ?, ?, ?, ?)`),
			int(KindPerson), ps.id, r.name, anchor, encodeSnap(sn)); err != nil {
			r.rep.Errors = append(r.rep.Errors, ObjectError{Kind: "person", ObjectID: ps.id, Anchor: anchor, Error: "created in " + r.name + ", anchor not recorded: " + err.Error()})
			continue
		}
		r.anchOf[objKey(KindPerson, ps.id)] = anchor
		r.e.log.Info("person created in peer", "peer", r.name, "person", ps.id, "anchor", anchor)
	}
}
