package main

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/govhub/govhub/directory"
	"github.com/govhub/govhub/internal/lease"
	"github.com/govhub/govhub/mailcore"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
)

func serveCmd(g *globals) *cobra.Command {
	var modules string
	addrs := map[string]*string{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run govhub's modules (all by default) with embedded defaults",
		Long: `Run govhub. With no configuration it keeps everything under ./govhub-data
(the SQLite metadata database, the packed volume files, a generated
self-signed certificate and DKIM keys) and listens only on 127.0.0.1, on
unprivileged ports, printed at start.

At start it migrates the database, recovers what a crash interrupted (a torn
volume tail, a half-finished purge, bodies of deliveries that never
committed) and then starts the modules: smtp (MX, submission with STARTTLS,
submission with implicit TLS), imap (STARTTLS and implicit TLS, plus the
search indexer), http (/healthz, /readyz, /metrics), delivery (the outbound
queue), sync (the directory schedules, when directory.peers are configured)
and maintenance (purge and compaction). --modules runs a subset, so
modules can be spread over hosts sharing one PostgreSQL database.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			want := map[string]bool{}
			for _, m := range strings.Split(modules, ",") {
				m = strings.TrimSpace(m)
				if m == "" {
					continue
				}
				if !contains(knownModules, m) {
					return fmt.Errorf("--modules: unknown module %q (known: %s)", m, strings.Join(knownModules, ", "))
				}
				want[m] = true
			}
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			a, err := g.openApp(ctx, openOptions{recover: true, verbose: true, metrics: reg})
			if err != nil {
				return err
			}
			defer a.Close()
			for name, v := range addrs {
				if *v != "" {
					*a.listenAddr(name) = *v
				}
			}
			sv, err := newServices(a, reg)
			if err != nil {
				return err
			}
			ls, jobs, err := sv.listeners(want)
			if err != nil {
				return err
			}
			if want["http"] {
				mux := httpMux(a, reg)
				if err := mountCallbacks(ctx, a, mux, sv.sso); err != nil {
					return err
				}
				webJobs, err := webHandler(ctx, a, sv, mux)
				if err != nil {
					return err
				}
				jobs = append(jobs, webJobs...)
				// One handler on both: plain HTTP for health checks, metrics
				// and a TLS-terminating proxy; HTTPS for browsers.
				for _, l := range []struct {
					name, addr string
					tls        bool
				}{{"http", a.cfg.Listen.HTTP, false}, {"https", a.cfg.Listen.HTTPS, true}} {
					srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10}
					serve := srv.Serve
					if l.tls {
						srv.TLSConfig = sv.tls.Clone()
						srv.TLSConfig.NextProtos = []string{"h2", "http/1.1"}
						serve = func(ln net.Listener) error { return srv.ServeTLS(ln, "", "") }
					}
					ls = append(ls, &listener{name: l.name, addr: l.addr, serve: serve})
					jobs = append(jobs, func(ctx context.Context) error {
						<-ctx.Done()
						sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
						defer cancel()
						return srv.Shutdown(sctx)
					})
				}
			}
			if want["maintenance"] {
				jobs = append(jobs, func(ctx context.Context) error { return runMaintenance(ctx, a) })
			}
			// Open every socket before serving any, so a busy port fails the
			// start instead of leaving half the modules up.
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "govhub %s: data %s, database %s\n", version, a.cfg.DataDir, a.db.URL)
			var open []*listener
			for _, l := range ls {
				if l.addr == "" {
					continue // turned off in the config
				}
				l.ln, err = net.Listen("tcp", l.addr)
				if err != nil {
					for _, o := range open {
						o.ln.Close()
					}
					return fmt.Errorf("%s: %w", l.name, err)
				}
				open = append(open, l)
			}
			for _, l := range open {
				scheme := map[string]string{"http": "http", "https": "https", "imaps": "imaps", "imap": "imap", "submissions": "smtps"}[l.name]
				if scheme == "" {
					scheme = "smtp"
				}
				fmt.Fprintf(out, "%s: listening on %s://%s\n", l.name, scheme, l.ln.Addr())
			}
			if want["maintenance"] {
				fmt.Fprintf(out, "maintenance: purge and compaction every %s\n", a.cfg.Store.CompactEvery.D())
			}
			if want["delivery"] {
				fmt.Fprintln(out, "delivery: outbound queue running")
			}
			if want["sync"] && len(a.cfg.Directory.Peers) > 0 {
				fmt.Fprintf(out, "sync: schedules of %d directory peer(s) running\n", len(a.cfg.Directory.Peers))
			}
			fmt.Fprintln(out, "govhub: ready")
			errc := make(chan error, len(open)+len(jobs))
			for _, l := range open {
				go func() { errc <- serveListener(ctx, l) }()
			}
			for _, j := range jobs {
				go func() { errc <- j(ctx) }()
			}
			// A module that ends with an error stops the process (a
			// supervisor restarts it); one that ends cleanly does not.
			var first error
			for first == nil && ctx.Err() == nil {
				select {
				case <-ctx.Done():
				case first = <-errc:
				}
			}
			fmt.Fprintln(out, "govhub: shutting down")
			cancel()
			for _, l := range open {
				l.ln.Close()
			}
			return first
		},
	}
	cmd.Flags().StringVar(&modules, "modules", strings.Join(knownModules, ","), "comma-separated modules to run: "+strings.Join(knownModules, ", "))
	for _, name := range []string{"smtp", "submission", "submissions", "imap", "imaps", "http", "https"} {
		addrs[name] = cmd.Flags().String(name, "", name+" listen address (default from the config; see docs/config.md)")
	}
	return cmd
}

// listenAddr points at the config field holding a listener's address.
func (a *app) listenAddr(name string) *string {
	l := &a.cfg.Listen
	return map[string]*string{"smtp": &l.SMTP, "submission": &l.Submission, "submissions": &l.Submissions,
		"imap": &l.IMAP, "imaps": &l.IMAPS, "http": &l.HTTP, "https": &l.HTTPS}[name]
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// httpMux serves /healthz (the process is up), /readyz (the database
// answers) and /metrics (Prometheus).
func httpMux(a *app, reg *prometheus.Registry) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	if tok := a.cfg.API.Token; tok != "" {
		dir := directory.NewStore(a.db, nil)
		mux.Handle("/api/admin/sync/", bearer(tok, http.StripPrefix("/api/admin/sync", directory.AdminHandler(dir))))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := a.db.X.PingContext(ctx); err != nil {
			http.Error(w, "database unavailable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	return mux
}

// runMaintenance purges dead bodies and compacts volumes on a timer, under
// a database lease so that of several nodes one does it at a time.
func runMaintenance(ctx context.Context, a *app) error {
	holder, _ := os.Hostname()
	holder = fmt.Sprintf("%s/%d", holder, os.Getpid())
	every := a.cfg.Store.CompactEvery.D()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			lease.Release(context.Background(), a.db, "maintenance", holder)
			return nil
		case <-t.C:
		}
		ok, err := lease.TryAcquire(ctx, a.db, "maintenance", holder, every, time.Now())
		if err != nil {
			a.log.Error("maintenance lease", "err", err)
			continue
		}
		if !ok {
			continue
		}
		n, st, err := a.store.Compact(ctx, a.cfg.Store.DeadGrace.D(), mailcore.CompactOptions{DeadFraction: a.cfg.Store.CompactDeadFraction})
		if err != nil {
			a.log.Error("maintenance pass", "err", err)
			continue
		}
		events, err := a.store.PruneEvents(ctx, a.cfg.Store.EventRetention.D())
		if err != nil {
			a.log.Error("pruning outbox events", "err", err)
		}
		a.log.Info("maintenance pass", "purged", n, "volumes_rewritten", st.VolumesRewritten, "bytes_reclaimed", st.BytesReclaimed, "events_pruned", events)
	}
}

// bearer admits requests carrying "Authorization: Bearer <token>"
// (compared in constant time) and refuses the rest with 401.
func bearer(token string, next http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="govhub"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}
