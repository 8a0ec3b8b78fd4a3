package app

import (
	"context"
	"log/slog"
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
