package mailcore

import "errors"

// Sentinel errors; test with errors.Is.
var (
	ErrNotFound           = errors.New("not found")
	ErrExists             = errors.New("already exists")
	ErrInvalidAddress     = errors.New("invalid address")
	ErrInvalidMailboxName = errors.New("invalid mailbox name")
	// ErrQuotaExceeded is temporary: the recipient may free space, so SMTP
	// answers 452 4.2.2 and the sender retries.
	ErrQuotaExceeded = errors.New("mailbox quota exceeded")
	// ErrMailboxNotEmpty: a mailbox with children cannot be deleted.
	ErrHasChildren = errors.New("mailbox has children")
	// ErrSpecialMailbox: INBOX cannot be deleted or renamed away.
	ErrSpecialMailbox = errors.New("operation not allowed on this mailbox")
	// ErrTooLarge: the message exceeds the store's size limit.
	ErrTooLarge = errors.New("message too large")
	// ErrStoreClosed: Deliver after (or racing) Close; nothing was
	// committed.
	ErrStoreClosed = errors.New("mail store closed")
	// errBlobPurging: the blob row for these bytes is being purged; the
	// delivery waits for the purge to finish and stores the bytes again.
	errBlobPurging = errors.New("blob is being purged")
)

// IsTemporary reports whether err is worth retrying later (an over-quota
// recipient, a busy database), as opposed to a permanent refusal.
func IsTemporary(err error) bool {
	if errors.Is(err, ErrQuotaExceeded) {
		return true
	}
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}
