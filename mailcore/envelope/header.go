package envelope

import (
	"bufio"
	"bytes"

	"github.com/emersion/go-message/textproto"
)

// MaxHeaderBytes bounds one header section (the message's or a MIME
// part's). Real headers are a few KiB; hostile ones are cut here.
const MaxHeaderBytes = 1 << 20

// MaxHeaderFields bounds the fields of one header section; real mail has a
// few dozen.
const MaxHeaderFields = 5000

// splitHeader separates an entity into its header fields and its body
// (RFC 5322 section 2.1: the header ends at the first empty line). It
// accepts CRLF and bare LF line endings alike and repairs what it can:
//
//   - an mbox "From " separator line on top is skipped (RFC 4155);
//   - continuation lines before any field are dropped;
//   - a line that is not a field is dropped if the next line is one, else
//     the header is taken to end there without the empty line, and the body
//     starts at that line;
//   - past MaxHeaderBytes the rest of the header is ignored.
//
// The repaired section is then read by go-message's textproto, which unfolds
// continuation lines (RFC 5322 section 2.2.3).
func splitHeader(b []byte, w *warnings, where string) (textproto.Header, []byte) {
	var (
		pos      int
		kept     []byte // repaired copy, only once a line was dropped
		copied   bool
		fields   int
		keepFrom int // start of the run of lines not yet copied
		end      = -1
		body     []byte
	)
	drop := func(lineStart, next int) {
		if !copied {
			kept = make([]byte, 0, len(b[:lineStart])+64)
			copied = true
		}
		kept = append(kept, b[keepFrom:lineStart]...)
		keepFrom = next
	}
	if bytes.HasPrefix(b, []byte("From ")) && !isFieldLine(firstLine(b)) {
		next := lineEnd(b, 0)
		pos, keepFrom = next, next
		copied = true
	}
	for pos < len(b) {
		if pos > MaxHeaderBytes {
			w.add("%s: header section larger than %d bytes; rest of it ignored", where, MaxHeaderBytes)
			end = pos
			body = skipToBody(b[pos:])
			break
		}
		next := lineEnd(b, pos)
		line := trimEOL(b[pos:next])
		switch {
		case len(line) == 0:
			end, body = pos, b[next:]
		case line[0] == ' ' || line[0] == '\t':
			if fields == 0 {
				drop(pos, next)
				w.add("%s: header starts with a continuation line", where)
			}
		case isFieldLine(line):
			fields++
			if fields > MaxHeaderFields {
				w.add("%s: more than %d header fields; the rest ignored", where, MaxHeaderFields)
				fields--
				end = pos
				body = skipToBody(b[pos:])
			}
		case next < len(b) && isFieldLine(trimEOL(b[next:lineEnd(b, next)])):
			drop(pos, next)
			w.add("%s: malformed header line dropped", where)
		default:
			if fields > 0 {
				w.add("%s: no empty line between header and body", where)
			} else if where == "message" {
				w.add("%s: no header fields", where)
			}
			end, body = pos, b[pos:]
		}
		if end >= 0 {
			break
		}
		pos = next
	}
	if end < 0 {
		end = len(b)
	}
	section := b[:end]
	if copied {
		if keepFrom < end {
			kept = append(kept, b[keepFrom:end]...)
		}
		section = kept
	}
	if fields == 0 {
		return textproto.Header{}, body
	}
	size := len(section) + 1
	if size > 4096 {
		size = 4096
	}
	h, err := textproto.ReadHeader(bufio.NewReaderSize(bytes.NewReader(section), size))
	if err != nil {
		w.add("%s: unreadable header field; later fields ignored", where)
	}
	return h, body
}

// skipToBody returns what follows the first empty line of b, or nil.
func skipToBody(b []byte) []byte {
	crlf := bytes.Index(b, []byte("\n\r\n"))
	lf := bytes.Index(b, []byte("\n\n"))
	switch {
	case crlf >= 0 && (lf < 0 || crlf < lf):
		return b[crlf+3:]
	case lf >= 0:
		return b[lf+2:]
	}
	return nil
}

// lineEnd returns the offset just past the line that starts at pos.
func lineEnd(b []byte, pos int) int {
	if i := bytes.IndexByte(b[pos:], '\n'); i >= 0 {
		return pos + i + 1
	}
	return len(b)
}

func firstLine(b []byte) []byte { return trimEOL(b[:lineEnd(b, 0)]) }

func trimEOL(l []byte) []byte {
	if n := len(l); n > 0 && l[n-1] == '\n' {
		l = l[:n-1]
	}
	if n := len(l); n > 0 && l[n-1] == '\r' {
		l = l[:n-1]
	}
	return l
}

// isFieldLine reports whether l starts a header field: a name of printable
// ASCII other than ":" (RFC 5322 section 3.6.8), optional blanks (obsolete
// syntax, section 4.5.8), then ":".
func isFieldLine(l []byte) bool {
	for i, c := range l {
		if c == ':' {
			if i == 0 {
				return false
			}
			return true
		}
		if c == ' ' || c == '\t' {
			// Only blanks may follow before the colon.
			for _, d := range l[i:] {
				switch d {
				case ' ', '\t':
					continue
				case ':':
					return i > 0
				}
				return false
			}
			return false
		}
		if c < 33 || c > 126 {
			return false
		}
	}
	return false
}
