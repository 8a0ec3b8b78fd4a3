//go:build linux

package rtpio

import (
	"encoding/binary"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/groupbridge/groupbridge/media/dtmf"
	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/pcm"
)

// FuzzHandle feeds arbitrary datagrams to the receive path: it must not
// panic, must count each datagram under at most one drop reason, must
// leave a jitter buffer that plays, and must never reject a header pion
// accepts.
func FuzzHandle(f *testing.F) {
	seed := func(h rtp.Header, payload []byte) []byte {
		b, err := (&rtp.Packet{Header: h, Payload: payload}).Marshal()
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	var ev [dtmf.EventLen]byte
	_, _ = dtmf.Event{Code: 11, End: true, Volume: 10, Duration: 800}.MarshalTo(ev[:])
	ext := rtpHeader(0, 1, 2, 3)
	ext.Extension, ext.ExtensionProfile = true, 0xBEDE
	_ = ext.SetExtension(1, []byte{0xAA})
	f.Add(seed(rtpHeader(0, 1, 160, 3), make([]byte, 160)), uint8(0))
	f.Add(seed(rtpHeader(0, 2, 160, 3), make([]byte, maxPayload)), uint8(0))
	f.Add(seed(rtpHeader(101, 3, 320, 3), ev[:]), uint8(0))
	f.Add(seed(rtpHeader(13, 4, 480, 3), []byte{40}), uint8(0))
	f.Add(seed(ext, make([]byte, 80)), uint8(1))
	f.Add([]byte{0xa0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 9, 9, 2}, uint8(0))
	f.Add([]byte("not rtp at all"), uint8(2))
	caller := netip.MustParseAddrPort("127.0.0.1:5000")
	sources := []netip.AddrPort{caller, netip.MustParseAddrPort("127.0.0.2:5000"), netip.MustParseAddrPort("[::1]:5000")}
	f.Fuzz(func(t *testing.T, pkt []byte, src uint8) {
		s := bareStream(Params{Remote: caller, Codec: g711.PCMU, DTMFPT: 101, OnDigit: func(byte) {}})
		from := sources[int(src)%len(sources)]
		now := time.Now()
		// Twice, and once more a second later: latching and the
		// duplicate filter see repeats and a silent source.
		for _, at := range []time.Duration{0, 0, time.Second} {
			before := dropsOf(&s.c.own)
			s.rx.mu.Lock()
			s.p.nDigits = 0
			s.handle(s.p, pkt, from, now.Add(at))
			s.rx.mu.Unlock()
			after := dropsOf(&s.c.own)
			n := 0
			for k := range after {
				n += int(after[k] - before[k])
			}
			if n > 1 {
				t.Fatalf("one datagram counted under %d drop reasons: %v -> %v", n, before, after)
			}
			var f pcm.Frame
			s.readFrame(&f, now.Add(at+pcm.FrameDuration))
		}
		var p rtp.Packet
		if len(pkt) > 0 && pkt[0]>>6 == 2 && p.Unmarshal(pkt) == nil && !validRTP(pkt) {
			t.Fatal("validRTP rejects a packet pion parses")
		}
	})
}

// BenchmarkReceivePath is the per-packet work of a poller after recvfrom
// (header checks, pion parse, latching, RTCP statistics, G.711 decode and
// the jitter buffer's Push) plus the clock's ReadFrame (the jitter
// buffer's Pop), on a made-up time line of one packet and one frame per
// 20 ms. With inband, ReadFrame also runs the in-band DTMF filter, as for
// a caller without telephone-event.
func BenchmarkReceivePath(b *testing.B) {
	for _, inband := range []bool{false, true} {
		name := "telephone-event"
		p := pcmu(netip.MustParseAddrPort("127.0.0.1:5000"))
		if inband {
			name, p.DTMFPT = "inband", -1
		}
		b.Run(name, func(b *testing.B) {
			s := bareStream(p)
			var buf [rtpHeaderLen + pcm.FrameSamples]byte
			h := rtpHeader(0, 0, 0, 0x1234)
			if _, err := h.MarshalTo(buf[:]); err != nil {
				b.Fatal(err)
			}
			copy(buf[rtpHeaderLen:], tone(g711.PCMU, 160, 0))
			now := time.Now()
			var f pcm.Frame
			var seq uint16
			var ts uint32
			b.ReportAllocs()
			for b.Loop() {
				seq++
				ts += pcm.FrameSamples
				now = now.Add(pcm.FrameDuration)
				binary.BigEndian.PutUint16(buf[2:], seq)
				binary.BigEndian.PutUint32(buf[4:], ts)
				s.rx.mu.Lock()
				s.handle(s.p, buf[:], p.Remote, now)
				s.rx.mu.Unlock()
				s.readFrame(&f, now.Add(pcm.FrameDuration/2))
			}
			if st := s.Stats(); st.Dropped != (Drops{}) || st.Playout.Accepted == 0 {
				b.Fatalf("drops %+v, playout %+v", st.Dropped, st.Playout)
			}
		})
	}
}

// BenchmarkWriteFrame sends one frame per operation over loopback to a
// peer that drains its socket.
func BenchmarkWriteFrame(b *testing.B) {
	e := testEngine(b, 1)
	p := newPeer(b, loop4)
	s, err := e.Open(pcmu(p.addr()))
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, err := p.conn.Read(buf); err != nil {
				return
			}
		}
	}()
	f := frameOf(1)
	b.ReportAllocs()
	for b.Loop() {
		s.WriteFrame(f)
	}
	st := s.Stats()
	b.ReportMetric(float64(st.Dropped.SendError)/float64(b.N), "senderr/op")
}

// BenchmarkRoundTrip is one frame through real sockets: WriteFrame on one
// stream, the kernel, the poller's next look, recvfrom, parse and decode
// on the other, then its ReadFrame. Since the pollers look every
// batchWindow instead of waking per packet, its time is the latency a lone
// packet sees (about half the window), not CPU.
func BenchmarkRoundTrip(b *testing.B) {
	e := testEngine(b, 2)
	tx, err := e.Open(pcmu(netip.AddrPort{}))
	if err != nil {
		b.Fatal(err)
	}
	rx, err := e.Open(pcmu(tx.LocalAddr()))
	if err != nil {
		b.Fatal(err)
	}
	tx.Update(pcmu(rx.LocalAddr()))
	f := frameOf(2)
	var out pcm.Frame
	b.ReportAllocs()
	var n uint64
	for b.Loop() {
		tx.WriteFrame(f)
		n++
		for rx.c.own.packetsIn.Load() < n {
			runtime.Gosched()
		}
		rx.ReadFrame(&out)
	}
	if st := rx.Stats(); st.Dropped != (Drops{}) {
		b.Fatalf("receiver drops %+v", st.Dropped)
	}
}

// BenchmarkFanIn spreads packets over a thousand streams, as a bridge full
// of callers sees them: one operation is one packet sent by a peer socket
// and received, parsed and buffered by a poller.
func BenchmarkFanIn(b *testing.B) {
	const streams = 1000
	e := testEngine(b, streams+streams/10) // room for ports taken meanwhile
	p := newPeer(b, loop4)
	var dst []netip.AddrPort
	var ss []*Stream
	for range streams {
		s, err := e.Open(pcmu(p.addr()))
		if err != nil {
			b.Fatal(err)
		}
		ss = append(ss, s)
		dst = append(dst, s.LocalAddr())
	}
	pkt := marshal(b, rtpHeader(0, 0, 0, 0x4321), tone(g711.PCMU, 160, 0))
	var f pcm.Frame
	var sent uint64
	b.ReportAllocs()
	for b.Loop() {
		i := int(sent % streams)
		if i == 0 {
			binary.BigEndian.PutUint16(pkt[2:], uint16(sent/streams))
			// Keep the kernel's socket buffers from overflowing: wait
			// for the pollers to catch up once per round, and play the
			// audio out as the clock would.
			for e.Stats().PacketsIn < sent {
				runtime.Gosched()
			}
			for _, s := range ss {
				s.ReadFrame(&f)
			}
		}
		if _, err := p.conn.WriteToUDPAddrPort(pkt, dst[i]); err != nil {
			b.Fatal(err)
		}
		sent++
	}
	for e.Stats().PacketsIn < sent {
		runtime.Gosched()
	}
}

// FuzzHandleRTCP feeds arbitrary datagrams to the RTCP receive path: it
// must not panic, must count each datagram exactly once, must keep the
// figures in range, and must accept every compound packet pion accepts
// whose first packet is an SR or RR and which has no padding.
func FuzzHandleRTCP(f *testing.F) {
	const ours = 0x1234
	block := rtcp.ReceptionReport{SSRC: ours, FractionLost: 12, TotalLost: 0xfffff0, Jitter: 99, LastSenderReport: 7, Delay: 100}
	sdes := rtcp.NewCNAMESourceDescription(9, "fuzz")
	for _, pkts := range [][]rtcp.Packet{
		{&rtcp.SenderReport{SSRC: 9, NTPTime: 1 << 40, Reports: []rtcp.ReceptionReport{block}}, sdes},
		{&rtcp.ReceiverReport{SSRC: 9, Reports: []rtcp.ReceptionReport{block, {SSRC: 1}}}, sdes, &rtcp.Goodbye{Sources: []uint32{9}}},
		{&rtcp.ReceiverReport{SSRC: 9}},
		{sdes},
	} {
		b, err := rtcp.Marshal(pkts)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint8(0))
	}
	f.Add([]byte{0xa0, 201, 0, 1, 0, 0, 0, 4}, uint8(0))
	f.Add([]byte("not rtcp"), uint8(1))
	caller := netip.MustParseAddrPort("127.0.0.1:5000")
	sources := []netip.AddrPort{caller, netip.MustParseAddrPort("127.0.0.1:5001"), netip.MustParseAddrPort("127.0.0.2:5001")}
	f.Fuzz(func(t *testing.T, pkt []byte, src uint8) {
		s := bareStream(pcmu(caller))
		s.ssrc = ours
		from := sources[int(src)%len(sources)]
		before := s.Stats().RTCP
		s.rx.mu.Lock()
		s.handleRTCP(s.p, pkt, false, from, time.Now())
		s.rx.mu.Unlock()
		after := s.Stats().RTCP
		if n := after.Received + after.Malformed + after.Foreign - before.Received - before.Malformed - before.Foreign; n != 1 {
			t.Fatalf("counted %d times: %+v", n, after)
		}
		q := s.Quality()
		if o := q.Outbound; o.FractionLost < 0 || o.FractionLost >= 1 || o.RTT < 0 || o.Jitter < 0 {
			t.Fatalf("figures out of range: %+v", o)
		}
		if from.Addr() != caller.Addr() {
			if after.Foreign != 1 || q.Outbound.Reports != 0 {
				t.Fatalf("a stranger's datagram was used: %+v", after)
			}
			return
		}
		pkts, err := rtcp.Unmarshal(pkt)
		if err != nil || len(pkt) < 2 || (pkt[1] != byte(rtcp.TypeSenderReport) && pkt[1] != byte(rtcp.TypeReceiverReport)) {
			return
		}
		for rest := pkt; len(rest) >= 4; rest = rest[(int(binary.BigEndian.Uint16(rest[2:]))+1)*4:] {
			if rest[0]&0x20 != 0 {
				return // padding: pion does not check it
			}
		}
		if after.Received != 1 {
			t.Fatalf("rejected what pion parses: %v", pkts)
		}
	})
}

// BenchmarkRTCPReceive is the poller's work for one compound report from
// the caller: source check, parse with pion into reused structs, figures.
func BenchmarkRTCPReceive(b *testing.B) {
	caller := netip.MustParseAddrPort("127.0.0.1:5000")
	s := bareStream(pcmu(caller))
	now := time.Now()
	ntp := ntpTime(now)
	s.q.sent[0] = sentSR{lsr: uint32(ntp >> 16), at: now.Add(-10 * time.Millisecond)}
	pkt, err := rtcp.Marshal([]rtcp.Packet{
		&rtcp.SenderReport{SSRC: 9, NTPTime: ntp, Reports: []rtcp.ReceptionReport{{SSRC: s.ssrc, TotalLost: 3, Jitter: 40, LastSenderReport: uint32(ntp >> 16), Delay: 300}}},
		rtcp.NewCNAMESourceDescription(9, "benchmark-peer"),
	})
	if err != nil {
		b.Fatal(err)
	}
	from := netip.AddrPortFrom(caller.Addr(), 5001)
	b.ReportAllocs()
	for b.Loop() {
		s.rx.mu.Lock()
		s.handleRTCP(s.p, pkt, false, from, now)
		s.rx.mu.Unlock()
	}
	if st := s.Stats().RTCP; st.Malformed != 0 || s.Quality().Outbound.RTT == 0 {
		b.Fatalf("reports not used: %+v", st)
	}
}

// BenchmarkRTCPSend builds and sends one compound report (SR with a block
// and SDES) per operation over loopback.
func BenchmarkRTCPSend(b *testing.B) {
	e := testEngine(b, 1)
	prtp, prtcp := listenPair(b)
	s, err := e.Open(pcmu(prtp.LocalAddr().(*net.UDPAddr).AddrPort()))
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, err := prtcp.Read(buf); err != nil {
				return
			}
		}
	}()
	s.WriteFrame(frameOf(0)) // a sender from now on
	now := time.Now()
	var seq uint16
	b.ReportAllocs()
	for b.Loop() {
		seq++
		s.q.mu.Lock()
		s.q.in.packet(77, seq) // heard since the last report: a block
		s.q.mu.Unlock()
		s.tx.mu.Lock()
		s.tx.sentSinceReport = true
		s.sendRTCP(now)
		s.tx.mu.Unlock()
	}
	if st := s.Stats(); st.RTCP.Sent == 0 {
		b.Fatalf("nothing sent: %+v", st)
	}
}
