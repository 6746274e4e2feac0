package envelope

import (
	"strconv"
	"strings"
	"time"
)

// parseDate reads a Date: field (RFC 5322 section 3.3) and the malformed
// forms clients produce: no day name or a full one, any case, one- or
// two-digit days, two- and three-digit years (section 4.3), no seconds,
// fractional seconds, "24 Jan 2006" or asctime's "Jan 24 ... 2006" order,
// ISO 8601 ("2006-01-02T15:04:05+08:00", "2006/01/02 15:04:05"), zones as
// "+0800", "+08:00", "+8", "GMT+8", "UTC+0800", obsolete names (section
// 4.3: UT, GMT, EST ... PDT; military letters and unknown names mean -0000,
// here UTC) and a few Asian abbreviations. A date without a zone is taken
// as UTC. Comments such as "(CST)" or "(中国标准时间)" are ignored.
//
// It does not use time.Parse's zone abbreviations, whose offsets depend on
// the machine's local zone. Years outside 1970..9999 are refused: they are
// always wrong, and later ones cannot be encoded as RFC 3339.
func parseDate(s string) (time.Time, bool) {
	s = stripComments(s)
	s = strings.ReplaceAll(s, ",", " ")
	var (
		year, month, day = -1, -1, -1
		hour, min, sec   = 0, 0, 0
		haveTime         bool
		offset           int // seconds east of UTC
		haveZone         bool
	)
	fields := strings.Fields(s)
	// ISO 8601 joins date and time with "T".
	for i, f := range fields {
		if t := strings.IndexAny(f, "Tt"); t > 0 && t+1 < len(f) && isDigit(f[t-1]) && isDigit(f[t+1]) {
			fields = append(fields[:i:i], append([]string{f[:t], f[t+1:]}, fields[i+1:]...)...)
			break
		}
	}
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		lf := strings.ToLower(f)
		switch {
		case isDigits(f):
			n, _ := strconv.Atoi(f)
			switch {
			case len(f) == 4:
				if year < 0 {
					year = n
				}
			case len(f) <= 2 && day < 0:
				day = n
			case year < 0:
				year = fixYear(n, len(f))
			}
		case strings.Contains(f, ":") && !haveTime && isDigit(f[0]):
			t, zone := splitTimeZone(f)
			h, m, sc, ok := parseClock(t)
			if !ok {
				return time.Time{}, false
			}
			hour, min, sec, haveTime = h, m, sc, true
			if zone != "" {
				if off, ok := parseZone(zone); ok {
					offset, haveZone = off, true
				}
			}
		case (strings.Count(f, "-") == 2 || strings.Count(f, "/") == 2) && isDigit(f[0]):
			parts := strings.FieldsFunc(f, func(r rune) bool { return r == '-' || r == '/' })
			if len(parts) != 3 || !isDigits(parts[0]) || !isDigits(parts[1]) || !isDigits(parts[2]) {
				return time.Time{}, false
			}
			a, _ := strconv.Atoi(parts[0])
			b, _ := strconv.Atoi(parts[1])
			c, _ := strconv.Atoi(parts[2])
			if len(parts[0]) != 4 {
				return time.Time{}, false // d/m/y or m/d/y: ambiguous
			}
			year, month, day = a, b, c
		case len(f) > 0 && (f[0] == '+' || f[0] == '-') && !haveZone:
			if off, ok := parseZone(f); ok {
				offset, haveZone = off, true
			}
		case monthNumber(lf) > 0 && month < 0:
			month = monthNumber(lf)
		case isDayName(lf):
		default:
			if !haveZone {
				if off, ok := parseZone(f); ok {
					offset, haveZone = off, true
				}
			}
		}
	}
	if year < 0 || month < 1 || month > 12 || day < 1 {
		return time.Time{}, false
	}
	if year < 1970 || year > 9999 {
		return time.Time{}, false
	}
	if day > daysIn(time.Month(month), year) || hour > 23 || min > 59 || sec > 60 {
		return time.Time{}, false
	}
	if sec == 60 {
		sec = 59 // RFC 5322 section 3.3: a leap second; time.Time has none
	}
	loc := time.UTC
	if offset != 0 {
		loc = time.FixedZone("", offset)
	}
	return time.Date(year, time.Month(month), day, hour, min, sec, 0, loc), true
}

// fixYear applies RFC 5322 section 4.3: two-digit years 00-49 are 2000-2049,
// 50-99 are 1950-1999; three-digit years add 1900.
func fixYear(n, digits int) int {
	switch digits {
	case 1, 2:
		if n < 50 {
			return 2000 + n
		}
		return 1900 + n
	case 3:
		return 1900 + n
	}
	return n
}

// splitTimeZone splits "15:04:05+0800" or "15:04:05Z" into clock and zone.
func splitTimeZone(f string) (string, string) {
	for i := 1; i < len(f); i++ {
		switch c := f[i]; {
		case c == '+' || c == '-':
			return f[:i], f[i:]
		case c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z':
			return f[:i], f[i:]
		}
	}
	return f, ""
}

func parseClock(t string) (h, m, s int, ok bool) {
	if i := strings.IndexByte(t, '.'); i >= 0 {
		t = t[:i] // fractional seconds
	}
	parts := strings.Split(t, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, 0, 0, false
	}
	var v [3]int
	for i, p := range parts {
		if p == "" || len(p) > 2 || !isDigits(p) {
			return 0, 0, 0, false
		}
		v[i], _ = strconv.Atoi(p)
	}
	return v[0], v[1], v[2], true
}

// obsZones are the obsolete zone names of RFC 5322 section 4.3, plus Asian
// abbreviations Chinese, Japanese and Korean clients write. "CST" is US
// Central as the RFC says, though a Chinese client may mean +0800; such
// clients put it in a comment after a numeric zone, which wins.
var obsZones = map[string]int{
	"ut": 0, "utc": 0, "gmt": 0, "z": 0,
	"est": -5, "edt": -4, "cst": -6, "cdt": -5, "mst": -7, "mdt": -6, "pst": -8, "pdt": -7,
	"hkt": 8, "sgt": 8, "cct": 8, "bjt": 8, "jst": 9, "kst": 9,
}

// parseZone reads "+0800", "-08:00", "+8", "GMT", "GMT+8", "UTC+08:00".
// Offsets beyond 14 hours are refused.
func parseZone(z string) (int, bool) {
	lz := strings.ToLower(z)
	for _, p := range []string{"gmt", "utc", "ut"} {
		if strings.HasPrefix(lz, p) && len(lz) > len(p) && (lz[len(p)] == '+' || lz[len(p)] == '-') {
			lz = lz[len(p):]
			break
		}
	}
	if h, ok := obsZones[lz]; ok {
		return h * 3600, true
	}
	if lz == "" || lz[0] != '+' && lz[0] != '-' {
		if len(lz) == 1 && lz[0] >= 'a' && lz[0] <= 'z' {
			return 0, true // military zone: treat as -0000 (section 4.3)
		}
		return 0, false
	}
	sign := 1
	if lz[0] == '-' {
		sign = -1
	}
	d := strings.ReplaceAll(lz[1:], ":", "")
	if !isDigits(d) {
		return 0, false
	}
	var h, m int
	switch len(d) {
	case 1, 2:
		h, _ = strconv.Atoi(d)
	case 3:
		h, _ = strconv.Atoi(d[:1])
		m, _ = strconv.Atoi(d[1:])
	case 4:
		h, _ = strconv.Atoi(d[:2])
		m, _ = strconv.Atoi(d[2:])
	default:
		return 0, false
	}
	if h > 14 || m > 59 {
		return 0, false
	}
	return sign * (h*3600 + m*60), true
}

var monthNames = [...]string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}

func monthNumber(lf string) int {
	if len(lf) < 3 {
		return 0
	}
	for i, m := range monthNames {
		if strings.HasPrefix(lf, m) {
			if len(lf) == 3 || len(lf) <= 9 && isLetters(lf) || lf == "sept" {
				return i + 1
			}
		}
	}
	return 0
}

func isDayName(lf string) bool {
	if len(lf) < 3 {
		return false
	}
	switch lf[:3] {
	case "mon", "tue", "wed", "thu", "fri", "sat", "sun":
		return isLetters(lf)
	}
	return false
}

func daysIn(m time.Month, year int) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isLetters(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// stripComments removes RFC 5322 comments (section 3.2.2) outside quotes.
func stripComments(s string) string {
	if !strings.Contains(s, "(") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '(' {
			_, n := readComment(s[i:])
			b.WriteByte(' ')
			i += n - 1
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
