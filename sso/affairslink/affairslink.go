// Package affairslink signs staff in with the affairs link's one-time
// login code: the affairs link opens
// /sso/affairslink/<name>/login?code=…[&relay=/path], govhub exchanges the
// code server to server for the person's affairs-link user id, and the
// sso core maps that id to a directory person (by default through the
// person's affairs-link anchor). The exchange itself is declared here
// (CodeExchanger) and implemented by adapters/affairslink.
package affairslink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/govhub/govhub/sso"
)

// CodeExchanger trades a login code for the affairs-link user id.
// ErrInvalidCode-like failures are the affairs link refusing the code.
type CodeExchanger interface {
	ExchangeLoginCode(ctx context.Context, code string) (userID string, err error)
}

// Config configures one affairs-link login.
type Config struct {
	Name  string
	Label string
	// PortalURL is where the sign-in button sends a browser that came
	// without a code: the affairs link's own page, which opens govhub with
	// one. Empty: no button.
	PortalURL string
	Logger    *slog.Logger
}

// CodeTTL bounds how long govhub remembers a spent code: the affairs link
// lets a code live at most 5 minutes, so after that it cannot be valid.
const CodeTTL = 10 * time.Minute

// Login is the provider.
type Login struct {
	m   *sso.Manager
	ex  CodeExchanger
	cfg Config
	log *slog.Logger
}

var (
	_ sso.Provider  = (*Login)(nil)
	_ sso.Describer = (*Login)(nil)
)

// New returns the provider.
func New(m *sso.Manager, ex CodeExchanger, cfg Config) (*Login, error) {
	if cfg.Name == "" || ex == nil {
		return nil, errors.New("sso/affairslink: a name and an exchanger are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Login{m: m, ex: ex, cfg: cfg, log: cfg.Logger}, nil
}

func (l *Login) Name() string { return l.cfg.Name }
func (l *Login) Type() string { return "affairslink" }

// LoginPath sends the button to the affairs link (which comes back with a
// code) or, without a PortalURL, to our own endpoint, which explains that
// sign-in starts in the affairs link.
func (l *Login) LoginPath(relay string) string {
	if l.cfg.PortalURL != "" {
		return l.cfg.PortalURL
	}
	return "/sso/affairslink/" + url.PathEscape(l.cfg.Name) + "/login?relay=" + url.QueryEscape(relay)
}

func (l *Login) Describe() map[string]string {
	label := l.cfg.Label
	if label == "" {
		label = "政务协同"
	}
	return map[string]string{"label": label, "type": "affairslink", "portal_url": l.cfg.PortalURL,
		"login_url": "/sso/affairslink/" + l.cfg.Name + "/login?code=CODE[&relay=/path]"}
}

// Handler serves GET /login?code=…&relay=….
func (l *Login) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		id := sso.Identity{Method: "affairslink", Provider: l.cfg.Name}
		code := r.URL.Query().Get("code")
		relay := r.URL.Query().Get("relay")
		if code == "" || len(code) > 256 {
			l.m.Fail(w, r, id, errors.New("no login code in the request"))
			return
		}
		// A code is single-use even if the affairs link failed to spend it:
		// the first use anywhere in the deployment wins, the rest are
		// refused before any exchange.
		if err := l.m.UseOnce(r.Context(), "login-code:"+l.cfg.Name, code, l.m.Now().Add(CodeTTL)); err != nil {
			l.m.Fail(w, r, id, fmt.Errorf("login code: %w", err))
			return
		}
		user, err := l.ex.ExchangeLoginCode(r.Context(), code)
		if err != nil {
			l.m.Fail(w, r, id, fmt.Errorf("login code exchange: %w", err))
			return
		}
		id.Subject = user
		l.m.Complete(w, r, id, relay)
	})
	return mux
}
