// Package simulator is a contract simulator of the affairs link's REST API
// (docs/affairslink.md): an http.Handler over an in-memory org chart, with
// fault injection the tests toggle (429 with Retry-After, 5xx for the next
// N requests, slow pages, tokens that expire after N requests, expired
// change cursors), a record of the requests it answered, and a sender of
// signed change-event callbacks (including forged, stale and replayed
// ones). Serve it with httptest.NewServer(sim) in tests, or with any
// http.Server for a demo.
//
// It deliberately shares no code with package affairslink: its wire
// structs and its signature are written from the contract, so the tests
// check the contract rather than a struct both sides import.
package simulator

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Dept is a department on the wire.
type Dept struct {
	ID       string `json:"id"`
	ParentID string `json:"parent_id,omitempty"`
	Name     string `json:"name"`
	Order    int    `json:"order"`
	Status   string `json:"status"`
}

// Member is one department membership on the wire.
type Member struct {
	ID    string `json:"id"`
	Order int    `json:"order"`
}

// User is a person on the wire.
type User struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Title       string   `json:"title,omitempty"`
	Rank        string   `json:"rank,omitempty"`
	Departments []Member `json:"departments,omitempty"`
	OfficePhone string   `json:"office_phone,omitempty"`
	Mobile      string   `json:"mobile,omitempty"`
	Email       string   `json:"email,omitempty"`
	JobNumber   string   `json:"job_number,omitempty"`
	Status      string   `json:"status"`
}

// Request is one request the simulator answered.
type Request struct {
	Method string
	Path   string
	Query  string
	Status int
}

// Config configures a simulator.
type Config struct {
	AppKey    string
	AppSecret string
	// TokenTTL is the expires_in of issued tokens; default 2 h.
	TokenTTL time.Duration
	// MaxPageSize caps limit=; default 500 (the contract's limit).
	MaxPageSize int
	Now         func() time.Time
}

type change struct {
	seq    int64
	typ    string // user, department
	action string // upsert, delete
	id     string
}

// Server is the simulator. Safe for concurrent use.
type Server struct {
	cfg Config
	mux *http.ServeMux

	mu        sync.Mutex
	depts     map[string]Dept
	users     map[string]User
	rawUsers  []string // extra raw list items, for broken-element tests
	log       []change
	seq       int64
	minSeq    int64 // cursors below it are expired
	tokens    map[string]time.Time
	nextID    int
	idem      map[string]string // Idempotency-Key -> user id
	requests  []Request
	rateN     int
	rateAfter time.Duration
	failN     int
	failCode  int
	slow      time.Duration
	loseN     int
	expireIn  int // authenticated requests until all tokens expire; 0 off
	codes     map[string]loginCode
}

// loginCode is one issued one-time login code.
type loginCode struct {
	user    string
	expires time.Time
}

// New returns an empty simulator.
func New(cfg Config) *Server {
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = 2 * time.Hour
	}
	if cfg.MaxPageSize == 0 {
		cfg.MaxPageSize = 500
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, depts: map[string]Dept{}, users: map[string]User{}, tokens: map[string]time.Time{}, idem: map[string]string{}, codes: map[string]loginCode{}}
	m := http.NewServeMux()
	m.HandleFunc("POST /v1/token", s.token)
	m.HandleFunc("GET /v1/departments", s.auth(s.listDepts))
	m.HandleFunc("GET /v1/departments/{id}", s.auth(s.getDept))
	m.HandleFunc("GET /v1/users", s.auth(s.listUsers))
	m.HandleFunc("POST /v1/users", s.auth(s.createUser))
	m.HandleFunc("GET /v1/users/{id}", s.auth(s.getUser))
	m.HandleFunc("PATCH /v1/users/{id}", s.auth(s.patchUser))
	m.HandleFunc("GET /v1/changes/latest", s.auth(s.latest))
	m.HandleFunc("GET /v1/changes", s.auth(s.changes))
	m.HandleFunc("POST /v1/auth/code", s.auth(s.exchangeCode))
	s.mux = m
	return s
}

var surnames = []rune("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐")
var given = []string{"伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀兰", "霞"}

// Seed fills the chart with a root department and depts sub-departments
// and users people with Chinese names, mobiles 138..., mails and
// employee numbers, deterministically. It logs no changes: it is the
// state before any cursor.
func (s *Server) Seed(depts, users int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.depts["d000"] = Dept{ID: "d000", Name: "省人民政府办公厅", Order: 0, Status: "active"}
	names := []string{"秘书处", "信息中心", "政务公开处", "人事处", "财务处", "督查室", "法规处", "机关党委"}
	for i := 1; i <= depts; i++ {
		n := names[(i-1)%len(names)]
		if i > len(names) {
			n += strconv.Itoa(i)
		}
		s.depts[fmt.Sprintf("d%03d", i)] = Dept{ID: fmt.Sprintf("d%03d", i), ParentID: "d000", Name: n, Order: i, Status: "active"}
	}
	for i := 1; i <= users; i++ {
		id := fmt.Sprintf("u%05d", i)
		name := string(surnames[i%len(surnames)]) + given[(i/len(surnames))%len(given)]
		d := "d000"
		if depts > 0 {
			d = fmt.Sprintf("d%03d", 1+i%depts)
		}
		s.users[id] = User{
			ID: id, Name: name, Title: "科员", Departments: []Member{{ID: d, Order: i}},
			Mobile: fmt.Sprintf("138%08d", i), Email: fmt.Sprintf("user%05d@gov.example.cn", i),
			JobNumber: fmt.Sprintf("E%06d", i), Status: "active",
		}
	}
	s.nextID = users + 1
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		s.mu.Lock()
		s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Status: rec.status})
		s.mu.Unlock()
	}()
	s.mu.Lock()
	if s.rateN > 0 {
		s.rateN--
		after := s.rateAfter
		s.mu.Unlock()
		rec.Header().Set("Retry-After", strconv.Itoa(int(after/time.Second)))
		writeErr(rec, http.StatusTooManyRequests, "rate_limited", "too many requests")
		return
	}
	if s.failN > 0 {
		s.failN--
		code := s.failCode
		s.mu.Unlock()
		writeErr(rec, code, "internal_error", "temporarily unavailable")
		return
	}
	slow := s.slow
	lose := s.loseN > 0
	if lose {
		s.loseN--
	}
	s.mu.Unlock()
	if lose {
		// Do the work, then lose the answer, as a proxy timing out after
		// the service committed would.
		s.mux.ServeHTTP(&discard{h: http.Header{}}, r)
		writeErr(rec, http.StatusBadGateway, "internal_error", "upstream answer lost")
		return
	}
	if slow > 0 && r.Method == http.MethodGet {
		select {
		case <-time.After(slow):
		case <-r.Context().Done():
			return
		}
	}
	s.mux.ServeHTTP(rec, r)
}

type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"code": code, "message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Fault injection.

// RateLimitNext answers the next n requests 429 with Retry-After.
func (s *Server) RateLimitNext(n int, retryAfter time.Duration) {
	s.mu.Lock()
	s.rateN, s.rateAfter = n, retryAfter
	s.mu.Unlock()
}

// FailNext answers the next n requests with status (a 5xx).
func (s *Server) FailNext(n, status int) {
	s.mu.Lock()
	s.failN, s.failCode = n, status
	s.mu.Unlock()
}

// LoseAnswers carries out the next n requests but answers them 502, as
// if the answer was lost on the way back (for idempotency tests).
func (s *Server) LoseAnswers(n int) {
	s.mu.Lock()
	s.loseN = n
	s.mu.Unlock()
}

// SlowPages delays every GET by d (0: off).
func (s *Server) SlowPages(d time.Duration) {
	s.mu.Lock()
	s.slow = d
	s.mu.Unlock()
}

// ExpireTokensAfter lets n more authenticated requests through, then
// expires every token issued so far (401 token_expired), as a token
// revoked or lost by a restart would be.
func (s *Server) ExpireTokensAfter(n int) {
	s.mu.Lock()
	s.expireIn = n
	s.mu.Unlock()
}

// ExpireCursors drops the change log: every change cursor issued so far
// gets 410 cursor_expired.
func (s *Server) ExpireCursors() {
	s.mu.Lock()
	s.seq++ // a new epoch: the head cursor is valid, every older one not
	s.minSeq = s.seq
	s.mu.Unlock()
}

// AddRawUser adds a raw JSON element at the end of the users listing
// (a broken element for per-object error tests).
func (s *Server) AddRawUser(raw string) {
	s.mu.Lock()
	s.rawUsers = append(s.rawUsers, raw)
	s.mu.Unlock()
}

// IssuedTokens returns every access token issued so far (for tests that
// check tokens stay out of logs).
func (s *Server) IssuedTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for t := range s.tokens {
		out = append(out, t)
	}
	return out
}

// Requests returns the requests answered so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Chart edits (each logged as a change, as the real service would).

// PutUser creates or replaces a user.
func (s *Server) PutUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.Status == "" {
		u.Status = "active"
	}
	s.users[u.ID] = u
	s.logChange("user", "upsert", u.ID)
}

// DeleteUser removes a user.
func (s *Server) DeleteUser(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.users, id)
	s.logChange("user", "delete", id)
}

// PutDept creates or replaces a department.
func (s *Server) PutDept(d Dept) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d.Status == "" {
		d.Status = "active"
	}
	s.depts[d.ID] = d
	s.logChange("department", "upsert", d.ID)
}

// DeleteDept removes a department.
func (s *Server) DeleteDept(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.depts, id)
	s.logChange("department", "delete", id)
}

// User returns the current state of a user.
func (s *Server) User(id string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	return u, ok
}

// UserCount returns how many users the chart holds.
func (s *Server) UserCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.users)
}

func (s *Server) logChange(typ, action, id string) {
	s.seq++
	s.log = append(s.log, change{seq: s.seq, typ: typ, action: action, id: id})
}

// Handlers.

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	var in struct {
		AppKey    string `json:"app_key"`
		AppSecret string `json:"app_secret"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&in); err != nil {
		writeErr(w, http.StatusBadRequest, "invalid_request", "body must be a JSON object")
		return
	}
	if !hmac.Equal([]byte(in.AppKey), []byte(s.cfg.AppKey)) || !hmac.Equal([]byte(in.AppSecret), []byte(s.cfg.AppSecret)) {
		writeErr(w, http.StatusUnauthorized, "invalid_credentials", "app key or secret refused")
		return
	}
	tok := randHex(24)
	s.mu.Lock()
	s.tokens[tok] = s.cfg.Now().Add(s.cfg.TokenTTL)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "expires_in": int(s.cfg.TokenTTL / time.Second)})
}

func (s *Server) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		s.mu.Lock()
		exp, known := s.tokens[tok]
		if s.expireIn > 0 {
			s.expireIn--
			if s.expireIn == 0 {
				for t := range s.tokens {
					s.tokens[t] = time.Time{}
				}
			}
		}
		s.mu.Unlock()
		switch {
		case !ok || !known:
			writeErr(w, http.StatusUnauthorized, "invalid_token", "access token missing or unknown")
		case !s.cfg.Now().Before(exp):
			writeErr(w, http.StatusUnauthorized, "token_expired", "access token expired")
		default:
			next(w, r)
		}
	}
}

func encCursor(prefix, v string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(prefix + ":" + v))
}

func decCursor(prefix, c string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", false
	}
	return strings.CutPrefix(string(b), prefix+":")
}

func (s *Server) limit(w http.ResponseWriter, r *http.Request) (int, bool) {
	l := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > s.cfg.MaxPageSize {
			writeErr(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("limit must be 1..%d", s.cfg.MaxPageSize))
			return 0, false
		}
		l = n
	}
	return l, true
}

// listPage pages keys in id order after the cursor's id (keyset paging:
// objects added or removed while a client pages are neither repeated
// nor make it skip others).
func listPage[T any](s *Server, w http.ResponseWriter, r *http.Request, prefix string, m map[string]T, extra []string) {
	l, ok := s.limit(w, r)
	if !ok {
		return
	}
	after := ""
	if c := r.URL.Query().Get("cursor"); c != "" {
		if after, ok = decCursor(prefix, c); !ok {
			writeErr(w, http.StatusBadRequest, "invalid_cursor", "cursor not recognised")
			return
		}
	}
	s.mu.Lock()
	ids := make([]string, 0, len(m))
	for id := range m {
		if id > after {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	var items []json.RawMessage
	more := len(ids) > l
	if more {
		ids = ids[:l]
	}
	for _, id := range ids {
		b, _ := json.Marshal(m[id])
		items = append(items, b)
	}
	if !more {
		for _, raw := range extra {
			items = append(items, json.RawMessage(raw))
		}
	}
	s.mu.Unlock()
	next := ""
	if more {
		next = encCursor(prefix, ids[len(ids)-1])
	}
	if items == nil {
		items = []json.RawMessage{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "next_cursor": next, "has_more": more})
}

func (s *Server) listDepts(w http.ResponseWriter, r *http.Request) {
	listPage(s, w, r, "d", s.depts, nil)
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	extra := append([]string(nil), s.rawUsers...)
	s.mu.Unlock()
	listPage(s, w, r, "u", s.users, extra)
}

func (s *Server) getDept(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	d, ok := s.depts[r.PathValue("id")]
	s.mu.Unlock()
	if !ok {
		writeErr(w, http.StatusNotFound, "not_found", "no such department")
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	u, ok := s.users[r.PathValue("id")]
	s.mu.Unlock()
	if !ok {
		writeErr(w, http.StatusNotFound, "not_found", "no such user")
		return
	}
	writeJSON(w, http.StatusOK, u)
}

var statuses = map[string]bool{"active": true, "disabled": true, "left": true}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) {
	var u User
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&u); err != nil || u.Name == "" || u.ID != "" {
		writeErr(w, http.StatusBadRequest, "invalid_request", "a user needs a name and no id")
		return
	}
	if u.Status == "" {
		u.Status = "active"
	}
	if !statuses[u.Status] {
		writeErr(w, http.StatusBadRequest, "invalid_request", "unknown status")
		return
	}
	key := r.Header.Get("Idempotency-Key")
	s.mu.Lock()
	if id, ok := s.idem[key]; ok && key != "" {
		u = s.users[id]
		s.mu.Unlock()
		writeJSON(w, http.StatusCreated, u)
		return
	}
	if msg := s.conflict(u, ""); msg != "" {
		s.mu.Unlock()
		writeErr(w, http.StatusConflict, "conflict", msg)
		return
	}
	s.nextID++
	u.ID = fmt.Sprintf("u%05d", s.nextID)
	s.users[u.ID] = u
	if key != "" {
		s.idem[key] = u.ID
	}
	s.logChange("user", "upsert", u.ID)
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, u)
}

// conflict: mobiles are unique in the affairs link (staff sign in with
// them). Called with s.mu held.
func (s *Server) conflict(u User, self string) string {
	if u.Mobile == "" {
		return ""
	}
	for id, o := range s.users {
		if id != self && o.Mobile == u.Mobile {
			return "mobile already in use"
		}
	}
	return ""
}

func (s *Server) patchUser(w http.ResponseWriter, r *http.Request) {
	var patch map[string]json.RawMessage
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&patch); err != nil {
		writeErr(w, http.StatusBadRequest, "invalid_request", "body must be a JSON object")
		return
	}
	id := r.PathValue("id")
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		writeErr(w, http.StatusNotFound, "not_found", "no such user")
		return
	}
	// Decode the patch over a copy: absent fields keep their value.
	cur, _ := json.Marshal(u)
	var merged map[string]json.RawMessage
	_ = json.Unmarshal(cur, &merged)
	for k, v := range patch {
		if k == "id" {
			writeErr(w, http.StatusBadRequest, "invalid_field", "id cannot be changed")
			return
		}
		merged[k] = v
	}
	b, _ := json.Marshal(merged)
	var nu User
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&nu); err != nil {
		writeErr(w, http.StatusBadRequest, "invalid_field", "unknown field or wrong type")
		return
	}
	if nu.Name == "" || !statuses[nu.Status] {
		writeErr(w, http.StatusBadRequest, "invalid_field", "name required, status active|disabled|left")
		return
	}
	if msg := s.conflict(nu, id); msg != "" {
		writeErr(w, http.StatusConflict, "conflict", msg)
		return
	}
	s.users[id] = nu
	s.logChange("user", "upsert", id)
	writeJSON(w, http.StatusOK, nu)
}

func (s *Server) latest(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	c := encCursor("c", strconv.FormatInt(s.seq, 10))
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"cursor": c})
}

func (s *Server) changes(w http.ResponseWriter, r *http.Request) {
	l, ok := s.limit(w, r)
	if !ok {
		return
	}
	v, ok := decCursor("c", r.URL.Query().Get("cursor"))
	since, err := strconv.ParseInt(v, 10, 64)
	if !ok || err != nil || since < 0 {
		writeErr(w, http.StatusBadRequest, "invalid_cursor", "cursor not recognised")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if since > s.seq {
		writeErr(w, http.StatusBadRequest, "invalid_cursor", "cursor not recognised")
		return
	}
	if since < s.minSeq {
		writeErr(w, http.StatusGone, "cursor_expired", "cursor expired, run a full sync")
		return
	}
	out := []map[string]any{}
	last := since
	for _, ch := range s.log {
		if ch.seq <= since {
			continue
		}
		if len(out) == l {
			break
		}
		m := map[string]any{"type": ch.typ, "action": ch.action, "id": ch.id}
		// An upsert carries the object's current state; one deleted since
		// is skipped (its delete follows in the log).
		if ch.action == "upsert" {
			if ch.typ == "user" {
				u, ok := s.users[ch.id]
				if !ok {
					last = ch.seq
					continue
				}
				m["user"] = u
			} else {
				d, ok := s.depts[ch.id]
				if !ok {
					last = ch.seq
					continue
				}
				m["department"] = d
			}
		}
		out = append(out, m)
		last = ch.seq
	}
	writeJSON(w, http.StatusOK, map[string]any{"changes": out, "next_cursor": encCursor("c", strconv.FormatInt(last, 10)), "has_more": last < s.seq})
}

// Callbacks.

// Event is a change event on the wire.
type Event struct {
	EventID    string    `json:"event_id"`
	Type       string    `json:"type"`
	ID         string    `json:"id"`
	OccurredAt time.Time `json:"occurred_at"`
}

// CallbackOptions bend a callback for hostile-case tests. Zero values
// send a correct one.
type CallbackOptions struct {
	// Secret overrides the app secret (a forged signature).
	Secret string
	// Timestamp overrides the send time (a stale callback).
	Timestamp time.Time
	// Nonce overrides the random nonce (send one twice: a replay).
	Nonce string
	// Body overrides the encoded event (a tampered body signed or not,
	// see SignBody).
	Body []byte
	// TamperAfterSign changes the body after signing.
	TamperAfterSign bool
}

// NewNonce returns a fresh callback nonce.
func NewNonce() string { return randHex(16) }

// signature: lowercase hex HMAC-SHA256(secret, timestamp "\n" nonce "\n" body).
func signature(secret, ts, nonce string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "%s\n%s\n", ts, nonce)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// SendCallback posts ev to url signed as the contract says and returns the
// HTTP status of the answer.
func (s *Server) SendCallback(ctx context.Context, url string, ev Event, o CallbackOptions) (int, error) {
	if ev.EventID == "" {
		ev.EventID = "ev-" + randHex(8)
	}
	if ev.OccurredAt.IsZero() {
		ev.OccurredAt = s.cfg.Now().UTC().Truncate(time.Second)
	}
	body := o.Body
	if body == nil {
		body, _ = json.Marshal(ev)
	}
	secret := s.cfg.AppSecret
	if o.Secret != "" {
		secret = o.Secret
	}
	at := s.cfg.Now()
	if !o.Timestamp.IsZero() {
		at = o.Timestamp
	}
	nonce := o.Nonce
	if nonce == "" {
		nonce = NewNonce()
	}
	ts := strconv.FormatInt(at.Unix(), 10)
	sig := signature(secret, ts, nonce, body)
	if o.TamperAfterSign {
		body = bytes.Replace(body, []byte(ev.ID), []byte(ev.ID+"x"), 1)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Affairs-Timestamp", ts)
	req.Header.Set("X-Affairs-Nonce", nonce)
	req.Header.Set("X-Affairs-Signature", sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// CodeTTL is how long an issued login code may be exchanged.
const CodeTTL = 5 * time.Minute

// IssueLoginCode makes a one-time login code for a user, as the affairs
// link does when a person clicks "mail": the code is put in the URL it
// opens govhub with, and govhub exchanges it at POST /v1/auth/code.
func (s *Server) IssueLoginCode(userID string) string {
	code := randHex(16)
	s.mu.Lock()
	s.codes[code] = loginCode{user: userID, expires: s.cfg.Now().Add(CodeTTL)}
	s.mu.Unlock()
	return code
}

// exchangeCode spends a login code: the first exchange gets the user id,
// any later one (or one after CodeTTL) gets 400 invalid_code.
func (s *Server) exchangeCode(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Code string `json:"code"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&in); err != nil || in.Code == "" {
		writeErr(w, http.StatusBadRequest, "invalid_request", "body must be {\"code\": \"...\"}")
		return
	}
	s.mu.Lock()
	lc, ok := s.codes[in.Code]
	delete(s.codes, in.Code)
	s.mu.Unlock()
	if !ok || !s.cfg.Now().Before(lc.expires) {
		writeErr(w, http.StatusBadRequest, "invalid_code", "login code unknown, used or expired")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"user_id": lc.user})
}
