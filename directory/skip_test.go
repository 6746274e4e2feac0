package directory

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"reflect"
	"testing"

	"github.com/govhub/govhub/internal/sqldb"
	"github.com/govhub/govhub/internal/testdb"
)

// fakeSkipper is a writable fake that is a SkippingPeer: a person's
// version is a hash of its content.
type fakeSkipper struct {
	fakeWriter
	skipped int // people the last FullSkipping reported Unchanged
}

var _ SkippingPeer = (*fakeSkipper)(nil)

func fakeVersion(p *Person) string {
	h := fnv.New64a()
	fmt.Fprintf(h, "%+v", *p)
	return fmt.Sprintf("%x", h.Sum64())
}

func (f *fakeSkipper) Full(ctx context.Context, fn func(Entry) error) (string, error) {
	return f.fakePeer.Full(ctx, func(en Entry) error {
		if en.Person != nil {
			en.Version = fakeVersion(en.Person)
		}
		return fn(en)
	})
}

func (f *fakeSkipper) FullSkipping(ctx context.Context, known func(string) string, fn func(Entry) error) (string, error) {
	f.skipped = 0
	return f.Full(ctx, func(en Entry) error {
		if en.Person != nil && en.Err == nil && known(en.Anchor) == en.Version {
			f.skipped++
			return fn(Entry{Kind: KindPerson, Anchor: en.Anchor, Source: en.Source, Version: en.Version, Unchanged: true})
		}
		return fn(en)
	})
}

// TestSkippingEquivalent runs the same history against two engines, one
// with a peer that reads everyone on every full run and one with a
// SkippingPeer, and requires equal reports at every step: skipping
// unchanged people is an optimisation, never a change of behaviour.
// The history covers peer edits, govhub edits of fields the peer owns
// (reverted) and of mail (written back), a failed write-back (retried),
// a deletion, and a configuration change (which makes stored versions
// stale).
func TestSkippingEquivalent(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) { skippingEquivalent(t, b) })
	}
}

func skippingEquivalent(t *testing.T, b testdb.Backend) {
	{
		ctx := context.Background()
		var dbs [2]*sqldb.DB
		for i := range dbs {
			db, err := sqldb.Open(ctx, b.URL(t), sqldb.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			if _, err := db.Migrate(ctx, nil); err != nil {
				t.Fatal(err)
			}
			dbs[i] = db
		}
		plain := fakeWriter{newFake("ldap")}
		skip := &fakeSkipper{fakeWriter: fakeWriter{newFake("ldap")}}
		chart(plain.fakePeer)
		chart(skip.fakePeer)
		peers := [2]Peer{plain, skip}
		fakes := [2]*fakePeer{plain.fakePeer, skip.fakePeer}
		cfg := Config{Writable: map[string]bool{"ldap": true}, MaxDeletionFraction: 1}
		var engines [2]*Engine
		for i := range engines {
			engines[i], _ = newTestEngine(dbs[i], cfg)
		}
		step := func(name string, wantSkipped int) {
			t.Helper()
			var reps [2]*Report
			skip.skipped = 0
			for i := range engines {
				reps[i] = mustRun(t, engines[i], peers[i], RunOptions{Full: true})
				reps[i].RunID, reps[i].Started, reps[i].Finished = 0, reps[i].Started.UTC(), reps[i].Finished.UTC()
			}
			if !reflect.DeepEqual(reps[0], reps[1]) {
				t.Fatalf("%s: reports differ\nplain: %+v\nskip:  %+v", name, reps[0], reps[1])
			}
			if wantSkipped >= 0 && skip.skipped != wantSkipped {
				t.Fatalf("%s: %d people skipped, want %d", name, skip.skipped, wantSkipped)
			}
		}
		both := func(fn func(i int)) {
			for i := range 2 {
				fn(i)
			}
		}
		edit := func(i int, mail string, fn func(p *PersonRecord)) {
			p := personByMail(t, engines[i].Store(), mail)
			if err := engines[i].Store().EditPerson(ctx, p.ID, func(p *PersonRecord) error { fn(p); return nil }); err != nil {
				t.Fatal(err)
			}
		}
		step("first", -1)
		step("unchanged", 3)

		both(func(i int) {
			p := fakes[i].person("u1")
			p.Title = "秘书长"
			fakes[i].setPerson(*p)
			edit(i, "lisi@gov.example", func(p *PersonRecord) { p.Title = "改过的" })             // the peer owns title: reverted
			edit(i, "wangwu@gov.example", func(p *PersonRecord) { p.Mail = "w5@gov.example" }) // govhub owns mail: written back
		})
		step("edits on both sides", 2) // u2, u3 unchanged at the peer, planned from their snapshots
		step("after edits", 2)         // u3 changed at the peer by the write-back

		both(func(i int) {
			fakes[i].failUpdate = errors.New("peer down")
			edit(i, "lisi@gov.example", func(p *PersonRecord) { p.Mail = "li4@gov.example" })
		})
		step("failed write-back", 3)
		both(func(i int) { fakes[i].failUpdate = nil })
		step("write-back retried", 2) // u2: its version was cleared
		step("retried write landed", 2)
		step("settled", 3)

		both(func(i int) { fakes[i].deletePerson("u3") })
		step("deletion", 2)

		// Title now owned by govhub: versions are stale, everyone is read.
		cfg.Ownership = map[string]string{"title": Govhub}
		for i := range engines {
			engines[i], _ = newTestEngine(dbs[i], cfg)
		}
		step("new ownership", 0)
		step("new ownership settled", 2)
	}
}
