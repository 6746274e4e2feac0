package webmail

import (
	"context"
	"strings"
)

// Junk keywords (RFC 5788 registry): set by the junk and notjunk actions
// so spam filters can learn from the user's verdict.
const (
	kwJunk    = "$Junk"
	kwNotJunk = "$NotJunk"
)

// setKeyword adds keyword add and removes keyword remove on the given
// messages (case-insensitively, RFC 9051 2.3.2); each changed message gets
// a new modseq (mailcore.Store.UpdateKeywords).
func (s *Service) setKeyword(ctx context.Context, mailboxID int64, uids []uint32, add, remove string) error {
	return s.store.UpdateKeywords(ctx, mailboxID, uids, func(have []string) []string {
		var next []string
		found := false
		for _, k := range have {
			switch {
			case strings.EqualFold(k, remove):
			case strings.EqualFold(k, add):
				found = true
				next = append(next, k)
			default:
				next = append(next, k)
			}
		}
		if !found {
			next = append(next, add)
		}
		return next
	})
}
