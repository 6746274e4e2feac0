package smtpserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/emersion/go-smtp"
	"github.com/govhub/govhub/mailcore"
)

// ServiceWebmail labels messages handed over by Submit in logs and
// metrics.
const ServiceWebmail = "webmail"

// SubmitError is a refusal of Submit: the SMTP reply the same message
// would have got on the submission port, so callers can tell a permanent
// refusal (Code 5xx: bad recipient, not allowed sender, too large) from a
// temporary one (4xx).
type SubmitError struct {
	Rcpt string // the recipient refused, "" for the whole message
	*smtp.SMTPError
}

func (e *SubmitError) Error() string {
	if e.Rcpt != "" {
		return fmt.Sprintf("smtpserver: recipient %s refused: %d %s", e.Rcpt, e.Code, e.Message)
	}
	return fmt.Sprintf("smtpserver: message refused: %d %s", e.Code, e.Message)
}

// Temporary reports whether trying again later may succeed.
func (e *SubmitError) Temporary() bool { return e.Code >= 400 && e.Code < 500 }

// Submit sends raw as acct, exactly as if acct had signed in on the
// submission port and sent it: the sender must be the account or one of
// its aliases, department lists expand, local recipients get their copy
// durably before Submit returns, and remote ones are queued. It is how
// webmail sends. raw must have CRLF line endings.
func (s *Server) Submit(ctx context.Context, acct mailcore.Account, from string, rcpts []string, raw []byte) error {
	if len(rcpts) == 0 {
		return &SubmitError{SMTPError: &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "No recipients"}}
	}
	if len(rcpts) > s.cfg.MaxRecipients {
		return &SubmitError{SMTPError: &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3}, Message: "Too many recipients"}}
	}
	if int64(len(raw)) > s.cfg.MaxMessageSize {
		return &SubmitError{SMTPError: smtp.ErrDataTooLarge}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ss := &session{s: s, service: ServiceWebmail, submit: true, account: &acct, ip: "127.0.0.1"}
	ss.log = s.log.With("service", ServiceWebmail, "account", acct.Address)
	if err := ss.Mail(from, &smtp.MailOptions{Size: int64(len(raw))}); err != nil {
		return asSubmitError("", err)
	}
	for _, r := range rcpts {
		if err := ss.Rcpt(r, nil); err != nil {
			return asSubmitError(r, err)
		}
	}
	if err := ss.Data(bytes.NewReader(raw)); err != nil {
		return asSubmitError("", err)
	}
	return nil
}

func asSubmitError(rcpt string, err error) error {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return &SubmitError{Rcpt: rcpt, SMTPError: se}
	}
	return err
}
