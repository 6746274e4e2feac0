package mailcore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/govhub/govhub/mailcore/envelope"
	"github.com/jmoiron/sqlx"
)

var errNoRows = sql.ErrNoRows

// FormatAddresses renders addresses for a message row compactly: a bare
// addr, or `Name <addr>`, with the name quoted (\ escapes) only when it
// holds a character that would confuse ParseAddresses. Entries are joined
// by ", ".
func FormatAddresses(as []envelope.Address) string {
	var sb strings.Builder
	for i, a := range as {
		if i > 0 {
			sb.WriteString(", ")
		}
		switch {
		case a.Name == "":
			sb.WriteString(a.Addr)
		case strings.ContainsAny(a.Name, "\"\\,<>") || strings.TrimSpace(a.Name) != a.Name:
			sb.WriteByte('"')
			for _, r := range a.Name {
				if r == '"' || r == '\\' {
					sb.WriteByte('\\')
				}
				sb.WriteRune(r)
			}
			sb.WriteString(`" <`)
			sb.WriteString(a.Addr)
			sb.WriteByte('>')
		default:
			sb.WriteString(a.Name)
			sb.WriteString(" <")
			sb.WriteString(a.Addr)
			sb.WriteByte('>')
		}
		if sb.Len() > 4000 {
			break // a row never carries an unbounded recipient list
		}
	}
	return sb.String()
}

// ParseAddresses splits what FormatAddresses wrote.
func ParseAddresses(s string) []envelope.Address {
	var out []envelope.Address
	for {
		s = strings.TrimLeft(s, ", ")
		if s == "" {
			return out
		}
		var a envelope.Address
		if s[0] == '"' {
			var nb strings.Builder
			i := 1
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				nb.WriteByte(s[i])
			}
			a.Name = nb.String()
			s = strings.TrimLeft(s[min(i+1, len(s)):], " ")
		} else if lt, comma := strings.IndexByte(s, '<'), strings.IndexByte(s, ','); lt >= 0 && (comma < 0 || lt < comma) {
			a.Name = strings.TrimSpace(s[:lt])
			s = s[lt:]
		}
		if s != "" && s[0] == '<' {
			end := strings.IndexByte(s, '>')
			if end < 0 {
				end = len(s)
			}
			a.Addr = s[1:end]
			s = s[min(end+1, len(s)):]
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			a.Addr = strings.TrimSpace(s[:end])
			s = s[end:]
		}
		out = append(out, a)
	}
}

const messageCols = `m.id, m.mailbox_id, m.uid, m.modseq, m.blob_id, b.sha, m.flags, m.keywords, m.internal_date, m.size, m.sent_date,
	m.from_addr, m.to_addr, m.cc_addr, m.reply_to, m.subject, m.message_id, m.in_reply_to, m.refs, m.thread_id, m.preview`

// Messages lists a mailbox's rows with uid > afterUID in uid order. Bodies
// are not touched.
func (s *Store) Messages(ctx context.Context, mailboxID int64, afterUID uint32, limit int) ([]Message, error) {
	if limit <= 0 || limit > 10000 {
		limit = 1000
	}
	var out []Message
	err := s.db.X.SelectContext(ctx, &out, s.db.Rebind(`SELECT `+messageCols+` FROM messages m JOIN blobs b ON b.id = m.blob_id
		WHERE m.mailbox_id = ? AND m.uid > ? ORDER BY m.uid LIMIT ?`), mailboxID, afterUID, limit)
	return out, err
}

// Message returns one row.
func (s *Store) Message(ctx context.Context, mailboxID int64, uid uint32) (Message, error) {
	var m Message
	err := s.db.X.GetContext(ctx, &m, s.db.Rebind(`SELECT `+messageCols+` FROM messages m JOIN blobs b ON b.id = m.blob_id
		WHERE m.mailbox_id = ? AND m.uid = ?`), mailboxID, uid)
	if errors.Is(err, sql.ErrNoRows) {
		return m, fmt.Errorf("%w: message %d/%d", ErrNotFound, mailboxID, uid)
	}
	return m, err
}

// ReadMessage returns the raw bytes of a message, checksum-verified.
func (s *Store) ReadMessage(ctx context.Context, mailboxID int64, uid uint32) ([]byte, error) {
	m, err := s.Message(ctx, mailboxID, uid)
	if err != nil {
		return nil, err
	}
	return s.blobs.Get(ctx, m.BlobID())
}

func (s *Store) allUIDs(ctx context.Context, mailboxID int64) ([]uint32, error) {
	var uids []uint32
	err := s.db.X.SelectContext(ctx, &uids, s.db.Rebind(`SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid`), mailboxID)
	return uids, err
}

// FlagOp says how StoreFlags combines the given flags with the current ones.
type FlagOp int

const (
	FlagsAdd FlagOp = iota
	FlagsRemove
	FlagsReplace
)

// StoreFlags changes system flags of the given uids; each changed row gets a
// new modseq (RFC 7162). It returns the rows as they are afterwards.
func (s *Store) StoreFlags(ctx context.Context, mailboxID int64, uids []uint32, op FlagOp, flags Flags) ([]Message, error) {
	flags &= systemFlags
	err := s.db.InTx(ctx, func(tx *sqlx.Tx) error {
		for _, part := range chunks(uids, 500) {
			var cur []struct {
				UID   uint32 `db:"uid"`
				Flags Flags  `db:"flags"`
			}
			q, args, err := sqlx.In(`SELECT uid, flags FROM messages WHERE mailbox_id = ? AND uid IN (?)`, mailboxID, part)
			if err != nil {
				return err
			}
			if err := tx.SelectContext(ctx, &cur, s.db.Rebind(q), args...); err != nil {
				return err
			}
			for _, c := range cur {
				nf := c.Flags
				switch op {
				case FlagsAdd:
					nf |= flags
				case FlagsRemove:
					nf &^= flags
				case FlagsReplace:
					nf = nf&^systemFlags | flags
				}
				if nf == c.Flags {
					continue
				}
				var modseq int64
				if err := tx.GetContext(ctx, &modseq, s.db.Rebind(`UPDATE mailboxes SET highest_modseq = highest_modseq + 1 WHERE id = ? RETURNING highest_modseq`), mailboxID); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE messages SET flags = ?, modseq = ? WHERE mailbox_id = ? AND uid = ?`), nf, modseq, mailboxID, c.UID); err != nil {
					return err
				}
				if err := s.flagEvent(ctx, tx, mailboxID, c.UID); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []Message
	for _, part := range chunks(uids, 500) {
		q, args, err := sqlx.In(`SELECT `+messageCols+` FROM messages m JOIN blobs b ON b.id = m.blob_id WHERE m.mailbox_id = ? AND m.uid IN (?) ORDER BY m.uid`, mailboxID, part)
		if err != nil {
			return nil, err
		}
		var ms []Message
		if err := s.db.X.SelectContext(ctx, &ms, s.db.Rebind(q), args...); err != nil {
			return nil, err
		}
		out = append(out, ms...)
	}
	return out, nil
}

// CopyResult maps source uids to the uids of their copies (UIDPLUS COPYUID).
type CopyResult struct {
	UIDValidity uint32
	SrcUIDs     []uint32
	DstUIDs     []uint32
}

// Copy adds rows for the given messages to dst, pointing at the same blobs:
// references and the owner's quota grow, no body is written.
func (s *Store) Copy(ctx context.Context, srcMailbox int64, uids []uint32, dstMailbox int64) (CopyResult, error) {
	var res CopyResult
	err := s.db.InTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		res, err = s.copyTx(ctx, tx, srcMailbox, uids, dstMailbox)
		return err
	})
	return res, err
}

func (s *Store) copyTx(ctx context.Context, tx *sqlx.Tx, srcMailbox int64, uids []uint32, dstMailbox int64) (CopyResult, error) {
	res := CopyResult{}
	var dst Mailbox
	if err := tx.GetContext(ctx, &dst, s.db.Rebind(`SELECT `+mailboxCols+` FROM mailboxes WHERE id = ?`), dstMailbox); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return res, fmt.Errorf("%w: mailbox %d", ErrNotFound, dstMailbox)
		}
		return res, err
	}
	res.UIDValidity = dst.UIDValidity
	var src []Message
	for _, part := range chunks(uids, 500) {
		q, args, err := sqlx.In(`SELECT `+messageCols+` FROM messages m JOIN blobs b ON b.id = m.blob_id WHERE m.mailbox_id = ? AND m.uid IN (?)`, srcMailbox, part)
		if err != nil {
			return res, err
		}
		var ms []Message
		if err := tx.SelectContext(ctx, &ms, s.db.Rebind(q), args...); err != nil {
			return res, err
		}
		src = append(src, ms...)
	}
	if len(src) == 0 {
		return res, nil
	}
	sort.Slice(src, func(i, j int) bool { return src[i].UID < src[j].UID })
	var total int64
	refs := map[int64]int64{}
	for _, m := range src {
		total += m.Size
		refs[m.BlobRowID]++
	}
	// Lock order as in delivery: mailbox, account, blobs, messages.
	var first int64
	if err := tx.GetContext(ctx, &first, s.db.Rebind(`UPDATE mailboxes SET uidnext = uidnext + ?, highest_modseq = highest_modseq + 1 WHERE id = ? RETURNING uidnext - ?`),
		len(src), dstMailbox, len(src)); err != nil {
		return res, err
	}
	modseq := dst.HighestModSeq + 1
	r, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE accounts SET used_bytes = used_bytes + ? WHERE id = ? AND (quota_bytes = 0 OR used_bytes + ? <= quota_bytes)`), total, dst.AccountID, total)
	if err != nil {
		return res, err
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return res, fmt.Errorf("%w: account %d", ErrQuotaExceeded, dst.AccountID)
	}
	for blob, n := range refs {
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE blobs SET refs = refs + ?, dead_at = NULL WHERE id = ?`), n, blob); err != nil {
			return res, err
		}
	}
	for i, m := range src {
		uid := first + int64(i)
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO messages (mailbox_id, uid, modseq, blob_id, flags, keywords, internal_date, size, sent_date, from_addr, to_addr, cc_addr, reply_to, subject, message_id, in_reply_to, refs, thread_id, preview)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			dstMailbox, uid, modseq, m.BlobRowID, m.Flags, m.KeywordsRaw, m.InternalDate, m.Size, m.SentDate, m.From, m.To, m.Cc, m.ReplyTo,
			m.Subject, m.MessageID, m.InReplyTo, m.RefsRaw, m.ThreadID, m.Preview); err != nil {
			return res, err
		}
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO outbox (kind, account_id, mailbox_id, uid, origin, created_at) VALUES (?, ?, ?, ?, ?, ?)`),
			EventDelivered, dst.AccountID, dstMailbox, uid, OriginOf(ctx), s.unix()); err != nil {
			return res, err
		}
		res.SrcUIDs = append(res.SrcUIDs, m.UID)
		res.DstUIDs = append(res.DstUIDs, uint32(uid))
	}
	return res, nil
}

// Move copies then expunges the sources in one transaction (RFC 6851): the
// body is never rewritten and quota is charged once net.
func (s *Store) Move(ctx context.Context, srcMailbox int64, uids []uint32, dstMailbox int64) (CopyResult, error) {
	var res CopyResult
	err := s.db.InTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		res, err = s.copyTx(ctx, tx, srcMailbox, uids, dstMailbox)
		if err != nil {
			return err
		}
		_, err = s.expungeTx(ctx, tx, srcMailbox, res.SrcUIDs, false)
		return err
	})
	return res, err
}

// Expunge removes the given uids (or, with uids nil, every message flagged
// \Deleted) and returns the uids removed. Blob references and quota drop in
// the same transaction; a blob left with no reference is marked dead and its
// bytes stay until PurgeDead and compaction.
func (s *Store) Expunge(ctx context.Context, mailboxID int64, uids []uint32) ([]uint32, error) {
	var out []uint32
	err := s.db.InTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		out, err = s.expungeTx(ctx, tx, mailboxID, uids, uids == nil)
		return err
	})
	return out, err
}

// ExpungeDeleted removes those of uids that are still flagged \Deleted,
// checked in the same transaction (IMAP EXPUNGE and UID EXPUNGE, RFC 4315
// 2.1: a message whose \Deleted flag another session cleared meanwhile
// stays).
func (s *Store) ExpungeDeleted(ctx context.Context, mailboxID int64, uids []uint32) ([]uint32, error) {
	if len(uids) == 0 {
		return nil, nil
	}
	var out []uint32
	err := s.db.InTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		out, err = s.expungeTx(ctx, tx, mailboxID, uids, true)
		return err
	})
	return out, err
}

func (s *Store) expungeTx(ctx context.Context, tx *sqlx.Tx, mailboxID int64, uids []uint32, deletedOnly bool) ([]uint32, error) {
	var rows []struct {
		UID    uint32 `db:"uid"`
		BlobID int64  `db:"blob_id"`
		Size   int64  `db:"size"`
	}
	if uids == nil {
		q := `SELECT uid, blob_id, size FROM messages WHERE mailbox_id = ?`
		if deletedOnly {
			q += ` AND flags & 8 <> 0`
		}
		if err := tx.SelectContext(ctx, &rows, s.db.Rebind(q+` ORDER BY uid`), mailboxID); err != nil {
			return nil, err
		}
	} else {
		for _, part := range chunks(uids, 500) {
			q := `SELECT uid, blob_id, size FROM messages WHERE mailbox_id = ? AND uid IN (?)`
			if deletedOnly {
				q += ` AND flags & 8 <> 0`
			}
			q, args, err := sqlx.In(q+` ORDER BY uid`, mailboxID, part)
			if err != nil {
				return nil, err
			}
			var rs []struct {
				UID    uint32 `db:"uid"`
				BlobID int64  `db:"blob_id"`
				Size   int64  `db:"size"`
			}
			if err := tx.SelectContext(ctx, &rs, s.db.Rebind(q), args...); err != nil {
				return nil, err
			}
			rows = append(rows, rs...)
		}
	}
	if len(rows) == 0 {
		return nil, nil
	}
	var acct int64
	if err := tx.GetContext(ctx, &acct, s.db.Rebind(`UPDATE mailboxes SET highest_modseq = highest_modseq + 1 WHERE id = ? RETURNING account_id`), mailboxID); err != nil {
		return nil, err
	}
	var total int64
	refs := map[int64]int64{}
	removed := make([]uint32, len(rows))
	for i, r := range rows {
		total += r.Size
		refs[r.BlobID]++
		removed[i] = r.UID
	}
	if _, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE accounts SET used_bytes = used_bytes - ? WHERE id = ?`), total, acct); err != nil {
		return nil, err
	}
	blobIDs := make([]int64, 0, len(refs))
	for b := range refs {
		blobIDs = append(blobIDs, b)
	}
	sort.Slice(blobIDs, func(i, j int) bool { return blobIDs[i] < blobIDs[j] })
	now := s.unix()
	for _, b := range blobIDs {
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE blobs SET refs = refs - ?, dead_at = CASE WHEN refs - ? <= 0 THEN CAST(? AS BIGINT) ELSE NULL END WHERE id = ?`),
			refs[b], refs[b], now, b); err != nil {
			return nil, err
		}
	}
	for _, part := range chunks(removed, 500) {
		q, args, err := sqlx.In(`DELETE FROM messages WHERE mailbox_id = ? AND uid IN (?)`, mailboxID, part)
		if err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, s.db.Rebind(q), args...); err != nil {
			return nil, err
		}
		var sb strings.Builder
		args = args[:0]
		sb.WriteString(`INSERT INTO outbox (kind, account_id, mailbox_id, uid, origin, created_at) VALUES `)
		origin, now := OriginOf(ctx), s.unix()
		for i, uid := range part {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(`(?, ?, ?, ?, ?, ?)`)
			args = append(args, EventExpunged, acct, mailboxID, uid, origin, now)
		}
		if _, err := tx.ExecContext(ctx, s.db.Rebind(sb.String()), args...); err != nil {
			return nil, err
		}
	}
	return removed, nil
}

func chunks[T any](xs []T, n int) [][]T {
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

// Event is one outbox row.
type Event struct {
	ID        int64     `db:"id" json:"id"`
	Kind      EventKind `db:"kind" json:"kind"`
	AccountID int64     `db:"account_id" json:"account_id"`
	MailboxID int64     `db:"mailbox_id" json:"mailbox_id"`
	UID       uint32    `db:"uid" json:"uid"`
	// Origin is who made the change (WithOrigin), 0 when nobody said.
	Origin    int64 `db:"origin" json:"origin,omitempty"`
	CreatedAt int64 `db:"created_at" json:"created_at"`
}

type originKey struct{}

// WithOrigin marks the changes made with ctx as coming from origin (an
// IMAP session's random id), so the events they produce carry it and the
// session can tell its own changes from others'.
func WithOrigin(ctx context.Context, origin int64) context.Context {
	return context.WithValue(ctx, originKey{}, origin)
}

// OriginOf returns the origin WithOrigin put in ctx, or 0.
func OriginOf(ctx context.Context) int64 {
	o, _ := ctx.Value(originKey{}).(int64)
	return o
}

// flagEvent records that a message's flags or keywords changed.
func (s *Store) flagEvent(ctx context.Context, tx *sqlx.Tx, mailboxID int64, uid uint32) error {
	_, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO outbox (kind, account_id, mailbox_id, uid, origin, created_at)
		SELECT ?, account_id, id, ?, ?, ? FROM mailboxes WHERE id = ?`), EventFlags, uid, OriginOf(ctx), s.unix(), mailboxID)
	if err != nil {
		return fmt.Errorf("flag event: %w", err)
	}
	return nil
}

// PruneEvents deletes outbox events older than olderThan. Outbox ids grow
// with time, so the rows to delete are those below the first id that is
// new enough: found by walking from the oldest, which stops as soon as it
// meets one (no index on created_at needed). Consumers hold positions in
// the outbox that are far newer than any retention worth configuring
// (IMAP pollers read every 250 ms).
func (s *Store) PruneEvents(ctx context.Context, olderThan time.Duration) (int64, error) {
	cutoff := s.now().Add(-olderThan).Unix()
	var first sql.NullInt64
	if err := s.db.X.GetContext(ctx, &first, s.db.Rebind(`SELECT MIN(id) FROM (SELECT id FROM outbox WHERE created_at >= ? ORDER BY id LIMIT 1) t`), cutoff); err != nil {
		return 0, fmt.Errorf("prune events: %w", err)
	}
	q, args := `DELETE FROM outbox WHERE id < ?`, []any{first.Int64}
	if !first.Valid {
		q, args = `DELETE FROM outbox WHERE created_at < ?`, []any{cutoff}
	}
	res, err := s.db.X.ExecContext(ctx, s.db.Rebind(q), args...)
	if err != nil {
		return 0, fmt.Errorf("prune events: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// Events returns outbox rows with id > after, oldest first.
func (s *Store) Events(ctx context.Context, after int64, limit int) ([]Event, error) {
	if limit <= 0 || limit > 10000 {
		limit = 1000
	}
	var out []Event
	err := s.db.X.SelectContext(ctx, &out, s.db.Rebind(`SELECT id, kind, account_id, mailbox_id, uid, origin, created_at FROM outbox WHERE id > ? ORDER BY id LIMIT ?`), after, limit)
	return out, err
}
