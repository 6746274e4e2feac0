package imapserver

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govhub/govhub/mailcore"
)

// TestMbsync syncs INBOX both ways between govhub and a local Maildir with
// mbsync (Debian package isync), the way a user keeps an offline copy:
// messages appear on both sides and flags propagate in both directions.
func TestMbsync(t *testing.T) {
	bin, err := exec.LookPath("mbsync")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("mbsync missing under CI: .ci/run must apt-get install isync")
		}
		t.Skip("mbsync not installed (apt-get install isync): mbsync test not run")
	}
	e := newEnv(t, nil)
	ctx := context.Background()
	e.deliver("From server one", "a@example.gov", "one")
	uid2 := e.deliver("From server two", "b@example.gov", "two")

	dir := t.TempDir()
	cert := filepath.Join(dir, "cert.pem")
	os.WriteFile(cert, e.certPEM, 0o600)
	maildir := filepath.Join(dir, "mail")
	os.MkdirAll(maildir, 0o700)
	host, port, _ := strings.Cut(e.tlsAddr, ":")
	cfg := fmt.Sprintf(`IMAPAccount govhub
Host %s
Port %s
User %s
Pass "%s"
SSLType IMAPS
SystemCertificates no
CertificateFile %s

IMAPStore remote
Account govhub

MaildirStore local
Path %s/
Inbox %s/INBOX

Channel sync
Far :remote:
Near :local:
Patterns INBOX
Create Both
Expunge Both
Sync All
SyncState *
`, host, port, testUser, testPass, cert, maildir, maildir)
	cfgPath := filepath.Join(dir, "mbsyncrc")
	os.WriteFile(cfgPath, []byte(cfg), 0o600)
	run := func() {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(cctx, bin, "-c", cfgPath, "-a").CombinedOutput()
		if err != nil {
			t.Fatalf("mbsync: %v\n%s", err, out)
		}
	}
	run()

	files := func() []string {
		var out []string
		for _, sub := range []string{"new", "cur"} {
			es, _ := os.ReadDir(filepath.Join(maildir, "INBOX", sub))
			for _, de := range es {
				out = append(out, filepath.Join(maildir, "INBOX", sub, de.Name()))
			}
		}
		return out
	}
	if fs := files(); len(fs) != 2 {
		t.Fatalf("after first sync the Maildir has %d messages, want 2: %v", len(fs), fs)
	}

	// Local → server: a new message, already seen and flagged.
	local := filepath.Join(maildir, "INBOX", "cur", fmt.Sprintf("%d.local.host:2,FS", time.Now().Unix()))
	os.WriteFile(local, []byte("From: me@example.gov\r\nSubject: From maildir\r\n\r\nlocal\r\n"), 0o600)
	// Server → local: flag a message on the server.
	if _, err := e.store.StoreFlags(ctx, e.inbox.ID, []uint32{uid2}, mailcore.FlagsAdd, mailcore.FlagFlagged); err != nil {
		t.Fatal(err)
	}
	run()

	msgs, err := e.store.Messages(ctx, e.inbox.ID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 {
		t.Fatalf("server has %d messages after sync, want 3", len(msgs))
	}
	var found bool
	for _, m := range msgs {
		if m.Subject == "From maildir" {
			found = true
			if m.Flags&mailcore.FlagFlagged == 0 || m.Flags&mailcore.FlagSeen == 0 {
				t.Fatalf("local flags not propagated: %v", m.Flags.Names())
			}
		}
	}
	if !found {
		t.Fatal("local message not uploaded")
	}
	flagged := 0
	for _, f := range files() {
		if i := strings.Index(f, ":2,"); i >= 0 && strings.Contains(f[i:], "F") {
			flagged++
		}
	}
	if flagged != 2 {
		t.Fatalf("flagged files in Maildir = %d, want 2 (server flag not propagated): %v", flagged, files())
	}
}
