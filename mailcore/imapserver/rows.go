package imapserver

import (
	"context"
	"sort"
	"strings"

	"github.com/govhub/govhub/mailcore"
	"github.com/jmoiron/sqlx"
)

// row is the part of a message row IMAP FETCH and flag updates need. The
// SQL is written once with ? and Rebind, and runs on SQLite and PostgreSQL.
type row struct {
	UID          uint32         `db:"uid"`
	Flags        mailcore.Flags `db:"flags"`
	KeywordsRaw  *string        `db:"keywords"`
	InternalDate int64          `db:"internal_date"`
	Size         int64          `db:"size"`
	SentDate     int64          `db:"sent_date"`
	From         string         `db:"from_addr"`
	To           string         `db:"to_addr"`
	Cc           string         `db:"cc_addr"`
	ReplyTo      *string        `db:"reply_to"`
	Subject      string         `db:"subject"`
	MessageID    string         `db:"message_id"`
	InReplyTo    string         `db:"in_reply_to"`
	SHA          []byte         `db:"sha"`
}

func (r row) keywords() []string {
	if r.KeywordsRaw == nil {
		return nil
	}
	return strings.Fields(*r.KeywordsRaw)
}

func (r row) blobID() mailcore.BlobID {
	var id mailcore.BlobID
	copy(id[:], r.SHA)
	return id
}

const rowCols = `m.uid, m.flags, m.keywords, m.internal_date, m.size, m.sent_date, m.from_addr, m.to_addr, m.cc_addr,
	m.reply_to, m.subject, m.message_id, m.in_reply_to, b.sha`

// mailboxUIDs lists every UID of a mailbox in order.
func mailboxUIDs(ctx context.Context, st *mailcore.Store, mailboxID int64) ([]uint32, error) {
	var uids []uint32
	db := st.DB()
	err := db.X.SelectContext(ctx, &uids, db.Rebind(`SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid`), mailboxID)
	return uids, err
}

func firstUnseenUID(ctx context.Context, st *mailcore.Store, mailboxID int64) (uint32, error) {
	var uid uint32
	db := st.DB()
	err := db.X.GetContext(ctx, &uid, db.Rebind(`SELECT COALESCE(MIN(uid), 0) FROM messages WHERE mailbox_id = ? AND flags & 1 = 0`), mailboxID)
	return uid, err
}

func deletedUIDs(ctx context.Context, st *mailcore.Store, mailboxID int64) ([]uint32, error) {
	var uids []uint32
	db := st.DB()
	err := db.X.SelectContext(ctx, &uids, db.Rebind(`SELECT uid FROM messages WHERE mailbox_id = ? AND flags & 8 <> 0 ORDER BY uid`), mailboxID)
	return uids, err
}

// loadRows returns the rows of the given ascending UIDs. Runs of UIDs are
// read as ranges (UID FETCH 1:* is one range query per 5,000 rows), the
// rest in IN lists of 500.
func loadRows(ctx context.Context, st *mailcore.Store, mailboxID int64, uids []uint32) ([]row, error) {
	if !sort.SliceIsSorted(uids, func(i, j int) bool { return uids[i] < uids[j] }) {
		uids = append([]uint32(nil), uids...)
		sort.Slice(uids, func(i, j int) bool { return uids[i] < uids[j] })
	}
	db := st.DB()
	out := make([]row, 0, len(uids))
	var singles []uint32
	flushSingles := func() error {
		for len(singles) > 0 {
			part := singles[:min(500, len(singles))]
			singles = singles[len(part):]
			q, args, err := sqlx.In(`SELECT `+rowCols+` FROM messages m JOIN blobs b ON b.id = m.blob_id WHERE m.mailbox_id = ? AND m.uid IN (?) ORDER BY m.uid`, mailboxID, part)
			if err != nil {
				return err
			}
			var rs []row
			if err := db.X.SelectContext(ctx, &rs, db.Rebind(q), args...); err != nil {
				return err
			}
			out = append(out, rs...)
		}
		return nil
	}
	for i := 0; i < len(uids); {
		j := i + 1
		for j < len(uids) && uids[j] == uids[j-1]+1 && j-i < 5000 {
			j++
		}
		if j-i < 8 {
			singles = append(singles, uids[i:j]...)
			i = j
			continue
		}
		if err := flushSingles(); err != nil {
			return nil, err
		}
		var rs []row
		if err := db.X.SelectContext(ctx, &rs, db.Rebind(`SELECT `+rowCols+` FROM messages m JOIN blobs b ON b.id = m.blob_id
			WHERE m.mailbox_id = ? AND m.uid >= ? AND m.uid <= ? ORDER BY m.uid`), mailboxID, uids[i], uids[j-1]); err != nil {
			return nil, err
		}
		out = append(out, rs...)
		i = j
	}
	if err := flushSingles(); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UID < out[j].UID })
	return out, nil
}

// storeKeywords changes IMAP keywords (RFC 9051 2.3.2), which
// mailcore.StoreFlags does not.
func storeKeywords(ctx context.Context, st *mailcore.Store, mailboxID int64, uids []uint32, op mailcore.FlagOp, kws []string) error {
	return st.UpdateKeywords(ctx, mailboxID, uids, func(have []string) []string { return applyKeywords(have, op, kws) })
}

// applyKeywords combines keyword lists case-insensitively (RFC 9051 2.3.2:
// keywords compare case-insensitively), keeping the first spelling.
func applyKeywords(have []string, op mailcore.FlagOp, kws []string) []string {
	has := func(list []string, k string) bool {
		for _, x := range list {
			if strings.EqualFold(x, k) {
				return true
			}
		}
		return false
	}
	var out []string
	switch op {
	case mailcore.FlagsAdd:
		out = append(out, have...)
		for _, k := range kws {
			if !has(out, k) {
				out = append(out, k)
			}
		}
	case mailcore.FlagsRemove:
		for _, k := range have {
			if !has(kws, k) {
				out = append(out, k)
			}
		}
	default:
		for _, k := range kws {
			if !has(out, k) {
				out = append(out, k)
			}
		}
	}
	if len(out) > 50 {
		out = out[:50] // a row never carries an unbounded keyword list
	}
	return out
}
