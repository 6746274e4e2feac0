// Package mailcore owns mail: domains, accounts, aliases, mailboxes, the
// message store and (in sub-packages) the protocols that reach it.
//
// The store keeps headers apart from bodies. Per-mailbox message rows (uid,
// modseq, flags, dates, size and the parsed envelope) live in SQL; the raw
// message lives once in a BlobStore, addressed by its SHA-256, with a
// reference count in the blobs table. A message to 10,000 recipients is one
// blob and 10,000 rows.
//
// Promises:
//   - Deliver returns only after the body is fsynced by the BlobStore and the
//     rows (messages, quota, blob reference, outbox events) are committed in
//     one transaction. Concurrent deliveries share transactions (group
//     commit), so the fsync cost is paid per batch, not per message.
//   - Quota is charged in the delivery transaction; an over-quota recipient
//     fails alone with ErrQuotaExceeded (temporary) and the others land.
//   - Expunge removes rows and decrements references; a blob at zero
//     references is marked dead, purged from the BlobStore after a grace
//     period (PurgeDead), and its space is reclaimed by the BlobStore's
//     compaction. A delivery racing a purge of the same bytes waits and
//     stores them anew, so no row ever points at a deleted body.
//   - Fsck checks that rows, blobs, reference counts and quotas agree.
//
// Not here: parsing (mailcore/envelope), the local volume files
// (mailcore/volume), SMTP/IMAP servers, directory sync, alerts.
package mailcore
