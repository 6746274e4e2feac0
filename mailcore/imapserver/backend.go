package imapserver

import (
	"context"
	"errors"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-imap"
	"github.com/emersion/go-imap/backend"
	"github.com/emersion/go-imap/utf7"
	"github.com/govhub/govhub/mailcore"
)

// queryTimeout bounds one command's store work.
const queryTimeout = 2 * time.Minute

// backendShim satisfies go-imap's Backend; LOGIN and AUTHENTICATE are our
// own handlers, so its Login is never the way in.
type backendShim struct{ limit uint32 }

func (*backendShim) Login(*imap.ConnInfo, string, string) (backend.User, error) {
	return nil, backend.ErrInvalidCredentials
}

// CreateMessageLimit makes go-imap's greeting say APPENDLIMIT=n (RFC 7889)
// as our CAPABILITY does.
func (b *backendShim) CreateMessageLimit() *uint32 { return &b.limit }

var _ backend.AppendLimitBackend = (*backendShim)(nil)

func decodeName(s string) (string, error) {
	out, err := utf7.Encoding.NewDecoder().String(s)
	if err != nil {
		return "", errors.New("Invalid mailbox name encoding")
	}
	return out, nil
}

func encodeName(s string) string {
	out, _ := utf7.Encoding.NewEncoder().String(s)
	return out
}

// user is the signed-in account of one session.
type user struct{ sess *session }

var _ backend.User = (*user)(nil)

func (u *user) Username() string { return u.sess.acct.Address }

// ctx bounds one store call and marks its changes as this session's, so
// the flag events they produce are not played back to it.
func (u *user) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(mailcore.WithOrigin(u.sess.s.ctx, u.sess.origin), queryTimeout)
}

func (u *user) ListMailboxes(subscribed bool) ([]backend.Mailbox, error) {
	ctx, cancel := u.ctx()
	defer cancel()
	mbs, err := u.sess.s.store.Mailboxes(ctx, u.sess.acct.ID)
	if err != nil {
		return nil, u.sess.protoErr("list", err)
	}
	parents := map[string]bool{}
	for _, m := range mbs {
		if i := strings.LastIndexByte(m.Name, '/'); i > 0 {
			for p := m.Name[:i]; ; {
				parents[p] = true
				j := strings.LastIndexByte(p, '/')
				if j < 0 {
					break
				}
				p = p[:j]
			}
		}
	}
	var out []backend.Mailbox
	for _, m := range mbs {
		if subscribed && !m.Subscribed {
			continue
		}
		out = append(out, &mailbox{u: u, mb: m, hasChildren: parents[m.Name]})
	}
	return out, nil
}

// cleanName validates a client's (already UTF-7-decoded) mailbox name:
// RFC 9051 5.1 names, refused by CleanMailboxName when they hold "..",
// control characters or empty levels.
func cleanName(name string) (string, error) {
	return mailcore.CleanMailboxName(name)
}

func (u *user) GetMailbox(name string) (backend.Mailbox, error) {
	name, err := cleanName(name)
	if err != nil {
		return nil, u.sess.protoErr("getmailbox", err)
	}
	ctx, cancel := u.ctx()
	defer cancel()
	m, err := u.sess.s.store.MailboxByName(ctx, u.sess.acct.ID, name)
	if errors.Is(err, mailcore.ErrNotFound) {
		return nil, backend.ErrNoSuchMailbox
	}
	if err != nil {
		return nil, u.sess.protoErr("getmailbox", err)
	}
	return &mailbox{u: u, mb: m}, nil
}

func (u *user) CreateMailbox(name string) error {
	// RFC 9051 6.3.4: a trailing delimiter declares intent to create
	// children; the name itself is created without it.
	name = strings.TrimSuffix(name, "/")
	name, err := cleanName(name)
	if err != nil {
		return u.sess.protoErr("create", err)
	}
	ctx, cancel := u.ctx()
	defer cancel()
	_, err = u.sess.s.store.CreateMailbox(ctx, u.sess.acct.ID, name, "")
	return u.sess.protoErr("create", err)
}

func (u *user) DeleteMailbox(name string) error {
	name, err := cleanName(name)
	if err != nil {
		return u.sess.protoErr("delete", err)
	}
	ctx, cancel := u.ctx()
	defer cancel()
	return u.sess.protoErr("delete", u.sess.s.store.DeleteMailbox(ctx, u.sess.acct.ID, name))
}

func (u *user) RenameMailbox(from, to string) error {
	from, err := cleanName(from)
	if err != nil {
		return u.sess.protoErr("rename", err)
	}
	to, err = cleanName(to)
	if err != nil {
		return u.sess.protoErr("rename", err)
	}
	ctx, cancel := u.ctx()
	defer cancel()
	return u.sess.protoErr("rename", u.sess.s.store.RenameMailbox(ctx, u.sess.acct.ID, from, to))
}

func (u *user) Logout() error {
	u.sess.deselect()
	return nil
}

// mailbox is one of the account's mailboxes, as go-imap's backend sees it.
type mailbox struct {
	u           *user
	mb          mailcore.Mailbox
	hasChildren bool
}

var (
	_ backend.Mailbox       = (*mailbox)(nil)
	_ backend.MoveMailbox   = (*mailbox)(nil)
	_ backend.MailboxPoller = (*mailbox)(nil)
)

func (m *mailbox) Name() string { return m.mb.Name }

// Info is the LIST entry: CHILDREN (RFC 3348) and SPECIAL-USE (RFC 6154)
// attributes; go-imap encodes the name in modified UTF-7.
func (m *mailbox) Info() (*imap.MailboxInfo, error) {
	attrs := []string{imap.HasNoChildrenAttr}
	if m.hasChildren {
		attrs = []string{imap.HasChildrenAttr}
	}
	if m.mb.SpecialUse != "" {
		attrs = append(attrs, m.mb.SpecialUse)
	}
	return &imap.MailboxInfo{Attributes: attrs, Delimiter: "/", Name: m.mb.Name}, nil
}

// Status answers STATUS from rows only (RFC 9051 6.3.11).
func (m *mailbox) Status(items []imap.StatusItem) (*imap.MailboxStatus, error) {
	ctx, cancel := m.u.ctx()
	defer cancel()
	st := imap.NewMailboxStatus(m.mb.Name, items)
	st.Flags = []string{imap.SeenFlag, imap.AnsweredFlag, imap.FlaggedFlag, imap.DeletedFlag, imap.DraftFlag}
	st.PermanentFlags = append(append([]string{}, st.Flags...), `\*`)
	fresh, err := m.u.sess.s.store.Mailbox(ctx, m.mb.ID)
	if err != nil {
		return nil, m.u.sess.protoErr("status", err)
	}
	m.mb = fresh
	counts, err := m.u.sess.s.store.Counts(ctx, m.mb.ID)
	if err != nil {
		return nil, m.u.sess.protoErr("status", err)
	}
	for _, it := range items {
		switch it {
		case imap.StatusMessages:
			st.Messages = uint32(counts.Messages)
		case imap.StatusRecent:
			st.Recent = 0
		case imap.StatusUidNext:
			st.UidNext = fresh.UIDNext
		case imap.StatusUidValidity:
			st.UidValidity = fresh.UIDValidity
		case imap.StatusUnseen:
			st.Unseen = uint32(counts.Unseen)
		}
	}
	return st, nil
}

func (m *mailbox) SetSubscribed(on bool) error {
	ctx, cancel := m.u.ctx()
	defer cancel()
	return m.u.sess.protoErr("subscribe", m.u.sess.s.store.SetSubscribed(ctx, m.mb.ID, on))
}

// Check is NOOP for us (RFC 9051 removed CHECK; 3501 6.4.1) and reports
// pending changes.
func (m *mailbox) Check() error { return m.Poll() }

// Poll runs at NOOP: the changes the poller recorded are sent now.
func (m *mailbox) Poll() error {
	sess := m.u.sess
	sess.sync()
	sess.flush()
	return nil
}

// selection returns the session's view when m is the selected mailbox.
func (m *mailbox) selection() (*selection, error) {
	sess := m.u.sess
	sess.sync()
	if sess.sel == nil || sess.sel.box != m {
		return nil, no("", "No mailbox selected")
	}
	return sess.sel, nil
}

// resolve turns a sequence or UID set into UIDs of the session's view, in
// ascending order. RFC 9051 6.4.8: UIDs not in the view are ignored, and
// "*" is the last message.
func (sel *selection) resolve(uid bool, set *imap.SeqSet) []uint32 {
	n := uint32(len(sel.uids))
	if n == 0 {
		return nil
	}
	var out []uint32
	for _, sq := range set.Set {
		lo, hi := sq.Start, sq.Stop
		if uid {
			max := sel.maxUID()
			if lo == 0 {
				lo = max
			}
			if hi == 0 {
				hi = max
			}
			if lo > hi {
				lo, hi = hi, lo
			}
			i := sort.Search(len(sel.uids), func(i int) bool { return sel.uids[i] >= lo })
			for ; i < len(sel.uids) && sel.uids[i] <= hi; i++ {
				out = append(out, sel.uids[i])
			}
			continue
		}
		if lo == 0 {
			lo = n
		}
		if hi == 0 {
			hi = n
		}
		if lo > hi {
			lo, hi = hi, lo
		}
		if lo > n {
			continue
		}
		hi = min(hi, n)
		out = append(out, sel.uids[lo-1:hi]...)
	}
	if len(set.Set) > 1 {
		sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
		out = dedupe(out)
	}
	return out
}

func dedupe(xs []uint32) []uint32 {
	if len(xs) < 2 {
		return xs
	}
	j := 1
	for i := 1; i < len(xs); i++ {
		if xs[i] != xs[j-1] {
			xs[j] = xs[i]
			j++
		}
	}
	return xs[:j]
}

func (m *mailbox) SearchMessages(uid bool, c *imap.SearchCriteria) ([]uint32, error) {
	sel, err := m.selection()
	if err != nil {
		return nil, err
	}
	ctx, cancel := m.u.ctx()
	defer cancel()
	uids, err := search(ctx, m.u.sess, sel, c)
	if err != nil {
		return nil, err
	}
	if uid {
		return uids, nil
	}
	out := make([]uint32, 0, len(uids))
	for _, u := range uids {
		if s := sel.seqOf(u); s != 0 {
			out = append(out, s)
		}
	}
	return out, nil
}

// CreateMessage is APPEND (RFC 9051 6.3.12) through the store's durable
// delivery, answering APPENDUID (RFC 4315 3).
func (m *mailbox) CreateMessage(flags []string, date time.Time, body imap.Literal) error {
	sess := m.u.sess
	if int64(body.Len()) > sess.s.cfg.MaxLiteral {
		return no("TOOBIG", "Message too large")
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		return sess.protoErr("append", err)
	}
	fl, kws := parseFlags(flags)
	ctx, cancel := m.u.ctx()
	defer cancel()
	res, err := sess.s.store.Deliver(ctx, raw, []mailcore.Recipient{{AccountID: sess.acct.ID, MailboxID: m.mb.ID}},
		mailcore.DeliverOptions{Flags: fl, Keywords: kws, InternalDate: date})
	if err != nil {
		return sess.protoErr("append", err)
	}
	if len(res) != 1 {
		return sess.protoErr("append", errors.New("no delivery result"))
	}
	if res[0].Err != nil {
		return sess.protoErr("append", res[0].Err)
	}
	sess.addPending(m.mb.ID, []uint32{res[0].UID}, nil)
	sess.flush()
	return okCode("APPENDUID", []interface{}{m.mb.UIDValidity, res[0].UID}, "APPEND completed")
}

// parseFlags splits APPEND/STORE flags into system flags and keywords.
// \Recent cannot be set by clients (RFC 3501 2.3.2) and is ignored.
func parseFlags(flags []string) (mailcore.Flags, []string) {
	var f mailcore.Flags
	var kws []string
	for _, name := range flags {
		if b, ok := mailcore.ParseFlag(name); ok {
			f |= b
			continue
		}
		if strings.HasPrefix(name, `\`) || !validKeyword(name) {
			continue
		}
		kws = append(kws, name)
	}
	return f, kws
}

// validKeyword: an RFC 9051 flag-keyword is an atom.
func validKeyword(k string) bool {
	if k == "" || len(k) > 100 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return false
		}
	}
	return true
}

func (m *mailbox) UpdateMessagesFlags(uid bool, set *imap.SeqSet, op imap.FlagsOp, flags []string) error {
	sel, err := m.selection()
	if err != nil {
		return err
	}
	uids := sel.resolve(uid, set)
	if len(uids) == 0 {
		return nil
	}
	sess := m.u.sess
	ctx, cancel := m.u.ctx()
	defer cancel()
	fl, kws := parseFlags(flags)
	var fop mailcore.FlagOp
	switch op {
	case imap.AddFlags:
		fop = mailcore.FlagsAdd
	case imap.RemoveFlags:
		fop = mailcore.FlagsRemove
	default:
		fop = mailcore.FlagsReplace
	}
	if fl != 0 || fop == mailcore.FlagsReplace {
		if _, err := sess.s.store.StoreFlags(ctx, m.mb.ID, uids, fop, fl); err != nil {
			return sess.protoErr("store", err)
		}
	}
	if len(kws) > 0 || fop == mailcore.FlagsReplace {
		if err := storeKeywords(ctx, sess.s.store, m.mb.ID, uids, fop, kws); err != nil {
			return sess.protoErr("store", err)
		}
	}
	// Other sessions, here and in other processes, hear of the change
	// from the outbox (an EventFlags row per changed message).
	return nil
}

func (m *mailbox) CopyMessages(uid bool, set *imap.SeqSet, dest string) error {
	return m.copyOrMove(uid, set, dest, false)
}

func (m *mailbox) MoveMessages(uid bool, set *imap.SeqSet, dest string) error {
	return m.copyOrMove(uid, set, dest, true)
}

// copyOrMove is COPY (RFC 9051 6.4.7) and MOVE (RFC 6851): rows and blob
// references, never a second body, with COPYUID (RFC 4315 3). MOVE sends
// COPYUID in an untagged OK before its EXPUNGEs (RFC 6851 4.3).
func (m *mailbox) copyOrMove(uid bool, set *imap.SeqSet, dest string, move bool) error {
	sel, err := m.selection()
	if err != nil {
		return err
	}
	sess := m.u.sess
	if move && sel.readOnly {
		return no("READ-ONLY", "Mailbox is read-only")
	}
	dm, err := m.u.GetMailbox(dest)
	if err == backend.ErrNoSuchMailbox {
		return no(imap.CodeTryCreate, "No such mailbox")
	}
	if err != nil {
		return err
	}
	dst := dm.(*mailbox)
	uids := sel.resolve(uid, set)
	if len(uids) == 0 {
		if move {
			return okCode("", nil, "MOVE completed")
		}
		return okCode("", nil, "COPY completed")
	}
	ctx, cancel := m.u.ctx()
	defer cancel()
	var res mailcore.CopyResult
	if move {
		res, err = sess.s.store.Move(ctx, m.mb.ID, uids, dst.mb.ID)
	} else {
		res, err = sess.s.store.Copy(ctx, m.mb.ID, uids, dst.mb.ID)
	}
	if err != nil {
		return sess.protoErr("copy", err)
	}
	if len(res.SrcUIDs) == 0 {
		return okCode("", nil, "Done")
	}
	src, dstSet := new(imap.SeqSet), new(imap.SeqSet)
	src.AddNum(res.SrcUIDs...)
	dstSet.AddNum(res.DstUIDs...)
	args := []interface{}{res.UIDValidity, src, dstSet}
	if dst.mb.ID == m.mb.ID {
		sess.addPending(m.mb.ID, res.DstUIDs, nil)
	}
	if move {
		sess.write(&imap.StatusResp{Type: imap.StatusRespOk, Code: "COPYUID", Arguments: args, Info: "Moved"})
		sess.addPending(m.mb.ID, nil, res.SrcUIDs)
		sess.flush()
		return okCode("", nil, "MOVE completed")
	}
	sess.flush()
	return okCode("COPYUID", args, "COPY completed")
}

// Expunge is called by go-imap only for CLOSE (our EXPUNGE handler does
// the command): remove the \Deleted messages silently (RFC 9051 6.4.2).
func (m *mailbox) Expunge() error {
	sess := m.u.sess
	sel := sess.sel
	sess.deselect()
	if sel == nil || sel.readOnly {
		return nil
	}
	ctx, cancel := m.u.ctx()
	defer cancel()
	deleted, err := deletedUIDs(ctx, sess.s.store, m.mb.ID)
	if err != nil || len(deleted) == 0 {
		return sess.protoErr("close", err)
	}
	var uids []uint32
	for _, u := range deleted {
		if sel.seqOf(u) != 0 {
			uids = append(uids, u)
		}
	}
	if len(uids) == 0 {
		return nil
	}
	_, err = sess.s.store.ExpungeDeleted(ctx, m.mb.ID, uids)
	return sess.protoErr("close", err)
}
