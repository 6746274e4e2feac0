package smtpserver

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/govhub/govhub/mailcore"
	"github.com/govhub/govhub/mailcore/auth"
)

// Replies. Texts are generic: they never carry internal errors or
// configuration.
var (
	errAuthRequired   = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}                  // RFC 4954 6
	errAuthFailed     = &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}       // RFC 4954 6
	errAuthTemp       = &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Temporary authentication failure"}         // RFC 4954 6
	errTooManyAuth    = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Too many authentication failures"}         // then closed
	errSenderDenied   = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Sender address not allowed for this user"} // RFC 5321 4.2.2
	errRelayDenied    = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Relaying denied"}                          // RFC 3463 5.7.1
	errNoSuchUser     = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user here"}                        // RFC 3463 5.1.1
	errBadAddress     = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "Bad address syntax"}                       // RFC 3463 5.1.3
	errMailboxFull    = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "Mailbox full, try again later"}            // RFC 3463 4.2.2
	errTempFailure    = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Temporary failure, try again later"}       // RFC 5321 4.2.3
	errLineTooLong    = &smtp.SMTPError{Code: 500, EnhancedCode: smtp.EnhancedCode{5, 4, 0}, Message: "Line too long"}                            // as go-smtp says for command lines
	errBareLineEnding = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Message has bare CR or LF; use CRLF line endings"}
)

// session is one SMTP session (one per EHLO after connect or STARTTLS).
// MX and submission share it; authSession adds AUTH for submission.
type session struct {
	s       *Server
	service string
	submit  bool
	c       *smtp.Conn
	nc      *conn // nil if the transport is not ours (cannot happen via Serve*)
	ip      string
	log     *slog.Logger

	account      *mailcore.Account
	authFailures int

	// The transaction.
	from      string
	size      int64
	local     []localRcpt
	seen      map[int64]bool // account ids already among local
	remote    []string
	rcptCount int  // accepted RCPT commands, duplicates included
	group     bool // a RCPT named a group address
}

type localRcpt struct {
	addr string
	rcpt mailcore.Recipient
}

func (s *Server) newSession(c *smtp.Conn, service string) (smtp.Session, error) {
	nc := ourConn(c.Conn())
	sess := &session{s: s, service: service, submit: service != ServiceMX, c: c, nc: nc, ip: remoteIP(c.Conn().RemoteAddr())}
	var id uint64
	if nc != nil {
		id = nc.id
	}
	sess.log = s.log.With("service", service, "conn", id, "ip", sess.ip)
	if sess.submit {
		return &authSession{sess}, nil
	}
	return sess, nil
}

// ourConn finds our conn under a TLS layer.
func ourConn(c net.Conn) *conn {
	for {
		switch x := c.(type) {
		case *conn:
			return x
		case *tls.Conn:
			c = x.NetConn()
		default:
			return nil
		}
	}
}

func (ss *session) Reset() {
	ss.from, ss.size, ss.local, ss.seen, ss.remote, ss.rcptCount, ss.group = "", 0, nil, nil, nil, 0, false
}

func (ss *session) Logout() error { return nil }

func (ss *session) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), ss.s.cfg.DeliverTimeout)
}

func (ss *session) refuse(reason string, err *smtp.SMTPError) error {
	ss.s.refuse(ss.service, reason)
	return err
}

// Mail starts a transaction. On submission the sender must be the signed-in
// account's address or one of its aliases (RFC 6409 6.1 lets the MSA
// enforce this), so a user cannot send as a colleague.
func (ss *session) Mail(from string, opts *smtp.MailOptions) error {
	ss.Reset()
	if ss.submit {
		if ss.account == nil {
			return ss.refuse("not_authenticated", errAuthRequired)
		}
		ok, err := ss.senderAllowed(from)
		if err != nil {
			ss.log.Error("sender check failed", "err", err)
			return ss.refuse("temp_failure", errTempFailure)
		}
		if !ok {
			ss.log.Warn("sender refused", "account", ss.account.Address, "from", from)
			return ss.refuse("sender_not_allowed", errSenderDenied)
		}
	}
	ss.from = from
	if opts != nil {
		ss.size = opts.Size
	}
	return nil
}

func (ss *session) senderAllowed(from string) (bool, error) {
	addr, err := mailcore.NormalizeAddress(from)
	if err != nil {
		return false, nil // includes the null sender: users do not send bounces
	}
	if addr == ss.account.Address {
		return true, nil
	}
	ctx, cancel := ss.ctx()
	defer cancel()
	aliases, err := ss.s.store.Aliases(ctx, ss.account.ID)
	if err != nil {
		return false, err
	}
	for _, a := range aliases {
		if a == addr {
			return true, nil
		}
	}
	return false, nil
}

// Rcpt accepts a local recipient that exists, has not left and is not
// already over quota (counting the SIZE parameter when given), and on
// submission a remote recipient. Everything is decided here, so mail for
// an unknown user is refused in the session (no backscatter).
func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	addr, err := mailcore.NormalizeAddress(to)
	if err != nil {
		return ss.refuse("bad_address", errBadAddress)
	}
	ctx, cancel := ss.ctx()
	defer cancel()
	domain := addr[strings.LastIndexByte(addr, '@')+1:]
	local, err := ss.s.store.IsLocalDomain(ctx, domain)
	if err != nil {
		ss.log.Error("local domain lookup failed", "err", err)
		return ss.refuse("temp_failure", errTempFailure)
	}
	if !local {
		if !ss.submit || ss.account == nil {
			// RFC 5321 7.1 / 3.9: no open relay.
			return ss.refuse("relay_denied", errRelayDenied)
		}
		ss.remote = append(ss.remote, addr)
		ss.rcptCount++
		return nil
	}
	acct, rcpt, err := ss.s.store.ResolveRecipient(ctx, addr)
	if errors.Is(err, mailcore.ErrNotFound) && ss.s.cfg.Groups != nil {
		if handled, gerr := ss.rcptGroup(ctx, addr); handled {
			return gerr
		}
	}
	if errors.Is(err, mailcore.ErrNotFound) || errors.Is(err, mailcore.ErrInvalidAddress) {
		return ss.refuse("unknown_recipient", errNoSuchUser)
	}
	if err != nil {
		ss.log.Error("recipient lookup failed", "err", err)
		return ss.refuse("temp_failure", errTempFailure)
	}
	if !acct.AcceptsMailAt(ss.s.cfg.Now(), ss.s.cfg.LeftGrace) {
		// Left longer ago than the grace period: 5.1.1, as for an unknown
		// user; whether someone has left is not the sender's business.
		return ss.refuse("recipient_left", errNoSuchUser)
	}
	if acct.QuotaBytes > 0 && (acct.UsedBytes >= acct.QuotaBytes || ss.size > 0 && acct.UsedBytes+ss.size > acct.QuotaBytes) {
		return ss.refuse("over_quota", errMailboxFull)
	}
	if ss.seen == nil {
		ss.seen = map[int64]bool{}
	}
	if !ss.seen[acct.ID] { // an address and its alias get one copy
		ss.seen[acct.ID] = true
		ss.local = append(ss.local, localRcpt{addr: addr, rcpt: rcpt})
	}
	ss.rcptCount++
	return nil
}

// Data reads the message, refuses bare CR/LF, adds trace headers, delivers
// local copies and hands the rest to Outbound, and returns nil (250) only
// when all of that is durable.
func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		if errors.Is(err, smtp.ErrDataTooLarge) {
			return ss.refuse("too_large", smtp.ErrDataTooLarge)
		}
		if errors.Is(err, smtp.ErrTooLongLine) {
			return ss.refuse("line_too_long", errLineTooLong)
		}
		return ss.refuse("temp_failure", errTempFailure)
	}
	// SMTP smuggling: go-smtp ends DATA only at CRLF.CRLF, but a bare LF or
	// CR inside the message could end it for a server we relay to, which
	// would then see a second, forged message. Refuse such messages.
	if i := bareLineEnding(raw); i >= 0 {
		ss.log.Warn("message refused: bare CR or LF", "offset", i)
		return ss.refuse("bad_line_endings", errBareLineEnding)
	}
	ctx, cancel := ss.ctx()
	defer cancel()

	id := ss.messageID()
	var forAddr string
	// "for" only with exactly one envelope recipient that is one mailbox
	// (a group expands to many, whose addresses stay private).
	switch {
	case ss.rcptCount == 1 && len(ss.local) == 1 && len(ss.remote) == 0 && !ss.group:
		forAddr = ss.local[0].addr
	case ss.rcptCount == 1 && len(ss.remote) == 1 && len(ss.local) == 0:
		forAddr = ss.remote[0]
	}
	received := ss.receivedHeader(id, forAddr)

	handOff := append([]string(nil), ss.remote...)
	delivered := 0
	if len(ss.local) > 0 {
		body := make([]byte, 0, len(raw)+len(received)+len(ss.from)+20)
		body = append(body, returnPath(ss.from)...) // RFC 5321 4.4: final delivery
		body = append(body, received...)
		body = append(body, raw...)
		rcpts := make([]mailcore.Recipient, len(ss.local))
		for i, l := range ss.local {
			rcpts[i] = l.rcpt
		}
		results, err := ss.s.store.Deliver(ctx, body, rcpts, mailcore.DeliverOptions{})
		if errors.Is(err, mailcore.ErrTooLarge) {
			return ss.refuse("too_large", smtp.ErrDataTooLarge)
		}
		if err != nil {
			ss.log.Error("delivery failed", "id", id, "err", err)
			return ss.refuse("temp_failure", errTempFailure)
		}
		allQuota := true
		for i, res := range results {
			if res.Err == nil {
				delivered++
				continue
			}
			ss.log.Warn("local recipient failed at DATA", "id", id, "rcpt", ss.local[i].addr, "err", res.Err)
			if !errors.Is(res.Err, mailcore.ErrQuotaExceeded) {
				allQuota = false
			}
			handOff = append(handOff, ss.local[i].addr)
		}
		if delivered == 0 && len(ss.remote) == 0 {
			// Nobody has the message: refuse it whole, the sender retries
			// and nothing is duplicated.
			if allQuota {
				return ss.refuse("over_quota", errMailboxFull)
			}
			return ss.refuse("temp_failure", errTempFailure)
		}
	}
	if len(handOff) > 0 {
		// Remote recipients, and local ones that failed after others got
		// the message: the queue retries them (and bounces when it gives
		// up). If that fails we must not answer 250; the sender's retry
		// then duplicates the local copies, which beats losing mail.
		if err := ss.s.out.Enqueue(ctx, ss.from, handOff, append(received, raw...)); err != nil {
			ss.log.Error("enqueue failed", "id", id, "err", err)
			return ss.refuse("temp_failure", errTempFailure)
		}
	}
	ss.s.metrics.accepted.WithLabelValues(ss.service).Inc()
	ss.log.Info("message accepted", "id", id, "from", ss.from, "local", delivered, "queued", len(handOff), "size", len(raw))
	return nil
}

// messageID names one accepted transaction in logs and the Received
// header: connection id and the message's number on the connection.
func (ss *session) messageID() string {
	if ss.nc == nil {
		return "0.0"
	}
	return fmt.Sprintf("%d.%d", ss.nc.id, ss.nc.msgs.Add(1))
}

// bareLineEnding returns the offset of the first CR not followed by LF or
// LF not preceded by CR, or -1.
func bareLineEnding(b []byte) int {
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '\r':
			if i+1 >= len(b) || b[i+1] != '\n' {
				return i
			}
			i++
		case '\n':
			return i
		}
	}
	return -1
}

func returnPath(from string) []byte {
	return []byte("Return-Path: <" + sanitizeTrace(from) + ">\r\n")
}

// receivedHeader builds the trace header RFC 5321 4.4 requires, with the
// protocol keyword of RFC 3848 (ESMTP, ESMTPS, ESMTPA, ESMTPSA) and the
// TLS cipher clause of RFC 8314 7.4. The "for" clause names the recipient
// only when there is exactly one, so Bcc recipients are not disclosed.
func (ss *session) receivedHeader(id, forAddr string) []byte {
	var b bytes.Buffer
	if ss.c == nil { // Submit: handed over in-process by webmail
		fmt.Fprintf(&b, "Received: from webmail ([%s])\r\n\tby %s (govhub) with HTTPSA id %s", sanitizeTrace(ss.ip), ss.s.cfg.Hostname, id)
		if forAddr != "" {
			fmt.Fprintf(&b, "\r\n\tfor <%s>", sanitizeTrace(forAddr))
		}
		fmt.Fprintf(&b, ";\r\n\t%s\r\n", ss.s.cfg.Now().Format("Mon, 02 Jan 2006 15:04:05 -0700"))
		return b.Bytes()
	}
	helo := sanitizeTrace(ss.c.Hostname())
	if helo == "" {
		helo = "unknown"
	}
	ipLit := "[" + ss.ip + "]"
	if strings.Contains(ss.ip, ":") {
		ipLit = "[IPv6:" + ss.ip + "]" // RFC 5321 4.1.3
	}
	fmt.Fprintf(&b, "Received: from %s (%s)\r\n\tby %s (govhub) with ", helo, ipLit, ss.s.cfg.Hostname)
	proto := "ESMTP"
	state, isTLS := ss.c.TLSConnectionState()
	if isTLS {
		proto += "S"
	}
	if ss.account != nil {
		proto += "A"
	}
	b.WriteString(proto)
	fmt.Fprintf(&b, " id %s", id)
	if forAddr != "" {
		fmt.Fprintf(&b, "\r\n\tfor <%s>", sanitizeTrace(forAddr))
	}
	if isTLS {
		fmt.Fprintf(&b, "\r\n\ttls %s", tls.CipherSuiteName(state.CipherSuite))
	}
	fmt.Fprintf(&b, ";\r\n\t%s\r\n", ss.s.cfg.Now().Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	return b.Bytes()
}

// sanitizeTrace keeps what the client said usable inside a header: no
// control characters, parentheses or angle brackets, at most 255 bytes.
func sanitizeTrace(s string) string {
	if len(s) > 255 {
		s = s[:255]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x21 || r == 0x7f || strings.ContainsRune("()<>\\\"", r) {
			return '?'
		}
		return r
	}, s)
}

// authSession is a submission session: it offers AUTH PLAIN and LOGIN,
// which go-smtp advertises and accepts only on a TLS connection
// (AllowInsecureAuth false; before TLS, AUTH gets 523 5.7.10).
type authSession struct{ *session }

var _ smtp.AuthSession = authSession{}

func (as authSession) AuthMechanisms() []string { return []string{sasl.Plain, sasl.Login} }

func (as authSession) Auth(mech string) (sasl.Server, error) {
	switch strings.ToUpper(mech) {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, username, password string) error {
			// RFC 4616 2: an authorization identity other than the
			// user's own would be acting as someone else; refused.
			if identity != "" && !strings.EqualFold(identity, username) {
				return as.authFail(username, "authzid differs")
			}
			return as.authenticate(username, password)
		}), nil
	case sasl.Login:
		return &loginServer{check: as.authenticate}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (as authSession) authenticate(username, password string) error {
	ctx, cancel := as.ctx()
	defer cancel()
	acct, err := as.s.auth.Authenticate(ctx, username, password, as.ip)
	switch {
	case err == nil:
		as.account = &acct
		as.log.Info("authenticated", "account", acct.Address)
		return nil
	case errors.Is(err, auth.ErrInvalidCredentials):
		return as.authFail(username, "invalid credentials")
	case errors.Is(err, auth.ErrLockedOut):
		as.s.refuse(as.service, "auth_locked")
		as.log.Warn("authentication refused: locked out", "user", username)
		as.closeSoon()
		return errAuthTemp
	default:
		as.s.refuse(as.service, "temp_failure")
		as.log.Error("authentication error", "user", username, "err", err)
		return errAuthTemp
	}
}

func (as authSession) authFail(username, why string) error {
	as.s.refuse(as.service, "auth_failed")
	as.authFailures++
	as.log.Warn("authentication failed", "user", username, "why", why, "failures", as.authFailures)
	if as.authFailures >= as.s.cfg.MaxAuthFailures {
		as.closeSoon()
		return errTooManyAuth
	}
	return errAuthFailed
}

// closeSoon closes the connection once the current reply is written.
func (as authSession) closeSoon() {
	if as.nc != nil {
		as.nc.closeAfterWrite.Store(true)
	}
}

// loginServer is the server side of the LOGIN mechanism
// (draft-murchison-sasl-login-00), which go-sasl provides only as a client.
// Outlook and many phones still use it.
type loginServer struct {
	state    int
	username string
	check    func(username, password string) error
}

var errLoginProtocol = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: "Bad AUTH LOGIN exchange"}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch l.state {
	case 0:
		if len(response) == 0 {
			l.state = 1
			return []byte("Username:"), false, nil
		}
		l.username = string(response) // initial response is the username
		l.state = 2
		return []byte("Password:"), false, nil
	case 1:
		l.username = string(response)
		l.state = 2
		return []byte("Password:"), false, nil
	case 2:
		l.state = 3
		return nil, true, l.check(l.username, string(response))
	}
	return nil, true, errLoginProtocol
}

// rcptGroup handles RCPT to a group address: on submission every member
// with a mailbox that accepts mail becomes a local recipient (one copy per
// account, one body for all); on MX groups are refused. It reports false
// when addr is not a group.
func (ss *session) rcptGroup(ctx context.Context, addr string) (bool, error) {
	members, ok, err := ss.s.cfg.Groups.Members(ctx, addr)
	if err != nil {
		ss.log.Error("group lookup failed", "err", err)
		return true, ss.refuse("temp_failure", errTempFailure)
	}
	if !ok {
		return false, nil
	}
	if !ss.submit || ss.account == nil {
		return true, ss.refuse("relay_denied", errRelayDenied)
	}
	if ss.seen == nil {
		ss.seen = map[int64]bool{}
	}
	for _, m := range members {
		acct, rcpt, err := ss.s.store.ResolveRecipient(ctx, m)
		if err != nil || !acct.AcceptsMailAt(ss.s.cfg.Now(), ss.s.cfg.LeftGrace) || ss.seen[acct.ID] {
			continue // a member without a mailbox is skipped, not an error
		}
		ss.seen[acct.ID] = true
		ss.local = append(ss.local, localRcpt{addr: m, rcpt: rcpt})
	}
	ss.rcptCount++
	ss.group = true
	return true, nil
}
