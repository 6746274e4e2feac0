package smtpserver

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/govhub/govhub/internal/testdb"
)

func smtpCode(t *testing.T, err error) (int, smtp.EnhancedCode) {
	t.Helper()
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want an SMTP error", err)
	}
	return se.Code, se.EnhancedCode
}

// TestMXDeliversOnBothBackends: a message for a local user is stored byte
// for byte after Return-Path and Received (RFC 5321 4.4), on SQLite and
// PostgreSQL.
func TestMXDeliversOnBothBackends(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			e := newEnv(t, b.URL(t), nil)
			msg := message("你好", "第一封信")
			if err := e.sendMX(t, "sender@elsewhere.example", []string{bob}, bytes.NewReader(msg)); err != nil {
				t.Fatal(err)
			}
			got := e.inbox(t, bob)
			if len(got) != 1 {
				t.Fatalf("%d messages in INBOX", len(got))
			}
			prefix := checkStored(t, got[0], msg, "sender@elsewhere.example")
			for _, want := range []string{"from localhost ([127.0.0.1])", "by mx.example.gov.cn (govhub) with ESMTP id ", "for <" + bob + ">", "Mon, 02 Mar 2026 08:30:00 +0800"} {
				if !strings.Contains(prefix, want) {
					t.Errorf("Received %q lacks %q", prefix, want)
				}
			}
		})
	}
}

// TestMXTranscript: refusals at RCPT, each citing its rule.
func TestMXTranscript(t *testing.T) {
	e := newEnv(t, "", nil)
	rc := dialRaw(t, e.mx)
	ehlo := strings.Join(rc.cmd("EHLO client.example", "250 "), "\n")
	// RFC 1870: SIZE advertised with the limit; STARTTLS offered; no AUTH on MX.
	for _, want := range []string{"SIZE 52428800", "STARTTLS", "LIMITS RCPTMAX=1000"} {
		if !strings.Contains(ehlo, want) {
			t.Errorf("EHLO lacks %s: %s", want, ehlo)
		}
	}
	if strings.Contains(ehlo, "AUTH") {
		t.Errorf("MX offers AUTH: %s", ehlo)
	}
	rc.cmd("MAIL FROM:<x@elsewhere.example>", "250 ")
	rc.cmd("RCPT TO:<nobody@example.gov.cn>", "550 5.1.1")    // unknown local user: refused in-session, no backscatter
	rc.cmd("RCPT TO:<victim@elsewhere.example>", "550 5.7.1") // RFC 5321 7.1: no open relay
	rc.cmd("RCPT TO:<"+departed+">", "550 5.1.1")             // left: as unknown (documented)
	rc.cmd("RCPT TO:<"+full+">", "452 4.2.2")                 // RFC 3463 4.2.2: already over quota
	rc.cmd("RCPT TO:<not an address>", "501 ")
	rc.cmd("RCPT TO:<"+bob+">", "250 ")
	rc.cmd("RSET", "250 ")
	// With SIZE, a recipient the message would put over quota is refused at RCPT.
	rc.cmd("MAIL FROM:<x@elsewhere.example> SIZE=2000", "250 ")
	rc.cmd("RCPT TO:<"+tight+">", "452 4.2.2")
	rc.cmd("RCPT TO:<"+bob+">", "250 ")
	rc.cmd("QUIT", "221 ")
}

// TestAliasAndSubaddress: an alias and a +tag address land in the account,
// and an address with its alias in one transaction gets one copy.
func TestAliasAndSubaddress(t *testing.T) {
	e := newEnv(t, "", nil)
	msg := message("alias", "body")
	if err := e.sendMX(t, "x@elsewhere.example", []string{aliceAl, alice, "alice+news@example.gov.cn"}, bytes.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	got := e.inbox(t, alice)
	if len(got) != 1 {
		t.Fatalf("%d copies, want 1", len(got))
	}
	if strings.Contains(string(got[0][:len(got[0])-len(msg)]), "for <") {
		t.Error("Received names a recipient although there were several")
	}
}

// TestQuotaAtData: a recipient that passes RCPT but is over quota when the
// message arrives: with another recipient, 250 and the failed one is
// handed to Outbound (which retries and bounces); alone, 452 4.2.2 and
// nothing stored.
func TestQuotaAtData(t *testing.T) {
	e := newEnv(t, "", nil)
	big := message("big", strings.Repeat("y", 1500))
	if err := e.sendMX(t, "x@elsewhere.example", []string{tight, bob}, bytes.NewReader(big)); err != nil {
		t.Fatalf("partial failure answered %v, want 250", err)
	}
	if n := len(e.inbox(t, bob)); n != 1 {
		t.Fatalf("bob has %d messages", n)
	}
	if n := len(e.inbox(t, tight)); n != 0 {
		t.Fatalf("over-quota recipient has %d messages", n)
	}
	calls := e.out.Calls()
	if len(calls) != 1 || len(calls[0].rcpts) != 1 || calls[0].rcpts[0] != tight || calls[0].from != "x@elsewhere.example" {
		t.Fatalf("outbound calls %+v", calls)
	}
	if !bytes.HasSuffix(calls[0].raw, big) || !bytes.HasPrefix(calls[0].raw, []byte("Received: ")) {
		t.Fatal("queued copy is not Received + the message")
	}

	err := e.sendMX(t, "x@elsewhere.example", []string{tight}, bytes.NewReader(big))
	if code, ec := smtpCode(t, err); code != 452 || ec != (smtp.EnhancedCode{4, 2, 2}) {
		t.Fatalf("got %d %v, want 452 4.2.2", code, ec)
	}
	if len(e.out.Calls()) != 1 {
		t.Fatal("all-failed message was queued")
	}

	// If Outbound cannot take the failed recipient, the message is not
	// acknowledged (the sender retries; a duplicate beats a loss).
	e.out.mu.Lock()
	e.out.fail = errors.New("queue down")
	e.out.mu.Unlock()
	err = e.sendMX(t, "x@elsewhere.example", []string{tight, bob}, bytes.NewReader(big))
	if code, _ := smtpCode(t, err); code != 451 {
		t.Fatalf("got %d, want 451", code)
	}
}

// TestSmuggling: only CRLF.CRLF ends DATA (RFC 5321 4.1.1.4), and a message
// with a bare LF or CR is refused (554 5.6.0) before it is stored, so a
// smuggled second message can neither be executed here nor relayed to a
// server that would end DATA at the bare ending.
func TestSmuggling(t *testing.T) {
	e := newEnv(t, "", nil)
	for _, v := range []struct{ name, end string }{
		{"LF.LF", "\n.\n"},
		{"CRLF.LF", "\r\n.\n"},
		{"LF.CRLF", "\n.\r\n"},
		{"CR.CRLF", "\r.\r\n"},
	} {
		t.Run(v.name, func(t *testing.T) {
			rc := dialRaw(t, e.mx)
			rc.cmd("EHLO client.example", "250 ")
			rc.cmd("MAIL FROM:<x@elsewhere.example>", "250 ")
			rc.cmd("RCPT TO:<"+bob+">", "250 ")
			rc.cmd("DATA", "354 ")
			// The smuggled transaction would, if the fake end were taken
			// for the real one, produce replies of its own.
			rc.send("Subject: first\r\n\r\nhello" + v.end +
				"MAIL FROM:<ceo@example.gov.cn>\r\nRCPT TO:<" + bob + ">\r\nDATA\r\nSubject: smuggled\r\n\r\nsend money\r\n.\r\n")
			rc.expect("554 5.6.0")
			// The next reply is NOOP's: no smuggled command was run.
			rc.cmd("NOOP", "250 2.0.0")
			if n := len(e.inbox(t, bob)); n != 0 {
				t.Fatalf("%d messages stored", n)
			}
		})
	}
	// Submission: a smuggling message is never relayed. (Raw: go-smtp's
	// client would turn the bare LF into CRLF.)
	tc, err := tls.Dial("tcp", e.subs, e.clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	rc := &rawClient{t: t, c: tc, r: newReader(tc)}
	rc.expect("220 ")
	rc.cmd("EHLO client.example", "250 ")
	rc.cmd("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00"+alice+"\x00"+alicePW)), "235 ")
	rc.cmd("MAIL FROM:<"+alice+">", "250 ")
	rc.cmd("RCPT TO:<victim@elsewhere.example>", "250 ")
	rc.cmd("DATA", "354 ")
	rc.send("Subject: a\r\n\r\nx\n.\nMAIL FROM:<ceo@example.gov.cn>\r\n.\r\n")
	rc.expect("554 5.6.0")
	if n := len(e.out.Calls()); n != 0 {
		t.Fatalf("relayed %d messages with bare LF", n)
	}
	// A clean message on the same server is still accepted.
	if err := e.sendMX(t, "x@elsewhere.example", []string{bob}, bytes.NewReader(message("ok", "fine"))); err != nil {
		t.Fatal(err)
	}
}

func TestBareLineEnding(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"a\r\nb\r\n", -1}, {"", -1}, {"a\nb", 1}, {"a\rb", 1}, {"a\r", 1}, {"a\r\r\n", 1}, {"\n", 0},
	} {
		if got := bareLineEnding([]byte(tc.in)); got != tc.want {
			t.Errorf("bareLineEnding(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

// TestSTARTTLSInjection: commands pipelined after STARTTLS in the same
// packet (CVE-2011-0411 style) are discarded, not run inside TLS
// (RFC 3207 4.2: the client must discard knowledge from before TLS, and
// the server likewise). go-smtp replaces its buffered reader after the
// handshake; this test fails if that ever changes.
func TestSTARTTLSInjection(t *testing.T) {
	e := newEnv(t, "", nil)
	for _, addr := range []string{e.mx, e.sub} {
		rc := dialRaw(t, addr)
		rc.cmd("EHLO client.example", "250 ")
		rc.send("STARTTLS\r\nMAIL FROM:<evil@elsewhere.example>\r\nRCPT TO:<" + bob + ">\r\n")
		rc.expect("220 ")
		tc := tls.Client(rc.c, e.clientTLS)
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		tr := &rawClient{t: t, c: tc, r: newReader(tc)}
		// Had the injected MAIL survived, its reply (502: no EHLO yet in
		// the new session) would come first.
		lines := tr.cmd("EHLO client.example", "250 ")
		if !strings.HasPrefix(lines[0], "250-") {
			t.Fatalf("first reply after TLS %q", lines)
		}
		tr.cmd("RCPT TO:<"+bob+">", "502 5.5.1") // no MAIL in this session
		tr.cmd("QUIT", "221 ")
	}
}

// TestSubmissionAuthOnlyAfterTLS: on 587, AUTH is neither offered nor
// accepted before STARTTLS (RFC 4954 4; RFC 8314 3), MAIL needs AUTH, and
// after TLS both PLAIN and LOGIN are offered.
func TestSubmissionAuthOnlyAfterTLS(t *testing.T) {
	e := newEnv(t, "", nil)
	rc := dialRaw(t, e.sub)
	ehlo := strings.Join(rc.cmd("EHLO client.example", "250 "), "\n")
	if strings.Contains(ehlo, "AUTH") || !strings.Contains(ehlo, "STARTTLS") {
		t.Fatalf("plaintext EHLO: %s", ehlo)
	}
	ir := base64.StdEncoding.EncodeToString([]byte("\x00" + alice + "\x00" + alicePW))
	rc.cmd("AUTH PLAIN "+ir, "523 5.7.10")
	rc.cmd("AUTH LOGIN", "523 5.7.10")
	rc.cmd("MAIL FROM:<"+alice+">", "530 5.7.0")
	rc.cmd("STARTTLS", "220 ")
	tc := tls.Client(rc.c, e.clientTLS)
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	tr := &rawClient{t: t, c: tc, r: newReader(tc)}
	ehlo = strings.Join(tr.cmd("EHLO client.example", "250 "), "\n")
	if !strings.Contains(ehlo, "AUTH PLAIN LOGIN") || strings.Contains(ehlo, "STARTTLS") {
		t.Fatalf("TLS EHLO: %s", ehlo)
	}
	tr.cmd("MAIL FROM:<"+alice+">", "530 5.7.0")
	// LOGIN, step by step (draft-murchison-sasl-login).
	tr.cmd("AUTH LOGIN", "334 "+base64.StdEncoding.EncodeToString([]byte("Username:")))
	tr.cmd(base64.StdEncoding.EncodeToString([]byte(alice)), "334 "+base64.StdEncoding.EncodeToString([]byte("Password:")))
	tr.cmd(base64.StdEncoding.EncodeToString([]byte(alicePW)), "235 ")
	tr.cmd("MAIL FROM:<"+alice+">", "250 ")
}

// TestSubmission: local recipients delivered, remote ones queued, sender
// limited to the account's address and aliases, on 587 and 465.
func TestSubmission(t *testing.T) {
	e := newEnv(t, "", nil)
	dial := map[string]func() (*smtp.Client, error){
		"starttls": func() (*smtp.Client, error) { return smtp.DialStartTLS(e.sub, e.clientTLS) },
		"implicit": func() (*smtp.Client, error) { return smtp.DialTLS(e.subs, e.clientTLS) },
	}
	n := 0
	for name, d := range dial {
		t.Run(name, func(t *testing.T) {
			c, err := d()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Auth(sasl.NewPlainClient("", alice, alicePW)); err != nil {
				t.Fatal(err)
			}
			// Someone else's address: 553 5.7.1.
			err = c.Mail(bob, nil)
			if code, ec := smtpCode(t, err); code != 553 || ec != (smtp.EnhancedCode{5, 7, 1}) {
				t.Fatalf("foreign sender: %d %v", code, ec)
			}
			c.Reset()
			if err := c.Mail("<>", nil); err == nil {
				t.Fatal("null sender accepted on submission")
			}
			c.Reset()
			msg := message("submitted "+name, "hi")
			if err := c.SendMail(aliceAl, []string{bob, "Remote@Elsewhere.example"}, bytes.NewReader(msg)); err != nil {
				t.Fatal(err)
			}
			n++
			got := e.inbox(t, bob)
			if len(got) != n {
				t.Fatalf("bob has %d", len(got))
			}
			prefix := checkStored(t, got[n-1], msg, aliceAl)
			if !strings.Contains(prefix, "with ESMTPSA id ") || !strings.Contains(prefix, "\r\n\ttls TLS_") {
				t.Errorf("Received lacks ESMTPSA and tls clause: %q", prefix)
			}
			calls := e.out.Calls()
			last := calls[len(calls)-1]
			if len(calls) != n || last.from != aliceAl || len(last.rcpts) != 1 || last.rcpts[0] != "remote@elsewhere.example" || !bytes.HasSuffix(last.raw, msg) {
				t.Fatalf("queued %+v", calls)
			}
			if bytes.HasPrefix(last.raw, []byte("Return-Path")) {
				t.Error("queued copy carries Return-Path (only final delivery adds it)")
			}
			// Nothing saved to Sent: clients APPEND their own copy.
			ctx := context.Background()
			a, _ := e.store.AccountByAddress(ctx, alice)
			sent, _ := e.store.MailboxByName(ctx, a.ID, "Sent")
			if m, _ := e.store.Messages(ctx, sent.ID, 0, 10); len(m) != 0 {
				t.Fatal("submission saved a copy to Sent")
			}
		})
	}
}

// TestAuthFailures: wrong password 535 5.7.8 (RFC 4954 6), and the
// connection is closed after MaxAuthFailures; the attempts are logged
// without the password.
func TestAuthFailures(t *testing.T) {
	e := newEnv(t, "", nil)
	c, err := smtp.DialTLS(e.subs, e.clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 2; i++ {
		err := c.Auth(sasl.NewPlainClient("", alice, "wrong-secret"))
		if code, ec := smtpCode(t, err); code != 535 || ec != (smtp.EnhancedCode{5, 7, 8}) {
			t.Fatalf("attempt %d: %d %v", i, code, ec)
		}
	}
	err = c.Auth(sasl.NewPlainClient("", alice, "wrong-secret"))
	if code, _ := smtpCode(t, err); code != 421 {
		t.Fatalf("third failure: %v", err)
	}
	if err := c.Noop(); err == nil {
		t.Fatal("connection still usable after too many failures")
	}
	// An authzid other than the user is refused.
	c2, err := smtp.DialTLS(e.subs, e.clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.Auth(sasl.NewPlainClient(bob, alice, alicePW)); err == nil {
		t.Fatal("authzid of another user accepted")
	}
	if strings.Contains(e.logs.String(), "wrong-secret") || strings.Contains(e.logs.String(), alicePW) {
		t.Fatal("password in the log")
	}
}

// TestRecipientLimit: at least 100 recipients are always accepted
// (RFC 5321 4.5.3.1.8), the configured limit is honoured, and the next
// gets 452 4.5.3 (RFC 5321 4.5.3.1.10).
func TestRecipientLimit(t *testing.T) {
	for _, tc := range []struct{ configured, want int }{{50, 100}, {150, 150}} {
		e := newEnv(t, "", func(c *Config) { c.MaxRecipients = tc.configured })
		rc := dialRaw(t, e.mx)
		rc.cmd("EHLO client.example", "250 ")
		rc.cmd("MAIL FROM:<x@elsewhere.example>", "250 ")
		var b strings.Builder
		for i := 0; i <= tc.want; i++ {
			b.WriteString("RCPT TO:<" + bob + ">\r\n")
		}
		rc.send(b.String()) // RFC 2920 pipelining
		for i := 0; i < tc.want; i++ {
			rc.expect("250 ")
		}
		rc.expect("452 4.5.3")
		rc.cmd("DATA", "354 ")
		rc.send("Subject: many\r\n\r\nx\r\n.\r\n")
		rc.expect("250 ")
		if n := len(e.inbox(t, bob)); n != 1 {
			t.Fatalf("bob has %d copies", n)
		}
	}
}

// TestSizeLimits: SIZE above the limit refused at MAIL (RFC 1870 6: 552
// 5.3.4), and DATA above it refused with nothing stored.
func TestSizeLimits(t *testing.T) {
	e := newEnv(t, "", func(c *Config) { c.MaxMessageSize = 10000 })
	rc := dialRaw(t, e.mx)
	ehlo := strings.Join(rc.cmd("EHLO client.example", "250 "), "\n")
	if !strings.Contains(ehlo, "SIZE 10000") {
		t.Fatalf("EHLO %s", ehlo)
	}
	rc.cmd("MAIL FROM:<x@elsewhere.example> SIZE=20000", "552 5.3.4")
	rc.cmd("MAIL FROM:<x@elsewhere.example>", "250 ")
	rc.cmd("RCPT TO:<"+bob+">", "250 ")
	rc.cmd("DATA", "354 ")
	rc.send("Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("z", 98)+"\r\n", 200) + ".\r\n")
	rc.expect("552 5.3.4")
	rc.cmd("NOOP", "250 ")
	if n := len(e.inbox(t, bob)); n != 0 {
		t.Fatalf("%d stored", n)
	}
}

// TestLongLine: a line over MaxLineLength ends the connection with 500
// 5.4.0 (RFC 5321 4.5.3.1.4/4.5.3.1.6 limits, doubled).
func TestLongLine(t *testing.T) {
	e := newEnv(t, "", nil)
	rc := dialRaw(t, e.mx)
	rc.cmd("EHLO client.example", "250 ")
	rc.send("NOOP " + strings.Repeat("a", 3000) + "\r\n")
	rc.expect("500 5.4.0")
	rc.expectClosed()

	// Inside DATA too: nothing stored.
	rc = dialRaw(t, e.mx)
	rc.cmd("EHLO client.example", "250 ")
	rc.cmd("MAIL FROM:<x@elsewhere.example>", "250 ")
	rc.cmd("RCPT TO:<"+bob+">", "250 ")
	rc.cmd("DATA", "354 ")
	rc.send("Subject: long\r\n\r\n" + strings.Repeat("b", 5000) + "\r\n.\r\n")
	lines := rc.reply()
	if !strings.HasPrefix(lines[0], "5") {
		t.Fatalf("long DATA line answered %q", lines)
	}
	if n := len(e.inbox(t, bob)); n != 0 {
		t.Fatalf("%d stored", n)
	}
}

// TestConnLimits: concurrent connections and connection rate per IP.
func TestConnLimits(t *testing.T) {
	e := newEnv(t, "", func(c *Config) { c.MaxConnsPerIP = 2; c.MaxConnRate = 4; c.ConnRateWindow = time.Minute })
	a := dialRaw(t, e.mx)
	b := dialRaw(t, e.sub) // limits span listeners
	c := &rawClient{t: t, c: mustDial(t, e.mx)}
	c.r = newReader(c.c)
	c.expect("421 4.7.0")
	c.expectClosed()
	a.cmd("QUIT", "221 ")
	a.expectClosed()
	waitFor(t, func() bool { return e.srv.limits.activeFor("127.0.0.1") == 1 })
	d := dialRaw(t, e.mx) // a slot is free again
	d.cmd("QUIT", "221 ")
	d.expectClosed()
	b.cmd("QUIT", "221 ")
	b.expectClosed()
	waitFor(t, func() bool { return e.srv.limits.activeFor("127.0.0.1") == 0 })
	// 3 admitted within the minute (a, b, d; c was refused): one more
	// is allowed, then the rate refuses.
	f := dialRaw(t, e.mx)
	f.cmd("QUIT", "221 ")
	g := &rawClient{t: t, c: mustDial(t, e.mx)}
	g.r = newReader(g.c)
	g.expect("421 4.7.0")
	e.clock.Advance(61 * time.Second)
	dialRaw(t, e.mx).cmd("QUIT", "221 ")
	if v := counterValue(t, e.srv.metrics.refused.WithLabelValues(ServiceMX, "conn_limit")); v != 1 {
		t.Errorf("conn_limit refusals = %v", v)
	}
	if v := counterValue(t, e.srv.metrics.refused.WithLabelValues(ServiceMX, "conn_rate")); v != 1 {
		t.Errorf("conn_rate refusals = %v", v)
	}
}

// TestReadTimeout: an idle client gets 421 4.4.2 and is disconnected
// (RFC 5321 4.5.3.2.7 server timeout).
func TestReadTimeout(t *testing.T) {
	e := newEnv(t, "", func(c *Config) { c.ReadTimeout = 300 * time.Millisecond })
	rc := dialRaw(t, e.mx)
	start := time.Now()
	rc.expect("421 4.4.2")
	rc.expectClosed()
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("timeout took %v", d)
	}
	// Also in the middle of DATA: a client that stalls is cut off.
	rc = dialRaw(t, e.mx)
	rc.cmd("EHLO client.example", "250 ")
	rc.cmd("MAIL FROM:<x@elsewhere.example>", "250 ")
	rc.cmd("RCPT TO:<"+bob+">", "250 ")
	rc.cmd("DATA", "354 ")
	rc.send("Subject: stalled\r\n\r\nhalf")
	rc.expectClosed()
	if n := len(e.inbox(t, bob)); n != 0 {
		t.Fatalf("%d stored", n)
	}
}

// TestMetrics: counters registered and counting.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, "", func(c *Config) { c.Registerer = reg })
	e.sendMX(t, "x@elsewhere.example", []string{bob}, bytes.NewReader(message("m", "m")))
	e.sendMX(t, "x@elsewhere.example", []string{"nobody@example.gov.cn"}, bytes.NewReader(message("m", "m")))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, n := range []string{"govhub_smtp_connections_total", "govhub_smtp_messages_accepted_total", "govhub_smtp_refused_total"} {
		if !names[n] {
			t.Errorf("metric %s not registered", n)
		}
	}
	if v := counterValue(t, e.srv.metrics.accepted.WithLabelValues(ServiceMX)); v != 1 {
		t.Errorf("accepted = %v", v)
	}
	if v := counterValue(t, e.srv.metrics.refused.WithLabelValues(ServiceMX, "unknown_recipient")); v != 1 {
		t.Errorf("unknown_recipient = %v", v)
	}
	if v := counterValue(t, e.srv.metrics.connections.WithLabelValues(ServiceMX)); v != 2 {
		t.Errorf("connections = %v", v)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestAuthLockout: failures over several connections reach the
// authenticator's lockout; then even the right password gets 454 4.7.0
// (RFC 4954 6, temporary) and the connection is closed.
func TestAuthLockout(t *testing.T) {
	e := newEnv(t, "", nil)
	// Three failures per connection (MaxAuthFailures), ten in all.
	var c *smtp.Client
	for i := 0; i < 10; i++ {
		if i%3 == 0 {
			if c != nil {
				c.Close()
			}
			var err error
			if c, err = smtp.DialTLS(e.subs, e.clientTLS); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Auth(sasl.NewPlainClient("", alice, "guess")); err == nil {
			t.Fatal("wrong password accepted")
		}
	}
	c.Close()
	if v := counterValue(t, e.srv.metrics.refused.WithLabelValues(ServiceSubmissions, "auth_failed")); v != 10 {
		t.Fatalf("auth_failed = %v, want 10", v)
	}
	c, err := smtp.DialTLS(e.subs, e.clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Auth(sasl.NewPlainClient("", alice, alicePW))
	if code, ec := smtpCode(t, err); code != 454 || ec != (smtp.EnhancedCode{4, 7, 0}) {
		t.Fatalf("locked account: %d %v", code, ec)
	}
	if err := c.Noop(); err == nil {
		t.Fatal("connection left open after a lockout")
	}
	// Another user from the same IP is not locked (IP limit is higher).
	c2, err := smtp.DialTLS(e.subs, e.clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.Auth(sasl.NewPlainClient("", carol, carolPW)); err != nil {
		t.Fatal(err)
	}
	if v := counterValue(t, e.srv.metrics.refused.WithLabelValues(ServiceSubmissions, "auth_locked")); v != 1 {
		t.Errorf("auth_locked = %v", v)
	}
}

// TestSTARTTLSHandshakeFailure: when the handshake after STARTTLS fails,
// the connection ends; commands pipelined before STARTTLS are not run in
// the plaintext session go-smtp would otherwise resume (RFC 3207 4.2).
func TestSTARTTLSHandshakeFailure(t *testing.T) {
	e := newEnv(t, "", nil)
	rc := dialRaw(t, e.mx)
	rc.cmd("EHLO client.example", "250 ")
	rc.send("STARTTLS\r\nMAIL FROM:<evil@elsewhere.example>\r\nRCPT TO:<" + bob + ">\r\n")
	rc.expect("220 ")
	rc.send("this is not a TLS ClientHello\r\n")
	rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	rest, _ := io.ReadAll(rc.r)
	if bytes.Contains(rest, []byte("250 ")) || bytes.Contains(rest, []byte("550 5.0.0")) {
		t.Fatalf("plaintext session resumed after failed handshake: %q", rest)
	}
}

// TestStoreFailure: when the store cannot deliver, DATA gets 451 4.3.0
// with generic text (the internal error is logged, not sent) and the
// sender keeps the message.
func TestStoreFailure(t *testing.T) {
	e := newEnv(t, "", nil)
	rc := dialRaw(t, e.mx)
	rc.cmd("EHLO client.example", "250 ")
	rc.cmd("MAIL FROM:<x@elsewhere.example>", "250 ")
	rc.cmd("RCPT TO:<"+bob+">", "250 ")
	e.store.DB().Close() // the delivery transaction fails
	rc.cmd("DATA", "354 ")
	rc.send("Subject: s\r\n\r\nbody\r\n.\r\n")
	lines := rc.expect("451 4.3.0")
	if strings.Contains(strings.Join(lines, ""), "closed") || strings.Contains(strings.Join(lines, ""), "sql") {
		t.Fatalf("internal error leaked: %q", lines)
	}
	if !strings.Contains(e.logs.String(), "database is closed") {
		t.Fatal("internal error not logged")
	}
}
