package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/govhub/govhub/mailcore/queue"
	"github.com/spf13/cobra"
)

// withQueue opens the app (bodies read-only) and the outbound queue for a
// one-shot command (no metrics registry), runs fn and closes everything.
func withQueue(cmd *cobra.Command, g *globals, fn func(q *queue.Queue) error) error {
	a, err := g.openApp(cmd.Context(), openOptions{readOnlyBlobs: true})
	if err != nil {
		return err
	}
	defer a.Close()
	q, err := openQueue(a, nil)
	if err != nil {
		return err
	}
	return fn(q)
}

func queueCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "queue",
		Short: "Inspect and manage the outbound delivery queue: list, retry, delete, dkim",
	}
	var domain, sender string
	var asJSON bool
	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List queued messages with each recipient's state, attempts and last error",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withQueue(cmd, g, func(q *queue.Queue) error {
				items, err := q.List(cmd.Context(), queue.ListOptions{Domain: domain, Sender: sender, Limit: limit})
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				if asJSON {
					enc := json.NewEncoder(out)
					for _, it := range items {
						enc.Encode(it)
					}
					return nil
				}
				if len(items) == 0 {
					fmt.Fprintln(out, "queue is empty")
					return nil
				}
				tw := tabwriter.NewWriter(out, 2, 8, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tSENDER\tSIZE\tQUEUED\tRECIPIENT\tSTATE\tATTEMPTS\tNEXT\tLAST ERROR")
				for _, it := range items {
					snd := it.Sender
					if snd == "" {
						snd = "<>"
					}
					for i, r := range it.Recipients {
						id, from, size, when := "", "", "", ""
						if i == 0 {
							id, from, size, when = strconv.FormatInt(it.ID, 10), snd, strconv.FormatInt(it.Size, 10), it.CreatedAt.Format(time.DateTime)
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", id, from, size, when, r.Address, r.Status, r.Attempts, r.NextAttempt.Format(time.DateTime), r.LastError)
					}
				}
				return tw.Flush()
			})
		},
	}
	list.Flags().StringVar(&domain, "domain", "", "only messages with a recipient in this domain")
	list.Flags().StringVar(&sender, "sender", "", "only messages from this sender")
	list.Flags().BoolVar(&asJSON, "json", false, "one JSON object per message")
	list.Flags().IntVar(&limit, "limit", 100, "at most this many messages")

	// byID makes a command that applies do to each queue id given.
	byID := func(use, short, done string, do func(q *queue.Queue, cmd *cobra.Command, id int64) error) *cobra.Command {
		return &cobra.Command{
			Use:   use + " ID...",
			Short: short,
			Args:  cobra.MinimumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return withQueue(cmd, g, func(q *queue.Queue) error {
					for _, s := range args {
						id, err := strconv.ParseInt(s, 10, 64)
						if err != nil {
							return fmt.Errorf("bad queue id %q", s)
						}
						if err := do(q, cmd, id); err != nil {
							return fmt.Errorf("message %d: %w", id, err)
						}
						fmt.Fprintf(cmd.OutOrStdout(), "message %d %s\n", id, done)
					}
					return nil
				})
			},
		}
	}
	retry := byID("retry", "Make queued messages due now (the delivery module sends them on its next pass)", "is due now",
		func(q *queue.Queue, cmd *cobra.Command, id int64) error { return q.Retry(cmd.Context(), id) })
	del := byID("delete", "Drop queued messages without a bounce", "deleted",
		func(q *queue.Queue, cmd *cobra.Command, id int64) error { return q.Delete(cmd.Context(), id) })
	dkim := &cobra.Command{
		Use:   "dkim DOMAIN...",
		Short: "Print the DKIM TXT record to publish for a sending domain (creating its key if needed)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withQueue(cmd, g, func(q *queue.Queue) error {
				for _, d := range args {
					name, value, err := q.DKIMRecord(strings.ToLower(d))
					if err != nil {
						return err
					}
					fmt.Fprintf(cmd.OutOrStdout(), "%s. IN TXT \"%s\"\n", name, value)
				}
				return nil
			})
		},
	}
	cmd.AddCommand(list, retry, del, dkim)
	return cmd
}
