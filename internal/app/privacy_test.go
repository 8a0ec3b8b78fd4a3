package app

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/config"
	"github.com/groupbridge/groupbridge/internal/softphone"
)

// The privacy rule, checked on everything the process logs at debug level:
// a call with a known PIN and caller number, plus malformed SIP that carries
// them, and neither may appear anywhere in the log.
func TestPrivacyNoPINOrCallerNumberInLogs(t *testing.T) {
	t.Parallel()
	const (
		caller    = "+15557654321"
		callerTxt = "5557654321" // with or without the +
		pin       = "73915"
		facPIN    = "8462917"
	)
	groups := `
  - name: Private circle
    member_pin: "` + pin + `"
    facilitator_pin: "` + facPIN + `"
`
	cfg, err := config.Parse([]byte(testYAML("", groups)))
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	a, err := New(cfg, Options{LogOutput: logs, LogLevel: slog.LevelDebug})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.Shutdown(ctx)
	}()
	dst := sipAddr(t, a, "udp")

	// A real call: wrong PIN once (the facilitator PIN typed wrong), then the
	// member PIN by RFC 4733 and again by INFO on a second call.
	p := dial(t, a, softphone.Config{Caller: caller})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.SendDigits(ctx, facPIN+"9#", softphone.DigitRFC4733); err != nil {
		t.Fatal(err)
	}
	enter(t, logs, p, pin, softphone.DigitRFC4733, 1)
	q := dial(t, a, softphone.Config{Caller: caller, TelephoneEvent: -1})
	enter(t, logs, q, pin, softphone.DigitInfoRelay, 2)

	// Malformed and unexpected SIP carrying the number and the PIN.
	bad := []string{
		// Broken header line and a bad CSeq.
		"INVITE sip:" + pin + "@{dst} SIP/2.0\r\nVia: SIP/2.0/UDP {src};branch=z9hG4bK{rand}\r\nFrom: <sip:" + caller + "@x>;tag=1\r\nTo: <sip:" + pin + "@{dst}>\r\nCall-ID: {rand}\r\nCSeq: abc INVITE\r\nThis is not a header " + caller + "\r\nContent-Length: 0\r\n\r\n",
		// Garbage start line.
		"HELLO " + caller + " " + pin + "\r\n\r\n",
		// INFO outside any dialog with the PIN in the body.
		"INFO sip:groupbridge@{dst} SIP/2.0\r\nVia: SIP/2.0/UDP {src};branch=z9hG4bK{rand}\r\nFrom: <sip:" + caller + "@x>;tag=2\r\nTo: <sip:gb@{dst}>;tag=nope\r\nCall-ID: {rand}\r\nCSeq: 2 INFO\r\nContent-Type: application/dtmf-relay\r\nContent-Length: 22\r\n\r\nSignal=" + pin + "\r\nDuration=1\r\n",
		// BYE for an unknown dialog.
		"BYE sip:groupbridge@{dst} SIP/2.0\r\nVia: SIP/2.0/UDP {src};branch=z9hG4bK{rand}\r\nFrom: <sip:" + caller + "@x>;tag=3\r\nTo: <sip:gb@{dst}>;tag=gone\r\nCall-ID: {rand}\r\nCSeq: 3 BYE\r\nContent-Length: 0\r\n\r\n",
		// Content-Length larger than the body.
		"INVITE sip:groupbridge@{dst} SIP/2.0\r\nVia: SIP/2.0/UDP {src};branch=z9hG4bK{rand}\r\nFrom: <sip:" + caller + "@x>;tag=4\r\nTo: <sip:gb@{dst}>\r\nCall-ID: {rand}\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: 900\r\n\r\nv=0\r\n",
		// SDP that is not SDP, with the number in it.
		inviteText(caller, "v=0\r\no=- "+caller+" "+pin+"\r\nm=audio x RTP/AVP zz\r\n"),
		// A huge header.
		"OPTIONS sip:groupbridge@{dst} SIP/2.0\r\nVia: SIP/2.0/UDP {src};branch=z9hG4bK{rand}\r\nFrom: <sip:" + caller + "@x>;tag=5\r\nTo: <sip:gb@{dst}>\r\nCall-ID: {rand}\r\nCSeq: 1 OPTIONS\r\nX-Junk: " + strings.Repeat(caller+pin, 500) + "\r\nContent-Length: 0\r\n\r\n",
	}
	for _, m := range bad {
		rawSIP(t, dst, m, 1)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	_ = p.Hangup(ctx2)
	_ = q.Hangup(ctx2)
	logs.waitCount(t, 5*time.Second, 2, "call ended")

	out := logs.String()
	if !strings.Contains(out, `"call joined"`) {
		t.Fatalf("the log did not even record the joins:\n%s", out)
	}
	for _, secret := range []string{callerTxt, pin, facPIN} {
		if strings.Contains(out, secret) {
			for _, line := range strings.Split(out, "\n") {
				if strings.Contains(line, secret) {
					t.Errorf("log line contains %q: %s", secret, line)
				}
			}
		}
	}
}

// Requests outside any dialog get 481; OPTIONS gets 200.
func TestOutOfDialogRequests(t *testing.T) {
	t.Parallel()
	a, _ := startApp(t, testYAML("", ""))
	dst := sipAddr(t, a, "udp")
	req := func(method, toTag, extra string) string {
		return method + " sip:groupbridge@{dst} SIP/2.0\r\nVia: SIP/2.0/UDP {src};branch=z9hG4bK{rand}\r\nFrom: <sip:x@{srcip}>;tag=a{rand}\r\nTo: <sip:gb@{dst}>" + toTag + "\r\nCall-ID: {rand}\r\nCSeq: 5 " + method + "\r\nMax-Forwards: 70\r\n" + extra + "Content-Length: 0\r\n\r\n"
	}
	tests := []struct {
		name string
		msg  string
		want int
	}{
		{"BYE unknown dialog", req("BYE", ";tag=zz", ""), 481},
		{"INFO unknown dialog", req("INFO", ";tag=zz", ""), 481},
		{"re-INVITE unknown dialog", req("INVITE", ";tag=zz", ""), 481},
		{"UPDATE unknown dialog", req("UPDATE", ";tag=zz", ""), 481},
		{"OPTIONS", req("OPTIONS", "", ""), 200},
		{"MESSAGE", req("MESSAGE", "", ""), 405},
	}
	for _, tc := range tests {
		codes := rawSIP(t, dst, tc.msg, 3)
		if len(codes) == 0 || codes[len(codes)-1] != tc.want {
			t.Errorf("%s: responses %v, want final %d", tc.name, codes, tc.want)
		}
	}
}

// Under the default log.callers (tag) nothing the bridge shows of a whole
// call (every log line at debug level, the admin API's rooms while the
// caller is in one, the metrics during and after) holds three consecutive
// digits of the caller's number: not the masked "+1•••••4567" either,
// which with the group and the time was a partial attendance list. The
// test number is chosen so that none of its three-digit runs appears in
// what a baseline call from another number showed (ports, call ids and
// the like); timestamps, random call ids and metric values are left out,
// being the clock's, the bridge's and the measurements' own digits.
func TestPrivacyNoDigitsOfCallerInWholeCall(t *testing.T) {
	t.Parallel()
	const pin = "7391"
	groups := `
  - name: Private circle
    member_pin: "` + pin + `"
    led_by: peer
`
	a, logs := startAppWith(t, testYAML("", groups), Options{LogLevel: slog.LevelDebug})
	h := a.AdminHandler("s3cret-token")
	whole := func(number string, joins int) string {
		mark := len(logs.String())
		p := dial(t, a, softphone.Config{Caller: number})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := p.SendDigits(ctx, "0000#", softphone.DigitRFC4733); err != nil {
			t.Fatal(err)
		}
		enter(t, logs, p, pin, softphone.DigitRFC4733, joins)
		p.Media().SendTone(440, -20)
		time.Sleep(time.Second)
		var shown strings.Builder
		for _, path := range []string{"/api/rooms", "/metrics"} {
			code, body := get(t, h, "GET", path, "s3cret-token")
			if code != 200 {
				t.Fatalf("GET %s: %d %s", path, code, body)
			}
			if path == "/metrics" {
				body = metricSeries(body)
			}
			shown.WriteString(body + "\n")
		}
		if err := p.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		logs.waitCount(t, 5*time.Second, joins, "call ended")
		_, body := get(t, h, "GET", "/metrics", "s3cret-token")
		shown.WriteString(metricSeries(body))
		return ownDigits(t, logs.String()[mark:]+shown.String())
	}
	baseline := whole("+15557000000", 1)
	number := numberAvoiding(t, baseline)
	out := whole(number, 2)
	if !strings.Contains(out, `"call joined"`) || !strings.Contains(out, `"caller":"`) {
		t.Fatalf("the call left no join with a caller in the log:\n%s", out)
	}
	digits := strings.TrimPrefix(number, "+")
	for i := 0; i+3 <= len(digits); i++ {
		run := digits[i : i+3]
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, run) {
				t.Errorf("%q of the caller's number %s is shown: %s", run, number, line)
			}
		}
	}
}

// metricSeries is a scrape without its sample values: the series' names
// and labels are what could carry a number; the values are measurements
// (bytes in use, packet counts) whose digits are the process's own.
func metricSeries(scrape string) string {
	var b strings.Builder
	for _, line := range strings.Split(scrape, "\n") {
		if i := strings.LastIndexByte(line, ' '); i > 0 && !strings.HasPrefix(line, "#") {
			line = line[:i]
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

var (
	timestamps = regexp.MustCompile(`\d{4}-\d\d-\d\dT[0-9:.]+(Z|[+-]\d\d:\d\d)`)
	callIDs    = regexp.MustCompile(`"call":"([^"]*)"`)
	randomID   = regexp.MustCompile(`^[0-9a-f]{12}$`)
)

// ownDigits removes from shown the digits that are the bridge's own:
// timestamps, and the random call ids (after checking that they are).
func ownDigits(t *testing.T, shown string) string {
	t.Helper()
	for _, m := range callIDs.FindAllStringSubmatch(shown, -1) {
		if !randomID.MatchString(m[1]) {
			t.Fatalf("call id %q is not 12 random hex digits", m[1])
		}
		shown = strings.ReplaceAll(shown, m[1], "<call>")
	}
	return timestamps.ReplaceAllString(shown, "<time>")
}

// numberAvoiding returns a caller number none of whose three-digit runs
// occurs in shown.
func numberAvoiding(t *testing.T, shown string) string {
	t.Helper()
	r := rand.New(rand.NewPCG(7, 11))
	for range 100_000 {
		d := []byte("1")
		for len(d) < 11 {
			d = append(d, byte('0'+r.IntN(10)))
		}
		ok := true
		for i := 0; i+3 <= len(d) && ok; i++ {
			ok = !strings.Contains(shown, string(d[i:i+3]))
		}
		if ok {
			return "+" + string(d)
		}
	}
	t.Fatalf("no number avoids the baseline's digit runs:\n%s", shown)
	return ""
}
