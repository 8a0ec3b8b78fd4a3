package app

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// admin.tls serves the API and the console over HTTPS: the session cookie
// is Secure, the event stream works, and the bridge's shutdown does not
// wait for an open stream.
func TestE2EConsoleOverHTTPS(t *testing.T) {
	t.Parallel()
	cert, key := writeSelfSigned(t)
	const tok = "console-token-0123456789"
	y := strings.Replace(testYAML("", ""), "admin:\n  listen: 127.0.0.1:0",
		fmt.Sprintf("admin:\n  listen: 127.0.0.1:0\n  token: %s\n  tls: {cert: %s, key: %s}", tok, cert, key), 1)
	a, _ := startApp(t, y)
	base := "https://" + a.AdminAddr()
	client := &http.Client{
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}}, //nolint:gosec // self-signed test certificate
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	res, err := client.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login" {
		t.Fatalf("console before sign-in: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	res, err = client.Post(base+"/api/login", "application/json", strings.NewReader(`{"token":"`+tok+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	var session *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == "gb_session" {
			session = c
		}
	}
	if res.StatusCode != 200 || session == nil || !session.Secure || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode {
		t.Fatalf("sign-in over HTTPS: %d, cookie %+v", res.StatusCode, session)
	}
	// The console reads the bridge's own attendance store.
	req, _ := http.NewRequest("GET", base+"/api/attendance", nil)
	req.AddCookie(session)
	res, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), `"sessions": []`) {
		t.Fatalf("attendance: %d %s", res.StatusCode, body)
	}
	req, _ = http.NewRequest("GET", base+"/api/events", nil)
	req.AddCookie(session)
	res, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("events: %d", res.StatusCode)
	}
	sc := bufio.NewScanner(res.Body)
	got := ""
	for sc.Scan() && got == "" {
		if strings.HasPrefix(sc.Text(), "data: ") {
			got = strings.TrimPrefix(sc.Text(), "data: ")
		}
	}
	if got != "[]" {
		t.Fatalf("first event %q", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("shutdown with a console open took %v", d)
	}
	for sc.Scan() {
	}
}
