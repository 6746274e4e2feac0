package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/govhub/govhub/mailcore"
	"github.com/govhub/govhub/mailcore/smtpserver"
	"github.com/spf13/cobra"
)

// noRelay is the Outbound of the self-hosted SMTP benchmark: it has only
// local recipients, so anything handed here is a failure.
type noRelay struct{}

func (noRelay) Enqueue(context.Context, string, []string, []byte) error {
	return errors.New("bench: no outbound queue")
}

func benchSMTPCmd() *cobra.Command {
	var target, from, to string
	var conns, messages, recipients, size, accounts int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "smtp",
		Short: "Load an SMTP server: accepted messages/s and the time until all are readable",
		Long: `Send --messages messages of --size bytes, each to --recipients recipients,
over --conns concurrent SMTP connections, and report accepted messages/s.

Without --target it starts govhub's own MX in-process on a temporary data
directory (SQLite, local volumes) with --accounts recipients, and also
reports the time until every accepted message is readable in the store.
With --target it loads that server, sending to the --to addresses.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			opts := smtpserver.LoadOptions{Target: target, Conns: conns, Messages: messages, Recipients: recipients, Size: size, From: from}
			if to != "" {
				opts.To = strings.Split(to, ",")
			}
			if target == "" {
				dir, err := os.MkdirTemp("", "govhub-bench-smtp-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				db, _, st, closeAll, err := openBenchStore(ctx, dir, "")
				if err != nil {
					return err
				}
				defer closeAll()
				accounts = max(accounts, recipients)
				var nas []mailcore.NewAccount
				opts.To = nil
				for i := 0; i < accounts; i++ {
					addr := fmt.Sprintf("staff%05d@bench.example", i)
					nas = append(nas, mailcore.NewAccount{Address: addr, QuotaBytes: -1})
					opts.To = append(opts.To, addr)
				}
				if _, err := st.ImportAccounts(ctx, nas, mailcore.ImportOptions{}); err != nil {
					return err
				}
				srv, err := smtpserver.New(st, nil, noRelay{}, smtpserver.Config{Hostname: "bench.example", MaxConnsPerIP: -1, MaxConnRate: -1})
				if err != nil {
					return err
				}
				defer srv.Close()
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					return err
				}
				go srv.ServeMX(ln)
				opts.Target = ln.Addr().String()
				opts.Readable = func(ctx context.Context, accepted int) (bool, error) {
					var n int
					err := db.X.GetContext(ctx, &n, `SELECT COUNT(*) FROM messages`)
					return n >= accepted*recipients, err
				}
			}
			if len(opts.To) == 0 {
				return errors.New("--to is needed with --target")
			}
			res, err := smtpserver.LoadTest(ctx, opts)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					smtpserver.LoadResult
					Conns      int     `json:"conns"`
					Recipients int     `json:"recipients"`
					Size       int     `json:"size"`
					Deliveries float64 `json:"deliveries_per_second"`
				}{res, conns, recipients, size, res.PerSecond * float64(recipients)})
			}
			fmt.Fprintf(out, "%d messages x %d recipients, %d bytes, %d connections to %s\n", messages, recipients, size, conns, opts.Target)
			fmt.Fprintf(out, "  accepted %d, failed %d in %.2f s: %.0f messages/s, %.0f deliveries/s\n",
				res.Accepted, res.Failed, res.Duration.Seconds(), res.PerSecond, res.PerSecond*float64(recipients))
			if res.UntilReadable > 0 {
				fmt.Fprintf(out, "  all readable after %.2f s\n", res.UntilReadable.Seconds())
			}
			for e, n := range res.Errors {
				fmt.Fprintf(out, "  error x%d: %s\n", n, e)
			}
			if res.Failed > 0 {
				return &exitError{code: 1, msg: fmt.Sprintf("%d messages failed", res.Failed)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&target, "target", "", "host:port of the SMTP server (default: an in-process govhub MX)")
	f.IntVar(&conns, "conns", 20, "concurrent connections")
	f.IntVar(&messages, "messages", 10000, "messages to send")
	f.IntVar(&recipients, "recipients", 1, "recipients per message")
	f.IntVar(&size, "size", 10240, "bytes per message")
	f.IntVar(&accounts, "accounts", 100, "recipient accounts of the in-process server")
	f.StringVar(&from, "from", "bench@load.example", "envelope sender")
	f.StringVar(&to, "to", "", "comma-separated recipients (with --target)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
