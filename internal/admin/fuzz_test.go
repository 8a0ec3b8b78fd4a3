package admin

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzAPI sends arbitrary request lines and tokens: the handler never
// panics, answers only with the documented statuses, answers JSON under
// /api/, acts only with a valid token, a Host it answers to (an absolute
// target sets the Host), a known action and a seat from 1, and never
// repeats a path segment in an error.
func FuzzAPI(f *testing.F) {
	f.Add("POST", "/api/rooms/Tuesday/seats/3/mute", "Bearer "+token)
	f.Add("POST", "/api/rooms/a%2Fb/lecture-on", "Bearer "+token)
	f.Add("GET", "/api/rooms", "bearer "+token)
	f.Add("POST", "/api/rooms/x/seats/0009/remove", "Bearer "+token)
	f.Add("POST", "/api/rooms/x/seats/-1/remove", "Bearer "+token)
	f.Add("DELETE", "/api/rooms/x/end", "Bearer "+token)
	f.Add("GET", "/healthz", "")
	f.Add("GET", "/api/../healthz", "")
	f.Add("POST", "/api/drain", "Bearer x")
	f.Add("GET", "/%2e%2e/metrics", "Bearer "+token)
	f.Add("POST", "/api/rooms/%zz/lock", "Bearer "+token)
	f.Fuzz(func(t *testing.T, method, target, auth string) {
		raw := method + " " + target + " HTTP/1.1\r\nHost: admin\r\n"
		if auth != "" {
			raw += "Authorization: " + auth + "\r\n"
		}
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw + "\r\n")))
		if err != nil {
			return // not a request any server would hand us
		}
		req.RemoteAddr = "127.0.0.1:1"
		rooms := &fakeRooms{}
		drained := false
		h := NewHandler(Config{Token: token, Hosts: []string{"admin"}, Rooms: rooms, Drain: func() { drained = true },
			Metrics: http.NotFoundHandler(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		switch rec.Code {
		case 200, 202, 301, 303, 307, 308, 400, 401, 403, 404, 405, 415, 421, 429, 501:
		default:
			t.Fatalf("%q: status %d", raw, rec.Code)
		}
		body := rec.Body.String()
		if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
			var v map[string]any
			if err := json.Unmarshal([]byte(body), &v); err != nil {
				t.Fatalf("%q: answer is not JSON: %q", raw, body)
			}
			if msg, ok := v["error"].(string); ok {
				for _, part := range strings.Split(req.URL.Path, "/") {
					if len(part) > 6 && strings.Contains(msg, part) {
						t.Fatalf("%q: error %q repeats %q", raw, msg, part)
					}
				}
			}
		}
		calls := rooms.taken()
		if len(calls) == 0 && !drained {
			return
		}
		if name, _ := hostName(req.Host); name != "admin" {
			t.Fatalf("%q: acted for Host %q", raw, req.Host)
		}
		if drained {
			if _, ok := h.authorized(req); !ok || len(calls) != 0 {
				t.Fatalf("%q: drained without the token, or acted too", raw)
			}
			return
		}
		if len(calls) > 1 {
			t.Fatalf("%q: %d actions", raw, len(calls))
		}
		c := calls[0]
		if _, ok := h.authorized(req); !ok {
			t.Fatalf("%q: acted without the token", raw)
		}
		if c.a.SeatAction() != (c.seat >= 1) || !strings.Contains(req.URL.Path, "/"+c.a.String()) {
			t.Fatalf("%q: acted %v on seat %d", raw, c.a, c.seat)
		}
	})
}

// FuzzParseSeat: a seat is accepted only as plain digits naming 1 or more,
// and read as the number they name.
func FuzzParseSeat(f *testing.F) {
	for _, s := range []string{"1", "007", "0", "-1", "+1", " 1", "1e3", "999999999", "9999999999", "", "٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := parseSeat(s)
		if !ok {
			return
		}
		if n < 1 {
			t.Fatalf("parseSeat(%q) = %d", s, n)
		}
		if strconv.Itoa(n) != strings.TrimLeft(s, "0") {
			t.Fatalf("parseSeat(%q) = %d", s, n)
		}
	})
}

// FuzzParseSession: only a cookie the key signed, unexpired, is accepted,
// and nothing else ever is: changing any character of a good one fails.
func FuzzParseSession(f *testing.F) {
	key := sessionKey(token)
	now := time.Unix(1_700_000_000, 0)
	good := newSession(key, now.Add(time.Hour))
	f.Add(good)
	f.Add("")
	f.Add(good[:len(good)-1])
	f.Add(good + "A")
	f.Add(strings.Repeat("A", len(good)))
	f.Add(newSession(sessionKey("another token 1234"), now.Add(time.Hour)))
	f.Add(newSession(key, now.Add(-time.Second)))
	f.Fuzz(func(t *testing.T, value string) {
		id, ok := parseSession(key, value, now)
		if !ok {
			return
		}
		if value != good {
			// Only a session this key made passes: re-sign its id and
			// compare.
			m := hmac.New(sha256.New, key)
			m.Write(id)
			if base64.RawURLEncoding.EncodeToString(m.Sum(append([]byte(nil), id...))) != value {
				t.Fatalf("accepted %q", value)
			}
		}
		if len(id) != sessionIDLen {
			t.Fatalf("id of %d bytes", len(id))
		}
	})
}
