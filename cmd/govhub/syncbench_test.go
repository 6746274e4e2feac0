package main

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
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
// people in ~300 departments from a real slapd through the LDAP peer, the
// engine, the SQLite directory store and mail-account provisioning.
//
//	go test -run '^$' -bench SyncLDAP200k -benchtime 1x -timeout 30m ./cmd/govhub/
func BenchmarkSyncLDAP200k(b *testing.B) { benchSyncLDAP(b, 200000, 300) }

// BenchmarkSyncLDAP30k is the same at 30,000 people, for profiling:
//
//	go test -run '^$' -bench SyncLDAP30k -benchtime 1x -cpuprofile cpu.out ./cmd/govhub/
func BenchmarkSyncLDAP30k(b *testing.B) { benchSyncLDAP(b, 30000, 300) }

func benchSyncLDAP(b *testing.B, n, depts int) {
	srv := ldaptest.Start(b, ldaptest.Options{LDIF: ldaptest.WideChartLDIF(n, depts)})
	st := storetest.OpenStore(b, testdb.SQLiteURL(b), mailcore.Options{})
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	peer, err := ldap.New(ldap.Config{Name: "ldap", URL: srv.URL, BindDN: ldaptest.RootDN, BindSecret: ldaptest.RootPW,
		People: ldap.Search{BaseDN: ldaptest.Suffix}, PageSize: 1000, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	// The reference: Debian's ldapsearch dumping the same people (the
	// attributes the peer maps) to /dev/null, paged, on the same server.
	ldapsearch := ldaptest.Tool(b, "ldapsearch")
	ref := func() time.Duration {
		t0 := time.Now()
		cmd := exec.Command(ldapsearch, "-x", "-LLL", "-H", srv.URL, "-D", ldaptest.RootDN, "-w", ldaptest.RootPW,
			"-E", "pr=1000/noprompt", "-b", ldaptest.Suffix, "(objectClass=inetOrgPerson)",
			"entryUUID", "cn", "mail", "mobile", "telephoneNumber", "title", "employeeNumber", "modifyTimestamp")
		if out, err := cmd.CombinedOutput(); err != nil && len(out) < 200 {
			b.Fatalf("ldapsearch: %v %s", err, out)
		}
		return time.Since(t0)
	}
	ref() // warm the server's caches
	eng := directory.NewEngine(directory.NewStore(st.DB(), nil), directory.Config{Provisioner: mailProvisioner{store: st},
		Log: log})
	ctx := context.Background()
	b.ResetTimer()
	// cpu is this process's CPU time (user+system) so far: on a shared
	// machine it varies less than wall time (slapd's own is not in it).
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	for range b.N {
		t0, c0 := time.Now(), cpu()
		rep, err := eng.Run(ctx, peer, directory.RunOptions{Full: true})
		if err != nil {
			b.Fatal(err)
		}
		first, firstCPU := time.Since(t0), cpu()-c0
		t0, c0 = time.Now(), cpu()
		again, err := eng.Run(ctx, peer, directory.RunOptions{Full: true})
		if err != nil {
			b.Fatal(err)
		}
		unchanged, unchangedCPU := time.Since(t0), cpu()-c0
		b.StopTimer()
		dump := ref()
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(first.Seconds(), "first-full-s")
		b.ReportMetric(unchanged.Seconds(), "unchanged-full-s")
		b.ReportMetric(dump.Seconds(), "ldapsearch-s")
		b.ReportMetric(float64(ru.Maxrss)/1024, "peak-rss-MiB")
		b.ReportMetric(firstCPU.Seconds(), "first-full-cpu-s")
		b.ReportMetric(unchangedCPU.Seconds(), "unchanged-full-cpu-s")
		b.Logf("first full: %v, CPU %v (created %d, errors %d); unchanged full: %v, CPU %v (changed %d, errors %d); ldapsearch dump %v; peak RSS %d MiB, Go Sys %d MiB",
			first, firstCPU, rep.Created, len(rep.Errors), unchanged, unchangedCPU, again.Changed(), len(again.Errors), dump, ru.Maxrss/1024, ms.Sys>>20)
		b.StartTimer()
	}
}
