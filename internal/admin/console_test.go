package admin

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/conference"
	"github.com/groupbridge/groupbridge/internal/testkit"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// request is one request to a handler, as a browser or a script sends it.
type request struct {
	method, path string
	headers      map[string]string
	body         string
	remote       string // RemoteAddr; "" is 192.0.2.1:1234
	tls          bool
}

func send(t *testing.T, h http.Handler, q request) answer {
	t.Helper()
	var body io.Reader
	if q.body != "" {
		body = strings.NewReader(q.body)
	}
	req := httptest.NewRequest(q.method, q.path, body)
	req.Host = "localhost:8080"
	if q.remote != "" {
		req.RemoteAddr = q.remote
	}
	if q.tls {
		req.TLS = &tls.ConnectionState{}
	}
	for k, v := range q.headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Result().Body)
	return answer{rec.Code, rec.Result().Header, string(b)}
}

func cookieOf(a answer) *http.Cookie {
	for _, c := range (&http.Response{Header: a.header}).Cookies() {
		if c.Name == sessionCookie {
			return c
		}
	}
	return nil
}

// Every answer, whatever the route, status or credentials, carries the
// CSP and the other browser headers.
func TestSecurityHeadersOnEveryAnswer(t *testing.T) {
	for _, tok := range []string{"", token} {
		h := NewHandler(Config{Token: tok, Rooms: &fakeRooms{}, Drain: func() {}, Metrics: http.NotFoundHandler(), Logger: quietLogger()})
		for _, q := range []request{
			{method: "GET", path: "/"},
			{method: "GET", path: "/login"},
			{method: "GET", path: "/console/console.js"},
			{method: "GET", path: "/console/console.css"},
			{method: "GET", path: "/console/nothing.js"},
			{method: "GET", path: "/healthz"},
			{method: "GET", path: "/metrics"},
			{method: "GET", path: "/api/rooms"},
			{method: "GET", path: "/api/console/session"},
			{method: "GET", path: "/api/attendance"},
			{method: "POST", path: "/api/login", headers: jsonPOST, body: `{"token":"x"}`},
			{method: "POST", path: "/api/drain", headers: map[string]string{"Origin": "http://evil.example"}},
			{method: "DELETE", path: "/"},
			{method: "GET", path: "/nothing"},
		} {
			got := send(t, h, q)
			want := map[string]string{
				"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
				"X-Frame-Options":         "DENY",
				"Referrer-Policy":         "no-referrer",
				"X-Content-Type-Options":  "nosniff",
			}
			for k, v := range want {
				if g := got.header.Get(k); g != v {
					t.Errorf("token %q %s %s (%d): %s = %q, want %q", tok, q.method, q.path, got.status, k, g, v)
				}
			}
		}
	}
}

func TestConsolePages(t *testing.T) {
	open := NewHandler(Config{Rooms: &fakeRooms{}, Logger: quietLogger()})
	signed := NewHandler(Config{Token: token, Rooms: &fakeRooms{}, Logger: quietLogger()})
	rows := []struct {
		name     string
		h        http.Handler
		path     string
		status   int
		location string
		ctype    string
		contains string
	}{
		{"console without a token", open, "/", 200, "", "text/html; charset=utf-8", `<section id="rooms"`},
		{"console asks for sign-in", signed, "/", 303, "/login", "", ""},
		{"sign-in page", signed, "/login", 200, "", "text/html; charset=utf-8", `<input id="token" type="password"`},
		{"no sign-in without a token", open, "/login", 303, "/", "", ""},
		{"script", open, "/console/console.js", 200, "", "text/javascript; charset=utf-8", "EventSource"},
		{"script before sign-in", signed, "/console/login.js", 200, "", "text/javascript; charset=utf-8", "/api/login"},
		{"style sheet", signed, "/console/console.css", 200, "", "text/css; charset=utf-8", "focus-visible"},
		{"icon", signed, "/console/icon.svg", 200, "", "image/svg+xml", "<svg"},
		{"a page is not an asset", open, "/console/index.html", 404, "", "application/json", ""},
		{"no such asset", open, "/console/x.js", 404, "", "application/json", ""},
		{"no listing", open, "/console/", 404, "", "application/json", ""},
		{"no way out", open, "/console/..%2fconsole.go", 404, "", "application/json", ""},
		{"rooms before sign-in", signed, "/api/rooms", 401, "", "application/json", ""},
		{"events before sign-in", signed, "/api/events", 401, "", "application/json", ""},
		{"session before sign-in", signed, "/api/console/session", 401, "", "application/json", ""},
	}
	for _, row := range rows {
		got := send(t, row.h, request{method: "GET", path: row.path})
		if got.status != row.status {
			t.Errorf("%s: %d, want %d: %s", row.name, got.status, row.status, got.body)
			continue
		}
		if loc := got.header.Get("Location"); loc != row.location {
			t.Errorf("%s: Location %q, want %q", row.name, loc, row.location)
		}
		if row.ctype != "" && got.header.Get("Content-Type") != row.ctype {
			t.Errorf("%s: Content-Type %q", row.name, got.header.Get("Content-Type"))
		}
		if !strings.Contains(got.body, row.contains) {
			t.Errorf("%s: body lacks %q", row.name, row.contains)
		}
	}
}

// The page loads nothing from another site and runs no inline script.
func TestConsoleFilesAreSelfContained(t *testing.T) {
	h := NewHandler(Config{Token: token, Rooms: &fakeRooms{}, Logger: quietLogger()})
	for _, p := range []string{"/login", "/console/console.js", "/console/login.js", "/console/console.css", "/console/icon.svg"} {
		body := send(t, h, request{method: "GET", path: p}).body
		for _, bad := range []string{"http://", "https://", "//cdn", "@import", "onclick=", "<script>", "style=\"", "eval("} {
			if strings.Contains(body, bad) && !(bad == "http://" && strings.HasSuffix(p, ".svg")) {
				t.Errorf("%s holds %q", p, bad)
			}
		}
	}
	page := send(t, NewHandler(Config{Rooms: &fakeRooms{}, Logger: quietLogger()}), request{method: "GET", path: "/"}).body
	for _, bad := range []string{"https://", "<script>", "style=\"", "onclick="} {
		if strings.Contains(page, bad) {
			t.Errorf("index.html holds %q", bad)
		}
	}
}

func login(t *testing.T, h http.Handler, tok string, q request) answer {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"token": tok})
	q.method, q.path, q.body = "POST", "/api/login", string(b)
	if q.headers == nil {
		q.headers = map[string]string{}
	}
	q.headers["Content-Type"] = "application/json"
	return send(t, h, q)
}

func TestLogin(t *testing.T) {
	clock := testkit.NewManualClock()
	h := NewHandler(Config{Token: token, Rooms: &fakeRooms{}, Logger: quietLogger(), Clock: clock})

	if got := login(t, h, "wrong-token-123456", request{}); got.status != 401 || cookieOf(got) != nil {
		t.Fatalf("wrong token: %d, cookie %v", got.status, cookieOf(got))
	}
	for _, overTLS := range []bool{false, true} {
		got := login(t, h, token, request{tls: overTLS, headers: map[string]string{"Origin": "http://localhost:8080"}})
		c := cookieOf(got)
		if got.status != 200 || c == nil {
			t.Fatalf("good token (TLS %v): %d %s", overTLS, got.status, got.body)
		}
		if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure != overTLS || c.MaxAge != 12*3600 {
			t.Errorf("TLS %v: cookie %+v", overTLS, c)
		}
		if strings.Contains(got.body, token) || strings.Contains(c.Value, token) {
			t.Errorf("the token came back")
		}
	}
	// A login from another site is refused before the token is looked at.
	if got := login(t, h, token, request{headers: map[string]string{"Origin": "http://evil.example"}}); got.status != 403 || cookieOf(got) != nil {
		t.Errorf("cross-site login: %d", got.status)
	}
	// A form (not JSON) cannot sign in.
	form := send(t, h, request{method: "POST", path: "/api/login", body: "token=" + token,
		headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}})
	if form.status != 415 {
		t.Errorf("form login: %d", form.status)
	}
	for _, body := range []string{"", "{", `{"token":""}`, `["x"]`, strings.Repeat(" ", 5000) + `{"token":"` + token + `"}`} {
		got := send(t, h, request{method: "POST", path: "/api/login", body: body, headers: jsonPOST})
		if got.status != 400 {
			t.Errorf("body %.20q: %d", body, got.status)
		}
	}
	// Without a token there is nothing to sign in to.
	open := NewHandler(Config{Rooms: &fakeRooms{}, Logger: quietLogger()})
	if got := login(t, open, token, request{}); got.status != 404 {
		t.Errorf("login without a token configured: %d", got.status)
	}
}

// The cookie does what the bearer token does, for 12 hours, across a
// restart with the same token; not with another token.
func TestSessionCookie(t *testing.T) {
	clock := testkit.NewManualClock()
	rooms := &fakeRooms{}
	h := NewHandler(Config{Token: token, Rooms: rooms, Logger: quietLogger(), Clock: clock})
	c := cookieOf(login(t, h, token, request{}))
	cookie := map[string]string{"Cookie": c.Name + "=" + c.Value}
	if got := send(t, h, request{method: "GET", path: "/", headers: cookie}); got.status != 200 {
		t.Fatalf("console with the cookie: %d", got.status)
	}
	if got := send(t, h, request{method: "GET", path: "/login", headers: cookie}); got.status != 303 {
		t.Errorf("sign-in page when signed in: %d", got.status)
	}
	if got := send(t, h, request{method: "GET", path: "/api/rooms", headers: cookie}); got.status != 200 {
		t.Errorf("rooms with the cookie: %d", got.status)
	}
	restarted := NewHandler(Config{Token: token, Rooms: rooms, Logger: quietLogger(), Clock: clock})
	if got := send(t, restarted, request{method: "GET", path: "/api/rooms", headers: cookie}); got.status != 200 {
		t.Errorf("rooms with the cookie after a restart: %d", got.status)
	}
	other := NewHandler(Config{Token: token + "-new", Rooms: rooms, Logger: quietLogger(), Clock: clock})
	if got := send(t, other, request{method: "GET", path: "/api/rooms", headers: cookie}); got.status != 401 {
		t.Errorf("rooms with the cookie of another token: %d", got.status)
	}
	forged := map[string]string{"Cookie": c.Name + "=" + c.Value[:len(c.Value)-2] + "AA"}
	if got := send(t, h, request{method: "GET", path: "/api/rooms", headers: forged}); got.status != 401 {
		t.Errorf("rooms with a forged cookie: %d", got.status)
	}
	clock.Advance(12*time.Hour - time.Second)
	if got := send(t, h, request{method: "GET", path: "/api/rooms", headers: cookie}); got.status != 200 {
		t.Errorf("rooms just before expiry: %d", got.status)
	}
	clock.Advance(time.Second)
	if got := send(t, h, request{method: "GET", path: "/", headers: cookie}); got.status != 303 {
		t.Errorf("console after expiry: %d", got.status)
	}
	out := send(t, h, request{method: "POST", path: "/api/logout", headers: map[string]string{"Authorization": "Bearer " + token}})
	if c := cookieOf(out); out.status != 200 || c == nil || c.MaxAge >= 0 {
		t.Errorf("logout: %d %v", out.status, c)
	}
}

func TestCSRF(t *testing.T) {
	rooms := &fakeRooms{}
	h := NewHandler(Config{Token: token, Rooms: rooms, Logger: quietLogger()})
	c := cookieOf(login(t, h, token, request{}))
	cookie := c.Name + "=" + c.Value
	sess := send(t, h, request{method: "GET", path: "/api/console/session", headers: map[string]string{"Cookie": cookie}})
	var s struct {
		CSRF    string `json:"csrf"`
		SignOut bool   `json:"sign_out"`
	}
	if err := json.Unmarshal([]byte(sess.body), &s); err != nil || s.CSRF == "" || !s.SignOut || cookieOf(sess) != nil {
		t.Fatalf("session: %d %s", sess.status, sess.body)
	}
	other := cookieOf(login(t, h, token, request{}))
	otherCSRF := csrfToken(h.sessions.key, must(parseSession(h.sessions.key, other.Value, time.Now())))
	rows := []struct {
		name    string
		headers map[string]string
		status  int
	}{
		{"cookie, no token", map[string]string{"Cookie": cookie}, 403},
		{"cookie, wrong token", map[string]string{"Cookie": cookie, csrfHeader: "x"}, 403},
		{"cookie, another session's token", map[string]string{"Cookie": cookie, csrfHeader: otherCSRF}, 403},
		{"cookie and Origin, no token", map[string]string{"Cookie": cookie, "Origin": "http://localhost:8080"}, 403},
		{"cookie and its token", map[string]string{"Cookie": cookie, csrfHeader: s.CSRF}, 200},
		{"cookie, token and Origin", map[string]string{"Cookie": cookie, csrfHeader: s.CSRF, "Origin": "http://localhost:8080", "Sec-Fetch-Site": "same-origin"}, 200},
		{"cookie and token, another site", map[string]string{"Cookie": cookie, csrfHeader: s.CSRF, "Origin": "http://evil.example"}, 403},
		{"token without the cookie", map[string]string{csrfHeader: s.CSRF}, 401},
		{"bearer script", map[string]string{"Authorization": "Bearer " + token}, 200},
		{"bearer and a cookie", map[string]string{"Authorization": "Bearer " + token, "Cookie": cookie}, 200},
	}
	for _, row := range rows {
		before := len(rooms.taken())
		row.headers["Content-Type"] = "application/json"
		got := send(t, h, request{method: "POST", path: "/api/rooms/g/seats/2/mute", headers: row.headers})
		if got.status != row.status {
			t.Errorf("%s: %d, want %d: %s", row.name, got.status, row.status, got.body)
		}
		if acted := len(rooms.taken()) - before; (acted == 1) != (row.status == 200) {
			t.Errorf("%s: acted %d times", row.name, acted)
		}
	}
	// A loopback API without a token: the console's own script gets an
	// anonymous session; a script without browser headers needs none.
	open := NewHandler(Config{Rooms: rooms, Logger: quietLogger()})
	hdr := withSession(t, open, "localhost:8080", map[string]string{"Content-Type": "application/json", "Origin": "http://localhost:8080"})
	if got := send(t, open, request{method: "POST", path: "/api/rooms/g/lock", headers: hdr}); got.status != 200 {
		t.Errorf("console without a token: %d %s", got.status, got.body)
	}
	delete(hdr, csrfHeader)
	if got := send(t, open, request{method: "POST", path: "/api/rooms/g/lock", headers: hdr}); got.status != 403 {
		t.Errorf("console without a token, no CSRF token: %d", got.status)
	}
	if got := send(t, open, request{method: "POST", path: "/api/rooms/g/lock", headers: jsonPOST}); got.status != 200 {
		t.Errorf("script without a token: %d", got.status)
	}
}

func must[T any](v T, ok bool) T {
	if !ok {
		panic("must")
	}
	return v
}

// Wrong tokens, at the sign-in or as a bearer, block the source after 5
// within a minute, for 5 minutes; other sources are not held up.
func TestWrongTokensBlockTheSource(t *testing.T) {
	for _, how := range []string{"login", "bearer"} {
		t.Run(how, func(t *testing.T) {
			clock := testkit.NewManualClock()
			var logs testkit.LogBuffer
			h := NewHandler(Config{Token: token, Rooms: &fakeRooms{}, Logger: slog.New(slog.NewTextHandler(&logs, nil)), Clock: clock})
			try := func(tok, remote string) answer {
				if how == "login" {
					return login(t, h, tok, request{remote: remote})
				}
				return send(t, h, request{method: "GET", path: "/api/rooms", remote: remote,
					headers: map[string]string{"Authorization": "Bearer " + tok}})
			}
			const guesser, other = "198.51.100.7:5060", "198.51.100.8:5060"
			for i := range guardMaxFailures {
				if got := try("guess-"+strconv.Itoa(i)+"-0123456789", guesser); got.status != 401 {
					t.Fatalf("guess %d: %d", i, got.status)
				}
				clock.Advance(5 * time.Second)
			}
			got := try(token, guesser)
			if got.status != 429 {
				t.Fatalf("right token while blocked: %d", got.status)
			}
			if ra, err := strconv.Atoi(got.header.Get("Retry-After")); err != nil || ra < 270 || ra > 300 {
				t.Errorf("Retry-After %q", got.header.Get("Retry-After"))
			}
			if got := try(token, other); got.status != 200 {
				t.Errorf("another source: %d", got.status)
			}
			if n := strings.Count(logs.String(), "admin source blocked after repeated wrong tokens"); n != 1 {
				t.Errorf("%d block log lines", n)
			}
			if strings.Contains(logs.String(), "guess-") || strings.Contains(logs.String(), token) {
				t.Errorf("a token was logged:\n%s", logs.String())
			}
			clock.Advance(guardBlockFor)
			if got := try(token, guesser); got.status != 200 {
				t.Errorf("after the block: %d", got.status)
			}
		})
	}
}

func TestTokenGuardSpreadOut(t *testing.T) {
	g := newTokenGuard()
	src := remoteAddr("[2001:db8::1]:5060")
	now := time.Unix(1_700_000_000, 0)
	// 4 a minute for an hour never blocks.
	for i := range 240 {
		if g.fail(src, now.Add(time.Duration(i)*15*time.Second)) {
			t.Fatalf("blocked at failure %d", i)
		}
	}
	// Another address in the same /64 counts with it.
	near := remoteAddr("[2001:db8::2]:5060")
	at := now.Add(2 * time.Hour)
	for i := range guardMaxFailures {
		g.fail(src, at)
		_ = i
	}
	if g.blocked(near, at) == 0 {
		t.Error("the /64 is not blocked")
	}
}

func TestTokenGuardIsBounded(t *testing.T) {
	g := newTokenGuard()
	g.maxSources = 8
	now := time.Unix(1_700_000_000, 0)
	for i := range 200 {
		a := remoteAddr("10.0.0." + strconv.Itoa(i+1) + ":1")
		for range guardMaxFailures {
			g.fail(a, now)
		}
	}
	if n := len(g.sources); n > g.maxSources+g.maxSources/4 {
		t.Fatalf("%d records", n)
	}
	// Past the table, whole neighbourhoods are blocked.
	if g.blocked(remoteAddr("10.0.0.250:1"), now) == 0 {
		t.Error("an address past a full table escaped")
	}
}

// --- the event stream ----------------------------------------------------

// streamReader reads "rooms" events from a stream.
type streamReader struct {
	t   *testing.T
	res *http.Response
	sc  *bufio.Scanner
}

func openStream(t *testing.T, url string) *streamReader {
	t.Helper()
	res, err := http.Get(url + "/api/events")
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		t.Fatalf("events: %d %s", res.StatusCode, b)
	}
	t.Cleanup(func() { res.Body.Close() })
	return &streamReader{t: t, res: res, sc: bufio.NewScanner(res.Body)}
}

// next returns the data of the next rooms event, or "" at the stream's end.
func (s *streamReader) next() string {
	s.t.Helper()
	event := ""
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case line == "event: rooms":
			event = "rooms"
		case strings.HasPrefix(line, "data: ") && event == "rooms":
			return strings.TrimPrefix(line, "data: ")
		}
	}
	return ""
}

func maskedRooms() *fakeRooms {
	return &fakeRooms{views: []conference.RoomView{{
		Group: "Tuesday", Started: time.Date(2026, 3, 3, 19, 0, 0, 0, time.UTC), Locked: true,
		MeetingStart: time.Date(2026, 3, 3, 19, 0, 0, 0, time.UTC), MeetingEnd: time.Date(2026, 3, 3, 20, 0, 0, 0, time.UTC),
		Seats: []conference.SeatView{
			{Seat: 1, Role: "facilitator", Placement: "room", Caller: "+1•••••4567"},
			{Seat: 3, Role: "member", Placement: "waiting", Muted: true, FacilitatorMuted: true, HandRaised: true, Caller: "+15551234567"},
		},
	}}}
}

func (f *fakeRooms) set(views []conference.RoomView) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.views = views
}

func TestEventsFirstAndChange(t *testing.T) {
	rooms := maskedRooms()
	h := NewHandler(Config{Rooms: rooms, Logger: quietLogger()})
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Close()
	s := openStream(t, srv.URL)
	first := s.next()
	want := `[{"group":"Tuesday","started":"2026-03-03T19:00:00Z","meeting_start":"2026-03-03T19:00:00Z","meeting_end":"2026-03-03T20:00:00Z","locked":true,"lecture":false,"seats":[` +
		`{"seat":1,"role":"facilitator","talking":false,"muted":false,"self_muted":false,"facilitator_muted":false,"hand":false,"floor":false,"placement":"room","leaving":false},` +
		`{"seat":3,"role":"member","talking":false,"muted":true,"self_muted":false,"facilitator_muted":true,"hand":true,"floor":false,"placement":"waiting","leaving":false}]}]`
	if first != want {
		t.Fatalf("first event:\n%s\nwant\n%s", first, want)
	}
	views := maskedRooms().views
	views[0].Seats[0].Talking = true
	start := time.Now()
	rooms.set(views)
	second := s.next()
	if !strings.Contains(second, `{"seat":1,"role":"facilitator","talking":true`) {
		t.Fatalf("change event: %s", second)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("the change took %v", d)
	}
	rooms.set(nil)
	if third := s.next(); third != "[]" {
		t.Errorf("no rooms: %q", third)
	}
}

// No caller field, masked or not, ever reaches the console's stream or
// pages.
func TestEventsHoldNoCaller(t *testing.T) {
	rooms := maskedRooms()
	h := NewHandler(Config{Rooms: rooms, Logger: quietLogger()})
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Close()
	res, err := http.Get(srv.URL + "/api/events")
	if err != nil {
		t.Fatal(err)
	}
	var seen strings.Builder
	go func() {
		time.Sleep(300 * time.Millisecond)
		views := maskedRooms().views
		views[0].Seats[1].Talking = true
		rooms.set(views)
		time.Sleep(500 * time.Millisecond)
		res.Body.Close()
	}()
	_, _ = io.Copy(&seen, res.Body)
	got := seen.String()
	if strings.Count(got, "event: rooms") < 2 {
		t.Fatalf("stream:\n%s", got)
	}
	for _, bad := range []string{"caller", "4567", "•", "5551234567", "+1"} {
		if strings.Contains(got, bad) {
			t.Errorf("the stream holds %q:\n%s", bad, got)
		}
	}
}

func TestEventsListenerLimit(t *testing.T) {
	h := NewHandler(Config{Rooms: maskedRooms(), Logger: quietLogger()})
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Close()
	var streams []*streamReader
	for range maxListeners {
		s := openStream(t, srv.URL)
		if s.next() == "" {
			t.Fatal("no first event")
		}
		streams = append(streams, s)
	}
	res, err := http.Get(srv.URL + "/api/events")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 503 || res.Header.Get("Retry-After") == "" {
		t.Fatalf("one too many: %d", res.StatusCode)
	}
	streams[0].res.Body.Close()
	deadline := time.Now().Add(2 * time.Second)
	for {
		res, err := http.Get(srv.URL + "/api/events")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a closed stream's place was not freed: %d", res.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Shutdown does not wait for open streams: they end when the handler is
// closed, and the poller stops.
func TestEventsEndOnShutdown(t *testing.T) {
	rooms := maskedRooms()
	h := NewHandler(Config{Rooms: rooms, Logger: quietLogger()})
	srv := httptest.NewUnstartedServer(h)
	srv.Config.RegisterOnShutdown(h.Close)
	srv.Start()
	defer srv.Close()
	defer h.Close()
	s := openStream(t, srv.URL)
	if s.next() == "" {
		t.Fatal("no first event")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := srv.Config.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	if ev := s.next(); ev != "" {
		t.Errorf("an event after shutdown: %s", ev)
	}
	h.hub.mu.Lock()
	polling := h.hub.polling
	h.hub.mu.Unlock()
	for i := 0; polling && i < 50; i++ {
		time.Sleep(20 * time.Millisecond)
		h.hub.mu.Lock()
		polling = h.hub.polling
		h.hub.mu.Unlock()
	}
	if polling {
		t.Error("the poller still runs after shutdown")
	}
	if _, ok := h.hub.join(); ok {
		t.Error("a stream was let in after shutdown")
	}
}

// The poller runs only while someone listens.
func TestEventsPollOnlyWhileListened(t *testing.T) {
	rooms := &countingRooms{fakeRooms: maskedRooms()}
	h := NewHandler(Config{Rooms: rooms, Logger: quietLogger()})
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Close()
	s := openStream(t, srv.URL)
	s.next()
	time.Sleep(500 * time.Millisecond)
	if n := rooms.count(); n < 2 {
		t.Fatalf("%d snapshots while listened to", n)
	}
	s.res.Body.Close()
	time.Sleep(500 * time.Millisecond)
	n := rooms.count()
	time.Sleep(600 * time.Millisecond)
	if m := rooms.count(); m != n {
		t.Errorf("%d snapshots with nobody listening", m-n)
	}
}

type countingRooms struct {
	*fakeRooms
	mu sync.Mutex
	n  int
}

func (c *countingRooms) Snapshot() []conference.RoomView {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return c.fakeRooms.Snapshot()
}

func (c *countingRooms) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// The admin server's read and write timeouts (10 s and 30 s in the app)
// do not end a stream.
func TestEventsOutliveServerTimeouts(t *testing.T) {
	rooms := maskedRooms()
	h := NewHandler(Config{Rooms: rooms, Logger: quietLogger()})
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ReadTimeout = 300 * time.Millisecond
	srv.Config.WriteTimeout = 300 * time.Millisecond
	srv.Start()
	defer srv.Close()
	defer h.Close()
	s := openStream(t, srv.URL)
	if s.next() == "" {
		t.Fatal("no first event")
	}
	time.Sleep(time.Second)
	views := maskedRooms().views
	views[0].Lecture = true
	rooms.set(views)
	if ev := s.next(); !strings.Contains(ev, `"lecture":true`) {
		t.Fatalf("after the timeouts: %q", ev)
	}
}

// GET /api/rooms from a browser (the console's cookie, or a page's
// headers) holds no caller at all, not even masked; a script still gets
// the masked form it always had.
func TestRoomsHoldNoCallerForBrowsers(t *testing.T) {
	h := NewHandler(Config{Rooms: maskedRooms(), Logger: quietLogger()})
	rows := []struct {
		name    string
		headers map[string]string
		masked  bool
	}{
		{"script", nil, true},
		{"console cookie", map[string]string{"Cookie": sessionCookie + "=x"}, false},
		{"page navigation", map[string]string{"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate"}, false},
		{"page fetch", map[string]string{"Origin": "http://localhost", "Sec-Fetch-Mode": "cors"}, false},
		{"only a fetch mode", map[string]string{"Sec-Fetch-Mode": "no-cors"}, false},
	}
	for _, row := range rows {
		got := doWith(t, h, "GET", "/api/rooms", "localhost", row.headers)
		if got.status != 200 {
			t.Fatalf("%s: %d %s", row.name, got.status, got.body)
		}
		if has := strings.Contains(got.body, "4567"); has != row.masked {
			t.Errorf("%s: masked caller in the answer %v, want %v:\n%s", row.name, has, row.masked, got.body)
		}
		if strings.Contains(got.body, "5551234567") {
			t.Errorf("%s: a whole number in the answer:\n%s", row.name, got.body)
		}
	}
}

// On a cluster node the API and the console show the room's owner node and
// which seats another node relays; a single node's show neither.
func TestRoomsShowClusterNodes(t *testing.T) {
	views := maskedRooms().views
	views[0].Node, views[0].Epoch = "a", 7
	views[0].Seats[1].Via = "b"
	h := NewHandler(Config{Rooms: &fakeRooms{views: views}, Logger: quietLogger()})
	var api roomsAnswer
	if got := do(t, h, "GET", "/api/rooms", ""); got.status != 200 {
		t.Fatalf("rooms: %d", got.status)
	} else if err := json.Unmarshal([]byte(got.body), &api); err != nil {
		t.Fatal(err)
	}
	r := api.Rooms[0]
	if r.Node != "a" || r.Epoch != 7 || r.Seats[0].Via != "" || r.Seats[1].Via != "b" {
		t.Errorf("API room %+v", r)
	}
	var console []consoleRoom
	if err := json.Unmarshal(consoleView(views), &console); err != nil {
		t.Fatal(err)
	}
	if c := console[0]; c.Node != "a" || c.Seats[0].Via != "" || c.Seats[1].Via != "b" {
		t.Errorf("console room %+v", c)
	}
	single := string(consoleView(maskedRooms().views))
	if strings.Contains(single, `"node"`) || strings.Contains(single, `"via"`) {
		t.Errorf("a single node's view names nodes: %s", single)
	}
}
