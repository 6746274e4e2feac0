package webmail

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/govhub/govhub/mailcore"
)

// BadgeOptions configures BadgeHandler.
type BadgeOptions struct {
	// Sessions identifies a browser by its session cookie.
	Sessions Sessions
	// Origins are the portal origins ("https://portal.example.gov.cn")
	// whose pages may read the badge with the user's cookie (CORS with
	// credentials). Others get no CORS headers and a 403.
	Origins []string
	// PortalToken, when set, lets the portal's server ask for any person's
	// badge: Authorization: Bearer <PortalToken> and ?person=<person id>.
	PortalToken string
	// UserByPerson resolves ?person= for the portal token; nil disables
	// that path. mailcore.ErrNotFound for an unknown person gives 404.
	UserByPerson func(ctx context.Context, personID string) (User, error)
	// Recent is how many unread subjects the badge lists; zero means 5.
	Recent int
}

// BadgeHandler serves GET /api/v1/badge for the portal: the browser way
// (session cookie, CORS limited to opts.Origins, preflight answered) or the
// server way (the portal token and ?person=). Mount it at
// "/api/v1/badge", which takes precedence over API's "/api/v1/" in a
// ServeMux.
func BadgeHandler(s *Service, opts BadgeOptions) http.Handler {
	origins := map[string]bool{}
	for _, o := range opts.Origins {
		origins[strings.TrimRight(strings.ToLower(o), "/")] = true
	}
	n := opts.Recent
	if n <= 0 {
		n = 5
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Add("Vary", "Origin")
		h.Set("Cache-Control", "no-store")
		origin := r.Header.Get("Origin")
		allowed := origin != "" && origins[strings.ToLower(origin)]
		if allowed {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
		}
		switch r.Method {
		case http.MethodOptions:
			if !allowed {
				writeError(w, http.StatusForbidden, "origin not allowed")
				return
			}
			h.Set("Access-Control-Allow-Methods", "GET")
			h.Set("Access-Control-Allow-Headers", "Authorization")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		case http.MethodGet, http.MethodHead:
		default:
			h.Set("Allow", "GET, HEAD, OPTIONS")
			writeError(w, http.StatusMethodNotAllowed, "method not allowed")
			return
		}
		var (
			u   User
			err error
		)
		if auth := r.Header.Get("Authorization"); auth != "" {
			tok, ok := strings.CutPrefix(auth, "Bearer ")
			if !ok || opts.PortalToken == "" || opts.UserByPerson == nil ||
				subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(opts.PortalToken)) != 1 {
				writeError(w, http.StatusUnauthorized, "bad token")
				return
			}
			person := r.URL.Query().Get("person")
			if person == "" {
				writeError(w, http.StatusBadRequest, "invalid request")
				return
			}
			u, err = opts.UserByPerson(r.Context(), person)
			if errors.Is(err, mailcore.ErrNotFound) {
				writeError(w, http.StatusNotFound, "not found")
				return
			}
		} else {
			if origin != "" && !allowed && !sameOrigin(r, origin) {
				writeError(w, http.StatusForbidden, "origin not allowed")
				return
			}
			var ok bool
			u, ok, err = opts.Sessions.User(r)
			if err == nil && (!ok || u.AccountID <= 0) {
				writeError(w, http.StatusUnauthorized, "not signed in")
				return
			}
		}
		if err != nil {
			s.log.ErrorContext(r.Context(), "badge user", "err", err)
			writeError(w, http.StatusInternalServerError, "internal error")
			return
		}
		k := n
		if v, err := strconv.Atoi(r.URL.Query().Get("n")); err == nil && v >= 0 && v <= 20 {
			k = v
		}
		b, err := s.Badge(r.Context(), u, k)
		if err != nil {
			if errors.Is(err, mailcore.ErrNotFound) {
				writeError(w, http.StatusNotFound, "not found")
				return
			}
			s.log.ErrorContext(r.Context(), "badge", "err", err)
			writeError(w, http.StatusInternalServerError, "internal error")
			return
		}
		writeJSON(w, http.StatusOK, b)
	})
}

// sameOrigin reports a browser's own-origin request (webmail's pages
// showing the badge), which needs no CORS. Only the host is compared: a
// proxy in front may terminate TLS.
func sameOrigin(r *http.Request, origin string) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}
