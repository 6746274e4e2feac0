package affairslink

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"context"
)

// FuzzChangeEntry: any element of a change page maps to an Entry (maybe
// with Err) without panicking, and an Entry without Err has its object.
func FuzzChangeEntry(f *testing.F) {
	f.Add(`{"type":"user","action":"upsert","id":"u1","user":{"id":"u1","name":"张三","departments":[{"id":"d1"}]}}`)
	f.Add(`{"type":"department","action":"delete","id":"d1"}`)
	f.Add(`{"type":"department","action":"upsert","department":{"id":"d1","parent_id":"d1"}}`)
	f.Add(`[1,2]`)
	f.Fuzz(func(t *testing.T, s string) {
		e := changeEntry(json.RawMessage(s))
		if e.Err == nil && !e.Deleted && e.Person == nil && e.Department == nil {
			t.Fatalf("entry without error, deletion or object: %+v", e)
		}
		personEntry(json.RawMessage(s))
		deptEntry(json.RawMessage(s))
	})
}

// FuzzCallback: hostile callbacks never reach OnEvent unless signed.
func FuzzCallback(f *testing.F) {
	f.Add("1796288400", "4f1c2a9be07d4c7e", "00", `{"type":"user.upsert","id":"u1"}`)
	f.Add("", "", "", "")
	f.Fuzz(func(t *testing.T, ts, nonce, sig, body string) {
		h, _ := NewCallbackHandler(CallbackConfig{
			Secret: "k", Now: func() time.Time { return time.Unix(1796288400, 0) },
			OnEvent: func(context.Context, Event) error { t.Fatal("unsigned event handled"); return nil },
		})
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		r.Header.Set(HeaderTimestamp, ts)
		r.Header.Set(HeaderNonce, nonce)
		r.Header.Set(HeaderSignature, sig)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
	})
}
