package queue

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/textproto"
	"sort"
	"strconv"
	"strings"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// outcome is the result of one attempt for one recipient.
type outcome struct {
	delivered bool
	perm      bool   // permanent: bounce now
	status    string // RFC 3463, e.g. "4.4.1"
	diag      string // RFC 3464 diagnostic, "smtp; 451 4.3.0 try later"
	mta       string // the host that answered, if any
}

func tempOutcome(status, text string) outcome {
	return outcome{status: status, diag: "x-govhub; " + text}
}

func permOutcome(status, text string) outcome {
	return outcome{perm: true, status: status, diag: "x-govhub; " + text}
}

func all(n int, o outcome) []outcome {
	out := make([]outcome, n)
	for i := range out {
		out[i] = o
	}
	return out
}

// replyOutcome maps an SMTP reply error to an outcome: 5xx is permanent,
// 4xx temporary (RFC 5321 4.2.1). Anything that is not a reply (a broken
// connection, a timeout) is temporary.
func replyOutcome(err error, host string) outcome {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		o := outcome{mta: host, perm: se.Code >= 500 && se.Code < 600}
		ec := se.EnhancedCode
		if ec[0] == 4 || ec[0] == 5 {
			o.status = fmt.Sprintf("%d.%d.%d", ec[0], ec[1], ec[2])
			o.diag = fmt.Sprintf("smtp; %d %s %s", se.Code, o.status, oneLine(se.Message))
		} else {
			o.status = "4.0.0"
			if o.perm {
				o.status = "5.0.0"
			}
			o.diag = fmt.Sprintf("smtp; %d %s", se.Code, oneLine(se.Message))
		}
		if !o.perm && se.Code < 400 {
			// An unexpected positive reply at the wrong step: retry.
			o.status = "4.5.0"
		}
		return o
	}
	o := tempOutcome("4.4.2", "connection with "+host+" failed during the transaction")
	o.mta = host
	return o
}

// tlsMode is how one session uses TLS.
type tlsMode int

const (
	tlsNone        tlsMode = iota
	tlsMay                 // STARTTLS if offered, certificate not checked
	tlsMustVerify          // STARTTLS required, certificate checked
	tlsImplicitVfy         // TLS from the first byte, certificate checked
)

// hostError: the session failed before a mail transaction started
// (greeting, EHLO, TLS), so the next MX host may be tried.
type hostError struct {
	o        outcome
	tlsBroke bool // the STARTTLS handshake failed (opportunistic: retry in clear)
}

func (e *hostError) Error() string { return e.o.diag }

// deliverRemote sends data to rcpts (all in domain, or all through the
// smarthost) and returns one outcome per recipient.
func (q *Queue) deliverRemote(ctx context.Context, log *slog.Logger, domain string, smarthost bool, from string, rcpts []string, data []byte) []outcome {
	if smarthost {
		host, port, _ := net.SplitHostPort(q.cfg.Smarthost)
		mode := tlsMustVerify
		switch q.cfg.SmarthostTLS {
		case SmarthostImplicitTLS:
			mode = tlsImplicitVfy
		case SmarthostPlain:
			mode = tlsNone
		}
		conn, err := q.cfg.Dialer.DialContext(ctx, "tcp", net.JoinHostPort(host, port))
		if err != nil {
			log.Warn("smarthost unreachable", "host", host, "err", err)
			return all(len(rcpts), tempOutcome("4.4.1", "smarthost "+host+" did not answer"))
		}
		outs, err := q.session(ctx, conn, host, mode, q.cfg.SmarthostUser != "", from, rcpts, data)
		if err != nil {
			var he *hostError
			errors.As(err, &he)
			log.Warn("smarthost session failed", "host", host, "err", err)
			o := he.o
			o.perm = false // our relay's refusal is ours to fix, not the sender's
			return all(len(rcpts), o)
		}
		return outs
	}

	hosts, fail := q.mxHosts(ctx, domain)
	if fail != nil {
		return all(len(rcpts), *fail)
	}
	mode := tlsMay
	if q.cfg.TLSPolicy[domain] == TLSRequired {
		mode = tlsMustVerify
	}
	last := tempOutcome("4.4.1", "no mail server for "+domain+" answered")
	port := strconv.Itoa(q.cfg.Port)
	for _, host := range hosts {
		addrs, err := q.cfg.Resolver.LookupIPAddr(ctx, host)
		if err != nil || len(addrs) == 0 {
			var de *net.DNSError
			if host == domain && errors.As(err, &de) && de.IsNotFound {
				// RFC 5321 5.1: no MX and no address: the domain cannot
				// receive mail.
				return all(len(rcpts), permOutcome("5.1.2", "domain "+domain+" has no mail server (no MX, A or AAAA record)"))
			}
			last = tempOutcome("4.4.3", "address lookup for "+host+" failed")
			continue
		}
		for _, a := range addrs {
			addr := net.JoinHostPort(a.IP.String(), port)
			m := mode
			for try := 0; try < 2; try++ {
				conn, err := q.cfg.Dialer.DialContext(ctx, "tcp", addr)
				if err != nil {
					log.Info("connect failed", "host", host, "addr", addr, "err", err)
					last = tempOutcome("4.4.1", "could not connect to "+host)
					break
				}
				outs, err := q.session(ctx, conn, host, m, false, from, rcpts, data)
				if err == nil {
					return outs
				}
				var he *hostError
				errors.As(err, &he)
				last = he.o
				log.Info("host unusable", "host", host, "addr", addr, "err", err)
				if !(he.tlsBroke && m == tlsMay) {
					break
				}
				// RFC 7435 6: opportunistic TLS that fails to negotiate
				// falls back to clear text, on a new connection.
				m = tlsNone
			}
			if ctx.Err() != nil {
				return all(len(rcpts), last)
			}
		}
	}
	return all(len(rcpts), last)
}

// mxHosts returns the hosts to try for domain in preference order (RFC 5321
// 5.1): its MX hosts, hosts of equal preference shuffled, or, when it has no
// MX, the domain itself (its A/AAAA records, the implicit MX).
func (q *Queue) mxHosts(ctx context.Context, domain string) ([]string, *outcome) {
	mxs, err := q.cfg.Resolver.LookupMX(ctx, domain)
	if err != nil && len(mxs) == 0 {
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound {
			return []string{domain}, nil
		}
		o := tempOutcome("4.4.3", "MX lookup for "+domain+" failed")
		return nil, &o
	}
	if len(mxs) == 1 && strings.TrimSuffix(mxs[0].Host, ".") == "" {
		// RFC 7505: a null MX: the domain accepts no mail.
		o := permOutcome("5.1.10", "domain "+domain+" accepts no mail (null MX)")
		return nil, &o
	}
	if len(mxs) == 0 {
		return []string{domain}, nil
	}
	rand.Shuffle(len(mxs), func(i, j int) { mxs[i], mxs[j] = mxs[j], mxs[i] })
	sort.SliceStable(mxs, func(i, j int) bool { return mxs[i].Pref < mxs[j].Pref })
	var hosts []string
	for _, mx := range mxs {
		h := strings.ToLower(strings.TrimSuffix(mx.Host, "."))
		if h != "" {
			hosts = append(hosts, h)
		}
	}
	return hosts, nil
}

// greetedConn replays a greeting to a fresh go-smtp client over a
// connection whose greeting was already read (after STARTTLS the server
// sends none: RFC 3207 4.2 restarts the session at EHLO).
type greetedConn struct {
	net.Conn
	pre io.Reader
}

func (g *greetedConn) Read(p []byte) (int, error) {
	if g.pre != nil {
		n, err := g.pre.Read(p)
		if err == io.EOF {
			g.pre = nil
			err = nil
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
	return g.Conn.Read(p)
}

// session runs one SMTP session on conn: EHLO, TLS per mode, AUTH PLAIN
// when asked, then one transaction for rcpts. A *hostError means no
// transaction started; otherwise the outcomes are final for this attempt.
func (q *Queue) session(ctx context.Context, conn net.Conn, host string, mode tlsMode, auth bool, from string, rcpts []string, data []byte) ([]outcome, error) {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	hostErr := func(err error, status, text string) error {
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			return &hostError{o: replyOutcome(err, host)}
		}
		o := tempOutcome(status, text)
		o.mta = host
		return &hostError{o: o}
	}
	verify := &tls.Config{ServerName: host, RootCAs: q.cfg.RootCAs, MinVersion: tls.VersionTLS12}
	if mode == tlsImplicitVfy {
		tc := tls.Client(conn, verify)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, hostErr(err, "4.7.5", "TLS with "+host+" failed")
		}
		conn = tc
	}
	c := smtp.NewClient(conn)
	if err := c.Hello(q.cfg.Hostname); err != nil {
		return nil, hostErr(err, "4.4.2", "greeting from "+host+" failed")
	}
	if mode == tlsMay || mode == tlsMustVerify {
		offered, _ := c.Extension("STARTTLS")
		switch {
		case offered:
			cfg := verify
			if mode == tlsMay {
				// RFC 7435: opportunistic security encrypts without
				// authenticating; a self-signed MX is still encrypted.
				cfg = &tls.Config{ServerName: host, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}
			}
			tc, err := startTLS(ctx, conn, cfg)
			if err != nil {
				he := hostErr(err, "4.7.5", "TLS with "+host+" failed").(*hostError)
				he.tlsBroke = true
				return nil, he
			}
			conn = tc
			c = smtp.NewClient(&greetedConn{Conn: tc, pre: strings.NewReader("220 " + host + " TLS\r\n")})
			if err := c.Hello(q.cfg.Hostname); err != nil {
				return nil, hostErr(err, "4.4.2", "EHLO after STARTTLS with "+host+" failed")
			}
		case mode == tlsMustVerify:
			o := tempOutcome("4.7.5", "TLS is required for "+host+" but it does not offer STARTTLS")
			o.mta = host
			c.Quit()
			return nil, &hostError{o: o}
		}
	}
	if auth {
		if !c.SupportsAuth("PLAIN") {
			c.Quit()
			return nil, hostErr(nil, "4.7.0", host+" does not offer AUTH PLAIN")
		}
		if err := c.Auth(sasl.NewPlainClient("", q.cfg.SmarthostUser, q.cfg.SmarthostPass)); err != nil {
			c.Quit()
			return nil, hostErr(err, "4.7.0", "authentication with "+host+" failed")
		}
	}
	utf8 := !isASCII(from)
	for _, r := range rcpts {
		utf8 = utf8 || !isASCII(r)
	}
	if ok, _ := c.Extension("SMTPUTF8"); utf8 && !ok {
		// RFC 6531 3.4: no SMTPUTF8, no delivery of internationalised
		// addresses.
		c.Quit()
		o := permOutcome("5.6.7", host+" does not support internationalised addresses (SMTPUTF8)")
		o.mta = host
		return all(len(rcpts), o), nil
	}
	if err := c.Mail(from, &smtp.MailOptions{Size: int64(len(data)), UTF8: utf8}); err != nil {
		c.Quit()
		return all(len(rcpts), replyOutcome(err, host)), nil
	}
	outs := make([]outcome, len(rcpts))
	var accepted []int
	for i, r := range rcpts {
		if err := c.Rcpt(r, nil); err != nil {
			outs[i] = replyOutcome(err, host)
			var se *smtp.SMTPError
			if !errors.As(err, &se) {
				// The connection broke: the rest fail the same way.
				for j := i + 1; j < len(rcpts); j++ {
					outs[j] = outs[i]
				}
				return outs, nil
			}
			continue
		}
		accepted = append(accepted, i)
	}
	if len(accepted) == 0 {
		c.Quit()
		return outs, nil
	}
	w, err := c.Data()
	if err == nil {
		_, err = w.Write(data)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
	}
	for _, i := range accepted {
		if err != nil {
			outs[i] = replyOutcome(err, host)
		} else {
			outs[i] = outcome{delivered: true, mta: host}
		}
	}
	c.Quit()
	return outs, nil
}

// startTLS sends STARTTLS on conn, whose EHLO reply was read completely by
// a go-smtp client (the server sends nothing more before STARTTLS, so no
// byte is lost between the two readers), and returns the TLS connection.
func startTLS(ctx context.Context, conn net.Conn, cfg *tls.Config) (*tls.Conn, error) {
	if _, err := io.WriteString(conn, "STARTTLS\r\n"); err != nil {
		return nil, err
	}
	r := textproto.NewReader(bufio.NewReaderSize(oneByteReader{conn}, 16))
	if _, _, err := r.ReadResponse(220); err != nil {
		var pe *textproto.Error
		if errors.As(err, &pe) {
			return nil, &smtp.SMTPError{Code: pe.Code, Message: pe.Msg}
		}
		return nil, err
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return tc, nil
}

// oneByteReader reads one byte at a time so that the STARTTLS reply reader
// never consumes the start of the TLS handshake.
type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return o.r.Read(p)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
