package app

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A web page in the operator's browser cannot drain the bridge through
// the admin API on loopback, which has no token: not with a cross-site
// form POST, not with a form POST that carries no Origin, and not by DNS
// rebinding (its own name in Host). A script's JSON POST still drains.
func TestE2EAdminRefusesBrowserPages(t *testing.T) {
	t.Parallel()
	a, logs := startApp(t, testYAML("", ""))
	base := "http://" + a.AdminAddr()
	post := func(host string, headers map[string]string, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest("POST", base+"/api/drain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	const drained = "draining: new calls are refused, sessions go on"
	attacks := []struct {
		name    string
		host    string
		headers map[string]string
		status  int
	}{
		{"cross-site form POST", "", map[string]string{
			"Content-Type":   "application/x-www-form-urlencoded",
			"Origin":         "http://evil.example",
			"Sec-Fetch-Site": "cross-site",
		}, http.StatusForbidden},
		{"form POST without Origin", "", map[string]string{
			"Content-Type": "application/x-www-form-urlencoded",
		}, http.StatusUnsupportedMediaType},
		{"text/plain fetch without Origin", "", map[string]string{
			"Content-Type": "text/plain",
		}, http.StatusUnsupportedMediaType},
		{"DNS rebinding", "evil.example:" + a.AdminAddr()[strings.LastIndexByte(a.AdminAddr(), ':')+1:], map[string]string{
			"Content-Type": "application/json",
		}, http.StatusMisdirectedRequest},
	}
	for _, at := range attacks {
		if code, body := post(at.host, at.headers, "confirm=1"); code != at.status {
			t.Errorf("%s: %d %s, want %d", at.name, code, body, at.status)
		}
	}
	// A moment for a drain that was wrongly accepted to be logged.
	time.Sleep(100 * time.Millisecond)
	if n := logs.count(t, drained); n != 0 {
		t.Fatalf("a refused request drained the bridge (%d)", n)
	}
	if n := logs.count(t, "admin request refused: sent by another web site"); n != 1 {
		t.Errorf("%d log lines for the cross-site POST, want 1", n)
	}

	// The operator's own script: JSON, no browser headers.
	if code, body := post("", map[string]string{"Content-Type": "application/json"}, ""); code != http.StatusAccepted {
		t.Fatalf("JSON POST: %d %s", code, body)
	}
	logs.waitCount(t, 5*time.Second, 1, drained)
}
