package smtpserver

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// LoadTLS says how the load generator secures its connections.
type LoadTLS string

const (
	LoadPlain    LoadTLS = ""         // no TLS (MX)
	LoadSTARTTLS LoadTLS = "starttls" // 587
	LoadImplicit LoadTLS = "implicit" // 465
)

// LoadOptions configures LoadTest. Zero values: 1 connection, 1 message, 1
// recipient, 1 KiB messages, no TLS, no AUTH.
type LoadOptions struct {
	// Target is host:port of the SMTP server.
	Target string `json:"target"`
	// Conns is how many connections send concurrently; each sends its
	// share of Messages one after another on one connection.
	Conns int `json:"conns"`
	// Messages is the total number of messages.
	Messages int `json:"messages"`
	// Recipients per message, taken in turn from To.
	Recipients int `json:"recipients"`
	// Size is the approximate size of each message in bytes.
	Size int `json:"size"`
	// TLS and TLSConfig secure the connections; TLSConfig nil means the
	// system roots and the target's host name.
	TLS       LoadTLS     `json:"tls,omitempty"`
	TLSConfig *tls.Config `json:"-"`
	// Username and Password, when set, sign in with AUTH PLAIN.
	Username string   `json:"username,omitempty"`
	Password string   `json:"-"`
	From     string   `json:"from"`
	To       []string `json:"to"`
	// Timeout bounds each SMTP command; default 1 minute.
	Timeout time.Duration `json:"-"`
	// Readable, when set, is polled after the last message was answered
	// until it reports that every accepted message can be read (e.g. by
	// counting the recipients' INBOX rows); LoadResult.UntilReadable is the
	// time from the start until then.
	Readable func(ctx context.Context, accepted int) (bool, error) `json:"-"`
}

// LoadResult reports a LoadTest run.
type LoadResult struct {
	Messages int           `json:"messages"` // attempted
	Accepted int           `json:"accepted"` // answered 250 after DATA
	Failed   int           `json:"failed"`
	Bytes    int64         `json:"bytes"` // of accepted messages
	Duration time.Duration `json:"duration_ns"`
	// PerSecond is accepted messages per second of wall time.
	PerSecond float64 `json:"accepted_per_second"`
	// UntilReadable is the time from the start until Readable reported
	// every accepted message readable (zero without Readable).
	UntilReadable time.Duration `json:"until_readable_ns,omitempty"`
	// Errors counts failures by their (SMTP or network) error text.
	Errors map[string]int `json:"errors,omitempty"`
}

// LoadTest sends opts.Messages messages to opts.Target over opts.Conns
// concurrent go-smtp client connections and reports how many were
// accepted per second. A failed message is counted and the run goes on (a
// broken connection is redialled); the error return is for options that
// cannot work or a run in which no connection could be made.
func LoadTest(ctx context.Context, opts LoadOptions) (LoadResult, error) {
	if opts.Target == "" || opts.From == "" || len(opts.To) == 0 {
		return LoadResult{}, errors.New("smtpserver: LoadTest needs a target, a sender and recipients")
	}
	opts.Conns = max(opts.Conns, 1)
	opts.Messages = max(opts.Messages, 1)
	opts.Recipients = max(opts.Recipients, 1)
	if opts.Size <= 0 {
		opts.Size = 1024
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Minute
	}
	if opts.TLSConfig == nil && opts.TLS != LoadPlain {
		host, _, err := net.SplitHostPort(opts.Target)
		if err != nil {
			return LoadResult{}, fmt.Errorf("smtpserver: LoadTest target: %w", err)
		}
		opts.TLSConfig = &tls.Config{ServerName: host}
	}

	jobs := make(chan int)
	var (
		mu     sync.Mutex
		res    = LoadResult{Messages: opts.Messages, Errors: map[string]int{}}
		dialOK bool
	)
	record := func(size int, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err == nil {
			res.Accepted++
			res.Bytes += int64(size)
			return
		}
		res.Failed++
		res.Errors[errText(err)]++
	}
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < opts.Conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c *smtp.Client
			defer func() {
				if c != nil {
					c.Quit()
					c.Close()
				}
			}()
			for i := range jobs {
				if c == nil {
					var err error
					c, err = loadDial(opts)
					if err != nil {
						record(0, err)
						continue
					}
					mu.Lock()
					dialOK = true
					mu.Unlock()
				}
				msg := loadMessage(opts, i)
				rcpts := make([]string, opts.Recipients)
				for j := range rcpts {
					rcpts[j] = opts.To[(i*opts.Recipients+j)%len(opts.To)]
				}
				err := c.SendMail(opts.From, rcpts, bytes.NewReader(msg))
				record(len(msg), err)
				if err != nil {
					var se *smtp.SMTPError
					if errors.As(err, &se) && c.Reset() == nil {
						continue // refused, connection fine
					}
					c.Close()
					c = nil
				}
			}
		}()
	}
feed:
	for i := 0; i < opts.Messages; i++ {
		select {
		case jobs <- i:
		case <-ctx.Done():
			res.Messages = i
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	res.Duration = time.Since(start)
	if res.Duration > 0 {
		res.PerSecond = float64(res.Accepted) / res.Duration.Seconds()
	}
	if len(res.Errors) == 0 {
		res.Errors = nil
	}
	if opts.Readable != nil && res.Accepted > 0 {
		for {
			ok, err := opts.Readable(ctx, res.Accepted)
			if err != nil {
				return res, fmt.Errorf("smtpserver: LoadTest readable check: %w", err)
			}
			if ok {
				res.UntilReadable = time.Since(start)
				break
			}
			select {
			case <-ctx.Done():
				return res, ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	if !dialOK && res.Messages > 0 {
		return res, fmt.Errorf("smtpserver: LoadTest: no connection to %s succeeded", opts.Target)
	}
	return res, ctx.Err()
}

func errText(err error) string {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return fmt.Sprintf("%d %d.%d.%d %s", se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2], se.Message)
	}
	return err.Error()
}

func loadDial(opts LoadOptions) (*smtp.Client, error) {
	var (
		c   *smtp.Client
		err error
	)
	switch opts.TLS {
	case LoadPlain:
		c, err = smtp.Dial(opts.Target)
	case LoadSTARTTLS:
		c, err = smtp.DialStartTLS(opts.Target, opts.TLSConfig)
	case LoadImplicit:
		c, err = smtp.DialTLS(opts.Target, opts.TLSConfig)
	default:
		return nil, fmt.Errorf("smtpserver: unknown TLS mode %q", opts.TLS)
	}
	if err != nil {
		return nil, err
	}
	c.CommandTimeout = opts.Timeout
	c.SubmissionTimeout = opts.Timeout
	if err := c.Hello("govhub-bench"); err != nil {
		c.Close()
		return nil, err
	}
	if opts.Username != "" {
		if err := c.Auth(sasl.NewPlainClient("", opts.Username, opts.Password)); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// loadMessage is message i: headers and a body of 76-character lines
// filling it to about opts.Size bytes.
func loadMessage(opts LoadOptions, i int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: <%s>\r\nTo: <%s>\r\nSubject: govhub bench %d\r\nMessage-ID: <bench.%d.%d@govhub>\r\nDate: %s\r\n\r\n",
		opts.From, opts.To[0], i, time.Now().UnixNano(), i, time.Now().Format(time.RFC1123Z))
	line := strings.Repeat("0123456789", 8)[:76] + "\r\n"
	for b.Len() < opts.Size {
		b.WriteString(line)
	}
	return b.Bytes()
}
