//go:build linux

package rtpio

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"

	"github.com/groupbridge/groupbridge/internal/testports"
	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/pcm"
)

// testRTCPInterval makes reports come every 30-90 ms in tests instead of
// every 2.5-7.5 s.
const testRTCPInterval = 60 * time.Millisecond

// rtcpEngine is a test engine whose streams report often.
func rtcpEngine(t testing.TB, pairs int) *Engine {
	t.Helper()
	e := testEngine(t, pairs)
	e.rtcpInterval = testRTCPInterval
	return e
}

func TestRxStats(t *testing.T) {
	type pkt struct {
		ssrc uint32
		seq  uint16
	}
	seqs := func(ssrc uint32, from uint16, n int, skip ...uint16) []pkt {
		var out []pkt
	next:
		for i := range n {
			s := from + uint16(i)
			for _, k := range skip {
				if s == k {
					continue next
				}
			}
			out = append(out, pkt{ssrc, s})
		}
		return out
	}
	tests := []struct {
		name     string
		pkts     []pkt
		expected uint64
		received uint64
		ext      uint32 // extended highest sequence number
	}{
		{"in order", seqs(1, 100, 10), 10, 10, 109},
		{"two lost", seqs(1, 100, 10, 103, 107), 10, 8, 109},
		{"duplicates count as received", append(seqs(1, 100, 5), pkt{1, 104}, pkt{1, 103}), 5, 7, 104},
		{"reordered", []pkt{{1, 10}, {1, 12}, {1, 11}, {1, 13}}, 4, 4, 13},
		{"wraps", seqs(1, 65530, 12), 12, 12, 65536 + 5},
		{"late packet across the wrap", []pkt{{1, 65535}, {1, 1}, {1, 0}}, 3, 3, 65536 + 1},
		{"new SSRC starts over", append(seqs(1, 100, 5), seqs(2, 7, 3)...), 3, 3, 9},
		{"one big jump is ignored", append(seqs(1, 100, 5), pkt{1, 20000}), 5, 5, 104},
		{"two in sequence after a jump restart", append(seqs(1, 100, 5), pkt{1, 20000}, pkt{1, 20001}, pkt{1, 20002}), 2, 2, 20002},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r rxStats
			for _, p := range tt.pkts {
				r.packet(p.ssrc, p.seq)
			}
			q := r.quality()
			if q.Expected != tt.expected || q.Received != tt.received || q.Lost != int64(tt.expected)-int64(tt.received) {
				t.Errorf("expected %d received %d lost %d; want %d, %d", q.Expected, q.Received, q.Lost, tt.expected, tt.received)
			}
			var b [24]byte
			r.writeBlock(b[:], time.Now())
			var rr rtcp.ReceptionReport
			if err := rr.Unmarshal(b[:]); err != nil {
				t.Fatal(err)
			}
			if rr.SSRC != tt.pkts[len(tt.pkts)-1].ssrc || rr.LastSequenceNumber != tt.ext {
				t.Errorf("block ssrc %d ext seq %d; want %d, %d", rr.SSRC, rr.LastSequenceNumber, tt.pkts[len(tt.pkts)-1].ssrc, tt.ext)
			}
			if lost := int64(int32(rr.TotalLost<<8) >> 8); lost != q.Lost {
				t.Errorf("block cumulative lost %d, want %d", lost, q.Lost)
			}
		})
	}
}

func TestRxStatsFractionPerInterval(t *testing.T) {
	var r rxStats
	var b [24]byte
	block := func() rtcp.ReceptionReport {
		r.writeBlock(b[:], time.Now())
		var rr rtcp.ReceptionReport
		if err := rr.Unmarshal(b[:]); err != nil {
			t.Fatal(err)
		}
		return rr
	}
	for s := range uint16(100) { // interval 1: 1 in 4 lost
		if s%4 != 3 {
			r.packet(9, s)
		}
	}
	r.packet(9, 100) // so 101 were expected and 25 lost
	rr := block()
	if want := uint8(25 * 256 / 101); rr.FractionLost != want || rr.TotalLost != 25 {
		t.Errorf("first interval: fraction %d lost %d, want %d and 25", rr.FractionLost, rr.TotalLost, want)
	}
	if r.heard() {
		t.Error("heard() right after a report")
	}
	for s := uint16(101); s < 151; s++ { // interval 2: nothing lost
		r.packet(9, s)
	}
	if !r.heard() {
		t.Error("heard() false after new packets")
	}
	rr = block()
	if rr.FractionLost != 0 || rr.TotalLost != 25 {
		t.Errorf("second interval: fraction %d lost %d, want 0 and 25", rr.FractionLost, rr.TotalLost)
	}
	if q := r.quality(); q.FractionLost != 0 || q.Lost != 25 {
		t.Errorf("quality %+v", q)
	}
	for s := uint16(151); s < 160; s += 3 { // interval 3: more duplicates than losses is no loss
		r.packet(9, s)
		r.packet(9, s)
		r.packet(9, s)
	}
	if rr = block(); rr.FractionLost != 0 {
		t.Errorf("duplicates made fraction %d", rr.FractionLost)
	}
	// Almost everything lost in an interval.
	r.packet(9, 1000)
	r.packet(9, 1001)
	r.packet(9, 2999)
	if rr = block(); rr.FractionLost != 255 {
		t.Errorf("almost all lost: fraction %d, want 255", rr.FractionLost)
	}
}

func TestJitterEstimate(t *testing.T) {
	tests := []struct {
		name    string
		offsets []int // arrival minus send time per packet, timestamp units
		min     uint32
		max     uint32 // bounds of the final estimate, timestamp units
	}{
		{"steady", []int{5, 5, 5, 5, 5, 5, 5, 5}, 0, 0},
		{"constant delay is no jitter", []int{400, 400, 400, 400}, 0, 0},
		// Alternating 0 and 160 units (20 ms): every step is 160; the
		// estimate converges toward 160 from below.
		{"alternating", alternate(200, 0, 160), 150, 160},
		{"one spike decays", append([]int{0, 800}, make([]int, 200)...), 0, 1},
		{"a clock jump is not jitter", []int{0, 0, 30 * pcm.SampleRate, 30 * pcm.SampleRate}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r rxStats
			r.packet(1, 0)
			for i, off := range tt.offsets {
				ts := uint32(i * 160)
				r.arrival(ts+1000, ts+uint32(off)) // any constant offset between the clocks
			}
			if got := r.jitter >> 4; got < tt.min || got > tt.max {
				t.Errorf("jitter %d units, want %d-%d", got, tt.min, tt.max)
			}
		})
	}
}

func alternate(n, a, b int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = a
		if i%2 == 1 {
			out[i] = b
		}
	}
	return out
}

func TestNTPTime(t *testing.T) {
	tm := time.Date(2026, 11, 25, 12, 0, 0, 500_000_000, time.UTC)
	got := ntpTime(tm)
	if sec := got >> 32; sec != uint64(tm.Unix())+2208988800 {
		t.Errorf("seconds %d", sec)
	}
	if frac := uint32(got); frac != 1<<31 {
		t.Errorf("fraction %#x, want half a second", frac)
	}
}

// compound marshals pion packets into one datagram.
func compound(t testing.TB, pkts ...rtcp.Packet) []byte {
	t.Helper()
	b, err := rtcp.Marshal(pkts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseRTCP(t *testing.T) {
	const ours = 0xABCD
	block := rtcp.ReceptionReport{SSRC: ours, FractionLost: 64, TotalLost: 3, LastSequenceNumber: 77, Jitter: 40, LastSenderReport: 0x11112222, Delay: 65536}
	other := rtcp.ReceptionReport{SSRC: 99, TotalLost: 1000}
	sr := &rtcp.SenderReport{SSRC: 5, NTPTime: 0x0123456789ABCDEF, Reports: []rtcp.ReceptionReport{other, block}}
	rr := &rtcp.ReceiverReport{SSRC: 5, Reports: []rtcp.ReceptionReport{block}}
	sdes := rtcp.NewCNAMESourceDescription(5, "peer@example")
	bye := &rtcp.Goodbye{Sources: []uint32{5}}
	valid := compound(t, sr, sdes)
	padded := func() []byte {
		b := compound(t, rr, sdes)
		// Pad the SDES by four octets: set P, extend the length, append.
		n := len(b) - sdes.MarshalSize()
		b[n] |= 0x20
		b[n+3] += 1
		return append(b, 0, 0, 0, 4)
	}()
	tests := []struct {
		name  string
		pkt   []byte
		ok    bool
		sr    bool
		block bool
	}{
		{"SR with blocks and SDES", valid, true, true, true},
		{"RR alone", compound(t, rr), true, false, true},
		{"empty RR", compound(t, &rtcp.ReceiverReport{SSRC: 5}), true, false, false},
		{"RR, SDES, BYE", compound(t, rr, sdes, bye), true, false, true},
		{"two RRs", compound(t, &rtcp.ReceiverReport{SSRC: 5}, rr, sdes), true, false, true},
		{"padding on the last packet", padded, true, false, true},
		{"empty", nil, false, false, false},
		{"short header", []byte{0x80, 201, 0}, false, false, false},
		{"SDES first", compound(t, sdes, rr), false, false, false},
		{"BYE alone", compound(t, bye), false, false, false},
		{"version 1", func() []byte { b := compound(t, rr); b[0] = b[0]&0x3f | 0x40; return b }(), false, false, false},
		{"length beyond the datagram", valid[:len(valid)-4], false, false, false},
		{"trailing garbage", append(compound(t, rr), 1, 2, 3), false, false, false},
		{"count beyond the packet", func() []byte { b := compound(t, rr); b[0]++; return b }(), false, false, false},
		{"SR too short", []byte{0x80, 200, 0, 1, 0, 0, 0, 5}, false, false, false},
		{"padding on the first of two", func() []byte { b := compound(t, rr, sdes); b[0] |= 0x20; return b }(), false, false, false},
		{"padding count zero", func() []byte { b := padded; b = append([]byte(nil), b...); b[len(b)-1] = 0; return b }(), false, false, false},
		{"padding count beyond the packet", func() []byte { b := append([]byte(nil), padded...); b[len(b)-1] = 200; return b }(), false, false, false},
	}
	p := newPollerState(nil, 0, -1)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, ok := p.parseRTCP(tt.pkt, ours)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			if f.sr != tt.sr || f.haveBlock != tt.block {
				t.Errorf("sr %v block %v, want %v, %v", f.sr, f.haveBlock, tt.sr, tt.block)
			}
			if f.sr && (f.srSSRC != 5 || f.srNTP != sr.NTPTime) {
				t.Errorf("sender report ssrc %d ntp %#x", f.srSSRC, f.srNTP)
			}
			if f.haveBlock && f.block != block {
				t.Errorf("block %+v, want %+v", f.block, block)
			}
		})
	}
}

// TestHandleRTCPFigures drives handleRTCP directly: figures from the
// caller's reports, RTT against our own SR, nothing from a stranger.
func TestHandleRTCPFigures(t *testing.T) {
	caller := netip.MustParseAddrPort("127.0.0.1:5000")
	s := bareStream(pcmu(caller))
	start := time.Now()
	ntp := ntpTime(start)
	s.q.sent[0] = sentSR{lsr: uint32(ntp >> 16), at: start}
	report := func(b rtcp.ReceptionReport) []byte {
		return compound(t, &rtcp.ReceiverReport{SSRC: 7, Reports: []rtcp.ReceptionReport{b}}, rtcp.NewCNAMESourceDescription(7, "x"))
	}
	feed := func(pkt []byte, from netip.AddrPort, at time.Time) {
		s.rx.mu.Lock()
		s.handleRTCP(s.p, pkt, false, from, at)
		s.rx.mu.Unlock()
	}

	// A stranger's report is ignored, however convincing.
	stranger := netip.MustParseAddrPort("192.0.2.66:5001")
	feed(report(rtcp.ReceptionReport{SSRC: s.ssrc, FractionLost: 255, TotalLost: 9999}), stranger, start)
	if q := s.Quality(); q.Outbound.Reports != 0 {
		t.Fatalf("a stranger's report was used: %+v", q.Outbound)
	}

	// The caller (from its RTCP port) reports 25% loss, 5 lost in all
	// (sign-extended from 24 bits), 80 units of jitter, and echoes our SR
	// after holding it for half a second; it arrives 600 ms after we sent.
	at := start.Add(600 * time.Millisecond)
	feed(report(rtcp.ReceptionReport{
		SSRC: s.ssrc, FractionLost: 64, TotalLost: 5, Jitter: 80,
		LastSenderReport: uint32(ntp >> 16), Delay: 65536 / 2,
	}), netip.AddrPortFrom(caller.Addr(), 5001), at)
	q := s.Quality().Outbound
	if q.Reports != 1 || !q.LastReport.Equal(at) || q.FractionLost != 0.25 || q.CumulativeLost != 5 || q.Jitter != 10*time.Millisecond {
		t.Errorf("outbound %+v", q)
	}
	if q.RTT != 100*time.Millisecond {
		t.Errorf("RTT %v, want 100ms", q.RTT)
	}
	// Reports now go to the port RTCP came from.
	if s.tx.rtcpSeen != netip.AddrPortFrom(caller.Addr(), 5001) {
		t.Errorf("RTCP destination %s not the source seen", s.tx.rtcpSeen)
	}

	// Negative cumulative loss (duplicates), an unknown LSR: RTT is kept.
	feed(report(rtcp.ReceptionReport{SSRC: s.ssrc, TotalLost: 0xfffffe, LastSenderReport: 12345}), caller, at.Add(time.Second))
	if q := s.Quality().Outbound; q.CumulativeLost != -2 || q.RTT != 100*time.Millisecond || q.Reports != 2 {
		t.Errorf("after a report with an unknown LSR: %+v", q)
	}
	// A block about another SSRC says nothing about us.
	feed(report(rtcp.ReceptionReport{SSRC: s.ssrc + 1, TotalLost: 77}), caller, at.Add(2*time.Second))
	if q := s.Quality().Outbound; q.Reports != 2 {
		t.Errorf("a block about someone else was used: %+v", q)
	}
	// The caller's SR is remembered for our next block's LSR and DLSR.
	s.rx.mu.Lock()
	s.q.mu.Lock()
	s.q.in.packet(7, 1) // the caller's audio, SSRC 7
	s.q.mu.Unlock()
	s.rx.mu.Unlock()
	srAt := at.Add(3 * time.Second)
	feed(compound(t, &rtcp.SenderReport{SSRC: 7, NTPTime: 0x0000AAAABBBB0000}, rtcp.NewCNAMESourceDescription(7, "x")), caller, srAt)
	var b [24]byte
	s.q.in.writeBlock(b[:], srAt.Add(250*time.Millisecond))
	var rr rtcp.ReceptionReport
	if err := rr.Unmarshal(b[:]); err != nil {
		t.Fatal(err)
	}
	if rr.LastSenderReport != 0xAAAABBBB || rr.Delay != 65536/4 {
		t.Errorf("our block: LSR %#x DLSR %d, want 0xAAAABBBB and %d", rr.LastSenderReport, rr.Delay, 65536/4)
	}

	st := s.Stats().RTCP
	if st != (RTCPStats{Received: 4, Foreign: 1}) {
		t.Errorf("counters %+v", st)
	}
	feed([]byte{0x80, 201, 0, 9}, caller, srAt)                    // length beyond the datagram
	feed(report(rtcp.ReceptionReport{SSRC: s.ssrc}), caller, srAt) // valid
	s.rx.mu.Lock()                                                 // the same, truncated by the kernel
	s.handleRTCP(s.p, report(rtcp.ReceptionReport{SSRC: s.ssrc}), true, caller, srAt)
	s.rx.mu.Unlock()
	if st := s.Stats().RTCP; st != (RTCPStats{Received: 5, Malformed: 2, Foreign: 1}) {
		t.Errorf("counters after malformed %+v", st)
	}
}

// listenPair binds an RTP/RTCP socket pair on adjacent ports, as a phone
// does, on ports of the test's own (testports.Range).
func listenPair(t testing.TB) (rtpConn, rtcpConn *net.UDPConn) {
	t.Helper()
	port := testports.Range(t, 2)
	a, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loop4, uint16(port))))
	if err != nil {
		t.Fatal(err)
	}
	b, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loop4, uint16(port+1))))
	if err != nil {
		_ = a.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	return a, b
}

// readRTCP reads datagrams from c until one is a report of s, writing a
// frame on s whenever c has nothing to read, so that reports fall due and
// no report is left queued behind the one returned.
func readRTCP(t *testing.T, c *net.UDPConn, s *Stream) rtcp.CompoundPacket {
	t.Helper()
	buf := make([]byte, 2048)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
		n, err := c.Read(buf)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			s.WriteFrame(frameOf(0))
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if n < 8 || buf[1] < 200 || buf[1] > 204 || binary.BigEndian.Uint32(buf[4:]) != s.ssrc {
			continue // our RTP, or a stray datagram of another test on the machine
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			t.Fatalf("our report does not parse: %v", err)
		}
		return pkts
	}
	t.Fatal("no report came")
	return nil
}

func TestReportsOnTheWire(t *testing.T) {
	e := rtcpEngine(t, 1)
	prtp, prtcp := listenPair(t)
	p := &peer{t: t, conn: prtp, ssrc: 0x5eed, seq: 65533, ts: 1000}
	s, err := e.Open(pcmu(p.addr()))
	if err != nil {
		t.Fatal(err)
	}
	for range 5 { // sequence 65533..1, across the wrap
		p.send(s.LocalAddr(), 0, tone(g711.PCMU, 160, 0))
	}
	waitIn(t, s, 5)

	// While audio goes out: SR + SDES to RTP port + 1, one block about
	// the caller.
	pkts := readRTCP(t, prtcp, s)
	if err := pkts.Validate(); err != nil {
		t.Fatalf("not a valid compound packet: %v", err)
	}
	sr, ok := pkts[0].(*rtcp.SenderReport)
	if !ok {
		t.Fatalf("first packet %T, want an SR", pkts[0])
	}
	cname, _ := pkts.CNAME()
	if sr.SSRC != s.ssrc || len(cname) != cnameLen || cname != e.cname {
		t.Errorf("SR ssrc %#x cname %q; want %#x and the engine's", sr.SSRC, cname, s.ssrc)
	}
	if sr.PacketCount == 0 || sr.OctetCount != 160*sr.PacketCount {
		t.Errorf("sender info: %d packets, %d octets", sr.PacketCount, sr.OctetCount)
	}
	if d := time.Since(time.Unix(int64(sr.NTPTime>>32)-ntpEpochOffset, 0)); d < -2*time.Second || d > 2*time.Second {
		t.Errorf("NTP time %#x is %v away from now", sr.NTPTime, d)
	}
	if len(sr.Reports) != 1 {
		t.Fatalf("%d report blocks, want 1", len(sr.Reports))
	}
	if b := sr.Reports[0]; b.SSRC != p.ssrc || b.LastSequenceNumber != 65536+1 || b.TotalLost != 0 || b.FractionLost != 0 || b.LastSenderReport != 0 {
		t.Errorf("block %+v", b)
	}

	// The caller sends its RTCP from its RTP port: our reports follow it.
	// Its SR is echoed in our next block.
	peerSR := &rtcp.SenderReport{SSRC: p.ssrc, NTPTime: ntpTime(time.Now())}
	p.sendRaw(netip.AddrPortFrom(s.LocalAddr().Addr(), s.LocalAddr().Port()+1), compound(t, peerSR, rtcp.NewCNAMESourceDescription(p.ssrc, "p")))
	waitFor(t, "the caller's SR", func() bool { return s.Stats().RTCP.Received == 1 })
	p.send(s.LocalAddr(), 0, tone(g711.PCMU, 160, 0)) // so that the next report has a block
	waitIn(t, s, 7)
	pkts = readRTCP(t, prtp, s)
	sr, ok = pkts[0].(*rtcp.SenderReport)
	if !ok || len(sr.Reports) != 1 || sr.Reports[0].LastSenderReport != uint32(peerSR.NTPTime>>16) {
		t.Fatalf("report after the caller's SR: %v", pkts)
	}

	// Sending off: a receiver report, with no block while the caller is
	// silent too.
	s.SetDirection(false, true)
	pkts = readRTCP(t, prtp, s)
	rr, ok := pkts[0].(*rtcp.ReceiverReport)
	if !ok || rr.SSRC != s.ssrc {
		t.Fatalf("with sending off: %v, want an RR", pkts)
	}
	if len(rr.Reports) != 0 {
		t.Errorf("RR has %d blocks about a silent caller", len(rr.Reports))
	}
	if st := s.Stats(); st.RTCP.Sent < 3 || st.Dropped.SendError != 0 {
		t.Errorf("stats %+v", st)
	}
}

// clock plays the mixing clock for streams: every 20 ms it reads and
// writes a frame on each, until done holds.
func clock(t *testing.T, what string, done func() bool, streams ...*Stream) {
	t.Helper()
	tick := time.NewTicker(pcm.FrameDuration)
	defer tick.Stop()
	deadline := time.Now().Add(15 * time.Second)
	var f pcm.Frame
	for k := 0; !done(); k++ {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		for _, s := range streams {
			s.ReadFrame(&f)
			s.WriteFrame(frameOf(k))
		}
		<-tick.C
	}
}

func TestRTCPBetweenStreams(t *testing.T) {
	e := rtcpEngine(t, 2)
	a, err := e.Open(pcmu(netip.AddrPort{}))
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.Open(pcmu(a.LocalAddr()))
	if err != nil {
		t.Fatal(err)
	}
	a.Update(pcmu(b.LocalAddr()))
	measured := func(s *Stream) bool { q := s.Quality().Outbound; return q.Reports >= 3 && q.RTT > 0 }
	clock(t, "reports with RTT both ways", func() bool { return measured(a) && measured(b) }, a, b)
	for _, s := range []*Stream{a, b} {
		q := s.Quality()
		t.Logf("%s: %+v", s.LocalAddr(), q)
		if o := q.Outbound; o.RTT <= 0 || o.RTT > time.Second || o.CumulativeLost != 0 || o.FractionLost != 0 || o.Jitter > time.Second {
			t.Errorf("%s outbound %+v", s.LocalAddr(), o)
		}
		if in := q.Inbound; in.Received == 0 || in.Lost != 0 || in.Expected != in.Received || in.Jitter > time.Second {
			t.Errorf("%s inbound %+v", s.LocalAddr(), in)
		}
		if st := s.Stats(); st.RTCP.Sent < 3 || st.RTCP.Received < 3 || st.RTCP.Malformed != 0 || st.RTCP.Foreign != 0 {
			t.Errorf("%s rtcp %+v", s.LocalAddr(), st.RTCP)
		}
	}
	if q := a.Quality(); q.Inbound.SSRC != b.ssrc {
		t.Errorf("a's inbound SSRC %#x, want b's %#x", q.Inbound.SSRC, b.ssrc)
	}
}

// relay forwards RTP and RTCP between two streams through its own port
// pairs, dropping the RTP packets from a to b for which drop says so.
type relay struct {
	aRTP, aRTCP, bRTP, bRTCP *net.UDPConn
	forwarded, dropped       atomic.Int64
}

func newRelay(t *testing.T, a, b netip.AddrPort, drop func(n int) bool) *relay {
	r := &relay{}
	r.aRTP, r.aRTCP = listenPair(t)
	r.bRTP, r.bRTCP = listenPair(t)
	rtcpOf := func(ap netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(ap.Addr(), ap.Port()+1) }
	pump := func(in, out *net.UDPConn, dst netip.AddrPort, drop func(int) bool) {
		buf := make([]byte, 2048)
		for n := 0; ; n++ {
			k, err := in.Read(buf)
			if err != nil {
				return // closed at the end of the test
			}
			if drop != nil && drop(n) {
				r.dropped.Add(1)
				continue
			}
			r.forwarded.Add(1)
			_, _ = out.WriteToUDPAddrPort(buf[:k], dst)
		}
	}
	go pump(r.aRTP, r.bRTP, b, drop) // a's audio
	go pump(r.bRTP, r.aRTP, a, nil)  // b's audio
	go pump(r.aRTCP, r.bRTCP, rtcpOf(b), nil)
	go pump(r.bRTCP, r.aRTCP, rtcpOf(a), nil)
	return r
}

func (r *relay) addrA() netip.AddrPort { return r.aRTP.LocalAddr().(*net.UDPAddr).AddrPort() }
func (r *relay) addrB() netip.AddrPort { return r.bRTP.LocalAddr().(*net.UDPAddr).AddrPort() }

func TestRTCPReportsLoss(t *testing.T) {
	e := rtcpEngine(t, 2)
	a, err := e.Open(pcmu(netip.AddrPort{}))
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.Open(pcmu(netip.AddrPort{}))
	if err != nil {
		t.Fatal(err)
	}
	// Every other packet of a's audio is lost, so every report that
	// shows a loss shows a fraction lost of at most a half (exactly a half
	// after the first: each packet received follows one lost).
	r := newRelay(t, a.LocalAddr(), b.LocalAddr(), func(n int) bool { return n%2 == 1 })
	a.Update(pcmu(r.addrA()))
	b.Update(pcmu(r.addrB()))
	var qa, qb Quality
	clock(t, "a report of loss", func() bool {
		qa, qb = a.Quality(), b.Quality()
		return qa.Outbound.CumulativeLost > 0 && qa.Outbound.RTT > 0 && qb.Outbound.Reports > 0
	}, a, b)
	qb = b.Quality()
	t.Logf("a: %+v\nb: %+v\nrelay dropped %d", qa, qb, r.dropped.Load())
	if o := qa.Outbound; o.FractionLost <= 0 || o.FractionLost > 0.5 || o.CumulativeLost > r.dropped.Load() {
		t.Errorf("a's outbound %+v with %d dropped", o, r.dropped.Load())
	}
	if in := qb.Inbound; in.Lost < qa.Outbound.CumulativeLost || in.Lost > r.dropped.Load() || in.Expected != in.Received+uint64(in.Lost) {
		t.Errorf("b's inbound %+v; a was told %d lost, the relay dropped %d", in, qa.Outbound.CumulativeLost, r.dropped.Load())
	}
	if o := qb.Outbound; o.CumulativeLost != 0 {
		t.Errorf("nothing was dropped toward a, yet b's outbound is %+v", o)
	}
}

// TestRxStatsLostAcrossRestarts: the loss total keeps what earlier streams
// of the call lost when the source changes SSRC or jumps its sequence, and
// a stream whose duplicates outnumber its losses subtracts nothing.
func TestRxStatsLostAcrossRestarts(t *testing.T) {
	type pkt struct {
		ssrc uint32
		seq  uint16
	}
	tests := []struct {
		name string
		pkts []pkt
		want uint64
	}{
		{"clean", []pkt{{1, 10}, {1, 11}, {1, 12}}, 0},
		{"gap", []pkt{{1, 10}, {1, 13}}, 2},
		{"gap then new ssrc", []pkt{{1, 10}, {1, 13}, {2, 500}, {2, 501}}, 2},
		{"gaps in both ssrcs", []pkt{{1, 10}, {1, 12}, {2, 500}, {2, 503}}, 3},
		{"gap then sequence jump", []pkt{{1, 10}, {1, 12}, {1, 40000}, {1, 40001}, {1, 40003}}, 2},
		{"duplicates do not offset a later stream's loss", []pkt{{1, 10}, {1, 10}, {1, 10}, {2, 7}, {2, 9}}, 1},
		{"across the wrap", []pkt{{1, 65534}, {1, 65535}, {1, 1}}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r rxStats
			for _, p := range tt.pkts {
				r.packet(p.ssrc, p.seq)
			}
			if got := r.lost(); got != tt.want {
				t.Errorf("lost %d, want %d", got, tt.want)
			}
		})
	}
}
