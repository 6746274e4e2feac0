// Package testidp runs a real SAML 2.0 identity provider in a test
// process (github.com/crewjam/saml/samlidp over TLS, signing real
// assertions) for end-to-end tests of a govhub started as a separate
// process: staff sign-in, webmail in Chromium. It is test plumbing; no
// production code imports it. The SP package's own unit tests
// (sso/saml) keep their finer-grained harness.
package testidp

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml/samlidp"
)

// IdP is one running identity provider.
type IdP struct {
	URL    string // https://127.0.0.1:port
	Client *http.Client
	srv    *samlidp.Server
}

// Start runs an IdP until t ends.
func Start(t testing.TB) *IdP {
	t.Helper()
	hs := httptest.NewUnstartedServer(nil)
	hs.StartTLS()
	t.Cleanup(hs.Close)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "test idp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	u, _ := url.Parse(hs.URL)
	s, err := samlidp.New(samlidp.Options{URL: *u, Key: key, Certificate: cert, Store: &samlidp.MemoryStore{},
		Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	hs.Config.Handler = s
	return &IdP{URL: hs.URL, Client: hs.Client(), srv: s}
}

func (d *IdP) put(t testing.TB, path string, body []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, d.URL+path, strings.NewReader(string(body)))
	resp, err := d.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("IdP PUT %s: %s", path, resp.Status)
	}
}

// AddUser creates a user who signs in with name and password; the
// assertion carries email (the NameID is the email when set).
func (d *IdP) AddUser(t testing.TB, name, password, email string) {
	b, _ := json.Marshal(map[string]any{"name": name, "password": password, "email": email, "common_name": name})
	d.put(t, "/users/"+url.PathEscape(name), b)
}

// Metadata returns the IdP's metadata XML.
func (d *IdP) Metadata(t testing.TB) []byte {
	t.Helper()
	resp, err := d.Client.Get(d.URL + "/metadata")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("IdP metadata: %s", resp.Status)
	}
	return b
}

// MetadataFile writes the metadata into dir and returns the path (for
// idp_metadata_file: the govhub process need not trust the IdP's
// test certificate to fetch it).
func (d *IdP) MetadataFile(t testing.TB, dir string) string {
	p := filepath.Join(dir, "idp-metadata.xml")
	if err := os.WriteFile(p, d.Metadata(t), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// RegisterSP tells the IdP about a service provider, from the SP's
// metadata URL (fetched with client, which must trust the SP).
func (d *IdP) RegisterSP(t testing.TB, client *http.Client, metadataURL string) {
	t.Helper()
	resp, err := client.Get(metadataURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	md, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("SP metadata %s: %s", metadataURL, resp.Status)
	}
	d.put(t, "/services/govhub", md)
}

var (
	formAction = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
	hidden     = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)"`)
)

// SignIn drives a Go browser (a client with a cookie jar that trusts both
// sides) from govhub's SAML login URL through the IdP's login form and
// the auto-posted response back to govhub, and returns govhub's final
// response (its body read into the returned string).
func (d *IdP) SignIn(t testing.TB, c *http.Client, loginURL, user, password string) (*http.Response, string) {
	t.Helper()
	resp, body := fetch(t, c, http.MethodGet, loginURL, nil)
	if !strings.Contains(body, `name="password"`) {
		t.Fatalf("no IdP login form at %s (%s):\n%.500s", resp.Request.URL, resp.Status, body)
	}
	form := url.Values{"user": {user}, "password": {password}}
	action := ""
	if m := formAction.FindStringSubmatch(body); m != nil {
		action = html.UnescapeString(m[1])
	}
	for _, m := range hidden.FindAllStringSubmatch(body, -1) {
		form.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	resp, body = fetch(t, c, http.MethodPost, action, form)
	// The IdP answers with a form that posts SAMLResponse to the ACS.
	m := formAction.FindStringSubmatch(body)
	if m == nil || !strings.Contains(body, "SAMLResponse") {
		t.Fatalf("IdP did not answer with a SAMLResponse form (%s):\n%.800s", resp.Status, body)
	}
	acs := html.UnescapeString(m[1])
	post := url.Values{}
	for _, h := range hidden.FindAllStringSubmatch(body, -1) {
		post.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
	}
	return fetch(t, c, http.MethodPost, acs, post)
}

func fetch(t testing.TB, c *http.Client, method, u string, form url.Values) (*http.Response, string) {
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
		t.Fatal(fmt.Errorf("%s %s: %w", method, u, err))
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// AddShortcut creates an IdP-initiated login link /login/<name> for the
// SP with entity id spEntityID.
func (d *IdP) AddShortcut(t testing.TB, name, spEntityID string) {
	b, _ := json.Marshal(map[string]any{"name": name, "service_provider": spEntityID})
	d.put(t, "/shortcuts/"+url.PathEscape(name), b)
}

// Unsolicited signs user in at the IdP and returns the IdP-initiated
// response for the shortcut, not yet posted: the ACS URL and the form
// (SAMLResponse, RelayState). Posting it twice is a replay.
func (d *IdP) Unsolicited(t testing.TB, c *http.Client, shortcut, user, password string) (string, url.Values) {
	t.Helper()
	resp, body := fetch(t, c, http.MethodPost, d.URL+"/login", url.Values{"user": {user}, "password": {password}})
	if resp.StatusCode != 200 {
		t.Fatalf("IdP login: %s %.300s", resp.Status, body)
	}
	resp, body = fetch(t, c, http.MethodGet, d.URL+"/login/"+url.PathEscape(shortcut), nil)
	m := formAction.FindStringSubmatch(body)
	if m == nil || !strings.Contains(body, "SAMLResponse") {
		t.Fatalf("IdP-initiated login gave no SAMLResponse form (%s):\n%.800s", resp.Status, body)
	}
	form := url.Values{}
	for _, h := range hidden.FindAllStringSubmatch(body, -1) {
		form.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
	}
	return html.UnescapeString(m[1]), form
}
