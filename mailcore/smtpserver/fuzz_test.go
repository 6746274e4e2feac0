package smtpserver

import (
	"bytes"
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/govhub/govhub/internal/testdb"
)

// pipeListener hands net.Pipe server ends to a Serve method.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}
func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// closeSignal reports when the server has finished with a connection.
type closeSignal struct {
	net.Conn
	once sync.Once
	done chan struct{}
}

func (c *closeSignal) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { close(c.done) })
	return err
}

// FuzzSession feeds arbitrary client bytes to an MX session over net.Pipe.
// The server must not panic, and every message it stores must be one it may
// store: CRLF only, within the size limit, with its trace headers.
func FuzzSession(f *testing.F) {
	for _, seed := range []string{
		"EHLO a\r\nMAIL FROM:<x@elsewhere.example>\r\nRCPT TO:<bob@example.gov.cn>\r\nDATA\r\nSubject: s\r\n\r\nbody\r\n.\r\nQUIT\r\n",
		"EHLO a\r\nMAIL FROM:<x@e.example>\r\nRCPT TO:<bob@example.gov.cn>\r\nDATA\r\nhello\n.\nMAIL FROM:<y@e.example>\r\n.\r\n",
		"HELO a\r\nMAIL FROM:<> SIZE=99999999999\r\nRCPT TO:<@a,@b:bob@example.gov.cn>\r\nBDAT 5 LAST\r\nab\r\nc",
		"EHLO a\r\nSTARTTLS\r\nAUTH PLAIN AGFsaWNlAHB3\r\n",
		"EHLO a\r\nMAIL FROM:<x@e.example>\r\nRCPT TO:<bob@example.gov.cn>\r\nBDAT 4\r\nab\r\nBDAT 0 LAST\r\n",
		"\x00\xff\r\n\r\n..\r\nRSET\r\nVRFY bob\r\nNOOP\r\nMAIL FROM:<\"a b\"@e.example> BODY=8BITMIME SMTPUTF8\r\nRCPT TO:<老王@example.gov.cn>\r\n",
	} {
		f.Add([]byte(seed))
	}
	store := openStore(f, testdb.SQLiteURL(f))
	seed(f, store)
	srv, err := New(store, nil, &fakeOutbound{}, Config{
		Hostname: "fuzz.example", MaxMessageSize: 64 << 10, MaxConnsPerIP: -1, MaxConnRate: -1,
		ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
	})
	if err != nil {
		f.Fatal(err)
	}
	ln := &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
	go srv.ServeMX(ln)
	f.Cleanup(func() { srv.Close() })
	ctx := context.Background()
	_, inbox, err := store.ResolveRecipient(ctx, bob)
	if err != nil {
		f.Fatal(err)
	}
	var lastUID uint32

	f.Fuzz(func(t *testing.T, in []byte) {
		client, server := net.Pipe()
		sig := &closeSignal{Conn: server, done: make(chan struct{})}
		ln.conns <- sig
		go func() {
			var buf [4096]byte
			for {
				if _, err := client.Read(buf[:]); err != nil {
					return
				}
			}
		}()
		client.SetWriteDeadline(time.Now().Add(5 * time.Second))
		client.Write(in)
		// Give the session a moment to act on the last command, then hang
		// up; wait until the server is done with the connection.
		time.Sleep(time.Millisecond)
		client.Close()
		select {
		case <-sig.done:
		case <-time.After(10 * time.Second):
			t.Fatal("session did not end")
		}
		msgs, err := store.Messages(ctx, inbox.MailboxID, lastUID, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			lastUID = m.UID
			raw, err := store.ReadMessage(ctx, inbox.MailboxID, m.UID)
			if err != nil {
				t.Fatal(err)
			}
			if i := bareLineEnding(raw); i >= 0 {
				t.Fatalf("stored a message with a bare line ending at %d: %q", i, raw)
			}
			if !bytes.HasPrefix(raw, []byte("Return-Path: <")) || !bytes.Contains(raw, []byte("\r\nReceived: from ")) {
				t.Fatalf("stored a message without trace headers: %q", raw)
			}
			if len(raw) > 64<<10+1024 {
				t.Fatalf("stored %d bytes over the limit", len(raw))
			}
		}
	})
}
