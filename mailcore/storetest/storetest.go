// Package storetest is the mail store's conformance suite: the same tests
// run against every metadata backend (SQLite always, PostgreSQL when
// GOVHUB_TEST_POSTGRES is set) and every BlobStore. Each subtest gets a
// fresh, empty store from the open function.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/govhub/govhub/mailcore"
)

// Open returns a fresh store whose DB and Blobs the function fills in; the
// other fields of opts (clock, quota) come from the test.
type Open func(t *testing.T, opts mailcore.Options) *mailcore.Store

// Run runs the whole suite.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Open)
	}{
		{"Accounts", testAccounts},
		{"Import", testImport},
		{"Aliases", testAliases},
		{"MailboxNames", testMailboxNames},
		{"Mailboxes", testMailboxes},
		{"Deliver", testDeliver},
		{"SingleInstance", testSingleInstance},
		{"OverQuota", testOverQuota},
		{"UnknownMailbox", testUnknownMailbox},
		{"TooLarge", testTooLarge},
		{"ConcurrentDeliveries", testConcurrent},
		{"Flags", testFlags},
		{"CopyMove", testCopyMove},
		{"ExpungePurge", testExpungePurge},
		{"PurgeRace", testPurgeRace},
		{"DeleteMailbox", testDeleteMailbox},
		{"RenameInbox", testRenameInbox},
		{"Fsck", testFsck},
		{"DeliverAfterClose", testDeliverAfterClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

var ctx = context.Background()

// clock is an injectable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newClock() *clock { return &clock{t: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)} }

func mustAccount(t *testing.T, s *mailcore.Store, addr string, quota int64) (mailcore.Account, mailcore.Recipient) {
	t.Helper()
	if _, err := s.CreateAccount(ctx, mailcore.NewAccount{Address: addr, DisplayName: "测试 " + addr, QuotaBytes: quota}); err != nil {
		t.Fatalf("create %s: %v", addr, err)
	}
	a, r, err := s.ResolveRecipient(ctx, addr)
	if err != nil {
		t.Fatalf("resolve %s: %v", addr, err)
	}
	return a, r
}

// message builds a small RFC 5322 message; n makes it distinct.
func message(n int, subject string) []byte {
	return []byte(fmt.Sprintf("From: =?UTF-8?B?5byg5LiJ?= <zhangsan@gov.example>\r\nTo: staff@gov.example\r\nSubject: %s\r\nMessage-ID: <m%d@gov.example>\r\nDate: Thu, 03 Dec 2026 09:00:00 +0800\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n请各单位于本周五前报送材料。 number %d\r\n", subject, n, n))
}

func deliverOK(t *testing.T, s *mailcore.Store, raw []byte, rcpts ...mailcore.Recipient) []mailcore.DeliveryResult {
	t.Helper()
	res, err := s.Deliver(ctx, raw, rcpts, mailcore.DeliverOptions{})
	if err != nil {
		t.Fatalf("deliver: %v", err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("deliver to %+v: %v", r.Recipient, r.Err)
		}
	}
	return res
}

func fsckClean(t *testing.T, s *mailcore.Store) {
	t.Helper()
	rep, err := s.Fsck(ctx, mailcore.FsckOptions{Deep: true})
	if err != nil {
		t.Fatalf("fsck: %v", err)
	}
	if !rep.Clean() {
		t.Fatalf("fsck found problems: %+v", rep.Problems)
	}
}

func blobRow(t *testing.T, s *mailcore.Store, raw []byte) (refs int64, deadAt *int64, exists bool) {
	t.Helper()
	id := mailcore.BlobIDOf(raw)
	var rows []struct {
		Refs   int64  `db:"refs"`
		DeadAt *int64 `db:"dead_at"`
	}
	if err := s.DB().X.SelectContext(ctx, &rows, s.DB().Rebind(`SELECT refs, dead_at FROM blobs WHERE sha = ?`), id[:]); err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 {
		return 0, nil, false
	}
	return rows[0].Refs, rows[0].DeadAt, true
}

func testAccounts(t *testing.T, open Open) {
	s := open(t, mailcore.Options{})
	a, err := s.CreateAccount(ctx, mailcore.NewAccount{Address: "Li.Si@Gov.Example", DisplayName: "李四", PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Address != "li.si@gov.example" || a.QuotaBytes != mailcore.DefaultQuota || a.Status != mailcore.StatusActive || !a.HasPassword() {
		t.Fatalf("account = %+v", a)
	}
	if _, err := s.CreateAccount(ctx, mailcore.NewAccount{Address: "LI.SI@gov.example"}); !errors.Is(err, mailcore.ErrExists) {
		t.Fatalf("duplicate: err = %v, want ErrExists", err)
	}
	for _, bad := range []string{"", "nobody", "@gov.example", "a@", "a b@gov.example", "a@gov..example", "a@-gov.example", "a<b@gov.example"} {
		if _, err := s.CreateAccount(ctx, mailcore.NewAccount{Address: bad}); !errors.Is(err, mailcore.ErrInvalidAddress) {
			t.Errorf("address %q: err = %v, want ErrInvalidAddress", bad, err)
		}
	}
	sso, err := s.CreateAccount(ctx, mailcore.NewAccount{Address: "wangwu@gov.example", QuotaBytes: 5 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if sso.HasPassword() || sso.QuotaBytes != 5<<20 {
		t.Fatalf("sso account = %+v", sso)
	}
	if ok, _ := s.IsLocalDomain(ctx, "GOV.example"); !ok {
		t.Fatal("gov.example should be local after creating an account in it")
	}
	if ok, _ := s.IsLocalDomain(ctx, "elsewhere.example"); ok {
		t.Fatal("elsewhere.example is not local")
	}
	up, err := s.UpdateAccount(ctx, sso.ID, func(old mailcore.Account) (mailcore.Account, error) {
		old.Status = mailcore.StatusDisabled
		old.QuotaBytes = 0
		return old, nil
	})
	if err != nil || up.Status != mailcore.StatusDisabled || up.QuotaBytes != 0 {
		t.Fatalf("update = %+v, %v", up, err)
	}
	left, err := s.UpdateAccount(ctx, sso.ID, func(old mailcore.Account) (mailcore.Account, error) {
		old.Status = mailcore.StatusLeft
		return old, nil
	})
	if err != nil || left.LeftAt == nil {
		t.Fatalf("left: %+v %v", left, err)
	}
	if got, _ := s.Account(ctx, sso.ID); got.LeftAt == nil || *got.LeftAt != *left.LeftAt {
		t.Fatalf("left_at not stored: %+v", got)
	}
	if back, _ := s.UpdateAccount(ctx, sso.ID, func(old mailcore.Account) (mailcore.Account, error) {
		old.Status = mailcore.StatusActive
		return old, nil
	}); back.LeftAt != nil {
		t.Fatalf("left_at kept after return: %+v", back)
	}
	if _, err := s.UpdateAccount(ctx, sso.ID, func(old mailcore.Account) (mailcore.Account, error) {
		old.Status = "gone"
		return old, nil
	}); err == nil {
		t.Fatal("bad status accepted")
	}
	list, err := s.ListAccounts(ctx, "", 1)
	if err != nil || len(list) != 1 || list[0].Address != "li.si@gov.example" {
		t.Fatalf("page 1 = %+v, %v", list, err)
	}
	list, err = s.ListAccounts(ctx, list[0].Address, 10)
	if err != nil || len(list) != 1 || list[0].Address != "wangwu@gov.example" {
		t.Fatalf("page 2 = %+v, %v", list, err)
	}
}

func testImport(t *testing.T, open Open) {
	s := open(t, mailcore.Options{})
	var in []mailcore.NewAccount
	for i := 0; i < 1200; i++ {
		in = append(in, mailcore.NewAccount{Address: fmt.Sprintf("user%04d@dept%d.gov.example", i, i%3), DisplayName: fmt.Sprintf("用户%d", i)})
	}
	in = append(in, mailcore.NewAccount{Address: "bad address"}, mailcore.NewAccount{Address: "user0001@dept1.gov.example"})
	res, err := s.ImportAccounts(ctx, in, mailcore.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Created != 1200 || len(res.Errors) != 2 {
		t.Fatalf("result = created %d, errors %+v", res.Created, res.Errors)
	}
	if res.Errors[0].Index != 1200 || res.Errors[1].Index != 1201 || !errors.Is(res.Errors[1].Err, mailcore.ErrExists) {
		t.Fatalf("errors = %+v", res.Errors)
	}
	a, err := s.AccountByAddress(ctx, "user1199@dept2.gov.example")
	if err != nil {
		t.Fatal(err)
	}
	mbs, err := s.Mailboxes(ctx, a.ID)
	if err != nil || len(mbs) != len(mailcore.DefaultMailboxes) {
		t.Fatalf("mailboxes = %+v, %v", mbs, err)
	}
	// Importing again: duplicates are reported, or updated on request.
	res, err = s.ImportAccounts(ctx, in[:10], mailcore.ImportOptions{})
	if err != nil || res.Created != 0 || len(res.Errors) != 10 {
		t.Fatalf("re-import = %+v, %v", res, err)
	}
	in[0].DisplayName = "改名"
	res, err = s.ImportAccounts(ctx, in[:1], mailcore.ImportOptions{UpdateExisting: true})
	if err != nil || res.Updated != 1 {
		t.Fatalf("update import = %+v, %v", res, err)
	}
	a, _ = s.AccountByAddress(ctx, in[0].Address)
	if a.DisplayName != "改名" {
		t.Fatalf("display name = %q", a.DisplayName)
	}
	fsckClean(t, s)
}

func testAliases(t *testing.T, open Open) {
	s := open(t, mailcore.Options{})
	a, _ := mustAccount(t, s, "zhang.san@gov.example", 0)
	if err := s.AddAlias(ctx, "office@gov.example", a.Address); err != nil {
		t.Fatal(err)
	}
	if err := s.AddAlias(ctx, "office@gov.example", a.Address); !errors.Is(err, mailcore.ErrExists) {
		t.Fatalf("duplicate alias: %v", err)
	}
	if err := s.AddAlias(ctx, a.Address, a.Address); !errors.Is(err, mailcore.ErrExists) {
		t.Fatalf("alias equal to an account: %v", err)
	}
	for _, addr := range []string{"zhang.san@gov.example", "Office@GOV.example", "zhang.san+news@gov.example", "office+x@gov.example"} {
		got, r, err := s.ResolveRecipient(ctx, addr)
		if err != nil || got.ID != a.ID || r.MailboxID == 0 {
			t.Errorf("resolve %s = %+v %+v %v", addr, got, r, err)
		}
	}
	if _, _, err := s.ResolveRecipient(ctx, "nobody@gov.example"); !errors.Is(err, mailcore.ErrNotFound) {
		t.Fatalf("unknown recipient: %v", err)
	}
}

func testMailboxNames(t *testing.T, open Open) {
	good := map[string]string{
		"INBOX": "INBOX", "inbox": "INBOX", "Inbox/Sub": "INBOX/Sub", "工作/2026/通知": "工作/2026/通知", "a b": "a b",
	}
	for in, want := range good {
		got, err := mailcore.CleanMailboxName(in)
		if err != nil || got != want {
			t.Errorf("CleanMailboxName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	deep := "a"
	for i := 0; i < 20; i++ {
		deep += "/a"
	}
	for _, bad := range []string{"", "/", "a/", "/a", "a//b", "..", "a/../b", ".", "a\x00b", "a\rb", "a*", "a%b", "\xff", " a", deep, string(make([]byte, 2000))} {
		if _, err := mailcore.CleanMailboxName(bad); !errors.Is(err, mailcore.ErrInvalidMailboxName) {
			t.Errorf("CleanMailboxName(%q) = %v, want ErrInvalidMailboxName", bad, err)
		}
	}
}

func testMailboxes(t *testing.T, open Open) {
	s := open(t, mailcore.Options{})
	a, _ := mustAccount(t, s, "mb@gov.example", 0)
	mbs, err := s.Mailboxes(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	uses := map[string]string{}
	vals := map[uint32]bool{}
	for _, m := range mbs {
		uses[m.Name] = m.SpecialUse
		vals[m.UIDValidity] = true
		if m.UIDNext != 1 || m.UIDValidity == 0 {
			t.Errorf("new mailbox %+v", m)
		}
	}
	want := map[string]string{"INBOX": "", "Drafts": `\Drafts`, "Sent": `\Sent`, "Trash": `\Trash`, "Junk": `\Junk`, "Archive": `\Archive`}
	for n, u := range want {
		if got, ok := uses[n]; !ok || got != u {
			t.Errorf("mailbox %s: special-use %q (present %v), want %q", n, got, ok, u)
		}
	}
	if len(vals) != len(mbs) {
		t.Errorf("UIDVALIDITY values not distinct: %v", vals)
	}
	if _, err := s.CreateMailbox(ctx, a.ID, "项目/2026/一季度", ""); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"项目", "项目/2026"} {
		if _, err := s.MailboxByName(ctx, a.ID, n); err != nil {
			t.Errorf("parent %s not created: %v", n, err)
		}
	}
	if _, err := s.CreateMailbox(ctx, a.ID, "项目/2026/一季度", ""); !errors.Is(err, mailcore.ErrExists) {
		t.Fatalf("duplicate create: %v", err)
	}
	if _, err := s.CreateMailbox(ctx, a.ID, "a/../b", ""); !errors.Is(err, mailcore.ErrInvalidMailboxName) {
		t.Fatalf("bad name: %v", err)
	}
	old, _ := s.MailboxByName(ctx, a.ID, "项目/2026/一季度")
	if err := s.RenameMailbox(ctx, a.ID, "项目", "归档项目"); err != nil {
		t.Fatal(err)
	}
	moved, err := s.MailboxByName(ctx, a.ID, "归档项目/2026/一季度")
	if err != nil || moved.ID != old.ID || moved.UIDValidity != old.UIDValidity {
		t.Fatalf("renamed child = %+v, %v (was %+v)", moved, err, old)
	}
	if _, err := s.MailboxByName(ctx, a.ID, "项目"); !errors.Is(err, mailcore.ErrNotFound) {
		t.Fatalf("old name still there: %v", err)
	}
	if err := s.DeleteMailbox(ctx, a.ID, "归档项目"); !errors.Is(err, mailcore.ErrHasChildren) {
		t.Fatalf("delete with children: %v", err)
	}
	if err := s.DeleteMailbox(ctx, a.ID, "INBOX"); !errors.Is(err, mailcore.ErrSpecialMailbox) {
		t.Fatalf("delete INBOX: %v", err)
	}
	// A recreated name gets a new UIDVALIDITY (RFC 3501 2.3.1.1).
	if err := s.DeleteMailbox(ctx, a.ID, "归档项目/2026/一季度"); err != nil {
		t.Fatal(err)
	}
	again, err := s.CreateMailbox(ctx, a.ID, "归档项目/2026/一季度", "")
	if err != nil || again.UIDValidity == old.UIDValidity {
		t.Fatalf("recreated = %+v, %v; old uidvalidity %d", again, err, old.UIDValidity)
	}
}

func testDeliver(t *testing.T, open Open) {
	s := open(t, mailcore.Options{})
	a, r := mustAccount(t, s, "reader@gov.example", 0)
	raw := message(1, "=?GB2312?B?udjT2tXZv6rIq8qhuaTX97vh0um1xM2o1qo=?=")
	res := deliverOK(t, s, raw, r)
	if res[0].UID != 1 {
		t.Fatalf("first uid = %d", res[0].UID)
	}
	res2 := deliverOK(t, s, message(2, "second"), r)
	if res2[0].UID != 2 || res2[0].ModSeq <= res[0].ModSeq {
		t.Fatalf("second = %+v after %+v", res2[0], res[0])
	}
	m, err := s.Message(ctx, r.MailboxID, 1)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "关于召开全省工作会议的通知" {
		t.Errorf("subject = %q", m.Subject)
	}
	if m.MessageID != "m1@gov.example" || m.Size != int64(len(raw)) || m.SentDate == 0 {
		t.Errorf("row = %+v", m)
	}
	from := mailcore.ParseAddresses(m.From)
	if len(from) != 1 || from[0].Name != "张三" || from[0].Addr != "zhangsan@gov.example" {
		t.Errorf("from = %q -> %+v", m.From, from)
	}
	if m.Preview == "" || !bytes.Contains([]byte(m.Preview), []byte("请各单位")) {
		t.Errorf("preview = %q", m.Preview)
	}
	got, err := s.ReadMessage(ctx, r.MailboxID, 1)
	if err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("read back differs: %v", err)
	}
	acct, _ := s.Account(ctx, a.ID)
	if acct.UsedBytes != int64(len(raw)+len(message(2, "second"))) {
		t.Errorf("used = %d", acct.UsedBytes)
	}
	mb, _ := s.Mailbox(ctx, r.MailboxID)
	if mb.UIDNext != 3 {
		t.Errorf("uidnext = %d", mb.UIDNext)
	}
	ev, err := s.Events(ctx, 0, 10)
	if err != nil || len(ev) != 2 || ev[0].Kind != mailcore.EventDelivered || ev[0].AccountID != a.ID || ev[0].UID != 1 {
		t.Fatalf("events = %+v, %v", ev, err)
	}
	counts, _ := s.Counts(ctx, r.MailboxID)
	if counts.Messages != 2 || counts.Unseen != 2 {
		t.Errorf("counts = %+v", counts)
	}
	// Malformed mail is stored as it is; the envelope is best effort.
	junk := []byte("this is not\x00 a message\nSubject: ?\n\n--broken\n")
	deliverOK(t, s, junk, r)
	got, _ = s.ReadMessage(ctx, r.MailboxID, 3)
	if !bytes.Equal(got, junk) {
		t.Fatal("malformed message not stored byte-identical")
	}
	fsckClean(t, s)
}

func testSingleInstance(t *testing.T, open Open) {
	s := open(t, mailcore.Options{})
	var rcpts []mailcore.Recipient
	for i := 0; i < 300; i++ {
		_, r := mustAccountQuiet(t, s, fmt.Sprintf("staff%03d@gov.example", i))
		rcpts = append(rcpts, r)
	}
	raw := message(7, "全体通知")
	deliverOK(t, s, raw, rcpts...)
	deliverOK(t, s, raw, rcpts[:10]...) // the same bytes again: still one body
	refs, dead, ok := blobRow(t, s, raw)
	if !ok || refs != 310 || dead != nil {
		t.Fatalf("blob row refs=%d dead=%v exists=%v", refs, dead, ok)
	}
	var nblobs int
	s.DB().X.GetContext(ctx, &nblobs, `SELECT COUNT(*) FROM blobs`)
	if nblobs != 1 {
		t.Fatalf("%d blob rows, want 1", nblobs)
	}
	n := 0
	s.Blobs().Walk(ctx, func(mailcore.BlobID, int64) error { n++; return nil })
	if n != 1 {
		t.Fatalf("blob store holds %d bodies, want 1", n)
	}
	fsckClean(t, s)
}

func mustAccountQuiet(t *testing.T, s *mailcore.Store, addr string) (mailcore.Account, mailcore.Recipient) {
	return mustAccount(t, s, addr, 0)
}

func testOverQuota(t *testing.T, open Open) {
	s := open(t, mailcore.Options{})
	raw := message(1, "quota")
	small, rs := mustAccount(t, s, "small@gov.example", int64(len(raw))+10)
	_, rb := mustAccount(t, s, "big@gov.example", 0)
	deliverOK(t, s, raw, rs) // fits
	res, err := s.Deliver(ctx, message(2, "quota"), []mailcore.Recipient{rs, rb}, mailcore.DeliverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(res[0].Err, mailcore.ErrQuotaExceeded) || !mailcore.IsTemporary(res[0].Err) {
		t.Fatalf("over-quota recipient: %v", res[0].Err)
	}
	if res[1].Err != nil || res[1].UID != 1 {
		t.Fatalf("other recipient: %+v", res[1])
	}
	a, _ := s.Account(ctx, small.ID)
	if a.UsedBytes != int64(len(raw)) {
		t.Fatalf("used = %d, want %d", a.UsedBytes, len(raw))
	}
	// Everyone over quota: nothing delivered, the body is dead, fsck clean.
	res, err = s.Deliver(ctx, message(3, "quota"), []mailcore.Recipient{rs}, mailcore.DeliverOptions{})
	if err != nil || !errors.Is(res[0].Err, mailcore.ErrQuotaExceeded) {
		t.Fatalf("all over quota: %+v %v", res, err)
	}
	refs, dead, ok := blobRow(t, s, message(3, "quota"))
	if !ok || refs != 0 || dead == nil {
		t.Fatalf("undelivered body row: refs=%d dead=%v ok=%v", refs, dead, ok)
	}
	fsckClean(t, s)
}

func testUnknownMailbox(t *testing.T, open Open) {
	s := open(t, mailcore.Options{})
	a, r := mustAccount(t, s, "one@gov.example", 0)
	_, r2 := mustAccount(t, s, "two@gov.example", 0)
	res, err := s.Deliver(ctx, message(1, "x"), []mailcore.Recipient{{AccountID: a.ID, MailboxID: 999999}, {AccountID: a.ID, MailboxID: r2.MailboxID}, r}, mailcore.DeliverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(res[0].Err, mailcore.ErrNotFound) || !errors.Is(res[1].Err, mailcore.ErrNotFound) || res[2].Err != nil {
		t.Fatalf("results = %+v", res)
	}
	fsckClean(t, s)
}

func testTooLarge(t *testing.T, open Open) {
	s := open(t, mailcore.Options{MaxMessageSize: 1000})
	_, r := mustAccount(t, s, "one@gov.example", 0)
	if _, err := s.Deliver(ctx, bytes.Repeat([]byte("x"), 1001), []mailcore.Recipient{r}, mailcore.DeliverOptions{}); !errors.Is(err, mailcore.ErrTooLarge) {
		t.Fatalf("err = %v", err)
	}
}

func testConcurrent(t *testing.T, open Open) {
	s := open(t, mailcore.Options{})
	var rcpts []mailcore.Recipient
	for i := 0; i < 5; i++ {
		_, r := mustAccount(t, s, fmt.Sprintf("c%d@gov.example", i), 0)
		rcpts = append(rcpts, r)
	}
	const workers, each = 20, 15
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				n := w*each + i
				res, err := s.Deliver(ctx, message(n, "并发"), []mailcore.Recipient{rcpts[n%5], rcpts[(n+1)%5]}, mailcore.DeliverOptions{})
				if err == nil {
					for _, r := range res {
						if r.Err != nil {
							err = r.Err
						}
					}
				}
				if err != nil {
					errs <- err
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := 0
	for _, r := range rcpts {
		ms, err := s.Messages(ctx, r.MailboxID, 0, 10000)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range ms {
			if m.UID != uint32(i+1) {
				t.Fatalf("mailbox %d: uids not 1..n: %d at %d", r.MailboxID, m.UID, i)
			}
		}
		total += len(ms)
	}
	if total != workers*each*2 {
		t.Fatalf("%d rows, want %d", total, workers*each*2)
	}
	fsckClean(t, s)
}

func testFlags(t *testing.T, open Open) {
	s := open(t, mailcore.Options{})
	_, r := mustAccount(t, s, "f@gov.example", 0)
	for i := 0; i < 3; i++ {
		deliverOK(t, s, message(i, "flags"), r)
	}
	before, _ := s.Mailbox(ctx, r.MailboxID)
	ms, err := s.StoreFlags(ctx, r.MailboxID, []uint32{1, 2}, mailcore.FlagsAdd, mailcore.FlagSeen|mailcore.FlagFlagged)
	if err != nil || len(ms) != 2 {
		t.Fatal(ms, err)
	}
	for _, m := range ms {
		if m.Flags&(mailcore.FlagSeen|mailcore.FlagFlagged) != mailcore.FlagSeen|mailcore.FlagFlagged || m.ModSeq <= before.HighestModSeq {
			t.Errorf("after add: %+v", m)
		}
	}
	ms, _ = s.StoreFlags(ctx, r.MailboxID, []uint32{1}, mailcore.FlagsRemove, mailcore.FlagFlagged)
	if ms[0].Flags&mailcore.FlagFlagged != 0 || ms[0].Flags&mailcore.FlagSeen == 0 {
		t.Errorf("after remove: %v", ms[0].Flags.Names())
	}
	ms, _ = s.StoreFlags(ctx, r.MailboxID, []uint32{2}, mailcore.FlagsReplace, mailcore.FlagDeleted)
	if got := ms[0].Flags.Names(); len(got) != 1 || got[0] != `\Deleted` {
		t.Errorf("after replace: %v", got)
	}
	c, _ := s.Counts(ctx, r.MailboxID)
	if c.Unseen != 2 {
		t.Errorf("unseen = %d", c.Unseen)
	}
	// ExpungeDeleted removes only those of the given uids still \Deleted.
	if gone, err := s.ExpungeDeleted(ctx, r.MailboxID, []uint32{1, 3}); err != nil || len(gone) != 0 {
		t.Fatalf("ExpungeDeleted of undeleted uids = %v, %v", gone, err)
	}
	// EXPUNGE without uids removes exactly the \Deleted ones.
	gone, err := s.Expunge(ctx, r.MailboxID, nil)
	if err != nil || len(gone) != 1 || gone[0] != 2 {
		t.Fatalf("expunge = %v, %v", gone, err)
	}
	fsckClean(t, s)
}

func testCopyMove(t *testing.T, open Open) {
	s := open(t, mailcore.Options{})
	a, r := mustAccount(t, s, "cm@gov.example", 0)
	raw := message(1, "copy")
	deliverOK(t, s, raw, r)
	arch, _ := s.MailboxByName(ctx, a.ID, "Archive")
	res, err := s.Copy(ctx, r.MailboxID, []uint32{1}, arch.ID)
	if err != nil || len(res.DstUIDs) != 1 || res.DstUIDs[0] != 1 || res.UIDValidity != arch.UIDValidity {
		t.Fatalf("copy = %+v, %v", res, err)
	}
	if refs, _, _ := blobRow(t, s, raw); refs != 2 {
		t.Fatalf("refs after copy = %d", refs)
	}
	acct, _ := s.Account(ctx, a.ID)
	if acct.UsedBytes != 2*int64(len(raw)) {
		t.Fatalf("used after copy = %d", acct.UsedBytes)
	}
	trash, _ := s.MailboxByName(ctx, a.ID, "Trash")
	mv, err := s.Move(ctx, arch.ID, []uint32{1}, trash.ID)
	if err != nil || len(mv.DstUIDs) != 1 {
		t.Fatalf("move = %+v, %v", mv, err)
	}
	if ms, _ := s.Messages(ctx, arch.ID, 0, 10); len(ms) != 0 {
		t.Fatalf("move left %d in source", len(ms))
	}
	got, err := s.ReadMessage(ctx, trash.ID, mv.DstUIDs[0])
	if err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("moved message: %v", err)
	}
	if refs, _, _ := blobRow(t, s, raw); refs != 2 {
		t.Fatalf("refs after move = %d", refs)
	}
	n := 0
	s.Blobs().Walk(ctx, func(mailcore.BlobID, int64) error { n++; return nil })
	if n != 1 {
		t.Fatalf("copy/move wrote bodies: %d stored", n)
	}
	fsckClean(t, s)
}

func testExpungePurge(t *testing.T, open Open) {
	clk := newClock()
	s := open(t, mailcore.Options{Now: clk.now})
	a, r := mustAccount(t, s, "e@gov.example", 0)
	_, r2 := mustAccount(t, s, "e2@gov.example", 0)
	raw := message(1, "expunge")
	deliverOK(t, s, raw, r, r2)
	id := mailcore.BlobIDOf(raw)
	if _, err := s.Expunge(ctx, r.MailboxID, []uint32{1}); err != nil {
		t.Fatal(err)
	}
	if refs, dead, _ := blobRow(t, s, raw); refs != 1 || dead != nil {
		t.Fatalf("after one expunge refs=%d dead=%v", refs, dead)
	}
	if acct, _ := s.Account(ctx, a.ID); acct.UsedBytes != 0 {
		t.Fatalf("quota not released: %d", acct.UsedBytes)
	}
	if _, err := s.Expunge(ctx, r2.MailboxID, []uint32{1}); err != nil {
		t.Fatal(err)
	}
	refs, dead, _ := blobRow(t, s, raw)
	if refs != 0 || dead == nil {
		t.Fatalf("after last expunge refs=%d dead=%v", refs, dead)
	}
	// Lazy: the body is still there until the grace period has passed.
	if n, err := s.PurgeDead(ctx, time.Hour); err != nil || n != 0 {
		t.Fatalf("purge inside grace = %d, %v", n, err)
	}
	if ok, _ := s.Blobs().Has(ctx, id); !ok {
		t.Fatal("body deleted before the grace period")
	}
	fsckClean(t, s)
	clk.add(2 * time.Hour)
	if n, err := s.PurgeDead(ctx, time.Hour); err != nil || n != 1 {
		t.Fatalf("purge after grace = %d, %v", n, err)
	}
	if ok, _ := s.Blobs().Has(ctx, id); ok {
		t.Fatal("body still present after purge")
	}
	if _, _, ok := blobRow(t, s, raw); ok {
		t.Fatal("blob row still present after purge")
	}
	// The same bytes delivered again are stored anew.
	deliverOK(t, s, raw, r)
	got, err := s.ReadMessage(ctx, r.MailboxID, 2)
	if err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("redelivered: %v", err)
	}
	fsckClean(t, s)
}

// testPurgeRace: a delivery of bytes whose row is being purged must wait and
// then store them anew, never point at a deleted body.
func testPurgeRace(t *testing.T, open Open) {
	s := open(t, mailcore.Options{})
	_, r := mustAccount(t, s, "race@gov.example", 0)
	_, r2 := mustAccount(t, s, "race2@gov.example", 0)
	raw := message(1, "race")
	deliverOK(t, s, raw, r)
	if _, err := s.Expunge(ctx, r.MailboxID, []uint32{1}); err != nil {
		t.Fatal(err)
	}
	// Simulate a purge caught between marking the row and deleting it.
	id := mailcore.BlobIDOf(raw)
	if _, err := s.DB().X.ExecContext(ctx, s.DB().Rebind(`UPDATE blobs SET state = 1 WHERE sha = ?`), id[:]); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		res, err := s.Deliver(ctx, raw, []mailcore.Recipient{r2}, mailcore.DeliverOptions{})
		if err == nil && res[0].Err != nil {
			err = res[0].Err
		}
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("delivery did not wait for the purge: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	// The purge finishes (as Recover does after a crash): body and row go.
	if rep, err := s.Recover(ctx, false); err != nil || rep.PurgesFinished != 1 {
		t.Fatalf("recover = %+v, %v", rep, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got, err := s.ReadMessage(ctx, r2.MailboxID, 1)
	if err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("message delivered during purge unreadable: %v", err)
	}
	fsckClean(t, s)
}

func testDeleteMailbox(t *testing.T, open Open) {
	s := open(t, mailcore.Options{})
	a, r := mustAccount(t, s, "d@gov.example", 0)
	mb, _ := s.CreateMailbox(ctx, a.ID, "临时", "")
	raw := message(1, "del")
	deliverOK(t, s, raw, r, mailcore.Recipient{AccountID: a.ID, MailboxID: mb.ID})
	if err := s.DeleteMailbox(ctx, a.ID, "临时"); err != nil {
		t.Fatal(err)
	}
	if refs, _, _ := blobRow(t, s, raw); refs != 1 {
		t.Fatalf("refs after deleting a mailbox = %d", refs)
	}
	fsckClean(t, s)
}

func testRenameInbox(t *testing.T, open Open) {
	s := open(t, mailcore.Options{})
	a, r := mustAccount(t, s, "ri@gov.example", 0)
	for i := 0; i < 3; i++ {
		deliverOK(t, s, message(i, "rename"), r)
	}
	if err := s.RenameMailbox(ctx, a.ID, "INBOX", "旧收件箱"); err != nil {
		t.Fatal(err)
	}
	old, err := s.MailboxByName(ctx, a.ID, "旧收件箱")
	if err != nil {
		t.Fatal(err)
	}
	if ms, _ := s.Messages(ctx, old.ID, 0, 10); len(ms) != 3 {
		t.Fatalf("renamed INBOX has %d messages", len(ms))
	}
	if ms, _ := s.Messages(ctx, r.MailboxID, 0, 10); len(ms) != 0 {
		t.Fatalf("INBOX still has %d", len(ms))
	}
	fsckClean(t, s)
}

func testFsck(t *testing.T, open Open) {
	s := open(t, mailcore.Options{})
	a, r := mustAccount(t, s, "fsck@gov.example", 0)
	raw := message(1, "fsck")
	deliverOK(t, s, raw, r)
	deliverOK(t, s, message(2, "fsck"), r)
	fsckClean(t, s)
	id := mailcore.BlobIDOf(raw)
	// An outbound queue message holds a reference too: counted, not a
	// problem.
	var blobRowID int64
	s.DB().X.GetContext(ctx, &blobRowID, s.DB().Rebind(`SELECT id FROM blobs WHERE sha = ?`), id[:])
	if _, err := s.DB().X.ExecContext(ctx, s.DB().Rebind(`INSERT INTO queue_messages (blob_id, sender, size, created_at) VALUES (?, 'a@gov.example', 1, 0)`), blobRowID); err != nil {
		t.Fatal(err)
	}
	s.DB().X.ExecContext(ctx, s.DB().Rebind(`UPDATE blobs SET refs = refs + 1 WHERE id = ?`), blobRowID)
	fsckClean(t, s)
	x := s.DB().X
	x.ExecContext(ctx, s.DB().Rebind(`UPDATE blobs SET refs = 5 WHERE sha = ?`), id[:])
	x.ExecContext(ctx, s.DB().Rebind(`UPDATE accounts SET used_bytes = 1 WHERE id = ?`), a.ID)
	x.ExecContext(ctx, s.DB().Rebind(`UPDATE mailboxes SET uidnext = 1 WHERE id = ?`), r.MailboxID)
	orphan := []byte("an orphaned body")
	if err := s.Blobs().Put(ctx, mailcore.BlobIDOf(orphan), orphan); err != nil {
		t.Fatal(err)
	}
	id2 := mailcore.BlobIDOf(message(2, "fsck"))
	if err := s.Blobs().Delete(ctx, []mailcore.BlobID{id2}); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Fsck(ctx, mailcore.FsckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, p := range rep.Problems {
		kinds[p.Kind]++
	}
	for _, k := range []string{"refcount", "quota", "uid", "orphan", "missing-body"} {
		if kinds[k] != 1 {
			t.Errorf("fsck: %d %s problems, want 1 (all: %+v)", kinds[k], k, rep.Problems)
		}
	}
	rep, err = s.Fsck(ctx, mailcore.FsckOptions{Repair: true})
	if err != nil || rep.Repaired < 4 {
		t.Fatalf("repair = %+v, %v", rep, err)
	}
	rep, _ = s.Fsck(ctx, mailcore.FsckOptions{})
	var left []string
	for _, p := range rep.Problems {
		left = append(left, p.Kind)
	}
	sort.Strings(left)
	// A missing body cannot be repaired from metadata: it stays reported.
	if len(left) != 1 || left[0] != "missing-body" {
		t.Fatalf("after repair: %v", rep.Problems)
	}
}

// testDeliverAfterClose:
// a Deliver racing or following Close returns ErrStoreClosed, never hangs.
func testDeliverAfterClose(t *testing.T, open Open) {
	s := open(t, mailcore.Options{})
	_, r := mustAccount(t, s, "closed@gov.example", 0)
	s.Close()
	done := make(chan error, 1)
	go func() {
		_, err := s.Deliver(ctx, message(1, "late"), []mailcore.Recipient{r}, mailcore.DeliverOptions{})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, mailcore.ErrStoreClosed) {
			t.Fatalf("deliver after close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Deliver after Close hangs")
	}
}
