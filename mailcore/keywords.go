package mailcore

import (
	"context"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"
)

// UpdateKeywords changes the IMAP keywords (RFC 9051 2.3.2: $Junk,
// $NotJunk, user keywords) of messages of one mailbox, which StoreFlags
// does not: fn gets a message's keywords and returns what they become.
// Every message whose keywords change gets a new modseq, as StoreFlags
// gives, so CONDSTORE-style clients and pollers see the change; those fn
// leaves alone are not touched. One transaction; lock order as the
// store's (mailboxes, then messages).
func (s *Store) UpdateKeywords(ctx context.Context, mailboxID int64, uids []uint32, fn func(have []string) []string) error {
	db := s.db
	return db.InTx(ctx, func(tx *sqlx.Tx) error {
		for start := 0; start < len(uids); start += 500 {
			part := uids[start:min(start+500, len(uids))]
			q, args, err := sqlx.In(`SELECT uid, keywords FROM messages WHERE mailbox_id = ? AND uid IN (?)`, mailboxID, part)
			if err != nil {
				return err
			}
			var cur []struct {
				UID      uint32  `db:"uid"`
				Keywords *string `db:"keywords"`
			}
			if err := tx.SelectContext(ctx, &cur, db.Rebind(q), args...); err != nil {
				return err
			}
			for _, c := range cur {
				var have []string
				if c.Keywords != nil {
					have = strings.Fields(*c.Keywords)
				}
				next := fn(have)
				if strings.Join(next, " ") == strings.Join(have, " ") {
					continue
				}
				var val *string
				if len(next) > 0 {
					v := strings.Join(next, " ")
					val = &v
				}
				var modseq int64
				if err := tx.GetContext(ctx, &modseq, db.Rebind(`UPDATE mailboxes SET highest_modseq = highest_modseq + 1 WHERE id = ? RETURNING highest_modseq`), mailboxID); err != nil {
					return fmt.Errorf("keywords modseq: %w", err)
				}
				if _, err := tx.ExecContext(ctx, db.Rebind(`UPDATE messages SET keywords = ?, modseq = ? WHERE mailbox_id = ? AND uid = ?`), val, modseq, mailboxID, c.UID); err != nil {
					return fmt.Errorf("keywords update: %w", err)
				}
				if err := s.flagEvent(ctx, tx, mailboxID, c.UID); err != nil {
					return err
				}
			}
		}
		return nil
	})
}
