// Package sso will own single sign-on: the SAML 2.0 service provider, the
// OpenID Connect relying party, the affairs link's login-code exchange, and
// server-side sessions. It maps an identity to a directory person through an
// interface it declares; it does not store mail or people.
//
// Status: not built yet (see issue 5). Nothing here is wired.
package sso
