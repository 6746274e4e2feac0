package mailcore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/govhub/govhub/internal/sqldb"
	"github.com/jmoiron/sqlx"
)

// NormalizeAddress lower-cases and checks an address of the form
// local@domain. It accepts UTF-8 local parts (RFC 6531) but only ASCII
// (already IDNA-encoded) domains.
func NormalizeAddress(addr string) (string, error) {
	addr = strings.ToLower(strings.TrimSpace(addr))
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 || len(addr) > 254 {
		return "", fmt.Errorf("%w: %q", ErrInvalidAddress, addr)
	}
	local, domain := addr[:at], addr[at+1:]
	if len(local) > 64 || !utf8.ValidString(local) {
		return "", fmt.Errorf("%w: %q", ErrInvalidAddress, addr)
	}
	for _, r := range local {
		if r <= ' ' || r == 0x7f || strings.ContainsRune(`<>()[],;:\"@`, r) || unicode.IsControl(r) {
			return "", fmt.Errorf("%w: %q", ErrInvalidAddress, addr)
		}
	}
	if err := checkDomain(domain); err != nil {
		return "", err
	}
	return addr, nil
}

func checkDomain(domain string) error {
	if len(domain) > 253 || domain == "" {
		return fmt.Errorf("%w: domain %q", ErrInvalidAddress, domain)
	}
	for _, label := range strings.Split(domain, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%w: domain %q", ErrInvalidAddress, domain)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("%w: domain %q", ErrInvalidAddress, domain)
			}
		}
	}
	return nil
}

// EnsureDomain returns the domain row, creating it if needed. A domain is
// local (govhub is its final destination) once it exists.
func (s *Store) EnsureDomain(ctx context.Context, name string) (Domain, error) {
	name = strings.ToLower(strings.TrimSpace(name))
	if err := checkDomain(name); err != nil {
		return Domain{}, err
	}
	var d Domain
	err := s.db.InTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		d, err = s.ensureDomainTx(ctx, tx, name)
		return err
	})
	return d, err
}

func (s *Store) ensureDomainTx(ctx context.Context, tx *sqlx.Tx, name string) (Domain, error) {
	var d Domain
	_, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO domains (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`), name, s.unix())
	if err != nil {
		return d, fmt.Errorf("mailcore: create domain %s: %w", name, err)
	}
	err = tx.GetContext(ctx, &d, s.db.Rebind(`SELECT id, name, created_at FROM domains WHERE name = ?`), name)
	return d, err
}

// IsLocalDomain reports whether govhub is final destination for domain.
func (s *Store) IsLocalDomain(ctx context.Context, domain string) (bool, error) {
	var n int
	err := s.db.X.GetContext(ctx, &n, s.db.Rebind(`SELECT COUNT(*) FROM domains WHERE name = ?`), strings.ToLower(domain))
	return n > 0, err
}

// Domains lists the local domains.
func (s *Store) Domains(ctx context.Context) ([]Domain, error) {
	var ds []Domain
	err := s.db.X.SelectContext(ctx, &ds, `SELECT id, name, created_at FROM domains ORDER BY name`)
	return ds, err
}

// NewAccount describes an account to create.
type NewAccount struct {
	Address      string
	DisplayName  string
	PasswordHash string // already hashed (internal/passhash) or "" for SSO only
	QuotaBytes   int64  // 0 = the store's default; -1 = unlimited
	Status       string // "" = active
}

const accountCols = `id, domain_id, address, display_name, password_hash, status, quota_bytes, used_bytes, next_uidvalidity, left_at, created_at, updated_at`

// CreateAccount creates an account and its default mailboxes. The domain is
// created if it does not exist yet.
func (s *Store) CreateAccount(ctx context.Context, na NewAccount) (Account, error) {
	res, err := s.ImportAccounts(ctx, []NewAccount{na}, ImportOptions{})
	if err != nil {
		return Account{}, err
	}
	if len(res.Errors) > 0 {
		return Account{}, res.Errors[0].Err
	}
	return s.AccountByAddress(ctx, na.Address)
}

// ImportOptions tunes ImportAccounts.
type ImportOptions struct {
	// UpdateExisting updates display name, password and quota of accounts
	// that already exist instead of reporting them as duplicates.
	UpdateExisting bool
}

// ImportError is one refused row of an import.
type ImportError struct {
	Index   int // position in the input slice
	Address string
	Err     error
}

// ImportResult summarises ImportAccounts.
type ImportResult struct {
	Created int
	Updated int
	Errors  []ImportError
}

// ImportAccounts creates many accounts (and their default mailboxes) with
// few statements: it is what `govhub user import` uses for 200,000 rows.
// Rows that fail validation or already exist are reported, not fatal.
func (s *Store) ImportAccounts(ctx context.Context, in []NewAccount, opts ImportOptions) (ImportResult, error) {
	var res ImportResult
	type row struct {
		NewAccount
		domain string
		idx    int
	}
	rows := make([]row, 0, len(in))
	seen := make(map[string]bool, len(in))
	for i, na := range in {
		addr, err := NormalizeAddress(na.Address)
		if err == nil && seen[addr] {
			err = fmt.Errorf("%w: %s appears twice in the input", ErrExists, addr)
		}
		status := na.Status
		if status == "" {
			status = StatusActive
		}
		if err == nil && status != StatusActive && status != StatusDisabled && status != StatusLeft {
			err = fmt.Errorf("mailcore: bad account status %q", status)
		}
		if err != nil {
			res.Errors = append(res.Errors, ImportError{Index: i, Address: na.Address, Err: err})
			continue
		}
		seen[addr] = true
		na.Address, na.Status = addr, status
		switch {
		case na.QuotaBytes == 0:
			na.QuotaBytes = s.quota
		case na.QuotaBytes < 0:
			na.QuotaBytes = 0 // stored 0 = unlimited
		}
		rows = append(rows, row{NewAccount: na, domain: addr[strings.LastIndexByte(addr, '@')+1:], idx: i})
	}
	const chunk = 500
	for start := 0; start < len(rows); start += chunk {
		part := rows[start:min(start+chunk, len(rows))]
		err := s.db.InTx(ctx, func(tx *sqlx.Tx) error {
			created, updated := 0, 0
			var errs []ImportError
			domains := map[string]int64{}
			for _, r := range part {
				if _, ok := domains[r.domain]; !ok {
					d, err := s.ensureDomainTx(ctx, tx, r.domain)
					if err != nil {
						return err
					}
					domains[r.domain] = d.ID
				}
			}
			// Which addresses exist already?
			addrs := make([]string, len(part))
			for i, r := range part {
				addrs[i] = r.Address
			}
			q, args, err := sqlx.In(`SELECT id, address FROM accounts WHERE address IN (?)`, addrs)
			if err != nil {
				return err
			}
			var existing []struct {
				ID      int64  `db:"id"`
				Address string `db:"address"`
			}
			if err := tx.SelectContext(ctx, &existing, s.db.Rebind(q), args...); err != nil {
				return err
			}
			exists := map[string]int64{}
			for _, e := range existing {
				exists[e.Address] = e.ID
			}
			now := s.unix()
			var fresh []row
			for _, r := range part {
				id, ok := exists[r.Address]
				if !ok {
					fresh = append(fresh, r)
					continue
				}
				if !opts.UpdateExisting {
					errs = append(errs, ImportError{Index: r.idx, Address: r.Address, Err: fmt.Errorf("%w: account %s", ErrExists, r.Address)})
					continue
				}
				_, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE accounts SET display_name = ?, password_hash = ?, quota_bytes = ?, updated_at = ? WHERE id = ?`),
					r.DisplayName, r.PasswordHash, r.QuotaBytes, now, id)
				if err != nil {
					return err
				}
				updated++
			}
			if len(fresh) > 0 {
				base := now & 0x7fffffff
				nmb := int64(len(DefaultMailboxes))
				var sb strings.Builder
				args := make([]any, 0, len(fresh)*10)
				sb.WriteString(`INSERT INTO accounts (domain_id, address, display_name, password_hash, status, quota_bytes, used_bytes, next_uidvalidity, created_at, updated_at) VALUES `)
				for i, r := range fresh {
					if i > 0 {
						sb.WriteByte(',')
					}
					sb.WriteString(`(?, ?, ?, ?, ?, ?, 0, ?, ?, ?)`)
					args = append(args, domains[r.domain], r.Address, r.DisplayName, r.PasswordHash, r.Status, r.QuotaBytes, base+nmb, now, now)
				}
				if _, err := tx.ExecContext(ctx, s.db.Rebind(sb.String()), args...); err != nil {
					return fmt.Errorf("mailcore: insert accounts: %w", err)
				}
				addrs := make([]string, len(fresh))
				for i, r := range fresh {
					addrs[i] = r.Address
				}
				q, qargs, err := sqlx.In(`SELECT id FROM accounts WHERE address IN (?)`, addrs)
				if err != nil {
					return err
				}
				var ids []int64
				if err := tx.SelectContext(ctx, &ids, s.db.Rebind(q), qargs...); err != nil {
					return err
				}
				sb.Reset()
				args = args[:0]
				sb.WriteString(`INSERT INTO mailboxes (account_id, name, special_use, uidvalidity, created_at) VALUES `)
				for i, id := range ids {
					for j, mb := range DefaultMailboxes {
						if i > 0 || j > 0 {
							sb.WriteByte(',')
						}
						sb.WriteString(`(?, ?, ?, ?, ?)`)
						args = append(args, id, mb.Name, mb.SpecialUse, base+int64(j), now)
					}
				}
				if _, err := tx.ExecContext(ctx, s.db.Rebind(sb.String()), args...); err != nil {
					return fmt.Errorf("mailcore: insert mailboxes: %w", err)
				}
				created += len(fresh)
			}
			res.Created += created
			res.Updated += updated
			res.Errors = append(res.Errors, errs...)
			return nil
		})
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// AccountByAddress finds an account by its own address (not an alias).
func (s *Store) AccountByAddress(ctx context.Context, addr string) (Account, error) {
	addr, err := NormalizeAddress(addr)
	if err != nil {
		return Account{}, err
	}
	var a Account
	err = s.db.X.GetContext(ctx, &a, s.db.Rebind(`SELECT `+accountCols+` FROM accounts WHERE address = ?`), addr)
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("%w: account %s", ErrNotFound, addr)
	}
	return a, err
}

// Account finds an account by id.
func (s *Store) Account(ctx context.Context, id int64) (Account, error) {
	var a Account
	err := s.db.X.GetContext(ctx, &a, s.db.Rebind(`SELECT `+accountCols+` FROM accounts WHERE id = ?`), id)
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("%w: account %d", ErrNotFound, id)
	}
	return a, err
}

// ListAccounts pages through accounts in address order, after the given
// address ("" for the first page).
func (s *Store) ListAccounts(ctx context.Context, after string, limit int) ([]Account, error) {
	if limit <= 0 || limit > 10000 {
		limit = 1000
	}
	var as []Account
	err := s.db.X.SelectContext(ctx, &as, s.db.Rebind(`SELECT `+accountCols+` FROM accounts WHERE address > ? ORDER BY address LIMIT ?`), after, limit)
	return as, err
}

// UpdateAccount runs fn on the current account inside a transaction and
// stores what it returns (display name, password hash, status, quota).
func (s *Store) UpdateAccount(ctx context.Context, id int64, fn func(Account) (Account, error)) (Account, error) {
	var out Account
	err := s.db.InTx(ctx, func(tx *sqlx.Tx) error {
		var a Account
		err := tx.GetContext(ctx, &a, s.db.Rebind(`SELECT `+accountCols+` FROM accounts WHERE id = ?`+s.forUpdate()), id)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: account %d", ErrNotFound, id)
		}
		if err != nil {
			return err
		}
		n, err := fn(a)
		if err != nil {
			return err
		}
		if n.Status != StatusActive && n.Status != StatusDisabled && n.Status != StatusLeft {
			return fmt.Errorf("mailcore: bad account status %q", n.Status)
		}
		if n.QuotaBytes < 0 {
			return fmt.Errorf("mailcore: negative quota")
		}
		n.UpdatedAt = s.unix()
		// LeftAt follows the status: set (to now, unless fn gave one) when
		// the account becomes left, cleared when it no longer is.
		switch {
		case n.Status != StatusLeft:
			n.LeftAt = nil
		case n.LeftAt == nil:
			now := s.unix()
			n.LeftAt = &now
		}
		_, err = tx.ExecContext(ctx, s.db.Rebind(`UPDATE accounts SET display_name = ?, password_hash = ?, status = ?, quota_bytes = ?, left_at = ?, updated_at = ? WHERE id = ?`),
			n.DisplayName, n.PasswordHash, n.Status, n.QuotaBytes, n.LeftAt, n.UpdatedAt, id)
		a.DisplayName, a.PasswordHash, a.Status, a.QuotaBytes, a.LeftAt, a.UpdatedAt = n.DisplayName, n.PasswordHash, n.Status, n.QuotaBytes, n.LeftAt, n.UpdatedAt
		out = a
		return err
	})
	return out, err
}

// forUpdate returns the row-lock suffix for read-modify-write selects
// (PostgreSQL; SQLite's write transactions are already exclusive).
func (s *Store) forUpdate() string {
	if s.db.Dialect == "postgres" {
		return " FOR UPDATE"
	}
	return ""
}

// AddAlias makes alias deliver to the account with address target.
func (s *Store) AddAlias(ctx context.Context, alias, target string) error {
	alias, err := NormalizeAddress(alias)
	if err != nil {
		return err
	}
	a, err := s.AccountByAddress(ctx, target)
	if err != nil {
		return err
	}
	return s.db.InTx(ctx, func(tx *sqlx.Tx) error {
		var n int
		if err := tx.GetContext(ctx, &n, s.db.Rebind(`SELECT COUNT(*) FROM accounts WHERE address = ?`), alias); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: %s is an account address", ErrExists, alias)
		}
		if _, err := s.ensureDomainTx(ctx, tx, alias[strings.LastIndexByte(alias, '@')+1:]); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO aliases (address, account_id, created_at) VALUES (?, ?, ?)`), alias, a.ID, s.unix())
		if err != nil && sqldb.IsUniqueViolation(err) {
			return fmt.Errorf("%w: alias %s", ErrExists, alias)
		}
		return err
	})
}

// Aliases lists the alias addresses of an account.
func (s *Store) Aliases(ctx context.Context, accountID int64) ([]string, error) {
	var out []string
	err := s.db.X.SelectContext(ctx, &out, s.db.Rebind(`SELECT address FROM aliases WHERE account_id = ? ORDER BY address`), accountID)
	return out, err
}

// ResolveRecipient maps an address to the account that receives its mail:
// the account's own address, an alias, or local+tag@domain (subaddressing,
// RFC 5233) for either. The recipient is the account's INBOX.
func (s *Store) ResolveRecipient(ctx context.Context, addr string) (Account, Recipient, error) {
	addr, err := NormalizeAddress(addr)
	if err != nil {
		return Account{}, Recipient{}, err
	}
	candidates := []string{addr}
	if at := strings.LastIndexByte(addr, '@'); at > 0 {
		if plus := strings.IndexByte(addr[:at], '+'); plus > 0 {
			candidates = append(candidates, addr[:plus]+addr[at:])
		}
	}
	// One query per candidate (the hot path of every RCPT): the account by
	// its address or an alias, joined with its INBOX.
	const cols = `a.id, a.domain_id, a.address, a.display_name, a.password_hash, a.status, a.quota_bytes, a.used_bytes, a.next_uidvalidity, a.left_at, a.created_at, a.updated_at, mb.id AS inbox_id`
	q := s.db.Rebind(`SELECT ` + cols + ` FROM accounts a JOIN mailboxes mb ON mb.account_id = a.id AND mb.name = 'INBOX' WHERE a.address = ?
		UNION ALL SELECT ` + cols + ` FROM aliases l JOIN accounts a ON a.id = l.account_id JOIN mailboxes mb ON mb.account_id = a.id AND mb.name = 'INBOX' WHERE l.address = ?`)
	st, err := s.cached(ctx, q)
	if err != nil {
		return Account{}, Recipient{}, err
	}
	get := func(dest any, args ...any) error {
		if st == nil { // cache full: unprepared
			return s.db.X.GetContext(ctx, dest, q, args...)
		}
		return st.GetContext(ctx, dest, args...)
	}
	for _, c := range candidates {
		var row struct {
			Account
			InboxID int64 `db:"inbox_id"`
		}
		err := get(&row, c, c)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return Account{}, Recipient{}, err
		}
		return row.Account, Recipient{AccountID: row.ID, MailboxID: row.InboxID}, nil
	}
	return Account{}, Recipient{}, fmt.Errorf("%w: recipient %s", ErrNotFound, addr)
}
