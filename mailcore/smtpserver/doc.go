// Package smtpserver is govhub's SMTP server: inbound mail for local domains
// (MX, port 25) and message submission by signed-in users (port 587 with
// STARTTLS, port 465 with implicit TLS, RFC 6409 and RFC 8314). It is built
// on github.com/emersion/go-smtp v0.26.0 and delivers into the mail store
// (mailcore.Store); what it cannot deliver itself it hands to an Outbound
// (the delivery queue, mailcore/queue). It also holds the library half of
// the SMTP load generator (LoadTest).
//
// Wiring (cmd/govhub):
//
//	srv, err := smtpserver.New(store, authenticator, queue, smtpserver.Config{...})
//	go srv.ServeMX(l25)
//	go srv.ServeSubmission(l587)   // needs Config.TLS and an authenticator
//	go srv.ServeSubmissions(l465)  // idem
//	...
//	srv.Close()
//
// # MX
//
//   - Recipients must be in a local domain (store.IsLocalDomain) and
//     resolve to an account (address, alias or +tag subaddress); an unknown
//     one is refused at RCPT with 550 5.1.1, so nothing is accepted that
//     would later bounce (no backscatter). A non-local recipient is refused
//     with 550 5.7.1: no open relay (RFC 5321 7.1).
//   - An account with status "left" is refused with 550 5.1.1, like an
//     unknown user: whether someone has left the organisation is not the
//     sender's business. A "disabled" account still receives mail.
//   - Quota: a recipient already at or over quota, or whom the message's
//     SIZE parameter (RFC 1870) would put over, gets 452 4.2.2 at RCPT. A
//     recipient that passes RCPT but is over quota when the body arrives
//     (a racing delivery, or no SIZE given): SMTP has one reply for DATA,
//     so if any other recipient got the message the answer is 250 and the
//     failed recipients are handed to Outbound, which retries them with its
//     backoff and sends a DSN when it gives up; if nobody got it, the whole
//     message gets 452 4.2.2 and the sender retries. Either way nothing is
//     dropped and nothing delivered twice. Only if Outbound itself fails is
//     the answer 451, and the sender's retry then duplicates the copies
//     already delivered: a duplicate is better than a loss.
//   - 250 is answered only after store.Deliver returned (body fsynced, rows
//     committed) and, for handed-off recipients, Enqueue returned.
//   - The stored message is "Return-Path: <envelope sender>" (RFC 5321 4.4,
//     added at final delivery), then a Received header (RFC 5321 4.4: from
//     the EHLO name and IP literal, by our hostname, with ESMTP/ESMTPS/
//     ESMTPA/ESMTPSA per RFC 3848, our id, "for" the recipient only when
//     there is exactly one so Bcc stays private, the tls cipher clause of
//     RFC 8314 7.4 when TLS was used, and the date), then the client's bytes
//     unchanged. Copies handed to Outbound carry the Received header but no
//     Return-Path.
//   - STARTTLS is offered when Config.TLS is set; AUTH is never offered.
//
// # Submission
//
//   - AUTH PLAIN and LOGIN are offered and accepted only on a TLS
//     connection (go-smtp with AllowInsecureAuth false: before TLS, EHLO
//     lists no AUTH and AUTH gets 523 5.7.10). MAIL before AUTH gets 530
//     5.7.0 (RFC 4954 6). A wrong password gets 535 5.7.8, a lockout or
//     internal error 454 4.7.0, always with generic text; after
//     MaxAuthFailures failures on one connection (or a lockout) the reply
//     is sent and the connection closed. The delays and lockouts across
//     connections and nodes are the authenticator's (mailcore/auth).
//   - MAIL FROM must be the account's own address or one of its aliases,
//     else 553 5.7.1; the null sender is refused.
//   - Local recipients are delivered directly through store.Deliver with
//     the same checks and trace headers as MX; remote recipients are passed
//     to Outbound.Enqueue in one call. No copy is saved to Sent: clients do
//     that themselves with IMAP APPEND, and a second copy would duplicate it.
//
// # Limits and hostile clients
//
// What go-smtp v0.26.0 enforces itself, relied on here and tested:
//   - DATA ends only at CRLF.CRLF (its dot-reader state machine); BDAT
//     chunks are counted against the size limit.
//   - MAIL with SIZE above MaxMessageSize: 552 5.3.4. DATA above it: 552
//     5.3.4 after the rest is read and discarded; nothing is stored.
//   - RCPT beyond MaxRecipients accepted recipients: 452 4.5.3.
//   - Any line (command or message) longer than MaxLineLength: 500 5.4.0
//     and the connection is closed; a message cut off that way is not
//     stored.
//   - After STARTTLS it discards its buffered reader and the session, so
//     commands pipelined after STARTTLS in plaintext (CVE-2011-0411) are
//     never acted on inside TLS; the client must EHLO again (RFC 3207 4.2).
//
// What this package adds:
//   - A failed TLS handshake after STARTTLS ends the connection. go-smtp
//     would answer 550 and resume the plaintext session with its old
//     buffer, running the commands pipelined after STARTTLS; our conn
//     wrapper refuses any plaintext write after "220 Ready to start TLS"
//     and closes instead.
//   - SMTP smuggling: a message containing a bare LF or a bare CR anywhere
//     is refused with 554 5.6.0 before it is stored or relayed; messages are
//     not normalised. A bare line ending is what lets a message smuggle a
//     second one past a server that ends DATA at something other than
//     CRLF.CRLF; refusing it means we never relay one, and real clients
//     send CRLF.
//   - Per-IP limits, across all listeners of one Server: concurrent
//     connections (MaxConnsPerIP) and new connections per window
//     (MaxConnRate per ConnRateWindow, injected clock). Over a limit the
//     connection gets "421 4.7.0" (nothing on 465, before TLS) and is closed
//     before go-smtp sees it.
//   - An idle read timeout (ReadTimeout, default 5 minutes per RFC 5321
//     4.5.3.2.7) set before every read, so it covers DATA as well as
//     commands; an idle client gets 421 4.4.2 and is disconnected.
//
// Metrics (Config.Registerer): govhub_smtp_connections_total{service},
// govhub_smtp_messages_accepted_total{service} and
// govhub_smtp_refused_total{service,reason}, with reasons conn_limit,
// conn_rate, not_authenticated, auth_failed, auth_locked,
// sender_not_allowed, relay_denied, unknown_recipient, recipient_left,
// over_quota, bad_address, bad_line_endings, too_large, line_too_long and
// temp_failure. Refusals go-smtp makes by itself (SIZE at MAIL, recipient
// limit) are not counted.
//
// Not here: the delivery queue and DSNs (mailcore/queue), DKIM, SPF/DMARC
// checks, spam and virus filters, LMTP.
package smtpserver
