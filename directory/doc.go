// Package directory owns the organisation chart and the address book:
// departments as a tree, people with their department memberships, groups
// of people and nested groups, their anchors (the immutable id each peer gives them), the bidirectional sync
// engine with per-field ownership, conflicts, deletion thresholds, dry runs
// and run history, the cron schedules that drive it, provisioning of mail
// accounts from people, and the address-book queries (pinyin included).
//
// It declares the Peer, PeerWriter and PeerCreator interfaces (peer.go) that
// adapters/ldap and adapters/affairslink implement, and a Provisioner it
// needs from the mail core; cmd/govhub wires them. It imports no adapter
// and no other domain.
//
// # Storage
//
// Store keeps the chart in the dir_* tables (migration 00005), one SQL
// text for SQLite and PostgreSQL. A person's ID is the stable govhub id.
// Nothing is ever deleted by a sync: people who leave keep their row with
// status "left" and left_at; departments a peer removes get status "left"
// and drop out of the tree. Groups (dir_groups, dir_group_members,
// migration 00009) keep direct members only; nested groups are flattened
// when read, with cycle protection (group.go).
//
// # Sync
//
// Engine.Run reads a peer (a delta from the stored cursor, or everything),
// loads the chart into memory, plans every change against it, and applies
// the plan with the new cursor in one transaction. Hence:
//
//   - Dry run: the same plan, not applied; its report equals the real
//     run's (write-back and provisioning listed with their target).
//   - Resumable: a run that fails or is interrupted stores no cursor and
//     changes nothing; the next run starts from the old cursor.
//   - Idempotent: a run with nothing new reports no change and writes
//     nothing but its own history row.
//   - Deletion threshold: a run that would mark more than
//     min(MaxDeletions, MaxDeletionFraction × the peer's objects) as left
//     fails with ErrDeletionThreshold before changing anything, unless
//     RunOptions.ConfirmDeletions. Removals by a peer that does not own
//     status only drop its anchor ("unlink") and do not count.
//   - One run per peer at a time, across nodes: the lease "sync:<peer>";
//     a second Run gets ErrBusy.
//
// Matching: by the peer's anchor; for an object the peer reports for the
// first time, people by Config.MatchKey (employee number or mail,
// case-insensitively) and departments by name under the same parent.
//
// Ownership (Config.Ownership, field → peer name or Govhub): a value from
// the owning peer is taken; from another peer only when govhub has none.
// Each anchor keeps a snapshot of the peer's values and ours after the last
// run; a field changed on both sides since then is a Conflict, resolved by
// ownership and recorded in dir_conflicts. Fields govhub owns that differ
// on a peer configured writable (Config.Writable) and implementing
// PeerWriter are written back after the commit, including govhub-side edits
// the peer did not report in a delta; a failed write-back is a per-object
// error and is retried by the next run. A full run of such a peer that is
// also a PeerCreator creates there the active people it has no anchor for
// (push.go), with the fields that peer does not own.
//
// Groups (KindGroup entries, groupsync.go) are planned after people, their
// members named by anchors of the same peer; an unknown member is a
// per-object error, never fatal. Ownership keys are GroupFieldNames.
//
// Broken entries (Entry.Err, no display name, no mail when RequireMail,
// malformed or duplicate mail, unknown status, a missing parent or
// membership department, a department made its own ancestor, invalid
// UTF-8 or control characters) are per-object errors; the run goes on.
//
// # Provisioning
//
// After the commit the engine calls Provisioner.EnsureAccount for every
// person with a mail address whose name, mail, rank or status changed
// (ProvisionAll reconciles everyone). Quota comes from Config.QuotaByRank,
// else Config.DefaultQuota (1 GiB). Access by status (active, disabled,
// left with its grace period from LeftAt) is the mail core's to enforce.
// Store.DepartmentMembers expands a department's distribution address,
// Store.GroupMemberMails a group's.
//
// # Address book
//
// Store.Search matches every word of the query in display name, pinyin
// (full and initials), title, phones and mail, ordered by the department's
// position in the tree then pinyin. It scans an in-memory index per node,
// reloaded when dir_generation (bumped by every change in the same
// transaction) moves. AddressBookHandler serves it as JSON; a person's
// card carries the webmail deep link /compose?to=<id>.
//
// # Schedules
//
// Store.SetSchedule/PauseSchedule/Schedules keep cron expressions per peer
// and kind in dir_schedules; Scheduler.Tick, with the engine's injected
// clock, claims each due slot in the database (one node runs it) and calls
// Engine.Run; Scheduler.Loop ticks it.
package directory
