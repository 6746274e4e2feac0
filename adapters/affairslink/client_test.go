package affairslink_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/govhub/govhub/adapters/affairslink"
	"github.com/govhub/govhub/adapters/affairslink/simulator"
	"github.com/govhub/govhub/directory"
)

const (
	testKey    = "app-key-govhub"
	testSecret = "s3cr3t-0f-the-affairs-link-app"
)

// clock is a settable time source shared by the simulator and the client.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// syncBuffer is a log sink written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type env struct {
	sim    *simulator.Server
	srv    *httptest.Server
	client *affairslink.Client
	clock  *clock
	logs   *syncBuffer
	mu     sync.Mutex
	sleeps []time.Duration
}

func (e *env) slept() []time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]time.Duration(nil), e.sleeps...)
}

// newEnv starts a seeded simulator on 127.0.0.1:0 and a client for it
// whose sleeps are recorded, not slept.
func newEnv(t *testing.T, depts, users int, mod func(*affairslink.Config)) *env {
	t.Helper()
	e := &env{clock: &clock{t: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)}, logs: &syncBuffer{}}
	e.sim = simulator.New(simulator.Config{AppKey: testKey, AppSecret: testSecret, Now: e.clock.Now})
	e.sim.Seed(depts, users)
	e.srv = httptest.NewServer(e.sim)
	t.Cleanup(e.srv.Close)
	cfg := affairslink.Config{
		BaseURL: e.srv.URL, AppKey: testKey, AppSecret: testSecret, PageSize: 5,
		Timeout: 5 * time.Second,
		Now:     e.clock.Now,
		Sleep: func(ctx context.Context, d time.Duration) error {
			e.mu.Lock()
			e.sleeps = append(e.sleeps, d)
			e.mu.Unlock()
			return ctx.Err()
		},
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := affairslink.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.client = c
	return e
}

// collect runs Full and returns its entries and cursor.
func collect(t *testing.T, p directory.Peer) ([]directory.Entry, string) {
	t.Helper()
	var got []directory.Entry
	cur, err := p.Full(context.Background(), func(e directory.Entry) error { got = append(got, e); return nil })
	if err != nil {
		t.Fatalf("Full: %v", err)
	}
	return got, cur
}

func count(reqs []simulator.Request, method, path string, status int) int {
	n := 0
	for _, r := range reqs {
		if r.Method == method && r.Path == path && (status == 0 || r.Status == status) {
			n++
		}
	}
	return n
}

// checkComplete: every seeded person exactly once, no broken entries.
func checkComplete(t *testing.T, got []directory.Entry, depts, users int) {
	t.Helper()
	seen := map[string]int{}
	nd, np := 0, 0
	for _, e := range got {
		if e.Err != nil {
			t.Errorf("entry %s: %v", e.Source, e.Err)
			continue
		}
		seen[e.Anchor]++
		if e.Kind == directory.KindDepartment {
			nd++
			if np > 0 {
				t.Errorf("department %s after people", e.Anchor)
			}
		} else {
			np++
		}
	}
	for a, n := range seen {
		if n != 1 {
			t.Errorf("anchor %s seen %d times", a, n)
		}
	}
	if nd != depts+1 || np != users {
		t.Errorf("got %d departments and %d people, want %d and %d", nd, np, depts+1, users)
	}
}

func TestFullPagesAndMaps(t *testing.T) {
	e := newEnv(t, 6, 23, nil)
	got, cur := collect(t, e.client)
	checkComplete(t, got, 6, 23)
	if cur == "" {
		t.Fatal("Full returned no cursor")
	}
	if got[0].Department == nil || got[0].Department.Anchor != "d000" || got[0].Department.ParentAnchor != "" {
		t.Errorf("first entry %+v, want the root department d000", got[0])
	}
	reqs := e.sim.Requests()
	// 23 people at 5 a page: 5 pages; 7 departments: 2 pages.
	if n := count(reqs, "GET", "/v1/users", 200); n != 5 {
		t.Errorf("%d user pages, want 5", n)
	}
	if n := count(reqs, "GET", "/v1/departments", 200); n != 2 {
		t.Errorf("%d department pages, want 2", n)
	}
	if n := count(reqs, "POST", "/v1/token", 200); n != 1 {
		t.Errorf("%d token requests, want 1 (cached)", n)
	}
	var p *directory.Person
	for _, en := range got {
		if en.Person != nil && en.Anchor == "u00007" {
			p = en.Person
		}
	}
	want, _ := e.sim.User("u00007")
	if p == nil || p.DisplayName != want.Name || p.Mobile != want.Mobile || p.Mail != want.Email ||
		p.EmployeeNo != want.JobNumber || p.Title != "科员" || p.Status != directory.StatusActive ||
		len(p.Memberships) != 1 || p.Memberships[0].DeptAnchor != want.Departments[0].ID {
		t.Fatalf("u00007 mapped to %+v, simulator has %+v", p, want)
	}
	if r := []rune(p.DisplayName); len(r) < 2 || !unicode.Is(unicode.Han, r[0]) {
		t.Errorf("display name %q not a Chinese name", p.DisplayName)
	}
}

func TestPerObjectErrorsDoNotStopTheRun(t *testing.T) {
	e := newEnv(t, 2, 7, nil)
	e.sim.AddRawUser(`{"name":"无编号"}`)
	e.sim.AddRawUser(`{"id":12345,"name":"类型错"}`)
	e.sim.AddRawUser(`{"id":"u99999","name":"状态错","status":"gone"}`)
	e.sim.AddRawUser(`{"id":"u99998","name":"部门错","departments":[{"order":1}]}`)
	e.sim.PutDept(simulator.Dept{ID: "d777", ParentID: "d404", Name: "孤儿处"})
	got, _ := collect(t, e.client)
	var bad []string
	good := 0
	for _, en := range got {
		if en.Err != nil {
			bad = append(bad, en.Source)
		} else if en.Person != nil {
			good++
		}
	}
	if good != 7 || len(bad) != 4 {
		t.Errorf("good %d, broken %v; want 7 good and 4 broken", good, bad)
	}
	// The orphan department is reported (not an error here: the engine
	// reports the missing parent) and comes after the departments whose
	// parents are known.
	last := -1
	for i, en := range got {
		if en.Kind == directory.KindDepartment {
			last = i
		}
	}
	if got[last].Anchor != "d777" {
		t.Errorf("orphan department not last among departments: %s", got[last].Anchor)
	}
}

func TestTokenExpiryMidRun(t *testing.T) {
	e := newEnv(t, 3, 23, nil)
	// changes/latest, 1 department page, 2 user pages go through; then
	// the token dies (revoked) in the middle of the user listing.
	e.sim.ExpireTokensAfter(4)
	got, _ := collect(t, e.client)
	checkComplete(t, got, 3, 23)
	reqs := e.sim.Requests()
	if n := count(reqs, "POST", "/v1/token", 200); n != 2 {
		t.Errorf("%d token requests, want 2 (one refresh)", n)
	}
	if n := count(reqs, "GET", "/v1/users", 401); n != 1 {
		t.Errorf("%d refused user pages, want 1", n)
	}
}

func TestTokenRefreshedBeforeExpiry(t *testing.T) {
	e := newEnv(t, 1, 3, nil)
	collect(t, e.client)
	e.clock.Add(2*time.Hour - 30*time.Second) // inside the refresh margin
	collect(t, e.client)
	reqs := e.sim.Requests()
	if n := count(reqs, "POST", "/v1/token", 200); n != 2 {
		t.Errorf("%d token requests, want 2", n)
	}
	for _, r := range reqs {
		if r.Status == 401 {
			t.Errorf("request %s %s refused: the token should have been refreshed first", r.Method, r.Path)
		}
	}
}

func TestWrongSecretIsUnauthorized(t *testing.T) {
	e := newEnv(t, 1, 1, func(c *affairslink.Config) { c.AppSecret = "wrong" })
	_, err := e.client.Full(context.Background(), func(directory.Entry) error { return nil })
	if !errors.Is(err, affairslink.ErrUnauthorized) {
		t.Fatalf("err %v, want ErrUnauthorized", err)
	}
	if len(e.slept()) != 0 {
		t.Errorf("refused credentials were retried: %v", e.slept())
	}
}

func TestRetries(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fault   func(*simulator.Server)
		retries int
		wantErr bool
		sleeps  []time.Duration
	}{
		{"429 honours Retry-After", func(s *simulator.Server) { s.RateLimitNext(2, 7*time.Second) }, 4, false, []time.Duration{7 * time.Second, 7 * time.Second}},
		{"429 Retry-After capped", func(s *simulator.Server) { s.RateLimitNext(1, time.Hour) }, 4, false, []time.Duration{60 * time.Second}},
		{"5xx backs off", func(s *simulator.Server) { s.FailNext(3, 503) }, 4, false, []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second}},
		{"5xx gives up", func(s *simulator.Server) { s.FailNext(10, 502) }, 2, true, []time.Duration{500 * time.Millisecond, time.Second}},
		{"429 gives up", func(s *simulator.Server) { s.RateLimitNext(10, time.Second) }, 2, true, []time.Duration{time.Second, time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, 2, 8, func(c *affairslink.Config) { c.MaxRetries = tc.retries })
			tc.fault(e.sim)
			var got []directory.Entry
			_, err := e.client.Full(context.Background(), func(en directory.Entry) error { got = append(got, en); return nil })
			if tc.wantErr {
				if !errors.Is(err, affairslink.ErrUnavailable) || !strings.Contains(err.Error(), fmt.Sprintf("giving up after %d attempts", tc.retries+1)) {
					t.Fatalf("err %v, want ErrUnavailable after %d attempts", err, tc.retries+1)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				checkComplete(t, got, 2, 8)
			}
			if s := e.slept(); fmt.Sprint(s) != fmt.Sprint(tc.sleeps) {
				t.Errorf("slept %v, want %v", s, tc.sleeps)
			}
		})
	}
}

func TestSlowPages(t *testing.T) {
	t.Run("within timeout", func(t *testing.T) {
		e := newEnv(t, 1, 6, nil)
		e.sim.SlowPages(20 * time.Millisecond)
		got, _ := collect(t, e.client)
		checkComplete(t, got, 1, 6)
	})
	t.Run("beyond timeout", func(t *testing.T) {
		e := newEnv(t, 1, 6, func(c *affairslink.Config) { c.Timeout = 50 * time.Millisecond; c.MaxRetries = 1 })
		e.sim.SlowPages(300 * time.Millisecond)
		_, err := e.client.Full(context.Background(), func(directory.Entry) error { return nil })
		if !errors.Is(err, affairslink.ErrUnavailable) {
			t.Fatalf("err %v, want ErrUnavailable", err)
		}
	})
}

func TestChangesSinceCursor(t *testing.T) {
	e := newEnv(t, 3, 10, func(c *affairslink.Config) { c.PageSize = 2 })
	_, cur := collect(t, e.client)

	u3, _ := e.sim.User("u00003")
	u3.Mobile = "13911112222"
	e.sim.PutUser(u3)
	e.sim.DeleteUser("u00004")
	e.sim.PutDept(simulator.Dept{ID: "d100", ParentID: "d000", Name: "大数据局", Order: 9})
	e.sim.DeleteDept("d002")
	e.sim.PutUser(simulator.User{ID: "u20000", Name: "欧阳娜娜", Mobile: "13700000001", Departments: []simulator.Member{{ID: "d100", Order: 1}}})
	e.sim.PutUser(simulator.User{ID: "u20001", Name: "短命"})
	e.sim.DeleteUser("u20001")

	var got []directory.Entry
	next, err := e.client.Changes(context.Background(), cur, func(en directory.Entry) error { got = append(got, en); return nil })
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, en := range got {
		if en.Err != nil {
			t.Errorf("%s: %v", en.Source, en.Err)
		}
		l := fmt.Sprintf("%d %s del=%v", en.Kind, en.Anchor, en.Deleted)
		if en.Person != nil {
			l += " " + en.Person.Mobile
		}
		lines = append(lines, l)
	}
	want := []string{"2 u00003 del=false 13911112222", "2 u00004 del=true", "1 d100 del=false", "1 d002 del=true", "2 u20000 del=false 13700000001", "2 u20001 del=true"}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if n := count(e.sim.Requests(), "GET", "/v1/changes", 200); n < 3 {
		t.Errorf("%d change pages at limit 2, want at least 3", n)
	}
	// Nothing since: no entries, a usable cursor.
	got = nil
	if _, err := e.client.Changes(context.Background(), next, func(en directory.Entry) error { got = append(got, en); return nil }); err != nil || len(got) != 0 {
		t.Errorf("second Changes: %d entries, err %v", len(got), err)
	}
}

func TestExpiredCursor(t *testing.T) {
	e := newEnv(t, 1, 3, nil)
	_, cur := collect(t, e.client)
	e.sim.ExpireCursors()
	_, err := e.client.Changes(context.Background(), cur, func(directory.Entry) error { return nil })
	if !errors.Is(err, directory.ErrCursorExpired) {
		t.Fatalf("err %v, want directory.ErrCursorExpired", err)
	}
	if _, err := e.client.Changes(context.Background(), "", func(directory.Entry) error { return nil }); !errors.Is(err, directory.ErrCursorExpired) {
		t.Errorf("empty cursor: err %v, want directory.ErrCursorExpired", err)
	}
	// The fallback: a full run yields a cursor that works again.
	_, cur = collect(t, e.client)
	if _, err := e.client.Changes(context.Background(), cur, func(directory.Entry) error { return nil }); err != nil {
		t.Errorf("Changes after a new Full: %v", err)
	}
}

func TestTwoWayUpdate(t *testing.T) {
	e := newEnv(t, 3, 5, nil)
	ctx := context.Background()
	before, _ := e.sim.User("u00001")
	err := e.client.UpdatePerson(ctx, "u00001", map[string]string{
		"mobile": "13900000000", "title": "处长", "memberships": "d002:3,d003",
	})
	if err != nil {
		t.Fatal(err)
	}
	after, _ := e.sim.User("u00001")
	if after.Mobile != "13900000000" || after.Title != "处长" || after.Email != before.Email || after.Name != before.Name ||
		fmt.Sprint(after.Departments) != "[{d002 3} {d003 0}]" {
		t.Errorf("after update: %+v (before %+v)", after, before)
	}

	anchor, err := e.client.CreatePerson(ctx, directory.Person{
		DisplayName: "司马光", Mobile: "13600000009", Mail: "simaguang@gov.example.cn", EmployeeNo: "E900001",
		Memberships: []directory.Membership{{DeptAnchor: "d001", Order: 2}},
	})
	if err != nil {
		t.Fatal(err)
	}
	u, ok := e.sim.User(anchor)
	if !ok || u.Name != "司马光" || u.Email != "simaguang@gov.example.cn" || u.JobNumber != "E900001" || u.Status != "active" {
		t.Errorf("created %s: %+v", anchor, u)
	}
	// The change feed shows govhub's own writes too: the engine must
	// recognise them by anchor (it already holds the values).
	en, err := e.client.FetchPerson(ctx, anchor)
	if err != nil || en.Person == nil || en.Person.Mobile != "13600000009" {
		t.Errorf("FetchPerson: %+v %v", en, err)
	}

	if err := e.client.UpdatePerson(ctx, "u00404", map[string]string{"title": "x"}); !errors.Is(err, affairslink.ErrNotFound) {
		t.Errorf("update of a missing person: %v, want ErrNotFound", err)
	}
	if err := e.client.UpdatePerson(ctx, "u00001", map[string]string{"memberships": "d001:1,#42:2"}); err == nil {
		t.Error("membership in a department without an affairs-link id accepted")
	}
	if err := e.client.UpdatePerson(ctx, "u00001", map[string]string{"password": "x"}); err == nil {
		t.Error("update of an unknown field accepted")
	}
	_, err = e.client.CreatePerson(ctx, directory.Person{DisplayName: "重号", Mobile: "13600000009"})
	var ae *affairslink.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusConflict {
		t.Errorf("duplicate mobile: %v, want a 409 APIError", err)
	}
	if en, err := e.client.FetchPerson(ctx, "u00404"); err != nil || !en.Deleted {
		t.Errorf("FetchPerson of a missing person: %+v %v, want Deleted", en, err)
	}
}

func TestSecretsNotLogged(t *testing.T) {
	e := newEnv(t, 2, 12, nil)
	e.sim.ExpireTokensAfter(3)
	e.sim.FailNext(1, 500)
	collect(t, e.client)
	e.sim.RateLimitNext(1, time.Second)
	if err := e.client.UpdatePerson(context.Background(), "u00002", map[string]string{"mobile": "13500000000"}); err != nil {
		t.Fatal(err)
	}
	lg := slog.New(slog.NewTextHandler(e.logs, nil))
	cfg := affairslink.Config{BaseURL: e.srv.URL, AppKey: testKey, AppSecret: testSecret}
	lg.Info("config", "cfg", cfg)
	lg.Info(fmt.Sprint(cfg), "v", fmt.Sprintf("%v %+v", cfg, cfg))

	logs := e.logs.String()
	if !strings.Contains(logs, "retrying") || !strings.Contains(logs, "refreshing") {
		t.Fatalf("expected retry and refresh lines in the log:\n%s", logs)
	}
	secrets := append([]string{testSecret}, e.sim.IssuedTokens()...)
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("log contains a secret or token %q:\n%s", s, logs)
		}
	}
}

func TestCreateRetriedAfterLostAnswerCreatesOnce(t *testing.T) {
	e := newEnv(t, 1, 3, nil)
	collect(t, e.client) // holds a token now
	e.sim.LoseAnswers(1)
	anchor, err := e.client.CreatePerson(context.Background(), directory.Person{DisplayName: "诸葛亮", Mobile: "13600000123"})
	if err != nil {
		t.Fatal(err)
	}
	if n := e.sim.UserCount(); n != 4 {
		t.Errorf("%d users after a retried create, want 4 (created once)", n)
	}
	if u, ok := e.sim.User(anchor); !ok || u.Name != "诸葛亮" {
		t.Errorf("anchor %s: %+v", anchor, u)
	}
	if n := count(e.sim.Requests(), "POST", "/v1/users", 0); n != 2 {
		t.Errorf("%d POST /v1/users, want 2 (one lost answer, one retry)", n)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	const secret = "Zq9-very-secret"
	for _, tc := range []struct {
		name string
		cfg  affairslink.Config
	}{
		{"no URL", affairslink.Config{AppKey: "k", AppSecret: secret}},
		{"relative URL", affairslink.Config{BaseURL: "/api", AppKey: "k", AppSecret: secret}},
		{"no secret", affairslink.Config{BaseURL: "http://127.0.0.1:1", AppKey: "k"}},
		{"page too large", affairslink.Config{BaseURL: "http://127.0.0.1:1", AppKey: "k", AppSecret: secret, PageSize: 501}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := affairslink.New(tc.cfg)
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error shows the secret: %v", err)
			}
		})
	}
}

// Changes made while a full listing runs are either in the listing or in
// the next delta, never lost: Full takes the change cursor before it lists.
func TestChangesDuringFullAreNotLost(t *testing.T) {
	e := newEnv(t, 1, 12, nil)
	seen := map[string]int{}
	var once bool
	cur, err := e.client.Full(context.Background(), func(en directory.Entry) error {
		seen[en.Anchor]++
		if en.Anchor == "u00006" && !once { // second page of five
			once = true
			e.sim.DeleteUser("u00002")                               // already listed
			e.sim.PutUser(simulator.User{ID: "u00001a", Name: "插队"}) // sorts before the page
			u, _ := e.sim.User("u00011")                             // not yet listed
			u.Mobile = "13122223333"
			e.sim.PutUser(u)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for a, n := range seen {
		if n != 1 {
			t.Errorf("%s listed %d times", a, n)
		}
	}
	if seen["u00011"] != 1 || seen["u00012"] != 1 {
		t.Errorf("objects after the page were skipped: %v", seen)
	}
	var delta []string
	if _, err := e.client.Changes(context.Background(), cur, func(en directory.Entry) error {
		delta = append(delta, fmt.Sprintf("%s del=%v", en.Anchor, en.Deleted))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(delta, ","); got != "u00002 del=true,u00001a del=false,u00011 del=false" {
		t.Errorf("delta after the full run: %s", got)
	}
}
