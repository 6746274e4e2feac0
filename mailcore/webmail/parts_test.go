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
