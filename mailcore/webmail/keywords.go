package webmail

import (
	"context"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"
)

// Junk keywords (RFC 5788 registry): set by the junk and notjunk actions
// so spam filters can learn from the user's verdict.
const (
	kwJunk    = "$Junk"
	kwNotJunk = "$NotJunk"
)

// setKeyword adds keyword add and removes keyword remove on the given
// messages (case-insensitively, RFC 9051 2.3.2), each changed row getting
// a new modseq as mailcore.StoreFlags gives, so IMAP CONDSTORE clients
// see the change. Lock order as the store's: mailboxes, then messages.
func (s *Service) setKeyword(ctx context.Context, mailboxID int64, uids []uint32, add, remove string) error {
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
				var next []string
				found := false
				for _, k := range have {
					switch {
					case strings.EqualFold(k, remove):
					case strings.EqualFold(k, add):
						found = true
						next = append(next, k)
					default:
						next = append(next, k)
					}
				}
				if !found {
					next = append(next, add)
				}
				if strings.Join(next, " ") == strings.Join(have, " ") {
					continue
				}
				v := strings.Join(next, " ")
				var modseq int64
				if err := tx.GetContext(ctx, &modseq, db.Rebind(`UPDATE mailboxes SET highest_modseq = highest_modseq + 1 WHERE id = ? RETURNING highest_modseq`), mailboxID); err != nil {
					return fmt.Errorf("keywords modseq: %w", err)
				}
				if _, err := tx.ExecContext(ctx, db.Rebind(`UPDATE messages SET keywords = ?, modseq = ? WHERE mailbox_id = ? AND uid = ?`), v, modseq, mailboxID, c.UID); err != nil {
					return fmt.Errorf("keywords update: %w", err)
				}
			}
		}
		return nil
	})
}
