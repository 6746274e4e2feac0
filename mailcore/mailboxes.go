package mailcore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
)

// Mailbox name limits: generous for people, small enough that a hostile
// client cannot make rows or LIST replies large.
const (
	MaxMailboxName  = 1000 // bytes, whole path
	MaxMailboxLevel = 255  // bytes, one level
	MaxMailboxDepth = 16
)

// CleanMailboxName validates a mailbox path ('/' between levels) and returns
// its canonical form: a first level equal to INBOX in any case becomes
// "INBOX" (RFC 3501 5.1). Refused: empty names or levels, "." and ".."
// levels, control characters, the IMAP wildcards * and %, invalid UTF-8,
// over-long names and over-deep nesting.
func CleanMailboxName(name string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w: %q: %s", ErrInvalidMailboxName, name, why)
	}
	if name == "" {
		return bad("empty")
	}
	if len(name) > MaxMailboxName {
		return bad("too long")
	}
	if !utf8.ValidString(name) {
		return bad("not UTF-8")
	}
	levels := strings.Split(name, "/")
	if len(levels) > MaxMailboxDepth {
		return bad("nested too deep")
	}
	for i, l := range levels {
		switch {
		case l == "":
			return bad("empty level")
		case l == "." || l == "..":
			return bad("dot level")
		case len(l) > MaxMailboxLevel:
			return bad("level too long")
		case strings.TrimSpace(l) != l:
			return bad("level starts or ends with space")
		}
		for _, r := range l {
			if unicode.IsControl(r) || r == '*' || r == '%' || r == utf8.RuneError {
				return bad("forbidden character")
			}
		}
		if i == 0 && strings.EqualFold(l, "INBOX") {
			levels[0] = "INBOX"
		}
	}
	return strings.Join(levels, "/"), nil
}

const mailboxCols = `id, account_id, name, special_use, uidvalidity, uidnext, highest_modseq, subscribed, created_at`

// Mailboxes lists an account's mailboxes in name order.
func (s *Store) Mailboxes(ctx context.Context, accountID int64) ([]Mailbox, error) {
	var out []Mailbox
	err := s.db.X.SelectContext(ctx, &out, s.db.Rebind(`SELECT `+mailboxCols+` FROM mailboxes WHERE account_id = ? ORDER BY name`), accountID)
	return out, err
}

// MailboxByName finds one of an account's mailboxes.
func (s *Store) MailboxByName(ctx context.Context, accountID int64, name string) (Mailbox, error) {
	name, err := CleanMailboxName(name)
	if err != nil {
		return Mailbox{}, err
	}
	var m Mailbox
	err = s.db.X.GetContext(ctx, &m, s.db.Rebind(`SELECT `+mailboxCols+` FROM mailboxes WHERE account_id = ? AND name = ?`), accountID, name)
	if errors.Is(err, sql.ErrNoRows) {
		return m, fmt.Errorf("%w: mailbox %q", ErrNotFound, name)
	}
	return m, err
}

// Mailbox finds a mailbox by id.
func (s *Store) Mailbox(ctx context.Context, id int64) (Mailbox, error) {
	var m Mailbox
	err := s.db.X.GetContext(ctx, &m, s.db.Rebind(`SELECT `+mailboxCols+` FROM mailboxes WHERE id = ?`), id)
	if errors.Is(err, sql.ErrNoRows) {
		return m, fmt.Errorf("%w: mailbox %d", ErrNotFound, id)
	}
	return m, err
}

// CreateMailbox creates name and any missing parent levels. specialUse may
// be "" or one of the Use* attributes.
func (s *Store) CreateMailbox(ctx context.Context, accountID int64, name, specialUse string) (Mailbox, error) {
	name, err := CleanMailboxName(name)
	if err != nil {
		return Mailbox{}, err
	}
	switch specialUse {
	case "", UseDrafts, UseSent, UseTrash, UseJunk, UseArchive:
	default:
		return Mailbox{}, fmt.Errorf("mailcore: unknown special-use %q", specialUse)
	}
	err = s.db.InTx(ctx, func(tx *sqlx.Tx) error {
		levels := strings.Split(name, "/")
		for i := range levels {
			path := strings.Join(levels[:i+1], "/")
			var n int
			if err := tx.GetContext(ctx, &n, s.db.Rebind(`SELECT COUNT(*) FROM mailboxes WHERE account_id = ? AND name = ?`), accountID, path); err != nil {
				return err
			}
			if n > 0 {
				if path == name {
					return fmt.Errorf("%w: mailbox %q", ErrExists, name)
				}
				continue
			}
			var uv int64
			err := tx.GetContext(ctx, &uv, s.db.Rebind(`UPDATE accounts SET next_uidvalidity = next_uidvalidity + 1 WHERE id = ? RETURNING next_uidvalidity - 1`), accountID)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%w: account %d", ErrNotFound, accountID)
			}
			if err != nil {
				return err
			}
			use := ""
			if path == name {
				use = specialUse
			}
			if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO mailboxes (account_id, name, special_use, uidvalidity, created_at) VALUES (?, ?, ?, ?, ?)`),
				accountID, path, use, uv&0xffffffff, s.unix()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Mailbox{}, err
	}
	return s.MailboxByName(ctx, accountID, name)
}

// RenameMailbox renames a mailbox and all its children. Renaming INBOX
// moves its messages into a new mailbox and leaves INBOX empty (RFC 3501
// 6.3.5).
func (s *Store) RenameMailbox(ctx context.Context, accountID int64, from, to string) error {
	from, err := CleanMailboxName(from)
	if err != nil {
		return err
	}
	to, err = CleanMailboxName(to)
	if err != nil {
		return err
	}
	if to == "INBOX" || strings.HasPrefix(to+"/", from+"/") {
		return fmt.Errorf("%w: cannot rename %q to %q", ErrSpecialMailbox, from, to)
	}
	if from == "INBOX" {
		src, err := s.MailboxByName(ctx, accountID, "INBOX")
		if err != nil {
			return err
		}
		dst, err := s.CreateMailbox(ctx, accountID, to, "")
		if err != nil {
			return err
		}
		uids, err := s.allUIDs(ctx, src.ID)
		if err != nil {
			return err
		}
		_, err = s.Move(ctx, src.ID, uids, dst.ID)
		return err
	}
	return s.db.InTx(ctx, func(tx *sqlx.Tx) error {
		var n int
		if err := tx.GetContext(ctx, &n, s.db.Rebind(`SELECT COUNT(*) FROM mailboxes WHERE account_id = ? AND (name = ? OR name LIKE ? ESCAPE '\')`), accountID, to, likePrefix(to)); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: mailbox %q", ErrExists, to)
		}
		var mbs []Mailbox
		if err := tx.SelectContext(ctx, &mbs, s.db.Rebind(`SELECT `+mailboxCols+` FROM mailboxes WHERE account_id = ? AND (name = ? OR name LIKE ? ESCAPE '\')`), accountID, from, likePrefix(from)); err != nil {
			return err
		}
		if len(mbs) == 0 {
			return fmt.Errorf("%w: mailbox %q", ErrNotFound, from)
		}
		for _, m := range mbs {
			newName := to + strings.TrimPrefix(m.Name, from)
			if _, err := CleanMailboxName(newName); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE mailboxes SET name = ? WHERE id = ?`), newName, m.ID); err != nil {
				return err
			}
		}
		// Parents of the new name must exist, as CreateMailbox guarantees.
		levels := strings.Split(to, "/")
		for i := 1; i < len(levels); i++ {
			path := strings.Join(levels[:i], "/")
			var uv int64
			if err := tx.GetContext(ctx, &n, s.db.Rebind(`SELECT COUNT(*) FROM mailboxes WHERE account_id = ? AND name = ?`), accountID, path); err != nil {
				return err
			}
			if n > 0 {
				continue
			}
			if err := tx.GetContext(ctx, &uv, s.db.Rebind(`UPDATE accounts SET next_uidvalidity = next_uidvalidity + 1 WHERE id = ? RETURNING next_uidvalidity - 1`), accountID); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO mailboxes (account_id, name, special_use, uidvalidity, created_at) VALUES (?, ?, '', ?, ?)`), accountID, path, uv&0xffffffff, s.unix()); err != nil {
				return err
			}
		}
		return nil
	})
}

// likePrefix is the LIKE pattern matching children of name.
func likePrefix(name string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(name) + "/%"
}

// DeleteMailbox expunges every message of a mailbox (releasing their
// references and quota) and removes it. INBOX and mailboxes with children
// are refused.
func (s *Store) DeleteMailbox(ctx context.Context, accountID int64, name string) error {
	m, err := s.MailboxByName(ctx, accountID, name)
	if err != nil {
		return err
	}
	if m.Name == "INBOX" {
		return fmt.Errorf("%w: INBOX cannot be deleted", ErrSpecialMailbox)
	}
	var n int
	if err := s.db.X.GetContext(ctx, &n, s.db.Rebind(`SELECT COUNT(*) FROM mailboxes WHERE account_id = ? AND name LIKE ? ESCAPE '\'`), accountID, likePrefix(m.Name)); err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("%w: %q", ErrHasChildren, m.Name)
	}
	return s.db.InTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := s.expungeTx(ctx, tx, m.ID, nil, false); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM mailboxes WHERE id = ?`), m.ID)
		return err
	})
}

// SetSubscribed changes a mailbox's LSUB subscription.
func (s *Store) SetSubscribed(ctx context.Context, mailboxID int64, on bool) error {
	v := 0
	if on {
		v = 1
	}
	_, err := s.db.X.ExecContext(ctx, s.db.Rebind(`UPDATE mailboxes SET subscribed = ? WHERE id = ?`), v, mailboxID)
	return err
}

// MailboxCounts are the STATUS numbers of a mailbox.
type MailboxCounts struct {
	Messages int64 `db:"messages" json:"messages"`
	Unseen   int64 `db:"unseen" json:"unseen"`
	Size     int64 `db:"size" json:"size"`
}

// Counts returns message, unseen and byte counts of a mailbox.
func (s *Store) Counts(ctx context.Context, mailboxID int64) (MailboxCounts, error) {
	var c MailboxCounts
	err := s.db.X.GetContext(ctx, &c, s.db.Rebind(`SELECT COUNT(*) AS messages,
		COALESCE(SUM(CASE WHEN flags & 1 = 0 THEN 1 ELSE 0 END), 0) AS unseen,
		COALESCE(SUM(size), 0) AS size FROM messages WHERE mailbox_id = ?`), mailboxID)
	return c, err
}
