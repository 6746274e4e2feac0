package volume

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/govhub/govhub/mailcore"
)

// DefaultDeadFraction is the compaction threshold used when
// CompactOptions.DeadFraction is zero.
const DefaultDeadFraction = 0.3

// hookError carries a test failpoint's error out of Compact untouched: a
// simulated crash, after which nothing may be cleaned up.
type hookError struct{ error }

func (s *Store) stage(name string) error {
	if s.hook == nil {
		return nil
	}
	if err := s.hook(name); err != nil {
		return hookError{err}
	}
	return nil
}

// planItem is one record of a volume being compacted that is carried over.
type planItem struct {
	off  int64
	size int64
	typ  byte
	seq  uint64
	id   mailcore.BlobID
	nOff int64 // offset in the new volume
}

// Compact rewrites every sealed volume whose dead fraction (bytes of
// records the index does not point at, tombstones included, over the file
// size) is at least opts.DeadFraction, and whose rewrite would reclaim at
// least that fraction. See doc.go for the steps and why a crash at any
// point loses nothing. Put, Get and Delete keep working meanwhile. A volume
// with damaged framing, or a live record failing its checksum, is left
// alone and reported in the error; the other volumes are still compacted.
func (s *Store) Compact(ctx context.Context, opts mailcore.CompactOptions) (mailcore.CompactStats, error) {
	var st mailcore.CompactStats
	if s.ro {
		return st, mailcore.ErrReadOnly
	}
	threshold := opts.DeadFraction
	if threshold <= 0 {
		threshold = DefaultDeadFraction
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()

	s.mu.RLock()
	if err := s.checkOpen(); err != nil {
		s.mu.RUnlock()
		return st, err
	}
	var cands []*volume
	for _, v := range s.vols {
		dead := v.size - volHeaderSize - v.live
		if v.sealed && !v.badHeader && dead > 0 && float64(dead) >= threshold*float64(v.size) {
			cands = append(cands, v)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(cands, func(a, b *volume) int { return int(a.num) - int(b.num) })

	var errs []error
	for _, v := range cands {
		if err := ctxErr(ctx, s.closeCtx); err != nil {
			return st, err
		}
		copied, reclaimed, done, err := s.compactVolume(ctx, v, threshold)
		if he := (hookError{}); errors.As(err, &he) {
			return st, he.error
		}
		if err != nil {
			if ctxErr(ctx, s.closeCtx) != nil {
				return st, err
			}
			errs = append(errs, err)
			continue
		}
		if done {
			st.VolumesRewritten++
			st.BlobsCopied += copied
			st.BytesReclaimed += reclaimed
		}
	}
	if st.VolumesRewritten > 0 {
		s.log.Info("compaction done", "volumes", st.VolumesRewritten, "blobs_copied", st.BlobsCopied,
			"bytes_reclaimed", st.BytesReclaimed)
	}
	return st, errors.Join(errs...)
}

func ctxErr(ctx, closeCtx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if closeCtx.Err() != nil {
		return ErrClosed
	}
	return nil
}

// compactVolume rewrites one sealed volume v:
//
//  1. plan: read its record headers; keep each blob record the index points
//     at this exact location, and each tombstone still needed (below);
//  2. copy the kept records, byte for byte with their sequence numbers, to
//     vol-N.dat.tmp (N a fresh number, header flagged "compacted"), fsync;
//  3. rename it to vol-N.dat, fsync the directory;
//  4. under the lock, repoint the index entries that still point at their
//     old location (an id deleted or rewritten meanwhile is left alone and
//     its copy is dead), and drop v from the table;
//  5. write the snapshot;
//  6. unlink v (its descriptor is closed once no reader uses it).
//
// A tombstone for id X with sequence t is needed only while some record of
// X with a lower sequence number may still exist in another file. It is
// dropped when X is live again with a higher sequence number (the highest
// sequence number wins anyway), or when no other volume holds a dead blob
// record with a sequence number below t: every record of X older than t
// is dead, so then none exists. Each volume tracks the lowest sequence
// number of its dead blob records (deadLo; 0 when it has damaged bytes
// whose records cannot be read).
func (s *Store) compactVolume(ctx context.Context, v *volume, threshold float64) (copied int, reclaimed int64, done bool, err error) {
	s.mu.RLock()
	if s.vols[v.num] != v {
		s.mu.RUnlock()
		return 0, 0, false, nil
	}
	v.acquire()
	size := v.size
	minDead := noDead
	for _, o := range s.vols {
		if o != v {
			minDead = min(minDead, o.deadLo)
		}
	}
	s.mu.RUnlock()
	s.snapMu.Lock()
	if len(s.retired) > 0 {
		minDead = 0 // retired files still on disk hold dead records
	}
	s.snapMu.Unlock()
	defer v.release()

	plan, err := s.planCompaction(v, size, minDead)
	if err != nil {
		return 0, 0, false, err
	}
	newSize := int64(0)
	if len(plan) > 0 {
		newSize = volHeaderSize
		for _, it := range plan {
			newSize += it.size
		}
	}
	if float64(size-newSize) < threshold*float64(size) {
		return 0, 0, false, nil // mostly tombstones that must stay
	}

	var nv *volume
	if len(plan) > 0 {
		nv, err = s.writeCompacted(ctx, v, plan, newSize)
		if err != nil {
			return 0, 0, false, err
		}
	}

	// Switch.
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		if nv != nil {
			nv.release()
		}
		return 0, 0, false, ErrClosed
	}
	if nv != nil {
		s.vols[nv.num] = nv
		for _, it := range plan {
			if it.typ != recBlob {
				continue
			}
			e, ok := s.index[it.id]
			if ok && e.vol == v.num && e.off == it.off && e.seq == it.seq {
				s.index[it.id] = entry{seq: e.seq, off: it.nOff, vol: nv.num, n: e.n}
				v.live -= it.size
				v.count--
				nv.live += it.size
				nv.count++
				copied++
			} else {
				nv.markDead(it.seq)
			}
		}
	}
	if v.count != 0 {
		// Cannot happen: nothing appends to a sealed volume, and the plan
		// saw every entry pointing here. Keep the file rather than guess.
		n := v.count
		s.changes++
		s.mu.Unlock()
		return copied, 0, false, fmt.Errorf("volume: compact %s: %d entries still point at it; kept", v.name(), n)
	}
	delete(s.vols, v.num)
	s.changes++
	s.mu.Unlock()
	if err := s.stage("switched"); err != nil {
		return copied, 0, false, err
	}

	if err := s.writeSnapshot(); err != nil {
		// The old snapshot still names v, so v must stay until a later
		// snapshot that does not; it takes over the table's reference.
		s.snapMu.Lock()
		s.retired = append(s.retired, v)
		s.snapMu.Unlock()
		return copied, size - newSize, true, err
	}
	if err := s.stage("snapshot-written"); err != nil {
		return copied, 0, false, err
	}
	if err := s.stage("before-unlink"); err != nil {
		return copied, 0, false, err
	}
	if err := os.Remove(v.path); err != nil {
		s.log.Warn("removing compacted volume failed", "file", v.name(), "err", err)
	} else if err := syncDir(s.dir); err != nil {
		s.log.Warn("fsync of directory failed", "err", err)
	}
	v.release() // the table's reference
	s.log.Info("volume compacted", "from", v.name(), "to", nameOrNone(nv), "blobs_copied", copied,
		"bytes_reclaimed", size-newSize)
	return copied, size - newSize, true, nil
}

func nameOrNone(v *volume) string {
	if v == nil {
		return "(none)"
	}
	return v.name()
}

// planCompaction reads v's record headers (one pread each) and lists what
// to carry over. A damaged record makes it refuse: the volume stays as it is
// for fsck to look at.
func (s *Store) planCompaction(v *volume, size int64, minDead uint64) ([]planItem, error) {
	var plan []planItem
	var hdr [recHeaderSize]byte
	for off := int64(volHeaderSize); off < size; {
		if size-off < recOverhead {
			return nil, fmt.Errorf("volume: compact %s: damaged record at %d; not compacted", v.name(), off)
		}
		if _, err := v.f.ReadAt(hdr[:], off); err != nil {
			return nil, fmt.Errorf("volume: compact %s: %w", v.name(), err)
		}
		r, reason := parseRecHeader(hdr[:])
		if reason == "" && r.n > size-off-recOverhead {
			reason = "record runs past end of file"
		}
		if reason != "" {
			return nil, fmt.Errorf("volume: compact %s: damaged record at %d (%s); not compacted", v.name(), off, reason)
		}
		r.off = off
		s.mu.RLock()
		e, ok := s.index[r.id]
		s.mu.RUnlock()
		keep := false
		if r.typ == recBlob {
			keep = ok && e.vol == v.num && e.off == off && e.seq == r.seq
		} else {
			superseded := ok && e.seq > r.seq
			keep = !superseded && minDead < r.seq
		}
		if keep {
			plan = append(plan, planItem{off: off, size: r.size(), typ: r.typ, seq: r.seq, id: r.id})
		}
		off = r.end()
	}
	return plan, nil
}

// writeCompacted performs steps 2 and 3 of compactVolume and returns the
// new volume, not yet in the table.
func (s *Store) writeCompacted(ctx context.Context, v *volume, plan []planItem, newSize int64) (*volume, error) {
	s.wmu.Lock()
	num := s.nextVol
	s.nextVol++
	s.wmu.Unlock()
	path := filepath.Join(s.dir, volName(num))
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return nil, fmt.Errorf("volume: compact %s: %w", v.name(), err)
	}
	fail := func(err error) (*volume, error) {
		f.Close()
		os.Remove(tmp)
		return nil, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.Write(encodeVolHeader(num, volFlagCompacted))
	pos := int64(volHeaderSize)
	buf := make([]byte, 64<<10)
	for i := range plan {
		if err := ctxErr(ctx, s.closeCtx); err != nil {
			return fail(err)
		}
		if err := copyRecord(w, v.f, plan[i].off, plan[i].size, buf); err != nil {
			return fail(fmt.Errorf("volume: compact %s: record at %d: %w; not compacted", v.name(), plan[i].off, err))
		}
		plan[i].nOff = pos
		pos += plan[i].size
		if i == 0 {
			if err := w.Flush(); err != nil {
				return fail(err)
			}
			if err := s.stage("copying"); err != nil {
				return nil, err
			}
		}
	}
	if err := w.Flush(); err != nil {
		return fail(fmt.Errorf("volume: compact %s: %w", v.name(), err))
	}
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("volume: compact %s: %w", v.name(), err))
	}
	s.fsyncs.Add(1)
	if pos != newSize {
		return fail(fmt.Errorf("volume: compact %s: wrote %d bytes, planned %d", v.name(), pos, newSize))
	}
	if err := s.stage("temp-written"); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(fmt.Errorf("volume: compact %s: %w", v.name(), err))
	}
	if err := syncDir(s.dir); err != nil {
		// The rename may or may not survive a crash; either is safe.
		f.Close()
		return nil, fmt.Errorf("volume: compact %s: %w", v.name(), err)
	}
	if err := s.stage("renamed"); err != nil {
		return nil, err
	}
	nv := &volume{num: num, path: path, f: f, compacted: true, sealed: true, size: newSize, deadLo: noDead}
	nv.refs.Store(1)
	return nv, nil
}

// copyRecord copies the record at off in src to dst, checking its CRC-32C
// on the way, so compaction never spreads a damaged record.
func copyRecord(dst io.Writer, src io.ReaderAt, off, size int64, buf []byte) error {
	crc := uint32(0)
	end := off + size - recTrailerSize
	for pos := off; pos < end; {
		chunk := buf[:min(int64(len(buf)), end-pos)]
		if _, err := src.ReadAt(chunk, pos); err != nil {
			return err
		}
		crc = crc32.Update(crc, castagnoli, chunk)
		if _, err := dst.Write(chunk); err != nil {
			return err
		}
		pos += int64(len(chunk))
	}
	var tail [recTrailerSize]byte
	if _, err := src.ReadAt(tail[:], end); err != nil {
		return err
	}
	if binary.LittleEndian.Uint32(tail[:]) != crc {
		return errors.New("checksum mismatch")
	}
	_, err := dst.Write(tail[:])
	return err
}
