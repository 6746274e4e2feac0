// Package volume is the local blob store of a one-machine govhub: message
// bodies packed into a few large append-only volume files (Haystack-style),
// found through an in-memory index from blob id to (volume, offset, length,
// sequence number). It implements mailcore.BlobStore and the optional
// BlobCompactor, BlobStats and BlobVerifier. It does not count references
// (the SQL blobs table does) and knows nothing of messages.
//
// # Files
//
// Dir holds vol-NNNNNN.dat volume files, index.snap (the index snapshot) and
// LOCK. A volume starts with a file header (magic, format version, flags,
// volume number) followed by records: record magic, type (blob or
// tombstone), a global sequence number, the 32-byte id, the data length,
// the data, and a CRC-32C (Castagnoli) over all of it. The byte layout is in
// format.go and snapshot.go. Temporary files end in .tmp; Open removes them.
//
// Exactly one volume, the open one, receives appends. Once it reaches
// Options.VolumeSize it is sealed (fsynced, never written again) and a new
// one is created; a record that would push a non-empty volume past the size
// starts a new volume, so a record larger than VolumeSize gets a volume of
// its own. Volume files are created under a temporary name, fsynced,
// renamed and the directory fsynced, so a volume never lacks its header.
// Volumes written by compaction carry a "compacted" flag: they are born
// sealed, and after a restart the open volume is the highest-numbered volume
// without the flag.
//
// # Promises
//
//   - Put returns only after its record is fsynced. Concurrent Puts and
//     Deletes share fsyncs (group commit): a writer appends under a mutex;
//     whoever then holds the sync lock fsyncs everything appended so far, and
//     every writer whose record that covered returns without an fsync of its
//     own. A Put whose id does not equal the SHA-256 of the data fails.
//   - Append (mailcore.BlobBatcher) writes and indexes like Put but returns
//     before the fsync; Sync returns once everything appended or deleted
//     before it is durable. The delivery committer uses the pair to pay one
//     fsync per batch of deliveries.
//   - Put of an id that is live writes nothing; it returns once the record
//     already there is durable (waiting for its group fsync if need be).
//   - Delete removes ids from the index and appends one tombstone per live id
//     (fsynced, group-committed), so no rebuild resurrects them. Deleting an
//     absent id writes nothing and is not an error. After Delete, Has is
//     false, Get and Open return ErrBlobNotFound, and a later Put of the
//     same bytes writes a new record.
//   - Get reads the record with one pread and checks its CRC and the SHA-256
//     of the data (ErrBlobCorrupt otherwise). Open returns a reader of preads
//     over the record's data, not checksum-verified.
//   - If an fsync fails, the store stops writing: every later Put and Delete
//     returns the error (the kernel may have dropped the unsynced pages, so
//     nothing after that could honestly be called durable). Reads go on.
//
// # Ordering rule
//
// Every record has a sequence number from one counter that only grows;
// compaction copies records with their numbers. When the index is rebuilt
// from the files, for each id the record with the highest sequence number
// wins (between identical copies, the one in the higher-numbered volume), and
// a tombstone with sequence number s removes every record of that id below s.
// The result does not depend on the order files are scanned in, which
// matters because compaction writes old records into new, higher-numbered
// files while the open volume keeps receiving newer ones.
//
// # Index snapshot
//
// index.snap records every live entry, and for each volume the offset up to
// which the entries reflect it, plus the next sequence number. It is written
// to a temporary file after every record it covers is durable, fsynced,
// renamed, and the directory fsynced. It is written on Close, after each
// compaction pass that changed a volume, and in the background after every
// 64 MiB appended or every 5 minutes when something changed, so a restart
// scans at most about 64 MiB (or 5 minutes) of volume tails. The index is
// serialised while holding the index read lock, which pauses appends for the
// time it takes to write it to the page cache.
//
// Open (unless read-only) removes leftover temporary files, loads the
// snapshot if it is valid (checksummed; naming only existing volumes with
// sound headers, covering no more than each file holds, entries inside what
// they cover), else starts from an empty index, and then scans every volume
// from its covered offset (from its header if the snapshot does not name it,
// or if there is no snapshot) to its end, applying the ordering rule. A
// record found in a tail with a sequence number below the snapshot's next
// sequence number predates the snapshot, which already says whether it is
// live: it is accepted only as an identical copy of an entry the snapshot
// has (compaction crashed between writing the copy and the snapshot), and
// such a tombstone has already been applied. Open then fsyncs the open
// volume, so everything indexed is durable. Recovery reports what it did.
//
// # Damage
//
// A crash can leave a partial or checksum-failing record at the end of the
// open volume, from a write no Put acknowledged. Open truncates the open
// volume to the end of the last good record, fsyncs, and reports the cut
// (RecoveryReport.TornTail). A bad record anywhere else (in a sealed volume,
// or in the open volume with good records after it) is not truncated: it
// is reported (RecoveryReport.Corrupt, and by Verify), and the scan resyncs
// by searching for the next record magic and resuming at the first
// candidate that is a whole valid record whose data also hashes to its id.
// Records after a resync are always hash-checked, and tombstones after a
// resync are ignored: a damaged region may sit inside a stored message whose
// bytes look like records, and while a forged blob record cannot make the
// store serve wrong bytes for an id, a forged tombstone could delete a live
// blob. Ignoring a real one at worst resurrects an unreferenced blob, which
// the orphan scan removes. Open fails rather than truncating on an I/O error
// in the open volume. Compaction refuses a volume whose framing is damaged
// or whose live records fail their checksum (the error names it; fsck should
// look), and never copies a record without checking its CRC; damaged bytes
// that belong to no live blob are reclaimed like other dead space.
//
// # Compaction
//
// Compact rewrites each sealed volume whose dead fraction (bytes of records
// the index does not point at, tombstones included, over the file size)
// reaches the threshold (default 0.3) and whose rewrite would reclaim that
// much: it copies the records still needed into a temporary file, fsyncs,
// renames it to a new volume number, fsyncs the directory; then, under the
// index lock, repoints the entries that still point at their old location
// (an id deleted or rewritten meanwhile keeps its new state, and its copy
// is dead); writes the snapshot; and only then unlinks the old file. A
// reader that found the old location just before the switch still reads
// it: volume files are reference-counted and closed when the last reader
// is done. Killed at any instant, it loses no live blob: until the new
// snapshot is durable the old volume and the old snapshot are intact, and a
// copy found beside its original is harmless because it is the same bytes
// with the same sequence number. If the snapshot cannot be written, the old
// file stays until a later snapshot no longer names it.
//
// Tombstones: a tombstone for id X with sequence number t is needed only
// while some record of X below t may exist in another file. When its volume
// is compacted it is dropped if X is live again with a higher sequence
// number, or if no other volume holds any dead blob record with a sequence
// number below t (every record of X below t is dead, so then none
// exists). Each volume tracks the lowest sequence number among its dead blob
// records (persisted in the snapshot; treated as unknown, which keeps every
// tombstone, for volumes with damaged bytes). Otherwise the tombstone is
// copied into the new volume. This rule is conservative: tombstones stay
// while any older volume still holds dead records, which a volume below the
// threshold may do for a long time.
//
// # Locking and read-only use
//
// A writable Open takes an exclusive flock on Dir/LOCK and fails with an
// error wrapping mailcore.ErrStoreLocked while another process holds it.
// Options.ReadOnly (for fsck beside a running server) takes no lock, writes
// and repairs nothing, and makes Put, Delete and Compact return
// mailcore.ErrReadOnly.
//
// # Memory
//
// An index entry is a map slot keyed by the 32-byte id holding 24 bytes
// (sequence number, offset, volume, length) and no pointers. Walk copies
// the live ids (36 bytes each) before calling its function.
package volume
