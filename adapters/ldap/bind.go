package ldap

import (
	"context"
	"errors"
	"fmt"

	goldap "github.com/go-ldap/ldap/v3"
)

// VerifyPassword checks a person's password by binding as them
// (mailcore/auth's BindVerifier, for IMAP/SMTP sign-in against the
// directory when IT configures it): it finds the one person entry whose
// mail attribute equals address (filter built with escaping), then binds
// as that DN on a fresh connection. Wrong password: false, nil. No such
// person, or more than one: false, nil (the caller counts a failure).
// The directory not answering: an error (a temporary failure).
func (p *Peer) VerifyPassword(ctx context.Context, address, password string) (bool, error) {
	// An empty password would be an unauthenticated bind (RFC 4513 5.1.2),
	// which many servers answer with success.
	if password == "" || address == "" {
		return false, nil
	}
	c, err := p.dial(ctx)
	if err != nil {
		return false, err
	}
	defer c.Close()
	filter := fmt.Sprintf("(&%s(%s=%s))", p.cfg.People.Filter, p.cfg.Attributes.Mail, goldap.EscapeFilter(address))
	req := goldap.NewSearchRequest(p.cfg.People.BaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 2, 0, false,
		filter, []string{"1.1"}, nil)
	res, err := c.Search(req)
	if err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded) {
		return false, fmt.Errorf("ldap: find %s: %w", address, err)
	}
	if res == nil || len(res.Entries) != 1 {
		return false, nil
	}
	dn := res.Entries[0].DN
	uc, err := p.dialNoBind(ctx)
	if err != nil {
		return false, err
	}
	defer uc.Close()
	if err := uc.Bind(dn, password); err != nil {
		var le *goldap.Error
		if errors.As(err, &le) && le.ResultCode == goldap.LDAPResultInvalidCredentials {
			return false, nil
		}
		return false, fmt.Errorf("ldap: bind as person: %w", err)
	}
	return true, nil
}

// dialNoBind connects (with StartTLS when configured) without binding.
func (p *Peer) dialNoBind(ctx context.Context) (*conn, error) { return p.dialBind(ctx, false) }
