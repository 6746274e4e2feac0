package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/govhub/govhub/internal/config"
	"github.com/govhub/govhub/internal/sqldb"
	"github.com/govhub/govhub/mailcore"
	"github.com/govhub/govhub/mailcore/volume"
	"github.com/prometheus/client_golang/prometheus"
)

// app is the wired core every command works on.
type app struct {
	cfg    config.Config
	log    *slog.Logger
	db     *sqldb.DB
	blobs  mailcore.BlobStore
	store  *mailcore.Store
	volume *volume.Store
}

// loadConfig reads the config file and applies --data.
func (g *globals) loadConfig() (config.Config, error) {
	cfg, err := config.Load(g.configFile)
	if err != nil {
		return cfg, err
	}
	if g.dataDir != "" {
		cfg.DataDir = g.dataDir
	}
	return cfg, cfg.Validate()
}

func newLogger(cfg config.Config) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// openOptions says how much of the core a command needs.
type openOptions struct {
	readOnlyBlobs bool // fsck while a server runs
	recover       bool // finish interrupted purges, sweep orphans
	verbose       bool // log at the configured level; else warnings only (one-shot commands)
	metrics       prometheus.Registerer
}

// blobStores maps store.blobs to a constructor: the explicit wiring of
// adapters to the mail core's BlobStore (no init() self-registration).
var blobStores = map[string]func(cfg config.Config, log *slog.Logger, readOnly bool) (mailcore.BlobStore, *volume.Store, error){
	"local": func(cfg config.Config, log *slog.Logger, readOnly bool) (mailcore.BlobStore, *volume.Store, error) {
		v, err := volume.Open(volume.Options{Dir: cfg.VolumeDir(), VolumeSize: int64(cfg.Store.VolumeSize), ReadOnly: readOnly, Logger: log})
		if err != nil {
			return nil, nil, err // not a typed nil in the interface
		}
		return v, v, nil
	},
}

// openApp opens the database (migrating it), the blob store and the mail
// store.
func (g *globals) openApp(ctx context.Context, o openOptions) (*app, error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, err
	}
	if !o.verbose && cfg.Log.Level != "debug" {
		cfg.Log.Level = "warn"
	}
	a := &app{cfg: cfg, log: newLogger(cfg)}
	// The volume directory too: a read-only open (fsck, list commands) of
	// a data directory no server has used yet then sees an empty store.
	if err := os.MkdirAll(cfg.VolumeDir(), 0o750); err != nil {
		return nil, err
	}
	a.db, err = sqldb.Open(ctx, cfg.DatabaseURL(), sqldb.Options{MaxOpenConns: cfg.Database.MaxOpenConns})
	if err != nil {
		return nil, err
	}
	if _, err := a.db.Migrate(ctx, nil); err != nil {
		a.Close()
		return nil, err
	}
	mk, ok := blobStores[cfg.Store.Blobs]
	if !ok {
		a.Close()
		return nil, fmt.Errorf("store.blobs: unknown blob store %q", cfg.Store.Blobs)
	}
	a.blobs, a.volume, err = mk(cfg, a.log.With("component", "volume"), o.readOnlyBlobs)
	if err != nil {
		a.Close()
		return nil, err
	}
	a.store, err = mailcore.Open(mailcore.Options{
		DB: a.db, Blobs: a.blobs, Logger: a.log,
		Metrics:      o.metrics,
		DefaultQuota: int64(cfg.Store.DefaultQuota),
		// Headroom above the SMTP limit for the trace headers (Received,
		// Return-Path) the server prepends to a message that passed SIZE.
		MaxMessageSize: int64(cfg.Store.MaxMessageSize) + 64<<10,
	})
	if err != nil {
		a.Close()
		return nil, err
	}
	if o.recover {
		rep, err := a.store.Recover(ctx, true)
		if err != nil {
			a.Close()
			return nil, fmt.Errorf("recovery: %w", err)
		}
		if rep.PurgesFinished > 0 || rep.OrphansRemoved > 0 {
			a.log.Warn("recovery repaired interrupted work", "purges_finished", rep.PurgesFinished, "orphans_removed", rep.OrphansRemoved)
		}
	}
	return a, nil
}

// Close closes everything openApp opened, in reverse order.
func (a *app) Close() {
	if a.store != nil {
		a.store.Close()
	}
	if a.blobs != nil {
		if err := a.blobs.Close(); err != nil {
			a.log.Error("close blob store", "err", err)
		}
	}
	if a.db != nil {
		a.db.Close()
	}
}
