package search_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govhub/govhub/internal/sqldb"
	"github.com/govhub/govhub/internal/testdb"
	"github.com/govhub/govhub/mailcore"
	"github.com/govhub/govhub/mailcore/search"
	"github.com/govhub/govhub/mailcore/volume"
)

// openTestStore opens a migrated store on dbURL with a volume store in a
// temp dir, closed at cleanup (as mailcore's OpenTestStore). wrap, if not
// nil, wraps the blob store the mail store sees (for error injection).
func openTestStore(t testing.TB, dbURL string, opts mailcore.Options, wrap func(mailcore.BlobStore) mailcore.BlobStore) *mailcore.Store {
	t.Helper()
	ctx := context.Background()
	db, err := sqldb.Open(ctx, dbURL, sqldb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Migrate(ctx, nil); err != nil {
		t.Fatal(err)
	}
	vs, err := volume.Open(volume.Options{Dir: filepath.Join(t.TempDir(), "volumes"), VolumeSize: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var bs mailcore.BlobStore = vs
	if wrap != nil {
		bs = wrap(vs)
	}
	opts.DB, opts.Blobs = db, bs
	s, err := mailcore.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		vs.Close()
		db.Close()
	})
	return s
}

// flakyBlobs fails Get for the bodies in fail with a transient error.
type flakyBlobs struct {
	mailcore.BlobStore
	mu   sync.Mutex
	fail map[mailcore.BlobID]bool
	gets map[mailcore.BlobID]int
}

func (f *flakyBlobs) Get(ctx context.Context, id mailcore.BlobID) ([]byte, error) {
	f.mu.Lock()
	f.gets[id]++
	bad := f.fail[id]
	f.mu.Unlock()
	if bad {
		return nil, errors.New("injected: disk read timeout")
	}
	return f.BlobStore.Get(ctx, id)
}

type env struct {
	store *mailcore.Store
	ix    *search.Index
	blobs *flakyBlobs
	db    *sqldb.DB
}

func setup(t *testing.T, b testdb.Backend) *env {
	e := &env{}
	e.store = openTestStore(t, b.URL(t), mailcore.Options{}, func(bs mailcore.BlobStore) mailcore.BlobStore {
		e.blobs = &flakyBlobs{BlobStore: bs, fail: map[mailcore.BlobID]bool{}, gets: map[mailcore.BlobID]int{}}
		return e.blobs
	})
	e.db = e.store.DB()
	ix, err := search.New(e.store, search.Config{MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	e.ix = ix
	return e
}

func (e *env) account(t testing.TB, addr string) mailcore.Recipient {
	t.Helper()
	ctx := context.Background()
	if _, err := e.store.CreateAccount(ctx, mailcore.NewAccount{Address: addr}); err != nil {
		t.Fatal(err)
	}
	_, r, err := e.store.ResolveRecipient(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (e *env) deliver(t testing.TB, raw []byte, rcpts ...mailcore.Recipient) []mailcore.DeliveryResult {
	t.Helper()
	res, err := e.store.Deliver(context.Background(), raw, rcpts, mailcore.DeliverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	return res
}

func (e *env) match(t testing.TB, mailbox int64, field, term string) []uint32 {
	t.Helper()
	uids, err := e.ix.MatchUIDs(context.Background(), mailbox, field, term)
	if err != nil {
		t.Fatalf("MatchUIDs(%s %q): %v", field, term, err)
	}
	return uids
}

func (e *env) count(t testing.TB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := e.db.X.Get(&n, e.db.Rebind(q), args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// indexRows counts the engine's index entries.
func (e *env) indexRows(t testing.TB) int {
	if e.db.Dialect == sqldb.Postgres {
		return e.count(t, `SELECT COUNT(*) FROM search_tsv`)
	}
	return e.count(t, `SELECT COUNT(*) FROM search_fts`)
}

func testdata(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "envelope", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// withAttachment has a readable body and a text/plain attachment whose
// words must not be found: IMAP BODY/TEXT here search the message's text,
// and attachments are not text the index reads.
const withAttachment = "From: 王五 <wangwu@example.gov.cn>\r\n" +
	"To: alice@example.gov.cn\r\n" +
	"Subject: =?utf-8?B?5paH5Lu25Lyg6YCB?=\r\n" + // 文件传送
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n" +
	"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n请查收附件。Quarterly figures attached.\r\n" +
	"--b1\r\nContent-Type: text/plain; charset=utf-8; name=\"secret.txt\"\r\n" +
	"Content-Disposition: attachment; filename=\"secret.txt\"\r\n\r\n" +
	"zebrafinch 机密档案\r\n--b1--\r\n"

func plain(subject, body string) []byte {
	return []byte("From: sender@example.org\r\nTo: someone@example.gov.cn\r\nSubject: " + subject +
		"\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body + "\r\n")
}

func TestSearch(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Run("find", func(t *testing.T) { testFind(t, setup(t, b)) })
			t.Run("single instance", func(t *testing.T) { testSingleInstance(t, setup(t, b)) })
			t.Run("purge", func(t *testing.T) { testPurge(t, setup(t, b)) })
			t.Run("concurrent indexers", func(t *testing.T) { testConcurrent(t, b) })
			t.Run("unreadable bodies", func(t *testing.T) { testUnreadable(t, setup(t, b)) })
			t.Run("run loop", func(t *testing.T) { testRun(t, setup(t, b)) })
		})
	}
}

func testFind(t *testing.T, e *env) {
	ctx := context.Background()
	alice := e.account(t, "alice@example.gov.cn")
	bob := e.account(t, "bob@example.gov.cn")
	// uid order in alice's INBOX: 1 gb2312, 2 gbk, 3 utf-8, 4 ascii, 5 attachment.
	e.deliver(t, testdata(t, "gb2312_base64.eml"), alice) // subject 关于召开全省工作会议的通知, body ...通知如下
	e.deliver(t, testdata(t, "gbk_raw_8bit.eml"), alice)  // subject 回复：...通知, body 收到...李明
	e.deliver(t, testdata(t, "utf8_words.eml"), alice)    // subject ...通知 (2024), body 各位同事...
	e.deliver(t, testdata(t, "plain_ascii.eml"), alice, bob)
	e.deliver(t, []byte(withAttachment), alice)
	// Bob's own mail, which alice's searches must never return.
	e.deliver(t, plain("通知 Agenda", "通知 agenda 李明 zebrafinch"), bob)
	e.deliver(t, plain("x", "another 通知"), bob)

	tests := []struct {
		name, field, term string
		want              []uint32
	}{
		{"chinese word in subject or body", "TEXT", "通知", []uint32{1, 2, 3}},
		{"chinese word in body only", "BODY", "通知", []uint32{1}},
		{"field name case-insensitive", "body", "通知", []uint32{1}},
		{"longer chinese phrase", "TEXT", "全省工作会议", []uint32{1, 2, 3}},
		{"phrase in body", "BODY", "全省工作会议", []uint32{1, 3}},
		{"one character", "BODY", "李", []uint32{2}},
		{"one character in subject", "TEXT", "省", []uint32{1, 2, 3}},
		{"one character body only", "BODY", "省", []uint32{1, 3}},
		{"digits and han", "BODY", "3月8日", []uint32{1, 3}},
		{"latin, case-insensitive", "TEXT", "AGENDA", []uint32{4}},
		{"latin in body", "BODY", "Report", []uint32{4}},
		{"latin prefix", "TEXT", "meet", []uint32{4}},
		{"latin in subject only", "BODY", "provincial", nil},
		{"latin in subject", "TEXT", "provincial", []uint32{4}},
		{"display name", "TEXT", "省政府办公厅", []uint32{1}},
		{"address", "TEXT", "bgt@example.gov.cn", []uint32{1}},
		{"two words, both required", "TEXT", "agenda zebrafinch", nil},
		{"attachment words not indexed", "TEXT", "zebrafinch", nil},
		{"attachment chinese not indexed", "TEXT", "机密", nil},
		{"body beside attachment", "BODY", "请查收", []uint32{5}},
		{"latin beside attachment", "BODY", "quarterly", []uint32{5}},
		{"absent word", "TEXT", "nonexistent", nil},
		{"empty term matches all", "TEXT", "", []uint32{1, 2, 3, 4, 5}},
		{"punctuation only matches none", "TEXT", "!!! ...", nil},
		{"fts5 syntax is text", "TEXT", `"通知" OR * NEAR(body:x)`, nil},
		{"fts5 syntax around a word", "BODY", `"通知"*`, []uint32{1}},
		{"tsquery syntax is text", "TEXT", `'通知' | !agenda:*A & ('`, nil},
		{"full-width latin", "TEXT", "ＡＧＥＮＤＡ", []uint32{4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := e.match(t, alice.MailboxID, tt.field, tt.term); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s %q = %v, want %v", tt.field, tt.term, got, tt.want)
			}
		})
	}
	if got := e.match(t, bob.MailboxID, "TEXT", "通知"); !reflect.DeepEqual(got, []uint32{2, 3}) {
		t.Errorf("bob TEXT 通知 = %v, want [2 3]", got)
	}
	if got := e.match(t, bob.MailboxID, "TEXT", "agenda"); !reflect.DeepEqual(got, []uint32{1, 2}) {
		t.Errorf("bob TEXT agenda = %v, want [1 2]", got)
	}
	// A megabyte search term (an IMAP literal) is answered, quickly.
	huge := strings.Repeat("通知 agenda ", 100000)
	start := time.Now()
	if got := e.match(t, alice.MailboxID, "TEXT", huge); got != nil {
		t.Errorf("huge term = %v, want none (agenda and 通知 are never together)", got)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("huge term took %v", d)
	}
	if _, err := e.ix.MatchUIDs(ctx, alice.MailboxID, "SUBJECT", "x"); !errors.Is(err, search.ErrField) {
		t.Errorf("field SUBJECT: err %v, want ErrField", err)
	}

	// A delivery is searchable at once: MatchUIDs catches up first.
	e.deliver(t, plain("hello", "刚刚送达的紧急通知"), alice)
	if got := e.match(t, alice.MailboxID, "BODY", "紧急"); !reflect.DeepEqual(got, []uint32{6}) {
		t.Errorf("just delivered: %v, want [6]", got)
	}

	// Account-wide search for webmail: newest first, this account only.
	hits, err := e.ix.Search(ctx, alice.AccountID, "通知", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != 4 || hits[0].UID != 6 || hits[0].MailboxID != alice.MailboxID {
		t.Errorf("Search 通知 = %+v, want 4 hits, uid 6 first", hits)
	}
	if hits, _ := e.ix.Search(ctx, alice.AccountID, "通知", 2); len(hits) != 2 {
		t.Errorf("Search limit 2 = %d hits", len(hits))
	}
}

func testSingleInstance(t *testing.T, e *env) {
	ctx := context.Background()
	var in []mailcore.NewAccount
	for i := range 200 {
		in = append(in, mailcore.NewAccount{Address: fmt.Sprintf("staff%03d@example.gov.cn", i)})
	}
	if _, err := e.store.ImportAccounts(ctx, in, mailcore.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	var rcpts []mailcore.Recipient
	for _, a := range in {
		_, r, err := e.store.ResolveRecipient(ctx, a.Address)
		if err != nil {
			t.Fatal(err)
		}
		rcpts = append(rcpts, r)
	}
	raw := testdata(t, "gb2312_base64.eml")
	e.deliver(t, raw, rcpts...)
	if _, err := e.ix.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.count(t, `SELECT COUNT(*) FROM messages`); n != 200 {
		t.Fatalf("%d message rows, want 200", n)
	}
	if n := e.count(t, `SELECT COUNT(*) FROM search_indexed`); n != 1 {
		t.Errorf("%d bookkeeping rows for one body sent to 200, want 1", n)
	}
	if n := e.indexRows(t); n != 1 {
		t.Errorf("%d index rows for one body sent to 200, want 1", n)
	}
	if got := e.match(t, rcpts[0].MailboxID, "BODY", "通知"); !reflect.DeepEqual(got, []uint32{1}) {
		t.Errorf("first recipient: %v", got)
	}
	if got := e.match(t, rcpts[199].MailboxID, "TEXT", "通知"); !reflect.DeepEqual(got, []uint32{1}) {
		t.Errorf("last recipient: %v", got)
	}
	// Copying adds rows, not bodies: still one entry, found in both folders.
	mb, err := e.store.MailboxByName(ctx, rcpts[0].AccountID, "Archive")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Copy(ctx, rcpts[0].MailboxID, []uint32{1}, mb.ID); err != nil {
		t.Fatal(err)
	}
	if got := e.match(t, mb.ID, "BODY", "通知"); !reflect.DeepEqual(got, []uint32{1}) {
		t.Errorf("copy: %v", got)
	}
	if n := e.count(t, `SELECT COUNT(*) FROM search_indexed`); n != 1 {
		t.Errorf("after copy %d bookkeeping rows, want 1", n)
	}
}

func testPurge(t *testing.T, e *env) {
	ctx := context.Background()
	alice := e.account(t, "alice@example.gov.cn")
	bob := e.account(t, "bob@example.gov.cn")
	gbk := testdata(t, "gbk_raw_8bit.eml")
	e.deliver(t, gbk, alice)                                // alice uid 1, only copy
	e.deliver(t, testdata(t, "utf8_words.eml"), alice, bob) // shared
	if _, err := e.ix.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	blobOf := func(mailbox int64, uid uint32) int64 {
		m, err := e.store.Message(ctx, mailbox, uid)
		if err != nil {
			t.Fatal(err)
		}
		return m.BlobRowID
	}
	gbkBlob, sharedBlob := blobOf(alice.MailboxID, 1), blobOf(alice.MailboxID, 2)
	entries := func(id int64) int {
		return e.count(t, `SELECT COUNT(*) FROM search_indexed WHERE blob_id = ?`, id)
	}

	// Expunge alone keeps the entry: the body is dead, not gone, and a
	// delivery of the same bytes could revive it.
	if _, err := e.store.Expunge(ctx, alice.MailboxID, []uint32{1, 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ix.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if entries(gbkBlob) != 1 {
		t.Fatal("entry removed before purge")
	}
	if got := e.match(t, alice.MailboxID, "TEXT", "通知"); got != nil {
		t.Errorf("expunged messages still match: %v", got)
	}
	// Purge (grace 0) deletes the blob row; the next pass removes its entry
	// and nothing else.
	if n, err := e.store.PurgeDead(ctx, 0); err != nil || n != 1 {
		t.Fatalf("PurgeDead = %d, %v; want 1", n, err)
	}
	st, err := e.ix.CatchUp(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Removed != 1 || entries(gbkBlob) != 0 {
		t.Errorf("after purge: removed %d, entries %d; want 1, 0", st.Removed, entries(gbkBlob))
	}
	if entries(sharedBlob) != 1 || e.indexRows(t) != 1 {
		t.Errorf("shared body lost its entry: %d, index rows %d", entries(sharedBlob), e.indexRows(t))
	}
	if got := e.match(t, bob.MailboxID, "BODY", "会议"); !reflect.DeepEqual(got, []uint32{1}) {
		t.Errorf("bob's copy: %v", got)
	}

	// The same bytes delivered after the purge are a new blob row, indexed anew.
	e.deliver(t, gbk, bob)
	if got := e.match(t, bob.MailboxID, "BODY", "李明"); !reflect.DeepEqual(got, []uint32{2}) {
		t.Errorf("redelivered after purge: %v", got)
	}

	// A body that died and was revived before its purge keeps its entry.
	if _, err := e.store.Expunge(ctx, bob.MailboxID, []uint32{2}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ix.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	e.deliver(t, gbk, bob) // revives the dead row
	if _, err := e.ix.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := e.store.PurgeDead(ctx, 0); err != nil || n != 0 {
		t.Fatalf("PurgeDead = %d, %v; want 0", n, err)
	}
	if got := e.match(t, bob.MailboxID, "BODY", "李明"); !reflect.DeepEqual(got, []uint32{3}) {
		t.Errorf("revived: %v", got)
	}
	if n := e.count(t, `SELECT COUNT(*) FROM search_indexed WHERE dead = 1`); n != 0 {
		t.Errorf("%d rows still marked dead after revival", n)
	}

	// A new Index (a restarted process) finds entries whose body was purged
	// while no indexer ran.
	if _, err := e.store.Expunge(ctx, bob.MailboxID, []uint32{1, 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.PurgeDead(ctx, 0); err != nil {
		t.Fatal(err)
	}
	ix2, err := search.New(e.store, search.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ix2.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.count(t, `SELECT COUNT(*) FROM search_indexed`); n != 0 || e.indexRows(t) != 0 {
		t.Errorf("after restart: %d bookkeeping, %d index rows; want 0, 0", n, e.indexRows(t))
	}
}

// testConcurrent: several indexers (nodes) over one database index every
// body exactly once.
func testConcurrent(t *testing.T, b testdb.Backend) {
	url := b.URL(t)
	ctx := context.Background()
	s := openTestStore(t, url, mailcore.Options{}, nil)
	alice := (&env{store: s}).account(t, "alice@example.gov.cn")
	const n = 150
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			raw := plain(fmt.Sprintf("第%d号通知", i), fmt.Sprintf("正文 body%d 会议", i))
			if _, err := s.Deliver(ctx, raw, []mailcore.Recipient{alice}, mailcore.DeliverOptions{}); err != nil {
				t.Error(err)
			}
		}()
	}
	var ixs []*search.Index
	for range 3 {
		ix, err := search.New(s, search.Config{BatchSize: 7})
		if err != nil {
			t.Fatal(err)
		}
		ixs = append(ixs, ix)
	}
	for _, ix := range ixs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				if _, err := ix.CatchUp(ctx); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	for _, ix := range ixs {
		if _, err := ix.CatchUp(ctx); err != nil {
			t.Fatal(err)
		}
	}
	e := &env{store: s, db: s.DB(), ix: ixs[0]}
	if got := e.count(t, `SELECT COUNT(*) FROM search_indexed`); got != n {
		t.Errorf("%d bookkeeping rows, want %d", got, n)
	}
	if got := e.indexRows(t); got != n {
		t.Errorf("%d index rows, want %d", got, n)
	}
	if got := e.match(t, alice.MailboxID, "BODY", "会议"); len(got) != n {
		t.Errorf("%d matches, want %d", len(got), n)
	}
	if got := e.match(t, alice.MailboxID, "TEXT", "body77"); len(got) != 1 {
		t.Errorf("body77: %v", got)
	}
}

// testUnreadable: a body missing from the blob store is indexed from
// nothing at once; one whose reads keep failing is retried MaxAttempts
// times and then given up, and neither holds back the bodies after it.
func testUnreadable(t *testing.T, e *env) {
	ctx := context.Background()
	alice := e.account(t, "alice@example.gov.cn")
	missing := plain("missing", "丢失的正文")
	flaky := plain("flaky", "读取失败的正文")
	e.deliver(t, missing, alice)
	e.deliver(t, flaky, alice)
	e.deliver(t, plain("fine", "正常的通知"), alice)
	if err := e.blobs.Delete(ctx, []mailcore.BlobID{mailcore.BlobIDOf(missing)}); err != nil {
		t.Fatal(err)
	}
	e.blobs.mu.Lock()
	e.blobs.fail[mailcore.BlobIDOf(flaky)] = true
	e.blobs.mu.Unlock()

	if got := e.match(t, alice.MailboxID, "BODY", "通知"); !reflect.DeepEqual(got, []uint32{3}) {
		t.Errorf("body after failing ones: %v, want [3]", got)
	}
	if n := e.count(t, `SELECT COUNT(*) FROM search_indexed WHERE status = 1`); n != 1 {
		t.Errorf("%d rows with status unreadable, want 1", n)
	}
	for range 5 {
		if _, err := e.ix.CatchUp(ctx); err != nil {
			t.Fatal(err)
		}
	}
	e.blobs.mu.Lock()
	gets := e.blobs.gets[mailcore.BlobIDOf(flaky)]
	e.blobs.mu.Unlock()
	if gets != 3 {
		t.Errorf("flaky body read %d times, want 3 (MaxAttempts)", gets)
	}
	if n := e.count(t, `SELECT COUNT(*) FROM search_indexed WHERE status = 2`); n != 1 {
		t.Errorf("%d rows given up, want 1", n)
	}
	if n := e.count(t, `SELECT COUNT(*) FROM search_indexed`); n != 3 {
		t.Errorf("%d bookkeeping rows, want 3", n)
	}
}

func testRun(t *testing.T, e *env) {
	alice := e.account(t, "alice@example.gov.cn")
	ix, err := search.New(e.store, search.Config{PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ix.Run(ctx) }()
	e.deliver(t, plain("run", "后台索引"), alice)
	deadline := time.Now().Add(10 * time.Second)
	for e.count(t, `SELECT COUNT(*) FROM search_indexed`) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("Run did not index the body")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v", err)
	}
}

// TestOutOfOrderCommit: on PostgreSQL a blob row can commit after rows with
// higher ids have been indexed. The indexer must still index it (a plain
// high-water mark would skip it forever).
func TestOutOfOrderCommit(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		if b.Name != "postgres" {
			continue // SQLite has one writer: ids commit in order
		}
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			e := setup(t, b)
			alice := e.account(t, "alice@example.gov.cn")
			late := plain("late", "迟到的正文 latecomer")
			id := mailcore.BlobIDOf(late)
			if err := e.blobs.Put(ctx, id, late); err != nil {
				t.Fatal(err)
			}
			tx, err := e.db.X.BeginTxx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			var lateRow int64
			if err := tx.GetContext(ctx, &lateRow, `INSERT INTO blobs (sha, size, refs) VALUES ($1, $2, 1) RETURNING id`, id[:], len(late)); err != nil {
				t.Fatal(err)
			}
			// Later ids commit and are indexed while lateRow is in flight.
			for i := range 3 {
				e.deliver(t, plain("early", fmt.Sprintf("早到 %d", i)), alice)
				if _, err := e.ix.CatchUp(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if n := e.count(t, `SELECT COUNT(*) FROM search_indexed WHERE blob_id > $1`, lateRow); n != 3 {
				t.Fatalf("%d later bodies indexed, want 3", n)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			for range 2 {
				if _, err := e.ix.CatchUp(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if n := e.count(t, `SELECT COUNT(*) FROM search_indexed WHERE blob_id = $1 AND status = 0`, lateRow); n != 1 {
				t.Errorf("late-committed body not indexed")
			}
		})
	}
}

// TestBoundedCatchUp: with a backlog, a SEARCH indexes one batch and
// answers, rather than waiting for the whole backlog.
func TestBoundedCatchUp(t *testing.T) {
	b := testdb.Backends(t)[0]
	e := setup(t, b)
	ix, err := search.New(e.store, search.Config{BatchSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	alice := e.account(t, "alice@example.gov.cn")
	for i := range 5 {
		e.deliver(t, plain("backlog", fmt.Sprintf("积压 %d", i)), alice)
	}
	uids, err := ix.MatchUIDs(context.Background(), alice.MailboxID, "BODY", "积压")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(uids, []uint32{1, 2}) {
		t.Errorf("first SEARCH in backlog = %v, want [1 2] (one batch)", uids)
	}
	if _, err := ix.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	if uids := e.match(t, alice.MailboxID, "BODY", "积压"); len(uids) != 5 {
		t.Errorf("after CatchUp = %v, want 5", uids)
	}
}
