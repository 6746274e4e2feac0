// Package directory owns the organisation chart and the address book:
// departments as a tree, people with their department memberships, their
// anchors (the immutable id each peer gives them), the bidirectional sync
// engine with per-field ownership, conflicts, deletion thresholds, dry runs
// and run history, the cron schedules that drive it, provisioning of mail
// accounts from people, and the address-book queries (pinyin included).
//
// It declares the Peer and PeerWriter interfaces (peer.go) that
// adapters/ldap and adapters/affairslink implement, and a Provisioner it
// needs from the mail core; cmd/govhub wires them. It imports no adapter
// and no other domain.
package directory
