package saml

import (
	"crypto/x509"
	"testing"
	"time"
)

// FuzzVerifyResponse: verifyResponse reads network input; whatever it is
// given it must not panic, and since nothing the fuzzer writes is signed
// by the pinned key, it must never accept.
func FuzzVerifyResponse(f *testing.F) {
	const acs = "https://mail.example.gov.cn/sso/saml/portal/acs"
	for _, s := range []string{
		``,
		`<x/>`,
		`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="r" Version="2.0" Destination="` + acs + `"/>`,
		`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="r" Version="2.0">` +
			`<saml:Assertion ID="a" Version="2.0"><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:Reference URI="#a"/></ds:SignedInfo></ds:Signature></saml:Assertion></samlp:Response>`,
		`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"><saml:Assertion/><saml:Assertion/></samlp:Response>`,
		`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"><saml:EncryptedAssertion/></samlp:Response>`,
	} {
		f.Add([]byte(s))
	}
	certs := []*x509.Certificate{testKey(f, "idp").cert}
	f.Fuzz(func(t *testing.T, raw []byte) {
		_, err := verifyResponse(raw, expect{acs: acs, entityID: "https://mail.example.gov.cn/sso/saml/portal/metadata",
			idpEntityID: "https://idp.example/metadata", certs: certs, now: time.Now(), skew: 2 * time.Minute, idpInitiated: true})
		if err == nil {
			t.Fatalf("accepted unsigned input %q", raw)
		}
	})
}
