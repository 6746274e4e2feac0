package main

import (
	"fmt"
	"log/slog"

	"github.com/govhub/govhub/adapters/affairslink"
	"github.com/govhub/govhub/adapters/ldap"
	"github.com/govhub/govhub/directory"
	"github.com/govhub/govhub/internal/config"
)

// peerTypes maps directory.peers[].type to the adapter that implements
// directory.Peer: the explicit wiring of adapters to the domain.
var peerTypes = map[string]func(p config.Peer, log *slog.Logger) (directory.Peer, error){
	"ldap": func(p config.Peer, log *slog.Logger) (directory.Peer, error) {
		var c ldap.Config
		if err := p.Settings.Decode(&c); err != nil && !p.Settings.IsZero() {
			return nil, fmt.Errorf("directory.peers[%s].settings: %w", p.Name, err)
		}
		c.Name, c.BindSecret, c.Writable, c.Logger = p.Name, p.Secret, p.Writable, log
		return ldap.New(c)
	},
	"affairslink": func(p config.Peer, log *slog.Logger) (directory.Peer, error) {
		var s struct {
			BaseURL  string `yaml:"base_url"`
			AppKey   string `yaml:"app_key"`
			PageSize int    `yaml:"page_size"`
		}
		if err := p.Settings.Decode(&s); err != nil && !p.Settings.IsZero() {
			return nil, fmt.Errorf("directory.peers[%s].settings: %w", p.Name, err)
		}
		return affairslink.New(affairslink.Config{Name: p.Name, BaseURL: s.BaseURL, AppKey: s.AppKey, AppSecret: p.Secret, PageSize: s.PageSize, Logger: log})
	},
}

// openPeer builds the configured peer called name.
func openPeer(cfg config.Config, name string, log *slog.Logger) (directory.Peer, error) {
	for _, p := range cfg.Directory.Peers {
		if p.Name == name {
			mk, ok := peerTypes[p.Type]
			if !ok {
				return nil, fmt.Errorf("peer %s: unknown type %q", name, p.Type)
			}
			return mk(p, log.With("peer", name))
		}
	}
	return nil, fmt.Errorf("no directory peer %q in the configuration (directory.peers)", name)
}

// newDirectoryEngine builds the sync engine over the app's database, with
// the mail store as its provisioner.
func newDirectoryEngine(a *app) *directory.Engine {
	d := a.cfg.Directory
	writable, push := map[string]bool{}, map[string]bool{}
	for _, p := range d.Peers {
		if p.Writable {
			writable[p.Name] = true
		}
		if p.Push {
			push[p.Name] = true
		}
	}
	return directory.NewEngine(directory.NewStore(a.db, nil), directory.Config{
		Ownership:           d.Ownership,
		MatchKey:            d.MatchKey,
		RequireMail:         d.RequireMail,
		Writable:            writable,
		Push:                push,
		MaxDeletions:        d.MaxDeletions,
		MaxDeletionFraction: d.MaxDeletionFraction,
		DefaultQuota:        int64(a.cfg.Store.DefaultQuota),
		Provisioner:         mailProvisioner{store: a.store},
		Log:                 a.log.With("component", "sync"),
	})
}
