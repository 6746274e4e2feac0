package envelope

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxWarnings bounds Envelope.Warnings; hostile mail can produce a problem
// per part.
const maxWarnings = 32

// warnings collects distinct non-fatal problems in the order met.
type warnings struct {
	list    []string
	dropped bool
}

func (w *warnings) add(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	for _, m := range w.list {
		if m == msg {
			return
		}
	}
	if len(w.list) >= maxWarnings {
		if !w.dropped {
			w.dropped = true
			w.list[len(w.list)-1] = "more warnings omitted"
		}
		return
	}
	w.list = append(w.list, msg)
}

// sanitize makes s safe to store: valid UTF-8 (invalid bytes become
// U+FFFD) and free of NUL and other C0/C1 control characters except tab
// and newline (PostgreSQL rejects NUL in text; the others only hide text).
// A byte-order mark is removed too.
func sanitize(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	clean := true
	for _, r := range s {
		if isJunk(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	return strings.Map(func(r rune) rune {
		if isJunk(r) {
			return -1
		}
		return r
	}, s)
}

func isJunk(r rune) bool {
	switch {
	case r == '\t' || r == '\n':
		return false
	case r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0:
		return true
	case r == '\uFEFF':
		return true
	}
	return false
}

// singleLine sanitizes a header text and normalises the blanks folding left
// (RFC 5322 section 2.2.3): runs of ASCII white space become one space, and
// the ends are trimmed. Other spaces, such as the ideographic U+3000 of
// Chinese text, are content and stay.
func singleLine(s string) string {
	s = sanitize(s)
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case ' ', '\t', '\r', '\n', '\v', '\f':
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteByte(c)
	}
	return b.String()
}

// latin1IfInvalid returns s unchanged if it is valid UTF-8, else its bytes
// read as Latin-1.
func latin1IfInvalid(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return latin1([]byte(s))
}

// quoteSafe quotes a value taken from the mail for a warning.
func quoteSafe(s string) string {
	return strconv.QuoteToASCII(s)
}

// collapse returns s with every run of Unicode white space (including the
// no-break spaces HTML produces) replaced by one space, trimmed.
func collapse(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) || r == '\u200b' {
			space = true
			continue
		}
		if isJunk(r) {
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

// truncateRunes cuts s to at most n runes.
func truncateRunes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := 0
	for pos := range s {
		if i == n {
			return s[:pos]
		}
		i++
	}
	return s
}

// truncateBytes cuts s to at most n bytes without splitting a character.
func truncateBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
