package webmail

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/govhub/govhub/internal/testdb"
	"github.com/govhub/govhub/mailcore"
)

// TestPartsData: several inline parts come from one reading of the
// message, bounded by maxTotal, and only for the owner.
func TestPartsData(t *testing.T) {
	e := newEnv(t, testdb.SQLiteURL(t), Config{})
	var b strings.Builder
	b.WriteString("From: lisi@gov.example\nTo: zhangsan@gov.example\nSubject: images\nMIME-Version: 1.0\nContent-Type: multipart/related; boundary=B\n\n")
	b.WriteString("--B\nContent-Type: text/html; charset=utf-8\n\n<p>hi</p>\n")
	for i := 1; i <= 4; i++ {
		fmt.Fprintf(&b, "--B\nContent-Type: image/gif\nContent-ID: <i%d>\nContent-Transfer-Encoding: base64\n\nR0lGODlh%02d==\n", i, i)
	}
	b.WriteString("--B--\n")
	uid := e.deliver(e.a, "INBOX", b.String(), 0)
	inbox := e.folderID(e.a, "INBOX")
	got, err := e.svc.PartsData(ctx, e.a, inbox, uid, []string{"2", "4", "9"}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || len(got["2"]) == 0 || len(got["4"]) == 0 {
		t.Fatalf("parts %v", got)
	}
	one := len(got["2"])
	got, _ = e.svc.PartsData(ctx, e.a, inbox, uid, []string{"2", "3", "4"}, 2*one)
	if len(got) != 2 {
		t.Fatalf("maxTotal %d gave %d parts", 2*one, len(got))
	}
	if _, err := e.svc.PartsData(ctx, e.b, inbox, uid, []string{"2"}, 1<<20); !errors.Is(err, mailcore.ErrNotFound) {
		t.Fatalf("another account read the parts: %v", err)
	}
}

// TestDraftAttachmentsCarried: a draft saved with an attachment keeps it
// through later saves that send no files (autosave) and sends it, unless
// the writer unticks it (KeepParts without its Content-ID).
func TestDraftAttachmentsCarried(t *testing.T) {
	e := newEnv(t, testdb.SQLiteURL(t), Config{})
	att := Upload{Name: "预算草案.txt", ContentType: "text/plain", Data: []byte("2027 年预算")}
	ref, err := e.svc.SaveDraft(ctx, e.a, Draft{To: []string{"lisi@gov.example"}, Subject: "草稿", Text: "v1", Attachments: []Upload{att}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.svc.Compose(ctx, e.a, "draft", ref.FolderID, ref.UID, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.DraftParts) != 1 || d.DraftParts[0].Name != "预算草案.txt" || len(d.KeepParts) != 1 || d.KeepParts[0] != d.DraftParts[0].ContentID {
		t.Fatalf("resumed draft parts %+v keep %v", d.DraftParts, d.KeepParts)
	}
	// Autosave: the form's fields, no files, the attachment left ticked.
	d.Text = "v2"
	ref2, err := e.svc.SaveDraft(ctx, e.a, d)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := e.svc.Compose(ctx, e.a, "draft", ref2.FolderID, ref2.UID, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(d2.DraftParts) != 1 || d2.DraftParts[0].ContentID != d.DraftParts[0].ContentID || d2.Text != "v2" {
		t.Fatalf("after a save without files: %+v", d2.DraftParts)
	}
	if _, err := e.svc.Compose(ctx, e.a, "draft", ref.FolderID, ref.UID, ""); err == nil {
		t.Fatal("the replaced draft is still there")
	}
	// Sent with the attachment still ticked: the message carries it.
	if _, err := e.svc.Send(ctx, e.a, d2); err != nil {
		t.Fatal(err)
	}
	last := e.sub.calls[len(e.sub.calls)-1]
	if !strings.Contains(string(last.raw), "MjAyNyDlubTpooTnrpc=") { // base64 of the attachment
		t.Fatalf("sent message lacks the draft's attachment:\n%s", last.raw)
	}
	// Unticked: not carried.
	ref3, _ := e.svc.SaveDraft(ctx, e.a, Draft{To: []string{"lisi@gov.example"}, Subject: "二", Attachments: []Upload{att}})
	d3, _ := e.svc.Compose(ctx, e.a, "draft", ref3.FolderID, ref3.UID, "")
	d3.KeepParts = nil
	if _, err := e.svc.Send(ctx, e.a, d3); err != nil {
		t.Fatal(err)
	}
	last = e.sub.calls[len(e.sub.calls)-1]
	if strings.Contains(string(last.raw), "filename") {
		t.Fatalf("an unticked attachment was sent:\n%s", last.raw)
	}
	// Another account cannot pull parts out of someone's draft.
	other := Draft{To: []string{"zhangsan@gov.example"}, DraftUID: ref2.UID, KeepParts: d2.KeepParts}
	if _, err := e.svc.Send(ctx, e.b, other); err == nil {
		last = e.sub.calls[len(e.sub.calls)-1]
		if strings.Contains(string(last.raw), "filename") {
			t.Fatal("another account's draft attachment was sent")
		}
	}
}
