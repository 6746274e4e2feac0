package imapserver

import (
	"context"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap"
	"github.com/emersion/go-imap/client"
	"github.com/govhub/govhub/internal/testdb"
	"github.com/govhub/govhub/mailcore"
)

func (e *env) goClient() *client.Client {
	e.t.Helper()
	c, err := client.DialTLS(e.tlsAddr, e.clientTLS)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	if err := c.Login(testUser, testPass); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// TestGoClientFetch checks FETCH items against RFC 9051 7.5.2: ENVELOPE
// from the row (decoded subject, address parts), sections and partials.
func TestGoClientFetch(t *testing.T) {
	e := newEnv(t, nil)
	e.deliver("=?UTF-8?B?5Lya6K6u6YCa55+l?=", "张三 <zhang@example.gov>", "0123456789abcdef")
	c := e.goClient()
	mb, err := c.Select("INBOX", false)
	if err != nil || mb.Messages != 1 || mb.UidValidity == 0 {
		t.Fatalf("select: %+v %v", mb, err)
	}
	sec := &imap.BodySectionName{BodyPartName: imap.BodyPartName{Specifier: imap.TextSpecifier}, Peek: true}
	partial := &imap.BodySectionName{Peek: true, Partial: []int{2, 5}}
	items := []imap.FetchItem{imap.FetchEnvelope, imap.FetchBodyStructure, imap.FetchRFC822Size, imap.FetchInternalDate, imap.FetchUid, sec.FetchItem(), partial.FetchItem()}
	ch := make(chan *imap.Message, 4)
	set := new(imap.SeqSet)
	set.AddNum(1)
	if err := c.Fetch(set, items, ch); err != nil {
		t.Fatal(err)
	}
	m := <-ch
	if m.Envelope.Subject != "会议通知" || len(m.Envelope.From) != 1 || m.Envelope.From[0].PersonalName != "张三" ||
		m.Envelope.From[0].MailboxName != "zhang" || m.Envelope.From[0].HostName != "example.gov" {
		t.Fatalf("envelope: %+v %+v", m.Envelope, m.Envelope.From[0])
	}
	if m.BodyStructure == nil || !strings.EqualFold(m.BodyStructure.MIMEType, "text") {
		t.Fatalf("bodystructure: %+v", m.BodyStructure)
	}
	body, _ := io.ReadAll(m.GetBody(sec))
	if string(body) != "0123456789abcdef\r\n" {
		t.Fatalf("BODY[TEXT] = %q", body)
	}
	part, _ := io.ReadAll(m.GetBody(partial))
	if string(part) != "om: =" && len(part) != 5 {
		t.Fatalf("partial = %q", part)
	}
	raw, _ := e.store.ReadMessage(context.Background(), e.inbox.ID, m.Uid)
	if string(part) != string(raw[2:7]) || m.Size != uint32(len(raw)) {
		t.Fatalf("partial %q, want %q; size %d want %d", part, raw[2:7], m.Size, len(raw))
	}
}

// TestIdleOtherProcess: a delivery by a second Store on the same database
// (another govhub process) reaches a session in IDLE through the outbox
// poller (RFC 2177: EXISTS while idling).
func TestIdleOtherProcess(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			url := b.URL(t)
			e := newEnvOn(t, url, nil)
			other := openStore(t, url)
			c := e.goClient()
			if _, err := c.Select("INBOX", false); err != nil {
				t.Fatal(err)
			}
			updates := make(chan client.Update, 10)
			c.Updates = updates
			stop := make(chan struct{})
			done := make(chan error, 1)
			go func() { done <- c.Idle(stop, nil) }()
			time.Sleep(200 * time.Millisecond)
			raw := "From: x@example.gov\r\nSubject: other process\r\n\r\nhi\r\n"
			if _, err := other.Deliver(context.Background(), []byte(raw), []mailcore.Recipient{{AccountID: e.acct.ID, MailboxID: e.inbox.ID}}, mailcore.DeliverOptions{}); err != nil {
				t.Fatal(err)
			}
			timeout := time.After(10 * time.Second)
			for {
				select {
				case u := <-updates:
					if mu, ok := u.(*client.MailboxUpdate); ok && mu.Mailbox.Messages == 1 {
						close(stop)
						if err := <-done; err != nil {
							t.Fatal(err)
						}
						return
					}
				case <-timeout:
					t.Fatal("IDLE not woken by a delivery from another store")
				}
			}
		})
	}
}

// TestExpungeSeenByOtherSession: EXPUNGE in one session is reported with
// correct sequence numbers in another at NOOP (RFC 9051 7.5.1).
func TestExpungeSeenByOtherSession(t *testing.T) {
	e := newEnv(t, nil)
	for i := 0; i < 5; i++ {
		e.deliver("m", "a@example.gov", "x")
	}
	a, b := e.dialTLS(), e.dialTLS()
	a.login()
	b.login()
	a.cmd("s", "SELECT INBOX")
	b.cmd("s", "SELECT INBOX")
	a.cmd("f", "STORE 2,4 +FLAGS.SILENT (\\Deleted)")
	untagged, st := a.cmd("x", "EXPUNGE")
	if !strings.HasPrefix(st, "x OK") || strings.Join(untagged, "|") != "* 4 EXPUNGE|* 2 EXPUNGE" && strings.Join(untagged, "|") != "* 2 EXPUNGE|* 3 EXPUNGE" {
		t.Fatalf("expunge: %q %q", untagged, st)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		untagged, _ := b.cmd("n", "NOOP")
		if len(untagged) > 0 {
			got := strings.Join(untagged, "|")
			if got != "* 2 EXPUNGE|* 3 EXPUNGE" && got != "* 4 EXPUNGE|* 2 EXPUNGE" {
				t.Fatalf("other session: %q", got)
			}
			untagged, _ = b.cmd("c", "UID SEARCH ALL")
			if untagged[0] != "* SEARCH 1 3 5" {
				t.Fatalf("after expunge: %q", untagged)
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("other session never told of the expunge")
}

// TestQuotaAppend: APPEND over quota is NO [OVERQUOTA] (RFC 9208 4.3).
func TestQuotaAppend(t *testing.T) {
	e := newEnv(t, nil)
	if _, err := e.store.UpdateAccount(context.Background(), e.acct.ID, func(a mailcore.Account) (mailcore.Account, error) {
		a.QuotaBytes = 100
		return a, nil
	}); err != nil {
		t.Fatal(err)
	}
	c := e.dialTLS()
	c.login()
	msg := strings.Repeat("x", 200)
	c.send("a APPEND INBOX {200+}\r\n" + msg + "\r\n")
	if l := c.expect("a "); !strings.HasPrefix(l, "a NO [OVERQUOTA]") {
		t.Fatalf("append over quota: %q", l)
	}
	untagged, _ := c.cmd("q", "GETQUOTAROOT INBOX")
	if strings.Join(untagged, "|") != `* QUOTAROOT "INBOX" ""|* QUOTA "" (STORAGE 0 0)` {
		t.Fatalf("quota: %q", untagged)
	}
}

// TestUIDPlus: UID EXPUNGE removes only \Deleted messages in the set
// (RFC 4315 2.1); COPYUID and APPENDUID carry the destination UIDVALIDITY.
func TestUIDPlus(t *testing.T) {
	e := newEnv(t, nil)
	for i := 0; i < 3; i++ {
		e.deliver("m", "a@example.gov", "x")
	}
	c := e.dialTLS()
	c.login()
	c.cmd("s", "SELECT INBOX")
	c.cmd("f", "STORE 1:3 +FLAGS.SILENT (\\Deleted)")
	untagged, st := c.cmd("u", "UID EXPUNGE 2")
	if strings.Join(untagged, "|") != "* 2 EXPUNGE" || !strings.HasPrefix(st, "u OK") {
		t.Fatalf("UID EXPUNGE: %q %q", untagged, st)
	}
	arch, _ := e.store.MailboxByName(context.Background(), e.acct.ID, "Archive")
	_, st = c.cmd("c", "UID COPY 1,3 Archive")
	if want := "c OK [COPYUID " + itoa(arch.UIDValidity) + " 1,3 1:2]"; !strings.HasPrefix(st, want) {
		t.Fatalf("COPYUID: %q want %q", st, want)
	}
	untagged, st = c.cmd("m", "UID MOVE 3 Archive")
	if len(untagged) != 2 || !strings.HasPrefix(untagged[0], "* OK [COPYUID "+itoa(arch.UIDValidity)+" 3 3]") || untagged[1] != "* 2 EXPUNGE" {
		t.Fatalf("MOVE: %q %q", untagged, st)
	}
	_, st = c.cmd("n", "COPY 1 Nonexistent")
	if !strings.HasPrefix(st, "n NO [TRYCREATE]") {
		t.Fatalf("COPY to missing: %q", st)
	}
	// COPY shares the body: no second blob row.
	var blobs int
	e.store.DB().X.Get(&blobs, `SELECT COUNT(*) FROM blobs`)
	if blobs != 3 {
		t.Fatalf("blobs = %d, want 3 (COPY and MOVE must not write bodies)", blobs)
	}
}

func itoa(u uint32) string { return strconv.FormatUint(uint64(u), 10) }

// TestFlagsFromElsewhere: a flag change made outside the session — by
// webmail, or by another govhub process sharing the database (a second
// Store here) — reaches a session at its next NOOP as FETCH (FLAGS)
// (RFC 9051 7.5.2), while a session's own STORE is not played back to it.
func TestFlagsFromElsewhere(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			url := b.URL(t)
			e := newEnvOn(t, url, nil)
			for i := 0; i < 3; i++ {
				e.deliver("m", "a@example.gov", "x")
			}
			other := openStore(t, url)
			a, c := e.dialTLS(), e.dialTLS()
			a.login()
			c.login()
			a.cmd("s", "SELECT INBOX")
			c.cmd("s", "SELECT INBOX")
			if _, err := other.StoreFlags(context.Background(), e.inbox.ID, []uint32{2}, mailcore.FlagsAdd, mailcore.FlagSeen|mailcore.FlagFlagged); err != nil {
				t.Fatal(err)
			}
			// a's own change: answered by its STORE, never repeated.
			if untagged, st := a.cmd("st", "UID STORE 3 +FLAGS.SILENT (\\Answered)"); !strings.HasPrefix(st, "st OK") || len(untagged) != 0 {
				t.Fatalf("silent store: %q %q", untagged, st)
			}
			wantA := map[string]bool{}
			wantC := map[string]bool{}
			deadline := time.Now().Add(5 * time.Second)
			for time.Now().Before(deadline) && (len(wantA) == 0 || len(wantC) < 2) {
				time.Sleep(100 * time.Millisecond)
				for _, u := range first(a.cmd("n", "NOOP")) {
					wantA[u] = true
				}
				for _, u := range first(c.cmd("n", "NOOP")) {
					wantC[u] = true
				}
			}
			seenFlagged := func(m map[string]bool) bool {
				for u := range m {
					if strings.HasPrefix(u, "* 2 FETCH") && strings.Contains(u, `\Seen`) && strings.Contains(u, `\Flagged`) {
						return true
					}
				}
				return false
			}
			if !seenFlagged(wantA) || !seenFlagged(wantC) {
				t.Fatalf("the other store's change did not reach the sessions: a %v, c %v", wantA, wantC)
			}
			for u := range wantA {
				if strings.HasPrefix(u, "* 3 FETCH") {
					t.Fatalf("a heard its own STORE back: %q", u)
				}
			}
			answered := false
			for u := range wantC {
				answered = answered || strings.HasPrefix(u, "* 3 FETCH") && strings.Contains(u, `\Answered`)
			}
			if !answered {
				t.Fatalf("c did not hear a's STORE: %v", wantC)
			}
		})
	}
}

func first(untagged []string, _ string) []string { return untagged }
