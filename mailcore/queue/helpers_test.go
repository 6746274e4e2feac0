package queue

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/govhub/govhub/internal/sqldb"
	"github.com/govhub/govhub/mailcore"
	"github.com/govhub/govhub/mailcore/volume"
)

// clock is the injected time; tests move it to drive the retry schedule.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// received is one message the test SMTP server accepted.
type received struct {
	From     string
	To       []string
	Data     []byte
	TLS      bool
	AuthUser string
}

// mtaServer is a second, in-process SMTP server (go-smtp) standing in for
// remote MX hosts and relays. Per recipient it accepts, defers (4xx) or
// rejects (5xx) on demand: by rule, or by the local part's prefix
// ("defer..." 451 4.3.0, "reject..." 550 5.1.1).
type mtaServer struct {
	Addr string

	mu        sync.Mutex
	rules     map[string]*smtp.SMTPError
	got       []received
	rcptTries map[string]int
	authUser  string // when set, AUTH PLAIN with this user and pass "secret" is required
}

var (
	errDefer  = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	errReject = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user here"}
)

type serverOpts struct {
	startTLS bool // offer STARTTLS
	implicit bool // TLS from the first byte
	authUser string
	tlsCfg   *tls.Config // instead of testTLS.server
}

func startMTA(t *testing.T, o serverOpts) *mtaServer {
	t.Helper()
	m := &mtaServer{rules: map[string]*smtp.SMTPError{}, rcptTries: map[string]int{}, authUser: o.authUser}
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		_, isTLS := c.TLSConnectionState()
		return &mtaSession{m: m, c: c, tls: isTLS}, nil
	}))
	s.Domain = "mx.test"
	s.ReadTimeout = 10 * time.Second
	s.WriteTimeout = 10 * time.Second
	s.EnableSMTPUTF8 = true
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if o.startTLS {
		s.TLSConfig = testTLS.server
		if o.tlsCfg != nil {
			s.TLSConfig = o.tlsCfg
		}
	}
	if o.implicit {
		l = tls.NewListener(l, testTLS.server)
	}
	m.Addr = l.Addr().String()
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return m
}

func (m *mtaServer) set(rcpt string, e *smtp.SMTPError) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rules[strings.ToLower(rcpt)] = e
}

func (m *mtaServer) accept(rcpt string) { m.set(rcpt, nil) }

func (m *mtaServer) messages() []received {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]received(nil), m.got...)
}

func (m *mtaServer) tries(rcpt string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rcptTries[strings.ToLower(rcpt)]
}

type mtaSession struct {
	m    *mtaServer
	c    *smtp.Conn
	tls  bool
	user string
	from string
	to   []string
}

var _ smtp.AuthSession = (*mtaSession)(nil)

func (s *mtaSession) AuthMechanisms() []string {
	if s.m.authUser == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *mtaSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != s.m.authUser || password != "secret" {
			return smtp.ErrAuthFailed
		}
		s.user = username
		return nil
	}), nil
}

func (s *mtaSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.m.authUser != "" && s.user == "" {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *mtaSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	key := strings.ToLower(to)
	s.m.rcptTries[key]++
	e, ok := s.m.rules[key]
	if !ok {
		local := key[:strings.LastIndexByte(key, '@')]
		switch {
		case strings.HasPrefix(local, "defer"):
			e = errDefer
		case strings.HasPrefix(local, "reject"):
			e = errReject
		}
	}
	if e != nil {
		return e
	}
	s.to = append(s.to, to)
	return nil
}

func (s *mtaSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.m.mu.Lock()
	s.m.got = append(s.m.got, received{From: s.from, To: s.to, Data: b, TLS: s.tls, AuthUser: s.user})
	s.m.mu.Unlock()
	return nil
}

func (s *mtaSession) Reset()        { s.from, s.to = "", nil }
func (s *mtaSession) Logout() error { return nil }

// testTLS is one self-signed certificate for every test host name, and a
// pool that trusts it.
var testTLS = func() (v struct {
	server *tls.Config
	roots  *x509.CertPool
}) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "govhub queue test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		DNSNames:              []string{"mx1.remote.test", "mx.secure.test", "mx.plain.test", "relay.test"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	cert, _ := x509.ParseCertificate(der)
	v.roots = x509.NewCertPool()
	v.roots.AddCert(cert)
	v.server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	return v
}()

// fakeDNS answers MX and address lookups from maps; a name not in them is
// NXDOMAIN.
type fakeDNS struct {
	mu    sync.Mutex
	mx    map[string][]*net.MX
	ips   map[string][]string
	calls []string
	t     *testing.T
	deny  bool // any lookup fails the test (smarthost mode must not look up)
}

func (d *fakeDNS) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, "MX "+name)
	if d.deny {
		d.t.Errorf("unexpected MX lookup of %s", name)
	}
	if mx, ok := d.mx[name]; ok {
		return mx, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func (d *fakeDNS) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, "A "+host)
	if d.deny {
		d.t.Errorf("unexpected address lookup of %s", host)
	}
	ips, ok := d.ips[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []net.IPAddr
	for _, ip := range ips {
		out = append(out, net.IPAddr{IP: net.ParseIP(ip)})
	}
	return out, nil
}

// fakeDialer maps the addresses the queue dials to in-process servers and
// records the order it dialed them in. An unmapped address is refused.
type fakeDialer struct {
	mu     sync.Mutex
	routes map[string]string
	dialed []string
}

func (f *fakeDialer) route(from, to string) {
	f.mu.Lock()
	f.routes[from] = to
	f.mu.Unlock()
}

func (f *fakeDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	f.mu.Lock()
	f.dialed = append(f.dialed, addr)
	to, ok := f.routes[addr]
	f.mu.Unlock()
	if !ok {
		return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("connection refused")}
	}
	var d net.Dialer
	return d.DialContext(ctx, network, to)
}

func (f *fakeDialer) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.dialed...)
}

// env is one test's world: a store with local domain local.test (account
// alice), remote.test whose MX mx1.remote.test (192.0.2.1) is srv, a clock,
// and a queue over them.
type env struct {
	t     *testing.T
	ctx   context.Context
	store *mailcore.Store
	clock *clock
	dns   *fakeDNS
	dial  *fakeDialer
	srv   *mtaServer
	q     *Queue
	inbox int64 // alice's INBOX
}

func openStore(t *testing.T, dbURL string, blobs mailcore.BlobStore, now func() time.Time) *mailcore.Store {
	t.Helper()
	ctx := context.Background()
	db, err := sqldb.Open(ctx, dbURL, sqldb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Migrate(ctx, nil); err != nil {
		t.Fatal(err)
	}
	s, err := mailcore.Open(mailcore.Options{DB: db, Blobs: blobs, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		db.Close()
	})
	return s
}

func openBlobs(t *testing.T) mailcore.BlobStore {
	t.Helper()
	vs, err := volume.Open(volume.Options{Dir: filepath.Join(t.TempDir(), "volumes"), VolumeSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vs.Close() })
	return vs
}

func newEnv(t *testing.T, dbURL string, mod func(e *env, c *Config)) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), clock: newClock()}
	e.store = openStore(t, dbURL, openBlobs(t), e.clock.Now)
	if _, err := e.store.CreateAccount(e.ctx, mailcore.NewAccount{Address: "alice@local.test"}); err != nil {
		t.Fatal(err)
	}
	_, rc, err := e.store.ResolveRecipient(e.ctx, "alice@local.test")
	if err != nil {
		t.Fatal(err)
	}
	e.inbox = rc.MailboxID
	e.srv = startMTA(t, serverOpts{})
	e.dns = &fakeDNS{t: t,
		mx:  map[string][]*net.MX{"remote.test": {{Host: "mx1.remote.test.", Pref: 10}}},
		ips: map[string][]string{"mx1.remote.test": {"192.0.2.1"}},
	}
	e.dial = &fakeDialer{routes: map[string]string{"192.0.2.1:25": e.srv.Addr}}
	cfg := Config{
		Hostname:     "mta.local.test",
		Resolver:     e.dns,
		Dialer:       e.dial,
		Now:          e.clock.Now,
		RootCAs:      testTLS.roots,
		PollInterval: 20 * time.Millisecond,
		Logger:       testLogger(t),
	}
	if mod != nil {
		mod(e, &cfg)
	}
	q, err := New(e.store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.q = q
	return e
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("QUEUE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

func (e *env) enqueue(from string, rcpts []string, raw []byte) {
	e.t.Helper()
	if err := e.q.Enqueue(e.ctx, from, rcpts, raw); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) runOnce() int {
	e.t.Helper()
	n, err := e.q.RunOnce(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// rows returns the queue's recipient rows as "rcpt status attempts".
func (e *env) rows() []string {
	e.t.Helper()
	var rs []struct {
		Rcpt     string `db:"rcpt"`
		Status   int    `db:"status"`
		Attempts int    `db:"attempts"`
	}
	if err := e.store.DB().X.SelectContext(e.ctx, &rs, `SELECT rcpt, status, attempts FROM queue_recipients ORDER BY id`); err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%s %s %d", r.Rcpt, statusNames[r.Status], r.Attempts))
	}
	return out
}

func (e *env) countQueued() int {
	e.t.Helper()
	var n int
	if err := e.store.DB().X.GetContext(e.ctx, &n, `SELECT COUNT(*) FROM queue_messages`); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// blobRow returns refs and dead_at of the blobs row of raw.
func (e *env) blobRow(raw []byte) (refs int64, deadAt *int64) {
	e.t.Helper()
	id := mailcore.BlobIDOf(raw)
	var r struct {
		Refs   int64  `db:"refs"`
		DeadAt *int64 `db:"dead_at"`
	}
	if err := e.store.DB().X.GetContext(e.ctx, &r, e.store.DB().Rebind(`SELECT refs, dead_at FROM blobs WHERE sha = ?`), id[:]); err != nil {
		e.t.Fatalf("blob row: %v", err)
	}
	return r.Refs, r.DeadAt
}

// inboxMessages returns the raw messages in alice's INBOX.
func (e *env) inboxMessages() [][]byte {
	e.t.Helper()
	ms, err := e.store.Messages(e.ctx, e.inbox, 0, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	var out [][]byte
	for _, m := range ms {
		raw, err := e.store.ReadMessage(e.ctx, e.inbox, m.UID)
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, raw)
	}
	return out
}

func testMessage(from, subject string) []byte {
	return []byte("From: <" + from + ">\r\nTo: <someone@remote.test>\r\nSubject: " + subject +
		"\r\nDate: Mon, 02 Mar 2026 09:00:00 +0800\r\nMessage-ID: <" + subject + "@local.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n你好，这是一封测试邮件。\r\nHello, a test message.\r\n")
}

// fsckClean fails the test unless the store's fsck, which counts
// queue_messages.blob_id as references, finds nothing wrong.
func (e *env) fsckClean(when string) {
	e.t.Helper()
	rep, err := e.store.Fsck(e.ctx, mailcore.FsckOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	if !rep.Clean() {
		e.t.Fatalf("fsck %s: %+v", when, rep.Problems)
	}
}
