package envelope

import (
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message/textproto"
)

// Address is one mailbox of an address field.
type Address struct {
	Name string // display name, decoded to UTF-8; "" if none
	Addr string // addr-spec as written (case kept: lower-casing is the caller's job)
}

// Envelope is what the mail store keeps in SQL for one message. Every string
// is valid UTF-8 without NUL bytes.
type Envelope struct {
	Date          time.Time // Date: field; zero if missing or unparseable
	Subject       string    // decoded, folding blanks normalised
	From          []Address
	Sender        []Address
	ReplyTo       []Address
	To            []Address
	Cc            []Address
	Bcc           []Address
	MessageID     string   // without angle brackets; "" if missing
	InReplyTo     []string // msg-ids without brackets
	References    []string // msg-ids without brackets, oldest first
	HasAttachment bool     // see Parse
	Preview       string   // at most PreviewRunes runes of the readable text
	Warnings      []string // non-fatal problems met, in English, for logs
}

// PreviewRunes is the length, in runes, of Envelope.Preview.
const PreviewRunes = 96

// Decoding budgets for Parse, per text part: the preview needs only the
// start of the text, and HTML spends much of its bytes on markup.
const (
	previewPlainBytes = 16 << 10
	previewHTMLBytes  = 256 << 10
)

// recoverPanics makes Parse, Text and Attachments turn a panic (a bug: bad
// mail alone must never cause one) into a warning or an empty result, so
// that one message cannot take a delivery down. The tests turn it off to
// see the stack.
var recoverPanics = true

// Parse reads the envelope of a raw RFC 5322 message, as received over
// SMTP. It never fails: malformed input yields what could be read, and the
// problems met are listed in Warnings.
//
// HasAttachment is set when any part has Content-Disposition "attachment"
// (RFC 2183 section 2.2), or is a leaf neither text nor multipart that
// carries a file name (Content-Disposition filename or Content-Type name),
// such as an inline image named in a multipart/related; the signature part
// of a multipart/signed does not count.
//
// Preview is taken from text/plain where a multipart/alternative offers it,
// else from text/html with markup removed; blanks are collapsed, quoted
// lines (">") skipped, and the text stops at a signature separator ("-- ",
// RFC 3676 section 4.3) or a quoted original ("-----Original Message-----",
// "原始邮件") once something has been read.
func Parse(raw []byte) (e Envelope) {
	var w warnings
	defer func() {
		if !recoverPanics {
			return
		}
		if r := recover(); r != nil {
			// A bug, not bad mail: keep what was read, and say so.
			w.add("internal error: %v", r)
			e.Warnings = w.list
		}
	}()
	h, body := splitHeader(raw, &w, "message")
	wk := &walker{warn: &w, plainLimit: previewPlainBytes, htmlLimit: previewHTMLBytes}
	segs := wk.entity(h, body, 0, "text/plain", false)

	fields := headerReader{h: h, warn: &w, hint: wk.hint}
	e.Subject = fields.text("Subject")
	e.From = fields.addresses("From")
	e.Sender = fields.addresses("Sender")
	e.ReplyTo = fields.addresses("Reply-To")
	e.To = fields.addresses("To")
	e.Cc = fields.addresses("Cc")
	e.Bcc = fields.addresses("Bcc")
	if v := h.Get("Date"); strings.TrimSpace(v) != "" {
		if t, ok := parseDate(v); ok {
			e.Date = t
		} else {
			w.add("date: cannot parse %s", quoteSafe(truncateBytes(latin1IfInvalid(v), 64)))
		}
	}
	e.MessageID = parseMessageID(h.Get("Message-Id"))
	e.InReplyTo = parseMsgIDs(strings.Join(h.Values("In-Reply-To"), " "))
	e.References = trimReferences(parseMsgIDs(strings.Join(h.Values("References"), " ")))
	e.HasAttachment = wk.hasAttachment
	e.Preview = preview(segs, wk)
	e.Warnings = w.list
	return e
}

// Text returns the readable text of the message for the full-text index:
// every text part that is not an attachment, one version of each
// multipart/alternative (plain preferred), HTML stripped, decoded to UTF-8,
// runs of blanks collapsed, blank lines dropped, lines joined by "\n". The
// subject is not included. The result has at most max bytes (cut at a
// character boundary); max <= 0 gives "".
func Text(raw []byte, max int) (text string) {
	if max <= 0 {
		return ""
	}
	defer func() {
		if !recoverPanics {
			return
		}
		if r := recover(); r != nil {
			text = "" // a bug, not bad mail; Parse reports it as a warning
		}
	}()
	var w warnings
	h, body := splitHeader(raw, &w, "message")
	wk := &walker{warn: &w, plainLimit: -1, htmlLimit: -1}
	if max < 1<<26 {
		wk.plainLimit = 4*max + 4096
		wk.htmlLimit = 16*max + previewHTMLBytes
	}
	segs := wk.entity(h, body, 0, "text/plain", false)
	var b strings.Builder
	for _, s := range segs {
		t := s.text(&w, wk.limit(s))
		for line := range strings.Lines(t) {
			line = collapse(line)
			if line == "" {
				continue
			}
			if b.Len() > 0 {
				b.WriteByte('\n')
			}
			b.WriteString(line)
			if b.Len() >= max {
				return truncateBytes(b.String(), max)
			}
		}
	}
	return b.String()
}

// Attachments lists the attachment parts of the message, in order, by the
// rule of Envelope.HasAttachment. File names are decoded from RFC 2231 and
// RFC 2047 in any charset, and from raw 8-bit bytes.
func Attachments(raw []byte) (atts []Attachment) {
	defer func() {
		if !recoverPanics {
			return
		}
		if r := recover(); r != nil {
			atts = nil
		}
	}()
	var w warnings
	h, body := splitHeader(raw, &w, "message")
	wk := &walker{warn: &w, plainLimit: previewPlainBytes, htmlLimit: previewHTMLBytes, collect: true}
	wk.entity(h, body, 0, "text/plain", false)
	for i := range wk.attachments {
		wk.attachments[i].Filename = sanitize(wk.attachments[i].Filename)
	}
	return wk.attachments
}

// ThreadRoot returns the msg-id that names e's thread: the first of
// References (the root, RFC 5322 section 3.6.4), else the parent in
// In-Reply-To, else e's own Message-ID; "" if e has none of them.
func ThreadRoot(e Envelope) string {
	switch {
	case len(e.References) > 0:
		return e.References[0]
	case len(e.InReplyTo) > 0:
		return e.InReplyTo[0]
	}
	return e.MessageID
}

// headerReader decodes the unstructured and address fields of a header.
type headerReader struct {
	h    textproto.Header
	warn *warnings
	hint charset
}

// utf8 returns the raw field value as UTF-8, warning when its 8-bit bytes
// fit no charset.
func (r headerReader) utf8(field, v string) string {
	if !hasHighString(v) {
		return v
	}
	s, ok := decodeHeaderBytes([]byte(v), r.hint)
	if !ok {
		r.warn.add("%s: 8-bit bytes in no known charset; read as latin-1", strings.ToLower(field))
	}
	return s
}

func (r headerReader) decoder(field string) *wordDecoder {
	return &wordDecoder{warn: r.warn, field: strings.ToLower(field), hint: r.hint}
}

// text decodes an unstructured field (RFC 5322 section 3.2.5).
func (r headerReader) text(field string) string {
	v := r.h.Get(field)
	if v == "" {
		return ""
	}
	return singleLine(r.decoder(field).decode(r.utf8(field, v)))
}

// addresses decodes every instance of an address field; a field repeated
// against RFC 5322 section 3.6 contributes all its addresses.
func (r headerReader) addresses(field string) []Address {
	vals := r.h.Values(field)
	if len(vals) == 0 {
		return nil
	}
	v := strings.Join(vals, ", ")
	if strings.TrimSpace(v) == "" {
		return nil
	}
	return parseAddressList(r.utf8(field, v), r.decoder(field))
}

// preview builds Envelope.Preview from the readable segments. It reads the
// start of each part first and decodes further only when the preview is
// still short and the part was cut.
func preview(segs []*segment, wk *walker) string {
	p, short := previewFrom(segs, wk, wk.firstLimit)
	if short {
		p, _ = previewFrom(segs, wk, wk.limit)
	}
	return p
}

// previewFrom builds the preview with the decoding budgets limit gives.
// short reports that it came out short of PreviewRunes while some part was
// cut by its budget.
func previewFrom(segs []*segment, wk *walker, limit func(*segment) int) (p string, short bool) {
	var (
		b     strings.Builder
		runes int
		cut   bool
	)
	for _, s := range segs {
		t := s.text(wk.warn, limit(s))
		cut = cut || s.truncated
		for line := range strings.Lines(t) {
			line = collapse(line)
			switch {
			case line == "":
				continue
			case strings.HasPrefix(line, ">"):
				continue // RFC 3676 section 4.5: quoted text
			case line == "--" || isQuoteSeparator(line):
				if b.Len() > 0 {
					return truncateRunes(b.String(), PreviewRunes), false
				}
				continue
			}
			if b.Len() > 0 {
				b.WriteByte(' ')
				runes++
			}
			b.WriteString(line)
			runes += utf8.RuneCountInString(line)
			if runes >= PreviewRunes {
				return truncateRunes(b.String(), PreviewRunes), false
			}
		}
	}
	return b.String(), cut
}

// isQuoteSeparator recognises the line clients put above a quoted
// original: Outlook's "-----Original Message-----", Foxmail's and QQ Mail's
// "------------------ 原始邮件 ------------------".
func isQuoteSeparator(line string) bool {
	if !strings.HasPrefix(line, "---") {
		return false
	}
	l := strings.ToLower(line)
	return strings.Contains(l, "original message") || strings.Contains(l, "原始邮件")
}
