package saml

import (
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/crewjam/saml"

	"github.com/govhub/govhub/sso"
)

// maxPost bounds a POST to the ACS or SLO endpoint. A real response with
// a few dozen attributes is well under 32 KiB base64-encoded.
const maxPost = 256 << 10

// Handler implements sso.Provider: the endpoints below
// /sso/saml/<name>, with that prefix stripped.
//
//	GET      /metadata  our SP metadata (stable URL: give it to the IdP)
//	GET      /login     start SP-initiated sign-in (?relay=/path)
//	POST     /acs       assertion consumer service (HTTP-POST binding)
//	GET|POST /slo       single logout: the IdP's LogoutResponse, or its LogoutRequest
func (sp *SP) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metadata", sp.serveMetadata)
	mux.HandleFunc("GET /login", sp.serveLogin)
	mux.HandleFunc("POST /acs", sp.serveACS)
	mux.HandleFunc("/acs", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "POST")
		http.Error(w, "the ACS accepts only the HTTP-POST binding", http.StatusMethodNotAllowed)
	})
	mux.HandleFunc("GET /slo", sp.serveSLO)
	mux.HandleFunc("POST /slo", sp.serveSLO)
	return mux
}

func (sp *SP) serveMetadata(w http.ResponseWriter, r *http.Request) {
	csp, _ := sp.provider(sp.m.Now())
	md := csp.Metadata()
	// We do not decrypt assertions (see doc.go): advertise no encryption
	// key, so the IdP signs and does not encrypt.
	for i := range md.SPSSODescriptors {
		kds := md.SPSSODescriptors[i].KeyDescriptors[:0]
		for _, kd := range md.SPSSODescriptors[i].KeyDescriptors {
			if kd.Use != "encryption" {
				kds = append(kds, kd)
			}
		}
		md.SPSSODescriptors[i].KeyDescriptors = kds
	}
	buf, err := xml.MarshalIndent(md, "", "  ")
	if err != nil {
		sp.log.Error("marshal SP metadata", "err", err)
		http.Error(w, "metadata unavailable", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	w.Header().Set("Content-Disposition", `inline; filename="govhub-`+sp.cfg.Name+`-metadata.xml"`)
	w.Write([]byte(xml.Header))
	w.Write(buf)
}

// serveLogin sends the browser to the IdP with a signed AuthnRequest
// (HTTP-Redirect) after binding the request id to this browser.
func (sp *SP) serveLogin(w http.ResponseWriter, r *http.Request) {
	relay := sso.SafeRelay(r.URL.Query().Get("relay"))
	csp, st := sp.provider(sp.m.Now())
	req, err := csp.MakeAuthenticationRequest(st.ssoURL, saml.HTTPRedirectBinding, saml.HTTPPostBinding)
	if err != nil {
		sp.log.Error("make AuthnRequest", "err", err)
		http.Error(w, "sign-in unavailable", http.StatusInternalServerError)
		return
	}
	if err := sp.m.BeginLogin(w, r, sso.Pending{Provider: sp.cfg.Name, RequestID: req.ID, Relay: relay}); err != nil {
		sp.log.Error("begin login", "err", err)
		http.Error(w, "sign-in temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	// The relay is kept with the pending sign-in; RelayState only echoes
	// it for IdPs that show it, and the binding caps it at 80 bytes
	// (saml-bindings 3.4.3).
	rs := relay
	if len(rs) > 80 {
		rs = ""
	}
	u, err := req.Redirect(rs, csp)
	if err != nil {
		sp.log.Error("redirect AuthnRequest", "err", err)
		http.Error(w, "sign-in unavailable", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// serveACS accepts one HTTP-POST response. Order matters: the pending
// sign-in is taken first (so a response can be tried once per started
// sign-in), govhub's checks run before the library's, and the assertion
// id is spent only once everything else has passed.
func (sp *SP) serveACS(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := sso.Identity{Method: "saml", Provider: sp.cfg.Name}
	r.Body = http.MaxBytesReader(w, r.Body, maxPost)
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			sp.m.Fail(w, r, id, ErrTooLarge)
			return
		}
		sp.m.Fail(w, r, id, fmt.Errorf("%w: %v", ErrMalformed, err))
		return
	}
	b64 := r.PostForm.Get("SAMLResponse")
	if b64 == "" {
		sp.m.Fail(w, r, id, fmt.Errorf("%w: no SAMLResponse", ErrMalformed))
		return
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		sp.m.Fail(w, r, id, fmt.Errorf("%w: base64: %v", ErrMalformed, err))
		return
	}
	pending, err := sp.m.TakeLogin(w, r, sp.cfg.Name)
	if err != nil && !errors.Is(err, sso.ErrNoPending) {
		sp.m.Fail(w, r, id, err)
		return
	}
	now := sp.m.Now()
	csp, st := sp.provider(now)
	v, err := verifyResponse(raw, expect{
		acs: sp.cfg.ACSURL(), entityID: sp.cfg.EntityID, idpEntityID: st.md.EntityID,
		certs: st.certs, now: now, skew: sp.cfg.ClockSkew,
		requestID: pending.RequestID, idpInitiated: sp.cfg.IDPInitiated,
	})
	if err != nil {
		sp.m.Fail(w, r, id, err)
		return
	}
	id.Subject = v.nameID
	// The library's checks too (issue instant, subject confirmation,
	// signature once more): a second, independent reading.
	var ids []string
	if pending.RequestID != "" {
		ids = []string{pending.RequestID}
	}
	a, err := csp.ParseXMLResponse(raw, ids, sp.acs)
	if err != nil {
		detail := err.Error()
		var ire *saml.InvalidResponseError
		if errors.As(err, &ire) && ire.PrivateErr != nil {
			detail = ire.PrivateErr.Error()
		}
		sp.m.Fail(w, r, id, fmt.Errorf("%w: %s", ErrLibrary, detail))
		return
	}
	if a.ID != v.assertionID || a.Subject == nil || a.Subject.NameID == nil || strings.TrimSpace(a.Subject.NameID.Value) != v.nameID {
		sp.m.Fail(w, r, id, fmt.Errorf("%w: the library read another assertion", ErrAssertionCount))
		return
	}
	// Replay: the assertion id is spent on every node, for as long as the
	// assertion could be accepted.
	if err := sp.m.UseOnce(ctx, "saml-assertion", sp.cfg.Name+":"+v.assertionID, v.until); err != nil {
		sp.m.Fail(w, r, id, err)
		return
	}
	id.Attributes = attributes(a)
	for _, s := range a.AuthnStatements {
		if id.SessionIndex == "" {
			id.SessionIndex = s.SessionIndex
		}
		if s.SessionNotOnOrAfter != nil && (id.Expires.IsZero() || s.SessionNotOnOrAfter.Before(id.Expires)) {
			id.Expires = *s.SessionNotOnOrAfter
		}
	}
	relay := pending.Relay
	if v.inResponseTo == "" {
		// Unsolicited: RelayState is all there is, and it is the IdP's (or
		// an attacker's) word, so only a same-site path is honoured.
		relay = sso.SafeRelay(r.PostForm.Get("RelayState"))
	}
	sp.m.Complete(w, r, id, sso.SafeRelay(relay))
}

// attributes flattens the assertion's attributes, keyed by Name and, when
// given, FriendlyName too ("mail" as well as urn:oid:0.9.2342.19200300.100.1.3).
func attributes(a *saml.Assertion) map[string][]string {
	out := map[string][]string{}
	for _, st := range a.AttributeStatements {
		for _, at := range st.Attributes {
			var vals []string
			for _, v := range at.Values {
				if v.NameID != nil {
					vals = append(vals, v.NameID.Value)
				} else {
					vals = append(vals, v.Value)
				}
			}
			out[at.Name] = append(out[at.Name], vals...)
			if at.FriendlyName != "" && at.FriendlyName != at.Name {
				out[at.FriendlyName] = append(out[at.FriendlyName], vals...)
			}
		}
	}
	return out
}
