package volume

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync/atomic"

	"github.com/govhub/govhub/mailcore"
)

// lookup finds the live entry for id and pins its volume file; the caller
// must release the volume.
func (s *Store) lookup(id mailcore.BlobID) (entry, *volume, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkOpen(); err != nil {
		return entry{}, nil, err
	}
	e, ok := s.index[id]
	if !ok {
		return entry{}, nil, fmt.Errorf("volume: %s: %w", id, mailcore.ErrBlobNotFound)
	}
	v := s.vols[e.vol]
	v.acquire()
	return e, v, nil
}

// Get reads the whole record with one pread and checks its framing, its
// CRC-32C and the SHA-256 of the data against id.
func (s *Store) Get(ctx context.Context, id mailcore.BlobID) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	e, v, err := s.lookup(id)
	if err != nil {
		return nil, err
	}
	defer v.release()
	buf := make([]byte, e.recSize())
	if _, err := v.f.ReadAt(buf, e.off); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("volume: %s at %s@%d: record cut short: %w", id, v.name(), e.off, mailcore.ErrBlobCorrupt)
		}
		return nil, fmt.Errorf("volume: read %s at %s@%d: %w", id, v.name(), e.off, err)
	}
	if reason := checkRecordBytes(buf, id, e); reason != "" {
		return nil, fmt.Errorf("volume: %s at %s@%d: %s: %w", id, v.name(), e.off, reason, mailcore.ErrBlobCorrupt)
	}
	return buf[recHeaderSize : recHeaderSize+int(e.n)], nil
}

// checkRecordBytes validates a whole record read for entry e of id.
func checkRecordBytes(buf []byte, id mailcore.BlobID, e entry) string {
	r, reason := parseRecHeader(buf[:recHeaderSize])
	switch {
	case reason != "":
		return reason
	case r.typ != recBlob || r.id != id || r.seq != e.seq || r.n != int64(e.n):
		return "record header does not match the index"
	}
	body := len(buf) - recTrailerSize
	if crc32.Checksum(buf[:body], castagnoli) != binary.LittleEndian.Uint32(buf[body:]) {
		return "checksum mismatch"
	}
	if mailcore.BlobIDOf(buf[recHeaderSize:body]) != id {
		return "content does not match id"
	}
	return ""
}

// Open returns a reader over the blob's data in its volume file. Reads are
// preads and are not checksum-verified. The reader keeps the volume file
// open, even if compaction retires it meanwhile, until it is closed.
func (s *Store) Open(ctx context.Context, id mailcore.BlobID) (mailcore.BlobReader, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	e, v, err := s.lookup(id)
	if err != nil {
		return nil, err
	}
	// Check the header once so a reader never serves another blob's bytes.
	var hdr [recHeaderSize]byte
	if _, err := v.f.ReadAt(hdr[:], e.off); err != nil {
		v.release()
		return nil, fmt.Errorf("volume: read %s at %s@%d: %w", id, v.name(), e.off, err)
	}
	if r, reason := parseRecHeader(hdr[:]); reason != "" || r.id != id || r.seq != e.seq {
		v.release()
		return nil, fmt.Errorf("volume: %s at %s@%d: bad record header: %w", id, v.name(), e.off, mailcore.ErrBlobCorrupt)
	}
	return &blobReader{v: v, off: e.off + recHeaderSize, n: int64(e.n)}, nil
}

type blobReader struct {
	v      *volume
	off, n int64
	closed atomic.Bool
}

func (r *blobReader) Size() int64 { return r.n }

func (r *blobReader) ReadAt(p []byte, off int64) (int, error) {
	if r.closed.Load() {
		return 0, ErrClosed
	}
	if off < 0 {
		return 0, errors.New("volume: negative offset")
	}
	if off >= r.n {
		return 0, io.EOF
	}
	want := p
	if rest := r.n - off; int64(len(want)) > rest {
		want = want[:rest]
	}
	n, err := r.v.f.ReadAt(want, r.off+off)
	if err == nil && n < len(p) {
		err = io.EOF
	}
	return n, err
}

func (r *blobReader) Close() error {
	if r.closed.CompareAndSwap(false, true) {
		r.v.release()
	}
	return nil
}

// Has reports whether id is live.
func (s *Store) Has(ctx context.Context, id mailcore.BlobID) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkOpen(); err != nil {
		return false, err
	}
	_, ok := s.index[id]
	return ok, nil
}

// Walk calls fn for every blob live when Walk started. It copies the ids
// first (36 bytes per blob) so fn may call the store.
func (s *Store) Walk(ctx context.Context, fn func(id mailcore.BlobID, size int64) error) error {
	type item struct {
		id mailcore.BlobID
		n  uint32
	}
	s.mu.RLock()
	if err := s.checkOpen(); err != nil {
		s.mu.RUnlock()
		return err
	}
	items := make([]item, 0, len(s.index))
	for id, e := range s.index {
		items = append(items, item{id, e.n})
	}
	s.mu.RUnlock()
	for i, it := range items {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if err := fn(it.id, int64(it.n)); err != nil {
			return err
		}
	}
	return nil
}

// Stats reports space use. LiveBytes counts the data of live blobs,
// DeadBytes the records compaction could reclaim (deleted or superseded
// blobs, tombstones, damaged bytes); FileBytes also includes the file
// headers and the 60 bytes of framing of each live record.
func (s *Store) Stats() mailcore.StoreStats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := mailcore.StoreStats{Blobs: int64(len(s.index)), LiveBytes: s.liveData, Volumes: len(s.vols)}
	for _, v := range s.vols {
		st.FileBytes += v.size
		st.DeadBytes += v.size - volHeaderSize - v.live
	}
	return st
}
