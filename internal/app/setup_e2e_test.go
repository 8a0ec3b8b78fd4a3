package app

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/icholy/digest"
)

// dialRawAuth places a call from srcIP authenticated as user (answering
// the 401), and returns the final status and, for a 200, the ACKed call.
func dialRawAuth(t *testing.T, a *App, caller, srcIP, user, password string) (int, *rawCall) {
	t.Helper()
	server, err := net.ResolveUDPAddr("udp", sipAddr(t, a, "udp"))
	if err != nil {
		t.Fatal(err)
	}
	ip := net.ParseIP(srcIP)
	sipConn, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
	if err != nil {
		t.Fatal(err)
	}
	rtpConn, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
	if err != nil {
		t.Fatal(err)
	}
	seq := rawSeqCall.Add(1)
	c := &rawCall{
		t: t, sip: sipConn, rtp: rtpConn, server: server, caller: caller, answerBye: true,
		callID:    fmt.Sprintf("rawauth%d-%d@test", time.Now().UnixNano(), seq),
		fromTag:   fmt.Sprintf("ra%d", seq),
		responses: make(chan string, 64),
	}
	t.Cleanup(c.vanish)
	c.wg.Add(1)
	go c.readSIP()
	sdp := "v=0\r\no=- 1 1 IN IP4 " + srcIP + "\r\ns=-\r\nc=IN IP4 " + srcIP + "\r\nt=0 0\r\n" +
		"m=audio " + strconv.Itoa(rtpConn.LocalAddr().(*net.UDPAddr).Port) + " RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
	c.cseq = 1
	c.send(c.request("INVITE", "application/sdp", sdp, false))
	res := c.await(1, "INVITE", 10*time.Second)
	if code := status(res); code != 401 {
		t.Fatalf("INVITE without credentials answered %d:\n%s", code, res)
	}
	chal, err := digest.ParseChallenge(headerValue(res, "WWW-Authenticate"))
	if err != nil {
		t.Fatalf("challenge: %v", err)
	}
	cred, err := digest.Digest(chal, digest.Options{Method: "INVITE", URI: "sip:groupbridge@" + server.String(),
		Username: user, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	c.cseq = 2
	inv := strings.Replace(c.request("INVITE", "application/sdp", sdp, false), "Max-Forwards:",
		"Authorization: "+cred.String()+"\r\nMax-Forwards:", 1)
	c.send(inv)
	res = c.await(2, "INVITE", 10*time.Second)
	if code := status(res); code != 200 {
		return code, nil
	}
	c.toTag = reToTag.FindStringSubmatch(res)[1]
	c.send(strings.Replace(c.ack(), "CSeq: 1 ACK", "CSeq: 2 ACK", 1))
	return 200, c
}

// TestSetupCapFreedWhenCallJoins checks limits.setup_per_source end to
// end: while an untrusted address's call is at the PIN prompt its next
// call gets 503; once the first has joined its room (the app tells sipua,
// Call.Admitted) the next is answered.
func TestSetupCapFreedWhenCallJoins(t *testing.T) {
	t.Parallel()
	yaml := testYAML("  trusted: [\"127.0.0.1/32\"]\n  users: [{name: alice, password: \"correct horse\"}]", "") +
		"\nlimits:\n  setup_per_source: 1\n"
	a, logs := startApp(t, yaml)
	code, first := dialRawAuth(t, a, "+15550007101", "127.0.0.2", "alice", "correct horse")
	if code != 200 {
		t.Fatalf("first call answered %d", code)
	}
	if code, _ := dialRawAuth(t, a, "+15550007102", "127.0.0.2", "alice", "correct horse"); code != 503 {
		t.Fatalf("a second call while the first is at the PIN prompt answered %d, want 503", code)
	}
	first.keys("1234#")
	logs.waitCount(t, 10*time.Second, 1, "call joined")
	if code, _ := dialRawAuth(t, a, "+15550007103", "127.0.0.2", "alice", "correct horse"); code != 200 {
		t.Errorf("a call after the first joined its room answered %d, want 200", code)
	}
}
