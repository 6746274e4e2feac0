package ui

import (
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/govhub/govhub/mailcore"
	"github.com/govhub/govhub/mailcore/webmail"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configure the pages. Every field has a working zero value.
type Options struct {
	// Logger receives errors of the service (never message content or
	// secrets); give it a component attribute. Default: discard.
	Logger *slog.Logger
	// AppPasswords lists, creates and revokes desktop-client passwords on
	// the settings page; nil hides that section.
	AppPasswords webmail.AppPasswords
	// MaxUploadBytes bounds one compose submission (text and attachments
	// together); a larger one is refused with 413 and a clear message.
	// Default 25 MiB.
	MaxUploadBytes int64
	// SSOSignOutPath and SignOutAllPath are where the sign-out buttons
	// post (with csrf_token). Defaults "/logout" and "/logout/all".
	SSOSignOutPath string
	SignOutAllPath string
	// LoginPath is where a visitor without a session is sent, with
	// ?relay=<the page they asked for>. Default "/login".
	LoginPath string
	// ProductName is shown in titles and the header; default: the
	// catalogue's product name ("政务邮箱" / "Government Mail").
	ProductName string
	// Location is the time zone dates are shown in; default China
	// Standard Time (UTC+8, no daylight saving), the zone the service
	// writes into replies' quote lines and Date headers, whatever the
	// server's own zone is.
	Location *time.Location
	// Now is the clock ("today" shows a time, older dates a day); default
	// time.Now.
	Now func() time.Time
}

// Security headers. Pages run only our own script and style (no inline
// script anywhere), are never framed and never cached; the message body
// frame has its own, stricter policy (bodyCSP).
const (
	pageCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
	// bodyCSP forbids every script, form, plugin and base; images only
	// inline or ours unless the reader asked for remote ones. Its sandbox
	// directive keeps the body inert even when opened outside the frame.
	bodyCSP       = "default-src 'none'; img-src data: 'self'; style-src 'unsafe-inline'; font-src data:; form-action 'none'; base-uri 'none'; frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox"
	bodyCSPRemote = "default-src 'none'; img-src data: 'self' https: http:; style-src 'unsafe-inline'; font-src data:; form-action 'none'; base-uri 'none'; frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox"
	// downloadCSP keeps a downloaded part inert even if a browser renders
	// it instead of saving it.
	downloadCSP = "default-src 'none'; sandbox"
)

type handler struct {
	mail   webmail.Mail
	sess   webmail.Sessions
	opts   Options
	log    *slog.Logger
	pages  map[string]*template.Template
	static http.Handler
	asset  string // static content hash, appended to asset URLs
	mux    *http.ServeMux
}

// New returns the webmail pages, to be mounted at the site root (see the
// package documentation for the routes and what must be mounted beside
// them).
func New(mail webmail.Mail, sess webmail.Sessions, opts Options) http.Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxUploadBytes <= 0 {
		opts.MaxUploadBytes = 25 << 20
	}
	if opts.SSOSignOutPath == "" {
		opts.SSOSignOutPath = "/logout"
	}
	if opts.SignOutAllPath == "" {
		opts.SignOutAllPath = "/logout/all"
	}
	if opts.LoginPath == "" {
		opts.LoginPath = "/login"
	}
	if opts.Location == nil {
		opts.Location = time.FixedZone("CST", 8*3600)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	h := &handler{
		mail: mail, sess: sess, opts: opts,
		log:    opts.Logger,
		pages:  parseTemplates(),
		static: http.StripPrefix("/static/", http.FileServerFS(sub)),
		asset:  assetHash(sub),
		mux:    http.NewServeMux(),
	}
	h.routes()
	return h
}

func (h *handler) routes() {
	m := h.mux
	m.Handle("GET /static/", http.HandlerFunc(h.serveStatic))
	m.HandleFunc("GET /{$}", h.auth(h.root))
	m.HandleFunc("GET /mail/{folder}", h.auth(h.list))
	m.HandleFunc("POST /mail/{folder}/act", h.auth(h.act))
	m.HandleFunc("GET /mail/{folder}/{uid}", h.auth(h.view))
	m.HandleFunc("GET /mail/{folder}/{uid}/body", h.auth(h.body))
	m.HandleFunc("GET /mail/{folder}/{uid}/raw", h.auth(h.raw))
	m.HandleFunc("GET /mail/{folder}/{uid}/parts/{part}", h.auth(h.part))
	m.HandleFunc("GET /compose", h.auth(h.compose))
	m.HandleFunc("POST /compose", h.auth(h.composePost))
	m.HandleFunc("POST /compose/autosave", h.auth(h.autosave))
	m.HandleFunc("GET /compose/suggest", h.auth(h.suggest))
	m.HandleFunc("GET /search", h.auth(h.search))
	m.HandleFunc("GET /folders", h.auth(h.folders))
	m.HandleFunc("POST /folders/create", h.auth(h.folderCreate))
	m.HandleFunc("POST /folders/{id}/rename", h.auth(h.folderRename))
	m.HandleFunc("POST /folders/{id}/delete", h.auth(h.folderDelete))
	m.HandleFunc("GET /settings", h.auth(h.settings))
	m.HandleFunc("POST /settings", h.auth(h.settingsPost))
	m.HandleFunc("POST /settings/app-passwords", h.auth(h.appPasswordCreate))
	m.HandleFunc("POST /settings/app-passwords/{id}/revoke", h.auth(h.appPasswordRevoke))
}

// ServeHTTP sets the page security headers on every answer (routes that
// need others replace them) and dispatches.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", pageCSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	h.mux.ServeHTTP(w, r)
}

func (h *handler) serveStatic(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("v") == h.asset {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "public, max-age=300")
	}
	h.static.ServeHTTP(w, r)
}

func assetHash(fsys fs.FS) string {
	sum := sha256.New()
	var names []string
	_ = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, p)
		}
		return nil
	})
	sort.Strings(names)
	for _, n := range names {
		b, _ := fs.ReadFile(fsys, n)
		sum.Write([]byte(n))
		sum.Write(b)
	}
	return hex.EncodeToString(sum.Sum(nil))[:12]
}

// req is one signed-in request: who, in which language, with what
// preferences.
type req struct {
	u        webmail.User
	settings webmail.Settings
	L        locale
}

// auth resolves the session (no session: GET goes to the sign-in page,
// anything else is 401), picks the language, and checks the CSRF token of
// every POST (403) after reading its body within MaxUploadBytes (413).
func (h *handler) auth(fn func(http.ResponseWriter, *http.Request, *req)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		u, ok, err := h.sess.User(r)
		if err != nil {
			h.log.Error("session lookup", "err", err)
			http.Error(w, localeFor(r, "").T("error_internal"), http.StatusInternalServerError)
			return
		}
		if !ok {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				http.Redirect(w, r, h.opts.LoginPath+"?relay="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			http.Error(w, localeFor(r, "").T("error_signed_out"), http.StatusUnauthorized)
			return
		}
		s, err := h.mail.Settings(r.Context(), u)
		if err != nil {
			// Pages still work with defaults; the error is the service's.
			h.log.Warn("settings", "account", u.AccountID, "err", err)
		}
		q := &req{u: u, settings: s, L: localeFor(r, s.Language)}
		if r.Method == http.MethodPost && !h.csrfOK(w, r, q) {
			return
		}
		fn(w, r, q)
	}
}

// csrfOK compares the X-CSRF-Token header (scripts) or the form's
// csrf_token with the session's, in constant time, and answers 403 when
// they differ. A form body is read here, bounded by MaxUploadBytes.
func (h *handler) csrfOK(w http.ResponseWriter, r *http.Request, q *req) bool {
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		http.Error(w, q.L.T("error_csrf"), http.StatusForbidden)
		return false
	}
	got := r.Header.Get("X-CSRF-Token")
	r.Body = http.MaxBytesReader(w, r.Body, h.opts.MaxUploadBytes)
	if err := parseForm(r); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			w.Header().Set("Connection", "close")
			h.render(w, r, q, http.StatusRequestEntityTooLarge, "error", &page{Title: q.L.T("error_title"),
				Error: "error_too_large", ErrorArg: formatSize(q.L, h.opts.MaxUploadBytes)})
			return false
		}
		h.render(w, r, q, http.StatusBadRequest, "error", &page{Title: q.L.T("error_title"), Error: "error_bad_request"})
		return false
	}
	if got == "" {
		got = r.PostFormValue("csrf_token")
	}
	if got == "" || q.u.CSRF == "" || subtle.ConstantTimeCompare([]byte(got), []byte(q.u.CSRF)) != 1 {
		http.Error(w, q.L.T("error_csrf"), http.StatusForbidden)
		return false
	}
	return true
}

// parseForm reads a urlencoded or multipart body (large files spill to
// temporary files, removed by net/http after the request).
func parseForm(r *http.Request) error {
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		return r.ParseMultipartForm(8 << 20)
	}
	return r.ParseForm()
}

// page is what every page template gets.
type page struct {
	L        locale
	Product  string
	User     webmail.User
	CSRF     string
	Folders  []folderView
	Current  int64
	Quota    quotaView
	Title    string
	Query    string // the header search box
	Notice   string // a catalogue key
	Error    string // a catalogue key
	ErrorArg string
	Asset    string
	SignOut  string
	OutAll   string
	Data     any
}

type folderView struct {
	webmail.Folder
	Label   string
	Depth   int
	Special bool
	Href    string
}

type quotaView struct {
	Used, Quota int64
	UsedText    string
	QuotaText   string
	Percent     int
}

// render fills the common page parts (sidebar, quota) and executes name.
func (h *handler) render(w http.ResponseWriter, r *http.Request, q *req, status int, name string, p *page) {
	ctx := r.Context()
	p.L = q.L
	p.User = q.u
	p.CSRF = q.u.CSRF
	p.Asset = h.asset
	p.SignOut = h.opts.SSOSignOutPath
	p.OutAll = h.opts.SignOutAllPath
	p.Product = h.opts.ProductName
	if p.Product == "" {
		p.Product = q.L.T("product")
	}
	if p.Folders == nil {
		fs, err := h.mail.Folders(ctx, q.u)
		if err != nil {
			h.log.Warn("folders", "account", q.u.AccountID, "err", err)
		}
		p.Folders = folderViews(q.L, fs)
	}
	if qt, err := h.mail.Quota(ctx, q.u); err == nil {
		p.Quota = quotaView{Used: qt.UsedBytes, Quota: qt.QuotaBytes, UsedText: formatSize(q.L, qt.UsedBytes)}
		if qt.QuotaBytes > 0 {
			p.Quota.QuotaText = formatSize(q.L, qt.QuotaBytes)
			p.Quota.Percent = int(qt.UsedBytes * 100 / qt.QuotaBytes)
		}
	} else {
		h.log.Warn("quota", "account", q.u.AccountID, "err", err)
	}
	t, ok := h.pages[name]
	if !ok {
		panic("ui: no template " + name)
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout", p); err != nil {
		h.log.Error("render", "page", name, "err", err)
		http.Error(w, q.L.T("error_internal"), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// fail shows a service error as a page: not found is 404, the mail
// store's refusals are 400/409 with their own text, anything else 500
// with generic text (logged, never shown).
func (h *handler) fail(w http.ResponseWriter, r *http.Request, q *req, err error) {
	status, key := errorStatus(err)
	if status == http.StatusInternalServerError {
		h.log.Error("request", "path", r.URL.Path, "account", q.u.AccountID, "err", err)
	}
	h.render(w, r, q, status, "error", &page{Title: q.L.T("error_title"), Error: key})
}

func errorStatus(err error) (int, string) {
	switch {
	case errors.Is(err, mailcore.ErrNotFound):
		return http.StatusNotFound, "error_not_found"
	case errors.Is(err, mailcore.ErrInvalidAddress):
		return http.StatusBadRequest, "error_invalid_address"
	case errors.Is(err, mailcore.ErrInvalidMailboxName):
		return http.StatusBadRequest, "error_invalid_folder_name"
	case errors.Is(err, mailcore.ErrExists):
		return http.StatusConflict, "error_exists"
	case errors.Is(err, mailcore.ErrHasChildren):
		return http.StatusConflict, "error_has_children"
	case errors.Is(err, mailcore.ErrSpecialMailbox):
		return http.StatusConflict, "error_special_folder"
	case errors.Is(err, mailcore.ErrQuotaExceeded):
		return http.StatusInsufficientStorage, "error_quota"
	case errors.Is(err, mailcore.ErrTooLarge):
		return http.StatusRequestEntityTooLarge, "error_message_too_large"
	}
	return http.StatusInternalServerError, "error_internal"
}

// specialKeys names the catalogue entry of each special-use folder.
var specialKeys = map[string]string{
	"\\Sent": "folder_sent", "\\Drafts": "folder_drafts", "\\Trash": "folder_trash",
	"\\Junk": "folder_junk", "\\Archive": "folder_archive",
}

func folderViews(L locale, fs []webmail.Folder) []folderView {
	out := make([]folderView, 0, len(fs))
	for _, f := range fs {
		v := folderView{Folder: f, Label: f.Name, Href: "/mail/" + strconv.FormatInt(f.ID, 10)}
		if strings.EqualFold(f.Name, "INBOX") {
			v.Label, v.Special = L.T("folder_inbox"), true
		} else if k, ok := specialKeys[f.SpecialUse]; ok {
			v.Label, v.Special = L.T(k), true
		} else if i := strings.LastIndex(f.Name, "/"); i >= 0 {
			v.Label = f.Name[i+1:]
			v.Depth = strings.Count(f.Name, "/")
		}
		out = append(out, v)
	}
	// INBOX first, then special folders in a fixed order, then the rest by name.
	rank := func(v folderView) int {
		if strings.EqualFold(v.Name, "INBOX") {
			return 0
		}
		switch v.SpecialUse {
		case "\\Drafts":
			return 1
		case "\\Sent":
			return 2
		case "\\Archive":
			return 3
		case "\\Junk":
			return 4
		case "\\Trash":
			return 5
		}
		return 6
	}
	sort.SliceStable(out, func(i, j int) bool {
		ri, rj := rank(out[i]), rank(out[j])
		if ri != rj {
			return ri < rj
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// folderBySpecial finds the folder with the given special use ("INBOX"
// for the inbox).
func folderBySpecial(fs []webmail.Folder, use string) (webmail.Folder, bool) {
	for _, f := range fs {
		if (use == "INBOX" && strings.EqualFold(f.Name, "INBOX")) || (use != "INBOX" && f.SpecialUse == use) {
			return f, true
		}
	}
	return webmail.Folder{}, false
}

func formatSize(L locale, n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d KB", n>>10)
	}
	return L.T("size_bytes", n)
}

// formatDate shows today's messages by time, this year's by day, older
// ones by full date.
func (h *handler) formatDate(L locale, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	t = t.In(h.opts.Location)
	now := h.opts.Now().In(h.opts.Location)
	switch {
	case t.Year() == now.Year() && t.YearDay() == now.YearDay():
		return t.Format("15:04")
	case t.Year() == now.Year():
		return L.T("date_month_day", int(t.Month()), t.Day())
	}
	return t.Format("2006-01-02")
}

func (h *handler) formatFullDate(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(h.opts.Location).Format("2006-01-02 15:04")
}

// safeNext accepts only a path of these pages as a redirect target.
func safeNext(s, def string) string {
	if s == "" || len(s) > 2048 || s[0] != '/' || strings.HasPrefix(s, "//") || strings.ContainsAny(s, "\\\r\n\t") {
		return def
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return def
	}
	p := path.Clean(u.Path)
	if !strings.HasPrefix(p, "/mail/") && p != "/search" {
		return def
	}
	return s
}
