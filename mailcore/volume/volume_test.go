package volume

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/govhub/govhub/mailcore"
	"github.com/govhub/govhub/mailcore/blobtest"
)

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func openStore(t testing.TB, dir string, volSize int64) *Store {
	t.Helper()
	s, err := Open(Options{Dir: dir, VolumeSize: volSize, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("Open %s: %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustClose(t testing.TB, s *Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// gen returns n deterministic pseudo-random bytes named by tag.
func gen(tag string, n int) []byte {
	var seed [32]byte
	copy(seed[:], tag)
	b := make([]byte, n)
	rand.NewChaCha8(seed).Read(b)
	return b
}

// model is what a store should hold.
type model struct {
	live map[mailcore.BlobID][]byte
	dead map[mailcore.BlobID]bool
}

func newModel() *model {
	return &model{live: map[mailcore.BlobID][]byte{}, dead: map[mailcore.BlobID]bool{}}
}

func (m *model) put(t testing.TB, s *Store, data []byte) mailcore.BlobID {
	t.Helper()
	id := mailcore.BlobIDOf(data)
	if err := s.Put(context.Background(), id, data); err != nil {
		t.Fatalf("Put: %v", err)
	}
	m.live[id] = data
	delete(m.dead, id)
	return id
}

func (m *model) del(t testing.TB, s *Store, ids ...mailcore.BlobID) {
	t.Helper()
	if err := s.Delete(context.Background(), ids); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	for _, id := range ids {
		delete(m.live, id)
		m.dead[id] = true
	}
}

func (m *model) ids() []mailcore.BlobID {
	var ids []mailcore.BlobID
	for id := range m.live {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b mailcore.BlobID) int { return bytes.Compare(a[:], b[:]) })
	return ids
}

// check verifies every live blob byte for byte, every deleted one absent,
// and that Walk lists exactly the live set.
func (m *model) check(t testing.TB, s *Store) {
	t.Helper()
	ctx := context.Background()
	for id, want := range m.live {
		got, err := s.Get(ctx, id)
		if err != nil {
			t.Fatalf("Get %s: %v", id, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("Get %s: wrong bytes", id)
		}
	}
	for id := range m.dead {
		if _, err := s.Get(ctx, id); !errors.Is(err, mailcore.ErrBlobNotFound) {
			t.Fatalf("Get of deleted %s: %v, want ErrBlobNotFound", id, err)
		}
	}
	n := 0
	if err := s.Walk(ctx, func(id mailcore.BlobID, size int64) error {
		n++
		if want, ok := m.live[id]; !ok || int64(len(want)) != size {
			return fmt.Errorf("walk: unexpected %s (%d bytes)", id, size)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != len(m.live) {
		t.Fatalf("Walk listed %d blobs, want %d", n, len(m.live))
	}
	if st := s.Stats(); st.Blobs != int64(len(m.live)) {
		t.Fatalf("Stats.Blobs = %d, want %d", st.Blobs, len(m.live))
	}
}

// volumeFiles lists the volume file names in dir.
func volumeFiles(t testing.TB, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		if _, ok := parseVolName(de.Name()); ok {
			names = append(names, de.Name())
		}
	}
	return names
}

// seal rolls the open volume now.
func seal(t testing.TB, s *Store) {
	t.Helper()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.rollLocked(); err != nil {
		t.Fatal(err)
	}
}

// countRecords scans every volume file in dir and counts valid records.
func countRecords(t testing.TB, dir string) (blobs, tombs int) {
	t.Helper()
	for _, name := range volumeFiles(t, dir) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		rr := newRecordReader(bytes.NewReader(b), int64(len(b)))
		if _, err := rr.scan(volHeaderSize, false, func(r recInfo, _ bool) {
			if r.typ == recBlob {
				blobs++
			} else {
				tombs++
			}
		}); err != nil {
			t.Fatal(err)
		}
	}
	return blobs, tombs
}

func removeSnapshot(t testing.TB, dir string) {
	t.Helper()
	if err := os.Remove(filepath.Join(dir, snapName)); err != nil {
		t.Fatal(err)
	}
}

func TestConformance(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) mailcore.BlobStore {
		return openStore(t, t.TempDir(), 256<<10)
	})
}

// TestConformanceWhileCompacting runs the suite with compaction looping in
// the background, so every operation races a compaction.
func TestConformanceWhileCompacting(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) mailcore.BlobStore {
		s := openStore(t, t.TempDir(), 64<<10)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() {
			for ctx.Err() == nil {
				if _, err := s.Compact(ctx, mailcore.CompactOptions{DeadFraction: 0.01}); err != nil && ctx.Err() == nil {
					t.Errorf("Compact: %v", err)
					return
				}
				time.Sleep(time.Millisecond)
			}
		})
		t.Cleanup(func() { cancel(); wg.Wait() })
		return s
	})
}

func TestPutWrongIDWritesNothing(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, 0)
	data := gen("x", 100)
	if err := s.Put(context.Background(), mailcore.BlobIDOf([]byte("other")), data); err == nil {
		t.Fatal("Put with wrong id succeeded")
	}
	if st := s.Stats(); st.FileBytes != volHeaderSize {
		t.Fatalf("FileBytes = %d after a refused Put", st.FileBytes)
	}
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	m := newModel()
	s := openStore(t, dir, 16<<10)
	var ids []mailcore.BlobID
	for i := range 100 {
		ids = append(ids, m.put(t, s, gen(fmt.Sprint("reopen", i), 500+i*31)))
	}
	for i := 0; i < len(ids); i += 3 {
		m.del(t, s, ids[i])
	}
	m.check(t, s)
	want := s.Stats()
	if want.Volumes < 3 {
		t.Fatalf("only %d volumes; VolumeSize did not seal", want.Volumes)
	}
	mustClose(t, s)
	records := 100 + 34

	t.Run("snapshot used", func(t *testing.T) {
		s := openStore(t, dir, 16<<10)
		rep := s.Recovery()
		if !rep.SnapshotLoaded || rep.Rebuilt || rep.RecordsScanned != 0 {
			t.Fatalf("recovery = %+v; want the snapshot loaded and nothing scanned", rep)
		}
		m.check(t, s)
		if got := s.Stats(); got != want {
			t.Fatalf("Stats = %+v, want %+v", got, want)
		}
		mustClose(t, s)
	})
	t.Run("snapshot deleted", func(t *testing.T) {
		removeSnapshot(t, dir)
		s := openStore(t, dir, 16<<10)
		rep := s.Recovery()
		if rep.SnapshotLoaded || !rep.Rebuilt || rep.RecordsScanned != records || rep.SnapshotProblem != "" {
			t.Fatalf("recovery = %+v; want a rebuild scanning %d records", rep, records)
		}
		m.check(t, s)
		if got := s.Stats(); got != want {
			t.Fatalf("Stats = %+v, want %+v", got, want)
		}
		mustClose(t, s)
		if _, err := os.Stat(filepath.Join(dir, snapName)); err != nil {
			t.Fatalf("Close wrote no snapshot: %v", err)
		}
	})
	damage := []struct {
		name    string
		fn      func(b []byte) []byte
		problem string
	}{
		{"bit flipped", func(b []byte) []byte { b[len(b)/2] ^= 1; return b }, "checksum"},
		{"truncated", func(b []byte) []byte { return b[:len(b)-10] }, "size"},
		{"empty", func(b []byte) []byte { return nil }, "header"},
		{"bad magic", func(b []byte) []byte { b[0] = 'X'; return b }, "magic"},
	}
	for _, d := range damage {
		t.Run("snapshot "+d.name, func(t *testing.T) {
			path := filepath.Join(dir, snapName)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, d.fn(b), 0o640); err != nil {
				t.Fatal(err)
			}
			s := openStore(t, dir, 16<<10)
			rep := s.Recovery()
			if rep.SnapshotLoaded || !rep.Rebuilt || !strings.Contains(rep.SnapshotProblem, d.problem) {
				t.Fatalf("recovery = %+v; want a rebuild because of %q", rep, d.problem)
			}
			m.check(t, s)
			if got := s.Stats(); got != want {
				t.Fatalf("Stats = %+v, want %+v", got, want)
			}
			mustClose(t, s)
		})
	}
	t.Run("snapshot plus tail", func(t *testing.T) {
		s := openStore(t, dir, 16<<10)
		for i := range 20 {
			m.put(t, s, gen(fmt.Sprint("tail", i), 700))
		}
		m.del(t, s, ids[1], ids[2])
		s.abandon() // a crash: no snapshot for these
		s = openStore(t, dir, 16<<10)
		rep := s.Recovery()
		if !rep.SnapshotLoaded || rep.RecordsScanned != 22 {
			t.Fatalf("recovery = %+v; want the snapshot plus a 22-record tail", rep)
		}
		m.check(t, s)
		mustClose(t, s)
	})
	t.Run("snapshot names a missing volume", func(t *testing.T) {
		s := openStore(t, dir, 16<<10)
		// Make the first sealed volume entirely dead, then remove it by
		// hand behind the snapshot's back.
		s.mu.RLock()
		var victims []mailcore.BlobID
		for id, e := range s.index {
			if e.vol == 1 {
				victims = append(victims, id)
			}
		}
		s.mu.RUnlock()
		m.del(t, s, victims...)
		mustClose(t, s)
		if err := os.Remove(filepath.Join(dir, volName(1))); err != nil {
			t.Fatal(err)
		}
		s = openStore(t, dir, 16<<10)
		rep := s.Recovery()
		if rep.SnapshotLoaded || !strings.Contains(rep.SnapshotProblem, "missing") {
			t.Fatalf("recovery = %+v; want the snapshot rejected for naming a missing volume", rep)
		}
		m.check(t, s)
	})
}

func TestTornTail(t *testing.T) {
	type cut struct {
		name string
		// damage returns the new file contents given the file and the
		// offsets of the last record.
		damage   func(b []byte, off, end int64) []byte
		lastLive bool // the last record survives
		readOnly bool
	}
	rnd := gen("garbage", 5000)
	cuts := []cut{
		{name: "one byte of header", damage: func(b []byte, off, _ int64) []byte { return b[:off+1] }},
		{name: "header minus one", damage: func(b []byte, off, _ int64) []byte { return b[:off+recHeaderSize-1] }},
		{name: "header only", damage: func(b []byte, off, _ int64) []byte { return b[:off+recHeaderSize] }},
		{name: "part of data", damage: func(b []byte, off, _ int64) []byte { return b[:off+recHeaderSize+100] }},
		{name: "all but one byte", damage: func(b []byte, _, end int64) []byte { return b[:end-1] }},
		{name: "checksum mismatch", damage: func(b []byte, off, _ int64) []byte { b[off+recHeaderSize+5] ^= 0x40; return b }},
		{name: "garbage appended", damage: func(b []byte, _, _ int64) []byte { return append(b, rnd...) }, lastLive: true},
		{name: "zeros appended", damage: func(b []byte, _, _ int64) []byte { return append(b, make([]byte, 4096)...) }, lastLive: true},
		{name: "half record appended", damage: func(b []byte, off, end int64) []byte {
			return append(b, slices.Clone(b[off:off+(end-off)/2])...)
		}, lastLive: true},
		{name: "read-only does not repair", damage: func(b []byte, off, _ int64) []byte { return b[:off+recHeaderSize+100] }, readOnly: true},
	}
	for _, c := range cuts {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			m := newModel()
			s := openStore(t, dir, 1<<20)
			var last mailcore.BlobID
			for i := range 10 {
				last = m.put(t, s, gen(fmt.Sprint("torn", i), 1000+i))
			}
			s.mu.RLock()
			e := s.index[last]
			s.mu.RUnlock()
			path := filepath.Join(dir, volName(e.vol))
			s.abandon()
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(b)) != e.off+e.recSize() {
				t.Fatalf("the last record is not at the end of %s", path)
			}
			b = c.damage(b, e.off, e.off+e.recSize())
			if err := os.WriteFile(path, b, 0o640); err != nil {
				t.Fatal(err)
			}
			wantOff := e.off
			if c.lastLive {
				wantOff = e.off + e.recSize()
			} else {
				delete(m.live, last)
				m.dead[last] = true
			}

			if c.readOnly {
				ro, err := Open(Options{Dir: dir, ReadOnly: true})
				if err != nil {
					t.Fatal(err)
				}
				defer ro.Close()
				tt := ro.Recovery().TornTail
				if tt == nil || tt.Truncated || tt.Offset != wantOff {
					t.Fatalf("read-only TornTail = %+v", tt)
				}
				m.check(t, ro)
				if fi, _ := os.Stat(path); fi.Size() != int64(len(b)) {
					t.Fatalf("read-only open changed the file: %d bytes, was %d", fi.Size(), len(b))
				}
				return
			}

			s = openStore(t, dir, 1<<20)
			tt := s.Recovery().TornTail
			if tt == nil || !tt.Truncated || tt.File != volName(e.vol) || tt.Offset != wantOff ||
				tt.Bytes != int64(len(b))-wantOff {
				t.Fatalf("TornTail = %+v; want %s cut to %d", tt, volName(e.vol), wantOff)
			}
			if len(s.Recovery().Corrupt) != 0 {
				t.Fatalf("torn tail also reported as corruption: %+v", s.Recovery().Corrupt)
			}
			if fi, _ := os.Stat(path); fi.Size() != wantOff {
				t.Fatalf("file is %d bytes after recovery, want %d", fi.Size(), wantOff)
			}
			m.check(t, s)
			// Appends continue cleanly after the cut.
			m.put(t, s, gen("after", 3000))
			if !c.lastLive {
				m.put(t, s, gen("torn9", 1009)) // the lost one, again
			}
			mustClose(t, s)
			s = openStore(t, dir, 1<<20)
			if rep := s.Recovery(); rep.TornTail != nil || len(rep.Corrupt) != 0 {
				t.Fatalf("second recovery = %+v", rep)
			}
			m.check(t, s)
			mustClose(t, s)
			removeSnapshot(t, dir)
			s = openStore(t, dir, 1<<20)
			m.check(t, s)
		})
	}
}

func TestTombstoneSurvivesRebuild(t *testing.T) {
	dir := t.TempDir()
	m := newModel()
	s := openStore(t, dir, 8<<10)
	a := m.put(t, s, gen("a", 3000))
	m.put(t, s, gen("b", 3000))
	seal(t, s)
	m.del(t, s, a)
	seal(t, s) // the tombstone now sits in a sealed volume, the record in an older one
	mustClose(t, s)

	removeSnapshot(t, dir)
	s = openStore(t, dir, 8<<10)
	if !s.Recovery().Rebuilt {
		t.Fatal("not rebuilt")
	}
	m.check(t, s)

	// A re-put after delete survives a rebuild too, and so does a second
	// delete after that, with or without a snapshot.
	m.put(t, s, gen("a", 3000))
	mustClose(t, s)
	removeSnapshot(t, dir)
	s = openStore(t, dir, 8<<10)
	m.check(t, s)
	m.del(t, s, a)
	s.abandon() // crash: no snapshot on disk at all now
	s = openStore(t, dir, 8<<10)
	if !s.Recovery().Rebuilt {
		t.Fatal("not rebuilt")
	}
	m.check(t, s)
	mustClose(t, s)
	s = openStore(t, dir, 8<<10)
	if !s.Recovery().SnapshotLoaded {
		t.Fatal("snapshot not loaded")
	}
	m.check(t, s)
}

func TestLock(t *testing.T) {
	dir := t.TempDir()
	m := newModel()
	s := openStore(t, dir, 0)
	id := m.put(t, s, gen("locked", 100))

	if s2, err := Open(Options{Dir: dir}); !errors.Is(err, mailcore.ErrStoreLocked) {
		if err == nil {
			s2.Close()
		}
		t.Fatalf("second Open: %v, want ErrStoreLocked", err)
	}

	ro, err := Open(Options{Dir: dir, ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only Open beside a writer: %v", err)
	}
	m.check(t, ro)
	ctx := context.Background()
	other := gen("other", 10)
	if err := ro.Put(ctx, mailcore.BlobIDOf(other), other); !errors.Is(err, mailcore.ErrReadOnly) {
		t.Fatalf("read-only Put: %v", err)
	}
	if err := ro.Delete(ctx, []mailcore.BlobID{id}); !errors.Is(err, mailcore.ErrReadOnly) {
		t.Fatalf("read-only Delete: %v", err)
	}
	if _, err := ro.Compact(ctx, mailcore.CompactOptions{}); !errors.Is(err, mailcore.ErrReadOnly) {
		t.Fatalf("read-only Compact: %v", err)
	}
	if probs, err := ro.Verify(ctx); err != nil || len(probs) != 0 {
		t.Fatalf("read-only Verify: %v, %v", probs, err)
	}
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ro.Close(); err != nil {
		t.Fatal("second Close:", err)
	}

	mustClose(t, s)
	mustClose(t, s) // idempotent
	if _, err := s.Get(ctx, id); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if err := s.Put(ctx, mailcore.BlobIDOf(other), other); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close: %v", err)
	}
	s = openStore(t, dir, 0) // the lock was released
	m.check(t, s)
}

func TestReadOnlyMissingDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nope")
	if _, err := Open(Options{Dir: dir, ReadOnly: true}); err == nil {
		t.Fatal("read-only Open of a missing directory succeeded")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatal("read-only Open created the directory")
	}
}

func TestLeftoverTempFiles(t *testing.T) {
	dir := t.TempDir()
	m := newModel()
	s := openStore(t, dir, 0)
	m.put(t, s, gen("t", 100))
	mustClose(t, s)
	for _, name := range []string{"index.snap.tmp", "vol-000009.dat.tmp"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("junk"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	ro, err := Open(Options{Dir: dir, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(ro.Recovery().TempFilesRemoved); n != 0 {
		t.Fatalf("read-only open removed %d files", n)
	}
	ro.Close()
	s = openStore(t, dir, 0)
	if got := s.Recovery().TempFilesRemoved; len(got) != 2 {
		t.Fatalf("TempFilesRemoved = %v", got)
	}
	m.check(t, s)
}

// TestCorruptSealedRecord: a damaged record inside a sealed volume is
// reported, not truncated, and everything else in the volume is served.
func TestCorruptSealedRecord(t *testing.T) {
	dir := t.TempDir()
	m := newModel()
	s := openStore(t, dir, 1<<20)
	var ids []mailcore.BlobID
	for i := range 10 {
		ids = append(ids, m.put(t, s, gen(fmt.Sprint("c", i), 2000)))
	}
	seal(t, s)
	m.put(t, s, gen("in the open volume", 500))
	victim := ids[3]
	s.mu.RLock()
	e := s.index[victim]
	s.mu.RUnlock()
	mustClose(t, s)

	path := filepath.Join(dir, volName(e.vol))
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	f.ReadAt(b[:], e.off+recHeaderSize+77)
	b[0] ^= 0x10
	f.WriteAt(b[:], e.off+recHeaderSize+77)
	f.Close()
	size := func() int64 { fi, _ := os.Stat(path); return fi.Size() }
	before := size()
	where := fmt.Sprintf("%s@%d", volName(e.vol), e.off)

	// With the snapshot the damage is not scanned at Open, but Get and
	// Verify find it.
	s = openStore(t, dir, 1<<20)
	if _, err := s.Get(context.Background(), victim); !errors.Is(err, mailcore.ErrBlobCorrupt) {
		t.Fatalf("Get of the damaged blob: %v, want ErrBlobCorrupt", err)
	}
	probs, err := s.Verify(context.Background())
	if err != nil || len(probs) != 1 || probs[0].ID != victim || probs[0].Where != where {
		t.Fatalf("Verify = %+v, %v; want one problem for %s at %s", probs, err, victim, where)
	}
	delete(m.live, victim)
	for id := range m.live {
		if _, err := s.Get(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	}
	// Compaction will not copy the damaged live record, so it keeps the
	// volume and says so.
	m.del(t, s, ids[0], ids[1], ids[2], ids[5])
	if _, err := s.Compact(context.Background(), mailcore.CompactOptions{}); err == nil || !strings.Contains(err.Error(), volName(e.vol)) {
		t.Fatalf("Compact over a damaged live record: %v", err)
	}
	if size() != before {
		t.Fatal("damaged volume rewritten")
	}
	mustClose(t, s)

	// A rebuild reports it, resyncs past it and serves the rest.
	removeSnapshot(t, dir)
	s = openStore(t, dir, 1<<20)
	rep := s.Recovery()
	if len(rep.Corrupt) != 1 || rep.Corrupt[0].Where != where || rep.Corrupt[0].ID != victim || rep.TornTail != nil {
		t.Fatalf("recovery = %+v; want one corrupt record at %s", rep, where)
	}
	if size() != before {
		t.Fatal("a sealed volume was truncated")
	}
	m.dead[victim] = true
	m.check(t, s)
	if probs, _ := s.Verify(context.Background()); len(probs) != 1 || probs[0].Where != where {
		t.Fatalf("Verify after rebuild = %+v", probs)
	}
	// The bytes are rewritten away only as dead space by compaction; the
	// live records are copied with their checksums verified.
	if _, err := s.Compact(context.Background(), mailcore.CompactOptions{DeadFraction: 0.05}); err != nil {
		t.Fatal(err)
	}
	m.check(t, s)
	if probs, _ := s.Verify(context.Background()); len(probs) != 0 {
		t.Fatalf("Verify after compaction = %+v", probs)
	}
}

// TestCorruptOpenVolumeMiddle: damage in the middle of the open volume with
// good records after it is not a torn tail and must not be truncated.
func TestCorruptOpenVolumeMiddle(t *testing.T) {
	dir := t.TempDir()
	m := newModel()
	s := openStore(t, dir, 1<<20)
	var ids []mailcore.BlobID
	for i := range 10 {
		ids = append(ids, m.put(t, s, gen(fmt.Sprint("m", i), 2000)))
	}
	s.mu.RLock()
	e := s.index[ids[4]]
	s.mu.RUnlock()
	s.abandon()
	path := filepath.Join(dir, volName(e.vol))
	b, _ := os.ReadFile(path)
	copy(b[e.off:], "XXXX") // smash the record magic
	os.WriteFile(path, b, 0o640)

	s = openStore(t, dir, 1<<20)
	rep := s.Recovery()
	if rep.TornTail != nil || len(rep.Corrupt) != 1 {
		t.Fatalf("recovery = %+v; want one corrupt record and no truncation", rep)
	}
	delete(m.live, ids[4])
	m.dead[ids[4]] = true
	m.check(t, s)
	m.put(t, s, gen("after", 100))
	mustClose(t, s)
	s = openStore(t, dir, 1<<20)
	m.check(t, s)
}

// TestGroupCommit: writers that append while an fsync is in flight are all
// covered by the next one.
func TestGroupCommit(t *testing.T) {
	s := openStore(t, t.TempDir(), 0)
	const writers = 20
	var first sync.Once
	release := make(chan struct{})
	s.beforeSync = func() {
		// Hold the first leader's fsync until every writer has appended.
		first.Do(func() { <-release })
	}
	base := s.fsyncs.Load()
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			data := gen(fmt.Sprint("gc", i), 10<<10)
			if err := s.Put(context.Background(), mailcore.BlobIDOf(data), data); err != nil {
				t.Error(err)
			}
		})
	}
	for {
		s.mu.RLock()
		n := len(s.index)
		s.mu.RUnlock()
		if n == writers {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if n := s.fsyncs.Load() - base; n > 2 {
		t.Fatalf("%d writers needed %d fsyncs; want at most 2 (the held one and one for everyone else)", writers, n)
	}
}

// TestDedupeWaitsForDurability: a Put that finds its id already indexed
// but not yet fsynced returns only after that fsync.
func TestDedupeWaitsForDurability(t *testing.T) {
	s := openStore(t, t.TempDir(), 0)
	data := gen("dup", 1000)
	id := mailcore.BlobIDOf(data)
	var inSync atomic.Bool
	release := make(chan struct{})
	var once sync.Once
	s.beforeSync = func() { once.Do(func() { inSync.Store(true); <-release }) }
	done1 := make(chan error)
	go func() { done1 <- s.Put(context.Background(), id, data) }()
	for !inSync.Load() {
		time.Sleep(time.Millisecond)
	}
	done2 := make(chan error)
	go func() { done2 <- s.Put(context.Background(), id, data) }()
	select {
	case err := <-done2:
		t.Fatalf("second Put returned (%v) before the first record was durable", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-done1; err != nil {
		t.Fatal(err)
	}
	if err := <-done2; err != nil {
		t.Fatal(err)
	}
	if b, _ := countRecords(t, s.dir); b != 1 {
		t.Fatalf("%d blob records written, want 1", b)
	}
}

func TestLargeBlobOwnVolume(t *testing.T) {
	dir := t.TempDir()
	m := newModel()
	s := openStore(t, dir, 64<<10)
	m.put(t, s, gen("small", 1000))
	big := m.put(t, s, gen("big", 300<<10))
	m.put(t, s, gen("small2", 1000))
	s.mu.RLock()
	e := s.index[big]
	v := s.vols[e.vol]
	bigSize := v.size
	s.mu.RUnlock()
	if e.off != volHeaderSize || bigSize != volHeaderSize+e.recSize() {
		t.Fatalf("big record at %d in a %d-byte volume; want alone in its volume", e.off, bigSize)
	}
	m.check(t, s)
	mustClose(t, s)
	removeSnapshot(t, dir)
	s = openStore(t, dir, 64<<10)
	m.check(t, s)
}

// TestBlobReaderOutlivesCompaction: a reader opened before its volume is
// compacted away keeps reading the right bytes.
func TestBlobReaderOutlivesCompaction(t *testing.T) {
	dir := t.TempDir()
	m := newModel()
	s := openStore(t, dir, 1<<20)
	keep := m.put(t, s, gen("keep", 5000))
	var junk []mailcore.BlobID
	for i := range 10 {
		junk = append(junk, m.put(t, s, gen(fmt.Sprint("junk", i), 5000)))
	}
	seal(t, s)
	r, err := s.Open(context.Background(), keep)
	if err != nil {
		t.Fatal(err)
	}
	m.del(t, s, junk...)
	st, err := s.Compact(context.Background(), mailcore.CompactOptions{})
	if err != nil || st.VolumesRewritten != 1 {
		t.Fatalf("Compact = %+v, %v", st, err)
	}
	if slices.Contains(volumeFiles(t, dir), volName(1)) {
		t.Fatal("old volume still there")
	}
	buf := make([]byte, 5000)
	if n, err := r.ReadAt(buf, 0); n != 5000 || err != nil || !bytes.Equal(buf, m.live[keep]) {
		t.Fatalf("ReadAt after compaction: %d, %v", n, err)
	}
	r.Close()
	m.check(t, s)
}

// TestAppendSync: appended blobs are readable before Sync, and one Sync
// makes a whole batch durable with one fsync.
func TestAppendSync(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, 0)
	m := newModel()
	ctx := context.Background()
	base := s.fsyncs.Load()
	for i := range 50 {
		data := gen(fmt.Sprint("append", i), 4000)
		if err := s.Append(ctx, mailcore.BlobIDOf(data), data); err != nil {
			t.Fatal(err)
		}
		m.live[mailcore.BlobIDOf(data)] = data
	}
	if n := s.fsyncs.Load() - base; n != 0 {
		t.Fatalf("Append did %d fsyncs", n)
	}
	m.check(t, s)
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if n := s.fsyncs.Load() - base; n != 1 {
		t.Fatalf("Sync did %d fsyncs, want 1", n)
	}
	s.mu.RLock()
	committed := s.committed
	s.mu.RUnlock()
	if s.durable.Load() < committed {
		t.Fatal("Sync returned before everything appended was durable")
	}
	if err := s.Sync(ctx); err != nil || s.fsyncs.Load()-base != 1 {
		t.Fatalf("idle Sync: %v, %d fsyncs", err, s.fsyncs.Load()-base)
	}
	s.abandon()
	s = openStore(t, dir, 0)
	m.check(t, s)
}

// TestBackgroundSnapshot: after enough appended bytes a snapshot is written
// without Close, so a crash afterwards only scans the tail.
func TestBackgroundSnapshot(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, 0)
	s.snapEvery = 16 << 10 // before any append; read under wmu afterwards
	m := newModel()
	for i := range 20 {
		m.put(t, s, gen(fmt.Sprint("bg", i), 1000))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.snapMu.Lock()
		done := s.snapChanges > 0
		s.snapMu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no background snapshot")
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.abandon()
	s = openStore(t, dir, 0)
	rep := s.Recovery()
	if !rep.SnapshotLoaded || rep.RecordsScanned >= 20 {
		t.Fatalf("recovery = %+v; want the background snapshot and a short tail", rep)
	}
	m.check(t, s)
}
