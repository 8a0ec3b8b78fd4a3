package app

import (
	"encoding/binary"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/softphone"
	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/tone"
)

// rtpPacket builds an RTP datagram by hand, so that it can be wrong in
// every way pion would refuse to build: b0 is the first octet (version,
// padding, extension, CSRC count), then the payload type, sequence number,
// timestamp, SSRC and whatever rest follows the 12-byte header.
func rtpPacket(b0, pt byte, seq uint16, ts, ssrc uint32, rest []byte) []byte {
	b := []byte{b0, pt & 0x7f}
	b = binary.BigEndian.AppendUint16(b, seq)
	b = binary.BigEndian.AppendUint32(b, ts)
	b = binary.BigEndian.AppendUint32(b, ssrc)
	return append(b, rest...)
}

// pace sleeps until frame i+1 of a 20 ms stream begun at start is due, so
// that a loaded machine sends late rather than slow.
func pace(start time.Time, i int) {
	time.Sleep(time.Until(start.Add(time.Duration(i+1) * 20 * time.Millisecond)))
}

// answerPort reads the audio port of the SDP in a response.
var answerPort = regexp.MustCompile(`(?m)^m=audio ([0-9]+) `)

// RTP that is not the caller's audio is dropped and counted, never mixed:
// packets from the caller's own address that are malformed (wrong version,
// shorter than a header, CSRC list, padding or extension beyond the
// datagram, oversized payload, a datagram near 64 KB) or carry an unknown
// payload type, and well-formed audio from a stranger. Every one of them
// carries a loud 1 kHz tone; the room hears none of it, and hears the same
// tone at once when the caller sends it properly.
func TestE2EBadRTPDroppedCountedNeverMixed(t *testing.T) {
	t.Parallel()
	a, logs := startApp(t, testYAML("", ""))
	h := a.AdminHandler("rtp-abuse-token")
	listener := dial(t, a, softphone.Config{Caller: "+15550006001"})
	enter(t, logs, listener, "1234", softphone.DigitRFC4733, 1)
	listener.Media().SendSilence()

	// The talker is a hand-driven call whose RTP socket the test owns.
	media, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer media.Close()
	d := newRawDialog(t, sipAddr(t, a, "udp"))
	d.cseq++
	to := "To: <sip:groupbridge@" + d.dst.String() + ">"
	d.send("INVITE", to, sdpFor(media.LocalAddr().(*net.UDPAddr).Port, "sendrecv"), d.cseq)
	bridgePort := 0
	buf := make([]byte, 65536)
	for deadline := time.Now().Add(5 * time.Second); bridgePort == 0 && time.Now().Before(deadline); {
		_ = d.conn.SetReadDeadline(deadline)
		n, _, err := d.conn.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("no answer to INVITE: %v", err)
		}
		msg := string(buf[:n])
		if !strings.HasPrefix(msg, "SIP/2.0 200") {
			continue
		}
		for _, line := range strings.Split(msg, "\r\n") {
			if strings.HasPrefix(line, "To:") {
				d.toHdr = line
			}
		}
		m := answerPort.FindStringSubmatch(msg)
		if m == nil {
			t.Fatalf("200 without an audio port:\n%s", msg)
		}
		bridgePort, _ = strconv.Atoi(m[1])
	}
	d.send("ACK", d.toHdr, "", d.cseq)
	for _, digit := range []byte("1234#") {
		d.info(digit)
		time.Sleep(150 * time.Millisecond)
	}
	logs.waitCount(t, 10*time.Second, 2, "call joined")
	bridge := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: bridgePort}
	stranger, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()

	// A 1 kHz tone at -6 dBFS, 20 ms of G.711 u-law per packet.
	sine := tone.NewSine(1000, -6)
	var frame [160]int16
	loud := func() []byte {
		sine.Read(frame[:])
		p := make([]byte, 160)
		g711.PCMU.Encode(p, frame[:])
		return p
	}
	silence := make([]byte, 160)
	for i := range silence {
		silence[i] = 0xff
	}
	// The caller's audio keeps one timeline (one sequence number and 160
	// samples per 20 ms); the packets to be dropped reuse its current
	// timestamp and number themselves apart, so that the jitter buffer
	// sees a clean stream whatever it is fed.
	const ssrc = 0x5eed
	var seq, junkSeq uint16 = 0, 30000
	var ts uint32
	next := func() (uint16, uint32) { seq++; ts += 160; return seq, ts }
	junk := func() (uint16, uint32) { junkSeq++; return junkSeq, ts }
	// bad builds one malformed datagram of kind k, carrying a loud payload.
	kinds := []string{"version 1", "version 0", "11 bytes", "CSRC beyond", "padding beyond", "extension beyond", "9000-byte payload", "64 KB datagram"}
	bad := func(k int) []byte {
		s, tt := junk()
		p := loud()
		switch kinds[k] {
		case "version 1":
			return rtpPacket(0x40, 0, s, tt, ssrc, p)
		case "version 0":
			return rtpPacket(0x00, 0, s, tt, ssrc, p)
		case "11 bytes":
			return rtpPacket(0x80, 0, s, tt, ssrc, nil)[:11]
		case "CSRC beyond":
			return rtpPacket(0x8f, 0, s, tt, ssrc, p[:20]) // 15 CSRCs need 60 bytes
		case "padding beyond":
			q := append([]byte(nil), p...)
			q[len(q)-1] = 255
			return rtpPacket(0xa0, 0, s, tt, ssrc, q)
		case "extension beyond":
			return rtpPacket(0x90, 0, s, tt, ssrc, append([]byte{0xbe, 0xde, 0x01, 0x00}, p...)) // 256 words
		case "9000-byte payload":
			big := make([]byte, 0, 9000)
			for len(big) < 9000 {
				big = append(big, loud()...)
			}
			return rtpPacket(0x80, 0, s, tt, ssrc, big[:9000])
		default: // near the UDP limit: beyond the receive buffer, truncated by the kernel
			big := make([]byte, 0, 65000)
			for len(big) < 65000 {
				big = append(big, p...)
			}
			return rtpPacket(0x80, 0, s, tt, ssrc, big[:65000])
		}
	}
	send := func(c *net.UDPConn, b []byte) {
		if _, err := c.WriteToUDP(b, bridge); err != nil {
			t.Fatalf("send %d bytes: %v", len(b), err)
		}
	}
	scrape := func() string {
		code, body := get(t, h, "GET", "/metrics", "rtp-abuse-token")
		if code != 200 {
			t.Fatalf("/metrics: %d", code)
		}
		return body
	}
	dropped := func(s, reason string) float64 {
		return metricValue(t, s, `groupbridge_rtp_dropped_total{reason="`+reason+`"}`)
	}
	before := scrape()

	// 150 frames (3 s): each 20 ms the caller's silence, plus one bad
	// datagram of each kind in turn, one with the unknown payload type 96
	// and one well-formed tone frame from the stranger.
	const frames = 150
	start := time.Now()
	var strangerSeq uint16
	for i := 0; i < frames; i++ {
		s, tt := next()
		send(media, rtpPacket(0x80, 0, s, tt, ssrc, silence))
		send(media, bad(i%len(kinds)))
		s, tt = junk()
		send(media, rtpPacket(0x80, 96, s, tt, ssrc, loud()))
		strangerSeq++
		send(stranger, rtpPacket(0x80, 0, strangerSeq, uint32(strangerSeq)*160, 0xbad, loud()))
		pace(start, i)
	}
	l := levels(listener, start, 2500*time.Millisecond, 1000)[0]
	t.Logf("1 kHz in the room while the bad packets came: %.1f dBFS", l)
	if l > -50 {
		t.Errorf("the room heard the dropped packets' 1 kHz at %.1f dBFS", l)
	}
	after := scrape()
	for _, c := range []struct {
		reason string
		min    float64
	}{
		{"malformed", frames}, // every bad datagram
		{"unknown-payload-type", frames},
		{"foreign-source", frames - 5}, // the stranger while the caller talks
	} {
		if got := dropped(after, c.reason) - dropped(before, c.reason); got < c.min {
			t.Errorf("rtp_dropped_total{reason=%q} rose by %v, want at least %v", c.reason, got, c.min)
		}
	}

	// Control: the same tone sent properly is heard at once.
	start = time.Now()
	for i := 0; i < 100; i++ {
		s, tt := next()
		send(media, rtpPacket(0x80, 0, s, tt, ssrc, loud()))
		pace(start, i)
	}
	// Let the jitter buffer play out what it holds before measuring.
	time.Sleep(400 * time.Millisecond)
	l = levels(listener, start, time.Second, 1000)[0]
	t.Logf("1 kHz in the room when sent properly: %.1f dBFS", l)
	if l < -30 {
		t.Fatalf("the caller's proper 1 kHz is heard at %.1f dBFS only: the check above cannot tell", l)
	}
}
