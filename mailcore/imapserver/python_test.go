package imapserver

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pyClient drives the server with Python's imaplib over implicit TLS, as
// a user's scripts and many mail tools do. It prints "IDLING" once in IDLE
// and waits for the Go side to deliver a message.
const pyClient = `
import imaplib, ssl, sys, time, re

host, port, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
M = imaplib.IMAP4_SSL(host, port, ssl_context=ctx)

def ok(r, what):
    typ, dat = r
    if typ != 'OK':
        print('FAIL', what, typ, dat); sys.exit(1)
    return dat

caps = M.capabilities
for c in ('IDLE', 'MOVE', 'UIDPLUS', 'NAMESPACE', 'SPECIAL-USE', 'QUOTA', 'UNSELECT', 'LITERAL+', 'ENABLE'):
    if c not in caps:
        print('FAIL missing capability', c, caps); sys.exit(1)
ok(M.login(user, pw), 'login')

dat = ok(M.list(), 'list')
names = b' '.join(dat)
for want in (b'INBOX', b'\\Sent', b'\\Trash', b'\\Archive'):
    if want not in names:
        print('FAIL list lacks', want, dat); sys.exit(1)

# A mailbox with a Chinese name travels in modified UTF-7 (RFC 3501 5.1.3).
ok(M.create('&kBp35Q-'), 'create utf7')  # 通知
dat = ok(M.list('', '*'), 'list utf7')
if b'&kBp35Q-' not in b' '.join(dat):
    print('FAIL utf7 name not listed', dat); sys.exit(1)

dat = ok(M.select('INBOX'), 'select')
if int(dat[0]) != 3:
    print('FAIL select count', dat); sys.exit(1)

dat = ok(M.fetch('1:*', '(FLAGS INTERNALDATE RFC822.SIZE UID ENVELOPE BODYSTRUCTURE)'), 'fetch')
if len([d for d in dat if isinstance(d, bytes) and b'ENVELOPE' in d]) != 3:
    print('FAIL fetch', dat); sys.exit(1)
if b'BODYSTRUCTURE ("text" "plain"' not in dat[0] and b'BODYSTRUCTURE ("TEXT" "PLAIN"' not in dat[0].upper():
    print('FAIL bodystructure', dat[0]); sys.exit(1)

dat = ok(M.fetch('1', '(BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[TEXT] BODY.PEEK[]<0.10>)'), 'fetch sections')
flat = b''.join(x if isinstance(x, bytes) else b''.join(x) for x in dat)
if b'Subject:' not in flat or b'hello world' not in flat:
    print('FAIL sections', dat); sys.exit(1)
dat = ok(M.fetch('1', '(FLAGS)'), 'flags')
if b'\\Seen' in dat[0]:
    print('FAIL PEEK set seen', dat); sys.exit(1)
ok(M.fetch('1', '(BODY[])'), 'fetch body')
dat = ok(M.fetch('1', '(FLAGS)'), 'flags2')
if b'\\Seen' not in dat[0]:
    print('FAIL BODY[] did not set seen', dat); sys.exit(1)

# SEARCH: Chinese subject (UTF-8 literal), from, flags, size, text, NOT/OR.
M.literal = '通知'.encode('utf-8')
dat = ok(M.uid('SEARCH', 'CHARSET', 'UTF-8', 'SUBJECT'), 'search zh')
if dat[0].split() != [b'2']:
    print('FAIL search subject zh', dat); sys.exit(1)
dat = ok(M.search(None, 'FROM', '"bob@"'), 'search from')
if dat[0].split() != [b'3']:
    print('FAIL search from', dat); sys.exit(1)
dat = ok(M.search(None, 'SEEN'), 'search seen')
if dat[0].split() != [b'1']:
    print('FAIL search seen', dat); sys.exit(1)
dat = ok(M.search(None, 'OR', 'SEEN', 'NOT', 'SMALLER', '1'), 'search or')
if len(dat[0].split()) != 3:
    print('FAIL search or', dat); sys.exit(1)
dat = ok(M.search(None, 'TEXT', 'budget'), 'search text')
if dat[0].split() != [b'3']:
    print('FAIL search text', dat); sys.exit(1)
M.literal = '会议'.encode('utf-8')
dat = ok(M.search('UTF-8', 'BODY'), 'search body zh')
if dat[0].split() != [b'2']:
    print('FAIL search body zh', dat); sys.exit(1)
dat = ok(M.search(None, 'SINCE', '01-Jan-2000', 'UID', '1:2'), 'search since')
if dat[0].split() != [b'1', b'2']:
    print('FAIL search since', dat); sys.exit(1)

# STORE
dat = ok(M.store('2', '+FLAGS', '(\\Flagged $Important)'), 'store')
if b'\\Flagged' not in dat[0] or b'$important' not in dat[0].lower():
    print('FAIL store', dat); sys.exit(1)
dat = ok(M.search(None, 'KEYWORD', '$Important'), 'search keyword')
if dat[0].split() != [b'2']:
    print('FAIL keyword', dat); sys.exit(1)

# COPY with COPYUID, then MOVE.
typ, dat = M.copy('1:2', 'Archive')
if typ != 'OK' or b'COPYUID' not in dat[0]:
    print('FAIL copy', typ, dat); sys.exit(1)
typ, dat = M._simple_command('MOVE', '3', 'Trash')
if typ != 'OK':
    print('FAIL move', typ, dat); sys.exit(1)
exp = M.response('EXPUNGE')[1]
if exp != [b'3']:
    print('FAIL move expunge', exp); sys.exit(1)

# EXPUNGE
ok(M.store('1', '+FLAGS', '\\Deleted'), 'store deleted')
ok(M.expunge(), 'expunge')
typ, dat = M.search(None, 'ALL')
if dat[0].split() != [b'1']:
    print('FAIL after expunge', dat); sys.exit(1)

# APPEND with APPENDUID
typ, dat = M.append('INBOX', '(\\Seen)', imaplib.Time2Internaldate(time.time()), b'Subject: appended\r\n\r\nbody\r\n')
if typ != 'OK' or b'APPENDUID' not in dat[0]:
    print('FAIL append', typ, dat); sys.exit(1)

# QUOTA and NAMESPACE
typ, dat = M.getquotaroot('INBOX')
if typ != 'OK' or b'STORAGE' not in b' '.join(x for x in dat[1] if isinstance(x, bytes)):
    print('FAIL quota', typ, dat); sys.exit(1)
typ, dat = M.namespace()
if typ != 'OK' or b'(("" "/"))' not in dat[0]:
    print('FAIL namespace', typ, dat); sys.exit(1)

# IDLE: a delivery by another goroutine through store.Deliver wakes it.
tag = M._new_tag()
M.send(tag + b' IDLE\r\n')
line = M.readline()
if not line.startswith(b'+'):
    print('FAIL idle', line); sys.exit(1)
print('IDLING', flush=True)
M.sock.settimeout(10)
line = M.readline()
if not re.match(rb'\* \d+ EXISTS', line):
    print('FAIL idle wake', line); sys.exit(1)
M.send(b'DONE\r\n')
while True:
    line = M.readline()
    if line.startswith(tag):
        break
if b'OK' not in line:
    print('FAIL idle done', line); sys.exit(1)
M.logout()
print('PASS')
`

func TestPythonImaplib(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 missing under CI")
		}
		t.Skip("python3 not installed: imaplib test not run")
	}
	e := newEnv(t, nil)
	e.deliver("Weekly report", "Carol <carol@example.gov>", "hello world")
	e.deliver("=?UTF-8?B?5Lya6K6u6YCa55+l?=", "Dept <dept@example.gov>", "明天开会议")
	e.deliver("Plan", "Bob <bob@example.org>", "the budget is ready")

	script := filepath.Join(t.TempDir(), "client.py")
	if err := os.WriteFile(script, []byte(pyClient), 0o600); err != nil {
		t.Fatal(err)
	}
	host, port, _ := strings.Cut(e.tlsAddr, ":")
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, script, host, port, testUser, testPass)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		l := sc.Text()
		lines = append(lines, l)
		if l == "IDLING" {
			go e.deliver("While idle", "Dave <dave@example.gov>", "wake up")
		}
	}
	err = cmd.Wait()
	if err != nil || len(lines) == 0 || lines[len(lines)-1] != "PASS" {
		t.Fatalf("imaplib: %v\nstdout:\n%s\nstderr:\n%s", err, strings.Join(lines, "\n"), stderr.String())
	}
}
