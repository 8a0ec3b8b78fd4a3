package app

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/tone"
	"github.com/pion/rtp"
)

// rawCall is a caller written by hand over UDP, for the faults the
// softphone is too well-behaved to commit: vanishing without a BYE
// (closing its sockets), never answering the bridge's BYE, a closed or
// never-read RTP socket. It speaks just enough SIP for one call: INVITE
// with an SDP offer (PCMU, telephone-event), ACK, INFO key presses, and,
// when told to, a 200 for the bridge's BYE.
type rawCall struct {
	t      *testing.T
	sip    *net.UDPConn
	rtp    *net.UDPConn
	server *net.UDPAddr
	media  *net.UDPAddr // the bridge's RTP address, from its SDP answer

	callID, fromTag, toTag, caller string
	cseq                           int

	answerBye bool         // answer the bridge's BYE with 200
	byes      atomic.Int32 // BYE requests received (retransmissions included)
	responses chan string  // SIP responses received, in order

	sendMu  sync.Mutex
	sending chan struct{} // closed to stop the RTP sender; nil when not sending
	wg      sync.WaitGroup
	closed  atomic.Bool
}

// rawSeqCall makes Call-IDs and tags unique across parallel tests.
var rawSeqCall atomic.Int64

var (
	reToTag   = regexp.MustCompile(`(?mi)^To:.*;tag=([^;>\s]+)`)
	reMPort   = regexp.MustCompile(`(?m)^m=audio (\d+) `)
	reConnIP4 = regexp.MustCompile(`(?m)^c=IN IP4 (\S+)`)
	reCSeq    = regexp.MustCompile(`(?mi)^CSeq:\s*(\d+)\s+(\w+)`)
	reStatus  = regexp.MustCompile(`^SIP/2.0 (\d{3})`)
)

// dialRaw places a call from caller to the app's UDP listener, with RTP on
// rtpConn (nil: a new socket on 127.0.0.1), and returns once the call is
// answered and ACKed. The call is torn down (sockets closed, no BYE) at
// the end of the test.
func dialRaw(t *testing.T, a *App, caller string, rtpConn *net.UDPConn, answerBye bool) *rawCall {
	t.Helper()
	server, err := net.ResolveUDPAddr("udp", sipAddr(t, a, "udp"))
	if err != nil {
		t.Fatal(err)
	}
	sipConn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if rtpConn == nil {
		if rtpConn, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
			t.Fatal(err)
		}
	}
	seq := rawSeqCall.Add(1)
	c := &rawCall{
		t: t, sip: sipConn, rtp: rtpConn, server: server, caller: caller, answerBye: answerBye,
		callID:    fmt.Sprintf("raw%d-%d@test", time.Now().UnixNano(), seq),
		fromTag:   fmt.Sprintf("rf%d", seq),
		responses: make(chan string, 64),
	}
	t.Cleanup(c.vanish)
	c.wg.Add(1)
	go c.readSIP()

	port := rtpConn.LocalAddr().(*net.UDPAddr).Port
	sdp := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=audio " + strconv.Itoa(port) + " RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n" +
		"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n"
	c.cseq = 1
	c.send(c.request("INVITE", "application/sdp", sdp, false))
	res := c.await(1, "INVITE", 10*time.Second)
	if code := status(res); code != 200 {
		t.Fatalf("raw INVITE answered %d:\n%s", code, res)
	}
	m := reToTag.FindStringSubmatch(res)
	mp := reMPort.FindStringSubmatch(res)
	mc := reConnIP4.FindStringSubmatch(res)
	if m == nil || mp == nil || mc == nil {
		t.Fatalf("raw INVITE: 200 OK without a To tag or SDP:\n%s", res)
	}
	c.toTag = m[1]
	if c.media, err = net.ResolveUDPAddr("udp", net.JoinHostPort(mc[1], mp[1])); err != nil {
		t.Fatal(err)
	}
	c.send(c.ack())
	return c
}

// request builds an in-dialog (or, for the INVITE, dialog-creating)
// request with the next CSeq already in c.cseq.
func (c *rawCall) request(method, contentType, body string, withToTag bool) string {
	local := c.sip.LocalAddr().String()
	to := "<sip:groupbridge@" + c.server.String() + ">"
	if withToTag {
		to += ";tag=" + c.toTag
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s sip:groupbridge@%s SIP/2.0\r\n", method, c.server)
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s;branch=z9hG4bK-%s-%d-%s;rport\r\n", local, c.fromTag, c.cseq, strings.ToLower(method))
	fmt.Fprintf(&b, "From: <sip:%s@127.0.0.1>;tag=%s\r\n", c.caller, c.fromTag)
	fmt.Fprintf(&b, "To: %s\r\n", to)
	fmt.Fprintf(&b, "Call-ID: %s\r\n", c.callID)
	fmt.Fprintf(&b, "CSeq: %d %s\r\n", c.cseq, method)
	fmt.Fprintf(&b, "Contact: <sip:%s@%s>\r\n", c.caller, local)
	b.WriteString("Max-Forwards: 70\r\n")
	if contentType != "" {
		fmt.Fprintf(&b, "Content-Type: %s\r\n", contentType)
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	return b.String()
}

// ack is the ACK for the INVITE's 2xx (a new transaction, CSeq of the
// INVITE).
func (c *rawCall) ack() string {
	local := c.sip.LocalAddr().String()
	return fmt.Sprintf("ACK sip:groupbridge@%s SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP %s;branch=z9hG4bK-%s-ack;rport\r\n"+
		"From: <sip:%s@127.0.0.1>;tag=%s\r\nTo: <sip:groupbridge@%s>;tag=%s\r\n"+
		"Call-ID: %s\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
		c.server, local, c.fromTag, c.caller, c.fromTag, c.server, c.toTag, c.callID)
}

func (c *rawCall) send(msg string) {
	if _, err := c.sip.WriteToUDP([]byte(msg), c.server); err != nil && !c.closed.Load() {
		c.t.Errorf("raw call: send: %v", err)
	}
}

// await returns the first final response to the request with CSeq cseq.
func (c *rawCall) await(cseq int, method string, d time.Duration) string {
	c.t.Helper()
	timeout := time.After(d)
	for {
		select {
		case res := <-c.responses:
			m := reCSeq.FindStringSubmatch(res)
			if m == nil || m[1] != strconv.Itoa(cseq) || !strings.EqualFold(m[2], method) || status(res) < 200 {
				continue
			}
			return res
		case <-timeout:
			c.t.Fatalf("raw call: no final response to %s (CSeq %d) in %v", method, cseq, d)
			return ""
		}
	}
}

// status is a response's status code, or 0 for a request.
func status(msg string) int {
	m := reStatus.FindStringSubmatch(msg)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// readSIP takes every message until the socket closes: responses go to
// c.responses, the bridge's BYEs are counted and answered when answerBye.
func (c *rawCall) readSIP() {
	defer c.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, from, err := c.sip.ReadFromUDP(buf)
		if err != nil {
			return
		}
		msg := string(buf[:n])
		if status(msg) != 0 {
			select {
			case c.responses <- msg:
			default:
			}
			continue
		}
		if strings.HasPrefix(msg, "BYE ") {
			c.byes.Add(1)
			if c.answerBye {
				_, _ = c.sip.WriteToUDP([]byte(okFor(msg)), from)
			}
		}
	}
}

// okFor is a 200 OK for a request: its Via, From, To, Call-ID and CSeq
// copied.
func okFor(req string) string {
	var b strings.Builder
	b.WriteString("SIP/2.0 200 OK\r\n")
	head, _, _ := strings.Cut(req, "\r\n\r\n")
	for _, line := range strings.Split(head, "\r\n")[1:] {
		name, _, _ := strings.Cut(line, ":")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "via", "v", "from", "f", "to", "t", "call-id", "i", "cseq":
			b.WriteString(line + "\r\n")
		}
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.String()
}

// keys sends each key as a SIP INFO (application/dtmf-relay) and waits for
// its 200.
func (c *rawCall) keys(keys string) {
	c.t.Helper()
	for _, k := range keys {
		c.cseq++
		c.send(c.request("INFO", "application/dtmf-relay", "Signal="+string(k)+"\r\nDuration=100\r\n", true))
		if res := c.await(c.cseq, "INFO", 5*time.Second); status(res) != 200 {
			c.t.Fatalf("raw call: INFO %c answered:\n%s", k, res)
		}
	}
}

// sendTone starts sending a steady tone (0 Hz: silence) as PCMU at 20 ms
// intervals to the bridge's RTP address, until stopRTP or vanish.
func (c *rawCall) sendTone(freq float64) {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if c.sending != nil {
		return
	}
	stop := make(chan struct{})
	c.sending = stop
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		var sine *tone.Sine
		if freq > 0 {
			sine = tone.NewSine(freq, -20)
		}
		var frame [160]int16
		var payload [160]byte
		h := rtp.Header{Version: 2, PayloadType: 0, SSRC: uint32(rawSeqCall.Add(1)) | 0x1000}
		next := time.Now()
		// Bounded: a test lasts well under a minute.
		for i := 0; i < 3000; i++ {
			select {
			case <-stop:
				return
			case <-time.After(time.Until(next)):
			}
			next = next.Add(20 * time.Millisecond)
			if sine != nil {
				sine.Read(frame[:])
			}
			g711.PCMU.Encode(payload[:], frame[:])
			h.SequenceNumber++
			h.Timestamp += 160
			hdr, err := h.Marshal()
			if err != nil {
				return
			}
			if _, err := c.rtp.WriteToUDP(append(hdr, payload[:]...), c.media); err != nil {
				return
			}
		}
	}()
}

// stopRTP stops the RTP sender.
func (c *rawCall) stopRTP() {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if c.sending != nil {
		close(c.sending)
		c.sending = nil
	}
}

// vanish is the caller gone without a word: no more RTP, no BYE, both
// sockets closed (the bridge's packets now meet ICMP port unreachable).
func (c *rawCall) vanish() {
	c.stopRTP()
	if c.closed.CompareAndSwap(false, true) {
		_ = c.sip.Close()
		_ = c.rtp.Close()
	}
	c.wg.Wait()
}
