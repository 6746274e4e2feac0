package blobtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/govhub/govhub/mailcore"
)

// Run runs the suite. open must return a fresh, empty store for each
// subtest and arrange (with t.Cleanup) for it to be closed.
func Run(t *testing.T, open func(t *testing.T) mailcore.BlobStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s mailcore.BlobStore)
	}{
		{"RoundTrip", testRoundTrip},
		{"WrongID", testWrongID},
		{"Dedupe", testDedupe},
		{"Has", testHas},
		{"NotFound", testNotFound},
		{"ReadAt", testReadAt},
		{"Delete", testDelete},
		{"Walk", testWalk},
		{"Concurrent", testConcurrent},
		{"ContextCancel", testContextCancel},
		{"Batcher", testBatcher},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

// blob returns n deterministic pseudo-random bytes named by tag.
func blob(tag string, n int) ([]byte, mailcore.BlobID) {
	var seed [32]byte
	copy(seed[:], tag)
	r := rand.NewChaCha8(seed)
	b := make([]byte, n)
	r.Read(b)
	return b, mailcore.BlobIDOf(b)
}

func mustPut(t testing.TB, s mailcore.BlobStore, data []byte) mailcore.BlobID {
	t.Helper()
	id := mailcore.BlobIDOf(data)
	if err := s.Put(context.Background(), id, data); err != nil {
		t.Fatalf("Put %s (%d bytes): %v", id, len(data), err)
	}
	return id
}

func mustGet(t testing.TB, s mailcore.BlobStore, id mailcore.BlobID, want []byte) {
	t.Helper()
	got, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get %s: %v", id, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get %s: got %d bytes, want %d bytes (contents differ)", id, len(got), len(want))
	}
}

func mustNotFound(t testing.TB, s mailcore.BlobStore, id mailcore.BlobID) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Get(ctx, id); !errors.Is(err, mailcore.ErrBlobNotFound) {
		t.Fatalf("Get %s: err = %v, want ErrBlobNotFound", id, err)
	}
	if r, err := s.Open(ctx, id); !errors.Is(err, mailcore.ErrBlobNotFound) {
		if err == nil {
			r.Close()
		}
		t.Fatalf("Open %s: err = %v, want ErrBlobNotFound", id, err)
	}
	if ok, err := s.Has(ctx, id); err != nil || ok {
		t.Fatalf("Has %s = %v, %v; want false, nil", id, ok, err)
	}
}

// checkStats compares the optional space report with the expected live set.
func checkStats(t testing.TB, s mailcore.BlobStore, blobs, liveBytes int64) {
	t.Helper()
	bs, ok := s.(mailcore.BlobStats)
	if !ok {
		return
	}
	st := bs.Stats()
	if st.Blobs != blobs || st.LiveBytes != liveBytes {
		t.Fatalf("Stats: blobs=%d live_bytes=%d, want %d and %d", st.Blobs, st.LiveBytes, blobs, liveBytes)
	}
}

func testRoundTrip(t *testing.T, s mailcore.BlobStore) {
	var total int64
	for i, n := range []int{0, 1, 100, 4096, 64<<10 + 7, 3<<20 + 5} {
		data, id := blob(fmt.Sprint("roundtrip", i), n)
		orig := bytes.Clone(data)
		mustPut(t, s, data)
		total += int64(n)
		// The store owns a copy: the caller may reuse its buffer.
		for j := range data {
			data[j] ^= 0xff
		}
		mustGet(t, s, id, orig)
		// And a caller may scribble on what Get returned.
		got, err := s.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		for j := range got {
			got[j] ^= 0xff
		}
		mustGet(t, s, id, orig)
		if ok, err := s.Has(context.Background(), id); err != nil || !ok {
			t.Fatalf("Has %s after Put = %v, %v", id, ok, err)
		}
	}
	checkStats(t, s, 6, total)
}

func testWrongID(t *testing.T, s mailcore.BlobStore) {
	ctx := context.Background()
	data, id := blob("wrong-a", 1000)
	_, other := blob("wrong-b", 1000)
	if err := s.Put(ctx, other, data); err == nil {
		t.Fatal("Put with an id that is not the SHA-256 of the data succeeded")
	}
	if err := s.Put(ctx, mailcore.BlobID{}, nil); err == nil {
		t.Fatal("Put of empty data under the zero id succeeded")
	}
	mustNotFound(t, s, other)
	mustNotFound(t, s, id)
	checkStats(t, s, 0, 0)
	// The store still works.
	mustPut(t, s, data)
	mustGet(t, s, id, data)
}

func testDedupe(t *testing.T, s mailcore.BlobStore) {
	data, id := blob("dedupe", 10_000)
	mustPut(t, s, data)
	mustPut(t, s, bytes.Clone(data))
	mustGet(t, s, id, data)
	checkStats(t, s, 1, int64(len(data)))

	// Many deliveries of the same body at once still store it once.
	other, oid := blob("dedupe-concurrent", 20_000)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			if err := s.Put(context.Background(), oid, bytes.Clone(other)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Put of one body: %v", err)
	}
	mustGet(t, s, oid, other)
	checkStats(t, s, 2, int64(len(data)+len(other)))
}

func testHas(t *testing.T, s mailcore.BlobStore) {
	ctx := context.Background()
	data, id := blob("has", 10)
	if ok, err := s.Has(ctx, id); err != nil || ok {
		t.Fatalf("Has before Put = %v, %v", ok, err)
	}
	mustPut(t, s, data)
	if ok, err := s.Has(ctx, id); err != nil || !ok {
		t.Fatalf("Has after Put = %v, %v", ok, err)
	}
}

func testNotFound(t *testing.T, s mailcore.BlobStore) {
	_, id := blob("never-stored", 50)
	mustNotFound(t, s, id)
	mustNotFound(t, s, mailcore.BlobID{})
}

func testReadAt(t *testing.T, s mailcore.BlobStore) {
	ctx := context.Background()
	const n = 200_003
	data, id := blob("readat", n)
	mustPut(t, s, data)
	r, err := s.Open(ctx, id)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer r.Close()
	if r.Size() != n {
		t.Fatalf("Size = %d, want %d", r.Size(), n)
	}
	tests := []struct {
		name    string
		off     int64
		len     int
		wantN   int
		wantEOF bool // io.EOF required (short read); otherwise nil or EOF at the very end
	}{
		{"start", 0, 10, 10, false},
		{"one byte", 1, 1, 1, false},
		{"across a 4k boundary", 4095, 4097, 4097, false},
		{"middle", 100_000, 50_000, 50_000, false},
		{"exactly to the end", n - 10, 10, 10, false},
		{"past the end", n - 10, 20, 10, true},
		{"at the end", n, 5, 0, true},
		{"far past the end", n + 1000, 5, 0, true},
		{"whole", 0, n, n, false},
		{"more than whole", 0, n + 1, n, true},
	}
	for _, tc := range tests {
		buf := make([]byte, tc.len)
		got, err := r.ReadAt(buf, tc.off)
		if got != tc.wantN {
			t.Errorf("%s: ReadAt(len %d, off %d) n = %d, want %d (err %v)", tc.name, tc.len, tc.off, got, tc.wantN, err)
			continue
		}
		switch {
		case tc.wantEOF && !errors.Is(err, io.EOF):
			t.Errorf("%s: err = %v, want io.EOF", tc.name, err)
		case !tc.wantEOF && err != nil && !(errors.Is(err, io.EOF) && tc.off+int64(tc.len) == n):
			t.Errorf("%s: err = %v", tc.name, err)
		}
		if tc.wantN > 0 && !bytes.Equal(buf[:got], data[tc.off:tc.off+int64(got)]) {
			t.Errorf("%s: wrong bytes", tc.name)
		}
	}
	if _, err := r.ReadAt(make([]byte, 1), -1); err == nil {
		t.Error("ReadAt at a negative offset succeeded")
	}
	all, err := io.ReadAll(io.NewSectionReader(r, 0, r.Size()))
	if err != nil || !bytes.Equal(all, data) {
		t.Errorf("reading it all through a SectionReader: %d bytes, %v", len(all), err)
	}

	// An empty blob has an empty reader.
	empty := mustPut(t, s, nil)
	er, err := s.Open(ctx, empty)
	if err != nil {
		t.Fatalf("Open empty: %v", err)
	}
	defer er.Close()
	if er.Size() != 0 {
		t.Errorf("empty Size = %d", er.Size())
	}
	if got, err := er.ReadAt(make([]byte, 1), 0); got != 0 || !errors.Is(err, io.EOF) {
		t.Errorf("empty ReadAt = %d, %v; want 0, io.EOF", got, err)
	}
}

func testDelete(t *testing.T, s mailcore.BlobStore) {
	ctx := context.Background()
	a, aid := blob("delete-a", 5000)
	b, bid := blob("delete-b", 7000)
	_, never := blob("delete-never", 10)
	mustPut(t, s, a)
	mustPut(t, s, b)
	if err := s.Delete(ctx, []mailcore.BlobID{aid}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	mustNotFound(t, s, aid)
	mustGet(t, s, bid, b)
	checkStats(t, s, 1, int64(len(b)))

	// Idempotent, and absent ids are not an error.
	for _, ids := range [][]mailcore.BlobID{{aid}, {never}, nil, {}, {aid, never, aid}} {
		if err := s.Delete(ctx, ids); err != nil {
			t.Fatalf("Delete(%v): %v", ids, err)
		}
	}
	mustNotFound(t, s, aid)
	mustGet(t, s, bid, b)

	// A later Put of the same bytes stores them again.
	mustPut(t, s, a)
	mustGet(t, s, aid, a)
	checkStats(t, s, 2, int64(len(a)+len(b)))

	// One call may name an id twice.
	if err := s.Delete(ctx, []mailcore.BlobID{aid, bid, aid}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	mustNotFound(t, s, aid)
	mustNotFound(t, s, bid)
	checkStats(t, s, 0, 0)

	// Deleting an empty blob and putting it back.
	e := mustPut(t, s, []byte{})
	if err := s.Delete(ctx, []mailcore.BlobID{e}); err != nil {
		t.Fatal(err)
	}
	mustNotFound(t, s, e)
	mustPut(t, s, nil)
	mustGet(t, s, e, nil)
}

// walkSet collects what Walk reports, failing on duplicates.
func walkSet(t testing.TB, s mailcore.BlobStore) map[mailcore.BlobID]int64 {
	t.Helper()
	got := map[mailcore.BlobID]int64{}
	err := s.Walk(context.Background(), func(id mailcore.BlobID, size int64) error {
		if _, dup := got[id]; dup {
			t.Errorf("Walk reported %s twice", id)
		}
		got[id] = size
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	return got
}

func sameSet(t testing.TB, got, want map[mailcore.BlobID]int64) {
	t.Helper()
	for id, n := range want {
		if g, ok := got[id]; !ok {
			t.Errorf("Walk missed %s", id)
		} else if g != n {
			t.Errorf("Walk: %s has size %d, want %d", id, g, n)
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("Walk reported %s, which is not live", id)
		}
	}
}

func testWalk(t *testing.T, s mailcore.BlobStore) {
	ctx := context.Background()
	if got := walkSet(t, s); len(got) != 0 {
		t.Fatalf("Walk of an empty store reported %d blobs", len(got))
	}
	want := map[mailcore.BlobID]int64{}
	var ids []mailcore.BlobID
	for i := range 50 {
		data, id := blob(fmt.Sprint("walk", i), 100+i*37)
		mustPut(t, s, data)
		want[id] = int64(len(data))
		ids = append(ids, id)
	}
	if err := s.Delete(ctx, ids[:10]); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids[:10] {
		delete(want, id)
	}
	sameSet(t, walkSet(t, s), want)

	stop := errors.New("stop here")
	calls := 0
	err := s.Walk(ctx, func(mailcore.BlobID, int64) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("Walk with fn failing: err = %v after %d calls; want the fn's error after 1", err, calls)
	}
}

func testConcurrent(t *testing.T, s mailcore.BlobStore) {
	ctx := context.Background()
	const workers, rounds = 12, 40
	shared := make([][]byte, 4)
	for i := range shared {
		shared[i], _ = blob(fmt.Sprint("shared", i), 3000+i)
	}
	var mu sync.Mutex
	want := map[mailcore.BlobID]int64{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			var mine []mailcore.BlobID
			for i := range rounds {
				data, id := blob(fmt.Sprint("conc", w, "-", i), 500+(w*131+i*17)%9000)
				if err := s.Put(ctx, id, data); err != nil {
					t.Errorf("worker %d: Put: %v", w, err)
					return
				}
				got, err := s.Get(ctx, id)
				if err != nil || !bytes.Equal(got, data) {
					t.Errorf("worker %d: Get after Put: %d bytes, %v", w, len(got), err)
					return
				}
				sd := shared[i%len(shared)]
				if err := s.Put(ctx, mailcore.BlobIDOf(sd), sd); err != nil {
					t.Errorf("worker %d: Put shared: %v", w, err)
					return
				}
				if got, err := s.Get(ctx, mailcore.BlobIDOf(sd)); err != nil || !bytes.Equal(got, sd) {
					t.Errorf("worker %d: Get shared: %v", w, err)
					return
				}
				mine = append(mine, id)
				if i%3 == 2 {
					// Delete the oldest of mine.
					del := mine[0]
					mine = mine[1:]
					if err := s.Delete(ctx, []mailcore.BlobID{del}); err != nil {
						t.Errorf("worker %d: Delete: %v", w, err)
						return
					}
					if _, err := s.Get(ctx, del); !errors.Is(err, mailcore.ErrBlobNotFound) {
						t.Errorf("worker %d: Get after Delete: %v", w, err)
						return
					}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for _, id := range mine {
				got, err := s.Get(ctx, id)
				if err != nil {
					t.Errorf("worker %d: final Get: %v", w, err)
					return
				}
				want[id] = int64(len(got))
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, sd := range shared {
		want[mailcore.BlobIDOf(sd)] = int64(len(sd))
	}
	sameSet(t, walkSet(t, s), want)
	var live int64
	for _, n := range want {
		live += n
	}
	checkStats(t, s, int64(len(want)), live)
}

// testContextCancel: a cancelled or expiring context may fail a call but
// never leaves a half-stored blob, and the store keeps working.
func testContextCancel(t *testing.T, s mailcore.BlobStore) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	data, id := blob("cancel-first", 4000)
	if err := s.Put(cancelled, id, data); err == nil {
		mustGet(t, s, id, data)
	}
	if got, err := s.Get(cancelled, id); err == nil && !bytes.Equal(got, data) {
		t.Fatal("Get with a cancelled context returned wrong bytes")
	}
	s.Has(cancelled, id)
	s.Walk(cancelled, func(mailcore.BlobID, int64) error { return nil })
	if r, err := s.Open(cancelled, id); err == nil {
		r.Close()
	}

	type result struct {
		data []byte
		err  error
	}
	var mu sync.Mutex
	results := map[mailcore.BlobID]result{}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 15 {
				data, id := blob(fmt.Sprint("cancel", w, "-", i), 1000+w*i*311)
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i*50)*time.Microsecond)
				err := s.Put(ctx, id, data)
				if i%4 == 0 {
					s.Delete(ctx, []mailcore.BlobID{id}) // may or may not happen
					err = errors.New("maybe deleted")
				}
				cancel()
				mu.Lock()
				results[id] = result{data, err}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	ctx := context.Background()
	for id, r := range results {
		got, err := s.Get(ctx, id)
		switch {
		case r.err == nil && err != nil:
			t.Errorf("%s: Put succeeded but Get failed: %v", id, err)
		case err == nil && !bytes.Equal(got, r.data):
			t.Errorf("%s: Get returned wrong bytes", id)
		case err != nil && !errors.Is(err, mailcore.ErrBlobNotFound):
			t.Errorf("%s: Get: %v (want the blob or ErrBlobNotFound)", id, err)
		}
	}
	fresh, fid := blob("cancel-after", 2000)
	mustPut(t, s, fresh)
	mustGet(t, s, fid, fresh)
}

// testBatcher checks the optional BlobBatcher: appended blobs are readable
// at once, deduped like Put, and Sync succeeds.
func testBatcher(t *testing.T, s mailcore.BlobStore) {
	b, ok := s.(mailcore.BlobBatcher)
	if !ok {
		t.Skip("store does not implement mailcore.BlobBatcher")
	}
	ctx := context.Background()
	var all [][]byte
	for i := range 20 {
		data, id := blob(fmt.Sprint("batch", i), 2000+i)
		if err := b.Append(ctx, id, data); err != nil {
			t.Fatalf("Append: %v", err)
		}
		mustGet(t, s, id, data)
		all = append(all, data)
	}
	if err := b.Append(ctx, mailcore.BlobIDOf(all[0]), all[0]); err != nil {
		t.Fatalf("Append of a live id: %v", err)
	}
	_, other := blob("batch-other", 10)
	if err := b.Append(ctx, other, all[1]); err == nil {
		t.Fatal("Append with a wrong id succeeded")
	}
	if err := b.Sync(ctx); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if err := b.Sync(ctx); err != nil {
		t.Fatalf("second Sync: %v", err)
	}
	var live int64
	for _, d := range all {
		mustGet(t, s, mailcore.BlobIDOf(d), d)
		live += int64(len(d))
	}
	checkStats(t, s, int64(len(all)), live)
}
