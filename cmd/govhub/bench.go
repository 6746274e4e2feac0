package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/govhub/govhub/internal/sqldb"
	"github.com/govhub/govhub/mailcore"
	"github.com/govhub/govhub/mailcore/volume"
	"github.com/spf13/cobra"
)

func benchCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure govhub on this machine (store)",
	}
	cmd.AddCommand(benchStoreCmd(), benchImportCmd(), benchSMTPCmd())
	return cmd
}

// storeBenchResult is what `govhub bench store --json` prints.
type storeBenchResult struct {
	Messages            int     `json:"messages"`
	Recipients          int     `json:"recipients"`
	Size                int     `json:"size"`
	Concurrency         int     `json:"concurrency"`
	Database            string  `json:"database"`
	Seconds             float64 `json:"seconds"`
	MessagesPerSec      float64 `json:"messages_per_sec"`
	DeliveriesPerSec    float64 `json:"deliveries_per_sec"`
	DiskBytesPerMessage float64 `json:"disk_bytes_per_message"`
	DiskBytesPerDeliv   float64 `json:"disk_bytes_per_delivery"`
	DBBytesPerDelivery  float64 `json:"db_bytes_per_delivery"`
	// DBBytesKept is what stays per delivery once maintenance has pruned
	// the outbox events (store.event_retention): the long-term metadata
	// cost, in pages in use (SQLite only).
	DBBytesKept   float64 `json:"db_bytes_kept_per_delivery,omitempty"`
	DataDirGrowth int64   `json:"data_dir_growth_bytes"`
	DataDir       string  `json:"data_dir"`
	// RefSyncsPerSec is this disk's rate of 4 KiB append+fdatasync in the
	// data directory, measured in the same run just before the deliveries:
	// the reference the delivery rate is quoted against.
	RefSyncsPerSec       float64 `json:"reference_syncs_per_sec,omitempty"`
	DeliveriesPerRefSync float64 `json:"deliveries_per_reference_sync,omitempty"`
}

// measureSyncRate appends 4 KiB and fdatasyncs in a loop for d, in dir.
func measureSyncRate(dir string, d time.Duration) (float64, error) {
	f, err := os.CreateTemp(dir, "syncref-")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	start := time.Now()
	n := 0
	for time.Since(start) < d {
		if _, err := f.Write(buf); err != nil {
			return 0, err
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			return 0, err
		}
		n++
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

func benchStoreCmd() *cobra.Command {
	var messages, recipients, size, conc, accounts int
	var asJSON, keep, reference bool
	var dir, dbURL, cpuProfile string
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Deliver generated messages through the durable store path and report rates and space",
		Long: `Deliver --messages distinct generated messages of --size bytes, each to
--recipients accounts, from --concurrency goroutines, through the same
durable path SMTP uses (body fsynced, rows committed) and report
messages/s, deliveries/s (messages x recipients), bytes on disk per message
and per delivery, database bytes per delivery, and the data directory used.
Account creation is not timed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if messages < 1 || recipients < 1 || size < 64 || conc < 1 {
				return fmt.Errorf("need --messages, --recipients, --concurrency >= 1 and --size >= 64")
			}
			if accounts < recipients {
				accounts = max(recipients, 100)
			}
			if dir == "" {
				d, err := os.MkdirTemp("", "govhub-bench-")
				if err != nil {
					return err
				}
				dir = d
			}
			if !keep {
				defer os.RemoveAll(dir)
			}
			db, vs, st, closeAll, err := openBenchStore(ctx, dir, dbURL)
			if err != nil {
				return err
			}
			defer closeAll()
			// Accounts, untimed.
			var nas []mailcore.NewAccount
			run := time.Now().UnixNano()
			for i := 0; i < accounts; i++ {
				nas = append(nas, mailcore.NewAccount{Address: fmt.Sprintf("u%d-%d@bench.example", i, run), QuotaBytes: -1})
			}
			for start := 0; start < len(nas); start += 5000 {
				if _, err := st.ImportAccounts(ctx, nas[start:min(start+5000, len(nas))], mailcore.ImportOptions{}); err != nil {
					return err
				}
			}
			rcpts := make([]mailcore.Recipient, accounts)
			for i, na := range nas {
				_, r, err := st.ResolveRecipient(ctx, na.Address)
				if err != nil {
					return err
				}
				rcpts[i] = r
			}
			var refRate float64
			if reference {
				if refRate, err = measureSyncRate(dir, 2*time.Second); err != nil {
					return err
				}
			}
			db.Checkpoint(ctx)
			dbBefore, _ := db.Size(ctx)
			usedBefore, _ := db.UsedBytes(ctx)
			dirBefore := dirSize(dir)

			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				pprof.StartCPUProfile(f)
				defer pprof.StopCPUProfile()
			}
			var next atomic.Int64
			var failed atomic.Int64
			var wg sync.WaitGroup
			start := time.Now()
			errc := make(chan error, conc)
			for w := 0; w < conc; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := int(next.Add(1)) - 1
						if i >= messages {
							return
						}
						raw := benchMessage(i, size)
						to := make([]mailcore.Recipient, recipients)
						for j := range to {
							to[j] = rcpts[(i*recipients+j)%accounts]
						}
						res, err := st.Deliver(ctx, raw, to, mailcore.DeliverOptions{})
						if err != nil {
							errc <- err
							return
						}
						for _, r := range res {
							if r.Err != nil {
								failed.Add(1)
							}
						}
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			close(errc)
			if err := <-errc; err != nil {
				return err
			}
			if n := failed.Load(); n > 0 {
				return fmt.Errorf("%d deliveries failed", n)
			}
			db.Checkpoint(ctx)
			dbAfter, _ := db.Size(ctx)
			var kept int64
			if _, err := st.PruneEvents(ctx, 0); err == nil {
				db.Checkpoint(ctx)
				if usedAfter, err := db.UsedBytes(ctx); err == nil && usedAfter > 0 {
					kept = usedAfter - usedBefore
				}
			}
			st.Close()
			vs.Close()
			growth := dirSize(dir) - dirBefore
			if sqldb.IsPostgresURL(dbURL) {
				growth += dbAfter - dbBefore
			}
			deliveries := float64(messages * recipients)
			res := storeBenchResult{
				Messages: messages, Recipients: recipients, Size: size, Concurrency: conc,
				Database: string(db.Dialect), Seconds: elapsed.Seconds(),
				MessagesPerSec:      float64(messages) / elapsed.Seconds(),
				DeliveriesPerSec:    deliveries / elapsed.Seconds(),
				DiskBytesPerMessage: float64(growth) / float64(messages),
				DiskBytesPerDeliv:   float64(growth) / deliveries,
				DBBytesPerDelivery:  float64(dbAfter-dbBefore) / deliveries,
				DBBytesKept:         float64(kept) / deliveries,
				DataDirGrowth:       growth,
				DataDir:             dir,
			}
			if refRate > 0 {
				res.RefSyncsPerSec = refRate
				res.DeliveriesPerRefSync = res.DeliveriesPerSec / refRate
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			fmt.Fprintf(out, "%d messages x %d recipients, %d bytes, %d concurrent, %s\n", messages, recipients, size, conc, res.Database)
			fmt.Fprintf(out, "  %.3f s: %.0f messages/s, %.0f deliveries/s\n", res.Seconds, res.MessagesPerSec, res.DeliveriesPerSec)
			fmt.Fprintf(out, "  disk: %.0f bytes/message, %.0f bytes/delivery (data dir grew %d bytes); database %.0f bytes/delivery\n",
				res.DiskBytesPerMessage, res.DiskBytesPerDeliv, growth, res.DBBytesPerDelivery)
			if refRate > 0 {
				fmt.Fprintf(out, "  reference: %.0f 4KiB append+fdatasync/s on this disk now; %.2f deliveries per reference sync\n", refRate, res.DeliveriesPerRefSync)
			}
			fmt.Fprintf(out, "  data dir: %s (kept: %v)\n", dir, keep)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&messages, "messages", 10000, "messages to deliver")
	f.IntVar(&recipients, "recipients", 1, "recipients per message")
	f.IntVar(&size, "size", 10240, "bytes per message")
	f.IntVar(&conc, "concurrency", 20, "concurrent deliverers")
	f.IntVar(&accounts, "accounts", 0, "accounts to spread deliveries over (default max(recipients, 100))")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.BoolVar(&keep, "keep", false, "keep the data directory")
	f.BoolVar(&reference, "reference", true, "first measure this disk's 4 KiB append+fdatasync rate (2 s) to quote the result against")
	f.StringVar(&dir, "dir", "", "data directory to use (default a new temporary one)")
	f.StringVar(&dbURL, "database", "", "database URL (default SQLite in the data directory)")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the timed part to this file")
	return cmd
}

// openBenchStore opens a migrated store in dir (SQLite there unless dbURL
// names another database) with unlimited default quota. closeAll is safe to
// call more than once.
func openBenchStore(ctx context.Context, dir, dbURL string) (*sqldb.DB, *volume.Store, *mailcore.Store, func(), error) {
	if dbURL == "" {
		dbURL = filepath.Join(dir, "govhub.db")
	}
	db, err := sqldb.Open(ctx, dbURL, sqldb.Options{})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if _, err := db.Migrate(ctx, nil); err != nil {
		db.Close()
		return nil, nil, nil, nil, err
	}
	vs, err := volume.Open(volume.Options{Dir: filepath.Join(dir, "volumes")})
	if err != nil {
		db.Close()
		return nil, nil, nil, nil, err
	}
	st, err := mailcore.Open(mailcore.Options{DB: db, Blobs: vs, DefaultQuota: -1})
	if err != nil {
		vs.Close()
		db.Close()
		return nil, nil, nil, nil, err
	}
	closeAll := func() {
		st.Close()
		vs.Close()
		db.Close()
	}
	return db, vs, st, closeAll, nil
}

// benchBody is random text shared by all generated messages; each message
// differs in its headers and first line, so no two share a body hash.
var benchBody = func() []byte {
	rnd := make([]byte, 1<<20)
	rand.Read(rnd)
	enc := base64.StdEncoding.EncodeToString(rnd)
	var b []byte
	for len(enc) > 76 {
		b = append(b, enc[:76]...)
		b = append(b, '\r', '\n')
		enc = enc[76:]
	}
	return b
}()

// benchMessage makes a distinct message of exactly size bytes (up to 1 MiB).
func benchMessage(i, size int) []byte {
	now := time.Now()
	hdr := fmt.Sprintf("From: Bench <bench@bench.example>\r\nTo: staff@bench.example\r\nSubject: benchmark message %d\r\nMessage-ID: <%d.%d@bench.example>\r\nDate: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nmessage %d %d\r\n",
		i, i, now.UnixNano(), now.Format(time.RFC1123Z), i, now.UnixNano())
	out := make([]byte, 0, max(size, len(hdr)))
	out = append(out, hdr...)
	if rest := size - len(out); rest > 0 {
		out = append(out, benchBody[:min(rest, len(benchBody))]...)
	}
	return out
}

func dirSize(dir string) int64 {
	var total int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				total += fi.Size()
			}
		}
		return nil
	})
	return total
}

func benchImportCmd() *cobra.Command {
	var rows int
	var dbURL string
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Time `user import` of a generated CSV (no plain passwords) into a fresh store",
		Long: `Generate a CSV of --rows accounts (email, an empty or pre-hashed password,
a Chinese display name, an empty quota) over 40 department domains and import
it into a new temporary data directory through the same code as
"govhub user import", reporting rows/s. Parsing the CSV is timed too.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			dir, err := os.MkdirTemp("", "govhub-bench-import-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			db, _, st, closeAll, err := openBenchStore(ctx, dir, dbURL)
			if err != nil {
				return err
			}
			defer closeAll()
			// Half the rows carry an existing bcrypt hash (taken as is), half
			// none (SSO only): what a migration from another system brings.
			const hash = "$2b$10$abcdefghijklmnopqrstuu5ZJ0e4P8Y5KfFXlOk9fJ6Tl0hGkXrLm"
			var csv strings.Builder
			csv.WriteString("email,password,name,quota\n")
			run := time.Now().UnixNano()
			for i := 0; i < rows; i++ {
				pw := ""
				if i%2 == 1 {
					pw = hash
				}
				fmt.Fprintf(&csv, "user%07d.%d@dept%02d.gov.example,%s,员工%d,\n", i, run, i%40, pw, i)
			}
			start := time.Now()
			parsed, bad, err := readAccountsCSV(strings.NewReader(csv.String()))
			if err != nil {
				return err
			}
			res, more, err := importRows(ctx, st, parsed, false, nil)
			if err != nil {
				return err
			}
			el := time.Since(start)
			bad = append(bad, more...)
			if len(bad) > 0 || res.Created != rows {
				return fmt.Errorf("import created %d of %d (first problem: %v)", res.Created, rows, bad)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "imported %d accounts (%d mailboxes) in %.2f s: %.0f rows/s (%s)\n",
				rows, rows*len(mailcore.DefaultMailboxes), el.Seconds(), float64(rows)/el.Seconds(), db.Dialect)
			return nil
		},
	}
	cmd.Flags().IntVar(&rows, "rows", 200000, "accounts to import")
	cmd.Flags().StringVar(&dbURL, "database", "", "database URL (default SQLite in a temporary directory)")
	return cmd
}
