package webmail

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/govhub/govhub/internal/testdb"
	"github.com/govhub/govhub/mailcore"
	"golang.org/x/text/encoding/simplifiedchinese"
)

func TestHostileHTML(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		hostile := `From: attacker@evil.example
To: zhangsan@gov.example
Subject: hi
MIME-Version: 1.0
Content-Type: text/html; charset=utf-8

<html><head><meta http-equiv="refresh" content="0;url=https://evil.example/"><base href="https://evil.example/">
<style>body{background:url(javascript:alert(1))}</style><script>alert(1)</script></head>
<body onload="alert(2)"><p style="color:red;width:expression(alert(3));background-image:url(javascript:alert(4))">Dear user</p>
<img src="x" onerror="alert(5)"><a href="javascript:alert(6)">click</a><a href="JaVaScRiPt:alert(7)">click2</a>
<iframe src="https://evil.example/frame"></iframe><form action="https://evil.example/steal"><input name="pw"></form>
<object data="x.swf"></object><svg onload="alert(8)"></svg><img src="https://tracker.example/pixel.gif?u=1" width="1">
<span style="font-family:expression(alert(9));color:expression(alert(10))">x</span><p style="border:1px solid url(javascript:alert(11))">y</p>
<img src="//tracker2.example/x.gif"><img src="HTTPS://tracker3.example/y.gif"><img srcset="https://tracker4.example/z.gif 2x" src="cid:none">
<table background="https://tracker5.example/bg.gif"><tr><td style="background-image:url(https://tracker6.example/)">t</td></tr></table>
<a href="https://gov.example/ok">ok link</a><div style="position:fixed;top:0">overlay</div>
</body></html>
`
		uid := e.deliver(e.a, "INBOX", hostile, 0)
		inbox := e.folderID(e.a, "INBOX")
		v, err := e.svc.Read(ctx, e.a, inbox, uid, ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		low := strings.ToLower(v.HTML)
		for _, bad := range []string{"<script", "alert(", "onload", "onerror", "javascript:", "expression(", "<iframe", "<form", "<input",
			"http-equiv", "<meta", "<base", "<style", "<object", "<svg", "tracker", "position", "evil.example", "background"} {
			if strings.Contains(low, bad) {
				t.Errorf("sanitised HTML contains %q:\n%s", bad, v.HTML)
			}
		}
		if !v.RemoteBlocked {
			t.Error("RemoteBlocked false with a remote image")
		}
		if !strings.Contains(v.HTML, "Dear user") || !strings.Contains(v.HTML, `href="https://gov.example/ok"`) {
			t.Errorf("harmless content lost: %s", v.HTML)
		}
		for _, want := range []string{"noopener", "noreferrer", `target="_blank"`} {
			if !strings.Contains(v.HTML, want) {
				t.Errorf("link lacks %s: %s", want, v.HTML)
			}
		}
		if !strings.Contains(v.HTML, "color: red") && !strings.Contains(v.HTML, "color:red") {
			t.Errorf("safe style dropped: %s", v.HTML)
		}

		v, err = e.svc.Read(ctx, e.a, inbox, uid, ReadOptions{RemoteImages: true})
		if err != nil {
			t.Fatal(err)
		}
		if v.RemoteBlocked || !strings.Contains(v.HTML, `src="https://tracker.example/pixel.gif?u=1"`) {
			t.Errorf("with RemoteImages the image should stay: blocked=%v %s", v.RemoteBlocked, v.HTML)
		}
		if strings.Contains(strings.ToLower(v.HTML), "javascript:") || strings.Contains(v.HTML, "<script") {
			t.Errorf("RemoteImages let script through: %s", v.HTML)
		}
	})
}

func TestReadMultipart(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		uid := e.deliver(e.a, "INBOX", htmlMail, 0)
		inbox := e.folderID(e.a, "INBOX")
		v, err := e.svc.Read(ctx, e.a, inbox, uid, ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if v.Text != "Plain version." {
			t.Errorf("text %q", v.Text)
		}
		wantImg := fmt.Sprintf(`src="/api/v1/messages/%d/%d/parts/1.2"`, inbox, uid)
		if !strings.Contains(v.HTML, wantImg) {
			t.Errorf("cid image not rewritten to %s: %s", wantImg, v.HTML)
		}
		if !v.RemoteBlocked || strings.Contains(v.HTML, "tracker") {
			t.Errorf("remote image: blocked=%v %s", v.RemoteBlocked, v.HTML)
		}
		if len(v.Parts) != 2 {
			t.Fatalf("parts %+v", v.Parts)
		}
		if p := v.Parts[0]; p.ID != "1.2" || p.ContentType != "image/png" || !p.Inline || p.ContentID != "logo@x" {
			t.Errorf("inline part %+v", p)
		}
		if p := v.Parts[1]; p.ID != "2" || p.Name != "报告.pdf" || p.Inline || p.Size != 9 {
			t.Errorf("attachment %+v", p)
		}
		if !v.Seen || !v.HasAttachment || v.MessageID != "html-1@example.com" || v.Headers["Subject"] != "Weekly" {
			t.Errorf("view %+v", v.Summary)
		}
		p, data, err := e.svc.Part(ctx, e.a, inbox, uid, "2")
		if err != nil || string(data) != "%PDF-1.4\n" || p.Name != "报告.pdf" {
			t.Errorf("part: %v %q %+v", err, data, p)
		}
		if _, _, err := e.svc.Part(ctx, e.a, inbox, uid, "9"); !errors.Is(err, mailcore.ErrNotFound) {
			t.Errorf("missing part: %v", err)
		}
		raw, err := e.svc.Raw(ctx, e.a, inbox, uid)
		if err != nil || !bytes.Contains(raw, []byte("Subject: Weekly")) {
			t.Errorf("raw: %v", err)
		}
	})
}

func TestGBKMail(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		enc := simplifiedchinese.GBK.NewEncoder()
		body, _ := enc.String("各位领导：请于周五前提交年度总结报告。")
		subj, _ := enc.String("年度总结")
		name, _ := enc.String("王小明")
		raw := "From: =?GBK?B?" + b64(name) + "?= <wxm@other.example>\n" +
			"To: zhangsan@gov.example\nSubject: =?gb2312?B?" + b64(subj) + "?=\n" +
			"MIME-Version: 1.0\nContent-Type: text/plain; charset=GB2312\nContent-Transfer-Encoding: 8bit\n\n" + body + "\n"
		uid := e.deliver(e.a, "INBOX", raw, 0)
		v, err := e.svc.Read(ctx, e.a, e.folderID(e.a, "INBOX"), uid, ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(v.Text, "各位领导：请于周五前提交年度总结报告。") {
			t.Errorf("text %q", v.Text)
		}
		if v.Subject != "年度总结" || !strings.Contains(v.From, "王小明") || v.Headers["Subject"] != "年度总结" {
			t.Errorf("subject %q from %q header %q", v.Subject, v.From, v.Headers["Subject"])
		}
	})
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestListSortPageThreads(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		inbox := e.folderID(e.a, "INBOX")
		mk := func(i int, from, subj, extra string) string {
			return fmt.Sprintf("From: %s\nTo: zhangsan@gov.example\nSubject: %s\nMessage-ID: <m%d@x>\n%s\nbody %d %s\n", from, subj, i, extra, i, strings.Repeat("x", i*10))
		}
		e.deliver(e.a, "INBOX", mk(1, "bob@x.example", "banana", ""), 1*time.Minute)
		e.deliver(e.a, "INBOX", mk(2, "alice@x.example", "cherry", ""), 2*time.Minute)
		e.deliver(e.a, "INBOX", mk(3, "carol@x.example", "Re: banana", "In-Reply-To: <m1@x>\nReferences: <m1@x>"), 3*time.Minute)
		e.deliver(e.a, "INBOX", mk(4, "dave@x.example", "apple", ""), 4*time.Minute)
		subjects := func(lp ListPage) string {
			var s []string
			for _, it := range lp.Items {
				s = append(s, it.Subject)
			}
			return strings.Join(s, ",")
		}
		for _, tc := range []struct {
			name string
			q    ListQuery
			want string
			tot  int
		}{
			{"date", ListQuery{}, "apple,Re: banana,cherry,banana", 4},
			{"-date", ListQuery{Sort: SortDateAsc}, "banana,cherry,Re: banana,apple", 4},
			{"from", ListQuery{Sort: SortFrom}, "cherry,banana,Re: banana,apple", 4},
			{"subject", ListQuery{Sort: SortSubject}, "apple,banana,cherry,Re: banana", 4},
			{"size", ListQuery{Sort: SortSize}, "Re: banana,apple,cherry,banana", 4}, // 3 has threading headers
			{"page2", ListQuery{Page: 2, PerPage: 3}, "banana", 4},
			{"threads", ListQuery{Threads: true}, "apple,Re: banana,cherry", 3},
		} {
			t.Run(tc.name, func(t *testing.T) {
				q := tc.q
				q.FolderID = inbox
				lp, err := e.svc.List(ctx, e.a, q)
				if err != nil {
					t.Fatal(err)
				}
				if got := subjects(lp); got != tc.want || lp.Total != tc.tot {
					t.Errorf("got %s (total %d), want %s (%d)", got, lp.Total, tc.want, tc.tot)
				}
				if tc.q.Threads && lp.Items[1].ThreadCount != 2 {
					t.Errorf("thread count %d", lp.Items[1].ThreadCount)
				}
			})
		}
		lp, _ := e.svc.List(ctx, e.a, ListQuery{FolderID: inbox})
		if err := e.svc.Act(ctx, e.a, inbox, []uint32{lp.Items[0].UID, lp.Items[1].UID}, ActRead, 0); err != nil {
			t.Fatal(err)
		}
		lp, err := e.svc.List(ctx, e.a, ListQuery{FolderID: inbox, Unread: true})
		if err != nil || subjects(lp) != "cherry,banana" || lp.Total != 2 {
			t.Errorf("unread: %v %s", err, subjects(lp))
		}
		if _, err := e.svc.List(ctx, e.a, ListQuery{FolderID: inbox, Sort: "drop table"}); !errors.Is(err, ErrInvalid) {
			t.Errorf("bad sort: %v", err)
		}
		fs, err := e.svc.Folders(ctx, e.a)
		if err != nil || fs[0].Name != "INBOX" || fs[0].Messages != 4 || fs[0].Unread != 2 {
			t.Errorf("folders %v %+v", err, fs)
		}

		// Search: header fields, dates, attachments, text without an index.
		e.deliver(e.a, "Archive", htmlMail, 5*time.Minute)
		for _, tc := range []struct {
			q    SearchQuery
			want string
		}{
			{SearchQuery{From: "ALICE"}, "cherry"},
			{SearchQuery{Subject: "banana"}, "Re: banana,banana"},
			{SearchQuery{Subject: "banana", Since: e.now.Add(2 * time.Minute)}, "Re: banana"},
			{SearchQuery{Before: e.now.Add(2 * time.Minute)}, "banana"},
			{SearchQuery{HasAttachment: true}, "Weekly"},
			{SearchQuery{Text: "weekly", FolderID: e.folderID(e.a, "Archive")}, "Weekly"},
			{SearchQuery{Subject: "100%_"}, ""},
		} {
			lp, err := e.svc.Search(ctx, e.a, tc.q)
			if err != nil || subjects(lp) != tc.want {
				t.Errorf("search %+v: %v %q, want %q", tc.q, err, subjects(lp), tc.want)
			}
		}
		if lp, err := e.svc.Search(ctx, e.b, SearchQuery{Subject: "banana"}); err != nil || lp.Total != 0 {
			t.Errorf("B finds A's mail: %v %+v", err, lp)
		}
		if _, err := e.svc.Search(ctx, e.b, SearchQuery{FolderID: inbox}); !errors.Is(err, mailcore.ErrNotFound) {
			t.Errorf("B searches A's folder: %v", err)
		}
	})
}

// fakeFullText answers every query with hits, whatever the account: the
// service must still keep to the user's own messages.
type fakeFullText struct {
	hits  []Hit
	query string
}

func (f *fakeFullText) Search(_ context.Context, accountID int64, q string, limit int) ([]Hit, error) {
	f.query = q
	return f.hits, nil
}

func TestSearchFullText(t *testing.T) {
	ft := &fakeFullText{}
	e := newEnv(t, testdb.SQLiteURL(t), Config{FullText: ft})
	u1 := e.deliver(e.a, "INBOX", plainMail, 0)
	e.deliver(e.a, "INBOX", htmlMail, time.Minute)
	ub := e.deliver(e.b, "INBOX", plainMail, 0)
	ft.hits = []Hit{{MailboxID: e.folderID(e.a, "INBOX"), UID: u1}, {MailboxID: e.folderID(e.b, "INBOX"), UID: ub}}
	lp, err := e.svc.Search(ctx, e.a, SearchQuery{Text: "通知"})
	if err != nil || lp.Total != 1 || lp.Items[0].UID != u1 || lp.Items[0].FolderID != e.folderID(e.a, "INBOX") || ft.query != "通知" {
		t.Errorf("search: %v %+v", err, lp)
	}
	ft.hits = nil
	if lp, err := e.svc.Search(ctx, e.a, SearchQuery{Text: "无"}); err != nil || lp.Total != 0 {
		t.Errorf("no hits: %v %+v", err, lp)
	}
}

func TestActions(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		inbox := e.folderID(e.a, "INBOX")
		count := func(name string) int {
			c, err := e.store.Counts(ctx, e.folderID(e.a, name))
			if err != nil {
				t.Fatal(err)
			}
			return int(c.Messages)
		}
		u1 := e.deliver(e.a, "INBOX", plainMail, 0)
		u2 := e.deliver(e.a, "INBOX", htmlMail, time.Second)
		if err := e.svc.Act(ctx, e.a, inbox, []uint32{u1}, ActFlag, 0); err != nil {
			t.Fatal(err)
		}
		m, _ := e.store.Message(ctx, inbox, u1)
		if m.Flags&mailcore.FlagFlagged == 0 {
			t.Error("not flagged")
		}
		e.svc.Act(ctx, e.a, inbox, []uint32{u1}, ActUnflag, 0)
		e.svc.Act(ctx, e.a, inbox, []uint32{u1}, ActRead, 0)
		e.svc.Act(ctx, e.a, inbox, []uint32{u1}, ActUnread, 0)
		m, _ = e.store.Message(ctx, inbox, u1)
		if m.Flags&(mailcore.FlagFlagged|mailcore.FlagSeen) != 0 {
			t.Errorf("flags %v", m.Flags)
		}
		if err := e.svc.Act(ctx, e.a, inbox, []uint32{u1}, ActJunk, 0); err != nil || count("Junk") != 1 {
			t.Fatalf("junk: %v", err)
		}
		junk := e.folderID(e.a, "Junk")
		lp, _ := e.svc.List(ctx, e.a, ListQuery{FolderID: junk})
		if m, _ := e.store.Message(ctx, junk, lp.Items[0].UID); strings.Join(m.Keywords(), " ") != "$Junk" {
			t.Errorf("junk keywords %v", m.Keywords())
		}
		if err := e.svc.Act(ctx, e.a, junk, []uint32{lp.Items[0].UID}, ActNotJunk, 0); err != nil || count("INBOX") != 2 || count("Junk") != 0 {
			t.Fatalf("notjunk: %v", err)
		}
		lp, _ = e.svc.List(ctx, e.a, ListQuery{FolderID: inbox, Sort: SortDateAsc}) // the moved one arrived first
		if m, _ := e.store.Message(ctx, inbox, lp.Items[0].UID); strings.Join(m.Keywords(), " ") != "$NotJunk" {
			t.Errorf("notjunk keywords %v", m.Keywords())
		}
		if err := e.svc.Act(ctx, e.a, inbox, []uint32{u2}, ActArchive, 0); err != nil || count("Archive") != 1 {
			t.Fatalf("archive: %v", err)
		}
		work, err := e.svc.CreateFolder(ctx, e.a, "工作/2026")
		if err != nil {
			t.Fatal(err)
		}
		lp, _ = e.svc.List(ctx, e.a, ListQuery{FolderID: inbox})
		if err := e.svc.Act(ctx, e.a, inbox, []uint32{lp.Items[0].UID}, ActMove, work.ID); err != nil || count("工作/2026") != 1 {
			t.Fatalf("move: %v", err)
		}
		// B's folder as a target is not found, and nothing moves.
		bInbox := e.folderID(e.b, "INBOX")
		lp, _ = e.svc.List(ctx, e.a, ListQuery{FolderID: work.ID})
		if err := e.svc.Act(ctx, e.a, work.ID, []uint32{lp.Items[0].UID}, ActMove, bInbox); !errors.Is(err, mailcore.ErrNotFound) {
			t.Errorf("move to B's folder: %v", err)
		}
		if err := e.svc.Act(ctx, e.a, work.ID, []uint32{lp.Items[0].UID}, ActDelete, 0); err != nil || count("Trash") != 1 || count("工作/2026") != 0 {
			t.Fatalf("delete: %v", err)
		}
		trash := e.folderID(e.a, "Trash")
		lp, _ = e.svc.List(ctx, e.a, ListQuery{FolderID: trash})
		if err := e.svc.Act(ctx, e.a, trash, []uint32{lp.Items[0].UID}, ActDelete, 0); err != nil || count("Trash") != 0 {
			t.Fatalf("delete in trash: %v", err)
		}
		if err := e.svc.Act(ctx, e.a, inbox, []uint32{1}, "explode", 0); !errors.Is(err, ErrInvalid) {
			t.Errorf("unknown action: %v", err)
		}
		if err := e.svc.Act(ctx, e.b, inbox, []uint32{1}, ActDelete, 0); !errors.Is(err, mailcore.ErrNotFound) {
			t.Errorf("B acts on A's folder: %v", err)
		}

		// Folders: rename, refuse specials, delete.
		if err := e.svc.RenameFolder(ctx, e.a, work.ID, "工作/2027"); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.RenameFolder(ctx, e.a, e.folderID(e.a, "Sent"), "Gone"); !errors.Is(err, mailcore.ErrSpecialMailbox) {
			t.Errorf("rename Sent: %v", err)
		}
		if err := e.svc.DeleteFolder(ctx, e.a, inbox); !errors.Is(err, mailcore.ErrSpecialMailbox) {
			t.Errorf("delete INBOX: %v", err)
		}
		if err := e.svc.DeleteFolder(ctx, e.b, work.ID); !errors.Is(err, mailcore.ErrNotFound) {
			t.Errorf("B deletes A's folder: %v", err)
		}
		if err := e.svc.DeleteFolder(ctx, e.a, work.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.CreateFolder(ctx, e.a, "a/../b"); !errors.Is(err, mailcore.ErrInvalidMailboxName) {
			t.Errorf("bad name: %v", err)
		}
	})
}

func TestSendWithAttachment(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		if err := e.svc.SaveSettings(ctx, e.a, Settings{DisplayName: "张三（办公厅）", Signature: "办公厅 张三", PerPage: 20}); err != nil {
			t.Fatal(err)
		}
		draft, err := e.svc.SaveDraft(ctx, e.a, Draft{To: []string{"lisi@gov.example"}, Subject: "草稿", Text: "未完"})
		if err != nil {
			t.Fatal(err)
		}
		pdf := bytes.Repeat([]byte{0, 1, 2, 0xff, '\n'}, 1000)
		ref, err := e.svc.Send(ctx, e.a, Draft{
			To:          []string{"李四 <lisi@gov.example>", "x@remote.example"},
			Cc:          []string{`"Wang, Wu" <wangwu@gov.example>`},
			Bcc:         []string{"secret@gov.example"},
			Subject:     "关于年度总结的通知" + strings.Repeat("，请各单位于本周五前报送", 8),
			Text:        "各位：\n请查收附件。\n",
			Attachments: []Upload{{Name: "总结 报告.pdf", ContentType: "application/pdf", Data: pdf}},
			DraftUID:    draft.UID,
		})
		if err != nil {
			t.Fatal(err)
		}
		call := e.sub.last(t)
		if call.from != "zhangsan@gov.example" || strings.Join(call.rcpts, " ") != "lisi@gov.example x@remote.example wangwu@gov.example secret@gov.example" {
			t.Errorf("envelope %s %v", call.from, call.rcpts)
		}
		raw := call.raw
		if bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\n")) || bytes.Contains(raw, []byte("\r\r")) {
			t.Error("bare LF in submitted message")
		}
		if bytes.Contains(raw, []byte("secret@gov.example")) || bytes.Contains(raw, []byte("Bcc")) {
			t.Error("Bcc in submitted headers")
		}
		for _, line := range strings.Split(string(raw[:bytes.Index(raw, []byte("\r\n\r\n"))]), "\r\n") {
			if len(line) > 78 {
				t.Errorf("header line of %d characters: %q", len(line), line)
			}
			for _, r := range line {
				if r > 0x7e {
					t.Errorf("non-ASCII header line %q", line)
					break
				}
			}
		}
		mr, err := mail.CreateReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		if s, _ := mr.Header.Subject(); s != "关于年度总结的通知"+strings.Repeat("，请各单位于本周五前报送", 8) {
			t.Errorf("subject %q", s)
		}
		from, _ := mr.Header.AddressList("From")
		if len(from) != 1 || from[0].Name != "张三（办公厅）" || from[0].Address != "zhangsan@gov.example" {
			t.Errorf("from %v", from)
		}
		if id, _ := mr.Header.MessageID(); !strings.HasSuffix(id, "@gov.example") {
			t.Errorf("message-id %q", id)
		}
		if d, err := mr.Header.Date(); err != nil || !d.Equal(e.now) {
			t.Errorf("date %v %v", d, err)
		}
		var text string
		var got []byte
		var gotName string
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(p.Body)
			switch h := p.Header.(type) {
			case *mail.InlineHeader:
				text = string(b)
			case *mail.AttachmentHeader:
				gotName, _ = h.Filename()
				got = b
			}
		}
		if text != "各位：\r\n请查收附件。\r\n" {
			t.Errorf("text %q", text)
		}
		if gotName != "总结 报告.pdf" || !bytes.Equal(got, pdf) {
			t.Errorf("attachment %q (%d bytes)", gotName, len(got))
		}
		sent := e.folderID(e.a, "Sent")
		if ref.FolderID != sent {
			t.Fatalf("ref %+v", ref)
		}
		m, err := e.store.Message(ctx, sent, ref.UID)
		if err != nil || m.Flags&mailcore.FlagSeen == 0 || !strings.HasPrefix(m.Subject, "关于年度总结的通知，请各单位") {
			t.Errorf("sent copy %v %+v", err, m)
		}
		sentRaw, _ := e.store.ReadMessage(ctx, sent, ref.UID)
		if !bytes.Contains(sentRaw, []byte("Bcc: <secret@gov.example>\r\n")) {
			t.Error("sender's copy lost Bcc")
		}
		if _, err := e.store.Message(ctx, e.folderID(e.a, "Drafts"), draft.UID); !errors.Is(err, mailcore.ErrNotFound) {
			t.Errorf("draft not removed: %v", err)
		}

		// Failures: no recipients, bad address, the submitter failing (no
		// Sent copy), a sender not allowed alerts.
		if _, err := e.svc.Send(ctx, e.a, Draft{Subject: "x"}); !errors.Is(err, ErrInvalid) {
			t.Errorf("no rcpts: %v", err)
		}
		if _, err := e.svc.Send(ctx, e.a, Draft{To: []string{"not an address"}}); !errors.Is(err, ErrInvalid) {
			t.Errorf("bad rcpt: %v", err)
		}
		if _, err := e.svc.Send(ctx, e.a, Draft{To: []string{"a@b.example"}, Alert: true}); !errors.Is(err, ErrAlertNotAllowed) {
			t.Errorf("alert: %v", err)
		}
		e.sub.err = errBoom
		before, _ := e.store.Counts(ctx, sent)
		if _, err := e.svc.Send(ctx, e.a, Draft{To: []string{"a@b.example"}}); !errors.Is(err, ErrSubmit) {
			t.Errorf("submit failure: %v", err)
		}
		after, _ := e.store.Counts(ctx, sent)
		if after.Messages != before.Messages {
			t.Error("a failed send left a Sent copy")
		}
	})
}

func TestSizeLimit(t *testing.T) {
	for _, b := range backendsOnce(t) {
		e := newEnv(t, b, Config{MaxMessageSize: 64 << 10})
		big := Upload{Name: "big.bin", Data: bytes.Repeat([]byte("x"), 60<<10)}
		if _, err := e.svc.Send(ctx, e.a, Draft{To: []string{"lisi@gov.example"}, Attachments: []Upload{big}}); !errors.Is(err, mailcore.ErrTooLarge) {
			t.Errorf("send: %v", err)
		}
		if _, err := e.svc.SaveDraft(ctx, e.a, Draft{Attachments: []Upload{big}}); !errors.Is(err, mailcore.ErrTooLarge) {
			t.Errorf("draft: %v", err)
		}
		if len(e.sub.calls) != 0 {
			t.Error("oversized message submitted")
		}
		small := Upload{Name: "ok.bin", Data: bytes.Repeat([]byte("x"), 30<<10)}
		if _, err := e.svc.Send(ctx, e.a, Draft{To: []string{"lisi@gov.example"}, Attachments: []Upload{small}}); err != nil {
			t.Errorf("small: %v", err)
		}
	}
}

// backendsOnce returns the SQLite URL only, for tests about logic above
// the store.
func backendsOnce(t *testing.T) []string {
	return []string{testdb.SQLiteURL(t)}
}

func TestComposeReplyForward(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		inbox := e.folderID(e.a, "INBOX")
		orig := `From: "Li Si" <lisi@gov.example>
Reply-To: office@gov.example
To: zhangsan@gov.example, wangwu@gov.example
Cc: zhaoliu@gov.example, ZhangSan@gov.example
Subject: 会议安排
Date: Wed, 02 Dec 2026 10:00:00 +0800
Message-ID: <orig-1@gov.example>
References: <root@gov.example>
Content-Type: text/plain; charset=utf-8

周五开会。
> earlier
`
		uid := e.deliver(e.a, "INBOX", orig, 0)
		d, err := e.svc.Compose(ctx, e.a, "reply", inbox, uid, "")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(d.To, ";") != "office@gov.example" || len(d.Cc) != 0 || d.Subject != "Re: 会议安排" {
			t.Errorf("reply %+v", d)
		}
		if d.InReplyTo != "orig-1@gov.example" || strings.Join(d.References, " ") != "root@gov.example orig-1@gov.example" {
			t.Errorf("threading %q %v", d.InReplyTo, d.References)
		}
		if !strings.Contains(d.Text, "在 2026-12-02 10:00，Li Si <lisi@gov.example> 写道：\n> 周五开会。\n>> earlier\n") {
			t.Errorf("quote %q", d.Text)
		}
		all, err := e.svc.Compose(ctx, e.a, "all", inbox, uid, "")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(all.To, ";") != "office@gov.example;wangwu@gov.example" || strings.Join(all.Cc, ";") != "zhaoliu@gov.example" {
			t.Errorf("reply all to %v cc %v", all.To, all.Cc)
		}
		fw, err := e.svc.Compose(ctx, e.a, "forward", inbox, uid, "")
		if err != nil || fw.Subject != "Fwd: 会议安排" || len(fw.To) != 0 || !strings.Contains(fw.Text, "转发的邮件") || fw.ForwardUID != uid {
			t.Errorf("forward %v %+v", err, fw)
		}
		if again := prefixed("RE: x", "Re: ", "re:"); again != "RE: x" {
			t.Errorf("prefix %q", again)
		}
		nw, err := e.svc.Compose(ctx, e.a, "new", 0, 0, "p-1001")
		if err != nil || strings.Join(nw.To, "") != "王五 <wangwu@gov.example>" {
			t.Errorf("new %v %+v", err, nw)
		}
		if _, err := e.svc.Compose(ctx, e.a, "new", 0, 0, "p-nobody"); !errors.Is(err, mailcore.ErrNotFound) {
			t.Errorf("unknown person: %v", err)
		}
		if _, err := e.svc.Compose(ctx, e.b, "reply", inbox, uid, ""); !errors.Is(err, mailcore.ErrNotFound) {
			t.Errorf("B replies to A's message: %v", err)
		}

		// Sending the reply marks the original answered.
		if _, err := e.svc.Send(ctx, e.a, d); err != nil {
			t.Fatal(err)
		}
		m, _ := e.store.Message(ctx, inbox, uid)
		if m.Flags&mailcore.FlagAnswered == 0 {
			t.Error("original not \\Answered")
		}
		sub, _ := mail.CreateReader(bytes.NewReader(e.sub.last(t).raw))
		if irt, _ := sub.Header.MsgIDList("In-Reply-To"); strings.Join(irt, "") != "orig-1@gov.example" {
			t.Errorf("In-Reply-To %v", irt)
		}

		// Forwarding attaches the original's attachments.
		fuid := e.deliver(e.a, "INBOX", htmlMail, time.Minute)
		fd, _ := e.svc.Compose(ctx, e.a, "forward", inbox, fuid, "")
		fd.To = []string{"wangwu@gov.example"}
		if _, err := e.svc.Send(ctx, e.a, fd); err != nil {
			t.Fatal(err)
		}
		fr, _ := mail.CreateReader(bytes.NewReader(e.sub.last(t).raw))
		var names []string
		for {
			p, err := fr.NextPart()
			if err != nil {
				break
			}
			if h, ok := p.Header.(*mail.AttachmentHeader); ok {
				n, _ := h.Filename()
				names = append(names, n)
			}
		}
		if strings.Join(names, ",") != "part-1.2,报告.pdf" {
			t.Errorf("forwarded attachments %v", names)
		}
		// B cannot forward A's message.
		fd.ForwardFolderID = inbox
		if _, err := e.svc.Send(ctx, e.b, fd); !errors.Is(err, mailcore.ErrNotFound) {
			t.Errorf("B forwards A's message: %v", err)
		}

		// A draft resumes with its recipients, Bcc included.
		ref, err := e.svc.SaveDraft(ctx, e.a, Draft{To: []string{"lisi@gov.example"}, Bcc: []string{"boss@gov.example"}, Subject: "稿"})
		if err != nil {
			t.Fatal(err)
		}
		rd, err := e.svc.Compose(ctx, e.a, "draft", ref.FolderID, ref.UID, "")
		if err != nil || rd.DraftUID != ref.UID || strings.Join(rd.Bcc, "") != "boss@gov.example" || rd.Subject != "稿" {
			t.Errorf("resume %v %+v", err, rd)
		}
		dm, _ := e.store.Message(ctx, ref.FolderID, ref.UID)
		if dm.Flags&mailcore.FlagDraft == 0 {
			t.Error("draft lacks \\Draft")
		}
		ref2, err := e.svc.SaveDraft(ctx, e.a, Draft{To: []string{"lisi@gov.example"}, Subject: "稿2", DraftUID: ref.UID})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.Message(ctx, ref.FolderID, ref.UID); !errors.Is(err, mailcore.ErrNotFound) || ref2.UID == ref.UID {
			t.Errorf("replaced draft still there: %v", err)
		}
	})
}

func TestAlertRequest(t *testing.T) {
	for _, b := range backendsOnce(t) {
		e := newEnv(t, b, Config{AlertSenders: func(a mailcore.Account) bool { return a.Address == "zhangsan@gov.example" }})
		if _, err := e.svc.Send(ctx, e.a, Draft{To: []string{"lisi@gov.example"}, Subject: "急", Alert: true}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(e.sub.last(t).raw, []byte("X-Govhub-Alert: requested\r\n")) {
			t.Error("no alert header")
		}
		var rows []struct {
			Account int64  `db:"account_id"`
			MsgID   string `db:"message_id"`
			Rcpts   string `db:"recipients"`
			Status  string `db:"status"`
		}
		if err := e.store.DB().X.Select(&rows, `SELECT account_id, message_id, recipients, status FROM webmail_alert_requests`); err != nil {
			t.Fatal(err)
		}
		if len(rows) != 1 || rows[0].Account != e.a.AccountID || rows[0].Rcpts != `["lisi@gov.example"]` || rows[0].Status != "pending" || rows[0].MsgID == "" {
			t.Errorf("rows %+v", rows)
		}
		if _, err := e.svc.Send(ctx, e.b, Draft{To: []string{"zhangsan@gov.example"}, Alert: true}); !errors.Is(err, ErrAlertNotAllowed) {
			t.Errorf("B may not: %v", err)
		}
		// A draft keeps the request for allowed senders only.
		ref, err := e.svc.SaveDraft(ctx, e.a, Draft{To: []string{"lisi@gov.example"}, Alert: true})
		if err != nil {
			t.Fatal(err)
		}
		if d, err := e.svc.Compose(ctx, e.a, "draft", ref.FolderID, ref.UID, ""); err != nil || !d.Alert {
			t.Errorf("resumed draft alert: %v %v", err, d.Alert)
		}
		ref, _ = e.svc.SaveDraft(ctx, e.b, Draft{Alert: true})
		if d, _ := e.svc.Compose(ctx, e.b, "draft", ref.FolderID, ref.UID, ""); d.Alert {
			t.Error("B's draft kept an alert B may not ask for")
		}
		// The sender's view shows the request.
		lp, _ := e.svc.List(ctx, e.a, ListQuery{FolderID: e.folderID(e.a, "Sent")})
		v, err := e.svc.Read(ctx, e.a, lp.Items[0].FolderID, lp.Items[0].UID, ReadOptions{})
		if err != nil || !v.Alert {
			t.Errorf("view alert %v %v", err, v.Alert)
		}
	}
}

func TestSettingsSuggestBadge(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		st, err := e.svc.Settings(ctx, e.a)
		if err != nil || st != (Settings{DisplayName: "张三", Language: "zh-CN", PerPage: 50}) {
			t.Errorf("defaults %v %+v", err, st)
		}
		for _, bad := range []Settings{{Language: "fr"}, {PerPage: 5000}, {DisplayName: "a\x00b"}} {
			if err := e.svc.SaveSettings(ctx, e.a, bad); !errors.Is(err, ErrInvalid) {
				t.Errorf("%+v: %v", bad, err)
			}
		}
		want := Settings{DisplayName: "张三", Signature: "sig\nline", Language: "en", PerPage: 100}
		if err := e.svc.SaveSettings(ctx, e.a, want); err != nil {
			t.Fatal(err)
		}
		want.DisplayName = "Zhang San"
		e.svc.SaveSettings(ctx, e.a, want)
		if st, _ := e.svc.Settings(ctx, e.a); st != want {
			t.Errorf("got %+v", st)
		}
		if st, _ := e.svc.Settings(ctx, e.b); st.Language != "zh-CN" {
			t.Errorf("B's settings changed: %+v", st)
		}

		e.deliver(e.a, "INBOX", plainMail, 0)
		e.svc.Send(ctx, e.a, Draft{To: []string{"王小明 <wxm@other.example>"}, Subject: "hi"})
		cs, err := e.svc.Suggest(ctx, e.a, "王", 10)
		if err != nil || len(cs) != 2 || cs[0].Address != "wangwu@gov.example" || cs[1].Address != "wxm@other.example" {
			t.Errorf("suggest 王: %v %+v", err, cs)
		}
		cs, _ = e.svc.Suggest(ctx, e.a, "lisi", 10)
		if len(cs) != 1 || cs[0].Name != "Li Si" {
			t.Errorf("suggest lisi: %+v", cs)
		}
		if cs, _ := e.svc.Suggest(ctx, e.b, "wxm", 10); len(cs) != 0 {
			t.Errorf("B sees A's correspondents: %+v", cs)
		}
		e.dir.err = errBoom
		if cs, err := e.svc.Suggest(ctx, e.a, "wxm", 10); err != nil || len(cs) != 1 {
			t.Errorf("directory down: %v %+v", err, cs)
		}

		e.deliver(e.a, "INBOX", htmlMail, time.Minute)
		b, err := e.svc.Badge(ctx, e.a, 5)
		if err != nil || b.Unread != 2 || len(b.Recent) != 2 || b.Recent[0].Subject != "Weekly" {
			t.Errorf("badge %v %+v", err, b)
		}
		q, err := e.svc.Quota(ctx, e.a)
		if err != nil || q.UsedBytes == 0 || q.QuotaBytes != mailcore.DefaultQuota {
			t.Errorf("quota %v %+v", err, q)
		}
	})
}

// TestHeaderFieldsRefused: compose fields that end up in header lines
// refuse line breaks with ErrInvalid (a 400), never reach the MIME writer.
func TestHeaderFieldsRefused(t *testing.T) {
	e := newEnv(t, testdb.SQLiteURL(t), Config{})
	for name, d := range map[string]Draft{
		"subject":     {To: []string{"lisi@gov.example"}, Subject: "hi\r\nBcc: evil@example.com"},
		"in-reply-to": {To: []string{"lisi@gov.example"}, Subject: "hi", InReplyTo: "<a@b>\r\nBcc: evil@example.com"},
	} {
		if _, err := e.svc.Send(ctx, e.a, d); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s with a line break: %v", name, err)
		}
	}
	if len(e.sub.calls) != 0 {
		t.Fatal("a message with an injected header was submitted")
	}
}
