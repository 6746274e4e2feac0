// Package directory will own the organisation chart and the address book:
// departments, people, groups, their anchors in each peer, the
// bidirectional sync engine with its schedules, and provisioning of mail
// accounts. It declares the Peer interfaces that adapters/ldap and
// adapters/affairslink implement.
//
// Status: not built yet (see issue 4). Nothing here is wired.
package directory
