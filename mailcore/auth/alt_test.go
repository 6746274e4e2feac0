package auth_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/govhub/govhub/internal/testdb"
	"github.com/govhub/govhub/mailcore/auth"
)

type fakeApps struct{ want map[int64]string }

func (f fakeApps) VerifyAppPassword(_ context.Context, id int64, pw string) (bool, error) {
	return f.want[id] != "" && f.want[id] == pw, nil
}

type fakeBind struct {
	pw  map[string]string
	err error
}

func (f fakeBind) VerifyPassword(_ context.Context, addr, pw string) (bool, error) {
	if f.err != nil {
		return false, f.err
	}
	return f.pw[addr] != "" && f.pw[addr] == pw, nil
}

// TestAlternatives: an SSO-only account signs in to IMAP/SMTP with an app
// password, or with its directory password when IT configured a bind;
// wrong ones still count as failures, a disabled account is still
// refused, and a directory that cannot answer is a temporary error, not
// a wrong password.
func TestAlternatives(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			e := setup(t, b.URL(t))
			ctx := context.Background()
			sso, _ := e.store.AccountByAddress(ctx, "sso.only@example.gov.cn")
			dis, _ := e.store.AccountByAddress(ctx, "li.si@example.gov.cn")
			bind := &fakeBind{pw: map[string]string{"sso.only@example.gov.cn": "ldap-pw", "li.si@example.gov.cn": "ldap-pw"}}
			a := auth.New(e.store, auth.Options{Now: e.clk.now, Sleep: e.clk.sleep,
				AppPasswords: fakeApps{want: map[int64]string{sso.ID: "abcd-efgh-jkmn-pqrs", dis.ID: "abcd-efgh-jkmn-pqrs"}},
				Bind:         bind})
			if _, err := a.Authenticate(ctx, "sso.only@example.gov.cn", "abcd-efgh-jkmn-pqrs", "10.0.0.1"); err != nil {
				t.Fatalf("app password: %v", err)
			}
			if _, err := a.Authenticate(ctx, "sso.only@example.gov.cn", "ldap-pw", "10.0.0.1"); err != nil {
				t.Fatalf("directory bind: %v", err)
			}
			if _, err := a.Authenticate(ctx, "sso.only@example.gov.cn", "nope", "10.0.0.1"); !errors.Is(err, auth.ErrInvalidCredentials) {
				t.Fatalf("wrong password: %v", err)
			}
			if _, err := a.Authenticate(ctx, "li.si@example.gov.cn", "abcd-efgh-jkmn-pqrs", "10.0.0.1"); !errors.Is(err, auth.ErrInvalidCredentials) {
				t.Fatalf("disabled account with app password: %v", err)
			}
			// The web form's check takes the account's own password only.
			if _, err := a.AuthenticateOwn(ctx, "sso.only@example.gov.cn", "abcd-efgh-jkmn-pqrs", "10.0.0.1"); !errors.Is(err, auth.ErrInvalidCredentials) {
				t.Fatalf("app password accepted by AuthenticateOwn: %v", err)
			}
			if _, err := a.AuthenticateOwn(ctx, "sso.only@example.gov.cn", "ldap-pw", "10.0.0.1"); !errors.Is(err, auth.ErrInvalidCredentials) {
				t.Fatalf("directory password accepted by AuthenticateOwn: %v", err)
			}
			if _, err := a.AuthenticateOwn(ctx, "zhang.san@example.gov.cn", "correct horse", "10.0.0.2"); err != nil {
				t.Fatalf("own password refused by AuthenticateOwn: %v", err)
			}
			// The account's own password still works beside them.
			if _, err := a.Authenticate(ctx, "zhang.san@example.gov.cn", "correct horse", "10.0.0.2"); err != nil {
				t.Fatal(err)
			}
			bind.err = errors.New("ldap down")
			e.clk.advance(time.Hour)
			_, err := a.Authenticate(ctx, "sso.only@example.gov.cn", "ldap-pw", "10.0.0.3")
			if err == nil || errors.Is(err, auth.ErrInvalidCredentials) {
				t.Fatalf("directory down: want a temporary error, got %v", err)
			}
		})
	}
}
