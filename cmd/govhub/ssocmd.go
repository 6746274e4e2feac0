package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"text/tabwriter"
	"time"

	"github.com/govhub/govhub/internal/config"
	"github.com/govhub/govhub/sso/oidc"
	"github.com/govhub/govhub/sso/saml"
	"github.com/spf13/cobra"
)

// ssoProvider is one configured provider as the CLI lists it.
type ssoProvider struct {
	Type     string `json:"type"`
	Name     string `json:"name"`
	Label    string `json:"label,omitempty"`
	Source   string `json:"source"`
	Login    string `json:"login_url"`
	Extra    string `json:"endpoints,omitempty"`
	MapFrom  string `json:"mapping_from"`
	MapKey   string `json:"mapping_key"`
	MapJIT   bool   `json:"mapping_jit,omitempty"`
	Settings any    `json:"-"`
}

func configuredProviders(cfg config.Config) []ssoProvider {
	pub := cfg.PublicURL()
	mapping := func(m config.Mapping, defFrom, defKey string) (string, string) {
		if m.Key == "" {
			return defFrom, defKey
		}
		if m.From == "" {
			return "subject", m.Key
		}
		return m.From, m.Key
	}
	var out []ssoProvider
	for _, p := range cfg.SSO.SAML {
		src := p.IDPMetadataFile
		if src == "" {
			src = p.IDPMetadataURL
		}
		base := pub + "/sso/saml/" + p.Name
		f, k := mapping(p.Mapping, "subject", "mail")
		out = append(out, ssoProvider{Type: "saml", Name: p.Name, Label: p.Label, Source: src, Login: base + "/login",
			Extra: "metadata " + base + "/metadata, acs " + base + "/acs, slo " + base + "/slo", MapFrom: f, MapKey: k, MapJIT: p.Mapping.JIT, Settings: p})
	}
	for _, p := range cfg.SSO.OIDC {
		base := pub + "/sso/oidc/" + p.Name
		f, k := mapping(p.Mapping, "subject", "mail")
		out = append(out, ssoProvider{Type: "oidc", Name: p.Name, Label: p.Label, Source: p.Issuer, Login: base + "/login",
			Extra: "redirect_uri " + base + "/callback, backchannel_logout_uri " + base + "/backchannel-logout", MapFrom: f, MapKey: k, MapJIT: p.Mapping.JIT, Settings: p})
	}
	for _, p := range cfg.SSO.AffairsLink {
		base := pub + "/sso/affairslink/" + p.Name
		f, k := mapping(p.Mapping, "subject", "affairslink_id")
		out = append(out, ssoProvider{Type: "affairslink", Name: p.Name, Label: p.Label, Source: "directory peer " + p.Peer,
			Login: base + "/login?code=CODE", MapFrom: f, MapKey: k, MapJIT: p.Mapping.JIT, Settings: p})
	}
	return out
}

func ssoCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sso",
		Short: "Single sign-on: list the configured providers, test one, read the sign-in audit log",
	}
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the configured IdPs, OPs and affairs-link logins with their URLs and identity mapping",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			ps := configuredProviders(cfg)
			out := cmd.OutOrStdout()
			if asJSON {
				if ps == nil {
					ps = []ssoProvider{}
				}
				return json.NewEncoder(out).Encode(ps)
			}
			if len(ps) == 0 {
				fmt.Fprintln(out, "no SSO providers configured (sso.saml, sso.oidc, sso.affairslink; see docs/sso.md)")
				return nil
			}
			tw := tabwriter.NewWriter(out, 2, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "TYPE\tNAME\tLABEL\tSOURCE\tMAPPING\tLOGIN")
			for _, p := range ps {
				jit := ""
				if p.MapJIT {
					jit = " (jit)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s → %s%s\t%s\n", p.Type, p.Name, p.Label, p.Source, p.MapFrom, p.MapKey, jit, p.Login)
			}
			tw.Flush()
			for _, p := range ps {
				if p.Extra != "" {
					fmt.Fprintf(out, "%s %s: %s\n", p.Type, p.Name, p.Extra)
				}
			}
			return nil
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "JSON")

	var metadata string
	test := &cobra.Command{
		Use:   "test NAME",
		Short: "Explain what a provider's IdP metadata or OIDC discovery document would accept",
		Long: `Fetch the provider's IdP metadata (SAML; --metadata FILE reads another
file instead, to vet a new one before installing it) or its discovery
document and keys (OIDC) and explain what govhub would accept from it: the
IdP entity id, endpoints and bindings, signing certificates with their
fingerprints and expiry, the algorithms and key ids. Exit status 1 when the
metadata or discovery cannot be used.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			a := &app{cfg: cfg, log: newLogger(cfg)}
			out := cmd.OutOrStdout()
			for _, p := range configuredProviders(cfg) {
				if p.Name != args[0] {
					continue
				}
				switch s := p.Settings.(type) {
				case config.SAMLProvider:
					sc := samlConfig(a, s)
					raw, err := readMetadata(cmd, metadata, sc)
					if err != nil {
						return err
					}
					text, err := saml.Explain(raw, sc)
					if err != nil {
						return err
					}
					fmt.Fprint(out, text)
					return nil
				case config.OIDCProvider:
					text, err := oidc.Explain(cmd.Context(), oidcConfig(a, s))
					if err != nil {
						return err
					}
					fmt.Fprint(out, text)
					return nil
				case config.AffairsLinkProvider:
					fmt.Fprintf(out, "affairs-link login %s: the affairs link opens %s with a one-time code;\n", p.Name, p.Login)
					fmt.Fprintf(out, "govhub exchanges it at the directory peer %s (POST /v1/auth/code) for the user id\n", s.Peer)
					fmt.Fprintf(out, "and finds the person by %s = that id. Codes are single-use (10 min memory).\n", p.MapKey)
					return nil
				}
			}
			return fmt.Errorf("no SSO provider named %q (see govhub sso list)", args[0])
		},
	}
	test.Flags().StringVar(&metadata, "metadata", "", "SAML: explain this metadata file instead of the configured source")

	var account string
	var since time.Duration
	var limit int
	audit := &cobra.Command{
		Use:   "audit",
		Short: "Show sign-ins, failures and sign-outs: who, when, from where, which method",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := g.openApp(cmd.Context(), openOptions{readOnlyBlobs: true})
			if err != nil {
				return err
			}
			defer a.Close()
			var acctID int64
			if account != "" {
				acct, err := a.store.AccountByAddress(cmd.Context(), account)
				if err != nil {
					return fmt.Errorf("account %s: %w", account, err)
				}
				acctID = acct.ID
			}
			var from time.Time
			if since > 0 {
				from = time.Now().Add(-since)
			}
			entries, err := newSSO(a).Audit(cmd.Context(), acctID, from, limit)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return json.NewEncoder(out).Encode(entries)
			}
			tw := tabwriter.NewWriter(out, 2, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tEVENT\tWHO\tMETHOD\tPROVIDER\tFROM\tDETAIL")
			for _, e := range entries {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", time.Unix(e.At, 0).Format(time.DateTime), e.Event, e.Who, e.Method, e.Provider, e.RemoteIP, e.Detail)
			}
			return tw.Flush()
		},
	}
	audit.Flags().StringVar(&account, "account", "", "only this account's entries")
	audit.Flags().DurationVar(&since, "since", 0, "only entries newer than this (e.g. 24h)")
	audit.Flags().IntVar(&limit, "limit", 100, "at most this many, newest first")
	audit.Flags().BoolVar(&asJSON, "json", false, "JSON")
	cmd.AddCommand(list, test, audit)
	return cmd
}

// readMetadata reads the --metadata file, or the provider's configured
// file or URL.
func readMetadata(cmd *cobra.Command, file string, sc saml.Config) ([]byte, error) {
	switch {
	case file != "":
		return os.ReadFile(file)
	case sc.IDPMetadataFile != "":
		return os.ReadFile(sc.IDPMetadataFile)
	}
	req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, sc.IDPMetadataURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("%s: HTTP %d", sc.IDPMetadataURL, resp.StatusCode)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 4<<20))
}
