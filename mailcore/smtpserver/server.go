package smtpserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/govhub/govhub/mailcore"
)

// Authenticator checks a password sign-in; mailcore/auth implements it.
// An error matching auth.ErrInvalidCredentials is answered 535 5.7.8, one
// matching auth.ErrLockedOut 454 4.7.0, any other (database down) 454 4.7.0
// too; the text is generic in every case (RFC 4954 6).
type Authenticator interface {
	Authenticate(ctx context.Context, username, password, remoteIP string) (mailcore.Account, error)
}

// Outbound takes mail this server will not deliver into the store itself:
// remote recipients of submitted mail, and local recipients whose delivery
// failed at DATA time after others had succeeded (see the package doc).
// Enqueue must have stored the message durably when it returns nil;
// mailcore/queue implements it.
type Outbound interface {
	Enqueue(ctx context.Context, from string, rcpts []string, raw []byte) error
}

// Config tunes a Server. Zero values take the documented defaults;
// MaxConnsPerIP and MaxConnRate may be negative to disable them.
type Config struct {
	// Hostname is announced in the greeting and Received headers; default
	// os.Hostname().
	Hostname string
	// TLS is the server TLS configuration for STARTTLS (MX and 587) and
	// implicit TLS (465). Nil: MX offers no STARTTLS and the submission
	// services cannot start.
	TLS *tls.Config

	// MaxMessageSize in bytes, advertised with SIZE (RFC 1870); a larger
	// SIZE is refused at MAIL with 552 5.3.4 and larger DATA is refused
	// without storing anything. Default 50 MiB.
	MaxMessageSize int64
	// MaxRecipients per message; default 1000, and never below 100
	// (RFC 5321 4.5.3.1.8: a server must accept at least 100). Recipients
	// above it get 452 4.5.3.
	MaxRecipients int
	// MaxLineLength bounds every line, commands and message lines alike,
	// CRLF included; a longer one ends the connection with 500 5.4.0.
	// Default 2000 (twice RFC 5321 4.5.3.1.6's 1000).
	MaxLineLength int
	// MaxConnsPerIP bounds concurrent connections from one IP across all
	// listeners of this Server; default 20.
	MaxConnsPerIP int
	// MaxConnRate connections per ConnRateWindow from one IP; default 60
	// per minute. Over either limit a connection gets 421 4.7.0 and is
	// closed before the greeting.
	MaxConnRate    int
	ConnRateWindow time.Duration
	// ReadTimeout is how long the server waits for any bytes from the
	// client, between commands and within DATA; default 5 minutes
	// (RFC 5321 4.5.3.2.7). WriteTimeout bounds each reply; default 5
	// minutes.
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// MaxAuthFailures on one connection before it is closed (after the
	// failing reply); default 3. The authenticator delays and locks out
	// across connections.
	MaxAuthFailures int
	// DeliverTimeout bounds the store delivery and Enqueue of one message;
	// default 2 minutes.
	DeliverTimeout time.Duration
	// Groups expands group addresses (department distribution lists); nil:
	// none. Only signed-in submission may send to a group: on MX a group
	// address is refused with 550 5.7.1, so an outside sender cannot mail a
	// whole department.
	Groups Groups
	// LeftGrace is how long mail is still accepted for an account whose
	// person has left (Account.LeftAt); after it, 550 5.1.1. Default 30
	// days; negative: refused at once.
	LeftGrace time.Duration

	Logger *slog.Logger
	// Registerer receives the counters; nil registers nothing.
	Registerer prometheus.Registerer
	// Now is the clock for Received dates and connection rates; nil means
	// time.Now.
	Now func() time.Time
}

// Groups answers whether an address is a group and who its members are
// (addresses of local accounts). The directory's department lists
// implement it (wired in cmd/govhub). A message to a group is stored once
// for all members, like any message to many.
type Groups interface {
	Members(ctx context.Context, addr string) (members []string, isGroup bool, err error)
}

func (c *Config) defaults() {
	if c.Hostname == "" {
		c.Hostname, _ = os.Hostname()
		if c.Hostname == "" {
			c.Hostname = "localhost"
		}
	}
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = 50 << 20
	}
	if c.MaxRecipients == 0 {
		c.MaxRecipients = 1000
	}
	if c.MaxRecipients < 100 {
		c.MaxRecipients = 100 // RFC 5321 4.5.3.1.8
	}
	if c.MaxLineLength <= 0 {
		c.MaxLineLength = 2000
	}
	if c.MaxConnsPerIP == 0 {
		c.MaxConnsPerIP = 20
	}
	if c.MaxConnRate == 0 {
		c.MaxConnRate = 60
	}
	if c.ConnRateWindow <= 0 {
		c.ConnRateWindow = time.Minute
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 5 * time.Minute
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 5 * time.Minute
	}
	if c.MaxAuthFailures <= 0 {
		c.MaxAuthFailures = 3
	}
	if c.LeftGrace == 0 {
		c.LeftGrace = 30 * 24 * time.Hour
	}
	if c.DeliverTimeout <= 0 {
		c.DeliverTimeout = 2 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Service names, used in logs and metric labels.
const (
	ServiceMX          = "mx"
	ServiceSubmission  = "submission"  // 587, STARTTLS
	ServiceSubmissions = "submissions" // 465, implicit TLS (RFC 8314)
)

// Server serves SMTP on any number of listeners; it is safe for concurrent
// use.
type Server struct {
	store *mailcore.Store
	auth  Authenticator
	out   Outbound
	cfg   Config
	log   *slog.Logger

	limits  *ipLimits
	nextID  atomic.Uint64
	metrics metrics

	mu      sync.Mutex
	servers []*smtp.Server
	closed  bool
}

type metrics struct {
	connections *prometheus.CounterVec
	accepted    *prometheus.CounterVec
	refused     *prometheus.CounterVec
}

// New returns a Server. auth may be nil for an MX-only server; out is
// required (it takes what the server cannot deliver itself).
func New(store *mailcore.Store, auth Authenticator, out Outbound, cfg Config) (*Server, error) {
	if store == nil || out == nil {
		return nil, errors.New("smtpserver: New needs a store and an Outbound")
	}
	cfg.defaults()
	s := &Server{
		store: store, auth: auth, out: out, cfg: cfg,
		log:    cfg.Logger.With("component", "smtp"),
		limits: newIPLimits(cfg.MaxConnsPerIP, cfg.MaxConnRate, cfg.ConnRateWindow, cfg.Now),
	}
	s.metrics = metrics{
		connections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "govhub_smtp_connections_total", Help: "SMTP connections accepted, by service.",
		}, []string{"service"}),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "govhub_smtp_messages_accepted_total", Help: "Messages answered with 250 after DATA, by service.",
		}, []string{"service"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "govhub_smtp_refused_total", Help: "Connections, commands and messages refused, by service and reason.",
		}, []string{"service", "reason"}),
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{s.metrics.connections, s.metrics.accepted, s.metrics.refused} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("smtpserver: register metrics: %w", err)
			}
		}
	}
	return s, nil
}

// ServeMX serves inbound mail (port 25) on l until Close: local domains
// only, no AUTH, STARTTLS when a TLS config is set.
func (s *Server) ServeMX(l net.Listener) error {
	return s.serve(l, ServiceMX, false)
}

// ServeSubmission serves message submission with STARTTLS (port 587,
// RFC 6409): AUTH PLAIN and LOGIN only after TLS, MAIL only after AUTH.
func (s *Server) ServeSubmission(l net.Listener) error {
	if s.cfg.TLS == nil || s.auth == nil {
		return errors.New("smtpserver: submission needs a TLS config and an authenticator")
	}
	return s.serve(l, ServiceSubmission, false)
}

// ServeSubmissions serves message submission over implicit TLS (port 465,
// RFC 8314 3.3).
func (s *Server) ServeSubmissions(l net.Listener) error {
	if s.cfg.TLS == nil || s.auth == nil {
		return errors.New("smtpserver: submissions needs a TLS config and an authenticator")
	}
	return s.serve(l, ServiceSubmissions, true)
}

func (s *Server) serve(l net.Listener, service string, implicitTLS bool) error {
	gs := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return s.newSession(c, service)
	}))
	gs.Domain = s.cfg.Hostname
	gs.MaxMessageBytes = s.cfg.MaxMessageSize
	gs.MaxRecipients = s.cfg.MaxRecipients
	gs.MaxLineLength = s.cfg.MaxLineLength
	gs.AllowInsecureAuth = false // RFC 4954 4, RFC 8314: no plaintext passwords
	gs.TLSConfig = s.cfg.TLS
	// Read deadlines are set by our conn wrapper before every read (an idle
	// timeout that also covers DATA); go-smtp's own would bound a whole
	// DATA transfer by one command's deadline.
	gs.ReadTimeout = 0
	gs.WriteTimeout = s.cfg.WriteTimeout
	gs.EnableSMTPUTF8 = true // the store keeps UTF-8 local parts (RFC 6531)
	gs.ErrorLog = errorLog{s.log.With("service", service)}

	var ln net.Listener = &limitListener{Listener: l, s: s, service: service}
	if implicitTLS {
		ln = tls.NewListener(ln, s.cfg.TLS)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return smtp.ErrServerClosed
	}
	s.servers = append(s.servers, gs)
	s.mu.Unlock()
	s.log.Info("listening", "service", service, "addr", l.Addr().String())
	return gs.Serve(ln)
}

// Close closes every listener and connection. Deliveries in progress finish
// or fail on their own (they are not acknowledged if they fail).
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	servers := s.servers
	s.servers = nil
	s.mu.Unlock()
	var first error
	for _, gs := range servers {
		if err := gs.Close(); err != nil && !errors.Is(err, smtp.ErrServerClosed) && first == nil {
			first = err
		}
	}
	return first
}

func (s *Server) refuse(service, reason string) {
	s.metrics.refused.WithLabelValues(service, reason).Inc()
}

// errorLog adapts go-smtp's logger to slog.
type errorLog struct{ l *slog.Logger }

func (e errorLog) Printf(format string, v ...any) { e.l.Warn(fmt.Sprintf(format, v...)) }
func (e errorLog) Println(v ...any)               { e.l.Warn(fmt.Sprint(v...)) }
