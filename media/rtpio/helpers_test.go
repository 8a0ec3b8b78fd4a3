//go:build linux

package rtpio

import (
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"
	"golang.org/x/sys/unix"

	"github.com/groupbridge/groupbridge/internal/testports"
	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/pcm"
)

var loop4 = netip.MustParseAddr("127.0.0.1")

// freeRange returns pairs RTP/RTCP port pairs that belong to the test
// until it ends (testports.Range): below the kernel's ephemeral ports, and
// held by no other test of the repository, here or in another process, so
// that a test's whole range is its own even while its engine has not
// bound it.
func freeRange(t testing.TB, addr netip.Addr, pairs int) (lo, hi int) {
	t.Helper()
	lo = testports.Range(t, 2*pairs)
	for port := lo; port < lo+2*pairs; port++ {
		// The blocks were checked on 127.0.0.1; an engine on another
		// address needs its ports free there too.
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, uint16(port))))
		if err != nil {
			t.Fatalf("port %d of the test's own range is taken on %s: %v", port, addr, err)
		}
		_ = c.Close()
	}
	return lo, lo + 2*pairs - 1
}

// testEngine starts an engine on 127.0.0.1 over pairs free port pairs and
// closes it when the test ends.
func testEngine(t testing.TB, pairs int) *Engine {
	t.Helper()
	return testEngineOn(t, loop4, pairs)
}

func testEngineOn(t testing.TB, addr netip.Addr, pairs int) *Engine {
	t.Helper()
	lo, hi := freeRange(t, addr, pairs)
	e, err := NewEngine(Config{Address: addr, PortMin: lo, PortMax: hi})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("engine close: %v", err)
		}
	})
	return e
}

// peer is a plain UDP socket playing the far end of a call.
type peer struct {
	t    testing.TB
	conn *net.UDPConn
	ssrc uint32
	seq  uint16
	ts   uint32
}

func newPeer(t testing.TB, addr netip.Addr) *peer {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &peer{t: t, conn: c, ssrc: rand.Uint32(), seq: uint16(rand.Uint32()), ts: rand.Uint32()}
}

func (p *peer) addr() netip.AddrPort { return p.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// sendRaw sends b to dst.
func (p *peer) sendRaw(dst netip.AddrPort, b []byte) {
	p.t.Helper()
	if _, err := p.conn.WriteToUDPAddrPort(b, dst); err != nil {
		p.t.Fatal(err)
	}
}

// send sends one RTP packet with the peer's next sequence number and a
// timestamp advanced by the payload length.
func (p *peer) send(dst netip.AddrPort, pt uint8, payload []byte) {
	p.t.Helper()
	p.sendSeq(dst, pt, p.seq, payload)
	p.seq++
	p.ts += uint32(len(payload))
}

// sendSeq sends one RTP packet with an explicit sequence number.
func (p *peer) sendSeq(dst netip.AddrPort, pt uint8, seq uint16, payload []byte) {
	p.t.Helper()
	p.sendRaw(dst, marshal(p.t, rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq, Timestamp: p.ts, SSRC: p.ssrc}, payload))
}

// recv reads one RTP packet, failing the test after a generous timeout.
func (p *peer) recv() (rtp.Packet, netip.AddrPort) {
	p.t.Helper()
	pkt, from, err := p.tryRecv(5 * time.Second)
	if err != nil {
		p.t.Fatalf("peer %s: %v", p.addr(), err)
	}
	return pkt, from
}

// tryRecv reads one RTP packet within d.
func (p *peer) tryRecv(d time.Duration) (rtp.Packet, netip.AddrPort, error) {
	buf := make([]byte, 2048)
	_ = p.conn.SetReadDeadline(time.Now().Add(d))
	n, from, err := p.conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		return rtp.Packet{}, netip.AddrPort{}, err
	}
	var pkt rtp.Packet
	if err := pkt.Unmarshal(buf[:n]); err != nil {
		return rtp.Packet{}, from, err
	}
	return pkt, from, nil
}

// expectSilence checks that nothing arrives within d.
func (p *peer) expectSilence(d time.Duration) {
	p.t.Helper()
	if pkt, from, err := p.tryRecv(d); err == nil {
		p.t.Fatalf("peer %s received a packet from %s (seq %d); want nothing", p.addr(), from, pkt.SequenceNumber)
	} else if ne := (net.Error)(nil); !errors.As(err, &ne) || !ne.Timeout() {
		p.t.Fatalf("peer %s: %v", p.addr(), err)
	}
}

func marshal(t testing.TB, h rtp.Header, payload []byte) []byte {
	t.Helper()
	b, err := (&rtp.Packet{Header: h, Payload: payload}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// waitFor polls cond until it holds; the deadline only guards against a
// hung test, nothing is asserted about timing.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitIn waits until s has received n datagrams.
func waitIn(t testing.TB, s *Stream, n uint64) {
	t.Helper()
	waitFor(t, "packets to arrive", func() bool { return s.Stats().PacketsIn >= n })
}

// tone fills a payload of n samples of a codec with a recognisable,
// non-silent pattern starting at phase.
func tone(c g711.Codec, n, phase int) []byte {
	lin := make([]int16, n)
	for i := range lin {
		lin[i] = int16(((i+phase)%40 - 20) * 800)
	}
	b := make([]byte, n)
	c.Encode(b, lin)
	return b
}

// decoded is what the stream should play for payload.
func decoded(c g711.Codec, payload []byte) []int16 {
	out := make([]int16, len(payload))
	c.Decode(out, payload)
	return out
}

// frameOf builds a frame with a pattern depending on k.
func frameOf(k int) *pcm.Frame {
	var f pcm.Frame
	for i := range f {
		f[i] = int16((i*37 + k*1000) % 20000)
	}
	return &f
}

// bareStream builds a stream with no sockets, for driving handle directly
// in unit tests, fuzzing and benchmarks.
func bareStream(p Params) *Stream {
	e := &Engine{
		cfg:          Config{Address: loop4},
		log:          slog.New(slog.DiscardHandler),
		family:       unix.AF_INET,
		cname:        newCNAME(),
		rtcpInterval: defaultRTCPInterval,
	}
	e.pollers = []*poller{newPollerState(e, 0, -1)}
	return e.newStream(p, allowedNets(p.Allowed), 0, 40000, -1, -1)
}

// rtpHeader is a version 2 header with the given fields.
func rtpHeader(pt uint8, seq uint16, ts, ssrc uint32) rtp.Header {
	return rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq, Timestamp: ts, SSRC: ssrc}
}

// socketEngine is a test engine whose jitter buffers keep at least 60 ms:
// tests that play audio in real time then ride out the scheduling hiccups
// of a busy machine without packets turning late.
func socketEngine(t testing.TB, pairs int) *Engine {
	t.Helper()
	e := testEngine(t, pairs)
	e.cfg.JitterMin = 60 * time.Millisecond
	return e
}

// sendAt is a datagram a peer sends at a time since the start.
type sendAt struct {
	at  time.Duration
	pkt []byte
}

// paced plays a call in real time: a goroutine sends the datagrams from p
// to dst at their times while the test, as the mixing clock, reads a frame
// from s every 20 ms, ticks times.
func paced(t *testing.T, s *Stream, p *peer, dst netip.AddrPort, sends []sendAt, ticks int) []playedFrame {
	t.Helper()
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, x := range sends {
			time.Sleep(time.Until(start.Add(x.at)))
			_, _ = p.conn.WriteToUDPAddrPort(x.pkt, dst)
		}
	}()
	tick := time.NewTicker(pcm.FrameDuration)
	defer tick.Stop()
	var out []playedFrame
	for range ticks {
		<-tick.C
		var pf playedFrame
		before := s.c.own.concealed.Load()
		pf.ok = s.ReadFrame(&pf.f)
		pf.concealed = s.c.own.concealed.Load() != before
		out = append(out, pf)
	}
	<-done
	return out
}

// idStream is n packets of identifiable audio (see idPayload) of ptime p
// from peer pr, to be sent at times when(i).
func idStream(t testing.TB, pr *peer, c g711.Codec, pt uint8, n int, p time.Duration, when func(i int) time.Duration) []sendAt {
	samples := int(p / (time.Second / pcm.SampleRate))
	var out []sendAt
	for i := range n {
		h := rtpHeader(pt, pr.seq+uint16(i), pr.ts+uint32(i*samples), pr.ssrc)
		out = append(out, sendAt{when(i), marshal(t, h, idPayload(c, i, samples))})
	}
	pr.seq += uint16(n)
	pr.ts += uint32(n * samples)
	return out
}
