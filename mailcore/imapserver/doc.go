// Package imapserver is govhub's IMAP4rev1 server (RFC 3501, with the
// RFC 9051 clarifications cited in the code) over a mailcore.Store, built
// on github.com/emersion/go-imap v1.2.1's protocol engine.
//
// It owns the IMAP protocol: listeners with implicit TLS (ServeTLS, the
// port 993 shape) and STARTTLS (ServeSTARTTLS), authentication through an
// Authenticator, per-session sequence numbers, and the poller that turns
// the store's outbox into IDLE and NOOP updates. It does not own mail
// storage (mailcore), passwords and lockouts (mailcore/auth), or the
// full-text index (mailcore/search, reached through TextSearcher).
//
// # Extensions
//
// Served by go-imap itself: LITERAL+ (RFC 7888), SASL-IR (RFC 4959),
// CHILDREN (RFC 3348), UNSELECT (RFC 3691), MOVE (RFC 6851), IDLE
// (RFC 2177), APPENDLIMIT (RFC 7889). Added here as go-imap server
// extension commands: UIDPLUS (RFC 4315: APPENDUID, COPYUID, UID
// EXPUNGE), NAMESPACE (RFC 2342), SPECIAL-USE (RFC 6154, LIST attributes
// only; CREATE-SPECIAL-USE is not offered), QUOTA (RFC 9208: GETQUOTA and
// GETQUOTAROOT with the STORAGE resource in KiB; SETQUOTA is refused as an
// unknown command, quotas are set by administrators), ENABLE (RFC 5161,
// always enabling nothing). Not supported: CONDSTORE/QRESYNC, ESEARCH,
// SORT/THREAD, COMPRESS, UTF8=ACCEPT, LIST-EXTENDED/LIST-STATUS, ID,
// SEARCHRES, BINARY, CATENATE, METADATA, NOTIFY, IMAP4rev2.
//
// # What we replace in go-imap v1.2.1
//
// go-imap's server is used as the protocol engine (parser, state machine,
// response writer), with these commands replaced by ours, each for a
// reason: CAPABILITY, LOGIN, AUTHENTICATE and STARTTLS (per-connection
// TLS and loopback policy, generic typed errors; go-imap's own view of TLS
// is wrong under our limit filter), SELECT/EXAMINE (per-session UID view
// and registration with the poller), EXPUNGE (UID EXPUNGE, and expunging
// exactly the messages it reports), FETCH (row-only items are encoded
// directly, about 3x faster than go-imap's writer, and without its spaces
// between addresses, which RFC 9051's grammar does not have), IDLE
// (go-imap's reads DONE with a bufio.Scanner that swallows pipelined
// commands and holds 4 KiB per idle session) and UID (go-imap panics on a
// bare "UID"). Responses that go-imap would wait on forever after a
// logout are written with a select on the connection's LoggedOut.
//
// # Sessions and updates
//
// Each session keeps the sorted UIDs behind its sequence numbers (4 bytes
// per message of the selected mailbox) and changes them only when it tells
// the client (EXISTS, EXPUNGE). One poller per Server reads
// Store.Events every Config.PollInterval, one query per tick whatever the
// number of sessions, and records deliveries and expunges made by any
// process sharing the database in the sessions that have that mailbox
// selected. Sessions in IDLE are written to at once; others get the
// changes at NOOP, CHECK, IDLE and after their own APPEND, COPY, MOVE and
// EXPUNGE, never during FETCH, STORE or SEARCH (RFC 9051 7.5.1). Flag
// changes are not outbox events: other sessions of the same process are
// told (FETCH FLAGS), sessions in other processes see new flags on their
// next FETCH. \Recent is never set.
//
// # Limits
//
// A command line (outside literals) is bounded by Config.MaxLine (64 KiB)
// and a literal by Config.MaxLiteral (50 MiB, the store's message size).
// An over-long line or an oversize non-synchronizing literal gets "* BYE"
// and the connection is closed; an oversize synchronizing literal gets BAD
// without a continuation, so the client never sends it. LOGIN and
// AUTHENTICATE PLAIN need TLS (NO [PRIVACYREQUIRED] otherwise), except from
// loopback when AllowInsecureAuth is set; the STARTTLS listener's greeting
// then still says LOGINDISABLED, go-imap deciding the greeting itself.
// Mailbox names are decoded from modified UTF-7 (RFC 3501 5.1.3) and
// validated by mailcore.CleanMailboxName: "..", control characters and
// empty levels are refused with NO [CANNOT].
//
// # Search
//
// FROM, TO, CC, SUBJECT and HEADER Message-ID/In-Reply-To/Reply-To match
// the row columns with case-insensitive LIKE (on SQLite only ASCII letters
// fold case; Chinese has no case). BCC and other HEADER fields are not kept
// in rows and match nothing. TEXT and BODY need Config.Search; without it
// they answer NO [CANNOT]. SEARCH CHARSET other than UTF-8/US-ASCII is
// refused by go-imap.
package imapserver
