package envelope

import (
	"html"
	"strings"
)

// htmlText returns the readable text of an HTML document: tags removed,
// the content of script, style, title, head and template elements and of
// comments dropped, character references decoded, and a line break where a
// block element starts or ends so that paragraphs do not run together.
// Inline elements add nothing: "<b>通</b>知" reads "通知".
//
// It is a scanner, not a parser: it needs no well-formed input, takes time
// linear in the input and never fails.
func htmlText(s string) string {
	var b strings.Builder
	b.Grow(len(s) / 2)
	text := func(t string) {
		if strings.IndexByte(t, '&') >= 0 {
			t = html.UnescapeString(t)
		}
		b.WriteString(t)
	}
	var (
		tags      tagScanner
		noHeadEnd bool // no "</head" left: stop looking for it
	)
	i := 0
	for i < len(s) {
		lt := strings.IndexByte(s[i:], '<')
		if lt < 0 {
			text(s[i:])
			break
		}
		text(s[i : i+lt])
		i += lt
		rest := s[i:]
		switch {
		case strings.HasPrefix(rest, "<!--"):
			end := strings.Index(rest[4:], "-->")
			if end < 0 {
				return b.String()
			}
			i += 4 + end + 3
			continue
		case len(rest) > 1 && (rest[1] == '!' || rest[1] == '?'):
			end := strings.IndexByte(rest, '>')
			if end < 0 {
				return b.String()
			}
			i += end + 1
			continue
		case len(rest) > 1 && (isASCIILetter(rest[1]) || rest[1] == '/' && len(rest) > 2 && isASCIILetter(rest[2])):
		default:
			text("<")
			i++
			continue
		}
		closing := rest[1] == '/'
		n := 1
		if closing {
			n = 2
		}
		start := n
		for n < len(rest) && (isASCIILetter(rest[n]) || rest[n] >= '0' && rest[n] <= '9') {
			n++
		}
		name := strings.ToLower(rest[start:n])
		end := tags.end(rest, n)
		if end < 0 {
			return b.String()
		}
		i += end
		if closing {
			if blockTags[name] {
				b.WriteByte('\n')
			}
			continue
		}
		switch name {
		case "script", "style", "title", "template", "textarea", "xml":
			// Raw text up to the matching end tag; a missing one runs to
			// the end, as in browsers.
			j := indexEndTag(s[i:], name)
			if j < 0 {
				return b.String()
			}
			i += j
			continue
		case "head":
			// Skip the head only when it is closed: a head left open would
			// otherwise swallow the body.
			if noHeadEnd {
				continue
			}
			if j := indexEndTag(s[i:], "head"); j >= 0 {
				i += j
			} else {
				noHeadEnd = true
			}
			continue
		case "br", "hr", "p", "div", "tr", "li", "table":
			b.WriteByte('\n')
		case "td", "th":
			b.WriteByte(' ')
		default:
			if blockTags[name] {
				b.WriteByte('\n')
			}
		}
	}
	return b.String()
}

var blockTags = map[string]bool{
	"address": true, "article": true, "aside": true, "blockquote": true, "body": true, "center": true,
	"dd": true, "div": true, "dl": true, "dt": true, "fieldset": true, "figure": true, "footer": true,
	"form": true, "h1": true, "h2": true, "h3": true, "h4": true, "h5": true, "h6": true,
	"header": true, "hr": true, "li": true, "main": true, "nav": true, "ol": true, "p": true,
	"pre": true, "section": true, "table": true, "tbody": true, "tr": true, "ul": true, "br": true,
	"html": true, "thead": true, "tfoot": true, "caption": true,
}

func isASCIILetter(c byte) bool { return 'A' <= c&^0x20 && c&^0x20 <= 'Z' }

// tagScanner finds the ends of tags. It remembers that a quote character
// has no partner left in the document, so a run of tags with unbalanced
// quotes costs linear time, not quadratic.
type tagScanner struct {
	noQuote [2]bool // no further '"' / '\'' in the document
}

// end returns the offset just past the ">" closing the tag whose name ends
// at n in s, honouring quoted attribute values (a quote only opens a value
// right after "="), or -1.
func (t *tagScanner) end(s string, n int) int {
	for i := n; i < len(s); i++ {
		switch c := s[i]; c {
		case '>':
			return i + 1
		case '"', '\'':
			if !afterEquals(s[n:i]) {
				continue
			}
			q := 0
			if c == '\'' {
				q = 1
			}
			if t.noQuote[q] {
				continue
			}
			j := strings.IndexByte(s[i+1:], c)
			if j < 0 {
				t.noQuote[q] = true
				continue
			}
			i += j + 1
		}
	}
	return -1
}

func afterEquals(s string) bool {
	s = strings.TrimRight(s, " \t\r\n")
	return strings.HasSuffix(s, "=")
}

// indexEndTag returns the offset just past "</name ... >" in s (any case),
// or -1.
func indexEndTag(s, name string) int {
	for i := 0; i < len(s); {
		j := strings.Index(s[i:], "</")
		if j < 0 {
			return -1
		}
		i += j
		k := i + 2 + len(name)
		if k <= len(s) && strings.EqualFold(s[i+2:k], name) && (k == len(s) || !isASCIILetter(s[k])) {
			if e := strings.IndexByte(s[k:], '>'); e >= 0 {
				return k + e + 1
			}
			return len(s)
		}
		i += 2
	}
	return -1
}

// htmlMetaCharset finds the charset an HTML part declares in a <meta> tag
// (HTML's "charset=" in either meta form), for parts whose Content-Type
// names none. Only the first 2 KiB are searched.
func htmlMetaCharset(b []byte) string {
	if len(b) > 2048 {
		b = b[:2048]
	}
	s := strings.ToLower(string(b))
	for {
		m := strings.Index(s, "<meta")
		if m < 0 {
			return ""
		}
		s = s[m+5:]
		end := strings.IndexByte(s, '>')
		if end < 0 {
			end = len(s)
		}
		tag := s[:end]
		if c := strings.Index(tag, "charset="); c >= 0 {
			v := strings.TrimLeft(tag[c+8:], "\"' ")
			n := 0
			for n < len(v) && (isASCIILetter(v[n]) || v[n] >= '0' && v[n] <= '9' || strings.IndexByte("-_.:", v[n]) >= 0) {
				n++
			}
			return v[:n]
		}
	}
}
