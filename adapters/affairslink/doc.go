// Package affairslink is govhub's adapter for the affairs link, the
// government-affairs portal and IM suite staff already use. It speaks the
// REST contract written down in docs/affairslink.md and owns:
//
//   - Client, the directory peer (directory.Peer and directory.PeerWriter):
//     an access token from the app key and secret, refreshed when it
//     expires; departments and people with cursor paging; changes since a
//     cursor; creating and updating a person. Rate limits (429 with
//     Retry-After), server errors (5xx) and transport errors are retried
//     with a bounded backoff; past the bound a call fails with
//     ErrUnavailable.
//   - CallbackHandler, the http.Handler receiving the affairs link's signed
//     change events (HMAC-SHA256 over timestamp, nonce and body, a replay
//     window and a nonce memory) and handing each verified event to a
//     function the wiring provides, typically a targeted sync of one
//     person or department (FetchPerson, FetchDepartment).
//
// The contract simulator used by the tests and the demo mode lives in
// adapters/affairslink/simulator; it shares no code with this package, so
// the tests check the documented wire format rather than a shared struct.
//
// It does not own the sync itself (ownership, conflicts, thresholds live in
// directory), and it stores nothing: cursors are returned to the engine.
// Later issues add the login-code exchange and work notifications here.
package affairslink
