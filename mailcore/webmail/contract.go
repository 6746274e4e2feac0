package webmail

// This file is the contract between the webmail service (service*.go,
// which implements Mail over the store) and its two faces: the JSON API
// (api*.go, this package) and the server-rendered pages (package
// mailcore/webmail/ui, which declares its own copy of what it uses and is
// satisfied by *Service). Change it only together with both faces.

import (
	"context"
	"net/http"
	"time"

	"github.com/govhub/govhub/mailcore"
)

// User is the signed-in person as webmail sees them.
type User struct {
	AccountID   int64
	Address     string
	DisplayName string
	PersonID    string // directory person id, "" outside the directory
	CSRF        string // the session's CSRF token, echoed in forms and X-CSRF-Token
	Method      string // how they signed in (saml, oidc, affairslink, password)
}

// Sessions tells who is signed in (sso implements it; cmd/govhub wires
// it). ok is false when r carries no live session.
type Sessions interface {
	User(r *http.Request) (u User, ok bool, err error)
}

// Directory is the address book as webmail uses it: autocomplete (name,
// pinyin full or initials, mail, department) and the compose deep link.
// directory implements it; cmd/govhub wires it. May be nil (no directory).
type Directory interface {
	Suggest(ctx context.Context, q string, limit int) ([]Contact, error)
	Contact(ctx context.Context, personID string) (Contact, error) // mailcore.ErrNotFound when unknown
}

// Contact is one autocomplete suggestion: a person or a department list.
type Contact struct {
	PersonID   string `json:"person_id,omitempty"`
	Name       string `json:"name"`
	Address    string `json:"address"`
	Department string `json:"department,omitempty"`
	Title      string `json:"title,omitempty"`
	IsGroup    bool   `json:"is_group,omitempty"` // a department distribution address
}

// Submitter sends a message as an account through the same path as SMTP
// submission (sender check, department lists, local delivery, remote
// queue); mailcore/smtpserver's Server implements it. raw is a complete
// RFC 5322 message with CRLF line endings.
type Submitter interface {
	Submit(ctx context.Context, acct mailcore.Account, from string, rcpts []string, raw []byte) error
}

// FullText finds messages by words, Chinese included (mailcore/search).
type FullText interface {
	Search(ctx context.Context, accountID int64, query string, limit int) ([]Hit, error)
}

// Hit is one full-text match.
type Hit struct {
	MailboxID int64
	UID       uint32
}

// AppPasswords manages the signed-in user's desktop-client passwords
// (sso implements it). May be nil.
type AppPasswords interface {
	CreateAppPassword(ctx context.Context, u User, name string) (secret string, ap AppPassword, err error)
	AppPasswords(ctx context.Context, u User) ([]AppPassword, error)
	RevokeAppPassword(ctx context.Context, u User, id int64) error
}

// AppPassword is one desktop-client password, as listed (never the secret).
type AppPassword struct {
	ID         int64  `json:"id"`
	Name       string `json:"name"`
	CreatedAt  int64  `json:"created_at"`
	LastUsedAt int64  `json:"last_used_at"`
}

// Mail is everything the pages and the API do with mail. Every method
// acts only on the user's own account: a folder or message id of another
// account is mailcore.ErrNotFound, exactly as if it did not exist.
type Mail interface {
	Folders(ctx context.Context, u User) ([]Folder, error)
	Quota(ctx context.Context, u User) (Quota, error)
	// List pages through one folder.
	List(ctx context.Context, u User, q ListQuery) (ListPage, error)
	// Search looks in every folder (or q.FolderID when set).
	Search(ctx context.Context, u User, q SearchQuery) (ListPage, error)
	// Read returns a message for display and marks it \Seen.
	Read(ctx context.Context, u User, folderID int64, uid uint32, opts ReadOptions) (View, error)
	// Raw returns the message as stored (download, "view source").
	Raw(ctx context.Context, u User, folderID int64, uid uint32) ([]byte, error)
	// Part returns one attachment or inline part, decoded.
	Part(ctx context.Context, u User, folderID int64, uid uint32, partID string) (Part, []byte, error)
	// PartsData returns the decoded data of several parts in one reading
	// of the message (inline images of an HTML body), stopping once
	// maxTotal bytes are collected; parts not found are absent from the map.
	PartsData(ctx context.Context, u User, folderID int64, uid uint32, partIDs []string, maxTotal int) (map[string][]byte, error)
	// Act applies one action to messages of one folder; Move needs target.
	Act(ctx context.Context, u User, folderID int64, uids []uint32, a Action, target int64) error
	CreateFolder(ctx context.Context, u User, name string) (Folder, error)
	RenameFolder(ctx context.Context, u User, folderID int64, newName string) error
	DeleteFolder(ctx context.Context, u User, folderID int64) error
	// Compose prefills a reply, reply-all or forward of a message (mode
	// "reply", "all", "forward"), or a new message to the given person
	// (the /compose?to=PERSON deep link; mode "new"). Mode "draft"
	// reopens a saved draft (folderID, uid) with DraftUID set.
	Compose(ctx context.Context, u User, mode string, folderID int64, uid uint32, toPerson string) (Draft, error)
	// Send sends d (and removes its saved draft, if any); it returns the
	// copy stored in Sent.
	Send(ctx context.Context, u User, d Draft) (MessageRef, error)
	// SaveDraft stores d in Drafts, replacing d.DraftUID when set.
	SaveDraft(ctx context.Context, u User, d Draft) (MessageRef, error)
	Settings(ctx context.Context, u User) (Settings, error)
	SaveSettings(ctx context.Context, u User, s Settings) error
	// Suggest is address autocomplete (the directory, then the user's
	// recent correspondents).
	Suggest(ctx context.Context, u User, q string, limit int) ([]Contact, error)
	// Badge is the unread count of INBOX and the newest few unread subjects.
	Badge(ctx context.Context, u User, n int) (Badge, error)
}

// Folder is one mailbox with its counts.
type Folder struct {
	ID         int64  `json:"id"`
	Name       string `json:"name"`        // full IMAP name, "/"-separated
	SpecialUse string `json:"special_use"` // \Inbox-less: "\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive", ""
	Messages   int    `json:"messages"`
	Unread     int    `json:"unread"`
}

// Quota is the account's use of its quota, in bytes (0 quota: unlimited).
type Quota struct {
	UsedBytes  int64 `json:"used_bytes"`
	QuotaBytes int64 `json:"quota_bytes"`
}

// Sort orders a list.
type Sort string

const (
	SortDateDesc Sort = "date"  // newest first (default)
	SortDateAsc  Sort = "-date" // oldest first
	SortFrom     Sort = "from"
	SortSubject  Sort = "subject"
	SortSize     Sort = "size"
)

// ListQuery picks one page of a folder.
type ListQuery struct {
	FolderID int64
	Page     int // from 1
	PerPage  int // default 50, at most 200
	Sort     Sort
	Threads  bool // one row per thread (its newest message, with a count)
	Unread   bool // only unread
}

// SearchQuery is webmail's search form; every set field must match.
type SearchQuery struct {
	FolderID      int64 // 0: every folder
	From          string
	To            string
	Subject       string
	Text          string // full text, Chinese included
	Since, Before time.Time
	HasAttachment bool
	Page, PerPage int
}

// ListPage is one page of summaries.
type ListPage struct {
	Items   []Summary `json:"items"`
	Page    int       `json:"page"`
	PerPage int       `json:"per_page"`
	Total   int       `json:"total"`
}

// Summary is one row of a message list (no body read).
type Summary struct {
	FolderID      int64     `json:"folder_id"`
	UID           uint32    `json:"uid"`
	From          string    `json:"from"`
	To            string    `json:"to"`
	Subject       string    `json:"subject"`
	Preview       string    `json:"preview"`
	Date          time.Time `json:"date"`
	Size          int64     `json:"size"`
	Seen          bool      `json:"seen"`
	Flagged       bool      `json:"flagged"`
	Answered      bool      `json:"answered"`
	HasAttachment bool      `json:"has_attachment"`
	ThreadID      int64     `json:"thread_id"`
	ThreadCount   int       `json:"thread_count,omitempty"` // with ListQuery.Threads
}

// ReadOptions tune Read.
type ReadOptions struct {
	// RemoteImages lets the sanitised HTML keep http(s) image sources;
	// otherwise they are removed and View.RemoteBlocked says so.
	RemoteImages bool
}

// View is one message for display. HTML is already sanitised (scripts,
// event handlers, javascript: URLs, CSS expressions, forms and frames
// removed; cid: images pointed at Part URLs) and must still be shown only
// in a sandboxed frame under a CSP that forbids script.
type View struct {
	Summary
	Cc            string            `json:"cc"`
	ReplyTo       string            `json:"reply_to,omitempty"`
	MessageID     string            `json:"message_id"`
	Text          string            `json:"text"`           // the text/plain part (or text derived from HTML)
	HTML          string            `json:"html,omitempty"` // sanitised
	RemoteBlocked bool              `json:"remote_blocked"` // remote images were removed
	Parts         []Part            `json:"parts"`          // attachments and inline parts
	Headers       map[string]string `json:"headers"`        // decoded top-level headers, for "show headers"
	Alert         bool              `json:"alert,omitempty"`
}

// Part is an attachment or inline part of a message.
type Part struct {
	ID          string `json:"id"` // "1.2": the MIME part path
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	Inline      bool   `json:"inline"`
	ContentID   string `json:"content_id,omitempty"`
}

// Action is what Act does.
type Action string

const (
	ActRead    Action = "read"
	ActUnread  Action = "unread"
	ActFlag    Action = "flag"
	ActUnflag  Action = "unflag"
	ActMove    Action = "move"    // to target
	ActDelete  Action = "delete"  // to Trash; in Trash: expunge
	ActArchive Action = "archive" // to Archive (created when missing)
	ActJunk    Action = "junk"    // to Junk, flagged $Junk
	ActNotJunk Action = "notjunk" // to INBOX, flagged $NotJunk
)

// Draft is a message being written.
type Draft struct {
	To, Cc, Bcc []string
	Subject     string
	Text        string
	InReplyTo   string   // Message-ID replied to
	References  []string // msg-ids
	Attachments []Upload
	// Forwarded parts of the original message, attached when sending.
	ForwardFolderID int64
	ForwardUID      uint32
	// DraftUID is the saved draft this replaces (0: none).
	DraftUID uint32
	// KeepParts are the Content-IDs of the replaced draft's attachments
	// to carry into this message (the rest were removed by the writer);
	// DraftParts lists them when a draft is resumed (Compose "draft").
	KeepParts  []string
	DraftParts []Part
	// ReplyFolderID and ReplyUID name the message this answers (Compose
	// fills them), so Send marks it \Answered; 0: found by InReplyTo.
	ReplyFolderID int64
	ReplyUID      uint32
	// Alert asks for an SMS/IM alert to the recipients (sender-requested
	// alert); honoured only for senders allowed to use it, stored with the
	// message until the notify module exists.
	Alert bool
}

// Upload is an attached file.
type Upload struct {
	Name        string
	ContentType string
	Data        []byte
	// ContentID names the attachment across saves of a draft ("" on
	// upload: one is made when the message is built).
	ContentID string
}

// MessageRef names a stored message.
type MessageRef struct {
	FolderID int64  `json:"folder_id"`
	UID      uint32 `json:"uid"`
}

// Settings are the user's webmail preferences.
type Settings struct {
	DisplayName string `json:"display_name"`
	Signature   string `json:"signature"`
	Language    string `json:"language"` // "zh-CN" (default) or "en"
	PerPage     int    `json:"per_page"`
}

// Badge is what the portal shows beside its "mail" button.
type Badge struct {
	Unread int           `json:"unread"`
	Recent []BadgeRecent `json:"recent"`
}

// BadgeRecent is one of the newest unread messages.
type BadgeRecent struct {
	FolderID int64     `json:"folder_id"`
	UID      uint32    `json:"uid"`
	From     string    `json:"from"`
	Subject  string    `json:"subject"`
	Date     time.Time `json:"date"`
}
