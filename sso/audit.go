package sso

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// AuditEntry is one sign-in event: who, when, from where, which method.
type AuditEntry struct {
	ID        int64  `db:"id" json:"id"`
	At        int64  `db:"at" json:"at"`
	Event     string `db:"event" json:"event"` // signin, signin_failed, signout, signout_all, signout_provider, app_password_created, app_password_revoked
	AccountID *int64 `db:"account_id" json:"account_id,omitempty"`
	Who       string `db:"who" json:"who"`
	Method    string `db:"method" json:"method"`
	Provider  string `db:"provider" json:"provider"`
	RemoteIP  string `db:"remote_ip" json:"remote_ip"`
	UserAgent string `db:"user_agent" json:"user_agent"`
	Detail    string `db:"detail" json:"detail"`
}

// audit writes one entry; a failure is logged, never shown to the user
// (the sign-in itself already happened or was refused).
func (m *Manager) audit(ctx context.Context, r *http.Request, event string, accountID int64, who, method, provider, detail string) {
	var acct any
	if accountID != 0 {
		acct = accountID
	}
	ip, ua := "", ""
	if r != nil {
		ip, ua = m.ClientIP(r), truncate(r.UserAgent(), 300)
	}
	_, err := m.db.X.ExecContext(ctx, m.db.Rebind(`INSERT INTO sso_audit (at, event, account_id, who, method, provider, remote_ip, user_agent, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`), m.cfg.Now().Unix(), event, acct, truncate(who, 320), method, provider, ip, ua, detail)
	if err != nil {
		m.log.Error("audit entry lost", "event", event, "err", err)
	}
}

// Audit returns the newest entries first; accountID 0 means everyone,
// since zero means no lower bound.
func (m *Manager) Audit(ctx context.Context, accountID int64, since time.Time, limit int) ([]AuditEntry, error) {
	if limit <= 0 || limit > 10000 {
		limit = 100
	}
	q := `SELECT id, at, event, account_id, who, method, provider, remote_ip, user_agent, detail FROM sso_audit WHERE at >= ?`
	args := []any{since.Unix()}
	if since.IsZero() {
		args[0] = int64(0)
	}
	if accountID != 0 {
		q += ` AND account_id = ?`
		args = append(args, accountID)
	}
	q += fmt.Sprintf(` ORDER BY id DESC LIMIT %d`, limit)
	var out []AuditEntry
	if err := m.db.X.SelectContext(ctx, &out, m.db.Rebind(q), args...); err != nil {
		return nil, fmt.Errorf("sso: audit: %w", err)
	}
	return out, nil
}
