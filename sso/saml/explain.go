package saml

import (
	"fmt"
	"strings"
	"time"
)

// Explain says, for `govhub sso test IDP`, what this IdP metadata would
// make us accept: the IdP entity id, its sign-in and logout endpoints,
// the signing certificates that would be pinned (subject, SHA-256
// fingerprint, validity), and our side of the agreement (entity id, ACS)
// computed from cfg. It reads only metadata; it contacts nothing.
func Explain(metadata []byte, cfg Config) (string, error) {
	st, err := parseIDPMetadata(metadata, time.Now())
	if err != nil {
		return "", err
	}
	now := time.Now()
	var b strings.Builder
	fmt.Fprintf(&b, "IdP entity id: %s\n", st.md.EntityID)
	if !st.md.ValidUntil.IsZero() {
		state := ""
		if st.md.ValidUntil.Before(now) {
			state = "  (EXPIRED: ask the IdP for fresh metadata)"
		}
		fmt.Fprintf(&b, "metadata valid until: %s%s\n", st.md.ValidUntil.UTC().Format(time.RFC3339), state)
	}
	for _, d := range st.md.IDPSSODescriptors {
		for _, e := range d.SingleSignOnServices {
			fmt.Fprintf(&b, "single sign-on:  %s  %s\n", bindingName(e.Binding), strings.TrimSpace(e.Location))
		}
		for _, e := range d.SingleLogoutServices {
			fmt.Fprintf(&b, "single logout:   %s  %s\n", bindingName(e.Binding), strings.TrimSpace(e.Location))
		}
		if d.WantAuthnRequestsSigned != nil && *d.WantAuthnRequestsSigned {
			b.WriteString("the IdP wants signed AuthnRequests (govhub signs them, RSA-SHA256)\n")
		}
	}
	if st.sloURL == "" {
		b.WriteString("no HTTP-Redirect single logout: signing out of govhub will not sign out of the IdP\n")
	}
	fmt.Fprintf(&b, "signing certificates pinned (%d); a response must be signed by one of them:\n", len(st.certs))
	for _, c := range st.certs {
		state := "valid"
		switch {
		case now.After(c.NotAfter):
			state = "EXPIRED"
		case now.Before(c.NotBefore):
			state = "NOT YET VALID"
		case c.NotAfter.Sub(now) < 30*24*time.Hour:
			state = "expires within 30 days"
		}
		fmt.Fprintf(&b, "  subject %s\n  sha256  %s\n  valid   %s .. %s  (%s)\n",
			c.Subject.String(), fingerprint(c), c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339), state)
	}
	if cfg.Name != "" && cfg.PublicURL != "" {
		c := cfg
		c.PublicURL = strings.TrimSuffix(c.PublicURL, "/")
		if c.EntityID == "" {
			c.EntityID = c.base() + "/metadata"
		}
		fmt.Fprintf(&b, "used with our entity id: %s\n", c.EntityID)
		fmt.Fprintf(&b, "our ACS (HTTP-POST):     %s\n", c.ACSURL())
		fmt.Fprintf(&b, "our SLO:                 %s\n", c.SLOURL())
		fmt.Fprintf(&b, "our metadata for the IdP: %s/metadata\n", c.base())
		if cfg.IDPInitiated {
			b.WriteString("unsolicited (IdP-initiated) responses: accepted\n")
		} else {
			b.WriteString("unsolicited (IdP-initiated) responses: refused (idp_initiated: false)\n")
		}
	}
	return b.String(), nil
}

func bindingName(b string) string {
	if i := strings.LastIndex(b, ":"); i >= 0 {
		return b[i+1:]
	}
	return b
}
