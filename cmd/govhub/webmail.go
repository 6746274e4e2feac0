package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/govhub/govhub/directory"
	"github.com/govhub/govhub/mailcore"
	"github.com/govhub/govhub/mailcore/search"
	"github.com/govhub/govhub/mailcore/smtpserver"
	"github.com/govhub/govhub/mailcore/webmail"
	"github.com/govhub/govhub/mailcore/webmail/ui"
	"github.com/govhub/govhub/sso"
)

// webSessions gives webmail the signed-in user from sso's sessions.
type webSessions struct{ m *sso.Manager }

func (w webSessions) User(r *http.Request) (webmail.User, bool, error) {
	s, err := w.m.Session(r)
	if errors.Is(err, sso.ErrNoSession) {
		return webmail.User{}, false, nil
	}
	if err != nil {
		return webmail.User{}, false, err
	}
	return webmail.User{AccountID: s.AccountID, Address: s.Address, DisplayName: s.DisplayName,
		PersonID: s.PersonID, CSRF: s.CSRF, Method: s.Method}, true, nil
}

// webAppPasswords lets webmail's settings manage sso's app passwords.
type webAppPasswords struct{ m *sso.Manager }

func sessionOf(u webmail.User) sso.Session {
	return sso.Session{AccountID: u.AccountID, Address: u.Address}
}

func (w webAppPasswords) CreateAppPassword(ctx context.Context, u webmail.User, name string) (string, webmail.AppPassword, error) {
	secret, ap, err := w.m.CreateAppPassword(ctx, sessionOf(u), name)
	if errors.Is(err, sso.ErrInvalid) {
		return "", webmail.AppPassword{}, fmt.Errorf("%w: %v", webmail.ErrInvalid, err)
	}
	if err != nil {
		return "", webmail.AppPassword{}, err
	}
	return secret, webmail.AppPassword{ID: ap.ID, Name: ap.Name, CreatedAt: ap.CreatedAt, LastUsedAt: ap.LastUsedAt}, nil
}

func (w webAppPasswords) AppPasswords(ctx context.Context, u webmail.User) ([]webmail.AppPassword, error) {
	aps, err := w.m.AppPasswords(ctx, u.AccountID)
	if err != nil {
		return nil, err
	}
	out := make([]webmail.AppPassword, 0, len(aps))
	for _, ap := range aps {
		out = append(out, webmail.AppPassword{ID: ap.ID, Name: ap.Name, CreatedAt: ap.CreatedAt, LastUsedAt: ap.LastUsedAt})
	}
	return out, nil
}

func (w webAppPasswords) RevokeAppPassword(ctx context.Context, u webmail.User, id int64) error {
	if err := w.m.RevokeAppPassword(ctx, sessionOf(u), id); err != nil {
		return fmt.Errorf("%w: %v", mailcore.ErrNotFound, err)
	}
	return nil
}

// webDirectory is the address book as webmail's autocomplete and
// compose deep link use it: people by name, pinyin (full or initials),
// mail; department lists by name when department addresses are on.
type webDirectory struct {
	dir    *directory.Store
	domain string // directory.department_domain, "" when off
}

func (d webDirectory) Suggest(ctx context.Context, q string, limit int) ([]webmail.Contact, error) {
	people, err := d.dir.Search(ctx, q, limit)
	if err != nil {
		return nil, err
	}
	var out []webmail.Contact
	for _, p := range people {
		if p.Mail == "" {
			continue
		}
		out = append(out, contactOf(p))
	}
	if d.domain != "" && strings.TrimSpace(q) != "" {
		depts, err := d.dir.Departments(ctx)
		if err != nil {
			return nil, err
		}
		for _, dep := range depts {
			if len(out) >= limit {
				break
			}
			if dep.Status == "active" && strings.Contains(dep.Name, strings.TrimSpace(q)) {
				out = append(out, webmail.Contact{Name: dep.Name, Address: fmt.Sprintf("dept-%d@%s", dep.ID, d.domain), IsGroup: true})
			}
		}
	}
	return out, nil
}

func contactOf(p directory.PersonView) webmail.Contact {
	c := webmail.Contact{PersonID: strconv.FormatInt(p.ID, 10), Name: p.DisplayName, Address: p.Mail, Title: p.Title}
	if len(p.Departments) > 0 {
		c.Department = p.Departments[0].Name
	}
	return c
}

func (d webDirectory) Contact(ctx context.Context, personID string) (webmail.Contact, error) {
	id, err := strconv.ParseInt(personID, 10, 64)
	if err != nil {
		return webmail.Contact{}, mailcore.ErrNotFound
	}
	p, err := d.dir.PersonCard(ctx, id)
	if errors.Is(err, directory.ErrNotFound) {
		return webmail.Contact{}, mailcore.ErrNotFound
	}
	if err != nil {
		return webmail.Contact{}, err
	}
	return contactOf(*p), nil
}

// webSearch adapts the full-text index.
type webSearch struct{ ix *search.Index }

func (w webSearch) Search(ctx context.Context, accountID int64, q string, limit int) ([]webmail.Hit, error) {
	hits, err := w.ix.Search(ctx, accountID, q, limit)
	if err != nil {
		return nil, err
	}
	out := make([]webmail.Hit, len(hits))
	for i, h := range hits {
		out[i] = webmail.Hit{MailboxID: h.MailboxID, UID: h.UID}
	}
	return out, nil
}

// mountWebmail serves webmail's pages at /, its JSON API at /api/v1/ and
// the portal's badge at /api/v1/badge. Webmail sends through an SMTP
// submission server of its own (no listener), so the http module works
// without the smtp module on the same host.
func mountWebmail(a *app, sv *services, m *sso.Manager, mux *http.ServeMux) error {
	dir := directory.NewStore(a.db, nil)
	domain := strings.ToLower(a.cfg.Directory.DepartmentDomain)
	sub, err := smtpserver.New(a.store, sv.auth, sv.queue, sv.smtpConfig("webmail-submit"))
	if err != nil {
		return fmt.Errorf("webmail: %w", err)
	}
	alert := map[string]bool{}
	for _, s := range a.cfg.Web.AlertSenders {
		alert[strings.ToLower(s)] = true
	}
	svc := webmail.New(a.store, webmail.Config{
		Submitter:      sub,
		FullText:       webSearch{sv.index},
		Directory:      webDirectory{dir: dir, domain: domain},
		MaxMessageSize: int64(a.cfg.Store.MaxMessageSize),
		AlertSenders:   func(acct mailcore.Account) bool { return alert["*"] || alert[acct.Address] },
		Logger:         a.log.With("component", "webmail"),
	})
	sess := webSessions{m}
	apps := webAppPasswords{m}
	ppl := newPeople(a)
	mux.Handle("/api/v1/badge", webmail.BadgeHandler(svc, webmail.BadgeOptions{
		Sessions: sess, Origins: a.cfg.Web.CORSOrigins, PortalToken: a.cfg.Web.PortalToken,
		UserByPerson: func(ctx context.Context, personID string) (webmail.User, error) {
			p, err := ppl.Find(ctx, "person_id", personID)
			if errors.Is(err, sso.ErrUnknownPerson) || err == nil && p.AccountID == 0 {
				return webmail.User{}, mailcore.ErrNotFound
			}
			if err != nil {
				return webmail.User{}, err
			}
			return webmail.User{AccountID: p.AccountID, Address: p.Address, DisplayName: p.DisplayName, PersonID: p.ID}, nil
		},
	}))
	mux.Handle("/api/v1/", svc.API(sess, apps))
	mux.Handle("/", ui.New(svc, sess, ui.Options{Logger: a.log.With("component", "webmail-ui"), AppPasswords: apps,
		MaxUploadBytes: int64(a.cfg.Store.MaxMessageSize)}))
	return nil
}
