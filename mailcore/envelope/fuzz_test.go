package envelope

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// The seed corpus is testdata/fuzz/Fuzz*/ (written by -update from the
// test messages: GBK, GB18030, Big5, deep nesting, broken boundaries, ...)
// plus the few hostile shapes added here.

func hostileSeeds() [][]byte {
	return [][]byte{
		[]byte(""),
		[]byte("\r\n\r\n"),
		[]byte("Subject: =?gb2312?B?" + strings.Repeat("=", 40) + "?=\r\n\r\n"),
		[]byte("Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n--a--"),
		[]byte("Content-Type: message/rfc822\r\n\r\nContent-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\nbody"),
		[]byte("Content-Type: text/html\r\n\r\n<script><!--<style>'\"</b"),
		[]byte("Content-Type: text/plain; charset*0*=gb2312''%D6; charset*1*=%D0\r\nSubject: \x00\xff\xfe\r\n\r\n\x00"),
	}
}

func checkEnvelope(t *testing.T, e Envelope) {
	t.Helper()
	check := func(field, s string) {
		if !utf8.ValidString(s) {
			t.Fatalf("%s is not valid UTF-8: %q", field, s)
		}
		if strings.IndexByte(s, 0) >= 0 {
			t.Fatalf("%s holds NUL: %q", field, s)
		}
	}
	check("Subject", e.Subject)
	check("MessageID", e.MessageID)
	check("Preview", e.Preview)
	if n := utf8.RuneCountInString(e.Preview); n > PreviewRunes {
		t.Fatalf("Preview has %d runes", n)
	}
	for _, list := range []struct {
		name string
		a    []Address
	}{{"From", e.From}, {"Sender", e.Sender}, {"ReplyTo", e.ReplyTo}, {"To", e.To}, {"Cc", e.Cc}, {"Bcc", e.Bcc}} {
		for i, a := range list.a {
			check(fmt.Sprintf("%s[%d].Name", list.name, i), a.Name)
			check(fmt.Sprintf("%s[%d].Addr", list.name, i), a.Addr)
		}
	}
	for i, id := range e.InReplyTo {
		check(fmt.Sprintf("InReplyTo[%d]", i), id)
	}
	for i, id := range e.References {
		check(fmt.Sprintf("References[%d]", i), id)
	}
	if len(e.References) > maxReferences {
		t.Fatalf("%d references", len(e.References))
	}
	if len(e.Warnings) > maxWarnings {
		t.Fatalf("%d warnings", len(e.Warnings))
	}
	for i, w := range e.Warnings {
		check(fmt.Sprintf("Warnings[%d]", i), w)
		if strings.HasPrefix(w, "internal error") {
			t.Fatalf("Parse recovered from a panic: %s", w)
		}
	}
	if y := e.Date.Year(); !e.Date.IsZero() && (y < 1970 || y > 9999) {
		t.Fatalf("Date %v", e.Date)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range hostileSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkEnvelope(t, Parse(raw))
		for _, a := range Attachments(raw) {
			if !utf8.ValidString(a.Filename) || !utf8.ValidString(a.ContentType) {
				t.Fatalf("attachment %+v", a)
			}
		}
	})
}

func FuzzText(f *testing.F) {
	for _, s := range hostileSeeds() {
		f.Add(s, 100)
	}
	f.Fuzz(func(t *testing.T, raw []byte, max int) {
		if max > 1<<20 {
			max = 1 << 20
		}
		s := Text(raw, max)
		if !utf8.ValidString(s) {
			t.Fatalf("Text is not valid UTF-8: %q", s)
		}
		if max <= 0 && s != "" || max > 0 && len(s) > max {
			t.Fatalf("Text(max=%d) has %d bytes", max, len(s))
		}
		if strings.IndexByte(s, 0) >= 0 {
			t.Fatalf("Text holds NUL")
		}
	})
}

func init() { recoverPanics = false }
