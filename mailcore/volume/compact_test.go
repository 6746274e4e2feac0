package volume

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/govhub/govhub/mailcore"
)

// fill puts n blobs of size bytes and deletes all but every keep-th one.
func fill(t testing.TB, s *Store, m *model, tag string, n, size, keep int) []mailcore.BlobID {
	t.Helper()
	var ids, dels []mailcore.BlobID
	for i := range n {
		ids = append(ids, m.put(t, s, gen(fmt.Sprint(tag, i), size+i%7)))
	}
	for i, id := range ids {
		if i%keep != 0 {
			dels = append(dels, id)
		}
	}
	m.del(t, s, dels...)
	return ids
}

// rebuiltStats reopens dir with the snapshot removed and returns the
// store's view, which must match what the running store believed.
func rebuiltStats(t *testing.T, dir string, volSize int64, m *model) mailcore.StoreStats {
	t.Helper()
	removeSnapshot(t, dir)
	s := openStore(t, dir, volSize)
	defer s.Close()
	if !s.Recovery().Rebuilt {
		t.Fatal("not rebuilt")
	}
	m.check(t, s)
	return s.Stats()
}

func TestCompaction(t *testing.T) {
	const vs = 32 << 10
	dir := t.TempDir()
	m := newModel()
	s := openStore(t, dir, vs)
	fill(t, s, m, "compact", 200, 1000, 5)
	before := s.Stats()
	filesBefore := volumeFiles(t, dir)
	s.mu.RLock()
	var sealed []string
	for _, v := range s.vols {
		if v.sealed && float64(v.size-volHeaderSize-v.live) >= 0.3*float64(v.size) {
			sealed = append(sealed, v.name())
		}
	}
	s.mu.RUnlock()
	if len(sealed) < 3 {
		t.Fatalf("only %d sealed volumes to compact", len(sealed))
	}

	st, err := s.Compact(context.Background(), mailcore.CompactOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.VolumesRewritten != len(sealed) || st.BlobsCopied == 0 || st.BytesReclaimed <= 0 {
		t.Fatalf("Compact = %+v; want %d volumes rewritten", st, len(sealed))
	}
	after := s.Stats()
	files := volumeFiles(t, dir)
	for _, name := range sealed {
		if slices.Contains(files, name) {
			t.Errorf("%s still exists after compaction", name)
		}
	}
	if after.Blobs != before.Blobs || after.LiveBytes != before.LiveBytes {
		t.Errorf("live set changed: %+v -> %+v", before, after)
	}
	if after.FileBytes != before.FileBytes-st.BytesReclaimed || after.DeadBytes >= before.DeadBytes {
		t.Errorf("space: %+v -> %+v, reclaimed %d", before, after, st.BytesReclaimed)
	}
	t.Logf("files %v -> %v; %+v -> %+v", filesBefore, files, before, after)
	m.check(t, s)
	if probs, err := s.Verify(context.Background()); err != nil || len(probs) != 0 {
		t.Fatalf("Verify: %v, %v", probs, err)
	}

	// Nothing left to do.
	st, err = s.Compact(context.Background(), mailcore.CompactOptions{})
	if err != nil || st.VolumesRewritten != 0 {
		t.Fatalf("second Compact = %+v, %v", st, err)
	}

	// The accounting matches a rebuild from the files.
	mustClose(t, s)
	s = openStore(t, dir, vs)
	if !s.Recovery().SnapshotLoaded {
		t.Fatal("snapshot after compaction not loaded")
	}
	m.check(t, s)
	mustClose(t, s)
	if got := rebuiltStats(t, dir, vs, m); got != after {
		t.Fatalf("after rebuild Stats = %+v, running store had %+v", got, after)
	}
}

// TestCompactionConcurrent: Put, Get, Delete and open readers keep working,
// for every live blob, while compaction loops.
func TestCompactionConcurrent(t *testing.T) {
	const vs = 16 << 10
	dir := t.TempDir()
	m := newModel()
	s := openStore(t, dir, vs)
	fill(t, s, m, "pre", 300, 800, 2)
	ctx := context.Background()

	stop := make(chan struct{})
	var compactions, rewritten int
	var cwg sync.WaitGroup
	cwg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			st, err := s.Compact(ctx, mailcore.CompactOptions{DeadFraction: 0.05})
			if err != nil {
				t.Errorf("Compact: %v", err)
				return
			}
			compactions++
			rewritten += st.VolumesRewritten
		}
	})

	// Long-lived blobs from before are read throughout, also through
	// BlobReaders held across compactions.
	stable := m.ids()
	stableData := maps.Clone(m.live) // read by the workers; m.live is written at their end
	var wg sync.WaitGroup
	var mu sync.Mutex
	deadline := time.Now().Add(1500 * time.Millisecond)
	for w := range 6 {
		wg.Go(func() {
			var mine []mailcore.BlobID
			mineData := map[mailcore.BlobID][]byte{}
			for i := 0; time.Now().Before(deadline); i++ {
				data := gen(fmt.Sprint("w", w, "-", i), 300+(i*97)%3000)
				id := mailcore.BlobIDOf(data)
				if err := s.Put(ctx, id, data); err != nil {
					t.Errorf("Put: %v", err)
					return
				}
				mine = append(mine, id)
				mineData[id] = data
				if i%2 == 1 {
					del := mine[0]
					mine = mine[1:]
					delete(mineData, del)
					if err := s.Delete(ctx, []mailcore.BlobID{del}); err != nil {
						t.Errorf("Delete: %v", err)
						return
					}
					if _, err := s.Get(ctx, del); !errors.Is(err, mailcore.ErrBlobNotFound) {
						t.Errorf("Get after Delete: %v", err)
						return
					}
				}
				for _, id := range []mailcore.BlobID{mine[len(mine)/2], stable[(i*7+w)%len(stable)]} {
					got, err := s.Get(ctx, id)
					want := mineData[id]
					if want == nil {
						want = stableData[id]
					}
					if err != nil || !bytes.Equal(got, want) {
						t.Errorf("Get of live %s during compaction: %v", id, err)
						return
					}
				}
				if i%5 == 0 {
					id := stable[(i+w)%len(stable)]
					r, err := s.Open(ctx, id)
					if err != nil {
						t.Errorf("Open: %v", err)
						return
					}
					time.Sleep(time.Millisecond) // let a compaction retire the file
					buf := make([]byte, r.Size())
					if n, err := r.ReadAt(buf, 0); n != len(buf) || !bytes.Equal(buf, stableData[id]) {
						t.Errorf("ReadAt of %s across compaction: %d, %v", id, n, err)
					}
					r.Close()
				}
			}
			mu.Lock()
			for id, data := range mineData {
				m.live[id] = data
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	close(stop)
	cwg.Wait()
	if t.Failed() {
		return
	}
	t.Logf("%d compaction passes rewrote %d volumes", compactions, rewritten)
	if rewritten == 0 {
		t.Fatal("no volume was compacted during the test")
	}
	m.check(t, s)
	if probs, err := s.Verify(ctx); err != nil || len(probs) != 0 {
		t.Fatalf("Verify: %v, %v", probs, err)
	}
	want := s.Stats()
	mustClose(t, s)
	if got := rebuiltStats(t, dir, vs, m); got != want {
		t.Fatalf("after rebuild Stats = %+v, running store had %+v", got, want)
	}
}

// TestCompactionRaces: an id deleted, or deleted and put again, while its
// volume is being copied keeps its new state, also after a reopen.
func TestCompactionRaces(t *testing.T) {
	const vs = 16 << 10
	dir := t.TempDir()
	m := newModel()
	s := openStore(t, dir, vs)
	ids := fill(t, s, m, "race", 60, 1000, 3)
	seal(t, s)
	deleted, reput := ids[0], ids[3] // both live, in the first sealed volume
	ctx := context.Background()
	s.hook = func(stage string) error {
		if stage == "temp-written" {
			s.hook = nil
			m.del(t, s, deleted, reput)
			m.put(t, s, gen("race3", 1003)) // the same bytes as reput
		}
		return nil
	}
	st, err := s.Compact(ctx, mailcore.CompactOptions{})
	if err != nil || st.VolumesRewritten == 0 {
		t.Fatalf("Compact = %+v, %v", st, err)
	}
	s.mu.RLock()
	e := s.index[reput]
	onOpen := e.vol == s.open.num
	s.mu.RUnlock()
	if !onOpen {
		t.Fatalf("re-put blob points at volume %d, not the open one", e.vol)
	}
	m.check(t, s)
	want := s.Stats()
	mustClose(t, s)
	s = openStore(t, dir, vs)
	m.check(t, s)
	mustClose(t, s)
	if got := rebuiltStats(t, dir, vs, m); got != want {
		t.Fatalf("after rebuild Stats = %+v, running store had %+v", got, want)
	}
}

var errCrash = errors.New("simulated crash")

// TestCompactionCrash kills compaction at every stage (abandoning the
// store: no snapshot, no cleanup, descriptors and lock dropped), then
// reopens, with and without the snapshot, and checks every live blob.
func TestCompactionCrash(t *testing.T) {
	stages := []string{"copying", "temp-written", "renamed", "switched", "snapshot-written", "before-unlink"}
	for _, stage := range stages {
		for _, rebuild := range []bool{false, true} {
			name := stage
			if rebuild {
				name += "/snapshot lost"
			}
			t.Run(name, func(t *testing.T) {
				const vs = 16 << 10
				dir := t.TempDir()
				m := newModel()
				s := openStore(t, dir, vs)
				ids := fill(t, s, m, "crash", 80, 900, 3)
				mustClose(t, s) // a snapshot exists...
				s = openStore(t, dir, vs)
				m.del(t, s, ids[3], ids[6]) // ...and tombstones after it
				m.put(t, s, gen("late", 500))
				// One live blob of the first volume gets deleted while its
				// volume is being copied.
				during := ids[9]
				hit := false
				s.hook = func(st string) error {
					if st == "copying" && !hit {
						m.del(t, s, during)
					}
					if st == stage && !hit {
						hit = true
						return errCrash
					}
					return nil
				}
				if _, err := s.Compact(context.Background(), mailcore.CompactOptions{}); !errors.Is(err, errCrash) {
					t.Fatalf("Compact: %v, want the crash", err)
				}
				s.abandon()
				if rebuild {
					removeSnapshot(t, dir)
				}
				s = openStore(t, dir, vs)
				if rebuild != s.Recovery().Rebuilt {
					t.Fatalf("recovery = %+v", s.Recovery())
				}
				m.check(t, s)
				if probs, err := s.Verify(context.Background()); err != nil || len(probs) != 0 {
					t.Fatalf("Verify: %v, %v", probs, err)
				}
				// Compaction finishes the job, and the result survives a
				// rebuild.
				if _, err := s.Compact(context.Background(), mailcore.CompactOptions{}); err != nil {
					t.Fatal(err)
				}
				m.check(t, s)
				want := s.Stats()
				mustClose(t, s)
				if got := rebuiltStats(t, dir, vs, m); got != want {
					t.Fatalf("after rebuild Stats = %+v, running store had %+v", got, want)
				}
			})
		}
	}
}

// TestTombstoneDrop checks the tombstone rule of compactVolume: dropped once
// no older dead record can exist, kept while one may.
func TestTombstoneDrop(t *testing.T) {
	ctx := context.Background()
	compact := func(t *testing.T, s *Store, frac float64) mailcore.CompactStats {
		t.Helper()
		st, err := s.Compact(ctx, mailcore.CompactOptions{DeadFraction: frac})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	t.Run("dropped when the dead record is gone", func(t *testing.T) {
		dir := t.TempDir()
		m := newModel()
		s := openStore(t, dir, 1<<20)
		a := m.put(t, s, gen("a", 1000))
		seal(t, s) // vol 1: a
		m.del(t, s, a)
		seal(t, s) // vol 2: tombstone(a)
		if st := compact(t, s, 0.3); st.VolumesRewritten != 2 {
			t.Fatalf("Compact = %+v", st)
		}
		if files := volumeFiles(t, dir); len(files) != 1 {
			t.Fatalf("volumes left: %v; want only the open one", files)
		}
		if b, tb := countRecords(t, dir); b != 0 || tb != 0 {
			t.Fatalf("%d blob and %d tombstone records left", b, tb)
		}
		mustClose(t, s)
		rebuiltStats(t, dir, 1<<20, m)
	})
	t.Run("kept while an older dead record exists", func(t *testing.T) {
		dir := t.TempDir()
		m := newModel()
		s := openStore(t, dir, 1<<20)
		a := m.put(t, s, gen("a", 100))
		b := m.put(t, s, gen("b", 50000))
		seal(t, s) // vol 1: a, b (mostly live)
		m.del(t, s, a)
		c := m.put(t, s, gen("c", 5000))
		m.del(t, s, c)
		seal(t, s) // vol 2: tombstone(a), c, tombstone(c): all dead
		if st := compact(t, s, 0.5); st.VolumesRewritten != 1 {
			t.Fatalf("Compact = %+v", st)
		}
		if _, tombs := countRecords(t, dir); tombs != 2 {
			t.Fatalf("%d tombstones left; want both kept (vol 1 still holds dead a)", tombs)
		}
		m.check(t, s)
		mustClose(t, s)
		rebuiltStats(t, dir, 1<<20, m)

		// Once b goes too, vol 1 is compacted away, and the tombstones
		// with it.
		s = openStore(t, dir, 1<<20)
		m.del(t, s, b)
		seal(t, s)
		compact(t, s, 0.5)
		if blobs, tombs := countRecords(t, dir); blobs != 0 || tombs != 0 {
			t.Fatalf("%d blobs and %d tombstones left; want none", blobs, tombs)
		}
		if files := volumeFiles(t, dir); len(files) != 1 {
			t.Fatalf("volumes left: %v; want only the open one", files)
		}
		m.check(t, s)
		mustClose(t, s)
		rebuiltStats(t, dir, 1<<20, m)
	})
	t.Run("dropped when the id is live again", func(t *testing.T) {
		dir := t.TempDir()
		m := newModel()
		s := openStore(t, dir, 1<<20)
		big := m.put(t, s, gen("big", 50000))
		a := m.put(t, s, gen("a", 100))
		seal(t, s) // vol 1: big, a
		m.del(t, s, a)
		m.put(t, s, gen("filler", 3000))
		m.del(t, s, mailcore.BlobIDOf(gen("filler", 3000)))
		seal(t, s) // vol 2: tombstone(a), filler, tombstone(filler)
		m.put(t, s, gen("a", 100))
		if st := compact(t, s, 0.5); st.VolumesRewritten != 1 {
			t.Fatalf("Compact = %+v", st)
		}
		if _, tombs := countRecords(t, dir); tombs != 1 {
			t.Fatalf("%d tombstones left; want tombstone(filler) only", tombs)
		}
		_ = big
		m.check(t, s)
		mustClose(t, s)
		rebuiltStats(t, dir, 1<<20, m)
	})
}

// TestCompactSnapshotFailure: if the snapshot after the switch cannot be
// written, the old file stays on disk until a later snapshot is durable.
func TestCompactSnapshotFailure(t *testing.T) {
	dir := t.TempDir()
	m := newModel()
	s := openStore(t, dir, 1<<20)
	keep := m.put(t, s, gen("keep", 1000))
	var junk []mailcore.BlobID
	for i := range 5 {
		junk = append(junk, m.put(t, s, gen(fmt.Sprint("j", i), 1000)))
	}
	seal(t, s)
	m.del(t, s, junk...)
	// Block the snapshot's temp file name with a directory.
	tmp := filepath.Join(dir, snapName+".tmp")
	if err := os.Mkdir(tmp, 0o750); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Compact(context.Background(), mailcore.CompactOptions{}); err == nil {
		t.Fatal("Compact succeeded without a snapshot")
	}
	if !slices.Contains(volumeFiles(t, dir), volName(1)) {
		t.Fatal("old volume removed before a snapshot stopped naming it")
	}
	m.check(t, s)
	os.Remove(tmp)
	mustClose(t, s)
	if slices.Contains(volumeFiles(t, dir), volName(1)) {
		t.Fatal("old volume still there after a successful snapshot")
	}
	s = openStore(t, dir, 1<<20)
	m.check(t, s)
	_ = keep
}
