package volume

import (
	"bufio"
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

// Snapshot file (index.snap), little-endian:
//
//	0  8  magic "GHVINDEX"
//	8  4  format version (1)
//	12 4  number of volumes V
//	16 8  next sequence number
//	24 8  number of entries E
//	V × 24: volume number u32, reserved u32, covered offset u64, deadLo u64
//	E × 56: id [32], seq u64, offset u64, volume u32, data length u32
//	4     CRC-32C of everything before
//
// "covered" is the offset up to which the index reflects the volume's
// records; Open scans each volume from there (from its header if the volume
// is not listed). A snapshot covers only records that were durable when it
// was written.
const (
	snapName        = "index.snap"
	snapHeaderSize  = 32
	snapVolSize     = 24
	snapEntrySize   = 56
	snapVersion     = 1
	snapTrailerSize = 4
)

var snapMagic = [8]byte{'G', 'H', 'V', 'I', 'N', 'D', 'E', 'X'}

type snapVol struct {
	num     uint32
	covered int64
	deadLo  uint64
}

type snapshot struct {
	nextSeq uint64
	vols    []snapVol
	index   map[mailcore.BlobID]entry
}

// crcReader checksums what it reads.
type crcReader struct {
	r   io.Reader
	crc uint32
}

func (c *crcReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.crc = crc32.Update(c.crc, castagnoli, p[:n])
	return n, err
}

// readSnapshot loads and validates index.snap against the volumes on disk.
// Any inconsistency rejects the whole snapshot (the caller rebuilds).
func readSnapshot(path string, vols map[uint32]*volume) (*snapshot, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	cr := &crcReader{r: bufio.NewReaderSize(f, 1<<20)}
	var hdr [snapHeaderSize]byte
	if _, err := io.ReadFull(cr, hdr[:]); err != nil {
		return nil, fmt.Errorf("snapshot header: %w", err)
	}
	if string(hdr[:8]) != string(snapMagic[:]) {
		return nil, errors.New("snapshot: bad magic")
	}
	if v := binary.LittleEndian.Uint32(hdr[8:]); v != snapVersion {
		return nil, fmt.Errorf("snapshot: unsupported version %d", v)
	}
	nv := uint64(binary.LittleEndian.Uint32(hdr[12:]))
	sn := &snapshot{nextSeq: binary.LittleEndian.Uint64(hdr[16:])}
	ne := binary.LittleEndian.Uint64(hdr[24:])
	// Sizes must add up exactly before anything is allocated from them.
	if ne > uint64(fi.Size())/snapEntrySize || nv > uint64(fi.Size())/snapVolSize ||
		snapHeaderSize+nv*snapVolSize+ne*snapEntrySize+snapTrailerSize != uint64(fi.Size()) {
		return nil, errors.New("snapshot: size does not match its counts")
	}
	covered := make(map[uint32]int64, nv)
	for range nv {
		var b [snapVolSize]byte
		if _, err := io.ReadFull(cr, b[:]); err != nil {
			return nil, fmt.Errorf("snapshot: %w", err)
		}
		sv := snapVol{
			num:     binary.LittleEndian.Uint32(b[0:]),
			covered: int64(binary.LittleEndian.Uint64(b[8:])),
			deadLo:  binary.LittleEndian.Uint64(b[16:]),
		}
		v := vols[sv.num]
		switch {
		case v == nil:
			return nil, fmt.Errorf("snapshot: names missing %s", volName(sv.num))
		case v.badHeader:
			return nil, fmt.Errorf("snapshot: names damaged %s", volName(sv.num))
		case sv.covered < volHeaderSize || sv.covered > v.size:
			return nil, fmt.Errorf("snapshot: covers %s to %d but the file has %d bytes", volName(sv.num), sv.covered, v.size)
		}
		if _, dup := covered[sv.num]; dup {
			return nil, fmt.Errorf("snapshot: lists %s twice", volName(sv.num))
		}
		covered[sv.num] = sv.covered
		sn.vols = append(sn.vols, sv)
	}
	sn.index = make(map[mailcore.BlobID]entry, ne)
	for range ne {
		var b [snapEntrySize]byte
		if _, err := io.ReadFull(cr, b[:]); err != nil {
			return nil, fmt.Errorf("snapshot: %w", err)
		}
		var id mailcore.BlobID
		copy(id[:], b[:32])
		e := entry{
			seq: binary.LittleEndian.Uint64(b[32:]),
			off: int64(binary.LittleEndian.Uint64(b[40:])),
			vol: binary.LittleEndian.Uint32(b[48:]),
			n:   binary.LittleEndian.Uint32(b[52:]),
		}
		c, ok := covered[e.vol]
		if !ok || e.seq == 0 || e.seq >= sn.nextSeq || e.off < volHeaderSize || e.off > c-e.recSize() {
			return nil, fmt.Errorf("snapshot: entry %s points outside what it covers", id)
		}
		if _, dup := sn.index[id]; dup {
			return nil, fmt.Errorf("snapshot: entry %s twice", id)
		}
		sn.index[id] = e
	}
	want := cr.crc
	var tail [snapTrailerSize]byte
	if _, err := io.ReadFull(cr, tail[:]); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	if binary.LittleEndian.Uint32(tail[:]) != want {
		return nil, errors.New("snapshot: checksum mismatch")
	}
	return sn, nil
}

// writeSnapshot records the index durably: it captures the index, the volume
// table and each volume's size in one consistent view, writes them to a
// temporary file, waits until every record the view covers is fsynced,
// fsyncs the file, renames it over index.snap and fsyncs the directory.
// Volume files retired by compaction whose removal was waiting for a
// snapshot are removed afterwards.
func (s *Store) writeSnapshot() error {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()

	path := filepath.Join(s.dir, snapName)
	tmp := path + ".tmp"

	s.mu.RLock()
	changes := s.changes
	if changes == s.snapChanges {
		s.mu.RUnlock()
		return nil
	}
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		s.mu.RUnlock()
		return fmt.Errorf("snapshot: %w", err)
	}
	upTo := s.committed
	err = s.encodeSnapshot(f)
	s.mu.RUnlock()

	if err == nil {
		// The view may cover appends whose group fsync is still running.
		err = s.waitDurable(upTo)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(s.dir)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("snapshot: %w", err)
	}
	s.snapChanges = changes
	if len(s.retired) > 0 {
		for _, v := range s.retired {
			if err := os.Remove(v.path); err != nil && !os.IsNotExist(err) {
				s.log.Warn("removing retired volume failed", "file", v.name(), "err", err)
			}
			v.release()
		}
		s.retired = nil
		if err := syncDir(s.dir); err != nil {
			s.log.Warn("fsync of directory failed", "err", err)
		}
	}
	return nil
}

// encodeSnapshot writes the snapshot; the caller holds s.mu.
func (s *Store) encodeSnapshot(f *os.File) error {
	cw := &crcWriter{w: bufio.NewWriterSize(f, 1<<20)}
	nums := make([]uint32, 0, len(s.vols))
	for n := range s.vols {
		nums = append(nums, n)
	}
	slices.Sort(nums)

	var hdr [snapHeaderSize]byte
	copy(hdr[:], snapMagic[:])
	binary.LittleEndian.PutUint32(hdr[8:], snapVersion)
	binary.LittleEndian.PutUint32(hdr[12:], uint32(len(nums)))
	binary.LittleEndian.PutUint64(hdr[16:], s.committed+1)
	binary.LittleEndian.PutUint64(hdr[24:], uint64(len(s.index)))
	cw.Write(hdr[:])
	for _, n := range nums {
		v := s.vols[n]
		var b [snapVolSize]byte
		binary.LittleEndian.PutUint32(b[0:], n)
		binary.LittleEndian.PutUint64(b[8:], uint64(v.size))
		binary.LittleEndian.PutUint64(b[16:], v.deadLo)
		cw.Write(b[:])
	}
	var b [snapEntrySize]byte
	for id, e := range s.index {
		copy(b[:32], id[:])
		binary.LittleEndian.PutUint64(b[32:], e.seq)
		binary.LittleEndian.PutUint64(b[40:], uint64(e.off))
		binary.LittleEndian.PutUint32(b[48:], e.vol)
		binary.LittleEndian.PutUint32(b[52:], e.n)
		cw.Write(b[:])
	}
	var tail [snapTrailerSize]byte
	binary.LittleEndian.PutUint32(tail[:], cw.crc)
	cw.Write(tail[:])
	if cw.err != nil {
		return cw.err
	}
	return cw.w.Flush()
}

// crcWriter checksums what it writes and remembers the first error.
type crcWriter struct {
	w   *bufio.Writer
	crc uint32
	err error
}

func (c *crcWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	c.crc = crc32.Update(c.crc, castagnoli, p)
	n, err := c.w.Write(p)
	c.err = err
	return n, err
}
