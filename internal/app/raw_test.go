package app

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// inviteText builds a raw INVITE from caller; placeholders are filled by
// rawSIP with the socket's address.
func inviteText(caller, sdp string) string {
	return "INVITE sip:groupbridge@{dst} SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP {src};branch=z9hG4bK-{rand}\r\n" +
		"From: <sip:" + caller + "@{srcip}>;tag=t{rand}\r\n" +
		"To: <sip:groupbridge@{dst}>\r\n" +
		"Call-ID: c{rand}@test\r\n" +
		"CSeq: 1 INVITE\r\n" +
		"Contact: <sip:" + caller + "@{src}>\r\n" +
		"Max-Forwards: 70\r\n" +
		"Content-Type: application/sdp\r\n" +
		"Content-Length: " + strconv.Itoa(len(sdp)) + "\r\n\r\n" + sdp
}

// rawSeq makes Call-IDs and tags unique across parallel tests.
var rawSeq atomic.Int64

// rawSIP sends one raw SIP message over UDP and collects the status codes
// of responses until a final one, or until want responses, or 3 s of quiet.
func rawSIP(t *testing.T, dst, msg string, want int) []int {
	t.Helper()
	codes, _ := rawSIPText(t, dst, msg, want)
	return codes
}

// rawSIPText is rawSIP that also returns the text of the last response.
func rawSIPText(t *testing.T, dst, msg string, want int) ([]int, string) {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	seq := rawSeq.Add(1)
	src := c.LocalAddr().String()
	r := strings.NewReplacer("{dst}", dst, "{src}", src, "{srcip}", "127.0.0.1",
		"{rand}", fmt.Sprintf("%d%d", time.Now().UnixNano(), seq))
	msg = r.Replace(msg)
	to, err := net.ResolveUDPAddr("udp", dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteToUDP([]byte(msg), to); err != nil {
		t.Fatal(err)
	}
	var codes []int
	last := ""
	buf := make([]byte, 65536)
	for len(codes) < want {
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, _, err := c.ReadFromUDP(buf)
		if err != nil {
			break
		}
		last = string(buf[:n])
		line, _, _ := strings.Cut(last, "\r\n")
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "SIP/2.0" {
			code, _ := strconv.Atoi(f[1])
			codes = append(codes, code)
			if code >= 200 {
				break
			}
		}
	}
	return codes, last
}
