package oidc

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/govhub/govhub/sso"
)

// FuzzVerifyLogout feeds arbitrary logout_token values (network input of
// the back-channel endpoint) to the verifier: it must never panic, and
// whatever it accepts must satisfy Back-Channel Logout 1.0, 2.6.
func FuzzVerifyLogout(f *testing.F) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	issuer := "https://op.example"
	m := sso.New(nil, nil, sso.Config{Now: func() time.Time { return now }})
	ks := &keySet{algs: []jose.SignatureAlgorithm{jose.RS256}, now: m.Now, fetched: now,
		keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}}
	vc := &gooidc.Config{ClientID: testClientID, SupportedSigningAlgs: []string{"RS256"}, Now: m.Now}
	rp := &RP{m: m, cfg: Config{Name: "corp", Issuer: issuer, ClientID: testClientID}, keys: ks,
		verifier: gooidc.NewVerifier(issuer, ks, vc)}
	t := &testing.T{}
	claims := map[string]any{"iss": issuer, "aud": testClientID, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
		"jti": "j1", "sub": "u1", "events": map[string]any{logoutEvent: map[string]any{}}}
	f.Add(signClaims(t, claims, key, "k1", jose.RS256))
	claims["nonce"] = "n"
	f.Add(signClaims(t, claims, key, "k1", jose.RS256))
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, raw string) {
		lt, until, err := rp.verifyLogout(context.Background(), raw)
		if err != nil {
			return
		}
		if lt.TokenID == "" || (lt.Subject == "" && lt.SessionID == "") || lt.Issuer != issuer ||
			until.Before(now) || strings.Count(raw, ".") != 2 {
			t.Fatalf("accepted a bad logout token: %+v", lt)
		}
		var c map[string]any
		if err := lt.Claims(&c); err != nil {
			t.Fatal(err)
		}
		if _, ok := c["nonce"]; ok {
			t.Fatal("accepted a logout token with a nonce")
		}
	})
}
