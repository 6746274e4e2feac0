package envelope

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"mime/quotedprintable"
	"strings"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
)

// The test messages are generated here, so that the GBK, GB18030 and Big5
// files really hold those encodings' bytes (an editor would save them as
// UTF-8). `go test -update` writes them to testdata/NAME.eml, with their
// goldens; TestTestdataCurrent fails when a file and its generator differ.

// notice is the subject most test mail carries: a typical government notice.
const notice = "关于召开全省工作会议的通知"

// rare holds characters outside GBK: 㐀 (U+3400, a GB18030 four-byte
// sequence in the BMP) and 𠀀 (U+20000, a supplementary-plane one), and 䶮.
const rare = "㐀𠀀䶮"

func enc(e encoding.Encoding, s string) []byte {
	b, err := e.NewEncoder().Bytes([]byte(s))
	if err != nil {
		panic(fmt.Sprintf("encode %q: %v", s, err))
	}
	return b
}

func gbk(s string) []byte     { return enc(simplifiedchinese.GBK, s) }
func gb18030(s string) []byte { return enc(simplifiedchinese.GB18030, s) }
func big5(s string) []byte    { return enc(traditionalchinese.Big5, s) }

// bword is an RFC 2047 B encoded word.
func bword(charset string, b []byte) string {
	return "=?" + charset + "?B?" + base64.StdEncoding.EncodeToString(b) + "?="
}

// qword is an RFC 2047 Q encoded word.
func qword(charset string, b []byte) string {
	var s strings.Builder
	for _, c := range b {
		switch {
		case c == ' ':
			s.WriteByte('_')
		case c >= 0x80 || c == '=' || c == '?' || c == '_' || c < 0x20:
			fmt.Fprintf(&s, "=%02X", c)
		default:
			s.WriteByte(c)
		}
	}
	return "=?" + charset + "?Q?" + s.String() + "?="
}

// b64 encodes a body in base64 lines of 76 characters (RFC 2045 6.8),
// ending lines in LF for cat to turn into CRLF.
func b64(b []byte) string {
	s := base64.StdEncoding.EncodeToString(b)
	var out strings.Builder
	for len(s) > 76 {
		out.WriteString(s[:76] + "\n")
		s = s[76:]
	}
	out.WriteString(s)
	return out.String()
}

// qp encodes a body as quoted-printable, ending lines in LF for cat.
func qp(b []byte) string {
	var buf bytes.Buffer
	w := quotedprintable.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return strings.ReplaceAll(buf.String(), "\r\n", "\n")
}

// crlf turns the LF line ends of a template into CRLF.
func crlf(s string) []byte { return []byte(strings.ReplaceAll(s, "\n", "\r\n")) }

// cat joins strings and byte slices.
func cat(parts ...any) []byte {
	var b bytes.Buffer
	for _, p := range parts {
		switch p := p.(type) {
		case string:
			b.Write(crlf(p))
		case []byte:
			b.Write(p)
		default:
			panic("cat: bad type")
		}
	}
	return b.Bytes()
}

// testMessages generates every testdata/NAME.eml.
var testMessages = map[string]func() []byte{
	"plain_ascii": func() []byte {
		return crlf(`Return-Path: <li.ming@example.gov.cn>
Received: from mx.example.gov.cn (mx.example.gov.cn [192.0.2.10])
	by mail.example.gov.cn with ESMTPS id 4F2A1; Fri, 1 Mar 2024 09:30:05 +0800
From: Li Ming <li.ming@example.gov.cn>
To: Wang Fang <Wang.Fang@Example.gov.cn>, "Zhao, Lei" <zhao.lei@example.gov.cn>
Cc: Office Staff: chen@example.gov.cn, (no name) sun@example.gov.cn;
Subject: Agenda for the provincial
 work meeting
Date: Fri, 1 Mar 2024 09:30:00 +0800
Message-ID: <20240301093000.4F2A1@mail.example.gov.cn>
In-Reply-To: <prev.1@mail.example.gov.cn>
References: <root.0@mail.example.gov.cn>
	<prev.1@mail.example.gov.cn>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

Dear colleagues,

Please find the agenda for next week's meeting below.

> Can you send the agenda?
> -- Wang

1. Opening remarks
2. Work report

-- 
Li Ming
General Office
`)
	},

	"utf8_words": func() []byte {
		return cat(`From: `, qword("utf-8", []byte("张伟")), ` <zhang.wei@example.gov.cn>
To: =?UTF-8?B?`, base64.StdEncoding.EncodeToString([]byte("办公厅")), `?= <office@example.gov.cn>
Subject: `, bword("UTF-8", []byte("关于召开")), `
 `, qword("utf-8", []byte("全省工作会议的通知")), ` (2024)
Date: Mon, 4 Mar 2024 08:15:00 +0800
Message-ID: <utf8.words@example.gov.cn>
MIME-Version: 1.0
Content-Type: text/plain; charset="UTF-8"
Content-Transfer-Encoding: quoted-printable

`, qp([]byte("各位同事：\n\n定于3月8日上午9时召开全省工作会议，请准时参加。\n")), `
`)
	},

	"gb2312_base64": func() []byte {
		return cat(`From: "`, bword("GB2312", gbk("省政府办公厅")), `" <bgt@example.gov.cn>
To: `, bword("gb2312", gbk("各市政府")), ` <all@example.gov.cn>
Subject: `, bword("gb2312", gbk(notice)), `
Date: Tue, 5 Mar 2024 10:00:00 +0800
Message-ID: <gb2312.base64@example.gov.cn>
MIME-Version: 1.0
Content-Type: text/plain; charset="gb2312"
Content-Transfer-Encoding: base64

`, b64(gbk("各市、县人民政府，省政府各部门：\r\n\r\n经省政府同意，定于3月8日召开全省工作会议。现将有关事项通知如下。\r\n")), `
`)
	},

	// Raw GBK in Subject and From, as many Chinese clients send, and an
	// 8-bit GBK body with no charset parameter at all.
	"gbk_raw_8bit": func() []byte {
		return cat(`From: `, gbk("李明"), ` <li.ming@example.gov.cn>
To: `, gbk("王芳"), ` <wang.fang@example.gov.cn>
Subject: `, gbk("回复："+notice), `
Date: Wed, 6 Mar 2024 14:20:00 +0800
Message-ID: <gbk.raw@example.gov.cn>
MIME-Version: 1.0
Content-Type: text/plain
Content-Transfer-Encoding: 8bit

`, gbk("收到，我处将派两人参加会议。€\r\n\r\n李明\r\n"), ``)
	},

	"gb18030_four_byte": func() []byte {
		return cat(`From: `, bword("GB18030", gb18030("档案馆")), ` <archive@example.gov.cn>
To: records@example.gov.cn
Subject: `, bword("gb18030", gb18030("生僻字"+rare+"测试")), `
Date: Thu, 7 Mar 2024 16:45:00 +0800
Message-ID: <gb18030.four@example.gov.cn>
MIME-Version: 1.0
Content-Type: text/plain; charset=GB18030
Content-Transfer-Encoding: quoted-printable

`, qp(gb18030("人名用字："+rare+"，请核对。\n")), `
`)
	},

	// Big5 in an encoded word, in a raw 8-bit display name (decoded as Big5
	// because the body declares it), and in a base64 body.
	"big5": func() []byte {
		return cat(`From: `, big5("陳大文"), ` <chan@example.gov.hk>
To: office@example.gov.cn
Subject: `, bword("big5", big5("關於召開會議的通知")), `
Date: Fri, 8 Mar 2024 11:00:00 +0800
Message-ID: <big5.msg@example.gov.hk>
MIME-Version: 1.0
Content-Type: text/plain; charset=big5
Content-Transfer-Encoding: base64

`, b64(big5("各位同事：\r\n\r\n會議定於下週一舉行。\r\n")), `
`)
	},

	// A GBK character split across two B words, each padded on its own;
	// mixed-case charset names; a UTF-8 character split across Q words; and
	// base64 split mid-quantum across words.
	"split_words": func() []byte {
		g := gbk(notice)
		u := []byte("张伟")
		full := base64.StdEncoding.EncodeToString(gbk("全省"))
		return cat(`From: `, qword("utf-8", u[:2]), qword("UTF-8", u[2:]), ` <zhang@example.gov.cn>
To: =?gbk?B?`, full[:3], `?= =?GBK?B?`, full[3:], `?= <all@example.gov.cn>
Subject: `, bword("gb2312", g[:7]), `
 `, bword("GB2312", g[7:]), `
Date: Sat, 9 Mar 2024 09:00:00 +0800
Message-ID: <split.words@example.gov.cn>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

split
`)
	},

	"attachment_rfc2231": func() []byte {
		name := "2024年工作要点.pdf"
		var pct strings.Builder
		for _, c := range gbk(name) {
			fmt.Fprintf(&pct, "%%%02X", c)
		}
		u := []byte("会议议程（第二版）.docx")
		var pct2 strings.Builder
		for _, c := range u {
			fmt.Fprintf(&pct2, "%%%02X", c)
		}
		half := pct2.Len() / 2
		half -= half % 3 // keep %XX whole
		p2 := pct2.String()
		return cat(`From: bgt@example.gov.cn
To: all@example.gov.cn
Subject: `, bword("gb2312", gbk("附件：2024年工作要点")), `
Date: Sun, 10 Mar 2024 10:10:10 +0800
Message-ID: <attach.2231@example.gov.cn>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="----=_Part_0_1234.5678"

This is a multi-part message in MIME format.

------=_Part_0_1234.5678
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

请查收附件。

------=_Part_0_1234.5678
Content-Type: application/pdf; name="`, bword("gb2312", gbk(name)), `"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename*=gb2312''`, pct.String(), `

`, b64([]byte("%PDF-1.4\n%fake pdf for tests\n")), `
------=_Part_0_1234.5678
Content-Type: application/vnd.openxmlformats-officedocument.wordprocessingml.document
Content-Transfer-Encoding: base64
Content-Disposition: attachment;
 filename*0*=UTF-8''`, p2[:half], `;
 filename*1*=`, p2[half:], `

`, b64([]byte("PK\x03\x04 fake docx")), `
------=_Part_0_1234.5678--
`)
	},

	"html_only_alternative": func() []byte {
		html := `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>不应出现</title>
<style>p { color: red; }</style></head>
<body><!-- a comment --><p>各位领导：</p><p>请于<b>周五</b>前报送材料&nbsp;&amp;&nbsp;附件。&#x901A;&#30693;</p>
<script>alert("不应出现");</script>
<table><tr><td>联系人</td><td>张伟</td></tr></table></body></html>
`
		return cat(`From: =?utf-8?Q?=E5=BC=A0=E4=BC=9F?= <zhang@example.gov.cn>
To: leaders@example.gov.cn
Subject: =?utf-8?B?`, base64.StdEncoding.EncodeToString([]byte("报送材料")), `?=
Date: Mon, 11 Mar 2024 08:00:00 +0800
Message-ID: <html.only@example.gov.cn>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="alt-1"

--alt-1
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: quoted-printable

`, qp([]byte(html)), `
--alt-1--
`)
	},

	"nested_mixed_alt_related": func() []byte {
		return cat(`From: "`, bword("gbk", gbk("信息中心")), `" <xxzx@example.gov.cn>
To: all@example.gov.cn
Subject: `, bword("gbk", gbk("系统升级公告")), `
Date: Tue, 12 Mar 2024 17:30:00 +0800
Message-ID: <nested.1@example.gov.cn>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="mixed"

--mixed
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset=gbk
Content-Transfer-Encoding: base64

`, b64(gbk("本周六晚间系统升级，期间邮件服务暂停。\r\n")), `
--alt
Content-Type: multipart/related; boundary="rel"; type="text/html"

--rel
Content-Type: text/html; charset=gbk
Content-Transfer-Encoding: base64

`, b64(gbk("<html><body><p>本周六晚间<b>系统升级</b>，期间邮件服务暂停。</p><img src=\"cid:logo\"></body></html>\r\n")), `
--rel
Content-Type: image/png; name="logo.png"
Content-ID: <logo>
Content-Disposition: inline
Content-Transfer-Encoding: base64

iVBORw0KGgo=
--rel--

--alt--

--mixed
Content-Type: application/vnd.ms-excel; name="=?gbk?B?`, base64.StdEncoding.EncodeToString(gbk("值班表.xls")), `?="
Content-Disposition: attachment; filename="=?gbk?B?`, base64.StdEncoding.EncodeToString(gbk("值班表.xls")), `?="
Content-Transfer-Encoding: base64

0M8R4KGxGuE=
--mixed--
`)
	},

	"unknown_charset": func() []byte {
		return cat(`From: `, qword("x-unknown-foo", []byte("Zhang Wei")), ` <zhang@example.gov.cn>
To: all@example.gov.cn
Subject: =?x-unknown-foo?Q?Quarterly_report?= - =?x-unknown-foo?Q?Caf=E9?=
Date: Wed, 13 Mar 2024 12:00:00 +0800
Message-ID: <unknown.cs@example.gov.cn>
MIME-Version: 1.0
Content-Type: text/plain; charset="x-unknown-foo"
Content-Transfer-Encoding: 8bit

季度报告已上传。
`)
	},

	// The close delimiter is missing; the second part runs to the end.
	"broken_boundary_unclosed": func() []byte {
		return cat(`From: a@example.gov.cn
To: b@example.gov.cn
Subject: unclosed multipart
Date: Thu, 14 Mar 2024 09:00:00 +0800
Message-ID: <unclosed@example.gov.cn>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="zzz"

--zzz
Content-Type: text/plain; charset=utf-8

第一部分
--zzz
Content-Type: application/octet-stream; name="data.bin"

binary-ish
`)
	},

	// The declared boundary never appears; the parts use another one, which
	// is found in the body.
	"broken_boundary_mismatch": func() []byte {
		return cat(`From: a@example.gov.cn
To: b@example.gov.cn
Subject: wrong boundary
Date: Thu, 14 Mar 2024 09:05:00 +0800
Message-ID: <mismatch@example.gov.cn>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="declared"

--actual
Content-Type: text/plain; charset=utf-8

实际的正文
--actual--
`)
	},

	// Multipart with no boundary parameter and no delimiter lines: the body
	// is read as text.
	"broken_boundary_none": func() []byte {
		return cat(`From: a@example.gov.cn
Subject: no boundary at all
Date: 14 Mar 2024 09:10 +0800
Content-Type: multipart/mixed

只有正文，没有分隔线。
`)
	},

	"deep_nesting": func() []byte {
		const levels = 100
		var b strings.Builder
		b.WriteString("From: deep@example.gov.cn\nSubject: 100 levels\nDate: Fri, 15 Mar 2024 10:00:00 +0800\nMIME-Version: 1.0\n")
		for i := 0; i < levels; i++ {
			fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\n\n--b%d\n", i, i)
		}
		b.WriteString("Content-Type: text/plain\n\ntoo deep to read\n")
		for i := levels - 1; i >= 0; i-- {
			fmt.Fprintf(&b, "--b%d--\n", i)
		}
		return crlf(b.String())
	},

	// No header section at all.
	"missing_headers": func() []byte {
		return crlf("这封邮件没有信头。\nJust a body.\n")
	},

	// Fields followed by the body with no empty line between.
	"missing_blank_line": func() []byte {
		return crlf("From: a@example.gov.cn\nSubject: no blank line\nThis line starts the body.\nSecond line.\n")
	},

	// Bare LF line endings throughout, multipart and quoted-printable.
	"bare_lf": func() []byte {
		return []byte("From: =?utf-8?B?" + base64.StdEncoding.EncodeToString([]byte("王芳")) + "?= <wang@example.gov.cn>\n" +
			"To: b@example.gov.cn\n" +
			"Subject: =?utf-8?Q?LF_=E8=A1=8C=E5=B0=BE?=\n" +
			"Date: Sat, 16 Mar 2024 08:00:00 +0800\n" +
			"Message-ID: <bare.lf@example.gov.cn>\n" +
			"Content-Type: multipart/alternative; boundary=lf\n\n" +
			"--lf\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n" +
			qp([]byte("只用LF换行的邮件。\n第二行。\n")) +
			"\n--lf--\n")
	},

	// Encodings gone wrong: bad base64 and QP, NUL bytes, 8-bit header
	// bytes in no charset, a date in ISO form, In-Reply-To with a phrase,
	// References without brackets, a multipart with a non-text part.
	"malformed_encodings": func() []byte {
		return cat(`From: `, []byte("M\xfcller \x80\xff"), ` <mueller@example.de>
To: undisclosed-recipients:;
Subject: nul`, []byte("\x00"), ` in subject
Date: 2024-03-17 09:30:00 +0800
Message-ID: <malformed@example.gov.cn>
In-Reply-To: Your message of Sun, 17 Mar 2024 <orig@example.gov.cn>
References: root@example.gov.cn orig@example.gov.cn
Content-Type: multipart/mixed; boundary=m

--m
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

`, b64([]byte("正文第一段")), `!!**`, b64([]byte("第二段")), `
--m
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

bad =ZZ escape and a NUL`, []byte("\x00"), ` byte
--m--
`)
	},
}
