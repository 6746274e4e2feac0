package imapserver

import (
	"strings"
	"testing"
	"time"

	"github.com/govhub/govhub/internal/testdb"
)

// TestSQLOnBackends runs the package's own SQL (SEARCH, keywords, row
// loading, STATUS, EXPUNGE) on SQLite and, when configured, PostgreSQL.
func TestSQLOnBackends(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			e := newEnvOn(t, b.URL(t), nil)
			e.deliver("=?UTF-8?B?5Lya6K6u6YCa55+l?=", "Dept <dept@example.gov>", "x")       // 会议通知
			e.deliver("Lunch 100% off_sale", "Bob <BOB@Example.org>", "the budget is here") // LIKE metacharacters
			e.deliver("Other", "carol@example.gov", "y")
			c := e.dialTLS()
			c.login()
			c.cmd("s", "SELECT INBOX")
			check := func(cmdline, want string) {
				t.Helper()
				untagged, st := c.cmd("q", cmdline)
				if !strings.HasPrefix(st, "q OK") {
					t.Fatalf("%s: %s", cmdline, st)
				}
				got := ""
				for _, u := range untagged {
					if strings.HasPrefix(u, "* SEARCH") {
						got = strings.TrimSpace(strings.TrimPrefix(u, "* SEARCH"))
					}
				}
				if got != want {
					t.Fatalf("%s = %q, want %q", cmdline, got, want)
				}
			}
			// Chinese term as a UTF-8 literal.
			c.send("q UID SEARCH CHARSET UTF-8 SUBJECT {6}\r\n")
			c.expect("+")
			c.send("通知\r\n")
			if l := c.expect("* SEARCH"); l != "* SEARCH 1" {
				t.Fatalf("SUBJECT 通知: %q", l)
			}
			c.expect("q OK")
			// GB2312 (as GBK) "通知" is 0xCD 0xA8 0xD6 0xAA.
			c.send("q SEARCH CHARSET GB2312 SUBJECT {4}\r\n")
			c.expect("+")
			c.send("\xcd\xa8\xd6\xaa\r\n")
			if l := c.expect("* SEARCH"); l != "* SEARCH 1" {
				t.Fatalf("GB2312 SUBJECT: %q", l)
			}
			c.expect("q OK")
			if _, st := c.cmd("q", "SEARCH CHARSET X-NOPE SUBJECT a"); !strings.HasPrefix(st, "q NO [BADCHARSET]") {
				t.Fatalf("unknown charset: %q", st)
			}
			check("SEARCH FROM bob@example.ORG", "2")
			check(`SEARCH SUBJECT "100%"`, "2")
			check(`SEARCH SUBJECT "o_f"`, "")
			check(`SEARCH SUBJECT "%"`, "2")
			check("SEARCH NOT FROM bob", "1 3")
			check("SEARCH OR FROM dept FROM carol", "1 3")
			check("SEARCH LARGER 1 SMALLER 100000 UID 2:*", "2 3")
			check("SEARCH TEXT budget", "2")
			check("SEARCH HEADER X-Unknown foo", "")
			c.cmd("st", "STORE 1,3 +FLAGS (\\Answered Urgent)")
			check("SEARCH KEYWORD urgent", "1 3")
			check("SEARCH ANSWERED UNKEYWORD Urgent", "")
			check("SEARCH UNANSWERED", "2")
			c.cmd("st", "STORE 3 -FLAGS (Urgent)")
			check("SEARCH KEYWORD Urgent", "1")
			untagged, _ := c.cmd("f", "FETCH 1:* (FLAGS)")
			if len(untagged) != 3 || !strings.Contains(untagged[0], "urgent") || !strings.Contains(untagged[0], `\Answered`) {
				t.Fatalf("flags: %q", untagged)
			}
			untagged, _ = c.cmd("st", "STATUS INBOX (MESSAGES UNSEEN UIDNEXT UIDVALIDITY RECENT)")
			if len(untagged) != 1 || !strings.Contains(untagged[0], "MESSAGES 3") || !strings.Contains(untagged[0], "UNSEEN 3") || !strings.Contains(untagged[0], "UIDNEXT 4") {
				t.Fatalf("status: %q", untagged)
			}
			c.cmd("d", "STORE 2 +FLAGS.SILENT (\\Deleted)")
			untagged, _ = c.cmd("x", "EXPUNGE")
			if strings.Join(untagged, "|") != "* 2 EXPUNGE" {
				t.Fatalf("expunge: %q", untagged)
			}
			check("UID SEARCH ALL", "1 3")
		})
	}
}

// TestPollerOutOfOrderCommit: on PostgreSQL an outbox id can become
// visible after a larger one (sequence values are taken at INSERT, rows
// seen at COMMIT). The poller must still deliver it.
func TestPollerOutOfOrderCommit(t *testing.T) {
	var pg *testdb.Backend
	for _, b := range testdb.Backends(t) {
		if b.Name == "postgres" {
			pg = &b
		}
	}
	if pg == nil {
		t.Skip("GOVHUB_TEST_POSTGRES not set: needs concurrent writers")
	}
	e := newEnvOn(t, pg.URL(t), nil)
	e.deliver("one", "a@example.gov", "x")
	e.deliver("two", "a@example.gov", "x")
	c := e.dialTLS()
	c.login()
	c.cmd("s", "SELECT INBOX")
	c.send("i IDLE\r\n")
	c.expect("+")
	db := e.store.DB()
	tx, err := db.X.Beginx()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	// Takes the next id, invisible until commit: an expunge event of uid 1
	// (the row stays; only the event matters to the poller).
	if _, err := tx.Exec(db.Rebind(`INSERT INTO outbox (kind, account_id, mailbox_id, uid) VALUES (2, ?, ?, 1)`), e.acct.ID, e.inbox.ID); err != nil {
		t.Fatal(err)
	}
	e.deliver("three", "a@example.gov", "x") // a larger id, committed first
	if l := c.expect("* 3 EXISTS"); l == "" {
		t.Fatal("no EXISTS")
	}
	time.Sleep(300 * time.Millisecond) // several poll ticks past the larger id
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if l := c.expect("* 1 EXPUNGE"); l != "* 1 EXPUNGE" {
		t.Fatalf("late event: %q", l)
	}
	c.send("DONE\r\n")
	c.expect("i OK")
}
