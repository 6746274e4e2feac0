package webmail

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/govhub/govhub/internal/testdb"
	"github.com/govhub/govhub/mailcore"
	"github.com/govhub/govhub/mailcore/webmail/webmailtest"
)

// fillInbox gives u's INBOX n messages (see webmailtest.Fill).
func fillInbox(tb testing.TB, e *env, u User, n int) int64 {
	tb.Helper()
	inbox := e.folderID(u, "INBOX")
	first := e.deliver(u, "INBOX", plainMail, 0)
	webmailtest.Fill(tb, e.store, inbox, first, n)
	return inbox
}

// BenchmarkListPage lists a 50-message page of a 20,000-message INBOX in
// every order (the target: 50 ms a page).
func BenchmarkListPage(b *testing.B) {
	for _, be := range testdb.Backends(b) {
		e := newEnv(b, be.URL(b), Config{})
		inbox := fillInbox(b, e, e.a, 20000)
		// The reference, measured in the same run: reading every row of
		// the folder (what IMAP FETCH 1:* reads, and what a list without
		// SQL-side paging would cost).
		b.Run(be.Name+"/reference-all-rows", func(b *testing.B) {
			for b.Loop() {
				n, after := 0, uint32(0)
				for {
					ms, err := e.store.Messages(ctx, inbox, after, 1000)
					if err != nil {
						b.Fatal(err)
					}
					if len(ms) == 0 {
						break
					}
					n += len(ms)
					after = ms[len(ms)-1].UID
				}
				if n != 20000 {
					b.Fatalf("%d rows", n)
				}
			}
		})
		for _, tc := range []struct {
			name string
			q    ListQuery
		}{
			{"date", ListQuery{}},
			{"date/page100", ListQuery{Page: 100}},
			{"-date", ListQuery{Sort: SortDateAsc}},
			{"from", ListQuery{Sort: SortFrom}},
			{"subject", ListQuery{Sort: SortSubject}},
			{"size", ListQuery{Sort: SortSize}},
			{"unread", ListQuery{Unread: true}},
			{"threads", ListQuery{Threads: true}},
		} {
			b.Run(be.Name+"/"+tc.name, func(b *testing.B) {
				q := tc.q
				q.FolderID, q.PerPage = inbox, 50
				var worst time.Duration
				for b.Loop() {
					start := time.Now()
					lp, err := e.svc.List(ctx, e.a, q)
					if err != nil {
						b.Fatal(err)
					}
					if len(lp.Items) != 50 {
						b.Fatalf("%d items", len(lp.Items))
					}
					worst = max(worst, time.Since(start))
				}
				b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
			})
		}
	}
}

// BenchmarkFoldersBadge: the folder list (with counts) and the portal
// badge of an account with a 20,000-message INBOX, a third unread.
func BenchmarkFoldersBadge(b *testing.B) {
	for _, be := range testdb.Backends(b) {
		e := newEnv(b, be.URL(b), Config{})
		fillInbox(b, e, e.a, 20000)
		b.Run(be.Name+"/folders", func(b *testing.B) {
			for b.Loop() {
				fs, err := e.svc.Folders(ctx, e.a)
				if err != nil || fs[0].Messages != 20000 || fs[0].Unread != 6667 {
					b.Fatalf("%v %+v", err, fs[0])
				}
			}
		})
		b.Run(be.Name+"/badge", func(b *testing.B) {
			for b.Loop() {
				if bd, err := e.svc.Badge(ctx, e.a, 5); err != nil || bd.Unread != 6667 || len(bd.Recent) != 5 {
					b.Fatalf("%v %+v", err, bd)
				}
			}
		})
	}
}

// TestListLargeFolder checks paging of a 20,000-message folder end to end:
// pages do not overlap and together hold every message once.
func TestListLargeFolder(t *testing.T) {
	if testing.Short() {
		t.Skip("fills 20,000 rows")
	}
	e := newEnv(t, testdb.SQLiteURL(t), Config{})
	inbox := fillInbox(t, e, e.a, 20000)
	seen := map[uint32]bool{}
	for page := 1; ; page++ {
		lp, err := e.svc.List(ctx, e.a, ListQuery{FolderID: inbox, Page: page, PerPage: 200})
		if err != nil {
			t.Fatal(err)
		}
		if lp.Total != 20000 {
			t.Fatalf("total %d", lp.Total)
		}
		if len(lp.Items) == 0 {
			break
		}
		for i, it := range lp.Items {
			if seen[it.UID] {
				t.Fatalf("uid %d on two pages", it.UID)
			}
			seen[it.UID] = true
			if i > 0 && it.Date.After(lp.Items[i-1].Date) {
				t.Fatalf("page %d not newest first", page)
			}
		}
	}
	if len(seen) != 20000 {
		t.Errorf("%d messages seen", len(seen))
	}
}

// BenchmarkDeliverIndexCost measures what migration 00008's list indexes
// cost delivery: one message to 200 INBOXes per op, with them, with none,
// and with each one alone.
func BenchmarkDeliverIndexCost(b *testing.B) {
	all := []string{"date", "unseen"}
	for _, variant := range append([]string{"all", "none"}, all...) {
		b.Run(variant, func(b *testing.B) {
			e := newEnv(b, testdb.SQLiteURL(b), Config{})
			for _, ix := range all {
				if variant == "all" || variant == ix {
					continue
				}
				if _, err := e.store.DB().X.ExecContext(ctx, `DROP INDEX messages_webmail_`+ix); err != nil {
					b.Fatal(err)
				}
			}
			var in []mailcore.NewAccount
			for i := range 200 {
				in = append(in, mailcore.NewAccount{Address: fmt.Sprintf("u%d@gov.example", i)})
			}
			if _, err := e.store.ImportAccounts(ctx, in, mailcore.ImportOptions{}); err != nil {
				b.Fatal(err)
			}
			var rcpts []mailcore.Recipient
			for _, na := range in {
				a, err := e.store.AccountByAddress(ctx, na.Address)
				if err != nil {
					b.Fatal(err)
				}
				mb, err := e.store.MailboxByName(ctx, a.ID, "INBOX")
				if err != nil {
					b.Fatal(err)
				}
				rcpts = append(rcpts, mailcore.Recipient{AccountID: a.ID, MailboxID: mb.ID})
			}
			i := 0
			for b.Loop() {
				i++
				raw := fmt.Sprintf("From: a@gov.example\r\nSubject: 通知 %d\r\nMessage-ID: <d%d@x>\r\n\r\n%s\r\n", i, i, strings.Repeat("正文", 500))
				if _, err := e.store.Deliver(ctx, []byte(raw), rcpts, mailcore.DeliverOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
