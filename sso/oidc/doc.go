// Package oidc is govhub's OpenID Connect relying party: one RP per
// configured OpenID provider (the affairs link, a provincial IdP), mounted
// by sso.Manager.Handler at /sso/oidc/<name>/.
//
// It owns the protocol checks and nothing else:
//
//   - GET /login starts the authorization code flow with PKCE (S256), a
//     fresh state and nonce kept in an sso.Pending bound to the browser;
//   - GET /callback takes that Pending exactly once, compares state in
//     constant time, exchanges the code with the PKCE verifier, verifies
//     the ID token (signature against the OP's JWKS, alg, iss, aud, azp,
//     exp, iat, and the nonce, which go-oidc leaves to the caller), and
//     hands an sso.Identity to Manager.Complete; every refusal goes to
//     Manager.Fail;
//   - POST /backchannel-logout accepts OpenID Connect Back-Channel Logout
//     1.0 logout tokens (signature, iss, aud, iat, exp, the back-channel
//     logout event, sub and/or sid, no nonce, jti used once across nodes)
//     and ends the named sessions through Manager.EndSessions;
//   - LogoutURL sends a signed-out browser to the OP's end_session_endpoint
//     (RP-initiated logout) with id_token_hint and post_logout_redirect_uri;
//   - Explain reports what an OP offers and what this RP would accept, for
//     `govhub sso test`.
//
// Sessions, the used-once cache, identity mapping and the sign-in pages
// belong to package sso; this package stores nothing itself.
package oidc
