package webmail

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govhub/govhub/internal/testdb"
	"github.com/govhub/govhub/mailcore"
	"github.com/govhub/govhub/mailcore/storetest"
)

var ctx = context.Background()

// env is one test world: a real store on one backend, a Service over it,
// two users and the fakes of the systems webmail calls.
type env struct {
	t     testing.TB
	store *mailcore.Store
	svc   *Service
	sub   *fakeSubmitter
	dir   *fakeDirectory
	apps  *fakeApps
	sess  *fakeSessions
	a, b  User
	now   time.Time
}

// backends runs fn once per metadata backend (SQLite always, PostgreSQL
// when GOVHUB_TEST_POSTGRES is set).
func backends(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			fn(t, newEnv(t, b.URL(t), Config{}))
		})
	}
}

func newEnv(t testing.TB, dbURL string, cfg Config) *env {
	t.Helper()
	e := &env{t: t, now: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)}
	e.store = storetest.OpenStore(t, dbURL, mailcore.Options{Now: func() time.Time { return e.now }})
	e.sub = &fakeSubmitter{}
	e.dir = &fakeDirectory{people: map[string]Contact{
		"p-1001": {PersonID: "p-1001", Name: "王五", Address: "wangwu@gov.example", Department: "办公厅"},
	}}
	e.apps = &fakeApps{}
	if cfg.Submitter == nil {
		cfg.Submitter = e.sub
	}
	if cfg.Directory == nil {
		cfg.Directory = e.dir
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return e.now }
	}
	e.svc = New(e.store, cfg)
	e.a = e.user("zhangsan@gov.example", "张三")
	e.b = e.user("lisi@gov.example", "李四")
	e.sess = &fakeSessions{users: map[string]User{"tok-a": e.a, "tok-b": e.b}}
	return e
}

func (e *env) user(addr, name string) User {
	e.t.Helper()
	acct, err := e.store.CreateAccount(ctx, mailcore.NewAccount{Address: addr, DisplayName: name})
	if err != nil {
		e.t.Fatal(err)
	}
	return User{AccountID: acct.ID, Address: acct.Address, DisplayName: name, CSRF: "csrf-" + addr, Method: "password"}
}

// folderID returns a user's folder id by name.
func (e *env) folderID(u User, name string) int64 {
	e.t.Helper()
	mb, err := e.store.MailboxByName(ctx, u.AccountID, name)
	if err != nil {
		e.t.Fatal(err)
	}
	return mb.ID
}

// deliver puts raw into a user's folder, arriving at e.now + offset.
func (e *env) deliver(u User, folder string, raw string, offset time.Duration) uint32 {
	e.t.Helper()
	res, err := e.store.Deliver(ctx, []byte(strings.ReplaceAll(raw, "\n", "\r\n")),
		[]mailcore.Recipient{{AccountID: u.AccountID, MailboxID: e.folderID(u, folder)}},
		mailcore.DeliverOptions{InternalDate: e.now.Add(offset)})
	if err != nil || res[0].Err != nil {
		e.t.Fatalf("deliver: %v %v", err, res)
	}
	return res[0].UID
}

// fakeSubmitter records what webmail submits; err fails the next calls.
type fakeSubmitter struct {
	mu    sync.Mutex
	calls []submitCall
	err   error
}

type submitCall struct {
	acct  mailcore.Account
	from  string
	rcpts []string
	raw   []byte
}

func (f *fakeSubmitter) Submit(ctx context.Context, acct mailcore.Account, from string, rcpts []string, raw []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.calls = append(f.calls, submitCall{acct, from, append([]string(nil), rcpts...), append([]byte(nil), raw...)})
	return nil
}

func (f *fakeSubmitter) last(t testing.TB) submitCall {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		t.Fatal("nothing submitted")
	}
	return f.calls[len(f.calls)-1]
}

// fakeSessions finds the user by the "s" cookie.
type fakeSessions struct {
	users map[string]User
	err   error
}

func (f *fakeSessions) User(r *http.Request) (User, bool, error) {
	if f.err != nil {
		return User{}, false, f.err
	}
	c, err := r.Cookie("s")
	if err != nil {
		return User{}, false, nil
	}
	u, ok := f.users[c.Value]
	return u, ok, nil
}

type fakeDirectory struct {
	people map[string]Contact
	err    error
}

func (f *fakeDirectory) Suggest(ctx context.Context, q string, limit int) ([]Contact, error) {
	if f.err != nil {
		return nil, f.err
	}
	var out []Contact
	for _, c := range f.people {
		if strings.Contains(c.Name, q) || strings.Contains(c.Address, q) {
			out = append(out, c)
		}
	}
	return out, nil
}

func (f *fakeDirectory) Contact(ctx context.Context, id string) (Contact, error) {
	c, ok := f.people[id]
	if !ok {
		return Contact{}, fmt.Errorf("%w: person %s", mailcore.ErrNotFound, id)
	}
	return c, nil
}

// fakeApps keeps app passwords per account in memory.
type fakeApps struct {
	mu   sync.Mutex
	next int64
	aps  map[int64][]AppPassword
}

func (f *fakeApps) CreateAppPassword(ctx context.Context, u User, name string) (string, AppPassword, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.aps == nil {
		f.aps = map[int64][]AppPassword{}
	}
	f.next++
	ap := AppPassword{ID: f.next, Name: name, CreatedAt: 1}
	f.aps[u.AccountID] = append(f.aps[u.AccountID], ap)
	return fmt.Sprintf("secret-%d", f.next), ap, nil
}

func (f *fakeApps) AppPasswords(ctx context.Context, u User) ([]AppPassword, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]AppPassword{}, f.aps[u.AccountID]...), nil
}

func (f *fakeApps) RevokeAppPassword(ctx context.Context, u User, id int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, ap := range f.aps[u.AccountID] {
		if ap.ID == id {
			f.aps[u.AccountID] = append(f.aps[u.AccountID][:i], f.aps[u.AccountID][i+1:]...)
			return nil
		}
	}
	return mailcore.ErrNotFound
}

var errBoom = errors.New("boom")

// Fixtures.

const plainMail = `From: "Li Si" <lisi@gov.example>
To: zhangsan@gov.example
Subject: =?UTF-8?B?5YWz5LqO5byA5Lya55qE6YCa55+l?=
Date: Wed, 02 Dec 2026 10:00:00 +0800
Message-ID: <plain-1@gov.example>
Content-Type: text/plain; charset=utf-8

各位同事：明天上午九点开会。
Line two.
`

// htmlMail has an inline cid image, a remote image and an attachment.
const htmlMail = `From: Newsletter <news@example.com>
To: zhangsan@gov.example
Subject: Weekly
Message-ID: <html-1@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: multipart/related; boundary="rel"

--rel
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset=utf-8

Plain version.
--alt
Content-Type: text/html; charset=utf-8

<p>Hello <b>world</b><img src="cid:logo@x"><img src="https://tracker.example/p.gif"></p>
--alt--
--rel
Content-Type: image/png
Content-ID: <logo@x>
Content-Transfer-Encoding: base64

iVBORw0KGgo=
--rel--
--outer
Content-Type: application/pdf; name="=?UTF-8?B?5oql5ZGKLnBkZg==?="
Content-Disposition: attachment; filename*=UTF-8''%E6%8A%A5%E5%91%8A.pdf
Content-Transfer-Encoding: base64

JVBERi0xLjQK
--outer--
`
