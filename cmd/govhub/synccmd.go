package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/govhub/govhub/directory"
	"github.com/spf13/cobra"
)

func syncCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Synchronise the organisation chart with LDAP and the affairs link",
	}
	var full, dryRun, confirm, asJSON bool
	run := &cobra.Command{
		Use:   "run PEER",
		Short: "Run one sync with a configured peer now (a delta unless --full)",
		Long: `Run one sync with the peer named in directory.peers. Without --full it
fetches the changes since the last completed run (or does a full run when
there is none, or the peer lost its change cursor). --dry-run shows exactly
what would change in govhub and, for write-back, in the peer, without
changing anything. A run that would remove more objects than the deletion
threshold stops before removing any unless --confirm-deletions is given.
Broken entries are reported per object and never stop the run. Only one node
runs a given peer's sync at a time (a lease in the database).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := g.openApp(cmd.Context(), openOptions{readOnlyBlobs: true})
			if err != nil {
				return err
			}
			defer a.Close()
			peer, err := openPeer(a.cfg, args[0], a.log)
			if err != nil {
				return err
			}
			rep, err := newDirectoryEngine(a).Run(cmd.Context(), peer, directory.RunOptions{Full: full, DryRun: dryRun, ConfirmDeletions: confirm})
			if errors.Is(err, directory.ErrDeletionThreshold) {
				return &exitError{code: 1, msg: err.Error() + " (nothing was removed; rerun with --confirm-deletions if intended)"}
			}
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			what := "run"
			if rep.DryRun {
				what = "dry run (nothing changed)"
			}
			fmt.Fprintf(out, "%s %s %d with %s: seen %d, created %d, updated %d, removed %d, written back %d, created in peer %d, errors %d, conflicts %d\n",
				rep.Kind, what, rep.RunID, rep.Peer, rep.Seen, rep.Created, rep.Updated, rep.Removed, rep.WrittenBack, rep.CreatedInPeer, len(rep.Errors), len(rep.Conflicts))
			tw := tabwriter.NewWriter(out, 2, 8, 2, ' ', 0)
			for _, e := range rep.Errors {
				fmt.Fprintf(tw, "  error\t%+v\n", e)
			}
			for _, c := range rep.Conflicts {
				fmt.Fprintf(tw, "  conflict\t%+v\n", c)
			}
			return tw.Flush()
		},
	}
	run.Flags().BoolVar(&full, "full", false, "full reconcile (finds deletions) instead of a delta")
	run.Flags().BoolVar(&dryRun, "dry-run", false, "show what would change without changing anything")
	run.Flags().BoolVar(&confirm, "confirm-deletions", false, "allow removing more objects than the deletion threshold")
	run.Flags().BoolVar(&asJSON, "json", false, "print the full report as JSON")
	peers := &cobra.Command{
		Use:   "peers",
		Short: "List the configured directory peers and their schedules",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tTYPE\tWRITABLE\tDELTA\tFULL")
			for _, p := range cfg.Directory.Peers {
				fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\n", p.Name, p.Type, p.Writable, p.Delta, p.Full)
			}
			return tw.Flush()
		},
	}
	cmd.AddCommand(run, peers, syncHistoryCmd(g), syncShowCmd(g), syncScheduleCmd(g))
	return cmd
}

// openDirectory opens the app (blobs read-only: sync commands never touch
// bodies) and the directory store over its database.
func openDirectory(cmd *cobra.Command, g *globals) (*app, *directory.Store, error) {
	a, err := g.openApp(cmd.Context(), openOptions{readOnlyBlobs: true})
	if err != nil {
		return nil, nil, err
	}
	return a, directory.NewStore(a.db, nil), nil
}

func syncHistoryCmd(g *globals) *cobra.Command {
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "history [PEER]",
		Short: "List recent sync runs, newest first",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, st, err := openDirectory(cmd, g)
			if err != nil {
				return err
			}
			defer a.Close()
			peer := ""
			if len(args) == 1 {
				peer = args[0]
			}
			runs, err := st.Runs(cmd.Context(), peer, limit)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(runs)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "RUN\tPEER\tKIND\tDRY\tSTARTED\tSTATUS\tSEEN\tCREATED\tUPDATED\tREMOVED\tWRITTEN BACK\tCREATED IN PEER\tERRORS\tCONFLICTS")
			for _, r := range runs {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%v\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", r.ID, r.Peer, r.Kind, r.DryRun, r.Started.Format(time.DateTime), r.Status,
					r.Seen, r.Created, r.Updated, r.Removed, r.WrittenBack, r.CreatedInPeer, r.Errors, r.Conflicts)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 20, "at most this many runs")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func syncShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show RUN",
		Short: "Show one sync run with its per-object results and conflicts (JSON)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil {
				return fmt.Errorf("bad run id %q", args[0])
			}
			a, st, err := openDirectory(cmd, g)
			if err != nil {
				return err
			}
			defer a.Close()
			d, err := st.Run(cmd.Context(), id)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(d)
		},
	}
}

func syncScheduleCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schedule",
		Short: "Manage sync schedules: list, set PEER delta|full CRON, pause/resume PEER delta|full",
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List schedules with their next run times",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, st, err := openDirectory(cmd, g)
			if err != nil {
				return err
			}
			defer a.Close()
			ss, err := st.Schedules(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "PEER\tKIND\tCRON\tPAUSED\tNEXT")
			for _, s := range ss {
				next := "-"
				if !s.Next.IsZero() {
					next = s.Next.Format(time.DateTime)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\n", s.Peer, s.Kind, s.Spec, s.Paused, next)
			}
			return tw.Flush()
		},
	}
	set := &cobra.Command{
		Use:   "set PEER delta|full CRON",
		Short: `Set a schedule, e.g. set ldap delta "*/5 * * * *"`,
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, st, err := openDirectory(cmd, g)
			if err != nil {
				return err
			}
			defer a.Close()
			if err := st.SetSchedule(cmd.Context(), args[0], args[1], args[2]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s: %s\n", args[0], args[1], args[2])
			return nil
		},
	}
	pause := func(use string, paused bool) *cobra.Command {
		return &cobra.Command{
			Use:   use + " PEER delta|full",
			Short: use + " a schedule",
			Args:  cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				a, st, err := openDirectory(cmd, g)
				if err != nil {
					return err
				}
				defer a.Close()
				if err := st.PauseSchedule(cmd.Context(), args[0], args[1], paused); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s: %sd\n", args[0], args[1], use)
				return nil
			},
		}
	}
	cmd.AddCommand(list, set, pause("pause", true), pause("resume", false))
	return cmd
}
