package webmail

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/govhub/govhub/mailcore"
)

// summaryCols are the message-row columns a list shows: never the body,
// never the blobs table.
const summaryCols = `m.mailbox_id, m.uid, m.flags, m.internal_date, m.sent_date, m.size, m.from_addr, m.to_addr, m.subject, m.preview, m.thread_id`

type summaryRow struct {
	MailboxID    int64          `db:"mailbox_id"`
	UID          uint32         `db:"uid"`
	Flags        mailcore.Flags `db:"flags"`
	InternalDate int64          `db:"internal_date"`
	SentDate     int64          `db:"sent_date"`
	Size         int64          `db:"size"`
	From         string         `db:"from_addr"`
	To           string         `db:"to_addr"`
	Subject      string         `db:"subject"`
	Preview      string         `db:"preview"`
	ThreadID     int64          `db:"thread_id"`
	N            int            `db:"n"`
}

// summary turns a row into a list entry. Date is the arrival time (the
// order lists sort by), so a forged Date: header cannot pin spam on top.
func (r summaryRow) summary() Summary {
	return Summary{
		FolderID:      r.MailboxID,
		UID:           r.UID,
		From:          r.From,
		To:            r.To,
		Subject:       r.Subject,
		Preview:       r.Preview,
		Date:          time.Unix(r.InternalDate, 0).UTC(),
		Size:          r.Size,
		Seen:          r.Flags&mailcore.FlagSeen != 0,
		Flagged:       r.Flags&mailcore.FlagFlagged != 0,
		Answered:      r.Flags&mailcore.FlagAnswered != 0,
		HasAttachment: r.Flags&mailcore.FlagHasAttachment != 0,
		ThreadID:      r.ThreadID,
		ThreadCount:   r.N,
	}
}

// orderBy maps a Sort to its ORDER BY; every order ends on a unique key
// (uid, or the row id for the date orders) so pages never overlap. Sender and subject compare lower-cased, ties newest
// first.
func orderBy(s Sort) (string, error) {
	switch s {
	case "", SortDateDesc:
		// m.id breaks ties like uid does (both grow with every row added
		// to a mailbox) and is in the date index implicitly, so the index
		// needs no uid column (which every delivered row would pay for).
		return `m.internal_date DESC, m.id DESC`, nil
	case SortDateAsc:
		return `m.internal_date ASC, m.id ASC`, nil
	case SortFrom:
		return `LOWER(m.from_addr) ASC, m.internal_date DESC, m.uid DESC`, nil
	case SortSubject:
		return `LOWER(m.subject) ASC, m.internal_date DESC, m.uid DESC`, nil
	case SortSize:
		return `m.size DESC, m.uid DESC`, nil
	}
	return "", invalid("unknown sort %q", s)
}

// pageOf normalises page and per-page numbers.
func pageOf(page, perPage int) (int, int) {
	if perPage <= 0 {
		perPage = DefaultPerPage
	}
	perPage = min(perPage, MaxPerPage)
	page = min(max(page, 1), maxPage)
	return page, perPage
}

// List returns one page of a folder, sorted and paged by the database in
// two steps: the page's uids first, from as few columns as the order needs
// (the default order, and unread-only lists, read them from an index of
// migration 00008 alone; other orders sort the folder's rows without
// carrying whole rows), then those rows. With Threads, a row is a thread's newest
// message (highest uid) and ThreadCount counts the thread's messages in
// the folder.
func (s *Service) List(ctx context.Context, u User, q ListQuery) (ListPage, error) {
	mb, err := s.folder(ctx, u, q.FolderID)
	if err != nil {
		return ListPage{}, err
	}
	order, err := orderBy(q.Sort)
	if err != nil {
		return ListPage{}, err
	}
	page, per := pageOf(q.Page, q.PerPage)
	cond := `m.mailbox_id = ?`
	if q.Unread {
		cond += ` AND m.flags & 1 = 0`
	}
	out := ListPage{Items: []Summary{}, Page: page, PerPage: per}
	var keys []struct {
		UID uint32 `db:"uid"`
		N   int    `db:"n"`
	}
	if q.Threads {
		err = s.db.X.GetContext(ctx, &out.Total, s.db.Rebind(`SELECT COUNT(DISTINCT m.thread_id) FROM messages m WHERE `+cond), mb.ID)
		switch {
		case err != nil || out.Total == 0:
		case q.Sort == "" || q.Sort == SortDateDesc || q.Sort == SortDateAsc:
			// Grouping alone gives the order: no join before the page.
			dir := ` DESC`
			if q.Sort == SortDateAsc {
				dir = ` ASC`
			}
			err = s.db.X.SelectContext(ctx, &keys, s.db.Rebind(`SELECT MAX(m.uid) AS uid, COUNT(*) AS n FROM messages m WHERE `+cond+`
				GROUP BY m.thread_id ORDER BY MAX(m.internal_date)`+dir+`, MAX(m.uid)`+dir+` LIMIT ? OFFSET ?`), mb.ID, per, (page-1)*per)
		default:
			err = s.db.X.SelectContext(ctx, &keys, s.db.Rebind(`SELECT m.uid, t.n FROM
				(SELECT MAX(m.uid) AS uid, COUNT(*) AS n FROM messages m WHERE `+cond+` GROUP BY m.thread_id) t
				JOIN messages m ON m.mailbox_id = ? AND m.uid = t.uid
				ORDER BY `+order+` LIMIT ? OFFSET ?`), mb.ID, mb.ID, per, (page-1)*per)
		}
	} else {
		err = s.db.X.GetContext(ctx, &out.Total, s.db.Rebind(`SELECT COUNT(*) FROM messages m WHERE `+cond), mb.ID)
		if err == nil && out.Total > 0 {
			err = s.db.X.SelectContext(ctx, &keys, s.db.Rebind(`SELECT m.uid FROM messages m
				WHERE `+cond+` ORDER BY `+order+` LIMIT ? OFFSET ?`), mb.ID, per, (page-1)*per)
		}
	}
	if err != nil {
		return ListPage{}, fmt.Errorf("webmail: list: %w", err)
	}
	if len(keys) == 0 {
		return out, nil
	}
	uids := make([]any, 0, len(keys)+1)
	uids = append(uids, mb.ID)
	for _, k := range keys {
		uids = append(uids, k.UID)
	}
	var rows []summaryRow
	err = s.db.X.SelectContext(ctx, &rows, s.db.Rebind(`SELECT `+summaryCols+` FROM messages m
		WHERE m.mailbox_id = ? AND m.uid IN (?`+strings.Repeat(`, ?`, len(keys)-1)+`)`), uids...)
	if err != nil {
		return ListPage{}, fmt.Errorf("webmail: list: %w", err)
	}
	byUID := make(map[uint32]summaryRow, len(rows))
	for _, r := range rows {
		byUID[r.UID] = r
	}
	for _, k := range keys {
		r, ok := byUID[k.UID]
		if !ok {
			continue // expunged between the two reads
		}
		r.N = k.N
		out.Items = append(out.Items, r.summary())
	}
	return out, nil
}

// Search finds the user's messages matching every set field of q, newest
// first. Header fields match case-insensitively as substrings; Text goes to
// the full-text index (Chinese included) when there is one, else it
// matches subject and preview. Since is inclusive, Before exclusive, both
// on the arrival time.
func (s *Service) Search(ctx context.Context, u User, q SearchQuery) (ListPage, error) {
	if u.AccountID <= 0 {
		return ListPage{}, notFound("account", u.AccountID)
	}
	page, per := pageOf(q.Page, q.PerPage)
	out := ListPage{Items: []Summary{}, Page: page, PerPage: per}
	where := []string{`b.account_id = ?`}
	args := []any{u.AccountID}
	if q.FolderID != 0 {
		mb, err := s.folder(ctx, u, q.FolderID)
		if err != nil {
			return ListPage{}, err
		}
		where = append(where, `m.mailbox_id = ?`)
		args = append(args, mb.ID)
	}
	like := func(expr, v string) {
		if v = strings.TrimSpace(v); v != "" {
			where = append(where, `LOWER(`+expr+`) LIKE ? ESCAPE '\'`)
			args = append(args, likeContains(v))
		}
	}
	like(`m.from_addr`, q.From)
	like(`m.to_addr || ' ' || m.cc_addr`, q.To)
	like(`m.subject`, q.Subject)
	if !q.Since.IsZero() {
		where = append(where, `m.internal_date >= ?`)
		args = append(args, q.Since.Unix())
	}
	if !q.Before.IsZero() {
		where = append(where, `m.internal_date < ?`)
		args = append(args, q.Before.Unix())
	}
	if q.HasAttachment {
		where = append(where, fmt.Sprintf(`m.flags & %d <> 0`, mailcore.FlagHasAttachment))
	}
	if text := strings.TrimSpace(q.Text); text != "" {
		if s.cfg.FullText == nil {
			where = append(where, `(LOWER(m.subject) LIKE ? ESCAPE '\' OR LOWER(m.preview) LIKE ? ESCAPE '\')`)
			args = append(args, likeContains(text), likeContains(text))
		} else {
			hits, err := s.cfg.FullText.Search(ctx, u.AccountID, text, maxSearchHits)
			if err != nil {
				return ListPage{}, fmt.Errorf("webmail: full-text search: %w", err)
			}
			if len(hits) == 0 {
				return out, nil
			}
			byBox := map[int64][]uint32{}
			for _, h := range hits {
				byBox[h.MailboxID] = append(byBox[h.MailboxID], h.UID)
			}
			boxes := make([]int64, 0, len(byBox))
			for b := range byBox {
				boxes = append(boxes, b)
			}
			sort.Slice(boxes, func(i, j int) bool { return boxes[i] < boxes[j] })
			var ors []string
			for _, b := range boxes {
				uids := byBox[b]
				ors = append(ors, `(m.mailbox_id = ? AND m.uid IN (?`+strings.Repeat(`, ?`, len(uids)-1)+`))`)
				args = append(args, b)
				for _, uid := range uids {
					args = append(args, uid)
				}
			}
			where = append(where, `(`+strings.Join(ors, ` OR `)+`)`)
		}
	}
	from := ` FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id WHERE ` + strings.Join(where, ` AND `)
	if err := s.db.X.GetContext(ctx, &out.Total, s.db.Rebind(`SELECT COUNT(*)`+from), args...); err != nil {
		return ListPage{}, fmt.Errorf("webmail: search: %w", err)
	}
	if out.Total == 0 {
		return out, nil
	}
	var rows []summaryRow
	err := s.db.X.SelectContext(ctx, &rows, s.db.Rebind(`SELECT `+summaryCols+from+
		` ORDER BY m.internal_date DESC, m.mailbox_id, m.uid DESC LIMIT ? OFFSET ?`), append(args, per, (page-1)*per)...)
	if err != nil {
		return ListPage{}, fmt.Errorf("webmail: search: %w", err)
	}
	for _, r := range rows {
		out.Items = append(out.Items, r.summary())
	}
	return out, nil
}
