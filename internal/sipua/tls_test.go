package sipua

import (
	"bufio"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/selfsigned"

	"github.com/emiago/sipgo/sip"
	"github.com/groupbridge/groupbridge/media/rtpio"
)

// tlsPeer is a raw SIP user agent on one TLS connection.
type tlsPeer struct {
	t    *testing.T
	conn *tls.Conn
	r    *bufio.Reader
}

func (p *tlsPeer) fill(msg string) string {
	src := p.conn.LocalAddr().String()
	r := strings.NewReplacer("{dst}", p.conn.RemoteAddr().String(), "{src}", src,
		"{srcip}", "127.0.0.1", "{rand}", strconv.FormatInt(time.Now().UnixNano(), 10),
		"SIP/2.0/UDP", "SIP/2.0/TLS")
	msg = r.Replace(msg)
	head, body, _ := strings.Cut(msg, "\r\n\r\n")
	return head + "\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

func (p *tlsPeer) send(msg string) {
	p.t.Helper()
	if _, err := p.conn.Write([]byte(p.fill(msg))); err != nil {
		p.t.Fatal(err)
	}
}

// read returns the next message on the connection (framed by
// Content-Length), failing the test after 5 s.
func (p *tlsPeer) read() sip.Message {
	p.t.Helper()
	_ = p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var head strings.Builder
	length := 0
	for {
		line, err := p.r.ReadString('\n')
		if err != nil {
			p.t.Fatalf("read: %v", err)
		}
		if line == "\r\n" && head.Len() == 0 {
			continue // keep-alive
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "Content-Length") {
			length, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(p.r, body); err != nil {
		p.t.Fatalf("read body: %v", err)
	}
	m, err := sip.ParseMessage(append([]byte(head.String()), body...))
	if err != nil {
		p.t.Fatalf("parse: %v", err)
	}
	return m
}

// srtpOffer is testSDP offering SDES-keyed SRTP.
func srtpOffer(key []byte) string {
	return strings.Replace(testSDP, "RTP/AVP", "RTP/SAVP", 1) +
		"a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:" + base64.StdEncoding.EncodeToString(key) + "|2^31\r\n"
}

// TestTLS calls over TLS: OPTIONS and INVITE are answered on the
// connection, Contact says transport=tls, an SRTP offer gets an SRTP
// answer, and the bridge's BYE comes back on the same connection.
func TestTLS(t *testing.T) {
	pair, err := selfsigned.New("groupbridge test", time.Hour, netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	cert, pool := pair.Cert, pair.Pool
	streams := make(chan *rtpio.Stream, 1)
	s := testServer(t, func(c *Config) {
		c.Listeners = []Listener{{"tls", netip.AddrPortFrom(loopback, 0)}}
		c.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		c.Handler = HandlerFunc(func(c *Call) {
			streams <- c.Stream()
			c.Hangup("test")
		})
	})
	dst := sipAddr(t, s, "tls")

	old, err := tls.Dial("tcp", dst.String(), &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11})
	if err == nil {
		_ = old.Close()
		t.Error("a TLS 1.1 client was accepted")
	}

	conn, err := tls.Dial("tcp", dst.String(), &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	p := &tlsPeer{t: t, conn: conn, r: bufio.NewReader(conn)}

	p.send("OPTIONS sip:groupbridge@{dst} SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP {src};branch=z9hG4bK-{rand};rport\r\n" +
		"From: <sip:alice@{srcip}>;tag=o1\r\nTo: <sip:groupbridge@{dst}>\r\n" +
		"Call-ID: " + callID() + "\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n\r\n")
	if res, ok := p.read().(*sip.Response); !ok || res.StatusCode != 200 {
		t.Fatalf("OPTIONS answered %v", res)
	}

	key := make([]byte, rtpio.SRTPKeyLen)
	_, _ = rand.Read(key)
	id := callID()
	inv := strings.Replace(invite(id, 1), testSDP, srtpOffer(key), 1)
	inv = strings.Replace(inv, "Contact: <sip:alice@{src}>", "Contact: <sip:alice@{src};transport=tls>", 1)
	p.send(inv)
	var ok200 *sip.Response
	saw100 := false
	for ok200 == nil {
		res, isRes := p.read().(*sip.Response)
		switch {
		case !isRes:
			t.Fatal("a request before the INVITE's answer")
		case res.StatusCode == 100:
			saw100 = true
		case res.StatusCode == 200:
			ok200 = res
		case res.StatusCode >= 200:
			t.Fatalf("INVITE answered %d %s", res.StatusCode, res.Reason)
		}
	}
	if !saw100 {
		t.Error("no 100 Trying")
	}
	if c := ok200.Contact(); c == nil || c.Address.UriParams == nil || !strings.EqualFold(mustParam(c.Address.UriParams, "transport"), "tls") ||
		c.Address.Port != int(dst.Port()) {
		t.Errorf("Contact %v, want ;transport=tls on port %d", c, dst.Port())
	}
	body := string(ok200.Body())
	if !strings.Contains(body, " RTP/SAVP ") || !strings.Contains(body, "\r\na=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:") {
		t.Errorf("answer to an SRTP offer is not SRTP:\n%s", body)
	}
	p.send(ack(id, 1, ok200))

	select {
	case st := <-streams:
		if st == nil {
			t.Fatal("no stream")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the call never started")
	}
	for {
		m := p.read()
		req, isReq := m.(*sip.Request)
		if !isReq {
			continue
		}
		if req.Method != sip.BYE {
			t.Fatalf("got %s, want BYE", req.Method)
		}
		if via := req.Via(); via == nil || !strings.EqualFold(via.Transport, "TLS") {
			t.Errorf("BYE's Via %v, want TLS", via)
		}
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		if _, err := conn.Write([]byte(res.String())); err != nil {
			t.Fatal(err)
		}
		return
	}
}

func mustParam(p sip.HeaderParams, k string) string {
	v, _ := p.Get(k)
	return v
}

// TestTLSNeedsConfig checks that a tls listener without a certificate
// is refused before anything binds.
func TestTLSNeedsConfig(t *testing.T) {
	engine, err := rtpio.NewEngine(rtpio.Config{Address: loopback, PortMin: 30000, PortMax: 30001})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = engine.Close() }()
	_, err = New(Config{Listeners: []Listener{{"tls", netip.AddrPortFrom(loopback, 0)}}, Media: engine,
		Handler: HandlerFunc(func(*Call) {})})
	if err == nil || !strings.Contains(err.Error(), "TLS") {
		t.Errorf("New = %v, want an error about TLS", err)
	}
}
