package ui

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/govhub/govhub/mailcore"
	"github.com/govhub/govhub/mailcore/webmail"
)

// fakeSessions signs in whoever carries the "sid" cookie "alice".
type fakeSessions struct{ u webmail.User }

func (s fakeSessions) User(r *http.Request) (webmail.User, bool, error) {
	c, err := r.Cookie("sid")
	if err != nil || c.Value != "alice" {
		return webmail.User{}, false, nil
	}
	return s.u, true, nil
}

var alice = webmail.User{AccountID: 7, Address: "alice@gov.example", DisplayName: "李丽", CSRF: "csrf-secret-token", Method: "oidc"}

type fakeMsg struct {
	view  webmail.View
	parts map[string][]byte
}

// fakeMail is an in-memory webmail.Mail that records what it was asked.
type fakeMail struct {
	mu       sync.Mutex
	folders  []webmail.Folder
	msgs     map[int64][]*fakeMsg
	settings webmail.Settings
	quota    webmail.Quota
	nextUID  uint32

	acts      []string
	sent      []webmail.Draft
	saved     []webmail.Draft
	composed  []string
	searches  []webmail.SearchQuery
	created   []string
	renamed   []string
	deleted   []int64
	saves     []webmail.Settings
	suggested []string
	reads     []webmail.ReadOptions
	failSend  error
}

const (
	inboxID   = 1
	sentID    = 2
	draftsID  = 3
	trashID   = 4
	junkID    = 5
	archiveID = 6
	projectID = 7
)

func newFakeMail(now time.Time) *fakeMail {
	m := &fakeMail{
		folders: []webmail.Folder{
			{ID: inboxID, Name: "INBOX"},
			{ID: sentID, Name: "Sent", SpecialUse: "\\Sent"},
			{ID: draftsID, Name: "Drafts", SpecialUse: "\\Drafts"},
			{ID: trashID, Name: "Trash", SpecialUse: "\\Trash"},
			{ID: junkID, Name: "Junk", SpecialUse: "\\Junk"},
			{ID: archiveID, Name: "Archive", SpecialUse: "\\Archive"},
			{ID: projectID, Name: "项目/2026"},
		},
		msgs:    map[int64][]*fakeMsg{},
		quota:   webmail.Quota{UsedBytes: 300 << 20, QuotaBytes: 1 << 30},
		nextUID: 100,
	}
	subjects := []string{"关于召开2026年第一季度工作会议的通知", "Budget review", "请审阅附件中的报告", "周五例会纪要", "Re: 数据同步", "培训报名"}
	for i, s := range subjects {
		uid := uint32(i + 1)
		v := webmail.View{Summary: webmail.Summary{FolderID: inboxID, UID: uid, From: fmt.Sprintf("王伟%d <wang%d@gov.example>", i, i),
			To: "alice@gov.example", Subject: s, Preview: "各位同事：请于周一上午九点准时参加。", Date: now.Add(-time.Duration(i) * 26 * time.Hour),
			Size: int64(2048 * (i + 1)), Seen: i%2 == 1, Flagged: i == 2, HasAttachment: i == 2, ThreadID: int64(i + 1)},
			MessageID: fmt.Sprintf("<m%d@gov.example>", i), Text: "各位同事：\n\n请于周一上午九点准时参加。\n\n办公室",
			Headers: map[string]string{"From": fmt.Sprintf("王伟%d <wang%d@gov.example>", i, i), "Subject": s, "Message-Id": fmt.Sprintf("<m%d@gov.example>", i)}}
		if i == 0 {
			v.HTML = `<p style="color:#333">各位同事：</p><p>请于<b>周一上午九点</b>准时参加。</p>`
			v.RemoteBlocked = true
		}
		if i == 2 {
			v.Parts = []webmail.Part{{ID: "2", Name: "报告.pdf", ContentType: "application/pdf", Size: 12345}, {ID: "3", Name: "page.html", ContentType: "text/html", Size: 30}}
		}
		msg := &fakeMsg{view: v, parts: map[string][]byte{"2": []byte("%PDF-1.4 fake"), "3": []byte("<script>alert(1)</script>")}}
		m.msgs[inboxID] = append(m.msgs[inboxID], msg)
	}
	m.recount()
	return m
}

// addHostile stores a message whose "sanitised" HTML is deliberately
// hostile, as if the sanitiser had failed.
func (m *fakeMail) addHostile(html string, date time.Time) uint32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	uid := m.nextUID
	m.nextUID++
	v := webmail.View{Summary: webmail.Summary{FolderID: inboxID, UID: uid, From: "攻击者 <evil@bad.example>", To: "alice@gov.example",
		Subject: "恶意邮件测试", Date: date, Size: 999}, Text: "hostile", HTML: html, Headers: map[string]string{}}
	m.msgs[inboxID] = append(m.msgs[inboxID], &fakeMsg{view: v})
	m.recount()
	return uid
}

func (m *fakeMail) recount() {
	for i, f := range m.folders {
		n, u := 0, 0
		for _, msg := range m.msgs[f.ID] {
			n++
			if !msg.view.Seen {
				u++
			}
		}
		m.folders[i].Messages, m.folders[i].Unread = n, u
	}
}

func (m *fakeMail) folder(id int64) bool {
	for _, f := range m.folders {
		if f.ID == id {
			return true
		}
	}
	return false
}

func (m *fakeMail) find(folder int64, uid uint32) *fakeMsg {
	for _, msg := range m.msgs[folder] {
		if msg.view.UID == uid {
			return msg
		}
	}
	return nil
}

func (m *fakeMail) Folders(ctx context.Context, u webmail.User) ([]webmail.Folder, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]webmail.Folder(nil), m.folders...), nil
}

func (m *fakeMail) Quota(ctx context.Context, u webmail.User) (webmail.Quota, error) {
	return m.quota, nil
}

func page1(items []webmail.Summary, p, per int) webmail.ListPage {
	if per <= 0 {
		per = 50
	}
	if p < 1 {
		p = 1
	}
	lp := webmail.ListPage{Page: p, PerPage: per, Total: len(items)}
	lo := (p - 1) * per
	if lo < len(items) {
		lp.Items = items[lo:min(len(items), lo+per)]
	}
	return lp
}

func (m *fakeMail) List(ctx context.Context, u webmail.User, q webmail.ListQuery) (webmail.ListPage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.folder(q.FolderID) {
		return webmail.ListPage{}, mailcore.ErrNotFound
	}
	var items []webmail.Summary
	for _, msg := range m.msgs[q.FolderID] {
		if q.Unread && msg.view.Seen {
			continue
		}
		items = append(items, msg.view.Summary)
	}
	sort.SliceStable(items, func(i, j int) bool {
		a, b := items[i], items[j]
		switch q.Sort {
		case webmail.SortDateAsc:
			return a.Date.Before(b.Date)
		case webmail.SortFrom:
			return a.From < b.From
		case webmail.SortSubject:
			return a.Subject < b.Subject
		case webmail.SortSize:
			return a.Size > b.Size
		}
		return a.Date.After(b.Date)
	})
	return page1(items, q.Page, q.PerPage), nil
}

func (m *fakeMail) Search(ctx context.Context, u webmail.User, q webmail.SearchQuery) (webmail.ListPage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.searches = append(m.searches, q)
	var items []webmail.Summary
	for _, f := range m.folders {
		if q.FolderID != 0 && f.ID != q.FolderID {
			continue
		}
		for _, msg := range m.msgs[f.ID] {
			s := msg.view.Summary
			if (q.Subject == "" || strings.Contains(s.Subject, q.Subject)) && (q.Text == "" || strings.Contains(msg.view.Text+s.Subject, q.Text)) &&
				(q.From == "" || strings.Contains(s.From, q.From)) && (!q.HasAttachment || s.HasAttachment) {
				items = append(items, s)
			}
		}
	}
	return page1(items, q.Page, q.PerPage), nil
}

func (m *fakeMail) Read(ctx context.Context, u webmail.User, folderID int64, uid uint32, opts webmail.ReadOptions) (webmail.View, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads = append(m.reads, opts)
	msg := m.find(folderID, uid)
	if msg == nil {
		return webmail.View{}, mailcore.ErrNotFound
	}
	msg.view.Seen = true
	m.recount()
	v := msg.view
	if opts.RemoteImages {
		v.RemoteBlocked = false
	}
	return v, nil
}

func (m *fakeMail) Raw(ctx context.Context, u webmail.User, folderID int64, uid uint32) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	msg := m.find(folderID, uid)
	if msg == nil {
		return nil, mailcore.ErrNotFound
	}
	return []byte("Subject: " + msg.view.Subject + "\r\n\r\n" + msg.view.Text), nil
}

func (m *fakeMail) Part(ctx context.Context, u webmail.User, folderID int64, uid uint32, partID string) (webmail.Part, []byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	msg := m.find(folderID, uid)
	if msg == nil {
		return webmail.Part{}, nil, mailcore.ErrNotFound
	}
	for _, p := range msg.view.Parts {
		if p.ID == partID {
			return p, msg.parts[partID], nil
		}
	}
	return webmail.Part{}, nil, mailcore.ErrNotFound
}

func (m *fakeMail) PartsData(ctx context.Context, u webmail.User, folderID int64, uid uint32, ids []string, maxTotal int) (map[string][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	msg := m.find(folderID, uid)
	if msg == nil {
		return nil, mailcore.ErrNotFound
	}
	out := map[string][]byte{}
	total := 0
	for _, id := range ids {
		if d, ok := msg.parts[id]; ok && total+len(d) <= maxTotal {
			out[id] = d
			total += len(d)
		}
	}
	return out, nil
}

func (m *fakeMail) Act(ctx context.Context, u webmail.User, folderID int64, uids []uint32, a webmail.Action, target int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.acts = append(m.acts, fmt.Sprintf("%d:%v:%s:%d", folderID, uids, a, target))
	return nil
}

func (m *fakeMail) CreateFolder(ctx context.Context, u webmail.User, name string) (webmail.Folder, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, f := range m.folders {
		if f.Name == name {
			return webmail.Folder{}, mailcore.ErrExists
		}
	}
	m.created = append(m.created, name)
	f := webmail.Folder{ID: int64(len(m.folders) + 100), Name: name}
	m.folders = append(m.folders, f)
	return f, nil
}

func (m *fakeMail) RenameFolder(ctx context.Context, u webmail.User, folderID int64, newName string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if folderID == inboxID {
		return mailcore.ErrSpecialMailbox
	}
	m.renamed = append(m.renamed, fmt.Sprintf("%d:%s", folderID, newName))
	return nil
}

func (m *fakeMail) DeleteFolder(ctx context.Context, u webmail.User, folderID int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.deleted = append(m.deleted, folderID)
	return nil
}

func (m *fakeMail) Compose(ctx context.Context, u webmail.User, mode string, folderID int64, uid uint32, toPerson string) (webmail.Draft, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.composed = append(m.composed, fmt.Sprintf("%s:%d:%d:%s", mode, folderID, uid, toPerson))
	switch mode {
	case "new":
		if toPerson == "p-zhangsan" {
			return webmail.Draft{To: []string{"张三 <zhangsan@gov.example>"}}, nil
		}
		return webmail.Draft{}, mailcore.ErrNotFound
	case "reply", "all", "forward":
		msg := m.find(folderID, uid)
		if msg == nil {
			return webmail.Draft{}, mailcore.ErrNotFound
		}
		d := webmail.Draft{Subject: "Re: " + msg.view.Subject, To: []string{msg.view.From}, InReplyTo: msg.view.MessageID,
			References: []string{msg.view.MessageID}, Text: "\n> " + strings.ReplaceAll(msg.view.Text, "\n", "\n> ")}
		d.ReplyFolderID, d.ReplyUID = folderID, uid
		if mode == "forward" {
			d.ReplyFolderID, d.ReplyUID = 0, 0
			d.Subject, d.To, d.ForwardFolderID, d.ForwardUID = "Fwd: "+msg.view.Subject, nil, folderID, uid
		}
		return d, nil
	case "draft":
		msg := m.find(folderID, uid)
		if msg == nil || folderID != draftsID {
			return webmail.Draft{}, mailcore.ErrNotFound
		}
		d := webmail.Draft{To: []string{msg.view.To}, Subject: msg.view.Subject, Text: msg.view.Text, DraftUID: uid, Alert: msg.view.Alert}
		for _, p := range msg.view.Parts {
			if p.ContentID != "" && !p.Inline {
				d.DraftParts = append(d.DraftParts, p)
				d.KeepParts = append(d.KeepParts, p.ContentID)
			}
		}
		return d, nil
	}
	return webmail.Draft{}, mailcore.ErrNotFound
}

func (m *fakeMail) Send(ctx context.Context, u webmail.User, d webmail.Draft) (webmail.MessageRef, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failSend != nil {
		return webmail.MessageRef{}, m.failSend
	}
	m.sent = append(m.sent, d)
	m.nextUID++
	return webmail.MessageRef{FolderID: sentID, UID: m.nextUID}, nil
}

func (m *fakeMail) SaveDraft(ctx context.Context, u webmail.User, d webmail.Draft) (webmail.MessageRef, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.saved = append(m.saved, d)
	if d.DraftUID != 0 {
		return webmail.MessageRef{FolderID: draftsID, UID: d.DraftUID}, nil
	}
	m.nextUID++
	return webmail.MessageRef{FolderID: draftsID, UID: m.nextUID}, nil
}

func (m *fakeMail) Settings(ctx context.Context, u webmail.User) (webmail.Settings, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.settings, nil
}

func (m *fakeMail) SaveSettings(ctx context.Context, u webmail.User, s webmail.Settings) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.saves = append(m.saves, s)
	m.settings = s
	return nil
}

func (m *fakeMail) Suggest(ctx context.Context, u webmail.User, q string, limit int) ([]webmail.Contact, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.suggested = append(m.suggested, q)
	all := []webmail.Contact{
		{PersonID: "p-zhangsan", Name: "张三", Address: "zhangsan@gov.example", Department: "办公厅"},
		{PersonID: "p-zhangsi", Name: "张思", Address: "zhangsi@gov.example", Department: "财政厅"},
	}
	var out []webmail.Contact
	for _, c := range all {
		// Pinyin initials ("zs") or the start of the address, as the real
		// directory does.
		if strings.HasPrefix(c.Address, q) || q == "zs" || strings.Contains(c.Name, q) {
			out = append(out, c)
		}
	}
	return out, nil
}

func (m *fakeMail) Badge(ctx context.Context, u webmail.User, n int) (webmail.Badge, error) {
	return webmail.Badge{}, nil
}

// fakeAppPasswords is an in-memory webmail.AppPasswords.
type fakeAppPasswords struct {
	mu      sync.Mutex
	list    []webmail.AppPassword
	revoked []int64
}

func (a *fakeAppPasswords) CreateAppPassword(ctx context.Context, u webmail.User, name string) (string, webmail.AppPassword, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ap := webmail.AppPassword{ID: int64(len(a.list) + 1), Name: name, CreatedAt: 1780000000}
	a.list = append(a.list, ap)
	return "abcd-efgh-ijkl-mnop", ap, nil
}

func (a *fakeAppPasswords) AppPasswords(ctx context.Context, u webmail.User) ([]webmail.AppPassword, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]webmail.AppPassword(nil), a.list...), nil
}

func (a *fakeAppPasswords) RevokeAppPassword(ctx context.Context, u webmail.User, id int64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.revoked = append(a.revoked, id)
	return nil
}

var (
	_ webmail.Mail         = (*fakeMail)(nil)
	_ webmail.AppPasswords = (*fakeAppPasswords)(nil)
)
