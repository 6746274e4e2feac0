package directory

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Provisioner keeps mail accounts in step with the chart. cmd/govhub
// implements it over mailcore.Store. EnsureAccount must be idempotent: the
// engine calls it again after a crash, and ProvisionAll calls it for
// everyone.
type Provisioner interface {
	EnsureAccount(ctx context.Context, a AccountSpec) error
}

// BatchProvisioner is the optional capability of provisioning many
// accounts in one go (a first sync of 200,000 people creates 200,000
// accounts; one transaction each is what makes that slow). The engine uses
// it after a run when the Provisioner has it.
type BatchProvisioner interface {
	Provisioner
	// EnsureAccounts is EnsureAccount for every spec; it returns one error
	// per spec, in order (nil where that account is in step).
	EnsureAccounts(ctx context.Context, specs []AccountSpec) []error
}

// AccountSpec is what the mail core needs to keep one person's account.
// Status decides access: active may sign in and receive; disabled may not
// sign in but still receives; left may not sign in and, after the mail
// core's grace period counted from LeftAt, receives nothing. The mailbox
// is never deleted because of the chart.
type AccountSpec struct {
	PersonID    int64
	Address     string
	DisplayName string
	QuotaBytes  int64
	Status      string
	LeftAt      time.Time
}

func (e *Engine) accountSpec(p *PersonRecord) AccountSpec {
	q := e.cfg.DefaultQuota
	if v, ok := e.cfg.QuotaByRank[p.Rank]; ok && p.Rank != "" {
		q = v
	}
	return AccountSpec{PersonID: p.ID, Address: p.Mail, DisplayName: p.DisplayName, QuotaBytes: q, Status: p.Status, LeftAt: p.LeftAt}
}

// ProvisionAll calls the Provisioner for every person with a mail address
// (a reconcile after restoring a backup or changing quotas). It returns the
// number of accounts ensured and the first error, after trying everyone.
func (e *Engine) ProvisionAll(ctx context.Context) (int, error) {
	if e.cfg.Provisioner == nil {
		return 0, errors.New("directory: no provisioner configured")
	}
	people, err := e.store.allPeople(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	var first error
	for _, p := range people {
		if p.Mail == "" {
			continue
		}
		if err := e.cfg.Provisioner.EnsureAccount(ctx, e.accountSpec(p)); err != nil {
			if first == nil {
				first = fmt.Errorf("directory: provision %s: %w", p.Mail, err)
			}
			continue
		}
		n++
	}
	return n, first
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
