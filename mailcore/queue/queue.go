package queue

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/govhub/govhub/internal/sqldb"
	"github.com/govhub/govhub/mailcore"
	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
)

// Recipient states in queue_recipients.status.
const (
	stQueued    = 0 // waiting for (another) attempt
	stDelivered = 1
	stFailed    = 2 // failed for good; its bounce is not sent yet
	stBounced   = 3 // failed and bounced, or no bounce due (null sender)
)

// TLSMode is the TLS policy for delivery to one domain's MX hosts.
type TLSMode string

const (
	// TLSOpportunistic (the default, RFC 7435): STARTTLS when the server
	// offers it, without checking its certificate, and plain text
	// otherwise. It defeats passive eavesdropping, not an active attacker.
	TLSOpportunistic TLSMode = "opportunistic"
	// TLSRequired: STARTTLS with a certificate valid for the MX host name
	// (checked against Config.RootCAs or the system pool). A server
	// without STARTTLS, or with a bad certificate, is a temporary failure:
	// the message waits rather than travel in clear.
	TLSRequired TLSMode = "required"
)

// SmarthostTLS is how the queue talks to the smarthost.
type SmarthostTLS string

const (
	// SmarthostSTARTTLS (the default): STARTTLS is required and the
	// certificate must be valid for the smarthost's host name.
	SmarthostSTARTTLS SmarthostTLS = "starttls"
	// SmarthostImplicitTLS: TLS from the first byte (port 465, RFC 8314).
	SmarthostImplicitTLS SmarthostTLS = "tls"
	// SmarthostPlain: no TLS, for a relay on a trusted segment. Credentials
	// are refused with it: they would travel in clear.
	SmarthostPlain SmarthostTLS = "none"
)

// Resolver is the DNS the queue needs; *net.Resolver satisfies it. Tests
// inject a fake so that no delivery depends on the real DNS.
type Resolver interface {
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// Dialer opens TCP connections; *net.Dialer satisfies it. Tests inject one
// that points every address at an in-process SMTP server.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// Config configures a Queue. The zero value (with Store given to New)
// delivers directly to MX hosts with opportunistic TLS.
type Config struct {
	// Hostname is this MTA's name: EHLO, Reporting-MTA of bounces and the
	// bounce's From domain. Empty means os.Hostname().
	Hostname string
	// Port is the SMTP port of MX hosts; zero means 25. Tests change it.
	Port int

	// Smarthost, when set (host:port), receives every remote message
	// instead of the recipients' MX hosts.
	Smarthost     string
	SmarthostTLS  SmarthostTLS
	SmarthostUser string // AUTH PLAIN when set
	SmarthostPass string

	// TLSPolicy maps a recipient domain (lower-case) to its TLS mode;
	// domains not in it get TLSOpportunistic.
	TLSPolicy map[string]TLSMode
	// RootCAs verifies certificates where verification is required; nil
	// means the system pool.
	RootCAs *x509.CertPool

	// Backoff is the wait after the 1st, 2nd, ... temporary failure; the
	// last entry repeats. Nil means 5m, 15m, 30m, 1h, 2h, 4h.
	Backoff []time.Duration
	// RetryFor is how long a message may stay queued before its remaining
	// recipients bounce; zero means 5 days.
	RetryFor time.Duration

	// DKIMKeyDir holds one RSA key per signing domain (<domain>.pem,
	// generated on first use). Empty disables signing.
	DKIMKeyDir string
	// DKIMSelector is the selector of every domain's key; empty means
	// "govhub".
	DKIMSelector string

	// Concurrency bounds simultaneous deliveries of one Queue; zero means 8.
	Concurrency int
	// Batch bounds how many recipients one claim takes; zero means 200.
	Batch int
	// ClaimFor is how long a claim protects rows from other workers; a
	// worker that crashed loses them after it. Zero means 15 minutes. It
	// must exceed AttemptTimeout.
	ClaimFor time.Duration
	// AttemptTimeout bounds one delivery attempt (one message to one
	// domain); zero means 10 minutes.
	AttemptTimeout time.Duration
	// PollInterval is how often Run looks for due rows when not woken by
	// an Enqueue of this process; zero means 5 seconds.
	PollInterval time.Duration

	Resolver Resolver // nil means net.DefaultResolver
	Dialer   Dialer   // nil means a net.Dialer with a 30 s timeout
	// Registerer receives the queue's metrics; nil means none.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Now is the clock for schedules and expiry; nil means time.Now.
	Now func() time.Time
}

// DefaultBackoff is the retry schedule when Config.Backoff is nil.
var DefaultBackoff = []time.Duration{5 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour}

// Validate reports configuration that cannot work.
func (c *Config) Validate() error {
	if c.Smarthost != "" {
		if _, _, err := net.SplitHostPort(c.Smarthost); err != nil {
			return fmt.Errorf("queue: smarthost %q: want host:port", c.Smarthost)
		}
		switch c.SmarthostTLS {
		case "", SmarthostSTARTTLS, SmarthostImplicitTLS:
		case SmarthostPlain:
			if c.SmarthostUser != "" {
				return errors.New("queue: smarthost credentials need TLS (smarthost_tls starttls or tls)")
			}
		default:
			return fmt.Errorf("queue: smarthost TLS %q: want starttls, tls or none", c.SmarthostTLS)
		}
	}
	for d, m := range c.TLSPolicy {
		if m != TLSOpportunistic && m != TLSRequired {
			return fmt.Errorf("queue: TLS policy for %s: %q, want opportunistic or required", d, m)
		}
	}
	for _, b := range c.Backoff {
		if b <= 0 {
			return errors.New("queue: backoff entries must be positive")
		}
	}
	if c.RetryFor < 0 {
		return errors.New("queue: negative retry period")
	}
	if c.ClaimFor != 0 && c.AttemptTimeout != 0 && c.ClaimFor <= c.AttemptTimeout {
		return errors.New("queue: claim period must exceed the attempt timeout")
	}
	return nil
}

// Queue is the outbound delivery queue over a mail store's database and
// blob store. Several Queues, in one process or many, may share a database.
type Queue struct {
	store *mailcore.Store
	db    *sqldb.DB
	blobs mailcore.BlobStore
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	// worker names this Queue's claims.
	worker string
	kick   chan struct{}
	dkim   *dkimKeys
	m      *metrics
}

// ErrNotFound: no queued message with that id.
var ErrNotFound = mailcore.ErrNotFound

// errBlobPurging: the blob row for these bytes is being purged or its
// body was deleted under us; store the body again and retry.
var errBlobPurging = errors.New("blob is being purged")

// New returns a Queue. It does not start delivering; call Run.
func New(store *mailcore.Store, cfg Config) (*Queue, error) {
	if store == nil {
		return nil, errors.New("queue: New needs a store")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Hostname == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "localhost"
		}
		cfg.Hostname = h
	}
	cfg.Hostname = strings.ToLower(strings.TrimSuffix(cfg.Hostname, "."))
	if cfg.Port == 0 {
		cfg.Port = 25
	}
	if cfg.SmarthostTLS == "" {
		cfg.SmarthostTLS = SmarthostSTARTTLS
	}
	policy := make(map[string]TLSMode, len(cfg.TLSPolicy))
	for d, m := range cfg.TLSPolicy {
		policy[strings.ToLower(strings.TrimSuffix(d, "."))] = m
	}
	cfg.TLSPolicy = policy
	if cfg.Backoff == nil {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.RetryFor == 0 {
		cfg.RetryFor = 5 * 24 * time.Hour
	}
	if cfg.DKIMSelector == "" {
		cfg.DKIMSelector = "govhub"
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 8
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 200
	}
	if cfg.AttemptTimeout == 0 {
		cfg.AttemptTimeout = 10 * time.Minute
	}
	if cfg.ClaimFor == 0 {
		cfg.ClaimFor = max(15*time.Minute, cfg.AttemptTimeout+5*time.Minute)
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 5 * time.Second
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	if cfg.Dialer == nil {
		cfg.Dialer = &net.Dialer{Timeout: 30 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var b [8]byte
	rand.Read(b[:])
	q := &Queue{
		store:  store,
		db:     store.DB(),
		blobs:  store.Blobs(),
		cfg:    cfg,
		now:    cfg.Now,
		worker: cfg.Hostname + "/" + hex.EncodeToString(b[:]),
		kick:   make(chan struct{}, 1),
	}
	q.log = log.With("component", "queue", "worker", q.worker)
	if cfg.DKIMKeyDir != "" {
		q.dkim = &dkimKeys{dir: cfg.DKIMKeyDir, selector: cfg.DKIMSelector, keys: map[string]*dkimKey{}}
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	q.m = m
	return q, nil
}

func (q *Queue) unix() int64 { return q.now().Unix() }

// wake tells this process's Run loop that rows may be due.
func (q *Queue) wake() {
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// splitAddress checks an envelope address and returns it with its domain
// lower-cased. The local part keeps its case: RFC 5321 2.4 leaves it to the
// receiving host.
func splitAddress(addr string) (string, string, error) {
	addr = strings.TrimSpace(addr)
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 || len(addr) > 254 || at > 64 {
		return "", "", fmt.Errorf("%w: %q", mailcore.ErrInvalidAddress, addr)
	}
	for _, r := range addr {
		if r <= ' ' || r == 0x7f || r == '<' || r == '>' {
			return "", "", fmt.Errorf("%w: %q", mailcore.ErrInvalidAddress, addr)
		}
	}
	domain := strings.ToLower(strings.TrimSuffix(addr[at+1:], "."))
	if domain == "" || strings.ContainsAny(domain, "/\\") {
		return "", "", fmt.Errorf("%w: %q", mailcore.ErrInvalidAddress, addr)
	}
	return addr[:at] + "@" + domain, domain, nil
}

// Enqueue queues raw for delivery from the envelope sender from ("" is the
// null sender <>, used for bounces, which are never bounced themselves) to
// rcpts. When it returns nil the body is durable in the blob store and the
// queue rows and the body's reference are committed in one transaction, so
// the caller may answer 250.
func (q *Queue) Enqueue(ctx context.Context, from string, rcpts []string, raw []byte) error {
	if from != "" {
		f, _, err := splitAddress(from)
		if err != nil {
			return fmt.Errorf("queue: sender: %w", err)
		}
		from = f
	}
	type rc struct{ addr, domain string }
	var list []rc
	seen := map[string]bool{}
	for _, r := range rcpts {
		a, d, err := splitAddress(r)
		if err != nil {
			return fmt.Errorf("queue: recipient: %w", err)
		}
		key := strings.ToLower(a)
		if seen[key] {
			continue
		}
		seen[key] = true
		list = append(list, rc{a, d})
	}
	if len(list) == 0 {
		return errors.New("queue: no recipients")
	}
	id := mailcore.BlobIDOf(raw)
	// As mailcore's Deliver: a purge of these very bytes may be in flight;
	// wait until its row is gone, then store the body again.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := q.blobs.Put(ctx, id, raw); err != nil {
			return fmt.Errorf("queue: store body: %w", err)
		}
		var qid int64
		err := q.db.InTx(ctx, func(tx *sqlx.Tx) error {
			blobRow, err := q.refBlob(ctx, tx, id, int64(len(raw)))
			if err != nil {
				return err
			}
			now := q.unix()
			if err := tx.GetContext(ctx, &qid, q.db.Rebind(`INSERT INTO queue_messages (blob_id, sender, size, created_at) VALUES (?, ?, ?, ?) RETURNING id`),
				blobRow, from, len(raw), now); err != nil {
				return fmt.Errorf("insert queue message: %w", err)
			}
			per := q.db.MaxParams() / 4
			for start := 0; start < len(list); start += per {
				part := list[start:min(start+per, len(list))]
				var sb strings.Builder
				args := make([]any, 0, 4*len(part))
				sb.WriteString(`INSERT INTO queue_recipients (queue_id, rcpt, domain, next_attempt_at) VALUES `)
				for i, r := range part {
					if i > 0 {
						sb.WriteByte(',')
					}
					sb.WriteString(`(?, ?, ?, ?)`)
					args = append(args, qid, r.addr, r.domain, now)
				}
				if _, err := tx.ExecContext(ctx, q.db.Rebind(sb.String()), args...); err != nil {
					return fmt.Errorf("insert queue recipients: %w", err)
				}
			}
			return nil
		})
		if err == nil {
			q.m.depth.Add(float64(len(list)))
			q.log.Info("queued", "queue_id", qid, "recipients", len(list), "size", len(raw))
			q.wake()
			return nil
		}
		if !errors.Is(err, errBlobPurging) {
			return fmt.Errorf("queue: enqueue: %w", err)
		}
		if err := q.waitPurge(ctx, id, deadline); err != nil {
			return err
		}
	}
}

// refBlob takes one reference on the blobs row of id, creating it if need
// be, exactly as mailcore's delivery does (lock order: blobs before the
// rows that point at it).
func (q *Queue) refBlob(ctx context.Context, tx *sqlx.Tx, id mailcore.BlobID, size int64) (int64, error) {
	var blob struct {
		ID   int64 `db:"id"`
		Refs int64 `db:"refs"`
	}
	err := tx.GetContext(ctx, &blob, q.db.Rebind(`INSERT INTO blobs (sha, size, refs, state, dead_at) VALUES (?, ?, 1, 0, NULL)
		ON CONFLICT (sha) DO UPDATE SET refs = blobs.refs + 1, dead_at = NULL
		WHERE blobs.state = 0 RETURNING id, refs`), id[:], size)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, errBlobPurging // state = 1: purging
	}
	if err != nil {
		return 0, fmt.Errorf("blob row: %w", err)
	}
	if blob.Refs == 1 {
		// The row is new or was at zero: a purge may have deleted the body
		// after our Put. The row is ours until commit, so no purge can
		// start on it now; if the body is gone, store it again.
		ok, err := q.blobs.Has(ctx, id)
		if err != nil {
			return 0, fmt.Errorf("check body: %w", err)
		}
		if !ok {
			return 0, errBlobPurging
		}
	}
	return blob.ID, nil
}

// waitPurge waits until no purging row for id is left.
func (q *Queue) waitPurge(ctx context.Context, id mailcore.BlobID, deadline time.Time) error {
	for {
		if time.Now().After(deadline) {
			return fmt.Errorf("queue: body %s stuck in purge", id)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		var n int
		if err := q.db.X.GetContext(ctx, &n, q.db.Rebind(`SELECT COUNT(*) FROM blobs WHERE sha = ? AND state = 1`), id[:]); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
	}
}

// forUpdate is the row-lock suffix of read-modify-write selects on
// PostgreSQL; SQLite's write transactions are exclusive already.
func (q *Queue) forUpdate() string {
	if q.db.Dialect == sqldb.Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// finishIfDone deletes message qid's rows and releases its blob reference
// when no recipient is left waiting (status 0) or waiting for its bounce
// (status 2). It runs inside tx, which must hold the queue_messages row lock
// taken by lockMessage, so two workers finishing two domains of one message
// cannot both miss the last step.
func (q *Queue) finishIfDone(ctx context.Context, tx *sqlx.Tx, qid int64) (bool, error) {
	var open int
	if err := tx.GetContext(ctx, &open, q.db.Rebind(`SELECT COUNT(*) FROM queue_recipients WHERE queue_id = ? AND status IN (0, 2)`), qid); err != nil {
		return false, err
	}
	if open > 0 {
		return false, nil
	}
	return q.dropTx(ctx, tx, qid)
}

// lockMessage locks the queue_messages row of qid for the rest of tx and
// reports whether it still exists.
func (q *Queue) lockMessage(ctx context.Context, tx *sqlx.Tx, qid int64) (bool, error) {
	var id int64
	err := tx.GetContext(ctx, &id, q.db.Rebind(`SELECT id FROM queue_messages WHERE id = ?`+q.forUpdate()), qid)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// dropTx deletes a message's queue rows and releases its body reference; a
// body left with none is marked dead for the purge, as Expunge does.
func (q *Queue) dropTx(ctx context.Context, tx *sqlx.Tx, qid int64) (bool, error) {
	if _, err := tx.ExecContext(ctx, q.db.Rebind(`DELETE FROM queue_recipients WHERE queue_id = ?`), qid); err != nil {
		return false, err
	}
	var blobID int64
	err := tx.GetContext(ctx, &blobID, q.db.Rebind(`DELETE FROM queue_messages WHERE id = ? RETURNING blob_id`), qid)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	_, err = tx.ExecContext(ctx, q.db.Rebind(`UPDATE blobs SET refs = refs - 1, dead_at = CASE WHEN refs - 1 <= 0 THEN CAST(? AS BIGINT) ELSE NULL END WHERE id = ?`),
		q.unix(), blobID)
	return err == nil, err
}

// ListOptions filters List.
type ListOptions struct {
	// Domain and Sender keep messages with a recipient in that domain, or
	// from that sender; empty matches all.
	Domain string
	Sender string
	// AfterID pages: only messages with a larger id. Limit bounds the
	// page; zero means 100.
	AfterID int64
	Limit   int
}

// Item is one queued message as `govhub queue list` shows it.
type Item struct {
	ID         int64           `json:"id"`
	Sender     string          `json:"sender"` // "" = null sender (a bounce)
	Size       int64           `json:"size"`
	CreatedAt  time.Time       `json:"created_at"`
	Recipients []ItemRecipient `json:"recipients"`
}

// ItemRecipient is one recipient of an Item.
type ItemRecipient struct {
	Address     string    `json:"address"`
	Status      string    `json:"status"` // queued, delivered, failed, bounced
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"next_attempt"`
	LastError   string    `json:"last_error,omitempty"`
}

var statusNames = map[int]string{stQueued: "queued", stDelivered: "delivered", stFailed: "failed", stBounced: "bounced"}

// List returns queued messages in id order.
func (q *Queue) List(ctx context.Context, opts ListOptions) ([]Item, error) {
	if opts.Limit <= 0 || opts.Limit > 10000 {
		opts.Limit = 100
	}
	query := `SELECT id, sender, size, created_at FROM queue_messages m WHERE id > ?`
	args := []any{opts.AfterID}
	if opts.Sender != "" {
		query += ` AND sender = ?`
		args = append(args, opts.Sender)
	}
	if opts.Domain != "" {
		query += ` AND EXISTS (SELECT 1 FROM queue_recipients r WHERE r.queue_id = m.id AND r.domain = ?)`
		args = append(args, strings.ToLower(opts.Domain))
	}
	query += ` ORDER BY id LIMIT ?`
	args = append(args, opts.Limit)
	var rows []struct {
		ID        int64  `db:"id"`
		Sender    string `db:"sender"`
		Size      int64  `db:"size"`
		CreatedAt int64  `db:"created_at"`
	}
	if err := q.db.X.SelectContext(ctx, &rows, q.db.Rebind(query), args...); err != nil {
		return nil, fmt.Errorf("queue: list: %w", err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	items := make([]Item, len(rows))
	byID := map[int64]*Item{}
	ids := make([]int64, len(rows))
	for i, r := range rows {
		items[i] = Item{ID: r.ID, Sender: r.Sender, Size: r.Size, CreatedAt: time.Unix(r.CreatedAt, 0)}
		byID[r.ID] = &items[i]
		ids[i] = r.ID
	}
	rq, rargs, err := sqlx.In(`SELECT queue_id, rcpt, status, attempts, next_attempt_at, last_error FROM queue_recipients WHERE queue_id IN (?) ORDER BY id`, ids)
	if err != nil {
		return nil, err
	}
	var rcpts []struct {
		QueueID  int64  `db:"queue_id"`
		Rcpt     string `db:"rcpt"`
		Status   int    `db:"status"`
		Attempts int    `db:"attempts"`
		Next     int64  `db:"next_attempt_at"`
		LastErr  string `db:"last_error"`
	}
	if err := q.db.X.SelectContext(ctx, &rcpts, q.db.Rebind(rq), rargs...); err != nil {
		return nil, fmt.Errorf("queue: list: %w", err)
	}
	for _, r := range rcpts {
		it := byID[r.QueueID]
		it.Recipients = append(it.Recipients, ItemRecipient{Address: r.Rcpt, Status: statusNames[r.Status], Attempts: r.Attempts,
			NextAttempt: time.Unix(r.Next, 0), LastError: r.LastErr})
	}
	return items, nil
}

// Retry makes every waiting recipient of message id due now.
func (q *Queue) Retry(ctx context.Context, id int64) error {
	var n int
	if err := q.db.X.GetContext(ctx, &n, q.db.Rebind(`SELECT COUNT(*) FROM queue_messages WHERE id = ?`), id); err != nil {
		return fmt.Errorf("queue: retry: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("%w: queued message %d", ErrNotFound, id)
	}
	if _, err := q.db.X.ExecContext(ctx, q.db.Rebind(`UPDATE queue_recipients SET next_attempt_at = ? WHERE queue_id = ? AND status IN (0, 2)`), q.unix(), id); err != nil {
		return fmt.Errorf("queue: retry: %w", err)
	}
	q.wake()
	return nil
}

// Delete drops message id from the queue and releases its body reference,
// without a bounce. An attempt already in flight may still complete.
func (q *Queue) Delete(ctx context.Context, id int64) error {
	var found bool
	var waiting int
	err := q.db.InTx(ctx, func(tx *sqlx.Tx) error {
		ok, err := q.lockMessage(ctx, tx, id)
		if err != nil || !ok {
			found = false
			return err
		}
		if err := tx.GetContext(ctx, &waiting, q.db.Rebind(`SELECT COUNT(*) FROM queue_recipients WHERE queue_id = ? AND status IN (0, 2)`), id); err != nil {
			return err
		}
		found, err = q.dropTx(ctx, tx, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("queue: delete: %w", err)
	}
	if !found {
		return fmt.Errorf("%w: queued message %d", ErrNotFound, id)
	}
	q.m.depth.Sub(float64(waiting))
	q.log.Info("deleted from queue", "queue_id", id)
	return nil
}
