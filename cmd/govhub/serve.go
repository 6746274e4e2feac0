package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/govhub/govhub/internal/lease"
	"github.com/govhub/govhub/mailcore"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
)

// modules govhub serve knows. Mail protocol modules (smtp, imap, delivery)
// arrive with their own issue; DESIGN.md lists the full set.
var knownModules = []string{"http", "maintenance"}

func serveCmd(g *globals) *cobra.Command {
	var modules, httpAddr string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run govhub's modules (all by default) with embedded defaults",
		Long: `Run govhub. With no configuration it keeps everything under ./govhub-data:
the SQLite metadata database, the packed volume files and generated keys, and
listens only on 127.0.0.1.

At start it migrates the database, recovers what a crash interrupted (a torn
volume tail, a half-finished purge, bodies of deliveries that never
committed) and then starts the modules.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			a, err := g.openApp(ctx, openOptions{recover: true, verbose: true, metrics: reg})
			if err != nil {
				return err
			}
			defer a.Close()
			if httpAddr != "" {
				a.cfg.Listen.HTTP = httpAddr
			}
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
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "govhub %s: data %s, database %s\n", version, a.cfg.DataDir, a.db.URL)
			errc := make(chan error, 2)
			if want["maintenance"] {
				go func() { errc <- runMaintenance(ctx, a) }()
				fmt.Fprintf(out, "maintenance: purge and compaction every %s\n", a.cfg.Store.CompactEvery.D())
			}
			if want["http"] {
				ln, err := net.Listen("tcp", a.cfg.Listen.HTTP)
				if err != nil {
					return fmt.Errorf("http: %w", err)
				}
				fmt.Fprintf(out, "http: listening on http://%s\n", ln.Addr())
				srv := &http.Server{Handler: httpMux(a, reg), ReadHeaderTimeout: 10 * time.Second}
				go func() {
					<-ctx.Done()
					sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					srv.Shutdown(sctx)
				}()
				go func() {
					if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
						errc <- err
						return
					}
					errc <- nil
				}()
			}
			select {
			case <-ctx.Done():
				fmt.Fprintln(out, "govhub: shutting down")
				return nil
			case err := <-errc:
				return err
			}
		},
	}
	cmd.Flags().StringVar(&modules, "modules", strings.Join(knownModules, ","), "comma-separated modules to run")
	cmd.Flags().StringVar(&httpAddr, "http", "", "http listen address (default from config, 127.0.0.1:8080)")
	return cmd
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
func httpMux(a *app, reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
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
		a.log.Info("maintenance pass", "purged", n, "volumes_rewritten", st.VolumesRewritten, "bytes_reclaimed", st.BytesReclaimed)
	}
}
