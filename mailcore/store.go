package mailcore

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/govhub/govhub/internal/sqldb"
	"github.com/prometheus/client_golang/prometheus"
)

// Options configures a Store.
type Options struct {
	DB    *sqldb.DB
	Blobs BlobStore
	// DefaultQuota applies to accounts created without one; zero means
	// DefaultQuota (1 GiB).
	DefaultQuota int64
	// MaxMessageSize bounds one delivered or appended message; zero means
	// 50 MiB.
	MaxMessageSize int64
	// MaxBatch bounds how many deliveries share one transaction; zero
	// means 128.
	MaxBatch int
	// Committers is how many transactions may be in flight at once. SQLite
	// has one writer, so its default is 1; PostgreSQL's is 4, which keeps
	// the server busy while one batch waits for its commit.
	Committers int
	Logger     *slog.Logger
	// Metrics registers the store's Prometheus series; nil: not exported.
	Metrics prometheus.Registerer
	// Now is the clock; nil means time.Now. Tests inject it to drive grace
	// periods.
	Now func() time.Time
}

// Store is the mail store: SQL rows plus a BlobStore. It is safe for
// concurrent use; several processes may share one PostgreSQL database.
type Store struct {
	db       *sqldb.DB
	blobs    BlobStore
	log      *slog.Logger
	now      func() time.Time
	quota    int64
	maxSize  int64
	maxBatch int

	stmts     stmtCache
	metrics   *storeMetrics
	commits   chan *commitReq
	stop      chan struct{}
	stopped   chan struct{} // closed once every committer has exited
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// Open returns a Store over an already-migrated database.
func Open(opts Options) (*Store, error) {
	if opts.DB == nil || opts.Blobs == nil {
		return nil, errors.New("mailcore: Open needs a DB and a BlobStore")
	}
	s := &Store{
		db:       opts.DB,
		blobs:    opts.Blobs,
		log:      opts.Logger,
		now:      opts.Now,
		quota:    opts.DefaultQuota,
		maxSize:  opts.MaxMessageSize,
		maxBatch: opts.MaxBatch,
		commits:  make(chan *commitReq, 1024),
		stop:     make(chan struct{}),
		stopped:  make(chan struct{}),
		metrics:  newStoreMetrics(opts.Metrics),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "store")
	if s.now == nil {
		s.now = time.Now
	}
	if s.quota == 0 {
		s.quota = DefaultQuota
	}
	if s.maxSize == 0 {
		s.maxSize = 50 << 20
	}
	if s.maxBatch == 0 {
		s.maxBatch = 128
	}
	n := opts.Committers
	if n == 0 {
		n = 1
		if s.db.Dialect == "postgres" {
			n = 4
		}
	}
	for i := 0; i < n; i++ {
		s.wg.Add(1)
		go s.committer()
	}
	return s, nil
}

// Close stops the group committer after the deliveries already submitted.
// It does not close the DB or the BlobStore, which the caller opened.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		s.wg.Wait()
		close(s.stopped)
		s.stmts.close()
	})
	return nil
}

// DB returns the metadata database.
func (s *Store) DB() *sqldb.DB { return s.db }

// Blobs returns the blob store.
func (s *Store) Blobs() BlobStore { return s.blobs }

func (s *Store) unix() int64 { return s.now().Unix() }

// ctxOK is a helper for loops that must stop when ctx ends.
func ctxOK(ctx context.Context) error { return ctx.Err() }
