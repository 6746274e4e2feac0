package ldap

import (
	"context"
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/govhub/govhub/adapters/ldap/ldaptest"
	"github.com/govhub/govhub/directory"
)

// BenchmarkFull200k walks 200,000 people loaded with slapadd and reports,
// beside ns/op, the time Debian's ldapsearch takes to dump the same
// entries (paged, to /dev/null) on the same server: the reference.
//
//	go test -run '^$' -bench Full200k -benchtime 1x ./adapters/ldap/
func BenchmarkFull200k(b *testing.B) {
	const n = 200000
	start := time.Now()
	s := ldaptest.Start(b, ldaptest.Options{LDIF: ldaptest.ChartLDIF(n)})
	b.Logf("slapadd and start: %v", time.Since(start))
	cfg := Config{URL: s.URL, BindDN: ldaptest.RootDN, BindSecret: ldaptest.RootPW,
		People: Search{BaseDN: ldaptest.Suffix}, PageSize: 1000}
	p, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ldapsearch := ldaptest.Tool(b, "ldapsearch")
	ref := func() time.Duration {
		t0 := time.Now()
		cmd := exec.Command(ldapsearch, "-x", "-LLL", "-H", s.URL, "-D", ldaptest.RootDN, "-w", ldaptest.RootPW,
			"-E", "pr=1000/noprompt", "-b", ldaptest.Suffix, "(objectClass=inetOrgPerson)",
			"entryUUID", "cn", "mail", "mobile", "telephoneNumber", "title", "employeeNumber", "modifyTimestamp")
		if out, err := cmd.CombinedOutput(); err != nil && len(out) < 200 {
			b.Fatalf("ldapsearch: %v %s", err, out)
		}
		return time.Since(t0)
	}
	ref() // warm the server's caches for both
	b.ResetTimer()
	var people int
	var cur string
	for range b.N {
		people = 0
		if cur, err = p.Full(context.Background(), func(e directory.Entry) error {
			if e.Kind == directory.KindPerson {
				people++
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if people < n {
		b.Fatalf("%d people", people)
	}
	// Changes by content sync: nothing changed, then 1,000 modifications.
	count := func() (int, time.Duration) {
		t0 := time.Now()
		n := 0
		next, err := p.Changes(context.Background(), cur, func(directory.Entry) error { n++; return nil })
		if err != nil {
			b.Fatal(err)
		}
		cur = next
		return n, time.Since(t0)
	}
	n0, d0 := count()
	var ldif strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&ldif, "dn: uid=user%d,%s\nchangetype: modify\nreplace: mobile\nmobile: 139%08d\n\n", i*7, ldaptest.DeptDN(ldaptest.Departments[(i*7)%len(ldaptest.Departments)].OU), i)
	}
	s.LDAPModify(b, ldif.String())
	n1, d1 := count()
	b.Logf("changes: nothing changed %d entries in %v; 1000 modified: %d entries in %v", n0, d0, n1, d1)
	b.ReportMetric(d0.Seconds(), "nochange-s")
	b.ReportMetric(d1.Seconds(), "delta1000-s")
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.Sys)/(1<<20), "MiB-sys")
	b.ReportMetric(ref().Seconds(), "ldapsearch-s")
}
