package search

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/govhub/govhub/internal/sqldb"
)

// Fields MatchUIDs answers (RFC 3501 6.4.4 SEARCH keys).
const (
	// FieldText: the header (here: subject, names and addresses of From,
	// Sender, Reply-To, To, Cc) or the body.
	FieldText = "TEXT"
	// FieldBody: the body only (decoded text parts, no attachments).
	FieldBody = "BODY"
)

// ErrField is returned for a field other than TEXT or BODY.
var ErrField = errors.New("search: field must be TEXT or BODY")

// MatchUIDs returns, sorted, the UIDs of the messages in mailbox whose body
// (field BODY) or header and body (field TEXT, case-insensitive name)
// contain every token of term (see QueryTokens). It first indexes bodies
// delivered since the last pass, so a SEARCH right after a delivery sees
// it. An empty term matches every message (RFC 3501: the empty string is a
// substring of everything); a term with no letters, digits or CJK
// characters matches none, since punctuation is not indexed.
func (ix *Index) MatchUIDs(ctx context.Context, mailboxID int64, field, term string) ([]uint32, error) {
	body, err := bodyOnly(field)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(term) == "" {
		var uids []uint32
		err := ix.db.X.SelectContext(ctx, &uids, ix.db.Rebind(`SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid`), mailboxID)
		return uids, err
	}
	toks := QueryTokens(term)
	if len(toks) == 0 {
		return nil, nil
	}
	if err := ix.catchUpNew(ctx); err != nil {
		return nil, err
	}
	sub, arg := ix.matchSubquery(toks, body)
	// The mailbox's rows come from messages_uid (mailbox_id, uid), already
	// in uid order; the index answers which bodies match.
	q := ix.db.Rebind(`SELECT m.uid FROM messages m WHERE m.mailbox_id = ? AND m.blob_id IN (` + sub + `) ORDER BY m.uid`)
	var uids []uint32
	if err := ix.db.X.SelectContext(ctx, &uids, q, mailboxID, arg); err != nil {
		return nil, fmt.Errorf("search: match: %w", err)
	}
	return uids, nil
}

// Hit is one message found by Search.
type Hit struct {
	MailboxID int64  `db:"mailbox_id" json:"mailbox_id"`
	UID       uint32 `db:"uid" json:"uid"`
}

// Search returns up to limit messages of the account, in every mailbox,
// whose header or body contain every token of query, newest first. It is
// for webmail's search box; IMAP uses MatchUIDs.
func (ix *Index) Search(ctx context.Context, accountID int64, query string, limit int) ([]Hit, error) {
	toks := QueryTokens(query)
	if len(toks) == 0 || limit <= 0 {
		return nil, nil
	}
	if err := ix.catchUpNew(ctx); err != nil {
		return nil, err
	}
	sub, arg := ix.matchSubquery(toks, false)
	q := ix.db.Rebind(`SELECT m.mailbox_id, m.uid FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id
		WHERE b.account_id = ? AND m.blob_id IN (` + sub + `)
		ORDER BY m.internal_date DESC, m.id DESC LIMIT ?`)
	var hits []Hit
	if err := ix.db.X.SelectContext(ctx, &hits, q, accountID, arg, limit); err != nil {
		return nil, fmt.Errorf("search: search: %w", err)
	}
	return hits, nil
}

func bodyOnly(field string) (bool, error) {
	switch strings.ToUpper(field) {
	case FieldText:
		return false, nil
	case FieldBody:
		return true, nil
	}
	return false, ErrField
}

// matchSubquery returns a subquery with one ? selecting the blob row ids
// whose index entry holds every token, and the argument for it. This is the
// only place the two engines' query languages differ.
func (ix *Index) matchSubquery(toks []QueryToken, bodyOnly bool) (string, string) {
	var b strings.Builder
	if ix.db.Dialect == sqldb.Postgres {
		// tsquery with quoted lexemes: taken as written, no parser or
		// dictionary, exactly like array_to_tsvector on the index side.
		// Tokens hold only letters, digits and CJK characters, so they need
		// no escaping. Header tokens are stored with a '#' prefix.
		for i, t := range toks {
			if i > 0 {
				b.WriteString(" & ")
			}
			suffix := ""
			if t.Prefix {
				suffix = ":*"
			}
			if bodyOnly {
				fmt.Fprintf(&b, "'%s'%s", t.Text, suffix)
			} else {
				fmt.Fprintf(&b, "('%s'%s | '#%s'%s)", t.Text, suffix, t.Text, suffix)
			}
		}
		return `SELECT blob_id FROM search_tsv WHERE tsv @@ ?::tsquery`, b.String()
	}
	// FTS5: each token a quoted string (the ascii tokenizer keeps it one
	// token), all required; BODY restricts every one to the body column.
	for i, t := range toks {
		if i > 0 {
			b.WriteString(" AND ")
		}
		if bodyOnly {
			b.WriteString("body : ")
		}
		b.WriteByte('"')
		b.WriteString(t.Text)
		b.WriteByte('"')
		if t.Prefix {
			b.WriteByte('*')
		}
	}
	return `SELECT rowid FROM search_fts WHERE search_fts MATCH ?`, b.String()
}
