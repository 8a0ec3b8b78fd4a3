package sipua

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/groupbridge/groupbridge/internal/selfsigned"
	"github.com/groupbridge/groupbridge/internal/testkit"
)

// testCert returns a server certificate for 127.0.0.1 and a pool that
// trusts it.
func testCert(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	pair, err := selfsigned.New("groupbridge test", time.Hour, loopback)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair.Cert}}, pair.Pool
}

// dialFrom opens a TCP connection from the loopback address src.
func dialFrom(t *testing.T, src string, dst netip.AddrPort) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", dst.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// closedWithin reports whether the server closes c within d (a read ends
// in EOF or a reset rather than the deadline).
func closedWithin(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 512)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue // keep-alive answers and such
		}
		return !errors.Is(err, os.ErrDeadlineExceeded)
	}
}

// streamRequest sends an OPTIONS (or the given template) over a stream
// connection and returns the response's status.
func streamOptions(t *testing.T, c net.Conn, transport string) int {
	t.Helper()
	msg := "OPTIONS sip:groupbridge@" + c.RemoteAddr().String() + " SIP/2.0\r\n" +
		"Via: SIP/2.0/" + transport + " " + c.LocalAddr().String() + ";branch=z9hG4bK-" + callID() + "\r\n" +
		"From: <sip:alice@127.0.0.1>;tag=o1\r\nTo: <sip:groupbridge@127.0.0.1>\r\n" +
		"Call-ID: " + callID() + "\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	return readStatus(t, c)
}

// readStatus reads responses from c until a final one and returns its
// status.
func readStatus(t *testing.T, c net.Conn) int {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	for {
		var head strings.Builder
		length := 0
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if line == "\r\n" {
				if head.Len() == 0 {
					continue
				}
				break
			}
			head.WriteString(line)
			if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "Content-Length") {
				length, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
		body := make([]byte, length)
		if _, err := io.ReadFull(r, body); err != nil {
			t.Fatalf("read body: %v", err)
		}
		m, err := sip.ParseMessage(append([]byte(head.String()+"\r\n"), body...))
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		res, ok := m.(*sip.Response)
		if !ok {
			t.Fatalf("not a response: %v", m)
		}
		if res.StatusCode >= 200 {
			return res.StatusCode
		}
	}
}

// TestConnectionTimeouts opens 50 idle TCP connections and 50 TCP
// connections to the TLS port that never start a handshake, from an
// untrusted address: all are closed after limits.tcp_idle and
// limits.tls_handshake. A connection that carried a request, and the
// trusted PBX's idle one, stay open.
func TestConnectionTimeouts(t *testing.T) {
	srvTLS, pool := testCert(t)
	const idle, handshake = 600 * time.Millisecond, 400 * time.Millisecond
	s := testServer(t, func(c *Config) {
		c.Listeners = []Listener{{"tcp", netip.AddrPortFrom(loopback, 0)}, {"tls", netip.AddrPortFrom(loopback, 0)}}
		c.TLS = srvTLS
		c.Trusted = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		c.Limits = Limits{TCPIdle: idle, TLSHandshake: handshake}
	})
	tcpAddr, tlsAddr := sipAddr(t, s, "tcp"), sipAddr(t, s, "tls")
	start := time.Now()
	var idleConns []net.Conn
	for range 50 {
		idleConns = append(idleConns, dialFrom(t, "127.0.0.2", tcpAddr), dialFrom(t, "127.0.0.2", tlsAddr))
	}
	// A TLS connection that finishes its handshake but sends nothing.
	tc := tls.Client(dialFrom(t, "127.0.0.2", tlsAddr), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	idleConns = append(idleConns, tc)
	// Connections that carry a request at once, over TCP and TLS.
	busy := dialFrom(t, "127.0.0.2", tcpAddr)
	if code := streamOptions(t, busy, "TCP"); code != 200 {
		t.Fatalf("OPTIONS over TCP answered %d", code)
	}
	busyTLS := tls.Client(dialFrom(t, "127.0.0.2", tlsAddr), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if code := streamOptions(t, busyTLS, "TLS"); code != 200 {
		t.Fatalf("OPTIONS over TLS answered %d", code)
	}
	pbx := dialFrom(t, "127.0.0.1", tcpAddr)
	poll(time.Second, func() bool { n, _ := s.conns.size(); return n == 104 })
	before, _ := s.conns.size()

	var wg sync.WaitGroup
	var mu sync.Mutex
	open := 0
	for _, c := range idleConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !closedWithin(c, 5*time.Second) {
				mu.Lock()
				open++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	if open != 0 {
		t.Errorf("%d of %d idle connections still open after 5 s", open, len(idleConns))
	}
	if took < handshake {
		t.Errorf("idle connections closed after %v, before the timeouts", took)
	}
	for name, c := range map[string]net.Conn{"TCP with a request": busy, "TLS with a request": busyTLS, "trusted idle": pbx} {
		if closedWithin(c, 300*time.Millisecond) {
			t.Errorf("%s connection was closed", name)
		}
	}
	after, _ := s.conns.size()
	t.Logf("open connections: %d before the timeouts, %d after (closed within %v)", before, after, took.Round(10*time.Millisecond))
	if after != 3 {
		t.Errorf("%d connections tracked after the timeouts, want 3", after)
	}
}

// TestConnectionCapPerSource checks limits.tcp_per_source: an untrusted
// address's connections beyond it (TCP and TLS together) are closed at
// once, other addresses are not affected, and the trusted PBX, whatever
// it holds, still calls.
func TestConnectionCapPerSource(t *testing.T) {
	srvTLS, pool := testCert(t)
	calls := make(chan *Call, 1)
	s := testServer(t, func(c *Config) {
		c.Listeners = []Listener{{"tcp", netip.AddrPortFrom(loopback, 0)}, {"tls", netip.AddrPortFrom(loopback, 0)}}
		c.TLS = srvTLS
		c.Trusted = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		c.Limits = Limits{TCPPerSource: 5, TCPIdle: 10 * time.Second}
		c.Handler = HandlerFunc(func(c *Call) { calls <- c; <-c.Context().Done() })
	})
	tcpAddr, tlsAddr := sipAddr(t, s, "tcp"), sipAddr(t, s, "tls")
	var held []net.Conn
	for range 5 {
		held = append(held, dialFrom(t, "127.0.0.2", tcpAddr))
	}
	poll(time.Second, func() bool { _, n := s.conns.size(); return n == 1 }) // all five accepted
	if !closedWithin(dialFrom(t, "127.0.0.2", tcpAddr), time.Second) {
		t.Error("a sixth TCP connection was kept open")
	}
	if _, err := tls.DialWithDialer(&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 2 * time.Second},
		"tcp", tlsAddr.String(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}); err == nil {
		t.Error("a TLS connection over the cap was served")
	}
	for i, c := range held {
		if closedWithin(c, 50*time.Millisecond) {
			t.Errorf("held connection %d was closed", i)
		}
	}
	// Another address is not affected.
	if code := streamOptions(t, dialFrom(t, "127.0.0.3", tcpAddr), "TCP"); code != 200 {
		t.Errorf("OPTIONS from another address answered %d", code)
	}
	// The trusted PBX holds more, and calls.
	for range 8 {
		dialFrom(t, "127.0.0.1", tcpAddr)
	}
	pbx := dialFrom(t, "127.0.0.1", tcpAddr)
	id := callID()
	inv := strings.NewReplacer("{dst}", tcpAddr.String(), "{src}", pbx.LocalAddr().String(), "{srcip}", "127.0.0.1",
		"{rand}", callID(), "SIP/2.0/UDP", "SIP/2.0/TCP", "Content-Type", "Content-Length: "+strconv.Itoa(len(testSDP))+"\r\nContent-Type").
		Replace(invite(id, 1))
	if _, err := pbx.Write([]byte(inv)); err != nil {
		t.Fatal(err)
	}
	if code := readStatus(t, pbx); code != 200 {
		t.Fatalf("the trusted PBX's INVITE answered %d", code)
	}
	// A held connection closed frees a place.
	_ = held[0].Close()
	poll(time.Second, func() bool {
		s.conns.mu.Lock()
		defer s.conns.mu.Unlock()
		return s.conns.bySource[sourceKey(netip.MustParseAddr("127.0.0.2"))] == 4
	})
	if closedWithin(dialFrom(t, "127.0.0.2", tcpAddr), 200*time.Millisecond) {
		t.Error("a connection after one closed was refused")
	}
}

// poll waits until cond holds or d passes; the test's own checks follow.
func poll(d time.Duration, cond func() bool) {
	for deadline := time.Now().Add(d); !cond() && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
}

// TestConnectionTimeoutsOnTheClock: limits.tcp_idle and
// limits.tls_handshake run on Config.Clock, so they end connections when
// that clock has moved by them, not before and with no real wait.
func TestConnectionTimeoutsOnTheClock(t *testing.T) {
	srvTLS, _ := testCert(t)
	clk := testkit.NewManualClock()
	s := testServer(t, func(c *Config) {
		c.Listeners = []Listener{{"tcp", netip.AddrPortFrom(loopback, 0)}, {"tls", netip.AddrPortFrom(loopback, 0)}}
		c.TLS = srvTLS
		c.Trusted = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		c.Limits = Limits{TCPIdle: 30 * time.Second, TLSHandshake: 10 * time.Second}
		c.Clock = clk
	})
	idle := dialFrom(t, "127.0.0.2", sipAddr(t, s, "tcp"))
	silent := dialFrom(t, "127.0.0.2", sipAddr(t, s, "tls")) // never says hello
	// Both connections' idle limits and the handshake's, asked for by
	// their durations: the server's other timers come and go meanwhile.
	poll(5*time.Second, func() bool { return clk.Armed(10*time.Second) == 1 && clk.Armed(30*time.Second) == 2 })
	if h, i := clk.Armed(10*time.Second), clk.Armed(30*time.Second); h != 1 || i != 2 {
		t.Fatalf("%d handshake and %d idle limits armed on the clock, want 1 and 2", h, i)
	}
	steps := []struct {
		advance      time.Duration
		idle, silent bool // closed
	}{
		{10*time.Second - time.Millisecond, false, false},
		{time.Millisecond, false, true}, // limits.tls_handshake
		{20*time.Second - time.Millisecond, false, true},
		{time.Millisecond, true, true}, // limits.tcp_idle
	}
	closed := map[net.Conn]bool{}
	for i, st := range steps {
		clk.Advance(st.advance)
		for c, want := range map[net.Conn]bool{idle: st.idle, silent: st.silent} {
			if closed[c] {
				continue
			}
			wait := 100 * time.Millisecond // to see it stay open
			if want {
				wait = 3 * time.Second
			}
			if closed[c] = closedWithin(c, wait); closed[c] != want {
				t.Fatalf("step %d: closed %v, want %v (idle %v)", i, closed[c], want, c == idle)
			}
		}
	}
}
