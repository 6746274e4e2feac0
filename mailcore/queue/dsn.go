package queue

import (
	"bytes"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"strings"
	"time"
)

// dsnRecipient is one failed recipient in a bounce.
type dsnRecipient struct {
	Rcpt string
	// Status is the RFC 3463 code, e.g. "5.1.1".
	Status string
	// Diagnostic is "type; text", e.g. "smtp; 550 5.1.1 no such user"
	// (RFC 3464 2.3.6); empty when there was no reply to report.
	Diagnostic  string
	RemoteMTA   string
	LastAttempt time.Time
	// Expired: the recipient was still failing temporarily when the
	// message reached Config.RetryFor.
	Expired bool
}

// dsnInput is everything a bounce says; buildDSN is a pure function of it
// so the golden test pins the whole text.
type dsnInput struct {
	Hostname   string // Reporting-MTA, From domain
	Sender     string // the original envelope sender, the bounce's To
	Arrival    time.Time
	Now        time.Time
	RetryFor   time.Duration
	Recipients []dsnRecipient
	Original   []byte // the original message; only its header is returned
	// Token makes Message-ID and the MIME boundary unique.
	Token string
}

// maxReturnedHeader bounds the original header copied into the bounce.
const maxReturnedHeader = 64 << 10

// buildDSN renders a delivery status notification (RFC 3464): a
// multipart/report (RFC 6522) with a human-readable part in Chinese and
// English, the message/delivery-status part, and the original header as
// text/rfc822-headers. It is sent with the null reverse-path (RFC 5321
// 6.1), so that it can never itself be bounced.
func buildDSN(in dsnInput) []byte {
	boundary := "=_govhub_dsn_" + in.Token
	var b bytes.Buffer
	crlf := func(format string, args ...any) {
		fmt.Fprintf(&b, format, args...)
		b.WriteString("\r\n")
	}
	crlf("From: %s <MAILER-DAEMON@%s>", mime.BEncoding.Encode("utf-8", "邮件系统 Mail Delivery System"), in.Hostname)
	crlf("To: <%s>", in.Sender)
	crlf("Subject: %s", mime.BEncoding.Encode("utf-8", "退信 / Undelivered Mail Returned to Sender"))
	crlf("Date: %s", in.Now.Format(time.RFC1123Z))
	crlf("Message-ID: <dsn-%s@%s>", in.Token, in.Hostname)
	// RFC 3834 5: an automatic response, never to be answered automatically.
	crlf("Auto-Submitted: auto-replied")
	crlf("MIME-Version: 1.0")
	crlf("Content-Type: multipart/report; report-type=delivery-status;")
	crlf("\tboundary=\"%s\"", boundary)
	crlf("")
	crlf("This is a MIME-encapsulated delivery status notification.")
	crlf("")

	// 1. Human-readable, Chinese first.
	crlf("--%s", boundary)
	crlf("Content-Type: text/plain; charset=utf-8")
	crlf("Content-Transfer-Encoding: quoted-printable")
	crlf("Content-Description: Notification")
	crlf("")
	var text strings.Builder
	days := int(in.RetryFor.Hours() / 24)
	fmt.Fprintf(&text, "这是 %s 的邮件系统自动发出的通知。\r\n\r\n", in.Hostname)
	text.WriteString("您的邮件未能投递给下列收件人，已被退回：\r\n\r\n")
	for _, r := range in.Recipients {
		fmt.Fprintf(&text, "  <%s>\r\n", r.Rcpt)
		if r.Expired {
			fmt.Fprintf(&text, "    重试 %d 天后仍未能投递。\r\n", days)
		}
		switch {
		case strings.HasPrefix(r.Diagnostic, "smtp;"):
			fmt.Fprintf(&text, "    对方服务器的答复：%s\r\n", diagText(r.Diagnostic))
		case r.Diagnostic != "":
			fmt.Fprintf(&text, "    原因：%s\r\n", diagText(r.Diagnostic))
		}
	}
	text.WriteString("\r\n请检查收件人地址是否正确。原邮件的信头附在本通知之后。\r\n\r\n")
	fmt.Fprintf(&text, "This is the mail system at %s.\r\n\r\n", in.Hostname)
	text.WriteString("Your message could not be delivered to the following recipients:\r\n\r\n")
	for _, r := range in.Recipients {
		fmt.Fprintf(&text, "  <%s>\r\n", r.Rcpt)
		if r.Expired {
			fmt.Fprintf(&text, "    Delivery was retried for %d days without success.\r\n", days)
		}
		switch {
		case strings.HasPrefix(r.Diagnostic, "smtp;"):
			fmt.Fprintf(&text, "    The remote server said: %s\r\n", diagText(r.Diagnostic))
		case r.Diagnostic != "":
			fmt.Fprintf(&text, "    Reason: %s\r\n", diagText(r.Diagnostic))
		}
	}
	text.WriteString("\r\nPlease check the addresses. The header of your message is attached.\r\n")
	qp := quotedprintable.NewWriter(&b)
	qp.Write([]byte(text.String()))
	qp.Close()
	crlf("")

	// 2. The machine-readable report (RFC 3464 2.2 and 2.3).
	crlf("--%s", boundary)
	crlf("Content-Type: message/delivery-status")
	crlf("Content-Description: Delivery report")
	crlf("")
	crlf("Reporting-MTA: dns; %s", in.Hostname)
	if !in.Arrival.IsZero() {
		crlf("Arrival-Date: %s", in.Arrival.Format(time.RFC1123Z))
	}
	for _, r := range in.Recipients {
		crlf("")
		crlf("Final-Recipient: %s; %s", addrType(r.Rcpt), r.Rcpt)
		crlf("Action: failed")
		crlf("Status: %s", r.Status)
		if r.RemoteMTA != "" {
			crlf("Remote-MTA: dns; %s", r.RemoteMTA)
		}
		if r.Diagnostic != "" {
			crlf("Diagnostic-Code: %s", oneLine(r.Diagnostic))
		}
		if !r.LastAttempt.IsZero() {
			crlf("Last-Attempt-Date: %s", r.LastAttempt.Format(time.RFC1123Z))
		}
	}
	crlf("")

	// 3. The original header (RFC 3462 text/rfc822-headers).
	crlf("--%s", boundary)
	crlf("Content-Type: text/rfc822-headers")
	crlf("Content-Description: Undelivered message header")
	crlf("")
	b.Write(headerOf(in.Original))
	crlf("")
	crlf("--%s--", boundary)
	return b.Bytes()
}

// headerOf returns the header section of raw with CRLF line endings,
// bounded by maxReturnedHeader (cut at a line end).
func headerOf(raw []byte) []byte {
	end := len(raw)
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		end = i + 2
	} else if i := bytes.Index(raw, []byte("\n\n")); i >= 0 {
		end = i + 1
	}
	h := raw[:end]
	if len(h) > maxReturnedHeader {
		h = h[:maxReturnedHeader]
		if i := bytes.LastIndexByte(h, '\n'); i >= 0 {
			h = h[:i+1]
		}
	}
	var out bytes.Buffer
	for _, line := range bytes.SplitAfter(h, []byte("\n")) {
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			continue
		}
		out.Write(line)
		out.WriteString("\r\n")
	}
	return out.Bytes()
}

// oneLine keeps a header value on one line: a remote server's multi-line
// reply must not inject fields into the report.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == '\t' || r < ' ' && r >= 0 {
			return ' '
		}
		return r
	}, s)
	if len(s) > 900 {
		s = s[:900]
	}
	return s
}

// diagText is the text of a "type; text" diagnostic.
func diagText(d string) string {
	if i := strings.Index(d, "; "); i >= 0 {
		return oneLine(d[i+2:])
	}
	return oneLine(d)
}

// addrType is the RFC 3464 address type: rfc822 for ASCII addresses,
// utf-8 (RFC 6533 3) otherwise.
func addrType(a string) string {
	for i := 0; i < len(a); i++ {
		if a[i] >= 0x80 {
			return "utf-8"
		}
	}
	return "rfc822"
}
