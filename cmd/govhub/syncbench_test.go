package main

import (
	"context"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/govhub/govhub/adapters/ldap"
	"github.com/govhub/govhub/adapters/ldap/ldaptest"
	"github.com/govhub/govhub/directory"
	"github.com/govhub/govhub/internal/testdb"
	"github.com/govhub/govhub/mailcore"
	"github.com/govhub/govhub/mailcore/storetest"
)

// BenchmarkSyncLDAP200k is the sync target end to end: 200,000
// people from a real slapd through the LDAP peer, the engine, the SQLite
// directory store and mail-account provisioning.
//
//	go test -run '^$' -bench SyncLDAP200k -benchtime 1x -timeout 30m ./cmd/govhub/
func BenchmarkSyncLDAP200k(b *testing.B) {
	const n = 200000
	srv := ldaptest.Start(b, ldaptest.Options{LDIF: ldaptest.ChartLDIF(n)})
	st := storetest.OpenStore(b, testdb.SQLiteURL(b), mailcore.Options{})
	peer, err := ldap.New(ldap.Config{Name: "ldap", URL: srv.URL, BindDN: ldaptest.RootDN, BindSecret: ldaptest.RootPW,
		People: ldap.Search{BaseDN: ldaptest.Suffix}, PageSize: 1000})
	if err != nil {
		b.Fatal(err)
	}
	eng := directory.NewEngine(directory.NewStore(st.DB(), nil), directory.Config{Provisioner: mailProvisioner{store: st}})
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		rep, err := eng.Run(ctx, peer, directory.RunOptions{Full: true})
		if err != nil {
			b.Fatal(err)
		}
		first := time.Since(t0)
		t0 = time.Now()
		again, err := eng.Run(ctx, peer, directory.RunOptions{Full: true})
		if err != nil {
			b.Fatal(err)
		}
		unchanged := time.Since(t0)
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(first.Seconds(), "first-full-s")
		b.ReportMetric(unchanged.Seconds(), "unchanged-full-s")
		b.ReportMetric(float64(ru.Maxrss)/1024, "peak-rss-MiB")
		b.Logf("first full: %v (created %d, errors %d); unchanged full: %v (changed %d); peak RSS %d MiB, Go Sys %d MiB",
			first, rep.Created, len(rep.Errors), unchanged, again.Changed(), ru.Maxrss/1024, ms.Sys>>20)
	}
}
