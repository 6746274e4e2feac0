package saml

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"html"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"

	"github.com/govhub/govhub/internal/testdb"
	"github.com/govhub/govhub/sso"
)

func TestSignInSPInitiated(t *testing.T) {
	w := newWorld(t, opts{})
	b := w.browser()
	r := b.startLogin("/mail/INBOX?x=1")
	if r.acs != w.pub+"/sso/saml/portal/acs" {
		t.Fatalf("the IdP posts to %q", r.acs)
	}
	s := w.mustAccept(b, w.nodes[0], r, "/mail/INBOX?x=1")
	if s.Method != "saml" || s.Provider != "portal" || s.Subject != userMail || s.Address != userMail {
		t.Fatalf("session %+v", s)
	}
	if s.SessionIndex == "" {
		t.Fatal("the SessionIndex was not kept (single logout needs it)")
	}
}

// Every case is a response the real IdP signed for this browser, then
// altered as an attacker would; each is refused by govhub's own check
// (the audit reason is govhub's sentinel, not the library's).
func TestACSRefuses(t *testing.T) {
	w := newWorld(t, opts{})
	other := testKey(t, "attacker")
	cases := []struct {
		name string
		make func(t *testing.T, r idpResponse) idpResponse
		want error
	}{
		{"unsigned", func(t *testing.T, r idpResponse) idpResponse {
			doc := parse(t, r.xml)
			stripSig(doc.Root())
			stripSig(assertionOf(doc))
			r.xml = serialize(t, doc)
			return r
		}, ErrUnsigned},
		{"signed by another key", func(t *testing.T, r idpResponse) idpResponse {
			return tamper(t, r, &other, func(*etree.Document) {})
		}, ErrSignature},
		{"assertion signed by another key inside a validly signed response", func(t *testing.T, r idpResponse) idpResponse {
			doc := parse(t, r.xml)
			sign(t, assertionOf(doc), other)
			sign(t, doc.Root(), testKey(t, "idp"))
			r.xml = serialize(t, doc)
			return r
		}, ErrSignature},
		{"content changed after signing", func(t *testing.T, r idpResponse) idpResponse {
			doc := parse(t, r.xml)
			assertionOf(doc).FindElement(".//NameID").SetText("boss@example.gov.cn")
			r.xml = serialize(t, doc)
			return r
		}, ErrSignature},
		{"second assertion", func(t *testing.T, r idpResponse) idpResponse {
			return tamper(t, r, nil, func(doc *etree.Document) {
				evil := assertionOf(doc).Copy()
				evil.CreateAttr("ID", "id-evil")
				evil.FindElement(".//NameID").SetText("boss@example.gov.cn")
				stripSig(evil)
				doc.Root().AddChild(evil)
			})
		}, ErrAssertionCount},
		{"XSW: forged assertion first, signed one hidden in Extensions", func(t *testing.T, r idpResponse) idpResponse {
			doc := parse(t, r.xml)
			root := doc.Root()
			orig := assertionOf(doc)
			evil := orig.Copy()
			evil.CreateAttr("ID", "id-evil")
			evil.FindElement(".//NameID").SetText("boss@example.gov.cn")
			stripSig(evil)
			root.RemoveChild(orig)
			ext := root.CreateElement("samlp:Extensions")
			ext.AddChild(orig)
			root.AddChild(evil)
			r.xml = serialize(t, doc)
			return r
		}, ErrAssertionCount},
		{"XSW: signed assertion moved into the signature's Object", func(t *testing.T, r idpResponse) idpResponse {
			doc := parse(t, r.xml)
			root := doc.Root()
			orig := assertionOf(doc)
			evil := orig.Copy()
			evil.FindElement(".//NameID").SetText("boss@example.gov.cn")
			stripSig(evil)
			root.RemoveChild(orig)
			sig := directChild(root, nsDSig, "Signature")
			obj := sig.CreateElement("ds:Object")
			obj.AddChild(orig)
			root.AddChild(evil)
			r.xml = serialize(t, doc)
			return r
		}, ErrAssertionCount},
		{"XSW: whole signed response wrapped in a forged one", func(t *testing.T, r idpResponse) idpResponse {
			doc := parse(t, r.xml)
			orig := doc.Root().Copy()
			root := doc.Root()
			a := assertionOf(doc)
			stripSig(root)
			stripSig(a)
			a.FindElement(".//NameID").SetText("boss@example.gov.cn")
			root.CreateAttr("ID", "id-outer")
			root.AddChild(orig)
			r.xml = serialize(t, doc)
			return r
		}, ErrAssertionCount},
		{"wrong audience", func(t *testing.T, r idpResponse) idpResponse {
			return tamper(t, r, nil, func(doc *etree.Document) {
				assertionOf(doc).FindElement(".//Audience").SetText("https://other-sp.example.gov.cn/metadata")
			})
		}, ErrAudience},
		{"missing audience", func(t *testing.T, r idpResponse) idpResponse {
			return tamper(t, r, nil, func(doc *etree.Document) {
				c := assertionOf(doc).FindElement(".//Conditions")
				c.RemoveChild(c.FindElement("AudienceRestriction"))
			})
		}, ErrAudience},
		{"second AudienceRestriction not naming us", func(t *testing.T, r idpResponse) idpResponse {
			return tamper(t, r, nil, func(doc *etree.Document) {
				c := assertionOf(doc).FindElement(".//Conditions")
				ar := c.FindElement("AudienceRestriction").Copy()
				ar.FindElement("Audience").SetText("https://other-sp.example.gov.cn/metadata")
				c.AddChild(ar)
			})
		}, ErrAudience},
		{"wrong recipient", func(t *testing.T, r idpResponse) idpResponse {
			return tamper(t, r, nil, func(doc *etree.Document) {
				assertionOf(doc).FindElement(".//SubjectConfirmationData").CreateAttr("Recipient", "https://other-sp.example.gov.cn/acs")
			})
		}, ErrRecipient},
		{"wrong destination", func(t *testing.T, r idpResponse) idpResponse {
			return tamper(t, r, nil, func(doc *etree.Document) {
				doc.Root().CreateAttr("Destination", "https://other-sp.example.gov.cn/acs")
			})
		}, ErrDestination},
		{"missing destination", func(t *testing.T, r idpResponse) idpResponse {
			return tamper(t, r, nil, func(doc *etree.Document) {
				doc.Root().RemoveAttr("Destination")
			})
		}, ErrDestination},
		{"not yet valid (NotBefore beyond the skew)", func(t *testing.T, r idpResponse) idpResponse {
			return tamper(t, r, nil, func(doc *etree.Document) {
				assertionOf(doc).FindElement(".//Conditions").CreateAttr("NotBefore", time.Now().Add(5*time.Minute).UTC().Format(time.RFC3339))
			})
		}, ErrNotYetValid},
		{"expired within the library's skew but beyond ours", func(t *testing.T, r idpResponse) idpResponse {
			// The library allows 3 minutes; govhub 2.
			return tamper(t, r, nil, func(doc *etree.Document) {
				old := time.Now().Add(-150 * time.Second).UTC().Format(time.RFC3339)
				assertionOf(doc).FindElement(".//Conditions").CreateAttr("NotOnOrAfter", old)
			})
		}, ErrExpired},
		{"an IdP error status", func(t *testing.T, r idpResponse) idpResponse {
			return tamper(t, r, nil, func(doc *etree.Document) {
				doc.Root().FindElement("./Status/StatusCode").CreateAttr("Value", "urn:oasis:names:tc:SAML:2.0:status:Responder")
			})
		}, ErrStatus},
		{"issuer is another IdP", func(t *testing.T, r idpResponse) idpResponse {
			return tamper(t, r, nil, func(doc *etree.Document) {
				assertionOf(doc).FindElement("Issuer").SetText("https://evil-idp.example/metadata")
			})
		}, ErrIssuer},
		{"InResponseTo of another request", func(t *testing.T, r idpResponse) idpResponse {
			return tamper(t, r, nil, func(doc *etree.Document) {
				doc.Root().CreateAttr("InResponseTo", "id-other")
				assertionOf(doc).FindElement(".//SubjectConfirmationData").CreateAttr("InResponseTo", "id-other")
			})
		}, ErrInResponseTo},
		{"a DTD", func(t *testing.T, r idpResponse) idpResponse {
			r.xml = append([]byte(`<!DOCTYPE x [<!ENTITY a "b">]>`), r.xml...)
			return r
		}, ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w.t = t
			b := w.browser()
			r := c.make(t, b.startLogin("/mail"))
			w.mustRefuse(b, w.nodes[0], r, c.want)
		})
	}
	// The re-signing above is sound: an untouched re-signed response is
	// accepted, so each refusal is caused by its edit alone.
	t.Run("control: re-signed unchanged", func(t *testing.T) {
		w.t = t
		b := w.browser()
		r := tamper(t, b.startLogin("/mail"), nil, func(*etree.Document) {})
		w.mustAccept(b, w.nodes[0], r, "/mail")
	})
}

func TestClockChecks(t *testing.T) {
	w := newWorld(t, opts{})
	t.Run("expired", func(t *testing.T) {
		w.t = t
		b := w.browser()
		r := b.startLogin("/")
		w.clock.shift(5 * time.Minute) // past NotOnOrAfter (90s) plus skew (2m)
		defer w.clock.shift(0)
		w.mustRefuse(b, w.nodes[0], r, ErrExpired)
	})
	t.Run("not yet valid", func(t *testing.T) {
		w.t = t
		b := w.browser()
		r := b.startLogin("/")
		w.clock.shift(-10 * time.Minute)
		defer w.clock.shift(0)
		w.mustRefuse(b, w.nodes[0], r, ErrNotYetValid)
	})
	t.Run("within the skew", func(t *testing.T) {
		w.t = t
		b := w.browser()
		r := b.startLogin("/")
		w.clock.shift(-90 * time.Second)
		defer w.clock.shift(0)
		w.mustAccept(b, w.nodes[0], r, "/")
	})
}

func TestInResponseToBoundToBrowser(t *testing.T) {
	w := newWorld(t, opts{})
	t.Run("posted by a browser that started nothing", func(t *testing.T) {
		w.t = t
		r := w.browser().startLogin("/")
		w.mustRefuse(w.browser(), w.nodes[0], r, ErrInResponseTo)
	})
	t.Run("posted by a browser that started its own sign-in", func(t *testing.T) {
		w.t = t
		r := w.browser().startLogin("/")
		other := w.browser()
		other.startLogin("/") // its own pending request, another id
		w.mustRefuse(other, w.nodes[0], r, ErrInResponseTo)
	})
	t.Run("posted twice by the browser that started it", func(t *testing.T) {
		w.t = t
		b := w.browser()
		r := b.startLogin("/")
		w.mustAccept(b, w.nodes[0], r, "/")
		resp := b.post(w.nodes[0], r) // the pending sign-in was taken once
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("second post: %s", resp.Status)
		}
		if got := w.refusal(w.nodes[0]); !strings.Contains(got, ErrInResponseTo.Error()) {
			t.Fatalf("refused for %q", got)
		}
	})
}

func TestUnsolicited(t *testing.T) {
	t.Run("refused unless IDPInitiated", func(t *testing.T) {
		w := newWorld(t, opts{})
		b := w.browser()
		w.mustRefuse(b, w.nodes[0], b.unsolicited(), ErrUnsolicited)
	})
	t.Run("accepted with IDPInitiated", func(t *testing.T) {
		w := newWorld(t, opts{idpInitiated: true})
		b := w.browser()
		r := b.unsolicited()
		r.relay = "/mail/INBOX"
		w.mustAccept(b, w.nodes[0], r, "/mail/INBOX")
		// IDPInitiated does not turn a response to another browser's
		// request into an unsolicited one.
		stolen := w.browser().startLogin("/")
		w.mustRefuse(w.browser(), w.nodes[0], stolen, ErrInResponseTo)
	})
}

func TestForeignRelayState(t *testing.T) {
	w := newWorld(t, opts{idpInitiated: true})
	for _, relay := range []string{"https://evil.example", "//evil.example", `/\evil.example`} {
		t.Run("unsolicited "+relay, func(t *testing.T) {
			w.t = t
			b := w.browser()
			r := b.unsolicited()
			r.relay = relay
			w.mustAccept(b, w.nodes[0], r, "/")
		})
		t.Run("SP-initiated "+relay, func(t *testing.T) {
			w.t = t
			b := w.browser()
			r := b.startLogin(relay)
			r.relay = relay // and the IdP (or an attacker) echoes it back
			w.mustAccept(b, w.nodes[0], r, "/")
		})
	}
	t.Run("SP-initiated keeps its own relay, not the posted one", func(t *testing.T) {
		w.t = t
		b := w.browser()
		r := b.startLogin("/mail/Sent")
		r.relay = "/admin"
		w.mustAccept(b, w.nodes[0], r, "/mail/Sent")
	})
}

// Replay: an unsolicited assertion (no request to bind it to) posted a
// second time, to the same node or to another node sharing the database,
// is refused by the used-once cache alone.
func TestReplayAcrossNodes(t *testing.T) {
	for _, be := range testdb.Backends(t) {
		t.Run(be.Name, func(t *testing.T) {
			w := newWorld(t, opts{idpInitiated: true, nodes: 2, dbURL: be.URL(t)})
			b := w.browser()
			r := b.unsolicited()
			w.mustAccept(b, w.nodes[0], r, "/")
			for _, n := range w.nodes {
				w.mustRefuse(w.browser(), n, r, sso.ErrReplay)
			}
			// A new assertion still works on the other node.
			b2 := w.browser()
			w.mustAccept(b2, w.nodes[1], b2.unsolicited(), "/")
		})
	}
}

func TestMetadataRollover(t *testing.T) {
	w := newWorld(t, opts{refresh: 100 * time.Millisecond})
	n := w.nodes[0]
	before := n.sp.Describe()["idp_cert_sha256"]
	w.idp.rollKey(testKey(t, "idp-2026"))
	// Until we re-read the metadata, the new key is not trusted.
	b := w.browser()
	w.mustRefuse(b, n, b.startLogin("/"), ErrSignature)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.sp.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for n.sp.Describe()["idp_cert_sha256"] == before {
		if time.Now().After(deadline) {
			t.Fatal("Run did not pick up the rolled-over certificate")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := n.sp.Describe()["idp_cert_sha256"]; got != fingerprint(testKey(t, "idp-2026").cert) {
		t.Fatalf("pinned %s", got)
	}
	b = w.browser()
	w.mustAccept(b, n, b.startLogin("/"), "/")
}

func TestMetadataFileRefresh(t *testing.T) {
	d := newIDP(t)
	file := filepath.Join(t.TempDir(), "idp.xml")
	write := func() {
		buf, err := xml.Marshal(d.srv.IDP.Metadata())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write()
	m := sso.New(openDB(t, testdb.SQLiteURL(t)), people{}, sso.Config{})
	sp, err := New(context.Background(), m, Config{Name: "f", PublicURL: "https://mail.example.gov.cn", IDPMetadataFile: file, KeyDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if got := sp.Describe()["idp_cert_sha256"]; got != fingerprint(testKey(t, "idp").cert) {
		t.Fatalf("pinned %s", got)
	}
	d.rollKey(testKey(t, "idp-2026"))
	write()
	if err := sp.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := sp.Describe()["idp_cert_sha256"]; got != fingerprint(testKey(t, "idp-2026").cert) {
		t.Fatalf("after refresh pinned %s", got)
	}
	// Broken metadata keeps the last good one.
	os.WriteFile(file, []byte("<nope/>"), 0o644)
	if err := sp.Refresh(context.Background()); err == nil {
		t.Fatal("broken metadata accepted")
	}
	if got := sp.Describe()["idp_cert_sha256"]; got != fingerprint(testKey(t, "idp-2026").cert) {
		t.Fatalf("a failed refresh dropped the pinned certificate: %s", got)
	}
}

func TestSPInitiatedLogout(t *testing.T) {
	w := newWorld(t, opts{})
	n := w.nodes[0]
	b := w.browser()
	s := w.mustAccept(b, n, b.startLogin("/"), "/")
	// sso answers with a page that moves on to the IdP by itself (a
	// redirect after a form POST would be refused by the page's CSP
	// form-action 'self').
	resp, leaving := b.do("POST", w.pub+"/logout", url.Values{"csrf_token": {s.CSRF}})
	m := regexp.MustCompile(`http-equiv="refresh" content="0;url=([^"]+)"`).FindStringSubmatch(leaving)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("logout: %s %s", resp.Status, leaving)
	}
	loc := html.UnescapeString(m[1])
	if !strings.HasPrefix(loc, w.idp.url+"/slo?") || !strings.Contains(loc, "Signature=") {
		t.Fatalf("logout goes to %q, not a signed request to the IdP's SLO", loc)
	}
	if _, err := b.session(n); !errors.Is(err, sso.ErrNoSession) {
		t.Fatal("session survived logout")
	}
	// The IdP ends its session and answers our /slo.
	resp, page := b.do("GET", loc, nil)
	var back string
	switch resp.StatusCode {
	case http.StatusFound:
		back = resp.Header.Get("Location")
		resp, _ = b.do("GET", back, nil)
	case http.StatusOK:
		action, v := form(t, page)
		back = action
		resp, _ = b.do("POST", action, v)
	default:
		t.Fatalf("IdP SLO: %s %s", resp.Status, page)
	}
	if !strings.HasPrefix(back, w.pub+"/sso/saml/portal/slo") {
		t.Fatalf("the IdP answers at %q", back)
	}
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?signed_out=1" {
		t.Fatalf("our SLO answered %s %q", resp.Status, resp.Header.Get("Location"))
	}
	ids, err := w.idp.srv.Store.List("/sessions/")
	if err != nil || len(ids) != 0 {
		t.Fatalf("IdP sessions left: %v %v", ids, err)
	}
	// The same LogoutResponse again is refused (answered once).
	if strings.Contains(back, "SAMLResponse=") {
		resp, _ = b.do("GET", back, nil)
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("replayed LogoutResponse: %s", resp.Status)
		}
	}
	// A LogoutResponse to a request we never sent is refused.
	csp, _ := n.sp.provider(time.Now())
	lr, err := csp.MakeRedirectLogoutResponse("id-never-sent", "")
	if err == nil {
		forged := w.pub + "/sso/saml/portal/slo?" + lr.RawQuery
		if resp, _ := b.do("GET", forged, nil); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("unsolicited LogoutResponse: %s", resp.Status)
		}
	}
}

func TestIDPInitiatedLogout(t *testing.T) {
	w := newWorld(t, opts{})
	n := w.nodes[0]
	b := w.browser()
	w.mustAccept(b, n, b.startLogin("/"), "/")
	other := w.browser() // alice on another machine, also signed in
	w.mustAccept(other, n, other.startLogin("/"), "/")

	resp, page := b.do("GET", w.idp.url+"/logout", nil)
	for hops := 0; ; hops++ {
		if hops > 10 {
			t.Fatal("logout did not finish")
		}
		if resp.StatusCode == http.StatusFound || resp.StatusCode == http.StatusSeeOther {
			resp, page = b.do("GET", resp.Header.Get("Location"), nil)
			continue
		}
		if resp.StatusCode == http.StatusOK && (strings.Contains(page, "SAMLRequest") || strings.Contains(page, "SAMLResponse")) {
			action, v := form(t, page)
			resp, page = b.do("POST", action, v)
			continue
		}
		break
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "logged out") || strings.Contains(page, "could not be confirmed") {
		t.Fatalf("IdP logout ended with %s: %.300s", resp.Status, page)
	}
	if _, err := b.session(n); !errors.Is(err, sso.ErrNoSession) {
		t.Fatalf("the session the IdP logged out survives: %v", err)
	}
	// Only the IdP session's own govhub session ends (SessionIndex).
	if _, err := other.session(n); err != nil {
		t.Fatalf("another session of alice ended too: %v", err)
	}
}

func TestLogoutRequestMustBeSigned(t *testing.T) {
	w := newWorld(t, opts{})
	n := w.nodes[0]
	b := w.browser()
	w.mustAccept(b, n, b.startLogin("/"), "/")
	// An unsigned LogoutRequest (as anyone could craft) ends nothing.
	req := &saml.LogoutRequest{ID: "id-forged", Version: "2.0", IssueInstant: time.Now(), Destination: w.pub + "/sso/saml/portal/slo",
		Issuer: &saml.Issuer{Value: w.idp.url + "/metadata"}, NameID: &saml.NameID{Value: userMail}}
	u := req.Redirect("")
	resp, _ := b.do("GET", w.pub+"/sso/saml/portal/slo?"+u.RawQuery, nil)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("unsigned LogoutRequest: %s", resp.Status)
	}
	if _, err := b.session(n); err != nil {
		t.Fatalf("an unsigned LogoutRequest ended the session: %v", err)
	}
}

func TestACSLimits(t *testing.T) {
	w := newWorld(t, opts{})
	b := w.browser()
	resp, _ := b.do("POST", w.pub+"/sso/saml/portal/acs", url.Values{"SAMLResponse": {strings.Repeat("A", 300<<10)}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("oversized post: %s", resp.Status)
	}
	if got := w.refusal(w.nodes[0]); !strings.Contains(got, ErrTooLarge.Error()) {
		t.Fatalf("refused for %q", got)
	}
	resp, _ = b.do("GET", w.pub+"/sso/saml/portal/acs", nil)
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET /acs: %s", resp.Status)
	}
	for _, body := range []string{"", "!!!notbase64", base64.StdEncoding.EncodeToString([]byte("<not xml"))} {
		resp, _ = b.do("POST", w.pub+"/sso/saml/portal/acs", url.Values{"SAMLResponse": {body}})
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("garbage %q: %s", body, resp.Status)
		}
		if got := w.refusal(w.nodes[0]); !strings.Contains(got, ErrMalformed.Error()) {
			t.Fatalf("garbage %q refused for %q", body, got)
		}
	}
}

func TestMetadataAndDescribe(t *testing.T) {
	w := newWorld(t, opts{})
	sp := w.nodes[0].sp
	resp, err := w.hc.Get(w.pub + "/sso/saml/portal/metadata")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var md saml.EntityDescriptor
	if err := xml.NewDecoder(resp.Body).Decode(&md); err != nil {
		t.Fatal(err)
	}
	if md.EntityID != w.pub+"/sso/saml/portal/metadata" || len(md.SPSSODescriptors) != 1 {
		t.Fatalf("metadata %+v", md)
	}
	d := md.SPSSODescriptors[0]
	if len(d.AssertionConsumerServices) != 1 || d.AssertionConsumerServices[0].Location != w.pub+"/sso/saml/portal/acs" ||
		d.AssertionConsumerServices[0].Binding != saml.HTTPPostBinding {
		t.Fatalf("ACS %+v", d.AssertionConsumerServices)
	}
	for _, kd := range d.KeyDescriptors {
		if kd.Use == "encryption" {
			t.Fatal("metadata advertises an encryption key (we do not decrypt)")
		}
	}
	desc := sp.Describe()
	for k, want := range map[string]string{
		"label": "政务门户", "entity_id": md.EntityID, "acs": w.pub + "/sso/saml/portal/acs",
		"idp_entity_id": w.idp.url + "/metadata", "idp_cert_sha256": fingerprint(testKey(t, "idp").cert),
		"metadata_source": w.idp.url + "/metadata",
	} {
		if desc[k] != want {
			t.Errorf("Describe()[%s] = %q, want %q", k, desc[k], want)
		}
	}
	if got := sp.LoginPath("/mail/INBOX"); got != "/sso/saml/portal/login?relay=%2Fmail%2FINBOX" {
		t.Errorf("LoginPath = %q", got)
	}
	if got := sp.LoginPath("//evil"); got != "/sso/saml/portal/login" {
		t.Errorf("LoginPath(//evil) = %q", got)
	}
}

func TestExplain(t *testing.T) {
	d := newIDP(t)
	raw, _ := xml.Marshal(d.srv.IDP.Metadata())
	out, err := Explain(raw, Config{Name: "portal", PublicURL: "https://mail.example.gov.cn"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{d.url + "/metadata", d.url + "/sso", d.url + "/slo", fingerprint(testKey(t, "idp").cert),
		"CN=idp", "https://mail.example.gov.cn/sso/saml/portal/acs", "https://mail.example.gov.cn/sso/saml/portal/metadata", "refused"} {
		if !strings.Contains(out, want) {
			t.Errorf("Explain lacks %q:\n%s", want, out)
		}
	}
	if _, err := Explain([]byte("<x/>"), Config{}); err == nil {
		t.Error("Explain accepted non-metadata")
	}
}

func TestKeyGeneratedOnce(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	_, c1, err := keyInDir(dir, "portal", "https://mail.example.gov.cn/sso/saml/portal/metadata", now)
	if err != nil {
		t.Fatal(err)
	}
	_, c2, err := keyInDir(dir, "portal", "https://mail.example.gov.cn/sso/saml/portal/metadata", now)
	if err != nil {
		t.Fatal(err)
	}
	if !c1.Equal(c2) {
		t.Fatal("a second start generated another key")
	}
	if fi, err := os.Stat(filepath.Join(dir, "saml-portal.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file %v %v", fi, err)
	}
	if c1.Subject.CommonName != "mail.example.gov.cn" {
		t.Fatalf("CN %q", c1.Subject.CommonName)
	}
	var _ *x509.Certificate = c1
}

func TestConfigValidation(t *testing.T) {
	m := sso.New(openDB(t, testdb.SQLiteURL(t)), people{}, sso.Config{})
	for _, c := range []Config{
		{Name: "bad name", PublicURL: "https://x", IDPMetadataFile: "f", KeyDir: "d"},
		{Name: "p", PublicURL: "mail.example", IDPMetadataFile: "f", KeyDir: "d"},
		{Name: "p", PublicURL: "https://x", KeyDir: "d"},
		{Name: "p", PublicURL: "https://x", IDPMetadataFile: "f", IDPMetadataURL: "https://idp", KeyDir: "d"},
		{Name: "p", PublicURL: "https://x", IDPMetadataURL: "http://idp.example/metadata", KeyDir: "d"},
		{Name: "p", PublicURL: "https://x", IDPMetadataFile: "f"},
		{Name: "p", PublicURL: "https://x", IDPMetadataFile: "f", KeyFile: "k"},
	} {
		if _, err := New(context.Background(), m, c); err == nil {
			t.Errorf("accepted %+v", c)
		}
	}
}
