package ui

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/govhub/govhub/mailcore/webmail"
)

type searchData struct {
	From, To, Subject, Text string
	Since, Before           string
	Attach                  bool
	Folder                  int64
	Searched                bool
	Rows                    []row
	Total                   int
	Page, Pages             int
	PrevHref, NextHref      string
}

// search looks for messages by sender, recipient, subject, words
// (Chinese included), date range and attachment, in one folder or all.
func (h *handler) search(w http.ResponseWriter, r *http.Request, q *req) {
	v := r.URL.Query()
	d := searchData{From: v.Get("from"), To: v.Get("to"), Subject: v.Get("subject"), Text: v.Get("text"),
		Since: v.Get("since"), Before: v.Get("before"), Attach: v.Get("attach") == "1"}
	d.Folder, _ = strconv.ParseInt(v.Get("folder"), 10, 64)
	d.Page, _ = strconv.Atoi(v.Get("page"))
	if d.Page < 1 {
		d.Page = 1
	}
	sq := webmail.SearchQuery{FolderID: d.Folder, From: d.From, To: d.To, Subject: d.Subject, Text: d.Text,
		HasAttachment: d.Attach, Page: d.Page, PerPage: h.perPage(q)}
	var bad bool
	if d.Since != "" {
		t, err := time.ParseInLocation("2006-01-02", d.Since, h.opts.Location)
		sq.Since, bad = t, err != nil
	}
	if d.Before != "" {
		// The form's "to" date is inclusive: before the next day starts.
		t, err := time.ParseInLocation("2006-01-02", d.Before, h.opts.Location)
		sq.Before, bad = t.AddDate(0, 0, 1), bad || err != nil
	}
	fs, err := h.mail.Folders(r.Context(), q.u)
	if err != nil {
		h.fail(w, r, q, err)
		return
	}
	views := folderViews(q.L, fs)
	p := &page{Title: q.L.T("search_title"), Folders: views, Query: d.Text}
	if bad {
		p.Error = "error_date"
		p.Data = d
		h.render(w, r, q, http.StatusBadRequest, "search", p)
		return
	}
	d.Searched = d.From != "" || d.To != "" || d.Subject != "" || d.Text != "" || d.Since != "" || d.Before != "" || d.Attach
	if d.Searched {
		lp, err := h.mail.Search(r.Context(), q.u, sq)
		if err != nil {
			h.fail(w, r, q, err)
			return
		}
		labels := map[int64]string{}
		for _, f := range views {
			labels[f.ID] = f.Label
		}
		d.Rows = h.rows(q.L, lp.Items, labels, "", false)
		d.Total = lp.Total
		per := lp.PerPage
		if per <= 0 {
			per = h.perPage(q)
		}
		d.Pages = max(1, (lp.Total+per-1)/per)
		pageHref := func(n int) string {
			u := url.Values{}
			for k, vs := range v {
				u[k] = vs
			}
			u.Set("page", strconv.Itoa(n))
			return "/search?" + u.Encode()
		}
		if d.Page > 1 {
			d.PrevHref = pageHref(d.Page - 1)
		}
		if d.Page < d.Pages {
			d.NextHref = pageHref(d.Page + 1)
		}
	}
	p.Data = d
	h.render(w, r, q, http.StatusOK, "search", p)
}

// folders is the folder manager: create, rename and delete (special
// folders and INBOX can be neither renamed nor deleted).
func (h *handler) folders(w http.ResponseWriter, r *http.Request, q *req) {
	h.render(w, r, q, http.StatusOK, "folders", &page{Title: q.L.T("folders_title"), Notice: noticeParam(r)})
}

func (h *handler) folderFail(w http.ResponseWriter, r *http.Request, q *req, err error) {
	status, key := errorStatus(err)
	if status == http.StatusInternalServerError {
		h.log.Error("folders", "account", q.u.AccountID, "err", err)
	}
	h.render(w, r, q, status, "folders", &page{Title: q.L.T("folders_title"), Error: key})
}

func validFolderName(s string) bool {
	return s != "" && utf8.RuneCountInString(s) <= 200 && !strings.ContainsAny(s, "\r\n\t*%\x00") &&
		!strings.HasPrefix(s, "/") && !strings.HasSuffix(s, "/") && !strings.Contains(s, "//")
}

func (h *handler) folderCreate(w http.ResponseWriter, r *http.Request, q *req) {
	name := strings.TrimSpace(r.PostFormValue("name"))
	if parent := strings.TrimSpace(r.PostFormValue("parent")); parent != "" && name != "" {
		name = parent + "/" + name
	}
	if !validFolderName(name) {
		h.render(w, r, q, http.StatusBadRequest, "folders", &page{Title: q.L.T("folders_title"), Error: "error_invalid_folder_name"})
		return
	}
	if _, err := h.mail.CreateFolder(r.Context(), q.u, name); err != nil {
		h.folderFail(w, r, q, err)
		return
	}
	http.Redirect(w, r, "/folders?notice=folder_created", http.StatusSeeOther)
}

func (h *handler) folderRename(w http.ResponseWriter, r *http.Request, q *req) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	name := strings.TrimSpace(r.PostFormValue("name"))
	if !validFolderName(name) {
		h.render(w, r, q, http.StatusBadRequest, "folders", &page{Title: q.L.T("folders_title"), Error: "error_invalid_folder_name"})
		return
	}
	if err := h.mail.RenameFolder(r.Context(), q.u, id, name); err != nil {
		h.folderFail(w, r, q, err)
		return
	}
	http.Redirect(w, r, "/folders?notice=folder_renamed", http.StatusSeeOther)
}

// folderDelete needs the form's confirmation box ticked, so a stray
// click (or a keyboard slip) without script does not delete a folder.
func (h *handler) folderDelete(w http.ResponseWriter, r *http.Request, q *req) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if r.PostFormValue("confirm") != "1" {
		h.render(w, r, q, http.StatusBadRequest, "folders", &page{Title: q.L.T("folders_title"), Error: "error_confirm_delete"})
		return
	}
	if err := h.mail.DeleteFolder(r.Context(), q.u, id); err != nil {
		h.folderFail(w, r, q, err)
		return
	}
	http.Redirect(w, r, "/folders?notice=folder_deleted", http.StatusSeeOther)
}

type settingsData struct {
	S          webmail.Settings
	PerPages   []int
	Langs      []langOption
	HasAppPass bool
	AppPass    []appPassView
	NewSecret  string
	NewName    string
}

type langOption struct {
	Value, Label string
	Selected     bool
}

type appPassView struct {
	webmail.AppPassword
	Created, LastUsed string
}

func (h *handler) settingsPage(w http.ResponseWriter, r *http.Request, q *req, status int, p *page, d settingsData) {
	d.S = q.settings
	if d.S.Language == "" {
		d.S.Language = q.L.lang
	}
	if d.S.PerPage == 0 {
		d.S.PerPage = 50
	}
	d.PerPages = []int{20, 50, 100, 200}
	for _, l := range []string{"zh-CN", "en"} {
		d.Langs = append(d.Langs, langOption{Value: l, Label: langNames[l], Selected: l == d.S.Language})
	}
	if ap := h.opts.AppPasswords; ap != nil {
		d.HasAppPass = true
		list, err := ap.AppPasswords(r.Context(), q.u)
		if err != nil {
			h.log.Warn("app passwords", "account", q.u.AccountID, "err", err)
		}
		for _, a := range list {
			v := appPassView{AppPassword: a, Created: h.formatFullDate(unix(a.CreatedAt)), LastUsed: h.formatFullDate(unix(a.LastUsedAt))}
			if v.LastUsed == "" {
				v.LastUsed = q.L.T("never")
			}
			d.AppPass = append(d.AppPass, v)
		}
	}
	if p.Title == "" {
		p.Title = q.L.T("settings_title")
	}
	p.Data = d
	h.render(w, r, q, status, "settings", p)
}

func unix(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0)
}

// langNames are shown in their own language, whatever the page's.
var langNames = map[string]string{"zh-CN": "简体中文", "en": "English"}

func (h *handler) settings(w http.ResponseWriter, r *http.Request, q *req) {
	h.settingsPage(w, r, q, http.StatusOK, &page{Notice: noticeParam(r)}, settingsData{})
}

// settingsPost saves the preferences; the language is also kept in the
// "lang" cookie, which the sign-in pages read.
func (h *handler) settingsPost(w http.ResponseWriter, r *http.Request, q *req) {
	s := q.settings
	s.DisplayName = strings.TrimSpace(r.PostFormValue("display_name"))
	s.Signature = strings.ReplaceAll(r.PostFormValue("signature"), "\r\n", "\n")
	if l := r.PostFormValue("language"); l == "zh-CN" || l == "en" {
		s.Language = l
	}
	if n, err := strconv.Atoi(r.PostFormValue("per_page")); err == nil && n >= 10 && n <= 200 {
		s.PerPage = n
	}
	if utf8.RuneCountInString(s.DisplayName) > 200 || len(s.Signature) > 10000 {
		h.settingsPage(w, r, q, http.StatusBadRequest, &page{Error: "error_too_long"}, settingsData{})
		return
	}
	if err := h.mail.SaveSettings(r.Context(), q.u, s); err != nil {
		h.fail(w, r, q, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: "lang", Value: s.Language, Path: "/", MaxAge: 365 * 24 * 3600, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil})
	http.Redirect(w, r, "/settings?notice=saved", http.StatusSeeOther)
}

// appPasswordCreate makes a desktop-client password and shows its secret
// once, on this answer only (never stored by the pages, never cached).
func (h *handler) appPasswordCreate(w http.ResponseWriter, r *http.Request, q *req) {
	ap := h.opts.AppPasswords
	if ap == nil {
		h.fail(w, r, q, errNotFound)
		return
	}
	name := strings.TrimSpace(r.PostFormValue("name"))
	if name == "" || utf8.RuneCountInString(name) > 100 {
		h.settingsPage(w, r, q, http.StatusBadRequest, &page{Error: "error_app_password_name"}, settingsData{})
		return
	}
	secret, created, err := ap.CreateAppPassword(r.Context(), q.u, name)
	if err != nil {
		h.log.Error("create app password", "account", q.u.AccountID, "err", err)
		h.settingsPage(w, r, q, http.StatusInternalServerError, &page{Error: "error_internal"}, settingsData{})
		return
	}
	h.settingsPage(w, r, q, http.StatusOK, &page{Notice: "notice_app_password_created"}, settingsData{NewSecret: secret, NewName: created.Name})
}

func (h *handler) appPasswordRevoke(w http.ResponseWriter, r *http.Request, q *req) {
	ap := h.opts.AppPasswords
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if ap == nil || err != nil {
		h.fail(w, r, q, errNotFound)
		return
	}
	if err := ap.RevokeAppPassword(r.Context(), q.u, id); err != nil {
		h.fail(w, r, q, err)
		return
	}
	http.Redirect(w, r, "/settings?notice=revoked", http.StatusSeeOther)
}
