// Package testbrowser starts Debian's headless Chromium for browser tests
// (webmail's pages, the end-to-end day in the browser) and keeps their
// screenshots. It is test plumbing; no production code imports it.
package testbrowser

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Path is where Debian's chromium package puts the browser (.ci/run
// installs it).
const Path = "/usr/bin/chromium"

// Options tune Start.
type Options struct {
	// Timeout bounds the browser's whole life (default 60 s).
	Timeout time.Duration
	// IgnoreCertErrors stands in for a user who accepted govhub's
	// generated self-signed certificate.
	IgnoreCertErrors bool
}

// Start runs headless Chromium at 1280x800 until t ends and returns its
// chromedp context. Under CI=true a missing browser fails the test;
// elsewhere it skips, saying why. The flags are those this machine's
// closed network needs (no background networking, no component updates).
func Start(t testing.TB, o Options) context.Context {
	t.Helper()
	if _, err := os.Stat(Path); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium missing at %s under CI: .ci/run installs it: %v", Path, err)
		}
		t.Skipf("chromium not installed at %s (apt-get install chromium); CI installs it", Path)
	}
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	parent, cancelParent := context.WithTimeout(context.Background(), o.Timeout)
	t.Cleanup(cancelParent)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(Path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	}
	if o.IgnoreCertErrors {
		opts = append(opts, chromedp.Flag("ignore-certificate-errors", true))
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(parent, opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// Artefacts returns the directory screenshots go to:
// $GOVHUB_ARTIFACTS/<sub> when that is set, else the test's temp dir.
func Artefacts(t testing.TB, sub string) string {
	dir := os.Getenv("GOVHUB_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	dir = filepath.Join(dir, sub)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
