package saml

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml/samlidp"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/govhub/govhub/internal/sqldb"
	"github.com/govhub/govhub/internal/testdb"
	"github.com/govhub/govhub/sso"
)

// The test world: an in-process crewjam samlidp over TLS signing real
// assertions, govhub's SP mounted by sso.Manager.Handler on another TLS
// server, and browsers made of http.Client + cookiejar.

const (
	userMail = "alice@example.gov.cn"
	userPass = "correct horse battery staple"
)

// clock is the SP side's clock: real time plus an offset tests move.
type clock struct{ off atomic.Int64 }

func (c *clock) now() time.Time        { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) shift(d time.Duration) { c.off.Store(int64(d)) }

// people knows one person with a mailbox.
type people struct{ accountID int64 }

func (p people) Find(_ context.Context, key, value string) (sso.Person, error) {
	if key == "mail" && strings.EqualFold(value, userMail) {
		return sso.Person{ID: "p1", AccountID: p.accountID, Address: userMail, DisplayName: "Alice", Status: "active"}, nil
	}
	return sso.Person{}, sso.ErrUnknownPerson
}

func (p people) ByAccount(_ context.Context, id int64) (sso.Person, error) {
	if id == p.accountID {
		return sso.Person{ID: "p1", AccountID: id, Address: userMail, Status: "active"}, nil
	}
	return sso.Person{}, sso.ErrUnknownPerson
}

// switchHandler lets a server start (so its URL is known) before the
// handler that needs the URL exists.
type switchHandler struct {
	mu sync.RWMutex
	h  http.Handler
}

func (s *switchHandler) set(h http.Handler) { s.mu.Lock(); s.h = h; s.mu.Unlock() }
func (s *switchHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	h := s.h
	s.mu.RUnlock()
	if h == nil {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	h.ServeHTTP(w, r)
}

func newTLSServer(t *testing.T) (*httptest.Server, *switchHandler) {
	sh := &switchHandler{}
	srv := httptest.NewUnstartedServer(sh)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, sh
}

type keyPair struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

var (
	keysMu sync.Mutex
	keys   = map[string]keyPair{}
)

// testKey returns a self-signed RSA pair, one per name for the whole run
// (RSA generation is slow on a shared machine).
func testKey(t testing.TB, name string) keyPair {
	keysMu.Lock()
	defer keysMu.Unlock()
	if k, ok := keys[name]; ok {
		return k
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-24 * time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	keys[name] = keyPair{k, c}
	return keys[name]
}

type idp struct {
	srv *samlidp.Server
	url string
	hc  *http.Client
}

func newIDP(t *testing.T) *idp {
	hs, sh := newTLSServer(t)
	kp := testKey(t, "idp")
	u, _ := url.Parse(hs.URL)
	s, err := samlidp.New(samlidp.Options{URL: *u, Key: kp.key, Certificate: kp.cert,
		Store: &samlidp.MemoryStore{}, Logger: log.New(idpLog, "idp: ", 0)})
	if err != nil {
		t.Fatal(err)
	}
	sh.set(s)
	d := &idp{srv: s, url: hs.URL, hc: hs.Client()}
	d.put(t, "/users/alice", fmt.Sprintf(`{"name":"alice","password":%q,"email":%q}`, userPass, userMail))
	return d
}

func (d *idp) put(t *testing.T, path, body string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, d.url+path, strings.NewReader(body))
	resp, err := d.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("IdP PUT %s: %s", path, resp.Status)
	}
}

// rollKey makes the IdP sign with, and publish, another certificate.
func (d *idp) rollKey(kp keyPair) {
	d.srv.IDP.Key = kp.key
	d.srv.IDP.Certificate = kp.cert
}

// node is one govhub process: a Manager and an SP behind a TLS server.
type node struct {
	m   *sso.Manager
	sp  *SP
	url string // this node's own address
	db  *sqldb.DB
}

type world struct {
	t     *testing.T
	clock *clock
	idp   *idp
	nodes []*node
	pub   string // the public URL all nodes share
	hc    *http.Client
}

type opts struct {
	idpInitiated bool
	nodes        int
	dbURL        string
	refresh      time.Duration
	metadataFile string
}

func openDB(t *testing.T, u string) *sqldb.DB {
	ctx := context.Background()
	db, err := sqldb.Open(ctx, u, sqldb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx, nil); err != nil {
		t.Fatal(err)
	}
	return db
}

// createAccount inserts the mailbox row sessions point at (the account
// is mailcore's; sso may not import it, so the row is written directly).
func createAccount(t *testing.T, db *sqldb.DB) int64 {
	ctx := context.Background()
	now := time.Now().Unix()
	if _, err := db.X.ExecContext(ctx, db.Rebind(`INSERT INTO domains (name, created_at) VALUES (?, ?)`), "example.gov.cn", now); err != nil {
		t.Fatal(err)
	}
	var dom int64
	if err := db.X.GetContext(ctx, &dom, db.Rebind(`SELECT id FROM domains WHERE name = ?`), "example.gov.cn"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.X.ExecContext(ctx, db.Rebind(`INSERT INTO accounts (domain_id, address, display_name, quota_bytes, next_uidvalidity, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`), dom, userMail, "Alice", 1<<30, 1, now, now); err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := db.X.GetContext(ctx, &id, db.Rebind(`SELECT id FROM accounts WHERE address = ?`), userMail); err != nil {
		t.Fatal(err)
	}
	return id
}

func newWorld(t *testing.T, o opts) *world {
	t.Helper()
	if o.nodes == 0 {
		o.nodes = 1
	}
	if o.dbURL == "" {
		o.dbURL = testdb.SQLiteURL(t)
	}
	w := &world{t: t, clock: &clock{}, idp: newIDP(t)}
	w.hc = w.idp.hc
	keyDir := t.TempDir()
	// Every node shares one key, one database and one public URL (as
	// behind a load balancer); each has its own address.
	var accountID int64
	for i := 0; i < o.nodes; i++ {
		hs, sh := newTLSServer(t)
		if i == 0 {
			w.pub = hs.URL
		}
		db := openDB(t, o.dbURL)
		if i == 0 {
			accountID = createAccount(t, db)
		}
		m := sso.New(db, people{accountID}, sso.Config{Now: w.clock.now, PublicURL: w.pub})
		cfg := Config{Name: "portal", Label: "政务门户", PublicURL: w.pub, IDPInitiated: o.idpInitiated,
			KeyDir: keyDir, HTTPClient: w.hc, MetadataRefresh: o.refresh}
		if o.metadataFile != "" {
			cfg.IDPMetadataFile = o.metadataFile
		} else {
			cfg.IDPMetadataURL = w.idp.url + "/metadata"
		}
		if i == 0 {
			// The SP key is generated once into KeyDir by the first node.
			writeSPKeyOnce(t, keyDir)
		}
		sp, err := New(context.Background(), m, cfg)
		if err != nil {
			t.Fatal(err)
		}
		sh.set(m.Handler(sso.HandlerOptions{Providers: []sso.Provider{sp}}))
		w.nodes = append(w.nodes, &node{m: m, sp: sp, url: hs.URL, db: db})
	}
	// Register our metadata with the IdP, fetched from our endpoint.
	resp, err := w.hc.Get(w.pub + "/sso/saml/portal/metadata")
	if err != nil {
		t.Fatal(err)
	}
	md, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	w.idp.put(t, "/services/govhub", string(md))
	w.idp.put(t, "/shortcuts/govhub", fmt.Sprintf(`{"name":"govhub","service_provider":%q}`, w.nodes[0].sp.EntityID()))
	return w
}

// writeSPKeyOnce puts a cached SP key pair into dir so tests do not pay
// for RSA generation each time (TestKeyGeneratedOnce covers generation).
func writeSPKeyOnce(t *testing.T, dir string) {
	kp := testKey(t, "sp")
	kpem := pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(kp.key))
	cpem := pemBlock("CERTIFICATE", kp.cert.Raw)
	if err := writeExclusive(dir+"/saml-portal.crt", cpem, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeExclusive(dir+"/saml-portal.key", kpem, 0o600); err != nil {
		t.Fatal(err)
	}
}

// browser is one user agent with its own cookie jar; it does not follow
// redirects, so every hop is checked.
type browser struct {
	t  *testing.T
	c  *http.Client
	w  *world
	jr *cookiejar.Jar
}

func (w *world) browser() *browser {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Transport: w.hc.Transport, Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &browser{t: w.t, c: c, w: w, jr: jar}
}

func (b *browser) do(method, u string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	buf, _ := io.ReadAll(resp.Body)
	return resp, string(buf)
}

var inputRE = regexp.MustCompile(`<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"`)
var actionRE = regexp.MustCompile(`<form[^>]*action="([^"]+)"`)

// form reads an HTML form's action and hidden fields.
func form(t *testing.T, page string) (string, url.Values) {
	t.Helper()
	m := actionRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no form in page: %.500s", page)
	}
	v := url.Values{}
	for _, f := range inputRE.FindAllStringSubmatch(page, -1) {
		v.Set(html.UnescapeString(f[1]), html.UnescapeString(f[2]))
	}
	return html.UnescapeString(m[1]), v
}

// idpResponse is what the IdP's auto-posting form would send to the ACS.
type idpResponse struct {
	acs   string
	xml   []byte
	relay string
}

// startLogin runs SP-initiated sign-in up to the IdP's answer: our
// /login, the IdP's login form, the credentials. It returns the form the
// browser would post to the ACS, unposted.
func (b *browser) startLogin(relay string) idpResponse {
	b.t.Helper()
	resp, _ := b.do("GET", b.w.pub+"/sso/saml/portal/login?relay="+url.QueryEscape(relay), nil)
	if resp.StatusCode != http.StatusFound {
		b.t.Fatalf("login: %s", resp.Status)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, b.w.idp.url+"/sso?") {
		b.t.Fatalf("login redirects to %q, not the IdP", loc)
	}
	return b.idpLogin(loc)
}

func (b *browser) idpLogin(ssoURL string) idpResponse {
	b.t.Helper()
	resp, page := b.do("GET", ssoURL, nil)
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("IdP sso: %s %s", resp.Status, page)
	}
	if strings.Contains(page, `name="password"`) {
		action, v := form(b.t, page)
		v.Set("user", "alice")
		v.Set("password", userPass)
		resp, page = b.do("POST", action, v)
		if resp.StatusCode != http.StatusOK {
			b.t.Fatalf("IdP login: %s %s", resp.Status, page)
		}
	}
	return b.samlForm(page)
}

func (b *browser) samlForm(page string) idpResponse {
	b.t.Helper()
	action, v := form(b.t, page)
	raw, err := base64.StdEncoding.DecodeString(v.Get("SAMLResponse"))
	if err != nil || len(raw) == 0 {
		b.t.Fatalf("no SAMLResponse in %.300s", page)
	}
	return idpResponse{acs: action, xml: raw, relay: v.Get("RelayState")}
}

// unsolicited gets an IdP-initiated response (the IdP's shortcut).
func (b *browser) unsolicited() idpResponse {
	b.t.Helper()
	resp, _ := b.do("POST", b.w.idp.url+"/login", url.Values{"user": {"alice"}, "password": {userPass}})
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("IdP login: %s", resp.Status)
	}
	resp, page := b.do("GET", b.w.idp.url+"/login/govhub", nil)
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("IdP-initiated: %s %s", resp.Status, page)
	}
	return b.samlForm(page)
}

// post sends a response to the ACS of node n (as the load balancer
// would route it).
func (b *browser) post(n *node, r idpResponse) *http.Response {
	b.t.Helper()
	acs := strings.Replace(r.acs, b.w.pub, n.url, 1)
	resp, _ := b.do("POST", acs, url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(r.xml)}, "RelayState": {r.relay}})
	return resp
}

// session is the govhub session the browser's cookies carry.
func (b *browser) session(n *node) (sso.Session, error) {
	req := httptest.NewRequest("GET", b.w.pub+"/", nil)
	u, _ := url.Parse(b.w.pub)
	for _, c := range b.jr.Cookies(u) {
		req.AddCookie(c)
	}
	return n.m.Session(req)
}

// refusal is the reason the newest audit entry gives for a refused sign-in.
func (w *world) refusal(n *node) string {
	w.t.Helper()
	es, err := n.m.Audit(context.Background(), 0, time.Time{}, 1)
	if err != nil {
		w.t.Fatal(err)
	}
	if len(es) == 0 || es[0].Event != "signin_failed" {
		w.t.Fatalf("no refusal audited: %+v", es)
	}
	return es[0].Detail
}

// mustRefuse posts r and checks the ACS refused it for want.
func (w *world) mustRefuse(b *browser, n *node, r idpResponse, want error) {
	w.t.Helper()
	resp := b.post(n, r)
	if resp.StatusCode != http.StatusForbidden {
		w.t.Fatalf("ACS answered %s (Location %q), want 403", resp.Status, resp.Header.Get("Location"))
	}
	if got := w.refusal(n); !strings.Contains(got, want.Error()) {
		w.t.Fatalf("refused for %q, want %q", got, want)
	}
	if _, err := b.session(n); !errors.Is(err, sso.ErrNoSession) {
		w.t.Fatalf("a refused response left a session (%v)", err)
	}
}

// mustAccept posts r and checks it signs the browser in, landing on want.
func (w *world) mustAccept(b *browser, n *node, r idpResponse, want string) sso.Session {
	w.t.Helper()
	resp := b.post(n, r)
	if resp.StatusCode != http.StatusSeeOther {
		es, _ := n.m.Audit(context.Background(), 0, time.Time{}, 1)
		w.t.Fatalf("ACS answered %s, want 303; audit %+v", resp.Status, es)
	}
	if loc := resp.Header.Get("Location"); loc != want {
		w.t.Fatalf("landed on %q, want %q", loc, want)
	}
	s, err := b.session(n)
	if err != nil {
		w.t.Fatalf("no session after sign-in: %v", err)
	}
	return s
}

// XML surgery on a captured response.

func parse(t *testing.T, raw []byte) *etree.Document {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		t.Fatal(err)
	}
	return doc
}

func serialize(t *testing.T, doc *etree.Document) []byte {
	t.Helper()
	b, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func assertionOf(doc *etree.Document) *etree.Element {
	return directChild(doc.Root(), nsAssertion, "Assertion")
}

func stripSig(el *etree.Element) {
	if s := directChild(el, nsDSig, "Signature"); s != nil {
		el.RemoveChild(s)
	}
}

// sign replaces el's enveloped signature with one by kp, placed after
// the Issuer as the schema wants.
func sign(t *testing.T, el *etree.Element, kp keyPair) {
	t.Helper()
	stripSig(el)
	ctx := dsig.NewDefaultSigningContext(dsig.TLSCertKeyStore(tls.Certificate{Certificate: [][]byte{kp.cert.Raw}, PrivateKey: kp.key}))
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := ctx.SetSignatureMethod(dsig.RSASHA256SignatureMethod); err != nil {
		t.Fatal(err)
	}
	signed, err := ctx.SignEnveloped(detach(el))
	if err != nil {
		t.Fatal(err)
	}
	sig := directChild(signed, nsDSig, "Signature")
	pos := 0
	if iss := directChild(el, nsAssertion, "Issuer"); iss != nil {
		pos = iss.Index() + 1
	}
	el.InsertChildAt(pos, sig)
}

// tamper edits a captured response and re-signs what was signed (with
// the IdP's own key unless kp says otherwise), so only the edit differs.
func tamper(t *testing.T, r idpResponse, kp *keyPair, edit func(doc *etree.Document)) idpResponse {
	t.Helper()
	doc := parse(t, r.xml)
	edit(doc)
	k := testKey(t, "idp")
	if kp != nil {
		k = *kp
	}
	if a := assertionOf(doc); a != nil {
		sign(t, a, k)
	}
	sign(t, doc.Root(), k)
	r.xml = serialize(t, doc)
	return r
}

func pemBlock(typ string, der []byte) []byte {
	var b bytes.Buffer
	b.WriteString("-----BEGIN " + typ + "-----\n")
	s := base64.StdEncoding.EncodeToString(der)
	for len(s) > 64 {
		b.WriteString(s[:64] + "\n")
		s = s[64:]
	}
	b.WriteString(s + "\n-----END " + typ + "-----\n")
	return b.Bytes()
}

var idpLog io.Writer = io.Discard
