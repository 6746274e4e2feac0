package volume

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/govhub/govhub/mailcore"
)

// parseVolName returns the number of a volume file name, accepting only
// the exact form volName produces.
func parseVolName(name string) (uint32, bool) {
	digits, ok := strings.CutPrefix(name, "vol-")
	if !ok {
		return 0, false
	}
	digits, ok = strings.CutSuffix(digits, ".dat")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(digits, 10, 32)
	if err != nil || n == 0 || volName(uint32(n)) != name {
		return 0, false
	}
	return uint32(n), true
}

// loader builds the index while Open scans volumes. It applies the ordering
// rule: for an id the record with the highest sequence number wins (a copy
// in a higher-numbered volume breaks ties), and a tombstone wins over every
// record with a lower sequence number. Tombstones stay in the map (vol 0)
// until every volume has been scanned, because scan order is not sequence
// order: compaction writes old records into new, higher-numbered files.
type loader struct {
	s     *Store
	index map[mailcore.BlobID]entry
	// snapNext is the snapshot's next sequence number (0 when rebuilding).
	// Every record with a lower sequence number was written before the
	// snapshot was taken, so the snapshot already says whether it is live:
	// such a record found in a tail is only a duplicate copy of an entry
	// the snapshot has (kept if it lives in a higher-numbered volume) or
	// dead, and such a tombstone has already been applied.
	snapNext uint64
	maxSeq   uint64
	report   *RecoveryReport
}

func (l *loader) dead(vol uint32, seq uint64) {
	if v := l.s.vols[vol]; v != nil {
		v.markDead(seq)
	}
}

func (l *loader) apply(v *volume, r recInfo, resynced bool) {
	l.report.RecordsScanned++
	l.maxSeq = max(l.maxSeq, r.seq)
	tomb := r.typ == recTombstone
	if tomb && resynced {
		// A tombstone after a damaged region may be the bytes of a stored
		// message rather than a record; honouring it could delete a live
		// blob, while ignoring a real one at worst resurrects an orphan
		// that the orphan scan removes again.
		l.report.IgnoredTombstones++
		return
	}
	ne := entry{seq: r.seq, off: r.off, vol: v.num, n: uint32(r.n)}
	if tomb {
		ne.vol = 0
	}
	cur, ok := l.index[r.id]
	if r.seq < l.snapNext {
		if tomb {
			return
		}
		if ok && cur.vol != 0 && cur.seq == r.seq && v.num > cur.vol {
			l.dead(cur.vol, cur.seq)
			l.index[r.id] = ne
			return
		}
		v.markDead(r.seq)
		return
	}
	if ok && (cur.seq > r.seq || (cur.seq == r.seq && cur.vol >= v.num)) {
		if !tomb {
			v.markDead(r.seq)
		}
		return
	}
	if ok && cur.vol != 0 {
		l.dead(cur.vol, cur.seq)
	}
	l.index[r.id] = ne
}

// load lists, checks and scans the volumes and builds the index.
func (s *Store) load() error {
	rep := &s.recovery
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("volume: %w", err)
	}
	var nums []uint32
	for _, de := range des {
		name := de.Name()
		if strings.HasSuffix(name, ".tmp") {
			if !s.ro {
				if err := os.Remove(filepath.Join(s.dir, name)); err != nil {
					return fmt.Errorf("volume: remove leftover %s: %w", name, err)
				}
				rep.TempFilesRemoved = append(rep.TempFilesRemoved, name)
			}
			continue
		}
		if n, ok := parseVolName(name); ok && de.Type().IsRegular() {
			nums = append(nums, n)
		}
	}
	if len(rep.TempFilesRemoved) > 0 {
		if err := syncDir(s.dir); err != nil {
			return fmt.Errorf("volume: %w", err)
		}
	}
	slices.Sort(nums)

	var openCand *volume
	for _, n := range nums {
		path := filepath.Join(s.dir, volName(n))
		f, err := os.Open(path)
		if err != nil {
			if s.ro && os.IsNotExist(err) {
				continue // compacted away by the running server meanwhile
			}
			return fmt.Errorf("volume: %w", err)
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return fmt.Errorf("volume: %w", err)
		}
		v := &volume{num: n, path: path, f: f, size: fi.Size(), deadLo: noDead, sealed: true}
		v.refs.Store(1)
		s.vols[n] = v
		h, herr := readVolHeader(f, v.size)
		switch {
		case herr != nil:
			v.badHeader = true
			v.deadLo = 0
			rep.Corrupt = append(rep.Corrupt, mailcore.BlobProblem{Where: v.name() + "@0", Reason: herr.Error()})
		case h.num != n:
			v.badHeader = true
			v.deadLo = 0
			rep.Corrupt = append(rep.Corrupt, mailcore.BlobProblem{Where: v.name() + "@0",
				Reason: fmt.Sprintf("file header names volume %d", h.num)})
		default:
			v.compacted = h.flags&volFlagCompacted != 0
			if !v.compacted {
				openCand = v // the highest-numbered such volume wins
			}
		}
		s.nextVol = max(s.nextVol, n)
	}
	s.nextVol++

	l := &loader{s: s, report: rep}
	covered := map[uint32]int64{}
	snapPath := filepath.Join(s.dir, snapName)
	snap, serr := readSnapshot(snapPath, s.vols)
	switch {
	case serr == nil:
		rep.SnapshotLoaded = true
		l.index = snap.index
		l.snapNext = snap.nextSeq
		for _, sv := range snap.vols {
			covered[sv.num] = sv.covered
			s.vols[sv.num].deadLo = min(s.vols[sv.num].deadLo, sv.deadLo)
		}
	case os.IsNotExist(serr):
		rep.Rebuilt = true
	default:
		rep.SnapshotProblem = serr.Error()
		rep.Rebuilt = true
		s.log.Warn("index snapshot not usable; rebuilding from volumes", "err", serr)
	}
	if l.index == nil {
		l.index = map[mailcore.BlobID]entry{}
	}

	for _, n := range nums {
		v := s.vols[n]
		if v == nil {
			continue
		}
		start := int64(volHeaderSize)
		if c, ok := covered[n]; ok {
			start = c
		}
		if err := s.scanVolume(l, v, start, v == openCand); err != nil {
			return err
		}
	}

	// Drop tombstones and total up what is live.
	for id, e := range l.index {
		if e.vol == 0 {
			delete(l.index, id)
			continue
		}
		v := s.vols[e.vol]
		v.live += e.recSize()
		v.count++
		s.liveData += int64(e.n)
	}
	s.index = l.index
	s.nextSeq = max(l.snapNext, l.maxSeq+1, 1)
	s.committed = s.nextSeq - 1
	s.durable.Store(s.committed)

	if !rep.SnapshotLoaded || rep.RecordsScanned > 0 || rep.TornTail != nil {
		s.changes++ // the snapshot on disk is stale
	}
	if !s.ro {
		nvols := len(s.vols)
		if err := s.prepareOpenVolume(openCand); err != nil {
			return err
		}
		if len(s.vols) != nvols {
			s.changes++
		}
	} else {
		s.open = openCand
		if openCand != nil {
			openCand.sealed = false
		}
	}

	attrs := []any{"volumes", len(s.vols), "blobs", len(s.index), "snapshot_loaded", rep.SnapshotLoaded,
		"records_scanned", rep.RecordsScanned, "read_only", s.ro}
	if rep.TornTail != nil {
		s.log.Warn("torn tail in open volume", "file", rep.TornTail.File, "offset", rep.TornTail.Offset,
			"bytes", rep.TornTail.Bytes, "reason", rep.TornTail.Reason, "truncated", rep.TornTail.Truncated)
	}
	for _, p := range rep.Corrupt {
		s.log.Error("corrupt record kept", "where", p.Where, "reason", p.Reason)
	}
	s.log.Info("volume store opened", attrs...)
	return nil
}

// scanVolume applies the records of v from start to its end. In the open
// volume a bad stretch with no valid record after it is a torn tail: the
// tail of a write the crash interrupted, which no Put acknowledged (Put
// returns only after fsync, and fsync covers whole records). It is cut off.
// Any other bad stretch is reported and kept.
func (s *Store) scanVolume(l *loader, v *volume, start int64, isOpen bool) error {
	rr := newRecordReader(v.f, v.size)
	res, err := rr.scan(start, v.badHeader, func(r recInfo, resynced bool) { l.apply(v, r, resynced) })
	if err != nil {
		if isOpen {
			// Never truncate on an I/O error: the bytes may be fine.
			return fmt.Errorf("volume: read %s: %w", v.name(), err)
		}
		v.deadLo = 0
		s.recovery.Corrupt = append(s.recovery.Corrupt, mailcore.BlobProblem{
			Where: fmt.Sprintf("%s@%d", v.name(), res.goodEnd), Reason: "read error: " + err.Error()})
		return nil
	}
	bad := res.bad
	if isOpen && len(bad) > 0 && bad[len(bad)-1].resume < 0 {
		tail := bad[len(bad)-1]
		bad = bad[:len(bad)-1]
		tt := &TornTail{File: v.name(), Offset: tail.off, Bytes: v.size - tail.off, Reason: tail.reason}
		if !s.ro {
			if err := v.truncate(tail.off); err != nil {
				return err
			}
			tt.Truncated = true
		}
		v.size = tail.off
		s.recovery.TornTail = tt
	}
	if len(bad) > 0 {
		// Records here whose sequence numbers cannot be read may be dead
		// copies; stop trusting this volume's deadLo (see compact.go).
		v.deadLo = 0
	}
	for _, b := range bad {
		p := mailcore.BlobProblem{Where: fmt.Sprintf("%s@%d", v.name(), b.off), Reason: b.reason}
		if b.hdrOK {
			p.ID = b.id
		}
		s.recovery.Corrupt = append(s.recovery.Corrupt, p)
	}
	return nil
}

// truncate cuts the file at size and makes the cut durable.
func (v *volume) truncate(size int64) error {
	f, err := os.OpenFile(v.path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("volume: truncate %s: %w", v.name(), err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("volume: truncate %s: %w", v.name(), err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("volume: truncate %s: %w", v.name(), err)
	}
	return nil
}

// prepareOpenVolume makes cand the volume that receives appends (reopened
// for writing and fsynced, so everything the scan indexed is durable), or
// creates a new one when there is no candidate or it is already full.
func (s *Store) prepareOpenVolume(cand *volume) error {
	if cand != nil {
		f, err := os.OpenFile(cand.path, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("volume: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("volume: sync %s: %w", cand.name(), err)
		}
		cand.f.Close()
		cand.f = f
		cand.sealed = false
		s.open = cand
		if cand.size < s.volumeSize {
			return nil
		}
		cand.sealed = true
	}
	v, err := s.createVolume(s.nextVol)
	if err != nil {
		return err
	}
	s.nextVol++
	s.vols[v.num] = v
	s.open = v
	return nil
}
