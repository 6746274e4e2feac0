package webmail

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/govhub/govhub/internal/sqldb"
	"github.com/govhub/govhub/mailcore"
	"github.com/microcosm-cc/bluemonday"
)

// Sentinel errors of the service besides mailcore's (ErrNotFound,
// ErrExists, ErrTooLarge, ErrQuotaExceeded, ErrSpecialMailbox,
// ErrHasChildren, ErrInvalidMailboxName, ErrInvalidAddress); test with
// errors.Is.
var (
	// ErrInvalid: the request is malformed (an unknown action, no
	// recipients, a bad setting). The wrapped text says what, for logs.
	ErrInvalid = errors.New("invalid request")
	// ErrAlertNotAllowed: Draft.Alert from a sender Config.AlertSenders
	// does not allow.
	ErrAlertNotAllowed = errors.New("sender-requested alerts not allowed for this sender")
	// ErrSubmit: the Submitter refused or failed the message; nothing was
	// stored in Sent.
	ErrSubmit = errors.New("message not sent")
)

// Limits of one request.
const (
	DefaultPerPage = 50
	MaxPerPage     = 200
	MaxRecipients  = 500  // To + Cc + Bcc of one message
	MaxActUIDs     = 5000 // messages one Act may touch
	maxPage        = 100000
	maxTextBytes   = 4 << 20 // text or HTML part decoded for display
	maxSearchHits  = 2000
)

// Config wires a Service.
type Config struct {
	// Submitter sends mail (smtpserver's Server); nil: Send fails with
	// ErrSubmit.
	Submitter Submitter
	// FullText answers SearchQuery.Text; nil: Text matches subject and
	// preview only.
	FullText FullText
	// Directory serves autocomplete and the compose deep link; may be nil.
	Directory Directory
	// MaxMessageSize bounds a sent or saved message (attachments included,
	// after MIME encoding); zero means 25 MiB.
	MaxMessageSize int64
	// AlertSenders says whether an account may ask for SMS/IM alerts to
	// its recipients; nil allows no one.
	AlertSenders func(acct mailcore.Account) bool
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Service is webmail over a mail store: it implements Mail for the pages
// and the JSON API. Safe for concurrent use.
type Service struct {
	store *mailcore.Store
	db    *sqldb.DB
	cfg   Config
	log   *slog.Logger
	now   func() time.Time

	policy *bluemonday.Policy // HTML mail; images are settled afterwards
}

var _ Mail = (*Service)(nil)

// New returns a Service over store.
func New(store *mailcore.Store, cfg Config) *Service {
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = 25 << 20
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{
		store:  store,
		db:     store.DB(),
		cfg:    cfg,
		log:    log.With("component", "webmail"),
		now:    cfg.Now,
		policy: mailPolicy(),
	}
}

// MaxMessageSize is the configured bound on one sent or saved message.
func (s *Service) MaxMessageSize() int64 { return s.cfg.MaxMessageSize }

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

func notFound(what string, id any) error {
	return fmt.Errorf("%w: %s %v", mailcore.ErrNotFound, what, id)
}

// folder returns the user's mailbox id; another account's is ErrNotFound,
// exactly like a missing one.
func (s *Service) folder(ctx context.Context, u User, id int64) (mailcore.Mailbox, error) {
	if id <= 0 || u.AccountID <= 0 {
		return mailcore.Mailbox{}, notFound("mailbox", id)
	}
	mb, err := s.store.Mailbox(ctx, id)
	if err != nil {
		return mailcore.Mailbox{}, err
	}
	if mb.AccountID != u.AccountID {
		return mailcore.Mailbox{}, notFound("mailbox", id)
	}
	return mb, nil
}

// special returns the user's mailbox with a special use (or INBOX for
// use ""), creating it under its default name when the account has none.
func (s *Service) special(ctx context.Context, u User, use string) (mailcore.Mailbox, error) {
	if u.AccountID <= 0 {
		return mailcore.Mailbox{}, notFound("account", u.AccountID)
	}
	if use == "" {
		return s.store.MailboxByName(ctx, u.AccountID, "INBOX")
	}
	var id int64
	err := s.db.X.GetContext(ctx, &id, s.db.Rebind(`SELECT id FROM mailboxes WHERE account_id = ? AND special_use = ? ORDER BY id LIMIT 1`), u.AccountID, use)
	if err == nil {
		return s.store.Mailbox(ctx, id)
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return mailcore.Mailbox{}, err
	}
	name := strings.TrimPrefix(use, `\`)
	for _, d := range mailcore.DefaultMailboxes {
		if d.SpecialUse == use {
			name = d.Name
		}
	}
	mb, err := s.store.CreateMailbox(ctx, u.AccountID, name, use)
	if errors.Is(err, mailcore.ErrExists) {
		// A folder of that name without the attribute: use it.
		return s.store.MailboxByName(ctx, u.AccountID, name)
	}
	return mb, err
}

// specialOrder puts INBOX first, then the special-use folders in the order
// every account gets them, then the rest by name.
func specialOrder(m mailcore.Mailbox) int {
	if m.Name == "INBOX" {
		return 0
	}
	for i, d := range mailcore.DefaultMailboxes {
		if m.SpecialUse != "" && d.SpecialUse == m.SpecialUse {
			return i
		}
	}
	return len(mailcore.DefaultMailboxes)
}

// Folders lists the user's mailboxes with message and unread counts, in
// one query for all counts.
func (s *Service) Folders(ctx context.Context, u User) ([]Folder, error) {
	mbs, err := s.store.Mailboxes(ctx, u.AccountID)
	if err != nil {
		return nil, fmt.Errorf("webmail: folders: %w", err)
	}
	// Two index-only counts: all messages (messages_uid) and unread ones
	// (the partial messages_webmail_unseen), never the rows themselves.
	type count struct {
		MailboxID int64 `db:"mailbox_id"`
		N         int   `db:"n"`
	}
	var all, unread []count
	err = s.db.X.SelectContext(ctx, &all, s.db.Rebind(`SELECT m.mailbox_id, COUNT(*) AS n
		FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id WHERE b.account_id = ? GROUP BY m.mailbox_id`), u.AccountID)
	if err == nil {
		err = s.db.X.SelectContext(ctx, &unread, s.db.Rebind(`SELECT m.mailbox_id, COUNT(*) AS n
			FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id WHERE b.account_id = ? AND m.flags & 1 = 0 GROUP BY m.mailbox_id`), u.AccountID)
	}
	if err != nil {
		return nil, fmt.Errorf("webmail: folder counts: %w", err)
	}
	type counts struct{ n, unread int }
	byID := map[int64]counts{}
	for _, c := range all {
		byID[c.MailboxID] = counts{n: c.N}
	}
	for _, c := range unread {
		bc := byID[c.MailboxID]
		bc.unread = c.N
		byID[c.MailboxID] = bc
	}
	sort.SliceStable(mbs, func(i, j int) bool {
		oi, oj := specialOrder(mbs[i]), specialOrder(mbs[j])
		if oi != oj {
			return oi < oj
		}
		return mbs[i].Name < mbs[j].Name
	})
	out := make([]Folder, 0, len(mbs))
	for _, m := range mbs {
		f := Folder{ID: m.ID, Name: m.Name, SpecialUse: m.SpecialUse}
		c := byID[m.ID]
		f.Messages, f.Unread = c.n, c.unread
		out = append(out, f)
	}
	return out, nil
}

// Quota reports the account's use of its quota.
func (s *Service) Quota(ctx context.Context, u User) (Quota, error) {
	a, err := s.store.Account(ctx, u.AccountID)
	if err != nil {
		return Quota{}, err
	}
	return Quota{UsedBytes: a.UsedBytes, QuotaBytes: a.QuotaBytes}, nil
}

// CreateFolder creates a folder (and missing parents) named by its full
// "/"-separated path.
func (s *Service) CreateFolder(ctx context.Context, u User, name string) (Folder, error) {
	if u.AccountID <= 0 {
		return Folder{}, notFound("account", u.AccountID)
	}
	mb, err := s.store.CreateMailbox(ctx, u.AccountID, strings.TrimSpace(name), "")
	if err != nil {
		return Folder{}, err
	}
	return Folder{ID: mb.ID, Name: mb.Name, SpecialUse: mb.SpecialUse}, nil
}

// RenameFolder renames a folder and its children. INBOX and the
// special-use folders keep their names (ErrSpecialMailbox): clients find
// them by name as well as by attribute.
func (s *Service) RenameFolder(ctx context.Context, u User, folderID int64, newName string) error {
	mb, err := s.folder(ctx, u, folderID)
	if err != nil {
		return err
	}
	if mb.Name == "INBOX" || mb.SpecialUse != "" {
		return fmt.Errorf("%w: %q", mailcore.ErrSpecialMailbox, mb.Name)
	}
	return s.store.RenameMailbox(ctx, u.AccountID, mb.Name, strings.TrimSpace(newName))
}

// DeleteFolder deletes a folder without children, and its messages. INBOX
// and the special-use folders cannot be deleted.
func (s *Service) DeleteFolder(ctx context.Context, u User, folderID int64) error {
	mb, err := s.folder(ctx, u, folderID)
	if err != nil {
		return err
	}
	if mb.Name == "INBOX" || mb.SpecialUse != "" {
		return fmt.Errorf("%w: %q", mailcore.ErrSpecialMailbox, mb.Name)
	}
	return s.store.DeleteMailbox(ctx, u.AccountID, mb.Name)
}

// Act applies one action to messages of one folder. Unknown uids are
// ignored (they may have been expunged meanwhile).
func (s *Service) Act(ctx context.Context, u User, folderID int64, uids []uint32, a Action, target int64) error {
	mb, err := s.folder(ctx, u, folderID)
	if err != nil {
		return err
	}
	if len(uids) == 0 {
		return invalid("no messages")
	}
	if len(uids) > MaxActUIDs {
		return invalid("more than %d messages", MaxActUIDs)
	}
	flags := func(op mailcore.FlagOp, f mailcore.Flags) error {
		_, err := s.store.StoreFlags(ctx, mb.ID, uids, op, f)
		return err
	}
	moveTo := func(dst mailcore.Mailbox, err error) error {
		if err != nil {
			return err
		}
		if dst.ID == mb.ID {
			return nil
		}
		_, err = s.store.Move(ctx, mb.ID, uids, dst.ID)
		return err
	}
	// judge moves to dst and records the verdict as a keyword.
	judge := func(dst mailcore.Mailbox, err error, add, remove string) error {
		if err != nil {
			return err
		}
		moved := uids
		if dst.ID != mb.ID {
			res, err := s.store.Move(ctx, mb.ID, uids, dst.ID)
			if err != nil {
				return err
			}
			moved = res.DstUIDs
		}
		if len(moved) == 0 {
			return nil
		}
		return s.setKeyword(ctx, dst.ID, moved, add, remove)
	}
	switch a {
	case ActRead:
		return flags(mailcore.FlagsAdd, mailcore.FlagSeen)
	case ActUnread:
		return flags(mailcore.FlagsRemove, mailcore.FlagSeen)
	case ActFlag:
		return flags(mailcore.FlagsAdd, mailcore.FlagFlagged)
	case ActUnflag:
		return flags(mailcore.FlagsRemove, mailcore.FlagFlagged)
	case ActMove:
		return moveTo(s.folder(ctx, u, target))
	case ActDelete:
		if mb.SpecialUse == mailcore.UseTrash {
			_, err := s.store.Expunge(ctx, mb.ID, uids)
			return err
		}
		return moveTo(s.special(ctx, u, mailcore.UseTrash))
	case ActArchive:
		return moveTo(s.special(ctx, u, mailcore.UseArchive))
	case ActJunk:
		dst, err := s.special(ctx, u, mailcore.UseJunk)
		return judge(dst, err, kwJunk, kwNotJunk)
	case ActNotJunk:
		dst, err := s.special(ctx, u, "")
		return judge(dst, err, kwNotJunk, kwJunk)
	}
	return invalid("unknown action %q", a)
}

// Settings returns the user's preferences, defaults filled in.
func (s *Service) Settings(ctx context.Context, u User) (Settings, error) {
	st := Settings{Language: Languages[0], PerPage: DefaultPerPage}
	var row struct {
		DisplayName string `db:"display_name"`
		Signature   string `db:"signature"`
		Language    string `db:"language"`
		PerPage     int    `db:"per_page"`
	}
	err := s.db.X.GetContext(ctx, &row, s.db.Rebind(`SELECT display_name, signature, language, per_page FROM webmail_settings WHERE account_id = ?`), u.AccountID)
	switch {
	case err == nil:
		st = Settings{DisplayName: row.DisplayName, Signature: row.Signature, Language: row.Language, PerPage: row.PerPage}
	case !errors.Is(err, sql.ErrNoRows):
		return Settings{}, fmt.Errorf("webmail: settings: %w", err)
	}
	if st.DisplayName == "" {
		st.DisplayName = u.DisplayName
		if st.DisplayName == "" {
			if a, err := s.store.Account(ctx, u.AccountID); err == nil {
				st.DisplayName = a.DisplayName
			}
		}
	}
	return st, nil
}

// Languages webmail speaks; the first is the default.
var Languages = []string{"zh-CN", "en"}

// SaveSettings validates and stores the user's preferences. A zero
// PerPage or empty Language means the default.
func (s *Service) SaveSettings(ctx context.Context, u User, st Settings) error {
	if u.AccountID <= 0 {
		return notFound("account", u.AccountID)
	}
	st.DisplayName = strings.TrimSpace(st.DisplayName)
	switch {
	case utf8.RuneCountInString(st.DisplayName) > 100 || hasControl(st.DisplayName, false):
		return invalid("display name")
	case len(st.Signature) > 10000 || hasControl(st.Signature, true):
		return invalid("signature")
	}
	if st.Language == "" {
		st.Language = Languages[0]
	}
	ok := false
	for _, l := range Languages {
		ok = ok || l == st.Language
	}
	if !ok {
		return invalid("language %q", st.Language)
	}
	if st.PerPage == 0 {
		st.PerPage = DefaultPerPage
	}
	if st.PerPage < 10 || st.PerPage > MaxPerPage {
		return invalid("per_page %d", st.PerPage)
	}
	_, err := s.db.X.ExecContext(ctx, s.db.Rebind(`INSERT INTO webmail_settings (account_id, display_name, signature, language, per_page, updated_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (account_id) DO UPDATE SET display_name = excluded.display_name,
		signature = excluded.signature, language = excluded.language, per_page = excluded.per_page, updated_at = excluded.updated_at`),
		u.AccountID, st.DisplayName, st.Signature, st.Language, st.PerPage, s.now().Unix())
	if err != nil {
		return fmt.Errorf("webmail: save settings: %w", err)
	}
	return nil
}

// hasControl reports control characters (line breaks and tabs allowed
// when multiline).
func hasControl(s string, multiline bool) bool {
	for _, r := range s {
		if multiline && (r == '\n' || r == '\r' || r == '\t') {
			continue
		}
		if unicode.IsControl(r) || r == utf8.RuneError {
			return true
		}
	}
	return false
}

// Suggest completes an address: the directory first, then people the user
// recently wrote to (Sent) or heard from (INBOX), without duplicates.
func (s *Service) Suggest(ctx context.Context, u User, q string, limit int) ([]Contact, error) {
	q = strings.TrimSpace(q)
	if limit <= 0 || limit > 50 {
		limit = 10
	}
	out := []Contact{}
	if q == "" || len(q) > 200 {
		return out, nil
	}
	seen := map[string]bool{}
	if s.cfg.Directory != nil {
		cs, err := s.cfg.Directory.Suggest(ctx, q, limit)
		if err != nil {
			// The directory being down must not break typing an address.
			s.log.WarnContext(ctx, "directory suggest failed", "err", err)
		}
		for _, c := range cs {
			if len(out) >= limit {
				break
			}
			k := strings.ToLower(c.Address)
			if k == "" || seen[k] {
				continue
			}
			seen[k] = true
			out = append(out, c)
		}
	}
	if len(out) >= limit {
		return out, nil
	}
	pat := likeContains(q)
	var rows []struct {
		Addrs string `db:"addrs"`
	}
	err := s.db.X.SelectContext(ctx, &rows, s.db.Rebind(`SELECT m.to_addr || ', ' || m.cc_addr AS addrs FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id
		WHERE b.account_id = ? AND b.special_use = ? AND LOWER(m.to_addr || ' ' || m.cc_addr) LIKE ? ESCAPE '\'
		ORDER BY m.internal_date DESC LIMIT 200`), u.AccountID, mailcore.UseSent, pat)
	if err != nil {
		return nil, fmt.Errorf("webmail: suggest: %w", err)
	}
	var from []struct {
		Addrs string `db:"addrs"`
	}
	err = s.db.X.SelectContext(ctx, &from, s.db.Rebind(`SELECT m.from_addr AS addrs FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id
		WHERE b.account_id = ? AND b.name = 'INBOX' AND LOWER(m.from_addr) LIKE ? ESCAPE '\'
		ORDER BY m.internal_date DESC LIMIT 200`), u.AccountID, pat)
	if err != nil {
		return nil, fmt.Errorf("webmail: suggest: %w", err)
	}
	rows = append(rows, from...)
	lq := strings.ToLower(q)
	self := strings.ToLower(u.Address)
	for _, r := range rows {
		for _, a := range mailcore.ParseAddresses(r.Addrs) {
			k := strings.ToLower(a.Addr)
			if k == "" || k == self || seen[k] || !strings.Contains(strings.ToLower(a.Name+" "+a.Addr), lq) {
				continue
			}
			seen[k] = true
			out = append(out, Contact{Name: a.Name, Address: a.Addr})
			if len(out) >= limit {
				return out, nil
			}
		}
	}
	return out, nil
}

// likeContains is a LIKE pattern (ESCAPE '\') matching s anywhere,
// lower-cased to compare with LOWER(column).
func likeContains(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.ToLower(s)) + "%"
}

// Badge counts INBOX's unread messages and lists the newest n of them (n
// at most 20).
func (s *Service) Badge(ctx context.Context, u User, n int) (Badge, error) {
	inbox, err := s.special(ctx, u, "")
	if err != nil {
		return Badge{}, err
	}
	b := Badge{Recent: []BadgeRecent{}}
	err = s.db.X.GetContext(ctx, &b.Unread, s.db.Rebind(`SELECT COUNT(*) FROM messages m WHERE m.mailbox_id = ? AND m.flags & 1 = 0`), inbox.ID)
	if err != nil {
		return Badge{}, fmt.Errorf("webmail: badge: %w", err)
	}
	if n < 0 || n > 20 {
		n = 5
	}
	if n == 0 || b.Unread == 0 {
		return b, nil
	}
	var rows []summaryRow
	err = s.db.X.SelectContext(ctx, &rows, s.db.Rebind(`SELECT `+summaryCols+` FROM messages m
		WHERE m.mailbox_id = ? AND m.flags & 1 = 0 ORDER BY m.internal_date DESC, m.id DESC LIMIT ?`), inbox.ID, n)
	if err != nil {
		return Badge{}, fmt.Errorf("webmail: badge: %w", err)
	}
	for _, r := range rows {
		sm := r.summary()
		b.Recent = append(b.Recent, BadgeRecent{FolderID: sm.FolderID, UID: sm.UID, From: sm.From, Subject: sm.Subject, Date: sm.Date})
	}
	return b, nil
}
