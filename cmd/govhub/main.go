// Command govhub is the one binary of govhub: it serves every module and
// carries the administration commands (migrate, user, fsck, compact, bench,
// version). It is the only package that wires adapters into the domains.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// exitError carries a process exit code out of a command (fsck uses 1 for
// "problems found", distinct from 2 for "could not run").
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRoot()
	if err := root.ExecuteContext(ctx); err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.msg != "" {
				fmt.Fprintln(os.Stderr, "govhub:", ee.msg)
			}
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "govhub:", err)
		os.Exit(2)
	}
}

// globals are the flags every command shares.
type globals struct {
	configFile string
	dataDir    string
}

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "govhub",
		Short:         "govhub: mail platform and integration hub for government organisations",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.configFile, "config", "", "YAML configuration file (default: built-in defaults)")
	root.PersistentFlags().StringVar(&g.dataDir, "data", "", "data directory (default ./govhub-data, or data_dir from the config)")
	root.AddCommand(
		serveCmd(g),
		migrateCmd(g),
		userCmd(g),
		fsckCmd(g),
		compactCmd(g),
		queueCmd(g),
		syncCmd(g),
		ssoCmd(g),
		benchCmd(g),
		versionCmd(),
	)
	return root
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the govhub version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), "govhub", version)
			return nil
		},
	}
}
