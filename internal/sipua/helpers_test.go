package sipua

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/groupbridge/groupbridge/internal/sipua/dialog"
	"github.com/groupbridge/groupbridge/internal/testports"
	"github.com/groupbridge/groupbridge/internal/wallclock"
	"github.com/groupbridge/groupbridge/media/rtpio"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// testServer starts a Server on udp 127.0.0.1:0 with a real RTP engine on
// a loopback port range of the test's own (testports.Range); mod may
// change the configuration first. The handler holds each call until it
// ends. Both are shut down with the test.
func testServer(t *testing.T, mod func(*Config)) *Server {
	t.Helper()
	s := newTestServer(t, mod)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	return s
}

// newTestServer is testServer without Start, for tests that change the
// server's unexported knobs first.
func newTestServer(t testing.TB, mod func(*Config)) *Server {
	t.Helper()
	lo := testports.Range(t, 200)
	engine, err := rtpio.NewEngine(rtpio.Config{Address: loopback, PortMin: lo, PortMax: lo + 199})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Listeners: []Listener{{"udp", netip.AddrPortFrom(loopback, 0)}},
		Media:     engine,
		Handler:   HandlerFunc(func(c *Call) { <-c.Context().Done() }),
		Logger:    slog.New(slog.DiscardHandler),
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		_ = engine.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		_ = engine.Close()
	})
	return s
}

// sipAddr returns the server's bound address for transport.
func sipAddr(t *testing.T, s *Server, transport string) netip.AddrPort {
	t.Helper()
	for _, l := range s.Addrs() {
		if l.Transport == transport {
			return l.Addr
		}
	}
	t.Fatalf("no %s listener", transport)
	return netip.AddrPort{}
}

// peer is a raw SIP user agent on a UDP socket: it writes messages from
// templates and reads what comes back, so tests see the exact bytes.
type peer struct {
	t    *testing.T
	conn *net.UDPConn
	dst  netip.AddrPort
	from netip.AddrPort // source of the last message read
}

var peerSeq atomic.Int64

func newPeer(t *testing.T, ip netip.Addr, dst netip.AddrPort) *peer {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &peer{t: t, conn: c, dst: dst}
}

// addr is the peer's own address.
func (p *peer) addr() netip.AddrPort { return p.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// fill replaces {dst}, {src}, {srcip} and {rand} in a message template and
// sets Content-Length.
func (p *peer) fill(msg string) string {
	r := strings.NewReplacer("{dst}", p.dst.String(), "{src}", p.addr().String(),
		"{srcip}", p.addr().Addr().String(), "{rand}", fmt.Sprintf("%d%d", time.Now().UnixNano(), peerSeq.Add(1)))
	msg = r.Replace(msg)
	head, body, _ := strings.Cut(msg, "\r\n\r\n")
	return head + "\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

// send writes a message as is (after fill).
func (p *peer) send(msg string) {
	p.t.Helper()
	if _, err := p.conn.WriteToUDPAddrPort([]byte(msg), p.dst); err != nil {
		p.t.Fatal(err)
	}
}

// read returns the next SIP message, or nil after timeout.
func (p *peer) read(timeout time.Duration) sip.Message {
	p.t.Helper()
	buf := make([]byte, 65536)
	deadline := time.Now().Add(timeout)
	for {
		_ = p.conn.SetReadDeadline(deadline)
		n, from, err := p.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return nil
		}
		p.from = from
		m, err := sip.ParseMessage(append([]byte(nil), buf[:n]...))
		if err != nil {
			p.t.Logf("unparsable message: %v", err)
			continue
		}
		return m
	}
}

// final reads responses until a final one and returns it, or nil after
// 5 s without one.
func (p *peer) final() *sip.Response {
	p.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		m := p.read(time.Until(deadline))
		if res, ok := m.(*sip.Response); ok && res.StatusCode >= 200 {
			return res
		}
		if m == nil {
			break
		}
	}
	return nil
}

// request sends msg (a template) and returns the final response.
func (p *peer) request(msg string) *sip.Response {
	p.t.Helper()
	p.send(p.fill(msg))
	return p.final()
}

const testSDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"

// invite is an INVITE template; callID and cseq let a test retry it.
func invite(callID string, cseq int, extra ...string) string {
	return "INVITE sip:groupbridge@{dst} SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP {src};branch=z9hG4bK-{rand};rport\r\n" +
		"From: <sip:alice@{srcip}>;tag=f" + callID + "\r\n" +
		"To: <sip:groupbridge@{dst}>\r\n" +
		"Call-ID: " + callID + "\r\n" +
		"CSeq: " + strconv.Itoa(cseq) + " INVITE\r\n" +
		"Contact: <sip:alice@{src}>\r\n" +
		"Max-Forwards: 70\r\n" +
		strings.Join(extra, "") +
		"Content-Type: application/sdp\r\n\r\n" + testSDP
}

// ack builds the ACK for a 2xx to an INVITE sent by invite.
func ack(callID string, cseq int, res *sip.Response) string {
	return "ACK sip:groupbridge@{dst} SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP {src};branch=z9hG4bK-{rand};rport\r\n" +
		"From: <sip:alice@{srcip}>;tag=f" + callID + "\r\n" +
		res.To().String() + "\r\n" +
		"Call-ID: " + callID + "\r\n" +
		"CSeq: " + strconv.Itoa(cseq) + " ACK\r\n" +
		"Max-Forwards: 70\r\n\r\n"
}

// callID returns a fresh Call-ID.
func callID() string { return fmt.Sprintf("c%d-%d@test", time.Now().UnixNano(), peerSeq.Add(1)) }

// testLayer is a dialog layer of the test's own on a loopback RTP engine,
// for unit tests that need real dialogs in a call table.
func testLayer(t *testing.T, clk wallclock.Clock) *dialog.Layer {
	t.Helper()
	lo := testports.Range(t, 20)
	engine, err := rtpio.NewEngine(rtpio.Config{Address: loopback, PortMin: lo, PortMax: lo + 19})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		_ = engine.Close()
	})
	return dialog.New(dialog.Config{Media: engine, Clock: clk, Context: ctx, WaitGroup: &wg,
		Logger: slog.New(slog.DiscardHandler)})
}

// dialogFrom puts in d's table the dialog of an INVITE with Call-ID
// callID from source (ip:port, From tag "theirs"), through a
// Record-Route to each host of routes, as a call of the server's whose
// caller authenticated as user ("" for a trusted source).
func dialogFrom(t *testing.T, d *dialog.Layer, callID, source, user string, routes ...string) *Call {
	t.Helper()
	var uri sip.Uri
	_ = sip.ParseUri(testURI, &uri)
	inv := sip.NewRequest(sip.INVITE, uri)
	id := sip.CallIDHeader(callID)
	inv.AppendHeader(&id)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", Host: "192.0.2.10"}, Params: sip.NewParams()}
	from.Params.Add("tag", "theirs")
	inv.AppendHeader(from)
	inv.AppendHeader(&sip.ToHeader{Address: uri, Params: sip.NewParams()})
	inv.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.INVITE})
	for _, r := range routes {
		inv.AppendHeader(sip.NewHeader("Record-Route", "<sip:"+r+";lr>"))
	}
	inv.SetSource(source)
	inv.SetTransport("UDP")
	c := &Call{user: user}
	dc, err := d.NewInbound(inv, dialog.Inbound{Laddr: sip.Addr{IP: net.IP(loopback.AsSlice()), Port: 5060}, Owner: c})
	if err != nil {
		t.Fatal(err)
	}
	c.Call = dc
	d.Add(dc, 0)
	t.Cleanup(func() { d.Release(dc) })
	return c
}
