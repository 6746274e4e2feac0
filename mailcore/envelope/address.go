package envelope

import "strings"

// maxAddresses bounds the addresses kept from one header field.
const maxAddresses = 2000

// rawEntry is one comma-separated element of an address list before its
// display name is decoded.
type rawEntry struct {
	words    []string // phrase words: atoms and quoted-string contents
	spec     strings.Builder
	angle    string
	hasAngle bool
	hasAt    bool // an "@" outside angle brackets
	comment  string
}

func (e *rawEntry) empty() bool { return len(e.words) == 0 && !e.hasAngle }

// parseAddressList parses an address-list (RFC 5322 section 3.4) from s,
// which is UTF-8 already. It is tolerant, since mail from every client in
// the wild reaches it:
//
//   - groups ("team: a@x, b@y;") contribute their members; an empty group
//     ("undisclosed-recipients:;") contributes nothing;
//   - ";" separates addresses too, as some Chinese clients write;
//   - a display name without quotes that was split at a comma
//     ("Zhang, San <z@x>") is joined again;
//   - "addr (Name)" takes the name from the comment (RFC 5322 section
//     3.4, note on comments in older mail);
//   - an entry with neither "@" nor angle brackets is kept as a bare
//     address if it is one word, else as a name without an address.
//
// Encoded words in display names are decoded by d, including inside
// quoted strings, where RFC 2047 section 5 forbids them and Outlook and
// Foxmail put them anyway.
func parseAddressList(s string, d *wordDecoder) []Address {
	var (
		entries []*rawEntry
		cur     = &rawEntry{}
	)
	finish := func() {
		if !cur.empty() && len(entries) < maxAddresses {
			entries = append(entries, cur)
		}
		cur = &rawEntry{}
	}
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"':
			v, rest := readQuoted(s[i:])
			cur.words = append(cur.words, v)
			cur.spec.WriteString(`"` + v + `"`)
			i = len(s) - len(rest)
		case c == '(':
			v, n := readComment(s[i:])
			if cur.comment == "" {
				cur.comment = strings.TrimSpace(v)
			}
			i += n
		case c == '<':
			end := strings.IndexAny(s[i+1:], ">,")
			if end < 0 {
				end = len(s) - i - 1
			}
			cur.angle = s[i+1 : i+1+end]
			cur.hasAngle = true
			i += 1 + end
			if i < len(s) && s[i] == '>' {
				i++
			}
		case c == ',' || c == ';':
			finish()
			i++
		case c == ':' && !cur.hasAngle && !cur.hasAt:
			// A group's display name (RFC 5322 section 3.4): drop it.
			cur = &rawEntry{}
			i++
		case c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '>':
			i++
		default:
			j, at := i, cur.hasAt
			for j < len(s) {
				cj := s[j]
				if strings.IndexByte(" \t\r\n\"(<>,;", cj) >= 0 || cj == ':' && !at {
					break
				}
				if cj == '@' {
					at = true
				}
				j++
			}
			if j == i {
				j++ // a ":" that cannot start a group: part of the word
			}
			w := s[i:j]
			if strings.Contains(w, "@") {
				cur.hasAt = true
			}
			cur.words = append(cur.words, w)
			cur.spec.WriteString(w)
			i = j
		}
	}
	finish()

	var (
		out     []Address
		pending []string // name-only entries waiting for their address
	)
	emitPending := func() {
		for _, p := range pending {
			name := d.name(p)
			if !strings.ContainsAny(p, " \t") && !strings.Contains(p, "=?") {
				out = append(out, Address{Addr: name})
			} else {
				out = append(out, Address{Name: name})
			}
		}
		pending = pending[:0]
	}
	for _, e := range entries {
		switch {
		case e.hasAngle:
			phrase := strings.Join(e.words, " ")
			if len(pending) > 0 {
				if phrase != "" {
					pending = append(pending, phrase)
				}
				phrase = strings.Join(pending, ", ")
				pending = pending[:0]
			}
			name := d.name(phrase)
			if name == "" && e.comment != "" {
				name = d.name(e.comment)
			}
			out = append(out, Address{Name: name, Addr: cleanAddr(e.angle)})
		case e.hasAt:
			emitPending()
			out = append(out, Address{Name: d.name(e.comment), Addr: cleanAddr(e.spec.String())})
		default:
			pending = append(pending, strings.Join(e.words, " "))
		}
	}
	emitPending()
	return out
}

// name decodes a display name: encoded words, blanks collapsed, quotes an
// encoded word carried removed.
func (d *wordDecoder) name(s string) string {
	s = singleLine(d.decode(s))
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	return s
}

// cleanAddr tidies an addr-spec as written: blanks and comments dropped
// (RFC 5322 section 4.4 allows CFWS around the parts of obsolete
// addresses), an obsolete source route ("@a,@b:x@y", section 4.4) cut.
// Case is kept.
func cleanAddr(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\r', '\n':
		case '(':
			_, n := readComment(s[i:])
			i += n - 1
		case '"':
			v, rest := readQuoted(s[i:])
			b.WriteString(`"` + v + `"`)
			i = len(s) - len(rest) - 1
		default:
			b.WriteByte(c)
		}
	}
	a := b.String()
	if strings.HasPrefix(a, "@") {
		if i := strings.LastIndexByte(a, ':'); i >= 0 {
			a = a[i+1:]
		}
	}
	a = strings.TrimPrefix(a, "mailto:")
	return sanitize(a)
}

// readComment reads a comment at the start of s, which begins with "("
// (RFC 5322 section 3.2.2: comments nest, and take quoted-pairs). It
// returns the comment's text and the bytes it took.
func readComment(s string) (string, int) {
	depth := 0
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '(':
			if depth > 0 {
				b.WriteByte(c)
			}
			depth++
		case ')':
			depth--
			if depth == 0 {
				return b.String(), i + 1
			}
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), len(s)
}
