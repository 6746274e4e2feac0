package imapserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap"
	imapsrv "github.com/emersion/go-imap/server"
	"github.com/govhub/govhub/mailcore"
	"github.com/prometheus/client_golang/prometheus"
)

// Authenticator checks a username and password. mailcore/auth implements it
// (with its failure delays and lockouts); the IMAP server only asks.
type Authenticator interface {
	Authenticate(ctx context.Context, username, password, remoteIP string) (mailcore.Account, error)
}

// TextSearcher answers SEARCH TEXT and SEARCH BODY from a full-text index
// (mailcore/search implements it), so no search reads every body. field is
// "TEXT" or "BODY".
type TextSearcher interface {
	MatchUIDs(ctx context.Context, mailboxID int64, field string, term string) ([]uint32, error)
}

// Config configures a Server. Zero values are the documented defaults.
type Config struct {
	Auth Authenticator // required
	// Search answers TEXT/BODY criteria; nil makes them fail with NO
	// [CANNOT] rather than scan bodies.
	Search TextSearcher
	// TLS is required for ServeTLS and for STARTTLS on ServeSTARTTLS.
	TLS *tls.Config
	// AllowInsecureAuth permits LOGIN/AUTHENTICATE without TLS, and then
	// only from loopback addresses (development and tests).
	AllowInsecureAuth bool
	// MaxLiteral bounds one literal (and so one APPEND); zero means 50 MiB,
	// the store's message size limit.
	MaxLiteral int64
	// MaxLine bounds a command line outside literals; zero means 64 KiB.
	MaxLine int
	// PollInterval is how often the one poller per Server reads the store's
	// outbox for deliveries and expunges by any process; zero means 250 ms.
	PollInterval time.Duration
	// HandshakeTimeout bounds the time from accept to the greeting being
	// written (with implicit TLS, the handshake); zero means one minute.
	// After that go-imap's AutoLogout applies.
	HandshakeTimeout time.Duration
	// AutoLogout closes a connection idle for this long; zero means 30
	// minutes, the RFC 3501 5.4 minimum.
	AutoLogout time.Duration
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Server is the IMAP server over a mailcore.Store.
type Server struct {
	store  *mailcore.Store
	cfg    Config
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc

	tlsLib   *imapsrv.Server // implicit TLS listeners
	plainLib *imapsrv.Server // STARTTLS listeners

	connID atomic.Uint64

	mu       sync.Mutex
	selected map[int64]map[*session]struct{} // mailbox id -> sessions with it selected
	sessions map[*session]struct{}
	closed   bool

	pollOnce sync.Once
	pollWG   sync.WaitGroup
	lastSeen atomic.Int64 // every outbox id <= lastSeen has been handled
	pst      pollState
	polls    atomic.Int64 // outbox queries made (tests check they are shared)

	m metrics
}

type metrics struct {
	conns      prometheus.Counter
	active     prometheus.Gauge
	authFail   prometheus.Counter
	idle       prometheus.Gauge
	polls      prometheus.Counter
	limitClose *prometheus.CounterVec
}

// New returns a Server. Call ServeTLS and/or ServeSTARTTLS with listeners,
// and Close to stop.
func New(store *mailcore.Store, cfg Config) *Server {
	if cfg.MaxLiteral <= 0 {
		cfg.MaxLiteral = 50 << 20
	}
	if cfg.MaxLine <= 0 {
		cfg.MaxLine = 64 << 10
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 250 * time.Millisecond
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = time.Minute
	}
	if cfg.AutoLogout <= 0 {
		cfg.AutoLogout = imapsrv.MinAutoLogout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		store:    store,
		cfg:      cfg,
		log:      cfg.Logger.With("component", "imap"),
		selected: map[int64]map[*session]struct{}{},
		sessions: map[*session]struct{}{},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.m = metrics{
		conns:      prometheus.NewCounter(prometheus.CounterOpts{Name: "govhub_imap_connections_total", Help: "IMAP connections accepted."}),
		active:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "govhub_imap_connections_active", Help: "IMAP connections open."}),
		authFail:   prometheus.NewCounter(prometheus.CounterOpts{Name: "govhub_imap_auth_failures_total", Help: "IMAP LOGIN/AUTHENTICATE refusals."}),
		idle:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "govhub_imap_idle_sessions", Help: "IMAP sessions in IDLE."}),
		polls:      prometheus.NewCounter(prometheus.CounterOpts{Name: "govhub_imap_event_polls_total", Help: "Outbox polls made for IDLE and NOOP updates."}),
		limitClose: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "govhub_imap_limit_closes_total", Help: "Connections closed for exceeding a limit."}, []string{"limit"}),
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{s.m.conns, s.m.active, s.m.authFail, s.m.idle, s.m.polls, s.m.limitClose} {
			if err := cfg.Registerer.Register(c); err != nil {
				s.log.Warn("metric not registered", "err", err)
			}
		}
	}
	s.tlsLib = s.newLib(true)
	s.plainLib = s.newLib(false)
	return s
}

// newLib configures one go-imap server. Two exist because go-imap decides
// the greeting's capabilities from its own view of TLS: on implicit-TLS
// listeners the connection it sees is our limit filter over the tls.Conn,
// so that instance is told auth is allowed and has no STARTTLS to offer.
func (s *Server) newLib(implicitTLS bool) *imapsrv.Server {
	lib := imapsrv.New(&backendShim{limit: uint32(min(s.cfg.MaxLiteral, 1<<32-1))})
	lib.AutoLogout = s.cfg.AutoLogout
	lib.MaxLiteralSize = uint32(min(s.cfg.MaxLiteral, 1<<32-1))
	lib.ErrorLog = slogAdapter{s.log}
	if implicitTLS {
		lib.AllowInsecureAuth = true
	} else {
		lib.TLSConfig = s.cfg.TLS
		lib.AllowInsecureAuth = s.cfg.AllowInsecureAuth
	}
	ext := &extension{s: s, implicitTLS: implicitTLS}
	lib.Enable(ext)
	ext.ready = true
	return lib
}

// ServeTLS serves IMAP with implicit TLS (the port 993 shape, RFC 8314) on
// l, a plain TCP listener; it returns when l is closed.
func (s *Server) ServeTLS(l net.Listener) error {
	if s.cfg.TLS == nil {
		return errors.New("imapserver: ServeTLS needs Config.TLS")
	}
	s.startPoller()
	return s.tlsLib.Serve(&limitListener{Listener: l, s: s, tls: s.cfg.TLS})
}

// ServeSTARTTLS serves IMAP in plaintext with STARTTLS (the port 143
// shape) on l; it returns when l is closed.
func (s *Server) ServeSTARTTLS(l net.Listener) error {
	s.startPoller()
	return s.plainLib.Serve(&limitListener{Listener: l, s: s})
}

// Close stops the listeners, closes every connection and stops the poller.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.tlsLib.Close()
	s.plainLib.Close()
	s.pollWG.Wait()
	return nil
}

func (s *Server) startPoller() {
	s.pollOnce.Do(func() {
		var last int64
		err := s.store.DB().X.GetContext(s.ctx, &last, `SELECT COALESCE(MAX(id), 0) FROM outbox`)
		if err != nil {
			s.log.Error("outbox position", "err", err)
		}
		s.lastSeen.Store(last)
		s.pollWG.Add(1)
		go s.poll()
	})
}

// poll is the one reader of the outbox for all sessions: every tick one
// query, whose events are fanned out to the sessions that have the
// mailbox selected. Sessions in IDLE are written to at once; others see
// the changes at their next NOOP, CHECK, IDLE or mailbox-changing command.
func (s *Server) poll() {
	defer s.pollWG.Done()
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		s.pollOnceNow()
	}
}

// gapTimeout is how long the poller waits for a missing outbox id. On
// PostgreSQL ids come from a sequence, allocated at INSERT but visible at
// COMMIT: a delivery to mailbox A can take id 100 and commit after the one
// to mailbox B that took 101. Reading "id > 101" next would lose 100
// forever, so the poller advances its position only over contiguous ids,
// delivers ids past a gap at once (remembering them), and gives up on a
// gap after gapTimeout (a rolled-back transaction leaves a permanent one).
const gapTimeout = 10 * time.Second

// pollState is the poller's position; only the poll goroutine uses it.
type pollState struct {
	last      int64          // every id <= last has been handled
	delivered map[int64]bool // ids > last already fanned out
	gapSince  map[int64]time.Time
}

func (s *Server) pollOnceNow() {
	st := &s.pst
	if st.delivered == nil {
		st.delivered = map[int64]bool{}
		st.gapSince = map[int64]time.Time{}
		st.last = s.lastSeen.Load()
	}
	for {
		evs, err := s.store.Events(s.ctx, st.last, 5000)
		s.m.polls.Inc()
		s.polls.Add(1)
		if err != nil {
			if s.ctx.Err() == nil {
				s.log.Warn("poll outbox", "err", err)
			}
			return
		}
		var fresh []mailcore.Event
		var maxID int64
		for _, e := range evs {
			if !st.delivered[e.ID] {
				fresh = append(fresh, e)
				st.delivered[e.ID] = true
			}
			maxID = max(maxID, e.ID)
		}
		if len(fresh) > 0 {
			s.fanOut(fresh)
		}
		now := time.Now()
		for {
			next := st.last + 1
			if st.delivered[next] {
				delete(st.delivered, next)
				delete(st.gapSince, next)
				st.last = next
				continue
			}
			if next > maxID {
				break
			}
			first, ok := st.gapSince[next]
			if !ok {
				st.gapSince[next] = now
				break
			}
			if now.Sub(first) < gapTimeout {
				break
			}
			delete(st.gapSince, next)
			st.last = next
		}
		s.lastSeen.Store(st.last)
		if len(evs) < 5000 || len(fresh) == 0 {
			return
		}
	}
}

func (s *Server) fanOut(evs []mailcore.Event) {
	byMailbox := map[int64][]mailcore.Event{}
	for _, e := range evs {
		byMailbox[e.MailboxID] = append(byMailbox[e.MailboxID], e)
	}
	s.mu.Lock()
	var targets []*session
	var lists [][]mailcore.Event
	for mb, es := range byMailbox {
		for sess := range s.selected[mb] {
			targets = append(targets, sess)
			lists = append(lists, es)
		}
	}
	s.mu.Unlock()
	for i, sess := range targets {
		sess.notify(lists[i])
	}
}

func (s *Server) register(sess *session, mailboxID int64) {
	s.mu.Lock()
	m := s.selected[mailboxID]
	if m == nil {
		m = map[*session]struct{}{}
		s.selected[mailboxID] = m
	}
	m[sess] = struct{}{}
	s.mu.Unlock()
}

func (s *Server) unregister(sess *session, mailboxID int64) {
	s.mu.Lock()
	if m := s.selected[mailboxID]; m != nil {
		delete(m, sess)
		if len(m) == 0 {
			delete(s.selected, mailboxID)
		}
	}
	s.mu.Unlock()
}

// slogAdapter routes go-imap's error log to slog.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Printf(format string, v ...interface{}) {
	a.l.Warn(fmt.Sprintf(format, v...))
}
func (a slogAdapter) Println(v ...interface{}) { a.l.Warn(fmt.Sprint(v...)) }

var _ imap.Logger = slogAdapter{}
