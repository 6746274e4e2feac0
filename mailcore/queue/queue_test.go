package queue

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/govhub/govhub/internal/testdb"
	"github.com/govhub/govhub/mailcore"
	"github.com/prometheus/client_golang/prometheus"
)

var update = flag.Bool("update", false, "rewrite golden files")

// forBackends runs fn on SQLite and, when configured, PostgreSQL.
func forBackends(t *testing.T, fn func(t *testing.T, dbURL string)) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) { fn(t, b.URL(t)) })
	}
}

func TestEnqueueDurable(t *testing.T) {
	forBackends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, nil)
		raw := testMessage("alice@local.test", "durable")
		e.enqueue("alice@local.test", []string{"Bob@Remote.TEST", "carol@remote.test", "bob@remote.test"}, raw)
		// The rows are committed when Enqueue returns: read them through a
		// second connection pool, not the queue's.
		store2 := openStore(t, dbURL, e.store.Blobs(), e.clock.Now)
		var n int
		if err := store2.DB().X.GetContext(e.ctx, &n, `SELECT COUNT(*) FROM queue_messages WHERE sender = 'alice@local.test'`); err != nil || n != 1 {
			t.Fatalf("queue_messages: %d, %v", n, err)
		}
		// Recipients deduplicated case-insensitively; the domain lower-cased,
		// the local part kept as given (RFC 5321 2.4).
		got := e.rows()
		want := []string{"Bob@remote.test queued 0", "carol@remote.test queued 0"}
		if !slices.Equal(got, want) {
			t.Fatalf("rows %q, want %q", got, want)
		}
		if refs, dead := e.blobRow(raw); refs != 1 || dead != nil {
			t.Fatalf("blob refs %d dead %v, want 1 live", refs, dead)
		}
		if ok, err := e.store.Blobs().Has(e.ctx, mailcore.BlobIDOf(raw)); err != nil || !ok {
			t.Fatalf("body not in blob store: %v %v", ok, err)
		}
		// A second queueing of the same bytes shares the body.
		e.enqueue("alice@local.test", []string{"dave@remote.test"}, raw)
		if refs, _ := e.blobRow(raw); refs != 2 {
			t.Fatalf("blob refs %d after second enqueue, want 2", refs)
		}
		e.fsckClean("with two queued messages")
		// Bad input is refused before anything is stored.
		for _, bad := range [][]string{nil, {"no-at-sign"}, {"a@b\r\nRCPT TO:<x@y>"}, {"<x@y>"}} {
			if err := e.q.Enqueue(e.ctx, "alice@local.test", bad, raw); err == nil {
				t.Errorf("Enqueue(%q) accepted", bad)
			}
		}
	})
}

func TestRetrySchedule(t *testing.T) {
	forBackends(t, func(t *testing.T, dbURL string) {
		reg := prometheus.NewRegistry()
		e := newEnv(t, dbURL, func(e *env, c *Config) { c.Registerer = reg })
		raw := testMessage("alice@local.test", "retry")
		e.enqueue("alice@local.test", []string{"defer1@remote.test"}, raw)

		e.runOnce()
		if n := e.srv.tries("defer1@remote.test"); n != 1 {
			t.Fatalf("tries %d after first pass, want 1", n)
		}
		// Default schedule: 5m, then 15m.
		steps := []struct {
			advance time.Duration
			tries   int
		}{
			{4 * time.Minute, 1}, {time.Minute, 2},
			{14 * time.Minute, 2}, {time.Minute, 3},
			{29 * time.Minute, 3}, {time.Minute, 4},
		}
		for _, s := range steps {
			e.clock.Advance(s.advance)
			e.runOnce()
			if n := e.srv.tries("defer1@remote.test"); n != s.tries {
				t.Fatalf("after +%v: tries %d, want %d", s.advance, n, s.tries)
			}
		}
		items, err := e.q.List(e.ctx, ListOptions{})
		if err != nil || len(items) != 1 {
			t.Fatalf("List: %v %v", items, err)
		}
		r := items[0].Recipients[0]
		if r.Attempts != 4 || r.Status != "queued" || !strings.Contains(r.LastError, "451 4.3.0") ||
			!r.NextAttempt.Equal(e.clock.Now().Add(time.Hour).Truncate(time.Second)) {
			t.Fatalf("recipient %+v", r)
		}
		// The server recovers; Retry makes the message due now.
		e.srv.accept("defer1@remote.test")
		if err := e.q.Retry(e.ctx, items[0].ID); err != nil {
			t.Fatal(err)
		}
		e.runOnce()
		if got := e.srv.messages(); len(got) != 1 || got[0].To[0] != "defer1@remote.test" || got[0].From != "alice@local.test" {
			t.Fatalf("received %+v", got)
		}
		if n := e.countQueued(); n != 0 {
			t.Fatalf("%d messages still queued after delivery", n)
		}
		if refs, dead := e.blobRow(raw); refs != 0 || dead == nil {
			t.Fatalf("blob refs %d dead %v after delivery, want 0 and dead", refs, dead)
		}
		if err := e.q.Retry(e.ctx, items[0].ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Retry of a finished message: %v", err)
		}
		// Metrics: 4 deferred, 1 delivered, depth 0.
		mf, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		vals := map[string]float64{}
		for _, f := range mf {
			for _, m := range f.GetMetric() {
				name := f.GetName()
				for _, l := range m.GetLabel() {
					name += "/" + l.GetValue()
				}
				if m.Counter != nil {
					vals[name] = m.GetCounter().GetValue()
				} else if m.Gauge != nil {
					vals[name] = m.GetGauge().GetValue()
				}
			}
		}
		if vals["govhub_queue_deliveries_total/deferred"] != 4 || vals["govhub_queue_deliveries_total/delivered"] != 1 || vals["govhub_queue_depth"] != 0 {
			t.Fatalf("metrics %v", vals)
		}
	})
}

// dsnParts splits a DSN into its three parts and checks the envelope of
// the report (RFC 3464 2, RFC 6522 3).
func dsnParts(t *testing.T, raw []byte) (human, status, headers string) {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("Content-Type %q: %v", msg.Header.Get("Content-Type"), err)
	}
	if msg.Header.Get("Auto-Submitted") != "auto-replied" {
		t.Errorf("Auto-Submitted %q", msg.Header.Get("Auto-Submitted"))
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var types []string
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(p)
		ct := p.Header.Get("Content-Type")
		types = append(types, strings.SplitN(ct, ";", 2)[0])
		switch {
		case strings.HasPrefix(ct, "text/plain"):
			dec, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
			if err != nil {
				t.Fatal(err)
			}
			human = string(dec)
		case ct == "message/delivery-status":
			status = string(body)
		case ct == "text/rfc822-headers":
			headers = string(body)
		}
	}
	if want := []string{"text/plain", "message/delivery-status", "text/rfc822-headers"}; !slices.Equal(types, want) {
		t.Fatalf("parts %q, want %q", types, want)
	}
	return
}

func TestRejectedRecipientGetsDSN(t *testing.T) {
	forBackends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, nil)
		raw := testMessage("alice@local.test", "rejected")
		e.enqueue("alice@local.test", []string{"ok@remote.test", "reject1@remote.test"}, raw)
		e.runOnce()
		got := e.srv.messages()
		if len(got) != 1 || !slices.Equal(got[0].To, []string{"ok@remote.test"}) {
			t.Fatalf("received %+v", got)
		}
		inbox := e.inboxMessages()
		if len(inbox) != 1 {
			t.Fatalf("alice has %d messages, want the bounce", len(inbox))
		}
		human, status, headers := dsnParts(t, inbox[0])
		for _, want := range []string{"未能投递", "<reject1@remote.test>", "could not be delivered", "550 5.1.1 no such user here"} {
			if !strings.Contains(human, want) {
				t.Errorf("human-readable part lacks %q:\n%s", want, human)
			}
		}
		if strings.Contains(human, "ok@remote.test") {
			t.Errorf("delivered recipient named in the bounce:\n%s", human)
		}
		for _, want := range []string{"Reporting-MTA: dns; mta.local.test\r\n", "Final-Recipient: rfc822; reject1@remote.test\r\n",
			"Action: failed\r\n", "Status: 5.1.1\r\n", "Remote-MTA: dns; mx1.remote.test\r\n",
			"Diagnostic-Code: smtp; 550 5.1.1 no such user here\r\n"} {
			if !strings.Contains(status, want) {
				t.Errorf("delivery-status lacks %q:\n%s", want, status)
			}
		}
		if !strings.Contains(headers, "Subject: rejected\r\n") || strings.Contains(headers, "测试邮件") {
			t.Errorf("returned headers wrong (or carry the body):\n%s", headers)
		}
		if n := e.countQueued(); n != 0 {
			t.Fatalf("%d still queued", n)
		}
		if refs, _ := e.blobRow(raw); refs != 0 {
			t.Fatalf("original body refs %d, want 0", refs)
		}
		e.fsckClean("after delivery and bounce")
	})
}

func TestExpiryBounces(t *testing.T) {
	forBackends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, func(e *env, c *Config) {
			c.RetryFor = 24 * time.Hour
			c.Backoff = []time.Duration{time.Hour, 4 * time.Hour}
		})
		e.enqueue("alice@local.test", []string{"defer-forever@remote.test"}, testMessage("alice@local.test", "expiring"))
		e.runOnce() // t=0
		// Attempts at 4h, 8h, 12h, 16h, 20h: all deferred, no bounce.
		for i := 0; i < 5; i++ {
			e.clock.Advance(4 * time.Hour)
			e.runOnce()
			if len(e.inboxMessages()) != 0 {
				t.Fatalf("bounced before RetryFor (pass %d)", i)
			}
		}
		// 24h: the message has reached RetryFor; this failure bounces.
		e.clock.Advance(4 * time.Hour)
		e.runOnce()
		if n := e.srv.tries("defer-forever@remote.test"); n != 7 {
			t.Fatalf("tries %d, want 7", n)
		}
		inbox := e.inboxMessages()
		if len(inbox) != 1 {
			t.Fatalf("%d messages in INBOX, want one bounce", len(inbox))
		}
		human, status, _ := dsnParts(t, inbox[0])
		if !strings.Contains(status, "Action: failed\r\n") || !strings.Contains(status, "Status: 4.3.0\r\n") ||
			!strings.Contains(status, "Diagnostic-Code: smtp; 451 4.3.0 try again later") {
			t.Errorf("delivery-status:\n%s", status)
		}
		if !strings.Contains(human, "重试 1 天后仍未能投递") || !strings.Contains(human, "retried for 1 days") {
			t.Errorf("human part does not say it expired:\n%s", human)
		}
		if e.countQueued() != 0 {
			t.Fatal("still queued after expiry")
		}
	})
}

func TestBounceToRemoteSenderAndNoBounceLoops(t *testing.T) {
	forBackends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, nil)
		// A remote sender's bounce goes out through the queue, with the
		// null reverse-path.
		e.enqueue("bob@remote.test", []string{"reject-a@remote.test"}, testMessage("bob@remote.test", "from-bob"))
		e.runOnce()
		e.runOnce()
		got := e.srv.messages()
		if len(got) != 1 || got[0].From != "" || !slices.Equal(got[0].To, []string{"bob@remote.test"}) {
			t.Fatalf("received %+v, want one bounce from <> to bob", got)
		}
		if _, status, _ := dsnParts(t, got[0].Data); !strings.Contains(status, "Final-Recipient: rfc822; reject-a@remote.test") {
			t.Fatalf("bounce status:\n%s", status)
		}
		if e.countQueued() != 0 {
			t.Fatal("queue not empty")
		}

		// The bounce to a sender who refuses it is not bounced again.
		e.enqueue("reject-sender@remote.test", []string{"reject-b@remote.test"}, testMessage("reject-sender@remote.test", "loop"))
		for i := 0; i < 3; i++ {
			e.runOnce()
		}
		if n := e.srv.tries("reject-sender@remote.test"); n != 1 {
			t.Fatalf("bounce attempted %d times, want 1", n)
		}
		// A message from the null sender is never bounced.
		e.enqueue("", []string{"reject-c@remote.test"}, testMessage("mailer-daemon@remote.test", "null"))
		for i := 0; i < 3; i++ {
			e.runOnce()
		}
		if got := e.srv.messages(); len(got) != 1 {
			t.Fatalf("server received %d messages, want still 1", len(got))
		}
		if e.countQueued() != 0 || len(e.inboxMessages()) != 0 {
			t.Fatalf("queue %d, inbox %d: want both empty", e.countQueued(), len(e.inboxMessages()))
		}
	})
}

func TestDKIMSignatureVerifies(t *testing.T) {
	keyDir := filepath.Join(t.TempDir(), "dkim")
	forBackends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, func(e *env, c *Config) { c.DKIMKeyDir = keyDir })
		e.enqueue("alice@local.test", []string{"ok@remote.test"}, testMessage("alice@local.test", "signed"))
		e.runOnce()
		got := e.srv.messages()
		if len(got) != 1 {
			t.Fatalf("received %d", len(got))
		}
		name, value, err := e.q.DKIMRecord("local.test")
		if err != nil {
			t.Fatal(err)
		}
		if name != "govhub._domainkey.local.test" || !strings.HasPrefix(value, "v=DKIM1; k=rsa; p=") {
			t.Fatalf("record %s %q", name, value)
		}
		vs, err := dkim.VerifyWithOptions(bytes.NewReader(got[0].Data), &dkim.VerifyOptions{
			LookupTXT: func(domain string) ([]string, error) {
				if domain != name {
					return nil, fmt.Errorf("no TXT for %s", domain)
				}
				return []string{value}, nil
			},
		})
		if err != nil || len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != "local.test" {
			t.Fatalf("verify: %v %+v", err, vs)
		}
		if !slices.Contains(vs[0].HeaderKeys, "Subject") {
			t.Errorf("Subject not signed: %v", vs[0].HeaderKeys)
		}
		// A body changed in transit no longer verifies.
		tampered := bytes.Replace(got[0].Data, []byte("Hello"), []byte("Jello"), 1)
		vs, _ = dkim.VerifyWithOptions(bytes.NewReader(tampered), &dkim.VerifyOptions{
			LookupTXT: func(string) ([]string, error) { return []string{value}, nil },
		})
		if len(vs) != 1 || vs[0].Err == nil {
			t.Fatal("tampered message verified")
		}
		fi, err := os.Stat(filepath.Join(keyDir, "local.test.pem"))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("key file: %v %v", fi, err)
		}
		// A message claiming a domain that is not ours is sent unsigned and
		// no key is made for it.
		e.enqueue("alice@local.test", []string{"ok@remote.test"}, testMessage("someone@elsewhere.test", "foreign"))
		e.runOnce()
		if got := e.srv.messages(); len(got) != 2 || bytes.Contains(got[1].Data, []byte("DKIM-Signature")) {
			t.Fatal("foreign From was signed")
		}
		if _, err := os.Stat(filepath.Join(keyDir, "elsewhere.test.pem")); !os.IsNotExist(err) {
			t.Fatal("key generated for a foreign domain")
		}
	})
	// The key survives: a new queue over the same directory publishes the
	// same record.
	e := newEnv(t, testdb.SQLiteURL(t), func(e *env, c *Config) { c.DKIMKeyDir = keyDir })
	_, v1, _ := e.q.DKIMRecord("local.test")
	e2 := newEnv(t, testdb.SQLiteURL(t), func(e *env, c *Config) { c.DKIMKeyDir = keyDir })
	if _, v2, _ := e2.q.DKIMRecord("local.test"); v1 != v2 {
		t.Fatal("key changed between queues")
	}
	if _, _, err := e.q.DKIMRecord("../etc"); err == nil {
		t.Fatal("path traversal in DKIM domain accepted")
	}
}

func TestSmarthost(t *testing.T) {
	for _, mode := range []SmarthostTLS{SmarthostSTARTTLS, SmarthostImplicitTLS} {
		t.Run(string(mode), func(t *testing.T) {
			forBackends(t, func(t *testing.T, dbURL string) {
				relay := startMTA(t, serverOpts{startTLS: mode == SmarthostSTARTTLS, implicit: mode == SmarthostImplicitTLS, authUser: "relayuser"})
				e := newEnv(t, dbURL, func(e *env, c *Config) {
					c.Smarthost = "relay.test:587"
					c.SmarthostTLS = mode
					c.SmarthostUser, c.SmarthostPass = "relayuser", "secret"
					e.dial.route("relay.test:587", relay.Addr)
					e.dns.deny = true // every remote message goes to the relay: no MX lookups
				})
				e.enqueue("alice@local.test", []string{"x@remote.test", "y@other.test", "alice@local.test"}, testMessage("alice@local.test", "relayed"))
				e.runOnce()
				got := relay.messages()
				if len(got) != 1 || !got[0].TLS || got[0].AuthUser != "relayuser" {
					t.Fatalf("relay received %+v", got)
				}
				slices.Sort(got[0].To)
				if !slices.Equal(got[0].To, []string{"x@remote.test", "y@other.test"}) {
					t.Fatalf("relay recipients %q", got[0].To)
				}
				if len(e.srv.messages()) != 0 {
					t.Fatal("MX server reached in smarthost mode")
				}
				// The local recipient is delivered to the store, not relayed.
				if len(e.inboxMessages()) != 1 {
					t.Fatal("local recipient not delivered locally")
				}
				if e.countQueued() != 0 {
					t.Fatal("queue not empty")
				}
			})
		})
	}
	t.Run("bad-password-defers", func(t *testing.T) {
		relay := startMTA(t, serverOpts{startTLS: true, authUser: "relayuser"})
		e := newEnv(t, testdb.SQLiteURL(t), func(e *env, c *Config) {
			c.Smarthost = "relay.test:587"
			c.SmarthostUser, c.SmarthostPass = "relayuser", "wrong"
			e.dial.route("relay.test:587", relay.Addr)
		})
		e.enqueue("alice@local.test", []string{"x@remote.test"}, testMessage("alice@local.test", "badauth"))
		e.runOnce()
		// Our relay refusing us is our configuration's fault, not the
		// sender's: deferred, never bounced.
		if got := e.rows(); !slices.Equal(got, []string{"x@remote.test queued 1"}) || len(e.inboxMessages()) != 0 {
			t.Fatalf("rows %q", got)
		}
	})
	if err := (&Config{Smarthost: "relay:25", SmarthostTLS: SmarthostPlain, SmarthostUser: "u"}).Validate(); err == nil {
		t.Fatal("credentials over a plain-text smarthost accepted")
	}
}

func TestTLSPolicy(t *testing.T) {
	forBackends(t, func(t *testing.T, dbURL string) {
		tlsSrv := startMTA(t, serverOpts{startTLS: true})
		e := newEnv(t, dbURL, func(e *env, c *Config) {
			c.TLSPolicy = map[string]TLSMode{"secure.test": TLSRequired, "plain.test": TLSRequired}
			e.dns.mx["secure.test"] = []*net.MX{{Host: "mx.secure.test", Pref: 10}}
			e.dns.mx["plain.test"] = []*net.MX{{Host: "mx.plain.test", Pref: 10}}
			e.dns.ips["mx.secure.test"] = []string{"192.0.2.10"}
			e.dns.ips["mx.plain.test"] = []string{"192.0.2.11"}
			e.dial.route("192.0.2.10:25", tlsSrv.Addr)
			e.dial.route("192.0.2.11:25", e.srv.Addr) // no STARTTLS there
		})
		e.enqueue("alice@local.test", []string{"a@secure.test", "b@plain.test", "c@remote.test"}, testMessage("alice@local.test", "tls"))
		e.runOnce()
		// Required and offered: delivered over TLS (certificate verified).
		if got := tlsSrv.messages(); len(got) != 1 || !got[0].TLS {
			t.Fatalf("secure.test: %+v", got)
		}
		// Opportunistic (remote.test) to a server without STARTTLS: plain.
		got := e.srv.messages()
		if len(got) != 1 || got[0].To[0] != "c@remote.test" || got[0].TLS {
			t.Fatalf("remote.test: %+v", got)
		}
		// Required and not offered: stays queued, temporary, no bounce.
		if rows := e.rows(); !slices.Equal(rows, []string{"a@secure.test delivered 1", "b@plain.test queued 1", "c@remote.test delivered 1"}) {
			t.Fatalf("rows %q", rows)
		}
		items, _ := e.q.List(e.ctx, ListOptions{Domain: "plain.test"})
		if len(items) != 1 || !strings.Contains(items[0].Recipients[1].LastError, "STARTTLS") {
			t.Fatalf("items %+v", items)
		}
		if len(e.inboxMessages()) != 0 {
			t.Fatal("required-TLS failure bounced")
		}
	})
	// A STARTTLS whose handshake fails (the server speaks only TLS 1.1,
	// below our minimum): opportunistic falls back to clear text on a new
	// connection (RFC 7435 6); required keeps the message queued.
	t.Run("handshake-fails", func(t *testing.T) {
		old := testTLS.server.Clone()
		old.MaxVersion = tls.VersionTLS11
		weak := startMTA(t, serverOpts{startTLS: true, tlsCfg: old})
		e := newEnv(t, testdb.SQLiteURL(t), func(e *env, c *Config) {
			c.TLSPolicy = map[string]TLSMode{"secure.test": TLSRequired}
			e.dns.mx["secure.test"] = []*net.MX{{Host: "mx.secure.test", Pref: 10}}
			e.dns.ips["mx.secure.test"] = []string{"192.0.2.1"}
			e.dial.route("192.0.2.1:25", weak.Addr)
		})
		e.enqueue("alice@local.test", []string{"c@remote.test"}, testMessage("alice@local.test", "weak1"))
		e.runOnce()
		if got := weak.messages(); len(got) != 1 || got[0].TLS {
			t.Fatalf("opportunistic: received %+v", got)
		}
		if d := e.dial.log(); len(d) != 2 {
			t.Fatalf("dialed %q, want a second, clear-text connection", d)
		}
		e.enqueue("alice@local.test", []string{"a@secure.test"}, testMessage("alice@local.test", "weak2"))
		e.runOnce()
		if rows := e.rows(); !slices.Equal(rows, []string{"a@secure.test queued 1"}) || len(weak.messages()) != 1 {
			t.Fatalf("required: rows %q, received %d", rows, len(weak.messages()))
		}
	})
	// Opportunistic TLS with a certificate nobody trusts still encrypts.
	t.Run("opportunistic-untrusted", func(t *testing.T) {
		tlsSrv := startMTA(t, serverOpts{startTLS: true})
		e := newEnv(t, testdb.SQLiteURL(t), func(e *env, c *Config) {
			c.RootCAs = nil
			e.dial.route("192.0.2.1:25", tlsSrv.Addr)
		})
		e.enqueue("alice@local.test", []string{"c@remote.test"}, testMessage("alice@local.test", "opp"))
		e.runOnce()
		if got := tlsSrv.messages(); len(got) != 1 || !got[0].TLS {
			t.Fatalf("received %+v", got)
		}
	})
}

func TestMXSelection(t *testing.T) {
	e := newEnv(t, testdb.SQLiteURL(t), func(e *env, c *Config) {
		e.dns.mx["multi.test"] = []*net.MX{{Host: "backup.multi.test.", Pref: 20}, {Host: "primary.multi.test.", Pref: 10}}
		e.dns.ips["primary.multi.test"] = []string{"192.0.2.20"} // refuses connections
		e.dns.ips["backup.multi.test"] = []string{"192.0.2.21"}
		e.dial.route("192.0.2.21:25", e.srv.Addr)
		e.dns.ips["nomx.test"] = []string{"192.0.2.30"} // no MX: the domain's own address
		e.dial.route("192.0.2.30:25", e.srv.Addr)
		e.dns.mx["nullmx.test"] = []*net.MX{{Host: ".", Pref: 0}}
	})
	e.enqueue("alice@local.test", []string{"a@multi.test"}, testMessage("alice@local.test", "mx1"))
	e.runOnce()
	if d := e.dial.log(); !slices.Equal(d, []string{"192.0.2.20:25", "192.0.2.21:25"}) {
		t.Fatalf("dialed %q, want primary then backup", d)
	}
	e.enqueue("alice@local.test", []string{"b@nomx.test"}, testMessage("alice@local.test", "mx2"))
	e.runOnce()
	if got := e.srv.messages(); len(got) != 2 || got[1].To[0] != "b@nomx.test" {
		t.Fatalf("implicit MX: received %+v", got)
	}
	// No MX and no address, and a null MX (RFC 7505): permanent, bounced.
	e.enqueue("alice@local.test", []string{"c@nowhere.test", "d@nullmx.test"}, testMessage("alice@local.test", "mx3"))
	e.runOnce()
	inbox := e.inboxMessages()
	if len(inbox) != 2 {
		t.Fatalf("%d bounces, want 2 (one per domain)", len(inbox))
	}
	all := ""
	for _, m := range inbox {
		_, st, _ := dsnParts(t, m)
		all += st
	}
	if !strings.Contains(all, "Status: 5.1.2") || !strings.Contains(all, "Status: 5.1.10") {
		t.Fatalf("statuses:\n%s", all)
	}
}

func TestCrashedWorkerClaimIsRetaken(t *testing.T) {
	forBackends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, nil)
		e.enqueue("alice@local.test", []string{"ok@remote.test"}, testMessage("alice@local.test", "claimed"))
		// Another worker claimed the row and died.
		if _, err := e.store.DB().X.ExecContext(e.ctx, e.store.DB().Rebind(`UPDATE queue_recipients SET claimed_by = 'dead', claim_expires = ?`),
			e.clock.Now().Add(15*time.Minute).Unix()); err != nil {
			t.Fatal(err)
		}
		e.runOnce()
		if len(e.srv.messages()) != 0 {
			t.Fatal("delivered a row another worker holds")
		}
		e.clock.Advance(15 * time.Minute)
		e.runOnce()
		if len(e.srv.messages()) != 1 || e.countQueued() != 0 {
			t.Fatal("expired claim not retaken")
		}
	})
}

func TestDeleteReleasesBlob(t *testing.T) {
	forBackends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, nil)
		raw := testMessage("alice@local.test", "delete")
		e.enqueue("alice@local.test", []string{"defer@remote.test", "reject@remote.test"}, raw)
		items, err := e.q.List(e.ctx, ListOptions{Sender: "alice@local.test"})
		if err != nil || len(items) != 1 || len(items[0].Recipients) != 2 {
			t.Fatalf("List: %+v %v", items, err)
		}
		if err := e.q.Delete(e.ctx, items[0].ID); err != nil {
			t.Fatal(err)
		}
		if refs, dead := e.blobRow(raw); refs != 0 || dead == nil || *dead != e.clock.Now().Unix() {
			t.Fatalf("blob refs %d dead %v after Delete", refs, dead)
		}
		if e.countQueued() != 0 || len(e.rows()) != 0 {
			t.Fatal("rows left after Delete")
		}
		e.fsckClean("after Delete")
		if err := e.q.Delete(e.ctx, items[0].ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second Delete: %v", err)
		}
		e.runOnce()
		if len(e.srv.messages()) != 0 || e.srv.tries("reject@remote.test") != 0 || len(e.inboxMessages()) != 0 {
			t.Fatal("deleted message delivered or bounced")
		}
		// The dead body can now be purged like any other.
		if n, err := e.store.PurgeDead(e.ctx, 0); err != nil || n != 1 {
			t.Fatalf("PurgeDead: %d %v", n, err)
		}
	})
}

// TestConcurrentRunsDeliverOnce runs two queues, each with its own store
// and connection pool as two processes would have, against one database:
// every recipient is delivered exactly once.
func TestConcurrentRunsDeliverOnce(t *testing.T) {
	forBackends(t, func(t *testing.T, dbURL string) {
		srv := startMTA(t, serverOpts{})
		blobs := openBlobs(t)
		dns := &fakeDNS{t: t, mx: map[string][]*net.MX{}, ips: map[string][]string{}}
		dial := &fakeDialer{routes: map[string]string{}}
		for _, d := range []string{"one.test", "two.test", "three.test"} {
			dns.mx[d] = []*net.MX{{Host: "mx." + d, Pref: 10}}
			dns.ips["mx."+d] = []string{"192.0.2.40"}
		}
		dial.route("192.0.2.40:25", srv.Addr)
		var queues []*Queue
		for i := 0; i < 2; i++ {
			st := openStore(t, dbURL, blobs, nil)
			q, err := New(st, Config{Hostname: fmt.Sprintf("node%d.local.test", i), Resolver: dns, Dialer: dial,
				PollInterval: 5 * time.Millisecond, Batch: 7, Concurrency: 4})
			if err != nil {
				t.Fatal(err)
			}
			queues = append(queues, q)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for _, q := range queues {
			wg.Add(1)
			go func() { defer wg.Done(); q.Run(ctx) }()
		}
		const n = 40
		for i := 0; i < n; i++ {
			raw := []byte(fmt.Sprintf("From: <s@local.test>\r\nSubject: m%d\r\n\r\nbody %d\r\n", i, i))
			if err := queues[i%2].Enqueue(ctx, "s@local.test", []string{fmt.Sprintf("r%d@one.test", i), fmt.Sprintf("r%d@two.test", i), fmt.Sprintf("r%d@three.test", i)}, raw); err != nil {
				t.Fatal(err)
			}
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			var left int
			if err := queues[0].db.X.GetContext(ctx, &left, `SELECT COUNT(*) FROM queue_messages`); err != nil {
				t.Fatal(err)
			}
			if left == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d messages still queued", left)
			}
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		wg.Wait()
		count := map[string]int{}
		for _, m := range srv.messages() {
			for _, to := range m.To {
				count[to]++
			}
		}
		if len(count) != 3*n {
			t.Fatalf("%d distinct recipients reached, want %d", len(count), 3*n)
		}
		for to, c := range count {
			if c != 1 {
				t.Errorf("%s received %d copies", to, c)
			}
		}
	})
}

func TestLocalRecipientInQueue(t *testing.T) {
	e := newEnv(t, testdb.SQLiteURL(t), nil)
	e.enqueue("bob@remote.test", []string{"Alice@local.test", "nobody@local.test"}, testMessage("bob@remote.test", "local"))
	e.runOnce()
	e.runOnce()
	if len(e.inboxMessages()) != 1 {
		t.Fatal("local recipient not delivered to INBOX")
	}
	// The unknown local recipient bounced to the remote sender.
	got := e.srv.messages()
	if len(got) != 1 || got[0].To[0] != "bob@remote.test" {
		t.Fatalf("received %+v", got)
	}
	if _, st, _ := dsnParts(t, got[0].Data); !strings.Contains(st, "Final-Recipient: rfc822; nobody@local.test\r\nAction: failed\r\nStatus: 5.1.1") {
		t.Fatalf("status:\n%s", st)
	}
}

func TestDSNGolden(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.FixedZone("CST", 8*3600))
	dsn := buildDSN(dsnInput{
		Hostname: "mta.example.gov.cn",
		Sender:   "zhang.san@example.gov.cn",
		Arrival:  at,
		Now:      at.Add(5 * 24 * time.Hour),
		RetryFor: 5 * 24 * time.Hour,
		Token:    "42.7",
		Recipients: []dsnRecipient{
			{Rcpt: "li.si@other.example", Status: "5.1.1", Diagnostic: "smtp; 550 5.1.1 no such user\r\nInjected: field", RemoteMTA: "mx.other.example", LastAttempt: at},
			{Rcpt: "wang.wu@slow.example", Status: "4.4.1", Diagnostic: "x-govhub; could not connect to mx.slow.example", LastAttempt: at.Add(5 * 24 * time.Hour), Expired: true},
		},
		Original: []byte("From: =?UTF-8?B?5byg5LiJ?= <zhang.san@example.gov.cn>\nTo: li.si@other.example\nSubject: =?UTF-8?B?5YWz5LqO5Lya6K6u55qE6YCa55+l?=\nMessage-ID: <m1@example.gov.cn>\n\n会议通知正文，不应出现在退信中。\n"),
	})
	golden := filepath.Join("testdata", "dsn.golden")
	if *update {
		if err := os.WriteFile(golden, dsn, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if !bytes.Equal(dsn, want) {
		t.Fatalf("DSN differs from %s (run with -update if intended):\n%s", golden, dsn)
	}
	// It parses as a report, and the injected line stayed inside the
	// Diagnostic-Code value.
	_, status, headers := dsnParts(t, dsn)
	if strings.Contains(status, "\r\nInjected:") || strings.Contains(headers, "会议通知正文") {
		t.Fatalf("status:\n%s\nheaders:\n%s", status, headers)
	}
}

// TestEnqueueWaitsForPurge: a purge of the very same bytes is in flight
// (blobs row in state 1). Enqueue must not take a reference on a row whose
// body is being deleted: it waits until the row is gone and stores the body
// again, so the queue never points at a deleted body.
func TestEnqueueWaitsForPurge(t *testing.T) {
	forBackends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, nil)
		db := e.store.DB()
		raw := testMessage("alice@local.test", "purging")
		id := mailcore.BlobIDOf(raw)
		if err := e.store.Blobs().Put(e.ctx, id, raw); err != nil {
			t.Fatal(err)
		}
		if _, err := db.X.ExecContext(e.ctx, db.Rebind(`INSERT INTO blobs (sha, size, refs, state, dead_at) VALUES (?, ?, 0, 1, 1)`), id[:], len(raw)); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- e.q.Enqueue(e.ctx, "alice@local.test", []string{"ok@remote.test"}, raw) }()
		select {
		case err := <-done:
			t.Fatalf("Enqueue returned (%v) while the body's row was purging", err)
		case <-time.After(150 * time.Millisecond):
		}
		// The purge finishes: body deleted, then the row.
		if err := e.store.Blobs().Delete(e.ctx, []mailcore.BlobID{id}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.X.ExecContext(e.ctx, db.Rebind(`DELETE FROM blobs WHERE sha = ?`), id[:]); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Enqueue still waiting after the purge finished")
		}
		if ok, err := e.store.Blobs().Has(e.ctx, id); err != nil || !ok {
			t.Fatal("body not stored again after the purge")
		}
		if refs, dead := e.blobRow(raw); refs != 1 || dead != nil {
			t.Fatalf("refs %d dead %v", refs, dead)
		}
		e.runOnce()
		if len(e.srv.messages()) != 1 {
			t.Fatal("not delivered")
		}
	})
}

// TestNoBareLineEndingsLeave: a body carrying bare CR and LF (the material
// of SMTP smuggling, "\r.\r\n" and "\n.\n") leaves with CRLF only, and
// the hidden "second message" stays inside the first.
func TestNoBareLineEndingsLeave(t *testing.T) {
	e := newEnv(t, testdb.SQLiteURL(t), nil)
	raw := []byte("From: <alice@local.test>\r\nSubject: smuggle\r\n\r\nline\r.\r\nMAIL FROM:<evil@x>\n.\nRCPT TO:<victim@remote.test>\r\nend\r\n")
	e.enqueue("alice@local.test", []string{"ok@remote.test"}, raw)
	e.runOnce()
	got := e.srv.messages()
	if len(got) != 1 || e.srv.tries("victim@remote.test") != 0 {
		t.Fatalf("received %d messages, victim tries %d", len(got), e.srv.tries("victim@remote.test"))
	}
	d := got[0].Data
	for i, c := range d {
		if c == '\r' && (i+1 == len(d) || d[i+1] != '\n') || c == '\n' && (i == 0 || d[i-1] != '\r') {
			t.Fatalf("bare line ending at %d in %q", i, d)
		}
	}
	if !bytes.Contains(d, []byte("MAIL FROM:<evil@x>")) {
		t.Fatalf("body lost: %q", d)
	}
}

// TestPendingBounceAfterCrash: a worker recorded a permanent failure
// (status 2) and died before sending the bounce. The next pass sends it
// from the stored diagnostic, once.
func TestPendingBounceAfterCrash(t *testing.T) {
	forBackends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, nil)
		raw := testMessage("alice@local.test", "crashed")
		e.enqueue("alice@local.test", []string{"gone@remote.test"}, raw)
		db := e.store.DB()
		if _, err := db.X.ExecContext(e.ctx, db.Rebind(`UPDATE queue_recipients SET status = 2, attempts = 1, dsn_status = '5.1.1',
			last_error = 'smtp; 550 5.1.1 gone', remote_mta = 'mx1.remote.test', claimed_by = 'dead', claim_expires = ?`), e.clock.Now().Unix()); err != nil {
			t.Fatal(err)
		}
		e.runOnce()
		e.runOnce()
		if e.srv.tries("gone@remote.test") != 0 {
			t.Fatal("failed recipient tried again")
		}
		inbox := e.inboxMessages()
		if len(inbox) != 1 {
			t.Fatalf("%d bounces, want 1", len(inbox))
		}
		if _, st, _ := dsnParts(t, inbox[0]); !strings.Contains(st, "Diagnostic-Code: smtp; 550 5.1.1 gone\r\n") {
			t.Fatalf("status:\n%s", st)
		}
		if e.countQueued() != 0 {
			t.Fatal("still queued")
		}
		if refs, _ := e.blobRow(raw); refs != 0 {
			t.Fatalf("refs %d", refs)
		}
	})
}

// TestManyRecipientsSplitIntoTransactions: RFC 5321 4.5.3.1.8 only
// promises 100 recipients per transaction, so 250 recipients of one domain
// go in three.
func TestManyRecipientsSplitIntoTransactions(t *testing.T) {
	e := newEnv(t, testdb.SQLiteURL(t), nil)
	var rcpts []string
	for i := 0; i < 250; i++ {
		rcpts = append(rcpts, fmt.Sprintf("u%d@remote.test", i))
	}
	e.enqueue("alice@local.test", rcpts, testMessage("alice@local.test", "many"))
	e.runOnce()
	got := e.srv.messages()
	total := 0
	for _, m := range got {
		if len(m.To) > 100 {
			t.Fatalf("a transaction with %d recipients", len(m.To))
		}
		total += len(m.To)
	}
	if len(got) != 3 || total != 250 || e.countQueued() != 0 {
		t.Fatalf("%d transactions, %d recipients, %d queued", len(got), total, e.countQueued())
	}
}

// TestUnreadableBodyIsRetriedThenBounced: a body the blob store cannot
// return is a temporary failure on the normal schedule, not a tight loop,
// and bounces (without a header to return) at expiry.
func TestUnreadableBodyIsRetriedThenBounced(t *testing.T) {
	e := newEnv(t, testdb.SQLiteURL(t), func(e *env, c *Config) { c.RetryFor = time.Hour })
	raw := testMessage("alice@local.test", "lost")
	e.enqueue("alice@local.test", []string{"ok@remote.test"}, raw)
	if err := e.store.Blobs().Delete(e.ctx, []mailcore.BlobID{mailcore.BlobIDOf(raw)}); err != nil {
		t.Fatal(err)
	}
	if n := e.runOnce(); n != 1 {
		t.Fatalf("pass handled %d rows, want 1 (no spinning)", n)
	}
	if rows := e.rows(); !slices.Equal(rows, []string{"ok@remote.test queued 1"}) {
		t.Fatalf("rows %q", rows)
	}
	e.clock.Advance(time.Hour)
	e.runOnce()
	inbox := e.inboxMessages()
	if len(inbox) != 1 || e.countQueued() != 0 || len(e.srv.messages()) != 0 {
		t.Fatalf("inbox %d, queued %d, sent %d", len(inbox), e.countQueued(), len(e.srv.messages()))
	}
	if _, st, _ := dsnParts(t, inbox[0]); !strings.Contains(st, "Status: 4.3.0") {
		t.Fatalf("status:\n%s", st)
	}
}
