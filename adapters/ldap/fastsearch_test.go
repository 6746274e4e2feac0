package ldap

import (
	"context"
	"errors"
	"reflect"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/govhub/govhub/adapters/ldap/ldaptest"
)

// TestLeanSearchEqualsGoLDAP: the lean client returns exactly the entries
// go-ldap returns for the same paged search (user and operational
// attributes, the hostile entries' control characters and non-UTF-8
// octets included), over StartTLS too; a failing callback stops it; a
// server error keeps its result code.
func TestLeanSearchEqualsGoLDAP(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.Options{LDIF: ldaptest.ChartLDIF(25), TLS: true})
	ctx := context.Background()
	for _, tls := range []bool{false, true} {
		cfg := rootConfig(s)
		cfg.PageSize = 7
		if tls {
			cfg.StartTLS, cfg.TLS.CAFile = true, s.CAFile
		}
		p := newPeer(t, cfg)
		req := func() *goldap.SearchRequest {
			return p.searchReq(Search{BaseDN: ldaptest.Suffix}, "(|(objectClass=inetOrgPerson)(objectClass=organizationalUnit))", []string{"*", "+"})
		}
		c, err := p.dial(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var want []*goldap.Entry
		if err := c.pagedSearch(ctx, req(), cfg.PageSize, func(e *goldap.Entry) error { want = append(want, e); return nil }); err != nil {
			t.Fatal(err)
		}
		c.Close()
		rc, err := p.dialRaw(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []*goldap.Entry
		if err := rc.searchPaged(ctx, req(), cfg.PageSize, func(e *goldap.Entry) error { got = append(got, e); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) || len(got) < 40 {
			t.Fatalf("tls=%v: %d entries, go-ldap %d", tls, len(got), len(want))
		}
		for i := range want {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Fatalf("tls=%v: entry %d differs:\nlean   %+v\ngo-ldap %+v", tls, i, got[i], want[i])
			}
		}
		// A callback error stops the walk, and the connection still
		// answers afterwards (the server's cursor was released).
		stop := errors.New("stop")
		n := 0
		if err := rc.searchPaged(ctx, req(), cfg.PageSize, func(*goldap.Entry) error { n++; return map[bool]error{true: stop}[n == 3] }); !errors.Is(err, stop) || n != 3 {
			t.Fatalf("stop: %v after %d", err, n)
		}
		n = 0
		if err := rc.searchPaged(ctx, req(), cfg.PageSize, func(*goldap.Entry) error { n++; return nil }); err != nil || n != len(want) {
			t.Fatalf("after a stop: %v, %d entries", err, n)
		}
		// noSuchObject (32) comes back as a go-ldap error with its code.
		bad := p.searchReq(Search{BaseDN: "ou=无此部门," + ldaptest.Suffix}, "(objectClass=*)", nil)
		if err := rc.searchPaged(ctx, bad, cfg.PageSize, func(*goldap.Entry) error { return nil }); !goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
			t.Fatalf("missing base: %v", err)
		}
		rc.Close()
	}
	// A wrong password is refused at bind.
	cfg := rootConfig(s)
	cfg.BindSecret = "wrong"
	if _, err := newPeer(t, cfg).dialRaw(ctx); !goldap.IsErrorWithCode(err, goldap.LDAPResultInvalidCredentials) {
		t.Fatalf("bad bind: %v", err)
	}
}
