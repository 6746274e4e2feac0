package oidc

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/govhub/govhub/internal/testdb"
	"github.com/govhub/govhub/sso"
)

func TestLoginLandsOnRelayWithSession(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, nil)
		b := e.browser()
		res := b.signIn(flow{relay: "/mail/INBOX?sort=date"})
		w := b.signedIn(res, "/mail/INBOX?sort=date")
		if w.Address != testEmail || w.Subject != testUserID || w.Method != "oidc" || w.Provider != provName || !w.HasIDToken {
			t.Fatalf("session = %+v", w)
		}
		q := res.authorizeURL.Query()
		for k, want := range map[string]string{"response_type": "code", "client_id": testClientID,
			"redirect_uri": e.site.URL + "/sso/oidc/corp/callback", "code_challenge_method": "S256", "scope": "openid profile email"} {
			if got := q.Get(k); got != want {
				t.Errorf("authorization request %s = %q, want %q", k, got, want)
			}
		}
		for _, k := range []string{"state", "nonce", "code_challenge"} {
			if len(q.Get(k)) < 43 {
				t.Errorf("authorization request %s = %q: want 256 random bits", k, q.Get(k))
			}
		}
	})
}

func TestForeignRelayLandsOnLandingPage(t *testing.T) {
	e := newEnv(t, testdb.SQLiteURL(t), nil)
	for _, relay := range []string{"https://evil.example/steal", "//evil.example/x", "/\\evil.example"} {
		b := e.browser()
		b.signedIn(b.signIn(flow{relay: relay}), "/home")
	}
}

// The verifier is kept server-side in the Pending, only its S256
// challenge goes to the OP, the OP refuses the code without the verifier
// (so PKCE is enforced for our client) and accepts it from the RP (so the
// RP sends it).
func TestPKCE(t *testing.T) {
	e := newEnv(t, testdb.SQLiteURL(t), nil)
	b := e.browser()
	var cb *url.URL
	res := b.signIn(flow{callback: func(u *url.URL) bool { cb = u; return false }})
	verifier := pendingVerifier(t, e)
	sum := sha256.Sum256([]byte(verifier))
	if got, want := res.authorizeURL.Query().Get("code_challenge"), base64.RawURLEncoding.EncodeToString(sum[:]); got != want {
		t.Fatalf("code_challenge %q is not S256 of the stored verifier (%q)", got, want)
	}
	if strings.Contains(res.authorizeURL.String(), verifier) {
		t.Fatal("the verifier itself went to the OP in the front channel")
	}
	code := cb.Query().Get("code")
	base := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {e.site.URL + "/sso/oidc/corp/callback"}}
	if st, body := e.op.postToken(t, base); st != http.StatusBadRequest || !strings.Contains(body, "code_verifier") {
		t.Fatalf("token request without code_verifier: %d %s; want the OP to refuse it", st, body)
	}
	wrong := url.Values{"code_verifier": {strings.Repeat("A", 43)}}
	for k, v := range base {
		wrong[k] = v
	}
	if st, body := e.op.postToken(t, wrong); st != http.StatusBadRequest || !strings.Contains(body, "invalid_grant") {
		t.Fatalf("token request with a wrong code_verifier: %d %s; want invalid_grant", st, body)
	}
	// The same code, delivered to the RP, works: the RP sent the verifier.
	p := b.get(cb.String())
	if p.status != http.StatusSeeOther || p.loc != "/home" {
		t.Fatalf("callback: %d %q %s (audit %s)", p.status, p.loc, p.body, e.lastFailure())
	}
	if _, ok := b.whoami(); !ok {
		t.Fatal("not signed in after the RP's own exchange")
	}
}

func pendingVerifier(t *testing.T, e *env) string {
	t.Helper()
	// The test reads the row the Manager wrote; the RP never exposes it.
	var v string
	row := e.db.X.QueryRowContext(context.Background(), `SELECT verifier FROM sso_pending WHERE provider = 'corp'`)
	if err := row.Scan(&v); err != nil {
		t.Fatal(err)
	}
	if len(v) < 43 {
		t.Fatalf("stored verifier %q too short", v)
	}
	return v
}

func TestState(t *testing.T) {
	e := newEnv(t, testdb.SQLiteURL(t), nil)
	t.Run("missing", func(t *testing.T) {
		b := e.browser()
		res := b.signIn(flow{callback: func(u *url.URL) bool {
			q := u.Query()
			q.Del("state")
			u.RawQuery = q.Encode()
			return true
		}})
		if d := b.refused(res); !strings.Contains(d, errState.Error()) {
			t.Fatalf("audit %q", d)
		}
	})
	t.Run("wrong, then the right one is used up", func(t *testing.T) {
		b := e.browser()
		var right string
		res := b.signIn(flow{callback: func(u *url.URL) bool {
			right = u.String()
			q := u.Query()
			q.Set("state", sso.NewToken())
			u.RawQuery = q.Encode()
			return true
		}})
		if d := b.refused(res); !strings.Contains(d, errState.Error()) {
			t.Fatalf("audit %q", d)
		}
		if p := b.get(right); p.status != http.StatusForbidden {
			t.Fatalf("the pending sign-in survived a wrong state: %d %s", p.status, p.loc)
		}
		if d := e.lastFailure(); !strings.Contains(d, sso.ErrNoPending.Error()) {
			t.Fatalf("audit %q", d)
		}
	})
	t.Run("from another browser", func(t *testing.T) {
		// The attacker signs in at the OP and hands the callback (with the
		// attacker's code and state) to victims.
		attacker := e.browser()
		var stolen string
		attacker.signIn(flow{callback: func(u *url.URL) bool { stolen = u.String(); return false }})

		fresh := e.browser() // never started a sign-in
		if p := fresh.get(stolen); p.status != http.StatusForbidden {
			t.Fatalf("callback from a browser without a sign-in: %d %s", p.status, p.loc)
		}
		if _, ok := fresh.whoami(); ok {
			t.Fatal("signed in with another browser's callback")
		}
		busy := e.browser() // started its own sign-in
		busy.signIn(flow{callback: func(*url.URL) bool { return false }})
		if p := busy.get(stolen); p.status != http.StatusForbidden {
			t.Fatalf("callback with another browser's state: %d %s", p.status, p.loc)
		}
		if d := e.lastFailure(); !strings.Contains(d, errState.Error()) {
			t.Fatalf("audit %q", d)
		}
		if _, ok := busy.whoami(); ok {
			t.Fatal("signed in with another browser's callback")
		}
	})
}

func TestIssuerParameterMixUp(t *testing.T) {
	e := newEnv(t, testdb.SQLiteURL(t), nil)
	b := e.browser()
	res := b.signIn(flow{callback: func(u *url.URL) bool {
		q := u.Query()
		q.Set("iss", "https://other-op.example")
		u.RawQuery = q.Encode()
		return true
	}})
	if d := b.refused(res); !strings.Contains(d, errIssuerParam.Error()) {
		t.Fatalf("audit %q", d)
	}
}

func TestNonce(t *testing.T) {
	e := newEnv(t, testdb.SQLiteURL(t), nil)
	t.Run("wrong", func(t *testing.T) {
		// The OP issues a genuine ID token for a nonce this browser's
		// sign-in did not send (a token minted for another sign-in).
		b := e.browser()
		res := b.signIn(flow{authorize: func(u *url.URL) {
			q := u.Query()
			q.Set("nonce", sso.NewToken())
			u.RawQuery = q.Encode()
		}})
		if d := b.refused(res); !strings.Contains(d, errNonce.Error()) {
			t.Fatalf("audit %q", d)
		}
	})
	t.Run("absent", func(t *testing.T) {
		e.op.setTamper(func(raw string) string { return e.resign(t, raw, func(c map[string]any) { delete(c, "nonce") }) })
		defer e.op.setTamper(nil)
		b := e.browser()
		if d := b.refused(b.signIn(flow{})); !strings.Contains(d, errNonce.Error()) {
			t.Fatalf("audit %q", d)
		}
	})
}

func TestTamperedIDToken(t *testing.T) {
	e := newEnv(t, testdb.SQLiteURL(t), nil)
	attacker, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		tamper func(raw string) string
		reason string
	}{
		{"payload changed, signature kept", func(raw string) string {
			h, p, s := split(t, raw)
			var c map[string]any
			json.Unmarshal(p, &c)
			c["sub"] = "u-9999"
			p, _ = json.Marshal(c)
			return h + "." + base64.RawURLEncoding.EncodeToString(p) + "." + s
		}, errNoKey.Error()},
		{"signature changed", func(raw string) string {
			h, p, s := split(t, raw)
			sig, _ := base64.RawURLEncoding.DecodeString(s)
			sig[10] ^= 0x40
			return h + "." + base64.RawURLEncoding.EncodeToString(p) + "." + base64.RawURLEncoding.EncodeToString(sig)
		}, errNoKey.Error()},
		{"signed by another key under the OP's kid", func(raw string) string {
			return e.resignWith(t, raw, attacker, e.op.store.current().id, jose.RS256, nil)
		}, errNoKey.Error()},
		{"alg none", func(raw string) string {
			_, p, _ := split(t, raw)
			return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + base64.RawURLEncoding.EncodeToString(p) + "."
		}, "ID token refused"},
		{"HS256 keyed with the client secret", func(raw string) string {
			return e.resignWith(t, raw, []byte(testClientSecret), "", jose.HS256, nil)
		}, "ID token refused"},
		{"other issuer", func(raw string) string {
			return e.resign(t, raw, func(c map[string]any) { c["iss"] = "https://evil.example" })
		}, "different provider"},
		{"other audience", func(raw string) string {
			return e.resign(t, raw, func(c map[string]any) { c["aud"] = []string{"someone-else"} })
		}, "expected audience"},
		{"azp of another client", func(raw string) string {
			return e.resign(t, raw, func(c map[string]any) { c["aud"] = []string{testClientID, "other"}; c["azp"] = "other" })
		}, errAZP.Error()},
		{"expired", func(raw string) string {
			return e.resign(t, raw, func(c map[string]any) {
				c["exp"] = time.Now().Add(-time.Minute).Unix()
				c["iat"] = time.Now().Add(-time.Hour).Unix()
			})
		}, "expired"},
		{"issued in the future", func(raw string) string {
			return e.resign(t, raw, func(c map[string]any) { c["iat"] = time.Now().Add(time.Hour).Unix() })
		}, errIssuedAt.Error()},
		{"subject other than userinfo's (token substitution)", func(raw string) string {
			return e.resign(t, raw, func(c map[string]any) { c["sub"] = "u-9999" })
		}, "is not the ID token's"},
		{"at_hash of another access token", func(raw string) string {
			return e.resign(t, raw, func(c map[string]any) { c["at_hash"] = "AAAAAAAAAAAAAAAAAAAAAA" })
		}, "access token hash"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.op.setTamper(tc.tamper)
			defer e.op.setTamper(nil)
			b := e.browser()
			if d := b.refused(b.signIn(flow{})); !strings.Contains(d, tc.reason) {
				t.Fatalf("refused for %q, want %q", d, tc.reason)
			}
		})
	}
	// The harness itself: an untampered re-signing is accepted, so the
	// refusals above are the checks', not the harness's.
	t.Run("control: re-signed unchanged", func(t *testing.T) {
		e.op.setTamper(func(raw string) string { return e.resign(t, raw, nil) })
		defer e.op.setTamper(nil)
		b := e.browser()
		b.signedIn(b.signIn(flow{}), "/home")
	})
}

func TestKeyRotation(t *testing.T) {
	e := newEnv(t, testdb.SQLiteURL(t), nil)
	first := e.op.store.current().id
	b := e.browser()
	b.signedIn(b.signIn(flow{}), "/home")

	e.op.store.rotate(t)
	// Just after a fetch the RP does not refetch (minRefresh): the token
	// under the new key is refused until then...
	b = e.browser()
	if d := b.refused(b.signIn(flow{})); !strings.Contains(d, errNoKey.Error()) {
		t.Fatalf("audit %q", d)
	}
	// ...and accepted once it may look again.
	e.clock.Advance(minRefresh + time.Second)
	b = e.browser()
	b.signedIn(b.signIn(flow{}), "/home")
	if e.op.store.current().id == first {
		t.Fatal("key did not rotate")
	}
	keys, _ := e.rp.keys.cached()
	if len(keys) != 1 || keys[0].KeyID != e.op.store.current().id {
		t.Fatalf("RP's keys %v, want only %s", keys, e.op.store.current().id)
	}
}

func TestOPErrorResponse(t *testing.T) {
	e := newEnv(t, testdb.SQLiteURL(t), nil)
	b := e.browser()
	// prompt=none with no OP session: the OP answers error=login_required
	// (Core 3.1.2.6) to the redirect_uri.
	res := b.signIn(flow{authorize: func(u *url.URL) {
		q := u.Query()
		q.Set("prompt", "none")
		u.RawQuery = q.Encode()
	}})
	if res.callbackURL == nil || res.callbackURL.Query().Get("error") != "login_required" {
		t.Fatalf("OP did not answer with an error: %v", res.callbackURL)
	}
	if d := b.refused(res); !strings.Contains(d, errOPError.Error()) || !strings.Contains(d, "login_required") {
		t.Fatalf("audit %q", d)
	}
	if !strings.Contains(res.final.body, "登录未能完成") {
		t.Fatalf("failure page not in zh-CN: %s", res.final.body)
	}
}

func TestClaimsFromUserInfo(t *testing.T) {
	// The example OP puts email only in userinfo (Core 5.4), so mapping
	// by email works only because the RP reads userinfo.
	e := newEnv(t, testdb.SQLiteURL(t), func(c *Config) { c.ClaimsFromUserInfo = false })
	b := e.browser()
	res := b.signIn(flow{})
	if res.final.status != http.StatusForbidden || !strings.Contains(res.final.body, `data-reason="error_unknown"`) {
		t.Fatalf("without userinfo: %d %s", res.final.status, res.final.body)
	}
}

func TestRPInitiatedLogout(t *testing.T) {
	e := newEnv(t, testdb.SQLiteURL(t), nil)
	b := e.browser()
	w := b.signedIn(b.signIn(flow{}), "/home")
	// sso answers with a page that moves on to the OP by itself (a
	// redirect after a form POST would be refused by the page's CSP
	// form-action 'self').
	p := b.post(e.site.URL+"/logout", url.Values{"csrf_token": {w.CSRF}})
	if m := regexp.MustCompile(`http-equiv="refresh" content="0;url=([^"]+)"`).FindStringSubmatch(p.body); p.status == http.StatusOK && m != nil {
		p.loc = html.UnescapeString(m[1])
	}
	if p.status != http.StatusOK || !strings.HasPrefix(p.loc, e.op.issuer+"/end_session?") {
		t.Fatalf("logout: %d %q", p.status, p.loc)
	}
	u, _ := url.Parse(p.loc)
	q := u.Query()
	if q.Get("id_token_hint") == "" || q.Get("post_logout_redirect_uri") != e.site.URL+"/login?signed_out=1" || q.Get("client_id") != testClientID {
		t.Fatalf("end_session request %s", u)
	}
	// The OP validates the hint and the registered redirect, then sends
	// the browser back.
	p = b.get(p.loc)
	if p.status != http.StatusFound || p.loc != e.site.URL+"/login?signed_out=1" {
		t.Fatalf("OP end_session: %d %q %s", p.status, p.loc, p.body)
	}
	p = b.get(p.loc)
	if p.status != http.StatusOK || !strings.Contains(p.body, "您已退出登录") {
		t.Fatalf("signed-out page: %d %s", p.status, p.body)
	}
	if _, ok := b.whoami(); ok {
		t.Fatal("still signed in")
	}
	// An OP without end_session_endpoint: nothing to do.
	saved := e.rp.d.meta.EndSessionURL
	e.rp.d.meta.EndSessionURL = ""
	defer func() { e.rp.d.meta.EndSessionURL = saved }()
	if u, err := e.rp.LogoutURL(context.Background(), sso.Session{IDToken: "x"}); u != "" || err != nil {
		t.Fatalf("LogoutURL without end_session = %q, %v", u, err)
	}
}

func TestBackchannelLogout(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, nil)
		b := e.browser()
		b.signedIn(b.signIn(flow{}), "/home")
		other, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name  string
			edit  func(c map[string]any)
			token func(c map[string]any) string
		}{
			{name: "no events", edit: func(c map[string]any) { delete(c, "events") }},
			{name: "events without the logout event", edit: func(c map[string]any) { c["events"] = map[string]any{"urn:other": map[string]any{}} }},
			{name: "logout event not an object", edit: func(c map[string]any) { c["events"] = map[string]any{logoutEvent: "yes"} }},
			{name: "nonce present (an ID token replayed as logout token)", edit: func(c map[string]any) { c["nonce"] = "n" }},
			{name: "neither sub nor sid", edit: func(c map[string]any) { delete(c, "sub") }},
			{name: "no jti", edit: func(c map[string]any) { delete(c, "jti") }},
			{name: "other audience", edit: func(c map[string]any) { c["aud"] = "someone-else" }},
			{name: "other issuer", edit: func(c map[string]any) { c["iss"] = "https://evil.example" }},
			{name: "expired", edit: func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() }},
			{name: "no exp", edit: func(c map[string]any) { delete(c, "exp") }},
			{name: "no iat", edit: func(c map[string]any) { delete(c, "iat") }},
			{name: "issued too long ago", edit: func(c map[string]any) { c["iat"] = time.Now().Add(-2 * time.Hour).Unix() }},
			{name: "signed by another key", token: func(c map[string]any) string {
				return signClaims(t, c, other, e.op.store.current().id, jose.RS256)
			}},
			{name: "HS256 with the client secret", token: func(c map[string]any) string {
				return signClaims(t, c, []byte(testClientSecret), "", jose.HS256)
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := e.logoutClaims(testUserID, "")
				if tc.edit != nil {
					tc.edit(c)
				}
				tok := ""
				if tc.token != nil {
					tok = tc.token(c)
				} else {
					tok = e.signLogout(t, c)
				}
				if st := e.postLogout(t, tok); st != http.StatusBadRequest {
					t.Fatalf("status %d, want 400", st)
				}
				if _, ok := b.whoami(); !ok {
					t.Fatal("a refused logout token ended the session")
				}
			})
		}
		good := e.signLogout(t, e.logoutClaims(testUserID, ""))
		if st := e.postLogout(t, good); st != http.StatusOK {
			t.Fatalf("valid logout token: %d", st)
		}
		if _, ok := b.whoami(); ok {
			t.Fatal("session survived the back-channel logout")
		}
		// Sign in again: the same token replayed must not end it.
		b.signedIn(b.signIn(flow{}), "/home")
		if st := e.postLogout(t, good); st != http.StatusBadRequest {
			t.Fatalf("replayed logout token: %d, want 400", st)
		}
		if _, ok := b.whoami(); !ok {
			t.Fatal("a replayed logout token ended the new session")
		}
		if st := e.postLogout(t, ""); st != http.StatusBadRequest {
			t.Fatalf("no logout_token: %d", st)
		}
	})
}

// A logout token naming only a sid ends that session and no other.
func TestBackchannelLogoutBySid(t *testing.T) {
	e := newEnv(t, testdb.SQLiteURL(t), nil)
	signInWithSid := func(sid string) *browser {
		e.op.setTamper(func(raw string) string { return e.resign(t, raw, func(c map[string]any) { c["sid"] = sid }) })
		defer e.op.setTamper(nil)
		b := e.browser()
		if w := b.signedIn(b.signIn(flow{}), "/home"); w.SessionIndex != sid {
			t.Fatalf("session index %q, want %q", w.SessionIndex, sid)
		}
		return b
	}
	a, b := signInWithSid("sid-A"), signInWithSid("sid-B")
	if st := e.postLogout(t, e.signLogout(t, e.logoutClaims("", "sid-A"))); st != http.StatusOK {
		t.Fatalf("status %d", st)
	}
	if _, ok := a.whoami(); ok {
		t.Fatal("session sid-A survived")
	}
	if _, ok := b.whoami(); !ok {
		t.Fatal("session sid-B was ended too")
	}
}

func TestExplain(t *testing.T) {
	e := newEnv(t, testdb.SQLiteURL(t), nil)
	out, err := Explain(context.Background(), e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{e.op.issuer, e.op.issuer + "/oauth/token", e.op.issuer + "/keys", e.op.store.current().id,
		"本系统接受 algorithms accepted:", "RS256", e.op.issuer + "/end_session", "backchannel_logout_supported: 是 yes",
		e.site.URL + "/sso/oidc/corp/callback", e.site.URL + "/sso/oidc/corp/backchannel-logout", "client_secret_basic"} {
		if !strings.Contains(out, want) {
			t.Errorf("Explain lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "warning") {
		t.Errorf("unexpected warning:\n%s", out)
	}
	if d := e.rp.Describe(); d["label"] != "政务门户" || d["end_session"] != "yes" || d["redirect_uri"] != e.site.URL+"/sso/oidc/corp/callback" {
		t.Errorf("Describe = %v", d)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	e := newEnv(t, testdb.SQLiteURL(t), nil)
	ok := e.cfg
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"no name", func(c *Config) { c.Name = "" }},
		{"name with a slash", func(c *Config) { c.Name = "a/b" }},
		{"plain http issuer", func(c *Config) { c.Issuer = "http://idp.example.gov.cn" }},
		{"no client id", func(c *Config) { c.ClientID = "" }},
		{"no public url", func(c *Config) { c.PublicURL = "" }},
	} {
		c := ok
		tc.edit(&c)
		if _, err := New(context.Background(), e.m, c); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err %v, want ErrConfig", tc.name, err)
		}
	}
	// Discovery's issuer must be exactly the configured one.
	c := ok
	c.Issuer += "/"
	if _, err := New(context.Background(), e.m, c); err == nil || !strings.Contains(err.Error(), "issuer") {
		t.Errorf("issuer mismatch: %v", err)
	}
}

func TestLoginPath(t *testing.T) {
	rp := &RP{cfg: Config{Name: "corp"}}
	if got := rp.LoginPath("/mail/INBOX?a=1&b=2"); got != "/sso/oidc/corp/login?relay=%2Fmail%2FINBOX%3Fa%3D1%26b%3D2" {
		t.Fatal(got)
	}
	if got := rp.LoginPath(""); got != "/sso/oidc/corp/login" {
		t.Fatal(got)
	}
	if rp.Type() != "oidc" {
		t.Fatal(rp.Type())
	}
}

// The sign-in page offers this provider under its label, and the button
// starts the flow carrying the relay.
func TestSignInPageButton(t *testing.T) {
	e := newEnv(t, testdb.SQLiteURL(t), nil)
	b := e.browser()
	p := b.get(e.site.URL + "/login?relay=%2Fmail%2FINBOX")
	if p.status != http.StatusOK || !strings.Contains(p.body, "使用 政务门户 登录") ||
		!strings.Contains(p.body, `href="/sso/oidc/corp/login?relay=%2Fmail%2FINBOX"`) {
		t.Fatalf("sign-in page: %d %s", p.status, p.body)
	}
	b.signedIn(b.signIn(flow{startAt: e.site.URL + "/sso/oidc/corp/login?relay=%2Fmail%2FINBOX"}), "/mail/INBOX")
}
