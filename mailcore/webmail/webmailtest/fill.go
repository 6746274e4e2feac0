// Package webmailtest is test plumbing for webmail benchmarks: it fills a
// folder with many message rows quickly. No production code imports it.
package webmailtest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/govhub/govhub/mailcore"
	"github.com/jmoiron/sqlx"
)

// Fill gives the folder n messages: template (an existing message of the
// folder, delivered for real) and n-1 clones of its row with distinct
// uids, dates, senders, subjects, sizes, flags and threads, a third of
// them unread. A list never reads bodies, so the clones share one body
// (its reference count is not raised: only for benchmarks of listing).
func Fill(tb testing.TB, store *mailcore.Store, folderID int64, template uint32, n int) {
	tb.Helper()
	ctx := context.Background()
	m, err := store.Message(ctx, folderID, template)
	if err != nil {
		tb.Fatal(err)
	}
	db := store.DB()
	err = db.InTx(ctx, func(tx *sqlx.Tx) error {
		const per = 500
		for start := int(template) + 1; start <= n; start += per {
			var sb strings.Builder
			var args []any
			sb.WriteString(`INSERT INTO messages (mailbox_id, uid, modseq, blob_id, flags, internal_date, size, sent_date, from_addr, to_addr, cc_addr, subject, message_id, in_reply_to, thread_id, preview) VALUES `)
			for i := start; i < start+per && i <= n; i++ {
				if i > start {
					sb.WriteByte(',')
				}
				sb.WriteString(`(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
				flags := mailcore.Flags(0)
				if i%3 != 0 {
					flags |= mailcore.FlagSeen
				}
				date := m.InternalDate + int64(i*37%n)*60
				args = append(args, folderID, i, m.ModSeq, m.BlobRowID, flags, date, 1000+i*7%5000, date,
					fmt.Sprintf("用户%d <user%d@gov.example>", i%911, i%911), m.To, "", fmt.Sprintf("第%d号通知 subject %d", i%1237, i),
					fmt.Sprintf("m%d@gov.example", i), "", int64(i/3), "preview text 预览 "+strings.Repeat("字", 40))
			}
			if _, err := tx.ExecContext(ctx, db.Rebind(sb.String()), args...); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, db.Rebind(`UPDATE mailboxes SET uidnext = ? WHERE id = ?`), n+1, folderID)
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	if db.Dialect == "postgres" {
		db.X.ExecContext(ctx, `ANALYZE messages`)
	} else {
		db.X.ExecContext(ctx, `ANALYZE`)
	}
}
