package imapserver

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// RFC 9051 6.2.3 / RFC 3501 6.2.3: "the server ... MUST NOT permit the
// LOGIN command" without TLS unless configured; LOGINDISABLED advertises it.
func TestLoginRefusedBeforeTLS(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dialPlain()
	untagged, st := c.cmd("a", "CAPABILITY")
	if caps := strings.Join(untagged, " "); !strings.Contains(caps, "STARTTLS") || !strings.Contains(caps, "LOGINDISABLED") || strings.Contains(caps, "AUTH=PLAIN") {
		t.Fatalf("capabilities before TLS: %q %q", caps, st)
	}
	if _, st := c.cmd("b", fmt.Sprintf("LOGIN %q %q", testUser, testPass)); !strings.HasPrefix(st, "b NO [PRIVACYREQUIRED]") {
		t.Fatalf("LOGIN before TLS: %q", st)
	}
	if _, st := c.cmd("c", "AUTHENTICATE PLAIN AGFsaWNlQGV4YW1wbGUuZ292AGNvcnJlY3QgaG9yc2UgYmF0dGVyeQ=="); !strings.HasPrefix(st, "c NO [PRIVACYREQUIRED]") {
		t.Fatalf("AUTHENTICATE before TLS: %q", st)
	}
	// STARTTLS then LOGIN works.
	_, st = c.cmd("d", "STARTTLS")
	if !strings.HasPrefix(st, "d OK") {
		t.Fatalf("STARTTLS: %q", st)
	}
	tc := tls.Client(c.c, e.clientTLS)
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c.c = tc
	c.br.Reset(tc)
	untagged, _ = c.cmd("e", "CAPABILITY")
	if caps := strings.Join(untagged, " "); strings.Contains(caps, "STARTTLS") || !strings.Contains(caps, "AUTH=PLAIN") {
		t.Fatalf("capabilities after TLS: %q", caps)
	}
	c.login()
}

// RFC 9051 6.2.1: the client must not pipeline after STARTTLS, and
// nothing sent in plaintext after it may be acted on once TLS is up.
func TestSTARTTLSPipelinedCommandIgnored(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.AllowInsecureAuth = true })
	c := e.dialPlain()
	c.send("a STARTTLS\r\nb LOGIN " + fmt.Sprintf("%q %q", testUser, testPass) + "\r\nc SELECT INBOX\r\n")
	c.expect("a OK")
	tc := tls.Client(c.c, e.clientTLS)
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tc.Handshake(); err == nil {
		// If the handshake survived, the plaintext commands must not have
		// been run: the session is still not authenticated.
		br := c.br
		br.Reset(tc)
		c.c = tc
		if _, st := c.cmd("x", "SELECT INBOX"); !strings.HasPrefix(st, "x NO") && !strings.HasPrefix(st, "x BAD") {
			t.Fatalf("pipelined LOGIN was acted on after STARTTLS: %q", st)
		}
	}
}

// RFC 7888 4 (LITERAL+): a server receiving a non-synchronizing literal
// over its limit may close the connection; we answer BYE and close, so the
// literal's bytes are never parsed as commands. A synchronizing literal
// over the limit is refused (RFC 9051 7.5: no "+" continuation is sent).
func TestOversizeLiteral(t *testing.T) {
	const max = 4096
	e := newEnv(t, func(c *Config) { c.MaxLiteral = max })

	t.Run("sync", func(t *testing.T) {
		c := e.dialTLS()
		c.login()
		c.send(fmt.Sprintf("a APPEND INBOX {%d}\r\n", max+1001))
		// go-imap answers an untagged BAD (it stops parsing before the
		// tag is attached, RFC 9051 7.1.5 allows it) and no "+".
		l := c.line()
		if !strings.HasPrefix(l, "* BAD") && !strings.HasPrefix(l, "a BAD") && !strings.HasPrefix(l, "a NO") {
			t.Fatalf("sync oversize literal: got %q, want BAD/NO and no continuation", l)
		}
		// The connection stays usable.
		if _, st := c.cmd("b", "NOOP"); !strings.HasPrefix(st, "b OK") {
			t.Fatalf("after refused literal: %q", st)
		}
	})
	t.Run("nonsync", func(t *testing.T) {
		c := e.dialTLS()
		c.login()
		body := strings.Repeat("x", max+1001)
		// The literal's content is a command that must never run.
		inject := "z CREATE Injected\r\n"
		c.send(fmt.Sprintf("a APPEND INBOX {%d+}\r\n%s%s\r\n", max+1001, inject, body[len(inject):]))
		l := c.line()
		if !strings.HasPrefix(l, "* BYE") {
			t.Fatalf("nonsync oversize literal: got %q, want * BYE", l)
		}
		if rest, _ := io.ReadAll(c.br); len(rest) != 0 {
			t.Fatalf("server kept talking after BYE: %q", rest)
		}
		mbs, _ := e.store.Mailboxes(t.Context(), e.acct.ID)
		for _, m := range mbs {
			if m.Name == "Injected" {
				t.Fatal("literal content was run as a command")
			}
		}
	})
	t.Run("within", func(t *testing.T) {
		c := e.dialTLS()
		c.login()
		msg := "Subject: ok\r\n\r\nhello\r\n"
		c.send(fmt.Sprintf("a APPEND INBOX {%d+}\r\n%s\r\n", len(msg), msg))
		if l := c.expect("a "); !strings.HasPrefix(l, "a OK [APPENDUID ") {
			t.Fatalf("APPEND: %q", l)
		}
	})
}

// RFC 9051 4: commands are lines; a line past the limit is not buffered
// without bound but ends the connection with BYE.
func TestOverlongLine(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxLine = 8192 })
	c := e.dialTLS()
	c.send("a NOOP " + strings.Repeat("A", 9000))
	if l := c.line(); !strings.HasPrefix(l, "* BYE") {
		t.Fatalf("over-long line: %q", l)
	}
}

// RFC 9051 5.1: mailbox names are the server's to constrain. ".." levels,
// empty levels and control characters would let a name escape or confuse
// the hierarchy; they are refused with NO.
func TestMailboxNameTraversal(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dialTLS()
	c.login()
	for _, name := range []string{`"../INBOX"`, `"a/../../b"`, `"a//b"`, `"/abs"`, `".."`, "{3}\r\na\x01b", `"a/./b"`} {
		for _, verb := range []string{"CREATE", "SELECT", "DELETE", "RENAME INBOX/x"} {
			cmdline := verb + " " + name
			if strings.HasPrefix(name, "{") {
				c.send("t " + verb + " {3}\r\n")
				c.expect("+")
				c.send("a\x01b\r\n")
				var st string
				for {
					st = c.line()
					if strings.HasPrefix(st, "t ") {
						break
					}
				}
				if !strings.HasPrefix(st, "t NO") && !strings.HasPrefix(st, "t BAD") {
					t.Fatalf("%s with control character: %q", verb, st)
				}
				continue
			}
			_, st := c.cmd("t", cmdline)
			if !strings.HasPrefix(st, "t NO") && !strings.HasPrefix(st, "t BAD") {
				t.Fatalf("%s: %q", cmdline, st)
			}
		}
	}
	mbs, _ := e.store.Mailboxes(t.Context(), e.acct.ID)
	for _, m := range mbs {
		if strings.Contains(m.Name, "..") || strings.Contains(m.Name, "b") && m.Name != "Archive" {
			t.Fatalf("mailbox created: %q", m.Name)
		}
	}
}

// RFC 9051 7.1.5: a command the server cannot parse gets BAD, and the
// session goes on.
func TestGarbageCommands(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dialTLS()
	for _, g := range []string{"\x00\x01\x02", "a", "a FROB", "a SELECT", "a FETCH 1:* (FLAGS", "a UID", "* LOGIN x y", "a LOGIN {99999999999}", "a FETCH 1 BODY[<-1>]", ")))((("} {
		c.send(g + "\r\n")
		l := c.line()
		if !strings.Contains(l, "BAD") && !strings.Contains(l, "NO") {
			t.Fatalf("garbage %q: %q", g, l)
		}
	}
	c.login()
	c.cmd("s", "SELECT INBOX")
	for _, g := range []string{"a FETCH 1 BODY[<-1>]", "a FETCH 0:-1 FLAGS", "a UID EXPUNGE", "a STORE 1 FROB (x)", "a SEARCH FROB"} {
		_, st := c.cmd("g", strings.TrimPrefix(g, "a "))
		if strings.HasPrefix(st, "g OK") && g != "a FETCH 1 BODY[<-1>]" {
			t.Fatalf("garbage %q accepted: %q", g, st)
		}
	}
	if _, st := c.cmd("n", "NOOP"); !strings.HasPrefix(st, "n OK") {
		t.Fatalf("session broken after garbage: %q", st)
	}
}

// RFC 3691 (UNSELECT) and RFC 9051 6.4.2 (CLOSE): CLOSE expunges \Deleted
// silently, UNSELECT does not expunge; both leave no mailbox selected.
func TestCloseUnselect(t *testing.T) {
	e := newEnv(t, nil)
	e.deliver("a", "a@example.gov", "x")
	e.deliver("b", "a@example.gov", "x")
	c := e.dialTLS()
	c.login()
	c.cmd("s", "SELECT INBOX")
	c.cmd("d", "STORE 1 +FLAGS.SILENT (\\Deleted)")
	if untagged, st := c.cmd("u", "UNSELECT"); len(untagged) != 0 || !strings.HasPrefix(st, "u OK") {
		t.Fatalf("UNSELECT: %q %q", untagged, st)
	}
	if _, st := c.cmd("f", "FETCH 1 FLAGS"); strings.HasPrefix(st, "f OK") {
		t.Fatalf("FETCH after UNSELECT: %q", st)
	}
	if n, _ := e.store.Counts(t.Context(), e.inbox.ID); n.Messages != 2 {
		t.Fatalf("UNSELECT expunged: %d messages", n.Messages)
	}
	c.cmd("s", "SELECT INBOX")
	if untagged, st := c.cmd("c", "CLOSE"); len(untagged) != 0 || !strings.HasPrefix(st, "c OK") {
		t.Fatalf("CLOSE: %q %q", untagged, st)
	}
	if n, _ := e.store.Counts(t.Context(), e.inbox.ID); n.Messages != 1 {
		t.Fatalf("CLOSE left %d messages", n.Messages)
	}
	if _, st := c.cmd("f", "FETCH 1 FLAGS"); strings.HasPrefix(st, "f OK") {
		t.Fatalf("FETCH after CLOSE: %q", st)
	}
	// EXAMINE is read-only: STORE refused, BODY[] does not set \Seen.
	c.cmd("e", "EXAMINE INBOX")
	if _, st := c.cmd("st", "STORE 1 +FLAGS (\\Flagged)"); strings.HasPrefix(st, "st OK") {
		t.Fatalf("STORE in EXAMINE: %q", st)
	}
	c.cmd("b", "FETCH 1 BODY[]")
	if m, _ := e.store.Messages(t.Context(), e.inbox.ID, 0, 10); m[0].Flags != 0 {
		t.Fatalf("flags after EXAMINE BODY[]: %v", m[0].Flags.Names())
	}
}

// A client that connects to the implicit-TLS port and never completes the
// handshake is dropped after the accept-time deadline, not the 30-minute
// autologout.
func TestHandshakeDeadline(t *testing.T) {
	const timeout = 500 * time.Millisecond
	e := newEnv(t, func(c *Config) { c.HandshakeTimeout = timeout })
	c, err := net.Dial("tcp", e.tlsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	io.Copy(io.Discard, c) // we never send a ClientHello
	if d := time.Since(start); d > timeout+3*time.Second {
		t.Fatalf("silent client held for %v", d)
	}
}

// RFC 4616 PLAIN through AUTHENTICATE (RFC 9051 6.2.2), with the initial
// response inline (SASL-IR, RFC 4959) and after a continuation; a wrong
// password is NO [AUTHENTICATIONFAILED] with generic text.
func TestAuthenticatePlain(t *testing.T) {
	e := newEnv(t, nil)
	ir := base64.StdEncoding.EncodeToString([]byte("\x00" + testUser + "\x00" + testPass))
	c := e.dialTLS()
	if _, st := c.cmd("a", "AUTHENTICATE PLAIN "+ir); !strings.HasPrefix(st, "a OK [CAPABILITY ") {
		t.Fatalf("SASL-IR: %q", st)
	}
	c = e.dialTLS()
	c.send("a AUTHENTICATE PLAIN\r\n")
	c.expect("+")
	c.send(ir + "\r\n")
	if l := c.expect("a "); !strings.HasPrefix(l, "a OK") {
		t.Fatalf("continuation: %q", l)
	}
	if _, st := c.cmd("s", "SELECT INBOX"); !strings.HasPrefix(st, "s OK") {
		t.Fatalf("select after AUTHENTICATE: %q", st)
	}
	c = e.dialTLS()
	bad := base64.StdEncoding.EncodeToString([]byte("\x00" + testUser + "\x00wrong"))
	if _, st := c.cmd("a", "AUTHENTICATE PLAIN "+bad); st != "a NO [AUTHENTICATIONFAILED] Authentication failed" {
		t.Fatalf("bad password: %q", st)
	}
	if _, st := c.cmd("b", "LOGIN "+testUser+" wrong"); st != "b NO [AUTHENTICATIONFAILED] Authentication failed" {
		t.Fatalf("bad LOGIN: %q", st)
	}
}

// RFC 2177: flag changes made by another session of this process reach a
// session in IDLE as FETCH FLAGS.
func TestIdleSeesOtherSessionFlags(t *testing.T) {
	e := newEnv(t, nil)
	e.deliver("a", "a@example.gov", "x")
	a, b := e.dialTLS(), e.dialTLS()
	a.login()
	b.login()
	a.cmd("s", "SELECT INBOX")
	b.cmd("s", "SELECT INBOX")
	a.send("i IDLE\r\n")
	a.expect("+")
	b.cmd("f", "STORE 1 +FLAGS (\\Flagged)")
	if l := a.expect("* 1 FETCH"); l != `* 1 FETCH (UID 1 FLAGS (\Flagged))` {
		t.Fatalf("IDLE flags: %q", l)
	}
	a.send("DONE\r\n")
	a.expect("i OK")
}

// AllowInsecureAuth permits plaintext LOGIN from loopback only.
func TestInsecureAuthLoopbackOnly(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.AllowInsecureAuth = true })
	c := e.dialPlain()
	c.login() // 127.0.0.1
	remote := &session{s: e.srv, loopback: false}
	if remote.canAuth() {
		t.Fatal("plaintext auth allowed from a non-loopback address")
	}
	off := newEnv(t, nil)
	if (&session{s: off.srv, loopback: true}).canAuth() {
		t.Fatal("plaintext auth allowed on loopback without AllowInsecureAuth")
	}
}
