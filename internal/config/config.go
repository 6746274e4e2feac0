// Package config loads govhub's one YAML configuration file into documented
// structs. Every field has a default that works on one machine, so no file
// at all is a valid configuration; secrets may come from the environment or
// from files so they need not sit in the YAML. It owns decoding, defaults,
// environment overrides and validation, not what the settings mean.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole file. The yaml tags are the file's keys; the doc
// comment of each field is its documentation (docs/config.md repeats it).
type Config struct {
	// DataDir holds the SQLite file, the volume files, generated keys and
	// certificates. Default ./govhub-data; the --data flag overrides it.
	DataDir string `yaml:"data_dir"`
	// Hostname is the name govhub gives itself in SMTP greetings and
	// Received: headers. Default: the machine's host name.
	Hostname  string    `yaml:"hostname"`
	Database  Database  `yaml:"database"`
	Store     Store     `yaml:"store"`
	Log       Log       `yaml:"log"`
	Listen    Listen    `yaml:"listen"`
	TLS       TLS       `yaml:"tls"`
	SMTP      SMTP      `yaml:"smtp"`
	IMAP      IMAP      `yaml:"imap"`
	Delivery  Delivery  `yaml:"delivery"`
	Directory Directory `yaml:"directory"`
	API       API       `yaml:"api"`
	Web       Web       `yaml:"web"`
	SSO       SSO       `yaml:"sso"`
	Auth      Auth      `yaml:"auth"`
}

// Web configures the browser-facing side: webmail, sign-in, sessions and
// the portal's badge.
type Web struct {
	// PublicURL is the origin staff's browsers use (https://mail.example.gov.cn).
	// SSO metadata, redirect URIs and the CSRF origin check derive from it.
	// Default https://<listen.https>.
	PublicURL string `yaml:"public_url"`
	// SessionIdle ends a session unused this long; default 2h.
	SessionIdle Duration `yaml:"session_idle"`
	// SessionAbsolute ends every session this long after sign-in; default 12h.
	SessionAbsolute Duration `yaml:"session_absolute"`
	// PasswordLogin shows the password form for accounts that have a
	// password; default true.
	PasswordLogin bool `yaml:"password_login"`
	// CORSOrigins may call GET /api/v1/badge from the browser with the
	// staff member's session (the portal's pages), e.g. https://portal.example.gov.cn.
	CORSOrigins []string `yaml:"cors_origins"`
	// PortalTokenFile holds the token the portal's server presents to read
	// a person's badge (GOVHUB_PORTAL_TOKEN overrides it; ≥32 characters).
	PortalTokenFile string `yaml:"portal_token_file"`
	// TrustedProxies are the load balancers in front of the http module
	// (addresses or CIDR prefixes): for requests from them the client is
	// read from X-Forwarded-For, so sign-in lockouts and the audit log see
	// staff's addresses, not the proxy's. Default none.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// AlertSenders may use "also alert recipients by SMS/IM": addresses,
	// or "*" for everyone. Default none.
	AlertSenders []string `yaml:"alert_senders"`

	PortalToken string `yaml:"-"`
}

// SSO lists the identity providers staff sign in with.
type SSO struct {
	SAML        []SAMLProvider        `yaml:"saml"`
	OIDC        []OIDCProvider        `yaml:"oidc"`
	AffairsLink []AffairsLinkProvider `yaml:"affairslink"`
}

// Mapping says which attribute or claim finds the directory person, and
// which person field it matches: person_id, employee_no, uid, mail or
// affairslink_id. jit creates unknown people (off by default).
type Mapping struct {
	From string `yaml:"from"`
	Key  string `yaml:"key"`
	JIT  bool   `yaml:"jit"`
}

// SAMLProvider is one SAML 2.0 IdP. Its endpoints are under
// /sso/saml/<name>/ (metadata, login, acs, slo).
type SAMLProvider struct {
	Name  string `yaml:"name"`
	Label string `yaml:"label"`
	// EntityID defaults to <public_url>/sso/saml/<name>/metadata.
	EntityID        string `yaml:"entity_id"`
	IDPMetadataFile string `yaml:"idp_metadata_file"`
	IDPMetadataURL  string `yaml:"idp_metadata_url"`
	// MetadataRefresh re-reads the IdP metadata (certificate rollover); default 1h.
	MetadataRefresh Duration `yaml:"metadata_refresh"`
	// IDPInitiated accepts unsolicited responses; default false.
	IDPInitiated bool `yaml:"idp_initiated"`
	// ClockSkew allowed on assertion times; default 2m.
	ClockSkew Duration `yaml:"clock_skew"`
	// KeyFile/CertFile are the SP's signing pair; empty: generated under
	// <data_dir>/sso.
	KeyFile  string  `yaml:"key_file"`
	CertFile string  `yaml:"cert_file"`
	Mapping  Mapping `yaml:"mapping"`
}

// OIDCProvider is one OpenID provider. Its endpoints are under
// /sso/oidc/<name>/ (login, callback, backchannel-logout).
type OIDCProvider struct {
	Name     string `yaml:"name"`
	Label    string `yaml:"label"`
	Issuer   string `yaml:"issuer"`
	ClientID string `yaml:"client_id"`
	// ClientSecretFile holds the client secret; GOVHUB_OIDC_<NAME>_SECRET
	// overrides it.
	ClientSecretFile   string   `yaml:"client_secret_file"`
	Scopes             []string `yaml:"scopes"`
	ClaimsFromUserInfo bool     `yaml:"claims_from_userinfo"`
	Mapping            Mapping  `yaml:"mapping"`

	ClientSecret string `yaml:"-"`
}

// AffairsLinkProvider signs staff in with the affairs link's login code,
// exchanged through the affairs-link directory peer named by peer.
type AffairsLinkProvider struct {
	Name  string `yaml:"name"`
	Label string `yaml:"label"`
	Peer  string `yaml:"peer"`
	// PortalURL is where the sign-in button sends a browser without a code.
	PortalURL string `yaml:"portal_url"`
	// Mapping defaults to {from: subject, key: affairslink_id}.
	Mapping Mapping `yaml:"mapping"`
}

// Auth tunes password sign-in for IMAP and SMTP.
type Auth struct {
	// LDAPBindPeer names an ldap directory peer: passwords that do not
	// match a stored hash or an app password are checked by binding to it
	// as the person. Empty: off.
	LDAPBindPeer string `yaml:"ldap_bind_peer"`
}

// API guards the HTTP APIs that are not yet behind staff sign-in (the
// address book and the admin API): callers present a bearer token. Without
// a token those APIs are not served at all.
type API struct {
	// TokenFile holds the token; GOVHUB_API_TOKEN overrides it. At least 32
	// characters. Never in the YAML, never logged.
	TokenFile string `yaml:"token_file"`

	Token string `yaml:"-"`
}

// Directory configures the organisation-chart sync (the sync module).
type Directory struct {
	// MatchKey matches a person a peer reports for the first time to one
	// govhub has: employee_no (default) or mail.
	MatchKey string `yaml:"match_key"`
	// RequireMail makes a person without a mail address a broken entry.
	RequireMail bool `yaml:"require_mail"`
	// MaxDeletions and MaxDeletionFraction stop a run that would remove
	// more (the smaller wins) unless confirmed. Defaults 500 and 0.05.
	MaxDeletions        int     `yaml:"max_deletions"`
	MaxDeletionFraction float64 `yaml:"max_deletion_fraction"`
	// Ownership maps a person field to the peer name authoritative for it
	// ("govhub" for govhub itself); unlisted fields keep the defaults
	// (LDAP owns names, departments, titles and status; govhub owns mail;
	// the affairs link owns mobiles).
	Ownership map[string]string `yaml:"ownership"`
	// DepartmentDomain, when set, gives every department a distribution
	// address: dept-<id>@<domain> (members), dept-<id>-all@<domain>
	// (sub-departments too). Only signed-in staff may send to them. Use a
	// domain govhub receives mail for (the staff's own).
	DepartmentDomain string `yaml:"department_domain"`
	// Peers are the directories govhub syncs with.
	Peers []Peer `yaml:"peers"`
}

// Peer is one external directory.
type Peer struct {
	// Name is how schedules, anchors and `govhub sync run NAME` call it.
	Name string `yaml:"name"`
	// Type is ldap or affairslink.
	Type string `yaml:"type"`
	// Writable lets govhub write back the fields it owns.
	Writable bool `yaml:"writable"`
	// Push creates, in this (writable) peer, the active people govhub has
	// that the peer lacks. Off by default: a person the peer removed on
	// purpose comes back at every full run unless the peer owns status,
	// and a pushed LDAP entry's department comes from where it was
	// created (attributes.create_base_dn); see docs/directory.md.
	Push bool `yaml:"push"`
	// Delta and Full are cron expressions (robfig/cron, 5 fields) for
	// change runs and full reconciles; empty: not scheduled.
	Delta string `yaml:"delta"`
	Full  string `yaml:"full"`
	// SecretFile holds the bind password (ldap) or app secret
	// (affairslink); GOVHUB_PEER_<NAME>_SECRET overrides it. Never in the
	// YAML, never logged.
	SecretFile string `yaml:"secret_file"`
	// Settings are the type's own keys (docs/directory.md), decoded by the
	// adapter's wiring.
	Settings yaml.Node `yaml:"settings"`

	Secret string `yaml:"-"`
}

// Database selects the metadata database.
type Database struct {
	// URL: empty for the embedded SQLite file <data_dir>/govhub.db; a path
	// or sqlite:PATH for another SQLite file; postgres://user@host/db for
	// PostgreSQL. Environment override: GOVHUB_DATABASE_URL.
	URL string `yaml:"url"`
	// URLFile reads the URL from a file (for a URL carrying a password).
	URLFile string `yaml:"url_file"`
	// MaxOpenConns bounds the connection pool; 0 picks 8 (SQLite) or 16.
	MaxOpenConns int `yaml:"max_open_conns"`
}

// Store tunes the mail store.
type Store struct {
	// Blobs selects where bodies live: "local" (packed volumes under
	// <data_dir>/volumes). Default local.
	Blobs string `yaml:"blobs"`
	// VolumeSize seals a volume file at this size. Default 1GiB.
	VolumeSize ByteSize `yaml:"volume_size"`
	// DefaultQuota for accounts created without one. Default 1GiB.
	DefaultQuota ByteSize `yaml:"default_quota"`
	// MaxMessageSize bounds one message. Default 50MiB.
	MaxMessageSize ByteSize `yaml:"max_message_size"`
	// DeadGrace: a body without references is kept this long before it is
	// purged (undo window for expunge races, backups). Default 1h.
	DeadGrace Duration `yaml:"dead_grace"`
	// CompactEvery: how often the maintenance module purges dead bodies and
	// compacts volumes. Default 1h.
	CompactEvery Duration `yaml:"compact_every"`
	// CompactDeadFraction: rewrite a sealed volume once this fraction of it
	// is dead. Default 0.3.
	CompactDeadFraction float64 `yaml:"compact_dead_fraction"`
	// LeftGrace: mail for an account whose person has left is still
	// accepted this long after they left, then refused. Default 720h (30
	// days).
	LeftGrace Duration `yaml:"left_grace"`
	// EventRetention: outbox events (arrivals, expunges, flag changes)
	// older than this are pruned by the maintenance module. Consumers
	// (IMAP IDLE pollers, later alerts) read them within seconds.
	EventRetention Duration `yaml:"event_retention"`
}

// Log configures logging.
type Log struct {
	// Level: debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format: text or json. Default text.
	Format string `yaml:"format"`
}

// Listen holds each module's listen address. Defaults are loopback and
// unprivileged so `govhub serve` runs as any user; production puts the
// standard ports (25, 587, 465, 143, 993, 443) here. An empty address turns
// that listener off.
type Listen struct {
	// SMTP is inbound mail (MX). Default 127.0.0.1:2525.
	SMTP string `yaml:"smtp"`
	// Submission is port-587-style submission with STARTTLS. Default 127.0.0.1:5870.
	Submission string `yaml:"submission"`
	// Submissions is port-465-style submission with implicit TLS. Default 127.0.0.1:4650.
	Submissions string `yaml:"submissions"`
	// IMAP with STARTTLS. Default 127.0.0.1:1430.
	IMAP string `yaml:"imap"`
	// IMAPS is IMAP with implicit TLS. Default 127.0.0.1:9930.
	IMAPS string `yaml:"imaps"`
	// HTTP serves /healthz, /readyz, /metrics, the callbacks, and the same
	// pages as HTTPS (for a TLS-terminating load balancer in front).
	// Default 127.0.0.1:8080.
	HTTP string `yaml:"http"`
	// HTTPS serves webmail, sign-in and the APIs with the TLS certificate.
	// Default 127.0.0.1:8443.
	HTTPS string `yaml:"https"`
}

// TLS names the certificate for SMTP, submission and IMAP. Empty: a
// self-signed pair generated into <data_dir>/tls on first start.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// SMTP tunes the SMTP and submission listeners.
type SMTP struct {
	// MaxRecipients per message. Default 1000; never below 100 (RFC 5321
	// 4.5.3.1.8).
	MaxRecipients int `yaml:"max_recipients"`
	// MaxConnsPerIP bounds concurrent connections from one address. Default 20.
	MaxConnsPerIP int `yaml:"max_conns_per_ip"`
	// Timeout for reading a command or a chunk of data. Default 5m.
	Timeout Duration `yaml:"timeout"`
}

// IMAP tunes the IMAP listeners.
type IMAP struct {
	// AllowInsecureAuth permits LOGIN without TLS from loopback clients only
	// (for local tools). Default false.
	AllowInsecureAuth bool `yaml:"allow_insecure_auth"`
	// IdlePoll is how often IDLE sessions look for changes made by any
	// process sharing the database. Default 250ms.
	IdlePoll Duration `yaml:"idle_poll"`
}

// Delivery configures the outbound queue.
type Delivery struct {
	// Smarthost, when set (host:port), relays all outbound mail through it,
	// as many government networks require.
	Smarthost string `yaml:"smarthost"`
	// SmarthostUser and SmarthostPasswordFile authenticate to it (AUTH
	// PLAIN over TLS). GOVHUB_SMARTHOST_PASSWORD overrides the file.
	SmarthostUser         string `yaml:"smarthost_user"`
	SmarthostPasswordFile string `yaml:"smarthost_password_file"`
	// RequireTLS lists recipient domains that must be reached over TLS.
	RequireTLS []string `yaml:"require_tls"`
	// RetryFor: give up and bounce after this long. Default 120h (5 days).
	RetryFor Duration `yaml:"retry_for"`
	// DKIMSelector names the DKIM key in DNS. Default govhub.
	DKIMSelector string `yaml:"dkim_selector"`

	// SmarthostPassword is filled from the file or the environment; never
	// in the YAML, never logged.
	SmarthostPassword string `yaml:"-"`
}

// Default returns the configuration used when no file is given.
func Default() Config {
	return Config{
		DataDir: "./govhub-data",
		Store: Store{
			Blobs:               "local",
			VolumeSize:          1 << 30,
			DefaultQuota:        1 << 30,
			MaxMessageSize:      50 << 20,
			DeadGrace:           Duration(time.Hour),
			CompactEvery:        Duration(time.Hour),
			CompactDeadFraction: 0.3,
			LeftGrace:           Duration(30 * 24 * time.Hour),
			EventRetention:      Duration(7 * 24 * time.Hour),
		},
		Log: Log{Level: "info", Format: "text"},
		Listen: Listen{
			SMTP:        "127.0.0.1:2525",
			Submission:  "127.0.0.1:5870",
			Submissions: "127.0.0.1:4650",
			IMAP:        "127.0.0.1:1430",
			IMAPS:       "127.0.0.1:9930",
			HTTP:        "127.0.0.1:8080",
			HTTPS:       "127.0.0.1:8443",
		},
		Web: Web{SessionIdle: Duration(2 * time.Hour), SessionAbsolute: Duration(12 * time.Hour), PasswordLogin: true,
			CORSOrigins: []string{}, AlertSenders: []string{}, TrustedProxies: []string{}},
		SMTP:     SMTP{MaxRecipients: 1000, MaxConnsPerIP: 20, Timeout: Duration(5 * time.Minute)},
		IMAP:     IMAP{IdlePoll: Duration(250 * time.Millisecond)},
		Delivery: Delivery{RetryFor: Duration(120 * time.Hour), DKIMSelector: "govhub", RequireTLS: []string{}},
	}
}

// Load reads path (or only defaults when path is ""), applies environment
// overrides and validates. Unknown keys are errors, so a typo is caught.
func Load(path string) (Config, error) {
	c := Default()
	if path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
			return c, fmt.Errorf("config: %s: %w", path, err)
		}
	}
	if err := c.applyEnv(); err != nil {
		return c, err
	}
	if c.Hostname == "" {
		c.Hostname, _ = os.Hostname()
		if c.Hostname == "" {
			c.Hostname = "localhost"
		}
	}
	return c, c.Validate()
}

// applyEnv lets secrets and deployment specifics come from the environment.
func (c *Config) applyEnv() error {
	if v := os.Getenv("GOVHUB_DATA"); v != "" {
		c.DataDir = v
	}
	if v := os.Getenv("GOVHUB_DATABASE_URL"); v != "" {
		c.Database.URL = v
	}
	if v := os.Getenv("GOVHUB_DATABASE_URL_FILE"); v != "" {
		c.Database.URLFile = v
	}
	if c.Delivery.SmarthostPasswordFile != "" {
		raw, err := os.ReadFile(c.Delivery.SmarthostPasswordFile)
		if err != nil {
			return fmt.Errorf("config: delivery.smarthost_password_file: %w", err)
		}
		c.Delivery.SmarthostPassword = strings.TrimSpace(string(raw))
	}
	if v := os.Getenv("GOVHUB_SMARTHOST_PASSWORD"); v != "" {
		c.Delivery.SmarthostPassword = v
	}
	if c.API.TokenFile != "" {
		raw, err := os.ReadFile(c.API.TokenFile)
		if err != nil {
			return fmt.Errorf("config: api.token_file: %w", err)
		}
		c.API.Token = strings.TrimSpace(string(raw))
	}
	if v := os.Getenv("GOVHUB_API_TOKEN"); v != "" {
		c.API.Token = v
	}
	for i := range c.Directory.Peers {
		p := &c.Directory.Peers[i]
		if p.SecretFile != "" {
			raw, err := os.ReadFile(p.SecretFile)
			if err != nil {
				return fmt.Errorf("config: directory.peers[%s].secret_file: %w", p.Name, err)
			}
			p.Secret = strings.TrimSpace(string(raw))
		}
		env := "GOVHUB_PEER_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(p.Name)) + "_SECRET"
		if v := os.Getenv(env); v != "" {
			p.Secret = v
		}
	}
	if c.Web.PortalTokenFile != "" {
		raw, err := os.ReadFile(c.Web.PortalTokenFile)
		if err != nil {
			return fmt.Errorf("config: web.portal_token_file: %w", err)
		}
		c.Web.PortalToken = strings.TrimSpace(string(raw))
	}
	if v := os.Getenv("GOVHUB_PORTAL_TOKEN"); v != "" {
		c.Web.PortalToken = v
	}
	for i := range c.SSO.OIDC {
		o := &c.SSO.OIDC[i]
		if o.ClientSecretFile != "" {
			raw, err := os.ReadFile(o.ClientSecretFile)
			if err != nil {
				return fmt.Errorf("config: sso.oidc[%s].client_secret_file: %w", o.Name, err)
			}
			o.ClientSecret = strings.TrimSpace(string(raw))
		}
		if v := os.Getenv(EnvOIDCSecret(o.Name)); v != "" {
			o.ClientSecret = v
		}
	}
	if c.Database.URLFile != "" {
		raw, err := os.ReadFile(c.Database.URLFile)
		if err != nil {
			return fmt.Errorf("config: database.url_file: %w", err)
		}
		c.Database.URL = strings.TrimSpace(string(raw))
	}
	return nil
}

// EnvOIDCSecret names the variable holding an OIDC provider's client secret.
func EnvOIDCSecret(name string) string {
	return "GOVHUB_OIDC_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(name)) + "_SECRET"
}

// TrustedProxyPrefixes parses web.trusted_proxies; a bare address is a
// prefix of one address.
func (w Web) TrustedProxyPrefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range w.TrustedProxies {
		if p, err := netip.ParsePrefix(v); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("web.trusted_proxies: %q is neither an address nor a CIDR prefix", v)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// PublicURL is web.public_url, or https://<listen.https> when unset.
func (c Config) PublicURL() string {
	if c.Web.PublicURL != "" {
		return strings.TrimRight(c.Web.PublicURL, "/")
	}
	return "https://" + c.Listen.HTTPS
}

// Validate reports the first setting that cannot work, naming its key.
func (c Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data_dir: must not be empty"))
	}
	if c.Store.Blobs != "local" {
		errs = append(errs, fmt.Errorf("store.blobs: %q is not a known blob store (known: local)", c.Store.Blobs))
	}
	if c.Store.VolumeSize < 1<<20 {
		errs = append(errs, fmt.Errorf("store.volume_size: %d is below 1MiB", c.Store.VolumeSize))
	}
	if c.Store.DefaultQuota < 0 {
		errs = append(errs, errors.New("store.default_quota: must not be negative"))
	}
	if c.Store.MaxMessageSize < 1<<10 || c.Store.MaxMessageSize > 1<<30 {
		errs = append(errs, fmt.Errorf("store.max_message_size: %d is outside 1KiB..1GiB", c.Store.MaxMessageSize))
	}
	if c.Store.CompactDeadFraction <= 0 || c.Store.CompactDeadFraction >= 1 {
		errs = append(errs, fmt.Errorf("store.compact_dead_fraction: %v must be between 0 and 1", c.Store.CompactDeadFraction))
	}
	if c.Store.EventRetention < Duration(time.Hour) {
		errs = append(errs, errors.New("store.event_retention: must be at least 1h"))
	}
	if c.Store.CompactEvery < Duration(time.Minute) {
		errs = append(errs, errors.New("store.compact_every: must be at least 1m"))
	}
	if c.SMTP.MaxRecipients < 100 {
		errs = append(errs, fmt.Errorf("smtp.max_recipients: %d is below 100, the minimum RFC 5321 4.5.3.1.8 requires", c.SMTP.MaxRecipients))
	}
	if c.SMTP.MaxConnsPerIP < 1 {
		errs = append(errs, errors.New("smtp.max_conns_per_ip: must be at least 1"))
	}
	if c.SMTP.Timeout < Duration(time.Second) {
		errs = append(errs, errors.New("smtp.timeout: must be at least 1s"))
	}
	if c.IMAP.IdlePoll < Duration(10*time.Millisecond) {
		errs = append(errs, errors.New("imap.idle_poll: must be at least 10ms"))
	}
	if c.Delivery.RetryFor < Duration(time.Minute) {
		errs = append(errs, errors.New("delivery.retry_for: must be at least 1m"))
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, errors.New("tls: cert_file and key_file go together"))
	}
	if c.API.Token != "" && len(c.API.Token) < 32 {
		errs = append(errs, errors.New("api token: must be at least 32 characters"))
	}
	seenPeer := map[string]bool{}
	for _, p := range c.Directory.Peers {
		switch {
		case p.Name == "" || strings.ContainsAny(p.Name, " /:"):
			errs = append(errs, fmt.Errorf("directory.peers: name %q must be a short word", p.Name))
		case seenPeer[p.Name]:
			errs = append(errs, fmt.Errorf("directory.peers: %q appears twice", p.Name))
		case p.Push && !p.Writable:
			errs = append(errs, fmt.Errorf("directory.peers[%s].push: needs writable: true", p.Name))
		case p.Type != "ldap" && p.Type != "affairslink":
			errs = append(errs, fmt.Errorf("directory.peers[%s].type: %q is not ldap or affairslink", p.Name, p.Type))
		}
		seenPeer[p.Name] = true
	}
	if c.Web.PortalToken != "" && len(c.Web.PortalToken) < 32 {
		errs = append(errs, errors.New("web portal token: must be at least 32 characters"))
	}
	if c.Web.SessionIdle < Duration(time.Minute) || c.Web.SessionAbsolute < c.Web.SessionIdle {
		errs = append(errs, errors.New("web.session_idle/session_absolute: idle must be at least 1m and absolute at least idle"))
	}
	for _, o := range c.Web.CORSOrigins {
		if !strings.HasPrefix(o, "https://") && !strings.HasPrefix(o, "http://") || strings.Count(o, "/") != 2 {
			errs = append(errs, fmt.Errorf("web.cors_origins: %q is not an origin (scheme://host[:port])", o))
		}
	}
	if _, err := c.Web.TrustedProxyPrefixes(); err != nil {
		errs = append(errs, err)
	}
	seenSSO := map[string]bool{}
	checkName := func(kind, name string) {
		switch {
		case name == "" || strings.ContainsAny(name, " /:?#%"):
			errs = append(errs, fmt.Errorf("sso.%s: name %q must be a short word", kind, name))
		case seenSSO[kind+"/"+name]:
			errs = append(errs, fmt.Errorf("sso.%s: %q appears twice", kind, name))
		}
		seenSSO[kind+"/"+name] = true
	}
	checkMapping := func(kind, name string, m Mapping) {
		switch m.Key {
		case "", "person_id", "employee_no", "uid", "mail", "affairslink_id":
		default:
			errs = append(errs, fmt.Errorf("sso.%s[%s].mapping.key: %q is not person_id, employee_no, uid, mail or affairslink_id", kind, name, m.Key))
		}
	}
	for _, p := range c.SSO.SAML {
		checkName("saml", p.Name)
		checkMapping("saml", p.Name, p.Mapping)
		if (p.IDPMetadataFile == "") == (p.IDPMetadataURL == "") {
			errs = append(errs, fmt.Errorf("sso.saml[%s]: exactly one of idp_metadata_file and idp_metadata_url", p.Name))
		}
		if (p.KeyFile == "") != (p.CertFile == "") {
			errs = append(errs, fmt.Errorf("sso.saml[%s]: key_file and cert_file go together", p.Name))
		}
	}
	for _, p := range c.SSO.OIDC {
		checkName("oidc", p.Name)
		checkMapping("oidc", p.Name, p.Mapping)
		if p.Issuer == "" || p.ClientID == "" {
			errs = append(errs, fmt.Errorf("sso.oidc[%s]: issuer and client_id are required", p.Name))
		}
	}
	for _, p := range c.SSO.AffairsLink {
		checkName("affairslink", p.Name)
		checkMapping("affairslink", p.Name, p.Mapping)
		ok := false
		for _, peer := range c.Directory.Peers {
			ok = ok || peer.Name == p.Peer && peer.Type == "affairslink"
		}
		if !ok {
			errs = append(errs, fmt.Errorf("sso.affairslink[%s].peer: %q is not an affairslink directory peer", p.Name, p.Peer))
		}
	}
	if b := c.Auth.LDAPBindPeer; b != "" {
		ok := false
		for _, peer := range c.Directory.Peers {
			ok = ok || peer.Name == b && peer.Type == "ldap"
		}
		if !ok {
			errs = append(errs, fmt.Errorf("auth.ldap_bind_peer: %q is not an ldap directory peer", b))
		}
	}
	switch c.Directory.MatchKey {
	case "", "employee_no", "mail":
	default:
		errs = append(errs, fmt.Errorf("directory.match_key: %q is not employee_no or mail", c.Directory.MatchKey))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level: %q is not debug, info, warn or error", c.Log.Level))
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log.format: %q is not text or json", c.Log.Format))
	}
	return errors.Join(errs...)
}

// DatabaseURL is the URL to open: the configured one or the embedded
// SQLite file in the data directory.
func (c Config) DatabaseURL() string {
	if c.Database.URL != "" {
		return c.Database.URL
	}
	return filepath.Join(c.DataDir, "govhub.db")
}

// VolumeDir is where the local blob store keeps its files.
func (c Config) VolumeDir() string { return filepath.Join(c.DataDir, "volumes") }

// ByteSize is a size in bytes written as 1048576, "512KiB", "50MiB", "1GiB"
// (also KB/MB/GB as powers of 1000).
type ByteSize int64

// UnmarshalYAML parses sizes with units.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*b = ByteSize(v)
	return nil
}

// MarshalYAML writes the size back with the largest exact binary unit.
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

func (b ByteSize) String() string {
	for _, u := range []struct {
		s string
		n int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b != 0 && int64(b)%u.n == 0 {
			return strconv.FormatInt(int64(b)/u.n, 10) + u.s
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// ParseByteSize parses "50MiB", "1GiB", "1000", "10KB".
func ParseByteSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		s string
		n int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.s) {
			mult = u.n
			s = strings.TrimSpace(strings.TrimSuffix(s, u.s))
			break
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 || v > (1<<62)/mult {
		return 0, fmt.Errorf("bad size %q (write e.g. 50MiB or 1GiB)", s)
	}
	return v * mult, nil
}

// Duration is a time.Duration written as "90s", "5m", "1h".
type Duration time.Duration

// UnmarshalYAML parses Go duration syntax.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: bad duration %q (write e.g. 90s, 5m, 1h)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes Go duration syntax.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
