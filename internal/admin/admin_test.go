package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/conference"
	"github.com/groupbridge/groupbridge/internal/conference/rules"
	"github.com/groupbridge/groupbridge/internal/testkit"
)

type actCall struct {
	group string
	a     rules.Action
	seat  int
}

// fakeRooms records actions and answers with err for each of them.
type fakeRooms struct {
	mu    sync.Mutex
	views []conference.RoomView
	err   error
	calls []actCall
}

func (f *fakeRooms) Snapshot() []conference.RoomView {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.views
}

func (f *fakeRooms) Act(group string, a rules.Action, seat int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, actCall{group, a, seat})
	return f.err
}

func (f *fakeRooms) taken() []actCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]actCall(nil), f.calls...)
}

const token = "s3cret-Token"

type answer struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, h http.Handler, method, path, auth string) answer {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	req.Host = "localhost:8080"
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	body, _ := io.ReadAll(rec.Result().Body)
	return answer{rec.Code, rec.Result().Header, string(body)}
}

func errorOf(t *testing.T, a answer) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(a.body), &e); err != nil || e.Error == "" {
		t.Fatalf("not a JSON error: %q (%v)", a.body, err)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type %q", ct)
	}
	return e.Error
}

func TestRoutes(t *testing.T) {
	bearer := "Bearer " + token
	rows := []struct {
		name     string
		method   string
		path     string
		auth     string
		rulesErr error
		status   int
		call     *actCall // the action the rooms must get, nil for none
		allow    string   // Allow header of a 405
	}{
		{"seat mute", "POST", "/api/rooms/Tuesday/seats/3/mute", bearer, nil, 200, &actCall{"Tuesday", rules.ActMute, 3}, ""},
		{"seat unmute", "POST", "/api/rooms/Tuesday/seats/3/unmute", bearer, nil, 200, &actCall{"Tuesday", rules.ActUnmute, 3}, ""},
		{"seat wait", "POST", "/api/rooms/Tuesday/seats/12/wait", bearer, nil, 200, &actCall{"Tuesday", rules.ActWait, 12}, ""},
		{"seat return", "POST", "/api/rooms/Tuesday/seats/12/return", bearer, nil, 200, &actCall{"Tuesday", rules.ActReturn, 12}, ""},
		{"seat remove", "POST", "/api/rooms/Tuesday/seats/4/remove", bearer, nil, 200, &actCall{"Tuesday", rules.ActRemove, 4}, ""},
		{"seat facilitator", "POST", "/api/rooms/Tuesday/seats/1/facilitator", bearer, nil, 200, &actCall{"Tuesday", rules.ActMakeFacilitator, 1}, ""},
		{"room lock", "POST", "/api/rooms/Tuesday/lock", bearer, nil, 200, &actCall{"Tuesday", rules.ActLock, 0}, ""},
		{"room unlock", "POST", "/api/rooms/Tuesday/unlock", bearer, nil, 200, &actCall{"Tuesday", rules.ActUnlock, 0}, ""},
		{"room lecture on", "POST", "/api/rooms/Tuesday/lecture-on", bearer, nil, 200, &actCall{"Tuesday", rules.ActLectureOn, 0}, ""},
		{"room lecture off", "POST", "/api/rooms/Tuesday/lecture-off", bearer, nil, 200, &actCall{"Tuesday", rules.ActLectureOff, 0}, ""},
		{"room end", "POST", "/api/rooms/Tuesday/end", bearer, nil, 200, &actCall{"Tuesday", rules.ActEnd, 0}, ""},
		{"group decoded", "POST", "/api/rooms/Tuesday%20Grief%20Circle/lock", bearer, nil, 200, &actCall{"Tuesday Grief Circle", rules.ActLock, 0}, ""},
		{"group with a slash", "POST", "/api/rooms/AA%2FNA/seats/2/mute", bearer, nil, 200, &actCall{"AA/NA", rules.ActMute, 2}, ""},
		{"group unicode", "POST", "/api/rooms/Tr%C3%A9sor/lock", bearer, nil, 200, &actCall{"Trésor", rules.ActLock, 0}, ""},
		{"seat with leading zero", "POST", "/api/rooms/g/seats/007/mute", bearer, nil, 200, &actCall{"g", rules.ActMute, 7}, ""},
		{"scheme in lower case", "POST", "/api/rooms/g/lock", "bearer " + token, nil, 200, &actCall{"g", rules.ActLock, 0}, ""},

		{"seat zero", "POST", "/api/rooms/g/seats/0/mute", bearer, nil, 400, nil, ""},
		{"negative seat", "POST", "/api/rooms/g/seats/-1/mute", bearer, nil, 400, nil, ""},
		{"signed seat", "POST", "/api/rooms/g/seats/+1/mute", bearer, nil, 400, nil, ""},
		{"seat not a number", "POST", "/api/rooms/g/seats/two/mute", bearer, nil, 400, nil, ""},
		{"fractional seat", "POST", "/api/rooms/g/seats/1.5/mute", bearer, nil, 400, nil, ""},
		{"huge seat", "POST", "/api/rooms/g/seats/99999999999999999999/mute", bearer, nil, 400, nil, ""},

		{"unknown seat action", "POST", "/api/rooms/g/seats/1/toggle", bearer, nil, 404, nil, ""},
		{"room action on a seat", "POST", "/api/rooms/g/seats/1/lock", bearer, nil, 404, nil, ""},
		{"seat action on a room", "POST", "/api/rooms/g/mute", bearer, nil, 404, nil, ""},
		{"unknown room action", "POST", "/api/rooms/g/dance", bearer, nil, 404, nil, ""},
		{"action name case matters", "POST", "/api/rooms/g/LOCK", bearer, nil, 404, nil, ""},
		{"unknown path", "GET", "/api/nothing", bearer, nil, 404, nil, ""},
		{"no such room", "POST", "/api/rooms/g/lock", bearer, fmt.Errorf("lock %q: %w", "g", conference.ErrNoSuchRoom), 404, &actCall{"g", rules.ActLock, 0}, ""},
		{"no such seat", "POST", "/api/rooms/g/seats/9/mute", bearer, fmt.Errorf("mute seat 9: %w", rules.ErrNoSeat), 404, &actCall{"g", rules.ActMute, 9}, ""},
		{"remove a facilitator", "POST", "/api/rooms/g/seats/1/remove", bearer, fmt.Errorf("x: %w", rules.ErrFacilitator), 409, &actCall{"g", rules.ActRemove, 1}, ""},
		{"make a waiting caller facilitator", "POST", "/api/rooms/g/seats/2/facilitator", bearer, rules.ErrWaiting, 409, &actCall{"g", rules.ActMakeFacilitator, 2}, ""},
		{"return from the lobby", "POST", "/api/rooms/g/seats/2/return", bearer, rules.ErrLobby, 409, &actCall{"g", rules.ActReturn, 2}, ""},
		{"ended session", "POST", "/api/rooms/g/lock", bearer, rules.ErrEnded, 409, &actCall{"g", rules.ActLock, 0}, ""},
		{"shutting down", "POST", "/api/rooms/g/lock", bearer, conference.ErrClosed, 503, &actCall{"g", rules.ActLock, 0}, ""},
		{"room did not answer", "POST", "/api/rooms/g/lock", bearer, errors.New(`lock "g": the room did not answer in time`), 500, &actCall{"g", rules.ActLock, 0}, ""},

		{"GET an action", "GET", "/api/rooms/g/lock", bearer, nil, 405, nil, "POST"},
		{"GET a seat action", "GET", "/api/rooms/g/seats/1/mute", bearer, nil, 405, nil, "POST"},
		{"DELETE a seat action", "DELETE", "/api/rooms/g/seats/1/remove", bearer, nil, 405, nil, "POST"},
		{"POST the rooms", "POST", "/api/rooms", bearer, nil, 405, nil, "GET, HEAD"},
		{"GET drain", "GET", "/api/drain", bearer, nil, 405, nil, "POST"},
		{"PUT metrics", "PUT", "/metrics", bearer, nil, 405, nil, "GET, HEAD"},
		{"POST healthz", "POST", "/healthz", "", nil, 405, nil, "GET, HEAD"},

		{"no token", "POST", "/api/rooms/g/lock", "", nil, 401, nil, ""},
		{"wrong token", "POST", "/api/rooms/g/lock", "Bearer nope", nil, 401, nil, ""},
		{"token prefix", "POST", "/api/rooms/g/lock", "Bearer " + token[:5], nil, 401, nil, ""},
		{"token with more", "POST", "/api/rooms/g/lock", bearer + "x", nil, 401, nil, ""},
		{"basic auth", "POST", "/api/rooms/g/lock", "Basic " + token, nil, 401, nil, ""},
		{"token without scheme", "POST", "/api/rooms/g/lock", token, nil, 401, nil, ""},
		{"rooms without token", "GET", "/api/rooms", "", nil, 401, nil, ""},
		{"metrics without token", "GET", "/metrics", "", nil, 401, nil, ""},
		{"drain without token", "POST", "/api/drain", "", nil, 401, nil, ""},
		{"unknown path without token", "GET", "/api/nothing", "", nil, 401, nil, ""},
		{"a path round healthz", "GET", "/api/../healthz", "", nil, 401, nil, ""},
		{"healthz without token", "GET", "/healthz", "", nil, 200, nil, ""},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			rooms := &fakeRooms{err: row.rulesErr}
			h := NewHandler(Config{Token: token, Rooms: rooms, Drain: func() {}, Metrics: http.NotFoundHandler(),
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			got := do(t, h, row.method, row.path, row.auth)
			if got.status != row.status {
				t.Fatalf("status %d, want %d: %s", got.status, row.status, got.body)
			}
			calls := rooms.taken()
			switch {
			case row.call == nil && len(calls) != 0:
				t.Errorf("rooms got %+v", calls)
			case row.call != nil && (len(calls) != 1 || calls[0] != *row.call):
				t.Errorf("rooms got %+v, want %+v", calls, *row.call)
			}
			switch {
			case row.status == 200 && row.path == "/healthz":
				if got.body != "ok" {
					t.Errorf("healthz %q", got.body)
				}
			case row.status == 200:
				if strings.TrimSpace(got.body) != `{"ok":true}` {
					t.Errorf("body %q", got.body)
				}
			default:
				msg := errorOf(t, got)
				// Error answers never repeat the request.
				for _, part := range strings.Split(row.path, "/") {
					if len(part) > 4 && strings.Contains(msg, part) {
						t.Errorf("error %q repeats %q", msg, part)
					}
				}
			}
			if row.allow != "" && got.header.Get("Allow") != row.allow {
				t.Errorf("Allow %q, want %q", got.header.Get("Allow"), row.allow)
			}
			if row.status == 401 {
				want := `Bearer realm="groupbridge"`
				if strings.HasPrefix(row.auth, "Bearer ") {
					want += `, error="invalid_token"`
				}
				if got.header.Get("WWW-Authenticate") != want {
					t.Errorf("WWW-Authenticate %q, want %q", got.header.Get("WWW-Authenticate"), want)
				}
			}
		})
	}
}

func TestNoTokenConfiguredIsOpen(t *testing.T) {
	rooms := &fakeRooms{}
	h := NewHandler(Config{Rooms: rooms})
	if got := doWith(t, h, "POST", "/api/rooms/g/lock", "localhost:8080", jsonPOST); got.status != 200 {
		t.Errorf("lock without a configured token: %d %s", got.status, got.body)
	}
	if got := do(t, h, "GET", "/api/rooms", "Bearer anything"); got.status != 200 {
		t.Errorf("rooms: %d", got.status)
	}
	if got := do(t, h, "GET", "/metrics", ""); got.status != 404 {
		t.Errorf("metrics without a handler: %d", got.status)
	}
	if got := doWith(t, h, "POST", "/api/drain", "localhost:8080", jsonPOST); got.status != 501 {
		t.Errorf("drain without a function: %d", got.status)
	}
}

func TestHealthMetricsDrain(t *testing.T) {
	var healthErr error
	drains := 0
	h := NewHandler(Config{
		Token: token,
		Rooms: &fakeRooms{},
		Health: func() error {
			return healthErr
		},
		Drain: func() { drains++ },
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "groupbridge_rooms 2\n")
		}),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	bearer := "Bearer " + token
	if got := do(t, h, "GET", "/healthz", ""); got.status != 200 || got.body != "ok" {
		t.Errorf("healthy: %d %q", got.status, got.body)
	}
	if got := do(t, h, "HEAD", "/healthz", ""); got.status != 200 {
		t.Errorf("HEAD healthz: %d", got.status)
	}
	healthErr = errors.New("draining: new calls are refused")
	if got := do(t, h, "GET", "/healthz", ""); got.status != 503 || got.body != "draining: new calls are refused" {
		t.Errorf("unhealthy: %d %q", got.status, got.body)
	}
	if got := do(t, h, "GET", "/metrics", bearer); got.status != 200 || got.body != "groupbridge_rooms 2\n" {
		t.Errorf("metrics: %d %q", got.status, got.body)
	}
	for i := 1; i <= 2; i++ {
		got := do(t, h, "POST", "/api/drain", bearer)
		if got.status != 202 || strings.TrimSpace(got.body) != `{"draining":true}` || drains != i {
			t.Errorf("drain %d: %d %q, %d drains", i, got.status, got.body, drains)
		}
	}
}

// maskedCaller is the only shape a caller may take in an answer: a tag
// (logging.Tags) or logging.MaskCaller's forms.
var maskedCaller = regexp.MustCompile(`^(\+?\d•••••\d{4}|•••\d{0,2}|.•••|anonymous|[bcdfghjkmnpqrstvwxz]{7}|)$`)

func TestRoomsAnswer(t *testing.T) {
	started := time.Date(2025, 1, 7, 19, 0, 0, 0, time.FixedZone("x", 3600))
	rooms := &fakeRooms{views: []conference.RoomView{
		{Group: "Tuesday", Started: started, Lecture: true, ShareTimer: true, Seats: []conference.SeatView{
			{Seat: 1, Role: "facilitator", Heard: true, Talking: true, Placement: "room", Caller: "+1•••••4567"},
			{Seat: 3, Role: "member", Muted: true, FacilitatorMuted: true, HandRaised: true, Placement: "room", Caller: "•••42"},
			{Seat: 4, Role: "member", Muted: true, SelfMuted: true, Placement: "waiting", Caller: "anonymous", Leaving: true},
			{Seat: 5, Role: "member", Floor: true, Placement: "room", Caller: "a•••"},
			// Numbers that must never come out, whatever the conference
			// was given.
			{Seat: 6, Role: "member", Placement: "room", Caller: "+15551234567"},
			{Seat: 7, Role: "member", Placement: "room", Caller: "5551234"},
			{Seat: 8, Role: "member", Placement: "room", Caller: "+1•••••555123"},
		}},
		{Group: "Wednesday", Started: started, Locked: true},
	}}
	h := NewHandler(Config{Rooms: rooms})
	got := do(t, h, "GET", "/api/rooms", "")
	if got.status != 200 || got.header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %q", got.status, got.header.Get("Content-Type"))
	}
	want := `{"rooms":[` +
		`{"group":"Tuesday","started":"2025-01-07T18:00:00Z","locked":false,"lecture":true,"share_timer":true,"seats":[` +
		`{"seat":1,"role":"facilitator","placement":"room","muted":false,"self_muted":false,"facilitator_muted":false,"talking":true,"hand_raised":false,"floor":false,"heard":true,"leaving":false,"caller":"+1•••••4567"},` +
		`{"seat":3,"role":"member","placement":"room","muted":true,"self_muted":false,"facilitator_muted":true,"talking":false,"hand_raised":true,"floor":false,"heard":false,"leaving":false,"caller":"•••42"},` +
		`{"seat":4,"role":"member","placement":"waiting","muted":true,"self_muted":true,"facilitator_muted":false,"talking":false,"hand_raised":false,"floor":false,"heard":false,"leaving":true,"caller":"anonymous"},` +
		`{"seat":5,"role":"member","placement":"room","muted":false,"self_muted":false,"facilitator_muted":false,"talking":false,"hand_raised":false,"floor":true,"heard":false,"leaving":false,"caller":"a•••"},` +
		`{"seat":6,"role":"member","placement":"room","muted":false,"self_muted":false,"facilitator_muted":false,"talking":false,"hand_raised":false,"floor":false,"heard":false,"leaving":false,"caller":"•••"},` +
		`{"seat":7,"role":"member","placement":"room","muted":false,"self_muted":false,"facilitator_muted":false,"talking":false,"hand_raised":false,"floor":false,"heard":false,"leaving":false,"caller":"•••"},` +
		`{"seat":8,"role":"member","placement":"room","muted":false,"self_muted":false,"facilitator_muted":false,"talking":false,"hand_raised":false,"floor":false,"heard":false,"leaving":false,"caller":"•••"}]},` +
		`{"group":"Wednesday","started":"2025-01-07T18:00:00Z","locked":true,"lecture":false,"share_timer":false,"seats":[]}]}`
	if strings.TrimSpace(got.body) != want {
		t.Errorf("answer\n%s\nwant\n%s", got.body, want)
	}
	assertOnlyMasked(t, got.body, "5551234")

	rooms.views = nil
	if got := do(t, h, "GET", "/api/rooms", ""); strings.TrimSpace(got.body) != `{"rooms":[]}` {
		t.Errorf("no rooms: %q", got.body)
	}
}

// assertOnlyMasked fails when body holds a caller that is not masked or
// any of the secrets.
func assertOnlyMasked(t *testing.T, body string, secrets ...string) {
	t.Helper()
	var ans struct {
		Rooms []struct {
			Seats []struct {
				Caller string `json:"caller"`
			} `json:"seats"`
		} `json:"rooms"`
	}
	if err := json.Unmarshal([]byte(body), &ans); err != nil {
		t.Fatalf("answer is not JSON: %v", err)
	}
	for _, r := range ans.Rooms {
		for _, s := range r.Seats {
			if !maskedCaller.MatchString(s.Caller) {
				t.Errorf("caller %q is not masked", s.Caller)
			}
		}
	}
	for _, s := range secrets {
		if strings.Contains(body, s) {
			t.Errorf("answer holds %q", s)
		}
	}
}

func TestMaskedOnly(t *testing.T) {
	rows := []struct{ in, want string }{
		{"", ""},
		{"anonymous", "anonymous"},
		{"+1•••••4567", "+1•••••4567"},
		{"4•••••4567", "4•••••4567"},
		{"•••67", "•••67"},
		{"•••", "•••"},
		{"a•••", "a•••"},
		{"+15551234567", "•••"},
		{"1001", "•••"},
		{"alice", "•••"},
		{"+1•••••45678", "•••"},
		{"12•••••345678", "•••"},
		{"kqzmbtw", "kqzmbtw"}, // a tag
		{"kqzmbtwx", "•••"},
		{"abcdefg", "•••"},
	}
	for _, row := range rows {
		if got := maskedOnly(row.in); got != row.want {
			t.Errorf("maskedOnly(%q) = %q, want %q", row.in, got, row.want)
		}
	}
}

// TestLogsHoldNoSecrets: the token and a group typed in a refused request
// stay out of the logs.
func TestLogsHoldNoSecrets(t *testing.T) {
	var logs testkit.LogBuffer
	rooms := &fakeRooms{err: conference.ErrNoSuchRoom}
	h := NewHandler(Config{Token: token, Rooms: rooms, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	do(t, h, "POST", "/api/rooms/482193/lock", "Bearer "+token)
	do(t, h, "POST", "/api/rooms/g/lock", "Bearer wrong-"+token)
	if l := logs.String(); strings.Contains(l, "482193") || strings.Contains(l, token) || !strings.Contains(l, "refused") {
		t.Errorf("logs:\n%s", l)
	}
}
