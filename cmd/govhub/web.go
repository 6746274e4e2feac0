package main

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/govhub/govhub/adapters/affairslink"
	"github.com/govhub/govhub/directory"
	"github.com/govhub/govhub/internal/config"
	"github.com/govhub/govhub/mailcore"
	"github.com/govhub/govhub/mailcore/auth"
	"github.com/govhub/govhub/sso"
	ssoaffairs "github.com/govhub/govhub/sso/affairslink"
	"github.com/govhub/govhub/sso/oidc"
	"github.com/govhub/govhub/sso/saml"
)

// people implements sso.People over the directory and the mail store: an
// identity finds a directory person by the configured key, and the person
// finds their mailbox by mail address. Accounts made with `govhub user
// add` that no directory knows are found by mail too, so a deployment
// without a directory still signs people in.
type people struct {
	dir   *directory.Store
	store *mailcore.Store
	peers map[string][]string // peer names by type (ldap, affairslink)
}

var _ sso.People = (*people)(nil)

func newPeople(a *app) *people {
	p := &people{dir: directory.NewStore(a.db, nil), store: a.store, peers: map[string][]string{}}
	for _, pc := range a.cfg.Directory.Peers {
		p.peers[pc.Type] = append(p.peers[pc.Type], pc.Name)
	}
	return p
}

// department names a person's first department ("" when none). Only
// the signed-in page shows it, so Find (every sign-in, every portal badge
// call) does not pay for reading the tree.
func (p *people) department(ctx context.Context, rec *directory.PersonRecord) string {
	if len(rec.Memberships) == 0 {
		return ""
	}
	depts, err := p.dir.Departments(ctx)
	if err != nil {
		return ""
	}
	for _, d := range depts {
		if d.ID == rec.Memberships[0].DeptID {
			return d.Name
		}
	}
	return ""
}

func (p *people) Find(ctx context.Context, key, value string) (sso.Person, error) {
	var rec *directory.PersonRecord
	var err error
	switch key {
	case "person_id", "employee_no", "mail":
		rec, err = p.dir.PersonBy(ctx, key, value, nil)
	case "affairslink_id":
		rec, err = p.dir.PersonBy(ctx, "anchor", value, p.peers["affairslink"])
	case "uid":
		rec, err = p.dir.PersonBy(ctx, "anchor", value, p.peers["ldap"])
	default:
		return sso.Person{}, fmt.Errorf("identity mapping: unknown key %q", key)
	}
	if errors.Is(err, directory.ErrNotFound) && key == "mail" {
		return p.accountOnly(ctx, value)
	}
	if errors.Is(err, directory.ErrNotFound) {
		return sso.Person{}, sso.ErrUnknownPerson
	}
	if errors.Is(err, directory.ErrAmbiguous) {
		// Signing in as the wrong one of two people is worse than not at all.
		return sso.Person{}, fmt.Errorf("%w: %v", sso.ErrUnknownPerson, err)
	}
	if err != nil {
		return sso.Person{}, err
	}
	return p.fromRecord(ctx, rec)
}

func (p *people) fromRecord(ctx context.Context, rec *directory.PersonRecord) (sso.Person, error) {
	out := sso.Person{ID: strconv.FormatInt(rec.ID, 10), DisplayName: rec.DisplayName, Status: rec.Status}
	if rec.Mail != "" {
		acct, err := p.store.AccountByAddress(ctx, strings.ToLower(rec.Mail))
		switch {
		case err == nil:
			out.AccountID, out.Address = acct.ID, acct.Address
			out.Status = worst(out.Status, acct.Status)
		case !errors.Is(err, mailcore.ErrNotFound):
			return sso.Person{}, err
		}
	}
	return out, nil
}

// worst of a directory status and an account status: disabled or left on
// either side refuses sign-in.
func worst(a, b string) string {
	rank := map[string]int{"active": 0, "disabled": 1, "left": 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

func (p *people) accountOnly(ctx context.Context, addr string) (sso.Person, error) {
	norm, err := mailcore.NormalizeAddress(addr)
	if err != nil {
		return sso.Person{}, sso.ErrUnknownPerson
	}
	acct, err := p.store.AccountByAddress(ctx, norm)
	if errors.Is(err, mailcore.ErrNotFound) {
		return sso.Person{}, sso.ErrUnknownPerson
	}
	if err != nil {
		return sso.Person{}, err
	}
	return sso.Person{AccountID: acct.ID, Address: acct.Address, DisplayName: acct.DisplayName, Status: acct.Status}, nil
}

func (p *people) ByAccount(ctx context.Context, accountID int64) (sso.Person, error) {
	acct, err := p.store.Account(ctx, accountID)
	if errors.Is(err, mailcore.ErrNotFound) {
		return sso.Person{}, sso.ErrUnknownPerson
	}
	if err != nil {
		return sso.Person{}, err
	}
	rec, err := p.dir.PersonBy(ctx, "mail", acct.Address, nil)
	if err == nil {
		out, err := p.fromRecord(ctx, rec)
		out.Department = p.department(ctx, rec)
		return out, err
	}
	return sso.Person{AccountID: acct.ID, Address: acct.Address, DisplayName: acct.DisplayName, Status: acct.Status}, nil
}

var _ sso.PersonCreator = (*people)(nil)

// CreateFromIdentity is just-in-time creation (a provider's mapping with
// jit: true): an SSO-only mailbox for the identity's mail address
// (attribute mail or email, or a subject that is an address), only in a
// domain govhub already serves, so an IdP cannot make govhub take on new
// domains. The directory learns about the person at its next sync.
func (p *people) CreateFromIdentity(ctx context.Context, id sso.Identity) (sso.Person, error) {
	candidates := []string{id.Attr("mail"), id.Attr("email"), id.Subject}
	if id.Method == "oidc" {
		// An OpenID provider vouches for an email only when it says it
		// verified it; sub is an opaque id, never an address.
		candidates = nil
		if id.Attr("email_verified") == "true" {
			candidates = []string{id.Attr("email")}
		}
	}
	var addr string
	for _, v := range candidates {
		if a, err := mailcore.NormalizeAddress(v); err == nil {
			addr = a
			break
		}
	}
	if addr == "" {
		return sso.Person{}, fmt.Errorf("%w: the identity carries no mail address to create a mailbox for", sso.ErrUnknownPerson)
	}
	local, err := p.store.IsLocalDomain(ctx, addr[strings.LastIndexByte(addr, '@')+1:])
	if err != nil {
		return sso.Person{}, err
	}
	if !local {
		return sso.Person{}, fmt.Errorf("%w: %s is not in a domain govhub serves", sso.ErrUnknownPerson, addr)
	}
	name := id.Attr("displayName")
	if name == "" {
		name = id.Attr("name")
	}
	acct, err := p.store.CreateAccount(ctx, mailcore.NewAccount{Address: addr, DisplayName: name})
	if errors.Is(err, mailcore.ErrExists) {
		// Only ever create: an identity that did not map to this mailbox
		// must not be handed it because it claims the address.
		return sso.Person{}, fmt.Errorf("%w: %s already has a mailbox this identity is not mapped to", sso.ErrUnknownPerson, addr)
	}
	if err != nil {
		return sso.Person{}, err
	}
	return sso.Person{AccountID: acct.ID, Address: acct.Address, DisplayName: acct.DisplayName, Status: acct.Status}, nil
}

// passwordLogin lets the sign-in page's password form use the same
// authenticator as IMAP and SMTP (delays and lockouts shared), with the
// account's own password only: app passwords are for desktop clients and
// must not open a web session around the IdP.
type passwordLogin struct{ auth *auth.Authenticator }

func (p passwordLogin) CheckPassword(ctx context.Context, user, pass, ip string) (string, error) {
	acct, err := p.auth.AuthenticateOwn(ctx, user, pass, ip)
	if err != nil {
		return "", err
	}
	return acct.Address, nil
}

// newSSO builds the sign-in core with the configured mappings.
func newSSO(a *app) *sso.Manager {
	maps := map[string]sso.Mapping{}
	for _, p := range a.cfg.SSO.SAML {
		maps[p.Name] = sso.Mapping(p.Mapping)
	}
	for _, p := range a.cfg.SSO.OIDC {
		maps[p.Name] = sso.Mapping(p.Mapping)
	}
	for _, p := range a.cfg.SSO.AffairsLink {
		m := sso.Mapping(p.Mapping)
		if m.Key == "" {
			m = sso.Mapping{From: "subject", Key: "affairslink_id"}
		}
		maps[p.Name] = m
	}
	proxies, _ := a.cfg.Web.TrustedProxyPrefixes() // validated at load
	return sso.New(a.db, newPeople(a), sso.Config{
		TrustedProxies:  proxies,
		IdleTimeout:     a.cfg.Web.SessionIdle.D(),
		AbsoluteTimeout: a.cfg.Web.SessionAbsolute.D(),
		PublicURL:       a.cfg.Web.PublicURL, // empty: the CSRF check compares Origin with the request's host
		Landing:         "/",                 // webmail's INBOX
		Mappings:        maps,
		Logger:          a.log.With("component", "sso"),
	})
}

// providers builds every configured way in. Provider names are unique per
// type (config.Validate); each mounts under /sso/<type>/<name>/.
func providers(ctx context.Context, a *app, m *sso.Manager) ([]sso.Provider, []func(context.Context) error, error) {
	var out []sso.Provider
	var jobs []func(context.Context) error
	for _, pc := range a.cfg.SSO.AffairsLink {
		peer, err := openPeer(a.cfg, pc.Peer, a.log)
		if err != nil {
			return nil, nil, fmt.Errorf("sso.affairslink[%s]: %w", pc.Name, err)
		}
		l, err := ssoaffairs.New(m, peer.(*affairslink.Client), ssoaffairs.Config{Name: pc.Name, Label: pc.Label,
			PortalURL: pc.PortalURL, Logger: a.log.With("component", "sso", "provider", pc.Name)})
		if err != nil {
			return nil, nil, err
		}
		out = append(out, l)
	}
	more, moreJobs, err := protocolProviders(ctx, a, m)
	if err != nil {
		return nil, nil, err
	}
	return append(out, more...), append(jobs, moreJobs...), nil
}

// webHandler is everything the http module serves to browsers and to the
// portal: sign-in, the SSO endpoints, the signed-in landing page, the
// address book for signed-in staff.
func webHandler(ctx context.Context, a *app, sv *services, mux *http.ServeMux) ([]func(context.Context) error, error) {
	m := sv.sso
	provs, jobs, err := providers(ctx, a, m)
	if err != nil {
		return nil, err
	}
	opts := sso.HandlerOptions{Providers: provs}
	if a.cfg.Web.PasswordLogin {
		opts.Password = passwordLogin{sv.auth}
	}
	h := m.Handler(opts)
	for _, p := range []string{"/login", "/logout", "/logout/all", "/sso/"} {
		mux.Handle(p, h)
	}
	mux.Handle("GET /me", m.Require(landing(a, m)))
	if err := mountWebmail(a, sv, m, mux); err != nil {
		return nil, err
	}
	// The address book: signed-in staff (session), or a server with the
	// API token.
	book := http.StripPrefix("/api/v1/addressbook", directory.AddressBookHandler(directory.NewStore(a.db, nil)))
	mux.Handle("/api/v1/addressbook/", sessionOrBearer(m, a.cfg.API.Token, book))
	jobs = append(jobs, func(ctx context.Context) error { return pruneSSO(ctx, m) })
	return jobs, nil
}

// pruneSSO deletes expired sessions, pending sign-ins and used-once ids
// every few minutes (any node may do it; the deletes are idempotent).
func pruneSSO(ctx context.Context, m *sso.Manager) error {
	t := time.NewTicker(5 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := m.Prune(ctx); err != nil && ctx.Err() == nil {
				m.Config().Logger.Warn("pruning sign-in state failed", "err", err)
			}
		}
	}
}

var landingPage = template.Must(template.New("me").Parse(`<!doctype html><html lang="{{.Lang}}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>govhub</title></head><body>
<h1 id="name">{{.Name}}</h1><p id="department">{{.Department}}</p><p id="address">{{.Address}}</p>
<p>{{if eq .Lang "en"}}Unread in INBOX{{else}}收件箱未读{{end}}: <strong id="unread">{{.Unread}}</strong></p>
<form method="post" action="/logout"><input type="hidden" name="csrf_token" value="{{.CSRF}}"><button>{{if eq .Lang "en"}}Sign out{{else}}退出登录{{end}}</button></form>
</body></html>`))

// landing is the signed-in page: who you are, your department, your
// unread count. Webmail replaces it as the landing page when mounted.
func landing(a *app, m *sso.Manager) http.Handler {
	ppl := newPeople(a)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := sso.FromContext(r.Context())
		p, err := ppl.ByAccount(r.Context(), s.AccountID)
		if err != nil {
			http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
			return
		}
		unread := int64(0)
		if mb, err := a.store.MailboxByName(r.Context(), s.AccountID, "INBOX"); err == nil {
			if c, err := a.store.Counts(r.Context(), mb.ID); err == nil {
				unread = c.Unseen
			}
		}
		name := p.DisplayName
		if name == "" {
			name = s.Address
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'none'; frame-ancestors 'none'")
		landingPage.Execute(w, map[string]any{"Lang": sso.Lang(r), "Name": name, "Department": p.Department,
			"Address": s.Address, "Unread": unread, "CSRF": s.CSRF})
	})
}

// protocolProviders builds the SAML and OIDC providers. A SAML provider
// re-reads its IdP's metadata on a schedule (a job); an OIDC provider
// does discovery now, so a wrong issuer fails the start with its reason.
func protocolProviders(ctx context.Context, a *app, m *sso.Manager) ([]sso.Provider, []func(context.Context) error, error) {
	var out []sso.Provider
	var jobs []func(context.Context) error
	for _, pc := range a.cfg.SSO.SAML {
		sp, err := saml.New(ctx, m, samlConfig(a, pc))
		if err != nil {
			return nil, nil, fmt.Errorf("sso.saml[%s]: %w", pc.Name, err)
		}
		out = append(out, sp)
		jobs = append(jobs, sp.Run)
	}
	for _, pc := range a.cfg.SSO.OIDC {
		rp, err := oidc.New(ctx, m, oidcConfig(a, pc))
		if err != nil {
			return nil, nil, fmt.Errorf("sso.oidc[%s]: %w", pc.Name, err)
		}
		out = append(out, rp)
	}
	return out, jobs, nil
}

func samlConfig(a *app, pc config.SAMLProvider) saml.Config {
	return saml.Config{Name: pc.Name, Label: pc.Label, PublicURL: a.cfg.PublicURL(), EntityID: pc.EntityID,
		IDPMetadataFile: pc.IDPMetadataFile, IDPMetadataURL: pc.IDPMetadataURL,
		MetadataRefresh: pc.MetadataRefresh.D(), IDPInitiated: pc.IDPInitiated, ClockSkew: pc.ClockSkew.D(),
		KeyFile: pc.KeyFile, CertFile: pc.CertFile, KeyDir: filepath.Join(a.cfg.DataDir, "sso"),
		Logger: a.log.With("component", "sso", "provider", pc.Name)}
}

func oidcConfig(a *app, pc config.OIDCProvider) oidc.Config {
	return oidc.Config{Name: pc.Name, Label: pc.Label, Issuer: pc.Issuer, ClientID: pc.ClientID,
		ClientSecret: pc.ClientSecret, Scopes: pc.Scopes, PublicURL: a.cfg.PublicURL(),
		ClaimsFromUserInfo: pc.ClaimsFromUserInfo, Logger: a.log.With("component", "sso", "provider", pc.Name)}
}

// sessionOrBearer serves a read-only API to a signed-in browser or to a
// caller presenting the API token.
func sessionOrBearer(m *sso.Manager, token string, h http.Handler) http.Handler {
	withToken := bearer(token, h)
	withSession := m.Require(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token != "" && strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			withToken.ServeHTTP(w, r)
			return
		}
		withSession.ServeHTTP(w, r)
	})
}
