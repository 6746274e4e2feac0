package imapserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govhub/govhub/internal/tlsconf"
)

// BenchmarkUIDFetchAllDovecot is the reference for BenchmarkUIDFetchAll:
// the same 20,000 messages in a Maildir served by a local Dovecot
// (Debian dovecot-imapd) over TLS, the same command, the same client.
// Run both with: go test -run XXX -bench UIDFetchAll ./mailcore/imapserver/
func BenchmarkUIDFetchAllDovecot(b *testing.B) {
	bin, err := exec.LookPath("dovecot")
	if err != nil {
		for _, p := range []string{"/usr/sbin/dovecot"} {
			if _, err2 := os.Stat(p); err2 == nil {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		b.Skip("dovecot not installed (apt-get install dovecot-imapd): no reference measurement")
	}
	n := 20000
	if testing.Short() {
		n = 2000
	}
	dir, err := os.MkdirTemp("", "dovecot-bench")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	maildir := filepath.Join(dir, "Maildir")
	for _, sub := range []string{"cur", "new", "tmp"} {
		os.MkdirAll(filepath.Join(maildir, sub), 0o755)
	}
	now := time.Now().Unix()
	for i := 0; i < n; i++ {
		raw := fmt.Sprintf("From: Sender %d <s%d@example.gov>\r\nTo: %s\r\nSubject: 通知 number %d about the quarterly budget\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\nMessage-ID: <%d.bench@example.gov>\r\n\r\nBody of message %d, a few words of text to make it realistic.\r\n",
			i%50, i%50, testUser, i, i, i)
		name := fmt.Sprintf("%d.M%dP1.bench,S=%d:2,", now, i, len(raw))
		if err := os.WriteFile(filepath.Join(maildir, "cur", name), []byte(raw), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	certPEM, keyPEM, err := tlsconf.Generate("localhost", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "cert.pem"), certPEM, 0o644)
	os.WriteFile(filepath.Join(dir, "key.pem"), keyPEM, 0o600)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	uid, gid := os.Getuid(), os.Getgid()
	if uid == 0 {
		// Dovecot refuses mail access as root: hand the Maildir to nobody.
		uid, gid = 65534, 65534
		filepath.Walk(maildir, func(p string, _ os.FileInfo, _ error) error { return os.Chown(p, uid, gid) })
		os.Chown(dir, uid, gid)
	}
	conf := fmt.Sprintf(`base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <%[1]s/cert.pem
ssl_key = <%[1]s/key.pem
auth_mechanisms = plain
mail_location = maildir:%[1]s/Maildir
first_valid_uid = 0
passdb {
  driver = static
  args = password=%[2]s
}
userdb {
  driver = static
  args = uid=%[3]d gid=%[4]d home=%[1]s
}
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    port = %[5]d
    ssl = yes
  }
}
`, dir, "benchpass", uid, gid, port)
	confPath := filepath.Join(dir, "dovecot.conf")
	os.WriteFile(confPath, []byte(conf), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-F", "-c", confPath)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		cancel()
		cmd.Wait()
	}()
	var c net.Conn
	for i := 0; i < 100; i++ {
		c, err = tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{InsecureSkipVerify: true})
		if err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
		b.Fatalf("dovecot did not start: %v\n%s\n%s", err, out.String(), log)
	}
	defer c.Close()
	rc := &rawConn{t: b, c: c, br: bufio.NewReader(c)}
	rc.c.SetDeadline(time.Now().Add(10 * time.Minute))
	rc.expect("* OK")
	defer func() {
		if b.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
			b.Logf("dovecot log:\n%s", log)
		}
	}()
	if _, st := rc.cmd("L", "LOGIN bench benchpass"); !strings.HasPrefix(st, "L OK") {
		b.Fatal(st)
	}
	if _, st := rc.cmd("s", "SELECT INBOX"); !strings.HasPrefix(st, "s OK") {
		b.Fatal(st)
	}
	// Warm Dovecot's index and cache, as a client's first sync would.
	fetchAll(b, rc, n)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fetchAll(b, rc, n)
	}
	b.ReportMetric(float64(n), "messages")
}

func fetchAll(b *testing.B, c *rawConn, n int) {
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
