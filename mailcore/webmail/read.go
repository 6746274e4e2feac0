package webmail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/charset"
	"github.com/govhub/govhub/mailcore"
	"github.com/microcosm-cc/bluemonday"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
	"golang.org/x/text/encoding/simplifiedchinese"
)

func init() {
	// GB2312 and GBK mail is read with the GB18030 decoder, their
	// superset: senders label GBK text "gb2312" all the time.
	for _, l := range []string{"gb2312", "gbk", "gb18030", "cp936", "x-gbk", "euc-cn", "csgb2312"} {
		charset.RegisterEncoding(l, simplifiedchinese.GB18030)
	}
}

// Walk limits against hostile mail, as in mailcore/envelope.
const (
	maxDepth = 32
	maxParts = 1000
)

// Alert header: set on messages whose sender asked for SMS/IM alerts.
const alertHeader = "X-Govhub-Alert"

// leaf is one non-multipart entity met by walk.
type leaf struct {
	path     string // MIME part path, "1.2"
	e        *message.Entity
	ct       string // media type, lower case
	params   map[string]string
	disp     string
	name     string
	cid      string
	isText   bool // text/plain or text/html shown as the body
	attached bool
}

// walk visits every leaf of e in order, numbering parts as IMAP does
// (RFC 3501 6.4.5): a single-part message's body is "1", the children of
// a multipart are "1", "2", ... and their children "2.1" and so on. An
// encapsulated message/rfc822 is a leaf (an attachment). fn returning
// errStop ends the walk.
func walk(e *message.Entity, fn func(l *leaf) error) error {
	n := 0
	return walkEntity(e, "", 0, &n, fn)
}

var errStop = errors.New("stop walk")

func walkEntity(e *message.Entity, path string, depth int, n *int, fn func(l *leaf) error) error {
	*n++
	if *n > maxParts {
		return errStop
	}
	if mr := e.MultipartReader(); mr != nil && depth < maxDepth {
		for i := 1; ; i++ {
			p, err := mr.NextPart()
			if err == io.EOF {
				return nil
			}
			if p == nil {
				return nil // malformed: keep what was read
			}
			child := strconv.Itoa(i)
			if path != "" {
				child = path + "." + child
			}
			if err := walkEntity(p, child, depth+1, n, fn); err != nil {
				return err
			}
		}
	}
	if path == "" {
		path = "1"
	}
	l := &leaf{path: path, e: e}
	ct, params, err := e.Header.ContentType()
	if err != nil || ct == "" {
		ct, params = "text/plain", map[string]string{}
	}
	l.ct, l.params = strings.ToLower(ct), params
	disp, dparams, _ := e.Header.ContentDisposition()
	l.disp = strings.ToLower(disp)
	l.name = dparams["filename"]
	if l.name == "" {
		l.name = params["name"]
	}
	l.name = cleanFilename(decodeWords(l.name))
	l.cid = strings.Trim(strings.TrimSpace(e.Header.Get("Content-Id")), "<>")
	textBody := (l.ct == "text/plain" || l.ct == "text/html") && l.disp != "attachment" && l.name == ""
	l.isText = textBody
	l.attached = !textBody
	return fn(l)
}

var wordDecoder = &mime.WordDecoder{CharsetReader: charset.Reader}

// decodeWords decodes RFC 2047 encoded words and 8-bit GB18030 bytes into
// valid UTF-8.
func decodeWords(s string) string {
	if strings.Contains(s, "=?") {
		if d, err := wordDecoder.DecodeHeader(s); err == nil {
			s = d
		}
	}
	return toUTF8([]byte(s))
}

// toUTF8 returns b as UTF-8: as is when valid, else read as GB18030 (the
// unlabelled 8-bit text Chinese mail carries), else with bad bytes replaced.
func toUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	if d, err := simplifiedchinese.GB18030.NewDecoder().Bytes(b); err == nil && utf8.Valid(d) {
		return string(d)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// cleanFilename keeps the last path element of a name and drops control
// characters, so a download never names a directory or a hidden escape.
func cleanFilename(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '/' || r == '\\' {
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if s == "." || s == ".." {
		return ""
	}
	if len(s) > 255 {
		s = clipBytes(s, 255)
	}
	return s
}

func clipBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// parsed is what Read shows of a message body.
type parsed struct {
	text, html string
	parts      []Part
	cids       map[string]string // Content-ID -> part path
	headers    map[string]string
	alert      bool
}

// parse reads a raw message for display. It never fails on bad mail: what
// cannot be read is left out.
func parse(raw []byte) parsed {
	p := parsed{cids: map[string]string{}, headers: map[string]string{}, parts: []Part{}}
	e, err := message.Read(bytes.NewReader(raw))
	if e == nil {
		p.text = toUTF8(raw)
		_ = err
		return p
	}
	total := 0
	fields := e.Header.Fields()
	for fields.Next() {
		k := fields.Key() // canonical form (net/textproto)
		v := decodeWords(fields.Value())
		if total += len(k) + len(v); total > 256<<10 {
			break
		}
		if old, ok := p.headers[k]; ok {
			v = old + "\n" + v
		}
		p.headers[k] = v
	}
	p.alert = strings.EqualFold(strings.TrimSpace(e.Header.Get(alertHeader)), "requested")
	_ = walk(e, func(l *leaf) error {
		if l.isText && l.ct == "text/plain" && p.text == "" {
			p.text = readText(l)
			return nil
		}
		if l.isText && l.ct == "text/html" && p.html == "" {
			p.html = readText(l)
			return nil
		}
		size, _ := io.Copy(io.Discard, io.LimitReader(l.e.Body, 1<<30))
		name := l.name
		if name == "" && l.ct == "message/rfc822" {
			name = "message.eml"
		}
		p.parts = append(p.parts, Part{
			ID:          l.path,
			Name:        name,
			ContentType: l.ct,
			Size:        size,
			Inline:      l.disp == "inline" || l.disp == "" && l.cid != "",
			ContentID:   l.cid,
		})
		if l.cid != "" {
			p.cids[strings.ToLower(l.cid)] = l.path
		}
		return nil
	})
	return p
}

// readText reads a text part decoded to UTF-8, at most maxTextBytes.
func readText(l *leaf) string {
	b, _ := io.ReadAll(io.LimitReader(l.e.Body, maxTextBytes))
	s := toUTF8(b)
	return strings.ReplaceAll(s, "\r\n", "\n")
}

// message returns the user's message row; another account's is
// ErrNotFound.
func (s *Service) message(ctx context.Context, u User, folderID int64, uid uint32) (mailcore.Mailbox, mailcore.Message, error) {
	mb, err := s.folder(ctx, u, folderID)
	if err != nil {
		return mb, mailcore.Message{}, err
	}
	m, err := s.store.Message(ctx, mb.ID, uid)
	return mb, m, err
}

// Read returns a message for display, HTML sanitised, and marks it \Seen.
func (s *Service) Read(ctx context.Context, u User, folderID int64, uid uint32, opts ReadOptions) (View, error) {
	v, m, err := s.view(ctx, u, folderID, uid, opts)
	if err != nil {
		return View{}, err
	}
	if m.Flags&mailcore.FlagSeen == 0 {
		if _, err := s.store.StoreFlags(ctx, folderID, []uint32{uid}, mailcore.FlagsAdd, mailcore.FlagSeen); err != nil {
			return View{}, fmt.Errorf("webmail: mark seen: %w", err)
		}
		v.Seen = true
	}
	return v, nil
}

// view builds the View of a message without changing its flags.
func (s *Service) view(ctx context.Context, u User, folderID int64, uid uint32, opts ReadOptions) (View, mailcore.Message, error) {
	_, m, err := s.message(ctx, u, folderID, uid)
	if err != nil {
		return View{}, m, err
	}
	raw, err := s.store.Blobs().Get(ctx, m.BlobID())
	if err != nil {
		return View{}, m, fmt.Errorf("webmail: read body: %w", err)
	}
	p := parse(raw)
	v := View{
		Summary:   summaryOfMessage(m),
		Cc:        m.Cc,
		MessageID: m.MessageID,
		Text:      p.text,
		Parts:     p.parts,
		Headers:   p.headers,
		Alert:     p.alert,
	}
	if m.ReplyTo != nil {
		v.ReplyTo = *m.ReplyTo
	}
	if p.html != "" {
		v.HTML, v.RemoteBlocked = s.sanitize(p.html, folderID, uid, p.cids, opts.RemoteImages)
		if v.Text == "" {
			v.Text = htmlToText(p.html)
		}
	}
	return v, m, nil
}

func summaryOfMessage(m mailcore.Message) Summary {
	return summaryRow{
		MailboxID: m.MailboxID, UID: m.UID, Flags: m.Flags, InternalDate: m.InternalDate, SentDate: m.SentDate,
		Size: m.Size, From: m.From, To: m.To, Subject: m.Subject, Preview: m.Preview, ThreadID: m.ThreadID,
	}.summary()
}

// Raw returns the message as stored.
func (s *Service) Raw(ctx context.Context, u User, folderID int64, uid uint32) ([]byte, error) {
	_, m, err := s.message(ctx, u, folderID, uid)
	if err != nil {
		return nil, err
	}
	return s.store.Blobs().Get(ctx, m.BlobID())
}

// Part returns one leaf part of a message, transfer-decoded (text parts
// also converted to UTF-8, which Part.ContentType then says).
func (s *Service) Part(ctx context.Context, u User, folderID int64, uid uint32, partID string) (Part, []byte, error) {
	raw, err := s.Raw(ctx, u, folderID, uid)
	if err != nil {
		return Part{}, nil, err
	}
	e, _ := message.Read(bytes.NewReader(raw))
	if e == nil {
		return Part{}, nil, notFound("part", partID)
	}
	var (
		found bool
		part  Part
		data  []byte
	)
	err = walk(e, func(l *leaf) error {
		if l.path != partID {
			return nil
		}
		found = true
		data, err = io.ReadAll(io.LimitReader(l.e.Body, 1<<30))
		if err != nil {
			return err
		}
		ct := l.ct
		if strings.HasPrefix(ct, "text/") {
			ct += "; charset=utf-8"
			data = []byte(toUTF8(data))
		}
		part = Part{ID: l.path, Name: l.name, ContentType: ct, Size: int64(len(data)), Inline: l.disp == "inline", ContentID: l.cid}
		return errStop
	})
	if !found {
		return Part{}, nil, notFound("part", partID)
	}
	if err != nil && !errors.Is(err, errStop) {
		return Part{}, nil, fmt.Errorf("webmail: read part: %w", err)
	}
	return part, data, nil
}

// PartsData implements Mail: one walk of the message for all of partIDs
// (a message with hundreds of inline images is read once, not once per
// image), stopping at maxTotal bytes. Text parts are UTF-8, as Part gives
// them.
func (s *Service) PartsData(ctx context.Context, u User, folderID int64, uid uint32, partIDs []string, maxTotal int) (map[string][]byte, error) {
	raw, err := s.Raw(ctx, u, folderID, uid)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, id := range partIDs {
		want[id] = true
	}
	out := map[string][]byte{}
	e, _ := message.Read(bytes.NewReader(raw))
	if e == nil || len(want) == 0 {
		return out, nil
	}
	total := 0
	err = walk(e, func(l *leaf) error {
		if !want[l.path] {
			return nil
		}
		data, err := io.ReadAll(io.LimitReader(l.e.Body, int64(maxTotal-total)+1))
		if err != nil {
			return err
		}
		if total+len(data) > maxTotal {
			return errStop
		}
		total += len(data)
		if strings.HasPrefix(l.ct, "text/") {
			data = []byte(toUTF8(data)) // as Part gives it
		}
		out[l.path] = data
		if len(out) == len(want) {
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, fmt.Errorf("webmail: read parts: %w", err)
	}
	return out, nil
}

// Sanitising HTML mail.
//
// bluemonday's UGC policy (no script, style elements, event handlers,
// forms, frames, objects, meta, base; URLs only http, https, mailto and
// cid) plus the presentational attributes and CSS properties mail layouts
// use, each CSS value checked by bluemonday's per-property handler (no
// expression(), no url(): no property that takes an image is allowed).
// Images are then settled by settleImages.
func mailPolicy() *bluemonday.Policy {
	p := bluemonday.UGCPolicy()
	p.AllowURLSchemes("http", "https", "mailto", "cid")
	p.AllowAttrs("align").Matching(regexp.MustCompile(`(?i)^(left|right|center|justify)$`)).
		OnElements("p", "div", "table", "td", "th", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "img")
	p.AllowAttrs("valign").Matching(regexp.MustCompile(`(?i)^(top|middle|bottom|baseline)$`)).OnElements("td", "th", "tr")
	p.AllowAttrs("bgcolor", "color").Matching(regexp.MustCompile(`^(#[0-9a-fA-F]{3,8}|[a-zA-Z]{1,20})$`)).
		OnElements("table", "td", "th", "tr", "font", "body")
	p.AllowAttrs("width", "height").Matching(regexp.MustCompile(`^[0-9]{1,5}(%|px)?$`)).OnElements("table", "td", "th", "img", "col")
	p.AllowAttrs("border", "cellpadding", "cellspacing").Matching(regexp.MustCompile(`^[0-9]{1,3}$`)).OnElements("table", "img")
	p.AllowAttrs("face").Matching(regexp.MustCompile(`^[\p{L}\p{N} ,_-]{1,100}$`)).OnElements("font")
	p.AllowAttrs("size").Matching(regexp.MustCompile(`^[+-]?[1-7]$`)).OnElements("font")
	p.AllowElements("font", "center")
	p.AllowStyles("color", "background-color", "font-size", "font-family", "font-weight", "font-style",
		"text-align", "text-decoration", "text-indent", "line-height", "letter-spacing", "vertical-align", "white-space",
		"margin", "margin-top", "margin-bottom", "margin-left", "margin-right",
		"padding", "padding-top", "padding-bottom", "padding-left", "padding-right",
		"border", "border-top", "border-bottom", "border-left", "border-right", "border-color", "border-style", "border-width",
		"border-collapse", "border-spacing", "width", "height", "max-width", "min-width", "list-style-type").Globally()
	p.RequireNoFollowOnLinks(true)
	p.RequireNoReferrerOnLinks(true)
	p.AddTargetBlankToFullyQualifiedLinks(true)
	p.AllowRelativeURLs(false)
	return p
}

// PartURL is where the API serves a part; cid: images point there.
func PartURL(folderID int64, uid uint32, partID string) string {
	return fmt.Sprintf("/api/v1/messages/%d/%d/parts/%s", folderID, uid, url.PathEscape(partID))
}

// sanitize returns safe HTML for display and whether remote images were
// removed.
func (s *Service) sanitize(h string, folderID int64, uid uint32, cids map[string]string, remote bool) (string, bool) {
	clean := s.policy.Sanitize(h)
	return settleImages(clean, func(src string) (string, bool) {
		u, err := url.Parse(strings.TrimSpace(src))
		if err != nil {
			return "", false
		}
		switch strings.ToLower(u.Scheme) {
		case "cid":
			id := u.Opaque
			if id == "" {
				id = u.Path
			}
			if id, err := url.PathUnescape(id); err == nil {
				if path, ok := cids[strings.ToLower(strings.Trim(id, "<>"))]; ok {
					return PartURL(folderID, uid, path), false
				}
			}
			return "", false
		case "http", "https":
			if remote {
				return u.String(), false
			}
			return "", true
		}
		return "", false
	})
}

// settleImages rewrites every img src of sanitised HTML through fn: a
// returned "" drops the attribute; blocked reports fn saying so once.
// Everything but img tags is copied byte for byte.
func settleImages(clean string, fn func(src string) (newSrc string, blocked bool)) (string, bool) {
	z := html.NewTokenizer(strings.NewReader(clean))
	var b strings.Builder
	anyBlocked := false
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			break
		}
		raw := z.Raw()
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
			b.Write(raw)
			continue
		}
		tok := z.Token()
		if tok.DataAtom != atom.Img {
			b.WriteString(string(raw))
			continue
		}
		attrs := tok.Attr[:0]
		for _, a := range tok.Attr {
			if a.Key == "srcset" {
				continue
			}
			if a.Key == "src" {
				v, blocked := fn(a.Val)
				anyBlocked = anyBlocked || blocked
				if v == "" {
					continue
				}
				a.Val = v
			}
			attrs = append(attrs, a)
		}
		tok.Attr = attrs
		b.WriteString(tok.String())
	}
	return b.String(), anyBlocked
}

// htmlToText renders HTML as plain text for a message that has no text
// part: block ends become line breaks, script and style content is
// dropped.
func htmlToText(h string) string {
	z := html.NewTokenizer(strings.NewReader(h))
	var b strings.Builder
	skip := 0
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return strings.TrimSpace(collapseBlankLines(b.String()))
		case html.TextToken:
			if skip == 0 {
				b.WriteString(strings.Join(strings.Fields(string(z.Text())), " "))
			}
		case html.StartTagToken, html.EndTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			switch a := atom.Lookup(name); a {
			case atom.Script, atom.Style, atom.Head, atom.Title:
				if tt == html.StartTagToken {
					skip++
				} else if tt == html.EndTagToken && skip > 0 {
					skip--
				}
			case atom.Br, atom.P, atom.Div, atom.Tr, atom.Li, atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6, atom.Blockquote, atom.Table:
				b.WriteByte('\n')
			case atom.Td, atom.Th:
				b.WriteByte(' ')
			}
		}
		if b.Len() > maxTextBytes {
			return strings.TrimSpace(collapseBlankLines(b.String()))
		}
	}
}

var blankLines = regexp.MustCompile(`\n[ \t]*(\n[ \t]*)+`)

func collapseBlankLines(s string) string { return blankLines.ReplaceAllString(s, "\n\n") }
