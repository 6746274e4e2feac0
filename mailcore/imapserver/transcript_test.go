package imapserver

import (
	"crypto/tls"
	"fmt"
	"io"
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
