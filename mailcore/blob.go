package mailcore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// BlobID names a message body by the SHA-256 of its bytes. Two deliveries of
// the same bytes share one BlobID, which is what makes single-instance storage
// possible: the store keeps one copy and counts references in SQL.
type BlobID [32]byte

// BlobIDOf returns the content address of data.
func BlobIDOf(data []byte) BlobID { return BlobID(sha256.Sum256(data)) }

// String is the lower-case hex form used in logs, file names and fsck reports.
func (id BlobID) String() string { return hex.EncodeToString(id[:]) }

// ParseBlobID parses the hex form produced by String.
func ParseBlobID(s string) (BlobID, error) {
	var id BlobID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("mailcore: bad blob id %q", s)
	}
	copy(id[:], b)
	return id, nil
}

// Errors a BlobStore reports; test them with errors.Is.
var (
	// ErrBlobNotFound: the store holds no live blob with that id.
	ErrBlobNotFound = errors.New("blob not found")
	// ErrBlobCorrupt: the stored bytes fail their checksum or content hash.
	ErrBlobCorrupt = errors.New("blob corrupt")
	// ErrStoreLocked: another process owns the store's directory.
	ErrStoreLocked = errors.New("blob store in use by another process")
	// ErrReadOnly: a mutating call on a store opened read-only.
	ErrReadOnly = errors.New("blob store opened read-only")
)

// BlobStore keeps message bodies by content address. The mail core declares
// it; the local packed-volume store (mailcore/volume) and object-store
// adapters (adapters/s3) implement it; cmd/govhub chooses one.
//
// A BlobStore does not count references: the SQL blobs table does, in the
// same transaction as the message rows. The store only promises that a Put
// is durable when it returns and that a Delete'd blob eventually frees its
// space.
type BlobStore interface {
	// Put stores data under id, which must equal BlobIDOf(data). When Put
	// returns nil the bytes are on stable storage (fsynced). If a live blob
	// with that id is already present Put writes nothing and returns nil.
	Put(ctx context.Context, id BlobID, data []byte) error
	// Get returns the whole blob, verified against its checksum.
	Get(ctx context.Context, id BlobID) ([]byte, error)
	// Open returns a reader over the blob for partial reads (IMAP partial
	// FETCH) without reading it all; it is not checksum-verified.
	Open(ctx context.Context, id BlobID) (BlobReader, error)
	// Has reports whether a live blob with that id is present.
	Has(ctx context.Context, id BlobID) (bool, error)
	// Delete makes the blobs unreachable. Their space is reclaimed later
	// (compaction for volumes). Deleting an absent id is not an error.
	Delete(ctx context.Context, ids []BlobID) error
	// Walk calls fn for every live blob, in no particular order. It is used
	// by fsck and the orphan scan; fn returning an error stops the walk.
	Walk(ctx context.Context, fn func(id BlobID, size int64) error) error
	// Close releases files and locks.
	Close() error
}

// BlobReader reads one blob at random offsets.
type BlobReader interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// BlobCompactor is the optional capability of stores that reclaim the space
// of deleted blobs by rewriting files (the local volume store does; an object
// store deletes at once and does not need it).
type BlobCompactor interface {
	Compact(ctx context.Context, opts CompactOptions) (CompactStats, error)
}

// CompactOptions tunes one compaction pass.
type CompactOptions struct {
	// DeadFraction: rewrite a sealed volume once at least this fraction of
	// its bytes belong to deleted blobs. Zero means the default, 0.3.
	DeadFraction float64
}

// CompactStats reports what one compaction pass did.
type CompactStats struct {
	VolumesRewritten int   `json:"volumes_rewritten"`
	BlobsCopied      int   `json:"blobs_copied"`
	BytesReclaimed   int64 `json:"bytes_reclaimed"`
}

// BlobStats is the optional capability of reporting space use.
type BlobStats interface {
	Stats() StoreStats
}

// StoreStats summarises a blob store's space use.
type StoreStats struct {
	Blobs     int64 `json:"blobs"`
	LiveBytes int64 `json:"live_bytes"`
	DeadBytes int64 `json:"dead_bytes"`
	FileBytes int64 `json:"file_bytes"`
	Volumes   int   `json:"volumes"`
}

// BlobVerifier is the optional capability of reading every stored byte back
// and checking it, used by `govhub fsck`.
type BlobVerifier interface {
	Verify(ctx context.Context) ([]BlobProblem, error)
}

// BlobProblem is one damaged or unreadable record found by Verify.
type BlobProblem struct {
	ID     BlobID `json:"id"`
	Where  string `json:"where"` // e.g. "vol-000003.dat@1048576"
	Reason string `json:"reason"`
}

// BlobBatcher is the optional capability that lets the group committer pay
// one fsync for a whole batch of deliveries: Append stores like Put but may
// return before the bytes are on stable storage (they are readable at once);
// Sync returns once everything appended before the call is durable. A
// delivery's transaction commits only after a Sync that covers its Append.
type BlobBatcher interface {
	Append(ctx context.Context, id BlobID, data []byte) error
	Sync(ctx context.Context) error
}
