package ldap

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

// A lean client for the one operation that carries 200,000 entries: the
// paged subtree search of a full walk. go-ldap decodes every message into
// a tree of BER packets and re-encodes each child into its parent, which
// made our walk 3-5 times slower than Debian's ldapsearch on the same
// server. This client reads each LDAPMessage (RFC 4511 4.1.1) into one
// buffer and parses SearchResultEntry, SearchResultDone and the paging
// control (RFC 2696) in place. Everything else (binds for passwords,
// content sync, writes, the root DSE) stays with go-ldap.

// rawConn is one bound connection of the lean client.
type rawConn struct {
	nc      net.Conn
	r       *bufio.Reader
	msgID   int64
	timeout time.Duration
	stop    func() bool
}

func (c *rawConn) Close() error {
	c.stop()
	// RFC 4511 4.3: UnbindRequest, then close.
	c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	c.nc.Write(message(c.msgID+1, tlv(0x42, nil), nil))
	return c.nc.Close()
}

// dialRaw connects like dialBind (URL, TLS, StartTLS, simple bind).
func (p *Peer) dialRaw(ctx context.Context) (*rawConn, error) {
	u, err := url.Parse(p.cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("ldap: url: %w", err)
	}
	host := u.Host
	if u.Port() == "" {
		if u.Scheme == "ldaps" {
			host = net.JoinHostPort(u.Hostname(), "636")
		} else {
			host = net.JoinHostPort(u.Hostname(), "389")
		}
	}
	d := &net.Dialer{Timeout: p.cfg.DialTimeout}
	nc, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, fmt.Errorf("ldap: connect %s: %w", p.cfg.URL, err)
	}
	c := &rawConn{nc: nc, timeout: p.cfg.RequestTimeout, stop: func() bool { return false }}
	if u.Scheme == "ldaps" {
		tc := tls.Client(nc, p.tlsCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("ldap: connect %s: %w", p.cfg.URL, err)
		}
		c.nc = tc
	}
	c.r = bufio.NewReaderSize(c.nc, 64<<10)
	fail := func(err error) (*rawConn, error) {
		c.nc.Close()
		return nil, err
	}
	if p.cfg.StartTLS {
		// RFC 4511 4.14.1: ExtendedRequest with the StartTLS OID.
		if err := c.roundTrip(tlv(0x77, tlv(0x80, []byte("1.3.6.1.4.1.1466.20037"))), 0x78); err != nil {
			return fail(fmt.Errorf("ldap: StartTLS refused or failed at %s (RFC 4511 4.14; will not continue in plain text): %w", p.cfg.URL, err))
		}
		tc := tls.Client(c.nc, p.tlsCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(fmt.Errorf("ldap: StartTLS refused or failed at %s (RFC 4511 4.14; will not continue in plain text): %w", p.cfg.URL, err))
		}
		c.nc = tc
		c.r = bufio.NewReaderSize(tc, 64<<10)
	}
	if p.cfg.BindDN != "" {
		// RFC 4511 4.2: version 3, name, simple [0].
		bind := tlv(0x60, cat(tlvInt(0x02, 3), tlv(0x04, []byte(p.cfg.BindDN)), tlv(0x80, []byte(p.cfg.BindSecret))))
		if err := c.roundTrip(bind, 0x61); err != nil {
			// The error carries the server's result code, never the secret.
			return fail(fmt.Errorf("ldap: bind as %s: %w", p.cfg.BindDN, err))
		}
	}
	nc2 := c.nc
	c.stop = context.AfterFunc(ctx, func() { nc2.Close() })
	return c, nil
}

// roundTrip sends op and reads the one response of type want (an
// LDAPResult), returning its error.
func (c *rawConn) roundTrip(op []byte, want byte) error {
	c.msgID++
	if err := c.send(message(c.msgID, op, nil)); err != nil {
		return err
	}
	body, err := c.read()
	if err != nil {
		return err
	}
	m, err := parseMessage(body)
	if err != nil {
		return err
	}
	if m.op != want {
		return fmt.Errorf("ldap: unexpected response 0x%x", m.op)
	}
	return m.resultErr()
}

func (c *rawConn) send(b []byte) error {
	if c.timeout > 0 {
		c.nc.SetWriteDeadline(time.Now().Add(c.timeout))
	}
	_, err := c.nc.Write(b)
	return err
}

// read returns the contents of the next LDAPMessage SEQUENCE, in a buffer
// of its own (entries keep slices of it).
func (c *rawConn) read() ([]byte, error) {
	if c.timeout > 0 {
		c.nc.SetReadDeadline(time.Now().Add(c.timeout))
	}
	tag, err := c.r.ReadByte()
	if err != nil {
		return nil, fmt.Errorf("ldap: read: %w", err)
	}
	if tag != 0x30 {
		return nil, fmt.Errorf("ldap: read: message tag 0x%x", tag)
	}
	n, err := readLength(c.r)
	if err != nil {
		return nil, err
	}
	if n > 64<<20 {
		return nil, fmt.Errorf("ldap: read: message of %d bytes", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c.r, body); err != nil {
		return nil, fmt.Errorf("ldap: read: %w", err)
	}
	return body, nil
}

func readLength(r *bufio.Reader) (int, error) {
	b, err := r.ReadByte()
	if err != nil {
		return 0, fmt.Errorf("ldap: read: %w", err)
	}
	if b < 0x80 {
		return int(b), nil
	}
	k := int(b & 0x7f)
	if k == 0 || k > 4 {
		return 0, errors.New("ldap: read: unsupported BER length")
	}
	n := 0
	for range k {
		b, err := r.ReadByte()
		if err != nil {
			return 0, fmt.Errorf("ldap: read: %w", err)
		}
		n = n<<8 | int(b)
	}
	return n, nil
}

// rawMessage is a parsed LDAPMessage: the protocolOp's tag and contents,
// and the paging cookie of its controls.
type rawMessage struct {
	id        int64
	op        byte
	body      []byte
	cookie    []byte
	hasPaging bool
}

// ber is a cursor over BER-encoded bytes (definite lengths, as RFC 4511
// 5.1 requires).
type ber []byte

// next splits off one element: its tag and contents.
func (b *ber) next() (byte, []byte, error) {
	s := *b
	if len(s) < 2 {
		return 0, nil, errors.New("ldap: truncated BER element")
	}
	tag := s[0]
	n, i := int(s[1]), 2
	if n >= 0x80 {
		k := n & 0x7f
		if k == 0 || k > 4 || len(s) < 2+k {
			return 0, nil, errors.New("ldap: bad BER length")
		}
		n = 0
		for _, c := range s[2 : 2+k] {
			n = n<<8 | int(c)
		}
		i = 2 + k
	}
	if n < 0 || len(s)-i < n {
		return 0, nil, errors.New("ldap: truncated BER element")
	}
	*b = s[i+n:]
	return tag, s[i : i+n], nil
}

func berInt(v []byte) int64 {
	var n int64
	if len(v) > 0 && v[0]&0x80 != 0 {
		n = -1
	}
	for _, c := range v {
		n = n<<8 | int64(c)
	}
	return n
}

func parseMessage(body []byte) (*rawMessage, error) {
	b := ber(body)
	tag, id, err := b.next()
	if err != nil || tag != 0x02 {
		return nil, errors.New("ldap: bad message id")
	}
	m := &rawMessage{id: berInt(id)}
	if m.op, m.body, err = b.next(); err != nil {
		return nil, err
	}
	for len(b) > 0 {
		tag, ctls, err := b.next()
		if err != nil {
			return nil, err
		}
		if tag != 0xa0 { // controls [0]
			continue
		}
		cs := ber(ctls)
		for len(cs) > 0 {
			_, ctl, err := cs.next()
			if err != nil {
				return nil, err
			}
			f := ber(ctl)
			_, oid, err := f.next()
			if err != nil {
				return nil, err
			}
			var value []byte
			for len(f) > 0 {
				t, v, err := f.next()
				if err != nil {
					return nil, err
				}
				if t == 0x04 {
					value = v
				}
			}
			if string(oid) == goldap.ControlTypePaging {
				// RFC 2696: SEQUENCE { size INTEGER, cookie OCTET STRING }.
				pv := ber(value)
				if _, seq, err := pv.next(); err == nil {
					s := ber(seq)
					s.next()
					if _, cookie, err := s.next(); err == nil {
						m.cookie, m.hasPaging = cookie, true
					}
				}
			}
		}
	}
	return m, nil
}

// resultErr is the error of an LDAPResult (RFC 4511 4.1.9), nil for
// success, as a *goldap.Error so goldap.IsErrorWithCode works.
func (m *rawMessage) resultErr() error {
	b := ber(m.body)
	_, code, err := b.next()
	if err != nil {
		return err
	}
	b.next() // matchedDN
	_, diag, _ := b.next()
	c := berInt(code)
	if c == 0 {
		return nil
	}
	return goldap.NewError(uint16(c), errors.New(string(diag)))
}

// entry converts a SearchResultEntry (RFC 4511 4.5.2).
func (m *rawMessage) entry() (*goldap.Entry, error) {
	b := ber(m.body)
	_, dn, err := b.next()
	if err != nil {
		return nil, err
	}
	_, attrs, err := b.next()
	if err != nil {
		return nil, err
	}
	e := &goldap.Entry{DN: string(dn)}
	as := ber(attrs)
	for len(as) > 0 {
		_, a, err := as.next()
		if err != nil {
			return nil, err
		}
		f := ber(a)
		_, typ, err := f.next()
		if err != nil {
			return nil, err
		}
		_, vals, err := f.next()
		if err != nil {
			return nil, err
		}
		ea := &goldap.EntryAttribute{Name: string(typ)}
		vs := ber(vals)
		for len(vs) > 0 {
			_, v, err := vs.next()
			if err != nil {
				return nil, err
			}
			ea.Values = append(ea.Values, string(v))
			ea.ByteValues = append(ea.ByteValues, v)
		}
		e.Attributes = append(e.Attributes, ea)
	}
	return e, nil
}

// searchPaged is conn.pagedSearch over the lean client: an RFC 2696
// paged search calling fn per entry, one page in memory at a time; fn
// returning an error abandons the search (a zero-size page request
// releases the server's cursor).
func (c *rawConn) searchPaged(ctx context.Context, req *goldap.SearchRequest, pageSize int, fn func(*goldap.Entry) error) error {
	filter, err := goldap.CompileFilter(req.Filter)
	if err != nil {
		return fmt.Errorf("ldap: filter: %w", err)
	}
	fb := filter.Bytes()
	var attrs []byte
	for _, a := range req.Attributes {
		attrs = append(attrs, tlv(0x04, []byte(a))...)
	}
	op := tlv(0x63, cat(tlv(0x04, []byte(req.BaseDN)), tlvInt(0x0a, int64(req.Scope)), tlvInt(0x0a, int64(req.DerefAliases)),
		tlvInt(0x02, int64(req.SizeLimit)), tlvInt(0x02, int64(req.TimeLimit)), tlv(0x01, []byte{0}), fb, tlv(0x30, attrs)))
	var cookie []byte
	page := func(size int) error {
		c.msgID++
		ctl := tlv(0x30, cat(tlv(0x04, []byte(goldap.ControlTypePaging)), tlv(0x04, tlv(0x30, cat(tlvInt(0x02, int64(size)), tlv(0x04, cookie))))))
		return c.send(message(c.msgID, op, tlv(0xa0, ctl)))
	}
	abandon := func() {
		if len(cookie) == 0 {
			return
		}
		if page(0) == nil {
			for {
				body, err := c.read()
				if err != nil {
					return
				}
				if m, err := parseMessage(body); err != nil || m.op == 0x65 {
					return
				}
			}
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := page(pageSize); err != nil {
			return fmt.Errorf("ldap: search %s: %w", req.BaseDN, err)
		}
		var next []byte
		for done := false; !done; {
			body, err := c.read()
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return fmt.Errorf("ldap: search %s: %w", req.BaseDN, err)
			}
			m, err := parseMessage(body)
			if err != nil {
				return fmt.Errorf("ldap: search %s: %w", req.BaseDN, err)
			}
			if m.id != c.msgID {
				continue // a notice of disconnection (id 0) or a stray answer
			}
			switch m.op {
			case 0x64: // SearchResultEntry
				e, err := m.entry()
				if err != nil {
					return fmt.Errorf("ldap: search %s: %w", req.BaseDN, err)
				}
				if err := fn(e); err != nil {
					// The rest of this page first, then release the cursor.
					for {
						body, err := c.read()
						if err != nil {
							return err
						}
						if m, err := parseMessage(body); err != nil || m.op == 0x65 {
							if err == nil {
								cookie = m.cookie
							}
							break
						}
					}
					abandon()
					return err
				}
			case 0x73: // SearchResultReference: not followed, as go-ldap's walk did not
			case 0x65: // SearchResultDone
				if err := m.resultErr(); err != nil {
					return fmt.Errorf("ldap: search %s: %w", req.BaseDN, err)
				}
				next, done = m.cookie, true
			}
		}
		if len(next) == 0 {
			return nil
		}
		cookie = next
	}
}

// BER encoding of the few requests the lean client sends.

func tlv(tag byte, content []byte) []byte {
	n := len(content)
	var hdr []byte
	switch {
	case n < 0x80:
		hdr = []byte{tag, byte(n)}
	case n < 0x100:
		hdr = []byte{tag, 0x81, byte(n)}
	case n < 0x10000:
		hdr = []byte{tag, 0x82, byte(n >> 8), byte(n)}
	default:
		hdr = []byte{tag, 0x84, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
	}
	return append(hdr, content...)
}

// tlvInt encodes a non-negative INTEGER or ENUMERATED minimally.
func tlvInt(tag byte, v int64) []byte {
	var b []byte
	for {
		b = append([]byte{byte(v)}, b...)
		v >>= 8
		if v == 0 {
			break
		}
	}
	if b[0]&0x80 != 0 {
		b = append([]byte{0}, b...)
	}
	return tlv(tag, b)
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func message(id int64, op, controls []byte) []byte {
	return tlv(0x30, cat(tlvInt(0x02, id), op, controls))
}
