package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/config"
	"github.com/groupbridge/groupbridge/internal/softphone"
)

// Abuse limits end to end: PIN guessing alarms, per-source rate limits for
// untrusted sources (the trusted PBX exempt), max_calls, scanners and
// max_call, against the whole bridge.

// appMetric returns one series' value from the app's /metrics.
func appMetric(t *testing.T, a *App, series string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	a.Metrics().Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return metricValue(t, rec.Body.String(), series)
}

// rawFrom sends each message (placeholders as rawSIP's) from one UDP
// socket bound to ip, all at once, and returns the raw responses that
// come back until wait passes without one.
func rawFrom(t *testing.T, ip, dst string, msgs []string, wait time.Duration) []string {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	to, err := net.ResolveUDPAddr("udp", dst)
	if err != nil {
		t.Fatal(err)
	}
	src := c.LocalAddr().String()
	for _, m := range msgs {
		r := strings.NewReplacer("{dst}", dst, "{src}", src, "{srcip}", ip,
			"{rand}", fmt.Sprintf("%d%d", time.Now().UnixNano(), rawSeq.Add(1)))
		if _, err := c.WriteToUDP([]byte(r.Replace(m)), to); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	buf := make([]byte, 65536)
	for range 10_000 {
		_ = c.SetReadDeadline(time.Now().Add(wait))
		n, _, err := c.ReadFromUDP(buf)
		if err != nil {
			break
		}
		got = append(got, string(buf[:n]))
	}
	return got
}

// optionsText is an out-of-dialog OPTIONS; extra header lines go before
// the end of the headers.
func optionsText(extra string) string {
	return "OPTIONS sip:groupbridge@{dst} SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP {src};branch=z9hG4bK-{rand}\r\n" +
		"From: <sip:probe@{srcip}>;tag=t{rand}\r\n" +
		"To: <sip:groupbridge@{dst}>\r\n" +
		"Call-ID: o{rand}@test\r\n" +
		"CSeq: 1 OPTIONS\r\n" +
		"Max-Forwards: 70\r\n" + extra +
		"Content-Length: 0\r\n\r\n"
}

// statusOf returns a raw response's status code, or 0.
func statusOf(res string) int {
	line, _, _ := strings.Cut(res, "\r\n")
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != "SIP/2.0" {
		return 0
	}
	code, _ := strconv.Atoi(f[1])
	return code
}

// repeat returns n copies of msg.
func repeat(msg string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = msg
	}
	return out
}

// An untrusted source that sends faster than limits.source_rate has the
// excess dropped unanswered and counted; the trusted PBX's address is
// never limited, however much it sends.
func TestRateLimitUntrustedNotTrusted(t *testing.T) {
	t.Parallel()
	a, logs := startApp(t, testYAML(`  trusted: ["127.0.0.1/32"]
limits:
  source_rate: 1
  source_burst: 5`, ""))
	dst := sipAddr(t, a, "udp")
	const n = 30
	untrusted := rawFrom(t, "127.0.0.2", dst, repeat(optionsText(""), n), time.Second)
	// The burst, and a token or two of refill while they are sent.
	if len(untrusted) < 5 || len(untrusted) > 7 {
		t.Errorf("untrusted source: %d of %d OPTIONS answered, want the burst of 5 (+ refill)", len(untrusted), n)
	}
	trusted := rawFrom(t, "127.0.0.1", dst, repeat(optionsText(""), n), time.Second)
	if len(trusted) != n {
		t.Errorf("trusted source: %d of %d OPTIONS answered, want all", len(trusted), n)
	}
	for _, r := range append(untrusted, trusted...) {
		if statusOf(r) != 200 {
			t.Errorf("OPTIONS answered %q", r)
		}
	}
	dropped := appMetric(t, a, `groupbridge_sip_requests_dropped_total{reason="rate-limited"}`)
	if want := float64(n - len(untrusted)); dropped != want {
		t.Errorf("rate-limited drops counted: %v, want %v", dropped, want)
	}
	// One log line for the lot, naming the source.
	logs.waitCount(t, 2*time.Second, 1, "SIP requests dropped: source over limits.source_rate", "source", "127.0.0.2")
	if c := logs.count(t, "SIP requests dropped: source over limits.source_rate"); c != 1 {
		t.Errorf("%d drop log lines, want 1 (at most one a minute)", c)
	}
}

// Beyond limits.max_calls an INVITE gets 503 with Retry-After, from a
// trusted source too, and it is counted; a reload raises the cap for the
// next call without a restart.
func TestMaxCalls503RetryAfter(t *testing.T) {
	t.Parallel()
	yaml := testYAML("", "") + "\nlimits:\n  max_calls: 1\n"
	a, logs := startApp(t, yaml)
	dial(t, a, softphone.Config{Caller: "+15556000001"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := softphone.Dial(ctx, softphone.Config{Server: sipAddr(t, a, "udp"), Caller: "+15556000002"})
	var se *softphone.StatusError
	if !errors.As(err, &se) || se.StatusCode != 503 {
		t.Fatalf("second call: %v, want 503", err)
	}
	sdp := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
	codes, res := rawSIPText(t, sipAddr(t, a, "udp"), inviteText("+15556000003", sdp), 3)
	if len(codes) == 0 || codes[len(codes)-1] != 503 {
		t.Fatalf("raw INVITE answered %v, want 503", codes)
	}
	if v := headerValue(res, "Retry-After"); v != "30" {
		t.Errorf("Retry-After %q, want 30:\n%s", v, res)
	}
	if v := appMetric(t, a, `groupbridge_calls_rejected_total{reason="max-calls"}`); v != 2 {
		t.Errorf("calls_rejected_total{reason=max-calls} = %v, want 2", v)
	}
	logs.waitCount(t, 2*time.Second, 1, "call rejected: limits.max_calls reached", "max_calls", "1")

	// Reload: the limits apply at once, and nothing asks for a restart.
	cfg, err := config.Parse([]byte(strings.Replace(yaml, "max_calls: 1", "max_calls: 2", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	logs.waitCount(t, 2*time.Second, 1, "reload: applied", "keys", "limits.max_calls")
	if n := logs.count(t, "reload: these settings need a restart; keeping the running values"); n != 0 {
		t.Errorf("a limits change was reported as needing a restart")
	}
	dial(t, a, softphone.Config{Caller: "+15556000004"})
}

// Every limit is live on reload: none is reported as restart-only, and
// each change is named.
func TestLimitsAreLiveOnReload(t *testing.T) {
	for key, class := range config.ReloadKeys() {
		if strings.HasPrefix(key, "limits.") && class != config.ReloadLive {
			t.Errorf("%s is %q on reload, want live", key, class)
		}
	}
	base := func() *config.Config {
		c := config.Default()
		c.Groups = []config.Group{config.DefaultGroup()}
		return c
	}
	tests := []struct {
		name   string
		change func(c *config.Config)
		live   []string
	}{
		{"nothing", func(*config.Config) {}, nil},
		{"pin_failure_alarm", func(c *config.Config) { c.Limits.PINFailureAlarm = 5 }, []string{"limits.pin_failure_alarm"}},
		{"source_rate", func(c *config.Config) { c.Limits.SourceRate = 0 }, []string{"limits.source_rate"}},
		{"source_burst", func(c *config.Config) { c.Limits.SourceBurst = 3 }, []string{"limits.source_burst"}},
		{"max_calls", func(c *config.Config) { c.Limits.MaxCalls = 3 }, []string{"limits.max_calls"}},
		{"max_call", func(c *config.Config) { c.Limits.MaxCall = time.Hour }, []string{"limits.max_call"}},
		{"drop_scanners", func(c *config.Config) { c.SIP.DropScanners = false }, []string{"sip.drop_scanners"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			next := base()
			tc.change(next)
			live, restart := config.ReloadChanges(base(), next)
			if len(restart) != 0 {
				t.Errorf("restart keys %v, want none", restart)
			}
			if strings.Join(live, ",") != strings.Join(tc.live, ",") {
				t.Errorf("live keys %v, want %v", live, tc.live)
			}
		})
	}
}

// A known scanner gets no answer at all, whatever it sends, and is
// counted; the same request with a phone's User-Agent is answered (403:
// untrusted, no sip.users). With sip.drop_scanners off it is answered too.
func TestScannerDroppedWithoutAnswer(t *testing.T) {
	t.Parallel()
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprint("drop_scanners=", on), func(t *testing.T) {
			t.Parallel()
			a, _ := startApp(t, testYAML(fmt.Sprintf("  trusted: [\"127.0.0.1/32\"]\n  drop_scanners: %v", on), ""))
			dst := sipAddr(t, a, "udp")
			sdp := "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
			inv := strings.Replace(inviteText("100", sdp), "Max-Forwards: 70\r\n", "Max-Forwards: 70\r\nUser-Agent: friendly-scanner\r\n", 1)
			probe := strings.Replace(optionsText(""), "From: <sip:probe@", `From: "sipvicious"<sip:100@`, 1)
			got := rawFrom(t, "127.0.0.2", dst, []string{inv, probe}, 2*time.Second)
			if on && len(got) != 0 {
				t.Fatalf("scanner requests answered: %q", got)
			}
			if !on {
				// 403 to the INVITE (repeated until an ACK that never
				// comes) and 200 to the OPTIONS.
				codes := map[int]bool{}
				for _, r := range got {
					codes[statusOf(r)] = true
				}
				if !codes[403] || !codes[200] || len(codes) != 2 {
					t.Fatalf("with drop_scanners off, answers %v, want 403 and 200", codes)
				}
			}
			want := map[bool]float64{true: 2, false: 0}[on]
			if v := appMetric(t, a, `groupbridge_sip_requests_dropped_total{reason="scanner"}`); v != want {
				t.Errorf("scanner drops counted: %v, want %v", v, want)
			}
			if v := appMetric(t, a, `groupbridge_calls_rejected_total{reason="scanner"}`); v != want/2 {
				t.Errorf("scanner INVITEs counted as rejected calls: %v, want %v", v, want/2)
			}
			// A phone from the same address is answered.
			phone := strings.Replace(inv, "User-Agent: friendly-scanner", "User-Agent: Linphone/5.2", 1)
			res := rawFrom(t, "127.0.0.2", dst, []string{phone}, 2*time.Second)
			if len(res) == 0 || statusOf(res[len(res)-1]) != 403 {
				t.Errorf("a phone's INVITE from an untrusted address answered %q, want 403", res)
			}
		})
	}
}

// A call that lasts limits.max_call is hung up by the bridge, and the log
// says why.
func TestMaxCallEndsTheCall(t *testing.T) {
	t.Parallel()
	a, logs := startApp(t, testYAML("", "")+"\nlimits:\n  max_call: 2s\n")
	p := joinRoom(t, a, logs, 6100, "1234")[0]
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the call outlived max_call by 8 s")
	}
	if !p.EndedByRemote() {
		t.Error("the call ended, but not by the bridge's BYE")
	}
	logs.waitCount(t, 5*time.Second, 1, "call ended", "reason", "max-call")
	logs.waitCount(t, time.Second, 1, "call time limit reached, hanging up", "max_call", "2s")
}

// PIN guessing from withheld numbers: all such callers share one bucket
// with a higher threshold (30 failures), after which the next withheld
// call hears "Please try again later." and is hung up, while a caller
// with a number still gets in. Thirty failures in a minute are above a
// pin_failure_alarm of 20: the alarm is raised once for the bridge and
// once for the group whose number was dialled, counted in the metric and
// logged (the group named in the log only).
func TestPINGuessingWithheldNumbersAndAlarm(t *testing.T) {
	t.Parallel()
	groups := `
  - name: Circle
    number: "1001"
    member_pin: "1234"
    led_by: peer
`
	// The number budget is raised: this test is about the withheld
	// numbers' bucket and the alarm, which 30 quick failures would
	// otherwise turn into paced answers.
	a, logs := startApp(t, testYAML("", groups)+"\nlimits:\n  pin_failure_alarm: 20\n  pin_budget: 600\n  pin_budget_bridge: 100000\n")
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			p, err := softphone.Dial(ctx, softphone.Config{Server: sipAddr(t, a, "udp"), Dialed: "1001"})
			if err != nil {
				t.Errorf("anonymous call %d: %v", i, err)
				return
			}
			defer func() { _ = p.Hangup(context.Background()) }()
			_ = p.SendDigits(ctx, "9991#9992#9993#", softphone.DigitRFC4733)
			select {
			case <-p.Done():
			case <-ctx.Done():
				t.Errorf("anonymous guessing call %d not ended", i)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if v := appMetric(t, a, `groupbridge_pin_failures_total{scope="group"}`); v != 30 {
		t.Errorf("pin_failures_total{scope=group} = %v, want 30", v)
	}
	// The shared bucket is full: the next withheld call is refused at once.
	p := dial(t, a, softphone.Config{Dialed: "1001"})
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("withheld call after 30 failures was not hung up")
	}
	blocked := logs.count(t, "call not admitted", "outcome", "pin-blocked")
	if blocked < 1 {
		t.Errorf("no call refused as pin-blocked")
	}
	// A caller with a number is not in that bucket.
	ok := dial(t, a, softphone.Config{Caller: "+15556200001", Dialed: "1001"})
	enter(t, logs, ok, "1234", softphone.DigitRFC4733, 1)

	for scope, want := range map[string]float64{"bridge": 1, "group": 1} {
		if v := appMetric(t, a, `groupbridge_pin_failure_alarms_total{scope="`+scope+`"}`); v != want {
			t.Errorf("pin_failure_alarms_total{scope=%s} = %v, want %v", scope, v, want)
		}
	}
	const alarm = "PIN failure rate high: possible guessing attack"
	if n := logs.count(t, alarm, "scope", "bridge", "limit", "20", "per_minute", "21"); n != 1 {
		t.Errorf("%d bridge alarm log lines at 21 failures a minute, want 1", n)
	}
	if n := logs.count(t, alarm, "scope", "group", "group", "Circle", "per_minute", "21"); n != 1 {
		t.Errorf("%d group alarm log lines for Circle, want 1", n)
	}
	// The metric never names the group.
	rec := httptest.NewRecorder()
	a.Metrics().Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if strings.Contains(rec.Body.String(), "Circle") {
		t.Error("the group's name is in /metrics")
	}
}
