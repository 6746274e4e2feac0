package smtpserver

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Real mail clients against the in-process server. CI installs them
// (.ci/run: apt-get install swaks curl; python3 is on the image); outside CI
// a missing one is skipped with the reason.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not installed under CI=true: .ci/run must install it", name)
		}
		t.Skipf("%s not installed: real-client test not run", name)
	}
	return p
}

// clientMessage has what clients must pass through untouched: UTF-8 8-bit
// text, a line that starts with a dot (dot-stuffed on the wire, RFC 5321
// 4.5.2) and one that is only a dot.
func clientMessage(client string) []byte {
	return []byte("From: Alice <" + alice + ">\r\nTo: Bob <" + bob + ">\r\nSubject: via " + client +
		"\r\nMessage-ID: <" + client + "@example.gov.cn>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: 8bit\r\n\r\n关于召开会议的通知\r\n.leading dot\r\n..two dots\r\n.\r\nend\r\n")
}

func run(t *testing.T, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out.String())
		}
	case <-time.After(timeout):
		cmd.Process.Kill()
		t.Fatalf("%s timed out\n%s", name, out.String())
	}
	return out.String()
}

func writeFile(t *testing.T, data []byte) string {
	p := filepath.Join(t.TempDir(), "msg.eml")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func hostPort(t *testing.T, addr string) (string, string) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}

const pySend = `
import smtplib, ssl, sys
mode, host, port, cafile, user, pw, sender, rcpt, path = sys.argv[1:]
data = open(path, 'rb').read()
ctx = ssl.create_default_context(cafile=cafile)
if mode == 'ssl':
    s = smtplib.SMTP_SSL(host, int(port), context=ctx, timeout=20)
else:
    s = smtplib.SMTP(host, int(port), timeout=20)
    if mode == 'starttls':
        s.starttls(context=ctx)
if user:
    s.login(user, pw)
refused = s.sendmail(sender, [rcpt], data)
assert not refused, refused
s.quit()
`

func TestClientPython(t *testing.T) {
	py := requireTool(t, "python3")
	e := newEnv(t, "", nil)
	for i, tc := range []struct {
		mode, addr, user, from string
	}{
		{"plain", e.mx, "", "sender@elsewhere.example"},
		{"starttls", e.sub, carol, carol},
		{"ssl", e.subs, carol, carol},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			msg := clientMessage("python-" + tc.mode)
			h, p := hostPort(t, tc.addr)
			run(t, 30*time.Second, py, "-c", pySend, tc.mode, h, p, e.caFile, tc.user, carolPW, tc.from, bob, writeFile(t, msg))
			got := e.inbox(t, bob)
			if len(got) != i+1 {
				t.Fatalf("bob has %d", len(got))
			}
			checkStored(t, got[i], msg, tc.from)
		})
	}
}

func TestClientSwaks(t *testing.T) {
	swaks := requireTool(t, "swaks")
	e := newEnv(t, "", nil)
	for i, tc := range []struct {
		name string
		addr string
		args []string
		from string
	}{
		{"mx", e.mx, nil, "sender@elsewhere.example"},
		{"starttls-login", e.sub, []string{"--tls", "--auth", "LOGIN", "--auth-user", alice, "--auth-password", alicePW}, alice},
		{"implicit-plain", e.subs, []string{"--tls-on-connect", "--auth", "PLAIN", "--auth-user", alice, "--auth-password", alicePW}, alice},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// swaks ends the data with CRLF itself, so the file omits the
			// last one and the message stored is still msg.
			msg := clientMessage("swaks-" + tc.name)
			h, p := hostPort(t, tc.addr)
			args := []string{"--server", h, "--port", p, "--from", tc.from, "--to", bob,
				"--helo", "swaks.example", "--data", "@" + writeFile(t, msg[:len(msg)-2]), "--timeout", "20"}
			if len(tc.args) > 0 {
				args = append(append(args, "--tls-verify", "--tls-ca-path", e.caFile), tc.args...)
			}
			out := run(t, 40*time.Second, swaks, args...)
			got := e.inbox(t, bob)
			if len(got) != i+1 {
				t.Fatalf("bob has %d\n%s", len(got), out)
			}
			checkStored(t, got[i], msg, tc.from)
		})
	}
}

func TestClientCurl(t *testing.T) {
	curl := requireTool(t, "curl")
	e := newEnv(t, "", nil)
	for i, tc := range []struct {
		name, url string
		args      []string
		from      string
	}{
		{"smtp-mx", "smtp://" + e.mx, nil, "sender@elsewhere.example"},
		{"smtp-starttls", "smtp://" + e.sub, []string{"--ssl-reqd", "--user", alice + ":" + alicePW, "--login-options", "AUTH=LOGIN"}, alice},
		{"smtps", "smtps://" + e.subs, []string{"--user", alice + ":" + alicePW}, aliceAl},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := clientMessage("curl-" + tc.name)
			args := append([]string{"--silent", "--show-error", "--max-time", "20", "--url", tc.url + "/curl.example",
				"--mail-from", tc.from, "--mail-rcpt", bob, "--upload-file", writeFile(t, msg), "--cacert", e.caFile}, tc.args...)
			run(t, 30*time.Second, curl, args...)
			got := e.inbox(t, bob)
			if len(got) != i+1 {
				t.Fatalf("bob has %d", len(got))
			}
			prefix := checkStored(t, got[i], msg, tc.from)
			if i > 0 && !strings.Contains(prefix, "ESMTPSA") {
				t.Errorf("Received %q", prefix)
			}
		})
	}
}
