package admin

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/groupbridge/groupbridge/internal/conference/rules"
	"github.com/groupbridge/groupbridge/internal/testkit"
)

// jsonPOST is what a script's POST carries without a token.
var jsonPOST = map[string]string{"Content-Type": "application/json"}

// doWith sends a request with the given Host and headers.
func doWith(t *testing.T, h http.Handler, method, path, host string, headers map[string]string) answer {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	req.Host = host
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	body, _ := io.ReadAll(rec.Result().Body)
	return answer{rec.Code, rec.Result().Header, string(body)}
}

// withSession returns headers plus the cookie and CSRF token that
// GET /api/console/session gives a browser.
func withSession(t *testing.T, hd http.Handler, host string, headers map[string]string) map[string]string {
	t.Helper()
	got := doWith(t, hd, "GET", "/api/console/session", host, nil)
	if got.status != 200 {
		t.Fatalf("session: %d %s", got.status, got.body)
	}
	var s struct{ CSRF string }
	if err := json.Unmarshal([]byte(got.body), &s); err != nil || s.CSRF == "" {
		t.Fatalf("session answer %q", got.body)
	}
	cookie := ""
	for _, c := range (&http.Response{Header: got.header}).Cookies() {
		if c.Name == sessionCookie {
			cookie = c.Name + "=" + c.Value
		}
	}
	if cookie == "" {
		t.Fatalf("no session cookie in %v", got.header)
	}
	out := map[string]string{"Cookie": cookie, csrfHeader: s.CSRF}
	for k, v := range headers {
		out[k] = v
	}
	return out
}

// A web page in a browser on the operator's machine must not act through
// an API without a token: not by DNS rebinding (its own name in Host), not
// by a form or fetch from another origin. Scripts (curl, monitoring) that
// send no Origin keep working.
func TestBrowserChecks(t *testing.T) {
	h := func(k, v string, more ...string) map[string]string {
		m := map[string]string{k: v}
		for i := 0; i+1 < len(more); i += 2 {
			m[more[i]] = more[i+1]
		}
		return m
	}
	const ct = "Content-Type"
	formPOST := h(ct, "application/x-www-form-urlencoded", "Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site")
	rows := []struct {
		name    string
		token   string   // configured token
		hosts   []string // Config.Hosts
		method  string
		path    string
		host    string
		headers map[string]string
		status  int
		csrf    bool // send the session cookie and CSRF token of GET /api/console/session
	}{
		// Host: the configured names and loopback names, any port.
		{"localhost with port", "", nil, "POST", "/api/drain", "localhost:8080", jsonPOST, 202, false},
		{"localhost without port", "", nil, "POST", "/api/drain", "localhost", jsonPOST, 202, false},
		{"localhost other port (a tunnel)", "", nil, "POST", "/api/drain", "localhost:9000", jsonPOST, 202, false},
		{"localhost in capitals, final dot", "", nil, "POST", "/api/drain", "LocalHost.:8080", jsonPOST, 202, false},
		{"127.0.0.1", "", nil, "POST", "/api/drain", "127.0.0.1:8080", jsonPOST, 202, false},
		{"[::1] with port", "", nil, "POST", "/api/drain", "[::1]:8080", jsonPOST, 202, false},
		{"[::1] without port", "", nil, "POST", "/api/drain", "[::1]", jsonPOST, 202, false},
		{"[::1] spelt long", "", nil, "POST", "/api/drain", "[0:0::1]:8080", jsonPOST, 202, false},
		{"DNS rebinding name", "", nil, "POST", "/api/drain", "evil.example:8080", jsonPOST, 421, false},
		{"DNS rebinding GET of the rooms", "", nil, "GET", "/api/rooms", "evil.example:8080", nil, 421, false},
		{"DNS rebinding GET of the metrics", "", nil, "GET", "/metrics", "evil.example", nil, 421, false},
		{"localhost as a subdomain", "", nil, "GET", "/api/rooms", "localhost.evil.example", nil, 421, false},
		{"other loopback address", "", nil, "GET", "/api/rooms", "127.0.0.2:8080", nil, 421, false},
		{"empty Host", "", nil, "GET", "/api/rooms", "", nil, 421, false},
		{"bare IPv6 Host", "", nil, "GET", "/api/rooms", "::1", nil, 421, false},
		{"bad port", "", nil, "GET", "/api/rooms", "localhost:80a", nil, 421, false},
		{"userinfo", "", nil, "GET", "/api/rooms", "localhost@evil.example", nil, 421, false},
		{"healthz answers any Host", "", nil, "GET", "/healthz", "evil.example", nil, 200, false},
		{"a listed name", "", []string{"bridge.example.org", "192.0.2.7", "2001:db8::7"}, "GET", "/api/rooms", "Bridge.Example.org:8443", nil, 200, false},
		{"a listed IPv4", "", []string{"bridge.example.org", "192.0.2.7", "2001:db8::7"}, "GET", "/api/rooms", "192.0.2.7:8080", nil, 200, false},
		{"a listed bare IPv6", "", []string{"bridge.example.org", "192.0.2.7", "2001:db8::7"}, "GET", "/api/rooms", "[2001:db8::7]:8080", nil, 200, false},
		{"a listed bracketed IPv6", "", []string{"[2001:db8::7]"}, "GET", "/api/rooms", "[2001:db8::7]", nil, 200, false},
		{"listed names replace the loopback ones", "", []string{"bridge.example.org"}, "GET", "/api/rooms", "localhost:8080", nil, 421, false},
		{"wrong Host even with the token", token, nil, "POST", "/api/drain", "evil.example", h("Authorization", "Bearer "+token), 421, false},

		// Where a state-changing request came from.
		{"cross-site form POST", "", nil, "POST", "/api/drain", "localhost:8080", formPOST, 403, false},
		{"cross-site JSON POST", "", nil, "POST", "/api/drain", "localhost:8080", h(ct, "application/json", "Sec-Fetch-Site", "cross-site"), 403, false},
		{"same-site (another port) POST", "", nil, "POST", "/api/drain", "localhost:8080", h(ct, "application/json", "Sec-Fetch-Site", "same-site"), 403, false},
		{"same-origin POST, with the session's CSRF token", "", nil, "POST", "/api/drain", "localhost:8080", h(ct, "application/json", "Sec-Fetch-Site", "same-origin", "Origin", "http://localhost:8080"), 202, true},
		{"same-origin POST, no CSRF token", "", nil, "POST", "/api/drain", "localhost:8080", h(ct, "application/json", "Sec-Fetch-Site", "same-origin", "Origin", "http://localhost:8080"), 403, false},
		{"user typed it (none), with the session's CSRF token", "", nil, "POST", "/api/drain", "localhost:8080", h(ct, "application/json", "Sec-Fetch-Site", "none"), 202, true},
		{"user typed it (none), no CSRF token", "", nil, "POST", "/api/drain", "localhost:8080", h(ct, "application/json", "Sec-Fetch-Site", "none"), 403, false},
		{"Origin of another site", "", nil, "POST", "/api/drain", "localhost:8080", h(ct, "application/json", "Origin", "http://evil.example"), 403, false},
		{"Origin of another port", "", nil, "POST", "/api/drain", "localhost:8080", h(ct, "application/json", "Origin", "http://localhost:3000"), 403, false},
		{"Origin with another loopback name", "", nil, "POST", "/api/drain", "localhost:8080", h(ct, "application/json", "Origin", "http://127.0.0.1:8080"), 403, false},
		{"Origin null", "", nil, "POST", "/api/drain", "localhost:8080", h(ct, "application/json", "Origin", "null"), 403, false},
		{"Origin https on the http port, with the session's CSRF token", "", nil, "POST", "/api/drain", "localhost:8080", h(ct, "application/json", "Origin", "https://localhost:8080"), 202, true},
		{"Origin https on the http port, no CSRF token", "", nil, "POST", "/api/drain", "localhost:8080", h(ct, "application/json", "Origin", "https://localhost:8080"), 403, false},
		{"Origin default port, with the session's CSRF token", "", nil, "POST", "/api/drain", "localhost", h(ct, "application/json", "Origin", "http://localhost"), 202, true},
		{"Origin default port, no CSRF token", "", nil, "POST", "/api/drain", "localhost", h(ct, "application/json", "Origin", "http://localhost"), 403, false},
		{"Origin default port spelt out, with the session's CSRF token", "", nil, "POST", "/api/drain", "localhost:80", h(ct, "application/json", "Origin", "http://localhost"), 202, true},
		{"Origin default port spelt out, no CSRF token", "", nil, "POST", "/api/drain", "localhost:80", h(ct, "application/json", "Origin", "http://localhost"), 403, false},
		{"Origin https default port", "", nil, "POST", "/api/drain", "localhost:80", h(ct, "application/json", "Origin", "https://localhost"), 403, false},
		{"Origin of another site with the token", token, nil, "POST", "/api/drain", "localhost:8080", h("Authorization", "Bearer "+token, "Origin", "http://evil.example"), 403, false},
		{"cross-site with the token", token, nil, "POST", "/api/drain", "localhost:8080", h("Authorization", "Bearer "+token, "Sec-Fetch-Site", "cross-site"), 403, false},
		{"cross-site GET reads nothing it can see", "", nil, "GET", "/api/rooms", "localhost:8080", h("Sec-Fetch-Site", "cross-site"), 200, false},
		{"cross-site DELETE", "", nil, "DELETE", "/api/rooms/g/end", "localhost:8080", h("Origin", "http://evil.example"), 403, false},

		// Content type of a POST without a token.
		{"POST without a content type", "", nil, "POST", "/api/drain", "localhost:8080", nil, 415, false},
		{"form POST from a script", "", nil, "POST", "/api/drain", "localhost:8080", h(ct, "application/x-www-form-urlencoded"), 415, false},
		{"text/plain POST", "", nil, "POST", "/api/rooms/g/lock", "localhost:8080", h(ct, "text/plain"), 415, false},
		{"multipart POST", "", nil, "POST", "/api/rooms/g/seats/1/mute", "localhost:8080", h(ct, "multipart/form-data; boundary=x"), 415, false},
		{"JSON with a charset", "", nil, "POST", "/api/rooms/g/lock", "localhost:8080", h(ct, "Application/JSON; charset=utf-8"), 200, false},
		{"JSON look-alike", "", nil, "POST", "/api/rooms/g/lock", "localhost:8080", h(ct, "application/json-seq"), 415, false},
		{"token exempts from the content type", token, nil, "POST", "/api/drain", "localhost:8080", h("Authorization", "Bearer "+token), 202, false},
		{"wrong token is not exempt", token, nil, "POST", "/api/drain", "localhost:8080", h("Authorization", "Bearer nope"), 401, false},
		{"a token sent where none is configured is not exempt", "", nil, "POST", "/api/drain", "localhost:8080", h("Authorization", "Bearer "+token), 415, false},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			rooms := &fakeRooms{}
			drains := 0
			var logs testkit.LogBuffer
			hd := NewHandler(Config{Token: row.token, Hosts: row.hosts, Rooms: rooms, Drain: func() { drains++ },
				Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			headers := row.headers
			if row.csrf {
				headers = withSession(t, hd, row.host, row.headers)
			}
			got := doWith(t, hd, row.method, row.path, row.host, headers)
			if got.status != row.status {
				t.Fatalf("status %d, want %d: %s", got.status, row.status, got.body)
			}
			acted := drains + len(rooms.taken())
			if row.status >= 400 {
				if acted != 0 {
					t.Errorf("refused with %d but acted %d times", got.status, acted)
				}
				msg := errorOf(t, got)
				if strings.Contains(msg, "evil") || (row.host != "" && strings.Contains(msg, row.host)) {
					t.Errorf("error %q repeats the request", msg)
				}
				if l := logs.String(); !strings.Contains(l, "refused") || strings.Contains(l, "evil") {
					t.Errorf("log:\n%s", l)
				}
			} else if row.method == "POST" && acted != 1 {
				t.Errorf("accepted but acted %d times", acted)
			}
		})
	}
}

// The answers name the problem, so an operator knows what to fix.
func TestBrowserCheckMessages(t *testing.T) {
	hd := NewHandler(Config{Rooms: &fakeRooms{}, Drain: func() {}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	rows := []struct {
		host    string
		headers map[string]string
		want    string
	}{
		{"evil.example", jsonPOST, "admin.hosts"},
		{"localhost", map[string]string{"Origin": "http://evil.example"}, "another web site"},
		{"localhost", nil, "Content-Type: application/json"},
	}
	for _, row := range rows {
		got := doWith(t, hd, "POST", "/api/drain", row.host, row.headers)
		if msg := errorOf(t, got); !strings.Contains(msg, row.want) {
			t.Errorf("%s %v: %d %q, want it to say %q", row.host, row.headers, got.status, msg, row.want)
		}
	}
}

func TestHostName(t *testing.T) {
	rows := []struct {
		in   string
		want string // "" for refused
	}{
		{"localhost", "localhost"},
		{"LOCALHOST:8080", "localhost"},
		{"localhost.", "localhost"},
		{"127.0.0.1:1", "127.0.0.1"},
		{"[::1]:8080", "::1"},
		{"[::1]", "::1"},
		{"[::ffff:127.0.0.1]:80", "127.0.0.1"},
		{"[0000::1]", "::1"},
		{"bridge.example.org:443", "bridge.example.org"},
		{"", ""},
		{":8080", ""},
		{"::1", ""},
		{"[::1]x", ""},
		{"[127.0.0.1]", ""},
		{"[fe80::1%25eth0]:80", ""},
		{"localhost:", ""},
		{"localhost:123456", ""},
		{"localhost:8080:1", ""},
		{"a/b", ""},
		{"a@b", ""},
	}
	for _, row := range rows {
		got, ok := hostName(row.in)
		if ok != (row.want != "") || got != row.want {
			t.Errorf("hostName(%q) = %q, %v; want %q", row.in, got, ok, row.want)
		}
	}
}

// The seat and room routes are under the same checks as drain.
func TestBrowserChecksCoverEveryAction(t *testing.T) {
	for _, path := range []string{"/api/rooms/g/seats/1/remove", "/api/rooms/g/end", "/api/drain"} {
		rooms := &fakeRooms{}
		hd := NewHandler(Config{Rooms: rooms, Drain: func() { rooms.Act("drain", rules.ActEnd, 0) },
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		for _, headers := range []map[string]string{
			{"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
			{"Content-Type": "text/plain"},
		} {
			if got := doWith(t, hd, "POST", path, "127.0.0.1:8080", headers); got.status < 400 {
				t.Errorf("%s %v: %d", path, headers, got.status)
			}
		}
		if got := doWith(t, hd, "POST", path, "evil.example:8080", jsonPOST); got.status != 421 {
			t.Errorf("%s from evil.example: %d", path, got.status)
		}
		if n := len(rooms.taken()); n != 0 {
			t.Errorf("%s: %d actions", path, n)
		}
	}
}
