package imapserver

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap"
	"github.com/emersion/go-imap/backend"
	"github.com/emersion/go-imap/commands"
	imapsrv "github.com/emersion/go-imap/server"
	"github.com/emersion/go-sasl"
	"github.com/govhub/govhub/mailcore"
)

// session is one connection's state beyond what go-imap keeps.
type session struct {
	s  *Server
	id uint64
	// origin marks this session's changes in the outbox (random, so it
	// is unique across processes; see mailcore.WithOrigin).
	origin int64
	log    *slog.Logger
	conn   imapsrv.Conn // the sessConn wrapper

	tls      bool
	remoteIP string
	loopback bool
	acct     mailcore.Account
	authed   bool

	// pmu guards sel, the pending lists and idling; it is never held
	// across I/O, so the poller never waits on a slow client. vmu
	// serialises changes to the view (sel.uids) with the writes that
	// announce them; the serve goroutine reads the view without it except
	// while in IDLE, when only a flush holding vmu changes it.
	pmu      sync.Mutex
	vmu      sync.Mutex
	sel      *selection
	idling   bool
	flushing bool
}

// selection is the selected mailbox as this session sees it: the sorted
// UIDs behind its sequence numbers (RFC 9051 2.3.1.2), changed only when
// the session is told (EXISTS/EXPUNGE), plus what it has not been told yet.
type selection struct {
	box      *mailbox
	readOnly bool
	uids     []uint32

	pendNew   []uint32
	pendExp   []uint32
	pendFlags []uint32
	rescan    bool
}

// Pending lists are capped; past the cap a rescan of the rows replaces them.
const maxPending = 4096

func (sel *selection) maxUID() uint32 {
	if len(sel.uids) == 0 {
		return 0
	}
	return sel.uids[len(sel.uids)-1]
}

// seqOf returns the sequence number of uid, or 0.
func (sel *selection) seqOf(uid uint32) uint32 {
	i := sort.Search(len(sel.uids), func(i int) bool { return sel.uids[i] >= uid })
	if i < len(sel.uids) && sel.uids[i] == uid {
		return uint32(i + 1)
	}
	return 0
}

// sync drops the selection when go-imap deselected the mailbox behind our
// back (UNSELECT, CLOSE, a failed SELECT). It runs in the serve goroutine.
func (sess *session) sync() {
	ctx := sess.conn.Context()
	sess.pmu.Lock()
	defer sess.pmu.Unlock()
	if sess.sel != nil && (ctx.Mailbox == nil || ctx.Mailbox != backend.Mailbox(sess.sel.box)) {
		sess.s.unregister(sess, sess.sel.box.mb.ID)
		sess.sel = nil
	}
}

func (sess *session) deselect() {
	sess.pmu.Lock()
	defer sess.pmu.Unlock()
	if sess.sel != nil {
		sess.s.unregister(sess, sess.sel.box.mb.ID)
		sess.sel = nil
	}
}

func (sess *session) setSelection(sel *selection) {
	sess.pmu.Lock()
	sess.sel = sel
	sess.pmu.Unlock()
}

// addPending records changes this session made itself, for the next flush.
func (sess *session) addPending(mailboxID int64, added, expunged []uint32) {
	sess.pmu.Lock()
	defer sess.pmu.Unlock()
	if sel := sess.sel; sel != nil && sel.box.mb.ID == mailboxID {
		sel.pendNew = append(sel.pendNew, added...)
		sel.pendExp = append(sel.pendExp, expunged...)
	}
}

// notify records outbox events for the selected mailbox; a session in IDLE
// is written to at once, by a goroutine of its own.
func (sess *session) notify(evs []mailcore.Event) {
	sess.pmu.Lock()
	defer sess.pmu.Unlock()
	sel := sess.sel
	if sel == nil {
		return
	}
	for _, e := range evs {
		if e.MailboxID != sel.box.mb.ID {
			continue
		}
		switch e.Kind {
		case mailcore.EventDelivered:
			if len(sel.pendNew) >= maxPending {
				sel.rescan = true
			} else {
				sel.pendNew = append(sel.pendNew, e.UID)
			}
		case mailcore.EventExpunged:
			if len(sel.pendExp) >= maxPending {
				sel.rescan = true
			} else {
				sel.pendExp = append(sel.pendExp, e.UID)
			}
		case mailcore.EventFlags:
			if e.Origin == sess.origin {
				continue // our own STORE: already answered
			}
			if len(sel.pendFlags) < maxPending {
				sel.pendFlags = append(sel.pendFlags, e.UID)
			}
		}
	}
	sess.kickLocked()
}

// kickLocked starts a flush for a session in IDLE; pmu is held.
func (sess *session) kickLocked() {
	if !sess.idling || sess.flushing {
		return
	}
	sess.flushing = true
	go func() {
		sess.vmu.Lock()
		defer sess.vmu.Unlock()
		sess.pmu.Lock()
		sess.flushing = false
		idle := sess.idling
		sess.pmu.Unlock()
		if idle {
			sess.flushView()
		}
	}()
}

// flush tells the client what changed (serve goroutine, between commands).
func (sess *session) flush() {
	sess.vmu.Lock()
	defer sess.vmu.Unlock()
	sess.flushView()
}

// flushView announces pending changes: new messages (EXISTS), then
// expunges (EXPUNGE, RFC 9051 7.5.1), then flag changes (FETCH). vmu is
// held.
func (sess *session) flushView() {
	sess.pmu.Lock()
	sel := sess.sel
	if sel == nil {
		sess.pmu.Unlock()
		return
	}
	pendNew, pendExp, pendFlags, rescan := sel.pendNew, sel.pendExp, sel.pendFlags, sel.rescan
	sel.pendNew, sel.pendExp, sel.pendFlags, sel.rescan = nil, nil, nil, false
	sess.pmu.Unlock()
	if !rescan && len(pendNew) == 0 && len(pendExp) == 0 && len(pendFlags) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(sess.s.ctx, queryTimeout)
	defer cancel()
	if rescan {
		all, err := mailboxUIDs(ctx, sess.s.store, sel.box.mb.ID)
		if err != nil {
			sess.log.Warn("rescan mailbox", "err", err)
			return
		}
		present := make(map[uint32]bool, len(all))
		for _, u := range all {
			present[u] = true
		}
		pendExp = pendExp[:0]
		for _, u := range sel.uids {
			if !present[u] {
				pendExp = append(pendExp, u)
			}
		}
		pendNew = pendNew[:0]
		for _, u := range all {
			if u > sel.maxUID() {
				pendNew = append(pendNew, u)
			}
		}
	}
	if len(pendNew) > 0 {
		sort.Slice(pendNew, func(i, j int) bool { return pendNew[i] < pendNew[j] })
		n := len(sel.uids)
		for _, u := range pendNew {
			if u > sel.maxUID() {
				sel.uids = append(sel.uids, u)
			}
		}
		if len(sel.uids) != n {
			sess.write(imap.NewUntaggedResp([]interface{}{uint32(len(sel.uids)), imap.RawString("EXISTS")}))
		}
	}
	for _, u := range pendExp {
		if seq := sel.seqOf(u); seq != 0 {
			sel.uids = append(sel.uids[:seq-1], sel.uids[seq:]...)
			sess.write(imap.NewUntaggedResp([]interface{}{seq, imap.RawString("EXPUNGE")}))
		}
	}
	if len(pendFlags) > 0 {
		rows, err := loadRows(ctx, sess.s.store, sel.box.mb.ID, dedupe(sortedCopy(pendFlags)))
		if err != nil {
			sess.log.Warn("load flags", "err", err)
			return
		}
		for _, r := range rows {
			if seq := sel.seqOf(r.UID); seq != 0 {
				sess.write(imap.NewUntaggedResp([]interface{}{seq, imap.RawString("FETCH"),
					[]interface{}{imap.RawString("UID"), r.UID, imap.RawString("FLAGS"), flagList(r)}}))
			}
		}
	}
}

func sortedCopy(u []uint32) []uint32 {
	out := append([]uint32(nil), u...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// queuedResp is a response handed to go-imap's sender; done closes once
// it is written.
type queuedResp struct {
	r    imap.WriterTo
	done chan struct{}
}

func (q *queuedResp) WriteTo(w *imap.Writer) error {
	defer close(q.done)
	return q.r.WriteTo(w)
}

// write queues r on the connection's sender and waits until it is written
// or the connection is gone (go-imap's WriteResp would wait forever once
// the connection has logged out).
func (sess *session) write(r imap.WriterTo) {
	cx := sess.conn.Context()
	q := &queuedResp{r: r, done: make(chan struct{})}
	select {
	case cx.Responses <- q:
	case <-cx.LoggedOut:
		return
	}
	select {
	case <-q.done:
	case <-cx.LoggedOut:
	}
}

func flagList(r row) []interface{} {
	out := []interface{}{}
	for _, n := range r.Flags.Names() {
		out = append(out, imap.RawString(n))
	}
	for _, k := range r.keywords() {
		out = append(out, imap.RawString(k))
	}
	return out
}

// sessConn is the go-imap connection with our session attached.
type sessConn struct {
	imapsrv.Conn
	sess *session
}

func (c *sessConn) IsTLS() bool { return c.sess.tls }

func (c *sessConn) Capabilities() []string { return c.sess.capabilities() }

func (sess *session) canAuth() bool {
	return sess.tls || (sess.s.cfg.AllowInsecureAuth && sess.loopback)
}

// capabilities is the CAPABILITY list (RFC 9051 7.2.2) for the session's
// current state.
func (sess *session) capabilities() []string {
	caps := []string{"IMAP4rev1", "LITERAL+", "SASL-IR", "CHILDREN", "UNSELECT", "MOVE", "IDLE",
		"APPENDLIMIT=" + strconv.FormatInt(sess.s.cfg.MaxLiteral, 10)}
	caps = append(caps, extCaps...)
	if !sess.authed {
		if !sess.tls && sess.s.cfg.TLS != nil {
			caps = append(caps, "STARTTLS")
		}
		if sess.canAuth() {
			caps = append(caps, "AUTH=PLAIN")
		} else {
			caps = append(caps, "LOGINDISABLED")
		}
	}
	return caps
}

var extCaps = []string{"UIDPLUS", "NAMESPACE", "SPECIAL-USE", "QUOTA", "QUOTA=RES-STORAGE", "ENABLE"}

// extension plugs our commands into go-imap. go-imap's Enable drops an
// extension that provides UNSELECT, MOVE or IDLE, so those stay go-imap's.
type extension struct {
	s           *Server
	implicitTLS bool
	// ready is set after Enable: go-imap's Enable drops any extension
	// whose Command("IDLE") is non-nil, yet its own IDLE reads DONE with a
	// bufio.Scanner that swallows whatever the client pipelined after it
	// and holds a 4 KiB buffer per idle session. Ours replaces it.
	ready bool
}

func (e *extension) Capabilities(c imapsrv.Conn) []string { return extCaps }

func (e *extension) NewConn(c imapsrv.Conn) imapsrv.Conn {
	s := e.s
	sess := &session{s: s, id: s.connID.Add(1), tls: e.implicitTLS, origin: newOrigin()}
	if a, ok := c.Info().RemoteAddr.(*net.TCPAddr); ok {
		sess.remoteIP = a.IP.String()
		sess.loopback = a.IP.IsLoopback()
	} else if c.Info().RemoteAddr != nil {
		host, _, _ := net.SplitHostPort(c.Info().RemoteAddr.String())
		sess.remoteIP = host
	}
	sess.log = s.log.With("conn", sess.id, "remote", sess.remoteIP)
	sc := &sessConn{Conn: c, sess: sess}
	sess.conn = sc
	return sc
}

func (e *extension) Command(name string) imapsrv.HandlerFactory {
	switch name {
	case "CAPABILITY":
		return func() imapsrv.Handler { return &capabilityCmd{} }
	case "STARTTLS":
		return func() imapsrv.Handler { return &startTLSCmd{} }
	case "LOGIN":
		return func() imapsrv.Handler { return &loginCmd{} }
	case "AUTHENTICATE":
		return func() imapsrv.Handler { return &authenticateCmd{} }
	case "SELECT":
		return func() imapsrv.Handler { return &selectCmd{} }
	case "EXAMINE":
		return func() imapsrv.Handler { h := &selectCmd{}; h.ReadOnly = true; return h }
	case "EXPUNGE":
		return func() imapsrv.Handler { return &expungeCmd{} }
	case "NAMESPACE":
		return func() imapsrv.Handler { return &namespaceCmd{} }
	case "GETQUOTAROOT":
		return func() imapsrv.Handler { return &quotaRootCmd{} }
	case "GETQUOTA":
		return func() imapsrv.Handler { return &quotaCmd{} }
	case "ENABLE":
		return func() imapsrv.Handler { return &enableCmd{} }
	case "UID":
		return func() imapsrv.Handler { return &uidCmd{} }
	case "FETCH":
		return func() imapsrv.Handler { return &fetchCmd{} }
	case "SEARCH":
		return func() imapsrv.Handler { return &searchCmd{} }
	case "IDLE":
		if e.ready {
			return func() imapsrv.Handler { return &idleCmd{} }
		}
	}
	return nil
}

var _ imapsrv.ConnExtension = (*extension)(nil)

func sessionOf(c imapsrv.Conn) *session {
	if sc, ok := c.(*sessConn); ok {
		return sc.sess
	}
	return nil
}

// Typed replies with generic text: internal errors never reach clients.
func no(code imap.StatusRespCode, info string) error {
	return &imap.ErrStatusResp{Resp: &imap.StatusResp{Type: imap.StatusRespNo, Code: code, Info: info}}
}

func bad(info string) error {
	return &imap.ErrStatusResp{Resp: &imap.StatusResp{Type: imap.StatusRespBad, Info: info}}
}

func okCode(code imap.StatusRespCode, args []interface{}, info string) error {
	return &imap.ErrStatusResp{Resp: &imap.StatusResp{Type: imap.StatusRespOk, Code: code, Arguments: args, Info: info}}
}

// protoErr maps a store error to a client reply and logs what the client
// must not see.
func (sess *session) protoErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, mailcore.ErrInvalidMailboxName):
		return no("CANNOT", "Invalid mailbox name")
	case errors.Is(err, mailcore.ErrNotFound):
		return no("NONEXISTENT", "No such mailbox")
	case errors.Is(err, mailcore.ErrExists):
		return no("ALREADYEXISTS", "Mailbox already exists")
	case errors.Is(err, mailcore.ErrHasChildren):
		return no("INUSE", "Mailbox has children")
	case errors.Is(err, mailcore.ErrSpecialMailbox):
		return no("CANNOT", "Operation not allowed on this mailbox")
	case errors.Is(err, mailcore.ErrQuotaExceeded):
		return no("OVERQUOTA", "Quota exceeded")
	case errors.Is(err, mailcore.ErrTooLarge):
		return no("TOOBIG", "Message too large")
	}
	sess.log.Error("command failed", "op", op, "err", err)
	return no("SERVERBUG", "Internal server error")
}

type capabilityCmd struct{ commands.Capability }

func (h *capabilityCmd) Handle(c imapsrv.Conn) error {
	caps := sessionOf(c).capabilities()
	fields := []interface{}{imap.RawString("CAPABILITY")}
	for _, cp := range caps {
		fields = append(fields, imap.RawString(cp))
	}
	return c.WriteResp(imap.NewUntaggedResp(fields))
}

type startTLSCmd struct{ commands.StartTLS }

func (h *startTLSCmd) Handle(c imapsrv.Conn) error {
	sess := sessionOf(c)
	if sess.authed {
		return bad("Already authenticated")
	}
	if sess.tls || sess.s.cfg.TLS == nil {
		return bad("TLS not available")
	}
	return okCode("", nil, "Begin TLS negotiation now")
}

// Upgrade runs the TLS handshake (RFC 9051 6.2.1). go-imap resets its read
// buffer at the upgrade, so nothing the client pipelined after STARTTLS
// in plaintext is ever parsed as a command.
func (h *startTLSCmd) Upgrade(c imapsrv.Conn) error {
	sess := sessionOf(c)
	err := c.Upgrade(func(sock net.Conn) (net.Conn, error) {
		c.WaitReady()
		lc, ok := sock.(*limitConn)
		if !ok {
			return nil, errors.New("imapserver: unexpected connection type")
		}
		lc.Conn.SetDeadline(time.Now().Add(sess.s.cfg.HandshakeTimeout))
		t := tls.Server(lc.Conn, sess.s.cfg.TLS)
		if err := t.Handshake(); err != nil {
			return nil, err
		}
		return newLimitConn(t, lc.sh, true), nil
	})
	if err != nil {
		return err
	}
	sess.tls = true
	return nil
}

type loginCmd struct{ commands.Login }

func (h *loginCmd) Handle(c imapsrv.Conn) error {
	return sessionOf(c).login(c, h.Username, h.Password)
}

// login checks the password with the Authenticator. RFC 9051 6.2.3: LOGIN
// without TLS is refused (PRIVACYREQUIRED) unless configured for loopback.
func (sess *session) login(c imapsrv.Conn, username, password string) error {
	if sess.authed {
		return bad("Already authenticated")
	}
	if !sess.canAuth() {
		sess.s.m.authFail.Inc()
		return no("PRIVACYREQUIRED", "TLS required for authentication")
	}
	ctx, cancel := context.WithTimeout(sess.s.ctx, queryTimeout)
	defer cancel()
	acct, err := sess.s.cfg.Auth.Authenticate(ctx, username, password, sess.remoteIP)
	if err != nil {
		sess.s.m.authFail.Inc()
		sess.log.Info("authentication failed", "user", username)
		return no("AUTHENTICATIONFAILED", "Authentication failed")
	}
	sess.acct = acct
	sess.authed = true
	sess.log = sess.log.With("account", acct.ID)
	cx := c.Context()
	cx.State = imap.AuthenticatedState
	cx.User = &user{sess: sess}
	fields := []interface{}{}
	for _, cp := range sess.capabilities() {
		fields = append(fields, imap.RawString(cp))
	}
	return okCode(imap.CodeCapability, fields, "Logged in")
}

type authenticateCmd struct{ commands.Authenticate }

type authConn struct {
	io.Reader
	imapsrv.Conn
}

func (a authConn) Read(p []byte) (int, error) { return a.Reader.Read(p) }

func (h *authenticateCmd) Handle(c imapsrv.Conn) error {
	sess := sessionOf(c)
	if sess.authed {
		return bad("Already authenticated")
	}
	if !sess.canAuth() {
		sess.s.m.authFail.Inc()
		return no("PRIVACYREQUIRED", "TLS required for authentication")
	}
	if !strings.EqualFold(h.Mechanism, sasl.Plain) {
		return no("CANNOT", "Unsupported mechanism")
	}
	h.Mechanism = sasl.Plain
	var loginErr error
	mech := map[string]sasl.Server{sasl.Plain: sasl.NewPlainServer(func(identity, username, password string) error {
		if identity != "" && identity != username {
			loginErr = no("AUTHENTICATIONFAILED", "Authentication failed")
			return loginErr
		}
		loginErr = sess.login(c, username, password)
		if ie, ok := loginErr.(*imap.ErrStatusResp); ok && ie.Resp.Type == imap.StatusRespOk {
			return nil
		}
		return loginErr
	})}
	// The SASL exchange reads the inner connection, not sessConn.Read,
	// which is reserved for IDLE.
	inner := c.(*sessConn).Conn
	if err := h.Authenticate.Handle(mech, authConn{Reader: inner, Conn: c}); err != nil {
		if _, ok := err.(*imap.ErrStatusResp); ok {
			return err
		}
		return no("AUTHENTICATIONFAILED", "Authentication failed")
	}
	return loginErr
}

type selectCmd struct{ commands.Select }

// Handle is SELECT/EXAMINE (RFC 9051 6.3.2): the previous selection ends
// first, so a failed SELECT leaves none.
func (h *selectCmd) Handle(c imapsrv.Conn) error {
	sess := sessionOf(c)
	cx := c.Context()
	cx.Mailbox = nil
	cx.MailboxReadOnly = false
	sess.deselect()
	if !sess.authed {
		return no("", "Not authenticated")
	}
	u := cx.User.(*user)
	bm, err := u.GetMailbox(h.Mailbox)
	if err != nil {
		return err
	}
	box := bm.(*mailbox)
	ctx, cancel := context.WithTimeout(sess.s.ctx, queryTimeout)
	defer cancel()
	// Register before reading the rows, so no delivery falls in between:
	// events for rows already read are ignored by UID.
	sess.s.register(sess, box.mb.ID)
	uids, err := mailboxUIDs(ctx, sess.s.store, box.mb.ID)
	if err != nil {
		sess.s.unregister(sess, box.mb.ID)
		return sess.protoErr("select", err)
	}
	fresh, err := sess.s.store.Mailbox(ctx, box.mb.ID)
	if err != nil {
		sess.s.unregister(sess, box.mb.ID)
		return sess.protoErr("select", err)
	}
	box.mb = fresh
	firstUnseen, err := firstUnseenUID(ctx, sess.s.store, box.mb.ID)
	if err != nil {
		sess.s.unregister(sess, box.mb.ID)
		return sess.protoErr("select", err)
	}
	sel := &selection{box: box, readOnly: h.ReadOnly, uids: uids}
	sess.setSelection(sel)

	w := func(f ...interface{}) { sess.write(imap.NewUntaggedResp(f)) }
	flags := []interface{}{imap.RawString(`\Seen`), imap.RawString(`\Answered`), imap.RawString(`\Flagged`), imap.RawString(`\Deleted`), imap.RawString(`\Draft`)}
	w(imap.RawString("FLAGS"), flags)
	w(uint32(len(uids)), imap.RawString("EXISTS"))
	w(uint32(0), imap.RawString("RECENT"))
	status := func(code string, args ...interface{}) {
		sess.write(&imap.StatusResp{Type: imap.StatusRespOk, Code: imap.StatusRespCode(code), Arguments: args, Info: code})
	}
	if firstUnseen != 0 {
		if seq := sel.seqOf(firstUnseen); seq != 0 {
			status("UNSEEN", seq)
		}
	}
	status("UIDVALIDITY", box.mb.UIDValidity)
	status("UIDNEXT", box.mb.UIDNext)
	if h.ReadOnly {
		status("PERMANENTFLAGS", []interface{}{})
	} else {
		status("PERMANENTFLAGS", append(flags, imap.RawString(`\*`)))
	}
	cx.Mailbox = box
	cx.MailboxReadOnly = h.ReadOnly
	if h.ReadOnly {
		return okCode(imap.CodeReadOnly, nil, "EXAMINE completed")
	}
	return okCode(imap.CodeReadWrite, nil, "SELECT completed")
}

// expungeCmd is EXPUNGE and, under UID, UID EXPUNGE (RFC 4315 2.1): only
// messages flagged \Deleted (and, for UID EXPUNGE, in the set) are removed,
// and each removal is reported with its sequence number.
type expungeCmd struct {
	set *imap.SeqSet
}

func (h *expungeCmd) Parse(fields []interface{}) error {
	if len(fields) > 0 {
		s, ok := fields[0].(string)
		if !ok {
			return errors.New("Invalid sequence set")
		}
		set, err := imap.ParseSeqSet(s)
		if err != nil {
			return err
		}
		h.set = set
	}
	return nil
}

func (h *expungeCmd) Handle(c imapsrv.Conn) error {
	if h.set != nil {
		return bad("Unexpected arguments")
	}
	return h.run(c, nil)
}

func (h *expungeCmd) UidHandle(c imapsrv.Conn) error {
	if h.set == nil {
		return bad("Missing UID set")
	}
	return h.run(c, h.set)
}

func (h *expungeCmd) run(c imapsrv.Conn, set *imap.SeqSet) error {
	sess := sessionOf(c)
	sess.sync()
	sel := sess.sel
	if sel == nil {
		return no("", "No mailbox selected")
	}
	if sel.readOnly {
		return no("READ-ONLY", "Mailbox is read-only")
	}
	ctx, cancel := context.WithTimeout(sess.s.ctx, queryTimeout)
	defer cancel()
	deleted, err := deletedUIDs(ctx, sess.s.store, sel.box.mb.ID)
	if err != nil {
		return sess.protoErr("expunge", err)
	}
	var uids []uint32
	for _, u := range deleted {
		if sel.seqOf(u) == 0 {
			continue // not yet announced to this session
		}
		if set != nil && !uidSetContains(set, u, sel.maxUID()) {
			continue
		}
		uids = append(uids, u)
	}
	if len(uids) > 0 {
		removed, err := sess.s.store.ExpungeDeleted(ctx, sel.box.mb.ID, uids)
		if err != nil {
			return sess.protoErr("expunge", err)
		}
		sess.addPending(sel.box.mb.ID, nil, removed)
		sess.flush()
	}
	if set != nil {
		return okCode("", nil, "UID EXPUNGE completed")
	}
	return nil
}

// uidSetContains reports whether set holds uid; "*" is the highest UID in
// use (RFC 9051 6.4.9: "*" in a UID set is the largest UID).
func uidSetContains(set *imap.SeqSet, uid, max uint32) bool {
	for _, sq := range set.Set {
		lo, hi := sq.Start, sq.Stop
		if lo == 0 {
			lo = max
		}
		if hi == 0 {
			hi = max
		}
		if lo > hi {
			lo, hi = hi, lo
		}
		if uid >= lo && uid <= hi {
			return true
		}
	}
	return false
}

type namespaceCmd struct{}

func (h *namespaceCmd) Parse([]interface{}) error { return nil }

// Handle: RFC 2342: one personal namespace, no prefix, "/" delimiter.
func (h *namespaceCmd) Handle(c imapsrv.Conn) error {
	if !sessionOf(c).authed {
		return no("", "Not authenticated")
	}
	return c.WriteResp(imap.NewUntaggedResp([]interface{}{imap.RawString("NAMESPACE"),
		[]interface{}{[]interface{}{"", "/"}}, nil, nil}))
}

type enableCmd struct{}

func (h *enableCmd) Parse([]interface{}) error { return nil }

// Handle: RFC 5161: we support no ENABLE-able extension (no CONDSTORE,
// QRESYNC, UTF8=ACCEPT), so the ENABLED list is always empty.
func (h *enableCmd) Handle(c imapsrv.Conn) error {
	if !sessionOf(c).authed {
		return no("", "Not authenticated")
	}
	return c.WriteResp(imap.NewUntaggedResp([]interface{}{imap.RawString("ENABLED")}))
}

type quotaRootCmd struct{ mailbox string }

func (h *quotaRootCmd) Parse(f []interface{}) error {
	if len(f) < 1 {
		return errors.New("Missing mailbox")
	}
	name, err := imap.ParseString(f[0])
	if err != nil {
		return err
	}
	h.mailbox, err = decodeName(name)
	return err
}

// Handle: RFC 9208 4.3.2: every mailbox has the one account quota root "".
func (h *quotaRootCmd) Handle(c imapsrv.Conn) error {
	sess := sessionOf(c)
	if !sess.authed {
		return no("", "Not authenticated")
	}
	u := c.Context().User.(*user)
	if _, err := u.GetMailbox(h.mailbox); err != nil {
		return err
	}
	if err := c.WriteResp(imap.NewUntaggedResp([]interface{}{imap.RawString("QUOTAROOT"), encodeName(h.mailbox), ""})); err != nil {
		return err
	}
	return sess.writeQuota(c)
}

type quotaCmd struct{ root string }

func (h *quotaCmd) Parse(f []interface{}) error {
	if len(f) < 1 {
		return errors.New("Missing quota root")
	}
	var err error
	h.root, err = imap.ParseString(f[0])
	return err
}

func (h *quotaCmd) Handle(c imapsrv.Conn) error {
	sess := sessionOf(c)
	if !sess.authed {
		return no("", "Not authenticated")
	}
	if h.root != "" {
		return no("NONEXISTENT", "No such quota root")
	}
	return sess.writeQuota(c)
}

// writeQuota sends "* QUOTA "" (STORAGE used limit)" in KiB (RFC 9208
// 5.1); an account without a limit has no resources listed.
func (sess *session) writeQuota(c imapsrv.Conn) error {
	ctx, cancel := context.WithTimeout(sess.s.ctx, queryTimeout)
	defer cancel()
	a, err := sess.s.store.Account(ctx, sess.acct.ID)
	if err != nil {
		return sess.protoErr("quota", err)
	}
	res := []interface{}{}
	if a.QuotaBytes > 0 {
		res = append(res, imap.RawString("STORAGE"), imap.RawString(fmt.Sprint((a.UsedBytes+1023)/1024)), imap.RawString(fmt.Sprint(a.QuotaBytes/1024)))
	}
	return c.WriteResp(imap.NewUntaggedResp([]interface{}{imap.RawString("QUOTA"), "", res}))
}

// uidCmd is go-imap's UID with its argument check fixed: go-imap v1.2.1
// indexes fields[0] of a bare "tag UID" and panics (its recover then
// closes the connection).
type uidCmd struct{ imapsrv.Uid }

func (h *uidCmd) Parse(fields []interface{}) error {
	if len(fields) == 0 {
		return errors.New("No command name specified")
	}
	return h.Uid.Parse(fields)
}

type idleCmd struct{}

func (h *idleCmd) Parse([]interface{}) error { return nil }

// Handle is IDLE (RFC 2177): after the continuation the session may be
// written to at any time; it ends at the client's DONE line.
func (h *idleCmd) Handle(c imapsrv.Conn) error {
	sess := sessionOf(c)
	if !sess.authed {
		return no("", "Not authenticated")
	}
	if err := c.WriteResp(&imap.ContinuationReq{Info: "idling"}); err != nil {
		return err
	}
	sess.sync()
	sess.flush()
	sess.pmu.Lock()
	sess.idling = true
	sess.pmu.Unlock()
	// Changes recorded between the flush and idling=true: kick now.
	sess.pmu.Lock()
	sess.kickLocked()
	sess.pmu.Unlock()
	sess.s.m.idle.Inc()
	line, err := readShortLine(c.(*sessConn).Conn, 64)
	sess.s.m.idle.Dec()
	sess.pmu.Lock()
	sess.idling = false
	sess.pmu.Unlock()
	// Wait for a flush in flight, so the view is ours again.
	sess.vmu.Lock()
	sess.vmu.Unlock()
	if err != nil {
		return err
	}
	if !strings.EqualFold(line, "DONE") {
		return bad("Expected DONE")
	}
	return nil
}

// readShortLine reads one line through go-imap's own buffered reader
// (its connection is an io.RuneReader), so a DONE the client pipelined is
// seen and whatever follows stays for the next command.
func readShortLine(c imapsrv.Conn, max int) (string, error) {
	rr, ok := c.(io.RuneReader)
	if !ok {
		return "", errors.New("imapserver: connection has no buffered reader")
	}
	var line []rune
	for {
		r, _, err := rr.ReadRune()
		if err != nil {
			return "", err
		}
		if r == '\n' {
			return strings.TrimSuffix(string(line), "\r"), nil
		}
		if len(line) >= max {
			return "", errors.New("imapserver: line too long")
		}
		line = append(line, r)
	}
}

// newOrigin returns a random positive id for a session's changes.
func newOrigin() int64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("imapserver: no randomness: " + err.Error())
	}
	return int64(binary.BigEndian.Uint64(b[:])>>1) | 1
}
