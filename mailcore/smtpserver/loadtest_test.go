package smtpserver

import (
	"context"
	"testing"
)

func TestLoadTest(t *testing.T) {
	e := newEnv(t, "", nil)
	ctx := context.Background()
	res, err := LoadTest(ctx, LoadOptions{Target: e.mx, Conns: 4, Messages: 40, Recipients: 2, Size: 4096,
		From: "bench@elsewhere.example", To: []string{bob, carol},
		Readable: func(ctx context.Context, accepted int) (bool, error) {
			return len(e.inbox(t, bob)) >= accepted, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 40 || res.Failed != 0 || res.PerSecond <= 0 || res.Bytes < 40*4096 || res.UntilReadable <= 0 {
		t.Fatalf("result %+v", res)
	}
	if n := len(e.inbox(t, bob)); n != 40 {
		t.Fatalf("bob has %d", n)
	}

	// Submission with STARTTLS and AUTH; refusals are counted, not fatal.
	res, err = LoadTest(ctx, LoadOptions{Target: e.sub, Conns: 2, Messages: 6, TLS: LoadSTARTTLS, TLSConfig: e.clientTLS,
		Username: alice, Password: alicePW, From: alice, To: []string{bob, "nobody@example.gov.cn"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 3 || res.Failed != 3 || res.Errors["550 5.1.1 No such user here"] != 3 {
		t.Fatalf("result %+v", res)
	}

	if _, err := LoadTest(ctx, LoadOptions{Target: "127.0.0.1:1", From: "a@b.c", To: []string{bob}}); err == nil {
		t.Fatal("no error when nothing could connect")
	}
}
