package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/govhub/govhub/adapters/affairslink/simulator"
	"github.com/govhub/govhub/directory"
)

// api calls the JSON API as the signed-in browser c (the CSRF token in
// X-CSRF-Token for anything but GET).
func api(t *testing.T, c *http.Client, method, u, csrf, body string, hdr map[string]string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 8192)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, b.String(), resp.Header
}

// TestWebmailWithDirectory: webmail over a synced org chart. Address
// autocomplete finds people by pinyin initials and department lists by
// name; the compose deep link from the address book addresses a person;
// an app password made in webmail signs in to IMAP until revoked; the
// portal reads a person's badge with its token, and its pages with the
// session under CORS for the configured origin only.
func TestWebmailWithDirectory(t *testing.T) {
	py := python(t)
	sim := simulator.New(simulator.Config{AppKey: "govhub-mail", AppSecret: "s3cret-app"})
	sim.Seed(3, 6)
	srv := httptest.NewServer(sim)
	defer srv.Close()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "govhub.yaml")
	os.WriteFile(cfgPath, []byte(`directory:
  match_key: employee_no
  department_domain: gov.example.cn
  peers:
    - name: affairslink
      type: affairslink
      settings:
        base_url: `+srv.URL+`
        app_key: govhub-mail
sso:
  affairslink:
    - name: affairs
      peer: affairslink
web:
  cors_origins: [https://portal.gov.example.cn]
`), 0o600)
	t.Setenv("GOVHUB_PEER_AFFAIRSLINK_SECRET", "s3cret-app")
	portalToken := strings.Repeat("p", 40)
	t.Setenv("GOVHUB_PORTAL_TOKEN", portalToken)
	data := filepath.Join(dir, "data")
	if out, errs, code := run(t, "", "--config", cfgPath, "--data", data, "sync", "run", "affairslink"); code != 0 {
		t.Fatalf("sync: %s %s", out, errs)
	}
	_, addrs, stderr := startServe(t, data, "--config", cfgPath, "--modules", "smtp,imap,http")
	web := addrs["https"]
	me, _ := sim.User("u00001")
	other, _ := sim.User("u00002")

	c := browser(t)
	code, body, _ := fetch(t, c, "GET", web+"/sso/affairslink/affairs/login?code="+sim.IssueLoginCode(me.ID)+"&relay=/settings", nil)
	if code != 200 || !strings.Contains(body, `name="csrf_token"`) {
		t.Fatalf("sign-in to settings: %d %.500s\n%s", code, body, stderr)
	}
	csrf := between(body, `name="csrf_token" value="`, `"`)

	// Autocomplete: pinyin initials find the colleague; a department name
	// finds its list address.
	_, initials := directory.Pinyin(other.Name)
	code, body, _ = api(t, c, "GET", web+"/api/v1/suggest?q="+url.QueryEscape(initials), "", "", nil)
	if code != 200 || !strings.Contains(body, other.Email) {
		t.Fatalf("suggest %q (initials of %s): %d %s", initials, other.Name, code, body)
	}
	code, body, _ = api(t, c, "GET", web+"/api/v1/suggest?q="+url.QueryEscape("秘书处"), "", "", nil)
	if code != 200 || !strings.Contains(body, `"is_group":true`) || !strings.Contains(body, "@gov.example.cn") {
		t.Fatalf("suggest a department: %d %s", code, body)
	}

	// The compose deep link the address book hands out.
	code, body, _ = api(t, c, "GET", web+"/api/v1/addressbook/people?q="+url.QueryEscape(other.Name), "", "", nil)
	var book struct{ People []directory.PersonView }
	if code != 200 || json.Unmarshal([]byte(body), &book) != nil || len(book.People) == 0 || book.People[0].ComposeURL == "" {
		t.Fatalf("address book for a signed-in person: %d %s", code, body)
	}
	code, body, _ = fetch(t, c, "GET", web+book.People[0].ComposeURL, nil)
	if code != 200 || !strings.Contains(body, other.Email) {
		t.Fatalf("compose deep link %s: %d\n%.800s", book.People[0].ComposeURL, code, body)
	}

	// An app password made in webmail works for IMAP, until revoked.
	code, body, _ = api(t, c, "POST", web+"/api/v1/app-passwords", "", `{"name":"Foxmail"}`, nil)
	if code != http.StatusForbidden {
		t.Fatalf("app password without CSRF: %d", code)
	}
	code, body, _ = api(t, c, "POST", web+"/api/v1/app-passwords", csrf, `{"name":"Foxmail"}`, nil)
	var created struct {
		Secret      string `json:"secret"`
		AppPassword struct {
			ID int64 `json:"id"`
		} `json:"app_password"`
	}
	if code != http.StatusCreated || json.Unmarshal([]byte(body), &created) != nil || created.Secret == "" {
		t.Fatalf("create app password: %d %s", code, body)
	}
	imapLogin := func(pw string) string {
		script := `
import imaplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
h, p = sys.argv[1].rsplit(":", 1)
m = imaplib.IMAP4_SSL(h, int(p), ssl_context=ctx)
try:
    m.login(sys.argv[2], sys.argv[3])
    print("login ok")
except imaplib.IMAP4.error as e:
    print("login refused", e)
`
		out, _ := exec.Command(py, "-c", script, hostPort(addrs["imaps"]), me.Email, pw).CombinedOutput()
		return string(out)
	}
	if out := imapLogin(created.Secret); !strings.Contains(out, "login ok") {
		t.Fatalf("IMAP with the app password: %s", out)
	}
	// ... and not for the web: an app password opens no web session.
	code, _, _ = passwordSignIn(t, browser(t), web, me.Email, created.Secret, "")
	if code != http.StatusUnauthorized {
		t.Fatalf("web sign-in with an app password: %d", code)
	}
	code, _, _ = api(t, c, "DELETE", web+"/api/v1/app-passwords/"+itoa(created.AppPassword.ID), csrf, "", nil)
	if code/100 != 2 {
		t.Fatalf("revoke: %d", code)
	}
	if out := imapLogin(created.Secret); !strings.Contains(out, "login refused") {
		t.Fatalf("IMAP with a revoked app password: %s", out)
	}

	// The badge: mail arrives, the portal's server reads the count by
	// person id with its token; the portal's pages with the session, under
	// CORS for the configured origin only.
	send := `
import smtplib, sys
from email.mime.text import MIMEText
from email.header import Header
h, p = sys.argv[1].rsplit(":", 1)
m = MIMEText("请查收。", "plain", "utf-8")
m["From"] = "office@elsewhere.example"; m["To"] = sys.argv[2]; m["Subject"] = Header("周报提醒", "utf-8")
with smtplib.SMTP(h, int(p)) as s:
    s.send_message(m)
`
	if out, err := exec.Command(py, "-c", send, hostPort(addrs["smtp"]), me.Email).CombinedOutput(); err != nil {
		t.Fatalf("smtplib: %v %s", err, out)
	}
	var mineBook struct{ People []directory.PersonView }
	_, body, _ = api(t, c, "GET", web+"/api/v1/addressbook/people?q="+url.QueryEscape(me.Name), "", "", nil)
	json.Unmarshal([]byte(body), &mineBook)
	mine := mineBook.People
	if len(mine) == 0 {
		t.Fatalf("address book lacks %s: %s", me.Name, body)
	}
	server := &http.Client{Transport: c.Transport}
	code, body, _ = api(t, server, "GET", web+"/api/v1/badge?person="+itoa(mine[0].ID), "", "", map[string]string{"Authorization": "Bearer " + portalToken})
	if code != 200 || !strings.Contains(body, `"unread":1`) || !strings.Contains(body, "周报提醒") {
		t.Fatalf("badge by portal token: %d %s", code, body)
	}
	code, _, _ = api(t, server, "GET", web+"/api/v1/badge?person="+itoa(mine[0].ID), "", "", map[string]string{"Authorization": "Bearer wrong" + portalToken})
	if code != http.StatusUnauthorized && code != http.StatusForbidden {
		t.Fatalf("badge with a wrong token: %d", code)
	}
	code, body, hdr := api(t, c, "GET", web+"/api/v1/badge", "", "", map[string]string{"Origin": "https://portal.gov.example.cn"})
	if code != 200 || hdr.Get("Access-Control-Allow-Origin") != "https://portal.gov.example.cn" || hdr.Get("Access-Control-Allow-Credentials") != "true" || !strings.Contains(body, `"unread":1`) {
		t.Fatalf("badge from the portal's page: %d %v %s", code, hdr, body)
	}
	code, _, hdr = api(t, c, "GET", web+"/api/v1/badge", "", "", map[string]string{"Origin": "https://evil.example"})
	if hdr.Get("Access-Control-Allow-Origin") != "" || code == 200 {
		t.Fatalf("badge from a foreign page: %d %v", code, hdr)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
