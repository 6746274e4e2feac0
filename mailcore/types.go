package mailcore

import (
	"strings"
	"time"
)

// Account statuses. Disabled: sign-in refused, mail still accepted. Left:
// sign-in refused; mail refused after the directory's grace period.
const (
	StatusActive   = "active"
	StatusDisabled = "disabled"
	StatusLeft     = "left"
)

// DefaultQuota is the per-account quota when none is given: 1 GiB.
const DefaultQuota int64 = 1 << 30

// Domain is a mail domain this installation is final destination for.
type Domain struct {
	ID        int64  `db:"id" json:"id"`
	Name      string `db:"name" json:"name"`
	CreatedAt int64  `db:"created_at" json:"created_at"`
}

// Account is one mailbox owner.
type Account struct {
	ID           int64  `db:"id" json:"id"`
	DomainID     int64  `db:"domain_id" json:"domain_id"`
	Address      string `db:"address" json:"address"`
	DisplayName  string `db:"display_name" json:"display_name"`
	PasswordHash string `db:"password_hash" json:"-"`
	Status       string `db:"status" json:"status"`
	QuotaBytes   int64  `db:"quota_bytes" json:"quota_bytes"`
	UsedBytes    int64  `db:"used_bytes" json:"used_bytes"`
	CreatedAt    int64  `db:"created_at" json:"created_at"`
	UpdatedAt    int64  `db:"updated_at" json:"updated_at"`

	NextUIDValidity int64 `db:"next_uidvalidity" json:"-"`
	// LeftAt is when the account became left (Unix seconds), nil otherwise.
	LeftAt *int64 `db:"left_at" json:"left_at,omitempty"`
}

// AcceptsMailAt reports whether mail for the account is accepted at now:
// always unless it has left, and for grace after it left.
func (a Account) AcceptsMailAt(now time.Time, grace time.Duration) bool {
	if a.Status != StatusLeft {
		return true
	}
	return a.LeftAt != nil && now.Before(time.Unix(*a.LeftAt, 0).Add(grace))
}

// HasPassword reports whether the account may sign in with a password (an
// SSO-only account has none).
func (a Account) HasPassword() bool { return a.PasswordHash != "" }

// Mailbox is one folder of an account. Name is the full path with '/'
// between levels; INBOX is always named "INBOX".
type Mailbox struct {
	ID            int64  `db:"id" json:"id"`
	AccountID     int64  `db:"account_id" json:"account_id"`
	Name          string `db:"name" json:"name"`
	SpecialUse    string `db:"special_use" json:"special_use,omitempty"`
	UIDValidity   uint32 `db:"uidvalidity" json:"uidvalidity"`
	UIDNext       uint32 `db:"uidnext" json:"uidnext"`
	HighestModSeq int64  `db:"highest_modseq" json:"highest_modseq"`
	Subscribed    bool   `db:"subscribed" json:"subscribed"`
	CreatedAt     int64  `db:"created_at" json:"created_at"`
}

// Special-use attributes (RFC 6154) of the mailboxes every account gets.
const (
	UseDrafts  = `\Drafts`
	UseSent    = `\Sent`
	UseTrash   = `\Trash`
	UseJunk    = `\Junk`
	UseArchive = `\Archive`
)

// DefaultMailboxes are created with every account, in this order.
var DefaultMailboxes = []struct{ Name, SpecialUse string }{
	{"INBOX", ""},
	{"Drafts", UseDrafts},
	{"Sent", UseSent},
	{"Trash", UseTrash},
	{"Junk", UseJunk},
	{"Archive", UseArchive},
}

// Flag bits of a message row. The low bits are the IMAP system flags; bits
// from FlagHasAttachment up are the store's own and never shown as flags.
type Flags uint32

const (
	FlagSeen     Flags = 1 << 0
	FlagAnswered Flags = 1 << 1
	FlagFlagged  Flags = 1 << 2
	FlagDeleted  Flags = 1 << 3
	FlagDraft    Flags = 1 << 4

	// FlagHasAttachment is set at delivery from the MIME structure.
	FlagHasAttachment Flags = 1 << 16

	systemFlags = FlagSeen | FlagAnswered | FlagFlagged | FlagDeleted | FlagDraft
)

var flagNames = []struct {
	f    Flags
	name string
}{
	{FlagSeen, `\Seen`}, {FlagAnswered, `\Answered`}, {FlagFlagged, `\Flagged`},
	{FlagDeleted, `\Deleted`}, {FlagDraft, `\Draft`},
}

// ParseFlag maps an IMAP system flag name (case-insensitive) to its bit.
func ParseFlag(name string) (Flags, bool) {
	for _, fn := range flagNames {
		if strings.EqualFold(fn.name, name) {
			return fn.f, true
		}
	}
	return 0, false
}

// Names lists the IMAP system flags set in f.
func (f Flags) Names() []string {
	var out []string
	for _, fn := range flagNames {
		if f&fn.f != 0 {
			out = append(out, fn.name)
		}
	}
	return out
}

// Message is one message row: everything but the body.
type Message struct {
	ID           int64   `db:"id" json:"id"`
	MailboxID    int64   `db:"mailbox_id" json:"mailbox_id"`
	UID          uint32  `db:"uid" json:"uid"`
	ModSeq       int64   `db:"modseq" json:"modseq"`
	BlobRowID    int64   `db:"blob_id" json:"-"`
	BlobSHA      []byte  `db:"sha" json:"-"`
	Flags        Flags   `db:"flags" json:"flags"`
	KeywordsRaw  *string `db:"keywords" json:"-"`
	InternalDate int64   `db:"internal_date" json:"internal_date"`
	Size         int64   `db:"size" json:"size"`
	SentDate     int64   `db:"sent_date" json:"sent_date"`
	From         string  `db:"from_addr" json:"from"`
	To           string  `db:"to_addr" json:"to"`
	Cc           string  `db:"cc_addr" json:"cc"`
	ReplyTo      *string `db:"reply_to" json:"reply_to,omitempty"`
	Subject      string  `db:"subject" json:"subject"`
	MessageID    string  `db:"message_id" json:"message_id"`
	InReplyTo    string  `db:"in_reply_to" json:"in_reply_to"`
	RefsRaw      *string `db:"refs" json:"-"`
	ThreadID     int64   `db:"thread_id" json:"thread_id"`
	Preview      string  `db:"preview" json:"preview"`
}

// BlobID returns the content address of the message's body.
func (m Message) BlobID() BlobID {
	var id BlobID
	copy(id[:], m.BlobSHA)
	return id
}

// Keywords returns the message's IMAP keywords.
func (m Message) Keywords() []string {
	if m.KeywordsRaw == nil {
		return nil
	}
	return strings.Fields(*m.KeywordsRaw)
}

// References returns the References msg-ids.
func (m Message) References() []string {
	if m.RefsRaw == nil {
		return nil
	}
	return strings.Fields(*m.RefsRaw)
}

// Internal returns InternalDate as a time.
func (m Message) Internal() time.Time { return time.Unix(m.InternalDate, 0) }

// Recipient is where one copy of a delivery lands.
type Recipient struct {
	AccountID int64
	MailboxID int64 // the account's INBOX, or another of its mailboxes
}

// DeliveryResult reports the fate of one recipient of a delivery.
type DeliveryResult struct {
	Recipient
	UID    uint32
	ModSeq int64
	Err    error // nil when delivered; ErrQuotaExceeded, ErrNotFound, ...
}
