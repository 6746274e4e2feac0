package ui

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/govhub/govhub/internal/testbrowser"
)

// browser starts headless Chromium (Debian's package) for one test.
func browser(t *testing.T) context.Context {
	return testbrowser.Start(t, testbrowser.Options{})
}

func artefactDir(t *testing.T) string { return testbrowser.Artefacts(t, "webmail-ui") }

// hitCounter is the "remote tracker": an HTTP server that counts every
// request a hostile message makes it receive.
type hitCounter struct {
	mu   sync.Mutex
	hits []string
}

func (c *hitCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.hits = append(c.hits, r.URL.Path)
	c.mu.Unlock()
	w.Header().Set("Content-Type", "image/gif")
	_, _ = w.Write([]byte("GIF89a"))
}

func (c *hitCounter) get() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.hits...)
}

func must[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

func TestBrowser(t *testing.T) {
	ctx := browser(t)
	tracker := &hitCounter{}
	tsrv := httptest.NewServer(tracker)
	defer tsrv.Close()

	e := newEnv(t, Options{})
	// The sanitiser "failed": every trick below reaches the frame as is.
	hostile := strings.ReplaceAll(`<html><head>
<meta http-equiv="refresh" content="0;url=TRACK/refresh">
<link rel="stylesheet" href="TRACK/style.css">
<script>window.pwnedScript = 1; document.documentElement.setAttribute("data-pwned", "script"); try { window.top.pwnedTop = 1 } catch (e) {}; new Image().src = "TRACK/script";</script>
</head><body>
<p id="visible">看起来正常的邮件</p>
<img src="TRACK/pixel.gif" alt="" width="1" height="1">
<img src="x:broken" onerror="window.pwnedOnerror = 1; document.documentElement.setAttribute('data-pwned', 'onerror'); fetch('TRACK/onerror')">
<svg onload="window.pwnedSvg = 1"></svg>
<a id="jslink" href="javascript:window.pwnedLink=1;document.documentElement.setAttribute('data-pwned','link');void(0)">点这里</a>
<div style="background-image:url(TRACK/bg.gif)">背景</div>
<iframe src="TRACK/frame"></iframe>
<object data="TRACK/object"></object>
<form action="TRACK/form" method="post"><input name="a" value="1"><button id="formbtn">提交</button></form>
</body></html>`, "TRACK", tsrv.URL)
	uid := e.mail.addHostile(hostile, testNow.Add(time.Hour))
	srv := httptest.NewServer(e.h)
	defer srv.Close()
	dir := artefactDir(t)

	// Signed in as alice; pages in zh-CN (headless Chromium asks for en-US).
	for _, c := range []network.SetCookieParams{{Name: "sid", Value: "alice", URL: srv.URL}, {Name: "lang", Value: "zh-CN", URL: srv.URL}} {
		if _, err := chromedp.Call(ctx, network.SetCookie, c); err != nil {
			t.Fatal(err)
		}
	}
	shot := func(t *testing.T, name string) {
		t.Helper()
		b := must(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
		p := filepath.Join(dir, name+".png")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot %s", p)
	}
	nav := func(t *testing.T, path, ready string) {
		t.Helper()
		must(t, ctx, "open "+path, chromedp.Steps(chromedp.Navigate(srv.URL+path), chromedp.WaitVisible(chromedp.CSS(ready))))
	}
	eval := func(t *testing.T, js string) string {
		t.Helper()
		return must(t, ctx, js, chromedp.Evaluate[string](js))
	}
	key := func(t *testing.T, k string) {
		t.Helper()
		must(t, ctx, "key "+k, chromedp.KeyEvent(k))
	}
	// waitLocation polls across the navigation a key press started (the
	// old document's context disappears on the way).
	waitLocation := func(t *testing.T, want string) {
		t.Helper()
		var got string
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			c, cancel := context.WithTimeout(ctx, 2*time.Second)
			v, err := chromedp.Run(c, chromedp.Evaluate[string](`document.readyState === "complete" ? location.pathname + location.search : ""`))
			cancel()
			if got = v; err == nil && v == want {
				return
			}
		}
		t.Fatalf("location %q, want %q", got, want)
	}

	t.Run("keyboard", func(t *testing.T) {
		must(t, ctx, "viewport", chromedp.EmulateViewport(1280, 800))
		nav(t, "/mail/1", "table.messages")
		rows := eval(t, `Array.from(document.querySelectorAll("tr.msg a.open")).map(a => a.getAttribute("href")).join(" ")`)
		hrefs := strings.Fields(rows)
		if len(hrefs) < 3 {
			t.Fatalf("rows %q", rows)
		}
		current := `(() => { const r = document.querySelector("tr.current"); return r && document.activeElement === r.querySelector("a.open") && getComputedStyle(r).boxShadow !== "none" ? r.querySelector("a.open").getAttribute("href") : "" })()`
		key(t, "j")
		if got := eval(t, current); got != hrefs[0] {
			t.Fatalf("after j: current %q, want %q", got, hrefs[0])
		}
		key(t, "j")
		key(t, "j")
		key(t, "k")
		if got := eval(t, current); got != hrefs[1] {
			t.Fatalf("after jjk: current %q, want %q", got, hrefs[1])
		}
		if eval(t, `getComputedStyle(document.activeElement).outlineStyle`) == "none" {
			t.Error("focused row link has no visible outline")
		}
		key(t, "x")
		if eval(t, `String(document.querySelector("tr.current input[type=checkbox]").checked)`) != "true" {
			t.Error("x did not select the row")
		}
		shot(t, "list-1280x800")
		key(t, "\r")
		waitLocation(t, hrefs[1])
		must(t, ctx, "view", chromedp.WaitVisible(chromedp.CSS("#msg-subject")))
		shot(t, "view-1280x800")
		next := eval(t, `document.getElementById("next-msg").getAttribute("href")`)
		key(t, "j")
		waitLocation(t, next)
		must(t, ctx, "view", chromedp.WaitVisible(chromedp.CSS("#reply")))
		reply := eval(t, `document.getElementById("reply").getAttribute("href")`)
		key(t, "r")
		waitLocation(t, reply)
		must(t, ctx, "compose", chromedp.WaitVisible(chromedp.CSS("#compose")))
		shot(t, "compose-reply-1280x800")
		key(t, "/") // focus is in the form? no: nothing focused yet, so / goes to search
		if got := eval(t, `document.activeElement.id`); got != "q" {
			t.Errorf("/ focused %q, want the search box", got)
		}
	})

	t.Run("autocomplete", func(t *testing.T) {
		nav(t, "/compose", "#compose")
		must(t, ctx, "type", chromedp.Steps(chromedp.Focus(chromedp.CSS("#to")), chromedp.KeyEvent("zs")))
		must(t, ctx, "suggestions", chromedp.Poll[bool](`document.querySelectorAll("#to-suggest li").length === 2`))
		must(t, ctx, "pick", chromedp.KeyEvent("\t"))
		if got := eval(t, `document.getElementById("to").value`); got != "张三 <zhangsan@gov.example>, " {
			t.Errorf("picked %q", got)
		}
		if len(e.mail.sent) != 0 {
			t.Error("picking a suggestion sent the form")
		}
	})

	t.Run("draft saved on leaving", func(t *testing.T) {
		nav(t, "/compose", "#compose")
		saved := len(e.mail.saved)
		must(t, ctx, "type", chromedp.Steps(chromedp.Focus(chromedp.CSS("#subject")), chromedp.KeyEvent("离开前保存")))
		nav(t, "/mail/1", "table.messages")
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			e.mail.mu.Lock()
			n := len(e.mail.saved)
			var subject string
			if n > saved {
				subject = e.mail.saved[n-1].Subject
			}
			e.mail.mu.Unlock()
			if n > saved {
				if subject != "离开前保存" {
					t.Errorf("saved subject %q", subject)
				}
				return
			}
		}
		t.Error("no draft saved when leaving the compose page")
	})

	t.Run("layouts", func(t *testing.T) {
		for _, vp := range []struct {
			name string
			w, h int64
		}{{"1280x800", 1280, 800}, {"390x844", 390, 844}} {
			if vp.w < 500 {
				must(t, ctx, "viewport", chromedp.EmulateViewport(vp.w, vp.h, chromedp.EmulateMobile))
			} else {
				must(t, ctx, "viewport", chromedp.EmulateViewport(vp.w, vp.h))
			}
			for _, p := range []struct{ name, path, ready string }{
				{"list", "/mail/1", "table.messages"}, {"view", "/mail/1/1", "#msg-body"}, {"compose", "/compose?to=p-zhangsan", "#compose"},
				{"search", "/search?text=会议", "table.messages"}, {"folders", "/folders", ".folder-table"}, {"settings", "/settings", ".settings-form"},
			} {
				nav(t, p.path, p.ready)
				// Nothing wider than the screen: no sideways scrolling.
				if got := eval(t, `String(document.documentElement.scrollWidth <= window.innerWidth)`); got != "true" {
					t.Errorf("%s at %s scrolls sideways: %s > %s", p.name, vp.name, eval(t, `String(document.documentElement.scrollWidth)`), eval(t, `String(window.innerWidth)`))
				}
				if vp.w < 500 || (p.name != "list" && p.name != "view") {
					shot(t, p.name+"-"+vp.name)
				}
			}
		}
		must(t, ctx, "viewport", chromedp.EmulateViewport(1280, 800))
	})

	t.Run("hostile message runs nothing", func(t *testing.T) {
		before := len(tracker.get())
		path := fmt.Sprintf("/mail/1/%d", uid)
		nav(t, path, "#msg-body")
		frameCtx := frameTarget(t, ctx, fmt.Sprintf("/mail/1/%d/body", uid))
		// Wait for the frame's document, then give every trick time to fire.
		must(t, frameCtx, "frame loaded", chromedp.Poll[bool](`document.readyState === "complete" && !!document.getElementById("visible")`))
		// Clicking the javascript: link and the form button inside the frame.
		// The frame's elements are clicked with real mouse events at their
		// place on the page (the input goes through the top page, as a
		// reader's click would).
		frameBox := must(t, ctx, "frame box", chromedp.Evaluate[[]float64](`(() => { const r = document.getElementById("msg-body").getBoundingClientRect(); return [r.left + 1, r.top + 1] })()`))
		for _, id := range []string{"jslink", "formbtn"} {
			el := must(t, frameCtx, "box "+id, inFrame[[]float64](`(() => { const r = document.getElementById("`+id+`").getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2] })()`))
			must(t, ctx, "click "+id, chromedp.MouseClickXY(frameBox[0]+el[0], frameBox[1]+el[1]))
		}
		must(t, ctx, "settle", chromedp.Sleep(700*time.Millisecond))
		globals := `JSON.stringify([typeof window.pwnedScript, typeof window.pwnedOnerror, typeof window.pwnedSvg, typeof window.pwnedLink, typeof window.pwnedTop, document.documentElement.getAttribute("data-pwned")])`
		want := `["undefined","undefined","undefined","undefined","undefined",null]`
		if got := must(t, frameCtx, "frame globals", inFrame[string](globals)); got != want {
			t.Errorf("frame: %s", got)
		}
		if got := eval(t, globals); got != want {
			t.Errorf("top: %s", got)
		}
		if got := must(t, frameCtx, "frame still ours", inFrame[string](`location.pathname`)); got != fmt.Sprintf("/mail/1/%d/body", uid) {
			t.Errorf("frame navigated to %s", got)
		}
		if hits := tracker.get()[before:]; len(hits) != 0 {
			t.Errorf("tracker got %d requests: %v", len(hits), hits)
		}
		if got := eval(t, `location.pathname`); got != path {
			t.Errorf("page navigated to %s", got)
		}
		shot(t, "hostile-1280x800")

		// With remote images allowed the tracking pixel loads (so the
		// counter above can see a request), and still no script runs.
		before = len(tracker.get())
		nav(t, path+"?images=1", "#msg-body")
		frameCtx = frameTarget(t, ctx, fmt.Sprintf("/mail/1/%d/body?images=1", uid))
		must(t, frameCtx, "frame loaded", chromedp.Poll[bool](`document.readyState === "complete"`))
		must(t, ctx, "settle", chromedp.Sleep(500*time.Millisecond))
		hits := tracker.get()[before:]
		if len(hits) == 0 || !contains(hits, "/pixel.gif") {
			t.Errorf("remote images allowed but the pixel was not loaded: %v", hits)
		}
		for _, h := range hits {
			if h != "/pixel.gif" && h != "/bg.gif" {
				t.Errorf("with remote images allowed, the tracker still got %s", h)
			}
		}
		if got := must(t, frameCtx, "frame globals", inFrame[string](globals)); got != want {
			t.Errorf("frame with images: %s", got)
		}
	})
}

// inFrame evaluates js in the body frame's own context. Evaluate without
// a context id never answers in a frame whose sandbox forbids script, so
// this goes through Poll, which names the frame's execution context (the
// value must be truthy: a string, an array).
func inFrame[T any](js string) chromedp.Action[T] {
	return chromedp.Poll[T](js, chromedp.WithPollingTimeout(5*time.Second))
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// frameTarget returns a context for the message body frame. Chromium puts
// a sandboxed frame in its own process (site isolation stays on), so the
// frame is a target of its own; chromedp attaches to it by id.
func frameTarget(t *testing.T, ctx context.Context, path string) context.Context {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		infos, err := chromedp.Targets(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, info := range infos {
			if info.Type == "iframe" && strings.HasSuffix(info.URL, path) {
				fctx, cancel := chromedp.NewContext(ctx, chromedp.WithTargetID(info.TargetID))
				t.Cleanup(cancel)
				// Attach with a context that lives as long as fctx: the
				// first Run's context bounds the attachment.
				if err := chromedp.Do(fctx); err != nil {
					t.Fatalf("attach to frame: %v", err)
				}
				return fctx
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	infos, _ := chromedp.Targets(ctx)
	var seen []string
	for _, i := range infos {
		seen = append(seen, string(i.Type)+" "+i.URL)
	}
	t.Fatalf("no frame target for %s; targets: %v", path, seen)
	return nil
}
