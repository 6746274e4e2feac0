package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/govhub/govhub/internal/config"
	"github.com/govhub/govhub/internal/sqldb"
	"github.com/govhub/govhub/mailcore"
	"github.com/spf13/cobra"
)

func migrateCmd(g *globals) *cobra.Command {
	var status bool
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending database migrations (serve does this too)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			db, err := sqldb.Open(cmd.Context(), cfg.DatabaseURL(), sqldb.Options{})
			if err != nil {
				return err
			}
			defer db.Close()
			if !status {
				applied, err := db.Migrate(cmd.Context(), nil)
				if err != nil {
					return err
				}
				for _, m := range applied {
					fmt.Fprintln(cmd.OutOrStdout(), "applied", m)
				}
				if len(applied) == 0 {
					fmt.Fprintln(cmd.OutOrStdout(), "database", db.URL, "is up to date")
				}
			}
			st, err := db.MigrationStatus(cmd.Context())
			if err != nil {
				return err
			}
			if status {
				for _, s := range st {
					fmt.Fprintln(cmd.OutOrStdout(), s)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&status, "status", false, "only list migrations and whether each is applied")
	return cmd
}

func fsckCmd(g *globals) *cobra.Command {
	var deep, repair, asJSON bool
	cmd := &cobra.Command{
		Use:   "fsck",
		Short: "Check that message rows, bodies, reference counts and quotas agree",
		Long: `Check the mail store. Exit status 0: clean; 1: problems found; 2: could not run.

Without --repair fsck only reads, and may run beside a server. --repair fixes
reference counts, quotas and uid counters from the message rows and deletes
orphaned bodies; it needs the store to itself (stop the server first).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := g.openApp(cmd.Context(), openOptions{readOnlyBlobs: !repair})
			if err != nil {
				return err
			}
			defer a.Close()
			rep, err := a.store.Fsck(cmd.Context(), mailcore.FsckOptions{Deep: deep, Repair: repair})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				enc.Encode(rep)
			} else {
				fmt.Fprintf(out, "accounts %d, mailboxes %d, messages %d, blobs %d\n", rep.Accounts, rep.Mailboxes, rep.Messages, rep.Blobs)
				for _, p := range rep.Problems {
					fmt.Fprintf(out, "%s: %s\n", p.Kind, p.Detail)
				}
				if repair {
					fmt.Fprintf(out, "repaired %d\n", rep.Repaired)
				}
				if rep.Clean() {
					fmt.Fprintln(out, "clean")
				}
			}
			if !rep.Clean() && !repair {
				return &exitError{code: 1, msg: fmt.Sprintf("%d problem(s) found", len(rep.Problems))}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&deep, "deep", false, "also read every body back and verify its checksum")
	cmd.Flags().BoolVar(&repair, "repair", false, "fix what can be fixed (server must be stopped)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

func compactCmd(g *globals) *cobra.Command {
	var grace string
	var fraction float64
	cmd := &cobra.Command{
		Use:   "compact",
		Short: "Purge dead bodies and rewrite volumes whose dead fraction passes the threshold",
		Long: `Purge bodies that no message references any more (after the grace period)
and rewrite sealed volume files whose dead fraction passes the threshold.
Safe to kill at any moment. A running server does the same on its own
schedule (store.compact_every); this command needs the store to itself.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := g.openApp(cmd.Context(), openOptions{recover: true})
			if err != nil {
				return err
			}
			defer a.Close()
			gr := a.cfg.Store.DeadGrace.D()
			if grace != "" {
				gr, err = time.ParseDuration(grace)
				if err != nil {
					return fmt.Errorf("--grace: %w", err)
				}
			}
			if fraction == 0 {
				fraction = a.cfg.Store.CompactDeadFraction
			}
			n, st, err := a.store.Compact(cmd.Context(), gr, mailcore.CompactOptions{DeadFraction: fraction})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "purged %d dead bodies; rewrote %d volumes, copied %d blobs, reclaimed %s\n",
				n, st.VolumesRewritten, st.BlobsCopied, config.ByteSize(st.BytesReclaimed))
			return nil
		},
	}
	cmd.Flags().StringVar(&grace, "grace", "", "purge bodies dead for at least this long (default store.dead_grace)")
	cmd.Flags().Float64Var(&fraction, "dead-fraction", 0, "rewrite volumes at least this dead (default store.compact_dead_fraction)")
	return cmd
}
