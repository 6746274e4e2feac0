package envelope

import (
	"strings"
	"unicode/utf8"
)

// wordDecoder decodes RFC 2047 encoded words in header text that is already
// UTF-8 outside the words (raw 8-bit bytes are converted before, by
// decodeHeaderBytes).
type wordDecoder struct {
	warn  *warnings
	field string // header name, for warnings
	hint  charset
}

// encodedWord is one parsed "=?charset?enc?text?=" (RFC 2047 section 2).
type encodedWord struct {
	charset string
	b       bool   // B encoding; else Q
	text    string // encoded-text
}

// parseWord parses an encoded word at the start of s, which begins with
// "=?". n is its length. more is false when no encoded word can end anywhere
// in s, so the caller can stop looking (this keeps decoding linear on
// hostile input such as thousands of "=?" with no "?=").
//
// It is lenient where clients are sloppy: any case for charset and
// encoding, words longer than the 75 characters of RFC 2047 section 2, and
// blanks inside the encoded text (left by folding a long word, which
// section 2 forbids).
func parseWord(s string) (w encodedWord, n int, ok, more bool) {
	q := strings.IndexByte(s[2:], '?')
	if q < 0 {
		return w, 0, false, false
	}
	q += 2
	cs := s[2:q]
	if cs == "" || len(cs) > 64 || !isCharsetToken(cs) {
		return w, 0, false, true
	}
	if len(s) < q+3 || s[q+2] != '?' {
		return w, 0, false, true
	}
	switch s[q+1] {
	case 'b', 'B':
		w.b = true
	case 'q', 'Q':
	default:
		return w, 0, false, true
	}
	start := q + 3
	end := strings.IndexByte(s[start:], '?')
	if end < 0 {
		return w, 0, false, false
	}
	end += start
	if end+1 >= len(s) || s[end+1] != '=' {
		return w, 0, false, true
	}
	w.charset = cs
	w.text = s[start:end]
	return w, end + 2, true, true
}

func isCharsetToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		// RFC 2047 section 2 excludes "." too, but labels such as
		// ansi_x3.4-1968 contain it.
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\"/[]?=", c) >= 0 {
			return false
		}
	}
	return true
}

// decode returns s with its encoded words decoded.
//
// RFC 2047 section 6.2: linear white space between two adjacent encoded
// words is ignored. Adjacent words in the same charset are decoded
// together, bytes first, so a multi-byte character split across two words
// (which section 5 forbids but encoders do) comes out whole; runs of B words
// are even concatenated before base64 decoding, for encoders that split the
// base64 mid-quantum.
//
// A word in an unknown charset does not fail the header: its bytes are kept
// if they are valid UTF-8 or GB18030, else its raw text is, and a warning is
// added.
func (d *wordDecoder) decode(s string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	var out strings.Builder
	out.Grow(len(s))

	var (
		group      bool   // a run of same-charset words is pending
		groupCS    string // its charset label, lower case
		groupStart int    // offset in s of the run's first word
		groupEnd   int
		b64        strings.Builder
		raw        []byte
	)
	flushB64 := func() {
		if b64.Len() > 0 {
			dec, bad := decodeBase64([]byte(b64.String()), -1)
			if bad {
				d.warn.add("%s: bad base64 in encoded word", d.field)
			}
			raw = append(raw, dec...)
			b64.Reset()
		}
	}
	flush := func() {
		if !group {
			return
		}
		flushB64()
		out.WriteString(d.decodeGroup(groupCS, raw, s[groupStart:groupEnd]))
		group = false
		raw = raw[:0]
	}

	i := 0
	for i < len(s) {
		j := strings.Index(s[i:], "=?")
		if j < 0 {
			break
		}
		w, n, ok, more := parseWord(s[i+j:])
		if !ok {
			if !more {
				break
			}
			flush()
			out.WriteString(s[i : i+j+2])
			i += j + 2
			continue
		}
		between := s[i : i+j]
		if !group || !isBlank(between) {
			flush()
			out.WriteString(between)
		}
		cs := strings.ToLower(w.charset)
		if k := strings.IndexByte(cs, '*'); k >= 0 {
			cs = cs[:k] // RFC 2231 section 5 language tag
		}
		if group && cs != groupCS {
			flush()
		}
		if !group {
			group, groupCS, groupStart = true, cs, i+j
		}
		groupEnd = i + j + n
		if w.b {
			b64.WriteString(w.text)
		} else {
			flushB64()
			raw = decodeQWord(raw, w.text)
		}
		i += j + n
	}
	flush()
	out.WriteString(s[i:])
	return out.String()
}

func (d *wordDecoder) decodeGroup(label string, b []byte, source string) string {
	cs, ok := lookupCharset(label)
	if !ok {
		d.warn.add("%s: unknown charset %s", d.field, quoteLabel(label))
		if utf8.Valid(b) {
			return string(b)
		}
		if s, ok := decodeHeaderBytes(b, d.hint); ok {
			return s
		}
		return source
	}
	if cs.enc == nil {
		if utf8.Valid(b) {
			return string(b)
		}
		// Labelled utf-8 or us-ascii, holding GBK: common enough.
		if s, ok := decodeHeaderBytes(b, d.hint); ok {
			return s
		}
		d.warn.add("%s: invalid %s in encoded word", d.field, cs.name)
		return strings.ToValidUTF8(string(b), "\uFFFD")
	}
	s, clean := cs.transform(b)
	if !clean {
		if utf8.Valid(b) {
			return string(b)
		}
		d.warn.add("%s: invalid %s bytes in encoded word", d.field, cs.name)
	}
	return s
}

// decodeQWord appends the bytes of Q-encoded text (RFC 2047 section 4.2):
// "_" is a space, "=XX" a byte; anything else stands for itself.
func decodeQWord(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_':
			dst = append(dst, ' ')
		case c == '=' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			dst = append(dst, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

func isBlank(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ', '\t', '\r', '\n':
		default:
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
