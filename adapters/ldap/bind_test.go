package ldap

import (
	"context"
	"encoding/base64"
	"testing"

	"github.com/govhub/govhub/adapters/ldap/ldaptest"
)

// TestVerifyPassword: IMAP/SMTP sign-in against the directory binds as
// the person found by mail; a wrong or empty password, an unknown
// address and an address that tries filter injection are all "no".
func TestVerifyPassword(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.Options{LDIF: ldaptest.ChartLDIF(0)})
	dn := "uid=lisi," + ldaptest.DeptDN("办公厅")
	s.LDAPModify(t, "dn: "+dn+"\nchangetype: modify\nreplace: userPassword\nuserPassword:: "+base64.StdEncoding.EncodeToString([]byte("正确的密码-1"))+"\n")
	p := newPeer(t, rootConfig(s))
	ctx := context.Background()
	for _, c := range []struct {
		name, addr, pw string
		want           bool
	}{
		{"right", "lisi@gov.example", "正确的密码-1", true},
		{"wrong", "lisi@gov.example", "wrong", false},
		{"empty (would be an unauthenticated bind)", "lisi@gov.example", "", false},
		{"mail shared by two entries", "zhangsan@gov.example", "正确的密码-1", false},
		{"unknown", "nobody@gov.example", "正确的密码-1", false},
		{"injection", "*)(uid=lisi", "正确的密码-1", false},
		{"wildcard", "*", "正确的密码-1", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := p.VerifyPassword(ctx, c.addr, c.pw)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Fatalf("VerifyPassword(%q) = %v, want %v", c.addr, got, c.want)
			}
		})
	}
	down := rootConfig(s)
	down.URL = "ldap://127.0.0.1:1"
	if _, err := newPeer(t, down).VerifyPassword(ctx, "zhangsan@gov.example", "x"); err == nil {
		t.Fatal("directory down: want an error")
	}
}
