package sipua

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestBehindProxy runs real calls through a server that has a proxy in
// front (127.0.0.2, trusted, in Proxies) and a trusted PBX beside it
// (127.0.0.3): calls the proxy forwards are capped in setup by the caller
// each names, the call knows its caller's address and takes media from
// it, a PBX's X-Groupbridge-Source is ignored, and a malformed one from
// the proxy is answered 400.
func TestBehindProxy(t *testing.T) {
	proxyIP := netip.MustParseAddr("127.0.0.2")
	pbxIP := netip.MustParseAddr("127.0.0.3")
	calls := make(chan *Call, 8)
	s := testServer(t, func(c *Config) {
		c.Trusted = []netip.Prefix{netip.PrefixFrom(proxyIP, 32), netip.PrefixFrom(pbxIP, 32)}
		c.Proxies = []netip.Prefix{netip.PrefixFrom(proxyIP, 32)}
		c.Limits = Limits{SetupPerSource: 1}
		c.Handler = HandlerFunc(func(c *Call) {
			calls <- c
			<-c.Context().Done()
		})
	})
	dst := sipAddr(t, s, "udp")
	proxy := newPeer(t, proxyIP, dst)
	pbx := newPeer(t, pbxIP, dst)
	source := func(v string) string { return SourceHeader + ": " + v + "\r\n" }

	// answered sends an INVITE from p, expects code and, for a 200,
	// ACKs it and returns the call the handler got.
	answered := func(p *peer, code int, extra ...string) *Call {
		t.Helper()
		id := callID()
		res := p.request(invite(id, 1, extra...))
		if res == nil || res.StatusCode != code {
			t.Fatalf("INVITE with %q answered %v; want %d", extra, res, code)
		}
		if code != 200 {
			return nil
		}
		p.send(p.fill(ack(id, 1, res)))
		select {
		case c := <-calls:
			return c
		case <-time.After(5 * time.Second):
			t.Fatal("the handler never got the call")
			return nil
		}
	}

	a := answered(proxy, 200, source("127.0.0.4:5060"))
	if got := a.SourceIP(); got != netip.MustParseAddr("127.0.0.4") {
		t.Errorf("SourceIP() = %v; want the caller's 127.0.0.4", got)
	}
	// Caller 127.0.0.4 has its one call in setup; another caller has its own.
	answered(proxy, 503, source("127.0.0.4:5099"))
	answered(proxy, 200, source("127.0.0.5"))
	// A PBX cannot name a caller: its call is its own, never capped.
	for range 2 {
		if c := answered(pbx, 200, source("127.0.0.4:5060")); c.SourceIP() != pbxIP {
			t.Errorf("PBX's call: SourceIP() = %v; want %v", c.SourceIP(), pbxIP)
		}
	}
	answered(proxy, 400, source("127.0.0.4:5060, 127.0.0.5:5060"))

	// Media: from the caller's own address it is taken; from an address
	// the call never named it is not.
	port := a.Stream().LocalAddr().Port()
	sendRTP(t, netip.MustParseAddr("127.0.0.6"), netip.AddrPortFrom(loopback, port), 6)
	waitFor(t, "6 foreign packets", func() bool { return a.Stream().Stats().Dropped.ForeignSource == 6 })
	sendRTP(t, netip.MustParseAddr("127.0.0.4"), netip.AddrPortFrom(loopback, port), 6)
	waitFor(t, "12 packets in", func() bool { return a.Stream().Stats().PacketsIn == 12 })
	if st := a.Stream().Stats(); st.Dropped.ForeignSource != 6 {
		t.Errorf("media from the caller's own address dropped as foreign: %+v", st.Dropped)
	}
}

// sendRTP sends n in-sequence PCMU packets from a socket on ip to dst.
func sendRTP(t *testing.T, ip netip.Addr, dst netip.AddrPort, n int) {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pkt := make([]byte, 12+160)
	pkt[0] = 0x80
	binary.BigEndian.PutUint32(pkt[8:], 0x5eed)
	for i := range n {
		binary.BigEndian.PutUint16(pkt[2:], uint16(100+i))
		binary.BigEndian.PutUint32(pkt[4:], uint32(160*i))
		if _, err := c.WriteToUDPAddrPort(pkt, dst); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDrainingOptions: a draining server answers OPTIONS outside a dialog
// 503, so that a proxy probing it (Kamailio's dispatcher) sends new calls
// to other nodes; a call's own OPTIONS is still answered 200.
func TestDrainingOptions(t *testing.T) {
	calls := make(chan *Call, 1)
	s := testServer(t, func(c *Config) {
		c.Handler = HandlerFunc(func(c *Call) {
			calls <- c
			<-c.Context().Done()
		})
	})
	p := newPeer(t, loopback, sipAddr(t, s, "udp"))
	options := func(to string) string {
		return "OPTIONS sip:groupbridge@{dst} SIP/2.0\r\n" +
			"Via: SIP/2.0/UDP {src};branch=z9hG4bK-{rand};rport\r\n" +
			"From: <sip:probe@{srcip}>;tag=probe\r\n" +
			to + "\r\n" +
			"Call-ID: probe-{rand}\r\n" +
			"CSeq: 7 OPTIONS\r\n" +
			"Max-Forwards: 70\r\n\r\n"
	}
	if res := p.request(options("To: <sip:groupbridge@{dst}>")); res == nil || res.StatusCode != 200 {
		t.Fatalf("OPTIONS before draining answered %v; want 200", res)
	}
	id := callID()
	ok := p.request(invite(id, 1))
	if ok == nil || ok.StatusCode != 200 {
		t.Fatalf("INVITE answered %v", ok)
	}
	p.send(p.fill(ack(id, 1, ok)))
	<-calls

	s.Drain()
	res := p.request(options("To: <sip:groupbridge@{dst}>"))
	if res == nil || res.StatusCode != 503 || res.GetHeader("Retry-After") == nil {
		t.Fatalf("OPTIONS while draining answered %v; want 503 with Retry-After", res)
	}
	// Inside the call: the dialog's own keep-alive.
	res = p.request("OPTIONS sip:groupbridge@{dst} SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP {src};branch=z9hG4bK-{rand};rport\r\n" +
		"From: <sip:alice@{srcip}>;tag=f" + id + "\r\n" +
		ok.To().String() + "\r\n" +
		"Call-ID: " + id + "\r\n" +
		"CSeq: 2 OPTIONS\r\n" +
		"Max-Forwards: 70\r\n\r\n")
	if res == nil || res.StatusCode != 200 {
		t.Fatalf("in-dialog OPTIONS while draining answered %v; want 200", res)
	}
}
