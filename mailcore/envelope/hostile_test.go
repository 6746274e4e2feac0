package envelope

import (
	"strings"
	"testing"
	"time"
)

// TestHostileShapesLinear feeds 1 MiB of each repetitive shape that could
// make a scanner quadratic. Linear code takes milliseconds; a quadratic
// one takes tens of seconds, far past the generous bound that keeps this
// test steady on a loaded machine.
func TestHostileShapesLinear(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and parses 30 MiB of hostile input; skipped with -short")
	}
	n := 1 << 20
	shapes := map[string]string{
		"head":       "Content-Type: text/html\r\n\r\n" + strings.Repeat("<head>", n/6),
		"lt":         "Content-Type: text/html\r\n\r\n" + strings.Repeat("<a ", n/3),
		"quote":      "Content-Type: text/html\r\n\r\n" + strings.Repeat("<a x='>", n/7),
		"words":      "Subject: " + strings.Repeat("=?a?q?", n/6) + "\r\n\r\n",
		"words2":     "Subject: " + strings.Repeat("=?utf-8?q?a?= ", n/14) + "\r\n\r\n",
		"words3":     "Subject: " + strings.Repeat("=?x?q?a?= ", n/10) + "\r\n\r\n",
		"comments":   "From: " + strings.Repeat("(", n) + "\r\n\r\n",
		"angles":     "From: " + strings.Repeat("<", n) + "\r\n\r\n",
		"quotes":     "From: " + strings.Repeat("\"", n) + "\r\n\r\n",
		"colons":     "From: " + strings.Repeat("a:", n/2) + "\r\n\r\n",
		"ats":        "From: " + strings.Repeat("@", n) + "\r\n\r\n",
		"date":       "Date: " + strings.Repeat("1 ", n/2) + "\r\n\r\n",
		"msgid":      "References: " + strings.Repeat("<a@b>", n/5) + "\r\n\r\n",
		"msgid2":     "References: " + strings.Repeat("a@b ", n/4) + "\r\n\r\n",
		"params":     "Content-Type: text/plain; " + strings.Repeat("a*1*=b;", n/7) + "\r\n\r\n",
		"params2":    "Content-Type: text/plain; " + strings.Repeat("a=\"", n/3) + "\r\n\r\n",
		"boundary":   "Content-Type: multipart/mixed; boundary=a\r\n\r\n" + strings.Repeat("--a", n/3),
		"boundary2":  "Content-Type: multipart/mixed; boundary=a\r\n\r\n" + strings.Repeat("\n--a\n", n/5),
		"boundary3":  "Content-Type: multipart/mixed; boundary=a\r\n\r\n" + strings.Repeat("\n--b\n", n/5),
		"guess":      "Content-Type: multipart/mixed\r\n\r\n" + strings.Repeat("--\n", n/3),
		"nested":     strings.Repeat("Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n", 40) + strings.Repeat("x\n", n/2),
		"nested-rfc": strings.Repeat("Content-Type: message/rfc822\r\n\r\n", 40) + strings.Repeat("x\n", n/2),
		"headerjunk": strings.Repeat("junk\n", n/5),
		"headercont": strings.Repeat("X: a\n", n/5),
		"fields":     strings.Repeat("To: a@b\n", n/8),
		"lines":      "\r\n" + strings.Repeat("\n", n),
		"qp":         "Content-Transfer-Encoding: quoted-printable\r\n\r\n" + strings.Repeat("=", n),
		"b64":        "Content-Transfer-Encoding: base64\r\n\r\n" + strings.Repeat("=", n),
		"gbk":        "Subject: " + strings.Repeat("\x81", n) + "\r\n\r\n" + strings.Repeat("\x81", n),
	}
	for name, s := range shapes {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			checkEnvelope(t, Parse([]byte(s)))
			Text([]byte(s), 1<<20)
			Attachments([]byte(s))
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v for 1 MiB", d)
			}
		})
	}
}
