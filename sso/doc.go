// Package sso owns signing in: server-side sessions (random 256-bit
// tokens, stored hashed; idle and absolute timeouts; a new token at every
// sign-in), sign-ins started and bound to a browser (Pending), the
// used-once cache that makes every assertion, login code and logout token
// single-use across all nodes, CSRF checks, the audit log, app passwords
// for desktop clients, the identity mapping to directory people, and the
// sign-in pages. The protocols live in sub-packages: sso/saml (SAML 2.0
// SP), sso/oidc (OpenID Connect RP) and sso/affairslink (the affairs
// link's one-time login code). sso declares People (who an identity is)
// and PasswordChecker; cmd/govhub implements them over directory and
// mailcore. It stores no mail and no people.
package sso
