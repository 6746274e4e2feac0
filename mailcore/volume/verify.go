package volume

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/govhub/govhub/mailcore"
)

// Verify reads every record of every volume back: framing and CRC-32C of
// all records, and the SHA-256 of every live blob. It returns one problem
// per damaged record (and per live blob that cannot be read back); the
// error is reserved for failing to run at all. It may run while the store
// is in use, and on a store opened read-only next to a running server.
func (s *Store) Verify(ctx context.Context) ([]mailcore.BlobProblem, error) {
	type snap struct {
		v    *volume
		size int64
	}
	s.mu.RLock()
	if err := s.checkOpen(); err != nil {
		s.mu.RUnlock()
		return nil, err
	}
	var vols []snap
	for _, v := range s.vols {
		v.acquire()
		vols = append(vols, snap{v, v.size})
	}
	s.mu.RUnlock()
	defer func() {
		for _, sv := range vols {
			sv.v.release()
		}
	}()
	slices.SortFunc(vols, func(a, b snap) int { return int(a.v.num) - int(b.v.num) })

	var probs []mailcore.BlobProblem
	for _, sv := range vols {
		if err := ctx.Err(); err != nil {
			return probs, err
		}
		v := sv.v
		if v.badHeader {
			probs = append(probs, mailcore.BlobProblem{Where: v.name() + "@0", Reason: "damaged file header"})
		}
		isLive := func(r recInfo) bool {
			s.mu.RLock()
			e, ok := s.index[r.id]
			s.mu.RUnlock()
			return ok && e.vol == v.num && e.off == r.off
		}
		rr := newRecordReader(v.f, sv.size)
		rr.shaFor = isLive
		seen := 0
		res, err := rr.scan(volHeaderSize, v.badHeader, func(r recInfo, _ bool) {
			if r.typ == recBlob && isLive(r) {
				seen++
			}
		})
		if err != nil {
			probs = append(probs, mailcore.BlobProblem{Where: fmt.Sprintf("%s@%d", v.name(), res.goodEnd),
				Reason: "read error: " + err.Error()})
		}
		for _, b := range res.bad {
			p := mailcore.BlobProblem{Where: fmt.Sprintf("%s@%d", v.name(), b.off), Reason: b.reason}
			if b.hdrOK {
				p.ID = b.id
			}
			probs = append(probs, p)
		}
		s.mu.RLock()
		count := v.count
		s.mu.RUnlock()
		if seen != count {
			// Some live entry here was not met as a valid record (or the
			// store changed meanwhile): read each one back to find out.
			probs = append(probs, s.verifyEntries(ctx, v, sv.size)...)
		}
	}
	return dedupeProblems(probs), nil
}

// verifyEntries reads back every live blob in v below size.
func (s *Store) verifyEntries(ctx context.Context, v *volume, size int64) []mailcore.BlobProblem {
	var ids []mailcore.BlobID
	s.mu.RLock()
	for id, e := range s.index {
		if e.vol == v.num && e.off+e.recSize() <= size {
			ids = append(ids, id)
		}
	}
	s.mu.RUnlock()
	var probs []mailcore.BlobProblem
	for _, id := range ids {
		e, cv, err := s.lookup(id)
		if err != nil {
			continue // deleted meanwhile
		}
		cv.release()
		if _, err := s.Get(ctx, id); err != nil && !errors.Is(err, mailcore.ErrBlobNotFound) {
			probs = append(probs, mailcore.BlobProblem{ID: id, Where: fmt.Sprintf("%s@%d", volName(e.vol), e.off),
				Reason: "live blob unreadable: " + err.Error()})
		}
	}
	return probs
}

func dedupeProblems(ps []mailcore.BlobProblem) []mailcore.BlobProblem {
	seen := map[string]bool{}
	out := ps[:0]
	for _, p := range ps {
		k := p.Where + "\x00" + p.ID.String()
		if !seen[k] {
			seen[k] = true
			out = append(out, p)
		}
	}
	return out
}
