package app

import (
	"strings"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/softphone"
)

// Abuse scenarios for sipp (testdata/sipp): after each the bridge holds no
// call and a normal caller still joins a room.
func TestSippAbuse(t *testing.T) {
	sippPath(t)
	tests := []struct {
		scenario  string
		transport string // sipp -t: u1 (UDP) or t1 (TCP)
		rejected  int    // "call rejected" reason=sdp records the scenario causes
	}{
		{"malformed_sdp.xml", "u1", 4},
		{"huge_headers.xml", "t1", 0},
		{"bad_cseq.xml", "u1", 0},
		{"bye_unknown.xml", "u1", 0},
	}
	for i, tc := range tests {
		t.Run(tc.scenario, func(t *testing.T) {
			t.Parallel()
			a, logs := startApp(t, testYAML("", ""))
			target := sipAddr(t, a, "udp")
			if tc.transport == "t1" {
				target = sipAddr(t, a, "tcp")
			}
			runSipp(t, tc.scenario, target, "-m", "1", "-t", tc.transport)
			if n := logs.count(t, "call rejected", "reason", "sdp"); n < tc.rejected {
				t.Errorf("%d offers refused as unusable, want %d", n, tc.rejected)
			}
			deadline := time.Now().Add(5 * time.Second)
			for a.sip.ActiveCalls() != 0 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if n := a.sip.ActiveCalls(); n != 0 {
				t.Fatalf("%d calls left", n)
			}
			p := dial(t, a, softphone.Config{Caller: "+1555000700" + string(rune('0'+i))})
			enter(t, logs, p, "1234", softphone.DigitRFC4733, logs.count(t, "call joined")+1)
		})
	}
}

// A SIP datagram near the UDP limit (a 60 KB header) is beyond sipgo's
// 32 KB read buffer: it arrives cut short, fails to parse and is dropped
// without an answer; the bridge goes on serving.
func TestOversizedUDPDatagramDropped(t *testing.T) {
	t.Parallel()
	a, logs := startApp(t, testYAML("", ""))
	sdp := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
	msg := strings.Replace(inviteText("+15550007100", sdp), "Max-Forwards: 70\r\n",
		"Max-Forwards: 70\r\nX-Junk: "+strings.Repeat("h", 60000)+"\r\n", 1)
	if codes := rawSIP(t, sipAddr(t, a, "udp"), msg, 3); len(codes) != 0 {
		t.Fatalf("a %d-byte datagram was answered %v", len(msg), codes)
	}
	if n := a.sip.ActiveCalls(); n != 0 {
		t.Fatalf("%d calls from a truncated datagram", n)
	}
	p := dial(t, a, softphone.Config{Caller: "+15550007101"})
	enter(t, logs, p, "1234", softphone.DigitRFC4733, 1)
}
