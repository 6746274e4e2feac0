package volume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/govhub/govhub/mailcore"
)

// Options configures Open.
type Options struct {
	// Dir holds the volume files, the index snapshot and the lock file. It
	// is created if missing (unless ReadOnly).
	Dir string
	// VolumeSize: the open volume is sealed once it reaches this many
	// bytes. Default 1 GiB.
	VolumeSize int64
	// ReadOnly opens the store for inspection (fsck) while a server may be
	// running on it: no lock, no writes, no repair. Mutating calls return
	// mailcore.ErrReadOnly.
	ReadOnly bool
	// Logger receives recovery, compaction and failure reports (never blob
	// contents); the caller tags it (component=volume). Nil discards them.
	Logger *slog.Logger
}

// DefaultVolumeSize is the seal size used when Options.VolumeSize is zero.
const DefaultVolumeSize = 1 << 30

// Snapshot policy (see doc.go): a snapshot is written on Close, after every
// compaction that changed something, and in the background once
// snapshotEveryBytes have been appended or snapshotInterval has passed with
// unsaved changes.
const (
	snapshotEveryBytes = 64 << 20
	snapshotInterval   = 5 * time.Minute
)

// ErrClosed is returned by calls on a closed Store.
var ErrClosed = errors.New("volume: store closed")

var (
	_ mailcore.BlobStore     = (*Store)(nil)
	_ mailcore.BlobCompactor = (*Store)(nil)
	_ mailcore.BlobStats     = (*Store)(nil)
	_ mailcore.BlobVerifier  = (*Store)(nil)
	_ mailcore.BlobBatcher   = (*Store)(nil)
)

// entry locates one live blob. It holds no pointers so that an index of
// millions of blobs costs the garbage collector nothing to scan.
type entry struct {
	seq uint64 // sequence number of the record
	off int64  // offset of the record (its header) in the volume
	vol uint32 // volume number; 0 marks a tombstone while loading
	n   uint32 // data length
}

func (e entry) recSize() int64 { return recOverhead + int64(e.n) }

// volume is one vol-NNNNNN.dat file.
type volume struct {
	num       uint32
	path      string
	f         *os.File
	compacted bool // written by compaction (born sealed)
	badHeader bool

	// refs counts users of f: one for the store while the volume is in
	// the table, one per read in flight or BlobReader open. The file is
	// closed when it drops to zero, so a volume compacted away under a
	// reader stays readable until the reader is done.
	refs atomic.Int32

	// Guarded by Store.mu (the open volume's size also by Store.wmu).
	size   int64  // bytes in the file
	live   int64  // bytes of the records the index points at
	count  int    // index entries pointing here
	deadLo uint64 // lowest sequence number of a dead blob record here; 0: unknown
	sealed bool
}

const noDead = ^uint64(0)

func (v *volume) acquire() { v.refs.Add(1) }

func (v *volume) release() {
	if v.refs.Add(-1) == 0 {
		v.f.Close()
	}
}

func (v *volume) name() string { return filepath.Base(v.path) }

func (v *volume) markDead(seq uint64) {
	if seq < v.deadLo {
		v.deadLo = seq
	}
}

func volName(num uint32) string { return fmt.Sprintf("vol-%06d.dat", num) }

// Store is the packed-volume blob store. It is safe for concurrent use.
type Store struct {
	dir        string
	volumeSize int64
	ro         bool
	log        *slog.Logger
	lockFile   *os.File

	// mu guards the index, the volume table and their accounting.
	mu        sync.RWMutex
	index     map[mailcore.BlobID]entry
	vols      map[uint32]*volume
	liveData  int64  // sum of data lengths of live blobs
	committed uint64 // highest sequence number reflected in the index
	changes   uint64 // bumped on every change a snapshot would record
	closed    bool

	// wmu serialises appends: sequence numbers, the open volume, rolling
	// to a new volume, volume numbers.
	wmu       sync.Mutex
	open      *volume
	nextSeq   uint64
	nextVol   uint32
	broken    error // sticky: after a failed fsync nothing more is written
	sinceSnap int64 // bytes appended since the last snapshot trigger

	// Group commit: syncMu elects the fsync leader; durable is the highest
	// sequence number known to be on stable storage.
	syncMu  sync.Mutex
	durable atomic.Uint64
	fsyncs  atomic.Int64

	cmu         sync.Mutex // one compaction at a time
	snapMu      sync.Mutex // one snapshot writer at a time
	snapChanges uint64     // guarded by snapMu: changes recorded by the last snapshot
	// retired (guarded by snapMu) holds volumes compaction took out of the
	// table whose files must stay until a snapshot that does not name them
	// is durable.
	retired []*volume

	recovery RecoveryReport

	snapEvery    int64
	snapInterval time.Duration
	kick         chan struct{}
	stop         chan struct{}
	bgDone       chan struct{}
	closeCtx     context.Context
	cancel       context.CancelFunc
	closeOnce    sync.Once
	closeErr     error

	// hook, when set by tests, is called at each compaction stage; an error
	// makes Compact return at once without cleaning up, like a crash.
	hook func(stage string) error
	// beforeSync, when set by tests, runs before each group fsync.
	beforeSync func()
}

// RecoveryReport describes what Open found and repaired.
type RecoveryReport struct {
	// SnapshotLoaded: index.snap was valid and used; only the volume
	// tails past what it covered were scanned.
	SnapshotLoaded bool `json:"snapshot_loaded"`
	// SnapshotProblem says why an existing snapshot was not used.
	SnapshotProblem string `json:"snapshot_problem,omitempty"`
	// Rebuilt: the index was rebuilt by scanning every volume from its
	// start (no usable snapshot).
	Rebuilt bool `json:"rebuilt"`
	// RecordsScanned counts the records read while scanning.
	RecordsScanned int `json:"records_scanned"`
	// TempFilesRemoved lists leftover temporary files (an interrupted
	// snapshot, volume creation or compaction) that Open deleted.
	TempFilesRemoved []string `json:"temp_files_removed,omitempty"`
	// TornTail is set when the open volume ended in a partial or
	// checksum-failing record, as a crash leaves it.
	TornTail *TornTail `json:"torn_tail,omitempty"`
	// Corrupt lists bad records that were kept on disk (in sealed volumes,
	// or followed by good records): the store serves everything else.
	Corrupt []mailcore.BlobProblem `json:"corrupt,omitempty"`
	// IgnoredTombstones counts tombstones found after resyncing past a bad
	// record, which are not trusted (see doc.go).
	IgnoredTombstones int `json:"ignored_tombstones,omitempty"`
}

// TornTail describes the end of the open volume that Open cut off.
type TornTail struct {
	File      string `json:"file"`
	Offset    int64  `json:"offset"`    // end of the last good record: the new file size
	Bytes     int64  `json:"bytes"`     // bytes removed
	Reason    string `json:"reason"`    // why the first removed record was rejected
	Truncated bool   `json:"truncated"` // false when opened read-only
}

// Recovery reports what Open repaired.
func (s *Store) Recovery() RecoveryReport { return s.recovery }

// Open opens (or creates) the store in opts.Dir, recovering from whatever
// a crash left behind. See doc.go for what it repairs.
func Open(opts Options) (*Store, error) {
	if opts.Dir == "" {
		return nil, errors.New("volume: no directory")
	}
	s := &Store{
		dir:          opts.Dir,
		volumeSize:   opts.VolumeSize,
		ro:           opts.ReadOnly,
		log:          opts.Logger,
		vols:         map[uint32]*volume{},
		snapEvery:    snapshotEveryBytes,
		snapInterval: snapshotInterval,
		kick:         make(chan struct{}, 1),
		stop:         make(chan struct{}),
		bgDone:       make(chan struct{}),
	}
	if s.volumeSize <= 0 {
		s.volumeSize = DefaultVolumeSize
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("dir", s.dir)
	s.closeCtx, s.cancel = context.WithCancel(context.Background())

	if s.ro {
		fi, err := os.Stat(s.dir)
		if err != nil {
			return nil, fmt.Errorf("volume: open %s: %w", s.dir, err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("volume: open %s: not a directory", s.dir)
		}
	} else {
		if err := os.MkdirAll(s.dir, 0o750); err != nil {
			return nil, fmt.Errorf("volume: %w", err)
		}
		if err := s.lock(); err != nil {
			return nil, err
		}
	}
	if err := s.load(); err != nil {
		s.releaseFiles()
		return nil, err
	}
	if !s.ro {
		go s.background()
	} else {
		close(s.bgDone)
	}
	return s, nil
}

// lock takes the exclusive flock on Dir/LOCK that keeps two writers apart.
func (s *Store) lock() error {
	f, err := os.OpenFile(filepath.Join(s.dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("volume: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("volume: %s: %w", s.dir, mailcore.ErrStoreLocked)
		}
		return fmt.Errorf("volume: lock %s: %w", s.dir, err)
	}
	s.lockFile = f
	return nil
}

// releaseFiles drops the store's references to every volume and the lock,
// writing nothing.
func (s *Store) releaseFiles() {
	s.snapMu.Lock()
	retired := s.retired
	s.retired = nil
	s.snapMu.Unlock()
	for _, v := range retired {
		v.release()
	}
	s.mu.Lock()
	vols := s.vols
	s.vols = map[uint32]*volume{}
	s.closed = true
	s.mu.Unlock()
	for _, v := range vols {
		v.release()
	}
	if s.lockFile != nil {
		s.lockFile.Close() // closing the descriptor releases the flock
		s.lockFile = nil
	}
}

// Close writes the index snapshot and releases files and the lock. It is
// idempotent. BlobReaders still open keep working until they are closed.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Store) close() error {
	s.cancel() // stop a running compaction at its next check
	if !s.ro {
		close(s.stop)
	}
	<-s.bgDone
	s.cmu.Lock()
	defer s.cmu.Unlock()

	// No appends after this point; appends already made are still made
	// durable by the snapshot below.
	s.wmu.Lock()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.wmu.Unlock()

	var err error
	if !s.ro {
		err = s.writeSnapshot()
		if err != nil {
			err = fmt.Errorf("volume: close: %w", err)
		}
	}
	s.releaseFiles()
	return err
}

// abandon simulates a crash for tests: files and the lock are released,
// nothing is flushed or written.
func (s *Store) abandon() {
	s.closeOnce.Do(func() {
		s.cancel()
		if !s.ro {
			close(s.stop)
		}
		<-s.bgDone
		s.releaseFiles()
		s.closeErr = ErrClosed
	})
}

// background writes snapshots when enough has been appended or on the
// timer when something changed.
func (s *Store) background() {
	defer close(s.bgDone)
	t := time.NewTicker(s.snapInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.kick:
		case <-t.C:
		}
		if err := s.writeSnapshot(); err != nil && !errors.Is(err, ErrClosed) {
			s.log.Warn("background snapshot failed", "err", err)
		}
	}
}

func (s *Store) kickSnapshot() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// syncDir makes a file creation, rename or removal in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// createVolume makes vol-NNNNNN.dat holding only its header, durably: the
// header is written to a temporary file that is fsynced and renamed, and the
// directory is fsynced, so a volume file never exists without a whole
// header.
func (s *Store) createVolume(num uint32) (*volume, error) {
	path := filepath.Join(s.dir, volName(num))
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*volume, error) {
		f.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("volume: create %s: %w", volName(num), err)
	}
	if _, err := f.WriteAt(encodeVolHeader(num, 0), 0); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	s.fsyncs.Add(1)
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	if err := syncDir(s.dir); err != nil {
		f.Close()
		return nil, fmt.Errorf("volume: create %s: %w", volName(num), err)
	}
	v := &volume{num: num, path: path, f: f, size: volHeaderSize, deadLo: noDead}
	v.refs.Store(1)
	return v, nil
}

func (s *Store) checkOpen() error {
	if s.closed {
		return ErrClosed
	}
	return nil
}
