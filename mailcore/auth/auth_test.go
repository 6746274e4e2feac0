package auth_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govhub/govhub/internal/passhash"
	"github.com/govhub/govhub/internal/testdb"
	"github.com/govhub/govhub/mailcore"
	"github.com/govhub/govhub/mailcore/auth"
	"github.com/govhub/govhub/mailcore/storetest"
)

func openStore(t *testing.T, dbURL string) *mailcore.Store {
	return storetest.OpenStore(t, dbURL, mailcore.Options{})
}

// clock is an injected time with a recorded sleep.
type clock struct {
	mu     sync.Mutex
	t      time.Time
	sleeps []time.Duration
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
func (c *clock) sleep(_ context.Context, d time.Duration) error {
	c.mu.Lock()
	c.sleeps = append(c.sleeps, d)
	c.mu.Unlock()
	return nil
}
func (c *clock) takeSleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sleeps
	c.sleeps = nil
	return s
}

type env struct {
	store *mailcore.Store
	auth  *auth.Authenticator
	clk   *clock
	logs  *bytes.Buffer
}

func setup(t *testing.T, url string) *env {
	store := openStore(t, url)
	ctx := context.Background()
	h, err := passhash.Hash("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	for _, na := range []mailcore.NewAccount{
		{Address: "zhang.san@example.gov.cn", PasswordHash: h},
		{Address: "li.si@example.gov.cn", PasswordHash: h, Status: mailcore.StatusDisabled},
		{Address: "wang.wu@example.gov.cn", PasswordHash: h, Status: mailcore.StatusLeft},
		{Address: "sso.only@example.gov.cn"},
		{Address: "bad.hash@example.gov.cn", PasswordHash: "{PLAIN}secret"},
	} {
		if _, err := store.CreateAccount(ctx, na); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.AddAlias(ctx, "zs@example.gov.cn", "zhang.san@example.gov.cn"); err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	logs := &bytes.Buffer{}
	a := auth.New(store, auth.Options{
		Now: clk.now, Sleep: clk.sleep,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	return &env{store, a, clk, logs}
}

func TestAuthenticate(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			e := setup(t, b.URL(t))
			ctx := context.Background()
			for _, tc := range []struct {
				name, user, pass string
				want             string // account address, or "" for ErrInvalidCredentials
			}{
				{"own address", "zhang.san@example.gov.cn", "correct horse", "zhang.san@example.gov.cn"},
				{"normalised", "  Zhang.San@EXAMPLE.gov.cn ", "correct horse", "zhang.san@example.gov.cn"},
				{"alias signs in as its account", "zs@example.gov.cn", "correct horse", "zhang.san@example.gov.cn"},
				{"wrong password", "zhang.san@example.gov.cn", "Correct horse", ""},
				{"unknown user", "nobody@example.gov.cn", "correct horse", ""},
				{"not an address", "zhang.san", "correct horse", ""},
				{"subaddress is not a username", "zhang.san+x@example.gov.cn", "correct horse", ""},
				{"disabled", "li.si@example.gov.cn", "correct horse", ""},
				{"left", "wang.wu@example.gov.cn", "correct horse", ""},
				{"sso only", "sso.only@example.gov.cn", "", ""},
				{"unusable hash", "bad.hash@example.gov.cn", "secret", ""},
			} {
				t.Run(tc.name, func(t *testing.T) {
					// Each case from its own IP and a fresh clock window, so
					// earlier failures do not delay it.
					e.clk.advance(time.Hour)
					acct, err := e.auth.Authenticate(ctx, tc.user, tc.pass, "192.0.2."+tc.name[:1])
					if tc.want == "" {
						if !errors.Is(err, auth.ErrInvalidCredentials) {
							t.Fatalf("err = %v, want ErrInvalidCredentials", err)
						}
						return
					}
					if err != nil || acct.Address != tc.want {
						t.Fatalf("got %q, %v; want %q", acct.Address, err, tc.want)
					}
				})
			}
			if strings.Contains(e.logs.String(), "correct horse") || strings.Contains(e.logs.String(), "Correct horse") {
				t.Fatal("a password was logged")
			}
			if !strings.Contains(e.logs.String(), "ip=192.0.2.w") || !strings.Contains(e.logs.String(), "reason=\"wrong password\"") {
				t.Fatalf("failure log lacks ip or reason:\n%s", e.logs)
			}
		})
	}
}

func TestDelayThenLockout(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			e := setup(t, b.URL(t))
			ctx := context.Background()
			const user = "zhang.san@example.gov.cn"
			// Failures 1..3 are answered at once; from the 4th attempt
			// (3 failures recorded) each waits, doubling.
			var got []time.Duration
			for i := 0; i < 10; i++ {
				_, err := e.auth.Authenticate(ctx, user, "guess", "198.51.100.7")
				if !errors.Is(err, auth.ErrInvalidCredentials) {
					t.Fatalf("attempt %d: %v", i+1, err)
				}
				s := e.clk.takeSleeps()
				if len(s) == 1 {
					got = append(got, s[0])
				} else {
					got = append(got, 0)
				}
				e.clk.advance(time.Second)
			}
			want := []time.Duration{0, 0, 0, 1, 2, 4, 8, 16, 30, 30}
			for i := range want {
				if got[i] != want[i]*time.Second {
					t.Fatalf("delays %v, want %v (seconds)", got, want)
				}
			}
			// 10 failures: locked, even with the right password, from
			// another IP, and through the alias.
			for _, try := range []struct{ user, ip string }{{user, "198.51.100.7"}, {user, "203.0.113.9"}, {"zs@example.gov.cn", "203.0.113.9"}} {
				if _, err := e.auth.Authenticate(ctx, try.user, "correct horse", try.ip); !errors.Is(err, auth.ErrLockedOut) {
					t.Fatalf("%v: err = %v, want ErrLockedOut", try, err)
				}
			}
			// The lock ends after 15 minutes; the success clears the count.
			e.clk.advance(16 * time.Minute)
			if _, err := e.auth.Authenticate(ctx, user, "correct horse", "203.0.113.9"); err != nil {
				t.Fatalf("after lockout: %v", err)
			}
			e.clk.takeSleeps()
			if _, err := e.auth.Authenticate(ctx, user, "guess", "203.0.113.10"); !errors.Is(err, auth.ErrInvalidCredentials) {
				t.Fatal(err)
			}
			if s := e.clk.takeSleeps(); len(s) != 0 {
				t.Fatalf("count not cleared by success: delayed %v", s)
			}
		})
	}
}

// TestIPLockout: one IP guessing at many accounts is locked at IPLockAfter,
// and a success on some account does not clear the IP's count.
func TestIPLockout(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			store := openStore(t, b.URL(t))
			ctx := context.Background()
			h, _ := passhash.Hash("pw")
			store.CreateAccount(ctx, mailcore.NewAccount{Address: "a@example.gov.cn", PasswordHash: h})
			clk := &clock{t: time.Unix(1_800_000_000, 0)}
			a := auth.New(store, auth.Options{Now: clk.now, Sleep: clk.sleep, IPLockAfter: 5, LockAfter: 100})
			const ip = "192.0.2.66"
			for i := 0; i < 4; i++ {
				if _, err := a.Authenticate(ctx, "user"+string(rune('0'+i))+"@example.gov.cn", "x", ip); !errors.Is(err, auth.ErrInvalidCredentials) {
					t.Fatal(err)
				}
			}
			if _, err := a.Authenticate(ctx, "a@example.gov.cn", "pw", ip); err != nil {
				t.Fatal(err)
			}
			if _, err := a.Authenticate(ctx, "user9@example.gov.cn", "x", ip); !errors.Is(err, auth.ErrInvalidCredentials) {
				t.Fatal(err)
			}
			if _, err := a.Authenticate(ctx, "a@example.gov.cn", "pw", ip); !errors.Is(err, auth.ErrLockedOut) {
				t.Fatalf("IP not locked after 5 failures: %v", err)
			}
			if _, err := a.Authenticate(ctx, "a@example.gov.cn", "pw", "192.0.2.67"); err != nil {
				t.Fatalf("another IP: %v", err)
			}
		})
	}
}

// TestSharedAcrossNodes: two Authenticators on one database (two nodes)
// count the same failures, concurrently, without losing any.
func TestSharedAcrossNodes(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			url := b.URL(t)
			s1 := openStore(t, url)
			s2 := openStore(t, url)
			ctx := context.Background()
			h, _ := passhash.Hash("pw")
			s1.CreateAccount(ctx, mailcore.NewAccount{Address: "a@example.gov.cn", PasswordHash: h})
			clk := &clock{t: time.Unix(1_800_000_000, 0)}
			opts := auth.Options{Now: clk.now, Sleep: clk.sleep, LockAfter: 6, IPLockAfter: 1000}
			nodes := []*auth.Authenticator{auth.New(s1, opts), auth.New(s2, opts)}
			var wg sync.WaitGroup
			for i := 0; i < 6; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					nodes[i%2].Authenticate(ctx, "a@example.gov.cn", "bad", "192.0.2.1")
				}(i)
			}
			wg.Wait()
			if _, err := nodes[0].Authenticate(ctx, "a@example.gov.cn", "pw", "192.0.2.2"); !errors.Is(err, auth.ErrLockedOut) {
				t.Fatalf("6 failures over two nodes did not lock: %v", err)
			}
		})
	}
}

func TestPrune(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			e := setup(t, b.URL(t))
			ctx := context.Background()
			for i := 0; i < 3; i++ {
				e.auth.Authenticate(ctx, "x@example.gov.cn", "bad", "192.0.2.1")
			}
			count := func() int {
				var n int
				e.store.DB().X.GetContext(ctx, &n, `SELECT COUNT(*) FROM auth_failures`)
				return n
			}
			if count() != 2 {
				t.Fatalf("%d rows, want 2 (account and IP)", count())
			}
			if n, _ := e.auth.Prune(ctx); n != 0 {
				t.Fatalf("pruned %d live rows", n)
			}
			e.clk.advance(16 * time.Minute)
			if n, err := e.auth.Prune(ctx); err != nil || n != 2 {
				t.Fatalf("pruned %d, %v; want 2", n, err)
			}
		})
	}
}

// TestIPDelay: one IP's failures at different accounts delay that IP from
// IPDelayAfter on, not from DelayAfter (shared NAT addresses).
func TestIPDelay(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			e := setup(t, b.URL(t))
			ctx := context.Background()
			var delayed []int
			for i := 0; i < 12; i++ {
				e.auth.Authenticate(ctx, "user"+string(rune('a'+i))+"@example.gov.cn", "x", "192.0.2.200")
				if len(e.clk.takeSleeps()) > 0 {
					delayed = append(delayed, i+1)
				}
			}
			if len(delayed) != 2 || delayed[0] != 11 {
				t.Fatalf("delayed attempts %v, want [11 12]", delayed)
			}
		})
	}
}
