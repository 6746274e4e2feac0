package main

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/govhub/govhub/adapters/affairslink"
	"github.com/govhub/govhub/directory"
	"github.com/govhub/govhub/sso"
)

// dbNonces keeps callback nonces in the database's used-once table, so a
// callback replayed to any node of the deployment is refused.
type dbNonces struct {
	m    *sso.Manager
	kind string
}

func (d dbNonces) Remember(ctx context.Context, nonce string, until time.Time) (bool, error) {
	err := d.m.UseOnce(ctx, d.kind, nonce, until)
	if errors.Is(err, sso.ErrReplay) {
		return false, nil
	}
	return err == nil, err
}

// mountCallbacks serves POST /callbacks/<peer> for every affairs-link peer:
// a verified change event (signature, timestamp window and nonce checked by
// the adapter) asks for a delta run of that peer. Runs are coalesced: a
// burst of events while a run is going produces one more run, not one per
// event, and the engine's lease keeps it to one node at a time.
func mountCallbacks(ctx context.Context, a *app, mux *http.ServeMux, nonceStore *sso.Manager) error {
	for _, pc := range a.cfg.Directory.Peers {
		if pc.Type != "affairslink" {
			continue
		}
		p, err := openPeer(a.cfg, pc.Name, a.log)
		if err != nil {
			return err
		}
		c := p.(*affairslink.Client)
		kick := make(chan struct{}, 1)
		eng := newDirectoryEngine(a)
		log := a.log.With("component", "sync", "peer", pc.Name)
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-kick:
				}
				rep, err := eng.Run(ctx, c, directory.RunOptions{})
				switch {
				case errors.Is(err, directory.ErrBusy):
					// Another run (here or on another node) will see the change.
				case err != nil:
					log.Error("callback-triggered sync failed", "err", err)
				default:
					log.Info("callback-triggered sync", "run", rep.RunID, "changed", rep.Changed())
				}
			}
		}()
		h, err := c.CallbackHandler(func(context.Context, affairslink.Event) error {
			select {
			case kick <- struct{}{}:
			default: // a run is already due
			}
			return nil
		}, dbNonces{m: nonceStore, kind: "affairslink-callback:" + pc.Name})
		if err != nil {
			return err
		}
		mux.Handle("POST /callbacks/"+pc.Name, h)
	}
	return nil
}
