package smtpserver

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// fakeGroups is a department list: office@ has bob, carol and a member
// without a mailbox.
type fakeGroups map[string][]string

func (g fakeGroups) Members(_ context.Context, addr string) ([]string, bool, error) {
	m, ok := g[addr]
	return m, ok, nil
}

func TestGroupAddress(t *testing.T) {
	const office = "office@example.gov.cn"
	e := newEnv(t, "", func(c *Config) {
		c.Groups = fakeGroups{office: {bob, carol, "nobody@example.gov.cn", bob}}
	})
	msg := "From: " + alice + "\r\nTo: " + office + "\r\nSubject: =?UTF-8?B?6YCa55+l?=\r\n\r\nto the whole office\r\n"
	// From outside (MX): a group address is refused, no open fan-out.
	err := e.sendMX(t, "outsider@elsewhere.example", []string{office}, strings.NewReader(msg))
	if code, ec := smtpCode(t, err); code != 550 || ec != (smtp.EnhancedCode{5, 7, 1}) {
		t.Fatalf("group on MX: %d %v (%v)", code, ec, err)
	}
	// Signed in: every member with a mailbox gets it, once.
	c, err := smtp.DialStartTLS(e.sub, e.clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", alice, alicePW)); err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail(alice, []string{office}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{bob, carol} {
		in := e.inbox(t, who)
		if len(in) != 1 || !bytes.HasSuffix(in[0], []byte(msg)) {
			t.Fatalf("%s got %d messages", who, len(in))
		}
	}
	var bodies int
	e.store.DB().X.Get(&bodies, `SELECT COUNT(*) FROM blobs b WHERE EXISTS (SELECT 1 FROM messages m WHERE m.blob_id = b.id AND m.subject = '通知')`)
	if bodies != 1 {
		t.Fatalf("%d bodies stored for one message to a group", bodies)
	}
}
