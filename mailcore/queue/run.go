package queue

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
	"sync"
	"time"

	"github.com/govhub/govhub/internal/sqldb"
	"github.com/govhub/govhub/mailcore"
	"github.com/jmoiron/sqlx"
)

// claimedRow is one queue_recipients row this worker claimed.
type claimedRow struct {
	ID          int64  `db:"id"`
	QueueID     int64  `db:"queue_id"`
	Rcpt        string `db:"rcpt"`
	Domain      string `db:"domain"`
	Status      int    `db:"status"`
	Attempts    int    `db:"attempts"`
	LastAttempt int64  `db:"last_attempt_at"`
	LastError   string `db:"last_error"`
	DSNStatus   string `db:"dsn_status"`
	RemoteMTA   string `db:"remote_mta"`
}

// qmsg is the queue_messages row of a claimed group.
type qmsg struct {
	ID        int64  `db:"id"`
	Sender    string `db:"sender"`
	Size      int64  `db:"size"`
	CreatedAt int64  `db:"created_at"`
	SHA       []byte `db:"sha"`
}

// Run delivers due messages until ctx ends, then returns nil. It wakes
// every PollInterval, and at once after an Enqueue or Retry in this
// process. Several Runs, in one process or many, may share a database:
// each recipient row is claimed by one of them (FOR UPDATE SKIP LOCKED on
// PostgreSQL, the single writer on SQLite) and a claim expires after
// ClaimFor, so a crashed worker's rows are delivered by another.
func (q *Queue) Run(ctx context.Context) error {
	for {
		if _, err := q.RunOnce(ctx); err != nil && ctx.Err() == nil {
			q.log.Error("delivery pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-q.kick:
		case <-time.After(q.cfg.PollInterval):
		}
	}
}

// RunOnce makes one delivery pass over every row due now and returns how
// many recipient rows it handled. Tests drive the schedule with it and an
// injected clock.
func (q *Queue) RunOnce(ctx context.Context) (int, error) {
	total := 0
	defer q.refreshDepth(context.WithoutCancel(ctx))
	for batch := 0; batch < 100; batch++ {
		rows, err := q.claim(ctx)
		if err != nil {
			return total, err
		}
		if len(rows) == 0 {
			return total, nil
		}
		total += len(rows)
		q.process(ctx, rows)
		if len(rows) < q.cfg.Batch {
			return total, nil
		}
	}
	return total, nil
}

func (q *Queue) refreshDepth(ctx context.Context) {
	var n int64
	if err := q.db.X.GetContext(ctx, &n, `SELECT COUNT(*) FROM queue_recipients WHERE status IN (0, 2)`); err == nil {
		q.m.depth.Set(float64(n))
	}
}

// claim takes up to Batch due rows whose claim is free or expired.
func (q *Queue) claim(ctx context.Context) ([]claimedRow, error) {
	now := q.unix()
	lock := ""
	if q.db.Dialect == sqldb.Postgres {
		// Workers skip each other's rows instead of queueing behind them.
		lock = " FOR UPDATE SKIP LOCKED"
	}
	var rows []claimedRow
	err := q.db.InTx(ctx, func(tx *sqlx.Tx) error {
		rows = rows[:0]
		return tx.SelectContext(ctx, &rows, q.db.Rebind(`UPDATE queue_recipients SET claimed_by = ?, claim_expires = ?
			WHERE id IN (SELECT id FROM queue_recipients WHERE status IN (0, 2) AND next_attempt_at <= ? AND claim_expires <= ?
				ORDER BY next_attempt_at, id LIMIT ?`+lock+`)
			RETURNING id, queue_id, rcpt, domain, status, attempts, last_attempt_at, last_error, dsn_status, remote_mta`),
			q.worker, now+int64(q.cfg.ClaimFor/time.Second), now, now, q.cfg.Batch)
	})
	if err != nil {
		return nil, fmt.Errorf("queue: claim: %w", err)
	}
	return rows, nil
}

// maxRcptsPerTransaction bounds the recipients of one SMTP transaction.
const maxRcptsPerTransaction = 100

// group is the unit of one attempt: the claimed rows of one message that
// go to one destination (a domain, the smarthost, or the sender's bounce).
type group struct {
	queueID int64
	bounce  bool
	domain  string
	rows    []claimedRow
}

func (q *Queue) process(ctx context.Context, rows []claimedRow) {
	local := map[string]bool{}
	unknown := map[string]bool{} // local-or-not could not be decided
	var skipped []claimedRow
	var list []*group
	groups := map[string]*group{}
	for _, r := range rows {
		var key string
		g := &group{queueID: r.QueueID}
		switch {
		case r.Status == stFailed:
			key = fmt.Sprintf("%d bounce", r.QueueID)
			g.bounce = true
		default:
			isLocal, ok := local[r.Domain]
			if !ok {
				l, err := q.store.IsLocalDomain(ctx, r.Domain)
				if err != nil {
					// Sending a local domain's mail to its MX could loop
					// back here; wait for the database instead.
					q.log.Warn("local domain check failed", "domain", r.Domain, "err", err)
					unknown[r.Domain] = true
				}
				local[r.Domain], isLocal = l, l
			}
			if unknown[r.Domain] {
				skipped = append(skipped, r)
				continue
			}
			g.domain = r.Domain
			if q.cfg.Smarthost != "" && !isLocal {
				// Everything remote goes to the relay: one transaction per
				// message, whatever the domains.
				g.domain = ""
			}
			key = fmt.Sprintf("%d %s", r.QueueID, g.domain)
		}
		// RFC 5321 4.5.3.1.8: a server need accept only 100 recipients
		// per transaction; a full group is followed by a new one.
		if old, ok := groups[key]; ok && len(old.rows) < maxRcptsPerTransaction {
			g = old
		} else {
			groups[key] = g
			list = append(list, g)
		}
		g.rows = append(g.rows, r)
	}
	if len(skipped) > 0 {
		q.release(context.WithoutCancel(ctx), skipped, time.Minute)
	}
	sem := make(chan struct{}, q.cfg.Concurrency)
	var wg sync.WaitGroup
	for _, g := range list {
		isLocal := g.domain != "" && local[g.domain]
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			q.attempt(ctx, g, isLocal)
		}()
	}
	wg.Wait()
}

// attempt delivers (or bounces) one group and records the outcome.
func (q *Queue) attempt(ctx context.Context, g *group, isLocal bool) {
	log := q.log.With("queue_id", g.queueID)
	// Recording must survive the caller's cancellation: the rows are ours
	// and the next worker should see what happened.
	rec := context.WithoutCancel(ctx)
	var m qmsg
	err := q.db.X.GetContext(ctx, &m, q.db.Rebind(`SELECT q.id, q.sender, q.size, q.created_at, b.sha FROM queue_messages q JOIN blobs b ON b.id = q.blob_id WHERE q.id = ?`), g.queueID)
	if errors.Is(err, sql.ErrNoRows) {
		return // deleted meanwhile
	}
	if err != nil {
		log.Error("load queued message", "err", err)
		q.release(rec, g.rows, time.Minute)
		return
	}
	var id mailcore.BlobID
	copy(id[:], m.SHA)
	raw, err := q.blobs.Get(ctx, id)
	if err != nil && !g.bounce {
		// A body that cannot be read is a temporary failure like any
		// other: retried on the schedule, bounced (with no header to
		// return) once the message is RetryFor old.
		log.Error("read queued body", "blob", id.String(), "err", err)
		outs := all(len(g.rows), tempOutcome("4.3.0", "the queued message could not be read"))
		if failed, err := q.record(rec, log, &m, g.rows, outs); err != nil {
			log.Error("record delivery outcome", "err", err)
		} else if len(failed) > 0 {
			q.sendBounce(rec, log, &m, nil, failed)
		}
		return
	}
	if g.bounce {
		q.sendBounce(rec, log, &m, raw, g.rows)
		return
	}
	actx, cancel := context.WithTimeout(ctx, q.cfg.AttemptTimeout)
	defer cancel()
	rcpts := make([]string, len(g.rows))
	for i, r := range g.rows {
		rcpts[i] = r.Rcpt
	}
	var outs []outcome
	if isLocal {
		outs = q.deliverLocal(actx, raw, rcpts)
	} else {
		// The SMTP server is meant to have refused or normalised bare CR
		// and LF; the queue does it again because a bare CR followed by
		// "." is how SMTP smuggling reaches the next hop, and before
		// signing so that the signature covers what is sent.
		data := normalizeCRLF(raw)
		if q.dkim != nil {
			if d := q.signingDomain(actx, raw, m.Sender); d != "" {
				signed, err := q.sign(d, raw)
				if err != nil {
					log.Error("DKIM signing failed; sending unsigned", "domain", d, "err", err)
				} else {
					data = signed
				}
			}
		}
		outs = q.deliverRemote(actx, log, g.domain, g.domain == "", m.Sender, rcpts, data)
	}
	if ctx.Err() != nil {
		// Shutting down: the attempt was cut short, not failed; another
		// worker may take the rows at once.
		q.release(rec, g.rows, 0)
		return
	}
	failed, err := q.record(rec, log, &m, g.rows, outs)
	if err != nil {
		log.Error("record delivery outcome", "err", err)
		return
	}
	if len(failed) > 0 {
		q.sendBounce(rec, log, &m, raw, failed)
	}
}

// release gives claimed rows back without counting an attempt, due again
// after wait (a pause after an internal error, so a pass does not spin on
// rows it cannot handle).
func (q *Queue) release(ctx context.Context, rows []claimedRow, wait time.Duration) {
	ids := make([]int64, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	query, args, err := sqlx.In(`UPDATE queue_recipients SET claimed_by = '', claim_expires = 0,
		next_attempt_at = CASE WHEN next_attempt_at > ? THEN next_attempt_at ELSE ? END WHERE claimed_by = ? AND id IN (?)`,
		q.now().Add(wait).Unix(), q.now().Add(wait).Unix(), q.worker, ids)
	if err == nil {
		_, err = q.db.X.ExecContext(ctx, q.db.Rebind(query), args...)
	}
	if err != nil {
		q.log.Warn("release claims", "err", err)
	}
}

// backoff is the wait after the n-th temporary failure (n >= 1).
func (q *Queue) backoff(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	if n > len(q.cfg.Backoff) {
		n = len(q.cfg.Backoff)
	}
	return q.cfg.Backoff[n-1]
}

// record writes the outcomes of one attempt and returns the rows that
// failed for good and now need a bounce (still claimed by this worker).
func (q *Queue) record(ctx context.Context, log *slog.Logger, m *qmsg, rows []claimedRow, outs []outcome) ([]claimedRow, error) {
	now := q.now()
	expired := now.Sub(time.Unix(m.CreatedAt, 0)) >= q.cfg.RetryFor
	var bounce []claimedRow
	var nDelivered, nDeferred, nBounced int
	err := q.db.InTx(ctx, func(tx *sqlx.Tx) error {
		bounce, nDelivered, nDeferred, nBounced = nil, 0, 0, 0
		ok, err := q.lockMessage(ctx, tx, m.ID)
		if err != nil || !ok {
			return err // deleted meanwhile: nothing to record
		}
		for i, r := range rows {
			o := outs[i]
			var res sql.Result
			switch {
			case o.delivered:
				nDelivered++
				res, err = tx.ExecContext(ctx, q.db.Rebind(`UPDATE queue_recipients SET status = 1, attempts = attempts + 1, last_attempt_at = ?,
					last_error = '', remote_mta = ?, claimed_by = '', claim_expires = 0 WHERE id = ? AND claimed_by = ?`), now.Unix(), o.mta, r.ID, q.worker)
			case o.perm || expired:
				nBounced++
				st := stFailed
				if m.Sender == "" {
					st = stBounced // RFC 5321 6.1: never bounce a bounce
				}
				res, err = tx.ExecContext(ctx, q.db.Rebind(`UPDATE queue_recipients SET status = ?, attempts = attempts + 1, last_attempt_at = ?,
					last_error = ?, dsn_status = ?, remote_mta = ?, next_attempt_at = ? WHERE id = ? AND claimed_by = ?`),
					st, now.Unix(), o.diag, o.status, o.mta, now.Unix(), r.ID, q.worker)
				if st == stFailed {
					r.Status, r.LastAttempt, r.LastError, r.DSNStatus, r.RemoteMTA = stFailed, now.Unix(), o.diag, o.status, o.mta
					bounce = append(bounce, r)
				}
			default:
				nDeferred++
				next := now.Add(q.backoff(r.Attempts + 1))
				res, err = tx.ExecContext(ctx, q.db.Rebind(`UPDATE queue_recipients SET attempts = attempts + 1, last_attempt_at = ?, next_attempt_at = ?,
					last_error = ?, dsn_status = ?, remote_mta = ?, claimed_by = '', claim_expires = 0 WHERE id = ? AND claimed_by = ?`),
					now.Unix(), next.Unix(), o.diag, o.status, o.mta, r.ID, q.worker)
			}
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				// Another worker took the row after our claim expired; its
				// outcome stands, and it sends any bounce.
				log.Warn("claim lost before the outcome was recorded", "rcpt_row", r.ID)
				if k := len(bounce); k > 0 && bounce[k-1].ID == r.ID {
					bounce = bounce[:k-1]
				}
			}
		}
		_, err = q.finishIfDone(ctx, tx, m.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	q.m.deliveries.WithLabelValues(resultDelivered).Add(float64(nDelivered))
	q.m.deliveries.WithLabelValues(resultDeferred).Add(float64(nDeferred))
	q.m.deliveries.WithLabelValues(resultBounced).Add(float64(nBounced))
	for i, r := range rows {
		o := outs[i]
		switch {
		case o.delivered:
			log.Info("delivered", "rcpt", r.Rcpt, "mta", o.mta)
		case o.perm || expired:
			log.Info("failed", "rcpt", r.Rcpt, "status", o.status, "diag", o.diag, "expired", expired && !o.perm)
		default:
			log.Info("deferred", "rcpt", r.Rcpt, "status", o.status, "diag", o.diag, "attempt", r.Attempts+1)
		}
	}
	return bounce, nil
}

// sendBounce sends one DSN to the sender for rows (status 2, claimed by
// this worker) and marks them bounced. A crash between sending and marking
// sends the bounce again later (at least once; the DSN's Message-ID is the
// same both times).
func (q *Queue) sendBounce(ctx context.Context, log *slog.Logger, m *qmsg, raw []byte, rows []claimedRow) {
	now := q.now()
	in := dsnInput{
		Hostname: q.cfg.Hostname,
		Sender:   m.Sender,
		Arrival:  time.Unix(m.CreatedAt, 0),
		Now:      now,
		RetryFor: q.cfg.RetryFor,
		Original: raw,
		Token:    fmt.Sprintf("%d.%d", m.ID, rows[0].ID),
	}
	for _, r := range rows {
		in.Recipients = append(in.Recipients, dsnRecipient{
			Rcpt: r.Rcpt, Status: r.DSNStatus, Diagnostic: r.LastError, RemoteMTA: r.RemoteMTA,
			LastAttempt: time.Unix(r.LastAttempt, 0), Expired: strings.HasPrefix(r.DSNStatus, "4"),
		})
	}
	giveUp := false
	err := q.deliverDSN(ctx, m.Sender, buildDSN(in))
	if err != nil {
		if mailcore.IsTemporary(err) && now.Sub(in.Arrival) < 2*q.cfg.RetryFor {
			log.Warn("bounce deferred", "sender", m.Sender, "err", err)
			ids := make([]int64, len(rows))
			for i, r := range rows {
				ids[i] = r.ID
			}
			query, args, qerr := sqlx.In(`UPDATE queue_recipients SET next_attempt_at = ?, claimed_by = '', claim_expires = 0 WHERE claimed_by = ? AND status = 2 AND id IN (?)`,
				now.Add(q.backoff(rows[0].Attempts)).Unix(), q.worker, ids)
			if qerr == nil {
				_, qerr = q.db.X.ExecContext(ctx, q.db.Rebind(query), args...)
			}
			if qerr != nil {
				log.Error("record deferred bounce", "err", qerr)
			}
			return
		}
		giveUp = true
		log.Warn("bounce undeliverable; dropped", "sender", m.Sender, "err", err)
	}
	ids := make([]int64, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	err = q.db.InTx(ctx, func(tx *sqlx.Tx) error {
		ok, err := q.lockMessage(ctx, tx, m.ID)
		if err != nil || !ok {
			return err
		}
		query, args, err := sqlx.In(`UPDATE queue_recipients SET status = 3, claimed_by = '', claim_expires = 0 WHERE status = 2 AND id IN (?)`, ids)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, q.db.Rebind(query), args...); err != nil {
			return err
		}
		_, err = q.finishIfDone(ctx, tx, m.ID)
		return err
	})
	if err != nil {
		log.Error("record bounce", "err", err)
		return
	}
	if !giveUp {
		q.m.deliveries.WithLabelValues(resultDSN).Inc()
		log.Info("bounce sent", "sender", m.Sender, "recipients", len(rows))
	}
}

// permanentErr marks an error that retrying will not cure.
type permanentErr struct{ error }

func (permanentErr) Temporary() bool { return false }

type temporaryErr struct{ error }

func (temporaryErr) Temporary() bool { return true }
func (e temporaryErr) Unwrap() error { return e.error }

// deliverDSN hands a bounce to the sender: into their INBOX when the
// sender is local, else through this queue with the null sender.
func (q *Queue) deliverDSN(ctx context.Context, sender string, dsn []byte) error {
	_, domain, err := splitAddress(sender)
	if err != nil {
		return permanentErr{err}
	}
	isLocal, err := q.store.IsLocalDomain(ctx, domain)
	if err != nil {
		return temporaryErr{err}
	}
	if !isLocal {
		if err := q.Enqueue(ctx, "", []string{sender}, dsn); err != nil {
			return temporaryErr{err}
		}
		return nil
	}
	outs := q.deliverLocal(ctx, dsn, []string{sender})
	switch o := outs[0]; {
	case o.delivered:
		return nil
	case o.perm:
		return permanentErr{errors.New(o.diag)}
	default:
		return temporaryErr{errors.New(o.diag)}
	}
}

// deliverLocal puts raw into the INBOX of each local recipient through the
// store (a queued recipient whose domain is, or became, local).
func (q *Queue) deliverLocal(ctx context.Context, raw []byte, rcpts []string) []outcome {
	outs := make([]outcome, len(rcpts))
	var recips []mailcore.Recipient
	idx := map[int64][]int{}
	for i, r := range rcpts {
		_, rc, err := q.store.ResolveRecipient(ctx, r)
		switch {
		case errors.Is(err, mailcore.ErrNotFound), errors.Is(err, mailcore.ErrInvalidAddress):
			outs[i] = permOutcome("5.1.1", "no such local recipient")
			continue
		case err != nil:
			outs[i] = tempOutcome("4.3.0", "local mail store unavailable")
			continue
		}
		if _, ok := idx[rc.MailboxID]; !ok {
			recips = append(recips, rc)
		}
		idx[rc.MailboxID] = append(idx[rc.MailboxID], i)
	}
	if len(recips) == 0 {
		return outs
	}
	res, err := q.store.Deliver(ctx, raw, recips, mailcore.DeliverOptions{})
	if err != nil {
		o := tempOutcome("4.3.0", "local mail store unavailable")
		if errors.Is(err, mailcore.ErrTooLarge) {
			o = permOutcome("5.3.4", "message too large for the local mail store")
		}
		for _, is := range idx {
			for _, i := range is {
				outs[i] = o
			}
		}
		return outs
	}
	for _, dr := range res {
		o := outcome{delivered: true, mta: q.cfg.Hostname}
		switch {
		case dr.Err == nil:
		case errors.Is(dr.Err, mailcore.ErrQuotaExceeded):
			o = tempOutcome("4.2.2", "mailbox full")
		default:
			o = tempOutcome("4.3.0", "local delivery failed")
		}
		for _, i := range idx[dr.MailboxID] {
			outs[i] = o
		}
	}
	return outs
}

// signingDomain is the domain a message is DKIM-signed for: its From
// header's domain (the one DMARC aligns with, RFC 7489 3.1), else the
// envelope sender's, provided it is a local domain or this host's name.
// Mail claiming someone else's domain is not signed: no key is generated
// for it.
func (q *Queue) signingDomain(ctx context.Context, raw []byte, sender string) string {
	domain := ""
	if msg, err := mail.ReadMessage(bytes.NewReader(raw)); err == nil {
		if as, err := msg.Header.AddressList("From"); err == nil && len(as) > 0 {
			if at := strings.LastIndexByte(as[0].Address, '@'); at > 0 {
				domain = as[0].Address[at+1:]
			}
		}
	}
	if domain == "" {
		if at := strings.LastIndexByte(sender, '@'); at > 0 {
			domain = sender[at+1:]
		}
	}
	domain = strings.ToLower(domain)
	if domain == "" {
		return ""
	}
	if domain == q.cfg.Hostname {
		return domain
	}
	if ok, err := q.store.IsLocalDomain(ctx, domain); err == nil && ok {
		return domain
	}
	return ""
}

// normalizeCRLF turns every bare CR and bare LF into CRLF (RFC 5321 2.3.8:
// lines end with CRLF only).
func normalizeCRLF(b []byte) []byte {
	clean := true
	for i, c := range b {
		if c == '\r' && (i+1 == len(b) || b[i+1] != '\n') || c == '\n' && (i == 0 || b[i-1] != '\r') {
			clean = false
			break
		}
	}
	if clean {
		return b
	}
	out := make([]byte, 0, len(b)+len(b)/32)
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '\r' && i+1 < len(b) && b[i+1] == '\n':
			out = append(out, '\r', '\n')
			i++
		case c == '\r' || c == '\n':
			out = append(out, '\r', '\n')
		default:
			out = append(out, c)
		}
	}
	return out
}
