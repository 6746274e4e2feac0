package sso

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// Identity is what one verified sign-in proved: a provider vouched for a
// subject. Providers (sso/saml, sso/oidc, the affairs-link login code, the
// password form) build it only after every check they own has passed.
type Identity struct {
	// Method is "saml", "oidc", "affairslink" or "password".
	Method string
	// Provider is the configured name of the IdP/OP ("" for password).
	Provider string
	// Subject is the SAML NameID, the OIDC sub, the affairs-link user id or
	// the account address.
	Subject string
	// Attributes are the SAML attributes or the OIDC claims (string values
	// only), which the identity mapping reads.
	Attributes map[string][]string
	// SessionIndex is the SAML SessionIndex or the OIDC sid, kept with the
	// session so single logout can find it.
	SessionIndex string
	// Expires, when set, caps the session (a SAML SessionNotOnOrAfter).
	Expires time.Time
	// IDToken is the raw OIDC ID token, kept only to hint RP-initiated
	// logout (id_token_hint); never logged.
	IDToken string
}

// Attr returns the first value of an attribute or claim; "subject" names
// the Subject itself.
func (id Identity) Attr(name string) string {
	if name == "" || name == "subject" {
		return id.Subject
	}
	if v := id.Attributes[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Person is whom an identity maps to: a directory person with a mailbox
// (or, for accounts that are not in the directory, just the mailbox).
type Person struct {
	ID          string // directory person id; "" for an account outside the directory
	AccountID   int64
	Address     string
	DisplayName string
	Department  string
	Status      string // "active", "disabled" or "left"
}

// People maps identities to people. sso declares it; cmd/govhub
// implements it over the directory and the mail store.
type People interface {
	// Find returns the person whose key equals value. Keys: "person_id",
	// "employee_no", "uid", "mail", "affairslink_id" (the person's anchor
	// in an affairs-link peer). ErrUnknownPerson when there is none.
	Find(ctx context.Context, key, value string) (Person, error)
	// ByAccount returns the person owning a mail account.
	ByAccount(ctx context.Context, accountID int64) (Person, error)
}

// PersonCreator is the optional capability behind just-in-time creation:
// when a provider's mapping allows it, an identity with no person gets
// one (and a mailbox) instead of the "unknown person" page.
type PersonCreator interface {
	CreateFromIdentity(ctx context.Context, id Identity) (Person, error)
}

// Mapping says how a provider's identities find their person.
type Mapping struct {
	// From is the attribute or claim read ("subject" for NameID/sub).
	From string `yaml:"from"`
	// Key is the People key it is matched against (see People.Find).
	Key string `yaml:"key"`
	// JIT creates the person when none matches (needs a PersonCreator).
	JIT bool `yaml:"jit"`
}

// Session is one signed-in browser. Token is never stored: the database
// holds its SHA-256.
type Session struct {
	ID           int64
	AccountID    int64
	PersonID     string
	Address      string
	DisplayName  string
	Method       string
	Provider     string
	Subject      string
	SessionIndex string
	IDToken      string
	// CSRF is the per-session token every state-changing request carries
	// (form field "csrf_token" or header "X-CSRF-Token").
	CSRF      string
	CreatedAt time.Time
	LastSeen  time.Time
	ExpiresAt time.Time // absolute end
	RemoteIP  string
}

// Pending is one sign-in started by this browser and not yet finished:
// the SAML AuthnRequest id, or the OIDC state, nonce and PKCE verifier.
// It is bound to the browser by a cookie and taken exactly once.
type Pending struct {
	Provider  string
	RequestID string // SAML AuthnRequest ID (InResponseTo must equal it)
	State     string // OIDC state
	Nonce     string // OIDC nonce
	Verifier  string // PKCE code verifier
	Relay     string // where to land afterwards: a same-origin path or ""
	CreatedAt time.Time
}

// Provider is one configured way in (an IdP, an OP, the affairs link).
// Its Handler is mounted at /sso/<Type>/<Name>/ with that prefix stripped.
type Provider interface {
	Name() string
	Type() string // "saml", "oidc", "affairslink"
	// Handler serves the provider's endpoints (metadata, ACS, callback...).
	Handler() http.Handler
	// LoginPath is where the sign-in button sends the browser, relative to
	// the site root, carrying relay (already checked by SafeRelay).
	LoginPath(relay string) string
}

// Logouter is the optional capability of providers with a single-logout
// or end-session endpoint: after govhub has ended its own session it sends
// the browser there. "" means nothing to do.
type Logouter interface {
	LogoutURL(ctx context.Context, s Session) (string, error)
}

// Describer is the optional capability behind `govhub sso list`.
type Describer interface {
	Describe() map[string]string
}

// Errors a caller tests with errors.Is.
var (
	ErrUnknownPerson = errors.New("sso: no person matches this identity")
	ErrDisabled      = errors.New("sso: this person is disabled")
	ErrLeft          = errors.New("sso: this person has left the organisation")
	ErrNoSession     = errors.New("sso: not signed in")
	ErrNoPending     = errors.New("sso: no sign-in was started from this browser")
	ErrReplay        = errors.New("sso: already used")
	ErrCSRF          = errors.New("sso: missing or wrong CSRF token")
	// ErrInvalid: a request the user can fix (an app password without a
	// name, one too many).
	ErrInvalid = errors.New("sso: invalid request")
	// ErrTemporary marks failures of govhub itself (the database did not
	// answer): the user gets "try again later", not "sign-in failed".
	ErrTemporary = errors.New("sso: temporarily unavailable")
)
