package imapserver

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govhub/govhub/mailcore"
)

// fillInbox delivers n messages of a few hundred bytes, in parallel
// batches so the group committer shares transactions.
func fillInbox(tb testing.TB, e *env, n int) {
	tb.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	per := (n + 7) / 8
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w * per; i < min(n, (w+1)*per); i++ {
				raw := fmt.Sprintf("From: Sender %d <s%d@example.gov>\r\nTo: %s\r\nSubject: 通知 number %d about the quarterly budget\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\nMessage-ID: <%d.bench@example.gov>\r\n\r\nBody of message %d, a few words of text to make it realistic.\r\n",
					i%50, i%50, testUser, i, i, i)
				res, err := e.store.Deliver(ctx, []byte(raw), []mailcore.Recipient{{AccountID: e.acct.ID, MailboxID: e.inbox.ID}}, mailcore.DeliverOptions{})
				if err == nil && res[0].Err != nil {
					err = res[0].Err
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	select {
	case err := <-errs:
		tb.Fatal(err)
	default:
	}
}

// BenchmarkUIDFetchAll measures UID FETCH 1:* (FLAGS INTERNALDATE
// RFC822.SIZE ENVELOPE) on a 20,000-message INBOX over TLS, reading every
// response line (the target: no slower than Dovecot).
func BenchmarkUIDFetchAll(b *testing.B) {
	n := 20000
	if testing.Short() {
		n = 2000
	}
	e := newEnv(b, nil)
	fillInbox(b, e, n)
	c := e.dialTLS()
	c.c.SetDeadline(time.Now().Add(10 * time.Minute))
	c.login()
	if _, st := c.cmd("s", "SELECT INBOX"); !strings.HasPrefix(st, "s OK") {
		b.Fatal(st)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.send("f UID FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)\r\n")
		got := 0
		for {
			l, err := c.br.ReadSlice('\n')
			if err != nil && err != bufio.ErrBufferFull {
				b.Fatal(err)
			}
			if len(l) > 2 && l[0] == 'f' && l[1] == ' ' {
				if !strings.HasPrefix(string(l), "f OK") {
					b.Fatal(string(l))
				}
				break
			}
			if len(l) > 0 && l[0] == '*' {
				got++
			}
		}
		if got != n {
			b.Fatalf("got %d FETCH responses, want %d", got, n)
		}
	}
	b.ReportMetric(float64(n), "messages")
}

const pyIdlers = `
import imaplib, ssl, sys, select, re
host, port, user, pw, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
ms = []
for i in range(n):
    M = imaplib.IMAP4_SSL(host, port, ssl_context=ctx)
    M.login(user, pw)
    M.select('INBOX')
    M.send(b'i IDLE\r\n')
    if not M.readline().startswith(b'+'):
        print('FAIL idle'); sys.exit(1)
    ms.append(M)
print('READY', flush=True)
sys.stdin.readline()
woke = 0
for M in ms:
    M.sock.settimeout(10)
    if re.match(rb'\* \d+ EXISTS', M.readline()):
        woke += 1
print('WOKE', woke, flush=True)
for M in ms:
    M.send(b'DONE\r\n')
`

// TestIdleSessionMemory measures what one TLS session in IDLE costs the
// server (heap and goroutine stacks, clients in a separate Python
// process), against the target of 10,000 sessions in 1 GiB (about 100 KiB
// each), and checks one delivery wakes all of them with the outbox polled
// once per tick, not once per session.
func TestIdleSessionMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: memory measurement not run")
	}
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 missing under CI")
		}
		t.Skip("python3 not installed: IDLE memory test not run")
	}
	const n = 300
	e := newEnv(t, func(c *Config) { c.PollInterval = 100 * time.Millisecond })
	measure := func() int64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapInuse + ms.StackInuse)
	}
	// One session first, so one-time allocations are not counted.
	w := e.dialTLS()
	w.login()
	w.cmd("s", "SELECT INBOX")
	before := measure()

	script := filepath.Join(t.TempDir(), "idlers.py")
	os.WriteFile(script, []byte(pyIdlers), 0o600)
	host, port, _ := strings.Cut(e.tlsAddr, ":")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, script, host, port, testUser, testPass, strconv.Itoa(n))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || sc.Text() != "READY" {
		t.Fatalf("idlers: %q %s", sc.Text(), stderr.String())
	}
	time.Sleep(300 * time.Millisecond)
	per := (measure() - before) / n
	t.Logf("server memory per IDLE TLS session: %d bytes (heap+stacks, %d sessions)", per, n)
	if per > 100<<10 {
		t.Errorf("an IDLE session costs %d bytes; 10,000 would not fit in 1 GiB", per)
	}
	polls0 := e.srv.polls.Load()
	e.deliver("wake", "a@example.gov", "x")
	stdin.Write([]byte("go\n"))
	if !sc.Scan() || sc.Text() != "WOKE "+strconv.Itoa(n) {
		t.Fatalf("woken: %q %s", sc.Text(), stderr.String())
	}
	polls := e.srv.polls.Load() - polls0
	t.Logf("%d IDLE sessions woken by one delivery; %d outbox queries meanwhile", n, polls)
	if polls > 100 {
		t.Errorf("%d outbox queries for one wake-up of %d sessions: polling is not shared", polls, n)
	}
	cmd.Wait()
}
