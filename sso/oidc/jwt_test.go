package oidc

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/govhub/govhub/sso"
)

// split returns a compact JWS's encoded header, decoded payload and
// encoded signature.
func split(t *testing.T, raw string) (string, []byte, string) {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", raw)
	}
	p, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	return parts[0], p, parts[2]
}

// signClaims signs claims as a JWT with key (an *rsa.PrivateKey or an
// HMAC secret).
func signClaims(t *testing.T, claims map[string]any, key any, kid string, alg jose.SignatureAlgorithm) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	sk := jose.SigningKey{Algorithm: alg, Key: key}
	if kid != "" {
		sk.Key = jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: string(alg)}
	}
	signer, err := jose.NewSigner(sk, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// resignWith re-signs raw's claims, edited by edit, with key.
func (e *env) resignWith(t *testing.T, raw string, key any, kid string, alg jose.SignatureAlgorithm, edit func(map[string]any)) string {
	t.Helper()
	_, p, _ := split(t, raw)
	var c map[string]any
	if err := json.Unmarshal(p, &c); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(c)
	}
	return signClaims(t, c, key, kid, alg)
}

// resign re-signs with the OP's own current key: a token the OP could
// have issued, differing only in what edit changes.
func (e *env) resign(t *testing.T, raw string, edit func(map[string]any)) string {
	t.Helper()
	k := e.op.store.current()
	return e.resignWith(t, raw, k.key, k.id, jose.RS256, edit)
}

// logoutClaims is a valid logout token's claim set (Back-Channel Logout
// 1.0, 2.4).
func (e *env) logoutClaims(sub, sid string) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss":    e.op.issuer,
		"aud":    testClientID,
		"iat":    now.Unix(),
		"exp":    now.Add(2 * time.Minute).Unix(),
		"jti":    sso.NewToken(),
		"events": map[string]any{logoutEvent: map[string]any{}},
	}
	if sub != "" {
		c["sub"] = sub
	}
	if sid != "" {
		c["sid"] = sid
	}
	return c
}

func (e *env) signLogout(t *testing.T, c map[string]any) string {
	t.Helper()
	k := e.op.store.current()
	return signClaims(t, c, k.key, k.id, jose.RS256)
}

// postLogout delivers a logout token as the OP would (a direct POST, no
// browser, no cookies).
func (e *env) postLogout(t *testing.T, tok string) int {
	t.Helper()
	form := url.Values{}
	if tok != "" {
		form.Set("logout_token", tok)
	}
	resp, err := e.op.srv.Client().PostForm(e.site.URL+"/sso/oidc/"+provName+"/backchannel-logout", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("back-channel logout response Cache-Control %q, want no-store", cc)
	}
	if resp.StatusCode != http.StatusOK && resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("error response is not JSON: %s", resp.Header.Get("Content-Type"))
	}
	return resp.StatusCode
}
