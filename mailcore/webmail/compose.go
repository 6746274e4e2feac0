package webmail

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/govhub/govhub/mailcore"
	"github.com/govhub/govhub/mailcore/envelope"
)

// Compose prefills a reply ("reply"), reply to all ("all") or forward
// ("forward") of a message, or a new message ("new") to the directory
// person toPerson (may be ""). The quote line and the forward header are
// in the user's language; the signature is appended.
func (s *Service) Compose(ctx context.Context, u User, mode string, folderID int64, uid uint32, toPerson string) (Draft, error) {
	st, err := s.Settings(ctx, u)
	if err != nil {
		return Draft{}, err
	}
	zh := st.Language != "en"
	sig := ""
	if st.Signature != "" {
		sig = "\n\n-- \n" + st.Signature
	}
	switch mode {
	case "", "new":
		d := Draft{Text: sig}
		if toPerson != "" {
			if s.cfg.Directory == nil {
				return Draft{}, notFound("person", toPerson)
			}
			c, err := s.cfg.Directory.Contact(ctx, toPerson)
			if err != nil {
				return Draft{}, err
			}
			d.To = []string{mailcore.FormatAddresses([]envelope.Address{{Name: c.Name, Addr: c.Address}})}
		}
		return d, nil
	case "draft":
		return s.resumeDraft(ctx, u, folderID, uid)
	case "reply", "all", "forward":
	default:
		return Draft{}, invalid("unknown compose mode %q", mode)
	}
	v, m, err := s.view(ctx, u, folderID, uid, ReadOptions{})
	if err != nil {
		return Draft{}, err
	}
	d := Draft{}
	date := v.Date.In(chinaTime)
	if m.SentDate != 0 {
		date = time.Unix(m.SentDate, 0).In(chinaTime)
	}
	if mode == "forward" {
		d.Subject = prefixed(m.Subject, "Fwd: ", "fwd:", "fw:", "转发:", "转发：")
		d.ForwardFolderID, d.ForwardUID = folderID, uid
		var hdr string
		if zh {
			hdr = fmt.Sprintf("-------- 转发的邮件 --------\n发件人: %s\n日期: %s\n主题: %s\n收件人: %s\n", m.From, date.Format("2006-01-02 15:04"), m.Subject, m.To)
			if m.Cc != "" {
				hdr += "抄送: " + m.Cc + "\n"
			}
		} else {
			hdr = fmt.Sprintf("-------- Forwarded Message --------\nFrom: %s\nDate: %s\nSubject: %s\nTo: %s\n", m.From, date.Format(time.RFC1123Z), m.Subject, m.To)
			if m.Cc != "" {
				hdr += "Cc: " + m.Cc + "\n"
			}
		}
		d.Text = sig + "\n\n" + hdr + "\n" + clipBytes(v.Text, 64<<10)
		return d, nil
	}
	d.Subject = prefixed(m.Subject, "Re: ", "re:", "回复:", "回复：", "答复:", "答复：")
	if m.MessageID != "" {
		d.InReplyTo = m.MessageID
		d.References = append(m.References(), m.MessageID)
		if len(d.References) > 20 {
			// RFC 5322 3.6.4 allows trimming: keep the root and the latest.
			d.References = append(d.References[:1], d.References[len(d.References)-19:]...)
		}
	}
	d.ReplyFolderID, d.ReplyUID = folderID, uid
	self := map[string]bool{strings.ToLower(u.Address): true}
	seen := map[string]bool{}
	add := func(dst *[]string, list string) {
		for _, a := range mailcore.ParseAddresses(list) {
			k := strings.ToLower(a.Addr)
			if k == "" || self[k] || seen[k] {
				continue
			}
			seen[k] = true
			*dst = append(*dst, mailcore.FormatAddresses([]envelope.Address{a}))
		}
	}
	target := m.From
	if m.ReplyTo != nil && *m.ReplyTo != "" {
		target = *m.ReplyTo
	}
	add(&d.To, target)
	if len(d.To) == 0 && mode == "reply" {
		// Replying to one's own message (from Sent): to its recipients.
		add(&d.To, m.To)
	}
	if mode == "all" {
		add(&d.To, m.To)
		add(&d.Cc, m.Cc)
	}
	var quoteLine string
	from := m.From
	if as := mailcore.ParseAddresses(m.From); len(as) > 0 && as[0].Name != "" {
		from = as[0].Name + " <" + as[0].Addr + ">"
	}
	if zh {
		quoteLine = fmt.Sprintf("在 %s，%s 写道：", date.Format("2006-01-02 15:04"), from)
	} else {
		quoteLine = fmt.Sprintf("On %s, %s wrote:", date.Format("Mon, 2 Jan 2006 15:04"), from)
	}
	d.Text = sig + "\n\n" + quoteLine + "\n" + quote(clipBytes(v.Text, 64<<10))
	return d, nil
}

// chinaTime is the zone quote lines are dated in (the organisation's).
var chinaTime = time.FixedZone("CST", 8*3600)

// prefixed returns subject with prefix unless it already starts with one
// of the known prefixes (case-insensitive), so "Re: Re: Re:" never grows.
func prefixed(subject, prefix string, known ...string) string {
	t := strings.TrimSpace(subject)
	l := strings.ToLower(t)
	for _, k := range known {
		if strings.HasPrefix(l, k) {
			return t
		}
	}
	return prefix + t
}

// quote prefixes every line with "> " (RFC 3676 4.5).
func quote(text string) string {
	var b strings.Builder
	for line := range strings.Lines(strings.TrimRight(text, "\n")) {
		line = strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(line, ">") {
			b.WriteString(">" + line + "\n")
		} else {
			b.WriteString("> " + line + "\n")
		}
	}
	return b.String()
}

// recipients parses To, Cc or Bcc entries (each may hold several
// comma-separated addresses, with or without display names).
func recipients(entries []string) ([]*mail.Address, error) {
	var out []*mail.Address
	for _, e := range entries {
		for _, a := range mailcore.ParseAddresses(e) {
			addr := strings.TrimSpace(a.Addr)
			if addr == "" {
				continue
			}
			if _, err := mailcore.NormalizeAddress(addr); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
			}
			out = append(out, &mail.Address{Name: strings.TrimSpace(a.Name), Address: addr})
		}
	}
	return out, nil
}

// built is a composed message.
type built struct {
	raw       []byte // as submitted: no Bcc header
	withBcc   []byte // the sender's copy (Sent, Drafts): Bcc kept
	messageID string
	rcpts     []string // envelope recipients: To, Cc, Bcc, deduplicated
}

// build writes d as an RFC 5322 message: UTF-8 text (quoted-printable),
// RFC 2047 encoded headers, attachments base64 in multipart/mixed, CRLF
// line endings throughout.
func (s *Service) build(ctx context.Context, u User, d Draft, alert bool) (built, error) {
	var b built
	acct, err := s.store.Account(ctx, u.AccountID)
	if err != nil {
		return b, err
	}
	st, err := s.Settings(ctx, u)
	if err != nil {
		return b, err
	}
	to, err := recipients(d.To)
	if err != nil {
		return b, err
	}
	cc, err := recipients(d.Cc)
	if err != nil {
		return b, err
	}
	bcc, err := recipients(d.Bcc)
	if err != nil {
		return b, err
	}
	seen := map[string]bool{}
	for _, l := range [][]*mail.Address{to, cc, bcc} {
		for _, a := range l {
			if k := strings.ToLower(a.Address); !seen[k] {
				seen[k] = true
				b.rcpts = append(b.rcpts, a.Address)
			}
		}
	}
	if len(b.rcpts) > MaxRecipients {
		return b, invalid("more than %d recipients", MaxRecipients)
	}
	if len(d.Subject) > 2000 || strings.ContainsAny(d.Subject, "\r\n") {
		return b, invalid("subject")
	}
	if len(d.InReplyTo) > 998 || strings.ContainsAny(strings.Trim(strings.TrimSpace(d.InReplyTo), "<>"), " \r\n<>") {
		return b, invalid("in_reply_to") // a form field, not a header line
	}
	atts := d.Attachments
	if d.DraftUID != 0 && len(d.KeepParts) > 0 {
		kept, err := s.keptDraftParts(ctx, u, d.DraftUID, d.KeepParts)
		if err != nil {
			return b, err
		}
		atts = append(kept, atts...)
	}
	if d.ForwardFolderID != 0 {
		fw, err := s.forwardedParts(ctx, u, d.ForwardFolderID, d.ForwardUID)
		if err != nil {
			return b, err
		}
		atts = append(fw, atts...)
	}
	var sum int64
	for _, a := range atts {
		sum += int64(len(a.Data))
	}
	if sum > s.cfg.MaxMessageSize {
		return b, fmt.Errorf("%w: attachments of %d bytes", mailcore.ErrTooLarge, sum)
	}

	h := mail.Header{}
	h.SetDate(s.now().In(chinaTime))
	h.AddRaw(addressField("From", []*mail.Address{{Name: st.DisplayName, Address: acct.Address}}))
	if len(to) > 0 {
		h.AddRaw(addressField("To", to))
	}
	if len(cc) > 0 {
		h.AddRaw(addressField("Cc", cc))
	}
	h.AddRaw(subjectField(d.Subject))
	b.messageID = newMessageID(acct.Address)
	h.SetMessageID(b.messageID)
	if id := strings.Trim(strings.TrimSpace(d.InReplyTo), "<>"); id != "" {
		h.SetMsgIDList("In-Reply-To", []string{id})
	}
	var refs []string
	for _, r := range d.References {
		if r = strings.Trim(strings.TrimSpace(r), "<>"); r != "" && !strings.ContainsAny(r, " \r\n<>") {
			refs = append(refs, r)
		}
	}
	if len(refs) > 0 {
		h.SetMsgIDList("References", refs)
	}
	h.Set("MIME-Version", "1.0")
	if alert {
		h.Set(alertHeader, "requested")
	}
	write := func(h mail.Header) ([]byte, error) {
		var buf bytes.Buffer
		if err := writeBody(&buf, h, d.Text, atts); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}
	if b.raw, err = write(h); err != nil {
		return b, fmt.Errorf("webmail: build message: %w", err)
	}
	b.withBcc = b.raw
	if len(bcc) > 0 {
		hb := h.Copy()
		hb.AddRaw(addressField("Bcc", bcc))
		if b.withBcc, err = write(hb); err != nil {
			return b, fmt.Errorf("webmail: build message: %w", err)
		}
	}
	if int64(len(b.withBcc)) > s.cfg.MaxMessageSize {
		return b, fmt.Errorf("%w: %d bytes > %d", mailcore.ErrTooLarge, len(b.withBcc), s.cfg.MaxMessageSize)
	}
	return b, nil
}

// writeBody writes the header and a text/plain body, in multipart/mixed
// with the attachments when there are any.
func writeBody(w io.Writer, h mail.Header, text string, atts []Upload) error {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	text = strings.ReplaceAll(text, "\r", "\n")
	textHeader := func(h *message.Header) {
		h.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
		h.Set("Content-Transfer-Encoding", "quoted-printable")
	}
	if len(atts) == 0 {
		textHeader(&h.Header)
		tw, err := message.CreateWriter(w, h.Header)
		if err != nil {
			return err
		}
		if _, err := io.WriteString(tw, text); err != nil {
			return err
		}
		return tw.Close()
	}
	mw, err := mail.CreateWriter(w, h)
	if err != nil {
		return err
	}
	ih := mail.InlineHeader{}
	textHeader(&ih.Header)
	tw, err := mw.CreateSingleInline(ih)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(tw, text); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	for _, a := range atts {
		name := cleanFilename(a.Name)
		if name == "" {
			name = "attachment"
		}
		ct := strings.ToLower(strings.TrimSpace(a.ContentType))
		if mt, _, err := mime.ParseMediaType(ct); err != nil || strings.HasPrefix(mt, "multipart/") {
			ct = "application/octet-stream"
		} else {
			ct = mt
		}
		ah := mail.AttachmentHeader{}
		ah.SetContentType(ct, map[string]string{"name": name})
		ah.SetFilename(name)
		ah.Set("Content-Transfer-Encoding", "base64")
		cid := a.ContentID
		if cid == "" || strings.ContainsAny(cid, "<>\r\n ") || len(cid) > 200 {
			cid = newContentID()
		}
		ah.Set("Content-Id", "<"+cid+">")
		aw, err := mw.CreateAttachment(ah)
		if err != nil {
			return err
		}
		if _, err := aw.Write(a.Data); err != nil {
			return err
		}
		if err := aw.Close(); err != nil {
			return err
		}
	}
	return mw.Close()
}

// Header encoding. go-message folds only at blanks within 76 characters
// and otherwise writes lines up to 998, so the fields with encoded words
// (Subject and the address fields with Chinese names) are written here:
// RFC 2047 B-encoded words (compact for Chinese) of at most 42 bytes, a
// word never splitting a UTF-8 sequence (RFC 2047 5), folded between
// words so that no line passes 78 characters (RFC 5322 2.1.1).

// bWords encodes s as B-encoded words of at most max bytes of text each.
func bWords(s string, max int) []string {
	var out []string
	for s != "" {
		n := 0
		for n < len(s) {
			_, size := utf8.DecodeRuneInString(s[n:])
			if n+size > max && n > 0 {
				break
			}
			n += size
		}
		out = append(out, "=?utf-8?b?"+base64.StdEncoding.EncodeToString([]byte(s[:n]))+"?=")
		s = s[n:]
	}
	return out
}

// foldField joins tokens after "Key:" with blanks, folding before a token
// that would pass 78 characters; CRLF-terminated.
func foldField(key string, toks []string) []byte {
	var b strings.Builder
	b.WriteString(key + ":")
	line := len(key) + 1
	for i, t := range toks {
		if i > 0 && line+1+len(t) > 78 {
			b.WriteString("\r\n")
			line = 0
		}
		b.WriteString(" " + t)
		line += 1 + len(t)
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// subjectField is the Subject field: as is when ASCII, else encoded.
func subjectField(subj string) []byte {
	if isASCII(subj) {
		return foldField("Subject", strings.Fields(subj))
	}
	return foldField("Subject", bWords(subj, 42))
}

// addressField is an address field (From, To, Cc, Bcc): ASCII names
// quoted as net/mail does, others encoded.
func addressField(key string, as []*mail.Address) []byte {
	var toks []string
	for i, a := range as {
		var parts []string
		switch {
		case a.Name == "":
			parts = []string{"<" + a.Address + ">"}
		case isASCII(a.Name):
			parts = []string{(&mail.Address{Name: a.Name, Address: a.Address}).String()}
		default:
			parts = append(bWords(a.Name, 42), "<"+a.Address+">")
		}
		if i < len(as)-1 {
			parts[len(parts)-1] += ","
		}
		toks = append(toks, parts...)
	}
	return foldField(key, toks)
}

// newMessageID returns a fresh msg-id (without brackets) in the sender's
// domain.
func newMessageID(from string) string {
	var r [16]byte
	rand.Read(r[:])
	domain := "govhub.invalid"
	if at := strings.LastIndexByte(from, '@'); at >= 0 && at < len(from)-1 {
		domain = from[at+1:]
	}
	return hex.EncodeToString(r[:]) + "@" + domain
}

// forwardedParts are the attachments (and inline images) of a message
// being forwarded, attached again as they were.
func (s *Service) forwardedParts(ctx context.Context, u User, folderID int64, uid uint32) ([]Upload, error) {
	raw, err := s.Raw(ctx, u, folderID, uid)
	if err != nil {
		return nil, err
	}
	p := parse(raw)
	ids := make([]string, len(p.parts))
	for i, pt := range p.parts {
		ids[i] = pt.ID
	}
	// One reading of the original for all its parts, bounded by what a
	// message may carry anyway.
	datas, err := s.PartsData(ctx, u, folderID, uid, ids, int(s.cfg.MaxMessageSize))
	if err != nil {
		return nil, err
	}
	var out []Upload
	for _, pt := range p.parts {
		data, ok := datas[pt.ID]
		if !ok {
			return nil, fmt.Errorf("%w: the forwarded message's attachments are larger than a message may be", ErrInvalid)
		}
		name := pt.Name
		if name == "" {
			name = "part-" + pt.ID
		}
		out = append(out, Upload{Name: name, ContentType: pt.ContentType, Data: data})
	}
	return out, nil
}

// Send submits d as the user, stores the sender's copy in Sent (\Seen),
// removes the draft it replaces and marks the message it answers
// \Answered. With d.Alert (and a sender AlertSenders allows) the message
// carries X-Govhub-Alert: requested and a pending row in
// webmail_alert_requests for the notify module.
func (s *Service) Send(ctx context.Context, u User, d Draft) (MessageRef, error) {
	acct, err := s.store.Account(ctx, u.AccountID)
	if err != nil {
		return MessageRef{}, err
	}
	if d.Alert && (s.cfg.AlertSenders == nil || !s.cfg.AlertSenders(acct)) {
		return MessageRef{}, ErrAlertNotAllowed
	}
	b, err := s.build(ctx, u, d, d.Alert)
	if err != nil {
		return MessageRef{}, err
	}
	if len(b.rcpts) == 0 {
		return MessageRef{}, invalid("no recipients")
	}
	if s.cfg.Submitter == nil {
		return MessageRef{}, fmt.Errorf("%w: no submitter configured", ErrSubmit)
	}
	if err := s.cfg.Submitter.Submit(ctx, acct, acct.Address, b.rcpts, b.raw); err != nil {
		return MessageRef{}, fmt.Errorf("%w: %w", ErrSubmit, err)
	}
	// From here the message is sent: later failures are logged, not
	// returned, so the user is not led to send it twice.
	log := s.log.With("account", acct.ID, "message_id", b.messageID)
	if d.Alert {
		rc, _ := json.Marshal(b.rcpts)
		if _, err := s.db.X.ExecContext(ctx, s.db.Rebind(`INSERT INTO webmail_alert_requests (account_id, message_id, subject, recipients, created_at, status)
			VALUES (?, ?, ?, ?, ?, 'pending')`), acct.ID, b.messageID, clipBytes(d.Subject, 1000), string(rc), s.now().Unix()); err != nil {
			log.ErrorContext(ctx, "record alert request", "err", err)
		}
	}
	var ref MessageRef
	sent, err := s.special(ctx, u, mailcore.UseSent)
	if err == nil {
		ref, err = s.deliverOwn(ctx, u, sent, b.withBcc, mailcore.FlagSeen)
	}
	if err != nil {
		log.ErrorContext(ctx, "store sent copy", "err", err)
	}
	if d.DraftUID != 0 {
		if err := s.dropDraft(ctx, u, d.DraftUID); err != nil {
			log.WarnContext(ctx, "remove sent draft", "err", err)
		}
	}
	if err := s.markAnswered(ctx, u, d); err != nil {
		log.WarnContext(ctx, "mark answered", "err", err)
	}
	return ref, nil
}

// deliverOwn stores raw in one of the user's folders.
func (s *Service) deliverOwn(ctx context.Context, u User, mb mailcore.Mailbox, raw []byte, flags mailcore.Flags) (MessageRef, error) {
	res, err := s.store.Deliver(ctx, raw, []mailcore.Recipient{{AccountID: u.AccountID, MailboxID: mb.ID}}, mailcore.DeliverOptions{Flags: flags, InternalDate: s.now()})
	if err != nil {
		return MessageRef{}, err
	}
	if len(res) != 1 {
		return MessageRef{}, errors.New("webmail: no delivery result")
	}
	if res[0].Err != nil {
		return MessageRef{}, res[0].Err
	}
	return MessageRef{FolderID: mb.ID, UID: res[0].UID}, nil
}

// dropDraft expunges a draft of the user's Drafts folder.
func (s *Service) dropDraft(ctx context.Context, u User, uid uint32) error {
	drafts, err := s.special(ctx, u, mailcore.UseDrafts)
	if err != nil {
		return err
	}
	_, err = s.store.Expunge(ctx, drafts.ID, []uint32{uid})
	return err
}

// markAnswered sets \Answered on the message d replies to: the one Compose
// named, else the user's messages with the Message-ID of In-Reply-To.
func (s *Service) markAnswered(ctx context.Context, u User, d Draft) error {
	id := strings.Trim(strings.TrimSpace(d.InReplyTo), "<>")
	if d.ReplyFolderID != 0 {
		if _, m, err := s.message(ctx, u, d.ReplyFolderID, d.ReplyUID); err == nil && (id == "" || m.MessageID == id) {
			_, err := s.store.StoreFlags(ctx, m.MailboxID, []uint32{m.UID}, mailcore.FlagsAdd, mailcore.FlagAnswered)
			return err
		}
	}
	if id == "" {
		return nil
	}
	var rows []struct {
		MailboxID int64  `db:"mailbox_id"`
		UID       uint32 `db:"uid"`
	}
	err := s.db.X.SelectContext(ctx, &rows, s.db.Rebind(`SELECT m.mailbox_id, m.uid FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id
		WHERE b.account_id = ? AND b.special_use NOT IN (?, ?) AND m.message_id = ? LIMIT 10`), u.AccountID, mailcore.UseSent, mailcore.UseDrafts, id)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if _, err := s.store.StoreFlags(ctx, r.MailboxID, []uint32{r.UID}, mailcore.FlagsAdd, mailcore.FlagAnswered); err != nil {
			return err
		}
	}
	return nil
}

// SaveDraft stores d in Drafts (\Draft, \Seen), Bcc kept, and removes the
// draft it replaces (d.DraftUID). Recipients may be empty. An alert
// request is kept (as the header) only for senders allowed it.
func (s *Service) SaveDraft(ctx context.Context, u User, d Draft) (MessageRef, error) {
	alert := false
	if d.Alert && s.cfg.AlertSenders != nil {
		// Kept in the draft so it survives resuming; asked again at Send.
		acct, err := s.store.Account(ctx, u.AccountID)
		if err != nil {
			return MessageRef{}, err
		}
		alert = s.cfg.AlertSenders(acct)
	}
	b, err := s.build(ctx, u, d, alert)
	if err != nil {
		return MessageRef{}, err
	}
	drafts, err := s.special(ctx, u, mailcore.UseDrafts)
	if err != nil {
		return MessageRef{}, err
	}
	ref, err := s.deliverOwn(ctx, u, drafts, b.withBcc, mailcore.FlagDraft|mailcore.FlagSeen)
	if err != nil {
		return MessageRef{}, err
	}
	if d.DraftUID != 0 && d.DraftUID != ref.UID {
		if err := s.dropDraft(ctx, u, d.DraftUID); err != nil {
			s.log.WarnContext(ctx, "remove replaced draft", "account", u.AccountID, "err", err)
		}
	}
	return ref, nil
}

// newContentID makes a Content-ID for an attachment (RFC 2392 syntax).
func newContentID() string {
	var b [12]byte
	rand.Read(b[:])
	return "att-" + hex.EncodeToString(b[:]) + "@govhub"
}

// keptDraftParts reads the attachments named by Content-ID from the saved
// draft uid of the user's Drafts folder, in the draft's order, keeping
// their Content-IDs: saving the draft again (autosave sends no files)
// and sending it carry them over instead of dropping them.
func (s *Service) keptDraftParts(ctx context.Context, u User, uid uint32, keep []string) ([]Upload, error) {
	drafts, err := s.special(ctx, u, mailcore.UseDrafts)
	if err != nil {
		return nil, err
	}
	v, _, err := s.view(ctx, u, drafts.ID, uid, ReadOptions{})
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, c := range keep {
		want[strings.Trim(c, "<>")] = true
	}
	var parts []Part
	var ids []string
	for _, p := range v.Parts {
		if p.ContentID != "" && want[p.ContentID] {
			parts = append(parts, p)
			ids = append(ids, p.ID)
		}
	}
	data, err := s.PartsData(ctx, u, drafts.ID, uid, ids, int(s.cfg.MaxMessageSize))
	if err != nil {
		return nil, err
	}
	out := make([]Upload, 0, len(parts))
	for _, p := range parts {
		d, ok := data[p.ID]
		if !ok {
			return nil, fmt.Errorf("%w: the draft's attachments are larger than a message may be", mailcore.ErrTooLarge)
		}
		out = append(out, Upload{Name: p.Name, ContentType: p.ContentType, Data: d, ContentID: p.ContentID})
	}
	return out, nil
}

// resumeDraft loads a saved draft back into the editor; sending or saving
// it again replaces it (DraftUID).
func (s *Service) resumeDraft(ctx context.Context, u User, folderID int64, uid uint32) (Draft, error) {
	v, m, err := s.view(ctx, u, folderID, uid, ReadOptions{})
	if err != nil {
		return Draft{}, err
	}
	split := func(list string) []string {
		var out []string
		for _, a := range mailcore.ParseAddresses(list) {
			out = append(out, mailcore.FormatAddresses([]envelope.Address{a}))
		}
		return out
	}
	d := Draft{
		To: split(m.To), Cc: split(m.Cc), Subject: m.Subject, Text: v.Text,
		InReplyTo: m.InReplyTo, References: m.References(), Alert: v.Alert,
	}
	if bcc, ok := v.Headers["Bcc"]; ok {
		if as, err := mail.ParseAddressList(bcc); err == nil {
			for _, a := range as {
				d.Bcc = append(d.Bcc, mailcore.FormatAddresses([]envelope.Address{{Name: a.Name, Addr: a.Address}}))
			}
		}
	}
	if mb, err := s.folder(ctx, u, folderID); err == nil && mb.SpecialUse == mailcore.UseDrafts {
		d.DraftUID = uid
		for _, p := range v.Parts {
			if p.ContentID != "" && !p.Inline {
				d.DraftParts = append(d.DraftParts, p)
				d.KeepParts = append(d.KeepParts, p.ContentID)
			}
		}
	}
	return d, nil
}
