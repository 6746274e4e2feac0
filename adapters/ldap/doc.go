// Package ldap is the LDAP directory as a directory.Peer and, when
// configured writable, a directory.PeerWriter: OpenLDAP, 389-DS or Active
// Directory read with github.com/go-ldap/ldap/v3.
//
// What it owns: connecting (ldap:// with optional StartTLS, RFC 4511
// 4.14, or ldaps://; a refused StartTLS is an error, never plain text),
// simple bind with a secret that is never logged, mapping entries to
// directory.Department and directory.Person, change detection and
// write-back. What it does not: deciding what a value means (ownership,
// matching, thresholds, duplicate mail) — the sync engine in directory
// does that with the entries this package reports.
//
// # Full
//
// Departments (Config.Departments, organizationalUnit by default) are read
// with RFC 2696 simple paged results, ordered parents first by DN depth
// and reported with the anchor of their parent entry; then people, page by
// page, so memory holds one page. A person's memberships come from its
// parent entry when that is a department and/or from a configured
// attribute naming department DNs or names. Anchors are entryUUID (RFC
// 4530) by default or Active Directory's objectGUID as the canonical GUID
// string ([MS-DTYP] 2.3.4, first three fields little-endian). A broken
// entry — no anchor, invalid UTF-8, control characters, an order that is
// not a number, a membership naming no department — is reported with
// Entry.Err (wrapping ErrBadEntry) and the walk goes on. Groups
// (groupOfNames, groupOfUniqueNames; Config.Groups) follow the people,
// their member DNs resolved to anchors of people or nested groups
// (groups.go); a DN naming neither is listed in Group.Unresolved.
//
// # Changes
//
// When the root DSE lists the sync request control
// (1.3.6.1.4.1.4203.1.9.1.1) and the anchor is entryUUID, Changes runs an
// RFC 4533 refreshOnly search per search base with the cookies of the
// cursor, and reports added and modified entries and deletions (syncIdSet
// with refreshDeletes, or delete states). Full takes its cookies before
// the walk with a refreshOnly search that matches nothing, so nothing
// changed during the walk is lost. Deletions carry the entryUUID only; the
// cursor keeps the department anchors so a department's deletion is told
// from a person's, and entries that merely leave one search's content (a
// modified person seen from the department search) are not reported as
// deletions.
//
// With OpenLDAP's syncprov this needs a session log on the provider
// (olcSpSessionlog, or syncprov-sessionlog in slapd.conf) large enough for
// the changes between two runs: without one, or for a cookie older than
// the log, syncprov answers with a present phase, in which deletions are
// implied by omission; the peer keeps no list of entries, so it returns
// directory.ErrCursorExpired and the engine runs a full reconcile. An
// unreadable cursor, a malformed OpenLDAP cookie (which syncprov would
// silently treat as no cookie, hiding deletions) or e-syncRefreshRequired
// (RFC 4533) also give ErrCursorExpired. Entries reported before an
// ErrCursorExpired are current values.
//
// Otherwise (ContentSync "off", another anchor, a server without the
// control) Changes searches modifyTimestamp >= the highest value seen
// (generalized time, one-second resolution: an entry modified in that
// second is reported again, never missed). Deletions are not seen this
// way: only a full run finds them.
//
// Active Directory's DirSync control and uSNChanged are not done: AD is
// read by Full and by modifyTimestamp (which AD derives from whenChanged,
// kept by each domain controller itself: point the peer at one DC), and
// its deletions are found by a full run.
//
// # Write-back
//
// UpdatePerson replaces only the attributes mapped to the given fields in
// one modify request (an empty value removes the attribute);
// memberships and status cannot be written and give ErrFieldNotMapped.
// CreatePerson adds an inetOrgPerson uid=govhub-<random>,CreateBaseDN and
// returns the anchor the server assigned, read back.
//
// # Filters
//
// Configured filters are IT's and are parsed by New. Every value this
// package puts into a filter (an anchor, a timestamp) goes through
// ldap.EscapeFilter (RFC 4515 3), objectGUID bytes as \xx escapes, so a
// value such as "*)(uid=*" matches nothing rather than everyone.
//
// Package ldaptest starts a real slapd for the tests.
package ldap
