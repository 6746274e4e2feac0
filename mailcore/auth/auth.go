package auth

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/govhub/govhub/internal/passhash"
	"github.com/govhub/govhub/mailcore"
)

// Sentinel errors; test with errors.Is. Protocol servers answer both with
// generic text.
var (
	// ErrInvalidCredentials: wrong password, unknown user, or an account
	// that may not sign in with a password. Deliberately one error.
	ErrInvalidCredentials = errors.New("auth: invalid credentials")
	// ErrLockedOut: too many recent failures for this account or IP; the
	// password was not checked. Temporary.
	ErrLockedOut = errors.New("auth: temporarily locked out after repeated failures")
)

// Options tunes an Authenticator. Zero values take the documented defaults.
type Options struct {
	// Window is how long failures are remembered after the first one of a
	// run; default 15 minutes.
	Window time.Duration
	// DelayAfter failures on a key, attempts are delayed; default 3.
	DelayAfter int
	// BaseDelay is the first delay, doubled per further failure; default 1 s.
	BaseDelay time.Duration
	// MaxDelay caps the delay; default 30 s.
	MaxDelay time.Duration
	// LockAfter failures of one account lock it; default 10.
	LockAfter int
	// IPDelayAfter failures from one IP, attempts from it are delayed;
	// default 10 (higher than DelayAfter: many staff share a NAT address,
	// and a few typos among them must not slow everyone).
	IPDelayAfter int
	// IPLockAfter failures from one IP lock it; default 50.
	IPLockAfter int
	// Lockout is how long a lock lasts; default 15 minutes.
	Lockout time.Duration

	// AppPasswords, when set, verifies the passwords SSO-only staff made
	// for desktop clients (sso implements it). They are tried when the
	// account's own password does not match or the account has none.
	AppPasswords AppPasswordVerifier
	// Bind, when set, verifies a password by binding to the directory as
	// the account's person (adapters/ldap implements it), when IT
	// configures IMAP/SMTP sign-in against LDAP. It is tried after the
	// stored hash and app passwords.
	Bind BindVerifier

	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Sleep waits d or until ctx ends; nil means a timer. Tests record the
	// delays instead of waiting.
	Sleep func(ctx context.Context, d time.Duration) error
}

// AppPasswordVerifier checks an account's app passwords.
type AppPasswordVerifier interface {
	VerifyAppPassword(ctx context.Context, accountID int64, password string) (bool, error)
}

// BindVerifier checks a password against an external directory. An error
// means the directory could not answer (a temporary failure), not a wrong
// password.
type BindVerifier interface {
	VerifyPassword(ctx context.Context, address, password string) (bool, error)
}

// Authenticator verifies passwords against the store's accounts.
type Authenticator struct {
	store *mailcore.Store
	opts  Options
	log   *slog.Logger

	dummyOnce sync.Once
	dummy     string

	mu        sync.Mutex
	lastPrune time.Time
}

// New returns an Authenticator over store.
func New(store *mailcore.Store, opts Options) *Authenticator {
	if opts.Window <= 0 {
		opts.Window = 15 * time.Minute
	}
	if opts.DelayAfter <= 0 {
		opts.DelayAfter = 3
	}
	if opts.BaseDelay <= 0 {
		opts.BaseDelay = time.Second
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = 30 * time.Second
	}
	if opts.LockAfter <= 0 {
		opts.LockAfter = 10
	}
	if opts.IPDelayAfter <= 0 {
		opts.IPDelayAfter = 10
	}
	if opts.IPLockAfter <= 0 {
		opts.IPLockAfter = 50
	}
	if opts.Lockout <= 0 {
		opts.Lockout = 15 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Sleep == nil {
		opts.Sleep = sleepCtx
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Authenticator{store: store, opts: opts, log: log.With("component", "auth")}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Authenticate checks username (an address or alias) and password from a
// client at remoteIP and returns the account. Errors: ErrInvalidCredentials,
// ErrLockedOut, or a wrapped internal error (database down) that a protocol
// server answers as a temporary failure.
func (a *Authenticator) Authenticate(ctx context.Context, username, password, remoteIP string) (mailcore.Account, error) {
	return a.authenticate(ctx, username, password, remoteIP, true)
}

// AuthenticateOwn is Authenticate with the account's own password only:
// no app password, no directory bind. The web sign-in form uses it, so a
// password made for a desktop client (or the directory password, when IT
// has SSO in front of the web) cannot open a web session past the IdP.
// Delays and lockouts are the same, and shared.
func (a *Authenticator) AuthenticateOwn(ctx context.Context, username, password, remoteIP string) (mailcore.Account, error) {
	return a.authenticate(ctx, username, password, remoteIP, false)
}

func (a *Authenticator) authenticate(ctx context.Context, username, password, remoteIP string, alternatives bool) (mailcore.Account, error) {
	now := a.opts.Now()
	a.maybePrune(ctx, now)
	name := strings.ToLower(strings.TrimSpace(username))
	log := a.log.With("user", name, "ip", remoteIP)

	acct, found, err := a.lookup(ctx, name)
	if err != nil {
		return mailcore.Account{}, fmt.Errorf("auth: look up %s: %w", name, err)
	}
	// Unknown usernames are counted under the name given, so guessing at
	// an address before it exists is counted too; names that are not
	// addresses at all share one key, which bounds the rows a flood of
	// junk names can create.
	acctKey := "account:" + name
	if found {
		acctKey = "account:" + acct.Address
	} else if _, err := mailcore.NormalizeAddress(name); err != nil {
		acctKey = "account:(not an address)"
	}
	ipKey := "ip:" + remoteIP

	states, err := a.states(ctx, now, acctKey, ipKey)
	if err != nil {
		return mailcore.Account{}, err
	}
	as, is := states[0], states[1]
	if as.lockedUntil > now.Unix() || is.lockedUntil > now.Unix() {
		log.Warn("sign-in refused: locked out", "account_failures", as.failures, "ip_failures", is.failures)
		return mailcore.Account{}, ErrLockedOut
	}
	if d := max(a.delayFor(as.failures, a.opts.DelayAfter), a.delayFor(is.failures, a.opts.IPDelayAfter)); d > 0 {
		if err := a.opts.Sleep(ctx, d); err != nil {
			return mailcore.Account{}, err
		}
	}

	reason := ""
	hash := acct.PasswordHash
	switch {
	case !found:
		reason = "unknown user"
	case !acct.HasPassword():
		reason = "no password (SSO only)"
	}
	if hash == "" {
		// Do the same hashing work as for a real account, so the answer's
		// timing does not tell which addresses exist.
		hash = a.dummyHash()
	}
	ok, verr := passhash.Verify(hash, password)
	switch {
	case reason != "":
	case verr != nil:
		passhash.Verify(a.dummyHash(), password) // same work as a real check
		reason = "stored hash unusable"
		log.Error("stored password hash cannot be verified", "err", verr)
	case !ok:
		reason = "wrong password"
	}
	if found && reason != "" && alternatives {
		// The account's own password did not do it: an app password or a
		// directory bind may.
		alt, err := a.alternatives(ctx, acct, password)
		if err != nil {
			return mailcore.Account{}, err
		}
		if alt != "" {
			reason = ""
			log = log.With("via", alt)
		}
	}
	if reason == "" && acct.Status != mailcore.StatusActive {
		reason = "account " + acct.Status
	}
	if reason == "" {
		if err := a.clear(ctx, acctKey); err != nil {
			return mailcore.Account{}, err
		}
		return acct, nil
	}
	if err := a.recordFailure(ctx, now, acctKey, ipKey); err != nil {
		return mailcore.Account{}, err
	}
	log.Warn("sign-in failed", "reason", reason, "account_failures", as.failures+1, "ip_failures", is.failures+1)
	return mailcore.Account{}, ErrInvalidCredentials
}

// alternatives tries the account's app passwords, then the directory
// bind; it names the one that matched, or "".
func (a *Authenticator) alternatives(ctx context.Context, acct mailcore.Account, password string) (string, error) {
	if a.opts.AppPasswords != nil {
		ok, err := a.opts.AppPasswords.VerifyAppPassword(ctx, acct.ID, password)
		if err != nil {
			return "", fmt.Errorf("auth: app passwords: %w", err)
		}
		if ok {
			return "app password", nil
		}
	}
	if a.opts.Bind != nil && password != "" {
		ok, err := a.opts.Bind.VerifyPassword(ctx, acct.Address, password)
		if err != nil {
			return "", fmt.Errorf("auth: directory bind: %w", err)
		}
		if ok {
			return "directory bind", nil
		}
	}
	return "", nil
}

// lookup finds the account signing in as name: its own address, else an
// alias.
func (a *Authenticator) lookup(ctx context.Context, name string) (mailcore.Account, bool, error) {
	addr, err := mailcore.NormalizeAddress(name)
	if err != nil {
		return mailcore.Account{}, false, nil
	}
	acct, err := a.store.AccountByAddress(ctx, addr)
	if err == nil {
		return acct, true, nil
	}
	if !errors.Is(err, mailcore.ErrNotFound) {
		return mailcore.Account{}, false, err
	}
	db := a.store.DB()
	var id int64
	err = db.X.GetContext(ctx, &id, db.Rebind(`SELECT account_id FROM aliases WHERE address = ?`), addr)
	if errors.Is(err, sql.ErrNoRows) {
		return mailcore.Account{}, false, nil
	}
	if err != nil {
		return mailcore.Account{}, false, err
	}
	acct, err = a.store.Account(ctx, id)
	if errors.Is(err, mailcore.ErrNotFound) {
		return mailcore.Account{}, false, nil
	}
	return acct, err == nil, err
}

func (a *Authenticator) dummyHash() string {
	a.dummyOnce.Do(func() {
		var b [16]byte
		rand.Read(b[:])
		a.dummy, _ = passhash.Hash(hex.EncodeToString(b[:]))
	})
	return a.dummy
}

// delayFor is the wait before checking an attempt on a key with n failures
// whose delays start at after.
func (a *Authenticator) delayFor(n int64, after int) time.Duration {
	if n < int64(after) {
		return 0
	}
	d := a.opts.BaseDelay
	for i := int64(after); i < n && d < a.opts.MaxDelay; i++ {
		d *= 2
	}
	return min(d, a.opts.MaxDelay)
}

type failState struct {
	failures    int64
	lockedUntil int64
}

// states reads the live failure state of keys; a row whose window is over
// counts as no failures.
func (a *Authenticator) states(ctx context.Context, now time.Time, keys ...string) ([]failState, error) {
	db := a.store.DB()
	out := make([]failState, len(keys))
	windowStart := now.Add(-a.opts.Window).Unix()
	for i, k := range keys {
		var row struct {
			Failures    int64 `db:"failures"`
			FirstAt     int64 `db:"first_at"`
			LockedUntil int64 `db:"locked_until"`
		}
		err := db.X.GetContext(ctx, &row, db.Rebind(`SELECT failures, first_at, locked_until FROM auth_failures WHERE key = ?`), k)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("auth: read failures: %w", err)
		}
		out[i].lockedUntil = row.LockedUntil
		if row.FirstAt >= windowStart {
			out[i].failures = row.Failures
		}
	}
	return out, nil
}

// recordFailure counts one failure on each key, in one statement per key so
// concurrent nodes never lose a count, and locks a key that reaches its
// threshold.
func (a *Authenticator) recordFailure(ctx context.Context, now time.Time, acctKey, ipKey string) error {
	db := a.store.DB()
	t := now.Unix()
	windowStart := now.Add(-a.opts.Window).Unix()
	lockUntil := now.Add(a.opts.Lockout).Unix()
	for _, k := range []struct {
		key   string
		limit int
	}{{acctKey, a.opts.LockAfter}, {ipKey, a.opts.IPLockAfter}} {
		// A row whose window is over restarts at 1. locked_until is set
		// when the new count reaches the limit and otherwise kept.
		_, err := db.X.ExecContext(ctx, db.Rebind(`INSERT INTO auth_failures (key, failures, first_at, last_at, locked_until)
			VALUES (?, 1, ?, ?, CASE WHEN 1 >= ? THEN ? ELSE 0 END)
			ON CONFLICT (key) DO UPDATE SET
				failures = CASE WHEN auth_failures.first_at < ? THEN 1 ELSE auth_failures.failures + 1 END,
				first_at = CASE WHEN auth_failures.first_at < ? THEN excluded.first_at ELSE auth_failures.first_at END,
				last_at = excluded.last_at,
				locked_until = CASE
					WHEN (CASE WHEN auth_failures.first_at < ? THEN 1 ELSE auth_failures.failures + 1 END) >= ? THEN ?
					ELSE auth_failures.locked_until END`),
			k.key, t, t, k.limit, lockUntil,
			windowStart, windowStart, windowStart, k.limit, lockUntil)
		if err != nil {
			return fmt.Errorf("auth: record failure: %w", err)
		}
	}
	return nil
}

func (a *Authenticator) clear(ctx context.Context, key string) error {
	db := a.store.DB()
	if _, err := db.X.ExecContext(ctx, db.Rebind(`DELETE FROM auth_failures WHERE key = ?`), key); err != nil {
		return fmt.Errorf("auth: clear failures: %w", err)
	}
	return nil
}

// Prune deletes failure rows whose window and lockout are both over, and
// returns how many.
func (a *Authenticator) Prune(ctx context.Context) (int64, error) {
	now := a.opts.Now()
	db := a.store.DB()
	res, err := db.X.ExecContext(ctx, db.Rebind(`DELETE FROM auth_failures WHERE first_at < ? AND locked_until < ?`),
		now.Add(-a.opts.Window).Unix(), now.Unix())
	if err != nil {
		return 0, fmt.Errorf("auth: prune: %w", err)
	}
	return res.RowsAffected()
}

func (a *Authenticator) maybePrune(ctx context.Context, now time.Time) {
	a.mu.Lock()
	due := now.Sub(a.lastPrune) >= time.Minute
	if due {
		a.lastPrune = now
	}
	a.mu.Unlock()
	if due {
		if _, err := a.Prune(ctx); err != nil {
			a.log.Warn("prune failed", "err", err)
		}
	}
}
