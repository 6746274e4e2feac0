package envelope

import (
	"sort"
	"strconv"
	"strings"
)

// maxParamSections bounds RFC 2231 continuations of one parameter.
const maxParamSections = 256

// parseParams parses a header value of the form `value *(";" name "=" v)`,
// as Content-Type (RFC 2045 section 5.1) and Content-Disposition (RFC 2183
// section 2) use. value and parameter names come back in lower case.
//
// Unlike mime.ParseMediaType it never fails: bad parameters are skipped,
// unquoted values may hold blanks, an unterminated quoted string runs to the
// end. RFC 2231 extended values ("name*=charset'lang'%XX") and continuations
// ("name*0*=", "name*1=") are joined as bytes and decoded in their charset,
// whatever it is (the standard library only decodes UTF-8 and US-ASCII
// ones); an extended value wins over a plain one of the same name. Plain
// values are decoded from RFC 2047 encoded words, which RFC 2047 section 5
// forbids in parameters but clients write for file names all the same.
//
// s must already be UTF-8 (decodeHeaderBytes), since raw GBK would confuse
// quoted-string parsing: GBK trail bytes include "\".
func parseParams(s string, d *wordDecoder) (value string, params map[string]string) {
	semi := strings.IndexByte(s, ';')
	if semi < 0 {
		return strings.ToLower(strings.TrimSpace(s)), nil
	}
	value = strings.ToLower(strings.TrimSpace(s[:semi]))
	s = s[semi:]

	type section struct {
		ext bool
		v   string
	}
	var (
		plain    map[string]string
		sections map[string]map[int]section
	)
	for len(s) > 0 {
		s = strings.TrimLeft(s, "; \t\r\n")
		if s == "" {
			break
		}
		eq := strings.IndexAny(s, "=;")
		if eq < 0 || s[eq] == ';' {
			// A name without a value: skip it.
			if eq < 0 {
				break
			}
			s = s[eq:]
			continue
		}
		name := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = strings.TrimLeft(s[eq+1:], " \t\r\n")
		var v string
		if strings.HasPrefix(s, `"`) {
			v, s = readQuoted(s)
		} else {
			end := strings.IndexByte(s, ';')
			if end < 0 {
				end = len(s)
			}
			v, s = strings.TrimSpace(s[:end]), s[end:]
		}
		if name == "" {
			continue
		}
		// RFC 2231 sections 3 and 4: name*N, name*N*, name*.
		base, idx, ext := name, -1, false
		if strings.HasSuffix(base, "*") {
			base, ext = base[:len(base)-1], true
		}
		if i := strings.LastIndexByte(base, '*'); i >= 0 {
			n, err := strconv.Atoi(base[i+1:])
			if err == nil && n >= 0 && n < maxParamSections {
				base, idx = base[:i], n
			}
		}
		if idx < 0 && !ext {
			if plain == nil {
				plain = map[string]string{}
			}
			if _, dup := plain[base]; !dup {
				plain[base] = v
			}
			continue
		}
		if idx < 0 {
			idx = 0
		}
		if sections == nil {
			sections = map[string]map[int]section{}
		}
		if sections[base] == nil {
			sections[base] = map[int]section{}
		}
		if _, dup := sections[base][idx]; !dup {
			sections[base][idx] = section{ext: ext, v: v}
		}
	}

	params = make(map[string]string, len(plain)+len(sections))
	for k, v := range plain {
		if strings.Contains(v, "=?") {
			v = d.decode(v)
		}
		params[k] = v
	}
	for base, secs := range sections {
		idxs := make([]int, 0, len(secs))
		for i := range secs {
			idxs = append(idxs, i)
		}
		sort.Ints(idxs)
		var (
			raw   []byte
			label string
		)
		for n, i := range idxs {
			if n != i {
				break // RFC 2231 section 3: sections must be consecutive from 0
			}
			sec := secs[i]
			if !sec.ext {
				raw = append(raw, sec.v...)
				continue
			}
			v := sec.v
			if i == 0 {
				// charset'language'value; both may be empty.
				if a := strings.IndexByte(v, '\''); a >= 0 {
					if b := strings.IndexByte(v[a+1:], '\''); b >= 0 {
						label, v = v[:a], v[a+1+b+1:]
					}
				}
			}
			raw = appendPercentDecoded(raw, v)
		}
		params[base] = decodeParamBytes(raw, label, d)
	}
	return value, params
}

// decodeParamBytes decodes the bytes of an RFC 2231 value in charset label.
func decodeParamBytes(raw []byte, label string, d *wordDecoder) string {
	if label == "" {
		s, ok := decodeHeaderBytes(raw, d.hint)
		if !ok {
			d.warn.add("%s: 8-bit parameter bytes in no known charset", d.field)
		}
		return s
	}
	cs, ok := lookupCharset(label)
	if !ok {
		d.warn.add("%s: unknown charset %s", d.field, quoteLabel(label))
		s, _ := decodeHeaderBytes(raw, d.hint)
		return s
	}
	if cs.enc == nil {
		s, ok := decodeHeaderBytes(raw, d.hint)
		if !ok {
			d.warn.add("%s: invalid %s in parameter", d.field, cs.name)
		}
		return s
	}
	s, clean := cs.transform(raw)
	if !clean {
		d.warn.add("%s: invalid %s bytes in parameter", d.field, cs.name)
	}
	return s
}

// readQuoted reads an RFC 5322 quoted-string at the start of s (which begins
// with `"`), returning its content with quoted-pairs undone, and the rest.
func readQuoted(s string) (v, rest string) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), s[i+1:]
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), ""
}

// appendPercentDecoded appends s with RFC 2231 "%XX" escapes undone; a "%"
// without two hex digits stands for itself.
func appendPercentDecoded(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			dst = append(dst, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		dst = append(dst, s[i])
	}
	return dst
}
