package imapserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/govhub/govhub/internal/passhash"
	"github.com/govhub/govhub/internal/testdb"
	"github.com/govhub/govhub/internal/tlsconf"
	"github.com/govhub/govhub/mailcore"
	"github.com/govhub/govhub/mailcore/storetest"
)

const (
	testUser = "alice@example.gov"
	testPass = "correct horse battery"
)

// fakeAuth verifies passwords with internal/passhash, as mailcore/auth does.
type fakeAuth struct{ store *mailcore.Store }

func (a fakeAuth) Authenticate(ctx context.Context, username, password, remoteIP string) (mailcore.Account, error) {
	acct, err := a.store.AccountByAddress(ctx, username)
	if err != nil {
		return mailcore.Account{}, errors.New("bad credentials")
	}
	ok, err := passhash.Verify(acct.PasswordHash, password)
	if err != nil || !ok {
		return mailcore.Account{}, errors.New("bad credentials")
	}
	return acct, nil
}

// fakeSearch is the test's stand-in for mailcore/search: it reads bodies,
// which the real index does not; the server only sees UIDs.
type fakeSearch struct {
	store *mailcore.Store
	calls int
}

func (f *fakeSearch) MatchUIDs(ctx context.Context, mailboxID int64, field, term string) ([]uint32, error) {
	f.calls++
	var out []uint32
	after := uint32(0)
	for {
		ms, err := f.store.Messages(ctx, mailboxID, after, 1000)
		if err != nil {
			return nil, err
		}
		if len(ms) == 0 {
			return out, nil
		}
		for _, m := range ms {
			raw, err := f.store.ReadMessage(ctx, mailboxID, m.UID)
			if err != nil {
				return nil, err
			}
			text := string(raw)
			if field == "BODY" {
				if i := strings.Index(text, "\r\n\r\n"); i >= 0 {
					text = text[i+4:]
				}
			}
			if strings.Contains(strings.ToLower(text), strings.ToLower(term)) {
				out = append(out, m.UID)
			}
			after = m.UID
		}
	}
}

type env struct {
	t         testing.TB
	store     *mailcore.Store
	srv       *Server
	acct      mailcore.Account
	inbox     mailcore.Mailbox
	tlsAddr   string
	plainAdr  string
	clientTLS *tls.Config
	search    *fakeSearch
	certPEM   []byte
}

func openStore(t testing.TB, dbURL string) *mailcore.Store {
	return storetest.OpenStore(t, dbURL, mailcore.Options{})
}

func serverTLS(t testing.TB) (*tls.Config, *tls.Config, []byte) {
	t.Helper()
	certPEM, keyPEM, err := tlsconf.Generate("localhost", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}}, &tls.Config{InsecureSkipVerify: true}, certPEM
}

// newEnv starts a server on 127.0.0.1:0 (one implicit-TLS and one
// STARTTLS listener) over a fresh SQLite store with one account.
func newEnv(t testing.TB, mod func(*Config)) *env {
	t.Helper()
	return newEnvOn(t, testdb.SQLiteURL(t), mod)
}

func newEnvOn(t testing.TB, dbURL string, mod func(*Config)) *env {
	t.Helper()
	e := &env{t: t, store: openStore(t, dbURL)}
	ctx := context.Background()
	h, err := passhash.Hash(testPass)
	if err != nil {
		t.Fatal(err)
	}
	e.acct, err = e.store.CreateAccount(ctx, mailcore.NewAccount{Address: testUser, PasswordHash: h})
	if err != nil {
		t.Fatal(err)
	}
	e.inbox, err = e.store.MailboxByName(ctx, e.acct.ID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	srvTLS, cliTLS, certPEM := serverTLS(t)
	e.certPEM = certPEM
	e.clientTLS = cliTLS
	e.search = &fakeSearch{store: e.store}
	cfg := Config{Auth: fakeAuth{e.store}, Search: e.search, TLS: srvTLS, PollInterval: 50 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	e.srv = New(e.store, cfg)
	l1, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.tlsAddr, e.plainAdr = l1.Addr().String(), l2.Addr().String()
	go e.srv.ServeTLS(l1)
	go e.srv.ServeSTARTTLS(l2)
	t.Cleanup(func() { e.srv.Close() })
	return e
}

func (e *env) deliver(subject, from, body string) uint32 {
	e.t.Helper()
	raw := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\nMessage-ID: <%d@test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n",
		from, testUser, subject, time.Now().UnixNano(), body)
	res, err := e.store.Deliver(context.Background(), []byte(raw), []mailcore.Recipient{{AccountID: e.acct.ID, MailboxID: e.inbox.ID}}, mailcore.DeliverOptions{})
	if err != nil || res[0].Err != nil {
		e.t.Fatalf("deliver: %v %v", err, res)
	}
	return res[0].UID
}

// rawConn is a transcript client: it sends lines and reads replies.
type rawConn struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func (e *env) dialTLS() *rawConn {
	e.t.Helper()
	c, err := tls.Dial("tcp", e.tlsAddr, e.clientTLS)
	if err != nil {
		e.t.Fatal(err)
	}
	rc := &rawConn{t: e.t, c: c, br: bufio.NewReader(c)}
	rc.c.SetDeadline(time.Now().Add(20 * time.Second))
	e.t.Cleanup(func() { c.Close() })
	rc.expect("* OK")
	return rc
}

func (e *env) dialPlain() *rawConn {
	e.t.Helper()
	c, err := net.Dial("tcp", e.plainAdr)
	if err != nil {
		e.t.Fatal(err)
	}
	rc := &rawConn{t: e.t, c: c, br: bufio.NewReader(c)}
	rc.c.SetDeadline(time.Now().Add(20 * time.Second))
	e.t.Cleanup(func() { c.Close() })
	rc.expect("* OK")
	return rc
}

func (r *rawConn) send(s string) {
	r.t.Helper()
	if _, err := r.c.Write([]byte(s)); err != nil {
		r.t.Fatalf("send %q: %v", s, err)
	}
}

func (r *rawConn) line() string {
	r.t.Helper()
	l, err := r.br.ReadString('\n')
	if err != nil {
		r.t.Fatalf("read: %v (partial %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

// expect reads lines until one starts with prefix and returns it, failing
// on a tagged reply that does not match.
func (r *rawConn) expect(prefix string) string {
	r.t.Helper()
	for {
		l := r.line()
		if strings.HasPrefix(l, prefix) {
			return l
		}
		if !strings.HasPrefix(l, "*") && !strings.HasPrefix(l, "+") {
			r.t.Fatalf("want %q, got %q", prefix, l)
		}
	}
}

// cmd sends "tag rest" and returns the untagged lines and the tagged reply.
func (r *rawConn) cmd(tag, rest string) ([]string, string) {
	r.t.Helper()
	r.send(tag + " " + rest + "\r\n")
	var untagged []string
	for {
		l := r.line()
		if strings.HasPrefix(l, tag+" ") {
			return untagged, l
		}
		untagged = append(untagged, l)
	}
}

func (r *rawConn) login() {
	r.t.Helper()
	if _, st := r.cmd("L", fmt.Sprintf("LOGIN %q %q", testUser, testPass)); !strings.HasPrefix(st, "L OK") {
		r.t.Fatalf("login: %s", st)
	}
}
