package ui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"

	"golang.org/x/net/html"

	"github.com/govhub/govhub/mailcore"
	"github.com/govhub/govhub/mailcore/webmail"
)

var testNow = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

type env struct {
	t    *testing.T
	mail *fakeMail
	ap   *fakeAppPasswords
	h    http.Handler
}

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	e := &env{t: t, mail: newFakeMail(testNow), ap: &fakeAppPasswords{}}
	if opts.AppPasswords == nil {
		opts.AppPasswords = e.ap
	}
	opts.Now = func() time.Time { return testNow }
	opts.Location = time.UTC
	e.h = New(e.mail, fakeSessions{u: alice}, opts)
	return e
}

// do runs one request as alice (signedIn) or as nobody.
func (e *env) do(method, target string, body io.Reader, signedIn bool, hdr map[string]string) *httptest.ResponseRecorder {
	e.t.Helper()
	r := httptest.NewRequest(method, target, body)
	if signedIn {
		r.AddCookie(&http.Cookie{Name: "sid", Value: "alice"})
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

func (e *env) get(target string) *httptest.ResponseRecorder {
	return e.do("GET", target, nil, true, nil)
}

func (e *env) post(target string, form url.Values) *httptest.ResponseRecorder {
	return e.do("POST", target, strings.NewReader(form.Encode()), true, map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
}

func withCSRF(v url.Values) url.Values {
	if v == nil {
		v = url.Values{}
	}
	v.Set("csrf_token", alice.CSRF)
	return v
}

// pages are the GET pages every check below renders.
var pages = []string{
	"/mail/1", "/mail/1?sort=subject&threads=1&unread=1&page=1", "/mail/INBOX", "/mail/7",
	"/mail/1/1", "/mail/1/3", "/mail/1/1?text=1", "/mail/1/1?images=1",
	"/compose", "/compose?to=p-zhangsan", "/compose?mode=reply&folder=1&uid=2", "/compose?mode=all&folder=1&uid=2", "/compose?mode=forward&folder=1&uid=3",
	"/search", "/search?text=会议&from=王&since=2026-11-01&before=2026-12-03&attach=1",
	"/folders", "/settings",
}

func TestPagesRender(t *testing.T) {
	e := newEnv(t, Options{})
	for _, p := range pages {
		t.Run(p, func(t *testing.T) {
			w := e.get(p)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			body := w.Body.String()
			checkPageHeaders(t, w.Header())
			if !strings.Contains(body, `<html lang="zh-CN">`) {
				t.Error("page not in zh-CN by default")
			}
			if strings.Contains(body, "[[") {
				t.Errorf("missing catalogue key: %s", regexp.MustCompile(`\[\[[^\]]*\]\]`).FindString(body))
			}
			if strings.Contains(body, "%!") {
				t.Errorf("bad format verb in %s", body)
			}
			doc, err := html.Parse(strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			checkForms(t, doc)
			checkNoInlineScript(t, doc)
			checkNoEnglish(t, doc)
			// The sidebar (folders with unread counts) and the quota bar are on every page.
			if !strings.Contains(body, `id="quota-meter"`) || !strings.Contains(body, `class="count"`) || !strings.Contains(body, "收件箱") {
				t.Error("sidebar or quota bar missing")
			}
		})
	}
}

func checkPageHeaders(t *testing.T, h http.Header) {
	t.Helper()
	want := map[string]string{
		"Content-Security-Policy": pageCSP,
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"X-Frame-Options":         "DENY",
		"Cache-Control":           "no-store",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

func walk(n *html.Node, fn func(*html.Node)) {
	fn(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, fn)
	}
}

// checkNoEnglish: a zh-CN page shows none of the English catalogue's
// phrases, so no text bypasses the catalogue on its way to the page
// (Go-side strings included). Phrases of two words or more are checked;
// single words also occur in message data and header names.
func checkNoEnglish(t *testing.T, doc *html.Node) {
	t.Helper()
	var b strings.Builder
	walk(doc, func(n *html.Node) {
		switch n.Type {
		case html.TextNode:
			b.WriteString(n.Data + "\n")
		case html.ElementNode:
			for _, a := range n.Attr {
				if a.Key == "title" || a.Key == "aria-label" || a.Key == "placeholder" || strings.HasPrefix(a.Key, "data-msg") {
					b.WriteString(a.Val + "\n")
				}
			}
		}
	})
	text := b.String()
	for k, v := range catalogue["en"] {
		for _, frag := range regexp.MustCompile(`%(\[\d\])?[dsv]`).Split(v, -1) {
			frag = strings.TrimSpace(frag)
			if strings.Count(frag, " ") >= 1 && strings.Contains(text, frag) {
				t.Errorf("English text %q (%s) on a zh-CN page", frag, k)
			}
		}
	}
}

// checkForms: every POST form carries the session's csrf_token.
func checkForms(t *testing.T, doc *html.Node) {
	t.Helper()
	walk(doc, func(n *html.Node) {
		if n.Type != html.ElementNode || n.Data != "form" {
			return
		}
		if m, _ := attr(n, "method"); strings.ToLower(m) != "post" {
			return
		}
		found := false
		walk(n, func(c *html.Node) {
			if c.Type == html.ElementNode && c.Data == "input" {
				name, _ := attr(c, "name")
				val, _ := attr(c, "value")
				typ, _ := attr(c, "type")
				found = found || (name == "csrf_token" && val == alice.CSRF && typ == "hidden")
			}
		})
		if !found {
			action, _ := attr(n, "action")
			t.Errorf("POST form %s has no csrf_token", action)
		}
	})
}

// checkNoInlineScript: scripts only from /static/, no on* handlers, no
// style attributes (the CSP would block them anyway).
func checkNoInlineScript(t *testing.T, doc *html.Node) {
	t.Helper()
	walk(doc, func(n *html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		if n.Data == "script" {
			src, ok := attr(n, "src")
			if !ok || !strings.HasPrefix(src, "/static/") || n.FirstChild != nil {
				t.Errorf("inline or foreign script: %v", n.Attr)
			}
		}
		for _, a := range n.Attr {
			if strings.HasPrefix(a.Key, "on") || a.Key == "style" {
				t.Errorf("<%s %s=...> would need unsafe-inline", n.Data, a.Key)
			}
		}
	})
}

func TestNotSignedIn(t *testing.T) {
	e := newEnv(t, Options{})
	for _, p := range append(pages, "/", "/mail/1/1/body", "/mail/1/3/parts/2", "/compose/suggest?q=zs") {
		w := e.do("GET", p, nil, false, nil)
		if w.Code != http.StatusSeeOther {
			t.Errorf("GET %s: %d, want 303", p, w.Code)
			continue
		}
		want := "/login?relay=" + url.QueryEscape(p)
		if loc := w.Header().Get("Location"); loc != want {
			t.Errorf("GET %s: Location %q, want %q", p, loc, want)
		}
	}
	for _, p := range postRoutes {
		w := e.do("POST", p, strings.NewReader(withCSRF(nil).Encode()), false, map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
		if w.Code != http.StatusUnauthorized {
			t.Errorf("POST %s: %d, want 401", p, w.Code)
		}
	}
}

var postRoutes = []string{
	"/mail/1/act", "/compose", "/compose/autosave", "/folders/create", "/folders/7/rename", "/folders/7/delete",
	"/settings", "/settings/app-passwords", "/settings/app-passwords/1/revoke",
}

func TestCSRFRequired(t *testing.T) {
	for _, p := range postRoutes {
		for name, form := range map[string]url.Values{
			"missing": {"uid": {"1"}, "action": {"delete"}, "name": {"x"}, "confirm": {"1"}, "to": {"a@b.c"}},
			"wrong":   {"csrf_token": {"csrf-secret-tokeN"}, "uid": {"1"}, "action": {"delete"}, "name": {"x"}, "confirm": {"1"}, "to": {"a@b.c"}},
			"empty":   {"csrf_token": {""}, "uid": {"1"}, "action": {"delete"}},
		} {
			t.Run(p+"/"+name, func(t *testing.T) {
				e := newEnv(t, Options{})
				w := e.post(p, form)
				if w.Code != http.StatusForbidden {
					t.Fatalf("status %d, want 403", w.Code)
				}
				m := e.mail
				if len(m.acts)+len(m.sent)+len(m.saved)+len(m.created)+len(m.renamed)+len(m.deleted)+len(m.saves)+len(e.ap.list)+len(e.ap.revoked) != 0 {
					t.Fatal("a refused request changed something")
				}
			})
		}
	}
	// A cross-site request is refused even with the right token.
	e := newEnv(t, Options{})
	w := e.do("POST", "/mail/1/act", strings.NewReader(withCSRF(url.Values{"uid": {"1"}, "action": {"read"}}).Encode()), true,
		map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "cross-site"})
	if w.Code != http.StatusForbidden || len(e.mail.acts) != 0 {
		t.Fatalf("cross-site POST: %d, acts %v", w.Code, e.mail.acts)
	}
}

func TestRootRedirectsToInbox(t *testing.T) {
	e := newEnv(t, Options{})
	w := e.get("/")
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/mail/1" {
		t.Fatalf("%d %q", w.Code, w.Header().Get("Location"))
	}
}

func TestListPagingAndSort(t *testing.T) {
	e := newEnv(t, Options{})
	e.mail.settings.PerPage = 2
	w := e.get("/mail/1?sort=subject&page=2")
	body := w.Body.String()
	if !strings.Contains(body, "第 2 页，共 3 页") {
		t.Errorf("pager missing: %s", body)
	}
	for _, want := range []string{`href="/mail/1?sort=subject"`, `href="/mail/1?page=3&amp;sort=subject"`, `<option value="subject" selected>`} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %s", want)
		}
	}
	if got := e.get("/mail/999"); got.Code != http.StatusNotFound || !strings.Contains(got.Body.String(), "找不到") {
		t.Errorf("unknown folder: %d", got.Code)
	}
}

func TestActions(t *testing.T) {
	tests := []struct {
		name     string
		form     url.Values
		wantAct  string
		wantCode int
		wantLoc  string
	}{
		{"delete", url.Values{"uid": {"1", "3"}, "action": {"delete"}, "next": {"/mail/1?page=2"}}, "1:[1 3]:delete:0", 303, "/mail/1?page=2&notice=deleted"},
		{"read", url.Values{"uid": {"2"}, "action": {"read"}}, "1:[2]:read:0", 303, "/mail/1?notice=done"},
		{"move", url.Values{"uid": {"2"}, "action": {"move"}, "target": {"7"}}, "1:[2]:move:7", 303, "/mail/1?notice=moved"},
		{"junk", url.Values{"uid": {"2"}, "action": {"junk"}}, "1:[2]:junk:0", 303, "/mail/1?notice=moved"},
		{"archive from view", url.Values{"uid": {"2"}, "action": {"archive"}, "from_view": {"1"}, "next": {"/mail/1/2"}, "list": {"/mail/1?sort=from"}}, "1:[2]:archive:0", 303, "/mail/1?sort=from&notice=moved"},
		{"open redirect refused", url.Values{"uid": {"2"}, "action": {"flag"}, "next": {"//evil.example/"}}, "1:[2]:flag:0", 303, "/mail/1?notice=done"},
		{"move to unknown folder", url.Values{"uid": {"2"}, "action": {"move"}, "target": {"999"}}, "", 400, ""},
		{"unknown action", url.Values{"uid": {"2"}, "action": {"explode"}}, "", 400, ""},
		{"nothing selected", url.Values{"action": {"delete"}}, "", 303, "/mail/1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Options{})
			w := e.post("/mail/1/act", withCSRF(tc.form))
			if w.Code != tc.wantCode {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.wantCode, w.Body)
			}
			if tc.wantLoc != "" && w.Header().Get("Location") != tc.wantLoc {
				t.Errorf("Location %q, want %q", w.Header().Get("Location"), tc.wantLoc)
			}
			got := strings.Join(e.mail.acts, ",")
			if got != tc.wantAct {
				t.Errorf("acts %q, want %q", got, tc.wantAct)
			}
		})
	}
}

func TestViewSandboxedBody(t *testing.T) {
	e := newEnv(t, Options{})
	body := e.get("/mail/1/1").Body.String()
	re := regexp.MustCompile(`<iframe[^>]*>`)
	frame := re.FindString(body)
	// Links in mail open in a new tab outside the sandbox (allow-popups);
	// nothing else is allowed: no script, no same origin, no forms, no
	// navigating the page.
	if !strings.Contains(frame, `sandbox="allow-popups allow-popups-to-escape-sandbox"`) || !strings.Contains(frame, `src="/mail/1/1/body"`) {
		t.Fatalf("frame %q", frame)
	}
	for _, bad := range []string{"allow-scripts", "allow-same-origin", "allow-forms", "allow-top-navigation", "allow-modals"} {
		if strings.Contains(frame, bad) {
			t.Fatalf("frame allows %s: %q", bad, frame)
		}
	}
	if strings.Contains(body, "<b>周一上午九点</b>") {
		t.Fatal("message HTML rendered into the page itself")
	}
	if !strings.Contains(body, `href="/mail/1/1?images=1"`) || !strings.Contains(body, "显示外部图片") {
		t.Error("no show-remote-images link")
	}
	for _, want := range []string{`id="reply" href="/compose?folder=1&amp;mode=reply&amp;uid=1"`, "mode=all", "mode=forward", "显示邮件头", "Message-Id"} {
		if !strings.Contains(body, want) {
			t.Errorf("view lacks %s", want)
		}
	}

	w := e.get("/mail/1/1/body")
	if w.Code != 200 {
		t.Fatal(w.Code)
	}
	if got := w.Header().Get("Content-Security-Policy"); got != bodyCSP || !strings.HasPrefix(got, "default-src 'none'; img-src data: 'self'; style-src 'unsafe-inline'") || strings.Contains(got, "http") {
		t.Errorf("body CSP %q", got)
	}
	if w.Header().Get("X-Frame-Options") != "" {
		t.Error("body frame must be frameable by our pages")
	}
	if w.Header().Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(w.Body.String(), "<b>周一上午九点</b>") {
		t.Error("body route")
	}
	w = e.get("/mail/1/1/body?images=1")
	if got := w.Header().Get("Content-Security-Policy"); !strings.Contains(got, "img-src data: 'self' https: http:") {
		t.Errorf("remote images CSP %q", got)
	}
	if r := e.mail.reads[len(e.mail.reads)-1]; !r.RemoteImages {
		t.Error("images=1 not passed to Read")
	}
	// Prev/next follow the list order the reader came from.
	body = e.get("/mail/1/2").Body.String()
	if !strings.Contains(body, `id="prev-msg" rel="prev"`) || !strings.Contains(body, `href="/mail/1/3"`) || !strings.Contains(body, `href="/mail/1/1"`) {
		t.Errorf("prev/next links missing")
	}
}

func TestInlineImagesEmbedded(t *testing.T) {
	e := newEnv(t, Options{})
	msg := e.mail.find(inboxID, 2)
	msg.view.HTML = `<p>logo</p><img src="` + webmail.PartURL(inboxID, 2, "1.2") + `" alt="logo"><img src="` + webmail.PartURL(inboxID, 2, "1.3") + `">`
	msg.view.Parts = []webmail.Part{
		{ID: "1.2", ContentType: "image/png", Size: 4, Inline: true, ContentID: "logo@x"},
		{ID: "1.3", ContentType: "image/svg+xml", Size: 10, Inline: true, ContentID: "svg@x"},
	}
	msg.parts["1.2"] = []byte("\x89PNG")
	msg.parts["1.3"] = []byte("<svg></svg>")
	body := e.get("/mail/1/2/body").Body.String()
	if !strings.Contains(body, `<img src="data:image/png;base64,iVBORw==" alt="logo">`) {
		t.Errorf("inline png not embedded: %s", body)
	}
	if strings.Contains(body, "data:image/svg") {
		t.Error("svg embedded as a data URL")
	}
	// Inline parts shown in the body are not listed as attachments.
	if view := e.get("/mail/1/2").Body.String(); strings.Contains(view, "/parts/1.2") {
		t.Error("inline image listed as an attachment")
	}
}

// TestInlineImagesBounded: a message naming hundreds of inline images
// gets at most maxInlineImages embedded, all read in one PartsData call.
func TestInlineImagesBounded(t *testing.T) {
	e := newEnv(t, Options{})
	msg := e.mail.find(inboxID, 2)
	var html strings.Builder
	msg.view.Parts = nil
	for i := range 300 {
		id := fmt.Sprintf("1.%d", i+2)
		fmt.Fprintf(&html, `<img src="%s">`, webmail.PartURL(inboxID, 2, id))
		msg.view.Parts = append(msg.view.Parts, webmail.Part{ID: id, ContentType: "image/gif", Size: 6, Inline: true})
		msg.parts[id] = []byte("GIF89a")
	}
	msg.view.HTML = html.String()
	body := e.get("/mail/1/2/body").Body.String()
	if n := strings.Count(body, "data:image/gif;base64,"); n != maxInlineImages {
		t.Fatalf("%d images embedded, want %d", n, maxInlineImages)
	}
}

func TestAttachmentDownload(t *testing.T) {
	e := newEnv(t, Options{})
	body := e.get("/mail/1/3").Body.String()
	if !strings.Contains(body, `href="/mail/1/3/parts/2"`) || !strings.Contains(body, "报告.pdf") {
		t.Fatal("attachment link missing")
	}
	w := e.get("/mail/1/3/parts/2")
	if w.Code != 200 || w.Body.String() != "%PDF-1.4 fake" {
		t.Fatalf("%d %q", w.Code, w.Body)
	}
	if cd := w.Header().Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment;") || !strings.Contains(cd, "filename*=utf-8''%E6%8A%A5%E5%91%8A.pdf") {
		t.Errorf("Content-Disposition %q", cd)
	}
	if w.Header().Get("X-Content-Type-Options") != "nosniff" || w.Header().Get("Content-Type") != "application/pdf" {
		t.Error(w.Header())
	}
	// An HTML attachment is never served as HTML from our origin.
	w = e.get("/mail/1/3/parts/3")
	if ct := w.Header().Get("Content-Type"); ct != "application/octet-stream" || !strings.Contains(w.Header().Get("Content-Security-Policy"), "sandbox") {
		t.Errorf("html part served as %q", ct)
	}
	if w := e.get("/mail/1/3/parts/9"); w.Code != 404 {
		t.Errorf("unknown part: %d", w.Code)
	}
	w = e.get("/mail/1/3/raw")
	if w.Header().Get("Content-Type") != "message/rfc822" || !strings.HasPrefix(w.Header().Get("Content-Disposition"), "attachment") {
		t.Error(w.Header())
	}
}

func TestComposeDeepLink(t *testing.T) {
	e := newEnv(t, Options{})
	e.mail.settings.Signature = "办公厅 李丽"
	w := e.get("/compose?to=p-zhangsan")
	if w.Code != 200 {
		t.Fatal(w.Code)
	}
	body := w.Body.String()
	if !strings.Contains(body, `name="to" type="text" class="addr" value="张三 &lt;zhangsan@gov.example&gt;"`) {
		t.Errorf("to not prefilled:\n%s", body)
	}
	if !strings.Contains(body, "-- \n办公厅 李丽") {
		t.Error("signature not added")
	}
	if got := e.mail.composed; len(got) != 1 || got[0] != "new:0:0:p-zhangsan" {
		t.Errorf("Compose calls %v", got)
	}
	if w := e.get("/compose?to=nobody"); w.Code != 404 {
		t.Errorf("unknown person: %d", w.Code)
	}
	body = e.get("/compose?mode=reply&folder=1&uid=2").Body.String()
	for _, want := range []string{`value="Re: Budget review"`, `name="in_reply_to" value="&lt;m1@gov.example&gt;"`, "&gt; 各位同事",
		`name="reply_folder" value="1"`, `name="reply_uid" value="2"`} {
		if !strings.Contains(body, want) {
			t.Errorf("reply lacks %s", want)
		}
	}
	body = e.get("/compose?mode=forward&folder=1&uid=3").Body.String()
	if !strings.Contains(body, `name="forward_uid" value="3"`) || !strings.Contains(body, "原邮件的附件") {
		t.Error("forward fields missing")
	}
	if w := e.get("/compose?mode=reply&folder=1&uid=99"); w.Code != 404 {
		t.Errorf("reply to unknown: %d", w.Code)
	}
	// A saved draft reopens with its draft id (and no second signature).
	e.mail.msgs[draftsID] = append(e.mail.msgs[draftsID], &fakeMsg{view: webmail.View{Summary: webmail.Summary{FolderID: draftsID, UID: 9,
		To: "b@gov.example", Subject: "未完成的草稿"}, Text: "写了一半\n\n-- \n办公厅 李丽"}})
	if list := e.get("/mail/3").Body.String(); !strings.Contains(list, `href="/compose?folder=3&amp;mode=draft&amp;uid=9"`) || !strings.Contains(list, "收件人") {
		t.Errorf("drafts list does not open drafts in compose")
	}
	body = e.get("/compose?mode=draft&folder=3&uid=9").Body.String()
	if !strings.Contains(body, `name="draft_uid" id="draft_uid" value="9"`) || !strings.Contains(body, "未完成的草稿") || strings.Count(body, "办公厅 李丽") != 1 {
		t.Errorf("draft not reopened: %s", body)
	}
	// A draft's saved attachments are listed, ticked, and go with the form.
	d := e.mail.find(draftsID, 9)
	d.view.Parts = []webmail.Part{{ID: "2", Name: "预算草案.xlsx", ContentType: "application/octet-stream", Size: 2048, ContentID: "att-1@govhub"}}
	body = e.get("/compose?mode=draft&folder=3&uid=9").Body.String()
	if !strings.Contains(body, `name="keep_part" value="att-1@govhub" checked`) || !strings.Contains(body, "预算草案.xlsx") {
		t.Fatalf("draft attachments not offered:\n%s", body)
	}
	w = e.post("/compose", withCSRF(url.Values{"do": {"send"}, "to": {"b@gov.example"}, "draft_uid": {"9"}, "keep_part": {"att-1@govhub"}}))
	if w.Code != http.StatusSeeOther || len(e.mail.sent) == 0 {
		t.Fatalf("send: %d", w.Code)
	}
	if kp := e.mail.sent[len(e.mail.sent)-1].KeepParts; len(kp) != 1 || kp[0] != "att-1@govhub" {
		t.Fatalf("kept parts %v", kp)
	}
}

func multipartBody(t *testing.T, fields map[string]string, files map[string][]byte) (io.Reader, string) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for k, v := range fields {
		_ = mw.WriteField(k, v)
	}
	for name, data := range files {
		fw, err := mw.CreateFormFile("attachment", name)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = fw.Write(data)
	}
	_ = mw.Close()
	return &b, mw.FormDataContentType()
}

func TestComposeSend(t *testing.T) {
	e := newEnv(t, Options{})
	body, ct := multipartBody(t, map[string]string{"csrf_token": alice.CSRF, "do": "send",
		"to": `张三 <zhangsan@gov.example>；"Wang, Wei" <wang@gov.example>`, "cc": "c@gov.example", "subject": "通知", "body": "正文\r\n第二行",
		"alert": "1", "draft_uid": "42", "references": "<a@x> <b@x>", "reply_folder": "1", "reply_uid": "5"}, map[string][]byte{"表格.xlsx": []byte("sheet")})
	w := e.do("POST", "/compose", body, true, map[string]string{"Content-Type": ct})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/mail/2?notice=sent" {
		t.Fatalf("%d %q %s", w.Code, w.Header().Get("Location"), w.Body)
	}
	if len(e.mail.sent) != 1 {
		t.Fatal("not sent")
	}
	d := e.mail.sent[0]
	if len(d.To) != 2 || d.To[1] != `"Wang, Wei" <wang@gov.example>` || d.Text != "正文\n第二行" || !d.Alert || d.DraftUID != 42 || len(d.References) != 2 || d.ReplyFolderID != 1 || d.ReplyUID != 5 {
		t.Errorf("draft %+v", d)
	}
	if len(d.Attachments) != 1 || d.Attachments[0].Name != "表格.xlsx" || string(d.Attachments[0].Data) != "sheet" {
		t.Errorf("attachments %+v", d.Attachments)
	}

	// A refused send shows the form again with what was typed.
	e.mail.failSend = mailcore.ErrInvalidAddress
	w = e.post("/compose", withCSRF(url.Values{"do": {"send"}, "to": {"bad"}, "subject": {"保留的主题"}}))
	if w.Code != 400 || !strings.Contains(w.Body.String(), "保留的主题") || !strings.Contains(w.Body.String(), "地址无效") {
		t.Errorf("refused send: %d", w.Code)
	}
	w = e.post("/compose", withCSRF(url.Values{"do": {"send"}, "subject": {"无人"}}))
	if w.Code != 422 || !strings.Contains(w.Body.String(), "请至少填写一个收件人") {
		t.Errorf("no recipients: %d", w.Code)
	}

	// Save draft keeps the form and its draft id.
	w = e.post("/compose", withCSRF(url.Values{"do": {"save"}, "to": {"x@gov.example"}, "subject": {"草稿"}}))
	if w.Code != 200 || !strings.Contains(w.Body.String(), "草稿已保存") || !regexp.MustCompile(`name="draft_uid" id="draft_uid" value="\d+"`).MatchString(w.Body.String()) {
		t.Errorf("save draft: %d", w.Code)
	}
}

func TestUploadLimit(t *testing.T) {
	e := newEnv(t, Options{MaxUploadBytes: 64 << 10})
	srv := httptest.NewServer(e.h)
	defer srv.Close()
	body, ct := multipartBody(t, map[string]string{"csrf_token": alice.CSRF, "do": "send", "to": "a@gov.example"},
		map[string][]byte{"big.bin": bytes.Repeat([]byte("x"), 200<<10)})
	req, _ := http.NewRequest("POST", srv.URL+"/compose", body)
	req.Header.Set("Content-Type", ct)
	req.AddCookie(&http.Cookie{Name: "sid", Value: "alice"})
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d", res.StatusCode)
	}
	if !strings.Contains(string(b), "附件总大小超过上限 64 KB") {
		t.Errorf("no clear error: %s", b)
	}
	if len(e.mail.sent) != 0 {
		t.Error("sent anyway")
	}
	// Within the limit it goes through.
	body, ct = multipartBody(t, map[string]string{"csrf_token": alice.CSRF, "do": "send", "to": "a@gov.example"},
		map[string][]byte{"small.bin": bytes.Repeat([]byte("x"), 10<<10)})
	w := e.do("POST", "/compose", body, true, map[string]string{"Content-Type": ct})
	if w.Code != http.StatusSeeOther || len(e.mail.sent) != 1 {
		t.Fatalf("small upload: %d", w.Code)
	}
	// The form tells the script the limit.
	if !strings.Contains(e.get("/compose").Body.String(), `data-max-upload="65536"`) {
		t.Error("limit not on the form")
	}
}

func TestAutosaveAndSuggest(t *testing.T) {
	e := newEnv(t, Options{})
	body, ct := multipartBody(t, map[string]string{"to": "z@gov.example", "subject": "自动", "body": "x"}, nil)
	w := e.do("POST", "/compose/autosave", body, true, map[string]string{"Content-Type": ct, "X-CSRF-Token": alice.CSRF})
	var got struct {
		DraftUID uint32 `json:"draft_uid"`
	}
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &got) != nil || got.DraftUID == 0 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if len(e.mail.saved) != 1 || e.mail.saved[0].Subject != "自动" {
		t.Errorf("saved %+v", e.mail.saved)
	}
	body, ct = multipartBody(t, map[string]string{"to": "z@gov.example"}, nil)
	if w := e.do("POST", "/compose/autosave", body, true, map[string]string{"Content-Type": ct, "X-CSRF-Token": "nope"}); w.Code != 403 {
		t.Errorf("bad header token: %d", w.Code)
	}
	w = e.get("/compose/suggest?q=zs")
	var cs []webmail.Contact
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &cs) != nil || len(cs) != 2 || cs[0].Name != "张三" {
		t.Fatalf("suggest %d %s", w.Code, w.Body)
	}
	if w.Header().Get("Content-Type") != "application/json" {
		t.Error("suggest content type")
	}
}

func TestSearch(t *testing.T) {
	e := newEnv(t, Options{})
	w := e.get("/search?subject=会议&text=周一&since=2026-11-01&before=2026-12-02&attach=1&folder=1")
	if w.Code != 200 {
		t.Fatal(w.Code)
	}
	q := e.mail.searches[0]
	if q.Subject != "会议" || q.Text != "周一" || !q.HasAttachment || q.FolderID != 1 ||
		!q.Since.Equal(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)) || !q.Before.Equal(time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("query %+v", q)
	}
	body := e.get("/search?text=会议").Body.String()
	if !strings.Contains(body, "找到 1 封邮件") || !strings.Contains(body, "关于召开") {
		t.Errorf("results: %s", body)
	}
	if w := e.get("/search?since=yesterday"); w.Code != 400 {
		t.Errorf("bad date: %d", w.Code)
	}
	if e.get("/search"); len(e.mail.searches) != 2 {
		t.Error("an empty search form searched")
	}
}

func TestFolders(t *testing.T) {
	e := newEnv(t, Options{})
	body := e.get("/folders").Body.String()
	if strings.Contains(body, `action="/folders/1/rename"`) || !strings.Contains(body, `action="/folders/7/rename"`) {
		t.Error("rename offered for the wrong folders")
	}
	if w := e.post("/folders/create", withCSRF(url.Values{"name": {"报告"}, "parent": {"项目/2026"}})); w.Code != 303 || e.mail.created[0] != "项目/2026/报告" {
		t.Errorf("create: %d %v", w.Code, e.mail.created)
	}
	if w := e.post("/folders/create", withCSRF(url.Values{"name": {"项目/2026"}})); w.Code != 409 || !strings.Contains(w.Body.String(), "已有同名") {
		t.Errorf("duplicate: %d", w.Code)
	}
	if w := e.post("/folders/create", withCSRF(url.Values{"name": {"a\nb"}})); w.Code != 400 {
		t.Errorf("bad name: %d", w.Code)
	}
	if w := e.post("/folders/7/rename", withCSRF(url.Values{"name": {"项目/2027"}})); w.Code != 303 || e.mail.renamed[0] != "7:项目/2027" {
		t.Errorf("rename: %d", w.Code)
	}
	if w := e.post("/folders/1/rename", withCSRF(url.Values{"name": {"x"}})); w.Code != 409 {
		t.Errorf("rename inbox: %d", w.Code)
	}
	if w := e.post("/folders/7/delete", withCSRF(nil)); w.Code != 400 || len(e.mail.deleted) != 0 {
		t.Errorf("unconfirmed delete: %d", w.Code)
	}
	if w := e.post("/folders/7/delete", withCSRF(url.Values{"confirm": {"1"}})); w.Code != 303 || e.mail.deleted[0] != 7 {
		t.Errorf("delete: %d", w.Code)
	}
}

func TestSettingsAndAppPasswords(t *testing.T) {
	e := newEnv(t, Options{SSOSignOutPath: "/sso/out", SignOutAllPath: "/sso/out/all"})
	body := e.get("/settings").Body.String()
	if !strings.Contains(body, `action="/sso/out"`) || !strings.Contains(body, `action="/sso/out/all"`) {
		t.Error("sign-out forms missing")
	}
	w := e.post("/settings", withCSRF(url.Values{"display_name": {"Li Li"}, "signature": {"sig"}, "language": {"en"}, "per_page": {"100"}}))
	if w.Code != 303 || len(e.mail.saves) != 1 || e.mail.saves[0] != (webmail.Settings{DisplayName: "Li Li", Signature: "sig", Language: "en", PerPage: 100}) {
		t.Fatalf("save: %d %+v", w.Code, e.mail.saves)
	}
	if c := w.Result().Cookies(); len(c) != 1 || c[0].Name != "lang" || c[0].Value != "en" {
		t.Errorf("lang cookie %v", c)
	}
	if body := e.get("/settings?notice=saved").Body.String(); !strings.Contains(body, `<html lang="en">`) || !strings.Contains(body, "Settings saved.") {
		t.Error("language setting not applied")
	}

	w = e.post("/settings/app-passwords", withCSRF(url.Values{"name": {"Outlook"}}))
	if w.Code != 200 || !strings.Contains(w.Body.String(), "abcd-efgh-ijkl-mnop") || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("create: %d", w.Code)
	}
	body = e.get("/settings").Body.String()
	if strings.Contains(body, "abcd-efgh-ijkl-mnop") || !strings.Contains(body, "Outlook") {
		t.Error("secret shown again, or the new password not listed")
	}
	if w := e.post("/settings/app-passwords/1/revoke", withCSRF(nil)); w.Code != 303 || len(e.ap.revoked) != 1 || e.ap.revoked[0] != 1 {
		t.Errorf("revoke %d", w.Code)
	}
	if w := e.post("/settings/app-passwords", withCSRF(url.Values{"name": {""}})); w.Code != 400 {
		t.Errorf("empty name: %d", w.Code)
	}
}

func TestLanguage(t *testing.T) {
	tests := []struct {
		name, setting, cookie, accept, want string
	}{
		{"default", "", "", "", "zh-CN"},
		{"accept en", "", "", "en-US,en;q=0.9", "en"},
		{"accept zh", "", "", "zh-TW", "zh-CN"},
		{"cookie beats accept", "", "en", "zh-CN", "en"},
		{"setting beats cookie", "zh-CN", "en", "en", "zh-CN"},
		{"setting en", "en", "", "", "en"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Options{})
			e.mail.settings.Language = tc.setting
			hdr := map[string]string{}
			if tc.accept != "" {
				hdr["Accept-Language"] = tc.accept
			}
			if tc.cookie != "" {
				hdr["Cookie"] = "lang=" + tc.cookie + "; sid=alice"
			}
			w := e.do("GET", "/mail/1", nil, tc.cookie == "", hdr)
			if !strings.Contains(w.Body.String(), `<html lang="`+tc.want+`">`) {
				t.Errorf("not %s: %d", tc.want, w.Code)
			}
		})
	}
	// English pages render fully too.
	e := newEnv(t, Options{})
	e.mail.settings.Language = "en"
	for _, p := range pages {
		body := e.get(p).Body.String()
		if strings.Contains(body, "[[") || !strings.Contains(body, "Inbox") {
			t.Errorf("%s in English", p)
		}
	}
}

var keyUse = regexp.MustCompile(`\.T "([a-z_0-9]+)"`)

func TestCatalogueComplete(t *testing.T) {
	zh, en := catalogue["zh-CN"], catalogue["en"]
	verbs := regexp.MustCompile(`%(\[\d\])?[dsv]`)
	for k, v := range zh {
		ev, ok := en[k]
		if !ok {
			t.Errorf("%s: no en text", k)
			continue
		}
		if strings.TrimSpace(v) == "" || strings.TrimSpace(ev) == "" {
			t.Errorf("%s: empty text", k)
		}
		if len(verbs.FindAllString(v, -1)) != len(verbs.FindAllString(ev, -1)) {
			t.Errorf("%s: format verbs differ: %q / %q", k, v, ev)
		}
	}
	for k := range en {
		if _, ok := zh[k]; !ok {
			t.Errorf("%s: no zh-CN text", k)
		}
	}
	// Every key the templates and Go code use exists.
	used := map[string]bool{}
	_ = fs.WalkDir(templateFS, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := fs.ReadFile(templateFS, p)
			for _, m := range keyUse.FindAllStringSubmatch(string(b), -1) {
				used[m[1]] = true
			}
		}
		return nil
	})
	for _, k := range []string{"error_csrf", "error_signed_out", "error_too_large", "folder_inbox", "folder_sent", "product"} {
		used[k] = true
	}
	for _, sk := range specialKeys {
		used[sk] = true
	}
	for n := range notices {
		used["notice_"+n] = true
	}
	for k := range used {
		if _, ok := zh[k]; !ok {
			t.Errorf("template uses %s, not in the catalogue", k)
		}
	}
	if len(used) < 100 {
		t.Errorf("only %d keys found in templates: the scan is broken", len(used))
	}
}

// TestNoUntranslatedLiterals: template text outside actions and tags, and
// the text attributes users read, contain no letters: all words come
// from the catalogue.
func TestNoUntranslatedLiterals(t *testing.T) {
	action := regexp.MustCompile(`(?s)\{\{.*?\}\}`)
	tag := regexp.MustCompile(`(?s)<[^>]*>`)
	entity := regexp.MustCompile(`&[a-z]+;`)
	textAttr := regexp.MustCompile(`(?i)\s(placeholder|title|aria-label|alt|value|data-msg-[a-z-]+)="([^"]*)"`)
	entries, err := fs.ReadDir(templateFS, "templates")
	if err != nil {
		t.Fatal(err)
	}
	pageName := regexp.MustCompile(`\{\{define "page"\}\}[a-z]+\{\{end\}\}`)
	for _, de := range entries {
		b, _ := fs.ReadFile(templateFS, "templates/"+de.Name())
		// The page name (a data attribute for the script) is no text.
		src := action.ReplaceAllString(pageName.ReplaceAllString(string(b), ""), "\x00")
		text := entity.ReplaceAllString(tag.ReplaceAllString(src, " "), " ")
		for i, r := range text {
			if unicode.IsLetter(r) {
				t.Errorf("%s: literal text %q", de.Name(), strings.TrimSpace(text[max(0, i-20):min(len(text), i+40)]))
				break
			}
		}
		for _, m := range textAttr.FindAllStringSubmatch(src, -1) {
			if m[1] == "value" {
				// Values sent to the server (action names, "1") are not shown.
				continue
			}
			for _, r := range m[2] {
				if unicode.IsLetter(r) {
					t.Errorf("%s: literal %s=%q", de.Name(), m[1], m[2])
					break
				}
			}
		}
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/mail/1?page=2":        "/mail/1?page=2",
		"/search?text=a":        "/search?text=a",
		"//evil.example":        "/d",
		"https://evil.example/": "/d",
		"/\\evil":               "/d",
		"/settings":             "/d",
		"/mail/../logout":       "/d",
		"":                      "/d",
	} {
		if got := safeNext(in, "/d"); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSplitAddrs(t *testing.T) {
	got := splitAddrs(`张三 <a@x>，李四 <b@x>; "Wang, Wei" <c@x>、d@x` + "\n")
	want := []string{"张三 <a@x>", "李四 <b@x>", `"Wang, Wei" <c@x>`, "d@x"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("%q", got)
	}
}

func TestStatic(t *testing.T) {
	e := newEnv(t, Options{})
	for _, p := range []string{"/static/app.js", "/static/app.css"} {
		w := e.do("GET", p, nil, false, nil)
		if w.Code != 200 || w.Header().Get("X-Content-Type-Options") != "nosniff" || w.Header().Get("Content-Security-Policy") != pageCSP {
			t.Errorf("%s: %d", p, w.Code)
		}
	}
}

// TestViewCountsAfterReading: opening an unread message shows the
// sidebar's unread count without it.
func TestViewCountsAfterReading(t *testing.T) {
	e := newEnv(t, Options{})
	count := regexp.MustCompile(`<span class="name">收件箱</span> <span class="count"><span class="visually-hidden">[^<]*</span>(\d+)</span>`)
	before := count.FindStringSubmatch(e.get("/mail/1").Body.String())
	after := count.FindStringSubmatch(e.get("/mail/1/1").Body.String())
	if before == nil || after == nil || before[1] != "3" || after[1] != "2" {
		t.Fatalf("INBOX unread before %v, after reading %v (want 3, then 2)", before, after)
	}
}
