package search

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/govhub/govhub/internal/sqldb"
	"github.com/govhub/govhub/mailcore"
	"github.com/govhub/govhub/mailcore/envelope"
	"github.com/jmoiron/sqlx"
)

// Config tunes an Index. Every zero field has a default that works on one
// machine.
type Config struct {
	Logger *slog.Logger
	// PollInterval is how often Run looks for new and purged bodies; zero
	// means 2s. SEARCH does not wait for it: MatchUIDs catches up first.
	PollInterval time.Duration
	// MaxTextBytes caps the decoded text indexed per body; zero means
	// 256 KiB. Text beyond it is not searchable.
	MaxTextBytes int
	// BatchSize is how many bodies are indexed per transaction; zero
	// means 100. On SQLite a batch holds the one write lock (deliveries
	// wait) for roughly BatchSize x 0.2 ms.
	BatchSize int
	// MaxAttempts is how many passes may fail to read a body (for a reason
	// other than its being missing or corrupt) before it is indexed from
	// its headers alone and never tried again; zero means 5.
	MaxAttempts int
	// Now is the clock for indexed_at; nil means time.Now.
	Now func() time.Time
}

// Status values of search_indexed rows.
const (
	statusOK         = 0 // indexed from the body
	statusUnreadable = 1 // body missing or corrupt in the BlobStore
	statusGaveUp     = 2 // body reads failed MaxAttempts times
)

// maxHeadBytes caps the header text (subject, names, addresses) indexed per
// body: a message to 10,000 recipients has a To: field of hundreds of KiB,
// and the first addresses are the ones worth finding it by.
const maxHeadBytes = 16 << 10

// maxDocBytes caps the tokens of one body, estimated as PostgreSQL stores
// them in a tsvector without positions (4-byte entry + lexeme per distinct
// token). A tsvector must stay under 1 MiB; 256 KiB of distinct CJK text
// can come close, so tokens past the cap are dropped (the start of a body
// stays searchable).
const maxDocBytes = 900_000

// deadSlack is how far back each pass re-reads blobs.dead_at: a transaction
// that stamped a body dead may commit a little after a later one (clocks of
// different nodes, PostgreSQL commit order), and re-marking is idempotent.
const deadSlack = 10 * 60

// Index is the full-text index of message bodies. It is safe for concurrent
// use, and several processes may index into one PostgreSQL database at once.
type Index struct {
	store *mailcore.Store
	db    *sqldb.DB
	blobs mailcore.BlobStore
	log   *slog.Logger
	cfg   Config

	// mu guards low, waiting and failures. Indexing calls run concurrently
	// (Run and SEARCHes); between them, and between processes, the
	// search_indexed primary key decides who writes a body.
	mu sync.Mutex
	// removeMu serialises removal passes, which own deadSince and swept.
	removeMu sync.Mutex
	// low: every blob row with id <= low is indexed or gone, so the scan
	// for new bodies starts above it. It starts at 0 (the first pass is a
	// full anti-join) and is not persisted.
	low int64
	// waiting (PostgreSQL): ids up to maxID may still be committed by
	// transactions running when they were seen; low moves to maxID once a
	// snapshot's xmin passes xmax (every such transaction has ended).
	waiting []horizon
	// failures counts failed reads per blob row id.
	failures map[int64]int
	// deadSince is the blobs.dead_at from which the next pass marks
	// indexed bodies dead; -1 until the first pass.
	deadSince int64
	// swept: the full orphan sweep (index rows whose blob row is gone,
	// e.g. purged while no indexer ran) has run in this process.
	swept bool
}

type horizon struct{ maxID, xmax int64 }

// New returns an Index over the store's database and blob store, creating
// the engine-specific index table if it does not exist yet (the portable
// bookkeeping table comes from migration 00004_search.sql, which must have
// been applied). It does not start indexing: call Run (in a goroutine) or
// CatchUp.
func New(store *mailcore.Store, cfg Config) (*Index, error) {
	if store == nil {
		return nil, errors.New("search: New needs a store")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 2 * time.Second
	}
	if cfg.MaxTextBytes <= 0 {
		cfg.MaxTextBytes = 256 << 10
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 100
	}
	// Each body of a batch binds three parameters in one statement.
	cfg.BatchSize = min(cfg.BatchSize, store.DB().MaxParams()/3-1)
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ix := &Index{
		store:     store,
		db:        store.DB(),
		blobs:     store.Blobs(),
		log:       cfg.Logger.With("component", "search"),
		cfg:       cfg,
		failures:  map[int64]int{},
		deadSince: -1,
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := ix.createSchema(ctx); err != nil {
		return nil, err
	}
	return ix, nil
}

// createSchema creates the engine's index table. The statements are
// idempotent; on PostgreSQL an advisory lock keeps nodes starting together
// from racing on the catalog (CREATE ... IF NOT EXISTS is not atomic there).
func (ix *Index) createSchema(ctx context.Context) error {
	var n int
	if err := ix.db.X.GetContext(ctx, &n, `SELECT COUNT(*) FROM search_indexed WHERE blob_id = 0`); err != nil {
		return fmt.Errorf("search: bookkeeping table missing (is migration 00004_search applied?): %w", err)
	}
	if ix.db.Dialect == sqldb.Postgres {
		return ix.db.InTx(ctx, func(tx *sqlx.Tx) error {
			stmts := []string{
				`SELECT pg_advisory_xact_lock(7420194303)`,
				// Lexemes are the tokens themselves (array_to_tsvector does
				// no parsing or stemming); header tokens carry a '#' prefix so
				// BODY can leave them out. No positions: adjacency is not
				// checked, and a stripped tsvector stays well under 1 MiB.
				`CREATE TABLE IF NOT EXISTS search_tsv (blob_id BIGINT PRIMARY KEY, tsv tsvector NOT NULL)`,
				`CREATE INDEX IF NOT EXISTS search_tsv_gin ON search_tsv USING GIN (tsv)`,
			}
			for _, q := range stmts {
				if _, err := tx.ExecContext(ctx, q); err != nil {
					return fmt.Errorf("search: create index table: %w", err)
				}
			}
			return nil
		})
	}
	// FTS5 over pre-tokenised text: the ascii tokenizer splits only on ASCII
	// non-alphanumerics (our separator is a space) and keeps every non-ASCII
	// character, so CJK unigrams and bigrams survive as they were written.
	// contentless: the tokens are not stored twice; contentless_delete lets
	// purged bodies be removed by rowid (the blobs row id); detail=column
	// keeps which column a token is in (TEXT vs BODY) but no positions.
	_, err := ix.db.X.ExecContext(ctx, `CREATE VIRTUAL TABLE IF NOT EXISTS search_fts USING fts5(head, body, content='', contentless_delete=1, detail=column, tokenize='ascii')`)
	if err != nil {
		return fmt.Errorf("search: create FTS5 table (is FTS5 compiled into the SQLite driver?): %w", err)
	}
	return nil
}

// doc is one body ready to write.
type doc struct {
	blobID    int64
	head      []string
	body      []string
	status    int
	textBytes int
}

// buildDoc reads and tokenises one body. A body missing from or corrupt in
// the BlobStore is indexed empty (statusUnreadable) rather than retried:
// no later read will succeed. Any other read error is returned for a retry.
func (ix *Index) buildDoc(ctx context.Context, blobID int64, sha []byte) (doc, error) {
	d := doc{blobID: blobID}
	var id mailcore.BlobID
	copy(id[:], sha)
	raw, err := ix.blobs.Get(ctx, id)
	if errors.Is(err, mailcore.ErrBlobNotFound) || errors.Is(err, mailcore.ErrBlobCorrupt) {
		d.status = statusUnreadable
		return d, nil
	}
	if err != nil {
		return d, err
	}
	// envelope never fails: malformed mail yields what could be read.
	env := envelope.Parse(raw)
	text := envelope.Text(raw, ix.cfg.MaxTextBytes)
	d.textBytes = len(text)
	var hb strings.Builder
	hb.WriteString(env.Subject)
	for _, list := range [][]envelope.Address{env.From, env.Sender, env.ReplyTo, env.To, env.Cc} {
		for _, a := range list {
			if hb.Len() >= maxHeadBytes {
				break
			}
			hb.WriteByte('\n')
			hb.WriteString(a.Name)
			hb.WriteByte(' ')
			hb.WriteString(a.Addr)
		}
	}
	budget := maxDocBytes
	d.head = capTokens(Tokens(hb.String()), &budget)
	d.body = capTokens(Tokens(text), &budget)
	return d, nil
}

// capTokens keeps the tokens that fit the budget (see maxDocBytes).
func capTokens(toks []string, budget *int) []string {
	for i, t := range toks {
		cost := len(t) + 6 // entry + '#' marker + separator
		if cost > *budget {
			return toks[:i]
		}
		*budget -= cost
	}
	return toks
}

// writeDocs stores a batch of documents in one transaction of two
// statements: the bookkeeping rows are claimed for the bodies no other
// indexer got to first and whose blob row still exists (RETURNING says
// which), then the entries of exactly those are inserted. A body already at
// zero references is marked dead at once, so its purge is seen.
func (ix *Index) writeDocs(ctx context.Context, docs []doc) (int, error) {
	if len(docs) == 0 {
		return 0, nil
	}
	now := ix.cfg.Now().Unix()
	var claim strings.Builder
	claim.WriteString(`WITH v(id, status, text_bytes) AS (VALUES `)
	args := make([]any, 0, 3*len(docs)+1)
	for i, d := range docs {
		if i > 0 {
			claim.WriteString(", ")
		}
		claim.WriteString(`(CAST(? AS BIGINT), CAST(? AS SMALLINT), CAST(? AS BIGINT))`)
		args = append(args, d.blobID, d.status, d.textBytes)
	}
	// WHERE 1 = 1: SQLite needs a WHERE before ON CONFLICT in INSERT ...
	// SELECT, or it parses ON CONFLICT as a join constraint.
	claim.WriteString(`) INSERT INTO search_indexed (blob_id, dead, status, text_bytes, indexed_at)
		SELECT b.id, CASE WHEN b.refs = 0 THEN 1 ELSE 0 END, v.status, v.text_bytes, CAST(? AS BIGINT)
		FROM v JOIN blobs b ON b.id = v.id WHERE 1 = 1
		ON CONFLICT (blob_id) DO NOTHING RETURNING blob_id`)
	args = append(args, now)
	byID := make(map[int64]*doc, len(docs))
	for i := range docs {
		byID[docs[i].blobID] = &docs[i]
	}
	written := 0
	err := ix.db.InTx(ctx, func(tx *sqlx.Tx) error {
		var claimed []int64
		if err := tx.SelectContext(ctx, &claimed, ix.db.Rebind(claim.String()), args...); err != nil {
			return fmt.Errorf("search: claim bodies: %w", err)
		}
		written = len(claimed)
		if len(claimed) == 0 {
			return nil // indexed by another node, or purged meanwhile
		}
		var ins strings.Builder
		var iargs []any
		if ix.db.Dialect == sqldb.Postgres {
			ins.WriteString(`INSERT INTO search_tsv (blob_id, tsv) VALUES `)
		} else {
			ins.WriteString(`INSERT INTO search_fts (rowid, head, body) VALUES `)
		}
		for i, id := range claimed {
			d := byID[id]
			if i > 0 {
				ins.WriteString(", ")
			}
			if ix.db.Dialect == sqldb.Postgres {
				var sb strings.Builder
				for _, t := range d.body {
					sb.WriteString(t)
					sb.WriteByte(' ')
				}
				for _, t := range d.head {
					sb.WriteByte('#')
					sb.WriteString(t)
					sb.WriteByte(' ')
				}
				ins.WriteString(`(CAST(? AS BIGINT), array_to_tsvector(array_remove(string_to_array(CAST(? AS TEXT), ' '), '')))`)
				iargs = append(iargs, id, sb.String())
			} else {
				ins.WriteString(`(?, ?, ?)`)
				iargs = append(iargs, id, strings.Join(d.head, " "), strings.Join(d.body, " "))
			}
		}
		if _, err := tx.ExecContext(ctx, ix.db.Rebind(ins.String()), iargs...); err != nil {
			return fmt.Errorf("search: index bodies: %w", err)
		}
		return nil
	})
	return written, err
}

// deleteEntries removes the index entries and bookkeeping of bodies whose
// blob rows are gone.
func (ix *Index) deleteEntries(ctx context.Context, ids []int64) error {
	for _, part := range chunk(ids, 500) {
		err := ix.db.InTx(ctx, func(tx *sqlx.Tx) error {
			qs := []string{`DELETE FROM search_fts WHERE rowid IN (?)`, `DELETE FROM search_indexed WHERE blob_id IN (?)`}
			if ix.db.Dialect == sqldb.Postgres {
				qs[0] = `DELETE FROM search_tsv WHERE blob_id IN (?)`
			}
			for _, q := range qs {
				q, args, err := sqlx.In(q, part)
				if err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, ix.db.Rebind(q), args...); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("search: remove purged bodies: %w", err)
		}
	}
	return nil
}

func chunk[T any](xs []T, n int) [][]T {
	var out [][]T
	for len(xs) > n {
		out = append(out, xs[:n])
		xs = xs[n:]
	}
	if len(xs) > 0 {
		out = append(out, xs)
	}
	return out
}
