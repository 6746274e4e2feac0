package imapserver

import (
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"
)

// limitListener wraps accepted connections in a limitConn (and, for
// implicit TLS, a server-side tls.Conn below it).
type limitListener struct {
	net.Listener
	s   *Server
	tls *tls.Config
}

func (l *limitListener) Accept() (net.Conn, error) {
	raw, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	raw.SetDeadline(time.Now().Add(l.s.cfg.HandshakeTimeout))
	l.s.m.conns.Inc()
	l.s.m.active.Inc()
	st := &connShared{s: l.s}
	var c net.Conn = raw
	if l.tls != nil {
		c = tls.Server(raw, l.tls)
	}
	return newLimitConn(c, st, l.tls != nil), nil
}

// connShared is what a connection keeps across a STARTTLS upgrade.
type connShared struct {
	s         *Server
	closeOnce sync.Once
	wmu       sync.Mutex // serialises writes: go-imap's sender and our BYE
}

// limitConn enforces the line and literal limits on the bytes a client
// sends, before go-imap parses them. go-imap v1 has no line limit at all
// and, on a LITERAL+ (RFC 7888) literal over its MaxLiteralSize, answers
// BAD but then parses the literal's bytes as commands. We close instead:
//
//   - a line (outside literals) longer than Config.MaxLine: "* BYE" and
//     close (RFC 9051 4: the server may close on a line it will not read);
//   - a non-synchronizing literal {n+} with n > Config.MaxLiteral: "* BYE"
//     and close, as RFC 7888 4 permits ("the server MAY ... close the
//     connection");
//   - a synchronizing literal {n} with n too large is left to go-imap,
//     which answers BAD without sending the "+" continuation (RFC 9051
//     7.5), so a conforming client never sends the bytes.
type limitConn struct {
	net.Conn
	sh    *connShared
	isTLS bool

	maxLine int
	maxLit  int64

	lineLen  int
	literal  int64 // bytes of literal data still to pass through
	brace    int   // 0 none; 1 after '{'; 2 digits; 3 after '+'; 4 after '}'; 5 after '}' '\r'
	num      int64
	nonSync  bool
	violated bool

	// Write coalescing, under sh.wmu: go-imap flushes after every line,
	// which is one TLS record and one syscall per FETCH response. Untagged
	// lines ("* ...") are held up to coalesceSize or coalesceDelay; a
	// tagged reply or continuation flushes at once, so no command waits.
	wbuf   []byte
	wtimer *time.Timer
	werr   error
	// talked: the client has sent something. Until then writes go out at
	// once, so the greeting (and with it the TLS handshake) happens while
	// the accept-time handshake deadline still applies.
	talked bool
}

const (
	coalesceSize  = 16 << 10
	coalesceDelay = time.Millisecond
)

func newLimitConn(c net.Conn, sh *connShared, isTLS bool) *limitConn {
	return &limitConn{Conn: c, sh: sh, isTLS: isTLS, maxLine: sh.s.cfg.MaxLine, maxLit: sh.s.cfg.MaxLiteral}
}

var errLimit = errors.New("imapserver: client exceeded a limit")

func (c *limitConn) Read(p []byte) (int, error) {
	if c.violated {
		return 0, errLimit
	}
	n, err := c.Conn.Read(p)
	if n > 0 && !c.talked {
		c.sh.wmu.Lock()
		c.talked = true
		c.sh.wmu.Unlock()
	}
	if why := c.scan(p[:n]); why != "" {
		c.violated = true
		c.sh.s.m.limitClose.WithLabelValues(why).Inc()
		c.sh.s.log.Info("closing connection over limit", "limit", why, "remote", c.RemoteAddr().String())
		msg := "* BYE Command line too long\r\n"
		if why == "literal" {
			msg = "* BYE Literal exceeds the size limit\r\n"
		}
		c.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte(msg))
		c.Close()
		return 0, errLimit
	}
	return n, err
}

// scan follows the client's byte stream: lines, and literals announced by
// "{n}" or "{n+}" at a line's end (RFC 9051 4.3, RFC 7888). It returns the
// limit broken, or "".
func (c *limitConn) scan(b []byte) string {
	for len(b) > 0 {
		if c.literal > 0 {
			k := int64(len(b))
			if k > c.literal {
				k = c.literal
			}
			c.literal -= k
			b = b[k:]
			continue
		}
		ch := b[0]
		b = b[1:]
		if ch == '\n' {
			if c.brace == 4 || c.brace == 5 {
				if c.num > c.maxLit {
					if c.nonSync {
						return "literal"
					}
					// Synchronizing: go-imap refuses it without a "+".
				} else {
					c.literal = c.num
				}
			}
			c.lineLen, c.brace, c.num, c.nonSync = 0, 0, 0, false
			continue
		}
		c.lineLen++
		if c.lineLen > c.maxLine {
			return "line"
		}
		switch {
		case ch == '{':
			c.brace, c.num, c.nonSync = 1, 0, false
		case ch >= '0' && ch <= '9' && (c.brace == 1 || c.brace == 2):
			c.brace = 2
			if c.num < 1<<40 {
				c.num = c.num*10 + int64(ch-'0')
			}
		case ch == '+' && c.brace == 2:
			c.brace, c.nonSync = 3, true
		case ch == '}' && (c.brace == 2 || c.brace == 3):
			c.brace = 4
		case ch == '\r' && c.brace == 4:
			c.brace = 5
		default:
			c.brace = 0
		}
	}
	return ""
}

func (c *limitConn) Write(p []byte) (int, error) {
	c.sh.wmu.Lock()
	defer c.sh.wmu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	untagged := c.talked && len(p) >= 2 && p[0] == '*' && p[1] == ' '
	if !untagged && len(c.wbuf) == 0 {
		return c.Conn.Write(p)
	}
	c.wbuf = append(c.wbuf, p...)
	switch {
	case !untagged:
		return len(p), c.flushLocked(true)
	case len(c.wbuf) >= coalesceSize:
		return len(p), c.flushLocked(false)
	case c.wtimer == nil:
		c.wtimer = time.AfterFunc(coalesceDelay, func() {
			c.sh.wmu.Lock()
			defer c.sh.wmu.Unlock()
			c.wtimer = nil
			c.flushLocked(true)
		})
	}
	return len(p), nil
}

// flushLocked writes the held bytes; release drops the buffer so an idle
// connection holds none.
func (c *limitConn) flushLocked(release bool) error {
	if len(c.wbuf) > 0 && c.werr == nil {
		if _, err := c.Conn.Write(c.wbuf); err != nil {
			c.werr = err
		}
	}
	c.wbuf = c.wbuf[:0]
	if release {
		c.wbuf = nil
		if c.wtimer != nil {
			c.wtimer.Stop()
			c.wtimer = nil
		}
	}
	return c.werr
}

func (c *limitConn) Close() error {
	c.sh.wmu.Lock()
	c.flushLocked(true)
	c.sh.wmu.Unlock()
	c.sh.closeOnce.Do(func() { c.sh.s.m.active.Dec() })
	return c.Conn.Close()
}
