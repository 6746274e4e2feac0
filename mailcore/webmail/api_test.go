package webmail

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/emersion/go-message/mail"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/govhub/govhub/internal/testdb"
	"github.com/govhub/govhub/mailcore"
)

func init() {
	// Downloads the spec lists beside application/octet-stream.
	openapi3filter.RegisterBodyDecoder("image/png", openapi3filter.FileBodyDecoder)
	openapi3filter.RegisterBodyDecoder("application/pdf", openapi3filter.FileBodyDecoder)
}

// specRouter loads openapi.yaml, checks it is a valid document and routes
// requests to its operations.
func specRouter(t testing.TB) routers.Router {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml invalid: %v", err)
	}
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// apiServer starts the API and the badge handler on httptest, as
// cmd/govhub mounts them.
func apiServer(t testing.TB, e *env, badge BadgeOptions) *httptest.Server {
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", e.svc.API(e.sess, e.apps))
	badge.Sessions = e.sess
	mux.Handle("/api/v1/badge", BadgeHandler(e.svc, badge))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// client talks to the API as one user and checks every exchange against
// the OpenAPI document.
type client struct {
	t      *testing.T
	srv    *httptest.Server
	router routers.Router
	token  string // session cookie; "" for none
	csrf   string
	// skipReq: the request is deliberately outside the spec (a missing
	// CSRF header); only the reply is validated.
	skipReq bool
	// seen collects the operationIds exercised, when set.
	seen map[string]bool
}

func (e *env) client(t *testing.T, srv *httptest.Server, router routers.Router, u User, token string) *client {
	return &client{t: t, srv: srv, router: router, token: token, csrf: u.CSRF}
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// do sends one request; body is JSON-encoded unless it is []byte (sent
// with contentType as is).
func (c *client) do(method, path string, body any, contentType string, hdr http.Header) reply {
	c.t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		raw = b
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			c.t.Fatal(err)
		}
		contentType = "application/json"
	}
	req, err := http.NewRequest(method, c.srv.URL+path, bytes.NewReader(raw))
	if err != nil {
		c.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.AddCookie(&http.Cookie{Name: "s", Value: c.token})
	}
	if method != http.MethodGet && method != http.MethodHead && method != http.MethodOptions && c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	c.validate(req, raw, resp, rb)
	return reply{resp.StatusCode, resp.Header, rb}
}

// validate checks the request and the reply against openapi.yaml.
func (c *client) validate(req *http.Request, body []byte, resp *http.Response, rb []byte) {
	c.t.Helper()
	vreq := req.Clone(context.Background())
	vreq.Body = io.NopCloser(bytes.NewReader(body))
	route, params, err := c.router.FindRoute(vreq)
	if err != nil {
		c.t.Errorf("%s %s: not in openapi.yaml: %v", req.Method, req.URL.Path, err)
		return
	}
	if c.seen != nil {
		c.seen[route.Operation.OperationID] = true
	}
	in := &openapi3filter.RequestValidationInput{
		Request: vreq, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
	}
	if !c.skipReq {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			c.t.Errorf("%s %s: request does not match openapi.yaml: %v", req.Method, req.URL.Path, err)
		}
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Body:    io.NopCloser(bytes.NewReader(rb)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		c.t.Errorf("%s %s: reply %d %.300s does not match openapi.yaml: %v", req.Method, req.URL.Path, resp.StatusCode, rb, err)
	}
}

func (c *client) want(r reply, status int) {
	c.t.Helper()
	if r.status != status {
		c.t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
}

func multipartDraft(t *testing.T, fields map[string][]string, files map[string][]byte) ([]byte, string) {
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for k, vs := range fields {
		for _, v := range vs {
			w.WriteField(k, v)
		}
	}
	for name, data := range files {
		fw, err := w.CreateFormFile("attachments", name)
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(data)
	}
	w.Close()
	return b.Bytes(), w.FormDataContentType()
}

// TestAPI exercises every endpoint over HTTP on a real store, each request
// and reply validated against openapi.yaml.
func TestAPI(t *testing.T) {
	router := specRouter(t)
	backends(t, func(t *testing.T, e *env) {
		srv := apiServer(t, e, BadgeOptions{Origins: []string{"https://portal.gov.example"}})
		c := e.client(t, srv, router, e.a, "tok-a")
		c.seen = map[string]bool{}
		defer func() {
			doc, _ := openapi3.NewLoader().LoadFromData(OpenAPI)
			for path, item := range doc.Paths.Map() {
				for method, op := range item.Operations() {
					if !c.seen[op.OperationID] {
						t.Errorf("%s %s (%s) not exercised", method, path, op.OperationID)
					}
				}
			}
		}()
		inbox := e.folderID(e.a, "INBOX")
		hUID := e.deliver(e.a, "INBOX", htmlMail, 0)
		pUID := e.deliver(e.a, "INBOX", plainMail, 1)

		var fs []Folder
		r := c.do("GET", "/api/v1/folders", nil, "", nil)
		c.want(r, 200)
		r.json(t, &fs)
		if len(fs) != 6 || fs[0].Name != "INBOX" || fs[0].Messages != 2 || fs[0].Unread != 2 {
			t.Errorf("folders %+v", fs)
		}
		var f Folder
		r = c.do("POST", "/api/v1/folders", map[string]string{"name": "项目"}, "", nil)
		c.want(r, 201)
		r.json(t, &f)
		c.want(c.do("PATCH", fmt.Sprintf("/api/v1/folders/%d", f.ID), map[string]string{"name": "项目组"}, "", nil), 204)
		c.want(c.do("POST", "/api/v1/folders", map[string]string{"name": "项目组/2026"}, "", nil), 201)
		c.want(c.do("POST", "/api/v1/folders", map[string]string{"name": "项目组/2026"}, "", nil), 409)
		c.want(c.do("POST", "/api/v1/folders", map[string]string{"name": ""}, "", nil), 400)
		c.want(c.do("DELETE", fmt.Sprintf("/api/v1/folders/%d", inbox), nil, "", nil), 409)
		c.want(c.do("GET", "/api/v1/quota", nil, "", nil), 200)

		var lp ListPage
		r = c.do("GET", fmt.Sprintf("/api/v1/messages?folder=%d&page=1&per_page=10&sort=-date&threads=false&unread=true", inbox), nil, "", nil)
		c.want(r, 200)
		r.json(t, &lp)
		if lp.Total != 2 || lp.Items[0].UID != hUID || lp.PerPage != 10 {
			t.Errorf("list %+v", lp)
		}
		c.want(c.do("GET", fmt.Sprintf("/api/v1/messages?folder=%d&threads=true&sort=subject", inbox), nil, "", nil), 200)
		c.want(c.do("GET", "/api/v1/messages?folder=999999", nil, "", nil), 404)
		r = c.do("GET", "/api/v1/search?subject=weekly&since=2026-12-01&before=2026-12-31T00:00:00Z&has_attachment=true&from=news&to=zhangsan&text=plain&folder="+fmt.Sprint(inbox), nil, "", nil)
		c.want(r, 200)
		r.json(t, &lp)
		if lp.Total != 1 || lp.Items[0].Subject != "Weekly" {
			t.Errorf("search %+v", lp)
		}
		c.want(c.do("GET", "/api/v1/search?since=yesterday", nil, "", nil), 400) // a string in the spec; the server refuses it

		var v View
		r = c.do("GET", fmt.Sprintf("/api/v1/messages/%d/%d", inbox, hUID), nil, "", nil)
		c.want(r, 200)
		r.json(t, &v)
		if !v.RemoteBlocked || !v.Seen || len(v.Parts) != 2 {
			t.Errorf("view %+v", v)
		}
		r = c.do("GET", fmt.Sprintf("/api/v1/messages/%d/%d?remote_images=true", inbox, hUID), nil, "", nil)
		c.want(r, 200)
		r.json(t, &v)
		if v.RemoteBlocked || !strings.Contains(v.HTML, "https://tracker.example/p.gif") {
			t.Errorf("remote images %v %s", v.RemoteBlocked, v.HTML)
		}
		r = c.do("GET", fmt.Sprintf("/api/v1/messages/%d/%d/raw", inbox, hUID), nil, "", nil)
		c.want(r, 200)
		if !bytes.Contains(r.body, []byte("Subject: Weekly")) || r.header.Get("Content-Disposition") != fmt.Sprintf(`attachment; filename="message-%d.eml"; filename*=UTF-8''message-%d.eml`, hUID, hUID) {
			t.Errorf("raw %q", r.header)
		}
		r = c.do("GET", fmt.Sprintf("/api/v1/messages/%d/%d/parts/2", inbox, hUID), nil, "", nil)
		c.want(r, 200)
		if string(r.body) != "%PDF-1.4\n" || r.header.Get("Content-Type") != "application/pdf" || r.header.Get("X-Content-Type-Options") != "nosniff" ||
			r.header.Get("Content-Disposition") != `attachment; filename="__.pdf"; filename*=UTF-8''%E6%8A%A5%E5%91%8A.pdf` {
			t.Errorf("part %q %q", r.body, r.header)
		}
		r = c.do("GET", fmt.Sprintf("/api/v1/messages/%d/%d/parts/1.2", inbox, hUID), nil, "", nil)
		c.want(r, 200)
		if r.header.Get("Content-Type") != "image/png" {
			t.Errorf("inline image type %q", r.header.Get("Content-Type"))
		}
		c.want(c.do("GET", fmt.Sprintf("/api/v1/messages/%d/%d/parts/7", inbox, hUID), nil, "", nil), 404)

		c.want(c.do("POST", "/api/v1/messages/actions", map[string]any{"folder": inbox, "uids": []uint32{pUID}, "action": "flag"}, "", nil), 204)
		c.want(c.do("POST", "/api/v1/messages/actions", map[string]any{"folder": inbox, "uids": []uint32{pUID}, "action": "move", "target": f.ID}, "", nil), 204)
		c.want(c.do("POST", "/api/v1/messages/actions", map[string]any{"folder": f.ID, "uids": []uint32{1}, "action": "delete"}, "", nil), 204)
		if n, _ := e.store.Counts(ctx, e.folderID(e.a, "Trash")); n.Messages != 1 {
			t.Errorf("trash %+v", n)
		}

		var d draftBody
		r = c.do("GET", fmt.Sprintf("/api/v1/compose?mode=reply&folder=%d&uid=%d", inbox, hUID), nil, "", nil)
		c.want(r, 200)
		r.json(t, &d)
		if d.Subject != "Re: Weekly" || d.InReplyTo != "html-1@example.com" || d.ReplyUID != hUID {
			t.Errorf("compose %+v", d)
		}
		r = c.do("GET", "/api/v1/compose?mode=new&to=p-1001", nil, "", nil)
		c.want(r, 200)
		r.json(t, &d)
		if strings.Join(d.To, "") != "王五 <wangwu@gov.example>" {
			t.Errorf("deep link %+v", d)
		}
		c.skipReq = true // outside the spec on purpose
		c.want(c.do("GET", "/api/v1/compose?mode=shout", nil, "", nil), 400)
		c.skipReq = false

		var ref MessageRef
		r = c.do("POST", "/api/v1/drafts", map[string]any{"to": []string{"lisi@gov.example"}, "subject": "草稿", "text": "..."}, "", nil)
		c.want(r, 200)
		r.json(t, &ref)
		r = c.do("POST", "/api/v1/send", map[string]any{
			"to": []string{"李四 <lisi@gov.example>"}, "subject": "报告", "text": "见附件", "draft_uid": ref.UID,
			"attachments": []map[string]any{{"name": "a.txt", "content_type": "text/plain", "data": []byte("附件内容")}},
		}, "", nil)
		c.want(r, 200)
		r.json(t, &ref)
		if ref.FolderID != e.folderID(e.a, "Sent") {
			t.Errorf("sent ref %+v", ref)
		}
		if n, _ := e.store.Counts(ctx, e.folderID(e.a, "Drafts")); n.Messages != 0 {
			t.Errorf("draft kept %+v", n)
		}
		body, ct := multipartDraft(t, map[string][]string{"to": {"lisi@gov.example", "wangwu@gov.example"}, "subject": {"表单"}, "text": {"正文"}},
			map[string][]byte{"数据.csv": []byte("a,b\n1,2\n")})
		r = c.do("POST", "/api/v1/send", body, ct, nil)
		c.want(r, 200)
		call := e.sub.last(t)
		if strings.Join(call.rcpts, ",") != "lisi@gov.example,wangwu@gov.example" {
			t.Errorf("form rcpts %v", call.rcpts)
		}
		mr, err := mail.CreateReader(bytes.NewReader(call.raw))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			if h, ok := p.Header.(*mail.AttachmentHeader); ok {
				n, _ := h.Filename()
				b, _ := io.ReadAll(p.Body)
				names = append(names, n+"="+string(b))
			}
		}
		if strings.Join(names, "") != "数据.csv=a,b\n1,2\n" {
			t.Errorf("form attachment %q", names)
		}
		body, ct = multipartDraft(t, map[string][]string{"subject": {"表单草稿"}, "draft_uid": {"0"}}, nil)
		c.want(c.do("POST", "/api/v1/drafts", body, ct, nil), 200)

		var st Settings
		r = c.do("GET", "/api/v1/settings", nil, "", nil)
		c.want(r, 200)
		r.json(t, &st)
		if st.Language != "zh-CN" || st.PerPage != 50 {
			t.Errorf("settings %+v", st)
		}
		r = c.do("PUT", "/api/v1/settings", Settings{DisplayName: "张三", Signature: "签名", Language: "en", PerPage: 20}, "", nil)
		c.want(r, 200)
		r.json(t, &st)
		if st.Language != "en" || st.PerPage != 20 {
			t.Errorf("saved %+v", st)
		}
		c.skipReq = true
		c.want(c.do("PUT", "/api/v1/settings", Settings{Language: "klingon"}, "", nil), 400)
		c.skipReq = false
		r = c.do("GET", fmt.Sprintf("/api/v1/messages?folder=%d", inbox), nil, "", nil)
		r.json(t, &lp)
		if lp.PerPage != 20 {
			t.Errorf("per_page setting not used: %d", lp.PerPage)
		}

		var cs []Contact
		r = c.do("GET", "/api/v1/suggest?q="+url.QueryEscape("王")+"&limit=5", nil, "", nil)
		c.want(r, 200)
		r.json(t, &cs)
		if len(cs) != 1 || cs[0].Address != "wangwu@gov.example" {
			t.Errorf("suggest %+v", cs)
		}
		var b Badge
		r = c.do("GET", "/api/v1/badge?n=3", nil, "", nil)
		c.want(r, 200)
		r.json(t, &b)
		if b.Unread != 0 || len(b.Recent) != 0 {
			t.Errorf("badge %+v", b)
		}

		var created createdAppPassword
		r = c.do("POST", "/api/v1/app-passwords", map[string]string{"name": "Foxmail"}, "", nil)
		c.want(r, 201)
		r.json(t, &created)
		if created.Secret == "" || created.AppPassword.Name != "Foxmail" {
			t.Errorf("created %+v", created)
		}
		var aps []AppPassword
		r = c.do("GET", "/api/v1/app-passwords", nil, "", nil)
		c.want(r, 200)
		r.json(t, &aps)
		if len(aps) != 1 || strings.Contains(string(r.body), created.Secret) {
			t.Errorf("list %s", r.body)
		}
		c.want(c.do("DELETE", fmt.Sprintf("/api/v1/app-passwords/%d", aps[0].ID), nil, "", nil), 204)
		c.want(c.do("DELETE", fmt.Sprintf("/api/v1/app-passwords/%d", aps[0].ID), nil, "", nil), 404)

		c.want(c.do("DELETE", fmt.Sprintf("/api/v1/folders/%d", f.ID), nil, "", nil), 409) // has a child
		child := e.folderID(e.a, "项目组/2026")
		c.want(c.do("DELETE", fmt.Sprintf("/api/v1/folders/%d", child), nil, "", nil), 204)

		// The portal's side of the badge, through BadgeHandler.
		r = c.do("OPTIONS", "/api/v1/badge", nil, "", http.Header{"Origin": {"https://portal.gov.example"}, "Access-Control-Request-Method": {"GET"}})
		c.want(r, 204)
	})
}

// TestAPIAuthorization: user B names A's folders and messages by id and
// gets 404 everywhere, and nothing of A's changes.
func TestAPIAuthorization(t *testing.T) {
	router := specRouter(t)
	backends(t, func(t *testing.T, e *env) {
		srv := apiServer(t, e, BadgeOptions{})
		b := e.client(t, srv, router, e.b, "tok-b")
		inbox := e.folderID(e.a, "INBOX")
		uid := e.deliver(e.a, "INBOX", htmlMail, 0)
		own, _ := e.svc.CreateFolder(ctx, e.a, "私人")
		for _, tc := range []struct {
			method, path string
			body         any
		}{
			{"GET", fmt.Sprintf("/api/v1/messages/%d/%d", inbox, uid), nil},
			{"GET", fmt.Sprintf("/api/v1/messages/%d/%d/raw", inbox, uid), nil},
			{"GET", fmt.Sprintf("/api/v1/messages/%d/%d/parts/2", inbox, uid), nil},
			{"GET", fmt.Sprintf("/api/v1/messages?folder=%d", inbox), nil},
			{"GET", fmt.Sprintf("/api/v1/search?folder=%d", inbox), nil},
			{"GET", fmt.Sprintf("/api/v1/compose?mode=forward&folder=%d&uid=%d", inbox, uid), nil},
			{"POST", "/api/v1/messages/actions", map[string]any{"folder": inbox, "uids": []uint32{uid}, "action": "delete"}},
			{"POST", "/api/v1/messages/actions", map[string]any{"folder": e.folderID(e.b, "INBOX"), "uids": []uint32{1}, "action": "move", "target": own.ID}},
			{"POST", "/api/v1/send", map[string]any{"to": []string{"b@x.example"}, "forward_folder_id": inbox, "forward_uid": uid}},
			{"PATCH", fmt.Sprintf("/api/v1/folders/%d", own.ID), map[string]string{"name": "stolen"}},
			{"DELETE", fmt.Sprintf("/api/v1/folders/%d", own.ID), nil},
		} {
			r := b.do(tc.method, tc.path, tc.body, "", nil)
			if r.status != 404 || string(r.body) != "{\"error\":\"not found\"}\n" {
				t.Errorf("%s %s: %d %s", tc.method, tc.path, r.status, r.body)
			}
		}
		m, err := e.store.Message(ctx, inbox, uid)
		if err != nil || m.Flags&mailcore.FlagSeen != 0 {
			t.Errorf("A's message changed: %v %v", err, m.Flags)
		}
		if _, err := e.store.MailboxByName(ctx, e.a.AccountID, "私人"); err != nil {
			t.Errorf("A's folder: %v", err)
		}
		if len(e.sub.calls) != 0 {
			t.Error("B sent A's message")
		}
		// B's own requests work, and B's badge does not count A's mail.
		var bd Badge
		r := b.do("GET", "/api/v1/badge", nil, "", nil)
		r.json(t, &bd)
		if bd.Unread != 0 {
			t.Errorf("B's badge %+v", bd)
		}
	})
}

// TestAPISessionAndCSRF: no session is 401, a missing or wrong CSRF token
// on a state-changing request is 403 (and nothing happens), the right one
// passes.
func TestAPISessionAndCSRF(t *testing.T) {
	router := specRouter(t)
	e := newEnv(t, testdb.SQLiteURL(t), Config{})
	srv := apiServer(t, e, BadgeOptions{})
	anon := e.client(t, srv, router, User{}, "")
	anon.skipReq = true
	for _, p := range []string{"/api/v1/folders", "/api/v1/badge", "/api/v1/settings", "/api/v1/messages?folder=1"} {
		if r := anon.do("GET", p, nil, "", nil); r.status != 401 {
			t.Errorf("%s without session: %d", p, r.status)
		}
	}
	if r := anon.do("POST", "/api/v1/folders", map[string]string{"name": "x"}, "", nil); r.status != 401 {
		t.Errorf("POST without session: %d", r.status)
	}
	stranger := e.client(t, srv, router, User{}, "tok-unknown")
	stranger.skipReq = true
	if r := stranger.do("GET", "/api/v1/folders", nil, "", nil); r.status != 401 {
		t.Errorf("unknown session: %d", r.status)
	}

	a := e.client(t, srv, router, e.a, "tok-a")
	a.skipReq = true
	for _, csrf := range []string{"", "wrong", e.b.CSRF, e.a.CSRF + "x"} {
		a.csrf = csrf
		for _, tc := range []struct{ method, path string }{
			{"POST", "/api/v1/folders"}, {"PUT", "/api/v1/settings"}, {"POST", "/api/v1/send"},
			{"POST", "/api/v1/messages/actions"}, {"DELETE", "/api/v1/folders/1"}, {"POST", "/api/v1/app-passwords"},
		} {
			r := a.do(tc.method, tc.path, map[string]string{"name": "csrf"}, "", nil)
			if r.status != 403 {
				t.Errorf("%s %s with CSRF %q: %d %s", tc.method, tc.path, csrf, r.status, r.body)
			}
		}
	}
	if _, err := e.store.MailboxByName(ctx, e.a.AccountID, "csrf"); err == nil {
		t.Error("a forged request created a folder")
	}
	a.csrf, a.skipReq = e.a.CSRF, false
	a.want(a.do("POST", "/api/v1/folders", map[string]string{"name": "csrf"}, "", nil), 201)

	e.sess.err = errBoom
	if r := a.do("GET", "/api/v1/folders", nil, "", nil); r.status != 500 || strings.Contains(string(r.body), "boom") {
		t.Errorf("session store down: %d %s", r.status, r.body)
	}
}

// TestAPITooLarge: a message or a body over the limit is 413 and nothing
// is sent.
func TestAPITooLarge(t *testing.T) {
	router := specRouter(t)
	e := newEnv(t, testdb.SQLiteURL(t), Config{MaxMessageSize: 64 << 10})
	srv := apiServer(t, e, BadgeOptions{})
	c := e.client(t, srv, router, e.a, "tok-a")
	att := func(n int) map[string]any {
		return map[string]any{"to": []string{"lisi@gov.example"}, "attachments": []map[string]any{{"name": "x.bin", "data": bytes.Repeat([]byte{7}, n)}}}
	}
	c.want(c.do("POST", "/api/v1/send", att(100<<10), "", nil), 413)   // the message
	c.want(c.do("POST", "/api/v1/send", att(2<<20), "", nil), 413)     // the body
	c.want(c.do("POST", "/api/v1/drafts", att(100<<10), "", nil), 413) // a draft too
	body, ct := multipartDraft(t, map[string][]string{"to": {"lisi@gov.example"}}, map[string][]byte{"big.bin": bytes.Repeat([]byte{1}, 2<<20)})
	c.want(c.do("POST", "/api/v1/send", body, ct, nil), 413)
	body, ct = multipartDraft(t, map[string][]string{"to": {"lisi@gov.example"}}, map[string][]byte{"mid.bin": bytes.Repeat([]byte{1}, 100<<10)})
	c.want(c.do("POST", "/api/v1/send", body, ct, nil), 413)
	if len(e.sub.calls) != 0 {
		t.Errorf("%d oversized messages submitted", len(e.sub.calls))
	}
	c.want(c.do("POST", "/api/v1/send", att(10<<10), "", nil), 200)
}

// TestAPIDownloadsNeverRender: HTML, SVG and other active parts download
// as application/octet-stream, never in place.
func TestAPIDownloadsNeverRender(t *testing.T) {
	router := specRouter(t)
	e := newEnv(t, testdb.SQLiteURL(t), Config{})
	srv := apiServer(t, e, BadgeOptions{})
	c := e.client(t, srv, router, e.a, "tok-a")
	uid := e.deliver(e.a, "INBOX", `From: x@evil.example
To: zhangsan@gov.example
Subject: parts
Content-Type: multipart/mixed; boundary=b

--b
Content-Type: text/plain

see attachments
--b
Content-Type: text/html; name="page.html"
Content-Disposition: attachment; filename="page.html"

<script>alert(1)</script>
--b
Content-Type: image/svg+xml
Content-Disposition: inline; filename="a.svg"

<svg onload="alert(1)"/>
--b
Content-Type: application/xhtml+xml; name="x.xhtml"

<html/>
--b--
`, 0)
	inbox := e.folderID(e.a, "INBOX")
	for _, part := range []string{"2", "3", "4"} {
		r := c.do("GET", fmt.Sprintf("/api/v1/messages/%d/%d/parts/%s", inbox, uid, part), nil, "", nil)
		c.want(r, 200)
		if r.header.Get("Content-Type") != "application/octet-stream" || !strings.HasPrefix(r.header.Get("Content-Disposition"), "attachment;") ||
			r.header.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(r.header.Get("Content-Security-Policy"), "sandbox") {
			t.Errorf("part %s: %q", part, r.header)
		}
	}
}

// TestBadgeHandler: the portal reads the badge with the user's cookie
// from an allowed origin only, or server to server with its token.
func TestBadgeHandler(t *testing.T) {
	router := specRouter(t)
	e := newEnv(t, testdb.SQLiteURL(t), Config{})
	e.deliver(e.b, "INBOX", plainMail, 0)
	people := map[string]User{"p-b": e.b}
	srv := apiServer(t, e, BadgeOptions{
		Origins:     []string{"https://portal.gov.example", "https://oa.gov.example"},
		PortalToken: "portal-secret-token",
		UserByPerson: func(_ context.Context, id string) (User, error) {
			u, ok := people[id]
			if !ok {
				return User{}, mailcore.ErrNotFound
			}
			return u, nil
		},
	})
	browser := e.client(t, srv, router, e.b, "tok-b")
	r := browser.do("GET", "/api/v1/badge", nil, "", http.Header{"Origin": {"https://portal.gov.example"}})
	browser.want(r, 200)
	if r.header.Get("Access-Control-Allow-Origin") != "https://portal.gov.example" || r.header.Get("Access-Control-Allow-Credentials") != "true" ||
		!strings.Contains(strings.Join(r.header.Values("Vary"), ","), "Origin") {
		t.Errorf("CORS headers %q", r.header)
	}
	var b Badge
	r.json(t, &b)
	if b.Unread != 1 || len(b.Recent) != 1 || b.Recent[0].Subject != "关于开会的通知" {
		t.Errorf("badge %+v", b)
	}
	r = browser.do("GET", "/api/v1/badge", nil, "", http.Header{"Origin": {"https://evil.example"}})
	if r.status != 403 || r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("forbidden origin: %d %q", r.status, r.header)
	}
	r = browser.do("OPTIONS", "/api/v1/badge", nil, "", http.Header{"Origin": {"https://oa.gov.example"}, "Access-Control-Request-Method": {"GET"}})
	if r.status != 204 || r.header.Get("Access-Control-Allow-Origin") != "https://oa.gov.example" || r.header.Get("Access-Control-Allow-Methods") != "GET" {
		t.Errorf("preflight: %d %q", r.status, r.header)
	}
	r = browser.do("OPTIONS", "/api/v1/badge", nil, "", http.Header{"Origin": {"https://evil.example"}, "Access-Control-Request-Method": {"GET"}})
	if r.status != 403 || r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("forbidden preflight: %d %q", r.status, r.header)
	}
	// Same-origin pages need no CORS.
	host := strings.TrimPrefix(srv.URL, "http://")
	browser.want(browser.do("GET", "/api/v1/badge", nil, "", http.Header{"Origin": {"http://" + host}}), 200)

	portal := e.client(t, srv, router, User{}, "")
	r = portal.do("GET", "/api/v1/badge?person=p-b", nil, "", http.Header{"Authorization": {"Bearer portal-secret-token"}})
	portal.want(r, 200)
	r.json(t, &b)
	if b.Unread != 1 {
		t.Errorf("portal badge %+v", b)
	}
	for _, auth := range []string{"Bearer wrong", "Bearer portal-secret-tokenX", "Basic cG9ydGFs", "Bearer "} {
		if r := portal.do("GET", "/api/v1/badge?person=p-b", nil, "", http.Header{"Authorization": {auth}}); r.status != 401 {
			t.Errorf("%q: %d", auth, r.status)
		}
	}
	portal.want(portal.do("GET", "/api/v1/badge?person=p-nobody", nil, "", http.Header{"Authorization": {"Bearer portal-secret-token"}}), 404)
	portal.want(portal.do("GET", "/api/v1/badge", nil, "", nil), 401)
}

// TestAPIBadgeRoute: the API's own GET /badge (when BadgeHandler is not
// mounted in front of it) serves the session's user.
func TestAPIBadgeRoute(t *testing.T) {
	router := specRouter(t)
	e := newEnv(t, testdb.SQLiteURL(t), Config{})
	e.deliver(e.a, "INBOX", plainMail, 0)
	srv := httptest.NewServer(e.svc.API(e.sess, nil))
	t.Cleanup(srv.Close)
	c := e.client(t, srv, router, e.a, "tok-a")
	var b Badge
	r := c.do("GET", "/api/v1/badge?n=1", nil, "", nil)
	c.want(r, 200)
	r.json(t, &b)
	if b.Unread != 1 || len(b.Recent) != 1 || b.Recent[0].From != `"Li Si" <lisi@gov.example>` && b.Recent[0].From != "Li Si <lisi@gov.example>" {
		t.Errorf("badge %+v", b)
	}
	// Without AppPasswords the routes are 404, and unknown paths too.
	c.want(c.do("GET", "/api/v1/app-passwords", nil, "", nil), 404)
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/nowhere", nil)
	req.AddCookie(&http.Cookie{Name: "s", Value: "tok-a"})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || string(body) != "{\"error\":\"not found\"}\n" {
		t.Errorf("unknown path: %d %s", resp.StatusCode, body)
	}
}
