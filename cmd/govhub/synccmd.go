package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"

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
			fmt.Fprintf(out, "%s %s %d with %s: seen %d, created %d, updated %d, removed %d, written back %d, errors %d, conflicts %d\n",
				rep.Kind, what, rep.RunID, rep.Peer, rep.Seen, rep.Created, rep.Updated, rep.Removed, rep.WrittenBack, len(rep.Errors), len(rep.Conflicts))
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
	cmd.AddCommand(run, peers)
	return cmd
}
