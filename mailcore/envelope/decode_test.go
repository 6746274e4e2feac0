package envelope

import (
	"encoding/base64"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestCharsetLabels pins which decoder each label real clients write gets.
// GB2312 in mail is EUC-CN (RFC 1922) and must read as GBK/GB18030, never
// as HZ-GB-2312 (RFC 1843), which is another encoding.
func TestCharsetLabels(t *testing.T) {
	tests := []struct {
		label string
		want  string // canonical name; "" for unknown
	}{
		{"gb2312", "gb18030"}, {"GB2312", "gb18030"}, {"GB_2312-80", "gb18030"}, {"csGB2312", "gb18030"},
		{"euc-cn", "gb18030"}, {"gbk", "gb18030"}, {"GBK", "gb18030"}, {"cp936", "gb18030"},
		{"x-gbk", "gb18030"}, {"windows-936", "gb18030"}, {"gb18030", "gb18030"}, {"GB18030", "gb18030"},
		{`"gb2312"`, "gb18030"}, {" gb2312 ", "gb18030"}, {"gb2312*zh-cn", "gb18030"},
		{"big5", "big5"}, {"BIG5", "big5"}, {"big5-hkscs", "big5"}, {"cp950", "big5"}, {"x-x-big5", "big5"},
		{"utf-8", "utf-8"}, {"UTF-8", "utf-8"}, {"utf8", "utf-8"}, {"unicode-1-1-utf-8", "utf-8"},
		{"us-ascii", "us-ascii"}, {"ascii", "us-ascii"}, {"ANSI_X3.4-1968", "us-ascii"},
		{"iso-8859-1", "windows-1252"}, {"latin1", "windows-1252"},
		{"hz-gb-2312", "hz-gb-2312"},
		{"shift_jis", "shift_jis"}, {"euc-kr", "euc-kr"}, {"iso-2022-jp", "iso-2022-jp"},
		{"koi8-r", "koi8-r"}, {"windows-1251", "windows-1251"}, {"iso-8859-15", "iso-8859-15"},
		{"x-unknown-foo", ""}, {"", ""}, {"utf-7", ""}, {"iso-2022-kr", ""},
	}
	for _, tt := range tests {
		t.Run(tt.label, func(t *testing.T) {
			cs, ok := lookupCharset(tt.label)
			if got := cs.name; !ok && got != "" || ok && got != tt.want || !ok && tt.want != "" {
				t.Errorf("lookupCharset(%q) = %q, %v; want %q", tt.label, got, ok, tt.want)
			}
		})
	}
}

func TestCharsetDecoding(t *testing.T) {
	tests := []struct {
		name  string
		in    []byte
		label string
		want  string
		note  string
	}{
		{"gb2312 label, GBK-only char", gbk("镕"), "gb2312", "镕", ""},
		{"gbk label, GB18030 four-byte", gb18030(rare), "gbk", rare, ""},
		{"gbk euro", []byte{0x80}, "gbk", "€", ""},
		{"big5", big5("臺灣"), "big5", "臺灣", ""},
		{"no label, GBK", gbk(notice), "", notice, ""},
		{"no label, UTF-8", []byte(notice), "", notice, ""},
		{"us-ascii over GBK", gbk(notice), "us-ascii", notice, ""},
		{"utf-8 label over GBK", gbk(notice), "utf-8", notice, "not; decoded as gb18030"},
		{"gb2312 label over UTF-8", []byte("关于召开"), "gb2312", "关于召开", "is utf-8"},
		{"utf-8 with BOM", []byte("\xEF\xBB\xBF通知"), "utf-8", "通知", ""},
		{"unknown label", []byte("通知"), "x-unknown-foo", "通知", "unknown charset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, note := decodeBody(tt.in, tt.label)
			if got != tt.want || !strings.Contains(note, tt.note) || tt.note == "" && note != "" {
				t.Errorf("decodeBody = %q, %q; want %q, %q", got, note, tt.want, tt.note)
			}
		})
	}
}

func TestEncodedWords(t *testing.T) {
	g := gbk(notice)
	b := func(cs string, p []byte) string {
		return "=?" + cs + "?B?" + base64.StdEncoding.EncodeToString(p) + "?="
	}
	tests := []struct {
		name, in, want string
		warn           bool
	}{
		{"plain", "hello world", "hello world", false},
		{"b utf-8", "=?UTF-8?B?6YCa55+l?=", "通知", false},
		{"q utf-8", "=?utf-8?q?=E9=80=9A=E7=9F=A5_x?=", "通知 x", false},
		{"lower-case b", "=?gb2312?b?" + base64.StdEncoding.EncodeToString(gbk("通知")) + "?=", "通知", false},
		// RFC 2047 section 6.2: blanks between adjacent words vanish.
		{"adjacent", "=?utf-8?Q?a?= \t =?utf-8?Q?b?=", "ab", false},
		{"text between", "=?utf-8?Q?a?= and =?utf-8?Q?b?=", "a and b", false},
		{"split GBK char", b("gb2312", g[:3]) + " " + b("GB2312", g[3:]), notice, false},
		{"split GBK char, gbk then cp936 is another group", b("gbk", g[:4]) + b("gbk", g[4:]), notice, false},
		{"split base64 quantum", "=?utf-8?B?6YC?= =?utf-8?B?a55+l?=", "通知", false},
		{"different charsets adjacent", b("gbk", gbk("通")) + " " + b("big5", big5("知")), "通知", false},
		{"language suffix", "=?utf-8*zh?Q?=E9=80=9A?=", "通", false},
		{"unknown charset, utf-8 bytes", "=?x-foo?Q?abc?=", "abc", true},
		{"unknown charset, junk bytes", "=?x-foo?Q?=FF=FE?=", "=?x-foo?Q?=FF=FE?=", true},
		{"not a word", "=?utf-8?X?abc?= =?", "=?utf-8?X?abc?= =?", false},
		{"unterminated", "=?utf-8?Q?abc", "=?utf-8?Q?abc", false},
		{"no blank before word", "Re:=?utf-8?Q?=E9=80=9A?=", "Re:通", false},
		{"folded inside b word", "=?utf-8?B?6YCa 55+l?=", "通知", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w warnings
			d := &wordDecoder{warn: &w, field: "subject"}
			if got := d.decode(tt.in); got != tt.want {
				t.Errorf("decode(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if (len(w.list) > 0) != tt.warn {
				t.Errorf("warnings %q, want some: %v", w.list, tt.warn)
			}
		})
	}
}

func TestHeaderBytes(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		hint charset
		want string
		ok   bool
	}{
		{"ascii", []byte("hello"), charset{}, "hello", true},
		{"utf-8", []byte("通知"), charset{}, "通知", true},
		{"gbk", gbk(notice), charset{}, notice, true},
		{"gb18030", gb18030(rare), charset{}, rare, true},
		{"big5 with hint", big5("陳大文"), csBig5, "陳大文", true},
		{"latin-1 fallback", []byte("caf\xe9"), charset{}, "café", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := decodeHeaderBytes(tt.in, tt.hint)
			if got != tt.want || ok != tt.ok {
				t.Errorf("got %q, %v; want %q, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestAddressList(t *testing.T) {
	tests := []struct {
		name, in string
		want     []Address
	}{
		{"bare", "a@example.cn", []Address{{"", "a@example.cn"}}},
		{"name-addr", "Zhang San <Zhang@Example.cn>", []Address{{"Zhang San", "Zhang@Example.cn"}}},
		{"quoted with comma", `"Zhang, San" <z@x.cn>, li@x.cn`, []Address{{"Zhang, San", "z@x.cn"}, {"", "li@x.cn"}}},
		{"unquoted comma rejoined", `Zhang, San <z@x.cn>`, []Address{{"Zhang, San", "z@x.cn"}}},
		{"encoded in quotes", `"=?utf-8?B?5byg5LiJ?=" <z@x.cn>`, []Address{{"张三", "z@x.cn"}}},
		{"encoded words split", `=?utf-8?Q?=E5=BC?= =?utf-8?Q?=A0=E4=B8=89?= <z@x.cn>`, []Address{{"张三", "z@x.cn"}}},
		{"raw utf-8 name", `张三 <z@x.cn>`, []Address{{"张三", "z@x.cn"}}},
		{"semicolons", `张三 <z@x.cn>; 李四 <l@x.cn>`, []Address{{"张三", "z@x.cn"}, {"李四", "l@x.cn"}}},
		{"group", `Team: a@x.cn, B <b@x.cn>;, c@x.cn`, []Address{{"", "a@x.cn"}, {"B", "b@x.cn"}, {"", "c@x.cn"}}},
		{"empty group", `undisclosed-recipients:;`, nil},
		{"comment name", `z@x.cn (Zhang San)`, []Address{{"Zhang San", "z@x.cn"}}},
		{"comment ignored beside phrase", `Zhang (office) <z@x.cn>`, []Address{{"Zhang", "z@x.cn"}}},
		{"source route", `<@relay.x.cn:z@x.cn>`, []Address{{"", "z@x.cn"}}},
		{"unterminated angle", `Zhang <z@x.cn, Li <l@x.cn>`, []Address{{"Zhang", "z@x.cn"}, {"Li", "l@x.cn"}}},
		{"escaped quote", `"Zhang \"Z\" San" <z@x.cn>`, []Address{{`Zhang "Z" San`, "z@x.cn"}}},
		{"local only", `postmaster`, []Address{{"", "postmaster"}}},
		{"name only", `Zhang San`, []Address{{"Zhang San", ""}}},
		{"quoted local part", `"zhang san"@x.cn`, []Address{{"", `"zhang san"@x.cn`}}},
		{"empty", ` , ,`, nil},
		{"mailto", `<mailto:z@x.cn>`, []Address{{"", "z@x.cn"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w warnings
			got := parseAddressList(tt.in, &wordDecoder{warn: &w, field: "to"})
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseAddressList(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestDates(t *testing.T) {
	cst := time.FixedZone("", 8*3600)
	tests := []struct {
		in   string
		want time.Time // zero: unparseable
	}{
		{"Fri, 1 Mar 2024 09:30:00 +0800", time.Date(2024, 3, 1, 9, 30, 0, 0, cst)},
		{"Fri, 01 Mar 2024 09:30:00 +0800 (CST)", time.Date(2024, 3, 1, 9, 30, 0, 0, cst)},
		{"Fri, 1 Mar 2024 09:30:00 +0800 (中国标准时间)", time.Date(2024, 3, 1, 9, 30, 0, 0, cst)},
		{"1 Mar 2024 09:30 +0800", time.Date(2024, 3, 1, 9, 30, 0, 0, cst)},
		{"Friday, 1 March 2024 09:30:00 +0800", time.Date(2024, 3, 1, 9, 30, 0, 0, cst)},
		{"fri, 1 mar 24 09:30:00 +0800", time.Date(2024, 3, 1, 9, 30, 0, 0, cst)},
		{"Fri, 1 Mar 99 09:30:00 GMT", time.Date(1999, 3, 1, 9, 30, 0, 0, time.UTC)},
		{"Fri, 1 Mar 2024 09:30:00 GMT+8", time.Date(2024, 3, 1, 9, 30, 0, 0, cst)},
		{"Fri, 1 Mar 2024 09:30:00 GMT+0800", time.Date(2024, 3, 1, 9, 30, 0, 0, cst)},
		{"Fri, 1 Mar 2024 09:30:00 +08:00", time.Date(2024, 3, 1, 9, 30, 0, 0, cst)},
		{"Fri, 1 Mar 2024 01:30:00 EST", time.Date(2024, 3, 1, 1, 30, 0, 0, time.FixedZone("", -5*3600))},
		{"Fri, 1 Mar 2024 09:30:00", time.Date(2024, 3, 1, 9, 30, 0, 0, time.UTC)},
		{"Fri, 1 Mar 2024 09:30:00.123 +0800", time.Date(2024, 3, 1, 9, 30, 0, 0, cst)},
		{"Fri Mar  1 09:30:00 2024", time.Date(2024, 3, 1, 9, 30, 0, 0, time.UTC)},
		{"2024-03-01 09:30:00 +0800", time.Date(2024, 3, 1, 9, 30, 0, 0, cst)},
		{"2024-03-01T09:30:00+08:00", time.Date(2024, 3, 1, 9, 30, 0, 0, cst)},
		{"2024/03/01 09:30:00", time.Date(2024, 3, 1, 9, 30, 0, 0, time.UTC)},
		{"Sat, 31 Dec 2016 23:59:60 +0000", time.Date(2016, 12, 31, 23, 59, 59, 0, time.UTC)},
		{"Fri, 1 Mar 2024 09:30:00 Z", time.Date(2024, 3, 1, 9, 30, 0, 0, time.UTC)},
		{"Fri, 30 Feb 2024 09:30:00 +0800", time.Time{}},
		{"Fri, 1 Mar 1900 09:30:00 +0800", time.Time{}},
		{"Fri, 1 Mar 2024 25:30:00 +0800", time.Time{}},
		{"03/01/2024 09:30", time.Time{}},
		{"yesterday", time.Time{}},
		{"", time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := parseDate(tt.in)
			if ok != !tt.want.IsZero() || ok && (!got.Equal(tt.want) || offset(got) != offset(tt.want)) {
				t.Errorf("parseDate(%q) = %v, %v; want %v", tt.in, got, ok, tt.want)
			}
		})
	}
}

func offset(t time.Time) int { _, o := t.Zone(); return o }

func TestMsgIDs(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
	}{
		{"one", "<a@x>", []string{"a@x"}},
		{"several folded", "<a@x>\r\n <b@x>\t<c@x>", []string{"a@x", "b@x", "c@x"}},
		{"obsolete phrase", `"Zhang's message of Fri" <a@x>`, []string{"a@x"}},
		{"comments", "<a@x> (original)", []string{"a@x"}},
		{"blank inside", "<a @ x>", []string{"a@x"}},
		{"no brackets", "a@x, b@x", []string{"a@x", "b@x"}},
		{"junk", "hello world", nil},
		{"empty brackets", "<>", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseMsgIDs(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseMsgIDs(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	if got := parseMessageID("12345.67890"); got != "12345.67890" {
		t.Errorf("parseMessageID without brackets = %q", got)
	}
	ids := make([]string, 300)
	for i := range ids {
		ids[i] = strings.Repeat("x", i%7+1)
	}
	if got := trimReferences(ids); len(got) != maxReferences || got[0] != ids[0] || got[len(got)-1] != ids[len(ids)-1] {
		t.Errorf("trimReferences kept %d", len(got))
	}
}

func TestParams(t *testing.T) {
	pct := func(b []byte) string {
		var s strings.Builder
		for _, c := range b {
			s.WriteString("%" + strings.ToUpper(hex2(c)))
		}
		return s.String()
	}
	tests := []struct {
		name, in, value string
		want            map[string]string
	}{
		{"simple", `text/plain; charset=gb2312`, "text/plain", map[string]string{"charset": "gb2312"}},
		{"quoted, case", `Text/HTML; Charset="UTF-8"; format=flowed`, "text/html", map[string]string{"charset": "UTF-8", "format": "flowed"}},
		{"2231 gb2312", `attachment; filename*=gb2312''` + pct(gbk("通知.doc")), "attachment", map[string]string{"filename": "通知.doc"}},
		{"2231 wins over plain", `attachment; filename="x.doc"; filename*=UTF-8''%E9%80%9A.doc`, "attachment", map[string]string{"filename": "通.doc"}},
		{"2231 continuation", `attachment; filename*0*=utf-8'zh'%E9%80; filename*1*=%9A; filename*2=".doc"`, "attachment", map[string]string{"filename": "通.doc"}},
		{"2231 out of order", `attachment; filename*1*=%9A.doc; filename*0*=utf-8''%E9%80`, "attachment", map[string]string{"filename": "通.doc"}},
		{"2047 in quotes", `attachment; filename="=?gbk?B?` + base64.StdEncoding.EncodeToString(gbk("通知.doc")) + `?="`, "attachment", map[string]string{"filename": "通知.doc"}},
		{"unquoted blanks", `attachment; filename=my file.pdf; size=3`, "attachment", map[string]string{"filename": "my file.pdf", "size": "3"}},
		{"junk", `multipart/mixed; ;; boundary ; =x; boundary="b=1;2"`, "multipart/mixed", map[string]string{"boundary": "b=1;2"}},
		{"unterminated quote", `text/plain; name="abc`, "text/plain", map[string]string{"name": "abc"}},
		{"no params", `image/png`, "image/png", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w warnings
			v, p := parseParams(tt.in, &wordDecoder{warn: &w, field: "mime"})
			if v != tt.value || len(p) != len(tt.want) || len(tt.want) > 0 && !reflect.DeepEqual(p, tt.want) {
				t.Errorf("parseParams(%q) = %q, %q; want %q, %q", tt.in, v, p, tt.value, tt.want)
			}
		})
	}
}

func hex2(c byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[c>>4], digits[c&15]})
}

func TestHTMLText(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"inline tags join", "<b>通</b>知", "通知"},
		{"blocks break", "<p>一</p><p>二</p>", "\n一\n\n二\n"},
		{"entities", "a&nbsp;&amp;&lt;&#x901A;&#30693;", "a\u00a0&<通知"},
		{"script and style", "<style>p{}</style>x<script>if (a<b) {}</script>y", "xy"},
		{"comment", "a<!-- <p>hidden</p> -->b", "ab"},
		{"head", "<html><head><title>t</title><meta x></head><body>body</body></html>", "\n\nbody\n\n"},
		{"open head", "<head><title>t</title>text", "text"},
		{"quoted >", `<a title="x > y">link</a>`, "link"},
		{"lone <", "a < b", "a < b"},
		{"unclosed script", "a<script>b", "a"},
		{"unbalanced quotes", `<a href='x>y</a> <b title="z>w</b>`, "y w"},
		{"case", "<SCRIPT>x</SCRIPT>y<BR>z", "y\nz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := htmlText(tt.in); got != tt.want {
				t.Errorf("htmlText(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	if got := htmlMetaCharset([]byte(`<html><head><meta http-equiv="Content-Type" content="text/html; charset=gb2312">`)); got != "gb2312" {
		t.Errorf("htmlMetaCharset = %q", got)
	}
}

func TestTransferDecoding(t *testing.T) {
	tests := []struct {
		name, cte, in, want string
		bad                 bool
	}{
		{"base64", "base64", "6YCa55+l", "通知", false},
		{"base64 lines", "base64", "6YCa\r\n55+l\r\n", "通知", false},
		{"base64 concatenated", "base64", "QQ==QkI=", "ABB", false},
		{"base64 junk", "base64", "6YCa!!55+l", "通知", true},
		{"base64 truncated", "base64", "6YCa5", "通", true},
		{"qp", "quoted-printable", "=E9=80=9A=e7=9f=a5", "通知", false},
		{"qp soft break", "quoted-printable", "ab=\r\ncd\r\n", "abcd\n", false},
		{"qp trailing blanks", "quoted-printable", "ab  \r\ncd", "ab\ncd", false},
		{"qp bad escape", "quoted-printable", "a=ZZb", "a=ZZb", true},
		{"qp lone = at end", "quoted-printable", "a=", "a", false},
		{"8bit", "8bit", "通知", "通知", false},
		{"unknown", "x-uuencode", "abc", "abc", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, problem := decodeTransfer([]byte(tt.in), tt.cte, -1)
			if string(got) != tt.want || (problem != "") != tt.bad {
				t.Errorf("decodeTransfer(%q) = %q, %q; want %q, bad %v", tt.in, got, problem, tt.want, tt.bad)
			}
		})
	}
	if got, _ := decodeTransfer([]byte("6YCa55+l6YCa55+l"), "base64", 4); string(got) != "通\xe7" {
		t.Errorf("limited base64 = %q", got)
	}
}

func TestSplitHeader(t *testing.T) {
	tests := []struct {
		name, in string
		subject  string
		body     string
		warn     string
	}{
		{"crlf", "Subject: a\r\n\r\nbody", "a", "body", ""},
		{"lf", "Subject: a\n\nbody", "a", "body", ""},
		{"folded", "Subject: a\r\n b\r\n\tc\r\n\r\nbody", "a b c", "body", ""},
		{"no body", "Subject: a\r\n", "a", "", ""},
		{"mbox From_ line", "From zhang@x.cn Fri Mar  1 09:30:00 2024\nSubject: a\n\nbody", "a", "body", ""},
		{"leading continuation", " junk\nSubject: a\n\nbody", "a", "body", "continuation"},
		{"bad line among fields", "Subject: a\nthis is junk\nTo: b@x\n\nbody", "a", "body", "malformed header line"},
		{"blank before colon", "Subject : a\n\nbody", "a", "body", ""},
		{"nul in name", "Sub\x00ject: a\nTo: b\n\nbody", "", "body", "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w warnings
			h, body := splitHeader([]byte(tt.in), &w, "message")
			if got := h.Get("Subject"); got != tt.subject || string(body) != tt.body {
				t.Errorf("got subject %q body %q; want %q, %q", got, body, tt.subject, tt.body)
			}
			if tt.warn != "" && !strings.Contains(strings.Join(w.list, "\n"), tt.warn) || tt.warn == "" && len(w.list) > 0 {
				t.Errorf("warnings %q, want %q", w.list, tt.warn)
			}
		})
	}
}

func TestSplitMultipart(t *testing.T) {
	tests := []struct {
		name, body, boundary string
		want                 []string
		problem              string
	}{
		{"normal", "pre\r\n--b\r\nA\r\n--b\r\nB\r\n--b--\r\nepilogue", "b", []string{"A", "B"}, ""},
		{"no preamble", "--b\nA\n--b--\n", "b", []string{"A"}, ""},
		{"padding", "--b  \r\nA\r\n--b--  \r\n", "b", []string{"A"}, ""},
		{"longer boundary is not ours", "--b\nA\n--bx\nstill A\n--b--", "b", []string{"A\n--bx\nstill A"}, ""},
		{"not at line start", "--b\nA x--b\n--b--", "b", []string{"A x--b"}, ""},
		{"unclosed", "--b\nA\n--b\nB\n", "b", []string{"A", "B"}, "closing boundary missing"},
		{"absent", "just text", "b", nil, "not found"},
		{"guessed", "--other\nContent-Type: text/plain\n\nA\n--other--\n", "b", []string{"Content-Type: text/plain\n\nA"}, "used boundary found in body"},
		{"empty part", "--b\r\n\r\n--b--", "b", []string{""}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts, problem := splitMultipart([]byte(tt.body), tt.boundary)
			var got []string
			for _, p := range parts {
				got = append(got, string(p))
			}
			if !reflect.DeepEqual(got, tt.want) || !strings.Contains(problem, tt.problem) || tt.problem == "" && problem != "" {
				t.Errorf("got %q, %q; want %q, %q", got, problem, tt.want, tt.problem)
			}
		})
	}
}

func TestPreview(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"quotes and signature", "Thanks.\n\n> old text\n> more\n\n-- \nSig", "Thanks."},
		{"outlook original", "好的。\n\n-----Original Message-----\nFrom: x", "好的。"},
		{"foxmail original", "收到\n------------------ 原始邮件 ------------------\n发件人: x", "收到"},
		{"separator first is skipped", "-----Original Message-----\nforwarded text", "forwarded text"},
		{"long", strings.Repeat("通知", 100), strings.Repeat("通知", 48)},
		{"blanks collapse", "a \t b\u3000c\n\n\nd", "a b c d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := "Content-Type: text/plain; charset=utf-8\r\n\r\n" + tt.body
			if got := Parse([]byte(raw)).Preview; got != tt.want {
				t.Errorf("Preview = %q, want %q", got, tt.want)
			}
		})
	}
}
