package envelope

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite testdata/*.eml from the generators, the goldens and the fuzz seed corpus")

// textMax is the Text budget the goldens record.
const textMax = 4096

// golden is what testdata/NAME.golden holds for testdata/NAME.eml.
type golden struct {
	Envelope    Envelope
	ThreadRoot  string
	Text        string
	Attachments []Attachment
}

func messageNames(t testing.TB) []string {
	names := map[string]bool{}
	for name := range testMessages {
		names[name] = true
	}
	files, err := filepath.Glob(filepath.Join("testdata", "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		names[strings.TrimSuffix(filepath.Base(f), ".eml")] = true
	}
	out := make([]string, 0, len(names))
	for n := range names {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func readMessage(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name+".eml"))
	if err != nil {
		t.Fatalf("%v (run go test -update to generate)", err)
	}
	return raw
}

// TestGolden parses every testdata/*.eml and compares Parse, ThreadRoot,
// Text and Attachments with testdata/*.golden.
func TestGolden(t *testing.T) {
	if *update {
		writeTestdata(t)
	}
	for _, name := range messageNames(t) {
		t.Run(name, func(t *testing.T) {
			raw := readMessage(t, name)
			e := Parse(raw)
			g := golden{Envelope: e, ThreadRoot: ThreadRoot(e), Text: Text(raw, textMax), Attachments: Attachments(raw)}
			var buf bytes.Buffer
			je := json.NewEncoder(&buf)
			je.SetEscapeHTML(false)
			je.SetIndent("", "  ")
			if err := je.Encode(g); err != nil {
				t.Fatal(err)
			}
			got := buf.Bytes()
			path := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from Parse output (run go test -update and review the diff):\n%s", path, got)
			}
		})
	}
}

// writeTestdata writes the generated messages and the fuzz seed corpus.
func writeTestdata(t *testing.T) {
	for _, dir := range []string{"testdata", filepath.Join("testdata", "fuzz", "FuzzParse"), filepath.Join("testdata", "fuzz", "FuzzText")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, gen := range testMessages {
		raw := gen()
		write := func(path string, data []byte) {
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		write(filepath.Join("testdata", name+".eml"), raw)
		write(filepath.Join("testdata", "fuzz", "FuzzParse", name), fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", raw))
		write(filepath.Join("testdata", "fuzz", "FuzzText", name), fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\nint(%d)\n", raw, 200))
	}
}

// TestTestdataCurrent keeps the committed messages equal to their
// generators, so that a generator edit without -update is caught.
func TestTestdataCurrent(t *testing.T) {
	for name, gen := range testMessages {
		t.Run(name, func(t *testing.T) {
			if got := readMessage(t, name); !bytes.Equal(got, gen()) {
				t.Errorf("testdata/%s.eml differs from its generator; run go test -update", name)
			}
		})
	}
}

// TestTestdataEncodings checks that the CJK test files hold the legacy
// encodings' bytes, not UTF-8.
func TestTestdataEncodings(t *testing.T) {
	tests := []struct {
		name string
		want []byte
	}{
		{"gbk_raw_8bit", gbk(notice)},
		{"gbk_raw_8bit", gbk("收到，我处将派两人参加会议。")},
		{"big5", big5("陳大文")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := readMessage(t, tt.name)
			if utf8.Valid(raw) {
				t.Errorf("%s.eml is valid UTF-8; it should hold legacy bytes", tt.name)
			}
			if !bytes.Contains(raw, tt.want) {
				t.Errorf("%s.eml lacks the bytes % x", tt.name, tt.want)
			}
		})
	}
	// GB18030 four-byte sequences: 㐀 is 81 39 EE 39, 𠀀 is 95 32 82 36.
	if b := gb18030(rare); !bytes.HasPrefix(b, []byte{0x81, 0x39, 0xEE, 0x39, 0x95, 0x32, 0x82, 0x36}) {
		t.Errorf("gb18030(%q) = % x", rare, b)
	}
}

// TestEnvelopeFields spells out the key results the goldens hold, so that a
// careless -update cannot bless a regression in them.
func TestEnvelopeFields(t *testing.T) {
	tests := []struct {
		name    string
		check   func(e Envelope) any
		want    any
		warning string // a substring one warning must hold
	}{
		{name: "gb2312_base64", check: func(e Envelope) any { return e.Subject }, want: notice},
		{name: "gb2312_base64", check: func(e Envelope) any { return e.From[0].Name }, want: "省政府办公厅"},
		{name: "gb2312_base64", check: func(e Envelope) any {
			return strings.HasPrefix(e.Preview, "各市、县人民政府，省政府各部门： 经省政府同意")
		}, want: true},
		{name: "gbk_raw_8bit", check: func(e Envelope) any { return e.Subject }, want: "回复：" + notice},
		{name: "gbk_raw_8bit", check: func(e Envelope) any { return e.From[0] }, want: Address{"李明", "li.ming@example.gov.cn"}},
		{name: "gbk_raw_8bit", check: func(e Envelope) any { return e.Preview }, want: "收到，我处将派两人参加会议。€ 李明"},
		{name: "gb18030_four_byte", check: func(e Envelope) any { return e.Subject }, want: "生僻字" + rare + "测试"},
		{name: "gb18030_four_byte", check: func(e Envelope) any { return e.Preview }, want: "人名用字：" + rare + "，请核对。"},
		{name: "big5", check: func(e Envelope) any { return e.Subject }, want: "關於召開會議的通知"},
		{name: "big5", check: func(e Envelope) any { return e.From[0].Name }, want: "陳大文"},
		{name: "split_words", check: func(e Envelope) any { return e.Subject }, want: notice},
		{name: "split_words", check: func(e Envelope) any { return e.From[0].Name }, want: "张伟"},
		{name: "split_words", check: func(e Envelope) any { return e.To[0].Name }, want: "全省"},
		{name: "utf8_words", check: func(e Envelope) any { return e.Subject }, want: notice + " (2024)"},
		{name: "attachment_rfc2231", check: func(e Envelope) any { return e.HasAttachment }, want: true},
		{name: "html_only_alternative", check: func(e Envelope) any { return e.Preview }, want: "各位领导： 请于周五前报送材料 & 附件。通知 联系人 张伟"},
		{name: "nested_mixed_alt_related", check: func(e Envelope) any { return e.Preview }, want: "本周六晚间系统升级，期间邮件服务暂停。"},
		{name: "nested_mixed_alt_related", check: func(e Envelope) any { return e.HasAttachment }, want: true},
		{name: "unknown_charset", check: func(e Envelope) any { return e.Subject }, want: "Quarterly report - =?x-unknown-foo?Q?Caf=E9?=", warning: `subject: unknown charset "x-unknown-foo"`},
		{name: "unknown_charset", check: func(e Envelope) any { return e.Preview }, want: "季度报告已上传。", warning: `body: unknown charset "x-unknown-foo"`},
		{name: "broken_boundary_unclosed", check: func(e Envelope) any { return e.Preview + fmt.Sprint(e.HasAttachment) }, want: "第一部分true", warning: "closing boundary missing"},
		{name: "broken_boundary_mismatch", check: func(e Envelope) any { return e.Preview }, want: "实际的正文", warning: "not found"},
		{name: "broken_boundary_none", check: func(e Envelope) any { return e.Preview }, want: "只有正文，没有分隔线。", warning: "without boundary"},
		{name: "deep_nesting", check: func(e Envelope) any { return e.Preview }, want: "", warning: "nested deeper than 32"},
		{name: "missing_headers", check: func(e Envelope) any { return e.Preview }, want: "这封邮件没有信头。 Just a body.", warning: "no header fields"},
		{name: "missing_blank_line", check: func(e Envelope) any { return e.Subject + "|" + e.Preview }, want: "no blank line|This line starts the body. Second line.", warning: "no empty line"},
		{name: "bare_lf", check: func(e Envelope) any { return e.Subject + "|" + e.Preview }, want: "LF 行尾|只用LF换行的邮件。 第二行。"},
		{name: "malformed_encodings", check: func(e Envelope) any { return e.Subject }, want: "nul in subject", warning: "8-bit bytes in no known charset"},
		{name: "malformed_encodings", check: func(e Envelope) any { return e.InReplyTo }, want: []string{"orig@example.gov.cn"}, warning: "bad base64"},
		{name: "malformed_encodings", check: func(e Envelope) any { return e.References }, want: []string{"root@example.gov.cn", "orig@example.gov.cn"}, warning: "bad quoted-printable"},
		{name: "plain_ascii", check: func(e Envelope) any { return e.Preview }, want: "Dear colleagues, Please find the agenda for next week's meeting below. 1. Opening remarks 2. Wor"},
		{name: "plain_ascii", check: func(e Envelope) any { return e.Cc }, want: []Address{{"", "chen@example.gov.cn"}, {"no name", "sun@example.gov.cn"}}},
		{name: "plain_ascii", check: func(e Envelope) any { return ThreadRoot(e) }, want: "root.0@mail.example.gov.cn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := Parse(readMessage(t, tt.name))
			got, _ := json.Marshal(tt.check(e))
			want, _ := json.Marshal(tt.want)
			if !bytes.Equal(got, want) {
				t.Errorf("got %s, want %s", got, want)
			}
			if tt.warning != "" && !strings.Contains(strings.Join(e.Warnings, "\n"), tt.warning) {
				t.Errorf("no warning with %q in %q", tt.warning, e.Warnings)
			}
		})
	}
}

func TestAttachmentNames(t *testing.T) {
	tests := []struct {
		name string
		want []Attachment
	}{
		{"attachment_rfc2231", []Attachment{
			{Filename: "2024年工作要点.pdf", ContentType: "application/pdf", Size: 29},
			{Filename: "会议议程（第二版）.docx", ContentType: "application/vnd.openxmlformats-officedocument.wordprocessingml.document", Size: 14},
		}},
		{"nested_mixed_alt_related", []Attachment{
			{Filename: "logo.png", ContentType: "image/png", Size: 8},
			{Filename: "值班表.xls", ContentType: "application/vnd.ms-excel", Size: 8},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Attachments(readMessage(t, tt.name))
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(tt.want)
			if !bytes.Equal(g, w) {
				t.Errorf("got %s\nwant %s", g, w)
			}
		})
	}
}

func TestThreadRoot(t *testing.T) {
	tests := []struct {
		name string
		e    Envelope
		want string
	}{
		{"references", Envelope{MessageID: "c", InReplyTo: []string{"b"}, References: []string{"a", "b"}}, "a"},
		{"in-reply-to", Envelope{MessageID: "c", InReplyTo: []string{"b"}}, "b"},
		{"own id", Envelope{MessageID: "c"}, "c"},
		{"none", Envelope{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ThreadRoot(tt.e); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTextLimit(t *testing.T) {
	raw := readMessage(t, "gb2312_base64")
	full := Text(raw, 1<<20)
	for _, max := range []int{-1, 0, 1, 2, 3, 4, 10, 31, len(full) - 1, len(full), len(full) + 10} {
		got := Text(raw, max)
		if max <= 0 && got != "" || max > 0 && len(got) > max || !utf8.ValidString(got) || !strings.HasPrefix(full, got) {
			t.Errorf("Text(max=%d) = %q", max, got)
		}
	}
	if !strings.Contains(full, "经省政府同意") {
		t.Errorf("Text = %q", full)
	}
}

// TestLimits builds mail past each limit and checks that Parse stops there
// with a warning and without running away.
func TestLimits(t *testing.T) {
	manyParts := func(n int) []byte {
		var b strings.Builder
		b.WriteString("Subject: many\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n")
		for i := 0; i < n; i++ {
			b.WriteString("--x\r\nContent-Type: application/octet-stream; name=a.bin\r\n\r\nA\r\n")
		}
		b.WriteString("--x--\r\n")
		return []byte(b.String())
	}
	hugeHeader := func() []byte {
		var b bytes.Buffer
		b.WriteString("Subject: big\r\nX-Filler: start\r\n")
		for b.Len() <= MaxHeaderBytes+1000 {
			b.WriteString(" 0123456789012345678901234567890123456789012345678901234567890123456789\r\n")
		}
		b.WriteString("\r\nbody after a huge header\r\n")
		return b.Bytes()
	}
	tests := []struct {
		name    string
		raw     []byte
		warning string
		check   func(Envelope) bool
	}{
		{"parts", manyParts(5000), "more than 1000 parts", func(e Envelope) bool { return e.HasAttachment }},
		{"header", hugeHeader(), "header section larger than", func(e Envelope) bool {
			return e.Subject == "big" && e.Preview == "body after a huge header"
		}},
		{"fields", []byte(strings.Repeat("To: a@example.cn\r\n", MaxHeaderFields+10) + "\r\nbody"), "more than 5000 header fields", func(e Envelope) bool {
			return len(e.To) == maxAddresses && e.Preview == "body"
		}},
		{"encoded words", []byte("Subject: " + strings.Repeat("=?a?b?", 200000) + "\r\n\r\n"), "", func(e Envelope) bool { return len(e.Subject) > 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := Parse(tt.raw)
			if tt.warning != "" && !strings.Contains(strings.Join(e.Warnings, "\n"), tt.warning) {
				t.Errorf("no warning with %q in %q", tt.warning, e.Warnings)
			}
			if !tt.check(e) {
				t.Errorf("unexpected envelope: subject %q, preview %q, attachment %v", e.Subject, e.Preview, e.HasAttachment)
			}
			if len(e.Warnings) > maxWarnings {
				t.Errorf("%d warnings", len(e.Warnings))
			}
		})
	}
}
