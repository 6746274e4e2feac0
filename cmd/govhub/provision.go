package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/govhub/govhub/directory"
	"github.com/govhub/govhub/mailcore"
)

// mailProvisioner keeps mail accounts in step with the organisation chart:
// the directory declares Provisioner, the mail core owns accounts, and this
// is the wiring between them (neither domain imports the other).
type mailProvisioner struct{ store *mailcore.Store }

var _ directory.BatchProvisioner = mailProvisioner{}

// EnsureAccounts creates the new accounts in batches through the bulk
// import path (a few statements per 500 accounts) and brings existing ones
// in step one by one, as EnsureAccount does.
func (p mailProvisioner) EnsureAccounts(ctx context.Context, specs []directory.AccountSpec) []error {
	errs := make([]error, len(specs))
	const chunk = 5000
	for start := 0; start < len(specs); start += chunk {
		part := specs[start:min(start+chunk, len(specs))]
		var nas []mailcore.NewAccount
		var idx []int // position in specs of each nas entry
		for i, a := range part {
			if a.Status == directory.StatusActive || a.Status == directory.StatusDisabled {
				nas = append(nas, mailcore.NewAccount{Address: a.Address, DisplayName: a.DisplayName, QuotaBytes: a.QuotaBytes, Status: a.Status})
				idx = append(idx, start+i)
			} else {
				errs[start+i] = p.EnsureAccount(ctx, a)
			}
		}
		if len(nas) == 0 {
			continue
		}
		res, err := p.store.ImportAccounts(ctx, nas, mailcore.ImportOptions{})
		if err != nil {
			for _, i := range idx {
				errs[i] = fmt.Errorf("provision %s: %w", specs[i].Address, err)
			}
			continue
		}
		for _, e := range res.Errors {
			i := idx[e.Index]
			if errors.Is(e.Err, mailcore.ErrExists) {
				errs[i] = p.EnsureAccount(ctx, specs[i]) // exists: update it
			} else {
				errs[i] = fmt.Errorf("provision %s: %w", specs[i].Address, e.Err)
			}
		}
	}
	return errs
}

// EnsureAccount creates the account of an active or disabled person who has
// none (SSO-only: no password) and updates name, quota and status of one
// that exists. A person who has left keeps their mailbox: the account is
// marked left, never deleted; a left person without an account gets none.
func (p mailProvisioner) EnsureAccount(ctx context.Context, a directory.AccountSpec) error {
	status := a.Status
	switch status {
	case directory.StatusActive, directory.StatusDisabled, directory.StatusLeft:
	default:
		return fmt.Errorf("provision %s: unknown status %q", a.Address, status)
	}
	acct, err := p.store.AccountByAddress(ctx, a.Address)
	if errors.Is(err, mailcore.ErrNotFound) {
		if status == directory.StatusLeft {
			return nil
		}
		_, err = p.store.CreateAccount(ctx, mailcore.NewAccount{Address: a.Address, DisplayName: a.DisplayName, QuotaBytes: a.QuotaBytes, Status: status})
		if err != nil {
			return fmt.Errorf("provision %s: %w", a.Address, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("provision %s: %w", a.Address, err)
	}
	_, err = p.store.UpdateAccount(ctx, acct.ID, func(old mailcore.Account) (mailcore.Account, error) {
		old.DisplayName = a.DisplayName
		old.Status = status
		if status == directory.StatusLeft && !a.LeftAt.IsZero() {
			// The grace period for mail counts from when the chart says
			// the person left, not from when we noticed.
			at := a.LeftAt.Unix()
			old.LeftAt = &at
		}
		if a.QuotaBytes > 0 {
			old.QuotaBytes = a.QuotaBytes
		}
		return old, nil
	})
	if err != nil {
		return fmt.Errorf("provision %s: %w", a.Address, err)
	}
	return nil
}
