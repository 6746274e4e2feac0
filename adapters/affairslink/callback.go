package affairslink

import (
	"container/heap"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"
)

// Callback headers of the contract (docs/affairslink.md, "Change-event
// callbacks").
const (
	HeaderTimestamp = "X-Affairs-Timestamp"
	HeaderNonce     = "X-Affairs-Nonce"
	HeaderSignature = "X-Affairs-Signature"
)

// Callback limits.
const (
	// DefaultReplayWindow: a callback whose timestamp is further than this
	// from our clock, either way, is refused.
	DefaultReplayWindow = 5 * time.Minute
	// DefaultMaxNonces bounds the nonce memory. At the contract's limit of
	// 100 callbacks a second per app that is well above five minutes'
	// worth (30,000).
	DefaultMaxNonces = 100_000
	// maxCallbackBody: an event is a few hundred bytes.
	maxCallbackBody = 64 << 10
)

// Event types the affairs link sends.
const (
	EventUserUpsert       = "user.upsert"
	EventUserDelete       = "user.delete"
	EventDepartmentUpsert = "department.upsert"
	EventDepartmentDelete = "department.delete"
)

// Event is one verified change event: what changed, not its new value;
// the receiver fetches the object (FetchPerson, FetchDepartment).
type Event struct {
	// EventID is unique per event; the affairs link sends it again,
	// re-signed with a new nonce, when a delivery was not acknowledged,
	// so a handler may see an EventID twice and must be idempotent.
	EventID    string    `json:"event_id"`
	Type       string    `json:"type"`
	ID         string    `json:"id"`
	OccurredAt time.Time `json:"occurred_at"`
}

// Sign returns the contract's signature of one callback: lowercase hex of
// HMAC-SHA256 keyed by the app secret over timestamp "\n" nonce "\n" body.
// The separators make the split unambiguous (a timestamp of digits and a
// nonce from [A-Za-z0-9_-] contain no newline).
func Sign(secret, timestamp, nonce string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp))
	m.Write([]byte("\n"))
	m.Write([]byte(nonce))
	m.Write([]byte("\n"))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// CallbackConfig configures a CallbackHandler.
type CallbackConfig struct {
	// Secret is the app secret shared with the affairs link. Never logged.
	Secret string
	// Window is the replay window; default DefaultReplayWindow.
	Window time.Duration
	// MaxNonces bounds the nonce memory; default DefaultMaxNonces. When it
	// is full of nonces still inside the window the handler answers 503
	// rather than forget one (forgetting would let its callback replay).
	MaxNonces int
	// OnEvent receives each verified event of a known type. An error
	// answers 500 so the affairs link delivers the event again.
	OnEvent func(ctx context.Context, ev Event) error
	// Nonces, when set, remembers nonces for every node of the deployment
	// (cmd/govhub backs it with the database), so a callback replayed to
	// another node is refused too. Unset: the bounded per-process memory.
	Nonces NonceStore
	Now    func() time.Time
	Logger *slog.Logger
}

// NonceStore remembers callback nonces across nodes.
type NonceStore interface {
	// Remember records nonce until until; fresh is false when it was
	// already recorded. An error means it could not tell (the callback is
	// then answered 503 so the affairs link sends it again).
	Remember(ctx context.Context, nonce string, until time.Time) (fresh bool, err error)
}

// CallbackHandler verifies and dispatches the affairs link's change-event
// callbacks. Nonces are remembered by CallbackConfig.Nonces when set
// (shared by every node), else in a bounded per-process memory.
type CallbackHandler struct {
	cfg CallbackConfig
	log *slog.Logger

	mu     sync.Mutex
	nonces map[string]time.Time
	expiry nonceHeap
}

// NewCallbackHandler checks cfg and returns the handler.
func NewCallbackHandler(cfg CallbackConfig) (*CallbackHandler, error) {
	if cfg.Secret == "" {
		return nil, errors.New("affairslink: callback secret is required")
	}
	if cfg.OnEvent == nil {
		return nil, errors.New("affairslink: callback OnEvent is required")
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultReplayWindow
	}
	if cfg.MaxNonces <= 0 {
		cfg.MaxNonces = DefaultMaxNonces
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &CallbackHandler{
		cfg:    cfg,
		log:    cfg.Logger.With("component", "affairslink.callback"),
		nonces: map[string]time.Time{},
	}, nil
}

// CallbackHandler returns a handler keyed by the client's app secret.
// nonces may be nil (per-process memory).
func (c *Client) CallbackHandler(onEvent func(ctx context.Context, ev Event) error, nonces NonceStore) (*CallbackHandler, error) {
	return NewCallbackHandler(CallbackConfig{Secret: c.cfg.AppSecret, OnEvent: onEvent, Nonces: nonces, Now: c.cfg.Now, Logger: c.cfg.Logger})
}

var nonceRE = regexp.MustCompile(`^[A-Za-z0-9_-]{16,64}$`)

// reply writes the generic answers of the contract: a code, never why in
// detail (a forger learns nothing about which check failed beyond the
// status the contract documents).
func reply(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, `{"code":"`+code+`"}`+"\n")
}

// ServeHTTP checks, in this order: method, body size, headers, timestamp
// window (401), signature (401), nonce (409), event (400). The nonce is
// remembered only after the signature holds, so unsigned floods cannot
// fill the memory.
func (h *CallbackHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := h.log.With("remote", r.RemoteAddr)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		reply(w, http.StatusMethodNotAllowed, "method_not_allowed")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxCallbackBody+1))
	if err != nil {
		reply(w, http.StatusBadRequest, "bad_request")
		return
	}
	if len(body) > maxCallbackBody {
		reply(w, http.StatusRequestEntityTooLarge, "too_large")
		return
	}
	tsText, nonce, sig := r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderNonce), r.Header.Get(HeaderSignature)
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil || !nonceRE.MatchString(nonce) || sig == "" {
		log.Warn("callback refused", "reason", "missing or malformed signature headers")
		reply(w, http.StatusUnauthorized, "unauthorized")
		return
	}
	now := h.cfg.Now()
	sent := time.Unix(ts, 0)
	if d := now.Sub(sent); d > h.cfg.Window || d < -h.cfg.Window {
		log.Warn("callback refused", "reason", "timestamp outside window", "skew", d.Round(time.Second))
		reply(w, http.StatusUnauthorized, "unauthorized")
		return
	}
	want := Sign(h.cfg.Secret, tsText, nonce, body)
	if !hmac.Equal([]byte(want), []byte(sig)) {
		log.Warn("callback refused", "reason", "bad signature")
		reply(w, http.StatusUnauthorized, "unauthorized")
		return
	}
	result := nonceNew
	if h.cfg.Nonces != nil {
		fresh, err := h.cfg.Nonces.Remember(r.Context(), nonce, sent.Add(h.cfg.Window))
		switch {
		case err != nil:
			log.Error("callback refused", "reason", "nonce store unavailable", "err", err)
			result = nonceFull
		case !fresh:
			result = nonceReplayed
		}
	} else {
		result = h.remember(nonce, sent.Add(h.cfg.Window), now)
	}
	switch result {
	case nonceReplayed:
		log.Warn("callback refused", "reason", "nonce replayed")
		reply(w, http.StatusConflict, "replayed")
		return
	case nonceFull:
		log.Error("callback refused", "reason", "nonce memory full")
		w.Header().Set("Retry-After", "5")
		reply(w, http.StatusServiceUnavailable, "busy")
		return
	}
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil || ev.Type == "" || ev.ID == "" {
		log.Warn("callback refused", "reason", "malformed event")
		reply(w, http.StatusBadRequest, "bad_request")
		return
	}
	switch ev.Type {
	case EventUserUpsert, EventUserDelete, EventDepartmentUpsert, EventDepartmentDelete:
	default:
		// Signed but of a type this version does not know (a later
		// contract revision): acknowledged so it is not sent again.
		log.Info("callback ignored", "type", ev.Type, "event_id", ev.EventID)
		reply(w, http.StatusOK, "ok")
		return
	}
	if err := h.cfg.OnEvent(r.Context(), ev); err != nil {
		log.Error("callback handler failed", "type", ev.Type, "event_id", ev.EventID, "err", err)
		reply(w, http.StatusInternalServerError, "internal")
		return
	}
	log.Info("callback accepted", "type", ev.Type, "id", ev.ID, "event_id", ev.EventID)
	reply(w, http.StatusOK, "ok")
}

type nonceResult int

const (
	nonceNew nonceResult = iota
	nonceReplayed
	nonceFull
)

// remember records nonce until until, first forgetting nonces whose
// window has passed (a callback carrying one is refused by the timestamp
// check anyway).
func (h *CallbackHandler) remember(nonce string, until, now time.Time) nonceResult {
	h.mu.Lock()
	defer h.mu.Unlock()
	for h.expiry.Len() > 0 && !h.expiry[0].until.After(now) {
		n := heap.Pop(&h.expiry).(nonceAt)
		if h.nonces[n.nonce].Equal(n.until) {
			delete(h.nonces, n.nonce)
		}
	}
	if _, seen := h.nonces[nonce]; seen {
		return nonceReplayed
	}
	if len(h.nonces) >= h.cfg.MaxNonces {
		return nonceFull
	}
	h.nonces[nonce] = until
	heap.Push(&h.expiry, nonceAt{nonce, until})
	return nonceNew
}

type nonceAt struct {
	nonce string
	until time.Time
}

// nonceHeap is a min-heap by expiry (container/heap).
type nonceHeap []nonceAt

func (h nonceHeap) Len() int           { return len(h) }
func (h nonceHeap) Less(i, j int) bool { return h[i].until.Before(h[j].until) }
func (h nonceHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *nonceHeap) Push(x any)        { *h = append(*h, x.(nonceAt)) }
func (h *nonceHeap) Pop() any {
	old := *h
	n := old[len(old)-1]
	*h = old[:len(old)-1]
	return n
}
