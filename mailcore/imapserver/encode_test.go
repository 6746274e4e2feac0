package imapserver

import (
	"bytes"
	"regexp"
	"testing"

	"github.com/emersion/go-imap"
	"github.com/govhub/govhub/mailcore"
)

// TestFastFetchEncoding: the row-only FETCH encoder writes exactly what
// go-imap's generic writer writes for the same message.
func TestFastFetchEncoding(t *testing.T) {
	str := func(s string) *string { return &s }
	rows := []row{
		{UID: 7, Flags: mailcore.FlagSeen | mailcore.FlagFlagged, KeywordsRaw: str("$label1 work"), InternalDate: 1700000000, Size: 1234, SentDate: 1699999999,
			From: `"Doe, \"J\"" <j@example.gov>`, To: "a@example.gov, 张三 <zhang@example.gov>", Cc: "", Subject: `say "hi" \ tab	end`,
			MessageID: "<m1@example.gov>", InReplyTo: "<p@x>"},
		{UID: 8, Subject: "会议通知", From: "李四 <li@例子.中国>", ReplyTo: str("r@example.gov")},
		{UID: 9},
		{UID: 10, Subject: "line\r\nbreak \x7f", From: "x@y"},
	}
	items := []imap.FetchItem{imap.FetchFlags, imap.FetchInternalDate, imap.FetchRFC822Size, imap.FetchEnvelope, imap.FetchUid}
	for i := range rows {
		r := &rows[i]
		msg := imap.NewMessage(uint32(i+1), items)
		msg.Flags = flagNames(r)
		msg.InternalDate = timeUnix(r.InternalDate)
		msg.Size = uint32(r.Size)
		msg.Uid = r.UID
		msg.Envelope = envelopeOf(r)
		var want bytes.Buffer
		w := imap.NewWriter(&want)
		if err := imap.NewUntaggedResp([]interface{}{uint32(i + 1), imap.RawString("FETCH"), msg.Format()}).WriteTo(w); err != nil {
			t.Fatal(err)
		}
		// go-imap puts a space between the addresses of a list; RFC 9051's
		// grammar (env-from = "(" 1*address ")") has none, and we follow
		// the RFC, as Dovecot does.
		wantB := addrSep.ReplaceAll(want.Bytes(), []byte(")($1"))
		got := appendFetch(nil, uint32(i+1), r, items)
		if !bytes.Equal(got, wantB) {
			t.Errorf("row %d:\n got %q\nwant %q", i, got, wantB)
		}
	}
}

var addrSep = regexp.MustCompile(`\) \((NIL|"|\{)`)
