package oidc

// The relying party's side of the tests: a govhub site (sso.Manager over a
// migrated database with one real mail account, the sign-in handler, this
// RP) on an httptest TLS server, and a programmatic browser (net/http
// client with a cookie jar) that walks the redirects and fills in the OP's
// login form.

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govhub/govhub/internal/sqldb"
	"github.com/govhub/govhub/internal/testdb"
	"github.com/govhub/govhub/sso"
)

const provName = "corp"

// clock is the Manager's clock: real time plus an offset tests move.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// people is the directory as sso sees it: one person with a mailbox.
type people struct{ p sso.Person }

func (pp people) Find(_ context.Context, key, value string) (sso.Person, error) {
	if key == "mail" && strings.EqualFold(value, pp.p.Address) {
		return pp.p, nil
	}
	return sso.Person{}, sso.ErrUnknownPerson
}

func (pp people) ByAccount(_ context.Context, id int64) (sso.Person, error) {
	if id == pp.p.AccountID {
		return pp.p, nil
	}
	return sso.Person{}, sso.ErrUnknownPerson
}

type env struct {
	t     *testing.T
	op    *testOP
	m     *sso.Manager
	db    *sqldb.DB
	rp    *RP
	cfg   Config
	site  *httptest.Server
	clock *clock
}

// forEachBackend runs f on SQLite and, when configured, PostgreSQL.
func forEachBackend(t *testing.T, f func(t *testing.T, dbURL string)) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) { f(t, b.URL(t)) })
	}
}

// newEnv starts the OP and the site. tweak may change the RP's Config
// before New.
func newEnv(t *testing.T, dbURL string, tweak func(*Config)) *env {
	t.Helper()
	e := &env{t: t, clock: &clock{}}
	var handler http.Handler
	var hmu sync.Mutex
	e.site = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hmu.Lock()
		h := handler
		hmu.Unlock()
		h.ServeHTTP(w, r)
	}))
	siteURL := "https://" + e.site.Listener.Addr().String()
	e.op = newTestOP(t, siteURL+"/sso/oidc/"+provName+"/callback", siteURL+"/login?signed_out=1")

	ctx := context.Background()
	db, err := sqldb.Open(ctx, dbURL, sqldb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx, nil); err != nil {
		t.Fatal(err)
	}
	e.db = db
	acctID := createAccount(t, db, testEmail, "张伟")
	e.m = sso.New(e.db, people{sso.Person{ID: "p-1001", AccountID: acctID, Address: testEmail, DisplayName: "张伟", Status: "active"}},
		sso.Config{PublicURL: siteURL, Landing: "/home", Now: e.clock.Now,
			Mappings: map[string]sso.Mapping{provName: {From: "email", Key: "mail"}}})
	e.cfg = Config{Name: provName, Label: "政务门户", Issuer: e.op.issuer, ClientID: testClientID, ClientSecret: testClientSecret,
		PublicURL: siteURL, ClaimsFromUserInfo: true, HTTPClient: e.op.srv.Client()}
	if tweak != nil {
		tweak(&e.cfg)
	}
	e.rp, err = New(ctx, e.m, e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	signin := e.m.Handler(sso.HandlerOptions{Providers: []sso.Provider{e.rp}})
	mux := http.NewServeMux()
	for _, p := range []string{"/login", "/logout", "/logout/all", "/sso/"} {
		mux.Handle(p, signin)
	}
	// Every other path is "the application": it says who is signed in.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s, err := e.m.Session(r)
		if err != nil {
			http.Error(w, "anonymous", http.StatusUnauthorized)
			return
		}
		json.NewEncoder(w).Encode(whoami{Path: r.URL.RequestURI(), Address: s.Address, Subject: s.Subject, Method: s.Method,
			Provider: s.Provider, SessionIndex: s.SessionIndex, CSRF: s.CSRF, HasIDToken: s.IDToken != ""})
	})
	hmu.Lock()
	handler = mux
	hmu.Unlock()
	e.site.StartTLS()
	t.Cleanup(e.site.Close)
	return e
}

// createAccount writes the mail account row a session points at. It is
// SQL, not mailcore, because a domain package's tests may not import
// another domain (internal/archtest).
func createAccount(t *testing.T, db *sqldb.DB, address, name string) int64 {
	t.Helper()
	ctx := context.Background()
	now := time.Now().Unix()
	domain := address[strings.IndexByte(address, '@')+1:]
	if _, err := db.X.ExecContext(ctx, db.Rebind(`INSERT INTO domains (name, created_at) VALUES (?, ?)`), domain, now); err != nil {
		t.Fatal(err)
	}
	var did, id int64
	if err := db.X.GetContext(ctx, &did, db.Rebind(`SELECT id FROM domains WHERE name = ?`), domain); err != nil {
		t.Fatal(err)
	}
	if _, err := db.X.ExecContext(ctx, db.Rebind(`INSERT INTO accounts (domain_id, address, display_name, quota_bytes, next_uidvalidity, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`), did, address, name, int64(1<<30), 1, now, now); err != nil {
		t.Fatal(err)
	}
	if err := db.X.GetContext(ctx, &id, db.Rebind(`SELECT id FROM accounts WHERE address = ?`), address); err != nil {
		t.Fatal(err)
	}
	return id
}

type whoami struct {
	Path, Address, Subject, Method, Provider, SessionIndex, CSRF string
	HasIDToken                                                   bool
}

// lastFailure is the detail of the newest signin_failed audit entry.
func (e *env) lastFailure() string {
	e.t.Helper()
	es, err := e.m.Audit(context.Background(), 0, time.Time{}, 20)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, a := range es {
		if a.Event == "signin_failed" {
			return a.Detail
		}
	}
	return ""
}

type browser struct {
	t *testing.T
	e *env
	c *http.Client
}

func (e *env) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return &browser{t: e.t, e: e, c: &http.Client{Jar: jar, Transport: e.op.srv.Client().Transport, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type page struct {
	status int
	url    *url.URL
	loc    string
	body   string
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, url: req.URL, loc: resp.Header.Get("Location"), body: string(body)}
}

func (b *browser) get(u string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

func (b *browser) post(u string, form url.Values) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// whoami asks the application who this browser is; ok false when not
// signed in.
func (b *browser) whoami() (whoami, bool) {
	b.t.Helper()
	p := b.get(b.e.site.URL + "/whoami")
	if p.status == http.StatusUnauthorized {
		return whoami{}, false
	}
	var w whoami
	if err := json.Unmarshal([]byte(p.body), &w); err != nil {
		b.t.Fatalf("whoami: %d %q", p.status, p.body)
	}
	return w, true
}

// flow steers one sign-in.
type flow struct {
	relay string
	// authorize may rewrite the authorization request the browser carries
	// to the OP.
	authorize func(u *url.URL)
	// callback may rewrite the OP's redirect back to the RP; returning
	// false stops the browser before it delivers it.
	callback func(u *url.URL) bool
	// startAt replaces the start (default: the RP's login path).
	startAt string
}

type result struct {
	authorizeURL *url.URL // as the RP sent it
	callbackURL  *url.URL // as the OP sent it
	final        page     // the first page that is not a redirect
}

var formID = regexp.MustCompile(`name="id" value="([^"]*)"`)

// signIn walks a sign-in like a browser: redirects, the OP's login form,
// back to the RP, to wherever the RP lands.
func (b *browser) signIn(f flow) result {
	b.t.Helper()
	var res result
	next := f.startAt
	if next == "" {
		next = b.e.site.URL + b.e.rp.LoginPath(f.relay)
	}
	for i := 0; i < 20; i++ {
		u, err := url.Parse(next)
		if err != nil {
			b.t.Fatal(err)
		}
		if res.authorizeURL == nil && strings.HasPrefix(next, b.e.op.issuer) && u.Path == "/authorize" {
			c := *u
			res.authorizeURL = &c
			if f.authorize != nil {
				f.authorize(u)
			}
		}
		if strings.HasPrefix(next, b.e.site.URL) && u.Path == "/sso/oidc/"+provName+"/callback" {
			c := *u
			res.callbackURL = &c
			if f.callback != nil && !f.callback(u) {
				return res
			}
		}
		p := b.get(u.String())
		if p.status == http.StatusOK && strings.HasPrefix(next, b.e.op.issuer) && u.Path == opLoginPath {
			m := formID.FindStringSubmatch(p.body)
			if m == nil {
				b.t.Fatalf("OP login page without an id: %s", p.body)
			}
			p = b.post(b.e.op.issuer+opLoginPath, url.Values{"id": {m[1]}, "username": {testUsername}, "password": {testPassword}})
		}
		if p.status/100 != 3 {
			res.final = p
			return res
		}
		loc, err := u.Parse(p.loc)
		if err != nil {
			b.t.Fatal(err)
		}
		next = loc.String()
	}
	b.t.Fatal("too many redirects")
	return res
}

// refused asserts the RP showed the generic failure page and the browser
// is not signed in; it returns the audit detail.
func (b *browser) refused(res result) string {
	b.t.Helper()
	if res.final.status != http.StatusForbidden || !strings.Contains(res.final.body, `data-reason="error_failed"`) {
		b.t.Fatalf("want the failure page, got %d %s: %.300s", res.final.status, res.final.url, res.final.body)
	}
	if w, ok := b.whoami(); ok {
		b.t.Fatalf("refused sign-in left a session: %+v", w)
	}
	return b.e.lastFailure()
}

// signedIn asserts the sign-in landed on path with a session.
func (b *browser) signedIn(res result, path string) whoami {
	b.t.Helper()
	if res.final.status != http.StatusOK || res.final.url.RequestURI() != path {
		b.t.Fatalf("want %s signed in, got %d %s: %.300s (audit: %s)", path, res.final.status, res.final.url, res.final.body, b.e.lastFailure())
	}
	w, ok := b.whoami()
	if !ok {
		b.t.Fatal("landed but not signed in")
	}
	return w
}
