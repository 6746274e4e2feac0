package smtpserver

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

// TestSubmit: webmail's in-process hand-over follows the submission
// rules: sender must be the account or an alias, unknown local
// recipients refused with the reply SMTP would give, local copies stored
// before Submit returns, remote recipients queued.
func TestSubmit(t *testing.T) {
	e := newEnv(t, "", nil)
	ctx := context.Background()
	a, err := e.store.AccountByAddress(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	msg := message("from webmail", "hello")
	err = e.srv.Submit(ctx, a, bob, []string{bob}, msg)
	var se *SubmitError
	if !errors.As(err, &se) || se.Code != 553 || se.Temporary() {
		t.Fatalf("foreign sender: %v", err)
	}
	err = e.srv.Submit(ctx, a, alice, []string{"nobody@" + strings.SplitN(bob, "@", 2)[1]}, msg)
	if !errors.As(err, &se) || se.Code != 550 || se.Rcpt == "" {
		t.Fatalf("unknown local recipient: %v", err)
	}
	if n := len(e.inbox(t, bob)); n != 0 {
		t.Fatalf("refused submission delivered %d", n)
	}
	if err := e.srv.Submit(ctx, a, aliceAl, []string{bob, "Remote@Elsewhere.example"}, msg); err != nil {
		t.Fatal(err)
	}
	got := e.inbox(t, bob)
	if len(got) != 1 {
		t.Fatalf("bob has %d", len(got))
	}
	prefix := checkStored(t, got[0], msg, aliceAl)
	if !strings.Contains(prefix, "with HTTPSA id ") {
		t.Errorf("Received lacks the webmail clause: %q", prefix)
	}
	calls := e.out.Calls()
	if len(calls) != 1 || calls[0].rcpts[0] != "remote@elsewhere.example" || !bytes.HasSuffix(calls[0].raw, msg) {
		t.Fatalf("queued %+v", calls)
	}
	if err := e.srv.Submit(ctx, a, alice, nil, msg); !errors.As(err, &se) {
		t.Fatalf("no recipients: %v", err)
	}
}
