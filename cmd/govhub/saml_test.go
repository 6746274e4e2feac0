package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govhub/govhub/internal/testdb"
	"github.com/govhub/govhub/internal/testidp"
)

// freePort returns a loopback address nobody listens on (a browser-facing
// URL must be known before the server starts: SAML entity ids and ACS
// derive from it).
func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// spKeyPair writes a signing pair every govhub node of a test shares.
func spKeyPair(t *testing.T, dir string) (string, string) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "govhub sp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	keyFile, certFile := filepath.Join(dir, "sp.key"), filepath.Join(dir, "sp.crt")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), 0o600)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	return keyFile, certFile
}

type samlSetup struct {
	idp     *testidp.IdP
	cfgPath string
	public  string // https://127.0.0.1:port, the public URL
	https   string // listen address behind it
}

// newSAMLSetup writes a config with one SAML IdP ("portal"), mapping the
// NameID (the IdP user's email) to mail.
func newSAMLSetup(t *testing.T, dir, dbURL string, idpInitiated bool, extra ...string) *samlSetup {
	idp := testidp.Start(t)
	s := &samlSetup{idp: idp, https: freePort(t)}
	s.public = "https://" + s.https
	key, cert := spKeyPair(t, dir)
	db := ""
	if dbURL != "" {
		db = "database:\n  url: " + dbURL + "\n"
	}
	s.cfgPath = filepath.Join(dir, "govhub.yaml")
	os.WriteFile(s.cfgPath, []byte(db+fmt.Sprintf(`web:
  public_url: %s
sso:
  saml:
    - name: portal
      label: 政务门户
      idp_metadata_file: %s
      idp_initiated: %v
      key_file: %s
      cert_file: %s
%s`, s.public, idp.MetadataFile(t, dir), idpInitiated, key, cert, strings.Join(extra, ""))), 0o600)
	return s
}

// TestSignInSAML: SP-initiated sign-in through a real IdP lands on the
// relay signed in; signing out ends the session and continues to the
// IdP's single logout; the sign-in page lists the IdP.
func TestSignInSAML(t *testing.T) {
	dir := t.TempDir()
	s := newSAMLSetup(t, dir, "", false)
	data := filepath.Join(dir, "data")
	if _, errs, code := run(t, "", "--config", s.cfgPath, "--data", data, "user", "add", "alice@gov.example", "--name", "王小丽"); code != 0 {
		t.Fatalf("user add: %s", errs)
	}
	_, _, stderr := startServe(t, data, "--config", s.cfgPath, "--modules", "http", "--https", s.https)
	c := browser(t)
	s.idp.RegisterSP(t, c, s.public+"/sso/saml/portal/metadata")
	s.idp.AddUser(t, "alice", "idp-password", "alice@gov.example")

	code, body, _ := fetch(t, c, "GET", s.public+"/login?relay=/me", nil)
	if code != 200 || !strings.Contains(body, "/sso/saml/portal/login?relay=%2Fme") {
		t.Fatalf("login page: %d %s", code, body)
	}
	resp, body := s.idp.SignIn(t, c, s.public+"/sso/saml/portal/login?relay=/me", "alice", "idp-password")
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/me" || !strings.Contains(body, "王小丽") {
		t.Fatalf("after SAML sign-in: %s %s\n%s\n%s", resp.Status, resp.Request.URL, body, stderr)
	}
	csrf := between(body, `name="csrf_token" value="`, `"`)
	// Sign out: the session ends, the browser goes on to the IdP's SLO.
	// (A page that moves on by itself, not a redirect: see sso's handler.)
	code, body, _ = fetch(t, c, "POST", s.public+"/logout", url.Values{"csrf_token": {csrf}})
	if code != 200 || !strings.Contains(body, `http-equiv="refresh" content="0;url=`+s.idp.URL+"/slo?") {
		t.Fatalf("sign out: %d, want a page continuing to the IdP's SLO:\n%s", code, body)
	}
	if code, body, _ := fetch(t, c, "GET", s.public+"/me", nil); code != 200 || strings.Contains(body, "王小丽") {
		t.Fatalf("still signed in after sign out: %d", code)
	}
	out, errs, code := run(t, "", "--config", s.cfgPath, "--data", data, "sso", "list")
	if code != 0 || !strings.Contains(out, "portal") || !strings.Contains(out, s.public+"/sso/saml/portal/acs") {
		t.Fatalf("sso list: %d %s %s", code, out, errs)
	}
	out, errs, code = run(t, "", "--config", s.cfgPath, "--data", data, "sso", "test", "portal")
	if code != 0 || !strings.Contains(out, s.idp.URL) {
		t.Fatalf("sso test: %d %s %s", code, out, errs)
	}
	out, _, _ = run(t, "", "--config", s.cfgPath, "--data", data, "sso", "audit", "--json")
	for _, ev := range []string{`"signin"`, `"signout"`, `"saml"`} {
		if !strings.Contains(out, ev) {
			t.Errorf("audit lacks %s:\n%s", ev, out)
		}
	}
}

func between(s, a, b string) string {
	_, rest, ok := strings.Cut(s, a)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, b)
	return v
}

// TestSAMLReplayAcrossProcesses: two govhub processes share one
// PostgreSQL database (behind one public URL); an assertion accepted by
// the first is refused by the second.
func TestSAMLReplayAcrossProcesses(t *testing.T) {
	var pg string
	for _, b := range testdb.Backends(t) {
		if b.Name == "postgres" {
			pg = b.URL(t)
		}
	}
	if pg == "" {
		t.Skip("GOVHUB_TEST_POSTGRES not set: the two-process replay test needs a shared PostgreSQL")
	}
	dir := t.TempDir()
	s := newSAMLSetup(t, dir, pg, true)
	if _, errs, code := run(t, "", "--config", s.cfgPath, "--data", filepath.Join(dir, "a"), "user", "add", "alice@gov.example"); code != 0 {
		t.Fatalf("user add: %s", errs)
	}
	startServe(t, filepath.Join(dir, "a"), "--config", s.cfgPath, "--modules", "http", "--https", s.https)
	_, addrsB, _ := startServe(t, filepath.Join(dir, "b"), "--config", s.cfgPath, "--modules", "http")
	c := browser(t)
	s.idp.RegisterSP(t, c, s.public+"/sso/saml/portal/metadata")
	s.idp.AddUser(t, "alice", "idp-password", "alice@gov.example")
	s.idp.AddShortcut(t, "mail", s.public+"/sso/saml/portal/metadata")
	acs, form := s.idp.Unsolicited(t, browser(t), "mail", "alice", "idp-password")
	if acs != s.public+"/sso/saml/portal/acs" {
		t.Fatalf("IdP posts to %s", acs)
	}
	first := browser(t)
	code, body, resp := fetch(t, first, "POST", acs, form)
	// Signed in: the landing page is webmail's INBOX.
	if code != 200 || !strings.HasPrefix(resp.Request.URL.Path, "/mail/") || !strings.Contains(body, `id="list-form"`) {
		t.Fatalf("first use on node A: %d %s %.300s", code, resp.Request.URL, body)
	}
	// The same response posted to node B (its own address, same public URL).
	replayer := browser(t)
	code, body, _ = fetch(t, replayer, "POST", addrsB["https"]+"/sso/saml/portal/acs", form)
	if code != http.StatusForbidden || !strings.Contains(body, `data-reason="error_failed"`) {
		t.Fatalf("replay on node B: %d %.300s", code, body)
	}
	bu, _ := url.Parse(addrsB["https"])
	for _, k := range replayer.Jar.Cookies(bu) {
		if k.Name == "govhub_session" {
			t.Fatal("node B issued a session for a replayed assertion")
		}
	}
	// Refused as a replay, not for another reason.
	out, _, _ := run(t, "", "--config", s.cfgPath, "--data", filepath.Join(dir, "b"), "sso", "audit", "--json")
	if !strings.Contains(out, "already used") {
		t.Fatalf("the refusal on node B is not the replay cache's:\n%s", out)
	}
}

// TestSAMLJustInTime: with jit on, a verified identity whose mail is in a
// domain govhub serves gets an SSO-only mailbox at first sign-in; one in
// another domain gets the "unknown person" page and no account.
func TestSAMLJustInTime(t *testing.T) {
	dir := t.TempDir()
	// Mapped by employee number, which these IdP users do not carry: every
	// sign-in goes through just-in-time creation.
	s := newSAMLSetup(t, dir, "", false, "      mapping: {from: employeeNumber, key: employee_no, jit: true}\n")
	data := filepath.Join(dir, "data")
	if _, errs, code := run(t, "", "--config", s.cfgPath, "--data", data, "user", "add", "it@gov.example"); code != 0 {
		t.Fatalf("user add: %s", errs)
	}
	startServe(t, data, "--config", s.cfgPath, "--modules", "http", "--https", s.https)
	c := browser(t)
	s.idp.RegisterSP(t, c, s.public+"/sso/saml/portal/metadata")
	s.idp.AddUser(t, "newbie", "pw-1", "newbie@gov.example")
	s.idp.AddUser(t, "outsider", "pw-2", "someone@elsewhere.example")
	resp, body := s.idp.SignIn(t, c, s.public+"/sso/saml/portal/login?relay=/me", "newbie", "pw-1")
	if resp.StatusCode != 200 || !strings.Contains(body, "newbie@gov.example") {
		t.Fatalf("jit sign-in: %s %s", resp.Status, body)
	}
	resp, body = s.idp.SignIn(t, browser(t), s.public+"/sso/saml/portal/login", "outsider", "pw-2")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `data-reason="error_unknown"`) {
		t.Fatalf("foreign domain: %s %.300s", resp.Status, body)
	}
	// An identity claiming an address that already has a mailbox is not
	// given that mailbox.
	s.idp.AddUser(t, "imposter", "pw-3", "it@gov.example")
	resp, body = s.idp.SignIn(t, browser(t), s.public+"/sso/saml/portal/login?relay=/me", "imposter", "pw-3")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `data-reason="error_unknown"`) {
		t.Fatalf("jit onto an existing mailbox: %s %.300s", resp.Status, body)
	}
	out, _, _ := run(t, "", "--config", s.cfgPath, "--data", data, "user", "list")
	if !strings.Contains(out, "newbie@gov.example") || strings.Contains(out, "elsewhere.example") {
		t.Fatalf("accounts after jit:\n%s", out)
	}
}
