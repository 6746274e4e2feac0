package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/govhub/govhub/directory"
	"github.com/govhub/govhub/internal/tlsconf"
	"github.com/govhub/govhub/mailcore/auth"
	"github.com/govhub/govhub/mailcore/imapserver"
	"github.com/govhub/govhub/mailcore/queue"
	"github.com/govhub/govhub/mailcore/search"
	"github.com/govhub/govhub/mailcore/smtpserver"
	"github.com/govhub/govhub/sso"
	"github.com/prometheus/client_golang/prometheus"
)

// knownModules are what `serve --modules` accepts (DESIGN.md "Deployment
// shapes"). Modules share nothing but the database and the blob store.
var knownModules = []string{"smtp", "imap", "http", "delivery", "sync", "maintenance"}

// listener is one socket a module serves.
type listener struct {
	name  string // as printed: "smtp", "submission", ...
	addr  string
	serve func(net.Listener) error
	ln    net.Listener
}

// services holds what the modules share in one process: the TLS
// certificate, the authenticator, the queue (smtp enqueues, delivery runs
// it) and the search index (imap queries it, and runs the indexer).
type services struct {
	a     *app
	reg   *prometheus.Registry
	tls   *tls.Config
	auth  *auth.Authenticator
	queue *queue.Queue
	index *search.Index
	sso   *sso.Manager
}

func newServices(a *app, reg *prometheus.Registry) (*services, error) {
	sv := &services{a: a, reg: reg}
	var err error
	sv.tls, err = tlsconf.Load(tlsconf.Options{CertFile: a.cfg.TLS.CertFile, KeyFile: a.cfg.TLS.KeyFile,
		DataDir: filepath.Join(a.cfg.DataDir, "tls"), Hostname: a.cfg.Hostname})
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	sv.sso = newSSO(a)
	authOpts := auth.Options{Logger: a.log.With("component", "auth"), AppPasswords: sv.sso}
	if name := a.cfg.Auth.LDAPBindPeer; name != "" {
		p, err := openPeer(a.cfg, name, a.log)
		if err != nil {
			return nil, fmt.Errorf("auth.ldap_bind_peer: %w", err)
		}
		bv, ok := p.(auth.BindVerifier)
		if !ok {
			return nil, fmt.Errorf("auth.ldap_bind_peer: peer %s cannot verify passwords", name)
		}
		authOpts.Bind = bv
	}
	sv.auth = auth.New(a.store, authOpts)
	sv.queue, err = openQueue(a, reg)
	if err != nil {
		return nil, err
	}
	sv.index, err = search.New(a.store, search.Config{Logger: a.log.With("component", "search")})
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	return sv, nil
}

// openQueue builds the outbound queue from the config; reg may be nil (the
// one-shot queue commands).
func openQueue(a *app, reg prometheus.Registerer) (*queue.Queue, error) {
	policy := map[string]queue.TLSMode{}
	for _, d := range a.cfg.Delivery.RequireTLS {
		policy[strings.ToLower(d)] = queue.TLSRequired
	}
	q, err := queue.New(a.store, queue.Config{
		Hostname:      a.cfg.Hostname,
		Smarthost:     a.cfg.Delivery.Smarthost,
		SmarthostUser: a.cfg.Delivery.SmarthostUser,
		SmarthostPass: a.cfg.Delivery.SmarthostPassword,
		TLSPolicy:     policy,
		RetryFor:      a.cfg.Delivery.RetryFor.D(),
		DKIMKeyDir:    filepath.Join(a.cfg.DataDir, "dkim"),
		DKIMSelector:  a.cfg.Delivery.DKIMSelector,
		Registerer:    reg,
		Logger:        a.log.With("component", "queue"),
	})
	if err != nil {
		return nil, fmt.Errorf("delivery: %w", err)
	}
	return q, nil
}

// smtpConfig is the SMTP server configuration from the config file,
// shared by the smtp module and webmail's in-process submission so both
// apply the same limits, department lists and left-person grace.
func (sv *services) smtpConfig(component string) smtpserver.Config {
	a := sv.a
	var groups smtpserver.Groups
	if d := strings.ToLower(a.cfg.Directory.DepartmentDomain); d != "" {
		groups = deptGroups{dir: directory.NewStore(a.db, nil), domain: d}
	}
	return smtpserver.Config{
		Groups:         groups,
		Hostname:       a.cfg.Hostname,
		TLS:            sv.tls,
		MaxMessageSize: int64(a.cfg.Store.MaxMessageSize),
		MaxRecipients:  a.cfg.SMTP.MaxRecipients,
		MaxConnsPerIP:  a.cfg.SMTP.MaxConnsPerIP,
		ReadTimeout:    a.cfg.SMTP.Timeout.D(),
		WriteTimeout:   a.cfg.SMTP.Timeout.D(),
		LeftGrace:      a.cfg.Store.LeftGrace.D(),
		Logger:         a.log.With("component", component),
	}
}

// listeners returns the sockets of the chosen modules (not yet opened).
func (sv *services) listeners(want map[string]bool) ([]*listener, []func(context.Context) error, error) {
	a := sv.a
	var ls []*listener
	var jobs []func(context.Context) error
	if want["smtp"] {
		cfg := sv.smtpConfig("smtp")
		cfg.Registerer = sv.reg
		srv, err := smtpserver.New(a.store, sv.auth, sv.queue, cfg)
		if err != nil {
			return nil, nil, fmt.Errorf("smtp: %w", err)
		}
		ls = append(ls,
			&listener{name: "smtp", addr: a.cfg.Listen.SMTP, serve: srv.ServeMX},
			&listener{name: "submission", addr: a.cfg.Listen.Submission, serve: srv.ServeSubmission},
			&listener{name: "submissions", addr: a.cfg.Listen.Submissions, serve: srv.ServeSubmissions})
		jobs = append(jobs, closer(srv))
	}
	if want["imap"] {
		srv := imapserver.New(a.store, imapserver.Config{
			Auth:              sv.auth,
			Search:            sv.index,
			TLS:               sv.tls,
			AllowInsecureAuth: a.cfg.IMAP.AllowInsecureAuth,
			MaxLiteral:        int64(a.cfg.Store.MaxMessageSize),
			PollInterval:      a.cfg.IMAP.IdlePoll.D(),
			Logger:            a.log.With("component", "imap"),
			Registerer:        sv.reg,
		})
		ls = append(ls,
			&listener{name: "imap", addr: a.cfg.Listen.IMAP, serve: srv.ServeSTARTTLS},
			&listener{name: "imaps", addr: a.cfg.Listen.IMAPS, serve: srv.ServeTLS})
		jobs = append(jobs, closer(srv), sv.index.Run)
	}
	if want["delivery"] {
		jobs = append(jobs, sv.queue.Run)
	}
	if want["sync"] && len(a.cfg.Directory.Peers) > 0 {
		job, err := syncJob(a)
		if err != nil {
			return nil, nil, err
		}
		jobs = append(jobs, job)
	}
	return ls, jobs, nil
}

// syncJob runs the directory schedules. A schedule named in the config
// (peers[].delta/full) is created if the database has none for that peer
// and kind; after that IT manages it with `govhub sync schedule`, and the
// database, shared by every node, is what counts.
func syncJob(a *app) (func(context.Context) error, error) {
	eng := newDirectoryEngine(a)
	peers := map[string]directory.Peer{}
	ctx := context.Background()
	have := map[string]bool{}
	existing, err := eng.Store().Schedules(ctx)
	if err != nil {
		return nil, err
	}
	for _, sc := range existing {
		have[sc.Peer+"/"+sc.Kind] = true
	}
	for _, pc := range a.cfg.Directory.Peers {
		p, err := openPeer(a.cfg, pc.Name, a.log)
		if err != nil {
			return nil, err
		}
		peers[pc.Name] = p
		for kind, spec := range map[string]string{"delta": pc.Delta, "full": pc.Full} {
			if spec != "" && !have[pc.Name+"/"+kind] {
				if err := eng.Store().SetSchedule(ctx, pc.Name, kind, spec); err != nil {
					return nil, fmt.Errorf("directory.peers[%s].%s: %w", pc.Name, kind, err)
				}
			}
		}
	}
	sch := directory.NewScheduler(eng, peers)
	return func(ctx context.Context) error {
		sch.Loop(ctx, 30*time.Second)
		return nil
	}, nil
}

// closer turns a server's Close into a job that ends with the context.
func closer(c io.Closer) func(context.Context) error {
	return func(ctx context.Context) error {
		<-ctx.Done()
		return c.Close()
	}
}

// serveListener runs l until it is closed; a closed listener is not an
// error at shutdown.
func serveListener(ctx context.Context, l *listener) error {
	err := l.serve(l.ln)
	if ctx.Err() != nil || errors.Is(err, net.ErrClosed) || errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("%s: %w", l.name, err)
}
