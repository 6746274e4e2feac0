package affairslink

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Contract limits (docs/affairslink.md, "Limits").
const (
	// MaxPageSize is the largest limit= the affairs link accepts.
	MaxPageSize = 500
	// DefaultPageSize is used when Config.PageSize is 0.
	DefaultPageSize = 200
	// maxResponseBytes bounds one response body: a page of 500 people is
	// far below it, and a misbehaving server cannot make us buffer more.
	maxResponseBytes = 16 << 20
	// tokenMargin: a token is refreshed this long before the expiry the
	// server announced, so a request does not race the expiry.
	tokenMargin = 60 * time.Second
)

var (
	// ErrUnavailable: the affairs link kept answering 429, 5xx or not at
	// all until the retry bound was reached. Temporary: a scheduler should
	// try the run again later.
	ErrUnavailable = errors.New("affairslink: service unavailable")
	// ErrUnauthorized: the app key and secret were refused, or a fresh
	// token was refused again. Permanent until IT fixes the configuration.
	ErrUnauthorized = errors.New("affairslink: unauthorized")
	// ErrNotFound: the object does not exist in the affairs link.
	ErrNotFound = errors.New("affairslink: not found")
)

// APIError is a refusal the affairs link explained (a 4xx other than those
// mapped to the sentinels above). Permanent: retrying the same request
// gets the same answer.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("affairslink: HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

// Config configures one affairs-link peer.
type Config struct {
	// Name is the peer name used in schedules, anchors and reports;
	// default "affairslink".
	Name string
	// BaseURL is the API root, e.g. https://affairs.example.gov.cn/api;
	// the paths of the contract (/v1/token, ...) are appended to it.
	BaseURL string
	// AppKey and AppSecret identify govhub to the affairs link. AppSecret
	// also keys the callback signatures. Never logged (see LogValue).
	AppKey    string
	AppSecret string
	// PageSize is the limit= of list requests, 1..MaxPageSize; default
	// DefaultPageSize.
	PageSize int
	// HTTPClient sends the requests; default a client with Timeout.
	HTTPClient *http.Client
	// Timeout bounds one HTTP exchange when HTTPClient is nil; default 30 s.
	Timeout time.Duration
	// MaxRetries is how many times one request is retried after a 429,
	// a 5xx or a transport error; default 4 (so at most 5 attempts).
	// Negative means no retries.
	MaxRetries int
	// BackoffBase and BackoffMax shape the exponential backoff after 5xx
	// and transport errors; defaults 500 ms and 10 s.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// MaxRetryAfter caps a server's Retry-After; a longer demand is cut to
	// it (the attempt still counts against MaxRetries); default 60 s.
	MaxRetryAfter time.Duration
	// Now and Sleep are injected by tests; defaults time.Now and a
	// context-aware timer.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	// Logger receives retries and refreshes; default slog.Default().
	Logger *slog.Logger
}

// LogValue keeps the secret out of any log line that prints a Config.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("name", c.Name),
		slog.String("base_url", c.BaseURL),
		slog.String("app_key", c.AppKey),
		slog.String("app_secret", "[redacted]"),
		slog.Int("page_size", c.PageSize),
	)
}

// String keeps the secret out of fmt output as well.
func (c Config) String() string {
	return fmt.Sprintf("affairslink.Config{Name:%q BaseURL:%q AppKey:%q AppSecret:[redacted]}", c.Name, c.BaseURL, c.AppKey)
}

// Client is the affairs-link directory peer. Safe for concurrent use.
type Client struct {
	cfg  Config
	base *url.URL
	hc   *http.Client
	log  *slog.Logger

	mu       sync.Mutex // guards token, tokenExp
	token    string
	tokenExp time.Time
}

// New checks cfg, fills defaults and returns a client. It does not
// contact the affairs link; the first request fetches a token.
func New(cfg Config) (*Client, error) {
	if cfg.Name == "" {
		cfg.Name = "affairslink"
	}
	if cfg.BaseURL == "" {
		return nil, errors.New("affairslink: base URL is required")
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("affairslink: base URL %q must be an absolute http(s) URL", cfg.BaseURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	if cfg.AppKey == "" || cfg.AppSecret == "" {
		return nil, errors.New("affairslink: app key and app secret are required")
	}
	switch {
	case cfg.PageSize == 0:
		cfg.PageSize = DefaultPageSize
	case cfg.PageSize < 0 || cfg.PageSize > MaxPageSize:
		return nil, fmt.Errorf("affairslink: page size %d outside 1..%d", cfg.PageSize, MaxPageSize)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = 4
	} else if cfg.MaxRetries < 0 {
		cfg.MaxRetries = 0
	}
	if cfg.BackoffBase == 0 {
		cfg.BackoffBase = 500 * time.Millisecond
	}
	if cfg.BackoffMax == 0 {
		cfg.BackoffMax = 10 * time.Second
	}
	if cfg.MaxRetryAfter == 0 {
		cfg.MaxRetryAfter = 60 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleepCtx
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: cfg.Timeout}
	}
	return &Client{
		cfg:  cfg,
		base: u,
		hc:   hc,
		log:  cfg.Logger.With("component", "affairslink", "peer", cfg.Name),
	}, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Name implements directory.Peer.
func (c *Client) Name() string { return c.cfg.Name }

// request is one call of the contract.
type request struct {
	method string
	path   string // below BaseURL, e.g. /v1/users
	query  url.Values
	body   []byte // JSON, nil for none
	header http.Header
	auth   bool
}

// apiErrorBody is the error object of the contract.
type apiErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// call sends r with retries and decodes a 2xx JSON answer into out (nil:
// discard). It owns the retry policy of the contract:
//   - 401 token_expired/invalid_token: fetch a new token and send again,
//     once per call (a second refusal is ErrUnauthorized);
//   - 429: wait Retry-After (capped), counted against MaxRetries;
//   - 5xx and transport errors: exponential backoff, counted likewise;
//   - 404 ErrNotFound, 410 cursor_expired directory.ErrCursorExpired,
//     other 4xx *APIError, all without retry.
func (c *Client) call(ctx context.Context, r request, out any) error {
	refreshed := false
	var last string
	for attempt := 0; ; attempt++ {
		tok := ""
		if r.auth {
			// The token request has its own retries; its failure is final
			// for this call too (retrying here would multiply the bound).
			var err error
			if tok, err = c.accessToken(ctx); err != nil {
				return err
			}
		}
		status, hdr, body, err := c.send(ctx, r, tok)
		var wait time.Duration
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return fmt.Errorf("affairslink: %s %s: %w", r.method, r.path, ctx.Err())
			}
			last = "transport error: " + err.Error()
			wait = c.backoff(attempt)
		case status >= 200 && status < 300:
			if out == nil {
				return nil
			}
			if err := json.Unmarshal(body, out); err != nil {
				return fmt.Errorf("affairslink: %s %s: undecodable answer: %w", r.method, r.path, err)
			}
			return nil
		case status == http.StatusTooManyRequests:
			last = "HTTP 429 rate limited"
			wait = c.retryAfter(hdr.Get("Retry-After"), attempt)
		case status >= 500:
			last = fmt.Sprintf("HTTP %d", status)
			wait = c.backoff(attempt)
		default:
			e := decodeAPIError(status, body)
			switch {
			case status == http.StatusUnauthorized && r.auth && !refreshed &&
				(e.Code == "token_expired" || e.Code == "invalid_token"):
				// The contract: a token may expire before expires_in says
				// (revoked, server restarted). Refresh and send once more;
				// this does not count as a retry.
				c.dropToken()
				refreshed = true
				c.log.InfoContext(ctx, "access token refused, refreshing", "code", e.Code, "path", r.path)
				attempt--
				continue
			case status == http.StatusUnauthorized:
				return fmt.Errorf("%w: %s %s: %s", ErrUnauthorized, r.method, r.path, e.Code)
			case status == http.StatusNotFound:
				return fmt.Errorf("%w: %s %s", ErrNotFound, r.method, r.path)
			case status == http.StatusGone && e.Code == "cursor_expired":
				return fmt.Errorf("affairslink: %s %s: %w", r.method, r.path, errCursorExpired)
			}
			return e
		}
		if attempt >= c.cfg.MaxRetries {
			return fmt.Errorf("%w: %s %s: giving up after %d attempts, last: %s", ErrUnavailable, r.method, r.path, attempt+1, last)
		}
		c.log.WarnContext(ctx, "retrying", "method", r.method, "path", r.path, "attempt", attempt+1, "reason", last, "wait", wait)
		if err := c.cfg.Sleep(ctx, wait); err != nil {
			return fmt.Errorf("affairslink: %s %s: %w", r.method, r.path, err)
		}
	}
}

// send performs one HTTP exchange. A transport error is returned as err;
// any HTTP answer, error statuses included, as status/header/body.
func (c *Client) send(ctx context.Context, r request, tok string) (int, http.Header, []byte, error) {
	u := *c.base
	u.Path += r.path
	if len(r.query) > 0 {
		u.RawQuery = r.query.Encode()
	}
	var rd io.Reader
	if r.body != nil {
		rd = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), rd)
	if err != nil {
		return 0, nil, nil, err
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/json")
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return 0, nil, nil, err
	}
	if len(body) > maxResponseBytes {
		return 0, nil, nil, fmt.Errorf("answer larger than %d bytes", maxResponseBytes)
	}
	return resp.StatusCode, resp.Header, body, nil
}

func decodeAPIError(status int, body []byte) *APIError {
	var b apiErrorBody
	_ = json.Unmarshal(body, &b) // a body that is not the error object leaves Code empty
	if len(b.Message) > 200 {
		b.Message = b.Message[:200]
	}
	return &APIError{Status: status, Code: b.Code, Message: b.Message}
}

func (c *Client) backoff(attempt int) time.Duration {
	d := c.cfg.BackoffBase << min(attempt, 20)
	if d <= 0 || d > c.cfg.BackoffMax {
		d = c.cfg.BackoffMax
	}
	return d
}

// retryAfter reads Retry-After as delay-seconds or an HTTP-date (RFC 9110
// 10.2.3), capped at MaxRetryAfter; absent or unreadable, the backoff.
func (c *Client) retryAfter(v string, attempt int) time.Duration {
	var d time.Duration
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(c.cfg.Now())
		if d < 0 {
			d = 0
		}
	} else {
		d = c.backoff(attempt)
	}
	if d > c.cfg.MaxRetryAfter {
		d = c.cfg.MaxRetryAfter
	}
	return d
}

// accessToken returns a cached token, fetching a new one when none is
// held or the held one is within tokenMargin of its expiry. Requests wait
// for one fetch rather than each fetching its own.
func (c *Client) accessToken(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && c.cfg.Now().Before(c.tokenExp) {
		return c.token, nil
	}
	body, _ := json.Marshal(map[string]string{"app_key": c.cfg.AppKey, "app_secret": c.cfg.AppSecret})
	var out struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	err := c.call(ctx, request{method: http.MethodPost, path: "/v1/token", body: body}, &out)
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) {
			return "", fmt.Errorf("%w: token refused: %s", ErrUnauthorized, ae.Code)
		}
		return "", err
	}
	if out.AccessToken == "" || out.ExpiresIn <= 0 {
		return "", fmt.Errorf("%w: token answer without access_token or expires_in", ErrUnauthorized)
	}
	life := time.Duration(out.ExpiresIn) * time.Second
	if life > 2*tokenMargin {
		life -= tokenMargin
	}
	c.token, c.tokenExp = out.AccessToken, c.cfg.Now().Add(life)
	c.log.DebugContext(ctx, "access token fetched", "expires_in", out.ExpiresIn)
	return c.token, nil
}

func (c *Client) dropToken() {
	c.mu.Lock()
	c.token = ""
	c.mu.Unlock()
}

// idempotencyKey returns a random key for one logical create, sent again
// unchanged on each retry so the affairs link creates the person once.
func idempotencyKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
