package sso_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govhub/govhub/internal/testdb"
	"github.com/govhub/govhub/mailcore"
	"github.com/govhub/govhub/mailcore/storetest"
	"github.com/govhub/govhub/sso"
)

// fakePeople maps mail addresses (and "employee_no" E-numbers) to people.
type fakePeople struct {
	byKey map[string]sso.Person // key "<key>=<value>"
}

func (f *fakePeople) Find(_ context.Context, key, value string) (sso.Person, error) {
	if p, ok := f.byKey[key+"="+value]; ok {
		return p, nil
	}
	return sso.Person{}, sso.ErrUnknownPerson
}

func (f *fakePeople) ByAccount(_ context.Context, id int64) (sso.Person, error) {
	for _, p := range f.byKey {
		if p.AccountID == id {
			return p, nil
		}
	}
	return sso.Person{}, sso.ErrUnknownPerson
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testProvider signs in whoever asks, as a stand-in for a protocol
// that has already verified an identity: GET /sso/test/t/login?who=ADDR.
type testProvider struct{ m *sso.Manager }

func (p testProvider) Name() string { return "t" }
func (p testProvider) Type() string { return "test" }
func (p testProvider) LoginPath(relay string) string {
	return "/sso/test/t/login?relay=" + url.QueryEscape(relay)
}
func (p testProvider) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.m.Complete(w, r, sso.Identity{Method: "test", Provider: "t", Subject: r.URL.Query().Get("who")}, r.URL.Query().Get("relay"))
	})
}

type env struct {
	m     *sso.Manager
	clk   *clock
	srv   *httptest.Server
	store *mailcore.Store
	alice mailcore.Account
}

func setup(t *testing.T, url string) *env {
	store := storetest.OpenStore(t, url, mailcore.Options{})
	ctx := context.Background()
	alice, err := store.CreateAccount(ctx, mailcore.NewAccount{Address: "alice@gov.example"})
	if err != nil {
		t.Fatal(err)
	}
	dis, err := store.CreateAccount(ctx, mailcore.NewAccount{Address: "dis@gov.example"})
	if err != nil {
		t.Fatal(err)
	}
	people := &fakePeople{byKey: map[string]sso.Person{
		"mail=alice@gov.example": {ID: "p1", AccountID: alice.ID, Address: alice.Address, Status: "active"},
		"mail=dis@gov.example":   {ID: "p2", AccountID: dis.ID, Address: dis.Address, Status: "disabled"},
		"mail=left@gov.example":  {ID: "p3", Status: "left"},
	}}
	clk := &clock{t: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)}
	e := &env{clk: clk, store: store, alice: alice}
	e.srv = httptest.NewTLSServer(nil)
	e.m = sso.New(store.DB(), people, sso.Config{Now: clk.now, PublicURL: e.srv.URL, Landing: "/home"})
	h := e.m.Handler(sso.HandlerOptions{Providers: []sso.Provider{testProvider{e.m}}})
	mux := http.NewServeMux()
	mux.Handle("/login", h)
	mux.Handle("/logout", h)
	mux.Handle("/logout/all", h)
	mux.Handle("/sso/", h)
	mux.Handle("/home", e.m.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := sso.FromContext(r.Context())
		w.Write([]byte("hello " + s.Address + " csrf=" + s.CSRF))
	})))
	e.srv.Config.Handler = mux
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) client(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	c := e.srv.Client()
	c.Jar = jar
	return c
}

func cookieValue(c *http.Client, u, name string) string {
	pu, _ := url.Parse(u)
	for _, k := range c.Jar.Cookies(pu) {
		if k.Name == name {
			return k.Value
		}
	}
	return ""
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, b.String()
}

func csrfOf(body string) string {
	_, after, _ := strings.Cut(body, "csrf=")
	return after
}

func TestSessions(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			e := setup(t, b.URL(t))
			c := e.client(t)
			// Not signed in: a browser GET goes to the sign-in page with relay.
			c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			resp, err := c.Get(e.srv.URL + "/home?x=1")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/login?relay=%2Fhome%3Fx%3D1" {
				t.Fatalf("unauthenticated: %d %q", resp.StatusCode, loc)
			}
			c.CheckRedirect = nil

			// A planted session cookie is not upgraded: sign-in issues a new token.
			pu, _ := url.Parse(e.srv.URL)
			c.Jar.SetCookies(pu, []*http.Cookie{{Name: "govhub_session", Value: "planted-by-attacker-planted-by-attacker-xx", Path: "/"}})
			code, body := get(t, c, e.srv.URL+"/sso/test/t/login?who=alice@gov.example")
			if code != 200 || !strings.HasPrefix(body, "hello alice@gov.example") {
				t.Fatalf("sign-in: %d %q", code, body)
			}
			tok1 := cookieValue(c, e.srv.URL, "govhub_session")
			if tok1 == "" || tok1 == "planted-by-attacker-planted-by-attacker-xx" || len(tok1) < 43 {
				t.Fatalf("session token %q: must be new and ≥256 bits", tok1)
			}
			// Signing in again (same browser) changes the token and ends the old one.
			get(t, c, e.srv.URL+"/sso/test/t/login?who=alice@gov.example")
			tok2 := cookieValue(c, e.srv.URL, "govhub_session")
			if tok2 == tok1 {
				t.Fatal("session token unchanged across sign-in")
			}
			old := e.client(t)
			old.Jar.SetCookies(pu, []*http.Cookie{{Name: "govhub_session", Value: tok1, Path: "/"}})
			if _, body := get(t, old, e.srv.URL+"/home"); strings.HasPrefix(body, "hello") {
				t.Fatal("the token of the previous sign-in is still valid")
			}

			// Cookie attributes.
			resp, err = c.Get(e.srv.URL + "/sso/test/t/login?who=alice@gov.example")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			var setCookie string
			for r := resp.Request.Response; r != nil; r = r.Request.Response {
				if sc := r.Header.Get("Set-Cookie"); strings.HasPrefix(sc, "govhub_session=") {
					setCookie = sc
				}
			}
			for _, want := range []string{"HttpOnly", "Secure", "SameSite=Lax", "Path=/"} {
				if !strings.Contains(setCookie, want) {
					t.Errorf("session cookie %q lacks %s", setCookie, want)
				}
			}

			// CSRF: a POST without the token is refused; with it, accepted.
			_, body = get(t, c, e.srv.URL+"/home")
			csrf := csrfOf(body)
			post := func(path string, form url.Values, hdr map[string]string) int {
				req, _ := http.NewRequest("POST", e.srv.URL+path, strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				for k, v := range hdr {
					req.Header.Set(k, v)
				}
				c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
				defer func() { c.CheckRedirect = nil }()
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			if code := post("/home", url.Values{}, nil); code != http.StatusForbidden {
				t.Fatalf("POST without CSRF token: %d", code)
			}
			if code := post("/home", url.Values{"csrf_token": {"wrong"}}, nil); code != http.StatusForbidden {
				t.Fatalf("POST with wrong CSRF token: %d", code)
			}
			if code := post("/home", url.Values{"csrf_token": {csrf}}, map[string]string{"Origin": "https://evil.example"}); code != http.StatusForbidden {
				t.Fatalf("POST from a foreign origin: %d", code)
			}
			if code := post("/home", url.Values{"csrf_token": {csrf}}, map[string]string{"Origin": "null", "Sec-Fetch-Site": "cross-site"}); code != http.StatusForbidden {
				t.Fatalf("POST from an opaque cross-site origin: %d", code)
			}
			// Our pages send Referrer-Policy: no-referrer, so the browser's
			// same-origin POSTs carry Origin: null.
			if code := post("/home", url.Values{"csrf_token": {csrf}}, map[string]string{"Origin": "null", "Sec-Fetch-Site": "same-origin"}); code != 200 {
				t.Fatalf("same-origin POST with Origin null: %d", code)
			}
			if code := post("/home", url.Values{}, map[string]string{"X-CSRF-Token": csrf}); code != 200 {
				t.Fatalf("POST with CSRF header: %d", code)
			}
			if code := post("/logout", url.Values{}, nil); code != http.StatusForbidden {
				t.Fatalf("logout without CSRF: %d", code)
			}

			// Idle timeout: 2 h of silence ends the session.
			e.clk.advance(2*time.Hour + time.Second)
			if code, body := get(t, c, e.srv.URL+"/home"); strings.HasPrefix(body, "hello") {
				t.Fatalf("idle session still valid: %d", code)
			}
			// Absolute timeout: activity does not extend past 12 h.
			get(t, c, e.srv.URL+"/sso/test/t/login?who=alice@gov.example")
			for range 13 {
				e.clk.advance(time.Hour)
				get(t, c, e.srv.URL+"/home")
			}
			if _, body := get(t, c, e.srv.URL+"/home"); strings.HasPrefix(body, "hello") {
				t.Fatal("session lived past the absolute timeout")
			}

			// Sign out everywhere ends the other browser's session too.
			other := e.client(t)
			get(t, c, e.srv.URL+"/sso/test/t/login?who=alice@gov.example")
			get(t, other, e.srv.URL+"/sso/test/t/login?who=alice@gov.example")
			_, body = get(t, c, e.srv.URL+"/home")
			if code := post("/logout/all", url.Values{"csrf_token": {csrfOf(body)}}, nil); code != http.StatusSeeOther {
				t.Fatalf("logout/all: %d", code)
			}
			if _, body := get(t, other, e.srv.URL+"/home"); strings.HasPrefix(body, "hello") {
				t.Fatal("other browser still signed in after sign out everywhere")
			}

			// People who may not sign in get a page, not a session.
			for who, reason := range map[string]string{"dis@gov.example": "error_disabled", "left@gov.example": "error_left", "stranger@gov.example": "error_unknown"} {
				cl := e.client(t)
				code, body := get(t, cl, e.srv.URL+"/sso/test/t/login?who="+who)
				if code != http.StatusForbidden || !strings.Contains(body, `data-reason="`+reason+`"`) || cookieValue(cl, e.srv.URL, "govhub_session") != "" {
					t.Errorf("%s: %d %q", who, code, body)
				}
			}

			// The audit log has sign-ins, a failure and the sign-out with IP.
			entries, err := e.m.Audit(context.Background(), 0, time.Time{}, 100)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for _, a := range entries {
				seen[a.Event] = true
				if a.RemoteIP == "" && a.Event != "app_password_created" {
					t.Errorf("audit entry without IP: %+v", a)
				}
			}
			for _, ev := range []string{"signin", "signin_failed", "signout_all"} {
				if !seen[ev] {
					t.Errorf("audit lacks %s: %v", ev, seen)
				}
			}
		})
	}
}

func TestSafeRelay(t *testing.T) {
	for in, want := range map[string]string{
		"/mail/INBOX?page=2":  "/mail/INBOX?page=2",
		"/":                   "/",
		"https://evil":        "",
		"//evil":              "",
		"/\\evil":             "",
		"/\tevil":             "",
		"javascript:alert(1)": "",
		"evil":                "",
		"":                    "",
		"/ok\\..":             "",
	} {
		if got := sso.SafeRelay(in); got != want {
			t.Errorf("SafeRelay(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRelayHonoured: a same-origin relay is where the browser lands; a
// foreign one lands on the landing page.
func TestRelayHonoured(t *testing.T) {
	e := setup(t, testdb.SQLiteURL(t))
	for relay, want := range map[string]string{"/home?x=2": "/home?x=2", "https://evil": "/home", "//evil": "/home", "/\\evil": "/home"} {
		c := e.client(t)
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, err := c.Get(e.srv.URL + "/sso/test/t/login?who=alice@gov.example&relay=" + url.QueryEscape(relay))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Location"); got != want {
			t.Errorf("relay %q: landed on %q, want %q", relay, got, want)
		}
	}
}

func TestUseOnce(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			url := b.URL(t)
			e := setup(t, url)
			// A second Manager on the same database is a second node.
			other := storetest.OpenStore(t, url, mailcore.Options{})
			m2 := sso.New(other.DB(), &fakePeople{}, sso.Config{Now: e.clk.now})
			ctx := context.Background()
			until := e.clk.now().Add(5 * time.Minute)
			if err := e.m.UseOnce(ctx, "saml-assertion", "id-1", until); err != nil {
				t.Fatal(err)
			}
			if err := m2.UseOnce(ctx, "saml-assertion", "id-1", until); !errors.Is(err, sso.ErrReplay) {
				t.Fatalf("second node accepted a reused id: %v", err)
			}
			if err := e.m.UseOnce(ctx, "login-code", "id-1", until); err != nil {
				t.Fatalf("kinds are separate: %v", err)
			}
			// Concurrent first uses: exactly one wins.
			var wg sync.WaitGroup
			var mu sync.Mutex
			wins := 0
			for i := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					m := e.m
					if i%2 == 1 {
						m = m2
					}
					if m.UseOnce(ctx, "saml-assertion", "race", until) == nil {
						mu.Lock()
						wins++
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if wins != 1 {
				t.Fatalf("%d concurrent first uses won", wins)
			}
		})
	}
}

// TestPending: a started sign-in is bound to the browser that started
// it and is taken once.
func TestPending(t *testing.T) {
	e := setup(t, testdb.SQLiteURL(t))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/sso/x/login", nil)
	if err := e.m.BeginLogin(rec, req, sso.Pending{Provider: "x", RequestID: "req-1", Relay: "//evil"}); err != nil {
		t.Fatal(err)
	}
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 || !cookies[0].HttpOnly || !cookies[0].Secure || cookies[0].SameSite != http.SameSiteNoneMode {
		t.Fatalf("pending cookie %+v", cookies)
	}
	back := func(c *http.Cookie) (sso.Pending, error) {
		r := httptest.NewRequest("POST", "/acs", nil)
		if c != nil {
			r.AddCookie(c)
		}
		return e.m.TakeLogin(httptest.NewRecorder(), r, "x")
	}
	if _, err := back(nil); !errors.Is(err, sso.ErrNoPending) {
		t.Fatalf("no cookie: %v", err)
	}
	if _, err := back(&http.Cookie{Name: cookies[0].Name, Value: sso.NewToken()}); !errors.Is(err, sso.ErrNoPending) {
		t.Fatalf("another browser: %v", err)
	}
	p, err := back(cookies[0])
	if err != nil || p.RequestID != "req-1" || p.Relay != "" {
		t.Fatalf("take: %+v %v", p, err)
	}
	if _, err := back(cookies[0]); !errors.Is(err, sso.ErrNoPending) {
		t.Fatalf("taken twice: %v", err)
	}
	// Expired.
	rec = httptest.NewRecorder()
	e.m.BeginLogin(rec, req, sso.Pending{Provider: "x", RequestID: "req-2"})
	e.clk.advance(11 * time.Minute)
	if _, err := back(rec.Result().Cookies()[0]); !errors.Is(err, sso.ErrNoPending) {
		t.Fatalf("expired: %v", err)
	}
}

func TestAppPasswords(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			e := setup(t, b.URL(t))
			ctx := context.Background()
			s := sso.Session{AccountID: e.alice.ID, Address: e.alice.Address}
			secret, ap, err := e.m.CreateAppPassword(ctx, s, "Foxmail 办公室")
			if err != nil {
				t.Fatal(err)
			}
			if len(secret) != 19 || ap.Hash == secret || !strings.HasPrefix(ap.Hash, "$argon2id$") {
				t.Fatalf("secret %q hash %q", secret, ap.Hash)
			}
			if ok, _ := e.m.VerifyAppPassword(ctx, e.alice.ID, secret); !ok {
				t.Fatal("fresh app password refused")
			}
			if ok, _ := e.m.VerifyAppPassword(ctx, e.alice.ID, strings.ToUpper(secret)); ok {
				t.Fatal("wrong app password accepted")
			}
			list, _ := e.m.AppPasswords(ctx, e.alice.ID)
			if len(list) != 1 || list[0].Hash != "" || list[0].LastUsedAt == 0 {
				t.Fatalf("list %+v", list)
			}
			if err := e.m.RevokeAppPassword(ctx, sso.Session{AccountID: e.alice.ID + 1}, ap.ID); err == nil {
				t.Fatal("another account revoked alice's app password")
			}
			if err := e.m.RevokeAppPassword(ctx, s, ap.ID); err != nil {
				t.Fatal(err)
			}
			if ok, _ := e.m.VerifyAppPassword(ctx, e.alice.ID, secret); ok {
				t.Fatal("revoked app password accepted")
			}
			if _, _, err := e.m.CreateAppPassword(ctx, s, ""); err == nil {
				t.Fatal("unnamed app password created")
			}
			for i := range sso.MaxAppPasswords {
				if _, _, err := e.m.CreateAppPassword(ctx, s, "client "+string(rune('a'+i))); err != nil {
					t.Fatal(err)
				}
			}
			if _, _, err := e.m.CreateAppPassword(ctx, s, "one too many"); err == nil {
				t.Fatal("more than MaxAppPasswords live app passwords")
			}
		})
	}
}

// TestUnverifiedEmail: a mapping on the OIDC email claim accepts an
// identity only when the provider says it verified the address.
func TestUnverifiedEmail(t *testing.T) {
	e := setup(t, testdb.SQLiteURL(t))
	m := sso.New(e.store.DB(), &fakePeople{byKey: map[string]sso.Person{
		"mail=alice@gov.example": {ID: "p1", AccountID: e.alice.ID, Address: e.alice.Address, Status: "active"},
	}}, sso.Config{Now: e.clk.now, Mappings: map[string]sso.Mapping{"op": {From: "email", Key: "mail"}}})
	ctx := context.Background()
	id := sso.Identity{Method: "oidc", Provider: "op", Subject: "x", Attributes: map[string][]string{"email": {"alice@gov.example"}}}
	if _, err := m.Resolve(ctx, id); !errors.Is(err, sso.ErrUnknownPerson) {
		t.Fatalf("no email_verified claim: accepted (%v)", err)
	}
	id.Attributes["email_verified"] = []string{"true"}
	if _, err := m.Resolve(ctx, id); err != nil {
		t.Fatalf("verified: %v", err)
	}
	id.Attributes["email_verified"] = []string{"false"}
	if _, err := m.Resolve(ctx, id); !errors.Is(err, sso.ErrUnknownPerson) {
		t.Fatalf("unverified email accepted: %v", err)
	}
}

// TestAppPasswordLimitConcurrent: requests racing past the limit do not
// get more than MaxAppPasswords live passwords between them.
func TestAppPasswordLimitConcurrent(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			e := setup(t, b.URL(t))
			s := sso.Session{AccountID: e.alice.ID, Address: e.alice.Address}
			var wg sync.WaitGroup
			for i := range sso.MaxAppPasswords + 6 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					e.m.CreateAppPassword(context.Background(), s, "client "+string(rune('a'+i)))
				}()
			}
			wg.Wait()
			list, err := e.m.AppPasswords(context.Background(), e.alice.ID)
			if err != nil || len(list) != sso.MaxAppPasswords {
				t.Fatalf("%d live app passwords after a race (%v), want %d", len(list), err, sso.MaxAppPasswords)
			}
		})
	}
}

func TestClientIP(t *testing.T) {
	m := sso.New(nil, &fakePeople{}, sso.Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	for _, c := range []struct{ remote, xff, want string }{
		{"203.0.113.5:4000", "", "203.0.113.5"},
		{"203.0.113.5:4000", "198.51.100.1", "203.0.113.5"},                  // not from a proxy: header ignored
		{"10.1.1.1:4000", "198.51.100.1", "198.51.100.1"},                    // from the proxy
		{"10.1.1.1:4000", "6.6.6.6, 198.51.100.1, 10.2.2.2", "198.51.100.1"}, // nearest untrusted hop wins, not the forgeable leftmost
		{"10.1.1.1:4000", "garbage", "10.1.1.1"},
		{"10.1.1.1:4000", "", "10.1.1.1"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := m.ClientIP(r); got != c.want {
			t.Errorf("ClientIP(%s, XFF %q) = %s, want %s", c.remote, c.xff, got, c.want)
		}
	}
}
