package oidc

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/govhub/govhub/sso"
)

// Config is one OpenID provider as govhub's configuration names it.
type Config struct {
	// Name identifies the provider in URLs (/sso/oidc/<Name>/...), in
	// sessions and in sso.Config.Mappings: letters, digits, '-', '_', '.'.
	Name string
	// Label is the sign-in button's text (default: Name).
	Label string
	// Issuer is the OP's issuer URL; discovery reads
	// Issuer/.well-known/openid-configuration and the document's issuer
	// must equal it exactly. https, except on a loopback host.
	Issuer string
	// ClientID and ClientSecret are govhub's registration at the OP. An
	// empty secret makes govhub a public client (PKCE only).
	ClientID     string
	ClientSecret string
	// Scopes requested (default openid profile email; openid is always
	// added).
	Scopes []string
	// PublicURL is the site's external origin; the redirect_uri is
	// PublicURL+"/sso/oidc/"+Name+"/callback" and the back-channel logout
	// URI PublicURL+"/sso/oidc/"+Name+"/backchannel-logout".
	PublicURL string
	// PostLogoutURL is where the OP sends the browser after RP-initiated
	// logout (default PublicURL+"/login?signed_out=1"); register it at the
	// OP as a post_logout_redirect_uri.
	PostLogoutURL string
	// ClaimsFromUserInfo also reads the userinfo endpoint after the code
	// exchange (many OPs put email and name only there); its claims fill in
	// what the ID token lacks.
	ClaimsFromUserInfo bool
	// HTTPClient talks to the OP (discovery, JWKS, token, userinfo);
	// default: a client with a 15 s timeout.
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// ErrConfig marks a configuration New or Explain cannot work with.
var ErrConfig = errors.New("oidc: bad provider configuration")

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Validate reports the first problem with c, wrapping ErrConfig.
func (c Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: provider %q: %s", ErrConfig, c.Name, fmt.Sprintf(format, a...))
	}
	if !nameRE.MatchString(c.Name) {
		return bad("name must be 1-64 letters, digits, '.', '-' or '_'")
	}
	if err := checkURL(c.Issuer, true); err != nil {
		return bad("issuer: %v", err)
	}
	if c.ClientID == "" {
		return bad("client_id is required")
	}
	if err := checkURL(c.PublicURL, false); err != nil {
		return bad("public_url: %v", err)
	}
	if c.PostLogoutURL != "" {
		if err := checkURL(c.PostLogoutURL, false); err != nil {
			return bad("post_logout_url: %v", err)
		}
	}
	return nil
}

// checkURL accepts an absolute https URL, or http on a loopback host (a
// provider on the same machine). An issuer may not carry a query or
// fragment (OpenID Connect Discovery 1.0, 2).
func checkURL(s string, issuer bool) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", s)
	}
	switch u.Scheme {
	case "https":
	case "http":
		h := u.Hostname()
		if ip := net.ParseIP(h); h != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf("%q must use https", s)
		}
	default:
		return fmt.Errorf("%q must use https", s)
	}
	if issuer && (u.RawQuery != "" || u.Fragment != "") {
		return fmt.Errorf("%q must not have a query or fragment", s)
	}
	return nil
}

func (c *Config) defaults() {
	if c.Label == "" {
		c.Label = c.Name
	}
	if len(c.Scopes) == 0 {
		c.Scopes = []string{gooidc.ScopeOpenID, "profile", "email"}
	} else if !slices.Contains(c.Scopes, gooidc.ScopeOpenID) {
		c.Scopes = append([]string{gooidc.ScopeOpenID}, c.Scopes...)
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.PostLogoutURL == "" {
		c.PostLogoutURL = c.PublicURL + "/login?signed_out=1"
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// metadata is the part of the discovery document beyond what go-oidc
// exposes.
type metadata struct {
	Issuer                   string   `json:"issuer"`
	AuthURL                  string   `json:"authorization_endpoint"`
	TokenURL                 string   `json:"token_endpoint"`
	UserInfoURL              string   `json:"userinfo_endpoint"`
	JWKSURL                  string   `json:"jwks_uri"`
	EndSessionURL            string   `json:"end_session_endpoint"`
	Algorithms               []string `json:"id_token_signing_alg_values_supported"`
	CodeChallengeMethods     []string `json:"code_challenge_methods_supported"`
	TokenAuthMethods         []string `json:"token_endpoint_auth_methods_supported"`
	ResponseTypes            []string `json:"response_types_supported"`
	ScopesSupported          []string `json:"scopes_supported"`
	BackChannelLogout        bool     `json:"backchannel_logout_supported"`
	BackChannelLogoutSession bool     `json:"backchannel_logout_session_supported"`
	FrontChannelLogout       bool     `json:"frontchannel_logout_supported"`
}

// safeAlgs are the signature algorithms an ID or logout token may use:
// asymmetric only. "none" is never accepted, nor HS* (a MAC keyed with the
// client secret proves nothing about the OP to anyone holding the secret).
var safeAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// acceptedAlgs intersects what the OP says it signs with (RS256 when it
// says nothing, the Core 1.0 default) with safeAlgs.
func acceptedAlgs(offered []string) []string {
	if len(offered) == 0 {
		return []string{"RS256"}
	}
	var out []string
	for _, a := range offered {
		if slices.Contains(safeAlgs, a) && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// discovered is what discovery yields, shared by New and Explain.
type discovered struct {
	provider *gooidc.Provider
	meta     metadata
	algs     []string
	auth     oauth2.AuthStyle
}

func discover(ctx context.Context, cfg Config) (*discovered, error) {
	ctx, cancel := context.WithTimeout(gooidc.ClientContext(ctx, cfg.HTTPClient), 20*time.Second)
	defer cancel()
	// go-oidc refuses a document whose issuer is not exactly cfg.Issuer
	// (Discovery 1.0, 4.3), so nobody can pose as this OP by serving a
	// document naming itself.
	p, err := gooidc.NewProvider(ctx, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc: discovery at %s: %w", cfg.Issuer, err)
	}
	d := &discovered{provider: p}
	if err := p.Claims(&d.meta); err != nil {
		return nil, fmt.Errorf("oidc: discovery document: %w", err)
	}
	if d.meta.AuthURL == "" || d.meta.TokenURL == "" || d.meta.JWKSURL == "" {
		return nil, fmt.Errorf("oidc: discovery document lacks authorization_endpoint, token_endpoint or jwks_uri")
	}
	d.algs = acceptedAlgs(d.meta.Algorithms)
	if len(d.algs) == 0 {
		return nil, fmt.Errorf("oidc: the OP signs ID tokens only with %v, none of which govhub accepts (%v)", d.meta.Algorithms, safeAlgs)
	}
	// client_secret_basic is the default method (Core 1.0, 9); use
	// client_secret_post only when the OP offers that and not basic.
	d.auth = oauth2.AuthStyleInHeader
	if cfg.ClientSecret == "" || (len(d.meta.TokenAuthMethods) > 0 && !slices.Contains(d.meta.TokenAuthMethods, "client_secret_basic") &&
		slices.Contains(d.meta.TokenAuthMethods, "client_secret_post")) {
		d.auth = oauth2.AuthStyleInParams
	}
	return d, nil
}

// RP is the relying party for one OP. It satisfies sso.Provider,
// sso.Logouter and sso.Describer.
type RP struct {
	m     *sso.Manager
	cfg   Config
	log   *slog.Logger
	d     *discovered
	oauth oauth2.Config
	keys  *keySet
	// verifier checks ID tokens and logout tokens alike: same issuer,
	// audience, algorithms and keys.
	verifier *gooidc.IDTokenVerifier
	mux      *http.ServeMux
}

var (
	_ sso.Provider  = (*RP)(nil)
	_ sso.Logouter  = (*RP)(nil)
	_ sso.Describer = (*RP)(nil)
)

// New validates cfg, runs discovery against the OP and returns its RP.
func New(ctx context.Context, m *sso.Manager, cfg Config) (*RP, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.defaults()
	d, err := discover(ctx, cfg)
	if err != nil {
		return nil, err
	}
	rp := &RP{m: m, cfg: cfg, d: d, log: cfg.Logger.With("component", "sso/oidc", "provider", cfg.Name)}
	rp.oauth = oauth2.Config{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		Endpoint:     oauth2.Endpoint{AuthURL: d.meta.AuthURL, TokenURL: d.meta.TokenURL, AuthStyle: d.auth},
		RedirectURL:  rp.redirectURI(),
		Scopes:       cfg.Scopes,
	}
	algs := make([]jose.SignatureAlgorithm, len(d.algs))
	for i, a := range d.algs {
		algs[i] = jose.SignatureAlgorithm(a)
	}
	rp.keys = &keySet{url: d.meta.JWKSURL, client: cfg.HTTPClient, algs: algs, now: m.Now}
	rp.verifier = gooidc.NewVerifier(cfg.Issuer, rp.keys, &gooidc.Config{ClientID: cfg.ClientID, SupportedSigningAlgs: d.algs, Now: m.Now})

	rp.mux = http.NewServeMux()
	rp.mux.HandleFunc("GET /login", rp.login)
	rp.mux.HandleFunc("GET /callback", rp.callback)
	rp.mux.HandleFunc("POST /backchannel-logout", rp.backchannelLogout)
	return rp, nil
}

func (rp *RP) base() string { return rp.cfg.PublicURL + "/sso/oidc/" + rp.cfg.Name }

func (rp *RP) redirectURI() string { return rp.base() + "/callback" }

// Name implements sso.Provider.
func (rp *RP) Name() string { return rp.cfg.Name }

// Type implements sso.Provider.
func (rp *RP) Type() string { return "oidc" }

// Handler implements sso.Provider: GET /login, GET /callback and POST
// /backchannel-logout, below /sso/oidc/<name>.
func (rp *RP) Handler() http.Handler { return rp.mux }

// LoginPath implements sso.Provider.
func (rp *RP) LoginPath(relay string) string {
	p := "/sso/oidc/" + url.PathEscape(rp.cfg.Name) + "/login"
	if relay != "" {
		p += "?relay=" + url.QueryEscape(relay)
	}
	return p
}

// Describe implements sso.Describer.
func (rp *RP) Describe() map[string]string {
	yes := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	return map[string]string{
		"type":                   "oidc",
		"name":                   rp.cfg.Name,
		"label":                  rp.cfg.Label,
		"issuer":                 rp.cfg.Issuer,
		"client_id":              rp.cfg.ClientID,
		"redirect_uri":           rp.redirectURI(),
		"backchannel_logout_uri": rp.base() + "/backchannel-logout",
		"post_logout_uri":        rp.cfg.PostLogoutURL,
		"end_session":            yes(rp.d.meta.EndSessionURL != ""),
		"backchannel_logout":     yes(rp.d.meta.BackChannelLogout),
		"algorithms":             strings.Join(rp.d.algs, " "),
		"scopes":                 strings.Join(rp.cfg.Scopes, " "),
	}
}

// LogoutURL implements sso.Logouter: OpenID Connect RP-Initiated Logout
// 1.0 at the OP's end_session_endpoint, or "" when the OP has none.
func (rp *RP) LogoutURL(ctx context.Context, s sso.Session) (string, error) {
	if rp.d.meta.EndSessionURL == "" {
		return "", nil
	}
	u, err := url.Parse(rp.d.meta.EndSessionURL)
	if err != nil {
		return "", fmt.Errorf("oidc: end_session_endpoint: %w", err)
	}
	q := u.Query()
	if s.IDToken != "" {
		q.Set("id_token_hint", s.IDToken)
	}
	q.Set("client_id", rp.cfg.ClientID)
	q.Set("post_logout_redirect_uri", rp.cfg.PostLogoutURL)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// login starts the authorization code flow: state, nonce and the PKCE
// verifier are fresh per sign-in and kept server-side in the Pending, which
// the browser's sign-in cookie binds to this browser.
func (rp *RP) login(w http.ResponseWriter, r *http.Request) {
	st, nonce, verifier := sso.NewToken(), sso.NewToken(), oauth2.GenerateVerifier()
	relay := sso.SafeRelay(r.URL.Query().Get("relay"))
	err := rp.m.BeginLogin(w, r, sso.Pending{Provider: rp.cfg.Name, State: st, Nonce: nonce, Verifier: verifier, Relay: relay})
	if err != nil {
		rp.log.Error("starting sign-in failed", "err", err)
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	http.Redirect(w, r, rp.oauth.AuthCodeURL(st, oauth2.S256ChallengeOption(verifier), gooidc.Nonce(nonce)), http.StatusFound)
}

// Reasons a callback or logout token is refused; their text lands in the
// audit log, never on the page.
var (
	errState        = errors.New("oidc: state missing or not the one this browser's sign-in started with")
	errIssuerParam  = errors.New("oidc: authorization response from another issuer (iss parameter)")
	errOPError      = errors.New("oidc: the OP returned an error")
	errNoCode       = errors.New("oidc: callback without a code")
	errExchange     = errors.New("oidc: code exchange failed")
	errNoIDToken    = errors.New("oidc: token response without an id_token")
	errIDToken      = errors.New("oidc: ID token refused")
	errNonce        = errors.New("oidc: ID token nonce missing or not the one sent")
	errIssuedAt     = errors.New("oidc: iat missing or out of range")
	errAZP          = errors.New("oidc: azp is not our client_id")
	errUserInfo     = errors.New("oidc: userinfo refused")
	errLogoutToken  = errors.New("oidc: logout token refused")
	errLogoutEvents = errors.New("oidc: logout token events claim lacks the back-channel logout event")
)

// leeway absorbs clock differences with the OP in iat checks.
const leeway = 5 * time.Minute

// maxLogoutAge: a logout token issued longer ago than this is refused
// whatever its exp says, so a captured token cannot be held back for long.
const maxLogoutAge = time.Hour

// logoutEvent is the member the events claim must hold (Back-Channel
// Logout 1.0, 2.4).
const logoutEvent = "http://schemas.openid.net/event/backchannel-logout"

func (rp *RP) callback(w http.ResponseWriter, r *http.Request) {
	id := sso.Identity{Method: "oidc", Provider: rp.cfg.Name}
	// The Pending is taken first, whatever the outcome: a callback always
	// ends the sign-in it claims to finish, so nothing can be tried twice.
	p, err := rp.m.TakeLogin(w, r, rp.cfg.Name)
	if err != nil {
		rp.m.Fail(w, r, id, fmt.Errorf("oidc: callback: %w", err))
		return
	}
	q := r.URL.Query()
	// RFC 6749 10.12 / Core 3.1.2.7: the state must be the one this
	// browser's sign-in sent, which defeats login CSRF and code injection
	// from another browser.
	if got := q.Get("state"); got == "" || p.State == "" || subtle.ConstantTimeCompare([]byte(got), []byte(p.State)) != 1 {
		rp.m.Fail(w, r, id, errState)
		return
	}
	// RFC 9207 2.4: an authorization response naming another issuer is
	// a mix-up attack (a second OP's response replayed at this one).
	if iss := q.Get("iss"); iss != "" && iss != rp.cfg.Issuer {
		rp.m.Fail(w, r, id, errIssuerParam)
		return
	}
	if e := q.Get("error"); e != "" {
		rp.m.Fail(w, r, id, fmt.Errorf("%w: %s %s", errOPError, printable(e, 64), printable(q.Get("error_description"), 200)))
		return
	}
	code := q.Get("code")
	if code == "" {
		rp.m.Fail(w, r, id, errNoCode)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	id, err = rp.finish(ctx, code, p)
	if err != nil {
		rp.m.Fail(w, r, id, err)
		return
	}
	rp.m.Complete(w, r, id, p.Relay)
}

// finish exchanges the code and verifies what comes back.
func (rp *RP) finish(ctx context.Context, code string, p sso.Pending) (sso.Identity, error) {
	id := sso.Identity{Method: "oidc", Provider: rp.cfg.Name}
	ctx = gooidc.ClientContext(ctx, rp.cfg.HTTPClient)
	// RFC 7636 4.5: the verifier proves this is the client that started
	// the flow; a stolen code alone is worthless.
	tok, err := rp.oauth.Exchange(ctx, code, oauth2.VerifierOption(p.Verifier))
	if err != nil {
		return id, fmt.Errorf("%w: %w", errExchange, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return id, errNoIDToken
	}
	// go-oidc checks the signature (keys from the JWKS, algs from
	// acceptedAlgs), iss, aud and exp (Core 3.1.3.7 1-3, 6, 9).
	idt, err := rp.verifier.Verify(ctx, raw)
	if err != nil {
		return id, fmt.Errorf("%w: %w", errIDToken, err)
	}
	id.Subject = idt.Subject
	// Core 3.1.3.7 11: go-oidc leaves the nonce to the caller.
	if idt.Nonce == "" || p.Nonce == "" || subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(p.Nonce)) != 1 {
		return id, errNonce
	}
	now := rp.m.Now()
	if idt.IssuedAt.IsZero() || idt.IssuedAt.After(now.Add(leeway)) {
		return id, errIssuedAt
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return id, fmt.Errorf("%w: %w", errIDToken, err)
	}
	// Core 3.1.3.7 4-5: with several audiences, or an azp at all, azp
	// must be us.
	azp, _ := claims["azp"].(string)
	if (len(idt.Audience) > 1 || azp != "") && azp != rp.cfg.ClientID {
		return id, errAZP
	}
	// Core 3.2.2.9: when the OP binds the access token, check the binding.
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return id, fmt.Errorf("%w: %w", errIDToken, err)
		}
	}
	id.Attributes = map[string][]string{}
	addClaims(id.Attributes, claims)
	if rp.cfg.ClaimsFromUserInfo {
		ui, err := rp.d.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return id, fmt.Errorf("%w: %w", errUserInfo, err)
		}
		// Core 5.3.4: a userinfo answer about someone else is a token
		// substitution attack.
		if ui.Subject != idt.Subject {
			return id, fmt.Errorf("%w: sub %q is not the ID token's", errUserInfo, ui.Subject)
		}
		var uc map[string]any
		if err := ui.Claims(&uc); err != nil {
			return id, fmt.Errorf("%w: %w", errUserInfo, err)
		}
		addClaims(id.Attributes, uc)
	}
	id.SessionIndex, _ = claims["sid"].(string)
	id.IDToken = raw
	return id, nil
}

// skipClaims are protocol claims no identity mapping should read.
var skipClaims = map[string]bool{"nonce": true, "at_hash": true, "c_hash": true, "_claim_names": true, "_claim_sources": true}

// addClaims copies string, string-list and boolean claims into attrs,
// keeping values already there (the ID token's win over userinfo's).
func addClaims(attrs map[string][]string, claims map[string]any) {
	for k, v := range claims {
		if skipClaims[k] {
			continue
		}
		if _, ok := attrs[k]; ok {
			continue
		}
		switch v := v.(type) {
		case string:
			attrs[k] = []string{v}
		case bool:
			attrs[k] = []string{fmt.Sprint(v)}
		case []any:
			var ss []string
			for _, e := range v {
				if s, ok := e.(string); ok {
					ss = append(ss, s)
				}
			}
			if len(ss) > 0 {
				attrs[k] = ss
			}
		}
	}
}

// printable keeps an OP-supplied string fit for the audit log.
func printable(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if len(s) > n {
		s = s[:n]
	}
	return s
}

// backchannelLogout implements the RP side of OpenID Connect Back-Channel
// Logout 1.0 (2.5-2.8): 200 when the token is valid (whether or not a
// session matched), 400 when it is not, Cache-Control: no-store always.
func (rp *RP) backchannelLogout(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	raw := r.PostFormValue("logout_token")
	if raw == "" {
		rp.logoutError(w, http.StatusBadRequest, "invalid_request", "logout_token missing", nil)
		return
	}
	ctx := r.Context()
	lt, until, err := rp.verifyLogout(ctx, raw)
	if err != nil {
		rp.logoutError(w, http.StatusBadRequest, "invalid_request", "invalid logout token", err)
		return
	}
	// 2.6 step 7 / 4: a logout token is used once, on any node.
	if err := rp.m.UseOnce(ctx, "oidc-logout", rp.cfg.Name+" "+lt.TokenID, until); err != nil {
		if errors.Is(err, sso.ErrReplay) {
			rp.logoutError(w, http.StatusBadRequest, "invalid_request", "logout token already used", err)
			return
		}
		rp.logoutError(w, http.StatusInternalServerError, "server_error", "temporarily unavailable", err)
		return
	}
	n, err := rp.m.EndSessions(ctx, r, rp.cfg.Name, lt.Subject, lt.SessionID)
	if err != nil {
		// Not done: let the OP's retry of the same token through.
		rp.m.Forget(ctx, "oidc-logout", rp.cfg.Name+" "+lt.TokenID)
		rp.logoutError(w, http.StatusInternalServerError, "server_error", "temporarily unavailable", err)
		return
	}
	rp.log.Info("back-channel logout", "sessions", n, "by_sid", lt.SessionID != "")
	w.WriteHeader(http.StatusOK)
}

func (rp *RP) logoutError(w http.ResponseWriter, status int, code, desc string, err error) {
	if status >= 500 {
		rp.log.Error("back-channel logout failed", "err", err)
	} else {
		rp.log.Warn("back-channel logout refused", "reason", desc, "err", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// verifyLogout checks a logout token (Back-Channel Logout 1.0, 2.6) and
// returns until when its jti must be remembered. go-oidc's VerifyLogout
// checks signature, alg, iss, aud, exp, jti, sub-or-sid, the presence of
// the event and the absence of nonce; iat and the event's form are
// checked here.
func (rp *RP) verifyLogout(ctx context.Context, raw string) (*gooidc.LogoutToken, time.Time, error) {
	ctx = gooidc.ClientContext(ctx, rp.cfg.HTTPClient)
	lt, err := rp.verifier.VerifyLogout(ctx, raw)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: %w", errLogoutToken, err)
	}
	var c struct {
		Events map[string]json.RawMessage `json:"events"`
	}
	if err := lt.Claims(&c); err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: %w", errLogoutToken, err)
	}
	if ev := strings.TrimSpace(string(c.Events[logoutEvent])); !strings.HasPrefix(ev, "{") {
		return nil, time.Time{}, errLogoutEvents // the member's value must be a JSON object
	}
	now := rp.m.Now()
	if lt.IssuedAt.IsZero() || lt.IssuedAt.After(now.Add(leeway)) || lt.IssuedAt.Add(maxLogoutAge).Before(now) {
		return nil, time.Time{}, fmt.Errorf("%w: %w", errLogoutToken, errIssuedAt)
	}
	until := lt.Expiry
	if last := lt.IssuedAt.Add(maxLogoutAge); last.Before(until) {
		until = last
	}
	return lt, until.Add(leeway), nil
}
