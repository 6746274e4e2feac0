package envelope

import (
	"bytes"
	"strings"
)

// Content-Transfer-Encoding decoders (RFC 2045 section 6). Both are lenient
// where encoding/base64 and mime/quotedprintable stop at the first error:
// mail is decoded as far as it goes, and bad is set for a warning.

var b64Value = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xFF
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	t['='] = 0xFE
	for _, c := range " \t\r\n" {
		t[c] = 0xFD
	}
	return t
}()

// decodeBase64 decodes src, stopping once limit bytes are out (limit < 0:
// no limit). RFC 2045 section 6.8: characters outside the alphabet are
// ignored. "=" ends a quantum wherever it is, so concatenated encodings
// ("QQ==QkI=") decode whole; a quantum left with one character is dropped.
func decodeBase64(src []byte, limit int) (out []byte, bad bool) {
	n := len(src) / 4 * 3
	if limit >= 0 && n > limit {
		n = limit
	}
	out = make([]byte, 0, n+3)
	var acc uint32
	k := 0
	for _, c := range src {
		v := b64Value[c]
		switch v {
		case 0xFD:
			continue
		case 0xFF:
			bad = true
			continue
		case 0xFE:
			switch k {
			case 1:
				bad = true
			case 2:
				out = append(out, byte(acc>>4))
			case 3:
				out = append(out, byte(acc>>10), byte(acc>>2))
			}
			acc, k = 0, 0
			continue
		}
		acc = acc<<6 | uint32(v)
		k++
		if k == 4 {
			out = append(out, byte(acc>>16), byte(acc>>8), byte(acc))
			acc, k = 0, 0
			if limit >= 0 && len(out) >= limit {
				return out[:limit], bad
			}
		}
	}
	switch k {
	case 1:
		bad = true
	case 2:
		out = append(out, byte(acc>>4))
	case 3:
		out = append(out, byte(acc>>10), byte(acc>>2))
	}
	if limit >= 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, bad
}

// decodeQP decodes quoted-printable text (RFC 2045 section 6.7), stopping
// once limit bytes are out (limit < 0: no limit). Trailing blanks on a line
// are dropped (rule 3), "=" at the end of a line is a soft break (rule 5),
// lines end in "\n"; "=" not followed by two hex digits (either case) stands
// for itself and sets bad.
func decodeQP(src []byte, limit int) (out []byte, bad bool) {
	n := len(src)
	if limit >= 0 && n > limit {
		n = limit
	}
	out = make([]byte, 0, n)
	for len(src) > 0 {
		if limit >= 0 && len(out) >= limit {
			return out[:limit], bad
		}
		var line []byte
		hardBreak := false
		if i := bytes.IndexByte(src, '\n'); i >= 0 {
			line, src = src[:i], src[i+1:]
			hardBreak = true
		} else {
			line, src = src, nil
		}
		// Stray CRs count as trailing blanks: "=\r\r\n" is still a soft
		// break.
		for len(line) > 0 && (line[len(line)-1] == ' ' || line[len(line)-1] == '\t' || line[len(line)-1] == '\r') {
			line = line[:len(line)-1]
		}
		if len(line) > 0 && line[len(line)-1] == '=' {
			line = line[:len(line)-1]
			hardBreak = false
		}
		for i := 0; i < len(line); i++ {
			c := line[i]
			if c == '=' {
				if isHexPair(line[i+1:]) {
					out = append(out, unhex(line[i+1])<<4|unhex(line[i+2]))
					i += 2
					continue
				}
				bad = true
			}
			out = append(out, c)
		}
		if hardBreak {
			out = append(out, '\n')
		}
	}
	if limit >= 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, bad
}

func isHexPair(b []byte) bool { return len(b) >= 2 && isHex(b[0]) && isHex(b[1]) }

// transferEncoding normalises a Content-Transfer-Encoding value: lower case,
// without blanks or a trailing comment.
func transferEncoding(v string) string {
	if i := strings.IndexAny(v, "(;"); i >= 0 {
		v = v[:i]
	}
	return strings.ToLower(strings.Trim(v, " \t\r\n\""))
}

// decodeTransfer undoes the transfer encoding cte of content, giving at most
// limit bytes (limit < 0: all). Unknown encodings pass through (RFC 2045
// section 6.4 says to treat such a part as application/octet-stream; for
// reading text, the bytes as they are serve better) and are reported.
func decodeTransfer(content []byte, cte string, limit int) (out []byte, problem string) {
	switch cte {
	case "base64":
		out, bad := decodeBase64(content, limit)
		if bad {
			return out, "bad base64"
		}
		return out, ""
	case "quoted-printable":
		out, bad := decodeQP(content, limit)
		if bad {
			return out, "bad quoted-printable"
		}
		return out, ""
	case "", "7bit", "8bit", "binary":
	default:
		problem = "unknown transfer encoding " + quoteLabel(cte)
	}
	if limit >= 0 && len(content) > limit {
		content = content[:limit]
	}
	return content, problem
}
