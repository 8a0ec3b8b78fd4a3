package admin

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/groupbridge/groupbridge/internal/conference"
	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/internal/logging"
	"github.com/groupbridge/groupbridge/internal/testkit"
	"github.com/groupbridge/groupbridge/media/clock"
	"github.com/groupbridge/groupbridge/media/pcm"
	"github.com/groupbridge/groupbridge/media/prompt"
)

// silentStream is a caller who says nothing and hears whatever comes.
type silentStream struct{}

func (silentStream) ReadFrame(*pcm.Frame) bool { return false }
func (silentStream) WriteFrame(*pcm.Frame)     {}

// roomsJSON is the part of GET /api/rooms the test reads.
type roomsJSON struct {
	Rooms []struct {
		Group   string `json:"group"`
		Lecture bool   `json:"lecture"`
		Seats   []struct {
			Seat             int    `json:"seat"`
			Role             string `json:"role"`
			Placement        string `json:"placement"`
			FacilitatorMuted bool   `json:"facilitator_muted"`
			Muted            bool   `json:"muted"`
			Caller           string `json:"caller"`
		} `json:"seats"`
	} `json:"rooms"`
}

// TestAgainstAConference drives a real Conference through the API over
// HTTP. The rooms tick on a running clock: the API reaches them only
// through Conference's own methods, which wait for a tick.
func TestAgainstAConference(t *testing.T) {
	set, err := prompt.Builtin("en")
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	clk := clock.New(0, quiet, nil)
	conf := conference.New(conference.Config{Media: clk, Prompts: set, Log: quiet})
	clk.Start()
	t.Cleanup(func() {
		conf.Close()
		clk.Stop()
	})
	var logs testkit.LogBuffer
	srv := httptest.NewServer(NewHandler(Config{
		Token: token, Rooms: conf, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	}))
	t.Cleanup(srv.Close)

	// What the app has: numbers and their identities. Only the masked
	// forms may come out of the API.
	numbers := []string{"+15551230001", "+15551234567", "0044207946"}
	identities := []string{"9f2c1e77aa01", "4be07d3c5510", "c0ffee123456"}
	g := group.Group{Name: "Tuesday Grief Circle", LedBy: "peer", MaxMembers: 30}
	for i, n := range numbers {
		role := group.Member
		if i == 0 {
			role = group.Facilitator
		}
		if _, err := conf.Join(g, conference.JoinRequest{
			Stream: silentStream{}, Role: role, Identity: identities[i], Masked: logging.MaskCaller(n), CallID: "c",
		}); err != nil {
			t.Fatal(err)
		}
	}

	call := func(method, path string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		// No answer ever holds a number, a part of one, or an identity.
		for _, secret := range append(append([]string{}, identities...), "5551230001", "5551234567", "4420794", "15551") {
			if strings.Contains(string(body), secret) {
				t.Errorf("%s %s answer holds %q: %s", method, path, secret, body)
			}
		}
		return resp.StatusCode, string(body)
	}
	rooms := func() roomsJSON {
		t.Helper()
		status, body := call("GET", "/api/rooms")
		if status != 200 {
			t.Fatalf("GET /api/rooms: %d %s", status, body)
		}
		assertOnlyMasked(t, body)
		var r roomsJSON
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}

	r := rooms()
	if len(r.Rooms) != 1 || r.Rooms[0].Group != g.Name || len(r.Rooms[0].Seats) != 3 {
		t.Fatalf("rooms %+v", r)
	}
	for i, s := range r.Rooms[0].Seats {
		if s.Seat != i+1 || s.Caller != logging.MaskCaller(numbers[i]) || s.Placement != "room" {
			t.Errorf("seat %+v", s)
		}
	}
	if r.Rooms[0].Seats[0].Role != "facilitator" || r.Rooms[0].Seats[1].Role != "member" {
		t.Errorf("roles %+v", r.Rooms[0].Seats)
	}

	steps := []struct {
		method, path string
		status       int
	}{
		{"POST", "/api/rooms/tuesday%20grief%20CIRCLE/seats/2/mute", 200},
		{"POST", "/api/rooms/Tuesday%20Grief%20Circle/seats/2/mute", 200}, // again: no change, no error
		{"POST", "/api/rooms/Tuesday%20Grief%20Circle/seats/3/wait", 200},
		{"POST", "/api/rooms/Tuesday%20Grief%20Circle/lecture-on", 200},
		{"POST", "/api/rooms/Tuesday%20Grief%20Circle/seats/1/remove", 409},
		{"POST", "/api/rooms/Tuesday%20Grief%20Circle/seats/1/wait", 409},
		{"POST", "/api/rooms/Tuesday%20Grief%20Circle/seats/3/facilitator", 409},
		{"POST", "/api/rooms/Tuesday%20Grief%20Circle/seats/9/mute", 404},
		{"POST", "/api/rooms/Tuesday%20Grief%20Circl/lock", 404},
		{"POST", "/api/rooms/Tuesday%20Grief%20Circle/seats/0/mute", 400},
	}
	for _, s := range steps {
		if status, body := call(s.method, s.path); status != s.status {
			t.Errorf("%s %s: %d, want %d: %s", s.method, s.path, status, s.status, body)
		}
	}
	r = rooms()
	room := r.Rooms[0]
	if !room.Lecture || !room.Seats[1].FacilitatorMuted || !room.Seats[1].Muted || room.Seats[2].Placement != "waiting" {
		t.Errorf("after the actions: %+v", room)
	}
	if l := logs.String(); !strings.Contains(l, "action=mute") {
		t.Errorf("actions not logged:\n%s", l)
	}

	if status, body := call("POST", "/api/rooms/Tuesday%20Grief%20Circle/end"); status != 200 {
		t.Fatalf("end: %d %s", status, body)
	}
	if r := rooms(); len(r.Rooms) != 0 {
		t.Errorf("an ended session is listed: %+v", r)
	}
	if status, _ := call("POST", "/api/rooms/Tuesday%20Grief%20Circle/end"); status != 404 {
		t.Errorf("ending again: %d, want 404 (no live session)", status)
	}
	for _, secret := range append(append([]string{}, identities...), "5551234567", token) {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("logs hold %q", secret)
		}
	}
}
