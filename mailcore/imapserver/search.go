package imapserver

import (
	"context"
	"errors"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/emersion/go-imap"
	"github.com/emersion/go-imap/responses"
	imapsrv "github.com/emersion/go-imap/server"
	"github.com/govhub/govhub/mailcore"
	"golang.org/x/text/encoding/htmlindex"
)

// search is SEARCH (RFC 9051 6.4.4) as one SQL query over the rows:
// headers with case-insensitive LIKE on the parsed columns (UTF-8, so
// Chinese terms match as substrings), flags on the flag bits and keywords
// column, dates on internal_date and sent_date, sizes, sequence and UID
// sets, NOT and OR. TEXT and BODY go to the TextSearcher's index, never a
// scan of bodies. Only messages the session has been told of are returned.
func search(ctx context.Context, sess *session, sel *selection, c *imap.SearchCriteria) ([]uint32, error) {
	b := &sqlBuilder{ctx: ctx, sess: sess, sel: sel}
	where, err := b.crit(c)
	if err != nil {
		return nil, err
	}
	db := sess.s.store.DB()
	args := append([]any{sel.box.mb.ID}, b.args...)
	var uids []uint32
	if err := db.X.SelectContext(ctx, &uids, db.Rebind(`SELECT uid FROM messages WHERE mailbox_id = ? AND `+where+` ORDER BY uid`), args...); err != nil {
		return nil, sess.protoErr("search", err)
	}
	out := uids[:0]
	for _, u := range uids {
		if sel.seqOf(u) != 0 {
			out = append(out, u)
		}
	}
	return out, nil
}

type sqlBuilder struct {
	ctx  context.Context
	sess *session
	sel  *selection
	args []any
}

// headerColumns maps header names to the row columns holding them. Other
// headers are not kept in rows and match nothing (documented in doc.go).
var headerColumns = map[string]string{
	"From": "from_addr", "To": "to_addr", "Cc": "cc_addr", "Subject": "subject",
	"Message-Id": "message_id", "In-Reply-To": "in_reply_to", "Reply-To": "reply_to",
}

func likeTerm(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.ToLower(s)) + "%"
}

func (b *sqlBuilder) like(col, term string) string {
	b.args = append(b.args, likeTerm(term))
	return "LOWER(COALESCE(" + col + ", '')) LIKE ? ESCAPE '\\'"
}

func (b *sqlBuilder) crit(c *imap.SearchCriteria) (string, error) {
	var parts []string
	if c.SeqNum != nil {
		parts = append(parts, uidIn(b.sel.resolve(false, c.SeqNum)))
	}
	if c.Uid != nil {
		parts = append(parts, uidIn(b.sel.resolve(true, c.Uid)))
	}
	dates := []struct {
		col, op string
		t       int64
		set     bool
	}{
		{"internal_date", ">=", c.Since.Unix(), !c.Since.IsZero()},
		{"internal_date", "<", c.Before.Unix(), !c.Before.IsZero()},
		{"sent_date", ">=", c.SentSince.Unix(), !c.SentSince.IsZero()},
		{"sent_date", "<", c.SentBefore.Unix(), !c.SentBefore.IsZero()},
	}
	for _, d := range dates {
		if d.set {
			parts = append(parts, d.col+" "+d.op+" ?")
			b.args = append(b.args, d.t)
		}
	}
	for key, vals := range c.Header {
		col, ok := headerColumns[key]
		for _, v := range vals {
			switch {
			case !ok:
				parts = append(parts, "1=0")
			case v == "":
				parts = append(parts, "COALESCE("+col+", '') <> ''")
			default:
				parts = append(parts, b.like(col, v))
			}
		}
	}
	for _, field := range []struct {
		name  string
		terms []string
	}{{"BODY", c.Body}, {"TEXT", c.Text}} {
		for _, term := range field.terms {
			if b.sess.s.cfg.Search == nil {
				return "", no("CANNOT", "Full-text search is not available")
			}
			uids, err := b.sess.s.cfg.Search.MatchUIDs(b.ctx, b.sel.box.mb.ID, field.name, term)
			if err != nil {
				return "", b.sess.protoErr("text search", err)
			}
			expr := uidIn(uids)
			if field.name == "TEXT" {
				// TEXT covers the header too (RFC 9051 6.4.4); the row's
				// header columns answer that part.
				expr = "(" + expr + " OR " + b.like("subject", term) + " OR " + b.like("from_addr", term) +
					" OR " + b.like("to_addr", term) + " OR " + b.like("cc_addr", term) + ")"
			}
			parts = append(parts, expr)
		}
	}
	for _, f := range c.WithFlags {
		parts = append(parts, b.flag(f, true))
	}
	for _, f := range c.WithoutFlags {
		parts = append(parts, b.flag(f, false))
	}
	if c.Larger > 0 {
		parts = append(parts, "size > ?")
		b.args = append(b.args, int64(c.Larger))
	}
	if c.Smaller > 0 {
		parts = append(parts, "size < ?")
		b.args = append(b.args, int64(c.Smaller))
	}
	for _, n := range c.Not {
		s, err := b.crit(n)
		if err != nil {
			return "", err
		}
		parts = append(parts, "NOT ("+s+")")
	}
	for _, o := range c.Or {
		l, err := b.crit(o[0])
		if err != nil {
			return "", err
		}
		r, err := b.crit(o[1])
		if err != nil {
			return "", err
		}
		parts = append(parts, "(("+l+") OR ("+r+"))")
	}
	if len(parts) == 0 {
		return "1=1", nil
	}
	return "(" + strings.Join(parts, " AND ") + ")", nil
}

// flag is one flag criterion. \Recent is never set in this server (no
// session "owns" new mail), so it matches nothing and its negation all.
func (b *sqlBuilder) flag(name string, set bool) string {
	if strings.EqualFold(name, imap.RecentFlag) {
		if set {
			return "1=0"
		}
		return "1=1"
	}
	if bit, ok := mailcore.ParseFlag(name); ok {
		if set {
			return "flags & " + strconv.Itoa(int(bit)) + " <> 0"
		}
		return "flags & " + strconv.Itoa(int(bit)) + " = 0"
	}
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	b.args = append(b.args, "% "+r.Replace(strings.ToLower(name))+" %")
	expr := "LOWER(' ' || COALESCE(keywords, '') || ' ') LIKE ? ESCAPE '\\'"
	if set {
		return expr
	}
	return "NOT (" + expr + ")"
}

// uidIn renders a UID set as ranges and lists of integer literals (UIDs are
// numbers, so inlining them is safe and avoids parameter limits).
func uidIn(uids []uint32) string {
	if len(uids) == 0 {
		return "1=0"
	}
	sorted := append([]uint32(nil), uids...)
	sortUIDs(sorted)
	sorted = dedupe(sorted)
	var ors []string
	var singles []string
	for i := 0; i < len(sorted); {
		j := i + 1
		for j < len(sorted) && sorted[j] == sorted[j-1]+1 {
			j++
		}
		if j-i >= 3 {
			ors = append(ors, "uid BETWEEN "+strconv.FormatUint(uint64(sorted[i]), 10)+" AND "+strconv.FormatUint(uint64(sorted[j-1]), 10))
		} else {
			for _, u := range sorted[i:j] {
				singles = append(singles, strconv.FormatUint(uint64(u), 10))
			}
		}
		i = j
	}
	for len(singles) > 0 {
		n := min(len(singles), 1000)
		ors = append(ors, "uid IN ("+strings.Join(singles[:n], ",")+")")
		singles = singles[n:]
	}
	return "(" + strings.Join(ors, " OR ") + ")"
}

func sortUIDs(u []uint32) {
	sort.Slice(u, func(i, j int) bool { return u[i] < u[j] })
}

// searchCmd is SEARCH and UID SEARCH with CHARSET handled here: go-imap
// v1.2.1 calls its global imap.CharsetReader, nil unless set, so any
// charset but UTF-8 would panic the session (Chinese clients send GB2312).
// Charsets are WHATWG labels (htmlindex: GB2312 decodes as GBK, its
// superset, as clients mean it); an unknown one is NO [BADCHARSET] (RFC
// 9051 6.4.4).
type searchCmd struct {
	criteria   *imap.SearchCriteria
	badCharset bool
}

func (h *searchCmd) Parse(fields []interface{}) error {
	if len(fields) == 0 {
		return errors.New("Missing search criteria")
	}
	var decode func([]byte) ([]byte, error)
	if f, ok := fields[0].(string); ok && strings.EqualFold(f, "CHARSET") {
		if len(fields) < 2 {
			return errors.New("Missing CHARSET value")
		}
		cs, ok := fields[1].(string)
		if !ok {
			return errors.New("Charset must be a string")
		}
		fields = fields[2:]
		switch strings.ToLower(cs) {
		case "utf-8", "us-ascii":
		default:
			enc, err := htmlindex.Get(cs)
			if err != nil {
				h.badCharset = true
				return nil
			}
			decode = enc.NewDecoder().Bytes
		}
	}
	if decode != nil {
		// go-imap's own decoding reads only as many decoded bytes as the
		// literal had encoded ones, truncating GBK's 2-byte characters
		// (3 in UTF-8); decode literals to strings first.
		var err error
		if fields, err = decodeLiterals(fields, decode); err != nil {
			h.badCharset = true
			return nil
		}
	}
	h.criteria = new(imap.SearchCriteria)
	return h.criteria.ParseWithCharset(fields, nil)
}

func decodeLiterals(fields []interface{}, decode func([]byte) ([]byte, error)) ([]interface{}, error) {
	out := make([]interface{}, len(fields))
	for i, f := range fields {
		switch v := f.(type) {
		case imap.Literal:
			raw, err := io.ReadAll(v)
			if err != nil {
				return nil, err
			}
			dec, err := decode(raw)
			if err != nil {
				return nil, err
			}
			out[i] = string(dec)
		case []interface{}:
			sub, err := decodeLiterals(v, decode)
			if err != nil {
				return nil, err
			}
			out[i] = sub
		default:
			out[i] = f
		}
	}
	return out, nil
}

func (h *searchCmd) Handle(c imapsrv.Conn) error    { return h.run(c, false) }
func (h *searchCmd) UidHandle(c imapsrv.Conn) error { return h.run(c, true) }

func (h *searchCmd) run(c imapsrv.Conn, uid bool) error {
	if h.badCharset {
		return no("BADCHARSET", "Unsupported charset")
	}
	box, ok := c.Context().Mailbox.(*mailbox)
	if !ok || box == nil {
		return no("", "No mailbox selected")
	}
	ids, err := box.SearchMessages(uid, h.criteria)
	if err != nil {
		return err
	}
	return c.WriteResp(&responses.Search{Ids: ids})
}
