package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govhub/govhub/internal/passhash"
	"github.com/govhub/govhub/internal/sqldb"
	"github.com/govhub/govhub/mailcore"
	"github.com/govhub/govhub/mailcore/volume"
	"golang.org/x/crypto/bcrypt"
)

// These tests build the real binary and run it as a user would.

var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "govhub-bin-")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "govhub")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// run runs govhub with args and stdin, returning stdout, stderr, exit code.
func run(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func TestHelp(t *testing.T) {
	for _, c := range [][]string{{}, {"serve"}, {"migrate"}, {"user"}, {"user", "add"}, {"user", "import"}, {"user", "list"}, {"user", "quota"}, {"fsck"}, {"compact"}, {"bench"}, {"bench", "store"}, {"bench", "import"}, {"bench", "smtp"}, {"queue"}, {"queue", "list"}, {"queue", "retry"}, {"queue", "delete"}, {"queue", "dkim"}, {"sync"}, {"sync", "run"}, {"sync", "peers"}, {"sync", "history"}, {"sync", "show"}, {"sync", "schedule"}, {"sync", "schedule", "set"}, {"sync", "schedule", "list"}, {"sync", "schedule", "pause"}, {"sync", "schedule", "resume"}, {"version"}} {
		out, errs, code := run(t, "", append(c, "--help")...)
		if code != 0 || !strings.Contains(out, "Usage:") || !strings.Contains(out, "--data") {
			t.Errorf("govhub %v --help: exit %d\n%s%s", c, code, out, errs)
		}
	}
	out, _, code := run(t, "", "version")
	if code != 0 || !strings.HasPrefix(out, "govhub ") {
		t.Errorf("version: %d %q", code, out)
	}
	if _, errs, code := run(t, "", "frobnicate"); code != 2 || !strings.Contains(errs, "unknown command") {
		t.Errorf("unknown command: exit %d %q", code, errs)
	}
}

func TestUserCommands(t *testing.T) {
	data := t.TempDir()
	out, errs, code := run(t, "correct horse battery\n", "--data", data, "user", "add", "Zhang.San@gov.example", "--name", "张三", "--password-stdin", "--quota", "2GiB")
	if code != 0 || !strings.Contains(out, "created zhang.san@gov.example (quota 2GiB)") {
		t.Fatalf("user add: %d %q %q", code, out, errs)
	}
	if _, _, code := run(t, "", "--data", data, "user", "add", "li.si@gov.example"); code != 0 {
		t.Fatal("sso-only add failed")
	}
	if _, errs, code := run(t, "", "--data", data, "user", "add", "zhang.san@gov.example"); code != 2 || !strings.Contains(errs, "already exists") {
		t.Fatalf("duplicate add: %d %q", code, errs)
	}
	if _, errs, code := run(t, "", "--data", data, "user", "add", "not-an-address"); code != 2 || !strings.Contains(errs, "invalid address") {
		t.Fatalf("bad address: %d %q", code, errs)
	}
	out, _, _ = run(t, "", "--data", data, "user", "list")
	if !strings.Contains(out, "zhang.san@gov.example") || !strings.Contains(out, "张三") || !strings.Contains(out, "sso-only") {
		t.Fatalf("list:\n%s", out)
	}
	out, _, code = run(t, "", "--data", data, "user", "quota", "li.si@gov.example", "500MiB")
	if code != 0 || !strings.Contains(out, "of 500MiB") {
		t.Fatalf("quota set: %q", out)
	}
	// The stored password is an argon2id hash of what was typed.
	db, err := sqldb.Open(context.Background(), filepath.Join(data, "govhub.db"), sqldb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var h string
	db.X.Get(&h, `SELECT password_hash FROM accounts WHERE address = 'zhang.san@gov.example'`)
	if ok, err := passhash.Verify(h, "correct horse battery"); !ok || err != nil || !strings.HasPrefix(h, "$argon2id$") {
		t.Fatalf("stored hash %q does not verify: %v", h, err)
	}
}

func TestUserImport(t *testing.T) {
	data := t.TempDir()
	argon, _ := passhash.Hash("from-argon")
	bc, _ := bcrypt.GenerateFromPassword([]byte("from-bcrypt"), 4)
	csv := strings.Join([]string{
		"email,password,name,quota",
		"a1@gov.example,,SSO 用户,",
		"a2@gov.example,plain-secret,明文,1GiB",
		"a3@gov.example,\"" + argon + "\",Argon,unlimited", // PHC strings hold commas: quoted
		"a4@gov.example," + string(bc) + ",Bcrypt,300MiB",
		"a5@gov.example,{SHA512-CRYPT}$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1,Dovecot,",
		"a6@gov.example,$1$salt$qJH7.N4xYta3aEG/dfqo/0,MD5,",
		"bad address,,Bad,",
		"a7@gov.example,,Bad quota,lots",
		"a1@gov.example,,Duplicate,",
		"a8@gov.example,,Too,many,columns",
	}, "\n") + "\n"
	path := filepath.Join(t.TempDir(), "staff.csv")
	os.WriteFile(path, []byte(csv), 0o600)
	out, errs, code := run(t, "", "--data", data, "user", "import", path)
	if code != 1 || !strings.Contains(out, "created 5, updated 0, failed 5") {
		t.Fatalf("import: exit %d\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{"line 7: a6@gov.example", "md5", "line 8: bad address", "line 9: a7@gov.example: quota", "line 10: a1@gov.example", "line 11: 5 columns"} {
		if !strings.Contains(errs, want) {
			t.Errorf("import errors lack %q:\n%s", want, errs)
		}
	}
	db, err := sqldb.Open(context.Background(), filepath.Join(data, "govhub.db"), sqldb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	check := map[string]string{"a2@gov.example": "plain-secret", "a3@gov.example": "from-argon", "a4@gov.example": "from-bcrypt", "a5@gov.example": "Hello world!"}
	for addr, pw := range check {
		var h string
		if err := db.X.Get(&h, db.Rebind(`SELECT password_hash FROM accounts WHERE address = ?`), addr); err != nil {
			t.Fatal(addr, err)
		}
		if ok, err := passhash.Verify(h, pw); !ok || err != nil {
			t.Errorf("%s: hash %q does not verify %q: %v", addr, h, pw, err)
		}
	}
	var q struct {
		Q1 int64  `db:"q1"`
		Q3 int64  `db:"q3"`
		Q4 int64  `db:"q4"`
		P1 string `db:"p1"`
	}
	db.X.Get(&q, `SELECT (SELECT quota_bytes FROM accounts WHERE address='a1@gov.example') q1, (SELECT quota_bytes FROM accounts WHERE address='a3@gov.example') q3,
		(SELECT quota_bytes FROM accounts WHERE address='a4@gov.example') q4, (SELECT password_hash FROM accounts WHERE address='a1@gov.example') p1`)
	if q.Q1 != 1<<30 || q.Q3 != 0 || q.Q4 != 300<<20 || q.P1 != "" {
		t.Fatalf("quotas/passwords = %+v", q)
	}
}

func TestFsckExitCodes(t *testing.T) {
	data := t.TempDir()
	if _, _, code := run(t, "", "--data", data, "user", "add", "f@gov.example"); code != 0 {
		t.Fatal("add")
	}
	// Deliver a few messages in-process, as the SMTP module would.
	ctx := context.Background()
	db, err := sqldb.Open(ctx, filepath.Join(data, "govhub.db"), sqldb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	vs, err := volume.Open(volume.Options{Dir: filepath.Join(data, "volumes")})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := mailcore.Open(mailcore.Options{DB: db, Blobs: vs})
	_, r, err := st.ResolveRecipient(ctx, "f@gov.example")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := st.Deliver(ctx, []byte(fmt.Sprintf("Subject: %d\r\n\r\nbody %d\r\n", i, i)), []mailcore.Recipient{r}, mailcore.DeliverOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	vs.Close()
	if out, errs, code := run(t, "", "--data", data, "fsck", "--deep"); code != 0 || !strings.Contains(out, "clean") {
		t.Fatalf("fsck clean store: %d\n%s%s", code, out, errs)
	}
	db.X.Exec(`UPDATE accounts SET used_bytes = used_bytes + 7`)
	db.Close()
	out, errs, code := run(t, "", "--data", data, "fsck", "--json")
	if code != 1 || !strings.Contains(out, `"quota"`) {
		t.Fatalf("fsck damaged store: %d\n%s%s", code, out, errs)
	}
	var rep mailcore.FsckReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Messages != 5 {
		t.Fatalf("fsck json: %v %+v", err, rep)
	}
	if _, _, code := run(t, "", "--data", data, "fsck", "--repair"); code != 0 {
		t.Fatal("repair failed")
	}
	if _, _, code := run(t, "", "--data", data, "fsck"); code != 0 {
		t.Fatal("not clean after repair")
	}
}

// startServe runs `govhub serve` on free loopback ports and returns the
// printed address of every listener, keyed by name.
func startServe(t *testing.T, data string, extra ...string) (*exec.Cmd, map[string]string, *bytes.Buffer) {
	t.Helper()
	args := []string{"--data", data, "serve"}
	for _, n := range []string{"smtp", "submission", "submissions", "imap", "imaps", "http", "https"} {
		args = append(args, "--"+n, "127.0.0.1:0")
	}
	cmd := exec.Command(bin, append(args, extra...)...)
	stdout, _ := cmd.StdoutPipe()
	stderr := &bytes.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addrs := map[string]string{}
	sc := bufio.NewScanner(stdout)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) && sc.Scan() {
		l := sc.Text()
		if name, rest, ok := strings.Cut(l, ": listening on "); ok {
			addrs[name] = rest
		}
		if l == "govhub: ready" {
			break
		}
	}
	if addrs["http"] == "" {
		t.Fatalf("serve printed no http address (got %v); stderr:\n%s", addrs, stderr.String())
	}
	go io.Copy(io.Discard, stdout)
	return cmd, addrs, stderr
}

func hostPort(u string) string {
	_, hp, _ := strings.Cut(u, "://")
	return hp
}

func TestServe(t *testing.T) {
	data := t.TempDir()
	cmd, addrs, stderr := startServe(t, data)
	for _, n := range []string{"smtp", "submission", "submissions", "imap", "imaps", "http"} {
		if addrs[n] == "" {
			t.Errorf("no %s listener printed: %v", n, addrs)
		}
	}
	base := addrs["http"]
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d %s", p, resp.StatusCode, body)
		}
		if p == "/metrics" && !strings.Contains(string(body), "govhub_store_deliver_seconds") {
			t.Errorf("/metrics lacks the store series:\n%.500s", body)
		}
	}
	// A second server on the same data directory is refused: the volumes
	// have one owner.
	if _, errs, code := run(t, "", "--data", data, "serve", "--modules", "http", "--http", "127.0.0.1:0"); code != 2 || !strings.Contains(errs, "in use") {
		t.Errorf("second serve: exit %d %q", code, errs)
	}
	// fsck without --repair runs beside the server.
	if out, errs, code := run(t, "", "--data", data, "fsck"); code != 0 {
		t.Errorf("fsck beside serve: %d %s %s", code, out, errs)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve did not stop cleanly on SIGTERM: %v\n%s", err, stderr.String())
	}
	for _, f := range []string{"govhub.db", "volumes", "tls"} {
		if _, err := os.Stat(filepath.Join(data, f)); err != nil {
			t.Errorf("data dir lacks %s: %v", f, err)
		}
	}
}

// TestServeMailFlow is the first-run experience end to end: an account
// made with `user add`, mail sent to the running server over SMTP with
// Python's smtplib, read back over IMAPS with imaplib, Chinese subject
// search included.
func TestServeMailFlow(t *testing.T) {
	py := python(t)
	data := t.TempDir()
	if _, errs, code := run(t, "pw-of-zhang\n", "--data", data, "user", "add", "zhang@gov.example", "--password-stdin"); code != 0 {
		t.Fatal(errs)
	}
	_, addrs, stderr := startServe(t, data)
	script := `
import smtplib, imaplib, ssl, sys, email.header
smtp_hp, imaps_hp = sys.argv[1], sys.argv[2]
h, p = smtp_hp.rsplit(":", 1)
msg = ("From: =?UTF-8?B?5p2O5Zub?= <lisi@elsewhere.example>\r\nTo: zhang@gov.example\r\n"
       "Subject: =?UTF-8?B?5YWz5LqO5byA5Lya55qE6YCa55+l?=\r\nMessage-ID: <e2e-1@elsewhere.example>\r\n\r\n"
       "Please read the attached notice.\r\n")
with smtplib.SMTP(h, int(p)) as s:
    s.sendmail("lisi@elsewhere.example", ["zhang@gov.example"], msg.encode())
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
h, p = imaps_hp.rsplit(":", 1)
m = imaplib.IMAP4_SSL(h, int(p), ssl_context=ctx)
m.login("zhang@gov.example", "pw-of-zhang")
typ, data = m.select("INBOX")
assert typ == "OK" and data[0] == b"1", (typ, data)
typ, data = m.fetch("1", "(BODY.PEEK[])")
body = data[0][1]
assert b"Received:" in body and body.endswith(msg.encode()), body
m.literal = "关于开会的通知".encode("utf-8")[3:12]
typ, data = m.uid("SEARCH", "CHARSET", "UTF-8", "SUBJECT")
assert typ == "OK" and data[0].split() == [b"1"], (typ, data)
m.logout()
print("ok")
`
	cmd := exec.Command(py, "-c", script, hostPort(addrs["smtp"]), hostPort(addrs["imaps"]))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok") {
		t.Fatalf("python client: %v\n%s\nserver stderr:\n%s", err, out, stderr.String())
	}
}

func TestBenchStore(t *testing.T) {
	out, errs, code := run(t, "", "bench", "store", "--messages", "200", "--recipients", "3", "--size", "4096", "--concurrency", "4", "--json")
	if code != 0 {
		t.Fatalf("bench: %d %s %s", code, out, errs)
	}
	var res storeBenchResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("bench json: %v\n%s", err, out)
	}
	if res.Messages != 200 || res.Recipients != 3 || res.MessagesPerSec <= 0 || res.DeliveriesPerSec < 2.9*res.MessagesPerSec || res.DataDir == "" {
		t.Fatalf("bench result = %+v", res)
	}
	// Single instance: 600 deliveries of 200 distinct 4 KiB bodies cost
	// far less than 600 bodies.
	if res.DiskBytesPerDeliv > 4096 {
		t.Fatalf("%.0f bytes per delivery: bodies not stored once", res.DiskBytesPerDeliv)
	}
	if _, err := os.Stat(res.DataDir); !os.IsNotExist(err) {
		t.Errorf("bench left its data dir %s behind", res.DataDir)
	}
}

// TestQueueCommands: mail submitted for a remote domain waits in the queue
// (the delivery module is not running), shows in `queue list`, and `queue
// delete` drops it and its body reference.
func TestQueueCommands(t *testing.T) {
	py := python(t)
	data := t.TempDir()
	if _, errs, code := run(t, "pw-of-wang\n", "--data", data, "user", "add", "wang@gov.example", "--password-stdin"); code != 0 {
		t.Fatal(errs)
	}
	_, addrs, stderr := startServe(t, data, "--modules", "smtp,http")
	script := `
import smtplib, ssl, sys
h, p = sys.argv[1].rsplit(":", 1)
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
with smtplib.SMTP(h, int(p)) as s:
    s.starttls(context=ctx)
    s.login("wang@gov.example", "pw-of-wang")
    s.sendmail("wang@gov.example", ["someone@remote.example"], b"From: wang@gov.example\r\nTo: someone@remote.example\r\nSubject: hi\r\n\r\nhello\r\n")
print("ok")
`
	if out, err := exec.Command(py, "-c", script, hostPort(addrs["submission"])).CombinedOutput(); err != nil {
		t.Fatalf("submit: %v\n%s\n%s", err, out, stderr.String())
	}
	out, errs, code := run(t, "", "--data", data, "queue", "list", "--json")
	if code != 0 {
		t.Fatalf("queue list: %d %s", code, errs)
	}
	var it struct {
		ID         int64
		Sender     string
		Recipients []struct{ Address, Status string }
	}
	if err := json.Unmarshal([]byte(out), &it); err != nil || it.Sender != "wang@gov.example" || len(it.Recipients) != 1 ||
		it.Recipients[0].Address != "someone@remote.example" || it.Recipients[0].Status != "queued" {
		t.Fatalf("queue list = %q (%v)", out, err)
	}
	if out, errs, code := run(t, "", "--data", data, "queue", "delete", fmt.Sprint(it.ID)); code != 0 || !strings.Contains(out, "deleted") {
		t.Fatalf("queue delete: %d %s %s", code, out, errs)
	}
	if out, _, _ := run(t, "", "--data", data, "queue", "list"); !strings.Contains(out, "queue is empty") {
		t.Fatalf("after delete: %s", out)
	}
	if out, errs, code := run(t, "", "--data", data, "fsck"); code != 0 {
		t.Fatalf("fsck after queue delete: %s %s", out, errs)
	}
}

func TestBenchSMTP(t *testing.T) {
	out, errs, code := run(t, "", "bench", "smtp", "--messages", "60", "--conns", "4", "--recipients", "3", "--size", "2048", "--json")
	if code != 0 {
		t.Fatalf("bench smtp: %d %s %s", code, out, errs)
	}
	var res struct {
		Accepted      int     `json:"accepted"`
		PerSecond     float64 `json:"accepted_per_second"`
		UntilReadable int64   `json:"until_readable_ns"`
		Deliveries    float64 `json:"deliveries_per_second"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if res.Accepted != 60 || res.PerSecond <= 0 || res.UntilReadable <= 0 || res.Deliveries < 2.9*res.PerSecond {
		t.Fatalf("bench smtp = %+v", res)
	}
}

// python returns Debian's python3 for the real-client tests (smtplib,
// imaplib). CI installs it, so under CI=true its absence fails the test.
func python(t *testing.T) string {
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 missing under CI: .ci/run installs it")
		}
		t.Skip("python3 not installed")
	}
	return py
}
