package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/softphone"
)

// get fetches path from the admin handler.
func get(t *testing.T, h http.Handler, method, path, token string) (int, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// metricValue finds one sample's value in a Prometheus text scrape.
func metricValue(t *testing.T, scrape, series string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` ([0-9.e+-]+)$`)
	m := re.FindStringSubmatch(scrape)
	if m == nil {
		t.Fatalf("no series %s in scrape", series)
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// The counts that calls make show in /metrics, the API shows the room, and
// neither ever holds a PIN or a caller number.
func TestMetricsAndAPIReflectCallsAndKeepSecrets(t *testing.T) {
	t.Parallel()
	const (
		pin    = "48213"
		facPIN = "9753186"
	)
	groups := `
  - name: Open circle
    member_pin: "` + pin + `"
    facilitator_pin: "` + facPIN + `"
`
	a, logs := startApp(t, testYAML("", groups))
	h := a.AdminHandler("s3cret-token")
	callers := []string{"+15554000001", "+15554000002"}
	for i, c := range callers {
		p := dial(t, a, softphone.Config{Caller: c})
		enter(t, logs, p, pin, softphone.DigitRFC4733, i+1)
	}
	wrong := dial(t, a, softphone.Config{Caller: "+15554000003"})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := wrong.SendDigits(ctx, "1111#2222#3333#", softphone.DigitRFC4733); err != nil {
		t.Fatal(err)
	}
	<-wrong.Done()
	logs.waitCount(t, 5*time.Second, 1, "call not admitted", "outcome", "wrong-pin")
	time.Sleep(500 * time.Millisecond)

	if code, _ := get(t, h, "GET", "/metrics", ""); code != http.StatusUnauthorized {
		t.Fatalf("/metrics without the token: %d", code)
	}
	code, scrape := get(t, h, "GET", "/metrics", "s3cret-token")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	checks := []struct {
		series string
		want   float64
	}{
		{`groupbridge_calls_total{outcome="joined"}`, 2},
		{`groupbridge_calls_total{outcome="wrong-pin"}`, 1},
		{`groupbridge_pin_failures_total{scope="shared"}`, 3},
		{`groupbridge_calls_active`, 2},
		{`groupbridge_rooms`, 1},
		{`groupbridge_room_members{placement="room"}`, 2},
		{`groupbridge_sip_registration_state{state="disabled"}`, 1},
		{`groupbridge_sip_auth_failures_total`, 0},
	}
	for _, c := range checks {
		if got := metricValue(t, scrape, c.series); got != c.want {
			t.Errorf("%s = %v, want %v", c.series, got, c.want)
		}
	}
	if v := metricValue(t, scrape, `groupbridge_rtp_packets_total{direction="in"}`); v < 100 {
		t.Errorf("rtp packets in = %v", v)
	}
	if v := metricValue(t, scrape, `groupbridge_mixer_ticks_total`); v < 50 {
		t.Errorf("mixer ticks = %v", v)
	}

	code, rooms := get(t, h, "GET", "/api/rooms", "s3cret-token")
	if code != 200 {
		t.Fatalf("/api/rooms: %d %s", code, rooms)
	}
	var view any
	if err := json.Unmarshal([]byte(rooms), &view); err != nil {
		t.Fatalf("/api/rooms is not JSON: %v", err)
	}
	// The admin API names callers the way the log does (log.callers:
	// a tag by default).
	if !strings.Contains(rooms, "Open circle") || !strings.Contains(rooms, `"caller":"`+logs.caller(callers[0])+`"`) {
		t.Errorf("/api/rooms lacks the room or the caller's tag %s:\n%s", logs.caller(callers[0]), rooms)
	}
	// An action through the API, idempotent.
	for range 2 {
		if code, body := get(t, h, "POST", "/api/rooms/Open%20circle/seats/1/mute", "s3cret-token"); code != 200 {
			t.Fatalf("mute seat 1: %d %s", code, body)
		}
	}
	_, health := get(t, h, "GET", "/healthz", "")
	// The same API is served on admin.listen.
	res, err := http.Get("http://" + a.AdminAddr() + "/healthz")
	if err != nil {
		t.Fatalf("admin listener: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("admin listener /healthz: %d", res.StatusCode)
	}
	for _, answer := range []string{scrape, rooms, health, logs.String()} {
		for _, secret := range []string{pin, facPIN, "5554000001", "5554000002", "5554000003"} {
			if strings.Contains(answer, secret) {
				t.Errorf("an answer contains %q", secret)
			}
		}
	}
}
