package webmail

import (
	"strings"
	"testing"
)

// FuzzReadHTML feeds arbitrary mail through the display path: parse must
// never panic, and the sanitised HTML never carries script.
func FuzzReadHTML(f *testing.F) {
	f.Add([]byte(htmlMail))
	f.Add([]byte(plainMail))
	f.Add([]byte("Content-Type: text/html\r\n\r\n<img src=x onerror=alert(1)><script>alert(1)</script>"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n--a--"))
	svc := &Service{policy: mailPolicy()}
	f.Fuzz(func(t *testing.T, raw []byte) {
		p := parse(raw)
		h, _ := svc.sanitize(p.html, 1, 1, p.cids, false)
		low := strings.ToLower(h)
		for _, bad := range []string{"<script", "javascript:", "onerror=", "<iframe"} {
			if strings.Contains(low, bad) {
				t.Fatalf("sanitised HTML has %q: %s", bad, h)
			}
		}
		_ = htmlToText(p.html)
	})
}
