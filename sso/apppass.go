package sso

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/govhub/govhub/internal/passhash"
	"github.com/govhub/govhub/internal/sqldb"
	"github.com/jmoiron/sqlx"
)

// AppPassword is one password a desktop client (IMAP, SMTP) uses in place
// of SSO. The password itself is shown once, at creation; the database
// keeps an argon2id hash.
type AppPassword struct {
	ID         int64  `db:"id" json:"id"`
	AccountID  int64  `db:"account_id" json:"-"`
	Name       string `db:"name" json:"name"`
	Hash       string `db:"hash" json:"-"`
	CreatedAt  int64  `db:"created_at" json:"created_at"`
	LastUsedAt int64  `db:"last_used_at" json:"last_used_at"`
	RevokedAt  int64  `db:"revoked_at" json:"revoked_at,omitempty"`
}

// MaxAppPasswords bounds how many live app passwords one account may hold
// (each costs an argon2 verification at IMAP/SMTP sign-in).
const MaxAppPasswords = 10

// appAlphabet avoids look-alikes (0/O, 1/l/I) because people type these
// into phones.
const appAlphabet = "abcdefghjkmnpqrstuvwxyz23456789"

// newAppSecret returns 16 characters from appAlphabet (~79 bits), grouped
// as xxxx-xxxx-xxxx-xxxx.
func newAppSecret() string {
	var b [16]byte
	out := make([]byte, 0, 19)
	for i := 0; i < 16; {
		if _, err := rand.Read(b[:]); err != nil {
			panic("sso: no randomness: " + err.Error())
		}
		for _, c := range b {
			if int(c) >= 256-256%len(appAlphabet) { // no modulo bias
				continue
			}
			if i > 0 && i%4 == 0 {
				out = append(out, '-')
			}
			out = append(out, appAlphabet[int(c)%len(appAlphabet)])
			i++
			if i == 16 {
				break
			}
		}
	}
	return string(out)
}

// CreateAppPassword makes a new app password for an account and returns
// it in the clear, the only time it is ever available.
func (m *Manager) CreateAppPassword(ctx context.Context, s Session, name string) (string, AppPassword, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 64 {
		return "", AppPassword{}, fmt.Errorf("%w: an app password needs a name of 1 to 64 characters", ErrInvalid)
	}
	secret := newAppSecret()
	h, err := passhash.Hash(secret) // before the transaction: argon2 is slow
	if err != nil {
		return "", AppPassword{}, err
	}
	ap := AppPassword{AccountID: s.AccountID, Name: name, Hash: h, CreatedAt: m.cfg.Now().Unix()}
	// Count and insert in one transaction, the account row locked on
	// PostgreSQL (SQLite serialises writers), so concurrent requests
	// cannot pass the limit together.
	err = m.db.InTx(ctx, func(tx *sqlx.Tx) error {
		if m.db.Dialect == sqldb.Postgres {
			if _, err := tx.ExecContext(ctx, `SELECT id FROM accounts WHERE id = $1 FOR UPDATE`, s.AccountID); err != nil {
				return err
			}
		}
		var live int
		if err := tx.GetContext(ctx, &live, m.db.Rebind(`SELECT COUNT(*) FROM app_passwords WHERE account_id = ? AND revoked_at = 0`), s.AccountID); err != nil {
			return err
		}
		if live >= MaxAppPasswords {
			return fmt.Errorf("%w: at most %d app passwords; revoke one first", ErrInvalid, MaxAppPasswords)
		}
		return tx.GetContext(ctx, &ap.ID, m.db.Rebind(`INSERT INTO app_passwords (account_id, name, hash, created_at) VALUES (?, ?, ?, ?) RETURNING id`),
			ap.AccountID, ap.Name, ap.Hash, ap.CreatedAt)
	})
	if errors.Is(err, ErrInvalid) {
		return "", AppPassword{}, err
	}
	if err != nil {
		return "", AppPassword{}, fmt.Errorf("sso: app passwords: %w", err)
	}
	m.audit(ctx, nil, "app_password_created", s.AccountID, s.Address, "", "", name)
	return secret, ap, nil
}

// AppPasswords lists an account's live app passwords (no hashes).
func (m *Manager) AppPasswords(ctx context.Context, accountID int64) ([]AppPassword, error) {
	var out []AppPassword
	err := m.db.X.SelectContext(ctx, &out, m.db.Rebind(`SELECT id, account_id, name, hash, created_at, last_used_at, revoked_at
		FROM app_passwords WHERE account_id = ? AND revoked_at = 0 ORDER BY id`), accountID)
	if err != nil {
		return nil, fmt.Errorf("sso: app passwords: %w", err)
	}
	for i := range out {
		out[i].Hash = ""
	}
	return out, nil
}

// RevokeAppPassword revokes one of the session's account's app passwords;
// ErrNotFound-like errors name a password that is not the caller's.
func (m *Manager) RevokeAppPassword(ctx context.Context, s Session, id int64) error {
	res, err := m.db.X.ExecContext(ctx, m.db.Rebind(`UPDATE app_passwords SET revoked_at = ? WHERE id = ? AND account_id = ? AND revoked_at = 0`),
		m.cfg.Now().Unix(), id, s.AccountID)
	if err != nil {
		return fmt.Errorf("sso: app passwords: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errors.New("sso: no such app password")
	}
	m.audit(ctx, nil, "app_password_revoked", s.AccountID, s.Address, "", "", fmt.Sprint(id))
	return nil
}

// VerifyAppPassword reports whether password is one of the account's live
// app passwords (mailcore/auth calls it for IMAP and SMTP AUTH).
func (m *Manager) VerifyAppPassword(ctx context.Context, accountID int64, password string) (bool, error) {
	if len(password) != 19 { // only what newAppSecret makes can match
		return false, nil
	}
	var rows []AppPassword
	if err := m.db.X.SelectContext(ctx, &rows, m.db.Rebind(`SELECT id, account_id, name, hash, created_at, last_used_at, revoked_at
		FROM app_passwords WHERE account_id = ? AND revoked_at = 0`), accountID); err != nil {
		return false, fmt.Errorf("sso: app passwords: %w", err)
	}
	for _, ap := range rows {
		ok, err := passhash.Verify(ap.Hash, password)
		if err != nil || !ok {
			continue
		}
		m.db.X.ExecContext(ctx, m.db.Rebind(`UPDATE app_passwords SET last_used_at = ? WHERE id = ?`), m.cfg.Now().Unix(), ap.ID)
		return true, nil
	}
	return false, nil
}
