package envelope

import (
	"bytes"
	"strings"

	"github.com/emersion/go-message/textproto"
)

// Limits against hostile mail. Beyond them the walk stops descending, adds
// a warning and keeps what it found.
const (
	MaxDepth = 32   // MIME nesting: multipart and message/rfc822 levels
	MaxParts = 1000 // entities visited, containers included
)

// First decoding budgets of a text part, when only its start may be needed
// (the preview, choosing among alternatives).
const (
	firstPlainBytes = 2 << 10
	firstHTMLBytes  = 8 << 10
)

// segment is one readable text part, decoded lazily.
type segment struct {
	html    bool
	content []byte // as transferred
	cte     string
	charset string // Content-Type charset parameter, "" if none

	done      bool
	limit     int
	truncated bool // the decode stopped at limit
	decoded   string
}

// text returns the part's text in UTF-8, HTML already stripped, decoding at
// most limit transfer-decoded bytes (limit < 0: all).
func (s *segment) text(w *warnings, limit int) string {
	if s.done && (s.limit < 0 || limit >= 0 && limit <= s.limit) {
		return s.decoded
	}
	raw, problem := decodeTransfer(s.content, s.cte, limit)
	if problem != "" {
		w.add("body: %s", problem)
	}
	label := s.charset
	if label == "" && s.html {
		label = htmlMetaCharset(raw)
	}
	truncated := limit >= 0 && len(raw) == limit
	if truncated {
		raw = cutAtCharBoundary(raw, label)
	}
	t, note := decodeBody(raw, label)
	if note != "" {
		w.add("body: %s", note)
	}
	if s.html {
		t = htmlText(t)
	}
	s.done, s.limit, s.decoded, s.truncated = true, limit, t, truncated
	return t
}

// cutAtCharBoundary shortens text cut by a decoding budget so that it does
// not end inside a multi-byte character: after its last line break (LF is
// never part of a multi-byte character in UTF-8, GBK, GB18030 or Big5), or,
// with no line break in its second half, by the one to three bytes that
// make the tail decode cleanly.
func cutAtCharBoundary(raw []byte, label string) []byte {
	if i := bytes.LastIndexByte(raw, '\n'); i >= len(raw)/2 {
		return raw[:i+1]
	}
	for n := 0; n < 4 && n < len(raw); n++ {
		if _, note := decodeBody(raw[max(0, len(raw)-n-8):len(raw)-n], label); note == "" {
			return raw[:len(raw)-n]
		}
	}
	return raw
}

// Attachment describes one attachment part.
type Attachment struct {
	Filename    string // decoded to UTF-8; "" if the part names none
	ContentType string // lower case, without parameters
	Size        int    // bytes after transfer decoding
}

// walker visits the MIME tree of one message (RFC 2045, RFC 2046).
type walker struct {
	warn          *warnings
	parts         int
	depthWarned   bool
	partsWarned   bool
	hasAttachment bool
	hint          charset // a multi-byte charset a text part declared
	hintSet       bool

	plainLimit, htmlLimit int // decoding budget per text part; < 0: all

	collect     bool // gather attachments
	attachments []Attachment
}

// entity walks one entity (the message, a body part or an encapsulated
// message) and returns its readable text segments in reading order.
func (wk *walker) entity(h textproto.Header, body []byte, depth int, defaultType string, signature bool) []*segment {
	if wk.parts >= MaxParts {
		wk.tooMany()
		return nil
	}
	wk.parts++
	// Parameters need no charset hint and give no header warnings worth a
	// field name beyond "mime".
	pd := &wordDecoder{warn: wk.warn, field: "mime", hint: wk.hint}
	ct := defaultType
	var params map[string]string
	if v := h.Get("Content-Type"); v != "" {
		ct, params = parseParams(headerUTF8(v, wk.hint), pd)
		if !strings.Contains(ct, "/") || strings.ContainsAny(ct, " \t") {
			// RFC 2045 section 5.2: an unreadable Content-Type means
			// text/plain; keep the charset, if any.
			wk.warn.add("mime: bad content type %s; read as text/plain", quoteLabel(ct))
			ct = "text/plain"
		}
	}
	disp, dparams := "", map[string]string(nil)
	if v := h.Get("Content-Disposition"); v != "" {
		disp, dparams = parseParams(headerUTF8(v, wk.hint), pd)
	}
	cte := transferEncoding(h.Get("Content-Transfer-Encoding"))
	attachment := disp == "attachment"
	filename := dparams["filename"]
	if filename == "" {
		filename = params["name"]
	}

	switch {
	case strings.HasPrefix(ct, "multipart/"):
		if attachment {
			wk.attach(filename, ct, body, cte)
			return nil
		}
		if depth >= MaxDepth {
			wk.tooDeep()
			return nil
		}
		content := body
		if cte == "base64" || cte == "quoted-printable" {
			// RFC 2045 section 6.4 forbids encoding a multipart; undo it.
			wk.warn.add("mime: %s-encoded multipart", cte)
			content, _ = decodeTransfer(body, cte, -1)
		}
		return wk.multipart(ct, params["boundary"], content, depth)

	case ct == "message/rfc822" || ct == "message/global":
		if attachment {
			wk.attach(filename, ct, body, cte)
			return nil
		}
		if depth >= MaxDepth {
			wk.tooDeep()
			return nil
		}
		content := body
		if cte == "base64" || cte == "quoted-printable" {
			content, _ = decodeTransfer(body, cte, -1)
		}
		eh, eb := splitHeader(content, wk.warn, "message/rfc822")
		return wk.entity(eh, eb, depth+1, "text/plain", false)

	case ct == "text/plain" || ct == "text/html":
		if attachment {
			wk.attach(filename, ct, body, cte)
			return nil
		}
		cs := params["charset"]
		wk.noteCharset(cs)
		return []*segment{{html: ct == "text/html", content: body, cte: cte, charset: cs}}

	default:
		// A leaf that is not readable text. RFC 2183 section 2.2 makes any
		// part with "attachment" one; a non-text leaf carrying a file name
		// is one too, however it is marked. The signature of a
		// multipart/signed (RFC 1847 section 2.1) is not, though S/MIME
		// names it smime.p7s.
		if attachment || !signature && !strings.HasPrefix(ct, "text/") && filename != "" {
			wk.attach(filename, ct, body, cte)
		}
		return nil
	}
}

func (wk *walker) tooMany() {
	if !wk.partsWarned {
		wk.partsWarned = true
		wk.warn.add("mime: more than %d parts; the rest skipped", MaxParts)
	}
}

func (wk *walker) tooDeep() {
	if !wk.depthWarned {
		wk.depthWarned = true
		wk.warn.add("mime: nested deeper than %d levels; deeper parts skipped", MaxDepth)
	}
}

// noteCharset lends a declared CJK multi-byte charset as the guess for raw
// 8-bit header bytes.
func (wk *walker) noteCharset(label string) {
	if wk.hintSet || label == "" {
		return
	}
	if cs, ok := lookupCharset(label); ok && !cs.utf8 && !cs.ascii {
		wk.hintSet = true
		if cs.multibyte {
			wk.hint = cs
		}
	}
}

func (wk *walker) attach(filename, ct string, body []byte, cte string) {
	wk.hasAttachment = true
	if !wk.collect {
		return
	}
	size := len(body)
	if cte == "base64" || cte == "quoted-printable" {
		dec, _ := decodeTransfer(body, cte, -1)
		size = len(dec)
	}
	wk.attachments = append(wk.attachments, Attachment{Filename: singleLine(filename), ContentType: ct, Size: size})
}

// multipart splits and walks a multipart body (RFC 2046 section 5.1).
func (wk *walker) multipart(ct, boundary string, body []byte, depth int) []*segment {
	parts, problem := splitMultipart(body, boundary)
	if problem != "" {
		wk.warn.add("mime: %s", problem)
	}
	if parts == nil {
		// No usable boundary: the body is all there is; read it as text.
		return []*segment{{content: body}}
	}
	childType := "text/plain"
	if ct == "multipart/digest" {
		childType = "message/rfc822" // RFC 2046 section 5.1.5
	}
	children := make([][]*segment, 0, len(parts))
	for i, p := range parts {
		if wk.parts >= MaxParts {
			wk.tooMany()
			break
		}
		ph, pb := splitHeader(p, wk.warn, "mime part")
		signature := ct == "multipart/signed" && i == 1
		children = append(children, wk.entity(ph, pb, depth+1, childType, signature))
	}
	if ct == "multipart/alternative" {
		return wk.alternative(children)
	}
	var out []*segment
	for _, c := range children {
		out = append(out, c...)
	}
	return out
}

// alternative picks one of the versions of a multipart/alternative (RFC 2046
// section 5.1.4). Plain text is preferred, being what the preview and the
// index want; a blank plain version, as some clients send beside the HTML,
// does not count. Otherwise the last version with text wins, as the RFC
// orders versions by increasing faithfulness.
func (wk *walker) alternative(children [][]*segment) []*segment {
	var best []*segment
	for _, c := range children {
		if hasPlain(c) && wk.hasText(c) {
			return c
		}
	}
	for _, c := range children {
		if wk.hasText(c) {
			best = c
		}
	}
	return best
}

func hasPlain(segs []*segment) bool {
	for _, s := range segs {
		if !s.html {
			return true
		}
	}
	return false
}

func (wk *walker) hasText(segs []*segment) bool {
	for _, s := range segs {
		// A first look at the start is nearly always enough.
		if strings.TrimSpace(s.text(wk.warn, wk.firstLimit(s))) != "" {
			return true
		}
		if s.truncated && strings.TrimSpace(s.text(wk.warn, wk.limit(s))) != "" {
			return true
		}
	}
	return false
}

// limit is the decoding budget for s; firstLimit a smaller one to try
// first, when only the start of the text may be needed.
func (wk *walker) limit(s *segment) int {
	if s.html {
		return wk.htmlLimit
	}
	return wk.plainLimit
}

func (wk *walker) firstLimit(s *segment) int {
	first := firstPlainBytes
	if s.html {
		first = firstHTMLBytes
	}
	if l := wk.limit(s); l >= 0 && l < first {
		return l
	}
	return first
}

// splitMultipart returns the body parts between the delimiter lines of
// boundary (RFC 2046 section 5.1.1): a line "--boundary" (then optional
// blanks, the transport padding) opens a part, "--boundary--" closes the
// last; the line break before a delimiter belongs to it. A missing close
// delimiter ends the last part at the end of the body. If the boundary is
// missing or never appears, one is guessed from the first line that looks
// like a delimiter followed by a header field; if none, parts is nil.
func splitMultipart(body []byte, boundary string) (parts [][]byte, problem string) {
	if boundary == "" {
		problem = "multipart without boundary"
	} else if parts, closed, ok := splitOn(body, boundary); ok {
		if !closed {
			return parts, "closing boundary missing"
		}
		return parts, ""
	} else {
		problem = "boundary " + quoteLabel(boundary) + " not found"
	}
	if g := guessBoundary(body); g != "" && g != boundary {
		if parts, _, ok := splitOn(body, g); ok {
			return parts, problem + "; used boundary found in body"
		}
	}
	return nil, problem
}

func splitOn(body []byte, boundary string) (parts [][]byte, closed, ok bool) {
	delim := "--" + boundary
	start := -1 // offset where the current part's content starts
	pos := 0
	for pos < len(body) {
		i := bytes.Index(body[pos:], []byte(delim))
		if i < 0 {
			break
		}
		at := pos + i
		pos = at + len(delim)
		if at > 0 && body[at-1] != '\n' {
			continue // not at a line start
		}
		rest := body[pos:]
		isClose := bytes.HasPrefix(rest, []byte("--"))
		if isClose {
			rest = rest[2:]
		}
		eol := bytes.IndexByte(rest, '\n')
		tail := rest
		if eol >= 0 {
			tail = rest[:eol]
		}
		if len(bytes.Trim(tail, " \t\r")) != 0 {
			continue // a longer boundary that starts with ours
		}
		if start >= 0 {
			parts = append(parts, trimLineBreak(body[start:at]))
			if len(parts) > MaxParts {
				return parts, true, true // the walker reports the excess
			}
		}
		if isClose {
			return parts, true, true
		}
		next := len(body)
		if eol >= 0 {
			next = len(body) - len(rest) + eol + 1
		}
		start, pos = next, next
	}
	if start < 0 {
		return nil, false, false
	}
	return append(parts, trimLineBreak(body[start:])), false, true
}

// trimLineBreak removes the CRLF or LF that precedes a delimiter.
func trimLineBreak(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

// guessBoundary looks for a line "--X" followed by a header field line.
func guessBoundary(body []byte) string {
	pos := 0
	for pos < len(body) {
		i := bytes.Index(body[pos:], []byte("--"))
		if i < 0 {
			return ""
		}
		at := pos + i
		pos = at + 2
		if at > 0 && body[at-1] != '\n' {
			continue
		}
		end := lineEnd(body, at)
		line := bytes.TrimRight(trimEOL(body[at:end]), " \t")
		if len(line) < 3 || len(line) > 72 || bytes.ContainsAny(line, " \t") {
			continue
		}
		if end < len(body) && isFieldLine(trimEOL(body[end:lineEnd(body, end)])) {
			return string(bytes.TrimSuffix(line[2:], []byte("--")))
		}
	}
	return ""
}

// headerUTF8 turns a raw header value to UTF-8 (see decodeHeaderBytes).
func headerUTF8(v string, hint charset) string {
	if !hasHighString(v) {
		return v
	}
	s, _ := decodeHeaderBytes([]byte(v), hint)
	return s
}
