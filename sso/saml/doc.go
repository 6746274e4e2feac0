// Package saml is govhub's SAML 2.0 service provider: one SP per
// configured IdP (the affairs link, a provincial IdP), mounted by the sso
// package at /sso/saml/<name>/. It owns our SP metadata and key, the
// SP-initiated sign-in (signed AuthnRequest, HTTP-Redirect), the assertion
// consumer service (HTTP-POST), both directions of single logout, the IdP
// metadata and its periodic refresh (certificate rollover), and Explain,
// the human-readable summary behind `govhub sso test`. It does not own
// sessions, pending sign-ins, the used-once cache, the audit log or the
// mapping from identity to person: those are the sso.Manager's, which it
// calls (BeginLogin, TakeLogin, UseOnce, Complete, Fail, EndSessions).
//
// crewjam/saml builds our messages and parses the IdP's. A forged or
// replayed assertion is the single most damaging input govhub takes, so
// the ACS does not rely on the library's verdict alone: it runs its own
// checks first, on its own parse of the XML (beevik/etree), and then the
// library's as a second, independent reading. Govhub's checks:
//
//   - Signature: the Response or the Assertion (or both) carries an
//     enveloped signature, and every signature present verifies against
//     the certificates pinned from the IdP metadata, never against one the
//     message carries. Each signature has one Reference, to its own
//     element's ID. Values are read only from what a signature covers.
//   - Exactly one Assertion in the whole document, a direct child of the
//     Response; none inside a Signature, no duplicate IDs, no signatures
//     anywhere else. This is what stops signature wrapping (XSW): a forged
//     assertion beside, inside or around the signed one.
//   - AudienceRestriction present, and every one names our entity id
//     (an assertion for another SP of the same IdP is not ours).
//   - Response Destination and every bearer SubjectConfirmationData
//     Recipient equal our ACS URL exactly (an assertion posted to another
//     SP cannot be forwarded to us).
//   - NotBefore/NotOnOrAfter of the Conditions and the confirmations,
//     with a bounded clock skew (Config.ClockSkew, default 2 minutes; the
//     library allows 3).
//   - InResponseTo equals the AuthnRequest id this browser started
//     (sso.Manager.TakeLogin, a single-use cookie-bound row), so a
//     response stolen from, or planted into, another browser is refused.
//     Responses without InResponseTo (IdP-initiated) only with
//     Config.IDPInitiated.
//   - Replay: the assertion id is spent in the database-backed used-once
//     cache until the assertion could no longer be accepted, so a second
//     post is refused on every node.
//   - RelayState becomes a landing path only through sso.SafeRelay
//     (same-origin paths; "https://evil", "//evil", "/\evil" land on the
//     default page). For SP-initiated sign-in the relay stored with the
//     pending sign-in is used, not the posted RelayState.
//   - The ACS takes POST only, at most 256 KiB; DTDs are refused;
//     encrypted assertions are refused (our metadata advertises no
//     encryption key, so the IdP signs and does not encrypt).
//
// Every refusal goes through sso.Manager.Fail: a 403 page with generic
// text for the user, the precise reason (one of the Err values here) in
// the audit log.
//
// Single logout: LogoutURL sends a signed LogoutRequest (NameID and
// SessionIndex of the ended session) to the IdP; /slo accepts a signed
// LogoutResponse only to a request we sent (remembered in the used-once
// cache, so any node may receive it), once. A signed LogoutRequest from
// the IdP ends the named sessions (sso.Manager.EndSessions) and is
// answered with a signed LogoutResponse; its id is spent in the used-once
// cache too.
//
// Keys: Config.KeyFile/CertFile, or a key generated once into KeyDir.
// Nodes behind one load balancer must share the key (same files, or a
// shared KeyDir), since the IdP pins the certificate from our metadata.
package saml
