package app

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/groupbridge/groupbridge/internal/testkit"
)

// The console's tests drive Debian's chromium, headless, through the
// DevTools protocol on a pipe (no debugging port). One browser per test,
// on a fresh profile, that may only reach the app's loopback admin
// address: host names other than 127.0.0.1 do not resolve, and every
// request the page makes is checked against the admin address.

// pageWait bounds every wait for the page: a step that takes longer has
// failed (the live view's own promise is half a second).
const pageWait = 10 * time.Second

// chromium is one headless browser with one tab.
type chromium struct {
	t    *testing.T
	ctx  context.Context // the tab; each action runs under a deadline derived from it
	base string          // http://ADDR of the admin listener

	mu      sync.Mutex
	console []string // console messages and uncaught exceptions
	foreign []string // requests to anywhere but base
}

// newChromium starts a browser for the console at admin address addr
// (host:port) and stops it when the test ends. The profile is a fresh
// temporary directory chromedp makes and removes itself, with any child
// process Chromium leaves behind.
func newChromium(t *testing.T, addr string) *chromium {
	t.Helper()
	exe := testkit.NeedBinary(t, "chromium", "/usr/bin/chromium")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox, // as root Chromium refuses to start with its sandbox
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-breakpad", true),
		// Nothing but the loopback address resolves: no request of the
		// page or of the browser's own services leaves the machine.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	c := &chromium{t: t, ctx: ctx, base: "http://" + addr}
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // waits for the browser to exit and its profile to go
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.foreign) > 0 {
			t.Errorf("the page sent requests past the admin address %s: %q", c.base, c.foreign)
		}
		if t.Failed() && len(c.console) > 0 {
			t.Logf("browser console:\n%s", strings.Join(c.console, "\n"))
		}
	})
	// The first action starts the browser and ties it to ctx, which must
	// have no deadline of its own; the start is bounded here instead.
	started := make(chan error, 1)
	go func() {
		started <- chromedp.Listen(ctx, c.observe)
	}()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("starting chromium (%s): %v", exe, err)
		}
	case <-time.After(30 * time.Second):
		cancelTab()
		t.Fatalf("chromium (%s) did not start in 30 s", exe)
	}
	// The window's size less the browser's own bars would be the page's.
	c.do(pageWait, "setting the viewport", chromedp.EmulateViewport(1280, 900))
	return c
}

// observe keeps what the page logs and notes every request it sends
// elsewhere than the admin address. It runs on the browser's reader
// goroutine: it only appends.
func (c *chromium) observe(ev any) {
	var line, foreign string
	switch e := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		parts := make([]string, 0, len(e.Args))
		for _, a := range e.Args {
			if a.Value != nil {
				parts = append(parts, string(a.Value))
			} else {
				parts = append(parts, a.Description)
			}
		}
		line = fmt.Sprintf("console.%s: %s", e.Type, strings.Join(parts, " "))
	case *runtime.EventExceptionThrown:
		line = "exception: " + e.ExceptionDetails.Text
		if e.ExceptionDetails.Exception != nil {
			line += " " + e.ExceptionDetails.Exception.Description
		}
	case *network.EventRequestWillBeSent:
		if u, err := url.Parse(e.Request.URL); err == nil && (u.Scheme == "http" || u.Scheme == "https" || u.Scheme == "ws" || u.Scheme == "wss") {
			if u.Scheme+"://"+u.Host != c.base {
				foreign = e.Request.URL
			}
		}
	}
	if line == "" && foreign == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if line != "" {
		c.console = append(c.console, line)
	}
	if foreign != "" {
		c.foreign = append(c.foreign, foreign)
	}
}

// do runs actions, all within d.
func (c *chromium) do(d time.Duration, what string, actions ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, d)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		c.t.Fatalf("%s: %v", what, err)
	}
}

// open loads path (with its query) from the admin address.
func (c *chromium) open(path string) {
	c.t.Helper()
	c.do(pageWait, "opening "+path, chromedp.Navigate(c.base+path))
}

// evalJS evaluates expr in the page (awaiting a promise it returns) and
// decodes the value into T.
func evalJS[T any](c *chromium, expr string) T {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, pageWait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		c.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// poll reports whether the JavaScript expression cond becomes true
// within d, and the last error evaluating it.
func (c *chromium) poll(d time.Duration, cond string) (bool, error) {
	deadline := time.Now().Add(d)
	for {
		ctx, cancel := context.WithTimeout(c.ctx, pageWait)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("Boolean("+cond+")"))
		cancel()
		if err == nil && ok {
			return true, nil
		}
		if time.Now().After(deadline) {
			return false, err
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// waitJS waits up to d for the JavaScript expression cond to be true and
// returns how long that took; on time-out the test fails, naming what it
// waited for and what show (an expression) gave then.
func (c *chromium) waitJS(d time.Duration, what, cond, show string) time.Duration {
	c.t.Helper()
	start := time.Now()
	ok, err := c.poll(d, cond)
	if ok {
		return time.Since(start)
	}
	state := "?"
	ctx, cancel := context.WithTimeout(c.ctx, pageWait)
	defer cancel()
	if s, err := chromedp.Run(ctx, chromedp.Evaluate[string]("String("+show+")")); err == nil {
		state = s
	}
	c.t.Fatalf("waited %v for %s (last error %v); page: %s", d, what, err, state)
	return 0
}

// download clicks sel and waits for the download it starts, saved in
// dir under its download id; it returns the file's path.
func (c *chromium) download(dir, sel string) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, pageWait)
	defer cancel()
	on := true
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior:      browser.SetDownloadBehaviorBehaviorAllowAndName,
		DownloadPath:  dir,
		EventsEnabled: &on,
	}); err != nil {
		c.t.Fatalf("allowing downloads: %v", err)
	}
	done := make(chan *browser.EventDownloadProgress, 1)
	lctx, stop := context.WithCancel(c.ctx)
	defer stop()
	if err := chromedp.ListenBrowser(lctx, func(ev any) {
		if p, ok := ev.(*browser.EventDownloadProgress); ok && p.State != browser.DownloadProgressStateInProgress {
			select {
			case done <- p:
			default:
			}
		}
	}); err != nil {
		c.t.Fatalf("listening for downloads: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible)); err != nil {
		c.t.Fatalf("clicking %s: %v", sel, err)
	}
	select {
	case p := <-done:
		if p.State != browser.DownloadProgressStateCompleted {
			c.t.Fatalf("download from %s: %s", sel, p.State)
		}
		return filepath.Join(dir, p.GUID)
	case <-ctx.Done():
		c.t.Fatalf("no download from %s in %v", sel, pageWait)
		return ""
	}
}
