package sso

import (
	"context"
	"crypto/subtle"
	"errors"
	"html/template"
	"net/http"
	"sort"
	"strings"
)

// PasswordChecker verifies a password sign-in (mailcore/auth implements
// it, with its delays and lockouts). It returns the account address on
// success.
type PasswordChecker interface {
	CheckPassword(ctx context.Context, username, password, remoteIP string) (address string, err error)
}

// HandlerOptions are what the sign-in pages need besides the Manager.
type HandlerOptions struct {
	Providers []Provider
	// Password enables the password form (accounts that have a password).
	Password PasswordChecker
}

// Handler serves the sign-in pages and endpoints at the site root:
//
//	GET  /login            sign-in page: one button per provider, the password form
//	POST /login            password sign-in
//	POST /logout           sign out (then the provider's logout, when it has one)
//	POST /logout/all       sign out everywhere
//	     /sso/<type>/<name>/...  each provider's own endpoints
//
// The caller mounts it for exactly these paths.
func (m *Manager) Handler(opts HandlerOptions) http.Handler {
	mux := http.NewServeMux()
	provs := append([]Provider(nil), opts.Providers...)
	sort.Slice(provs, func(i, j int) bool { return provs[i].Name() < provs[j].Name() })
	for _, p := range provs {
		prefix := "/sso/" + p.Type() + "/" + p.Name()
		mux.Handle(prefix+"/", http.StripPrefix(prefix, p.Handler()))
	}
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		if l := r.URL.Query().Get("lang"); l == "en" || l == "zh-CN" {
			http.SetCookie(w, &http.Cookie{Name: "lang", Value: l, Path: "/", MaxAge: 365 * 24 * 3600, Secure: !m.cfg.Insecure, SameSite: http.SameSiteLaxMode})
		}
		relay := SafeRelay(r.URL.Query().Get("relay"))
		data := loginData{Relay: relay, Password: opts.Password != nil}
		if data.Password {
			data.LoginCSRF = m.loginCSRF(w, r)
		}
		for _, p := range provs {
			label := p.Name()
			if d, ok := p.(Describer); ok {
				if l := d.Describe()["label"]; l != "" {
					label = l
				}
			}
			data.Providers = append(data.Providers, loginButton{Label: label, Path: p.LoginPath(relay)})
		}
		m.render(w, r, http.StatusOK, "login", data)
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if opts.Password == nil {
			http.NotFound(w, r)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		user := strings.TrimSpace(r.PostFormValue("username"))
		pass := r.PostFormValue("password")
		relay := r.PostFormValue("relay")
		// A login form is a state-changing request without a session:
		// refuse it when the browser says it comes from another site.
		// Sign-in CSRF (an attacker's page signing the victim in as the
		// attacker): the form's token must equal the cookie GET /login set
		// (double submit; no session exists yet to hold one), and the
		// browser, where it says, must be on this site.
		if !m.SameOrigin(r) || !m.checkLoginCSRF(r) {
			http.Error(w, "sign-in refused: reload the sign-in page and try again", http.StatusForbidden)
			return
		}
		id := Identity{Method: "password", Subject: user}
		again := loginData{Relay: SafeRelay(relay), Password: true, Error: "error_password", LoginCSRF: m.loginCSRF(w, r)}
		if user == "" || pass == "" {
			m.render(w, r, http.StatusUnauthorized, "login", again)
			return
		}
		addr, err := opts.Password.CheckPassword(r.Context(), user, pass, m.ClientIP(r))
		if err != nil {
			m.audit(r.Context(), r, "signin_failed", 0, user, "password", "", "wrong password or locked")
			m.render(w, r, http.StatusUnauthorized, "login", again)
			return
		}
		id.Subject = addr
		m.Complete(w, r, id, relay)
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		s, err := m.Session(r)
		if err != nil {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		if err := m.CheckCSRF(r, s); err != nil {
			http.Error(w, "CSRF check failed", http.StatusForbidden)
			return
		}
		if err := m.SignOut(w, r, s); err != nil {
			m.log.Error("sign out failed", "err", err)
			http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
			return
		}
		for _, p := range provs {
			lo, ok := p.(Logouter)
			if !ok || p.Name() != s.Provider || p.Type() != s.Method {
				continue
			}
			u, err := lo.LogoutURL(r.Context(), s)
			if err != nil {
				m.log.Warn("provider logout unavailable", "provider", p.Name(), "err", err)
				break
			}
			if u != "" {
				// Not a redirect: the form that posted here lives under a
				// CSP with form-action 'self', which browsers also apply
				// to a redirect after the POST, so they would refuse to
				// follow one to the IdP. A page that moves on by itself
				// (meta refresh, and a link) is not bound by it.
				m.render(w, r, http.StatusOK, "leaving", u)
				return
			}
		}
		http.Redirect(w, r, "/login?signed_out=1", http.StatusSeeOther)
	})
	mux.HandleFunc("POST /logout/all", func(w http.ResponseWriter, r *http.Request) {
		s, err := m.Session(r)
		if err != nil {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		if err := m.CheckCSRF(r, s); err != nil {
			http.Error(w, "CSRF check failed", http.StatusForbidden)
			return
		}
		if _, err := m.SignOutEverywhere(r.Context(), r, s); err != nil {
			m.log.Error("sign out everywhere failed", "err", err)
			http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
			return
		}
		http.SetCookie(w, m.cookie(m.cfg.CookieName, "", -1, http.SameSiteLaxMode))
		http.Redirect(w, r, "/login?signed_out=1", http.StatusSeeOther)
	})
	return securityHeaders(mux)
}

// securityHeaders: sign-in pages never run foreign script, never render
// in a frame, are never cached.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'none'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self' https: http:")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

type loginButton struct{ Label, Path string }

type loginData struct {
	Relay     string
	Providers []loginButton
	Password  bool
	Error     string // a catalogue key
	LoginCSRF string // the password form's token (see loginCSRF)
}

// loginCSRFCookie holds the password form's double-submit token.
const loginCSRFCookie = "govhub_login_csrf"

// loginCSRF returns the browser's sign-in form token, setting the cookie
// when it has none. SameSite=Strict: a cross-site page cannot make the
// browser send it.
func (m *Manager) loginCSRF(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(loginCSRFCookie); err == nil && len(c.Value) == 43 {
		return c.Value
	}
	tok := NewToken()
	http.SetCookie(w, &http.Cookie{Name: loginCSRFCookie, Value: tok, Path: "/login", HttpOnly: true,
		Secure: !m.cfg.Insecure, SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	return tok
}

func (m *Manager) checkLoginCSRF(r *http.Request) bool {
	c, err := r.Cookie(loginCSRFCookie)
	got := r.PostFormValue("login_csrf")
	return err == nil && len(c.Value) == 43 && subtle.ConstantTimeCompare([]byte(c.Value), []byte(got)) == 1
}

// Lang picks the page language: ?lang= (the page's language links), then
// the "lang" cookie (webmail's setting), then zh-CN, govhub's default.
// Accept-Language is not consulted: on the shared office machines staff
// use it is usually whatever the installer left (often en-US), while the
// organisation works in Chinese.
func Lang(r *http.Request) string {
	if l := r.URL.Query().Get("lang"); l == "en" || l == "zh-CN" {
		return l
	}
	if c, err := r.Cookie("lang"); err == nil && (c.Value == "en" || c.Value == "zh-CN") {
		return c.Value
	}
	return "zh-CN"
}

var catalogue = map[string]map[string]string{
	"zh-CN": {
		"title":          "登录 govhub 邮件",
		"signin_with":    "使用 %s 登录",
		"username":       "邮箱地址",
		"password":       "密码",
		"signin":         "登录",
		"or":             "或使用邮箱密码",
		"signed_out":     "您已退出登录。",
		"error_password": "邮箱地址或密码不正确，或账户已被暂时锁定。",
		"error_unknown":  "未找到与您的身份对应的人员或邮箱。请联系信息中心开通邮箱。",
		"error_disabled": "您的账户已被停用，无法登录。已有邮件仍会正常接收。",
		"error_left":     "您已离开本单位，无法再登录邮件系统。",
		"error_failed":   "登录未能完成（身份验证失败或已过期）。请返回政务门户重新登录。",
		"error_internal": "系统暂时无法完成登录，请稍后再试。",
		"back":           "返回登录页",
		"signing_out":    "已退出本系统，正在退出统一身份认证……",
		"continue":       "继续",
	},
	"en": {
		"title":          "Sign in to govhub mail",
		"signin_with":    "Sign in with %s",
		"username":       "Mail address",
		"password":       "Password",
		"signin":         "Sign in",
		"or":             "or with your mail password",
		"signed_out":     "You have signed out.",
		"error_password": "Wrong address or password, or the account is temporarily locked.",
		"error_unknown":  "No person or mailbox matches your identity. Ask IT to set up your mailbox.",
		"error_disabled": "Your account is disabled; you cannot sign in. Mail to you is still accepted.",
		"error_left":     "You have left the organisation and can no longer sign in.",
		"error_failed":   "Sign-in could not be completed (the identity check failed or expired). Go back to the portal and try again.",
		"error_internal": "Sign-in is temporarily unavailable; please try again later.",
		"back":           "Back to sign-in",
		"signing_out":    "Signed out here; now signing out at the identity provider…",
		"continue":       "Continue",
	},
}

// T returns the catalogue text for key in lang.
func T(lang, key string) string {
	if s, ok := catalogue[lang][key]; ok {
		return s
	}
	return catalogue["zh-CN"][key]
}

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"t": func(lang, key string) string { return T(lang, key) },
	"tf": func(lang, key, arg string) string {
		return strings.Replace(T(lang, key), "%s", arg, 1)
	},
}).Parse(`
{{define "head"}}<!doctype html><html lang="{{.Lang}}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{{t .Lang "title"}}</title>
<style>body{font-family:system-ui,"PingFang SC","Microsoft YaHei",sans-serif;max-width:26rem;margin:3rem auto;padding:0 1rem;color:#1a1a1a}
a.btn,button{display:block;width:100%;box-sizing:border-box;padding:.7rem;margin:.5rem 0;border:1px solid #2458b3;border-radius:4px;background:#2458b3;color:#fff;text-align:center;text-decoration:none;font-size:1rem}
input{display:block;width:100%;box-sizing:border-box;padding:.6rem;margin:.2rem 0 .8rem;font-size:1rem}
.err{color:#a40000;background:#fdecea;padding:.7rem;border-radius:4px}.note{color:#333;background:#eef3fb;padding:.7rem;border-radius:4px}</style></head><body>{{end}}
{{define "login"}}{{template "head" .}}<p class="langs"><a href="/login?lang=zh-CN{{if .Data.Relay}}&amp;relay={{.Data.Relay}}{{end}}" lang="zh-CN">中文</a> | <a href="/login?lang=en{{if .Data.Relay}}&amp;relay={{.Data.Relay}}{{end}}" lang="en">English</a></p>
<h1>{{t .Lang "title"}}</h1>
{{if .Data.Error}}<p class="err" role="alert">{{t .Lang .Data.Error}}</p>{{end}}
{{if .SignedOut}}<p class="note">{{t .Lang "signed_out"}}</p>{{end}}
{{range .Data.Providers}}<a class="btn" href="{{.Path}}">{{tf $.Lang "signin_with" .Label}}</a>{{end}}
{{if .Data.Password}}{{if .Data.Providers}}<p>{{t .Lang "or"}}</p>{{end}}
<form method="post" action="/login"><input type="hidden" name="relay" value="{{.Data.Relay}}"><input type="hidden" name="login_csrf" value="{{.Data.LoginCSRF}}">
<label>{{t .Lang "username"}}<input name="username" type="email" autocomplete="username" required></label>
<label>{{t .Lang "password"}}<input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">{{t .Lang "signin"}}</button></form>{{end}}
</body></html>{{end}}
{{define "leaving"}}<!doctype html><html lang="{{.Lang}}"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="0;url={{.Data}}"><title>{{t .Lang "title"}}</title></head><body>
<p>{{t .Lang "signing_out"}} <a id="continue" href="{{.Data}}">{{t .Lang "continue"}}</a></p></body></html>{{end}}
{{define "error"}}{{template "head" .}}<h1>{{t .Lang "title"}}</h1><p class="err" role="alert" id="reason" data-reason="{{.Data}}">{{t .Lang .Data}}</p>
<p><a href="/login">{{t .Lang "back"}}</a></p></body></html>{{end}}
`))

type pageData struct {
	Lang      string
	SignedOut bool
	Data      any
}

func (m *Manager) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	pd := pageData{Lang: Lang(r), SignedOut: r.URL.Query().Get("signed_out") == "1", Data: data}
	if err := pages.ExecuteTemplate(w, name, pd); err != nil && !errors.Is(err, http.ErrHandlerTimeout) {
		m.log.Error("page render failed", "page", name, "err", err)
	}
}

// page shows one of the explanation pages (a catalogue key).
func (m *Manager) page(w http.ResponseWriter, r *http.Request, status int, key string) {
	securityHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.render(w, r, status, "error", key)
	})).ServeHTTP(w, r)
}
