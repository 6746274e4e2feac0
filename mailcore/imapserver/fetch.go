package imapserver

import (
	"bufio"
	"bytes"
	"context"
	"mime"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/emersion/go-imap"
	"github.com/emersion/go-imap/backend/backendutil"
	"github.com/emersion/go-imap/commands"
	"github.com/emersion/go-imap/responses"
	imapsrv "github.com/emersion/go-imap/server"
	"github.com/emersion/go-message/textproto"
	"github.com/govhub/govhub/mailcore"
)

// ListMessages is FETCH (RFC 9051 6.4.5). FLAGS, INTERNALDATE,
// RFC822.SIZE, UID and ENVELOPE come from the SQL row; BODYSTRUCTURE and
// body sections read the blob; a partial of the whole message
// (BODY[]<n.m>) reads only its range through BlobStore.Open. A non-PEEK
// body section sets \Seen (RFC 9051 6.4.5) unless the mailbox is
// read-only, and FLAGS is then returned too.
func (m *mailbox) ListMessages(uid bool, set *imap.SeqSet, items []imap.FetchItem, ch chan<- *imap.Message) error {
	defer close(ch)
	sel, err := m.selection()
	if err != nil {
		return err
	}
	sess := m.u.sess
	uids := sel.resolve(uid, set)
	if len(uids) == 0 {
		return nil
	}
	var sections []*imap.BodySectionName
	needBody, setSeen, hasFlags := false, false, false
	for _, it := range items {
		switch it {
		case imap.FetchEnvelope, imap.FetchInternalDate, imap.FetchRFC822Size, imap.FetchUid:
		case imap.FetchFlags:
			hasFlags = true
		case imap.FetchBody, imap.FetchBodyStructure:
			needBody = true
		default:
			sec, err := imap.ParseBodySectionName(it)
			if err != nil {
				return bad("Invalid fetch item")
			}
			for _, p := range sec.Partial {
				if p < 0 {
					return bad("Invalid partial")
				}
			}
			sections = append(sections, sec)
			if !sec.Peek {
				setSeen = true
			}
		}
	}
	ctx, cancel := m.u.ctx()
	defer cancel()
	if setSeen && !sel.readOnly {
		if _, err := sess.s.store.StoreFlags(ctx, m.mb.ID, uids, mailcore.FlagsAdd, mailcore.FlagSeen); err != nil {
			return sess.protoErr("fetch", err)
		}
		if !hasFlags {
			items = append(items, imap.FetchFlags)
		}
	}
	// Read rows in slices so a 1:* FETCH of a large mailbox streams.
	for start := 0; start < len(uids); start += 5000 {
		part := uids[start:min(start+5000, len(uids))]
		rows, err := loadRows(ctx, sess.s.store, m.mb.ID, part)
		if err != nil {
			return sess.protoErr("fetch", err)
		}
		for i := range rows {
			r := &rows[i]
			seq := sel.seqOf(r.UID)
			if seq == 0 {
				continue
			}
			msg, err := m.fetchOne(ctx, seq, r, items, sections, needBody)
			if err != nil {
				return err
			}
			ch <- msg
		}
	}
	return nil
}

func (m *mailbox) fetchOne(ctx context.Context, seq uint32, r *row, items []imap.FetchItem, sections []*imap.BodySectionName, needBody bool) (*imap.Message, error) {
	sess := m.u.sess
	msg := imap.NewMessage(seq, items)
	for _, it := range items {
		switch it {
		case imap.FetchEnvelope:
			msg.Envelope = envelopeOf(r)
		case imap.FetchFlags:
			msg.Flags = flagNames(r)
		case imap.FetchInternalDate:
			msg.InternalDate = time.Unix(r.InternalDate, 0)
		case imap.FetchRFC822Size:
			msg.Size = uint32(r.Size)
		case imap.FetchUid:
			msg.Uid = r.UID
		}
	}
	var raw []byte
	load := func() error {
		if raw != nil {
			return nil
		}
		b, err := sess.s.store.Blobs().Get(ctx, r.blobID())
		if err != nil {
			return sess.protoErr("fetch body", err)
		}
		raw = b
		return nil
	}
	if needBody {
		if err := load(); err != nil {
			return nil, err
		}
		br := bufio.NewReader(bytes.NewReader(raw))
		hdr, err := textproto.ReadHeader(br)
		if err == nil {
			for _, it := range items {
				if it == imap.FetchBody || it == imap.FetchBodyStructure {
					bs, err := backendutil.FetchBodyStructure(hdr, br, it == imap.FetchBodyStructure)
					if err == nil {
						msg.BodyStructure = bs
					}
					break
				}
			}
		}
		if msg.BodyStructure == nil {
			// Unparseable MIME: describe it as one text/plain part.
			msg.BodyStructure = &imap.BodyStructure{MIMEType: "text", MIMESubType: "plain", Size: uint32(len(raw)), Extended: true}
		}
	}
	for _, sec := range sections {
		if sec.Specifier == imap.EntireSpecifier && len(sec.Path) == 0 && len(sec.Partial) == 2 && raw == nil {
			lit, err := m.readPartial(ctx, r, sec.Partial[0], sec.Partial[1])
			if err != nil {
				return nil, err
			}
			msg.Body[sec] = lit
			continue
		}
		if err := load(); err != nil {
			return nil, err
		}
		br := bufio.NewReader(bytes.NewReader(raw))
		hdr, err := textproto.ReadHeader(br)
		if err != nil {
			msg.Body[sec] = bytes.NewReader(nil)
			continue
		}
		lit, err := backendutil.FetchBodySection(hdr, br, sec)
		if err != nil {
			// RFC 9051 6.4.5: a section that does not exist is empty.
			lit = bytes.NewReader(nil)
		}
		msg.Body[sec] = lit
	}
	return msg, nil
}

// readPartial reads bytes [from, from+n) of the message through the blob
// store's random access reader, without loading the whole body.
func (m *mailbox) readPartial(ctx context.Context, r *row, from, n int) (imap.Literal, error) {
	sess := m.u.sess
	br, err := sess.s.store.Blobs().Open(ctx, r.blobID())
	if err != nil {
		return nil, sess.protoErr("fetch partial", err)
	}
	defer br.Close()
	size := br.Size()
	if int64(from) >= size {
		return bytes.NewReader(nil), nil
	}
	end := min(int64(from)+int64(n), size)
	buf := make([]byte, end-int64(from))
	if _, err := br.ReadAt(buf, int64(from)); err != nil {
		return nil, sess.protoErr("fetch partial", err)
	}
	return bytes.NewReader(buf), nil
}

func flagNames(r *row) []string {
	out := r.Flags.Names()
	if out == nil {
		out = []string{}
	}
	return append(out, r.keywords()...)
}

// envelopeOf builds ENVELOPE (RFC 9051 7.5.2) from the row's parsed
// header columns, with no body read. Sender is From (the row keeps no
// Sender), Reply-To defaults to From as RFC 9051 requires, and Bcc is never
// kept on a delivered copy.
func envelopeOf(r *row) *imap.Envelope {
	e := &imap.Envelope{
		Subject:   r.Subject,
		From:      addrList(r.From),
		To:        addrList(r.To),
		Cc:        addrList(r.Cc),
		InReplyTo: r.InReplyTo,
		MessageId: r.MessageID,
	}
	if r.SentDate != 0 {
		e.Date = time.Unix(r.SentDate, 0)
	}
	e.Sender = e.From
	if r.ReplyTo != nil && *r.ReplyTo != "" {
		e.ReplyTo = addrList(*r.ReplyTo)
	} else {
		e.ReplyTo = e.From
	}
	return e
}

func addrList(s string) []*imap.Address {
	if s == "" {
		return nil
	}
	as := mailcore.ParseAddresses(s)
	out := make([]*imap.Address, 0, len(as))
	for _, a := range as {
		local, domain := a.Addr, ""
		if i := strings.LastIndexByte(a.Addr, '@'); i >= 0 {
			local, domain = a.Addr[:i], a.Addr[i+1:]
		}
		out = append(out, &imap.Address{PersonalName: a.Name, MailboxName: local, HostName: domain})
	}
	return out
}

// fastItems reports whether every item is answered from the row, so the
// response can be encoded here without go-imap's generic writer (which
// costs a goroutine hand-off and reflection-free but allocation-heavy
// formatting per message; UID FETCH 1:* of a large mailbox is the common
// client resync).
func fastItems(items []imap.FetchItem) bool {
	for _, it := range items {
		switch it {
		case imap.FetchFlags, imap.FetchInternalDate, imap.FetchRFC822Size, imap.FetchUid, imap.FetchEnvelope:
		default:
			return false
		}
	}
	return true
}

// appendFetch encodes "* seq FETCH (...)\r\n" exactly as go-imap's writer
// would (a test compares them): quoted strings for printable ASCII,
// literals otherwise (RFC 9051 4.3), envelope names and subjects in RFC
// 2047 Q encoding as go-imap does.
func appendFetch(b []byte, seq uint32, r *row, items []imap.FetchItem) []byte {
	b = append(b, "* "...)
	b = strconv.AppendUint(b, uint64(seq), 10)
	b = append(b, " FETCH ("...)
	for i, it := range items {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, it...)
		b = append(b, ' ')
		switch it {
		case imap.FetchFlags:
			b = append(b, '(')
			for j, f := range flagNames(r) {
				if j > 0 {
					b = append(b, ' ')
				}
				b = append(b, f...)
			}
			b = append(b, ')')
		case imap.FetchInternalDate:
			b = appendQuoted(b, time.Unix(r.InternalDate, 0).Format(imap.DateTimeLayout))
		case imap.FetchRFC822Size:
			b = strconv.AppendUint(b, uint64(uint32(r.Size)), 10)
		case imap.FetchUid:
			b = strconv.AppendUint(b, uint64(r.UID), 10)
		case imap.FetchEnvelope:
			b = appendEnvelope(b, envelopeOf(r))
		}
	}
	return append(b, ")\r\n"...)
}

func appendEnvelope(b []byte, e *imap.Envelope) []byte {
	b = append(b, '(')
	if e.Date.IsZero() {
		b = append(b, "NIL"...)
	} else {
		b = appendQuoted(b, e.Date.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	}
	b = append(b, ' ')
	b = appendNString(b, qEncode(e.Subject))
	for _, l := range [][]*imap.Address{e.From, e.Sender, e.ReplyTo, e.To, e.Cc, e.Bcc} {
		b = append(b, ' ')
		if len(l) == 0 {
			b = append(b, "NIL"...)
			continue
		}
		b = append(b, '(')
		for _, a := range l {
			b = append(b, '(')
			b = appendNString(b, qEncode(a.PersonalName))
			b = append(b, ' ')
			b = appendNString(b, a.AtDomainList)
			b = append(b, ' ')
			b = appendNString(b, a.MailboxName)
			b = append(b, ' ')
			b = appendNString(b, a.HostName)
			b = append(b, ')')
		}
		b = append(b, ')')
	}
	b = append(b, ' ')
	b = appendNString(b, e.InReplyTo)
	b = append(b, ' ')
	b = appendNString(b, e.MessageId)
	return append(b, ')')
}

func qEncode(s string) string {
	if s == "" {
		return ""
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x80 || c < ' ' || c == 0x7f {
			return mime.QEncoding.Encode("utf-8", s)
		}
	}
	return s
}

func appendNString(b []byte, s string) []byte {
	if s == "" {
		return append(b, "NIL"...)
	}
	return appendQuotedOrLiteral(b, s)
}

func appendQuotedOrLiteral(b []byte, s string) []byte {
	for _, c := range s {
		if c > unicode.MaxASCII || unicode.IsControl(c) {
			b = append(b, '{')
			b = strconv.AppendInt(b, int64(len(s)), 10)
			b = append(b, "}\r\n"...)
			return append(b, s...)
		}
	}
	return appendQuoted(b, s)
}

func appendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

// rawResp writes pre-encoded response lines.
type rawResp []byte

func (r rawResp) WriteTo(w *imap.Writer) error {
	if _, err := w.Write(r); err != nil {
		return err
	}
	return w.Flush()
}

// fetchCmd is FETCH and UID FETCH: row-only items take the fast encoder,
// anything else goes through go-imap's Fetch response and ListMessages.
type fetchCmd struct{ commands.Fetch }

func (h *fetchCmd) Handle(c imapsrv.Conn) error { return h.run(c, false) }

func (h *fetchCmd) UidHandle(c imapsrv.Conn) error {
	has := false
	for _, it := range h.Items {
		if it == imap.FetchUid {
			has = true
		}
	}
	if !has {
		h.Items = append(h.Items, imap.FetchUid)
	}
	return h.run(c, true)
}

func (h *fetchCmd) run(c imapsrv.Conn, uid bool) error {
	box, ok := c.Context().Mailbox.(*mailbox)
	if !ok || box == nil {
		return no("", "No mailbox selected")
	}
	if !fastItems(h.Items) {
		ch := make(chan *imap.Message)
		done := make(chan error, 1)
		go func() {
			done <- c.WriteResp(&responses.Fetch{Messages: ch})
			for range ch {
			}
		}()
		if err := box.ListMessages(uid, h.SeqSet, h.Items, ch); err != nil {
			<-done
			return err
		}
		return <-done
	}
	sel, err := box.selection()
	if err != nil {
		return err
	}
	sess := box.u.sess
	uids := sel.resolve(uid, h.SeqSet)
	ctx, cancel := box.u.ctx()
	defer cancel()
	var buf []byte
	for start := 0; start < len(uids); start += 5000 {
		part := uids[start:min(start+5000, len(uids))]
		rows, err := loadRows(ctx, sess.s.store, box.mb.ID, part)
		if err != nil {
			return sess.protoErr("fetch", err)
		}
		buf = buf[:0]
		for i := range rows {
			if seq := sel.seqOf(rows[i].UID); seq != 0 {
				buf = appendFetch(buf, seq, &rows[i], h.Items)
			}
		}
		if err := c.WriteResp(rawResp(buf)); err != nil {
			return err
		}
	}
	return nil
}

func timeUnix(s int64) time.Time { return time.Unix(s, 0) }
