package smtpserver

import (
	"bytes"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ipLimits counts concurrent connections and recent connection times per IP.
type ipLimits struct {
	maxConns int
	maxRate  int
	window   time.Duration
	now      func() time.Time

	mu        sync.Mutex
	ips       map[string]*ipState
	lastSweep time.Time
}

type ipState struct {
	active int
	recent []time.Time // connection times within the window, oldest first
}

func newIPLimits(maxConns, maxRate int, window time.Duration, now func() time.Time) *ipLimits {
	return &ipLimits{maxConns: maxConns, maxRate: maxRate, window: window, now: now, ips: map[string]*ipState{}}
}

// admit records a new connection from ip, or returns why it is refused.
func (l *ipLimits) admit(ip string) string {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) >= l.window {
		// Forget idle IPs whose recent connections are all out of the
		// window, so refused floods from many addresses do not pile up.
		l.lastSweep = now
		for k, st := range l.ips {
			if st.active <= 0 && (len(st.recent) == 0 || now.Sub(st.recent[len(st.recent)-1]) >= l.window) {
				delete(l.ips, k)
			}
		}
	}
	st := l.ips[ip]
	if st == nil {
		st = &ipState{}
		l.ips[ip] = st
	}
	cut := 0
	for cut < len(st.recent) && now.Sub(st.recent[cut]) >= l.window {
		cut++
	}
	st.recent = st.recent[cut:]
	if l.maxConns > 0 && st.active >= l.maxConns {
		return "conn_limit"
	}
	if l.maxRate > 0 && len(st.recent) >= l.maxRate {
		return "conn_rate"
	}
	st.active++
	if l.maxRate > 0 {
		st.recent = append(st.recent, now)
	}
	return ""
}

func (l *ipLimits) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.ips[ip]
	if st == nil {
		return
	}
	st.active--
	if st.active <= 0 && (len(st.recent) == 0 || l.now().Sub(st.recent[len(st.recent)-1]) >= l.window) {
		delete(l.ips, ip)
	}
}

// limitListener applies the per-IP limits before go-smtp sees a connection
// and wraps every admitted one in a conn.
type limitListener struct {
	net.Listener
	s       *Server
	service string
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteIP(c.RemoteAddr())
		if reason := l.s.limits.admit(ip); reason != "" {
			l.s.refuse(l.service, reason)
			l.s.log.Warn("connection refused", "service", l.service, "ip", ip, "reason", reason)
			// Before TLS even on 465: the client cannot read it there, but
			// the close is what matters. RFC 5321 3.1: 421 may be the
			// greeting of a server that will not serve.
			go func() {
				c.SetWriteDeadline(time.Now().Add(2 * time.Second))
				if l.service != ServiceSubmissions {
					fmt.Fprintf(c, "421 4.7.0 %s Too many connections, try again later\r\n", l.s.cfg.Hostname)
				}
				c.Close()
			}()
			continue
		}
		l.s.metrics.connections.WithLabelValues(l.service).Inc()
		return &conn{Conn: c, limits: l.s.limits, ip: ip, id: l.s.nextID.Add(1), timeout: l.s.cfg.ReadTimeout}, nil
	}
}

// conn is an admitted connection: it sets an idle read deadline before each
// read, releases its per-IP slot once on Close, and can be told to close
// after the next reply is written.
type conn struct {
	net.Conn
	limits  *ipLimits
	ip      string
	id      uint64
	timeout time.Duration

	msgs            atomic.Uint64 // transactions on this connection
	closeAfterWrite atomic.Bool
	tlsStarted      atomic.Bool // STARTTLS accepted: only TLS records may follow
	closeOnce       sync.Once
}

func (c *conn) Read(b []byte) (int, error) {
	if c.timeout > 0 {
		c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
	}
	return c.Conn.Read(b)
}

// startTLSReply is go-smtp's (v0.26.0) positive reply to STARTTLS.
var startTLSReply = []byte("220 2.0.0 Ready to start TLS")

func (c *conn) Write(b []byte) (int, error) {
	if c.tlsStarted.Load() && len(b) > 0 && b[0] >= '0' && b[0] <= '9' {
		// A plaintext reply after STARTTLS was accepted: the handshake
		// failed (go-smtp then says 550 and would go on reading what was
		// pipelined before STARTTLS). Nothing sent before STARTTLS may be
		// acted on after it, so end the connection instead. TLS records
		// never start with an ASCII digit (content types 20-24).
		c.Close()
		return 0, net.ErrClosed
	}
	if bytes.HasPrefix(b, startTLSReply) {
		c.tlsStarted.Store(true)
	}
	n, err := c.Conn.Write(b)
	if c.closeAfterWrite.Load() {
		c.Close()
	}
	return n, err
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() { c.limits.release(c.ip) })
	return err
}

// remoteIP is the address part of a TCP peer, or the address's string for
// other transports (net.Pipe in fuzzing).
func remoteIP(a net.Addr) string {
	if a == nil {
		return "unknown"
	}
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// activeFor reports the connections now open from ip (for tests and
// diagnostics).
func (l *ipLimits) activeFor(ip string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if st := l.ips[ip]; st != nil {
		return st.active
	}
	return 0
}
