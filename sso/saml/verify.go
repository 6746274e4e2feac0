package saml

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
)

// Why a response was refused. Each is govhub's own check, made before
// (and independently of) crewjam/saml's; the audit log carries the text.
var (
	ErrMalformed      = errors.New("saml: malformed response")
	ErrUnsigned       = errors.New("saml: neither the response nor the assertion is signed")
	ErrSignature      = errors.New("saml: signature does not verify against the IdP's pinned certificates")
	ErrAssertionCount = errors.New("saml: the response must carry exactly one assertion")
	ErrEncrypted      = errors.New("saml: encrypted assertions are not accepted")
	ErrAudience       = errors.New("saml: the assertion's audience is not us")
	ErrRecipient      = errors.New("saml: the subject confirmation's Recipient is not our ACS")
	ErrDestination    = errors.New("saml: the response's Destination is not our ACS")
	ErrIssuer         = errors.New("saml: the issuer is not the configured IdP")
	ErrStatus         = errors.New("saml: the IdP reports failure")
	ErrExpired        = errors.New("saml: the assertion has expired")
	ErrNotYetValid    = errors.New("saml: the assertion is not yet valid")
	ErrInResponseTo   = errors.New("saml: the response answers no sign-in this browser started")
	ErrUnsolicited    = errors.New("saml: unsolicited (IdP-initiated) responses are not accepted")
	ErrTooLarge       = errors.New("saml: the posted response is too large")
	ErrLibrary        = errors.New("saml: refused by the SAML library's checks")
)

const (
	nsProtocol  = "urn:oasis:names:tc:SAML:2.0:protocol"
	nsAssertion = "urn:oasis:names:tc:SAML:2.0:assertion"
	nsDSig      = "http://www.w3.org/2000/09/xmldsig#"
	statusOK    = "urn:oasis:names:tc:SAML:2.0:status:Success"
	cmBearer    = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
)

// expect is what a response must match.
type expect struct {
	acs          string
	entityID     string // our audience
	idpEntityID  string
	certs        []*x509.Certificate
	now          time.Time
	skew         time.Duration
	requestID    string // the pending AuthnRequest of this browser, "" if none
	idpInitiated bool
}

// verified is what the checks established, read only from signed XML.
type verified struct {
	assertionID  string
	nameID       string
	inResponseTo string    // "" for an unsolicited response
	until        time.Time // when the assertion could no longer be accepted
}

// verifyResponse is govhub's own reading of a SAML Response. It trusts
// nothing it has not verified itself: it counts assertions and
// signatures in the raw document (wrapping attacks hide a second,
// forged assertion beside or inside the signed one), verifies every
// signature against the certificates pinned from the IdP metadata only,
// and reads every value it checks from what a signature covers.
func verifyResponse(raw []byte, e expect) (*verified, error) {
	if bytes.Contains(raw, []byte("<!DOCTYPE")) || bytes.Contains(raw, []byte("<!ENTITY")) {
		return nil, fmt.Errorf("%w: a DTD is not allowed", ErrMalformed)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	root := doc.Root()
	if root == nil || root.Tag != "Response" || root.NamespaceURI() != nsProtocol {
		return nil, fmt.Errorf("%w: the root is not a samlp:Response", ErrMalformed)
	}

	// Structure, counted over the whole document: exactly one Assertion,
	// a direct child of the Response; no encrypted ones; signatures only
	// where the profile puts them; no two elements with one ID.
	var assertions, encrypted, sigs []*etree.Element
	ids := map[string]bool{}
	var walk func(el *etree.Element) error
	walk = func(el *etree.Element) error {
		if id := el.SelectAttrValue("ID", ""); id != "" {
			if ids[id] {
				return fmt.Errorf("%w: the ID %q appears twice", ErrAssertionCount, id)
			}
			ids[id] = true
		}
		switch ns := el.NamespaceURI(); {
		case ns == nsAssertion && el.Tag == "Assertion":
			assertions = append(assertions, el)
		case ns == nsAssertion && el.Tag == "EncryptedAssertion":
			encrypted = append(encrypted, el)
		case ns == nsDSig && el.Tag == "Signature":
			sigs = append(sigs, el)
			return nil // KeyInfo and Object are not walked for IDs twice
		}
		for _, c := range el.ChildElements() {
			if err := walk(c); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(root); err != nil {
		return nil, err
	}
	// Assertions hidden inside a Signature (its Object) still count.
	for _, s := range sigs {
		for _, el := range s.FindElements(".//*") {
			if el.NamespaceURI() == nsAssertion && (el.Tag == "Assertion" || el.Tag == "EncryptedAssertion") {
				return nil, fmt.Errorf("%w: an assertion inside a signature", ErrAssertionCount)
			}
		}
	}
	if len(encrypted) > 0 {
		return nil, ErrEncrypted
	}
	if len(assertions) != 1 {
		return nil, fmt.Errorf("%w: found %d", ErrAssertionCount, len(assertions))
	}
	asn := assertions[0]
	if asn.Parent() != root {
		return nil, fmt.Errorf("%w: the assertion is not a child of the response", ErrAssertionCount)
	}
	respSig, asnSig := directChild(root, nsDSig, "Signature"), directChild(asn, nsDSig, "Signature")
	for _, s := range sigs {
		if s != respSig && s != asnSig {
			return nil, fmt.Errorf("%w: a signature outside the Response and Assertion", ErrSignature)
		}
	}
	if respSig == nil && asnSig == nil {
		return nil, ErrUnsigned
	}

	// Every signature present must verify; what is read afterwards comes
	// from the verified copies.
	resp, signedAsn := root, (*etree.Element)(nil)
	if respSig != nil {
		v, err := verifySigned(root, e.certs, e.now)
		if err != nil {
			return nil, fmt.Errorf("%w: response: %v", ErrSignature, err)
		}
		resp = v
		signedAsn = directChild(v, nsAssertion, "Assertion")
		if signedAsn == nil {
			return nil, fmt.Errorf("%w: the signed response holds no assertion", ErrAssertionCount)
		}
	}
	if asnSig != nil {
		v, err := verifySigned(asn, e.certs, e.now)
		if err != nil {
			return nil, fmt.Errorf("%w: assertion: %v", ErrSignature, err)
		}
		signedAsn = v
	}
	if len(childrenNS(resp, nsAssertion, "Assertion")) != 1 {
		return nil, fmt.Errorf("%w: in the signed response", ErrAssertionCount)
	}

	// The Response envelope.
	if resp.SelectAttrValue("Version", "") != "2.0" || signedAsn.SelectAttrValue("Version", "") != "2.0" {
		return nil, fmt.Errorf("%w: not SAML 2.0", ErrMalformed)
	}
	// saml-bindings 3.5.5.2: a signed response must carry Destination; we
	// require it always, and it must name our ACS exactly.
	if d := resp.SelectAttrValue("Destination", ""); d != e.acs {
		return nil, fmt.Errorf("%w: %q", ErrDestination, d)
	}
	if iss := directChild(resp, nsAssertion, "Issuer"); iss != nil && strings.TrimSpace(iss.Text()) != e.idpEntityID {
		return nil, fmt.Errorf("%w: response issuer %q", ErrIssuer, strings.TrimSpace(iss.Text()))
	}
	status := ""
	if st := directChild(resp, nsProtocol, "Status"); st != nil {
		if sc := directChild(st, nsProtocol, "StatusCode"); sc != nil {
			status = sc.SelectAttrValue("Value", "")
		}
	}
	if status != statusOK {
		return nil, fmt.Errorf("%w: %s", ErrStatus, status)
	}

	// The Assertion.
	out := &verified{assertionID: signedAsn.SelectAttrValue("ID", "")}
	if out.assertionID == "" {
		return nil, fmt.Errorf("%w: the assertion has no ID", ErrMalformed)
	}
	iss := directChild(signedAsn, nsAssertion, "Issuer")
	if iss == nil || strings.TrimSpace(iss.Text()) != e.idpEntityID {
		return nil, fmt.Errorf("%w: assertion issuer", ErrIssuer)
	}
	if t, ok, err := timeAttr(signedAsn, "IssueInstant"); err != nil || !ok {
		return nil, fmt.Errorf("%w: assertion IssueInstant", ErrMalformed)
	} else if t.After(e.now.Add(e.skew)) {
		return nil, fmt.Errorf("%w: issued at %s", ErrNotYetValid, t.Format(time.RFC3339))
	}

	// Conditions: a validity window within the skew and an audience
	// restriction naming us (saml-core 2.5.1.4; the Web SSO profile
	// requires one, 4.1.4.2).
	cond := directChild(signedAsn, nsAssertion, "Conditions")
	if cond == nil {
		return nil, fmt.Errorf("%w: the assertion has no Conditions (so no AudienceRestriction)", ErrAudience)
	}
	until := time.Time{}
	if err := checkWindow(cond, e, &until); err != nil {
		return nil, err
	}
	ars := childrenNS(cond, nsAssertion, "AudienceRestriction")
	if len(ars) == 0 {
		return nil, fmt.Errorf("%w: no AudienceRestriction", ErrAudience)
	}
	for _, ar := range ars {
		found := false
		for _, a := range childrenNS(ar, nsAssertion, "Audience") {
			if strings.TrimSpace(a.Text()) == e.entityID {
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("%w: an AudienceRestriction does not name %s", ErrAudience, e.entityID)
		}
	}

	// Subject: a NameID and bearer confirmations naming our ACS, within
	// their window, answering this browser's request (saml-profiles
	// 4.1.4.3). Every bearer confirmation must pass, not just one.
	subj := directChild(signedAsn, nsAssertion, "Subject")
	if subj == nil {
		return nil, fmt.Errorf("%w: no Subject", ErrMalformed)
	}
	nid := directChild(subj, nsAssertion, "NameID")
	if nid == nil || strings.TrimSpace(nid.Text()) == "" {
		return nil, fmt.Errorf("%w: no NameID", ErrMalformed)
	}
	out.nameID = strings.TrimSpace(nid.Text())
	bearers := 0
	scdIRT := ""
	for _, sc := range childrenNS(subj, nsAssertion, "SubjectConfirmation") {
		if sc.SelectAttrValue("Method", "") != cmBearer {
			continue
		}
		bearers++
		scd := directChild(sc, nsAssertion, "SubjectConfirmationData")
		if scd == nil {
			return nil, fmt.Errorf("%w: a bearer confirmation without data", ErrRecipient)
		}
		if r := scd.SelectAttrValue("Recipient", ""); r != e.acs {
			return nil, fmt.Errorf("%w: %q", ErrRecipient, r)
		}
		if _, ok, _ := timeAttr(scd, "NotOnOrAfter"); !ok {
			return nil, fmt.Errorf("%w: a bearer confirmation without NotOnOrAfter", ErrExpired)
		}
		if err := checkWindow(scd, e, &until); err != nil {
			return nil, err
		}
		irt := scd.SelectAttrValue("InResponseTo", "")
		if bearers > 1 && irt != scdIRT {
			return nil, fmt.Errorf("%w: confirmations answer different requests", ErrInResponseTo)
		}
		scdIRT = irt
	}
	if bearers == 0 {
		return nil, fmt.Errorf("%w: no bearer SubjectConfirmation", ErrRecipient)
	}

	// InResponseTo: bound to the request this browser started (the
	// pending sign-in TakeLogin returned), or absent, which only an
	// IDPInitiated provider accepts.
	respIRT := resp.SelectAttrValue("InResponseTo", "")
	if respIRT != "" && scdIRT != "" && respIRT != scdIRT {
		return nil, fmt.Errorf("%w: response and assertion answer different requests", ErrInResponseTo)
	}
	irt := scdIRT
	if irt == "" {
		irt = respIRT
	}
	switch {
	case irt == "" && !e.idpInitiated:
		return nil, ErrUnsolicited
	case irt == "":
	case e.requestID == "" || irt != e.requestID:
		return nil, ErrInResponseTo
	case scdIRT == "":
		// A solicited response whose assertion does not say which request
		// it answers could be an unsolicited assertion rewrapped.
		return nil, fmt.Errorf("%w: the assertion carries no InResponseTo", ErrInResponseTo)
	}
	out.inResponseTo = irt
	out.until = until
	return out, nil
}

// checkWindow checks NotBefore/NotOnOrAfter of el against now, allowing
// the skew, and lowers *until to el's NotOnOrAfter (plus skew).
// saml-core 2.5.1.2: NotOnOrAfter is exclusive.
func checkWindow(el *etree.Element, e expect, until *time.Time) error {
	nb, ok, err := timeAttr(el, "NotBefore")
	if err != nil {
		return fmt.Errorf("%w: %s NotBefore: %v", ErrMalformed, el.Tag, err)
	}
	if ok && e.now.Add(e.skew).Before(nb) {
		return fmt.Errorf("%w: %s NotBefore %s", ErrNotYetValid, el.Tag, nb.Format(time.RFC3339))
	}
	na, ok, err := timeAttr(el, "NotOnOrAfter")
	if err != nil {
		return fmt.Errorf("%w: %s NotOnOrAfter: %v", ErrMalformed, el.Tag, err)
	}
	if ok {
		end := na.Add(e.skew)
		if !e.now.Before(end) {
			return fmt.Errorf("%w: %s NotOnOrAfter %s", ErrExpired, el.Tag, na.Format(time.RFC3339))
		}
		if until.IsZero() || end.Before(*until) {
			*until = end
		}
	}
	return nil
}

func timeAttr(el *etree.Element, name string) (time.Time, bool, error) {
	v := el.SelectAttrValue(name, "")
	if v == "" {
		return time.Time{}, false, nil
	}
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(v))
	if err != nil {
		return time.Time{}, false, err
	}
	return t, true, nil
}

func directChild(el *etree.Element, ns, tag string) *etree.Element {
	if cs := childrenNS(el, ns, tag); len(cs) > 0 {
		return cs[0]
	}
	return nil
}

func childrenNS(el *etree.Element, ns, tag string) []*etree.Element {
	var out []*etree.Element
	for _, c := range el.ChildElements() {
		if c.Tag == tag && c.NamespaceURI() == ns {
			out = append(out, c)
		}
	}
	return out
}

// verifySigned verifies el's enveloped signature with each pinned
// certificate in turn (a rollover publishes two) and returns what the
// signature covers. The signature must reference el by its ID with one
// Reference: a reference to the whole document or to another element is
// how signature wrapping starts. A certificate in KeyInfo is not trusted
// for itself; it only selects among the pinned ones.
func verifySigned(el *etree.Element, certs []*x509.Certificate, now time.Time) (*etree.Element, error) {
	id := el.SelectAttrValue("ID", "")
	if id == "" {
		return nil, errors.New("the signed element has no ID")
	}
	sig := directChild(el, nsDSig, "Signature")
	si := directChild(sig, nsDSig, "SignedInfo")
	if si == nil {
		return nil, errors.New("no SignedInfo")
	}
	refs := childrenNS(si, nsDSig, "Reference")
	if len(refs) != 1 || refs[0].SelectAttrValue("URI", "") != "#"+id {
		return nil, errors.New("the signature must have one Reference to the element's ID")
	}
	detached := detach(el)
	var lastErr error
	for _, c := range certs {
		vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{c}})
		vc.IdAttribute = "ID"
		vc.Clock = dsig.NewFakeClockAt(now)
		probe := detached.Copy()
		// A KeyInfo without a certificate (a bare RSAKeyValue) means
		// nothing to us: verify against the pinned certificate instead.
		if s := directChild(probe, nsDSig, "Signature"); s != nil {
			if ki := directChild(s, nsDSig, "KeyInfo"); ki != nil && ki.FindElement(".//X509Certificate") == nil {
				s.RemoveChild(ki)
			}
		}
		v, err := vc.Validate(probe)
		if err == nil {
			return v, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

// detach copies el with the namespace declarations it inherits from its
// ancestors, so its canonical form is the same outside the document.
// Exclusive canonicalization renders only the prefixes used, so the
// added declarations do not change the digest.
func detach(el *etree.Element) *etree.Element {
	cp := el.Copy()
	have := map[string]bool{}
	for _, a := range cp.Attr {
		if a.Space == "xmlns" || (a.Space == "" && a.Key == "xmlns") {
			have[a.FullKey()] = true
		}
	}
	for p := el.Parent(); p != nil; p = p.Parent() {
		for _, a := range p.Attr {
			if a.Space == "xmlns" || (a.Space == "" && a.Key == "xmlns") {
				if !have[a.FullKey()] {
					have[a.FullKey()] = true
					cp.CreateAttr(a.FullKey(), a.Value)
				}
			}
		}
	}
	return cp
}
