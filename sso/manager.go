package sso

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/govhub/govhub/internal/sqldb"
	"github.com/jmoiron/sqlx"
)

// Config tunes a Manager. Zero values take the documented defaults.
type Config struct {
	// IdleTimeout ends a session not used for this long (default 2h);
	// AbsoluteTimeout ends every session this long after sign-in
	// (default 12h), whatever the activity.
	IdleTimeout     time.Duration
	AbsoluteTimeout time.Duration
	// PendingTimeout bounds how long a started sign-in may take (10m).
	PendingTimeout time.Duration
	// CookieName names the session cookie ("govhub_session").
	CookieName string
	// Insecure drops the Secure attribute from cookies. Only tests of
	// plain-HTTP handlers set it; serve never does.
	Insecure bool
	// PublicURL is the site's external origin (https://mail.example.gov.cn);
	// a state-changing request whose Origin header names another origin is
	// refused even with a valid CSRF token.
	PublicURL string
	// TrustedProxies are the load balancers in front: their
	// X-Forwarded-For names the client (see ClientIP).
	TrustedProxies []netip.Prefix
	// Landing is where a sign-in without a relay lands ("/").
	Landing string
	// Mappings per provider name; a provider without one maps "subject"
	// to "mail".
	Mappings map[string]Mapping
	Now      func() time.Time
	Logger   *slog.Logger
}

func (c *Config) defaults() {
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 2 * time.Hour
	}
	if c.AbsoluteTimeout <= 0 {
		c.AbsoluteTimeout = 12 * time.Hour
	}
	if c.PendingTimeout <= 0 {
		c.PendingTimeout = 10 * time.Minute
	}
	if c.CookieName == "" {
		c.CookieName = "govhub_session"
	}
	if c.Landing == "" {
		c.Landing = "/"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Manager owns sessions, started sign-ins, the used-once cache, the audit
// log and app passwords. Every node of a deployment shares its state
// through the database, so a sign-in started on one node finishes on
// another and a replayed assertion is refused everywhere.
type Manager struct {
	db     *sqldb.DB
	people People
	cfg    Config
	log    *slog.Logger
	origin string // scheme://host[:port] of PublicURL, or ""
}

// New returns a Manager over a migrated database.
func New(db *sqldb.DB, people People, cfg Config) *Manager {
	cfg.defaults()
	m := &Manager{db: db, people: people, cfg: cfg, log: cfg.Logger}
	if u, err := url.Parse(cfg.PublicURL); err == nil && u.Scheme != "" && u.Host != "" {
		m.origin = u.Scheme + "://" + u.Host
	}
	return m
}

// Now is the Manager's clock (injected in tests); providers use it for
// their own validity checks so one clock decides.
func (m *Manager) Now() time.Time { return m.cfg.Now() }

// Config returns the effective configuration (defaults applied).
func (m *Manager) Config() Config { return m.cfg }

// pendingCookie names the cookie binding started sign-ins to a browser.
// It is SameSite=None because the SAML HTTP-POST binding arrives as a
// cross-site POST from the IdP, which would not carry a Lax cookie; its
// value is worthless without the matching database row, which is taken
// once.
const pendingCookie = "govhub_signin"

func newToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("sso: no randomness: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// NewToken returns a fresh random token of 256 bits, URL-safe.
func NewToken() string { return newToken(32) }

func hashToken(t string) []byte {
	h := sha256.Sum256([]byte(t))
	return h[:]
}

func (m *Manager) cookie(name, value string, maxAge int, sameSite http.SameSite) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		Secure: !m.cfg.Insecure, SameSite: sameSite}
}

// BeginLogin records a sign-in this browser starts with provider p.Provider
// and binds it to the browser's sign-in cookie (set now if missing). A
// browser may have one pending sign-in per provider; a new one replaces it.
func (m *Manager) BeginLogin(w http.ResponseWriter, r *http.Request, p Pending) error {
	if p.Provider == "" {
		return errors.New("sso: pending sign-in without a provider")
	}
	tok := ""
	if c, err := r.Cookie(pendingCookie); err == nil && len(c.Value) >= 43 {
		tok = c.Value
	} else {
		tok = NewToken()
	}
	http.SetCookie(w, m.cookie(pendingCookie, tok, int(m.cfg.PendingTimeout/time.Second), http.SameSiteNoneMode))
	now := m.cfg.Now()
	p.Relay = SafeRelay(p.Relay)
	ctx := r.Context()
	return m.db.InTx(ctx, func(tx *sqlx.Tx) error {
		h := hashToken(tok)
		if _, err := tx.ExecContext(ctx, m.db.Rebind(`DELETE FROM sso_pending WHERE token_hash = ? AND provider = ?`), h, p.Provider); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, m.db.Rebind(`INSERT INTO sso_pending (token_hash, provider, request_id, state, nonce, verifier, relay, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`), h, p.Provider, p.RequestID, p.State, p.Nonce, p.Verifier, p.Relay,
			now.Unix(), now.Add(m.cfg.PendingTimeout).Unix())
		return err
	})
}

// TakeLogin returns and deletes the sign-in this browser started with
// provider; ErrNoPending when the browser has none (no cookie, another
// browser's response, already finished or expired). Only one caller ever
// gets a given pending sign-in, on any node.
func (m *Manager) TakeLogin(w http.ResponseWriter, r *http.Request, provider string) (Pending, error) {
	c, err := r.Cookie(pendingCookie)
	if err != nil || c.Value == "" {
		return Pending{}, ErrNoPending
	}
	ctx := r.Context()
	h := hashToken(c.Value)
	var row struct {
		RequestID string `db:"request_id"`
		State     string `db:"state"`
		Nonce     string `db:"nonce"`
		Verifier  string `db:"verifier"`
		Relay     string `db:"relay"`
		CreatedAt int64  `db:"created_at"`
		ExpiresAt int64  `db:"expires_at"`
	}
	var found bool
	err = m.db.InTx(ctx, func(tx *sqlx.Tx) error {
		found = false
		err := tx.GetContext(ctx, &row, m.db.Rebind(`SELECT request_id, state, nonce, verifier, relay, created_at, expires_at
			FROM sso_pending WHERE token_hash = ? AND provider = ?`), h, provider)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, m.db.Rebind(`DELETE FROM sso_pending WHERE token_hash = ? AND provider = ?`), h, provider)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		found = n == 1 // a concurrent taker on another node deleted it first
		return nil
	})
	if err != nil {
		return Pending{}, fmt.Errorf("%w: pending sign-in: %w", ErrTemporary, err)
	}
	if !found || m.cfg.Now().Unix() > row.ExpiresAt {
		return Pending{}, ErrNoPending
	}
	return Pending{Provider: provider, RequestID: row.RequestID, State: row.State, Nonce: row.Nonce,
		Verifier: row.Verifier, Relay: row.Relay, CreatedAt: time.Unix(row.CreatedAt, 0)}, nil
}

// UseOnce records that id of kind ("saml-assertion", "login-code",
// "oidc-logout"...) has been used, and remembers it until until. A second
// use, on any node, gets ErrReplay. until should be when the thing would
// have expired anyway (a SAML assertion's NotOnOrAfter).
func (m *Manager) UseOnce(ctx context.Context, kind, id string, until time.Time) error {
	if id == "" {
		return fmt.Errorf("sso: %s without an id", kind)
	}
	now := m.cfg.Now()
	if until.Before(now) {
		until = now
	}
	// The primary key decides between two concurrent first uses: exactly
	// one INSERT succeeds. An expired row is removed first so an id may be
	// reused once it could no longer be valid (ids are random; this only
	// keeps the table bounded).
	if _, err := m.db.X.ExecContext(ctx, m.db.Rebind(`DELETE FROM sso_used WHERE kind = ? AND id = ? AND until_at < ?`), kind, id, now.Unix()); err != nil {
		return fmt.Errorf("%w: used-once cache: %w", ErrTemporary, err)
	}
	res, err := m.db.X.ExecContext(ctx, m.db.Rebind(`INSERT INTO sso_used (kind, id, until_at) VALUES (?, ?, ?) ON CONFLICT (kind, id) DO NOTHING`),
		kind, id, until.Unix()+1)
	if err != nil {
		return fmt.Errorf("%w: used-once cache: %w", ErrTemporary, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrReplay
	}
	return nil
}

// Used reports whether id of kind was recorded by UseOnce and has not
// expired, without recording anything (a probe an unauthenticated request
// may make without writing to the database).
func (m *Manager) Used(ctx context.Context, kind, id string) (bool, error) {
	var n int
	err := m.db.X.GetContext(ctx, &n, m.db.Rebind(`SELECT COUNT(*) FROM sso_used WHERE kind = ? AND id = ? AND until_at >= ?`), kind, id, m.cfg.Now().Unix())
	if err != nil {
		return false, fmt.Errorf("%w: used-once cache: %w", ErrTemporary, err)
	}
	return n > 0, nil
}

// Forget undoes a UseOnce whose use could not be completed (the work it
// guarded failed), so a retry of the same id is not taken for a replay.
// Errors are logged: at worst the retry is refused.
func (m *Manager) Forget(ctx context.Context, kind, id string) {
	if _, err := m.db.X.ExecContext(ctx, m.db.Rebind(`DELETE FROM sso_used WHERE kind = ? AND id = ?`), kind, id); err != nil {
		m.log.Error("forgetting a used-once id failed", "kind", kind, "err", err)
	}
}

// SafeRelay returns s when it is a path on this site ("/mail/INBOX?x=1")
// and "" otherwise: absolute URLs, scheme-relative "//evil", "/\evil"
// (which browsers read as "//evil"), control characters and anything that
// does not start with a single "/".
func SafeRelay(s string) string {
	if s == "" || len(s) > 2048 || s[0] != '/' {
		return ""
	}
	if len(s) > 1 && (s[1] == '/' || s[1] == '\\') {
		return ""
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f || c == '\\' {
			return ""
		}
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return ""
	}
	return s
}

// mappingFor returns the provider's mapping (default: subject to mail).
func (m *Manager) mappingFor(provider string) Mapping {
	if mp, ok := m.cfg.Mappings[provider]; ok && mp.Key != "" {
		if mp.From == "" {
			mp.From = "subject"
		}
		return mp
	}
	return Mapping{From: "subject", Key: "mail"}
}

// Resolve maps a verified identity to its person and refuses people who
// may not sign in. The errors are ErrUnknownPerson, ErrDisabled, ErrLeft
// or a database error.
func (m *Manager) Resolve(ctx context.Context, id Identity) (Person, error) {
	mp := m.mappingFor(id.Provider)
	if id.Method == "password" {
		mp = Mapping{From: "subject", Key: "mail"}
	}
	v := strings.TrimSpace(id.Attr(mp.From))
	var p Person
	var err error
	switch {
	case v == "":
		err = fmt.Errorf("%w: the identity carries no %q", ErrUnknownPerson, mp.From)
	case id.Method == "oidc" && mp.From == "email" && id.Attr("email_verified") != "true":
		// An OpenID provider vouches for an email address only when it
		// says it verified it (email_verified true): matching on any
		// other would let anyone who can type a colleague's address into
		// their profile sign in as them.
		err = fmt.Errorf("%w: the provider has not said it verified the email address (email_verified)", ErrUnknownPerson)
	default:
		p, err = m.people.Find(ctx, mp.Key, v)
	}
	if errors.Is(err, ErrUnknownPerson) && mp.JIT {
		if pc, ok := m.people.(PersonCreator); ok {
			p, err = pc.CreateFromIdentity(ctx, id)
		}
	}
	if err != nil {
		if errors.Is(err, ErrUnknownPerson) {
			return Person{}, err
		}
		return Person{}, fmt.Errorf("%w: finding the person: %w", ErrTemporary, err)
	}
	switch p.Status {
	case "disabled":
		return p, ErrDisabled
	case "left":
		return p, ErrLeft
	}
	if p.AccountID == 0 {
		return p, fmt.Errorf("%w: the person has no mailbox", ErrUnknownPerson)
	}
	return p, nil
}

// Complete finishes a verified sign-in: it maps the identity to a person,
// ends the session the browser had (a sign-in always gets a new token),
// creates the new session, writes the audit entry and sends the browser
// to relay (when SafeRelay accepts it) or the landing page. A person who
// may not sign in gets the explanation page instead, with status 403.
func (m *Manager) Complete(w http.ResponseWriter, r *http.Request, id Identity, relay string) {
	ctx := r.Context()
	p, err := m.Resolve(ctx, id)
	if err != nil {
		m.Fail(w, r, id, err)
		return
	}
	// Sign-in fixation: whatever session cookie the browser brought is
	// ended, never upgraded.
	if c, err := r.Cookie(m.cfg.CookieName); err == nil && c.Value != "" {
		if _, err := m.db.X.ExecContext(ctx, m.db.Rebind(`DELETE FROM sso_sessions WHERE token_hash = ?`), hashToken(c.Value)); err != nil {
			m.log.Error("ending previous session failed", "err", err)
		}
	}
	tok, err := m.createSession(ctx, p, id, r)
	if err != nil {
		m.log.Error("creating session failed", "err", err, "method", id.Method)
		m.page(w, r, http.StatusInternalServerError, "error_internal")
		return
	}
	http.SetCookie(w, m.cookie(m.cfg.CookieName, tok, 0, http.SameSiteLaxMode))
	m.audit(ctx, r, "signin", p.AccountID, p.Address, id.Method, id.Provider, "")
	m.log.Info("signed in", "account", p.Address, "method", id.Method, "provider", id.Provider)
	dest := SafeRelay(relay)
	if dest == "" {
		dest = m.cfg.Landing
	}
	http.Redirect(w, r, dest, http.StatusSeeOther)
}

// Fail records a refused sign-in and shows the page explaining it. err is
// what refused it: ErrUnknownPerson/ErrDisabled/ErrLeft get their own
// pages; anything else (a forged assertion, a wrong state) gets the
// generic "sign-in failed" page, its detail only in the audit log.
func (m *Manager) Fail(w http.ResponseWriter, r *http.Request, id Identity, err error) {
	who := id.Subject
	m.audit(r.Context(), r, "signin_failed", 0, who, id.Method, id.Provider, truncate(err.Error(), 500))
	m.log.Warn("sign-in refused", "method", id.Method, "provider", id.Provider, "reason", err)
	switch {
	case errors.Is(err, ErrTemporary):
		m.page(w, r, http.StatusServiceUnavailable, "error_internal")
	case errors.Is(err, ErrUnknownPerson):
		m.page(w, r, http.StatusForbidden, "error_unknown")
	case errors.Is(err, ErrDisabled):
		m.page(w, r, http.StatusForbidden, "error_disabled")
	case errors.Is(err, ErrLeft):
		m.page(w, r, http.StatusForbidden, "error_left")
	default:
		m.page(w, r, http.StatusForbidden, "error_failed")
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func (m *Manager) createSession(ctx context.Context, p Person, id Identity, r *http.Request) (string, error) {
	tok := NewToken()
	now := m.cfg.Now()
	exp := now.Add(m.cfg.AbsoluteTimeout)
	if !id.Expires.IsZero() && id.Expires.Before(exp) {
		exp = id.Expires
	}
	_, err := m.db.X.ExecContext(ctx, m.db.Rebind(`INSERT INTO sso_sessions (token_hash, account_id, person_id, method, provider, subject,
		session_index, id_token, csrf, created_at, last_seen, expires_at, remote_ip, user_agent)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		hashToken(tok), p.AccountID, p.ID, id.Method, id.Provider, id.Subject, id.SessionIndex, id.IDToken,
		NewToken(), now.Unix(), now.Unix(), exp.Unix(), m.ClientIP(r), truncate(r.UserAgent(), 300))
	return tok, err
}

// ClientIP is the address r came from: its peer, or, when the peer is
// one of Config.TrustedProxies (the load balancer), the nearest address
// in X-Forwarded-For that is not a trusted proxy. Lockouts and the audit
// log key on it, so behind a proxy every sign-in must not look like the
// proxy's. Headers from untrusted peers are ignored.
func (m *Manager) ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !m.trusted(ip) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return host // garbage: trust nothing further left
		}
		if !m.trusted(a) {
			return a.Unmap().String()
		}
	}
	return host
}

func (m *Manager) trusted(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range m.cfg.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

type sessionRow struct {
	ID           int64  `db:"id"`
	AccountID    int64  `db:"account_id"`
	PersonID     string `db:"person_id"`
	Method       string `db:"method"`
	Provider     string `db:"provider"`
	Subject      string `db:"subject"`
	SessionIndex string `db:"session_index"`
	IDToken      string `db:"id_token"`
	CSRF         string `db:"csrf"`
	CreatedAt    int64  `db:"created_at"`
	LastSeen     int64  `db:"last_seen"`
	ExpiresAt    int64  `db:"expires_at"`
	RemoteIP     string `db:"remote_ip"`
	Address      string `db:"address"`
	DisplayName  string `db:"display_name"`
}

// Session returns the signed-in session of r, or ErrNoSession when there
// is no cookie, the token is unknown, or the idle or absolute timeout has
// passed (an expired row is deleted). Use refreshes the idle clock at most
// once a minute, to keep reads cheap.
func (m *Manager) Session(r *http.Request) (Session, error) {
	c, err := r.Cookie(m.cfg.CookieName)
	if err != nil || c.Value == "" || len(c.Value) > 100 {
		return Session{}, ErrNoSession
	}
	ctx := r.Context()
	var row sessionRow
	err = m.db.X.GetContext(ctx, &row, m.db.Rebind(`SELECT s.id, s.account_id, s.person_id, s.method, s.provider, s.subject,
		s.session_index, s.id_token, s.csrf, s.created_at, s.last_seen, s.expires_at, s.remote_ip, a.address, a.display_name
		FROM sso_sessions s JOIN accounts a ON a.id = s.account_id WHERE s.token_hash = ?`), hashToken(c.Value))
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, ErrNoSession
	}
	if err != nil {
		return Session{}, fmt.Errorf("sso: session: %w", err)
	}
	now := m.cfg.Now().Unix()
	if now >= row.ExpiresAt || now-row.LastSeen >= int64(m.cfg.IdleTimeout/time.Second) {
		m.db.X.ExecContext(ctx, m.db.Rebind(`DELETE FROM sso_sessions WHERE id = ?`), row.ID)
		return Session{}, ErrNoSession
	}
	if now-row.LastSeen >= 60 {
		m.db.X.ExecContext(ctx, m.db.Rebind(`UPDATE sso_sessions SET last_seen = ? WHERE id = ?`), now, row.ID)
		row.LastSeen = now
	}
	return Session{ID: row.ID, AccountID: row.AccountID, PersonID: row.PersonID, Address: row.Address,
		DisplayName: row.DisplayName, Method: row.Method, Provider: row.Provider, Subject: row.Subject,
		SessionIndex: row.SessionIndex, IDToken: row.IDToken, CSRF: row.CSRF,
		CreatedAt: time.Unix(row.CreatedAt, 0), LastSeen: time.Unix(row.LastSeen, 0),
		ExpiresAt: time.Unix(row.ExpiresAt, 0), RemoteIP: row.RemoteIP}, nil
}

// CheckCSRF accepts a state-changing request only when it carries the
// session's CSRF token (header X-CSRF-Token, or form field csrf_token) and,
// when the browser says where it comes from (Origin, or Sec-Fetch-Site),
// that is this site.
func (m *Manager) CheckCSRF(r *http.Request, s Session) error {
	if !m.SameOrigin(r) {
		return fmt.Errorf("%w: cross-origin request from %q", ErrCSRF, r.Header.Get("Origin"))
	}
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.PostFormValue("csrf_token")
	}
	if got == "" || s.CSRF == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.CSRF)) != 1 {
		return ErrCSRF
	}
	return nil
}

// SameOrigin reports whether the browser, where it says (Origin,
// Sec-Fetch-Site), sent r from this site: the configured public origin,
// or without one the origin of the host r was sent to.
func (m *Manager) SameOrigin(r *http.Request) bool {
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true // not a browser, or one that omits it on same-origin GET-like posts
	}
	if o == "null" {
		// Browsers send "null" for same-origin POSTs from pages with
		// Referrer-Policy: no-referrer (ours), and for opaque origins
		// (sandboxed frames). Sec-Fetch-Site tells them apart where the
		// browser sends it; the CSRF token is checked either way.
		sfs := r.Header.Get("Sec-Fetch-Site")
		return sfs == "" || sfs == "same-origin"
	}
	if m.origin != "" {
		return o == m.origin
	}
	u, err := url.Parse(o)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

// SafeMethod reports whether a method changes nothing (CSRF not needed).
func SafeMethod(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

type ctxKey struct{}

// WithSession returns ctx carrying s.
func WithSession(ctx context.Context, s Session) context.Context {
	return context.WithValue(ctx, ctxKey{}, s)
}

// FromContext returns the session Require put in the request context.
func FromContext(ctx context.Context) (Session, bool) {
	s, ok := ctx.Value(ctxKey{}).(Session)
	return s, ok
}

// Require lets only signed-in requests through (others: a browser GET is
// sent to the sign-in page with the path as relay; anything else gets
// 401) and checks CSRF on every state-changing method (403).
func (m *Manager) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := m.Session(r)
		if err != nil {
			if !errors.Is(err, ErrNoSession) {
				m.log.Error("session lookup failed", "err", err)
				http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
				return
			}
			if r.Method == http.MethodGet && !strings.HasPrefix(r.URL.Path, "/api/") {
				http.Redirect(w, r, "/login?relay="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			http.Error(w, "not signed in", http.StatusUnauthorized)
			return
		}
		if !SafeMethod(r.Method) {
			if err := m.CheckCSRF(r, s); err != nil {
				http.Error(w, "CSRF check failed", http.StatusForbidden)
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(WithSession(r.Context(), s)))
	})
}

// SignOut ends the browser's session (and forgets the cookie). It returns
// the ended session so the caller can continue to the provider's logout.
func (m *Manager) SignOut(w http.ResponseWriter, r *http.Request, s Session) error {
	http.SetCookie(w, m.cookie(m.cfg.CookieName, "", -1, http.SameSiteLaxMode))
	if _, err := m.db.X.ExecContext(r.Context(), m.db.Rebind(`DELETE FROM sso_sessions WHERE id = ?`), s.ID); err != nil {
		return fmt.Errorf("sso: sign out: %w", err)
	}
	m.audit(r.Context(), r, "signout", s.AccountID, s.Address, s.Method, s.Provider, "")
	return nil
}

// SignOutEverywhere ends every session of an account; it returns how many.
func (m *Manager) SignOutEverywhere(ctx context.Context, r *http.Request, s Session) (int64, error) {
	res, err := m.db.X.ExecContext(ctx, m.db.Rebind(`DELETE FROM sso_sessions WHERE account_id = ?`), s.AccountID)
	if err != nil {
		return 0, fmt.Errorf("sso: sign out everywhere: %w", err)
	}
	n, _ := res.RowsAffected()
	m.audit(ctx, r, "signout_all", s.AccountID, s.Address, s.Method, s.Provider, fmt.Sprintf("%d sessions", n))
	return n, nil
}

// EndSessions ends the sessions a provider's logout names (back-channel
// or IdP-initiated single logout): those of subject, narrowed to one
// session index (SAML SessionIndex, OIDC sid) when given. r may be nil.
func (m *Manager) EndSessions(ctx context.Context, r *http.Request, provider, subject, sessionIndex string) (int64, error) {
	if subject == "" && sessionIndex == "" {
		return 0, errors.New("sso: logout names neither subject nor session")
	}
	q := `DELETE FROM sso_sessions WHERE provider = ?`
	args := []any{provider}
	if subject != "" {
		q += ` AND subject = ?`
		args = append(args, subject)
	}
	if sessionIndex != "" {
		q += ` AND session_index = ?`
		args = append(args, sessionIndex)
	}
	res, err := m.db.X.ExecContext(ctx, m.db.Rebind(q), args...)
	if err != nil {
		return 0, fmt.Errorf("sso: end sessions: %w", err)
	}
	n, _ := res.RowsAffected()
	m.audit(ctx, r, "signout_provider", 0, subject, "", provider, fmt.Sprintf("%d sessions", n))
	return n, nil
}

// Prune deletes expired sessions, pending sign-ins and used-once ids.
func (m *Manager) Prune(ctx context.Context) error {
	now := m.cfg.Now().Unix()
	idle := now - int64(m.cfg.IdleTimeout/time.Second)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`DELETE FROM sso_sessions WHERE expires_at <= ? OR last_seen <= ?`, []any{now, idle}},
		{`DELETE FROM sso_pending WHERE expires_at < ?`, []any{now}},
		{`DELETE FROM sso_used WHERE until_at < ?`, []any{now}},
	} {
		if _, err := m.db.X.ExecContext(ctx, m.db.Rebind(q.sql), q.args...); err != nil {
			return fmt.Errorf("sso: prune: %w", err)
		}
	}
	return nil
}
