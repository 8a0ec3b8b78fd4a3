package rtpio

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/groupbridge/groupbridge/media/dtmf"
	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/pcm"
)

var codecs = []struct {
	name  string
	codec g711.Codec
	pt    uint8
}{
	{"PCMU", g711.PCMU, 0},
	{"PCMA", g711.PCMA, 8},
}

func TestWriteFrameOnTheWire(t *testing.T) {
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			e := testEngine(t, 1)
			p := newPeer(t, loop4)
			s, err := e.Open(Params{Remote: p.addr(), Codec: c.codec, AudioPT: c.pt, DTMFPT: -1})
			if err != nil {
				t.Fatal(err)
			}
			// Back to back, so no pause separates them.
			for k := range 3 {
				s.WriteFrame(frameOf(k))
			}
			var first rtp.Packet
			for k := range 3 {
				pkt, from := p.recv()
				if from != s.LocalAddr() {
					t.Errorf("packet %d from %s, want %s", k, from, s.LocalAddr())
				}
				want := make([]byte, pcm.FrameSamples)
				c.codec.Encode(want, frameOf(k)[:])
				if pkt.Version != 2 || pkt.PayloadType != c.pt || string(pkt.Payload) != string(want) || pkt.Padding || pkt.Extension || len(pkt.CSRC) != 0 {
					t.Fatalf("packet %d: V%d PT %d, %d payload bytes (match %v)", k, pkt.Version, pkt.PayloadType, len(pkt.Payload), string(pkt.Payload) == string(want))
				}
				if k == 0 {
					first = pkt
					if !pkt.Marker {
						t.Error("first packet without marker bit")
					}
					continue
				}
				if pkt.Marker || pkt.SSRC != first.SSRC ||
					pkt.SequenceNumber != first.SequenceNumber+uint16(k) ||
					pkt.Timestamp != first.Timestamp+uint32(160*k) {
					t.Errorf("packet %d: marker %v ssrc %#x seq %d ts %d; want no marker, ssrc %#x, seq %d, ts %d",
						k, pkt.Marker, pkt.SSRC, pkt.SequenceNumber, pkt.Timestamp,
						first.SSRC, first.SequenceNumber+uint16(k), first.Timestamp+uint32(160*k))
				}
			}
			// A pause of more than 60 ms: marker, and the timestamp follows
			// the wall clock (at least the 100 ms slept).
			time.Sleep(100 * time.Millisecond)
			s.WriteFrame(frameOf(3))
			pkt, _ := p.recv()
			if !pkt.Marker || pkt.SequenceNumber != first.SequenceNumber+3 {
				t.Errorf("after a pause: marker %v seq %d, want marker and seq %d", pkt.Marker, pkt.SequenceNumber, first.SequenceNumber+3)
			}
			if jump := pkt.Timestamp - (first.Timestamp + 320); jump < 800 {
				t.Errorf("timestamp advanced %d samples over a pause of 100 ms, want at least 800", jump)
			}
			st := s.Stats()
			if st.PacketsOut != 4 || st.BytesOut != 4*172 || st.Dropped.SendError != 0 {
				t.Errorf("stats %+v", st.Stats)
			}
			if es := e.Stats(); es.PacketsOut != 4 || es.BytesOut != 4*172 {
				t.Errorf("engine stats %+v", es)
			}
		})
	}
}

func TestWriteFrameWithoutRemote(t *testing.T) {
	e := testEngine(t, 1)
	s, err := e.Open(pcmu(netip.AddrPort{}))
	if err != nil {
		t.Fatal(err)
	}
	s.WriteFrame(frameOf(0))
	if st := s.Stats(); st.PacketsOut != 0 || st.Dropped.SendError != 0 {
		t.Errorf("late offer, no remote yet: %+v", st.Stats)
	}
	// The remote arrives in the ACK's SDP.
	p := newPeer(t, loop4)
	s.Update(pcmu(p.addr()))
	s.WriteFrame(frameOf(0))
	if pkt, _ := p.recv(); !pkt.Marker {
		t.Error("first packet after the remote became known has no marker")
	}
}

func TestReceiveAudio(t *testing.T) {
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			e := testEngine(t, 1)
			p := newPeer(t, loop4)
			s, err := e.Open(Params{Remote: p.addr(), Codec: c.codec, AudioPT: c.pt, DTMFPT: 101})
			if err != nil {
				t.Fatal(err)
			}
			opened := s.LastActivity()
			var payloads [][]byte
			for k := range 3 {
				payloads = append(payloads, tone(c.codec, 160, 7*k))
			}
			var f pcm.Frame
			p.send(s.LocalAddr(), c.pt, payloads[0])
			waitFor(t, "first packet", func() bool { return s.play.buffered() == 160 })
			if s.ReadFrame(&f) {
				t.Fatal("ReadFrame played with 20 ms buffered; want a 40 ms prefill")
			}
			p.send(s.LocalAddr(), c.pt, payloads[1])
			p.send(s.LocalAddr(), c.pt, payloads[2])
			waitFor(t, "audio", func() bool { return s.play.buffered() == 480 })
			for k := range 3 {
				if !s.ReadFrame(&f) {
					t.Fatalf("ReadFrame %d = false", k)
				}
				if !equalSamples(f[:], decoded(c.codec, payloads[k])) {
					t.Fatalf("frame %d does not match what was sent", k)
				}
			}
			f = *frameOf(1)
			if s.ReadFrame(&f) || f != (pcm.Frame{}) {
				t.Error("ReadFrame on an empty buffer must return false and silence")
			}
			st := s.Stats()
			if st.PacketsIn != 3 || st.BytesIn != 3*172 || st.Dropped != (Drops{}) || st.Latched != p.addr() {
				t.Errorf("stats %+v", st)
			}
			if !s.LastActivity().After(opened) {
				t.Errorf("LastActivity %v not after open %v", s.LastActivity(), opened)
			}
		})
	}
}

func TestReceivePtimes(t *testing.T) {
	for _, ms := range []int{10, 20, 30, 40} {
		t.Run(time.Duration(ms*int(time.Millisecond)).String(), func(t *testing.T) {
			e := testEngine(t, 1)
			p := newPeer(t, loop4)
			s, err := e.Open(pcmu(p.addr()))
			if err != nil {
				t.Fatal(err)
			}
			n := ms * 8
			var want []int16
			for k := 0; len(want) < 480; k++ {
				payload := tone(g711.PCMU, n, 11*k)
				p.send(s.LocalAddr(), 0, payload)
				want = append(want, decoded(g711.PCMU, payload)...)
			}
			waitFor(t, "audio", func() bool { return s.play.buffered() == len(want) })
			var f pcm.Frame
			for k := 0; (k+1)*160 <= len(want); k++ {
				if !s.ReadFrame(&f) || !equalSamples(f[:], want[k*160:(k+1)*160]) {
					t.Fatalf("frame %d wrong with %d ms packets", k, ms)
				}
			}
		})
	}
}

func TestLongPacketsAreCapped(t *testing.T) {
	e := testEngine(t, 1)
	p := newPeer(t, loop4)
	s, err := e.Open(pcmu(p.addr()))
	if err != nil {
		t.Fatal(err)
	}
	second := tone(g711.PCMU, maxPayload, 0) // ptime 1 s
	p.send(s.LocalAddr(), 0, second)
	p.send(s.LocalAddr(), 0, make([]byte, maxPayload+1)) // too long to be audio
	big := make([]byte, recvBufSize+100)                 // longer than the receive buffer
	big[0] = 0x80
	p.sendRaw(s.LocalAddr(), big)
	waitIn(t, s, 3)
	st := s.Stats()
	if st.Dropped.Overflow != 1 || st.Dropped.Malformed != 2 {
		t.Errorf("drops %+v, want 1 overflow and 2 malformed", st.Dropped)
	}
	if got := s.play.buffered(); got != maxBuffered {
		t.Fatalf("buffered %d samples, want the cap %d", got, maxBuffered)
	}
	var f pcm.Frame
	if !s.ReadFrame(&f) || !equalSamples(f[:], decoded(g711.PCMU, second[maxPayload-maxBuffered:][:160])) {
		t.Error("a 1 s packet must leave its newest 120 ms")
	}
}

func TestDuplicatesDropped(t *testing.T) {
	e := testEngine(t, 1)
	p := newPeer(t, loop4)
	s, err := e.Open(pcmu(p.addr()))
	if err != nil {
		t.Fatal(err)
	}
	payload := tone(g711.PCMU, 160, 0)
	for _, seq := range []uint16{65534, 65534, 65535, 65533, 0, 65535} {
		p.sendSeq(s.LocalAddr(), 0, seq, payload)
	}
	waitIn(t, s, 6)
	if st := s.Stats(); st.Dropped.Duplicate != 3 {
		t.Errorf("Duplicate = %d, want 3 (a repeat, an older one, a late one across the wrap)", st.Dropped.Duplicate)
	}
	if got := s.play.buffered(); got != 480 {
		t.Errorf("buffered %d samples, want 480 (65534, 65535, 0)", got)
	}
}

// otherLoopback returns a peer on another loopback address when the
// system has one, else another port of 127.0.0.1: either is a different
// source.
func otherLoopback(t *testing.T) *peer {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		return newPeer(t, loop4)
	}
	_ = c.Close()
	return newPeer(t, netip.MustParseAddr("127.0.0.2"))
}

func TestStrangerIsNeverLatched(t *testing.T) {
	e := testEngine(t, 1)
	caller := newPeer(t, loop4)
	stranger := otherLoopback(t)
	s, err := e.Open(pcmu(caller.addr()))
	if err != nil {
		t.Fatal(err)
	}
	payload := tone(g711.PCMU, 160, 0)
	for range 10 {
		caller.send(s.LocalAddr(), 0, payload)
		for range 3 { // in sequence, one SSRC: it would pass probation
			stranger.send(s.LocalAddr(), 0, payload)
		}
	}
	waitIn(t, s, 40)
	for k := range 5 {
		s.WriteFrame(frameOf(k))
	}
	for range 5 {
		if _, from := caller.recv(); from != s.LocalAddr() {
			t.Fatalf("caller got a packet from %s", from)
		}
	}
	stranger.expectSilence(200 * time.Millisecond)
	st := s.Stats()
	if st.Latched != caller.addr() || st.Dropped.ForeignSource != 30 || st.Dropped.Probation != 0 {
		t.Errorf("latched %s, drops %+v; want the caller and 30 foreign", st.Latched, st.Dropped)
	}
	if got := s.play.buffered(); got != maxBuffered {
		t.Errorf("buffered %d, want the caller's audio capped at %d", got, maxBuffered)
	}
}

func TestLatchBehindNAT(t *testing.T) {
	e := testEngine(t, 1)
	sdp := netip.MustParseAddrPort("127.0.0.1:9") // what the phone wrote; NAT changed it
	caller := newPeer(t, loop4)
	s, err := e.Open(pcmu(sdp))
	if err != nil {
		t.Fatal(err)
	}
	payload := tone(g711.PCMU, 160, 0)
	for range probationPackets - 1 {
		caller.send(s.LocalAddr(), 0, payload)
	}
	waitIn(t, s, probationPackets-1)
	if st := s.Stats(); st.Latched != sdp || st.Dropped.Probation != probationPackets-1 {
		t.Fatalf("during probation: latched %s, drops %+v", st.Latched, st.Dropped)
	}
	s.WriteFrame(frameOf(0)) // goes to the SDP address, not to the caller
	caller.send(s.LocalAddr(), 0, payload)
	waitIn(t, s, probationPackets)
	if st := s.Stats(); st.Latched != caller.addr() {
		t.Fatalf("after %d in-sequence packets: latched %s, want %s", probationPackets, st.Latched, caller.addr())
	}
	if got := s.play.buffered(); got != 160 {
		t.Errorf("buffered %d samples, want the latching packet's 160", got)
	}
	s.WriteFrame(frameOf(1))
	if _, from := caller.recv(); from != s.LocalAddr() {
		t.Errorf("latched caller got a packet from %s", from)
	}
	caller.expectSilence(50 * time.Millisecond) // the frame sent before latching went to :9
}

func TestRelatchAfterSilence(t *testing.T) {
	e := testEngine(t, 1)
	caller := newPeer(t, loop4)
	other := otherLoopback(t) // e.g. the same phone after a NAT rebinding
	s, err := e.Open(pcmu(caller.addr()))
	if err != nil {
		t.Fatal(err)
	}
	payload := tone(g711.PCMU, 160, 0)
	caller.send(s.LocalAddr(), 0, payload)
	for range probationPackets {
		other.send(s.LocalAddr(), 0, payload)
	}
	waitIn(t, s, 1+probationPackets)
	if st := s.Stats(); st.Latched != caller.addr() || st.Dropped.ForeignSource != probationPackets {
		t.Fatalf("caller active: latched %s drops %+v", st.Latched, st.Dropped)
	}
	time.Sleep(relatchSilence + 100*time.Millisecond)
	for range probationPackets {
		other.send(s.LocalAddr(), 0, payload)
	}
	waitIn(t, s, 1+2*probationPackets)
	if st := s.Stats(); st.Latched != other.addr() || st.Dropped.Probation != probationPackets-1 {
		t.Fatalf("after a second of silence: latched %s, drops %+v; want %s", st.Latched, st.Dropped, other.addr())
	}
	s.WriteFrame(frameOf(0))
	other.recv()
	caller.expectSilence(50 * time.Millisecond)
	caller.send(s.LocalAddr(), 0, payload) // the old source is now the stranger
	waitIn(t, s, 2+2*probationPackets)
	if st := s.Stats(); st.Dropped.ForeignSource != probationPackets+1 {
		t.Errorf("old source after re-latch: drops %+v", st.Dropped)
	}
}

func TestUpdate(t *testing.T) {
	e := testEngine(t, 1)
	sdp := netip.MustParseAddrPort("127.0.0.1:9")
	natted := newPeer(t, loop4)
	moved := newPeer(t, loop4)
	s, err := e.Open(pcmu(sdp))
	if err != nil {
		t.Fatal(err)
	}
	payload := tone(g711.PCMU, 160, 0)
	for range probationPackets {
		natted.send(s.LocalAddr(), 0, payload)
	}
	waitIn(t, s, probationPackets)

	// Same remote, new codec: latching is kept, the codec changes.
	s.Update(Params{Remote: sdp, Codec: g711.PCMA, AudioPT: 8, DTMFPT: 101})
	if st := s.Stats(); st.Latched != natted.addr() {
		t.Fatalf("re-INVITE with the same address un-latched: %s", st.Latched)
	}
	s.WriteFrame(frameOf(0))
	if pkt, _ := natted.recv(); pkt.PayloadType != 8 {
		t.Errorf("after Update to PCMA: PT %d", pkt.PayloadType)
	}

	// A new remote is trusted at once and resets latching.
	s.Update(Params{Remote: moved.addr(), Codec: g711.PCMA, AudioPT: 8, DTMFPT: 101})
	if st := s.Stats(); st.Latched != moved.addr() {
		t.Fatalf("after Update with a new remote: latched %s, want %s", st.Latched, moved.addr())
	}
	s.WriteFrame(frameOf(1))
	moved.recv()
	natted.expectSilence(50 * time.Millisecond)
	natted.send(s.LocalAddr(), 8, payload) // no longer trusted: probation again
	alaw := tone(g711.PCMA, 320, 5)
	moved.send(s.LocalAddr(), 8, alaw)
	waitIn(t, s, probationPackets+2)
	if st := s.Stats(); st.Dropped.Probation != probationPackets {
		t.Errorf("old source after Update: drops %+v, want one more probation drop", st.Dropped)
	}
	var f pcm.Frame
	// 160 samples from the first latched packets, then the new remote's.
	for k := 0; s.ReadFrame(&f); k++ {
		if k == 0 && !equalSamples(f[:], decoded(g711.PCMU, payload)) {
			t.Error("audio decoded before the update changed")
		}
		if k == 1 && !equalSamples(f[:], decoded(g711.PCMA, alaw[:160])) {
			t.Error("audio after Update not decoded as PCMA")
		}
	}

	// Invalid parameters are ignored.
	s.Update(Params{Remote: natted.addr(), Codec: 3, DTMFPT: -1})
	if st := s.Stats(); st.Latched != moved.addr() {
		t.Errorf("an invalid Update changed the remote to %s", st.Latched)
	}
}

// sendPress sends one key press as RFC 4733 packets with payload type pt,
// returning the datagrams so a test can replay them.
func sendPress(t *testing.T, p *peer, dst netip.AddrPort, pt uint8, digit byte) [][]byte {
	t.Helper()
	code, ok := dtmf.EventCode(digit)
	if !ok {
		t.Fatalf("no event for %q", digit)
	}
	var sent [][]byte
	p.ts += 2000
	for i, ev := range dtmf.Press(code, 800, 0) {
		var b [dtmf.EventLen]byte
		if _, err := ev.MarshalTo(b[:]); err != nil {
			t.Fatal(err)
		}
		h := rtpHeader(pt, p.seq, p.ts, p.ssrc)
		h.Marker = i == 0
		pkt := marshal(t, h, b[:])
		p.sendRaw(dst, pkt)
		sent = append(sent, pkt)
		p.seq++
	}
	return sent
}

func expectDigits(t *testing.T, got <-chan byte, want string) {
	t.Helper()
	for i := range len(want) {
		select {
		case d := <-got:
			if d != want[i] {
				t.Fatalf("digit %d = %q, want %q", i, d, want[i])
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("digit %d (%q) never came", i, want[i])
		}
	}
	select {
	case d := <-got:
		t.Fatalf("unexpected extra digit %q", d)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestDTMF(t *testing.T) {
	for _, pt := range []int{101, 96} {
		t.Run(fmt.Sprintf("PT%d", pt), func(t *testing.T) {
			e := testEngine(t, 1)
			p := newPeer(t, loop4)
			digits := make(chan byte, 16)
			s, err := e.Open(Params{Remote: p.addr(), Codec: g711.PCMU, DTMFPT: pt, OnDigit: func(d byte) { digits <- d }})
			if err != nil {
				t.Fatal(err)
			}
			dst := s.LocalAddr()
			sendPress(t, p, dst, uint8(pt), '5')
			sendPress(t, p, dst, uint8(pt), '#')
			expectDigits(t, digits, "5#")

			// Receiving off (hold): digits still count.
			s.SetDirection(true, false)
			sendPress(t, p, dst, uint8(pt), '1')
			expectDigits(t, digits, "1")
			s.SetDirection(true, true)

			// A replayed capture repeats sequence numbers and timestamps
			// exactly; it is still a new press, not a duplicate.
			first := sendPress(t, p, dst, uint8(pt), '7')
			expectDigits(t, digits, "7")
			time.Sleep(dtmf.RepressGap + 50*time.Millisecond)
			for _, pkt := range first {
				p.sendRaw(dst, pkt)
			}
			expectDigits(t, digits, "7")

			// The payload type not negotiated for telephone-event.
			other := uint8(101 + 96 - pt)
			before := s.Stats().Dropped.UnknownPayloadType
			sendPress(t, p, dst, other, '9')
			waitFor(t, "wrong-PT digit packets", func() bool {
				return s.Stats().Dropped.UnknownPayloadType > before+3
			})
			expectDigits(t, digits, "")
			if st := s.Stats(); st.Dropped.Duplicate != 0 || st.Dropped.Direction != 0 {
				t.Errorf("DTMF went through the audio rules: %+v", st.Dropped)
			}
		})
	}
}

// TestOnDigitMayCloseStream: OnDigit runs without the stream's locks, so
// a keypad handler that hangs up does not deadlock the poller.
func TestOnDigitMayCloseStream(t *testing.T) {
	e := testEngine(t, 2)
	p := newPeer(t, loop4)
	closed := make(chan error, 1)
	var s *Stream
	ready := make(chan struct{})
	s, err := e.Open(Params{Remote: p.addr(), Codec: g711.PCMU, DTMFPT: 101, OnDigit: func(byte) {
		<-ready
		closed <- s.Close()
	}})
	if err != nil {
		t.Fatal(err)
	}
	close(ready)
	sendPress(t, p, s.LocalAddr(), 101, '0')
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnDigit never ran or Close deadlocked")
	}
	// The poller still serves other streams.
	s2, err := e.Open(pcmu(p.addr()))
	if err != nil {
		t.Fatal(err)
	}
	p.send(s2.LocalAddr(), 0, tone(g711.PCMU, 160, 0))
	waitIn(t, s2, 1)
}

func TestDirection(t *testing.T) {
	e := testEngine(t, 1)
	p := newPeer(t, loop4)
	s, err := e.Open(pcmu(p.addr()))
	if err != nil {
		t.Fatal(err)
	}
	s.WriteFrame(frameOf(0))
	first, _ := p.recv()

	s.SetDirection(false, false) // inactive
	for k := range 5 {
		s.WriteFrame(frameOf(k))
	}
	p.expectSilence(100 * time.Millisecond)
	before := s.LastActivity()
	p.send(s.LocalAddr(), 0, tone(g711.PCMU, 320, 0))
	waitIn(t, s, 1)
	if st := s.Stats(); st.Dropped.Direction != 1 || s.play.buffered() != 0 {
		t.Errorf("audio while not receiving: drops %+v, buffered %d", st.Dropped, s.play.buffered())
	}
	if !s.LastActivity().After(before) {
		t.Error("audio while not receiving must still count as activity")
	}

	s.SetDirection(true, true)
	s.WriteFrame(frameOf(9))
	pkt, _ := p.recv()
	if !pkt.Marker || pkt.SequenceNumber != first.SequenceNumber+1 {
		t.Errorf("resumed sending: marker %v seq %d, want marker and seq %d (no gap for unsent frames)",
			pkt.Marker, pkt.SequenceNumber, first.SequenceNumber+1)
	}
	if pkt.Timestamp-first.Timestamp < 800 {
		t.Errorf("timestamp advanced %d over a pause of more than 100 ms", pkt.Timestamp-first.Timestamp)
	}
	if st := s.Stats(); st.PacketsOut != 2 {
		t.Errorf("PacketsOut = %d, want 2", st.PacketsOut)
	}
}

func TestOtherPacketsCounted(t *testing.T) {
	e := testEngine(t, 1)
	p := newPeer(t, loop4)
	s, err := e.Open(pcmu(p.addr()))
	if err != nil {
		t.Fatal(err)
	}
	dst := s.LocalAddr()
	rtcpDst := netip.AddrPortFrom(dst.Addr(), dst.Port()+1)
	cases := []struct {
		name     string
		send     func()
		want     Drops
		wantRTCP RTCPStats
		alive    bool // proves the caller alive
	}{
		{"comfort noise", func() { p.send(dst, 13, []byte{40}) }, Drops{UnknownPayloadType: 1}, RTCPStats{}, true},
		{"not rtp", func() { p.sendRaw(dst, []byte("hello")) }, Drops{Malformed: 1}, RTCPStats{}, false},
		{"version 1", func() { b := marshal(t, rtpHeader(0, 1, 1, 1), make([]byte, 160)); b[0] = 0x40; p.sendRaw(dst, b) }, Drops{Malformed: 1}, RTCPStats{}, false},
		{"empty audio", func() { p.send(dst, 0, nil) }, Drops{Malformed: 1}, RTCPStats{}, true},
		{"empty rtcp receiver report", func() { p.sendRaw(rtcpDst, []byte{0x80, 201, 0, 1, 0, 0, 0, 1}) }, Drops{}, RTCPStats{Received: 1}, true},
		{"rtcp report count beyond the packet", func() { p.sendRaw(rtcpDst, []byte{0x81, 201, 0, 1, 0, 0, 0, 1}) }, Drops{}, RTCPStats{Malformed: 1}, false},
		{"not rtcp", func() { p.sendRaw(rtcpDst, []byte("hello")) }, Drops{}, RTCPStats{Malformed: 1}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := s.Stats()
			activity := s.LastActivity()
			c.send()
			waitIn(t, s, before.PacketsIn+1)
			after := s.Stats()
			d := after.Dropped
			d.UnknownPayloadType -= before.Dropped.UnknownPayloadType
			d.Malformed -= before.Dropped.Malformed
			if d != c.want {
				t.Errorf("drops %+v, want %+v", d, c.want)
			}
			r := after.RTCP
			r.Received -= before.RTCP.Received
			r.Malformed -= before.RTCP.Malformed
			if r != c.wantRTCP {
				t.Errorf("rtcp %+v, want %+v", r, c.wantRTCP)
			}
			// Any RTP or RTCP from the caller proves it alive.
			if alive := s.LastActivity().After(activity); alive != c.alive {
				t.Errorf("LastActivity advanced = %v", alive)
			}
		})
	}
	if es, st := e.Stats(), s.Stats(); es != st.Stats {
		t.Errorf("engine stats %+v differ from its only stream's %+v", es, st.Stats)
	}

	// RTCP from a stranger is counted but proves nothing.
	stranger := otherLoopback(t)
	if stranger.addr().Addr() == p.addr().Addr() {
		return // no second loopback address: RTCP is matched by address only
	}
	activity := s.LastActivity()
	before := s.Stats()
	stranger.sendRaw(rtcpDst, []byte{0x80, 201, 0, 1, 0, 0, 0, 1})
	waitIn(t, s, before.PacketsIn+1)
	if !s.LastActivity().Equal(activity) {
		t.Error("RTCP from a stranger counted as activity")
	}
	if after := s.Stats().RTCP; after.Foreign != before.RTCP.Foreign+1 || after.Received != before.RTCP.Received {
		t.Errorf("RTCP from a stranger: %+v before, %+v after; want one more Foreign", before.RTCP, after)
	}
}
