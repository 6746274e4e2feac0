package envelope

import (
	"fmt"
	"strings"
	"testing"
)

// typicalMessage builds a message of about 10 KiB as the delivery path sees
// it: a dozen trace fields, GB2312 encoded words in subject and names, and
// a multipart/alternative of base64 GB2312 text and HTML.
func typicalMessage() []byte {
	var b strings.Builder
	for i := 0; i < 6; i++ {
		fmt.Fprintf(&b, "Received: from mx%d.example.gov.cn (mx%d.example.gov.cn [192.0.2.%d])\n\tby mail.example.gov.cn with ESMTPS id %08X\n\tfor <wang.fang@example.gov.cn>; Fri, 1 Mar 2024 09:30:0%d +0800\n", i, i, i+1, i*7919, i)
	}
	b.WriteString("DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.gov.cn; s=mail;\n\th=from:to:subject:date:message-id; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\n\tb=dGVzdCBzaWduYXR1cmUgZm9yIGJlbmNobWFya2luZyBvbmx5IGRvIG5vdCB1c2UgdGhpcyBzaWduYXR1cmU=\n")
	fmt.Fprintf(&b, "From: \"%s\" <bgt@example.gov.cn>\n", bword("gb2312", gbk("省政府办公厅")))
	fmt.Fprintf(&b, "To: %s <wang.fang@example.gov.cn>, %s <li.ming@example.gov.cn>\n", bword("gb2312", gbk("王芳")), bword("gb2312", gbk("李明")))
	fmt.Fprintf(&b, "Cc: %s <office@example.gov.cn>\n", bword("gb2312", gbk("办公室")))
	fmt.Fprintf(&b, "Subject: %s\n", bword("gb2312", gbk(notice)))
	b.WriteString("Date: Fri, 1 Mar 2024 09:30:00 +0800\nMessage-ID: <20240301093000.12345@mail.example.gov.cn>\n")
	b.WriteString("In-Reply-To: <prev.1@mail.example.gov.cn>\nReferences: <root.0@mail.example.gov.cn> <prev.1@mail.example.gov.cn>\n")
	b.WriteString("MIME-Version: 1.0\nX-Mailer: Foxmail 7.2\nContent-Type: multipart/alternative; boundary=\"----=_NextPart_000_0001\"\n\n")
	para := "各市、县人民政府，省政府各部门：经省政府同意，定于3月8日召开全省工作会议。现将有关事项通知如下：一、会议时间；二、会议地点；三、参会人员。请各单位高度重视，认真做好准备工作。\n"
	text := strings.Repeat(para, 15)
	b.WriteString("------=_NextPart_000_0001\nContent-Type: text/plain; charset=\"gb2312\"\nContent-Transfer-Encoding: base64\n\n")
	b.WriteString(b64(gbk(text)))
	b.WriteString("\n\n------=_NextPart_000_0001\nContent-Type: text/html; charset=\"gb2312\"\nContent-Transfer-Encoding: base64\n\n")
	html := "<html><head><style>p{font-size:14px}</style></head><body>" + strings.ReplaceAll(text, "\n", "<br>") + "</body></html>"
	b.WriteString(b64(gbk(html)))
	b.WriteString("\n\n------=_NextPart_000_0001--\n")
	return crlf(b.String())
}

func BenchmarkParse10KiB(b *testing.B) {
	raw := typicalMessage()
	if n := len(raw); n < 9<<10 || n > 11<<10 {
		b.Fatalf("typical message is %d bytes, want about 10 KiB", n)
	}
	if e := Parse(raw); e.Subject != notice || e.Preview == "" || len(e.Warnings) > 0 {
		b.Fatalf("bad parse: %q %q %q", e.Subject, e.Preview, e.Warnings)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		Parse(raw)
	}
}

func BenchmarkText10KiB(b *testing.B) {
	raw := typicalMessage()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		Text(raw, 1<<20)
	}
}
