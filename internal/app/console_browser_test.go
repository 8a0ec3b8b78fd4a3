package app

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/groupbridge/groupbridge/config"
)

// The console driven in headless Chromium against the whole bridge,
// called by the test softphone. Few tests, each doing many steps: a
// browser is heavy on a two-core machine, so they never run in parallel.

// js is s as a JavaScript string literal.
func js(s string) string { return strconv.Quote(s) }

// q is the JavaScript for the first element that matches sel.
func q(sel string) string { return "document.querySelector(" + js(sel) + ")" }

// seatSel is the CSS selector of seat n of group's room.
func seatSel(group string, n int) string {
	return `article.room[data-group=` + js(group) + `] li.seat[data-seat="` + strconv.Itoa(n) + `"]`
}

// consoleYAML is testYAML (with its own attendance store) whose admin
// section is admin instead, when given.
func consoleYAML(admin string) string {
	y := testYAML("", "")
	if admin != "" {
		y = strings.Replace(y, "admin:\n  listen: 127.0.0.1:0\n", "admin:\n"+admin, 1)
	}
	return y
}

// The live view, the buttons, the attendance page and the page's
// defences, in one browser: two callers join and the page lists two seats
// within 2 s; one sends a tone and its seat shows talking; the mute button
// silences it for the other caller and the page shows it muted; the lock
// button locks the room, a POST from the page without the CSRF token is
// refused; an injected inline script does not run; when both hang up the
// session's attendance row shows peak 2, and the CSV downloads with it.
// No caller's number reaches the page or its event stream. Last the
// bridge restarts and the same page goes live again by itself.
func TestConsoleLiveRoom(t *testing.T) {
	began := time.Now()
	// A fixed admin port: the bridge restarts on it at the end.
	y := consoleYAML("  listen: 127.0.0.1:" + strconv.Itoa(freeUDPPort(t)) + "\n")
	a, logs := startStoppable(t, y)
	c := newChromium(t, a.AdminAddr())
	c.open("/")
	c.waitJS(pageWait, `#status says "live"`, q("#status")+`?.textContent.trim() === "live"`, q("#status")+`?.textContent`)
	rooms := q("#rooms") + `?.outerHTML`

	phones := joinRoom(t, a.App, logs, 1400001, "1234", "1234")
	pa, pb := phones[0], phones[1]
	took := c.waitJS(2*time.Second, "two seats", `document.querySelectorAll(`+js(`article.room[data-group="Circle"] li.seat`)+`).length === 2`, rooms)
	t.Logf("two seats shown %v after the second join", took)
	for n := 1; n <= 2; n++ {
		label := evalJS[string](c, q(seatSel("Circle", n))+`.textContent.trim()`)
		if !strings.HasPrefix(strings.ToLower(label), "caller "+strconv.Itoa(n)) {
			t.Errorf("seat %d is labelled %q, want it to start with \"caller %d\"", n, label, n)
		}
	}

	// Talking: caller 1 sends a tone, caller 2 silence.
	pb.Media().SendSilence()
	pa.Media().SendTone(440, -20)
	// The promise: talking shows within half a second.
	took = c.waitJS(500*time.Millisecond, "caller 1 talking", q(seatSel("Circle", 1))+`?.dataset.talking === "true"`, rooms)
	t.Logf("caller 1 shown talking %v after its tone began", took)
	if v := evalJS[string](c, q(seatSel("Circle", 2))+`.dataset.talking`); v != "false" {
		t.Errorf("silent caller 2 has data-talking=%q", v)
	}
	time.Sleep(3 * time.Second) // the join prompts and chimes end
	before := levelOver(pb, time.Second, 440)
	if before < audible {
		t.Fatalf("before the mute caller 2 hears caller 1 at %.1f dBFS", before)
	}

	// Mute by the button: the page shows it, caller 2 no longer hears it.
	c.do(pageWait, "clicking mute on caller 1",
		chromedp.Click(chromedp.CSS(`article.room[data-group="Circle"] button[data-action="mute"][data-seat="1"]`), chromedp.NodeVisible))
	c.waitJS(2*time.Second, "caller 1 shown muted", q(seatSel("Circle", 1))+`?.dataset.muted === "true"`, rooms)
	time.Sleep(300 * time.Millisecond) // what was mixed before the mute drains
	after := levelOver(pb, time.Second, 440)
	t.Logf("caller 2 hears caller 1 at %.1f dBFS before the mute, %.1f after", before, after)
	if after > gone {
		t.Errorf("after the console's mute caller 2 still hears caller 1 at %.1f dBFS", after)
	}

	// Lock by the button; then a POST from the page's own script without
	// the X-CSRF-Token header is refused and changes nothing, and the same
	// POST with the token the console's session gives unlocks.
	room := q(`article.room[data-group="Circle"]`)
	c.do(pageWait, "clicking lock",
		chromedp.Click(chromedp.CSS(`article.room[data-group="Circle"] button[data-action="lock"]`), chromedp.NodeVisible))
	c.waitJS(2*time.Second, "the room shown locked", room+`?.dataset.locked === "true"`, rooms)
	unlock := func(header string) int {
		return evalJS[int](c, `fetch("/api/console/session").then(r => r.json()).then(s => fetch("/api/rooms/Circle/unlock",
			{method: "POST", headers: {"Content-Type": "application/json"`+header+`}, body: "{}"})).then(r => r.status)`)
	}
	if code := unlock(""); code != 403 {
		t.Errorf("a POST from the page without X-CSRF-Token answered %d, want 403", code)
	}
	time.Sleep(500 * time.Millisecond) // an unlock wrongly done would show by now
	if v := evalJS[string](c, room+`.dataset.locked`); v != "true" {
		t.Errorf("after the refused POST the room shows data-locked=%q", v)
	}
	if code := unlock(`, "X-CSRF-Token": s.csrf`); code != 200 {
		t.Errorf("a POST from the page with the session's X-CSRF-Token answered %d, want 200", code)
	}
	c.waitJS(2*time.Second, "the room shown unlocked", room+`?.dataset.locked === "false"`, rooms)

	// The Content-Security-Policy stops an injected inline script and
	// reports it.
	type injection struct {
		Ran       bool   `json:"ran"`
		Violation string `json:"violation"`
	}
	inj := evalJS[injection](c, `new Promise(resolve => {
		window.__injected = false;
		let violation = "";
		document.addEventListener("securitypolicyviolation", e => { violation = e.effectiveDirective; });
		const s = document.createElement("script");
		s.textContent = "window.__injected = true";
		document.body.appendChild(s);
		setTimeout(() => resolve({ran: window.__injected, violation}), 300);
	})`)
	if inj.Ran || !strings.HasPrefix(inj.Violation, "script-src") {
		t.Errorf("injected inline script: ran %v, violation %q; want it blocked by script-src", inj.Ran, inj.Violation)
	}

	// Nothing the page holds or reads names a caller.
	stream := evalJS[string](c, `(async () => {
		const ctl = new AbortController();
		const r = await fetch("/api/events", {signal: ctl.signal});
		const rd = r.body.getReader();
		let text = "";
		while (!/event: rooms\ndata: [^\n]*\n\n/.test(text)) {
			const {value, done} = await rd.read();
			if (done) break;
			text += new TextDecoder().decode(value);
		}
		ctl.abort();
		return text;
	})()`)
	if !strings.Contains(stream, "event: rooms") {
		t.Errorf("the event stream's first event is not rooms: %q", stream)
	}
	page := evalJS[string](c, `document.documentElement.outerHTML`)
	for _, number := range []string{"15551400001", "1400001", "15551400002", "1400002"} {
		if strings.Contains(stream, number) || strings.Contains(page, number) {
			t.Errorf("caller number %s reached the browser", number)
		}
	}

	usableWithoutMouse(t, c, rooms)

	// Both hang up: the room leaves the page and the session's row
	// appears in the attendance table with a peak of 2.
	hangUp(t, pa)
	hangUp(t, pb)
	c.waitJS(pageWait, "the room gone", q(`article.room[data-group="Circle"]`)+` === null`, rooms)
	row := `document.querySelector("#attendance-table tr[data-session]")`
	table := q("#attendance-table") + `?.outerHTML`
	// The table is read when the page loads: reload until the session's
	// record, written in the background, is there.
	hungUp := time.Now()
	for {
		c.do(pageWait, "reloading", chromedp.Reload())
		if ok, _ := c.poll(2*time.Second, row+` !== null`); ok {
			break
		}
		if time.Since(hungUp) > pageWait {
			t.Fatalf("no session row in #attendance-table %v after the hang-ups: %s", pageWait, evalJS[string](c, `String(`+table+`)`))
		}
	}
	type rowCells struct {
		ID, Group, Start, Peak, People string
	}
	cells := evalJS[rowCells](c, `(() => { const r = `+row+`; const cell = k => r.querySelector("td." + k)?.textContent.trim() ?? "";
		return {ID: r.dataset.session, Group: cell("group"), Start: cell("start"), Peak: cell("peak"), People: cell("people")}; })()`)
	t.Logf("attendance row %+v shown %v after the hang-ups", cells, time.Since(hungUp))
	if cells.Group != "Circle" || cells.Peak != "2" {
		t.Errorf("attendance row %+v, want group Circle and peak 2", cells)
	}
	if !strings.Contains(cells.People, "fewer than 3") {
		t.Errorf("two callers' session shows people %q, want \"fewer than 3\"", cells.People)
	}
	if n := evalJS[int](c, `document.querySelectorAll("#attendance-table tr[data-session]").length`); n != 1 {
		t.Errorf("%d session rows, want 1", n)
	}

	// The CSV link downloads the same session.
	b, err := os.ReadFile(c.download(t.TempDir(), "#csv"))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil || len(recs) < 2 {
		t.Fatalf("the download is no CSV with a row (%v):\n%s", err, b)
	}
	col := map[string]int{}
	for i, name := range recs[0] {
		col[name] = i
	}
	found := false
	for _, r := range recs[1:] {
		if len(r) == len(recs[0]) && r[col["record"]] == "session" && r[col["id"]] == cells.ID {
			found = true
			if r[col["group"]] != "Circle" || r[col["peak"]] != "2" || r[col["people"]] != "fewer than 3" {
				t.Errorf("the CSV's row of the session: group %q peak %q people %q, want Circle, 2, fewer than 3",
					r[col["group"]], r[col["peak"]], r[col["people"]])
			}
		}
	}
	if !found {
		t.Errorf("the CSV has no row of session %s:\n%s", cells.ID, b)
	}
	for _, number := range []string{"1400001", "1400002"} {
		if bytes.Contains(b, []byte(number)) {
			t.Errorf("caller number %s is in the CSV", number)
		}
	}

	// The bridge restarts on the same address: the same page goes live
	// again by itself, shows the new bridge's room and its buttons act.
	stopped := time.Now()
	a.stop(t)
	t.Logf("the bridge stopped in %v", time.Since(stopped))
	status := q("#status") + `?.textContent.trim()`
	c.waitJS(pageWait, `#status "reconnecting"`, status+` === "reconnecting"`, status)
	c.do(pageWait, "marking the page", chromedp.Evaluate[chromedp.Void](`window.__sameDocument = true`))
	a, logs = startStoppable(t, y)
	took = c.waitJS(20*time.Second, `#status "live" again`, status+` === "live"`, status)
	t.Logf("live again %v after the restart", took)
	phones = joinRoom(t, a.App, logs, 1400011, "1234")
	c.waitJS(2*time.Second, "the new bridge's caller", q(seatSel("Circle", 1))+` !== null`, rooms)
	c.do(pageWait, "clicking lock after the restart",
		chromedp.Click(chromedp.CSS(`article.room[data-group="Circle"] button[data-action="lock"]`), chromedp.NodeVisible))
	c.waitJS(2*time.Second, "the new room shown locked", q(`article.room[data-group="Circle"]`)+`?.dataset.locked === "true"`, rooms)
	if !evalJS[bool](c, `window.__sameDocument === true`) {
		t.Errorf("the page was reloaded to reconnect")
	}
	hangUp(t, phones[0]) // else the bridge's shutdown plays its goodbye
	c.waitJS(pageWait, "the new room gone", q(`article.room[data-group="Circle"]`)+` === null`, rooms)
	t.Logf("the whole test took %v", time.Since(began))
}

// stoppableApp is an app the test may stop before its end.
type stoppableApp struct {
	*App
	once sync.Once
}

// startStoppable is startApp whose app the test can stop early; the end
// of the test stops it if the test did not.
func startStoppable(t *testing.T, yaml string) (*stoppableApp, *syncBuffer) {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	logs := &syncBuffer{}
	a, err := New(cfg, Options{LogOutput: logs})
	if err != nil {
		t.Fatal(err)
	}
	logs.app = a
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	s := &stoppableApp{App: a}
	t.Cleanup(func() { s.stop(t) })
	return s, logs
}

// stop shuts the app down once.
func (s *stoppableApp) stop(t *testing.T) {
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
}

// With admin.token set the console asks for it: / leads to /login, a
// wrong token is refused there with a message, the right one opens the
// console, and the session cookie is out of the page's script's reach.
// The cookie outlives a restart of the bridge: the page goes live again
// by itself, still signed in.
func TestConsoleSignIn(t *testing.T) {
	const token = "console-test-token-7f3a"
	y := consoleYAML("  listen: 127.0.0.1:" + strconv.Itoa(freeUDPPort(t)) + "\n  token: " + token + "\n")
	a, _ := startStoppable(t, y)
	c := newChromium(t, a.AdminAddr())
	c.open("/")
	c.waitJS(pageWait, "the sign-in page", `location.pathname === "/login" && `+q("#token")+` !== null`, `location.href`)

	signIn := func(tok string) {
		c.do(pageWait, "signing in",
			chromedp.Evaluate[chromedp.Void](q("#token")+`.value = ""`),
			chromedp.SendKeys(chromedp.CSS("#token"), tok, chromedp.NodeVisible),
			chromedp.Click(chromedp.CSS("#sign-in"), chromedp.NodeVisible))
	}
	signIn("not-the-token")
	c.waitJS(pageWait, "the sign-in error", q("#login-error")+`?.textContent.trim() !== ""`, `document.body.outerHTML`)
	if p := evalJS[string](c, `location.pathname`); p != "/login" {
		t.Errorf("after a wrong token the page is %s, want /login", p)
	}
	signIn(token)
	status := q("#status") + `?.textContent.trim()`
	c.waitJS(pageWait, "the console after signing in", `location.pathname === "/" && `+status+` === "live"`,
		`location.href + " " + (`+status+` ?? "no #status")`)
	if cookies := evalJS[string](c, `document.cookie`); strings.Contains(cookies, "gb_session") {
		t.Errorf("the page's script can read the session cookie: %q", cookies)
	}

	a.stop(t)
	c.waitJS(pageWait, `#status "reconnecting"`, status+` === "reconnecting"`, status)
	c.do(pageWait, "marking the page", chromedp.Evaluate[chromedp.Void](`window.__sameDocument = true`))
	startStoppable(t, y)
	took := c.waitJS(20*time.Second, `#status "live" again`, `location.pathname === "/" && `+status+` === "live"`,
		`location.href + " " + (`+status+` ?? "no #status")`)
	t.Logf("live again, signed in, %v after the restart", took)
	if !evalJS[bool](c, `window.__sameDocument === true`) {
		t.Errorf("the page was reloaded to reconnect")
	}
}

// usableWithoutMouse checks the live page the way: by keyboard
// alone (Tab reaches caller 1's unmute button, Enter acts on it), every
// control named for a screen reader, and no sideways scrolling on a
// phone's 360-pixel-wide screen. Caller 1 is muted when it is called.
func usableWithoutMouse(t *testing.T, c *chromium, rooms string) {
	t.Helper()
	unnamed := evalJS[[]string](c, `[...document.querySelectorAll("button, a[href], input, select, img")]
		.filter(e => e.offsetParent !== null)
		.filter(e => {
			if (e.tagName === "IMG") return !(e.alt || e.getAttribute("aria-label"));
			if (e.tagName === "INPUT" || e.tagName === "SELECT") return e.labels.length === 0 && !e.getAttribute("aria-label");
			return !(e.getAttribute("aria-label") || e.textContent.trim());
		}).map(e => e.outerHTML.slice(0, 120))`)
	if len(unnamed) > 0 {
		t.Errorf("controls without a name for screen readers: %q", unnamed)
	}

	target := `button[data-action="unmute"][data-seat="1"]`
	focused := `document.activeElement?.matches(` + js(`article.room[data-group="Circle"] `+target) + `) === true`
	// From the top of a freshly loaded page, as a keyboard user begins.
	c.do(pageWait, "reloading", chromedp.Reload())
	c.waitJS(pageWait, "the seats back", `document.querySelectorAll(`+js(`article.room[data-group="Circle"] li.seat`)+`).length === 2`, rooms)
	reached := false
	for presses := 1; presses <= 80; presses++ {
		c.do(pageWait, "pressing Tab", chromedp.KeyEvent("\t"))
		if evalJS[bool](c, focused) {
			t.Logf("Tab pressed %d times reaches caller 1's unmute button", presses)
			reached = true
			break
		}
	}
	if !reached {
		t.Fatalf("80 presses of Tab never reached caller 1's unmute button; focus on %s",
			evalJS[string](c, `String(document.activeElement?.outerHTML).slice(0, 200)`))
	}
	if outline := evalJS[string](c, `getComputedStyle(document.activeElement).outlineStyle`); outline == "none" {
		t.Errorf("the focused button shows no focus outline")
	}
	c.do(pageWait, "pressing Enter", chromedp.KeyEvent("\r"))
	c.waitJS(2*time.Second, "caller 1 unmuted by keyboard", q(seatSel("Circle", 1))+`?.dataset.muted === "false"`, rooms)

	c.do(pageWait, "a phone's screen", chromedp.EmulateViewport(360, 740))
	wide := evalJS[int](c, `document.documentElement.scrollWidth`)
	c.do(pageWait, "back to a desktop's screen", chromedp.EmulateViewport(1280, 900))
	if wide > 360 {
		t.Errorf("on a 360-pixel-wide screen the page is %d pixels wide: it scrolls sideways", wide)
	}
}
