package volume

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"syscall"

	"github.com/govhub/govhub/mailcore"
)

// Put stores data under id. It returns once the record is fsynced; a Put of
// an id already live writes nothing but still waits until that earlier
// record is durable. Concurrent Puts share fsyncs (group commit).
func (s *Store) Put(ctx context.Context, id mailcore.BlobID, data []byte) error {
	seq, err := s.appendBlob(ctx, id, data)
	if err != nil {
		return err
	}
	return s.waitDurable(seq)
}

// Append stores data under id like Put but returns as soon as the record is
// written and indexed (readable at once), before it is durable; a later
// Sync makes it durable. It lets the delivery committer pay one fsync for a
// whole batch (mailcore.BlobBatcher).
func (s *Store) Append(ctx context.Context, id mailcore.BlobID, data []byte) error {
	_, err := s.appendBlob(ctx, id, data)
	return err
}

// Sync returns once everything appended (or deleted) before the call is on
// stable storage. It shares fsyncs with concurrent Puts.
func (s *Store) Sync(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.ro {
		return nil
	}
	s.mu.RLock()
	upTo := s.committed
	err := s.checkOpen()
	s.mu.RUnlock()
	if err != nil {
		return err
	}
	return s.waitDurable(upTo)
}

// appendBlob writes the record for data unless id is live, and returns the
// sequence number of the record that holds id (which may still be waiting
// for its fsync).
func (s *Store) appendBlob(ctx context.Context, id mailcore.BlobID, data []byte) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if s.ro {
		return 0, mailcore.ErrReadOnly
	}
	if int64(len(data)) > maxBlobSize {
		return 0, fmt.Errorf("volume: put %s: %d bytes exceeds the %d byte limit", id, len(data), int64(maxBlobSize))
	}
	if mailcore.BlobIDOf(data) != id {
		return 0, fmt.Errorf("volume: put %s: id is not the SHA-256 of the data", id)
	}
	s.mu.RLock()
	e, ok := s.index[id]
	err := s.checkOpen()
	s.mu.RUnlock()
	if err != nil {
		return 0, err
	}
	if ok {
		return e.seq, nil
	}

	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.writableLocked(); err != nil {
		return 0, err
	}
	// Check again under wmu: a concurrent Put of the same bytes may have
	// appended it meanwhile.
	s.mu.RLock()
	e, ok = s.index[id]
	s.mu.RUnlock()
	if ok {
		return e.seq, nil
	}
	return s.appendBlobLocked(id, data)
}

// Delete removes ids from the index and appends a tombstone for each one
// that was live, so that rebuilding the index does not resurrect them. It
// returns once the tombstones are fsynced (group-committed like Put). Ids
// not live are skipped; Delete still waits for anything appended before it,
// which covers a tombstone for the same id still waiting for its fsync.
func (s *Store) Delete(ctx context.Context, ids []mailcore.BlobID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.ro {
		return mailcore.ErrReadOnly
	}
	s.wmu.Lock()
	if err := s.writableLocked(); err != nil {
		s.wmu.Unlock()
		return err
	}
	var buf []byte
	var dels []mailcore.BlobID
	seen := make(map[mailcore.BlobID]bool, len(ids))
	seq := s.nextSeq
	s.mu.RLock()
	for _, id := range ids {
		if _, ok := s.index[id]; !ok || seen[id] {
			continue
		}
		seen[id] = true
		dels = append(dels, id)
		buf = appendRecord(buf, recTombstone, seq, id, nil)
		seq++
	}
	upTo := s.committed
	s.mu.RUnlock()
	if len(dels) == 0 {
		s.wmu.Unlock()
		return s.waitDurable(upTo)
	}
	v, off, err := s.writeLocked(buf)
	if err != nil {
		s.wmu.Unlock()
		return err
	}
	s.mu.Lock()
	for _, id := range dels {
		// Still present: only appenders (holding wmu) remove entries;
		// compaction may have moved it, so read it again.
		e := s.index[id]
		old := s.vols[e.vol]
		old.live -= e.recSize()
		old.count--
		old.markDead(e.seq)
		s.liveData -= int64(e.n)
		delete(s.index, id)
	}
	v.size = off + int64(len(buf))
	s.committed = seq - 1
	s.changes++
	s.mu.Unlock()
	s.nextSeq = seq
	s.afterAppendLocked(int64(len(buf)))
	s.wmu.Unlock()
	return s.waitDurable(seq - 1)
}

// writableLocked reports why nothing may be appended; the caller holds wmu.
func (s *Store) writableLocked() error {
	if s.closed {
		return ErrClosed
	}
	return s.broken
}

// appendBlobLocked appends one blob record and indexes it; the caller holds
// wmu. The record is not yet durable when it returns.
func (s *Store) appendBlobLocked(id mailcore.BlobID, data []byte) (uint64, error) {
	seq := s.nextSeq
	size := recOverhead + int64(len(data))
	var v *volume
	var off int64
	var err error
	if size <= 64<<10 {
		v, off, err = s.writeLocked(appendRecord(make([]byte, 0, size), recBlob, seq, id, data))
	} else {
		// Large bodies are written in place rather than copied into a
		// framing buffer.
		v, off, err = s.writePartsLocked(seq, id, data)
	}
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	s.index[id] = entry{seq: seq, off: off, vol: v.num, n: uint32(len(data))}
	v.size = off + size
	v.live += size
	v.count++
	s.liveData += int64(len(data))
	s.committed = seq
	s.changes++
	s.mu.Unlock()
	s.nextSeq = seq + 1
	s.afterAppendLocked(size)
	return seq, nil
}

// roomLocked rolls to a new volume first if a record of size bytes would
// push a non-empty open volume past VolumeSize. A record larger than
// VolumeSize thus gets a volume of its own.
func (s *Store) roomLocked(size int64) error {
	if s.open.size > volHeaderSize && s.open.size+size > s.volumeSize {
		return s.rollLocked()
	}
	return nil
}

// writeLocked appends buf at the end of the open volume and returns where.
func (s *Store) writeLocked(buf []byte) (*volume, int64, error) {
	if err := s.roomLocked(int64(len(buf))); err != nil {
		return nil, 0, err
	}
	v := s.open
	off := v.size
	if _, err := v.f.WriteAt(buf, off); err != nil {
		return nil, 0, s.undoWriteLocked(v, off, err)
	}
	return v, off, nil
}

func (s *Store) writePartsLocked(seq uint64, id mailcore.BlobID, data []byte) (*volume, int64, error) {
	if err := s.roomLocked(recOverhead + int64(len(data))); err != nil {
		return nil, 0, err
	}
	v := s.open
	off := v.size
	var hdr [recHeaderSize]byte
	putRecHeader(hdr[:], recBlob, seq, id, int64(len(data)))
	crc := crc32.Update(crc32.Update(0, castagnoli, hdr[:]), castagnoli, data)
	var tail [recTrailerSize]byte
	binary.LittleEndian.PutUint32(tail[:], crc)
	pos := off
	for _, part := range [][]byte{hdr[:], data, tail[:]} {
		if _, err := v.f.WriteAt(part, pos); err != nil {
			return nil, 0, s.undoWriteLocked(v, off, err)
		}
		pos += int64(len(part))
	}
	return v, off, nil
}

// undoWriteLocked cuts off a partly written record so later appends do not
// land behind garbage. If even that fails the store stops writing.
func (s *Store) undoWriteLocked(v *volume, off int64, werr error) error {
	err := fmt.Errorf("volume: append to %s: %w", v.name(), werr)
	if terr := v.f.Truncate(off); terr != nil {
		s.broken = fmt.Errorf("volume: store stopped writing after a failed append to %s: %w", v.name(), werr)
		s.log.Error("cannot undo failed append; refusing further writes", "file", v.name(), "err", werr, "truncate_err", terr)
	}
	return err
}

// afterAppendLocked seals a full volume and triggers a snapshot once enough
// bytes went by since the last one.
func (s *Store) afterAppendLocked(n int64) {
	s.sinceSnap += n
	if s.sinceSnap >= s.snapEvery {
		s.sinceSnap = 0
		s.kickSnapshot()
	}
	if s.open.size >= s.volumeSize {
		if err := s.rollLocked(); err != nil {
			// The record is written; rolling is retried on the next append.
			s.log.Warn("sealing full volume failed", "file", s.open.name(), "err", err)
		}
	}
}

// rollLocked seals the open volume (fsync; it is never written again) and
// opens a new one. The caller holds wmu.
func (s *Store) rollLocked() error {
	old := s.open
	if err := old.f.Sync(); err != nil {
		s.broken = fmt.Errorf("volume: fsync %s: %w", old.name(), err)
		return s.broken
	}
	s.fsyncs.Add(1)
	// Everything appended so far lives in old or in earlier, sealed volumes.
	s.advanceDurable(s.committed)
	v, err := s.createVolume(s.nextVol)
	if err != nil {
		return err
	}
	s.nextVol++
	s.mu.Lock()
	old.sealed = true
	s.vols[v.num] = v
	s.changes++
	s.mu.Unlock()
	s.open = v
	s.log.Debug("volume sealed", "file", old.name(), "bytes", old.size, "next", v.name())
	return nil
}

func (s *Store) advanceDurable(seq uint64) {
	for {
		cur := s.durable.Load()
		if seq <= cur || s.durable.CompareAndSwap(cur, seq) {
			return
		}
	}
}

// waitDurable returns once the record with sequence number seq (and so
// every earlier one) is on stable storage.
//
// Group commit: whoever holds syncMu is the leader. It notes the last
// sequence number appended so far, fsyncs the open volume, and publishes that
// number as durable. Writers that appended meanwhile queue on syncMu; when
// they get it they usually find their record already covered and return
// without an fsync of their own.
func (s *Store) waitDurable(seq uint64) error {
	if seq <= s.durable.Load() {
		return nil
	}
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	if seq <= s.durable.Load() {
		return nil
	}
	s.wmu.Lock()
	if s.broken != nil {
		err := s.broken
		s.wmu.Unlock()
		return err
	}
	target := s.committed
	v := s.open
	v.acquire()
	s.wmu.Unlock()

	if s.beforeSync != nil {
		s.beforeSync()
	}
	// fdatasync, not fsync: it still makes the grown file size durable
	// (the metadata needed to read the data back, fdatasync(2)) but skips
	// timestamps, which halves the cost of an append's sync on ext4.
	err := syncData(v.f)
	v.release()
	s.fsyncs.Add(1)
	if err != nil {
		s.wmu.Lock()
		if s.broken == nil {
			// After a failed fsync the kernel may have dropped the dirty
			// pages; nothing later can be promised durable.
			s.broken = fmt.Errorf("volume: fsync %s: %w", v.name(), err)
			s.log.Error("fsync failed; refusing further writes", "file", v.name(), "err", err)
		}
		err = s.broken
		s.wmu.Unlock()
		return err
	}
	s.advanceDurable(target)
	return nil
}

// syncData flushes f's data and the metadata needed to read it back.
func syncData(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}
