package affairslink_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govhub/govhub/adapters/affairslink"
	"github.com/govhub/govhub/adapters/affairslink/simulator"
	"github.com/govhub/govhub/directory"
)

type callbackEnv struct {
	*env
	url    string
	mu     sync.Mutex
	events []affairslink.Event
	synced []directory.Entry
}

func (c *callbackEnv) got() ([]affairslink.Event, []directory.Entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]affairslink.Event(nil), c.events...), append([]directory.Entry(nil), c.synced...)
}

// newCallbackEnv serves the client's CallbackHandler on 127.0.0.1:0; each
// accepted event triggers the targeted sync the wiring would do: a fetch
// of the one person.
func newCallbackEnv(t *testing.T, maxNonces int) *callbackEnv {
	e := &callbackEnv{env: newEnv(t, 2, 5, nil)}
	h, err := affairslink.NewCallbackHandler(affairslink.CallbackConfig{
		Secret: testSecret, MaxNonces: maxNonces, Now: e.clock.Now,
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnEvent: func(ctx context.Context, ev affairslink.Event) error {
			var en directory.Entry
			var err error
			if strings.HasPrefix(ev.Type, "user.") {
				en, err = e.client.FetchPerson(ctx, ev.ID)
			}
			if err != nil {
				return err
			}
			e.mu.Lock()
			e.events = append(e.events, ev)
			e.synced = append(e.synced, en)
			e.mu.Unlock()
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	e.url = srv.URL + "/callbacks/affairslink"
	return e
}

func (c *callbackEnv) send(t *testing.T, ev simulator.Event, o simulator.CallbackOptions) int {
	t.Helper()
	code, err := c.sim.SendCallback(context.Background(), c.url, ev, o)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

func TestCallbacks(t *testing.T) {
	e := newCallbackEnv(t, 0)
	ev := simulator.Event{Type: "user.upsert", ID: "u00002"}
	nonce := simulator.NewNonce()

	if code := e.send(t, ev, simulator.CallbackOptions{Nonce: nonce}); code != 200 {
		t.Fatalf("good callback: %d", code)
	}
	events, synced := e.got()
	if len(events) != 1 || events[0].ID != "u00002" || events[0].EventID == "" {
		t.Fatalf("events %+v", events)
	}
	if synced[0].Person == nil || synced[0].Anchor != "u00002" {
		t.Errorf("targeted sync fetched %+v", synced[0])
	}

	now := e.clock.Now()
	for _, tc := range []struct {
		name string
		o    simulator.CallbackOptions
		want int
	}{
		{"replayed nonce", simulator.CallbackOptions{Nonce: nonce}, http.StatusConflict},
		{"bad signature", simulator.CallbackOptions{Secret: "forged"}, http.StatusUnauthorized},
		{"body changed after signing", simulator.CallbackOptions{TamperAfterSign: true}, http.StatusUnauthorized},
		{"stale timestamp", simulator.CallbackOptions{Timestamp: now.Add(-5*time.Minute - time.Second)}, http.StatusUnauthorized},
		{"future timestamp", simulator.CallbackOptions{Timestamp: now.Add(5*time.Minute + time.Second)}, http.StatusUnauthorized},
		{"malformed nonce", simulator.CallbackOptions{Nonce: "short"}, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code := e.send(t, ev, tc.o); code != tc.want {
				t.Errorf("status %d, want %d", code, tc.want)
			}
		})
	}
	if events, _ := e.got(); len(events) != 1 {
		t.Errorf("refused callbacks reached the handler: %+v", events)
	}

	// A replay refused by its timestamp once the window has passed, even
	// though the nonce memory has forgotten it by then.
	e.clock.Add(6 * time.Minute)
	if code := e.send(t, ev, simulator.CallbackOptions{Nonce: nonce, Timestamp: now}); code != http.StatusUnauthorized {
		t.Errorf("replay after the window: %d, want 401", code)
	}
	// Near the window's edge but inside it: accepted.
	if code := e.send(t, ev, simulator.CallbackOptions{Timestamp: e.clock.Now().Add(-4 * time.Minute)}); code != 200 {
		t.Errorf("callback 4 minutes old: %d, want 200", code)
	}
}

func TestCallbackRefusalsAreGeneric(t *testing.T) {
	e := newCallbackEnv(t, 0)
	for _, tc := range []struct {
		name string
		req  func() *http.Request
		want int
	}{
		{"no headers", func() *http.Request {
			r, _ := http.NewRequest("POST", e.url, strings.NewReader(`{"type":"user.upsert","id":"u1"}`))
			return r
		}, 401},
		{"GET", func() *http.Request { r, _ := http.NewRequest("GET", e.url, nil); return r }, 405},
		{"wrong signature", func() *http.Request {
			r, _ := http.NewRequest("POST", e.url, strings.NewReader(`{}`))
			r.Header.Set(affairslink.HeaderTimestamp, "1796288400")
			r.Header.Set(affairslink.HeaderNonce, simulator.NewNonce())
			r.Header.Set(affairslink.HeaderSignature, strings.Repeat("0", 64))
			return r
		}, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.DefaultClient.Do(tc.req())
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
			for _, leak := range []string{"signature", "timestamp", "nonce", "secret", "hmac"} {
				if strings.Contains(strings.ToLower(string(b)), leak) {
					t.Errorf("body %q says why (%s)", b, leak)
				}
			}
		})
	}
	if strings.Contains(e.logs.String(), testSecret) {
		t.Error("secret in the callback log")
	}
}

func TestCallbackSignedBodyChecks(t *testing.T) {
	e := newCallbackEnv(t, 0)
	if code := e.send(t, simulator.Event{}, simulator.CallbackOptions{Body: []byte(`not json`)}); code != 400 {
		t.Errorf("signed garbage: %d, want 400", code)
	}
	if code := e.send(t, simulator.Event{}, simulator.CallbackOptions{Body: []byte(`{"type":"login.code","id":"x"}`)}); code != 200 {
		t.Errorf("signed unknown type: %d, want 200 (acknowledged, ignored)", code)
	}
	if events, _ := e.got(); len(events) != 0 {
		t.Errorf("handler called for %+v", events)
	}
}

func TestCallbackNonceMemoryBounded(t *testing.T) {
	e := newCallbackEnv(t, 2)
	ev := simulator.Event{Type: "user.delete", ID: "u00404"}
	for i := range 2 {
		if code := e.send(t, ev, simulator.CallbackOptions{}); code != 200 {
			t.Fatalf("callback %d: %d", i, code)
		}
	}
	// Full of nonces still inside the window: refused, not forgotten.
	if code := e.send(t, ev, simulator.CallbackOptions{}); code != http.StatusServiceUnavailable {
		t.Errorf("callback beyond the nonce bound: %d, want 503", code)
	}
	e.clock.Add(5*time.Minute + time.Second)
	if code := e.send(t, ev, simulator.CallbackOptions{}); code != 200 {
		t.Errorf("callback after the window freed the memory: %d, want 200", code)
	}
	_, synced := e.got()
	if len(synced) != 3 || !synced[0].Deleted {
		t.Errorf("targeted syncs %+v, want 3 deletions", synced)
	}
}

func TestCallbackHandlerErrorAsksForRedelivery(t *testing.T) {
	e := newEnv(t, 1, 1, nil)
	h, err := e.client.CallbackHandler(func(context.Context, affairslink.Event) error { return errors.New("db down") }, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	code, err := e.sim.SendCallback(context.Background(), srv.URL, simulator.Event{Type: "department.upsert", ID: "d001"}, simulator.CallbackOptions{})
	if err != nil || code != 500 {
		t.Errorf("status %d err %v, want 500", code, err)
	}
}

// TestSignatureMatchesContract pins Sign to the documented example in
// docs/affairslink.md, so the doc and the code cannot drift apart.
func TestSignatureMatchesContract(t *testing.T) {
	got := affairslink.Sign("s3cr3t", "1796288400", "4f1c2a9be07d4c7e", []byte(`{"event_id":"ev-1","type":"user.upsert","id":"u00002","occurred_at":"2026-12-03T09:00:00Z"}`))
	doc, err := os.ReadFile("../../docs/affairslink.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), got) {
		t.Errorf("docs/affairslink.md does not show the signature %s of its example", got)
	}
}

// sharedNonces stands in for the database-backed store every node shares.
type sharedNonces struct {
	mu   sync.Mutex
	seen map[string]bool
	err  error
}

func (s *sharedNonces) Remember(_ context.Context, nonce string, _ time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return false, s.err
	}
	if s.seen[nonce] {
		return false, nil
	}
	s.seen[nonce] = true
	return true, nil
}

// TestCallbackNoncesShared: with a shared nonce store, a callback replayed
// to a second node is refused; a store that cannot answer gets 503 so the
// affairs link sends the event again.
func TestCallbackNoncesShared(t *testing.T) {
	e := &callbackEnv{env: newEnv(t, 2, 5, nil)}
	store := &sharedNonces{seen: map[string]bool{}}
	var urls []string
	for range 2 {
		h, err := e.client.CallbackHandler(func(context.Context, affairslink.Event) error { return nil }, store)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		urls = append(urls, srv.URL)
	}
	ev := simulator.Event{Type: "user.upsert", ID: "u00002"}
	nonce := simulator.NewNonce()
	send := func(url string, o simulator.CallbackOptions) int {
		code, err := e.sim.SendCallback(context.Background(), url, ev, o)
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	if code := send(urls[0], simulator.CallbackOptions{Nonce: nonce}); code != 200 {
		t.Fatalf("first node: %d", code)
	}
	if code := send(urls[1], simulator.CallbackOptions{Nonce: nonce}); code != http.StatusConflict {
		t.Fatalf("replay to the second node: %d, want 409", code)
	}
	store.err = errors.New("database down")
	if code := send(urls[1], simulator.CallbackOptions{}); code != http.StatusServiceUnavailable {
		t.Fatalf("store down: %d, want 503", code)
	}
}
