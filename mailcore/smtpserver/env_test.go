package smtpserver

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"github.com/emersion/go-smtp"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govhub/govhub/internal/passhash"
	"github.com/govhub/govhub/internal/testdb"
	"github.com/govhub/govhub/internal/tlsconf"
	"github.com/govhub/govhub/mailcore"
	"github.com/govhub/govhub/mailcore/auth"
	"github.com/govhub/govhub/mailcore/storetest"
)

const (
	alice    = "alice@example.gov.cn"
	alicePW  = "alice-pw 密码"
	aliceAl  = "al@example.gov.cn"
	bob      = "bob@example.gov.cn"
	tight    = "tight@example.gov.cn" // quota 1000 bytes
	full     = "full@example.gov.cn"  // already over quota
	departed = "gone@example.gov.cn"  // status left
	// carol has an ASCII password: Python's smtplib encodes AUTH as ASCII.
	carol   = "carol@example.gov.cn"
	carolPW = "carol-pw"
)

func openStore(t testing.TB, dbURL string) *mailcore.Store {
	return storetest.OpenStore(t, dbURL, mailcore.Options{})
}

var (
	hashOnce sync.Once
	pwHash   string
	carolH   string
)

func seed(t testing.TB, store *mailcore.Store) {
	t.Helper()
	hashOnce.Do(func() {
		pwHash, _ = passhash.Hash(alicePW)
		carolH, _ = passhash.Hash(carolPW)
	})
	ctx := context.Background()
	for _, na := range []mailcore.NewAccount{
		{Address: alice, PasswordHash: pwHash},
		{Address: bob},
		{Address: carol, PasswordHash: carolH},
		{Address: tight, QuotaBytes: 1000},
		{Address: full, QuotaBytes: 1000},
		{Address: departed, Status: mailcore.StatusLeft},
	} {
		if _, err := store.CreateAccount(ctx, na); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.AddAlias(ctx, aliceAl, alice); err != nil {
		t.Fatal(err)
	}
	// Fill "full": deliver 600 bytes, then lower its quota below that.
	a, r, err := store.ResolveRecipient(ctx, full)
	if err != nil {
		t.Fatal(err)
	}
	filler := []byte("Subject: filler\r\n\r\n" + strings.Repeat("x", 580) + "\r\n")
	if _, err := store.Deliver(ctx, filler, []mailcore.Recipient{r}, mailcore.DeliverOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.UpdateAccount(ctx, a.ID, func(a mailcore.Account) (mailcore.Account, error) {
		a.QuotaBytes = 500
		return a, nil
	}); err != nil {
		t.Fatal(err)
	}
}

// fakeOutbound records what is queued and fails on demand.
type fakeOutbound struct {
	mu    sync.Mutex
	calls []outCall
	fail  error
}

type outCall struct {
	from  string
	rcpts []string
	raw   []byte
}

func (f *fakeOutbound) Enqueue(_ context.Context, from string, rcpts []string, raw []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.calls = append(f.calls, outCall{from, append([]string(nil), rcpts...), append([]byte(nil), raw...)})
	return nil
}

func (f *fakeOutbound) Calls() []outCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]outCall(nil), f.calls...)
}

// fakeClock is an injected time.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	store     *mailcore.Store
	srv       *Server
	out       *fakeOutbound
	clock     *fakeClock
	mx        string // addresses
	sub       string
	subs      string
	clientTLS *tls.Config
	caFile    string
	logs      *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

var (
	certOnce        sync.Once
	certPEM, keyPEM []byte
	certErr         error
)

// newEnv starts MX, submission and submissions listeners on 127.0.0.1:0
// over a fresh SQLite store (or dbURL when given).
func newEnv(t testing.TB, dbURL string, tune func(*Config)) *env {
	t.Helper()
	if dbURL == "" {
		dbURL = testdb.SQLiteURL(t)
	}
	store := openStore(t, dbURL)
	seed(t, store)
	certOnce.Do(func() { certPEM, keyPEM, certErr = tlsconf.Generate("mx.example.gov.cn", time.Now()) })
	if certErr != nil {
		t.Fatal(certErr)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, certPEM, 0o644)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)

	clk := &fakeClock{t: time.Date(2026, 3, 2, 8, 30, 0, 0, time.FixedZone("CST", 8*3600))}
	logs := &syncBuffer{}
	authn := auth.New(store, auth.Options{Now: clk.Now, Sleep: func(context.Context, time.Duration) error { return nil }})
	out := &fakeOutbound{}
	cfg := Config{
		Hostname: "mx.example.gov.cn",
		TLS:      tlsconf.ServerConfig(cert),
		Logger:   slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:      clk.Now,
	}
	if tune != nil {
		tune(&cfg)
	}
	srv, err := New(store, authn, out, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{store: store, srv: srv, out: out, clock: clk, logs: logs, caFile: caFile,
		clientTLS: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}}
	for _, l := range []struct {
		addr  *string
		serve func(net.Listener) error
	}{{&e.mx, srv.ServeMX}, {&e.sub, srv.ServeSubmission}, {&e.subs, srv.ServeSubmissions}} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		*l.addr = ln.Addr().String()
		go l.serve(ln)
	}
	t.Cleanup(func() {
		srv.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return e
}

// inbox returns the raw messages in addr's INBOX, in uid order.
func (e *env) inbox(t testing.TB, addr string) [][]byte {
	t.Helper()
	ctx := context.Background()
	_, r, err := e.store.ResolveRecipient(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := e.store.Messages(ctx, r.MailboxID, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, m := range msgs {
		raw, err := e.store.ReadMessage(ctx, r.MailboxID, m.UID)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, raw)
	}
	return out
}

// checkStored asserts the stored message is Return-Path and Received
// followed by exactly the bytes sent, and returns the trace prefix.
func checkStored(t testing.TB, stored, sent []byte, from string) string {
	t.Helper()
	if !bytes.HasSuffix(stored, sent) {
		t.Fatalf("stored message does not end with the bytes sent:\nstored:\n%q\nsent:\n%q", stored, sent)
	}
	prefix := string(stored[:len(stored)-len(sent)])
	rp := "Return-Path: <" + from + ">\r\n"
	if !strings.HasPrefix(prefix, rp) {
		t.Fatalf("trace prefix %q does not start with %q", prefix, rp)
	}
	rest := prefix[len(rp):]
	if !strings.HasPrefix(rest, "Received: from ") || !strings.HasSuffix(rest, "\r\n") {
		t.Fatalf("no Received header after Return-Path: %q", rest)
	}
	// Everything after Return-Path is one folded header.
	for i, line := range strings.Split(strings.TrimSuffix(rest, "\r\n"), "\r\n") {
		if i > 0 && !strings.HasPrefix(line, "\t") {
			t.Fatalf("Received header line %d not folded: %q", i, line)
		}
	}
	return prefix
}

// rawClient speaks SMTP byte for byte, for transcripts.
type rawClient struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	rc := &rawClient{t: t, c: c, r: bufio.NewReader(c)}
	rc.expect("220 ")
	return rc
}

func (rc *rawClient) send(s string) {
	rc.t.Helper()
	rc.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := rc.c.Write([]byte(s)); err != nil {
		rc.t.Fatalf("write: %v", err)
	}
}

// reply reads one (possibly multi-line) reply and returns its lines.
func (rc *rawClient) reply() []string {
	rc.t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var lines []string
	for {
		line, err := rc.r.ReadString('\n')
		if err != nil {
			rc.t.Fatalf("read reply (after %q): %v", lines, err)
		}
		line = strings.TrimRight(line, "\r\n")
		lines = append(lines, line)
		if len(line) < 4 || line[3] != '-' {
			return lines
		}
	}
}

// expect reads one reply whose last line starts with prefix.
func (rc *rawClient) expect(prefix string) []string {
	rc.t.Helper()
	lines := rc.reply()
	if !strings.HasPrefix(lines[len(lines)-1], prefix) {
		rc.t.Fatalf("reply %q, want %q", lines, prefix)
	}
	return lines
}

// cmd sends one command line and expects a reply starting with prefix.
func (rc *rawClient) cmd(line, prefix string) []string {
	rc.t.Helper()
	rc.send(line + "\r\n")
	return rc.expect(prefix)
}

// expectClosed asserts the server closes the connection (after any
// remaining output).
func (rc *rawClient) expectClosed() {
	rc.t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	rest, err := rc.r.ReadString('\n')
	for err == nil {
		rest, err = rc.r.ReadString('\n')
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		rc.t.Fatalf("connection still open (read %q)", rest)
	}
}

func message(subject, body string) []byte {
	return []byte(fmt.Sprintf("From: Alice <%s>\r\nTo: Bob <%s>\r\nSubject: %s\r\nMessage-ID: <%d@example.gov.cn>\r\n\r\n%s\r\n", alice, bob, subject, time.Now().UnixNano(), body))
}

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

func mustDial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not reached")
}

// sendMX sends one message to the MX listener in plaintext (no STARTTLS),
// as a go-smtp client.
func (e *env) sendMX(t testing.TB, from string, to []string, r io.Reader) error {
	t.Helper()
	c, err := smtp.Dial(e.mx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		return err
	}
	if err := c.SendMail(from, to, r); err != nil {
		return err
	}
	return c.Quit()
}
