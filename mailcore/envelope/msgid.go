package envelope

import "strings"

// maxReferences bounds References: the first id (the thread root) and the
// last maxReferences-1 (the nearest ancestors) are kept, as RFC 5322
// section 3.6.4 suggests trimming from the middle.
const maxReferences = 100

// parseMsgIDs reads the msg-ids of Message-ID, In-Reply-To or References
// (RFC 5322 section 3.6.4), without their angle brackets. Blanks inside
// brackets are dropped (obsolete folding, section 4.5.4). When no bracketed
// id is present, bare words holding an "@" are taken instead, which is what
// some clients send; the obsolete phrases of In-Reply-To ("Your message of
// ...") are skipped either way.
func parseMsgIDs(s string) []string {
	var ids []string
	s = stripComments(s)
	for {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i+1:], '>')
		if j < 0 {
			if id := cleanID(s[i+1:]); id != "" {
				ids = append(ids, id)
			}
			break
		}
		if id := cleanID(s[i+1 : i+1+j]); id != "" {
			ids = append(ids, id)
		}
		s = s[i+1+j+1:]
	}
	if ids == nil {
		for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' || r == ',' || r == '\r' || r == '\n' }) {
			if strings.Contains(f, "@") {
				ids = append(ids, cleanID(f))
			}
		}
	}
	return ids
}

func cleanID(s string) string {
	s = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n', '<', '>', '"':
			return -1
		}
		return r
	}, s)
	return sanitizeID(s)
}

// sanitizeID keeps a msg-id's bytes recognisable and valid UTF-8: ids are
// ASCII by RFC 5322, so 8-bit junk is read as Latin-1, which is lossless
// and gives the same string for the same bytes in every message.
func sanitizeID(s string) string {
	if !hasHighString(s) && !strings.ContainsRune(s, 0) {
		return s
	}
	return sanitize(latin1IfInvalid(s))
}

// parseMessageID returns the id of Message-ID, or "" when there is none.
func parseMessageID(s string) string {
	if ids := parseMsgIDs(s); len(ids) > 0 {
		return ids[0]
	}
	// "Message-ID: 1234.5678" without brackets or "@": take the word.
	if f := strings.Fields(stripComments(s)); len(f) > 0 {
		return cleanID(f[0])
	}
	return ""
}

func trimReferences(ids []string) []string {
	if len(ids) <= maxReferences {
		return ids
	}
	out := make([]string, 0, maxReferences)
	out = append(out, ids[0])
	return append(out, ids[len(ids)-(maxReferences-1):]...)
}
