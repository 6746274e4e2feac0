package imapserver

import (
	"bufio"
	"bytes"
	"context"
	"strings"
	"time"

	"github.com/emersion/go-imap"
	"github.com/emersion/go-imap/backend/backendutil"
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
		sess.s.notifyFlags(sess, m.mb.ID, uids)
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
