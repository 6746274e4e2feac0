package envelope

import (
	"bytes"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/ianaindex"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
)

// charset is a resolved MIME charset label.
type charset struct {
	name string            // canonical name, used in warnings and tests
	enc  encoding.Encoding // nil for UTF-8 and US-ASCII, which are checked, not transformed
	// utf8 is set for UTF-8 and its aliases; ascii for US-ASCII. Both are
	// decoded by validating: 8-bit bytes under either label are treated as
	// unlabelled text (see decodeUnlabelled), because that is what they are
	// in practice.
	utf8, ascii bool
	// multibyte marks CJK multi-byte charsets other than the GB family. A
	// message that declares one of them lends it as the first guess for raw
	// 8-bit header bytes (a Big5 subject decodes "cleanly" as GBK garbage).
	multibyte bool
}

var (
	csUTF8    = charset{name: "utf-8", utf8: true}
	csASCII   = charset{name: "us-ascii", ascii: true}
	csGB18030 = charset{name: "gb18030", enc: simplifiedchinese.GB18030}
	csBig5    = charset{name: "big5", enc: traditionalchinese.Big5, multibyte: true}
	csLatin1  = charset{name: "windows-1252", enc: charmap.Windows1252}
)

// charsetAliases resolves the labels real mail clients write, before the
// IANA and WHATWG registries are consulted.
//
// GB2312 in mail is EUC-CN (RFC 1922 section 4), a subset of GBK, which is a
// subset of GB18030; clients that label mail gb2312 routinely send GBK-only
// characters, so the whole family decodes with the GB18030 decoder (which
// also accepts GBK's one-byte euro sign 0x80). HZ-GB-2312 (RFC 1843) is a
// different, 7-bit encoding and keeps its own decoder via ianaindex.
var charsetAliases = map[string]charset{
	"utf-8": csUTF8, "utf8": csUTF8, "unicode-1-1-utf-8": csUTF8, "unicode-2-0-utf-8": csUTF8,
	"x-unicode20utf8": csUTF8, "x-utf_8j": csUTF8, "cp65001": csUTF8,

	"us-ascii": csASCII, "ascii": csASCII, "ansi_x3.4-1968": csASCII, "iso646-us": csASCII,
	"us": csASCII, "csascii": csASCII, "iso-ir-6": csASCII, "ansi_x3.4-1986": csASCII,

	"gb2312": csGB18030, "gb_2312-80": csGB18030, "gb_2312": csGB18030, "csgb2312": csGB18030,
	"euc-cn": csGB18030, "x-euc-cn": csGB18030, "euccn": csGB18030, "cn-gb": csGB18030,
	"chinese": csGB18030, "iso-ir-58": csGB18030, "csiso58gb231280": csGB18030,
	"gbk": csGB18030, "cp936": csGB18030, "x-gbk": csGB18030, "windows-936": csGB18030,
	"ms936": csGB18030, "936": csGB18030, "x-cp936": csGB18030,
	"gb18030": csGB18030, "gb-18030": csGB18030, "gb18030-2000": csGB18030, "gb18030-2005": csGB18030,
	"gb18030-2022": csGB18030,

	"big5": csBig5, "big-5": csBig5, "csbig5": csBig5, "cn-big5": csBig5, "x-x-big5": csBig5,
	"x-big5": csBig5, "big5-hkscs": csBig5, "cp950": csBig5, "windows-950": csBig5, "ms950": csBig5,

	// ISO-8859-1 and US-ASCII mail carries windows-1252 bytes so often that
	// WHATWG made the labels synonyms; mail clients do the same.
	"iso-8859-1": csLatin1, "iso8859-1": csLatin1, "latin1": csLatin1, "l1": csLatin1,
	"iso_8859-1": csLatin1, "windows-1252": csLatin1, "cp1252": csLatin1,

	"shift_jis":      {name: "shift_jis", enc: japanese.ShiftJIS, multibyte: true},
	"shift-jis":      {name: "shift_jis", enc: japanese.ShiftJIS, multibyte: true},
	"sjis":           {name: "shift_jis", enc: japanese.ShiftJIS, multibyte: true},
	"cp932":          {name: "shift_jis", enc: japanese.ShiftJIS, multibyte: true},
	"euc-jp":         {name: "euc-jp", enc: japanese.EUCJP, multibyte: true},
	"euc-kr":         {name: "euc-kr", enc: korean.EUCKR, multibyte: true},
	"ks_c_5601-1987": {name: "euc-kr", enc: korean.EUCKR, multibyte: true},
	"cp949":          {name: "euc-kr", enc: korean.EUCKR, multibyte: true},
}

// lookupCharset resolves a charset label from a Content-Type parameter, an
// RFC 2047 encoded word or an RFC 2231 parameter value. It accepts any case,
// surrounding quotes and blanks, and the RFC 2231 section 5 language suffix
// ("gb2312*zh-cn"). ok is false for labels no decoder here handles.
func lookupCharset(label string) (cs charset, ok bool) {
	l := strings.ToLower(strings.Trim(label, " \t\r\n\"'"))
	if i := strings.IndexByte(l, '*'); i >= 0 {
		l = l[:i]
	}
	if l == "" {
		return charset{}, false
	}
	if cs, ok := charsetAliases[l]; ok {
		return cs, true
	}
	// ianaindex returns a nil encoding with a nil error for names it knows
	// but cannot decode; htmlindex maps a few dangerous labels (ISO-2022-KR,
	// ISO-2022-CN) to the replacement encoding, which would turn the whole
	// text into one U+FFFD. Both count as unknown.
	if enc, err := ianaindex.MIME.Encoding(l); err == nil && enc != nil && enc != encoding.Replacement {
		name, _ := ianaindex.MIME.Name(enc)
		return charset{name: strings.ToLower(name), enc: enc}, true
	}
	if enc, err := htmlindex.Get(l); err == nil && enc != nil && enc != encoding.Replacement {
		name, _ := htmlindex.Name(enc)
		return charset{name: strings.ToLower(name), enc: enc}, true
	}
	return charset{}, false
}

// isGB reports whether cs is decoded by the GB18030 decoder.
func (cs charset) isGB() bool { return cs.enc == simplifiedchinese.GB18030 }

// transform decodes b with cs's decoder and reports whether every byte was
// valid in it. Decoders in x/text emit U+FFFD for invalid sequences rather
// than failing, so validity is judged by the output.
func (cs charset) transform(b []byte) (string, bool) {
	if cs.enc == nil {
		if utf8.Valid(b) {
			return string(b), true
		}
		return strings.ToValidUTF8(string(b), "\uFFFD"), false
	}
	out, err := cs.enc.NewDecoder().Bytes(b)
	if err != nil {
		return strings.ToValidUTF8(string(out), "\uFFFD"), false
	}
	return string(out), !bytes.Contains(out, replacementUTF8)
}

var replacementUTF8 = []byte("\uFFFD")

// hasHigh reports whether b has any byte outside 7-bit ASCII.
func hasHigh(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

func hasHighString(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return true
		}
	}
	return false
}

// decodeHeaderBytes turns raw 8-bit header bytes (sent without RFC 2047
// encoding, as many Chinese clients do despite RFC 5322 section 2.2) into
// UTF-8: valid UTF-8 (RFC 6532) is kept; otherwise the message's own
// multi-byte charset hint, then GB18030, is tried and kept if it decodes
// without error; otherwise the bytes are read as Latin-1 (windows-1252, as
// for the iso-8859-1 label) and ok is false.
func decodeHeaderBytes(b []byte, hint charset) (s string, ok bool) {
	if !hasHigh(b) || utf8.Valid(b) {
		return string(b), true
	}
	if hint.multibyte {
		if s, clean := hint.transform(b); clean {
			return s, true
		}
	}
	if s, clean := csGB18030.transform(b); clean {
		return s, true
	}
	s, _ = csLatin1.transform(b)
	return s, false
}

// latin1 maps each byte to the code point of the same value: lossless and
// always valid UTF-8.
func latin1(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b) + len(b)/2)
	for _, c := range b {
		sb.WriteRune(rune(c))
	}
	return sb.String()
}

// decodeBody converts the transfer-decoded bytes of a text part to UTF-8.
// label is the Content-Type charset parameter, possibly empty. The returned
// note, when not empty, describes a problem worth a warning.
//
// RFC 2046 section 4.1.2 makes US-ASCII the default charset, but 8-bit text
// without a label is in practice UTF-8 or, from Chinese clients, GBK; so a
// missing label, or us-ascii over 8-bit bytes, tries UTF-8 then GB18030.
func decodeBody(b []byte, label string) (text string, note string) {
	b = bytes.TrimPrefix(b, []byte("\xEF\xBB\xBF"))
	if label == "" {
		return decodeUnlabelled(b), ""
	}
	cs, ok := lookupCharset(label)
	if !ok {
		return decodeUnlabelled(b), "unknown charset " + quoteLabel(label)
	}
	if !hasHigh(b) && (cs.enc == nil || asciiCompatible(cs)) {
		return string(b), ""
	}
	if cs.ascii {
		return decodeUnlabelled(b), ""
	}
	s, clean := cs.transform(b)
	if clean {
		return s, ""
	}
	// Mislabelled text is common: UTF-8 sent as gb2312, GBK sent as utf-8.
	if cs.utf8 {
		if g, clean := csGB18030.transform(b); clean {
			return g, "text labelled utf-8 is not; decoded as gb18030"
		}
		return s, "invalid utf-8 replaced"
	}
	if utf8.Valid(b) {
		return string(b), "text labelled " + cs.name + " is utf-8"
	}
	return s, "invalid " + cs.name + " bytes replaced"
}

// decodeUnlabelled decodes 8-bit text that names no charset: UTF-8 if valid,
// else GB18030 if valid, else whichever of the two replaces fewer bytes.
func decodeUnlabelled(b []byte) string {
	if !hasHigh(b) || utf8.Valid(b) {
		return string(b)
	}
	g, clean := csGB18030.transform(b)
	if clean {
		return g
	}
	u := strings.ToValidUTF8(string(b), "\uFFFD")
	if strings.Count(u, "\uFFFD") <= strings.Count(g, "\uFFFD") {
		return u
	}
	return g
}

// asciiCompatible reports whether ASCII bytes decode to themselves in cs,
// so pure-ASCII input can skip the decoder. UTF-16/32 and the 7-bit
// stateful encodings (HZ, ISO-2022-*) are not.
func asciiCompatible(cs charset) bool {
	switch cs.name {
	case "utf-16", "utf-16be", "utf-16le", "utf-32", "utf-32be", "utf-32le",
		"hz-gb-2312", "hz-gb2312", "iso-2022-jp", "iso-2022-kr", "utf-7":
		return false
	}
	return !strings.HasPrefix(cs.name, "utf-16") && !strings.HasPrefix(cs.name, "utf-32")
}

// quoteLabel renders a charset label from the mail for a warning: bounded
// and safe to log.
func quoteLabel(label string) string {
	if len(label) > 40 {
		label = label[:40]
	}
	return quoteSafe(label)
}
