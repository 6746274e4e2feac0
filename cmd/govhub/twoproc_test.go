package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/govhub/govhub/internal/testdb"
)

// TestTwoProcessesOnePostgres runs two govhub processes against one
// PostgreSQL database, as the several-machine shape does: one serves only
// SMTP, the other only IMAP. Mail accepted by the first wakes an IDLE
// session on the second (the IDLE poller reads the shared outbox), and the
// second lists it from the shared rows. Each process has its own volume
// directory here; reading the body on a node that did not store it needs
// the shared object store of the several-machine shape (adapters/s3, not
// built yet), so this test fetches the envelope, which lives in SQL.
func TestTwoProcessesOnePostgres(t *testing.T) {
	if os.Getenv(testdb.EnvPostgres) == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s must be set under CI", testdb.EnvPostgres)
		}
		t.Skipf("%s not set", testdb.EnvPostgres)
	}
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is needed (installed by .ci/run)")
	}
	dbURL := testdb.PostgresURL(t)
	t.Setenv("GOVHUB_DATABASE_URL", dbURL) // inherited by the child processes
	dataA, dataB := t.TempDir(), t.TempDir()
	if _, errs, code := run(t, "pw-of-liu\n", "--data", dataA, "user", "add", "liu@gov.example", "--password-stdin"); code != 0 {
		t.Fatal(errs)
	}
	_, a, errA := startServe(t, dataA, "--modules", "smtp,http")
	_, b, errB := startServe(t, dataB, "--modules", "imap,http")
	script := `
import imaplib, smtplib, ssl, sys, threading, time, socket
smtp_hp, imaps_hp = sys.argv[1], sys.argv[2]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
h, p = imaps_hp.rsplit(":", 1)
m = imaplib.IMAP4_SSL(h, int(p), ssl_context=ctx)
m.login("liu@gov.example", "pw-of-liu")
typ, data = m.select("INBOX")
assert data[0] == b"0", data
tag = m._new_tag().decode()
m.send(("%s IDLE\r\n" % tag).encode())
assert m.readline().startswith(b"+"), "no IDLE continuation"
def send():
    time.sleep(0.5)
    sh, sp = smtp_hp.rsplit(":", 1)
    with smtplib.SMTP(sh, int(sp)) as s:
        s.sendmail("chen@elsewhere.example", ["liu@gov.example"],
            b"From: chen@elsewhere.example\r\nTo: liu@gov.example\r\nSubject: cross-node\r\n\r\nhi\r\n")
threading.Thread(target=send).start()
m.sock.settimeout(20)
line = m.readline()
assert line.strip() == b"* 1 EXISTS", line
m.send(b"DONE\r\n")
while not m.readline().startswith(tag.encode()):
    pass
typ, data = m.fetch("1", "(ENVELOPE)")
assert typ == "OK" and b"cross-node" in data[0], data
m.logout()
print("ok")
`
	out, err := exec.Command(py, "-c", script, hostPort(a["smtp"]), hostPort(b["imaps"])).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok") {
		t.Fatalf("cross-process IDLE: %v\n%s\nsmtp node:\n%s\nimap node:\n%s", err, out, errA, errB)
	}
}
