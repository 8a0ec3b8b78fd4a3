package app

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawDialog is a minimal UAC over one UDP socket, enough to drive the
// bridge through INVITE, ACK and a re-INVITE with hand-written messages.
type rawDialog struct {
	t       *testing.T
	conn    *net.UDPConn
	dst     *net.UDPAddr
	callID  string
	fromTag string
	toHdr   string // To header of the 2xx, with the bridge's tag
	answer  string // the latest 2xx to an INVITE
	cseq    int
}

func newRawDialog(t *testing.T, dst string) *rawDialog {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	to, err := net.ResolveUDPAddr("udp", dst)
	if err != nil {
		t.Fatal(err)
	}
	n := time.Now().UnixNano()
	return &rawDialog{t: t, conn: c, dst: to, callID: fmt.Sprintf("raw%d@test", n), fromTag: fmt.Sprintf("f%d", n)}
}

func (d *rawDialog) send(method, to, body string, cseq int) {
	d.t.Helper()
	src := d.conn.LocalAddr().String()
	ct := ""
	if body != "" {
		ct = "Content-Type: application/sdp\r\n"
	}
	msg := fmt.Sprintf("%s sip:groupbridge@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%d\r\n"+
		"From: <sip:+15550000099@127.0.0.1>;tag=%s\r\n%s\r\nCall-ID: %s\r\nCSeq: %d %s\r\n"+
		"Contact: <sip:raw@%s>\r\nMax-Forwards: 70\r\n%sContent-Length: %d\r\n\r\n%s",
		method, d.dst, src, time.Now().UnixNano(), d.fromTag, to, d.callID, cseq, method, src, ct, len(body), body)
	if _, err := d.conn.WriteToUDP([]byte(msg), d.dst); err != nil {
		d.t.Fatal(err)
	}
}

// invite sends an INVITE (or re-INVITE once toHdr is known) and ACKs its 2xx.
func (d *rawDialog) invite(sdp string) {
	d.t.Helper()
	d.cseq++
	to := d.toHdr
	if to == "" {
		to = "To: <sip:groupbridge@" + d.dst.String() + ">"
	}
	d.send("INVITE", to, sdp, d.cseq)
	buf := make([]byte, 65536)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		_ = d.conn.SetReadDeadline(deadline)
		n, _, err := d.conn.ReadFromUDP(buf)
		if err != nil {
			d.t.Fatalf("no final response to INVITE: %v", err)
		}
		msg := string(buf[:n])
		if !strings.HasPrefix(msg, "SIP/2.0 ") {
			continue // a request from the bridge: not expected here
		}
		code, _ := strconv.Atoi(strings.Fields(msg)[1])
		if code < 200 {
			continue
		}
		if code != 200 {
			d.t.Fatalf("INVITE answered %d", code)
		}
		d.answer = msg
		for _, line := range strings.Split(msg, "\r\n") {
			if strings.HasPrefix(line, "To:") {
				d.toHdr = line
			}
		}
		d.send("ACK", d.toHdr, "", d.cseq)
		return
	}
	d.t.Fatal("no 200 for INVITE")
}

func sdpFor(port int, dir string) string {
	return fmt.Sprintf("v=0\r\no=- 1 %d IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\na=%s\r\n",
		time.Now().UnixNano()%1000000, port, dir)
}

// rtpArrives reports whether conn receives an RTP packet within d.
func rtpArrives(conn *net.UDPConn, d time.Duration) bool {
	buf := make([]byte, 2048)
	_ = conn.SetReadDeadline(time.Now().Add(d))
	for {
		n, _, err := conn.ReadFromUDP(buf)
		if err != nil {
			return false
		}
		if n >= 12 && buf[0]>>6 == 2 {
			return true
		}
	}
}

func drain(conn *net.UDPConn) {
	buf := make([]byte, 2048)
	for {
		_ = conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, _, err := conn.ReadFromUDP(buf); err != nil {
			return
		}
	}
}

// A re-INVITE that moves the media to a new port is followed: the bridge's
// audio goes to the new port and no longer to the old one.
func TestReinviteNewPortIsFollowed(t *testing.T) {
	t.Parallel()
	a, _ := startApp(t, testYAML("", ""))
	oldRTP, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer oldRTP.Close()
	newRTP, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer newRTP.Close()

	d := newRawDialog(t, sipAddr(t, a, "udp"))
	d.invite(sdpFor(oldRTP.LocalAddr().(*net.UDPAddr).Port, "sendrecv"))
	if !rtpArrives(oldRTP, 2*time.Second) {
		t.Fatal("no RTP (welcome prompt) at the first port")
	}
	d.invite(sdpFor(newRTP.LocalAddr().(*net.UDPAddr).Port, "sendrecv"))
	time.Sleep(100 * time.Millisecond)
	drain(oldRTP)
	if !rtpArrives(newRTP, 2*time.Second) {
		t.Fatal("no RTP at the port of the re-INVITE")
	}
	if rtpArrives(oldRTP, 300*time.Millisecond) {
		t.Fatal("RTP still sent to the old port after the re-INVITE")
	}
	// inactive: the bridge stops sending altogether.
	d.invite(sdpFor(newRTP.LocalAddr().(*net.UDPAddr).Port, "inactive"))
	time.Sleep(100 * time.Millisecond)
	drain(newRTP)
	if rtpArrives(newRTP, 300*time.Millisecond) {
		t.Fatal("RTP sent to a caller who set the stream inactive")
	}
}

// info sends an in-dialog INFO with a dtmf-relay body.
func (d *rawDialog) info(digit byte) {
	d.t.Helper()
	d.cseq++
	src := d.conn.LocalAddr().String()
	body := "Signal=" + string(digit) + "\r\nDuration=100\r\n"
	msg := fmt.Sprintf("INFO sip:groupbridge@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%d\r\n"+
		"From: <sip:+15550000099@127.0.0.1>;tag=%s\r\n%s\r\nCall-ID: %s\r\nCSeq: %d INFO\r\n"+
		"Max-Forwards: 70\r\nContent-Type: application/dtmf-relay\r\nContent-Length: %d\r\n\r\n%s",
		d.dst, src, time.Now().UnixNano(), d.fromTag, d.toHdr, d.callID, d.cseq, len(body), body)
	if _, err := d.conn.WriteToUDP([]byte(msg), d.dst); err != nil {
		d.t.Fatal(err)
	}
}

// The bridge's own BYE leaves from its listening socket, so that a PBX
// that only talks to that address (and NAT bindings) get it.
func TestByeLeavesFromListeningSocket(t *testing.T) {
	t.Parallel()
	a, _ := startApp(t, testYAML("", ""))
	listen := sipAddr(t, a, "udp")
	rtpSock, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rtpSock.Close()
	d := newRawDialog(t, listen)
	d.invite(sdpFor(rtpSock.LocalAddr().(*net.UDPAddr).Port, "sendrecv"))
	for _, k := range []byte("1#2#3#") {
		d.info(k)
		time.Sleep(50 * time.Millisecond)
	}
	buf := make([]byte, 65536)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		_ = d.conn.SetReadDeadline(deadline)
		n, from, err := d.conn.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("no BYE after three wrong PINs: %v", err)
		}
		if !strings.HasPrefix(string(buf[:n]), "BYE ") {
			continue
		}
		if from.String() != listen {
			t.Fatalf("BYE came from %s, want the listening socket %s", from, listen)
		}
		return
	}
	t.Fatal("no BYE")
}
