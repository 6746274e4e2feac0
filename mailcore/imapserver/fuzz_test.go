package imapserver

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// pipeListener hands net.Pipe server ends to the server.
type pipeListener struct {
	ch   chan net.Conn
	once sync.Once
	done chan struct{}
}

func newPipeListener() *pipeListener {
	return &pipeListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
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

// panicCatcher fails the fuzz run when go-imap reports a recovered panic
// (it recovers them itself, so they would otherwise pass unseen).
type panicCatcher struct {
	mu     sync.Mutex
	panics []string
}

func (p *panicCatcher) Enabled(context.Context, slog.Level) bool { return true }
func (p *panicCatcher) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "panic") {
		p.mu.Lock()
		p.panics = append(p.panics, r.Message)
		p.mu.Unlock()
	}
	return nil
}
func (p *panicCatcher) WithAttrs([]slog.Attr) slog.Handler { return p }
func (p *panicCatcher) WithGroup(string) slog.Handler      { return p }

// FuzzSession feeds arbitrary bytes to an authenticated session with
// INBOX selected, over TLS on a net.Pipe; no input may panic the server.
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		"c FETCH 1:* (FLAGS BODY[] BODY.PEEK[1.MIME] BODYSTRUCTURE ENVELOPE)\r\n",
		"c UID SEARCH OR FROM x NOT (SUBJECT y SMALLER 10) UID 1:*\r\n",
		"c APPEND INBOX (\\Seen) {5+}\r\nhello\r\n",
		"c STORE 1 +FLAGS (\\Deleted kw)\r\nd EXPUNGE\r\n",
		"c UID\r\nd UID FETCH\r\ne FETCH 1 BODY[<-1>]\r\n",
		"c IDLE\r\nDONE\r\n",
		"c MOVE 1 Trash\r\nd COPY 1:* \"../x\"\r\n",
		"c CREATE \"a//b\"\r\nd RENAME INBOX \"\"\r\n",
		"c GETQUOTAROOT INBOX\r\nd NAMESPACE\r\ne ENABLE X\r\n",
		"c AUTHENTICATE PLAIN\r\n*\r\n",
		"c APPEND INBOX {99999999+}\r\n",
	} {
		f.Add([]byte(s))
	}
	pc := &panicCatcher{}
	e := newEnvFuzz(f, slog.New(pc))
	l := newPipeListener()
	go e.srv.ServeTLS(l)
	f.Cleanup(func() { l.Close() })
	e.deliver("seed", "a@example.gov", "body")

	f.Fuzz(func(t *testing.T, data []byte) {
		srvEnd, cliEnd := net.Pipe()
		select {
		case l.ch <- srvEnd:
		case <-time.After(5 * time.Second):
			t.Fatal("server not accepting")
		}
		cliEnd.SetDeadline(time.Now().Add(3 * time.Second))
		tc := tls.Client(cliEnd, e.clientTLS)
		defer tc.Close()
		drained := make(chan struct{})
		go func() { io.Copy(io.Discard, tc); close(drained) }()
		prelude := "a LOGIN \"" + testUser + "\" \"" + testPass + "\"\r\nb SELECT INBOX\r\n"
		if _, err := tc.Write([]byte(prelude)); err != nil && !errors.Is(err, io.ErrClosedPipe) {
			return
		}
		tc.Write(data)
		tc.Write([]byte("\r\nz LOGOUT\r\n"))
		// End of input: a literal the data left open must not keep the
		// session waiting.
		tc.CloseWrite()
		<-drained
		pc.mu.Lock()
		defer pc.mu.Unlock()
		if len(pc.panics) > 0 {
			t.Fatalf("server panicked on %q: %s", data, pc.panics[0])
		}
	})
}

func newEnvFuzz(f *testing.F, log *slog.Logger) *env {
	return newEnv(f, func(c *Config) {
		c.Logger = log
		c.MaxLiteral = 1 << 20
	})
}
