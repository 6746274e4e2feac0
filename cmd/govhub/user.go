package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/govhub/govhub/internal/config"
	"github.com/govhub/govhub/internal/passhash"
	"github.com/govhub/govhub/mailcore"
	"github.com/mattn/go-isatty"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

func userCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Manage mail accounts: add, import, list, quota",
	}
	cmd.AddCommand(userAddCmd(g), userImportCmd(g), userListCmd(g), userQuotaCmd(g))
	return cmd
}

func userAddCmd(g *globals) *cobra.Command {
	var password, name, quota string
	var pwStdin bool
	cmd := &cobra.Command{
		Use:   "add EMAIL",
		Short: "Create an account with its default mailboxes",
		Long: `Create an account. Without --password (or --password-stdin) the account is
SSO-only: it cannot sign in with a password until it gets one (or an app
password). The password is stored as an argon2id hash.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if pwStdin {
				line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if err != nil && !errors.Is(err, io.EOF) {
					return err
				}
				password = strings.TrimRight(line, "\r\n")
			}
			na := mailcore.NewAccount{Address: args[0], DisplayName: name}
			if password != "" {
				h, err := passhash.Hash(password)
				if err != nil {
					return err
				}
				na.PasswordHash = h
			}
			if quota != "" {
				q, err := parseQuota(quota)
				if err != nil {
					return fmt.Errorf("--quota: %w", err)
				}
				na.QuotaBytes = q
			}
			a, err := g.openApp(cmd.Context(), openOptions{})
			if err != nil {
				return err
			}
			defer a.Close()
			acct, err := a.store.CreateAccount(cmd.Context(), na)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created %s (quota %s)\n", acct.Address, quotaString(acct.QuotaBytes))
			return nil
		},
	}
	cmd.Flags().StringVar(&password, "password", "", "password (visible to other local users in ps; prefer --password-stdin)")
	cmd.Flags().BoolVar(&pwStdin, "password-stdin", false, "read the password from the first line of standard input")
	cmd.Flags().StringVar(&name, "name", "", "display name")
	cmd.Flags().StringVar(&quota, "quota", "", "quota, e.g. 2GiB or unlimited (default store.default_quota)")
	return cmd
}

// parseQuota reads "2GiB", "500MiB", a byte count, or "unlimited" (-1).
// An empty cell means the default (0).
func parseQuota(s string) (int64, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "":
		return 0, nil
	case "unlimited", "none":
		return -1, nil
	}
	n, err := config.ParseByteSize(s)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return -1, nil // an explicit 0 is unlimited, as stored
	}
	return n, nil
}

func quotaString(q int64) string {
	if q == 0 {
		return "unlimited"
	}
	return config.ByteSize(q).String()
}

func userImportCmd(g *globals) *cobra.Command {
	var update bool
	cmd := &cobra.Command{
		Use:   "import FILE.csv",
		Short: "Create accounts in bulk from a CSV file (email,password,name,quota)",
		Long: `Create accounts from a CSV file with the columns email,password,name,quota
(a header row naming them is optional; "-" reads standard input).

The password cell may be empty (an SSO-only account), a crypt-format hash
taken as it is ($argon2id$, $2b$ bcrypt, $6$/$5$ sha-crypt, with or without
a Dovecot {SCHEME} prefix), or a plain password, which is hashed with
argon2id. Hashes in weak schemes (md5-crypt, {PLAIN}, {SHA}) are refused
with the line number. The quota cell is empty (default), a size such as
2GiB, or "unlimited".

Rows that fail are reported with their line numbers and the rest are
imported; the exit status is 1 if any row failed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var in io.Reader = os.Stdin
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			rows, bad, err := readAccountsCSV(in)
			if err != nil {
				return err
			}
			if err := hashPlainPasswords(cmd.Context(), rows); err != nil {
				return err
			}
			a, err := g.openApp(cmd.Context(), openOptions{})
			if err != nil {
				return err
			}
			defer a.Close()
			var bar *progressbar.ProgressBar
			if f, ok := cmd.ErrOrStderr().(*os.File); ok && isatty.IsTerminal(f.Fd()) {
				bar = progressbar.NewOptions(len(rows), progressbar.OptionSetWriter(f), progressbar.OptionSetDescription("importing"),
					progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionThrottle(100_000_000))
			}
			total, more, err := importRows(cmd.Context(), a.store, rows, update, bar)
			if err != nil {
				return err
			}
			bad = append(bad, more...)
			if bar != nil {
				bar.Finish()
				fmt.Fprintln(cmd.ErrOrStderr())
			}
			sort.SliceStable(bad, func(i, j int) bool { return lineOf(bad[i]) < lineOf(bad[j]) })
			for _, b := range bad {
				fmt.Fprintln(cmd.ErrOrStderr(), b)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created %d, updated %d, failed %d\n", total.Created, total.Updated, len(bad))
			if len(bad) > 0 {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&update, "update", false, "update name, password and quota of accounts that exist instead of failing them")
	return cmd
}

// importRows creates the parsed rows in batches of 5000 (each batch a few
// multi-row statements), reporting refused rows by their CSV line.
func importRows(ctx context.Context, st *mailcore.Store, rows []csvAccount, update bool, bar *progressbar.ProgressBar) (mailcore.ImportResult, []string, error) {
	var total mailcore.ImportResult
	var bad []string
	const batch = 5000
	for start := 0; start < len(rows); start += batch {
		part := rows[start:min(start+batch, len(rows))]
		nas := make([]mailcore.NewAccount, len(part))
		for i, r := range part {
			nas[i] = r.na
		}
		res, err := st.ImportAccounts(ctx, nas, mailcore.ImportOptions{UpdateExisting: update})
		if err != nil {
			return total, bad, err
		}
		total.Created += res.Created
		total.Updated += res.Updated
		for _, e := range res.Errors {
			bad = append(bad, fmt.Sprintf("line %d: %s: %v", part[e.Index].line, e.Address, e.Err))
		}
		if bar != nil {
			bar.Add(len(part))
		}
	}
	return total, bad, nil
}

// lineOf reads the number of a "line N: ..." message, to report in file order.
func lineOf(msg string) int {
	var n int
	fmt.Sscanf(msg, "line %d:", &n)
	return n
}

type csvAccount struct {
	line  int
	na    mailcore.NewAccount
	plain string // a plain password still to hash
}

// readAccountsCSV parses the import file; malformed rows are returned as
// messages, never fatal.
func readAccountsCSV(in io.Reader) ([]csvAccount, []string, error) {
	r := csv.NewReader(bufio.NewReaderSize(in, 1<<20))
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	var rows []csvAccount
	var bad []string
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := r.FieldPos(0)
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				bad = append(bad, fmt.Sprintf("line %d: %v", pe.Line, pe.Err))
				continue
			}
			return nil, nil, err
		}
		if len(rec) == 0 || (len(rec) == 1 && strings.TrimSpace(rec[0]) == "") {
			continue
		}
		if line == 1 && strings.EqualFold(strings.TrimSpace(rec[0]), "email") {
			continue // header
		}
		if len(rec) > 4 {
			bad = append(bad, fmt.Sprintf("line %d: %d columns, want at most 4 (email,password,name,quota)", line, len(rec)))
			continue
		}
		for len(rec) < 4 {
			rec = append(rec, "")
		}
		row := csvAccount{line: line, na: mailcore.NewAccount{Address: strings.TrimSpace(rec[0]), DisplayName: strings.TrimSpace(rec[2])}}
		pw := rec[1]
		switch {
		case pw == "":
		case passhash.IsHash(pw):
			// Checked now (cheaply, without hashing) so a weak or malformed
			// hash is reported with its line instead of failing at login.
			if err := passhash.Check(pw); err != nil {
				bad = append(bad, fmt.Sprintf("line %d: %s: %v", line, row.na.Address, err))
				continue
			}
			row.na.PasswordHash = pw
		default:
			row.plain = pw
		}
		q, err := parseQuota(rec[3])
		if err != nil {
			bad = append(bad, fmt.Sprintf("line %d: %s: quota: %v", line, row.na.Address, err))
			continue
		}
		row.na.QuotaBytes = q
		rows = append(rows, row)
	}
	return rows, bad, nil
}

// hashPlainPasswords hashes plain-text cells on every core: argon2id is
// deliberately slow, so a file of plain passwords imports at the KDF's rate.
func hashPlainPasswords(ctx context.Context, rows []csvAccount) error {
	work := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				h, err := passhash.Hash(rows[i].plain)
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("line %d: %w", rows[i].line, err)
					}
					mu.Unlock()
					continue
				}
				rows[i].na.PasswordHash = h
				rows[i].plain = ""
			}
		}()
	}
	for i := range rows {
		if rows[i].plain != "" {
			if ctx.Err() != nil {
				break
			}
			work <- i
		}
	}
	close(work)
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

func userListCmd(g *globals) *cobra.Command {
	var asJSON bool
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List accounts with status, quota and use",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := g.openApp(cmd.Context(), openOptions{readOnlyBlobs: true})
			if err != nil {
				return err
			}
			defer a.Close()
			out := cmd.OutOrStdout()
			tw := tabwriter.NewWriter(out, 2, 8, 2, ' ', 0)
			if !asJSON {
				fmt.Fprintln(tw, "ADDRESS\tNAME\tSTATUS\tPASSWORD\tQUOTA\tUSED")
			}
			enc := json.NewEncoder(out)
			after, shown := "", 0
			for limit == 0 || shown < limit {
				page, err := a.store.ListAccounts(cmd.Context(), after, 1000)
				if err != nil {
					return err
				}
				if len(page) == 0 {
					break
				}
				for _, acct := range page {
					if limit > 0 && shown >= limit {
						break
					}
					shown++
					if asJSON {
						enc.Encode(acct)
						continue
					}
					pw := "sso-only"
					if acct.HasPassword() {
						pw = "set"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", acct.Address, acct.DisplayName, acct.Status, pw, quotaString(acct.QuotaBytes), config.ByteSize(acct.UsedBytes))
				}
				after = page[len(page)-1].Address
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object per line")
	cmd.Flags().IntVar(&limit, "limit", 0, "show at most this many (0: all)")
	return cmd
}

func userQuotaCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "quota EMAIL [SIZE|unlimited]",
		Short: "Show or set an account's quota",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := g.openApp(cmd.Context(), openOptions{readOnlyBlobs: true})
			if err != nil {
				return err
			}
			defer a.Close()
			acct, err := a.store.AccountByAddress(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if len(args) == 2 {
				q, err := parseQuota(args[1])
				if err != nil || args[1] == "" {
					return fmt.Errorf("bad quota %q", args[1])
				}
				if q < 0 {
					q = 0
				}
				acct, err = a.store.UpdateAccount(cmd.Context(), acct.ID, func(old mailcore.Account) (mailcore.Account, error) {
					old.QuotaBytes = q
					return old, nil
				})
				if err != nil {
					return err
				}
			}
			pct := ""
			if acct.QuotaBytes > 0 {
				pct = fmt.Sprintf(" (%.1f%%)", 100*float64(acct.UsedBytes)/float64(acct.QuotaBytes))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: used %s of %s%s\n", acct.Address, config.ByteSize(acct.UsedBytes), quotaString(acct.QuotaBytes), pct)
			return nil
		},
	}
}
