package directory

import (
	"context"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"strings"
)

// Skipping unchanged people in a full run (SkippingPeer).
//
// A snapshot taken at a peer Version records the peer's values then and
// ours after that run. While the peer reports the same Version and our
// record still equals the snapshot's "ours", planning the person again
// would change nothing (the plan depends only on those two, the snapshot
// and the configuration, and the configuration is part of the tag), so
// the engine only marks the person seen. When our side changed, the
// person is planned from the snapshot's peer values, exactly as if the
// peer had sent them.

// configTag names the engine configuration a snapshot's Version holds
// for: a change of ownership, write-back, match key or mail requirement
// makes every stored version stale, so the next full run reads everyone.
func (r *run) configTag() string {
	if r.tag != "" {
		return r.tag
	}
	h := fnv.New64a()
	keys := make([]string, 0, len(r.e.cfg.Ownership))
	for k := range r.e.cfg.Ownership {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "%s=%s;", k, r.e.cfg.Ownership[k])
	}
	fmt.Fprintf(h, "w=%t;m=%s;rm=%t;v1", r.e.cfg.Writable[r.name], r.e.cfg.MatchKey, r.e.cfg.RequireMail)
	r.tag = strconv.FormatUint(h.Sum64(), 36)
	return r.tag
}

// versionTag is what a snapshot stores for a peer version.
func (r *run) versionTag(v string) string { return r.configTag() + "|" + v }

// knownVersions loads, per person anchor of this peer, the peer version
// its snapshot was taken at, for the snapshots the current configuration
// may trust. With keep, the rows it reads are kept for the load
// (preAnchors).
func (r *run) knownVersions(ctx context.Context, keep bool) (map[string]string, error) {
	prefix := r.configTag() + "|"
	out := map[string]string{}
	pre := []anchorRow{}
	err := r.scanAnchors(ctx, func(a anchorRow) {
		if keep {
			pre = append(pre, a)
		}
		if a.kind != KindPerson {
			return
		}
		if v, ok := strings.CutPrefix(snapVersion(a.lv), prefix); ok && v != "" {
			out[a.anchor] = v
		}
	})
	if err != nil {
		return nil, err
	}
	if keep {
		r.preAnchors = pre
	}
	return out, nil
}

// hasPeople says whether govhub holds anyone from this peer: without, a
// first full run walks the plain way (a stamp pass would find nothing to
// skip).
func (r *run) hasPeople(ctx context.Context) bool {
	s := r.e.store
	var n int
	err := s.db.X.GetContext(ctx, &n, s.db.Rebind(`SELECT COUNT(*) FROM (SELECT 1 FROM dir_anchors WHERE peer = ? AND kind = ? LIMIT 1) x`), r.name, int(KindPerson))
	return err == nil && n > 0
}

// oursVals is our side of a person in snapshot form.
func (r *run) oursVals(p *PersonRecord) fieldVals {
	ours := newVals()
	for i, f := range FieldNames {
		if f == "memberships" {
			ours[i] = r.membersText(p.Memberships)
		} else {
			ours[i] = personField(p, f)
		}
	}
	return ours
}

// planUnchanged handles a person a SkippingPeer reported Unchanged.
func (r *run) planUnchanged(en Entry) {
	k := anchorKey{KindPerson, en.Anchor}
	r.seen[k] = true
	id := r.anchors[k]
	// The common case, without decoding the snapshot: same version, and
	// our record still what the snapshot says.
	if raw, ok := r.rawSnaps[k]; ok && id != 0 && snapVersion(raw) == r.versionTag(en.Version) {
		if cur := r.people[id]; cur != nil && r.oursUnchanged(raw, cur) {
			return
		}
	}
	sn := r.snap(k)
	if id == 0 || sn == nil || sn.Version != r.versionTag(en.Version) {
		// The snapshot moved between the walk and the plan (it cannot
		// within one run of this peer; be safe anyway).
		r.fail(en, idOrZero(id), "person changed during the run; the next full run reads it again")
		return
	}
	cur := r.people[id]
	if cur == nil {
		return
	}
	ours := r.oursVals(cur)
	if ours.equal(sn.Ours) {
		return
	}
	p, ok := r.personFromSnap(en.Anchor, sn.Peer)
	if !ok {
		r.fail(en, idOrZero(id), "stored snapshot names an unknown department; the next full run reads the person again")
		r.clearVersion(k, sn)
		return
	}
	en.Person, en.Unchanged = p, false
	r.planPerson(en)
}

// oursUnchanged reports whether p equals the "ours" half of the encoded
// snapshot raw (see encodeSnap), field by field, without splitting it.
func (r *run) oursUnchanged(raw string, p *PersonRecord) bool {
	peer, rest, _ := strings.Cut(raw, "\x1e")
	ours, _, _ := strings.Cut(rest, "\x1e")
	for _, f := range FieldNames {
		var pv, ov string
		pv, peer, _ = strings.Cut(peer, "\x1f")
		ov, ours, _ = strings.Cut(ours, "\x1f")
		if ov == "\x1d" {
			ov = pv
		}
		if f == "memberships" {
			if r.membersText(p.Memberships) != ov {
				return false
			}
		} else if personField(p, f) != ov {
			return false
		}
	}
	return true
}

func (v fieldVals) equal(w fieldVals) bool {
	if len(v) != len(w) {
		return false
	}
	for i := range v {
		if v[i] != w[i] {
			return false
		}
	}
	return true
}

// clearVersion makes the next full run read the person in full.
func (r *run) clearVersion(k anchorKey, sn *snapshot) {
	r.setSnap(k, &snapshot{Peer: sn.Peer, Ours: sn.Ours})
}

// personFromSnap rebuilds the person the peer last reported from the
// snapshot's peer values (memberships as membersText wrote them).
func (r *run) personFromSnap(anchor string, peer fieldVals) (*Person, bool) {
	p := &Person{Anchor: anchor}
	for _, f := range FieldNames {
		if ptr := peerFieldPtr(p, f); ptr != nil {
			*ptr = peer.get(f)
		}
	}
	if ms := peer.get("memberships"); ms != "" {
		for _, part := range strings.Split(ms, ",") {
			i := strings.LastIndexByte(part, ':')
			if i <= 0 || strings.HasPrefix(part, "#") {
				return nil, false
			}
			ord, err := strconv.Atoi(part[i+1:])
			if err != nil {
				return nil, false
			}
			if _, ok := r.anchors[anchorKey{KindDepartment, part[:i]}]; !ok {
				return nil, false
			}
			p.Memberships = append(p.Memberships, Membership{DeptAnchor: part[:i], Order: ord})
		}
	}
	return p, true
}
