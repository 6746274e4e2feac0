package main

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govhub/govhub/adapters/affairslink/simulator"
)

// browser is a real HTTP client with a cookie jar that trusts the
// server's self-signed certificate, as a browser whose user accepted it.
func browser(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
}

func fetch(t *testing.T, c *http.Client, method, u string, form url.Values) (int, string, *http.Response) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp
}

// passwordSignIn fills the sign-in page's password form as a browser
// does: GET /login (which sets the form's CSRF cookie), then POST with
// the page's token.
func passwordSignIn(t *testing.T, c *http.Client, web, user, pass, relay string) (int, string, *http.Response) {
	t.Helper()
	_, page, _ := fetch(t, c, "GET", web+"/login", nil)
	tok := between(page, `name="login_csrf" value="`, `"`)
	if tok == "" {
		t.Fatalf("sign-in page has no login_csrf token:\n%s", page)
	}
	return fetch(t, c, "POST", web+"/login", url.Values{"username": {user}, "password": {pass}, "relay": {relay}, "login_csrf": {tok}})
}

// TestSignInAffairsLink: the affairs link opens govhub with a one-time
// code; govhub exchanges it through the affairs-link peer for the user id,
// finds the synced person by that anchor and lands them signed in on the
// page with their name, department and unread count. The code works
// once; a forged one gets the failure page. The password form works for
// an account that has a password, and its session token differs from the
// SSO one.
func TestSignInAffairsLink(t *testing.T) {
	sim := simulator.New(simulator.Config{AppKey: "govhub-mail", AppSecret: "s3cret-app"})
	sim.Seed(3, 5)
	srv := httptest.NewServer(sim)
	defer srv.Close()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "govhub.yaml")
	os.WriteFile(cfgPath, []byte(`directory:
  match_key: employee_no
  peers:
    - name: affairslink
      type: affairslink
      settings:
        base_url: `+srv.URL+`
        app_key: govhub-mail
sso:
  affairslink:
    - name: affairs
      label: 政务协同
      peer: affairslink
`), 0o600)
	t.Setenv("GOVHUB_PEER_AFFAIRSLINK_SECRET", "s3cret-app")
	data := filepath.Join(dir, "data")
	base := []string{"--config", cfgPath, "--data", data}
	if out, errs, code := run(t, "", append(base, "sync", "run", "affairslink")...); code != 0 {
		t.Fatalf("sync: %s %s", out, errs)
	}
	if _, errs, code := run(t, "pw-for-the-form\n", append(base, "user", "add", "clerk@gov.example.cn", "--password-stdin")...); code != 0 {
		t.Fatalf("user add: %s", errs)
	}
	_, addrs, stderr := startServe(t, data, "--config", cfgPath, "--modules", "http")
	web := addrs["https"]
	if web == "" {
		t.Fatalf("no https listener: %v", addrs)
	}
	u, _ := sim.User("u00002")

	// The sign-in page offers the affairs link and the password form, in Chinese.
	c := browser(t)
	code, body, _ := fetch(t, c, "GET", web+"/login", nil)
	if code != 200 || !strings.Contains(body, "使用 政务协同 登录") || !strings.Contains(body, `name="password"`) {
		t.Fatalf("login page: %d %s", code, body)
	}

	loginCode := sim.IssueLoginCode("u00002")
	code, body, resp := fetch(t, c, "GET", web+"/sso/affairs/login?code="+loginCode, nil)
	if code != 404 {
		t.Fatalf("wrong path answered %d", code)
	}
	code, body, resp = fetch(t, c, "GET", web+"/sso/affairslink/affairs/login?code="+loginCode+"&relay=/me", nil)
	if code != 200 || resp.Request.URL.Path != "/me" || !strings.Contains(body, u.Name) || !strings.Contains(body, `id="unread">0<`) {
		t.Fatalf("signed-in page: %d %s %s\n%s", code, resp.Request.URL, body, stderr)
	}
	if !strings.Contains(body, "秘书处") && !strings.Contains(body, "信息中心") && !strings.Contains(body, "政务公开处") {
		t.Errorf("department missing from the signed-in page:\n%s", body)
	}
	webURL, _ := url.Parse(web)
	ssoToken := ""
	for _, k := range c.Jar.Cookies(webURL) {
		if k.Name == "govhub_session" {
			ssoToken = k.Value
		}
	}

	// The same code again, in another browser: refused, no session.
	c2 := browser(t)
	code, body, _ = fetch(t, c2, "GET", web+"/sso/affairslink/affairs/login?code="+loginCode, nil)
	if code != 403 || !strings.Contains(body, `data-reason="error_failed"`) {
		t.Fatalf("reused code: %d %s", code, body)
	}
	if code, _, _ := fetch(t, c2, "GET", web+"/me", nil); code != 200 {
		t.Fatalf("/me for a stranger: %d", code) // the sign-in page after the redirect
	}
	code, body, _ = fetch(t, c2, "GET", web+"/sso/affairslink/affairs/login?code=forged-code", nil)
	if code != 403 {
		t.Fatalf("forged code: %d %s", code, body)
	}

	// Password form; then the SSO browser signs in by password too and gets
	// a new token.
	c3 := browser(t)
	// Without the form's token (a cross-site page posting the form): refused.
	if code, _, _ := fetch(t, c3, "POST", web+"/login", url.Values{"username": {"clerk@gov.example.cn"}, "password": {"pw-for-the-form"}}); code != http.StatusForbidden {
		t.Fatalf("sign-in without the form token: %d", code)
	}
	code, body, resp = passwordSignIn(t, c3, web, "clerk@gov.example.cn", "pw-for-the-form", "/me")
	if code != 200 || resp.Request.URL.Path != "/me" || !strings.Contains(body, "clerk@gov.example.cn") {
		t.Fatalf("password sign-in: %d %s %s", code, resp.Request.URL, body)
	}
	code, body, _ = passwordSignIn(t, c3, web, "clerk@gov.example.cn", "wrong", "")
	if code != 401 || !strings.Contains(body, "不正确") {
		t.Fatalf("wrong password: %d %s", code, body)
	}
	passwordSignIn(t, c, web, "clerk@gov.example.cn", "pw-for-the-form", "")
	for _, k := range c.Jar.Cookies(webURL) {
		if k.Name == "govhub_session" && (k.Value == ssoToken || ssoToken == "") {
			t.Fatal("session token unchanged across sign-in")
		}
	}
	if strings.Contains(stderr.String(), loginCode) || strings.Contains(stderr.String(), "pw-for-the-form") {
		t.Fatal("a login code or password reached the log")
	}
}
