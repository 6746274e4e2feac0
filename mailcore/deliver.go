package mailcore

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"strings"
	"time"

	"github.com/govhub/govhub/mailcore/envelope"
	"github.com/jmoiron/sqlx"
)

// DeliverOptions tunes one delivery.
type DeliverOptions struct {
	// InternalDate is the IMAP internal date; zero means now.
	InternalDate time.Time
	// Flags and Keywords are set on every copy (APPEND, Sent copies).
	Flags    Flags
	Keywords []string
}

// delivery is one prepared Deliver call waiting for the group committer.
type delivery struct {
	id      BlobID
	size    int64
	row     messageRow
	rcpts   []Recipient
	results []DeliveryResult
	// needSync: the body was appended without waiting for stable storage;
	// the committer must Sync the blob store before committing.
	needSync bool
}

// messageRow holds the per-message columns shared by every recipient's row.
type messageRow struct {
	flags        Flags
	keywords     *string
	internalDate int64
	sentDate     int64
	from, to, cc string
	replyTo      *string
	subject      string
	messageID    string
	inReplyTo    string
	refs         *string
	threadID     int64
	preview      string
}

type commitReq struct {
	d    *delivery
	err  error
	done chan struct{}
}

// Deliver stores raw once and gives each recipient a message row, charging
// quota, in one transaction with an outbox event per recipient. It returns
// only after the body is durable in the BlobStore and the transaction has
// committed. Recipients are delivered independently: one over quota gets
// ErrQuotaExceeded in its result and the others land. The error return is
// for failures of the whole delivery (database down, message too large).
// Results come one per distinct recipient mailbox, in the order of first
// appearance in rcpts (a mailbox named twice gets one copy).
func (s *Store) Deliver(ctx context.Context, raw []byte, rcpts []Recipient, opts DeliverOptions) (res []DeliveryResult, err error) {
	start := time.Now()
	defer func() { s.metrics.observe(start, res, err) }()
	if int64(len(raw)) > s.maxSize {
		return nil, fmt.Errorf("%w: %d bytes > %d", ErrTooLarge, len(raw), s.maxSize)
	}
	d := s.prepare(raw, rcpts, opts)
	if len(d.rcpts) == 0 {
		return d.results, nil
	}
	// A purge of these very bytes may be in flight: wait until its row is
	// gone, then store them again. Purges are short (one batch of ids).
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := s.putBody(ctx, d, raw); err != nil {
			return nil, fmt.Errorf("mailcore: store body: %w", err)
		}
		err := s.submit(d)
		if !errors.Is(err, errBlobPurging) {
			if err != nil {
				return nil, err
			}
			return d.results, nil
		}
		for {
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("mailcore: body %s stuck in purge: %w", d.id, err)
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
			var n int
			if err := s.db.X.GetContext(ctx, &n, s.db.Rebind(`SELECT COUNT(*) FROM blobs WHERE sha = ? AND state = 1`), d.id[:]); err != nil {
				return nil, err
			}
			if n == 0 {
				break
			}
		}
	}
}

// putBody stores the body: appended now and made durable by the committer's
// Sync before the transaction commits, when the store can batch fsyncs;
// otherwise durable on return.
func (s *Store) putBody(ctx context.Context, d *delivery, raw []byte) error {
	if b, ok := s.blobs.(BlobBatcher); ok {
		d.needSync = true
		return b.Append(ctx, d.id, raw)
	}
	return s.blobs.Put(ctx, d.id, raw)
}

// prepare parses the envelope and dedupes recipients. It runs in the
// caller's goroutine so parsing and hashing use every core.
func (s *Store) prepare(raw []byte, rcpts []Recipient, opts DeliverOptions) *delivery {
	env := envelope.Parse(raw)
	d := &delivery{id: BlobIDOf(raw), size: int64(len(raw))}
	seen := make(map[int64]bool, len(rcpts))
	for _, r := range rcpts {
		if seen[r.MailboxID] {
			continue
		}
		seen[r.MailboxID] = true
		d.rcpts = append(d.rcpts, r)
	}
	idate := opts.InternalDate
	if idate.IsZero() {
		idate = s.now()
	}
	row := messageRow{
		flags:        opts.Flags & systemFlags,
		internalDate: idate.Unix(),
		from:         FormatAddresses(env.From),
		to:           FormatAddresses(env.To),
		cc:           FormatAddresses(env.Cc),
		subject:      clip(env.Subject, 1000),
		messageID:    clip(env.MessageID, 500),
		preview:      env.Preview,
	}
	if !env.Date.IsZero() {
		row.sentDate = env.Date.Unix()
	}
	if env.HasAttachment {
		row.flags |= FlagHasAttachment
	}
	if len(opts.Keywords) > 0 {
		k := strings.Join(opts.Keywords, " ")
		row.keywords = &k
	}
	if len(env.ReplyTo) > 0 {
		rt := FormatAddresses(env.ReplyTo)
		if rt != row.from {
			row.replyTo = &rt
		}
	}
	if len(env.InReplyTo) > 0 {
		row.inReplyTo = clip(env.InReplyTo[0], 500)
	}
	if len(env.References) > 0 {
		r := clip(strings.Join(env.References, " "), 4000)
		row.refs = &r
	}
	row.threadID = threadID(envelope.ThreadRoot(env), d.id)
	d.row = row
	return d
}

// threadID names a thread by a hash of its root message-id, so a reply is
// threaded without looking its parent up: messages that share References[0]
// (or, lacking References, In-Reply-To) share a thread.
func threadID(root string, id BlobID) int64 {
	h := fnv.New64a()
	if root != "" {
		h.Write([]byte(strings.ToLower(root)))
	} else {
		h.Write(id[:])
	}
	return int64(h.Sum64() & (1<<63 - 1))
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// submit hands d to the group committer and waits for its transaction. It
// does not give up when the caller's context ends: once submitted, the
// outcome must be known before the caller answers its client.
func (s *Store) submit(d *delivery) error {
	req := &commitReq{d: d, done: make(chan struct{})}
	select {
	case s.commits <- req:
	case <-s.stop:
		return ErrStoreClosed
	}
	select {
	case <-req.done:
		return req.err
	case <-s.stopped:
		// The committers have exited; they drain what was queued before
		// Close, but a send that raced Close may never be taken. Its body
		// may be stored; with no row it is an orphan the start-up sweep
		// removes, and the caller never acknowledged it.
		select {
		case <-req.done:
			return req.err
		default:
			return ErrStoreClosed
		}
	}
}

// committer runs deliveries in shared transactions: whatever is waiting
// when a transaction starts goes into it, up to MaxBatch. One transaction
// costs one commit fsync on SQLite, so concurrent deliveries share it.
func (s *Store) committer() {
	defer s.wg.Done()
	for {
		var first *commitReq
		select {
		case first = <-s.commits:
		case <-s.stop:
			// Drain what was submitted before Close.
			for {
				select {
				case r := <-s.commits:
					s.runBatch([]*commitReq{r})
				default:
					return
				}
			}
		}
		batch := []*commitReq{first}
		recipients := len(first.d.rcpts)
	fill:
		for len(batch) < s.maxBatch && recipients < 20000 {
			select {
			case r := <-s.commits:
				batch = append(batch, r)
				recipients += len(r.d.rcpts)
			default:
				break fill
			}
		}
		s.runBatch(batch)
	}
}

// runBatch commits a batch optimistically in one transaction. If one
// delivery fails with an error of its own, the transaction is rolled back,
// that delivery is failed alone, and the rest are run again.
func (s *Store) runBatch(batch []*commitReq) {
	ctx := context.Background()
	s.metrics.batch.Observe(float64(len(batch)))
	pending := batch
	// Make the batch's bodies durable, overlapping that fsync with the SQL
	// work; the transaction waits for it before committing.
	var synced chan error
	for _, r := range batch {
		if r.d.needSync {
			synced = make(chan error, 1)
			go func() { synced <- s.blobs.(BlobBatcher).Sync(ctx) }()
			break
		}
	}
	syncErr := func() error {
		if synced == nil {
			return nil
		}
		err := <-synced
		synced <- err // later attempts see the same outcome
		return err
	}
	for attempt := 0; len(pending) > 0; attempt++ {
		var culprit *commitReq
		err := s.db.InTx(ctx, func(tx *sqlx.Tx) error {
			culprit = nil
			for _, r := range pending {
				if err := s.applyDelivery(ctx, tx, r.d); err != nil {
					culprit = r
					return err
				}
			}
			if err := syncErr(); err != nil {
				return fmt.Errorf("make bodies durable: %w", err)
			}
			return nil
		})
		if err == nil {
			for _, r := range pending {
				close(r.done)
			}
			return
		}
		if culprit == nil || len(pending) == 1 || attempt > len(batch) {
			// The commit itself failed, or nothing is left to separate:
			// every delivery of the batch gets the error.
			for _, r := range pending {
				r.err = fmt.Errorf("mailcore: delivery transaction: %w", err)
				close(r.done)
			}
			return
		}
		culprit.err = err
		close(culprit.done)
		rest := pending[:0:0]
		for _, r := range pending {
			if r != culprit {
				rest = append(rest, r)
			}
		}
		pending = rest
	}
}

// applyDelivery writes one delivery's rows. Lock order, shared with expunge
// so PostgreSQL transactions do not deadlock: mailboxes, accounts, blobs,
// then messages and outbox.
func (s *Store) applyDelivery(ctx context.Context, tx *sqlx.Tx, d *delivery) error {
	now := s.unix()
	d.results = make([]DeliveryResult, len(d.rcpts))
	byMailbox := make(map[int64]int, len(d.rcpts))
	for i, r := range d.rcpts {
		d.results[i] = DeliveryResult{Recipient: r}
		byMailbox[r.MailboxID] = i
	}
	chunk := 500

	// 1. UIDs and modseqs, one statement per chunk of mailboxes. A mailbox
	// that does not exist (or belongs to another account) fails alone.
	mbIDs := make([]int64, len(d.rcpts))
	for i, r := range d.rcpts {
		mbIDs[i] = r.MailboxID
	}
	sort.Slice(mbIDs, func(i, j int) bool { return mbIDs[i] < mbIDs[j] })
	found := make([]bool, len(d.rcpts))
	for start := 0; start < len(mbIDs); start += chunk {
		part := mbIDs[start:min(start+chunk, len(mbIDs))]
		q, args, err := sqlx.In(`UPDATE mailboxes SET uidnext = uidnext + 1, highest_modseq = highest_modseq + 1
			WHERE id IN (?) RETURNING id, account_id, uidnext - 1, highest_modseq`, part)
		if err != nil {
			return err
		}
		st, err := s.stmt(ctx, tx, s.db.Rebind(q))
		if err != nil {
			return err
		}
		rows, err := st.QueryContext(ctx, args...)
		if err != nil {
			return fmt.Errorf("allocate uids: %w", err)
		}
		for rows.Next() {
			var id, acct, uid, modseq int64
			if err := rows.Scan(&id, &acct, &uid, &modseq); err != nil {
				rows.Close()
				return err
			}
			i := byMailbox[id]
			if d.rcpts[i].AccountID != acct {
				continue // not that account's mailbox: refused below
			}
			found[i] = true
			d.results[i].UID = uint32(uid)
			d.results[i].ModSeq = modseq
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	// 2. Quota, charged per account for as many copies as it receives.
	copies := map[int64]int64{}
	for i, r := range d.rcpts {
		if found[i] {
			copies[r.AccountID]++
		} else {
			d.results[i].Err = fmt.Errorf("%w: mailbox %d of account %d", ErrNotFound, r.MailboxID, r.AccountID)
		}
	}
	byCount := map[int64][]int64{}
	for acct, n := range copies {
		byCount[n] = append(byCount[n], acct)
	}
	charged := map[int64]bool{}
	for n, accts := range byCount {
		sort.Slice(accts, func(i, j int) bool { return accts[i] < accts[j] })
		cost := n * d.size
		for start := 0; start < len(accts); start += chunk {
			part := accts[start:min(start+chunk, len(accts))]
			q, args, err := sqlx.In(`UPDATE accounts SET used_bytes = used_bytes + ?
				WHERE id IN (?) AND (quota_bytes = 0 OR used_bytes + ? <= quota_bytes) RETURNING id`, cost, part, cost)
			if err != nil {
				return err
			}
			st, err := s.stmt(ctx, tx, s.db.Rebind(q))
			if err != nil {
				return err
			}
			var ok []int64
			if err := st.SelectContext(ctx, &ok, args...); err != nil {
				return fmt.Errorf("charge quota: %w", err)
			}
			for _, id := range ok {
				charged[id] = true
			}
		}
	}
	var okIdx []int
	for i, r := range d.rcpts {
		if !found[i] {
			continue
		}
		if !charged[r.AccountID] {
			d.results[i].Err = fmt.Errorf("%w: account %d", ErrQuotaExceeded, r.AccountID)
			d.results[i].UID = 0
			continue
		}
		okIdx = append(okIdx, i)
	}
	// 3. The blob row: one per body, refs += copies. A row with no copies
	// (every recipient refused) is born dead so the purge removes the body.
	var deadAt *int64
	if len(okIdx) == 0 {
		deadAt = &now
	}
	var blob struct {
		ID   int64 `db:"id"`
		Refs int64 `db:"refs"`
	}
	blobStmt, err := s.stmt(ctx, tx, s.db.Rebind(`INSERT INTO blobs (sha, size, refs, state, dead_at) VALUES (?, ?, ?, 0, ?)
		ON CONFLICT (sha) DO UPDATE SET refs = blobs.refs + excluded.refs,
			dead_at = CASE WHEN blobs.refs + excluded.refs > 0 THEN NULL ELSE blobs.dead_at END
		WHERE blobs.state = 0 RETURNING id, refs`))
	if err != nil {
		return err
	}
	err = blobStmt.GetContext(ctx, &blob, d.id[:], d.size, len(okIdx), deadAt)
	if err != nil {
		if isNoRows(err) {
			return errBlobPurging
		}
		return fmt.Errorf("blob row: %w", err)
	}
	blobRow := blob.ID
	if blob.Refs == int64(len(okIdx)) {
		// The row is new (or was at zero references): a purge of an earlier
		// row for these bytes may have deleted the body after our Put. The
		// row is now ours (locked until commit, or the SQLite write lock),
		// so no purge can start on it; if the body is gone, store it again.
		ok, err := s.blobs.Has(ctx, d.id)
		if err != nil {
			return fmt.Errorf("check body: %w", err)
		}
		if !ok {
			return errBlobPurging
		}
	}
	if len(okIdx) == 0 {
		return nil
	}
	// 4. Message rows and 5. outbox events, multi-row inserts.
	r := d.row
	const msgCols = 16
	per := min(chunk, s.db.MaxParams()/msgCols)
	for start := 0; start < len(okIdx); start += per {
		part := okIdx[start:min(start+per, len(okIdx))]
		var sb strings.Builder
		args := make([]any, 0, len(part)*msgCols)
		sb.WriteString(`INSERT INTO messages (mailbox_id, uid, modseq, blob_id, flags, keywords, internal_date, size, sent_date, from_addr, to_addr, cc_addr, reply_to, subject, message_id, in_reply_to, refs, thread_id, preview) VALUES `)
		for j, i := range part {
			if j > 0 {
				sb.WriteByte(',')
			}
			res := d.results[i]
			sb.WriteString(`(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
			args = append(args, res.MailboxID, res.UID, res.ModSeq, blobRow, r.flags, r.keywords, r.internalDate, d.size, r.sentDate,
				r.from, r.to, r.cc, r.replyTo, r.subject, r.messageID, r.inReplyTo, r.refs, r.threadID, r.preview)
		}
		if err := s.execCached(ctx, tx, sb.String(), args); err != nil {
			return fmt.Errorf("insert messages: %w", err)
		}
		sb.Reset()
		args = args[:0]
		sb.WriteString(`INSERT INTO outbox (kind, account_id, mailbox_id, uid, created_at) VALUES `)
		now := s.unix()
		for j, i := range part {
			if j > 0 {
				sb.WriteByte(',')
			}
			res := d.results[i]
			sb.WriteString(`(?, ?, ?, ?, ?)`)
			args = append(args, EventDelivered, res.AccountID, res.MailboxID, res.UID, now)
		}
		if err := s.execCached(ctx, tx, sb.String(), args); err != nil {
			return fmt.Errorf("insert outbox: %w", err)
		}
	}
	return nil
}

// EventKind is the kind of an outbox event, stored as a small integer.
type EventKind int

// Outbox event kinds.
const (
	EventDelivered EventKind = 1
	EventExpunged  EventKind = 2
	// EventFlags: a message's flags or keywords changed (StoreFlags,
	// UpdateKeywords). Event.Origin names who changed them.
	EventFlags EventKind = 3
)

func (k EventKind) String() string {
	switch k {
	case EventDelivered:
		return "delivered"
	case EventExpunged:
		return "expunged"
	case EventFlags:
		return "flags"
	}
	return fmt.Sprintf("event(%d)", int(k))
}

// MarshalText makes events read well in JSON.
func (k EventKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

func isNoRows(err error) bool {
	return errors.Is(err, errNoRows)
}
